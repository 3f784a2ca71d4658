/* san: the --san option to DER GeneralName elements; see san.h. */
#include "san.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "der.h"

enum san_type { SAN_EMAIL = 1, SAN_DNS = 2, SAN_URI = 6, SAN_IP = 7 };

static const struct {
	const char *prefix;
	enum san_type type;
} san_types[] = {
	{ "DNS:", SAN_DNS }, { "IP:", SAN_IP }, { "URI:", SAN_URI }, { "email:", SAN_EMAIL },
};

#define NTYPES (sizeof(san_types) / sizeof(san_types[0]))

/* The type whose prefix s starts with (case-insensitive), or -1. */
static int prefix_at(const char *s, size_t *plen)
{
	size_t i;

	for (i = 0; i < NTYPES; i++) {
		size_t n = strlen(san_types[i].prefix);

		if (strncasecmp(s, san_types[i].prefix, n) == 0) {
			*plen = n;
			return (int)i;
		}
	}
	return -1;
}

/* RFC 1123 host name, or "*." and one: letters, digits and '-', labels of 1
 * to 63 bytes not starting or ending with '-', 253 bytes at most. */
static const char *dns_invalid(const char *v, size_t n)
{
	size_t i, label = 0;

	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		v += 2;
		n -= 2;
	}
	if (n == 0)
		return "empty DNS name";
	if (n > 253)
		return "DNS name longer than 253 characters";
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '.') {
			if (label == 0)
				return "empty label in DNS name (\"..\", or a leading or trailing dot)";
			if (v[i - 1] == '-')
				return "a DNS label cannot end with '-'";
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return c == '*' ? "'*' is only allowed as a whole first label (\"*.example.com\")"
			    : "a DNS name has only letters, digits, '-' and '.'";
		if (c == '-' && label == 0)
			return "a DNS label cannot start with '-'";
		if (++label > 63)
			return "DNS label longer than 63 characters";
	}
	if (label == 0)
		return "empty label in DNS name (\"..\", or a leading or trailing dot)";
	if (v[n - 1] == '-')
		return "a DNS label cannot end with '-'";
	return NULL;
}

static int printable_ascii(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return 0;
	return 1;
}

static const char *uri_invalid(const char *v, size_t n)
{
	size_t i;

	if (n == 0 || !isalpha((unsigned char)v[0]))
		return "a URI starts with a scheme, like spiffe://trust-domain/path";
	for (i = 1; i < n && v[i] != ':'; i++)
		if (!isalnum((unsigned char)v[i]) && strchr("+-.", v[i]) == NULL)
			return "a URI starts with a scheme, like spiffe://trust-domain/path";
	if (i == n || i + 1 == n)
		return "a URI needs a scheme and a value, like spiffe://trust-domain/path";
	if (!printable_ascii(v, n))
		return "a URI has no spaces or non-ASCII characters (percent-encode them)";
	return NULL;
}

static const char *email_invalid(const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);

	if (at == NULL || at == v || at == v + n - 1 || memchr(at + 1, '@', (size_t)(v + n - at - 1)))
		return "expected an address like ops@example.com";
	if (!printable_ascii(v, n))
		return "an email address has no spaces or non-ASCII characters";
	return NULL;
}

/** san_parse(list, out, count, err, errsz): append one GeneralName element to
 *  out for each comma-separated TYPE:VALUE in list.  Returns 0, or -1 with
 *  "--san 'item': cause" in err. */
int san_parse(const char *list, struct der_buf *out, int *count, char *err, size_t errsz)
{
	const char *s = list;

	while (*s != '\0') {
		const char *item, *v, *end, *why = NULL;
		size_t plen, n;
		char tmp[256];
		unsigned char ip[16];
		int t;

		while (isspace((unsigned char)*s))
			s++;
		item = s;
		t = prefix_at(s, &plen);
		if (t < 0) {
			end = strchr(s, ',');
			n = end != NULL ? (size_t)(end - s) : strlen(s);
			if (n == 0)
				snprintf(err, errsz, "--san '%s': empty entry", list);
			else if (memchr(s, ':', n) == NULL && n < sizeof(tmp))
				snprintf(err, errsz, "--san '%.*s': no type; write DNS:%.*s or "
				    "IP:%.*s (types: DNS, IP, URI, email)", (int)n, s, (int)n, s,
				    (int)n, s);
			else
				snprintf(err, errsz, "--san '%.*s': unknown type; expected "
				    "DNS:NAME, IP:ADDRESS, URI:URI or email:ADDRESS", (int)n, s);
			return -1;
		}
		v = s + plen;
		end = v;
		for (;;) {
			size_t p;

			end = strchr(end, ',');
			if (end == NULL) {
				end = v + strlen(v);
				break;
			}
			if (san_types[t].type != SAN_URI)
				break;
			/* In a URI a comma is data unless a TYPE: follows it. */
			p = 1;
			while (isspace((unsigned char)end[p]))
				p++;
			if (prefix_at(end + p, &plen) >= 0)
				break;
			end++;
		}
		n = (size_t)(end - v);
		while (n > 0 && isspace((unsigned char)v[n - 1]))
			n--;

		switch (san_types[t].type) {
		case SAN_DNS:
			why = dns_invalid(v, n);
			if (why == NULL && n < sizeof(tmp)) {
				memcpy(tmp, v, n);
				tmp[n] = '\0';
				if (inet_pton(AF_INET, tmp, ip) == 1)
					why = "this is an IP address; write it as IP:ADDRESS";
			}
			if (why == NULL)
				der_buf_tlv(out, DER_CTX(2), v, n);
			break;
		case SAN_IP:
			if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
				v++;
				n -= 2;
			}
			if (n == 0 || n >= sizeof(tmp)) {
				why = "expected an IPv4 or IPv6 address";
				break;
			}
			memcpy(tmp, v, n);
			tmp[n] = '\0';
			if (inet_pton(AF_INET, tmp, ip) == 1)
				der_buf_tlv(out, DER_CTX(7), ip, 4);
			else if (inet_pton(AF_INET6, tmp, ip) == 1)
				der_buf_tlv(out, DER_CTX(7), ip, 16);
			else
				why = "not an IPv4 or IPv6 address";
			break;
		case SAN_URI:
			why = uri_invalid(v, n);
			if (why == NULL)
				der_buf_tlv(out, DER_CTX(6), v, n);
			break;
		case SAN_EMAIL:
			why = email_invalid(v, n);
			if (why == NULL)
				der_buf_tlv(out, DER_CTX(1), v, n);
			break;
		}
		if (why != NULL) {
			snprintf(err, errsz, "--san '%.*s': %s", (int)(end - item), item, why);
			return -1;
		}
		if (out->err) {
			snprintf(err, errsz, "--san: out of memory");
			return -1;
		}
		(*count)++;
		s = end;
		if (*s == ',') {
			s++;
			while (isspace((unsigned char)*s))
				s++;
			if (*s == '\0') {
				snprintf(err, errsz, "--san '%s': trailing comma", list);
				return -1;
			}
		}
	}
	return 0;
}
