/* worker: one libev loop per thread, each with its own SO_REUSEPORT listener;
 * signals are events of the main thread's loop. */
#ifndef TLSFWD_WORKER_H
#define TLSFWD_WORKER_H

#include "conn.h"
#include "sock.h"

/** workers_run(t, listen, n): bind n listeners on listen, run n worker
 *  threads until SIGTERM or SIGINT (the first drains open connections, a
 *  second drops them), then join them.  Returns 0 after a clean stop, or 1
 *  (logged) if the listeners or threads could not be set up. */
int workers_run(struct tunnel *t, const struct sock_addr *listen, int n);

#endif
