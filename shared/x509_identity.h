/* x509_identity: a peer's identity as an allow-list and the audit trail see
 * it, read from its certificate's DER into one allocation (the server's
 * verify callback makes one; authz matches rules against it). */
#ifndef TLSFWD_X509_IDENTITY_H
#define TLSFWD_X509_IDENTITY_H

#include <stddef.h>
#include <time.h>

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
