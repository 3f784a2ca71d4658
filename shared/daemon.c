/* daemon: shared start-up and shutdown of tlsfwd-client and tlsfwd-server. */
#include "daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
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

/* each_file(cfg, fn, arg): call fn on every file a reload reads. */
static void each_file(const struct config *cfg, void (*fn)(const char *, void *), void *arg)
{
	const char *one[] = { cfg->cert, cfg->key, cfg->ca, cfg->key_pass_file };
	size_t i;
	int k;

	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		if (one[i] != NULL)
			fn(one[i], arg);
	for (k = 0; k < cfg->crl.n; k++)
		fn(cfg->crl.v[k], arg);
	if (cfg->allow_file != NULL)
		fn(cfg->allow_file, arg);
}

static void sig_add(const char *path, void *arg)
{
	unsigned long long *h = arg;
	struct stat st;
	unsigned long long v[5] = { 0 };
	int i;

	if (stat(path, &st) == 0) {	/* follows symlinks: Kubernetes swaps them */
		v[0] = st.st_dev;
		v[1] = st.st_ino;
		v[2] = (unsigned long long)st.st_size;
		v[3] = (unsigned long long)st.st_mtim.tv_sec;
		v[4] = (unsigned long long)st.st_mtim.tv_nsec;
	}
	for (i = 0; i < 5; i++)
		*h = (*h ^ v[i]) * 1099511628211ULL;	/* FNV-1a over the words */
}

/* files_signature(cfg): changes whenever any file a reload reads changes. */
static unsigned long long files_signature(const struct config *cfg)
{
	unsigned long long h = 14695981039346656037ULL;

	each_file(cfg, sig_add, &h);
	return h;
}

/* daemon_reload(arg, forced): build a new policy from the files; put it in
 * force only if all of it loads, else keep the old one and say why. */
static void daemon_reload(void *arg, int forced)
{
	struct reloader *d = arg;
	unsigned long long sig = files_signature(d->cfg);
	struct tls_policy *p;
	char err[1024];

	if (!forced && sig == d->files_sig)
		return;
	d->files_sig = sig;
	if ((p = tls_policy_new(d->cfg, d->t->role, err, sizeof(err))) == NULL) {
		log_error("reload failed: the configuration in force stays", "reason=%s", err);
		return;
	}
	tls_policy_set(&d->t->policy, p);
	log_info("reloaded: new connections use the new files", "trigger=%s",
	    forced ? "SIGHUP" : "file change");
	reach_kick(&d->t->reach);	/* new keys or CAs may be what was missing */
}

/* daemon_reopen(arg): SIGUSR1, after logrotate moved the audit file. */
static void daemon_reopen(void *arg)
{
	struct reloader *d = arg;

	if (d->t->role->reopen != NULL)
		d->t->role->reopen();
}

static void watch_add(const char *path, void *arg)
{
	int fd = *(int *)arg;
	char dir[4096];

	/* Watch the directory: files are replaced by rename or symlink swap. */
	snprintf(dir, sizeof(dir), "%s", path);
	if (inotify_add_watch(fd, dirname(dir), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
	    IN_CREATE | IN_DELETE | IN_ATTRIB) < 0)
		log_warn("cannot watch for changes; SIGHUP still reloads", "file=%s reason=%s",
		    path, strerror(errno));
}

/* watch_files(cfg): an inotify fd watching the directories of every file a
 * reload reads, or -1 (logged) if inotify is not available. */
static int watch_files(const struct config *cfg)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0) {
		log_warn("cannot watch files for changes; SIGHUP still reloads", "reason=%s",
		    strerror(errno));
		return -1;
	}
	each_file(cfg, watch_add, &fd);
	return fd;
}

void reloader_init(struct reloader *r, const struct config *cfg, struct tunnel *t)
{
	r->cfg = cfg;
	r->t = t;
	r->files_sig = files_signature(cfg);
	r->hooks.reload = daemon_reload;
	r->hooks.reopen = daemon_reopen;
	r->hooks.watch_fd = watch_files(cfg);
	r->hooks.arg = r;
}

void reloader_close(struct reloader *r)
{
	if (r->hooks.watch_fd >= 0)
		close(r->hooks.watch_fd);
	r->hooks.watch_fd = -1;
}

int daemon_tunnel_open(struct tunnel *t, const struct config *cfg,
    const struct sock_addr *listen, char *err, size_t errsz)
{
	t->connect_timeout = cfg->connect_timeout;
	t->handshake_timeout = cfg->handshake_timeout;
	t->drain_timeout = cfg->drain_timeout;
	t->max_conns = cfg->max_conns;
	t->resume = cfg->tls_resume;
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

void daemon_tunnel_close(struct tunnel *t)
{
	int i;

	tls_policy_set(&t->policy, NULL);
	pthread_mutex_destroy(&t->policy.lock);
	reach_destroy(&t->reach);
	if (t->role->cleanup != NULL)
		t->role->cleanup(t);
	for (i = 0; i < t->nup; i++)
		upstream_free(&t->up[i]);
	free(t->up);
	t->up = NULL;
	t->nup = 0;
}

static void print_version(const char *prog)
{
	char buf[160];

	printf("%s %s\n%s\nlibev %d.%d\n", prog, TLSFWD_VERSION, tls_version_info(buf, sizeof(buf)),
	    ev_version_major(), ev_version_minor());
}

int daemon_main(const struct role *role, int argc, char **argv)
{
	const char *prog = role->prog;
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
	if (tls_init() < 0) {
		fprintf(stderr, "%s: cannot initialise wolfSSL\n", prog);
		goto out_cfg;
	}
	if (sock_resolve(cfg.listen, &listen, 1, &why) < 0) {
		fprintf(stderr, "%s: --listen: %s: %s\n", prog, cfg.listen, why);
		goto out_tls;
	}
	if (daemon_tunnel_open(&t, &cfg, &listen, err, sizeof(err)) < 0) {
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
	if (role->start != NULL && role->start(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		rc = 1;
		goto out_ctx;
	}
	{
		struct reloader r;

		reloader_init(&r, &cfg, &t);
		rc = workers_run(&t, &listen, (int)cfg.workers, &r.hooks);
		reloader_close(&r);
	}
	if (role->stop != NULL)
		role->stop();
out_ctx:
	daemon_tunnel_close(&t);
out_tls:
	tls_cleanup();
out_cfg:
	config_free(&cfg);
	return rc;
}
