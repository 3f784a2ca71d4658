/* test_notify: shared/notify.{h,c} -- the sd_notify datagram protocol
 * against a socket the test binds (a path and an abstract name), the
 * environment read and removed, WATCHDOG_USEC and WATCHDOG_PID, and what
 * happens without a usable NOTIFY_SOCKET. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

/* bound(name, abstract): a datagram socket bound to name (abstract: in the
 * abstract namespace); the NOTIFY_SOCKET value for it in env. */
static int bound(const char *name, int abstract, char *env, size_t envsz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* + 1: the leading NUL of an abstract name, or a path's terminating one */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	if (abstract) {
		memcpy(sa.sun_path + 1, name, strlen(name));
		snprintf(env, envsz, "@%s", name);
	} else {
		memcpy(sa.sun_path, name, strlen(name));
		snprintf(env, envsz, "%s", name);
		unlink(name);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

/* next(fd, buf): the next datagram as a string ("" if none within a second). */
static const char *next(int fd, char *buf, size_t n)
{
	struct timeval tv = { 1, 0 };
	ssize_t k;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	k = recv(fd, buf, n - 1, 0);
	buf[k > 0 ? k : 0] = '\0';
	return buf;
}

static void roundtrip(int abstract)
{
	char name[64], env[80], buf[256];
	unsigned long long usec;
	int fd;

	snprintf(name, sizeof(name), "/tmp/tlsfwd-test-notify-%d", (int)getpid());
	fd = bound(name, abstract, env, sizeof(env));
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "3000000", 1);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_init(), 0);
	assert_null(getenv("NOTIFY_SOCKET"));	/* nothing started later inherits them */
	assert_null(getenv("WATCHDOG_USEC"));
	assert_true(notify_watchdog() > 2.999 && notify_watchdog() < 3.001);
	assert_int_equal(notify_send("READY=1\nSTATUS=up"), 0);
	assert_string_equal(next(fd, buf, sizeof(buf)), "READY=1\nSTATUS=up");
	assert_int_equal(notify_reloading(), 0);
	next(fd, buf, sizeof(buf));
	assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
	assert_true(usec > 0);
	notify_close();
	assert_int_equal(notify_send("WATCHDOG=1"), -1);
	assert_true(notify_watchdog() == 0.);
	close(fd);
	if (!abstract)
		unlink(name);
}

static void test_path(void **state)
{
	(void)state;
	roundtrip(0);
}

static void test_abstract(void **state)
{
	(void)state;
	roundtrip(1);
}

/* WATCHDOG_PID names another process: no watchdog for us; ours: one. */
static void test_watchdog_pid(void **state)
{
	char name[64], env[80], pid[32];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "tlsfwd-test-notify-pid-%d", (int)getpid());
	fd = bound(name, 1, env, sizeof(env));
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(notify_init(), 0);
	assert_true(notify_watchdog() == 0.);
	notify_close();
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_init(), 0);
	assert_true(notify_watchdog() == 1.);
	assert_null(getenv("WATCHDOG_PID"));
	notify_close();
	close(fd);
}

/* No socket, a relative path, nobody listening: nothing is sent, no crash. */
static void test_unusable(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_init(), 0);
	assert_int_equal(notify_send("READY=1"), -1);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	assert_int_equal(notify_init(), -1);
	assert_true(notify_watchdog() == 0.);
	assert_null(getenv("NOTIFY_SOCKET"));
	setenv("NOTIFY_SOCKET", "/nonexistent/tlsfwd/notify", 1);
	assert_int_equal(notify_init(), -1);
	assert_int_equal(notify_send("READY=1"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_abstract),
		cmocka_unit_test(test_watchdog_pid),
		cmocka_unit_test(test_unusable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
