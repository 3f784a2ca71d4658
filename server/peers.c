/* peers: open addressing on the 16-byte address (IPv4 as v4-mapped), with
 * tombstones; a mutex, since every worker accepts.  Sized at twice the
 * connection cap, so it never fills while the cap holds. */
#include "peers.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	unsigned char ip[16];
	long n;			/* > 0 in use, 0 empty, -1 deleted */
};

struct peers {
	pthread_mutex_t lock;
	long limit;
	size_t size;		/* a power of two */
	struct slot *slots;
};

static size_t hash(const unsigned char ip[16])
{
	uint64_t h = 14695981039346656037ULL;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 1099511628211ULL;
	return (size_t)h;
}

struct peers *peers_new(long limit, long capacity)
{
	struct peers *p = calloc(1, sizeof(*p));
	size_t size = 16;

	if (p == NULL)
		return NULL;
	while (size < (size_t)capacity * 2)
		size *= 2;
	if ((p->slots = calloc(size, sizeof(*p->slots))) == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->limit = limit;
	p->size = size;
	return p;
}

/* find(p, ip, insert): the slot holding ip, or (insert) the first free one
 * on its probe path; NULL if neither. */
static struct slot *find(struct peers *p, const unsigned char ip[16], int insert)
{
	struct slot *free_slot = NULL;
	size_t i, at = hash(ip);

	for (i = 0; i < p->size; i++) {
		struct slot *s = &p->slots[(at + i) & (p->size - 1)];

		if (s->n > 0 && memcmp(s->ip, ip, 16) == 0)
			return s;
		if (s->n <= 0 && free_slot == NULL)
			free_slot = s;
		if (s->n == 0)
			break;	/* an empty slot ends the probe path */
	}
	return insert ? free_slot : NULL;
}

int peers_acquire(struct peers *p, const struct sock_addr *a)
{
	return peers_acquire_over(p, a, 0);
}

int peers_acquire_over(struct peers *p, const struct sock_addr *a, long over)
{
	unsigned char ip[16];
	struct slot *s;
	int rc = -1;

	sock_key(a, ip);
	pthread_mutex_lock(&p->lock);
	if ((s = find(p, ip, 1)) != NULL && s->n < p->limit + over) {
		if (s->n <= 0) {
			memcpy(s->ip, ip, 16);
			s->n = 0;
		}
		s->n++;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void peers_release(struct peers *p, const struct sock_addr *a)
{
	unsigned char ip[16];
	struct slot *s;

	sock_key(a, ip);
	pthread_mutex_lock(&p->lock);
	if ((s = find(p, ip, 0)) != NULL && --s->n == 0) {
		size_t i = (size_t)(s - p->slots);

		/* A tombstone keeps later probe paths intact; where the next slot
		 * is empty no path runs through, so tombstones there can go. */
		s->n = -1;
		while (p->slots[i].n == -1 && p->slots[(i + 1) & (p->size - 1)].n == 0) {
			p->slots[i].n = 0;
			i = (i - 1) & (p->size - 1);
		}
	}
	pthread_mutex_unlock(&p->lock);
}

void peers_free(struct peers *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->slots);
	free(p);
}
