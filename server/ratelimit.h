/* ratelimit: refusal log lines a remote peer can trigger: the first of a
 * message, reason and address is logged in full, then, while they repeat, one
 * summary line a second with their count (repeated=N).  One fixed-size table per process, shared by
 * the workers. */
#ifndef TLSFWD_RATELIMIT_H
#define TLSFWD_RATELIMIT_H

#include "log.h"
#include "sock.h"

#define RATELIMIT_WINDOW 1.0	/* seconds one line stands for */

/**
 * ratelimit_allow(level, msg, peer, reason): 1 if the caller should log this
 * event now (the first of its kind from peer's address in RATELIMIT_WINDOW),
 * 0 if it was counted for a later summary line.  msg must be a string that
 * lives for ever (a literal); reason is copied.
 */
int ratelimit_allow(enum log_level level, const char *msg, const struct sock_addr *peer,
    const char *reason);

/** ratelimit_flush(all): log a summary line ("msg peer=ADDRESS reason=...
 *  repeated=N", the address without a port, or peer=many) for each count
 *  whose window closed a window ago with no event since, or (all) for every
 *  count.  Workers call it every
 *  RATELIMIT_WINDOW, the daemon once at exit. */
void ratelimit_flush(int all);

#endif
