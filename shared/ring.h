/* ring: a fixed-capacity byte ring for one direction of a tunnel.  The memory
 * is taken on first use and given back whenever the ring drains, so an idle
 * connection holds no buffer; a full ring is the backpressure signal. */
#ifndef TLSFWD_RING_H
#define TLSFWD_RING_H

#include <stddef.h>

#define RING_SIZE 32768		/* bytes per direction; the memory bound */

struct ring {
	unsigned char *buf;	/* NULL while empty */
	size_t rd;		/* offset of the first unread byte */
	size_t len;		/* bytes held */
};

/** ring_wspace(r, &n): contiguous free space to read into (n bytes, > 0), or
 *  NULL with n = 0 when the ring is full or memory ran out (errno ENOMEM). */
unsigned char *ring_wspace(struct ring *r, size_t *n);

/** ring_commit(r, n): n bytes were written at ring_wspace(). */
void ring_commit(struct ring *r, size_t n);

/** ring_rdata(r, &n): the contiguous bytes at the front (n may be 0). */
const unsigned char *ring_rdata(const struct ring *r, size_t *n);

/** ring_consume(r, n): drop n bytes from the front; frees the buffer when empty. */
void ring_consume(struct ring *r, size_t n);

/** ring_trim(r): free the buffer if the ring is empty. */
void ring_trim(struct ring *r);

/** ring_free(r): free the buffer and forget its contents. */
void ring_free(struct ring *r);

static inline size_t ring_len(const struct ring *r) { return r->len; }
static inline int ring_full(const struct ring *r) { return r->len == RING_SIZE; }

#endif
