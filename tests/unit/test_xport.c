/* test_xport: the plain TCP transport's operations on loopback sockets:
 * what each returns for data, a blocked socket, a clean end and a reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "sock.h"
#include "xport.h"

/* pair(e, &other): e opened as TCP on one end of a loopback connection;
 * other is the far end (blocking). */
static void pair(struct end *e, int *other)
{
	struct sock_addr a;
	struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
	struct sock_addr peer;
	int lfd, fd;

	memset(&a, 0, sizeof(a));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.len = sizeof(*in);
	assert_true((lfd = sock_listen(&a, 0)) >= 0);
	a.len = sizeof(a.ss);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a.ss, &a.len), 0);
	*other = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(*other, (struct sockaddr *)&a.ss, a.len), 0);
	while ((fd = sock_accept(lfd, &peer)) < 0)
		usleep(1000);
	close(lfd);
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	xport_tcp_attach(e);
}

/* settle(): give loopback a moment to deliver. */
static void settle(void)
{
	usleep(20000);
}

static void test_tcp_read_data_want_end(void **state)
{
	unsigned char buf[64];
	struct end e;
	int other;

	(void)state;
	pair(&e, &other);
	assert_int_equal(e.ops->read(&e, buf, sizeof(buf)), XPORT_WANT_READ);
	assert_int_equal(write(other, "hello", 5), 5);
	settle();
	assert_int_equal(e.ops->read(&e, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(e.rwait, EV_READ);	/* a short read: the socket is empty */
	assert_int_equal(shutdown(other, SHUT_WR), 0);
	settle();
	assert_int_equal(e.ops->read(&e, buf, sizeof(buf)), XPORT_END);
	e.ops->close(&e, 0);
	assert_int_equal(e.fd, -1);
	close(other);
}

static void test_tcp_reset_is_a_cut(void **state)
{
	struct linger lg = { 1, 0 };
	unsigned char buf[64];
	struct end e;
	int other, rc;

	(void)state;
	pair(&e, &other);
	assert_int_equal(write(other, "ab", 2), 2);
	assert_int_equal(setsockopt(other, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	settle();
	close(other);
	settle();
	while ((rc = e.ops->read(&e, buf, sizeof(buf))) > 0)	/* the bytes before it */
		e.rwait = 0;
	assert_int_equal(rc, XPORT_CUT);
	assert_string_equal(e.why, "reset");
	e.ops->close(&e, 0);
}

static void test_tcp_write_fills_then_wants(void **state)
{
	static unsigned char big[1 << 20];
	struct end e;
	int other, rc, blocked = 0;
	size_t total = 0;

	(void)state;
	pair(&e, &other);
	while (total < (size_t)64 << 20 && !blocked) {
		rc = e.ops->write(&e, big, sizeof(big), 1);
		if (rc > 0) {
			total += (size_t)rc;
			if (e.wwait == EV_WRITE)	/* a short write: the buffer is full */
				blocked = 1;
		} else {
			assert_int_equal(rc, XPORT_WANT_WRITE);
			blocked = 1;
		}
	}
	assert_true(blocked);
	assert_true(total > 0);
	e.ops->close(&e, 0);
	close(other);
}

static void test_tcp_shutdown_and_abortive_close(void **state)
{
	char buf[8];
	struct end e;
	int other;

	(void)state;
	pair(&e, &other);
	assert_int_equal(e.ops->write(&e, (const unsigned char *)"x", 1, 0), 1);
	assert_int_equal(e.ops->shutdown(&e), 0);
	assert_int_equal(read(other, buf, sizeof(buf)), 1);
	assert_int_equal(read(other, buf, sizeof(buf)), 0);	/* the FIN */
	e.ops->close(&e, 0);

	pair(&e, &other);
	e.ops->close(&e, 1);
	settle();
	assert_int_equal(read(other, buf, sizeof(buf)), -1);	/* the RST */
	assert_int_equal(errno, ECONNRESET);
	close(other);
}

static void test_tcp_error_reason(void **state)
{
	struct end e;
	int other;

	(void)state;
	pair(&e, &other);
	close(other);
	settle();
	/* the peer is gone: the first write may pass, a later one fails */
	while (e.ops->write(&e, (const unsigned char *)"x", 1, 0) > 0)
		settle();
	assert_true(strcmp(e.why, "reset") == 0 || strcmp(e.why, "broken_pipe") == 0);
	assert_int_equal(e.code, 0);
	e.ops->close(&e, 0);
	assert_string_equal(xport_reason(EPIPE), "broken_pipe");
	assert_string_equal(xport_reason(ECONNREFUSED), "connect_refused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_read_data_want_end),
		cmocka_unit_test(test_tcp_reset_is_a_cut),
		cmocka_unit_test(test_tcp_write_fills_then_wants),
		cmocka_unit_test(test_tcp_shutdown_and_abortive_close),
		cmocka_unit_test(test_tcp_error_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
