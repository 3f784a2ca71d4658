/* resolver: the thread that resolves the upstreams' names again. */
#include "resolver.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"

#define RESOLVE_GAP 1.0		/* seconds between two rounds, at least */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* named(u): 1 if u's addresses come from a name, not an address. */
static int named(const struct upstream *u)
{
	char host[256], port[8];
	const char *why;

	return sock_split(u->resolve, host, sizeof(host), port, sizeof(port), &why) == 0 &&
	    !sock_is_ip(host);
}

/* resolve(u): one name, once; only this thread writes u->unresolved. */
static void resolve(struct upstream *u)
{
	struct sock_addr a[UPSTREAM_ADDRS];
	char list[UPSTREAM_ADDRS * SOCK_NTOP_MAX], *at = list;
	const char *why;
	int n, i;

	if ((n = sock_resolve(u->resolve, a, UPSTREAM_ADDRS, &why)) < 0) {
		if (!u->unresolved)
			log_warn("cannot resolve, keeping the last addresses",
			    "upstream=%s name=%s reason=%s", u->spec, u->resolve, why);
		u->unresolved = 1;
		return;
	}
	if (upstream_set_addrs(u, a, n) || u->unresolved) {
		*at = '\0';
		for (i = 0; i < n; i++) {
			char one[SOCK_NTOP_MAX];

			at += snprintf(at, sizeof(list) - (size_t)(at - list), "%s%s",
			    i ? "," : "", sock_ntop(&a[i], one));
		}
		log_info("resolved", "upstream=%s name=%s addresses=%s", u->spec, u->resolve, list);
	}
	u->unresolved = 0;
}

static void *resolver_main(void *arg)
{
	struct resolver *r = arg;
	double last = mono_now();
	int i;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		double now = mono_now(), due = last + (r->kicked ? RESOLVE_GAP : r->interval);
		struct timespec ts;

		if (now < due) {
			ts.tv_sec = (time_t)due;
			ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
			(void)pthread_cond_timedwait(&r->cond, &r->lock, &ts);
			continue;
		}
		r->kicked = 0;
		pthread_mutex_unlock(&r->lock);
		for (i = 0; i < r->p->n; i++)
			if (named(&r->p->v[i]))
				resolve(&r->p->v[i]);
		last = mono_now();
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int resolver_start(struct resolver *r, struct upstreams *p, double interval)
{
	pthread_condattr_t ca;
	sigset_t old;
	int i, rc;

	memset(r, 0, sizeof(*r));
	r->p = p;
	r->interval = interval;
	for (i = 0; i < p->n && !named(&p->v[i]); i++)
		;
	if (i == p->n || interval <= 0.)
		return 0;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals are the main loop's: the thread blocks them all. */
	thread_signals_block(&old);
	rc = pthread_create(&r->thread, NULL, resolver_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		errno = rc;
		return -1;
	}
	r->pid = getpid();
	return 0;
}

void resolver_kick(struct resolver *r)
{
	if (r->pid == 0)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicked = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void resolver_stop(struct resolver *r)
{
	if (r->pid == 0)
		return;
	if (r->pid == getpid()) {
		pthread_mutex_lock(&r->lock);
		r->stop = 1;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
	}
	r->pid = 0;
}
