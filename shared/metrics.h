/* metrics: the counters behind GET /metrics.  Each worker counts in its own
 * struct metrics_worker (in its conn_set), written only by its own thread
 * with relaxed atomic loads and stores (plain moves on x86: no lock, no
 * read-modify-write on the data path); the scrape (metrics_render(), on the
 * HTTP thread of metrics_http.c) reads every registered worker's and sums.
 * What the process decides once (reloads, the listener, certificates) is
 * read from where it lives at scrape time. */
#ifndef TLSFWD_METRICS_H
#define TLSFWD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "tls.h"
#include "upstream.h"

struct tunnel;
struct config;
struct tls_policy;

#define METRICS_HIST 10		/* buckets of a duration histogram, +Inf aside */
#define METRICS_PAIRS 48	/* distinct (outcome, reason) pairs a table keeps */
#define METRICS_REASON_MAX 40	/* a reason's bytes kept; longer ones are cut */

/* A histogram of durations: bucket i counts those <= metrics_bounds[i]. */
struct metrics_hist {
	atomic_ullong bucket[METRICS_HIST];
	atomic_ullong count;
	atomic_ullong sum_us;	/* microseconds */
};

/* Counts by (outcome, reason), append-only: an entry is filled, then
 * published by n (release); the last entry takes what does not fit
 * (reason "other"). */
struct metrics_pairs {
	atomic_int n;
	struct {
		const char *outcome;	/* static */
		char reason[METRICS_REASON_MAX];
		atomic_ullong count;
	} v[METRICS_PAIRS];
};

/* One worker's counters: written by its thread only. */
struct metrics_worker {
	atomic_ullong opened;		/* connections past admission */
	atomic_ullong bytes[2];		/* 0: the sender's, written upstream; 1: back */
	struct metrics_hist handshake[2];	/* 0: full, 1: resumed */
	struct metrics_hist connect[UPSTREAM_MAX];	/* end[1] up, per upstream */
	struct metrics_pairs closed;	/* outcome: conn_drop()'s, reason its detail */
	struct metrics_pairs refused;	/* outcome: "admit" or "handshake" */
	struct metrics_worker *next;	/* the registry */
};

extern const double metrics_bounds[METRICS_HIST];

/* metrics_add(c, n): the owning thread adds n to c (no read-modify-write). */
static inline void metrics_add(atomic_ullong *c, unsigned long long n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

/** metrics_observe(h, seconds): count one duration in h (its owner only). */
void metrics_observe(struct metrics_hist *h, double seconds);

/** metrics_pair(p, outcome, reason): count one (outcome, reason) in p (its
 *  owner only); outcome is static, reason NULL is "none". */
void metrics_pair(struct metrics_pairs *p, const char *outcome, const char *reason);

/** metrics_register(m) / metrics_unregister(m): m's counts are (no longer)
 *  scraped.  m is zeroed by register. */
void metrics_register(struct metrics_worker *m);
void metrics_unregister(struct metrics_worker *m);

/* What the process as a whole reports. */
struct metrics_proc {
	atomic_ullong reloads[2];	/* 0: failed, 1: ok */
	atomic_int listening;		/* the workers run (workers_run()) */
	/* The server's audit trail: events dropped, or NULL. */
	unsigned long long (*audit_dropped)(void);
};
extern struct metrics_proc metrics_proc;

/** metrics_expiry_lines(p, now): the expiry lines for p's certificates:
 *  an error when one has expired or expires within 7 days, a warning within
 *  30.  Returns how many lines were logged. */
int metrics_expiry_lines(const struct tls_policy *p, time_t now);

/* A growing text buffer. */
struct metrics_buf {
	char *p;
	size_t len, cap;
	int failed;		/* out of memory: p holds what fit */
};

/** metrics_printf(b, fmt, ...): append to b. */
void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** metrics_label(b, value): append value escaped as a Prometheus label value
 *  (backslash, double quote and newline escaped; other control bytes as '?'). */
void metrics_label(struct metrics_buf *b, const char *value);

/** metrics_render(b, t): the Prometheus text exposition for tunnel t (its
 *  role, upstreams, listener and policy) and every registered worker. */
void metrics_render(struct metrics_buf *b, struct tunnel *t);

/** metrics_ready(t, why, whysz): 1 if t is ready to serve (listening and
 *  an upstream up), else 0 with a one-line reason in why. */
int metrics_ready(struct tunnel *t, char *why, size_t whysz);

#endif
