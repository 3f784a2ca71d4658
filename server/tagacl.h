/* tagacl: which tags each client may write (--allow-tag RULE=PATTERN).
 *
 * RULE is an allow rule (authz.h: cn:, dns:, uri:, ou:, sha256:, spki:) or
 * `*` (any client); PATTERN is Fluentd's <match> syntax: `*` any bytes but
 * '.', `**` zero or more parts (`a.**` matches a and a.b.c, `**.a` a and
 * x.a), `{x,y}` alternatives (nested too), `\` quotes the next byte, every
 * other byte itself; and the templates {cn}, {dns}, {uri}, {fp}, {ou} of
 * --tag-prefix, replaced by the client's values (a value that is not a tag
 * makes its pattern allow nothing).  A client may write a tag when one of
 * the patterns of the rules it matches matches the tag as received.  When
 * the list has entries, a client that matches no rule may write no tag.
 * Matching runs the pattern as a small automaton (no backtracking): time
 * linear in the tag, whatever the pattern. */
#ifndef TLSFWD_TAGACL_H
#define TLSFWD_TAGACL_H

#include <stddef.h>

#define TAGACL_PATTERN_MAX	512	/* bytes of one pattern */
#define TAGACL_PROG_MAX		2048	/* instructions of one compiled pattern */
#define TAGACL_MAX		4096	/* --allow-tag entries */
#define TAGACL_DEPTH_MAX	16	/* {groups} nested */

struct tagacl;			/* the configured entries */
struct tagacl_set;		/* one client's compiled patterns */
struct tagacl_pat;		/* one compiled pattern */
struct x509_identity;

/** tagacl_compile(pattern, why, whysz): pattern compiled, or NULL with the
 *  reason in why (also out of memory).  Freed with tagacl_pat_free(). */
struct tagacl_pat *tagacl_compile(const char *pattern, char *why, size_t whysz);

/** tagacl_pat_free(p): free p; NULL is fine. */
void tagacl_pat_free(struct tagacl_pat *p);

/** tagacl_match(p, tag, len): the len bytes at tag match p. */
int tagacl_match(const struct tagacl_pat *p, const char *tag, size_t len);

/** tagacl_new(): no entries, or NULL out of memory. */
struct tagacl *tagacl_new(void);

/** tagacl_free(acl): free acl; NULL is fine. */
void tagacl_free(struct tagacl *acl);

/** tagacl_add(acl, entry, why, whysz): add "RULE=PATTERN" (split at the last
 *  '=').  0, or -1 with the reason in why. */
int tagacl_add(struct tagacl *acl, const char *entry, char *why, size_t whysz);

/** tagacl_count(acl): the number of entries (acl NULL: 0). */
size_t tagacl_count(const struct tagacl *acl);

/** tagacl_for(acl, id, &set): the patterns of the entries id matches,
 *  compiled with id's values (id NULL: none).  0, or -1 out of memory. */
int tagacl_for(const struct tagacl *acl, const struct x509_identity *id,
    struct tagacl_set **set);

/** tagacl_allows(set, tag, len): a pattern of set matches the tag. */
int tagacl_allows(const struct tagacl_set *set, const char *tag, size_t len);

/** tagacl_set_free(set): free set; NULL is fine. */
void tagacl_set_free(struct tagacl_set *set);

#endif
