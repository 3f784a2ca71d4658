/* x509_name: the names in a certificate as text: a Name's attributes walked
 * in encoded order and written on one line, and the writers every name and
 * string value goes through (UTF-8 from any string type, in one of four
 * escaping forms, never past the buffer).  Used by the identity a daemon
 * reads from a peer (x509_identity.c), the name constraints of a chain
 * (x509_chain.c) and tlsfwd-certs' printers (certs/text.c). */
#ifndef TLSFWD_X509_NAME_H
#define TLSFWD_X509_NAME_H

#include <stddef.h>

#include "der.h"

/* How x509_name_value() writes a value. */
enum x509_name_form {
	X509_NAME_RAW,		/* UTF-8, nothing escaped (identity names, matched exactly) */
	X509_NAME_TEXT,		/* UTF-8, controls and DEL as \XX (SANs in show) */
	X509_NAME_RFC4514,	/* X509_NAME_TEXT plus RFC 4514 escapes (a Name in show) */
	X509_NAME_LINE,		/* controls as \xXX, '/', '+' and '\\' escaped (x509_name_line) */
};

/** x509_name_put(buf, n, off, s, len): append len bytes of s to buf at *off,
 *  never past n - 1, keeping buf terminated; *off moves by what was written.
 *  With buf NULL only *off moves, by len: the same code measures what it
 *  would write. */
void x509_name_put(char *buf, size_t n, size_t *off, const char *s, size_t len);

/** x509_name_hex(buf, n, off, p, len): len bytes as lowercase hex (fp_hex),
 *  appended with x509_name_put(). */
void x509_name_hex(char *buf, size_t n, size_t *off, const unsigned char *p, size_t len);

/** x509_name_value(buf, n, off, v, form): a string value (any ASN.1 string
 *  type: BMPString and UniversalString converted, T61String read as
 *  Latin-1) as UTF-8 in the given form, appended with x509_name_put(). */
void x509_name_value(char *buf, size_t n, size_t *off, const struct der_tlv *v,
    enum x509_name_form form);

/** x509_name_unit(v): the code unit size of a string type: 4 for
 *  UniversalString, 2 for BMPString, 1 for the rest. */
size_t x509_name_unit(const struct der_tlv *v);

/** x509_name_has_nul(v): non-zero if the value decodes to a string holding
 *  U+0000, or a code point beyond U+10FFFF (a UniversalString can hold one):
 *  neither has a UTF-8 form that could be matched as it is. */
int x509_name_has_nul(const struct der_tlv *v);

/** x509_name_attr(oid, buf, n): the short name of an attribute type ("CN",
 *  "O", "emailAddress"), or its dotted OID written into buf when it has none
 *  here.  Returns the name or buf. */
const char *x509_name_attr(const struct der_tlv *oid, char *buf, size_t n);

/** x509_name_walk(name, fn, arg): call fn(oid, val, more, arg) for every
 *  attribute of a Name, in encoded order; more is set for the second and
 *  later attributes of one RDN.  Returns 0, or -1 if the Name is malformed
 *  (after the good part). */
int x509_name_walk(const struct der_tlv *name,
    void (*fn)(const struct der_tlv *oid, const struct der_tlv *val, int more, void *arg),
    void *arg);

/** x509_name_line(name, buf, n): a Name on one line as OpenSSL's "compat"
 *  form prints it, "/C=US/O=Example/CN=host", in encoded order, '+' between
 *  the attributes of a multi-valued RDN.  Values are UTF-8; a '/', '+' or
 *  '\' inside a value gets a '\' before it (openssl leaves '\' alone), a
 *  control byte is shown as \xXX.  Returns buf (truncated to n - 1 bytes if
 *  it must be). */
const char *x509_name_line(const struct der_tlv *name, char *buf, size_t n);

/** x509_name_line_n(name, buf, n): x509_name_line() into buf, or with buf
 *  NULL only measured.  Returns its length without the NUL. */
size_t x509_name_line_n(const struct der_tlv *name, char *buf, size_t n);

#endif
