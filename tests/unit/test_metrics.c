/* test_metrics: shared/metrics.c's pure parts — label escaping, the
 * (outcome, reason) tables and their overflow, histogram buckets, the text a
 * scrape renders from registered workers, readiness, and the certificate
 * expiry lines at 40, 10, 3 and -1 days. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

static void label_is(const char *in, const char *want)
{
	struct metrics_buf b = { 0 };

	metrics_label(&b, in);
	assert_false(b.failed);
	assert_non_null(b.p);
	assert_string_equal(b.p, want);
	free(b.p);
}

static void test_label_escaping(void **state)
{
	(void)state;
	label_is("CN=a", "CN=a");
	label_is("a\"b\\c\nd", "a\\\"b\\\\c\\nd");
	label_is("tab\there\x7f", "tab?here?");
	label_is("é", "é");		/* UTF-8 passes as is */
}

static void test_printf_grows(void **state)
{
	struct metrics_buf b = { 0 };
	int i;

	(void)state;
	for (i = 0; i < 1000; i++)
		metrics_printf(&b, "line %d\n", i);
	assert_false(b.failed);
	assert_int_equal(strlen(b.p), b.len);
	assert_non_null(strstr(b.p, "line 999\n"));
	free(b.p);
}

static void test_pairs_overflow(void **state)
{
	static struct metrics_pairs p;
	static const char *const done = "done", *const other = "handshake_failed";
	char r[32];
	int i;

	(void)state;
	metrics_pair(&p, done, "done");
	metrics_pair(&p, done, "done");
	metrics_pair(&p, done, NULL);
	assert_int_equal(atomic_load(&p.n), 2);
	assert_string_equal(p.v[0].reason, "done");
	assert_int_equal(atomic_load(&p.v[0].count), 2);
	assert_string_equal(p.v[1].reason, "none");
	metrics_pair(&p, other, "done");	/* another outcome, same reason */
	assert_int_equal(atomic_load(&p.n), 3);
	for (i = 0; i < 2 * METRICS_PAIRS; i++) {
		snprintf(r, sizeof(r), "reason_%d", i);
		metrics_pair(&p, other, r);
	}
	/* bounded: the last entry takes the rest */
	assert_int_equal(atomic_load(&p.n), METRICS_PAIRS);
	assert_string_equal(p.v[METRICS_PAIRS - 1].reason, "other");
	assert_int_equal(atomic_load(&p.v[METRICS_PAIRS - 1].count),
	    2 * METRICS_PAIRS - (METRICS_PAIRS - 1 - 3));
	/* a long reason is cut, and found again by its cut form */
	memset(&p, 0, sizeof(p));
	metrics_pair(&p, other, "a_reason_longer_than_forty_bytes_is_cut_here");
	metrics_pair(&p, other, "a_reason_longer_than_forty_bytes_is_cut_here");
	assert_int_equal(atomic_load(&p.n), 1);
	assert_int_equal(atomic_load(&p.v[0].count), 2);
}

static void test_histogram(void **state)
{
	static struct metrics_hist h;

	(void)state;
	metrics_observe(&h, 0.0005);
	metrics_observe(&h, 0.001);	/* le is inclusive */
	metrics_observe(&h, 0.2);
	metrics_observe(&h, 60);	/* only in +Inf */
	assert_int_equal(atomic_load(&h.bucket[0]), 2);
	assert_int_equal(atomic_load(&h.bucket[7]), 1);	/* 0.25 */
	assert_int_equal(atomic_load(&h.count), 4);
	assert_int_equal(atomic_load(&h.sum_us), 500 + 1000 + 200000 + 60000000);
}

/* A tunnel with one upstream and no policy, two workers registered. */
static void test_render(void **state)
{
	static struct tunnel t;
	static struct upstream up;
	static struct metrics_worker w1, w2;
	struct metrics_buf b = { 0 };
	char why[128];

	(void)state;
	snprintf(up.spec, sizeof(up.spec), "%s", "fluentd:24224");
	t.ups.v = &up;
	t.ups.n = 1;
	atomic_store(&t.active, 3);
	metrics_register(&w1);
	metrics_register(&w2);
	metrics_add(&w1.opened, 2);
	metrics_add(&w2.opened, 5);
	metrics_add(&w1.bytes[0], 100);
	metrics_add(&w2.bytes[0], 23);
	metrics_pair(&w1.closed, "done", "done");
	metrics_pair(&w2.closed, "truncated", "reset");
	metrics_pair(&w2.closed, "done", "done");
	metrics_pair(&w2.refused, "admit", "net_denied");
	metrics_observe(&w1.handshake[0], 0.002);
	metrics_observe(&w2.handshake[0], 0.003);
	metrics_observe(&w2.connect[0], 0.0001);
	atomic_store(&metrics_proc.reloads[1], 4);

	metrics_render(&b, &t);
	assert_false(b.failed);
	assert_non_null(strstr(b.p, "\ntlsfwd_connections_opened_total 7\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_connections_active 3\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_bytes_total{direction=\"up\"} 123\n"));
	assert_non_null(strstr(b.p,
	    "\ntlsfwd_connections_closed_total{outcome=\"done\",reason=\"done\"} 2\n"));
	assert_non_null(strstr(b.p,
	    "\ntlsfwd_connections_closed_total{outcome=\"truncated\",reason=\"reset\"} 1\n"));
	assert_non_null(strstr(b.p,
	    "\ntlsfwd_connections_refused_total{stage=\"admit\",reason=\"net_denied\"} 1\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_handshake_duration_seconds_bucket"
	    "{type=\"full\",le=\"0.001\"} 0\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_handshake_duration_seconds_bucket"
	    "{type=\"full\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_handshake_duration_seconds_count{type=\"full\"} 2\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_handshake_duration_seconds_sum{type=\"full\"} 0.005000\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_upstream_up{upstream=\"fluentd:24224\"} 1\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_upstream_connect_duration_seconds_bucket"
	    "{upstream=\"fluentd:24224\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_listener_accepting 0\n"));
	assert_non_null(strstr(b.p, "\ntlsfwd_reloads_total{result=\"ok\"} 4\n"));
	assert_null(strstr(b.p, "audit"));	/* the client has none */
	free(b.p);

	/* readiness: listening and an upstream up */
	assert_int_equal(metrics_ready(&t, why, sizeof(why)), 0);
	assert_string_equal(why, "not listening");
	atomic_store(&metrics_proc.listening, 1);
	assert_int_equal(metrics_ready(&t, why, sizeof(why)), 1);
	atomic_store(&up.down, 1);
	assert_int_equal(metrics_ready(&t, why, sizeof(why)), 0);
	assert_string_equal(why, "no server is up");
	atomic_store(&metrics_proc.listening, 0);

	/* a worker gone is no longer summed */
	metrics_unregister(&w2);
	memset(&b, 0, sizeof(b));
	metrics_render(&b, &t);
	assert_non_null(strstr(b.p, "\ntlsfwd_connections_opened_total 2\n"));
	free(b.p);
	metrics_unregister(&w1);
}

static char logged[4096];

static void capture(const char *line, size_t n)
{
	size_t have = strlen(logged);

	if (have + n < sizeof(logged)) {
		memcpy(logged + have, line, n);
		logged[have + n] = '\0';
	}
}

static void test_expiry_lines(void **state)
{
	struct tls_expiry ex[] = {
		{ .kind = "cert", .index = 0, .subject = "/CN=far", .when = 1000000 + 40 * 86400 },
		{ .kind = "cert", .index = 1, .subject = "/CN=ten", .when = 1000000 + 10 * 86400 },
		{ .kind = "ca", .index = 0, .subject = "/CN=three", .when = 1000000 + 3 * 86400 },
		{ .kind = "ca", .index = 1, .subject = "/CN=gone", .when = 1000000 - 86400 },
		{ .kind = "crl", .index = 0, .subject = "/etc/crl.pem", .when = 1000000 + 86400 },
	};
	struct tls_policy p = { .expiry = ex, .nexpiry = 5 };

	(void)state;
	log_setup("test", LOG_INFO, LOG_LOGFMT);
	log_set_output(capture);
	logged[0] = '\0';
	assert_int_equal(metrics_expiry_lines(&p, 1000000), 3);
	assert_null(strstr(logged, "CN=far"));
	assert_null(strstr(logged, "crl.pem"));	/* CRLs: the gauge only */
	assert_non_null(strstr(logged, "level=warn prog=test msg=\"certificate expires within 30 "
	    "days\" kind=cert index=1 subject=\"/CN=ten\" not_after=1970-01-22T13:46:40Z days_left=10.0"));
	assert_non_null(strstr(logged, "level=error prog=test msg=\"certificate expires within 7 "
	    "days\" kind=ca index=0 subject=\"/CN=three\""));
	assert_non_null(strstr(logged, "level=error prog=test msg=\"certificate has expired\" "
	    "kind=ca index=1 subject=\"/CN=gone\""));
	assert_int_equal(metrics_expiry_lines(NULL, 1000000), 0);
	log_set_output(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_printf_grows),
		cmocka_unit_test(test_pairs_overflow),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_expiry_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
