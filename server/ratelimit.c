/* ratelimit: a fixed table of (message, reason, address) keys, each with the
 * start of its window and how many events that window suppressed.  The first
 * event of a quiet key is logged in full; while events go on, one summary
 * line a second counts them (the event that finds its key's window closed
 * writes the count and opens the next window); once they stop, a worker's
 * flush timer writes the last count within two windows.  Open
 * addressing over a short probe window with no tombstones: a lookup scans the
 * whole window, and a slot whose window has closed with nothing pending is
 * free to take.  When every slot of a key's window is busy (a flood from
 * more addresses than the table holds), the event counts under the same
 * message and reason with peer=many, so memory and lines stay bounded
 * whatever the number of addresses.  A mutex, since every worker logs; it is
 * held while a summary line is written, at most once a second per key. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RL_SLOTS 512		/* a power of two */
#define RL_PROBE 16		/* slots a key may live in */
#define RL_REASON_MAX 48

struct rl_slot {
	int used;
	enum log_level level;
	const char *msg;
	unsigned char ip[16];
	char reason[RL_REASON_MAX];
	char peer[SOCK_NTOP_MAX];
	double start;			/* when the window opened (CLOCK_MONOTONIC) */
	unsigned long suppressed;	/* events counted, not logged, since then */
};

static struct rl_slot slots[RL_SLOTS];
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t key_hash(const char *msg, const unsigned char ip[16], const char *reason)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)(uintptr_t)msg;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 1099511628211ULL;
	for (; *reason != '\0'; reason++)
		h = (h ^ (unsigned char)*reason) * 1099511628211ULL;
	return (size_t)h;
}

/* summary(s): log the count s holds and clear it.  Called with rl_lock. */
static void summary(struct rl_slot *s)
{
	log_kv(s->level, s->msg, "peer=%s reason=%s repeated=%lu", s->peer, s->reason,
	    s->suppressed);
	s->suppressed = 0;
}

/* lookup(level, msg, ip, peer, reason, now): the slot for this key, taken if
 * new; NULL if its probe window is full.  Called with rl_lock. */
static struct rl_slot *lookup(enum log_level level, const char *msg, const unsigned char ip[16],
    const char *peer, const char *reason, double now)
{
	struct rl_slot *take = NULL;
	size_t i, at = key_hash(msg, ip, reason);

	for (i = 0; i < RL_PROBE; i++) {
		struct rl_slot *s = &slots[(at + i) & (RL_SLOTS - 1)];

		/* As stored: a reason too long for the slot is cut the same way. */
		if (s->used && s->msg == msg && memcmp(s->ip, ip, 16) == 0 &&
		    strncmp(s->reason, reason, sizeof(s->reason) - 1) == 0)
			return s;
		if (take == NULL && (!s->used || (s->suppressed == 0 && now - s->start >= RATELIMIT_WINDOW)))
			take = s;
	}
	if (take != NULL) {
		take->used = 1;
		take->level = level;
		take->msg = msg;
		memcpy(take->ip, ip, 16);
		snprintf(take->reason, sizeof(take->reason), "%s", reason);
		snprintf(take->peer, sizeof(take->peer), "%s", peer);
		take->start = now - 2 * RATELIMIT_WINDOW;	/* closed: the first event logs */
		take->suppressed = 0;
	}
	return take;
}

int ratelimit_allow(enum log_level level, const char *msg, const struct sock_addr *peer,
    const char *reason)
{
	static const unsigned char many[16];
	unsigned char ip[16];
	char text[SOCK_NTOP_MAX];
	double now = now_mono();
	struct rl_slot *s;
	int allow = 1;

	if (reason == NULL)
		reason = "";
	sock_key(peer, ip);
	if (peer->ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&peer->ss)->sin_addr, text, sizeof(text));
	else if (peer->ss.ss_family != AF_INET6 ||
	    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&peer->ss)->sin6_addr, text,
	    sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "unknown");
	pthread_mutex_lock(&rl_lock);
	if ((s = lookup(level, msg, ip, text, reason, now)) == NULL)
		s = lookup(level, msg, many, "many", reason, now);
	if (s != NULL) {
		if (now - s->start < RATELIMIT_WINDOW) {
			s->suppressed++;
			allow = 0;
		} else if (s->suppressed > 0 || memcmp(ip, s->ip, 16) != 0) {
			/* Repeats go on (or an aggregate key, which logs no
			 * single event): the last window's count, and this one
			 * opens the next; one line a second while they last. */
			if (s->suppressed > 0)
				summary(s);
			s->start = now;
			s->suppressed = 1;
			allow = 0;
		} else {
			s->start = now;	/* quiet for a window: log it in full */
		}
	}
	pthread_mutex_unlock(&rl_lock);
	return allow;
}

void ratelimit_flush(int all)
{
	double now = now_mono();
	size_t i;

	pthread_mutex_lock(&rl_lock);
	for (i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &slots[i];

		/* A closed window's count waits one more window for the next
		 * event, which logs it instead of a line of its own. */
		if (s->used && s->suppressed > 0 && (all || now - s->start >= 2 * RATELIMIT_WINDOW))
			summary(s);
	}
	pthread_mutex_unlock(&rl_lock);
}
