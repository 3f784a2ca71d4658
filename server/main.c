/* tlsfwd-server: terminate mutual TLS, authorise the peer and hand its bytes
 * to an unmodified Fluentd in_forward. */
#include <stdlib.h>
#include <stdio.h>

#include "authz.h"
#include "daemon.h"
#include "log.h"
#include "peers.h"

static int server_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz)
{
	(void)listen;
	if ((t->up = calloc(1, sizeof(*t->up))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (upstream_init(&t->up[0], cfg->upstream, NULL, err, errsz) < 0)
		return -1;
	t->nup = 1;
	if (!sock_is_loopback(&t->up[0].addr[0]))
		log_warn("upstream is not on loopback: bytes leave this host in plaintext",
		    "upstream=%s", cfg->upstream);
	if (cfg->allow_net.n > 0) {
		char why[256];
		int i;

		if ((t->nets = authz_nets_new()) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		for (i = 0; i < cfg->allow_net.n; i++)
			if (authz_net_add(t->nets, cfg->allow_net.v[i], why, sizeof(why)) < 0) {
				snprintf(err, errsz, "--allow-net: %s: %s", why, cfg->allow_net.v[i]);
				return -1;
			}
	}
	if (cfg->max_conns_per_ip > 0 &&
	    (t->peers = peers_new(cfg->max_conns_per_ip, cfg->max_conns)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	/* Pending connections number at most --max-handshakes, each worker
	 * its share, and one more per worker (at most 256) between accept and
	 * the drop that follows. */
	t->max_handshakes = (cfg->max_handshakes + cfg->workers - 1) / cfg->workers;
	if (cfg->max_handshakes_per_ip > 0 &&
	    (t->hs_peers = peers_new(cfg->max_handshakes_per_ip,
	    cfg->max_handshakes > 0 && cfg->max_handshakes + 256 < cfg->max_conns ?
	    cfg->max_handshakes + 256 : cfg->max_conns)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	return daemon_main(ROLE_SERVER, "tlsfwd-server", argc, argv, server_prepare);
}
