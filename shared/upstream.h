/* upstream: where connections go — tlsfwd-servers (client) or Fluentd
 * (server) — in the order they are tried, and what the workers share about
 * each: the TLS session to resume.  Health and weights will plug in here. */
#ifndef TLSFWD_UPSTREAM_H
#define TLSFWD_UPSTREAM_H

#include <pthread.h>
#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "sock.h"

#define UPSTREAM_ADDRS 8

struct upstream {
	char spec[300];			/* as configured, for logs */
	char name[256];			/* client: name verified and sent as SNI */
	int name_is_ip;			/* verified against IP SANs, never sent as SNI */
	struct sock_addr addr[UPSTREAM_ADDRS];
	int naddr;
	pthread_mutex_t lock;		/* guards session, for every worker */
	WOLFSSL_SESSION *session;	/* client: the session to resume, or NULL */
};

/** upstream_init(u, spec, name, err, errsz): resolve spec (host:port) into u;
 *  name, if not NULL, is the name to verify instead of spec's host.
 *  0, or -1 with a message in err (u then needs no upstream_free()). */
int upstream_init(struct upstream *u, const char *spec, const char *name, char *err,
    size_t errsz);

/** upstream_free(u): release what upstream_init() and the session cache hold. */
void upstream_free(struct upstream *u);

/** upstream_next(v, n, up, addr): step the position (*up, *addr) in the try
 *  order of the n upstreams at v — each upstream in turn, each of its
 *  addresses in turn — to the next address.  0, or -1 (unchanged) if it was
 *  the last.  A connection starts at (0, 0). */
int upstream_next(const struct upstream *v, int n, int *up, int *addr);

/** upstream_resume(u, ssl): offer u's cached session on ssl, if any. */
void upstream_resume(struct upstream *u, WOLFSSL *ssl);

/** upstream_keep(u, sess): cache sess (taking its reference) for u, replacing
 *  the one before. */
void upstream_keep(struct upstream *u, WOLFSSL_SESSION *sess);

#endif
