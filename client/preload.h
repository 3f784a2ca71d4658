/* preload: what the hooks (preload.c), the environment and intercept rules
 * (preload_env.c) and the inline client core (preload_inline.c) of
 * libtlsfwd-preload.so say to each other. */
#ifndef TLSFWD_PRELOAD_H
#define TLSFWD_PRELOAD_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* An internet socket address of either family. */
union inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* preload_addr_len(u): the length of u's address. */
static inline socklen_t preload_addr_len(const union inaddr *u)
{
	return u->sa.sa_family == AF_INET ? sizeof(u->sin) : sizeof(u->sin6);
}

/** preload_addr_same(x, xlen, y, ylen): whether x and y are the same
 *  internet address and port (a v4-mapped IPv6 address is its IPv4 one). */
int preload_addr_same(const struct sockaddr *x, socklen_t xlen, const struct sockaddr *y,
    socklen_t ylen);

/** preload_env_load(): read TLSFWD_INTERCEPT and what goes with it, once;
 *  say on stderr if it is misconfigured.  Returns non-zero if the shim
 *  intercepts. */
int preload_env_load(void);

/** preload_env_active(): non-zero if the shim intercepts (TLSFWD_INTERCEPT
 *  is set, or the configuration could not be read: it fails closed). */
int preload_env_active(void);

/** preload_env_fail_closed(): the configuration could not be read: refuse
 *  every intercepted connect. */
void preload_env_fail_closed(void);

/** preload_env_intercepted(sa, len): non-zero if a connect to sa is to be
 *  tunnelled (re-resolving the names first if it may be theirs). */
int preload_env_intercepted(const struct sockaddr *sa, socklen_t len);

/** preload_env_target(domain, to): where an intercepted connect on a socket
 *  of domain goes instead (the tlsfwd-client or the inline core).  Returns
 *  0, or -1 if it is to be refused (misconfigured, or no address for that
 *  family: said once). */
int preload_env_target(int domain, union inaddr *to);

/* Hooks called on a thread inside the shim (the core's own thread, or while
 * the shim resolves names or starts the core) pass straight through to libc. */
extern __thread int preload_inside;

/* The stack of the shim's own threads (preload_offstack, the inline core's
 * event loop), bytes: the host program's threads may have small stacks
 * (Fluent Bit's output coroutines: 24 KiB), and wolfSSL (built without
 * WOLFSSL_SMALL_STACK) needs tens of KiB to load a key or make a handshake. */
#define PRELOAD_STACK (256 * 1024)

/** preload_offstack(fn, arg): run fn(arg) on a new thread with a stack of
 *  PRELOAD_STACK bytes, every signal blocked and preload_inside set, and wait
 *  for it: whatever needs more than a few hundred bytes of stack (the
 *  resolver, loading the configuration, starting and stopping the inline
 *  core) never runs on the host program's thread.  Returns 0, or the
 *  pthread_create error (fn did not run). */
int preload_offstack(void (*fn)(void *), void *arg);

/** preload_say_plain(what, detail): "tlsfwd-preload: WHAT DETAIL" on stderr,
 *  formatted without printf (a few hundred bytes of stack): for the hooks'
 *  own path on the host program's thread.  detail may be NULL. */
void preload_say_plain(const char *what, const char *detail);

/** inline_configure(path, problem, n): read the client configuration file
 *  for inline mode.  Returns 0, or -1 with a one-line reason in problem. */
int inline_configure(const char *path, char *problem, size_t n);

/** inline_target(to): the address of the in-process client core, started
 *  on the first call (and again in a forked child).  Returns 0, or -1 if the
 *  core cannot run (said once on stderr). */
int inline_target(struct sockaddr_in *to);

/** preload_stderr(line, n): write to the program's stderr, unless fd 2 has
 *  become an internet socket (then the line is dropped). */
void preload_stderr(const char *line, size_t n);

/** preload_say(fmt, ...): one "tlsfwd-preload: ..." line on stderr. */
void preload_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** preload_half_close(to): shutdown(SHUT_WR) every socket the hooks
 *  redirected whose kernel peer is still `to` (an exiting program's sockets
 *  to its inline core; never another process's). */
void preload_half_close(const struct sockaddr_in *to);

#endif
