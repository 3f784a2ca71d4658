/* heartbeat: answer Fluentd out_forward's UDP heartbeats (heartbeat_type
 * udp: one 0x00 byte to the port it sends to) on the client's listen
 * address, but only while a server is up, so that out_forward's failure
 * detector sees the whole path and not just the local daemon. */
#ifndef TLSFWD_HEARTBEAT_H
#define TLSFWD_HEARTBEAT_H

#include <ev.h>

#include "conn.h"

struct heartbeat {
	int fd;				/* the UDP socket, -1 when not answering */
	ev_io w;
	struct tunnel *t;
};

/** heartbeat_start(hb, t, loop, listen): bind UDP on listen and answer on
 *  loop; a warning (and no answers) if the address cannot be bound. */
void heartbeat_start(struct heartbeat *hb, struct tunnel *t, struct ev_loop *loop,
    const struct sock_addr *listen);

/** heartbeat_stop(hb, loop): stop answering; harmless if not started. */
void heartbeat_stop(struct heartbeat *hb, struct ev_loop *loop);

#endif
