/* pins: the client's --pin-server set: certificate (sha256:) and key
 * (spki:) fingerprints the server's certificate must match one of. */
#ifndef TLSFWD_PINS_H
#define TLSFWD_PINS_H

#include <stddef.h>

#include "fp.h"

struct x509_identity;

struct pins {
	int n;
	struct pin {
		enum fp_kind kind;
		unsigned char digest[FP_LEN];
		char text[FP_TEXT_MAX];
	} v[];
};

/** pins_parse(text, pin, why, whysz): one --pin-server value: sha256:HEX,
 *  fingerprint:HEX, spki:HEX, bare HEX (a certificate fingerprint) or
 *  openssl's "sha256 Fingerprint=..." line.  0, or -1 with the reason. */
int pins_parse(const char *text, struct pin *pin, char *why, size_t whysz);

/** pins_match(p, id): the first pin the certificate with identity id
 *  matches (its text is "sha256:<hex>" or "spki:<hex>"); NULL if none or
 *  id is NULL. */
const struct pin *pins_match(const struct pins *p, const struct x509_identity *id);

#endif
