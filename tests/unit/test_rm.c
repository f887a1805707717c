/*
 * test_rm.c - the record-marking parser (src/rpc/rpc_rm.c) alone: whole
 * records, headers split at every byte, multi-fragment records, zero-length
 * fragments, oversized records in both modes, byte-at-a-time delivery,
 * memory that follows the bytes received rather than the mark, and a failed
 * allocation at every point of a reassembly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "fault_alloc.h"
#include "rpc/rpc_rm.h"

/* ---- what the parser hands over --------------------------------------- */

#define MAXRECS 64

struct got {
	int n;
	size_t len[MAXRECS];
	bool oversize[MAXRECS];
	uint8_t *data[MAXRECS];     /* copies (owned) */
	int stop_after;             /* return stop_rc after this many; 0 never */
	int stop_rc;
};

static int on_record(void *arg, const uint8_t *rec, size_t len, bool oversize)
{
	struct got *g = arg;

	assert_non_null(rec);
	assert_true(g->n < MAXRECS);
	g->len[g->n] = len;
	g->oversize[g->n] = oversize;
	g->data[g->n] = malloc(len ? len : 1);
	assert_non_null(g->data[g->n]);
	memcpy(g->data[g->n], rec, len);
	g->n++;
	if (g->stop_after && g->n == g->stop_after)
		return g->stop_rc;
	return 0;
}

static void got_free(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->data[i]);
	memset(g, 0, sizeof(*g));
}

/* ---- building streams -------------------------------------------------- */

struct stream {
	uint8_t b[1 << 16];
	size_t n;
};

static void put_frag(struct stream *s, const uint8_t *d, uint32_t len, bool last)
{
	assert_true(s->n + 4 + len <= sizeof(s->b));
	rm_put_mark(s->b + s->n, len, last);
	memcpy(s->b + s->n + 4, d, len);
	s->n += 4 + len;
}

static void pattern(uint8_t *d, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)(seed + i * 7);
}

/* Feed @s in pieces of @step bytes (0: all at once). */
static int feed(struct rm_parser *rm, const struct stream *s, size_t step, struct got *g)
{
	size_t off = 0;
	int rc = 0;

	if (step == 0)
		step = s->n;
	while (off < s->n && rc == 0) {
		size_t k = s->n - off < step ? s->n - off : step;

		rc = rm_feed(rm, s->b + off, k, on_record, g);
		off += k;
	}
	return rc;
}

/* ---- tests ------------------------------------------------------------- */

static void test_mark_encoding(void **st)
{
	uint8_t m[4];

	(void)st;
	rm_put_mark(m, 0x1234, true);
	assert_memory_equal(m, "\x80\x00\x12\x34", 4);
	rm_put_mark(m, 0x7fffffff, false);
	assert_memory_equal(m, "\x7f\xff\xff\xff", 4);
	rm_put_mark(m, 0, true);
	assert_memory_equal(m, "\x80\x00\x00\x00", 4);
}

/* Three whole records in one read: handed over in order, without copying
 * (no allocation at all). */
static void test_whole_records(void **st)
{
	static struct stream s;
	uint8_t d[300];
	struct rm_parser rm;
	struct got g = { 0 };

	(void)st;
	s.n = 0;
	for (int i = 0; i < 3; i++) {
		pattern(d, 100u * (i + 1), (uint8_t)i);
		put_frag(&s, d, 100u * (i + 1), true);
	}
	rm_init(&rm, 8192, RM_OVERSIZE_FAIL);
	fa_reset();
	assert_int_equal(feed(&rm, &s, 0, &g), 0);
	assert_int_equal(fa_calls() - 3, 0); /* the 3 are on_record's copies */
	assert_int_equal(g.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g.len[i], 100u * (i + 1));
		assert_false(g.oversize[i]);
		pattern(d, g.len[i], (uint8_t)i);
		assert_memory_equal(g.data[i], d, g.len[i]);
	}
	assert_true(rm_idle(&rm));
	got_free(&g);
	rm_fini(&rm);
}

/* A two-fragment record followed by a one-fragment one, cut into two reads
 * at every possible byte (inside each mark, at each boundary, inside each
 * body): always the same two records. */
static void test_split_everywhere(void **st)
{
	static struct stream s;
	uint8_t a[40], b[25], c[9], want[65];

	(void)st;
	s.n = 0;
	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	pattern(c, sizeof(c), 3);
	put_frag(&s, a, sizeof(a), false);
	put_frag(&s, b, sizeof(b), true);
	put_frag(&s, c, sizeof(c), true);
	memcpy(want, a, sizeof(a));
	memcpy(want + sizeof(a), b, sizeof(b));
	for (size_t cut = 0; cut <= s.n; cut++) {
		struct rm_parser rm;
		struct got g = { 0 };

		rm_init(&rm, 8192, RM_OVERSIZE_FAIL);
		assert_int_equal(rm_feed(&rm, s.b, cut, on_record, &g), 0);
		assert_int_equal(rm_feed(&rm, s.b + cut, s.n - cut, on_record, &g), 0);
		assert_int_equal(g.n, 2);
		assert_int_equal(g.len[0], sizeof(want));
		assert_memory_equal(g.data[0], want, sizeof(want));
		assert_int_equal(g.len[1], sizeof(c));
		assert_memory_equal(g.data[1], c, sizeof(c));
		assert_true(rm_idle(&rm));
		got_free(&g);
		rm_fini(&rm);
	}
}

/* Many fragments, zero-length ones among them (legal: they add nothing),
 * a record made only of zero-length fragments (an empty record), delivered
 * all at once and one byte at a time. */
static void test_fragments_and_empty(void **st)
{
	static struct stream s;
	uint8_t d[1000], want[1000];

	(void)st;
	for (size_t step = 0; step <= 1; step++) {
		struct rm_parser rm;
		struct got g = { 0 };
		size_t w = 0;

		s.n = 0;
		put_frag(&s, NULL, 0, false);
		for (int i = 0; i < 10; i++) {
			pattern(d, 50u + i, (uint8_t)(10 + i));
			put_frag(&s, d, 50u + i, false);
			memcpy(want + w, d, 50u + i);
			w += 50u + i;
			put_frag(&s, NULL, 0, false);
		}
		put_frag(&s, NULL, 0, true);            /* ends record 1 */
		put_frag(&s, NULL, 0, false);
		put_frag(&s, NULL, 0, true);            /* record 2: empty */
		put_frag(&s, (const uint8_t *)"xyz", 3, true);
		rm_init(&rm, 8192, RM_OVERSIZE_FAIL);
		assert_int_equal(feed(&rm, &s, step, &g), 0);
		assert_int_equal(g.n, 3);
		assert_int_equal(g.len[0], w);
		assert_memory_equal(g.data[0], want, w);
		assert_int_equal(g.len[1], 0);
		assert_int_equal(g.len[2], 3);
		assert_memory_equal(g.data[2], "xyz", 3);
		got_free(&g);
		rm_fini(&rm);
	}
	/* a record whose empty last fragment's mark ends a read is handed
	 * over in that read, not when the next bytes come */
	{
		struct rm_parser rm;
		struct got g = { 0 };

		s.n = 0;
		put_frag(&s, (const uint8_t *)"ab", 2, false);
		put_frag(&s, NULL, 0, true);
		rm_init(&rm, 64, RM_OVERSIZE_FAIL);
		assert_int_equal(rm_feed(&rm, s.b, s.n, on_record, &g), 0);
		assert_int_equal(g.n, 1);
		assert_int_equal(g.len[0], 2);
		got_free(&g);
		rm_fini(&rm);
	}
}

/* A stream of records of assorted sizes and fragmentations, fed one byte at
 * a time: the same records as fed whole. */
static void test_byte_at_a_time(void **st)
{
	static struct stream s;
	uint8_t d[3000];
	struct rm_parser rm;
	struct got whole = { 0 }, bytes = { 0 };

	(void)st;
	s.n = 0;
	for (int i = 0; i < 12; i++) {
		size_t len = (size_t)(i * 251) % 3000;
		int nfrag = 1 + i % 4;
		size_t off = 0;

		pattern(d, len, (uint8_t)(i * 3));
		for (int f = 0; f < nfrag; f++) {
			size_t fl = f == nfrag - 1 ? len - off : len / (size_t)nfrag;

			put_frag(&s, d + off, (uint32_t)fl, f == nfrag - 1);
			off += fl;
		}
	}
	rm_init(&rm, 4096, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 0, &whole), 0);
	rm_fini(&rm);
	rm_init(&rm, 4096, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 1, &bytes), 0);
	rm_fini(&rm);
	assert_int_equal(whole.n, 12);
	assert_int_equal(bytes.n, 12);
	for (int i = 0; i < 12; i++) {
		size_t len = (size_t)(i * 251) % 3000;

		pattern(d, len, (uint8_t)(i * 3));
		assert_int_equal(whole.len[i], len);
		assert_int_equal(bytes.len[i], len);
		assert_memory_equal(whole.data[i], d, len);
		assert_memory_equal(bytes.data[i], d, len);
	}
	got_free(&whole);
	got_free(&bytes);
}

/* Fail mode: a mark over the limit is refused on the mark alone (nothing
 * buffered, nothing allocated), whether it is the first fragment or the one
 * that pushes the running sum over; exactly the limit is accepted. */
static void test_oversize_fail(void **st)
{
	static struct stream s;
	static uint8_t d[1024];
	struct rm_parser rm;
	struct got g = { 0 };
	uint8_t m[4];

	(void)st;
	rm_init(&rm, 1024, RM_OVERSIZE_FAIL);
	rm_put_mark(m, 0x7fffffff, true);
	fa_reset();
	assert_int_equal(rm_feed(&rm, m, 4, on_record, &g), -EMSGSIZE);
	assert_int_equal(fa_calls(), 0);
	assert_int_equal(g.n, 0);
	rm_fini(&rm);

	rm_init(&rm, 1024, RM_OVERSIZE_FAIL);
	rm_put_mark(m, 1025, true);
	assert_int_equal(rm_feed(&rm, m, 4, on_record, &g), -EMSGSIZE);
	rm_fini(&rm);

	/* 600 + 600 in two fragments: the second mark is refused */
	s.n = 0;
	put_frag(&s, d, 600, false);
	put_frag(&s, d, 600, true);
	rm_init(&rm, 1024, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 7, &g), -EMSGSIZE);
	assert_int_equal(g.n, 0);
	rm_fini(&rm);

	/* 512 + 512: exactly the limit, split across reads */
	s.n = 0;
	put_frag(&s, d, 512, false);
	put_frag(&s, d, 512, true);
	rm_init(&rm, 1024, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 100, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 1024);
	got_free(&g);
	rm_fini(&rm);

	/* one whole fragment of exactly the limit, in one read */
	s.n = 0;
	put_frag(&s, d, 1024, true);
	rm_init(&rm, 1024, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 0, &g), 0);
	assert_int_equal(g.n, 1);
	got_free(&g);
	rm_fini(&rm);
}

/* Skip mode: an oversized record costs its call, not the stream: its first
 * four bytes (the xid) come with oversize set and the next record is
 * intact; nothing of the skipped body is buffered. */
static void test_oversize_skip(void **st)
{
	static struct stream s;
	static uint8_t big[5000];
	struct rm_parser rm;
	struct got g = { 0 };

	(void)st;
	for (size_t step = 0; step <= 1; step++) {
		s.n = 0;
		pattern(big, sizeof(big), 9);
		put_frag(&s, big, 1000, false);         /* fits so far */
		put_frag(&s, big + 1000, 4000, true);   /* pushes it over */
		put_frag(&s, (const uint8_t *)"\x00\x00\x00\x07ok", 6, true);
		rm_init(&rm, 2048, RM_OVERSIZE_SKIP);
		fa_reset();
		assert_int_equal(feed(&rm, &s, step, &g), 0);
		assert_true(fa_max_request() <= 2048);
		assert_int_equal(g.n, 2);
		assert_true(g.oversize[0]);
		assert_int_equal(g.len[0], 4);
		assert_memory_equal(g.data[0], big, 4);
		assert_false(g.oversize[1]);
		assert_int_equal(g.len[1], 6);
		assert_memory_equal(g.data[1], "\x00\x00\x00\x07ok", 6);
		assert_true(rm_idle(&rm));
		got_free(&g);
		rm_fini(&rm);
	}
	/* an oversized record of fewer than four bytes before the mark that
	 * dooms it: only what was there */
	s.n = 0;
	put_frag(&s, (const uint8_t *)"ab", 2, false);
	put_frag(&s, big, 3000, true);
	rm_init(&rm, 2048, RM_OVERSIZE_SKIP);
	assert_int_equal(feed(&rm, &s, 0, &g), 0);
	assert_int_equal(g.n, 1);
	assert_true(g.oversize[0]);
	assert_int_equal(g.len[0], 4);
	assert_memory_equal(g.data[0], "ab", 2);
	assert_memory_equal(g.data[0] + 2, big, 2);
	got_free(&g);
	rm_fini(&rm);
}

/* A hostile mark announcing the whole 1 MiB limit, followed by 10 bytes:
 * the buffer is the first 4 KiB step, not 1 MiB.  Then the record trickles
 * in: the buffer never exceeds twice what arrived. */
static void test_memory_follows_bytes(void **st)
{
	static uint8_t chunk[1024];
	struct rm_parser rm;
	struct got g = { 0 };
	uint8_t m[4];
	size_t have = 10;

	(void)st;
	rm_init(&rm, 1u << 20, RM_OVERSIZE_FAIL);
	rm_put_mark(m, 1u << 20, true);
	fa_reset();
	assert_int_equal(rm_feed(&rm, m, 4, on_record, &g), 0);
	assert_int_equal(fa_calls(), 0);
	assert_int_equal(rm_feed(&rm, chunk, 10, on_record, &g), 0);
	assert_true(fa_max_request() <= 4096);
	assert_true(rm.rec_cap <= 4096);
	while (have < (1u << 20)) {
		size_t k = (1u << 20) - have < sizeof(chunk) ? (1u << 20) - have : sizeof(chunk);

		assert_int_equal(rm_feed(&rm, chunk, k, on_record, &g), 0);
		have += k;
		assert_true(rm.rec_cap <= 2 * have || rm.rec_cap <= 4096);
	}
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 1u << 20);
	/* a big record's buffer is not kept for the small ones after it */
	got_free(&g);
	assert_int_equal(rm.rec_cap, 1u << 20);
	rm_put_mark(m, 3, false);
	assert_int_equal(rm_feed(&rm, m, 4, on_record, &g), 0);
	assert_int_equal(rm_feed(&rm, (const uint8_t *)"abc", 3, on_record, &g), 0);
	rm_put_mark(m, 0, true);
	assert_int_equal(rm_feed(&rm, m, 4, on_record, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(rm.rec_cap, 0);
	got_free(&g);
	rm_fini(&rm);
}

/* The callback stops the feed: > 0 quietly (rest dropped), < 0 returned. */
static void test_callback_stops(void **st)
{
	static struct stream s;
	struct rm_parser rm;
	struct got g = { 0 };

	(void)st;
	s.n = 0;
	for (int i = 0; i < 4; i++)
		put_frag(&s, (const uint8_t *)"abcd", 4, true);
	rm_init(&rm, 64, RM_OVERSIZE_FAIL);
	g.stop_after = 2;
	g.stop_rc = 1;
	assert_int_equal(rm_feed(&rm, s.b, s.n, on_record, &g), 0);
	assert_int_equal(g.n, 2);
	got_free(&g);
	g.stop_after = 1;
	g.stop_rc = -EPROTO;
	assert_int_equal(rm_feed(&rm, s.b, s.n, on_record, &g), -EPROTO);
	assert_int_equal(g.n, 1);
	got_free(&g);
	rm_fini(&rm);
}

/*
 * A stop leaves the rest at a record boundary (rm_feed_until): records of
 * one fragment (handed over in place) and of two (reassembled), stopped
 * after each record in turn, the rest fed again, the stream the same as
 * one feed, with every record once, in order.
 */
static void test_stop_and_resume(void **st)
{
	static struct stream s;
	uint8_t d[40];
	struct rm_parser rm;
	struct got g = { 0 }, all = { 0 };

	(void)st;
	s.n = 0;
	for (uint8_t i = 0; i < 6; i++) {
		pattern(d, sizeof(d), i);
		if (i % 2) {
			put_frag(&s, d, 10, false);
			put_frag(&s, d + 10, 30, true);
		} else {
			put_frag(&s, d, 40, true);
		}
	}
	rm_init(&rm, 64, RM_OVERSIZE_FAIL);
	assert_int_equal(feed(&rm, &s, 0, &all), 0);
	assert_int_equal(all.n, 6);
	for (int stop = 1; stop <= 6; stop++) {
		size_t off = 0, left = 0;

		g.stop_after = stop;
		g.stop_rc = 1;
		assert_int_equal(rm_feed_until(&rm, s.b, s.n, on_record, &g, &left), 0);
		assert_int_equal(g.n, stop);
		assert_true(rm_idle(&rm));
		off = s.n - left;
		g.stop_after = 0;
		assert_int_equal(rm_feed_until(&rm, s.b + off, left, on_record, &g, &left), 0);
		assert_int_equal(left, 0);
		assert_int_equal(g.n, 6);
		for (int i = 0; i < 6; i++) {
			assert_int_equal(g.len[i], all.len[i]);
			assert_memory_equal(g.data[i], all.data[i], all.len[i]);
		}
		got_free(&g);
	}
	got_free(&all);
	rm_fini(&rm);
}

/* Every allocation of a byte-at-a-time reassembly failed in turn: -ENOMEM,
 * nothing delivered, no leak (ASan), and a fresh parser works after. */
static void test_alloc_failure(void **st)
{
	static struct stream s;
	static uint8_t d[20000];
	long total;

	(void)st;
	s.n = 0;
	pattern(d, sizeof(d), 5);
	put_frag(&s, d, 7000, false);
	put_frag(&s, d + 7000, 13000, true);
	{
		struct rm_parser rm;
		struct got g = { 0 };

		rm_init(&rm, 1u << 20, RM_OVERSIZE_FAIL);
		fa_reset();
		assert_int_equal(feed(&rm, &s, 333, &g), 0);
		total = fa_calls() - 1; /* minus on_record's copy */
		assert_int_equal(g.n, 1);
		got_free(&g);
		rm_fini(&rm);
	}
	assert_true(total >= 3); /* 4 KiB, 8 KiB, 16 KiB, 32 KiB */
	for (long n = 0; n < total; n++) {
		struct rm_parser rm;
		struct got g = { 0 };

		rm_init(&rm, 1u << 20, RM_OVERSIZE_FAIL);
		fa_reset();
		fa_fail_at(n);
		assert_int_equal(feed(&rm, &s, 333, &g), -ENOMEM);
		assert_int_equal(fa_failed(), 1);
		assert_int_equal(g.n, 0);
		rm_fini(&rm);
	}
	fa_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_encoding),
		cmocka_unit_test(test_whole_records),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_fragments_and_empty),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_oversize_fail),
		cmocka_unit_test(test_oversize_skip),
		cmocka_unit_test(test_memory_follows_bytes),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_stop_and_resume),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
