/* text: a certificate's parts as tlsfwd-certs prints them; see text.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "text.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "x509_name.h"

/** text_name(name, buf, n): a Name as "C=US, O=Example, CN=host", in
 *  encoded order, RFC 4514 escapes for ',', '+', '"', '\\', '<', '>', ';'
 *  and '#'/space where they need them, other bytes outside printable ASCII
 *  as \XX.  Returns buf (truncated to n - 1 bytes if it must be). */
const char *text_name(const struct der_tlv *name, char *buf, size_t n)
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
				x509_name_put(buf, n, &off, first_in_rdn ? ", " : " + ", first_in_rdn ? 2 : 3);
			first = first_in_rdn = 0;
			sn = x509_name_attr(&oid, tmp, sizeof(tmp));
			x509_name_put(buf, n, &off, sn, strlen(sn));
			x509_name_put(buf, n, &off, "=", 1);
			x509_name_value(buf, n, &off, &val, X509_NAME_RFC4514);
		}
	}
	return buf;
bad:
	snprintf(buf, n, "(malformed name)");
	return buf;
}

/** text_gn(gn, buf, n): one GeneralName in --san syntax: "DNS:name",
 *  "IP:10.0.0.5", "URI:spiffe://...", "email:a@b", "DirName:CN=x",
 *  "RID:1.2.3", "othername:1.2.3" or "[n]:hex".  Returns buf. */
const char *text_gn(const struct der_tlv *gn, char *buf, size_t n)
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
		x509_name_put(buf, n, &off, "email:", 6);
		x509_name_value(buf, n, &off, gn, X509_NAME_TEXT);
		break;
	case DER_CTX(2):
		x509_name_put(buf, n, &off, "DNS:", 4);
		x509_name_value(buf, n, &off, gn, X509_NAME_TEXT);
		break;
	case DER_CTX(6):
		x509_name_put(buf, n, &off, "URI:", 4);
		x509_name_value(buf, n, &off, gn, X509_NAME_TEXT);
		break;
	case DER_CTX(7):
		x509_name_put(buf, n, &off, "IP:", 3);
		if (gn->len == 4 && inet_ntop(AF_INET, gn->val, tmp, sizeof(tmp)) != NULL)
			x509_name_put(buf, n, &off, tmp, strlen(tmp));
		else if (gn->len == 16 && inet_ntop(AF_INET6, gn->val, tmp, sizeof(tmp)) != NULL)
			x509_name_put(buf, n, &off, tmp, strlen(tmp));
		else
			x509_name_hex(buf, n, &off, gn->val, gn->len);
		break;
	case DER_CTX(8):
		x509_name_put(buf, n, &off, "RID:", 4);
		der_oid_text(gn->val, gn->len, tmp, sizeof(tmp));
		x509_name_put(buf, n, &off, tmp, strlen(tmp));
		break;
	case DER_CTX_CONS(4):
		x509_name_put(buf, n, &off, "DirName:", 8);
		der_enter(gn, &d);
		if (der_expect(&d, DER_SEQUENCE, &t) == 0) {
			char name[512];

			text_name(&t, name, sizeof(name));
			x509_name_put(buf, n, &off, name, strlen(name));
		}
		break;
	case DER_CTX_CONS(0):
		x509_name_put(buf, n, &off, "othername:", 10);
		der_enter(gn, &d);
		if (der_expect(&d, DER_OID, &t) == 0) {
			der_oid_text(t.val, t.len, tmp, sizeof(tmp));
			x509_name_put(buf, n, &off, tmp, strlen(tmp));
		}
		break;
	default:
		snprintf(tmp, sizeof(tmp), "[%u]:", gn->tag & 0x1f);
		x509_name_put(buf, n, &off, tmp, strlen(tmp));
		x509_name_hex(buf, n, &off, gn->val, gn->len);
		break;
	}
	return buf;
}

/** text_pem(der, len, pem, pemlen): a DER certificate as PEM in a malloc'd
 *  buffer the caller frees.  Returns 0 or -1. */
int text_pem(const unsigned char *der, size_t len, char **pem, size_t *pemlen)
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
