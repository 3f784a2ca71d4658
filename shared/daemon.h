/* daemon: the start-up both binaries share — options, logging, TLS context,
 * addresses, --check and --version — around their role-specific setup. */
#ifndef TLSFWD_DAEMON_H
#define TLSFWD_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "conn.h"
#include "worker.h"

#define TLSFWD_VERSION "0.1.0"

/* What a role adds to the shared start-up: check its options and fill in
 * t->up / t->nup.  Returns 0, or -1 with a message in err. */
typedef int (*daemon_prepare_fn)(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz);

/** daemon_main(role, prog, argc, argv, prepare): run a tlsfwd daemon.
 *  Returns the process exit status: 0, or 1 on a configuration or start-up error. */
int daemon_main(enum role role, const char *prog, int argc, char **argv,
    daemon_prepare_fn prepare);

/** daemon_tunnel_open(t, cfg, listen, prepare, err, errsz): fill t (whose
 *  role is set) from cfg: timeouts, limits, the role's prepare, the TLS
 *  policy.  Needs tls_init().  Returns 0, or -1 with a message in err and t
 *  released. */
int daemon_tunnel_open(struct tunnel *t, const struct config *cfg,
    const struct sock_addr *listen, daemon_prepare_fn prepare, char *err, size_t errsz);

/** daemon_tunnel_close(t): release what daemon_tunnel_open() set up. */
void daemon_tunnel_close(struct tunnel *t);

/** upstream_init(u, spec, name, err, errsz): resolve spec (host:port) into u;
 *  name, if not NULL, is the name to verify instead of spec's host. */
int upstream_init(struct upstream *u, const char *spec, const char *name, char *err, size_t errsz);

#endif
