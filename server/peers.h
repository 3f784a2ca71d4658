/* peers: how many connections each remote address has open, for
 * --max-conns-per-ip.  One table per process, shared by the workers. */
#ifndef TLSFWD_PEERS_H
#define TLSFWD_PEERS_H

#include "sock.h"

struct peers;

/** peers_new(limit, capacity): a table allowing `limit` connections per
 *  address, for at most `capacity` open connections.  NULL out of memory. */
struct peers *peers_new(long limit, long capacity);

/** peers_acquire(p, a): count a connection from a's address; -1 (nothing
 *  counted) if that address is at its limit or the table is full. */
int peers_acquire(struct peers *p, const struct sock_addr *a);

/** peers_acquire_over(p, a, over): the same, with `over` more allowed. */
int peers_acquire_over(struct peers *p, const struct sock_addr *a, long over);

/** peers_release(p, a): forget one connection from a's address. */
void peers_release(struct peers *p, const struct sock_addr *a);

/** peers_free(p): free the table. */
void peers_free(struct peers *p);

#endif
