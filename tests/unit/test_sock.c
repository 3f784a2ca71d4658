/* test_sock: the address helpers of shared/sock.{h,c} (split, literal check,
 * numeric resolve, printing, loopback test) and one non-blocking
 * listen/connect/accept round trip on 127.0.0.1.  No DNS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"

/* split_ok(spec, host, port): sock_split accepts spec with these parts. */
static void split_ok(const char *spec, const char *host, const char *port)
{
	char h[256], p[8];
	const char *why = NULL;

	if (sock_split(spec, h, sizeof(h), p, sizeof(p), &why) != 0)
		fail_msg("sock_split(\"%s\") failed: %s", spec, why);
	assert_string_equal(h, host);
	assert_string_equal(p, port);
}

/* split_bad(spec, reason): sock_split refuses spec and says why. */
static void split_bad(const char *spec, const char *reason)
{
	char h[256], p[8];
	const char *why = NULL;

	if (sock_split(spec, h, sizeof(h), p, sizeof(p), &why) != -1)
		fail_msg("sock_split(\"%s\") accepted it: host \"%s\" port \"%s\"", spec, h, p);
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_split_accepts(void **state)
{
	(void)state;
	split_ok("127.0.0.1:24224", "127.0.0.1", "24224");
	split_ok("fluentd.example.com:443", "fluentd.example.com", "443");
	split_ok("localhost:1", "localhost", "1");
	split_ok("h:65535", "h", "65535");
	split_ok("[::1]:24284", "::1", "24284");
	split_ok("[2001:db8::17]:8080", "2001:db8::17", "8080");
	split_ok("[::ffff:10.0.0.1]:5", "::ffff:10.0.0.1", "5");
	split_ok("[fe80::1%eth0]:9", "fe80::1%eth0", "9");
}

static void test_split_refuses(void **state)
{
	const char *port = "port must be a number from 1 to 65535";

	(void)state;
	split_bad("", "expected host:port");
	split_bad("localhost", "expected host:port");
	split_bad("127.0.0.1", "expected host:port");
	split_bad("::1:80", "an IPv6 address must be written [address]:port");
	split_bad("2001:db8::1", "an IPv6 address must be written [address]:port");
	split_bad("[::1", "missing ']' after IPv6 address");
	split_bad("[::1:80", "missing ']' after IPv6 address");
	split_bad("[::1]", "expected [address]:port");
	split_bad("[::1]80", "expected [address]:port");
	split_bad("[::1]x:80", "expected [address]:port");
	split_bad(":80", "empty host");
	split_bad("[]:80", "empty host");
	split_bad("h:", port);
	split_bad("[::1]:", port);
	split_bad("h:0", port);
	split_bad("h:65536", port);
	split_bad("h:-1", port);
	split_bad("h:http", port);
	split_bad("h:80x", port);
	split_bad("h:8 0", port);
	split_bad("h:99999999999999999999999", port);
	split_bad("[::1]:80:81", port);
}

static void test_split_respects_buffer_sizes(void **state)
{
	char h[4], p[3], big[300];
	const char *why = NULL;

	(void)state;
	/* The host needs hlen + 1 bytes; the port strlen + 1. */
	assert_int_equal(sock_split("abc:80", h, sizeof(h), p, sizeof(p), &why), 0);
	assert_string_equal(h, "abc");
	assert_string_equal(p, "80");
	assert_int_equal(sock_split("abcd:80", h, sizeof(h), p, sizeof(p), &why), -1);
	assert_string_equal(why, "host name too long");
	why = NULL;
	assert_int_equal(sock_split("[::12]:80", h, sizeof(h), p, sizeof(p), &why), -1);
	assert_string_equal(why, "host name too long");
	why = NULL;
	assert_int_equal(sock_split("abc:443", h, sizeof(h), p, sizeof(p), &why), -1);
	assert_string_equal(why, "port too long");

	/* sock_resolve's own buffers: a 300-byte host name is refused, not overrun. */
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 4, ":80", 4);
	why = NULL;
	{
		struct sock_addr a;

		assert_int_equal(sock_resolve(big, &a, 1, &why), -1);
		assert_string_equal(why, "host name too long");
	}
}

static void test_is_ip(void **state)
{
	(void)state;
	assert_true(sock_is_ip("127.0.0.1"));
	assert_true(sock_is_ip("0.0.0.0"));
	assert_true(sock_is_ip("255.255.255.255"));
	assert_true(sock_is_ip("::1"));
	assert_true(sock_is_ip("::"));
	assert_true(sock_is_ip("2001:db8::17"));
	assert_true(sock_is_ip("::ffff:192.0.2.1"));
	assert_false(sock_is_ip(""));
	assert_false(sock_is_ip("localhost"));
	assert_false(sock_is_ip("example.com"));
	assert_false(sock_is_ip("1.2.3"));
	assert_false(sock_is_ip("256.1.1.1"));
	assert_false(sock_is_ip("1.2.3.4 "));
	assert_false(sock_is_ip("[::1]"));
	assert_false(sock_is_ip("::1:80:"));
}

static void test_resolve_ipv4_literal(void **state)
{
	struct sock_addr a[4];
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a[0].ss;
	const char *why = NULL;

	(void)state;
	memset(a, 0, sizeof(a));
	assert_int_equal(sock_resolve("192.0.2.7:24224", a, 4, &why), 1);
	assert_int_equal(a[0].ss.ss_family, AF_INET);
	assert_int_equal(a[0].len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(s4->sin_port), 24224);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xc0000207u);
}

static void test_resolve_ipv6_literal(void **state)
{
	static const unsigned char want[16] = {
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17
	};
	struct sock_addr a[2];
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a[0].ss;
	const char *why = NULL;

	(void)state;
	memset(a, 0, sizeof(a));
	assert_int_equal(sock_resolve("[2001:db8::17]:443", a, 2, &why), 1);
	assert_int_equal(a[0].ss.ss_family, AF_INET6);
	assert_int_equal(a[0].len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(s6->sin6_port), 443);
	assert_memory_equal(&s6->sin6_addr, want, 16);
}

static void test_resolve_refuses(void **state)
{
	struct sock_addr a[2];
	const char *why;

	(void)state;
	why = NULL;
	assert_int_equal(sock_resolve("127.0.0.1", a, 2, &why), -1);
	assert_string_equal(why, "expected host:port");
	why = NULL;
	assert_int_equal(sock_resolve("127.0.0.1:0", a, 2, &why), -1);
	assert_string_equal(why, "port must be a number from 1 to 65535");
	why = NULL;
	assert_int_equal(sock_resolve("::1:80", a, 2, &why), -1);
	assert_string_equal(why, "an IPv6 address must be written [address]:port");
	/* max 0 leaves no room for any address. */
	why = NULL;
	assert_int_equal(sock_resolve("127.0.0.1:80", a, 0, &why), -1);
	assert_non_null(why);
}

static struct sock_addr v4(const char *ip, unsigned port)
{
	struct sock_addr a;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;

	memset(&a, 0, sizeof(a));
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	a.len = sizeof(*s4);
	return a;
}

static struct sock_addr v6(const char *ip, unsigned port)
{
	struct sock_addr a;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;

	memset(&a, 0, sizeof(a));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	a.len = sizeof(*s6);
	return a;
}

static void test_ntop(void **state)
{
	char buf[SOCK_NTOP_MAX];
	struct sock_addr a;

	(void)state;
	a = v4("1.2.3.4", 5);
	assert_ptr_equal(sock_ntop(&a, buf), buf);
	assert_string_equal(buf, "1.2.3.4:5");
	a = v4("255.255.255.255", 65535);
	assert_string_equal(sock_ntop(&a, buf), "255.255.255.255:65535");
	a = v6("::1", 5);
	assert_string_equal(sock_ntop(&a, buf), "[::1]:5");
	a = v6("2001:db8::17", 24284);
	assert_string_equal(sock_ntop(&a, buf), "[2001:db8::17]:24284");
	a = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	assert_string_equal(sock_ntop(&a, buf),
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	a = v6("::ffff:255.255.255.255", 65535);
	assert_string_equal(sock_ntop(&a, buf), "[::ffff:255.255.255.255]:65535");
	memset(&a, 0, sizeof(a));
	a.ss.ss_family = AF_UNIX;
	assert_string_equal(sock_ntop(&a, buf), "?");
}

static void test_ntop_of_resolved(void **state)
{
	struct sock_addr a;
	char buf[SOCK_NTOP_MAX];
	const char *why = NULL;

	(void)state;
	assert_int_equal(sock_resolve("[::1]:24224", &a, 1, &why), 1);
	assert_string_equal(sock_ntop(&a, buf), "[::1]:24224");
	assert_int_equal(sock_resolve("10.1.2.3:7", &a, 1, &why), 1);
	assert_string_equal(sock_ntop(&a, buf), "10.1.2.3:7");
}

static void test_is_loopback(void **state)
{
	struct sock_addr a;

	(void)state;
	a = v4("127.0.0.1", 1);
	assert_true(sock_is_loopback(&a));
	a = v4("127.0.0.0", 1);
	assert_true(sock_is_loopback(&a));
	a = v4("127.255.255.254", 1);
	assert_true(sock_is_loopback(&a));
	a = v4("126.255.255.255", 1);
	assert_false(sock_is_loopback(&a));
	a = v4("128.0.0.1", 1);
	assert_false(sock_is_loopback(&a));
	a = v4("0.0.0.0", 1);
	assert_false(sock_is_loopback(&a));
	a = v4("10.0.0.1", 1);
	assert_false(sock_is_loopback(&a));
	a = v4("1.0.0.127", 1);
	assert_false(sock_is_loopback(&a));
	a = v6("::1", 1);
	assert_true(sock_is_loopback(&a));
	a = v6("::", 1);
	assert_false(sock_is_loopback(&a));
	a = v6("::2", 1);
	assert_false(sock_is_loopback(&a));
	a = v6("fe80::1", 1);
	assert_false(sock_is_loopback(&a));
	a = v6("1::", 1);
	assert_false(sock_is_loopback(&a));
	memset(&a, 0, sizeof(a));
	assert_false(sock_is_loopback(&a));
}

/* wait_for(fd, events): poll fd for up to 5 s; the returned revents. */
static short wait_for(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	assert_int_equal(poll(&p, 1, 5000), 1);
	return p.revents;
}

static void assert_nonblocking_cloexec(int fd)
{
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* listen_any(addr): listen on 127.0.0.1 port 0; addr is set to where. */
static int listen_any(struct sock_addr *addr)
{
	struct sock_addr a = v4("127.0.0.1", 0);
	int lfd;

	lfd = sock_listen(&a, 0);
	assert_true(lfd >= 0);
	addr->len = sizeof(addr->ss);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr->ss, &addr->len), 0);
	return lfd;
}

static void test_loopback_round_trip(void **state)
{
	struct sock_addr where, peer, local;
	int lfd, cfd, afd, one = 0;
	socklen_t olen = sizeof(one);
	char buf[16], lbuf[SOCK_NTOP_MAX], pbuf[SOCK_NTOP_MAX];

	(void)state;
	lfd = listen_any(&where);
	assert_int_not_equal(ntohs(((struct sockaddr_in *)&where.ss)->sin_port), 0);
	assert_nonblocking_cloexec(lfd);

	/* Nothing is pending yet: a non-blocking accept says so. */
	errno = 0;
	assert_int_equal(sock_accept(lfd, &peer), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

	cfd = sock_connect(&where);
	assert_true(cfd >= 0);
	assert_nonblocking_cloexec(cfd);
	assert_int_equal(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, &olen), 0);
	assert_true(one);
	assert_true(wait_for(cfd, POLLOUT) & POLLOUT);
	assert_int_equal(sock_error(cfd), 0);

	assert_true(wait_for(lfd, POLLIN) & POLLIN);
	afd = sock_accept(lfd, &peer);
	assert_true(afd >= 0);
	assert_nonblocking_cloexec(afd);
	assert_true(sock_is_loopback(&peer));
	assert_int_equal(peer.len, sizeof(struct sockaddr_in));
	local.len = sizeof(local.ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&local.ss, &local.len), 0);
	assert_string_equal(sock_ntop(&peer, pbuf), sock_ntop(&local, lbuf));

	assert_int_equal(write(cfd, "ping", 4), 4);
	assert_true(wait_for(afd, POLLIN) & POLLIN);
	assert_int_equal(read(afd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(afd, "pong", 4), 4);
	assert_true(wait_for(cfd, POLLIN) & POLLIN);
	assert_int_equal(read(cfd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);

	close(afd);
	close(cfd);
	close(lfd);
}

static void test_connect_refused_shows_in_sock_error(void **state)
{
	struct sock_addr where;
	int fd;

	(void)state;
	/* A port that was just free: listen, note it, close. */
	close(listen_any(&where));
	fd = sock_connect(&where);
	if (fd < 0) {
		assert_int_equal(errno, ECONNREFUSED);
		return;
	}
	wait_for(fd, POLLOUT);
	assert_int_equal(sock_error(fd), ECONNREFUSED);
	close(fd);
}

static void test_sock_error_on_non_socket(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(sock_error(p[0]), ENOTSOCK);
	close(p[0]);
	close(p[1]);
	assert_int_equal(sock_error(p[0]), EBADF);
}

static void test_listen_reuseport(void **state)
{
	struct sock_addr where;
	int a, b, c;

	(void)state;
	/* Without SO_REUSEPORT the second bind of a port fails... */
	a = listen_any(&where);
	errno = 0;
	assert_int_equal(sock_listen(&where, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	close(a);

	/* ...with it, every listener that asks shares the port. */
	a = sock_listen(&where, 1);
	assert_true(a >= 0);
	b = sock_listen(&where, 1);
	assert_true(b >= 0);
	errno = 0;
	c = sock_listen(&where, 0);
	assert_int_equal(c, -1);
	assert_int_equal(errno, EADDRINUSE);
	close(a);
	close(b);
}

static void test_ipv6_loopback_round_trip(void **state)
{
	struct sock_addr a = v6("::1", 0), where, peer;
	int lfd, cfd, afd;

	(void)state;
	if ((lfd = sock_listen(&a, 0)) < 0) {
		if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)
			skip();
		fail_msg("sock_listen([::1]:0): %s", strerror(errno));
	}
	where.len = sizeof(where.ss);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&where.ss, &where.len), 0);
	cfd = sock_connect(&where);
	assert_true(cfd >= 0);
	assert_true(wait_for(cfd, POLLOUT) & POLLOUT);
	assert_int_equal(sock_error(cfd), 0);
	assert_true(wait_for(lfd, POLLIN) & POLLIN);
	afd = sock_accept(lfd, &peer);
	assert_true(afd >= 0);
	assert_int_equal(peer.ss.ss_family, AF_INET6);
	assert_true(sock_is_loopback(&peer));
	close(afd);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_accepts),
		cmocka_unit_test(test_split_refuses),
		cmocka_unit_test(test_split_respects_buffer_sizes),
		cmocka_unit_test(test_is_ip),
		cmocka_unit_test(test_resolve_ipv4_literal),
		cmocka_unit_test(test_resolve_ipv6_literal),
		cmocka_unit_test(test_resolve_refuses),
		cmocka_unit_test(test_ntop),
		cmocka_unit_test(test_ntop_of_resolved),
		cmocka_unit_test(test_is_loopback),
		cmocka_unit_test(test_loopback_round_trip),
		cmocka_unit_test(test_connect_refused_shows_in_sock_error),
		cmocka_unit_test(test_sock_error_on_non_socket),
		cmocka_unit_test(test_listen_reuseport),
		cmocka_unit_test(test_ipv6_loopback_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
