/* test_config: shared/config.{h,c} -- defaults per role, the flag forms, the
 * config file reader, file-then-flags precedence, list options, every error
 * message, the required options, --check/--version/--help, config_print
 * round trips and config_usage.  Leaks are caught by ASan in `make check`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "server.h"
#include "log.h"

#define MAXARGS 48
#define FP64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_SHORT "too short for a SHA-256 fingerprint (64 hex digits)"
#define DNS_EMPTY "empty label in DNS name"
#define NPATHS 4

/* Each test gets two configs and up to NPATHS temp files; teardown frees and
 * removes them even when an assertion fails. */
struct fx {
	struct config cfg, cfg2;
	char path[NPATHS][32];
	int npath;
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	config_free(&f->cfg);
	config_free(&f->cfg2);
	for (i = 0; i < f->npath; i++)
		unlink(f->path[i]);
	free(f);
	return 0;
}

/* tmp_path(f): a new empty temp file in /tmp, removed by teardown. */
static const char *tmp_path(struct fx *f)
{
	char *p;
	int fd;

	assert_true(f->npath < NPATHS);
	p = f->path[f->npath];
	snprintf(p, sizeof(f->path[0]), "/tmp/tlsfwd-unit-XXXXXX");
	fd = mkstemp(p);
	assert_true(fd >= 0);
	f->npath++;
	close(fd);
	return p;
}

/* tmp_file(f, text): a temp file holding text; its path. */
static const char *tmp_file(struct fx *f, const char *text)
{
	const char *p = tmp_path(f);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return p;
}

/* load(f, cfg, role, arg..., NULL): config_load with these flags after the
 * program name; cfg is freed first, so a test may load again. */
static int load(struct fx *f, struct config *cfg, enum role_id role, ...)
{
	char *argv[MAXARGS + 1];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = role == ROLE_CLIENT ? "tlsfwd-client" : "tlsfwd-server";
	va_start(ap, role);
	while ((a = va_arg(ap, const char *)) != NULL) {
		assert_true(argc < MAXARGS);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	config_free(cfg);
	f->err[0] = '\0';
	return config_load(cfg, role == ROLE_CLIENT ? &client_role : &server_role, argv[0], argc, argv, f->err, sizeof(f->err));
}

#define CLIENT_REQ "--server", "logs.example.com:24284", "--ca", "/etc/ca.pem", \
	"--cert", "/etc/c.pem", "--key", "/etc/k.pem"
#define SERVER_REQ "--ca", "/etc/ca.pem", "--cert", "/etc/c.pem", "--key", "/etc/k.pem"

/* The load must succeed; on failure show the message. */
#define assert_loads(f, cfg, role, ...) do {					\
	if (load((f), (cfg), (role), __VA_ARGS__) != 0)				\
		fail_msg("config_load failed: %s", (f)->err);			\
} while (0)

/* The load must fail with exactly this message. */
#define assert_load_error(f, want, role, ...) do {				\
	if (load((f), &(f)->cfg, (role), __VA_ARGS__) != -1)			\
		fail_msg("config_load accepted it; wanted \"%s\"", (want));	\
	assert_string_equal((f)->err, (want));					\
} while (0)

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

static void test_client_defaults(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, NULL);
	assert_int_equal(c->role, ROLE_CLIENT);
	assert_string_equal(c->prog, "tlsfwd-client");
	assert_null(c->config_file);
	assert_string_equal(c->listen, "127.0.0.1:24224");
	assert_int_equal(c->server.n, 1);
	assert_string_equal(c->server.v[0], "logs.example.com:24284");
	assert_null(c->server_name);
	assert_null(c->upstream);
	assert_string_equal(c->ca, "/etc/ca.pem");
	assert_string_equal(c->cert, "/etc/c.pem");
	assert_string_equal(c->key, "/etc/k.pem");
	assert_null(c->key_pass_env);
	assert_null(c->key_pass_file);
	assert_int_equal(c->tls_min, TLS_MIN_13);
	assert_true(c->connect_timeout == 10.0);
	assert_true(c->drain_timeout == 60.0);
	assert_true(c->handshake_timeout == 0.0);	/* server only */
	assert_int_equal(c->max_conns, 4096);
	assert_int_equal(c->workers, online_cpus());	/* 0 means one per CPU */
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_format, LOG_LOGFMT);
	assert_int_equal(c->allow_remote_plaintext, 0);
	assert_int_equal(c->check, 0);
	assert_int_equal(c->version, 0);
	assert_int_equal(c->help, 0);
	assert_string_equal(f->err, "");
}

static void test_server_defaults(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, NULL);
	assert_int_equal(c->role, ROLE_SERVER);
	assert_string_equal(c->prog, "tlsfwd-server");
	assert_string_equal(c->listen, "0.0.0.0:24284");
	assert_string_equal(c->upstream, "127.0.0.1:24224");
	assert_int_equal(c->server.n, 0);
	assert_null(c->server_name);
	assert_int_equal(c->tls_min, TLS_MIN_13);
	assert_true(c->connect_timeout == 10.0);
	assert_true(c->handshake_timeout == 10.0);
	assert_true(c->drain_timeout == 60.0);
	assert_int_equal(c->max_conns, 4096);
	assert_int_equal(c->workers, online_cpus());
	assert_int_equal(c->allow_remote_plaintext, 0);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_format, LOG_LOGFMT);
}

static void test_flag_forms(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ,
	    "--listen", "127.0.0.1:1000",
	    "--server-name=logs.internal",
	    "--key-pass-env", "TLSFWD_PASS",
	    "--tls-min=1.2",
	    "--connect-timeout", "2.5",
	    "--drain-timeout=90s",
	    "--max-conns=7",
	    "--workers", "3",
	    "--log-level", "debug",
	    "--log-format=json",
	    NULL);
	assert_string_equal(c->listen, "127.0.0.1:1000");
	assert_string_equal(c->server_name, "logs.internal");
	assert_string_equal(c->key_pass_env, "TLSFWD_PASS");
	assert_int_equal(c->tls_min, TLS_MIN_12);
	assert_true(c->connect_timeout == 2.5);
	assert_true(c->drain_timeout == 90.0);
	assert_int_equal(c->max_conns, 7);
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->log_format, LOG_JSON);

	/* A repeated scalar flag: the last one wins. */
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--listen", "127.0.0.1:1",
	    "--listen=127.0.0.1:2", "--max-conns", "5", "--max-conns", "6", NULL);
	assert_string_equal(c->listen, "127.0.0.1:2");
	assert_int_equal(c->max_conns, 6);

	/* Only the first '=' splits; the value may hold more. */
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--key=/k/a=b.pem", NULL);
	assert_string_equal(c->key, "/k/a=b.pem");

	/* A value may start with "--" when given as the next argument. */
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--key-pass-file", "--odd", NULL);
	assert_string_equal(c->key_pass_file, "--odd");

	/* The server's own options. */
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--upstream", "10.0.0.5:24224",
	    "--handshake-timeout=0.25", "--key-pass-file", "/etc/pass", NULL);
	assert_string_equal(c->upstream, "10.0.0.5:24224");
	assert_true(c->handshake_timeout == 0.25);
	assert_string_equal(c->key_pass_file, "/etc/pass");
}

static void test_bool_flag(void **state)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	struct fx *f = *state;
	struct config *c = &f->cfg;
	char arg[64];
	size_t i;

	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--allow-remote-plaintext", NULL);
	assert_int_equal(c->allow_remote_plaintext, 1);
	for (i = 0; i < 4; i++) {
		snprintf(arg, sizeof(arg), "--allow-remote-plaintext=%s", yes[i]);
		assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, arg, NULL);
		assert_int_equal(c->allow_remote_plaintext, 1);
		snprintf(arg, sizeof(arg), "--allow-remote-plaintext=%s", no[i]);
		assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--allow-remote-plaintext", arg, NULL);
		assert_int_equal(c->allow_remote_plaintext, 0);
	}
	assert_load_error(f, "--allow-remote-plaintext: expected true or false: maybe",
	    ROLE_CLIENT, CLIENT_REQ, "--allow-remote-plaintext=maybe", NULL);
	assert_load_error(f, "--allow-remote-plaintext: expected true or false: TRUE",
	    ROLE_CLIENT, CLIENT_REQ, "--allow-remote-plaintext=TRUE", NULL);
	/* A bare bool flag takes no value: the next word is not its value. */
	assert_load_error(f, "true: unexpected argument (options start with --)",
	    ROLE_CLIENT, CLIENT_REQ, "--allow-remote-plaintext", "true", NULL);
	/* --no-NAME turns a boolean off, and only a boolean. */
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--tls-resume", "--no-tls-resume", NULL);
	assert_int_equal(c->tls_resume, 0);
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, NULL);
	assert_int_equal(c->tls_resume, 1);
	assert_load_error(f, "--no-workers: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--no-workers", NULL);
	assert_load_error(f, "--no-tls-resume: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--no-tls-resume=x", NULL);
	/* It is a client option. */
	assert_load_error(f, "--allow-remote-plaintext: unknown option (see --help)",
	    ROLE_SERVER, SERVER_REQ, "--allow-remote-plaintext", NULL);
}

static void test_seconds(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=0.001",
	    "--drain-timeout", "86400", NULL);
	assert_true(c->connect_timeout == 0.001);
	assert_true(c->drain_timeout == 86400.0);
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=1e1s", NULL);
	assert_true(c->connect_timeout == 10.0);

	assert_load_error(f, "--connect-timeout: not a number of seconds: soon",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=soon", NULL);
	assert_load_error(f, "--connect-timeout: not a number of seconds: 5ms",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=5ms", NULL);
	assert_load_error(f, "--connect-timeout: not a number of seconds: 5ss",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=5ss", NULL);
	assert_load_error(f, "--connect-timeout: not a number of seconds: ",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=", NULL);
	assert_load_error(f, "--connect-timeout: not a number of seconds: inf",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=inf", NULL);
	assert_load_error(f, "--connect-timeout: not a number of seconds: nan",
	    ROLE_CLIENT, CLIENT_REQ, "--connect-timeout=nan", NULL);
	assert_load_error(f, "--drain-timeout: not a number of seconds: 1e999",
	    ROLE_CLIENT, CLIENT_REQ, "--drain-timeout=1e999", NULL);
	assert_load_error(f, "--drain-timeout: must be between 0.001 and 86400 seconds: 0",
	    ROLE_CLIENT, CLIENT_REQ, "--drain-timeout=0", NULL);
	assert_load_error(f, "--drain-timeout: must be between 0.001 and 86400 seconds: -1",
	    ROLE_CLIENT, CLIENT_REQ, "--drain-timeout", "-1", NULL);
	assert_load_error(f, "--drain-timeout: must be between 0.001 and 86400 seconds: 0.0009",
	    ROLE_CLIENT, CLIENT_REQ, "--drain-timeout=0.0009", NULL);
	assert_load_error(f, "--handshake-timeout: must be between 0.001 and 86400 seconds: 86401",
	    ROLE_SERVER, SERVER_REQ, "--handshake-timeout=86401", NULL);
}

/* range_error(f, name, value, limit): --name=value is refused as out of range
 * with "--name: ...: value", and the message names the limit crossed. */
static void range_error(struct fx *f, const char *name, const char *value,
    const char *limit)
{
	char arg[64], prefix[64], suffix[64], reason[256];
	size_t elen;

	snprintf(arg, sizeof(arg), "--%s=%s", name, value);
	snprintf(prefix, sizeof(prefix), "--%s: ", name);
	snprintf(suffix, sizeof(suffix), ": %s", value);
	if (load(f, &f->cfg, ROLE_CLIENT, CLIENT_REQ, arg, NULL) != -1)
		fail_msg("%s accepted", arg);
	elen = strlen(f->err);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 ||
	    elen < strlen(prefix) + strlen(suffix) ||
	    strcmp(f->err + elen - strlen(suffix), suffix) != 0 ||
	    strstr(f->err, "whole number") != NULL)
		fail_msg("%s: unexpected message \"%s\"", arg, f->err);
	/* Look for the limit between the prefix and the echoed value. */
	snprintf(reason, sizeof(reason), "%.*s", (int)(elen - strlen(prefix) - strlen(suffix)),
	    f->err + strlen(prefix));
	if (strstr(reason, limit) == NULL)
		fail_msg("%s: message does not give the limit %s: \"%s\"", arg, limit, f->err);
}

static void test_whole_numbers(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--max-conns=1", "--workers=256", NULL);
	assert_int_equal(c->max_conns, 1);
	assert_int_equal(c->workers, 256);
	assert_loads(f, c, ROLE_CLIENT, CLIENT_REQ, "--max-conns=1000000", "--workers=1", NULL);
	assert_int_equal(c->max_conns, 1000000);
	assert_int_equal(c->workers, 1);
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--workers=0", NULL);
	assert_int_equal(c->workers, online_cpus());

	assert_load_error(f, "--max-conns: not a whole number: many",
	    ROLE_CLIENT, CLIENT_REQ, "--max-conns=many", NULL);
	assert_load_error(f, "--max-conns: not a whole number: 12x",
	    ROLE_CLIENT, CLIENT_REQ, "--max-conns=12x", NULL);
	assert_load_error(f, "--max-conns: not a whole number: 1.5",
	    ROLE_CLIENT, CLIENT_REQ, "--max-conns=1.5", NULL);
	assert_load_error(f, "--max-conns: not a whole number: ",
	    ROLE_CLIENT, CLIENT_REQ, "--max-conns=", NULL);
	assert_load_error(f, "--max-conns: not a whole number: 99999999999999999999999",
	    ROLE_CLIENT, CLIENT_REQ, "--max-conns", "99999999999999999999999", NULL);
	range_error(f, "max-conns", "0", "1");
	range_error(f, "max-conns", "-5", "1");
	range_error(f, "workers", "-1", "0");
}

/*- An out-of-range number must be told the limit it crossed.  config.c picks
 * one of two fixed strings by whether min is 0, so --workers 257 is told
 * "out of range (0 to 1000000)" and --max-conns 2000000 "must be at least 1". */
static void test_range_errors_name_the_range(void **state)
{
	struct fx *f = *state;

	range_error(f, "workers", "257", "256");
	range_error(f, "max-conns", "1000001", "1000000");
	if (strstr(f->err, "at least") != NULL)
		fail_msg("--max-conns 1000001: told \"%s\"", f->err);
}

static void test_enums(void **state)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const int level_vals[] = { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
	struct fx *f = *state;
	struct config *c = &f->cfg;
	char arg[64];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(arg, sizeof(arg), "--log-level=%s", levels[i]);
		assert_loads(f, c, ROLE_SERVER, SERVER_REQ, arg, NULL);
		assert_int_equal(c->log_level, level_vals[i]);
	}
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--log-format", "json", NULL);
	assert_int_equal(c->log_format, LOG_JSON);
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--log-format", "logfmt", NULL);
	assert_int_equal(c->log_format, LOG_LOGFMT);
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--tls-min", "1.2", NULL);
	assert_int_equal(c->tls_min, TLS_MIN_12);
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--tls-min", "1.3", NULL);
	assert_int_equal(c->tls_min, TLS_MIN_13);

	assert_load_error(f, "--tls-min: not one of the accepted values: 1.1",
	    ROLE_SERVER, SERVER_REQ, "--tls-min=1.1", NULL);
	assert_load_error(f, "--tls-min: not one of the accepted values: 1.2 ",
	    ROLE_SERVER, SERVER_REQ, "--tls-min=1.2 ", NULL);
	assert_load_error(f, "--log-level: not one of the accepted values: verbose",
	    ROLE_SERVER, SERVER_REQ, "--log-level=verbose", NULL);
	assert_load_error(f, "--log-level: not one of the accepted values: INFO",
	    ROLE_SERVER, SERVER_REQ, "--log-level=INFO", NULL);
	assert_load_error(f, "--log-format: not one of the accepted values: text",
	    ROLE_SERVER, SERVER_REQ, "--log-format=text", NULL);
}

static void test_flag_errors(void **state)
{
	struct fx *f = *state;

	assert_load_error(f, "--nope: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--nope", NULL);
	assert_load_error(f, "--nope: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--nope=1", NULL);
	assert_load_error(f, "--lis: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--lis=x:1", NULL);
	assert_load_error(f, "--listenx: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--listenx", "x:1", NULL);
	assert_load_error(f, "--check: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--check=yes", NULL);
	/* Options of the other role are unknown. */
	assert_load_error(f, "--upstream: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--upstream", "h:1", NULL);
	assert_load_error(f, "--handshake-timeout: unknown option (see --help)",
	    ROLE_CLIENT, CLIENT_REQ, "--handshake-timeout=5", NULL);
	assert_load_error(f, "--server: unknown option (see --help)",
	    ROLE_SERVER, SERVER_REQ, "--server", "h:1", NULL);
	assert_load_error(f, "--server-name: unknown option (see --help)",
	    ROLE_SERVER, SERVER_REQ, "--server-name=x", NULL);
	/* Words that are not options. */
	assert_load_error(f, "extra: unexpected argument (options start with --)",
	    ROLE_CLIENT, CLIENT_REQ, "extra", NULL);
	assert_load_error(f, "-x: unexpected argument (options start with --)",
	    ROLE_CLIENT, CLIENT_REQ, "-x", NULL);
	assert_load_error(f, "--: unexpected argument (options start with --)",
	    ROLE_CLIENT, CLIENT_REQ, "--", NULL);
	assert_load_error(f, "-: unexpected argument (options start with --)",
	    ROLE_CLIENT, CLIENT_REQ, "-", NULL);
	/* Values. */
	assert_load_error(f, "--cert: needs a value",
	    ROLE_CLIENT, "--server", "h:1", "--ca", "a", "--key", "k", "--cert", NULL);
	assert_load_error(f, "--server: needs a value",
	    ROLE_CLIENT, "--server", NULL);
	assert_load_error(f, "--ca: empty value: ",
	    ROLE_CLIENT, CLIENT_REQ, "--ca=", NULL);
	assert_load_error(f, "--ca: empty value: ",
	    ROLE_CLIENT, CLIENT_REQ, "--ca", "", NULL);
	assert_load_error(f, "--server: empty value: ",
	    ROLE_CLIENT, CLIENT_REQ, "--server=", NULL);
	assert_load_error(f, "--config: needs a value",
	    ROLE_SERVER, SERVER_REQ, "--config", NULL);
	/* Addresses are checked as they are read. */
	assert_load_error(f, "--listen: expected host:port: garbage",
	    ROLE_CLIENT, CLIENT_REQ, "--listen", "garbage", NULL);
	assert_load_error(f, "--upstream: port must be a number from 1 to 65535: h:0",
	    ROLE_SERVER, SERVER_REQ, "--upstream=h:0", NULL);
	assert_load_error(f, "--server: an IPv6 address must be written [address]:port: ::1:5",
	    ROLE_CLIENT, CLIENT_REQ, "--server", "::1:5", NULL);
}

static void test_required_per_role(void **state)
{
	struct fx *f = *state;

	assert_load_error(f, "--server: required", ROLE_CLIENT, NULL);
	assert_load_error(f, "--server: required", ROLE_CLIENT,
	    "--ca", "a", "--cert", "c", "--key", "k", NULL);
	assert_load_error(f, "--ca: required", ROLE_CLIENT,
	    "--server", "h:1", "--cert", "c", "--key", "k", NULL);
	assert_load_error(f, "--cert: required", ROLE_CLIENT,
	    "--server", "h:1", "--ca", "a", "--key", "k", NULL);
	assert_load_error(f, "--key: required", ROLE_CLIENT,
	    "--server", "h:1", "--ca", "a", "--cert", "c", NULL);

	assert_load_error(f, "--ca: required", ROLE_SERVER, NULL);
	assert_load_error(f, "--ca: required", ROLE_SERVER, "--cert", "c", "--key", "k", NULL);
	assert_load_error(f, "--cert: required", ROLE_SERVER, "--ca", "a", "--key", "k", NULL);
	assert_load_error(f, "--key: required", ROLE_SERVER, "--ca", "a", "--cert", "c", NULL);
	/* The server needs no --server. */
	assert_loads(f, &f->cfg, ROLE_SERVER, "--ca", "a", "--cert", "c", "--key", "k", NULL);
	assert_int_equal(f->cfg.server.n, 0);
}

static void test_key_pass_sources_exclusive(void **state)
{
	struct fx *f = *state;

	assert_load_error(f, "--key-pass-env: give either it or --key-pass-file, not both",
	    ROLE_CLIENT, CLIENT_REQ, "--key-pass-env", "P", "--key-pass-file", "/p", NULL);
	assert_load_error(f, "--key-pass-env: give either it or --key-pass-file, not both",
	    ROLE_SERVER, SERVER_REQ, "--key-pass-file=/p", "--key-pass-env=P", NULL);
	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ, "--key-pass-file=/p", NULL);
	assert_string_equal(f->cfg.key_pass_file, "/p");
	assert_null(f->cfg.key_pass_env);
}

static void test_help_version_check(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;

	/* --help and --version need none of the required options. */
	assert_loads(f, c, ROLE_CLIENT, "--help", NULL);
	assert_int_equal(c->help, 1);
	assert_int_equal(c->version, 0);
	assert_int_equal(c->check, 0);
	assert_loads(f, c, ROLE_CLIENT, "-h", NULL);
	assert_int_equal(c->help, 1);
	assert_loads(f, c, ROLE_SERVER, "--version", NULL);
	assert_int_equal(c->version, 1);
	assert_int_equal(c->help, 0);
	assert_loads(f, c, ROLE_SERVER, "-V", NULL);
	assert_int_equal(c->version, 1);
	/* They still see the other flags. */
	assert_loads(f, c, ROLE_SERVER, "--log-level=debug", "--help", NULL);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_load_error(f, "--nope: unknown option (see --help)", ROLE_SERVER,
	    "--help", "--nope", NULL);

	/* --check validates like a normal start. */
	assert_load_error(f, "--ca: required", ROLE_SERVER, "--check", NULL);
	assert_loads(f, c, ROLE_SERVER, SERVER_REQ, "--check", NULL);
	assert_int_equal(c->check, 1);
	assert_int_equal(c->help, 0);
	assert_int_equal(c->version, 0);
	assert_loads(f, c, ROLE_CLIENT, "--check", CLIENT_REQ, NULL);
	assert_int_equal(c->check, 1);
}

static void test_file_syntax(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p = tmp_file(f,
	    "# tlsfwd-client test config\n"
	    "\n"
	    "   \t\n"
	    "listen = 127.0.0.1:5000\n"
	    "server=first.example:24284\n"
	    "  server   =   second.example:24284   # the fallback\n"
	    "\tserver-name = \"logs.example\"\n"
	    "ca = /etc/tls#1/ca.pem\n"
	    "cert = \"/etc/with space/c.pem\"\n"
	    "key = /etc/k.pem\r\n"
	    "key-pass-env = \"\n"
	    "connect-timeout = 3s\n"
	    "drain-timeout = 0.5\n"
	    "max-conns = 100 #max\n"
	    "workers = 2\n"
	    "tls-min = 1.2\n"
	    "allow-remote-plaintext = yes\n"
	    "log-level = warn\n"
	    "log-format = json\n"
	    "#log-level = debug\n"
	    "   # indented comment\n"
	    "server = third.example:1");	/* no final newline */
	char arg[64];

	assert_loads(f, c, ROLE_CLIENT, "--config", p, NULL);
	assert_non_null(c->config_file);
	assert_string_equal(c->config_file, p);
	assert_string_equal(c->listen, "127.0.0.1:5000");
	assert_int_equal(c->server.n, 3);
	assert_string_equal(c->server.v[0], "first.example:24284");
	assert_string_equal(c->server.v[1], "second.example:24284");
	assert_string_equal(c->server.v[2], "third.example:1");
	assert_string_equal(c->server_name, "logs.example");
	assert_string_equal(c->ca, "/etc/tls#1/ca.pem");	/* '#' inside a word */
	assert_string_equal(c->cert, "/etc/with space/c.pem");
	assert_string_equal(c->key, "/etc/k.pem");		/* CR trimmed */
	assert_string_equal(c->key_pass_env, "\"");		/* a lone quote stays */
	assert_true(c->connect_timeout == 3.0);
	assert_true(c->drain_timeout == 0.5);
	assert_int_equal(c->max_conns, 100);
	assert_int_equal(c->workers, 2);
	assert_int_equal(c->tls_min, TLS_MIN_12);
	assert_int_equal(c->allow_remote_plaintext, 1);
	assert_int_equal(c->log_level, LOG_WARN);
	assert_int_equal(c->log_format, LOG_JSON);

	/* --config=FILE reads the same. */
	snprintf(arg, sizeof(arg), "--config=%s", p);
	assert_loads(f, c, ROLE_CLIENT, arg, NULL);
	assert_string_equal(c->config_file, p);
	assert_int_equal(c->server.n, 3);
	assert_int_equal(c->max_conns, 100);
}

static void test_file_then_flags(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p = tmp_file(f,
	    "listen = 0.0.0.0:7000\n"
	    "upstream = 10.0.0.1:24224\n"
	    "ca = /file/ca.pem\n"
	    "cert = /file/c.pem\n"
	    "key = /file/k.pem\n"
	    "max-conns = 50\n"
	    "log-level = debug\n"
	    "handshake-timeout = 4\n");

	/* Flags override the file wherever they stand, even before --config. */
	assert_loads(f, c, ROLE_SERVER, "--listen", "127.0.0.1:7001", "--config", p,
	    "--max-conns=60", NULL);
	assert_string_equal(c->listen, "127.0.0.1:7001");
	assert_int_equal(c->max_conns, 60);
	/* What the flags leave alone comes from the file... */
	assert_string_equal(c->upstream, "10.0.0.1:24224");
	assert_string_equal(c->ca, "/file/ca.pem");
	assert_string_equal(c->cert, "/file/c.pem");
	assert_string_equal(c->key, "/file/k.pem");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_true(c->handshake_timeout == 4.0);
	/* ...and what neither sets is the default. */
	assert_true(c->drain_timeout == 60.0);
	assert_int_equal(c->log_format, LOG_LOGFMT);

	/* A file's required options satisfy validation. */
	assert_loads(f, c, ROLE_SERVER, "--config", p, NULL);
	assert_string_equal(c->listen, "0.0.0.0:7000");
	assert_int_equal(c->max_conns, 50);

	/* A flag error is still reported as a flag, after the file was read. */
	assert_load_error(f, "--max-conns: not a whole number: 1k", ROLE_SERVER,
	    "--config", p, "--max-conns=1k", NULL);
}

static void test_config_flag_last_wins(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p1 = tmp_file(f, "ca = /one\ncert = /c\nkey = /k\n");
	const char *p2 = tmp_file(f, "ca = /two\ncert = /c\nkey = /k\n");

	assert_loads(f, c, ROLE_SERVER, "--config", p1, "--config", p2, NULL);
	assert_string_equal(c->ca, "/two");
	assert_string_equal(c->config_file, p2);
}

static void test_lists(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p = tmp_file(f,
	    "server = a.example:1\n"
	    "server = b.example:2\n"
	    "ca = /ca\n"
	    "cert = /c\n"
	    "key = /k\n");

	/* Repeated keys in the file append, in order. */
	assert_loads(f, c, ROLE_CLIENT, "--config", p, NULL);
	assert_int_equal(c->server.n, 2);
	assert_string_equal(c->server.v[0], "a.example:1");
	assert_string_equal(c->server.v[1], "b.example:2");

	/* Flags replace the file's list; repeated flags append to each other. */
	assert_loads(f, c, ROLE_CLIENT, "--server", "c.example:3", "--config", p,
	    "--server=d.example:4", NULL);
	assert_int_equal(c->server.n, 2);
	assert_string_equal(c->server.v[0], "c.example:3");
	assert_string_equal(c->server.v[1], "d.example:4");

	assert_loads(f, c, ROLE_CLIENT, "--config", p, "--server", "e.example:5", NULL);
	assert_int_equal(c->server.n, 1);
	assert_string_equal(c->server.v[0], "e.example:5");

	/* Without a file, repeated flags make the list. */
	assert_loads(f, c, ROLE_CLIENT, "--server", "x:1", "--ca", "a", "--server", "y:2",
	    "--cert", "c", "--key", "k", "--server", "z:3", NULL);
	assert_int_equal(c->server.n, 3);
	assert_string_equal(c->server.v[0], "x:1");
	assert_string_equal(c->server.v[1], "y:2");
	assert_string_equal(c->server.v[2], "z:3");
}

/* file_error(f, role, text, line, rest): loading a file holding text fails
 * with "PATH:LINE: rest". */
static void file_error(struct fx *f, enum role_id role, const char *text, int line,
    const char *rest)
{
	const char *p;
	char want[512];

	p = tmp_file(f, text);
	snprintf(want, sizeof(want), "%s:%d: %s", p, line, rest);
	if (load(f, &f->cfg, role, "--config", p, SERVER_REQ, NULL) != -1)
		fail_msg("accepted; wanted \"%s\"", want);
	assert_string_equal(f->err, want);
	unlink(f->path[--f->npath]);
}

static void test_file_errors(void **state)
{
	struct fx *f = *state;

	file_error(f, ROLE_SERVER, "nope = 1\n", 1, "nope: unknown option");
	file_error(f, ROLE_SERVER, "# c\n\nlisten = 127.0.0.1:1\nnope = 1\n", 4,
	    "nope: unknown option");
	file_error(f, ROLE_SERVER, "config = /etc/other.conf\n", 1,
	    "config: unknown option in a config file");
	file_error(f, ROLE_SERVER, "check = true\n", 1, "check: unknown option");
	file_error(f, ROLE_SERVER, "--listen = 127.0.0.1:1\n", 1, "--listen: unknown option");
	file_error(f, ROLE_SERVER, "= 5\n", 1, ": unknown option");
	/* Keys of the other role. */
	file_error(f, ROLE_SERVER, "server = h:1\n", 1, "server: unknown option");
	file_error(f, ROLE_SERVER, "allow-remote-plaintext = true\n", 1,
	    "allow-remote-plaintext: unknown option");
	file_error(f, ROLE_CLIENT, "server = h:1\nupstream = h:2\n", 2, "upstream: unknown option");
	file_error(f, ROLE_CLIENT, "server = h:1\nhandshake-timeout = 3\n", 2,
	    "handshake-timeout: unknown option");
	/* Lines that are not key = value. */
	file_error(f, ROLE_SERVER, "\n\nlisten 127.0.0.1:1\n", 3,
	    "listen 127.0.0.1:1: expected key = value");
	file_error(f, ROLE_SERVER, "[server]\n", 1, "[server]: expected key = value");
	/* A scalar key given twice, even with the same value. */
	file_error(f, ROLE_SERVER, "listen = 127.0.0.1:1\n#\nlisten = 127.0.0.1:1\n", 3,
	    "listen: given twice");
	file_error(f, ROLE_SERVER, "log-level = info\nlog-level = debug\n", 2,
	    "log-level: given twice");
	/* Bad values: "reason: value". */
	file_error(f, ROLE_SERVER, "max-conns = lots\n", 1, "max-conns: not a whole number: lots");
	file_error(f, ROLE_SERVER, "max-conns =\n", 1, "max-conns: not a whole number: ");
	file_error(f, ROLE_SERVER, "drain-timeout = 1m\n", 1,
	    "drain-timeout: not a number of seconds: 1m");
	file_error(f, ROLE_SERVER, "drain-timeout = 100000\n", 1,
	    "drain-timeout: must be between 0.001 and 86400 seconds: 100000");
	file_error(f, ROLE_SERVER, "tls-min = 1.1\n", 1,
	    "tls-min: not one of the accepted values: 1.1");
	file_error(f, ROLE_SERVER, "log-format = \"text\"\n", 1,
	    "log-format: not one of the accepted values: text");
	file_error(f, ROLE_CLIENT, "server = h:1\nallow-remote-plaintext = sure\n", 2,
	    "allow-remote-plaintext: expected true or false: sure");
	file_error(f, ROLE_SERVER, "upstream =\n", 1, "upstream: empty value: ");
	file_error(f, ROLE_SERVER, "upstream = \"\"\n", 1, "upstream: empty value: ");
	file_error(f, ROLE_CLIENT, "server = \n", 1, "server: empty value: ");
	/* The first error stops the read. */
	file_error(f, ROLE_SERVER, "max-conns = x\nnope = 1\n", 1,
	    "max-conns: not a whole number: x");
}

static void test_file_cannot_be_read(void **state)
{
	struct fx *f = *state;
	char want[128];
	const char *p = tmp_path(f);

	unlink(p);
	snprintf(want, sizeof(want), "%s: cannot read config file: No such file or directory", p);
	assert_load_error(f, want, ROLE_SERVER, "--config", p, SERVER_REQ, NULL);

	assert_int_equal(load(f, &f->cfg, ROLE_SERVER, "--config", "/tmp", SERVER_REQ, NULL), -1);
	assert_true(strncmp(f->err, "/tmp: ", 6) == 0);
	assert_non_null(strstr(f->err, "Is a directory"));
}

/* The values of list options that hold rules are checked as they are read,
 * so a bad one is named where it was written: FILE:LINE: key, or --key. */
static void test_list_rule_errors_name_the_line(void **state)
{
	struct fx *f = *state;

	file_error(f, ROLE_SERVER, "allow-cn = web-1\n\nallow-net = 10.0.0.1/8\n", 3,
	    "allow-net: host bits set after the /8 prefix (did you mean 10.0.0.0/8?): 10.0.0.1/8");
	file_error(f, ROLE_SERVER, "allow-net = 10.0.0.0/8\nallow-net = ten\n", 2,
	    "allow-net: not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7): ten");
	file_error(f, ROLE_SERVER, "allow-spki = sha256:" FP64 "\n", 1,
	    "allow-spki: a certificate fingerprint (sha256:) where a key pin (spki:) is "
	    "expected: sha256:" FP64);
	file_error(f, ROLE_SERVER, "allow-fingerprint = abcd\n", 1,
	    "allow-fingerprint: " FP_SHORT ": abcd");
	file_error(f, ROLE_SERVER, "# dns\nallow-dns = a..example.com\n", 2,
	    "allow-dns: " DNS_EMPTY ": a..example.com");
	file_error(f, ROLE_SERVER, "allow-uri = no scheme\n", 1,
	    "allow-uri: not a URI (expected scheme:..., e.g. spiffe://corp/edge/a): no scheme");
	file_error(f, ROLE_CLIENT, "server = h:1\npin-server = cn:web-1\n", 2,
	    "pin-server: expected sha256:HEX or spki:HEX: cn:web-1");
	/* The same from a flag, and good values still load. */
	assert_load_error(f, "--allow-net: not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, "
	    "192.0.2.7): ten", ROLE_SERVER, SERVER_REQ, "--allow-net", "ten", NULL);
	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ, "--allow-net", "10.0.0.0/8",
	    "--allow-dns", "*.example.com", "--allow-spki", "spki:" FP64,
	    "--allow-fingerprint", FP64, NULL);
	assert_int_equal(f->cfg.allow_net.n, 1);
	assert_int_equal(f->cfg.allow_spki.n, 1);
}

/* tmp_bytes(f, data, n): a temp file holding n bytes (NULs too); its path. */
static const char *tmp_bytes(struct fx *f, const char *data, size_t n)
{
	const char *p = tmp_path(f);
	FILE *fp = fopen(p, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	return p;
}

/* A NUL byte does not cut a line short silently; binary junk and control
 * characters are never echoed as they are. */
static void test_file_junk(void **state)
{
	static const char nul[] = "max-conns = 1\nlisten = 127.0.0.1:1\0 # cut\n";
	static const char junk[] = "max-conns = 1\n\x1b[2J\x7f\xff\xfe = 1\n";
	static const char val[] = "audit-tag = a\x1b]0;pwned\x07" "b\n";
	struct fx *f = *state;
	char want[512];
	const char *p;

	p = tmp_bytes(f, nul, sizeof(nul) - 1);
	snprintf(want, sizeof(want), "%s:2: NUL byte in the line (not a text file?)", p);
	assert_load_error(f, want, ROLE_SERVER, "--config", p, SERVER_REQ, NULL);

	p = tmp_bytes(f, junk, sizeof(junk) - 1);
	snprintf(want, sizeof(want), "%s:2: \\x1b[2J\\x7f\\xff\\xfe: unknown option", p);
	assert_load_error(f, want, ROLE_SERVER, "--config", p, SERVER_REQ, NULL);

	p = tmp_bytes(f, val, sizeof(val) - 1);
	snprintf(want, sizeof(want), "%s:1: audit-tag: control character in the value: "
	    "a\\x1b]0;pwned\\x07b", p);
	assert_load_error(f, want, ROLE_SERVER, "--config", p, SERVER_REQ, NULL);

	/* Flags too; a backslash is doubled so the escapes stay unambiguous. */
	assert_load_error(f, "--\\x1b[31m: unknown option (see --help)", ROLE_SERVER,
	    SERVER_REQ, "--\x1b[31m", NULL);
	assert_load_error(f, "--audit-tag: control character in the value: a\\\\b\\x0a",
	    ROLE_SERVER, SERVER_REQ, "--audit-tag", "a\\b\n", NULL);
}

/* config_escape: \xNN for what is not printable ASCII, \\ for a backslash,
 * "..." when the result would not fit. */
static void test_escape(void **state)
{
	char buf[16];

	(void)state;
	snprintf(buf, sizeof(buf), "a\x1b\\\xff\n");
	config_escape(buf, sizeof(buf));
	assert_string_equal(buf, "a\\x1b\\\\\\xff\\x0a");
	snprintf(buf, sizeof(buf), "plain text");
	config_escape(buf, sizeof(buf));
	assert_string_equal(buf, "plain text");
	snprintf(buf, sizeof(buf), "abcdefghi\x01jkl");
	config_escape(buf, sizeof(buf));	/* 9 + 4 + 3 bytes and a NUL: cut */
	assert_string_equal(buf, "abcdefghi...");
	assert_true(strlen(buf) < sizeof(buf));
}

/* --server-name is a host name or an IP literal: no control characters,
 * spaces or raw non-ASCII bytes (they would go out as SNI and to --check). */
static void test_server_name_is_printable(void **state)
{
	struct fx *f = *state;

	assert_load_error(f, "--server-name: control character in the value: "
	    "logs\\x1b[2J.example.com", ROLE_CLIENT, CLIENT_REQ, "--server-name",
	    "logs\x1b[2J.example.com", NULL);
	assert_load_error(f, "--server-name: control character in the value: logs\\x0a",
	    ROLE_CLIENT, CLIENT_REQ, "--server-name=logs\n", NULL);
	assert_load_error(f, "--server-name: not a host name (printable ASCII only; an IDN in "
	    "its xn-- form): b\\xc3\\xbccher.example", ROLE_CLIENT, CLIENT_REQ,
	    "--server-name", "b\xc3\xbc" "cher.example", NULL);
	assert_load_error(f, "--server-name: not a host name (printable ASCII only; an IDN in "
	    "its xn-- form): a b", ROLE_CLIENT, CLIENT_REQ, "--server-name", "a b", NULL);
	assert_loads(f, &f->cfg, ROLE_CLIENT, CLIENT_REQ, "--server-name",
	    "xn--bcher-kva.example", NULL);
	assert_string_equal(f->cfg.server_name, "xn--bcher-kva.example");
}

static void test_help_still_reads_file(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p = tmp_file(f, "log-level = debug\n");

	/* The file is read even when --help is given (flags still apply after). */
	assert_loads(f, c, ROLE_SERVER, "--help", "--config", p, NULL);
	assert_int_equal(c->help, 1);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_string_equal(c->config_file, p);
}

/* print_to(f, cfg): config_print cfg into a new temp file; its path. */
static const char *print_to(struct fx *f, const struct config *cfg)
{
	const char *p = tmp_path(f);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	config_print(cfg, fp);
	assert_int_equal(fclose(fp), 0);
	return p;
}

static char *slurp(const char *path)
{
	static char buf[8192];
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return buf;
}

static void assert_str_or_null(const char *what, const char *a, const char *b)
{
	if (a == NULL && b == NULL)
		return;
	if (a == NULL || b == NULL || strcmp(a, b) != 0)
		fail_msg("%s: \"%s\" != \"%s\"", what, a ? a : "(null)", b ? b : "(null)");
}

#define SAME_NUM(field) do {							\
	if (a->field != b->field)						\
		fail_msg(#field ": %.17g != %.17g", (double)a->field, (double)b->field); \
} while (0)

/* Every option that config_print writes is the same in a and b. */
static void assert_same_config(const struct config *a, const struct config *b)
{
	int i;

	assert_int_equal(a->role, b->role);
	assert_str_or_null("listen", a->listen, b->listen);
	assert_int_equal(a->server.n, b->server.n);
	for (i = 0; i < a->server.n; i++)
		assert_str_or_null("server", a->server.v[i], b->server.v[i]);
	assert_str_or_null("server-name", a->server_name, b->server_name);
	assert_str_or_null("upstream", a->upstream, b->upstream);
	assert_str_or_null("ca", a->ca, b->ca);
	assert_str_or_null("cert", a->cert, b->cert);
	assert_str_or_null("key", a->key, b->key);
	assert_str_or_null("key-pass-env", a->key_pass_env, b->key_pass_env);
	assert_str_or_null("key-pass-file", a->key_pass_file, b->key_pass_file);
	SAME_NUM(tls_min);
	SAME_NUM(connect_timeout);
	SAME_NUM(drain_timeout);
	SAME_NUM(handshake_timeout);
	SAME_NUM(max_conns);
	SAME_NUM(workers);
	SAME_NUM(log_level);
	SAME_NUM(log_format);
	SAME_NUM(allow_remote_plaintext);
}

static void test_print_format(void **state)
{
	struct fx *f = *state;
	const char *text;

	assert_loads(f, &f->cfg, ROLE_CLIENT, "--server", "a.example:1", "--server", "b.example:2",
	    "--ca", "/ca", "--cert", "/c", "--key", "/k", "--workers=2",
	    "--connect-timeout=2.5", "--log-format=json", NULL);
	text = slurp(print_to(f, &f->cfg));
	assert_true(strncmp(text, "# tlsfwd-client effective configuration\n", 40) == 0);
	assert_non_null(strstr(text, "\nlisten = 127.0.0.1:24224\n"));
	assert_non_null(strstr(text, "\nserver = a.example:1\nserver = b.example:2\n"));
	assert_non_null(strstr(text, "\n# server-name is not set\n"));
	assert_non_null(strstr(text, "\nca = /ca\n"));
	assert_non_null(strstr(text, "\ncert = /c\n"));
	assert_non_null(strstr(text, "\nkey = /k\n"));
	assert_non_null(strstr(text, "\n# key-pass-env is not set\n"));
	assert_non_null(strstr(text, "\ntls-min = 1.3\n"));
	assert_non_null(strstr(text, "\nconnect-timeout = 2.5\n"));
	assert_non_null(strstr(text, "\ndrain-timeout = 60\n"));
	assert_non_null(strstr(text, "\nmax-conns = 4096\n"));
	assert_non_null(strstr(text, "\nworkers = 2\n"));
	assert_non_null(strstr(text, "\nallow-remote-plaintext = false\n"));
	assert_non_null(strstr(text, "\nlog-level = info\n"));
	assert_non_null(strstr(text, "\nlog-format = json\n"));
	/* Not a file key, and not the client's. */
	assert_null(strstr(text, "config ="));
	assert_null(strstr(text, "upstream"));
	assert_null(strstr(text, "handshake-timeout"));

	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ, NULL);
	text = slurp(print_to(f, &f->cfg));
	assert_true(strncmp(text, "# tlsfwd-server effective configuration\n", 40) == 0);
	assert_non_null(strstr(text, "\nlisten = 0.0.0.0:24284\n"));
	assert_non_null(strstr(text, "\nupstream = 127.0.0.1:24224\n"));
	assert_non_null(strstr(text, "\nhandshake-timeout = 10\n"));
	assert_null(strstr(text, "\nserver ="));
	assert_null(strstr(text, "server-name"));
	assert_null(strstr(text, "allow-remote-plaintext"));
}

static void test_print_round_trip_client(void **state)
{
	struct fx *f = *state;
	const char *p;

	assert_loads(f, &f->cfg, ROLE_CLIENT,
	    "--listen", "127.0.0.1:4000",
	    "--server", "one.example:24284", "--server", "[2001:db8::1]:24284",
	    "--server-name", "logs.example",
	    "--ca", "/etc/tlsfwd/ca.pem", "--cert", "/etc/tlsfwd/client.pem",
	    "--key", "/etc/tlsfwd/client.key", "--key-pass-file", "/run/pass",
	    "--tls-min", "1.2", "--connect-timeout", "2.5", "--drain-timeout", "0.001",
	    "--max-conns", "77", "--workers", "5", "--allow-remote-plaintext",
	    "--log-level", "error", "--log-format", "json", "--check", NULL);
	p = print_to(f, &f->cfg);
	assert_loads(f, &f->cfg2, ROLE_CLIENT, "--config", p, NULL);
	assert_same_config(&f->cfg, &f->cfg2);

	/* And the defaults. */
	assert_loads(f, &f->cfg, ROLE_CLIENT, CLIENT_REQ, NULL);
	p = print_to(f, &f->cfg);
	assert_loads(f, &f->cfg2, ROLE_CLIENT, "--config", p, NULL);
	assert_same_config(&f->cfg, &f->cfg2);
}

static void test_print_round_trip_server(void **state)
{
	struct fx *f = *state;
	const char *p;

	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ,
	    "--listen", "[::]:24284", "--upstream", "10.1.1.1:24224",
	    "--key-pass-env", "PASS", "--handshake-timeout", "86400",
	    "--connect-timeout=0.125", "--log-level=warn", NULL);
	p = print_to(f, &f->cfg);
	assert_loads(f, &f->cfg2, ROLE_SERVER, "--config", p, NULL);
	assert_same_config(&f->cfg, &f->cfg2);
	assert_true(f->cfg2.handshake_timeout == 86400.0);
	assert_true(f->cfg2.connect_timeout == 0.125);
}

/*- config_print writes seconds with "%g" (6 significant digits), so a timeout
 * of 1.2345678 s reads back as 1.23457 s. */
static void test_print_round_trip_keeps_seconds_exact(void **state)
{
	struct fx *f = *state;
	const char *p;

	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ, "--connect-timeout=1.2345678",
	    "--drain-timeout=12345.678", "--handshake-timeout=0.0011111", NULL);
	p = print_to(f, &f->cfg);
	assert_loads(f, &f->cfg2, ROLE_SERVER, "--config", p, NULL);
	assert_same_config(&f->cfg, &f->cfg2);
}

/*- A value holding " #" (legal in a flag, e.g. a path) is printed bare, and
 * the reader then takes " #..." as a comment: the value comes back cut short.
 * Quoting cannot help either, because comments are cut before quotes are
 * looked at. */
static void test_print_round_trip_keeps_hash_in_value(void **state)
{
	struct fx *f = *state;
	const char *p;

	assert_loads(f, &f->cfg, ROLE_SERVER, SERVER_REQ,
	    "--cert", "/etc/tlsfwd/node #2/cert.pem", NULL);
	p = print_to(f, &f->cfg);
	if (load(f, &f->cfg2, ROLE_SERVER, "--config", p, NULL) != 0)
		fail_msg("re-reading the printed config failed: %s", f->err);
	assert_same_config(&f->cfg, &f->cfg2);
}

/*- A value that starts with a double quote and holds " #" after the closing
 * one (`cert = "node #2"/cert.pem` in a file: the quotes are part of it) was
 * printed in another pair of quotes, which the reader then took as an empty
 * string followed by a comment; likewise a value starting with '#'.  Found by
 * tests/fuzz/fuzz_config.c. */
static void test_print_round_trip_keeps_quotes_in_value(void **state)
{
	struct fx *f = *state;
	const char *p;

	assert_loads(f, &f->cfg, ROLE_SERVER, "--config",
	    tmp_file(f, "cert = \"node #2\"/cert.pem\n"), "--ca", "/ca", "--key", "/k", NULL);
	assert_string_equal(f->cfg.cert, "\"node #2\"/cert.pem");
	p = print_to(f, &f->cfg);
	if (load(f, &f->cfg2, ROLE_SERVER, "--config", p, NULL) != 0)
		fail_msg("re-reading the printed config failed: %s", f->err);
	assert_same_config(&f->cfg, &f->cfg2);

	/* '#' right after the '=' starts no comment; the quotes would. */
	assert_loads(f, &f->cfg, ROLE_SERVER, "--config",
	    tmp_file(f, "cert =# \"a # b \"\n"), "--ca", "/ca", "--key", "/k", NULL);
	assert_string_equal(f->cfg.cert, "# \"a # b \"");
	p = print_to(f, &f->cfg);
	if (load(f, &f->cfg2, ROLE_SERVER, "--config", p, NULL) != 0)
		fail_msg("re-reading the printed config failed: %s", f->err);
	assert_same_config(&f->cfg, &f->cfg2);
}

static void test_free_releases_everything(void **state)
{
	struct fx *f = *state;
	struct config *c = &f->cfg;
	const char *p = tmp_file(f, "server = a:1\nserver = b:2\nserver-name = n\n");

	assert_loads(f, c, ROLE_CLIENT, "--config", p, "--ca", "a", "--cert", "c", "--key", "k",
	    "--key-pass-env", "E", NULL);
	config_free(c);
	assert_null(c->config_file);
	assert_null(c->listen);
	assert_null(c->server.v);
	assert_int_equal(c->server.n, 0);
	assert_null(c->server_name);
	assert_null(c->ca);
	assert_null(c->cert);
	assert_null(c->key);
	assert_null(c->key_pass_env);
	config_free(c);		/* twice is harmless */

	assert_loads(f, c, ROLE_SERVER, "--config", tmp_file(f, "upstream = u:1\n"),
	    SERVER_REQ, "--key-pass-file", "/p", NULL);
	config_free(c);
	assert_null(c->upstream);
	assert_null(c->listen);
	assert_null(c->key_pass_file);
	assert_null(c->config_file);

	/* A failed load leaves what it gathered for config_free (ASan checks). */
	assert_int_equal(load(f, c, ROLE_CLIENT, "--config", p, "--server", "x:1", "--ca", "a",
	    "--max-conns=0", NULL), -1);
	config_free(c);
	assert_null(c->ca);
	assert_null(c->server.v);
	assert_int_equal(load(f, c, ROLE_CLIENT, "--config",
	    tmp_file(f, "server = a:1\nca = x\ncert = y\nmax-conns = 0\n"), NULL), -1);
	config_free(c);
	assert_null(c->ca);
	assert_null(c->server.v);
}

static char *usage_text(enum role_id role, const char *prog)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	config_usage(role, prog, fp);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

static void test_usage(void **state)
{
	char *u;

	(void)state;
	u = usage_text(ROLE_CLIENT, "tlsfwd-client");
	assert_true(strncmp(u, "usage: tlsfwd-client [--config FILE] [options]\n", 47) == 0);
	assert_non_null(strstr(u, "--server "));
	assert_non_null(strstr(u, "repeat for more (required)\n"));
	assert_non_null(strstr(u, "(default 127.0.0.1:24224)\n"));
	assert_non_null(strstr(u, "--allow-remote-plaintext"));
	assert_non_null(strstr(u, "(default 4096)\n"));
	assert_non_null(strstr(u, "--check "));
	assert_non_null(strstr(u, "--version "));
	assert_non_null(strstr(u, "--help "));
	assert_null(strstr(u, "--upstream"));
	assert_null(strstr(u, "--handshake-timeout"));
	free(u);

	u = usage_text(ROLE_SERVER, "tlsfwd-server");
	assert_true(strncmp(u, "usage: tlsfwd-server ", 21) == 0);
	assert_non_null(strstr(u, "--upstream "));
	assert_non_null(strstr(u, "(default 0.0.0.0:24284)\n"));
	assert_non_null(strstr(u, "--handshake-timeout"));
	assert_non_null(strstr(u, "--ca "));
	assert_null(strstr(u, "--server "));
	assert_null(strstr(u, "--allow-remote-plaintext"));
	free(u);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_client_defaults),
		T(test_server_defaults),
		T(test_flag_forms),
		T(test_bool_flag),
		T(test_seconds),
		T(test_whole_numbers),
		T(test_range_errors_name_the_range),
		T(test_enums),
		T(test_flag_errors),
		T(test_required_per_role),
		T(test_key_pass_sources_exclusive),
		T(test_help_version_check),
		T(test_file_syntax),
		T(test_file_then_flags),
		T(test_config_flag_last_wins),
		T(test_lists),
		T(test_file_errors),
		T(test_file_cannot_be_read),
		T(test_list_rule_errors_name_the_line),
		T(test_file_junk),
		T(test_escape),
		T(test_server_name_is_printable),
		T(test_help_still_reads_file),
		T(test_print_format),
		T(test_print_round_trip_client),
		T(test_print_round_trip_server),
		T(test_print_round_trip_keeps_seconds_exact),
		T(test_print_round_trip_keeps_hash_in_value),
		T(test_print_round_trip_keeps_quotes_in_value),
		T(test_free_releases_everything),
		T(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
