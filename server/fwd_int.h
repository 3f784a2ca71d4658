/* fwd_int: what the forward reader's files share (fwd.c, fwd_claims.c). */
#ifndef TLSFWD_FWD_INT_H
#define TLSFWD_FWD_INT_H

#include <stddef.h>
#include <stdint.h>

#define FWD_CLAIMS_DEPTH	32	/* msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE) */

/* What the objects of a byte stream claim, followed across the pieces it
 * arrives in (fwd_claims_feed()). */
struct fwd_claims {
	uint64_t pos;		/* bytes of the current top-level object so far */
	uint64_t owed;		/* elements its open containers still expect */
	uint64_t skip;		/* body bytes (str, bin, ext, number) still to pass */
	uint32_t left[FWD_CLAIMS_DEPTH];	/* elements each open container expects */
	int depth;
	unsigned char hdr[5];	/* a header cut between two pieces */
	unsigned hlen;
};

/** fwd_claims_feed(cl, p, n, one): follow the msgpack headers in *n more
 *  bytes at p.  With one, stop after the first top-level object (*n is then
 *  how far it went).  0; -1 if a container claims more than FWD_EVENT_MAX
 *  allows or nests deeper than msgpack-c would; -2 if a byte starts no
 *  object. */
int fwd_claims_feed(struct fwd_claims *cl, const unsigned char *p, size_t *n, int one);

#endif
