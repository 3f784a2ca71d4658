/* fuzz_tagacl: --allow-tag's pattern compiler and matcher (server/tagacl.c)
 * on arbitrary patterns and tags.  Input: a pattern, a NUL, a tag (what a
 * sender chooses, every byte possible).  Checked: the pattern compiles or
 * is refused with a reason; matching ends (no backtracking to blow up); a
 * pattern that quotes every byte of the tag matches it, and `**` matches
 * every tag without a '\n'; the same input as an entry "*=PATTERN" is
 * accepted exactly when the pattern compiles (no template in it). */
#include "fuzz.h"

#include "tagacl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t plen = nul != NULL ? (size_t)(nul - data) : size;
	const char *tag = nul != NULL ? (const char *)nul + 1 : "";
	size_t tlen = nul != NULL ? size - plen - 1 : 0, i, n = 0;
	char *pat = malloc(plen + 3), why[256], quoted[2 * 200 + 1];
	struct tagacl_pat *p, *q;
	struct tagacl *acl;
	int ok;

	CHECK(pat != NULL, "out of memory");
	memcpy(pat, data, plen);
	pat[plen] = '\0';
	why[0] = '\0';
	p = tagacl_compile(pat, why, sizeof(why));
	CHECK(p != NULL || why[0] != '\0', "refused without a reason");
	if (p != NULL)
		(void)tagacl_match(p, tag, tlen);
	tagacl_pat_free(p);

	/* "*=" and the pattern, as --allow-tag. */
	if (strlen(pat) == plen && pat[0] != ' ' && memchr(pat, '=', plen) == NULL &&
	    strstr(pat, "{cn}") == NULL &&
	    strstr(pat, "{dns}") == NULL && strstr(pat, "{uri}") == NULL &&
	    strstr(pat, "{fp}") == NULL && strstr(pat, "{ou}") == NULL) {
		char *entry = malloc(plen + 3);

		CHECK(entry != NULL && (acl = tagacl_new()) != NULL, "out of memory");
		memcpy(entry, "*=", 2);
		memcpy(entry + 2, pat, plen + 1);
		ok = tagacl_add(acl, entry, why, sizeof(why)) == 0;
		p = tagacl_compile(pat, why, sizeof(why));
		CHECK(ok == (p != NULL), "entry and pattern disagree: %s", pat);
		tagacl_pat_free(p);
		tagacl_free(acl);
		free(entry);
	}
	free(pat);

	/* The tag quoted byte by byte matches itself. */
	if (tlen > 0 && tlen <= 200 && memchr(tag, '\n', tlen) == NULL) {
		for (i = 0; i < tlen; i++) {
			quoted[n++] = '\\';
			quoted[n++] = tag[i];
		}
		quoted[n] = '\0';
		if (memchr(tag, '\0', tlen) == NULL) {
			q = tagacl_compile(quoted, why, sizeof(why));
			CHECK(q != NULL, "quoted tag refused: %s", why);
			CHECK(tagacl_match(q, tag, tlen), "quoted tag does not match itself");
			tagacl_pat_free(q);
		}
		q = tagacl_compile("**", why, sizeof(why));
		CHECK(q != NULL && tagacl_match(q, tag, tlen), "** does not match");
		tagacl_pat_free(q);
	}
	return 0;
}
