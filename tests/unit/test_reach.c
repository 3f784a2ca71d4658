/* Unit tests for reach: listeners shut while the upstream is lost, opened
 * again at the same address when it is found, backlog reset, not accepted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "log.h"
#include "reach.h"
#include "sock.h"

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	(*(int *)a->data)++;
}

/* try_connect(port): 0 if a blocking connect to 127.0.0.1:port succeeded
 * (the socket is returned in *fd), else errno. */
static int try_connect(int port, int *fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;

		close(s);
		return e;
	}
	*fd = s;
	return 0;
}

/* loopback(port): 127.0.0.1:port as a sock_addr (port 0: the kernel chooses). */
static struct sock_addr loopback(int port)
{
	struct sock_addr a = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int port_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* One listener on a kernel-chosen port (which shutting releases) and one on
 * an explicit port: both refuse while down, reset their backlog, and come
 * back at the same port. */
static void test_lost_and_found(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sock_addr any;
	struct reach r;
	ev_async wake;
	int woken = 0, l0, l1, p0, p1, c, c2, got;
	char b;

	(void)state;
	any = loopback(0);
	l0 = sock_listen(&any, 0);
	assert_true(l0 >= 0);
	p0 = port_of(l0);
	{
		struct sock_addr a;
		int tmp = sock_listen(&any, 0);

		p1 = port_of(tmp);
		close(tmp);
		a = loopback(p1);
		l1 = sock_listen(&a, 1);
		assert_true(l1 >= 0);
	}
	ev_async_init(&wake, async_cb);
	wake.data = &woken;
	ev_async_start(loop, &wake);
	reach_init(&r, 1, "lost", "found");
	assert_int_equal(reach_add(&r, l0, loop, &wake), 0);
	assert_int_equal(reach_add(&r, l1, loop, &wake), 0);
	assert_false(reach_is_down(&r));

	/* a connection waiting in the backlog when the upstream goes */
	assert_int_equal(try_connect(p0, &c), 0);
	assert_int_equal(reach_lost(&r, "up", "test"), 1);
	assert_int_equal(reach_lost(&r, "up", "again"), 0);	/* once */
	assert_true(reach_is_down(&r));
	got = (int)recv(c, &b, 1, 0);
	assert_int_equal(got, -1);
	assert_int_equal(errno, ECONNRESET);
	close(c);
	assert_int_equal(try_connect(p0, &c), ECONNREFUSED);
	assert_int_equal(try_connect(p1, &c), ECONNREFUSED);
	ev_run(loop, EVRUN_NOWAIT);
	assert_true(woken >= 1);

	reach_found(&r, "up");
	assert_false(reach_is_down(&r));
	assert_int_equal(port_of(l0), p0);
	assert_int_equal(port_of(l1), p1);
	assert_int_equal(try_connect(p0, &c), 0);
	assert_int_equal(try_connect(p1, &c2), 0);
	close(c);
	close(c2);

	reach_remove(&r, l0);
	reach_remove(&r, l1);
	close(l0);
	close(l1);
	reach_destroy(&r);
	ev_async_stop(loop, &wake);
	ev_loop_destroy(loop);
}

/* --accept-while-unreachable: nothing is ever shut. */
static void test_not_following(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sock_addr any;
	struct reach r;
	ev_async wake;
	int woken = 0, l, c;

	(void)state;
	any = loopback(0);
	l = sock_listen(&any, 0);
	ev_async_init(&wake, async_cb);
	wake.data = &woken;
	reach_init(&r, 0, "lost", "found");
	assert_int_equal(reach_add(&r, l, loop, &wake), 0);
	assert_int_equal(reach_lost(&r, "up", "test"), 0);
	assert_false(reach_is_down(&r));
	assert_int_equal(try_connect(port_of(l), &c), 0);
	close(c);
	reach_remove(&r, l);
	close(l);
	reach_destroy(&r);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost_and_found),
		cmocka_unit_test(test_not_following),
	};

	log_setup("test_reach", LOG_ERROR, LOG_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
