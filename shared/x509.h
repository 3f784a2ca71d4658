/* x509: read an X.509 certificate field by field, and a peer's identity as
 * an allow-list sees it.  Parsing is ours (der.c) so that every attribute,
 * name form and extension is seen exactly as encoded; PEM encoding and
 * hashing are wolfSSL's.  Used by the server (authorising a client) and by
 * tlsfwd-certs (show, fingerprint, the checks made on a CA before it signs). */
#ifndef TLSFWD_X509_H
#define TLSFWD_X509_H

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

/** x509_pem(der, len, pem, pemlen): a DER certificate as PEM in a malloc'd
 *  buffer the caller frees.  Returns 0 or -1. */
int x509_pem(const unsigned char *der, size_t len, char **pem, size_t *pemlen);

/** x509_name_text(name, buf, n): a Name as "C=US, O=Example, CN=host", in
 *  encoded order, RFC 4514 escapes for ',', '+', '"', '\\', '<', '>', ';'
 *  and '#'/space where they need them, other bytes outside printable ASCII
 *  as \XX.  Returns buf (truncated to n - 1 bytes if it must be). */
const char *x509_name_text(const struct der_tlv *name, char *buf, size_t n);

/** x509_name_line(name, buf, n): a Name on one line as OpenSSL's "compat"
 *  form prints it, "/C=US/O=Example/CN=host", in encoded order, '+' between
 *  the attributes of a multi-valued RDN.  Values are UTF-8; a '/', '+' or
 *  '\' inside a value gets a '\' before it (openssl leaves '\' alone), a
 *  control byte is shown as \xXX.  Returns buf (truncated to n - 1 bytes if
 *  it must be). */
const char *x509_name_line(const struct der_tlv *name, char *buf, size_t n);

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

#define X509_MIN_RSA_BITS 2048	/* the smallest RSA key x509_key_ok() takes */
#define X509_MIN_EC_BITS 256	/* the smallest EC curve it takes */
#define X509_PATH_MAX 16	/* certificates x509_chain_check() looks at */

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

/** x509_chain_check(peer, npeer, anchors, nanchors, anchored): the checks a
 *  careful CA client makes that wolfSSL 5.5.4 skips, on the path from
 *  peer[0] (the leaf; the rest as the peer sent them) to a trust anchor.
 *  The path is built by names and key identifiers: from each certificate to
 *  an anchor that issued it if there is one, else to a peer certificate that
 *  did; above the first anchor only anchors, up to a self-issued one; it
 *  stops where no issuer is found.  On that path:
 *    - every key is strong enough (x509_key_ok), anchors included: "weak_key";
 *    - no certificate but a self-issued one is signed with MD5 or SHA-1
 *      (x509_sig_ok): "weak_signature";
 *    - every issuer, anchors included, has basicConstraints CA:TRUE and,
 *      when it has a keyUsage, keyCertSign: "issuer_not_ca";
 *    - no issuer's pathLenConstraint is exceeded by the non-self-issued
 *      intermediates below it, anchors' included (wolfSSL ignores a
 *      self-signed root's): "path_length";
 *    - every name of every certificate below an issuer with nameConstraints
 *      (but self-issued intermediates) is within them: SAN dNSName, rfc822Name,
 *      URI (its host), iPAddress and directoryName, the subject as a
 *      directoryName, and the leaf's host-like CNs when it has no dNSName
 *      (wolfSSL checks DNS, email and directory names against the direct
 *      issuer only): "name_constraints".
 *  Returns NULL when all hold, else the reason; *anchored is set when the
 *  path reached an anchor. */
const char *x509_chain_check(const struct x509 *peer, size_t npeer,
    const struct x509 *anchors, size_t nanchors, int *anchored);

/** x509_crl_parse(der, len, issuer, next_update, why): the issuer Name and
 *  nextUpdate of one DER CRL (RFC 5280 5.1); *next_update is 0 when the CRL
 *  has none.  issuer borrows from der.  Returns 0, or -1 with a short reason
 *  in *why. */
int x509_crl_parse(const unsigned char *der, size_t len, struct der_tlv *issuer,
    time_t *next_update, const char **why);

/** x509_time_text(t, buf, n): t as "2025-01-31T12:00:00Z".  Returns buf. */
const char *x509_time_text(time_t t, char *buf, size_t n);

/* ---- a peer's identity ---- */

#define X509_SHA256_LEN 32
#define X509_ID_MAX_DER 65536	/* a larger certificate has no identity */

/* What an allow-list and the audit trail look at, read from one certificate.
 * The struct is read-only and public so that authz and the log read its
 * fields directly (and tests build one by hand); x509_identity_new() puts it,
 * its arrays and its strings in one allocation sized to the certificate.
 *
 * Names (cn, ou, dns, uri) are the encoded values decoded to UTF-8 and
 * nothing else: no escaping, so they compare byte for byte (BMPString and
 * UniversalString are converted, T61String is read as Latin-1).  A value
 * holding a NUL byte is left out: as a C string it could only be matched
 * truncated; so is one holding a code point beyond U+10FFFF, which has no
 * UTF-8 form.  Control bytes are kept; the log escapes them. */
struct x509_identity {
	const char *subject;		/* x509_name_line() of the subject */
	const char *issuer;		/* x509_name_line() of the issuer */
	const char *serial;		/* lowercase hex as openssl prints it ("01") */
	time_t not_before, not_after;
	const char *const *cn;		/* subject commonNames in encoded order; */
	size_t n_cn;			/*   cn[0] is the first (most have one) */
	const char *const *ou;		/* subject organizationalUnitNames */
	size_t n_ou;
	const char *const *dns;		/* SAN dNSNames */
	size_t n_dns;
	const char *const *uri;		/* SAN URIs */
	size_t n_uri;
	const char *const *ip;		/* SAN IPs: "10.0.0.5", "fd00::1" (inet_ntop) */
	size_t n_ip;
	unsigned char sha256[X509_SHA256_LEN];	/* of the certificate's DER */
	unsigned char spki_sha256[X509_SHA256_LEN];	/* of its SubjectPublicKeyInfo DER */
};

/** x509_identity_new(der, len, id, why): parse one DER certificate of at most
 *  X509_ID_MAX_DER bytes into *id, one malloc'd block the caller releases
 *  with x509_identity_free() and which does not borrow from der.  Returns 0,
 *  or -1 with a short reason in *why (not a certificate, too large, out of
 *  memory). */
int x509_identity_new(const unsigned char *der, size_t len, struct x509_identity **id,
    const char **why);

/** x509_identity_free(id): release what x509_identity_new() made; NULL is
 *  fine. */
void x509_identity_free(struct x509_identity *id);

#endif
