/* x509: read an X.509 certificate field by field, and judge its key and
 * signature.  Parsing is ours (der.c) so that every attribute, name form and
 * extension is seen exactly as encoded.  The family: x509_name.h (names as
 * text), x509_chain.h (the path checks wolfSSL skips), x509_identity.h (a
 * peer's identity as an allow-list sees it); tlsfwd-certs' printers are its
 * own (certs/text.h).  Used by both daemons (their own certificates, the
 * peer's chain, CRLs) and by tlsfwd-certs (show, fingerprint, the checks
 * made on a CA before it signs). */
#ifndef TLSFWD_X509_H
#define TLSFWD_X509_H

#include <stddef.h>
#include <time.h>

#include "der.h"
#include "x509_identity.h"	/* for the files that read an identity through x509.h */

/* Key usage bits, numbered as in RFC 5280 (bit 0 = digitalSignature). */
#define X509_KU_DIGITAL_SIGNATURE	(1u << 0)
#define X509_KU_KEY_ENCIPHERMENT	(1u << 2)
#define X509_KU_KEY_CERT_SIGN		(1u << 5)
#define X509_KU_CRL_SIGN		(1u << 6)

/* A parsed certificate.  Every pointer borrows from the DER given to
 * x509_parse(), which must outlive it. */
struct x509 {
	const unsigned char *der;
	size_t derlen;
	int version;			/* 1, 2 or 3 */
	struct der_tlv tbs;		/* to-be-signed body */
	struct der_tlv serial;		/* INTEGER */
	struct der_tlv issuer;		/* Name (SEQUENCE) */
	struct der_tlv subject;		/* Name (SEQUENCE) */
	struct der_tlv spki;		/* SubjectPublicKeyInfo (SEQUENCE) */
	struct der_tlv sig_alg;		/* OID of the outer signature algorithm */
	struct der_tlv sig_params;	/* its parameters; tag 0 if absent */
	time_t not_before, not_after;

	int bc_present, bc_critical, is_ca;
	long path_len;			/* -1 if absent */
	int ku_present, ku_critical;
	unsigned ku;			/* X509_KU_* bits */
	int san_present, san_critical;
	struct der_tlv san;		/* GeneralNames (SEQUENCE) */
	int eku_present, eku_critical;
	struct der_tlv eku;		/* SEQUENCE OF OID */
	struct der_tlv skid;		/* OCTET STRING contents; len 0 if absent */
	struct der_tlv akid;		/* keyIdentifier contents; len 0 if absent */
	int nc_present;
	struct der_tlv nc;		/* NameConstraints (SEQUENCE) */
};

/** x509_parse(x, der, len, why): parse one DER certificate into x.  Returns
 *  0, or -1 with a short reason in *why.  x borrows from der. */
int x509_parse(struct x509 *x, const unsigned char *der, size_t len, const char **why);

/** x509_key_text(x, buf, n): the subject key as "EC P-256" or "RSA 2048".
 *  Returns buf. */
const char *x509_key_text(const struct x509 *x, char *buf, size_t n);

/** x509_sig_text(x, buf, n): the signature algorithm ("ecdsa-with-SHA256",
 *  "sha256WithRSAEncryption", or the dotted OID).  Returns buf. */
const char *x509_sig_text(const struct x509 *x, char *buf, size_t n);

/** x509_eku_name(oid): the short name of an extended key usage OID
 *  ("serverAuth"), or NULL if it has none here. */
const char *x509_eku_name(const struct der_tlv *oid);

/** x509_has_eku(x, name): non-zero if x has no EKU extension, or one that
 *  lists name ("serverAuth") or anyExtendedKeyUsage. */
int x509_has_eku(const struct x509 *x, const char *name);

#define X509_MIN_RSA_BITS 2048	/* the smallest RSA key x509_key_ok() takes */
#define X509_MIN_EC_BITS 256	/* the smallest EC curve it takes */

/** x509_key_ok(x): non-zero if the subject key is strong enough: RSA of
 *  at least X509_MIN_RSA_BITS bits, EC on a named curve of at least
 *  X509_MIN_EC_BITS bits, Ed25519 or Ed448.  0 for anything else (a smaller
 *  key, explicit EC parameters, an unknown curve or key type). */
int x509_key_ok(const struct x509 *x);

/** x509_sig_ok(x): 0 if x is signed with MD2, MD4, MD5 or SHA-1 (RSA,
 *  ECDSA, DSA, or RSASSA-PSS whose hash is one of those), non-zero for
 *  anything else.  Only the hash is judged: an algorithm wolfSSL does not
 *  know fails its own signature check. */
int x509_sig_ok(const struct x509 *x);

/** x509_self_issued(x): non-zero if x's issuer and subject are the same
 *  Name, byte for byte (a root, or a self-signed certificate). */
int x509_self_issued(const struct x509 *x);

/** x509_crl_parse(der, len, issuer, next_update, why): the issuer Name and
 *  nextUpdate of one DER CRL (RFC 5280 5.1); *next_update is 0 when the CRL
 *  has none.  issuer borrows from der.  Returns 0, or -1 with a short reason
 *  in *why. */
int x509_crl_parse(const unsigned char *der, size_t len, struct der_tlv *issuer,
    time_t *next_update, const char **why);

/** x509_time_text(t, buf, n): t as "2025-01-31T12:00:00Z".  Returns buf. */
const char *x509_time_text(time_t t, char *buf, size_t n);

#endif
