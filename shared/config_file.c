/* config_file: the config file's syntax, both ways: the reader ("key = value"
 * lines, # comments, quotes) and config_print(), which writes the effective
 * configuration so that the reader takes it back unchanged (--check). */
#include "config_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_opt.h"

/* trim(s): s without its leading white space; its trailing white space cut. */
static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* strip_comment(line): cut a '#' that starts the line or follows white space,
 * unless it stands inside double quotes. */
static void strip_comment(char *line)
{
	int quoted = 0;
	char *p;

	for (p = line; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

/** config_file_read(cfg, path, err, errsz): apply every "key = value" line
 *  of path to cfg.  Returns 0, or -1 with "FILE:LINE: key: reason" in err. */
int config_file_read(struct config *cfg, const char *path, char *err, size_t errsz)
{
	unsigned char seen[CONFIG_NOPTS] = { 0 };
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = -1;
	ssize_t len;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errsz, "%s: cannot read config file: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		char *s, *eq, *key, *val;
		const struct opt *o;
		char whybuf[256];
		const char *why;
		size_t vlen;

		lineno++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			snprintf(err, errsz, "%s:%d: NUL byte in the line (not a text file?)", path,
			    lineno);
			goto out;
		}
		strip_comment(line);
		s = trim(line);
		if (*s == '\0')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: %s: expected key = value", path, lineno, s);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val[vlen - 1] = '\0';
			val++;
		}
		o = config_opt_find(cfg->role, key, strlen(key));
		if (o == NULL || (o->flags & F_CLI_ONLY)) {
			snprintf(err, errsz, "%s:%d: %s: unknown option%s", path, lineno, key,
			    o != NULL ? " in a config file" : "");
			goto out;
		}
		if (o->type != OPT_LIST && seen[o - config_opts]++) {
			snprintf(err, errsz, "%s:%d: %s: given twice", path, lineno, key);
			goto out;
		}
		if ((why = config_opt_set(cfg, o, val, whybuf, sizeof(whybuf))) != NULL) {
			char shown[512];

			snprintf(err, errsz, "%s:%d: %s: %s: %s", path, lineno, key, why,
			    config_opt_shown(o, val, shown, sizeof(shown)));
			goto out;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errsz, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(fp);
	return rc;
}

/* cut_as_comment(v, quoted, after_space): non-zero if strip_comment() would
 * cut a line inside v, written there after an opening quote (quoted) or
 * after white space (after_space). */
static int cut_as_comment(const char *v, int quoted, int after_space)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted &&
		    (p == v ? after_space : isspace((unsigned char)p[-1])))
			return 1;
	}
	return 0;
}

/* print_str(out, name, v): "name = v", quoted when the reader would
 * otherwise take part of v as a comment, drop its edge white space or its
 * enclosing quotes; "name =v" when the quotes would be cut as a comment
 * (the reader cuts a '#' only after white space). */
static void print_str(FILE *out, const char *name, const char *v)
{
	size_t n = strlen(v);
	int quote = cut_as_comment(v, 0, 1) || n == 0 || isspace((unsigned char)v[0]) ||
	    isspace((unsigned char)v[n - 1]) || (v[0] == '"' && v[n - 1] == '"');

	if (!quote)
		fprintf(out, "%s = %s\n", name, v);
	else if (!cut_as_comment(v, 1, 0))
		fprintf(out, "%s = \"%s\"\n", name, v);
	else
		fprintf(out, "%s =%s\n", name, v);
}

/* print_seconds(out, name, d): the shortest form that reads back exactly. */
static void print_seconds(FILE *out, const char *name, double d)
{
	char buf[40];
	int prec;

	for (prec = 6; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*g", prec, d);
	fprintf(out, "%s = %s\n", name, buf);
}

/* print_value(cfg, o, out): o's value in cfg as config-file lines (one per
 * list entry, a comment if unset). */
static void print_value(const struct config *cfg, const struct opt *o, FILE *out)
{
	const void *f = config_opt_cfield(cfg, o);
	char shown[512];
	int i;

	switch (o->type) {
	case OPT_STR:
		if (*(char *const *)f != NULL)
			print_str(out, o->name,
			    config_opt_shown(o, *(char *const *)f, shown, sizeof(shown)));
		else
			fprintf(out, "# %s is not set\n", o->name);
		break;
	case OPT_LIST:
		for (i = 0; i < ((const struct strlist *)f)->n; i++)
			print_str(out, o->name, ((const struct strlist *)f)->v[i]);
		break;
	case OPT_INT:
		fprintf(out, "%s = %ld\n", o->name, *(const long *)f);
		break;
	case OPT_SECONDS:
		print_seconds(out, o->name, *(const double *)f);
		break;
	case OPT_BOOL:
		fprintf(out, "%s = %s\n", o->name, *(const int *)f ? "true" : "false");
		break;
	case OPT_ENUM:
		fprintf(out, "%s = %s\n", o->name, o->choices[*(const int *)f]);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	size_t i;

	fprintf(out, "# %s effective configuration\n", cfg->prog);
	for (i = 0; i < CONFIG_NOPTS; i++)
		if ((config_opts[i].roles & cfg->role) && !(config_opts[i].flags & F_CLI_ONLY))
			print_value(cfg, &config_opts[i], out);
}
