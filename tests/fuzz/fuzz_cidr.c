/* fuzz_cidr: the network parser (authz_net_add() in shared/authz.c) that
 * reads --allow-net.
 *
 * Invariants: a refusal has a NUL-terminated reason; an accepted network
 * matches its own address (written without the prefix), and the text
 * authz_net_match() gives for it reads back as a network with the same
 * text; the address with the last bit of the prefix flipped does not
 * match, with the first host bit flipped does. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "authz.h"
#include "fuzz.h"

#define ERRSZ 200

/* sa_of(text, ss): the address before any '/' in text (spaces trimmed) as a
 * sockaddr.  Returns 0, or -1 if it is not an IP address. */
static int sa_of(const char *text, struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN + 1];
	const char *b = text, *e;
	size_t n;

	while (*b == ' ' || (*b >= '\t' && *b <= '\r'))
		b++;
	e = strchr(b, '/');
	n = e != NULL ? (size_t)(e - b) : strlen(b);
	while (n > 0 && (b[n - 1] == ' ' || (b[n - 1] >= '\t' && b[n - 1] <= '\r')))
		n--;
	if (n >= sizeof(a))
		return -1;
	memcpy(a, b, n);
	a[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* bits_of(text): the prefix length of "addr/bits" (the full length without
 * a '/'), as authz_net_match() writes it. */
static unsigned bits_of(const char *text)
{
	const char *s = strrchr(text, '/');

	return s != NULL ? (unsigned)strtoul(s + 1, NULL, 10) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *err = malloc(ERRSZ), *out = malloc(AUTHZ_NET_TEXT_MAX);
	char out2[AUTHZ_NET_TEXT_MAX];
	struct authz_nets *nets = authz_nets_new(), *again = authz_nets_new();
	struct sockaddr_storage ss;
	unsigned bits, max;

	CHECK(err != NULL && out != NULL && nets != NULL && again != NULL, "out of memory");
	if (authz_net_add(nets, s, err, ERRSZ) != 0) {
		CHECK(fuzz_cstr_in(err, ERRSZ) && err[0] != '\0', "refused without a reason");
		CHECK(authz_net_count(nets) == 0, "refused but added");
		goto out;
	}
	CHECK(authz_net_count(nets) == 1, "count %zu", authz_net_count(nets));
	CHECK(sa_of(s, &ss) == 0, "accepted %s, not an address", s);
	CHECK(authz_net_match(nets, (struct sockaddr *)&ss, out, AUTHZ_NET_TEXT_MAX) ==
	    AUTHZ_MATCHED, "%s does not match its own address", s);
	CHECK(fuzz_cstr_in(out, AUTHZ_NET_TEXT_MAX), "net text not terminated");
	CHECK(authz_net_add(again, out, err, ERRSZ) == 0, "%s (from %s) refused: %s", out, s, err);
	CHECK(sa_of(out, &ss) == 0 && authz_net_match(again, (struct sockaddr *)&ss, out2,
	    sizeof(out2)) == AUTHZ_MATCHED && strcmp(out, out2) == 0,
	    "%s reads back as %s", out, out2);

	/* Flip the last bit of the prefix: outside the network; the first bit
	 * after it: still inside. */
	bits = bits_of(out);
	max = ss.ss_family == AF_INET ? 32 : 128;
	CHECK(bits <= max, "prefix /%u", bits);
	{
		unsigned char *a = ss.ss_family == AF_INET ?
		    (unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr :
		    (unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (bits > 0) {
			a[(bits - 1) / 8] ^= (unsigned char)(0x80 >> ((bits - 1) % 8));
			CHECK(authz_net_match(again, (struct sockaddr *)&ss, out2, sizeof(out2)) ==
			    AUTHZ_DENIED && out2[0] == '\0', "%s matches outside %s", out2, out);
			a[(bits - 1) / 8] ^= (unsigned char)(0x80 >> ((bits - 1) % 8));
		}
		if (bits < max) {
			a[bits / 8] ^= (unsigned char)(0x80 >> (bits % 8));
			/* An IPv4-mapped address is matched as IPv4 (authz.h). */
			CHECK(authz_net_match(again, (struct sockaddr *)&ss, out2, sizeof(out2)) ==
			    AUTHZ_MATCHED || (ss.ss_family == AF_INET6 &&
			    memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0),
			    "%s: a host address does not match", out);
		}
	}
out:
	authz_nets_free(nets);
	authz_nets_free(again);
	free(err);
	free(out);
	free(s);
	return 0;
}
