/* der: a small DER reader; see der.h. */
#include "der.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/** der_init(d, p, len): a cursor over len bytes at p (not copied). */
void der_init(struct der *d, const unsigned char *p, size_t len)
{
	d->p = p;
	d->len = len;
}

/** der_enter(t, d): a cursor over the contents of t. */
void der_enter(const struct der_tlv *t, struct der *d)
{
	der_init(d, t->val, t->len);
}

/** der_read(d, t): read the next element into t.  Returns 1, 0 at the end of
 *  the run, or -1 when the bytes are not DER (multi-byte tag, indefinite or
 *  overlong length, element running past the end). */
int der_read(struct der *d, struct der_tlv *t)
{
	size_t hdr = 2, len, i, nlen;

	if (d->len == 0)
		return 0;
	if (d->len < 2 || (d->p[0] & 0x1f) == 0x1f)
		return -1;
	len = d->p[1];
	if (len & 0x80) {
		nlen = len & 0x7f;
		/* 0x80 is BER's indefinite length; DER has none, nor lengths
		 * over 4 bytes here, nor a long form for what fits the short. */
		if (nlen == 0 || nlen > 4 || d->len < 2 + nlen || d->p[2] == 0)
			return -1;
		len = 0;
		for (i = 0; i < nlen; i++)
			len = (len << 8) | d->p[2 + i];
		if (len < 0x80)
			return -1;
		hdr += nlen;
	}
	if (len > d->len - hdr)
		return -1;
	t->tag = d->p[0];
	t->raw = d->p;
	t->rawlen = hdr + len;
	t->val = d->p + hdr;
	t->len = len;
	d->p += t->rawlen;
	d->len -= t->rawlen;
	return 1;
}

/** der_expect(d, tag, t): read the next element and require its tag.
 *  Returns 0, or -1 at the end, on malformed input or on another tag. */
int der_expect(struct der *d, unsigned tag, struct der_tlv *t)
{
	if (der_read(d, t) != 1 || t->tag != tag)
		return -1;
	return 0;
}

/** der_peek(d): the tag of the next element, or -1 at the end. */
int der_peek(const struct der *d)
{
	return d->len > 0 ? d->p[0] : -1;
}

/** der_oid_is(t, oid, n): non-zero if t is an OID whose contents are the n
 *  bytes at oid. */
int der_oid_is(const struct der_tlv *t, const unsigned char *oid, size_t n)
{
	return t->tag == DER_OID && t->len == n && memcmp(t->val, oid, n) == 0;
}

/** der_oid_text(val, len, buf, n): the dotted form ("2.5.29.17") of OID
 *  contents.  Returns buf; "(bad OID)" if the contents are malformed. */
const char *der_oid_text(const unsigned char *val, size_t len, char *buf, size_t n)
{
	size_t i, off = 0;
	uint64_t arc = 0;
	int first = 1, w;

	if (n == 0)
		return buf;
	buf[0] = '\0';
	if (len == 0 || (val[len - 1] & 0x80))
		goto bad;
	for (i = 0; i < len; i++) {
		if (arc == 0 && val[i] == 0x80)
			goto bad;	/* non-minimal arc */
		if (arc >> 56)
			goto bad;
		arc = (arc << 7) | (val[i] & 0x7f);
		if (val[i] & 0x80)
			continue;
		if (first) {
			unsigned top = arc < 40 ? 0 : arc < 80 ? 1 : 2;

			w = snprintf(buf + off, n - off, "%u.%llu", top,
			    (unsigned long long)(arc - 40 * top));
			first = 0;
		} else {
			w = snprintf(buf + off, n - off, ".%llu", (unsigned long long)arc);
		}
		if (w < 0 || (size_t)w >= n - off)
			goto bad;
		off += (size_t)w;
		arc = 0;
	}
	return buf;
bad:
	snprintf(buf, n, "(bad OID)");
	return buf;
}
