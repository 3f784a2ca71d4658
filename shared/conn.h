/* conn: one tunnelled connection, both halves.  Bytes flow
 * accept -> end[0] -> ring[0] -> end[1] -> upstream and back through ring[1];
 * one of the two ends speaks TLS: end[1] on the client, end[0] on the server. */
#ifndef TLSFWD_CONN_H
#define TLSFWD_CONN_H

#include <stdatomic.h>
#include <ev.h>

#include "config.h"
#include "reach.h"
#include "sock.h"
#include "tls.h"

#define UPSTREAM_ADDRS 8

struct authz_nets;
struct filter;
struct peers;

/* Where a connection goes: a tlsfwd-server (client role) or Fluentd (server role). */
struct upstream {
	char spec[300];			/* as configured, for logs */
	char name[256];			/* client: name verified and sent as SNI */
	int name_is_ip;			/* verified against IP SANs, never sent as SNI */
	struct sock_addr addr[UPSTREAM_ADDRS];
	int naddr;
};

/* What every connection of the process shares; read-only once workers run. */
struct tunnel {
	enum role role;
	struct tls_policy_slot policy;	/* TLS context (and rules): replaced on reload */
	struct upstream *up;		/* tried in order until one connects */
	int nup;
	double connect_timeout, handshake_timeout, drain_timeout;
	long max_conns;
	int resume;			/* client: keep and offer session tickets */
	struct authz_nets *nets;	/* server: --allow-net; NULL: any source */
	struct peers *peers;		/* server: --max-conns-per-ip; NULL: no limit */
	struct peers *hs_peers;		/* server: --max-handshakes-per-ip; NULL: no limit */
	long max_handshakes;		/* server: pending handshakes per worker; 0: no limit */
	atomic_long active;		/* open connections, all workers */
	struct reach reach;		/* the listeners follow the upstreams */
	/* When set: makes a new connection's filter stages, f[i] for the
	 * bytes read from end[i] (NULL: none).  0, or -1 out of memory. */
	int (*filters)(struct tunnel *t, struct filter *f[2]);
};

struct conn;

/* The connections of one worker (one event loop). */
struct conn_set {
	struct ev_loop *loop;
	struct tunnel *t;
	struct conn *head;
	long n;
	int stopping;			/* draining for shutdown */
	ev_tstamp deadline;		/* when stopping: the latest any may live */
	void (*on_empty)(struct conn_set *);	/* called when stopping and n hits 0 */
	WOLFSSL_SESSION **sessions;	/* client with resume: a resumable session per upstream */
	ev_timer probe;			/* while t->reach is down: the next probe */
	ev_tstamp probe_wait;		/* its back-off */
	long pending;			/* server: connections not yet authenticated */
	struct conn *hs_new[2], *hs_old[2];	/* server: pending connections, silent [0]
					 * and talking [1], most recently active first */
};

/** conn_set_init(s, loop, t): an empty set on loop.  0, or -1 out of memory. */
int conn_set_init(struct conn_set *s, struct ev_loop *loop, struct tunnel *t);

/** conn_set_free(s): free what an empty set still holds (cached sessions). */
void conn_set_free(struct conn_set *s);

/** conn_start(s, fd, peer): take ownership of the accepted socket fd and start
 *  tunnelling it.  Counts in s->t->active; on failure the fd is closed. */
void conn_start(struct conn_set *s, int fd, const struct sock_addr *peer);

/** conn_set_abandon(s): in a forked child, where s's loop no longer runs:
 *  close every connection's sockets and free it, without a byte on the wire
 *  (the parent still owns those connections) or a line in the log. */
void conn_set_abandon(struct conn_set *s);

/** conn_set_probe_now(s): if s is waiting to probe the upstreams again
 *  (it lost them), probe now, with the back-off started afresh. */
void conn_set_probe_now(struct conn_set *s);

/** conn_set_stop(s, force): shutdown.  Without force every connection may
 *  finish, each bounded by the drain timeout; with force all are dropped now. */
void conn_set_stop(struct conn_set *s, int force);

#endif
