/* fuzz_addr: the address parser (shared/sock.c) that reads --listen,
 * --server, --upstream and --audit-forward: sock_split() of "host:port" and
 * "[v6]:port", and for IP literals sock_resolve() (numeric, no DNS) and
 * sock_ntop().
 *
 * Invariants: host and port are NUL-terminated inside buffers of the sizes
 * given (every size from 1 up is tried, on the heap, so ASan sees one byte
 * too many); an accepted address is exactly "host:port" or "[host]:port" put
 * back together, with a port from 1 to 65535; an IP literal resolves to one
 * address whose sock_ntop() form splits and resolves again to the same. */
#include <netinet/in.h>

#include "fuzz.h"
#include "sock.h"

#define HOSTSZ 256
#define PORTSZ 8

/* split(spec, hostsz, portsz, host, port): sock_split into heap buffers of
 * exactly those sizes, copied out to host and port (HOSTSZ, PORTSZ). */
static int split(const char *spec, size_t hostsz, size_t portsz, char *host, char *port)
{
	char *h = malloc(hostsz), *p = malloc(portsz);
	const char *why = NULL;
	int r;

	CHECK(h != NULL && p != NULL, "out of memory");
	r = sock_split(spec, h, hostsz, p, portsz, &why);
	if (r == 0) {
		CHECK(fuzz_cstr_in(h, hostsz) && fuzz_cstr_in(p, portsz), "not terminated");
		snprintf(host, HOSTSZ, "%s", h);
		snprintf(port, PORTSZ, "%s", p);
	} else {
		CHECK(r == -1 && why != NULL && why[0] != '\0', "failed without a reason");
	}
	free(h);
	free(p);
	return r;
}

/* same_addr(a, b): the same family, address and port. */
static int same_addr(const struct sock_addr *a, const struct sock_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

static void check_resolve(const char *spec, const char *host)
{
	struct sock_addr a[4], b[4];
	char text[SOCK_NTOP_MAX], h2[HOSTSZ], p2[PORTSZ];
	const char *why = NULL;
	int n;

	if (!sock_is_ip(host))
		return;		/* a name: resolving it would ask DNS */
	n = sock_resolve(spec, a, 4, &why);
	CHECK(n >= 1 && n <= 4, "IP literal %s does not resolve: %s", spec, why ? why : "?");
	sock_ntop(&a[0], text);
	CHECK(fuzz_cstr_in(text, sizeof(text)), "sock_ntop not terminated");
	CHECK(split(text, HOSTSZ, PORTSZ, h2, p2) == 0, "sock_ntop gave %s", text);
	CHECK(sock_resolve(text, b, 4, &why) >= 1 && same_addr(&a[0], &b[0]),
	    "%s and %s differ", spec, text);
	(void)sock_is_loopback(&a[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = fuzz_str(data, size), *back;
	char host[HOSTSZ], port[PORTSZ];
	size_t hs, ps, len = strlen(spec);
	int ok;

	ok = split(spec, HOSTSZ, PORTSZ, host, port) == 0;
	if (ok) {
		long p = strtol(port, NULL, 10);

		CHECK(host[0] != '\0' && p >= 1 && p <= 65535 &&
		    strspn(port, "0123456789") == strlen(port), "host %s port %s", host, port);
		back = malloc(len + 4);
		CHECK(back != NULL, "out of memory");
		snprintf(back, len + 4, spec[0] == '[' ? "[%s]:%s" : "%s:%s", host, port);
		CHECK(strcmp(back, spec) == 0, "%s split as %s", spec, back);
		free(back);
		check_resolve(spec, host);
	}
	/* Smaller buffers: refused when too small, never overrun. */
	for (hs = 1; hs <= len + 1 && hs <= HOSTSZ; hs++) {
		char h[HOSTSZ], p[PORTSZ];

		if (split(spec, hs, PORTSZ, h, p) == 0)
			CHECK(ok && strcmp(h, host) == 0 && strlen(h) < hs, "hostsz %zu", hs);
	}
	for (ps = 1; ps <= PORTSZ; ps++) {
		char h[HOSTSZ], p[PORTSZ];

		if (split(spec, HOSTSZ, ps, h, p) == 0)
			CHECK(ok && strcmp(p, port) == 0 && strlen(p) < ps, "portsz %zu", ps);
	}
	free(spec);
	return 0;
}
