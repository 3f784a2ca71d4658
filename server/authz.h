/* authz: who may send.  Two allow-lists for the server: a rule set over a
 * client certificate's identity (--allow-cn/-dns/-uri/-ou/-fingerprint/-spki,
 * --allow-file) and a set of source networks (--allow-net).  An empty list
 * allows everything; a non-empty one allows only what it names.
 *
 * Rules, in the text form of --allow-file and authz_add():
 *
 *   cn:web-1                 the subject commonName, exactly; a subject
 *                              with several CNs is refused whenever a cn:
 *                              rule is in the set, whatever else matches
 *   ou:edge                  a subject organizationalUnitName, exactly
 *   dns:web-1.example.com    a SAN dNSName, ignoring ASCII case; a leading
 *   dns:*.example.com          "*." stands for exactly one label: it matches
 *                              a.example.com, not a.b.example.com nor
 *                              example.com
 *   uri:spiffe://corp/edge/a a SAN URI, exactly; a value ending in '/' and
 *                              '*' matches anything below that '/': with
 *                              spiffe://corp/edge/ and '*', both
 *                              spiffe://corp/edge/a and .../a/b, but not
 *                              spiffe://corp/edge itself nor
 *                              spiffe://corp/edgeX/a
 *   sha256:HEX               the SHA-256 of the certificate's DER (also
 *   fingerprint:HEX            `fingerprint:`, or `openssl x509 -fingerprint
 *                              -sha256` output as it is)
 *   spki:HEX                 the SHA-256 of its SubjectPublicKeyInfo
 *
 * HEX is read by fp_parse(): upper or lower case, colons between pairs or
 * none; 64 hex digits alone are a sha256: fingerprint too.  The kind is
 * case-insensitive; spaces around the value are dropped.
 * Each certificate name is matched on its own (a cn: rule never looks at a
 * SAN, nor a dns: rule at the CN). */
#ifndef TLSFWD_AUTHZ_H
#define TLSFWD_AUTHZ_H

#include <stddef.h>

#define AUTHZ_MAX_RULES 4096	/* per rule set */
#define AUTHZ_VALUE_MAX 2048	/* bytes of one rule's value (a SPIFFE ID's limit) */
#define AUTHZ_RULE_TEXT_MAX (16 + AUTHZ_VALUE_MAX)	/* "kind:value" + NUL */
#define AUTHZ_MAX_NETS 4096	/* per network set */
#define AUTHZ_NET_TEXT_MAX 50	/* "ffff:...:ffff/128" + NUL */

enum authz_kind {
	AUTHZ_CN,
	AUTHZ_DNS,
	AUTHZ_URI,
	AUTHZ_OU,
	AUTHZ_FINGERPRINT,	/* SHA-256 of the certificate DER */
	AUTHZ_SPKI,		/* SHA-256 of the SubjectPublicKeyInfo DER */
};

/* What authz_match() and authz_net_match() return: non-zero allows. */
enum authz_verdict {
	AUTHZ_DENIED = 0,	/* the list has entries and none matched */
	AUTHZ_MATCHED = 1,	/* an entry matched; its text is in *_out */
	AUTHZ_NO_RULES = 2,	/* the list is empty: everything is allowed, *_out "any" */
};

struct authz;			/* a rule set */
struct authz_nets;		/* a network set */
struct x509_identity;
struct sockaddr;

/** authz_new(): an empty rule set, or NULL when out of memory. */
struct authz *authz_new(void);

/** authz_free(set): free the set and its rules; NULL is fine. */
void authz_free(struct authz *set);

/** authz_add(set, rule, err, errsz): add one rule in text form ("cn:web-1",
 *  "dns:*.example.com", "sha256:AB:CD:...").  Returns 0, or -1 with the
 *  reason in err (without the rule: the caller names where it came from). */
int authz_add(struct authz *set, const char *rule, char *err, size_t errsz);

/** authz_add_kind(set, kind, value, err, errsz): add one rule of a known kind
 *  (--allow-cn VALUE and the like; for AUTHZ_FINGERPRINT and AUTHZ_SPKI the
 *  value may carry its sha256:/spki: prefix, the other one is refused).
 *  Returns 0, or -1 with the reason in err. */
int authz_add_kind(struct authz *set, enum authz_kind kind, const char *value, char *err,
    size_t errsz);

/** authz_load_file(set, path, err, errsz): add the rules of an allow-file:
 *  one rule per line, blank lines and lines starting with '#' skipped.  All
 *  or nothing: on error the set is as it was.  A file without a single rule
 *  is an error too, since an empty list would allow every certificate.
 *  Returns 0, or -1 with "path:line: reason" (or "path: reason") in err. */
int authz_load_file(struct authz *set, const char *path, char *err, size_t errsz);

/** authz_load_file_with(set, path, tagline, arg, err, errsz): as
 *  authz_load_file(), and a line "tag RULE=PATTERN" goes to tagline(entry,
 *  arg, why, whysz) (0, or -1 with why) instead. */
int authz_load_file_with(struct authz *set, const char *path,
    int (*tagline)(const char *entry, void *arg, char *why, size_t whysz), void *arg,
    char *err, size_t errsz);

/** authz_count(set): the number of rules. */
size_t authz_count(const struct authz *set);

/** authz_only_pins(set): non-zero if the set has rules and every one is a
 *  fingerprint or spki pin (so a certificate that does not chain to the CA
 *  may still be allowed by it); 0 for an empty set. */
int authz_only_pins(const struct authz *set);

/** authz_several_cns(set, id): non-zero if set has a cn: rule and the
 *  subject of id holds more than one commonName: which of them a rule
 *  would mean is anyone's guess, so authz_match() refuses it outright. */
int authz_several_cns(const struct authz *set, const struct x509_identity *id);

/** authz_match(set, id, rule_out, n): is the certificate with identity id
 *  allowed?  A certificate with several CNs is denied whatever it matches
 *  when the set has a cn: rule (authz_several_cns).  Returns AUTHZ_MATCHED with the first matching rule, in the
 *  order added, written as "kind:value" to rule_out ("dns:*.example.com",
 *  "sha256:<lowercase hex>"); AUTHZ_NO_RULES with "any" for an empty set;
 *  AUTHZ_DENIED with "" otherwise.  id NULL (no certificate, as on a resumed
 *  session) matches no rule.  rule_out may be NULL; AUTHZ_RULE_TEXT_MAX
 *  bytes always hold the text, a shorter buffer gets it truncated. */
int authz_match(const struct authz *set, const struct x509_identity *id, char *rule_out,
    size_t n);

/** authz_nets_new(): an empty network set, or NULL when out of memory. */
struct authz_nets *authz_nets_new(void);

/** authz_nets_free(nets): free the set; NULL is fine. */
void authz_nets_free(struct authz_nets *nets);

/** authz_net_add(nets, cidr, err, errsz): add "10.0.0.0/8", "fd00::/8" or an
 *  address alone (= /32 or /128).  Host bits set after the prefix are
 *  refused (10.0.0.1/8 is likely a typo).  An IPv4-mapped network
 *  (::ffff:10.0.0.0/104) is stored as the IPv4 one.  Returns 0, or -1 with
 *  the reason in err. */
int authz_net_add(struct authz_nets *nets, const char *cidr, char *err, size_t errsz);

/** authz_net_count(nets): the number of networks. */
size_t authz_net_count(const struct authz_nets *nets);

/** authz_net_match(nets, sa, net_out, n): is a peer at sa (AF_INET or
 *  AF_INET6) allowed?  An IPv4-mapped IPv6 address (::ffff:a.b.c.d, an IPv4
 *  client on an IPv6 socket) is taken as the IPv4 address: it matches IPv4
 *  networks and no IPv6 one, not even ::/0.  Returns AUTHZ_MATCHED with the
 *  first matching network ("10.0.0.0/8") in net_out, AUTHZ_NO_RULES with
 *  "any" for an empty set, AUTHZ_DENIED with "" otherwise (also for other
 *  address families).  net_out may be NULL. */
int authz_net_match(const struct authz_nets *nets, const struct sockaddr *sa, char *net_out,
    size_t n);

#endif
