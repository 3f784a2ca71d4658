/* conn: one tunnelled connection, both halves.  Bytes flow
 * accept -> end[0] -> ring[0] -> end[1] -> upstream and back through ring[1];
 * one of the two ends speaks TLS: end[1] on the client, end[0] on the server. */
#ifndef TLSFWD_CONN_H
#define TLSFWD_CONN_H

#include <stdatomic.h>
#include <ev.h>

#include "config.h"
#include "metrics.h"
#include "reach.h"
#include "ring.h"
#include "role.h"
#include "sock.h"
#include "tls.h"
#include "resolver.h"
#include "upstream.h"
#include "xport.h"

struct conn;
struct filter;

/* What every connection of the process shares; read-only once workers run. */
struct tunnel {
	const struct role *role;
	struct tls_policy_slot policy;	/* TLS context (and rules): replaced on reload */
	struct upstreams ups;		/* where connections go, and their health */
	struct resolver res;		/* resolves their names again */
	double connect_timeout, handshake_timeout, drain_timeout;
	long max_conns;
	long open_cap;			/* each worker's share of --max-handshakes-per-server (0: none) */
	int resume;			/* client: keep and offer session tickets */
	int tcp_keepalive;		/* --tcp-keepalive seconds on both sockets; 0: off */
	void *role_data;		/* the role's own, from its prepare() */
	atomic_long active;		/* open connections, all workers */
	struct reach reach;		/* the listeners follow the upstreams */
	/* When set: makes a new connection's filter stages, f[i] for the
	 * bytes read from end[i] (NULL: none), as its policy (c->pol, the
	 * rules it will be judged by) needs.  0, or -1 out of memory. */
	int (*filters)(const struct conn *c, struct filter *f[2]);
};

enum conn_state {
	CONN_HANDSHAKING,	/* TLS handshake on the TLS end */
	CONN_WAITING,		/* in line for a turn to open end[1] (open_cap) */
	CONN_CONNECTING,	/* TCP connect of end[1] in progress */
	CONN_OPENING,		/* the role's hop on end[1] before TLS (upstream_open) */
	CONN_RELAYING,		/* both ends up, no EOF yet */
	CONN_DRAINING,		/* an EOF was seen (or shutdown): idle time is bounded */
};

enum conn_reason {
	CONN_DONE,		/* both directions finished */
	CONN_TRUNCATED,		/* a peer closed or reset without a clean EOF */
	CONN_NOT_TLS,
	CONN_HANDSHAKE_FAILED,
	CONN_HANDSHAKE_TIMEOUT,
	CONN_PREAUTH_DROPPED,	/* --max-handshakes: a pending connection makes room */
	CONN_CONNECT_FAILED,
	CONN_READ_ERROR,
	CONN_WRITE_ERROR,
	CONN_DRAIN_TIMEOUT,
	CONN_NOMEM,
	CONN_SHUTDOWN,
	CONN_BAD_INPUT,		/* a filter stage refused what a side sent */
};

/* What a role's upstream_open() hook returns. */
enum { CONN_OPEN_DONE = 0, CONN_OPEN_WAIT = 1, CONN_OPEN_FAILED = -1 };

/* Which side a failure is on, for conn_drop() and the log. */
enum conn_side {
	SIDE_NONE = -1,		/* neither: a timeout, shutdown, out of memory */
	SIDE_PEER = 0,		/* end[0], the accepted connection */
	SIDE_UPSTREAM = 1,	/* end[1], the connection we made */
};

/* One tunnelled connection.  The pump (conn.c) owns it; the role hooks
 * (role.h) read it and keep their own state in role_data. */
struct conn {
	struct conn_set *s;
	struct conn *prev, *next;
	enum conn_state state;
	int probe;		/* no sender: asks whether the upstream answers */
	struct end end[2];	/* 0: accepted, 1: connected upstream */
	struct ring ring[2];	/* ring[i] holds bytes read from end[i] */
	struct filter *filter[2];	/* the stage between ring[i] and end[1 - i], or NULL */
	ev_timer timer;		/* handshake, connect or drain, by state */
	ev_timer turn;		/* due at once: the rest of a turn cut at CONN_TURN */
	ev_tstamp start, last;	/* accept time, last byte moved */
	ev_tstamp hs_start, up_start;	/* the TLS handshake, end[1]'s attempt began */
	struct upstream_pos pos;	/* the upstream and address being tried */
	int tls_code;		/* wolfSSL's error behind a TLS failure, for the log */
	struct tls_policy *pol;	/* held from accept to close: reloads leave it be */
	struct verdict *verdict;	/* who the peer is, from its handshake to close */
	struct sock_addr peer_addr;	/* the accepted socket's peer */
	void *role_data;		/* the role's, freed by its closed() hook */
	union {				/* the role's scratch for upstream_open() */
		unsigned char bytes[48];
		long long align;
	} hop;
	struct conn *wnext;		/* CONN_WAITING: the next in line */
	unsigned char tried;		/* end[1] was tried: the log names the upstream */
	unsigned char opening;		/* counts in s->opening[pos.up] until end[1] is up */
	unsigned char ticketed;		/* the role's tls_read is done with this connection
					 * (client: its session was kept, or never is) */
	unsigned long long bytes[2];	/* read from end[i] (a turn's measure) */
	unsigned long long sent[2];	/* of those, written out to end[1 - i] */
	char peer[SOCK_NTOP_MAX];
};

/* What the verify callback learnt of the peer's certificate; kept as long
 * as the connection (NULL while no certificate was seen). */
struct verdict {
	struct x509_identity *id;	/* the leaf certificate, NULL if unparsable */
	const char *deny;		/* why our checks or rules refused it, or NULL */
	int anchored;			/* its path reached a --ca certificate */
	int leaf_done;			/* the leaf was judged */
	char *rule;			/* the rule that admitted it, or NULL */
};


/* The connections of one worker (one event loop). */
struct conn_set {
	struct ev_loop *loop;
	struct tunnel *t;
	struct conn *head;
	long n;
	int stopping;			/* draining for shutdown */
	ev_tstamp deadline;		/* when stopping: the latest any may live */
	void (*on_empty)(struct conn_set *);	/* called when stopping and n hits 0 */
	ev_timer probe;			/* the next probe of the upstreams it found down */
	long *opening;			/* per upstream: connections opening end[1] */
	struct conn *wait_head, **wait_tail;	/* CONN_WAITING, first come first served */
	ev_timer wake;			/* due at once: the line moves (see conn_opened) */
	void *role_data;		/* the role's, freed by its set_free() hook */
	struct metrics_worker m;	/* this worker's counters (metrics.h) */
};

/** conn_drop(c, why, side, detail): the one teardown path: log once
 *  (naming the side that failed and detail, a stable token), close both
 *  sockets, abortively unless why is CONN_DONE, and free c.  Returns -1. */
int conn_drop(struct conn *c, enum conn_reason why, enum conn_side side, const char *detail);

/** conn_hop_send(e, p, len, sent): write what is left of a hop's message
 *  (len bytes at p, *sent of them written) on end e's socket before TLS.
 *  CONN_OPEN_DONE once all is written, CONN_OPEN_WAIT (e->hwait set) while
 *  the socket is full, CONN_OPEN_FAILED with errno. */
int conn_hop_send(struct end *e, const void *p, size_t len, unsigned short *sent);

/** conn_hop_peek(e, buf, n, got): what the hop's peer sent, left in the
 *  socket (MSG_PEEK; take what is used with recv()).  CONN_OPEN_DONE with
 *  *got > 0, CONN_OPEN_WAIT (e->hwait set), CONN_OPEN_FAILED at an EOF or
 *  an error. */
int conn_hop_peek(struct end *e, void *buf, size_t n, size_t *got);

/** conn_set_init(s, loop, t): an empty set on loop.  0, or -1 out of memory. */
int conn_set_init(struct conn_set *s, struct ev_loop *loop, struct tunnel *t);

/** conn_set_free(s): free what an empty set still holds (the role's). */
void conn_set_free(struct conn_set *s);

/** conn_start(s, fd, peer): take ownership of the accepted socket fd and start
 *  tunnelling it.  Counts in s->t->active; on failure the fd is closed. */
void conn_start(struct conn_set *s, int fd, const struct sock_addr *peer);

/** conn_set_abandon(s): in a forked child, where s's loop no longer runs:
 *  close every connection's sockets and free it, without a byte on the wire
 *  (the parent still owns those connections) or a line in the log. */
void conn_set_abandon(struct conn_set *s);

/** conn_set_probe_now(s): probe the upstreams s found down now, with the
 *  back-off started afresh. */
void conn_set_probe_now(struct conn_set *s);

/** conn_set_stop(s, force): shutdown.  Without force every connection may
 *  finish, each bounded by the drain timeout; with force all are dropped now. */
void conn_set_stop(struct conn_set *s, int force);

#endif
