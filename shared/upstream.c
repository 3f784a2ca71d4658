/* upstream: the upstream list and its shared state. */
#include "upstream.h"

#include <stdio.h>
#include <string.h>

#include "tls.h"

int upstream_init(struct upstream *u, const char *spec, const char *name, char *err,
    size_t errsz)
{
	char host[256], port[8];
	const char *why;
	int n;

	memset(u, 0, sizeof(*u));
	if (strlen(spec) >= sizeof(u->spec)) {
		snprintf(err, errsz, "%s: address too long", spec);
		return -1;
	}
	strcpy(u->spec, spec);
	if (sock_split(spec, host, sizeof(host), port, sizeof(port), &why) < 0 ||
	    (n = sock_resolve(spec, u->addr, UPSTREAM_ADDRS, &why)) < 0) {
		snprintf(err, errsz, "%s: %s", spec, why);
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

int upstream_next(const struct upstream *v, int n, int *up, int *addr)
{
	if (*addr + 1 < v[*up].naddr) {
		++*addr;
		return 0;
	}
	if (*up + 1 < n) {
		++*up;
		*addr = 0;
		return 0;
	}
	return -1;
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
