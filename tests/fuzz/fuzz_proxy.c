/* fuzz_proxy: what client/proxy.c reads — the answer of an HTTP proxy to
 * CONNECT (untrusted: the proxy, or whatever answers in its place), and the
 * --proxy URL and no_proxy list (operator input).
 *
 * Invariants: the answer gives the same outcome, reason and header length
 * whether it is fed at once or in pieces (the first byte picks their size);
 * no byte past the header's end is taken; an OK header starts "HTTP/1.",
 * has a 2xx status and ends with LF, within PROXY_ANSWER_MAX bytes; a
 * reason is a proxy_* token.  A URL that parses has NUL-terminated fields,
 * a host:port that sock_split() takes and a user without ':'; a refused
 * one has a reason. */
#include "fuzz.h"
#include "proxy.h"
#include "sock.h"

/* run(data, n, chunk, used, why): feed data in pieces of chunk. */
static int run(const uint8_t *data, size_t n, size_t chunk, size_t *used, const char **why,
    struct proxy_answer *a)
{
	size_t off = 0, u;
	int rc = PROXY_MORE;

	memset(a, 0, sizeof(*a));
	*used = 0;
	*why = NULL;
	while (off < n && rc == PROXY_MORE) {
		size_t k = n - off < chunk ? n - off : chunk;

		rc = proxy_answer_feed(a, data + off, k, &u, why);
		CHECK(u <= k, "took %zu of %zu", u, k);
		CHECK(rc != PROXY_MORE || u == k, "more, but took %zu of %zu", u, k);
		*used += u;
		off += k;
	}
	return rc;
}

static void answer(const uint8_t *data, size_t size)
{
	struct proxy_answer a, b;
	size_t used, used2, chunk = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
	const char *why, *why2;
	int rc = run(data, size, size > 0 ? size : 1, &used, &why, &a);
	int rc2 = run(data, size, chunk, &used2, &why2, &b);

	CHECK(rc == rc2, "at once %d, in pieces of %zu %d", rc, chunk, rc2);
	CHECK(used <= PROXY_ANSWER_MAX && used <= size, "took %zu", used);
	if (rc == PROXY_FAIL) {
		CHECK(why != NULL && strncmp(why, "proxy_", 6) == 0 && fuzz_cstr_in(why, 24),
		    "reason %s", why ? why : "(null)");
		CHECK(strcmp(why, why2) == 0, "%s and %s", why, why2);
	} else if (rc == PROXY_OK) {
		CHECK(used == used2, "header %zu or %zu", used, used2);
		CHECK(used >= 10 && memcmp(data, "HTTP/1.", 7) == 0 && data[9] == '2' &&
		    data[used - 1] == '\n', "not an OK header");
		CHECK(a.status >= 200 && a.status <= 299, "status %u", a.status);
	} else {
		CHECK(used == size && size < PROXY_ANSWER_MAX, "more after %zu", size);
	}
}

static void url(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), why[256], host[PROXY_FIELD_MAX], port[8];
	struct proxy_url u;
	const char *bad;

	why[0] = '\0';
	if (proxy_url_parse(s, data[0] & 1, &u, why, sizeof(why)) == 0) {
		CHECK(fuzz_cstr_in(u.host, sizeof(u.host)) && fuzz_cstr_in(u.port, sizeof(u.port)) &&
		    fuzz_cstr_in(u.spec, sizeof(u.spec)) && fuzz_cstr_in(u.user, sizeof(u.user)) &&
		    fuzz_cstr_in(u.password, sizeof(u.password)), "not terminated");
		CHECK(sock_split(u.spec, host, sizeof(host), port, sizeof(port), &bad) == 0 &&
		    strcmp(host, u.host) == 0 && strcmp(port, u.port) == 0, "spec %s", u.spec);
		CHECK(strchr(u.user, ':') == NULL, "':' in user %s", u.user);
	} else {
		CHECK(why[0] != '\0' && fuzz_cstr_in(why, sizeof(why)), "no reason");
	}
	/* the same text as a no_proxy list, against a host from its end */
	(void)proxy_bypass(s, s + strlen(s) / 2);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	answer(data, size);
	if (size > 0)
		url(data, size);
	return 0;
}
