/* Probe: blocking connect.  blocking ADDR MESSAGE [ADDR MESSAGE]...
 * For each pair: connect to ADDR (a.b.c.d:port or [v6]:port), send MESSAGE,
 * read until EOF and print "ADDR reply=REPLY", or "ADDR connect: errno=N (text)".
 * Exits 0 only if every exchange worked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	size_t hlen;

	if (colon == NULL || (hlen = (size_t)(colon - spec)) >= sizeof(host) || hlen < 1)
		return -1;
	if (spec[0] == '[') {
		memcpy(host, spec + 1, hlen - 2);
		host[hlen - 2] = '\0';
	} else {
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)atoi(colon + 1));
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)atoi(colon + 1));
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

static int exchange(const char *spec, const char *msg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char reply[4096];
	size_t got;
	int fd;

	if (parse_addr(spec, &ss, &len) != 0) {
		printf("%s bad address\n", spec);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0) {
		perror("socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;

		printf("%s connect: errno=%d (%s)\n", spec, e, strerror(e));
		close(fd);
		return -1;
	}
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) != (ssize_t)strlen(msg)) {
		printf("%s send: %s\n", spec, strerror(errno));
		close(fd);
		return -1;
	}
	got = probe_read_all(fd, reply, sizeof(reply));
	close(fd);
	printf("%s reply=%s\n", spec, reply);
	return got > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int i, rc = 0;

	if (argc < 3 || argc % 2 != 1) {
		fprintf(stderr, "usage: blocking ADDR MESSAGE [ADDR MESSAGE]...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i + 1 < argc; i += 2)
		if (exchange(argv[i], argv[i + 1]) != 0)
			rc = 1;
	return rc;
}
