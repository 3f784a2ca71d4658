/* sock: address parsing and non-blocking socket helpers; see sock.h. */
#include "sock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sock_split(const char *spec, char *host, size_t hostsz, char *port,
    size_t portsz, const char **why)
{
	const char *colon, *h = spec;
	size_t hlen;
	char *end;
	long p;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL) {
			*why = "missing ']' after IPv6 address";
			return -1;
		}
		if (rb[1] != ':') {
			*why = "expected [address]:port";
			return -1;
		}
		h = spec + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL) {
			*why = "expected host:port";
			return -1;
		}
		if (memchr(spec, ':', (size_t)(colon - spec)) != NULL) {
			*why = "an IPv6 address must be written [address]:port";
			return -1;
		}
		hlen = (size_t)(colon - spec);
	}
	if (hlen == 0) {
		*why = "empty host";
		return -1;
	}
	if (hlen >= hostsz) {
		*why = "host name too long";
		return -1;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 || p < 1 || p > 65535) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	if (strlen(colon + 1) >= portsz) {
		*why = "port too long";
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

int sock_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int sock_resolve(const char *spec, struct sock_addr *out, int max, const char **why)
{
	struct addrinfo hints, *res, *ai;
	char host[256], port[8];
	int n = 0, rc;

	if (sock_split(spec, host, sizeof(host), port, sizeof(port), why) < 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (sock_is_ip(host) ? AI_NUMERICHOST : 0);
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss))
			continue;
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		*why = "no usable address";
		return -1;
	}
	return n;
}

char *sock_ntop(const struct sock_addr *a, char *buf)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, SOCK_NTOP_MAX, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, SOCK_NTOP_MAX, "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		snprintf(buf, SOCK_NTOP_MAX, "?");
	}
	return buf;
}

unsigned sock_port(const struct sock_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int sock_is_loopback(const struct sock_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	return 0;
}

void sock_key(const struct sock_addr *a, unsigned char ip[16])
{
	memset(ip, 0, 16);
	if (a->ss.ss_family == AF_INET) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
	} else if (a->ss.ss_family == AF_INET6) {
		memcpy(ip, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
	}
}

int sock_listen(const struct sock_addr *a, int reuseport)
{
	int fd, one = 1, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int sock_accept(int lfd, struct sock_addr *peer)
{
	peer->len = sizeof(peer->ss);
	return accept4(lfd, (struct sockaddr *)&peer->ss, &peer->len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int sock_connect(const struct sock_addr *a)
{
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sock_nodelay(fd);
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

int sock_udp_bind(const struct sock_addr *a)
{
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void sock_keepalive(int fd, int idle)
{
	int one = 1, intvl = idle < 10 ? idle : 10, cnt = 6;

	if (idle <= 0)
		return;
	/* Best effort, like TCP_NODELAY: without it a dead path is found
	 * only by the next write (or the drain timeout). */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

void sock_nodelay(int fd)
{
	int one = 1;

	/* Best effort: a failure costs latency, never correctness. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
