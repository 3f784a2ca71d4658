/* fuzz_fwdauth: what server/fwd_auth.c reads from Fluentd in its <security>
 * handshake (untrusted: Fluentd, or whatever answers on its port): the HELO,
 * then the PONG, in the bytes as they arrive.
 *
 * Invariants: the outcome, its reason and (but for a failure, which ends
 * the connection) the bytes taken are the same whether the input is fed at
 * once or in pieces (the first byte picks their
 * size); no byte past a message's end is taken, and MORE takes all it was
 * given; a SEND's PING is a 6-element msgpack array of str, "PING", our
 * hostname, a 32-digit and a 128-digit lowercase hex; a reason is a stable
 * token; OK or FAIL is given again once given.  Memory stays within
 * FWD_AUTH_MSG_MAX per message whatever a header claims (ASan, -rss_limit_mb). */
#include "fuzz.h"
#include "fwd_auth.h"

#include <msgpack.h>

static const struct fwd_auth_secret sec = {
	.key = "shared key", .hostname = "tlsfwd", .username = "edge", .password = "pw",
};

static int hexlen(const msgpack_object *o, size_t n)
{
	size_t i;

	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!((o->via.str.ptr[i] >= '0' && o->via.str.ptr[i] <= '9') ||
		    (o->via.str.ptr[i] >= 'a' && o->via.str.ptr[i] <= 'f')))
			return 0;
	return 1;
}

/* check_ping(a): a->out is a PING as in_forward reads it. */
static void check_ping(const struct fwd_auth *a)
{
	msgpack_unpacked u;
	size_t off = 0;
	const msgpack_object *v;
	uint32_t i;

	msgpack_unpacked_init(&u);
	CHECK(msgpack_unpack_next(&u, (const char *)a->out, a->out_len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == a->out_len, "PING is not one msgpack object");
	CHECK(u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 6, "not 6 elements");
	v = u.data.via.array.ptr;
	for (i = 0; i < 6; i++)
		CHECK(v[i].type == MSGPACK_OBJECT_STR, "element %u is not a str", i);
	CHECK(v[0].via.str.size == 4 && memcmp(v[0].via.str.ptr, "PING", 4) == 0, "not PING");
	CHECK(v[1].via.str.size == 6 && memcmp(v[1].via.str.ptr, "tlsfwd", 6) == 0, "hostname");
	CHECK(hexlen(&v[2], FWD_AUTH_SALT_LEN) && hexlen(&v[3], 128), "salt or digest");
	CHECK((v[4].via.str.size == 0 && v[5].via.str.size == 0) ||
	    (v[4].via.str.size == 4 && hexlen(&v[5], 128)), "username and password digest");
	msgpack_unpacked_destroy(&u);
}

/* run(data, n, chunk, used, why): a handshake fed data in pieces of chunk. */
static int run(const uint8_t *data, size_t n, size_t chunk, size_t *used, const char **why,
    struct fwd_auth *a)
{
	static const unsigned char zero[16];
	size_t off = 0, u;
	int rc = FWD_AUTH_MORE, sends = 0;

	fwd_auth_init(a, &sec, zero);
	*used = 0;
	*why = NULL;
	while (off < n && (rc == FWD_AUTH_MORE || rc == FWD_AUTH_SEND)) {
		size_t k = n - off < chunk ? n - off : chunk;

		rc = fwd_auth_feed(a, data + off, k, &u, why);
		CHECK(u <= k, "took %zu of %zu", u, k);
		CHECK(rc != FWD_AUTH_MORE || u == k, "more, but took %zu of %zu", u, k);
		if (rc == FWD_AUTH_SEND) {
			CHECK(++sends == 1, "a second PING");
			check_ping(a);
		}
		*used += u;
		off += u;
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fwd_auth a, b;
	size_t used, used2, again, chunk = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
	const char *why, *why2, *why3;
	int rc = run(data, size, size > 0 ? size : 1, &used, &why, &a);
	int rc2 = run(data, size, chunk, &used2, &why2, &b);

	CHECK(rc == rc2, "at once %d, in pieces of %zu %d", rc, chunk, rc2);
	CHECK(used <= size && used2 <= size, "took %zu or %zu of %zu", used, used2, size);
	CHECK(rc == FWD_AUTH_FAIL || used == used2, "took %zu or %zu", used, used2);
	if (rc == FWD_AUTH_FAIL) {
		CHECK(why != NULL && why2 != NULL && strcmp(why, why2) == 0, "%s and %s",
		    why ? why : "(null)", why2 ? why2 : "(null)");
		CHECK(strncmp(why, "fwd_auth_", 9) == 0 || strcmp(why, "shared_key_mismatch") == 0 ||
		    strcmp(why, "user_auth_failed") == 0, "reason %s", why);
	}
	if (rc == FWD_AUTH_OK || rc == FWD_AUTH_FAIL) {
		CHECK(fwd_auth_feed(&a, data, size, &again, &why3) == rc && again == 0 &&
		    strcmp(why3, why) == 0, "the outcome changed");
	} else {
		CHECK(used == size, "more, or a PING, after %zu of %zu", used, size);
	}
	return 0;
}
