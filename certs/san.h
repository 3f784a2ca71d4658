/* san: the --san option: "DNS:agg.example.com,IP:10.0.0.5,URI:spiffe://x/y,
 * email:ops@example.com" to DER GeneralName elements. */
#ifndef TLSFWD_CERTS_SAN_H
#define TLSFWD_CERTS_SAN_H

#include <stddef.h>

#include "der_buf.h"

/** san_parse(list, out, count, err, errsz): append one GeneralName element to
 *  out for each comma-separated TYPE:VALUE in list and add their number to
 *  *count.  TYPE is DNS, IP, URI or email (any case).  A comma ends a value
 *  except in a URI, where it does so only when a TYPE: follows.  Returns 0,
 *  or -1 with "--san 'item': cause" in err. */
int san_parse(const char *list, struct der_buf *out, int *count, char *err, size_t errsz);

#endif
