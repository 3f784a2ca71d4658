/* daemon: shared start-up and shutdown of tlsfwd-client and tlsfwd-server. */
#include "daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
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
	t.connect_timeout = cfg.connect_timeout;
	t.handshake_timeout = cfg.handshake_timeout;
	t.drain_timeout = cfg.drain_timeout;
	t.max_conns = cfg.max_conns;
	t.resume = cfg.tls_resume;
	if (prepare(&cfg, &listen, &t, err, sizeof(err)) < 0 ||
	    (t.ctx = tls_ctx_new(&cfg, err, sizeof(err))) == NULL) {
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
	rc = workers_run(&t, &listen, (int)cfg.workers);
out_ctx:
	wolfSSL_CTX_free(t.ctx);
out_tls:
	free(t.up);
	tls_cleanup();
out_cfg:
	config_free(&cfg);
	return rc;
}
