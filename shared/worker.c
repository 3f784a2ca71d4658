/* worker: event-loop threads, listeners, the max-conns gate and signals. */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "thread.h"

#define ACCEPT_BATCH 64		/* accepts per wakeup, for fairness */
#define PAUSE_RETRY 0.1		/* seconds between re-checks while paused */
#define PAUSE_WARN_EVERY 10.	/* seconds between "paused" warnings */
#define WATCH_SETTLE 0.5	/* seconds of quiet after a file event before reloading */
#define TRIM_EVERY 1.		/* seconds between checks for memory to give back */
#define STATUS_EVERY 2.		/* seconds between checks for a new STATUS= */
#define EXPIRY_EVERY 86400.	/* seconds between certificate expiry checks */

/* A watched inotify fd: drain its events, reload once they settle. */
struct watch {
	const struct workers_hooks *hooks;	/* NULL: not watching */
	ev_io io;
	ev_timer settle;
};

struct worker {
	struct conn_set set;	/* first: on_empty gets &w->set */
	pthread_t thread;
	int started;
	int lfd;
	ev_io accept_w;
	ev_timer pause_w;	/* re-checks the gate while accepting is paused */
	ev_timer flush_w;	/* the role's flush each second (rate-limited lines) */
	ev_async stop_w;	/* from any thread: stop (and maybe force) */
	ev_async reach_w;	/* from any thread: the upstream was lost or found */
	atomic_int force;
	struct watch watch;
	struct worker_thread th;
	sem_t running;		/* posted once the thread holds th.quiet */
	ev_timer tick_w;	/* with a watchdog: shows that the loop runs */
	atomic_ulong ticks;	/* tick_w's count, read by the main thread */
	atomic_int done;	/* its loop has ended */
};

static atomic_long last_pause_warn;	/* ev_time() of the last warning, whole seconds */
static atomic_ulong accepted;		/* connections accepted by any worker, ever */

/* -------------------------------------------------------------------------
 * file watching, on whichever loop runs it */

/* watch_cb: file events come in bursts (an editor's rename, Kubernetes'
 * symlink swap): drain them and reload once things settle. */
static void watch_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct watch *wt = io->data;
	char buf[4096];

	(void)revents;
	while (read(io->fd, buf, sizeof(buf)) > 0)
		;
	ev_timer_stop(loop, &wt->settle);
	ev_timer_set(&wt->settle, WATCH_SETTLE, 0.);
	ev_timer_start(loop, &wt->settle);
}

static void settle_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct watch *wt = tw->data;

	(void)loop;
	(void)revents;
	wt->hooks->reload(wt->hooks->arg, 0);
}

static void watch_start(struct ev_loop *loop, struct watch *wt, const struct workers_hooks *h)
{
	if (h == NULL || h->watch_fd < 0 || h->reload == NULL)
		return;
	wt->hooks = h;
	ev_io_init(&wt->io, watch_cb, h->watch_fd, EV_READ);
	wt->io.data = wt;
	ev_init(&wt->settle, settle_cb);
	wt->settle.data = wt;
	ev_io_start(loop, &wt->io);
}

static void watch_stop(struct ev_loop *loop, struct watch *wt)
{
	if (wt->hooks == NULL)
		return;
	ev_io_stop(loop, &wt->io);
	ev_timer_stop(loop, &wt->settle);
	wt->hooks = NULL;
}

/* -------------------------------------------------------------------------
 * one worker */

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

/* accept_batch(w): accept up to ACCEPT_BATCH connections; how many. */
static int accept_batch(struct worker *w)
{
	struct tunnel *t = w->set.t;
	struct sock_addr peer;
	int i, fd;

	if (reach_is_down(&t->reach)) {	/* the listener is shut: reach_cb reopens */
		ev_io_stop(w->set.loop, &w->accept_w);
		return 0;
	}
	for (i = 0; i < ACCEPT_BATCH; i++) {
		/* Take a slot first, so workers together never pass max-conns. */
		if (atomic_fetch_add(&t->active, 1) >= t->max_conns) {
			atomic_fetch_sub(&t->active, 1);
			worker_pause(w, "max_conns");
			return i;
		}
		if ((fd = sock_accept(w->lfd, &peer)) < 0) {
			int e = errno;

			atomic_fetch_sub(&t->active, 1);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
				worker_pause(w, e == ENOMEM || e == ENOBUFS ? "out_of_memory" : "out_of_fds");
			else if (e == EINVAL && reach_is_down(&t->reach))
				ev_io_stop(w->set.loop, &w->accept_w);	/* shut meanwhile */
			else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED)
				log_warn("accept failed", "reason=%s", strerror(e));
			return i;
		}
		conn_start(&w->set, fd, &peer);
		atomic_fetch_add(&accepted, 1);
	}
	return i;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	(void)accept_batch(io->data);
}

static void pause_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct worker *w = tw->data;

	(void)revents;
	if (atomic_load(&w->set.t->active) < w->set.t->max_conns) {
		ev_timer_stop(loop, tw);
		if (!reach_is_down(&w->set.t->reach))
			ev_io_start(loop, &w->accept_w);
	}
}

/* reach_cb: the listeners were shut or opened again; follow with the watcher
 * (unless accepting waits for max-conns, whose timer restarts it). */
static void reach_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = a->data;

	(void)revents;
	if (w->lfd < 0)
		return;
	if (reach_is_down(&w->set.t->reach)) {
		ev_io_stop(loop, &w->accept_w);
		conn_set_probe_now(&w->set);	/* if it is this worker that probes */
	} else if (!ev_is_active(&w->pause_w))
		ev_io_start(loop, &w->accept_w);
}

/* listener_close(w): stop following and close w's listener. */
static void listener_close(struct worker *w)
{
	if (w->lfd < 0)
		return;
	reach_remove(&w->set.t->reach, w->lfd);
	close(w->lfd);
	w->lfd = -1;
}

static void flush_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	const struct role *role = tw->data;

	(void)loop;
	(void)revents;
	role->flush(0);
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
		/* What already waits in the backlog was connected: take it and let
		 * it finish like the rest, rather than reset it with the listener. */
		if (!atomic_load(&w->force))
			while (accept_batch(w) == ACCEPT_BATCH)
				;
		ev_io_stop(loop, &w->accept_w);
		ev_timer_stop(loop, &w->pause_w);
		listener_close(w);
	}
	watch_stop(loop, &w->watch);
	conn_set_stop(&w->set, atomic_load(&w->force));
}

struct worker *worker_new(struct tunnel *t, int lfd)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct ev_loop *loop = NULL;

	if (w == NULL || (loop = ev_loop_new(EVFLAG_AUTO)) == NULL ||
	    conn_set_init(&w->set, loop, t) < 0) {
		if (loop != NULL)
			ev_loop_destroy(loop);
		free(w);
		close(lfd);
		log_error("cannot create an event loop", NULL);
		return NULL;
	}
	w->lfd = lfd;
	w->set.on_empty = on_empty;
	ev_set_userdata(loop, w);
	ev_io_init(&w->accept_w, accept_cb, lfd, EV_READ);
	/* Work in progress first: in each loop iteration, the connections'
	 * events run before new ones are accepted.  So a handshake whose last
	 * message has arrived is finished before a newcomer counts against a
	 * budget (the server's --max-handshakes-per-ip, which a client opening
	 * in turns would otherwise overrun while the server lags behind it). */
	ev_set_priority(&w->accept_w, EV_MINPRI);
	w->accept_w.data = w;
	ev_init(&w->pause_w, pause_cb);
	w->pause_w.repeat = PAUSE_RETRY;
	w->pause_w.data = w;
	ev_async_init(&w->stop_w, stop_cb);
	w->stop_w.data = w;
	ev_async_init(&w->reach_w, reach_cb);
	w->reach_w.data = w;
	if (reach_add(&t->reach, lfd, loop, &w->reach_w) < 0) {
		log_error("too many listeners", NULL);
		conn_set_free(&w->set);
		ev_loop_destroy(loop);
		free(w);
		close(lfd);
		return NULL;
	}
	if (!reach_is_down(&t->reach))
		ev_io_start(loop, &w->accept_w);
	ev_async_start(loop, &w->stop_w);
	ev_async_start(loop, &w->reach_w);
	ev_timer_init(&w->flush_w, flush_cb, 1., 1.);
	w->flush_w.data = (void *)t->role;
	if (t->role->flush != NULL)
		ev_timer_start(loop, &w->flush_w);
	return w;
}

void worker_watch(struct worker *w, const struct workers_hooks *hooks)
{
	watch_start(w->set.loop, &w->watch, hooks);
}

/* Around the wait for events: let go of w->quiet while blocked. */
static void quiet_release(struct ev_loop *loop)
{
	struct worker *w = ev_userdata(loop);

	pthread_mutex_unlock(w->th.quiet);
}

static void quiet_acquire(struct ev_loop *loop)
{
	struct worker *w = ev_userdata(loop);

	pthread_mutex_lock(w->th.quiet);
}

/* tick_cb: the loop runs; the main thread pings the watchdog only while
 * every worker's count moves. */
static void tick_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct worker *w = tw->data;

	(void)loop;
	(void)revents;
	atomic_fetch_add(&w->ticks, 1);
}

/* worker_tick(w, every): before worker_start, count a tick every `every`
 * seconds on w's loop. */
static void worker_tick(struct worker *w, double every)
{
	ev_timer_init(&w->tick_w, tick_cb, every, every);
	w->tick_w.data = w;
	ev_timer_start(w->set.loop, &w->tick_w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->th.began != NULL)
		w->th.began(w->th.arg);
	if (w->th.quiet != NULL)
		pthread_mutex_lock(w->th.quiet);
	sem_post(&w->running);
	ev_run(w->set.loop, 0);
	atomic_store(&w->done, 1);
	ev_timer_stop(w->set.loop, &w->tick_w);
	watch_stop(w->set.loop, &w->watch);
	if (w->th.quiet != NULL)
		pthread_mutex_unlock(w->th.quiet);
	if (w->th.ended != NULL)
		w->th.ended(w->th.arg);
	return NULL;
}

int worker_start(struct worker *w, const struct worker_thread *th)
{
	pthread_attr_t attr;
	sigset_t old;
	int rc;

	if (th != NULL)
		w->th = *th;
	pthread_attr_init(&attr);
	if (w->th.stack != 0)
		pthread_attr_setstacksize(&attr, w->th.stack);
	if (w->th.quiet != NULL)
		ev_set_loop_release_cb(w->set.loop, quiet_release, quiet_acquire);
	thread_signals_block(&old);
	sem_init(&w->running, 0, 0);
	rc = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		sem_destroy(&w->running);
		log_error("cannot start a worker thread", "reason=%s", strerror(rc));
		return -1;
	}
	/* Return only once the thread is set up (its start-up allocates) and
	 * holds th.quiet: whoever takes th.quiet from now on sees it between
	 * events, never half-way through its own creation. */
	while (sem_wait(&w->running) != 0 && errno == EINTR)
		;
	sem_destroy(&w->running);
	w->started = 1;
	return 0;
}

void worker_stop(struct worker *w, int force)
{
	if (force)
		atomic_store(&w->force, 1);
	ev_async_send(w->set.loop, &w->stop_w);
}

void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->started)
		pthread_join(w->thread, NULL);
	listener_close(w);
	conn_set_free(&w->set);
	ev_loop_destroy(w->set.loop);
	free(w);
}

void worker_abandon(struct worker *w)
{
	conn_set_abandon(&w->set);
	listener_close(w);
	conn_set_free(&w->set);
	ev_loop_destroy(w->set.loop);	/* closes the loop's own fds; touches no watcher */
	free(w);
}

/* -------------------------------------------------------------------------
 * the daemons: n workers under a main loop that takes the signals */

struct main_state {
	struct ev_loop *loop;
	struct worker **w;
	int n, running, signals;
	atomic_int ended;
	ev_async done_w;	/* from a worker thread: it has ended */
	const struct workers_hooks *hooks;
	struct watch watch;
	struct tunnel *t;
	ev_timer trim_w;	/* gives freed memory back once a burst settles */
	ev_timer expiry_w;	/* the certificate expiry lines, daily */
	unsigned long trim_accepted;	/* `accepted` at the last trim */
	long trim_active, prev_active;	/* t->active at the last trim, at the last check */
	/* The service manager (notify.c): STATUS= and the watchdog. */
	ev_timer status_w;	/* STATUS= when it changes, every STATUS_EVERY s */
	ev_timer dog_w;		/* WATCHDOG=1 at half the manager's interval */
	unsigned long *seen;	/* each worker's ticks at the last check */
	int stalled;		/* a worker (index + 1) did not tick; 0: none */
	ev_tstamp stalled_at;	/* when that was first seen */
	int reload_failed;	/* the last SIGHUP reload failed */
	char status[256];	/* the last STATUS= sent */
};

/* status_text(m, buf, n): the STATUS= line: connections, accepting, the
 * last reload's failure, a stalled worker. */
static void status_text(const struct main_state *m, char *buf, size_t n)
{
	snprintf(buf, n, "STATUS=%s; connections: %ld active, %lu accepted%s%s",
	    m->signals > 0 ? "stopping" :
	    reach_is_down(&m->t->reach) ? "not accepting: no upstream answers" : "accepting",
	    atomic_load(&m->t->active), atomic_load(&accepted),
	    m->reload_failed ? "; the last reload failed, the previous configuration stays" : "",
	    m->stalled ? "; a worker's event loop is not running" : "");
}

/* status_send(m, extra): STATUS= now if it changed, after extra ("READY=1\n"...). */
static void status_send(struct main_state *m, const char *extra)
{
	char text[sizeof(m->status)], msg[sizeof(m->status) + 64];

	status_text(m, text, sizeof(text));
	if (*extra == '\0' && strcmp(text, m->status) == 0)
		return;
	snprintf(msg, sizeof(msg), "%s%s", extra, text);
	if (notify_send(msg) == 0)
		snprintf(m->status, sizeof(m->status), "%s", text);
}

static void status_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	(void)loop;
	(void)revents;
	status_send(tw->data, "");
}

/* dog_cb: ping the watchdog, but only if every worker's loop ticked since
 * the last check (a worker that ended counts as alive): a worker stuck in a
 * callback or a blocking call stops the pings, and systemd acts on it. */
static void dog_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct main_state *m = tw->data;
	int i, stalled = 0;

	(void)loop;
	(void)revents;
	for (i = 0; i < m->running; i++) {
		unsigned long t = atomic_load(&m->w[i]->ticks);

		if (t == m->seen[i] && !atomic_load(&m->w[i]->done) && stalled == 0)
			stalled = i + 1;
		m->seen[i] = t;
	}
	if (stalled == 0)
		(void)notify_send("WATCHDOG=1");
	if (stalled != 0 && m->stalled == 0) {
		m->stalled_at = ev_now(loop);
		m->stalled = stalled;
		status_send(m, "");	/* not logged now: the log may be what blocks it */
	} else if (stalled == 0 && m->stalled != 0) {
		log_warn("a worker's event loop did not run: the watchdog was not pinged",
		    "worker=%d for=%f", m->stalled - 1, ev_now(loop) - m->stalled_at);
		m->stalled = 0;
		status_send(m, "");
	}
}

static void signal_cb(struct ev_loop *loop, ev_signal *sw, int revents)
{
	struct main_state *m = sw->data;
	int i;

	(void)loop;
	(void)revents;
	if (sw->signum == SIGHUP) {
		if (m->hooks->reload != NULL) {
			(void)notify_reloading();
			m->reload_failed = m->hooks->reload(m->hooks->arg, 1) < 0;
			status_send(m, "READY=1\n");
		}
		return;
	}
	if (sw->signum == SIGUSR1) {
		if (m->hooks->reopen != NULL)
			m->hooks->reopen(m->hooks->arg);
		return;
	}
	m->signals++;
	atomic_store(&metrics_proc.listening, 0);
	if (m->signals == 1)
		log_info("stopping: no new connections, open ones may finish",
		    "signal=%d", sw->signum);
	else
		log_info("stopping now: dropping open connections", "signal=%d", sw->signum);
	if (m->signals == 1)
		status_send(m, "STOPPING=1\n");
	for (i = 0; i < m->running; i++)
		worker_stop(m->w[i], m->signals > 1);
}

/* trim_cb: give the memory of closed connections back to the system; the
 * allocator would keep the heap at its peak after a burst.  Every TRIM_EVERY
 * seconds on the main thread, never on a worker's path: trim when
 * connections came or went since the last trim and their number is not
 * rising (a burst has settled, or the load is steady).  Idle: nothing. */
static void trim_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct main_state *m = tw->data;
	unsigned long a = atomic_load(&accepted);
	long act = atomic_load(&m->t->active), prev = m->prev_active;
	ev_tstamp t0;
	int freed;

	(void)loop;
	(void)revents;
	m->prev_active = act;
	if (act > prev || (a == m->trim_accepted && act >= m->trim_active))
		return;
	m->trim_accepted = a;
	m->trim_active = act;
	t0 = ev_time();
	freed = malloc_trim(0);
	log_debug("memory trimmed", "active=%ld released=%d took=%f", act, freed,
	    ev_time() - t0);
}

/* expiry_cb: once a day, the lines for certificates close to expiry (also
 * at start and after each reload: daemon.c, reload.c). */
static void expiry_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
	struct main_state *m = tw->data;
	struct tls_policy *p = tls_policy_get(&m->t->policy);

	(void)loop;
	(void)revents;
	metrics_expiry_lines(p, time(NULL));
	tls_policy_release(p);
}

/* On a worker's thread, as it ends. */
static void worker_ended(void *arg)
{
	struct main_state *m = arg;

	atomic_fetch_add(&m->ended, 1);
	ev_async_send(m->loop, &m->done_w);
}

static void done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct main_state *m = a->data;

	(void)revents;
	if (atomic_load(&m->ended) == m->running)
		ev_break(loop, EVBREAK_ALL);
}

int workers_listen(const struct sock_addr *listen, int n, int *lfds)
{
	char addr[SOCK_NTOP_MAX];
	int i;

	for (i = 0; i < n; i++)
		if ((lfds[i] = sock_listen(listen, 1)) < 0) {
			log_error("cannot listen", "listen=%s reason=%s", sock_ntop(listen, addr),
			    strerror(errno));
			while (i-- > 0)
				close(lfds[i]);
			return -1;
		}
	return 0;
}

int workers_run(struct tunnel *t, const struct sock_addr *listen, int *lfds, int n,
    const struct workers_hooks *hooks)
{
	struct main_state m = { .loop = ev_default_loop(0), .n = n, .hooks = hooks, .t = t };
	double dog = notify_watchdog();
	static const int signums[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	enum { NSIG_WATCHED = sizeof(signums) / sizeof(signums[0]) };
	ev_signal sig[NSIG_WATCHED];
	char addr[SOCK_NTOP_MAX];
	int i, rc = 1;

	if (m.loop == NULL || (m.w = calloc((size_t)n, sizeof(*m.w))) == NULL ||
	    (m.seen = calloc((size_t)n, sizeof(*m.seen))) == NULL) {
		free(m.w);
		log_error("cannot set up the event loop", NULL);
		for (i = 0; i < n; i++)
			close(lfds[i]);
		return 1;
	}
	ev_async_init(&m.done_w, done_cb);
	m.done_w.data = &m;
	ev_async_start(m.loop, &m.done_w);

	for (i = 0; i < n; i++) {
		if ((m.w[i] = worker_new(t, lfds[i])) == NULL) {	/* takes lfds[i] */
			while (++i < n)
				close(lfds[i]);
			goto out;
		}
		if (dog > 0.)	/* four ticks a watchdog interval, two between pings */
			worker_tick(m.w[i], dog / 4.);
	}
	for (i = 0; i < n; i++) {
		struct worker_thread th = { .ended = worker_ended, .arg = &m };

		if (worker_start(m.w[i], &th) < 0)
			break;
		m.running++;
	}

	for (i = 0; i < NSIG_WATCHED; i++) {
		ev_signal_init(&sig[i], signal_cb, signums[i]);
		sig[i].data = &m;
		ev_signal_start(m.loop, &sig[i]);
	}
	watch_start(m.loop, &m.watch, hooks);
	ev_timer_init(&m.trim_w, trim_cb, TRIM_EVERY, TRIM_EVERY);
	m.trim_w.data = &m;
	ev_timer_start(m.loop, &m.trim_w);
	ev_timer_init(&m.expiry_w, expiry_cb, EXPIRY_EVERY, EXPIRY_EVERY);
	m.expiry_w.data = &m;
	ev_timer_start(m.loop, &m.expiry_w);
	if (m.running == n) {
		log_info("listening", "listen=%s workers=%d", sock_ntop(listen, addr), n);
		atomic_store(&metrics_proc.listening, 1);
		if (t->role->attach != NULL)
			t->role->attach(t, m.loop, listen);
		rc = 0;
		/* Bound and every worker runs: ready.  Then STATUS= as it changes
		 * and, if the manager asked, the watchdog's pings. */
		status_send(&m, "READY=1\n");
		ev_timer_init(&m.status_w, status_cb, STATUS_EVERY, STATUS_EVERY);
		m.status_w.data = &m;
		ev_timer_start(m.loop, &m.status_w);
		if (dog > 0.) {
			ev_timer_init(&m.dog_w, dog_cb, dog / 2., dog / 2.);
			m.dog_w.data = &m;
			ev_timer_start(m.loop, &m.dog_w);
		}
	} else {
		m.signals = 1;	/* a thread failed: stop the ones that run */
		for (i = 0; i < m.running; i++)
			worker_stop(m.w[i], 0);
	}
	if (m.running > 0)
		ev_run(m.loop, 0);
	for (i = 0; i < NSIG_WATCHED; i++)
		ev_signal_stop(m.loop, &sig[i]);
	watch_stop(m.loop, &m.watch);
	ev_timer_stop(m.loop, &m.trim_w);
	if (rc == 0) {
		ev_timer_stop(m.loop, &m.status_w);
		ev_timer_stop(m.loop, &m.dog_w);
	}
	ev_timer_stop(m.loop, &m.expiry_w);
	atomic_store(&metrics_proc.listening, 0);
	if (rc == 0 && t->role->detach != NULL)
		t->role->detach(t, m.loop);
	if (t->role->flush != NULL)
		t->role->flush(1);	/* the counts of the last rate-limited lines */
	if (rc == 0)
		log_info("stopped", NULL);
out:
	for (i = 0; i < n; i++)
		worker_free(m.w[i]);
	ev_async_stop(m.loop, &m.done_w);
	ev_loop_destroy(m.loop);
	free(m.w);
	free(m.seen);
	return rc;
}
