/* notify: the sd_notify(3) datagram protocol, written out; see notify.h.
 *
 *- Not libsystemd: the protocol is a documented, stable handful of lines
 *  (a datagram of newline-separated assignments), and one more library in
 *  both daemons would buy nothing here. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int notify_fd = -1;
static double watchdog_sec;
static int warned;

/* watchdog_from_env(): $WATCHDOG_USEC in seconds when it applies to this
 * process ($WATCHDOG_PID unset or ours), else 0. */
static double watchdog_from_env(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (usec == NULL || *usec == '\0')
		return 0.;
	if (pid != NULL && *pid != '\0') {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno != 0 || *end != '\0' || v != (unsigned long long)getpid())
			return 0.;
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0) {
		log_warn("ignoring WATCHDOG_USEC: not a number of microseconds", "value=%s", usec);
		return 0.;
	}
	return (double)v / 1e6;
}

int notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	size_t n;
	int fd;

	watchdog_sec = 0.;
	if (path == NULL || *path == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
		log_warn("ignoring NOTIFY_SOCKET: not an absolute path or @abstract name",
		    "notify_socket=%s", path);
		goto unset;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract: no terminating NUL in the length */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	/* Connected once, here: each message is then a plain send(), with no
	 * path to resolve after the process has dropped privileges. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, len) < 0) {
		log_warn("cannot reach the service manager: not notifying",
		    "notify_socket=%s reason=%s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto unset;
	}
	notify_fd = fd;
	watchdog_sec = watchdog_from_env();
unset:
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return notify_fd >= 0 ? 0 : -1;
}

int notify_send(const char *msg)
{
	if (notify_fd < 0)
		return -1;
	/* MSG_DONTWAIT: the main loop never waits for the manager; a message
	 * that does not fit now is lost (the next STATUS= or ping follows). */
	if (send(notify_fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if (!warned) {
			warned = 1;
			log_warn("cannot notify the service manager", "reason=%s",
			    strerror(errno));
		}
		return -1;
	}
	return 0;
}

int notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	return notify_send(msg);
}

double notify_watchdog(void)
{
	return notify_fd >= 0 ? watchdog_sec : 0.;
}

void notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
