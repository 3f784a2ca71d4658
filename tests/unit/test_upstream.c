/* test_upstream: the upstreams' try order and their shared session slot
 * (shared/upstream.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "upstream.h"

/* pool(p, n, weights, standby): n resolved-free upstreams, all up. */
static void pool(struct upstreams *p, int n, const int *weight, const int *standby)
{
	int i;

	assert_int_equal(upstreams_init(p, n, 5.), 0);
	for (i = 0; i < n; i++) {
		p->v[i].naddr = 1;
		p->v[i].weight = weight != NULL ? weight[i] : 1;
		p->v[i].standby = standby != NULL ? standby[i] : 0;
		pthread_mutex_init(&p->v[i].lock, NULL);
	}
	p->n = n;
}

static void test_try_order(void **state)
{
	struct upstreams p;
	int want[][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 2, 0 }, { 2, 1 }, { 2, 2 } };
	struct upstream_pos pos = { 0 };
	int i;

	(void)state;
	pool(&p, 3, NULL, NULL);
	p.v[0].naddr = 2;
	p.v[2].naddr = 3;
	upstream_start(&p, &pos, upstream_pick(&p, 0));	/* equal weights: in turn */
	assert_int_equal(pos.up, 0);
	assert_int_equal(pos.addr, 0);
	for (i = 1; i < 6; i++) {
		assert_int_equal(upstream_next(&p, &pos), 0);
		assert_int_equal(pos.up, want[i][0]);
		assert_int_equal(pos.addr, want[i][1]);
	}
	assert_int_equal(upstream_next(&p, &pos), -1);	/* the last stays */
	assert_int_equal(pos.up, 2);
	assert_int_equal(pos.addr, 2);
	assert_true(pos.tried == 3);

	/* The next connection to 0 starts at its other address, and still
	 * tries both. */
	upstream_start(&p, &pos, 0);
	assert_int_equal(pos.addr, 1);
	pos.tried = 6;
	assert_int_equal(upstream_next(&p, &pos), 0);
	assert_int_equal(pos.addr, 0);
	assert_int_equal(upstream_next(&p, &pos), -1);

	/* An address that failed is nobody's first try for a while. */
	p.v[2].next_addr = 0;
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 0);
	upstream_addr_failed(&p, &pos);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 1);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 2);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 1);		/* 0 skipped */
	assert_int_equal(pos.left, 2);		/* yet still tried last */
	pos.addr = 0;
	upstream_addr_ok(&p, &pos);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 1);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 2);
	upstream_start(&p, &pos, 2);
	assert_int_equal(pos.addr, 0);		/* in turn again */
	upstreams_free(&p);
}

static void test_addrs(void **state)
{
	struct upstream u;
	struct sock_addr a[3], got;
	const char *why;
	char err[128];

	(void)state;
	assert_int_equal(upstream_init(&u, "127.0.0.1:1", NULL, err, sizeof(err)), 0);
	assert_int_equal(sock_resolve("127.0.0.2:1", &a[0], 1, &why), 1);
	assert_int_equal(sock_resolve("[::1]:1", &a[1], 1, &why), 1);
	assert_int_equal(sock_resolve("127.0.0.1:1", &a[2], 1, &why), 1);
	assert_int_equal(upstream_set_addrs(&u, &a[2], 1), 0);	/* the same */
	assert_int_equal(upstream_set_addrs(&u, a, 2), 1);
	assert_int_equal(u.naddr, 2);
	assert_int_equal(upstream_set_addrs(&u, (struct sock_addr[]){ a[1], a[0] }, 2), 0);
	assert_int_equal(upstream_addr(&u, 1, &got), 0);
	assert_memory_equal(&got.ss, &a[1].ss, a[1].len);	/* order kept */
	assert_int_equal(upstream_addr(&u, 2, &got), -1);
	upstream_free(&u);
}

static void test_weights(void **state)
{
	struct upstreams p;
	int weight[] = { 60, 40, 1 }, standby[] = { 0, 0, 1 }, got[3] = { 0 }, i, last = -1;
	int runs = 0;

	(void)state;
	pool(&p, 3, weight, standby);
	for (i = 0; i < 1000; i++) {
		int k = upstream_pick(&p, 0);

		assert_true(k == 0 || k == 1);
		got[k]++;
		runs += k == last;	/* smooth: never three of one in a row */
		last = k;
	}
	assert_int_equal(got[0], 600);
	assert_int_equal(got[1], 400);
	assert_int_equal(got[2], 0);
	assert_true(runs < 500);
	upstreams_free(&p);
}

static void test_standby_and_health(void **state)
{
	struct upstreams p;
	struct upstream_pos before = { 0 }, after = { 0 };
	int standby[] = { 0, 0, 1 }, me, i;
	double next;

	(void)state;
	pool(&p, 3, NULL, standby);
	upstream_start(&p, &before, 0);
	assert_int_equal(upstream_failed(&p, 0, &me), 1);
	assert_int_equal(upstream_failed(&p, 0, &me), 0);	/* once */
	/* a connection that started before the mark is told apart from one after */
	upstream_start(&p, &after, 0);
	assert_int_not_equal(before.downs, atomic_load(&p.v[0].downs));
	assert_int_equal(after.downs, atomic_load(&p.v[0].downs));
	for (i = 0; i < 4; i++)
		assert_int_equal(upstream_pick(&p, 0), 1);
	assert_int_equal(upstream_pick(&p, 2), 2);	/* 1 tried: the standby */
	assert_int_equal(upstream_failed(&p, 1, &me), 1);
	assert_int_equal(upstream_pick(&p, 0), 2);
	assert_true(upstreams_up(&p));
	assert_int_equal(upstream_failed(&p, 2, NULL), 1);
	assert_false(upstreams_up(&p));
	assert_int_equal(upstream_pick(&p, 0), 0);	/* none up: each in order */
	assert_int_equal(upstream_pick(&p, 1), 1);
	assert_int_equal(upstream_pick(&p, 7), -1);

	/* Probes: due 0.1 s after the failure, then backing off to 5 s. */
	assert_int_equal(upstream_due(&p, &me, 100., &next), -1);
	assert_true(next > 100.09 && next < 100.11);
	assert_int_equal(upstream_due(&p, &me, 100.1, &next), 0);
	assert_int_equal(upstream_due(&p, &me, 100.1, &next), 1);
	assert_int_equal(upstream_due(&p, &me, 100.1, &next), -1);	/* under way */
	assert_true(next == 0.);
	upstream_probe_failed(&p, 0, 101.);
	assert_int_equal(upstream_due(&p, &me, 101., &next), -1);
	assert_true(next > 101.19 && next < 101.21);
	for (i = 0; i < 10; i++) {
		upstream_probe_failed(&p, 0, 200.);
		(void)upstream_due(&p, &me, 200., &next);
	}
	assert_true(next == 205.);		/* bounded by the health interval */
	upstream_probe_now(&p, &me);
	assert_int_equal(upstream_due(&p, &me, 200., &next), 0);
	assert_int_equal(upstream_ok(&p, 0), 1);
	assert_int_equal(upstream_ok(&p, 0), 0);
	assert_true(upstreams_up(&p));
	assert_int_equal(upstream_pick(&p, 0), 0);
	upstreams_free(&p);
}

static void test_parse(void **state)
{
	char spec[300], why[128];
	int weight, standby;

	(void)state;
	assert_int_equal(upstream_parse("agg:24284", spec, sizeof(spec), &weight, &standby, why,
	    sizeof(why)), 0);
	assert_string_equal(spec, "agg:24284");
	assert_int_equal(weight, 1);
	assert_int_equal(standby, 0);
	assert_int_equal(upstream_parse("[::1]:1,weight=60,standby", spec, sizeof(spec), &weight,
	    &standby, why, sizeof(why)), 0);
	assert_string_equal(spec, "[::1]:1");
	assert_int_equal(weight, 60);
	assert_int_equal(standby, 1);
	assert_int_equal(upstream_parse("a:1,weight=0", spec, sizeof(spec), &weight, &standby, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "weight"));
	assert_int_equal(upstream_parse("a:1,weight=1001", spec, sizeof(spec), &weight, &standby,
	    why, sizeof(why)), -1);
	assert_int_equal(upstream_parse("a:1,weight=6x", spec, sizeof(spec), &weight, &standby,
	    why, sizeof(why)), -1);
	assert_int_equal(upstream_parse("a:1,backup", spec, sizeof(spec), &weight, &standby, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "backup"));
	assert_int_equal(upstream_parse("a,weight=2", spec, sizeof(spec), &weight, &standby, why,
	    sizeof(why)), -1);
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
	assert_int_equal(upstream_init(&u, "127.0.0.1:24284,weight=7,standby", NULL, err,
	    sizeof(err)), 0);
	assert_string_equal(u.spec, "127.0.0.1:24284");
	assert_int_equal(u.weight, 7);
	assert_int_equal(u.standby, 1);
	upstream_free(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_try_order),
		cmocka_unit_test(test_addrs),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_standby_and_health),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
