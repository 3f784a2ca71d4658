/* test_log: the JSON string escaper of shared/log.{h,c} (log_json_escape) --
 * quotes, backslash, control bytes, well-formed UTF-8 kept, every ill-formed
 * sequence made valid -- and the JSON log line it writes for a subject that
 * holds invalid UTF-8. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct out {
	char buf[4096];
	size_t len;
};

static void out_cb(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	assert_true(o->len + n < sizeof(o->buf));
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* esc(s, n): log_json_escape of n bytes into a static buffer. */
static const char *esc(const char *s, size_t n)
{
	static struct out o;

	o.len = 0;
	o.buf[0] = '\0';
	log_json_escape(s, n, out_cb, &o);
	return o.buf;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

/* An independent check that the n bytes at p are the inside of a valid JSON
 * string (RFC 8259) in valid UTF-8: decode each code point by its bits, then
 * reject overlong forms, surrogates and values above U+10FFFF by range. */
static int json_string_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i], need, k;
		unsigned long cp;

		if (c < 0x20 || c == '"')
			return 0;
		if (c == '\\') {
			if (i + 1 >= n)
				return 0;
			if (strchr("\"\\/bfnrt", p[i + 1]) != NULL && p[i + 1] != '\0') {
				i += 2;
				continue;
			}
			if (p[i + 1] != 'u' || i + 6 > n)
				return 0;
			for (k = 2; k < 6; k++)
				if (strchr("0123456789abcdefABCDEF", p[i + k]) == NULL || p[i + k] == '\0')
					return 0;
			i += 6;
			continue;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += need + 1;
	}
	return 1;
}

static void test_quotes_and_backslash(void **state)
{
	(void)state;
	assert_string_equal(ESC("a\"b\\c/d"), "a\\\"b\\\\c/d");
	assert_string_equal(ESC(""), "");
	assert_string_equal(ESC("plain text"), "plain text");
}

static void test_control_bytes(void **state)
{
	(void)state;
	assert_string_equal(ESC("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
	assert_string_equal(ESC("\x01\x1f\x7f\x1b[2J"), "\\u0001\\u001f\\u007f\\u001b[2J");
	assert_string_equal(ESC("a\0b"), "a\\u0000b");
}

static void test_valid_utf8_kept(void **state)
{
	static const char *const ok[] = {
		"\xc2\xa0",			/* U+00A0 (U+0080..U+009F, C1 controls, are escaped) */
		"caf\xc3\xa9",			/* U+00E9 */
		"\xe0\xa0\x80",			/* U+0800, the smallest 3-byte form */
		"\xe2\x82\xac",			/* U+20AC */
		"\xed\x9f\xbf",			/* U+D7FF, below the surrogates */
		"\xee\x80\x80",			/* U+E000, above them */
		"\xef\xbf\xbd",			/* U+FFFD itself */
		"\xf0\x90\x80\x80",		/* U+10000, the smallest 4-byte form */
		"\xf0\x9f\x98\x80",		/* U+1F600 */
		"\xf4\x8f\xbf\xbf",		/* U+10FFFF, the largest */
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe4\xb8\x96\xe7\x95\x8c",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_string_equal(esc(ok[i], strlen(ok[i])), ok[i]);
}

static void test_invalid_utf8_replaced(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "a\xff" "b", "a\\ufffdb" },			/* the CN of the e2e test */
		{ "\x80", "\\ufffd" },				/* lone continuation */
		{ "x\xbf\x80y", "x\\ufffd\\ufffdy" },
		{ "\xc0\xaf", "\\ufffd\\ufffd" },		/* overlong '/' */
		{ "\xc1\xbf", "\\ufffd\\ufffd" },
		{ "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd" },	/* overlong 3-byte */
		{ "\xf0\x80\x80\xaf", "\\ufffd\\ufffd\\ufffd\\ufffd" },	/* overlong 4-byte */
		{ "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd" },	/* U+D800 */
		{ "\xed\xbf\xbf", "\\ufffd\\ufffd\\ufffd" },	/* U+DFFF */
		{ "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" },	/* U+110000 */
		{ "\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd" },
		{ "\xfe\xff", "\\ufffd\\ufffd" },
		{ "ab\xe2\x82", "ab\\ufffd\\ufffd" },		/* cut short at the end */
		{ "\xf0\x9f\x98", "\\ufffd\\ufffd\\ufffd" },
		{ "\xc3", "\\ufffd" },
		{ "\xe2\x82z\xc3\xa9", "\\ufffd\\ufffdz\xc3\xa9" },	/* cut short, then more */
		{ "\xc3\"", "\\ufffd\\\"" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(esc(cases[i].in, strlen(cases[i].in)), cases[i].want);
}

/* Every string of up to 3 bytes, and random longer ones, escape to a valid
 * JSON string body. */
static void test_any_bytes_give_valid_json(void **state)
{
	unsigned char b[64];
	const char *e;
	unsigned long k;
	size_t n, i;

	(void)state;
	for (k = 0; k < (1ul << 24); k += 13) {
		b[0] = (unsigned char)k;
		b[1] = (unsigned char)(k >> 8);
		b[2] = (unsigned char)(k >> 16);
		for (n = 1; n <= 3; n++) {
			e = esc((const char *)b, n);
			if (!json_string_ok((const unsigned char *)e, strlen(e)))
				fail_msg("not valid: %02x %02x %02x (%zu) -> %s", b[0], b[1], b[2], n, e);
		}
	}
	srand(11);
	for (k = 0; k < 20000; k++) {
		n = (size_t)rand() % sizeof(b);
		for (i = 0; i < n; i++)
			b[i] = (unsigned char)(rand() % 4 == 0 ? 0x80 + rand() % 0x80 : rand());
		e = esc((const char *)b, n);
		assert_true(json_string_ok((const unsigned char *)e, strlen(e)));
	}
}

static char line[4096];

static void capture(const char *l, size_t n)
{
	assert_true(n < sizeof(line));
	memcpy(line, l, n);
	line[n] = '\0';
}

/* A JSON log line with a subject of a\xffb and a value with controls: the
 * line holds the escapes and is valid. */
static void test_json_log_line(void **state)
{
	const char *p;

	(void)state;
	log_set_output(capture);
	log_setup("test", LOG_INFO, LOG_JSON);
	log_info("handshake", "subject=%s n=%d", "/CN=a\xff" "b\"\\\t", 3);
	p = strstr(line, ",\"subject\":\"/CN=a\\ufffdb\\\"\\\\\\t\",\"n\":3}\n");
	assert_non_null(p);
	p = strstr(line, "\"msg\":\"");
	assert_non_null(p);
	log_setup("test", LOG_INFO, LOG_LOGFMT);
	log_info("handshake", "subject=%s peer=%s", "/CN=a\xff" "b", "127.0.0.1:5");
	assert_non_null(strstr(line, " msg=handshake subject=\"/CN=a\\ufffdb\" peer=127.0.0.1:5\n"));
	log_info("x", "v=%s", "a b\n");
	assert_non_null(strstr(line, " v=\"a b\\n\"\n"));
	log_set_output(NULL);
}

/* Line breaks other than \n and \r that line splitters and JavaScript
 * honour (C1 NEL, U+2028, U+2029) are escaped; a number JSON cannot write
 * (NaN, infinity) is null in a JSON line. */
static void test_line_breaks_and_numbers(void **state)
{
	(void)state;
	assert_string_equal(ESC("a\xc2\x85" "b\xc2\x80\xc2\x9f\xc2\xa0"),
	    "a\\u0085b\\u0080\\u009f\xc2\xa0");
	assert_string_equal(ESC("x\xe2\x80\xa8y\xe2\x80\xa9z\xe2\x80\xaa"),
	    "x\\u2028y\\u2029z\xe2\x80\xaa");
	log_set_output(capture);
	log_setup("test", LOG_INFO, LOG_JSON);
	log_info("x", "a=%f b=%f c=%f", 0.0 / 0.0, 1.0 / 0.0, 1.5);
	assert_non_null(strstr(line, ",\"a\":null,\"b\":null,\"c\":1.500}\n"));
	log_setup("test", LOG_INFO, LOG_LOGFMT);
	log_info("x", "a=%f b=%f", 0.0 / 0.0, -1.0 / 0.0);
	assert_non_null(strstr(line, " a=nan b=-inf\n"));
	log_set_output(NULL);
}

/* Values too long for a line: each is cut at a character or escape and ends
 * in "...", a field that does not fit is dropped whole, and the JSON line
 * stays valid (the old line was cut anywhere and lost its closing brace). */
static void test_long_values_keep_the_line_valid(void **state)
{
	static char big[5000], mixed[5000];
	const char *v;
	size_t i, n;

	(void)state;
	memset(big, 0xff, sizeof(big) - 1);
	for (i = 0; i + 1 < sizeof(mixed); i++)
		mixed[i] = "\xe2\x82\xac\"x\x01"[i % 6];
	log_set_output(capture);
	log_setup("test", LOG_INFO, LOG_JSON);
	log_info("closed", "subject=%s issuer=%s peer=%s n=%d", big, mixed, "127.0.0.1:5", 7);
	n = strlen(line);
	assert_true(n < 2048);
	assert_string_equal(line + n - 2, "}\n");
	v = strstr(line, ",\"subject\":\"");
	assert_non_null(v);
	v += strlen(",\"subject\":\"");
	assert_true(strncmp(v, "\\ufffd\\ufffd", 12) == 0);
	assert_non_null(strstr(v, "\\ufffd...\",\"issuer\":\"\u20ac\\\"x\\u0001"));
	assert_non_null(strstr(line, "...\",\"peer\":\"127.0.0.1:5\",\"n\":7}\n"));
	/* every string in the line is a valid JSON string */
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '"') {
			size_t j = i + 1;

			while (line[j] != '"')
				j += line[j] == '\\' ? 2 : 1;
			assert_true(json_string_ok((const unsigned char *)line + i + 1, j - i - 1));
			i = j;
		}
	log_setup("test", LOG_INFO, LOG_LOGFMT);
	log_set_output(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quotes_and_backslash),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_valid_utf8_kept),
		cmocka_unit_test(test_invalid_utf8_replaced),
		cmocka_unit_test(test_any_bytes_give_valid_json),
		cmocka_unit_test(test_json_log_line),
		cmocka_unit_test(test_line_breaks_and_numbers),
		cmocka_unit_test(test_long_values_keep_the_line_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
