/* Probe: a parent that forks workers which each log.  forking A.B.C.D:PORT N
 * Each of N children connects, sends "worker I\n", reads until EOF and prints
 * "worker I reply=REPLY".  Exits 0 only if every worker did. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int worker(const struct sockaddr_in *sin, int i)
{
	char msg[64], reply[256];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0) {
		printf("worker %d connect: %s\n", i, strerror(errno));
		return 1;
	}
	snprintf(msg, sizeof(msg), "worker %d\n", i);
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) != (ssize_t)strlen(msg)) {
		printf("worker %d send: %s\n", i, strerror(errno));
		close(fd);
		return 1;
	}
	while (got < sizeof(reply) - 1 && (n = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	close(fd);
	printf("worker %d reply=%s\n", i, reply);
	return got > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[64];
	const char *colon = argc == 3 ? strrchr(argv[1], ':') : NULL;
	int i, n, status, rc = 0;

	if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "usage: forking A.B.C.D:PORT N\n");
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = '\0';
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	n = atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			fflush(stdout);
			_exit(worker(&sin, i));
		}
		if (pid < 0) {
			perror("fork");
			rc = 1;
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	return rc;
}
