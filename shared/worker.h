/* worker: one libev loop per thread, each with its own SO_REUSEPORT listener.
 * The daemons run n of them under a main loop that takes the signals
 * (workers_run); the preload shim runs one inside a host program. */
#ifndef TLSFWD_WORKER_H
#define TLSFWD_WORKER_H

#include <pthread.h>

#include "conn.h"
#include "sock.h"

/* What happens besides accepting: reloads and log reopening. */
struct workers_hooks {
	/* reload(arg, forced): SIGHUP (forced), a settled change on watch_fd;
	 * 0 reloaded, 1 nothing changed, -1 failed (logged) */
	int (*reload)(void *arg, int forced);
	void (*reopen)(void *arg);	/* SIGUSR1: reopen log-like files */
	int watch_fd;			/* an inotify fd to watch, or -1 */
	void *arg;
};

struct worker;

/** worker_new(t, lfd): a worker accepting on the listening socket lfd (which
 *  it owns from now on, even on failure).  NULL (logged) if out of memory. */
struct worker *worker_new(struct tunnel *t, int lfd);

/** worker_watch(w, hooks): before worker_start, have w's own loop drain
 *  hooks->watch_fd and call hooks->reload once it has been quiet for half a
 *  second.  hooks must outlive w. */
void worker_watch(struct worker *w, const struct workers_hooks *hooks);

/* How a worker's thread fits into its process. */
struct worker_thread {
	pthread_mutex_t *quiet;		/* if not NULL: held except while waiting for
					 * events, so whoever locks it sees the worker
					 * between events (fork) */
	void (*began)(void *arg);	/* if not NULL: first, on the worker's thread */
	void (*ended)(void *arg);	/* if not NULL: once stopped, on the worker's thread */
	void *arg;
	size_t stack;			/* if not 0: the thread's stack size, bytes */
};

/** worker_start(w, th): run w on a new thread with every signal blocked
 *  (they belong to the main thread; a write to a closed socket gives EPIPE).
 *  th may be NULL.  Returns 0, or -1 (logged). */
int worker_start(struct worker *w, const struct worker_thread *th);

/** worker_stop(w, force): from any thread, stop accepting and let open
 *  connections finish (each bounded by the drain timeout), or with force
 *  drop them now.  The thread ends when the last one is gone. */
void worker_stop(struct worker *w, int force);

/** worker_free(w): join w's thread (if it was started) and free w. */
void worker_free(struct worker *w);

/** worker_abandon(w): in a child forked while w ran (its thread does not
 *  exist here): close every socket w held and free it, without a byte on the
 *  wire or a line in the log — the parent still owns those connections. */
void worker_abandon(struct worker *w);

/** workers_listen(listen, n, lfds): bind n listeners on listen (SO_REUSEPORT)
 *  into lfds, before privileges are dropped (a port below 1024 as root).
 *  Returns 0, or -1 (logged) with none left open. */
int workers_listen(const struct sock_addr *listen, int n, int *lfds);

/** workers_run(t, listen, lfds, n, hooks): run n worker threads, one on each
 *  of the n listeners lfds (bound on listen; workers_run closes them all),
 *  until SIGTERM or SIGINT (the first drains open connections, a second
 *  drops them), then join them.  Events on hooks->watch_fd are drained and,
 *  once quiet for half a second, call hooks->reload.  Returns 0 after a
 *  clean stop, or 1 (logged) if the workers or threads could not be set up. */
int workers_run(struct tunnel *t, const struct sock_addr *listen, int *lfds, int n,
    const struct workers_hooks *hooks);

#endif
