/* daemon: shared start-up and shutdown of tlsfwd-client and tlsfwd-server. */
#include "daemon.h"

#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "sandbox.h"
#include "tls.h"
#include "worker.h"

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

/* pin_allocator(): fix glibc's thresholds for handing memory back.  Left
 * dynamic, one big temporary (a certificate file read at start, say) raises
 * them for the life of the process: each worker's arena then keeps up to
 * twice that at its top after a burst, and malloc_trim() does not touch the
 * top of a thread's arena.  Fixed, an arena gives back its top as it frees. */
static void pin_allocator(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 512 * 1024);
}

int daemon_tunnel_open(struct tunnel *t, const struct config *cfg,
    const struct sock_addr *listen, char *err, size_t errsz)
{
	t->connect_timeout = cfg->connect_timeout;
	t->handshake_timeout = cfg->handshake_timeout;
	t->drain_timeout = cfg->drain_timeout;
	t->max_conns = cfg->max_conns;
	if (cfg->max_handshakes_per_server > 0) {	/* each worker its share, at least one */
		t->open_cap = cfg->max_handshakes_per_server / (cfg->workers > 0 ? cfg->workers : 1);
		if (t->open_cap < 1)
			t->open_cap = 1;
	}
	t->resume = cfg->tls_resume;
	t->tcp_keepalive = (int)cfg->tcp_keepalive;
	pthread_mutex_init(&t->policy.lock, NULL);
	reach_init(&t->reach, !cfg->accept_while_unreachable, t->role->lost_msg,
	    t->role->found_msg);
	if (t->role->prepare(cfg, listen, t, err, errsz) < 0 ||
	    (t->policy.cur = tls_policy_new(cfg, t->role, err, errsz)) == NULL) {
		daemon_tunnel_close(t);
		return -1;
	}
	return 0;
}

int daemon_tunnel_start(struct tunnel *t, const struct config *cfg, char *err, size_t errsz)
{
	if (resolver_start(&t->res, &t->ups, (double)cfg->resolve_interval) < 0) {
		snprintf(err, errsz, "cannot start the resolver thread: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* bound_port(fd): the TCP port the listener fd is bound to. */
static int bound_port(int fd)
{
	struct sock_addr a = { .len = sizeof(a.ss) };

	return getsockname(fd, (struct sockaddr *)&a.ss, &a.len) < 0 ? 0 : (int)sock_port(&a);
}

/* daemon_run(t, cfg, listen, http, mfd): the start-up order — bind the listeners and
 * (done by the caller) load the files as whoever started us; drop to --user;
 * install the sandbox while only this thread exists; then start the threads
 * (the role's, the resolver, the metrics server on mfd, the workers),
 * which all run under it. */
static int daemon_run(struct tunnel *t, struct config *cfg, const struct sock_addr *listen,
    const struct daemon_http *http, int mfd)
{
	const struct role *role = t->role;
	int n = (int)cfg->workers, *lfds, i, rc = 1;
	char err[1024];
	struct reload r;
	void *mh = NULL;

	if ((lfds = calloc((size_t)n, sizeof(*lfds))) == NULL) {
		log_error("out of memory", NULL);
		goto out_mfd;
	}
	if (workers_listen(listen, n, lfds) < 0) {
		free(lfds);
		goto out_mfd;
	}
	if (sandbox_user(cfg->user, err, sizeof(err)) < 0 ||
	    sandbox_enter(cfg, t, bound_port(lfds[0]), err, sizeof(err)) < 0 ||
	    (role->start != NULL && role->start(cfg, err, sizeof(err)) < 0)) {
		fprintf(stderr, "%s: %s\n", role->prog, err);
		goto out;
	}
	if (daemon_tunnel_start(t, cfg, err, sizeof(err)) < 0)
		goto out_stop;
	if (mfd >= 0) {
		mh = http->start(t, mfd, err, sizeof(err));	/* takes mfd */
		mfd = -1;
		if (mh == NULL) {
			snprintf(err + strlen(err), sizeof(err) - strlen(err), " (--metrics-listen)");
			goto out_stop;
		}
		log_info("serving metrics", "listen=%s", cfg->metrics_listen);
	}
	reload_init(&r, cfg, t);
	rc = workers_run(t, listen, lfds, n, &r.hooks);	/* closes lfds */
	n = 0;
	reload_close(&r);
	if (role->stop != NULL)
		role->stop();
	if (mh != NULL)
		http->stop(mh);
	goto out;
out_stop:
	fprintf(stderr, "%s: %s\n", role->prog, err);
	if (role->stop != NULL)
		role->stop();
out:
	for (i = 0; i < n; i++)
		close(lfds[i]);
	free(lfds);
out_mfd:
	if (mfd >= 0)
		close(mfd);
	return rc;
}

void daemon_tunnel_close(struct tunnel *t)
{
	resolver_stop(&t->res);
	tls_policy_set(&t->policy, NULL);
	pthread_mutex_destroy(&t->policy.lock);
	reach_destroy(&t->reach);
	if (t->role->cleanup != NULL)
		t->role->cleanup(t);
	upstreams_free(&t->ups);
}

static void print_version(const char *prog)
{
	char buf[160];

	printf("%s %s\n%s\nlibev %d.%d\n", prog, TLSFWD_VERSION, tls_version_info(buf, sizeof(buf)),
	    ev_version_major(), ev_version_minor());
}

/* metrics_listen(prog, cfg, http, addr): check --metrics-listen (loopback
 * unless --allow-remote-metrics) into addr.  1 if set, 0 if not, -1 (said
 * on stderr) if it cannot be. */
static int metrics_listen(const char *prog, const struct config *cfg,
    const struct daemon_http *http, struct sock_addr *addr)
{
	const char *why;

	if (cfg->metrics_listen == NULL)
		return 0;
	if (http == NULL) {
		fprintf(stderr, "%s: --metrics-listen: not served by this program\n", prog);
		return -1;
	}
	if (sock_resolve(cfg->metrics_listen, addr, 1, &why) < 0) {
		fprintf(stderr, "%s: --metrics-listen: %s: %s\n", prog, cfg->metrics_listen, why);
		return -1;
	}
	if (!sock_is_loopback(addr) && !cfg->allow_remote_metrics) {
		fprintf(stderr, "%s: --metrics-listen: %s is not a loopback address: the metrics "
		    "name peers' refusals and upstreams (set --allow-remote-metrics to serve them "
		    "there)\n", prog, cfg->metrics_listen);
		return -1;
	}
	return 1;
}

int daemon_main(const struct role *role, const struct daemon_http *http, int argc, char **argv)
{
	const char *prog = role->prog;
	struct tunnel t = { .role = role };
	struct sock_addr listen, maddr;
	int has_metrics, mfd = -1;
	struct config cfg;
	char err[1024];
	const char *why;
	int rc = 1;

	pin_allocator();
	if (config_load(&cfg, role, prog, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto out_cfg;
	}
	if (cfg.help) {
		config_usage(role->id, prog, stdout);
		rc = 0;
		goto out_cfg;
	}
	if (cfg.version) {
		print_version(prog);
		rc = 0;
		goto out_cfg;
	}
	log_setup(prog, (enum log_level)cfg.log_level, (enum log_format)cfg.log_format);
	(void)notify_init();	/* before any thread: it edits the environment */
	if (tls_init() < 0) {
		fprintf(stderr, "%s: cannot initialise wolfSSL\n", prog);
		goto out_cfg;
	}
	if (sock_resolve(cfg.listen, &listen, 1, &why) < 0) {
		fprintf(stderr, "%s: --listen: %s: %s\n", prog, cfg.listen, why);
		goto out_tls;
	}
	if ((has_metrics = metrics_listen(prog, &cfg, http, &maddr)) < 0)
		goto out_tls;
	if (daemon_tunnel_open(&t, &cfg, &listen, err, sizeof(err)) < 0) {
		config_escape(err, sizeof(err));	/* an allow-file's junk, say */
		fprintf(stderr, "%s: %s\n", prog, err);
		goto out_tls;
	}
	if (cfg.check && sandbox_user_check(cfg.user, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto out_ctx;
	}
	if (cfg.check) {
		config_print(&cfg, stdout);
		printf("# configuration OK\n");
		rc = 0;
		goto out_ctx;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg.max_conns);
	{
		struct tls_policy *p = tls_policy_get(&t.policy);

		metrics_expiry_lines(p, time(NULL));
		tls_policy_release(p);
	}
	if (has_metrics) {
		/* Bound and libmicrohttpd loaded (files read) here, before any
		 * privilege drop or sandbox; its thread starts in daemon_run(). */
		if ((mfd = sock_listen(&maddr, 0)) < 0) {
			fprintf(stderr, "%s: --metrics-listen: cannot listen on %s: %s\n", prog,
			    cfg.metrics_listen, strerror(errno));
			goto out_ctx;
		}
		if (http->load(err, sizeof(err)) < 0) {
			close(mfd);
			fprintf(stderr, "%s: --metrics-listen: %s\n", prog, err);
			goto out_ctx;
		}
	}
	rc = daemon_run(&t, &cfg, &listen, http, mfd);
out_ctx:
	daemon_tunnel_close(&t);
out_tls:
	tls_cleanup();
out_cfg:
	notify_close();
	config_free(&cfg);
	return rc;
}
