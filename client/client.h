/* client: the tlsfwd-client role, shared by the daemon and the preload
 * shim's inline mode. */
#ifndef TLSFWD_CLIENT_H
#define TLSFWD_CLIENT_H

#include "daemon.h"

/** client_prepare(cfg, listen, t, err, errsz): check the client's options
 *  (no plaintext listener off loopback unless allowed) and resolve the
 *  --server list into t->up.  A daemon_prepare_fn. */
int client_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz);

#endif
