/* fwd_out: what the forward reader writes (fwd.h): events packed and
 * stamped, gathered into pieces of at most FWD_PIECE_MAX bytes, and the
 * pieces handed to the output ring. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fwd.h"
#include "fwd_int.h"
#include "ring.h"

int fwd_sbuf_write(void *data, const char *buf, size_t len)
{
	return msgpack_sbuffer_write(data, buf, len);
}

/* fwd_drain(fw, out): copy what pend has ready into out.  1 if anything moved. */
int fwd_drain(struct fwd *fw, struct ring *out)
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

/* fwd_put_raw(sb, p, n): append n bytes to sb.  0 or -1. */
int fwd_put_raw(msgpack_sbuffer *sb, const void *p, size_t n)
{
	return n > 0 ? msgpack_sbuffer_write(sb, p, n) : 0;
}

/* fwd_put(fw, p, n): append raw bytes to what is being built.  0 or -1. */
int fwd_put(struct fwd *fw, const void *p, size_t n)
{
	return msgpack_sbuffer_write(&fw->pend, p, n);
}

/* fwd_put_tag(fw, pk): the request's tag, prefixed. */
int fwd_put_tag(msgpack_packer *pk, const struct fwd *fw)
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

/* fwd_pack_record(fw, pk, sb, rec): rec, stamped (a map), or as it is when there
 * is no stamp or it is nil (Fluentd drops a nil record).  0, or FILTER_ERROR. */
int fwd_pack_record(struct fwd *fw, msgpack_packer *pk, msgpack_sbuffer *sb,
    const msgpack_object *rec)
{
	uint32_t i, n;

	if (fw->stamp == NULL || fw->stamp->n == 0 || rec->type == MSGPACK_OBJECT_NIL)
		return msgpack_pack_object(pk, *rec) < 0 ? fwd_fail(fw, "fwd_nomem") : 0;
	if (rec->type != MSGPACK_OBJECT_MAP)
		return fwd_fail(fw, "fwd_record_not_a_map");
	for (i = n = 0; i < rec->via.map.size; i++)
		n += !is_stamp_key(fw, &rec->via.map.ptr[i].key);
	if (msgpack_pack_map(pk, n + fw->stamp->n) < 0)
		return fwd_fail(fw, "fwd_nomem");
	for (i = 0; i < rec->via.map.size; i++) {
		const msgpack_object_kv *kv = &rec->via.map.ptr[i];

		if (is_stamp_key(fw, &kv->key))
			continue;
		if (msgpack_pack_object(pk, kv->key) < 0 || msgpack_pack_object(pk, kv->val) < 0)
			return fwd_fail(fw, "fwd_nomem");
	}
	if (msgpack_sbuffer_write(sb, (const char *)fw->stamp->kv, fw->stamp->kv_len) < 0)
		return fwd_fail(fw, "fwd_nomem");
	return 0;
}

/* fwd_is_time(o): an integer, a float or an EventTime. */
int fwd_is_time(const msgpack_object *o)
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
 * (else fwd_pack_record() leaves them out).  0, or FILTER_ERROR.
 */
static int event_raw(struct fwd *fw, const msgpack_object *e, const unsigned char *raw,
    size_t len)
{
	struct fwd_claims cl = { 0 };
	size_t a = head_len(raw[0]), t = len - a, m;
	const msgpack_object *rec = &e->via.array.ptr[1];
	msgpack_packer pk;

	if (fwd_claims_feed(&cl, raw + a, &t, 1) < 0 || a + t >= len)
		return fwd_fail(fw, "fwd_malformed");	/* msgpack-c read it: cannot be */
	m = head_len(raw[a + t]);
	msgpack_packer_init(&pk, &fw->ev, fwd_sbuf_write);
	if (msgpack_pack_array(&pk, 2) < 0 || fwd_put_raw(&fw->ev, raw + a, t) < 0 ||
	    msgpack_pack_map(&pk, rec->via.map.size + fw->stamp->n) < 0 ||
	    fwd_put_raw(&fw->ev, raw + a + t + m, len - a - t - m) < 0 ||
	    fwd_put_raw(&fw->ev, fw->stamp->kv, fw->stamp->kv_len) < 0)
		return fwd_fail(fw, "fwd_nomem");
	return 0;
}

/* fwd_event(fw, e, raw, len): pack the entry e ([time, record]; its encoding the
 * len bytes at raw, or NULL) into fw->ev.  0, or FILTER_ERROR. */
int fwd_event(struct fwd *fw, const msgpack_object *e, const unsigned char *raw, size_t len)
{
	msgpack_packer pk;
	const msgpack_object *rec;
	uint32_t i;

	if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
	    !fwd_is_time(&e->via.array.ptr[0]))
		return fwd_fail(fw, "fwd_bad_entry");
	fw->ev.size = 0;
	rec = &e->via.array.ptr[1];
	if (raw != NULL && fw->stamp != NULL && fw->stamp->n > 0 &&
	    rec->type == MSGPACK_OBJECT_MAP) {
		for (i = 0; i < rec->via.map.size && !is_stamp_key(fw, &rec->via.map.ptr[i].key); i++)
			;
		if (i == rec->via.map.size)
			return event_raw(fw, e, raw, len);
	}
	msgpack_packer_init(&pk, &fw->ev, fwd_sbuf_write);
	if (msgpack_pack_array(&pk, 2) < 0 || msgpack_pack_object(&pk, e->via.array.ptr[0]) < 0)
		return fwd_fail(fw, "fwd_nomem");
	return fwd_pack_record(fw, &pk, &fw->ev, rec);
}

/* fwd_piece_open(fw): start a piece in pend (which holds nothing ready). */
int fwd_piece_open(struct fwd *fw)
{
	msgpack_packer pk;
	unsigned char hdr[FWD_HDR32] = { fw->mode == M_PACKED ? 0xc6 : 0xdd, 0, 0, 0, 0 };

	fw->piece_start = fw->pend.size;
	msgpack_packer_init(&pk, &fw->pend, fwd_sbuf_write);
	if (msgpack_pack_array(&pk, 3) < 0 || fwd_put_tag(&pk, fw) < 0 || fwd_put(fw, hdr, sizeof(hdr)) < 0)
		return -1;
	fw->piece_open = 1;
	fw->piece_events = 0;
	return 0;
}

/* fwd_piece_close(fw, opt): patch the piece's length, add its option map
 * ({"size": n} and, on the last piece, the rest of opt), make it ready. */
int fwd_piece_close(struct fwd *fw, const msgpack_object *opt)
{
	msgpack_packer pk;
	size_t at = fw->piece_start + 1 + (fw->tag_len < 32 ? 1 : fw->tag_len < 256 ? 2 : 3) + fw->tag_len;
	uint32_t i, n = 0, len = fw->mode == M_PACKED ?
	    (uint32_t)(fw->pend.size - at - FWD_HDR32) : (uint32_t)fw->piece_events;
	unsigned char *p = (unsigned char *)fw->pend.data + at + 1;

	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
	msgpack_packer_init(&pk, &fw->pend, fwd_sbuf_write);
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
 * fwd_place(fw): put the event in fw->ev into the open piece.  A piece that the
 * event would take past FWD_PIECE_MAX is closed first and the event waits
 * (ev_held) until the piece has gone to the output ring.  0 or -1.
 */
int fwd_place(struct fwd *fw)
{
	if (fw->piece_open && fw->piece_events > 0 &&
	    fw->pend.size - fw->ready + fw->ev.size > FWD_PIECE_MAX) {
		fw->ev_held = 1;
		return fwd_piece_close(fw, NULL);
	}
	if (fw->ready > 0) {	/* a piece still waits: this one starts after it */
		fw->ev_held = 1;
		return 0;
	}
	if (!fw->piece_open && fwd_piece_open(fw) < 0)
		return -1;
	if (fwd_put(fw, fw->ev.data, fw->ev.size) < 0)
		return -1;
	fw->piece_events++;
	fw->ev_held = 0;
	return 0;
}

