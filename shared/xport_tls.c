/* xport_tls: the TLS transport, wolfSSL over a TCP socket; see xport.h.
 *
 * wolfSSL may want either EV_READ or EV_WRITE for any call: each operation
 * that cannot go on returns the wait wolfSSL asked for.  wolfSSL reads the
 * socket through tls_recv(), which reads ahead, so records may wait inside
 * wolfSSL or the read-ahead where no socket event reports them: the pump
 * retries a read whenever it has room, not only when the socket signals. */
#include "xport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <wolfssl/error-ssl.h>

#define TLS_RECORD_MAX 16384	/* plaintext bytes in one TLS record */
#define TLS_READAHEAD 32768	/* ciphertext bytes read from a TLS socket at once */

/* rx_wait(e): end e's socket is empty: let go of the read-ahead buffer and
 * wait for EV_READ. */
static int rx_wait(struct end *e)
{
	e->drained = 1;
	free(e->rx);
	e->rx = NULL;
	return WOLFSSL_CBIO_ERR_WANT_READ;
}

/*-
 * tls_recv(ssl, buf, sz, e): wolfSSL's receive callback for end e.  wolfSSL
 * asks for each record's 5-byte header, then for its body: two recv() calls
 * per record, and one more that fails with EAGAIN once the socket is empty.
 * Instead, read up to TLS_READAHEAD bytes at once and serve wolfSSL from
 * them.  A recv() that returned less than it was offered emptied the socket,
 * so the next one is not tried until EV_READ fires (the pump's io_cb clears
 * drained): level-triggered epoll reports whatever arrived meanwhile.  The
 * buffer lives only while the socket streams; an idle end holds none.
 */
static int tls_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct end *e = ctx;
	ssize_t n;

	(void)ssl;
	if (e->rx_len == 0) {
		if (e->drained)
			return rx_wait(e);
		if (e->rx == NULL && (e->rx = malloc(TLS_READAHEAD)) == NULL)
			return WOLFSSL_CBIO_ERR_GENERAL;
		n = recv(e->fd, e->rx, TLS_READAHEAD, 0);
		if (n == 0)
			return WOLFSSL_CBIO_ERR_CONN_CLOSE;
		if (n < 0) {
			switch (errno) {	/* as wolfSSL's own callback maps them */
			case EAGAIN:		return rx_wait(e);
			case EINTR:		return WOLFSSL_CBIO_ERR_ISR;
			case ECONNRESET:	return WOLFSSL_CBIO_ERR_CONN_RST;
			case EPIPE:
			case ECONNABORTED:	return WOLFSSL_CBIO_ERR_CONN_CLOSE;
			case ETIMEDOUT:		/* keepalive or retransmissions gave up */
				e->timed_out = 1;
				return WOLFSSL_CBIO_ERR_GENERAL;
			default:		return WOLFSSL_CBIO_ERR_GENERAL;
			}
		}
		e->drained = n < TLS_READAHEAD;
		e->rx_off = 0;
		e->rx_len = (int)n;
	}
	if (sz > e->rx_len)
		sz = e->rx_len;
	memcpy(buf, e->rx + e->rx_off, (size_t)sz);
	e->rx_off += sz;
	e->rx_len -= sz;
	return sz;
}

/* tls_fail(e, err): wolfSSL's err as a wait, or recorded as an error. */
static int tls_fail(struct end *e, int err)
{
	if (err == WOLFSSL_ERROR_WANT_READ)
		return XPORT_WANT_READ;
	if (err == WOLFSSL_ERROR_WANT_WRITE)
		return XPORT_WANT_WRITE;
	return xport_fail(e, e->timed_out ? "path_timeout" : tls_reason(e->ssl, err), err);
}

/* tls_read: only close_notify is a clean end; a FIN or reset under TLS
 * is a cut. */
static int tls_read(struct end *e, unsigned char *buf, size_t n)
{
	int rc = wolfSSL_read(e->ssl, buf, (int)n), err;

	if (rc > 0)
		return rc;
	err = wolfSSL_get_error(e->ssl, rc);
	if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
		return tls_fail(e, err);
	if (err == WOLFSSL_ERROR_ZERO_RETURN || err == ZERO_RETURN)
		return XPORT_END;	/* close_notify: a clean half-close */
	if (err == SOCKET_PEER_CLOSED_E || rc == 0) {
		e->why = "no_close_notify";	/* TCP closed or reset under TLS */
		return XPORT_CUT;
	}
	return tls_fail(e, err);
}

/* tls_write: one record per write; after a wait, wolfSSL wants the same
 * write (the same length) again. */
static int tls_write(struct end *e, const unsigned char *buf, size_t n, int more)
{
	size_t len = n;
	int rc, err;

	if (e->wlen > 0)
		len = (size_t)e->wlen;
	else if (len > TLS_RECORD_MAX)
		len = TLS_RECORD_MAX;
	rc = wolfSSL_send(e->ssl, buf, (int)len, MSG_NOSIGNAL | (more || len < n ? MSG_MORE : 0));
	if (rc > 0) {
		e->wlen = 0;
		return rc;
	}
	err = wolfSSL_get_error(e->ssl, rc);
	if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ)
		e->wlen = (int)len;
	return tls_fail(e, err);
}

/* tls_shutdown: close_notify, then the FIN: the peer's reads end either
 * way.  With nofin, close_notify alone: the FIN goes at close. */
static int tls_shutdown(struct end *e)
{
	int rc = wolfSSL_shutdown(e->ssl);

	if (rc != WOLFSSL_SUCCESS && rc != WOLFSSL_SHUTDOWN_NOT_DONE)
		return tls_fail(e, wolfSSL_get_error(e->ssl, rc));
	return e->nofin ? 0 : xport_tcp.shutdown(e);
}

/* tls_close: free the session and the read-ahead, then close the socket. */
static void tls_close(struct end *e, int abortive)
{
	if (e->ssl != NULL) {
		wolfSSL_free(e->ssl);
		e->ssl = NULL;
	}
	free(e->rx);
	e->rx = NULL;
	e->rx_len = 0;
	xport_tcp.close(e, abortive);
}

static const struct xport_ops xport_tls = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.close = tls_close,
};

void xport_tls_attach(struct end *e, WOLFSSL *ssl)
{
	e->ssl = ssl;
	e->ops = &xport_tls;
	wolfSSL_set_fd(ssl, e->fd);
	wolfSSL_SSLSetIORecv(ssl, tls_recv);
	wolfSSL_SetIOReadCtx(ssl, e);
}
