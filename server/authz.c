/* authz: who may send -- identity rules and source networks; see authz.h. */
#include "authz.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "authz_text.h"
#include "fp.h"
#include "x509.h"

_Static_assert(FP_LEN == X509_SHA256_LEN, "fingerprints are SHA-256 digests");

#define LINE_MAX_BYTES (AUTHZ_VALUE_MAX + 256)	/* one allow-file line */
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

struct rule {
	enum authz_kind kind;
	int prefix;			/* uri: ends in '/' and '*' (vlen keeps the '/') */
	unsigned char digest[FP_LEN];	/* fingerprint, spki */
	char *text;			/* "kind:value", one allocation */
	const char *value;		/* inside text */
	size_t vlen;
};

struct authz {
	struct rule *rules;
	size_t n, cap;
};

static const struct {
	const char *prefix;
	enum authz_kind kind;
} kinds[] = {
	{ "cn:", AUTHZ_CN }, { "dns:", AUTHZ_DNS }, { "uri:", AUTHZ_URI },
	{ "ou:", AUTHZ_OU }, { "sha256:", AUTHZ_FINGERPRINT },
	{ "fingerprint:", AUTHZ_FINGERPRINT }, { "spki:", AUTHZ_SPKI },
};

static const char *kind_name(enum authz_kind kind)
{
	switch (kind) {
	case AUTHZ_CN:		return "cn";
	case AUTHZ_DNS:		return "dns";
	case AUTHZ_URI:		return "uri";
	case AUTHZ_OU:		return "ou";
	case AUTHZ_FINGERPRINT:	return "sha256";
	case AUTHZ_SPKI:	return "spki";
	}
	return "?";
}


/** authz_new(): an empty rule set, or NULL when out of memory. */
struct authz *authz_new(void)
{
	return calloc(1, sizeof(struct authz));
}

/** authz_free(set): free the set and its rules; NULL is fine. */
void authz_free(struct authz *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		free(set->rules[i].text);
	free(set->rules);
	free(set);
}

/* Drop the rules added after the first n. */
static void rules_truncate(struct authz *set, size_t n)
{
	while (set->n > n)
		free(set->rules[--set->n].text);
}

/* A DNS rule (v is len bytes and a NUL): letters, digits, '-' and '_' in
 * labels of 1 to 63 bytes, at most 253 in all; "*." may stand first for one
 * label. */
static int check_dns(const char *v, size_t len, const char **why)
{
	size_t label = 0, i = 0;

	if (len > DNS_NAME_MAX) {
		*why = "DNS name longer than 253 characters";
		return -1;
	}
	if (v[0] == '*') {
		if (v[1] != '.') {
			*why = "a wildcard stands for the whole first label only (*.example.com)";
			return -1;
		}
		i = 2;
	}
	for (; i <= len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '.' || c == '\0') {
			if (label == 0) {
				*why = "empty label in DNS name";
				return -1;
			}
			label = 0;
			continue;
		}
		if (c == '*') {
			*why = "a wildcard stands for the whole first label only (*.example.com)";
			return -1;
		}
		if (!isalnum(c) && c != '-' && c != '_') {
			*why = "not a DNS name (letters, digits, '-', '.' only)";
			return -1;
		}
		if (++label > DNS_LABEL_MAX) {
			*why = "DNS label longer than 63 characters";
			return -1;
		}
	}
	return 0;
}

/* A URI rule (v is len bytes and a NUL): "scheme:" then no spaces; '*'
 * only as the last character, after a '/'. */
static int check_uri(const char *v, size_t len, int *prefix, const char **why)
{
	size_t i;

	*prefix = len >= 2 && v[len - 2] == '/' && v[len - 1] == '*';
	if (!isalpha((unsigned char)v[0]))
		goto noscheme;
	for (i = 1; v[i] != ':'; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '+' && v[i] != '-' && v[i] != '.')
			goto noscheme;
	for (i = 0; i < len; i++) {
		if (isspace((unsigned char)v[i])) {
			*why = "space in URI";
			return -1;
		}
		if (v[i] == '*' && !(*prefix && i == len - 1)) {
			*why = "'*' only at the end, after a '/' (spiffe://corp/edge/*)";
			return -1;
		}
	}
	return 0;
noscheme:
	*why = "not a URI (expected scheme:..., e.g. spiffe://corp/edge/a)";
	return -1;
}

/* A fingerprint of the given kind; a value spelled as the other kind is
 * refused, since pinning a key where a certificate was meant (or the reverse)
 * would never match. */
static int parse_pin(enum authz_kind kind, const char *v, unsigned char digest[FP_LEN],
    const char **why)
{
	enum fp_kind fk;

	if (fp_parse(v, &fk, digest, why) != 0)
		return -1;
	if (kind == AUTHZ_FINGERPRINT && fk == FP_SPKI) {
		*why = "a key pin (spki:) where a certificate fingerprint is expected";
		return -1;
	}
	if (kind == AUTHZ_SPKI && strncasecmp(v, "sha256", 6) == 0) {
		*why = "a certificate fingerprint (sha256:) where a key pin (spki:) is expected";
		return -1;
	}
	return 0;
}

/* Add a rule whose value (len bytes at value, no surrounding space) is
 * checked here. */
static int add_rule(struct authz *set, enum authz_kind kind, const char *value, size_t len,
    char *err, size_t errsz)
{
	struct rule r;
	const char *why = NULL;
	char v[AUTHZ_VALUE_MAX + 1];
	size_t i, tlen;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	if (len == 0) {
		why = "empty value";
		goto bad;
	}
	if (len > AUTHZ_VALUE_MAX) {
		why = "value too long";
		goto bad;
	}
	memcpy(v, value, len);
	v[len] = '\0';
	for (i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			why = "control character in value";
			goto bad;
		}
	}
	switch (kind) {
	case AUTHZ_CN:
	case AUTHZ_OU:
		break;
	case AUTHZ_DNS:
		if (check_dns(v, len, &why) != 0)
			goto bad;
		break;
	case AUTHZ_URI:
		if (check_uri(v, len, &r.prefix, &why) != 0)
			goto bad;
		break;
	case AUTHZ_FINGERPRINT:
	case AUTHZ_SPKI:
		if (parse_pin(kind, v, r.digest, &why) != 0)
			goto bad;
		break;
	default:
		why = "unknown rule kind";
		goto bad;
	}
	if (set->n == AUTHZ_MAX_RULES) {
		snprintf(err, errsz, "too many rules (at most %d)", AUTHZ_MAX_RULES);
		return -1;
	}
	if (set->n == set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 16;
		struct rule *p = realloc(set->rules, cap * sizeof(*p));

		if (p == NULL)
			goto nomem;
		set->rules = p;
		set->cap = cap;
	}
	if (kind == AUTHZ_FINGERPRINT || kind == AUTHZ_SPKI) {
		char t[FP_TEXT_MAX];

		r.text = strdup(fp_text(kind == AUTHZ_SPKI ? FP_SPKI : FP_CERT, r.digest, t));
		if (r.text == NULL)
			goto nomem;
	} else {
		tlen = strlen(kind_name(kind)) + 1;
		r.text = malloc(tlen + len + 1);
		if (r.text == NULL)
			goto nomem;
		snprintf(r.text, tlen + len + 1, "%s:%s", kind_name(kind), v);
		r.value = r.text + tlen;
		r.vlen = len - (r.prefix ? 1 : 0);	/* without a prefix's '*' */
	}
	set->rules[set->n++] = r;
	return 0;

bad:
	snprintf(err, errsz, "%s", why);
	return -1;
nomem:
	snprintf(err, errsz, "out of memory");
	return -1;
}


/** authz_add_kind(set, kind, value, err, errsz): add one rule of a known kind
 *  (--allow-cn VALUE and the like; for AUTHZ_FINGERPRINT and AUTHZ_SPKI the
 *  value may carry its sha256:/spki: prefix, the other one is refused).
 *  Returns 0, or -1 with the reason in err. */
int authz_add_kind(struct authz *set, enum authz_kind kind, const char *value, char *err,
    size_t errsz)
{
	size_t len = strlen(value);
	const char *v = trim(value, &len);

	return add_rule(set, kind, v, len, err, errsz);
}

/** authz_add(set, rule, err, errsz): add one rule in text form ("cn:web-1",
 *  "dns:*.example.com", "sha256:AB:CD:...").  Returns 0, or -1 with the
 *  reason in err (without the rule: the caller names where it came from). */
int authz_add(struct authz *set, const char *rule, char *err, size_t errsz)
{
	static const char openssl_fp[] = "sha256 Fingerprint=";
	size_t len = strlen(rule), i, pl;
	const char *s = trim(rule, &len), *colon;

	if (len >= sizeof(openssl_fp) - 1 && strncasecmp(s, openssl_fp, sizeof(openssl_fp) - 1) == 0)
		return add_rule(set, AUTHZ_FINGERPRINT, s, len, err, errsz);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		pl = strlen(kinds[i].prefix);
		if (len >= pl && strncasecmp(s, kinds[i].prefix, pl) == 0) {
			size_t vlen = len - pl;
			const char *v = trim(s + pl, &vlen);

			return add_rule(set, kinds[i].kind, v, vlen, err, errsz);
		}
	}
	/* Bare hex, as fp.h reads it: a certificate fingerprint. */
	for (i = 0, pl = 0; i < len && (isxdigit((unsigned char)s[i]) || s[i] == ':'); i++)
		pl += s[i] != ':';
	if (i == len && pl == 2 * FP_LEN)
		return add_rule(set, AUTHZ_FINGERPRINT, s, len, err, errsz);
	colon = memchr(s, ':', len);
	if (colon != NULL && colon - s < 16)
		snprintf(err, errsz, "unknown rule kind \"%.*s\" (expected cn:, dns:, uri:, "
		    "ou:, sha256:, fingerprint: or spki:)", (int)(colon - s + 1), s);
	else
		snprintf(err, errsz, "expected KIND:VALUE, e.g. cn:web-1 or dns:*.example.com");
	return -1;
}

/** authz_load_file(set, path, err, errsz): add the rules of an allow-file:
 *  one rule per line, blank lines and lines starting with '#' skipped.  All
 *  or nothing: on error the set is as it was.  A file without a single rule
 *  is an error too, since an empty list would allow every certificate.
 *  Returns 0, or -1 with "path:line: reason" (or "path: reason") in err. */
int authz_load_file(struct authz *set, const char *path, char *err, size_t errsz)
{
	return authz_load_file_with(set, path, NULL, NULL, err, errsz);
}

int authz_load_file_with(struct authz *set, const char *path,
    int (*tagline)(const char *entry, void *arg, char *why, size_t whysz), void *arg,
    char *err, size_t errsz)
{
	char line[LINE_MAX_BYTES + 2], why[256];
	size_t before = set->n, len, added = 0;
	unsigned long lineno = 0;
	struct stat st;
	FILE *f;
	int c, eof = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: %s", path, S_ISDIR(st.st_mode) ?
		    "is a directory, expected a file" : "not a regular file");
		goto err;
	}
	while (!eof) {
		const char *s;

		lineno++;
		len = 0;
		for (;;) {
			c = getc(f);
			if (c == EOF) {
				eof = 1;
				break;
			}
			if (c == '\n')
				break;
			if (c == '\0') {
				snprintf(err, errsz, "%s:%lu: NUL byte", path, lineno);
				goto err;
			}
			if (len == LINE_MAX_BYTES) {
				snprintf(err, errsz, "%s:%lu: line too long (at most %d bytes)",
				    path, lineno, LINE_MAX_BYTES);
				goto err;
			}
			line[len++] = (char)c;
		}
		if (ferror(f)) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			goto err;
		}
		line[len] = '\0';
		s = trim(line, &len);
		if (len == 0 || s[0] == '#')
			continue;
		if (tagline != NULL && strncmp(s, "tag ", 4) == 0) {
			char entry[LINE_MAX_BYTES + 1];
			size_t tl = len - 4;
			const char *t = trim(s + 4, &tl);

			memcpy(entry, t, tl);
			entry[tl] = '\0';
			if (tagline(entry, arg, why, sizeof(why)) != 0) {
				snprintf(err, errsz, "%s:%lu: %s", path, lineno, why);
				goto err;
			}
			continue;
		}
		if (authz_add(set, s, why, sizeof(why)) != 0) {
			snprintf(err, errsz, "%s:%lu: %s", path, lineno, why);
			goto err;
		}
		added++;
	}
	if (added == 0) {
		snprintf(err, errsz, "%s: no rules (an empty allow-list would allow every "
		    "certificate)", path);
		goto err;
	}
	fclose(f);
	return 0;

err:
	rules_truncate(set, before);
	fclose(f);
	return -1;
}

/** authz_count(set): the number of rules. */
size_t authz_count(const struct authz *set)
{
	return set->n;
}

/** authz_only_pins(set): non-zero if the set has rules and every one is a
 *  fingerprint or spki pin (so a certificate that does not chain to the CA
 *  may still be allowed by it); 0 for an empty set. */
int authz_only_pins(const struct authz *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->rules[i].kind != AUTHZ_FINGERPRINT && set->rules[i].kind != AUTHZ_SPKI)
			return 0;
	return set->n > 0;
}

static int any_equal(const char *const *names, size_t n, const char *v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], v) == 0)
			return 1;
	return 0;
}

/* A DNS name against a rule, ignoring ASCII case; "*.rest" matches one
 * label (non-empty, without a dot) followed by ".rest". */
static int dns_match(const struct rule *r, const char *name)
{
	size_t nl, sl;
	const char *suffix;

	if (r->value[0] != '*')
		return strcasecmp(name, r->value) == 0;
	suffix = r->value + 1;			/* ".example.com" */
	sl = r->vlen - 1;
	nl = strlen(name);
	if (nl <= sl || strcasecmp(name + nl - sl, suffix) != 0)
		return 0;
	return memchr(name, '.', nl - sl) == NULL;
}

/* A URI against a rule: exactly, or for a prefix rule starting with the
 * rule up to its '/' with something after it. */
static int uri_match(const struct rule *r, const char *uri)
{
	if (!r->prefix)
		return strcmp(uri, r->value) == 0;
	return strncmp(uri, r->value, r->vlen) == 0 && uri[r->vlen] != '\0';
}

static int rule_match(const struct rule *r, const struct x509_identity *id)
{
	size_t i;

	switch (r->kind) {
	case AUTHZ_CN:
		return id->n_cn == 1 && strcmp(id->cn[0], r->value) == 0;
	case AUTHZ_OU:
		return any_equal(id->ou, id->n_ou, r->value);
	case AUTHZ_DNS:
		for (i = 0; i < id->n_dns; i++)
			if (dns_match(r, id->dns[i]))
				return 1;
		return 0;
	case AUTHZ_URI:
		for (i = 0; i < id->n_uri; i++)
			if (uri_match(r, id->uri[i]))
				return 1;
		return 0;
	case AUTHZ_FINGERPRINT:
		return memcmp(id->sha256, r->digest, FP_LEN) == 0;
	case AUTHZ_SPKI:
		return memcmp(id->spki_sha256, r->digest, FP_LEN) == 0;
	}
	return 0;
}

/** authz_several_cns(set, id): non-zero if set has a cn: rule and the
 *  subject of id holds more than one commonName: which of them a rule
 *  would mean is anyone's guess, so authz_match() refuses it outright. */
int authz_several_cns(const struct authz *set, const struct x509_identity *id)
{
	size_t i;

	if (id == NULL || id->n_cn < 2)
		return 0;
	for (i = 0; i < set->n; i++)
		if (set->rules[i].kind == AUTHZ_CN)
			return 1;
	return 0;
}

/** authz_match(set, id, rule_out, n): is the certificate with identity id
 *  allowed?  A certificate with several CNs is denied whatever it matches
 *  when the set has a cn: rule (authz_several_cns).  Returns AUTHZ_MATCHED with the first matching rule, in the
 *  order added, written as "kind:value" to rule_out ("dns:*.example.com",
 *  "sha256:<lowercase hex>"); AUTHZ_NO_RULES with "any" for an empty set;
 *  AUTHZ_DENIED with "" otherwise.  id NULL (no certificate, as on a resumed
 *  session) matches no rule.  rule_out may be NULL; AUTHZ_RULE_TEXT_MAX
 *  bytes always hold the text, a shorter buffer gets it truncated. */
int authz_match(const struct authz *set, const struct x509_identity *id, char *rule_out,
    size_t n)
{
	size_t i;

	if (set->n == 0) {
		set_out(rule_out, n, "any");
		return AUTHZ_NO_RULES;
	}
	for (i = 0; id != NULL && !authz_several_cns(set, id) && i < set->n; i++) {
		if (rule_match(&set->rules[i], id)) {
			set_out(rule_out, n, set->rules[i].text);
			return AUTHZ_MATCHED;
		}
	}
	set_out(rule_out, n, "");
	return AUTHZ_DENIED;
}
