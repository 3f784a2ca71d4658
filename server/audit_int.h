/* audit_int: what the audit trail's three files share (server/audit*.c
 * only; audit.h is the API): one queued event (struct audit_rec), the bounded
 * FIFOs records wait in, the fields in output order and the drop counter.
 * audit.c copies events, queues them and runs the thread; audit_file.c
 * writes them as JSON lines, audit_fwd.c sends them as forward-protocol
 * events.  The outputs' functions run on the audit thread only (or before it
 * starts, or after it was joined). */
#ifndef TLSFWD_AUDIT_INT_H
#define TLSFWD_AUDIT_INT_H

#include <poll.h>
#include <stddef.h>
#include <time.h>

#include "audit.h"

/* The optional strings of struct audit_event, in output order; the SANs go
 * after AUDIT_FIELD_SUBJECT. */
struct audit_field {
	const char *key;
	size_t off;
};
#define AUDIT_NFIELDS 10
#define AUDIT_FIELD_SUBJECT 1
extern const struct audit_field audit_fields[];
extern const char *const audit_kind_names[];	/* by enum audit_kind */

/* One queued event: this struct, then the SAN pointers, then the strings,
 * in one allocation of size bytes. */
struct audit_rec {
	size_t size;
	enum audit_kind kind;
	struct timespec ts;			/* CLOCK_REALTIME at audit_emit */
	unsigned long long bytes_in, bytes_out;
	double duration;
	const char *str[AUDIT_NFIELDS];		/* NULL when absent */
	const char **sans;
	size_t nsans;
};

/* A bounded FIFO of records: at most cap of them, at most max_bytes. */
struct audit_fifo {
	struct audit_rec **slot;
	size_t cap, head, n, bytes, max_bytes;
};

/* audit.c */

/** audit_fifo_init(f, cap, max_bytes): an empty FIFO; 0, or -1 without
 *  memory. */
int audit_fifo_init(struct audit_fifo *f, size_t cap, size_t max_bytes);

/** audit_fifo_fits(f, r): non-zero if r may join f (count and bytes). */
int audit_fifo_fits(const struct audit_fifo *f, const struct audit_rec *r);

/** audit_fifo_push(f, r): r at f's tail; f owns it.  Only if it fits. */
void audit_fifo_push(struct audit_fifo *f, struct audit_rec *r);

/** audit_fifo_at(f, i): the i-th record from the head (i < f->n). */
struct audit_rec *audit_fifo_at(const struct audit_fifo *f, size_t i);

/** audit_fifo_pop(f): take the head record (f not empty); the caller owns it. */
struct audit_rec *audit_fifo_pop(struct audit_fifo *f);

/** audit_fifo_free(f): free the records left and the slots; returns how many
 *  records there were. */
size_t audit_fifo_free(struct audit_fifo *f);

/** audit_drop(n): count n events that missed a destination (audit_dropped). */
void audit_drop(unsigned long long n);

/* audit_file.c: the JSON-lines file */

/** audit_file_open(path, err, errsz): append to path (created 0640).  0, or
 *  -1 with a message in err; audit_file_close() then frees what was made. */
int audit_file_open(const char *path, char *err, size_t errsz);

/** audit_file_add(r): buffer r as one JSON line (written once
 *  AUDIT_FLUSH_BYTES wait, or by audit_file_flush); r stays the caller's.
 *  Returns -1 if r is lost (no memory), else 0; 0 too with no file open. */
int audit_file_add(const struct audit_rec *r);

/** audit_file_flush(): write the buffered lines, if any. */
void audit_file_flush(void);

/** audit_file_reopen(): open the path anew (logrotate); keep the old file if
 *  that fails.  Nothing with no file open. */
void audit_file_reopen(void);

/** audit_file_close(): close the file and free the buffer (lines not flushed
 *  are lost: flush first). */
void audit_file_close(void);

/* audit_fwd.c: the forward-protocol connection and its backlog */

/** audit_fwd_open(forward, tag, err, errsz): resolve forward ("host:port";
 *  warns for each address that is not loopback) and make the backlog.  The
 *  connection is made by audit_fwd_start and audit_fwd_step.  0, or -1
 *  with a message in err; audit_fwd_close() then frees what was made. */
int audit_fwd_open(const char *forward, const char *tag, char *err, size_t errsz);

/** audit_fwd_start(now): the first connect, when something is forwarded. */
void audit_fwd_start(long long now);

/** audit_fwd_add(r): r to the backlog, which then owns it; r is freed when
 *  nothing is forwarded or the backlog is full.  Returns -1 if r is lost that
 *  way (backlog full), else 0. */
int audit_fwd_add(struct audit_rec *r);

/** audit_fwd_poll(p): set *p to what the connection waits for (left alone
 *  when nothing); returns when audit_fwd_step must run again without an
 *  event (ms, CLOCK_MONOTONIC), or -1. */
long long audit_fwd_poll(struct pollfd *p);

/** audit_fwd_step(now, revents): connect, reconnect after the backoff, send
 *  the backlog: what poll reported (revents of audit_fwd_poll's fd, or 0)
 *  at now allows.  Nothing when nothing is forwarded. */
void audit_fwd_step(long long now, short revents);

/** audit_fwd_hurry(now): stopping: a connection waiting out its backoff with
 *  a backlog tries again at now. */
void audit_fwd_hurry(long long now);

/** audit_fwd_waiting(): events in the backlog, not yet sent. */
size_t audit_fwd_waiting(void);

/** audit_fwd_close(): close the connection and free the backlog; returns
 *  how many events it still held (undelivered). */
size_t audit_fwd_close(void);

#endif
