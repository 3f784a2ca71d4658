/* test_ratelimit: the rate-limited refusal lines of shared/ratelimit.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

static char out[1 << 16];
static size_t out_len;
static int out_lines;

static void capture(const char *line, size_t n)
{
	if (out_len + n < sizeof(out)) {
		memcpy(out + out_len, line, n);
		out_len += n;
		out[out_len] = '\0';
	}
	out_lines++;
}

static void reset(void)
{
	ratelimit_flush(1);	/* what earlier tests left counted */
	out_len = 0;
	out[0] = '\0';
	out_lines = 0;
}

static struct sock_addr addr(const char *spec)
{
	struct sock_addr a;
	const char *why;

	assert_int_equal(sock_resolve(spec, &a, 1, &why), 1);
	return a;
}

/* sum_repeated(): the repeated=N counts in the captured lines. */
static long sum_repeated(void)
{
	const char *p = out;
	long sum = 0;

	while ((p = strstr(p, "repeated=")) != NULL) {
		p += strlen("repeated=");
		sum += strtol(p, NULL, 10);
	}
	return sum;
}

static const char msg[] = "refused before TLS";

static void test_repeats_become_one_line_with_a_count(void **state)
{
	struct sock_addr a = addr("192.0.2.1:1000"), a2 = addr("192.0.2.1:2000");
	int i;

	(void)state;
	reset();
	assert_int_equal(ratelimit_allow(LOG_WARN, msg, &a, "per_ip_handshakes"), 1);
	for (i = 0; i < 99; i++)	/* other ports: the same address */
		assert_int_equal(ratelimit_allow(LOG_WARN, msg, i % 2 ? &a : &a2, "per_ip_handshakes"), 0);
	ratelimit_flush(0);	/* the window is still open */
	assert_int_equal(out_lines, 0);
	ratelimit_flush(1);
	assert_int_equal(out_lines, 1);
	assert_non_null(strstr(out, "peer=192.0.2.1 reason=per_ip_handshakes repeated=99"));
	ratelimit_flush(1);	/* nothing left */
	assert_int_equal(out_lines, 1);
}

static void test_reasons_and_addresses_are_separate(void **state)
{
	struct sock_addr a = addr("192.0.2.2:1"), b = addr("[2001:db8::2]:1");

	(void)state;
	reset();
	assert_int_equal(ratelimit_allow(LOG_WARN, msg, &a, "net_denied"), 1);
	assert_int_equal(ratelimit_allow(LOG_WARN, msg, &a, "per_ip_limit"), 1);
	assert_int_equal(ratelimit_allow(LOG_WARN, msg, &b, "net_denied"), 1);
	assert_int_equal(ratelimit_allow(LOG_WARN, "handshake failed", &a, "net_denied"), 1);
	assert_int_equal(ratelimit_allow(LOG_WARN, msg, &b, "net_denied"), 0);
	ratelimit_flush(1);
	assert_non_null(strstr(out, "peer=2001:db8::2 reason=net_denied repeated=1"));
	assert_int_equal(out_lines, 1);
}

static void test_a_full_table_counts_as_many(void **state)
{
	struct sock_addr a;
	char spec[64];
	long logged = 0, n = 5000;
	int i;

	(void)state;
	reset();
	for (i = 0; i < n; i++) {
		snprintf(spec, sizeof(spec), "10.%d.%d.%d:9", i / 65536, i / 256 % 256, i % 256);
		a = addr(spec);
		logged += ratelimit_allow(LOG_WARN, msg, &a, "not_tls");
	}
	assert_true(logged < n);	/* the table holds far fewer keys */
	ratelimit_flush(1);
	assert_non_null(strstr(out, "peer=many reason=not_tls repeated="));
	assert_int_equal(logged + sum_repeated(), n);	/* every event counted once */
	assert_true(out_lines < 600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeats_become_one_line_with_a_count),
		cmocka_unit_test(test_reasons_and_addresses_are_separate),
		cmocka_unit_test(test_a_full_table_counts_as_many),
	};

	log_setup("test", LOG_INFO, LOG_LOGFMT);
	log_set_output(capture);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
