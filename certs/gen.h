/* gen: make and sign one certificate with wolfSSL's certificate generation
 * (wc_MakeCert_ex, wc_SignCert_ex), with the profile tlsfwd wants:
 *
 *   CA      basicConstraints critical CA:TRUE, pathlen:0
 *           keyUsage critical keyCertSign, cRLSign
 *   leaf    basicConstraints critical CA:FALSE
 *           keyUsage critical digitalSignature (+ keyEncipherment for an
 *           RSA server key), extendedKeyUsage serverAuth and/or clientAuth,
 *           subjectAltName as given
 *   all     subject CN, random positive 16-byte serial, SubjectKeyIdentifier,
 *           AuthorityKeyIdentifier (the issuer's SKID), notBefore one hour
 *           in the past to tolerate clock skew, notAfter now + days. */
#ifndef TLSFWD_CERTS_GEN_H
#define TLSFWD_CERTS_GEN_H

#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include "key.h"
#include "x509.h"

#define GEN_BACKDATE 3600	/* seconds notBefore lies in the past */
#define GEN_SERIAL_LEN 16

struct gen_req {
	const char *cn;			/* subject commonName, 1..63 bytes */
	int days;			/* validity from now */
	int is_ca;
	int server_auth, client_auth;	/* EKU of a leaf */
	const unsigned char *san;	/* GeneralName elements (not wrapped) */
	size_t sanlen;
	struct key *key;		/* the subject's key */
	struct key *ca_key;		/* the signer's key; NULL: self-signed */
	const struct x509 *ca;		/* the signer's certificate; NULL: self-signed */
};

/** gen_cert(req, rng, der, len, err, errsz): make and sign the certificate
 *  req describes, into a malloc'd DER buffer the caller frees.  Returns 0, or
 *  -1 with the cause in err. */
int gen_cert(const struct gen_req *req, WC_RNG *rng, unsigned char **der, size_t *len,
    char *err, size_t errsz);

#endif
