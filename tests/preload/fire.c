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

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64], buf[65536];
	const char *colon = argc == 3 ? strrchr(argv[1], ':') : NULL;
	long total, sent = 0;
	size_t i;
	int fd;

	if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "usage: fire A.B.C.D:PORT BYTES\n");
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	total = atol(argv[2]);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || total < 0)
		return 2;
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
