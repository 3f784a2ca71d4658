/* sandbox: what a daemon gives up once it has bound its listeners and loaded
 * its files: root (--user) and, unless --no-sandbox, the file system and
 * TCP ports beyond what it names (Landlock) and the system calls beyond
 * what it makes (seccomp).  Called by daemon_main() on the main thread
 * before any thread exists; never by the preload shim. */
#ifndef TLSFWD_SANDBOX_H
#define TLSFWD_SANDBOX_H

#include <stddef.h>

#include "config.h"
#include "conn.h"

/** sandbox_user(spec, err, errsz): spec "USER[:GROUP]" (NULL: none given).
 *  As root: drop to USER, GROUP (default: USER's primary group) and USER's
 *  supplementary groups for good, and check that root cannot be taken back.
 *  As root without spec: a warning.  Not root: spec must name the user we
 *  already are.  Returns 0, or -1 with the cause in err. */
int sandbox_user(const char *spec, char *err, size_t errsz);

/** sandbox_user_check(spec, err, errsz): --check: spec (NULL: none) names
 *  a user and group that exist.  0, or -1 with the cause in err. */
int sandbox_user_check(const char *spec, char *err, size_t errsz);

/** sandbox_enter(cfg, t, listen_port, err, errsz): Landlock (where the
 *  kernel has it: read-only access to the directories of cfg's files and
 *  what the resolver reads, write access to the audit file's directory,
 *  TCP bind to listen_port and connect to the ports of t's upstreams and
 *  the audit forward) then the seccomp allow-list.  Returns 0, or -1 with
 *  the cause in err. */
int sandbox_enter(const struct config *cfg, const struct tunnel *t, int listen_port,
    char *err, size_t errsz);

#endif
