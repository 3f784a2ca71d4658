/* conn_int: what the four parts of a connection share — conn.c (its life:
 * accept, timers, the one teardown), conn_up.c (its upstream end: choice,
 * turns, connect, health, probes), handshake.c (TLS and verification) and
 * pump.c (the bytes).  Not for the roles: they see
 * conn.h. */
#ifndef TLSFWD_CONN_INT_H
#define TLSFWD_CONN_INT_H

#include "conn.h"

/* conn_tls_end(c): which of c's ends speaks TLS (the role says). */
static inline int conn_tls_end(const struct conn *c)
{
	return c->s->t->role->tls_end;
}

/* conn.c */

/** conn_watch(c, w, on): start or stop one of c's I/O watchers. */
void conn_watch(struct conn *c, ev_io *w, int on);

/** conn_drain_arm(c): an EOF was seen: idle time is bounded from now. */
void conn_drain_arm(struct conn *c);

/** conn_timer_arm(c, after): c's phase timer, due in after seconds. */
void conn_timer_arm(struct conn *c, ev_tstamp after);

/** conn_end_open(c, e, fd): end e is socket fd (plain until TLS starts). */
void conn_end_open(struct conn *c, struct end *e, int fd);

/** conn_end_close(c, e, abortive): stop e's watchers, free its transport,
 *  close its socket (with RST if abortive). */
void conn_end_close(struct conn *c, struct end *e, int abortive);

/** conn_relay(c): both ends are up: relay (drain if an EOF came early). */
void conn_relay(struct conn *c);

/** conn_new(s): a connection in s with no ends yet, or NULL. */
struct conn *conn_new(struct conn_set *s);

/* conn_up.c */

/** conn_connect(c): connect end[1] to the current or a later upstream
 *  address (a new connection may first wait for its turn).  0, or -1 if c
 *  was dropped. */
int conn_connect(struct conn *c);

/** conn_retry(c, why, detail): the attempt on end[1] failed: the next
 *  address or upstream, or drop.  0, or -1 if c was dropped. */
int conn_retry(struct conn *c, enum conn_reason why, const char *detail);

/** conn_up(c): end[1] is connected (and its handshake done): relay. */
void conn_up(struct conn *c);

/** conn_connect_reason(c, err, why): the reason to log for a failed attempt
 *  on end[1] before its hop is open: the role's, or why. */
const char *conn_connect_reason(struct conn *c, int err, const char *why);

/** conn_turn_end(c): c is freed: it leaves the line, or gives its turn back. */
void conn_turn_end(struct conn *c);

/** conn_upstream_lost(s, i, why): upstream i failed a connection: down, and
 *  the listeners shut if none is up. */
void conn_upstream_lost(struct conn_set *s, int i, const char *why);

/** conn_probe_done(c, ok): probe c ended, cleanly or not. */
void conn_probe_done(struct conn *c, int ok);

/** conn_wake_cb, conn_probe_cb: s->wake (the line moves) and s->probe. */
void conn_wake_cb(struct ev_loop *loop, ev_timer *w, int revents);
void conn_probe_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* handshake.c */

/** handshake_start(c, e): a WOLFSSL for end e, verifying the peer as the
 *  role says.  0, or -1 if c was dropped. */
int handshake_start(struct conn *c, struct end *e);

/** handshake_step(c): advance the handshake on the TLS end (the server
 *  first peeks that the peer speaks TLS at all); when it is done, the role
 *  is told and the connection goes on.  0, or -1 if c was dropped. */
int handshake_step(struct conn *c);

/** handshake_forget(c): free what the handshake learnt of the peer. */
void handshake_forget(struct conn *c);

/* pump.c */

/** pump_update(c): move bytes both ways until nothing moves or c's turn is
 *  over, end c if both directions are done, else set its watchers. */
void pump_update(struct conn *c);

#endif
