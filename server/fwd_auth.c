/* fwd_auth: Fluentd's <security> handshake on the server's upstream
 * connection (see fwd_auth.h).  The protocol, as in_forward speaks it:
 *
 *   Fluentd: ['HELO', {'nonce' => 16 random bytes, 'auth' => user_auth salt
 *             or '', 'keepalive' => bool}]
 *   we:      ['PING', self_hostname, shared_key_salt,
 *             sha512_hex(shared_key_salt + self_hostname + nonce + shared_key),
 *             username, sha512_hex(auth + username + password)]
 *             (the last two '' when HELO's auth is empty)
 *   Fluentd: ['PONG', ok, reason, server_hostname,
 *             sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)]
 *
 * Strings are packed as str, digests as 128 lowercase hex digits. */
#include "fwd_auth.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "conn.h"
#include "fp.h"
#include "log.h"

#define DIGEST_HEX (2 * WC_SHA512_DIGEST_SIZE)

void fwd_auth_init(struct fwd_auth *a, const struct fwd_auth_secret *sec,
    const unsigned char random16[16])
{
	memset(a, 0, offsetof(struct fwd_auth, nonce));
	a->sec = sec;
	a->owed = 1;
	fp_hex(random16, 16, a->salt, sizeof(a->salt));
}

/*-
 * shape(a): walk the headers of the message in buf[scan..n), resuming where
 * the last call stopped: every type byte must be one msgpack defines, and
 * what a header claims (a str's length, an array's count: each object owed
 * takes one byte at least) must fit in FWD_AUTH_MSG_MAX with everything
 * already owed.  msgpack-c allocates an array's or map's objects when it
 * reads the count; checked first, it allocates for what 4 KiB can hold,
 * whatever the bytes claim.  1: the message is whole, buf[0..scan);
 * 0: more bytes are needed; -1: bad type (*too 0) or too long (*too 1).
 */
static int shape(struct fwd_auth *a, int *too)
{
	/* for 0xc4..0xdf: header bytes, length field bytes, fixed payload,
	 * kind (0 scalar, 1 array, 2 map); hdr 0: never used (0xc1) */
	static const struct { unsigned char hdr, lensz, fixed, kind; } t[] = {
		{ 2, 1, 0, 0 }, { 3, 2, 0, 0 }, { 5, 4, 0, 0 },		/* bin */
		{ 3, 1, 0, 0 }, { 4, 2, 0, 0 }, { 6, 4, 0, 0 },		/* ext */
		{ 5, 0, 0, 0 }, { 9, 0, 0, 0 },				/* float */
		{ 2, 0, 0, 0 }, { 3, 0, 0, 0 }, { 5, 0, 0, 0 }, { 9, 0, 0, 0 },	/* uint */
		{ 2, 0, 0, 0 }, { 3, 0, 0, 0 }, { 5, 0, 0, 0 }, { 9, 0, 0, 0 },	/* int */
		{ 3, 0, 0, 0 }, { 4, 0, 0, 0 }, { 6, 0, 0, 0 }, { 10, 0, 0, 0 },
		{ 18, 0, 0, 0 },					/* fixext */
		{ 2, 1, 0, 0 }, { 3, 2, 0, 0 }, { 5, 4, 0, 0 },		/* str */
		{ 3, 2, 0, 1 }, { 5, 4, 0, 1 }, { 3, 2, 0, 2 }, { 5, 4, 0, 2 },	/* array, map */
	};

	*too = 0;
	while (a->owed > 0) {
		const unsigned char *p = a->buf + a->scan;
		size_t left = (size_t)(a->n - a->scan), hdr = 1, i;
		uint64_t value = 0, len = 0, count = 0;
		unsigned b;

		if (left == 0)
			return 0;
		b = p[0];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			;
		else if (b <= 0x8f)
			count = 2u * (b & 0x0f);
		else if (b <= 0x9f)
			count = b & 0x0f;
		else if (b <= 0xbf)
			len = b & 0x1f;
		else if (b == 0xc1)
			return -1;
		else {
			hdr = t[b - 0xc4].hdr;
			if (left < hdr) {
				if (a->scan + hdr > FWD_AUTH_MSG_MAX)
					return *too = 1, -1;
				return 0;
			}
			for (i = 0; i < t[b - 0xc4].lensz; i++)
				value = value << 8 | p[1 + i];
			if (t[b - 0xc4].kind == 1)
				count = value;
			else if (t[b - 0xc4].kind == 2)
				count = 2 * value;
			else
				len = value;
		}
		if ((uint64_t)a->scan + hdr + len + count + a->owed - 1 > FWD_AUTH_MSG_MAX)
			return *too = 1, -1;
		if (left < hdr + len)
			return 0;
		a->scan = (unsigned short)(a->scan + hdr + len);
		a->owed = (unsigned short)(a->owed - 1 + count);
	}
	return 1;
}

/* finish(a, rc, why, reason): remember the outcome and return it. */
static int finish(struct fwd_auth *a, int rc, const char **why, const char *reason)
{
	a->phase = FWD_AUTH_END;
	a->result = (unsigned char)(rc == FWD_AUTH_OK ? 1 : 2);
	a->why = reason;
	*why = reason;
	return rc;
}

/* bytes(o, p, n): o as bytes: a str or a bin.  1, or 0 for another type. */
static int bytes(const msgpack_object *o, const char **p, size_t *n)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*p = o->via.str.ptr;
		*n = o->via.str.size;
		return 1;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*p = o->via.bin.ptr;
		*n = o->via.bin.size;
		return 1;
	}
	return 0;
}

/* is(o, s): o is the str or bin s. */
static int is(const msgpack_object *o, const char *s)
{
	const char *p;
	size_t n;

	return bytes(o, &p, &n) && n == strlen(s) && memcmp(p, s, n) == 0;
}

/* digest(out, parts, lens, k): sha512_hex of the k parts, one after the
 * other, into out (DIGEST_HEX digits and a NUL).  0, or -1 if wolfSSL fails. */
static int digest(char out[DIGEST_HEX + 1], const void *const *parts, const size_t *lens, int k)
{
	unsigned char d[WC_SHA512_DIGEST_SIZE];
	wc_Sha512 sha;
	int i, rc;

	if (wc_InitSha512(&sha) != 0)
		return -1;
	for (i = 0, rc = 0; i < k && rc == 0; i++)
		rc = wc_Sha512Update(&sha, parts[i], (word32)lens[i]);
	if (rc == 0)
		rc = wc_Sha512Final(&sha, d);
	wc_Sha512Free(&sha);
	if (rc != 0)
		return -1;
	fp_hex(d, sizeof(d), out, DIGEST_HEX + 1);
	return 0;
}

/* The PING's bytes go to a->out through msgpack-c's packer. */
static int out_write(void *data, const char *buf, size_t len)
{
	struct fwd_auth *a = data;

	if (len > sizeof(a->out) - a->out_len)
		return -1;
	memcpy(a->out + a->out_len, buf, len);
	a->out_len = (unsigned short)(a->out_len + len);
	return 0;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? -1 : 0;
}

/* helo(a, o): o should be HELO: keep its nonce and write the PING. */
static int helo(struct fwd_auth *a, const msgpack_object *o, const char **why)
{
	const struct fwd_auth_secret *s = a->sec;
	const char *auth = "", *nonce = "", *p;
	size_t auth_len = 0, nonce_len = 0, n;
	char key_hex[DIGEST_HEX + 1], pass_hex[DIGEST_HEX + 1] = "";
	msgpack_packer pk;
	uint32_t i;

	/* ['HELO', options]: options a map, or nil as in_forward takes it */
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
	    !is(&o->via.array.ptr[0], "HELO"))
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_helo");
	o = &o->via.array.ptr[1];
	if (o->type == MSGPACK_OBJECT_MAP) {
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
			int known = is(k, "nonce") ? 1 : is(k, "auth") ? 2 : 0;

			if (known == 0 || v->type == MSGPACK_OBJECT_NIL)
				continue;	/* keepalive, and what later versions add */
			if (!bytes(v, &p, &n))
				return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_helo");
			if (known == 1) {
				nonce = p;
				nonce_len = n;
			} else {
				auth = p;
				auth_len = n;
			}
		}
	} else if (o->type != MSGPACK_OBJECT_NIL) {
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_helo");
	}
	if (nonce_len >= sizeof(a->nonce))	/* in_forward's is 16 bytes */
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_helo");
	memcpy(a->nonce, nonce, nonce_len);
	a->nonce_len = (unsigned short)nonce_len;
	{
		const void *kp[] = { a->salt, s->hostname, a->nonce, s->key };
		const size_t kl[] = { FWD_AUTH_SALT_LEN, strlen(s->hostname), nonce_len,
		    strlen(s->key) };
		const void *pp[] = { auth, s->username, s->password };
		const size_t pl[] = { auth_len, strlen(s->username), strlen(s->password) };

		if (digest(key_hex, kp, kl, 4) < 0 ||
		    (auth_len > 0 && digest(pass_hex, pp, pl, 3) < 0))
			return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_digest_failed");
	}
	/* As out_forward: a HELO with an auth salt gets the username and the
	 * password's digest (of empty ones without user_auth), else ''. */
	a->out_len = a->out_sent = 0;
	msgpack_packer_init(&pk, a, out_write);
	if (msgpack_pack_array(&pk, 6) != 0 || pack_str(&pk, "PING", 4) < 0 ||
	    pack_str(&pk, s->hostname, strlen(s->hostname)) < 0 ||
	    pack_str(&pk, a->salt, FWD_AUTH_SALT_LEN) < 0 || pack_str(&pk, key_hex, DIGEST_HEX) < 0 ||
	    pack_str(&pk, auth_len > 0 ? s->username : "", auth_len > 0 ? strlen(s->username) : 0) < 0 ||
	    pack_str(&pk, pass_hex, auth_len > 0 ? DIGEST_HEX : 0) < 0)
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_ping_too_long");
	a->phase = FWD_AUTH_PONG;
	return FWD_AUTH_SEND;
}

/* same(x, y, n): the n bytes at x and y are equal, in a time that does not
 * depend on where they differ. */
static int same(const char *x, const char *y, size_t n)
{
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

/* pong(a, o): o should be a PONG that accepts us and knows the key. */
static int pong(struct fwd_auth *a, const msgpack_object *o, const char **why)
{
	const struct fwd_auth_secret *s = a->sec;
	const msgpack_object *v;
	const char *host, *got, *reason = "";
	size_t host_len, got_len, reason_len = 0, i;
	char want[DIGEST_HEX + 1];

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5 ||
	    !is(&o->via.array.ptr[0], "PONG"))
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_pong");
	v = o->via.array.ptr;
	if (v[1].type == MSGPACK_OBJECT_NIL || (v[1].type == MSGPACK_OBJECT_BOOLEAN &&
	    !v[1].via.boolean)) {
		(void)bytes(&v[2], &reason, &reason_len);
		for (i = 0; i < reason_len && i + 1 < sizeof(a->refusal); i++)
			a->refusal[i] = reason[i] >= 0x20 && reason[i] < 0x7f ? reason[i] : '?';
		a->refusal[i] = '\0';
		if (strstr(a->refusal, "username/password") != NULL)
			return finish(a, FWD_AUTH_FAIL, why, "user_auth_failed");
		if (strstr(a->refusal, "shared_key") != NULL || strstr(a->refusal, "shared key") != NULL)
			return finish(a, FWD_AUTH_FAIL, why, "shared_key_mismatch");
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_refused");
	}
	if (v[1].type != MSGPACK_OBJECT_BOOLEAN || !bytes(&v[3], &host, &host_len) ||
	    !bytes(&v[4], &got, &got_len))
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_not_pong");
	/* The PONG's digest has the PING's form: with our own hostname, our
	 * PING sent back would pass.  out_forward refuses it too. */
	if (host_len == strlen(s->hostname) && memcmp(host, s->hostname, host_len) == 0)
		return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_same_hostname");
	{
		const void *parts[] = { a->salt, host, a->nonce, s->key };
		const size_t lens[] = { FWD_AUTH_SALT_LEN, host_len, a->nonce_len, strlen(s->key) };

		if (digest(want, parts, lens, 4) < 0)
			return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_digest_failed");
	}
	if (got_len != DIGEST_HEX || !same(got, want, DIGEST_HEX))
		return finish(a, FWD_AUTH_FAIL, why, "shared_key_mismatch");
	return finish(a, FWD_AUTH_OK, why, "");
}

int fwd_auth_feed(struct fwd_auth *a, const unsigned char *buf, size_t n, size_t *used,
    const char **why)
{
	size_t take = n, old = a->n;
	msgpack_unpacked u;
	size_t off = 0;
	int rc, too;

	*used = 0;
	if (a->phase == FWD_AUTH_END)
		return finish(a, a->result == 1 ? FWD_AUTH_OK : FWD_AUTH_FAIL, why, a->why);
	if (take > sizeof(a->buf) - old)
		take = sizeof(a->buf) - old;
	memcpy(a->buf + old, buf, take);
	a->n = (unsigned short)(old + take);
	if ((rc = shape(a, &too)) < 0)
		return finish(a, FWD_AUTH_FAIL, why, too ? "fwd_auth_too_long" : "fwd_auth_bad_msgpack");
	if (rc == 0) {
		*used = take;
		if (a->n == sizeof(a->buf))
			return finish(a, FWD_AUTH_FAIL, why, "fwd_auth_too_long");
		return FWD_AUTH_MORE;
	}
	*used = a->scan - old;	/* the message ends in these bytes */
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)a->buf, a->scan, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != a->scan)
		rc = finish(a, FWD_AUTH_FAIL, why, "fwd_auth_bad_msgpack");
	else if (a->phase == FWD_AUTH_HELO)
		rc = helo(a, &u.data, why);
	else
		rc = pong(a, &u.data, why);
	msgpack_unpacked_destroy(&u);
	a->n = a->scan = 0;	/* the next message */
	a->owed = 1;
	return rc;
}

/* first_line(path, flag, out, outsz, err, errsz): the first line of path,
 * without its end.  0, or -1 with a message (never the line) in err. */
static int first_line(const char *path, const char *flag, char *out, size_t outsz, char *err,
    size_t errsz)
{
	FILE *fp = fopen(path, "r");
	struct stat st;
	int ok;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: %s: %s", flag, path, strerror(errno));
		return -1;
	}
	/* as for a key file: others reading it is worth a line */
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & S_IROTH)) {
		char mode[8];

		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		log_warn("secret file is readable by others", "option=%s file=%s mode=%s", flag + 2,
		    path, mode);
	}
	out[0] = '\0';
	ok = fgets(out, (int)outsz, fp) != NULL || !ferror(fp);
	fclose(fp);
	if (!ok) {
		snprintf(err, errsz, "%s: %s: read error", flag, path);
		return -1;
	}
	if (strlen(out) + 1 >= outsz && strchr(out, '\n') == NULL) {
		snprintf(err, errsz, "%s: %s: first line too long (at most %zu bytes)", flag, path,
		    outsz - 2);
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int fwd_auth_secret_load(struct fwd_auth_secret *sec, const char *key_file, const char *hostname,
    const char *username, const char *password_file, char *err, size_t errsz)
{
	memset(sec, 0, sizeof(*sec));
	if (first_line(key_file, "--upstream-shared-key-file", sec->key, sizeof(sec->key), err,
	    errsz) < 0)
		return -1;
	if (sec->key[0] == '\0') {
		snprintf(err, errsz, "--upstream-shared-key-file: %s: the first line is empty",
		    key_file);
		return -1;
	}
	if (hostname == NULL) {
		if (gethostname(sec->hostname, sizeof(sec->hostname) - 1) < 0) {
			snprintf(err, errsz, "--upstream-hostname: gethostname: %s", strerror(errno));
			return -1;
		}
	} else if (strlen(hostname) >= sizeof(sec->hostname)) {
		snprintf(err, errsz, "--upstream-hostname: longer than %zu bytes",
		    sizeof(sec->hostname) - 1);
		return -1;
	} else {
		snprintf(sec->hostname, sizeof(sec->hostname), "%s", hostname);
	}
	if (sec->hostname[0] == '\0') {
		snprintf(err, errsz, "--upstream-hostname: empty");
		return -1;
	}
	if (username == NULL)
		return 0;
	if (username[0] == '\0' || strlen(username) >= sizeof(sec->username)) {
		snprintf(err, errsz, "--upstream-username: empty or longer than %zu bytes",
		    sizeof(sec->username) - 1);
		return -1;
	}
	snprintf(sec->username, sizeof(sec->username), "%s", username);
	return first_line(password_file, "--upstream-password-file", sec->password,
	    sizeof(sec->password), err, errsz);
}

/* The handshake of c's attempt, kept in c->hop (NULL: none yet or over). */
#define HOP(c) (*(struct fwd_auth **)(void *)(c)->hop.bytes)

_Static_assert(sizeof(struct fwd_auth *) <= sizeof(((struct conn *)0)->hop),
    "a pointer must fit in struct conn's hop scratch");

/* open_end(c, rc, why_out, why): the attempt's handshake is over. */
static int open_end(struct conn *c, int rc, const char **why_out, const char *why)
{
	const struct fwd_auth *a = HOP(c);

	if (a != NULL && a->refusal[0] != '\0')
		log_debug("Fluentd refused the forward handshake", "peer=%s said=%s", c->peer,
		    a->refusal);
	fwd_auth_close(c);
	*why_out = why;
	return rc;
}

/*-
 * The bytes are peeked, fed, and then only the message's taken: what
 * follows a PONG is the relay's (in_forward sends nothing before a request
 * asks for an ack, but nothing here relies on it).
 */
int fwd_auth_open(struct conn *c, const struct fwd_auth_secret *sec, const char **why_out)
{
	struct end *e = &c->end[1];
	unsigned char buf[FWD_AUTH_MSG_MAX];
	struct fwd_auth *a = HOP(c);
	const char *why = NULL;
	size_t used;
	size_t n;
	int rc;

	if (a == NULL) {
		unsigned char r[16];

		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return open_end(c, CONN_OPEN_FAILED, why_out, "fwd_auth_no_random");
		if ((a = HOP(c) = malloc(sizeof(*a))) == NULL)
			return open_end(c, CONN_OPEN_FAILED, why_out, "out_of_memory");
		fwd_auth_init(a, sec, r);
	}
	for (;;) {
		if ((rc = conn_hop_send(e, a->out, a->out_len, &a->out_sent)) == CONN_OPEN_FAILED)
			return open_end(c, rc, why_out, errno == ECONNRESET || errno == EPIPE ?
			    "fwd_auth_closed" : "fwd_auth_write_failed");
		if (rc == CONN_OPEN_WAIT)
			return rc;
		if ((rc = conn_hop_peek(e, buf, sizeof(buf), &n)) == CONN_OPEN_FAILED)
			return open_end(c, rc, why_out, "fwd_auth_closed");
		if (rc == CONN_OPEN_WAIT)
			return rc;
		rc = fwd_auth_feed(a, buf, n, &used, &why);
		if (rc == FWD_AUTH_FAIL)
			return open_end(c, CONN_OPEN_FAILED, why_out, why);
		if (used > 0 && recv(e->fd, buf, used, 0) != (ssize_t)used)
			return open_end(c, CONN_OPEN_FAILED, why_out, "fwd_auth_closed");
		if (rc == FWD_AUTH_OK) {
			log_debug("forward handshake done", "peer=%s", c->peer);
			return open_end(c, CONN_OPEN_DONE, why_out, NULL);
		}
	}
}

void fwd_auth_close(struct conn *c)
{
	struct fwd_auth *a = HOP(c);

	if (a != NULL) {
		/* it held the nonce and the PING: nothing secret, but no trace either */
		memset(a, 0, sizeof(*a));
		free(a);
		HOP(c) = NULL;
	}
}
