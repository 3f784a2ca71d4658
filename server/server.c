/* server: the tlsfwd-server role.  Mutual TLS on the accepted end; who may
 * connect (admit.c), who may send (the allow rules judge each client
 * certificate), the accepted line and the audit trail. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "audit.h"
#include "authz.h"
#include "filter.h"
#include "fp.h"
#include "fwd_auth.h"
#include "log.h"
#include "peers.h"
#include "ratelimit.h"
#include "tagacl.h"
#include "upstream.h"
#include "x509.h"

/* What a policy holds for the server (tls_policy's rules): the allow
 * rules (NULL: any client) and the tag rules (NULL: any tag). */
struct server_rules {
	struct authz *allow;
	struct tagacl *tags;
};

static int rules_judge(struct conn *c, int ok, int err);
static int server_rules_new(const struct config *cfg, void **rules, char *err, size_t errsz);
static void server_rules_free(void *rules);

/* server_filters(c, f): the forward reader on what the sender sends, when
 * an option or the connection's tag rules need it (a tunnel filters hook). */
static int server_filters(const struct conn *c, struct filter *f[2])
{
	const struct server *srv = c->s->t->role_data;
	const struct server_rules *sr = c->pol->rules;
	int tags = sr != NULL && sr->tags != NULL;

	if (!srv->fwd && !tags)
		return 0;	/* a byte-exact tunnel, no stage */
	if ((f[0] = fwd_new(srv->max_request)) == NULL)
		return -1;
	if (srv->stamp)
		fwd_need_stamp(f[0]);
	if (tags)
		fwd_need_tags(f[0]);
	return 0;
}

/* fwd_prepare(cfg, srv, t, err, errsz): the forward reader's options. */
static int fwd_prepare(const struct config *cfg, struct server *srv, struct tunnel *t,
    char *err, size_t errsz)
{
	char why[256];

	srv->stamp = cfg->stamp_key != NULL || cfg->stamp_address_key != NULL ||
	    cfg->tag_prefix != NULL;
	/* Tag rules make the reader too, connection by connection: a reload
	 * may bring them or take them away (server_filters). */
	srv->fwd = srv->stamp || cfg->max_request_size > 0;
	if (cfg->stamp_format != NULL && cfg->stamp_key == NULL) {
		snprintf(err, errsz, "--stamp-format: needs --stamp-key (the field it fills)");
		return -1;
	}
	if ((cfg->stamp_key != NULL && cfg->stamp_key[0] == '\0') ||
	    (cfg->stamp_address_key != NULL && cfg->stamp_address_key[0] == '\0')) {
		snprintf(err, errsz, "--stamp-key, --stamp-address-key: a field name cannot be empty");
		return -1;
	}
	if (cfg->stamp_key != NULL && cfg->stamp_address_key != NULL &&
	    strcmp(cfg->stamp_key, cfg->stamp_address_key) == 0) {
		snprintf(err, errsz, "--stamp-address-key: the same field as --stamp-key");
		return -1;
	}
	if (cfg->tag_prefix != NULL && fwd_template_check(cfg->tag_prefix, 1, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "--tag-prefix: %s: %s", why, cfg->tag_prefix);
		return -1;
	}
	if (cfg->stamp_format != NULL &&
	    fwd_template_check(cfg->stamp_format, 0, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "--stamp-format: %s: %s", why, cfg->stamp_format);
		return -1;
	}
	srv->max_request = cfg->max_request_size > 0 ? (unsigned long long)cfg->max_request_size :
	    FWD_REQUEST_MAX_DEFAULT;
	srv->fwd_opts = (struct fwd_opts){ cfg->stamp_key, cfg->stamp_format,
	    cfg->stamp_address_key, cfg->tag_prefix };
	t->filters = server_filters;
	return 0;
}

static int server_prepare(const struct config *cfg, const struct sock_addr *listen,
    struct tunnel *t, char *err, size_t errsz)
{
	struct server *srv;

	metrics_proc.audit_dropped = audit_dropped;	/* before the metrics thread starts */

	(void)listen;
	if ((srv = t->role_data = calloc(1, sizeof(*srv))) == NULL ||
	    upstreams_init(&t->ups, 1, (double)cfg->health_interval) < 0) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (upstream_init(&t->ups.v[0], cfg->upstream, NULL, err, errsz) < 0)
		return -1;
	t->ups.n = 1;
	if (!sock_is_loopback(&t->ups.v[0].addr[0]))
		log_warn("upstream is not on loopback: bytes leave this host in plaintext",
		    "upstream=%s", cfg->upstream);
	if (cfg->allow_net.n > 0) {
		char why[256];
		int i;

		if ((srv->nets = authz_nets_new()) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		for (i = 0; i < cfg->allow_net.n; i++)
			if (authz_net_add(srv->nets, cfg->allow_net.v[i], why, sizeof(why)) < 0) {
				snprintf(err, errsz, "--allow-net: %s: %s", why, cfg->allow_net.v[i]);
				return -1;
			}
	}
	if (cfg->max_conns_per_ip > 0 &&
	    (srv->peers = peers_new(cfg->max_conns_per_ip, cfg->max_conns)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	/* Pending connections number at most --max-handshakes, and one more
	 * per worker (at most 256) between accept and the drop that follows. */
	srv->max_handshakes = cfg->max_handshakes;
	if (cfg->upstream_shared_key_file != NULL) {
		if ((srv->fwd_auth = malloc(sizeof(*srv->fwd_auth))) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		if (fwd_auth_secret_load(srv->fwd_auth, cfg->upstream_shared_key_file,
		    cfg->upstream_hostname, cfg->upstream_username, cfg->upstream_password_file,
		    err, errsz) < 0)
			return -1;
	}
	/* Each worker counts its own per address (see admit.c's owed()). */
	if (cfg->max_handshakes_per_ip > 0) {
		srv->hs_share = cfg->max_handshakes_per_ip / cfg->workers;
		if (srv->hs_share < 1)
			srv->hs_share = 1;
		srv->hs_capacity = cfg->max_handshakes > 0 && cfg->max_handshakes + 256 < cfg->max_conns ?
		    cfg->max_handshakes + 256 : cfg->max_conns;
	}
	return fwd_prepare(cfg, srv, t, err, errsz);
}

static void server_cleanup(struct tunnel *t)
{
	struct server *srv = t->role_data;

	if (srv != NULL) {
		authz_nets_free(srv->nets);
		peers_free(srv->peers);
		if (srv->fwd_auth != NULL)
			memset(srv->fwd_auth, 0, sizeof(*srv->fwd_auth));
		free(srv->fwd_auth);
		free(srv);
	}
	t->role_data = NULL;
}

/* server_upstream_open(c, why): with --upstream-shared-key-file, Fluentd's
 * <security> handshake on end[1] before the sender's bytes go (fwd_auth.c). */
static int server_upstream_open(struct conn *c, const char **why)
{
	const struct server *srv = c->s->t->role_data;

	return srv->fwd_auth == NULL ? CONN_OPEN_DONE : fwd_auth_open(c, srv->fwd_auth, why);
}

/* server_upstream_error(c, err, why): --connect-timeout running out in the
 * handshake is the handshake's timeout: Fluentd accepted but never spoke. */
static const char *server_upstream_error(struct conn *c, int err, const char *why)
{
	const struct server *srv = c->s->t->role_data;

	(void)why;
	return srv->fwd_auth != NULL && err == ETIMEDOUT && c->state == CONN_OPENING ?
	    "fwd_auth_timeout" : NULL;
}

/* server_files(cfg, fn, arg): the allow-file is one more file a reload reads. */
static void server_files(const struct config *cfg, void (*fn)(const char *, void *), void *arg)
{
	if (cfg->allow_file != NULL)
		fn(cfg->allow_file, arg);
}

static int server_start(const struct config *cfg, char *err, size_t errsz)
{
	return audit_open(cfg->audit_file, cfg->audit_forward, cfg->audit_tag, err, errsz);
}

/* rules_add(rules, kind, list, flag, err, errsz): the values of one --allow-* list. */
static int rules_add(struct authz *rules, enum authz_kind kind, const struct strlist *l,
    const char *flag, char *err, size_t errsz)
{
	char why[256];
	int i;

	for (i = 0; i < l->n; i++)
		if (authz_add_kind(rules, kind, l->v[i], why, sizeof(why)) < 0) {
			snprintf(err, errsz, "--%s: %s: %s", flag, why, l->v[i]);
			return -1;
		}
	return 0;
}

/* tag_line(entry, acl, why, whysz): a "tag RULE=PATTERN" line of the allow-file. */
static int tag_line(const char *entry, void *acl, char *why, size_t whysz)
{
	return tagacl_add(acl, entry, why, whysz);
}

/* server_rules_new(cfg, &rules, err, errsz): the allow rules from the flags
 * and --allow-file, and the tag rules (--allow-tag, its tag lines);
 * *rules stays NULL when there are none (all allowed). */
static int server_rules_new(const struct config *cfg, void **rules, char *err, size_t errsz)
{
	struct server_rules *sr;
	struct authz *r = NULL;
	char why[256];
	int i;

	*rules = NULL;
	if ((cfg->allow_cn.n + cfg->allow_dns.n + cfg->allow_uri.n +
	    cfg->allow_ou.n + cfg->allow_fingerprint.n + cfg->allow_spki.n == 0 &&
	    cfg->allow_file == NULL && cfg->allow_tag.n == 0))
		return 0;
	if ((sr = calloc(1, sizeof(*sr))) == NULL || (sr->tags = tagacl_new()) == NULL) {
		free(sr);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->allow_tag.n; i++)
		if (tagacl_add(sr->tags, cfg->allow_tag.v[i], why, sizeof(why)) < 0) {
			snprintf(err, errsz, "--allow-tag: %s: %s", why, cfg->allow_tag.v[i]);
			goto fail;
		}
	if (cfg->allow_cn.n + cfg->allow_dns.n + cfg->allow_uri.n + cfg->allow_ou.n +
	    cfg->allow_fingerprint.n + cfg->allow_spki.n == 0 && cfg->allow_file == NULL)
		goto done;
	if ((r = authz_new()) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (rules_add(r, AUTHZ_CN, &cfg->allow_cn, "allow-cn", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_DNS, &cfg->allow_dns, "allow-dns", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_URI, &cfg->allow_uri, "allow-uri", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_OU, &cfg->allow_ou, "allow-ou", err, errsz) < 0 ||
	    rules_add(r, AUTHZ_FINGERPRINT, &cfg->allow_fingerprint, "allow-fingerprint", err,
	    errsz) < 0 ||
	    rules_add(r, AUTHZ_SPKI, &cfg->allow_spki, "allow-spki", err, errsz) < 0 ||
	    (cfg->allow_file != NULL && authz_load_file_with(r, cfg->allow_file, tag_line,
	    sr->tags, err, errsz) < 0))
		goto fail;
	/* Without a CA only pins can admit anyone; the file may have added more. */
	if (cfg->ca == NULL && !authz_only_pins(r)) {
		snprintf(err, errsz, "--ca: required unless every allow rule is a "
		    "fingerprint or spki pin%s%s", cfg->allow_file ? " (see " : "",
		    cfg->allow_file ? cfg->allow_file : "");
		if (cfg->allow_file != NULL)
			strncat(err, ")", errsz - strlen(err) - 1);
		goto fail;
	}
	sr->allow = r;
done:
	if (tagacl_count(sr->tags) == 0) {
		tagacl_free(sr->tags);
		sr->tags = NULL;
	}
	*rules = sr;
	return 0;
fail:
	authz_free(r);
	tagacl_free(sr->tags);
	free(sr);
	return -1;
}

static void server_rules_free(void *rules)
{
	struct server_rules *sr = rules;

	if (sr != NULL) {
		authz_free(sr->allow);
		tagacl_free(sr->tags);
		free(sr);
	}
}

/* server_check_value(opt, value, why, whysz): --allow-*, --allow-net and
 * the templates of --tag-prefix and --stamp-format, parsed as the server
 * will. */
static int server_check_value(const char *opt, const char *value, char *why, size_t whysz)
{
	static const struct { const char *opt; enum authz_kind kind; } kinds[] = {
		{ "allow-cn", AUTHZ_CN }, { "allow-dns", AUTHZ_DNS },
		{ "allow-uri", AUTHZ_URI }, { "allow-ou", AUTHZ_OU },
		{ "allow-fingerprint", AUTHZ_FINGERPRINT }, { "allow-spki", AUTHZ_SPKI },
	};
	struct authz_nets *nets;
	struct authz *r;
	size_t i;
	int rc;

	if (strcmp(opt, "allow-tag") == 0) {
		struct tagacl *acl = tagacl_new();

		if (acl == NULL)
			return snprintf(why, whysz, "%s", strerror(ENOMEM)), -1;
		rc = tagacl_add(acl, value, why, whysz);
		tagacl_free(acl);
		return rc;
	}
	if (strcmp(opt, "tag-prefix") == 0 || strcmp(opt, "stamp-format") == 0)
		return fwd_template_check(value, opt[0] == 't', why, whysz);
	if (strcmp(opt, "allow-net") == 0) {
		if ((nets = authz_nets_new()) == NULL)
			return snprintf(why, whysz, "%s", strerror(ENOMEM)), -1;
		rc = authz_net_add(nets, value, why, whysz);
		authz_nets_free(nets);
		return rc;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(opt, kinds[i].opt) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return 0;
	if ((r = authz_new()) == NULL)
		return snprintf(why, whysz, "%s", strerror(ENOMEM)), -1;
	rc = authz_add_kind(r, kinds[i].kind, value, why, whysz);
	authz_free(r);
	return rc;
}

/* audit(c, kind, reason): the audit event for c, with what the handshake
 * learnt of the peer's certificate, when auditing is on. */
static void audit(struct conn *c, enum audit_kind kind, const char *reason)
{
	const struct x509_identity *id = c->verdict != NULL ? c->verdict->id : NULL;
	const WOLFSSL *ssl = c->end[0].ssl;
	struct audit_event ev = { .kind = kind, .peer = c->peer, .reason = reason };
	const char *sans[AUDIT_SANS_MAX];
	char buf[AUDIT_FIELD_MAX], fp[2 * X509_SHA256_LEN + 1];
	size_t i, used = 0;

	if (!audit_enabled())
		return;
	if (id != NULL) {
		const struct { const char *prefix; const char *const *v; size_t n; } lists[] = {
			{ "DNS:", id->dns, id->n_dns }, { "URI:", id->uri, id->n_uri },
			{ "IP:", id->ip, id->n_ip },
		};
		size_t l;

		for (l = 0; l < 3; l++)
			for (i = 0; i < lists[l].n && ev.nsans < AUDIT_SANS_MAX; i++) {
				int n = snprintf(buf + used, sizeof(buf) - used, "%s%s", lists[l].prefix,
				    lists[l].v[i]);

				if (n < 0 || (size_t)n >= sizeof(buf) - used)
					break;
				sans[ev.nsans++] = buf + used;
				used += (size_t)n + 1;
			}
		fp_hex(id->sha256, X509_SHA256_LEN, fp, sizeof(fp));
		ev.subject = id->subject;
		ev.issuer = id->issuer;
		ev.serial = id->serial;
		ev.sans = sans;
		ev.fingerprint = fp;
		if (kind == AUDIT_ACCEPT)
			ev.rule = c->verdict->rule;
		if (kind == AUDIT_TAG_DENIED)
			ev.tag = c->filter[0]->tag;
	}
	if (ssl != NULL && kind != AUDIT_CLOSE) {
		ev.tls_version = wolfSSL_get_version(ssl);
		ev.cipher = wolfSSL_get_cipher_name((WOLFSSL *)ssl);
	}
	if (kind == AUDIT_CLOSE) {
		ev.bytes_in = c->bytes[0];
		ev.bytes_out = c->bytes[1];
		ev.duration = ev_now(c->s->loop) - c->start;
	}
	audit_emit(&ev);
}

/* stamp(c): the client was admitted: the forward reader's stamp from its
 * identity.  1, or 0 when the identity cannot make one (refused). */
static int stamp(struct conn *c)
{
	const struct server *srv = c->s->t->role_data;
	struct fwd_stamp *s;
	const char *why;

	if (!srv->stamp || c->filter[0] == NULL)
		return 1;
	if (fwd_stamp_new(&srv->fwd_opts, c->verdict->id, c->verdict->rule, &c->peer_addr, &s,
	    &why) < 0) {
		c->verdict->deny = why;
		return 0;
	}
	fwd_set_stamp(c->filter[0], s);
	return 1;
}

/* tags(c): the client was admitted: the tags it may write, from the
 * policy it was admitted under.  1, or 0 (refused). */
static int tags(struct conn *c)
{
	const struct server_rules *sr = c->pol->rules;
	struct tagacl_set *set = NULL;

	if (sr == NULL || sr->tags == NULL)
		return 1;	/* no tag rules: any tag */
	/* c->filter[0] is there: server_filters() saw the same rules. */
	if (tagacl_for(sr->tags, c->verdict->id, &set) < 0) {
		tagacl_set_free(set);
		c->verdict->deny = "out_of_memory";
		return 0;
	}
	fwd_set_tags(c->filter[0], set);
	return 1;
}

/* server_judge(c, ok, err): the allow rules on the client's leaf; an
 * admitted client's stamp and tags. */
static int server_judge(struct conn *c, int ok, int err)
{
	ok = rules_judge(c, ok, err);
	return ok && stamp(c) && tags(c);
}

/* rules_judge(c, ok, err): the allow rules on the client's leaf. */
static int rules_judge(struct conn *c, int ok, int err)
{
	const struct server_rules *sr = c->pol->rules;
	const struct authz *rules = sr != NULL ? sr->allow : NULL;
	char rule[AUTHZ_RULE_TEXT_MAX];
	int verdict;

	if (rules == NULL)
		return ok;
	verdict = authz_match(rules, c->verdict->id, rule, sizeof(rule));
	if (rule[0] != '\0' && (c->verdict->rule = strdup(rule)) == NULL)
		return 0;
	if (!ok) {
		/* Only a pin overrides wolfSSL, and only for "no known issuer". */
		if (verdict == AUTHZ_MATCHED && authz_only_pins(rules) &&
		    (err == ASN_NO_SIGNER_E || err == ASN_SELF_SIGNED_E))
			return 1;
		return 0;
	}
	if (verdict == AUTHZ_DENIED) {
		c->verdict->deny = authz_several_cns(rules, c->verdict->id) ? "several_cns" :
		    "not_allowed";
		return 0;
	}
	return 1;
}

/* server_secured(c): the client is authenticated: its budget back, one line. */
static void server_secured(struct conn *c)
{
	WOLFSSL *ssl = c->end[0].ssl;
	char subject[256];

	admit_done(c);
	/* A resumed session carries no certificate: its subject was logged at
	 * the full handshake that issued the ticket.  The verified identity's
	 * subject when there is one: the text the closing line and the audit
	 * trail give (a '/' in a value escaped, control bytes as \xXX). */
	log_info("accepted", "peer=%s subject=%s rule=%s tls=%s cipher=%s resumed=%d",
	    c->peer, c->verdict != NULL && c->verdict->id != NULL ? c->verdict->id->subject :
	    tls_peer_subject(ssl, subject, sizeof(subject)),
	    c->verdict != NULL ? c->verdict->rule : NULL,
	    wolfSSL_get_version(ssl), wolfSSL_get_cipher_name(ssl), wolfSSL_session_reused(ssl));
	audit(c, AUDIT_ACCEPT, NULL);
}

/* server_quiet(c, level, msg, detail): lines an unauthenticated peer causes
 * are rate-limited per address. */
static int server_quiet(struct conn *c, enum log_level level, const char *msg,
    const char *detail)
{
	return !c->end[0].ready && !ratelimit_allow(level, msg, &c->peer_addr, detail);
}

static void server_closed(struct conn *c, int denied, const char *detail)
{
	if (denied) {
		audit(c, AUDIT_DENY, detail);
	} else if (c->end[0].ready) {
		if (c->filter[0] != NULL && c->filter[0]->tag != NULL)
			audit(c, AUDIT_TAG_DENIED, detail);	/* then its close */
		audit(c, AUDIT_CLOSE, detail);
	}
	admit_release(c);
}

const struct role server_role = {
	.id = ROLE_SERVER,
	.prog = "tlsfwd-server",
	.tls_end = 0,
	.verify_mode = WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	.lost_msg = "upstream unreachable, not accepting",
	.found_msg = "upstream reachable again, accepting",
	.check_value = server_check_value,
	.prepare = server_prepare,
	.cleanup = server_cleanup,
	.start = server_start,
	.stop = audit_close,
	.reopen = audit_reopen,
	.files = server_files,
	.flush = ratelimit_flush,
	.rules_new = server_rules_new,
	.rules_free = server_rules_free,
	.admit = admit_check,
	.opened = admit_pending,
	.step = admit_step,
	.upstream_open = server_upstream_open,
	.upstream_close = fwd_auth_close,
	.upstream_error = server_upstream_error,
	.judge = server_judge,
	.secured = server_secured,
	.quiet = server_quiet,
	.closed = server_closed,
	.set_free = admit_set_free,
};
