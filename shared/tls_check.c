/* tls_check: what is asked of a peer during and after its handshake: the
 * chain checks wolfSSL skips (tls_chain_check), a --crl file that expired
 * since it was loaded (tls_crl_expired), why a TLS call failed (tls_reason),
 * the peer's subject and the IP-name form of an address; see tls.h.  The
 * contexts, certificates and CRLs these read are loaded by tls.c. */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "log.h"
#include "tls_int.h"
#include "x509.h"
#include "x509_chain.h"

/** tls_crl_expired(p, cert, err): non-zero if err (wolfSSL's verdict on
 *  cert) comes from a --crl file of cert's issuer that has passed its
 *  nextUpdate since it was loaded: wolfSSL then fails the certificate as
 *  "CRL missing" or "after date".  The first time for each file, a warn line
 *  names it. */
int tls_crl_expired(const struct tls_policy *p, WOLFSSL_X509 *cert, int err)
{
	const unsigned char *der;
	struct x509 x;
	const char *why;
	char when[32];
	time_t now = time(NULL);
	size_t i;
	int len;

	if (p->crls == NULL || (err != CRL_MISSING && err != CRL_CERT_DATE_ERR &&
	    err != ASN_AFTER_DATE_E) || cert == NULL ||
	    (der = wolfSSL_X509_get_der(cert, &len)) == NULL || len <= 0 ||
	    x509_parse(&x, der, (size_t)len, &why) != 0)
		return 0;
	if (err == ASN_AFTER_DATE_E && x.not_after < now)
		return 0;		/* the certificate itself expired */
	for (i = 0; i < p->crls->n; i++) {
		struct tls_crl *e = &p->crls->v[i];

		if (e->next_update == 0 || e->next_update > now || e->issuer_len != x.issuer.rawlen ||
		    memcmp(e->issuer, x.issuer.raw, e->issuer_len) != 0)
			continue;
		if (atomic_exchange(&e->reported, 1) == 0)
			log_warn("CRL expired: its issuer's certificates are refused until "
			    "it is replaced", "file=%s next_update=%s reason=crl_expired", e->path,
			    x509_time_text(e->next_update, when, sizeof(when)));
		return 1;
	}
	return 0;
}

static const char *alert_reason(int code)
{
	switch (code) {
	case bad_certificate:		return "bad_certificate";
	case unsupported_certificate:	return "bad_certificate";
	case certificate_revoked:	return "revoked";
	case certificate_expired:	return "expired";
	case certificate_unknown:	return "bad_certificate";
	case unknown_ca:		return "unknown_ca";
	case protocol_version:		return "protocol_version";
	case handshake_failure:		return "handshake_failure";
	case certificate_required:	return "no_certificate";
	case decrypt_error:		return "bad_certificate";
	default:			return "peer_alert";
	}
}

const char *tls_reason(WOLFSSL *ssl, int err)
{
	switch (err) {
	case NO_PEER_CERT:		return "no_certificate";
	case ASN_NO_SIGNER_E:
	case ASN_SELF_SIGNED_E:		return "unknown_ca";
	case ASN_AFTER_DATE_E:		return "expired";
	case ASN_BEFORE_DATE_E:		return "not_yet_valid";
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:		return "name_mismatch";
	case CRL_CERT_REVOKED:		return "revoked";
	case CRL_CERT_DATE_ERR:		return "crl_expired";
	case EXTKEYUSE_AUTH_E:
	case KEYUSE_SIGNATURE_E:
	case KEYUSE_ENCIPHER_E:		return "wrong_usage";
	case RSA_KEY_SIZE_E:
	case ECC_KEY_SIZE_E:		return "weak_key";
	case ASN_PATHLEN_INV_E:
	case ASN_PATHLEN_SIZE_E:	return "path_length";
	case NOT_CA_ERROR:		return "issuer_not_ca";
	case ASN_NAME_INVALID_E:	return "name_constraints";
	case VERSION_ERROR:		return "protocol_version";
	case MATCH_SUITE_ERROR:		return "no_shared_cipher";
	case UNKNOWN_RECORD_TYPE:	return "not_tls";
	case SOCKET_PEER_CLOSED_E:
	case SOCKET_ERROR_E:
	case WOLFSSL_ERROR_ZERO_RETURN:
	case ZERO_RETURN:		return "peer_closed";
	case FATAL_ERROR: {
		WOLFSSL_ALERT_HISTORY h;

		if (ssl != NULL && wolfSSL_get_alert_history(ssl, &h) == WOLFSSL_SUCCESS)
			return alert_reason(h.last_rx.code);
		return "peer_alert";
	}
	default:			return "tls_error";
	}
}

/*-
 * What wolfSSL 5.5.4 checks of a peer's chain, and what it skips (read from
 * its source: ProcessPeerCerts, ParseCertRelative, AddCA):
 *   checks: signatures, dates, CRLs, CA:TRUE of the peer's intermediates
 *     (a non-CA is not taken as an issuer), keyCertSign of intermediates,
 *     pathLenConstraint of intermediates, the leaf's extendedKeyUsage (after
 *     the verify callback), name constraints of DNS, email and directory
 *     names against the direct issuer only;
 *   skips: a self-signed root's pathLenConstraint (it takes every root as
 *     unconstrained), keyCertSign of a root, key sizes below RSA 2048 / EC
 *     256 (its minimums are 1024 and 224), MD5 and SHA-1 signatures, name
 *     constraints of IP addresses and URIs and of CAs above the direct
 *     issuer.
 * tls_chain_check() does the skipped ones, on the path x509_chain_check()
 * builds.
 */
const char *tls_chain_check(const struct tls_policy *p, WOLFSSL_X509_STORE_CTX *store,
    int server, int *anchored)
{
	struct x509 *peer;		/* on the heap: this runs on wolfSSL's stack */
	const char *why, *usage = server ? "clientAuth" : "serverAuth";
	int i, n = store->totalCerts;

	*anchored = 0;
	if (n <= 0 || store->certs == NULL)
		return NULL;
	if (n > X509_PATH_MAX)
		n = X509_PATH_MAX;
	if ((peer = calloc((size_t)n, sizeof(*peer))) == NULL)
		return "out_of_memory";
	for (i = 0; i < n; i++)
		if (x509_parse(&peer[i], store->certs[i].buffer, store->certs[i].length, &why) != 0) {
			why = "bad_certificate";
			goto out;
		}
	why = !x509_has_eku(&peer[0], usage) ? "wrong_usage" :
	    x509_chain_check(peer, (size_t)n, p->anchors ? p->anchors->x : NULL,
	    p->anchors ? p->anchors->n : 0, anchored);
out:
	free(peer);
	return why;
}

const char *tls_ip_name(const char *ip, char *buf, size_t n)
{
	unsigned char a[16];
	size_t i, len = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(buf, n, "%s", ip);
		return buf;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || n < 40)
		return NULL;
	for (i = 0; i < 8; i++)
		len += (size_t)snprintf(buf + len, n - len, "%02X%02X%s", a[2 * i], a[2 * i + 1],
		    i < 7 ? ":" : "");
	return buf;
}

const char *tls_peer_subject(WOLFSSL *ssl, char *buf, size_t n)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(ssl);

	buf[0] = '\0';
	if (x != NULL) {
		wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), buf, (int)n);
		wolfSSL_X509_free(x);
	}
	return buf;
}
