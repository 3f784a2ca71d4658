/* admit: the server's checks on an accepted socket before any TLS state
 * exists, and the pre-authentication budget. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "audit.h"
#include "authz.h"
#include "log.h"
#include "peers.h"
#include "ratelimit.h"

/*-
 * The pre-authentication budget, like sshd's MaxStartups.  A server
 * connection is pending from accept until its handshake completes; while
 * pending it counts in its worker's table of addresses (the worker's share
 * of --max-handshakes-per-ip, checked in admit_check(), so one address
 * cannot hold more; per worker so that owed() sees all it counts) and in the
 * server's pending count (--max-handshakes, all workers).  Past that
 * threshold the accepting worker drops one of its own pending connections
 * to make room, chosen rather than random (sshd) or the new one: first the
 * oldest that has not sent a byte since accept, else the talking one idle
 * longest (each handshake step moves a connection to the front of its
 * list).  A worker that holds no other keeps the newcomer: the count may
 * pass the threshold by one per worker until the others drop theirs, and a
 * worker is never made to drop a newcomer for another's flood.  No lock is
 * taken and no worker touches another's connections.  "Sent" is what the socket
 * holds, not what the loop has read yet: a candidate with bytes waiting is
 * moved to the talking list first, so a ClientHello that arrived during a
 * burst of accepts is not taken for silence.  A flood of bare connections
 * thus never pushes out a handshake in progress; one that sends
 * ClientHellos and stalls pushes out only handshakes slower than its own
 * idle ones, and costs it a ClientHello per connection.
 */

/* A worker's pending connections (conn_set.role_data): two lists, from
 * new[k] to old[k] (k 0: silent, 1: talking), most recently active first. */
struct pending_set {
	long n;
	struct conn *new[2], *old[2];
	struct peers *hs;	/* its share of --max-handshakes-per-ip; NULL: none */
};

/* A pending connection (conn.role_data, NULL once it is not pending). */
struct pending {
	struct conn *prev, *next;	/* on its set's list [talking] */
	int talking;			/* a byte came since accept */
};

#define P(c) ((struct pending *)(c)->role_data)

/* pending_link(c): put c at the front of its list. */
static void pending_link(struct pending_set *ps, struct conn *c)
{
	int k = P(c)->talking;

	P(c)->prev = NULL;
	P(c)->next = ps->new[k];
	if (ps->new[k] != NULL)
		P(ps->new[k])->prev = c;
	else
		ps->old[k] = c;
	ps->new[k] = c;
}

/* pending_unlink(c): take c off its list. */
static void pending_unlink(struct pending_set *ps, struct conn *c)
{
	int k = P(c)->talking;

	if (P(c)->prev != NULL)
		P(P(c)->prev)->next = P(c)->next;
	else
		ps->new[k] = P(c)->next;
	if (P(c)->next != NULL)
		P(P(c)->next)->prev = P(c)->prev;
	else
		ps->old[k] = P(c)->prev;
}

void admit_step(struct conn *c)
{
	struct pending_set *ps = c->s->role_data;

	if (P(c) == NULL || (P(c)->talking && ps->new[1] == c))
		return;
	pending_unlink(ps, c);
	P(c)->talking = 1;
	pending_link(ps, c);
}

void admit_done(struct conn *c)
{
	struct server *srv = c->s->t->role_data;
	struct pending_set *ps = c->s->role_data;

	if (P(c) == NULL)
		return;
	pending_unlink(ps, c);
	free(c->role_data);
	c->role_data = NULL;
	ps->n--;
	atomic_fetch_sub(&srv->pending, 1);
	if (ps->hs != NULL)
		peers_release(ps->hs, &c->peer_addr);
}

void admit_release(struct conn *c)
{
	struct server *srv = c->s->t->role_data;

	admit_done(c);
	if (srv->peers != NULL)
		peers_release(srv->peers, &c->peer_addr);
}

/* pending_silent(ps, c): the oldest silent connection other than c, after
 * moving those with bytes waiting to the talking list; NULL if none. */
static struct conn *pending_silent(struct pending_set *ps, struct conn *c)
{
	struct conn *old;
	char b;

	while ((old = ps->old[0]) != NULL && old != c) {
		if (recv(old->end[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
			return old;
		admit_step(old);
	}
	return NULL;	/* c, the newest, is last only when it is alone */
}

int admit_pending(struct conn *c)
{
	struct server *srv = c->s->t->role_data;
	struct pending_set *ps = c->s->role_data;
	struct conn *old;

	pending_link(ps, c);
	ps->n++;
	if (atomic_fetch_add(&srv->pending, 1) < srv->max_handshakes || srv->max_handshakes <= 0)
		return 0;
	if ((old = pending_silent(ps, c)) != NULL || (old = ps->old[1]) != NULL)
		conn_drop(old, CONN_PREAUTH_DROPPED, SIDE_PEER, "max_handshakes");
	return 0;
}

void admit_set_free(struct conn_set *s)
{
	struct pending_set *ps = s->role_data;

	if (ps != NULL)
		peers_free(ps->hs);
	free(s->role_data);
	s->role_data = NULL;
}

static const char refused_msg[] = "refused before TLS";

/* owed(ps, peer): this worker's pending connections from peer's address
 * with bytes waiting that it has not read yet.  Those wait on the server,
 * not on the peer: a client that opens in turns (tlsfwd-client's
 * --max-handshakes-per-server) finishes its side of a handshake and opens
 * the next before a busy worker reads its last message, so they do not
 * count against the worker's share of --max-handshakes-per-ip.  One that stalls after its bytes
 * counts again once they are read; --max-handshakes bounds them all. */
static long owed(const struct pending_set *ps, const struct sock_addr *peer)
{
	unsigned char ip[16], other[16];
	const struct conn *x;
	long n = 0;
	char b;
	int k;

	sock_key(peer, ip);
	for (k = 0; k < 2; k++)
		for (x = ps->new[k]; x != NULL; x = P(x)->next) {
			sock_key(&x->peer_addr, other);
			if (memcmp(ip, other, sizeof(ip)) == 0 &&
			    recv(x->end[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
				n++;
		}
	return n;
}

/* pending_set_new(srv): a worker's, at its first connection. */
static struct pending_set *pending_set_new(const struct server *srv)
{
	struct pending_set *ps = calloc(1, sizeof(*ps));

	if (ps != NULL && srv->hs_share > 0 &&
	    (ps->hs = peers_new(srv->hs_share, srv->hs_capacity)) == NULL) {
		free(ps);
		ps = NULL;
	}
	return ps;
}

int admit_check(struct conn *c)
{
	struct server *srv = c->s->t->role_data;
	const struct sock_addr *peer = &c->peer_addr;
	struct pending_set *ps = c->s->role_data;
	const char *why = NULL;

	if (ps == NULL && (ps = c->s->role_data = pending_set_new(srv)) == NULL)
		why = "out_of_memory";
	else if ((c->role_data = calloc(1, sizeof(struct pending))) == NULL)
		why = "out_of_memory";
	else if (srv->nets != NULL && authz_net_match(srv->nets,
	    (const struct sockaddr *)&peer->ss, NULL, 0) == AUTHZ_DENIED)
		why = "net_denied";
	else if (srv->peers != NULL && peers_acquire(srv->peers, peer) < 0)
		why = "per_ip_limit";
	else if (ps->hs != NULL && peers_acquire(ps->hs, peer) < 0 &&
	    peers_acquire_over(ps->hs, peer, owed(ps, peer)) < 0) {
		if (srv->peers != NULL)
			peers_release(srv->peers, peer);
		why = "per_ip_handshakes";
	}
	if (why == NULL)
		return 0;
	free(c->role_data);
	c->role_data = NULL;
	metrics_pair(&c->s->m.refused, "admit", why);
	if (log_enabled(LOG_WARN) && ratelimit_allow(LOG_WARN, refused_msg, peer, why))
		log_warn(refused_msg, "peer=%s reason=%s", c->peer, why);
	if (audit_enabled()) {
		struct audit_event ev = { .kind = AUDIT_DENY, .peer = c->peer, .reason = why };

		audit_emit(&ev);
	}
	return -1;
}
