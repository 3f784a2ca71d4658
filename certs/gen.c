/* gen: make and sign one certificate; see gen.h for the profile. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "der.h"
#include "der_buf.h"

#define GEN_DER_MAX 16384	/* a certificate with an RSA 4096 key and many SANs */

/* A UTCTime before 2050, a GeneralizedTime from then on (RFC 5280 4.1.2.5),
 * as a whole element into out (CTC_DATE_SIZE bytes).  Returns its length. */
static int put_time(unsigned char *out, time_t t)
{
	struct tm tm;
	char s[32];
	int n, year;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	year = tm.tm_year + 1900;
	if (year < 2050) {
		out[0] = DER_UTCTIME;
		n = snprintf(s, sizeof(s), "%02d", year % 100);
	} else {
		out[0] = DER_GENTIME;
		n = snprintf(s, sizeof(s), "%04d", year);
	}
	n += snprintf(s + n, sizeof(s) - (size_t)n, "%02d%02d%02d%02d%02dZ", tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n != 13 && n != 15)
		return -1;
	out[1] = (unsigned char)n;
	memcpy(out + 2, s, (size_t)n);
	return n + 2;
}

/*-
 * wolfSSL 5.5 writes basicConstraints without the critical flag, and copies
 * the issuer name through a C string (cut short at a zero byte).  Re-encode
 * the to-be-signed body it made, before signing: the issuer becomes the
 * signer's subject byte for byte (what chain building compares), and
 * basicConstraints is marked critical (RFC 5280 4.2.1.9 for a CA; what
 * OpenSSL's strict mode and most verifiers expect).
 */
static int tbs_finish(const unsigned char *tbs, size_t len, const struct der_tlv *issuer,
    struct der_buf *out)
{
	static const unsigned char oid_bc[] = { 0x55, 0x1d, 0x13 };
	static const unsigned char crit[] = { DER_BOOLEAN, 1, 0xff };
	struct der d, body, x, exts;
	struct der_tlv t, e, ext, oid;
	struct der_buf b = { 0 }, list = { 0 }, wrap = { 0 };
	int i = 0, ret = -1;

	der_init(&d, tbs, len);
	if (der_expect(&d, DER_SEQUENCE, &t) != 0)
		goto out;
	der_enter(&t, &body);
	while (der_read(&body, &e) == 1) {
		/* [0] version, then serial, signature, issuer, ... */
		int idx = e.tag == DER_CTX_CONS(0) && i == 0 ? -1 : i++;

		if (idx == 2 && issuer != NULL) {
			der_buf_put(&b, issuer->raw, issuer->rawlen);
			continue;
		}
		if (e.tag != DER_CTX_CONS(3)) {
			der_buf_put(&b, e.raw, e.rawlen);
			continue;
		}
		der_enter(&e, &x);
		if (der_expect(&x, DER_SEQUENCE, &t) != 0)
			goto out;
		der_enter(&t, &exts);
		while (der_read(&exts, &ext) == 1) {
			struct der ed;
			struct der_tlv rest;

			der_enter(&ext, &ed);
			if (der_expect(&ed, DER_OID, &oid) != 0)
				goto out;
			if (!der_oid_is(&oid, oid_bc, sizeof(oid_bc)) || der_peek(&ed) == DER_BOOLEAN) {
				der_buf_put(&list, ext.raw, ext.rawlen);
				continue;
			}
			if (der_expect(&ed, DER_OCTET_STRING, &rest) != 0)
				goto out;
			der_buf_free(&wrap);
			der_buf_put(&wrap, oid.raw, oid.rawlen);
			der_buf_put(&wrap, crit, sizeof(crit));
			der_buf_put(&wrap, rest.raw, rest.rawlen);
			if (wrap.err)
				goto out;
			der_buf_tlv(&list, DER_SEQUENCE, wrap.p, wrap.len);
		}
		der_buf_free(&wrap);
		der_buf_tlv(&wrap, DER_SEQUENCE, list.p, list.len);
		der_buf_tlv(&b, DER_CTX_CONS(3), wrap.p, wrap.len);
	}
	if (i < 6 || b.err || list.err || wrap.err)
		goto out;
	der_buf_tlv(out, DER_SEQUENCE, b.p, b.len);
	ret = out->err ? -1 : 0;
out:
	der_buf_free(&b);
	der_buf_free(&list);
	der_buf_free(&wrap);
	return ret;
}

/** gen_cert(req, rng, der, len, err, errsz): make and sign the certificate
 *  req describes, into a malloc'd DER buffer the caller frees.  Returns 0, or
 *  -1 with the cause in err. */
int gen_cert(const struct gen_req *req, WC_RNG *rng, unsigned char **der, size_t *len,
    char *err, size_t errsz)
{
	struct key *signer = req->ca_key != NULL ? req->ca_key : req->key;
	struct der_buf san = { 0 }, tbs = { 0 };
	unsigned char *buf = NULL;
	const char *ku;
	time_t now = time(NULL);
	Cert *c;
	int r, ret = -1;

	if (strlen(req->cn) == 0 || strlen(req->cn) >= CTC_NAME_SIZE) {
		snprintf(err, errsz, "--cn '%s': must be 1 to %d bytes", req->cn,
		    CTC_NAME_SIZE - 1);
		return -1;
	}
	c = malloc(sizeof(*c));		/* ~20 KB: the SAN buffer is inside */
	buf = malloc(GEN_DER_MAX);
	if (c == NULL || buf == NULL) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	if ((r = wc_InitCert(c)) != 0)
		goto wolf;

	memcpy(c->subject.commonName, req->cn, strlen(req->cn) + 1);
	c->subject.commonNameEnc = CTC_UTF8;
	c->sigType = key_sig_type(signer);

	/* Serial: random, positive, always 16 bytes long (top bits 01). */
	if ((r = wc_RNG_GenerateBlock(rng, c->serial, GEN_SERIAL_LEN)) != 0)
		goto wolf;
	c->serial[0] = (unsigned char)((c->serial[0] & 0x3f) | 0x40);
	c->serialSz = GEN_SERIAL_LEN;

	c->beforeDateSz = put_time(c->beforeDate, now - GEN_BACKDATE);
	c->afterDateSz = put_time(c->afterDate, now + (time_t)req->days * 86400);
	if (c->beforeDateSz < 0 || c->afterDateSz < 0) {
		snprintf(err, errsz, "--days %d: date out of range", req->days);
		goto out;
	}

	if (req->is_ca) {
		c->isCA = 1;
		c->pathLen = 0;		/* signs leaves only */
		c->pathLenSet = 1;
		ku = "keyCertSign,cRLSign";
	} else {
		c->basicConstSet = 1;	/* CA:FALSE */
		ku = req->server_auth && req->key->type == KEY_RSA
		    ? "digitalSignature,keyEncipherment" : "digitalSignature";
	}
	if ((r = wc_SetKeyUsage(c, ku)) != 0)
		goto wolf;
	if (!req->is_ca && (req->server_auth || req->client_auth)) {
		r = wc_SetExtKeyUsage(c, req->server_auth && req->client_auth
		    ? "serverAuth,clientAuth" : req->server_auth ? "serverAuth" : "clientAuth");
		if (r != 0)
			goto wolf;
	}

	if (req->sanlen > 0) {
		der_buf_tlv(&san, DER_SEQUENCE, req->san, req->sanlen);
		if (san.err || san.len > sizeof(c->altNames)) {
			snprintf(err, errsz, "--san: too many names (%zu bytes encoded, "
			    "at most %zu)", san.len, sizeof(c->altNames));
			goto out;
		}
		memcpy(c->altNames, san.p, san.len);
		c->altNamesSz = (int)san.len;
	}

	r = wc_SetSubjectKeyIdFromPublicKey_ex(c, key_wc_type(req->key), key_wc(req->key));
	if (r != 0)
		goto wolf;
	if (req->ca == NULL) {
		memcpy(c->akid, c->skid, (size_t)c->skidSz);	/* self-signed */
		c->akidSz = c->skidSz;
	} else if (req->ca->skid.len > 0 && req->ca->skid.len <= CTC_MAX_AKID_SIZE) {
		/* The issuer's SKID as it is: wolfSSL would hash one that is
		 * not 20 bytes long, and then nothing would match it. */
		memcpy(c->akid, req->ca->skid.val, req->ca->skid.len);
		c->akidSz = (int)req->ca->skid.len;
	} else {
		r = wc_SetAuthKeyIdFromPublicKey_ex(c, key_wc_type(req->ca_key),
		    key_wc(req->ca_key));
		if (r != 0)
			goto wolf;
	}
	if (req->ca != NULL) {
		c->selfSigned = 0;
		/* Best effort: tbs_finish() puts the exact name in anyway. */
		(void)wc_SetIssuerRaw(c, req->ca->der, (int)req->ca->derlen);
	}

	r = wc_MakeCert_ex(c, buf, GEN_DER_MAX, key_wc_type(req->key), key_wc(req->key), rng);
	if (r <= 0)
		goto wolf;
	if (tbs_finish(buf, (size_t)r, req->ca != NULL ? &req->ca->subject : NULL, &tbs) != 0 ||
	    tbs.len > GEN_DER_MAX / 2) {
		snprintf(err, errsz, "cannot re-encode the certificate body");
		goto out;
	}
	memcpy(buf, tbs.p, tbs.len);
	r = wc_SignCert_ex((int)tbs.len, c->sigType, buf, GEN_DER_MAX, key_wc_type(signer),
	    key_wc(signer), rng);
	if (r <= 0)
		goto wolf;
	*der = buf;
	*len = (size_t)r;
	buf = NULL;
	ret = 0;
	goto out;

wolf:
	snprintf(err, errsz, "wolfSSL cannot make the certificate: %s (%d)",
	    wc_GetErrorString(r), r);
out:
	der_buf_free(&san);
	der_buf_free(&tbs);
	free(buf);
	free(c);
	return ret;
}
