/*-
 * preload: libtlsfwd-preload.so, the LD_PRELOAD shim (issue #6): the hooks.
 *
 *   LD_PRELOAD=libtlsfwd-preload.so TLSFWD_INTERCEPT=fluentd.internal:24224 \
 *       TLSFWD_CLIENT=127.0.0.1:24224 ./app          (redirect mode)
 *       TLSFWD_CONFIG=/etc/tlsfwd/client.conf ./app  (inline mode)
 *
 * A TCP connect() to an address listed in TLSFWD_INTERCEPT is sent to the
 * tlsfwd-client at TLSFWD_CLIENT, or in inline mode to the client core that
 * preload_inline.c runs inside the process; everything else goes straight to
 * libc.  getpeername() on a redirected socket still reports the address the
 * application asked for.  A misconfigured shim says so on one stderr line and
 * refuses intercepted connects (ECONNREFUSED): it never fails open.
 *
 * Shape follows proxychains-ng: the real libc symbols are resolved once with
 * dlsym(RTLD_NEXT) under pthread_once, the configuration is read once (also
 * under pthread_once, from the constructor or the first hook), and each hook
 * classifies the address and passes through or rewrites.  Only the hooks are
 * exported (client/preload.map); the client core, wolfSSL and libev inside
 * are hidden.  What the environment says and the intercept rules are
 * preload_env.c; the inline client core is preload_inline.c.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define PRELOAD_EXPORT __attribute__((visibility("default")))

#define PEERS_MAX 65536		/* fds above this are redirected but not remembered */

/* A redirected fd: what the application asked for, where it really went. */
struct peer {
	atomic_int used;
	union inaddr orig;
	union inaddr target;
};

static struct {
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
} real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;
__thread int preload_inside;
static struct peer *_Atomic peers;
static size_t npeers;

/* -------------------------------------------------------------------------
 * real libc symbols */

/*- Used only if dlsym(RTLD_NEXT) finds nothing or finds this library again
 * (a self-reference would recurse forever): the bare system calls. */
static int sys_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, a, len);
}

static int sys_getpeername(int fd, struct sockaddr *a, socklen_t *len)
{
	return (int)syscall(SYS_getpeername, fd, a, len);
}

static int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int sys_dup(int fd)
{
	return (int)syscall(SYS_dup, fd);
}

static int sys_dup3(int fd, int fd2, int flags)
{
	return (int)syscall(SYS_dup3, fd, fd2, flags);
}

static int sys_dup2(int fd, int fd2)
{
	if (fd == fd2)
		return fcntl(fd, F_GETFD) < 0 ? -1 : fd2;
	return sys_dup3(fd, fd2, 0);
}

static void *real_sym(const char *name, void *self, void *fallback)
{
	void *p = dlsym(RTLD_NEXT, name);

	return p == NULL || p == self ? fallback : p;
}

static void real_resolve(void)
{
	real.connect = real_sym("connect", (void *)connect, (void *)sys_connect);
	real.getpeername = real_sym("getpeername", (void *)getpeername,
	    (void *)sys_getpeername);
	real.close = real_sym("close", (void *)close, (void *)sys_close);
	real.dup = real_sym("dup", (void *)dup, (void *)sys_dup);
	real.dup2 = real_sym("dup2", (void *)dup2, (void *)sys_dup2);
	real.dup3 = real_sym("dup3", (void *)dup3, (void *)sys_dup3);
}

/* -------------------------------------------------------------------------
 * the shim's own threads */

struct offstack {
	void (*fn)(void *);
	void *arg;
};

/* The thread preload_offstack() starts: fn(arg) with the hooks passing through. */
static void *offstack_main(void *p)
{
	struct offstack *o = p;

	preload_inside = 1;	/* its connects (DNS, the core's own) go to libc */
	o->fn(o->arg);
	return NULL;
}

/*- The caller's thread only creates the thread and joins it (glibc's
 * pthread_create takes about a KiB of stack).  Cancellation is off while it
 * waits: the caller may hold the shim's locks, which the thread still needs. */
int preload_offstack(void (*fn)(void *), void *arg)
{
	struct offstack o = { fn, arg };
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int rc, cancel;

	if ((rc = pthread_attr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_attr_setstacksize(&attr, PRELOAD_STACK)) == 0) {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&t, &attr, offstack_main, &o);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc == 0)
			pthread_join(t, NULL);
		pthread_setcancelstate(cancel, NULL);
	}
	pthread_attr_destroy(&attr);
	return rc;
}

/* -------------------------------------------------------------------------
 * what the shim says */

/*- The host program's fd 2, unless it has become an internet socket: a
 * program that closed stderr may have reused fd 2 for a connection (inetd-style
 * services even run with it), and a line written there would corrupt that
 * stream.  A terminal, file, pipe or Unix socket (journald) is fine. */
void preload_stderr(const char *line, size_t n)
{
	int domain;
	socklen_t len = sizeof(domain);

	if (getsockopt(STDERR_FILENO, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    (domain == AF_INET || domain == AF_INET6))
		return;
	(void)!write(STDERR_FILENO, line, n);
}

void preload_say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof(line), "tlsfwd-preload: ");

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	preload_stderr(line, (size_t)n);
}

void preload_say_plain(const char *what, const char *detail)
{
	static const char prefix[] = "tlsfwd-preload: ";
	char line[256];
	size_t n = sizeof(prefix) - 1, k;

	memcpy(line, prefix, n);
	k = strnlen(what, sizeof(line) - 2 - n);
	memcpy(line + n, what, k);
	n += k;
	if (detail != NULL && n < sizeof(line) - 3) {
		line[n++] = ' ';
		k = strnlen(detail, sizeof(line) - 2 - n);
		memcpy(line + n, detail, k);
		n += k;
	}
	line[n++] = '\n';
	preload_stderr(line, n);
}

/* The fd -> original address table; sized by RLIMIT_NOFILE, pages touched lazily. */
static void peers_alloc(void)
{
	struct rlimit rl;
	size_t n = PEERS_MAX;
	struct peer *t;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < n)
		n = (size_t)rl.rlim_cur;
	if ((t = calloc(n, sizeof(*t))) == NULL)
		return;			/* getpeername then reports the tlsfwd-client */
	npeers = n;
	atomic_store_explicit(&peers, t, memory_order_release);
}

/*- Runs once: the environment, then (if the shim intercepts) the fd table. */
static void cfg_load(void)
{
	if (preload_env_load())
		peers_alloc();
}

/* cfg_load() on the shim's own thread: the first hook may run on a small stack. */
static void cfg_load_off(void *arg)
{
	(void)arg;
	cfg_load();
}

/*- The configuration as the first hook to run loads it (if it ran before the
 * constructor): off the caller's stack, or failing closed without a thread. */
static void cfg_load_hook(void)
{
	int rc;

	if (getenv("TLSFWD_INTERCEPT") == NULL)
		return;		/* the common case: nothing to load */
	if ((rc = preload_offstack(cfg_load_off, NULL)) != 0) {
		preload_env_fail_closed();
		preload_say_plain("cannot start a thread to read the configuration; connections "
		    "to intercepted addresses will be refused:", strerror(rc));
	}
}

static void preload_init(void)
{
	pthread_once(&real_once, real_resolve);
}

/* The shim's own traffic (resolving names, the inline core) goes straight to libc. */
static int preload_ready(void)
{
	preload_init();
	if (preload_inside)
		return 0;
	pthread_once(&cfg_once, cfg_load_hook);
	return preload_env_active();
}

/*- Read the configuration when the library loads (on the thread loading it,
 * whose stack is the program's main one), so a misconfiguration is reported
 * at start-up rather than at the first connect. */
__attribute__((constructor))
static void preload_constructor(void)
{
	preload_init();
	pthread_once(&cfg_once, cfg_load);
}

/* -------------------------------------------------------------------------
 * classification */

enum verdict { PASS, REDIRECT, REFUSE };

/* connect_classify(fd, sa, len, to): whether a connect of fd to sa passes
 * through, goes to *to instead, or is refused. */
static enum verdict connect_classify(int fd, const struct sockaddr *sa, socklen_t len,
    union inaddr *to)
{
	socklen_t optlen = sizeof(int);
	int type, domain;

	if (!preload_ready() || sa == NULL || !preload_env_intercepted(sa, len))
		return PASS;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0 || type != SOCK_STREAM)
		return PASS;		/* UDP and friends are not tunnelled */
	optlen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) != 0)
		domain = sa->sa_family;
	if (preload_env_target(domain, to) != 0)
		return REFUSE;
	return REDIRECT;
}

/* -------------------------------------------------------------------------
 * the fd table (lock-free: close() may run in a signal handler or after fork) */

static struct peer *peer_slot(int fd)
{
	struct peer *t = atomic_load_explicit(&peers, memory_order_acquire);

	return t != NULL && fd >= 0 && (size_t)fd < npeers ? &t[fd] : NULL;
}

static void peer_forget(int fd)
{
	struct peer *p = peer_slot(fd);

	if (p != NULL && atomic_load_explicit(&p->used, memory_order_relaxed))
		atomic_store_explicit(&p->used, 0, memory_order_release);
}

static void peer_remember(int fd, const struct sockaddr *orig, socklen_t len,
    const union inaddr *target)
{
	struct peer *p = peer_slot(fd);

	if (p == NULL)
		return;
	atomic_store_explicit(&p->used, 0, memory_order_relaxed);
	memset(&p->orig, 0, sizeof(p->orig));
	memcpy(&p->orig, orig, len < sizeof(p->orig) ? len : sizeof(p->orig));
	p->target = *target;
	atomic_store_explicit(&p->used, 1, memory_order_release);
}

void preload_half_close(const struct sockaddr_in *to)
{
	struct peer *t = atomic_load_explicit(&peers, memory_order_acquire);
	struct sockaddr_storage got;
	socklen_t len;
	size_t fd;

	for (fd = 0; t != NULL && fd < npeers; fd++) {
		if (!atomic_load_explicit(&t[fd].used, memory_order_acquire))
			continue;
		len = sizeof(got);
		if (real.getpeername((int)fd, (struct sockaddr *)&got, &len) == 0 &&
		    preload_addr_same((struct sockaddr *)&got, len, (const struct sockaddr *)to, sizeof(*to)))
			(void)shutdown((int)fd, SHUT_WR);
	}
}

static void peer_copy(int from, int to)
{
	struct peer *p = peer_slot(from);

	if (p != NULL && atomic_load_explicit(&p->used, memory_order_acquire))
		peer_remember(to, &p->orig.sa, preload_addr_len(&p->orig), &p->target);
	else
		peer_forget(to);
}

/* -------------------------------------------------------------------------
 * the hooks */

PRELOAD_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	union inaddr to;

	switch (connect_classify(fd, addr, len, &to)) {
	case REDIRECT:
		peer_remember(fd, addr, len, &to);
		return real.connect(fd, &to.sa, preload_addr_len(&to));
	case REFUSE:
		peer_forget(fd);
		errno = ECONNREFUSED;
		return -1;
	case PASS:
		break;
	}
	peer_forget(fd);
	return real.connect(fd, addr, len);
}

/*- Reports the original address only while the kernel's peer is still the
 * tlsfwd-client we redirected to, so a stale entry (an fd closed behind the
 * shim's back, e.g. by fclose or close_range) can never mislabel a socket. */
PRELOAD_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct peer *p;
	struct sockaddr_storage got;
	socklen_t gotlen = sizeof(got), n;
	union inaddr orig;

	preload_init();
	p = peer_slot(fd);
	if (p == NULL || !atomic_load_explicit(&p->used, memory_order_acquire) || len == NULL)
		return real.getpeername(fd, addr, len);
	orig = p->orig;
	if (real.getpeername(fd, (struct sockaddr *)&got, &gotlen) != 0)
		return -1;
	if (preload_addr_same((struct sockaddr *)&got, gotlen, &p->target.sa, preload_addr_len(&p->target))) {
		memcpy(&got, &orig, sizeof(orig));
		gotlen = preload_addr_len(&orig);
	}
	n = gotlen < *len ? gotlen : *len;
	memcpy(addr, &got, n);
	*len = gotlen;
	return 0;
}

PRELOAD_EXPORT int close(int fd)
{
	preload_init();
	peer_forget(fd);
	return real.close(fd);
}

PRELOAD_EXPORT int dup(int fd)
{
	int r;

	preload_init();
	if ((r = real.dup(fd)) >= 0)
		peer_copy(fd, r);
	return r;
}

PRELOAD_EXPORT int dup2(int fd, int fd2)
{
	int r;

	preload_init();
	if ((r = real.dup2(fd, fd2)) >= 0 && fd != fd2)
		peer_copy(fd, r);
	return r;
}

PRELOAD_EXPORT int dup3(int fd, int fd2, int flags)
{
	int r;

	preload_init();
	if ((r = real.dup3(fd, fd2, flags)) >= 0)
		peer_copy(fd, r);
	return r;
}
