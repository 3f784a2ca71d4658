/* test_audit: the audit trail of server/audit.{h,c} -- JSON lines parsed back
 * (escaping, UTF-8 repair, cutting long fields, numbers, time), reopening the
 * file after a rename (also while threads emit), and the forward path against
 * an in-test TCP sink on 127.0.0.1 that decodes [tag, EventTime, record] with
 * msgpack-c: delivery, a bounded queue and drop count while the target is
 * absent, a file that keeps every event meanwhile, and reconnecting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "audit.h"

/* ---- helpers: time, temporary directories, files ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* tmp_dir(buf): a fresh directory under /tmp, its path in buf. */
static char *tmp_dir(char *buf, size_t sz)
{
	snprintf(buf, sz, "/tmp/test_audit.XXXXXX");
	assert_non_null(mkdtemp(buf));
	return buf;
}

/* rm_dir(dir): remove dir and the files in it. */
static void rm_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

/* slurp(path): the file's contents, NUL-terminated (caller frees); "" if absent. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* wait_lines(path, n): wait up to 5 s until path holds at least n lines. */
static size_t wait_lines(const char *path, size_t n)
{
	long long end = now_ms() + 5000;
	size_t have;
	char *s;

	for (;;) {
		s = slurp(path);
		have = count_lines(s);
		free(s);
		if (have >= n || now_ms() > end)
			return have;
		sleep_ms(5);
	}
}

/* wait_exists(path): wait up to 5 s until path exists. */
static void wait_exists(const char *path)
{
	long long end = now_ms() + 5000;

	while (access(path, F_OK) != 0) {
		assert_true(now_ms() < end);
		sleep_ms(1);
	}
}

/* ---- a small JSON reader for one audit line ---- */

struct jval {
	char *key;
	char type;		/* 's' string, 'n' number, 'a' array of strings */
	char *s;		/* string, or the number as written */
	double num;
	char **arr;
	size_t narr;
};

struct jobj {
	struct jval v[32];
	size_t n;
};

static void put_utf8(char *o, size_t *len, unsigned cp)
{
	if (cp < 0x80) {
		o[(*len)++] = (char)cp;
	} else if (cp < 0x800) {
		o[(*len)++] = (char)(0xc0 | cp >> 6);
		o[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*len)++] = (char)(0xe0 | cp >> 12);
		o[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*len)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* jstr(p, out): the JSON string at p (at its '"') decoded into *out; returns
 * the text after it, or NULL if it is not valid JSON. */
static const char *jstr(const char *p, char **out)
{
	char *o = malloc(strlen(p) + 1);
	size_t len = 0;
	unsigned cp;

	assert_non_null(o);
	if (*p++ != '"')
		goto bad;
	for (;;) {
		unsigned char c = (unsigned char)*p++;

		if (c == '"')
			break;
		if (c < 0x20)		/* also the NUL at the end */
			goto bad;
		if (c != '\\') {
			o[len++] = (char)c;
			continue;
		}
		switch (c = (unsigned char)*p++) {
		case '"': case '\\': case '/': o[len++] = (char)c; break;
		case 'b': o[len++] = '\b'; break;
		case 'f': o[len++] = '\f'; break;
		case 'n': o[len++] = '\n'; break;
		case 'r': o[len++] = '\r'; break;
		case 't': o[len++] = '\t'; break;
		case 'u':
			if (sscanf(p, "%4x", &cp) != 1 || strspn(p, "0123456789abcdefABCDEF") < 4 ||
			    (cp >= 0xd800 && cp <= 0xdfff))
				goto bad;
			put_utf8(o, &len, cp);
			p += 4;
			break;
		default:
			goto bad;
		}
	}
	o[len] = '\0';
	*out = o;
	return p;
bad:
	free(o);
	return NULL;
}

static void jfree(struct jobj *o)
{
	size_t i, j;

	for (i = 0; i < o->n; i++) {
		free(o->v[i].key);
		free(o->v[i].s);
		for (j = 0; j < o->v[i].narr; j++)
			free(o->v[i].arr[j]);
		free(o->v[i].arr);
	}
	o->n = 0;
}

/* jparse(line, o): parse one flat JSON object (string, number and string
 * array values) that is all of line; 0, or -1 if it is not. */
static int jparse(const char *line, struct jobj *o)
{
	const char *p = line;

	memset(o, 0, sizeof(*o));
	if (*p++ != '{')
		return -1;
	for (;;) {
		struct jval *v = &o->v[o->n];

		if (o->n == 32 || (p = jstr(p, &v->key)) == NULL)
			goto bad;
		o->n++;
		if (*p++ != ':')
			goto bad;
		if (*p == '"') {
			v->type = 's';
			if ((p = jstr(p, &v->s)) == NULL)
				goto bad;
		} else if (*p == '[') {
			v->type = 'a';
			v->arr = calloc(128, sizeof(char *));
			assert_non_null(v->arr);
			p++;
			while (*p != ']') {
				if (v->narr == 128 || (p = jstr(p, &v->arr[v->narr])) == NULL)
					goto bad;
				v->narr++;
				if (*p == ',')
					p++;
				else if (*p != ']')
					goto bad;
			}
			p++;
		} else {
			size_t n = strspn(p, "-+.0123456789eE");
			char *end;

			if (n == 0)
				goto bad;
			v->type = 'n';
			v->s = strndup(p, n);
			v->num = strtod(v->s, &end);
			if (*end != '\0')
				goto bad;
			p += n;
		}
		if (*p == '}')
			break;
		if (*p++ != ',')
			goto bad;
	}
	if (p[1] != '\0')
		goto bad;
	return 0;
bad:
	jfree(o);
	return -1;
}

static const struct jval *jget(const struct jobj *o, const char *key)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->v[i].key, key) == 0)
			return &o->v[i];
	return NULL;
}

/* jstr_is(o, key, want): key holds the string want. */
static void jstr_is(const struct jobj *o, const char *key, const char *want)
{
	const struct jval *v = jget(o, key);

	if (v == NULL)
		fail_msg("no \"%s\" in the line", key);
	assert_int_equal(v->type, 's');
	assert_string_equal(v->s, want);
}

/* split_lines(text, out, max): split text into lines (in place); how many.  Each
 * line must end in '\n'. */
static size_t split_lines(char *text, char **out, size_t max)
{
	size_t n = 0;
	char *nl;

	while (*text != '\0') {
		nl = strchr(text, '\n');
		assert_non_null(nl);
		*nl = '\0';
		assert_true(n < max);
		out[n++] = text;
		text = nl + 1;
	}
	return n;
}

/* check_time(o): "time" is an RFC 3339 UTC time with microseconds, now. */
static void check_time(const struct jobj *o)
{
	const struct jval *v = jget(o, "time");
	struct tm tm;
	char *end;
	time_t t;

	assert_non_null(v);
	assert_int_equal(v->type, 's');
	assert_int_equal(strlen(v->s), strlen("2024-05-01T12:00:00.123456Z"));
	memset(&tm, 0, sizeof(tm));
	end = strptime(v->s, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_int_equal(end[0], '.');
	assert_int_equal(strspn(end + 1, "0123456789"), 6);
	assert_string_equal(end + 7, "Z");
	t = timegm(&tm);
	assert_true(llabs((long long)(t - time(NULL))) <= 5);
}

/* ---- an in-test forward sink on 127.0.0.1 ---- */

struct sink {
	int lfd, cfd;
	char spec[32];		/* "127.0.0.1:port" */
	msgpack_unpacker up;
	msgpack_unpacked msg;
};

/* sink_init(s, listening): a socket bound to 127.0.0.1 on a free port; until
 * sink_listen, connections to it are refused. */
static void sink_init(struct sink *s, int listening)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->cfd = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(s->spec, sizeof(s->spec), "127.0.0.1:%u", ntohs(a.sin_port));
	assert_true(msgpack_unpacker_init(&s->up, 4096));
	msgpack_unpacked_init(&s->msg);
	if (listening)
		assert_int_equal(listen(s->lfd, 8), 0);
}

static void sink_listen(struct sink *s)
{
	assert_int_equal(listen(s->lfd, 8), 0);
}

/* sink_accept(s, ms): accept the audit thread's connection within ms. */
static void sink_accept(struct sink *s, int ms)
{
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };

	if (s->cfd >= 0)
		close(s->cfd);
	assert_int_equal(poll(&p, 1, ms), 1);
	s->cfd = accept(s->lfd, NULL, NULL);
	assert_true(s->cfd >= 0);
	msgpack_unpacker_destroy(&s->up);
	assert_true(msgpack_unpacker_init(&s->up, 4096));
}

/* sink_next(s, ms): the next msgpack object into s->msg.data within ms; 0 on
 * timeout or end of stream. */
static int sink_next(struct sink *s, int ms)
{
	long long end = now_ms() + ms;
	struct pollfd p = { .fd = s->cfd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		msgpack_unpack_return rc = msgpack_unpacker_next(&s->up, &s->msg);

		assert_int_not_equal(rc, MSGPACK_UNPACK_PARSE_ERROR);
		if (rc == MSGPACK_UNPACK_SUCCESS)
			return 1;
		if (now_ms() > end || poll(&p, 1, (int)(end - now_ms()) + 1) != 1)
			return 0;
		assert_true(msgpack_unpacker_reserve_buffer(&s->up, 4096));
		n = recv(s->cfd, msgpack_unpacker_buffer(&s->up), 4096, 0);
		if (n <= 0)
			return 0;
		msgpack_unpacker_buffer_consumed(&s->up, (size_t)n);
	}
}

static void sink_free(struct sink *s)
{
	if (s->cfd >= 0)
		close(s->cfd);
	close(s->lfd);
	msgpack_unpacked_destroy(&s->msg);
	msgpack_unpacker_destroy(&s->up);
}

static int obj_str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	    memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* rec_get(rec, key): the value of key in the record map, or NULL. */
static const msgpack_object *rec_get(const msgpack_object *rec, const char *key)
{
	uint32_t i;

	for (i = 0; i < rec->via.map.size; i++)
		if (obj_str_is(&rec->via.map.ptr[i].key, key))
			return &rec->via.map.ptr[i].val;
	return NULL;
}

static void rec_str_is(const msgpack_object *rec, const char *key, const char *want)
{
	const msgpack_object *v = rec_get(rec, key);

	if (v == NULL)
		fail_msg("no \"%s\" in the record", key);
	if (!obj_str_is(v, want))
		fail_msg("\"%s\" is not \"%s\"", key, want);
}

/* check_message(s, tag): s->msg is [tag, EventTime(now), map]; returns the map. */
static const msgpack_object *check_message(const struct sink *s, const char *tag)
{
	const msgpack_object *m = &s->msg.data, *t;
	const unsigned char *b;
	uint32_t sec, nsec;

	assert_int_equal(m->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(m->via.array.size, 3);
	assert_true(obj_str_is(&m->via.array.ptr[0], tag));
	t = &m->via.array.ptr[1];
	assert_int_equal(t->type, MSGPACK_OBJECT_EXT);
	assert_int_equal(t->via.ext.type, 0);
	assert_int_equal(t->via.ext.size, 8);
	b = (const unsigned char *)t->via.ext.ptr;
	sec = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	nsec = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
	assert_true(llabs((long long)sec - (long long)time(NULL)) <= 5);
	assert_true(nsec < 1000000000u);
	assert_int_equal(m->via.array.ptr[2].type, MSGPACK_OBJECT_MAP);
	return &m->via.array.ptr[2];
}

/* emit_numbered(i): emit a deny event whose serial is i in hex. */
static void emit_numbered(unsigned i)
{
	char serial[16];
	struct audit_event ev = { .kind = AUDIT_DENY, .peer = "127.0.0.1:4000",
	    .reason = "not_allowed", .serial = serial };

	snprintf(serial, sizeof(serial), "%x", i);
	audit_emit(&ev);
}

/* ---- tests ---- */

static void test_disabled(void **state)
{
	struct audit_event ev = { .kind = AUDIT_ACCEPT, .peer = "127.0.0.1:1" };
	char err[256] = "";

	(void)state;
	assert_int_equal(audit_open(NULL, NULL, NULL, err, sizeof(err)), 0);
	assert_false(audit_enabled());
	audit_emit(&ev);
	audit_reopen();
	assert_int_equal(audit_dropped(), 0);
	audit_close();
	audit_close();
}

static void test_open_errors(void **state)
{
	char err[256] = "", dir[64], path[128];

	(void)state;
	assert_int_equal(audit_open("/nonexistent/dir/audit.log", NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/audit.log"));
	assert_false(audit_enabled());

	assert_int_equal(audit_open(NULL, "no-port-here", NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no-port-here"));
	assert_int_equal(audit_open(NULL, "127.0.0.1:0", NULL, err, sizeof(err)), -1);
	assert_int_equal(audit_open(NULL, "127.0.0.1:24224", "", err, sizeof(err)), -1);
	assert_false(audit_enabled());

	/* Open twice: the second is refused, the first still works. */
	snprintf(path, sizeof(path), "%s/audit.log", tmp_dir(dir, sizeof(dir)));
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), 0);
	assert_true(audit_enabled());
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "audit is already open");
	emit_numbered(1);
	audit_close();
	assert_false(audit_enabled());
	assert_int_equal(wait_lines(path, 1), 1);
	rm_dir(dir);
}

static void test_json_lines(void **state)
{
	const char *sans[] = { "DNS:edge-1.example", "IP:10.0.0.7", "URI:spiffe://x/\"y\"" };
	struct audit_event acc = {
		.kind = AUDIT_ACCEPT, .peer = "[2001:db8::1]:51234",
		.subject = "CN=edge \"1\",O=A\\B", .issuer = "CN=tlsfwd CA",
		.serial = "4f1a9c", .sans = sans, .nsans = 3,
		.fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		.rule = "allow-cn edge-*", .tls_version = "TLSv1.3",
		.cipher = "TLS_AES_128_GCM_SHA256",
		.bytes_in = 99,		/* not written for accept */
	};
	struct audit_event deny = {
		.kind = AUDIT_DENY, .peer = "192.0.2.9:7",
		.subject = "CN=ctl\x01\x1f\x7f nl\n cr\r tab\t bs\b ff\f",
		.issuer = "CN=caf\xc3\xa9 \xff\xfe bad \xe2\x82 end",
		.reason = "unknown_ca",
	};
	struct audit_event cls = {
		.kind = AUDIT_CLOSE, .peer = "127.0.0.1:5",
		.bytes_in = ULLONG_MAX, .bytes_out = 0, .duration = 1.5,
		.reason = "eof",
	};
	char err[256], dir[64], path[128], *text, *line[8];
	struct jobj o;
	const struct jval *v;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.log", tmp_dir(dir, sizeof(dir)));
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), 0);
	audit_emit(&acc);
	audit_emit(&deny);
	audit_emit(&cls);
	audit_close();
	assert_int_equal(audit_dropped(), 0);

	text = slurp(path);
	assert_int_equal(split_lines(text, line, 8), 3);

	/* Escapes as written, not only as decoded. */
	assert_non_null(strstr(line[0], "\"subject\":\"CN=edge \\\"1\\\",O=A\\\\B\""));
	assert_non_null(strstr(line[1], "\"subject\":\"CN=ctl\\u0001\\u001f\\u007f nl\\n cr\\r tab\\t bs\\b ff\\f\""));
	assert_non_null(strstr(line[2], ",\"bytes_in\":18446744073709551615,\"bytes_out\":0,\"duration\":1.500000}"));

	assert_int_equal(jparse(line[0], &o), 0);
	check_time(&o);
	jstr_is(&o, "kind", "accept");
	jstr_is(&o, "peer", "[2001:db8::1]:51234");
	jstr_is(&o, "subject", "CN=edge \"1\",O=A\\B");
	jstr_is(&o, "issuer", "CN=tlsfwd CA");
	jstr_is(&o, "serial", "4f1a9c");
	jstr_is(&o, "fingerprint", acc.fingerprint);
	jstr_is(&o, "rule", "allow-cn edge-*");
	jstr_is(&o, "tls_version", "TLSv1.3");
	jstr_is(&o, "cipher", "TLS_AES_128_GCM_SHA256");
	assert_null(jget(&o, "reason"));
	assert_null(jget(&o, "bytes_in"));
	assert_null(jget(&o, "duration"));
	v = jget(&o, "sans");
	assert_non_null(v);
	assert_int_equal(v->type, 'a');
	assert_int_equal(v->narr, 3);
	assert_string_equal(v->arr[0], sans[0]);
	assert_string_equal(v->arr[1], sans[1]);
	assert_string_equal(v->arr[2], sans[2]);
	assert_int_equal(o.n, 11);
	jfree(&o);

	assert_int_equal(jparse(line[1], &o), 0);
	check_time(&o);
	jstr_is(&o, "kind", "deny");
	jstr_is(&o, "reason", "unknown_ca");
	jstr_is(&o, "subject", deny.subject);
	/* Invalid UTF-8 (a stray byte, a cut sequence) becomes U+FFFD. */
	jstr_is(&o, "issuer", "CN=caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd bad "
	    "\xef\xbf\xbd\xef\xbf\xbd end");
	assert_null(jget(&o, "sans"));
	assert_null(jget(&o, "rule"));
	assert_int_equal(o.n, 6);
	jfree(&o);

	assert_int_equal(jparse(line[2], &o), 0);
	jstr_is(&o, "kind", "close");
	jstr_is(&o, "reason", "eof");
	v = jget(&o, "bytes_in");
	assert_non_null(v);
	assert_int_equal(v->type, 'n');
	assert_string_equal(v->s, "18446744073709551615");
	v = jget(&o, "bytes_out");
	assert_non_null(v);
	assert_true(v->type == 'n' && v->num == 0);
	v = jget(&o, "duration");
	assert_non_null(v);
	assert_true(v->type == 'n' && v->num == 1.5);
	jfree(&o);

	free(text);
	rm_dir(dir);
}

static void test_long_fields_are_cut(void **state)
{
	char err[256], dir[64], path[128], *text, *line[4], *subject, *issuer;
	const char *sans[100];
	char san[100][24];
	struct audit_event ev = { .kind = AUDIT_DENY, .reason = "not_allowed" };
	struct jobj o;
	const struct jval *v;
	size_t i;

	(void)state;
	subject = malloc(5001);
	issuer = malloc(4001);
	assert_non_null(subject);
	assert_non_null(issuer);
	memset(subject, 'a', 5000);
	subject[5000] = '\0';
	for (i = 0; i < 2000; i++)	/* "é", two bytes each */
		memcpy(issuer + 2 * i, "\xc3\xa9", 2);
	issuer[4000] = '\0';
	for (i = 0; i < 100; i++) {
		snprintf(san[i], sizeof(san[i]), "DNS:host-%03zu.example", i);
		sans[i] = san[i];
	}
	ev.subject = subject;
	ev.issuer = issuer;
	ev.sans = sans;
	ev.nsans = 100;

	snprintf(path, sizeof(path), "%s/audit.log", tmp_dir(dir, sizeof(dir)));
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), 0);
	audit_emit(&ev);
	audit_close();
	text = slurp(path);
	assert_int_equal(split_lines(text, line, 4), 1);
	assert_int_equal(jparse(line[0], &o), 0);

	v = jget(&o, "subject");
	assert_int_equal(strlen(v->s), AUDIT_FIELD_MAX);
	assert_int_equal(strspn(v->s, "a"), AUDIT_FIELD_MAX - 3);
	assert_string_equal(v->s + AUDIT_FIELD_MAX - 3, "...");

	/* Cut at a whole character: 510 of them, then "...". */
	v = jget(&o, "issuer");
	assert_int_equal(strlen(v->s), 1020 + 3);
	assert_memory_equal(v->s, issuer, 1020);
	assert_string_equal(v->s + 1020, "...");

	/* 21 bytes with the NUL each: 48 fit in 1024, then a "..." entry. */
	v = jget(&o, "sans");
	assert_int_equal(v->narr, 48 + 1);
	for (i = 0; i < 48; i++)
		assert_string_equal(v->arr[i], sans[i]);
	assert_string_equal(v->arr[48], "...");
	jfree(&o);
	free(text);
	free(subject);
	free(issuer);
	rm_dir(dir);
}

static void test_reopen(void **state)
{
	char err[256], dir[64], path[128], moved[128], *a, *b;

	(void)state;
	tmp_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	snprintf(moved, sizeof(moved), "%s/audit.log.1", dir);
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), 0);
	emit_numbered(0xaaa);
	assert_int_equal(wait_lines(path, 1), 1);

	assert_int_equal(rename(path, moved), 0);
	emit_numbered(0xbbb);		/* before the reopen: still the old file */
	assert_int_equal(wait_lines(moved, 2), 2);
	audit_reopen();
	emit_numbered(0xccc);
	emit_numbered(0xddd);
	assert_int_equal(wait_lines(path, 2), 2);

	/* A reopen that fails keeps the old file. */
	assert_int_equal(rename(path, moved), 0);	/* replaces audit.log.1 */
	assert_int_equal(chmod(dir, 0500), 0);
	audit_reopen();
	emit_numbered(0xeee);
	if (geteuid() == 0) {	/* root writes anyway: just wait for the line */
		assert_int_equal(wait_lines(path, 1), 1);
	} else {
		assert_int_equal(wait_lines(moved, 3), 3);
	}
	assert_int_equal(chmod(dir, 0700), 0);
	audit_close();
	assert_int_equal(audit_dropped(), 0);

	a = slurp(moved);
	b = slurp(path);
	assert_non_null(strstr(a, "\"serial\":\"ccc\""));
	assert_non_null(strstr(a, "\"serial\":\"ddd\""));
	assert_non_null(strstr(geteuid() == 0 ? b : a, "\"serial\":\"eee\""));
	free(a);
	free(b);
	rm_dir(dir);
}

#define EMITTERS 4
#define PER_EMITTER 3000

static void *emitter(void *arg)
{
	unsigned base = (unsigned)(uintptr_t)arg * PER_EMITTER, i;

	for (i = 0; i < PER_EMITTER; i++) {
		emit_numbered(base + i);
		if (i % 100 == 0)
			sleep_ms(1);
	}
	return NULL;
}

/* Reopening while threads emit: every event lands whole in one of the files
 * or is counted as dropped, and none twice. */
static void test_reopen_while_emitting(void **state)
{
	char err[256], dir[64], path[128], moved[160], *text, **line;
	unsigned char *seen = calloc(EMITTERS * PER_EMITTER, 1);
	pthread_t t[EMITTERS];
	size_t total = 0, n, i;
	int k, rot = 0;

	(void)state;
	assert_non_null(seen);
	line = calloc(EMITTERS * PER_EMITTER, sizeof(char *));
	assert_non_null(line);
	tmp_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	assert_int_equal(audit_open(path, NULL, NULL, err, sizeof(err)), 0);
	for (k = 0; k < EMITTERS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, emitter, (void *)(uintptr_t)k), 0);
	for (rot = 0; rot < 10; rot++) {
		sleep_ms(3);
		wait_exists(path);	/* the thread opened it after the last reopen */
		snprintf(moved, sizeof(moved), "%s/audit.log.%d", dir, rot);
		assert_int_equal(rename(path, moved), 0);
		audit_reopen();
	}
	for (k = 0; k < EMITTERS; k++)
		pthread_join(t[k], NULL);
	audit_close();

	for (rot = 0; rot <= 10; rot++) {
		struct jobj o;
		unsigned num;

		if (rot < 10)
			snprintf(moved, sizeof(moved), "%s/audit.log.%d", dir, rot);
		else
			snprintf(moved, sizeof(moved), "%s", path);
		text = slurp(moved);
		n = split_lines(text, line, EMITTERS * PER_EMITTER);
		for (i = 0; i < n; i++) {
			assert_int_equal(jparse(line[i], &o), 0);
			assert_int_equal(sscanf(jget(&o, "serial")->s, "%x", &num), 1);
			assert_true(num < EMITTERS * PER_EMITTER);
			assert_int_equal(seen[num], 0);
			seen[num] = 1;
			jfree(&o);
		}
		total += n;
		free(text);
	}
	assert_int_equal(total + audit_dropped(), EMITTERS * PER_EMITTER);
	free(seen);
	free(line);
	rm_dir(dir);
}

static void test_forward(void **state)
{
	const char *sans[] = { "DNS:edge-1.example", "IP:10.0.0.7" };
	struct audit_event acc = {
		.kind = AUDIT_ACCEPT, .peer = "10.0.0.7:40000", .subject = "CN=edge-1",
		.issuer = "CN=ca", .serial = "01", .sans = sans, .nsans = 2,
		.fingerprint = "ab12", .rule = "cn=edge-1", .tls_version = "TLSv1.3",
		.cipher = "TLS_CHACHA20_POLY1305_SHA256",
	};
	struct audit_event cls = {
		.kind = AUDIT_CLOSE, .peer = "10.0.0.7:40000", .subject = "CN=edge-1",
		.bytes_in = 5000000000ULL, .bytes_out = 42, .duration = 2.25,
	};
	struct audit_event deny = {
		.kind = AUDIT_DENY, .peer = "10.0.0.8:1", .reason = "no_certificate",
		.tls_version = "TLSv1.3", .cipher = "TLS_AES_256_GCM_SHA384",
	};
	const msgpack_object *rec, *v;
	struct sink s;
	char err[256];

	(void)state;
	sink_init(&s, 1);
	assert_int_equal(audit_open(NULL, s.spec, "test.audit", err, sizeof(err)), 0);
	sink_accept(&s, 5000);
	audit_emit(&acc);
	audit_emit(&cls);
	audit_emit(&deny);

	assert_true(sink_next(&s, 5000));
	rec = check_message(&s, "test.audit");
	assert_int_equal(rec->via.map.size, 10);
	rec_str_is(rec, "kind", "accept");
	rec_str_is(rec, "peer", "10.0.0.7:40000");
	rec_str_is(rec, "subject", "CN=edge-1");
	rec_str_is(rec, "issuer", "CN=ca");
	rec_str_is(rec, "serial", "01");
	rec_str_is(rec, "fingerprint", "ab12");
	rec_str_is(rec, "rule", "cn=edge-1");
	rec_str_is(rec, "tls_version", "TLSv1.3");
	rec_str_is(rec, "cipher", "TLS_CHACHA20_POLY1305_SHA256");
	v = rec_get(rec, "sans");
	assert_non_null(v);
	assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(v->via.array.size, 2);
	assert_true(obj_str_is(&v->via.array.ptr[0], sans[0]));
	assert_true(obj_str_is(&v->via.array.ptr[1], sans[1]));
	assert_null(rec_get(rec, "bytes_in"));

	assert_true(sink_next(&s, 5000));
	rec = check_message(&s, "test.audit");
	assert_int_equal(rec->via.map.size, 6);
	rec_str_is(rec, "kind", "close");
	v = rec_get(rec, "bytes_in");
	assert_true(v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_true(v->via.u64 == 5000000000ULL);
	v = rec_get(rec, "bytes_out");
	assert_true(v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == 42);
	v = rec_get(rec, "duration");
	assert_true(v != NULL && v->type == MSGPACK_OBJECT_FLOAT64 && v->via.f64 == 2.25);

	assert_true(sink_next(&s, 5000));
	rec = check_message(&s, "test.audit");
	assert_int_equal(rec->via.map.size, 5);
	rec_str_is(rec, "kind", "deny");
	rec_str_is(rec, "reason", "no_certificate");
	assert_null(rec_get(rec, "subject"));

	audit_close();
	assert_int_equal(audit_dropped(), 0);
	assert_false(sink_next(&s, 2000));	/* closed, nothing more */
	sink_free(&s);
}

/* emit_big(i): emit a deny event of about 3 KiB whose serial is i in hex. */
static void emit_big(unsigned i)
{
	static char filler[1001];
	char serial[16];
	struct audit_event ev = { .kind = AUDIT_DENY, .peer = "127.0.0.1:4000",
	    .reason = "not_allowed", .serial = serial, .subject = filler,
	    .issuer = filler, .fingerprint = filler };

	if (filler[0] == '\0')
		memset(filler, 'f', sizeof(filler) - 1);
	snprintf(serial, sizeof(serial), "%x", i);
	audit_emit(&ev);
}

/* sink_serial(s): the serial of the record in s->msg, as a number. */
static unsigned sink_serial(const struct sink *s)
{
	const msgpack_object *v = rec_get(check_message(s, AUDIT_TAG_DEFAULT), "serial");
	char buf[16];

	assert_true(v != NULL && v->type == MSGPACK_OBJECT_STR && v->via.str.size < sizeof(buf));
	memcpy(buf, v->via.str.ptr, v->via.str.size);
	buf[v->via.str.size] = '\0';
	return (unsigned)strtoul(buf, NULL, 16);
}

/* A target that reads slowly fills the socket: sending resumes where it
 * stopped and every event arrives once, in order.  One that stops reading
 * does not hold audit_close past AUDIT_CLOSE_WAIT, and what it did not get
 * is counted. */
static void test_forward_slow_reader(void **state)
{
	const unsigned n = 1000;	/* about 3 MB on the wire */
	int small = 4096;
	char err[256];
	struct sink s;
	long long t0;
	unsigned i, got;

	(void)state;
	sink_init(&s, 0);
	assert_int_equal(setsockopt(s.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	sink_listen(&s);
	assert_int_equal(audit_open(NULL, s.spec, NULL, err, sizeof(err)), 0);
	sink_accept(&s, 5000);
	for (i = 0; i < n; i++)
		emit_big(i);
	sleep_ms(200);		/* the socket fills up */
	for (i = 0; i < n; i++) {
		assert_true(sink_next(&s, 5000));
		assert_int_equal(sink_serial(&s), i);
		if (i % 100 == 0)
			sleep_ms(10);
	}
	assert_int_equal(audit_dropped(), 0);

	/* Now the target stops reading. */
	for (i = 0; i < n; i++)
		emit_big(n + i);
	sleep_ms(200);
	t0 = now_ms();
	audit_close();
	assert_true(now_ms() - t0 < AUDIT_CLOSE_WAIT + 1000);
	for (got = 0; sink_next(&s, 2000); got++)
		assert_int_equal(sink_serial(&s), n + got);
	/* A batch cut short by audit_close counts as dropped even if part
	 * of it arrived. */
	assert_true(got + audit_dropped() >= n);
	assert_true(got + audit_dropped() <= n + 64);
	sink_free(&s);
}

/* stderr_to(path): send stderr to a new file; returns the old stderr for stderr_back. */
static int stderr_to(const char *path)
{
	int saved = dup(STDERR_FILENO), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

static void stderr_back(int saved)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* The target refuses connections: audit_emit stays fast, the queue and the
 * backlog bound what is kept, the rest is counted, and audit_close gives up
 * after AUDIT_CLOSE_WAIT and says how many were lost. */
static void test_forward_absent_drops(void **state)
{
	const unsigned n = 3 * (AUDIT_QUEUE_MAX + AUDIT_BACKLOG_MAX);
	char err[256], dir[64], logpath[128], *log;
	long long t0, took, closing;
	unsigned long long dropped;
	struct sink s;
	unsigned i;
	int saved;

	(void)state;
	sink_init(&s, 0);	/* bound, not listening: refused */
	snprintf(logpath, sizeof(logpath), "%s/stderr", tmp_dir(dir, sizeof(dir)));
	saved = stderr_to(logpath);
	assert_int_equal(audit_open(NULL, s.spec, NULL, err, sizeof(err)), 0);
	t0 = now_ms();
	for (i = 0; i < n; i++)
		emit_numbered(i);
	took = now_ms() - t0;
	dropped = audit_dropped();
	t0 = now_ms();
	audit_close();
	closing = now_ms() - t0;
	stderr_back(saved);	/* before asserting: cmocka reports on stderr */
	/* Undropped while running: at most the queue, the batch the thread holds
	 * and the backlog.  The time bounds say "never blocks", not how fast. */
	assert_true(dropped > 0);
	assert_true(dropped <= n);
	assert_true(dropped >= n - 2 * AUDIT_QUEUE_MAX - AUDIT_BACKLOG_MAX);
	assert_true(closing < AUDIT_CLOSE_WAIT + 5000);
	if (took > 10000)
		fail_msg("%u audit_emit calls took %lld ms", n, took);
	assert_int_equal(audit_dropped(), n);	/* nothing was delivered */

	log = slurp(logpath);
	assert_non_null(strstr(log, "audit forward target unavailable"));
	assert_non_null(strstr(log, "audit events dropped"));
	assert_null(strstr(log, "not loopback"));
	free(log);
	sink_free(&s);
	rm_dir(dir);
}

/* With the target away, the file still gets every event; the forward
 * backlog keeps the first AUDIT_BACKLOG_MAX, the rest miss the forward only. */
static void test_file_unaffected_by_absent_forward(void **state)
{
	const unsigned n = AUDIT_BACKLOG_MAX + 1000;
	char err[256], dir[64], path[128], logpath[128];
	struct sink s;
	unsigned i;
	int saved;

	(void)state;
	sink_init(&s, 0);
	tmp_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	snprintf(logpath, sizeof(logpath), "%s/stderr", dir);
	saved = stderr_to(logpath);
	assert_int_equal(audit_open(path, s.spec, NULL, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		emit_numbered(i);
		if (i % 1000 == 999)	/* stay below the queue's size */
			assert_int_equal(wait_lines(path, i + 1), i + 1);
	}
	assert_int_equal(wait_lines(path, n), n);
	assert_int_equal(audit_dropped(), n - AUDIT_BACKLOG_MAX);
	audit_close();
	stderr_back(saved);
	assert_int_equal(audit_dropped(), n);
	sink_free(&s);
	rm_dir(dir);
}

/* The target comes up later: the events kept meanwhile arrive, in order.  It
 * goes away and comes back: the connection is made again. */
static void test_forward_reconnects(void **state)
{
	char err[256], dir[64], logpath[128], *log, serial[16];
	const msgpack_object *rec;
	struct sink s;
	unsigned i;
	int saved;

	(void)state;
	sink_init(&s, 0);
	snprintf(logpath, sizeof(logpath), "%s/stderr", tmp_dir(dir, sizeof(dir)));
	saved = stderr_to(logpath);
	assert_int_equal(audit_open(NULL, s.spec, "re.audit", err, sizeof(err)), 0);
	for (i = 0; i < 10; i++)
		emit_numbered(i);
	sleep_ms(400);		/* a few refused attempts */
	sink_listen(&s);
	sink_accept(&s, 10000);
	for (i = 0; i < 10; i++) {
		assert_true(sink_next(&s, 5000));
		rec = check_message(&s, "re.audit");
		snprintf(serial, sizeof(serial), "%x", i);
		rec_str_is(rec, "serial", serial);
	}

	/* The target drops the connection; the next event goes on a new one. */
	close(s.cfd);
	s.cfd = -1;
	sleep_ms(200);
	emit_numbered(0x100);
	sink_accept(&s, 10000);
	assert_true(sink_next(&s, 5000));
	rec = check_message(&s, "re.audit");
	rec_str_is(rec, "serial", "100");

	audit_close();
	stderr_back(saved);
	assert_int_equal(audit_dropped(), 0);
	log = slurp(logpath);
	assert_non_null(strstr(log, "audit forward target unavailable"));
	assert_non_null(strstr(log, "audit forward connected"));
	assert_non_null(strstr(log, "audit forward connection lost"));
	free(log);
	sink_free(&s);
	rm_dir(dir);
}

/* A target that is not loopback gets a warning: events go unencrypted. */
static void test_forward_not_loopback_warns(void **state)
{
	char err[256], dir[64], logpath[128], *log;
	int saved;

	(void)state;
	snprintf(logpath, sizeof(logpath), "%s/stderr", tmp_dir(dir, sizeof(dir)));
	saved = stderr_to(logpath);
	/* TEST-NET-1: never answers; audit_close does not wait for it. */
	assert_int_equal(audit_open(NULL, "192.0.2.1:24224", NULL, err, sizeof(err)), 0);
	audit_close();
	stderr_back(saved);
	log = slurp(logpath);
	assert_non_null(strstr(log, "not loopback"));
	assert_non_null(strstr(log, "192.0.2.1:24224"));
	free(log);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_long_fields_are_cut),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_reopen_while_emitting),
		cmocka_unit_test(test_forward),
		cmocka_unit_test(test_forward_slow_reader),
		cmocka_unit_test(test_forward_absent_drops),
		cmocka_unit_test(test_file_unaffected_by_absent_forward),
		cmocka_unit_test(test_forward_reconnects),
		cmocka_unit_test(test_forward_not_loopback_warns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
