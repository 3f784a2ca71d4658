/* proxy: the HTTP CONNECT hop's pure parts — the --proxy URL, no_proxy,
 * the request and the reader of the answer (see proxy.h). */
#include "proxy.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sock.h"

/* unhex(c): the value of the hex digit c, or -1. */
static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* decode(s, n, out, outsz): percent-decode the n bytes at s into out.  0, or
 * -1 if a %XX is malformed, decodes to NUL or a control character, or the
 * result does not fit. */
static int decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			if ((h = unhex(s[i + 1])) < 0 || (l = unhex(s[i + 2])) < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int proxy_url_parse(const char *url, int bare_ok, struct proxy_url *u, char *why, size_t whysz)
{
	const char *p = url, *end, *at, *colon;
	const char *bad;
	size_t len;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strstr(p, "://") != NULL || !bare_ok) {
		snprintf(why, whysz, strncasecmp(p, "https://", 8) == 0 ?
		    "an https:// proxy is not supported (TLS to the proxy): give http://HOST:PORT" :
		    "expected http://[USER:PASSWORD@]HOST:PORT");
		return -1;
	}
	/* The authority ends at the path; a bare "/" is all the path may be. */
	end = p + strcspn(p, "/?#");
	if (*end != '\0' && strcmp(end, "/") != 0) {
		snprintf(why, whysz, "a proxy URL has no path, query or fragment");
		return -1;
	}
	/* user:password@ ends at the last '@' (an '@' in the password should
	 * be %40, but is taken as the password's when it is not). */
	at = NULL;
	for (colon = p; colon < end; colon++)
		if (*colon == '@')
			at = colon;
	if (at != NULL) {
		const char *sep = memchr(p, ':', (size_t)(at - p));
		size_t ulen = sep != NULL ? (size_t)(sep - p) : (size_t)(at - p);

		if (ulen == 0 || decode(p, ulen, u->user, sizeof(u->user)) < 0 ||
		    strchr(u->user, ':') != NULL) {
			snprintf(why, whysz, "bad user name in the proxy URL (percent-encode "
			    "special characters; no ':')");
			return -1;
		}
		if (sep != NULL && decode(sep + 1, (size_t)(at - sep - 1), u->password,
		    sizeof(u->password)) < 0) {
			snprintf(why, whysz, "bad password in the proxy URL (percent-encode "
			    "special characters)");
			return -1;
		}
		u->has_user = 1;
		p = at + 1;
	}
	len = (size_t)(end - p);
	if (len == 0) {
		snprintf(why, whysz, "no proxy host");
		return -1;
	}
	if (len >= sizeof(u->spec)) {
		snprintf(why, whysz, "proxy host too long");
		return -1;
	}
	memcpy(u->spec, p, len);
	u->spec[len] = '\0';
	if (strchr(u->spec, '%') != NULL) {
		snprintf(why, whysz, "bad proxy host: %s", u->spec);
		return -1;
	}
	/* No port: refused rather than guessed (3128? 8080? 80?). */
	if ((u->spec[0] == '[' && strstr(u->spec, "]:") == NULL) ||
	    (u->spec[0] != '[' && strchr(u->spec, ':') == NULL)) {
		snprintf(why, whysz, "the proxy URL needs a port: http://%s:PORT", u->spec);
		return -1;
	}
	if (sock_split(u->spec, u->host, sizeof(u->host), u->port, sizeof(u->port), &bad) < 0) {
		snprintf(why, whysz, "bad proxy address %s: %s", u->spec, bad);
		return -1;
	}
	return 0;
}

/* host_key(s, n, out, outsz): the n bytes at s without [] around an IPv6
 * literal or a :port after a name, lowercase, without a trailing dot. */
static void host_key(const char *s, size_t n, char *out, size_t outsz)
{
	const char *colon;
	size_t i;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		n = rb != NULL ? (size_t)(rb - s - 1) : n - 1;
		s++;
	} else if ((colon = memchr(s, ':', n)) != NULL && memchr(colon + 1, ':',
	    n - (size_t)(colon + 1 - s)) == NULL) {
		n = (size_t)(colon - s);	/* name:port (an IPv6 literal has more colons) */
	}
	while (n > 0 && s[n - 1] == '.')
		n--;
	if (n >= outsz)
		n = outsz - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
}

int proxy_bypass(const char *no_proxy, const char *host)
{
	char h[PROXY_FIELD_MAX], e[PROXY_FIELD_MAX];
	const char *p = no_proxy;
	size_t hl;

	if (no_proxy == NULL)
		return 0;
	host_key(host, strlen(host), h, sizeof(h));
	hl = strlen(h);
	while (*p != '\0') {
		size_t n, el;
		const char *d;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		d = p;
		p += n;
		if (n == 1 && *d == '*')
			return 1;
		while (n > 0 && *d == '.') {	/* ".example.com": the same as example.com */
			d++;
			n--;
		}
		host_key(d, n, e, sizeof(e));
		el = strlen(e);
		if (el == 0)
			continue;
		if (strcmp(h, e) == 0)
			return 1;
		/* a name below it; never for IP literals (1.2.3.4 is not below 3.4) */
		if (!sock_is_ip(h) && hl > el && h[hl - el - 1] == '.' && strcmp(h + hl - el, e) == 0)
			return 1;
	}
	return 0;
}

int proxy_basic(const char *user, const char *password, char *out, size_t outsz)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char in[2 * PROXY_FIELD_MAX + 1];
	size_t n, i, o = 0;
	int len = snprintf((char *)in, sizeof(in), "%s:%s", user, password);

	if (len < 0 || (size_t)len >= sizeof(in))
		return -1;
	n = (size_t)len;
	if ((n + 2) / 3 * 4 + 1 > outsz)
		return -1;
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

int proxy_request(char *buf, size_t bufsz, const char *target, const char *auth)
{
	char tmp[PROXY_REQUEST_MAX];
	int n;

	if (auth != NULL && *auth != '\0')
		n = snprintf(tmp, sizeof(tmp), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
		    "Proxy-Authorization: Basic %s\r\n\r\n", target, target, auth);
	else
		n = snprintf(tmp, sizeof(tmp), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
		    target, target);
	if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n > bufsz)
		return -1;
	memcpy(buf, tmp, (size_t)n);
	return n;
}

/* finish(a, rc, why, reason): remember the outcome and return it. */
static int finish(struct proxy_answer *a, int rc, const char **why, const char *reason)
{
	a->done = (unsigned char)(rc == PROXY_OK ? 1 : 2);
	if (reason != a->reason)
		snprintf(a->reason, sizeof(a->reason), "%s", reason);
	*why = a->reason;
	return rc;
}

/* status_end(a, why): the status line is complete: go on for a 2xx, else
 * the reason. */
static int status_end(struct proxy_answer *a, const char **why)
{
	if (a->status >= 200 && a->status <= 299)
		return PROXY_MORE;
	/* tinyproxy 1.11 answers a CONNECT without good credentials with 401 */
	if (a->status == 407 || a->status == 401)
		return finish(a, PROXY_FAIL, why, "proxy_auth_required");
	if (a->status == 403)
		return finish(a, PROXY_FAIL, why, "proxy_forbidden");
	snprintf(a->reason, sizeof(a->reason), "proxy_status_%03u", a->status);
	return finish(a, PROXY_FAIL, why, a->reason);
}

/*-
 * The status line is "HTTP/1." DIGIT SP 3DIGIT, then SP and a reason phrase
 * or the line's end; header lines follow until an empty one.  A line ends
 * with LF, a CR before it is dropped.  The position in the status line is
 * a->n itself (its first 12 bytes have a fixed shape); a->status non-zero
 * means the status line is over.
 */
int proxy_answer_feed(struct proxy_answer *a, const unsigned char *buf, size_t n, size_t *used,
    const char **why)
{
	static const char prefix[] = "HTTP/1.";
	size_t i;

	*used = 0;
	if (a->done)
		return finish(a, a->done == 1 ? PROXY_OK : PROXY_FAIL, why, a->reason);
	for (i = 0; i < n; i++) {
		unsigned c = buf[i];
		unsigned pos = a->n;

		*used = i + 1;
		if (a->n >= PROXY_ANSWER_MAX)
			return finish(a, PROXY_FAIL, why, "proxy_header_too_long");
		a->n++;
		if (a->status == 0) {	/* the status line */
			if (pos < 7) {
				if (c != (unsigned char)prefix[pos])
					return finish(a, PROXY_FAIL, why, "proxy_not_http");
			} else if (pos == 7) {
				if (!isdigit(c))
					return finish(a, PROXY_FAIL, why, "proxy_not_http");
			} else if (pos == 8) {
				if (c != ' ')
					return finish(a, PROXY_FAIL, why, "proxy_not_http");
			} else if (pos <= 11) {
				if (!isdigit(c))
					return finish(a, PROXY_FAIL, why, "proxy_not_http");
				a->reason[pos - 9] = (char)c;
				if (pos == 11)
					a->reason[3] = '\0';
			} else if (pos == 12 && c != ' ' && c != '\r' && c != '\n') {
				return finish(a, PROXY_FAIL, why, "proxy_not_http");
			} else if (c == '\n') {
				int rc;

				a->status = (unsigned short)((a->reason[0] - '0') * 100 +
				    (a->reason[1] - '0') * 10 + (a->reason[2] - '0'));
				if (a->status == 0 || (rc = status_end(a, why)) != PROXY_MORE)
					return a->status == 0 ?
					    finish(a, PROXY_FAIL, why, "proxy_not_http") : rc;
				a->line = 0;
			} else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
				return finish(a, PROXY_FAIL, why, "proxy_not_http");
			}
			continue;
		}
		/* the header lines */
		if (c == '\n') {
			if (a->line == 0)
				return finish(a, PROXY_OK, why, "");
			a->line = 0;
		} else if (c == '\r') {
			;	/* counted in n, not in the line */
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return finish(a, PROXY_FAIL, why, "proxy_not_http");
		} else {
			a->line = 1;
		}
	}
	if (a->n >= PROXY_ANSWER_MAX)
		return finish(a, PROXY_FAIL, why, "proxy_header_too_long");
	return PROXY_MORE;
}
