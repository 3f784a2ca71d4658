/* reload: watch the files a reload reads, rebuild the TLS policy on a
 * settled change or SIGHUP, reopen log-like files on SIGUSR1. */
#include "reload.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "role.h"
#include "tls.h"

void reload_each_file(const struct config *cfg, const struct role *role,
    void (*fn)(const char *, void *), void *arg)
{
	const char *one[] = { cfg->cert, cfg->key, cfg->ca, cfg->key_pass_file };
	size_t i;
	int k;

	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		if (one[i] != NULL)
			fn(one[i], arg);
	for (k = 0; k < cfg->crl.n; k++)
		fn(cfg->crl.v[k], arg);
	if (role->files != NULL)
		role->files(cfg, fn, arg);
}

/* sig_add(path, arg): fold path's (dev, inode, size, mtime) into the
 * signature at arg (zeros if it cannot be read). */
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

/* files_signature(cfg, role): changes whenever any file a reload reads changes. */
static unsigned long long files_signature(const struct config *cfg, const struct role *role)
{
	unsigned long long h = 14695981039346656037ULL;

	reload_each_file(cfg, role, sig_add, &h);
	return h;
}

/* reload_files(arg, forced): build a new policy from the files; put it in
 * force only if all of it loads, else keep the old one and say why.  0
 * reloaded, 1 nothing changed (not forced), -1 failed. */
static int reload_files(void *arg, int forced)
{
	struct reload *r = arg;
	unsigned long long sig = files_signature(r->cfg, r->t->role);
	struct tls_policy *p;
	char err[1024];

	if (!forced && sig == r->files_sig)
		return 1;
	r->files_sig = sig;
	if ((p = tls_policy_new(r->cfg, r->t->role, err, sizeof(err))) == NULL) {
		log_error("reload failed: the configuration in force stays", "reason=%s", err);
		atomic_fetch_add(&metrics_proc.reloads[0], 1);
		return -1;
	}
	atomic_fetch_add(&metrics_proc.reloads[1], 1);
	metrics_expiry_lines(p, time(NULL));
	tls_policy_set(&r->t->policy, p);
	log_info("reloaded: new connections use the new files", "trigger=%s",
	    forced ? "SIGHUP" : "file change");
	reach_kick(&r->t->reach);	/* new keys or CAs may be what was missing */
	return 0;
}

/* reload_reopen(arg): SIGUSR1: the role reopens what logrotate moved. */
static void reload_reopen(void *arg)
{
	const struct reload *r = arg;

	if (r->t->role->reopen != NULL)
		r->t->role->reopen();
}

/* watch_add(path, arg): watch path's directory on the inotify fd at arg
 * (a warning if it cannot). */
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

/* watch_files(cfg, role): an inotify fd watching the directories of every file a
 * reload reads, or -1 (logged) if inotify is not available. */
static int watch_files(const struct config *cfg, const struct role *role)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0) {
		log_warn("cannot watch files for changes; SIGHUP still reloads", "reason=%s",
		    strerror(errno));
		return -1;
	}
	reload_each_file(cfg, role, watch_add, &fd);
	return fd;
}

void reload_init(struct reload *r, const struct config *cfg, struct tunnel *t)
{
	r->cfg = cfg;
	r->t = t;
	r->files_sig = files_signature(cfg, t->role);
	r->hooks.reload = reload_files;
	r->hooks.reopen = reload_reopen;
	r->hooks.watch_fd = watch_files(cfg, t->role);
	r->hooks.arg = r;
}

void reload_close(struct reload *r)
{
	if (r->hooks.watch_fd >= 0)
		close(r->hooks.watch_fd);
	r->hooks.watch_fd = -1;
}
