/* reload: the files a configuration names are watched (inotify on their
 * directories); a change that settles, or SIGHUP, builds a new TLS policy
 * for the tunnel, put in force only if all of it loads.  SIGUSR1 reopens
 * the log-like files.  The workers call back through reload's hooks. */
#ifndef TLSFWD_RELOAD_H
#define TLSFWD_RELOAD_H

#include "config.h"
#include "conn.h"
#include "worker.h"

struct reload {
	const struct config *cfg;
	struct tunnel *t;
	unsigned long long files_sig;	/* of the files in force */
	struct workers_hooks hooks;	/* for workers_run() or worker_watch() */
};

/** reload_init(r, cfg, t): start watching the files cfg names (a warning
 *  if inotify is missing: SIGHUP still reloads); r->hooks is then ready. */
void reload_init(struct reload *r, const struct config *cfg, struct tunnel *t);

/** reload_close(r): stop watching. */
void reload_close(struct reload *r);

/** reload_each_file(cfg, role, fn, arg): call fn on every file a reload
 *  reads again: --cert, --key, --ca, --key-pass-file, each --crl, and the
 *  role's own (an allow-file). */
void reload_each_file(const struct config *cfg, const struct role *role,
    void (*fn)(const char *, void *), void *arg);

#endif
