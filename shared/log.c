/* log: logfmt or JSON event lines.  Each line is built in a local buffer and
 * written with one write(2), so lines from worker threads never interleave. */
#include "log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "tlsfwd";
static enum log_level log_max = LOG_INFO;
static enum log_format log_fmt = LOG_LOGFMT;

static void write_stderr(const char *line, size_t n)
{
	(void)!write(STDERR_FILENO, line, n);
}

static void (*log_out)(const char *, size_t) = write_stderr;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* The longest string value written, escapes included: a longer one is cut at
 * a whole character or escape and ends in "...".  Two such values and the
 * usual fields fit in a line. */
#define LOG_VALUE_MAX 768

struct line {
	char buf[2048];
	size_t len;
	int over;		/* a put() did not fit: the field is dropped */
};

/* The bytes left, keeping two for the JSON '}' and the '\n'. */
static size_t room(const struct line *l)
{
	return sizeof(l->buf) - 2 - l->len;
}

static void put(struct line *l, const char *s, size_t n)
{
	if (n > room(l)) {
		n = room(l);
		l->over = 1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/** log_utf8_len(p, n): the length of the well-formed UTF-8 sequence (RFC 3629,
 *  Unicode table 3-7) at p, which has n > 0 bytes; 0 if p[0] does not start one. */
size_t log_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;		/* continuation byte, 0xc0, 0xc1, 0xf5..0xff */
	if (p[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;		/* above U+10FFFF */
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/** log_json_escape(s, n, out, arg): the n bytes at s as the inside of a JSON
 *  string, valid for any bytes (see log.h: invalid UTF-8 becomes \ufffd). */
void log_json_escape(const char *s, size_t n, void (*out)(void *arg, const char *p, size_t len),
    void *arg)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
	char esc[8];

	while (p < end) {
		const char *e = NULL;
		size_t len = 1;

		switch (*p) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				e = esc;
			} else if (*p >= 0x80 && (len = log_utf8_len(p, (size_t)(end - p))) == 0) {
				e = "\\ufffd";
				len = 1;
			} else if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
				/* C1 controls (U+0085 NEL among them) */
				snprintf(esc, sizeof(esc), "\\u%04x", p[1]);
				e = esc;
			} else if (len == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
			    (p[2] == 0xa8 || p[2] == 0xa9)) {
				/* U+2028, U+2029: valid in JSON, but line breaks to
				 * JavaScript and to many line splitters */
				e = p[2] == 0xa8 ? "\\u2028" : "\\u2029";
			}
		}
		if (e != NULL) {
			if (p > run)
				out(arg, (const char *)run, (size_t)(p - run));
			out(arg, e, strlen(e));
			run = p + len;
		}
		p += len;
	}
	if (p > run)
		out(arg, (const char *)run, (size_t)(p - run));
}

/* Where a string value's escaped pieces go: at most `left` bytes of them. */
struct str_out {
	struct line *l;
	size_t left;
	int cut;
};

/* One piece from log_json_escape: an escape, kept whole or not at all, or a
 * run of valid UTF-8, cut (if it must be) before a character. */
static void put_piece(void *arg, const char *s, size_t n)
{
	struct str_out *o = arg;

	if (o->cut)
		return;
	if (n > o->left) {
		if (s[0] != '\\') {
			n = o->left;
			while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
				n--;
			put(o->l, s, n);
		}
		o->cut = 1;
		return;
	}
	put(o->l, s, n);
	o->left -= n;
}

/* A string value: quoted and escaped when logfmt or JSON needs it, with the
 * JSON escapes (log_json_escape) in both formats; cut with "..." at
 * LOG_VALUE_MAX bytes or where the line ends, so a JSON line stays valid. */
static void put_str(struct line *l, const char *s)
{
	int quote = log_fmt == LOG_JSON || *s == '\0' || strpbrk(s, " \"=\\\t\r\n") != NULL;
	struct str_out o = { .l = l, .left = room(l) > 8 ? room(l) - 8 : 0 };

	if (o.left > LOG_VALUE_MAX)
		o.left = LOG_VALUE_MAX;
	if (quote)
		put(l, "\"", 1);
	log_json_escape(s, strlen(s), put_piece, &o);
	if (o.cut)
		put(l, "...", 3);
	if (quote)
		put(l, "\"", 1);
}

static void put_key(struct line *l, const char *key, size_t n)
{
	if (log_fmt == LOG_JSON) {
		put(l, ",\"", 2);
		put(l, key, n);
		put(l, "\":", 2);
	} else {
		put(l, " ", 1);
		put(l, key, n);
		put(l, "=", 1);
	}
}

void log_setup(const char *prog, enum log_level level, enum log_format format)
{
	log_prog = prog;
	log_max = level;
	log_fmt = format;
}

void log_set_output(void (*out)(const char *line, size_t n))
{
	log_out = out != NULL ? out : write_stderr;
}

int log_enabled(enum log_level level)
{
	return level <= log_max;
}

void log_kv(enum log_level level, const char *msg, const char *fields, ...)
{
	struct line l = { .len = 0 };
	size_t mark = 0;
	struct timeval tv;
	struct tm tm;
	char ts[64], num[64];
	const char *p;
	va_list ap;

	if (!log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000));

	if (log_fmt == LOG_JSON) {
		puts_(&l, "{\"ts\":\"");
		puts_(&l, ts);
		puts_(&l, "\"");
	} else {
		puts_(&l, "ts=");
		puts_(&l, ts);
	}
	put_key(&l, "level", 5);
	put_str(&l, level_names[level]);
	put_key(&l, "prog", 4);
	put_str(&l, log_prog);
	put_key(&l, "msg", 3);
	put_str(&l, msg);
	mark = l.len;

	va_start(ap, fields);
	for (p = fields; p != NULL && *p != '\0';) {
		const char *eq, *conv;

		/* A field that does not fit is dropped whole: the line stays valid. */
		if (l.over) {
			l.len = mark;
			l.over = 0;
		}
		mark = l.len;
		while (*p == ' ')
			p++;
		if ((eq = strchr(p, '=')) == NULL || eq[1] != '%')
			break;
		conv = eq + 2;
		if (conv[0] == 's') {
			const char *v = va_arg(ap, const char *);

			/* A NULL string drops the field: optional facts stay out. */
			if (v != NULL) {
				put_key(&l, p, (size_t)(eq - p));
				put_str(&l, v);
			}
			p = conv + 1;
			continue;
		}
		put_key(&l, p, (size_t)(eq - p));
		if (conv[0] == 'd') {
			snprintf(num, sizeof(num), "%d", va_arg(ap, int));
			p = conv + 1;
		} else if (conv[0] == 'u') {
			snprintf(num, sizeof(num), "%u", va_arg(ap, unsigned));
			p = conv + 1;
		} else if (conv[0] == 'f') {
			double v = va_arg(ap, double);

			/* JSON has no NaN or infinity: null, as JSON.stringify writes */
			if (isfinite(v))
				snprintf(num, sizeof(num), "%.3f", v);
			else
				snprintf(num, sizeof(num), "%s", log_fmt == LOG_JSON ? "null" :
				    isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
			p = conv + 1;
		} else if (conv[0] == 'z' && conv[1] == 'u') {
			snprintf(num, sizeof(num), "%zu", va_arg(ap, size_t));
			p = conv + 2;
		} else if (conv[0] == 'l' && conv[1] == 'l') {
			if (conv[2] == 'u')
				snprintf(num, sizeof(num), "%llu", va_arg(ap, unsigned long long));
			else
				snprintf(num, sizeof(num), "%lld", va_arg(ap, long long));
			p = conv + 3;
		} else if (conv[0] == 'l') {
			if (conv[1] == 'u')
				snprintf(num, sizeof(num), "%lu", va_arg(ap, unsigned long));
			else
				snprintf(num, sizeof(num), "%ld", va_arg(ap, long));
			p = conv + 2;
		} else {
			break;
		}
		puts_(&l, num);
	}
	va_end(ap);
	if (l.over)
		l.len = mark;

	if (log_fmt == LOG_JSON)
		l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	log_out(l.buf, l.len);
}
