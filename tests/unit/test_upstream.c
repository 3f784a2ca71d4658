/* test_upstream: the upstreams' try order and their shared session slot
 * (shared/upstream.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "upstream.h"

static void test_try_order(void **state)
{
	struct upstream v[3];
	int want[][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 2, 0 }, { 2, 1 }, { 2, 2 } };
	int up = 0, addr = 0, i;

	(void)state;
	memset(v, 0, sizeof(v));
	v[0].naddr = 2;
	v[1].naddr = 1;
	v[2].naddr = 3;
	for (i = 1; i < 6; i++) {
		assert_int_equal(upstream_next(v, 3, &up, &addr), 0);
		assert_int_equal(up, want[i][0]);
		assert_int_equal(addr, want[i][1]);
	}
	assert_int_equal(upstream_next(v, 3, &up, &addr), -1);	/* the last stays */
	assert_int_equal(up, 2);
	assert_int_equal(addr, 2);
	up = addr = 0;
	assert_int_equal(upstream_next(v, 1, &up, &addr), 0);
	assert_int_equal(upstream_next(v, 1, &up, &addr), -1);
}

static void test_init(void **state)
{
	struct upstream u;
	char err[256];

	(void)state;
	assert_int_equal(upstream_init(&u, "127.0.0.1:24284", NULL, err, sizeof(err)), 0);
	assert_int_equal(u.naddr, 1);
	assert_true(u.name_is_ip);
	assert_string_equal(u.spec, "127.0.0.1:24284");
	assert_null(u.session);
	upstream_free(&u);
	assert_int_equal(upstream_init(&u, "127.0.0.1:24284", "agg.example", err, sizeof(err)), 0);
	assert_false(u.name_is_ip);
	assert_string_equal(u.name, "agg.example");
	upstream_free(&u);
	assert_int_equal(upstream_init(&u, "no-port", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no-port"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_try_order),
		cmocka_unit_test(test_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
