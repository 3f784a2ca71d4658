/* der: a small DER reader: reading a certificate field by field (x509*.c: a
 * peer's identity and chain in the daemons, show and fingerprint in
 * tlsfwd-certs).  The writer is tlsfwd-certs' own (certs/der_buf.h). */
#ifndef TLSFWD_DER_H
#define TLSFWD_DER_H

#include <stddef.h>

/* Tags used here (single-byte identifiers). */
#define DER_BOOLEAN	0x01
#define DER_INTEGER	0x02
#define DER_BIT_STRING	0x03
#define DER_OCTET_STRING 0x04
#define DER_NULL	0x05
#define DER_OID		0x06
#define DER_UTF8STRING	0x0c
#define DER_PRINTABLE	0x13
#define DER_T61STRING	0x14
#define DER_IA5STRING	0x16
#define DER_UTCTIME	0x17
#define DER_GENTIME	0x18
#define DER_UNIVERSAL	0x1c
#define DER_BMPSTRING	0x1e
#define DER_SEQUENCE	0x30
#define DER_SET		0x31
#define DER_CTX(n)	(0x80 | (n))	/* [n] IMPLICIT, primitive */
#define DER_CTX_CONS(n)	(0xa0 | (n))	/* [n] constructed or EXPLICIT */

/* A read cursor over a run of TLVs. */
struct der {
	const unsigned char *p;
	size_t len;
};

/* One element: its tag, its whole encoding and its contents. */
struct der_tlv {
	unsigned tag;
	const unsigned char *raw;	/* tag, length and contents */
	size_t rawlen;
	const unsigned char *val;	/* contents */
	size_t len;
};

/** der_init(d, p, len): a cursor over len bytes at p (not copied). */
void der_init(struct der *d, const unsigned char *p, size_t len);

/** der_enter(t, d): a cursor over the contents of t. */
void der_enter(const struct der_tlv *t, struct der *d);

/** der_read(d, t): read the next element into t.  Returns 1, 0 at the end of
 *  the run, or -1 when the bytes are not DER (multi-byte tag, indefinite or
 *  overlong length, element running past the end). */
int der_read(struct der *d, struct der_tlv *t);

/** der_expect(d, tag, t): read the next element and require its tag.
 *  Returns 0, or -1 at the end, on malformed input or on another tag. */
int der_expect(struct der *d, unsigned tag, struct der_tlv *t);

/** der_peek(d): the tag of the next element, or -1 at the end. */
int der_peek(const struct der *d);

/** der_oid_is(t, oid, n): non-zero if t is an OID whose contents are the n
 *  bytes at oid. */
int der_oid_is(const struct der_tlv *t, const unsigned char *oid, size_t n);

/** der_oid_text(val, len, buf, n): the dotted form ("2.5.29.17") of OID
 *  contents.  Returns buf; "(bad OID)" if the contents are malformed. */
const char *der_oid_text(const unsigned char *val, size_t len, char *buf, size_t n);

#endif
