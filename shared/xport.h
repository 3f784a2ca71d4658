/* xport: the transport seam.  Each end of a connection is driven through a
 * table of operations (read, write, shut down, close), one table per
 * transport: plain TCP (xport_tcp.c) and TLS over TCP (xport_tls.c).  The
 * pump in conn.c calls only these; a new transport (a stream inside a
 * multiplexed link, a CONNECT hop before TLS) is one more table.
 *
 * Every operation is non-blocking.  read and write return the bytes moved
 * (> 0) or one of the XPORT_* codes below; shutdown returns 0 once done.  On
 * XPORT_ERROR the end holds why (a short reason for the log) and code
 * (wolfSSL's error, 0 if none); on XPORT_CUT, why says what kind of cut.  An
 * operation that can tell, while it moves bytes, that the socket is now empty
 * or full may also set rwait or wwait, sparing the pump a call that would
 * only block. */
#ifndef TLSFWD_XPORT_H
#define TLSFWD_XPORT_H

#include <stddef.h>
#include <ev.h>

#include "tls.h"

enum {
	XPORT_WANT_READ = -1,	/* blocked until the socket is readable */
	XPORT_WANT_WRITE = -2,	/* blocked until the socket is writable */
	XPORT_END = -3,		/* read: a clean end of stream (FIN; close_notify on TLS) */
	XPORT_CUT = -4,		/* read: reset, or FIN without close_notify on TLS */
	XPORT_ERROR = -5,	/* see why and code */
};

struct end;

struct xport_ops {
	const char *name;
	/* read(e, buf, n): up to n bytes into buf. */
	int (*read)(struct end *e, unsigned char *buf, size_t n);
	/* write(e, buf, n, more): write from the n bytes at buf (maybe fewer);
	 * more: bytes beyond these follow at once (MSG_MORE).  After a
	 * XPORT_WANT_*, the next call must offer the same bytes again. */
	int (*write)(struct end *e, const unsigned char *buf, size_t n, int more);
	/* shutdown(e): pass a clean end on (close_notify on TLS, then FIN). */
	int (*shutdown)(struct end *e);
	/* close(e, abortive): free the transport's state and close the
	 * socket, with RST if abortive.  The end may be opened again. */
	void (*close)(struct end *e, int abortive);
};

/* One end of a connection: its socket, its transport and what it waits for. */
struct end {
	int fd;			/* -1 when not open */
	const struct xport_ops *ops;	/* NULL until opened */
	WOLFSSL *ssl;		/* NULL: plaintext (or TLS not started yet) */
	ev_io rio, wio;
	unsigned char rwait;	/* the last read blocked: EV_READ/EV_WRITE it waits for */
	unsigned char wwait;	/* the same for write and TLS shutdown */
	unsigned char hwait;	/* the same for connect and handshake */
	unsigned char ready;	/* connected, handshake done: bytes may flow */
	unsigned char eof;	/* no more bytes will be read from this end */
	unsigned char truncated;	/* eof without close_notify, or reset */
	unsigned char shut;	/* EOF has been passed on to this end */
	unsigned char drained;	/* TLS: the last recv() emptied the socket */
	unsigned char timed_out;	/* TLS: recv() failed with ETIMEDOUT */
	unsigned char nofin;	/* TLS: shutdown is close_notify alone, no FIN (an HTTP
				 * proxy's tunnel ends both ways at a FIN) */
	const char *why;	/* the last XPORT_ERROR or XPORT_CUT: what it was */
	int code;		/* the last XPORT_ERROR: wolfSSL's code, or 0 */
	int wlen;		/* TLS: length of a write that must be retried */
	unsigned char *rx;	/* TLS: ciphertext read ahead, NULL while none */
	int rx_off, rx_len;	/* its unread bytes: rx[rx_off .. rx_off + rx_len) */
};

/** xport_tcp: plain TCP on e->fd. */
extern const struct xport_ops xport_tcp;

/** xport_tcp_attach(e): drive e (fd open) as plain TCP. */
void xport_tcp_attach(struct end *e);

/** xport_tls_attach(e, ssl): drive e as TLS through ssl (made for e->fd,
 *  handshake not yet done), with wolfSSL reading through our read-ahead;
 *  e owns ssl from now on. */
void xport_tls_attach(struct end *e, WOLFSSL *ssl);

/** xport_reason(err): a short name for the socket error err, for the log. */
const char *xport_reason(int err);

/** xport_io_reason(err): the same for a read or write on a connected
 *  socket, where ETIMEDOUT means the path died (keepalive or
 *  retransmissions gave up): "path_timeout". */
const char *xport_io_reason(int err);

/** xport_fail(e, why, code): record an error on e; returns XPORT_ERROR. */
int xport_fail(struct end *e, const char *why, int code);

#endif
