/* fuzz_x509: a peer's certificate as the server reads it -- the DER reader
 * (shared/der.c), x509_parse() and x509_identity_new() (shared/x509*.c), the
 * text forms tlsfwd-certs shows (certs/text.c), and authz_match() over the identity.  Seeded
 * with real certificates (corpus/x509, made by gen-x509-corpus.sh).
 *
 * Invariants: every element der_read() accepts is minimal DER, so writing it
 * back with der_buf_tlv() gives the same bytes; a dotted OID encodes back to
 * its contents; every text output is NUL-terminated inside its buffer, for
 * any buffer size; an identity does not borrow from the DER (it is read after
 * the input is freed), its digests are those of the input, its subject and
 * issuer are x509_name_line()'s; an exact rule made from one of its names
 * (cn:, ou:, dns:, uri:, sha256:, spki:) matches it. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>

#include "authz.h"
#include "der.h"
#include "der_buf.h"
#include "fp.h"
#include "fuzz.h"
#include "text.h"
#include "x509.h"
#include "x509_name.h"

#define MAX_DEPTH 32

/* Buffer sizes every text function is called with: truncation included. */
static const size_t sizes[] = { 1, 2, 7, 40, 600 };

/* oid_encode(text, out, n): the contents of the OID written as dotted text.
 * Returns the length, or 0 if text is not two or more decimal arcs or does
 * not fit in n bytes. */
static size_t oid_encode(const char *text, unsigned char *out, size_t n)
{
	unsigned long long arc, first = 0;
	size_t na = 0, len = 0;
	const char *s = text;
	char *end;

	for (;;) {
		unsigned char tmp[10];
		size_t k = 0;

		if (*s < '0' || *s > '9')
			return 0;
		arc = strtoull(s, &end, 10);
		s = end;
		if (na++ == 0) {
			if (arc > 2 || *s != '.')
				return 0;
			first = arc;
			s++;
			continue;
		}
		if (na == 2)
			arc += 40 * first;
		do {
			tmp[k++] = (unsigned char)(arc & 0x7f);
			arc >>= 7;
		} while (arc != 0);
		while (k > 0) {
			if (len == n)
				return 0;
			k--;
			out[len++] = (unsigned char)(tmp[k] | (k > 0 ? 0x80 : 0));
		}
		if (*s == '\0')
			return len;
		if (*s++ != '.')
			return 0;
	}
}

/* check_oid(t): der_oid_text() of t, at every buffer size, and the round
 * trip of the dotted form. */
static void check_oid(const struct der_tlv *t)
{
	unsigned char enc[1024];
	size_t i, n;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *buf = malloc(sizes[i]);

		CHECK(buf != NULL, "out of memory");
		der_oid_text(t->val, t->len, buf, sizes[i]);
		CHECK(fuzz_cstr_in(buf, sizes[i]), "OID text not terminated (n=%zu)", sizes[i]);
		if (sizes[i] == 600 && strcmp(buf, "(bad OID)") != 0) {
			n = oid_encode(buf, enc, sizeof(enc));
			CHECK(n == t->len && memcmp(enc, t->val, n) == 0,
			    "OID %s does not encode back to its %zu bytes", buf, t->len);
		}
		free(buf);
	}
}

/* der_walk(p, len, depth): read every element, entering constructed ones. */
static void der_walk(const unsigned char *p, size_t len, int depth)
{
	const unsigned char *at = p;
	size_t left = len;
	struct der d;
	struct der_tlv t;
	int r;

	der_init(&d, p, len);
	for (;;) {
		int peek = der_peek(&d);

		CHECK(peek == (left > 0 ? at[0] : -1), "der_peek %d", peek);
		r = der_read(&d, &t);
		if (r != 1)
			break;
		CHECK(t.raw == at && t.tag == at[0] && t.rawlen <= left && t.rawlen >= 2,
		    "element outside its run");
		CHECK(t.val > t.raw && t.val + t.len == t.raw + t.rawlen, "contents outside element");
		CHECK(d.p == at + t.rawlen && d.len == left - t.rawlen, "cursor not after element");
		{
			struct der_buf b = { 0 };

			der_buf_tlv(&b, t.tag, t.val, t.len);
			CHECK(!b.err && b.len == t.rawlen && memcmp(b.p, t.raw, b.len) == 0,
			    "element of %zu bytes is not minimal DER", t.rawlen);
			der_buf_free(&b);
		}
		if (t.tag == DER_OID)
			check_oid(&t);
		if ((t.tag & 0x20) && depth < MAX_DEPTH)
			der_walk(t.val, t.len, depth + 1);
		at += t.rawlen;
		left -= t.rawlen;
	}
	CHECK(r == -1 || (r == 0 && left == 0), "der_read %d with %zu bytes left", r, left);
}

/* inside(t, p, n): t lies in the n bytes at p. */
static int inside(const struct der_tlv *t, const unsigned char *p, size_t n)
{
	return t->raw >= p && t->raw + t->rawlen <= p + n;
}

/* check_texts(x): every text form of a parsed certificate, at every size. */
static void check_texts(const struct x509 *x)
{
	struct der d;
	struct der_tlv gn;
	unsigned char digest[FP_LEN];
	size_t i, pemlen;
	char *pem;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		char *buf = malloc(n);

		CHECK(buf != NULL, "out of memory");
		text_name(&x->subject, buf, n);
		CHECK(fuzz_cstr_in(buf, n), "text_name (n=%zu)", n);
		x509_name_line(&x->issuer, buf, n);
		CHECK(fuzz_cstr_in(buf, n), "x509_name_line (n=%zu)", n);
		x509_key_text(x, buf, n);
		CHECK(fuzz_cstr_in(buf, n), "x509_key_text (n=%zu)", n);
		x509_sig_text(x, buf, n);
		CHECK(fuzz_cstr_in(buf, n), "x509_sig_text (n=%zu)", n);
		x509_time_text(x->not_after, buf, n);
		CHECK(fuzz_cstr_in(buf, n), "x509_time_text (n=%zu)", n);
		if (x->san_present) {
			der_enter(&x->san, &d);
			while (der_read(&d, &gn) == 1) {
				text_gn(&gn, buf, n);
				CHECK(fuzz_cstr_in(buf, n), "text_gn (n=%zu)", n);
			}
		}
		free(buf);
	}
	if (x->eku_present) {
		der_enter(&x->eku, &d);
		while (der_read(&d, &gn) == 1)
			(void)x509_eku_name(&gn);
	}
	(void)x509_has_eku(x, "clientAuth");
	CHECK(fp_compute(x, FP_CERT, digest) == 0, "fp_compute");
	if (text_pem(x->der, x->derlen, &pem, &pemlen) == 0) {
		CHECK(pemlen > 27 && memcmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0,
		    "PEM header");
		free(pem);
	}
}

/* check_rule(id, kind, value): an exact rule for one of id's own names, if
 * authz takes it as it is, matches id -- but a set with a cn: rule matches
 * no subject with several CNs (authz_several_cns), and must not. */
static void check_rule(const struct x509_identity *id, enum authz_kind kind, const char *value,
    const char *prefix)
{
	struct authz *set = authz_new();
	char err[256], *want, *got = malloc(AUTHZ_RULE_TEXT_MAX);
	size_t wlen = strlen(prefix) + strlen(value) + 1;

	CHECK(set != NULL && got != NULL, "out of memory");
	want = malloc(wlen);
	CHECK(want != NULL, "out of memory");
	snprintf(want, wlen, "%s%s", prefix, value);
	if (authz_add_kind(set, kind, value, err, sizeof(err)) == 0) {
		int v = authz_match(set, id, got, AUTHZ_RULE_TEXT_MAX);

		CHECK(fuzz_cstr_in(got, AUTHZ_RULE_TEXT_MAX), "rule text not terminated");
		size_t n = strlen(value);

		/* Spaces around a value are dropped: only an untrimmed one must match. */
		if (authz_several_cns(set, id)) {
			CHECK(v != AUTHZ_MATCHED, "rule %s matches a subject with several CNs", want);
		} else if (n > 0 && !isspace((unsigned char)value[0]) &&
		    !isspace((unsigned char)value[n - 1])) {
			CHECK(v == AUTHZ_MATCHED, "rule %s does not match its certificate", want);
			CHECK(strcasecmp(got, want) == 0 || kind == AUTHZ_FINGERPRINT ||
			    kind == AUTHZ_SPKI, "matched as %s, not %s", got, want);
		}
	}
	free(want);
	free(got);
	authz_free(set);
}

/* check_identity(id, size, ...): what the identity holds, after the input
 * it was read from is gone. */
static void check_identity(const struct x509_identity *id, size_t size,
    const unsigned char sha[FP_LEN], const unsigned char spki[FP_LEN], const char *subject,
    const char *issuer)
{
	size_t i, bound = 8 * size + 64;
	unsigned char ip[16];
	char t[FP_TEXT_MAX];

	CHECK(strcmp(id->subject, subject) == 0, "subject \"%s\" != \"%s\"", id->subject, subject);
	CHECK(strcmp(id->issuer, issuer) == 0, "issuer \"%s\" != \"%s\"", id->issuer, issuer);
	CHECK(memcmp(id->sha256, sha, FP_LEN) == 0, "sha256 is not the input's");
	CHECK(memcmp(id->spki_sha256, spki, FP_LEN) == 0, "spki_sha256 is not the SPKI's");
	CHECK(strlen(id->serial) <= 2 * size && strspn(id->serial, "0123456789abcdef") ==
	    strlen(id->serial) && id->serial[0] != '\0', "serial \"%s\"", id->serial);
	CHECK(id->n_cn + id->n_ou + id->n_dns + id->n_uri + id->n_ip <= size / 2,
	    "more names than the certificate can hold");
	for (i = 0; i < id->n_cn; i++) {
		CHECK(strlen(id->cn[i]) < bound, "cn");
		check_rule(id, AUTHZ_CN, id->cn[i], "cn:");
	}
	for (i = 0; i < id->n_ou; i++) {
		CHECK(strlen(id->ou[i]) < bound, "ou");
		check_rule(id, AUTHZ_OU, id->ou[i], "ou:");
	}
	for (i = 0; i < id->n_dns; i++) {
		CHECK(strlen(id->dns[i]) < bound, "dns");
		check_rule(id, AUTHZ_DNS, id->dns[i], "dns:");
	}
	for (i = 0; i < id->n_uri; i++) {
		CHECK(strlen(id->uri[i]) < bound, "uri");
		check_rule(id, AUTHZ_URI, id->uri[i], "uri:");
	}
	for (i = 0; i < id->n_ip; i++) {
		const char *s = id->ip[i];

		CHECK(inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1 ||
		    strspn(s, "0123456789abcdef") == strlen(s), "ip \"%s\"", s);
	}
	check_rule(id, AUTHZ_FINGERPRINT, fp_text(FP_CERT, sha, t), "");
	check_rule(id, AUTHZ_SPKI, fp_text(FP_SPKI, spki, t), "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *der = malloc(size + 1);
	unsigned char sha[FP_LEN], spki[FP_LEN];
	char *subject = NULL, *issuer = NULL;
	struct x509_identity *id = NULL;
	const char *why = NULL, *why2 = NULL;
	struct x509 x;
	int rp, ri;

	CHECK(der != NULL, "out of memory");
	memcpy(der, data, size);
	der_walk(der, size, 0);

	rp = x509_parse(&x, der, size, &why);
	ri = x509_identity_new(der, size, &id, &why2);
	CHECK(rp == 0 || why != NULL, "x509_parse failed without a reason");
	CHECK(ri == 0 || (why2 != NULL && id == NULL), "x509_identity_new failed without a reason");
	CHECK(ri != 0 || rp == 0, "an identity from what x509_parse refuses");
	CHECK(ri != 0 || size <= X509_ID_MAX_DER, "an identity from a too large certificate");
	/* Both passes of x509_identity_new() must measure alike. */
	CHECK(ri == 0 || rp != 0 || size > X509_ID_MAX_DER ||
	    strcmp(why2, "malformed subject name or subjectAltName") == 0,
	    "x509_parse takes it, x509_identity_new says: %s", why2);
	if (rp == 0) {
		size_t n = 8 * size + 64;

		CHECK(inside(&x.tbs, der, size) && inside(&x.subject, der, size) &&
		    inside(&x.issuer, der, size) && inside(&x.spki, der, size) &&
		    inside(&x.serial, der, size), "a field outside the certificate");
		CHECK(x.version >= 1 && x.version <= 3 && x.path_len >= -1, "version or pathlen");
		check_texts(&x);
		subject = malloc(n);
		issuer = malloc(n);
		CHECK(subject != NULL && issuer != NULL, "out of memory");
		x509_name_line(&x.subject, subject, n);
		x509_name_line(&x.issuer, issuer, n);
		CHECK(strlen(subject) + 1 < n && strlen(issuer) + 1 < n, "name line bound");
		CHECK(wc_Sha256Hash(der, (word32)size, sha) == 0 &&
		    fp_compute(&x, FP_SPKI, spki) == 0, "hash");
	}
	free(der);		/* the identity must not borrow from it */
	if (ri == 0)
		check_identity(id, size, sha, spki, subject, issuer);
	x509_identity_free(id);
	free(subject);
	free(issuer);
	return 0;
}
