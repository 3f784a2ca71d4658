/* key: private keys on wolfCrypt; see key.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

#define KEY_DER_MAX 4096	/* an RSA 4096 key is about 2.4 KB in DER */

/** key_parse_spec(spec, type, bits, why): read a --key value.  Returns 0, or
 *  -1 with a reason in *why. */
int key_parse_spec(const char *spec, enum key_type *type, int *bits, const char **why)
{
	static const struct {
		const char *name;
		enum key_type type;
		int bits;
	} specs[] = {
		{ "ec", KEY_EC, 256 }, { "ec256", KEY_EC, 256 }, { "p256", KEY_EC, 256 },
		{ "ec384", KEY_EC, 384 }, { "p384", KEY_EC, 384 },
		{ "rsa", KEY_RSA, 2048 }, { "rsa2048", KEY_RSA, 2048 },
		{ "rsa3072", KEY_RSA, 3072 }, { "rsa4096", KEY_RSA, 4096 },
	};
	size_t i;

	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		if (strcmp(spec, specs[i].name) == 0) {
			*type = specs[i].type;
			*bits = specs[i].bits;
			return 0;
		}
	}
	*why = "expected ec (ECDSA P-256), ec384, rsa (RSA 2048), rsa3072 or rsa4096";
	return -1;
}

static int curve_bits(int id)
{
	switch (id) {
	case ECC_SECP256R1:
		return 256;
	case ECC_SECP384R1:
		return 384;
	case ECC_SECP521R1:
		return 521;
	default:
		return 0;
	}
}

/** key_generate(k, type, bits, rng, err, errsz): a new key into k, which the
 *  caller releases with key_free().  Returns 0, or -1 with the cause in err. */
int key_generate(struct key *k, enum key_type type, int bits, WC_RNG *rng, char *err,
    size_t errsz)
{
	int r;

	memset(k, 0, sizeof(*k));
	if (type == KEY_EC) {
		int curve = bits == 384 ? ECC_SECP384R1 : bits == 521 ? ECC_SECP521R1
		    : ECC_SECP256R1;

		if ((r = wc_ecc_init(&k->ec)) != 0)
			goto fail;
		k->type = KEY_EC;
		k->bits = curve_bits(curve);
		r = wc_ecc_make_key_ex(rng, wc_ecc_get_curve_size_from_id(curve), &k->ec, curve);
		if (r != 0)
			goto fail;
		wc_ecc_set_rng(&k->ec, rng);
		return 0;
	}
	if ((r = wc_InitRsaKey(&k->rsa, NULL)) != 0)
		goto fail;
	k->type = KEY_RSA;
	k->bits = bits;
	if ((r = wc_MakeRsaKey(&k->rsa, bits, WC_RSA_EXPONENT, rng)) != 0)
		goto fail;
	wc_RsaSetRNG(&k->rsa, rng);
	return 0;

fail:
	snprintf(err, errsz, "cannot generate a %s %d key: %s",
	    type == KEY_EC ? "EC" : "RSA", bits, wc_GetErrorString(r));
	key_free(k);
	return -1;
}

/* Decode a traditional or PKCS#8 (unencrypted) DER private key. */
static int key_decode(struct key *k, const unsigned char *der, size_t len, WC_RNG *rng,
    const char *path, char *err, size_t errsz)
{
	word32 start = 0, idx;
	int r;

	memset(k, 0, sizeof(*k));
	if (wc_GetPkcs8TraditionalOffset((byte *)der, &start, (word32)len) < 0)
		start = 0;

	if (wc_ecc_init(&k->ec) != 0)
		goto unknown;
	k->type = KEY_EC;
	idx = start;
	if (wc_EccPrivateKeyDecode(der, &idx, &k->ec, (word32)len) == 0) {
		k->bits = curve_bits(wc_ecc_get_curve_id(k->ec.idx));
		if (k->bits == 0) {
			snprintf(err, errsz, "%s: unsupported EC curve (use P-256, P-384 "
			    "or P-521)", path);
			goto fail;
		}
		wc_ecc_set_rng(&k->ec, rng);
		/* A SEC1 key may come without its public point. */
		if (k->ec.type == ECC_PRIVATEKEY_ONLY &&
		    (r = wc_ecc_make_pub_ex(&k->ec, NULL, rng)) != 0) {
			snprintf(err, errsz, "%s: cannot derive the public key: %s", path,
			    wc_GetErrorString(r));
			goto fail;
		}
		return 0;
	}
	wc_ecc_free(&k->ec);
	k->type = KEY_NONE;

	if (wc_InitRsaKey(&k->rsa, NULL) != 0)
		goto unknown;
	k->type = KEY_RSA;
	idx = start;
	if (wc_RsaPrivateKeyDecode(der, &idx, &k->rsa, (word32)len) == 0) {
		k->bits = wc_RsaEncryptSize(&k->rsa) * 8;
		if (k->bits < 2048) {
			snprintf(err, errsz, "%s: RSA %d is too weak; use 2048 bits or more",
			    path, k->bits);
			goto fail;
		}
		wc_RsaSetRNG(&k->rsa, rng);
		return 0;
	}
unknown:
	snprintf(err, errsz, "%s: not an EC or RSA private key", path);
fail:
	key_free(k);
	return -1;
}

/** key_load(k, path, pass, err, errsz): read a private key file (pass may be
 *  NULL for an unencrypted one).  Returns 0, or -1 with "path: cause". */
int key_load(struct key *k, const char *path, const char *pass, WC_RNG *rng, char *err,
    size_t errsz)
{
	unsigned char *buf = NULL, *der = NULL;
	size_t n, filelen = 0, dersz = 0;
	int r, ret = -1, encrypted;

	memset(k, 0, sizeof(*k));
	if (file_read(path, &buf, &n, err, errsz) != 0)
		return -1;
	filelen = n;
	dersz = n + KEY_DER_MAX;
	der = malloc(dersz);
	if (der == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto out;
	}
	if (strstr((char *)buf, "-----BEGIN") != NULL) {
		if (strstr((char *)buf, "PRIVATE KEY-----") == NULL) {
			snprintf(err, errsz, "%s: no \"BEGIN ... PRIVATE KEY\" block in "
			    "the PEM file%s", path,
			    strstr((char *)buf, "BEGIN CERTIFICATE") != NULL
			    ? " (it holds a certificate)" : "");
			goto out;
		}
		encrypted = strstr((char *)buf, "BEGIN ENCRYPTED PRIVATE KEY") != NULL ||
		    strstr((char *)buf, "Proc-Type: 4,ENCRYPTED") != NULL;
		if (encrypted && pass == NULL) {
			snprintf(err, errsz, "%s: the key is encrypted and no passphrase "
			    "was given (use --key-pass-env VAR)", path);
			goto out;
		}
		r = wc_KeyPemToDer(buf, (int)n, der, (int)dersz,
		    encrypted ? pass : NULL);
		if (r <= 0) {
			if (encrypted)
				snprintf(err, errsz, "%s: cannot decrypt the key: wrong "
				    "passphrase? (%s)", path, wc_GetErrorString(r));
			else
				snprintf(err, errsz, "%s: bad PEM private key (%s)", path,
				    wc_GetErrorString(r));
			goto out;
		}
		n = (size_t)r;
	} else {
		memcpy(der, buf, n);
		/* DER: maybe encrypted PKCS#8, which a plain decode rejects. */
		if (key_decode(k, der, n, rng, path, err, errsz) == 0) {
			ret = 0;
			goto out;
		}
		if (pass == NULL)
			goto out;
		r = wc_DecryptPKCS8Key(der, (word32)n, pass, (int)strlen(pass));
		if (r <= 0) {
			snprintf(err, errsz, "%s: neither a DER private key nor one "
			    "encrypted with this passphrase (%s)", path, wc_GetErrorString(r));
			goto out;
		}
		n = (size_t)r;
	}
	ret = key_decode(k, der, n, rng, path, err, errsz);
out:
	if (der != NULL) {
		explicit_bzero(der, dersz);
		free(der);
	}
	explicit_bzero(buf, filelen);
	free(buf);
	return ret;
}

/** key_pem(k, pass, rng, pem, len, err, errsz): k as PKCS#8 PEM in a malloc'd
 *  buffer the caller frees (and should wipe).  Returns 0, or -1 with the
 *  cause in err. */
int key_pem(struct key *k, const char *pass, WC_RNG *rng, char **pem, size_t *len,
    char *err, size_t errsz)
{
	unsigned char trad[KEY_DER_MAX], p8[KEY_DER_MAX + 64], enc[KEY_DER_MAX + 256];
	unsigned char salt[KEY_SALT_LEN];
	unsigned char *der = p8;
	word32 p8len = sizeof(p8), enclen = sizeof(enc);
	char *out = NULL;
	int r, outsz, type = PKCS8_PRIVATEKEY_TYPE, ret = -1;

	if (k->type == KEY_EC) {
		r = wc_EccKeyToPKCS8(&k->ec, p8, &p8len);
	} else {
		r = wc_RsaKeyToDer(&k->rsa, trad, sizeof(trad));
		if (r > 0)
			r = wc_CreatePKCS8Key(p8, &p8len, trad, (word32)r, RSAk, NULL, 0);
	}
	if (r <= 0) {
		snprintf(err, errsz, "cannot encode the key: %s", wc_GetErrorString(r));
		goto out;
	}
	p8len = (word32)r;
	if (pass != NULL) {
		/*- PBES2 with AES-256-CBC: what wolfSSL's PEM loader and
		 * OpenSSL (`openssl pkey -passin`) both read.  The PRF is
		 * wolfSSL's default, HMAC-SHA1, which both support. */
		if ((r = wc_RNG_GenerateBlock(rng, salt, sizeof(salt))) != 0) {
			snprintf(err, errsz, "random: %s", wc_GetErrorString(r));
			goto out;
		}
		r = wc_EncryptPKCS8Key(p8, p8len, enc, &enclen, pass, (int)strlen(pass),
		    PKCS5, PBES2, AES256CBCb, salt, sizeof(salt), KEY_PBKDF2_ITERATIONS,
		    rng, NULL);
		if (r <= 0) {
			snprintf(err, errsz, "cannot encrypt the key: %s", wc_GetErrorString(r));
			goto out;
		}
		der = enc;
		p8len = (word32)r;
		type = PKCS8_ENC_PRIVATEKEY_TYPE;
	}
	outsz = (int)p8len * 2 + 128;
	out = malloc((size_t)outsz);
	if (out == NULL) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	r = wc_DerToPem(der, p8len, (byte *)out, (word32)outsz, type);
	if (r <= 0) {
		snprintf(err, errsz, "cannot encode the key as PEM: %s", wc_GetErrorString(r));
		explicit_bzero(out, (size_t)outsz);
		free(out);
		goto out;
	}
	*pem = out;
	*len = (size_t)r;
	ret = 0;
out:
	explicit_bzero(trad, sizeof(trad));
	explicit_bzero(p8, sizeof(p8));
	explicit_bzero(enc, sizeof(enc));
	return ret;
}

/** key_spki(k, out, outsz): the public key as a DER SubjectPublicKeyInfo.
 *  Returns its length, or -1. */
int key_spki(struct key *k, unsigned char *out, size_t outsz)
{
	int r;

	if (k->type == KEY_EC)
		r = wc_EccPublicKeyToDer(&k->ec, out, (word32)outsz, 1);
	else
		r = wc_RsaKeyToPublicDer(&k->rsa, out, (word32)outsz);
	return r > 0 ? r : -1;
}

/** key_wc_type(k): wolfSSL's key type for k (ECC_TYPE or RSA_TYPE). */
int key_wc_type(const struct key *k)
{
	return k->type == KEY_EC ? ECC_TYPE : RSA_TYPE;
}

/** key_wc(k): the wolfCrypt key object inside k. */
void *key_wc(struct key *k)
{
	return k->type == KEY_EC ? (void *)&k->ec : (void *)&k->rsa;
}

/** key_sig_type(k): the certificate signature type for signing with k. */
int key_sig_type(const struct key *k)
{
	if (k->type == KEY_RSA)
		return CTC_SHA256wRSA;
	if (k->bits == 384)
		return CTC_SHA384wECDSA;
	if (k->bits == 521)
		return CTC_SHA512wECDSA;
	return CTC_SHA256wECDSA;
}

/** key_text(k, buf, n): "EC P-256" or "RSA 2048".  Returns buf. */
const char *key_text(const struct key *k, char *buf, size_t n)
{
	if (k->type == KEY_EC)
		snprintf(buf, n, "EC P-%d", k->bits);
	else
		snprintf(buf, n, "RSA %d", k->bits);
	return buf;
}

/** key_free(k): release the wolfCrypt key in k. */
void key_free(struct key *k)
{
	if (k->type == KEY_EC)
		wc_ecc_free(&k->ec);
	else if (k->type == KEY_RSA)
		wc_FreeRsaKey(&k->rsa);
	k->type = KEY_NONE;
}
