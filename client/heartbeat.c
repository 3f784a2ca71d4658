/* heartbeat: the client's answers to UDP heartbeats. */
#include "heartbeat.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "log.h"
#include "reach.h"

#define HEARTBEAT_BATCH 64	/* datagrams answered per event, at most */

/* heartbeat_cb: each 0x00 datagram gets a 0x00 back to its sender, as
 * in_forward answers, while the servers are reachable; anything else, and
 * everything while they are not, is read and dropped. */
static void heartbeat_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct heartbeat *hb = w->data;
	struct sock_addr from;
	unsigned char buf[16];
	ssize_t n;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < HEARTBEAT_BATCH; i++) {
		from.len = sizeof(from.ss);
		n = recvfrom(hb->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from.ss, &from.len);
		if (n < 0)
			return;
		if (n == 1 && buf[0] == 0 && !reach_is_down(&hb->t->reach))
			(void)sendto(hb->fd, buf, 1, MSG_DONTWAIT, (struct sockaddr *)&from.ss,
			    from.len);
	}
}

void heartbeat_start(struct heartbeat *hb, struct tunnel *t, struct ev_loop *loop,
    const struct sock_addr *listen)
{
	char addr[SOCK_NTOP_MAX];

	hb->t = t;
	if ((hb->fd = sock_udp_bind(listen)) < 0) {
		log_warn("cannot answer UDP heartbeats", "listen=%s reason=%s",
		    sock_ntop(listen, addr), strerror(errno));
		return;
	}
	ev_io_init(&hb->w, heartbeat_cb, hb->fd, EV_READ);
	hb->w.data = hb;
	ev_io_start(loop, &hb->w);
	log_debug("answering UDP heartbeats while a server is up", "listen=%s",
	    sock_ntop(listen, addr));
}

void heartbeat_stop(struct heartbeat *hb, struct ev_loop *loop)
{
	if (hb->fd < 0)
		return;
	ev_io_stop(loop, &hb->w);
	close(hb->fd);
	hb->fd = -1;
}
