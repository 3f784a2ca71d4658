/* test_audit_parts: the seams inside the audit trail (server/audit_int.h),
 * without its thread: the bounded FIFO (count and byte bounds, order across
 * the wrap, freeing what is left), the JSON-lines file on its own (buffered
 * until flushed, reopened after a rename, nothing without a file) and the
 * forward backlog on its own (bounded, owns what it takes, frees what it
 * refuses, counts what is left at close).  test_audit.c covers the whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"

/* rec(size, peer): a record as audit.c makes one, accounted as size bytes,
 * stamped 1970-01-01T00:00:01.5Z, with peer as its only string. */
static struct audit_rec *rec(size_t size, const char *peer)
{
	struct audit_rec *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->size = size;
	r->kind = AUDIT_ACCEPT;
	r->ts.tv_sec = 1;
	r->ts.tv_nsec = 500000000;
	r->str[0] = peer;
	return r;
}

/* file_text(path, buf, n): the file's content, NUL-terminated. */
static char *file_text(const char *path, char *buf, size_t n)
{
	FILE *fp = fopen(path, "r");
	size_t len;

	assert_non_null(fp);
	len = fread(buf, 1, n - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	return buf;
}

static void test_fifo_bounds_and_order(void **state)
{
	struct audit_fifo f;
	struct audit_rec *r[5], tiny = { .size = 1 };
	size_t i;

	(void)state;
	assert_int_equal(audit_fifo_init(&f, 3, 100), 0);
	for (i = 0; i < 5; i++)
		r[i] = rec(40, "x");
	/* The byte bound: 40 + 40 fit in 100, a third 40 does not. */
	audit_fifo_push(&f, r[0]);
	assert_true(audit_fifo_fits(&f, r[1]));
	audit_fifo_push(&f, r[1]);
	assert_false(audit_fifo_fits(&f, r[2]));
	assert_int_equal(f.bytes, 80);
	/* Across the wrap, in order. */
	assert_ptr_equal(audit_fifo_pop(&f), r[0]);
	free(r[0]);
	r[2]->size = 20;
	r[3]->size = 20;
	audit_fifo_push(&f, r[2]);
	assert_true(audit_fifo_fits(&f, r[3]));
	assert_int_equal(f.n, 2);
	assert_ptr_equal(audit_fifo_at(&f, 0), r[1]);
	assert_ptr_equal(audit_fifo_at(&f, 1), r[2]);
	assert_ptr_equal(audit_fifo_pop(&f), r[1]);
	free(r[1]);
	audit_fifo_push(&f, r[3]);
	r[4]->size = 20;
	audit_fifo_push(&f, r[4]);
	/* The count bound: 3 slots, all taken, 60 bytes of 100. */
	assert_int_equal(f.n, 3);
	assert_false(audit_fifo_fits(&f, &tiny));
	assert_ptr_equal(audit_fifo_at(&f, 0), r[2]);
	assert_ptr_equal(audit_fifo_at(&f, 2), r[4]);
	/* Freeing counts and frees what is left (ASan, valgrind). */
	assert_int_equal(audit_fifo_free(&f), 3);
	assert_null(f.slot);
	assert_int_equal(audit_fifo_free(&f), 0);
}

static void test_file_alone(void **state)
{
	char dir[] = "/tmp/test_audit_parts.XXXXXX", path[128], moved[128], err[256] = "";
	char buf[512];
	struct audit_rec *r = rec(1, "127.0.0.1:1");
	struct stat st;
	mode_t mask;

	(void)state;
	/* No file open: nothing is lost, nothing is written. */
	assert_int_equal(audit_file_add(r), 0);
	audit_file_flush();
	audit_file_reopen();

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	snprintf(moved, sizeof(moved), "%s/audit.log.1", dir);
	mask = umask(022);
	assert_int_equal(audit_file_open(path, err, sizeof(err)), 0);
	umask(mask);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	/* Buffered until flushed. */
	assert_int_equal(audit_file_add(r), 0);
	assert_string_equal(file_text(path, buf, sizeof(buf)), "");
	audit_file_flush();
	assert_string_equal(file_text(path, buf, sizeof(buf)),
	    "{\"time\":\"1970-01-01T00:00:01.500000Z\",\"kind\":\"accept\",\"peer\":\"127.0.0.1:1\"}\n");

	/* Reopened after a rename: the next line goes to the new file. */
	assert_int_equal(rename(path, moved), 0);
	audit_file_reopen();
	r->kind = AUDIT_DENY;
	assert_int_equal(audit_file_add(r), 0);
	audit_file_flush();
	assert_non_null(strstr(file_text(path, buf, sizeof(buf)), "\"kind\":\"deny\""));
	assert_null(strstr(file_text(moved, buf, sizeof(buf)), "\"kind\":\"deny\""));

	/* Lines not flushed are lost at close, and nothing leaks. */
	assert_int_equal(audit_file_add(r), 0);
	audit_file_close();
	assert_int_equal(audit_file_add(r), 0);
	free(r);
	unlink(path);
	unlink(moved);
	rmdir(dir);

	/* A file that cannot be opened names itself; close frees the rest. */
	assert_int_equal(audit_file_open("/nonexistent/dir/audit.log", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/audit.log"));
	audit_file_close();
}

static void test_fwd_backlog_alone(void **state)
{
	struct pollfd p = { .fd = -1 };
	char err[256] = "";
	size_t i;

	(void)state;
	/* Nothing forwarded: a record is freed, not lost; nothing to poll. */
	assert_int_equal(audit_fwd_add(rec(1, "x")), 0);
	assert_int_equal(audit_fwd_waiting(), 0);
	assert_int_equal(audit_fwd_poll(&p), -1);
	assert_int_equal(p.fd, -1);
	audit_fwd_step(0, 0);
	assert_int_equal(audit_fwd_close(), 0);

	assert_int_equal(audit_fwd_open("no-port-here", "t", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "audit forward no-port-here"));
	assert_int_equal(audit_fwd_close(), 0);

	/* Not connected (no audit_fwd_start): the backlog fills up to its
	 * bound, refuses the next one (freed, lost), and close counts the rest. */
	assert_int_equal(audit_fwd_open("127.0.0.1:9", "t", err, sizeof(err)), 0);
	for (i = 0; i < AUDIT_BACKLOG_MAX; i++)
		assert_int_equal(audit_fwd_add(rec(1, "x")), 0);
	assert_int_equal(audit_fwd_add(rec(1, "x")), -1);
	assert_int_equal(audit_fwd_waiting(), AUDIT_BACKLOG_MAX);
	assert_int_equal(audit_fwd_poll(&p), -1);
	assert_int_equal(audit_fwd_close(), AUDIT_BACKLOG_MAX);
	assert_int_equal(audit_fwd_waiting(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_bounds_and_order),
		cmocka_unit_test(test_file_alone),
		cmocka_unit_test(test_fwd_backlog_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
