/* conn: one tunnelled connection — both halves, their rings, the phase timer
 * and the single teardown path, conn_drop().
 *
 * wolfSSL runs on libev's level-triggered watchers: every read, write,
 * handshake or shutdown attempt that cannot go on records what it waits for
 * (EV_READ or EV_WRITE, wolfSSL may want either for any call), and after each
 * event conn_update() pumps both directions until nothing moves, then derives
 * the watcher set from what is still wanted; a connection that would go on
 * past CONN_TURN bytes yields to the others and resumes by its turn timer.
 * wolfSSL and the TLS read-ahead may hold bytes the socket no longer signals,
 * so a direction is retried whenever its ring has room, not only when its
 * socket is readable. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "audit.h"
#include "authz.h"
#include "filter.h"
#include "fp.h"
#include "log.h"
#include "peers.h"
#include "ratelimit.h"
#include "ring.h"
#include "x509.h"
#include "xport.h"

#define CONN_TURN 65536	/* bytes a connection reads before the others' turn */
#define PROBE_FIRST 0.1		/* seconds from losing the upstream to the first probe */
#define PROBE_MAX 2.0		/* the probes' back-off stops growing here */

enum conn_state {
	CONN_HANDSHAKING,	/* TLS handshake on the TLS end */
	CONN_CONNECTING,	/* TCP connect of end[1] in progress */
	CONN_RELAYING,		/* both ends up, no EOF yet */
	CONN_DRAINING,		/* an EOF was seen (or shutdown): idle time is bounded */
};

enum conn_reason {
	CONN_DONE,		/* both directions finished */
	CONN_TRUNCATED,		/* a peer closed or reset without a clean EOF */
	CONN_NOT_TLS,
	CONN_HANDSHAKE_FAILED,
	CONN_HANDSHAKE_TIMEOUT,
	CONN_PREAUTH_DROPPED,	/* --max-handshakes: a pending connection makes room */
	CONN_CONNECT_FAILED,
	CONN_READ_ERROR,
	CONN_WRITE_ERROR,
	CONN_DRAIN_TIMEOUT,
	CONN_NOMEM,
	CONN_SHUTDOWN,
	CONN_BAD_INPUT,		/* a filter stage refused what a side sent */
};

/* How a connection ended.  Only CONN_DONE is a clean end: every other one
 * closes both sockets abortively (RST), so neither the sender nor Fluentd
 * can take a cut stream for a complete one.  A failure of the upstream side
 * (the server for the client, Fluentd for the server) is logged at warn
 * whatever its level here: the sender's own resets are its business. */
static const struct {
	const char *msg;
	enum log_level level;
} reasons[] = {
	[CONN_DONE]		 = { "closed", LOG_DEBUG },
	[CONN_TRUNCATED]	 = { "closed without a clean end", LOG_INFO },
	[CONN_NOT_TLS]		 = { "refused: not TLS", LOG_WARN },
	[CONN_HANDSHAKE_FAILED]	 = { "handshake failed", LOG_WARN },
	[CONN_HANDSHAKE_TIMEOUT] = { "handshake timed out", LOG_WARN },
	[CONN_PREAUTH_DROPPED]	 = { "dropped: too many pending handshakes", LOG_WARN },
	[CONN_CONNECT_FAILED]	 = { "upstream unreachable", LOG_WARN },
	[CONN_READ_ERROR]	 = { "read failed", LOG_INFO },
	[CONN_WRITE_ERROR]	 = { "write failed", LOG_INFO },
	[CONN_DRAIN_TIMEOUT]	 = { "drain timed out", LOG_INFO },
	[CONN_NOMEM]		 = { "out of memory", LOG_ERROR },
	[CONN_SHUTDOWN]		 = { "closed at shutdown", LOG_INFO },
	[CONN_BAD_INPUT]	 = { "dropped: bad input", LOG_WARN },
};

/* Which side a failure is on, for conn_drop() and the log. */
enum conn_side {
	SIDE_NONE = -1,		/* neither: a timeout, shutdown, out of memory */
	SIDE_PEER = 0,		/* end[0], the accepted connection */
	SIDE_UPSTREAM = 1,	/* end[1], the connection we made */
};

struct conn {
	struct conn_set *s;
	struct conn *prev, *next;
	enum conn_state state;
	int probe;		/* no sender: asks whether the upstream answers */
	struct end end[2];	/* 0: accepted, 1: connected upstream */
	struct ring ring[2];	/* ring[i] holds bytes read from end[i] */
	struct filter *filter[2];	/* the stage between ring[i] and end[1 - i], or NULL */
	ev_timer timer;		/* handshake, connect or drain, by state */
	ev_timer turn;		/* due at once: the rest of a turn cut at CONN_TURN */
	ev_tstamp start, last;	/* accept time, last byte moved */
	int up, addr;		/* upstream and address being tried */
	int tls_code;		/* wolfSSL's error behind a TLS failure, for the log */
	struct tls_policy *pol;	/* held from accept to close: reloads leave it be */
	struct verdict *verdict;	/* during the handshake: who the peer is */
	struct sock_addr peer_addr;	/* for t->peers, which counts it */
	struct conn *hs_prev, *hs_next;	/* server, while pending: on s->hs_new[talking] */
	unsigned char pending;		/* server: counted in s->pending (and t->hs_peers) */
	unsigned char talking;		/* pending: a byte came since accept */
	unsigned long long bytes[2];	/* read from end[i] (a turn's measure) */
	unsigned long long sent[2];	/* of those, written out to end[1 - i] */
	char peer[SOCK_NTOP_MAX];
};

/* What the verify callback learnt of the peer's certificate; kept only until
 * the handshake is logged. */
struct verdict {
	struct x509_identity *id;	/* the leaf certificate, NULL if unparsable */
	const char *deny;		/* why our checks or rules refused it, or NULL */
	int anchored;			/* its path reached a --ca certificate */
	int leaf_done;			/* the leaf was judged */
	char rule[AUTHZ_RULE_TEXT_MAX];	/* the rule that admitted it */
};

static void conn_update(struct conn *c);
static void upstream_up(struct conn *c);
static void pending_leave(struct conn *c);
static void pending_touch(struct conn *c);
static void verdict_free(struct conn *c);
static void audit(struct conn *c, enum audit_kind kind, const char *reason);

static int tls_end(const struct conn *c)
{
	return c->s->t->role == ROLE_CLIENT ? 1 : 0;
}

static void watch(struct conn *c, ev_io *w, int on)
{
	if (on && !ev_is_active(w))
		ev_io_start(c->s->loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(c->s->loop, w);
}

static void timer_arm(struct conn *c, ev_tstamp after)
{
	ev_timer_stop(c->s->loop, &c->timer);
	ev_timer_set(&c->timer, after, 0.);
	ev_timer_start(c->s->loop, &c->timer);
}

/* end_close(e, abortive): stop e's watchers, free its transport (TLS),
 * close its socket. */
static void end_close(struct conn *c, struct end *e, int abortive)
{
	watch(c, &e->rio, 0);
	watch(c, &e->wio, 0);
	if (e->ops != NULL)
		e->ops->close(e, abortive);
}

static void end_open(struct conn *c, struct end *e, int fd);

/* conn_free(c, abortive): stop c's watchers and timer, free its TLS and
 * buffers, close both sockets (with RST if abortive) and forget c. */
static void conn_free(struct conn *c, int abortive)
{
	struct conn_set *s = c->s;
	struct tunnel *t = s->t;
	int i;

	verdict_free(c);
	ev_timer_stop(s->loop, &c->timer);
	ev_timer_stop(s->loop, &c->turn);
	for (i = 0; i < 2; i++) {
		end_close(c, &c->end[i], abortive);
		ring_free(&c->ring[i]);
		filter_free(c->filter[i]);
	}
	tls_policy_release(c->pol);
	pending_leave(c);
	if (t->peers != NULL && !c->probe)
		peers_release(t->peers, &c->peer_addr);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n--;
	if (!c->probe)
		atomic_fetch_sub(&t->active, 1);
	free(c);
}

/* probe_after(s, wait): probe the upstreams again in wait seconds. */
static void probe_after(struct conn_set *s, ev_tstamp wait)
{
	if (s->stopping)
		return;
	s->probe_wait = wait;
	ev_timer_stop(s->loop, &s->probe);
	ev_timer_set(&s->probe, wait, 0.);
	ev_timer_start(s->loop, &s->probe);
}

/* probe_done(c, ok): probe c ended, cleanly (the upstream answered) or not. */
static void probe_done(struct conn *c, int ok)
{
	struct conn_set *s = c->s;

	if (ok)
		reach_found(&s->t->reach, s->t->up[c->up].spec);
	else if (reach_is_down(&s->t->reach))
		probe_after(s, s->probe_wait * 2 < PROBE_MAX ? s->probe_wait * 2 : PROBE_MAX);
}

/*-
 * conn_drop(c, why, side, detail): the one teardown path.  Logs once, naming
 * the side that failed, stops every watcher and the timer, frees TLS and
 * buffers, closes both sockets and forgets c.  Only a clean end (CONN_DONE)
 * closes gracefully; every other one resets both sockets, so whoever is on
 * the other side learns that what it sent or awaited went nowhere (a
 * sender's own buffer or acks take over), never a clean end of stream.
 * Returns -1 so callers can `return conn_drop(...)`.
 */
static int conn_drop(struct conn *c, enum conn_reason why, enum conn_side side,
    const char *detail)
{
	static const char *const sides[] = { "peer", "upstream" };
	struct conn_set *s = c->s;
	struct tunnel *t = s->t;
	enum log_level level = reasons[why].level;

	if (side == SIDE_UPSTREAM && level > LOG_WARN)
		level = LOG_WARN;
	if (c->probe)
		level = LOG_DEBUG;	/* reach logs the changes, not each probe */
	if (log_enabled(level) && (t->role != ROLE_SERVER || c->end[0].ready || c->probe ||
	    ratelimit_allow(level, reasons[why].msg, &c->peer_addr, detail))) {
		/* The server names its upstream only once it tried it. */
		int tried = t->role == ROLE_CLIENT || c->end[1].fd >= 0 || c->end[1].ready;
		char code[16];

		snprintf(code, sizeof(code), "%d", c->tls_code);
		/* sent, received: bytes delivered upstream, and back to the peer */
		log_kv(level, reasons[why].msg,
		    "peer=%s upstream=%s side=%s reason=%s subject=%s tls_code=%s sent=%llu "
		    "received=%llu duration=%f", c->peer, tried ? t->up[c->up].spec : NULL,
		    side == SIDE_NONE ? NULL : sides[side], detail,
		    c->verdict != NULL && c->verdict->id != NULL ? c->verdict->id->subject : NULL,
		    c->tls_code != 0 ? code : NULL, c->sent[0], c->sent[1],
		    ev_now(s->loop) - c->start);
	}
	if (c->probe) {
		probe_done(c, why == CONN_DONE);
	} else {
		/* Before the sender is reset: it must find the door shut. */
		if (side == SIDE_UPSTREAM && reach_lost(&t->reach, t->up[c->up].spec, detail))
			probe_after(s, PROBE_FIRST);
		if (why == CONN_NOT_TLS || why == CONN_HANDSHAKE_FAILED ||
		    why == CONN_HANDSHAKE_TIMEOUT || why == CONN_PREAUTH_DROPPED)
			audit(c, AUDIT_DENY, detail);
		else if (c->end[0].ready)
			audit(c, AUDIT_CLOSE, detail);
	}
	conn_free(c, why != CONN_DONE);
	if (s->stopping && s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
	return -1;
}

static void drain_arm(struct conn *c)
{
	const struct tunnel *t = c->s->t;

	c->state = CONN_DRAINING;
	c->last = ev_now(c->s->loop);
	timer_arm(c, c->probe ? t->connect_timeout : t->drain_timeout);
}

/* Both ends are up: relay, bounded by the drain timer if an EOF came early. */
static void conn_relay(struct conn *c)
{
	if (c->end[0].eof || c->end[1].eof || c->s->stopping) {
		drain_arm(c);
	} else {
		c->state = CONN_RELAYING;
		ev_timer_stop(c->s->loop, &c->timer);
	}
}

/* audit(c, kind, reason): the server's audit event for c, with what the
 * handshake learnt of the peer's certificate, when auditing is on. */
static void audit(struct conn *c, enum audit_kind kind, const char *reason)
{
	const struct x509_identity *id = c->verdict != NULL ? c->verdict->id : NULL;
	const WOLFSSL *ssl = c->end[0].ssl;
	struct audit_event ev = { .kind = kind, .peer = c->peer, .reason = reason };
	const char *sans[AUDIT_SANS_MAX];
	char buf[AUDIT_FIELD_MAX], fp[2 * X509_SHA256_LEN + 1];
	size_t i, used = 0;

	if (c->s->t->role != ROLE_SERVER || !audit_enabled())
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
		if (kind == AUDIT_ACCEPT && c->verdict->rule[0] != '\0')
			ev.rule = c->verdict->rule;
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

static void verdict_free(struct conn *c)
{
	if (c->verdict != NULL) {
		x509_identity_free(c->verdict->id);
		free(c->verdict);
		c->verdict = NULL;
	}
}

/* verify_cb(ok, store): wolfSSL asks about every certificate of the peer's
 * chain, top first, ok saying whether its own checks (chain, dates, CRL,
 * name) passed.  At the first call we check the whole path for what wolfSSL
 * 5.5.4 skips (tls_chain_check: a root's pathLenConstraint, keyCertSign,
 * key sizes, MD5/SHA-1 signatures, name constraints, the leaf's
 * extendedKeyUsage); refusing there also keeps wolfSSL from caching the
 * peer's intermediates as CAs.  A CRL that expired while loaded is named
 * as such (tls_crl_expired).
 * At the leaf we add ours: the server's allow rules and the client's
 * --pin-server pins.  A pin may also admit a certificate that chains to no
 * CA (self-signed): that is what pinning is for. */
static int verify_cb(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct conn *c = store->userCtx;
	const struct authz *rules = c->pol->rules;
	const unsigned char *der;
	const char *why;
	int len, verdict, err = wolfSSL_X509_STORE_CTX_get_error(store);
	int server = c->s->t->role == ROLE_SERVER;
	int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);

	/* wolfSSL 5.5.4 computes ok before its host and IP checks, which only
	 * set the store's error: a failure is either. */
	if (err != 0)
		ok = 0;
	if (c->verdict == NULL) {
		if ((c->verdict = calloc(1, sizeof(*c->verdict))) == NULL)
			return 0;
		c->verdict->deny = tls_chain_check(c->pol, store, server, &c->verdict->anchored);
	}
	/* the leaf's identity, for the log and the audit trail even if refused */
	if (depth == 0 && c->verdict->id == NULL) {
		der = wolfSSL_X509_get_der(wolfSSL_X509_STORE_CTX_get_current_cert(store), &len);
		if (der == NULL || len <= 0 ||
		    x509_identity_new(der, (size_t)len, &c->verdict->id, &why) < 0) {
			if (c->verdict->deny == NULL)
				c->verdict->deny = "bad_certificate";
			return 0;
		}
	}
	if (c->verdict->deny != NULL)
		return 0;
	if (err != 0 && tls_crl_expired(c->pol, wolfSSL_X509_STORE_CTX_get_current_cert(store),
	    err)) {
		c->verdict->deny = "crl_expired";
		return 0;
	}
	if (depth != 0 || c->verdict->leaf_done)
		return ok;
	c->verdict->leaf_done = 1;
	/* wolfSSL may have found an issuer the peer did not send, among the
	 * intermediates of earlier handshakes it keeps: our checks did not see
	 * that path, so it is not taken. */
	if (ok && !c->verdict->anchored) {
		c->verdict->deny = "incomplete_chain";
		return 0;
	}
	if (rules == NULL)
		return ok;
	verdict = authz_match(rules, c->verdict->id, c->verdict->rule, sizeof(c->verdict->rule));
	if (!ok) {
		/* Only a pin overrides wolfSSL, and only for "no known issuer". */
		if (verdict == AUTHZ_MATCHED && authz_only_pins(rules) &&
		    (err == ASN_NO_SIGNER_E || err == ASN_SELF_SIGNED_E))
			return 1;
		return 0;
	}
	if (verdict == AUTHZ_DENIED) {
		c->verdict->deny = !server ? "pin_mismatch" :
		    authz_several_cns(rules, c->verdict->id) ? "several_cns" : "not_allowed";
		return 0;
	}
	return 1;
}

/* tls_failure(c, e, err): remember wolfSSL's code for the log and name it. */
static const char *tls_failure(struct conn *c, struct end *e, int err)
{
	c->tls_code = err;
	return tls_reason(e->ssl, err);
}

/* tls_start(c, e): a WOLFSSL for end e; the client sets what to verify. */
static int tls_start(struct conn *c, struct end *e)
{
	const struct tunnel *t = c->s->t;

	if ((e->ssl = wolfSSL_new(c->pol->ctx)) == NULL)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_new");
	xport_tls_attach(e, e->ssl);
	wolfSSL_set_verify(e->ssl, t->role == ROLE_SERVER ?
	    WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : WOLFSSL_VERIFY_PEER, verify_cb);
	wolfSSL_SetCertCbCtx(e->ssl, c);
	if (t->role == ROLE_CLIENT) {
		const struct upstream *u = &t->up[c->up];
		int ok;

		/* An IP literal is checked against IP SANs and never sent as SNI. */
		if (u->name_is_ip)
			ok = wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(wolfSSL_get0_param(e->ssl),
			    u->name) == WOLFSSL_SUCCESS;
		else
			ok = wolfSSL_UseSNI(e->ssl, WOLFSSL_SNI_HOST_NAME, u->name,
			    (unsigned short)strlen(u->name)) == WOLFSSL_SUCCESS &&
			    wolfSSL_check_domain_name(e->ssl, u->name) == WOLFSSL_SUCCESS;
		if (!ok)
			return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_name");
		/* Resume with this worker's ticket for the server, if any: a
		 * TLS 1.3 resumption skips the certificate signatures. */
		if (c->s->sessions != NULL && c->s->sessions[c->up] != NULL)
			(void)wolfSSL_set_session(e->ssl, c->s->sessions[c->up]);
	}
	return 0;
}

/* session_keep(c, e): after a full handshake, once the server's ticket has
 * arrived, keep the session for the next connections to this server.  Never
 * from a resumed connection: until its own ticket comes, its session pairs
 * the old ticket with the new resumption secret, and a resumption from that
 * fails the server's binder check (BAD_BINDER). */
static void session_keep(struct conn *c, struct end *e)
{
	WOLFSSL_SESSION **slot = &c->s->sessions[c->up], *sess;

	if (wolfSSL_session_reused(e->ssl)) {
		e->ticketed = 1;
		return;
	}
	if (!wolfSSL_SESSION_is_resumable(wolfSSL_get_session(e->ssl)) ||
	    (sess = wolfSSL_get1_session(e->ssl)) == NULL)
		return;
	e->ticketed = 1;
	wolfSSL_SESSION_free(*slot);
	*slot = sess;
}

/* conn_connect(c): connect end[1] to the current or a later upstream address. */
static int conn_connect(struct conn *c)
{
	const struct tunnel *t = c->s->t;
	int e = 0;

	for (; c->up < t->nup; c->up++, c->addr = 0) {
		const struct upstream *u = &t->up[c->up];

		for (; c->addr < u->naddr; c->addr++) {
			int fd = sock_connect(&u->addr[c->addr]);

			if (fd >= 0) {
				end_open(c, &c->end[1], fd);
				c->end[1].hwait = EV_WRITE;
				c->state = CONN_CONNECTING;
				timer_arm(c, t->connect_timeout);
				return 0;
			}
			e = errno;
		}
	}
	c->up = t->nup - 1;
	c->addr = 0;
	return conn_drop(c, CONN_CONNECT_FAILED, SIDE_UPSTREAM, xport_reason(e));
}

/* conn_retry(c, why, detail): the attempt on end[1] failed; try the next
 * address or upstream, or drop.  Only before any byte came from upstream. */
static int conn_retry(struct conn *c, enum conn_reason why, const char *detail)
{
	const struct tunnel *t = c->s->t;
	const struct upstream *u = &t->up[c->up];

	if (c->addr + 1 >= u->naddr && c->up + 1 >= t->nup)
		return conn_drop(c, why, SIDE_UPSTREAM, detail);
	log_warn("upstream attempt failed, trying the next", "peer=%s upstream=%s reason=%s",
	    c->peer, u->spec, detail);
	c->tls_code = 0;
	verdict_free(c);
	end_close(c, &c->end[1], 1);
	if (++c->addr >= u->naddr) {
		c->up++;
		c->addr = 0;
	}
	return conn_connect(c);
}

/* conn_handshake(c): advance the TLS handshake on the TLS end. */
static int conn_handshake(struct conn *c)
{
	const struct tunnel *t = c->s->t;
	struct end *e = &c->end[tls_end(c)];
	const char *why;
	int rc, err;

	if (e->hwait)
		return 0;
	if (e->ssl == NULL) {
		/* Server: look at the first byte before paying for a WOLFSSL, so
		 * plaintext and silent sockets cost nothing but the fd. */
		unsigned char b;
		ssize_t n = recv(e->fd, &b, 1, MSG_PEEK);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			e->hwait = EV_READ;
			return 0;
		}
		if (n <= 0)
			return conn_drop(c, CONN_HANDSHAKE_FAILED, SIDE_PEER,
			    n == 0 ? "peer_closed" : "reset");
		if (b != 0x16)	/* not a TLS handshake record */
			return conn_drop(c, CONN_NOT_TLS, SIDE_PEER, "not_tls");
		if (tls_start(c, e) < 0)
			return -1;
	}
	pending_touch(c);
	rc = t->role == ROLE_CLIENT ? wolfSSL_connect(e->ssl) : wolfSSL_accept(e->ssl);
	if (rc != WOLFSSL_SUCCESS) {
		err = wolfSSL_get_error(e->ssl, rc);
		if (err == WOLFSSL_ERROR_WANT_READ) {
			e->hwait = EV_READ;
			return 0;
		}
		if (err == WOLFSSL_ERROR_WANT_WRITE) {
			e->hwait = EV_WRITE;
			return 0;
		}
		why = tls_failure(c, e, err);
		if (c->verdict != NULL && c->verdict->deny != NULL)
			why = c->verdict->deny;	/* refused by our rules, not wolfSSL's */
		if (t->role == ROLE_CLIENT)
			return conn_retry(c, CONN_HANDSHAKE_FAILED, why);
		return conn_drop(c, CONN_HANDSHAKE_FAILED, SIDE_PEER, why);
	}
	e->ready = 1;
	if (t->role == ROLE_SERVER) {
		char subject[256];

		pending_leave(c);

		/* A resumed session carries no certificate: its subject was
		 * logged at the full handshake that issued the ticket. */
		log_info("accepted", "peer=%s subject=%s rule=%s tls=%s cipher=%s resumed=%d",
		    c->peer, tls_peer_subject(e->ssl, subject, sizeof(subject)),
		    c->verdict != NULL && c->verdict->rule[0] != '\0' ? c->verdict->rule : NULL,
		    wolfSSL_get_version(e->ssl), wolfSSL_get_cipher_name(e->ssl),
		    wolfSSL_session_reused(e->ssl));
		audit(c, AUDIT_ACCEPT, NULL);
		verdict_free(c);
		return conn_connect(c);
	}
	log_debug("connected", "peer=%s upstream=%s tls=%s cipher=%s resumed=%d", c->peer,
	    t->up[c->up].spec, wolfSSL_get_version(e->ssl), wolfSSL_get_cipher_name(e->ssl),
	    wolfSSL_session_reused(e->ssl));
	verdict_free(c);
	upstream_up(c);
	return 0;
}

/* upstream_up(c): end[1] is connected (and its handshake done): relay.  A
 * sender's connection proves the upstream reachable as well as a probe. */
static void upstream_up(struct conn *c)
{
	if (!c->probe)
		reach_found(&c->s->t->reach, c->s->t->up[c->up].spec);
	conn_relay(c);
}

/* conn_advance(c): the connect and handshake phases; -1 if c was dropped. */
static int conn_advance(struct conn *c)
{
	if (c->state == CONN_CONNECTING) {
		struct end *u = &c->end[1];
		int err;

		if (u->hwait)
			return 0;
		if ((err = sock_error(u->fd)) != 0)
			return conn_retry(c, CONN_CONNECT_FAILED, xport_reason(err));
		if (c->s->t->role == ROLE_SERVER) {
			u->ready = 1;
			upstream_up(c);
			return 0;
		}
		if (tls_start(c, u) < 0)
			return -1;
		c->state = CONN_HANDSHAKING;
	}
	if (c->state == CONN_HANDSHAKING)
		return conn_handshake(c);
	return 0;
}

/* end_eof(c, k, truncated): nothing more will come from end k. */
static int end_eof(struct conn *c, int k, int truncated)
{
	c->end[k].eof = 1;
	c->end[k].truncated = (unsigned char)truncated;
	ring_trim(&c->ring[k]);
	if (c->state == CONN_RELAYING)
		drain_arm(c);
	return 1;
}

/* end_fail(c, why, k): end k's transport failed: drop c, with the
 * transport's reason and wolfSSL's code if there is one.  Returns -1. */
static int end_fail(struct conn *c, enum conn_reason why, int k)
{
	struct end *e = &c->end[k];

	if (e->code != 0)
		c->tls_code = e->code;
	return conn_drop(c, why, k, e->why);
}

/* want(rc): the event an XPORT_WANT_* code waits for. */
static unsigned char want(int rc)
{
	return rc == XPORT_WANT_READ ? EV_READ : EV_WRITE;
}

/* fill(c, k): read from end k into ring[k].  1 progress, 0 blocked, -1 dropped. */
static int fill(struct conn *c, int k)
{
	struct end *e = &c->end[k];
	struct ring *r = &c->ring[k];
	unsigned char *p;
	size_t n;
	int rc;

	if (!e->ready || e->eof || e->rwait || ring_full(r))
		return 0;
	if ((p = ring_wspace(r, &n)) == NULL)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "ring");
	rc = e->ops->read(e, p, n);
	if (e->ssl != NULL && !e->ticketed && c->s->sessions != NULL)
		session_keep(c, e);
	if (rc > 0) {
		ring_commit(r, (size_t)rc);
		c->bytes[k] += (unsigned long long)rc;
		return 1;
	}
	ring_trim(r);
	switch (rc) {
	case XPORT_WANT_READ:
	case XPORT_WANT_WRITE:
		e->rwait = want(rc);
		return 0;
	case XPORT_END:
		return end_eof(c, k, 0);
	case XPORT_CUT:
		return end_eof(c, k, 1);	/* deliver what came before the cut */
	default:
		return end_fail(c, CONN_READ_ERROR, k);
	}
}

/* shut(c, d): pass the EOF on to end d (close_notify and/or FIN). */
static int shut(struct conn *c, struct end *d)
{
	int rc;

	if (d->fd < 0) {	/* a probe's missing sender */
		d->shut = 1;
		return 1;
	}
	if ((rc = d->ops->shutdown(d)) == XPORT_WANT_READ || rc == XPORT_WANT_WRITE) {
		d->wwait = want(rc);
		return 0;
	}
	if (rc < 0)
		return end_fail(c, CONN_WRITE_ERROR, d == &c->end[1]);
	d->shut = 1;
	return 1;
}

/*-
 * stage(c, k, &eof): run direction k's filter stage from ring[k] into its
 * output ring until it is idle.  *eof: end k's EOF may be passed on once
 * the output is written: the stage took all its input (or, after a cut,
 * all it could).  1 progress, 0 none, -1 dropped: a stage error drops c
 * abortively, on the side that sent the bytes.
 */
static int stage(struct conn *c, int k, int *eof)
{
	struct filter *f = c->filter[k];
	struct ring *in = &c->ring[k];
	const struct end *e = &c->end[k];
	int last = e->eof && !e->truncated, rc, moved = 0;

	while ((rc = f->ops->run(f, in, &f->out, last)) == FILTER_PROGRESS)
		moved = 1;
	ring_trim(&f->out);
	if (rc < 0)
		return conn_drop(c, CONN_BAD_INPUT, k, f->why != NULL ? f->why : "filter");
	if (last && ring_len(in) > 0 && ring_len(&f->out) == 0)
		return conn_drop(c, CONN_BAD_INPUT, k, "filter_stalled");
	*eof = e->eof && (ring_len(in) == 0 || e->truncated);
	return moved;
}

/* flush(c, k): write ring[k] (through its stage, if any) to the other end,
 * then pass on an EOF from end k.  1 progress, 0 blocked, -1 dropped. */
static int flush(struct conn *c, int k)
{
	struct end *d = &c->end[1 - k];
	struct ring *r = &c->ring[k];
	const unsigned char *p;
	size_t n;
	int rc, eof = c->end[k].eof, staged = 0;

	if (!d->ready || d->shut || d->wwait)
		return 0;
	if (c->filter[k] != NULL) {
		if ((staged = stage(c, k, &eof)) < 0)
			return -1;
		r = &c->filter[k]->out;
	}
	if (d->fd < 0)		/* a probe has no sender: what upstream says is dropped */
		ring_consume(r, ring_len(r));
	if (ring_len(r) == 0) {
		if (!eof)
			return staged;
		/* What came before a cut was delivered; the cut itself is
		 * passed on as one (RST), never as a clean end. */
		if (c->end[k].truncated)
			return conn_drop(c, CONN_TRUNCATED, k, c->end[k].why);
		return shut(c, d);
	}
	/* Each write carries MSG_MORE while the ring holds bytes beyond it, so
	 * the kernel sends a burst as one segment; the last write of a burst,
	 * without it, pushes them all.  conn_update() goes on writing until the
	 * ring is empty or the socket is full, so nothing is held back. */
	p = ring_rdata(r, &n);
	rc = d->ops->write(d, p, n, ring_len(r) > n);
	if (rc > 0) {
		ring_consume(r, (size_t)rc);
		c->sent[k] += (unsigned long long)rc;
		return 1;
	}
	if (rc == XPORT_WANT_READ || rc == XPORT_WANT_WRITE) {
		d->wwait = want(rc);
		return staged;
	}
	return end_fail(c, CONN_WRITE_ERROR, 1 - k);
}

/* conn_update(c): move bytes both ways until nothing moves or c has read
 * CONN_TURN bytes, end the connection if both directions are done, else set
 * the watchers. */
static void conn_update(struct conn *c)
{
	unsigned long long start = c->bytes[0] + c->bytes[1];
	int k, rc, moved = 0, progress, cut = 0;

	do {
		progress = 0;
		/* Upstream's direction first: an upstream that has gone is
		 * seen before more of the sender's bytes are sent into it. */
		for (k = 1; k >= 0; k--) {
			/* Fill the ring, then write all of it out: fewer,
			 * larger reads and writes than alternating them. */
			while ((rc = fill(c, k)) > 0)
				progress = 1;
			if (rc < 0)
				return;
			while ((rc = flush(c, k)) > 0)
				progress = 1;
			if (rc < 0)
				return;
		}
		moved |= progress;
		cut = progress && c->bytes[0] + c->bytes[1] - start >= CONN_TURN;
	} while (progress && !cut);
	if (moved)
		c->last = ev_now(c->s->loop);
	if (cut) {
		/*-
		 * A sender that always has a full buffer waiting and a receiver
		 * that never pushes back would keep the loop above going for
		 * ever, and the worker's other connections would wait: measured,
		 * a 200-byte request/reply beside such a flood had a p99 of
		 * 64 ms and a max of 372 ms; with 64 KiB turns, 1.7 ms and
		 * 7.5 ms.  Bytes may wait inside wolfSSL or the read-ahead,
		 * where no socket event would report them, so the rest of the
		 * turn is a timer due at once: it runs in the next loop
		 * iteration, after the events pending now.  The watchers stay
		 * as they are until a turn ends by itself: setting them after
		 * every cut turn cost an epoll_ctl() per turn.
		 */
		ev_timer_start(c->s->loop, &c->turn);
		return;
	}

	if (c->end[0].shut && c->end[1].shut) {	/* EOF went both ways */
		conn_drop(c, CONN_DONE, SIDE_NONE, "done");
		return;
	}

	for (k = 0; k < 2; k++) {
		struct end *e = &c->end[k];
		int ev = e->hwait;

		if (e->ready && !e->eof && !ring_full(&c->ring[k]))
			ev |= e->rwait;
		if (e->ready && !e->shut && (ring_len(&c->ring[1 - k]) > 0 || c->end[1 - k].eof ||
		    (c->filter[1 - k] != NULL && ring_len(&c->filter[1 - k]->out) > 0)))
			ev |= e->wwait;
		if (e->fd >= 0) {
			watch(c, &e->rio, ev & EV_READ);
			watch(c, &e->wio, ev & EV_WRITE);
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct end *e = (w == &c->end[0].rio || w == &c->end[0].wio) ? &c->end[0] : &c->end[1];
	int ev = revents & (EV_READ | EV_WRITE);

	/* This event gives c its turn now; a pending rest of the last one is
	 * moot (conn_update() starts it again if this turn runs out too). */
	ev_timer_stop(loop, &c->turn);
	if (ev & EV_READ)
		e->drained = 0;
	if (e->rwait & ev)
		e->rwait = 0;
	if (e->wwait & ev)
		e->wwait = 0;
	if (e->hwait & ev)
		e->hwait = 0;
	if (conn_advance(c) < 0)
		return;
	conn_update(c);
}

static void turn_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_update(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	const struct tunnel *t = c->s->t;
	ev_tstamp left;

	(void)revents;
	switch (c->state) {
	case CONN_HANDSHAKING:
		if (t->role == ROLE_SERVER) {
			conn_drop(c, CONN_HANDSHAKE_TIMEOUT, SIDE_PEER, "handshake_timeout");
			break;
		}
		/* the client's connect timeout covers its handshake */
		/* FALLTHROUGH */
	case CONN_CONNECTING:
		if (conn_retry(c, CONN_CONNECT_FAILED, "connect_timeout") == 0)
			conn_update(c);
		break;
	case CONN_DRAINING:
		if (c->probe) {
			conn_drop(c, CONN_DRAIN_TIMEOUT, SIDE_UPSTREAM, "probe_timeout");
			break;
		}
		left = c->last + t->drain_timeout;
		if (c->s->stopping && c->s->deadline < left)
			left = c->s->deadline;
		left -= ev_now(loop);
		if (left > 0)
			timer_arm(c, left);
		else
			conn_drop(c, c->s->stopping ? CONN_SHUTDOWN : CONN_DRAIN_TIMEOUT, SIDE_NONE,
			    "drain_timeout");
		break;
	case CONN_RELAYING:
		break;
	}
}

static void end_open(struct conn *c, struct end *e, int fd)
{
	e->fd = fd;
	xport_tcp_attach(e);
	e->rwait = e->wwait = e->hwait = e->drained = 0;
	ev_io_init(&e->rio, io_cb, fd, EV_READ);
	ev_io_init(&e->wio, io_cb, fd, EV_WRITE);
	e->rio.data = e->wio.data = c;
}

/*-
 * The pre-authentication budget, like sshd's MaxStartups.  A server
 * connection is pending from accept until its handshake completes; while
 * pending it counts in t->hs_peers (--max-handshakes-per-ip, checked in
 * admitted(), so one address cannot hold more) and in its worker's
 * s->pending.  Each worker holds at most its share of --max-handshakes
 * (t->max_handshakes, set per worker at start-up; SO_REUSEPORT spreads
 * connections evenly), so no lock is taken, no worker touches another's
 * connections, and a worker that holds few is never made to drop a
 * newcomer for the others' flood.  Past its share the accepting worker
 * drops one pending connection to make room, chosen rather than random
 * (sshd) or the new one: first the oldest that has not sent a byte since
 * accept, else the talking one idle longest (each handshake step moves a
 * connection to the front of its list).  "Sent" is what the socket holds,
 * not what the loop has read yet: a candidate with bytes waiting is moved
 * to the talking list first, so a ClientHello that arrived during a burst
 * of accepts is not taken for silence.  A flood of bare connections thus
 * never pushes out a handshake in progress; one that sends ClientHellos
 * and stalls pushes out only handshakes slower than its own idle ones, and
 * costs it a ClientHello per connection.  The lists run from s->hs_new[k]
 * to s->hs_old[k] (k 0: silent, 1: talking).
 */

/* pending_link(c): put c at the front of its list. */
static void pending_link(struct conn *c)
{
	struct conn_set *s = c->s;
	int k = c->talking;

	c->hs_prev = NULL;
	c->hs_next = s->hs_new[k];
	if (s->hs_new[k] != NULL)
		s->hs_new[k]->hs_prev = c;
	else
		s->hs_old[k] = c;
	s->hs_new[k] = c;
}

/* pending_unlink(c): take c off its list. */
static void pending_unlink(struct conn *c)
{
	struct conn_set *s = c->s;
	int k = c->talking;

	if (c->hs_prev != NULL)
		c->hs_prev->hs_next = c->hs_next;
	else
		s->hs_new[k] = c->hs_next;
	if (c->hs_next != NULL)
		c->hs_next->hs_prev = c->hs_prev;
	else
		s->hs_old[k] = c->hs_prev;
}

/* pending_enter(c): c (just accepted, already counted in t->hs_peers) is a
 * pending handshake, silent so far: list it and count it. */
static void pending_enter(struct conn *c)
{
	c->pending = 1;
	c->talking = 0;
	pending_link(c);
	c->s->pending++;
}

/* pending_leave(c): c is authenticated or gone: give back its share of the
 * pre-authentication budget.  Does nothing if c is not pending. */
static void pending_leave(struct conn *c)
{
	struct tunnel *t = c->s->t;

	if (!c->pending)
		return;
	pending_unlink(c);
	c->pending = 0;
	c->s->pending--;
	if (t->hs_peers != NULL)
		peers_release(t->hs_peers, &c->peer_addr);
}

/* pending_touch(c): c's handshake moved: it talks, and goes to the front. */
static void pending_touch(struct conn *c)
{
	if (!c->pending || (c->talking && c->s->hs_new[1] == c))
		return;
	pending_unlink(c);
	c->talking = 1;
	pending_link(c);
}

/* pending_silent(s, c): s's oldest silent connection other than c, after
 * moving those with bytes waiting to the talking list; NULL if none. */
static struct conn *pending_silent(struct conn_set *s, struct conn *c)
{
	struct conn *old;
	char b;

	while ((old = s->hs_old[0]) != NULL && old != c) {
		if (recv(old->end[0].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
			return old;
		pending_touch(old);
	}
	return NULL;	/* c, the newest, is last only when it is alone */
}

/* pending_budget(c): c just became pending; past the worker's share of
 * --max-handshakes drop its oldest silent connection other than c, else its
 * talking one idle longest, else c.  0, or -1 if c was dropped. */
static int pending_budget(struct conn *c)
{
	struct conn_set *s = c->s;
	struct conn *old;

	if (s->t->max_handshakes <= 0 || s->pending <= s->t->max_handshakes)
		return 0;
	if ((old = pending_silent(s, c)) == NULL && (old = s->hs_old[1]) == NULL)
		old = c;
	conn_drop(old, CONN_PREAUTH_DROPPED, SIDE_PEER, "max_handshakes");
	return old == c ? -1 : 0;
}

static const char refused_msg[] = "refused before TLS";

/* admitted(t, fd, peer): the server's checks before any TLS state exists:
 * the source network, the per-address count and the per-address count of
 * pending handshakes.  0, or -1 (logged, rate-limited, counted nowhere) if
 * the socket must be closed. */
static int admitted(struct tunnel *t, const struct sock_addr *peer)
{
	char addr[SOCK_NTOP_MAX];
	const char *why = NULL;

	if (t->nets != NULL && authz_net_match(t->nets, (const struct sockaddr *)&peer->ss,
	    NULL, 0) == AUTHZ_DENIED)
		why = "net_denied";
	else if (t->peers != NULL && peers_acquire(t->peers, peer) < 0)
		why = "per_ip_limit";
	else if (t->hs_peers != NULL && peers_acquire(t->hs_peers, peer) < 0) {
		if (t->peers != NULL)
			peers_release(t->peers, peer);
		why = "per_ip_handshakes";
	}
	if (why == NULL)
		return 0;
	sock_ntop(peer, addr);
	if (log_enabled(LOG_WARN) && ratelimit_allow(LOG_WARN, refused_msg, peer, why))
		log_warn(refused_msg, "peer=%s reason=%s", addr, why);
	if (audit_enabled()) {
		struct audit_event ev = { .kind = AUDIT_DENY, .peer = addr, .reason = why };

		audit_emit(&ev);
	}
	return -1;
}

/* conn_new(s): a connection in s with no ends yet, or NULL. */
static struct conn *conn_new(struct conn_set *s)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (s->t->filters != NULL && s->t->filters(s->t, c->filter) < 0) {
		filter_free(c->filter[0]);
		filter_free(c->filter[1]);
		free(c);
		return NULL;
	}
	c->s = s;
	c->next = s->head;
	if (s->head != NULL)
		s->head->prev = c;
	s->head = c;
	s->n++;
	c->end[0].fd = c->end[1].fd = -1;
	c->start = c->last = ev_now(s->loop);
	ev_init(&c->timer, timer_cb);
	c->timer.data = c;
	ev_timer_init(&c->turn, turn_cb, 0., 0.);
	c->turn.data = c;
	c->pol = tls_policy_get(&s->t->policy);
	return c;
}

void conn_start(struct conn_set *s, int fd, const struct sock_addr *peer)
{
	struct conn *c = NULL;
	char addr[SOCK_NTOP_MAX];

	if (admitted(s->t, peer) < 0) {
		close(fd);
		atomic_fetch_sub(&s->t->active, 1);
		return;
	}
	if ((c = conn_new(s)) == NULL) {
		log_error("out of memory", "peer=%s", sock_ntop(peer, addr));
		if (s->t->peers != NULL)
			peers_release(s->t->peers, peer);
		if (s->t->hs_peers != NULL)
			peers_release(s->t->hs_peers, peer);
		close(fd);
		atomic_fetch_sub(&s->t->active, 1);
		return;
	}
	sock_ntop(peer, c->peer);
	c->peer_addr = *peer;
	sock_nodelay(fd);
	end_open(c, &c->end[0], fd);

	if (s->t->role == ROLE_SERVER) {
		c->state = CONN_HANDSHAKING;
		timer_arm(c, s->t->handshake_timeout);
		pending_enter(c);
		if (pending_budget(c) < 0 || conn_handshake(c) < 0)
			return;
	} else {
		c->end[0].ready = 1;
		if (conn_connect(c) < 0)
			return;
	}
	conn_update(c);
}

/*-
 * probe_cb: while no upstream answers, ask again.  A probe is a connection
 * without a sender: it connects (and, on the client, does the handshake,
 * resumed where it can) like any other, sends nothing, half-closes at once
 * and succeeds if the upstream ends cleanly in turn.  So on the client it
 * also proves the server's own way to Fluentd; and the upstream sees a
 * well-behaved empty connection, not a cut one.  Until one succeeds, the
 * wait between probes doubles up to PROBE_MAX.
 */
static void probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn_set *s = w->data;
	struct conn *c;

	(void)loop;
	(void)revents;
	if (s->stopping || !reach_is_down(&s->t->reach))
		return;
	if ((c = conn_new(s)) == NULL) {
		probe_after(s, PROBE_MAX);
		return;
	}
	c->probe = 1;
	snprintf(c->peer, sizeof(c->peer), "probe");
	c->end[0].ready = c->end[0].eof = 1;
	if (conn_connect(c) < 0)
		return;
	conn_update(c);
}

void conn_set_probe_now(struct conn_set *s)
{
	if (ev_is_active(&s->probe))
		probe_after(s, 0.);
	s->probe_wait = PROBE_FIRST;
}

int conn_set_init(struct conn_set *s, struct ev_loop *loop, struct tunnel *t)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->t = t;
	ev_init(&s->probe, probe_cb);
	s->probe.data = s;
	if (t->role == ROLE_CLIENT && t->resume &&
	    (s->sessions = calloc((size_t)t->nup, sizeof(*s->sessions))) == NULL)
		return -1;
	return 0;
}

void conn_set_free(struct conn_set *s)
{
	int i;

	if (s->sessions != NULL)
		for (i = 0; i < s->t->nup; i++)
			wolfSSL_SESSION_free(s->sessions[i]);
	free(s->sessions);
	s->sessions = NULL;
}

void conn_set_abandon(struct conn_set *s)
{
	/* Watchers and timers only change the loop's memory until it runs
	 * again, which it never will; no RST: the sockets are the parent's too. */
	while (s->head != NULL)
		conn_free(s->head, 0);
}

void conn_set_stop(struct conn_set *s, int force)
{
	struct conn *c, *next;

	if (!s->stopping)
		s->deadline = ev_now(s->loop) + s->t->drain_timeout;
	s->stopping = 1;
	ev_timer_stop(s->loop, &s->probe);
	for (c = s->head; c != NULL; c = next) {
		next = c->next;
		if (force || c->probe)
			conn_drop(c, CONN_SHUTDOWN, SIDE_NONE, "shutdown");
		else if (c->state == CONN_RELAYING)
			drain_arm(c);
	}
	if (s->n == 0 && s->on_empty != NULL)
		s->on_empty(s);
}
