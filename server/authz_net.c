/* authz_net: the server's --allow-net set of source networks (authz.h). */
#include "authz.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "authz_text.h"

struct net {
	int family;			/* AF_INET or AF_INET6 */
	unsigned bits;
	unsigned char addr[16];		/* 4 bytes used for AF_INET */
};

struct authz_nets {
	struct net *nets;
	size_t n, cap;
};

/** authz_nets_new(): an empty network set, or NULL when out of memory. */
struct authz_nets *authz_nets_new(void)
{
	return calloc(1, sizeof(struct authz_nets));
}

/** authz_nets_free(nets): free the set; NULL is fine. */
void authz_nets_free(struct authz_nets *nets)
{
	if (nets == NULL)
		return;
	free(nets->nets);
	free(nets);
}

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Non-zero if the first bits of a and b are equal. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return ((a[full] ^ b[full]) & mask) == 0;
}

static void net_text(const struct net *t, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(t->family, t->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, n, "%s/%u", a, t->bits);
}

/** authz_net_add(nets, cidr, err, errsz): add "10.0.0.0/8", "fd00::/8" or an
 *  address alone (= /32 or /128).  Host bits set after the prefix are
 *  refused (10.0.0.1/8 is likely a typo).  An IPv4-mapped network
 *  (::ffff:10.0.0.0/104) is stored as the IPv4 one.  Returns 0, or -1 with
 *  the reason in err. */
int authz_net_add(struct authz_nets *nets, const char *cidr, char *err, size_t errsz)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash, *s;
	struct net t, masked;
	size_t len, alen;
	unsigned i, max;

	memset(&t, 0, sizeof(t));
	len = strlen(cidr);
	s = trim(cidr, &len);
	slash = memchr(s, '/', len);
	alen = slash != NULL ? (size_t)(slash - s) : len;
	if (alen == 0 || alen >= sizeof(addr))
		goto bad_addr;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, t.addr) == 1) {
		t.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, t.addr) == 1) {
		t.family = AF_INET6;
		max = 128;
	} else {
		goto bad_addr;
	}
	t.bits = max;
	if (slash != NULL) {
		const char *p = slash + 1, *end = s + len;

		if (p == end || end - p > 3)
			goto bad_bits;
		for (t.bits = 0; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				goto bad_bits;
			t.bits = t.bits * 10 + (unsigned)(*p - '0');
		}
		if (t.bits > max)
			goto bad_bits;
	}
	masked = t;
	memset(masked.addr, 0, sizeof(masked.addr));
	for (i = 0; i < t.bits; i++)
		masked.addr[i / 8] |= (unsigned char)(t.addr[i / 8] & (0x80 >> (i % 8)));
	if (memcmp(masked.addr, t.addr, sizeof(t.addr)) != 0) {
		char want[AUTHZ_NET_TEXT_MAX];

		net_text(&masked, want, sizeof(want));
		snprintf(err, errsz, "host bits set after the /%u prefix (did you mean %s?)",
		    t.bits, want);
		return -1;
	}
	if (t.family == AF_INET6 && t.bits >= 96 && memcmp(t.addr, v4mapped, 12) == 0) {
		/* ::ffff:10.0.0.0/104 is 10.0.0.0/8: clients are matched as IPv4. */
		t.family = AF_INET;
		memmove(t.addr, t.addr + 12, 4);
		memset(t.addr + 4, 0, 12);
		t.bits -= 96;
	}
	if (nets->n == AUTHZ_MAX_NETS) {
		snprintf(err, errsz, "too many networks (at most %d)", AUTHZ_MAX_NETS);
		return -1;
	}
	if (nets->n == nets->cap) {
		size_t cap = nets->cap ? 2 * nets->cap : 8;
		struct net *p = realloc(nets->nets, cap * sizeof(*p));

		if (p == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		nets->nets = p;
		nets->cap = cap;
	}
	nets->nets[nets->n++] = t;
	return 0;

bad_addr:
	snprintf(err, errsz, "not an IPv4 or IPv6 network (10.0.0.0/8, fd00::/8, 192.0.2.7)");
	return -1;
bad_bits:
	snprintf(err, errsz, "bad prefix length (0 to %u)", t.family == AF_INET ? 32 : 128);
	return -1;
}

/** authz_net_count(nets): the number of networks. */
size_t authz_net_count(const struct authz_nets *nets)
{
	return nets->n;
}

/** authz_net_match(nets, sa, net_out, n): is a peer at sa (AF_INET or
 *  AF_INET6) allowed?  An IPv4-mapped IPv6 address (::ffff:a.b.c.d, an IPv4
 *  client on an IPv6 socket) is taken as the IPv4 address: it matches IPv4
 *  networks and no IPv6 one, not even ::/0.  Returns AUTHZ_MATCHED with the
 *  first matching network ("10.0.0.0/8") in net_out, AUTHZ_NO_RULES with
 *  "any" for an empty set, AUTHZ_DENIED with "" otherwise (also for other
 *  address families).  net_out may be NULL. */
int authz_net_match(const struct authz_nets *nets, const struct sockaddr *sa, char *net_out,
    size_t n)
{
	unsigned char a[16];
	int family;
	size_t i;

	if (nets->n == 0) {
		set_out(net_out, n, "any");
		return AUTHZ_NO_RULES;
	}
	set_out(net_out, n, "");
	if (sa == NULL)
		return AUTHZ_DENIED;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		family = AF_INET;
		memcpy(a, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		family = AF_INET6;
		memcpy(a, &in6->sin6_addr, 16);
		if (memcmp(a, v4mapped, 12) == 0) {
			family = AF_INET;
			memmove(a, a + 12, 4);
		}
	} else {
		return AUTHZ_DENIED;
	}
	for (i = 0; i < nets->n; i++) {
		const struct net *t = &nets->nets[i];

		if (t->family == family && prefix_equal(a, t->addr, t->bits)) {
			if (net_out != NULL && n > 0)
				net_text(t, net_out, n);
			return AUTHZ_MATCHED;
		}
	}
	return AUTHZ_DENIED;
}
