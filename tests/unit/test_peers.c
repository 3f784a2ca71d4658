/* test_peers: the per-address connection counts of shared/peers.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "peers.h"

static struct sock_addr addr(const char *spec)
{
	struct sock_addr a;
	const char *why;

	assert_int_equal(sock_resolve(spec, &a, 1, &why), 1);
	return a;
}

static void test_limit_per_address(void **state)
{
	struct peers *p = peers_new(2, 100);
	struct sock_addr a = addr("10.0.0.1:1000"), a2 = addr("10.0.0.1:2000"), b = addr("10.0.0.2:1000");

	(void)state;
	assert_non_null(p);
	assert_int_equal(peers_acquire(p, &a), 0);
	assert_int_equal(peers_acquire(p, &a2), 0);	/* same address, other port */
	assert_int_equal(peers_acquire(p, &a), -1);	/* third from 10.0.0.1 */
	assert_int_equal(peers_acquire(p, &b), 0);	/* others are not affected */
	peers_release(p, &a);
	assert_int_equal(peers_acquire(p, &a), 0);	/* a slot came free */
	assert_int_equal(peers_acquire(p, &a), -1);
	/* over the limit by what the caller allows more (the server's owed) */
	assert_int_equal(peers_acquire_over(p, &a, 0), -1);
	assert_int_equal(peers_acquire_over(p, &a, 1), 0);
	assert_int_equal(peers_acquire_over(p, &a, 1), -1);
	assert_int_equal(peers_acquire(p, &b), 0);
	assert_int_equal(peers_acquire(p, &b), -1);
	peers_free(p);
}

static void test_v4_and_v6_are_distinct_and_mapped_is_v4(void **state)
{
	struct peers *p = peers_new(1, 10);
	struct sock_addr v4 = addr("127.0.0.1:1"), v6 = addr("[::1]:1"), mapped = addr("[::ffff:127.0.0.1]:1");

	(void)state;
	assert_int_equal(peers_acquire(p, &v4), 0);
	assert_int_equal(peers_acquire(p, &v6), 0);
	assert_int_equal(peers_acquire(p, &mapped), -1);	/* the same address as 127.0.0.1 */
	peers_free(p);
}

static void test_many_addresses_come_and_go(void **state)
{
	struct peers *p = peers_new(1, 500);
	struct sock_addr a[500];
	char spec[64];
	int i, round;

	(void)state;
	for (i = 0; i < 500; i++) {
		snprintf(spec, sizeof(spec), "10.1.%d.%d:5", i / 250, i % 250 + 1);
		a[i] = addr(spec);
	}
	/* Releases leave tombstones; the table must keep finding and reusing. */
	for (round = 0; round < 20; round++) {
		for (i = 0; i < 500; i++)
			assert_int_equal(peers_acquire(p, &a[i]), 0);
		for (i = 0; i < 500; i++)
			assert_int_equal(peers_acquire(p, &a[i]), -1);
		for (i = 0; i < 500; i++)
			peers_release(p, &a[i]);
	}
	peers_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_per_address),
		cmocka_unit_test(test_v4_and_v6_are_distinct_and_mapped_is_v4),
		cmocka_unit_test(test_many_addresses_come_and_go),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
