/* x509: read an X.509 certificate field by field and judge its key and
 * signature; see x509.h. */
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The name t gives the OID with contents val, or NULL; buf gets the dotted
 * OID either way. */
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
