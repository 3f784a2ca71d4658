/* fwd: the server's forward-protocol reader, a filter stage (filter.h) on
 * the bytes a sender sends to Fluentd (end[0] -> end[1]).  Installed only
 * when an option needs it (--stamp-key, --stamp-address-key, --tag-prefix,
 * --max-request-size); without them the server relays bytes untouched.
 *
 * It reads every request mode of the Forward Protocol v1 (Message, Forward,
 * PackedForward, CompressedPackedForward with gzip, several members, or
 * zstd; nil; EventTime and integer times; non-minimal encodings) and writes
 * each request out again, rewritten (tag prefix, stamped records), without
 * ever holding a whole request:
 *
 *   Message                  -> one Message (its option map as it came)
 *   Forward                  -> Forward pieces of at most FWD_PIECE_MAX bytes
 *   PackedForward, also      -> PackedForward pieces (uncompressed: the hop
 *   CompressedPackedForward     to Fluentd is loopback) of at most
 *                               FWD_PIECE_MAX bytes
 *
 * Every piece carries {"size": events in it}; only the last carries the
 * rest of the request's option map (chunk, fluent_signal, ...; not
 * compressed), so Fluentd's {"ack": chunk} still means that the whole
 * request arrived.  An event larger than FWD_PIECE_MAX makes a piece alone.
 * A PING (the sender's half of a <security> handshake) as the first request
 * passes through unchanged; HELO and PONG come from Fluentd and never meet
 * the reader.  JSON requests (in_forward's first byte '{' or '[') are
 * refused.
 *
 * The framing of containers (a request's array, a Forward array, a
 * PackedForward blob) is read from their headers; every object inside is
 * decoded by msgpack-c: msgpack_unpack_next() for a request's elements, the
 * streaming msgpack_unpacker for a PackedForward's events (one at a time),
 * zlib and libzstd for compressed ones.  Before msgpack-c sees a byte, the
 * claims check (fwd_claims.c) follows the headers and refuses a container
 * that claims more elements than FWD_EVENT_MAX bytes could hold: msgpack-c
 * allocates for a claim as soon as it reads it.
 *
 * Memory per connection, whatever a request claims: the input window
 * (FWD_EVENT_MAX + RING_SIZE), one event being written (its size plus the
 * stamp) and a copy of the one being unpacked, one piece waiting for the output ring (FWD_PIECE_MAX plus one
 * event), the event being unpacked (msgpack-c's buffer, up to about twice
 * FWD_EVENT_MAX, and its object tree, 24 bytes per element in the worst
 * case), zlib's state (~45 KiB) or zstd's (its window, at most
 * 2^FWD_ZSTD_WINDOW_LOG_MAX, plus ~130 KiB) while a compressed request is
 * read.  All of it is freed between requests except the input window while
 * it holds bytes. */
#ifndef TLSFWD_FWD_H
#define TLSFWD_FWD_H

#include <stddef.h>

struct filter;
struct sock_addr;
struct x509_identity;

#define FWD_EVENT_MAX		(1u << 20)	/* bytes of one event, record, option or tag */
#define FWD_TAG_MAX		1024		/* bytes of a tag, prefix included */
#define FWD_PIECE_MAX		65536		/* bytes of one piece written to Fluentd */
#define FWD_REQUEST_MAX_DEFAULT	(256ull << 20)	/* Fluentd's file buffer chunk_limit_size */
#define FWD_ZSTD_WINDOW_LOG_MAX	23		/* an 8 MiB zstd window at most */

/* What is added to each record and each tag: made once per connection from
 * its verified identity (fwd_stamp.c), owned by the reader once set. */
struct fwd_stamp {
	unsigned char *kv;	/* n packed key/value pairs, appended to each record */
	size_t kv_len;
	unsigned n;
	char *keys[3];		/* the n keys (a record's own pair of that name is left out) */
	char *prefix;		/* put before each tag, or NULL */
};

/** fwd_new(max_request): a reader refusing requests larger than max_request
 *  bytes (as received), or NULL out of memory.  Freed with filter_free(). */
struct filter *fwd_new(unsigned long long max_request);

/** fwd_set_stamp(f, s): what f adds from now on; f owns s (and frees the
 *  previous one).  s may be NULL: nothing. */
void fwd_set_stamp(struct filter *f, struct fwd_stamp *s);

/** fwd_need_stamp(f): refuse requests until a stamp was set (the server
 *  stamps every record, so a connection without an identity must not send). */
void fwd_need_stamp(struct filter *f);

struct tagacl_set;

/** fwd_set_tags(f, set): from now on only tags set allows pass (set NULL:
 *  any tag); f owns set.  A request with another tag is refused
 *  ("tag_denied", the tag in f->tag) before any of it is written. */
void fwd_set_tags(struct filter *f, struct tagacl_set *set);

/** fwd_need_tags(f): refuse requests until fwd_set_tags() was called. */
void fwd_need_tags(struct filter *f);

/** fwd_stamp_free(s): free s; NULL is fine. */
void fwd_stamp_free(struct fwd_stamp *s);

/* fwd_stamp.c: the stamp from the options and a verified identity. */

/* The options that shape a stamp (NULL: not set). */
struct fwd_opts {
	const char *stamp_key;		/* NAME: the identity map, or */
	const char *stamp_format;	/*   NAME: this template rendered */
	const char *address_key;	/* NAME: the peer's IP address */
	const char *tag_prefix;		/* template put before each tag */
};

/** fwd_template_check(tmpl, tag, why, whysz): tmpl is a valid template
 *  ({cn}, {dns}, {uri}, {fp}, {ou} and text; with tag, text a tag may
 *  hold).  0, or -1 with the reason in why. */
int fwd_template_check(const char *tmpl, int tag, char *why, size_t whysz);

/** fwd_tag_value(v): v may stand in a tag: letters, digits, _ - . only, not
 *  empty, no empty part (a leading, trailing or doubled dot). */
int fwd_tag_value(const char *v);

/** fwd_template_value(id, name, len, fp): id's value for the placeholder
 *  name (len bytes: cn, dns, uri, fp, ou; the first of each; {fp} written
 *  into fp), or NULL when the certificate has none or name is none of them. */
const char *fwd_template_value(const struct x509_identity *id, const char *name, size_t len,
    char fp[65]);

/** fwd_stamp_new(o, id, rule, peer, &s, &why): the stamp for a client with
 *  identity id (NULL: none), admitted by rule (NULL: no rules), from peer.
 *  0, or -1 with *why a stable token: "identity_not_a_tag" when a
 *  --tag-prefix value is missing or holds what a tag may not (the client is
 *  refused), "stamp_too_long", "out_of_memory". */
int fwd_stamp_new(const struct fwd_opts *o, const struct x509_identity *id, const char *rule,
    const struct sock_addr *peer, struct fwd_stamp **s, const char **why);

#endif
