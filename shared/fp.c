/* fp: certificate and public-key fingerprints; see fp.h for the format. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "fp.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "x509.h"

/** fp_compute(x, kind, out): the SHA-256 of x's DER (FP_CERT) or of its
 *  SubjectPublicKeyInfo (FP_SPKI) into out.  Returns 0 or -1. */
int fp_compute(const struct x509 *x, enum fp_kind kind, unsigned char out[FP_LEN])
{
	const unsigned char *p = kind == FP_CERT ? x->der : x->spki.raw;
	size_t n = kind == FP_CERT ? x->derlen : x->spki.rawlen;

	return wc_Sha256Hash(p, (word32)n, out) == 0 ? 0 : -1;
}

/** fp_hex(p, n, buf, bufsz): n bytes as lowercase hex without separators,
 *  NUL-terminated; only whole bytes that fit in bufsz are written.
 *  Returns buf. */
const char *fp_hex(const unsigned char *p, size_t n, char *buf, size_t bufsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n && o + 2 < bufsz; i++) {
		buf[o++] = hex[p[i] >> 4];
		buf[o++] = hex[p[i] & 15];
	}
	if (bufsz > 0)
		buf[o] = '\0';
	return buf;
}

/** fp_text(kind, digest, buf): "sha256:<hex>" or "spki:<hex>" into buf, which
 *  holds FP_TEXT_MAX bytes.  Returns buf. */
const char *fp_text(enum fp_kind kind, const unsigned char digest[FP_LEN], char *buf)
{
	size_t off;

	off = (size_t)snprintf(buf, FP_TEXT_MAX, "%s:", kind == FP_CERT ? "sha256" : "spki");
	fp_hex(digest, FP_LEN, buf + off, FP_TEXT_MAX - off);
	return buf;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/** fp_parse(s, kind, out, why): read a fingerprint in any of the accepted
 *  forms.  Returns 0, or -1 with a short reason in *why. */
int fp_parse(const char *s, enum fp_kind *kind, unsigned char out[FP_LEN], const char **why)
{
	static const struct {
		const char *prefix;
		enum fp_kind kind;
	} prefixes[] = {
		{ "sha256 Fingerprint=", FP_CERT },	/* openssl x509 -fingerprint */
		{ "sha256:", FP_CERT },
		{ "spki:", FP_SPKI },
	};
	size_t i, n = 0;
	int colons = -1;	/* unknown until the third character */

	while (isspace((unsigned char)*s))
		s++;
	*kind = FP_CERT;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i].prefix);

		if (strncasecmp(s, prefixes[i].prefix, pl) == 0) {
			*kind = prefixes[i].kind;
			s += pl;
			break;
		}
	}
	if (i == sizeof(prefixes) / sizeof(prefixes[0]) && strchr(s, '=') != NULL) {
		*why = "unknown fingerprint prefix (expected sha256: or spki:)";
		return -1;
	}
	while (*s != '\0' && !isspace((unsigned char)*s)) {
		int hi, lo;

		if (n == FP_LEN) {
			*why = "too long for a SHA-256 fingerprint (64 hex digits)";
			return -1;
		}
		if (n > 0) {
			/* Either a colon between every pair or none at all. */
			if (colons < 0)
				colons = *s == ':';
			if (colons) {
				if (*s != ':') {
					*why = "expected ':' between hex pairs";
					return -1;
				}
				s++;
			}
		}
		hi = hexval((unsigned char)s[0]);
		lo = hi < 0 ? -1 : hexval((unsigned char)s[1]);
		if (hi >= 0 && (s[1] == '\0' || isspace((unsigned char)s[1]))) {
			*why = "odd number of hex digits";
			return -1;
		}
		if (hi < 0 || lo < 0) {
			if (strchr(s, ':') != NULL && strchr(s, ':') - s < 8 && n == 0)
				*why = "unknown fingerprint prefix (expected sha256: or spki:)";
			else
				*why = "not a hex digit";
			return -1;
		}
		out[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '\0') {
		*why = "unexpected text after the fingerprint";
		return -1;
	}
	if (n != FP_LEN) {
		*why = "too short for a SHA-256 fingerprint (64 hex digits)";
		return -1;
	}
	return 0;
}
