/* fwd_auth: Fluentd's <security> handshake (forward protocol v1), spoken
 * by the server on its upstream connection for senders that cannot: read
 * in_forward's HELO, answer PING, check PONG.  The reader and the messages
 * are pure (fwd_auth_feed); server.c drives them on end[1] as the role's
 * upstream_open() hook, before the first byte of the sender is relayed. */
#ifndef TLSFWD_FWD_AUTH_H
#define TLSFWD_FWD_AUTH_H

#include <stddef.h>

#define FWD_AUTH_MSG_MAX 4096	/* bytes of a HELO or PONG, at most */
#define FWD_AUTH_FIELD_MAX 256	/* hostname, username, nonce: bytes, with a NUL */
#define FWD_AUTH_SECRET_MAX 1024	/* shared key, password: bytes, with the NUL */
#define FWD_AUTH_PING_MAX 1024	/* the PING we send, at most */
#define FWD_AUTH_SALT_LEN 32	/* our shared_key_salt: 16 random bytes in lowercase hex */

/* What we say we are and know (from the --upstream-* options). */
struct fwd_auth_secret {
	char key[FWD_AUTH_SECRET_MAX];		/* shared_key */
	char hostname[FWD_AUTH_FIELD_MAX];	/* our self_hostname */
	char username[FWD_AUTH_FIELD_MAX];	/* "" without user_auth */
	char password[FWD_AUTH_SECRET_MAX];
};

/* One handshake: fwd_auth_init() it, then fwd_auth_feed() Fluentd's bytes. */
struct fwd_auth {
	const struct fwd_auth_secret *sec;
	unsigned char phase;		/* FWD_AUTH_HELO, _PONG, then done */
	unsigned char result;		/* once done: 1 ok, 2 failed */
	const char *why;		/* once failed: the reason */
	unsigned short n;		/* bytes of the message in buf */
	unsigned short scan;		/* bytes of buf whose objects' shape was checked */
	unsigned short owed;		/* objects the message still owes after scan */
	unsigned short nonce_len;
	unsigned short out_len, out_sent;	/* the PING in out, and how much is sent */
	char salt[FWD_AUTH_SALT_LEN + 1];
	char refusal[64];		/* the PONG's reason when it refused, cut */
	unsigned char nonce[FWD_AUTH_FIELD_MAX];
	unsigned char buf[FWD_AUTH_MSG_MAX];
	unsigned char out[FWD_AUTH_PING_MAX];
};

enum { FWD_AUTH_HELO = 0, FWD_AUTH_PONG = 1, FWD_AUTH_END = 2 };
enum { FWD_AUTH_MORE = 0, FWD_AUTH_SEND = 1, FWD_AUTH_OK = 2, FWD_AUTH_FAIL = -1 };

/** fwd_auth_init(a, sec, random16): a handshake waiting for HELO, with the
 *  salt made of the 16 bytes at random16. */
void fwd_auth_init(struct fwd_auth *a, const struct fwd_auth_secret *sec,
    const unsigned char random16[16]);

/*-
 * fwd_auth_feed(a, buf, n, used, why): take Fluentd's n bytes at buf, never
 * a byte past the end of the message they complete (*used: how many).
 * Returns FWD_AUTH_MORE (all taken, the message goes on), FWD_AUTH_SEND (a
 * good HELO: the PING is a->out, a->out_len bytes; what follows is the
 * PONG), FWD_AUTH_OK (a PONG that accepts us and proves Fluentd knows the
 * key), or FWD_AUTH_FAIL with *why a stable token: fwd_auth_bad_msgpack,
 * fwd_auth_too_long (FWD_AUTH_MSG_MAX bytes and no end), fwd_auth_not_helo,
 * fwd_auth_not_pong, shared_key_mismatch (PONG's digest is wrong, or
 * Fluentd says the key is), user_auth_failed (Fluentd refused the username
 * or password), fwd_auth_refused (another refusal: a->refusal says
 * Fluentd's reason), fwd_auth_same_hostname (PONG names our own hostname: a
 * reflected PING).  Once it returned OK or FAIL, it returns the same again.
 */
int fwd_auth_feed(struct fwd_auth *a, const unsigned char *buf, size_t n, size_t *used,
    const char **why);

/** fwd_auth_secret_load(sec, key_file, hostname, username, password_file,
 *  err, errsz): fill sec from the first lines of the files (a warning
 *  naming the mode when others may read one), hostname (NULL:
 *  gethostname()) and username (NULL: no user_auth).  0, or -1 with a
 *  message in err, which never holds a secret. */
int fwd_auth_secret_load(struct fwd_auth_secret *sec, const char *key_file, const char *hostname,
    const char *username, const char *password_file, char *err, size_t errsz);

struct conn;

/*-
 * fwd_auth_open(c, sec, why): the handshake on c's end[1], as the role's
 * upstream_open() hook: its state is in c->hop (a pointer, NULL at the start
 * of each attempt), bytes are taken from the socket as HELO and PONG need
 * them and no further.  CONN_OPEN_DONE, CONN_OPEN_WAIT (end[1].hwait set), or
 * CONN_OPEN_FAILED with *why a token of fwd_auth_feed(), fwd_auth_closed
 * (Fluentd closed or reset), fwd_auth_write_failed or out_of_memory.
 */
int fwd_auth_open(struct conn *c, const struct fwd_auth_secret *sec, const char **why);

/** fwd_auth_close(c): free what fwd_auth_open() keeps in c->hop, if anything. */
void fwd_auth_close(struct conn *c);

#endif
