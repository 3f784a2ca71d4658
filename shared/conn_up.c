/* conn_up: a connection's upstream end — choosing the upstream and its
 * address, opening in turns, the connect and its retries, the upstreams'
 * health as connections and probes find it, and the probes themselves.
 * The rest of a connection's life is conn.c. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "conn_int.h"
#include "log.h"
#include "xport.h"

/*-
 * Opening in turns.  A client is one address to its server, whose
 * --max-handshakes-per-ip closes the excess of a burst at accept (a restart
 * of every sender on a host, a reconnecting aggregator).  So each worker
 * opens at most t->open_cap connections to one upstream at once (connect,
 * the role's hop, the TLS handshake); the others wait in line, reading
 * what their sender sends into their ring, for --connect-timeout at most.
 * An attempt that ends either way lets the next in line for its upstream
 * go, from a timer due at once (not from inside conn_free's callers).
 */
static void wait_remove(struct conn *c)
{
	struct conn_set *s = c->s;
	struct conn **pp;

	for (pp = &s->wait_head; *pp != NULL; pp = &(*pp)->wnext)
		if (*pp == c) {
			*pp = c->wnext;
			if (s->wait_tail == &c->wnext)
				s->wait_tail = pp;
			c->wnext = NULL;
			return;
		}
}

/* open_room(c): c may open end[1] to the upstream it picked now. */
static int open_room(const struct conn *c)
{
	const struct conn_set *s = c->s;

	return s->t->open_cap == 0 || c->probe || s->opening[c->pos.up] < s->t->open_cap;
}

/* conn_opened(c): c's attempt at end[1] ended, either way: give its slot
 * to the next in line. */
static void conn_opened(struct conn *c)
{
	struct conn_set *s = c->s;

	if (!c->opening)
		return;
	c->opening = 0;
	s->opening[c->pos.up]--;
	if (s->wait_head != NULL && !ev_is_active(&s->wake))
		ev_timer_start(s->loop, &s->wake);
}

/* conn_wake_cb: start the connections in line whose upstream has room now; one
 * whose upstream went down meanwhile chooses again. */
void conn_wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn_set *s = w->data;
	struct upstreams *ups = &s->t->ups;
	struct conn **pp = &s->wait_head, *c;

	(void)loop;
	(void)revents;
	while ((c = *pp) != NULL) {
		if (atomic_load(&ups->v[c->pos.up].down) && upstreams_up(ups))
			upstream_start(ups, &c->pos, upstream_pick(ups, 0));
		if (!open_room(c)) {
			pp = &c->wnext;
			continue;
		}
		*pp = c->wnext;
		if (s->wait_tail == &c->wnext)
			s->wait_tail = pp;
		c->wnext = NULL;
		c->state = CONN_CONNECTING;	/* conn_connect sets it again */
		if (conn_connect(c) == 0)
			pump_update(c);
	}
}

/* conn_turn_end(c): c is freed: it leaves the line, or gives its turn back. */
void conn_turn_end(struct conn *c)
{
	if (c->state == CONN_WAITING)
		wait_remove(c);
	conn_opened(c);
}

/* probe_after(s, wait): look for s's due probes in wait seconds. */
static void probe_after(struct conn_set *s, ev_tstamp wait)
{
	if (s->stopping)
		return;
	ev_timer_stop(s->loop, &s->probe);
	ev_timer_set(&s->probe, wait > 0. ? wait : 0., 0.);
	ev_timer_start(s->loop, &s->probe);
}

/* upstream_answered(s, i): upstream i answered a connection or a probe.
 * Each change of an upstream's health is one line; with one upstream,
 * reach's line ("...reachable again") is that line. */
static void upstream_answered(struct conn_set *s, int i)
{
	struct tunnel *t = s->t;

	if (upstream_ok(&t->ups, i) && t->ups.n > 1)
		log_info("upstream up", "upstream=%s", t->ups.v[i].spec);
	reach_found(&t->reach, t->ups.v[i].spec);
}

/* conn_upstream_lost(s, i, why): upstream i failed a connection: it is down,
 * and if no upstream is up, the listeners are shut (before the sender is
 * reset: it must find the door shut).  The first to mark it down probes it. */
void conn_upstream_lost(struct conn_set *s, int i, const char *why)
{
	struct tunnel *t = s->t;

	if (upstream_failed(&t->ups, i, s)) {
		if (t->ups.n > 1)
			log_warn("upstream down", "upstream=%s reason=%s", t->ups.v[i].spec, why);
		resolver_kick(&t->res);		/* it may have moved */
		probe_after(s, 0.);
	}
	/* One may come back between the check and the shutting (on another
	 * worker, whose reach_found() then came first): look again after. */
	if (!upstreams_up(&t->ups) && reach_lost(&t->reach, t->ups.v[i].spec, why) &&
	    upstreams_up(&t->ups))
		reach_found(&t->reach, t->ups.v[i].spec);
}

/* conn_probe_done(c, ok): probe c ended, cleanly (the upstream answered) or not. */
void conn_probe_done(struct conn *c, int ok)
{
	struct conn_set *s = c->s;

	if (ok)
		upstream_answered(s, c->pos.up);
	else {
		upstream_probe_failed(&s->t->ups, c->pos.up, ev_now(s->loop));
		resolver_kick(&s->t->res);
	}
	probe_after(s, 0.);
}

/* next_upstream(c, why): c's attempt at its upstream failed: step to the
 * next address or choice (see upstream_next()); the upstream it leaves is
 * down.  0, or -1 if none is left. */
static int next_upstream(struct conn *c, const char *why)
{
	int was = c->pos.up;

	upstream_addr_failed(&c->s->t->ups, &c->pos);
	if (upstream_next(&c->s->t->ups, &c->pos) < 0)
		return -1;
	if (c->opening && c->pos.up != was) {	/* its slot moves along (past the cap) */
		int now = c->pos.up;

		c->pos.up = was;
		conn_opened(c);
		c->pos.up = now;
		c->opening = 1;
		c->s->opening[now]++;
	}
	if (c->pos.up != was && !c->probe)
		conn_upstream_lost(c->s, was, why);
	return 0;
}

/* conn_connect_reason(c, err, why): the reason to log for a failed attempt on
 * end[1] before its hop is open: the role's (its proxy's), or why. */
const char *conn_connect_reason(struct conn *c, int err, const char *why)
{
	const struct role *r = c->s->t->role;
	const char *mine = r->upstream_error != NULL ? r->upstream_error(c, err, why) : NULL;

	return mine != NULL ? mine : why;
}

/* conn_connect(c): connect end[1] to the current or a later address in the
 * upstreams' try order (a new connection: to the first choice). */
int conn_connect(struct conn *c)
{
	struct tunnel *t = c->s->t;
	int e = 0;

	if (!c->tried && !c->probe) {
		upstream_start(&t->ups, &c->pos, upstream_pick(&t->ups, 0));
		c->tried = 1;
		if (!open_room(c)) {	/* in line for a turn */
			c->state = CONN_WAITING;
			*c->s->wait_tail = c;
			c->s->wait_tail = &c->wnext;
			conn_timer_arm(c, t->connect_timeout);
			return 0;
		}
	}
	if (!c->opening && !c->probe && t->open_cap > 0) {
		c->opening = 1;
		c->s->opening[c->pos.up]++;
	}
	c->tried = 1;
	do {
		struct sock_addr a;
		int fd = -1;

		errno = EADDRNOTAVAIL;	/* the resolver took it away meanwhile */
		if (upstream_addr(&t->ups.v[c->pos.up], c->pos.addr, &a) == 0)
			fd = sock_connect(&a);
		if (fd >= 0) {
			sock_keepalive(fd, t->tcp_keepalive);
			conn_end_open(c, &c->end[1], fd);
			c->up_start = ev_now(c->s->loop);
			c->end[1].hwait = EV_WRITE;
			c->state = CONN_CONNECTING;
			conn_timer_arm(c, t->connect_timeout);
			return 0;
		}
		e = errno;
	} while (next_upstream(c, conn_connect_reason(c, e, xport_reason(e))) == 0);
	return conn_drop(c, CONN_CONNECT_FAILED, SIDE_UPSTREAM,
	    conn_connect_reason(c, e, xport_reason(e)));
}

/* conn_retry(c, why, detail): the attempt on end[1] failed; try the next
 * address or upstream, or drop.  Only before any byte came from upstream. */
int conn_retry(struct conn *c, enum conn_reason why, const char *detail)
{
	struct upstream *u = &c->s->t->ups.v[c->pos.up];

	if (next_upstream(c, detail) < 0)
		return conn_drop(c, why, SIDE_UPSTREAM, detail);
	log_warn("upstream attempt failed, trying the next", "peer=%s upstream=%s reason=%s",
	    c->peer, u->spec, detail);
	c->tls_code = 0;
	handshake_forget(c);
	if (c->s->t->role->upstream_close != NULL)
		c->s->t->role->upstream_close(c);
	conn_end_close(c, &c->end[1], 1);
	return conn_connect(c);
}

/* conn_up(c): end[1] is connected (and its handshake done): relay.  A
 * sender's connection proves the upstream reachable as well as a probe,
 * unless the upstream was marked down since it started: a handshake that
 * began before a server died may end after another connection found it
 * dead, and must not bring it back (the next failure would mark it down
 * again: down, up, down for one death). */
void conn_up(struct conn *c)
{
	struct upstream *u = &c->s->t->ups.v[c->pos.up];

	upstream_addr_ok(&c->s->t->ups, &c->pos);
	if (c->pos.up < UPSTREAM_MAX)
		metrics_observe(&c->s->m.connect[c->pos.up], ev_now(c->s->loop) - c->up_start);
	conn_opened(c);
	if (!c->probe && c->pos.downs == atomic_load(&u->downs))
		upstream_answered(c->s, c->pos.up);
	conn_relay(c);
}

/*-
 * conn_probe_cb: ask the upstreams this set probes (those it found down, see
 * upstream.h) whether they answer again.  A probe is a connection without a
 * sender, to one upstream: it connects (and, on the client, does the
 * handshake, resumed where it can) like any other, sends nothing,
 * half-closes at once and succeeds if the upstream ends cleanly in turn.
 * So on the client it also proves the server's own way to Fluentd; and the
 * upstream sees a well-behaved empty connection, not a cut one.
 */
void conn_probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn_set *s = w->data;
	struct upstreams *p = &s->t->ups;
	struct conn *c;
	double next;
	int i;

	(void)revents;
	while (!s->stopping && (i = upstream_due(p, s, ev_now(loop), &next)) >= 0) {
		if ((c = conn_new(s)) == NULL) {
			upstream_probe_failed(p, i, ev_now(loop));
			continue;
		}
		c->probe = 1;
		snprintf(c->peer, sizeof(c->peer), "probe");
		c->end[0].ready = c->end[0].eof = 1;
		upstream_start(p, &c->pos, i);
		c->pos.tried = ~((uint64_t)1 << i);	/* this one's addresses only */
		if (conn_connect(c) == 0)
			pump_update(c);
	}
	if (!s->stopping && next > 0.)
		probe_after(s, next - ev_now(loop));
}

void conn_set_probe_now(struct conn_set *s)
{
	upstream_probe_now(&s->t->ups, s);
	probe_after(s, 0.);
}

int conn_hop_send(struct end *e, const void *p, size_t len, unsigned short *sent)
{
	ssize_t n;

	while (*sent < len) {
		n = send(e->fd, (const char *)p + *sent, len - *sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			e->hwait = EV_WRITE;
			return CONN_OPEN_WAIT;
		}
		if (n < 0)
			return CONN_OPEN_FAILED;
		*sent = (unsigned short)(*sent + n);
	}
	return CONN_OPEN_DONE;
}

int conn_hop_peek(struct end *e, void *buf, size_t n, size_t *got)
{
	ssize_t r;

	do
		r = recv(e->fd, buf, n, MSG_PEEK);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		e->hwait = EV_READ;
		return CONN_OPEN_WAIT;
	}
	if (r <= 0)
		return CONN_OPEN_FAILED;
	*got = (size_t)r;
	return CONN_OPEN_DONE;
}
