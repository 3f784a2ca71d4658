/* fwd_int: what the forward reader's files share: fwd.c (the input window,
 * framing, states), fwd_out.c (events and pieces written), fwd_packed.c
 * (PackedForward payloads, decompression), fwd_claims.c. */
#ifndef TLSFWD_FWD_INT_H
#define TLSFWD_FWD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <zlib.h>
#include <zstd.h>

#include "fwd.h"

#include "filter.h"
#include "ring.h"

#define FWD_CLAIMS_DEPTH	32	/* msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE) */

/* What the objects of a byte stream claim, followed across the pieces it
 * arrives in (fwd_claims_feed()). */
struct fwd_claims {
	uint64_t pos;		/* bytes of the current top-level object so far */
	uint64_t owed;		/* elements its open containers still expect */
	uint64_t skip;		/* body bytes (str, bin, ext, number) still to pass */
	uint32_t left[FWD_CLAIMS_DEPTH];	/* elements each open container expects */
	int depth;
	unsigned char hdr[5];	/* a header cut between two pieces */
	unsigned hlen;
};

/** fwd_claims_feed(cl, p, n, one): follow the msgpack headers in *n more
 *  bytes at p.  With one, stop after the first top-level object (*n is then
 *  how far it went).  0; -1 if a container claims more than FWD_EVENT_MAX
 *  allows or nests deeper than msgpack-c would; -2 if a byte starts no
 *  object. */
int fwd_claims_feed(struct fwd_claims *cl, const unsigned char *p, size_t *n, int one);

#define FWD_ACC_MAX		(FWD_EVENT_MAX + RING_SIZE)	/* the input window */
#define FWD_SCRATCH		16384	/* decompressed bytes handed to msgpack-c at once */
#define FWD_HDR32		5	/* bin32/array32 header, patched when a piece closes */

enum state {
	S_REQ,		/* a request's first byte */
	S_TAG,
	S_PING,		/* the rest of a PING, copied */
	S_SECOND,	/* the second element's header decides the mode */
	S_MSG_TIME, S_MSG_RECORD, S_MSG_OPTION,
	S_ENTRIES,	/* Forward: the entries left */
	S_PACKED_HEAD,	/* PackedForward: sniff the compression */
	S_PACKED,	/* PackedForward: the payload left */
	S_OPTION,	/* a Forward or PackedForward request's option */
};

enum mode { M_FORWARD, M_PACKED };

enum comp { C_NONE, C_GZIP, C_ZSTD };

struct fwd {
	struct filter f;
	unsigned long long max_req, req_bytes;
	unsigned long long unz_bytes;	/* a compressed payload's bytes, decompressed */
	enum state state;
	int first;		/* no request yet: JSON and PING are recognised */
	int need_stamp;
	struct fwd_stamp *stamp;
	int need_tags;		/* refuse requests until fwd_set_tags() */
	struct tagacl_set *tags;	/* the tags this client may write, or NULL: any */

	/* The input window: bytes taken from the ring, not yet parsed. */
	unsigned char *acc;
	size_t alen, apos, acap;

	/* The request being read. */
	unsigned nelem;		/* its array's length */
	unsigned ping_left;
	enum mode mode;
	char tag[FWD_TAG_MAX + 1];	/* as it will be written (prefixed) */
	size_t tag_len;
	uint64_t left;		/* entries (Forward) or payload bytes (PackedForward) */
	enum comp comp;
	z_stream z;
	int z_live, z_ended;
	const char *z_err;	/* a decompression error, after the output before it */
	size_t scr_pos, scr_len;	/* decompressed bytes msgpack-c has not had */
	ZSTD_DStream *zs;
	size_t z_ret;
	msgpack_unpacker *inner;
	struct fwd_claims inner_claims;	/* of the bytes given to inner */
	msgpack_sbuffer raw;	/* the bytes of the event inner is given */
	unsigned char *scratch;

	/* Output: pend[0, ready) waits for the output ring (pend[off, ready)
	 * still does); pend[ready, size) is being built. */
	msgpack_sbuffer pend;
	size_t off, ready;
	msgpack_sbuffer ev;	/* one event, packed and stamped */
	int ev_held;		/* ev waits for the next piece */
	int piece_open;
	size_t piece_start, piece_events;
};

/* fwd.c */

/** fwd_fail(fw, why): the request is refused for why.  FILTER_ERROR. */
int fwd_fail(struct fwd *fw, const char *why);

/** fwd_take(fw, n): n bytes of the window are read: they count in the request. */
void fwd_take(struct fwd *fw, size_t n);

/** fwd_need(fw, in, n): at least n bytes in the window.  1, 0 not yet, -1 no memory. */
int fwd_need(struct fwd *fw, struct ring *in, size_t n);

/* fwd_out.c */

/** fwd_sbuf_write(data, buf, len): msgpack-c's writer into an sbuffer. */
int fwd_sbuf_write(void *data, const char *buf, size_t len);

/** fwd_drain(fw, out): copy what pend has ready into out.  1 if anything moved. */
int fwd_drain(struct fwd *fw, struct ring *out);

/** fwd_put_raw(sb, p, n): append n bytes to sb.  0 or -1. */
int fwd_put_raw(msgpack_sbuffer *sb, const void *p, size_t n);

/** fwd_put(fw, p, n): append raw bytes to what is being built.  0 or -1. */
int fwd_put(struct fwd *fw, const void *p, size_t n);

/** fwd_put_tag(pk, fw): the request's tag, prefixed.  0 or -1. */
int fwd_put_tag(msgpack_packer *pk, const struct fwd *fw);

/** fwd_pack_record(fw, pk, sb, rec): rec, stamped.  0, or FILTER_ERROR. */
int fwd_pack_record(struct fwd *fw, msgpack_packer *pk, msgpack_sbuffer *sb,
    const msgpack_object *rec);

/** fwd_is_time(o): an integer, a float or an EventTime. */
int fwd_is_time(const msgpack_object *o);

/** fwd_event(fw, e, raw, len): pack the entry e ([time, record]; its
 *  encoding the len bytes at raw, or NULL) into fw->ev.  0, or FILTER_ERROR. */
int fwd_event(struct fwd *fw, const msgpack_object *e, const unsigned char *raw, size_t len);

/** fwd_piece_open(fw): start a piece in pend (which holds nothing ready).  0 or -1. */
int fwd_piece_open(struct fwd *fw);

/** fwd_piece_close(fw, opt): patch the piece's length, add its option map
 *  ({"size": n} and, on the last piece, the rest of opt), make it ready.  0 or -1. */
int fwd_piece_close(struct fwd *fw, const msgpack_object *opt);

/** fwd_place(fw): put the event in fw->ev into the open piece (or hold it
 *  until the piece before it went).  0 or -1. */
int fwd_place(struct fwd *fw);

/* fwd_packed.c */

/** fwd_packed_head(fw, in): sniff a PackedForward payload's compression and
 *  set up its reading.  1, 0 not yet, or FILTER_ERROR. */
int fwd_packed_head(struct fwd *fw, struct ring *in);

/** fwd_packed(fw, in): the next event of the payload.  1, 0 not yet, or FILTER_ERROR. */
int fwd_packed(struct fwd *fw, struct ring *in);

/** fwd_packed_end(fw): free what a payload needed (nothing held: fine). */
void fwd_packed_end(struct fwd *fw);

/** fwd_compressed_is(opt, name): opt's "compressed" is name (NULL: absent or "text"). */
int fwd_compressed_is(const msgpack_object *opt, const char *name);

#endif
