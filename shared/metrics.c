/* metrics: per-worker counters, their registry, the Prometheus text
 * rendering of a scrape, readiness and the certificate expiry lines.  The
 * HTTP server that serves them is metrics_http.c (the daemons only). */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "reach.h"
#include "x509.h"

#define DAY 86400

/* Seconds: a handshake or a connect on loopback is well under a
 * millisecond, across a WAN tens to hundreds of them. */
const double metrics_bounds[METRICS_HIST] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
};

struct metrics_proc metrics_proc;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_worker *reg_head;

void metrics_observe(struct metrics_hist *h, double seconds)
{
	int i;

	for (i = 0; i < METRICS_HIST; i++)
		if (seconds <= metrics_bounds[i]) {
			metrics_add(&h->bucket[i], 1);
			break;
		}
	metrics_add(&h->count, 1);
	metrics_add(&h->sum_us, seconds > 0 ? (unsigned long long)(seconds * 1e6) : 0);
}

void metrics_pair(struct metrics_pairs *p, const char *outcome, const char *reason)
{
	int n = atomic_load_explicit(&p->n, memory_order_relaxed), i;

	if (reason == NULL)
		reason = "none";
	for (i = 0; i < n; i++)
		if (p->v[i].outcome == outcome &&
		    strncmp(p->v[i].reason, reason, METRICS_REASON_MAX - 1) == 0) {
			metrics_add(&p->v[i].count, 1);
			return;
		}
	if (n == METRICS_PAIRS - 1)
		reason = "other";	/* the last entry takes the rest */
	if (n == METRICS_PAIRS) {
		metrics_add(&p->v[n - 1].count, 1);
		return;
	}
	p->v[n].outcome = outcome;
	snprintf(p->v[n].reason, sizeof(p->v[n].reason), "%s", reason);
	atomic_store_explicit(&p->v[n].count, 1, memory_order_relaxed);
	atomic_store_explicit(&p->n, n + 1, memory_order_release);
}

void metrics_register(struct metrics_worker *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_lock(&reg_lock);
	m->next = reg_head;
	reg_head = m;
	pthread_mutex_unlock(&reg_lock);
}

void metrics_unregister(struct metrics_worker *m)
{
	struct metrics_worker **pp;

	pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

/* -------------------------------------------------------------------------
 * text */

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		if (b->failed)
			return;
		va_start(ap, fmt);
		n = room > 0 ? vsnprintf(b->p + b->len, room, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n + 256;
			char *p = realloc(b->p, cap);

			if (p == NULL) {
				b->failed = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

void metrics_label(struct metrics_buf *b, const char *value)
{
	const unsigned char *s = (const unsigned char *)(value != NULL ? value : "");

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			metrics_printf(b, "\\%c", *s);
		else if (*s == '\n')
			metrics_printf(b, "\\n");
		else if (*s < 0x20 || *s == 0x7f)
			metrics_printf(b, "?");
		else
			metrics_printf(b, "%c", *s);
	}
}

static void head(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* sum(off): the counter at byte offset off of every worker, summed. */
static unsigned long long sum(size_t off)
{
	const struct metrics_worker *m;
	unsigned long long n = 0;

	for (m = reg_head; m != NULL; m = m->next)
		n += atomic_load_explicit((const atomic_ullong *)(const void *)
		    ((const char *)m + off), memory_order_relaxed);
	return n;
}

#define SUM(field) sum(offsetof(struct metrics_worker, field))

/* hist(b, name, off, labels): the histogram at offset off, summed. */
static void hist(struct metrics_buf *b, const char *name, size_t off, const char *labels)
{
	unsigned long long cum = 0;
	char le[32];
	int i;

	for (i = 0; i < METRICS_HIST; i++) {
		cum += sum(off + offsetof(struct metrics_hist, bucket) + (size_t)i * sizeof(atomic_ullong));
		snprintf(le, sizeof(le), "%g", metrics_bounds[i]);
		metrics_printf(b, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels, le, cum);
	}
	cum = sum(off + offsetof(struct metrics_hist, count));
	metrics_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, cum);
	metrics_printf(b, "%s_sum%s%.*s%s %.6f\n", name, *labels ? "{" : "",
	    *labels ? (int)strlen(labels) - 1 : 0, labels, *labels ? "}" : "",
	    (double)sum(off + offsetof(struct metrics_hist, sum_us)) / 1e6);
	metrics_printf(b, "%s_count%s%.*s%s %llu\n", name, *labels ? "{" : "",
	    *labels ? (int)strlen(labels) - 1 : 0, labels, *labels ? "}" : "", cum);
}

/* pairs(b, name, off, outcome_label): a table of (outcome, reason) counts,
 * summed over workers (each worker's table has its own order). */
static void pairs(struct metrics_buf *b, const char *name, size_t off, const char *outcome_label)
{
	struct { const char *outcome; const char *reason; unsigned long long n; } all[256];
	const struct metrics_worker *m;
	size_t nall = 0, i;

	for (m = reg_head; m != NULL; m = m->next) {
		const struct metrics_pairs *p = (const void *)((const char *)m + off);
		int n = atomic_load_explicit(&p->n, memory_order_acquire), k;

		for (k = 0; k < n; k++) {
			unsigned long long c = atomic_load_explicit(&p->v[k].count, memory_order_relaxed);

			for (i = 0; i < nall; i++)
				if (all[i].outcome == p->v[k].outcome &&
				    strcmp(all[i].reason, p->v[k].reason) == 0)
					break;
			if (i == nall) {
				if (nall == sizeof(all) / sizeof(all[0]))
					continue;
				all[nall].outcome = p->v[k].outcome;
				all[nall].reason = p->v[k].reason;
				all[nall++].n = 0;
			}
			all[i].n += c;
		}
	}
	for (i = 0; i < nall; i++) {
		metrics_printf(b, "%s{%s=\"", name, outcome_label);
		metrics_label(b, all[i].outcome);
		metrics_printf(b, "\",reason=\"");
		metrics_label(b, all[i].reason);
		metrics_printf(b, "\"} %llu\n", all[i].n);
	}
}

void metrics_render(struct metrics_buf *b, struct tunnel *t)
{
	const char *role = t->role != NULL ? t->role->prog : "tlsfwd";
	const struct tls_expiry *ex;
	struct tls_policy *pol;
	size_t nex, i;
	int k;

	pthread_mutex_lock(&reg_lock);
	head(b, "tlsfwd_info", "gauge", "The daemon (value 1), by role.");
	metrics_printf(b, "tlsfwd_info{role=\"%s\"} 1\n", role);
	head(b, "tlsfwd_connections_opened_total", "counter",
	    "Connections accepted and past admission.");
	metrics_printf(b, "tlsfwd_connections_opened_total %llu\n", SUM(opened));
	head(b, "tlsfwd_connections_closed_total", "counter",
	    "Connections closed, by outcome and reason (as in the closing log line).");
	pairs(b, "tlsfwd_connections_closed_total", offsetof(struct metrics_worker, closed),
	    "outcome");
	head(b, "tlsfwd_connections_refused_total", "counter",
	    "Connections refused before or in their handshake, by stage and reason.");
	pairs(b, "tlsfwd_connections_refused_total", offsetof(struct metrics_worker, refused),
	    "stage");
	head(b, "tlsfwd_connections_active", "gauge", "Connections open now.");
	metrics_printf(b, "tlsfwd_connections_active %ld\n", atomic_load(&t->active));
	head(b, "tlsfwd_bytes_total", "counter",
	    "Bytes relayed: from the sender to the upstream (up), and back (down).");
	metrics_printf(b, "tlsfwd_bytes_total{direction=\"up\"} %llu\n", SUM(bytes[0]));
	metrics_printf(b, "tlsfwd_bytes_total{direction=\"down\"} %llu\n", SUM(bytes[1]));
	head(b, "tlsfwd_handshake_duration_seconds", "histogram",
	    "TLS handshakes completed, full or resumed, and how long they took.");
	hist(b, "tlsfwd_handshake_duration_seconds", offsetof(struct metrics_worker, handshake[0]),
	    "type=\"full\",");
	hist(b, "tlsfwd_handshake_duration_seconds", offsetof(struct metrics_worker, handshake[1]),
	    "type=\"resumed\",");
	head(b, "tlsfwd_upstream_up", "gauge", "1 while the upstream is taken for up, else 0.");
	for (k = 0; k < t->ups.n; k++) {
		metrics_printf(b, "tlsfwd_upstream_up{upstream=\"");
		metrics_label(b, t->ups.v[k].spec);
		metrics_printf(b, "\"} %d\n", !atomic_load(&t->ups.v[k].down));
	}
	head(b, "tlsfwd_upstream_connect_duration_seconds", "histogram",
	    "Upstream connections opened (TCP, the hop, and TLS on the client), and how long "
	    "it took.");
	for (k = 0; k < t->ups.n && k < UPSTREAM_MAX; k++) {
		struct metrics_buf l = { 0 };

		metrics_printf(&l, "upstream=\"");
		metrics_label(&l, t->ups.v[k].spec);
		metrics_printf(&l, "\",");
		if (!l.failed)
			hist(b, "tlsfwd_upstream_connect_duration_seconds",
			    offsetof(struct metrics_worker, connect[0]) +
			    (size_t)k * sizeof(struct metrics_hist), l.p);
		free(l.p);
	}
	pthread_mutex_unlock(&reg_lock);

	head(b, "tlsfwd_listener_accepting", "gauge",
	    "1 while the listener accepts connections, 0 while it is shut (no upstream up, "
	    "or stopping).");
	metrics_printf(b, "tlsfwd_listener_accepting %d\n",
	    atomic_load(&metrics_proc.listening) && !reach_is_down(&t->reach));
	head(b, "tlsfwd_reloads_total", "counter", "Reloads of the files, by result.");
	metrics_printf(b, "tlsfwd_reloads_total{result=\"ok\"} %llu\n",
	    atomic_load(&metrics_proc.reloads[1]));
	metrics_printf(b, "tlsfwd_reloads_total{result=\"failed\"} %llu\n",
	    atomic_load(&metrics_proc.reloads[0]));
	if (metrics_proc.audit_dropped != NULL) {
		head(b, "tlsfwd_audit_events_dropped_total", "counter",
		    "Audit events that missed a destination.");
		metrics_printf(b, "tlsfwd_audit_events_dropped_total %llu\n",
		    metrics_proc.audit_dropped());
	}

	pol = tls_policy_get(&t->policy);
	nex = tls_policy_expiry(pol, &ex);
	head(b, "tlsfwd_certificate_not_after_seconds", "gauge",
	    "When each loaded certificate expires (unix seconds): own chain (cert), --ca (ca).");
	for (i = 0; i < nex; i++) {
		if (strcmp(ex[i].kind, "crl") == 0)
			continue;
		metrics_printf(b, "tlsfwd_certificate_not_after_seconds{kind=\"%s\",index=\"%d\","
		    "subject=\"", ex[i].kind, ex[i].index);
		metrics_label(b, ex[i].subject);
		metrics_printf(b, "\"} %lld\n", (long long)ex[i].when);
	}
	head(b, "tlsfwd_crl_next_update_seconds", "gauge",
	    "Each loaded CRL's nextUpdate (unix seconds; 0: none).");
	for (i = 0; i < nex; i++) {
		if (strcmp(ex[i].kind, "crl") != 0)
			continue;
		metrics_printf(b, "tlsfwd_crl_next_update_seconds{index=\"%d\",file=\"", ex[i].index);
		metrics_label(b, ex[i].subject);
		metrics_printf(b, "\"} %lld\n", (long long)ex[i].when);
	}
	tls_policy_release(pol);
}

int metrics_ready(struct tunnel *t, char *why, size_t whysz)
{
	if (!atomic_load(&metrics_proc.listening)) {
		snprintf(why, whysz, "not listening");
		return 0;
	}
	if (!upstreams_up(&t->ups)) {
		snprintf(why, whysz, "%s", t->role != NULL && t->role->id == ROLE_SERVER ?
		    "the upstream (Fluentd) is unreachable" : "no server is up");
		return 0;
	}
	if (reach_is_down(&t->reach)) {
		snprintf(why, whysz, "the listener is shut");
		return 0;
	}
	snprintf(why, whysz, "ready");
	return 1;
}

/* -------------------------------------------------------------------------
 * certificate expiry lines */

int metrics_expiry_lines(const struct tls_policy *p, time_t now)
{
	const struct tls_expiry *ex;
	size_t n = tls_policy_expiry(p, &ex), i;
	char when[40];
	int lines = 0;

	for (i = 0; i < n; i++) {
		double days = (double)(ex[i].when - now) / DAY;
		char d[32];

		if (strcmp(ex[i].kind, "crl") == 0 || ex[i].when > now + 30 * DAY)
			continue;
		snprintf(d, sizeof(d), "%.1f", days);
		x509_time_text(ex[i].when, when, sizeof(when));
		if (ex[i].when <= now)
			log_error("certificate has expired", "kind=%s index=%d subject=%s "
			    "not_after=%s", ex[i].kind, ex[i].index, ex[i].subject, when);
		else if (ex[i].when <= now + 7 * DAY)
			log_error("certificate expires within 7 days", "kind=%s index=%d subject=%s "
			    "not_after=%s days_left=%s", ex[i].kind, ex[i].index, ex[i].subject, when, d);
		else
			log_warn("certificate expires within 30 days", "kind=%s index=%d subject=%s "
			    "not_after=%s days_left=%s", ex[i].kind, ex[i].index, ex[i].subject, when, d);
		lines++;
	}
	return lines;
}
