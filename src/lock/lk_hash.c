/*
 * lk_hash.c - SipHash-1-3 and the chained hash table; see lk_hash.h.
 */
#include "lk_hash.h"

#include <errno.h>
#include <string.h>

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3) do {					\
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);	\
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);	\
} while (0)

static inline uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t lk_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; j < tail; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

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
