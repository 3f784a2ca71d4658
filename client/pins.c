/* pins: the client's server pins. */
#include "pins.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "x509.h"

int pins_parse(const char *text, struct pin *pin, char *why, size_t whysz)
{
	static const char alias[] = "fingerprint:";
	char buf[512];
	const char *s = text, *colon, *reason;
	size_t i;

	while (isspace((unsigned char)*s))
		s++;
	if (strncasecmp(s, alias, sizeof(alias) - 1) == 0) {
		snprintf(buf, sizeof(buf), "sha256:%s", s + sizeof(alias) - 1);
		s = buf;
	}
	/* Another kind of rule (cn:, dns:, ...) is no pin; a colon after two
	 * hex digits is part of one. */
	if ((colon = strchr(s, ':')) != NULL && strncasecmp(s, "sha256:", 7) != 0 &&
	    strncasecmp(s, "spki:", 5) != 0 && strncasecmp(s, "sha256 Fingerprint=", 19) != 0) {
		for (i = 0; s + i < colon && isxdigit((unsigned char)s[i]); i++)
			;
		if (s + i < colon || i != 2) {
			snprintf(why, whysz, "expected sha256:HEX or spki:HEX");
			return -1;
		}
	}
	if (fp_parse(s, &pin->kind, pin->digest, &reason) < 0) {
		snprintf(why, whysz, "%s", reason);
		return -1;
	}
	fp_text(pin->kind, pin->digest, pin->text);
	return 0;
}

const struct pin *pins_match(const struct pins *p, const struct x509_identity *id)
{
	int i;

	if (id == NULL)
		return NULL;
	for (i = 0; i < p->n; i++)
		if (memcmp(p->v[i].digest, p->v[i].kind == FP_SPKI ? id->spki_sha256 : id->sha256,
		    FP_LEN) == 0)
			return &p->v[i];
	return NULL;
}
