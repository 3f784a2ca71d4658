/*-
 * preload_env: what the shim's environment says, read once — TLSFWD_INTERCEPT
 * (the intercept rules: literal addresses, prefixes, "*", host names and
 * the addresses those resolved to), TLSFWD_CLIENT (redirect mode),
 * TLSFWD_CONFIG (inline mode), TLSFWD_RESOLVE_EVERY — and the questions the
 * hooks ask of it: is this address intercepted, where does it go instead.
 * A misconfiguration is kept (the first one) and said once: the shim then
 * refuses every intercepted connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "preload.h"
#include "sock.h"

#define RULES_MAX 64		/* intercept rules given as addresses, prefixes or "*" */
#define NAMES_MAX 16		/* intercept rules given as host names */
#define RESOLVED_MAX 256	/* addresses those names have resolved to, ever */
#define RESOLVE_EVERY 1		/* default TLSFWD_RESOLVE_EVERY, seconds */
#define SPEC_MAX 300		/* one host:port entry */

/* One intercepted destination: family 0 matches any address, port 0 any port. */
struct rule {
	int family;
	unsigned char addr[16];
	unsigned prefix;
	in_port_t port;			/* network order */
};

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

/*- The addresses the names resolved to: append-only, so a reader needs no
 * lock (it reads the entries below the count it loaded); writers take
 * resolve_lock.  Once intercepted, an address stays intercepted: a program
 * may still connect to an address it resolved earlier. */
static struct rule resolved[RESOLVED_MAX];
static atomic_size_t nresolved;
static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
static long last_resolve;		/* CLOCK_MONOTONIC seconds, under resolve_lock */
static atomic_int full_reported, refresh_reported;
static atomic_int family_reported;


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

/** preload_env_load(): read TLSFWD_INTERCEPT and what goes with it, once;
 *  say on stderr if it is misconfigured.  getaddrinfo() may itself connect
 *  (DNS over TCP, nscd): those calls come back into the hooks on this thread
 *  and pass straight through.  Returns non-zero if the shim intercepts. */
int preload_env_load(void)
{
	const char *list = getenv("TLSFWD_INTERCEPT");

	if (list == NULL || list[strspn(list, " \t,")] == '\0')
		return 0;
	preload_inside = 1;
	cfg.active = 1;
	cfg_resolve_every(getenv("TLSFWD_RESOLVE_EVERY"));
	pthread_atfork(NULL, NULL, resolve_child);
	cfg_intercept(list);
	cfg_client(getenv("TLSFWD_CLIENT"));
	preload_inside = 0;
	if (cfg.broken)
		preload_say("%s; connections to intercepted addresses will be refused", cfg.problem);
	return 1;
}

/** preload_env_active(): non-zero if the shim intercepts (or fails closed). */
int preload_env_active(void)
{
	return cfg.active;
}

/** preload_env_fail_closed(): the configuration could not be read: refuse
 *  every intercepted connect. */
void preload_env_fail_closed(void)
{
	cfg.active = cfg.broken = 1;
}

/* -------------------------------------------------------------------------
 * the questions the hooks ask */

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

/** preload_addr_same(x, xlen, y, ylen): whether x and y are the same
 *  internet address and port (a v4-mapped IPv6 address is its IPv4 one). */
int preload_addr_same(const struct sockaddr *x, socklen_t xlen, const struct sockaddr *y,
    socklen_t ylen)
{
	unsigned char a[16], b[16];
	in_port_t pa, pb;
	int fa, fb;

	return addr_key(x, xlen, &fa, a, &pa) == 0 && addr_key(y, ylen, &fb, b, &pb) == 0 &&
	    fa == fb && pa == pb && memcmp(a, b, fa == AF_INET ? 4 : 16) == 0;
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

/** preload_env_intercepted(sa, len): non-zero if a connect to sa is to be
 *  tunnelled (re-resolving the names first if it may be theirs). */
int preload_env_intercepted(const struct sockaddr *sa, socklen_t len)
{
	unsigned char a[16];
	in_port_t port;
	int family;
	size_t i;

	if (addr_key(sa, len, &family, a, &port) != 0)
		return 0;
	if ((cfg.has4 && preload_addr_same(sa, len, &cfg.client4.sa, sizeof(cfg.client4.sin))) ||
	    (cfg.has6 && preload_addr_same(sa, len, &cfg.client6.sa, sizeof(cfg.client6.sin6))))
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

/** preload_env_target(domain, to): where an intercepted connect goes
 *  instead.  Returns 0, or -1 if it is to be refused. */
int preload_env_target(int domain, union inaddr *to)
{
	return cfg.broken || redirect_target(domain, to) != 0 ? -1 : 0;
}
