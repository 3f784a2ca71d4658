/* Probe: connect from a thread with a small stack, as Fluent Bit's output
 * coroutines do (24 KiB by default).
 *     smallstack A.B.C.D:PORT EVENTS [STACK [default]]
 *
 * A thread whose stack is STACK bytes (default 16384; the probe's own
 * mapping, painted, with an inaccessible page below it so an overflow is a
 * SIGSEGV rather than silent corruption) makes two connections to ADDR and
 * sends EVENTS forward-protocol events (Message mode: [tag, time, {"seq": N}],
 * tag "smallstack") over them, the first half on the first.  Then main prints
 * "sent N" and "stack used N": the bytes of the thread's stack written below
 * its entry frame (the probe's frames, libc's and any hooks'; followed by
 * " asan" in an ASan build, whose interceptors run there too).  With
 * "default", STACK is also the process's default for new threads
 * (pthread_setattr_default_np), as a program may set it to save memory. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>	/* a dead thread's stack is no-access to memcheck */
#else
#define VALGRIND_MAKE_MEM_DEFINED(a, n) ((void)(a), (void)(n))
#endif

#define PAINT 0xa5

/* An ASan build: its interceptors (pthread_create, send...) take stack too. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED " asan"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED " asan"
#endif
#endif
#ifndef SANITIZED
#define SANITIZED ""
#endif

struct job {
	struct sockaddr_in to;
	long events;
	long sent;
	int err;			/* errno of the first failure, 0 if none */
	const char *what;		/* which call failed */
	uintptr_t entry;		/* an address in the thread's first frame */
};

/* One Message-mode event, [tag, time, {"seq": seq}], into buf; its length. */
static size_t event_pack(unsigned char *buf, long seq, uint32_t now)
{
	static const char tag[] = "smallstack";
	size_t n = 0;

	buf[n++] = 0x93;				/* fixarray 3 */
	buf[n++] = (unsigned char)(0xa0 | (sizeof(tag) - 1));	/* fixstr */
	memcpy(buf + n, tag, sizeof(tag) - 1);
	n += sizeof(tag) - 1;
	buf[n++] = 0xce;				/* uint32 time */
	buf[n++] = (unsigned char)(now >> 24);
	buf[n++] = (unsigned char)(now >> 16);
	buf[n++] = (unsigned char)(now >> 8);
	buf[n++] = (unsigned char)now;
	buf[n++] = 0x81;				/* fixmap 1 */
	buf[n++] = 0xa3;				/* "seq" */
	memcpy(buf + n, "seq", 3);
	n += 3;
	buf[n++] = 0xce;				/* uint32 seq */
	buf[n++] = (unsigned char)(seq >> 24);
	buf[n++] = (unsigned char)(seq >> 16);
	buf[n++] = (unsigned char)(seq >> 8);
	buf[n++] = (unsigned char)seq;
	return n;
}

/* One connection carrying events [from, to); 0, or -1 with job->err set. */
static int send_events(struct job *job, long from, long to)
{
	unsigned char ev[32];
	uint32_t now = (uint32_t)time(NULL);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&job->to, sizeof(job->to)) != 0) {
		job->err = errno;
		job->what = fd < 0 ? "socket" : "connect";
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (; from < to; from++) {
		size_t n = event_pack(ev, from, now);

		if (send(fd, ev, n, MSG_NOSIGNAL) != (ssize_t)n) {
			job->err = errno;
			job->what = "send";
			close(fd);
			return -1;
		}
		job->sent++;
	}
	close(fd);
	return 0;
}

static void *small_main(void *arg)
{
	struct job *job = arg;
	volatile char here = 0;

	job->entry = (uintptr_t)&here;
	if (send_events(job, 0, job->events / 2) == 0)
		(void)send_events(job, job->events / 2, job->events);
	return NULL;
}

/* The lowest byte of [lo, hi) that is no longer PAINT (hi if none). */
__attribute__((no_sanitize_address))
static uintptr_t lowest_written(const unsigned char *lo, const unsigned char *hi)
{
	(void)VALGRIND_MAKE_MEM_DEFINED(lo, (size_t)(hi - lo));
	while (lo < hi && *lo == PAINT)
		lo++;
	return (uintptr_t)lo;
}

int main(int argc, char **argv)
{
	struct job job = { .events = 0 };
	size_t stack = 16384, page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t attr;
	pthread_t t;
	unsigned char *map, *lo;
	int rc;

	if (argc < 3 || argc > 5 || probe_addr4(argv[1], &job.to) != 0 ||
	    (job.events = atol(argv[2])) < 1 || (argc >= 4 && (stack = (size_t)atol(argv[3])) < 4096) ||
	    (argc == 5 && strcmp(argv[4], "default") != 0)) {
		fprintf(stderr, "usage: smallstack A.B.C.D:PORT EVENTS [STACK [default]]\n");
		return 2;
	}
	stack = (stack + page - 1) / page * page;
	if (argc == 5) {
		pthread_attr_init(&attr);
		if ((rc = pthread_attr_setstacksize(&attr, stack)) != 0 ||
		    (rc = pthread_setattr_default_np(&attr)) != 0) {
			fprintf(stderr, "default stack: %s\n", strerror(rc));
			return 1;
		}
		pthread_attr_destroy(&attr);
	}
	map = mmap(NULL, stack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map, page, PROT_NONE) != 0) {
		perror("mmap");
		return 1;
	}
	lo = map + page;
	memset(lo, PAINT, stack);
	pthread_attr_init(&attr);
	if ((rc = pthread_attr_setstack(&attr, lo, stack)) != 0 ||
	    (rc = pthread_create(&t, &attr, small_main, &job)) != 0) {
		fprintf(stderr, "pthread: %s\n", strerror(rc));
		return 1;
	}
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	printf("sent %ld\n", job.sent);
	if (job.err != 0)
		printf("%s: errno=%d (%s)\n", job.what, job.err, strerror(job.err));
	printf("stack used %lu%s\n", (unsigned long)(job.entry - lowest_written(lo, lo + stack)),
	    SANITIZED);
	munmap(map, stack + page);
	return job.err != 0;
}
