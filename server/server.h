/* server: the tlsfwd-server role (role.h): who may connect, who may send,
 * and the audit trail.  The pump in shared/ knows none of it. */
#ifndef TLSFWD_SERVER_H
#define TLSFWD_SERVER_H

#include <stdatomic.h>

#include "conn.h"
#include "fwd.h"
#include "role.h"

struct authz_nets;
struct fwd_auth_secret;
struct peers;

/* The server's share of the tunnel (t->role_data). */
struct server {
	struct authz_nets *nets;	/* --allow-net; NULL: any source */
	struct peers *peers;		/* --max-conns-per-ip; NULL: no limit */
	long hs_share;			/* --max-handshakes-per-ip, each worker's share; 0: none */
	long hs_capacity;		/* addresses a worker's table holds */
	long max_handshakes;		/* --max-handshakes, all workers; 0: no limit */
	atomic_long pending;		/* connections not yet authenticated, all workers */
	int fwd;			/* the forward reader runs on what senders send */
	int stamp;			/*   and stamps (a stamp is needed before data) */
	unsigned long long max_request;	/* its --max-request-size */
	struct fwd_opts fwd_opts;	/* its stamp (the strings are cfg's) */
	struct fwd_auth_secret *fwd_auth;	/* --upstream-shared-key-file; NULL: none */
};

extern const struct role server_role;

/* admit.c: the checks before TLS and the pre-authentication budget. */

/** admit_check(c): --allow-net, --max-conns-per-ip and
 *  --max-handshakes-per-ip on c's accepted socket, before any TLS state
 *  exists.  0, or -1 (logged, rate-limited, audited; nothing held) if it
 *  must be closed.  A role admit() hook. */
int admit_check(struct conn *c);

/** admit_pending(c): c (admitted) is pending until its handshake completes;
 *  past --max-handshakes one other pending connection of the worker is
 *  dropped.  Returns 0 (a role opened() hook). */
int admit_pending(struct conn *c);

/** admit_step(c): c's handshake moved (a role step() hook). */
void admit_step(struct conn *c);

/** admit_done(c): c is authenticated or going: give back its share of the
 *  budget.  Does nothing if c is not pending. */
void admit_done(struct conn *c);

/** admit_release(c): c is going: give back its --max-conns-per-ip slot. */
void admit_release(struct conn *c);

/** admit_set_free(s): free the worker's lists (a role set_free() hook). */
void admit_set_free(struct conn_set *s);

#endif
