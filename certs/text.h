/* text: a certificate's parts as tlsfwd-certs prints them (show) and the
 * PEM it writes; the names go through the daemons' writers (x509_name.h). */
#ifndef TLSFWD_CERTS_TEXT_H
#define TLSFWD_CERTS_TEXT_H

#include <stddef.h>

#include "der.h"

/** text_name(name, buf, n): a Name as "C=US, O=Example, CN=host", in
 *  encoded order, RFC 4514 escapes for ',', '+', '"', '\\', '<', '>', ';'
 *  and '#'/space where they need them, other bytes outside printable ASCII
 *  as \XX.  Returns buf (truncated to n - 1 bytes if it must be). */
const char *text_name(const struct der_tlv *name, char *buf, size_t n);

/** text_gn(gn, buf, n): one GeneralName in --san syntax: "DNS:name",
 *  "IP:10.0.0.5", "URI:spiffe://...", "email:a@b", "DirName:CN=x",
 *  "RID:1.2.3", "othername:1.2.3" or "[n]:hex".  Returns buf. */
const char *text_gn(const struct der_tlv *gn, char *buf, size_t n);

/** text_pem(der, len, pem, pemlen): a DER certificate as PEM in a malloc'd
 *  buffer the caller frees.  Returns 0 or -1. */
int text_pem(const unsigned char *der, size_t len, char **pem, size_t *pemlen);

#endif
