/* test_filter: the pump's filter stage, on real connections.  One event loop
 * runs a client-role and a server-role conn_set, as the two daemons would:
 * the test's sender connects (loopback TCP) to a socket whose other end the client
 * tunnels over mutual TLS (loopback) to the server, which relays to the
 * test's upstream listener.  The server's tunnel installs a test filter on
 * the bytes its peer sends (t->filters).  The PKI is made by tlsfwd-certs,
 * found beside the unit binaries ($(B)/unit/../tlsfwd-certs); without it the
 * tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "client.h"
#include "conn.h"
#include "config.h"
#include "daemon.h"
#include "filter.h"
#include "log.h"
#include "ring.h"
#include "server.h"
#include "sock.h"
#include "tls.h"

#define SEND_LEN (200 * 1024)	/* several rings' worth: backpressure through the stage */

static char certs_bin[PATH_MAX];
static char pki[] = "/tmp/test_filter.XXXXXX";
static int pki_made;	/* pki is a directory to remove */

/* -- test filters -- */

struct test_filter {
	struct filter f;
	int trailer_sent;	/* double: the trailer went out after the EOF */
};

/* double_run: every input byte is written twice; at EOF a trailer "END" is
 * written once, so the EOF must wait for it. */
static int double_run(struct filter *f, struct ring *in, struct ring *out, int eof)
{
	struct test_filter *tf = (struct test_filter *)f;
	const unsigned char *p;
	unsigned char *q;
	size_t n, room, i;

	p = ring_rdata(in, &n);
	if (n > 0) {
		if ((q = ring_wspace(out, &room)) == NULL || room < 2)
			return FILTER_IDLE;
		if (n > room / 2)
			n = room / 2;
		for (i = 0; i < n; i++)
			q[2 * i] = q[2 * i + 1] = p[i];
		ring_commit(out, 2 * n);
		ring_consume(in, n);
		return FILTER_PROGRESS;
	}
	if (eof && !tf->trailer_sent) {
		if ((q = ring_wspace(out, &room)) == NULL || room < 3)
			return FILTER_IDLE;
		memcpy(q, "END", 3);
		ring_commit(out, 3);
		tf->trailer_sent = 1;
		return FILTER_PROGRESS;
	}
	return FILTER_IDLE;
}

/* refuse_run: passes bytes on until it sees an 'X', then fails. */
static int refuse_run(struct filter *f, struct ring *in, struct ring *out, int eof)
{
	const unsigned char *p;
	unsigned char *q;
	size_t n, room, i;

	(void)eof;
	p = ring_rdata(in, &n);
	if (n == 0)
		return FILTER_IDLE;
	for (i = 0; i < n; i++)
		if (p[i] == 'X') {
			f->why = "test_refused";
			return FILTER_ERROR;
		}
	if ((q = ring_wspace(out, &room)) == NULL)
		return FILTER_IDLE;
	if (n > room)
		n = room;
	memcpy(q, p, n);
	ring_commit(out, n);
	ring_consume(in, n);
	return FILTER_PROGRESS;
}

static void test_filter_free(struct filter *f)
{
	free(f);
}

static const struct filter_ops double_ops = { double_run, test_filter_free };
static const struct filter_ops refuse_ops = { refuse_run, test_filter_free };
static const struct filter_ops *installed;

/* make_filters: the tunnel hook: a test filter on the bytes end[0] sends. */
static int make_filters(const struct conn *c, struct filter *f[2])
{
	struct test_filter *tf = calloc(1, sizeof(*tf));

	(void)c;
	if (tf == NULL)
		return -1;
	tf->f.ops = installed;
	f[0] = &tf->f;
	return 0;
}

/* -- the harness -- */

struct side {
	struct config cfg;
	struct tunnel t;
	struct conn_set s;
	int lfd;		/* its listener: the server's, or the upstream's */
	ev_io accept;
};

struct rig {
	struct ev_loop *loop;
	struct side cli, srv, up;	/* up: only lfd/accept are used */
	int sender;		/* the test's connection to the client */
	int upfd;		/* the upstream's accepted socket */
};

static int run_certs(const char *args)
{
	char cmd[PATH_MAX * 4];

	if ((size_t)snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", certs_bin, args) >=
	    sizeof(cmd))
		return -1;
	return system(cmd);
}

static int group_setup(void **state)
{
	char args[PATH_MAX * 2];

	(void)state;
	if (certs_bin[0] == '\0' || access(certs_bin, X_OK) != 0 || mkdtemp(pki) == NULL) {
		certs_bin[0] = '\0';
		return 0;
	}
	pki_made = 1;
	snprintf(args, sizeof(args), "ca --out %s/ca", pki);
	if (run_certs(args) == 0) {
		snprintf(args, sizeof(args), "server --ca %s/ca --cn localhost --san IP:127.0.0.1 "
		    "--out %s/server", pki, pki);
		if (run_certs(args) == 0) {
			snprintf(args, sizeof(args), "client --ca %s/ca --cn edge --out %s/client",
			    pki, pki);
			if (run_certs(args) == 0)
				return 0;
		}
	}
	certs_bin[0] = '\0';
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	if (pki_made) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
		(void)system(cmd);
	}
	return 0;
}

/* rig_accept: the upstream's listener keeps the socket for the test; the
 * server's hands it to its connection set, as a worker does. */
static void rig_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rig *r = w->data;
	struct sock_addr peer;
	int fd;

	(void)loop;
	(void)revents;
	if ((fd = sock_accept(w->fd, &peer)) < 0)
		return;
	if (w == &r->up.accept) {
		r->upfd = fd;
		return;
	}
	atomic_fetch_add(&r->srv.t.active, 1);
	conn_start(&r->srv.s, fd, &peer);
}

/* listen_any(a): a listener on 127.0.0.1, port chosen by the kernel, in *a. */
static int listen_any(struct sock_addr *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
	int fd;

	memset(a, 0, sizeof(*a));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*in);
	fd = sock_listen(a, 0);
	assert_true(fd >= 0);
	a->len = sizeof(a->ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a->ss, &a->len), 0);
	return fd;
}

static void side_open(struct rig *r, struct side *sd, enum role_id role,
    const struct sock_addr *to, const char *spec)
{
	char err[512], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	const char *who = role == ROLE_CLIENT ? "client" : "server";
	char *argv[] = { (char *)who, "--ca", ca, "--cert", cert, "--key", key,
	    role == ROLE_CLIENT ? "--server" : "--upstream", (char *)spec, NULL };
	struct sock_addr listen = *to;	/* loopback, as the client wants */

	snprintf(ca, sizeof(ca), "%s/ca/ca.crt", pki);
	snprintf(cert, sizeof(cert), "%s/%s/%s.crt", pki, who, who);
	snprintf(key, sizeof(key), "%s/%s/%s.key", pki, who, who);
	sd->t.role = role == ROLE_CLIENT ? &client_role : &server_role;
	assert_int_equal(config_load(&sd->cfg, sd->t.role, who, 9, argv, err, sizeof(err)), 0);
	if (daemon_tunnel_open(&sd->t, &sd->cfg, &listen, err, sizeof(err)) < 0)
		fail_msg("daemon_tunnel_open: %s", err);
	sd->t.connect_timeout = sd->t.handshake_timeout = sd->t.drain_timeout = 5.;
	assert_int_equal(conn_set_init(&sd->s, r->loop, &sd->t), 0);
}

static void side_close(struct side *sd)
{
	conn_set_free(&sd->s);
	daemon_tunnel_close(&sd->t);
	config_free(&sd->cfg);
}

/* rig_open(r, ops): client -> server (with ops as its filter) -> upstream,
 * and one connection through them from r->sender (TCP, so that a reset
 * shows as one). */
static void rig_open(struct rig *r, const struct filter_ops *ops)
{
	struct sock_addr upa, srva, cla, peer;
	char spec[64], addr[SOCK_NTOP_MAX];
	int lfd, fd;

	memset(r, 0, sizeof(*r));
	r->upfd = -1;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	r->up.lfd = listen_any(&upa);
	r->srv.lfd = listen_any(&srva);
	snprintf(spec, sizeof(spec), "%s", sock_ntop(&upa, addr));
	side_open(r, &r->srv, ROLE_SERVER, &upa, spec);
	installed = ops;
	r->srv.t.filters = make_filters;
	snprintf(spec, sizeof(spec), "%s", sock_ntop(&srva, addr));
	side_open(r, &r->cli, ROLE_CLIENT, &srva, spec);
	ev_io_init(&r->up.accept, rig_accept, r->up.lfd, EV_READ);
	ev_io_init(&r->srv.accept, rig_accept, r->srv.lfd, EV_READ);
	r->up.accept.data = r->srv.accept.data = r;
	ev_io_start(r->loop, &r->up.accept);
	ev_io_start(r->loop, &r->srv.accept);

	lfd = listen_any(&cla);
	r->sender = sock_connect(&cla);
	assert_true(r->sender >= 0);
	while ((fd = sock_accept(lfd, &peer)) < 0)
		usleep(1000);
	close(lfd);
	atomic_fetch_add(&r->cli.t.active, 1);
	conn_start(&r->cli.s, fd, &peer);
}

static void rig_close(struct rig *r)
{
	conn_set_stop(&r->cli.s, 1);
	conn_set_stop(&r->srv.s, 1);
	ev_io_stop(r->loop, &r->up.accept);
	ev_io_stop(r->loop, &r->srv.accept);
	side_close(&r->cli);
	side_close(&r->srv);
	close(r->up.lfd);
	close(r->srv.lfd);
	if (r->upfd >= 0)
		close(r->upfd);
	close(r->sender);
	ev_loop_destroy(r->loop);
}

/* pump(r, fdp, buf, max, got, out, outlen, fin): run the daemons' loop,
 * sending out from the sender (then its FIN if fin) and reading *fdp (once
 * open) into buf.  Returns 0 at *fdp's EOF, 1 when max bytes came, or
 * -errno when reading *fdp failed; fails the test after 10 s. */
static int pump(struct rig *r, const int *fdp, unsigned char *buf, size_t max, size_t *got,
    const void *out, size_t outlen, int fin)
{
	ev_tstamp until = ev_time() + 10.;
	size_t sent = 0;
	ssize_t n = -1;

	*got = 0;
	while (ev_time() < until) {
		ev_run(r->loop, EVRUN_NOWAIT);
		while (sent < outlen && (n = send(r->sender, (const char *)out + sent,
		    outlen - sent, MSG_NOSIGNAL)) > 0)
			sent += (size_t)n;
		if (sent == outlen && fin) {
			assert_int_equal(shutdown(r->sender, SHUT_WR), 0);
			fin = 0;
		}
		while (*fdp >= 0 && *got < max && (n = read(*fdp, buf + *got, max - *got)) > 0)
			*got += (size_t)n;
		if (*got == max)
			return 1;
		if (*fdp >= 0 && n == 0)
			return 0;
		if (*fdp >= 0 && n < 0 && errno != EAGAIN)
			return -errno;
		usleep(100);
	}
	fail_msg("timed out");
	return -ETIMEDOUT;
}

/* A stage that rewrites: every byte doubled and a trailer at the end, the
 * EOF passed on only after it; the other direction is untouched, and the
 * connection ends cleanly once both have half-closed. */
static void test_filter_rewrites_and_half_closes(void **state)
{
	static unsigned char out[SEND_LEN], got[2 * SEND_LEN + 16];
	unsigned char back[16];
	struct rig r;
	size_t n, i;

	(void)state;
	if (certs_bin[0] == '\0')
		skip();
	for (i = 0; i < SEND_LEN; i++)
		out[i] = (unsigned char)(i * 7 + i / 251);
	rig_open(&r, &double_ops);
	assert_int_equal(pump(&r, &r.upfd, got, sizeof(got), &n, out, SEND_LEN, 1), 0);
	assert_int_equal(n, 2 * SEND_LEN + 3);
	for (i = 0; i < SEND_LEN; i++)
		if (got[2 * i] != out[i] || got[2 * i + 1] != out[i])
			fail_msg("byte %zu differs", i);
	assert_memory_equal(got + 2 * SEND_LEN, "END", 3);

	/* the upstream answers and half-closes in turn */
	assert_int_equal(send(r.upfd, "reply", 5, MSG_NOSIGNAL), 5);
	assert_int_equal(shutdown(r.upfd, SHUT_WR), 0);
	assert_int_equal(pump(&r, &r.sender, back, sizeof(back), &n, NULL, 0, 0), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(back, "reply", 5);
	for (i = 0; i < 100 && (r.cli.s.n > 0 || r.srv.s.n > 0); i++) {
		ev_run(r.loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(r.cli.s.n + r.srv.s.n, 0);	/* closed: done both ways */
	rig_close(&r);
}

/* A stage that fails: what it passed before arrives, then both the
 * upstream and the sender are reset; neither sees a clean end. */
static void test_filter_error_resets_both(void **state)
{
	unsigned char got[16];
	struct rig r;
	size_t n;

	(void)state;
	if (certs_bin[0] == '\0')
		skip();
	rig_open(&r, &refuse_ops);
	assert_int_equal(pump(&r, &r.upfd, got, 3, &n, "abc", 3, 0), 1);
	assert_memory_equal(got, "abc", 3);
	assert_int_equal(pump(&r, &r.upfd, got, sizeof(got), &n, "dX", 2, 0), -ECONNRESET);
	assert_int_equal(pump(&r, &r.sender, got, sizeof(got), &n, NULL, 0, 0), -ECONNRESET);
	assert_int_equal(r.cli.s.n + r.srv.s.n, 0);
	rig_close(&r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_rewrites_and_half_closes),
		cmocka_unit_test(test_filter_error_resets_both),
	};
	const char *slash = strrchr(argv[0], '/');

	(void)argc;
	if (slash != NULL)
		snprintf(certs_bin, sizeof(certs_bin), "%.*s/../tlsfwd-certs",
		    (int)(slash - argv[0]), argv[0]);
	log_setup("test_filter", LOG_ERROR, LOG_LOGFMT);
	if (tls_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
