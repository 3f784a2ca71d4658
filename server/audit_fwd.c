/* audit_fwd: the audit trail's forward-protocol output (--audit-forward):
 * records as Message events ([tag, EventTime, record], msgpack-c) over plain
 * TCP to a Fluentd in_forward, on the audit thread; see audit_int.h.
 *
 *-
 * Records wait in the backlog, a bounded FIFO only the thread touches, so a
 * target that is away costs the forward events beyond the backlog, never the
 * file's.  They are packed in batches (AUDIT_PACK_MAX) and leave the backlog
 * once their whole batch is written to the socket; a connection lost half way
 * sends the batch again on the next one (at least once, as far as TCP without
 * acks can promise).  A lost connection is retried after a backoff that
 * doubles up to AUDIT_RETRY_MAX_MS, over the resolved addresses in turn.
 */
#include "audit_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#include "log.h"
#include "sock.h"

#define AUDIT_ADDRS        8		/* resolved forward addresses tried in turn */
#define AUDIT_PACK_MAX     64		/* events packed per send batch */
#define AUDIT_PACK_BYTES   65536	/* ... or this many bytes */
#define AUDIT_CONNECT_MS   3000		/* forward connect timeout */
#define AUDIT_RETRY_MIN_MS 100		/* reconnect backoff, doubling ... */
#define AUDIT_RETRY_MAX_MS 5000		/* ... up to this */

enum fwd_state { FWD_OFF, FWD_WAIT, FWD_CONNECTING, FWD_UP };

/* Set by audit_fwd_open, then the audit thread's until audit_fwd_close. */
static struct {
	char *forward, *tag;
	struct sock_addr addr[AUDIT_ADDRS];
	int naddr, next_addr;
	enum fwd_state state;
	int sfd;
	long long deadline;			/* connect timeout or next retry, ms */
	long long backoff;
	int down_warned;			/* warned since the last connect */
	int got_data;				/* warned about bytes from the target */
	struct audit_fifo backlog;
	msgpack_sbuffer out;			/* packed backlog head, being sent */
	msgpack_packer pk;
	int out_oom;				/* the event being packed lost bytes */
	size_t packed, sent;			/* events in out, bytes of out sent */
} A = { .sfd = -1 };

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

	for (i = 0; i < AUDIT_NFIELDS; i++)
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
	pack_str(audit_kind_names[r->kind]);
	for (i = 0; i < AUDIT_NFIELDS; i++) {
		if (r->str[i] != NULL) {
			pack_str(audit_fields[i].key);
			pack_str(r->str[i]);
		}
		if (i == AUDIT_FIELD_SUBJECT && r->nsans > 0) {
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
				free(audit_fifo_pop(&A.backlog));
			msgpack_sbuffer_clear(&A.out);
			A.sent = 0;
			while (A.packed < A.backlog.n && A.packed < AUDIT_PACK_MAX &&
			    A.out.size < AUDIT_PACK_BYTES) {
				if (fwd_pack(audit_fifo_at(&A.backlog, A.packed)) < 0)
					break;
				A.packed++;
			}
			if (A.packed == 0 && A.backlog.n > 0) {
				/* Not even one fits in memory: lose it, not the link. */
				free(audit_fifo_pop(&A.backlog));
				audit_drop(1);
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

/** audit_fwd_step(now, revents): connect, reconnect after the backoff, send
 *  the backlog: what poll reported (revents of audit_fwd_poll's fd, or 0)
 *  at now allows.  Nothing when nothing is forwarded. */
void audit_fwd_step(long long now, short revents)
{
	char buf[512];
	ssize_t n;
	int e;

	if (A.naddr == 0)
		return;
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

/** audit_fwd_open(forward, tag, err, errsz): resolve forward ("host:port";
 *  warns for each address that is not loopback) and make the backlog.  The
 *  connection is made by audit_fwd_start and audit_fwd_step.  0, or -1
 *  with a message in err; audit_fwd_close() then frees what was made. */
int audit_fwd_open(const char *forward, const char *tag, char *err, size_t errsz)
{
	const char *why;
	char ntop[SOCK_NTOP_MAX];
	int i;

	msgpack_sbuffer_init(&A.out);
	msgpack_packer_init(&A.pk, &A.out, out_write);
	if ((A.naddr = sock_resolve(forward, A.addr, AUDIT_ADDRS, &why)) < 0) {
		A.naddr = 0;
		snprintf(err, errsz, "audit forward %s: %s", forward, why);
		return -1;
	}
	for (i = 0; i < A.naddr; i++) {
		if (!sock_is_loopback(&A.addr[i]))
			log_warn("audit forward target is not loopback: audit events leave this host unencrypted",
			    "forward=%s address=%s", forward, sock_ntop(&A.addr[i], ntop));
	}
	A.backoff = AUDIT_RETRY_MIN_MS;
	if ((A.forward = strdup(forward)) == NULL || (A.tag = strdup(tag)) == NULL ||
	    audit_fifo_init(&A.backlog, AUDIT_BACKLOG_MAX, AUDIT_QUEUE_BYTES) < 0) {
		snprintf(err, errsz, "audit: out of memory");
		return -1;
	}
	return 0;
}

/** audit_fwd_start(now): the first connect, when something is forwarded. */
void audit_fwd_start(long long now)
{
	if (A.naddr > 0)
		fwd_connect(now);
}

/** audit_fwd_add(r): r to the backlog, which then owns it; r is freed when
 *  nothing is forwarded or the backlog is full.  Returns -1 if r is lost that
 *  way (backlog full), else 0. */
int audit_fwd_add(struct audit_rec *r)
{
	if (A.naddr > 0 && audit_fifo_fits(&A.backlog, r)) {
		audit_fifo_push(&A.backlog, r);
		return 0;
	}
	free(r);
	return A.naddr > 0 ? -1 : 0;
}

/** audit_fwd_poll(p): set *p to what the connection waits for (left alone
 *  when nothing); returns when audit_fwd_step must run again without an
 *  event (ms, CLOCK_MONOTONIC), or -1. */
long long audit_fwd_poll(struct pollfd *p)
{
	if (A.state == FWD_CONNECTING)
		*p = (struct pollfd){ .fd = A.sfd, .events = POLLOUT };
	else if (A.state == FWD_UP)
		*p = (struct pollfd){ .fd = A.sfd,
		    .events = (short)(POLLIN | (A.backlog.n > 0 ? POLLOUT : 0)) };
	return A.state == FWD_WAIT || A.state == FWD_CONNECTING ? A.deadline : -1;
}

/** audit_fwd_hurry(now): stopping: a connection waiting out its backoff with
 *  a backlog tries again at now. */
void audit_fwd_hurry(long long now)
{
	if (A.state == FWD_WAIT && A.backlog.n > 0)
		A.deadline = now;
}

/** audit_fwd_waiting(): events in the backlog, not yet sent. */
size_t audit_fwd_waiting(void)
{
	return A.backlog.n;
}

/** audit_fwd_close(): close the connection and free the backlog; returns
 *  how many events it still held (undelivered). */
size_t audit_fwd_close(void)
{
	size_t n = audit_fifo_free(&A.backlog);

	if (A.sfd >= 0)
		close(A.sfd);
	msgpack_sbuffer_destroy(&A.out);
	free(A.forward);
	free(A.tag);
	memset(&A, 0, sizeof(A));
	A.sfd = -1;
	return n;
}
