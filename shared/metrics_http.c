/* metrics_http: --metrics-listen, served by libmicrohttpd on a thread of its
 * own (epoll, so a descriptor past FD_SETSIZE is no problem): GET /metrics
 * (metrics_render()), /healthz, /readyz (metrics_ready()).  It reads what
 * the workers count and never touches a connection.  Linked into the two
 * daemons only: the Makefile leaves this file out of the preload shim.
 *
 * libmicrohttpd is loaded with dlopen() when --metrics-listen is given, not
 * linked: Debian's brings GnuTLS, p11-kit and six more libraries, whose
 * load and constructors cost every daemon ~3 MB of RSS (measured: 4.3 MB
 * idle against 7.3 MB linked) for nothing when metrics are off. */
#include "daemon.h"

#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "thread.h"

#define HTTP_CONNS 16		/* scrapers at once */
#define HTTP_TIMEOUT 10		/* seconds an idle scrape connection lives */
#define MHD_LIBRARY "libmicrohttpd.so.12"	/* Debian 12's libmicrohttpd12 */

/* The few libmicrohttpd calls used, from dlopen(). */
static struct mhd_fns {
	void *lib;
	struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
	    MHD_AcceptPolicyCallback apc, void *apc_cls, MHD_AccessHandlerCallback dh,
	    void *dh_cls, ...);
	void (*stop_daemon)(struct MHD_Daemon *d);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
	    enum MHD_ResponseMemoryMode mode);
	enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header,
	    const char *content);
	enum MHD_Result (*queue_response)(struct MHD_Connection *conn, unsigned int status,
	    struct MHD_Response *r);
	void (*destroy_response)(struct MHD_Response *r);
} mhd;

/* mhd_load(err, errsz): load libmicrohttpd.  0, or -1 with err. */
static int mhd_load(char *err, size_t errsz)
{
	static const struct { const char *name; size_t off; } fns[] = {
		{ "MHD_start_daemon", offsetof(struct mhd_fns, start_daemon) },
		{ "MHD_stop_daemon", offsetof(struct mhd_fns, stop_daemon) },
		{ "MHD_create_response_from_buffer",
		  offsetof(struct mhd_fns, create_response_from_buffer) },
		{ "MHD_add_response_header", offsetof(struct mhd_fns, add_response_header) },
		{ "MHD_queue_response", offsetof(struct mhd_fns, queue_response) },
		{ "MHD_destroy_response", offsetof(struct mhd_fns, destroy_response) },
	};
	size_t i;

	if ((mhd.lib = dlopen(MHD_LIBRARY, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errsz, "cannot load %s (Debian: libmicrohttpd12): %s", MHD_LIBRARY,
		    dlerror());
		return -1;
	}
	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		void *f = dlsym(mhd.lib, fns[i].name);

		if (f == NULL) {
			snprintf(err, errsz, "%s: no %s", MHD_LIBRARY, fns[i].name);
			dlclose(mhd.lib);
			mhd.lib = NULL;
			return -1;
		}
		memcpy((char *)&mhd + fns[i].off, &f, sizeof(f));
	}
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
    char *body, size_t len, int owned)
{
	struct MHD_Response *r = mhd.create_response_from_buffer(len, body,
	    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (r == NULL) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = mhd.queue_response(conn, status, r);
	mhd.destroy_response(r);
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
	sigset_t old;

	if (mhd.lib == NULL) {
		snprintf(err, errsz, "libmicrohttpd is not loaded");
		close(fd);
		return NULL;
	}
	/* Its thread takes no signal: they belong to the main thread. */
	thread_signals_block(&old);
	d = mhd.start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, handle, t,
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
	mhd.stop_daemon(h);	/* closes the listening socket too */
}

const struct daemon_http metrics_http = { .load = mhd_load, .start = http_start,
	.stop = http_stop };
