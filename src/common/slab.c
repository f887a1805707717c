/*
 * slab.c - pages of fixed-size objects (see slab.h).
 *
 * A page starts with its header; objects follow.  Free objects of a page
 * are chained through their first word; slots never used yet are handed
 * out by a bump index.  A new page is faulted in whole when it is mapped
 * (MADV_POPULATE_WRITE: one call instead of sixteen page faults).
 */
#include "slab.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

struct slab_page {
	struct slab_page *next, *prev;   /* s->all */
	struct slab_page *pnext, *pprev; /* s->partial, iff in_partial; s->spare */
	void *free;                      /* chain of freed objects */
	uint32_t nlive;                  /* objects handed out */
	uint32_t bump;                   /* slots [0, bump) were handed out once */
	bool in_partial;
};

#define SLAB_HDR ((sizeof(struct slab_page) + 63) & ~(size_t)63)

void slab_init(struct slab *s, size_t osize, unsigned keep)
{
	s->osize = (osize + 7) & ~(size_t)7;
	s->per_page = (uint32_t)((SLAB_PAGE - SLAB_HDR) / s->osize);
	s->all = s->partial = s->spare = NULL;
	s->nspare = 0;
	s->keep = keep;
	s->npages = 0;
}

static struct slab_page *slab_page_of(const void *p)
{
	return (struct slab_page *)((uintptr_t)p & ~(uintptr_t)(SLAB_PAGE - 1));
}

static bool slab_full(const struct slab *s, const struct slab_page *pg)
{
	return !pg->free && pg->bump == s->per_page;
}

static void slab_partial_add(struct slab *s, struct slab_page *pg)
{
	pg->pprev = NULL;
	pg->pnext = s->partial;
	if (s->partial)
		s->partial->pprev = pg;
	s->partial = pg;
	pg->in_partial = true;
}

static void slab_partial_del(struct slab *s, struct slab_page *pg)
{
	if (pg->pprev)
		pg->pprev->pnext = pg->pnext;
	else
		s->partial = pg->pnext;
	if (pg->pnext)
		pg->pnext->pprev = pg->pprev;
	pg->pnext = pg->pprev = NULL;
	pg->in_partial = false;
}

/* A new page, aligned to its size: map twice the size, unmap the slop. */
static struct slab_page *slab_page_new(struct slab *s)
{
	uint8_t *m = mmap(NULL, 2 * SLAB_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	struct slab_page *pg;

	if (m == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)m + SLAB_PAGE - 1) & ~(uintptr_t)(SLAB_PAGE - 1);
	if (a > (uintptr_t)m)
		munmap(m, a - (uintptr_t)m);
	if ((uint8_t *)m + 2 * SLAB_PAGE > (uint8_t *)a + SLAB_PAGE)
		munmap((void *)(a + SLAB_PAGE),
		       (size_t)((uintptr_t)m + 2 * SLAB_PAGE - (a + SLAB_PAGE)));
#ifdef MADV_POPULATE_WRITE
	/* Fault the whole page in with one call, not one trap per 4 KiB as
	 * the bump index reaches it: a table that needs a new page is
	 * growing (a journal replay fills ~2,000 of them per million locks),
	 * and on a virtual machine each trap costs microseconds.  A kernel
	 * without it (< 5.14) says EINVAL; the page then faults as before. */
	(void)madvise((void *)a, SLAB_PAGE, MADV_POPULATE_WRITE);
#endif
	pg = (struct slab_page *)a;
	pg->free = NULL;
	pg->nlive = 0;
	pg->bump = 0;
	pg->in_partial = false;
	pg->pnext = pg->pprev = NULL;
	pg->prev = NULL;
	pg->next = s->all;
	if (s->all)
		s->all->prev = pg;
	s->all = pg;
	s->npages++;
	return pg;
}

static void slab_page_unmap(struct slab *s, struct slab_page *pg)
{
	if (pg->prev)
		pg->prev->next = pg->next;
	else
		s->all = pg->next;
	if (pg->next)
		pg->next->prev = pg->prev;
	s->npages--;
	munmap(pg, SLAB_PAGE);
}

void *slab_alloc(struct slab *s)
{
	struct slab_page *pg = s->partial;
	void *p;

	if (!pg) {
		pg = s->spare;
		if (pg) {
			s->spare = pg->pnext;
			s->nspare--;
		} else {
			pg = slab_page_new(s);
		}
		if (!pg)
			return NULL;
		slab_partial_add(s, pg);
	}
	if (pg->free) {
		p = pg->free;
		pg->free = *(void **)p;
	} else {
		p = (uint8_t *)pg + SLAB_HDR + (size_t)pg->bump * s->osize;
		pg->bump++;
	}
	pg->nlive++;
	if (slab_full(s, pg))
		slab_partial_del(s, pg);
	return p;
}

void slab_free(struct slab *s, void *p)
{
	struct slab_page *pg = slab_page_of(p);

	*(void **)p = pg->free;
	pg->free = p;
	pg->nlive--;
	if (!pg->in_partial)
		slab_partial_add(s, pg);
	if (pg->nlive > 0)
		return;
	/* Empty: keep s->keep for the next burst, give the others back. */
	slab_partial_del(s, pg);
	if (s->nspare >= s->keep) {
		slab_page_unmap(s, pg);
		return;
	}
	pg->free = NULL;
	pg->bump = 0;
	pg->pnext = s->spare;
	s->spare = pg;
	s->nspare++;
}

void slab_fini(struct slab *s)
{
	while (s->all)
		slab_page_unmap(s, s->all);
	s->partial = s->spare = NULL;
	s->nspare = 0;
}
