/* proxy: the HTTP CONNECT hop, as pure functions: the --proxy URL, the
 * no_proxy list, the CONNECT request and the reader of the proxy's answer.
 * No I/O here: client.c drives them on a connection's socket. */
#ifndef TLSFWD_PROXY_H
#define TLSFWD_PROXY_H

#include <stddef.h>

#define PROXY_ANSWER_MAX 4096	/* bytes of the answer's header, at most */
#define PROXY_FIELD_MAX 256	/* host, user, password: bytes with the NUL */
#define PROXY_AUTH_MAX 700	/* base64 of "user:password", with the NUL */
#define PROXY_REQUEST_MAX 1500	/* the CONNECT request, at most */

/* A parsed proxy URL. */
struct proxy_url {
	char host[PROXY_FIELD_MAX];	/* as written: a name, an IPv4 or an IPv6 literal */
	char port[8];
	char spec[PROXY_FIELD_MAX + 10];	/* host:port or [v6]:port, for sock_resolve() */
	int has_user;
	char user[PROXY_FIELD_MAX];	/* percent-decoded */
	char password[PROXY_FIELD_MAX];	/* percent-decoded; "" if none */
};

/** proxy_url_parse(url, bare_ok, u, why, whysz):
 *  "http://[user[:password]@]host:port[/]" into u; bare_ok also takes it
 *  without "http://" (what https_proxy often holds).  0, or -1 with the
 *  reason in why, which never holds the password. */
int proxy_url_parse(const char *url, int bare_ok, struct proxy_url *u, char *why, size_t whysz);

/** proxy_bypass(no_proxy, host): non-zero if host (a name or an IP literal,
 *  IPv6 with or without brackets) matches the no_proxy list: comma or space
 *  separated entries, "*" matches every host, "example.com" and
 *  ".example.com" match that name and every name below it, an IP literal
 *  matches itself.  Case-insensitive; an entry's ":port" is ignored. */
int proxy_bypass(const char *no_proxy, const char *host);

/** proxy_basic(user, password, out, outsz): base64("user:password") into
 *  out.  Its length, or -1 if it does not fit. */
int proxy_basic(const char *user, const char *password, char *out, size_t outsz);

/** proxy_request(buf, bufsz, target, auth): "CONNECT target HTTP/1.1" with
 *  its Host header and, if auth is not NULL or "", a Proxy-Authorization:
 *  Basic auth header, ended by the empty line.  Its length, or -1 if it does
 *  not fit in bufsz (no NUL is written past the request). */
int proxy_request(char *buf, size_t bufsz, const char *target, const char *auth);

/* The reader of the answer, fed as bytes arrive; zero it to start. */
struct proxy_answer {
	unsigned short n;	/* bytes taken so far */
	unsigned short status;	/* the status code, once read */
	unsigned char line;	/* bytes in the current header line (capped) */
	unsigned char done;	/* the outcome was given */
	char reason[22];	/* proxy_status_NNN */
};

enum { PROXY_MORE = 0, PROXY_OK = 1, PROXY_FAIL = -1 };

/*-
 * proxy_answer_feed(a, buf, n, used, why): take the n bytes at buf.  Takes
 * no byte past the end of the header (*used: how many it took).  Returns
 * PROXY_MORE (all taken, the header goes on), PROXY_OK (a "HTTP/1.x 2xx"
 * status line and the header's end, at buf + *used), or PROXY_FAIL with
 * *why a stable token: proxy_not_http, proxy_auth_required (407, or 401
 * as tinyproxy says it),
 * proxy_forbidden (403), proxy_status_NNN (any other status but 2xx, as
 * soon as its status line ends), proxy_header_too_long (PROXY_ANSWER_MAX
 * bytes and no end).  *why may point into a.  Once it returned OK or FAIL,
 * it returns the same again.
 */
int proxy_answer_feed(struct proxy_answer *a, const unsigned char *buf, size_t n, size_t *used,
    const char **why);

#endif
