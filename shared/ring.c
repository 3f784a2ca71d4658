/* ring: fixed byte buffers with backpressure; see ring.h. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>

unsigned char *ring_wspace(struct ring *r, size_t *n)
{
	size_t wr;

	*n = 0;
	if (r->len == RING_SIZE)
		return NULL;
	if (r->buf == NULL) {
		if ((r->buf = malloc(RING_SIZE)) == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		r->rd = 0;
	}
	wr = (r->rd + r->len) % RING_SIZE;
	*n = wr < r->rd ? r->rd - wr : RING_SIZE - wr;
	return r->buf + wr;
}

void ring_commit(struct ring *r, size_t n)
{
	r->len += n;
}

const unsigned char *ring_rdata(const struct ring *r, size_t *n)
{
	*n = r->len == 0 ? 0 : (r->rd + r->len <= RING_SIZE ? r->len : RING_SIZE - r->rd);
	return r->buf != NULL ? r->buf + r->rd : NULL;
}

void ring_consume(struct ring *r, size_t n)
{
	r->rd = (r->rd + n) % RING_SIZE;
	r->len -= n;
	if (r->len == 0)
		ring_trim(r);
}

void ring_trim(struct ring *r)
{
	if (r->len == 0) {
		free(r->buf);
		r->buf = NULL;
		r->rd = 0;
	}
}

void ring_free(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
	r->rd = r->len = 0;
}
