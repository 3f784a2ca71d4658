/* daemon: the start-up both binaries share — options, logging, TLS context,
 * addresses, --check and --version — around their role-specific setup. */
#ifndef TLSFWD_DAEMON_H
#define TLSFWD_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "role.h"
#include "conn.h"
#include "worker.h"

#define TLSFWD_VERSION "0.1.0"

/* The HTTP server behind --metrics-listen (shared/metrics_http.c, over
 * libmicrohttpd): linked into the two daemons only (never the preload
 * shim), whose main() hands it to daemon_main(). */
struct daemon_http {
	/* load(err, errsz): load what serving needs (libmicrohttpd), before
	 * the sandbox.  0, or -1 with err. */
	int (*load)(char *err, size_t errsz);
	/* start(t, fd, err, errsz): serve t's metrics on the listening socket
	 * fd (taken) from a thread of its own.  A handle, or NULL with err. */
	void *(*start)(struct tunnel *t, int fd, char *err, size_t errsz);
	void (*stop)(void *h);		/* stop serving, join the thread */
};
extern const struct daemon_http metrics_http;

/** daemon_main(role, http, argc, argv): run a tlsfwd daemon playing role;
 *  http serves --metrics-listen (NULL: the option is refused).
 *  Returns the process exit status: 0, or 1 on a configuration or start-up error. */
int daemon_main(const struct role *role, const struct daemon_http *http, int argc, char **argv);

/** daemon_tunnel_open(t, cfg, listen, err, errsz): fill t (whose role is
 *  set) from cfg: timeouts, limits, the role's prepare, the TLS policy;
 *  no thread (daemon_tunnel_start() starts them).  Needs tls_init().  Returns 0, or -1 with a message in err and t
 *  released. */
int daemon_tunnel_open(struct tunnel *t, const struct config *cfg,
    const struct sock_addr *listen, char *err, size_t errsz);

/** daemon_tunnel_start(t, cfg, err, errsz): start t's threads (the resolver,
 *  if a name is to be resolved again); after the sandbox is in place.
 *  Returns 0, or -1 with a message in err. */
int daemon_tunnel_start(struct tunnel *t, const struct config *cfg, char *err, size_t errsz);

/** daemon_tunnel_close(t): release what daemon_tunnel_open() set up. */
void daemon_tunnel_close(struct tunnel *t);


#endif
