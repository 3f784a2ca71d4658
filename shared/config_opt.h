/* config_opt: the option table behind both the command line and the config
 * file, and the parsing of one value into its field.  Shared by config.c
 * (defaults, flags, validation) and config_file.c (the file, --check);
 * nothing outside config*.c includes it. */
#ifndef TLSFWD_CONFIG_OPT_H
#define TLSFWD_CONFIG_OPT_H

#include <stddef.h>

#include "config.h"

enum opt_type { OPT_STR, OPT_LIST, OPT_INT, OPT_SECONDS, OPT_BOOL, OPT_ENUM };

#define F_REQUIRED 1	/* must be set for the roles it applies to */
#define F_CLI_ONLY 2	/* not a config-file key */
#define F_ADDR 4	/* a HOST:PORT or [V6]:PORT, checked as it is read */
#define F_SECRET 8	/* a URL whose password --check and errors do not show */

struct opt {
	const char *name;
	enum opt_type type;
	unsigned roles, flags;
	size_t off;
	const char *def_client, *def_server;	/* parsed like user input */
	long min, max;				/* OPT_INT */
	const char *const *choices;		/* OPT_ENUM, NULL-terminated */
	const char *help;
};

#define O(f) offsetof(struct config, f)

#define CONFIG_NOPTS 58	/* entries in config_opts[] (checked where it is defined) */

/* Every option, in --help and --check order. */
extern const struct opt config_opts[];

/* config_opt_field(cfg, o): where o's value lives in cfg. */
static inline void *config_opt_field(struct config *cfg, const struct opt *o)
{
	return (char *)cfg + o->off;
}

/* config_opt_cfield(cfg, o): the same, read-only. */
static inline const void *config_opt_cfield(const struct config *cfg, const struct opt *o)
{
	return (const char *)cfg + o->off;
}

/** config_opt_find(role, name, len): the option of role named by the len
 *  bytes at name, or NULL. */
const struct opt *config_opt_find(enum role_id role, const char *name, size_t len);

/** config_opt_set(cfg, o, value, why, whysz): parse value into o's field (a
 *  list gets one more entry).  NULL, or the reason (which may be in why). */
const char *config_opt_set(struct config *cfg, const struct opt *o, const char *value,
    char *why, size_t whysz);

/** config_opt_shown(o, value, buf, bufsz): value as it may be shown (--check,
 *  an error): for an F_SECRET option, a URL's password as ***; value
 *  itself, or buf. */
const char *config_opt_shown(const struct opt *o, const char *value, char *buf, size_t bufsz);

/** config_opt_clear(cfg, o): free and empty o's field if it holds a string
 *  or a list. */
void config_opt_clear(struct config *cfg, const struct opt *o);

#endif
