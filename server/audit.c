/* audit: JSON lines and forward-protocol events for connection decisions; see
 * audit.h.
 *
 *-
 * audit_emit copies an event into one allocation (struct audit_rec) and puts
 * it on the queue, a bounded FIFO under audit_mu; it wakes the thread through
 * an eventfd only when the queue was empty.  The thread swaps the queue for
 * its own empty one, writes the batch to the file, and moves each record to
 * the forward backlog, a second bounded FIFO that the thread alone touches.
 * So a forward target that is away costs the forward events beyond the
 * backlog, never the file's; a slow disk costs events beyond the queue.
 * Forward records are packed in batches (AUDIT_PACK_MAX) and leave the
 * backlog once their whole batch is written to the socket; a connection lost
 * half way sends the batch again on the next one (at least once, as far as
 * TCP without acks can promise).  Memory is bounded: AUDIT_QUEUE_BYTES each
 * in the queue, in the batch the thread works on, and in the backlog.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "log.h"
#include "sock.h"

#define AUDIT_ADDRS        8		/* resolved forward addresses tried in turn */
#define AUDIT_PACK_MAX     64		/* events packed per send batch */
#define AUDIT_PACK_BYTES   65536	/* ... or this many bytes */
#define AUDIT_FLUSH_BYTES  65536	/* file lines buffered before a write */
#define AUDIT_CONNECT_MS   3000		/* forward connect timeout */
#define AUDIT_RETRY_MIN_MS 100		/* reconnect backoff, doubling ... */
#define AUDIT_RETRY_MAX_MS 5000		/* ... up to this */
#define AUDIT_DROP_LOG_MS  60000	/* at most one "dropped" warning per minute */

static const char *const kind_names[] = { "accept", "deny", "close" };

/* The optional strings of struct audit_event, in output order; the SANs go
 * after FIELD_SUBJECT. */
static const struct {
	const char *key;
	size_t off;
} fields[] = {
	{ "peer", offsetof(struct audit_event, peer) },
	{ "subject", offsetof(struct audit_event, subject) },
	{ "issuer", offsetof(struct audit_event, issuer) },
	{ "serial", offsetof(struct audit_event, serial) },
	{ "fingerprint", offsetof(struct audit_event, fingerprint) },
	{ "rule", offsetof(struct audit_event, rule) },
	{ "reason", offsetof(struct audit_event, reason) },
	{ "tls_version", offsetof(struct audit_event, tls_version) },
	{ "cipher", offsetof(struct audit_event, cipher) },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define FIELD_SUBJECT 1

/* One queued event: this struct, then the SAN pointers, then the strings,
 * in one allocation of size bytes. */
struct audit_rec {
	size_t size;
	enum audit_kind kind;
	struct timespec ts;			/* CLOCK_REALTIME at audit_emit */
	unsigned long long bytes_in, bytes_out;
	double duration;
	const char *str[NFIELDS];		/* NULL when absent */
	const char **sans;
	size_t nsans;
};

/* A bounded FIFO of records: at most cap of them, at most max_bytes. */
struct fifo {
	struct audit_rec **slot;
	size_t cap, head, n, bytes, max_bytes;
};

enum fwd_state { FWD_OFF, FWD_WAIT, FWD_CONNECTING, FWD_UP };

/* Set while a thread runs; read without the lock by audit_emit. */
static atomic_int audit_on;
static atomic_ullong audit_drops;
static atomic_uint audit_reopens;	/* audit_reopen calls, ever */

/* queue and stopping are under audit_mu; the rest is set by audit_open, then
 * owned by the thread until audit_close joins it. */
static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct fifo queue;
	int stopping;

	int efd;				/* eventfd: queue no longer empty, reopen, stop */
	pthread_t thread;
	struct fifo batch;			/* the thread's half of the queue */

	char *path;
	int fd;
	unsigned reopens_seen;
	msgpack_sbuffer lines;			/* JSON lines not yet written */
	size_t nlines;
	int lines_oom;				/* the line being built lost bytes */
	int write_failed;			/* warned about a failed write */

	char *forward, *tag;
	struct sock_addr addr[AUDIT_ADDRS];
	int naddr, next_addr;
	enum fwd_state state;
	int sfd;
	long long deadline;			/* connect timeout or next retry, ms */
	long long backoff;
	int down_warned;			/* warned since the last connect */
	int got_data;				/* warned about bytes from the target */
	struct fifo backlog;
	msgpack_sbuffer out;			/* packed backlog head, being sent */
	msgpack_packer pk;
	int out_oom;				/* the event being packed lost bytes */
	size_t packed, sent;			/* events in out, bytes of out sent */

	unsigned long long drops_logged;
	long long drop_log_at;
} A = { .efd = -1, .fd = -1, .sfd = -1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop(unsigned long long n)
{
	atomic_fetch_add(&audit_drops, n);
}

/* fifo_init(f, cap, max_bytes): an empty FIFO; 0, or -1 without memory. */
static int fifo_init(struct fifo *f, size_t cap, size_t max_bytes)
{
	memset(f, 0, sizeof(*f));
	if ((f->slot = calloc(cap, sizeof(*f->slot))) == NULL)
		return -1;
	f->cap = cap;
	f->max_bytes = max_bytes;
	return 0;
}

static int fifo_fits(const struct fifo *f, const struct audit_rec *r)
{
	return f->n < f->cap && f->bytes + r->size <= f->max_bytes;
}

static void fifo_push(struct fifo *f, struct audit_rec *r)
{
	f->slot[(f->head + f->n) % f->cap] = r;
	f->n++;
	f->bytes += r->size;
}

static struct audit_rec *fifo_at(const struct fifo *f, size_t i)
{
	return f->slot[(f->head + i) % f->cap];
}

static struct audit_rec *fifo_pop(struct fifo *f)
{
	struct audit_rec *r = f->slot[f->head];

	f->head = (f->head + 1) % f->cap;
	f->n--;
	f->bytes -= r->size;
	return r;
}

/* fifo_free(f): free the records left and the slots; returns how many
 * records there were. */
static size_t fifo_free(struct fifo *f)
{
	size_t n = f->n;

	while (f->n > 0)
		free(fifo_pop(f));
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
	return *(const char *const *)(const void *)((const char *)ev + fields[i].off);
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

	for (i = 0; i < NFIELDS; i++)
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
	r->kind = ev->kind <= AUDIT_CLOSE ? ev->kind : AUDIT_DENY;
	clock_gettime(CLOCK_REALTIME, &r->ts);
	r->bytes_in = ev->bytes_in;
	r->bytes_out = ev->bytes_out;
	r->duration = isfinite(ev->duration) ? ev->duration : 0.0;
	r->sans = (const char **)(void *)(r + 1);
	r->nsans = nsans + (size_t)more;
	p = (char *)(r->sans + r->nsans);
	for (i = 0; i < NFIELDS; i++) {
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

/* ---- JSON lines ---- */

static void json_raw(const char *s, size_t n)
{
	if (msgpack_sbuffer_write(&A.lines, s, n) != 0)
		A.lines_oom = 1;
}

static void json_out(void *arg, const char *s, size_t n)
{
	(void)arg;
	json_raw(s, n);
}

/* s as a JSON string, escaped by log_json_escape (valid for any bytes). */
static void json_str(const char *s)
{
	json_raw("\"", 1);
	log_json_escape(s, strlen(s), json_out, NULL);
	json_raw("\"", 1);
}

static void json_key(const char *key)
{
	json_raw(",", 1);
	json_str(key);
	json_raw(":", 1);
}

/* json_line(r): append r as one JSON line to A.lines; 0, or -1 without
 * memory (the buffer is as it was). */
static int json_line(const struct audit_rec *r)
{
	size_t start = A.lines.size, i, j;
	char num[128];			/* the longest: the three numbers of a close */
	struct tm tm;

	gmtime_r(&r->ts.tv_sec, &tm);
	snprintf(num, sizeof(num), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(r->ts.tv_nsec / 1000));
	json_raw(num, strlen(num));
	json_key("kind");
	json_str(kind_names[r->kind]);
	for (i = 0; i < NFIELDS; i++) {
		if (r->str[i] != NULL) {
			json_key(fields[i].key);
			json_str(r->str[i]);
		}
		if (i == FIELD_SUBJECT && r->nsans > 0) {
			json_key("sans");
			for (j = 0; j < r->nsans; j++) {
				json_raw(j == 0 ? "[" : ",", 1);
				json_str(r->sans[j]);
			}
			json_raw("]", 1);
		}
	}
	if (r->kind == AUDIT_CLOSE) {
		snprintf(num, sizeof(num), ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration\":%.6f",
		    r->bytes_in, r->bytes_out, r->duration);
		json_raw(num, strlen(num));
	}
	json_raw("}\n", 2);
	if (A.lines_oom) {
		A.lines.size = start;
		A.lines_oom = 0;
		return -1;
	}
	return 0;
}

/* file_flush(): write the buffered lines; a failure drops them (counted,
 * warned once until a write succeeds again). */
static void file_flush(void)
{
	size_t off = 0;
	ssize_t n;

	while (off < A.lines.size) {
		n = write(A.fd, A.lines.data + off, A.lines.size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!A.write_failed)
				log_warn("cannot write the audit file", "file=%s error=%s",
				    A.path, strerror(n < 0 ? errno : ENOSPC));
			A.write_failed = 1;
			drop(A.nlines);
			break;
		}
		off += (size_t)n;
	}
	if (off == A.lines.size && off > 0)
		A.write_failed = 0;
	msgpack_sbuffer_clear(&A.lines);
	A.nlines = 0;
}

static int file_open(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/* file_reopen(): open the path anew; keep the old file if that fails. */
static void file_reopen(void)
{
	int fd = file_open(A.path);

	if (fd < 0) {
		log_warn("cannot reopen the audit file, still writing the old one",
		    "file=%s error=%s", A.path, strerror(errno));
		return;
	}
	close(A.fd);
	A.fd = fd;
}

/* ---- forward ---- */

/* out_write: the packer's writer; remembers a failure to grow A.out. */
static int out_write(void *data, const char *buf, size_t len)
{
	if (msgpack_sbuffer_write(data, buf, len) != 0) {
		A.out_oom = 1;
		return -1;
	}
	return 0;
}

static void pack_str(const char *s)
{
	msgpack_pack_str_with_body(&A.pk, s, strlen(s));
}

/* fwd_pack(r): append r to A.out as [tag, EventTime, record]; 0, or -1
 * without memory (A.out as it was). */
static int fwd_pack(const struct audit_rec *r)
{
	size_t start = A.out.size;
	unsigned char et[8];
	uint32_t sec = (uint32_t)r->ts.tv_sec, nsec = (uint32_t)r->ts.tv_nsec;
	size_t i, j, n = 1 + (r->nsans > 0) + (r->kind == AUDIT_CLOSE ? 3 : 0);

	for (i = 0; i < NFIELDS; i++)
		n += r->str[i] != NULL;
	/* EventTime: ext type 0, seconds and nanoseconds, big-endian. */
	for (i = 0; i < 4; i++) {
		et[i] = (unsigned char)(sec >> (24 - 8 * i));
		et[4 + i] = (unsigned char)(nsec >> (24 - 8 * i));
	}
	msgpack_pack_array(&A.pk, 3);
	pack_str(A.tag);
	msgpack_pack_ext(&A.pk, sizeof(et), 0);
	msgpack_pack_ext_body(&A.pk, et, sizeof(et));
	msgpack_pack_map(&A.pk, n);
	pack_str("kind");
	pack_str(kind_names[r->kind]);
	for (i = 0; i < NFIELDS; i++) {
		if (r->str[i] != NULL) {
			pack_str(fields[i].key);
			pack_str(r->str[i]);
		}
		if (i == FIELD_SUBJECT && r->nsans > 0) {
			pack_str("sans");
			msgpack_pack_array(&A.pk, r->nsans);
			for (j = 0; j < r->nsans; j++)
				pack_str(r->sans[j]);
		}
	}
	if (r->kind == AUDIT_CLOSE) {
		pack_str("bytes_in");
		msgpack_pack_unsigned_long_long(&A.pk, r->bytes_in);
		pack_str("bytes_out");
		msgpack_pack_unsigned_long_long(&A.pk, r->bytes_out);
		pack_str("duration");
		msgpack_pack_double(&A.pk, r->duration);
	}
	if (A.out_oom) {
		A.out.size = start;
		A.out_oom = 0;
		return -1;
	}
	return 0;
}

/* fwd_send(): send the backlog until it is empty or the socket is full;
 * records leave the backlog once their whole batch is written.  0, or -1
 * when the connection failed. */
static int fwd_send(void)
{
	ssize_t n;

	for (;;) {
		if (A.sent == A.out.size) {
			for (; A.packed > 0; A.packed--)
				free(fifo_pop(&A.backlog));
			msgpack_sbuffer_clear(&A.out);
			A.sent = 0;
			while (A.packed < A.backlog.n && A.packed < AUDIT_PACK_MAX &&
			    A.out.size < AUDIT_PACK_BYTES) {
				if (fwd_pack(fifo_at(&A.backlog, A.packed)) < 0)
					break;
				A.packed++;
			}
			if (A.packed == 0 && A.backlog.n > 0) {
				/* Not even one fits in memory: lose it, not the link. */
				free(fifo_pop(&A.backlog));
				drop(1);
				continue;
			}
			if (A.out.size == 0)
				return 0;
		}
		n = send(A.sfd, A.out.data + A.sent, A.out.size - A.sent,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		A.sent += (size_t)n;
	}
}

static void fwd_connect(long long now)
{
	const struct sock_addr *a = &A.addr[A.next_addr++ % A.naddr];

	A.sfd = sock_connect(a);
	if (A.sfd < 0) {
		A.state = FWD_WAIT;
		A.deadline = now + A.backoff;
		A.backoff = A.backoff * 2 < AUDIT_RETRY_MAX_MS ? A.backoff * 2 : AUDIT_RETRY_MAX_MS;
		if (!A.down_warned)
			log_warn("audit forward target unavailable, retrying", "forward=%s error=%s",
			    A.forward, strerror(errno));
		A.down_warned = 1;
		return;
	}
	A.state = FWD_CONNECTING;
	A.deadline = now + AUDIT_CONNECT_MS;
}

/* fwd_down(now, error): close the connection, retry after the backoff; the
 * records being sent go again on the next connection. */
static void fwd_down(long long now, const char *error)
{
	if (!A.down_warned)
		log_warn(A.state == FWD_UP ? "audit forward connection lost, reconnecting" :
		    "audit forward target unavailable, retrying",
		    "forward=%s error=%s", A.forward, error);
	A.down_warned = 1;
	close(A.sfd);
	A.sfd = -1;
	A.state = FWD_WAIT;
	A.deadline = now + A.backoff;
	A.backoff = A.backoff * 2 < AUDIT_RETRY_MAX_MS ? A.backoff * 2 : AUDIT_RETRY_MAX_MS;
	msgpack_sbuffer_clear(&A.out);
	A.packed = A.sent = 0;
}

/* fwd_step(now, revents): advance the forward connection after poll. */
static void fwd_step(long long now, short revents)
{
	char buf[512];
	ssize_t n;
	int e;

	if (A.state == FWD_WAIT && now >= A.deadline)
		fwd_connect(now);
	if (A.state == FWD_CONNECTING) {
		if (revents != 0) {
			if ((e = sock_error(A.sfd)) != 0) {
				fwd_down(now, strerror(e));
				return;
			}
			A.state = FWD_UP;
			A.backoff = AUDIT_RETRY_MIN_MS;
			if (A.down_warned)
				log_info("audit forward connected", "forward=%s", A.forward);
			A.down_warned = 0;
		} else if (now >= A.deadline) {
			fwd_down(now, "connect timed out");
			return;
		}
	}
	if (A.state != FWD_UP)
		return;
	/* in_forward says nothing unless asked for acks; bytes mean a
	 * <security> handshake (HELO), which this sender does not speak. */
	if (revents & POLLIN) {
		n = recv(A.sfd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			fwd_down(now, n == 0 ? "closed by peer" : strerror(errno));
			return;
		}
		if (n > 0 && !A.got_data)
			log_warn("audit forward target sent data; in_forward <security> is not supported",
			    "forward=%s", A.forward);
		A.got_data |= n > 0;
	}
	if ((revents & (POLLERR | POLLHUP)) && !(revents & POLLIN)) {
		e = sock_error(A.sfd);
		fwd_down(now, e != 0 ? strerror(e) : "hang-up");
		return;
	}
	if (fwd_send() < 0)
		fwd_down(now, strerror(errno));
}

/* ---- the thread ---- */

/* take_batch(reopen): swap the queue for the thread's empty one; returns
 * whether audit_close asked to stop, and sets *reopen if audit_reopen was
 * called since the last batch.  Reopen requests are read after the
 * swap, so every event emitted after audit_reopen returned is in a batch
 * that sees the request. */
static int take_batch(int *reopen)
{
	struct fifo t;
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
		r = fifo_pop(&A.batch);
		lost = 0;
		if (A.fd >= 0) {
			if (A.lines.size >= AUDIT_FLUSH_BYTES)
				file_flush();
			if (json_line(r) == 0)
				A.nlines++;
			else
				lost = 1;
		}
		if (A.naddr > 0 && fifo_fits(&A.backlog, r)) {
			fifo_push(&A.backlog, r);
		} else {
			lost |= A.naddr > 0;
			free(r);
		}
		if (lost)
			drop(1);
	}
	if (A.fd >= 0 && A.lines.size > 0)
		file_flush();
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
	if (A.naddr > 0)
		fwd_connect(now_ms());
	for (;;) {
		struct pollfd p[2] = { { .fd = A.efd, .events = POLLIN }, { .fd = -1 } };
		long long wake = -1;
		uint64_t v;

		if (A.state == FWD_CONNECTING)
			p[1] = (struct pollfd){ .fd = A.sfd, .events = POLLOUT };
		else if (A.state == FWD_UP)
			p[1] = (struct pollfd){ .fd = A.sfd,
			    .events = (short)(POLLIN | (A.backlog.n > 0 ? POLLOUT : 0)) };
		if (A.state == FWD_WAIT || A.state == FWD_CONNECTING)
			wake = A.deadline;
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
			if (A.state == FWD_WAIT && A.backlog.n > 0)
				A.deadline = now;
		}
		if (reopen && A.fd >= 0)
			file_reopen();
		deliver_batch();
		if (A.naddr > 0)
			fwd_step(now, p[1].fd >= 0 ? p[1].revents : 0);
		log_drops(now);
		if (stopping && (A.backlog.n == 0 || now >= stop_at))
			break;
	}
	return NULL;
}

/* ---- the API ---- */

static void audit_free(void)
{
	drop(fifo_free(&A.queue) + fifo_free(&A.batch) + fifo_free(&A.backlog));
	if (A.fd >= 0)
		close(A.fd);
	if (A.sfd >= 0)
		close(A.sfd);
	if (A.efd >= 0)
		close(A.efd);
	msgpack_sbuffer_destroy(&A.lines);
	msgpack_sbuffer_destroy(&A.out);
	free(A.path);
	free(A.forward);
	free(A.tag);
	memset(&A, 0, sizeof(A));
	A.efd = A.fd = A.sfd = -1;
}

/** audit_open(file, forward, tag, err, errsz): start auditing to file (JSON
 *  lines, appended, created 0640) and/or to forward ("host:port" of a Fluentd
 *  in_forward, plain TCP) under tag (NULL: AUDIT_TAG_DEFAULT).  Both NULL:
 *  auditing stays off and audit_emit does nothing.  Warns if forward is not a
 *  loopback address.  Returns 0, or -1 with a message in err. */
int audit_open(const char *file, const char *forward, const char *tag,
    char *err, size_t errsz)
{
	sigset_t all, old;
	const char *why;
	char ntop[SOCK_NTOP_MAX];
	int i, rc;

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
	msgpack_sbuffer_init(&A.lines);
	msgpack_sbuffer_init(&A.out);
	msgpack_packer_init(&A.pk, &A.out, out_write);
	if (forward != NULL) {
		if ((A.naddr = sock_resolve(forward, A.addr, AUDIT_ADDRS, &why)) < 0) {
			A.naddr = 0;
			snprintf(err, errsz, "audit forward %s: %s", forward, why);
			goto fail;
		}
		for (i = 0; i < A.naddr; i++) {
			if (!sock_is_loopback(&A.addr[i]))
				log_warn("audit forward target is not loopback: audit events leave this host unencrypted",
				    "forward=%s address=%s", forward, sock_ntop(&A.addr[i], ntop));
		}
		A.backoff = AUDIT_RETRY_MIN_MS;
	}
	if (file != NULL && (A.fd = file_open(file)) < 0) {
		snprintf(err, errsz, "audit file %s: %s", file, strerror(errno));
		goto fail;
	}
	A.path = file != NULL ? strdup(file) : NULL;
	A.forward = forward != NULL ? strdup(forward) : NULL;
	A.tag = strdup(tag);
	if ((file != NULL && A.path == NULL) || (forward != NULL && A.forward == NULL) ||
	    A.tag == NULL ||
	    fifo_init(&A.queue, AUDIT_QUEUE_MAX, AUDIT_QUEUE_BYTES) < 0 ||
	    fifo_init(&A.batch, AUDIT_QUEUE_MAX, AUDIT_QUEUE_BYTES) < 0 ||
	    (forward != NULL && fifo_init(&A.backlog, AUDIT_BACKLOG_MAX, AUDIT_QUEUE_BYTES) < 0)) {
		snprintf(err, errsz, "audit: out of memory");
		goto fail;
	}
	if ((A.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, errsz, "audit: eventfd: %s", strerror(errno));
		goto fail;
	}
	A.reopens_seen = atomic_load(&audit_reopens);

	/* The thread takes no signals: the main loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
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
		drop(1);
		return;
	}
	pthread_mutex_lock(&audit_mu);
	if (A.queue.slot != NULL && !A.stopping && fifo_fits(&A.queue, r)) {
		/* The thread empties the queue each time it wakes, so only the
		 * first event after that needs to wake it. */
		if (A.queue.n == 0)
			(void)!write(A.efd, &one, sizeof(one));
		fifo_push(&A.queue, r);
		queued = 1;
	}
	pthread_mutex_unlock(&audit_mu);
	if (!queued) {
		free(r);
		drop(1);
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
