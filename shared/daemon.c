/* daemon: shared start-up and shutdown of tlsfwd-client and tlsfwd-server. */
#include "daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "audit.h"
#include "authz.h"
#include "log.h"
#include "peers.h"
#include "reload.h"
#include "tls.h"
#include "worker.h"

int upstream_init(struct upstream *u, const char *spec, const char *name, char *err, size_t errsz)
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
	return 0;
}

/* raise_fd_limit(max_conns): every connection holds two descriptors; take
 * the hard limit as our soft one and say so if it still does not fit. */
static void raise_fd_limit(long max_conns)
{
	struct rlimit rl;
	long need = 2 * max_conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need)
		log_warn("open-file limit is too low for --max-conns: connections beyond it "
		    "wait in the backlog", "nofile=%ld max_conns=%ld needed=%ld",
		    (long)rl.rlim_cur, max_conns, need);
}

int daemon_tunnel_open(struct tunnel *t, const struct config *cfg,
    const struct sock_addr *listen, daemon_prepare_fn prepare, char *err, size_t errsz)
{
	t->connect_timeout = cfg->connect_timeout;
	t->handshake_timeout = cfg->handshake_timeout;
	t->drain_timeout = cfg->drain_timeout;
	t->max_conns = cfg->max_conns;
	t->resume = cfg->tls_resume;
	pthread_mutex_init(&t->policy.lock, NULL);
	if (t->role == ROLE_CLIENT)
		reach_init(&t->reach, !cfg->accept_while_unreachable,
		    "servers unreachable, not accepting", "server reachable again, accepting");
	else
		reach_init(&t->reach, !cfg->accept_while_unreachable,
		    "upstream unreachable, not accepting", "upstream reachable again, accepting");
	if (prepare(cfg, listen, t, err, errsz) < 0 ||
	    (t->policy.cur = tls_policy_new(cfg, err, errsz)) == NULL) {
		daemon_tunnel_close(t);
		return -1;
	}
	return 0;
}

void daemon_tunnel_close(struct tunnel *t)
{
	tls_policy_set(&t->policy, NULL);
	pthread_mutex_destroy(&t->policy.lock);
	reach_destroy(&t->reach);
	authz_nets_free(t->nets);
	peers_free(t->peers);
	peers_free(t->hs_peers);
	free(t->up);
	t->nets = NULL;
	t->peers = NULL;
	t->hs_peers = NULL;
	t->up = NULL;
	t->nup = 0;
}

static void print_version(const char *prog)
{
	char buf[160];

	printf("%s %s\n%s\nlibev %d.%d\n", prog, TLSFWD_VERSION, tls_version_info(buf, sizeof(buf)),
	    ev_version_major(), ev_version_minor());
}

int daemon_main(enum role role, const char *prog, int argc, char **argv,
    daemon_prepare_fn prepare)
{
	struct tunnel t = { .role = role };
	struct sock_addr listen;
	struct config cfg;
	char err[1024];
	const char *why;
	int rc = 1;

	if (config_load(&cfg, role, prog, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto out_cfg;
	}
	if (cfg.help) {
		config_usage(role, prog, stdout);
		rc = 0;
		goto out_cfg;
	}
	if (cfg.version) {
		print_version(prog);
		rc = 0;
		goto out_cfg;
	}
	log_setup(prog, (enum log_level)cfg.log_level, (enum log_format)cfg.log_format);
	if (tls_init() < 0) {
		fprintf(stderr, "%s: cannot initialise wolfSSL\n", prog);
		goto out_cfg;
	}
	if (sock_resolve(cfg.listen, &listen, 1, &why) < 0) {
		fprintf(stderr, "%s: --listen: %s: %s\n", prog, cfg.listen, why);
		goto out_tls;
	}
	if (daemon_tunnel_open(&t, &cfg, &listen, prepare, err, sizeof(err)) < 0) {
		config_escape(err, sizeof(err));	/* an allow-file's junk, say */
		fprintf(stderr, "%s: %s\n", prog, err);
		goto out_tls;
	}
	if (cfg.check) {
		config_print(&cfg, stdout);
		printf("# configuration OK\n");
		rc = 0;
		goto out_ctx;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg.max_conns);
	if (audit_open(cfg.audit_file, cfg.audit_forward, cfg.audit_tag, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		rc = 1;
		goto out_ctx;
	}
	{
		struct reload r;

		reload_init(&r, &cfg, &t);
		rc = workers_run(&t, &listen, (int)cfg.workers, &r.hooks);
		reload_close(&r);
	}
	audit_close();
out_ctx:
	daemon_tunnel_close(&t);
out_tls:
	tls_cleanup();
out_cfg:
	config_free(&cfg);
	return rc;
}
