/*-
 * reach: the listeners follow the upstream's reachability.
 *
 * Shutting a listening socket (shutdown(SHUT_RD)) takes it out of the
 * kernel's listen state: connects to it are refused, and connections waiting
 * in its backlog are reset, not accepted.  listen() on the same socket opens
 * it again, keeping its address; a socket whose port the kernel chose (port
 * 0) loses that port when shut, so it is bound to it again first.  Each
 * change happens under one lock and before the caller goes on, so a sender
 * that was just reset finds the door already shut when it reconnects.
 */
#include "reach.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

void reach_init(struct reach *r, int follow, const char *lost, const char *found)
{
	memset(r, 0, sizeof(*r));
	r->follow = follow;
	r->lost = lost;
	r->found = found;
	pthread_mutex_init(&r->lock, NULL);
}

void reach_destroy(struct reach *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* shut(l): stop listening on l; a failure leaves it open (logged). */
static void shut(const struct reach_listener *l)
{
	if (shutdown(l->fd, SHUT_RD) < 0)
		log_warn("cannot stop listening", "reason=%s", strerror(errno));
}

/* reopen(l): listen on l again, at the address it had. */
static void reopen(const struct reach_listener *l)
{
	/* EINVAL: it still holds its address (bound to an explicit port). */
	if (bind(l->fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0 &&
	    errno != EINVAL)
		log_error("cannot listen again", "reason=%s", strerror(errno));
	else if (listen(l->fd, SOMAXCONN) < 0)
		log_error("cannot listen again", "reason=%s", strerror(errno));
}

/* wake_all(r): with r->lock held, tell every worker to look at the state. */
static void wake_all(struct reach *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		ev_async_send(r->l[i].loop, r->l[i].wake);
}

int reach_add(struct reach *r, int fd, struct ev_loop *loop, ev_async *wake)
{
	struct reach_listener *l;

	pthread_mutex_lock(&r->lock);
	if (r->n == REACH_LISTENERS) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	l = &r->l[r->n];
	l->fd = fd;
	l->addr.len = sizeof(l->addr.ss);
	if (getsockname(fd, (struct sockaddr *)&l->addr.ss, &l->addr.len) < 0)
		l->addr.len = 0;
	l->loop = loop;
	l->wake = wake;
	r->n++;
	if (atomic_load(&r->down))
		shut(l);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void reach_remove(struct reach *r, int fd)
{
	int i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n; i++)
		if (r->l[i].fd == fd) {
			r->l[i] = r->l[--r->n];
			break;
		}
	pthread_mutex_unlock(&r->lock);
}

int reach_is_down(struct reach *r)
{
	return atomic_load_explicit(&r->down, memory_order_relaxed);
}

int reach_lost(struct reach *r, const char *upstream, const char *why)
{
	int i, changed = 0;

	if (!r->follow || atomic_load(&r->down))
		return 0;
	pthread_mutex_lock(&r->lock);
	if (!atomic_load(&r->down)) {
		atomic_store(&r->down, 1);
		for (i = 0; i < r->n; i++)
			shut(&r->l[i]);
		wake_all(r);
		changed = 1;
	}
	pthread_mutex_unlock(&r->lock);
	if (changed)
		log_warn(r->lost, "upstream=%s reason=%s", upstream, why);
	return changed;
}

void reach_kick(struct reach *r)
{
	if (!atomic_load(&r->down))
		return;
	pthread_mutex_lock(&r->lock);
	wake_all(r);
	pthread_mutex_unlock(&r->lock);
}

void reach_found(struct reach *r, const char *upstream)
{
	int i, changed = 0;

	if (!atomic_load(&r->down))
		return;
	pthread_mutex_lock(&r->lock);
	if (atomic_load(&r->down)) {
		for (i = 0; i < r->n; i++)
			reopen(&r->l[i]);
		atomic_store(&r->down, 0);
		wake_all(r);
		changed = 1;
	}
	pthread_mutex_unlock(&r->lock);
	if (changed)
		log_info(r->found, "upstream=%s", upstream);
}
