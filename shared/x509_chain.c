/* x509_chain: the path checks wolfSSL skips; see x509_chain.h. */
#include "x509_chain.h"

#include <string.h>

#include "x509_name.h"

/* Non-zero if the two elements are encoded alike, byte for byte. */
static int tlv_same(const struct der_tlv *a, const struct der_tlv *b)
{
	return a->rawlen == b->rawlen && memcmp(a->raw, b->raw, a->rawlen) == 0;
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
	if (!der_oid_is(oid, cn, sizeof(cn)) || x509_name_unit(val) != 1 || val->len == 0 ||
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

		if (x509_name_walk(&x->subject, nc_cn_attr, &k) != 0 || k.bad)
			return 0;
	}
	return 1;
}

/** x509_chain_check(peer, npeer, anchors, nanchors, anchored): see
 *  x509_chain.h. */
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
