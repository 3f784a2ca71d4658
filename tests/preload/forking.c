/* Probe: a parent that forks workers which each log.
 *   forking A.B.C.D:PORT N [parent-first]
 * Each of N children connects, sends "worker I\n", reads until EOF and prints
 * "worker I reply=REPLY".  With parent-first the parent connects and sends
 * "parent\n" before it forks (so an inline shim runs in it), each child first
 * prints "worker I sockets=K" (the sockets it inherited), and the parent,
 * while its children run, reads its reply: "parent reply=REPLY".
 * Exits 0 only if every exchange worked. */
#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

static int sockets_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	int n = 0;
	ssize_t len;

	while (d != NULL && (e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len > 0 && strncmp(target, "socket:", 7) == 0)
			n++;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static int exchange(const struct sockaddr_in *sin, const char *msg, char *reply, size_t size)
{
	size_t got;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0 ||
	    send(fd, msg, strlen(msg), MSG_NOSIGNAL) != (ssize_t)strlen(msg)) {
		snprintf(reply, size, "error: %s", strerror(errno));
		return -1;
	}
	got = probe_read_all(fd, reply, size);
	close(fd);
	return got > 0 ? 0 : -1;
}

static int worker(const struct sockaddr_in *sin, int i, int count)
{
	char msg[64], reply[256];
	int rc;

	if (count)
		printf("worker %d sockets=%d\n", i, sockets_open());
	snprintf(msg, sizeof(msg), "worker %d\n", i);
	rc = exchange(sin, msg, reply, sizeof(reply));
	printf("worker %d reply=%s\n", i, reply);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	char reply[256];
	int i, n, status, rc = 0, parent_first = argc == 4 && strcmp(argv[3], "parent-first") == 0;
	int fd = -1;
	size_t got;

	if ((argc != 3 && !parent_first) || probe_addr4(argv[1], &sin) != 0) {
		fprintf(stderr, "usage: forking A.B.C.D:PORT N [parent-first]\n");
		return 2;
	}
	n = atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parent_first) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
		    send(fd, "parent\n", 7, MSG_NOSIGNAL) != 7) {
			printf("parent: %s\n", strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			fflush(stdout);
			_exit(worker(&sin, i, parent_first));
		}
		if (pid < 0) {
			perror("fork");
			rc = 1;
		}
	}
	if (fd >= 0) {
		got = probe_read_all(fd, reply, sizeof(reply));
		close(fd);
		printf("parent reply=%s\n", reply);
		if (got == 0)
			rc = 1;
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	return rc;
}
