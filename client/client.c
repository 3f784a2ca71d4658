/* client: the tlsfwd-client role, shared by the daemon and the preload
 * shim's inline mode.  Plaintext from local senders on the accepted end,
 * mutual TLS to the servers on the end it connects: each server's name
 * verified (SNI, or its IP SANs), --pin-server pins, and a session resumed
 * from the server's last ticket. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "heartbeat.h"
#include "log.h"
#include "pins.h"
#include "proxy.h"
#include "upstream.h"

/* The client's share of the tunnel (t->role_data). */
struct client {
	int heartbeat;			/* --heartbeat */
	struct heartbeat hb;
	unsigned char *via;		/* via[i]: server i is reached through the proxy */
	char auth[PROXY_AUTH_MAX];	/* base64 user:password, "" without a user */
};

/* A connection's progress through the proxy (c->hop). */
struct hop {
	unsigned short sent;		/* bytes of the CONNECT request written */
	struct proxy_answer answer;
};

_Static_assert(sizeof(struct hop) <= sizeof(((struct conn *)0)->hop),
    "struct hop must fit in struct conn's hop scratch");

/* proxy_password(path, out, outsz, err, errsz): the first line of path.  0,
 * or -1 with a message (never the password) in err. */
static int proxy_password(const char *path, char *out, size_t outsz, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	struct stat st;
	int ok;

	if (fp == NULL) {
		snprintf(err, errsz, "--proxy-password-file: %s: %s", path, strerror(errno));
		return -1;
	}
	/* as for a key file: others reading it is worth a line */
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH)) {
		char mode[8];

		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		log_warn("proxy password file is readable by others", "file=%s mode=%s", path, mode);
	}
	ok = fgets(out, (int)outsz, fp) != NULL || !ferror(fp);
	fclose(fp);
	if (!ok) {
		snprintf(err, errsz, "--proxy-password-file: %s: read error", path);
		return -1;
	}
	if (strchr(out, '\n') == NULL && strlen(out) + 1 >= outsz) {
		snprintf(err, errsz, "--proxy-password-file: %s: password too long", path);
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* proxy_setup(cfg, u, no_proxy, auth, err, errsz): the proxy to use into u
 * (from --proxy, or with --proxy env from https_proxy, with *no_proxy the
 * bypass list), and the Basic credentials into auth (PROXY_AUTH_MAX).
 * 1 a proxy, 0 none, -1 with a message in err. */
static int proxy_setup(const struct config *cfg, struct proxy_url *u, const char **no_proxy,
    char *auth, char *err, size_t errsz)
{
	const char *url = cfg->proxy, *from = "--proxy";
	char why[256];
	int bare_ok = 0;	/* https_proxy=HOST:PORT, as curl takes it */

	*no_proxy = NULL;
	auth[0] = '\0';
	if (url == NULL) {
		if (cfg->proxy_password_file != NULL) {
			snprintf(err, errsz, "--proxy-password-file: there is no --proxy");
			return -1;
		}
		return 0;
	}
	if (strcmp(url, "env") == 0) {
		const char *v[] = { "https_proxy", "HTTPS_PROXY" }, *n[] = { "no_proxy", "NO_PROXY" };
		int i;

		url = NULL;
		for (i = 0; i < 2 && url == NULL; i++)
			if ((url = getenv(v[i])) != NULL && *url == '\0')
				url = NULL;
			else if (url != NULL)
				from = v[i], bare_ok = 1;
		for (i = 0; i < 2 && *no_proxy == NULL; i++)
			if ((*no_proxy = getenv(n[i])) != NULL && **no_proxy == '\0')
				*no_proxy = NULL;
		if (url == NULL) {
			log_info("no https_proxy in the environment: servers are reached directly",
			    NULL);
			return 0;
		}
	}
	if (proxy_url_parse(url, bare_ok, u, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s", from, why);
		return -1;
	}
	if (cfg->proxy_password_file != NULL) {
		if (!u->has_user) {
			snprintf(err, errsz, "--proxy-password-file: the proxy URL (%s) has no user",
			    from);
			return -1;
		}
		if (proxy_password(cfg->proxy_password_file, u->password, sizeof(u->password),
		    err, errsz) < 0)
			return -1;
	}
	if (u->has_user && proxy_basic(u->user, u->password, auth, PROXY_AUTH_MAX) < 0) {
		snprintf(err, errsz, "%s: user and password too long", from);
		return -1;
	}
	memset(u->password, 0, sizeof(u->password));
	log_info("servers are reached through an HTTP proxy", "proxy=%s from=%s user=%s "
	    "no_proxy=%s", u->spec, from, u->has_user ? u->user : NULL, *no_proxy);
	return 1;
}

/* server_init(u, cl, i, spec, cfg, proxy, no_proxy, err, errsz): upstream u
 * for --server spec: resolved, or, through the proxy, the proxy's
 * addresses (the server's name is the proxy's to resolve). */
static int server_init(struct upstream *u, struct client *cl, int i, const char *spec,
    const struct config *cfg, const struct proxy_url *proxy, const char *no_proxy,
    char *err, size_t errsz)
{
	char host[256], port[8], addr[300], why[128];
	const char *bad;
	int weight, standby;

	if (proxy == NULL)
		return upstream_init(u, spec, cfg->server_name, err, errsz);
	if (upstream_parse(spec, addr, sizeof(addr), &weight, &standby, why, sizeof(why)) < 0 ||
	    sock_split(addr, host, sizeof(host), port, sizeof(port), &bad) < 0) {
		snprintf(err, errsz, "%s: %s", spec, why);
		return -1;
	}
	if (proxy_bypass(no_proxy, host)) {
		log_info("server bypasses the proxy (no_proxy)", "server=%s", addr);
		return upstream_init(u, spec, cfg->server_name, err, errsz);
	}
	/* Its addresses are the proxy's (and resolved again as the proxy's
	 * name, u->resolve); its own name is the proxy's to resolve. */
	if (upstream_init(u, proxy->spec, cfg->server_name != NULL ? cfg->server_name : host,
	    err, errsz) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errsz, "--proxy: %s", msg);
		return -1;
	}
	strcpy(u->spec, addr);	/* logs name the server; CONNECT asks for it */
	u->weight = weight;
	u->standby = standby;
	cl->via[i] = 1;
	return 0;
}

static int client_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz)
{
	struct proxy_url proxy;
	const char *no_proxy;
	struct client *cl;
	int i, via;

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
	    upstreams_init(&t->ups, cfg->server.n, (double)cfg->health_interval) < 0 ||
	    (cl->via = calloc((size_t)cfg->server.n, 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	cl->heartbeat = cfg->heartbeat;
	cl->hb.fd = -1;
	if ((via = proxy_setup(cfg, &proxy, &no_proxy, cl->auth, err, errsz)) < 0)
		return -1;
	for (i = 0; i < cfg->server.n; i++) {
		if (server_init(&t->ups.v[i], cl, i, cfg->server.v[i], cfg, via ? &proxy : NULL,
		    no_proxy, err, errsz) < 0)
			return -1;
		t->ups.n++;
	}
	return 0;
}

static void client_cleanup(struct tunnel *t)
{
	struct client *cl = t->role_data;

	if (cl != NULL)
		free(cl->via);
	free(cl);
	t->role_data = NULL;
}

/* open_failed(why_out, why): the hop failed for the reason why. */
static int open_failed(const char **why_out, const char *why)
{
	*why_out = why;
	return CONN_OPEN_FAILED;
}

/*-
 * client_upstream_open(c, why): through the proxy, the CONNECT request to
 * c's server as configured (a name is the proxy's to resolve), then its
 * answer up to the end of its header and not a byte further: what follows
 * belongs to the TLS handshake, and a TLS server never speaks first, so a
 * byte after the header is an error.  The bytes are peeked, then only the
 * header's taken.  Every failure is this server's attempt failing.  A
 * direct server: done at once.
 */
static int client_upstream_open(struct conn *c, const char **why_out)
{
	const struct client *cl = c->s->t->role_data;
	const struct upstream *u = &c->s->t->ups.v[c->pos.up];
	struct hop *h = (struct hop *)c->hop.bytes;
	struct end *e = &c->end[1];
	unsigned char buf[PROXY_ANSWER_MAX + 1];	/* + 1: a byte after a longest header */
	char req[PROXY_REQUEST_MAX];
	const char *why = NULL;
	size_t used;
	size_t n;
	int len, rc;

	/*-
	 * Proxies (tinyproxy, squid) end a tunnel both ways when one side
	 * sends its FIN: a half-close would cut the server's answer (acks, a
	 * probe's clean end).  Through a proxy the EOF is passed on as
	 * close_notify alone; the server's close_notify and FIN end it.
	 */
	e->nofin = cl->via[c->pos.up];
	if (!cl->via[c->pos.up])
		return CONN_OPEN_DONE;
	if ((len = proxy_request(req, sizeof(req), u->spec, cl->auth)) < 0)
		return open_failed(why_out, "proxy_request_too_long");
	if ((rc = conn_hop_send(e, req, (size_t)len, &h->sent)) == CONN_OPEN_FAILED)
		return open_failed(why_out, errno == ECONNRESET || errno == EPIPE ?
		    "proxy_closed" : "proxy_write_failed");
	if (rc == CONN_OPEN_WAIT)
		return rc;
	if ((rc = conn_hop_peek(e, buf, sizeof(buf) - h->answer.n, &n)) == CONN_OPEN_FAILED)
		return open_failed(why_out, "proxy_closed");
	if (rc == CONN_OPEN_WAIT)
		return rc;
	rc = proxy_answer_feed(&h->answer, buf, n, &used, &why);
	if (rc == PROXY_FAIL)
		return open_failed(why_out, why);
	if (recv(e->fd, buf, used, 0) != (ssize_t)used)	/* take the header's bytes */
		return open_failed(why_out, "proxy_closed");
	if (rc == PROXY_MORE) {
		e->hwait = EV_READ;
		return CONN_OPEN_WAIT;
	}
	if (used < n)
		return open_failed(why_out, "proxy_data_after_header");
	log_debug("proxy tunnel open", "peer=%s upstream=%s status=%u", c->peer, u->spec,
	    h->answer.status);
	return CONN_OPEN_DONE;
}

/* client_upstream_error(c, err, why): a failure to reach the proxy, named
 * as the proxy's (the server's own reasons stay the shared ones). */
static const char *client_upstream_error(struct conn *c, int err, const char *why)
{
	const struct client *cl = c->s->t->role_data;

	(void)why;
	if (!cl->via[c->pos.up])
		return NULL;
	switch (err) {
	case ECONNREFUSED:	return "proxy_refused";
	case ETIMEDOUT:		return c->state == CONN_OPENING ? "proxy_timeout" :
				    "proxy_connect_timeout";
	case EHOSTUNREACH:
	case ENETUNREACH:	return "proxy_unreachable";
	default:		return "proxy_connect_failed";
	}
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
	.upstream_open = client_upstream_open,
	.upstream_error = client_upstream_error,
	.tls_setup = client_tls_setup,
	.tls_read = client_tls_read,
	.judge = client_judge,
	.secured = client_secured,
};
