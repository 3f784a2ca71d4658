/* tls_int.h: what tls.c (loading) and tls_check.c (judging a peer) share:
 * the parsed --ca anchors and the --crl files' issuers and nextUpdate.  Only
 * shared/tls*.c include it. */
#ifndef TLSFWD_TLS_INT_H
#define TLSFWD_TLS_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

struct x509;

/* The certificates of one file, parsed: the --ca file's are the trust
 * anchors x509_chain_check() ends a peer's path at. */
struct tls_certs {
	unsigned char *der;	/* every certificate's DER, back to back */
	struct x509 *x;		/* borrowing from der */
	size_t n;
};

/* The --crl files as tls_crl_expired() reads them. */
struct tls_crl {
	char *path;
	unsigned char *issuer;	/* the issuer Name's DER */
	size_t issuer_len;
	time_t next_update;	/* 0: none */
	atomic_int reported;	/* its expiry was logged */
};

struct tls_crls {
	struct tls_crl *v;
	size_t n;
};

#endif
