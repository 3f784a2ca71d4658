/* Probe: non-blocking connect.  nonblock_epoll ADDR MESSAGE
 * connect() on a non-blocking socket (prints whether it said EINPROGRESS),
 * epoll for EPOLLOUT, read SO_ERROR, then send MESSAGE and read until EOF
 * (epoll again), printing "reply=REPLY".  Exits 0 on success. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

static int wait_for(int ep, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int n;

	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
		return -1;
	n = epoll_wait(ep, &ev, 1, 15000);
	return n == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct epoll_event ev = { .events = EPOLLOUT };
	socklen_t len = sizeof(int);
	char reply[4096];
	size_t got = 0;
	int fd, ep, err = 0, rc = 1;
	ssize_t n;

	if (argc != 3 || probe_addr4(argv[1], &sin) != 0) {
		fprintf(stderr, "usage: nonblock_epoll A.B.C.D:PORT MESSAGE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ep = epoll_create1(0);
	if (fd < 0 || ep < 0) {
		perror("socket/epoll");
		return 1;
	}
	ev.data.fd = fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
		printf("connect: immediate\n");
	} else if (errno == EINPROGRESS) {
		printf("connect: EINPROGRESS\n");
		if (wait_for(ep, fd, EPOLLOUT) != 0) {
			printf("connect: timed out\n");
			goto out;
		}
	} else {
		printf("connect: errno=%d (%s)\n", errno, strerror(errno));
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		printf("SO_ERROR=%d (%s)\n", err, strerror(err));
		goto out;
	}
	printf("SO_ERROR=0\n");
	if (send(fd, argv[2], strlen(argv[2]), MSG_NOSIGNAL) != (ssize_t)strlen(argv[2])) {
		printf("send: %s\n", strerror(errno));
		goto out;
	}
	for (;;) {
		if (wait_for(ep, fd, EPOLLIN) != 0) {
			printf("read: timed out\n");
			goto out;
		}
		n = read(fd, reply + got, sizeof(reply) - 1 - got);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0 || (got += (size_t)n) == sizeof(reply) - 1)
			break;
	}
	reply[got] = '\0';
	printf("reply=%s\n", reply);
	rc = got > 0 ? 0 : 1;
out:
	close(ep);
	close(fd);
	return rc;
}
