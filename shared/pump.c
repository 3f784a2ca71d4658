/* pump: the per-byte path of a connection, through the ends' transports
 * (xport.h) and the filter stages (filter.h) only.
 *
 * The transports run on libev's level-triggered watchers: every read,
 * write, handshake or shutdown attempt that cannot go on records what it
 * waits for (EV_READ or EV_WRITE, wolfSSL may want either for any call),
 * and after each event pump_update() moves both directions until nothing
 * moves, then derives the watcher set from what is still wanted; a
 * connection that would go on past CONN_TURN bytes yields to the others and
 * resumes by its turn timer.  wolfSSL and the TLS read-ahead may hold bytes
 * the socket no longer signals, so a direction is retried whenever its ring
 * has room, not only when its socket is readable.  EOFs are passed on
 * once their ring is written: a clean one as a clean end, a cut one as a
 * reset (conn_drop(CONN_TRUNCATED)). */
#include "conn_int.h"

#include "filter.h"
#include "ring.h"
#include "xport.h"

#define CONN_TURN 65536	/* bytes a connection reads before the others' turn */

/* end_eof(c, k, truncated): nothing more will come from end k. */
static int end_eof(struct conn *c, int k, int truncated)
{
	c->end[k].eof = 1;
	c->end[k].truncated = (unsigned char)truncated;
	ring_trim(&c->ring[k]);
	if (c->state == CONN_RELAYING)
		conn_drain_arm(c);
	return 1;
}

/* end_fail(c, why, k): end k's transport failed: drop c, with the
 * transport's reason and wolfSSL's code if there is one.  Returns -1. */
static int end_fail(struct conn *c, enum conn_reason why, int k)
{
	struct end *e = &c->end[k];

	if (e->code != 0)
		c->tls_code = e->code;
	return conn_drop(c, why, k, e->why);
}

/* want(rc): the event an XPORT_WANT_* code waits for. */
static unsigned char want(int rc)
{
	return rc == XPORT_WANT_READ ? EV_READ : EV_WRITE;
}

/* fill(c, k): read from end k into ring[k].  1 progress, 0 blocked, -1 dropped. */
static int fill(struct conn *c, int k)
{
	struct end *e = &c->end[k];
	struct ring *r = &c->ring[k];
	unsigned char *p;
	size_t n;
	int rc;

	if (!e->ready || e->eof || e->rwait || ring_full(r))
		return 0;
	if ((p = ring_wspace(r, &n)) == NULL)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "ring");
	rc = e->ops->read(e, p, n);
	if (e->ssl != NULL && !c->ticketed && c->s->t->role->tls_read != NULL)
		c->s->t->role->tls_read(c, e->ssl);
	if (rc > 0) {
		ring_commit(r, (size_t)rc);
		c->bytes[k] += (unsigned long long)rc;
		return 1;
	}
	ring_trim(r);
	switch (rc) {
	case XPORT_WANT_READ:
	case XPORT_WANT_WRITE:
		e->rwait = want(rc);
		return 0;
	case XPORT_END:
		return end_eof(c, k, 0);
	case XPORT_CUT:
		return end_eof(c, k, 1);	/* deliver what came before the cut */
	default:
		return end_fail(c, CONN_READ_ERROR, k);
	}
}

/* shut(c, d): pass the EOF on to end d (close_notify and/or FIN). */
static int shut(struct conn *c, struct end *d)
{
	int rc;

	if (d->fd < 0) {	/* a probe's missing sender */
		d->shut = 1;
		return 1;
	}
	if ((rc = d->ops->shutdown(d)) == XPORT_WANT_READ || rc == XPORT_WANT_WRITE) {
		d->wwait = want(rc);
		return 0;
	}
	if (rc < 0)
		return end_fail(c, CONN_WRITE_ERROR, d == &c->end[1]);
	d->shut = 1;
	return 1;
}

/*-
 * stage(c, k, &eof): run direction k's filter stage from ring[k] into its
 * output ring until it is idle.  *eof: end k's EOF may be passed on once
 * the output is written: the stage took all its input (or, after a cut,
 * all it could).  1 progress, 0 none, -1 dropped: a stage error drops c
 * abortively, on the side that sent the bytes.
 */
static int stage(struct conn *c, int k, int *eof)
{
	struct filter *f = c->filter[k];
	struct ring *in = &c->ring[k];
	const struct end *e = &c->end[k];
	int last = e->eof && !e->truncated, rc, moved = 0;

	while ((rc = f->ops->run(f, in, &f->out, last)) == FILTER_PROGRESS)
		moved = 1;
	ring_trim(&f->out);
	if (rc < 0)
		return conn_drop(c, CONN_BAD_INPUT, k, f->why != NULL ? f->why : "filter");
	if (last && ring_len(in) > 0 && ring_len(&f->out) == 0)
		return conn_drop(c, CONN_BAD_INPUT, k, "filter_stalled");
	*eof = e->eof && (ring_len(in) == 0 || e->truncated);
	return moved;
}

/* flush(c, k): write ring[k] (through its stage, if any) to the other end,
 * then pass on an EOF from end k.  1 progress, 0 blocked, -1 dropped. */
static int flush(struct conn *c, int k)
{
	struct end *d = &c->end[1 - k];
	struct ring *r = &c->ring[k];
	const unsigned char *p;
	size_t n;
	int rc, eof = c->end[k].eof, staged = 0;

	if (!d->ready || d->shut || d->wwait)
		return 0;
	if (c->filter[k] != NULL) {
		if ((staged = stage(c, k, &eof)) < 0)
			return -1;
		r = &c->filter[k]->out;
	}
	if (d->fd < 0)		/* a probe has no sender: what upstream says is dropped */
		ring_consume(r, ring_len(r));
	if (ring_len(r) == 0) {
		if (!eof)
			return staged;
		/* What came before a cut was delivered; the cut itself is
		 * passed on as one (RST), never as a clean end. */
		if (c->end[k].truncated)
			return conn_drop(c, CONN_TRUNCATED, k, c->end[k].why);
		return shut(c, d);
	}
	/* Each write carries MSG_MORE while the ring holds bytes beyond it, so
	 * the kernel sends a burst as one segment; the last write of a burst,
	 * without it, pushes them all.  pump_update() goes on writing until the
	 * ring is empty or the socket is full, so nothing is held back. */
	p = ring_rdata(r, &n);
	rc = d->ops->write(d, p, n, ring_len(r) > n);
	if (rc > 0) {
		ring_consume(r, (size_t)rc);
		c->sent[k] += (unsigned long long)rc;
		metrics_add(&c->s->m.bytes[k], (unsigned long long)rc);
		return 1;
	}
	if (rc == XPORT_WANT_READ || rc == XPORT_WANT_WRITE) {
		d->wwait = want(rc);
		return staged;
	}
	return end_fail(c, CONN_WRITE_ERROR, 1 - k);
}

/* pump_update(c): move bytes both ways until nothing moves or c has read
 * CONN_TURN bytes, end the connection if both directions are done, else set
 * the watchers. */
void pump_update(struct conn *c)
{
	unsigned long long start = c->bytes[0] + c->bytes[1];
	int k, rc, moved = 0, progress, cut = 0;

	do {
		progress = 0;
		/* Upstream's direction first: an upstream that has gone is
		 * seen before more of the sender's bytes are sent into it. */
		for (k = 1; k >= 0; k--) {
			/* Fill the ring, then write all of it out: fewer,
			 * larger reads and writes than alternating them. */
			while ((rc = fill(c, k)) > 0)
				progress = 1;
			if (rc < 0)
				return;
			while ((rc = flush(c, k)) > 0)
				progress = 1;
			if (rc < 0)
				return;
		}
		moved |= progress;
		cut = progress && c->bytes[0] + c->bytes[1] - start >= CONN_TURN;
	} while (progress && !cut);
	if (moved)
		c->last = ev_now(c->s->loop);
	if (cut) {
		/*-
		 * A sender that always has a full buffer waiting and a receiver
		 * that never pushes back would keep the loop above going for
		 * ever, and the worker's other connections would wait: measured,
		 * a 200-byte request/reply beside such a flood had a p99 of
		 * 64 ms and a max of 372 ms; with 64 KiB turns, 1.7 ms and
		 * 7.5 ms.  Bytes may wait inside wolfSSL or the read-ahead,
		 * where no socket event would report them, so the rest of the
		 * turn is a timer due at once: it runs in the next loop
		 * iteration, after the events pending now.  The watchers stay
		 * as they are until a turn ends by itself: setting them after
		 * every cut turn cost an epoll_ctl() per turn.
		 */
		ev_timer_start(c->s->loop, &c->turn);
		return;
	}

	if (c->end[0].shut && c->end[1].shut) {	/* EOF went both ways */
		conn_drop(c, CONN_DONE, SIDE_NONE, "done");
		return;
	}

	for (k = 0; k < 2; k++) {
		struct end *e = &c->end[k];
		int ev = e->hwait;

		if (e->ready && !e->eof && !ring_full(&c->ring[k]))
			ev |= e->rwait;
		if (e->ready && !e->shut && (ring_len(&c->ring[1 - k]) > 0 || c->end[1 - k].eof ||
		    (c->filter[1 - k] != NULL && ring_len(&c->filter[1 - k]->out) > 0)))
			ev |= e->wwait;
		if (e->fd >= 0) {
			conn_watch(c, &e->rio, ev & EV_READ);
			conn_watch(c, &e->wio, ev & EV_WRITE);
		}
	}
}

