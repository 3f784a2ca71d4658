/* audit: JSON lines and forward-protocol events for connection decisions; see
 * audit.h.  This file copies events into records, queues them and runs the
 * thread; audit_file.c and audit_fwd.c are the two outputs (audit_int.h).
 *
 *-
 * audit_emit copies an event into one allocation (struct audit_rec) and puts
 * it on the queue, a bounded FIFO under audit_mu; it wakes the thread through
 * an eventfd only when the queue was empty.  The thread swaps the queue for
 * its own empty one, writes the batch to the file, and moves each record to
 * the forward backlog, a second bounded FIFO that the thread alone touches.
 * So a forward target that is away costs the forward events beyond the
 * backlog, never the file's; a slow disk costs events beyond the queue.
 * Forward records are packed in batches and leave the backlog once their
 * whole batch is written to the socket (audit_fwd.c).  Memory is bounded:
 * AUDIT_QUEUE_BYTES each in the queue, in the batch the thread works on, and
 * in the backlog.
 */
#include "audit_int.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"

#define AUDIT_DROP_LOG_MS  60000	/* at most one "dropped" warning per minute */

const char *const audit_kind_names[] = { "accept", "deny", "close", "tag_denied" };

/* The optional strings of struct audit_event, in output order; the SANs go
 * after AUDIT_FIELD_SUBJECT. */
const struct audit_field audit_fields[] = {
	{ "peer", offsetof(struct audit_event, peer) },
	{ "subject", offsetof(struct audit_event, subject) },
	{ "issuer", offsetof(struct audit_event, issuer) },
	{ "serial", offsetof(struct audit_event, serial) },
	{ "fingerprint", offsetof(struct audit_event, fingerprint) },
	{ "rule", offsetof(struct audit_event, rule) },
	{ "reason", offsetof(struct audit_event, reason) },
	{ "tls_version", offsetof(struct audit_event, tls_version) },
	{ "cipher", offsetof(struct audit_event, cipher) },
	{ "tag", offsetof(struct audit_event, tag) },
};
_Static_assert(sizeof(audit_fields) / sizeof(audit_fields[0]) == AUDIT_NFIELDS,
    "AUDIT_NFIELDS counts audit_fields");

/* Set while a thread runs; read without the lock by audit_emit. */
static atomic_int audit_on;
static atomic_ullong audit_drops;
static atomic_uint audit_reopens;	/* audit_reopen calls, ever */

/* queue and stopping are under audit_mu; the rest is set by audit_open, then
 * owned by the thread until audit_close joins it. */
static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct audit_fifo queue;
	int stopping;

	int efd;				/* eventfd: queue no longer empty, reopen, stop */
	pthread_t thread;
	struct audit_fifo batch;		/* the thread's half of the queue */
	unsigned reopens_seen;

	unsigned long long drops_logged;
	long long drop_log_at;
} A = { .efd = -1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** audit_drop(n): count n events that missed a destination (audit_dropped). */
void audit_drop(unsigned long long n)
{
	atomic_fetch_add(&audit_drops, n);
}

/** audit_fifo_init(f, cap, max_bytes): an empty FIFO; 0, or -1 without
 *  memory. */
int audit_fifo_init(struct audit_fifo *f, size_t cap, size_t max_bytes)
{
	memset(f, 0, sizeof(*f));
	if ((f->slot = calloc(cap, sizeof(*f->slot))) == NULL)
		return -1;
	f->cap = cap;
	f->max_bytes = max_bytes;
	return 0;
}

/** audit_fifo_fits(f, r): non-zero if r may join f (count and bytes). */
int audit_fifo_fits(const struct audit_fifo *f, const struct audit_rec *r)
{
	return f->n < f->cap && f->bytes + r->size <= f->max_bytes;
}

/** audit_fifo_push(f, r): r at f's tail; f owns it.  Only if it fits. */
void audit_fifo_push(struct audit_fifo *f, struct audit_rec *r)
{
	f->slot[(f->head + f->n) % f->cap] = r;
	f->n++;
	f->bytes += r->size;
}

/** audit_fifo_at(f, i): the i-th record from the head (i < f->n). */
struct audit_rec *audit_fifo_at(const struct audit_fifo *f, size_t i)
{
	return f->slot[(f->head + i) % f->cap];
}

/** audit_fifo_pop(f): take the head record (f not empty); the caller owns it. */
struct audit_rec *audit_fifo_pop(struct audit_fifo *f)
{
	struct audit_rec *r = f->slot[f->head];

	f->head = (f->head + 1) % f->cap;
	f->n--;
	f->bytes -= r->size;
	return r;
}

/** audit_fifo_free(f): free the records left and the slots; returns how many
 *  records there were. */
size_t audit_fifo_free(struct audit_fifo *f)
{
	size_t n = f->n;

	while (f->n > 0)
		free(audit_fifo_pop(f));
	free(f->slot);
	memset(f, 0, sizeof(*f));
	return n;
}

/*- Strings are made valid UTF-8 as they are copied, so that neither the JSON
 * line nor the msgpack str carries bytes a consumer would reject: a peer's
 * certificate may hold T61String or plain garbage. */

/* utf8_copy(dst, src, max): copy src into dst as valid UTF-8 (each invalid
 * byte becomes U+FFFD), at most max bytes; dst NULL only measures.  Stops at
 * whole characters.  Returns the bytes (no NUL) and sets *done if all of src
 * fitted. */
static size_t utf8_copy(char *dst, const char *src, size_t max, int *done)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *s = (const unsigned char *)src;
	size_t len = 0;

	while (*s != '\0') {
		size_t n = log_utf8_len(s, strnlen((const char *)s, 4)), out = n != 0 ? n : 3;

		if (len + out > max) {
			*done = 0;
			return len;
		}
		if (dst != NULL)
			memcpy(dst + len, n != 0 ? (const char *)s : repl, out);
		len += out;
		s += n != 0 ? n : 1;
	}
	*done = 1;
	return len;
}

/* field_copy(dst, src, max): src as valid UTF-8 in at most max bytes, cut
 * short with "..." when it does not fit, NUL-terminated; dst NULL only
 * measures.  Returns the bytes including the NUL. */
static size_t field_copy(char *dst, const char *src, size_t max)
{
	int done;
	size_t len = utf8_copy(NULL, src, max, &done);

	if (!done)
		len = utf8_copy(dst, src, max - 3, &done);
	else if (dst != NULL)
		utf8_copy(dst, src, max, &done);
	if (!done) {
		if (dst != NULL)
			memcpy(dst + len, "...", 3);
		len += 3;
	}
	if (dst != NULL)
		dst[len] = '\0';
	return len + 1;
}

static const char *event_str(const struct audit_event *ev, size_t i)
{
	return *(const char *const *)(const void *)((const char *)ev + audit_fields[i].off);
}

/* sans_kept(ev, more): how many SANs fit in AUDIT_FIELD_MAX bytes and
 * AUDIT_SANS_MAX entries; *more when some do not (a "..." entry follows). */
static size_t sans_kept(const struct audit_event *ev, int *more)
{
	size_t i, total = 0;

	*more = 0;
	if (ev->sans == NULL)
		return 0;
	for (i = 0; i < ev->nsans; i++) {
		size_t n = ev->sans[i] != NULL ? field_copy(NULL, ev->sans[i], AUDIT_FIELD_MAX) : 1;

		if (i == AUDIT_SANS_MAX || total + n > AUDIT_FIELD_MAX) {
			*more = 1;
			break;
		}
		total += n;
	}
	return i;
}

/* rec_new(ev): ev copied into one allocation and stamped with the time, or
 * NULL without memory. */
static struct audit_rec *rec_new(const struct audit_event *ev)
{
	struct audit_rec *r;
	size_t i, nsans, size, blob = 0;
	int more;
	char *p;

	for (i = 0; i < AUDIT_NFIELDS; i++)
		if (event_str(ev, i) != NULL)
			blob += field_copy(NULL, event_str(ev, i), AUDIT_FIELD_MAX);
	nsans = sans_kept(ev, &more);
	for (i = 0; i < nsans; i++)
		blob += ev->sans[i] != NULL ? field_copy(NULL, ev->sans[i], AUDIT_FIELD_MAX) : 1;
	blob += more ? 4 : 0;
	size = sizeof(*r) + (nsans + (size_t)more) * sizeof(char *) + blob;
	if ((r = malloc(size)) == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->kind = ev->kind <= AUDIT_TAG_DENIED ? ev->kind : AUDIT_DENY;
	clock_gettime(CLOCK_REALTIME, &r->ts);
	r->bytes_in = ev->bytes_in;
	r->bytes_out = ev->bytes_out;
	r->duration = isfinite(ev->duration) ? ev->duration : 0.0;
	r->sans = (const char **)(void *)(r + 1);
	r->nsans = nsans + (size_t)more;
	p = (char *)(r->sans + r->nsans);
	for (i = 0; i < AUDIT_NFIELDS; i++) {
		if (event_str(ev, i) != NULL) {
			r->str[i] = p;
			p += field_copy(p, event_str(ev, i), AUDIT_FIELD_MAX);
		}
	}
	for (i = 0; i < nsans; i++) {
		r->sans[i] = p;
		if (ev->sans[i] != NULL)
			p += field_copy(p, ev->sans[i], AUDIT_FIELD_MAX);
		else
			*p++ = '\0';
	}
	if (more) {
		r->sans[nsans] = p;
		memcpy(p, "...", 4);
	}
	return r;
}

/* ---- the thread ---- */

/* take_batch(reopen): swap the queue for the thread's empty one; returns
 * whether audit_close asked to stop, and sets *reopen if audit_reopen was
 * called since the last batch.  Reopen requests are read after the
 * swap, so every event emitted after audit_reopen returned is in a batch
 * that sees the request. */
static int take_batch(int *reopen)
{
	struct audit_fifo t;
	unsigned seen;
	int stopping;

	pthread_mutex_lock(&audit_mu);
	t = A.queue;
	A.queue = A.batch;
	A.batch = t;
	stopping = A.stopping;
	seen = atomic_load(&audit_reopens);
	pthread_mutex_unlock(&audit_mu);
	*reopen = seen != A.reopens_seen;
	A.reopens_seen = seen;
	return stopping;
}

/* deliver_batch(): the batch to the file and to the forward backlog. */
static void deliver_batch(void)
{
	struct audit_rec *r;
	int lost;

	while (A.batch.n > 0) {
		r = audit_fifo_pop(&A.batch);
		lost = audit_file_add(r) < 0;
		if (audit_fwd_add(r) < 0)	/* r is gone after this */
			lost = 1;
		if (lost)
			audit_drop(1);
	}
	audit_file_flush();
}

/* log_drops(now): warn about new drops, at most every AUDIT_DROP_LOG_MS. */
static void log_drops(long long now)
{
	unsigned long long d = atomic_load(&audit_drops);

	if (d == A.drops_logged || now < A.drop_log_at)
		return;
	log_warn("audit events dropped", "dropped=%llu total=%llu", d - A.drops_logged, d);
	A.drops_logged = d;
	A.drop_log_at = now + AUDIT_DROP_LOG_MS;
}

static void *audit_main(void *arg)
{
	long long now, stop_at = 0;
	int reopen, stopping = 0;

	(void)arg;
	audit_fwd_start(now_ms());
	for (;;) {
		struct pollfd p[2] = { { .fd = A.efd, .events = POLLIN }, { .fd = -1 } };
		long long wake = audit_fwd_poll(&p[1]);
		uint64_t v;

		if (stopping && (wake < 0 || stop_at < wake))
			wake = stop_at;
		if (atomic_load(&audit_drops) != A.drops_logged && (wake < 0 || A.drop_log_at < wake))
			wake = A.drop_log_at;
		now = now_ms();
		if (poll(p, 2, wake < 0 ? -1 : wake > now ? (int)(wake - now) : 0) < 0 &&
		    errno != EINTR) {
			log_error("audit: poll failed", "error=%s", strerror(errno));
			break;
		}
		if (p[0].revents & POLLIN)
			(void)!read(A.efd, &v, sizeof(v));
		now = now_ms();

		if (take_batch(&reopen) && !stopping) {
			stopping = 1;
			stop_at = now + AUDIT_CLOSE_WAIT;
			/* One more try right away for what the backlog holds. */
			audit_fwd_hurry(now);
		}
		if (reopen)
			audit_file_reopen();
		deliver_batch();
		audit_fwd_step(now, p[1].fd >= 0 ? p[1].revents : 0);
		log_drops(now);
		if (stopping && (audit_fwd_waiting() == 0 || now >= stop_at))
			break;
	}
	return NULL;
}

/* ---- the API ---- */

static void audit_free(void)
{
	audit_drop(audit_fifo_free(&A.queue) + audit_fifo_free(&A.batch) + audit_fwd_close());
	audit_file_close();
	if (A.efd >= 0)
		close(A.efd);
	memset(&A, 0, sizeof(A));
	A.efd = -1;
}

/** audit_open(file, forward, tag, err, errsz): start auditing to file (JSON
 *  lines, appended, created 0640) and/or to forward ("host:port" of a Fluentd
 *  in_forward, plain TCP) under tag (NULL: AUDIT_TAG_DEFAULT).  Both NULL:
 *  auditing stays off and audit_emit does nothing.  Warns if forward is not a
 *  loopback address.  Returns 0, or -1 with a message in err. */
int audit_open(const char *file, const char *forward, const char *tag,
    char *err, size_t errsz)
{
	sigset_t old;
	int rc;

	if (atomic_load(&audit_on)) {
		snprintf(err, errsz, "audit is already open");
		return -1;
	}
	atomic_store(&audit_drops, 0);
	if (file == NULL && forward == NULL)
		return 0;
	if (tag == NULL)
		tag = AUDIT_TAG_DEFAULT;
	if (*tag == '\0') {
		snprintf(err, errsz, "audit tag is empty");
		return -1;
	}
	if ((forward != NULL && audit_fwd_open(forward, tag, err, errsz) < 0) ||
	    (file != NULL && audit_file_open(file, err, errsz) < 0))
		goto fail;
	if (audit_fifo_init(&A.queue, AUDIT_QUEUE_MAX, AUDIT_QUEUE_BYTES) < 0 ||
	    audit_fifo_init(&A.batch, AUDIT_QUEUE_MAX, AUDIT_QUEUE_BYTES) < 0) {
		snprintf(err, errsz, "audit: out of memory");
		goto fail;
	}
	if ((A.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, errsz, "audit: eventfd: %s", strerror(errno));
		goto fail;
	}
	A.reopens_seen = atomic_load(&audit_reopens);

	/* The thread takes no signals: the main loop handles them. */
	thread_signals_block(&old);
	rc = pthread_create(&A.thread, NULL, audit_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errsz, "audit: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	atomic_store(&audit_on, 1);
	return 0;

fail:
	audit_free();
	return -1;
}

/** audit_enabled(): non-zero while events go somewhere, so a caller can skip
 *  gathering certificate details nobody will read. */
int audit_enabled(void)
{
	return atomic_load_explicit(&audit_on, memory_order_relaxed);
}

/** audit_emit(ev): stamp ev with the current time and queue a copy; ev stays
 *  the caller's.  Any thread; never blocks on I/O.  A full queue drops the
 *  event and counts it. */
void audit_emit(const struct audit_event *ev)
{
	static const uint64_t one = 1;
	struct audit_rec *r;
	int queued = 0;

	if (!atomic_load_explicit(&audit_on, memory_order_relaxed))
		return;
	if ((r = rec_new(ev)) == NULL) {
		audit_drop(1);
		return;
	}
	pthread_mutex_lock(&audit_mu);
	if (A.queue.slot != NULL && !A.stopping && audit_fifo_fits(&A.queue, r)) {
		/* The thread empties the queue each time it wakes, so only the
		 * first event after that needs to wake it. */
		if (A.queue.n == 0)
			(void)!write(A.efd, &one, sizeof(one));
		audit_fifo_push(&A.queue, r);
		queued = 1;
	}
	pthread_mutex_unlock(&audit_mu);
	if (!queued) {
		free(r);
		audit_drop(1);
	}
}

/** audit_reopen(): reopen the file (after logrotate moved it, on SIGUSR1);
 *  events emitted after it returns go to the new file.  Any thread,
 *  async-signal-safe; if the new file cannot be opened the old one is kept. */
void audit_reopen(void)
{
	static const uint64_t one = 1;

	if (!atomic_load(&audit_on))
		return;
	atomic_fetch_add(&audit_reopens, 1);
	(void)!write(A.efd, &one, sizeof(one));
}

/** audit_dropped(): events since the last audit_open that missed a
 *  destination: queue or forward backlog full, a failed write, or undelivered
 *  at audit_close.  Still readable after audit_close. */
unsigned long long audit_dropped(void)
{
	return atomic_load(&audit_drops);
}

/** audit_close(): deliver what can be within AUDIT_CLOSE_WAIT ms, log the
 *  dropped count if any, stop the thread and free everything.  Meant for after
 *  the workers stopped; an audit_emit racing with it is dropped, later ones do
 *  nothing.  Not with audit_open or audit_reopen at the same time. */
void audit_close(void)
{
	static const uint64_t one = 1;
	unsigned long long d;

	if (!atomic_load(&audit_on))
		return;
	pthread_mutex_lock(&audit_mu);
	A.stopping = 1;
	(void)!write(A.efd, &one, sizeof(one));
	pthread_mutex_unlock(&audit_mu);
	pthread_join(A.thread, NULL);
	atomic_store(&audit_on, 0);
	pthread_mutex_lock(&audit_mu);
	audit_free();
	pthread_mutex_unlock(&audit_mu);
	if ((d = atomic_load(&audit_drops)) > 0)
		log_warn("audit events dropped", "total=%llu", d);
}
