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

#include "authz.h"
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
	if (st.st_mode & S_IROTH) {
		char mode[8];	/* log_kv has no %o */

		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		log_warn("key file is readable by others", "file=%s mode=%s", path, mode);
	}
	return 0;
}

/* wolf_error(rc, buf, n): words for what a wolfSSL load function returned. */
static const char *wolf_error(int rc, char *buf, size_t n)
{
	switch (rc) {
	case WOLFSSL_BAD_FILE:
	case WOLFSSL_FAILURE:
	case WOLFSSL_FATAL_ERROR:	return "not readable, or no valid PEM in it";
	case WOLFSSL_BAD_FILETYPE:	return "wrong file type";
	case WOLFSSL_BAD_PATH:		return "bad path";
	default:
		wolfSSL_ERR_error_string_n((unsigned long)(rc < 0 ? -rc : rc), buf, n);
		return buf;
	}
}

/* crl_load(ctx, cfg): every --crl file, PEM or DER; a revoked peer then
 * fails its handshake.  Checked for the whole chain. */
static int crl_load(WOLFSSL_CTX *ctx, const struct config *cfg, char *err, size_t errsz)
{
	char head[16] = "", ebuf[128];
	int i, rc, type;
	FILE *fp;

	if (cfg->role != ROLE_SERVER || cfg->crl.n == 0)
		return 0;
	if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != WOLFSSL_SUCCESS) {
		snprintf(err, errsz, "cannot enable CRL checking");
		return -1;
	}
	for (i = 0; i < cfg->crl.n; i++) {
		const char *path = cfg->crl.v[i];

		if ((fp = fopen(path, "rb")) == NULL) {
			snprintf(err, errsz, "%s: cannot read CRL: %s", path, strerror(errno));
			return -1;
		}
		memset(head, 0, sizeof(head));
		(void)!fread(head, 1, sizeof(head) - 1, fp);
		fclose(fp);
		type = strncmp(head, "-----BEGIN", 10) == 0 ? WOLFSSL_FILETYPE_PEM : WOLFSSL_FILETYPE_ASN1;
		if ((rc = wolfSSL_CTX_LoadCRLFile(ctx, path, type)) != WOLFSSL_SUCCESS) {
			snprintf(err, errsz, "%s: cannot load CRL: %s", path,
			    wolf_error(rc, ebuf, sizeof(ebuf)));
			return -1;
		}
	}
	return 0;
}

/* tls_ctx_new(cfg, err, errsz): a context for cfg's role with the CA, the
 * certificate chain and the key loaded and checked against each other, the
 * CRLs, the minimum version and the peer verification set.  NULL with a
 * message in err naming the file and the cause. */
static WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errsz)
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

	/* No CA: a server that admits pinned certificates only (see conn.c). */
	if (cfg->ca != NULL &&
	    (rc = wolfSSL_CTX_load_verify_locations(ctx, cfg->ca, NULL)) != WOLFSSL_SUCCESS) {
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

	if (crl_load(ctx, cfg, err, errsz) < 0)
		goto fail;

	/* Mutual TLS: the server demands a certificate, the client verifies the
	 * server's chain (its name is set per connection: SNI and IP SANs). */
	wolfSSL_CTX_set_verify(ctx, server ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT :
	    WOLFSSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/* rules_add(rules, kind, list, flag, err, errsz): the values of one --allow-* list. */
static int rules_add(struct authz *rules, enum authz_kind kind, const struct strlist *l,
    const char *flag, char *err, size_t errsz)
{
	char why[256];
	int i;

	for (i = 0; i < l->n; i++)
		if (authz_add_kind(rules, kind, l->v[i], why, sizeof(why)) < 0) {
			snprintf(err, errsz, "--%s: %s: %s", flag, why, l->v[i]);
			return -1;
		}
	return 0;
}

/* pins_new(cfg, &rules, err, errsz): the client's --pin-server pins. */
static int pins_new(const struct config *cfg, struct authz **rules, char *err, size_t errsz)
{
	struct authz *r;
	char why[256];
	int i;

	if (cfg->pin_server.n == 0)
		return 0;
	if ((r = authz_new()) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->pin_server.n; i++) {
		const char *v = cfg->pin_server.v[i];

		if (authz_add(r, v, why, sizeof(why)) < 0 || !authz_only_pins(r)) {
			snprintf(err, errsz, "--pin-server: %s: %s",
			    authz_only_pins(r) ? why : "expected sha256:HEX or spki:HEX", v);
			authz_free(r);
			return -1;
		}
	}
	*rules = r;
	return 0;
}

/* rules_new(cfg, &rules, err, errsz): the server's allow rules from the flags
 * and --allow-file; *rules stays NULL when there are none (all allowed). */
static int rules_new(const struct config *cfg, struct authz **rules, char *err, size_t errsz)
{
	struct authz *r;

	*rules = NULL;
	if (cfg->role == ROLE_CLIENT)
		return pins_new(cfg, rules, err, errsz);
	if ((cfg->allow_cn.n + cfg->allow_dns.n + cfg->allow_uri.n +
	    cfg->allow_ou.n + cfg->allow_fingerprint.n + cfg->allow_spki.n == 0 &&
	    cfg->allow_file == NULL))
		return 0;
	if ((r = authz_new()) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (rules_add(r, AUTHZ_CN, &cfg->allow_cn, "allow-cn", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_DNS, &cfg->allow_dns, "allow-dns", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_URI, &cfg->allow_uri, "allow-uri", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_OU, &cfg->allow_ou, "allow-ou", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_FINGERPRINT, &cfg->allow_fingerprint, "allow-fingerprint", err,
	    errsz) < 0 ||
	    rules_add(r, AUTHZ_SPKI, &cfg->allow_spki, "allow-spki", err, errsz) < 0 ||
	    (cfg->allow_file != NULL && authz_load_file(r, cfg->allow_file, err, errsz) < 0))
		goto fail;
	/* Without a CA only pins can admit anyone; the file may have added more. */
	if (cfg->ca == NULL && !authz_only_pins(r)) {
		snprintf(err, errsz, "--ca: required unless every allow rule is a "
		    "fingerprint or spki pin%s%s", cfg->allow_file ? " (see " : "",
		    cfg->allow_file ? cfg->allow_file : "");
		if (cfg->allow_file != NULL)
			strncat(err, ")", errsz - strlen(err) - 1);
		goto fail;
	}
	*rules = r;
	return 0;
fail:
	authz_free(r);
	return -1;
}

struct tls_policy *tls_policy_new(const struct config *cfg, char *err, size_t errsz)
{
	struct tls_policy *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (rules_new(cfg, &p->rules, err, errsz) < 0 ||
	    (p->ctx = tls_ctx_new(cfg, err, errsz)) == NULL) {
		authz_free(p->rules);
		free(p);
		return NULL;
	}
	/* A resumed session shows no certificate: where identity or revocation
	 * decides, every connection must make a full handshake. */
	if (p->rules != NULL || cfg->crl.n > 0)
		wolfSSL_CTX_no_ticket_TLSv13(p->ctx);
	atomic_init(&p->refs, 1);
	return p;
}

struct tls_policy *tls_policy_get(struct tls_policy_slot *slot)
{
	struct tls_policy *p;

	pthread_mutex_lock(&slot->lock);
	if ((p = slot->cur) != NULL)
		atomic_fetch_add(&p->refs, 1);
	pthread_mutex_unlock(&slot->lock);
	return p;
}

void tls_policy_set(struct tls_policy_slot *slot, struct tls_policy *p)
{
	struct tls_policy *old;

	pthread_mutex_lock(&slot->lock);
	old = slot->cur;
	slot->cur = p;
	pthread_mutex_unlock(&slot->lock);
	if (old != NULL)
		tls_policy_release(old);
}

void tls_policy_release(struct tls_policy *p)
{
	if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	wolfSSL_CTX_free(p->ctx);
	authz_free(p->rules);
	free(p);
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
