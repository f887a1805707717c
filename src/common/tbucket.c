/*
 * tbucket.c - see tbucket.h.
 */
#include "tbucket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "saddr.h"

/* How many slots a lookup examines from the address's hash on. */
#define TB_PROBES 8

struct tb_entry {
	struct sockaddr_storage addr;  /* normalised (saddr.h) */
	struct tb_bucket b;
	bool used;
};

bool tb_take(struct tb_bucket *b, double burst, double rate, uint64_t now_ms)
{
	if (!b->started) {
		b->started = true;
		b->tokens = burst;
		b->last_ms = now_ms;
	}
	/* A clock that went back (a caller mixing clocks) refills nothing. */
	if (now_ms > b->last_ms)
		b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now_ms;
	if (b->tokens < 1.0) {
		b->refused++;
		return false;
	}
	b->tokens -= 1.0;
	return true;
}

uint64_t tb_refused_take(struct tb_bucket *b)
{
	uint64_t n = b->refused;

	b->refused = 0;
	return n;
}

int tb_table_init(struct tb_table *t, size_t n, double burst, double rate)
{
	memset(t, 0, sizeof(*t));
	t->e = calloc(n ? n : 1, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->n = n ? n : 1;
	t->burst = burst;
	t->rate = rate;
	return 0;
}

void tb_table_free(struct tb_table *t)
{
	free(t->e);
	t->e = NULL;
	t->n = 0;
}

bool tb_table_take(struct tb_table *t, const struct sockaddr_storage *a, uint64_t now_ms)
{
	struct sockaddr_storage k;
	struct tb_entry *victim = NULL;
	size_t h;

	sa_norm(a, &k);
	h = (size_t)(sa_hash(&k) % t->n);
	for (size_t i = 0; i < TB_PROBES && i < t->n; i++) {
		struct tb_entry *e = &t->e[(h + i) % t->n];

		if (e->used && sa_same_host(&e->addr, &k))
			return tb_take(&e->b, t->burst, t->rate, now_ms);
		if (!e->used) {
			if (!victim || victim->used)
				victim = e;
		} else if (!victim || (victim->used && e->b.last_ms < victim->b.last_ms)) {
			victim = e;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	victim->addr = k;
	return tb_take(&victim->b, t->burst, t->rate, now_ms);
}
