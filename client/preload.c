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
 * are hidden.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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
#include <time.h>
#include <unistd.h>

#include "preload.h"
#include "sock.h"

#define PRELOAD_EXPORT __attribute__((visibility("default")))

#define RULES_MAX 64		/* intercept rules given as addresses, prefixes or "*" */
#define NAMES_MAX 16		/* intercept rules given as host names */
#define RESOLVED_MAX 256	/* addresses those names have resolved to, ever */
#define RESOLVE_EVERY 1		/* default TLSFWD_RESOLVE_EVERY, seconds */
#define PEERS_MAX 65536		/* fds above this are redirected but not remembered */
#define SPEC_MAX 300		/* one host:port entry */

union inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* One intercepted destination: family 0 matches any address, port 0 any port. */
struct rule {
	int family;
	unsigned char addr[16];
	unsigned prefix;
	in_port_t port;			/* network order */
};

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

static struct {
	int active;			/* TLSFWD_INTERCEPT is set and not empty */
	int inline_mode;		/* TLSFWD_CONFIG: the client core runs in-process */
	int broken;			/* misconfigured: refuse every intercepted connect */
	struct rule rules[RULES_MAX];
	size_t nrules;
	struct name {
		char host[SPEC_MAX];
		in_port_t port;		/* network order */
	} names[NAMES_MAX];
	size_t nnames;
	long resolve_every;		/* TLSFWD_RESOLVE_EVERY; -1 ("off"): at load only */
	union inaddr client4, client6;	/* TLSFWD_CLIENT, per family */
	int has4, has6;
	char problem[400];		/* the first misconfiguration, reported once */
} cfg;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;
__thread int preload_inside;
/*- The addresses the names resolved to: append-only, so a reader needs no
 * lock (it reads the entries below the count it loaded); writers take
 * resolve_lock.  Once intercepted, an address stays intercepted: a program
 * may still connect to an address it resolved earlier. */
static struct rule resolved[RESOLVED_MAX];
static atomic_size_t nresolved;
static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
static long last_resolve;		/* CLOCK_MONOTONIC seconds, under resolve_lock */
static atomic_int full_reported, refresh_reported;
static struct peer *_Atomic peers;
static size_t npeers;
static atomic_int family_reported;

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
 * configuration */

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

__attribute__((format(printf, 1, 2)))
static void cfg_problem(const char *fmt, ...)
{
	va_list ap;

	if (cfg.broken)
		return;			/* keep the first one */
	cfg.broken = 1;
	va_start(ap, fmt);
	vsnprintf(cfg.problem, sizeof(cfg.problem), fmt, ap);
	va_end(ap);
}

/* split_hostport(spec, host, port, why): sock_split()'s "host:port" or
 * "[v6]:port" with the port in network order.  Returns 0, or -1 with *why. */
static int split_hostport(const char *spec, char *host, in_port_t *port, const char **why)
{
	char digits[8];

	if (sock_split(spec, host, SPEC_MAX, digits, sizeof(digits), why) < 0)
		return -1;
	*port = htons((uint16_t)atoi(digits));	/* sock_split checked 1-65535 */
	return 0;
}

static int rule_add(int family, const void *addr, unsigned prefix, in_port_t port)
{
	struct rule *r;

	if (cfg.nrules == RULES_MAX) {
		cfg_problem("TLSFWD_INTERCEPT: more than %d addresses", RULES_MAX);
		return -1;
	}
	r = &cfg.rules[cfg.nrules++];
	r->family = family;
	if (addr != NULL)
		memcpy(r->addr, addr, family == AF_INET ? 4 : 16);
	r->prefix = prefix;
	r->port = port;
	return 0;
}

/*- rule_literal(host, port): a rule for "*", an address or an address/prefix.
 * Returns 0, 1 if host is none of those (a name), or -1 (a bad prefix). */
static int rule_literal(const char *host, in_port_t port)
{
	char a[SPEC_MAX], *slash, *end;
	unsigned char bin[16];
	long prefix = -1;
	int family;

	if (strcmp(host, "*") == 0)
		return rule_add(0, NULL, 0, port);
	snprintf(a, sizeof(a), "%s", host);
	if ((slash = strchr(a, '/')) != NULL) {
		*slash = '\0';
		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno != 0)
			return -1;
	}
	if (inet_pton(AF_INET, a, bin) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, a, bin) == 1)
		family = AF_INET6;
	else
		return slash != NULL ? -1 : 1;
	if (prefix < 0)
		prefix = family == AF_INET ? 32 : 128;
	if (prefix > (family == AF_INET ? 32 : 128))
		return -1;
	return rule_add(family, bin, (unsigned)prefix, port);
}

static int same_rule(const struct rule *r, int family, const void *addr, in_port_t port)
{
	return r->family == family && r->port == port &&
	    memcmp(r->addr, addr, family == AF_INET ? 4 : 16) == 0;
}

/* resolved_add(family, addr, port): publish one more resolved address. */
static void resolved_add(int family, const void *addr, in_port_t port)
{
	size_t i, n = atomic_load_explicit(&nresolved, memory_order_relaxed);
	struct rule *r;

	for (i = 0; i < n; i++)
		if (same_rule(&resolved[i], family, addr, port))
			return;
	if (n == RESOLVED_MAX) {
		if (atomic_exchange(&full_reported, 1) == 0)
			preload_say("TLSFWD_INTERCEPT names resolved to more than %d addresses; "
			    "further new addresses are not intercepted", RESOLVED_MAX);
		return;
	}
	r = &resolved[n];
	r->family = family;
	memcpy(r->addr, addr, family == AF_INET ? 4 : 16);
	r->prefix = family == AF_INET ? 32 : 128;
	r->port = port;
	atomic_store_explicit(&nresolved, n + 1, memory_order_release);
}

/*- resolve_name(nm): add every address nm->host resolves to; 0, or the
 * getaddrinfo() error.  The caller holds resolve_lock and has set
 * preload_inside (the resolver may connect: DNS over TCP, nscd). */
static int resolve_name(const struct name *nm)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc = getaddrinfo(nm->host, NULL, &hints, &res);

	if (rc != 0)
		return rc;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			resolved_add(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, nm->port);
		else if (ai->ai_family == AF_INET6)
			resolved_add(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			    nm->port);
	}
	freeaddrinfo(res);
	return 0;
}

static long monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

/* A host name entry: remembered, and resolved now (at load). */
static void rule_resolve(const char *entry, const char *host, in_port_t port)
{
	struct name *nm;
	int rc;

	if (cfg.nnames == NAMES_MAX) {
		cfg_problem("TLSFWD_INTERCEPT: more than %d host names", NAMES_MAX);
		return;
	}
	nm = &cfg.names[cfg.nnames++];
	snprintf(nm->host, sizeof(nm->host), "%s", host);
	nm->port = port;
	pthread_mutex_lock(&resolve_lock);
	rc = resolve_name(nm);
	last_resolve = monotonic_seconds();
	pthread_mutex_unlock(&resolve_lock);
	if (rc != 0)
		cfg_problem("TLSFWD_INTERCEPT entry \"%s\": cannot resolve %s: %s",
		    entry, host, gai_strerror(rc));
}

/* Resolve every name again, on the shim's own thread: getaddrinfo() and the
 * NSS modules want kilobytes of stack.  The caller holds resolve_lock. */
static void refresh_resolve(void *arg)
{
	size_t i;
	int rc;

	(void)arg;
	for (i = 0; i < cfg.nnames; i++)
		if ((rc = resolve_name(&cfg.names[i])) != 0 &&
		    atomic_exchange(&refresh_reported, 1) == 0)
			preload_say("re-resolving %s failed (%s); the addresses it had stay "
			    "intercepted", cfg.names[i].host, gai_strerror(rc));
}

/*- refresh_names(port): a connect to an address no rule matches, on a port a
 * host name entry uses: the name may have moved (the program just resolved
 * it), so resolve the names again first — at most once per resolve_every
 * seconds — rather than let plaintext go to the new address.  Returns
 * non-zero if new addresses were added. */
static int refresh_names(in_port_t port)
{
	size_t i, before;
	long now;
	int used = 0, rc;

	for (i = 0; i < cfg.nnames && !used; i++)
		used = cfg.names[i].port == port;
	if (!used || cfg.resolve_every < 0)
		return 0;
	pthread_mutex_lock(&resolve_lock);
	before = atomic_load(&nresolved);
	now = monotonic_seconds();
	if (now - last_resolve >= cfg.resolve_every) {
		if ((rc = preload_offstack(refresh_resolve, NULL)) != 0 &&
		    atomic_exchange(&refresh_reported, 1) == 0)
			preload_say_plain("re-resolving the TLSFWD_INTERCEPT names failed (no "
			    "thread); the addresses they had stay intercepted:", strerror(rc));
		last_resolve = now;
	}
	pthread_mutex_unlock(&resolve_lock);
	return atomic_load(&nresolved) != before;
}

/*- A malformed entry is still intercepted as far as it can be read: a
 * literal address (or "*", or a prefix) before its last ':' or as the whole
 * entry is matched on every port, so a typo in the port never sends
 * plaintext to the address the user meant to protect. */
static void rule_salvage(const char *entry)
{
	char host[SPEC_MAX], *c;

	snprintf(host, sizeof(host), "%s", entry + (entry[0] == '['));
	if ((c = strchr(host, ']')) != NULL)
		*c = '\0';
	(void)rule_literal(host, 0);
	if ((c = strrchr(host, ':')) != NULL) {
		*c = '\0';
		(void)rule_literal(host, 0);
	}
}

static void cfg_intercept(const char *list)
{
	char entry[SPEC_MAX + 16], host[SPEC_MAX];
	const char *p = list, *why;
	in_port_t port;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		snprintf(entry, sizeof(entry), "%.*s", (int)n, p);
		p += n + (p[n] == ',');
		n = strlen(entry);
		while (n > 0 && (entry[n - 1] == ' ' || entry[n - 1] == '\t'))
			entry[--n] = '\0';
		if (n == 0)
			continue;
		if (n >= SPEC_MAX) {
			cfg_problem("TLSFWD_INTERCEPT entry \"%.40s...\": too long", entry);
			continue;
		}
		if (split_hostport(entry, host, &port, &why) != 0) {
			cfg_problem("TLSFWD_INTERCEPT entry \"%s\": %s", entry, why);
			rule_salvage(entry);
			continue;
		}
		switch (rule_literal(host, port)) {
		case 1:
			rule_resolve(entry, host, port);
			break;
		case -1:
			cfg_problem("TLSFWD_INTERCEPT entry \"%s\": bad address/prefix", entry);
			rule_salvage(entry);
			break;
		}
	}
}

static void cfg_client(const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char host[SPEC_MAX], port[8];
	const char *why;
	in_port_t nport;
	int rc;

	const char *conf = getenv("TLSFWD_CONFIG");

	if (spec != NULL && *spec != '\0' && conf != NULL && *conf != '\0') {
		cfg_problem("TLSFWD_CLIENT (redirect mode) and TLSFWD_CONFIG (inline mode) "
		    "are both set; set one");
		return;
	}
	if (conf != NULL && *conf != '\0') {
		char problem[sizeof(cfg.problem)];

		cfg.inline_mode = 1;
		if (inline_configure(conf, problem, sizeof(problem)) < 0)
			cfg_problem("%s", problem);
		return;
	}
	if (spec == NULL || *spec == '\0') {
		cfg_problem("TLSFWD_INTERCEPT is set but neither TLSFWD_CLIENT (the "
		    "tlsfwd-client listen address, host:port) nor TLSFWD_CONFIG (a client "
		    "configuration file, for inline mode) is");
		return;
	}
	if (split_hostport(spec, host, &nport, &why) != 0) {
		cfg_problem("TLSFWD_CLIENT \"%s\": %s", spec, why);
		return;
	}
	snprintf(port, sizeof(port), "%u", ntohs(nport));
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		cfg_problem("TLSFWD_CLIENT \"%s\": cannot resolve %s: %s", spec, host,
		    gai_strerror(rc));
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && !cfg.has4) {
			memcpy(&cfg.client4.sin, ai->ai_addr, sizeof(cfg.client4.sin));
			cfg.has4 = 1;
		} else if (ai->ai_family == AF_INET6 && !cfg.has6) {
			memcpy(&cfg.client6.sin6, ai->ai_addr, sizeof(cfg.client6.sin6));
			cfg.has6 = 1;
		}
	}
	freeaddrinfo(res);
	if (!cfg.has4 && !cfg.has6)
		cfg_problem("TLSFWD_CLIENT \"%s\": no IPv4 or IPv6 address", spec);
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

static void cfg_resolve_every(const char *v)
{
	char *end;
	long n;

	cfg.resolve_every = RESOLVE_EVERY;
	if (v == NULL || *v == '\0')
		return;
	if (strcmp(v, "off") == 0) {
		cfg.resolve_every = -1;
		return;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 86400) {
		cfg_problem("TLSFWD_RESOLVE_EVERY \"%s\": not a number of seconds (0-86400) "
		    "or off", v);
		return;
	}
	cfg.resolve_every = n;
}

/* In a child forked while another thread re-resolved: the lock is ours. */
static void resolve_child(void)
{
	pthread_mutex_init(&resolve_lock, NULL);
}

/*- Runs once.  getaddrinfo() may itself connect (DNS over TCP, nscd): those
 * calls come back into the hooks on this thread and pass straight through. */
static void cfg_load(void)
{
	const char *list = getenv("TLSFWD_INTERCEPT");

	if (list == NULL || list[strspn(list, " \t,")] == '\0')
		return;
	preload_inside = 1;
	cfg.active = 1;
	cfg_resolve_every(getenv("TLSFWD_RESOLVE_EVERY"));
	pthread_atfork(NULL, NULL, resolve_child);
	cfg_intercept(list);
	cfg_client(getenv("TLSFWD_CLIENT"));
	peers_alloc();
	preload_inside = 0;
	if (cfg.broken)
		preload_say("%s; connections to intercepted addresses will be refused", cfg.problem);
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
		cfg.active = cfg.broken = 1;	/* fail closed */
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
	return cfg.active;
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

/* An inet address as (family, 16 address bytes, port); v4-mapped IPv6 counts as IPv4. */
static int addr_key(const struct sockaddr *sa, socklen_t len, int *family,
    unsigned char a[16], in_port_t *port)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		*family = AF_INET;
		memcpy(a, &s->sin_addr, 4);
		*port = s->sin_port;
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			*family = AF_INET;
			memcpy(a, &s->sin6_addr.s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(a, &s->sin6_addr, 16);
		}
		*port = s->sin6_port;
		return 0;
	}
	return -1;
}

static int addr_same(const struct sockaddr *x, socklen_t xlen, const struct sockaddr *y,
    socklen_t ylen)
{
	unsigned char a[16], b[16];
	in_port_t pa, pb;
	int fa, fb;

	return addr_key(x, xlen, &fa, a, &pa) == 0 && addr_key(y, ylen, &fb, b, &pb) == 0 &&
	    fa == fb && pa == pb && memcmp(a, b, fa == AF_INET ? 4 : 16) == 0;
}

static socklen_t addr_len(const union inaddr *u)
{
	return u->sa.sa_family == AF_INET ? sizeof(u->sin) : sizeof(u->sin6);
}

static int rule_match(const struct rule *r, int family, const unsigned char *a, in_port_t port)
{
	unsigned full = r->prefix / 8, bits = r->prefix % 8;

	if (r->port != 0 && r->port != port)
		return 0;
	if (r->family == 0)
		return 1;
	if (r->family != family || memcmp(a, r->addr, full) != 0)
		return 0;
	return bits == 0 || ((a[full] ^ r->addr[full]) & (0xff00 >> bits) & 0xff) == 0;
}

static int intercepted(const struct sockaddr *sa, socklen_t len)
{
	unsigned char a[16];
	in_port_t port;
	int family;
	size_t i;

	if (addr_key(sa, len, &family, a, &port) != 0)
		return 0;
	if ((cfg.has4 && addr_same(sa, len, &cfg.client4.sa, sizeof(cfg.client4.sin))) ||
	    (cfg.has6 && addr_same(sa, len, &cfg.client6.sa, sizeof(cfg.client6.sin6))))
		return 0;		/* the tlsfwd-client itself: never loop */
	for (i = 0; i < cfg.nrules; i++)
		if (rule_match(&cfg.rules[i], family, a, port))
			return 1;
	for (;;) {
		size_t n = atomic_load_explicit(&nresolved, memory_order_acquire);

		for (i = 0; i < n; i++)
			if (rule_match(&resolved[i], family, a, port))
				return 1;
		if (!refresh_names(port))
			return 0;
	}
}

/*- Where an intercepted connect goes, in the socket's own family: an IPv6
 * socket reaches an IPv4 client through a v4-mapped address; an IPv4 socket
 * cannot reach an IPv6-only client (-1). */
static int redirect_target(int domain, union inaddr *to)
{
	union inaddr core;
	const union inaddr *c4 = &cfg.client4;
	int has4 = cfg.has4, has6 = cfg.has6;

	if (cfg.inline_mode) {		/* the in-process core: 127.0.0.1 only */
		if (inline_target(&core.sin) != 0)
			return -1;
		c4 = &core;
		has4 = 1;
	}
	if (domain == AF_INET && has4) {
		*to = *c4;
		return 0;
	}
	if (domain == AF_INET6 && has6) {
		*to = cfg.client6;
		return 0;
	}
	if (domain == AF_INET6 && has4) {
		memset(to, 0, sizeof(*to));
		to->sin6.sin6_family = AF_INET6;
		to->sin6.sin6_port = c4->sin.sin_port;
		to->sin6.sin6_addr.s6_addr[10] = 0xff;
		to->sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&to->sin6.sin6_addr.s6_addr[12], &c4->sin.sin_addr, 4);
		return 0;
	}
	if (atomic_exchange(&family_reported, 1) == 0)
		preload_say_plain("TLSFWD_CLIENT has no IPv4 address for an IPv4 socket; "
		    "intercepted IPv4 connections are refused", NULL);
	return -1;
}

enum verdict { PASS, REDIRECT, REFUSE };

static enum verdict connect_classify(int fd, const struct sockaddr *sa, socklen_t len,
    union inaddr *to)
{
	socklen_t optlen = sizeof(int);
	int type, domain;

	if (!preload_ready() || sa == NULL || !intercepted(sa, len))
		return PASS;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0 || type != SOCK_STREAM)
		return PASS;		/* UDP and friends are not tunnelled */
	optlen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) != 0)
		domain = sa->sa_family;
	if (cfg.broken || redirect_target(domain, to) != 0)
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
		    addr_same((struct sockaddr *)&got, len, (const struct sockaddr *)to, sizeof(*to)))
			(void)shutdown((int)fd, SHUT_WR);
	}
}

static void peer_copy(int from, int to)
{
	struct peer *p = peer_slot(from);

	if (p != NULL && atomic_load_explicit(&p->used, memory_order_acquire))
		peer_remember(to, &p->orig.sa, addr_len(&p->orig), &p->target);
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
		return real.connect(fd, &to.sa, addr_len(&to));
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
	if (addr_same((struct sockaddr *)&got, gotlen, &p->target.sa, addr_len(&p->target))) {
		memcpy(&got, &orig, sizeof(orig));
		gotlen = addr_len(&orig);
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
