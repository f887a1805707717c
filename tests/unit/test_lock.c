/*
 * test_lock.c - the pure lock engine.
 *
 *  - The Connectathon lock test (tlock) cases, as our own tests: probe,
 *    whole file, first/second/adjacent bytes, the largest offset and one
 *    byte beyond it, split, upgrade/downgrade, blocking exclusion, close,
 *    an interrupted (cancelled) blocked request.
 *  - Two-owner cases in the style of xfstests' locktest.
 *  - Share reservations: the whole mode x deny conflict matrix.
 *  - Deadlock (2- and 3-cycles), per-client waiter cap, cancel, FIFO wake
 *    order, waking only what can be satisfied, grant-back, release walkers.
 *  - Allocation failure: every allocation of each operation fails in turn;
 *    the table must be exactly as before.
 *  - A randomized differential test against a per-byte model (cells 0..63
 *    plus one cell for [64, EOF]) over 1,000,000 operations.  LK_SEED and
 *    LK_OPS in the environment replay a seed / change the count.
 *
 * Every test ends with lk_table_check() and a leak check through the
 * table's allocator hook.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <cmocka.h>

#include "lock/lock.h"

#define MAX UINT64_MAX

/* ---- allocator hook: counts, fails on demand, finds leaks ---- */

static size_t al_live;		/* bytes handed out and not freed */
static long al_calls;		/* allocations attempted */
static long al_fail_at = -1;	/* fail the allocation with this al_calls */

static void *t_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (al_calls++ == al_fail_at)
		return NULL;
	al_live += size;
	return malloc(size);
}

static void t_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	assert_true(al_live >= size);
	al_live -= size;
	free(p);
}

static const struct lk_allocator test_al = { t_alloc, t_free, NULL };

/* ---- callbacks: a log of grants and drops ---- */

struct ev {
	char kind;			/* 'G' granted, 'D' dropped */
	void *priv;
	struct lk_lockinfo li;
};

static struct ev evs[256];
static int nev;
static struct lk_table *T;
static struct lk_owner *unlock_in_cb;	/* grant-back from inside on_grant */

static void on_grant(void *arg, struct lk_waiter *w)
{
	(void)arg;
	assert_true(nev < 256);
	evs[nev].kind = 'G';
	evs[nev].priv = lk_waiter_priv(w);
	lk_waiter_info(w, &evs[nev].li);
	nev++;
	if (unlock_in_cb && evs[nev - 1].li.owner == unlock_in_cb) {
		struct lk_lockinfo li = evs[nev - 1].li;

		unlock_in_cb = NULL;
		assert_int_equal(lk_unlock(T, li.key, li.keylen, li.owner, li.range), 0);
	}
}

static void on_drop(void *arg, struct lk_waiter *w)
{
	(void)arg;
	assert_true(nev < 256);
	evs[nev].kind = 'D';
	evs[nev].priv = lk_waiter_priv(w);
	lk_waiter_info(w, &evs[nev].li);
	nev++;
}

/* ---- fixture: a table, three clients, owners A B C (one per client) and
 * D (client 0, like A) ---- */

static struct lk_client *C0, *C1, *C2;
static struct lk_owner *A, *B, *C, *D;
static unsigned g_cap;

static const char KA[] = "file-A";
#define KAL (sizeof(KA) - 1)
static const char KB[] = "file-B";
#define KBL (sizeof(KB) - 1)

static int setup(void **st)
{
	struct lk_table_opts o = {
		.max_waiters_per_client = g_cap,
		.on_grant = on_grant,
		.on_drop = on_drop,
		.hash_seed = { 0x1234, 0x5678 },
		.allocator = &test_al,
	};

	(void)st;
	al_live = 0;
	al_fail_at = -1;
	nev = 0;
	unlock_in_cb = NULL;
	assert_int_equal(lk_table_new(&o, &T), 0);
	assert_int_equal(lk_client_new(T, (void *)"c0", &C0), 0);
	assert_int_equal(lk_client_new(T, (void *)"c1", &C1), 0);
	assert_int_equal(lk_client_new(T, (void *)"c2", &C2), 0);
	assert_int_equal(lk_owner_get(T, C0, 1, "ohA", 3, &A), 0);
	assert_int_equal(lk_owner_get(T, C1, 2, "ohB", 3, &B), 0);
	assert_int_equal(lk_owner_get(T, C2, 3, "ohC", 3, &C), 0);
	assert_int_equal(lk_owner_get(T, C0, 4, "ohD", 3, &D), 0);
	return 0;
}

static int setup_cap2(void **st)
{
	g_cap = 2;
	setup(st);
	g_cap = 0;
	return 0;
}

static void check_table(void)
{
	const char *why = NULL;
	int rc = lk_table_check(T, &why);

	if (rc)
		fail_msg("lk_table_check: %s", why);
}

static int teardown(void **st)
{
	(void)st;
	check_table();
	lk_owner_put(T, A);
	lk_owner_put(T, B);
	lk_owner_put(T, C);
	lk_owner_put(T, D);
	lk_table_free(T);
	T = NULL;
	assert_int_equal(al_live, 0);
	return 0;
}

/* ---- helpers ---- */

static struct lk_range rg(uint64_t off, uint64_t len)
{
	struct lk_range r;

	assert_int_equal(lk_range_make(off, len, &r), 0);
	return r;
}

static int L(struct lk_owner *o, int type, uint64_t off, uint64_t len)
{
	return lk_lock(T, KA, KAL, o, type, rg(off, len), NULL);
}

static int U(struct lk_owner *o, uint64_t off, uint64_t len)
{
	return lk_unlock(T, KA, KAL, o, rg(off, len));
}

static int TS(struct lk_owner *o, int type, uint64_t off, uint64_t len)
{
	return lk_test(T, KA, KAL, o, type, rg(off, len), NULL);
}

static struct lk_waiter *W(struct lk_owner *o, int type, uint64_t off, uint64_t len,
			   void *priv)
{
	struct lk_waiter *w = NULL;

	assert_int_equal(lk_lock_wait(T, KA, KAL, o, type, rg(off, len), priv, &w, NULL),
			 -EINPROGRESS);
	assert_non_null(w);
	return w;
}

static size_t nlocks(void)
{
	struct lk_stats st;

	lk_table_stats(T, &st);
	return st.locks;
}

static size_t nwaiters(void)
{
	struct lk_stats st;

	lk_table_stats(T, &st);
	return st.waiters;
}

static size_t nfiles(void)
{
	struct lk_stats st;

	lk_table_stats(T, &st);
	return st.files;
}

/* "0-2X 5-eofS": what @o holds on file-A, in start order. */
struct held_ctx {
	const struct lk_owner *o;
	char *buf;
	size_t len;
};

static int held_one(void *arg, const struct lk_lockinfo *li)
{
	struct held_ctx *h = arg;
	char end[24];

	if (li->owner != h->o || li->keylen != KAL || memcmp(li->key, KA, KAL) != 0)
		return 0;
	if (li->range.end == MAX)
		snprintf(end, sizeof(end), "eof");
	else
		snprintf(end, sizeof(end), "%llu", (unsigned long long)li->range.end);
	if (li->range.start == MAX)
		h->len += (size_t)snprintf(h->buf + h->len, 256 - h->len, "%smax-%s%c",
					   h->len ? " " : "", end, li->type == LK_EXCL ? 'X' : 'S');
	else
		h->len += (size_t)snprintf(h->buf + h->len, 256 - h->len, "%s%llu-%s%c",
					   h->len ? " " : "", (unsigned long long)li->range.start,
					   end, li->type == LK_EXCL ? 'X' : 'S');
	return 0;
}

static const char *held(const struct lk_owner *o)
{
	static char buf[256];
	struct held_ctx h = { o, buf, 0 };

	buf[0] = 0;
	lk_foreach_lock(T, held_one, &h);
	return buf;
}

static void expect_holder(struct lk_owner *asker, int type, uint64_t off, uint64_t len,
			  struct lk_owner *holder, int htype, uint64_t hs, uint64_t he)
{
	struct lk_lockinfo h;

	memset(&h, 0, sizeof(h));
	assert_int_equal(lk_test(T, KA, KAL, asker, type, rg(off, len), &h), -EAGAIN);
	assert_ptr_equal(h.owner, holder);
	assert_int_equal(h.type, htype);
	assert_true(h.range.start == hs);
	assert_true(h.range.end == he);
	assert_int_equal(h.keylen, KAL);
	assert_memory_equal(h.key, KA, KAL);
}

/* ==== Connectathon tlock cases ==== */

/* Test 1: probe an unlocked file. */
static void test_tlock1_probe(void **st)
{
	static const uint64_t probes[][2] = {
		{ 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 }, { MAX, 1 }, { MAX - 1, 0 }, { MAX, 0 },
	};

	(void)st;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		assert_int_equal(TS(A, LK_EXCL, probes[i][0], probes[i][1]), 0);
		assert_int_equal(TS(B, LK_SHARED, probes[i][0], probes[i][1]), 0);
	}
	assert_int_equal(nfiles(), 0);		/* a test creates nothing */
	assert_int_equal(U(A, 0, 0), 0);	/* unlocking nothing is fine */
}

/* Test 2: lock the whole file (length 0); every region is taken. */
static void test_tlock2_whole_file(void **st)
{
	struct lk_lockinfo h;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 0), 0);
	assert_string_equal(held(A), "0-eofX");
	expect_holder(B, LK_EXCL, 0, 0, A, LK_EXCL, 0, MAX);
	expect_holder(B, LK_SHARED, 0, 1, A, LK_EXCL, 0, MAX);
	expect_holder(B, LK_SHARED, 1, 0, A, LK_EXCL, 0, MAX);
	expect_holder(B, LK_EXCL, 1, 1, A, LK_EXCL, 0, MAX);
	expect_holder(B, LK_EXCL, MAX, 1, A, LK_EXCL, 0, MAX);
	assert_int_equal(lk_lock(T, KA, KAL, B, LK_SHARED, rg(12345, 1), &h), -EAGAIN);
	assert_int_equal(lk_range_len(&h.range), 0);	/* reported as "to EOF" */
	assert_int_equal(TS(A, LK_EXCL, 0, 0), 0);	/* never conflicts with itself */
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 0), 0);
	assert_int_equal(nfiles(), 0);
}

/* Test 3: lock the first byte. */
static void test_tlock3_first_byte(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 1), 0);
	expect_holder(B, LK_EXCL, 0, 1, A, LK_EXCL, 0, 0);
	assert_int_equal(TS(B, LK_EXCL, 1, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 0), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 1, 0), 0);
	assert_int_equal(U(A, 0, 1), 0);
	assert_int_equal(nlocks(), 0);
}

/* Test 4: lock the second byte; its neighbours stay free. */
static void test_tlock4_second_byte(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 1, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 1), 0);
	expect_holder(B, LK_EXCL, 1, 1, A, LK_EXCL, 1, 1);
	assert_int_equal(TS(B, LK_EXCL, 2, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 0), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 1, 0), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 2, 0), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 2), -EAGAIN);
	assert_int_equal(U(A, 1, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, 0, 0), 0);
}

/* Test 5: lock adjacent bytes one by one: they merge into one range. */
static void test_tlock5_adjacent_bytes(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 1), 0);
	assert_int_equal(L(A, LK_EXCL, 1, 1), 0);
	assert_string_equal(held(A), "0-1X");
	assert_int_equal(TS(B, LK_EXCL, 0, 1), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 1, 1), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 2, 1), 0);
	assert_int_equal(L(A, LK_EXCL, 3, 1), 0);
	assert_string_equal(held(A), "0-1X 3-3X");
	assert_int_equal(L(A, LK_EXCL, 2, 1), 0);	/* fills the gap: one range */
	assert_string_equal(held(A), "0-3X");
	assert_int_equal(nlocks(), 1);
	assert_int_equal(U(A, 0, 4), 0);
	assert_int_equal(nlocks(), 0);
}

/* Test 6: the largest offset, and one byte beyond it. */
static void test_tlock6_max_offset(void **st)
{
	struct lk_range r;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, MAX, 1), 0);
	assert_string_equal(held(A), "max-eofX");
	expect_holder(B, LK_EXCL, MAX, 1, A, LK_EXCL, MAX, MAX);
	assert_int_equal(TS(B, LK_EXCL, MAX - 1, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, MAX - 1, 2), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 0, 0), -EAGAIN);
	assert_int_equal(L(B, LK_EXCL, MAX - 1, 1), 0);		/* touching: fine */

	/* One byte beyond the largest offset is an error (NLM4_FBIG). */
	assert_int_equal(lk_range_make(MAX, 2, &r), -EOVERFLOW);
	assert_int_equal(lk_range_make(MAX - 1, 3, &r), -EOVERFLOW);
	assert_int_equal(lk_range_make(2, MAX, &r), -EOVERFLOW);
	assert_int_equal(lk_range_make(1, MAX, &r), 0);
	assert_true(r.start == 1 && r.end == MAX);
	assert_int_equal(lk_range_make(0, MAX, &r), 0);
	assert_true(r.end == MAX - 1);
	assert_int_equal(lk_range_len(&r), MAX);
	assert_int_equal(lk_range_make(MAX, 0, &r), 0);
	assert_true(r.start == MAX && r.end == MAX);

	/* Unlock at the largest offset with length 0; lock "to EOF" from there. */
	assert_int_equal(U(A, MAX, 0), 0);
	assert_string_equal(held(A), "");
	assert_int_equal(L(A, LK_EXCL, MAX, 0), 0);
	assert_string_equal(held(A), "max-eofX");
	assert_int_equal(L(A, LK_EXCL, MAX - 2, 1), 0);
	assert_string_equal(held(A), "18446744073709551613-18446744073709551613X max-eofX");
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(nfiles(), 0);
}

/* Test 7: mutual exclusion: a blocked request is granted on unlock. */
static void test_tlock7_blocking_exclusion(void **st)
{
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 0), 0);
	w = W(B, LK_EXCL, 0, 0, (void *)"blk");
	assert_ptr_equal(lk_waiter_find(T, KA, KAL, B, LK_EXCL, rg(0, 0)), w);
	assert_int_equal(nev, 0);
	assert_int_equal(nwaiters(), 1);
	check_table();
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(nev, 1);
	assert_int_equal(evs[0].kind, 'G');
	assert_string_equal(evs[0].priv, "blk");
	assert_ptr_equal(evs[0].li.owner, B);
	assert_true(evs[0].li.range.start == 0 && evs[0].li.range.end == MAX);
	assert_int_equal(nwaiters(), 0);
	assert_string_equal(held(B), "0-eofX");
	expect_holder(A, LK_SHARED, 7, 1, B, LK_EXCL, 0, MAX);
	assert_int_equal(U(B, 0, 0), 0);
}

/* Test 8 (our reading): repeating a request changes nothing; a
 * retransmitted blocking request finds its waiter. */
static void test_tlock8_repeat(void **st)
{
	struct lk_waiter *w1, *w2;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(A, LK_EXCL, 2, 3), 0);
	assert_string_equal(held(A), "0-9X");
	w1 = W(B, LK_SHARED, 5, 5, NULL);
	w2 = W(B, LK_SHARED, 5, 5, (void *)"ignored");
	assert_ptr_equal(w1, w2);
	assert_null(lk_waiter_priv(w2));
	assert_ptr_equal(lk_waiter_find(T, KA, KAL, B, LK_SHARED, rg(5, 5)), w1);
	assert_null(lk_waiter_find(T, KA, KAL, B, LK_EXCL, rg(5, 5)));
	assert_null(lk_waiter_find(T, KA, KAL, B, LK_SHARED, rg(5, 6)));
	assert_null(lk_waiter_find(T, KA, KAL, C, LK_SHARED, rg(5, 5)));
	assert_int_equal(nwaiters(), 1);
}

/* Test 9: read locks share; a write lock is refused while they are held. */
static void test_tlock9_read_locks(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_SHARED, 0, 0), 0);
	assert_int_equal(L(B, LK_SHARED, 0, 0), 0);
	assert_int_equal(L(C, LK_SHARED, 10, 1), 0);
	assert_int_equal(L(C, LK_EXCL, 0, 1), -EAGAIN);
	assert_int_equal(TS(C, LK_EXCL, 100, 0), -EAGAIN);
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(L(C, LK_EXCL, 0, 1), -EAGAIN);	/* B still reads */
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(L(C, LK_EXCL, 0, 1), 0);
	assert_string_equal(held(C), "0-0X 10-10S");
}

/* Test 10: unlocking the middle of a range splits it. */
static void test_tlock10_split(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 3), 0);
	assert_int_equal(U(A, 1, 1), 0);
	assert_string_equal(held(A), "0-0X 2-2X");
	assert_int_equal(TS(B, LK_EXCL, 0, 1), -EAGAIN);
	assert_int_equal(TS(B, LK_EXCL, 1, 1), 0);
	assert_int_equal(TS(B, LK_EXCL, 2, 1), -EAGAIN);
	assert_int_equal(U(A, 0, 1), 0);
	assert_int_equal(U(A, 2, 1), 0);
	assert_int_equal(nlocks(), 0);

	assert_int_equal(L(A, LK_SHARED, 0, 0), 0);
	assert_int_equal(U(A, 5, 1), 0);
	assert_string_equal(held(A), "0-4S 6-eofS");
	assert_int_equal(U(A, MAX, 1), 0);		/* the last byte of EOF */
	assert_string_equal(held(A), "0-4S 6-18446744073709551614S");
	assert_int_equal(L(A, LK_SHARED, 5, 0), 0);	/* and back to one */
	assert_string_equal(held(A), "0-eofS");
}

/* Test 11: close releases everything the process held. */
static void test_tlock11_close_releases(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(A, LK_SHARED, 20, 0), 0);
	assert_int_equal(lk_lock(T, KB, KBL, A, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_share(T, KB, KBL, A, LK_SH_READ, LK_SH_WRITE), 0);
	assert_int_equal(L(D, LK_EXCL, 15, 1), 0);	/* same client, other owner */
	W(B, LK_EXCL, 5, 1, (void *)"b");
	assert_int_equal(nfiles(), 2);
	lk_owner_release(T, A);
	assert_int_equal(nev, 1);
	assert_int_equal(evs[0].kind, 'G');
	assert_string_equal(evs[0].priv, "b");
	assert_string_equal(held(A), "");
	assert_string_equal(held(D), "15-15X");
	assert_int_equal(lk_share(T, KB, KBL, C, LK_SH_WRITE, LK_SH_NONE), 0);
	assert_int_equal(nfiles(), 2);
}

/* Test 12: a signalled process: the blocked request is cancelled; that
 * never releases a lock, and nothing is granted to it later. */
static void test_tlock12_cancel(void **st)
{
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(B, LK_SHARED, 20, 10), 0);
	w = W(B, LK_EXCL, 0, 10, NULL);
	lk_cancel(T, w);
	assert_int_equal(nwaiters(), 0);
	assert_int_equal(nev, 0);
	assert_string_equal(held(A), "0-9X");
	assert_string_equal(held(B), "20-29S");
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(nev, 0);
	assert_string_equal(held(B), "20-29S");
	lk_cancel(T, NULL);
}

/* Upgrade and downgrade are atomic; a downgrade wakes shared waiters only. */
static void test_tlock_upgrade_downgrade(void **st)
{
	struct lk_lockinfo h;

	(void)st;
	assert_int_equal(L(A, LK_SHARED, 0, 11), 0);
	assert_int_equal(L(B, LK_SHARED, 5, 1), 0);
	/* Upgrade refused: A's shared lock is untouched. */
	assert_int_equal(lk_lock(T, KA, KAL, A, LK_EXCL, rg(0, 11), &h), -EAGAIN);
	assert_ptr_equal(h.owner, B);
	assert_int_equal(h.type, LK_SHARED);
	assert_true(h.range.start == 5 && h.range.end == 5);
	assert_string_equal(held(A), "0-10S");
	/* Partial upgrade around B. */
	assert_int_equal(L(A, LK_EXCL, 0, 5), 0);
	assert_string_equal(held(A), "0-4X 5-10S");
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(L(A, LK_EXCL, 0, 11), 0);
	assert_string_equal(held(A), "0-10X");

	/* Downgrade of the middle byte splits the exclusive lock. */
	W(B, LK_SHARED, 3, 1, (void *)"b");
	W(C, LK_EXCL, 3, 1, (void *)"c");
	W(D, LK_SHARED, 8, 1, (void *)"d");	/* same client as A: still blocked */
	assert_int_equal(L(A, LK_SHARED, 3, 1), 0);
	assert_string_equal(held(A), "0-2X 3-3S 4-10X");
	assert_int_equal(nev, 1);
	assert_string_equal(evs[0].priv, "b");
	assert_int_equal(nwaiters(), 2);
	/* Upgrading back is refused now (B reads byte 3). */
	assert_int_equal(L(A, LK_EXCL, 3, 1), -EAGAIN);
	assert_string_equal(held(A), "0-2X 3-3S 4-10X");
	/* Downgrade everything: D gets its byte. */
	assert_int_equal(L(A, LK_SHARED, 0, 11), 0);
	assert_string_equal(held(A), "0-10S");
	assert_int_equal(nev, 2);
	assert_string_equal(evs[1].priv, "d");
	assert_int_equal(nwaiters(), 1);
}

/* ==== two owners, locktest style ==== */

static void test_lt_type_matrix(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_SHARED, 0, 10), 0);
	assert_int_equal(L(B, LK_SHARED, 0, 10), 0);		/* R + R */
	assert_int_equal(L(C, LK_EXCL, 0, 10), -EAGAIN);	/* R + W */
	assert_int_equal(U(A, 0, 10), 0);
	assert_int_equal(U(B, 0, 10), 0);
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(B, LK_SHARED, 0, 10), -EAGAIN);	/* W + R */
	assert_int_equal(L(B, LK_EXCL, 0, 10), -EAGAIN);	/* W + W */
	assert_int_equal(L(B, LK_EXCL, 10, 10), 0);		/* disjoint */
}

static void test_lt_touching_vs_overlapping(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 10, 10), 0);		/* [10,19] */
	assert_int_equal(L(B, LK_EXCL, 20, 10), 0);		/* touches on the right */
	assert_int_equal(L(C, LK_EXCL, 0, 10), 0);		/* touches on the left */
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(U(C, 0, 0), 0);
	expect_holder(B, LK_EXCL, 19, 10, A, LK_EXCL, 10, 19);	/* one byte over */
	expect_holder(B, LK_SHARED, 1, 10, A, LK_EXCL, 10, 19);
	assert_int_equal(TS(B, LK_EXCL, 0, 10), 0);
	assert_int_equal(TS(B, LK_EXCL, 20, 0), 0);
	/* Touching ranges of two owners never merge. */
	assert_int_equal(L(B, LK_SHARED, 20, 0), 0);
	assert_string_equal(held(A), "10-19X");
	assert_string_equal(held(B), "20-eofS");
	/* One owner, touching, other type: no merge either. */
	assert_int_equal(L(A, LK_SHARED, 0, 10), 0);
	assert_string_equal(held(A), "0-9S 10-19X");
	/* Same type, overlapping: merged. */
	assert_int_equal(L(A, LK_SHARED, 5, 3), 0);
	assert_int_equal(L(A, LK_EXCL, 15, 5), 0);
	assert_string_equal(held(A), "0-9S 10-19X");
	assert_int_equal(L(A, LK_SHARED, 10, 10), 0);
	assert_string_equal(held(A), "0-19S");
}

/* Unlocking part of a range unblocks only what waits on that part. */
static void test_lt_partial_unlock(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 20), 0);
	W(B, LK_EXCL, 0, 10, (void *)"b");
	W(C, LK_EXCL, 10, 10, (void *)"c");
	W(D, LK_SHARED, 5, 10, (void *)"d");
	assert_int_equal(U(A, 0, 10), 0);
	assert_int_equal(nev, 1);
	assert_string_equal(evs[0].priv, "b");
	assert_string_equal(held(A), "10-19X");
	assert_int_equal(U(A, 10, 10), 0);
	assert_int_equal(nev, 2);
	assert_string_equal(evs[1].priv, "c");
	assert_int_equal(U(B, 0, 0), 0);	/* C still holds 10-14 */
	assert_int_equal(nev, 2);
	assert_int_equal(U(C, 10, 4), 0);
	assert_int_equal(nev, 2);		/* byte 14 still C's */
	assert_int_equal(U(C, 14, 1), 0);
	assert_int_equal(nev, 3);
	assert_string_equal(evs[2].priv, "d");
	assert_string_equal(held(D), "5-14S");
	assert_string_equal(held(C), "15-19X");
}

static void test_lt_owner_identity(void **st)
{
	struct lk_owner *a2, *x;
	struct lk_stats s;

	(void)st;
	assert_int_equal(lk_owner_get(T, C0, 1, "ohA", 3, &a2), 0);
	assert_ptr_equal(a2, A);			/* same (client, svid, oh) */
	lk_owner_put(T, a2);
	assert_int_equal(lk_owner_get(T, C0, 1, "ohA2", 4, &x), 0);	/* oh differs */
	assert_ptr_not_equal(x, A);
	assert_int_equal(L(A, LK_EXCL, 0, 1), 0);
	assert_int_equal(L(x, LK_EXCL, 0, 1), -EAGAIN);
	lk_owner_put(T, x);
	assert_int_equal(lk_owner_get(T, C0, 9, "ohA", 3, &x), 0);	/* svid differs */
	assert_int_equal(L(x, LK_EXCL, 0, 1), -EAGAIN);
	lk_owner_put(T, x);
	assert_int_equal(lk_owner_get(T, C1, 1, "ohA", 3, &x), 0);	/* client differs */
	assert_int_equal(L(x, LK_EXCL, 0, 1), -EAGAIN);
	lk_owner_put(T, x);
	assert_int_equal(lk_owner_get(T, C1, 7, NULL, 0, &x), 0);	/* empty oh */
	assert_ptr_equal(lk_owner_client(x), C1);
	assert_int_equal(lk_owner_svid(x), 7);
	/* The engine keeps an owner while it holds something. */
	assert_int_equal(L(x, LK_SHARED, 5, 1), 0);
	lk_owner_put(T, x);
	lk_client_stats(C1, &s);
	assert_int_equal(s.owners, 2);
	assert_int_equal(s.locks, 1);
	assert_int_equal(lk_owner_get(T, C1, 7, NULL, 0, &a2), 0);
	assert_ptr_equal(a2, x);
	assert_int_equal(U(a2, 0, 0), 0);
	lk_owner_put(T, a2);
	lk_client_stats(C1, &s);
	assert_int_equal(s.owners, 1);
	/* A client's owners are remembered by svid mod 4 (lk_owner_get):
	 * svid 1 and 5 with one oh are two owners whichever was found last. */
	assert_int_equal(lk_owner_get(T, C0, 1, "ohA", 3, &a2), 0);
	assert_ptr_equal(a2, A);
	assert_int_equal(lk_owner_get(T, C0, 5, "ohA", 3, &x), 0);
	assert_ptr_not_equal(x, A);
	assert_int_equal(L(x, LK_EXCL, 0, 1), -EAGAIN);	/* A still holds byte 0 */
	assert_int_equal(lk_owner_svid(x), 5);
	lk_owner_put(T, x);
	lk_owner_put(T, a2);
	{
		size_t len;
		const void *oh = lk_owner_oh(B, &len);

		assert_int_equal(len, 3);
		assert_memory_equal(oh, "ohB", 3);
		assert_string_equal(lk_client_priv(C1), "c1");
	}
}

/* The table remembers the file last found (lock.c file_lookup): keys of
 * one length that differ are two files whichever was found last, and a
 * file freed and made again is found anew. */
static void test_file_memo(void **st)
{
	(void)st;
	assert_int_equal(lk_lock(T, KA, KAL, A, LK_EXCL, rg(0, 10), NULL), 0);
	assert_int_equal(lk_lock(T, KB, KBL, B, LK_EXCL, rg(0, 10), NULL), 0);
	assert_int_equal(nfiles(), 2);
	assert_int_equal(lk_test(T, KA, KAL, B, LK_EXCL, rg(0, 1), NULL), -EAGAIN);
	assert_int_equal(lk_test(T, KB, KBL, A, LK_EXCL, rg(0, 1), NULL), -EAGAIN);
	assert_true(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 10)));
	assert_false(lk_holds(T, KB, KBL, A, LK_EXCL, rg(0, 10)));
	assert_int_equal(lk_unlock(T, KA, KAL, A, rg(0, 10)), 0);
	assert_int_equal(nfiles(), 1);
	assert_int_equal(lk_lock(T, KA, KAL, C, LK_EXCL, rg(0, 10), NULL), 0);
	assert_int_equal(nfiles(), 2);
	assert_int_equal(lk_test(T, KA, KAL, B, LK_EXCL, rg(0, 1), NULL), -EAGAIN);
	assert_int_equal(lk_unlock(T, KB, KBL, B, rg(0, 10)), 0);
	assert_int_equal(lk_unlock(T, KA, KAL, C, rg(0, 10)), 0);
	assert_int_equal(nfiles(), 0);
}

static void test_bad_arguments(void **st)
{
	struct lk_range bad = { 5, 4 };
	struct lk_waiter *w;
	char big[LK_KEY_MAX + 1];
	struct lk_owner *x;

	(void)st;
	memset(big, 'k', sizeof(big));
	assert_int_equal(lk_lock(T, KA, 0, A, LK_EXCL, rg(0, 1), NULL), -EINVAL);
	assert_int_equal(lk_lock(T, big, sizeof(big), A, LK_EXCL, rg(0, 1), NULL), -EINVAL);
	assert_int_equal(lk_lock(T, big, LK_KEY_MAX, A, LK_EXCL, rg(0, 1), NULL), 0);
	assert_int_equal(lk_lock(T, KA, KAL, A, LK_EXCL, bad, NULL), -EINVAL);
	assert_int_equal(lk_lock(T, KA, KAL, A, 3, rg(0, 1), NULL), -EINVAL);
	assert_int_equal(lk_lock(T, KA, KAL, NULL, LK_EXCL, rg(0, 1), NULL), -EINVAL);
	assert_int_equal(lk_unlock(T, KA, KAL, A, bad), -EINVAL);
	assert_int_equal(lk_test(T, KA, KAL, A, 0, rg(0, 1), NULL), -EINVAL);
	assert_int_equal(lk_lock_wait(T, KA, KAL, A, LK_EXCL, bad, NULL, &w, NULL), -EINVAL);
	assert_null(w);
	assert_int_equal(lk_share(T, KA, KAL, A, 4, 0), -EINVAL);
	assert_int_equal(lk_share(T, KA, KAL, A, 0, 4), -EINVAL);
	assert_int_equal(lk_owner_get(T, C0, 1, NULL, 3, &x), -EINVAL);
	assert_int_equal(lk_owner_get(T, C0, 1, big, LK_OH_MAX + 1, &x), -EINVAL);
	assert_int_equal(nfiles(), 1);
}

/* ==== share reservations ==== */

static void test_share_matrix(void **st)
{
	(void)st;
	for (unsigned m1 = 0; m1 < 4; m1++)
	for (unsigned d1 = 0; d1 < 4; d1++)
	for (unsigned m2 = 0; m2 < 4; m2++)
	for (unsigned d2 = 0; d2 < 4; d2++) {
		bool conflict = (m2 & d1) || (d2 & m1);

		assert_int_equal(lk_share(T, KA, KAL, A, m1, d1), 0);
		assert_int_equal(lk_share(T, KA, KAL, B, m2, d2), conflict ? -EAGAIN : 0);
		/* The same owner never conflicts with itself. */
		if (conflict)
			assert_int_equal(lk_share(T, KA, KAL, A, m2, d2), 0);
		assert_int_equal(lk_unshare(T, KA, KAL, A), 0);
		assert_int_equal(lk_unshare(T, KA, KAL, B), 0);
		assert_int_equal(nfiles(), 0);
	}
}

static void test_share_semantics(void **st)
{
	struct lk_stats s;

	(void)st;
	/* A reader that denies writers. */
	assert_int_equal(lk_share(T, KA, KAL, A, LK_SH_READ, LK_SH_WRITE), 0);
	assert_int_equal(lk_share(T, KA, KAL, B, LK_SH_READ, LK_SH_NONE), 0);
	assert_int_equal(lk_share(T, KA, KAL, C, LK_SH_WRITE, LK_SH_NONE), -EAGAIN);
	assert_int_equal(lk_share(T, KA, KAL, C, LK_SH_READ, LK_SH_READ), -EAGAIN);
	/* A changes its own reservation; B's read now blocks A denying reads. */
	assert_int_equal(lk_share(T, KA, KAL, A, LK_SH_BOTH, LK_SH_READ), -EAGAIN);
	assert_int_equal(lk_share(T, KA, KAL, A, LK_SH_READ, LK_SH_NONE), 0);
	assert_int_equal(lk_share(T, KA, KAL, C, LK_SH_WRITE, LK_SH_NONE), 0);
	/* Shares and byte locks are independent; shares are per file. */
	assert_int_equal(L(D, LK_EXCL, 0, 0), 0);
	assert_int_equal(lk_share(T, KB, KBL, C, LK_SH_BOTH, LK_SH_BOTH), 0);
	lk_table_stats(T, &s);
	assert_int_equal(s.shares, 4);
	/* Releasing a client drops its shares. */
	lk_client_release(T, C2);
	assert_int_equal(lk_share(T, KB, KBL, B, LK_SH_BOTH, LK_SH_BOTH), 0);
	assert_int_equal(lk_share(T, KA, KAL, B, LK_SH_READ, LK_SH_WRITE), 0);
	assert_int_equal(lk_unshare(T, KB, KBL, D), 0);		/* none: fine */
	lk_table_stats(T, &s);
	assert_int_equal(s.shares, 3);
}

/* lk_holds / lk_share_holds: "would this lock change nothing?", what NLM
 * asks of a reclaim that repeats a lock the owner holds. */
static void test_holds(void **st)
{
	(void)st;
	assert_false(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 10)));	/* no file */
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(A, LK_EXCL, 10, 10), 0);		/* merged: 0-19 */
	assert_true(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 20)));
	assert_true(lk_holds(T, KA, KAL, A, LK_EXCL, rg(5, 1)));
	assert_false(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 21)));	/* one byte more */
	assert_false(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 0)));	/* to EOF */
	assert_false(lk_holds(T, KA, KAL, A, LK_SHARED, rg(0, 20))); /* other type */
	assert_false(lk_holds(T, KA, KAL, D, LK_EXCL, rg(0, 20)));	/* same client */
	assert_false(lk_holds(T, KB, KBL, A, LK_EXCL, rg(0, 20)));	/* other file */
	assert_int_equal(L(A, LK_SHARED, 30, 0), 0);
	assert_true(lk_holds(T, KA, KAL, A, LK_SHARED, rg(MAX, 1)));
	assert_false(lk_holds(T, KA, KAL, A, LK_SHARED, rg(19, 12)));	/* gap 20-29 */
	assert_int_equal(U(A, 5, 1), 0);
	assert_false(lk_holds(T, KA, KAL, A, LK_EXCL, rg(0, 20)));
	assert_false(lk_holds(NULL, KA, KAL, A, LK_EXCL, rg(0, 1)));
	assert_int_equal(nlocks(), 3);			/* it changed nothing */

	assert_false(lk_share_holds(T, KA, KAL, A, LK_SH_READ, LK_SH_NONE));
	assert_int_equal(lk_share(T, KA, KAL, A, LK_SH_READ, LK_SH_WRITE), 0);
	assert_true(lk_share_holds(T, KA, KAL, A, LK_SH_READ, LK_SH_WRITE));
	assert_false(lk_share_holds(T, KA, KAL, A, LK_SH_READ, LK_SH_NONE));
	assert_false(lk_share_holds(T, KA, KAL, D, LK_SH_READ, LK_SH_WRITE));
	assert_false(lk_share_holds(T, KB, KBL, A, LK_SH_READ, LK_SH_WRITE));
}

/* lk_holds_any: any byte of the range, either type (NLM keeps a grant it
 * cannot record when the owner held some of its range before). */
static void test_holds_any(void **st)
{
	(void)st;
	assert_false(lk_holds_any(T, KA, KAL, A, rg(0, 10)));	/* no file */
	assert_int_equal(L(A, LK_EXCL, 10, 10), 0);		/* 10-19 */
	assert_int_equal(L(A, LK_SHARED, 40, 10), 0);		/* 40-49 */
	assert_false(lk_holds_any(T, KA, KAL, A, rg(0, 10)));	/* touching on the left */
	assert_true(lk_holds_any(T, KA, KAL, A, rg(0, 11)));
	assert_true(lk_holds_any(T, KA, KAL, A, rg(19, 1)));
	assert_false(lk_holds_any(T, KA, KAL, A, rg(20, 20)));	/* the gap 20-39 */
	assert_true(lk_holds_any(T, KA, KAL, A, rg(20, 21)));	/* reaches 40, shared */
	assert_true(lk_holds_any(T, KA, KAL, A, rg(0, 0)));	/* to EOF */
	assert_false(lk_holds_any(T, KA, KAL, A, rg(50, 0)));	/* past the last */
	assert_false(lk_holds_any(T, KA, KAL, D, rg(0, 0)));	/* another owner */
	assert_false(lk_holds_any(T, KB, KBL, A, rg(0, 0)));	/* another file */
	assert_false(lk_holds_any(NULL, KA, KAL, A, rg(0, 1)));
	assert_int_equal(nlocks(), 2);			/* it changed nothing */
}

/* ==== deadlocks, caps, cancel, wake order ==== */

static void test_deadlock_2cycle(void **st)
{
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 1), 0);
	assert_int_equal(L(B, LK_EXCL, 1, 1), 0);
	W(A, LK_EXCL, 1, 1, NULL);
	assert_int_equal(lk_lock_wait(T, KA, KAL, B, LK_EXCL, rg(0, 1), NULL, &w, NULL),
			 -EDEADLK);
	assert_null(w);
	assert_int_equal(nwaiters(), 1);
	assert_int_equal(L(B, LK_EXCL, 0, 1), -EAGAIN);
	/* Not a cycle: C waits for A, then B for C's nothing. */
	W(C, LK_EXCL, 0, 1, NULL);
	assert_int_equal(U(B, 0, 0), 0);	/* A gets byte 1 */
	assert_int_equal(nev, 1);
	assert_ptr_equal(evs[0].li.owner, A);
	assert_string_equal(held(A), "0-1X");
}

static void test_deadlock_shared_upgrade(void **st)
{
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(L(A, LK_SHARED, 0, 10), 0);
	assert_int_equal(L(B, LK_SHARED, 0, 10), 0);
	W(A, LK_EXCL, 0, 10, NULL);
	assert_int_equal(lk_lock_wait(T, KA, KAL, B, LK_EXCL, rg(5, 1), NULL, &w, NULL),
			 -EDEADLK);
	/* B gives up its read lock: A's upgrade goes through. */
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(nev, 1);
	assert_string_equal(held(A), "0-9X");
}

static void test_deadlock_3cycle(void **st)
{
	static const char K1[] = "f1", K2[] = "f2", K3[] = "f3", K4[] = "f4";
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(lk_lock(T, K1, 2, A, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock(T, K2, 2, B, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock(T, K3, 2, C, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock(T, K4, 2, D, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock_wait(T, K2, 2, A, LK_EXCL, rg(0, 1), NULL, &w, NULL),
			 -EINPROGRESS);
	assert_int_equal(lk_lock_wait(T, K3, 2, B, LK_SHARED, rg(9, 1), NULL, &w, NULL),
			 -EINPROGRESS);
	/* C -> A -> B -> C */
	assert_int_equal(lk_lock_wait(T, K1, 2, C, LK_EXCL, rg(5, 0), NULL, &w, NULL),
			 -EDEADLK);
	/* C -> D: D waits for nobody */
	assert_int_equal(lk_lock_wait(T, K4, 2, C, LK_EXCL, rg(5, 0), NULL, &w, NULL),
			 -EINPROGRESS);
	/* D -> C -> D */
	assert_int_equal(lk_lock_wait(T, K3, 2, D, LK_EXCL, rg(0, 0), NULL, &w, NULL),
			 -EDEADLK);
	/* D -> A -> B -> C -> D */
	assert_int_equal(lk_lock_wait(T, K1, 2, D, LK_EXCL, rg(0, 0), NULL, &w, NULL),
			 -EDEADLK);
	assert_int_equal(nwaiters(), 3);
	lk_client_release(T, C2);	/* C's lock and waiter go: B gets f3 */
	assert_int_equal(nev, 2);
	assert_int_equal(evs[0].kind + evs[1].kind, 'G' + 'D');
}

static void test_waiter_cap(void **st)
{
	struct lk_waiter *w, *w1;

	(void)st;
	assert_int_equal(L(C, LK_EXCL, 0, 0), 0);
	w1 = W(A, LK_EXCL, 0, 1, NULL);
	W(A, LK_EXCL, 1, 1, NULL);
	assert_int_equal(lk_lock_wait(T, KA, KAL, A, LK_EXCL, rg(2, 1), NULL, &w, NULL),
			 -ENOLCK);
	assert_null(w);
	/* D has the same client: the cap is per client. */
	assert_int_equal(lk_lock_wait(T, KA, KAL, D, LK_EXCL, rg(2, 1), NULL, &w, NULL),
			 -ENOLCK);
	W(B, LK_EXCL, 2, 1, NULL);		/* another client */
	assert_ptr_equal(W(A, LK_EXCL, 0, 1, NULL), w1);	/* retransmission */
	/* Non-blocking requests are not capped. */
	assert_int_equal(L(D, LK_EXCL, 3, 1), -EAGAIN);
	lk_cancel(T, w1);
	W(D, LK_EXCL, 2, 1, NULL);
	assert_int_equal(nwaiters(), 3);
}

static void test_cancel_semantics(void **st)
{
	struct lk_waiter *w;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(B, LK_SHARED, 20, 5), 0);
	w = W(B, LK_EXCL, 0, 25, NULL);		/* covers B's own lock too */
	lk_cancel(T, w);
	assert_string_equal(held(B), "20-24S");
	assert_string_equal(held(A), "0-9X");
	assert_null(lk_waiter_find(T, KA, KAL, B, LK_EXCL, rg(0, 25)));
	/* Cancel of the only thing on a file frees the file. */
	assert_int_equal(lk_lock(T, KB, KBL, A, LK_EXCL, rg(0, 1), NULL), 0);
	assert_int_equal(lk_lock_wait(T, KB, KBL, B, LK_EXCL, rg(0, 1), NULL, &w, NULL),
			 -EINPROGRESS);
	assert_int_equal(lk_unlock(T, KB, KBL, A, rg(0, 0)), 0);	/* granted */
	assert_int_equal(nev, 1);
	lk_cancel(T, lk_waiter_find(T, KB, KBL, B, LK_EXCL, rg(0, 1)));	/* NULL: no-op */
	assert_string_equal(held(B), "20-24S");
	assert_int_equal(lk_unlock(T, KB, KBL, B, rg(0, 0)), 0);
	assert_int_equal(nfiles(), 1);
}

static void test_fifo_order(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	W(B, LK_EXCL, 0, 10, (void *)"b");
	W(C, LK_EXCL, 0, 10, (void *)"c");
	W(D, LK_SHARED, 5, 1, (void *)"d");
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(nev, 1);
	assert_string_equal(evs[0].priv, "b");
	assert_int_equal(U(B, 0, 0), 0);
	assert_int_equal(nev, 2);
	assert_string_equal(evs[1].priv, "c");
	assert_int_equal(U(C, 0, 0), 0);
	assert_int_equal(nev, 3);
	assert_string_equal(evs[2].priv, "d");
}

static void test_fifo_shared_batch(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	W(B, LK_SHARED, 0, 10, (void *)"b");
	W(C, LK_EXCL, 0, 1, (void *)"c");
	W(D, LK_SHARED, 3, 1, (void *)"d");
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(nev, 2);		/* both readers, in order; not C */
	assert_string_equal(evs[0].priv, "b");
	assert_string_equal(evs[1].priv, "d");
	assert_int_equal(nwaiters(), 1);
}

static void test_wake_only_satisfiable(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(C, LK_EXCL, 20, 1), 0);
	W(B, LK_EXCL, 0, 1, (void *)"b0");
	W(B, LK_EXCL, 9, 1, (void *)"b9");
	W(D, LK_EXCL, 20, 1, (void *)"d20");
	assert_int_equal(U(A, 0, 1), 0);
	assert_int_equal(nev, 1);
	assert_string_equal(evs[0].priv, "b0");
	assert_int_equal(U(A, 5, 1), 0);	/* nobody waits there */
	assert_int_equal(nev, 1);
	assert_int_equal(U(A, 1, 9), 0);
	assert_int_equal(nev, 2);
	assert_string_equal(evs[1].priv, "b9");
	assert_int_equal(nwaiters(), 1);
	/* A grant that merges with the owner's own lock is fine. */
	assert_string_equal(held(B), "0-0X 9-9X");
}

/* The client answers GRANTED with DENIED: take the lock back with an
 * ordinary unlock; the next waiter gets it.  Also from inside on_grant. */
static void test_grant_back(void **st)
{
	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	W(B, LK_EXCL, 0, 10, (void *)"b");
	W(C, LK_EXCL, 5, 1, (void *)"c");
	assert_int_equal(U(A, 0, 0), 0);
	assert_int_equal(nev, 1);
	assert_int_equal(U(B, 0, 10), 0);
	assert_int_equal(nev, 2);
	assert_string_equal(evs[1].priv, "c");
	assert_string_equal(held(B), "");

	/* C holds byte 5.  B, then D, wait for it; B's grant is refused from
	 * inside on_grant, and D's grant is reported after B's callback. */
	assert_string_equal(held(C), "5-5X");
	W(B, LK_EXCL, 5, 1, (void *)"b2");
	W(D, LK_EXCL, 5, 1, (void *)"d2");
	unlock_in_cb = B;
	assert_int_equal(U(C, 0, 0), 0);
	assert_int_equal(nev, 4);
	assert_string_equal(evs[2].priv, "b2");
	assert_string_equal(evs[3].priv, "d2");
	assert_string_equal(held(B), "");
	assert_string_equal(held(D), "5-5X");
}

static void test_client_release_and_free(void **st)
{
	struct lk_stats s;

	(void)st;
	assert_int_equal(L(A, LK_EXCL, 0, 10), 0);
	assert_int_equal(L(D, LK_SHARED, 20, 10), 0);
	assert_int_equal(lk_lock(T, KB, KBL, D, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_share(T, KB, KBL, A, LK_SH_READ, LK_SH_BOTH), 0);
	assert_int_equal(L(B, LK_EXCL, 40, 1), 0);
	assert_int_equal(L(C, LK_EXCL, 50, 1), 0);
	W(A, LK_EXCL, 50, 1, (void *)"a");
	W(B, LK_EXCL, 0, 30, (void *)"b");
	lk_client_stats(C0, &s);
	assert_int_equal(s.locks, 3);
	assert_int_equal(s.waiters, 1);
	assert_int_equal(s.shares, 1);
	lk_client_release(T, C0);
	assert_int_equal(nev, 2);
	assert_int_equal(evs[0].kind, 'D');
	assert_string_equal(evs[0].priv, "a");
	assert_int_equal(evs[1].kind, 'G');
	assert_string_equal(evs[1].priv, "b");
	lk_client_stats(C0, &s);
	assert_int_equal(s.locks + s.waiters + s.shares, 0);
	assert_int_equal(s.owners, 2);		/* A and D: the fixture holds them */
	assert_int_equal(lk_lock(T, KB, KBL, C, LK_EXCL, rg(0, 0), NULL), 0);
	/* The client can lock again, then is freed for good. */
	assert_int_equal(L(A, LK_EXCL, 100, 1), 0);
	lk_client_free(T, C0);
	assert_string_equal(held(A), "");
	lk_table_stats(T, &s);
	assert_int_equal(s.clients, 3);		/* until the fixture puts A and D */
	lk_owner_put(T, A);
	lk_owner_put(T, D);
	lk_table_stats(T, &s);
	assert_int_equal(s.clients, 2);
	assert_int_equal(s.owners, 2);
	A = D = NULL;
	/* A fresh client with nothing pinned goes at once. */
	{
		struct lk_client *c;
		struct lk_owner *o;

		assert_int_equal(lk_client_new(T, NULL, &c), 0);
		assert_int_equal(lk_owner_get(T, c, 1, "x", 1, &o), 0);
		assert_int_equal(lk_lock(T, "KZ", 2, o, LK_SHARED, rg(50, 1), NULL), 0);
		lk_owner_put(T, o);
		lk_client_free(T, c);
		lk_table_stats(T, &s);
		assert_int_equal(s.clients, 2);
	}
}

static bool match_prefix(void *arg, const struct lk_owner *o, const void *key, size_t len)
{
	size_t n = strlen(arg);

	(void)o;
	return len >= n && memcmp(key, arg, n) == 0;
}

static bool match_owner_b(void *arg, const struct lk_owner *o, const void *key, size_t len)
{
	(void)arg;
	(void)key;
	(void)len;
	return o == B;
}

static void test_release_matching(void **st)
{
	struct lk_stats s;

	(void)st;
	assert_int_equal(lk_lock(T, "fs1/a", 5, A, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock(T, "fs1/b", 5, B, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_lock(T, "fs2/a", 5, A, LK_EXCL, rg(0, 0), NULL), 0);
	assert_int_equal(lk_share(T, "fs1/c", 5, C, LK_SH_READ, LK_SH_NONE), 0);
	assert_int_equal(lk_lock(T, "fs2/b", 5, B, LK_EXCL, rg(0, 0), NULL), 0);
	lk_release_matching(T, match_prefix, (void *)"fs1/");
	lk_table_stats(T, &s);
	assert_int_equal(s.locks, 2);
	assert_int_equal(s.shares, 0);
	assert_int_equal(s.files, 2);
	lk_release_matching(T, match_owner_b, NULL);
	lk_table_stats(T, &s);
	assert_int_equal(s.locks, 1);
	assert_int_equal(s.files, 1);
}

static int count_one(void *arg, const struct lk_lockinfo *li)
{
	(void)li;
	(*(int *)arg)++;
	return 0;
}

static int stop_at_two(void *arg, const struct lk_lockinfo *li)
{
	(void)li;
	return ++(*(int *)arg) == 2 ? 42 : 0;
}

static void test_iteration(void **st)
{
	int n = 0;

	(void)st;
	for (int i = 0; i < 10; i++)
		assert_int_equal(L(i & 1 ? A : B, LK_SHARED, (uint64_t)i * 2, 1), 0);
	assert_int_equal(lk_lock(T, KB, KBL, D, LK_SHARED, rg(0, 0), NULL), 0);
	W(C, LK_EXCL, 0, 0, NULL);
	assert_int_equal(lk_foreach_lock(T, count_one, &n), 0);
	assert_int_equal(n, 11);
	n = 0;
	assert_int_equal(lk_client_foreach_lock(C0, count_one, &n), 0);
	assert_int_equal(n, 6);		/* A's five + D's one */
	n = 0;
	assert_int_equal(lk_foreach_lock(T, stop_at_two, &n), 42);
	n = 0;
	assert_int_equal(lk_foreach_waiter(T, count_one, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(nfiles(), 2);
}

/* Many locks on one file: tree shape and search stay right (checked by
 * lk_table_check), including many overlapping shared locks. */
static void test_many_locks(void **st)
{
	struct lk_owner *o[64];

	(void)st;
	for (int i = 0; i < 5000; i++)
		assert_int_equal(L(A, LK_EXCL, (uint64_t)i * 2, 1), 0);
	assert_int_equal(nlocks(), 5000);
	check_table();
	for (int i = 0; i < 5000; i += 2)
		assert_int_equal(U(A, (uint64_t)i * 2, 1), 0);
	assert_int_equal(nlocks(), 2500);
	assert_int_equal(L(A, LK_EXCL, 0, 0), 0);	/* swallows them all */
	assert_int_equal(nlocks(), 1);
	assert_int_equal(U(A, 0, 0), 0);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(lk_owner_get(T, C1, (uint32_t)i + 100, NULL, 0, &o[i]), 0);
		assert_int_equal(L(o[i], LK_SHARED, (uint64_t)i, 0), 0);
	}
	assert_int_equal(L(A, LK_EXCL, 3, 1), -EAGAIN);
	assert_int_equal(L(A, LK_SHARED, 3, 1), 0);
	assert_int_equal(L(A, LK_EXCL, 0, 1), -EAGAIN);
	check_table();
	for (int i = 0; i < 64; i++)
		lk_owner_put(T, o[i]);
	lk_client_release(T, C1);
	assert_int_equal(L(C, LK_EXCL, 4, 3), 0);
}

/* ==== allocation failure ==== */

struct snap {
	char buf[4096];
	size_t len;
};

static int snap_lock(void *arg, const struct lk_lockinfo *li)
{
	struct snap *s = arg;

	s->len += (size_t)snprintf(s->buf + s->len, sizeof(s->buf) - s->len,
				   "%.*s:%p:%d:%llx-%llx;", (int)li->keylen, (const char *)li->key,
				   (void *)li->owner, li->type,
				   (unsigned long long)li->range.start,
				   (unsigned long long)li->range.end);
	return 0;
}

static void snapshot(struct snap *s)
{
	struct lk_stats st;

	s->len = 0;
	lk_foreach_lock(T, snap_lock, s);
	s->len += (size_t)snprintf(s->buf + s->len, sizeof(s->buf) - s->len, "|W|");
	lk_foreach_waiter(T, snap_lock, s);
	lk_table_stats(T, &st);
	s->len += (size_t)snprintf(s->buf + s->len, sizeof(s->buf) - s->len,
				   "|%zu %zu %zu %zu %zu %zu", st.locks, st.waiters, st.shares,
				   st.files, st.owners, st.clients);
}

enum fop { F_LOCK_NEW_FILE, F_UPGRADE_MIDDLE, F_UNLOCK_MIDDLE, F_WAIT, F_SHARE,
	   F_OWNER, F_CLIENT, F_DOWNGRADE_MIDDLE };

static int run_fop(enum fop op)
{
	struct lk_waiter *w;
	struct lk_owner *o;
	struct lk_client *c;
	int rc;

	switch (op) {
	case F_LOCK_NEW_FILE:
		return lk_lock(T, KB, KBL, A, LK_EXCL, rg(3, 4), NULL);
	case F_UPGRADE_MIDDLE:
		return L(A, LK_EXCL, 40, 2);
	case F_UNLOCK_MIDDLE:
		return U(A, 45, 1);
	case F_DOWNGRADE_MIDDLE:
		return L(B, LK_SHARED, 205, 1);
	case F_WAIT:
		return lk_lock_wait(T, KA, KAL, C, LK_EXCL, rg(0, 0), NULL, &w, NULL);
	case F_SHARE:
		return lk_share(T, "new", 3, C, LK_SH_READ, LK_SH_READ);
	case F_OWNER:
		rc = lk_owner_get(T, C1, 77, "new owner", 9, &o);
		if (!rc) {
			rc = lk_lock(T, KA, KAL, o, LK_SHARED, rg(1000, 1), NULL);
			lk_owner_put(T, o);
		}
		return rc;
	case F_CLIENT:
		rc = lk_client_new(T, NULL, &c);
		if (!rc)
			lk_client_free(T, c);
		return rc;
	}
	return -EINVAL;
}

static void test_alloc_failure(void **st)
{
	static const enum fop ops[] = {
		F_LOCK_NEW_FILE, F_UPGRADE_MIDDLE, F_UNLOCK_MIDDLE, F_DOWNGRADE_MIDDLE,
		F_WAIT, F_SHARE, F_OWNER, F_CLIENT,
	};
	static struct snap before, after;

	(void)st;
	assert_int_equal(L(A, LK_SHARED, 30, 30), 0);	/* [30,59] */
	assert_int_equal(L(B, LK_EXCL, 200, 10), 0);
	W(D, LK_SHARED, 205, 1, NULL);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		int rc, failures = 0;

		for (long n = 0;; n++) {
			snapshot(&before);
			al_fail_at = al_calls + n;
			rc = run_fop(ops[i]);
			al_fail_at = -1;
			if (rc != -ENOMEM)
				break;
			failures++;
			snapshot(&after);
			assert_string_equal(before.buf, after.buf);
			check_table();
		}
		assert_true(rc == 0 || rc == -EINPROGRESS);
		assert_true(failures >= 1);
		check_table();
	}
	assert_string_equal(held(A), "30-39S 40-41X 42-44S 46-59S");
	assert_int_equal(nev, 1);		/* D granted by B's downgrade */

	/* The table itself. */
	{
		struct lk_table_opts o = { .allocator = &test_al };
		struct lk_table *t2;

		for (long n = 0; n < 3; n++) {
			al_fail_at = al_calls + n;
			assert_int_equal(lk_table_new(&o, &t2), -ENOMEM);
			assert_null(t2);
		}
		al_fail_at = -1;
		assert_int_equal(lk_table_new(&o, &t2), 0);
		lk_table_free(t2);
	}
}

/*
 * Locks that start past every lock of their file, with a gap (how a journal
 * replays a snapshot, file by file in start order), take the engine's
 * append path (lk_lock: file_past_end, bs_insert_last, bo_insert_after).
 * The table must be exactly what the general path makes: trees, max ends,
 * the owners' index, merges, and -ENOMEM leaving it as it was.
 */
static void test_append_past_end(void **st)
{
	struct lk_owner *own[4] = { A, B, C, D };
	static struct snap before, after;
	int rc;

	(void)st;
	/* 4 owners x 12 locks, interleaved, 2 bytes apart: each owner passes
	 * OWNER_SCAN_MAX and is indexed in by_owner on the way. */
	for (int i = 0; i < 48; i++) {
		assert_int_equal(L(own[i % 4], i % 3 ? LK_EXCL : LK_SHARED, 2 * (uint64_t)i, 1), 0);
		check_table();
	}
	assert_string_equal(held(A), "0-0S 8-8X 16-16X 24-24S 32-32X 40-40X 48-48S 56-56X "
			    "64-64X 72-72S 80-80X 88-88X");
	/* The max ends above the last node: D's exclusive byte 94 conflicts. */
	assert_int_equal(TS(A, LK_SHARED, 94, 1), -EAGAIN);
	assert_int_equal(TS(A, LK_SHARED, 95, 1), 0);

	/* Touching the last lock (no gap): the general path merges it. */
	assert_int_equal(L(D, LK_EXCL, 95, 1), 0);
	assert_string_equal(held(D), "6-6S 14-14X 22-22X 30-30S 38-38X 46-46X 54-54S 62-62X "
			    "70-70X 78-78S 86-86X 94-95X");
	check_table();

	/* A's most recent lock (97, in the middle) is not its last in the
	 * file (200): the next append of A must not go right after it. */
	assert_int_equal(L(A, LK_EXCL, 200, 1), 0);
	assert_int_equal(L(A, LK_EXCL, 97, 1), 0);
	assert_int_equal(L(A, LK_EXCL, 300, 1), 0);
	check_table();
	assert_int_equal(U(A, 200, 1), 0);
	check_table();
	assert_int_equal(TS(B, LK_SHARED, 300, 1), -EAGAIN);
	assert_int_equal(TS(B, LK_SHARED, 200, 1), 0);

	/* Unlocks in the middle of the appended run keep the trees right. */
	for (int i = 0; i < 48; i += 5) {
		assert_int_equal(U(own[i % 4], 2 * (uint64_t)i, 1), 0);
		check_table();
	}

	/* Out of memory on the append: nothing changes. */
	for (long n = 0;; n++) {
		snapshot(&before);
		al_fail_at = al_calls + n;
		rc = L(B, LK_SHARED, 1000, 1);
		al_fail_at = -1;
		if (rc != -ENOMEM)
			break;
		snapshot(&after);
		assert_string_equal(before.buf, after.buf);
		check_table();
	}
	assert_int_equal(rc, 0);
	check_table();
}

/* ==== randomized differential test ==== */

#define NF 3		/* files */
#define NO 6		/* owners; owner i belongs to client i % NC */
#define NC 3
#define NB 65		/* cells 0..63, and 64 = [64, EOF] */
#define CAP 3		/* waiters per client */
#define MQ 64

static uint64_t rng;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct mw {
	int id, o, type, cs, ce;
	struct lk_waiter *w;
};

static uint8_t mh[NF][NO][NB];		/* model: per byte, what each owner holds */
static struct mw mq[NF][MQ];		/* model: waiter queues */
static int mqn[NF];
static struct lk_client *ec[NC];
static struct lk_owner *eo[NO];
static char fkey[NF][16];
static int next_id = 1;

/* engine events this op, and what the model expects */
static int egr[NF][MQ], negr[NF], edrop[NO * NF * MQ], nedrop;
static int xgr[NF][MQ], nxgr[NF], xdrop[NO * NF * MQ], nxdrop;

static int key_file(const struct lk_lockinfo *li)
{
	for (int f = 0; f < NF; f++)
		if (li->keylen == strlen(fkey[f]) && memcmp(li->key, fkey[f], li->keylen) == 0)
			return f;
	fail_msg("unknown key");
	return -1;
}

static int owner_idx(const struct lk_owner *o)
{
	for (int i = 0; i < NO; i++)
		if (eo[i] == o)
			return i;
	fail_msg("unknown owner");
	return -1;
}

static void rnd_grant(void *arg, struct lk_waiter *w)
{
	struct lk_lockinfo li;
	int f;

	(void)arg;
	lk_waiter_info(w, &li);
	f = key_file(&li);
	assert_true(negr[f] < MQ);
	egr[f][negr[f]++] = (int)(intptr_t)lk_waiter_priv(w);
}

static void rnd_drop(void *arg, struct lk_waiter *w)
{
	(void)arg;
	edrop[nedrop++] = (int)(intptr_t)lk_waiter_priv(w);
}

static struct lk_range cells_range(int cs, int ce)
{
	struct lk_range r = { (uint64_t)cs, ce == NB - 1 ? MAX : (uint64_t)ce };

	return r;
}

static int cell_of(uint64_t v)
{
	return v >= NB - 1 ? NB - 1 : (int)v;
}

static bool m_conflict_by(int f, int o, int type, int cs, int ce, int other)
{
	if (other == o)
		return false;
	for (int c = cs; c <= ce; c++) {
		uint8_t h = mh[f][other][c];

		if (h && (type == LK_EXCL || h == LK_EXCL))
			return true;
	}
	return false;
}

static bool m_conflict(int f, int o, int type, int cs, int ce)
{
	for (int other = 0; other < NO; other++)
		if (m_conflict_by(f, o, type, cs, ce, other))
			return true;
	return false;
}

static void m_set(int f, int o, int type, int cs, int ce)
{
	for (int c = cs; c <= ce; c++)
		mh[f][o][c] = (uint8_t)type;
}

static void m_qremove(int f, int i)
{
	memmove(&mq[f][i], &mq[f][i + 1], (size_t)(mqn[f] - i - 1) * sizeof(mq[f][0]));
	mqn[f]--;
}

/* Repeatedly grant the first satisfiable waiter, in FIFO order. */
static void m_wake(int f)
{
	for (;;) {
		int i;

		for (i = 0; i < mqn[f]; i++)
			if (!m_conflict(f, mq[f][i].o, mq[f][i].type, mq[f][i].cs, mq[f][i].ce))
				break;
		if (i == mqn[f])
			return;
		m_set(f, mq[f][i].o, mq[f][i].type, mq[f][i].cs, mq[f][i].ce);
		xgr[f][nxgr[f]++] = mq[f][i].id;
		m_qremove(f, i);
	}
}

static int m_client_queued(int c)
{
	int n = 0;

	for (int f = 0; f < NF; f++)
		for (int i = 0; i < mqn[f]; i++)
			n += mq[f][i].o % NC == c;
	return n;
}

static bool m_deadlock(int f, int o, int type, int cs, int ce)
{
	bool seen[NO] = { false };
	int stack[NO], sp = 0;

	for (int h = 0; h < NO; h++) {
		if (m_conflict_by(f, o, type, cs, ce, h)) {
			seen[h] = true;
			stack[sp++] = h;
		}
	}
	while (sp) {
		int b = stack[--sp];

		for (int ff = 0; ff < NF; ff++) {
			for (int i = 0; i < mqn[ff]; i++) {
				struct mw *w = &mq[ff][i];

				if (w->o != b)
					continue;
				for (int h = 0; h < NO; h++) {
					if (!m_conflict_by(ff, b, w->type, w->cs, w->ce, h))
						continue;
					if (h == o)
						return true;
					if (!seen[h]) {
						seen[h] = true;
						stack[sp++] = h;
					}
				}
			}
		}
	}
	return false;
}

/* Drop everything of owner @o (model), expecting on_drop for its waiters. */
static void m_release_owner(int o)
{
	for (int f = 0; f < NF; f++) {
		for (int c = 0; c < NB; c++)
			mh[f][o][c] = 0;
		for (int i = 0; i < mqn[f];) {
			if (mq[f][i].o == o) {
				xdrop[nxdrop++] = mq[f][i].id;
				m_qremove(f, i);
			} else {
				i++;
			}
		}
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void compare_events(uint64_t op)
{
	for (int f = 0; f < NF; f++) {
		if (negr[f] != nxgr[f])
			fail_msg("op %llu file %d: engine granted %d, model %d",
				 (unsigned long long)op, f, negr[f], nxgr[f]);
		for (int i = 0; i < negr[f]; i++)
			if (egr[f][i] != xgr[f][i])
				fail_msg("op %llu: grant order differs", (unsigned long long)op);
		negr[f] = nxgr[f] = 0;
	}
	assert_int_equal(nedrop, nxdrop);
	qsort(edrop, (size_t)nedrop, sizeof(int), cmp_int);
	qsort(xdrop, (size_t)nxdrop, sizeof(int), cmp_int);
	for (int i = 0; i < nedrop; i++)
		assert_int_equal(edrop[i], xdrop[i]);
	nedrop = nxdrop = 0;
}

/* A holder the engine reported must be a real, maximal, conflicting lock. */
static void check_holder(int f, int o, int type, int cs, int ce, const struct lk_lockinfo *h)
{
	int ho = owner_idx(h->owner), hs = cell_of(h->range.start), he = cell_of(h->range.end);

	assert_int_equal(key_file(h), f);
	assert_int_not_equal(ho, o);
	assert_true(type == LK_EXCL || h->type == LK_EXCL);
	assert_true(hs <= ce && he >= cs);
	assert_true(h->range.end == MAX || h->range.end < NB - 1);
	for (int c = hs; c <= he; c++)
		assert_int_equal(mh[f][ho][c], h->type);
	assert_true(hs == 0 || mh[f][ho][hs - 1] != h->type);
	assert_true(he == NB - 1 || mh[f][ho][he + 1] != h->type);
}

static uint8_t em[NF][NO][NB];
static size_t elocks;

static int full_lock(void *arg, const struct lk_lockinfo *li)
{
	int f = key_file(li), o = owner_idx(li->owner);
	int cs = cell_of(li->range.start), ce = cell_of(li->range.end);

	(void)arg;
	assert_true(li->range.end == MAX || li->range.end < NB - 1);
	assert_true(li->range.start < NB);
	for (int c = cs; c <= ce; c++) {
		assert_int_equal(em[f][o][c], 0);
		em[f][o][c] = (uint8_t)li->type;
	}
	elocks++;
	return 0;
}

static int wq_pos[NF];

static int full_waiter(void *arg, const struct lk_lockinfo *li)
{
	int f = key_file(li);
	struct mw *w = &mq[f][wq_pos[f]++];

	(void)arg;
	assert_true(wq_pos[f] <= mqn[f]);
	assert_ptr_equal(li->owner, eo[w->o]);
	assert_int_equal(li->type, w->type);
	assert_true(cell_of(li->range.start) == w->cs && cell_of(li->range.end) == w->ce);
	return 0;
}

static void full_compare(void)
{
	size_t runs = 0, queued = 0;
	struct lk_stats st;

	memset(em, 0, sizeof(em));
	elocks = 0;
	lk_foreach_lock(T, full_lock, NULL);
	assert_memory_equal(em, mh, sizeof(em));
	for (int f = 0; f < NF; f++) {
		for (int o = 0; o < NO; o++)
			for (int c = 0; c < NB; c++)
				runs += mh[f][o][c] && (c == 0 || mh[f][o][c - 1] != mh[f][o][c]);
		queued += (size_t)mqn[f];
		wq_pos[f] = 0;
	}
	assert_int_equal(elocks, runs);		/* ranges are maximal: merged */
	lk_foreach_waiter(T, full_waiter, NULL);
	for (int f = 0; f < NF; f++)
		assert_int_equal(wq_pos[f], mqn[f]);
	lk_table_stats(T, &st);
	assert_int_equal(st.locks, runs);
	assert_int_equal(st.waiters, queued);
	check_table();
}

static void rnd_range(int *cs, int *ce)
{
	uint64_t k = rnd() % 100;

	*cs = (int)(rnd() % 66);
	if (*cs > NB - 1)
		*cs = NB - 1;
	if (*cs == NB - 1 || k < 12)
		*ce = NB - 1;				/* to EOF */
	else if (k < 75)
		*ce = *cs + (int)(rnd() % 4);
	else
		*ce = *cs + (int)(rnd() % 24);
	if (*ce > NB - 2 && *ce != NB - 1)
		*ce = NB - 2;
}

static void rnd_new_client(int c)
{
	assert_int_equal(lk_client_new(T, NULL, &ec[c]), 0);
	for (int o = c; o < NO; o += NC) {
		char oh[16];

		snprintf(oh, sizeof(oh), "o%d", o);
		assert_int_equal(lk_owner_get(T, ec[c], (uint32_t)o, oh, strlen(oh), &eo[o]), 0);
	}
}

static void test_random_differential(void **st)
{
	struct lk_table_opts opts = {
		.max_waiters_per_client = CAP,
		.on_grant = rnd_grant,
		.on_drop = rnd_drop,
		.hash_seed = { 1, 2 },
		.allocator = &test_al,
	};
	const char *env = getenv("LK_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
	uint64_t nops = getenv("LK_OPS") ? strtoull(getenv("LK_OPS"), NULL, 0) : 1000000;
	struct lk_table *saved = T;
	uint64_t counts[8] = { 0 };

	(void)st;
	printf("[ random   ] seed %llu (replay with LK_SEED=%llu), %llu ops\n",
	       (unsigned long long)seed, (unsigned long long)seed, (unsigned long long)nops);
	fflush(stdout);
	rng = seed;
	memset(mh, 0, sizeof(mh));
	memset(mqn, 0, sizeof(mqn));
	for (int f = 0; f < NF; f++)
		snprintf(fkey[f], sizeof(fkey[f]), "f%0*d", f + 1, f);	/* different lengths */
	assert_int_equal(lk_table_new(&opts, &T), 0);
	for (int c = 0; c < NC; c++)
		rnd_new_client(c);

	for (uint64_t op = 0; op < nops; op++) {
		int f = (int)(rnd() % NF), o = (int)(rnd() % NO), cs, ce, rc;
		int type = rnd() & 1 ? LK_EXCL : LK_SHARED;
		uint64_t k = rnd() % 1000;
		struct lk_lockinfo h;
		struct lk_waiter *w;

		rnd_range(&cs, &ce);
		if (k < 300) {			/* non-blocking lock */
			counts[0]++;
			rc = lk_lock(T, fkey[f], strlen(fkey[f]), eo[o], type, cells_range(cs, ce), &h);
			if (m_conflict(f, o, type, cs, ce)) {
				assert_int_equal(rc, -EAGAIN);
				check_holder(f, o, type, cs, ce, &h);
			} else {
				assert_int_equal(rc, 0);
				m_set(f, o, type, cs, ce);
				m_wake(f);
			}
		} else if (k < 420) {		/* blocking lock */
			int dup = -1, id = next_id;

			counts[1]++;
			for (int i = 0; i < mqn[f]; i++)
				if (mq[f][i].o == o && mq[f][i].type == type &&
				    mq[f][i].cs == cs && mq[f][i].ce == ce)
					dup = i;
			rc = lk_lock_wait(T, fkey[f], strlen(fkey[f]), eo[o], type,
					  cells_range(cs, ce), (void *)(intptr_t)id, &w, &h);
			if (!m_conflict(f, o, type, cs, ce)) {
				assert_int_equal(rc, 0);
				assert_null(w);
				m_set(f, o, type, cs, ce);
				m_wake(f);
			} else {
				check_holder(f, o, type, cs, ce, &h);
				if (dup >= 0) {
					assert_int_equal(rc, -EINPROGRESS);
					assert_ptr_equal(w, mq[f][dup].w);
				} else if (m_client_queued(o % NC) >= CAP) {
					assert_int_equal(rc, -ENOLCK);
					counts[6]++;
				} else if (m_deadlock(f, o, type, cs, ce)) {
					assert_int_equal(rc, -EDEADLK);
					counts[7]++;
				} else {
					assert_int_equal(rc, -EINPROGRESS);
					assert_true(mqn[f] < MQ);
					mq[f][mqn[f]++] = (struct mw){ id, o, type, cs, ce, w };
					next_id++;
				}
			}
		} else if (k < 700) {		/* unlock */
			counts[2]++;
			assert_int_equal(lk_unlock(T, fkey[f], strlen(fkey[f]), eo[o],
						   cells_range(cs, ce)), 0);
			m_set(f, o, 0, cs, ce);
			m_wake(f);
		} else if (k < 930) {		/* test */
			counts[3]++;
			rc = lk_test(T, fkey[f], strlen(fkey[f]), eo[o], type, cells_range(cs, ce), &h);
			if (m_conflict(f, o, type, cs, ce)) {
				assert_int_equal(rc, -EAGAIN);
				check_holder(f, o, type, cs, ce, &h);
			} else {
				assert_int_equal(rc, 0);
			}
		} else if (k < 990) {		/* cancel */
			if (mqn[f]) {
				int i = (int)(rnd() % (uint64_t)mqn[f]);
				struct mw *m = &mq[f][i];

				counts[4]++;
				assert_ptr_equal(lk_waiter_find(T, fkey[f], strlen(fkey[f]), eo[m->o],
								m->type, cells_range(m->cs, m->ce)),
						 m->w);
				lk_cancel(T, m->w);
				m_qremove(f, i);
				m_wake(f);		/* must grant nothing */
			}
		} else {			/* release an owner or a whole client */
			int c = o % NC;

			counts[5]++;
			if (k < 994) {
				lk_owner_release(T, eo[o]);
				m_release_owner(o);
			} else if (k < 997) {
				lk_client_release(T, ec[c]);
				for (int x = c; x < NO; x += NC)
					m_release_owner(x);
			} else {
				for (int x = c; x < NO; x += NC)
					lk_owner_put(T, eo[x]);
				lk_client_free(T, ec[c]);
				for (int x = c; x < NO; x += NC)
					m_release_owner(x);
				rnd_new_client(c);
			}
			for (int ff = 0; ff < NF; ff++)
				m_wake(ff);
		}
		compare_events(op);
		if ((op & 255) == 0 || op + 1 == nops)
			full_compare();
	}
	printf("[ random   ] lock %llu wait %llu unlock %llu test %llu cancel %llu "
	       "release %llu enolck %llu edeadlk %llu\n",
	       (unsigned long long)counts[0], (unsigned long long)counts[1],
	       (unsigned long long)counts[2], (unsigned long long)counts[3],
	       (unsigned long long)counts[4], (unsigned long long)counts[5],
	       (unsigned long long)counts[6], (unsigned long long)counts[7]);
	if (nops >= 100000)
		assert_true(counts[6] > 0 && counts[7] > 0);
	for (int o = 0; o < NO; o++)
		lk_owner_put(T, eo[o]);
	lk_table_free(T);
	T = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tlock1_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock2_whole_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock3_first_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock4_second_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock5_adjacent_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock6_max_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock7_blocking_exclusion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock8_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock9_read_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock10_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock11_close_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock12_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlock_upgrade_downgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lt_type_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lt_touching_vs_overlapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lt_partial_unlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lt_owner_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_memo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share_semantics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadlock_2cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadlock_shared_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadlock_3cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiter_cap, setup_cap2, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_semantics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_shared_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_only_satisfiable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grant_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_release_and_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_matching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iteration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_any, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_past_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_differential, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
