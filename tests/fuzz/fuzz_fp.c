/* fuzz_fp: the fingerprint and SPKI pin parser (shared/fp.c) that reads
 * --pin-server, --allow-fingerprint, --allow-spki and allow-file pins.
 *
 * Invariants: an accepted fingerprint holds exactly 64 hex digits, and they
 * are the digest read, in order; its fp_text() form is "sha256:" or "spki:"
 * and 64 lowercase hex digits, and reads back as the same kind and digest; a
 * refusal has a reason. */
#include <ctype.h>
#include <strings.h>

#include "fp.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char *s = fuzz_str(data, size), text[FP_TEXT_MAX], digits[2 * FP_LEN + 1];
	unsigned char out[FP_LEN], again[FP_LEN];
	enum fp_kind kind, kind2;
	const char *why = NULL, *p;
	size_t i, n = 0;

	if (fp_parse(s, &kind, out, &why) != 0) {
		CHECK(why != NULL && why[0] != '\0', "refused without a reason");
		free(s);
		return 0;
	}
	CHECK(kind == FP_CERT || kind == FP_SPKI, "kind %d", (int)kind);

	/* After the prefix, only hex digits, colons and white space: the
	 * digits are the digest. */
	p = s;
	while (isspace((unsigned char)*p))
		p++;
	if (strncasecmp(p, "sha256 Fingerprint=", 19) == 0)
		p += 19;
	else if (strncasecmp(p, "sha256:", 7) == 0)
		p += 7;
	else if (strncasecmp(p, "spki:", 5) == 0)
		p += 5;
	for (; *p != '\0'; p++) {
		if (isxdigit((unsigned char)*p)) {
			CHECK(n < 2 * FP_LEN, "more than 64 hex digits accepted: %s", s);
			digits[n++] = (char)tolower((unsigned char)*p);
		} else {
			CHECK(*p == ':' || isspace((unsigned char)*p), "accepted '%c' in %s", *p, s);
		}
	}
	digits[n] = '\0';
	CHECK(n == 2 * FP_LEN, "%zu hex digits accepted: %s", n, s);
	for (i = 0; i < FP_LEN; i++)
		CHECK(digits[2 * i] == hex[out[i] >> 4] && digits[2 * i + 1] == hex[out[i] & 15],
		    "digest differs from the hex read at byte %zu: %s", i, s);

	fp_text(kind, out, text);
	CHECK(strlen(text) == (kind == FP_CERT ? 7u : 5u) + 2 * FP_LEN, "fp_text %s", text);
	CHECK(strcmp(text + strlen(text) - 2 * FP_LEN, digits) == 0, "fp_text %s", text);
	CHECK(fp_parse(text, &kind2, again, &why) == 0 && kind2 == kind &&
	    memcmp(again, out, FP_LEN) == 0, "fp_text %s does not read back", text);
	free(s);
	return 0;
}
