/* log: one line per event on stderr, logfmt or JSON, written with a single write(2). */
#ifndef TLSFWD_LOG_H
#define TLSFWD_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_LOGFMT, LOG_JSON };

/** log_setup(prog, level, format): set the program name and what is printed. */
void log_setup(const char *prog, enum log_level level, enum log_format format);

/** log_set_output(out): where finished lines go (each with its '\n');
 *  NULL: stderr, one write(2) per line. */
void log_set_output(void (*out)(const char *line, size_t n));

/** log_enabled(level): non-zero if a line at this level would be printed. */
int log_enabled(enum log_level level);

/**
 * log_kv(level, msg, fields, ...): print one event.  fields is a template of
 * space-separated key=%conv pairs ("peer=%s bytes=%llu"); each %conv takes the
 * next argument.  Supported: %s %d %u %ld %lu %lld %llu %zu %f.  A NULL %s
 * prints as an empty string.  fields may be NULL.
 */
void log_kv(enum log_level level, const char *msg, const char *fields, ...)
	__attribute__((format(printf, 3, 4)));

/** log_utf8_len(p, n): the length of the well-formed UTF-8 sequence at p,
 *  which has n > 0 bytes (1 for ASCII); 0 if p[0] does not start one (a
 *  continuation byte, an overlong form, a surrogate, above U+10FFFF, or cut
 *  short by n).  The one UTF-8 check of the tree. */
size_t log_utf8_len(const unsigned char *p, size_t n);

/**
 * log_json_escape(s, n, out, arg): the n bytes at s as the inside of a JSON
 * string (no quotes), handed to out(arg, bytes, len) in pieces.  The one JSON
 * string escaper of the tree (log lines, audit lines); its output is valid
 * JSON for any input bytes:
 *   '"' and '\\' escaped; \n \r \t \b \f as such; other control bytes,
 *   DEL and the C1 controls (U+0080..U+009F) as \u00XX; U+2028 and U+2029
 *   (line breaks to JavaScript and to many line splitters) as \u2028 and
 *   \u2029; the rest of well-formed UTF-8 kept as it is; every byte that does not
 *   start a well-formed UTF-8 sequence (a lone continuation byte, an overlong
 *   form, a surrogate, a code point above U+10FFFF, a sequence cut short, 0xC0,
 *   0xC1, 0xF5..0xFF) becomes one \ufffd (U+FFFD, the replacement character).
 *   A NUL byte within n is written as \u0000.
 */
void log_json_escape(const char *s, size_t n, void (*out)(void *arg, const char *p, size_t len),
    void *arg);

#define log_error(...) log_kv(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_kv(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_kv(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_kv(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
