/* sock: addresses and non-blocking sockets, one job per function. */
#ifndef TLSFWD_SOCK_H
#define TLSFWD_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

struct sock_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

#define SOCK_NTOP_MAX 64	/* "[ipv6]:port" and its NUL */

/** sock_split(spec, host, hostsz, port, portsz): split "host:port" or
 *  "[v6]:port" into its parts.  Returns 0, or -1 with a reason in *why. */
int sock_split(const char *spec, char *host, size_t hostsz, char *port,
    size_t portsz, const char **why);

/** sock_is_ip(host): non-zero if host is an IPv4 or IPv6 literal. */
int sock_is_ip(const char *host);

/** sock_resolve(spec, out, max, why): resolve "host:port" into at most max
 *  addresses.  Returns how many (>= 1), or -1 with a reason in *why. */
int sock_resolve(const char *spec, struct sock_addr *out, int max, const char **why);

/** sock_ntop(a, buf): "1.2.3.4:5" or "[::1]:5" into buf (SOCK_NTOP_MAX); returns buf. */
char *sock_ntop(const struct sock_addr *a, char *buf);

/** sock_key(a, ip): a's address (no port) as 16 bytes, IPv4 mapped into
 *  IPv6 (::ffff:a.b.c.d), for tables keyed by address; zeros for another family. */
void sock_key(const struct sock_addr *a, unsigned char ip[16]);

/** sock_port(a): a's port (IPv4 or IPv6). */
unsigned sock_port(const struct sock_addr *a);

/** sock_is_loopback(a): non-zero for 127.0.0.0/8 and ::1. */
int sock_is_loopback(const struct sock_addr *a);

/** sock_listen(a, reuseport): a non-blocking listening socket, or -1 (errno). */
int sock_listen(const struct sock_addr *a, int reuseport);

/** sock_accept(lfd, peer): accept one non-blocking connection, or -1 (errno). */
int sock_accept(int lfd, struct sock_addr *peer);

/** sock_connect(a): start a non-blocking connect; the fd, or -1 (errno).
 *  Completion is signalled by writability; then check sock_error(). */
int sock_connect(const struct sock_addr *a);

/** sock_error(fd): the pending SO_ERROR of fd (0 if none). */
int sock_error(int fd);

/** sock_udp_bind(a): a non-blocking UDP socket bound to a, or -1 (errno). */
int sock_udp_bind(const struct sock_addr *a);

/** sock_keepalive(fd, idle): TCP keepalive on fd: the first probe after idle
 *  seconds of silence, then every min(idle, 10) s, the path declared dead
 *  after 6 unanswered.  idle <= 0: nothing. */
void sock_keepalive(int fd, int idle);

/** sock_nodelay(fd): set TCP_NODELAY; forward messages and acks are small. */
void sock_nodelay(int fd);

#endif
