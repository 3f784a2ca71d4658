/*-
 * preload_inline: inline mode of libtlsfwd-preload.so — the tlsfwd-client
 * core on a background thread of the host program, no daemon.
 *
 *   LD_PRELOAD=libtlsfwd-preload.so TLSFWD_INTERCEPT=fluentd.internal:24224 \
 *       TLSFWD_CONFIG=/etc/tlsfwd/client.conf ./app
 *
 * The client's own configuration file is read when the library loads, so a
 * bad one is reported at start-up.  The first intercepted connect starts the
 * core: TLS policy and servers as tlsfwd-client would set them up, a listener
 * on 127.0.0.1:0 and one worker (shared/worker.c) on its own thread.  None of
 * it runs on the host program's stack, which may be a 24 KiB coroutine's
 * (Fluent Bit): the start (and the exit wait) run on a thread of the shim's
 * own that the caller waits for, and both threads choose their stack size
 * (PRELOAD_STACK; loading the key takes about 34 KiB, a handshake 24).
 * The hooks connect the application's socket to that listener, so the
 * application's socket stays an ordinary kernel socket (blocking,
 * non-blocking, poll, epoll and select all behave as without the shim).
 *
 * Around fork: the worker holds core.quiet except while it waits for events;
 * the prepare handler takes it, so the child is forked between events, with
 * wolfSSL and libev in a consistent state.  The child then closes the
 * parent's tunnel sockets (the parent still owns those connections) and
 * starts a core of its own on its next intercepted connect.
 *
 * At exit: the application's remaining redirected sockets are half-closed,
 * so the core reads what they sent and passes the end on, and the exit waits
 * (at most EXIT_WAIT seconds) until every tunnel has delivered and closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "preload.h"
#include "reload.h"
#include "tls.h"
#include "worker.h"

#define EXIT_WAIT 5.0		/* seconds an exiting program waits for its tunnels */

enum core_state { CORE_IDLE, CORE_RUNNING, CORE_FAILED };

static struct {
	pthread_mutex_t lock;	/* start, exit and fork */
	pthread_cond_t done;	/* the worker has ended */
	pthread_mutex_t quiet;	/* the worker holds it except while waiting for events */
	int configured;		/* cfg holds a loaded configuration */
	enum core_state state;
	int ended;
	struct config cfg;
	struct tunnel t;
	struct reload r;
	struct worker *w;
	struct sockaddr_in addr;	/* the core's listener */
} core = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.quiet = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

int inline_configure(const char *path, char *problem, size_t n)
{
	static char prog[] = "tlsfwd-preload", flag[] = "--config";	/* cfg keeps prog */
	char *argv[] = { prog, flag, (char *)path, NULL }, err[1024];

	if (config_load(&core.cfg, &client_role, prog, 3, argv, err, sizeof(err)) < 0) {
		snprintf(problem, n, "TLSFWD_CONFIG: %s", err);
		config_free(&core.cfg);
		return -1;
	}
	core.configured = 1;
	return 0;
}

/* On the worker's thread. */
static void core_began(void *arg)
{
	(void)arg;
	preload_inside = 1;	/* the core's own connects go straight to libc */
}

static void core_ended(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&core.lock);
	core.ended = 1;
	pthread_cond_broadcast(&core.done);
	pthread_mutex_unlock(&core.lock);
}

/* core_release(): free what a stopped (or, in a child, abandoned) core held. */
static void core_release(void)
{
	reload_close(&core.r);
	daemon_tunnel_close(&core.t);
	tls_cleanup();
	core.w = NULL;
	core.state = CORE_IDLE;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&core.lock);
	if (core.state == CORE_RUNNING && !core.ended)
		pthread_mutex_lock(&core.quiet);
}

static void fork_parent(void)
{
	if (core.state == CORE_RUNNING && !core.ended)
		pthread_mutex_unlock(&core.quiet);
	pthread_mutex_unlock(&core.lock);
}

static void fork_child(void)
{
	/* This thread is the only one: the locks are ours to reset. */
	pthread_mutex_init(&core.lock, NULL);
	pthread_mutex_init(&core.quiet, NULL);
	pthread_cond_init(&core.done, NULL);
	if (core.state == CORE_RUNNING) {
		worker_abandon(core.w);
		core_release();
	}
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* core_start(err, errsz): with core.lock held. */
static int core_start(char *err, size_t errsz)
{
	struct sock_addr listen = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&listen.ss;
	struct worker_thread th = { &core.quiet, core_began, core_ended, NULL, PRELOAD_STACK };
	socklen_t len = sizeof(core.addr);
	int lfd;

	log_setup("tlsfwd-preload", (enum log_level)core.cfg.log_level,
	    (enum log_format)core.cfg.log_format);
	log_set_output(preload_stderr);
	if (tls_init() < 0) {
		snprintf(err, errsz, "cannot initialise wolfSSL");
		return -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&core.t, 0, sizeof(core.t));
	core.t.role = &client_role;
	core.cfg.workers = 1;		/* the core is one worker: its share is all */
	if (daemon_tunnel_open(&core.t, &core.cfg, &listen, err, errsz) < 0) {
		tls_cleanup();
		return -1;
	}
	if (daemon_tunnel_start(&core.t, &core.cfg, err, errsz) < 0) {
		daemon_tunnel_close(&core.t);
		tls_cleanup();
		return -1;
	}
	if ((lfd = sock_listen(&listen, 0)) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&core.addr, &len) < 0) {
		snprintf(err, errsz, "cannot listen on 127.0.0.1: %s", strerror(errno));
		if (lfd >= 0)
			close(lfd);
		goto fail;
	}
	if ((core.w = worker_new(&core.t, lfd)) == NULL) {
		snprintf(err, errsz, "cannot create the event loop");
		goto fail;
	}
	reload_init(&core.r, &core.cfg, &core.t);
	worker_watch(core.w, &core.r.hooks);
	pthread_once(&atfork_once, register_atfork);
	core.ended = 0;
	if (worker_start(core.w, &th) < 0) {
		snprintf(err, errsz, "cannot start the client thread");
		worker_free(core.w);
		reload_close(&core.r);
		goto fail;
	}
	return 0;
fail:
	core.w = NULL;
	daemon_tunnel_close(&core.t);
	tls_cleanup();
	return -1;
}

/*- On the shim's own thread (preload_offstack), with core.lock held by the
 * connecting thread that waits for it: loading the key alone (wolfSSL's
 * P-256 key check) takes more stack than a coroutine of the host has. */
static void core_start_off(void *arg)
{
	char err[1024];

	(void)arg;
	if (core_start(err, sizeof(err)) == 0) {
		core.state = CORE_RUNNING;
	} else {
		core.state = CORE_FAILED;
		preload_say("TLSFWD_CONFIG %s: %s; connections to intercepted addresses "
		    "will be refused", core.cfg.config_file, err);
	}
}

int inline_target(struct sockaddr_in *to)
{
	static atomic_int no_thread_reported;
	int rc;

	pthread_mutex_lock(&core.lock);
	/* A thread that cannot be created now (EAGAIN) may be later: this
	 * connect is refused, the next one tries again. */
	if (core.state == CORE_IDLE && core.configured &&
	    (rc = preload_offstack(core_start_off, NULL)) != 0 &&
	    atomic_exchange(&no_thread_reported, 1) == 0)
		preload_say_plain("cannot start a thread to start the client core; intercepted "
		    "connections are refused until one can be started:", strerror(rc));
	rc = core.state == CORE_RUNNING ? 0 : -1;
	if (rc == 0)
		*to = core.addr;
	pthread_mutex_unlock(&core.lock);
	return rc;
}

/* At exit, on the shim's own thread if one can be started. */
static void inline_exit_off(void *arg)
{
	struct timespec deadline;

	(void)arg;
	pthread_mutex_lock(&core.lock);
	if (core.state == CORE_RUNNING) {
		preload_inside = 1;
		preload_half_close(&core.addr);	/* the program sends no more */
		worker_stop(core.w, 0);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += (time_t)EXIT_WAIT;
		while (!core.ended &&
		    pthread_cond_timedwait(&core.done, &core.lock, &deadline) != ETIMEDOUT)
			;
		if (core.ended) {
			worker_free(core.w);
			core_release();
		} else {
			preload_say("exiting with %ld tunnelled connection(s) still open after "
			    "%.0f s; what they have not delivered is lost",
			    atomic_load(&core.t.active), EXIT_WAIT);
		}
	}
	if (core.configured && core.state != CORE_RUNNING) {
		config_free(&core.cfg);
		core.configured = 0;
	}
	pthread_mutex_unlock(&core.lock);
}

__attribute__((destructor))
static void inline_exit(void)
{
	if (!core.configured || preload_offstack(inline_exit_off, NULL) != 0)
		inline_exit_off(NULL);
}
