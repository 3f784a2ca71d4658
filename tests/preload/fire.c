/* Probe: send and exit at once.  fire A.B.C.D:PORT BYTES
 * Connect, send BYTES bytes of a repeating pattern ("0123456789"...) and
 * return from main without closing or reading: whatever the shim still holds
 * must be delivered before the process is gone. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	char buf[65536];
	long total, sent = 0;
	size_t i;
	int fd;

	if (argc != 3 || probe_addr4(argv[1], &sin) != 0 || (total = atol(argv[2])) < 0) {
		fprintf(stderr, "usage: fire A.B.C.D:PORT BYTES\n");
		return 2;
	}
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('0' + i % 10);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	while (sent < total) {
		/* Keep the pattern aligned: every chunk starts at a multiple of 10. */
		size_t n = (size_t)(total - sent) < sizeof(buf) - 10 ? (size_t)(total - sent) :
		    sizeof(buf) - 10;
		ssize_t k = send(fd, buf + sent % 10, n, MSG_NOSIGNAL);

		if (k < 0) {
			printf("send: %s\n", strerror(errno));
			return 1;
		}
		sent += k;
	}
	printf("sent %ld\n", sent);
	return 0;
}
