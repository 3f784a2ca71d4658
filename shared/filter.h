/* filter: an optional stage on one direction of a connection, between the
 * ring its bytes are read into and the end that writes them out.  It may look
 * at and rewrite the bytes (the place for a forward-protocol reader): it
 * consumes from the input ring, produces into its own output ring (which the
 * pump writes), and may hold back a partial message.  Both rings are
 * RING_SIZE and hold memory only while they hold bytes; whatever else the
 * stage keeps must be as bounded, whatever its input claims.  A direction
 * with no stage (NULL) is written straight from its ring. */
#ifndef TLSFWD_FILTER_H
#define TLSFWD_FILTER_H

#include "ring.h"

enum {
	FILTER_ERROR = -1,	/* bad input: the connection is dropped abortively */
	FILTER_IDLE = 0,	/* nothing to do until more input or room in out */
	FILTER_PROGRESS = 1,	/* consumed or produced bytes */
};

struct filter;

struct filter_ops {
	/* run(f, in, out, eof): move bytes from in (ring_rdata, ring_consume)
	 * to out (ring_wspace, ring_commit).  eof: in holds the last bytes of
	 * the stream; the stage must then consume all of them and emit what
	 * it held (an incomplete message is an error).  Returns FILTER_*; on
	 * FILTER_ERROR f->why says why, for the log. */
	int (*run)(struct filter *f, struct ring *in, struct ring *out, int eof);
	/* free(f): free f (its out ring is freed by the pump). */
	void (*free)(struct filter *f);
};

struct filter {
	const struct filter_ops *ops;
	struct ring out;	/* what the pump writes to the end */
	const char *why;	/* after FILTER_ERROR: the reason */
	const char *tag;	/* and the request's tag when the reason is about it
				 * (logged as tag=), or NULL; a stage is made zeroed */
};

/** filter_free(f): free the stage f and its output ring; f may be NULL. */
void filter_free(struct filter *f);

#endif
