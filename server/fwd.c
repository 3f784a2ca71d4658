/* fwd: the forward-protocol reader; see fwd.h. */
#include "fwd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zlib.h>
#include <zstd.h>

#include "filter.h"
#include "fwd_int.h"
#include "ring.h"

#define ACC_MAX		(FWD_EVENT_MAX + RING_SIZE)	/* the input window */
#define SCRATCH		16384	/* decompressed bytes handed to msgpack-c at once */
#define HDR32		5	/* bin32/array32 header, patched when a piece closes */

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
	enum state state;
	int first;		/* no request yet: JSON and PING are recognised */
	int need_stamp;
	struct fwd_stamp *stamp;

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

static void fwd_free(struct filter *f);
static int fwd_run(struct filter *f, struct ring *in, struct ring *out, int eof);

static const struct filter_ops fwd_ops = { fwd_run, fwd_free };

/* fail(fw, why): the request is refused.  FILTER_ERROR. */
static int fail(struct fwd *fw, const char *why)
{
	fw->f.why = why;
	return FILTER_ERROR;
}

/* -- input -- */

/* take(fw, n): n bytes of the window are read: they count in the request. */
static void take(struct fwd *fw, size_t n)
{
	fw->apos += n;
	fw->req_bytes += n;
	if (fw->apos == fw->alen) {
		free(fw->acc);
		fw->acc = NULL;
		fw->alen = fw->apos = fw->acap = 0;
	}
}

/* fill(fw, in): move what the ring holds into the window, up to ACC_MAX.
 * Returns the bytes moved, or -1 out of memory. */
static long fill(struct fwd *fw, struct ring *in)
{
	long moved = 0;
	size_t n;

	if (ring_len(in) == 0)
		return 0;
	if (fw->apos > 0) {
		memmove(fw->acc, fw->acc + fw->apos, fw->alen - fw->apos);
		fw->alen -= fw->apos;
		fw->apos = 0;
	}
	/* The window grows as an object needs it: most requests are small,
	 * and a buffer under glibc's mmap threshold costs no system call. */
	n = ring_len(in) < ACC_MAX - fw->alen ? ring_len(in) : ACC_MAX - fw->alen;
	if (fw->acap - fw->alen < n) {
		size_t cap = fw->acap * 2 > fw->alen + n ? fw->acap * 2 : fw->alen + n;
		unsigned char *a;

		if (cap < 2 * RING_SIZE)
			cap = 2 * RING_SIZE;
		if (cap > ACC_MAX)
			cap = ACC_MAX;
		if ((a = realloc(fw->acc, cap)) == NULL)
			return -1;
		fw->acc = a;
		fw->acap = cap;
	}
	while (ring_len(in) > 0 && fw->alen < ACC_MAX) {
		const unsigned char *p = ring_rdata(in, &n);

		if (n > ACC_MAX - fw->alen)
			n = ACC_MAX - fw->alen;
		memcpy(fw->acc + fw->alen, p, n);
		fw->alen += n;
		ring_consume(in, n);
		moved += (long)n;
	}
	return moved;
}

/* need(fw, in, n): at least n bytes in the window.  1, 0 not yet, -1 no memory. */
static int need(struct fwd *fw, struct ring *in, size_t n)
{
	if (fw->alen - fw->apos >= n)
		return 1;
	if (fill(fw, in) < 0)
		return -1;
	return fw->alen - fw->apos >= n;
}

/*-
 * object(fw, in, res, size): the next complete object of the window, decoded
 * by msgpack-c into res, its encoded size in *size (the bytes stay in the
 * window until take()).  1, 0 not complete yet, or FILTER_ERROR.  An
 * incomplete object is decoded again from its start when more bytes came:
 * a 1 MiB record arriving in 16 KiB records costs 64 tries, about 30 MiB of
 * decoding; requests of ordinary events take one each.
 */
static int object(struct fwd *fw, struct ring *in, msgpack_unpacked *res, size_t *size)
{
	int rc;

	for (;;) {
		size_t avail = fw->alen - fw->apos, off = 0, seen = avail;
		struct fwd_claims cl = { 0 };
		long more;

		if (avail > 0 && (rc = fwd_claims_feed(&cl, fw->acc + fw->apos, &seen, 1)) < 0)
			return fail(fw, rc == -1 ? "fwd_event_too_large" : "fwd_malformed");
		if (avail > 0) {
			switch (msgpack_unpack_next(res, (const char *)fw->acc + fw->apos, avail, &off)) {
			case MSGPACK_UNPACK_SUCCESS:
			case MSGPACK_UNPACK_EXTRA_BYTES:
				*size = off;
				return 1;
			case MSGPACK_UNPACK_CONTINUE:
				break;
			case MSGPACK_UNPACK_NOMEM_ERROR:
				return fail(fw, "fwd_nomem");
			default:
				return fail(fw, "fwd_malformed");
			}
		}
		if (avail >= FWD_EVENT_MAX)
			return fail(fw, "fwd_event_too_large");
		if ((more = fill(fw, in)) < 0)
			return fail(fw, "fwd_nomem");
		if (more == 0)
			return 0;
	}
}

/* header(p, n, kind, &count, &len): a container header at p (n bytes there):
 * kind 'a' array, 'm' map, 'b' bin or str.  Returns the header's length, 0
 * if p is not such a header, -1 if more bytes are needed. */
static int header(const unsigned char *p, size_t n, int kind, uint64_t *count)
{
	unsigned char b;
	int len;

	if (n < 1)
		return -1;
	b = p[0];
	if (kind == 'a' && (b & 0xf0) == 0x90)
		return *count = b & 0x0f, 1;
	if (kind == 'm' && (b & 0xf0) == 0x80)
		return *count = b & 0x0f, 1;
	if (kind == 'b' && (b & 0xe0) == 0xa0)
		return *count = b & 0x1f, 1;
	if ((kind == 'a' && b == 0xdc) || (kind == 'm' && b == 0xde) ||
	    (kind == 'b' && (b == 0xda || b == 0xc5)))
		len = 3;
	else if ((kind == 'a' && b == 0xdd) || (kind == 'm' && b == 0xdf) ||
	    (kind == 'b' && (b == 0xdb || b == 0xc6)))
		len = 5;
	else if (kind == 'b' && (b == 0xd9 || b == 0xc4))
		len = 2;
	else
		return 0;
	if (n < (size_t)len)
		return -1;
	*count = 0;
	for (int i = 1; i < len; i++)
		*count = *count << 8 | p[i];
	return len;
}

/* -- output -- */

static int sbuf_write(void *data, const char *buf, size_t len)
{
	return msgpack_sbuffer_write(data, buf, len);
}

/* drain(fw, out): copy what pend has ready into out.  1 if anything moved. */
static int drain(struct fwd *fw, struct ring *out)
{
	int moved = 0;

	while (fw->off < fw->ready) {
		size_t n;
		unsigned char *p = ring_wspace(out, &n);

		if (p == NULL)
			break;
		if (n > fw->ready - fw->off)
			n = fw->ready - fw->off;
		memcpy(p, fw->pend.data + fw->off, n);
		ring_commit(out, n);
		fw->off += n;
		moved = 1;
	}
	if (fw->off == fw->ready && fw->ready > 0) {
		/* What is being built moves to the front. */
		memmove(fw->pend.data, fw->pend.data + fw->ready, fw->pend.size - fw->ready);
		fw->pend.size -= fw->ready;
		fw->off = fw->ready = 0;
	}
	if (fw->pend.size == 0 && fw->pend.data != NULL) {
		msgpack_sbuffer_destroy(&fw->pend);
		msgpack_sbuffer_init(&fw->pend);
	}
	return moved;
}

/* put_raw(sb, p, n): append n bytes to sb.  0 or -1. */
static int put_raw(msgpack_sbuffer *sb, const void *p, size_t n)
{
	return n > 0 ? msgpack_sbuffer_write(sb, p, n) : 0;
}

/* put(fw, p, n): append raw bytes to what is being built.  0 or -1. */
static int put(struct fwd *fw, const void *p, size_t n)
{
	return msgpack_sbuffer_write(&fw->pend, p, n);
}

/* put_tag(fw, pk): the request's tag, prefixed. */
static int put_tag(msgpack_packer *pk, const struct fwd *fw)
{
	return msgpack_pack_str(pk, fw->tag_len) || msgpack_pack_str_body(pk, fw->tag, fw->tag_len);
}

/* is_stamp_key(fw, k): k is a key the stamp writes. */
static int is_stamp_key(const struct fwd *fw, const msgpack_object *k)
{
	unsigned i;

	if (k->type != MSGPACK_OBJECT_STR)
		return 0;
	for (i = 0; i < fw->stamp->n; i++)
		if (strlen(fw->stamp->keys[i]) == k->via.str.size &&
		    memcmp(fw->stamp->keys[i], k->via.str.ptr, k->via.str.size) == 0)
			return 1;
	return 0;
}

/* pack_record(fw, pk, sb, rec): rec, stamped (a map), or as it is when there
 * is no stamp or it is nil (Fluentd drops a nil record).  0, or FILTER_ERROR. */
static int pack_record(struct fwd *fw, msgpack_packer *pk, msgpack_sbuffer *sb,
    const msgpack_object *rec)
{
	uint32_t i, n;

	if (fw->stamp == NULL || fw->stamp->n == 0 || rec->type == MSGPACK_OBJECT_NIL)
		return msgpack_pack_object(pk, *rec) < 0 ? fail(fw, "fwd_nomem") : 0;
	if (rec->type != MSGPACK_OBJECT_MAP)
		return fail(fw, "fwd_record_not_a_map");
	for (i = n = 0; i < rec->via.map.size; i++)
		n += !is_stamp_key(fw, &rec->via.map.ptr[i].key);
	if (msgpack_pack_map(pk, n + fw->stamp->n) < 0)
		return fail(fw, "fwd_nomem");
	for (i = 0; i < rec->via.map.size; i++) {
		const msgpack_object_kv *kv = &rec->via.map.ptr[i];

		if (is_stamp_key(fw, &kv->key))
			continue;
		if (msgpack_pack_object(pk, kv->key) < 0 || msgpack_pack_object(pk, kv->val) < 0)
			return fail(fw, "fwd_nomem");
	}
	if (msgpack_sbuffer_write(sb, (const char *)fw->stamp->kv, fw->stamp->kv_len) < 0)
		return fail(fw, "fwd_nomem");
	return 0;
}

/* is_time(o): an integer, a float or an EventTime. */
static int is_time(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return 1;
	case MSGPACK_OBJECT_EXT:
		return o->via.ext.type == 0 && o->via.ext.size == 8;
	default:
		return 0;
	}
}

/* head_len(b): the length of the array or map header that starts with b. */
static size_t head_len(unsigned char b)
{
	return b == 0xdc || b == 0xde ? 3 : b == 0xdd || b == 0xdf ? 5 : 1;
}

/*-
 * event_raw(fw, e, raw, len): pack the entry e, whose encoding is the len
 * bytes at raw, into fw->ev from those bytes: its time and its record's
 * pairs as they came, a map header counting the stamp's pairs too, then
 * the stamp.  Re-encoding every value with msgpack-c cost about a fifth of
 * the server's CPU.  Only for a map record with none of the stamp's keys
 * (else pack_record() leaves them out).  0, or FILTER_ERROR.
 */
static int event_raw(struct fwd *fw, const msgpack_object *e, const unsigned char *raw,
    size_t len)
{
	struct fwd_claims cl = { 0 };
	size_t a = head_len(raw[0]), t = len - a, m;
	const msgpack_object *rec = &e->via.array.ptr[1];
	msgpack_packer pk;

	if (fwd_claims_feed(&cl, raw + a, &t, 1) < 0 || a + t >= len)
		return fail(fw, "fwd_malformed");	/* msgpack-c read it: cannot be */
	m = head_len(raw[a + t]);
	msgpack_packer_init(&pk, &fw->ev, sbuf_write);
	if (msgpack_pack_array(&pk, 2) < 0 || put_raw(&fw->ev, raw + a, t) < 0 ||
	    msgpack_pack_map(&pk, rec->via.map.size + fw->stamp->n) < 0 ||
	    put_raw(&fw->ev, raw + a + t + m, len - a - t - m) < 0 ||
	    put_raw(&fw->ev, fw->stamp->kv, fw->stamp->kv_len) < 0)
		return fail(fw, "fwd_nomem");
	return 0;
}

/* event(fw, e, raw, len): pack the entry e ([time, record]; its encoding the
 * len bytes at raw, or NULL) into fw->ev.  0, or FILTER_ERROR. */
static int event(struct fwd *fw, const msgpack_object *e, const unsigned char *raw, size_t len)
{
	msgpack_packer pk;
	const msgpack_object *rec;
	uint32_t i;

	if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
	    !is_time(&e->via.array.ptr[0]))
		return fail(fw, "fwd_bad_entry");
	fw->ev.size = 0;
	rec = &e->via.array.ptr[1];
	if (raw != NULL && fw->stamp != NULL && fw->stamp->n > 0 &&
	    rec->type == MSGPACK_OBJECT_MAP) {
		for (i = 0; i < rec->via.map.size && !is_stamp_key(fw, &rec->via.map.ptr[i].key); i++)
			;
		if (i == rec->via.map.size)
			return event_raw(fw, e, raw, len);
	}
	msgpack_packer_init(&pk, &fw->ev, sbuf_write);
	if (msgpack_pack_array(&pk, 2) < 0 || msgpack_pack_object(&pk, e->via.array.ptr[0]) < 0)
		return fail(fw, "fwd_nomem");
	return pack_record(fw, &pk, &fw->ev, rec);
}

/* piece_open(fw): start a piece in pend (which holds nothing ready). */
static int piece_open(struct fwd *fw)
{
	msgpack_packer pk;
	unsigned char hdr[HDR32] = { fw->mode == M_PACKED ? 0xc6 : 0xdd, 0, 0, 0, 0 };

	fw->piece_start = fw->pend.size;
	msgpack_packer_init(&pk, &fw->pend, sbuf_write);
	if (msgpack_pack_array(&pk, 3) < 0 || put_tag(&pk, fw) < 0 || put(fw, hdr, sizeof(hdr)) < 0)
		return -1;
	fw->piece_open = 1;
	fw->piece_events = 0;
	return 0;
}

/* piece_close(fw, opt): patch the piece's length, add its option map
 * ({"size": n} and, on the last piece, the rest of opt), make it ready. */
static int piece_close(struct fwd *fw, const msgpack_object *opt)
{
	msgpack_packer pk;
	size_t at = fw->piece_start + 1 + (fw->tag_len < 32 ? 1 : fw->tag_len < 256 ? 2 : 3) + fw->tag_len;
	uint32_t i, n = 0, len = fw->mode == M_PACKED ?
	    (uint32_t)(fw->pend.size - at - HDR32) : (uint32_t)fw->piece_events;
	unsigned char *p = (unsigned char *)fw->pend.data + at + 1;

	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
	msgpack_packer_init(&pk, &fw->pend, sbuf_write);
	if (opt != NULL && opt->type == MSGPACK_OBJECT_MAP)
		for (i = 0; i < opt->via.map.size; i++) {
			const msgpack_object *k = &opt->via.map.ptr[i].key;

			n += !(k->type == MSGPACK_OBJECT_STR &&
			    ((k->via.str.size == 4 && memcmp(k->via.str.ptr, "size", 4) == 0) ||
			    (k->via.str.size == 10 && memcmp(k->via.str.ptr, "compressed", 10) == 0)));
		}
	if (msgpack_pack_map(&pk, n + 1) < 0 || msgpack_pack_str_with_body(&pk, "size", 4) < 0 ||
	    msgpack_pack_uint64(&pk, fw->piece_events) < 0)
		return -1;
	if (opt != NULL && opt->type == MSGPACK_OBJECT_MAP)
		for (i = 0; i < opt->via.map.size; i++) {
			const msgpack_object_kv *kv = &opt->via.map.ptr[i];
			const msgpack_object *k = &kv->key;

			if (k->type == MSGPACK_OBJECT_STR &&
			    ((k->via.str.size == 4 && memcmp(k->via.str.ptr, "size", 4) == 0) ||
			    (k->via.str.size == 10 && memcmp(k->via.str.ptr, "compressed", 10) == 0)))
				continue;
			if (msgpack_pack_object(&pk, kv->key) < 0 || msgpack_pack_object(&pk, kv->val) < 0)
				return -1;
		}
	fw->ready = fw->pend.size;
	fw->piece_open = 0;
	return 0;
}

/*-
 * place(fw): put the event in fw->ev into the open piece.  A piece that the
 * event would take past FWD_PIECE_MAX is closed first and the event waits
 * (ev_held) until the piece has gone to the output ring.  0 or -1.
 */
static int place(struct fwd *fw)
{
	if (fw->piece_open && fw->piece_events > 0 &&
	    fw->pend.size - fw->ready + fw->ev.size > FWD_PIECE_MAX) {
		fw->ev_held = 1;
		return piece_close(fw, NULL);
	}
	if (fw->ready > 0) {	/* a piece still waits: this one starts after it */
		fw->ev_held = 1;
		return 0;
	}
	if (!fw->piece_open && piece_open(fw) < 0)
		return -1;
	if (put(fw, fw->ev.data, fw->ev.size) < 0)
		return -1;
	fw->piece_events++;
	fw->ev_held = 0;
	return 0;
}

/* request_done(fw): the request was read and written out. */
static void request_done(struct fwd *fw)
{
	if (fw->z_live)
		inflateEnd(&fw->z);
	fw->z_live = 0;
	ZSTD_freeDStream(fw->zs);
	fw->zs = NULL;
	if (fw->inner != NULL)
		msgpack_unpacker_free(fw->inner);
	fw->inner = NULL;
	free(fw->scratch);
	fw->scratch = NULL;
	msgpack_sbuffer_destroy(&fw->ev);
	msgpack_sbuffer_init(&fw->ev);
	msgpack_sbuffer_destroy(&fw->raw);
	msgpack_sbuffer_init(&fw->raw);
	fw->state = S_REQ;
	fw->first = 0;
}

/* -- the states -- */

/* st_req(fw, in): a request's first byte: nil, or an array's header. */
static int st_req(struct fwd *fw, struct ring *in)
{
	uint64_t n;
	int rc, len;
	unsigned char b;

	if ((rc = need(fw, in, 1)) <= 0)
		return rc < 0 ? fail(fw, "fwd_nomem") : 0;
	fw->req_bytes = 0;
	b = fw->acc[fw->apos];
	if (fw->first && (b == '{' || b == '['))
		return fail(fw, "fwd_json_unsupported");
	if (fw->need_stamp && fw->stamp == NULL)
		return fail(fw, "fwd_no_identity");
	if (b == 0xc0) {		/* nil: a no-op request */
		if (fw->ready > 0)
			return 0;
		if (put(fw, &b, 1) < 0)
			return fail(fw, "fwd_nomem");
		fw->ready = fw->pend.size;
		take(fw, 1);
		fw->first = 0;
		return 1;
	}
	while ((len = header(fw->acc + fw->apos, fw->alen - fw->apos, 'a', &n)) < 0)
		if ((rc = need(fw, in, fw->alen - fw->apos + 1)) <= 0)
			return rc < 0 ? fail(fw, "fwd_nomem") : 0;
	if (len == 0 || n < 2 || (n > 4 && !(n == 6 && fw->first)))
		return fail(fw, "fwd_not_a_request");
	fw->nelem = (unsigned)n;
	take(fw, (size_t)len);
	fw->state = S_TAG;
	return 1;
}

/* st_tag(fw, in): the tag (a string), prefixed. */
static int st_tag(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	size_t size, plen = fw->stamp != NULL && fw->stamp->prefix != NULL ?
	    strlen(fw->stamp->prefix) : 0;
	int rc;

	msgpack_unpacked_init(&res);
	if ((rc = object(fw, in, &res, &size)) <= 0)
		goto out;
	rc = FILTER_ERROR;
	if (res.data.type != MSGPACK_OBJECT_STR && res.data.type != MSGPACK_OBJECT_BIN) {
		fail(fw, "fwd_bad_tag");
		goto out;
	}
	if (fw->nelem == 6) {	/* ["PING", hostname, salt, digest, user, password] */
		if (res.data.via.str.size != 4 || memcmp(res.data.via.str.ptr, "PING", 4) != 0) {
			fail(fw, "fwd_not_a_request");
			goto out;
		}
		if (fw->ready > 0) {
			rc = 0;
			goto out;
		}
		if (put(fw, "\x96", 1) < 0 || put(fw, fw->acc + fw->apos, size) < 0) {
			fail(fw, "fwd_nomem");
			goto out;
		}
		take(fw, size);
		fw->ping_left = 5;
		fw->state = S_PING;
		rc = 1;
		goto out;
	}
	if (res.data.via.str.size + plen > FWD_TAG_MAX) {
		fail(fw, "fwd_tag_too_long");
		goto out;
	}
	memcpy(fw->tag, fw->stamp != NULL && fw->stamp->prefix != NULL ? fw->stamp->prefix : "", plen);
	if (res.data.via.str.size > 0)		/* an empty one may have no pointer */
		memcpy(fw->tag + plen, res.data.via.str.ptr, res.data.via.str.size);
	fw->tag_len = plen + res.data.via.str.size;
	take(fw, size);
	fw->state = S_SECOND;
	rc = 1;
out:
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* copy_object(fw, in, final): the next object copied as it came. */
static int copy_object(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	size_t size;
	int rc;

	msgpack_unpacked_init(&res);
	if ((rc = object(fw, in, &res, &size)) > 0) {
		if (put(fw, fw->acc + fw->apos, size) < 0)
			rc = fail(fw, "fwd_nomem");
		else
			take(fw, size);
	}
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* st_second(fw, in): the second element's header decides the mode: an
 * array is Forward, a bin or str PackedForward, anything else a Message's
 * time. */
static int st_second(struct fwd *fw, struct ring *in)
{
	uint64_t n = 0;
	int rc, len;

	for (;;) {
		size_t avail = fw->alen - fw->apos;
		const unsigned char *p = avail > 0 ? fw->acc + fw->apos : NULL;

		if (avail > 0 && (len = header(p, avail, 'a', &n)) != 0)
			fw->mode = M_FORWARD;
		else if (avail > 0 && (len = header(p, avail, 'b', &n)) != 0)
			fw->mode = M_PACKED;
		else
			len = avail > 0 ? 0 : -1;
		if (len >= 0)
			break;
		if ((rc = need(fw, in, avail + 1)) <= 0)
			return rc < 0 ? fail(fw, "fwd_nomem") : 0;
	}
	if (len == 0) {			/* Message: [tag, time, record, option?] */
		if (fw->nelem != 3 && fw->nelem != 4)
			return fail(fw, "fwd_not_a_request");
		fw->state = S_MSG_TIME;
		return 1;
	}
	if (fw->nelem != 2 && fw->nelem != 3)
		return fail(fw, "fwd_not_a_request");
	/* Refused before any piece leaves when the header already tells: a
	 * payload's length, or entries of 3 bytes at least.  (Pieces that left
	 * before a later refusal carry no chunk: nothing acks them, and the
	 * sender sends the chunk again.) */
	if (fw->req_bytes + len + (fw->mode == M_PACKED ? n : 3 * n) > fw->max_req)
		return fail(fw, "fwd_request_too_large");
	fw->left = n;
	take(fw, (size_t)len);
	fw->state = fw->mode == M_PACKED ? S_PACKED_HEAD : S_ENTRIES;
	return 1;
}

/* st_msg(fw, in): a Message's time, record and option, each as one object;
 * the record stamped.  The Message is built in pend and made ready whole. */
static int st_msg(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	msgpack_packer pk;
	enum state st = fw->state;
	size_t size;
	int rc;

	msgpack_unpacked_init(&res);
	if ((rc = object(fw, in, &res, &size)) <= 0)
		goto out;
	msgpack_packer_init(&pk, &fw->pend, sbuf_write);
	if (st == S_MSG_TIME) {
		if (!is_time(&res.data) && res.data.type != MSGPACK_OBJECT_NIL) {
			rc = fail(fw, "fwd_bad_time");
			goto out;
		}
		if (msgpack_pack_array(&pk, fw->nelem) < 0 || put_tag(&pk, fw) < 0 ||
		    put(fw, fw->acc + fw->apos, size) < 0)
			goto nomem;
	} else if (st == S_MSG_RECORD) {
		if ((rc = pack_record(fw, &pk, &fw->pend, &res.data)) < 0)
			goto out;
	} else {
		if (res.data.type != MSGPACK_OBJECT_MAP && res.data.type != MSGPACK_OBJECT_NIL) {
			rc = fail(fw, "fwd_bad_option");
			goto out;
		}
		if (put(fw, fw->acc + fw->apos, size) < 0)
			goto nomem;
	}
	take(fw, size);
	if (st == S_MSG_TIME) {
		fw->state = S_MSG_RECORD;
	} else if (st == S_MSG_RECORD && fw->nelem == 4) {
		fw->state = S_MSG_OPTION;
	} else {
		fw->ready = fw->pend.size;
		request_done(fw);
	}
	rc = 1;
	goto out;
nomem:
	rc = fail(fw, "fwd_nomem");
out:
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* st_entries(fw, in): one entry of a Forward request. */
static int st_entries(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	size_t size;
	int rc;

	if (fw->left == 0) {
		fw->state = S_OPTION;
		return 1;
	}
	msgpack_unpacked_init(&res);
	if ((rc = object(fw, in, &res, &size)) > 0) {
		if ((rc = event(fw, &res.data, fw->acc + fw->apos, size)) == 0) {
			take(fw, size);
			fw->left--;
			rc = place(fw) < 0 ? fail(fw, "fwd_nomem") : 1;
		}
	}
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* st_packed_head(fw, in): the payload's first bytes say whether it is
 * compressed (gzip 1f 8b, zstd 28 b5 2f fd; an event begins with an array
 * header); the option says so too, and must agree (st_option). */
static int st_packed_head(struct fwd *fw, struct ring *in)
{
	const unsigned char *p;
	size_t want = fw->left < 4 ? (size_t)fw->left : 4;
	int rc;

	if ((rc = need(fw, in, want)) <= 0)
		return rc < 0 ? fail(fw, "fwd_nomem") : 0;
	p = want > 0 ? fw->acc + fw->apos : NULL;
	fw->comp = C_NONE;
	if (want >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		fw->comp = C_GZIP;
	else if (want == 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0)
		fw->comp = C_ZSTD;
	memset(&fw->inner_claims, 0, sizeof(fw->inner_claims));
	fw->scr_pos = fw->scr_len = 0;
	fw->z_err = NULL;
	if ((fw->inner = msgpack_unpacker_new(SCRATCH)) == NULL)
		return fail(fw, "fwd_nomem");
	if (fw->comp != C_NONE && (fw->scratch = malloc(SCRATCH)) == NULL)
		return fail(fw, "fwd_nomem");
	if (fw->comp == C_GZIP) {
		memset(&fw->z, 0, sizeof(fw->z));
		if (inflateInit2(&fw->z, 16 + MAX_WBITS) != Z_OK)
			return fail(fw, "fwd_nomem");
		fw->z_live = 1;
		fw->z_ended = 0;
	} else if (fw->comp == C_ZSTD) {
		if ((fw->zs = ZSTD_createDStream()) == NULL ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(fw->zs, ZSTD_d_windowLogMax,
		    FWD_ZSTD_WINDOW_LOG_MAX)))
			return fail(fw, "fwd_nomem");
		fw->z_ret = 1;
	}
	fw->state = S_PACKED;
	return 1;
}

/* payload(fw, in, &n): where the next payload bytes are (the window first,
 * then the ring), n of them (not beyond the payload), or NULL. */
static const unsigned char *payload(struct fwd *fw, struct ring *in, size_t *n, int *from_acc)
{
	const unsigned char *p;

	if (fw->apos < fw->alen) {
		p = fw->acc + fw->apos;
		*n = fw->alen - fw->apos;
		*from_acc = 1;
	} else {
		p = ring_rdata(in, n);
		*from_acc = 0;
	}
	if (*n > fw->left)
		*n = (size_t)fw->left;
	return *n > 0 ? p : NULL;
}

/* payload_take(fw, in, n, from_acc): n payload bytes were used. */
static void payload_take(struct fwd *fw, struct ring *in, size_t n, int from_acc)
{
	if (from_acc) {
		take(fw, n);
	} else {
		ring_consume(in, n);
		fw->req_bytes += n;
	}
	fw->left -= n;
}

/*-
 * feed(fw, p, n): give msgpack-c the bytes at p up to the end of the first
 * event that ends within n (all n if none does), so that it is handed one
 * event at a time and every refusal comes in the order of the stream,
 * however the stream was cut.  Returns the bytes given, or FILTER_ERROR.
 */
static long feed(struct fwd *fw, const void *p, size_t n)
{
	size_t seen = n;
	int rc;

	if ((rc = fwd_claims_feed(&fw->inner_claims, p, &seen, 1)) < 0)
		return fail(fw, rc == -1 ? "fwd_event_too_large" : "fwd_malformed");
	if (!msgpack_unpacker_reserve_buffer(fw->inner, seen) ||
	    put_raw(&fw->raw, p, seen) < 0)
		return fail(fw, "fwd_nomem");
	memcpy(msgpack_unpacker_buffer(fw->inner), p, seen);
	msgpack_unpacker_buffer_consumed(fw->inner, seen);
	return (long)seen;
}

/* decompress(fw, p, n): decompress payload bytes at p (n of them) into the
 * scratch buffer.  The bytes of p used, or FILTER_ERROR; an error of the
 * data itself waits (z_err) until the output before it went to msgpack-c,
 * so the outcome is the same however the payload was cut. */
static long decompress(struct fwd *fw, const unsigned char *p, size_t n)
{
	if (fw->comp == C_GZIP) {
		int ret;

		if (fw->z_ended) {	/* another member follows */
			if (inflateReset(&fw->z) != Z_OK)
				return fail(fw, "fwd_bad_gzip");
			fw->z_ended = 0;
		}
		fw->z.next_in = (unsigned char *)(uintptr_t)p;
		fw->z.avail_in = (unsigned)n;
		fw->z.next_out = fw->scratch;
		fw->z.avail_out = SCRATCH;
		ret = inflate(&fw->z, Z_NO_FLUSH);
		fw->scr_len = SCRATCH - fw->z.avail_out;
		if (ret == Z_STREAM_END)
			fw->z_ended = 1;
		else if (ret != Z_OK && ret != Z_BUF_ERROR)
			fw->z_err = "fwd_bad_gzip";
		else if (fw->scr_len == 0 && fw->z.avail_in == n && fw->left == n)
			fw->z_err = "fwd_truncated_gzip";	/* no progress with all there is */
		return (long)(n - fw->z.avail_in);
	} else {
		ZSTD_inBuffer zin = { p, n, 0 };
		ZSTD_outBuffer zout = { fw->scratch, SCRATCH, 0 };

		fw->z_ret = ZSTD_decompressStream(fw->zs, &zout, &zin);
		fw->scr_len = zout.pos;
		if (ZSTD_isError(fw->z_ret))
			fw->z_err = "fwd_bad_zstd";
		else if (fw->scr_len == 0 && zin.pos == 0 && fw->left == n && fw->z_ret != 0)
			fw->z_err = "fwd_truncated_zstd";
		return (long)zin.pos;
	}
}

/* inflow(fw, in): more event bytes for msgpack-c: payload bytes as they are,
 * or decompressed.  1 fed, 0 nothing yet, 2 the payload is done, or
 * FILTER_ERROR. */
static int inflow(struct fwd *fw, struct ring *in)
{
	const unsigned char *p;
	size_t n = 0;
	int from_acc = 0;
	long k;

	if (fw->scr_pos < fw->scr_len) {	/* decompressed, not given yet */
		if ((k = feed(fw, fw->scratch + fw->scr_pos, fw->scr_len - fw->scr_pos)) < 0)
			return FILTER_ERROR;
		fw->scr_pos += (size_t)k;
		return 1;
	}
	if (fw->z_err != NULL)
		return fail(fw, fw->z_err);
	p = payload(fw, in, &n, &from_acc);
	if (fw->comp == C_NONE) {
		if (p == NULL)
			return fw->left == 0 ? 2 : 0;
		if ((k = feed(fw, p, n < SCRATCH ? n : SCRATCH)) < 0)
			return FILTER_ERROR;
		payload_take(fw, in, (size_t)k, from_acc);
		return 1;
	}
	if (fw->left == 0 && (fw->comp == C_GZIP ? fw->z_ended : fw->z_ret == 0))
		return 2;
	if (p == NULL && fw->left > 0)
		return 0;	/* wait for more of the payload */
	fw->scr_pos = fw->scr_len = 0;
	if ((k = decompress(fw, p, n)) < 0)
		return FILTER_ERROR;
	if (k > 0)
		payload_take(fw, in, (size_t)k, from_acc);
	if (k == 0 && fw->scr_len == 0 && fw->z_err == NULL)
		return fw->left == 0 ? fail(fw, fw->comp == C_GZIP ? "fwd_truncated_gzip" :
		    "fwd_truncated_zstd") : 0;
	return 1;
}

/* st_packed(fw, in): the events of a PackedForward payload, one by one. */
static int st_packed(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	int rc;

	msgpack_unpacked_init(&res);
	switch (msgpack_unpacker_next(fw->inner, &res)) {
	case MSGPACK_UNPACK_SUCCESS:
		/* feed() gave inner exactly this event: its bytes are in raw */
		if ((rc = event(fw, &res.data, (const unsigned char *)fw->raw.data,
		    fw->raw.size)) == 0)
			rc = place(fw) < 0 ? fail(fw, "fwd_nomem") : 1;
		fw->raw.size = 0;
		break;
	case MSGPACK_UNPACK_CONTINUE:
		if (msgpack_unpacker_message_size(fw->inner) > FWD_EVENT_MAX) {
			rc = fail(fw, "fwd_event_too_large");
			break;
		}
		if ((rc = inflow(fw, in)) == 2) {
			if (msgpack_unpacker_message_size(fw->inner) > 0) {
				rc = fail(fw, "fwd_truncated_event");
				break;
			}
			fw->state = S_OPTION;
			rc = 1;
		}
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rc = fail(fw, "fwd_nomem");
		break;
	default:
		rc = fail(fw, "fwd_malformed");
		break;
	}
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* compressed_is(opt, name): opt's "compressed" is name (NULL: absent or "text"). */
static int compressed_is(const msgpack_object *opt, const char *name)
{
	uint32_t i;

	if (opt != NULL && opt->type == MSGPACK_OBJECT_MAP)
		for (i = 0; i < opt->via.map.size; i++) {
			const msgpack_object *k = &opt->via.map.ptr[i].key, *v = &opt->via.map.ptr[i].val;

			if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 10 ||
			    memcmp(k->via.str.ptr, "compressed", 10) != 0)
				continue;
			if (v->type != MSGPACK_OBJECT_STR)
				return 0;
			if (name == NULL)
				return v->via.str.size == 4 && memcmp(v->via.str.ptr, "text", 4) == 0;
			return v->via.str.size == strlen(name) &&
			    memcmp(v->via.str.ptr, name, v->via.str.size) == 0;
		}
	return name == NULL;
}

/* st_option(fw, in): the option of a Forward or PackedForward request (if
 * it has one); then the last piece. */
static int st_option(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	size_t size = 0;
	int rc = 1;
	static const char *const names[] = { NULL, "gzip", "zstd" };

	if (fw->ready > 0 || fw->ev_held)
		return 0;	/* the last piece is built when the others went */
	msgpack_unpacked_init(&res);
	if (fw->nelem == 3) {
		if ((rc = object(fw, in, &res, &size)) <= 0)
			goto out;
		if (res.data.type != MSGPACK_OBJECT_MAP && res.data.type != MSGPACK_OBJECT_NIL) {
			rc = fail(fw, "fwd_bad_option");
			goto out;
		}
	}
	if (fw->mode == M_PACKED &&
	    !compressed_is(fw->nelem == 3 ? &res.data : NULL, names[fw->comp])) {
		rc = fail(fw, "fwd_compression_mismatch");
		goto out;
	}
	if ((!fw->piece_open && piece_open(fw) < 0) ||
	    piece_close(fw, fw->nelem == 3 ? &res.data : NULL) < 0) {
		rc = fail(fw, "fwd_nomem");
		goto out;
	}
	take(fw, size);
	request_done(fw);
	rc = 1;
out:
	msgpack_unpacked_destroy(&res);
	return rc;
}

/* -- the stage -- */

static int fwd_run(struct filter *f, struct ring *in, struct ring *out, int eof)
{
	struct fwd *fw = (struct fwd *)f;
	int moved = 0, rc;

	for (;;) {
		moved |= drain(fw, out);
		if (fw->ready > 0)
			break;		/* the output ring is full */
		if (fw->ev_held) {
			if (place(fw) < 0)
				return fail(fw, "fwd_nomem");
			moved = 1;
			continue;
		}
		switch (fw->state) {
		case S_REQ:
			rc = st_req(fw, in);
			break;
		case S_TAG:
			rc = st_tag(fw, in);
			break;
		case S_PING:
			if ((rc = copy_object(fw, in)) > 0 && --fw->ping_left == 0) {
				fw->ready = fw->pend.size;
				request_done(fw);
			}
			break;
		case S_SECOND:
			rc = st_second(fw, in);
			break;
		case S_MSG_TIME:
		case S_MSG_RECORD:
		case S_MSG_OPTION:
			rc = st_msg(fw, in);
			break;
		case S_ENTRIES:
			rc = st_entries(fw, in);
			break;
		case S_PACKED_HEAD:
			rc = st_packed_head(fw, in);
			break;
		case S_PACKED:
			rc = st_packed(fw, in);
			break;
		default:
			rc = st_option(fw, in);
			break;
		}
		if (rc < 0)
			return FILTER_ERROR;
		if (fw->req_bytes > fw->max_req)
			return fail(fw, "fwd_request_too_large");
		if (rc == 0)
			break;
		moved = 1;
	}
	if (eof && ring_len(in) == 0 && fw->ready == 0 && !fw->ev_held &&
	    (fw->state != S_REQ || fw->apos < fw->alen))
		return fail(fw, "fwd_truncated");
	return moved ? FILTER_PROGRESS : FILTER_IDLE;
}

struct filter *fwd_new(unsigned long long max_request)
{
	struct fwd *fw = calloc(1, sizeof(*fw));

	if (fw == NULL)
		return NULL;
	fw->f.ops = &fwd_ops;
	fw->max_req = max_request;
	fw->first = 1;
	fw->state = S_REQ;
	msgpack_sbuffer_init(&fw->pend);
	msgpack_sbuffer_init(&fw->ev);
	msgpack_sbuffer_init(&fw->raw);
	return &fw->f;
}

void fwd_stamp_free(struct fwd_stamp *s)
{
	unsigned i;

	if (s == NULL)
		return;
	for (i = 0; i < 3; i++)
		free(s->keys[i]);
	free(s->kv);
	free(s->prefix);
	free(s);
}

void fwd_set_stamp(struct filter *f, struct fwd_stamp *s)
{
	struct fwd *fw = (struct fwd *)f;

	fwd_stamp_free(fw->stamp);
	fw->stamp = s;
}

void fwd_need_stamp(struct filter *f)
{
	((struct fwd *)f)->need_stamp = 1;
}

static void fwd_free(struct filter *f)
{
	struct fwd *fw = (struct fwd *)f;

	request_done(fw);
	msgpack_sbuffer_destroy(&fw->pend);
	msgpack_sbuffer_destroy(&fw->ev);
	free(fw->acc);
	fwd_stamp_free(fw->stamp);
	free(fw);
}
