/* authz_text: the text helpers the allow rules and the networks share. */
#ifndef TLSFWD_AUTHZ_TEXT_H
#define TLSFWD_AUTHZ_TEXT_H

#include <ctype.h>
#include <stdio.h>
#include <stddef.h>

/* Trim spaces around the *len bytes at s: the rest is *len bytes at the
 * returned pointer. */
static inline const char *trim(const char *s, size_t *len)
{
	size_t n = *len;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* set_out(out, n, s): s into out (n bytes), if the caller wants it. */
static inline void set_out(char *out, size_t n, const char *s)
{
	if (out != NULL && n > 0)
		snprintf(out, n, "%s", s);
}

#endif
