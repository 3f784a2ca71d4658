/* conn_int: what the three parts of a connection share — conn.c (its life:
 * accept, connect, timers, probes, the one teardown), handshake.c (TLS and
 * verification) and pump.c (the bytes).  Not for the roles: they see
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

/** conn_connect(c): connect end[1] to the current or a later upstream
 *  address.  0, or -1 if c was dropped. */
int conn_connect(struct conn *c);

/** conn_retry(c, why, detail): the attempt on end[1] failed: the next
 *  address or upstream, or drop.  0, or -1 if c was dropped. */
int conn_retry(struct conn *c, enum conn_reason why, const char *detail);

/** conn_up(c): end[1] is connected (and its handshake done): relay. */
void conn_up(struct conn *c);

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
