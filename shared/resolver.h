/* resolver: names that move.  A thread of its own resolves every upstream
 * given by name again every interval, and soon after one fails
 * (resolver_kick()), so that getaddrinfo(), which may block for seconds,
 * never stalls a worker.  A name that stops resolving keeps its last
 * addresses (one warning); a change of addresses is one line. */
#ifndef TLSFWD_RESOLVER_H
#define TLSFWD_RESOLVER_H

#include <pthread.h>
#include <sys/types.h>

#include "upstream.h"

struct resolver {
	struct upstreams *p;
	double interval;		/* seconds between rounds */
	pthread_t thread;
	pid_t pid;			/* the process the thread runs in; 0: none */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* on CLOCK_MONOTONIC */
	int kicked, stop;
};

/** resolver_start(r, p, interval): resolve p's names again every interval
 *  seconds on a thread of r's own; nothing to do (and no thread) if none of
 *  p's hosts is a name.  0, or -1 with errno set. */
int resolver_start(struct resolver *r, struct upstreams *p, double interval);

/** resolver_kick(r): an upstream failed: resolve again soon (at most one
 *  round a second). */
void resolver_kick(struct resolver *r);

/** resolver_stop(r): stop and join the thread (in a forked child, where it
 *  does not run, only forget it). */
void resolver_stop(struct resolver *r);

#endif
