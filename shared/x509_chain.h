/* x509_chain: the checks a careful CA client makes on a peer's certificate
 * path that wolfSSL 5.5.4 skips (tls.c runs them from the verify callback). */
#ifndef TLSFWD_X509_CHAIN_H
#define TLSFWD_X509_CHAIN_H

#include <stddef.h>

#include "x509.h"

#define X509_PATH_MAX 16	/* certificates x509_chain_check() looks at */

/** x509_chain_check(peer, npeer, anchors, nanchors, anchored): the checks a
 *  careful CA client makes that wolfSSL 5.5.4 skips, on the path from
 *  peer[0] (the leaf; the rest as the peer sent them) to a trust anchor.
 *  The path is built by names and key identifiers: from each certificate to
 *  an anchor that issued it if there is one, else to a peer certificate that
 *  did; above the first anchor only anchors, up to a self-issued one; it
 *  stops where no issuer is found.  On that path:
 *    - every key is strong enough (x509_key_ok), anchors included: "weak_key";
 *    - no certificate but a self-issued one is signed with MD5 or SHA-1
 *      (x509_sig_ok): "weak_signature";
 *    - every issuer, anchors included, has basicConstraints CA:TRUE and,
 *      when it has a keyUsage, keyCertSign: "issuer_not_ca";
 *    - no issuer's pathLenConstraint is exceeded by the non-self-issued
 *      intermediates below it, anchors' included (wolfSSL ignores a
 *      self-signed root's): "path_length";
 *    - every name of every certificate below an issuer with nameConstraints
 *      (but self-issued intermediates) is within them: SAN dNSName, rfc822Name,
 *      URI (its host), iPAddress and directoryName, the subject as a
 *      directoryName, and the leaf's host-like CNs when it has no dNSName
 *      (wolfSSL checks DNS, email and directory names against the direct
 *      issuer only): "name_constraints".
 *  Returns NULL when all hold, else the reason; *anchored is set when the
 *  path reached an anchor. */
const char *x509_chain_check(const struct x509 *peer, size_t npeer,
    const struct x509 *anchors, size_t nanchors, int *anchored);

#endif
