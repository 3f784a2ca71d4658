/* test_authz: the allow-lists of shared/authz.{h,c} -- every rule kind
 * allowing and denying, DNS wildcard and URI prefix edges, case rules, the
 * allow-file (comments, errors with line numbers, all or nothing), CIDR
 * networks for IPv4, IPv6 and IPv4-mapped peers, and what an empty list
 * means.  Identities are built by hand; test_x509 covers reading them from
 * certificates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "authz.h"
#include "x509.h"

/* An identity with one name of each kind unless the test changes it. */
struct fixture {
	struct x509_identity id;
	const char *cn[2], *ou[2], *dns[3], *uri[2], *ip[1];
};

static void fixture_init(struct fixture *f)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	f->cn[0] = "web-1";
	f->ou[0] = "edge";
	f->ou[1] = "Ops Team";
	f->dns[0] = "web-1.example.com";
	f->dns[1] = "a.example.com";
	f->uri[0] = "spiffe://corp/edge/a";
	f->ip[0] = "10.0.0.5";
	f->id.subject = "/O=Example/OU=edge/OU=Ops Team/CN=web-1";
	f->id.issuer = "/CN=Test Root";
	f->id.serial = "01";
	f->id.cn = f->cn;
	f->id.n_cn = 1;
	f->id.ou = f->ou;
	f->id.n_ou = 2;
	f->id.dns = f->dns;
	f->id.n_dns = 2;
	f->id.uri = f->uri;
	f->id.n_uri = 1;
	f->id.ip = f->ip;
	f->id.n_ip = 1;
	for (i = 0; i < X509_SHA256_LEN; i++) {
		f->id.sha256[i] = (unsigned char)i;			/* 00 01 .. 1f */
		f->id.spki_sha256[i] = (unsigned char)(0xff - i);	/* ff fe .. e0 */
	}
}

static const char cert_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char spki_hex[] =
    "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0";

/* A set holding the one rule. */
static struct authz *one(const char *rule)
{
	struct authz *set = authz_new();
	char err[256] = "";

	assert_non_null(set);
	if (authz_add(set, rule, err, sizeof(err)) != 0)
		fail_msg("%s: %s", rule, err);
	return set;
}

/* authz_match of the one rule against the identity holding name (of the
 * rule's kind) as its only name of that kind; returns the verdict. */
static int match_name(const char *rule, const char *name)
{
	struct fixture f;
	struct authz *set = one(rule);
	char out[AUTHZ_RULE_TEXT_MAX];
	int r;

	fixture_init(&f);
	if (strncmp(rule, "dns:", 4) == 0) {
		f.dns[0] = name;
		f.id.n_dns = 1;
	} else if (strncmp(rule, "uri:", 4) == 0) {
		f.uri[0] = name;
	} else if (strncmp(rule, "cn:", 3) == 0) {
		f.cn[0] = name;
	} else if (strncmp(rule, "ou:", 3) == 0) {
		f.ou[0] = name;
		f.id.n_ou = 1;
	}
	r = authz_match(set, &f.id, out, sizeof(out));
	if (r == AUTHZ_MATCHED)
		assert_string_equal(out, rule);
	else
		assert_string_equal(out, "");
	authz_free(set);
	return r;
}

/* The error authz_add gives for rule (which must be refused). */
static const char *add_error(const char *rule)
{
	static char err[512];
	struct authz *set = authz_new();

	err[0] = '\0';
	assert_int_equal(authz_add(set, rule, err, sizeof(err)), -1);
	assert_int_equal(authz_count(set), 0);
	assert_true(err[0] != '\0');
	authz_free(set);
	return err;
}

static void test_empty_set_allows_any(void **state)
{
	struct authz *set = authz_new();
	struct fixture f;
	char out[64];

	(void)state;
	fixture_init(&f);
	assert_int_equal(authz_count(set), 0);
	assert_int_equal(authz_only_pins(set), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_NO_RULES);
	assert_string_equal(out, "any");
	/* no certificate (a resumed session): still "any" */
	assert_int_equal(authz_match(set, NULL, out, sizeof(out)), AUTHZ_NO_RULES);
	assert_int_equal(authz_match(set, &f.id, NULL, 0), AUTHZ_NO_RULES);
	authz_free(set);
	authz_free(NULL);
}

static void test_cn(void **state)
{
	(void)state;
	assert_int_equal(match_name("cn:web-1", "web-1"), AUTHZ_MATCHED);
	assert_int_equal(match_name("cn:web-1", "web-2"), AUTHZ_DENIED);
	assert_int_equal(match_name("cn:web-1", "Web-1"), AUTHZ_DENIED);	/* exact */
	assert_int_equal(match_name("cn:web-1", "web-1.example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("cn:web", "web-1"), AUTHZ_DENIED);
	assert_int_equal(match_name("cn:caf\xc3\xa9", "caf\xc3\xa9"), AUTHZ_MATCHED);
	assert_int_equal(match_name("cn:Web Server 1", "Web Server 1"), AUTHZ_MATCHED);
}

/* A subject with several CNs is refused whenever a cn: rule is in the set,
 * whichever CN the rule names and whatever else matches (issue 13): which
 * CN a client "is" would be anyone's guess. */
static void test_cn_several_refused(void **state)
{
	struct authz *set = one("cn:second");
	struct fixture f;
	char err[256], out[64];

	(void)state;
	fixture_init(&f);
	assert_int_equal(authz_several_cns(set, &f.id), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	f.cn[1] = "second";
	f.id.n_cn = 2;
	assert_int_equal(authz_several_cns(set, &f.id), 1);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	assert_string_equal(out, "");
	/* the first CN, or another rule that matches, does not help */
	assert_int_equal(authz_add(set, "cn:web-1", err, sizeof(err)), 0);
	assert_int_equal(authz_add(set, "dns:web-1.example.com", err, sizeof(err)), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	assert_int_equal(authz_several_cns(set, NULL), 0);
	authz_free(set);
	/* without a cn: rule, several CNs are nobody's business */
	set = one("dns:web-1.example.com");
	assert_int_equal(authz_several_cns(set, &f.id), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	authz_free(set);
}

static void test_ou(void **state)
{
	struct authz *set = one("ou:Ops Team");
	struct fixture f;
	char out[64];

	(void)state;
	assert_int_equal(match_name("ou:edge", "edge"), AUTHZ_MATCHED);
	assert_int_equal(match_name("ou:edge", "Edge"), AUTHZ_DENIED);
	assert_int_equal(match_name("ou:edge", "edge2"), AUTHZ_DENIED);
	fixture_init(&f);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);	/* 2nd OU */
	assert_string_equal(out, "ou:Ops Team");
	f.id.n_ou = 1;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	authz_free(set);
}

static void test_dns_exact_ignores_case(void **state)
{
	(void)state;
	assert_int_equal(match_name("dns:web-1.example.com", "web-1.example.com"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:web-1.example.com", "WEB-1.Example.COM"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:WEB-1.example.com", "web-1.example.com"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:web-1.example.com", "web-2.example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:web-1.example.com", "web-1.example.com.evil"),
	    AUTHZ_DENIED);
	assert_int_equal(match_name("dns:web-1.example.com", "x.web-1.example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:example.com", "a.example.com"), AUTHZ_DENIED);
}

static void test_dns_wildcard_is_one_label(void **state)
{
	(void)state;
	assert_int_equal(match_name("dns:*.example.com", "a.example.com"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:*.example.com", "A.EXAMPLE.COM"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:*.Example.Com", "web-1.example.com"), AUTHZ_MATCHED);
	assert_int_equal(match_name("dns:*.example.com", "a.b.example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:*.example.com", "example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:*.example.com", ".example.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:*.example.com", "aexample.com"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:*.example.com", "a.example.com.evil"), AUTHZ_DENIED);
	assert_int_equal(match_name("dns:*.example.com", "a.notexample.com"), AUTHZ_DENIED);
	/* a name that is itself a wildcard is one label too */
	assert_int_equal(match_name("dns:*.example.com", "*.example.com"), AUTHZ_MATCHED);
	/* a wildcard in the certificate means nothing to an exact rule */
	assert_int_equal(match_name("dns:a.example.com", "*.example.com"), AUTHZ_DENIED);
}

static void test_dns_rule_syntax(void **state)
{
	(void)state;
	assert_string_equal(add_error("dns:*.*.example.com"),
	    "a wildcard stands for the whole first label only (*.example.com)");
	assert_string_equal(add_error("dns:a*.example.com"),
	    "a wildcard stands for the whole first label only (*.example.com)");
	assert_string_equal(add_error("dns:web.*.com"),
	    "a wildcard stands for the whole first label only (*.example.com)");
	assert_string_equal(add_error("dns:*"),
	    "a wildcard stands for the whole first label only (*.example.com)");
	assert_string_equal(add_error("dns:*."), "empty label in DNS name");
	assert_string_equal(add_error("dns:a..b"), "empty label in DNS name");
	assert_string_equal(add_error("dns:example.com."), "empty label in DNS name");
	assert_string_equal(add_error("dns:web-1.example.com:443"),
	    "not a DNS name (letters, digits, '-', '.' only)");
	assert_string_equal(add_error("dns:"), "empty value");
	assert_string_equal(add_error("dns:   "), "empty value");
}

static void test_uri_exact(void **state)
{
	(void)state;
	assert_int_equal(match_name("uri:spiffe://corp/edge/a", "spiffe://corp/edge/a"),
	    AUTHZ_MATCHED);
	assert_int_equal(match_name("uri:spiffe://corp/edge/a", "spiffe://corp/edge/A"),
	    AUTHZ_DENIED);
	assert_int_equal(match_name("uri:spiffe://corp/edge/a", "spiffe://corp/edge/a/b"),
	    AUTHZ_DENIED);
	assert_int_equal(match_name("uri:spiffe://corp/edge/a", "spiffe://corp/edge/"),
	    AUTHZ_DENIED);
}

static void test_uri_prefix(void **state)
{
	static const char rule[] = "uri:spiffe://corp/edge/*";

	(void)state;
	assert_int_equal(match_name(rule, "spiffe://corp/edge/a"), AUTHZ_MATCHED);
	assert_int_equal(match_name(rule, "spiffe://corp/edge/a/b"), AUTHZ_MATCHED);
	assert_int_equal(match_name(rule, "spiffe://corp/edge"), AUTHZ_DENIED);
	assert_int_equal(match_name(rule, "spiffe://corp/edge/"), AUTHZ_DENIED);
	assert_int_equal(match_name(rule, "spiffe://corp/edgeX/a"), AUTHZ_DENIED);
	assert_int_equal(match_name(rule, "spiffe://corp/edg"), AUTHZ_DENIED);
	assert_int_equal(match_name(rule, "spiffe://corp/other/a"), AUTHZ_DENIED);
	assert_int_equal(match_name(rule, "spiffe://CORP/edge/a"), AUTHZ_DENIED);
	/* '*' literally in a name is nothing special */
	assert_int_equal(match_name(rule, "spiffe://corp/edge/*"), AUTHZ_MATCHED);
	assert_int_equal(match_name("uri:spiffe://corp/*", "spiffe://corp/edge/a"), AUTHZ_MATCHED);
	assert_int_equal(match_name("uri:spiffe://corp/*", "spiffe://corporate/a"), AUTHZ_DENIED);
}

static void test_uri_rule_syntax(void **state)
{
	(void)state;
	assert_string_equal(add_error("uri:spiffe://corp/*/a"),
	    "'*' only at the end, after a '/' (spiffe://corp/edge/*)");
	assert_string_equal(add_error("uri:spiffe://corp/edge*"),
	    "'*' only at the end, after a '/' (spiffe://corp/edge/*)");
	assert_string_equal(add_error("uri:corp/edge/a"),
	    "not a URI (expected scheme:..., e.g. spiffe://corp/edge/a)");
	assert_string_equal(add_error("uri:spiffe://corp/a b"), "space in URI");
	assert_string_equal(add_error("uri:spiffe://corp/a\tb"), "control character in value");
}

static void test_fingerprint(void **state)
{
	static const char *const forms[] = {
		"sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"SHA256:000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"sha256:00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:"
		"17:18:19:1A:1B:1C:1D:1E:1F",
		"fingerprint:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"fingerprint:sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"sha256 Fingerprint=00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:"
		"14:15:16:17:18:19:1A:1B:1C:1D:1E:1F",
		"  sha256: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f  ",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:"
		"1A:1B:1C:1D:1E:1F",
	};
	struct fixture f;
	char out[AUTHZ_RULE_TEXT_MAX], want[128];
	size_t i;

	(void)state;
	snprintf(want, sizeof(want), "sha256:%s", cert_hex);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct authz *set = one(forms[i]);

		fixture_init(&f);
		assert_int_equal(authz_only_pins(set), 1);
		assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
		assert_string_equal(out, want);		/* canonical, whatever the input */
		f.id.sha256[31] ^= 1;
		assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
		/* the key's digest is not the certificate's */
		fixture_init(&f);
		memcpy(f.id.spki_sha256, f.id.sha256, X509_SHA256_LEN);
		memset(f.id.sha256, 0, X509_SHA256_LEN);
		assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
		authz_free(set);
	}
}

static void test_spki(void **state)
{
	struct authz *set = authz_new();
	struct fixture f;
	char out[AUTHZ_RULE_TEXT_MAX], want[128], err[256];

	(void)state;
	fixture_init(&f);
	snprintf(want, sizeof(want), "spki:%s", spki_hex);
	assert_int_equal(authz_add(set, want, err, sizeof(err)), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, want);
	f.id.spki_sha256[0] = 0;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	authz_free(set);

	/* --allow-spki VALUE: bare hex, or with its own prefix */
	set = authz_new();
	fixture_init(&f);
	assert_int_equal(authz_add_kind(set, AUTHZ_SPKI, spki_hex, err, sizeof(err)), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, want);
	assert_int_equal(authz_add_kind(set, AUTHZ_SPKI, want, err, sizeof(err)), 0);
	assert_int_equal(authz_count(set), 2);
	authz_free(set);
}

static void test_pin_kinds_not_mixed(void **state)
{
	struct authz *set = authz_new();
	char rule[160], err[256];

	(void)state;
	snprintf(rule, sizeof(rule), "fingerprint:spki:%s", spki_hex);
	assert_string_equal(add_error(rule),
	    "a key pin (spki:) where a certificate fingerprint is expected");
	snprintf(rule, sizeof(rule), "spki:%s", spki_hex);
	assert_int_equal(authz_add_kind(set, AUTHZ_FINGERPRINT, rule, err, sizeof(err)), -1);
	assert_string_equal(err, "a key pin (spki:) where a certificate fingerprint is expected");
	snprintf(rule, sizeof(rule), "sha256:%s", cert_hex);
	assert_int_equal(authz_add_kind(set, AUTHZ_SPKI, rule, err, sizeof(err)), -1);
	assert_string_equal(err,
	    "a certificate fingerprint (sha256:) where a key pin (spki:) is expected");
	assert_int_equal(authz_count(set), 0);
	authz_free(set);

	/* fp_parse's reasons come through */
	assert_string_equal(add_error("sha256:0001"),
	    "too short for a SHA-256 fingerprint (64 hex digits)");
	/* bare hex that is not a fingerprint is not taken for one */
	assert_string_equal(add_error("cafe"),
	    "expected KIND:VALUE, e.g. cn:web-1 or dns:*.example.com");
	assert_string_equal(add_error("00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:"
	    "13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:20"), "unknown rule kind \"00:\" (expected "
	    "cn:, dns:, uri:, ou:, sha256:, fingerprint: or spki:)");
	assert_string_equal(add_error("0001020304050607:08090a0b0c0d0e0f101112131415161718191a1b"
	    "1c1d1e1f"), "not a hex digit");
	assert_string_equal(add_error("spki:zz"), "not a hex digit");
}

static void test_add_kind(void **state)
{
	struct authz *set = authz_new();
	struct fixture f;
	char out[AUTHZ_RULE_TEXT_MAX], err[256];

	(void)state;
	fixture_init(&f);
	assert_int_equal(authz_add_kind(set, AUTHZ_CN, "nobody", err, sizeof(err)), 0);
	assert_int_equal(authz_add_kind(set, AUTHZ_URI, "spiffe://corp/edge/*", err, sizeof(err)), 0);
	assert_int_equal(authz_add_kind(set, AUTHZ_DNS, "*.example.com", err, sizeof(err)), 0);
	assert_int_equal(authz_add_kind(set, AUTHZ_OU, "edge", err, sizeof(err)), 0);
	assert_int_equal(authz_count(set), 4);
	assert_int_equal(authz_only_pins(set), 0);
	/* the first matching rule, in the order added */
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "uri:spiffe://corp/edge/*");
	f.id.n_uri = 0;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "dns:*.example.com");
	f.id.n_dns = 0;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "ou:edge");
	f.id.n_ou = 0;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	assert_string_equal(out, "");
	/* no certificate matches no rule */
	assert_int_equal(authz_match(set, NULL, out, sizeof(out)), AUTHZ_DENIED);
	/* a name is matched only by its own kind of rule */
	f.cn[0] = "a.example.com";
	f.ou[0] = "spiffe://corp/edge/a";
	f.id.n_ou = 1;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	assert_int_equal(authz_add_kind(set, AUTHZ_CN, "", err, sizeof(err)), -1);
	assert_string_equal(err, "empty value");
	authz_free(set);
}

static void test_rule_text_forms(void **state)
{
	struct authz *set = authz_new();
	struct fixture f;
	char out[AUTHZ_RULE_TEXT_MAX], small[8], err[256];

	(void)state;
	fixture_init(&f);
	/* kind case-insensitive, spaces around the value dropped */
	assert_int_equal(authz_add(set, "  DNS:  *.example.com \r\n", err, sizeof(err)), 0);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "dns:*.example.com");
	/* a short buffer gets the text truncated; NULL gets nothing */
	assert_int_equal(authz_match(set, &f.id, small, sizeof(small)), AUTHZ_MATCHED);
	assert_string_equal(small, "dns:*.e");
	assert_int_equal(authz_match(set, &f.id, NULL, 0), AUTHZ_MATCHED);
	authz_free(set);

	assert_string_equal(add_error("email:a@b"),
	    "unknown rule kind \"email:\" (expected cn:, dns:, uri:, ou:, sha256:, "
	    "fingerprint: or spki:)");
	assert_string_equal(add_error("web-1"),
	    "expected KIND:VALUE, e.g. cn:web-1 or dns:*.example.com");
	assert_string_equal(add_error(""), "expected KIND:VALUE, e.g. cn:web-1 or dns:*.example.com");
	assert_string_equal(add_error("cn:"), "empty value");
	assert_string_equal(add_error("cn:a\x01" "b"), "control character in value");
}

static void test_bounds(void **state)
{
	struct authz *set = authz_new();
	char rule[AUTHZ_VALUE_MAX + 16], err[256];
	size_t i;

	(void)state;
	memset(rule, 'a', sizeof(rule));
	memcpy(rule, "cn:", 3);
	rule[3 + AUTHZ_VALUE_MAX] = '\0';
	assert_int_equal(authz_add(set, rule, err, sizeof(err)), 0);
	rule[3 + AUTHZ_VALUE_MAX] = 'a';
	rule[4 + AUTHZ_VALUE_MAX] = '\0';
	assert_int_equal(authz_add(set, rule, err, sizeof(err)), -1);
	assert_string_equal(err, "value too long");
	for (i = 1; i < AUTHZ_MAX_RULES; i++) {
		snprintf(rule, sizeof(rule), "cn:user-%zu", i);
		assert_int_equal(authz_add(set, rule, err, sizeof(err)), 0);
	}
	assert_int_equal(authz_count(set), AUTHZ_MAX_RULES);
	assert_int_equal(authz_add(set, "cn:one-more", err, sizeof(err)), -1);
	assert_string_equal(err, "too many rules (at most 4096)");
	authz_free(set);
}

/* ---- allow-file ---- */

static char tmpdir[] = "/tmp/test_authz.XXXXXX";

static const char *write_file(const char *name, const char *text, size_t len)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	fclose(fp);
	return path;
}

/* Load text as an allow-file into a set with one rule already; returns the
 * result and leaves the message in err. */
static int load(const char *text, struct authz **out, char *err, size_t errsz)
{
	struct authz *set = one("cn:before");
	const char *path = write_file("allow.txt", text, strlen(text));
	int r = authz_load_file(set, path, err, errsz);

	if (r != 0)
		assert_int_equal(authz_count(set), 1);	/* all or nothing */
	*out = set;
	return r;
}

static void test_file_rules(void **state)
{
	static const char text[] =
	    "# who may send\n"
	    "\n"
	    "cn:web-1\n"
	    "   # indented comment\n"
	    "dns:*.example.com\r\n"
	    "\t\n"
	    "uri:spiffe://corp/edge/*\n"
	    "ou:Ops Team\n"
	    "sha256:00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:"
	    "18:19:1a:1b:1c:1d:1e:1f\n"
	    "fingerprint:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
	    "spki:FFFEFDFCFBFAF9F8F7F6F5F4F3F2F1F0EFEEEDECEBEAE9E8E7E6E5E4E3E2E1E0\n"
	    "  cn:last   ";			/* no newline at the end */
	struct authz *set;
	struct fixture f;
	char err[512], out[AUTHZ_RULE_TEXT_MAX];

	(void)state;
	assert_int_equal(load(text, &set, err, sizeof(err)), 0);
	assert_int_equal(authz_count(set), 9);
	fixture_init(&f);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "cn:web-1");
	f.cn[0] = "last";
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "dns:*.example.com");
	f.id.n_dns = 0;
	f.id.n_uri = 0;
	f.id.n_ou = 0;
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
	memset(f.id.sha256, 0, X509_SHA256_LEN);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "spki:fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0");
	memset(f.id.spki_sha256, 0, X509_SHA256_LEN);
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "cn:last");
	f.cn[0] = "before";
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_MATCHED);
	assert_string_equal(out, "cn:before");
	f.cn[0] = "nobody";
	assert_int_equal(authz_match(set, &f.id, out, sizeof(out)), AUTHZ_DENIED);
	authz_free(set);
}

static void test_file_pins_only(void **state)
{
	static const char text[] =
	    "# pins\nsha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
	    "spki:fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0\n";
	struct authz *set = authz_new();
	char err[256];
	const char *path = write_file("pins.txt", text, strlen(text));

	(void)state;
	assert_int_equal(authz_load_file(set, path, err, sizeof(err)), 0);
	assert_int_equal(authz_count(set), 2);
	assert_int_equal(authz_only_pins(set), 1);
	assert_int_equal(authz_add(set, "ou:edge", err, sizeof(err)), 0);
	assert_int_equal(authz_only_pins(set), 0);
	authz_free(set);
}

/* err must be "<tmpdir>/allow.txt<suffix>". */
static void assert_file_error(const char *err, const char *suffix)
{
	char want[1024];

	snprintf(want, sizeof(want), "%s/allow.txt%s", tmpdir, suffix);
	assert_string_equal(err, want);
}

static void test_file_errors_name_the_line(void **state)
{
	struct authz *set;
	char err[512], text[8192];

	(void)state;
	assert_int_equal(load("cn:a\n# c\n\nbogus\ncn:b\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ":4: expected KIND:VALUE, e.g. cn:web-1 or dns:*.example.com");
	authz_free(set);
	assert_int_equal(load("cn:a\nmail:x@y\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ":2: unknown rule kind \"mail:\" (expected cn:, dns:, uri:, ou:, "
	    "sha256:, fingerprint: or spki:)");
	authz_free(set);
	assert_int_equal(load("\n\n\nsha256:abcd\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ":4: too short for a SHA-256 fingerprint (64 hex digits)");
	authz_free(set);
	assert_int_equal(load("dns:*.example.com\ndns:a.*.example.com\n", &set, err,
	    sizeof(err)), -1);
	assert_file_error(err, ":2: a wildcard stands for the whole first label only "
	    "(*.example.com)");
	authz_free(set);
	assert_int_equal(load("uri:spiffe://corp/*/x\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ":1: '*' only at the end, after a '/' (spiffe://corp/edge/*)");
	authz_free(set);
	assert_int_equal(load("cn:\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ":1: empty value");
	authz_free(set);

	/* nothing but comments: an empty list would allow everyone */
	assert_int_equal(load("# nobody yet\n\n", &set, err, sizeof(err)), -1);
	assert_file_error(err, ": no rules (an empty allow-list would allow every certificate)");
	authz_free(set);
	assert_int_equal(load("", &set, err, sizeof(err)), -1);
	assert_file_error(err, ": no rules (an empty allow-list would allow every certificate)");
	authz_free(set);

	/* an over-long line */
	memset(text, 'a', sizeof(text));
	memcpy(text, "cn:x\ncn:", 8);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(load(text, &set, err, sizeof(err)), -1);
	assert_file_error(err, ":2: line too long (at most 2304 bytes)");
	authz_free(set);
}

static void test_file_nul_byte(void **state)
{
	struct authz *set = authz_new();
	char err[512];
	const char *path = write_file("allow.txt", "cn:a\ncn:b\0c\n", 12);

	(void)state;
	assert_int_equal(authz_load_file(set, path, err, sizeof(err)), -1);
	assert_file_error(err, ":2: NUL byte");
	assert_int_equal(authz_count(set), 0);
	authz_free(set);
}

static void test_file_unreadable(void **state)
{
	struct authz *set = authz_new();
	char err[512], want[512], path[300];

	(void)state;
	snprintf(want, sizeof(want), "%s/missing: No such file or directory", tmpdir);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(authz_load_file(set, path, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	snprintf(want, sizeof(want), "%s: is a directory, expected a file", tmpdir);
	assert_int_equal(authz_load_file(set, tmpdir, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	authz_free(set);
}

/* ---- networks ---- */

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') == NULL) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	}
	return ss;
}

/* The verdict for a peer at ip against nets, with the network it matched. */
static int peer(const struct authz_nets *nets, const char *ip, const char *want_net)
{
	struct sockaddr_storage ss = addr(ip);
	char out[AUTHZ_NET_TEXT_MAX];
	int r = authz_net_match(nets, (struct sockaddr *)&ss, out, sizeof(out));

	assert_string_equal(out, r == AUTHZ_DENIED ? "" : want_net != NULL ? want_net : "(none)");
	return r;
}

static struct authz_nets *nets_of(const char *const *cidrs, size_t n)
{
	struct authz_nets *nets = authz_nets_new();
	char err[256];
	size_t i;

	assert_non_null(nets);
	for (i = 0; i < n; i++)
		if (authz_net_add(nets, cidrs[i], err, sizeof(err)) != 0)
			fail_msg("%s: %s", cidrs[i], err);
	return nets;
}

static void test_net_empty_allows_any(void **state)
{
	struct authz_nets *nets = authz_nets_new();

	(void)state;
	assert_int_equal(authz_net_count(nets), 0);
	assert_int_equal(peer(nets, "192.0.2.1", "any"), AUTHZ_NO_RULES);
	assert_int_equal(peer(nets, "2001:db8::1", "any"), AUTHZ_NO_RULES);
	authz_nets_free(nets);
	authz_nets_free(NULL);
}

static void test_net_ipv4(void **state)
{
	static const char *const cidrs[] = { "10.0.0.0/8", "192.168.1.0/24", "203.0.113.7",
	    "172.16.0.0/12", " 198.51.100.128/25 " };
	struct authz_nets *nets = nets_of(cidrs, 5);

	(void)state;
	assert_int_equal(authz_net_count(nets), 5);
	assert_int_equal(peer(nets, "10.0.0.1", "10.0.0.0/8"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "10.255.255.255", "10.0.0.0/8"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "11.0.0.1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "9.255.255.255", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "192.168.1.77", "192.168.1.0/24"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "192.168.2.77", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "203.0.113.7", "203.0.113.7/32"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "203.0.113.8", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "172.31.255.1", "172.16.0.0/12"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "172.32.0.1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "198.51.100.200", "198.51.100.128/25"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "198.51.100.127", NULL), AUTHZ_DENIED);
	/* an IPv6 peer never matches an IPv4 network */
	assert_int_equal(peer(nets, "::a00:1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "2001:db8::1", NULL), AUTHZ_DENIED);
	authz_nets_free(nets);
}

static void test_net_ipv6(void **state)
{
	static const char *const cidrs[] = { "fd00::/8", "2001:db8:1::/48", "2001:db8::7",
	    "2001:db8:ff00::/41" };
	struct authz_nets *nets = nets_of(cidrs, 4);

	(void)state;
	assert_int_equal(peer(nets, "fd12:3456::1", "fd00::/8"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "fe80::1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "2001:db8:1:ffff::1", "2001:db8:1::/48"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "2001:db8:2::1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "2001:db8::7", "2001:db8::7/128"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "2001:db8::8", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "2001:db8:ff7f::1", "2001:db8:ff00::/41"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "2001:db8:ff80::1", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "10.0.0.1", NULL), AUTHZ_DENIED);
	authz_nets_free(nets);
}

/* An IPv4 client on an IPv6 socket arrives as ::ffff:a.b.c.d: it is an IPv4
 * peer, matched by IPv4 networks (and mapped ones, stored as IPv4), never by
 * an IPv6 one such as ::/0. */
static void test_net_ipv4_mapped(void **state)
{
	static const char *const v4[] = { "10.0.0.0/8" };
	static const char *const v6[] = { "::/0" };
	static const char *const mapped[] = { "::ffff:192.0.2.0/120" };
	struct authz_nets *nets = nets_of(v4, 1);

	(void)state;
	assert_int_equal(peer(nets, "::ffff:10.1.2.3", "10.0.0.0/8"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "::ffff:11.1.2.3", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "::10.1.2.3", NULL), AUTHZ_DENIED);	/* v4-compatible: no */
	authz_nets_free(nets);

	nets = nets_of(v6, 1);
	assert_int_equal(peer(nets, "2001:db8::1", "::/0"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "::ffff:10.1.2.3", NULL), AUTHZ_DENIED);
	assert_int_equal(peer(nets, "10.1.2.3", NULL), AUTHZ_DENIED);
	authz_nets_free(nets);

	nets = nets_of(mapped, 1);
	assert_int_equal(peer(nets, "192.0.2.9", "192.0.2.0/24"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "::ffff:192.0.2.9", "192.0.2.0/24"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "192.0.3.9", NULL), AUTHZ_DENIED);
	authz_nets_free(nets);
}

static void test_net_all_and_nothing(void **state)
{
	static const char *const cidrs[] = { "0.0.0.0/0" };
	struct authz_nets *nets = nets_of(cidrs, 1);
	struct sockaddr_un un;
	char out[AUTHZ_NET_TEXT_MAX];

	(void)state;
	assert_int_equal(peer(nets, "255.255.255.255", "0.0.0.0/0"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "::ffff:1.2.3.4", "0.0.0.0/0"), AUTHZ_MATCHED);
	assert_int_equal(peer(nets, "::1", NULL), AUTHZ_DENIED);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_int_equal(authz_net_match(nets, (struct sockaddr *)&un, out, sizeof(out)),
	    AUTHZ_DENIED);
	assert_int_equal(authz_net_match(nets, NULL, NULL, 0), AUTHZ_DENIED);
	authz_nets_free(nets);
}

static void test_net_syntax(void **state)
{
	static const struct {
		const char *cidr, *err;
	} bad[] = {
		{ "10.0.0.1/8", "host bits set after the /8 prefix (did you mean 10.0.0.0/8?)" },
		{ "fd00::1/8", "host bits set after the /8 prefix (did you mean fd00::/8?)" },
		{ "10.0.0.0/33", "bad prefix length (0 to 32)" },
		{ "fd00::/129", "bad prefix length (0 to 128)" },
		{ "10.0.0.0/", "bad prefix length (0 to 32)" },
		{ "10.0.0.0/x", "bad prefix length (0 to 32)" },
		{ "10.0.0.0/-1", "bad prefix length (0 to 32)" },
		{ "10.0.0.0/8/8", "bad prefix length (0 to 32)" },
		{ "10.0.0/8", "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)" },
		{ "example.com", "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)" },
		{ "", "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)" },
		{ "/8", "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)" },
		{ "fe80::1%eth0", "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)" },
	};
	struct authz_nets *nets = authz_nets_new();
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (authz_net_add(nets, bad[i].cidr, err, sizeof(err)) != -1)
			fail_msg("%s accepted", bad[i].cidr);
		assert_string_equal(err, bad[i].err);
	}
	assert_int_equal(authz_net_count(nets), 0);
	for (i = 0; i < AUTHZ_MAX_NETS; i++)
		assert_int_equal(authz_net_add(nets, "10.0.0.0/8", err, sizeof(err)), 0);
	assert_int_equal(authz_net_add(nets, "10.0.0.0/8", err, sizeof(err)), -1);
	assert_string_equal(err, "too many networks (at most 4096)");
	authz_nets_free(nets);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/allow.txt", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/pins.txt", tmpdir);
	unlink(path);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_set_allows_any),
		cmocka_unit_test(test_cn),
		cmocka_unit_test(test_cn_several_refused),
		cmocka_unit_test(test_ou),
		cmocka_unit_test(test_dns_exact_ignores_case),
		cmocka_unit_test(test_dns_wildcard_is_one_label),
		cmocka_unit_test(test_dns_rule_syntax),
		cmocka_unit_test(test_uri_exact),
		cmocka_unit_test(test_uri_prefix),
		cmocka_unit_test(test_uri_rule_syntax),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_spki),
		cmocka_unit_test(test_pin_kinds_not_mixed),
		cmocka_unit_test(test_add_kind),
		cmocka_unit_test(test_rule_text_forms),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_file_rules),
		cmocka_unit_test(test_file_pins_only),
		cmocka_unit_test(test_file_errors_name_the_line),
		cmocka_unit_test(test_file_nul_byte),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_net_empty_allows_any),
		cmocka_unit_test(test_net_ipv4),
		cmocka_unit_test(test_net_ipv6),
		cmocka_unit_test(test_net_ipv4_mapped),
		cmocka_unit_test(test_net_all_and_nothing),
		cmocka_unit_test(test_net_syntax),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
