/* fwd: the forward-protocol reader; see fwd.h.  This file: the input
 * window, the request's framing and its states, the stage; pieces and
 * events are written by fwd_out.c, PackedForward payloads read by
 * fwd_packed.c. */
#include "fwd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "filter.h"
#include "fwd_int.h"
#include "ring.h"
#include "tagacl.h"

static void fwd_free(struct filter *f);
static int fwd_run(struct filter *f, struct ring *in, struct ring *out, int eof);

static const struct filter_ops fwd_ops = { fwd_run, fwd_free };

/* fwd_fail(fw, why): the request is refused.  FILTER_ERROR. */
int fwd_fail(struct fwd *fw, const char *why)
{
	fw->f.why = why;
	return FILTER_ERROR;
}


/* -- input -- */

/* fwd_take(fw, n): n bytes of the window are read: they count in the request. */
void fwd_take(struct fwd *fw, size_t n)
{
	fw->apos += n;
	fw->req_bytes += n;
	if (fw->apos == fw->alen) {
		free(fw->acc);
		fw->acc = NULL;
		fw->alen = fw->apos = fw->acap = 0;
	}
}

/* fill(fw, in): move what the ring holds into the window, up to FWD_ACC_MAX.
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
	n = ring_len(in) < FWD_ACC_MAX - fw->alen ? ring_len(in) : FWD_ACC_MAX - fw->alen;
	if (fw->acap - fw->alen < n) {
		size_t cap = fw->acap * 2 > fw->alen + n ? fw->acap * 2 : fw->alen + n;
		unsigned char *a;

		if (cap < 2 * RING_SIZE)
			cap = 2 * RING_SIZE;
		if (cap > FWD_ACC_MAX)
			cap = FWD_ACC_MAX;
		if ((a = realloc(fw->acc, cap)) == NULL)
			return -1;
		fw->acc = a;
		fw->acap = cap;
	}
	while (ring_len(in) > 0 && fw->alen < FWD_ACC_MAX) {
		const unsigned char *p = ring_rdata(in, &n);

		if (n > FWD_ACC_MAX - fw->alen)
			n = FWD_ACC_MAX - fw->alen;
		memcpy(fw->acc + fw->alen, p, n);
		fw->alen += n;
		ring_consume(in, n);
		moved += (long)n;
	}
	return moved;
}

/* fwd_need(fw, in, n): at least n bytes in the window.  1, 0 not yet, -1 no memory. */
int fwd_need(struct fwd *fw, struct ring *in, size_t n)
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
 * window until fwd_take()).  1, 0 not complete yet, or FILTER_ERROR.  An
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
			return fwd_fail(fw, rc == -1 ? "fwd_event_too_large" : "fwd_malformed");
		if (avail > 0) {
			switch (msgpack_unpack_next(res, (const char *)fw->acc + fw->apos, avail, &off)) {
			case MSGPACK_UNPACK_SUCCESS:
			case MSGPACK_UNPACK_EXTRA_BYTES:
				*size = off;
				return 1;
			case MSGPACK_UNPACK_CONTINUE:
				break;
			case MSGPACK_UNPACK_NOMEM_ERROR:
				return fwd_fail(fw, "fwd_nomem");
			default:
				return fwd_fail(fw, "fwd_malformed");
			}
		}
		if (avail >= FWD_EVENT_MAX)
			return fwd_fail(fw, "fwd_event_too_large");
		if ((more = fill(fw, in)) < 0)
			return fwd_fail(fw, "fwd_nomem");
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


/* request_done(fw): the request was read and written out. */
static void request_done(struct fwd *fw)
{
	fwd_packed_end(fw);
	msgpack_sbuffer_destroy(&fw->ev);
	msgpack_sbuffer_init(&fw->ev);
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

	if ((rc = fwd_need(fw, in, 1)) <= 0)
		return rc < 0 ? fwd_fail(fw, "fwd_nomem") : 0;
	fw->req_bytes = 0;
	b = fw->acc[fw->apos];
	if (fw->first && (b == '{' || b == '['))
		return fwd_fail(fw, "fwd_json_unsupported");
	if ((fw->need_stamp && fw->stamp == NULL) || fw->need_tags)
		return fwd_fail(fw, "fwd_no_identity");
	if (b == 0xc0) {		/* nil: a no-op request */
		if (fw->ready > 0)
			return 0;
		if (fwd_put(fw, &b, 1) < 0)
			return fwd_fail(fw, "fwd_nomem");
		fw->ready = fw->pend.size;
		fwd_take(fw, 1);
		fw->first = 0;
		return 1;
	}
	while ((len = header(fw->acc + fw->apos, fw->alen - fw->apos, 'a', &n)) < 0)
		if ((rc = fwd_need(fw, in, fw->alen - fw->apos + 1)) <= 0)
			return rc < 0 ? fwd_fail(fw, "fwd_nomem") : 0;
	if (len == 0 || n < 2 || (n > 4 && !(n == 6 && fw->first)))
		return fwd_fail(fw, "fwd_not_a_request");
	fw->nelem = (unsigned)n;
	fwd_take(fw, (size_t)len);
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
		fwd_fail(fw, "fwd_bad_tag");
		goto out;
	}
	if (fw->nelem == 6) {	/* ["PING", hostname, salt, digest, user, password] */
		if (res.data.via.str.size != 4 || memcmp(res.data.via.str.ptr, "PING", 4) != 0) {
			fwd_fail(fw, "fwd_not_a_request");
			goto out;
		}
		if (fw->ready > 0) {
			rc = 0;
			goto out;
		}
		if (fwd_put(fw, "\x96", 1) < 0 || fwd_put(fw, fw->acc + fw->apos, size) < 0) {
			fwd_fail(fw, "fwd_nomem");
			goto out;
		}
		fwd_take(fw, size);
		fw->ping_left = 5;
		fw->state = S_PING;
		rc = 1;
		goto out;
	}
	/* The tag as received, before any prefix. */
	if (fw->tags != NULL &&
	    !tagacl_allows(fw->tags, res.data.via.str.ptr, res.data.via.str.size)) {
		size_t n = res.data.via.str.size < FWD_TAG_MAX ? res.data.via.str.size : FWD_TAG_MAX;

		if (n > 0)
			memcpy(fw->tag, res.data.via.str.ptr, n);
		fw->tag[n] = '\0';
		fw->f.tag = fw->tag;
		fwd_fail(fw, "tag_denied");
		goto out;
	}
	if (res.data.via.str.size + plen > FWD_TAG_MAX) {
		fwd_fail(fw, "fwd_tag_too_long");
		goto out;
	}
	memcpy(fw->tag, fw->stamp != NULL && fw->stamp->prefix != NULL ? fw->stamp->prefix : "", plen);
	if (res.data.via.str.size > 0)		/* an empty one may have no pointer */
		memcpy(fw->tag + plen, res.data.via.str.ptr, res.data.via.str.size);
	fw->tag_len = plen + res.data.via.str.size;
	fwd_take(fw, size);
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
		if (fwd_put(fw, fw->acc + fw->apos, size) < 0)
			rc = fwd_fail(fw, "fwd_nomem");
		else
			fwd_take(fw, size);
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
		if ((rc = fwd_need(fw, in, avail + 1)) <= 0)
			return rc < 0 ? fwd_fail(fw, "fwd_nomem") : 0;
	}
	if (len == 0) {			/* Message: [tag, time, record, option?] */
		if (fw->nelem != 3 && fw->nelem != 4)
			return fwd_fail(fw, "fwd_not_a_request");
		fw->state = S_MSG_TIME;
		return 1;
	}
	if (fw->nelem != 2 && fw->nelem != 3)
		return fwd_fail(fw, "fwd_not_a_request");
	/* Refused before any piece leaves when the header already tells: a
	 * payload's length, or entries of 3 bytes at least.  (Pieces that left
	 * before a later refusal carry no chunk: nothing acks them, and the
	 * sender sends the chunk again.) */
	if (fw->req_bytes + len + (fw->mode == M_PACKED ? n : 3 * n) > fw->max_req)
		return fwd_fail(fw, "fwd_request_too_large");
	fw->left = n;
	fwd_take(fw, (size_t)len);
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
	msgpack_packer_init(&pk, &fw->pend, fwd_sbuf_write);
	if (st == S_MSG_TIME) {
		if (!fwd_is_time(&res.data) && res.data.type != MSGPACK_OBJECT_NIL) {
			rc = fwd_fail(fw, "fwd_bad_time");
			goto out;
		}
		if (msgpack_pack_array(&pk, fw->nelem) < 0 || fwd_put_tag(&pk, fw) < 0 ||
		    fwd_put(fw, fw->acc + fw->apos, size) < 0)
			goto nomem;
	} else if (st == S_MSG_RECORD) {
		if ((rc = fwd_pack_record(fw, &pk, &fw->pend, &res.data)) < 0)
			goto out;
	} else {
		if (res.data.type != MSGPACK_OBJECT_MAP && res.data.type != MSGPACK_OBJECT_NIL) {
			rc = fwd_fail(fw, "fwd_bad_option");
			goto out;
		}
		if (fwd_put(fw, fw->acc + fw->apos, size) < 0)
			goto nomem;
	}
	fwd_take(fw, size);
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
	rc = fwd_fail(fw, "fwd_nomem");
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
		if ((rc = fwd_event(fw, &res.data, fw->acc + fw->apos, size)) == 0) {
			fwd_take(fw, size);
			fw->left--;
			rc = fwd_place(fw) < 0 ? fwd_fail(fw, "fwd_nomem") : 1;
		}
	}
	msgpack_unpacked_destroy(&res);
	return rc;
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
			rc = fwd_fail(fw, "fwd_bad_option");
			goto out;
		}
	}
	if (fw->mode == M_PACKED &&
	    !fwd_compressed_is(fw->nelem == 3 ? &res.data : NULL, names[fw->comp])) {
		rc = fwd_fail(fw, "fwd_compression_mismatch");
		goto out;
	}
	if ((!fw->piece_open && fwd_piece_open(fw) < 0) ||
	    fwd_piece_close(fw, fw->nelem == 3 ? &res.data : NULL) < 0) {
		rc = fwd_fail(fw, "fwd_nomem");
		goto out;
	}
	fwd_take(fw, size);
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
		moved |= fwd_drain(fw, out);
		if (fw->ready > 0)
			break;		/* the output ring is full */
		if (fw->ev_held) {
			if (fwd_place(fw) < 0)
				return fwd_fail(fw, "fwd_nomem");
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
			rc = fwd_packed_head(fw, in);
			break;
		case S_PACKED:
			rc = fwd_packed(fw, in);
			break;
		default:
			rc = st_option(fw, in);
			break;
		}
		if (rc < 0)
			return FILTER_ERROR;
		if (fw->req_bytes > fw->max_req)
			return fwd_fail(fw, "fwd_request_too_large");
		if (rc == 0)
			break;
		moved = 1;
	}
	if (eof && ring_len(in) == 0 && fw->ready == 0 && !fw->ev_held &&
	    (fw->state != S_REQ || fw->apos < fw->alen))
		return fwd_fail(fw, "fwd_truncated");
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

void fwd_set_stamp(struct filter *f, struct fwd_stamp *s)
{
	struct fwd *fw = (struct fwd *)f;

	fwd_stamp_free(fw->stamp);
	fw->stamp = s;
}

void fwd_set_tags(struct filter *f, struct tagacl_set *set)
{
	struct fwd *fw = (struct fwd *)f;

	tagacl_set_free(fw->tags);
	fw->tags = set;
	fw->need_tags = 0;
}

void fwd_need_tags(struct filter *f)
{
	((struct fwd *)f)->need_tags = 1;
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
	tagacl_set_free(fw->tags);
	free(fw);
}

