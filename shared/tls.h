/* tls: wolfSSL contexts, verification settings, peer identity and error names. */
#ifndef TLSFWD_TLS_H
#define TLSFWD_TLS_H

#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"

/** tls_init(): initialise wolfSSL once per process.  Returns 0 or -1. */
int tls_init(void);

/** tls_cleanup(): release wolfSSL's global state. */
void tls_cleanup(void);

/** tls_ctx_new(cfg, err, errsz): a context for cfg's role with the CA, the
 *  certificate chain and the key loaded and checked against each other, the
 *  minimum version and the peer verification set.  NULL with a message in err
 *  naming the file and the cause. */
WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errsz);

/** tls_reason(ssl, err): a short stable token naming why a TLS call failed
 *  (unknown_ca, expired, no_certificate, protocol_version, ...), from
 *  wolfSSL's error code or the alert the peer sent; "tls_error" for the rest. */
const char *tls_reason(WOLFSSL *ssl, int err);

/** tls_ip_name(ip, buf, n): ip (a v4 or v6 literal) in the form wolfSSL's
 *  IP SAN check compares with: v4 as is, v6 as eight upper-case groups of
 *  four digits ("0000:...:0001").  Returns buf, or NULL if ip is no literal. */
const char *tls_ip_name(const char *ip, char *buf, size_t n);

/** tls_peer_subject(ssl, buf, n): the peer certificate's subject, or "". */
const char *tls_peer_subject(WOLFSSL *ssl, char *buf, size_t n);

/** tls_version_info(buf, n): wolfSSL's version and its assembly features. */
const char *tls_version_info(char *buf, size_t n);

#endif
