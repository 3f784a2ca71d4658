/* x509: read an X.509 certificate field by field; see x509.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "x509.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fp.h"

static const unsigned char oid_bc[] = { 0x55, 0x1d, 0x13 };
static const unsigned char oid_ku[] = { 0x55, 0x1d, 0x0f };
static const unsigned char oid_eku[] = { 0x55, 0x1d, 0x25 };
static const unsigned char oid_san[] = { 0x55, 0x1d, 0x11 };
static const unsigned char oid_skid[] = { 0x55, 0x1d, 0x0e };
static const unsigned char oid_akid[] = { 0x55, 0x1d, 0x23 };
static const unsigned char oid_nc[] = { 0x55, 0x1d, 0x1e };

struct oid_name {
	const char *oid;
	const char *name;
};

static const struct oid_name attr_names[] = {
	{ "2.5.4.3", "CN" }, { "2.5.4.6", "C" }, { "2.5.4.7", "L" },
	{ "2.5.4.8", "ST" }, { "2.5.4.9", "street" }, { "2.5.4.10", "O" },
	{ "2.5.4.11", "OU" }, { "2.5.4.5", "serialNumber" }, { "2.5.4.4", "SN" },
	{ "2.5.4.42", "GN" }, { "2.5.4.12", "title" }, { "2.5.4.43", "initials" },
	{ "2.5.4.44", "generationQualifier" }, { "2.5.4.46", "dnQualifier" },
	{ "2.5.4.65", "pseudonym" }, { "2.5.4.17", "postalCode" },
	{ "2.5.4.15", "businessCategory" }, { "2.5.4.97", "organizationIdentifier" },
	{ "2.5.4.41", "name" }, { "0.9.2342.19200300.100.1.25", "DC" },
	{ "0.9.2342.19200300.100.1.1", "UID" }, { "1.2.840.113549.1.9.1", "emailAddress" },
	{ NULL, NULL }
};

static const struct oid_name eku_names[] = {
	{ "1.3.6.1.5.5.7.3.1", "serverAuth" }, { "1.3.6.1.5.5.7.3.2", "clientAuth" },
	{ "1.3.6.1.5.5.7.3.3", "codeSigning" }, { "1.3.6.1.5.5.7.3.4", "emailProtection" },
	{ "1.3.6.1.5.5.7.3.8", "timeStamping" }, { "1.3.6.1.5.5.7.3.9", "OCSPSigning" },
	{ "2.5.29.37.0", "anyExtendedKeyUsage" },
	{ NULL, NULL }
};

static const struct oid_name sig_names[] = {
	{ "1.2.840.10045.4.3.2", "ecdsa-with-SHA256" },
	{ "1.2.840.10045.4.3.3", "ecdsa-with-SHA384" },
	{ "1.2.840.10045.4.3.4", "ecdsa-with-SHA512" },
	{ "1.2.840.10045.4.1", "ecdsa-with-SHA1" },
	{ "1.2.840.113549.1.1.5", "sha1WithRSAEncryption" },
	{ "1.2.840.113549.1.1.11", "sha256WithRSAEncryption" },
	{ "1.2.840.113549.1.1.12", "sha384WithRSAEncryption" },
	{ "1.2.840.113549.1.1.13", "sha512WithRSAEncryption" },
	{ "1.2.840.113549.1.1.10", "rsassaPss" },
	{ "1.3.101.112", "ED25519" }, { "1.3.101.113", "ED448" },
	{ NULL, NULL }
};

static const struct oid_name curve_names[] = {
	{ "1.2.840.10045.3.1.7", "P-256" }, { "1.3.132.0.34", "P-384" },
	{ "1.3.132.0.35", "P-521" }, { "1.3.132.0.10", "secp256k1" },
	{ "1.3.132.0.33", "P-224" }, { "1.2.840.10045.3.1.1", "P-192" },
	{ "1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1" },
	{ "1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1" },
	{ "1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1" },
	{ NULL, NULL }
};

static const char *oid_lookup(const struct oid_name *t, const unsigned char *val,
    size_t len, char *buf, size_t n)
{
	der_oid_text(val, len, buf, n);
	for (; t->oid != NULL; t++)
		if (strcmp(t->oid, buf) == 0)
			return t->name;
	return NULL;
}

/* A UTCTime or GeneralizedTime in the only forms RFC 5280 allows:
 * YYMMDDHHMMSSZ and YYYYMMDDHHMMSSZ. */
static int parse_time(const struct der_tlv *t, time_t *out)
{
	struct tm tm;
	const unsigned char *s = t->val;
	int v[7], i, nd, year;
	size_t digits;

	if (t->tag == DER_UTCTIME)
		digits = 12;
	else if (t->tag == DER_GENTIME)
		digits = 14;
	else
		return -1;
	if (t->len != digits + 1 || s[digits] != 'Z')
		return -1;
	for (i = 0; i < (int)digits; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	nd = 0;
	for (i = 0; i < (int)digits; i += 2)
		v[nd++] = (s[i] - '0') * 10 + (s[i + 1] - '0');
	if (t->tag == DER_UTCTIME) {
		year = v[0] < 50 ? 2000 + v[0] : 1900 + v[0];
		i = 1;
	} else {
		year = v[0] * 100 + v[1];
		i = 2;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = v[i] - 1;
	tm.tm_mday = v[i + 1];
	tm.tm_hour = v[i + 2];
	tm.tm_min = v[i + 3];
	tm.tm_sec = v[i + 4];
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static int parse_ext(struct x509 *x, const struct der_tlv *ext, const char **why)
{
	struct der d, in;
	struct der_tlv oid, crit, val, t;
	int critical = 0;

	der_enter(ext, &d);
	if (der_expect(&d, DER_OID, &oid) != 0)
		goto bad;
	if (der_peek(&d) == DER_BOOLEAN) {
		if (der_expect(&d, DER_BOOLEAN, &crit) != 0 || crit.len != 1)
			goto bad;
		critical = crit.val[0] != 0;
	}
	if (der_expect(&d, DER_OCTET_STRING, &val) != 0 || d.len != 0)
		goto bad;
	der_enter(&val, &in);

	if (der_oid_is(&oid, oid_bc, sizeof(oid_bc))) {
		x->bc_present = 1;
		x->bc_critical = critical;
		if (der_expect(&in, DER_SEQUENCE, &t) != 0)
			goto bad_bc;
		der_enter(&t, &in);
		if (der_peek(&in) == DER_BOOLEAN) {
			if (der_expect(&in, DER_BOOLEAN, &t) != 0 || t.len != 1)
				goto bad_bc;
			x->is_ca = t.val[0] != 0;
		}
		if (der_peek(&in) == DER_INTEGER) {
			size_t i;

			if (der_expect(&in, DER_INTEGER, &t) != 0 || t.len == 0 ||
			    t.len > 4 || (t.val[0] & 0x80))
				goto bad_bc;
			x->path_len = 0;
			for (i = 0; i < t.len; i++)
				x->path_len = (x->path_len << 8) | t.val[i];
		}
		return 0;
bad_bc:
		*why = "malformed basicConstraints extension";
		return -1;
	}
	if (der_oid_is(&oid, oid_ku, sizeof(oid_ku))) {
		unsigned bits = 0;
		size_t i;

		x->ku_present = 1;
		x->ku_critical = critical;
		if (der_expect(&in, DER_BIT_STRING, &t) != 0 || t.len < 1 || t.val[0] > 7) {
			*why = "malformed keyUsage extension";
			return -1;
		}
		for (i = 1; i < t.len && i < 3; i++) {
			int b;

			for (b = 0; b < 8; b++)
				if (t.val[i] & (0x80 >> b))
					bits |= 1u << ((i - 1) * 8 + (size_t)b);
		}
		x->ku = bits;
		return 0;
	}
	if (der_oid_is(&oid, oid_eku, sizeof(oid_eku))) {
		x->eku_present = 1;
		x->eku_critical = critical;
		if (der_expect(&in, DER_SEQUENCE, &x->eku) != 0) {
			*why = "malformed extendedKeyUsage extension";
			return -1;
		}
		return 0;
	}
	if (der_oid_is(&oid, oid_san, sizeof(oid_san))) {
		x->san_present = 1;
		x->san_critical = critical;
		if (der_expect(&in, DER_SEQUENCE, &x->san) != 0) {
			*why = "malformed subjectAltName extension";
			return -1;
		}
		return 0;
	}
	if (der_oid_is(&oid, oid_skid, sizeof(oid_skid))) {
		if (der_expect(&in, DER_OCTET_STRING, &x->skid) != 0) {
			*why = "malformed subjectKeyIdentifier extension";
			return -1;
		}
		return 0;
	}
	if (der_oid_is(&oid, oid_nc, sizeof(oid_nc))) {
		x->nc_present = 1;
		if (der_expect(&in, DER_SEQUENCE, &x->nc) != 0) {
			*why = "malformed nameConstraints extension";
			return -1;
		}
		return 0;
	}
	if (der_oid_is(&oid, oid_akid, sizeof(oid_akid))) {
		if (der_expect(&in, DER_SEQUENCE, &t) != 0) {
			*why = "malformed authorityKeyIdentifier extension";
			return -1;
		}
		der_enter(&t, &in);
		if (der_peek(&in) == DER_CTX(0) && der_read(&in, &x->akid) != 1) {
			*why = "malformed authorityKeyIdentifier extension";
			return -1;
		}
		return 0;
	}
	return 0;		/* an extension we do not show */
bad:
	*why = "malformed extension";
	return -1;
}

/** x509_parse(x, der, len, why): parse one DER certificate into x.  Returns
 *  0, or -1 with a short reason in *why.  x borrows from der. */
int x509_parse(struct x509 *x, const unsigned char *der, size_t len, const char **why)
{
	struct der d, tbs, v;
	struct der_tlv cert, t, tb, ta;

	memset(x, 0, sizeof(*x));
	x->path_len = -1;
	x->der = der;
	x->derlen = len;
	*why = "not a DER certificate";

	der_init(&d, der, len);
	if (der_expect(&d, DER_SEQUENCE, &cert) != 0 || d.len != 0)
		return -1;
	der_enter(&cert, &d);
	if (der_expect(&d, DER_SEQUENCE, &x->tbs) != 0)
		return -1;
	if (der_expect(&d, DER_SEQUENCE, &t) != 0)
		return -1;
	der_enter(&t, &v);
	if (der_expect(&v, DER_OID, &x->sig_alg) != 0)
		return -1;
	if (der_read(&v, &x->sig_params) != 1)
		memset(&x->sig_params, 0, sizeof(x->sig_params));
	if (der_expect(&d, DER_BIT_STRING, &t) != 0 || d.len != 0)
		return -1;

	*why = "malformed certificate body";
	der_enter(&x->tbs, &tbs);
	x->version = 1;
	if (der_peek(&tbs) == DER_CTX_CONS(0)) {
		if (der_read(&tbs, &t) != 1)
			return -1;
		der_enter(&t, &v);
		if (der_expect(&v, DER_INTEGER, &t) != 0 || t.len != 1 || t.val[0] > 2)
			return -1;
		x->version = t.val[0] + 1;
	}
	if (der_expect(&tbs, DER_INTEGER, &x->serial) != 0 || x->serial.len == 0)
		return -1;
	if (der_expect(&tbs, DER_SEQUENCE, &t) != 0)		/* signature */
		return -1;
	if (der_expect(&tbs, DER_SEQUENCE, &x->issuer) != 0)
		return -1;
	if (der_expect(&tbs, DER_SEQUENCE, &t) != 0)		/* validity */
		return -1;
	der_enter(&t, &v);
	if (der_read(&v, &tb) != 1 || der_read(&v, &ta) != 1 ||
	    parse_time(&tb, &x->not_before) != 0 || parse_time(&ta, &x->not_after) != 0) {
		*why = "malformed validity dates";
		return -1;
	}
	if (der_expect(&tbs, DER_SEQUENCE, &x->subject) != 0)
		return -1;
	if (der_expect(&tbs, DER_SEQUENCE, &x->spki) != 0)
		return -1;
	while (der_read(&tbs, &t) == 1) {
		struct der exts;
		struct der_tlv ext;

		if (t.tag != DER_CTX_CONS(3))
			continue;	/* issuerUniqueID, subjectUniqueID */
		der_enter(&t, &v);
		if (der_expect(&v, DER_SEQUENCE, &t) != 0)
			return -1;
		der_enter(&t, &exts);
		while (der_read(&exts, &ext) == 1) {
			if (ext.tag != DER_SEQUENCE)
				return -1;
			if (parse_ext(x, &ext, why) != 0)
				return -1;
		}
		if (exts.len != 0)
			return -1;
	}
	if (tbs.len != 0)
		return -1;
	return 0;
}

/* Append to buf at *off, never past n - 1, keeping buf terminated.  With
 * buf NULL only *off moves: the same code measures what it would write. */
static void put(char *buf, size_t n, size_t *off, const char *s, size_t len)
{
	if (buf == NULL) {
		*off += len;
		return;
	}
	if (*off + 1 >= n)
		return;
	if (len > n - 1 - *off)
		len = n - 1 - *off;
	memcpy(buf + *off, s, len);
	*off += len;
	buf[*off] = '\0';
}

static void put_utf8(char *buf, size_t n, size_t *off, uint32_t c)
{
	char u[4];
	size_t k;

	if (c > 0x10ffff)
		c = 0xfffd;	/* no UTF-8 form: U+FFFD, never another character */
	if (c < 0x80) {
		u[0] = (char)c;
		k = 1;
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3f));
		k = 2;
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		k = 3;
	} else {
		u[0] = (char)(0xf0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (char)(0x80 | (c & 0x3f));
		k = 4;
	}
	put(buf, n, off, u, k);
}

/* How put_string() writes a value. */
enum str_form {
	STR_RAW,	/* UTF-8, nothing escaped (identity names, matched exactly) */
	STR_TEXT,	/* UTF-8, controls and DEL as \XX (SANs in show) */
	STR_RFC4514,	/* STR_TEXT plus RFC 4514 escapes (x509_name_text) */
	STR_LINE,	/* controls as \xXX, '/', '+' and '\\' escaped (x509_name_line) */
};

/* The code unit size of a string type: 4 for UniversalString, 2 for
 * BMPString, 1 for the rest. */
static size_t str_step(const struct der_tlv *v)
{
	if (v->tag == DER_BMPSTRING)
		return 2;
	if (v->tag == DER_UNIVERSAL)
		return 4;
	return 1;
}

/* Non-zero if the value decodes to a string holding U+0000, or a code point
 * beyond U+10FFFF (a UniversalString can hold one): neither has a UTF-8 form
 * that could be matched as it is. */
static int str_has_nul(const struct der_tlv *v)
{
	size_t i, k, step = str_step(v);

	for (i = 0; i + step <= v->len; i += step) {
		uint32_t c = 0;

		for (k = 0; k < step; k++)
			c = (c << 8) | v->val[i + k];
		if (c == 0 || c > 0x10ffff)
			return 1;
	}
	return 0;
}

/* An attribute value as UTF-8, written in the given form. */
static void put_string(char *buf, size_t n, size_t *off, const struct der_tlv *v,
    enum str_form form)
{
	size_t i, step = str_step(v), start = *off;
	char esc[8];

	for (i = 0; i + step <= v->len; i += step) {
		uint32_t c = 0;
		size_t k;

		for (k = 0; k < step; k++)
			c = (c << 8) | v->val[i + k];
		if (step == 1 && c >= 0x80 && v->tag != DER_UTF8STRING) {
			put_utf8(buf, n, off, c);	/* T61/Latin-1 */
			continue;
		}
		if (step > 1 && c >= 0x80) {
			put_utf8(buf, n, off, c);
			continue;
		}
		if ((c < 0x20 || c == 0x7f) && form != STR_RAW) {
			snprintf(esc, sizeof(esc), form == STR_LINE ? "\\x%02X" : "\\%02X",
			    (unsigned)c);
			put(buf, n, off, esc, strlen(esc));
			continue;
		}
		if (form == STR_LINE && (c == '/' || c == '+' || c == '\\'))
			put(buf, n, off, "\\", 1);
		if (form == STR_RFC4514 && (strchr(",+\"\\<>;", (int)c) != NULL ||
		    (c == '#' && *off == start) ||
		    (c == ' ' && (*off == start || i + step >= v->len))))
			put(buf, n, off, "\\", 1);
		esc[0] = (char)c;
		put(buf, n, off, esc, 1);
	}
}

/** x509_name_text(name, buf, n): a Name as "C=US, O=Example, CN=host", in
 *  encoded order, RFC 4514 escapes for ',', '+', '"', '\\', '<', '>', ';'
 *  and '#'/space where they need them, other bytes outside printable ASCII
 *  as \XX.  Returns buf (truncated to n - 1 bytes if it must be). */
const char *x509_name_text(const struct der_tlv *name, char *buf, size_t n)
{
	struct der rdns, rdn, atv;
	struct der_tlv set, seq, oid, val;
	size_t off = 0;
	char tmp[96];
	int first = 1;

	if (n == 0)
		return buf;
	buf[0] = '\0';
	der_enter(name, &rdns);
	while (der_read(&rdns, &set) == 1) {
		int first_in_rdn = 1;

		if (set.tag != DER_SET)
			goto bad;
		der_enter(&set, &rdn);
		while (der_read(&rdn, &seq) == 1) {
			const char *sn;

			if (seq.tag != DER_SEQUENCE)
				goto bad;
			der_enter(&seq, &atv);
			if (der_expect(&atv, DER_OID, &oid) != 0 || der_read(&atv, &val) != 1)
				goto bad;
			if (!first)
				put(buf, n, &off, first_in_rdn ? ", " : " + ", first_in_rdn ? 2 : 3);
			first = first_in_rdn = 0;
			sn = oid_lookup(attr_names, oid.val, oid.len, tmp, sizeof(tmp));
			if (sn == NULL)
				sn = tmp;
			put(buf, n, &off, sn, strlen(sn));
			put(buf, n, &off, "=", 1);
			put_string(buf, n, &off, &val, STR_RFC4514);
		}
	}
	return buf;
bad:
	snprintf(buf, n, "(malformed name)");
	return buf;
}

/* Call fn(oid, val, more, arg) for every attribute of a Name, in encoded
 * order; more is set for the second and later attributes of one RDN.
 * Returns 0, or -1 if the Name is malformed (after the good part). */
static int name_walk(const struct der_tlv *name,
    void (*fn)(const struct der_tlv *oid, const struct der_tlv *val, int more, void *arg),
    void *arg)
{
	struct der rdns, rdn, atv;
	struct der_tlv set, seq, oid, val;
	int r, more;

	der_enter(name, &rdns);
	while ((r = der_read(&rdns, &set)) == 1) {
		if (set.tag != DER_SET)
			return -1;
		der_enter(&set, &rdn);
		for (more = 0; (r = der_read(&rdn, &seq)) == 1; more = 1) {
			if (seq.tag != DER_SEQUENCE)
				return -1;
			der_enter(&seq, &atv);
			if (der_expect(&atv, DER_OID, &oid) != 0 || der_read(&atv, &val) != 1)
				return -1;
			fn(&oid, &val, more, arg);
		}
		if (r < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

/* Where x509_name_line() writes; buf NULL measures. */
struct line_out {
	char *buf;
	size_t n, off;
};

static void line_attr(const struct der_tlv *oid, const struct der_tlv *val, int more,
    void *arg)
{
	struct line_out *o = arg;
	const char *sn;
	char tmp[96];

	sn = oid_lookup(attr_names, oid->val, oid->len, tmp, sizeof(tmp));
	if (sn == NULL)
		sn = tmp;
	put(o->buf, o->n, &o->off, more ? "+" : "/", 1);
	put(o->buf, o->n, &o->off, sn, strlen(sn));
	put(o->buf, o->n, &o->off, "=", 1);
	put_string(o->buf, o->n, &o->off, val, STR_LINE);
}

/* x509_name_line() into buf, or its length without the NUL if buf is NULL. */
static size_t name_line(const struct der_tlv *name, char *buf, size_t n)
{
	struct line_out o = { buf, n, 0 };

	if (buf != NULL)
		buf[0] = '\0';
	if (name_walk(name, line_attr, &o) != 0)
		put(buf, n, &o.off, "/(malformed name)", 17);
	return o.off;
}

/** x509_name_line(name, buf, n): a Name on one line as OpenSSL's "compat"
 *  form prints it, "/C=US/O=Example/CN=host", in encoded order, '+' between
 *  the attributes of a multi-valued RDN.  Values are UTF-8; a '/', '+' or
 *  '\' inside a value gets a '\' before it (openssl leaves '\' alone), a
 *  control byte is shown as \xXX.  Returns buf (truncated to n - 1 bytes if
 *  it must be). */
const char *x509_name_line(const struct der_tlv *name, char *buf, size_t n)
{
	if (n == 0)
		return buf;
	name_line(name, buf, n);
	return buf;
}

/* len bytes as lowercase hex (fp_hex), appended with put(). */
static void put_hex(char *buf, size_t n, size_t *off, const unsigned char *p, size_t len)
{
	char h[2 * 32 + 1];
	size_t i, k;

	for (i = 0; i < len; i += k) {
		k = len - i < 32 ? len - i : 32;
		put(buf, n, off, fp_hex(p + i, k, h, sizeof(h)), 2 * k);
	}
}

/** x509_gn_text(gn, buf, n): one GeneralName in --san syntax: "DNS:name",
 *  "IP:10.0.0.5", "URI:spiffe://...", "email:a@b", "DirName:CN=x",
 *  "RID:1.2.3", "othername:1.2.3" or "[n]:hex".  Returns buf. */
const char *x509_gn_text(const struct der_tlv *gn, char *buf, size_t n)
{
	struct der d;
	struct der_tlv t;
	size_t off = 0;
	char tmp[INET6_ADDRSTRLEN + 8];

	if (n == 0)
		return buf;
	buf[0] = '\0';
	switch (gn->tag) {
	case DER_CTX(1):
		put(buf, n, &off, "email:", 6);
		put_string(buf, n, &off, gn, STR_TEXT);
		break;
	case DER_CTX(2):
		put(buf, n, &off, "DNS:", 4);
		put_string(buf, n, &off, gn, STR_TEXT);
		break;
	case DER_CTX(6):
		put(buf, n, &off, "URI:", 4);
		put_string(buf, n, &off, gn, STR_TEXT);
		break;
	case DER_CTX(7):
		put(buf, n, &off, "IP:", 3);
		if (gn->len == 4 && inet_ntop(AF_INET, gn->val, tmp, sizeof(tmp)) != NULL)
			put(buf, n, &off, tmp, strlen(tmp));
		else if (gn->len == 16 && inet_ntop(AF_INET6, gn->val, tmp, sizeof(tmp)) != NULL)
			put(buf, n, &off, tmp, strlen(tmp));
		else
			put_hex(buf, n, &off, gn->val, gn->len);
		break;
	case DER_CTX(8):
		put(buf, n, &off, "RID:", 4);
		der_oid_text(gn->val, gn->len, tmp, sizeof(tmp));
		put(buf, n, &off, tmp, strlen(tmp));
		break;
	case DER_CTX_CONS(4):
		put(buf, n, &off, "DirName:", 8);
		der_enter(gn, &d);
		if (der_expect(&d, DER_SEQUENCE, &t) == 0) {
			char name[512];

			x509_name_text(&t, name, sizeof(name));
			put(buf, n, &off, name, strlen(name));
		}
		break;
	case DER_CTX_CONS(0):
		put(buf, n, &off, "othername:", 10);
		der_enter(gn, &d);
		if (der_expect(&d, DER_OID, &t) == 0) {
			der_oid_text(t.val, t.len, tmp, sizeof(tmp));
			put(buf, n, &off, tmp, strlen(tmp));
		}
		break;
	default:
		snprintf(tmp, sizeof(tmp), "[%u]:", gn->tag & 0x1f);
		put(buf, n, &off, tmp, strlen(tmp));
		put_hex(buf, n, &off, gn->val, gn->len);
		break;
	}
	return buf;
}

/* The size in bits of the modulus of an RSA subjectPublicKey BIT STRING, or
 * 0 if it cannot be read. */
static size_t rsa_bits(const struct der_tlv *bits)
{
	struct der a;
	struct der_tlv t, mod;
	size_t i = 0, nbits;

	/* BIT STRING (0 unused bits) holding SEQUENCE { n, e } */
	if (bits->len < 1 || bits->val[0] != 0)
		return 0;
	der_init(&a, bits->val + 1, bits->len - 1);
	if (der_expect(&a, DER_SEQUENCE, &t) != 0)
		return 0;
	der_enter(&t, &a);
	if (der_expect(&a, DER_INTEGER, &mod) != 0 || mod.len == 0)
		return 0;
	while (i < mod.len && mod.val[i] == 0)
		i++;
	if (i == mod.len)
		return 0;
	nbits = (mod.len - i) * 8;
	for (unsigned char top = mod.val[i]; !(top & 0x80); top <<= 1)
		nbits--;
	return nbits;
}

/** x509_key_text(x, buf, n): the subject key as "EC P-256" or "RSA 2048".
 *  Returns buf. */
const char *x509_key_text(const struct x509 *x, char *buf, size_t n)
{
	static const char ec[] = "1.2.840.10045.2.1", rsa[] = "1.2.840.113549.1.1.1";
	struct der d, a;
	struct der_tlv alg, oid, par, bits;
	char o[64], c[64];
	const char *curve;

	der_enter(&x->spki, &d);
	if (der_expect(&d, DER_SEQUENCE, &alg) != 0 || der_expect(&d, DER_BIT_STRING, &bits) != 0)
		goto unknown;
	der_enter(&alg, &a);
	if (der_expect(&a, DER_OID, &oid) != 0)
		goto unknown;
	der_oid_text(oid.val, oid.len, o, sizeof(o));
	if (strcmp(o, ec) == 0) {
		if (der_expect(&a, DER_OID, &par) != 0) {
			snprintf(buf, n, "EC (explicit parameters)");
			return buf;
		}
		curve = oid_lookup(curve_names, par.val, par.len, c, sizeof(c));
		snprintf(buf, n, "EC %s", curve != NULL ? curve : c);
		return buf;
	}
	if (strcmp(o, rsa) == 0) {
		size_t nbits = rsa_bits(&bits);

		if (nbits == 0)
			snprintf(buf, n, "RSA");
		else
			snprintf(buf, n, "RSA %zu", nbits);
		return buf;
	}
	if (strcmp(o, "1.3.101.112") == 0)
		snprintf(buf, n, "ED25519");
	else if (strcmp(o, "1.3.101.113") == 0)
		snprintf(buf, n, "ED448");
	else
		snprintf(buf, n, "%s", o);
	return buf;
unknown:
	snprintf(buf, n, "(unknown)");
	return buf;
}

/** x509_sig_text(x, buf, n): the signature algorithm ("ecdsa-with-SHA256",
 *  "sha256WithRSAEncryption", or the dotted OID).  Returns buf. */
const char *x509_sig_text(const struct x509 *x, char *buf, size_t n)
{
	char o[64];
	const char *name = oid_lookup(sig_names, x->sig_alg.val, x->sig_alg.len, o, sizeof(o));

	snprintf(buf, n, "%s", name != NULL ? name : o);
	return buf;
}

/** x509_eku_name(oid): the short name of an extended key usage OID
 *  ("serverAuth"), or NULL if it has none here. */
const char *x509_eku_name(const struct der_tlv *oid)
{
	char o[64];

	return oid_lookup(eku_names, oid->val, oid->len, o, sizeof(o));
}

/** x509_has_eku(x, name): non-zero if x has no EKU extension, or one that
 *  lists name ("serverAuth") or anyExtendedKeyUsage. */
int x509_has_eku(const struct x509 *x, const char *name)
{
	struct der d;
	struct der_tlv oid;
	const char *s;

	if (!x->eku_present)
		return 1;
	der_enter(&x->eku, &d);
	while (der_read(&d, &oid) == 1) {
		s = x509_eku_name(&oid);
		if (s != NULL && (strcmp(s, name) == 0 || strcmp(s, "anyExtendedKeyUsage") == 0))
			return 1;
	}
	return 0;
}

/** x509_key_ok(x): non-zero if the subject key is strong enough: RSA of
 *  at least X509_MIN_RSA_BITS bits, EC on a named curve of at least
 *  X509_MIN_EC_BITS bits, Ed25519 or Ed448.  0 for anything else (a smaller
 *  key, explicit EC parameters, an unknown curve or key type). */
int x509_key_ok(const struct x509 *x)
{
	static const struct { const char *name; int bits; } curves[] = {
		{ "P-256", 256 }, { "P-384", 384 }, { "P-521", 521 }, { "secp256k1", 256 },
		{ "brainpoolP256r1", 256 }, { "brainpoolP384r1", 384 },
		{ "brainpoolP512r1", 512 }, { "P-224", 224 }, { "P-192", 192 },
	};
	char text[96];
	size_t i;

	x509_key_text(x, text, sizeof(text));
	if (strncmp(text, "RSA ", 4) == 0)
		return strtol(text + 4, NULL, 10) >= X509_MIN_RSA_BITS;
	if (strncmp(text, "EC ", 3) == 0) {
		for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
			if (strcmp(text + 3, curves[i].name) == 0)
				return curves[i].bits >= X509_MIN_EC_BITS;
		return 0;
	}
	return strcmp(text, "ED25519") == 0 || strcmp(text, "ED448") == 0;
}

/* Non-zero if an RSASSA-PSS parameters SEQUENCE names MD5 or SHA-1 as its
 * hash, or names none (RFC 4055: absent means SHA-1). */
static int pss_weak(const struct der_tlv *params)
{
	static const unsigned char sha1[] = { 0x2b, 0x0e, 0x03, 0x02, 0x1a };
	static const unsigned char md5[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05 };
	struct der d, h;
	struct der_tlv t, alg, oid;

	if (params->tag != DER_SEQUENCE)
		return 1;
	der_enter(params, &d);
	if (der_peek(&d) != DER_CTX_CONS(0))
		return 1;		/* hashAlgorithm absent: SHA-1 */
	if (der_read(&d, &t) != 1)
		return 1;
	der_enter(&t, &h);
	if (der_expect(&h, DER_SEQUENCE, &alg) != 0)
		return 1;
	der_enter(&alg, &h);
	if (der_expect(&h, DER_OID, &oid) != 0)
		return 1;
	return der_oid_is(&oid, sha1, sizeof(sha1)) || der_oid_is(&oid, md5, sizeof(md5));
}

/** x509_sig_ok(x): 0 if x is signed with MD2, MD4, MD5 or SHA-1 (RSA,
 *  ECDSA, DSA, or RSASSA-PSS whose hash is one of those), non-zero for
 *  anything else.  Only the hash is judged: an algorithm wolfSSL does not
 *  know fails its own signature check. */
int x509_sig_ok(const struct x509 *x)
{
	static const char *const weak[] = {
		"1.2.840.113549.1.1.2",		/* md2WithRSAEncryption */
		"1.2.840.113549.1.1.3",		/* md4WithRSAEncryption */
		"1.2.840.113549.1.1.4",		/* md5WithRSAEncryption */
		"1.2.840.113549.1.1.5",		/* sha1WithRSAEncryption */
		"1.3.14.3.2.29",		/* sha1WithRSASignature (OIW) */
		"1.2.840.10045.4.1",		/* ecdsa-with-SHA1 */
		"1.2.840.10040.4.3",		/* dsa-with-sha1 */
		"1.3.14.3.2.27",		/* dsaWithSHA1 (OIW) */
	};
	char o[64];
	size_t i;

	der_oid_text(x->sig_alg.val, x->sig_alg.len, o, sizeof(o));
	for (i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		if (strcmp(o, weak[i]) == 0)
			return 0;
	if (strcmp(o, "1.2.840.113549.1.1.10") == 0)	/* rsassaPss */
		return !pss_weak(&x->sig_params);
	return 1;
}

/* Non-zero if the two elements are encoded alike, byte for byte. */
static int tlv_same(const struct der_tlv *a, const struct der_tlv *b)
{
	return a->rawlen == b->rawlen && memcmp(a->raw, b->raw, a->rawlen) == 0;
}

/** x509_self_issued(x): non-zero if x's issuer and subject are the same
 *  Name, byte for byte (a root, or a self-signed certificate). */
int x509_self_issued(const struct x509 *x)
{
	return tlv_same(&x->issuer, &x->subject);
}

/* issued_by(x, issuer): non-zero if issuer's subject is x's issuer, byte for
 * byte, and, when x names an authority key identifier and issuer has a
 * subject key identifier, they are the same (as wolfSSL looks a signer up).
 * Signatures are wolfSSL's to check, not this one's. */
static int issued_by(const struct x509 *x, const struct x509 *issuer)
{
	if (!tlv_same(&x->issuer, &issuer->subject))
		return 0;
	if (x->akid.len > 0 && issuer->skid.len > 0 &&
	    (x->akid.len != issuer->skid.len || memcmp(x->akid.val, issuer->skid.val,
	    x->akid.len) != 0))
		return 0;
	return 1;
}

/* The certificate of anchors that issued x, other than x itself; NULL if none. */
static const struct x509 *anchor_of(const struct x509 *x, const struct x509 *anchors,
    size_t nanchors)
{
	size_t i;

	for (i = 0; i < nanchors; i++)
		if (!(anchors[i].derlen == x->derlen &&
		    memcmp(anchors[i].der, x->der, x->derlen) == 0) &&
		    issued_by(x, &anchors[i]))
			return &anchors[i];
	return NULL;
}

/* ---- name constraints (RFC 5280 4.2.1.10) ---- */

/* A GeneralName as name constraints compare it: its tag number (1 email,
 * 2 DNS, 4 directoryName, 6 URI, 7 IP) and its value (the Name SEQUENCE for
 * a directoryName, the contents otherwise). */
struct gname {
	unsigned type;
	struct der_tlv v;
};

/* Read a GeneralName: 0, 1 for a form not compared here (otherName,
 * x400Address, ediPartyName, registeredID), -1 if malformed. */
static int gn_read(const struct der_tlv *gn, struct gname *out)
{
	struct der d;

	out->type = gn->tag & 0x1f;
	if (gn->tag == DER_CTX_CONS(4)) {
		der_enter(gn, &d);
		return der_expect(&d, DER_SEQUENCE, &out->v) == 0 && d.len == 0 ? 0 : -1;
	}
	if (gn->tag != DER_CTX(1) && gn->tag != DER_CTX(2) && gn->tag != DER_CTX(6) &&
	    gn->tag != DER_CTX(7))
		return 1;
	out->v = *gn;
	return 0;
}

/* n bytes at a and b equal, ignoring ASCII case. */
static int case_eq(const unsigned char *a, const unsigned char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

/* A host within a domain constraint: the domain itself or below it; a
 * constraint starting with '.' only below it; with exact (URI and email
 * hosts) a constraint not starting with '.' is that host only. */
static int host_within(const unsigned char *h, size_t n, const unsigned char *c, size_t cl,
    int exact)
{
	if (cl == 0)
		return 1;
	if (c[0] == '.')
		return n > cl && case_eq(h + n - cl, c, cl);
	if (n == cl)
		return case_eq(h, c, n);
	return !exact && n > cl && h[n - cl - 1] == '.' && case_eq(h + n - cl, c, cl);
}

/* The host of a URI ("scheme://[user@]host[:port][/...]"), or -1. */
static int uri_host(const struct der_tlv *v, const unsigned char **h, size_t *n)
{
	const unsigned char *p = v->val, *end = v->val + v->len, *s, *e, *at;

	if ((s = memmem(p, v->len, "://", 3)) == NULL)
		return -1;
	s += 3;
	for (e = s; e < end && *e != '/' && *e != '?' && *e != '#'; e++)
		;
	for (at = e; at > s && at[-1] != '@'; at--)
		;
	s = at;
	if (s < e && *s == '[')
		return -1;		/* an IP literal: no host name */
	for (at = s; at < e && *at != ':'; at++)
		;
	*h = s;
	*n = (size_t)(at - s);
	return *n > 0 ? 0 : -1;
}

/* Is name n within the subtree base (same type)? */
static int gn_within(const struct gname *n, const struct gname *b)
{
	const unsigned char *h, *c = b->v.val;
	size_t hl, cl = b->v.len, i;
	struct der a, bb;
	struct der_tlv ra, rb;

	switch (n->type) {
	case 2:		/* dNSName */
		return host_within(n->v.val, n->v.len, c, cl, 0);
	case 6:		/* URI: its host; "host" exactly, ".domain" below it */
		if (uri_host(&n->v, &h, &hl) != 0)
			return 0;
		return host_within(h, hl, c, cl, 1);
	case 1:		/* rfc822Name: "a@host" exactly, "host", ".domain" */
		if (memchr(c, '@', cl) != NULL)
			return n->v.len == cl && case_eq(n->v.val, c, cl);
		if ((h = memchr(n->v.val, '@', n->v.len)) == NULL)
			return 0;
		h++;
		hl = n->v.len - (size_t)(h - n->v.val);
		return host_within(h, hl, c, cl, 1);
	case 7:		/* iPAddress: address and mask */
		if (cl != 2 * n->v.len)
			return 0;
		for (i = 0; i < n->v.len; i++)
			if ((n->v.val[i] & c[n->v.len + i]) != (c[i] & c[n->v.len + i]))
				return 0;
		return 1;
	case 4:		/* directoryName: the base's RDNs begin the name */
		der_enter(&n->v, &a);
		der_enter(&b->v, &bb);
		while (der_read(&bb, &rb) == 1)
			if (der_read(&a, &ra) != 1 || !tlv_same(&ra, &rb))
				return 0;
		return 1;
	}
	return 0;
}

/* Is name n allowed by the NameConstraints nc: within no excluded subtree
 * and, if there are permitted subtrees of its type, within one of them? */
static int nc_allows(const struct der_tlv *nc, const struct gname *n)
{
	struct der d, subs, st;
	struct der_tlv list, sub, base;
	struct gname b;
	int seen = 0, in = 0, r;

	der_enter(nc, &d);
	while (der_read(&d, &list) == 1) {
		int excluded = list.tag == DER_CTX_CONS(1);

		if (list.tag != DER_CTX_CONS(0) && !excluded)
			return 0;
		der_enter(&list, &subs);
		while (der_read(&subs, &sub) == 1) {
			if (sub.tag != DER_SEQUENCE)
				return 0;
			der_enter(&sub, &st);
			if (der_read(&st, &base) != 1 || (r = gn_read(&base, &b)) < 0)
				return 0;
			if (r > 0 || b.type != n->type)
				continue;
			if (excluded && gn_within(n, &b))
				return 0;
			if (!excluded) {
				seen = 1;
				in = in || gn_within(n, &b);
			}
		}
	}
	return !seen || in;
}

/* Name constraints checked on a leaf's CNs (when it has no dNSName). */
struct nc_cn {
	const struct der_tlv *nc;
	int bad;
};

static void nc_cn_attr(const struct der_tlv *oid, const struct der_tlv *val, int more, void *arg)
{
	static const unsigned char cn[] = { 0x55, 0x04, 0x03 };
	struct nc_cn *k = arg;
	struct gname n;
	size_t i;

	(void)more;
	if (!der_oid_is(oid, cn, sizeof(cn)) || str_step(val) != 1 || val->len == 0 ||
	    memchr(val->val, '.', val->len) == NULL)
		return;
	for (i = 0; i < val->len; i++) {
		unsigned char ch = val->val[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '*'))
			return;		/* not a host name */
	}
	n.type = 2;
	n.v = *val;
	if (!nc_allows(k->nc, &n))
		k->bad = 1;
}

/* Every name of x within ca's name constraints? */
static int nc_ok(const struct x509 *ca, const struct x509 *x, int leaf)
{
	struct der d;
	struct der_tlv gn;
	struct gname n;
	int dns = 0, r;

	if (!ca->nc_present)
		return 1;
	if (x->san_present) {
		der_enter(&x->san, &d);
		while (der_read(&d, &gn) == 1) {
			if ((r = gn_read(&gn, &n)) < 0)
				return 0;
			if (r > 0)
				continue;
			dns |= n.type == 2;
			if (!nc_allows(&ca->nc, &n))
				return 0;
		}
	}
	if (x->subject.len > 0) {
		n.type = 4;
		n.v = x->subject;
		if (!nc_allows(&ca->nc, &n))
			return 0;
	}
	if (leaf && !dns) {
		struct nc_cn k = { &ca->nc, 0 };

		if (name_walk(&x->subject, nc_cn_attr, &k) != 0 || k.bad)
			return 0;
	}
	return 1;
}

/** x509_chain_check(peer, npeer, anchors, nanchors, anchored): see x509.h. */
const char *x509_chain_check(const struct x509 *peer, size_t npeer,
    const struct x509 *anchors, size_t nanchors, int *anchored)
{
	const struct x509 *path[X509_PATH_MAX], *next;
	unsigned char used[X509_PATH_MAX] = { 0 };
	size_t n = 0, i, j, below;

	*anchored = 0;
	if (npeer == 0)
		return NULL;
	if (npeer > X509_PATH_MAX)
		npeer = X509_PATH_MAX;	/* wolfSSL's own limit is lower */
	path[n++] = &peer[0];
	used[0] = 1;
	while (n < X509_PATH_MAX && !x509_self_issued(path[n - 1])) {
		/* an anchor first: a peer may send the root too; above an anchor,
		 * only anchors */
		if ((next = anchor_of(path[n - 1], anchors, nanchors)) != NULL) {
			*anchored = 1;
			path[n++] = next;
			continue;
		}
		if (*anchored)
			break;
		for (i = 1; i < npeer; i++)
			if (!used[i] && issued_by(path[n - 1], &peer[i]))
				break;
		if (i == npeer)
			break;
		used[i] = 1;
		path[n++] = &peer[i];
	}
	for (i = 0; i < n; i++)
		if (!x509_key_ok(path[i]))
			return "weak_key";
	for (i = 0; i < n; i++)
		if (!x509_self_issued(path[i]) && !x509_sig_ok(path[i]))
			return "weak_signature";
	for (i = 1; i < n; i++) {
		const struct x509 *ca = path[i];

		if (!ca->bc_present || !ca->is_ca ||
		    (ca->ku_present && !(ca->ku & X509_KU_KEY_CERT_SIGN)))
			return "issuer_not_ca";
		/* RFC 5280 4.2.1.9: the non-self-issued intermediates below it */
		for (below = 0, j = 1; j < i; j++)
			below += !x509_self_issued(path[j]);
		if (ca->path_len >= 0 && below > (size_t)ca->path_len)
			return "path_length";
	}
	for (i = 1; i < n; i++)
		for (j = 0; j < i; j++)
			if ((j == 0 || !x509_self_issued(path[j])) && !nc_ok(path[i], path[j], j == 0))
				return "name_constraints";
	return NULL;
}

/** x509_crl_parse(der, len, issuer, next_update, why): the issuer Name and
 *  nextUpdate of one DER CRL (RFC 5280 5.1); *next_update is 0 when the CRL
 *  has none.  issuer borrows from der.  Returns 0, or -1 with a short reason
 *  in *why. */
int x509_crl_parse(const unsigned char *der, size_t len, struct der_tlv *issuer,
    time_t *next_update, const char **why)
{
	struct der d, tbs;
	struct der_tlv crl, t, at;
	time_t this_update;

	*why = "not a DER CRL";
	*next_update = 0;
	der_init(&d, der, len);
	if (der_expect(&d, DER_SEQUENCE, &crl) != 0 || d.len != 0)
		return -1;
	der_enter(&crl, &d);
	if (der_expect(&d, DER_SEQUENCE, &t) != 0)
		return -1;
	der_enter(&t, &tbs);
	if (der_peek(&tbs) == DER_INTEGER && der_read(&tbs, &t) != 1)	/* version */
		return -1;
	if (der_expect(&tbs, DER_SEQUENCE, &t) != 0 ||			/* signature */
	    der_expect(&tbs, DER_SEQUENCE, issuer) != 0 ||
	    der_read(&tbs, &at) != 1 || parse_time(&at, &this_update) != 0) {
		*why = "malformed CRL";
		return -1;
	}
	if ((der_peek(&tbs) == DER_UTCTIME || der_peek(&tbs) == DER_GENTIME) &&
	    (der_read(&tbs, &at) != 1 || parse_time(&at, next_update) != 0)) {
		*why = "malformed CRL nextUpdate";
		return -1;
	}
	return 0;
}

/** x509_time_text(t, buf, n): t as "2025-01-31T12:00:00Z".  Returns buf. */
const char *x509_time_text(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "(bad time)");
	return buf;
}

/** x509_pem(der, len, pem, pemlen): a DER certificate as PEM in a malloc'd
 *  buffer the caller frees.  Returns 0 or -1. */
int x509_pem(const unsigned char *der, size_t len, char **pem, size_t *pemlen)
{
	size_t cap = len * 2 + 128;
	char *p = malloc(cap);
	int r;

	if (p == NULL)
		return -1;
	r = wc_DerToPem(der, (word32)len, (byte *)p, (word32)cap, CERT_TYPE);
	if (r <= 0) {
		free(p);
		return -1;
	}
	*pem = p;
	*pemlen = (size_t)r;
	return 0;
}

/* ---- a peer's identity ---- */

static const unsigned char oid_cn[] = { 0x55, 0x04, 0x03 };
static const unsigned char oid_ou[] = { 0x55, 0x04, 0x0b };

/*- An identity is built by running the same code twice: the first pass
 * (base NULL) only counts names and string bytes, the second writes into one
 * block of exactly that size laid out as [struct][pointer arrays][strings].
 * One allocation, bounded by the certificate, freed by one free(). */
struct id_build {
	char *base;			/* NULL while measuring */
	size_t off, cap;		/* next string byte; block size */
	const char **cn, **ou, **dns, **uri, **ip;	/* NULL while measuring */
	size_t n_cn, n_ou, n_dns, n_uri, n_ip;
	int bad;			/* a malformed subject or SAN */
};

/* Where the next string goes (NULL while measuring) and how much room it has;
 * the string is empty until something is put there. */
static char *id_begin(struct id_build *b, size_t *room)
{
	if (b->base == NULL) {
		*room = 0;
		return NULL;
	}
	*room = b->cap - b->off;
	b->base[b->off] = '\0';
	return b->base + b->off;
}

/* Close the string of len bytes started at p by id_begin(). */
static const char *id_end(struct id_build *b, char *p, size_t len)
{
	b->off += len + 1;
	return p;
}

/* Append s to a name array (only counted while measuring). */
static void id_push(const char **arr, size_t *n, const char *s)
{
	if (arr != NULL)
		arr[*n] = s;
	(*n)++;
}

static const char *id_value(struct id_build *b, const struct der_tlv *v)
{
	size_t room, len = 0;
	char *p = id_begin(b, &room);

	put_string(p, room, &len, v, STR_RAW);
	return id_end(b, p, len);
}

static const char *id_name_line(struct id_build *b, const struct der_tlv *name)
{
	size_t room;
	char *p = id_begin(b, &room);

	return id_end(b, p, name_line(name, p, room));
}

static void id_attr(const struct der_tlv *oid, const struct der_tlv *val, int more,
    void *arg)
{
	struct id_build *b = arg;

	(void)more;
	if (str_has_nul(val))
		return;
	if (der_oid_is(oid, oid_cn, sizeof(oid_cn)))
		id_push(b->cn, &b->n_cn, id_value(b, val));
	else if (der_oid_is(oid, oid_ou, sizeof(oid_ou)))
		id_push(b->ou, &b->n_ou, id_value(b, val));
}

static void id_san(struct id_build *b, const struct x509 *x)
{
	struct der d;
	struct der_tlv gn;
	char tmp[INET6_ADDRSTRLEN];
	size_t room, len;
	char *p;
	int r;

	if (!x->san_present)
		return;
	der_enter(&x->san, &d);
	while ((r = der_read(&d, &gn)) == 1) {
		switch (gn.tag) {
		case DER_CTX(2):
			if (!str_has_nul(&gn))
				id_push(b->dns, &b->n_dns, id_value(b, &gn));
			break;
		case DER_CTX(6):
			if (!str_has_nul(&gn))
				id_push(b->uri, &b->n_uri, id_value(b, &gn));
			break;
		case DER_CTX(7):
			len = 0;
			p = id_begin(b, &room);
			if ((gn.len == 4 && inet_ntop(AF_INET, gn.val, tmp, sizeof(tmp)) != NULL) ||
			    (gn.len == 16 && inet_ntop(AF_INET6, gn.val, tmp, sizeof(tmp)) != NULL))
				put(p, room, &len, tmp, strlen(tmp));
			else
				put_hex(p, room, &len, gn.val, gn.len);
			id_push(b->ip, &b->n_ip, id_end(b, p, len));
			break;
		default:
			break;		/* email, DirName, ...: no rule looks at them */
		}
	}
	if (r < 0)
		b->bad = 1;
}

/* One pass over x: the strings and names into b, the fixed fields into id
 * (NULL while measuring). */
static void id_fill(struct id_build *b, const struct x509 *x, struct x509_identity *id)
{
	const unsigned char *sp = x->serial.val;
	size_t sn = x->serial.len, room, len = 0;
	const char *subject, *issuer, *serial;
	char *p;

	subject = id_name_line(b, &x->subject);
	issuer = id_name_line(b, &x->issuer);
	while (sn > 1 && sp[0] == 0) {
		sp++;
		sn--;
	}
	p = id_begin(b, &room);
	put_hex(p, room, &len, sp, sn);
	serial = id_end(b, p, len);
	if (name_walk(&x->subject, id_attr, b) != 0)
		b->bad = 1;
	id_san(b, x);
	if (id != NULL) {
		id->subject = subject;
		id->issuer = issuer;
		id->serial = serial;
		id->not_before = x->not_before;
		id->not_after = x->not_after;
	}
}

/** x509_identity_new(der, len, id, why): parse one DER certificate of at most
 *  X509_ID_MAX_DER bytes into *id, one malloc'd block the caller releases
 *  with x509_identity_free() and which does not borrow from der.  Returns 0,
 *  or -1 with a short reason in *why (not a certificate, too large, out of
 *  memory). */
int x509_identity_new(const unsigned char *der, size_t len, struct x509_identity **id,
    const char **why)
{
	struct x509 x;
	struct id_build m = { 0 }, b = { 0 };
	struct x509_identity *out;
	size_t names, arrays;

	*id = NULL;
	if (len > X509_ID_MAX_DER) {
		*why = "certificate too large";
		return -1;
	}
	if (x509_parse(&x, der, len, why) != 0)
		return -1;
	id_fill(&m, &x, NULL);
	if (m.bad) {
		*why = "malformed subject name or subjectAltName";
		return -1;
	}
	names = m.n_cn + m.n_ou + m.n_dns + m.n_uri + m.n_ip;
	arrays = sizeof(*out) + names * sizeof(char *);	/* aligned: out holds pointers */
	b.cap = arrays + m.off;
	b.base = calloc(1, b.cap);
	if (b.base == NULL) {
		*why = "out of memory";
		return -1;
	}
	out = (struct x509_identity *)(void *)b.base;
	b.cn = (const char **)(void *)(b.base + sizeof(*out));
	b.ou = b.cn + m.n_cn;
	b.dns = b.ou + m.n_ou;
	b.uri = b.dns + m.n_dns;
	b.ip = b.uri + m.n_uri;
	b.off = arrays;
	id_fill(&b, &x, out);
	if (b.off != b.cap || b.n_cn != m.n_cn || b.n_ou != m.n_ou || b.n_dns != m.n_dns ||
	    b.n_uri != m.n_uri || b.n_ip != m.n_ip) {
		free(b.base);		/* cannot happen: both passes run the same code */
		*why = "internal error measuring the identity";
		return -1;
	}
	out->cn = b.cn;
	out->n_cn = b.n_cn;
	out->ou = b.ou;
	out->n_ou = b.n_ou;
	out->dns = b.dns;
	out->n_dns = b.n_dns;
	out->uri = b.uri;
	out->n_uri = b.n_uri;
	out->ip = b.ip;
	out->n_ip = b.n_ip;
	if (wc_Sha256Hash(der, (word32)len, out->sha256) != 0 ||
	    wc_Sha256Hash(x.spki.raw, (word32)x.spki.rawlen, out->spki_sha256) != 0) {
		free(b.base);
		*why = "SHA-256 failed";
		return -1;
	}
	*id = out;
	return 0;
}

/** x509_identity_free(id): release what x509_identity_new() made; NULL is
 *  fine. */
void x509_identity_free(struct x509_identity *id)
{
	free(id);
}
