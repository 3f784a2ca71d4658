/* audit_file: the audit trail's JSON-lines output (--audit-file): each
 * record as one line, buffered up to AUDIT_FLUSH_BYTES and written by the
 * audit thread, the file reopened on request (SIGUSR1, logrotate); see
 * audit_int.h.  A failed write drops the lines (counted, warned once until a
 * write succeeds again). */
#include "audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "log.h"

#define AUDIT_FLUSH_BYTES  65536	/* file lines buffered before a write */

/* Set by audit_file_open, then the audit thread's until audit_file_close. */
static struct {
	char *path;
	int fd;
	msgpack_sbuffer lines;			/* JSON lines not yet written */
	size_t nlines;
	int lines_oom;				/* the line being built lost bytes */
	int write_failed;			/* warned about a failed write */
} A = { .fd = -1 };

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
	json_str(audit_kind_names[r->kind]);
	for (i = 0; i < AUDIT_NFIELDS; i++) {
		if (r->str[i] != NULL) {
			json_key(audit_fields[i].key);
			json_str(r->str[i]);
		}
		if (i == AUDIT_FIELD_SUBJECT && r->nsans > 0) {
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
			audit_drop(A.nlines);
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

/** audit_file_open(path, err, errsz): append to path (created 0640).  0, or
 *  -1 with a message in err; audit_file_close() then frees what was made. */
int audit_file_open(const char *path, char *err, size_t errsz)
{
	msgpack_sbuffer_init(&A.lines);
	if ((A.fd = file_open(path)) < 0) {
		snprintf(err, errsz, "audit file %s: %s", path, strerror(errno));
		return -1;
	}
	if ((A.path = strdup(path)) == NULL) {
		snprintf(err, errsz, "audit: out of memory");
		return -1;
	}
	return 0;
}

/** audit_file_add(r): buffer r as one JSON line (written once
 *  AUDIT_FLUSH_BYTES wait, or by audit_file_flush); r stays the caller's.
 *  Returns -1 if r is lost (no memory), else 0; 0 too with no file open. */
int audit_file_add(const struct audit_rec *r)
{
	if (A.fd < 0)
		return 0;
	if (A.lines.size >= AUDIT_FLUSH_BYTES)
		file_flush();
	if (json_line(r) < 0)
		return -1;
	A.nlines++;
	return 0;
}

/** audit_file_flush(): write the buffered lines, if any. */
void audit_file_flush(void)
{
	if (A.fd >= 0 && A.lines.size > 0)
		file_flush();
}

/** audit_file_reopen(): open the path anew (logrotate); keep the old file if
 *  that fails.  Nothing with no file open. */
void audit_file_reopen(void)
{
	int fd;

	if (A.fd < 0)
		return;
	if ((fd = file_open(A.path)) < 0) {
		log_warn("cannot reopen the audit file, still writing the old one",
		    "file=%s error=%s", A.path, strerror(errno));
		return;
	}
	close(A.fd);
	A.fd = fd;
}

/** audit_file_close(): close the file and free the buffer (lines not flushed
 *  are lost: flush first). */
void audit_file_close(void)
{
	if (A.fd >= 0)
		close(A.fd);
	msgpack_sbuffer_destroy(&A.lines);
	free(A.path);
	memset(&A, 0, sizeof(A));
	A.fd = -1;
}
