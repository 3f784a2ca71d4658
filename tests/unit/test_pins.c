/* test_pins: the client's --pin-server values (client/pins.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pins.h"
#include "x509.h"

#define HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HEX_COLONS "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:" \
	"A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08"

static void test_forms(void **state)
{
	static const struct { const char *text; enum fp_kind kind; } ok[] = {
		{ "sha256:" HEX, FP_CERT }, { "SHA256:" HEX, FP_CERT },
		{ "fingerprint:" HEX, FP_CERT }, { HEX, FP_CERT }, { HEX_COLONS, FP_CERT },
		{ "sha256 Fingerprint=" HEX_COLONS, FP_CERT }, { "spki:" HEX, FP_SPKI },
		{ "  spki:" HEX, FP_SPKI },
	};
	struct pin pin;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(pins_parse(ok[i].text, &pin, why, sizeof(why)), 0);
		assert_int_equal(pin.kind, ok[i].kind);
		assert_int_equal(pin.digest[0], 0x9f);
		assert_int_equal(pin.digest[31], 0x08);
		assert_string_equal(pin.text + (ok[i].kind == FP_SPKI ? 5 : 7), HEX);
	}
}

static void test_errors(void **state)
{
	static const char *const other_kinds[] = {
		"cn:web-1", "dns:a.example", "uri:spiffe://x/y", "ou:edge", "md5:" HEX,
	};
	struct pin pin;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(other_kinds) / sizeof(other_kinds[0]); i++) {
		assert_int_equal(pins_parse(other_kinds[i], &pin, why, sizeof(why)), -1);
		assert_string_equal(why, "expected sha256:HEX or spki:HEX");
	}
	assert_int_equal(pins_parse("sha256:9f86", &pin, why, sizeof(why)), -1);
	assert_true(strlen(why) > 0);
	assert_int_equal(pins_parse("sha256:" HEX "00", &pin, why, sizeof(why)), -1);
	assert_int_equal(pins_parse("sha256:zz" HEX, &pin, why, sizeof(why)), -1);
	assert_int_equal(pins_parse("", &pin, why, sizeof(why)), -1);
}

static void test_match(void **state)
{
	struct pins *p = calloc(1, sizeof(*p) + 2 * sizeof(p->v[0]));
	struct x509_identity id;
	char why[256];

	(void)state;
	assert_non_null(p);
	memset(&id, 0, sizeof(id));
	assert_int_equal(pins_parse("spki:" HEX, &p->v[0], why, sizeof(why)), 0);
	p->n = 1;
	assert_null(pins_match(p, NULL));
	assert_null(pins_match(p, &id));
	memcpy(id.sha256, p->v[0].digest, sizeof(id.sha256));	/* a certificate digest */
	assert_null(pins_match(p, &id));			/* is no key pin */
	memcpy(id.spki_sha256, p->v[0].digest, sizeof(id.spki_sha256));
	assert_ptr_equal(pins_match(p, &id), &p->v[0]);
	assert_int_equal(pins_parse(HEX_COLONS, &p->v[1], why, sizeof(why)), 0);
	p->n = 2;
	memset(id.spki_sha256, 0, sizeof(id.spki_sha256));
	assert_ptr_equal(pins_match(p, &id), &p->v[1]);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
