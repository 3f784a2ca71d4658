/* key: private keys for tlsfwd-certs on wolfCrypt: generate, load (PEM or
 * DER, PKCS#8 or traditional, encrypted or not), write as PKCS#8 PEM
 * (encrypted with PBES2 when a passphrase is given), and export the public
 * half as a SubjectPublicKeyInfo. */
#ifndef TLSFWD_CERTS_KEY_H
#define TLSFWD_CERTS_KEY_H

#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

enum key_type { KEY_NONE, KEY_EC, KEY_RSA };

struct key {
	enum key_type type;
	int bits;		/* 256/384/521 for EC, the modulus size for RSA */
	ecc_key ec;
	RsaKey rsa;
};

/* PBES2 parameters of an encrypted key file. */
#define KEY_PBKDF2_ITERATIONS 20000
#define KEY_SALT_LEN 16

/** key_parse_spec(spec, type, bits, why): read a --key value: ec (P-256),
 *  ec384, rsa (2048), rsa2048, rsa3072 or rsa4096.  Returns 0, or -1 with a
 *  reason in *why. */
int key_parse_spec(const char *spec, enum key_type *type, int *bits, const char **why);

/** key_generate(k, type, bits, rng, err, errsz): a new key into k, which the
 *  caller releases with key_free().  Returns 0, or -1 with the cause in err. */
int key_generate(struct key *k, enum key_type type, int bits, WC_RNG *rng, char *err,
    size_t errsz);

/** key_load(k, path, pass, err, errsz): read a private key file (pass may be
 *  NULL for an unencrypted one).  Returns 0, or -1 with "path: cause" in err:
 *  encrypted but no passphrase, wrong passphrase, not a key, unsupported. */
int key_load(struct key *k, const char *path, const char *pass, WC_RNG *rng, char *err,
    size_t errsz);

/** key_pem(k, pass, rng, pem, len, err, errsz): k as PKCS#8 PEM in a malloc'd
 *  buffer the caller frees (and should wipe): "PRIVATE KEY", or with pass
 *  "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2-HMAC-SHA1, AES-256-CBC).  Returns
 *  0, or -1 with the cause in err. */
int key_pem(struct key *k, const char *pass, WC_RNG *rng, char **pem, size_t *len,
    char *err, size_t errsz);

/** key_spki(k, out, outsz): the public key as a DER SubjectPublicKeyInfo.
 *  Returns its length, or -1. */
int key_spki(struct key *k, unsigned char *out, size_t outsz);

/** key_wc_type(k): wolfSSL's key type for k (ECC_TYPE or RSA_TYPE). */
int key_wc_type(const struct key *k);

/** key_wc(k): the wolfCrypt key object inside k, for wc_MakeCert_ex and
 *  friends. */
void *key_wc(struct key *k);

/** key_sig_type(k): the certificate signature type for signing with k:
 *  ECDSA with SHA-256 (P-256), SHA-384 (P-384), SHA-512 (P-521), or
 *  SHA-256 with RSA. */
int key_sig_type(const struct key *k);

/** key_text(k, buf, n): "EC P-256" or "RSA 2048".  Returns buf. */
const char *key_text(const struct key *k, char *buf, size_t n);

/** key_free(k): release the wolfCrypt key in k. */
void key_free(struct key *k);

#endif
