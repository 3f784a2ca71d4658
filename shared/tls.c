/* tls: wolfSSL once per process, and the policy a reload replaces: the
 * context (version floor, ciphers, CA, certificate chain, key and its
 * passphrase, CRLs, verification), the own certificates held to what a peer
 * is held to, the --ca anchors and the --crl files' nextUpdate; see tls.h.
 * What is asked of a peer with them is in tls_check.c. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <wolfssl/wolfcrypt/coding.h>

#include "log.h"
#include "role.h"
#include "tls_int.h"
#include "x509.h"
#include "x509_name.h"

#define CERT_FILE_MAX (4 << 20)	/* bytes of a --cert or --ca file we read */

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

static void crls_free(struct tls_crls *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].path);
		free(c->v[i].issuer);
	}
	free(c->v);
	free(c);
}

static void certs_free(struct tls_certs *c)
{
	if (c != NULL) {
		free(c->der);
		free(c->x);
		free(c);
	}
}

/* file_slurp(fp, max, n, why): all of fp in a malloc'd buffer with a NUL
 * after its *n bytes, grown as it fills: a certificate is a few KiB, and one
 * big buffer up front would be a big temporary (see pin_allocator). */
static unsigned char *file_slurp(FILE *fp, size_t max, size_t *n, const char **why)
{
	unsigned char *buf = NULL, *p;
	size_t cap = 0, len = 0;

	for (;;) {
		if (len == cap) {
			if (cap > max) {
				*why = "file too large";
				break;
			}
			cap = cap == 0 ? 16384 : 2 * cap;
			if (cap > max)
				cap = max + 1;	/* one byte more says it is too large */
			if ((p = realloc(buf, cap + 1)) == NULL) {
				*why = "out of memory";
				break;
			}
			buf = p;
		}
		len += fread(buf + len, 1, cap - len, fp);
		if (len < cap) {
			if (ferror(fp)) {
				*why = strerror(errno);
				break;
			}
			buf[len] = '\0';
			*n = len;
			return buf;
		}
	}
	free(buf);
	return NULL;
}

/* pem_load(path, label, der, len, err, errsz): the DER of a file: the
 * "-----BEGIN <label>-----" blocks of a PEM file decoded back to back, or a
 * DER file as it is.  *der is malloc'd.  -1 with the file and the cause in
 * err. */
static int pem_load(const char *path, const char *label, unsigned char **der, size_t *len,
    char *err, size_t errsz)
{
	unsigned char *text = NULL, *out = NULL;
	char begin[64], end[64];
	size_t n = 0, used = 0;
	const char *why = "out of memory";
	FILE *fp;

	snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
	snprintf(end, sizeof(end), "-----END %s-----", label);
	if ((fp = fopen(path, "rb")) == NULL) {
		why = strerror(errno);
		goto fail;
	}
	text = file_slurp(fp, CERT_FILE_MAX, &n, &why);
	fclose(fp);
	if (text == NULL)
		goto fail;
	/* DER is never longer than the text it came from */
	if ((out = malloc(n + 1)) == NULL)
		goto fail;
	if (memmem(text, n, "-----BEGIN", 10) != NULL) {
		const char *p = (const char *)text, *b, *e;

		while ((b = strstr(p, begin)) != NULL) {
			word32 room = (word32)(n + 1 - used);

			b += strlen(begin);
			if ((e = strstr(b, end)) == NULL ||
			    Base64_Decode((const byte *)b, (word32)(e - b), out + used, &room) != 0) {
				why = "bad PEM";
				goto fail;
			}
			used += room;
			p = e + strlen(end);
		}
	} else {
		memcpy(out, text, n);
		used = n;
	}
	free(text);
	*der = out;
	*len = used;
	return 0;
fail:
	snprintf(err, errsz, "%s: cannot read %s: %s", path,
	    strcmp(label, "CERTIFICATE") == 0 ? "certificates" : "CRL", why);
	free(text);
	free(out);
	return -1;
}

/* certs_load(path, err, errsz): every certificate of a PEM file (each
 * "BEGIN CERTIFICATE" block) or a DER one (certificates back to back),
 * parsed.  NULL with the file and the cause in err. */
static struct tls_certs *certs_load(const char *path, char *err, size_t errsz)
{
	struct tls_certs *c = calloc(1, sizeof(*c));
	const char *why = "out of memory";
	size_t len = 0, cap = 0, i;
	struct der d;
	struct der_tlv t;

	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (pem_load(path, "CERTIFICATE", &c->der, &len, err, errsz) < 0) {
		certs_free(c);
		return NULL;
	}
	/* count, then parse */
	der_init(&d, c->der, len);
	while (der_read(&d, &t) == 1)
		cap++;
	if (d.len != 0 || cap == 0) {
		why = "no certificate in it";
		goto fail;
	}
	if ((c->x = calloc(cap, sizeof(*c->x))) == NULL)
		goto fail;
	der_init(&d, c->der, len);
	for (i = 0; i < cap && der_read(&d, &t) == 1; i++)
		if (x509_parse(&c->x[i], t.raw, t.rawlen, &why) != 0)
			goto fail;
	c->n = cap;
	return c;
fail:
	snprintf(err, errsz, "%s: cannot read certificates: %s", path, why);
	certs_free(c);
	return NULL;
}

/* certs_check(c, path, err, errsz): the daemon's own certificates (--cert,
 * --ca) meet what it asks of a peer's: keys of RSA >= 2048 or EC >= 256
 * bits; no MD5 or SHA-1 signature but a self-signed one's.  -1 with the
 * file, the certificate and the cause in err. */
static int certs_check(const struct tls_certs *c, const char *path, char *err, size_t errsz)
{
	char name[256], what[96];
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct x509 *x = &c->x[i];

		x509_name_line(&x->subject, name, sizeof(name));
		if (!x509_key_ok(x)) {
			snprintf(err, errsz, "%s: weak_key: certificate %s has a %s key; "
			    "RSA keys must have at least %d bits, EC keys at least %d", path, name,
			    x509_key_text(x, what, sizeof(what)), X509_MIN_RSA_BITS, X509_MIN_EC_BITS);
			return -1;
		}
		if (!x509_self_issued(x) && !x509_sig_ok(x)) {
			snprintf(err, errsz, "%s: weak_signature: certificate %s is signed with %s; "
			    "MD5 and SHA-1 signatures are refused", path, name,
			    x509_sig_text(x, what, sizeof(what)));
			return -1;
		}
	}
	return 0;
}

/* crl_read(crls, path, err, errsz): the issuer and nextUpdate of every CRL
 * in path (PEM or DER) into crls.  A CRL past its nextUpdate is an error
 * ("crl_expired"): loading it would fail every client of its issuer. */
static int crl_read(struct tls_crls *crls, const char *path, char *err, size_t errsz)
{
	unsigned char *der;
	size_t len;
	struct der d;
	struct der_tlv t, issuer;
	const char *why;
	time_t next;
	char when[32];
	int rc = -1;

	if (pem_load(path, "X509 CRL", &der, &len, err, errsz) < 0)
		return -1;
	der_init(&d, der, len);
	while (der_read(&d, &t) == 1) {
		struct tls_crl *v, *e;

		if (x509_crl_parse(t.raw, t.rawlen, &issuer, &next, &why) != 0) {
			snprintf(err, errsz, "%s: cannot load CRL: %s", path, why);
			goto out;
		}
		if (next != 0 && next <= time(NULL)) {
			snprintf(err, errsz, "%s: crl_expired: the CRL's nextUpdate (%s) has passed; "
			    "an expired CRL is refused (fetch a fresh one)", path,
			    x509_time_text(next, when, sizeof(when)));
			goto out;
		}
		if ((v = realloc(crls->v, (crls->n + 1) * sizeof(*v))) == NULL)
			goto nomem;
		crls->v = v;
		e = &v[crls->n];
		memset(e, 0, sizeof(*e));
		e->path = strdup(path);
		e->issuer = malloc(issuer.rawlen);
		if (e->path == NULL || e->issuer == NULL) {
			free(e->path);
			free(e->issuer);
			goto nomem;
		}
		memcpy(e->issuer, issuer.raw, issuer.rawlen);
		e->issuer_len = issuer.rawlen;
		e->next_update = next;
		atomic_init(&e->reported, 0);
		crls->n++;
	}
	if (d.len != 0) {
		snprintf(err, errsz, "%s: cannot load CRL: not PEM or DER", path);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errsz, "out of memory");
out:
	free(der);
	return rc;
}

/* crl_load(ctx, cfg, crls): every --crl file, PEM or DER; a revoked peer
 * then fails its handshake.  Checked for the whole chain.  Their issuers
 * and nextUpdate go to crls. */
static int crl_load(WOLFSSL_CTX *ctx, const struct config *cfg, struct tls_crls *crls,
    char *err, size_t errsz)
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
		if (crl_read(crls, path, err, errsz) < 0)
			return -1;
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
static WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, struct tls_crls *crls, char *err,
    size_t errsz)
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

	if (crl_load(ctx, cfg, crls, err, errsz) < 0)
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

static int expiry_add(struct tls_policy *p, const char *kind, const struct tls_certs *c,
    char *err, size_t errsz);

/* own_certs_check(cfg, p, err, errsz): --cert and --ca held to what a peer
 * is held to (certs_check); the --ca certificates become p's anchors. */
static int own_certs_check(const struct config *cfg, struct tls_policy *p, char *err,
    size_t errsz)
{
	struct tls_certs *own;
	int rc;

	if ((own = certs_load(cfg->cert, err, errsz)) == NULL)
		return -1;
	rc = certs_check(own, cfg->cert, err, errsz);
	if (rc == 0)
		rc = expiry_add(p, "cert", own, err, errsz);
	certs_free(own);
	if (rc < 0 || cfg->ca == NULL)
		return rc;
	if ((p->anchors = certs_load(cfg->ca, err, errsz)) == NULL)
		return -1;
	if (certs_check(p->anchors, cfg->ca, err, errsz) < 0)
		return -1;
	return expiry_add(p, "ca", p->anchors, err, errsz);
}

/* expiry_grow(p, n, err, errsz): room for n more entries in p->expiry. */
static int expiry_grow(struct tls_policy *p, size_t n, char *err, size_t errsz)
{
	struct tls_expiry *v = realloc(p->expiry, (p->nexpiry + n + 1) * sizeof(*v));

	if (v == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	p->expiry = v;
	return 0;
}

/* expiry_add(p, kind, c, err, errsz): c's certificates' notAfter, for
 * tls_policy_expiry(). */
static int expiry_add(struct tls_policy *p, const char *kind, const struct tls_certs *c,
    char *err, size_t errsz)
{
	size_t i;

	if (expiry_grow(p, c->n, err, errsz) < 0)
		return -1;
	for (i = 0; i < c->n; i++) {
		struct tls_expiry *e = &p->expiry[p->nexpiry++];

		e->kind = kind;
		e->index = (int)i;
		x509_name_line(&c->x[i].subject, e->subject, sizeof(e->subject));
		e->when = c->x[i].not_after;
	}
	return 0;
}

/* expiry_crls(p, err, errsz): the CRLs' nextUpdate, for tls_policy_expiry(). */
static int expiry_crls(struct tls_policy *p, char *err, size_t errsz)
{
	size_t i;

	if (expiry_grow(p, p->crls->n, err, errsz) < 0)
		return -1;
	for (i = 0; i < p->crls->n; i++) {
		struct tls_expiry *e = &p->expiry[p->nexpiry++];

		e->kind = "crl";
		e->index = (int)i;
		snprintf(e->subject, sizeof(e->subject), "%s", p->crls->v[i].path);
		e->when = p->crls->v[i].next_update;
	}
	return 0;
}

size_t tls_policy_expiry(const struct tls_policy *p, const struct tls_expiry **v)
{
	*v = p != NULL ? p->expiry : NULL;
	return p != NULL ? p->nexpiry : 0;
}

/* policy_free(p): free p and what it holds. */
static void policy_free(struct tls_policy *p)
{
	wolfSSL_CTX_free(p->ctx);
	if (p->rules != NULL)
		p->rules_free(p->rules);
	certs_free(p->anchors);
	crls_free(p->crls);
	free(p->expiry);
	free(p);
}

struct tls_policy *tls_policy_new(const struct config *cfg, const struct role *role, char *err,
    size_t errsz)
{
	struct tls_policy *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if ((p->crls = calloc(1, sizeof(*p->crls))) == NULL) {
		snprintf(err, errsz, "out of memory");
		free(p);
		return NULL;
	}
	p->rules_free = role->rules_free;
	if (own_certs_check(cfg, p, err, errsz) < 0 ||
	    (role->rules_new != NULL && role->rules_new(cfg, &p->rules, err, errsz) < 0) ||
	    (p->ctx = tls_ctx_new(cfg, p->crls, err, errsz)) == NULL ||
	    expiry_crls(p, err, errsz) < 0) {
		policy_free(p);
		return NULL;
	}
	/* A resumed session shows no certificate: where identity or revocation
	 * decides, or is stamped on records, every connection must make a
	 * full handshake. */
	if (p->rules != NULL || cfg->crl.n > 0 || cfg->stamp_key != NULL ||
	    cfg->stamp_address_key != NULL || cfg->tag_prefix != NULL)
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
	policy_free(p);
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
