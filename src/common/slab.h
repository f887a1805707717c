/*
 * slab.h - fixed-size objects in pages of their own: the lock engine's
 * lock nodes, and the RPC service's request blocks.
 *
 * Why not malloc.  A lock node is 120 bytes; malloc adds an 8-byte header
 * and rounds to 16 (128).  Worse, a million locks taken by pipelined
 * requests interleave in the heap with the requests' own blocks: when the
 * requests are gone their holes stay resident between live locks, and the
 * process keeps the high-water mark of requests in flight for as long as
 * the locks live.  So both sides have pages of their own: a node costs
 * exactly its size, and the pages a burst of requests took go back to the
 * system once they are answered.
 *
 * Pages are SLAB_PAGE bytes, aligned to their size (so an object finds its
 * page by masking its address), mmap'ed directly.  A page whose last
 * object is freed goes back to the system, except @keep of them kept
 * empty for reuse (the next burst does not map them again).  Not
 * thread-safe: the owner (the loop) serializes every call.
 */
#ifndef SGNFS_COMMON_SLAB_H
#define SGNFS_COMMON_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_PAGE ((size_t)64 * 1024)

struct slab_page;

struct slab {
	size_t osize;               /* object size, a multiple of 8 */
	uint32_t per_page;          /* objects in one page */
	struct slab_page *all;      /* every page; owned */
	struct slab_page *partial;  /* pages with a free slot and a live object */
	struct slab_page *spare;    /* empty pages kept, chained by pnext (in all) */
	unsigned nspare, keep;      /* in spare; at most this many */
	size_t npages;
};

/* @osize: the objects' size (>= sizeof(void *), at most what a page holds
 * past its header); @keep: empty pages kept for reuse. */
void slab_init(struct slab *s, size_t osize, unsigned keep);
/* An object (uninitialised), or NULL when the system has no page. */
void *slab_alloc(struct slab *s);
/* Give back @p, from slab_alloc of @s. */
void slab_free(struct slab *s, void *p);
/* Unmap every page, live objects included. */
void slab_fini(struct slab *s);

#endif
