/*
 * lk_hash.h - seeded hashing and an intrusive chained hash table; internal
 * to the lock engine (files by key, owners by (client, svid, oh)).
 *
 * Keys come off the wire (file handles, owner handles), so the hash is
 * SipHash-1-3 (common/shash.h) keyed by a per-table seed: a client cannot aim its owner
 * handles at one bucket without knowing the seed.
 */
#ifndef SGNFS_LK_HASH_H
#define SGNFS_LK_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "lock/lock.h"

struct lk_hnode {
	struct lk_hnode *next;	/* bucket chain; owned by the lk_htab */
	uint64_t hash;		/* full hash of the key, set before adding */
};

struct lk_htab {
	struct lk_hnode **b;	/* bucket array, nb entries; owned */
	size_t nb;		/* a power of two */
	size_t n;		/* nodes linked */
};

/* Allocate @nb (a power of two) empty buckets.  0 or -ENOMEM. */
int lk_htab_init(struct lk_htab *h, const struct lk_allocator *al, size_t nb);

/* Free the buckets (not the nodes). */
void lk_htab_fini(struct lk_htab *h, const struct lk_allocator *al);

/* Link @n (n->hash set).  Grows the bucket array when the load passes 1;
 * if that allocation fails the table just stays denser.  Never fails. */
void lk_htab_add(struct lk_htab *h, const struct lk_allocator *al,
		 struct lk_hnode *n);

/* Unlink @n, which must be linked. */
void lk_htab_del(struct lk_htab *h, struct lk_hnode *n);

static inline struct lk_hnode *lk_htab_head(const struct lk_htab *h, uint64_t hash)
{
	return h->b[hash & (h->nb - 1)];
}

#endif
