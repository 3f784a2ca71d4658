/* config_opt: the option table (name, type, roles, defaults, help) and the
 * parsing of one value, from a flag, the config file or a default, into its
 * field of struct config. */
#include "config_opt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sock.h"

#define BOTH (ROLE_CLIENT | ROLE_SERVER)

static const char *const tls_versions[] = { "1.2", "1.3", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };

const struct opt config_opts[] = {
	{ "config", OPT_STR, BOTH, F_CLI_ONLY, O(config_file), NULL, NULL, 0, 0, NULL,
	  "read options from FILE first; flags override it" },
	{ "listen", OPT_STR, BOTH, F_ADDR, O(listen), "127.0.0.1:24224", "0.0.0.0:24284", 0, 0, NULL,
	  "address to accept connections on" },
	{ "server", OPT_LIST, ROLE_CLIENT, F_REQUIRED, O(server), NULL, NULL, 0, 0, NULL,
	  "tlsfwd-server (or TLS forward input) HOST:PORT[,weight=N][,standby]; repeat for more" },
	{ "server-name", OPT_STR, ROLE_CLIENT, 0, O(server_name), NULL, NULL, 0, 0, NULL,
	  "name to verify and send as SNI (default: host of --server)" },
	{ "proxy", OPT_STR, ROLE_CLIENT, F_SECRET, O(proxy), NULL, NULL, 0, 0, NULL,
	  "reach the servers through an HTTP CONNECT proxy: http://[USER:PASSWORD@]HOST:PORT, "
	  "or env (https_proxy, no_proxy)" },
	{ "proxy-password-file", OPT_STR, ROLE_CLIENT, 0, O(proxy_password_file), NULL, NULL, 0, 0, NULL,
	  "file holding the proxy password (first line); overrides the URL's" },
	{ "upstream", OPT_STR, ROLE_SERVER, F_ADDR, O(upstream), NULL, "127.0.0.1:24224", 0, 0, NULL,
	  "Fluentd in_forward HOST:PORT to hand the bytes to" },
	{ "upstream-shared-key-file", OPT_STR, ROLE_SERVER, 0, O(upstream_shared_key_file), NULL, NULL,
	  0, 0, NULL,
	  "answer the upstream's <security> handshake (HELO, PING, PONG) for the senders, with "
	  "the shared key on the first line of FILE" },
	{ "upstream-hostname", OPT_STR, ROLE_SERVER, 0, O(upstream_hostname), NULL, NULL, 0, 0, NULL,
	  "the self_hostname the handshake gives the upstream (default: this host's name)" },
	{ "upstream-username", OPT_STR, ROLE_SERVER, 0, O(upstream_username), NULL, NULL, 0, 0, NULL,
	  "the username for the upstream's user_auth" },
	{ "upstream-password-file", OPT_STR, ROLE_SERVER, 0, O(upstream_password_file), NULL, NULL,
	  0, 0, NULL, "file holding the password for the upstream's user_auth (first line)" },
	{ "ca", OPT_STR, BOTH, F_REQUIRED, O(ca), NULL, NULL, 0, 0, NULL,
	  "CA certificates (PEM) the peer's certificate must chain to (required, "
	  "except on a server whose every rule is a pin)" },
	{ "cert", OPT_STR, BOTH, F_REQUIRED, O(cert), NULL, NULL, 0, 0, NULL,
	  "own certificate chain (PEM)" },
	{ "key", OPT_STR, BOTH, F_REQUIRED, O(key), NULL, NULL, 0, 0, NULL,
	  "own private key (PEM), readable by the owner only" },
	{ "key-pass-env", OPT_STR, BOTH, 0, O(key_pass_env), NULL, NULL, 0, 0, NULL,
	  "environment variable holding the key's passphrase" },
	{ "key-pass-file", OPT_STR, BOTH, 0, O(key_pass_file), NULL, NULL, 0, 0, NULL,
	  "file holding the key's passphrase (first line)" },
	{ "tls-min", OPT_ENUM, BOTH, 0, O(tls_min), "1.3", "1.3", 0, 0, tls_versions,
	  "lowest TLS version accepted: 1.2 or 1.3" },
	{ "tls-resume", OPT_BOOL, ROLE_CLIENT, 0, O(tls_resume), "true", NULL, 0, 0, NULL,
	  "resume TLS 1.3 sessions with the server's tickets (false: full handshakes)" },
	{ "connect-timeout", OPT_SECONDS, BOTH, 0, O(connect_timeout), "10", "10", 0, 0, NULL,
	  "seconds to connect (client: TCP and TLS handshake; server: to the upstream)" },
	{ "handshake-timeout", OPT_SECONDS, ROLE_SERVER, 0, O(handshake_timeout), NULL, "10", 0, 0, NULL,
	  "seconds a peer has to complete the TLS handshake" },
	{ "drain-timeout", OPT_SECONDS, BOTH, 0, O(drain_timeout), "60", "60", 0, 0, NULL,
	  "seconds a half-closed connection may stay idle; every byte restarts it" },
	{ "max-conns", OPT_INT, BOTH, 0, O(max_conns), "4096", "4096", 1, 1000000, NULL,
	  "connections open at once; beyond it new ones wait in the backlog" },
	{ "workers", OPT_INT, BOTH, 0, O(workers), "0", "0", 0, 256, NULL,
	  "event-loop threads (0: one per online CPU)" },
	{ "accept-while-unreachable", OPT_BOOL, BOTH, 0, O(accept_while_unreachable), "false", "false", 0, 0, NULL,
	  "keep accepting while no upstream answers (senders then lose what they send)" },
	{ "heartbeat", OPT_BOOL, ROLE_CLIENT, 0, O(heartbeat), "true", NULL, 0, 0, NULL,
	  "answer out_forward's UDP heartbeats on the listen address while a server is up" },
	{ "health-interval", OPT_INT, BOTH, 0, O(health_interval), "5", "5", 1, 3600, NULL,
	  "seconds between probes of an upstream that is down, at most" },
	{ "resolve-interval", OPT_INT, BOTH, 0, O(resolve_interval), "60", "60", 0, 86400, NULL,
	  "seconds between resolving upstream names again, and 1 s after one fails (0: never)" },
	{ "max-handshakes-per-server", OPT_INT, ROLE_CLIENT, 0, O(max_handshakes_per_server), "16", NULL, 0, 1000000, NULL,
	  "connections opening to one server at once (connect, proxy, TLS handshake); more "
	  "wait their turn, up to --connect-timeout (0: no limit)" },
	{ "tcp-keepalive", OPT_INT, BOTH, 0, O(tcp_keepalive), "60", "60", 0, 7200, NULL,
	  "seconds of silence before TCP keepalive probes on every tunnel socket (0: off)" },
	{ "allow-remote-plaintext", OPT_BOOL, ROLE_CLIENT, 0, O(allow_remote_plaintext), "false", NULL, 0, 0, NULL,
	  "allow --listen on a non-loopback address (plaintext leaves the host)" },
	{ "pin-server", OPT_LIST, ROLE_CLIENT, 0, O(pin_server), NULL, NULL, 0, 0, NULL,
	  "also require the server certificate's sha256:HEX (DER) or spki:HEX (key)" },
	{ "allow-cn", OPT_LIST, ROLE_SERVER, 0, O(allow_cn), NULL, NULL, 0, 0, NULL,
	  "allow a client whose subject CN is NAME" },
	{ "allow-dns", OPT_LIST, ROLE_SERVER, 0, O(allow_dns), NULL, NULL, 0, 0, NULL,
	  "allow a client with DNS SAN NAME (*.example.com: one label)" },
	{ "allow-uri", OPT_LIST, ROLE_SERVER, 0, O(allow_uri), NULL, NULL, 0, 0, NULL,
	  "allow a client with URI SAN URI (a trailing /* matches below it)" },
	{ "allow-ou", OPT_LIST, ROLE_SERVER, 0, O(allow_ou), NULL, NULL, 0, 0, NULL,
	  "allow a client whose subject has OU NAME" },
	{ "allow-fingerprint", OPT_LIST, ROLE_SERVER, 0, O(allow_fingerprint), NULL, NULL, 0, 0, NULL,
	  "allow the client certificate with this SHA-256 (of its DER); pins a self-signed one" },
	{ "allow-spki", OPT_LIST, ROLE_SERVER, 0, O(allow_spki), NULL, NULL, 0, 0, NULL,
	  "allow the client key with this SHA-256 (of its SPKI); pins a self-signed one" },
	{ "allow-file", OPT_STR, ROLE_SERVER, 0, O(allow_file), NULL, NULL, 0, 0, NULL,
	  "more rules, one per line: cn:, dns:, uri:, ou:, sha256:, spki: (reloaded)" },
	{ "allow-net", OPT_LIST, ROLE_SERVER, 0, O(allow_net), NULL, NULL, 0, 0, NULL,
	  "accept TCP only from this CIDR (repeat); others are closed before TLS" },
	{ "max-conns-per-ip", OPT_INT, ROLE_SERVER, 0, O(max_conns_per_ip), NULL, "0", 0, 1000000, NULL,
	  "connections open at once from one address (0: no limit)" },
	{ "max-handshakes", OPT_INT, ROLE_SERVER, 0, O(max_handshakes), NULL, "512", 0, 1000000, NULL,
	  "connections not yet through their TLS handshake, all addresses; beyond it one is "
	  "dropped, the oldest silent one first (0: no limit)" },
	{ "max-handshakes-per-ip", OPT_INT, ROLE_SERVER, 0, O(max_handshakes_per_ip), NULL, "64", 0, 1000000, NULL,
	  "connections from one address not yet through their TLS handshake; beyond it new "
	  "ones are closed (0: no limit)" },
	{ "crl", OPT_LIST, ROLE_SERVER, 0, O(crl), NULL, NULL, 0, 0, NULL,
	  "certificate revocation list, PEM or DER (repeat; reloaded)" },
	{ "audit-file", OPT_STR, ROLE_SERVER, 0, O(audit_file), NULL, NULL, 0, 0, NULL,
	  "write accept/deny/close events as JSON lines (reopened on SIGUSR1)" },
	{ "audit-forward", OPT_STR, ROLE_SERVER, F_ADDR, O(audit_forward), NULL, NULL, 0, 0, NULL,
	  "send the same events as forward-protocol messages to HOST:PORT" },
	{ "audit-tag", OPT_STR, ROLE_SERVER, 0, O(audit_tag), NULL, "tlsfwd.audit", 0, 0, NULL,
	  "tag of forwarded audit events" },
	{ "stamp-key", OPT_STR, ROLE_SERVER, 0, O(stamp_key), NULL, NULL, 0, 0, NULL,
	  "add NAME: {the client's verified identity, ECS names} to every record" },
	{ "stamp-format", OPT_STR, ROLE_SERVER, 0, O(stamp_format), NULL, NULL, 0, 0, NULL,
	  "with --stamp-key: a string from TEMPLATE ({cn}, {dns}, {uri}, {fp}, {ou}) instead" },
	{ "stamp-address-key", OPT_STR, ROLE_SERVER, 0, O(stamp_address_key), NULL, NULL, 0, 0, NULL,
	  "add NAME: the client's real IP address to every record (in_forward's source_address_key)" },
	{ "tag-prefix", OPT_STR, ROLE_SERVER, 0, O(tag_prefix), NULL, NULL, 0, 0, NULL,
	  "put TEMPLATE before every tag (edge.{cn}.); a client whose values are no tag is refused" },
	{ "allow-tag", OPT_LIST, ROLE_SERVER, 0, O(allow_tag), NULL, NULL, 0, 0, NULL,
	  "RULE=PATTERN: clients RULE matches (an allow rule, or *) may write tags PATTERN matches "
	  "(Fluentd's <match> syntax, templates as --tag-prefix); reads the protocol" },
	{ "max-request-size", OPT_INT, ROLE_SERVER, 0, O(max_request_size), NULL, "0", 0, 1099511627776, NULL,
	  "refuse a forward request larger than this many bytes (setting it reads the protocol; "
	  "0: not set, 268435456 while the reader runs)" },
	{ "metrics-listen", OPT_STR, BOTH, F_ADDR, O(metrics_listen), NULL, NULL, 0, 0, NULL,
	  "serve Prometheus /metrics, /healthz and /readyz over HTTP on HOST:PORT (loopback)" },
	{ "allow-remote-metrics", OPT_BOOL, BOTH, 0, O(allow_remote_metrics), "false", "false", 0, 0, NULL,
	  "allow --metrics-listen on a non-loopback address (anyone who reaches it reads them)" },
	{ "user", OPT_STR, BOTH, 0, O(user), NULL, NULL, 0, 0, NULL,
	  "started as root: bind, load the files, then drop to USER, its groups (or GROUP) for good" },
	{ "sandbox", OPT_BOOL, BOTH, 0, O(sandbox), "true", "true", 0, 0, NULL,
	  "run under Landlock (where the kernel has it) and a seccomp allow-list "
	  "(--no-sandbox: off)" },
	{ "log-level", OPT_ENUM, BOTH, 0, O(log_level), "info", "info", 0, 0, log_levels,
	  "error, warn, info or debug" },
	{ "log-format", OPT_ENUM, BOTH, 0, O(log_format), "logfmt", "logfmt", 0, 0, log_formats,
	  "logfmt or json" },
};

_Static_assert(sizeof(config_opts) / sizeof(config_opts[0]) == CONFIG_NOPTS,
    "CONFIG_NOPTS in config_opt.h must count the entries of config_opts[]");

/** config_opt_find(role, name, len): the option of role named by the len
 *  bytes at name, or NULL. */
const struct opt *config_opt_find(enum role_id role, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CONFIG_NOPTS; i++)
		if (strlen(config_opts[i].name) == len && strncmp(config_opts[i].name, name, len) == 0 &&
		    (config_opts[i].roles & role))
			return &config_opts[i];
	return NULL;
}

/* list_free(l): free every entry of l and empty it. */
static void list_free(struct strlist *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/** config_opt_clear(cfg, o): free and empty o's field if it holds a string
 *  or a list. */
void config_opt_clear(struct config *cfg, const struct opt *o)
{
	void *f = config_opt_field(cfg, o);

	if (o->type == OPT_STR) {
		free(*(char **)f);
		*(char **)f = NULL;
	} else if (o->type == OPT_LIST) {
		list_free(f);
	}
}

/** config_opt_shown(o, value, buf, bufsz): value as it may be shown (--check,
 *  an error): for an F_SECRET option, a URL's password as ***; value
 *  itself, or buf. */
const char *config_opt_shown(const struct opt *o, const char *value, char *buf, size_t bufsz)
{
	const char *auth = strstr(value, "://"), *end, *at = NULL, *colon, *p;

	if (!(o->flags & F_SECRET) || auth == NULL)
		return value;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL || (colon = memchr(auth, ':', (size_t)(at - auth))) == NULL)
		return value;
	snprintf(buf, bufsz, "%.*s***%s", (int)(colon + 1 - value), value, at);
	return buf;
}

/* check_text(o, value): control characters have no place in any value (a
 * terminal escape in a name would reach --check and the logs); a name to
 * verify and send as SNI is printable ASCII.  NULL, or the reason. */
static const char *check_text(const struct opt *o, const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return "control character in the value";
		if (o->off == O(server_name) && (*p == ' ' || *p > 0x7e))
			return "not a host name (printable ASCII only; an IDN in its xn-- form)";
	}
	return NULL;
}

/** config_opt_set(cfg, o, value, why, whysz): parse value into o's field (a
 *  list gets one more entry).  NULL, or the reason (which may be in why). */
const char *config_opt_set(struct config *cfg, const struct opt *o, const char *value,
    char *why, size_t whysz)
{
	void *f = config_opt_field(cfg, o);
	char *end, *dup, host[256], port[8];
	const char *bad;
	int i;

	if ((bad = check_text(o, value)) != NULL)
		return bad;
	if ((o->flags & F_ADDR) && *value != '\0' &&
	    sock_split(value, host, sizeof(host), port, sizeof(port), &bad) < 0)
		return bad;
	switch (o->type) {
	case OPT_STR:
		if (*value == '\0')
			return "empty value";
		if ((dup = strdup(value)) == NULL)
			return strerror(ENOMEM);
		free(*(char **)f);
		*(char **)f = dup;
		return NULL;
	case OPT_LIST: {
		struct strlist *l = f;
		char **v;

		if (*value == '\0')
			return "empty value";
		/* The role's own values (rules, networks, pins) are parsed as
		 * the daemon will, so that a bad one is reported where it was
		 * written (FILE:LINE: key, or --key). */
		if (cfg->check_value != NULL && cfg->check_value(o->name, value, why, whysz) < 0)
			return why;
		if ((v = realloc(l->v, sizeof(*v) * (size_t)(l->n + 1))) == NULL ||
		    (v[l->n] = strdup(value)) == NULL) {
			if (v != NULL)
				l->v = v;
			return strerror(ENOMEM);
		}
		l->v = v;
		l->n++;
		return NULL;
	}
	case OPT_INT: {
		long n;

		errno = 0;
		n = strtol(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0)
			return "not a whole number";
		if (n < o->min || n > o->max) {
			snprintf(why, whysz, "out of range (%ld to %ld)", o->min, o->max);
			return why;
		}
		*(long *)f = n;
		return NULL;
	}
	case OPT_SECONDS: {
		double d;

		errno = 0;
		d = strtod(value, &end);
		if (*end == 's')
			end++;
		if (*value == '\0' || *end != '\0' || errno != 0 || !isfinite(d))
			return "not a number of seconds";
		if (d < 0.001 || d > 86400)
			return "must be between 0.001 and 86400 seconds";
		*(double *)f = d;
		return NULL;
	}
	case OPT_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
		    !strcmp(value, "1"))
			*(int *)f = 1;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
		    !strcmp(value, "0"))
			*(int *)f = 0;
		else
			return "expected true or false";
		return NULL;
	case OPT_ENUM:
		for (i = 0; o->choices[i] != NULL; i++)
			if (!strcmp(value, o->choices[i])) {
				*(int *)f = i;
				return NULL;
			}
		return "not one of the accepted values";
	}
	return "bad option type";
}
