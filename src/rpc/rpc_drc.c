/*
 * rpc_drc.c - the duplicate-request cache (see rpc_drc.h for the model).
 *
 * Structures: every entry is in one hash chain (by key) and counted in its
 * host's record.  Done entries are also on two lists, oldest first: the
 * node's (expiry, and eviction when the node is full) and their host's
 * (eviction when that host is at its share).  In-progress entries are on
 * neither list, so they are never evicted or expired under a running call.
 * Hosts are hashed by address and freed with their last entry.
 *
 * Hazards: a lookup may evict; the reply pointer it returns on a hit is
 * into the entry and stays valid only until the next call.
 */
#include "rpc_drc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

struct drc_host;

/* Doubly-linked list link; an entry is on a list when prev != NULL. */
struct drc_link {
	struct rpc_drc_entry *prev, *next;
};

struct rpc_drc_entry {
	struct rpc_drc_entry *hnext;  /* hash chain */
	struct drc_link node_l;       /* drc->oldest/newest (done only) */
	struct drc_link host_l;       /* host->oldest/newest (done only) */
	struct drc_host *host;        /* not owned: counts this entry */
	struct rpc_drc_key key;       /* its port is never compared */
	bool done;
	uint64_t done_ms;
	size_t reply_len;
	uint8_t *reply;               /* owned, reply_len bytes, once done */
};

struct drc_host {
	struct drc_host *next;        /* hash chain */
	uint8_t fam;
	uint8_t addr[16];
	uint32_t n;                   /* entries, in progress included */
	struct rpc_drc_entry *oldest, *newest; /* done entries */
};

struct rpc_drc {
	struct rpc_drc_limits lim;
	size_t nbuckets;              /* power of two */
	struct rpc_drc_entry **buckets; /* owned chains */
	struct drc_host **hbuckets;   /* owned chains */
	struct rpc_drc_entry *oldest, *newest; /* done entries of the node */
	struct rpc_drc_stats st;
};

/*
 * Every byte counts (a WRITE retransmitted with another payload under a
 * reused xid must miss), but a byte-at-a-time loop cost ~1.5 ms of the
 * event loop per 1 MiB WRITE (40% of the server's cycles in a sequential
 * write).  So: 8-byte words on four independent lanes (the multiplies of
 * one lane do not wait for the others), each step (h ^ w) * odd, which
 * changes the lane for any change of its word; the tail byte by byte; the
 * lanes and the length mixed at the end.
 */
uint64_t rpc_drc_sum(const uint8_t *p, size_t len)
{
	const uint64_t m = 0x100000001b3ull;
	uint64_t h[4] = { 0xcbf29ce484222325ull, 0x9e3779b97f4a7c15ull,
			  0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull };
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		uint64_t w[4];

		memcpy(w, p + i, sizeof(w));
		h[0] = (h[0] ^ w[0]) * m;
		h[1] = (h[1] ^ w[1]) * m;
		h[2] = (h[2] ^ w[2]) * m;
		h[3] = (h[3] ^ w[3]) * m;
	}
	for (; i < len; i++)
		h[0] = (h[0] ^ p[i]) * m;
	for (int k = 1; k < 4; k++) {
		h[0] ^= h[k] + 0x9e3779b97f4a7c15ull + (h[0] << 6) + (h[0] >> 2);
		h[0] *= 0xff51afd7ed558ccdull;
	}
	h[0] ^= (uint64_t)len;
	h[0] ^= h[0] >> 33;
	h[0] *= 0xc4ceb9fe1a85ec53ull;
	return h[0] ^ (h[0] >> 29);
}

/* The address of @ss without its port: family and 16 bytes. */
static void drc_addr(const struct sockaddr_storage *ss, uint8_t *fam, uint8_t out[16])
{
	memset(out, 0, 16);
	*fam = (uint8_t)ss->ss_family;
	if (ss->ss_family == AF_INET)
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static uint64_t drc_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static size_t drc_host_bucket(const struct rpc_drc *drc, uint8_t fam, const uint8_t a[16])
{
	uint64_t h = rpc_drc_sum(a, 16) ^ fam;

	return (size_t)(drc_mix(h) & (drc->nbuckets - 1));
}

static size_t drc_bucket(const struct rpc_drc *drc, const struct rpc_drc_key *k)
{
	uint64_t h = k->sum ^ ((uint64_t)k->xid << 32) ^ k->proc ^ (uint64_t)(uintptr_t)k->group;

	return (size_t)(drc_mix(h) & (drc->nbuckets - 1));
}

static bool drc_key_eq(const struct rpc_drc_key *a, const struct rpc_drc_key *b)
{
	uint8_t fa, fb, aa[16], ab[16];

	if (a->xid != b->xid || a->sum != b->sum || a->len != b->len || a->proc != b->proc ||
	    a->prog != b->prog || a->vers != b->vers || a->group != b->group)
		return false;
	drc_addr(&a->addr, &fa, aa);
	drc_addr(&b->addr, &fb, ab);
	return fa == fb && memcmp(aa, ab, 16) == 0;
}

int rpc_drc_new(const struct rpc_drc_limits *lim, struct rpc_drc **out)
{
	struct rpc_drc *drc = calloc(1, sizeof(*drc));
	size_t nb = 64;

	if (!drc)
		return -ENOMEM;
	drc->lim = *lim;
	if (drc->lim.max_per_host == 0 || drc->lim.max_per_host > drc->lim.max_entries)
		drc->lim.max_per_host = drc->lim.max_entries;
	/* About one entry per chain when full. */
	while (nb < drc->lim.max_entries && nb < (1u << 24))
		nb <<= 1;
	drc->nbuckets = nb;
	drc->buckets = calloc(nb, sizeof(*drc->buckets));
	drc->hbuckets = calloc(nb, sizeof(*drc->hbuckets));
	if (!drc->buckets || !drc->hbuckets) {
		free(drc->buckets);
		free(drc->hbuckets);
		free(drc);
		return -ENOMEM;
	}
	*out = drc;
	return 0;
}

void rpc_drc_free(struct rpc_drc *drc)
{
	if (!drc)
		return;
	for (size_t i = 0; i < drc->nbuckets; i++) {
		while (drc->buckets[i]) {
			struct rpc_drc_entry *e = drc->buckets[i];
			drc->buckets[i] = e->hnext;
			free(e->reply);
			free(e);
		}
		while (drc->hbuckets[i]) {
			struct drc_host *h = drc->hbuckets[i];
			drc->hbuckets[i] = h->next;
			free(h);
		}
	}
	free(drc->buckets);
	free(drc->hbuckets);
	free(drc);
}

/* ---- lists ------------------------------------------------------------- */

static void drc_list_append(struct rpc_drc_entry **oldest, struct rpc_drc_entry **newest,
			    struct rpc_drc_entry *e, size_t off)
{
	struct drc_link *l = (struct drc_link *)((char *)e + off);

	l->next = NULL;
	l->prev = *newest;
	if (*newest)
		((struct drc_link *)((char *)*newest + off))->next = e;
	else
		*oldest = e;
	*newest = e;
}

static void drc_list_remove(struct rpc_drc_entry **oldest, struct rpc_drc_entry **newest,
			    struct rpc_drc_entry *e, size_t off)
{
	struct drc_link *l = (struct drc_link *)((char *)e + off);

	if (l->prev)
		((struct drc_link *)((char *)l->prev + off))->next = l->next;
	else
		*oldest = l->next;
	if (l->next)
		((struct drc_link *)((char *)l->next + off))->prev = l->prev;
	else
		*newest = l->prev;
	l->prev = l->next = NULL;
}

#define NODE_OFF offsetof(struct rpc_drc_entry, node_l)
#define HOST_OFF offsetof(struct rpc_drc_entry, host_l)

/* ---- hosts ------------------------------------------------------------- */

static struct drc_host *drc_host_find(const struct rpc_drc *drc, uint8_t fam,
				      const uint8_t a[16], size_t *bucket)
{
	size_t b = drc_host_bucket(drc, fam, a);

	if (bucket)
		*bucket = b;
	for (struct drc_host *h = drc->hbuckets[b]; h; h = h->next)
		if (h->fam == fam && memcmp(h->addr, a, 16) == 0)
			return h;
	return NULL;
}

static void drc_host_put(struct rpc_drc *drc, struct drc_host *h)
{
	size_t b;

	if (--h->n > 0)
		return;
	b = drc_host_bucket(drc, h->fam, h->addr);
	for (struct drc_host **pp = &drc->hbuckets[b]; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	drc->st.hosts--;
	free(h);
}

uint32_t rpc_drc_host_entries(const struct rpc_drc *drc, const struct sockaddr_storage *addr)
{
	uint8_t fam, a[16];
	const struct drc_host *h;

	drc_addr(addr, &fam, a);
	h = drc_host_find(drc, fam, a, NULL);
	return h ? h->n : 0;
}

/* ---- entries ----------------------------------------------------------- */

/* Unlink @e from everything and free it. */
static void drc_entry_drop(struct rpc_drc *drc, struct rpc_drc_entry *e)
{
	size_t b = drc_bucket(drc, &e->key);

	for (struct rpc_drc_entry **pp = &drc->buckets[b]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	if (e->done) {
		drc_list_remove(&drc->oldest, &drc->newest, e, NODE_OFF);
		drc_list_remove(&e->host->oldest, &e->host->newest, e, HOST_OFF);
	}
	drc_host_put(drc, e->host);
	drc->st.entries--;
	free(e->reply);
	free(e);
}

static void drc_expire(struct rpc_drc *drc, uint64_t now_ms)
{
	while (drc->oldest && now_ms - drc->oldest->done_ms >= drc->lim.ttl_ms) {
		drc_entry_drop(drc, drc->oldest);
		drc->st.expired++;
	}
}

enum rpc_drc_result rpc_drc_lookup(struct rpc_drc *drc, const struct rpc_drc_key *key,
				   uint64_t now_ms, struct rpc_drc_entry **entry,
				   const uint8_t **reply, size_t *reply_len)
{
	struct rpc_drc_entry *e;
	struct drc_host *h;
	uint8_t fam, a[16];
	size_t b, hb;

	*entry = NULL;
	if (drc->lim.max_entries == 0) {
		drc->st.nocache++;
		return RPC_DRC_NOCACHE;
	}
	drc_expire(drc, now_ms);
	b = drc_bucket(drc, key);
	for (e = drc->buckets[b]; e; e = e->hnext) {
		if (!drc_key_eq(&e->key, key))
			continue;
		if (!e->done) {
			drc->st.inprogress_drops++;
			return RPC_DRC_INPROGRESS;
		}
		drc->st.hits++;
		*reply = e->reply;
		*reply_len = e->reply_len;
		return RPC_DRC_HIT;
	}
	drc->st.misses++;
	drc_addr(&key->addr, &fam, a);
	h = drc_host_find(drc, fam, a, &hb);
	/* Room: a host at its share gives up its own oldest; otherwise a
	 * full node gives up its oldest.  Only done entries go. */
	if (h && h->n >= drc->lim.max_per_host) {
		if (!h->oldest) {
			drc->st.nocache++;
			return RPC_DRC_NOCACHE;
		}
		drc->st.evictions++;
		/* Dropping a host's last entry frees the host record. */
		if (h->n == 1) {
			drc_entry_drop(drc, h->oldest);
			h = NULL;
		} else {
			drc_entry_drop(drc, h->oldest);
		}
	} else if (drc->st.entries >= drc->lim.max_entries) {
		if (!drc->oldest) {
			drc->st.nocache++;
			return RPC_DRC_NOCACHE;
		}
		drc->st.evictions++;
		if (drc->oldest->host == h && h->n == 1)
			h = NULL;
		drc_entry_drop(drc, drc->oldest);
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		drc->st.nocache++;
		return RPC_DRC_NOCACHE;
	}
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h) {
			free(e);
			drc->st.nocache++;
			return RPC_DRC_NOCACHE;
		}
		h->fam = fam;
		memcpy(h->addr, a, 16);
		hb = drc_host_bucket(drc, fam, a);
		h->next = drc->hbuckets[hb];
		drc->hbuckets[hb] = h;
		drc->st.hosts++;
	}
	h->n++;
	e->host = h;
	e->key = *key;
	e->hnext = drc->buckets[b];
	drc->buckets[b] = e;
	drc->st.entries++;
	*entry = e;
	return RPC_DRC_MISS;
}

void rpc_drc_done(struct rpc_drc *drc, struct rpc_drc_entry *e,
		  const uint8_t *reply, size_t len, uint64_t now_ms)
{
	if (!reply || len == 0 || len > RPC_DRC_MAX_REPLY || !(e->reply = malloc(len))) {
		drc_entry_drop(drc, e);
		return;
	}
	memcpy(e->reply, reply, len);
	e->reply_len = len;
	e->done = true;
	e->done_ms = now_ms;
	drc_list_append(&drc->oldest, &drc->newest, e, NODE_OFF);
	drc_list_append(&e->host->oldest, &e->host->newest, e, HOST_OFF);
}

void rpc_drc_stats(const struct rpc_drc *drc, struct rpc_drc_stats *out)
{
	*out = drc->st;
}
