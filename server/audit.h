/* audit: one structured event per connection decision (accept, deny) and per
 * close, written as JSON lines to a file and/or sent as forward-protocol
 * Message events ([tag, EventTime, record]) to a Fluentd input over TCP.
 * One background thread owns the file and the forward connection; audit_emit
 * only copies the event into a bounded queue, and what does not fit is
 * counted (audit_dropped), never waited for. */
#ifndef TLSFWD_AUDIT_H
#define TLSFWD_AUDIT_H

#include <stddef.h>

enum audit_kind { AUDIT_ACCEPT, AUDIT_DENY, AUDIT_CLOSE, AUDIT_TAG_DENIED };

/*
 * One event.  Every string may be NULL, which leaves the field out.  audit_emit
 * copies the strings: each is cut to AUDIT_FIELD_MAX bytes (ending in "..."),
 * and invalid UTF-8 becomes U+FFFD, so both outputs stay valid.  bytes_in,
 * bytes_out and duration are written for AUDIT_CLOSE only.
 */
struct audit_event {
	enum audit_kind kind;
	const char *peer;		/* "192.0.2.7:51234", "[2001:db8::1]:443" */
	const char *subject;		/* peer certificate subject */
	const char *issuer;		/* its issuer */
	const char *serial;		/* its serial number, hex */
	const char *const *sans;	/* nsans subject alternative names */
	size_t nsans;			/* ("DNS:a.example", "IP:10.0.0.1") */
	const char *fingerprint;	/* SHA-256 of the DER certificate, hex */
	const char *rule;		/* accept: the allow rule that matched */
	const char *reason;		/* deny: "unknown_ca", "expired", ...; close: why */
	const char *tls_version;	/* "TLSv1.3" */
	const char *cipher;		/* "TLS_AES_128_GCM_SHA256" */
	const char *tag;		/* tag_denied: the tag refused */
	unsigned long long bytes_in;	/* close: bytes received from the peer */
	unsigned long long bytes_out;	/* close: bytes sent to the peer */
	double duration;		/* close: seconds the connection lived */
};

#define AUDIT_TAG_DEFAULT  "tlsfwd.audit"
#define AUDIT_FIELD_MAX    1024			/* bytes kept of one string, and of all SANs */
#define AUDIT_SANS_MAX     64			/* SANs kept of one certificate */
#define AUDIT_QUEUE_MAX    4096			/* events waiting for the thread */
#define AUDIT_BACKLOG_MAX  4096			/* events waiting for the forward target */
#define AUDIT_QUEUE_BYTES  (4u << 20)		/* bytes in the queue; the same in the backlog */
#define AUDIT_CLOSE_WAIT   1000			/* ms audit_close spends delivering */

/** audit_open(file, forward, tag, err, errsz): start auditing to file (JSON
 *  lines, appended, created 0640) and/or to forward ("host:port" of a Fluentd
 *  in_forward, plain TCP) under tag (NULL: AUDIT_TAG_DEFAULT).  Both NULL:
 *  auditing stays off and audit_emit does nothing.  Warns if forward is not a
 *  loopback address.  Returns 0, or -1 with a message in err. */
int audit_open(const char *file, const char *forward, const char *tag,
    char *err, size_t errsz);

/** audit_enabled(): non-zero while events go somewhere, so a caller can skip
 *  gathering certificate details nobody will read. */
int audit_enabled(void);

/** audit_emit(ev): stamp ev with the current time and queue a copy; ev stays
 *  the caller's.  Any thread; never blocks on I/O.  A full queue drops the
 *  event and counts it. */
void audit_emit(const struct audit_event *ev);

/** audit_reopen(): reopen the file (after logrotate moved it, on SIGUSR1);
 *  events emitted after it returns go to the new file.  Any thread,
 *  async-signal-safe; if the new file cannot be opened the old one is kept. */
void audit_reopen(void);

/** audit_dropped(): events since the last audit_open that missed a
 *  destination: queue or forward backlog full, a failed write, or undelivered
 *  at audit_close.  Still readable after audit_close. */
unsigned long long audit_dropped(void);

/** audit_close(): deliver what can be within AUDIT_CLOSE_WAIT ms, log the
 *  dropped count if any, stop the thread and free everything.  Meant for after
 *  the workers stopped; an audit_emit racing with it is dropped, later ones do
 *  nothing.  Not with audit_open or audit_reopen at the same time. */
void audit_close(void);

#endif
