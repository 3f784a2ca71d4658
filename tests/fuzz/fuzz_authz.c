/* fuzz_authz: the allow-rule parsers (shared/authz.c): the input as an
 * --allow-file (authz_load_file()), then each of its lines as a rule
 * (authz_add()) and as a value of one kind (authz_add_kind(), as
 * --allow-cn and the like pass it).
 *
 * Invariants: a file is all or nothing (a refused one adds no rule, an
 * accepted one adds one rule per line that is not blank or a comment); every
 * refusal has a NUL-terminated reason; an accepted rule matches a
 * certificate identity holding its own value (for "*.x" one label more, for
 * a "uri:p/" prefix rule something below p/), reports itself as "kind:value" with the
 * value as written (pins in lowercase hex), that text is accepted again and
 * means the same; and it does not match a name one byte longer (nor, for
 * a wildcard, two labels more). */
#include <ctype.h>
#include <strings.h>

#include "authz.h"
#include "fp.h"
#include "fuzz.h"
#include "x509.h"

#define ERRSZ 300

static const struct {
	const char *prefix;
	enum authz_kind kind;
	const char *name;
} kinds[] = {
	{ "cn:", AUTHZ_CN, "cn" }, { "dns:", AUTHZ_DNS, "dns" }, { "uri:", AUTHZ_URI, "uri" },
	{ "ou:", AUTHZ_OU, "ou" }, { "sha256:", AUTHZ_FINGERPRINT, "sha256" },
	{ "fingerprint:", AUTHZ_FINGERPRINT, "sha256" }, { "spki:", AUTHZ_SPKI, "spki" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* trim(s): s without white space around it (in place). */
static char *trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* match(set, kind, name, sha, out): does set allow an identity whose only
 * name of that kind is name (or whose digests are sha)? */
static int match(const struct authz *set, enum authz_kind kind, const char *name,
    const unsigned char *sha, char *out)
{
	struct x509_identity id;
	const char *names[1] = { name };

	memset(&id, 0, sizeof(id));
	id.subject = id.issuer = id.serial = "";
	switch (kind) {
	case AUTHZ_CN:		id.cn = names; id.n_cn = 1; break;
	case AUTHZ_OU:		id.ou = names; id.n_ou = 1; break;
	case AUTHZ_DNS:		id.dns = names; id.n_dns = 1; break;
	case AUTHZ_URI:		id.uri = names; id.n_uri = 1; break;
	case AUTHZ_FINGERPRINT:
	case AUTHZ_SPKI:
		memcpy(id.sha256, sha, FP_LEN);
		memcpy(id.spki_sha256, sha, FP_LEN);
		break;
	}
	return authz_match(set, &id, out, AUTHZ_RULE_TEXT_MAX);
}

/* check_rule(kind, name, value): a rule of kind (called name in its text)
 * with value (trimmed) was accepted: its meaning, its text and the text read
 * back. */
static void check_rule(enum authz_kind kind, const char *name, const char *value)
{
	char *out = malloc(AUTHZ_RULE_TEXT_MAX), *want, *longer, err[ERRSZ];
	unsigned char sha[FP_LEN] = { 0 };
	struct authz *one = authz_new(), *again = authz_new();
	const char *probe = value, *why;
	size_t n = strlen(value);
	enum fp_kind fk;

	CHECK(out != NULL && one != NULL && again != NULL, "out of memory");
	CHECK(authz_add_kind(one, kind, value, err, sizeof(err)) == 0,
	    "authz_add took %s:%s, authz_add_kind refuses it: %s", name, value, err);
	want = malloc(strlen(name) + n + 2);
	longer = malloc(n + 8);
	CHECK(want != NULL && longer != NULL, "out of memory");
	sprintf(want, "%s:%s", name, value);
	if (kind == AUTHZ_FINGERPRINT || kind == AUTHZ_SPKI) {
		char t[FP_TEXT_MAX];

		CHECK(fp_parse(value, &fk, sha, &why) == 0, "pin %s: %s", value, why);
		strcpy(want, fp_text(kind == AUTHZ_SPKI ? FP_SPKI : FP_CERT, sha, t));
	} else if (kind == AUTHZ_DNS && value[0] == '*') {
		sprintf(longer, "a%s", value + 1);	/* "*.x" matches "a.x" */
		probe = longer;
	} else if (kind == AUTHZ_URI && n >= 2 && value[n - 2] == '/' && value[n - 1] == '*') {
		sprintf(longer, "%.*sa", (int)(n - 1), value);	/* prefix "p/": "p/a" */
		probe = longer;
	}
	CHECK(match(one, kind, probe, sha, out) == AUTHZ_MATCHED, "%s does not match %s",
	    want, probe);
	CHECK(fuzz_cstr_in(out, AUTHZ_RULE_TEXT_MAX), "rule text not terminated");
	CHECK(strcmp(out, want) == 0, "rule %s reports itself as %s", want, out);
	CHECK(authz_add(again, out, err, sizeof(err)) == 0, "%s (from %s) refused: %s", out,
	    want, err);
	CHECK(match(again, kind, probe, sha, out) == AUTHZ_MATCHED && strcmp(out, want) == 0,
	    "%s reads back as %s", want, out);

	/* Another name: one byte more; for a wildcard two labels; for a URI
	 * prefix the prefix itself. */
	if (kind != AUTHZ_FINGERPRINT && kind != AUTHZ_SPKI) {
		if (kind == AUTHZ_DNS && probe == longer)
			sprintf(longer, "a.a%s", value + 1);
		else if (probe == longer)
			sprintf(longer, "%.*s", (int)(n - 1), value);
		else
			sprintf(longer, "%sx", value);
		CHECK(match(one, kind, longer, sha, out) == AUTHZ_DENIED && out[0] == '\0',
		    "%s matches %s", want, longer);
	}
	free(out);
	free(want);
	free(longer);
	authz_free(one);
	authz_free(again);
}

/* one_line(line): authz_add() and authz_add_kind() of one line. */
static void one_line(const char *line, unsigned salt)
{
	struct authz *set = authz_new();
	char *err = malloc(ERRSZ), *copy = strdup(line), *v;
	size_t i;

	CHECK(set != NULL && err != NULL && copy != NULL, "out of memory");
	if (authz_add(set, line, err, ERRSZ) != 0) {
		CHECK(fuzz_cstr_in(err, ERRSZ) && err[0] != '\0', "refused without a reason");
		CHECK(authz_count(set) == 0, "refused but added");
	} else {
		CHECK(authz_count(set) == 1, "one rule, count %zu", authz_count(set));
		v = trim(copy);
		for (i = 0; i < NKINDS; i++)
			if (strncasecmp(v, kinds[i].prefix, strlen(kinds[i].prefix)) == 0)
				break;
		if (i < NKINDS)
			check_rule(kinds[i].kind, kinds[i].name, trim(v + strlen(kinds[i].prefix)));
		else	/* bare hex or openssl's "sha256 Fingerprint=" */
			check_rule(AUTHZ_FINGERPRINT, "sha256", v);
	}
	authz_free(set);

	/* The line as the value of one kind, as a flag gives it. */
	set = authz_new();
	CHECK(set != NULL, "out of memory");
	i = salt % NKINDS;
	if (authz_add_kind(set, kinds[i].kind, line, err, ERRSZ) != 0)
		CHECK(fuzz_cstr_in(err, ERRSZ) && err[0] != '\0', "refused without a reason");
	else if (kinds[i].kind != AUTHZ_FINGERPRINT && kinds[i].kind != AUTHZ_SPKI)
		check_rule(kinds[i].kind, kinds[i].name, trim(strcpy(copy, line)));
	authz_free(set);
	free(copy);
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *text = fuzz_str(data, size), *line, *next, *err = malloc(ERRSZ);
	struct authz *set = authz_new();
	size_t rules = 0;
	unsigned salt = 0;
	int fd, r;

	CHECK(set != NULL && err != NULL, "out of memory");
	fd = fuzz_file(data, size, path, sizeof(path));
	r = authz_load_file(set, path, err, ERRSZ);
	close(fd);
	CHECK(r == 0 || (fuzz_cstr_in(err, ERRSZ) && err[0] != '\0' && authz_count(set) == 0),
	    "a refused file left %zu rules", authz_count(set));
	for (line = text; line != NULL; line = next) {
		char *t;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		one_line(line, salt++);
		t = trim(line);
		if (t[0] != '\0' && t[0] != '#')
			rules++;
	}
	if (r == 0)
		CHECK(authz_count(set) == rules && memchr(data, '\0', size) == NULL,
		    "%zu rules from %zu lines", authz_count(set), rules);
	authz_free(set);
	free(text);
	free(err);
	return 0;
}
