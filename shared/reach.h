/* reach: whether the upstream can be reached, and the listeners that follow
 * it.  While no upstream answers, every listener of the process is shut, so
 * a sender's connect is refused and its own buffer keeps its events, rather
 * than being accepted into a connection that leads nowhere.  Shared by all
 * workers; the connection code reports what it sees, a worker's probe finds
 * the way back. */
#ifndef TLSFWD_REACH_H
#define TLSFWD_REACH_H

#include <pthread.h>
#include <stdatomic.h>
#include <ev.h>

#include "sock.h"

#define REACH_LISTENERS 256	/* listeners one process may have (--workers) */

struct reach_listener {
	int fd;
	struct sock_addr addr;	/* where it was bound, to bind again if shutting lost it */
	struct ev_loop *loop;
	ev_async *wake;		/* tells its worker that the state changed */
};

struct reach {
	atomic_int down;	/* 1: no upstream answered; the listeners are shut */
	int follow;		/* 0: --accept-while-unreachable, never shut */
	const char *lost, *found;	/* the log lines of the two changes */
	pthread_mutex_t lock;	/* the listener table and every change of state */
	struct reach_listener l[REACH_LISTENERS];
	int n;
};

/** reach_init(r, follow, lost, found): reachable, no listeners; lost and
 *  found are the messages logged when that changes. */
void reach_init(struct reach *r, int follow, const char *lost, const char *found);

/** reach_destroy(r): what reach_init made. */
void reach_destroy(struct reach *r);

/** reach_add(r, fd, loop, wake): follow listener fd, whose worker runs loop
 *  and is woken by wake after each change.  If r is down, fd is shut now.
 *  0, or -1 if the table is full. */
int reach_add(struct reach *r, int fd, struct ev_loop *loop, ev_async *wake);

/** reach_remove(r, fd): stop following fd (before it is closed). */
void reach_remove(struct reach *r, int fd);

/** reach_is_down(r): 1 while the listeners are shut. */
int reach_is_down(struct reach *r);

/** reach_lost(r, upstream, why): an upstream could not be reached, or ended
 *  a connection abnormally.  Shuts every listener (at once, before the
 *  caller resets its sender) and logs one line.  Returns 1 if this call
 *  changed the state: the caller must then probe until reach_found(). */
int reach_lost(struct reach *r, const char *upstream, const char *why);

/** reach_kick(r): if down, have the prober try again now (after a reload). */
void reach_kick(struct reach *r);

/** reach_found(r, upstream): an upstream answered: listen again (one line). */
void reach_found(struct reach *r, const char *upstream);

#endif
