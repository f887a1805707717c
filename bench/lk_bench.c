/*
 * lk_bench.c - the pure lock engine (src/lock) alone: how the cost of a lock
 * operation grows with the locks held on one file, and what a held lock
 * costs in memory.  No sockets, no RPC: this is the floor under the server
 * figures of bench/lockbench.py.
 *
 *   lk_bench [--levels 10,100,1000,10000,100000] [--pairs N] [--owners O]
 *            [--mem-locks M] [--json]
 *
 * For each level K: a fresh table; O clients, one owner each, hold K
 * exclusive 8-byte locks on ONE file, lock i on [16i, 16i+7] by owner
 * i mod O (the gaps keep one owner's locks from merging).  Then a separate
 * owner runs N LOCK+UNLOCK pairs, each on a random gap [16i+8, 16i+15]
 * (no conflict, but inside the populated tree: every operation descends
 * it).  Prints the rate of operations (a pair is two) and ns per op.
 *
 * Memory: the same layout with M locks; the engine's own allocations are
 * counted through the lk_allocator hook (requested bytes, and bytes that
 * glibc's malloc really reserves: malloc_usable_size + its 8-byte header),
 * divided by M.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lock/lock.h"

struct lb_count {
	size_t bytes, real, nallocs;
};

static void *lb_alloc(void *ctx, size_t size)
{
	struct lb_count *c = ctx;
	void *p = malloc(size);

	if (p) {
		c->bytes += size;
		c->real += malloc_usable_size(p) + sizeof(size_t);
		c->nallocs++;
	}
	return p;
}

static void lb_free(void *ctx, void *p, size_t size)
{
	struct lb_count *c = ctx;

	if (!p)
		return;
	c->bytes -= size;
	c->real -= malloc_usable_size(p) + sizeof(size_t);
	c->nallocs--;
	free(p);
}

static uint64_t lb_rng = 0x9e3779b97f4a7c15ull;
static uint64_t lb_rand(void)
{
	lb_rng ^= lb_rng << 13;
	lb_rng ^= lb_rng >> 7;
	lb_rng ^= lb_rng << 17;
	return lb_rng;
}

static double lb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char key[32] = "lk_bench one file handle .......";

struct lb_world {
	struct lk_table *t;
	struct lk_client **clients;
	struct lk_owner **owners;
	unsigned nowners;
	struct lb_count count;
	struct lk_allocator al;
};

static void lb_die(const char *what, int rc)
{
	fprintf(stderr, "lk_bench: %s: %s\n", what, strerror(-rc));
	exit(1);
}

static void lb_world_init(struct lb_world *w, unsigned nowners)
{
	struct lk_table_opts o = { 0 };
	int rc;

	memset(w, 0, sizeof(*w));
	w->al.alloc = lb_alloc;
	w->al.free = lb_free;
	w->al.ctx = &w->count;
	o.allocator = &w->al;
	o.hash_seed[0] = 1;
	o.hash_seed[1] = 2;
	rc = lk_table_new(&o, &w->t);
	if (rc)
		lb_die("lk_table_new", rc);
	w->nowners = nowners;
	w->clients = calloc(nowners + 1, sizeof(*w->clients));
	w->owners = calloc(nowners + 1, sizeof(*w->owners));
	if (!w->clients || !w->owners)
		lb_die("calloc", -ENOMEM);
	for (unsigned i = 0; i <= nowners; i++) {
		char oh[32];
		int n = snprintf(oh, sizeof(oh), "%u@host-%u", 1000 + i, i);

		rc = lk_client_new(w->t, NULL, &w->clients[i]);
		if (rc)
			lb_die("lk_client_new", rc);
		rc = lk_owner_get(w->t, w->clients[i], 1000 + i, oh, (size_t)n, &w->owners[i]);
		if (rc)
			lb_die("lk_owner_get", rc);
	}
}

static void lb_world_fill(struct lb_world *w, uint64_t k)
{
	for (uint64_t i = 0; i < k; i++) {
		struct lk_range r = { i * 16, i * 16 + 7 };
		int rc = lk_lock(w->t, key, sizeof(key), w->owners[i % w->nowners], LK_EXCL, r, NULL);

		if (rc)
			lb_die("fill lk_lock", rc);
	}
}

static void lb_world_free(struct lb_world *w)
{
	for (unsigned i = 0; i <= w->nowners; i++)
		lk_owner_put(w->t, w->owners[i]);
	lk_table_free(w->t);
	free(w->clients);
	free(w->owners);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "levels", 1, NULL, 'l' }, { "pairs", 1, NULL, 'p' },
		{ "owners", 1, NULL, 'o' }, { "mem-locks", 1, NULL, 'm' },
		{ "json", 0, NULL, 'j' }, { NULL, 0, NULL, 0 },
	};
	char levels[256] = "10,100,1000,10000,100000";
	uint64_t pairs = 2000000, mem_locks = 1000000;
	unsigned nowners = 100;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': snprintf(levels, sizeof(levels), "%s", optarg); break;
		case 'p': pairs = strtoull(optarg, NULL, 10); break;
		case 'o': nowners = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': mem_locks = strtoull(optarg, NULL, 10); break;
		case 'j': json = true; break;
		default:
			fprintf(stderr, "usage: lk_bench [--levels K,K,...] [--pairs N] [--owners O] "
					"[--mem-locks M] [--json]\n");
			return 64;
		}
	}
	if (nowners == 0 || pairs == 0)
		return 64;

	if (json)
		printf("{\"levels\":[");
	bool first = true;
	for (char *save = NULL, *tok = strtok_r(levels, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t k = strtoull(tok, NULL, 10);
		struct lb_world w;
		struct lk_owner *me;
		struct lk_stats st;
		double t0, t1;

		lb_world_init(&w, nowners);
		lb_world_fill(&w, k);
		me = w.owners[nowners];
		lk_table_stats(w.t, &st);
		if (st.locks != k) {
			fprintf(stderr, "lk_bench: %zu locks held, expected %llu\n", st.locks,
				(unsigned long long)k);
			return 1;
		}
		t0 = lb_now();
		for (uint64_t n = 0; n < pairs; n++) {
			uint64_t i = k ? lb_rand() % k : 0;
			struct lk_range r = { i * 16 + 8, i * 16 + 15 };
			int rc = lk_lock(w.t, key, sizeof(key), me, LK_EXCL, r, NULL);

			if (rc)
				lb_die("lk_lock", rc);
			rc = lk_unlock(w.t, key, sizeof(key), me, r);
			if (rc)
				lb_die("lk_unlock", rc);
		}
		t1 = lb_now();
		double ops = 2.0 * (double)pairs / (t1 - t0);

		if (json)
			printf("%s{\"locks\":%llu,\"pairs\":%llu,\"seconds\":%.3f,\"ops_per_s\":%.0f,"
			       "\"ns_per_op\":%.1f}", first ? "" : ",", (unsigned long long)k,
			       (unsigned long long)pairs, t1 - t0, ops, 1e9 / ops);
		else
			printf("lk-bench locks=%llu pairs=%llu seconds=%.3f ops/s=%.0f ns/op=%.1f\n",
			       (unsigned long long)k, (unsigned long long)pairs, t1 - t0, ops, 1e9 / ops);
		first = false;
		lb_world_free(&w);
	}

	/* memory per held lock */
	{
		struct lb_world w;
		size_t b0, r0, n0;
		double t0, t1;

		lb_world_init(&w, nowners);
		b0 = w.count.bytes;
		r0 = w.count.real;
		n0 = w.count.nallocs;
		t0 = lb_now();
		lb_world_fill(&w, mem_locks);
		t1 = lb_now();
		double per = (double)(w.count.bytes - b0) / (double)mem_locks;
		double real = (double)(w.count.real - r0) / (double)mem_locks;
		double allocs = (double)(w.count.nallocs - n0) / (double)mem_locks;

		if (json)
			printf("],\"memory\":{\"locks\":%llu,\"bytes_per_lock\":%.1f,"
			       "\"malloc_bytes_per_lock\":%.1f,\"allocs_per_lock\":%.3f,"
			       "\"fill_locks_per_s\":%.0f}}\n",
			       (unsigned long long)mem_locks, per, real, allocs,
			       (double)mem_locks / (t1 - t0));
		else
			printf("lk-mem locks=%llu bytes/lock=%.1f malloc_bytes/lock=%.1f allocs/lock=%.3f "
			       "fill_locks/s=%.0f\n", (unsigned long long)mem_locks, per, real, allocs,
			       (double)mem_locks / (t1 - t0));
		lb_world_free(&w);
	}
	return 0;
}
