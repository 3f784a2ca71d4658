/* xport_tcp: the plain TCP transport; see xport.h. */
#include "xport.h"

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>

const char *xport_reason(int err)
{
	switch (err) {
	case ECONNREFUSED:	return "connect_refused";
	case ETIMEDOUT:		return "connect_timeout";
	case EHOSTUNREACH:
	case ENETUNREACH:	return "unreachable";
	case ECONNRESET:	return "reset";
	case EPIPE:		return "broken_pipe";
	case EMFILE:
	case ENFILE:		return "out_of_fds";
	default:		return "connect_failed";
	}
}

const char *xport_io_reason(int err)
{
	return err == ETIMEDOUT ? "path_timeout" : xport_reason(err);
}

int xport_fail(struct end *e, const char *why, int code)
{
	e->why = why;
	e->code = code;
	return XPORT_ERROR;
}

/* tcp_read: a short read emptied the socket: wait for EV_READ before the
 * next.  A reset after data still delivers the data (a cut, not an error). */
static int tcp_read(struct end *e, unsigned char *buf, size_t n)
{
	ssize_t rc;

	while ((rc = read(e->fd, buf, n)) < 0 && errno == EINTR)
		;
	if (rc > 0) {
		if ((size_t)rc < n)
			e->rwait = EV_READ;
		return (int)rc;
	}
	if (rc == 0)
		return XPORT_END;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return XPORT_WANT_READ;
	if (errno == ECONNRESET) {
		e->why = "reset";
		return XPORT_CUT;
	}
	return xport_fail(e, xport_io_reason(errno), 0);
}

/* tcp_write: a short write filled the socket buffer: wait for EV_WRITE. */
static int tcp_write(struct end *e, const unsigned char *buf, size_t n, int more)
{
	ssize_t rc;

	while ((rc = send(e->fd, buf, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0))) < 0 &&
	    errno == EINTR)
		;
	if (rc > 0) {
		if ((size_t)rc < n)
			e->wwait = EV_WRITE;
		return (int)rc;
	}
	if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return XPORT_WANT_WRITE;
	return xport_fail(e, xport_io_reason(errno), 0);
}

/* tcp_shutdown: the FIN; the peer's reads end. */
static int tcp_shutdown(struct end *e)
{
	if (shutdown(e->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return xport_fail(e, xport_io_reason(errno), 0);
	return 0;
}

/* tcp_close: an abortive close sends RST instead of FIN (SO_LINGER 0). */
static void tcp_close(struct end *e, int abortive)
{
	if (e->fd < 0)
		return;
	if (abortive) {
		struct linger lg = { 1, 0 };

		(void)setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(e->fd);
	e->fd = -1;
}

const struct xport_ops xport_tcp = {
	.name = "tcp",
	.read = tcp_read,
	.write = tcp_write,
	.shutdown = tcp_shutdown,
	.close = tcp_close,
};

void xport_tcp_attach(struct end *e)
{
	e->ops = &xport_tcp;
}
