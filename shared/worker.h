/* worker: one libev loop per thread, each with its own SO_REUSEPORT listener;
 * signals are events of the main thread's loop. */
#ifndef TLSFWD_WORKER_H
#define TLSFWD_WORKER_H

#include "conn.h"
#include "sock.h"

/* What the main thread's loop does besides starting and stopping workers. */
struct workers_hooks {
	void (*reload)(void *arg, int forced);	/* SIGHUP (forced), a settled change on watch_fd */
	void (*reopen)(void *arg);	/* SIGUSR1: reopen log-like files */
	int watch_fd;			/* an inotify fd to watch, or -1 */
	void *arg;
};

/** workers_run(t, listen, n, hooks): bind n listeners on listen, run n worker
 *  threads until SIGTERM or SIGINT (the first drains open connections, a
 *  second drops them), then join them.  Events on hooks->watch_fd are drained
 *  and, once quiet for half a second, call hooks->reload.  Returns 0 after a
 *  clean stop, or 1 (logged) if the listeners or threads could not be set up. */
int workers_run(struct tunnel *t, const struct sock_addr *listen, int n,
    const struct workers_hooks *hooks);

#endif
