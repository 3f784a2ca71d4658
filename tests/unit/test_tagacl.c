/* test_tagacl: --allow-tag (server/tagacl.c): Fluentd's <match> patterns,
 * with the cases of Fluentd's own test_match.rb and more, the templates,
 * which client gets which patterns, and the errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagacl.h"
#include "x509_identity.h"

static int m(const char *pat, const char *tag)
{
	char why[128];
	struct tagacl_pat *p = tagacl_compile(pat, why, sizeof(why));
	int r;

	if (p == NULL)
		fail_msg("%s: %s", pat, why);
	r = tagacl_match(p, tag, strlen(tag));
	tagacl_pat_free(p);
	return r;
}

#define YES(p, t) do { if (!m(p, t)) fail_msg("%s should match %s", p, t); } while (0)
#define NO(p, t) do { if (m(p, t)) fail_msg("%s should not match %s", p, t); } while (0)

/* Fluentd's test/test_match.rb, case for case. */
static void test_fluentd_simple(void **state)
{
	(void)state;
	YES("a", "a");
	YES("a.b", "a.b");
	NO("a", "b");
	NO("a.b", "aab");
}

static void test_fluentd_wildcard(void **state)
{
	(void)state;
	YES("a*", "a"); YES("a*", "ab"); YES("a*", "abc");
	YES("*a", "a"); YES("*a", "ba"); YES("*a", "cba");
	YES("*a*", "a"); YES("*a*", "ba"); YES("*a*", "ac"); YES("*a*", "bac");
	NO("a*", "a.b"); NO("a*", "ab.c"); NO("a*", "ba"); NO("*a", "ab");
	YES("a.*", "a.b"); YES("a.*", "a.c"); NO("a.*", "ab");
	YES("a.*.c", "a.b.c"); YES("a.*.c", "a.c.c"); NO("a.*.c", "a.c");
}

static void test_fluentd_recursive_wildcard(void **state)
{
	(void)state;
	YES("a.**", "a"); NO("a.**", "ab"); NO("a.**", "abc"); YES("a.**", "a.b");
	NO("a.**", "ab.c"); NO("a.**", "ab.d.e");
	YES("a**", "a"); YES("a**", "ab"); YES("a**", "abc"); YES("a**", "a.b");
	YES("a**", "ab.c"); YES("a**", "ab.d.e");
	YES("**.a", "a"); NO("**.a", "ba"); NO("**.a", "c.ba"); YES("**.a", "b.a");
	YES("**.a", "cb.a"); YES("**.a", "d.e.a");
	YES("**a", "a"); YES("**a", "ba"); YES("**a", "c.ba"); YES("**a", "b.a");
	YES("**a", "cb.a"); YES("**a", "d.e.a");
}

static void test_fluentd_or(void **state)
{
	(void)state;
	YES("a.{b,c}", "a.b"); YES("a.{b,c}", "a.c"); NO("a.{b,c}", "a.d");
	YES("a.{b,c}.**", "a.b"); YES("a.{b,c}.**", "a.c"); NO("a.{b,c}.**", "a.d");
	NO("a.{b,c}.**", "a.cd");
	YES("a.{b.**,c}", "a.b"); YES("a.{b.**,c}", "a.b.c"); YES("a.{b.**,c}", "a.c");
	NO("a.{b.**,c}", "a.c.d");
}

/* Beyond Fluentd's own tests: what its regexes do. */
static void test_more(void **state)
{
	(void)state;
	YES("**", ""); YES("**", "a.b.c");
	YES("a.**.b", "a.b"); YES("a.**.b", "a.x.y.b"); NO("a.**.b", "ab"); NO("a.**.b", "a.xb");
	YES("{a,b}.*", "a.x"); YES("{a,b}.*", "b.y"); NO("{a,b}.*", "c.x");
	YES("{a,{b,c}.d}", "c.d"); NO("{a,{b,c}.d}", "b");
	YES("a\\*", "a*"); NO("a\\*", "ab");
	YES("a-b_c", "a-b_c"); NO("a-b_c", "a-b-c");
	YES("x}", "x}"); YES("x,y", "x,y");	/* outside a group: themselves */
	YES("a", "a\n");			/* Ruby's \Z */
	NO("a", "a\n\n");
	NO("**", "a\nb");			/* Ruby's . is not '\n' */
	YES("a.", "a");				/* a last '.' is dropped, as Fluentd drops it */
	NO("app.*", "other.app.x");
}

/* A pattern that backtracking would take forever on: linear here. */
static void test_no_backtracking(void **state)
{
	char tag[1025];

	(void)state;
	memset(tag, 'a', 1024);
	tag[1024] = '\0';
	NO("**a**a**a**a**a**a**a**a**a**a**b", tag);
	NO("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", tag);
}

static void test_pattern_errors(void **state)
{
	char why[128], big[TAGACL_PATTERN_MAX + 2];
	struct tagacl_pat *p;

	(void)state;
	assert_null(tagacl_compile("", why, sizeof(why)));
	assert_null(tagacl_compile("a.{b,c", why, sizeof(why)));
	assert_string_equal(why, "a { without its }");
	assert_null(tagacl_compile("a\\", why, sizeof(why)));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(tagacl_compile(big, why, sizeof(why)));
	memset(big, '{', 300);
	big[300] = '\0';
	assert_null(tagacl_compile(big, why, sizeof(why)));
	assert_non_null(p = tagacl_compile("{a,b,{c,d}}.**", why, sizeof(why)));
	tagacl_pat_free(p);
}

static const char *cn1[] = { "edge-01" }, *cn2[] = { "edge-02" }, *uri1[] = { "spiffe://prod/a" };
static const char *cnbad[] = { "bad name" };

static int allows(struct tagacl *acl, const struct x509_identity *id, const char *tag)
{
	struct tagacl_set *set;
	int r;

	assert_int_equal(tagacl_for(acl, id, &set), 0);
	r = tagacl_allows(set, tag, strlen(tag));
	tagacl_set_free(set);
	return r;
}

static void test_rules_and_templates(void **state)
{
	struct x509_identity a = { .cn = cn1, .n_cn = 1, .uri = uri1, .n_uri = 1 };
	struct x509_identity b = { .cn = cn2, .n_cn = 1 };
	struct x509_identity bad = { .cn = cnbad, .n_cn = 1 };
	struct tagacl *acl = tagacl_new();
	char why[256];

	(void)state;
	assert_int_equal(tagacl_add(acl, "cn:edge-01=app.**", why, sizeof(why)), 0);
	assert_int_equal(tagacl_add(acl, "* = edge.{cn}.**", why, sizeof(why)), 0);
	assert_int_equal(tagacl_add(acl, "uri:spiffe://prod/*={shared,common}.*", why,
	    sizeof(why)), 0);
	assert_int_equal(tagacl_count(acl), 3);
	assert_true(allows(acl, &a, "app.x.y"));
	assert_true(allows(acl, &a, "edge.edge-01.x"));
	assert_true(allows(acl, &a, "shared.x"));
	assert_false(allows(acl, &a, "edge.edge-02.x"));
	assert_false(allows(acl, &a, "audit"));
	assert_false(allows(acl, &b, "app.x"));
	assert_true(allows(acl, &b, "edge.edge-02"));
	assert_false(allows(acl, &b, "edge.edge-01.x"));
	assert_false(allows(acl, &b, "shared.x"));
	/* A value that is no tag makes its pattern allow nothing. */
	assert_false(allows(acl, &bad, "edge.bad name.x"));
	assert_false(allows(acl, &bad, "edge..x"));
	assert_false(allows(acl, NULL, "edge.x"));
	tagacl_free(acl);
}

static void test_entry_errors(void **state)
{
	struct tagacl *acl = tagacl_new();
	char why[256];

	(void)state;
	assert_int_equal(tagacl_add(acl, "cn:edge-01", why, sizeof(why)), -1);
	assert_string_equal(why, "not RULE=PATTERN");
	assert_int_equal(tagacl_add(acl, "=app.**", why, sizeof(why)), -1);
	assert_int_equal(tagacl_add(acl, "cn:edge-01=", why, sizeof(why)), -1);
	assert_int_equal(tagacl_add(acl, "cn:edge-01=app.{a,b", why, sizeof(why)), -1);
	assert_int_equal(tagacl_add(acl, "nope:x=app", why, sizeof(why)), -1);
	assert_int_equal(tagacl_add(acl, "dns:*.*.example=app", why, sizeof(why)), -1);
	assert_int_equal(tagacl_count(acl), 0);
	/* An openssl fingerprint holds a '=': the pattern is after the last one. */
	assert_int_equal(tagacl_add(acl, "sha256 Fingerprint=" "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"
	    "23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89=app.*", why, sizeof(why)), 0);
	tagacl_free(acl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fluentd_simple),
		cmocka_unit_test(test_fluentd_wildcard),
		cmocka_unit_test(test_fluentd_recursive_wildcard),
		cmocka_unit_test(test_fluentd_or),
		cmocka_unit_test(test_more),
		cmocka_unit_test(test_no_backtracking),
		cmocka_unit_test(test_pattern_errors),
		cmocka_unit_test(test_rules_and_templates),
		cmocka_unit_test(test_entry_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
