/* fuzz_fwd: the server's forward-protocol reader (server/fwd*.c) on the
 * bytes a sender sends (untrusted: any client the allow rules admit).
 *
 * Invariants: the outcome (refused or not, and the reason, unless a
 * compressed payload is corrupt) and every byte written are the same
 * whether the input comes at once or in pieces, and
 * however little output room there is (the first byte picks both); a reason
 * is a fwd_* token; what an accepted input becomes is a sequence of
 * requests that msgpack-c reads to the end, none with a "compressed"
 * option. */
#include <arpa/inet.h>

#include <msgpack.h>

#include "filter.h"
#include "fuzz.h"
#include "fwd.h"
#include "ring.h"
#include "sock.h"
#include "x509_identity.h"

struct out {
	unsigned char *p;
	size_t n, cap;
};

static const char *const cns[] = { "edge-01" };
static const struct x509_identity edge = {
	.subject = "/CN=edge-01", .issuer = "/CN=CA", .serial = "01", .cn = cns, .n_cn = 1,
};

static struct filter *reader(void)
{
	struct fwd_opts o = { "tls", NULL, "ip", "edge.{cn}." };
	struct sock_addr peer = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer.ss;
	struct filter *f = fwd_new(1u << 16);
	struct fwd_stamp *s;
	const char *why;

	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x7f000001);
	CHECK(f != NULL, "out of memory");
	CHECK(fwd_stamp_new(&o, &edge, NULL, &peer, &s, &why) == 0, "%s", why);
	fwd_need_stamp(f);
	fwd_set_stamp(f, s);
	return f;
}

/* run(data, n, step, room, out, why): the input through a reader, step
 * bytes at a time, at most room bytes of output taken per run.  1 accepted,
 * 0 refused (*why). */
static int run(const uint8_t *data, size_t n, size_t step, size_t room, struct out *o,
    const char **why)
{
	struct filter *f = reader();
	struct ring in = { 0 };
	size_t fed = 0, got, spins = 0;
	int rc, ok = 1;

	for (;;) {
		size_t want = n - fed < step ? n - fed : step;
		unsigned char *p;

		while (want > 0 && (p = ring_wspace(&in, &got)) != NULL) {
			if (got > want)
				got = want;
			memcpy(p, data + fed, got);
			ring_commit(&in, got);
			fed += got;
			want -= got;
		}
		if ((rc = f->ops->run(f, &in, &f->out, fed == n)) == FILTER_ERROR) {
			*why = f->why;
			ok = 0;
			break;
		}
		for (size_t taken = 0; ring_len(&f->out) > 0 && taken < room;) {
			const unsigned char *q = ring_rdata(&f->out, &got);

			if (got > room - taken)
				got = room - taken;
			if (o->n + got > o->cap) {
				o->cap = (o->n + got) * 2;
				CHECK((o->p = realloc(o->p, o->cap)) != NULL, "out of memory");
			}
			memcpy(o->p + o->n, q, got);
			o->n += got;
			ring_consume(&f->out, got);
			taken += got;
		}
		if (fed == n && ring_len(&in) == 0 && ring_len(&f->out) == 0 && rc == FILTER_IDLE)
			break;
		spins = rc == FILTER_IDLE && ring_len(&f->out) == 0 && ring_len(&in) > 0 ? spins + 1 : 0;
		CHECK(spins < 3, "stalled with %zu bytes in", ring_len(&in));
	}
	ring_free(&in);
	filter_free(f);
	return ok;
}

/* check_output(o): complete requests, none compressed. */
static void check_output(const struct out *o)
{
	msgpack_unpacked r;
	size_t off = 0;

	msgpack_unpacked_init(&r);
	while (off < o->n) {
		CHECK(msgpack_unpack_next(&r, (const char *)o->p, o->n, &off) == MSGPACK_UNPACK_SUCCESS,
		    "output does not parse at %zu", off);
		if (r.data.type == MSGPACK_OBJECT_ARRAY && r.data.via.array.size == 3 &&
		    r.data.via.array.ptr[2].type == MSGPACK_OBJECT_MAP) {
			const msgpack_object_map *m = &r.data.via.array.ptr[2].via.map;

			for (uint32_t i = 0; i < m->size; i++)
				CHECK(!(m->ptr[i].key.type == MSGPACK_OBJECT_STR &&
				    m->ptr[i].key.via.str.size == 10 &&
				    memcmp(m->ptr[i].key.via.str.ptr, "compressed", 10) == 0),
				    "compressed option written");
		}
	}
	msgpack_unpacked_destroy(&r);
}

/* corrupt(why): a compressed payload's own fault. */
static int corrupt(const char *why)
{
	return strcmp(why, "fwd_bad_zstd") == 0 || strcmp(why, "fwd_bad_gzip") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out a = { 0 }, b = { 0 };
	const char *why_a = NULL, *why_b = NULL;
	size_t step = size > 0 ? (size_t)data[0] % 61 + 1 : 1;
	size_t room = size > 1 ? (size_t)data[1] * 7 + 1 : RING_SIZE;
	int ok_a = run(data, size, RING_SIZE, RING_SIZE, &a, &why_a);
	int ok_b = run(data, size, step, room, &b, &why_b);

	CHECK(ok_a == ok_b, "at once %d, in pieces of %zu %d (%s)", ok_a, step, ok_b,
	    ok_a ? why_b : why_a);
	if (ok_a) {
		CHECK(a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0), "output differs in pieces of %zu", step);
		check_output(&a);
	} else {
		CHECK(strncmp(why_a, "fwd_", 4) == 0 && strncmp(why_b, "fwd_", 4) == 0, "%s and %s",
		    why_a, why_b);
		/* zstd reports a corrupt block without the output of the blocks
		 * decoded before it in the same call: how far it got before the
		 * refusal depends on the cut; that it is refused does not. */
		CHECK(strcmp(why_a, why_b) == 0 || corrupt(why_a) || corrupt(why_b), "%s and %s",
		    why_a, why_b);
	}
	free(a.p);
	free(b.p);
	return 0;
}
