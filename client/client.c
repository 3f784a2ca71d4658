/* client: check the client's options and resolve its servers. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int client_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz)
{
	int i;

	/* Plaintext must not leave the host unless the operator says so. */
	if (!sock_is_loopback(listen)) {
		if (!cfg->allow_remote_plaintext) {
			snprintf(err, errsz, "--listen: %s is not a loopback address: senders' "
			    "plaintext would cross the network (give --allow-remote-plaintext "
			    "to accept that)", cfg->listen);
			return -1;
		}
		log_warn("listening for plaintext on a non-loopback address", "listen=%s",
		    cfg->listen);
	}
	if ((t->up = calloc((size_t)cfg->server.n, sizeof(*t->up))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->server.n; i++) {
		if (upstream_init(&t->up[i], cfg->server.v[i], cfg->server_name, err, errsz) < 0)
			return -1;
		t->nup++;
	}
	return 0;
}
