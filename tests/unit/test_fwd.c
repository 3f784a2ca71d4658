/* test_fwd: the server's forward-protocol reader (server/fwd*.c) as a filter
 * stage, driven through rings as the pump drives it: every request mode, the
 * same output whatever the input's split, pieces of a large PackedForward,
 * the stamp and the tag prefix, PING passed through, and every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <msgpack.h>

#include "filter.h"
#include "fwd.h"
#include "ring.h"
#include "sock.h"
#include "tagacl.h"
#include "x509_identity.h"

/* Every request mode: 14 events, 7 chunks (made with msgpack-python,
 * gzip and zstandard). */
static const unsigned char every_mode[] = {
	0xc0, 0x94, 0xa7, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00,
	0x00, 0x00, 0x00, 0x7b, 0x81, 0xa1, 0x6e, 0x00, 0x81, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa9,
	0x63, 0x2d, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x93, 0xab, 0x6d, 0x65, 0x73, 0x73, 0x61,
	0x67, 0x65, 0x2e, 0x69, 0x6e, 0x74, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81, 0xa1, 0x6e, 0x00, 0x93,
	0xa7, 0x66, 0x6f, 0x72, 0x77, 0x61, 0x72, 0x64, 0x92, 0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x81,
	0xa1, 0x6e, 0x01, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x81, 0xa1,
	0x6e, 0x02, 0x81, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa9, 0x63, 0x2d, 0x66, 0x6f, 0x72, 0x77,
	0x61, 0x72, 0x64, 0x93, 0xa6, 0x70, 0x61, 0x63, 0x6b, 0x65, 0x64, 0xc4, 0x19, 0x92, 0xce, 0x65,
	0x53, 0xf1, 0x00, 0x81, 0xa1, 0x6e, 0x01, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00,
	0x00, 0x7b, 0x81, 0xa1, 0x6e, 0x02, 0x82, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa8, 0x63, 0x2d,
	0x70, 0x61, 0x63, 0x6b, 0x65, 0x64, 0xa4, 0x73, 0x69, 0x7a, 0x65, 0x02, 0x92, 0xaa, 0x70, 0x61,
	0x63, 0x6b, 0x65, 0x64, 0x2e, 0x73, 0x74, 0x72, 0xdb, 0x00, 0x00, 0x00, 0x19, 0x92, 0xce, 0x65,
	0x53, 0xf1, 0x00, 0x81, 0xa1, 0x6e, 0x01, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00,
	0x00, 0x7b, 0x81, 0xa1, 0x6e, 0x02, 0x93, 0xa4, 0x67, 0x7a, 0x69, 0x70, 0xc4, 0x40, 0x1f, 0x8b,
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x9b, 0x74, 0x2e, 0x35, 0xf8, 0x23, 0x03, 0x00,
	0x75, 0x07, 0xec, 0xd8, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x03, 0x6b, 0x5c, 0x98, 0xc7, 0x38, 0xe9, 0x3a, 0x43, 0x6a, 0xf0, 0x47, 0x06, 0x20, 0xa8,
	0x6e, 0x5c, 0x98, 0xc7, 0x04, 0x00, 0xac, 0x40, 0xf5, 0xcc, 0x13, 0x00, 0x00, 0x00, 0x83, 0xa5,
	0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa6, 0x63, 0x2d, 0x67, 0x7a, 0x69, 0x70, 0xaa, 0x63, 0x6f, 0x6d,
	0x70, 0x72, 0x65, 0x73, 0x73, 0x65, 0x64, 0xa4, 0x67, 0x7a, 0x69, 0x70, 0xa4, 0x73, 0x69, 0x7a,
	0x65, 0x02, 0x93, 0xa4, 0x7a, 0x73, 0x74, 0x64, 0xc4, 0x2b, 0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x06,
	0x31, 0x00, 0x00, 0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x13, 0x99,
	0x00, 0x00, 0x81, 0xa1, 0x6e, 0x01, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00, 0x00,
	0x7b, 0x81, 0xa1, 0x6e, 0x02, 0x83, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa6, 0x63, 0x2d, 0x7a,
	0x73, 0x74, 0x64, 0xaa, 0x63, 0x6f, 0x6d, 0x70, 0x72, 0x65, 0x73, 0x73, 0x65, 0x64, 0xa4, 0x7a,
	0x73, 0x74, 0x64, 0xa4, 0x73, 0x69, 0x7a, 0x65, 0x02, 0x94, 0xa5, 0x6d, 0x61, 0x70, 0x33, 0x32,
	0x01, 0x81, 0xa1, 0x6e, 0x03, 0xdf, 0x00, 0x00, 0x00, 0x01, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b,
	0xa7, 0x63, 0x2d, 0x6d, 0x61, 0x70, 0x33, 0x32, 0x93, 0xa5, 0x66, 0x77, 0x64, 0x33, 0x32, 0xdd,
	0x00, 0x00, 0x00, 0x01, 0x92, 0xd7, 0x00, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x81,
	0xa1, 0x6e, 0x04, 0xdf, 0x00, 0x00, 0x00, 0x01, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0xa7, 0x63,
	0x2d, 0x66, 0x77, 0x64, 0x33, 0x32,
};

static const unsigned char ping[] = {
	0x96, 0xa4, 0x50, 0x49, 0x4e, 0x47, 0xa4, 0x65, 0x64, 0x67, 0x65, 0xc4, 0x10, 0x73, 0x73, 0x73,
	0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0x73, 0xd9, 0x80, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61,
	0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0x61, 0x62, 0xa0,
	0xa0,
};


struct buf {
	unsigned char *p;
	size_t n, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

/*-
 * pass(f, in, n, step, out, outmax): feed n bytes to f, at most step at a
 * time (a split point every step bytes), the end of the stream after the
 * last; what f writes is taken from its ring at most outmax bytes per run
 * (0: all) and appended to out.  Returns FILTER_ERROR, or FILTER_IDLE when
 * everything went through.
 */
static int pass(struct filter *f, const unsigned char *in, size_t n, size_t step, struct buf *out,
    size_t outmax)
{
	struct ring rin = { 0 };
	size_t fed = 0, idle = 0;
	int rc;

	for (;;) {
		size_t want = n - fed < step ? n - fed : step, got;
		unsigned char *p;

		while (want > 0 && (p = ring_wspace(&rin, &got)) != NULL) {
			if (got > want)
				got = want;
			memcpy(p, in + fed, got);
			ring_commit(&rin, got);
			fed += got;
			want -= got;
		}
		rc = f->ops->run(f, &rin, &f->out, fed == n);
		if (rc == FILTER_ERROR)
			break;
		for (size_t taken = 0; ring_len(&f->out) > 0 && (outmax == 0 || taken < outmax);) {
			const unsigned char *q = ring_rdata(&f->out, &got);

			if (outmax != 0 && got > outmax - taken)
				got = outmax - taken;
			buf_add(out, q, got);
			ring_consume(&f->out, got);
			taken += got;
		}
		if (fed == n && ring_len(&rin) == 0 && ring_len(&f->out) == 0 && rc == FILTER_IDLE)
			break;
		idle = rc == FILTER_IDLE && ring_len(&rin) == RING_SIZE ? idle + 1 : 0;
		assert_true(idle < 3);	/* a full input ring must be taken */
	}
	ring_free(&rin);
	return rc;
}

static const char *const cns[] = { "edge-01" };
static const char *const dnss[] = { "edge-01.example.com" };
static const struct x509_identity edge = {
	.subject = "/CN=edge-01", .issuer = "/CN=test CA", .serial = "0a1b",
	.not_after = 1800000000, .cn = cns, .n_cn = 1, .dns = dnss, .n_dns = 1,
};

/* stamped(prefix): a reader stamping "tls" and "ip", with prefix. */
static struct filter *stamped(const char *prefix, unsigned long long max)
{
	struct fwd_opts o = { "tls", NULL, "ip", prefix };
	struct sock_addr peer = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer.ss;
	struct filter *f = fwd_new(max);
	struct fwd_stamp *s;
	const char *why;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(4242);
	sin->sin_addr.s_addr = htonl(0x7f000001);
	assert_non_null(f);
	assert_int_equal(fwd_stamp_new(&o, &edge, "cn:edge-01", &peer, &s, &why), 0);
	fwd_need_stamp(f);
	fwd_set_stamp(f, s);
	return f;
}

/* Counts of what a reader wrote, read back with msgpack-c. */
struct seen {
	int requests, nils, events, stamped, chunks, max_piece;
	char last_tag[64];
};

static void seen_event(struct seen *s, const msgpack_object *rec)
{
	uint32_t i;

	s->events++;
	if (rec->type != MSGPACK_OBJECT_MAP)
		return;
	for (i = 0; i < rec->via.map.size; i++) {
		const msgpack_object *k = &rec->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3 &&
		    memcmp(k->via.str.ptr, "tls", 3) == 0 &&
		    rec->via.map.ptr[i].val.type == MSGPACK_OBJECT_MAP)
			s->stamped++;
	}
}

/* decode(out, s): every request of out, which must parse completely. */
static void decode(const struct buf *out, struct seen *s)
{
	msgpack_unpacked r, e;
	size_t off = 0, eoff;
	uint32_t i;

	memset(s, 0, sizeof(*s));
	msgpack_unpacked_init(&r);
	msgpack_unpacked_init(&e);
	while (off < out->n) {
		size_t start = off;
		const msgpack_object *a, *opt = NULL;

		assert_int_equal(msgpack_unpack_next(&r, (const char *)out->p, out->n, &off),
		    MSGPACK_UNPACK_SUCCESS);
		s->requests++;
		if (r.data.type == MSGPACK_OBJECT_NIL) {
			s->nils++;
			continue;
		}
		assert_int_equal(r.data.type, MSGPACK_OBJECT_ARRAY);
		a = r.data.via.array.ptr;
		assert_int_equal(a[0].type, MSGPACK_OBJECT_STR);
		snprintf(s->last_tag, sizeof(s->last_tag), "%.*s", (int)a[0].via.str.size,
		    a[0].via.str.ptr);
		if (a[1].type == MSGPACK_OBJECT_BIN) {
			eoff = 0;
			while (eoff < a[1].via.bin.size) {
				assert_int_equal(msgpack_unpack_next(&e, a[1].via.bin.ptr,
				    a[1].via.bin.size, &eoff), MSGPACK_UNPACK_SUCCESS);
				seen_event(s, &e.data.via.array.ptr[1]);
			}
			opt = &a[2];
			if ((int)(off - start) > s->max_piece)
				s->max_piece = (int)(off - start);
		} else if (a[1].type == MSGPACK_OBJECT_ARRAY) {
			for (i = 0; i < a[1].via.array.size; i++)
				seen_event(s, &a[1].via.array.ptr[i].via.array.ptr[1]);
			opt = &a[2];
		} else {
			seen_event(s, &a[2]);
			if (r.data.via.array.size == 4)
				opt = &a[3];
		}
		if (opt != NULL && opt->type == MSGPACK_OBJECT_MAP)
			for (i = 0; i < opt->via.map.size; i++) {
				const msgpack_object *k = &opt->via.map.ptr[i].key;

				assert_false(k->via.str.size == 10 &&
				    memcmp(k->via.str.ptr, "compressed", 10) == 0);
				s->chunks += k->via.str.size == 5 && memcmp(k->via.str.ptr, "chunk", 5) == 0;
			}
	}
	msgpack_unpacked_destroy(&r);
	msgpack_unpacked_destroy(&e);
}

static void test_every_mode(void **state)
{
	struct filter *f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
	struct buf out = { 0 };
	struct seen s;

	(void)state;
	assert_int_equal(pass(f, every_mode, sizeof(every_mode), 65536, &out, 0), FILTER_IDLE);
	decode(&out, &s);
	assert_int_equal(s.nils, 1);
	assert_int_equal(s.events, 14);
	assert_int_equal(s.stamped, 14);
	assert_int_equal(s.chunks, 7);
	assert_string_equal(s.last_tag, "edge.edge-01.fwd32");
	filter_free(f);
	free(out.p);
}

/* The output is the same whatever the input's split and however slowly the
 * output is taken. */
static void test_every_split(void **state)
{
	struct buf whole = { 0 };
	struct filter *f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
	size_t step;

	(void)state;
	assert_int_equal(pass(f, every_mode, sizeof(every_mode), 65536, &whole, 0), FILTER_IDLE);
	filter_free(f);
	for (step = 1; step <= sizeof(every_mode); step++) {
		struct buf out = { 0 };

		f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
		assert_int_equal(pass(f, every_mode, sizeof(every_mode), step, &out, step % 7 + 1),
		    FILTER_IDLE);
		assert_int_equal(out.n, whole.n);
		assert_memory_equal(out.p, whole.p, whole.n);
		filter_free(f);
		free(out.p);
	}
	/* And split once at every byte. */
	for (step = 1; step < sizeof(every_mode); step++) {
		struct buf out = { 0 };
		struct ring rin = { 0 };
		unsigned char *p;
		size_t n;

		f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
		p = ring_wspace(&rin, &n);
		memcpy(p, every_mode, step);
		ring_commit(&rin, step);
		assert_int_not_equal(f->ops->run(f, &rin, &f->out, 0), FILTER_ERROR);
		while (ring_len(&f->out) > 0) {
			const unsigned char *q = ring_rdata(&f->out, &n);

			buf_add(&out, q, n);
			ring_consume(&f->out, n);
		}
		assert_int_equal(pass(f, every_mode + step, sizeof(every_mode) - step, 65536, &out, 0),
		    FILTER_IDLE);
		assert_int_equal(out.n, whole.n);
		assert_memory_equal(out.p, whole.p, whole.n);
		ring_free(&rin);
		filter_free(f);
		free(out.p);
	}
	free(whole.p);
}

/* big(n, gz, &len): a PackedForward of n events (gzip'd with gz), with chunk. */
static unsigned char *big(int n, int gz, size_t *len)
{
	msgpack_sbuffer ev, req;
	msgpack_packer pk;
	int i;

	msgpack_sbuffer_init(&ev);
	msgpack_sbuffer_init(&req);
	msgpack_packer_init(&pk, &ev, msgpack_sbuffer_write);
	for (i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 2);
		msgpack_pack_int(&pk, 1700000000 + i);
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str_with_body(&pk, "n", 1);
		msgpack_pack_int(&pk, i);
		msgpack_pack_str_with_body(&pk, "pad", 3);
		msgpack_pack_str_with_body(&pk, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxx", 85);
	}
	if (gz) {
		z_stream z = { 0 };
		uLong cap = compressBound(ev.size) + 64;
		unsigned char *c = malloc(cap);

		assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
		    Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (unsigned char *)ev.data;
		z.avail_in = (uInt)ev.size;
		z.next_out = c;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		free(ev.data);
		ev.data = (char *)c;
		ev.size = z.total_out;
		deflateEnd(&z);
	}
	msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, "big", 3);
	msgpack_pack_bin_with_body(&pk, ev.data, ev.size);
	msgpack_pack_map(&pk, gz ? 2 : 1);
	msgpack_pack_str_with_body(&pk, "chunk", 5);
	msgpack_pack_str_with_body(&pk, "c1", 2);
	if (gz) {
		msgpack_pack_str_with_body(&pk, "compressed", 10);
		msgpack_pack_str_with_body(&pk, "gzip", 4);
	}
	free(ev.data);
	*len = req.size;
	return (unsigned char *)req.data;
}

/* An 8 MiB PackedForward leaves in pieces of at most 64 KiB (plus the
 * array, tag and option around them), the chunk only on the last. */
static void test_big_packed_in_pieces(void **state)
{
	int gz;

	(void)state;
	for (gz = 0; gz < 2; gz++) {
		size_t len;
		unsigned char *req = big(82000, gz, &len);
		struct filter *f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
		struct buf out = { 0 };
		struct seen s;

		assert_true(gz || len > 8u << 20);
		assert_int_equal(pass(f, req, len, 16384, &out, 0), FILTER_IDLE);
		decode(&out, &s);
		assert_int_equal(s.events, 82000);
		assert_int_equal(s.stamped, 82000);
		assert_int_equal(s.chunks, 1);
		assert_true(s.requests > (8 << 20) / 65536);
		assert_true(s.max_piece <= 65536 + 64);
		filter_free(f);
		free(out.p);
		free(req);
	}
}

/* A record's own field of a stamp's name is replaced, whether the event is
 * written from its bytes or re-encoded; the other fields stay as they came
 * (a non-minimal time too). */
static void test_stamp_replaces_and_keeps(void **state)
{
	/* [t, bin(events)] : [uint64 1, {"a": 1, "tls": "forged"}], [1, {"b": "x"}] */
	static const unsigned char req[] = {
		0x92, 0xa1, 't', 0xc4, 32,
		0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0x82, 0xa1, 'a', 0x01, 0xa3, 't', 'l', 's',
		0xa6, 'f', 'o', 'r', 'g', 'e', 'd',
		0x92, 0x01, 0x81, 0xa1, 'b', 0xa1, 'x',
	};
	struct filter *f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	struct buf out = { 0 };
	msgpack_unpacked r, e;
	size_t off = 0, eoff = 0;
	int k;

	(void)state;
	assert_int_equal(sizeof(req), 5 + 32);
	assert_int_equal(pass(f, req, sizeof(req), 3, &out, 0), FILTER_IDLE);
	msgpack_unpacked_init(&r);
	msgpack_unpacked_init(&e);
	assert_int_equal(msgpack_unpack_next(&r, (const char *)out.p, out.n, &off),
	    MSGPACK_UNPACK_SUCCESS);
	for (k = 0; k < 2; k++) {
		const msgpack_object *bin = &r.data.via.array.ptr[1], *rec;

		assert_int_equal(msgpack_unpack_next(&e, bin->via.bin.ptr, bin->via.bin.size, &eoff),
		    MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(e.data.via.array.ptr[0].via.u64, 1);
		rec = &e.data.via.array.ptr[1];
		assert_int_equal(rec->via.map.size, 3);	/* a|b, tls, ip */
		assert_int_equal(rec->via.map.ptr[0].val.type,
		    k == 0 ? MSGPACK_OBJECT_POSITIVE_INTEGER : MSGPACK_OBJECT_STR);
		assert_memory_equal(rec->via.map.ptr[1].key.via.str.ptr, "tls", 3);
		assert_int_equal(rec->via.map.ptr[1].val.type, MSGPACK_OBJECT_MAP);
		assert_memory_equal(rec->via.map.ptr[2].key.via.str.ptr, "ip", 2);
	}
	/* the first event was re-encoded (its time now minimal), the second copied */
	assert_int_equal(((const unsigned char *)r.data.via.array.ptr[1].via.bin.ptr)[1], 0x01);
	msgpack_unpacked_destroy(&r);
	msgpack_unpacked_destroy(&e);
	filter_free(f);
	free(out.p);
}

static void test_ping_passes_through(void **state)
{
	struct filter *f = stamped("edge.", FWD_REQUEST_MAX_DEFAULT);
	struct buf out = { 0 };

	(void)state;
	assert_int_equal(pass(f, ping, sizeof(ping), 7, &out, 0), FILTER_IDLE);
	assert_int_equal(out.n, sizeof(ping));
	assert_memory_equal(out.p, ping, sizeof(ping));
	filter_free(f);
	free(out.p);
}

/* refused(f, in, n): f refuses in; its reason. */
static const char *refused(struct filter *f, const void *in, size_t n)
{
	struct buf out = { 0 };
	const char *why;

	assert_int_equal(pass(f, in, n, 4096, &out, 0), FILTER_ERROR);
	why = f->why;
	free(out.p);
	return why;
}

static void test_refusals(void **state)
{
#define C(s) s, sizeof(s) - 1
	static const struct { const char *in; size_t n; const char *why; } cases[] = {
		{ "{\"a\":1}", 7, "fwd_json_unsupported" },
		{ "[\"a\",1]", 7, "fwd_json_unsupported" },
		{ C("\xc1"), "fwd_not_a_request" },
		{ C("\x91\xa1" "a"), "fwd_not_a_request" },
		{ C("\x93\x01\x01\x80"), "fwd_bad_tag" },
		{ C("\x93\xa1" "a\x01\x01"), "fwd_record_not_a_map" },
		{ C("\x93\xa1" "a\xa0\x01"), "fwd_bad_option" },
		{ C("\x93\xa1" "a\x80\x80"), "fwd_bad_time" },
		{ C("\x92\xa1" "a\x91\x01"), "fwd_bad_entry" },
		{ C("\x92\xa1" "a\xc4\x02\x1f\x8b"), "fwd_truncated_gzip" },
		{ C("\x93\xa1" "a\xc4\x03\x92\x01\x80\x81\xaa" "compressed\xa4gzip"),
		  "fwd_compression_mismatch" },
		{ C("\x94\xa1" "a\x01\x80"), "fwd_truncated" },
		{ C("\x92\xa1" "a\xc4\x04\x92\x01\x80"), "fwd_truncated" },
		{ C("\x92\xa1" "a\xc4\x02\x92\x01"), "fwd_truncated_event" },
		{ C("\x96\xa4PING\x01\x01\x01\x01\x01"), "fwd_not_a_request" },
	};
#undef C
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct filter *f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);

		if (i == sizeof(cases) / sizeof(cases[0]) - 1) {	/* PING only first */
			struct buf out = { 0 };

			assert_int_equal(pass(f, (const unsigned char *)"\xc0", 1, 1, &out, 0),
			    FILTER_IDLE);
			free(out.p);
		}
		assert_string_equal(refused(f, cases[i].in, cases[i].n), cases[i].why);
		filter_free(f);
	}
}

#define C(s) s, sizeof(s) - 1

static void test_limits(void **state)
{
	size_t len;
	unsigned char *req = big(2000, 0, &len);
	struct filter *f = stamped(NULL, len - 1);
	unsigned char *huge;

	(void)state;
	assert_string_equal(refused(f, req, len), "fwd_request_too_large");
	filter_free(f);
	f = stamped(NULL, len - 64);
	{
		struct buf out = { 0 };

		/* the payload's length says so: refused before any piece left */
		assert_int_equal(pass(f, req, len, 1000, &out, 0), FILTER_ERROR);
		assert_string_equal(f->why, "fwd_request_too_large");
		assert_int_equal(out.n, 0);
		free(out.p);
	}
	filter_free(f);
	f = stamped(NULL, len);
	{
		struct buf out = { 0 };

		assert_int_equal(pass(f, req, len, 1000, &out, 0), FILTER_IDLE);
		free(out.p);
	}
	filter_free(f);
	free(req);
	/* A record larger than FWD_EVENT_MAX, in a Message and in a payload. */
	huge = calloc(1, FWD_EVENT_MAX + 64);
	memcpy(huge, "\x93\xa1" "a\x01\x81\xa1" "b\xc6\x00\x20\x00\x00", 12);
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, huge, FWD_EVENT_MAX + 64), "fwd_event_too_large");
	filter_free(f);
	memcpy(huge, "\x92\xa1" "a\xc6\x00\x20\x00\x20\x92\x01\x81\xa1" "b\xc6\x00\x20\x00\x00",
	    19);
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, huge, FWD_EVENT_MAX + 64), "fwd_event_too_large");
	filter_free(f);
	free(huge);
	/* Containers claiming more elements than an event may hold are refused
	 * before msgpack-c allocates for them: in a request, in a payload, nested. */
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, C("\x93\xa1" "a\x01\xdf\xff\xff\xff\xff")),
	    "fwd_event_too_large");
	filter_free(f);
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, C("\x92\xa1" "a\xc4\x0a\x92\x01\x81\xa1" "b\xdd\x00\x10\x00\x01")),
	    "fwd_event_too_large");
	filter_free(f);
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, C("\x93\xa1" "a\x01\x81\xa1" "b\x91\x91\x91\x91\x91\x91"
	    "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
	    "\x91\x91\x91\x91\x91\x91\x91\x91\x91")), "fwd_event_too_large");
	filter_free(f);
	f = stamped(NULL, FWD_REQUEST_MAX_DEFAULT);
	assert_string_equal(refused(f, C("\x93\xa1" "a\x01\x81\xa1" "b\xc1")), "fwd_malformed");
	filter_free(f);
}

#undef C

static void test_no_identity_no_data(void **state)
{
	struct filter *f = fwd_new(FWD_REQUEST_MAX_DEFAULT);

	(void)state;
	fwd_need_stamp(f);
	assert_string_equal(refused(f, "\x93\xa1" "a\x01\x80", 5), "fwd_no_identity");
	filter_free(f);
}

/* --allow-tag: the tag as received (before the prefix) is checked; a
 * denied request writes nothing; no tags set while they are needed: no
 * request at all. */
static void test_tags(void **state)
{
	struct tagacl *acl = tagacl_new();
	struct tagacl_set *set;
	struct filter *f;
	struct buf out = { 0 };
	struct seen s = { 0 };
	char why[128];
	unsigned char in[256];
	size_t n = 0;

	(void)state;
	assert_int_equal(tagacl_add(acl, "cn:edge-01=app.{a,b}.**", why, sizeof(why)), 0);
	f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
	fwd_need_tags(f);
	assert_string_equal(refused(f, "\x93\xa1" "a\x01\x80", 5), "fwd_no_identity");
	filter_free(f);

	f = stamped("edge.{cn}.", FWD_REQUEST_MAX_DEFAULT);
	assert_int_equal(tagacl_for(acl, &edge, &set), 0);
	fwd_set_tags(f, set);
	memcpy(in + n, "\x93\xa7" "app.a.x\x01\x80", 11);
	n += 11;
	assert_int_equal(pass(f, in, n, 4096, &out, 0), FILTER_IDLE);
	decode(&out, &s);
	assert_int_equal(s.events, 1);
	assert_string_equal(s.last_tag, "edge.edge-01.app.a.x");
	free(out.p);
	out = (struct buf){ 0 };
	assert_int_equal(pass(f, (const unsigned char *)"\x93\xa9" "app.c.x.y\x01\x80", 13, 4096,
	    &out, 0), FILTER_ERROR);
	assert_string_equal(f->why, "tag_denied");
	assert_string_equal(f->tag, "app.c.x.y");
	assert_int_equal(out.n, 0);
	free(out.p);
	filter_free(f);
	tagacl_free(acl);
}

static void test_templates(void **state)
{
	static const char *const uris[] = { "spiffe://prod/a" };
	struct x509_identity id = edge;
	struct fwd_opts o = { "who", "{cn}|{dns}|{uri}|{ou}", NULL, "e.{cn}." };
	struct fwd_stamp *s;
	const char *why;
	char err[128];

	(void)state;
	assert_int_equal(fwd_template_check("edge.{cn}.", 1, err, sizeof(err)), 0);
	assert_int_equal(fwd_template_check("edge.{fp}.{ou}.{dns}.{uri}", 1, err, sizeof(err)), 0);
	assert_int_equal(fwd_template_check("edge/{cn}", 1, err, sizeof(err)), -1);
	assert_int_equal(fwd_template_check("edge/{cn}", 0, err, sizeof(err)), 0);
	assert_int_equal(fwd_template_check("{cn", 0, err, sizeof(err)), -1);
	assert_int_equal(fwd_template_check("{xx}", 0, err, sizeof(err)), -1);
	assert_int_equal(fwd_stamp_new(&o, &id, NULL, NULL, &s, &why), 0);
	assert_string_equal(s->prefix, "e.edge-01.");
	assert_int_equal(s->n, 1);
	fwd_stamp_free(s);
	o.tag_prefix = "{uri}.";
	id.uri = uris;
	id.n_uri = 1;
	assert_int_equal(fwd_stamp_new(&o, &id, NULL, NULL, &s, &why), -1);
	assert_string_equal(why, "identity_not_a_tag");
	o.tag_prefix = "{ou}.";		/* none */
	assert_int_equal(fwd_stamp_new(&o, &id, NULL, NULL, &s, &why), -1);
	id.cn = (const char *const[]){ "a..b" };
	o.tag_prefix = "{cn}.";
	assert_int_equal(fwd_stamp_new(&o, &id, NULL, NULL, &s, &why), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_mode),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_big_packed_in_pieces),
		cmocka_unit_test(test_stamp_replaces_and_keeps),
		cmocka_unit_test(test_ping_passes_through),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_no_identity_no_data),
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_tags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
