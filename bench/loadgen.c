/* loadgen: the benchmark's traffic generator, sink and counting relay.
 *
 * Built by bench/run.sh into build/bench/loadgen (cc -O2 -pthread).  Everything talks to
 * 127.0.0.1 only.  Every connection to the sink starts with a 16-byte header that tells the
 * sink what to do (the tunnels in between pass it on like any other bytes):
 *
 *   u32 magic "TFB1" | u32 mode | u64 param          (host byte order: one machine)
 *   mode 'B' bulk:   param = N; the sink counts N more bytes, then replies with the count it saw
 *                    (u64), so the generator knows every byte arrived; more or fewer is an error.
 *   mode 'R' req/reply: param = req << 32 | rep; every req bytes the sink receives (the header
 *                    included) it sends rep bytes back.
 *   mode 'S' stats:  the sink writes one JSON line of counters and closes.
 *
 * Subcommands (each prints one JSON line on stdout; failures go to stderr and exit 2):
 *   sink    PORT [THREADS]
 *   bulk    PORT CONNS BYTES_PER_CONN
 *   rr      PORT COUNT REQ REP [WARMUP]
 *   setup   PORT WORKERS SECONDS REQ REP [MAXCOUNT]
 *   flood   PORT                           one connection sending as fast as it can (mode 'R'
 *                                          with no replies) until stdin has a line or EOF.
 *   idle    PORT N REQ REP [CONCURRENCY]   prints a line when all N are open and have had a
 *                                          reply, holds them until stdin has a line or EOF,
 *                                          then prints a second line (how many were dropped).
 *   relay   LISTEN_PORT TARGET_PORT        prints "up down" byte counts per closed connection.
 *   stats   PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x31424654u	/* "TFB1" little-endian */
#define HDR 16
#define MAXFD 262144

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void put_hdr(unsigned char *p, uint32_t mode, uint64_t param)
{
	uint32_t m = MAGIC;

	memcpy(p, &m, 4);
	memcpy(p + 4, &mode, 4);
	memcpy(p + 8, &param, 8);
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* dial: a blocking TCP connection to 127.0.0.1:port; retries while the kernel has no free
 * ephemeral port (TIME_WAIT pile-up at high setup rates).  -1 and errno on failure. */
static int dial(int port)
{
	struct sockaddr_in a = loopback(port);

	for (int tries = 0;; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		nodelay(fd);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		int e = errno;

		close(fd);
		if (e == EADDRNOTAVAIL && tries < 2000) {
			usleep(1000);
			continue;
		}
		errno = e;
		return -1;
	}
}

static int write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_full: 0 when n bytes arrived, -1 on error, 1 on EOF first. */
static int read_full(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* ------------------------------------------------------------------------------------ sink */

struct sconn {
	int fd;
	int ep;
	unsigned char hdr[HDR];
	unsigned hlen;
	uint32_t mode;
	uint64_t n, got;	/* B: expected, received after the header */
	uint64_t total;		/* R: received, header included */
	uint32_t req, rep;
	unsigned char out[512];	/* B's count, S's line */
	size_t outlen, outoff;
	uint64_t pending;	/* R: reply bytes still to send */
	int close_after;	/* close once out is flushed */
	int wantout;
};

static struct sconn *stab[MAXFD];
static atomic_uint_fast64_t s_accepted, s_closed, s_bytes, s_errors, s_bulk_ok;
static unsigned char zeros[65536];
static int sink_port;

static void sink_close(struct sconn *c)
{
	stab[c->fd] = NULL;
	close(c->fd);
	atomic_fetch_add(&s_closed, 1);
	free(c);
}

static void sink_err(struct sconn *c, const char *what)
{
	atomic_fetch_add(&s_errors, 1);
	fprintf(stderr, "loadgen sink: fd %d: %s (mode %c expected %" PRIu64 " got %" PRIu64 ")\n",
	    c->fd, what, c->mode ? (int)c->mode : '?', c->n, c->got);
}

/* sink_flush: write what is queued; 0 to keep the connection, -1 when it was closed. */
static int sink_flush(struct sconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (w < 0) {
			if (errno == EAGAIN)
				goto wait;
			if (errno == EINTR)
				continue;
			sink_close(c);
			return -1;
		}
		c->outoff += (size_t)w;
	}
	while (c->pending > 0) {
		size_t k = c->pending < sizeof(zeros) ? (size_t)c->pending : sizeof(zeros);
		ssize_t w = write(c->fd, zeros, k);

		if (w < 0) {
			if (errno == EAGAIN)
				goto wait;
			if (errno == EINTR)
				continue;
			sink_close(c);
			return -1;
		}
		c->pending -= (uint64_t)w;
	}
	if (c->close_after) {
		sink_close(c);
		return -1;
	}
	if (c->wantout) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->fd };

		c->wantout = 0;
		epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return 0;
wait:
	if (!c->wantout) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = c->fd };

		c->wantout = 1;
		epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return 0;
}

/* sink_data: n bytes arrived; 0 to keep going, -1 when the connection was closed. */
static int sink_data(struct sconn *c, const unsigned char *p, size_t n)
{
	atomic_fetch_add(&s_bytes, n);
	if (c->hlen < HDR) {
		size_t k = HDR - c->hlen < n ? HDR - c->hlen : n;
		uint32_t magic;
		uint64_t param;

		memcpy(c->hdr + c->hlen, p, k);
		c->hlen += (unsigned)k;
		p += k;
		n -= k;
		if (c->hlen < HDR)
			return 0;
		memcpy(&magic, c->hdr, 4);
		memcpy(&c->mode, c->hdr + 4, 4);
		memcpy(&param, c->hdr + 8, 8);
		if (magic != MAGIC) {
			sink_err(c, "bad header magic");
			sink_close(c);
			return -1;
		}
		switch (c->mode) {
		case 'B':
			c->n = param;
			break;
		case 'R':
			c->req = (uint32_t)(param >> 32);
			c->rep = (uint32_t)param;
			if (c->req == 0) {
				sink_err(c, "request size 0");
				sink_close(c);
				return -1;
			}
			c->total = HDR;
			if (c->total % c->req == 0)
				c->pending += c->rep;
			break;
		case 'S':
			c->outlen = (size_t)snprintf((char *)c->out, sizeof(c->out),
			    "{\"accepted\": %" PRIu64 ", \"closed\": %" PRIu64 ", \"bytes\": %" PRIu64
			    ", \"errors\": %" PRIu64 ", \"bulk_ok\": %" PRIu64 "}\n",
			    (uint64_t)atomic_load(&s_accepted) - 1, (uint64_t)atomic_load(&s_closed),
			    (uint64_t)atomic_load(&s_bytes), (uint64_t)atomic_load(&s_errors),
			    (uint64_t)atomic_load(&s_bulk_ok));
			c->close_after = 1;
			return sink_flush(c);
		default:
			sink_err(c, "bad header mode");
			sink_close(c);
			return -1;
		}
	}
	switch (c->mode) {
	case 'B':
		if (n == 0)
			return 0;
		if (c->got + n > c->n) {
			c->got += n;
			sink_err(c, "more bytes than announced");
			sink_close(c);
			return -1;
		}
		c->got += n;
		if (c->got == c->n) {
			memcpy(c->out, &c->got, 8);
			c->outlen = 8;
			atomic_fetch_add(&s_bulk_ok, 1);
			return sink_flush(c);
		}
		return 0;
	case 'R': {
		uint64_t before = c->total / c->req;

		c->total += n;
		c->pending += (c->total / c->req - before) * c->rep;
		return c->pending ? sink_flush(c) : 0;
	}
	default:
		if (n > 0) {
			sink_err(c, "bytes after a stats request");
			sink_close(c);
			return -1;
		}
		return 0;
	}
}

static void *sink_thread(void *arg)
{
	static __thread unsigned char buf[262144];
	struct sockaddr_in a = loopback(sink_port);
	struct epoll_event evs[256];
	int one = 1, lfd, ep;

	(void)arg;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 65535) < 0)
		die("sink: cannot listen on 127.0.0.1:%d: %s", sink_port, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.fd = lfd };

	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				for (;;) {
					int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

					if (cfd < 0) {
						if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
							fprintf(stderr, "loadgen sink: accept: %s\n", strerror(errno));
						break;
					}
					if (cfd >= MAXFD) {
						close(cfd);
						continue;
					}
					struct sconn *c = calloc(1, sizeof(*c));

					if (c == NULL)
						die("sink: out of memory");
					c->fd = cfd;
					c->ep = ep;
					nodelay(cfd);
					stab[cfd] = c;
					atomic_fetch_add(&s_accepted, 1);
					struct epoll_event ev = { .events = EPOLLIN, .data.fd = cfd };

					epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
				}
				continue;
			}
			struct sconn *c = stab[fd];

			if (c == NULL)
				continue;
			if ((evs[i].events & EPOLLOUT) && sink_flush(c) < 0)
				continue;
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			for (int rounds = 0; rounds < 4; rounds++) {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r < 0) {
					if (errno == EAGAIN || errno == EINTR)
						break;
					if (c->mode == 'B' && c->got != c->n)
						sink_err(c, "connection reset before all bytes arrived");
					sink_close(c);
					break;
				}
				if (r == 0) {
					if (c->mode == 'B' && c->got != c->n)
						sink_err(c, "EOF before all bytes arrived");
					sink_close(c);
					break;
				}
				if (sink_data(c, buf, (size_t)r) < 0)
					break;
				if ((size_t)r < sizeof(buf))
					break;
			}
		}
	}
	return NULL;
}

static int cmd_sink(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	pthread_t t;

	if (argc < 1)
		die("usage: sink PORT [THREADS]");
	sink_port = atoi(argv[0]);
	if (threads < 1)
		threads = 1;
	for (int i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, sink_thread, NULL) != 0)
			die("sink: pthread_create failed");
	fprintf(stderr, "loadgen sink: listening on 127.0.0.1:%d with %d threads\n", sink_port, threads);
	sink_thread(NULL);
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	unsigned char h[HDR];
	char line[512];
	ssize_t r;
	size_t len = 0;
	int fd;

	if (argc < 1)
		die("usage: stats PORT");
	if ((fd = dial(atoi(argv[0]))) < 0)
		die("stats: connect: %s", strerror(errno));
	put_hdr(h, 'S', 0);
	if (write_all(fd, h, HDR) < 0)
		die("stats: write: %s", strerror(errno));
	while (len < sizeof(line) - 1 && (r = read(fd, line + len, sizeof(line) - 1 - len)) > 0)
		len += (size_t)r;
	line[len] = 0;
	fputs(line, stdout);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------------------------------ bulk */

struct bulkarg {
	int port;
	uint64_t bytes;
	pthread_barrier_t *bar;
	int fd;
	char err[200];
};

static unsigned char payload[65536];

static void *bulk_thread(void *arg)
{
	struct bulkarg *b = arg;
	unsigned char h[HDR];
	uint64_t left = b->bytes, seen = 0;

	pthread_barrier_wait(b->bar);
	put_hdr(h, 'B', b->bytes);
	if (write_all(b->fd, h, HDR) < 0) {
		snprintf(b->err, sizeof(b->err), "write: %s", strerror(errno));
		return NULL;
	}
	while (left > 0) {
		size_t k = left < sizeof(payload) ? (size_t)left : sizeof(payload);

		if (write_all(b->fd, payload, k) < 0) {
			snprintf(b->err, sizeof(b->err), "write after %" PRIu64 " bytes: %s",
			    b->bytes - left, strerror(errno));
			return NULL;
		}
		left -= k;
	}
	int rc = read_full(b->fd, &seen, 8);

	if (rc != 0)
		snprintf(b->err, sizeof(b->err), "no byte count from the sink (%s)",
		    rc < 0 ? strerror(errno) : "EOF");
	else if (seen != b->bytes)
		snprintf(b->err, sizeof(b->err), "sink counted %" PRIu64 " bytes, sent %" PRIu64,
		    seen, b->bytes);
	return NULL;
}

static int cmd_bulk(int argc, char **argv)
{
	int port, conns;
	uint64_t bytes;
	pthread_barrier_t bar;

	if (argc < 3)
		die("usage: bulk PORT CONNS BYTES_PER_CONN");
	port = atoi(argv[0]);
	conns = atoi(argv[1]);
	bytes = strtoull(argv[2], NULL, 10);
	if (conns < 1)
		die("bulk: CONNS must be at least 1");
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 2654435761u >> 13);

	struct bulkarg *args = calloc((size_t)conns, sizeof(*args));
	pthread_t *th = calloc((size_t)conns, sizeof(*th));

	pthread_barrier_init(&bar, NULL, (unsigned)conns + 1);
	for (int i = 0; i < conns; i++) {
		args[i].port = port;
		args[i].bytes = bytes;
		args[i].bar = &bar;
		if ((args[i].fd = dial(port)) < 0)
			die("bulk: connect to 127.0.0.1:%d: %s", port, strerror(errno));
		pthread_create(&th[i], NULL, bulk_thread, &args[i]);
	}
	double t0 = now();

	pthread_barrier_wait(&bar);
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	double dt = now() - t0;
	int bad = 0;

	for (int i = 0; i < conns; i++) {
		close(args[i].fd);
		if (args[i].err[0]) {
			fprintf(stderr, "loadgen bulk: connection %d: %s\n", i, args[i].err);
			bad++;
		}
	}
	if (bad)
		die("bulk: %d of %d connections failed the byte count", bad, conns);
	printf("{\"conns\": %d, \"bytes\": %" PRIu64 ", \"seconds\": %.6f, \"mb_s\": %.2f}\n",
	    conns, bytes * (uint64_t)conns, dt, (double)(bytes * (uint64_t)conns) / dt / 1e6);
	return 0;
}

/* ----------------------------------------------------------------------------------- flood */

static atomic_int flood_stop;

static void *flood_watch(void *arg)
{
	char line[64];

	(void)arg;
	(void)!fgets(line, sizeof(line), stdin);
	atomic_store(&flood_stop, 1);
	return NULL;
}

/* flood: the load beside which request/reply is measured for fairness.  Mode 'R' with a
 * 1 GiB request and no reply, so the sink only counts, and stopping at any byte is no error. */
static int cmd_flood(int argc, char **argv)
{
	unsigned char hdr[HDR];
	uint64_t sent = 0;
	pthread_t th;
	int fd;

	if (argc < 1)
		die("usage: flood PORT");
	if ((fd = dial(atoi(argv[0]))) < 0)
		die("flood: connect: %s", strerror(errno));
	put_hdr(hdr, 'R', (uint64_t)1 << 62);
	if (write_all(fd, hdr, HDR) < 0)
		die("flood: write: %s", strerror(errno));
	pthread_create(&th, NULL, flood_watch, NULL);
	double t0 = now();

	while (!atomic_load(&flood_stop)) {
		if (write_all(fd, payload, sizeof(payload)) < 0)
			die("flood: write: %s", strerror(errno));
		sent += sizeof(payload);
	}
	double dt = now() - t0;

	pthread_join(th, NULL);
	close(fd);
	printf("{\"bytes\": %" PRIu64 ", \"seconds\": %.6f, \"mb_s\": %.2f}\n", sent, dt,
	    (double)sent / dt / 1e6);
	return 0;
}

/* -------------------------------------------------------------------------------------- rr */

static int cmd_rr(int argc, char **argv)
{
	int port, count, warmup, fd;
	uint32_t req, rep;
	unsigned char *rq, *rp;

	if (argc < 4)
		die("usage: rr PORT COUNT REQ REP [WARMUP]");
	port = atoi(argv[0]);
	count = atoi(argv[1]);
	req = (uint32_t)atoi(argv[2]);
	rep = (uint32_t)atoi(argv[3]);
	warmup = argc > 4 ? atoi(argv[4]) : count / 10;
	if (req < HDR || rep < 1 || count < 1)
		die("rr: REQ must be at least %d, REP and COUNT at least 1", HDR);
	rq = calloc(1, req);
	rp = calloc(1, rep);
	memset(rq, 'x', req);
	if ((fd = dial(port)) < 0)
		die("rr: connect to 127.0.0.1:%d: %s", port, strerror(errno));

	double *lat = calloc((size_t)count, sizeof(double)), sum = 0, t0 = now();

	for (int i = 0; i < warmup + count; i++) {
		double t = now();

		if (i == 0)
			put_hdr(rq, 'R', (uint64_t)req << 32 | rep);
		else if (i == 1)
			memset(rq, 'x', HDR);
		if (write_all(fd, rq, req) < 0)
			die("rr: write: %s", strerror(errno));
		int rc = read_full(fd, rp, rep);

		if (rc != 0)
			die("rr: reply %d: %s", i, rc < 0 ? strerror(errno) : "EOF");
		if (i >= warmup) {
			lat[i - warmup] = (now() - t) * 1e6;
			sum += lat[i - warmup];
		}
	}
	double dt = now() - t0;

	close(fd);
	qsort(lat, (size_t)count, sizeof(double), cmp_double);
	printf("{\"count\": %d, \"seconds\": %.6f, \"mean_us\": %.2f, \"p50_us\": %.2f, \"p90_us\": %.2f, "
	    "\"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f}\n",
	    count, dt, sum / count, pct(lat, (size_t)count, 50), pct(lat, (size_t)count, 90),
	    pct(lat, (size_t)count, 99), pct(lat, (size_t)count, 99.9), lat[count - 1]);
	return 0;
}

/* ----------------------------------------------------------------------------------- setup */

struct setuparg {
	int port;
	uint32_t req, rep;
	double until;
	long maxcount;
	atomic_long *budget;
	long ok, errors;
	double *lat;
	size_t nlat, caplat;
	char err[200];
};

static void *setup_thread(void *arg)
{
	struct setuparg *s = arg;
	unsigned char *rq = calloc(1, s->req), *rp = calloc(1, s->rep);

	memset(rq, 'x', s->req);
	put_hdr(rq, 'R', (uint64_t)s->req << 32 | s->rep);
	while (now() < s->until) {
		if (s->maxcount > 0 && atomic_fetch_sub(s->budget, 1) <= 0)
			break;
		double t = now();
		int fd = dial(s->port), rc;

		if (fd < 0) {
			s->errors++;
			snprintf(s->err, sizeof(s->err), "connect: %s", strerror(errno));
			usleep(1000);
			continue;
		}
		if (write_all(fd, rq, s->req) < 0) {
			s->errors++;
			snprintf(s->err, sizeof(s->err), "write: %s", strerror(errno));
			close(fd);
			continue;
		}
		rc = read_full(fd, rp, s->rep);
		close(fd);
		if (rc != 0) {
			s->errors++;
			snprintf(s->err, sizeof(s->err), "reply: %s", rc < 0 ? strerror(errno) : "EOF");
			continue;
		}
		s->ok++;
		if (s->nlat < s->caplat)
			s->lat[s->nlat++] = (now() - t) * 1e6;
	}
	free(rq);
	free(rp);
	return NULL;
}

static int cmd_setup(int argc, char **argv)
{
	int port, workers;
	double secs;
	long maxcount;
	atomic_long budget;

	if (argc < 5)
		die("usage: setup PORT WORKERS SECONDS REQ REP [MAXCOUNT]");
	port = atoi(argv[0]);
	workers = atoi(argv[1]);
	secs = atof(argv[2]);
	maxcount = argc > 5 ? atol(argv[5]) : 0;
	atomic_init(&budget, maxcount);
	if (workers < 1 || atoi(argv[3]) < HDR)
		die("setup: WORKERS >= 1 and REQ >= %d", HDR);

	struct setuparg *a = calloc((size_t)workers, sizeof(*a));
	pthread_t *th = calloc((size_t)workers, sizeof(*th));
	double t0 = now();

	for (int i = 0; i < workers; i++) {
		a[i].port = port;
		a[i].req = (uint32_t)atoi(argv[3]);
		a[i].rep = (uint32_t)atoi(argv[4]);
		a[i].until = t0 + secs;
		a[i].maxcount = maxcount;
		a[i].budget = &budget;
		a[i].caplat = 1 << 20;
		a[i].lat = calloc(a[i].caplat, sizeof(double));
		pthread_create(&th[i], NULL, setup_thread, &a[i]);
	}
	long ok = 0, errors = 0;
	size_t nlat = 0;
	const char *err = "";

	for (int i = 0; i < workers; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].ok;
		errors += a[i].errors;
		nlat += a[i].nlat;
		if (a[i].err[0])
			err = a[i].err;
	}
	double dt = now() - t0;
	double *lat = calloc(nlat + 1, sizeof(double));

	nlat = 0;
	for (int i = 0; i < workers; i++) {
		memcpy(lat + nlat, a[i].lat, a[i].nlat * sizeof(double));
		nlat += a[i].nlat;
	}
	qsort(lat, nlat, sizeof(double), cmp_double);
	printf("{\"workers\": %d, \"ok\": %ld, \"errors\": %ld, \"seconds\": %.6f, \"per_s\": %.2f, "
	    "\"p50_us\": %.2f, \"p99_us\": %.2f, \"last_error\": \"%s\"}\n",
	    workers, ok, errors, dt, (double)ok / dt, pct(lat, nlat, 50), pct(lat, nlat, 99), err);
	return 0;
}

/* ------------------------------------------------------------------------------------ idle */

enum { I_CONNECTING = 1, I_WAITING, I_IDLE };

struct iconn {
	int state;
	uint32_t got;
};

static int cmd_idle(int argc, char **argv)
{
	int port, n, conc, ep, opened = 0, inflight = 0, done = 0, errors = 0;
	uint32_t req, rep;
	unsigned char *rq, buf[4096];
	char lasterr[200] = "";
	static struct iconn tab[MAXFD];
	struct sockaddr_in a;
	struct epoll_event evs[256];

	if (argc < 4)
		die("usage: idle PORT N REQ REP [CONCURRENCY]");
	port = atoi(argv[0]);
	n = atoi(argv[1]);
	req = (uint32_t)atoi(argv[2]);
	rep = (uint32_t)atoi(argv[3]);
	conc = argc > 4 ? atoi(argv[4]) : 64;
	if (req < HDR || conc < 1)
		die("idle: REQ >= %d, CONCURRENCY >= 1", HDR);
	a = loopback(port);
	rq = calloc(1, req);
	memset(rq, 'x', req);
	put_hdr(rq, 'R', (uint64_t)req << 32 | rep);
	ep = epoll_create1(EPOLL_CLOEXEC);

	int *fds = calloc((size_t)n, sizeof(int)), nfds = 0;
	double t0 = now();

	while (done + errors < n) {
		while (opened < n && inflight < conc) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			if (fd < 0 || fd >= MAXFD)
				die("idle: socket: %s (raise ulimit -n)", fd < 0 ? strerror(errno) : "fd too high");
			nodelay(fd);
			opened++;
			if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
				errors++;
				snprintf(lasterr, sizeof(lasterr), "connect: %s", strerror(errno));
				close(fd);
				continue;
			}
			tab[fd].state = I_CONNECTING;
			tab[fd].got = 0;
			struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };

			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			inflight++;
		}
		int k = epoll_wait(ep, evs, 256, 30000);

		if (k == 0)
			die("idle: no progress for 30 s (%d open, %d in flight, %d errors; last: %s)",
			    done, inflight, errors, lasterr);
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd, soerr = 0;
			socklen_t sl = sizeof(soerr);
			struct iconn *c = &tab[fd];

			if (c->state == I_CONNECTING) {
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				if (soerr != 0 || write(fd, rq, req) != (ssize_t)req) {
					snprintf(lasterr, sizeof(lasterr), "connect/send: %s",
					    strerror(soerr ? soerr : errno));
					goto fail;
				}
				c->state = I_WAITING;
				struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
				continue;
			}
			if (c->state != I_WAITING)
				continue;
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				snprintf(lasterr, sizeof(lasterr), "reply: %s", r < 0 ? strerror(errno) : "EOF");
				goto fail;
			}
			c->got += (uint32_t)r;
			if (c->got > rep) {
				snprintf(lasterr, sizeof(lasterr), "reply longer than %u bytes", rep);
				goto fail;
			}
			if (c->got == rep) {
				c->state = I_IDLE;
				fds[nfds++] = fd;
				done++;
				inflight--;
			}
			continue;
fail:
			errors++;
			inflight--;
			c->state = 0;
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
		}
	}
	printf("{\"open\": %d, \"errors\": %d, \"seconds\": %.3f, \"last_error\": \"%s\"}\n",
	    done, errors, now() - t0, lasterr);
	fflush(stdout);
	(void)!read(0, buf, sizeof(buf));

	/* Anything readable now means the tunnel dropped the connection while we held it. */
	int dropped = 0;
	struct pollfd *pf = calloc((size_t)nfds + 1, sizeof(*pf));

	for (int i = 0; i < nfds; i++) {
		pf[i].fd = fds[i];
		pf[i].events = POLLIN | POLLRDHUP;
	}
	if (nfds > 0 && poll(pf, (nfds_t)nfds, 0) > 0)
		for (int i = 0; i < nfds; i++)
			dropped += pf[i].revents != 0;
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	printf("{\"dropped\": %d}\n", dropped);
	return 0;
}

/* ----------------------------------------------------------------------------------- relay */

struct relayarg {
	int a, b;
	int target;
};

static pthread_mutex_t relay_out = PTHREAD_MUTEX_INITIALIZER;

static void *relay_thread(void *arg)
{
	struct relayarg *r = arg;
	unsigned char buf[65536];
	uint64_t cnt[2] = { 0, 0 };
	int eof[2] = { 0, 0 };

	r->b = dial(r->target);
	if (r->b < 0) {
		close(r->a);
		free(r);
		return NULL;
	}
	while (!eof[0] || !eof[1]) {
		struct pollfd p[2] = { { r->a, eof[0] ? 0 : POLLIN, 0 }, { r->b, eof[1] ? 0 : POLLIN, 0 } };

		if (poll(p, 2, 10000) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			int from = i == 0 ? r->a : r->b, to = i == 0 ? r->b : r->a;
			ssize_t n = read(from, buf, sizeof(buf));

			if (n <= 0) {
				eof[i] = 1;
				shutdown(to, SHUT_WR);
				continue;
			}
			cnt[i] += (uint64_t)n;
			if (write_all(to, buf, (size_t)n) < 0)
				eof[0] = eof[1] = 1;
		}
	}
	close(r->a);
	close(r->b);
	pthread_mutex_lock(&relay_out);
	printf("%" PRIu64 " %" PRIu64 "\n", cnt[0], cnt[1]);
	fflush(stdout);
	pthread_mutex_unlock(&relay_out);
	free(r);
	return NULL;
}

static _Noreturn int cmd_relay(int argc, char **argv)
{
	struct sockaddr_in a;
	int one = 1, lfd;

	if (argc < 2)
		die("usage: relay LISTEN_PORT TARGET_PORT");
	a = loopback(atoi(argv[0]));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0)
		die("relay: cannot listen on 127.0.0.1:%s: %s", argv[0], strerror(errno));
	fprintf(stderr, "loadgen relay: listening on 127.0.0.1:%s\n", argv[0]);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t t;

		if (fd < 0)
			continue;
		struct relayarg *r = calloc(1, sizeof(*r));

		r->a = fd;
		r->target = atoi(argv[1]);
		pthread_create(&t, NULL, relay_thread, r);
		pthread_detach(t);
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc < 2)
		die("usage: loadgen sink|bulk|flood|rr|setup|idle|relay|stats ...");
	argc -= 2;
	char *cmd = argv[1];

	argv += 2;
	if (!strcmp(cmd, "sink"))
		return cmd_sink(argc, argv);
	if (!strcmp(cmd, "bulk"))
		return cmd_bulk(argc, argv);
	if (!strcmp(cmd, "rr"))
		return cmd_rr(argc, argv);
	if (!strcmp(cmd, "setup"))
		return cmd_setup(argc, argv);
	if (!strcmp(cmd, "idle"))
		return cmd_idle(argc, argv);
	if (!strcmp(cmd, "flood"))
		return cmd_flood(argc, argv);
	if (!strcmp(cmd, "relay"))
		return cmd_relay(argc, argv);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc, argv);
	die("unknown subcommand %s", cmd);
	return 2;
}
