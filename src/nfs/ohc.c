/*
 * ohc.c - the open-handle cache (see ohc.h for what and why).
 *
 * A chained hash table of entries by key plus one LRU list (most recent at
 * the head), both under the cache's mutex.  An entry is "in the table"
 * from ohc_add until evicted, dropped or forgotten; it is freed, and its
 * descriptor closed, once it is out of the table and no handler holds a
 * reference.  Eviction takes the LRU tail whether or not it is in use, so
 * the table never exceeds its limit; an entry in use merely closes later.
 *
 * Keys come from handles whose MAC verified, so a client cannot choose
 * them freely; the hash is still seeded per cache so that bucket placement
 * is not the same on every node.
 */
#include "nfs/ohc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "log.h"

struct ohc_ent {
	struct ohc_ent *hnext;          /* bucket chain, iff in_table */
	struct ohc_ent *lprev, *lnext;  /* LRU list, iff in_table */
	struct ohc *c;
	uint32_t refs;                  /* handlers using fd */
	bool in_table;                  /* the table's own hold */
	int fd;                         /* O_PATH; owned, closed at free */
	int dfd[2];                     /* data: [0] O_RDONLY, [1] O_WRONLY, -1 none;
					 * owned, closed at free */
	uint64_t hash;
	struct fh_key key;
};

struct ohc {
	pthread_mutex_t lock;
	const char *group;              /* for logs; not owned */
	struct ohc_ent **b;             /* nb buckets; owned */
	size_t nb;                      /* power of two */
	struct ohc_ent *lru_head, *lru_tail;
	size_t n, limit;
	size_t ndata;                   /* data descriptors of entries in the table */
	uint64_t seed;
	struct ohc_stats st;            /* counters; entries/limit filled on read */
	struct ohc *next, *prev;        /* ohc_all */
};

/* Every live cache, for ohc_pressure(). */
static pthread_mutex_t ohc_all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ohc *ohc_all;

static uint64_t ohc_hash(uint64_t seed, const struct fh_key *k)
{
	/* FNV-1a over the key's fields, seeded. */
	uint64_t h = 1469598103934665603ull ^ seed;
	uint32_t w[3] = { k->fsid, (uint32_t)k->ktype, k->klen };
	const uint8_t *p = (const uint8_t *)w;

	for (size_t i = 0; i < sizeof(w); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	for (uint32_t i = 0; i < k->klen && i < FH_KHANDLE_MAX; i++)
		h = (h ^ k->kh[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

static bool ohc_key_eq(const struct fh_key *a, const struct fh_key *b)
{
	return a->fsid == b->fsid && a->ktype == b->ktype && a->klen == b->klen &&
	       memcmp(a->kh, b->kh, a->klen) == 0;
}

int ohc_new(size_t limit, const char *group, struct ohc **out)
{
	struct ohc *c = calloc(1, sizeof(*c));
	size_t nb = 16;

	if (!c)
		return -ENOMEM;
	if (limit < 1)
		limit = 1;
	while (nb < limit && nb < ((size_t)1 << 20))
		nb <<= 1;
	c->b = calloc(nb, sizeof(*c->b));
	if (!c->b) {
		free(c);
		return -ENOMEM;
	}
	c->nb = nb;
	c->limit = limit;
	c->group = group;
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)(uintptr_t)c;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_lock(&ohc_all_lock);
	c->next = ohc_all;
	if (ohc_all)
		ohc_all->prev = c;
	ohc_all = c;
	pthread_mutex_unlock(&ohc_all_lock);
	*out = c;
	return 0;
}

static void ohc_ent_free(struct ohc_ent *e)
{
	close(e->fd);
	for (int i = 0; i < 2; i++)
		if (e->dfd[i] >= 0)
			close(e->dfd[i]);
	free(e);
}

static size_t ohc_ent_ndata(const struct ohc_ent *e)
{
	return (size_t)(e->dfd[0] >= 0) + (size_t)(e->dfd[1] >= 0);
}

/* Descriptors the cache holds open: one per entry plus its data ones. */
static size_t ohc_nfds(const struct ohc *c)
{
	return c->n + c->ndata;
}

/* Take @e out of the table and LRU (under c->lock).  True if nobody uses
 * it: the caller frees it after unlocking. */
static bool ohc_unlink(struct ohc *c, struct ohc_ent *e)
{
	struct ohc_ent **pp = &c->b[e->hash & (c->nb - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		c->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		c->lru_tail = e->lprev;
	e->hnext = e->lprev = e->lnext = NULL;
	e->in_table = false;
	c->n--;
	c->ndata -= ohc_ent_ndata(e);
	return e->refs == 0;
}

void ohc_free(struct ohc *c)
{
	struct ohc_ent *e, *next;

	if (!c)
		return;
	pthread_mutex_lock(&ohc_all_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		ohc_all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&ohc_all_lock);
	for (e = c->lru_head; e; e = next) {
		next = e->lnext;
		ohc_ent_free(e);
	}
	free(c->b);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Move @e to the LRU head (under c->lock). */
static void ohc_touch(struct ohc *c, struct ohc_ent *e)
{
	if (c->lru_head == e)
		return;
	e->lprev->lnext = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		c->lru_tail = e->lprev;
	e->lprev = NULL;
	e->lnext = c->lru_head;
	c->lru_head->lprev = e;
	c->lru_head = e;
}

static struct ohc_ent *ohc_find(struct ohc *c, const struct fh_key *k, uint64_t h)
{
	for (struct ohc_ent *e = c->b[h & (c->nb - 1)]; e; e = e->hnext)
		if (e->hash == h && ohc_key_eq(&e->key, k))
			return e;
	return NULL;
}

static struct ohc_ent *ohc_lookup(struct ohc *c, const struct fh_key *k, bool count_miss)
{
	struct ohc_ent *e;
	uint64_t h;

	if (!c)
		return NULL;
	h = ohc_hash(c->seed, k);
	pthread_mutex_lock(&c->lock);
	e = ohc_find(c, k, h);
	if (e) {
		e->refs++;
		ohc_touch(c, e);
		c->st.hits++;
	} else if (count_miss) {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

struct ohc_ent *ohc_get(struct ohc *c, const struct fh_key *k)
{
	return ohc_lookup(c, k, true);
}

struct ohc_ent *ohc_try(struct ohc *c, const struct fh_key *k)
{
	return ohc_lookup(c, k, false);
}

/* Evict LRU entries until at most @keep descriptors remain, or @max
 * entries are gone (under
 * c->lock); the unused ones are chained on *@dead for the caller to free
 * after unlocking (closing descriptors under the lock would stall every
 * handler of the group on a slow close). */
static size_t ohc_evict(struct ohc *c, size_t keep, size_t max, struct ohc_ent **dead)
{
	size_t n = 0;

	while (ohc_nfds(c) > keep && n < max && c->lru_tail) {
		struct ohc_ent *e = c->lru_tail;

		if (ohc_unlink(c, e)) {
			e->hnext = *dead;
			*dead = e;
		}
		n++;
	}
	return n;
}

static void ohc_free_chain(struct ohc_ent *dead)
{
	while (dead) {
		struct ohc_ent *next = dead->hnext;

		ohc_ent_free(dead);
		dead = next;
	}
}

struct ohc_ent *ohc_add(struct ohc *c, const struct fh_key *k, int fd)
{
	struct ohc_ent *e, *old, *dead = NULL;

	if (!c)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->c = c;
	e->fd = fd;
	e->dfd[0] = e->dfd[1] = -1;
	e->key = *k;
	e->refs = 1;
	e->in_table = true;
	e->hash = ohc_hash(c->seed, k);
	pthread_mutex_lock(&c->lock);
	old = ohc_find(c, k, e->hash);
	if (old) {
		/* Another handler resolved the same handle meanwhile. */
		old->refs++;
		ohc_touch(c, old);
		pthread_mutex_unlock(&c->lock);
		ohc_ent_free(e);
		return old;
	}
	c->st.evictions += ohc_evict(c, c->limit - 1, SIZE_MAX, &dead);
	e->hnext = c->b[e->hash & (c->nb - 1)];
	c->b[e->hash & (c->nb - 1)] = e;
	e->lnext = c->lru_head;
	if (c->lru_head)
		c->lru_head->lprev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
	c->n++;
	c->st.inserts++;
	pthread_mutex_unlock(&c->lock);
	ohc_free_chain(dead);
	return e;
}

int ohc_fd(const struct ohc_ent *e)
{
	return e->fd;
}

int ohc_data_peek(struct ohc_ent *e, bool write)
{
	struct ohc *c = e->c;
	int fd;

	pthread_mutex_lock(&c->lock);
	fd = e->dfd[write];
	if (fd >= 0)
		c->st.data_hits++;
	pthread_mutex_unlock(&c->lock);
	return fd;
}

int ohc_data_fd(struct ohc_ent *e, bool write)
{
	struct ohc *c = e->c;
	struct ohc_ent *dead = NULL;
	char path[32];
	int fd, mine;

	fd = ohc_data_peek(e, write);
	if (fd >= 0)
		return fd;
	/* Reopening the O_PATH descriptor gives the same inode, never a
	 * name's current one: a file replaced under its name is not
	 * confused with its successor. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", e->fd);
	mine = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
	if (mine < 0 && (errno == EMFILE || errno == ENFILE) && ohc_pressure() > 0)
		mine = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
	if (mine < 0)
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (e->dfd[write] >= 0) {
		/* Another handler opened it meanwhile: use theirs. */
		fd = e->dfd[write];
	} else {
		e->dfd[write] = fd = mine;
		mine = -1;
		c->st.data_opens++;
		if (e->in_table) {
			c->ndata++;
			/* The limit counts descriptors, data ones too. */
			c->st.evictions += ohc_evict(c, c->limit, SIZE_MAX, &dead);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (mine >= 0)
		close(mine);
	ohc_free_chain(dead);
	return fd;
}

bool ohc_data_close_idle(struct ohc_ent *e, bool write)
{
	struct ohc *c = e->c;
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	/* Descriptors are handed out only to holders of a reference: with
	 * the caller's the only one, nobody else can be using this one. */
	if (e->refs == 1 && e->dfd[write] >= 0) {
		fd = e->dfd[write];
		e->dfd[write] = -1;
		if (e->in_table)
			c->ndata--;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void ohc_release(struct ohc_ent *e)
{
	struct ohc *c;
	bool dead;

	if (!e)
		return;
	c = e->c;
	pthread_mutex_lock(&c->lock);
	dead = --e->refs == 0 && !e->in_table;
	pthread_mutex_unlock(&c->lock);
	if (dead)
		ohc_ent_free(e);
}

void ohc_drop(struct ohc_ent *e)
{
	struct ohc *c = e->c;

	pthread_mutex_lock(&c->lock);
	if (e->in_table) {
		(void)ohc_unlink(c, e);        /* the caller still holds it */
		c->st.drops++;
	}
	pthread_mutex_unlock(&c->lock);
}

void ohc_forget(struct ohc *c, const struct fh_key *k)
{
	struct ohc_ent *e;
	bool dead = false;
	uint64_t h;

	if (!c)
		return;
	h = ohc_hash(c->seed, k);
	pthread_mutex_lock(&c->lock);
	e = ohc_find(c, k, h);
	if (e) {
		dead = ohc_unlink(c, e);
		c->st.drops++;
	}
	pthread_mutex_unlock(&c->lock);
	if (dead)
		ohc_ent_free(e);
}

size_t ohc_shrink(struct ohc *c, size_t n)
{
	struct ohc_ent *dead = NULL;
	size_t got;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	got = ohc_evict(c, 0, n, &dead);
	c->st.evictions += got;
	pthread_mutex_unlock(&c->lock);
	ohc_free_chain(dead);
	return got;
}

size_t ohc_pressure(void)
{
	size_t total = 0;

	/* ohc_all_lock before a cache's lock, never the other way round. */
	pthread_mutex_lock(&ohc_all_lock);
	for (struct ohc *c = ohc_all; c; c = c->next) {
		struct ohc_ent *dead = NULL;
		size_t got;

		pthread_mutex_lock(&c->lock);
		got = ohc_evict(c, ohc_nfds(c) / 2, SIZE_MAX, &dead);
		c->st.pressure_evictions += got;
		pthread_mutex_unlock(&c->lock);
		for (struct ohc_ent *e = dead; e; e = e->hnext)
			total += 1 + ohc_ent_ndata(e);
		ohc_free_chain(dead);
		if (got)
			log_info("group=%s out of file descriptors: %zu cached handles closed",
				 c->group, got);
	}
	pthread_mutex_unlock(&ohc_all_lock);
	return total;
}

void ohc_get_stats(struct ohc *c, struct ohc_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	out->entries = c->n;
	out->data_fds = c->ndata;
	out->limit = c->limit;
	pthread_mutex_unlock(&c->lock);
}
