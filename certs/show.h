/* show: print what a certificate says, one "label: value" line per fact. */
#ifndef TLSFWD_CERTS_SHOW_H
#define TLSFWD_CERTS_SHOW_H

#include <stdio.h>
#include <time.h>

#include "x509.h"

/** show_cert(out, x, now): subject, issuer, serial, validity and status at
 *  now, key, signature, basic constraints, SANs, key usage, EKU, key ids and
 *  both fingerprints.  Absent extensions print no line.  Returns 0 or -1. */
int show_cert(FILE *out, const struct x509 *x, time_t now);

/** show_fingerprints(out, x): the "sha256:<hex>" and "spki:<hex>" lines.
 *  Returns 0 or -1. */
int show_fingerprints(FILE *out, const struct x509 *x);

#endif
