/* conn: the life of one tunnelled connection — accept (and the role's
 * admission), the phase timer and the single teardown path, conn_drop().
 * Its upstream end (choice, turns, connect, retries, health, probes) is
 * conn_up.c.  Its TLS handshake is handshake.c, its bytes
 * pump.c (see there how the watchers follow what each end waits for). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn_int.h"
#include "filter.h"
#include "log.h"
#include "x509.h"
#include "xport.h"


/* How a connection ended.  Only CONN_DONE is a clean end: every other one
 * closes both sockets abortively (RST), so neither the sender nor Fluentd
 * can take a cut stream for a complete one.  A failure of the upstream side
 * (the server for the client, Fluentd for the server) is logged at warn
 * whatever its level here: the sender's own resets are its business. */
static const struct {
	const char *msg;
	enum log_level level;
	const char *outcome;	/* the metrics' name for it */
} reasons[] = {
	[CONN_DONE]		 = { "closed", LOG_DEBUG, "done" },
	[CONN_TRUNCATED]	 = { "closed without a clean end", LOG_INFO, "truncated" },
	[CONN_NOT_TLS]		 = { "refused: not TLS", LOG_WARN, "not_tls" },
	[CONN_HANDSHAKE_FAILED]	 = { "handshake failed", LOG_WARN, "handshake_failed" },
	[CONN_HANDSHAKE_TIMEOUT] = { "handshake timed out", LOG_WARN, "handshake_timeout" },
	[CONN_PREAUTH_DROPPED]	 = { "dropped: too many pending handshakes", LOG_WARN,
				     "preauth_dropped" },
	[CONN_CONNECT_FAILED]	 = { "upstream unreachable", LOG_WARN, "connect_failed" },
	[CONN_READ_ERROR]	 = { "read failed", LOG_INFO, "read_error" },
	[CONN_WRITE_ERROR]	 = { "write failed", LOG_INFO, "write_error" },
	[CONN_DRAIN_TIMEOUT]	 = { "drain timed out", LOG_INFO, "drain_timeout" },
	[CONN_NOMEM]		 = { "out of memory", LOG_ERROR, "out_of_memory" },
	[CONN_SHUTDOWN]		 = { "closed at shutdown", LOG_INFO, "shutdown" },
	[CONN_BAD_INPUT]	 = { "dropped: bad input", LOG_WARN, "bad_input" },
};


void conn_watch(struct conn *c, ev_io *w, int on)
{
	if (on && !ev_is_active(w))
		ev_io_start(c->s->loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(c->s->loop, w);
}

void conn_timer_arm(struct conn *c, ev_tstamp after)
{
	ev_timer_stop(c->s->loop, &c->timer);
	ev_timer_set(&c->timer, after, 0.);
	ev_timer_start(c->s->loop, &c->timer);
}

/* conn_end_close(e, abortive): stop e's watchers, free its transport (TLS),
 * close its socket. */
void conn_end_close(struct conn *c, struct end *e, int abortive)
{
	conn_watch(c, &e->rio, 0);
	conn_watch(c, &e->wio, 0);
	if (e->ops != NULL)
		e->ops->close(e, abortive);
}

/* conn_free(c, abortive): stop c's watchers and timer, free its TLS and
 * buffers, close both sockets (with RST if abortive) and forget c. */
static void conn_free(struct conn *c, int abortive)
{
	struct conn_set *s = c->s;
	struct tunnel *t = s->t;
	int i;

	handshake_forget(c);
	if (t->role->upstream_close != NULL)
		t->role->upstream_close(c);
	conn_turn_end(c);
	ev_timer_stop(s->loop, &c->timer);
	ev_timer_stop(s->loop, &c->turn);
	for (i = 0; i < 2; i++) {
		conn_end_close(c, &c->end[i], abortive);
		ring_free(&c->ring[i]);
		filter_free(c->filter[i]);
	}
	tls_policy_release(c->pol);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n--;
	if (!c->probe)
		atomic_fetch_sub(&t->active, 1);
	free(c);
}

/*-
 * conn_drop(c, why, side, detail): the one teardown path.  Logs once, naming
 * the side that failed, stops every watcher and the timer, frees TLS and
 * buffers, closes both sockets and forgets c.  Only a clean end (CONN_DONE)
 * closes gracefully; every other one resets both sockets, so whoever is on
 * the other side learns that what it sent or awaited went nowhere (a
 * sender's own buffer or acks take over), never a clean end of stream.
 * Returns -1 so callers can `return conn_drop(...)`.
 */
int conn_drop(struct conn *c, enum conn_reason why, enum conn_side side, const char *detail)
{
	static const char *const sides[] = { "peer", "upstream" };
	struct conn_set *s = c->s;
	struct tunnel *t = s->t;
	enum log_level level = reasons[why].level;

	if (side == SIDE_UPSTREAM && level > LOG_WARN)
		level = LOG_WARN;
	if (c->probe)
		level = LOG_DEBUG;	/* reach logs the changes, not each probe */
	if (log_enabled(level) && (c->probe || t->role->quiet == NULL ||
	    !t->role->quiet(c, level, reasons[why].msg, detail))) {
		char code[16];

		snprintf(code, sizeof(code), "%d", c->tls_code);
		/* sent, received: bytes delivered upstream, and back to the peer */
		log_kv(level, reasons[why].msg,
		    "peer=%s upstream=%s side=%s reason=%s subject=%s tag=%s tls_code=%s sent=%llu "
		    "received=%llu duration=%f", c->peer, c->tried ? t->ups.v[c->pos.up].spec : NULL,
		    side == SIDE_NONE ? NULL : sides[side], detail,
		    c->verdict != NULL && c->verdict->id != NULL ? c->verdict->id->subject : NULL,
		    c->filter[0] != NULL ? c->filter[0]->tag : NULL,
		    c->tls_code != 0 ? code : NULL, c->sent[0], c->sent[1],
		    ev_now(s->loop) - c->start);
	}
	if (c->probe) {
		conn_probe_done(c, why == CONN_DONE);
	} else {
		int denied = why == CONN_NOT_TLS || why == CONN_HANDSHAKE_FAILED ||
		    why == CONN_HANDSHAKE_TIMEOUT || why == CONN_PREAUTH_DROPPED;

		metrics_pair(&s->m.closed, reasons[why].outcome, detail);
		/* refused: the peer's own handshake (the server's end[0]) */
		if (denied && side != SIDE_UPSTREAM)
			metrics_pair(&s->m.refused, "handshake", detail);
		if (side == SIDE_UPSTREAM)
			conn_upstream_lost(s, c->pos.up, detail);
		if (t->role->closed != NULL)
			t->role->closed(c, denied, detail);
	}
	conn_free(c, why != CONN_DONE);
	if (s->stopping && s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
	return -1;
}

void conn_drain_arm(struct conn *c)
{
	const struct tunnel *t = c->s->t;

	c->state = CONN_DRAINING;
	c->last = ev_now(c->s->loop);
	conn_timer_arm(c, c->probe ? t->connect_timeout : t->drain_timeout);
}

/* Both ends are up: relay, bounded by the drain timer if an EOF came early. */
void conn_relay(struct conn *c)
{
	if (c->end[0].eof || c->end[1].eof || c->s->stopping) {
		conn_drain_arm(c);
	} else {
		c->state = CONN_RELAYING;
		ev_timer_stop(c->s->loop, &c->timer);
	}
}

/* conn_advance(c): the connect and handshake phases; -1 if c was dropped. */
static int conn_advance(struct conn *c)
{
	if (c->state == CONN_CONNECTING) {
		struct end *u = &c->end[1];
		int err;

		if (u->hwait)
			return 0;
		if ((err = sock_error(u->fd)) != 0)
			return conn_retry(c, CONN_CONNECT_FAILED,
			    conn_connect_reason(c, err, xport_reason(err)));
		memset(&c->hop, 0, sizeof(c->hop));
		c->state = CONN_OPENING;
	}
	if (c->state == CONN_OPENING) {	/* the role's hop, if any */
		struct end *u = &c->end[1];
		const char *why = "hop_failed";
		int rc;

		if (u->hwait)
			return 0;
		if (c->s->t->role->upstream_open != NULL &&
		    (rc = c->s->t->role->upstream_open(c, &why)) != CONN_OPEN_DONE)
			return rc == CONN_OPEN_WAIT ? 0 : conn_retry(c, CONN_CONNECT_FAILED, why);
		if (conn_tls_end(c) == 0) {	/* plaintext upstream */
			u->ready = 1;
			conn_up(c);
			return 0;
		}
		if (handshake_start(c, u) < 0)
			return -1;
		c->state = CONN_HANDSHAKING;
	}
	if (c->state == CONN_HANDSHAKING)
		return handshake_step(c);
	return 0;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct end *e = (w == &c->end[0].rio || w == &c->end[0].wio) ? &c->end[0] : &c->end[1];
	int ev = revents & (EV_READ | EV_WRITE);

	/* This event gives c its turn now; a pending rest of the last one is
	 * moot (pump_update() starts it again if this turn runs out too). */
	ev_timer_stop(loop, &c->turn);
	if (ev & EV_READ)
		e->drained = 0;
	if (e->rwait & ev)
		e->rwait = 0;
	if (e->wwait & ev)
		e->wwait = 0;
	if (e->hwait & ev)
		e->hwait = 0;
	if (conn_advance(c) < 0)
		return;
	pump_update(c);
}

static void turn_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	pump_update(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	const struct tunnel *t = c->s->t;
	ev_tstamp left;

	(void)revents;
	switch (c->state) {
	case CONN_HANDSHAKING:
		if (conn_tls_end(c) == 0) {
			conn_drop(c, CONN_HANDSHAKE_TIMEOUT, SIDE_PEER, "handshake_timeout");
			break;
		}
		/* the connect timeout covers a handshake with the upstream */
		/* FALLTHROUGH */
	case CONN_CONNECTING:
	case CONN_OPENING:
		if (conn_retry(c, CONN_CONNECT_FAILED, c->state == CONN_HANDSHAKING ?
		    "connect_timeout" : conn_connect_reason(c, ETIMEDOUT, "connect_timeout")) == 0)
			pump_update(c);
		break;
	case CONN_WAITING:	/* the line did not move for --connect-timeout */
		conn_drop(c, CONN_CONNECT_FAILED, SIDE_NONE, "wait_timeout");
		break;
	case CONN_DRAINING:
		if (c->probe) {
			conn_drop(c, CONN_DRAIN_TIMEOUT, SIDE_UPSTREAM, "probe_timeout");
			break;
		}
		left = c->last + t->drain_timeout;
		if (c->s->stopping && c->s->deadline < left)
			left = c->s->deadline;
		left -= ev_now(loop);
		if (left > 0)
			conn_timer_arm(c, left);
		else
			conn_drop(c, c->s->stopping ? CONN_SHUTDOWN : CONN_DRAIN_TIMEOUT, SIDE_NONE,
			    "drain_timeout");
		break;
	case CONN_RELAYING:
		break;
	}
}

void conn_end_open(struct conn *c, struct end *e, int fd)
{
	e->fd = fd;
	xport_tcp_attach(e);
	e->rwait = e->wwait = e->hwait = e->drained = 0;
	ev_io_init(&e->rio, io_cb, fd, EV_READ);
	ev_io_init(&e->wio, io_cb, fd, EV_WRITE);
	e->rio.data = e->wio.data = c;
}

/* conn_new(s): a connection in s with no ends yet, or NULL. */
struct conn *conn_new(struct conn_set *s)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->s = s;
	c->pol = tls_policy_get(&s->t->policy);
	if (s->t->filters != NULL && s->t->filters(c, c->filter) < 0) {
		filter_free(c->filter[0]);
		filter_free(c->filter[1]);
		tls_policy_release(c->pol);
		free(c);
		return NULL;
	}
	c->next = s->head;
	if (s->head != NULL)
		s->head->prev = c;
	s->head = c;
	s->n++;
	c->end[0].fd = c->end[1].fd = -1;
	c->start = c->last = ev_now(s->loop);
	ev_init(&c->timer, timer_cb);
	c->timer.data = c;
	ev_timer_init(&c->turn, turn_cb, 0., 0.);
	c->turn.data = c;
	return c;
}

void conn_start(struct conn_set *s, int fd, const struct sock_addr *peer)
{
	const struct role *role = s->t->role;
	struct conn *c = NULL;
	char addr[SOCK_NTOP_MAX];

	if ((c = conn_new(s)) == NULL) {
		log_error("out of memory", "peer=%s", sock_ntop(peer, addr));
		close(fd);
		atomic_fetch_sub(&s->t->active, 1);
		return;
	}
	sock_ntop(peer, c->peer);
	c->peer_addr = *peer;
	conn_end_open(c, &c->end[0], fd);
	if (role->admit != NULL && role->admit(c) < 0) {
		conn_free(c, 0);	/* refused: logged and counted, nothing held */
		return;
	}
	metrics_add(&s->m.opened, 1);
	sock_nodelay(fd);
	sock_keepalive(fd, s->t->tcp_keepalive);
	if (role->opened != NULL && role->opened(c) < 0)
		return;
	if (conn_tls_end(c) == 0) {
		c->state = CONN_HANDSHAKING;
		conn_timer_arm(c, s->t->handshake_timeout);
		if (handshake_step(c) < 0)
			return;
	} else {
		c->end[0].ready = 1;
		if (conn_connect(c) < 0)
			return;
	}
	pump_update(c);
}

int conn_set_init(struct conn_set *s, struct ev_loop *loop, struct tunnel *t)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->t = t;
	ev_init(&s->probe, conn_probe_cb);
	s->probe.data = s;
	s->wait_tail = &s->wait_head;
	ev_timer_init(&s->wake, conn_wake_cb, 0., 0.);
	s->wake.data = s;
	if (t->ups.n > 0 && (s->opening = calloc((size_t)t->ups.n, sizeof(*s->opening))) == NULL)
		return -1;
	metrics_register(&s->m);	/* scraped from now on, until conn_set_free() */
	return 0;
}

void conn_set_free(struct conn_set *s)
{
	metrics_unregister(&s->m);
	free(s->opening);
	s->opening = NULL;
	if (s->t->role->set_free != NULL)
		s->t->role->set_free(s);
}

void conn_set_abandon(struct conn_set *s)
{
	/* Watchers and timers only change the loop's memory until it runs
	 * again, which it never will; no RST: the sockets are the parent's too. */
	while (s->head != NULL)
		conn_free(s->head, 0);
}

void conn_set_stop(struct conn_set *s, int force)
{
	struct conn *c, *next;

	if (!s->stopping)
		s->deadline = ev_now(s->loop) + s->t->drain_timeout;
	s->stopping = 1;
	ev_timer_stop(s->loop, &s->probe);
	for (c = s->head; c != NULL; c = next) {
		next = c->next;
		if (force || c->probe)
			conn_drop(c, CONN_SHUTDOWN, SIDE_NONE, "shutdown");
		else if (c->state == CONN_RELAYING)
			conn_drain_arm(c);
	}
	if (s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
}
