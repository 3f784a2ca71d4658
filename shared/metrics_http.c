/* metrics_http: --metrics-listen, served by libmicrohttpd on a thread of its
 * own (epoll, so a descriptor past FD_SETSIZE is no problem): GET /metrics
 * (metrics_render()), /healthz, /readyz (metrics_ready()).  It reads what
 * the workers count and never touches a connection.  Linked into the two
 * daemons only: the Makefile leaves this file out of the preload shim. */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"

#define HTTP_CONNS 16		/* scrapers at once */
#define HTTP_TIMEOUT 10		/* seconds an idle scrape connection lives */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
    char *body, size_t len, int owned)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
	    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	return reply(conn, status, "text/plain; charset=utf-8", (char *)msg, strlen(msg), 0);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload, size_t *upload_size,
    void **state)
{
	struct tunnel *t = cls;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (strcmp(url, "/metrics") == 0) {
		struct metrics_buf b = { 0 };

		metrics_render(&b, t);
		if (b.failed) {
			free(b.p);
			return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		}
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p,
		    b.len, 1);
	}
	if (strcmp(url, "/healthz") == 0)
		return text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0) {
		char why[128], line[160];
		int ok = metrics_ready(t, why, sizeof(why));

		snprintf(line, sizeof(line), "%s\n", ok ? "ok" : why);
		return text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, line);
	}
	return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void *http_start(struct tunnel *t, int fd, char *err, size_t errsz)
{
	struct MHD_Daemon *d;
	sigset_t all, old;

	/* Its thread takes no signal: they belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, handle, t,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT,
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (d == NULL) {
		close(fd);
		snprintf(err, errsz, "cannot start the HTTP server (libmicrohttpd)");
	}
	return d;
}

static void http_stop(void *h)
{
	MHD_stop_daemon(h);	/* closes the listening socket too */
}

const struct daemon_http metrics_http = { .start = http_start, .stop = http_stop };
