/* tagacl: which tags each client may write; see tagacl.h. */
#include "tagacl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "fwd.h"

/* The compiled pattern: a program for a Thompson automaton.  Every state
 * of it is followed at once, so a tag is read once, byte by byte. */
enum op {
	OP_CHAR,	/* the byte c */
	OP_NONDOT,	/* any byte but '.' (a `*`) */
	OP_ANY,		/* any byte but '\n' (a `**`, as Ruby's `.`) */
	OP_SPLIT,	/* go on at x and at y */
	OP_JMP,		/* go on at x */
	OP_DOTEND,	/* only if the next byte is '.' or there is none */
	OP_BEGIN,	/* only at the tag's start */
	OP_MATCH,
};

struct ins {
	unsigned char op, c;
	unsigned short x, y;
};

struct tagacl_pat {
	size_t n;
	struct ins prog[];	/* n instructions: 6 bytes each, about 4 a pattern byte */
};

struct comp {
	struct tagacl_pat *p;
	const char *s;
	int dot;		/* a '.' read, not written yet (it decides what `**` means) */
	int depth;
	const char *why;
};

static int emit(struct comp *cp, int op, int c)
{
	if (cp->p->n >= TAGACL_PROG_MAX) {
		cp->why = "pattern too complex";
		return -1;
	}
	cp->p->prog[cp->p->n] = (struct ins){ (unsigned char)op, (unsigned char)c, 0, 0 };
	return (int)cp->p->n++;
}

/* star(cp, op): op repeated zero or more times. */
static int star(struct comp *cp, int op)
{
	int split, body;

	if ((split = emit(cp, OP_SPLIT, 0)) < 0 || (body = emit(cp, op, 0)) < 0 ||
	    emit(cp, OP_JMP, 0) < 0)
		return -1;
	cp->p->prog[split].x = (unsigned short)body;
	cp->p->prog[split].y = (unsigned short)cp->p->n;
	cp->p->prog[cp->p->n - 1].x = (unsigned short)split;
	return 0;
}

static int seq(struct comp *cp);

/* group(cp): {a,b,...} after its '{': one alternative after another. */
static int group(struct comp *cp)
{
	unsigned short jmps[TAGACL_PATTERN_MAX];
	int split, nj = 0, i;

	if (++cp->depth > TAGACL_DEPTH_MAX) {
		cp->why = "groups nested too deep";
		return -1;
	}
	for (;;) {
		if ((split = emit(cp, OP_SPLIT, 0)) < 0)
			return -1;
		cp->p->prog[split].x = (unsigned short)cp->p->n;
		if (seq(cp) < 0)
			return -1;
		if (*cp->s == '\0') {
			cp->why = "a { without its }";
			return -1;
		}
		if ((i = emit(cp, OP_JMP, 0)) < 0)
			return -1;
		jmps[nj++] = (unsigned short)i;
		cp->p->prog[split].y = (unsigned short)cp->p->n;
		if (*cp->s++ == '}')
			break;
	}
	/* The last split's other way leads nowhere: make it fail. */
	cp->p->prog[split].y = (unsigned short)split;	/* split to itself: a dead end */
	for (i = 0; i < nj; i++)
		cp->p->prog[jmps[i]].x = (unsigned short)cp->p->n;
	cp->depth--;
	return 0;
}

/* seq(cp): bytes up to the pattern's end (or, in a group, its ',' or '}'),
 * read as Fluentd's MatchPattern reads them. */
static int seq(struct comp *cp)
{
	while (*cp->s != '\0') {
		const char *s = cp->s;

		if (s[0] == '*' && s[1] == '*') {
			if (cp->dot && emit(cp, OP_DOTEND, 0) < 0)
				return -1;
			cp->dot = 0;
			if (s[2] == '.') {	/* anything ending in '.', or nothing at the start */
				int split, jmp;

				if ((split = emit(cp, OP_SPLIT, 0)) < 0)
					return -1;
				cp->p->prog[split].x = (unsigned short)cp->p->n;
				if (star(cp, OP_ANY) < 0 || emit(cp, OP_CHAR, '.') < 0 ||
				    (jmp = emit(cp, OP_JMP, 0)) < 0)
					return -1;
				cp->p->prog[split].y = (unsigned short)cp->p->n;
				if (emit(cp, OP_BEGIN, 0) < 0)
					return -1;
				cp->p->prog[jmp].x = (unsigned short)cp->p->n;
				cp->s += 3;
			} else {
				if (star(cp, OP_ANY) < 0)
					return -1;
				cp->s += 2;
			}
			continue;
		}
		if (cp->dot && emit(cp, OP_CHAR, '.') < 0)
			return -1;
		cp->dot = 0;
		if (cp->depth > 0 && (s[0] == ',' || s[0] == '}'))
			return 0;
		cp->s++;
		if (s[0] == '\\') {
			if (s[1] == '\0') {
				cp->why = "a \\ at the end";
				return -1;
			}
			cp->s++;
			if (emit(cp, OP_CHAR, (unsigned char)s[1]) < 0)
				return -1;
		} else if (s[0] == '.') {
			cp->dot = 1;
		} else if (s[0] == '*') {
			if (star(cp, OP_NONDOT) < 0)
				return -1;
		} else if (s[0] == '{') {
			if (group(cp) < 0)
				return -1;
		} else if (emit(cp, OP_CHAR, (unsigned char)s[0]) < 0) {
			return -1;
		}
	}
	return 0;
}

struct tagacl_pat *tagacl_compile(const char *pattern, char *why, size_t whysz)
{
	struct comp cp = { NULL, pattern, 0, 0, NULL };
	struct tagacl_pat *p;

	if (pattern[0] == '\0' || strlen(pattern) > TAGACL_PATTERN_MAX) {
		snprintf(why, whysz, pattern[0] == '\0' ? "empty pattern" :
		    "pattern longer than %d bytes", TAGACL_PATTERN_MAX);
		return NULL;
	}
	if ((cp.p = calloc(1, sizeof(*cp.p) + TAGACL_PROG_MAX * sizeof(struct ins))) == NULL) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	/* A '.' still pending at the end is dropped, as Fluentd drops it. */
	if (seq(&cp) < 0 || emit(&cp, OP_MATCH, 0) < 0) {
		snprintf(why, whysz, "%s", cp.why != NULL ? cp.why : "bad pattern");
		free(cp.p);
		return NULL;
	}
	/* Kept at its size: a connection holds the patterns of its rules. */
	if ((p = realloc(cp.p, sizeof(*cp.p) + cp.p->n * sizeof(struct ins))) != NULL)
		cp.p = p;
	return cp.p;
}

void tagacl_pat_free(struct tagacl_pat *p)
{
	free(p);
}

/* add(p, list, n, mark, gen, pc, tag, len, pos): state pc and the states it
 * leads to without reading a byte, at pos. */
static void add(const struct tagacl_pat *p, unsigned short *list, size_t *n, unsigned *mark,
    unsigned gen, unsigned pc, const char *tag, size_t len, size_t pos)
{
	const struct ins *in;

	for (;;) {
		if (mark[pc] == gen)
			return;
		mark[pc] = gen;
		in = &p->prog[pc];
		switch (in->op) {
		case OP_JMP:
			pc = in->x;
			continue;
		case OP_SPLIT:
			add(p, list, n, mark, gen, in->x, tag, len, pos);
			pc = in->y;
			continue;
		case OP_DOTEND:
			if (pos < len && tag[pos] != '.')
				return;
			pc++;
			continue;
		case OP_BEGIN:
			if (pos != 0)
				return;
			pc++;
			continue;
		default:
			list[(*n)++] = (unsigned short)pc;
			return;
		}
	}
}

int tagacl_match(const struct tagacl_pat *p, const char *tag, size_t len)
{
	unsigned short a[TAGACL_PROG_MAX], b[TAGACL_PROG_MAX], *cur = a, *next = b, *t;
	unsigned mark[TAGACL_PROG_MAX], gen = 1;
	size_t nc = 0, nn, i, pos;

	memset(mark, 0, p->n * sizeof(mark[0]));
	add(p, cur, &nc, mark, gen, 0, tag, len, 0);
	for (pos = 0;; pos++) {
		for (i = 0; i < nc; i++)	/* Ruby's \Z: the end, or before a last '\n' */
			if (p->prog[cur[i]].op == OP_MATCH &&
			    (pos == len || (pos + 1 == len && tag[pos] == '\n')))
				return 1;
		if (pos == len || nc == 0)
			return 0;
		gen++;
		nn = 0;
		for (i = 0; i < nc; i++) {
			const struct ins *in = &p->prog[cur[i]];
			unsigned char ch = (unsigned char)tag[pos];

			if ((in->op == OP_CHAR && in->c == ch) || (in->op == OP_NONDOT && ch != '.') ||
			    (in->op == OP_ANY && ch != '\n'))
				add(p, next, &nn, mark, gen, cur[i] + 1u, tag, len, pos + 1);
		}
		t = cur, cur = next, next = t;
		nc = nn;
	}
}

/* -- the entries -- */

struct entry {
	struct authz *rule;	/* NULL: `*`, any client */
	char *pattern;		/* with its templates */
};

struct tagacl {
	struct entry *v;
	size_t n, cap;
};

struct tagacl_set {
	struct tagacl_pat **v;
	size_t n;
};

static const char *const vars[] = { "cn", "dns", "uri", "fp", "ou" };

/* render(tmpl, id, out, outsz): tmpl with {cn} and the like replaced by
 * id's values (id NULL: by "x", to check the pattern).  A brace that is no
 * template is the pattern's own.  0, or -1 when a value is missing or no
 * tag (the pattern allows nothing then) or the result is too long. */
static int render(const char *tmpl, const struct x509_identity *id, char *out, size_t outsz)
{
	char fp[65];
	size_t n = 0, l, i;
	const char *p, *v;

	for (p = tmpl; *p != '\0'; p++) {
		v = p;
		l = 1;
		if (*p == '{')
			for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
				size_t k = strlen(vars[i]);

				if (strncmp(p + 1, vars[i], k) != 0 || p[1 + k] != '}')
					continue;
				v = id != NULL ? fwd_template_value(id, vars[i], k, fp) : "x";
				if (v == NULL || !fwd_tag_value(v))
					return -1;
				l = strlen(v);
				p += k + 1;
				break;
			}
		if (n + l >= outsz)
			return -1;
		memcpy(out + n, v, l);
		n += l;
	}
	out[n] = '\0';
	return 0;
}

struct tagacl *tagacl_new(void)
{
	return calloc(1, sizeof(struct tagacl));
}

void tagacl_free(struct tagacl *acl)
{
	size_t i;

	if (acl == NULL)
		return;
	for (i = 0; i < acl->n; i++) {
		authz_free(acl->v[i].rule);
		free(acl->v[i].pattern);
	}
	free(acl->v);
	free(acl);
}

int tagacl_add(struct tagacl *acl, const char *entry, char *why, size_t whysz)
{
	const char *eq = strrchr(entry, '=');
	char rule[AUTHZ_RULE_TEXT_MAX], pat[TAGACL_PATTERN_MAX + 1];
	struct tagacl_pat *p;
	struct entry e = { NULL, NULL };
	size_t rl;

	if (eq == NULL || eq == entry) {
		snprintf(why, whysz, "not RULE=PATTERN");
		return -1;
	}
	rl = (size_t)(eq - entry);
	while (rl > 0 && entry[rl - 1] == ' ')
		rl--;
	while (eq[1] == ' ')
		eq++;
	if (rl >= sizeof(rule)) {
		snprintf(why, whysz, "rule too long");
		return -1;
	}
	if (acl->n >= TAGACL_MAX) {
		snprintf(why, whysz, "too many tag rules (at most %d)", TAGACL_MAX);
		return -1;
	}
	memcpy(rule, entry, rl);
	rule[rl] = '\0';
	if (render(eq + 1, NULL, pat, sizeof(pat)) < 0) {
		snprintf(why, whysz, "pattern longer than %d bytes", TAGACL_PATTERN_MAX);
		return -1;
	}
	if ((p = tagacl_compile(pat, why, whysz)) == NULL)
		return -1;
	tagacl_pat_free(p);
	if (strcmp(rule, "*") != 0) {
		if ((e.rule = authz_new()) == NULL) {
			snprintf(why, whysz, "out of memory");
			return -1;
		}
		if (authz_add(e.rule, rule, why, whysz) < 0) {
			authz_free(e.rule);
			return -1;
		}
	}
	if (acl->n == acl->cap) {
		size_t cap = acl->cap ? 2 * acl->cap : 8;
		struct entry *v = realloc(acl->v, cap * sizeof(*v));

		if (v == NULL) {
			authz_free(e.rule);
			snprintf(why, whysz, "out of memory");
			return -1;
		}
		acl->v = v;
		acl->cap = cap;
	}
	if ((e.pattern = strdup(eq + 1)) == NULL) {
		authz_free(e.rule);
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	acl->v[acl->n++] = e;
	return 0;
}

size_t tagacl_count(const struct tagacl *acl)
{
	return acl != NULL ? acl->n : 0;
}

int tagacl_for(const struct tagacl *acl, const struct x509_identity *id,
    struct tagacl_set **set)
{
	char pat[TAGACL_PATTERN_MAX + 1], why[128];
	struct tagacl_set *s;
	size_t i;

	if ((s = *set = calloc(1, sizeof(*s))) == NULL ||
	    (acl->n > 0 && (s->v = calloc(acl->n, sizeof(*s->v))) == NULL))
		return -1;
	for (i = 0; id != NULL && i < acl->n; i++) {
		const struct entry *e = &acl->v[i];

		if (e->rule != NULL && authz_match(e->rule, id, NULL, 0) != AUTHZ_MATCHED)
			continue;
		if (render(e->pattern, id, pat, sizeof(pat)) < 0)
			continue;	/* no value for a template: allows nothing */
		if ((s->v[s->n] = tagacl_compile(pat, why, sizeof(why))) == NULL) {
			if (strcmp(why, "out of memory") == 0)
				return -1;
			continue;	/* a value made it too long */
		}
		s->n++;
	}
	return 0;
}

int tagacl_allows(const struct tagacl_set *set, const char *tag, size_t len)
{
	size_t i;

	for (i = 0; set != NULL && i < set->n; i++)
		if (tagacl_match(set->v[i], tag, len))
			return 1;
	return 0;
}

void tagacl_set_free(struct tagacl_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		tagacl_pat_free(set->v[i]);
	free(set->v);
	free(set);
}
