/* test_proxy: the HTTP CONNECT hop's pure parts (client/proxy.c): the proxy
 * URL, no_proxy, Basic credentials, the request and the answer's reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config_opt.h"
#include "proxy.h"

static void test_url(void **state)
{
	struct proxy_url u;
	char why[256];

	(void)state;
	assert_int_equal(proxy_url_parse("http://proxy.example:3128", 0, &u, why, sizeof(why)), 0);
	assert_string_equal(u.host, "proxy.example");
	assert_string_equal(u.port, "3128");
	assert_string_equal(u.spec, "proxy.example:3128");
	assert_false(u.has_user);

	assert_int_equal(proxy_url_parse("HTTP://a%20b:p%40ss%3Aw%25rd@[::1]:8080/", 0, &u, why,
	    sizeof(why)), 0);
	assert_true(u.has_user);
	assert_string_equal(u.user, "a b");
	assert_string_equal(u.password, "p@ss:w%rd");
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.spec, "[::1]:8080");

	/* a user without a password; an '@' and a ':' in the password as written */
	assert_int_equal(proxy_url_parse("http://alice@10.0.0.1:3128", 0, &u, why, sizeof(why)), 0);
	assert_true(u.has_user);
	assert_string_equal(u.password, "");
	assert_int_equal(proxy_url_parse("http://alice:a@b:c@10.0.0.1:3128", 0, &u, why,
	    sizeof(why)), 0);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.password, "a@b:c");

	/* bare host:port only where asked (https_proxy) */
	assert_int_equal(proxy_url_parse("10.0.0.1:3128", 1, &u, why, sizeof(why)), 0);
	assert_string_equal(u.spec, "10.0.0.1:3128");
	assert_int_equal(proxy_url_parse("10.0.0.1:3128", 0, &u, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "expected http://"));
}

static void test_url_errors(void **state)
{
	static const struct {
		const char *url, *why;
	} bad[] = {
		{ "https://p:3128", "https:// proxy is not supported" },
		{ "socks5://p:1080", "expected http://" },
		{ "http://", "no proxy host" },
		{ "http://p", "needs a port" },
		{ "http://[::1]", "needs a port" },
		{ "http://p:0", "bad proxy address" },
		{ "http://p:65536", "bad proxy address" },
		{ "http://p:x", "bad proxy address" },
		{ "http://::1:3128", "bad proxy address" },
		{ "http://p:3128/x", "no path" },
		{ "http://p:3128?x", "no path" },
		{ "http://@p:3128", "bad user name" },
		{ "http://:pw@p:3128", "bad user name" },
		{ "http://a%3Ab:pw@p:3128", "bad user name" },	/* a ':' in the user */
		{ "http://a%zz:pw@p:3128", "bad user name" },
		{ "http://a:%0d%0aX:1@p:3128", "bad password" },	/* header injection */
		{ "http://a:%00@p:3128", "bad password" },
		{ "http://a:%4@p:3128", "bad password" },
		{ "http://a:pw%@p:3128", "bad password" },
		{ "http://p%41:3128", "bad proxy host" },
	};
	struct proxy_url u;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = proxy_url_parse(bad[i].url, 1, &u, why, sizeof(why));

		if (rc != -1 || strstr(why, bad[i].why) == NULL)
			fail_msg("%s: rc %d, %s (wanted %s)", bad[i].url, rc, why, bad[i].why);
		/* the password never reaches the message */
		assert_null(strstr(why, "pw"));
	}
}

static void test_bypass(void **state)
{
	(void)state;
	assert_false(proxy_bypass(NULL, "a.example.com"));
	assert_false(proxy_bypass("", "a.example.com"));
	assert_true(proxy_bypass("*", "anything"));
	assert_true(proxy_bypass("example.com", "example.com"));
	assert_true(proxy_bypass("example.com", "agg.example.com"));
	assert_true(proxy_bypass(".example.com", "agg.example.com"));
	assert_true(proxy_bypass(".example.com", "example.com"));
	assert_true(proxy_bypass("EXAMPLE.com", "Agg.Example.COM."));
	assert_false(proxy_bypass("example.com", "badexample.com"));
	assert_false(proxy_bypass("agg.example.com", "example.com"));
	assert_true(proxy_bypass("localhost, 10.0.0.1 ,example.com", "10.0.0.1"));
	assert_true(proxy_bypass("localhost,,example.com", "x.example.com"));
	assert_false(proxy_bypass("10.0.0.1", "10.0.0.10"));
	assert_false(proxy_bypass("0.0.1", "10.0.0.1"));	/* no suffix match for IPs */
	assert_true(proxy_bypass("::1", "::1"));
	assert_true(proxy_bypass("[::1]", "::1"));
	assert_true(proxy_bypass("::1", "[::1]"));
	assert_true(proxy_bypass("example.com:443", "a.example.com"));	/* the port is ignored */
	assert_false(proxy_bypass("*.example.com", "a.example.com"));	/* not a wildcard form */
	assert_false(proxy_bypass("x*", "x"));
}

static void test_basic_and_request(void **state)
{
	char auth[PROXY_AUTH_MAX], req[PROXY_REQUEST_MAX], small[40];
	const char *want;

	(void)state;
	assert_int_equal(proxy_basic("Aladdin", "open sesame", auth, sizeof(auth)), 28);
	assert_string_equal(auth, "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	assert_int_equal(proxy_basic("a", "", auth, sizeof(auth)), 4);
	assert_string_equal(auth, "YTo=");
	assert_int_equal(proxy_basic("ab", "", auth, 4), -1);	/* "YWI6" needs 5 */
	assert_int_equal(proxy_basic("ab", "", auth, 5), 4);

	want = "CONNECT agg.example:24284 HTTP/1.1\r\nHost: agg.example:24284\r\n\r\n";
	assert_int_equal(proxy_request(req, sizeof(req), "agg.example:24284", NULL),
	    (int)strlen(want));
	assert_memory_equal(req, want, strlen(want));
	assert_int_equal(proxy_request(req, sizeof(req), "agg.example:24284", ""),
	    (int)strlen(want));
	want = "CONNECT [::1]:24284 HTTP/1.1\r\nHost: [::1]:24284\r\n"
	    "Proxy-Authorization: Basic YTo=\r\n\r\n";
	assert_int_equal(proxy_request(req, sizeof(req), "[::1]:24284", "YTo="), (int)strlen(want));
	assert_memory_equal(req, want, strlen(want));
	memset(small, 'x', sizeof(small));
	assert_int_equal(proxy_request(small, sizeof(small), "agg.example:24284", NULL), -1);
	assert_int_equal(small[0], 'x');
}

/* feed(text, n, chunk, used_total, why): feed the n bytes at text in pieces
 * of chunk; the last result. */
/* feed(text, n, chunk, ...): text to a fresh answer in pieces of chunk bytes.  The
 * answer is static because why points into it and the caller reads why after. */
static int feed(const char *text, size_t n, size_t chunk, size_t *used_total, const char **why)
{
	static struct proxy_answer a;
	size_t off = 0, used;
	int rc = PROXY_MORE;

	memset(&a, 0, sizeof(a));
	*used_total = 0;
	while (off < n && rc == PROXY_MORE) {
		size_t k = n - off < chunk ? n - off : chunk;

		rc = proxy_answer_feed(&a, (const unsigned char *)text + off, k, &used, why);
		assert_true(used <= k);
		if (rc == PROXY_MORE)
			assert_int_equal(used, k);
		*used_total += used;
		off += k;
	}
	return rc;
}

#define T(s) s, sizeof(s) - 1	/* a literal and its length (it may hold a NUL) */

static void test_answer(void **state)
{
	static const struct {
		const char *text;
		size_t n;
		int rc;
		const char *why;
		size_t used;		/* for OK: the header's length */
	} cases[] = {
		{ T("HTTP/1.1 200 Connection established\r\n\r\n"), PROXY_OK, "", 39 },
		{ T("HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n"), PROXY_OK, "", 35 },
		{ T("HTTP/1.1 200\r\n\r\n"), PROXY_OK, "", 16 },
		{ T("HTTP/1.1 204 No Content\n\n"), PROXY_OK, "", 25 },
		{ T("HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01"), PROXY_OK, "", 19 },	/* stops at the end */
		{ T("HTTP/1.1 407 Proxy Authentication Required\r\n"), PROXY_FAIL,
		  "proxy_auth_required", 0 },
		{ T("HTTP/1.1 401 Unauthorized\r\n"), PROXY_FAIL, "proxy_auth_required", 0 },
		{ T("HTTP/1.1 403 Forbidden\r\n\r\n"), PROXY_FAIL, "proxy_forbidden", 0 },
		{ T("HTTP/1.1 502 Bad Gateway\r\n"), PROXY_FAIL, "proxy_status_502", 0 },
		{ T("HTTP/1.1 100 Continue\r\n"), PROXY_FAIL, "proxy_status_100", 0 },
		{ T("HTTP/1.1 000 x\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/2 200\r\n\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("http/1.1 200 OK\r\n\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1 20 OK\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1 2000 OK\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1  200 OK\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("SSH-2.0-OpenSSH_9.2\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("\x16\x03\x03\x00\x02\x02\x28"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1 200 O\x01K\r\n\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n"), PROXY_FAIL, "proxy_not_http", 0 },
		{ T("HTTP/1.1 200 OK\r\n"), PROXY_MORE, NULL, 17 },
		{ T("HTTP/1.1 200 OK\r\nX: y\r\n"), PROXY_MORE, NULL, 23 },
		{ T("HTTP/1.1 2"), PROXY_MORE, NULL, 10 },
		{ T(""), PROXY_MORE, NULL, 0 },
	};
	size_t i, chunk;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].n;
		for (chunk = 1; chunk <= n + 1; chunk++) {
			const char *why = NULL;
			size_t used;
			int rc = feed(cases[i].text, n, chunk, &used, &why);

			if (rc != cases[i].rc)
				fail_msg("case %zu chunk %zu: rc %d", i, chunk, rc);
			if (rc == PROXY_FAIL)
				assert_string_equal(why, cases[i].why);
			if (rc != PROXY_FAIL)
				assert_int_equal(used, cases[i].used);
		}
	}
}

static void test_answer_limits(void **state)
{
	static char text[PROXY_ANSWER_MAX + 100];
	struct proxy_answer a;
	const char *why;
	size_t n, used;
	int rc;

	(void)state;
	/* exactly PROXY_ANSWER_MAX bytes ending the header: fine */
	n = (size_t)snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nX: ");
	memset(text + n, 'a', PROXY_ANSWER_MAX - n - 4);
	memcpy(text + PROXY_ANSWER_MAX - 4, "\r\n\r\n", 4);
	memset(&a, 0, sizeof(a));
	assert_int_equal(proxy_answer_feed(&a, (unsigned char *)text, PROXY_ANSWER_MAX, &used,
	    &why), PROXY_OK);
	assert_int_equal(used, PROXY_ANSWER_MAX);
	/* once done, the same answer again */
	assert_int_equal(proxy_answer_feed(&a, (unsigned char *)"x", 1, &used, &why), PROXY_OK);
	assert_int_equal(used, 0);

	/* one byte more: too long, in one piece or byte by byte */
	memcpy(text + PROXY_ANSWER_MAX - 4, "a\r\n\r\n", 5);
	memset(&a, 0, sizeof(a));
	rc = proxy_answer_feed(&a, (unsigned char *)text, PROXY_ANSWER_MAX + 1, &used, &why);
	assert_int_equal(rc, PROXY_FAIL);
	assert_string_equal(why, "proxy_header_too_long");
	assert_int_equal(feed(text, PROXY_ANSWER_MAX + 1, 1, &used, &why), PROXY_FAIL);
	assert_string_equal(why, "proxy_header_too_long");
	/* PROXY_ANSWER_MAX bytes and no end: too long at once */
	memset(&a, 0, sizeof(a));
	assert_int_equal(proxy_answer_feed(&a, (unsigned char *)text, PROXY_ANSWER_MAX, &used,
	    &why), PROXY_FAIL);
	assert_string_equal(why, "proxy_header_too_long");
}

/* --check and config errors show a --proxy URL without its password. */
static void test_shown(void **state)
{
	const struct opt *o = config_opt_find(ROLE_CLIENT, "proxy", 5);
	const struct opt *other = config_opt_find(ROLE_CLIENT, "server-name", 11);
	char buf[512];

	(void)state;
	assert_non_null(o);
	assert_string_equal(config_opt_shown(o, "http://u:pw@p:3128", buf, sizeof(buf)),
	    "http://u:***@p:3128");
	assert_string_equal(config_opt_shown(o, "http://u:a@b@p:3128/", buf, sizeof(buf)),
	    "http://u:***@p:3128/");
	assert_string_equal(config_opt_shown(o, "http://u:***@p:3128", buf, sizeof(buf)),
	    "http://u:***@p:3128");	/* shown again: the same */
	assert_string_equal(config_opt_shown(o, "http://u@p:3128", buf, sizeof(buf)),
	    "http://u@p:3128");
	assert_string_equal(config_opt_shown(o, "env", buf, sizeof(buf)), "env");
	assert_string_equal(config_opt_shown(o, "http://p:3128/x@y:z", buf, sizeof(buf)),
	    "http://p:3128/x@y:z");	/* an '@' past the authority is not userinfo */
	assert_string_equal(config_opt_shown(other, "http://u:pw@p:1", buf, sizeof(buf)),
	    "http://u:pw@p:1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_errors),
		cmocka_unit_test(test_bypass),
		cmocka_unit_test(test_basic_and_request),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_answer_limits),
		cmocka_unit_test(test_shown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
