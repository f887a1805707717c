/*
 * iobuf.c - the data buffers of READ replies, kept for reuse (iobuf.h).
 *
 * Every buffer carries a header just before the bytes handed out: its
 * capacity, and the link while it is kept.  A header with a capacity other
 * than NFSB_SIZE marks an exact (small) buffer, freed on release.
 */
#include "nfs/iobuf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct nfsb_hdr {
	struct nfsb_hdr *next;   /* kept list; guarded by nfsb_lock */
	size_t cap;              /* bytes after the header */
	/* the data starts max_align_t-aligned after this */
} __attribute__((aligned(_Alignof(max_align_t))));

static pthread_mutex_t nfsb_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nfsb_hdr *nfsb_free;   /* kept buffers, all NFSB_SIZE */
static unsigned nfsb_nfree;

void *nfsb_get(size_t len)
{
	struct nfsb_hdr *h = NULL;

	if (len > NFSB_SIZE)
		return NULL;
	if (len >= NFSB_LARGE) {
		pthread_mutex_lock(&nfsb_lock);
		h = nfsb_free;
		if (h) {
			nfsb_free = h->next;
			nfsb_nfree--;
		}
		pthread_mutex_unlock(&nfsb_lock);
		if (!h) {
			h = malloc(sizeof(*h) + NFSB_SIZE);
			if (!h)
				return NULL;
		}
		h->cap = NFSB_SIZE;
	} else {
		/* NFSB_SIZE marks a kept buffer: a small one never has it */
		h = malloc(sizeof(*h) + (len ? len : 1));
		if (!h)
			return NULL;
		h->cap = len ? len : 1;
	}
	h->next = NULL;
	return h + 1;
}

void nfsb_put(void *p)
{
	struct nfsb_hdr *h;

	if (!p)
		return;
	h = (struct nfsb_hdr *)p - 1;
	if (h->cap == NFSB_SIZE) {
		pthread_mutex_lock(&nfsb_lock);
		if (nfsb_nfree < NFSB_KEEP) {
			h->next = nfsb_free;
			nfsb_free = h;
			nfsb_nfree++;
			h = NULL;
		}
		pthread_mutex_unlock(&nfsb_lock);
	}
	free(h);
}

unsigned nfsb_kept(void)
{
	unsigned n;

	pthread_mutex_lock(&nfsb_lock);
	n = nfsb_nfree;
	pthread_mutex_unlock(&nfsb_lock);
	return n;
}

void nfsb_drain(void)
{
	struct nfsb_hdr *h;

	pthread_mutex_lock(&nfsb_lock);
	h = nfsb_free;
	nfsb_free = NULL;
	nfsb_nfree = 0;
	pthread_mutex_unlock(&nfsb_lock);
	while (h) {
		struct nfsb_hdr *next = h->next;

		free(h);
		h = next;
	}
}
