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

#include <pthread.h>

/* What a first byte says of its object: the length of its header (the
 * byte and its length or count bytes; 0: no object starts with it), the
 * body after the header when that is fixed, and its kind. */
struct head {
	unsigned char len, body, kind;
};

enum { K_SCALAR, K_ARRAY, K_MAP, K_BLOB, K_EXT };

static struct head heads[256];
static pthread_once_t heads_once = PTHREAD_ONCE_INIT;

static void heads_init(void)
{
	static const struct { unsigned char b, len, body, kind; } special[] = {
		{ 0xc0, 1, 0, K_SCALAR }, { 0xc2, 1, 0, K_SCALAR }, { 0xc3, 1, 0, K_SCALAR },
		{ 0xc4, 2, 0, K_BLOB }, { 0xc5, 3, 0, K_BLOB }, { 0xc6, 5, 0, K_BLOB },
		{ 0xc7, 2, 0, K_EXT }, { 0xc8, 3, 0, K_EXT }, { 0xc9, 5, 0, K_EXT },
		{ 0xca, 1, 4, K_SCALAR }, { 0xcb, 1, 8, K_SCALAR },
		{ 0xcc, 1, 1, K_SCALAR }, { 0xcd, 1, 2, K_SCALAR }, { 0xce, 1, 4, K_SCALAR },
		{ 0xcf, 1, 8, K_SCALAR }, { 0xd0, 1, 1, K_SCALAR }, { 0xd1, 1, 2, K_SCALAR },
		{ 0xd2, 1, 4, K_SCALAR }, { 0xd3, 1, 8, K_SCALAR },
		{ 0xd4, 1, 2, K_SCALAR }, { 0xd5, 1, 3, K_SCALAR }, { 0xd6, 1, 5, K_SCALAR },
		{ 0xd7, 1, 9, K_SCALAR }, { 0xd8, 1, 17, K_SCALAR },	/* fixext: type and data */
		{ 0xd9, 2, 0, K_BLOB }, { 0xda, 3, 0, K_BLOB }, { 0xdb, 5, 0, K_BLOB },
		{ 0xdc, 3, 0, K_ARRAY }, { 0xdd, 5, 0, K_ARRAY },
		{ 0xde, 3, 0, K_MAP }, { 0xdf, 5, 0, K_MAP },
	};
	unsigned b;
	size_t i;

	for (b = 0; b < 256; b++) {
		if (b <= 0x7f || b >= 0xe0)
			heads[b] = (struct head){ 1, 0, K_SCALAR };	/* fixint */
		else if (b <= 0x8f)
			heads[b] = (struct head){ 1, 0, K_MAP };
		else if (b <= 0x9f)
			heads[b] = (struct head){ 1, 0, K_ARRAY };
		else if (b <= 0xbf)
			heads[b] = (struct head){ 1, (unsigned char)(b & 0x1f), K_SCALAR };	/* fixstr */
	}
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		heads[special[i].b] = (struct head){ special[i].len, special[i].body, special[i].kind };
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
 * fwd_claims_feed(cl, p, n, one): follow the headers in n more bytes at p.
 * With one, stop after the first top-level object (*n is then how far it
 * went).  0; -1 if a container claims more than FWD_EVENT_MAX allows or
 * nests deeper than msgpack-c would; -2 if a byte starts no object
 * (msgpack-c is given no such bytes).
 */
int fwd_claims_feed(struct fwd_claims *cl, const unsigned char *p, size_t *n, int one)
{
	size_t i = 0, end = *n;

	pthread_once(&heads_once, heads_init);
	while (i < end) {
		const unsigned char *h;
		const struct head *t;
		uint64_t len = 0, count;

		if (cl->skip > 0) {
			size_t k = end - i < cl->skip ? end - i : (size_t)cl->skip;

			cl->skip -= k;
			cl->pos += k;
			i += k;
			if (cl->skip == 0 && claims_done(cl) && one)
				break;
			continue;
		}
		if (cl->hlen == 0 && end - i >= 5) {	/* the whole header is here */
			h = p + i;
			if ((t = &heads[h[0]])->len == 0)
				return -2;
			i += t->len;
		} else {				/* it may be cut: gather it */
			cl->hdr[cl->hlen++] = p[i++];
			if ((t = &heads[cl->hdr[0]])->len == 0)
				return -2;
			if (cl->hlen < t->len) {
				cl->pos++;
				continue;
			}
			cl->pos -= cl->hlen - 1;	/* counted once below */
			h = cl->hdr;
			cl->hlen = 0;
		}
		cl->pos += t->len;
		for (unsigned k = 1; k < t->len; k++)
			len = len << 8 | h[k];
		switch (t->kind) {
		case K_ARRAY:
		case K_MAP:
			count = t->len == 1 ? (uint64_t)(h[0] & 0x0f) : len;
			if (t->kind == K_MAP)
				count *= 2;
			if (count == 0)
				break;
			if (cl->depth == FWD_CLAIMS_DEPTH || cl->pos + cl->owed + count > FWD_EVENT_MAX)
				return -1;
			cl->left[cl->depth++] = (uint32_t)count;
			cl->owed += count;
			continue;
		case K_BLOB:
			cl->skip = len;
			break;
		case K_EXT:
			cl->skip = len + 1;	/* and its type byte */
			break;
		default:
			cl->skip = t->body;
			break;
		}
		if (cl->pos + cl->skip + cl->owed > FWD_EVENT_MAX)
			return -1;
		if (cl->skip == 0 && claims_done(cl) && one)
			break;
	}
	*n = i;
	return 0;
}
