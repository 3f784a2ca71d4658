/* handshake: the TLS handshake on a connection's TLS end and the peer's
 * verification: the checks wolfSSL 5.5.4 skips, the certificate's identity
 * (the connection's verdict, kept until it closes) and the role's rules. */
#include "conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "log.h"
#include "x509.h"
#include "xport.h"

void handshake_forget(struct conn *c)
{
	if (c->verdict != NULL) {
		x509_identity_free(c->verdict->id);
		free(c->verdict->rule);
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
 * At the leaf the role adds its rules (role.judge: the server's allow
 * rules, the client's --pin-server pins). */
static int verify_cb(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	struct conn *c = store->userCtx;
	const struct role *role = c->s->t->role;
	const unsigned char *der;
	const char *why;
	int len, err = wolfSSL_X509_STORE_CTX_get_error(store);
	int server = role->tls_end == 0;	/* the peer is a client */
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
	/* Only a pin may override wolfSSL, and only for "no known issuer". */
	return role->judge != NULL ? role->judge(c, ok, err) : ok;
}

/* tls_failure(c, e, err): remember wolfSSL's code for the log and name it. */
static const char *tls_failure(struct conn *c, struct end *e, int err)
{
	c->tls_code = err;
	return tls_reason(e->ssl, err);
}

/* handshake_start(c, e): a WOLFSSL for end e, verifying the peer as the role
 * says; the role sets what else the handshake needs. */
int handshake_start(struct conn *c, struct end *e)
{
	const struct role *role = c->s->t->role;

	if ((e->ssl = wolfSSL_new(c->pol->ctx)) == NULL)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_new");
	c->hs_start = ev_now(c->s->loop);
	xport_tls_attach(e, e->ssl);
	wolfSSL_set_verify(e->ssl, role->verify_mode, verify_cb);
	wolfSSL_SetCertCbCtx(e->ssl, c);
	if (role->tls_setup != NULL && role->tls_setup(c, e->ssl) < 0)
		return conn_drop(c, CONN_NOMEM, SIDE_NONE, "tls_name");
	return 0;
}

/* handshake_step(c): advance the TLS handshake on the TLS end. */
int handshake_step(struct conn *c)
{
	const struct tunnel *t = c->s->t;
	struct end *e = &c->end[conn_tls_end(c)];
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
		if (handshake_start(c, e) < 0)
			return -1;
	}
	if (t->role->step != NULL)
		t->role->step(c);
	rc = e == &c->end[1] ? wolfSSL_connect(e->ssl) : wolfSSL_accept(e->ssl);
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
		/* A failed upstream may be followed by the next one. */
		if (e == &c->end[1])
			return conn_retry(c, CONN_HANDSHAKE_FAILED, why);
		return conn_drop(c, CONN_HANDSHAKE_FAILED, SIDE_PEER, why);
	}
	e->ready = 1;
	if (!c->probe)
		metrics_observe(&c->s->m.handshake[wolfSSL_session_reused(e->ssl) ? 1 : 0],
		    ev_now(c->s->loop) - c->hs_start);
	if (t->role->secured != NULL)
		t->role->secured(c);
	if (e == &c->end[0])
		return conn_connect(c);
	conn_up(c);
	return 0;
}

