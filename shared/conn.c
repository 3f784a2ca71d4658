/* conn: one tunnelled connection — both halves, their rings, the phase timer
 * and the single teardown path, conn_drop().
 *
 * wolfSSL runs on libev's level-triggered watchers: every read, write,
 * handshake or shutdown attempt that cannot go on records what it waits for
 * (EV_READ or EV_WRITE, wolfSSL may want either for any call), and after each
 * event conn_update() pumps both directions until nothing moves, then derives
 * the watcher set from what is still wanted; a connection that would go on
 * past CONN_TURN bytes yields to the others and resumes by its turn timer.
 * wolfSSL and the TLS read-ahead may hold bytes the socket no longer signals,
 * so a direction is retried whenever its ring has room, not only when its
 * socket is readable. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "filter.h"
#include "log.h"
#include "ring.h"
#include "x509.h"
#include "xport.h"

#define CONN_TURN 65536	/* bytes a connection reads before the others' turn */
#define PROBE_FIRST 0.1		/* seconds from losing the upstream to the first probe */
#define PROBE_MAX 2.0		/* the probes' back-off stops growing here */

/* How a connection ended.  Only CONN_DONE is a clean end: every other one
 * closes both sockets abortively (RST), so neither the sender nor Fluentd
 * can take a cut stream for a complete one.  A failure of the upstream side
 * (the server for the client, Fluentd for the server) is logged at warn
 * whatever its level here: the sender's own resets are its business. */
static const struct {
	const char *msg;
	enum log_level level;
} reasons[] = {
	[CONN_DONE]		 = { "closed", LOG_DEBUG },
	[CONN_TRUNCATED]	 = { "closed without a clean end", LOG_INFO },
	[CONN_NOT_TLS]		 = { "refused: not TLS", LOG_WARN },
	[CONN_HANDSHAKE_FAILED]	 = { "handshake failed", LOG_WARN },
	[CONN_HANDSHAKE_TIMEOUT] = { "handshake timed out", LOG_WARN },
	[CONN_PREAUTH_DROPPED]	 = { "dropped: too many pending handshakes", LOG_WARN },
	[CONN_CONNECT_FAILED]	 = { "upstream unreachable", LOG_WARN },
	[CONN_READ_ERROR]	 = { "read failed", LOG_INFO },
	[CONN_WRITE_ERROR]	 = { "write failed", LOG_INFO },
	[CONN_DRAIN_TIMEOUT]	 = { "drain timed out", LOG_INFO },
	[CONN_NOMEM]		 = { "out of memory", LOG_ERROR },
	[CONN_SHUTDOWN]		 = { "closed at shutdown", LOG_INFO },
	[CONN_BAD_INPUT]	 = { "dropped: bad input", LOG_WARN },
};

static void conn_update(struct conn *c);
static void upstream_up(struct conn *c);
static void verdict_free(struct conn *c);

/* tls_end(c): which of c's ends speaks TLS (the role says). */
static int tls_end(const struct conn *c)
{
	return c->s->t->role->tls_end;
}

static void watch(struct conn *c, ev_io *w, int on)
{
	if (on && !ev_is_active(w))
		ev_io_start(c->s->loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(c->s->loop, w);
}

static void timer_arm(struct conn *c, ev_tstamp after)
{
	ev_timer_stop(c->s->loop, &c->timer);
	ev_timer_set(&c->timer, after, 0.);
	ev_timer_start(c->s->loop, &c->timer);
}

/* end_close(e, abortive): stop e's watchers, free its transport (TLS),
 * close its socket. */
static void end_close(struct conn *c, struct end *e, int abortive)
{
	watch(c, &e->rio, 0);
	watch(c, &e->wio, 0);
	if (e->ops != NULL)
		e->ops->close(e, abortive);
}

static void end_open(struct conn *c, struct end *e, int fd);

/* conn_free(c, abortive): stop c's watchers and timer, free its TLS and
 * buffers, close both sockets (with RST if abortive) and forget c. */
static void conn_free(struct conn *c, int abortive)
{
	struct conn_set *s = c->s;
	struct tunnel *t = s->t;
	int i;

	verdict_free(c);
	ev_timer_stop(s->loop, &c->timer);
	ev_timer_stop(s->loop, &c->turn);
	for (i = 0; i < 2; i++) {
		end_close(c, &c->end[i], abortive);
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

/* probe_after(s, wait): probe the upstreams again in wait seconds. */
static void probe_after(struct conn_set *s, ev_tstamp wait)
{
	if (s->stopping)
		return;
	s->probe_wait = wait;
	ev_timer_stop(s->loop, &s->probe);
	ev_timer_set(&s->probe, wait, 0.);
	ev_timer_start(s->loop, &s->probe);
}

/* probe_done(c, ok): probe c ended, cleanly (the upstream answered) or not. */
static void probe_done(struct conn *c, int ok)
{
	struct conn_set *s = c->s;

	if (ok)
		reach_found(&s->t->reach, s->t->up[c->up].spec);
	else if (reach_is_down(&s->t->reach))
		probe_after(s, s->probe_wait * 2 < PROBE_MAX ? s->probe_wait * 2 : PROBE_MAX);
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
		    "peer=%s upstream=%s side=%s reason=%s subject=%s tls_code=%s sent=%llu "
		    "received=%llu duration=%f", c->peer, c->tried ? t->up[c->up].spec : NULL,
		    side == SIDE_NONE ? NULL : sides[side], detail,
		    c->verdict != NULL && c->verdict->id != NULL ? c->verdict->id->subject : NULL,
		    c->tls_code != 0 ? code : NULL, c->sent[0], c->sent[1],
		    ev_now(s->loop) - c->start);
	}
	if (c->probe) {
		probe_done(c, why == CONN_DONE);
	} else {
		/* Before the sender is reset: it must find the door shut. */
		if (side == SIDE_UPSTREAM && reach_lost(&t->reach, t->up[c->up].spec, detail))
			probe_after(s, PROBE_FIRST);
		if (t->role->closed != NULL)
			t->role->closed(c, why == CONN_NOT_TLS || why == CONN_HANDSHAKE_FAILED ||
			    why == CONN_HANDSHAKE_TIMEOUT || why == CONN_PREAUTH_DROPPED, detail);
	}
	conn_free(c, why != CONN_DONE);
	if (s->stopping && s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
	return -1;
}

static void drain_arm(struct conn *c)
{
	const struct tunnel *t = c->s->t;

	c->state = CONN_DRAINING;
	c->last = ev_now(c->s->loop);
	timer_arm(c, c->probe ? t->connect_timeout : t->drain_timeout);
}

/* Both ends are up: relay, bounded by the drain timer if an EOF came early. */
static void conn_relay(struct conn *c)
{
	if (c->end[0].eof || c->end[1].eof || c->s->stopping) {
		drain_arm(c);
	} else {
		c->state = CONN_RELAYING;
		ev_timer_stop(c->s->loop, &c->timer);
	}
}

static void verdict_free(struct conn *c)
{
	if (c->verdict != NULL) {
		x509_identity_free(c->verdict->id);
		free(c->verdict->rule);
		free(c->verdict);
		c->verdict = NULL;
	}
}

/* verify_cb(ok, store): wolfSSL asks about every certificate of the peer's
 * chain, top first, ok saying whether its own checks (chain, dates, CRL,
 * name) passed.  At the first call we check the whole path for what wolfSSL
 * 5.5.4 skips (tls_chain_check: a root's pathLenConstraint, keyCertSign,
 * key sizes, MD5/SHA-1 signatures, name constraints, the leaf's
 * extendedKeyUsage); refusing there also keeps wolfSSL from caching the
 * peer's intermediates as CAs.  A CRL that expired while loaded is named
 * as such (tls_crl_expired).
 * At the leaf the role adds its rules (role.judge: the server's allow
 * rules, the client's --pin-server pins). */
static int verify_cb(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct conn *c = store->userCtx;
	const struct role *role = c->s->t->role;
	const unsigned char *der;
	const char *why;
	int len, err = wolfSSL_X509_STORE_CTX_get_error(store);
	int server = role->tls_end == 0;	/* the peer is a client */
	int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);

	/* wolfSSL 5.5.4 computes ok before its host and IP checks, which only
	 * set the store's error: a failure is either. */
	if (err != 0)
		ok = 0;
	if (c->verdict == NULL) {
		if ((c->verdict = calloc(1, sizeof(*c->verdict))) == NULL)
			return 0;
		c->verdict->deny = tls_chain_check(c->pol, store, server, &c->verdict->anchored);
	}
	/* the leaf's identity, for the log and the audit trail even if refused */
	if (depth == 0 && c->verdict->id == NULL) {
		der = wolfSSL_X509_get_der(wolfSSL_X509_STORE_CTX_get_current_cert(store), &len);
		if (der == NULL || len <= 0 ||
		    x509_identity_new(der, (size_t)len, &c->verdict->id, &why) < 0) {
			if (c->verdict->deny == NULL)
				c->verdict->deny = "bad_certificate";
			return 0;
		}
	}
	if (c->verdict->deny != NULL)
		return 0;
	if (err != 0 && tls_crl_expired(c->pol, wolfSSL_X509_STORE_CTX_get_current_cert(store),
	    err)) {
		c->verdict->deny = "crl_expired";
		return 0;
	}
	if (depth != 0 || c->verdict->leaf_done)
		return ok;
	c->verdict->leaf_done = 1;
	/* wolfSSL may have found an issuer the peer did not send, among the
	 * intermediates of earlier handshakes it keeps: our checks did not see
	 * that path, so it is not taken. */
	if (ok && !c->verdict->anchored) {
		c->verdict->deny = "incomplete_chain";
		return 0;
	}
	/* Only a pin may override wolfSSL, and only for "no known issuer". */
	return role->judge != NULL ? role->judge(c, ok, err) : ok;
}

/* tls_failure(c, e, err): remember wolfSSL's code for the log and name it. */
static const char *tls_failure(struct conn *c, struct end *e, int err)
{
	c->tls_code = err;
	return tls_reason(e->ssl, err);
}

/* tls_start(c, e): a WOLFSSL for end e, verifying the peer as the role
 * says; the role sets what else the handshake needs. */
static int tls_start(struct conn *c, struct end *e)
{
	const struct role *role = c->s->t->role;

	if ((e->ssl = wolfSSL_new(c->pol->ctx)) == NULL)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_new");
	xport_tls_attach(e, e->ssl);
	wolfSSL_set_verify(e->ssl, role->verify_mode, verify_cb);
	wolfSSL_SetCertCbCtx(e->ssl, c);
	if (role->tls_setup != NULL && role->tls_setup(c, e->ssl) < 0)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_name");
	return 0;
}

/* conn_connect(c): connect end[1] to the current or a later upstream address. */
static int conn_connect(struct conn *c)
{
	const struct tunnel *t = c->s->t;
	int e = 0;

	c->tried = 1;
	for (; c->up < t->nup; c->up++, c->addr = 0) {
		const struct upstream *u = &t->up[c->up];

		for (; c->addr < u->naddr; c->addr++) {
			int fd = sock_connect(&u->addr[c->addr]);

			if (fd >= 0) {
				end_open(c, &c->end[1], fd);
				c->end[1].hwait = EV_WRITE;
				c->state = CONN_CONNECTING;
				timer_arm(c, t->connect_timeout);
				return 0;
			}
			e = errno;
		}
	}
	c->up = t->nup - 1;
	c->addr = 0;
	return conn_drop(c, CONN_CONNECT_FAILED, SIDE_UPSTREAM, xport_reason(e));
}

/* conn_retry(c, why, detail): the attempt on end[1] failed; try the next
 * address or upstream, or drop.  Only before any byte came from upstream. */
static int conn_retry(struct conn *c, enum conn_reason why, const char *detail)
{
	const struct tunnel *t = c->s->t;
	const struct upstream *u = &t->up[c->up];

	if (c->addr + 1 >= u->naddr && c->up + 1 >= t->nup)
		return conn_drop(c, why, SIDE_UPSTREAM, detail);
	log_warn("upstream attempt failed, trying the next", "peer=%s upstream=%s reason=%s",
	    c->peer, u->spec, detail);
	c->tls_code = 0;
	verdict_free(c);
	end_close(c, &c->end[1], 1);
	if (++c->addr >= u->naddr) {
		c->up++;
		c->addr = 0;
	}
	return conn_connect(c);
}

/* conn_handshake(c): advance the TLS handshake on the TLS end. */
static int conn_handshake(struct conn *c)
{
	const struct tunnel *t = c->s->t;
	struct end *e = &c->end[tls_end(c)];
	const char *why;
	int rc, err;

	if (e->hwait)
		return 0;
	if (e->ssl == NULL) {
		/* Server: look at the first byte before paying for a WOLFSSL, so
		 * plaintext and silent sockets cost nothing but the fd. */
		unsigned char b;
		ssize_t n = recv(e->fd, &b, 1, MSG_PEEK);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			e->hwait = EV_READ;
			return 0;
		}
		if (n <= 0)
			return conn_drop(c, CONN_HANDSHAKE_FAILED, SIDE_PEER,
			    n == 0 ? "peer_closed" : "reset");
		if (b != 0x16)	/* not a TLS handshake record */
			return conn_drop(c, CONN_NOT_TLS, SIDE_PEER, "not_tls");
		if (tls_start(c, e) < 0)
			return -1;
	}
	if (t->role->step != NULL)
		t->role->step(c);
	rc = e == &c->end[1] ? wolfSSL_connect(e->ssl) : wolfSSL_accept(e->ssl);
	if (rc != WOLFSSL_SUCCESS) {
		err = wolfSSL_get_error(e->ssl, rc);
		if (err == WOLFSSL_ERROR_WANT_READ) {
			e->hwait = EV_READ;
			return 0;
		}
		if (err == WOLFSSL_ERROR_WANT_WRITE) {
			e->hwait = EV_WRITE;
			return 0;
		}
		why = tls_failure(c, e, err);
		if (c->verdict != NULL && c->verdict->deny != NULL)
			why = c->verdict->deny;	/* refused by our rules, not wolfSSL's */
		/* A failed upstream may be followed by the next one. */
		if (e == &c->end[1])
			return conn_retry(c, CONN_HANDSHAKE_FAILED, why);
		return conn_drop(c, CONN_HANDSHAKE_FAILED, SIDE_PEER, why);
	}
	e->ready = 1;
	if (t->role->secured != NULL)
		t->role->secured(c);
	if (e == &c->end[0])
		return conn_connect(c);
	upstream_up(c);
	return 0;
}

/* upstream_up(c): end[1] is connected (and its handshake done): relay.  A
 * sender's connection proves the upstream reachable as well as a probe. */
static void upstream_up(struct conn *c)
{
	if (!c->probe)
		reach_found(&c->s->t->reach, c->s->t->up[c->up].spec);
	conn_relay(c);
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
			return conn_retry(c, CONN_CONNECT_FAILED, xport_reason(err));
		if (tls_end(c) == 0) {	/* plaintext upstream */
			u->ready = 1;
			upstream_up(c);
			return 0;
		}
		if (tls_start(c, u) < 0)
			return -1;
		c->state = CONN_HANDSHAKING;
	}
	if (c->state == CONN_HANDSHAKING)
		return conn_handshake(c);
	return 0;
}

/* end_eof(c, k, truncated): nothing more will come from end k. */
static int end_eof(struct conn *c, int k, int truncated)
{
	c->end[k].eof = 1;
	c->end[k].truncated = (unsigned char)truncated;
	ring_trim(&c->ring[k]);
	if (c->state == CONN_RELAYING)
		drain_arm(c);
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
	if (e->ssl != NULL && c->s->t->role->tls_read != NULL)
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
	 * without it, pushes them all.  conn_update() goes on writing until the
	 * ring is empty or the socket is full, so nothing is held back. */
	p = ring_rdata(r, &n);
	rc = d->ops->write(d, p, n, ring_len(r) > n);
	if (rc > 0) {
		ring_consume(r, (size_t)rc);
		c->sent[k] += (unsigned long long)rc;
		return 1;
	}
	if (rc == XPORT_WANT_READ || rc == XPORT_WANT_WRITE) {
		d->wwait = want(rc);
		return staged;
	}
	return end_fail(c, CONN_WRITE_ERROR, 1 - k);
}

/* conn_update(c): move bytes both ways until nothing moves or c has read
 * CONN_TURN bytes, end the connection if both directions are done, else set
 * the watchers. */
static void conn_update(struct conn *c)
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
			watch(c, &e->rio, ev & EV_READ);
			watch(c, &e->wio, ev & EV_WRITE);
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct end *e = (w == &c->end[0].rio || w == &c->end[0].wio) ? &c->end[0] : &c->end[1];
	int ev = revents & (EV_READ | EV_WRITE);

	/* This event gives c its turn now; a pending rest of the last one is
	 * moot (conn_update() starts it again if this turn runs out too). */
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
	conn_update(c);
}

static void turn_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_update(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	const struct tunnel *t = c->s->t;
	ev_tstamp left;

	(void)revents;
	switch (c->state) {
	case CONN_HANDSHAKING:
		if (tls_end(c) == 0) {
			conn_drop(c, CONN_HANDSHAKE_TIMEOUT, SIDE_PEER, "handshake_timeout");
			break;
		}
		/* the connect timeout covers a handshake with the upstream */
		/* FALLTHROUGH */
	case CONN_CONNECTING:
		if (conn_retry(c, CONN_CONNECT_FAILED, "connect_timeout") == 0)
			conn_update(c);
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
			timer_arm(c, left);
		else
			conn_drop(c, c->s->stopping ? CONN_SHUTDOWN : CONN_DRAIN_TIMEOUT, SIDE_NONE,
			    "drain_timeout");
		break;
	case CONN_RELAYING:
		break;
	}
}

static void end_open(struct conn *c, struct end *e, int fd)
{
	e->fd = fd;
	xport_tcp_attach(e);
	e->rwait = e->wwait = e->hwait = e->drained = 0;
	ev_io_init(&e->rio, io_cb, fd, EV_READ);
	ev_io_init(&e->wio, io_cb, fd, EV_WRITE);
	e->rio.data = e->wio.data = c;
}

/* conn_new(s): a connection in s with no ends yet, or NULL. */
static struct conn *conn_new(struct conn_set *s)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (s->t->filters != NULL && s->t->filters(s->t, c->filter) < 0) {
		filter_free(c->filter[0]);
		filter_free(c->filter[1]);
		free(c);
		return NULL;
	}
	c->s = s;
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
	c->pol = tls_policy_get(&s->t->policy);
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
	end_open(c, &c->end[0], fd);
	if (role->admit != NULL && role->admit(c) < 0) {
		conn_free(c, 0);	/* refused: logged, nothing held */
		return;
	}
	sock_nodelay(fd);
	if (role->opened != NULL && role->opened(c) < 0)
		return;
	if (tls_end(c) == 0) {
		c->state = CONN_HANDSHAKING;
		timer_arm(c, s->t->handshake_timeout);
		if (conn_handshake(c) < 0)
			return;
	} else {
		c->end[0].ready = 1;
		if (conn_connect(c) < 0)
			return;
	}
	conn_update(c);
}

/*-
 * probe_cb: while no upstream answers, ask again.  A probe is a connection
 * without a sender: it connects (and, on the client, does the handshake,
 * resumed where it can) like any other, sends nothing, half-closes at once
 * and succeeds if the upstream ends cleanly in turn.  So on the client it
 * also proves the server's own way to Fluentd; and the upstream sees a
 * well-behaved empty connection, not a cut one.  Until one succeeds, the
 * wait between probes doubles up to PROBE_MAX.
 */
static void probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn_set *s = w->data;
	struct conn *c;

	(void)loop;
	(void)revents;
	if (s->stopping || !reach_is_down(&s->t->reach))
		return;
	if ((c = conn_new(s)) == NULL) {
		probe_after(s, PROBE_MAX);
		return;
	}
	c->probe = 1;
	snprintf(c->peer, sizeof(c->peer), "probe");
	c->end[0].ready = c->end[0].eof = 1;
	if (conn_connect(c) < 0)
		return;
	conn_update(c);
}

void conn_set_probe_now(struct conn_set *s)
{
	if (ev_is_active(&s->probe))
		probe_after(s, 0.);
	s->probe_wait = PROBE_FIRST;
}

int conn_set_init(struct conn_set *s, struct ev_loop *loop, struct tunnel *t)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->t = t;
	ev_init(&s->probe, probe_cb);
	s->probe.data = s;
	return 0;
}

void conn_set_free(struct conn_set *s)
{
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
			drain_arm(c);
	}
	if (s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
}
