/* upstream: where connections go — tlsfwd-servers (client) or Fluentd
 * (server) — which one a new connection tries, and what the workers share
 * about each: its health and the TLS session to resume. */
#ifndef TLSFWD_UPSTREAM_H
#define TLSFWD_UPSTREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "sock.h"

#define UPSTREAM_ADDRS 8
#define UPSTREAM_MAX 64		/* upstreams one process may have (a uint64_t of tried ones) */
#define UPSTREAM_WEIGHT_MAX 1000

struct upstream {
	char spec[300];			/* HOST:PORT as configured, for logs */
	char resolve[300];		/* what addr[] is resolved from: spec, or its proxy */
	char name[256];			/* client: name verified and sent as SNI */
	int name_is_ip;			/* verified against IP SANs, never sent as SNI */
	struct sock_addr addr[UPSTREAM_ADDRS];	/* under lock: the resolver */
	int naddr;				/* changes them (resolver.c) */
	unsigned next_addr;		/* under lock: where the next connection starts */
	double addr_bad[UPSTREAM_ADDRS];	/* under lock: not a first try until then */
	int unresolved;			/* the resolver's: its name stopped resolving */
	int weight;			/* ,weight=N: its share of new connections */
	int standby;			/* ,standby: used only while no other is up */
	pthread_mutex_t lock;		/* guards addr, naddr, session, for every worker */
	WOLFSSL_SESSION *session;	/* client: the session to resume, or NULL */
	/* Health, under the set's lock (down is also read without it). */
	atomic_int down;		/* a connect, handshake or connection failed */
	atomic_uint downs;		/* times it was marked down (see upstream_pos.downs) */
	int current;			/* smooth weighted round robin */
	int fails;			/* failed probes since it went down */
	double probe_at;		/* when its prober tries it next */
	int probing;			/* a probe is under way */
	const void *prober;		/* who probes it while it is down */
};

/* The upstreams of a process. */
struct upstreams {
	struct upstream *v;
	int n;
	double health_interval;		/* the probes' back-off stops growing here */
	pthread_mutex_t lock;		/* the choice and every change of health */
};

/** upstream_parse(value, spec, specsz, weight, standby, why, whysz): split
 *  "HOST:PORT[,weight=N][,standby]" into the address (checked, not
 *  resolved) and its attributes.  0, or -1 with the reason in why. */
int upstream_parse(const char *value, char *spec, size_t specsz, int *weight, int *standby,
    char *why, size_t whysz);

/** upstream_init(u, value, name, err, errsz): parse and resolve value (see
 *  upstream_parse()) into u; name, if not NULL, is the name to verify
 *  instead of the address's host.  0, or -1 with a message in err (u then
 *  needs no upstream_free()). */
int upstream_init(struct upstream *u, const char *value, const char *name, char *err,
    size_t errsz);

/** upstream_free(u): release what upstream_init() and the session cache hold. */
void upstream_free(struct upstream *u);

/** upstreams_init(p, n, health_interval): n upstreams, all up, to be filled
 *  in with upstream_init().  0, or -1 out of memory. */
int upstreams_init(struct upstreams *p, int n, double health_interval);

/** upstreams_free(p): the upstreams and what they hold. */
void upstreams_free(struct upstreams *p);

/*-
 * The choice.  A new connection goes to the upstream that smooth weighted
 * round robin picks among the primaries that are up; while none is, among
 * the standbys that are up; while none at all is, to each in the order
 * configured.  Of that upstream's addresses (all its name resolves to) it
 * tries each in turn, starting one further than the connection before
 * (round robin), then the next choice among the upstreams it has not tried
 * (the bits of pos->tried).
 */

/* Where a connection is in its try order. */
struct upstream_pos {
	int up, addr;		/* the upstream and address being tried */
	int left;		/* addresses of up still to try after addr */
	uint64_t tried;		/* the upstreams it left (bit i: v[i]) */
	unsigned downs;		/* up's downs when the connection started on it: one
				 * that started before the latest mark says nothing
				 * of the upstream since */
};

/** upstream_pick(p, tried): the upstream a connection that has tried those
 *  goes to next, or -1 if none is left. */
int upstream_pick(struct upstreams *p, uint64_t tried);

/** upstream_start(p, pos, up): pos at up's first address for this connection:
 *  the next in turn that has not failed within --health-interval (or, if
 *  all have, the next in turn). */
void upstream_start(struct upstreams *p, struct upstream_pos *pos, int up);

/** upstream_next(p, pos): step pos to its upstream's next address, or to
 *  the next choice's first (adding the upstream it leaves to pos->tried).
 *  0, or -1 (unchanged) if none is left. */
int upstream_next(struct upstreams *p, struct upstream_pos *pos);

/** upstream_addr_failed(p, pos) / upstream_addr_ok(p, pos): the attempt at
 *  pos's address failed (it is tried first by no connection for
 *  --health-interval), or succeeded. */
void upstream_addr_failed(struct upstreams *p, const struct upstream_pos *pos);
void upstream_addr_ok(struct upstreams *p, const struct upstream_pos *pos);

/** upstream_addr(u, i, a): u's address i, copied; -1 if u has fewer now. */
int upstream_addr(struct upstream *u, int i, struct sock_addr *a);

/** upstream_set_addrs(u, a, n): u's addresses are now a[0..n).  1 if that
 *  changed them as a set, else 0 (and they stay in their order). */
int upstream_set_addrs(struct upstream *u, const struct sock_addr *a, int n);

/*-
 * Health.  An upstream is down from its first failure (a connect, a
 * handshake, or a relayed connection it cut) until one of its probes — a
 * connection without a sender, which the first to mark it down makes —
 * succeeds, or a sender's connection to it does.  The probes start 0.1 s
 * after the failure and their gap doubles up to health_interval.
 */

/** upstream_failed(p, i, prober): upstream i failed.  1 if this call marked
 *  it down: prober then probes it (see upstream_due()), and the caller logs. */
int upstream_failed(struct upstreams *p, int i, const void *prober);

/** upstream_ok(p, i): upstream i answered.  1 if this call marked it up
 *  again (the caller logs). */
int upstream_ok(struct upstreams *p, int i);

/** upstream_probe_failed(p, i, now): a probe of i failed; back off. */
void upstream_probe_failed(struct upstreams *p, int i, double now);

/** upstream_due(p, prober, now, next): an upstream that prober probes and
 *  whose probe is due at now (marked as under way), or -1; *next is then
 *  the earliest time one will be due (0 if none waits). */
int upstream_due(struct upstreams *p, const void *prober, double now, double *next);

/** upstream_probe_now(p, prober): prober's upstreams are due at once (after a
 *  reload: new keys or CAs may be what was missing). */
void upstream_probe_now(struct upstreams *p, const void *prober);

/** upstreams_up(p): 1 if any upstream is up. */
int upstreams_up(struct upstreams *p);

/** upstream_resume(u, ssl): offer u's cached session on ssl, if any. */
void upstream_resume(struct upstream *u, WOLFSSL *ssl);

/** upstream_keep(u, sess): cache sess (taking its reference) for u, replacing
 *  the one before. */
void upstream_keep(struct upstream *u, WOLFSSL_SESSION *sess);

#endif
