/* test_ring: the byte ring of shared/ring.{h,c} -- lazy allocation, the full
 * signal, wrap-around, freeing on drain, and byte order under a random mix of
 * reads and writes checked against a model stream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ring.h"

/* The k-th byte of the test stream; not periodic at 256, so a byte read from
 * the wrong offset shows up. */
static unsigned char stream_byte(size_t k)
{
	return (unsigned char)(k ^ (k >> 8) ^ (k >> 16) ^ 0x5a);
}

/* put(r, seq, want): write up to want stream bytes; returns how many went in. */
static size_t put(struct ring *r, size_t *seq, size_t want)
{
	size_t done = 0, n, i;
	unsigned char *p;

	while (done < want && (p = ring_wspace(r, &n)) != NULL) {
		assert_true(n > 0);
		if (n > want - done)
			n = want - done;
		for (i = 0; i < n; i++)
			p[i] = stream_byte((*seq)++);
		ring_commit(r, n);
		done += n;
	}
	return done;
}

/* take(r, seq, want): read and check up to want bytes; returns how many. */
static size_t take(struct ring *r, size_t *seq, size_t want)
{
	size_t done = 0, n, i;
	const unsigned char *p;

	while (done < want && ring_len(r) > 0) {
		p = ring_rdata(r, &n);
		assert_non_null(p);
		assert_true(n > 0);
		if (n > want - done)
			n = want - done;
		for (i = 0; i < n; i++)
			assert_int_equal(p[i], stream_byte((*seq)++));
		ring_consume(r, n);
		done += n;
	}
	return done;
}

static void test_empty_ring_holds_no_memory(void **state)
{
	struct ring r = { 0 };
	size_t n = 99;

	(void)state;
	assert_int_equal(ring_len(&r), 0);
	assert_false(ring_full(&r));
	ring_rdata(&r, &n);
	assert_int_equal(n, 0);
	ring_trim(&r);
	assert_null(r.buf);
	ring_free(&r);
	assert_null(r.buf);
	assert_int_equal(r.len, 0);
}

static void test_first_wspace_allocates_whole_ring(void **state)
{
	struct ring r = { 0 };
	const unsigned char *rd;
	unsigned char *p;
	size_t n = 0;

	(void)state;
	p = ring_wspace(&r, &n);
	assert_non_null(p);
	assert_non_null(r.buf);
	assert_ptr_equal(p, r.buf);
	assert_int_equal(n, RING_SIZE);
	memcpy(p, "hello", 5);
	ring_commit(&r, 5);
	assert_int_equal(ring_len(&r), 5);

	rd = ring_rdata(&r, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(rd, "hello", 5);

	/* The next write space starts right after the committed bytes. */
	p = ring_wspace(&r, &n);
	assert_ptr_equal(p, r.buf + 5);
	assert_int_equal(n, RING_SIZE - 5);
	ring_free(&r);
	assert_null(r.buf);
	assert_int_equal(ring_len(&r), 0);
}

static void test_wspace_without_commit_is_trimmed(void **state)
{
	struct ring r = { 0 };
	size_t n;

	(void)state;
	assert_non_null(ring_wspace(&r, &n));
	assert_non_null(r.buf);
	/* A read of 0 bytes (EAGAIN) commits nothing; trim gives the memory back. */
	ring_commit(&r, 0);
	ring_trim(&r);
	assert_null(r.buf);
	assert_int_equal(ring_len(&r), 0);
}

static void test_trim_keeps_unread_bytes(void **state)
{
	struct ring r = { 0 };
	size_t wseq = 0, rseq = 0;

	(void)state;
	assert_int_equal(put(&r, &wseq, 100), 100);
	ring_trim(&r);
	assert_non_null(r.buf);
	assert_int_equal(ring_len(&r), 100);
	assert_int_equal(take(&r, &rseq, 100), 100);
	ring_free(&r);
}

static void test_full_ring_refuses_writes(void **state)
{
	struct ring r = { 0 };
	size_t wseq = 0, rseq = 0, n = 1;

	(void)state;
	assert_int_equal(put(&r, &wseq, RING_SIZE + 100), RING_SIZE);
	assert_true(ring_full(&r));
	assert_int_equal(ring_len(&r), RING_SIZE);
	assert_null(ring_wspace(&r, &n));
	assert_int_equal(n, 0);

	/* One byte out makes room for exactly one byte in. */
	assert_int_equal(take(&r, &rseq, 1), 1);
	assert_false(ring_full(&r));
	assert_int_equal(put(&r, &wseq, 10), 1);
	assert_true(ring_full(&r));
	assert_int_equal(take(&r, &rseq, RING_SIZE), RING_SIZE);
	assert_int_equal(rseq, wseq);
	assert_null(r.buf);
	ring_free(&r);
}

static void test_wrap_around(void **state)
{
	struct ring r = { 0 };
	const unsigned char *rd;
	unsigned char *p;
	size_t wseq = 0, rseq = 0, n;

	(void)state;
	assert_int_equal(put(&r, &wseq, RING_SIZE), RING_SIZE);
	assert_int_equal(take(&r, &rseq, 1000), 1000);

	/* The free space is now the 1000 bytes at the start of the buffer. */
	p = ring_wspace(&r, &n);
	assert_ptr_equal(p, r.buf);
	assert_int_equal(n, 1000);
	assert_int_equal(put(&r, &wseq, 1000), 1000);
	assert_true(ring_full(&r));

	/* The data is split: first the tail of the buffer, then its head. */
	rd = ring_rdata(&r, &n);
	assert_ptr_equal(rd, r.buf + 1000);
	assert_int_equal(n, RING_SIZE - 1000);
	assert_int_equal(take(&r, &rseq, RING_SIZE - 1000), RING_SIZE - 1000);
	rd = ring_rdata(&r, &n);
	assert_ptr_equal(rd, r.buf);
	assert_int_equal(n, 1000);
	assert_int_equal(take(&r, &rseq, 1000), 1000);

	assert_int_equal(ring_len(&r), 0);
	assert_null(r.buf);
	ring_free(&r);
}

static void test_write_space_stops_at_buffer_end(void **state)
{
	struct ring r = { 0 };
	unsigned char *p;
	size_t wseq = 0, rseq = 0, n;

	(void)state;
	assert_int_equal(put(&r, &wseq, 3000), 3000);
	assert_int_equal(take(&r, &rseq, 2000), 2000);
	/* rd = 2000, len = 1000: the contiguous space runs to the end only. */
	p = ring_wspace(&r, &n);
	assert_ptr_equal(p, r.buf + 3000);
	assert_int_equal(n, RING_SIZE - 3000);
	assert_int_equal(put(&r, &wseq, RING_SIZE - 3000), RING_SIZE - 3000);
	/* ... and then wraps to the gap before rd. */
	p = ring_wspace(&r, &n);
	assert_ptr_equal(p, r.buf);
	assert_int_equal(n, 2000);
	assert_int_equal(take(&r, &rseq, RING_SIZE), RING_SIZE - 2000);
	assert_null(r.buf);
	ring_free(&r);
}

static void test_drain_frees_and_restarts_at_zero(void **state)
{
	struct ring r = { 0 };
	unsigned char *p;
	size_t wseq = 0, rseq = 0, n;

	(void)state;
	assert_int_equal(put(&r, &wseq, 5000), 5000);
	assert_int_equal(take(&r, &rseq, 5000), 5000);
	assert_null(r.buf);
	assert_int_equal(r.rd, 0);
	p = ring_wspace(&r, &n);
	assert_ptr_equal(p, r.buf);
	assert_int_equal(n, RING_SIZE);
	ring_free(&r);
}

static void test_free_discards_contents(void **state)
{
	struct ring r = { 0 };
	size_t wseq = 0, rseq = 0, n;

	(void)state;
	assert_int_equal(put(&r, &wseq, 12345), 12345);
	assert_int_equal(take(&r, &rseq, 345), 345);
	ring_free(&r);
	assert_null(r.buf);
	assert_int_equal(ring_len(&r), 0);
	assert_int_equal(r.rd, 0);
	ring_rdata(&r, &n);
	assert_int_equal(n, 0);
	/* The ring is usable again. */
	assert_non_null(ring_wspace(&r, &n));
	assert_int_equal(n, RING_SIZE);
	ring_free(&r);
	ring_free(&r);	/* twice is harmless */
	assert_null(r.buf);
}

/* A random mix of partial writes and reads against the model stream. */
static void test_random_traffic_keeps_order(void **state)
{
	struct ring r = { 0 };
	size_t wseq = 0, rseq = 0, n;
	uint32_t x = 2463534242u;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		size_t want, before = ring_len(&r);

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		want = (x >> 8) % (RING_SIZE / 3) + 1;
		if (x & 1) {
			size_t got = put(&r, &wseq, want);

			assert_int_equal(got, want < RING_SIZE - before ? want : RING_SIZE - before);
		} else {
			size_t got = take(&r, &rseq, want);

			assert_int_equal(got, want < before ? want : before);
		}
		assert_int_equal(ring_len(&r), wseq - rseq);
		assert_int_equal(ring_full(&r), ring_len(&r) == RING_SIZE);
		assert_true(ring_len(&r) <= RING_SIZE);
		if (ring_len(&r) == 0)
			assert_null(r.buf);
		ring_rdata(&r, &n);
		assert_true(n <= ring_len(&r));
		assert_true(ring_len(&r) == 0 || n > 0);
	}
	take(&r, &rseq, RING_SIZE);
	assert_int_equal(rseq, wseq);
	assert_true(wseq > 10 * (size_t)RING_SIZE);
	ring_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_ring_holds_no_memory),
		cmocka_unit_test(test_first_wspace_allocates_whole_ring),
		cmocka_unit_test(test_wspace_without_commit_is_trimmed),
		cmocka_unit_test(test_trim_keeps_unread_bytes),
		cmocka_unit_test(test_full_ring_refuses_writes),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_write_space_stops_at_buffer_end),
		cmocka_unit_test(test_drain_frees_and_restarts_at_zero),
		cmocka_unit_test(test_free_discards_contents),
		cmocka_unit_test(test_random_traffic_keeps_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
