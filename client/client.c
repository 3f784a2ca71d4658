/* client: the tlsfwd-client role, shared by the daemon and the preload
 * shim's inline mode.  Plaintext from local senders on the accepted end,
 * mutual TLS to the servers on the end it connects: each server's name
 * verified (SNI, or its IP SANs), --pin-server pins, and a session resumed
 * from the server's last ticket. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "heartbeat.h"
#include "log.h"
#include "pins.h"
#include "upstream.h"

/* The client's share of the tunnel (t->role_data). */
struct client {
	int heartbeat;			/* --heartbeat */
	struct heartbeat hb;
};

static int client_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz)
{
	struct client *cl;
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
	if (cfg->server.n > UPSTREAM_MAX) {
		snprintf(err, errsz, "--server: %d given, at most %d", cfg->server.n, UPSTREAM_MAX);
		return -1;
	}
	if ((cl = t->role_data = calloc(1, sizeof(*cl))) == NULL ||
	    upstreams_init(&t->ups, cfg->server.n, (double)cfg->health_interval) < 0) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	cl->heartbeat = cfg->heartbeat;
	cl->hb.fd = -1;
	for (i = 0; i < cfg->server.n; i++) {
		if (upstream_init(&t->ups.v[i], cfg->server.v[i], cfg->server_name, err, errsz) < 0)
			return -1;
		t->ups.n++;
	}
	return 0;
}

static void client_cleanup(struct tunnel *t)
{
	free(t->role_data);
	t->role_data = NULL;
}

/* client_attach(t, loop, listen): the daemon runs: answer heartbeats. */
static void client_attach(struct tunnel *t, struct ev_loop *loop, const struct sock_addr *listen)
{
	struct client *cl = t->role_data;

	if (cl->heartbeat)
		heartbeat_start(&cl->hb, t, loop, listen);
}

static void client_detach(struct tunnel *t, struct ev_loop *loop)
{
	struct client *cl = t->role_data;

	heartbeat_stop(&cl->hb, loop);
}

static int client_check_value(const char *opt, const char *value, char *why, size_t whysz)
{
	struct pin pin;
	char spec[300];
	int weight, standby;

	if (strcmp(opt, "server") == 0)
		return upstream_parse(value, spec, sizeof(spec), &weight, &standby, why, whysz);
	if (strcmp(opt, "pin-server") != 0)
		return 0;
	return pins_parse(value, &pin, why, whysz);
}

/* client_rules_new(cfg, &rules, err, errsz): the --pin-server pins. */
static int client_rules_new(const struct config *cfg, void **rules, char *err, size_t errsz)
{
	struct pins *p;
	char why[256];
	int i;

	*rules = NULL;
	if (cfg->pin_server.n == 0)
		return 0;
	if ((p = calloc(1, sizeof(*p) + (size_t)cfg->pin_server.n * sizeof(p->v[0]))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->pin_server.n; i++, p->n++)
		if (pins_parse(cfg->pin_server.v[i], &p->v[i], why, sizeof(why)) < 0) {
			snprintf(err, errsz, "--pin-server: %s: %s", why, cfg->pin_server.v[i]);
			free(p);
			return -1;
		}
	*rules = p;
	return 0;
}

/* client_tls_setup(c, ssl): the server's name to verify (and send as SNI),
 * and the session to resume. */
static int client_tls_setup(struct conn *c, WOLFSSL *ssl)
{
	struct upstream *u = &c->s->t->ups.v[c->pos.up];

	/* An IP literal is checked against IP SANs and never sent as SNI. */
	if (u->name_is_ip) {
		if (wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(wolfSSL_get0_param(ssl), u->name) !=
		    WOLFSSL_SUCCESS)
			return -1;
	} else if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, u->name,
	    (unsigned short)strlen(u->name)) != WOLFSSL_SUCCESS ||
	    wolfSSL_check_domain_name(ssl, u->name) != WOLFSSL_SUCCESS) {
		return -1;
	}
	/* A TLS 1.3 resumption skips the certificate signatures. */
	if (c->s->t->resume)
		upstream_resume(u, ssl);
	return 0;
}

/* client_tls_read(c, ssl): after a full handshake, once the server's ticket
 * has arrived, keep the session for the next connections to this server.
 * Never from a resumed connection: until its own ticket comes, its session
 * pairs the old ticket with the new resumption secret, and a resumption
 * from that fails the server's binder check (BAD_BINDER). */
static void client_tls_read(struct conn *c, WOLFSSL *ssl)
{
	WOLFSSL_SESSION *sess;

	if (!c->s->t->resume || wolfSSL_session_reused(ssl)) {
		c->ticketed = 1;
		return;
	}
	if (!wolfSSL_SESSION_is_resumable(wolfSSL_get_session(ssl)) ||
	    (sess = wolfSSL_get1_session(ssl)) == NULL)
		return;
	c->ticketed = 1;
	upstream_keep(&c->s->t->ups.v[c->pos.up], sess);
}

/* client_judge(c, ok, err): the --pin-server pins on the server's leaf.  A
 * pin also admits a certificate that chains to no CA (self-signed): that
 * is what pinning is for. */
static int client_judge(struct conn *c, int ok, int err)
{
	const struct pins *pins = c->pol->rules;
	const struct pin *pin;

	if (pins == NULL)
		return ok;
	pin = pins_match(pins, c->verdict->id);
	if (pin != NULL && (c->verdict->rule = strdup(pin->text)) == NULL)
		return 0;
	if (!ok)
		return pin != NULL && (err == ASN_NO_SIGNER_E || err == ASN_SELF_SIGNED_E);
	if (pin == NULL) {
		c->verdict->deny = "pin_mismatch";
		return 0;
	}
	return 1;
}

static void client_secured(struct conn *c)
{
	WOLFSSL *ssl = c->end[1].ssl;

	log_debug("connected", "peer=%s upstream=%s tls=%s cipher=%s resumed=%d", c->peer,
	    c->s->t->ups.v[c->pos.up].spec, wolfSSL_get_version(ssl), wolfSSL_get_cipher_name(ssl),
	    wolfSSL_session_reused(ssl));
}

const struct role client_role = {
	.id = ROLE_CLIENT,
	.prog = "tlsfwd-client",
	.tls_end = 1,
	.verify_mode = WOLFSSL_VERIFY_PEER,
	.lost_msg = "servers unreachable, not accepting",
	.found_msg = "server reachable again, accepting",
	.check_value = client_check_value,
	.prepare = client_prepare,
	.cleanup = client_cleanup,
	.attach = client_attach,
	.detach = client_detach,
	.rules_new = client_rules_new,
	.rules_free = free,
	.tls_setup = client_tls_setup,
	.tls_read = client_tls_read,
	.judge = client_judge,
	.secured = client_secured,
};
