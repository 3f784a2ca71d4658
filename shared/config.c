/* config: the option table, the config file reader and the flag parser. */
#include "config.h"
#include "role.h"
#include "sock.h"

#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { OPT_STR, OPT_LIST, OPT_INT, OPT_SECONDS, OPT_BOOL, OPT_ENUM };

#define BOTH (ROLE_CLIENT | ROLE_SERVER)
#define F_REQUIRED 1	/* must be set for the roles it applies to */
#define F_CLI_ONLY 2	/* not a config-file key */
#define F_ADDR 4	/* a HOST:PORT or [V6]:PORT, checked as it is read */

struct opt {
	const char *name;
	enum opt_type type;
	unsigned roles, flags;
	size_t off;
	const char *def_client, *def_server;	/* parsed like user input */
	long min, max;				/* OPT_INT */
	const char *const *choices;		/* OPT_ENUM, NULL-terminated */
	const char *help;
};

static const char *const tls_versions[] = { "1.2", "1.3", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };

#define O(f) offsetof(struct config, f)

static const struct opt opts[] = {
	{ "config", OPT_STR, BOTH, F_CLI_ONLY, O(config_file), NULL, NULL, 0, 0, NULL,
	  "read options from FILE first; flags override it" },
	{ "listen", OPT_STR, BOTH, F_ADDR, O(listen), "127.0.0.1:24224", "0.0.0.0:24284", 0, 0, NULL,
	  "address to accept connections on" },
	{ "server", OPT_LIST, ROLE_CLIENT, F_REQUIRED | F_ADDR, O(server), NULL, NULL, 0, 0, NULL,
	  "tlsfwd-server (or TLS forward input) HOST:PORT; repeat to fail over" },
	{ "server-name", OPT_STR, ROLE_CLIENT, 0, O(server_name), NULL, NULL, 0, 0, NULL,
	  "name to verify and send as SNI (default: host of --server)" },
	{ "upstream", OPT_STR, ROLE_SERVER, F_ADDR, O(upstream), NULL, "127.0.0.1:24224", 0, 0, NULL,
	  "Fluentd in_forward HOST:PORT to hand the bytes to" },
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
	{ "log-level", OPT_ENUM, BOTH, 0, O(log_level), "info", "info", 0, 0, log_levels,
	  "error, warn, info or debug" },
	{ "log-format", OPT_ENUM, BOTH, 0, O(log_format), "logfmt", "logfmt", 0, 0, log_formats,
	  "logfmt or json" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void *field(struct config *cfg, const struct opt *o)
{
	return (char *)cfg + o->off;
}

static const void *cfield(const struct config *cfg, const struct opt *o)
{
	return (const char *)cfg + o->off;
}

static const struct opt *opt_find(enum role_id role, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0 &&
		    (opts[i].roles & role))
			return &opts[i];
	return NULL;
}

static void list_free(struct strlist *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
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

/* opt_set(cfg, o, value, why, whysz): parse value into o's field.  NULL, or
 * why holding the reason. */
static const char *opt_set(struct config *cfg, const struct opt *o, const char *value,
    char *why, size_t whysz)
{
	void *f = field(cfg, o);
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

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* strip_comment(line): cut a '#' that starts the line or follows white space,
 * unless it stands inside double quotes. */
static void strip_comment(char *line)
{
	int quoted = 0;
	char *p;

	for (p = line; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/* config_read_file: apply every "key = value" line of path. */
static int config_read_file(struct config *cfg, const char *path, char *err, size_t errsz)
{
	unsigned char seen[NOPTS] = { 0 };
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = -1;
	ssize_t len;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: cannot read config file: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		char *s, *eq, *key, *val;
		const struct opt *o;
		char whybuf[256];
		const char *why;
		size_t vlen;

		lineno++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			snprintf(err, errsz, "%s:%d: NUL byte in the line (not a text file?)", path,
			    lineno);
			goto out;
		}
		strip_comment(line);
		s = trim(line);
		if (*s == '\0')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: %s: expected key = value", path, lineno, s);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val[vlen - 1] = '\0';
			val++;
		}
		o = opt_find(cfg->role, key, strlen(key));
		if (o == NULL || (o->flags & F_CLI_ONLY)) {
			snprintf(err, errsz, "%s:%d: %s: unknown option%s", path, lineno, key,
			    o != NULL ? " in a config file" : "");
			goto out;
		}
		if (o->type != OPT_LIST && seen[o - opts]++) {
			snprintf(err, errsz, "%s:%d: %s: given twice", path, lineno, key);
			goto out;
		}
		if ((why = opt_set(cfg, o, val, whybuf, sizeof(whybuf))) != NULL) {
			snprintf(err, errsz, "%s:%d: %s: %s: %s", path, lineno, key, why, val);
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errsz, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(fp);
	return rc;
}

/* The --config value, found before anything else is parsed. */
static const char *find_config_flag(int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
	}
	return path;
}

/* config_only_pins(cfg): the server's rules are all certificate or key pins
 * (and there is at least one), so no CA is needed.  An --allow-file may hold
 * other rules; it is checked again when the file is loaded. */
static int config_only_pins(const struct config *cfg)
{
	return cfg->allow_fingerprint.n + cfg->allow_spki.n > 0 && cfg->allow_cn.n == 0 &&
	    cfg->allow_dns.n == 0 && cfg->allow_uri.n == 0 && cfg->allow_ou.n == 0;
}

static int validate(struct config *cfg, char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		const void *f = cfield(cfg, o);

		if (!(o->flags & F_REQUIRED) || !(o->roles & cfg->role))
			continue;
		/* A server that only admits pinned certificates needs no CA. */
		if (o->off == O(ca) && cfg->role == ROLE_SERVER && config_only_pins(cfg))
			continue;
		if ((o->type == OPT_STR && *(char *const *)f == NULL) ||
		    (o->type == OPT_LIST && ((const struct strlist *)f)->n == 0)) {
			snprintf(err, errsz, "--%s: required", o->name);
			return -1;
		}
	}
	if (cfg->key_pass_env != NULL && cfg->key_pass_file != NULL) {
		snprintf(err, errsz, "--key-pass-env: give either it or --key-pass-file, not both");
		return -1;
	}
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = n < 1 ? 1 : n > 256 ? 256 : n;
	}
	return 0;
}

/* load(cfg, role, prog, argc, argv, err, errsz): config_load() before its
 * message is made safe to print. */
static int load(struct config *cfg, const struct role *role, const char *prog, int argc,
    char **argv, char *err, size_t errsz)
{
	unsigned char cli_list_seen[NOPTS] = { 0 };
	const char *path;
	size_t i;
	int a;

	memset(cfg, 0, sizeof(*cfg));
	cfg->role = role->id;
	cfg->check_value = role->check_value;
	cfg->prog = prog;
	for (i = 0; i < NOPTS; i++) {
		const char *def = role->id == ROLE_CLIENT ? opts[i].def_client : opts[i].def_server;
		char whybuf[256];
		const char *why;

		if ((opts[i].roles & role->id) && def != NULL &&
		    (why = opt_set(cfg, &opts[i], def, whybuf, sizeof(whybuf))) != NULL) {
			snprintf(err, errsz, "--%s: default: %s", opts[i].name, why);
			return -1;
		}
	}

	if ((path = find_config_flag(argc, argv)) != NULL &&
	    config_read_file(cfg, path, err, errsz) < 0)
		return -1;

	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *name, *val = NULL, *eq, *why;
		char whybuf[256];
		const struct opt *o;
		size_t nlen;

		if (!strcmp(arg, "--check")) {
			cfg->check = 1;
			continue;
		}
		if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
			cfg->version = 1;
			continue;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			cfg->help = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			snprintf(err, errsz, "%s: unexpected argument (options start with --)", arg);
			return -1;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		o = opt_find(role->id, name, nlen);
		if (o == NULL && eq == NULL && nlen > 3 && strncmp(name, "no-", 3) == 0) {
			/* --no-NAME turns a boolean off. */
			o = opt_find(role->id, name + 3, nlen - 3);
			if (o != NULL && o->type != OPT_BOOL)
				o = NULL;
			else if (o != NULL)
				val = "false";
		}
		if (o == NULL) {
			snprintf(err, errsz, "--%.*s: unknown option (see --help)", (int)nlen, name);
			return -1;
		}
		if (val != NULL)
			;	/* --no-NAME */
		else if (eq != NULL)
			val = eq + 1;
		else if (o->type == OPT_BOOL)
			val = "true";
		else if (a + 1 < argc)
			val = argv[++a];
		else {
			snprintf(err, errsz, "--%s: needs a value", o->name);
			return -1;
		}
		if (o->off == O(config_file))
			continue;	/* already read */
		if (o->type == OPT_LIST && !cli_list_seen[o - opts]++)
			list_free(field(cfg, o));	/* flags replace the file's list */
		if ((why = opt_set(cfg, o, val, whybuf, sizeof(whybuf))) != NULL) {
			snprintf(err, errsz, "--%s: %s: %s", o->name, why, val);
			return -1;
		}
	}
	if (path != NULL && (cfg->config_file = strdup(path)) == NULL) {
		snprintf(err, errsz, "%s", strerror(ENOMEM));
		return -1;
	}
	if (cfg->help || cfg->version)
		return 0;
	return validate(cfg, err, errsz);
}

/* esc_len(c): how many bytes config_escape() writes for the byte c. */
static size_t esc_len(unsigned char c)
{
	return c == '\\' ? 2 : c < 0x20 || c > 0x7e ? 4 : 1;
}

void config_escape(char *s, size_t errsz)
{
	char *raw = strdup(s), *o = s;
	const unsigned char *p;
	size_t left = errsz, need = 1, keep;

	if (raw == NULL || errsz < 4)
		goto out;
	for (p = (const unsigned char *)raw; *p != '\0'; p++)
		need += esc_len(*p);
	keep = need > errsz ? 4 : 1;	/* room for "..." and the NUL, or the NUL */
	for (p = (const unsigned char *)raw; *p != '\0'; p++) {
		size_t n = esc_len(*p);

		if (n + keep > left) {
			strcpy(o, "...");
			goto out;
		}
		if (*p == '\\')
			memcpy(o, "\\\\", 2);
		else if (n == 4)
			snprintf(o, 5, "\\x%02x", *p);
		else
			*o = (char)*p;
		o += n;
		left -= n;
	}
	*o = '\0';
out:
	free(raw);
}

int config_load(struct config *cfg, const struct role *role, const char *prog, int argc,
    char **argv, char *err, size_t errsz)
{
	int rc = load(cfg, role, prog, argc, argv, err, errsz);

	if (rc < 0)
		config_escape(err, errsz);
	return rc;
}

/* cut_as_comment(v, quoted, after_space): non-zero if strip_comment() would
 * cut a line inside v, written there after an opening quote (quoted) or
 * after white space (after_space). */
static int cut_as_comment(const char *v, int quoted, int after_space)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted &&
		    (p == v ? after_space : isspace((unsigned char)p[-1])))
			return 1;
	}
	return 0;
}

/* print_str(out, name, v): "name = v", quoted when the reader would
 * otherwise take part of v as a comment, drop its edge white space or its
 * enclosing quotes; "name =v" when the quotes would be cut as a comment
 * (the reader cuts a '#' only after white space). */
static void print_str(FILE *out, const char *name, const char *v)
{
	size_t n = strlen(v);
	int quote = cut_as_comment(v, 0, 1) || n == 0 || isspace((unsigned char)v[0]) ||
	    isspace((unsigned char)v[n - 1]) || (v[0] == '"' && v[n - 1] == '"');

	if (!quote)
		fprintf(out, "%s = %s\n", name, v);
	else if (!cut_as_comment(v, 1, 0))
		fprintf(out, "%s = \"%s\"\n", name, v);
	else
		fprintf(out, "%s =%s\n", name, v);
}

/* print_seconds(out, name, d): the shortest form that reads back exactly. */
static void print_seconds(FILE *out, const char *name, double d)
{
	char buf[40];
	int prec;

	for (prec = 6; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*g", prec, d);
	fprintf(out, "%s = %s\n", name, buf);
}

static void print_value(const struct config *cfg, const struct opt *o, FILE *out)
{
	const void *f = cfield(cfg, o);
	int i;

	switch (o->type) {
	case OPT_STR:
		if (*(char *const *)f != NULL)
			print_str(out, o->name, *(char *const *)f);
		else
			fprintf(out, "# %s is not set\n", o->name);
		break;
	case OPT_LIST:
		for (i = 0; i < ((const struct strlist *)f)->n; i++)
			print_str(out, o->name, ((const struct strlist *)f)->v[i]);
		break;
	case OPT_INT:
		fprintf(out, "%s = %ld\n", o->name, *(const long *)f);
		break;
	case OPT_SECONDS:
		print_seconds(out, o->name, *(const double *)f);
		break;
	case OPT_BOOL:
		fprintf(out, "%s = %s\n", o->name, *(const int *)f ? "true" : "false");
		break;
	case OPT_ENUM:
		fprintf(out, "%s = %s\n", o->name, o->choices[*(const int *)f]);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	size_t i;

	fprintf(out, "# %s effective configuration\n", cfg->prog);
	for (i = 0; i < NOPTS; i++)
		if ((opts[i].roles & cfg->role) && !(opts[i].flags & F_CLI_ONLY))
			print_value(cfg, &opts[i], out);
}

void config_usage(enum role_id role, const char *prog, FILE *out)
{
	size_t i;

	fprintf(out, "usage: %s [--config FILE] [options]\n\noptions:\n", prog);
	for (i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		const char *def = role == ROLE_CLIENT ? o->def_client : o->def_server;

		if (!(o->roles & role))
			continue;
		fprintf(out, "  --%-24s %s", o->name, o->help);
		if (o->flags & F_REQUIRED)
			fprintf(out, " (required)");
		else if (def != NULL)
			fprintf(out, " (default %s)", def);
		fputc('\n', out);
	}
	fprintf(out, "  --%-24s %s\n", "check", "validate the configuration, print it and exit");
	fprintf(out, "  --%-24s %s\n", "version", "print versions and build features");
	fprintf(out, "  --%-24s %s\n", "help", "this text");
}

void config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		void *f = field(cfg, &opts[i]);

		if (!(opts[i].roles & cfg->role))
			continue;
		if (opts[i].type == OPT_STR) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (opts[i].type == OPT_LIST) {
			list_free(f);
		}
	}
}
