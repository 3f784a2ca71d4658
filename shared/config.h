/* config: one option table drives the command line (--max-conns 100) and the
 * config file (max-conns = 100, # comments, repeated keys for lists).  The
 * file is read first, flags override it. */
#ifndef TLSFWD_CONFIG_H
#define TLSFWD_CONFIG_H

#include <stdio.h>

enum role_id { ROLE_CLIENT = 1, ROLE_SERVER = 2 };

struct strlist {
	char **v;
	int n;
};

struct role;

struct config {
	enum role_id role;
	const char *prog;
	/* the role's check of its own values (role.h) */
	int (*check_value)(const char *opt, const char *value, char *why, size_t whysz);
	char *config_file;
	char *listen;
	struct strlist server;		/* client: servers, tried in order */
	char *server_name;		/* client: name verified and sent as SNI */
	char *proxy;			/* client: http://[user:password@]host:port, or "env" */
	char *proxy_password_file;	/* client: the proxy password, first line */
	char *upstream;			/* server: Fluentd in_forward */
	char *upstream_shared_key_file;	/* server: speak <security> to it with this key */
	char *upstream_hostname;	/* server: our self_hostname there */
	char *upstream_username, *upstream_password_file;	/* server: its user_auth */
	char *ca, *cert, *key, *key_pass_env, *key_pass_file;
	int tls_min;			/* index into "1.2", "1.3" */
	double connect_timeout, drain_timeout, handshake_timeout;
	long max_conns, workers;
	int log_level;			/* enum log_level */
	int log_format;			/* enum log_format */
	int allow_remote_plaintext;
	char *metrics_listen;		/* --metrics-listen: serve /metrics there (NULL: off) */
	int allow_remote_metrics;	/* --metrics-listen may be a non-loopback address */
	int accept_while_unreachable;	/* keep the listener open with no upstream */
	int tls_resume;			/* client: resume sessions with tickets */
	int heartbeat;			/* client: answer UDP heartbeats on the listen address */
	long max_handshakes_per_server;	/* client: opening at once per server; 0 = no limit */
	long tcp_keepalive;		/* seconds of silence before keepalive probes; 0: off */
	long health_interval;		/* the longest wait between probes of a down upstream */
	long resolve_interval;		/* seconds between resolving upstream names again */
	struct strlist pin_server;	/* client: sha256:/spki: pins of the server */
	struct strlist allow_cn, allow_dns, allow_uri, allow_ou;	/* server: who may send */
	struct strlist allow_fingerprint, allow_spki, allow_net, crl;
	char *allow_file;
	struct strlist allow_tag;	/* server: RULE=PATTERN, which tags a client may write */
	long max_conns_per_ip;		/* server: 0 = no limit */
	long max_handshakes, max_handshakes_per_ip;	/* server: 0 = no limit */
	char *audit_file, *audit_forward, *audit_tag;
	/* server: the forward-protocol reader (server/fwd.c), on when any is set */
	char *stamp_key, *stamp_format, *stamp_address_key, *tag_prefix;
	long max_request_size;		/* 0: not set (FWD_REQUEST_MAX_DEFAULT) */
	char *user;			/* --user USER[:GROUP]: drop to it after start-up */
	int sandbox;			/* Landlock and seccomp (--no-sandbox: 0) */
	int check, version, help;	/* command-line only */
};

#define TLS_MIN_12 0
#define TLS_MIN_13 1

/** config_load(cfg, role, prog, argc, argv, err, errsz): fill cfg from the
 *  defaults, the --config file and the flags, then validate what can be
 *  checked without I/O.  Returns 0, or -1 with "FILE:LINE: key: reason" or
 *  "--key: reason" in err.  The caller owns cfg and frees it with config_free(). */
int config_load(struct config *cfg, const struct role *role, const char *prog, int argc,
    char **argv, char *err, size_t errsz);

/** config_escape(s, errsz): rewrite the message s (in a buffer of errsz bytes)
 *  with every byte that is not printable ASCII as \xNN and a backslash as
 *  \\, cut with "..." to fit, so that a file's binary junk or a terminal
 *  escape in a flag is shown, never sent to the terminal as it is.
 *  config_load() does it to its own messages. */
void config_escape(char *s, size_t errsz);

/** config_print(cfg, out): the effective configuration, in config-file syntax. */
void config_print(const struct config *cfg, FILE *out);

/** config_usage(role, prog, out): the option list with defaults. */
void config_usage(enum role_id role, const char *prog, FILE *out);

/** config_free(cfg): free every string cfg holds. */
void config_free(struct config *cfg);

#endif
