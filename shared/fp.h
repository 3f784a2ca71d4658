/* fp: certificate and public-key fingerprints, in the form the daemons'
 * allow-lists (authz.c, --pin-server) and tlsfwd-certs take.
 *
 *   sha256:<64 lowercase hex>   SHA-256 of the certificate's DER encoding
 *                               (what `openssl x509 -fingerprint -sha256` prints)
 *   spki:<64 lowercase hex>     SHA-256 of the DER SubjectPublicKeyInfo (pins
 *                               the key, so it survives a re-issued certificate)
 *
 * When reading one, the prefix is case-insensitive, the hex may be upper or
 * lower case and may have a colon between every two digits ("AB:CD:..."), and
 * `openssl x509 -fingerprint -sha256` output ("sha256 Fingerprint=AB:CD:...")
 * is taken as a certificate fingerprint.  Bare hex means sha256:. */
#ifndef TLSFWD_FP_H
#define TLSFWD_FP_H

#include <stddef.h>

#define FP_LEN 32			/* SHA-256 */
#define FP_TEXT_MAX (7 + 2 * FP_LEN + 1)	/* "sha256:" + hex + NUL */

enum fp_kind { FP_CERT, FP_SPKI };

struct x509;

/** fp_compute(x, kind, out): the SHA-256 of x's DER (FP_CERT) or of its
 *  SubjectPublicKeyInfo (FP_SPKI) into out.  Returns 0 or -1. */
int fp_compute(const struct x509 *x, enum fp_kind kind, unsigned char out[FP_LEN]);

/** fp_text(kind, digest, buf): "sha256:<hex>" or "spki:<hex>" into buf, which
 *  holds FP_TEXT_MAX bytes.  Returns buf. */
const char *fp_text(enum fp_kind kind, const unsigned char digest[FP_LEN], char *buf);

/** fp_hex(p, n, buf, bufsz): n bytes as lowercase hex without separators,
 *  NUL-terminated; only whole bytes that fit in bufsz are written.  The one
 *  hex encoder of the tree (fingerprints, serials, key ids, odd SANs).
 *  Returns buf. */
const char *fp_hex(const unsigned char *p, size_t n, char *buf, size_t bufsz);

/** fp_parse(s, kind, out, why): read a fingerprint in any of the accepted
 *  forms.  Returns 0, or -1 with a short reason in *why. */
int fp_parse(const char *s, enum fp_kind *kind, unsigned char out[FP_LEN], const char **why);

#endif
