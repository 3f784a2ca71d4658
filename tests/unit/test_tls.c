/* test_tls: the pure helpers of shared/tls_check.c (tls_ip_name). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tls.h"

static void test_ip_name_v4_unchanged(void **state)
{
	char buf[64];

	(void)state;
	assert_non_null(tls_ip_name("127.0.0.1", buf, sizeof(buf)));
	assert_string_equal(buf, "127.0.0.1");
	assert_non_null(tls_ip_name("10.0.0.5", buf, sizeof(buf)));
	assert_string_equal(buf, "10.0.0.5");
}

static void test_ip_name_v6_expanded_upper(void **state)
{
	char buf[64];

	(void)state;
	assert_non_null(tls_ip_name("::1", buf, sizeof(buf)));
	assert_string_equal(buf, "0000:0000:0000:0000:0000:0000:0000:0001");
	assert_non_null(tls_ip_name("fd00:ab::c:1", buf, sizeof(buf)));
	assert_string_equal(buf, "FD00:00AB:0000:0000:0000:0000:000C:0001");
}

static void test_ip_name_rejects_names_and_small_buffers(void **state)
{
	char buf[64];

	(void)state;
	assert_null(tls_ip_name("localhost", buf, sizeof(buf)));
	assert_null(tls_ip_name("agg.example.com", buf, sizeof(buf)));
	assert_null(tls_ip_name("1.2.3", buf, sizeof(buf)));
	assert_null(tls_ip_name("::1", buf, 39));	/* needs 40 with the NUL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_name_v4_unchanged),
		cmocka_unit_test(test_ip_name_v6_expanded_upper),
		cmocka_unit_test(test_ip_name_rejects_names_and_small_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
