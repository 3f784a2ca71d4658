/* x509_name: the names in a certificate as text; see x509_name.h. */
#include "x509_name.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fp.h"

/* The attribute types named in a Name's text; the rest print as dotted OIDs. */
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

/** x509_name_attr(oid, buf, n): the short name of an attribute type, or its
 *  dotted OID in buf.  Returns the name or buf. */
const char *x509_name_attr(const struct der_tlv *oid, char *buf, size_t n)
{
	const struct oid_name *t;

	der_oid_text(oid->val, oid->len, buf, n);
	for (t = attr_names; t->oid != NULL; t++)
		if (strcmp(t->oid, buf) == 0)
			return t->name;
	return buf;
}

/** x509_name_put(buf, n, off, s, len): append to buf at *off, never past
 *  n - 1, keeping buf terminated.  With buf NULL only *off moves: the same
 *  code measures what it would write. */
void x509_name_put(char *buf, size_t n, size_t *off, const char *s, size_t len)
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

/* Append code point c as UTF-8 (U+FFFD if it has no UTF-8 form). */
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
	x509_name_put(buf, n, off, u, k);
}

/** x509_name_unit(v): the code unit size of a string type: 4 for UniversalString, 2 for
 * BMPString, 1 for the rest. */
size_t x509_name_unit(const struct der_tlv *v)
{
	if (v->tag == DER_BMPSTRING)
		return 2;
	if (v->tag == DER_UNIVERSAL)
		return 4;
	return 1;
}

/** x509_name_has_nul(v): non-zero if the value decodes to a string holding U+0000, or a code point
 * beyond U+10FFFF (a UniversalString can hold one): neither has a UTF-8 form
 * that could be matched as it is. */
int x509_name_has_nul(const struct der_tlv *v)
{
	size_t i, k, step = x509_name_unit(v);

	for (i = 0; i + step <= v->len; i += step) {
		uint32_t c = 0;

		for (k = 0; k < step; k++)
			c = (c << 8) | v->val[i + k];
		if (c == 0 || c > 0x10ffff)
			return 1;
	}
	return 0;
}

/** x509_name_value(buf, n, off, v, form): a string value as UTF-8, written
 *  in the given form. */
void x509_name_value(char *buf, size_t n, size_t *off, const struct der_tlv *v,
    enum x509_name_form form)
{
	size_t i, step = x509_name_unit(v), start = *off;
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
		if ((c < 0x20 || c == 0x7f) && form != X509_NAME_RAW) {
			snprintf(esc, sizeof(esc), form == X509_NAME_LINE ? "\\x%02X" : "\\%02X",
			    (unsigned)c);
			x509_name_put(buf, n, off, esc, strlen(esc));
			continue;
		}
		if (form == X509_NAME_LINE && (c == '/' || c == '+' || c == '\\'))
			x509_name_put(buf, n, off, "\\", 1);
		if (form == X509_NAME_RFC4514 && (strchr(",+\"\\<>;", (int)c) != NULL ||
		    (c == '#' && *off == start) ||
		    (c == ' ' && (*off == start || i + step >= v->len))))
			x509_name_put(buf, n, off, "\\", 1);
		esc[0] = (char)c;
		x509_name_put(buf, n, off, esc, 1);
	}
}

/** x509_name_walk(name, fn, arg): call fn(oid, val, more, arg) for every attribute of a Name, in encoded
 * order; more is set for the second and later attributes of one RDN.
 * Returns 0, or -1 if the Name is malformed (after the good part). */
int x509_name_walk(const struct der_tlv *name,
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

/* One attribute of x509_name_line(): "/CN=value", "+" before the second and
 * later of one RDN. */
static void line_attr(const struct der_tlv *oid, const struct der_tlv *val, int more,
    void *arg)
{
	struct line_out *o = arg;
	const char *sn;
	char tmp[96];

	sn = x509_name_attr(oid, tmp, sizeof(tmp));
	x509_name_put(o->buf, o->n, &o->off, more ? "+" : "/", 1);
	x509_name_put(o->buf, o->n, &o->off, sn, strlen(sn));
	x509_name_put(o->buf, o->n, &o->off, "=", 1);
	x509_name_value(o->buf, o->n, &o->off, val, X509_NAME_LINE);
}

/** x509_name_line_n(name, buf, n): x509_name_line() into buf, or its length
 *  without the NUL if buf is NULL. */
size_t x509_name_line_n(const struct der_tlv *name, char *buf, size_t n)
{
	struct line_out o = { buf, n, 0 };

	if (buf != NULL)
		buf[0] = '\0';
	if (x509_name_walk(name, line_attr, &o) != 0)
		x509_name_put(buf, n, &o.off, "/(malformed name)", 17);
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
	x509_name_line_n(name, buf, n);
	return buf;
}

/** x509_name_hex(buf, n, off, p, len): len bytes as lowercase hex (fp_hex),
 *  appended with x509_name_put(). */
void x509_name_hex(char *buf, size_t n, size_t *off, const unsigned char *p, size_t len)
{
	char h[2 * 32 + 1];
	size_t i, k;

	for (i = 0; i < len; i += k) {
		k = len - i < 32 ? len - i : 32;
		x509_name_put(buf, n, off, fp_hex(p + i, k, h, sizeof(h)), 2 * k);
	}
}
