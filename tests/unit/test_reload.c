/* test_reload: shared/reload.{h,c} -- the hooks it hands the workers, the
 * inotify watch on the files' directories, and that a reload is attempted
 * only when a file changed (or when forced), keeping the policy in force if
 * the new files do not load. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reload.h"
#include "server.h"
#include "tls.h"

struct fx {
	char dir[64];
	char cert[96], key[96], ca[96];
	struct config cfg;
	struct tunnel t;
	struct reload r;
};

/* put(path, text): write text to path (replacing it). */
static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/tlsfwd-reload-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->cert, sizeof(f->cert), "%s/cert.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", f->dir);
	put(f->cert, "not a certificate\n");
	put(f->key, "not a key\n");
	put(f->ca, "not a CA\n");
	f->cfg.role = ROLE_SERVER;
	f->cfg.cert = f->cert;
	f->cfg.key = f->key;
	f->cfg.ca = f->ca;
	f->t.role = &server_role;
	pthread_mutex_init(&f->t.policy.lock, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	reload_close(&f->r);
	pthread_mutex_destroy(&f->t.policy.lock);
	unlink(f->cert);
	unlink(f->key);
	unlink(f->ca);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* readable(fd): whether fd has an event within two seconds. */
static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1;
}

static void test_init_sets_hooks_and_watch(void **state)
{
	struct fx *f = *state;

	reload_init(&f->r, &f->cfg, &f->t);
	assert_non_null(f->r.hooks.reload);
	assert_non_null(f->r.hooks.reopen);
	assert_ptr_equal(f->r.hooks.arg, &f->r);
	assert_true(f->r.hooks.watch_fd >= 0);
	reload_close(&f->r);
	assert_int_equal(f->r.hooks.watch_fd, -1);
	reload_close(&f->r);	/* twice is harmless */
}

static void test_unchanged_files_no_reload(void **state)
{
	struct fx *f = *state;
	unsigned long long sig;

	reload_init(&f->r, &f->cfg, &f->t);
	sig = f->r.files_sig;
	f->r.hooks.reload(f->r.hooks.arg, 0);
	assert_true(f->r.files_sig == sig);
	assert_null(f->t.policy.cur);
}

static void test_change_is_watched_and_failed_load_keeps_policy(void **state)
{
	struct fx *f = *state;
	unsigned long long sig;
	char buf[4096];

	reload_init(&f->r, &f->cfg, &f->t);
	sig = f->r.files_sig;
	put(f->cert, "still not a certificate, but longer\n");
	assert_true(readable(f->r.hooks.watch_fd));
	assert_true(read(f->r.hooks.watch_fd, buf, sizeof(buf)) > 0);
	f->r.hooks.reload(f->r.hooks.arg, 0);
	assert_true(f->r.files_sig != sig);	/* seen: the next change is compared to it */
	assert_null(f->t.policy.cur);		/* the junk did not load: nothing swapped in */
	sig = f->r.files_sig;
	f->r.hooks.reload(f->r.hooks.arg, 1);	/* SIGHUP: tried even though unchanged */
	assert_true(f->r.files_sig == sig);
	assert_null(f->t.policy.cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_sets_hooks_and_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_files_no_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_is_watched_and_failed_load_keeps_policy,
		    setup, teardown),
	};

	if (tls_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
