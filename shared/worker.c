/* worker: event-loop threads, listeners, the max-conns gate and signals. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define ACCEPT_BATCH 64		/* accepts per wakeup, for fairness */
#define PAUSE_RETRY 0.1		/* seconds between re-checks while paused */
#define PAUSE_WARN_EVERY 10.	/* seconds between "paused" warnings */
#define WATCH_SETTLE 0.5	/* seconds of quiet after a file event before reloading */

struct worker {
	struct conn_set set;	/* first: on_empty gets &w->set */
	pthread_t thread;
	int started;
	int lfd;
	ev_io accept_w;
	ev_timer pause_w;	/* re-checks the gate while accepting is paused */
	ev_async stop_w;	/* from the main thread: stop (and maybe force) */
	atomic_int force;
	struct ev_loop *main_loop;
	ev_async *done_w;	/* to the main thread: this worker has ended */
	atomic_int *ended;	/* how many workers have ended */
};

static atomic_long last_pause_warn;	/* ev_time() of the last warning, whole seconds */

static void worker_pause(struct worker *w, const char *why)
{
	long now = (long)ev_time(), last = atomic_load(&last_pause_warn);

	ev_io_stop(w->set.loop, &w->accept_w);
	ev_timer_again(w->set.loop, &w->pause_w);
	if (now - last >= PAUSE_WARN_EVERY &&
	    atomic_compare_exchange_strong(&last_pause_warn, &last, now))
		log_warn("not accepting new connections for now; they wait in the backlog",
		    "reason=%s active=%ld max_conns=%ld", why, atomic_load(&w->set.t->active),
		    w->set.t->max_conns);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = io->data;
	struct tunnel *t = w->set.t;
	struct sock_addr peer;
	int i, fd;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		/* Take a slot first, so workers together never pass max-conns. */
		if (atomic_fetch_add(&t->active, 1) >= t->max_conns) {
			atomic_fetch_sub(&t->active, 1);
			worker_pause(w, "max_conns");
			return;
		}
		if ((fd = sock_accept(w->lfd, &peer)) < 0) {
			int e = errno;

			atomic_fetch_sub(&t->active, 1);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
				worker_pause(w, e == ENOMEM || e == ENOBUFS ? "out_of_memory" : "out_of_fds");
			else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED)
				log_warn("accept failed", "reason=%s", strerror(e));
			return;
		}
		conn_start(&w->set, fd, &peer);
	}
}

static void pause_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct worker *w = tw->data;

	(void)revents;
	if (atomic_load(&w->set.t->active) < w->set.t->max_conns) {
		ev_timer_stop(loop, tw);
		ev_io_start(loop, &w->accept_w);
	}
}

static void on_empty(struct conn_set *s)
{
	ev_break(s->loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = a->data;

	(void)revents;
	if (w->lfd >= 0) {
		ev_io_stop(loop, &w->accept_w);
		ev_timer_stop(loop, &w->pause_w);
		close(w->lfd);
		w->lfd = -1;
	}
	conn_set_stop(&w->set, atomic_load(&w->force));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	ev_run(w->set.loop, 0);
	atomic_fetch_add(w->ended, 1);
	ev_async_send(w->main_loop, w->done_w);
	return NULL;
}

struct main_state {
	struct worker *w;
	int n, running, signals;
	atomic_int ended;
	const struct workers_hooks *hooks;
	ev_io watch_w;
	ev_timer settle_w;
};

static void signal_cb(struct ev_loop *loop, ev_signal *sw, int revents)
{
	struct main_state *m = sw->data;
	int i;

	(void)loop;
	(void)revents;
	if (sw->signum == SIGHUP) {
		if (m->hooks->reload != NULL)
			m->hooks->reload(m->hooks->arg, 1);
		return;
	}
	if (sw->signum == SIGUSR1) {
		if (m->hooks->reopen != NULL)
			m->hooks->reopen(m->hooks->arg);
		return;
	}
	m->signals++;
	if (m->signals == 1)
		log_info("stopping: no new connections, open ones may finish",
		    "signal=%d", sw->signum);
	else
		log_info("stopping now: dropping open connections", "signal=%d", sw->signum);
	for (i = 0; i < m->n; i++) {
		if (m->signals > 1)
			atomic_store(&m->w[i].force, 1);
		ev_async_send(m->w[i].set.loop, &m->w[i].stop_w);
	}
}

/* watch_cb: file events come in bursts (an editor's rename, Kubernetes'
 * symlink swap): drain them and reload once things settle. */
static void watch_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct main_state *m = io->data;
	char buf[4096];

	(void)revents;
	while (read(io->fd, buf, sizeof(buf)) > 0)
		;
	ev_timer_stop(loop, &m->settle_w);
	ev_timer_set(&m->settle_w, WATCH_SETTLE, 0.);
	ev_timer_start(loop, &m->settle_w);
}

static void settle_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct main_state *m = tw->data;

	(void)loop;
	(void)revents;
	m->hooks->reload(m->hooks->arg, 0);
}

static void done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct main_state *m = a->data;

	(void)revents;
	if (atomic_load(&m->ended) == m->running)
		ev_break(loop, EVBREAK_ALL);
}

int workers_run(struct tunnel *t, const struct sock_addr *listen, int n,
    const struct workers_hooks *hooks)
{
	struct ev_loop *main_loop = ev_default_loop(0);
	struct main_state m = { .n = n, .hooks = hooks };
	static const int signums[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	enum { NSIG_WATCHED = sizeof(signums) / sizeof(signums[0]) };
	ev_signal sig[NSIG_WATCHED];
	ev_async done_w;
	sigset_t block, old;
	char addr[SOCK_NTOP_MAX];
	int i, rc = 1;

	if (main_loop == NULL || (m.w = calloc((size_t)n, sizeof(*m.w))) == NULL) {
		log_error("cannot set up the event loop", NULL);
		return 1;
	}
	for (i = 0; i < n; i++)
		m.w[i].lfd = -1;
	ev_async_init(&done_w, done_cb);
	done_w.data = &m;
	ev_async_start(main_loop, &done_w);

	for (i = 0; i < n; i++) {
		struct worker *w = &m.w[i];
		struct ev_loop *loop;

		w->lfd = sock_listen(listen, 1);
		if (w->lfd < 0) {
			log_error("cannot listen", "listen=%s reason=%s", sock_ntop(listen, addr),
			    strerror(errno));
			goto out;
		}
		if ((loop = ev_loop_new(EVFLAG_AUTO)) == NULL ||
		    conn_set_init(&w->set, loop, t) < 0) {
			if (loop != NULL)
				ev_loop_destroy(loop);
			log_error("cannot create an event loop", NULL);
			goto out;
		}
		w->set.on_empty = on_empty;
		w->main_loop = main_loop;
		w->done_w = &done_w;
		w->ended = &m.ended;
		ev_io_init(&w->accept_w, accept_cb, w->lfd, EV_READ);
		w->accept_w.data = w;
		ev_init(&w->pause_w, pause_cb);
		w->pause_w.repeat = PAUSE_RETRY;
		w->pause_w.data = w;
		ev_async_init(&w->stop_w, stop_cb);
		w->stop_w.data = w;
		ev_io_start(w->set.loop, &w->accept_w);
		ev_async_start(w->set.loop, &w->stop_w);
	}

	/* Worker threads inherit a mask without our signals; only the main
	 * thread's loop takes them. */
	sigemptyset(&block);
	for (i = 0; i < NSIG_WATCHED; i++)
		sigaddset(&block, signums[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < n; i++) {
		if (pthread_create(&m.w[i].thread, NULL, worker_main, &m.w[i]) != 0) {
			log_error("cannot start a worker thread", NULL);
			break;
		}
		m.w[i].started = 1;
		m.running++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	for (i = 0; i < NSIG_WATCHED; i++) {
		ev_signal_init(&sig[i], signal_cb, signums[i]);
		sig[i].data = &m;
		ev_signal_start(main_loop, &sig[i]);
	}
	ev_init(&m.settle_w, settle_cb);
	m.settle_w.data = &m;
	if (hooks->watch_fd >= 0 && hooks->reload != NULL) {
		ev_io_init(&m.watch_w, watch_cb, hooks->watch_fd, EV_READ);
		m.watch_w.data = &m;
		ev_io_start(main_loop, &m.watch_w);
	}
	if (m.running == n) {
		log_info("listening", "listen=%s workers=%d", sock_ntop(listen, addr), n);
		rc = 0;
	} else {
		m.signals = 1;	/* a thread failed: stop the ones that run */
		for (i = 0; i < m.running; i++)
			ev_async_send(m.w[i].set.loop, &m.w[i].stop_w);
	}
	if (m.running > 0)
		ev_run(main_loop, 0);
	for (i = 0; i < NSIG_WATCHED; i++)
		ev_signal_stop(main_loop, &sig[i]);
	if (hooks->watch_fd >= 0 && hooks->reload != NULL)
		ev_io_stop(main_loop, &m.watch_w);
	ev_timer_stop(main_loop, &m.settle_w);
	if (rc == 0)
		log_info("stopped", NULL);
out:
	for (i = 0; i < n; i++) {
		struct worker *w = &m.w[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		if (w->lfd >= 0)
			close(w->lfd);
		if (w->set.loop != NULL) {
			conn_set_free(&w->set);
			ev_loop_destroy(w->set.loop);
		}
	}
	ev_async_stop(main_loop, &done_w);
	ev_loop_destroy(main_loop);
	free(m.w);
	return rc;
}
