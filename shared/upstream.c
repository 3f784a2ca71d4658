/* upstream: the upstream list, the choice among it and its shared state. */
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls.h"

#define PROBE_FIRST 0.1		/* seconds from a failure to the first probe */

int upstream_parse(const char *value, char *spec, size_t specsz, int *weight, int *standby,
    char *why, size_t whysz)
{
	char host[256], port[8], attr[64];
	const char *p = strchr(value, ','), *bad, *next;
	size_t len = p != NULL ? (size_t)(p - value) : strlen(value);

	*weight = 1;
	*standby = 0;
	if (len >= specsz) {
		snprintf(why, whysz, "address too long");
		return -1;
	}
	memcpy(spec, value, len);
	spec[len] = '\0';
	if (sock_split(spec, host, sizeof(host), port, sizeof(port), &bad) < 0) {
		snprintf(why, whysz, "%s", bad);
		return -1;
	}
	for (; p != NULL; p = next) {
		char *end;
		long w;

		p++;
		next = strchr(p, ',');
		len = next != NULL ? (size_t)(next - p) : strlen(p);
		if (len >= sizeof(attr))
			len = sizeof(attr) - 1;
		memcpy(attr, p, len);
		attr[len] = '\0';
		if (strcmp(attr, "standby") == 0) {
			*standby = 1;
		} else if (strncmp(attr, "weight=", 7) == 0) {
			w = strtol(attr + 7, &end, 10);
			if (attr[7] == '\0' || *end != '\0' || w < 1 || w > UPSTREAM_WEIGHT_MAX) {
				snprintf(why, whysz, "weight must be 1 to %d", UPSTREAM_WEIGHT_MAX);
				return -1;
			}
			*weight = (int)w;
		} else {
			snprintf(why, whysz, "unknown attribute \"%s\" (weight=N, standby)", attr);
			return -1;
		}
	}
	return 0;
}

int upstream_init(struct upstream *u, const char *value, const char *name, char *err,
    size_t errsz)
{
	char host[256], port[8], why[128];
	const char *bad;
	int n;

	memset(u, 0, sizeof(*u));
	if (upstream_parse(value, u->spec, sizeof(u->spec), &u->weight, &u->standby, why,
	    sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s", value, why);
		return -1;
	}
	strcpy(u->resolve, u->spec);
	if (sock_split(u->spec, host, sizeof(host), port, sizeof(port), &bad) < 0 ||
	    (n = sock_resolve(u->spec, u->addr, UPSTREAM_ADDRS, &bad)) < 0) {
		snprintf(err, errsz, "%s: %s", u->spec, bad);
		return -1;
	}
	u->naddr = n;
	if (name == NULL)
		name = host;
	if (strlen(name) >= sizeof(u->name)) {
		snprintf(err, errsz, "%s: name too long", name);
		return -1;
	}
	/* An IP literal is matched against IP SANs, in wolfSSL's spelling. */
	u->name_is_ip = tls_ip_name(name, u->name, sizeof(u->name)) != NULL;
	if (!u->name_is_ip)
		strcpy(u->name, name);
	pthread_mutex_init(&u->lock, NULL);
	return 0;
}

void upstream_free(struct upstream *u)
{
	wolfSSL_SESSION_free(u->session);
	u->session = NULL;
	pthread_mutex_destroy(&u->lock);
}

int upstreams_init(struct upstreams *p, int n, double health_interval)
{
	memset(p, 0, sizeof(*p));
	if ((p->v = calloc((size_t)n, sizeof(*p->v))) == NULL)
		return -1;
	p->health_interval = health_interval;
	pthread_mutex_init(&p->lock, NULL);
	return 0;
}

void upstreams_free(struct upstreams *p)
{
	int i;

	if (p->v == NULL)
		return;
	for (i = 0; i < p->n; i++)
		upstream_free(&p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
	pthread_mutex_destroy(&p->lock);
}

/* pick(p, tried, standby): smooth weighted round robin over the upstreams of
 * that kind that are up and not tried, with p->lock held; -1 if none. */
static int pick(struct upstreams *p, uint64_t tried, int standby)
{
	int i, best = -1, total = 0;

	for (i = 0; i < p->n; i++) {
		struct upstream *u = &p->v[i];

		if ((tried >> i & 1) || u->standby != standby || atomic_load(&u->down))
			continue;
		u->current += u->weight;
		total += u->weight;
		if (best < 0 || u->current > p->v[best].current)
			best = i;
	}
	if (best >= 0)
		p->v[best].current -= total;
	return best;
}

int upstream_pick(struct upstreams *p, uint64_t tried)
{
	int i;

	if (p->n == 1)		/* the common case takes no lock */
		return (tried & 1) ? -1 : 0;
	pthread_mutex_lock(&p->lock);
	if ((i = pick(p, tried, 0)) < 0 && (i = pick(p, tried, 1)) < 0 && !upstreams_up(p))
		for (i = 0; i < p->n && (tried >> i & 1); i++)
			;
	pthread_mutex_unlock(&p->lock);
	return i < p->n ? i : -1;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void upstream_start(struct upstreams *p, struct upstream_pos *pos, int up)
{
	struct upstream *u = &p->v[up];
	double now = u->naddr > 1 ? mono_now() : 0.;
	int first, k, n;

	pthread_mutex_lock(&u->lock);
	n = u->naddr;
	first = (int)(u->next_addr++ % (unsigned)n);
	for (k = 0; k < n && u->addr_bad[(first + k) % n] > now; k++)
		;
	pos->up = up;
	pos->downs = atomic_load(&u->downs);
	pos->addr = (first + (k < n ? k : 0)) % n;
	pos->left = n - 1;
	pthread_mutex_unlock(&u->lock);
}

void upstream_addr_failed(struct upstreams *p, const struct upstream_pos *pos)
{
	struct upstream *u = &p->v[pos->up];

	pthread_mutex_lock(&u->lock);
	if (pos->addr < u->naddr && u->naddr > 1)
		u->addr_bad[pos->addr] = mono_now() + p->health_interval;
	pthread_mutex_unlock(&u->lock);
}

void upstream_addr_ok(struct upstreams *p, const struct upstream_pos *pos)
{
	struct upstream *u = &p->v[pos->up];

	pthread_mutex_lock(&u->lock);
	if (pos->addr < u->naddr)
		u->addr_bad[pos->addr] = 0.;
	pthread_mutex_unlock(&u->lock);
}

int upstream_next(struct upstreams *p, struct upstream_pos *pos)
{
	int i;

	if (pos->left > 0) {
		struct upstream *u = &p->v[pos->up];

		pthread_mutex_lock(&u->lock);
		pos->addr = (pos->addr + 1) % u->naddr;
		pthread_mutex_unlock(&u->lock);
		pos->left--;
		return 0;
	}
	if ((i = upstream_pick(p, pos->tried | (uint64_t)1 << pos->up)) < 0)
		return -1;
	pos->tried |= (uint64_t)1 << pos->up;
	upstream_start(p, pos, i);
	return 0;
}

int upstream_addr(struct upstream *u, int i, struct sock_addr *a)
{
	int rc = -1;

	pthread_mutex_lock(&u->lock);
	if (i < u->naddr) {
		*a = u->addr[i];
		rc = 0;
	}
	pthread_mutex_unlock(&u->lock);
	return rc;
}

/* has(v, n, a): 1 if a is one of v[0..n). */
static int has(const struct sock_addr *v, int n, const struct sock_addr *a)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i].len == a->len && memcmp(&v[i].ss, &a->ss, a->len) == 0)
			return 1;
	return 0;
}

int upstream_set_addrs(struct upstream *u, const struct sock_addr *a, int n)
{
	int i, same;

	pthread_mutex_lock(&u->lock);
	same = n == u->naddr;
	for (i = 0; same && i < n; i++)
		same = has(u->addr, u->naddr, &a[i]);
	if (!same) {
		memcpy(u->addr, a, (size_t)n * sizeof(*a));
		memset(u->addr_bad, 0, sizeof(u->addr_bad));
		u->naddr = n;
	}
	pthread_mutex_unlock(&u->lock);
	return !same;
}

int upstream_failed(struct upstreams *p, int i, const void *prober)
{
	struct upstream *u = &p->v[i];
	int changed = 0;

	if (atomic_load(&u->down))
		return 0;
	pthread_mutex_lock(&p->lock);
	if (!atomic_load(&u->down)) {
		atomic_store(&u->down, 1);
		atomic_fetch_add(&u->downs, 1);
		u->fails = 0;
		u->probing = 0;
		u->prober = prober;
		u->probe_at = 0.;	/* set by the prober's clock: upstream_due() */
		changed = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return changed;
}

int upstream_ok(struct upstreams *p, int i)
{
	struct upstream *u = &p->v[i];
	int changed = 0;

	if (!atomic_load(&u->down))
		return 0;
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&u->down)) {
		atomic_store(&u->down, 0);
		u->probing = 0;
		u->prober = NULL;
		u->current = 0;		/* it rejoins the round robin as new */
		changed = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return changed;
}

void upstream_probe_failed(struct upstreams *p, int i, double now)
{
	struct upstream *u = &p->v[i];
	double wait;

	pthread_mutex_lock(&p->lock);
	if (atomic_load(&u->down)) {
		wait = PROBE_FIRST * (double)(1u << (u->fails < 16 ? u->fails + 1 : 16));
		u->fails++;
		u->probe_at = now + (wait < p->health_interval ? wait : p->health_interval);
		u->probing = 0;
	}
	pthread_mutex_unlock(&p->lock);
}

int upstream_due(struct upstreams *p, const void *prober, double now, double *next)
{
	int i, due = -1;

	*next = 0.;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++) {
		struct upstream *u = &p->v[i];

		if (!atomic_load(&u->down) || u->prober != prober || u->probing)
			continue;
		if (u->probe_at == 0.)	/* just marked down: the first probe */
			u->probe_at = now + PROBE_FIRST;
		if (due < 0 && u->probe_at <= now) {
			u->probing = 1;
			due = i;
		} else if (*next == 0. || u->probe_at < *next) {
			*next = u->probe_at;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return due;
}

void upstream_probe_now(struct upstreams *p, const void *prober)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++)
		if (atomic_load(&p->v[i].down) && p->v[i].prober == prober) {
			p->v[i].probe_at = -1.;		/* due at once */
			p->v[i].fails = 0;
		}
	pthread_mutex_unlock(&p->lock);
}

int upstreams_up(struct upstreams *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (!atomic_load(&p->v[i].down))
			return 1;
	return 0;
}

void upstream_resume(struct upstream *u, WOLFSSL *ssl)
{
	pthread_mutex_lock(&u->lock);
	if (u->session != NULL)
		(void)wolfSSL_set_session(ssl, u->session);
	pthread_mutex_unlock(&u->lock);
}

void upstream_keep(struct upstream *u, WOLFSSL_SESSION *sess)
{
	WOLFSSL_SESSION *old;

	pthread_mutex_lock(&u->lock);
	old = u->session;
	u->session = sess;
	pthread_mutex_unlock(&u->lock);
	wolfSSL_SESSION_free(old);
}
