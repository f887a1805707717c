/*
 * lk_slab.h - fixed-size objects in pages of their own, for the lock
 * engine's lock nodes.
 *
 * Why not malloc.  A node is 120 bytes; malloc adds an 8-byte header and
 * rounds to 16 (128).  Worse, a million locks taken by pipelined requests
 * interleave in the heap with the requests' own blocks: when the requests
 * are gone their holes stay resident between live locks, and the process
 * keeps the high-water mark of requests in flight for as long as the locks
 * live.  Nodes in pages of their own cost exactly their size, and the heap
 * the requests used can shrink again.
 *
 * Pages are LK_SLAB_PAGE bytes, aligned to their size (so a node finds its
 * page by masking its address), mmap'ed directly.  A page whose last node
 * is freed goes back to the system, except one kept for reuse.  Not
 * thread-safe: the table's owner (the loop) serializes every call.
 */
#ifndef SGNFS_LOCK_LK_SLAB_H
#define SGNFS_LOCK_LK_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define LK_SLAB_PAGE ((size_t)64 * 1024)

struct lk_slab_page;

struct lk_slab {
	size_t osize;                  /* object size, a multiple of 8 */
	uint32_t per_page;             /* objects in one page */
	struct lk_slab_page *all;      /* every page; owned */
	struct lk_slab_page *partial;  /* pages with a free slot and a live object */
	struct lk_slab_page *spare;    /* one empty page kept, or NULL (in all) */
	size_t npages;
};

/* @osize: the objects' size (>= sizeof(void *)). */
void lk_slab_init(struct lk_slab *s, size_t osize);
/* An object (uninitialised), or NULL when the system has no page. */
void *lk_slab_alloc(struct lk_slab *s);
/* Give back @p, from lk_slab_alloc of @s. */
void lk_slab_free(struct lk_slab *s, void *p);
/* Unmap every page, live objects included. */
void lk_slab_fini(struct lk_slab *s);

#endif
