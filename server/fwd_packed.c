/* fwd_packed: a PackedForward payload read as it comes (fwd.h): as it is,
 * gzip (several members) or zstd, its events handed to msgpack-c's
 * streaming unpacker one at a time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zlib.h>
#include <zstd.h>

#include "filter.h"
#include "fwd.h"
#include "fwd_int.h"
#include "ring.h"

/* fwd_packed_head(fw, in): the payload's first bytes say whether it is
 * compressed (gzip 1f 8b, zstd 28 b5 2f fd; an event begins with an array
 * header); the option says so too, and must agree (st_option). */
int fwd_packed_head(struct fwd *fw, struct ring *in)
{
	const unsigned char *p;
	size_t want = fw->left < 4 ? (size_t)fw->left : 4;
	int rc;

	if ((rc = fwd_need(fw, in, want)) <= 0)
		return rc < 0 ? fwd_fail(fw, "fwd_nomem") : 0;
	p = want > 0 ? fw->acc + fw->apos : NULL;
	fw->comp = C_NONE;
	if (want >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		fw->comp = C_GZIP;
	else if (want == 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0)
		fw->comp = C_ZSTD;
	memset(&fw->inner_claims, 0, sizeof(fw->inner_claims));
	fw->scr_pos = fw->scr_len = 0;
	fw->unz_bytes = 0;
	fw->z_err = NULL;
	if ((fw->inner = msgpack_unpacker_new(FWD_SCRATCH)) == NULL)
		return fwd_fail(fw, "fwd_nomem");
	if (fw->comp != C_NONE && (fw->scratch = malloc(FWD_SCRATCH)) == NULL)
		return fwd_fail(fw, "fwd_nomem");
	if (fw->comp == C_GZIP) {
		memset(&fw->z, 0, sizeof(fw->z));
		if (inflateInit2(&fw->z, 16 + MAX_WBITS) != Z_OK)
			return fwd_fail(fw, "fwd_nomem");
		fw->z_live = 1;
		fw->z_ended = 0;
	} else if (fw->comp == C_ZSTD) {
		if ((fw->zs = ZSTD_createDStream()) == NULL ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(fw->zs, ZSTD_d_windowLogMax,
		    FWD_ZSTD_WINDOW_LOG_MAX)))
			return fwd_fail(fw, "fwd_nomem");
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
		fwd_take(fw, n);
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
		return fwd_fail(fw, rc == -1 ? "fwd_event_too_large" : "fwd_malformed");
	if (!msgpack_unpacker_reserve_buffer(fw->inner, seen) ||
	    fwd_put_raw(&fw->raw, p, seen) < 0)
		return fwd_fail(fw, "fwd_nomem");
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
				return fwd_fail(fw, "fwd_bad_gzip");
			fw->z_ended = 0;
		}
		fw->z.next_in = (unsigned char *)(uintptr_t)p;
		fw->z.avail_in = (unsigned)n;
		fw->z.next_out = fw->scratch;
		fw->z.avail_out = FWD_SCRATCH;
		ret = inflate(&fw->z, Z_NO_FLUSH);
		fw->scr_len = FWD_SCRATCH - fw->z.avail_out;
		if (ret == Z_STREAM_END)
			fw->z_ended = 1;
		else if (ret != Z_OK && ret != Z_BUF_ERROR)
			fw->z_err = "fwd_bad_gzip";
		else if (fw->scr_len == 0 && fw->z.avail_in == n && fw->left == n)
			fw->z_err = "fwd_truncated_gzip";	/* no progress with all there is */
		return (long)(n - fw->z.avail_in);
	} else {
		ZSTD_inBuffer zin = { p, n, 0 };
		ZSTD_outBuffer zout = { fw->scratch, FWD_SCRATCH, 0 };

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
		return fwd_fail(fw, fw->z_err);
	p = payload(fw, in, &n, &from_acc);
	if (fw->comp == C_NONE) {
		if (p == NULL)
			return fw->left == 0 ? 2 : 0;
		if ((k = feed(fw, p, n < FWD_SCRATCH ? n : FWD_SCRATCH)) < 0)
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
	/* What it expands to counts against --max-request-size too: a small
	 * bomb does not become gigabytes for Fluentd. */
	if ((fw->unz_bytes += fw->scr_len) > fw->max_req)
		return fwd_fail(fw, "fwd_request_too_large");
	if (k > 0)
		payload_take(fw, in, (size_t)k, from_acc);
	if (k == 0 && fw->scr_len == 0 && fw->z_err == NULL)
		return fw->left == 0 ? fwd_fail(fw, fw->comp == C_GZIP ? "fwd_truncated_gzip" :
		    "fwd_truncated_zstd") : 0;
	return 1;
}

/* fwd_packed(fw, in): the events of a PackedForward payload, one by one. */
int fwd_packed(struct fwd *fw, struct ring *in)
{
	msgpack_unpacked res;
	int rc;

	msgpack_unpacked_init(&res);
	switch (msgpack_unpacker_next(fw->inner, &res)) {
	case MSGPACK_UNPACK_SUCCESS:
		/* feed() gave inner exactly this event: its bytes are in raw */
		if ((rc = fwd_event(fw, &res.data, (const unsigned char *)fw->raw.data,
		    fw->raw.size)) == 0)
			rc = fwd_place(fw) < 0 ? fwd_fail(fw, "fwd_nomem") : 1;
		fw->raw.size = 0;
		break;
	case MSGPACK_UNPACK_CONTINUE:
		if (msgpack_unpacker_message_size(fw->inner) > FWD_EVENT_MAX) {
			rc = fwd_fail(fw, "fwd_event_too_large");
			break;
		}
		if ((rc = inflow(fw, in)) == 2) {
			if (msgpack_unpacker_message_size(fw->inner) > 0) {
				rc = fwd_fail(fw, "fwd_truncated_event");
				break;
			}
			fw->state = S_OPTION;
			rc = 1;
		}
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rc = fwd_fail(fw, "fwd_nomem");
		break;
	default:
		rc = fwd_fail(fw, "fwd_malformed");
		break;
	}
	msgpack_unpacked_destroy(&res);
	return rc;
}


/* fwd_packed_end(fw): free what a PackedForward payload needed (nothing
 * held: fine). */
void fwd_packed_end(struct fwd *fw)
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
	msgpack_sbuffer_destroy(&fw->raw);
	msgpack_sbuffer_init(&fw->raw);
}

/* fwd_compressed_is(opt, name): opt's "compressed" is name (NULL: absent or "text"). */
int fwd_compressed_is(const msgpack_object *opt, const char *name)
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

