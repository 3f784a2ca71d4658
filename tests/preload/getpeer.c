/* Probe: getpeername on a (redirected) socket.  getpeer A.B.C.D:PORT
 * Connects and prints "peer HOST:PORT" from getpeername, then the same for a
 * dup() of the socket after the original was closed ("dup HOST:PORT"). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

static void print_peer(const char *label, int fd)
{
	struct sockaddr_in6 ss;		/* big enough for either family */
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
		printf("%s getpeername: %s\n", label, strerror(errno));
		return;
	}
	if (sin->sin_family == AF_INET)
		printf("%s %s:%u\n", label, inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)),
		    ntohs(sin->sin_port));
	else
		printf("%s [%s]:%u\n", label, inet_ntop(AF_INET6, &ss.sin6_addr, host, sizeof(host)),
		    ntohs(ss.sin6_port));
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	int fd, fd2;

	if (argc != 2 || probe_addr4(argv[1], &sin) != 0) {
		fprintf(stderr, "usage: getpeer A.B.C.D:PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	print_peer("peer", fd);
	fd2 = dup(fd);
	close(fd);
	print_peer("dup", fd2);
	close(fd2);
	return 0;
}
