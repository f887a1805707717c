/*
 * lk_hash.c - the chained hash table; see lk_hash.h (the hash: shash.h).
 */
#include "lk_hash.h"

#include <errno.h>
#include <string.h>

int lk_htab_init(struct lk_htab *h, const struct lk_allocator *al, size_t nb)
{
	h->b = al->alloc(al->ctx, nb * sizeof(*h->b));
	if (!h->b)
		return -ENOMEM;
	memset(h->b, 0, nb * sizeof(*h->b));
	h->nb = nb;
	h->n = 0;
	return 0;
}

void lk_htab_fini(struct lk_htab *h, const struct lk_allocator *al)
{
	if (h->b)
		al->free(al->ctx, h->b, h->nb * sizeof(*h->b));
	h->b = NULL;
	h->nb = h->n = 0;
}

static void grow(struct lk_htab *h, const struct lk_allocator *al)
{
	size_t nb = h->nb * 2;
	struct lk_hnode **b, *n, *next;

	if (nb < h->nb)
		return;
	b = al->alloc(al->ctx, nb * sizeof(*b));
	if (!b)
		return;
	memset(b, 0, nb * sizeof(*b));
	for (size_t i = 0; i < h->nb; i++) {
		for (n = h->b[i]; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	al->free(al->ctx, h->b, h->nb * sizeof(*h->b));
	h->b = b;
	h->nb = nb;
}

void lk_htab_add(struct lk_htab *h, const struct lk_allocator *al,
		 struct lk_hnode *n)
{
	struct lk_hnode **slot = &h->b[n->hash & (h->nb - 1)];

	n->next = *slot;
	*slot = n;
	if (++h->n > h->nb)
		grow(h, al);
}

void lk_htab_del(struct lk_htab *h, struct lk_hnode *n)
{
	struct lk_hnode **pp = &h->b[n->hash & (h->nb - 1)];

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	h->n--;
}
