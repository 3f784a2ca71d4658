/* config: a daemon's configuration from its defaults, the --config file and
 * the flags (in that order, each overriding the last), then validated; its
 * --help text and its release.  The option table is config_opt.c, the file's
 * syntax config_file.c. */
#include "config.h"
#include "role.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"
#include "config_opt.h"

/* The --config value, found before anything else is parsed. */
static const char *find_config_flag(int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
	}
	return path;
}

/* config_only_pins(cfg): the server's rules are all certificate or key pins
 * (and there is at least one), so no CA is needed.  An --allow-file may hold
 * other rules; it is checked again when the file is loaded. */
static int config_only_pins(const struct config *cfg)
{
	return cfg->allow_fingerprint.n + cfg->allow_spki.n > 0 && cfg->allow_cn.n == 0 &&
	    cfg->allow_dns.n == 0 && cfg->allow_uri.n == 0 && cfg->allow_ou.n == 0;
}

/* validate(cfg, err, errsz): what can be checked once every source is read:
 * required options, exclusive ones; --workers 0 becomes the CPU count.
 * Returns 0, or -1 with the message in err. */
static int validate(struct config *cfg, char *err, size_t errsz)
{
	size_t i;

	for (i = 0; i < CONFIG_NOPTS; i++) {
		const struct opt *o = &config_opts[i];
		const void *f = config_opt_cfield(cfg, o);

		if (!(o->flags & F_REQUIRED) || !(o->roles & cfg->role))
			continue;
		/* A server that only admits pinned certificates needs no CA. */
		if (o->off == O(ca) && cfg->role == ROLE_SERVER && config_only_pins(cfg))
			continue;
		if ((o->type == OPT_STR && *(char *const *)f == NULL) ||
		    (o->type == OPT_LIST && ((const struct strlist *)f)->n == 0)) {
			snprintf(err, errsz, "--%s: required", o->name);
			return -1;
		}
	}
	if (cfg->key_pass_env != NULL && cfg->key_pass_file != NULL) {
		snprintf(err, errsz, "--key-pass-env: give either it or --key-pass-file, not both");
		return -1;
	}
	if ((cfg->upstream_hostname != NULL || cfg->upstream_username != NULL ||
	    cfg->upstream_password_file != NULL) && cfg->upstream_shared_key_file == NULL) {
		snprintf(err, errsz, "--%s: needs --upstream-shared-key-file",
		    cfg->upstream_hostname != NULL ? "upstream-hostname" :
		    cfg->upstream_username != NULL ? "upstream-username" : "upstream-password-file");
		return -1;
	}
	if ((cfg->upstream_username != NULL) != (cfg->upstream_password_file != NULL)) {
		snprintf(err, errsz, "--%s: needs --%s", cfg->upstream_username != NULL ?
		    "upstream-username" : "upstream-password-file", cfg->upstream_username != NULL ?
		    "upstream-password-file" : "upstream-username");
		return -1;
	}
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = n < 1 ? 1 : n > 256 ? 256 : n;
	}
	return 0;
}

/* load(cfg, role, prog, argc, argv, err, errsz): config_load() before its
 * message is made safe to print. */
static int load(struct config *cfg, const struct role *role, const char *prog, int argc,
    char **argv, char *err, size_t errsz)
{
	unsigned char cli_list_seen[CONFIG_NOPTS] = { 0 };
	const char *path;
	size_t i;
	int a;

	memset(cfg, 0, sizeof(*cfg));
	cfg->role = role->id;
	cfg->check_value = role->check_value;
	cfg->prog = prog;
	for (i = 0; i < CONFIG_NOPTS; i++) {
		const char *def = role->id == ROLE_CLIENT ? config_opts[i].def_client :
		    config_opts[i].def_server;
		char whybuf[256];
		const char *why;

		if ((config_opts[i].roles & role->id) && def != NULL &&
		    (why = config_opt_set(cfg, &config_opts[i], def, whybuf, sizeof(whybuf))) != NULL) {
			snprintf(err, errsz, "--%s: default: %s", config_opts[i].name, why);
			return -1;
		}
	}

	if ((path = find_config_flag(argc, argv)) != NULL &&
	    config_file_read(cfg, path, err, errsz) < 0)
		return -1;

	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *name, *val = NULL, *eq, *why;
		char whybuf[256];
		const struct opt *o;
		size_t nlen;

		if (!strcmp(arg, "--check")) {
			cfg->check = 1;
			continue;
		}
		if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
			cfg->version = 1;
			continue;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			cfg->help = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			snprintf(err, errsz, "%s: unexpected argument (options start with --)", arg);
			return -1;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		o = config_opt_find(role->id, name, nlen);
		if (o == NULL && eq == NULL && nlen > 3 && strncmp(name, "no-", 3) == 0) {
			/* --no-NAME turns a boolean off. */
			o = config_opt_find(role->id, name + 3, nlen - 3);
			if (o != NULL && o->type != OPT_BOOL)
				o = NULL;
			else if (o != NULL)
				val = "false";
		}
		if (o == NULL) {
			snprintf(err, errsz, "--%.*s: unknown option (see --help)", (int)nlen, name);
			return -1;
		}
		if (val != NULL)
			;	/* --no-NAME */
		else if (eq != NULL)
			val = eq + 1;
		else if (o->type == OPT_BOOL)
			val = "true";
		else if (a + 1 < argc)
			val = argv[++a];
		else {
			snprintf(err, errsz, "--%s: needs a value", o->name);
			return -1;
		}
		if (o->off == O(config_file))
			continue;	/* already read */
		if (o->type == OPT_LIST && !cli_list_seen[o - config_opts]++)
			config_opt_clear(cfg, o);	/* flags replace the file's list */
		if ((why = config_opt_set(cfg, o, val, whybuf, sizeof(whybuf))) != NULL) {
			char shown[512];

			snprintf(err, errsz, "--%s: %s: %s", o->name, why,
			    config_opt_shown(o, val, shown, sizeof(shown)));
			return -1;
		}
	}
	if (path != NULL && (cfg->config_file = strdup(path)) == NULL) {
		snprintf(err, errsz, "%s", strerror(ENOMEM));
		return -1;
	}
	if (cfg->help || cfg->version)
		return 0;
	return validate(cfg, err, errsz);
}

/* esc_len(c): how many bytes config_escape() writes for the byte c. */
static size_t esc_len(unsigned char c)
{
	return c == '\\' ? 2 : c < 0x20 || c > 0x7e ? 4 : 1;
}

void config_escape(char *s, size_t errsz)
{
	char *raw = strdup(s), *o = s;
	const unsigned char *p;
	size_t left = errsz, need = 1, keep;

	if (raw == NULL || errsz < 4)
		goto out;
	for (p = (const unsigned char *)raw; *p != '\0'; p++)
		need += esc_len(*p);
	keep = need > errsz ? 4 : 1;	/* room for "..." and the NUL, or the NUL */
	for (p = (const unsigned char *)raw; *p != '\0'; p++) {
		size_t n = esc_len(*p);

		if (n + keep > left) {
			strcpy(o, "...");
			goto out;
		}
		if (*p == '\\')
			memcpy(o, "\\\\", 2);
		else if (n == 4)
			snprintf(o, 5, "\\x%02x", *p);
		else
			*o = (char)*p;
		o += n;
		left -= n;
	}
	*o = '\0';
out:
	free(raw);
}

int config_load(struct config *cfg, const struct role *role, const char *prog, int argc,
    char **argv, char *err, size_t errsz)
{
	int rc = load(cfg, role, prog, argc, argv, err, errsz);

	if (rc < 0)
		config_escape(err, errsz);
	return rc;
}

void config_usage(enum role_id role, const char *prog, FILE *out)
{
	size_t i;

	fprintf(out, "usage: %s [--config FILE] [options]\n\noptions:\n", prog);
	for (i = 0; i < CONFIG_NOPTS; i++) {
		const struct opt *o = &config_opts[i];
		const char *def = role == ROLE_CLIENT ? o->def_client : o->def_server;

		if (!(o->roles & role))
			continue;
		fprintf(out, "  --%-24s %s", o->name, o->help);
		if (o->flags & F_REQUIRED)
			fprintf(out, " (required)");
		else if (def != NULL)
			fprintf(out, " (default %s)", def);
		fputc('\n', out);
	}
	fprintf(out, "  --%-24s %s\n", "check", "validate the configuration, print it and exit");
	fprintf(out, "  --%-24s %s\n", "version", "print versions and build features");
	fprintf(out, "  --%-24s %s\n", "help", "this text");
}

void config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < CONFIG_NOPTS; i++)
		if (config_opts[i].roles & cfg->role)
			config_opt_clear(cfg, &config_opts[i]);
}
