/* preload: what the hooks (preload.c) and the inline client core
 * (preload_inline.c) of libtlsfwd-preload.so say to each other. */
#ifndef TLSFWD_PRELOAD_H
#define TLSFWD_PRELOAD_H

#include <netinet/in.h>
#include <stddef.h>

/* Hooks called on a thread inside the shim (the core's own thread, or while
 * the shim resolves names or starts the core) pass straight through to libc. */
extern __thread int preload_inside;

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
