/* tls: wolfSSL contexts, error names and peer identity; see tls.h. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "log.h"

/* TLS 1.3 suites first; the 1.2 list is ECDHE with AEAD only. */
static const char cipher_list[] =
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int tls_init(void)
{
	return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

void tls_cleanup(void)
{
	wolfSSL_Cleanup();
}

struct passphrase {
	char buf[1024];
	int len;		/* -1 when no passphrase was configured */
};

static int passwd_cb(char *out, int size, int rw, void *userdata)
{
	struct passphrase *p = userdata;

	(void)rw;
	if (p == NULL || p->len < 0 || p->len >= size)
		return 0;
	memcpy(out, p->buf, (size_t)p->len);
	return p->len;
}

/* Read the passphrase from --key-pass-env or the first line of --key-pass-file. */
static int passphrase_load(const struct config *cfg, struct passphrase *p, char *err, size_t errsz)
{
	p->len = -1;
	if (cfg->key_pass_env != NULL) {
		const char *v = getenv(cfg->key_pass_env);

		if (v == NULL) {
			snprintf(err, errsz, "--key-pass-env: environment variable %s is not set",
			    cfg->key_pass_env);
			return -1;
		}
		if (strlen(v) >= sizeof(p->buf)) {
			snprintf(err, errsz, "--key-pass-env: %s: passphrase too long", cfg->key_pass_env);
			return -1;
		}
		p->len = (int)strlen(v);
		memcpy(p->buf, v, (size_t)p->len);
	} else if (cfg->key_pass_file != NULL) {
		FILE *fp = fopen(cfg->key_pass_file, "r");

		if (fp == NULL) {
			snprintf(err, errsz, "%s: cannot read passphrase file: %s",
			    cfg->key_pass_file, strerror(errno));
			return -1;
		}
		if (fgets(p->buf, sizeof(p->buf), fp) == NULL)
			p->buf[0] = '\0';
		fclose(fp);
		p->buf[strcspn(p->buf, "\r\n")] = '\0';
		p->len = (int)strlen(p->buf);
	}
	return 0;
}

/* A private key others can read is a key others may have copied: say so. */
static int key_check_mode(const char *path, char *err, size_t errsz)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errsz, "%s: cannot read key: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errsz, "%s: key file is writable by group or others; chmod 600 it", path);
		return -1;
	}
	if (st.st_mode & S_IROTH)
		log_warn("key file is readable by others", "file=%s mode=%o", path,
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

static const char *wolf_error(int rc, char *buf, size_t n)
{
	wolfSSL_ERR_error_string_n((unsigned long)(rc < 0 ? -rc : rc), buf, n);
	return buf;
}

WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errsz)
{
	int server = cfg->role == ROLE_SERVER;
	struct passphrase pass;
	WOLFSSL_CTX *ctx;
	char ebuf[128];
	int rc;

	ctx = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() : wolfSSLv23_client_method());
	if (ctx == NULL) {
		snprintf(err, errsz, "cannot create a TLS context");
		return NULL;
	}
	if (wolfSSL_CTX_SetMinVersion(ctx, cfg->tls_min == TLS_MIN_13 ?
	    WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, cipher_list) != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "cannot set the TLS version or cipher list");
		goto fail;
	}

	if ((rc = wolfSSL_CTX_load_verify_locations(ctx, cfg->ca, NULL)) != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "%s: cannot load CA certificates: %s", cfg->ca,
		    wolf_error(rc, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if ((rc = wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->cert)) != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "%s: cannot load certificate: %s", cfg->cert,
		    wolf_error(rc, ebuf, sizeof(ebuf)));
		goto fail;
	}

	if (key_check_mode(cfg->key, err, errsz) < 0 || passphrase_load(cfg, &pass, err, errsz) < 0)
		goto fail;
	wolfSSL_CTX_set_default_passwd_cb(ctx, passwd_cb);
	wolfSSL_CTX_set_default_passwd_cb_userdata(ctx, &pass);
	rc = wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->key, WOLFSSL_FILETYPE_PEM);
	wolfSSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	explicit_bzero(&pass, sizeof(pass));
	if (rc != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "%s: cannot load private key%s: %s", cfg->key,
		    cfg->key_pass_env || cfg->key_pass_file ? " (wrong passphrase?)" :
		    " (encrypted? give --key-pass-env or --key-pass-file)",
		    wolf_error(rc, ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "%s: private key does not match certificate %s", cfg->key, cfg->cert);
		goto fail;
	}

	/* Mutual TLS: the server demands a certificate, the client verifies the
	 * server's chain (its name is set per connection: SNI and IP SANs). */
	wolfSSL_CTX_set_verify(ctx, server ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT :
	    WOLFSSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

static const char *alert_reason(int code)
{
	switch (code) {
	case bad_certificate:		return "bad_certificate";
	case unsupported_certificate:	return "bad_certificate";
	case certificate_revoked:	return "revoked";
	case certificate_expired:	return "expired";
	case certificate_unknown:	return "bad_certificate";
	case unknown_ca:		return "unknown_ca";
	case protocol_version:		return "protocol_version";
	case handshake_failure:		return "handshake_failure";
	case certificate_required:	return "no_certificate";
	case decrypt_error:		return "bad_certificate";
	default:			return "peer_alert";
	}
}

const char *tls_reason(WOLFSSL *ssl, int err)
{
	switch (err) {
	case NO_PEER_CERT:		return "no_certificate";
	case ASN_NO_SIGNER_E:
	case ASN_SELF_SIGNED_E:		return "unknown_ca";
	case ASN_AFTER_DATE_E:		return "expired";
	case ASN_BEFORE_DATE_E:		return "not_yet_valid";
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:		return "name_mismatch";
	case CRL_CERT_REVOKED:		return "revoked";
	case VERSION_ERROR:		return "protocol_version";
	case MATCH_SUITE_ERROR:		return "no_shared_cipher";
	case UNKNOWN_RECORD_TYPE:	return "not_tls";
	case SOCKET_PEER_CLOSED_E:
	case SOCKET_ERROR_E:
	case WOLFSSL_ERROR_ZERO_RETURN:
	case ZERO_RETURN:		return "peer_closed";
	case FATAL_ERROR: {
		WOLFSSL_ALERT_HISTORY h;

		if (ssl != NULL && wolfSSL_get_alert_history(ssl, &h) == WOLFSSL_SUCCESS)
			return alert_reason(h.last_rx.code);
		return "peer_alert";
	}
	default:			return "tls_error";
	}
}

const char *tls_ip_name(const char *ip, char *buf, size_t n)
{
	unsigned char a[16];
	size_t i, len = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(buf, n, "%s", ip);
		return buf;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || n < 40)
		return NULL;
	for (i = 0; i < 8; i++)
		len += (size_t)snprintf(buf + len, n - len, "%02X%02X%s", a[2 * i], a[2 * i + 1],
		    i < 7 ? ":" : "");
	return buf;
}

const char *tls_peer_subject(WOLFSSL *ssl, char *buf, size_t n)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);

	buf[0] = '\0';
	if (x != NULL) {
		wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), buf, (int)n);
		wolfSSL_X509_free(x);
	}
	return buf;
}

const char *tls_version_info(char *buf, size_t n)
{
	snprintf(buf, n, "wolfSSL %s (%s)", wolfSSL_lib_version(),
#if defined(WOLFSSL_AESNI) && defined(USE_INTEL_SPEEDUP)
	    "AES-NI and AVX assembly, used when the CPU has them"
#elif defined(WOLFSSL_AESNI)
	    "AES-NI assembly, used when the CPU has it"
#else
	    "no AES-NI/AVX assembly: C implementation only"
#endif
#ifdef WOLFSSL_SP_X86_64_ASM
	    ", SP math x86_64 assembly for P-256/P-384/RSA"
#endif
	);
	return buf;
}
