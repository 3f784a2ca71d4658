/* tls: wolfSSL contexts, verification settings, peer identity and error names. */
#ifndef TLSFWD_TLS_H
#define TLSFWD_TLS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"

/** tls_init(): initialise wolfSSL once per process.  Returns 0 or -1. */
int tls_init(void);

/** tls_cleanup(): release wolfSSL's global state. */
void tls_cleanup(void);

struct role;
struct tls_certs;
struct tls_crls;

/* What a reload replaces, all or nothing: the TLS context (certificate, key,
 * CA, CRLs) and, on the server, the allow rules.  Reference-counted: a
 * connection holds the policy it started with, so a reload never touches
 * open connections. */
struct tls_policy {
	WOLFSSL_CTX *ctx;
	void *rules;			/* the role's: allow rules, pins; NULL: none */
	void (*rules_free)(void *);	/* and how they are freed */
	struct tls_certs *anchors;	/* the --ca certificates, parsed; NULL: no --ca */
	struct tls_crls *crls;		/* issuer and nextUpdate of each --crl */
	struct tls_expiry *expiry;	/* see tls_policy_expiry() */
	size_t nexpiry;
	atomic_int refs;
};

/* The policy new connections take; swapped under the lock. */
struct tls_policy_slot {
	pthread_mutex_t lock;
	struct tls_policy *cur;
};

/* A loaded certificate or CRL, as tls_policy_expiry() gives them. */
struct tls_expiry {
	const char *kind;	/* "cert" (own chain), "ca" (--ca), "crl" (--crl) */
	int index;		/* its place among those of its kind, from 0 */
	char subject[160];	/* the subject (CRL: the file's path) */
	time_t when;		/* notAfter; a CRL's nextUpdate (0: none) */
};

/** tls_policy_expiry(p, v): the certificates (own chain, --ca) and CRLs p
 *  loaded, with when each expires; *v is p's own (read-only, lives as long as
 *  p).  Returns how many.  What both the expiry gauges and lines read. */
size_t tls_policy_expiry(const struct tls_policy *p, const struct tls_expiry **v);

/** tls_policy_new(cfg, role, err, errsz): load everything cfg names, and the
 *  role's rules, into a new policy holding one reference.  NULL with the
 *  file and cause in err. */
struct tls_policy *tls_policy_new(const struct config *cfg, const struct role *role, char *err,
    size_t errsz);

/** tls_policy_get(slot): the current policy, with a reference for the caller. */
struct tls_policy *tls_policy_get(struct tls_policy_slot *slot);

/** tls_policy_set(slot, p): make p current (taking its reference); the old
 *  one lives on while connections hold it.  p may be NULL to empty the slot. */
void tls_policy_set(struct tls_policy_slot *slot, struct tls_policy *p);

/** tls_policy_release(p): drop a reference; the last one frees p. */
void tls_policy_release(struct tls_policy *p);

/** tls_reason(ssl, err): a short stable token naming why a TLS call failed
 *  (unknown_ca, expired, no_certificate, protocol_version, ...), from
 *  wolfSSL's error code or the alert the peer sent; "tls_error" for the rest. */
const char *tls_reason(WOLFSSL *ssl, int err);

/** tls_chain_check(p, store, server, anchored): the checks wolfSSL 5.5.4
 *  skips, on the chain the peer sent (store->certs, leaf first) and p's
 *  --ca anchors: the leaf's extendedKeyUsage, when it has one, names
 *  clientAuth (server is non-zero) or serverAuth ("wrong_usage"), then
 *  x509_chain_check() ("weak_key", "weak_signature", "issuer_not_ca",
 *  "path_length").  Returns NULL or the reason; *anchored is set when the
 *  path reached an anchor. */
const char *tls_chain_check(const struct tls_policy *p, WOLFSSL_X509_STORE_CTX *store,
    int server, int *anchored);

/** tls_crl_expired(p, cert, err): non-zero if err (wolfSSL's verdict on
 *  cert) comes from a --crl file of cert's issuer that has passed its
 *  nextUpdate since it was loaded: wolfSSL then fails the certificate as
 *  "CRL missing" or "after date".  The first time for each file, a warn line
 *  names it. */
int tls_crl_expired(const struct tls_policy *p, WOLFSSL_X509 *cert, int err);

/** tls_ip_name(ip, buf, n): ip (a v4 or v6 literal) in the form wolfSSL's
 *  IP SAN check compares with: v4 as is, v6 as eight upper-case groups of
 *  four digits ("0000:...:0001").  Returns buf, or NULL if ip is no literal. */
const char *tls_ip_name(const char *ip, char *buf, size_t n);

/** tls_peer_subject(ssl, buf, n): the peer certificate's subject, or "". */
const char *tls_peer_subject(WOLFSSL *ssl, char *buf, size_t n);

/** tls_version_info(buf, n): wolfSSL's version and its assembly features. */
const char *tls_version_info(char *buf, size_t n);

#endif
