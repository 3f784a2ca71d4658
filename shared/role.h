/* role: what makes a process tlsfwd-client or tlsfwd-server.  The shared
 * code (conn.c's connection, daemon.c's start-up, the TLS policy, the option
 * checks) calls these hooks and never asks which role it plays; client/
 * and server/ each define one (client_role, server_role).  A hook left NULL
 * does nothing. */
#ifndef TLSFWD_ROLE_H
#define TLSFWD_ROLE_H

#include <stddef.h>
#include <ev.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"
#include "log.h"
#include "sock.h"

struct conn;
struct conn_set;
struct tunnel;

struct role {
	enum role_id id;			/* which options apply (config.c) */
	const char *prog;		/* "tlsfwd-client", for messages */
	int tls_end;			/* the end that speaks TLS: 0 the accepted one
					 * (server), 1 the one we connect (client) */
	int verify_mode;		/* wolfSSL_set_verify() mode for the peer */
	const char *lost_msg, *found_msg;	/* the reachability lines */

	/* The process. */
	/* check_value(opt, value, why, whysz): a value of one of the role's
	 * own options (rules, networks, pins), parsed as the daemon will, so
	 * that a bad one is reported where it was written.  0, or -1 with the
	 * reason in why. */
	int (*check_value)(const char *opt, const char *value, char *why, size_t whysz);
	/* prepare(cfg, listen, t, err, errsz): check the role's options, fill
	 * t->ups and t->role_data.  0, or -1 with a message in err. */
	int (*prepare)(const struct config *cfg, const struct sock_addr *listen,
	    struct tunnel *t, char *err, size_t errsz);
	void (*cleanup)(struct tunnel *t);	/* undo prepare */
	int (*start)(const struct config *cfg, char *err, size_t errsz);	/* before the workers */
	void (*stop)(void);			/* after them */
	void (*reopen)(void);			/* SIGUSR1: reopen what logrotate moved */
	/* files(cfg, fn, arg): call fn on the role's own files a reload
	 * reads and watches (the allow-file). */
	void (*files)(const struct config *cfg, void (*fn)(const char *, void *), void *arg);
	void (*flush)(int last);		/* each second on each worker, and
						 * once at exit with last set */
	/* attach(t, loop, listen) / detach(t, loop): the daemon's main loop
	 * runs (the client answers heartbeats on it); not in the shim. */
	void (*attach)(struct tunnel *t, struct ev_loop *loop, const struct sock_addr *listen);
	void (*detach)(struct tunnel *t, struct ev_loop *loop);
	/* rules_new(cfg, &rules, err, errsz): the certificate rules a reload
	 * replaces with the TLS context (allow rules, pins); *rules NULL when
	 * there are none.  0, or -1 with a message in err. */
	int (*rules_new)(const struct config *cfg, void **rules, char *err, size_t errsz);
	void (*rules_free)(void *rules);

	/* A connection. */
	/* admit(c): c was just accepted (c->peer, c->peer_addr, end[0]), no
	 * TLS state exists.  0, or -1 (logged, nothing held) if it must be
	 * closed, silently then. */
	int (*admit)(struct conn *c);
	/* opened(c): c exists, before its first step.  0, or -1 if c was dropped. */
	int (*opened)(struct conn *c);
	void (*step)(struct conn *c);		/* each handshake step on the TLS end */
	/* upstream_open(c, why): end[1]'s TCP connect is done, before its TLS
	 * handshake: a hop to open first (the client's HTTP CONNECT through a
	 * proxy), with its state in c->hop (zeroed before the first call of
	 * each attempt); called again when end[1].hwait's event fires.
	 * CONN_OPEN_DONE, CONN_OPEN_WAIT, or CONN_OPEN_FAILED with the reason
	 * in *why (the attempt failed: the next address or server). */
	int (*upstream_open)(struct conn *c, const char **why);
	/* upstream_close(c): end[1]'s attempt is over (retried, or c goes):
	 * free what upstream_open() keeps in c->hop, if anything. */
	void (*upstream_close)(struct conn *c);
	/* upstream_error(c, err, why): end[1] failed before upstream_open()
	 * was done (err: the socket's error, ETIMEDOUT for --connect-timeout;
	 * why: the shared reason): the reason to log instead, or NULL. */
	const char *(*upstream_error)(struct conn *c, int err, const char *why);
	/* tls_setup(c, ssl): before the handshake (the name to verify, SNI, a
	 * session to resume).  0, or -1 out of memory. */
	int (*tls_setup)(struct conn *c, WOLFSSL *ssl);
	/* tls_read(c, ssl): after each read of the TLS end, until it sets
	 * c->ticketed (the client keeps the server's ticket). */
	void (*tls_read)(struct conn *c, WOLFSSL *ssl);
	/* judge(c, ok, err): the peer's leaf certificate, after the shared
	 * checks (c->verdict), wolfSSL's verdict ok and its error err: the
	 * role's rules.  Returns the new ok; sets c->verdict->deny and
	 * c->verdict->rule. */
	int (*judge)(struct conn *c, int ok, int err);
	void (*secured)(struct conn *c);	/* the TLS end's handshake is done */
	/* quiet(c, level, msg, detail): non-zero to leave out c's closing
	 * line (a rate limit on what unauthenticated peers can cause). */
	int (*quiet)(struct conn *c, enum log_level level, const char *msg, const char *detail);
	/* closed(c, denied, detail): c, a sender's connection, is going
	 * (conn_drop()); denied: refused before or in its handshake. */
	void (*closed)(struct conn *c, int denied, const char *detail);
	void (*set_free)(struct conn_set *s);	/* a worker's set is freed */
};

#endif
