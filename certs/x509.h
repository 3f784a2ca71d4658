/* x509: read an X.509 certificate field by field, for show, fingerprint and
 * the checks made on a CA before it signs.  Parsing is ours (der.c) so that
 * every attribute, name form and extension is seen exactly as encoded;
 * PEM decoding and hashing are wolfSSL's. */
#ifndef TLSFWD_CERTS_X509_H
#define TLSFWD_CERTS_X509_H

#include <stddef.h>
#include <time.h>

#include "der.h"

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
};

/** x509_parse(x, der, len, why): parse one DER certificate into x.  Returns
 *  0, or -1 with a short reason in *why.  x borrows from der. */
int x509_parse(struct x509 *x, const unsigned char *der, size_t len, const char **why);

/** x509_load(path, der, len, err, errsz): read the first certificate of a
 *  PEM or DER file into a malloc'd DER buffer the caller frees.  Returns 0, or
 *  -1 with "path: cause" in err. */
int x509_load(const char *path, unsigned char **der, size_t *len, char *err, size_t errsz);

/** x509_pem(der, len, pem, pemlen): a DER certificate as PEM in a malloc'd
 *  buffer the caller frees.  Returns 0 or -1. */
int x509_pem(const unsigned char *der, size_t len, char **pem, size_t *pemlen);

/** x509_name_text(name, buf, n): a Name as "C=US, O=Example, CN=host", in
 *  encoded order, RFC 4514 escapes for ',', '+', '"', '\\', '<', '>', ';'
 *  and '#'/space where they need them, other bytes outside printable ASCII
 *  as \XX.  Returns buf (truncated to n - 1 bytes if it must be). */
const char *x509_name_text(const struct der_tlv *name, char *buf, size_t n);

/** x509_name_cn(name, buf, n): the last commonName of a Name as UTF-8, or ""
 *  if there is none.  Returns buf. */
const char *x509_name_cn(const struct der_tlv *name, char *buf, size_t n);

/** x509_gn_text(gn, buf, n): one GeneralName in --san syntax: "DNS:name",
 *  "IP:10.0.0.5", "URI:spiffe://...", "email:a@b", "DirName:CN=x",
 *  "RID:1.2.3", "othername:1.2.3" or "[n]:hex".  Returns buf. */
const char *x509_gn_text(const struct der_tlv *gn, char *buf, size_t n);

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

/** x509_time_text(t, buf, n): t as "2025-01-31T12:00:00Z".  Returns buf. */
const char *x509_time_text(time_t t, char *buf, size_t n);

#endif
