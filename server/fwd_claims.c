/* fwd_claims: what msgpack headers claim, checked before msgpack-c sees them.
 *
 * msgpack-c allocates a container's elements as soon as it reads the
 * container's header (24 bytes an element), before any element arrived: five
 * bytes claiming 2^32 elements would ask for 96 GiB.  So before msgpack-c
 * sees bytes, fwd_claims_feed() follows the headers (only the headers: msgpack-c
 * still decodes everything) and refuses an object whose containers claim
 * more elements than FWD_EVENT_MAX bytes can hold (each takes a byte at
 * least).  What msgpack-c allocates for one event is then at most 24 bytes
 * per byte of it.
 */
#include "fwd.h"
#include "fwd_int.h"

/* head_len(b): the length of the header that starts with b (the type byte
 * and its length or count bytes), body: the fixed body after it; 0 for a
 * byte that starts no object. */
static unsigned head_len(unsigned char b, unsigned *body)
{
	*body = 0;
	if (b <= 0x7f || b >= 0xe0 || (b >= 0x80 && b <= 0xbf) || (b >= 0xc0 && b <= 0xc3 && b != 0xc1))
		return 1;
	switch (b) {
	case 0xc4: case 0xc7: case 0xd9: return 2;	/* bin8, ext8, str8: 1-byte length */
	case 0xc5: case 0xc8: case 0xda: case 0xdc: case 0xde: return 3;
	case 0xc6: case 0xc9: case 0xdb: case 0xdd: case 0xdf: return 5;
	case 0xca: *body = 4; return 1;
	case 0xcb: *body = 8; return 1;
	case 0xcc: case 0xd0: *body = 1; return 1;
	case 0xcd: case 0xd1: *body = 2; return 1;
	case 0xce: case 0xd2: *body = 4; return 1;
	case 0xcf: case 0xd3: *body = 8; return 1;
	case 0xd4: *body = 2; return 1;		/* fixext 1..16: type byte and data */
	case 0xd5: *body = 3; return 1;
	case 0xd6: *body = 5; return 1;
	case 0xd7: *body = 9; return 1;
	case 0xd8: *body = 17; return 1;
	default: return 0;			/* 0xc1 */
	}
}

/* claims_done(cl): one element ended: its container expects one less; a
 * container whose last element came ends in turn.  1 when a top-level
 * object ended. */
static int claims_done(struct fwd_claims *cl)
{
	while (cl->depth > 0) {
		cl->owed--;
		if (--cl->left[cl->depth - 1] > 0)
			return 0;
		cl->depth--;
	}
	cl->pos = 0;
	return 1;
}

/*-
 * fwd_claims_feed(cl, p, n, one): follow the headers in n more bytes at p.  With
 * one, stop after the first top-level object (*n is then how far it went).
 * 0; -1 if a container claims more than FWD_EVENT_MAX allows or nests
 * deeper than msgpack-c would; -2 if a byte starts no object (msgpack-c is
 * given no such bytes).
 */
int fwd_claims_feed(struct fwd_claims *cl, const unsigned char *p, size_t *n, int one)
{
	size_t i = 0;

	while (i < *n) {
		unsigned hl, body;
		uint64_t len = 0, count = 0;
		unsigned char b;

		if (cl->skip > 0) {
			size_t k = *n - i < cl->skip ? *n - i : (size_t)cl->skip;

			cl->skip -= k;
			cl->pos += k;
			i += k;
			if (cl->skip == 0 && claims_done(cl) && one)
				break;
			continue;
		}
		cl->hdr[cl->hlen++] = p[i++];
		cl->pos++;
		if ((hl = head_len(cl->hdr[0], &body)) == 0)
			return -2;
		if (cl->hlen < hl)
			continue;
		b = cl->hdr[0];
		for (unsigned k = 1; k < hl; k++)
			len = len << 8 | cl->hdr[k];
		cl->hlen = 0;
		if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
			count = (b & 0xf0) == 0x90 ? (uint64_t)(b & 0x0f) : len;
		else if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
			count = 2 * ((b & 0xf0) == 0x80 ? (uint64_t)(b & 0x0f) : len);
		else if ((b & 0xe0) == 0xa0)
			body = b & 0x1f;
		else if (hl > 1)
			len += (b >= 0xc7 && b <= 0xc9);	/* ext: the type byte */
		if (count > 0) {
			if (cl->depth == FWD_CLAIMS_DEPTH || cl->pos + cl->owed + count > FWD_EVENT_MAX)
				return -1;
			cl->left[cl->depth++] = (uint32_t)count;
			cl->owed += count;
			continue;
		}
		cl->skip = hl > 1 && count == 0 && !((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd ||
		    (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) ? len : body;
		if (cl->pos + cl->skip + cl->owed > FWD_EVENT_MAX)
			return -1;
		if (cl->skip == 0 && claims_done(cl) && one)
			break;
	}
	*n = i;
	return 0;
}

