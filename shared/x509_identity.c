/* x509_identity: a peer's identity as an allow-list sees it; see
 * x509_identity.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "x509_identity.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "x509.h"
#include "x509_name.h"

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

	x509_name_value(p, room, &len, v, X509_NAME_RAW);
	return id_end(b, p, len);
}

static const char *id_name_line(struct id_build *b, const struct der_tlv *name)
{
	size_t room;
	char *p = id_begin(b, &room);

	return id_end(b, p, x509_name_line_n(name, p, room));
}

static void id_attr(const struct der_tlv *oid, const struct der_tlv *val, int more,
    void *arg)
{
	struct id_build *b = arg;

	(void)more;
	if (x509_name_has_nul(val))
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
			if (!x509_name_has_nul(&gn))
				id_push(b->dns, &b->n_dns, id_value(b, &gn));
			break;
		case DER_CTX(6):
			if (!x509_name_has_nul(&gn))
				id_push(b->uri, &b->n_uri, id_value(b, &gn));
			break;
		case DER_CTX(7):
			len = 0;
			p = id_begin(b, &room);
			if ((gn.len == 4 && inet_ntop(AF_INET, gn.val, tmp, sizeof(tmp)) != NULL) ||
			    (gn.len == 16 && inet_ntop(AF_INET6, gn.val, tmp, sizeof(tmp)) != NULL))
				x509_name_put(p, room, &len, tmp, strlen(tmp));
			else
				x509_name_hex(p, room, &len, gn.val, gn.len);
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
	x509_name_hex(p, room, &len, sp, sn);
	serial = id_end(b, p, len);
	if (x509_name_walk(&x->subject, id_attr, b) != 0)
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
