/*
 * test_journal.c - the per-group lock journal: record encoding, loading
 * files built by hand (order, header checks, torn last batch, damage in the
 * middle), and the writer on a uv loop in a temp dir (group commit,
 * reopening, compaction, write failure and recovery, close with a write in
 * flight).
 *
 * The libuv thread pool is cut to one thread (main) so a test can park a
 * "blocker" job on it and know that the journal's write is queued but has
 * not run: that is how writes "in flight" are made deterministic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <liburing.h>

#include "journal/journal.h"

/* thp_yield_point (common/thprio.h) wrapped (meson.build): how often the
 * load gives way. */
void __real_thp_yield_point(void);
void __wrap_thp_yield_point(void);
static size_t yield_points;

void __wrap_thp_yield_point(void)
{
	yield_points++;
	__real_thp_yield_point();
}

#define GROUP "g1"
static unsigned inflight = 1;   /* JR_TEST_INFLIGHT: journal_inflight of the run */
#define REC_MAX 2200            /* > the largest record (2160 bytes) */

static char dir[256], jpath[300], tmppath[300], dmgpath[300];
static uv_loop_t loop;
static struct rlimit fsize_saved;

/* ---- sample records ----------------------------------------------------
 * sample(i) is a fixed, distinct record for every i, cycling through the
 * five state record types; every 7th has the maximal host/oh/fh lengths
 * and every 3rd a range to end of file, so any test using a handful of
 * them crosses the interesting encodings. */

struct sample {
	struct jr_rec r;
	char host[JR_HOST_MAX];
	uint8_t oh[JR_OH_MAX];
	uint8_t fh[JR_FH_MAX];
};

#define NSAMPLES 256
static struct sample pool[NSAMPLES];
#define S(i) (&pool[(i)].r)

static void sample_init(struct sample *s, unsigned i)
{
	static const enum jr_type types[] = { JR_LOCK, JR_UNLOCK, JR_SHARE, JR_UNSHARE,
					      JR_FREE_CLIENT };
	struct jr_rec *r = &s->r;
	bool big = i % 7 == 6;

	memset(s, 0, sizeof(*s));
	r->type = types[i % 5];
	r->host = s->host;
	r->hostlen = big ? JR_HOST_MAX : (size_t)snprintf(s->host, sizeof(s->host), "client-%u", i);
	if (big)
		memset(s->host, 'a' + i % 26, JR_HOST_MAX);
	if (r->type == JR_FREE_CLIENT)
		return; /* like nlm_jr_free_client: a host, nothing else, NULL oh/fh */
	r->ohlen = big ? JR_OH_MAX : 1 + i % 13;
	r->fhlen = big ? JR_FH_MAX : 1 + i % 40;
	for (size_t k = 0; k < r->ohlen; k++)
		s->oh[k] = (uint8_t)(i * 31 + k);
	for (size_t k = 0; k < r->fhlen; k++)
		s->fh[k] = (uint8_t)(i * 17 + k * 3 + 1);
	r->oh = s->oh;
	r->fh = s->fh;
	if (r->type == JR_LOCK || r->type == JR_UNLOCK) {
		r->svid = 1000 + i;
		r->excl = r->type == JR_LOCK && (i & 1);
		r->start = (uint64_t)i * 100;
		r->end = i % 3 == 0 ? UINT64_MAX : r->start + 50;
	} else if (r->type == JR_SHARE) {
		r->mode = i % 4;
		r->deny = (i / 4) % 4;
	}
}

/* ---- replay log ----------------------------------------------------------
 * Every replayed record is re-encoded (batch 0, not last) and kept, so a
 * comparison with the expected record covers every field at once. */

struct rlog {
	size_t n, cap;
	uint8_t **rec;
	size_t *len;
	long fail_at;           /* refuse the record with this index; -1: never */
};
static struct rlog rl;

static void rlog_reset(void)
{
	for (size_t i = 0; i < rl.n; i++)
		free(rl.rec[i]);
	free(rl.rec);
	free(rl.len);
	memset(&rl, 0, sizeof(rl));
	rl.fail_at = -1;
}

static int rlog_cb(void *arg, const struct jr_rec *r)
{
	struct rlog *l = arg;
	uint8_t buf[REC_MAX];
	ssize_t n;

	if ((long)l->n == l->fail_at)
		return -EINVAL;
	n = jr_rec_encode(r, 0, false, buf, sizeof(buf));
	assert_true(n > 0);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->rec = realloc(l->rec, l->cap * sizeof(*l->rec));
		l->len = realloc(l->len, l->cap * sizeof(*l->len));
		assert_non_null(l->rec);
		assert_non_null(l->len);
	}
	l->rec[l->n] = malloc((size_t)n);
	assert_non_null(l->rec[l->n]);
	memcpy(l->rec[l->n], buf, (size_t)n);
	l->len[l->n++] = (size_t)n;
	return 0;
}

/* Load jpath into rl (fresh), failing at record @fail_at if >= 0. */
static int load_fail_at(struct jr_load_info *li, long fail_at)
{
	rlog_reset();
	rl.fail_at = fail_at;
	return jr_load(jpath, GROUP, rlog_cb, &rl, li);
}

static int load(struct jr_load_info *li)
{
	return load_fail_at(li, -1);
}

static void expect_rec(size_t k, const struct jr_rec *r)
{
	uint8_t buf[REC_MAX];
	ssize_t n = jr_rec_encode(r, 0, false, buf, sizeof(buf));

	assert_true(n > 0);
	assert_true(k < rl.n);
	assert_int_equal(rl.len[k], (size_t)n);
	assert_memory_equal(rl.rec[k], buf, (size_t)n);
}

/* The log is exactly samples idx[0..n). */
static void expect_log(const unsigned *idx, size_t n)
{
	assert_int_equal(rl.n, n);
	for (size_t k = 0; k < n; k++)
		expect_rec(k, S(idx[k]));
}

/* The log is exactly samples first .. first+n-1. */
static void expect_log_range(unsigned first, size_t n)
{
	assert_int_equal(rl.n, n);
	for (size_t k = 0; k < n; k++)
		expect_rec(k, S(first + k));
}

/* ---- journal files built by hand ---------------------------------------- */

struct jf {
	uint8_t p[1 << 16];
	size_t len;
	size_t batch_off[16];   /* where each batch starts (index: order added) */
	size_t nbatch;
	size_t rec_off[128];    /* where each record starts */
	size_t rec_batch[128];  /* ... and which batch (index) it is in */
	size_t nrec;
};
static struct jf jf;

static size_t jf_rec(const struct jr_rec *r, uint64_t batch, bool last)
{
	size_t at = jf.len;
	ssize_t n = jr_rec_encode(r, batch, last, jf.p + jf.len, sizeof(jf.p) - jf.len);

	assert_true(n > 0);
	jf.rec_off[jf.nrec] = at;
	jf.rec_batch[jf.nrec++] = jf.nbatch - 1;
	jf.len += (size_t)n;
	return at;
}

static void jf_begin_batch(void)
{
	jf.batch_off[jf.nbatch++] = jf.len;
}

static void jf_reset(void)
{
	memset(&jf, 0, sizeof(jf));
}

static struct jr_rec header_rec(const char *group, uint32_t version, bool complete)
{
	return (struct jr_rec){ .type = JR_HEADER, .host = group, .hostlen = strlen(group),
				.svid = version, .excl = complete, .start = 1700000000 };
}

/* A new file: the header as batch 1, on its own. */
static void jf_header(const char *group, uint32_t version, bool complete)
{
	struct jr_rec h = header_rec(group, version, complete);

	jf_reset();
	jf_begin_batch();
	jf_rec(&h, 1, true);
}

/* Batch @batch holding samples first .. first+n-1 (@last_flag: mark the
 * final one as the end of the batch, as the writer always does). */
static void jf_batch_flag(uint64_t batch, unsigned first, unsigned n, bool last_flag)
{
	jf_begin_batch();
	for (unsigned k = 0; k < n; k++)
		jf_rec(S(first + k), batch, last_flag && k == n - 1);
}

static void jf_batch(uint64_t batch, unsigned first, unsigned n)
{
	jf_batch_flag(batch, first, n, true);
}

/* The same, written with no other batch in flight: its last record says
 * solo, as the writer's do. */
static void jf_batch_solo(uint64_t batch, unsigned first, unsigned n)
{
	struct jr_rec last = *S(first + n - 1);

	last.solo = true;
	jf_begin_batch();
	for (unsigned k = 0; k + 1 < n; k++)
		jf_rec(S(first + k), batch, false);
	jf_rec(&last, batch, true);
}

/* Write the first @len bytes of jf (with byte @flip, if < len, inverted). */
static void jf_write_flip(size_t len, size_t flip)
{
	int fd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	if (flip < len)
		jf.p[flip] ^= 0xff;
	assert_int_equal(write(fd, jf.p, len), (ssize_t)len);
	if (flip < len)
		jf.p[flip] ^= 0xff;
	close(fd);
}

static void jf_write(size_t len)
{
	jf_write_flip(len, SIZE_MAX);
}

/* Write jf whole, but with zeros in place of batch @k (index; not the
 * last): the disk never got that write. */
static void jf_write_zeroed(size_t k)
{
	static const uint8_t zeros[4096];
	size_t n = jf.batch_off[k + 1] - jf.batch_off[k];
	int fd;

	assert_true(n <= sizeof(zeros));
	jf_write(jf.len);
	fd = open(jpath, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, n, (off_t)jf.batch_off[k]), (ssize_t)n);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return st.st_size;
}

/* The whole batches of the journal at jpath, in file order: each one's
 * number and whether its last record says solo.  Returns how many (at
 * most @max; the zeroed space after them ends the walk). */
struct fbatch {
	uint64_t bno;
	bool solo;
};

static size_t file_batches(struct fbatch *out, size_t max)
{
	int fd = open(jpath, O_RDONLY);
	struct stat sb;
	uint8_t *p;
	size_t pos = 0, n = 0;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	p = malloc((size_t)sb.st_size + 1);
	assert_non_null(p);
	assert_int_equal(read(fd, p, (size_t)sb.st_size), sb.st_size);
	close(fd);
	while (pos < (size_t)sb.st_size) {
		struct jr_rec r;
		uint64_t b;
		bool last;
		ssize_t len = jr_rec_decode(p + pos, (size_t)sb.st_size - pos, &r, &b, &last);

		if (len < 0)
			break;
		pos += (size_t)len;
		if (!last)
			continue;
		assert_true(n < max);
		out[n++] = (struct fbatch){ .bno = b, .solo = r.solo };
	}
	free(p);
	return n;
}

/* ---- the loop ----------------------------------------------------------- */

struct wait { int calls; int rc; };

static void on_done(void *arg, int rc)
{
	struct wait *w = arg;
	w->calls++;
	w->rc = rc;
}

/* Called after jr_close: must never happen. */
static void on_done_never(void *arg, int rc)
{
	fail_msg("a waiter was called after jr_close (rc %d)", rc);
}

static void on_guard(uv_timer_t *t) { (void)t; }

/* Run the loop until @cond holds, for at most @ms.  The guard timer bounds
 * each poll, so a journal that forgets to wake the loop makes the test
 * fail in time instead of hanging. */
#define RUN_UNTIL(cond, ms) do { \
		uv_timer_t guard_; \
		uint64_t deadline_; \
		uv_update_time(&loop); \
		deadline_ = uv_now(&loop) + (ms); \
		uv_timer_init(&loop, &guard_); \
		uv_timer_start(&guard_, on_guard, (ms), 0); \
		while (!(cond) && uv_now(&loop) < deadline_) \
			uv_run(&loop, UV_RUN_ONCE); \
		uv_close((uv_handle_t *)&guard_, NULL); \
		uv_run(&loop, UV_RUN_NOWAIT); \
	} while (0)

static void run_until(struct wait *w, int calls)
{
	RUN_UNTIL(w->calls >= calls, 5000);
	assert_int_equal(w->calls, calls);
}

static uint64_t compactions(const struct jr *j)
{
	struct jr_stats js;

	jr_get_stats(j, &js);
	return js.compactions;
}

static void run_until_compactions(const struct jr *j, uint64_t n)
{
	RUN_UNTIL(compactions(j) >= n, 5000);
	assert_int_equal(compactions(j), n);
}

/* One loop turn: the check phase hands the open batch to the pool. */
static void turn(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* Journal writes of @j that failed so far. */
static uint64_t failures_of(const struct jr *j)
{
	struct jr_stats st;

	jr_get_stats(j, &st);
	return st.failures;
}

/* Run until @j grants again, at most @ms.  Returns whether it does. */
static bool run_until_grant(struct jr *j, unsigned ms)
{
	RUN_UNTIL(jr_can_grant(j), ms);
	return jr_can_grant(j);
}

static void close_jr(struct jr *j)
{
	jr_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

/* The blocker: a job that holds the (single) pool thread until released,
 * so a journal write queued behind it is known to be in flight, not done. */
static pthread_mutex_t blk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t blk_cv = PTHREAD_COND_INITIALIZER;
static bool blk_released = true;
static uv_work_t blk_work;

static void blk_work_cb(uv_work_t *w)
{
	pthread_mutex_lock(&blk_mu);
	while (!blk_released)
		pthread_cond_wait(&blk_cv, &blk_mu);
	pthread_mutex_unlock(&blk_mu);
}

static void blk_after_cb(uv_work_t *w, int status) { }

static void block_pool(void)
{
	blk_released = false;
	assert_int_equal(uv_queue_work(&loop, &blk_work, blk_work_cb, blk_after_cb), 0);
}

static void unblock_pool(void)
{
	pthread_mutex_lock(&blk_mu);
	blk_released = true;
	pthread_cond_signal(&blk_cv);
	pthread_mutex_unlock(&blk_mu);
}

/* Keep writes "in flight" on both write paths: the pool blocked (thread
 * path, and the zeroing writes and snapshots of the ring path), and the
 * next completions held back by the journal's test hook (ring path). */
static void block_io(struct jr *j)
{
	block_pool();
	jr_test_hold(j, 2 * JR_INFLIGHT_MAX);
}

static void unblock_io(struct jr *j)
{
	unblock_pool();
	jr_test_release(j);
}

/* Snapshots: emit samples idx[0..n), or fail with rc. */
struct snap {
	const unsigned *idx;
	size_t n;
	int rc;
	int calls;
};

static int snap_cb(void *arg, struct jr *j)
{
	struct snap *s = arg;

	s->calls++;
	if (s->rc)
		return s->rc;
	for (size_t k = 0; k < s->n; k++)
		assert_int_equal(jr_snap_add(j, S(s->idx[k])), 0);
	return 0;
}

static struct jr *open_new(bool complete, struct snap *s)
{
	struct jr *j;

	assert_int_equal(jr_open(&loop, dir, GROUP, NULL, complete, false, snap_cb, s, &j), 0);
	return j;
}

/* Append samples first .. first+n-1 in this turn and wait for them (@w
 * NULL: a waiter that must never be called). */
static void append_range(struct jr *j, unsigned first, unsigned n, struct wait *w)
{
	for (unsigned k = 0; k < n; k++)
		assert_int_equal(jr_append(j, S(first + k)), 0);
	assert_int_equal(jr_wait(j, w ? on_done : on_done_never, w), 0);
}

static void set_fsize_limit(rlim_t lim)
{
	struct rlimit rlim = fsize_saved;

	rlim.rlim_cur = lim;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rlim), 0);
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **st)
{
	snprintf(dir, sizeof(dir), "/var/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(jpath, sizeof(jpath), "%s/journal", dir);
	snprintf(tmppath, sizeof(tmppath), "%s/journal.tmp", dir);
	snprintf(dmgpath, sizeof(dmgpath), "%s/journal.damaged", dir);
	assert_int_equal(uv_loop_init(&loop), 0);
	rlog_reset();
	return 0;
}

static int teardown(void **st)
{
	char cmd[600];

	/* A failed test may leave these behind: put them right first. */
	setrlimit(RLIMIT_FSIZE, &fsize_saved);
	jr_set_inflight(inflight);
	if (!blk_released) {
		unblock_pool();
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	rlog_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	/* Also proves every handle of every journal was closed. */
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

/* ==== 1. records ========================================================= */

static void check_roundtrip(const struct jr_rec *r, uint64_t batch, bool last)
{
	uint8_t buf[REC_MAX];
	struct jr_rec d;
	uint64_t b = 0;
	bool l = !last;
	size_t sz = jr_rec_size(r);
	ssize_t n;

	assert_true(sz >= 48 && sz % 8 == 0);
	/* One byte short does not fit; exactly right does. */
	assert_int_equal(jr_rec_encode(r, batch, last, buf, sz - 1), -ENOSPC);
	memset(buf, 0xee, sizeof(buf));
	n = jr_rec_encode(r, batch, last, buf, sz);
	assert_int_equal(n, (ssize_t)sz);
	/* Bytes after the record are neither needed nor touched. */
	assert_int_equal(buf[sz], 0xee);
	assert_int_equal(jr_rec_decode(buf, sizeof(buf), &d, &b, &l), n);
	assert_int_equal(b, batch);
	assert_int_equal(l, last);
	assert_int_equal(d.type, r->type);
	assert_int_equal(d.hostlen, r->hostlen);
	assert_memory_equal(d.host, r->host, r->hostlen);
	assert_int_equal(d.svid, r->svid);
	assert_int_equal(d.ohlen, r->ohlen);
	if (r->ohlen)
		assert_memory_equal(d.oh, r->oh, r->ohlen);
	assert_int_equal(d.fhlen, r->fhlen);
	if (r->fhlen)
		assert_memory_equal(d.fh, r->fh, r->fhlen);
	assert_int_equal(d.excl, r->excl);
	assert_int_equal(d.solo, last && r->solo); /* only a batch's last record says it */
	assert_int_equal(d.mode, r->mode);
	assert_int_equal(d.deny, r->deny);
	assert_true(d.start == r->start);
	assert_true(d.end == r->end);
	/* Decoding needs exactly the record, no more. */
	assert_int_equal(jr_rec_decode(buf, sz, &d, &b, &l), n);
}

static void test_rec_roundtrip(void **st)
{
	static char host[JR_HOST_MAX];
	static uint8_t oh[JR_OH_MAX], fh[JR_FH_MAX];
	struct jr_rec r;

	for (size_t k = 0; k < sizeof(host); k++)
		host[k] = (char)('A' + k % 26);
	for (size_t k = 0; k < sizeof(oh); k++)
		oh[k] = (uint8_t)(k * 7 + 1);
	for (size_t k = 0; k < sizeof(fh); k++)
		fh[k] = (uint8_t)(255 - k);

	for (int last = 0; last < 2; last++) {
		uint64_t batch = last ? UINT64_MAX : 0x0102030405060708ull;

		r = header_rec("group-name", JR_VERSION, true);
		check_roundtrip(&r, batch, last);
		r = header_rec("g", JR_VERSION, false);
		check_roundtrip(&r, batch, last);

		/* Every type at the maximal lengths, ranges to EOF. */
		r = (struct jr_rec){ .type = JR_LOCK, .host = host, .hostlen = JR_HOST_MAX,
				     .svid = UINT32_MAX, .oh = oh, .ohlen = JR_OH_MAX, .fh = fh,
				     .fhlen = JR_FH_MAX, .excl = true, .start = 0,
				     .end = UINT64_MAX };
		assert_int_equal(jr_rec_size(&r), 2160);
		check_roundtrip(&r, batch, last);
		r.excl = false;
		r.start = UINT64_MAX; /* a one-byte range at the very end */
		check_roundtrip(&r, batch, last);
		r.type = JR_UNLOCK;
		r.start = 12345;
		check_roundtrip(&r, batch, last);
		r = (struct jr_rec){ .type = JR_SHARE, .host = host, .hostlen = JR_HOST_MAX,
				     .oh = oh, .ohlen = JR_OH_MAX, .fh = fh, .fhlen = JR_FH_MAX };
		for (unsigned m = 0; m < 4; m++)
			for (unsigned d = 0; d < 4; d++) {
				r.mode = m;
				r.deny = d;
				check_roundtrip(&r, batch, last);
			}
		r.type = JR_UNSHARE;
		r.mode = r.deny = 0;
		check_roundtrip(&r, batch, last);
		r = (struct jr_rec){ .type = JR_FREE_CLIENT, .host = host, .hostlen = JR_HOST_MAX };
		check_roundtrip(&r, batch, last);
		r.hostlen = 1;
		check_roundtrip(&r, batch, last);
		/* Minimal: an empty owner handle, a 1-byte file handle. */
		r = (struct jr_rec){ .type = JR_LOCK, .host = "h", .hostlen = 1, .fh = fh,
				     .fhlen = 1, .start = 5, .end = 5 };
		check_roundtrip(&r, batch, last);
		r.solo = true;
		check_roundtrip(&r, batch, last);
	}
	/* And the samples every other test uses. */
	for (unsigned i = 0; i < NSAMPLES; i++)
		check_roundtrip(S(i), i, i & 1);
}

static void test_rec_size_rejects(void **st)
{
	static char host[JR_HOST_MAX + 1];
	static uint8_t oh[JR_OH_MAX + 1], fh[JR_FH_MAX + 1];
	const struct jr_rec ok = { .type = JR_LOCK, .host = host, .hostlen = 4, .oh = oh,
				   .ohlen = 4, .fh = fh, .fhlen = 4, .start = 1, .end = 2 };
	struct jr_rec r;
	uint8_t buf[REC_MAX * 2];

	assert_int_equal(jr_rec_size(&ok), 64);
#define REJECT(field, value) do { \
		r = ok; r.field = value; \
		assert_int_equal(jr_rec_size(&r), 0); \
		assert_int_equal(jr_rec_encode(&r, 1, true, buf, sizeof(buf)), -EINVAL); \
	} while (0)
	REJECT(hostlen, 0);
	REJECT(hostlen, JR_HOST_MAX + 1);
	REJECT(ohlen, JR_OH_MAX + 1);
	REJECT(fhlen, JR_FH_MAX + 1);
	REJECT(fhlen, 0);       /* a lock needs a file */
	REJECT(mode, 4);
	REJECT(deny, 4);
	REJECT(start, 3);       /* start > end */
	REJECT(type, 0);
	REJECT(type, JR_FREE_CLIENT + 1);
	r = ok;
	r.type = JR_UNLOCK;
	r.start = UINT64_MAX;
	r.end = UINT64_MAX - 1;
	assert_int_equal(jr_rec_size(&r), 0);
	for (enum jr_type t = JR_SHARE; t <= JR_UNSHARE; t++) {
		r = ok;
		r.type = t;
		r.fhlen = 0;
		assert_int_equal(jr_rec_size(&r), 0);
	}
	/* The limits themselves are fine. */
	r = ok;
	r.hostlen = JR_HOST_MAX;
	r.ohlen = JR_OH_MAX;
	r.fhlen = JR_FH_MAX;
	assert_int_not_equal(jr_rec_size(&r), 0);
#undef REJECT
}

/* Re-checksum a record after a deliberate change, so decode gets past the
 * CRC and meets the check under test. */
static void resum(uint8_t *p, uint32_t len)
{
	uint32_t c = jr_crc32c(0, p + 8, len - 8);

	p[4] = (uint8_t)c;
	p[5] = (uint8_t)(c >> 8);
	p[6] = (uint8_t)(c >> 16);
	p[7] = (uint8_t)(c >> 24);
}

static void set_len(uint8_t *p, uint32_t len)
{
	p[8] = (uint8_t)len;
	p[9] = (uint8_t)(len >> 8);
	p[10] = (uint8_t)(len >> 16);
	p[11] = (uint8_t)(len >> 24);
}

static void test_rec_decode_rejects(void **st)
{
	/* hostlen 5 + ohlen 3 + fhlen 5 = 13 bytes of data: 3 of padding */
	const struct jr_rec r = { .type = JR_LOCK, .host = "hostA", .hostlen = 5, .svid = 7,
				  .oh = "own", .ohlen = 3, .fh = "\1\2\3\4\5", .fhlen = 5,
				  .excl = true, .start = 10, .end = UINT64_MAX };
	uint8_t good[REC_MAX], p[8192];
	struct jr_rec d;
	uint64_t b;
	bool l;
	ssize_t n = jr_rec_encode(&r, 42, true, good, sizeof(good));

	assert_int_equal(n, 64);
	assert_int_equal(jr_crc32c(0, "123456789", 9), 0xe3069283); /* the CRC-32C check value */

	/* Every byte, changed in two ways, is caught. */
	for (ssize_t i = 0; i < n; i++)
		for (int how = 0; how < 2; how++) {
			memcpy(p, good, (size_t)n);
			p[i] ^= how ? 0xff : 0x01;
			assert_int_equal(jr_rec_decode(p, (size_t)n, &d, &b, &l), -EBADMSG);
		}

#define DECODE_FAILS(avail) assert_int_equal(jr_rec_decode(p, (avail), &d, &b, &l), -EBADMSG)
	/* Bad magic, even with a fine checksum (the magic is not summed). */
	memcpy(p, good, (size_t)n);
	p[3] = 0x32;
	DECODE_FAILS((size_t)n);
	/* len not a multiple of 8 (the record stays readable otherwise). */
	memcpy(p, good, (size_t)n);
	set_len(p, 60);
	resum(p, 60);
	DECODE_FAILS((size_t)n);
	/* len larger than what is there: the record is cut. */
	memcpy(p, good, (size_t)n);
	for (size_t avail = 0; avail < (size_t)n; avail++)
		DECODE_FAILS(avail);
	/* len larger than any record. */
	memset(p, 0, sizeof(p));
	memcpy(p, good, (size_t)n);
	set_len(p, 4096);
	resum(p, 4096);
	DECODE_FAILS(sizeof(p));
	/* len disagreeing with the field lengths (one more padding block). */
	memset(p, 0, sizeof(p));
	memcpy(p, good, (size_t)n);
	set_len(p, 72);
	resum(p, 72);
	DECODE_FAILS(sizeof(p));
	/* Non-zero padding, each padding byte. */
	for (size_t i = 61; i < 64; i++) {
		memcpy(p, good, (size_t)n);
		p[i] = 1;
		resum(p, 64);
		DECODE_FAILS((size_t)n);
	}
	/* Unknown types. */
	for (unsigned t = 0; t < 256; t++) {
		if (t >= JR_HEADER && t <= JR_FREE_CLIENT)
			continue;
		memcpy(p, good, (size_t)n);
		p[12] = (uint8_t)t;
		resum(p, 64);
		DECODE_FAILS((size_t)n);
	}
	/* Unknown flag bits, each of them (bit 2 is solo: below). */
	for (unsigned bit = 3; bit < 8; bit++) {
		memcpy(p, good, (size_t)n);
		p[13] |= (uint8_t)(1u << bit);
		resum(p, 64);
		DECODE_FAILS((size_t)n);
	}
	/* Solo on a record that does not end its batch: never written. */
	memcpy(p, good, (size_t)n);
	p[13] = (uint8_t)((p[13] & ~1u) | 4u);
	resum(p, 64);
	DECODE_FAILS((size_t)n);
	/* ... and on one that does, it decodes, and says so. */
	memcpy(p, good, (size_t)n);
	p[13] |= 4u;
	resum(p, 64);
	assert_int_equal(jr_rec_decode(p, (size_t)n, &d, &b, &l), 64);
	assert_true(d.solo);
	assert_true(l);
	/* Unknown bits in the share byte. */
	for (unsigned bit = 4; bit < 8; bit++) {
		memcpy(p, good, (size_t)n);
		p[31] |= (uint8_t)(1u << bit);
		resum(p, 64);
		DECODE_FAILS((size_t)n);
	}
	/* A lock whose range runs backwards. */
	memcpy(p, good, (size_t)n);
	memset(p + 40, 0, 8);
	resum(p, 64);
	DECODE_FAILS((size_t)n);
	/* The untouched record still decodes: the checks above are not vacuous. */
	memcpy(p, good, (size_t)n);
	assert_int_equal(jr_rec_decode(p, (size_t)n, &d, &b, &l), 64);
	assert_int_equal(b, 42);
	assert_true(l);
	/* A resummed but otherwise unchanged record decodes too: resum is right. */
	resum(p, 64);
	assert_int_equal(jr_rec_decode(p, (size_t)n, &d, &b, &l), 64);
#undef DECODE_FAILS
}

/* ==== 2. loading hand-built files ======================================== */

static void test_load_replays_in_order(void **st)
{
	struct jr_load_info li;

	for (int complete = 0; complete < 2; complete++) {
		/* Batches of 1, 3 and 9 records (two maximal ones among them). */
		jf_header(GROUP, JR_VERSION, complete);
		jf_batch(2, 0, 1);
		jf_batch(3, 1, 3);
		jf_batch(4, 4, 9);
		jf_write(jf.len);
		assert_int_equal(load(&li), 0);
		expect_log_range(0, 13);
		assert_int_equal(li.complete, complete);
		assert_int_equal(li.records, 13);
		assert_int_equal(li.batches, 4);
		assert_int_equal(li.valid_end, (off_t)jf.len);
		assert_int_equal(li.file_size, (off_t)jf.len);
		assert_false(li.torn);
		assert_int_equal(li.last_batch, 4);
	}

	/* A compacted file: header and state in one batch. */
	jf_reset();
	jf_begin_batch();
	struct jr_rec h = header_rec(GROUP, JR_VERSION, true);
	jf_rec(&h, 5, false);
	for (unsigned k = 0; k < 4; k++)
		jf_rec(S(20 + k), 5, k == 3);
	jf_batch(6, 30, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	const unsigned want[] = { 20, 21, 22, 23, 30, 31 };
	expect_log(want, 6);
	assert_true(li.complete);
	assert_int_equal(li.batches, 2);
	assert_int_equal(li.last_batch, 6);

	/* Only a header: nothing to replay. */
	jf_header(GROUP, JR_VERSION, false);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	assert_int_equal(rl.n, 0);
	assert_int_equal(li.records, 0);
	assert_false(li.complete);
	assert_int_equal(li.last_batch, 1);
}

/* A load is long work on a group's open thread: it reaches a yield point
 * at least once per 16 records replayed (and per chunk read, faulted and
 * unmapped), so a thread woken on its CPU runs within ~0.1 ms
 * (thprio.h). */
static void test_load_gives_way(void **st)
{
	struct jr_load_info li;

	(void)st;
	/* as many as the hand-built file holds (struct jf) */
	jf_header(GROUP, JR_VERSION, true);
	for (unsigned b = 0; b < 6; b++)
		jf_batch(2 + b, b * 20, 20);
	jf_write(jf.len);
	yield_points = 0;
	assert_int_equal(load(&li), 0);
	assert_int_equal(li.records, 120);
	assert_true(yield_points >= 120 / 16);
}

static void test_load_refuses(void **st)
{
	struct jr_load_info li;

	assert_int_equal(load(&li), -ENOENT);

	/* Another group's journal, also one whose name merely starts alike. */
	jf_header("g2", JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_true(li.why[0] != 0);
	jf_header(GROUP "0", JR_VERSION, true);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	jf_header("g", JR_VERSION, true);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);

	/* Another format version. */
	jf_header(GROUP, JR_VERSION + 1, true);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_non_null(strstr(li.why, "version"));
	jf_header(GROUP, 0, true);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);

	/* No header: state records first. */
	jf_reset();
	jf_batch(1, 0, 2);
	jf_batch(2, 2, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_int_equal(rl.n, 0);

	/* An empty file, a torn header, a header without its LAST flag. */
	jf_write(0);
	assert_int_equal(load(&li), -EUCLEAN);
	jf_header(GROUP, JR_VERSION, true);
	jf_write(jf.len - 1);
	assert_int_equal(load(&li), -EUCLEAN);
	jf_reset();
	jf_begin_batch();
	struct jr_rec h = header_rec(GROUP, JR_VERSION, true);
	jf_rec(&h, 1, false);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);

	/* A second header later on. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 1);
	jf_begin_batch();
	jf_rec(&h, 3, true);
	jf_batch(4, 1, 1);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_int_equal(li.bad_at, (off_t)jf.batch_off[2]);

	/* Finally the same file without the second header loads. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 1);
	jf_batch(3, 1, 1);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	assert_true(li.complete);
}

/* ==== 3. a torn last batch =============================================== */

/* The reference file: header, batch 2 (2 records), last batch 3 (3
 * records; the middle one maximal, so cuts fall in every field). */
static void build_torn_reference(void)
{
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_begin_batch();
	jf_rec(S(10), 3, false);
	jf_rec(S(13), 3, false); /* 13 % 7 == 6: maximal */
	jf_rec(S(11), 3, true);
}

static void expect_torn(const struct jr_load_info *li, size_t file_len)
{
	assert_true(li->torn);
	assert_int_equal(li->valid_end, (off_t)jf.batch_off[2]);
	assert_int_equal(li->file_size, (off_t)file_len);
	assert_int_equal(li->last_batch, 2);
	assert_int_equal(li->batches, 2);
	assert_int_equal(li->records, 2);
	expect_log_range(0, 2);
}

static void test_torn_cut_everywhere(void **st)
{
	struct jr_load_info li;

	build_torn_reference();
	/* Whole, it loads whole. */
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	assert_int_equal(li.records, 5);
	/* Cut at every byte inside the last batch (record boundaries too). */
	for (size_t cut = jf.batch_off[2] + 1; cut < jf.len; cut++) {
		jf_write(cut);
		assert_int_equal(load(&li), 0);
		expect_torn(&li, cut);
	}
}

static void test_torn_flipped_byte(void **st)
{
	struct jr_load_info li;

	/* Small records, so every byte of every record of the last batch can
	 * be tried; flipping one of the first two leaves the later records of
	 * that same batch intact (sectors written out of order). */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(3, 7, 3);
	for (size_t at = jf.batch_off[2]; at < jf.len; at++) {
		jf_write_flip(jf.len, at);
		assert_int_equal(load(&li), 0);
		expect_torn(&li, jf.len);
	}
}

static void test_torn_no_last_flag(void **st)
{
	struct jr_load_info li;

	/* The last batch never got its final record: all records are good
	 * but the batch is not whole. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch_flag(3, 10, 3, false);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	expect_torn(&li, jf.len);

	/* Same with a one-record batch. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch_flag(3, 10, 1, false);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	expect_torn(&li, jf.len);
}

/* ==== 4. damage in the middle ============================================ */

/* Does @why name offset @off (exactly that number)? */
static bool mentions_offset(const char *why, size_t off)
{
	for (const char *p = strstr(why, "offset "); p; p = strstr(p + 1, "offset "))
		if (strtoull(p + 7, NULL, 10) == off)
			return true;
	return false;
}

static void test_damage_flipped_byte(void **st)
{
	struct jr_load_info li;

	/* Every byte of every record before the last JR_INFLIGHT_MAX batches
	 * (the header too): a batch follows that was written only after this
	 * one was acknowledged, so acknowledged state is damaged. */
	_Static_assert(JR_INFLIGHT_MAX == 2, "the file below has 2 batches after the damage");
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 3);
	jf_batch(3, 3, 2);
	jf_batch(4, 5, 2);
	jf_batch(5, 7, 1);
	for (size_t k = 0; k < jf.nrec; k++) {
		size_t b = jf.rec_batch[k];
		size_t end = k + 1 < jf.nrec ? jf.rec_off[k + 1] : jf.len;

		if (b >= jf.nbatch - JR_INFLIGHT_MAX)
			break;
		for (size_t at = jf.rec_off[k]; at < end; at++) {
			jf_write_flip(jf.len, at);
			assert_int_equal(load(&li), -EUCLEAN);
			assert_int_equal(li.bad_at, (off_t)jf.rec_off[k]);
			/* ... and it names where that later batch is. */
			assert_true(mentions_offset(li.why, jf.batch_off[b + JR_INFLIGHT_MAX]));
		}
	}
}

static void test_torn_two_in_flight(void **st)
{
	struct jr_load_info li;

	/* The last two batches were in flight together: the later one
	 * reached the disk, the earlier one did not, or only in part.  Neither
	 * was acknowledged (results are taken in order): both are dropped. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(3, 2, 2);
	jf_batch(4, 4, 2);
	for (size_t at = jf.batch_off[2]; at < jf.batch_off[3]; at++) {
		jf_write_flip(jf.len, at);
		assert_int_equal(load(&li), 0);
		assert_true(li.torn);
		assert_int_equal(li.valid_end, (off_t)jf.batch_off[2]);
		assert_int_equal(li.last_batch, 2);
		expect_log_range(0, 2);
	}
	/* The earlier one never written at all: zeros where it goes. */
	jf_write_zeroed(2);
	assert_int_equal(load(&li), 0);
	assert_true(li.torn);
	assert_false(li.zero_tail);
	expect_log_range(0, 2);

	/* Zeros after whole batches: zeroed space, nothing torn. */
	static const uint8_t zeros[4096];
	jf_write(jf.len);
	int fd = open(jpath, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, sizeof(zeros), (off_t)jf.len), (ssize_t)sizeof(zeros));
	close(fd);
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	assert_true(li.zero_tail);
	assert_int_equal(li.valid_end, (off_t)jf.len);
	assert_int_equal(li.file_size, (off_t)(jf.len + sizeof(zeros)));
	expect_log_range(0, 6);
}

/*
 * A solo batch was written once every batch before it was durable (and
 * perhaps acknowledged): damage to any of those, followed by a good solo
 * record, is damage to acknowledged state, not a torn tail.  Without the
 * flag (test_torn_two_in_flight) the same file drops both as torn.
 */
static void test_damage_before_solo(void **st)
{
	struct jr_load_info li;

	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(3, 2, 2);
	jf_batch_solo(4, 4, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	expect_log_range(0, 6);
	/* Every byte of the last-but-one batch. */
	for (size_t at = jf.batch_off[2]; at < jf.batch_off[3]; at++) {
		jf_write_flip(jf.len, at);
		assert_int_equal(load(&li), -EUCLEAN);
		/* ... names the solo record that proves it. */
		assert_true(mentions_offset(li.why, jf.rec_off[jf.nrec - 1]));
	}
	/* Never written at all: zeros where it goes, the solo one after. */
	jf_write_zeroed(2);
	assert_int_equal(load(&li), -EUCLEAN);

	/* The solo batch itself torn (a record before its last one bad, the
	 * last intact): it was in flight, nothing of it acknowledged. */
	for (size_t at = jf.batch_off[3]; at < jf.rec_off[jf.nrec - 1]; at++) {
		jf_write_flip(jf.len, at);
		assert_int_equal(load(&li), 0);
		assert_true(li.torn);
		assert_int_equal(li.valid_end, (off_t)jf.batch_off[3]);
		assert_int_equal(li.last_batch, 3);
		expect_log_range(0, 4);
	}
	/* A solo batch that is the first bad one's own: the same. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch_solo(3, 2, 3);
	for (size_t at = jf.batch_off[2]; at < jf.rec_off[jf.nrec - 1]; at++) {
		jf_write_flip(jf.len, at);
		assert_int_equal(load(&li), 0);
		assert_true(li.torn);
		assert_int_equal(li.last_batch, 2);
		expect_log_range(0, 2);
	}
}

/* Version 1 files (written before the solo flag) still load; a version
 * outside what this build reads is refused whole. */
static void test_load_versions(void **st)
{
	struct jr_load_info li;

	for (uint32_t v = 0; v <= JR_VERSION + 1; v++) {
		jf_header(GROUP, v, true);
		jf_batch(2, 0, 2);
		jf_write(jf.len);
		if (v < JR_VERSION_MIN || v > JR_VERSION) {
			assert_int_equal(load(&li), -EUCLEAN);
			assert_non_null(strstr(li.why, "format version"));
			continue;
		}
		assert_int_equal(load(&li), 0);
		assert_int_equal(li.version, v);
		expect_log_range(0, 2);
	}
}

/* xorshift64*: the same damage on every run, on every machine. */
static uint64_t rnd_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/*
 * Random damage, seeded: flipped bits, zeroed runs, a cut, bytes copied
 * from one place of the file to another (a misdirected write), one to
 * three of them at once.  Whatever was done, a load either refuses the
 * file or replays exactly the records of its first k whole batches, in
 * order: never a record of a damaged batch, never one out of its place;
 * and every batch that ends before the first changed byte is among them.
 */
static void test_load_random_damage(void **st)
{
	static uint8_t orig[sizeof(jf.p)];
	size_t recs_before[16] = { 0 }; /* records of the batches before index k */
	struct jr_load_info li;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned next = 0, loaded = 0, refused = 0;

	jf_header(GROUP, JR_VERSION, true);
	for (uint64_t b = 2; b <= 10; b++) {
		unsigned n = 1 + (unsigned)(b * 7 % 4);

		if (b % 3 == 0)
			jf_batch_solo(b, next, n);
		else
			jf_batch(b, next, n);
		next += n;
	}
	/* recs_before[k]: the records of batches 0..k-1 but the header. */
	for (size_t r = 1; r < jf.nrec; r++)
		for (size_t k = jf.rec_batch[r] + 1; k <= jf.nbatch; k++)
			recs_before[k]++;
	memcpy(orig, jf.p, jf.len);
	for (int it = 0; it < 4000; it++) {
		size_t len = jf.len;
		unsigned nmut = 1 + (unsigned)(rnd_next(&x) % 3);

		for (unsigned m = 0; m < nmut && len > 0; m++) {
			size_t at = (size_t)(rnd_next(&x) % len);
			size_t n = 1 + (size_t)(rnd_next(&x) % 96);

			switch (rnd_next(&x) % 4) {
			case 0:
				jf.p[at] ^= (uint8_t)(1u << (rnd_next(&x) % 8));
				break;
			case 1:
				memset(jf.p + at, 0, n < len - at ? n : len - at);
				break;
			case 2:
				len = at;
				break;
			default: {
				size_t to = (size_t)(rnd_next(&x) % len);
				size_t max = len - (at > to ? at : to);

				memmove(jf.p + to, jf.p + at, n < max ? n : max);
				break;
			}
			}
		}
		jf_write(len);
		int rc = load(&li);
		size_t first = 0, intact = 0;

		while (first < len && jf.p[first] == orig[first])
			first++;
		while (intact < jf.nbatch &&
		       (intact + 1 < jf.nbatch ? jf.batch_off[intact + 1] : jf.len) <= first)
			intact++;
		if (rc == 0) {
			loaded++;
			assert_true(li.batches >= 1 && li.batches <= jf.nbatch);
			/* A prefix of whole batches: the samples 0.. in order ... */
			assert_int_equal(rl.n, recs_before[li.batches]);
			expect_log_range(0, rl.n);
			/* ... with every batch before the damage. */
			assert_true(li.batches >= intact);
		} else {
			assert_int_equal(rc, -EUCLEAN);
			assert_true(li.why[0] != 0);
			refused++;
		}
		memcpy(jf.p, orig, jf.len);
	}
	/* Both outcomes were exercised, often. */
	assert_true(loaded > 400 && refused > 400);
}

static void test_damage_callback_refuses(void **st)
{
	struct jr_load_info li;

	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(3, 2, 3);
	jf_write(jf.len);
	for (long k = 0; k < 5; k++) {
		assert_int_equal(load_fail_at(&li, k), -EUCLEAN);
		assert_int_equal(li.bad_at, (off_t)jf.rec_off[1 + k]);
		assert_true(li.why[0] != 0);
		assert_int_equal(rl.n, (size_t)k); /* replayed in order up to it */
	}
	/* Even in the last batch: it is whole, so it is state. */
	assert_int_equal(load_fail_at(&li, 4), -EUCLEAN);
}

static void test_damage_batch_order(void **st)
{
	struct jr_load_info li;

	/* Backwards. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(3, 2, 2);
	jf_batch(2, 4, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_int_equal(li.bad_at, (off_t)jf.batch_off[3]);
	assert_true(li.why[0] != 0);
	/* A number skipped: a batch from elsewhere where batch 3 should be
	 * (a misdirected write), however whole. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(4, 2, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_int_equal(li.bad_at, (off_t)jf.batch_off[2]);
	assert_non_null(strstr(li.why, "one more than"));
	/* Repeated. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(2, 0, 2);
	jf_batch(2, 2, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);
	assert_int_equal(li.bad_at, (off_t)jf.batch_off[2]);
	/* Back to the header's number. */
	jf_header(GROUP, JR_VERSION, true);
	jf_batch(1, 0, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), -EUCLEAN);

	/* A batch interrupted by another (later, or earlier) batch. */
	for (uint64_t other = 1; other < 6; other += 4) {
		jf_header(GROUP, JR_VERSION, true);
		jf_batch(2, 0, 1);
		jf_batch_flag(3, 1, 2, false);
		jf_batch(other, 3, 2);
		jf_write(jf.len);
		assert_int_equal(load(&li), -EUCLEAN);
		assert_int_equal(li.bad_at, (off_t)jf.batch_off[3]);
		assert_true(li.why[0] != 0);
	}
}

/* ==== 5. the writer ====================================================== */

static void test_writer_new_journal(void **st)
{
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 };
	struct jr *j;

	for (int complete = 0; complete < 2; complete++) {
		j = open_new(complete, NULL);
		assert_true(jr_can_grant(j));
		assert_int_equal(jr_error(j), 0);
		assert_int_equal(jr_wait(j, on_done, &w), 1); /* nothing pending */
		jr_get_stats(j, &js);
		assert_int_equal(js.batches, 0);
		assert_int_equal(js.file, file_size(jpath));
		/* Written at once (blocking): readable before the loop ran. */
		assert_int_equal(load(&li), 0);
		assert_int_equal(li.complete, complete);
		assert_int_equal(li.records, 0);
		assert_int_equal(li.batches, 1);
		assert_int_equal(li.last_batch, 1);
		assert_false(li.torn);
		assert_int_equal(access(tmppath, F_OK), -1);
		close_jr(j);
	}
	assert_int_equal(w.calls, 0);
	assert_int_equal(access(dmgpath, F_OK), -1); /* keep_old was false */

	/* keep_old: the old file is kept aside, whatever it holds. */
	jf_reset();
	memcpy(jf.p, "garbage", 7);
	jf_write(7);
	assert_int_equal(jr_open(&loop, dir, GROUP, NULL, true, true, snap_cb, NULL, &j), 0);
	assert_int_equal(file_size(dmgpath), 7);
	assert_int_equal(load(&li), 0);
	assert_true(li.complete);
	close_jr(j);
	/* keep_old with no old file is fine too. */
	unlink(jpath);
	unlink(dmgpath);
	assert_int_equal(jr_open(&loop, dir, GROUP, NULL, true, true, snap_cb, NULL, &j), 0);
	assert_int_equal(access(dmgpath, F_OK), -1);
	close_jr(j);

	/* No such directory. */
	char nodir[300];
	snprintf(nodir, sizeof(nodir), "%s/nonexistent", dir);
	assert_int_equal(jr_open(&loop, nodir, GROUP, NULL, true, false, snap_cb, NULL, &j),
			 -ENOENT);
	jr_close(NULL, NULL, NULL);
}

static void test_writer_group_commit(void **st)
{
	enum { N = 100 };
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 }, w2 = { 0 };
	struct jr *j = open_new(true, NULL);
	unsigned want[N + 1];

	/* One turn's worth of appends, two waiters. */
	for (unsigned k = 0; k < N; k++) {
		assert_int_equal(jr_append(j, S(k)), 0);
		want[k] = k;
	}
	assert_int_equal(jr_wait(j, on_done, &w), 0);
	assert_int_equal(jr_wait(j, on_done, &w2), 0);
	assert_int_equal(w.calls, 0); /* never before it is durable */
	run_until(&w, 1);
	run_until(&w2, 1);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w2.rc, 0);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 1);
	assert_int_equal(js.records, N);
	assert_int_equal(js.failures, 0);
	assert_int_equal(js.file, file_size(jpath));
	/* Everything durable now. */
	assert_int_equal(jr_wait(j, on_done, &w), 1);

	assert_int_equal(load(&li), 0);
	expect_log(want, N);
	assert_int_equal(li.batches, 2); /* the header's and ours */
	assert_int_equal(li.last_batch, 2);

	/* Invalid records are refused and change nothing. */
	struct jr_rec bad = *S(0);
	bad.hostlen = 0;
	assert_int_equal(jr_append(j, &bad), -EINVAL);
	assert_int_equal(jr_wait(j, on_done, &w), 1);

	/* The next turn's appends are the next batch. */
	assert_int_equal(jr_append(j, S(N)), 0);
	want[N] = N;
	assert_int_equal(jr_wait(j, on_done, &w), 0);
	run_until(&w, 2);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 2);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log(want, N + 1);
	assert_int_equal(li.last_batch, 3);
}

static void test_writer_appends_while_in_flight(void **st)
{
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w[5] = { 0 };
	struct jr *j = open_new(true, NULL);

	/* Turn 1: record 0 goes to the pool, where it waits behind the
	 * blocker; turns 2..4 append records 1..3 meanwhile. */
	block_io(j);
	append_range(j, 0, 1, &w[0]);
	turn();
	/* In flight, nothing open: a waiter waits for the write in flight. */
	assert_int_equal(jr_wait(j, on_done, &w[4]), 0);
	for (unsigned k = 1; k <= 3; k++) {
		append_range(j, k, 1, &w[k]);
		turn();
	}
	for (int k = 0; k < 5; k++)
		assert_int_equal(w[k].calls, 0);
	unblock_io(j);
	run_until(&w[3], 1);
	for (int k = 0; k < 5; k++) {
		assert_int_equal(w[k].calls, 1);
		assert_int_equal(w[k].rc, 0);
	}
	/* The first write, then one for everything appended meanwhile. */
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 2);
	assert_int_equal(js.records, 4);
	assert_int_equal(jr_wait(j, on_done, &w[0]), 1);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 4);
	assert_int_equal(li.batches, 3);
}

/* Waiters that note the order they were called in. */
static int order_next;
static enum jr_io io_mode = JR_IO_URING;
struct owait { int calls, rc, seq; };

static void on_done_ordered(void *arg, int rc)
{
	struct owait *w = arg;
	w->calls++;
	w->rc = rc;
	w->seq = ++order_next;
}

static void test_writer_two_in_flight(void **st)
{
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w0 = { 0 };
	struct owait w[4] = { 0 };
	struct jr *j = open_new(true, NULL);

	/* The first batch also zeroes space ahead: it goes alone. */
	append_range(j, 0, 1, &w0);
	run_until(&w0, 1);
	jr_get_stats(j, &js);
	assert_true(js.file >= js.size + 1024);
	order_next = 0;

	/* Now batches go into zeroed space: with journal_inflight = 2, two
	 * of them at once, the rest waits in the open batch. */
	_Static_assert(JR_INFLIGHT_MAX == 2, "two writes below, then an open batch");
	jr_set_inflight(2);
	block_io(j);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(jr_append(j, S(1 + k)), 0);
		assert_int_equal(jr_wait(j, on_done_ordered, &w[k]), 0);
		turn();
	}
	/* Nothing open: this waits for the last write in flight. */
	assert_int_equal(jr_wait(j, on_done_ordered, &w[2]), 0);
	/* A third batch stays open while two writes are in flight. */
	assert_int_equal(jr_append(j, S(3)), 0);
	assert_int_equal(jr_wait(j, on_done_ordered, &w[3]), 0);
	turn();
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 1);
	for (int k = 0; k < 4; k++)
		assert_int_equal(w[k].calls, 0);
	unblock_io(j);
	jr_set_inflight(inflight);
	RUN_UNTIL(w[3].calls == 1, 5000);
	/* Each once, all good, in batch order. */
	for (int k = 0; k < 4; k++) {
		assert_int_equal(w[k].calls, 1);
		assert_int_equal(w[k].rc, 0);
	}
	assert_true(w[0].seq < w[1].seq);
	assert_true(w[0].seq < w[2].seq);
	assert_true(w[1].seq < w[3].seq && w[2].seq < w[3].seq);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 4);
	assert_int_equal(js.file, file_size(jpath));
	close_jr(j);
	assert_int_equal(load(&li), 0);
	assert_true(li.zero_tail);
	assert_false(li.torn);
	expect_log_range(0, 4);
	assert_int_equal(li.batches, 5);
	assert_int_equal(li.version, JR_VERSION);
	/* Solo: the header's, the first append's and the first of the two
	 * written at once; not the second, written while the first was in
	 * flight (the fifth depends on how the two completed). */
	struct fbatch fb[8];
	assert_int_equal(file_batches(fb, 8), 5);
	assert_true(fb[0].solo && fb[1].solo && fb[2].solo);
	assert_false(fb[3].solo);
}

/* journal_inflight = 1 (the default): while a batch is being written,
 * every record of the turns after it gathers into one open batch. */
static void test_writer_one_in_flight(void **st)
{
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w0 = { 0 };
	struct owait w[4] = { 0 };
	struct jr *j = open_new(true, NULL);

	append_range(j, 0, 1, &w0);  /* zeroes space ahead: alone */
	run_until(&w0, 1);
	order_next = 0;
	jr_set_inflight(1);
	block_io(j);
	/* Turn 1's record is written; turns 2 and 3 find a write in flight. */
	for (unsigned k = 0; k < 3; k++) {
		assert_int_equal(jr_append(j, S(1 + k)), 0);
		assert_int_equal(jr_wait(j, on_done_ordered, &w[k]), 0);
		turn();
	}
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 1);
	unblock_io(j);
	RUN_UNTIL(w[2].calls == 1, 5000);
	jr_set_inflight(inflight);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(w[k].calls, 1);
		assert_int_equal(w[k].rc, 0);
	}
	assert_true(w[0].seq < w[1].seq && w[0].seq < w[2].seq);
	/* The first batch, turn 1's, and one for turns 2 and 3 together. */
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 3);
	assert_int_equal(js.records, 4);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 4);
	assert_int_equal(li.batches, 4);
	/* One at a time: every batch was written with nothing before it in
	 * flight, and says so. */
	struct fbatch fb[8];
	assert_int_equal(file_batches(fb, 8), 4);
	for (int k = 0; k < 4; k++)
		assert_true(fb[k].solo);
}

/* Callers @first and @first+1, one record each, in one turn: a batch of
 * two callers, made durable. */
static void two_callers(struct jr *j, unsigned first, struct wait *w)
{
	append_range(j, first, 1, &w[0]);
	append_range(j, first + 1, 1, &w[1]);
	run_until(&w[0], 1);
	run_until(&w[1], 1);
}

static uint64_t gathered_of(const struct jr *j)
{
	struct jr_stats js;

	jr_get_stats(j, &js);
	return js.gathered;
}

/* The bound of a hold follows the disk's pace; one stalled sync barely
 * moves it. */
static void test_gather_bound(void **st)
{
	uint64_t avg = jr_sync_avg_next(0, 200000);   /* the first batch: itself */
	int k;

	(void)st;
	assert_int_equal(avg, 200000);
	/* A 5 s stall counts as 4 x 200 us: the bound grows by 3/8, not to 0.6 s. */
	avg = jr_sync_avg_next(avg, 5000000000ull);
	assert_int_equal(avg, 275000);
	/* Back at 200 us: back down. */
	for (k = 0; k < 40; k++)
		avg = jr_sync_avg_next(avg, 200000);
	assert_true(avg >= 200000 && avg < 201000);
	/* A disk that got 25 times slower for good: followed within 30 batches. */
	for (k = 0; k < 30 && avg < 4500000; k++)
		avg = jr_sync_avg_next(avg, 5000000);
	assert_true(k < 30);
	assert_true(avg <= 5000000);
}

#define GATHER_FOREVER (3600ull * 1000000000u) /* a bound no test outlasts */

/*
 * journal_gather (on by default): once a batch that carried two or more
 * callers is durable, the next one is held until as many callers wait, for
 * at most one average write + sync.  The test sets that average (the hook),
 * so what it checks is the order, never a time: a bound no test outlasts,
 * which only enough callers end; a short one, which ends by itself; no hold
 * after a batch of one caller, nor with gathering off; a close while a
 * batch is held.
 */
static void test_writer_gathers(void **st)
{
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w[12] = { 0 };
	struct jr *j = open_new(true, NULL);
	uint64_t b0;

	(void)st;
	jr_set_gather(true);
	append_range(j, 0, 1, &w[0]);  /* zeroes space ahead: alone */
	run_until(&w[0], 1);
	two_callers(j, 1, &w[1]);
	assert_int_equal(gathered_of(j), 0); /* both came in one turn */
	jr_get_stats(j, &js);
	b0 = js.batches;

	/* One caller: held, turn after turn, never written meanwhile. */
	jr_test_sync_avg(j, GATHER_FOREVER);
	append_range(j, 3, 1, &w[3]);
	for (int k = 0; k < 5; k++)
		turn();
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, b0);
	assert_int_equal(js.gathered, 1);
	assert_int_equal(w[3].calls, 0);
	/* A second caller ends the hold: the two go as one batch. */
	append_range(j, 4, 1, &w[4]);
	run_until(&w[3], 1);
	run_until(&w[4], 1);
	assert_int_equal(w[3].rc, 0);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, b0 + 1);
	assert_int_equal(js.records, 5);

	/* A short bound ends by itself: the one caller is written alone. */
	jr_test_sync_avg(j, 2000000u);
	append_range(j, 5, 1, &w[5]);
	run_until(&w[5], 1);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, b0 + 2);
	assert_int_equal(js.gathered, 2);

	/* After a batch of one caller, one caller is enough. */
	jr_test_sync_avg(j, GATHER_FOREVER);
	append_range(j, 6, 1, &w[6]);
	run_until(&w[6], 1);
	assert_int_equal(gathered_of(j), 2);

	/* Gathering off: not held after a batch of two either. */
	two_callers(j, 7, &w[7]);
	jr_test_sync_avg(j, GATHER_FOREVER);
	jr_set_gather(false);
	append_range(j, 9, 1, &w[9]);
	run_until(&w[9], 1);
	jr_set_gather(true);
	assert_int_equal(gathered_of(j), 2);

	/* Closed while a batch is held: its caller is never called, the
	 * timer goes with the journal (ASan: nothing leaks), and the held
	 * batch is written at once, not dropped (a release in it would come
	 * back as a reserved lock at the next owner). */
	two_callers(j, 10, &w[10]);
	jr_test_sync_avg(j, GATHER_FOREVER);
	append_range(j, 12, 1, NULL);
	turn();
	assert_int_equal(gathered_of(j), 3);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 13);
}

static void test_writer_reopen_continues(void **st)
{
	struct jr_load_info li;
	struct wait w = { 0 };
	struct jr *j = open_new(false, NULL);
	off_t good;

	append_range(j, 0, 3, &w);
	run_until(&w, 1);
	close_jr(j);
	/* What follows the batch is zeroed space, not a torn batch. */
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	assert_true(li.zero_tail);
	assert_true(li.file_size > li.valid_end);
	good = li.valid_end;

	/* A crash while writing the next batch: part of a record. */
	jf_reset();
	jf_begin_batch();
	jf_rec(S(50), 3, true);
	int fd = open(jpath, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, jf.p, 40, good), 40);
	close(fd);

	assert_int_equal(load(&li), 0);
	assert_true(li.torn);
	assert_int_equal(li.valid_end, good);
	/* A fold that never finished left its temporary: the open removes it. */
	{
		char fold[PATH_MAX];
		int ffd;

		snprintf(fold, sizeof(fold), "%s/.journal.fold", dir);
		ffd = open(fold, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(ffd >= 0);
		assert_int_equal(write(ffd, "half a fold", 11), 11);
		close(ffd);
		/* Continue where the good part ends: the torn tail goes. */
		assert_int_equal(jr_open(&loop, dir, GROUP, &li, true, false, snap_cb, NULL, &j), 0);
		assert_int_equal(access(fold, F_OK), -1);
		assert_int_equal(errno, ENOENT);
	}
	assert_int_equal(file_size(jpath), good);
	append_range(j, 3, 2, &w);
	run_until(&w, 2);
	assert_int_equal(w.rc, 0);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	assert_false(li.complete); /* from the loaded header, not jr_open's flag */
	expect_log_range(0, 5);
	assert_int_equal(li.last_batch, 3); /* numbering continues */
}

/*
 * A group opens its journal on the thread pool (jr_open without a loop) and
 * attaches it on the loop later: the file work is done before the attach,
 * a journal closed before it is freed without a loop (ASan: no leak), and
 * one attached appends and numbers on as if opened on the loop.
 */
static void test_writer_open_off_loop(void **st)
{
	struct jr_load_info li;
	struct wait w = { 0 };
	struct jr *j;

	(void)st;
	assert_int_equal(jr_open(NULL, dir, GROUP, NULL, true, false, snap_cb, NULL, &j), 0);
	assert_int_equal(load(&li), 0); /* the header is on disk before any loop */
	assert_true(li.complete);
	jr_close(j, NULL, NULL);                    /* never attached */

	assert_int_equal(load(&li), 0);
	assert_int_equal(jr_open(NULL, dir, GROUP, &li, true, false, snap_cb, NULL, &j), 0);
	jr_attach(j, &loop);
	append_range(j, 0, 3, &w);
	run_until(&w, 1);
	assert_int_equal(w.rc, 0);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 3);
	assert_int_equal(li.last_batch, 2); /* header batch, then ours */
}

/* ==== 6. compaction ====================================================== */

static void test_compact_snapshot(void **st)
{
	static const unsigned state[] = { 40, 41, 48, 43 }; /* 48: maximal */
	struct snap s = { .idx = state, .n = 4 };
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 }, wx = { 0 }, wy = { 0 }, wz = { 0 };
	struct jr *j = open_new(false, &s);

	assert_int_equal(jr_snap_add(j, S(0)), -EINVAL); /* not in a snapshot */
	append_range(j, 0, 3, &w);
	run_until(&w, 1);

	/* In one turn: X, the request, Y.  The snapshot is the caller's state
	 * at the end of the turn, so it covers both. */
	append_range(j, 60, 1, &wx);
	jr_compact(j, false);
	append_range(j, 61, 1, &wy);
	turn();
	assert_int_equal(s.calls, 1);
	/* After it: Z goes to the new file, after the snapshot. */
	append_range(j, 62, 2, &wz);
	assert_int_equal(wx.calls + wy.calls + wz.calls, 0);
	run_until(&wz, 1);
	assert_int_equal(wx.calls, 1);
	assert_int_equal(wx.rc, 0);
	assert_int_equal(wy.calls, 1);
	assert_int_equal(wy.rc, 0);
	assert_int_equal(wz.rc, 0);
	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 1);
	assert_int_equal(js.file, file_size(jpath));
	assert_int_equal(access(tmppath, F_OK), -1);
	assert_int_equal(jr_wait(j, on_done, &w), 1);

	assert_int_equal(load(&li), 0);
	const unsigned want[] = { 40, 41, 48, 43, 62, 63 };
	expect_log(want, 6);
	assert_false(li.complete);
	assert_int_equal(li.batches, 2);

	/* Still appendable after reopening the compacted file. */
	close_jr(j);
	assert_int_equal(jr_open(&loop, dir, GROUP, &li, true, false, snap_cb, &s, &j), 0);
	append_range(j, 64, 1, &w);
	run_until(&w, 2);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	const unsigned want2[] = { 40, 41, 48, 43, 62, 63, 64 };
	expect_log(want2, 7);
}

/*
 * A version 1 file (started by a node that takes the solo flag for damage)
 * is appended to without the flag, so that node could still load it; the
 * first compaction gives it this build's header, and the flag follows.
 */
static void test_writer_version1_file(void **st)
{
	static const unsigned state[] = { 0, 1, 20 };
	struct snap s = { .idx = state, .n = 3 };
	struct jr_load_info li;
	struct wait w = { 0 };
	struct fbatch fb[8];
	struct jr *j;

	jf_header(GROUP, 1, true);
	jf_batch(2, 0, 2);
	jf_write(jf.len);
	assert_int_equal(load(&li), 0);
	assert_int_equal(li.version, 1);
	assert_int_equal(jr_open(&loop, dir, GROUP, &li, true, false, snap_cb, &s, &j), 0);
	append_range(j, 20, 1, &w);
	run_until(&w, 1);
	assert_int_equal(load(&li), 0);
	assert_int_equal(li.version, 1);
	/* What a version 1 reader sees: no flag bit it does not know. */
	assert_int_equal(file_batches(fb, 8), 3);
	for (int k = 0; k < 3; k++)
		assert_false(fb[k].solo);
	jr_compact(j, false);
	run_until_compactions(j, 1);
	append_range(j, 21, 1, &w);
	run_until(&w, 2);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	assert_int_equal(li.version, JR_VERSION);
	const unsigned want[] = { 0, 1, 20, 21 };
	expect_log(want, 4);
	assert_int_equal(file_batches(fb, 8), 2);
	assert_true(fb[0].solo && fb[1].solo);
}

static void test_compact_complete(void **st)
{
	struct snap s = { 0 };
	struct jr_load_info li;
	struct wait w = { 0 };
	struct jr *j = open_new(false, &s);

	append_range(j, 0, 2, &w);
	run_until(&w, 1);
	jr_compact(j, true);
	run_until_compactions(j, 1);
	assert_int_equal(s.calls, 1);
	assert_int_equal(load(&li), 0);
	assert_true(li.complete);
	assert_int_equal(li.records, 0); /* the (empty) snapshot */
	/* Once complete, a plain compaction keeps it so. */
	jr_compact(j, false);
	run_until_compactions(j, 2);
	assert_int_equal(s.calls, 2);
	assert_int_equal(load(&li), 0);
	assert_true(li.complete);
	close_jr(j);
}

static void test_compact_when_large(void **st)
{
	static const unsigned state[] = { 5 };
	struct snap s = { .idx = state, .n = 1 };
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 };
	struct jr *j = open_new(true, &s);
	unsigned n = JR_COMPACT_MIN / 2160 + 1;

	/* Past JR_COMPACT_MIN the journal compacts by itself. */
	for (unsigned k = 0; k < n; k++)
		assert_int_equal(jr_append(j, S(6)), 0); /* maximal */
	assert_int_equal(jr_wait(j, on_done, &w), 0);
	run_until(&w, 1);
	assert_int_equal(w.rc, 0);
	run_until_compactions(j, 1);
	jr_get_stats(j, &js);
	assert_int_equal(js.batches, 1);
	assert_true(js.size < 4096);
	assert_int_equal(load(&li), 0);
	expect_log(state, 1);
	close_jr(j);
}

static void test_compact_snapshot_refused(void **st)
{
	struct snap s = { .rc = -ENOMEM };
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 }, wx = { 0 };
	struct jr *j = open_new(true, &s);

	/* The caller cannot build a snapshot: the compaction is abandoned and
	 * the open batch is written as usual. */
	append_range(j, 0, 1, &wx);
	jr_compact(j, false);
	run_until(&wx, 1);
	assert_int_equal(s.calls, 1);
	assert_int_equal(wx.rc, 0);
	assert_true(jr_can_grant(j));
	append_range(j, 1, 3, &w);
	run_until(&w, 1);
	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 0);
	assert_int_equal(js.batches, 2);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 4);
	/* Batch numbers stay consecutive: 1 header, 2, 3.  A gap would make
	 * a torn last batch look like damage (below). */
	assert_int_equal(li.last_batch, 3);

	/* So a crash tearing the first record of the last batch (its later
	 * records on disk) is a torn tail, not damage. */
	jf_reset();
	int fd = open(jpath, O_RDONLY);
	assert_true(fd >= 0);
	jf.len = (size_t)read(fd, jf.p, sizeof(jf.p));
	close(fd);
	assert_true(jf.len >= (size_t)li.valid_end);
	jf.len = (size_t)li.valid_end; /* without the zeroed space */
	size_t last_start = jf.len - jr_rec_size(S(1)) - jr_rec_size(S(2)) - jr_rec_size(S(3));
	jf_write_flip(jf.len, last_start + 20);
	assert_int_equal(load(&li), 0);
	assert_true(li.torn);
	expect_log_range(0, 1);
}

/* ==== 7. write failure =================================================== */

static void test_failure_and_recovery(void **st)
{
	static const unsigned state[] = { 6, 13, 20 }; /* maximal: > the limit */
	struct snap s = { .idx = state, .n = 3 };
	struct jr_load_info li;
	struct jr_stats js;
	struct wait w = { 0 }, w1 = { 0 }, w2 = { 0 };
	struct jr *j = open_new(false, &s);
	off_t good;

	/* No room to zero space ahead: the batch is still written, and
	 * appending goes on without zeroed space (each batch grows the file). */
	signal(SIGXFSZ, SIG_IGN);
	set_fsize_limit((rlim_t)file_size(jpath) + 1000);
	append_range(j, 0, 2, &w);
	run_until(&w, 1);
	assert_int_equal(w.rc, 0);
	good = file_size(jpath);
	jr_get_stats(j, &js);
	assert_int_equal(js.size, good);
	assert_int_equal(js.file, good);
	assert_true(jr_can_grant(j));

	/* The file may grow by 100 bytes only: the next write (records 2, 3:
	 * 128 bytes) lands in part, then fails (EFBIG), so there is a part
	 * to cut off again. */
	assert_int_equal(jr_rec_size(S(2)) + jr_rec_size(S(3)), 128);
	set_fsize_limit((rlim_t)good + 100);
	block_io(j);
	append_range(j, 2, 2, &w1);
	turn();                         /* in flight, behind the blocker */
	append_range(j, 4, 1, &w2);     /* open, waiting for the next write */
	unblock_io(j);
	run_until(&w1, 1);
	run_until(&w2, 1);
	assert_int_equal(w1.rc, -EFBIG);
	assert_int_equal(w2.rc, -EFBIG);
	assert_false(jr_can_grant(j));
	assert_int_equal(jr_error(j), -EFBIG);
	assert_int_equal(jr_append(j, S(5)), -EIO);
	assert_int_equal(jr_wait(j, on_done, &w), -EIO);
	jr_get_stats(j, &js);
	assert_int_equal(js.failures, 1);
	assert_int_equal(js.batches, 1);
	/* Cut back to the last good batch. */
	assert_int_equal(file_size(jpath), good);
	assert_int_equal(load(&li), 0);
	assert_false(li.torn);
	expect_log_range(0, 2);

	/* The retry (every second) cannot write the snapshot either.  As the
	 * error said "no room", it removed the old journal first to make
	 * some (jr_install's drop_old): a crash now leaves no journal, so the
	 * next owner runs a plain grace.  Waited for as an outcome (the
	 * second failure), not a time: a loaded machine ran the retry's
	 * snapshot after 1.5 s. */
	RUN_UNTIL(failures_of(j) >= 2, 60000);
	assert_true(s.calls >= 1);
	assert_false(jr_can_grant(j));
	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 0);
	assert_true(js.failures >= 2);
	assert_int_equal(access(tmppath, F_OK), -1);
	assert_int_equal(load(&li), -ENOENT);

	/* Room again: the next retry's compaction succeeds. */
	set_fsize_limit(fsize_saved.rlim_cur);
	assert_true(run_until_grant(j, 60000));
	assert_int_equal(jr_error(j), 0);
	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 1);
	assert_int_equal(js.file, file_size(jpath));
	assert_int_equal(load(&li), 0);
	expect_log(state, 3);

	/* And appending works again, after the snapshot. */
	append_range(j, 7, 1, &w);
	run_until(&w, 2);
	assert_int_equal(w.rc, 0);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	const unsigned want[] = { 6, 13, 20, 7 };
	expect_log(want, 4);
	signal(SIGXFSZ, SIG_DFL);
}

static void test_failed_compaction_keeps_complete(void **st)
{
	static const unsigned state[] = { 0 };
	struct snap s = { .idx = state, .n = 1 };
	struct jr_load_info li;
	struct jr *j = open_new(false, &s);

	/* The state became complete, but the snapshot saying so cannot be
	 * written (it is larger than the limit).  The retry must still say
	 * complete. */
	signal(SIGXFSZ, SIG_IGN);
	set_fsize_limit(64);
	jr_compact(j, true);
	turn();
	RUN_UNTIL(jr_error(j) != 0, 60000); /* the compaction failed */
	assert_false(jr_can_grant(j));
	set_fsize_limit(fsize_saved.rlim_cur);
	assert_true(run_until_grant(j, 60000));
	assert_int_equal(s.calls, 2);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log(state, 1);
	assert_true(li.complete);
	signal(SIGXFSZ, SIG_DFL);
}

/* ==== 8. close =========================================================== */

static void test_close_in_flight(void **st)
{
	static const unsigned state[] = { 1, 2 };
	struct snap s = { .idx = state, .n = 2 };
	struct jr *j;

	/* An append in flight, another batch open, waiters on both. */
	j = open_new(true, &s);
	append_range(j, 0, 3, NULL);
	turn();
	assert_int_equal(jr_wait(j, on_done_never, NULL), 0);
	assert_int_equal(jr_append(j, S(3)), 0);
	assert_int_equal(jr_wait(j, on_done_never, NULL), 0);
	jr_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);

	/* A compaction in flight. */
	j = open_new(true, &s);
	assert_int_equal(jr_append(j, S(4)), 0);
	jr_compact(j, true);
	assert_int_equal(jr_wait(j, on_done_never, NULL), 0);
	turn();
	assert_int_equal(s.calls, 1);
	jr_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);

	/* Failed, with the retry timer running. */
	j = open_new(true, &s);
	signal(SIGXFSZ, SIG_IGN);
	set_fsize_limit((rlim_t)file_size(jpath));
	struct wait w = { 0 };
	append_range(j, 0, 1, &w);
	run_until(&w, 1);
	assert_false(jr_can_grant(j));
	set_fsize_limit(fsize_saved.rlim_cur);
	jr_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	signal(SIGXFSZ, SIG_DFL);
	/* (teardown's uv_loop_close proves the handles are gone; ASan that
	 * the jobs, buffers and waiters were freed) */
}

static void test_close_gives_up_descriptors_safely(void **st)
{
	struct jr *j = open_new(true, NULL);
	char path[400];
	int victims[4];

	/* An append queued on the pool when the journal closes.  Its
	 * descriptors must stay the journal's until it has run: if they are
	 * closed at once, files opened meanwhile get their numbers and the
	 * batch is written into one of them. */
	block_pool();
	append_range(j, 0, 3, NULL);
	turn();
	jr_close(j, NULL, NULL);
	for (int k = 0; k < 4; k++) {
		snprintf(path, sizeof(path), "%s/victim%d", dir, k);
		victims[k] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(victims[k] >= 0);
	}
	unblock_pool();
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int k = 0; k < 4; k++) {
		struct stat sb;
		assert_int_equal(fstat(victims[k], &sb), 0);
		close(victims[k]);
		assert_int_equal(sb.st_size, 0);
	}
}

/*
 * The durability order on the write path in use: batch N's write+sync is
 * held back (as a slow disk would), batch N+1's completes first; N+1's
 * grants must not be answered until N is durable, then both in order.
 * Then a batch still in flight when the journal closes (the ring's drain).
 * Batches overlap only with journal_inflight = 2, which this sets.
 */
static void test_order_held_batch(void **st)
{
	struct jr_load_info li;
	struct wait w0 = { 0 };
	struct owait w[2] = { 0 };
	struct jr *j = open_new(true, NULL);
	unsigned ios;

	assert_int_equal(jr_uses_uring(j), io_mode == JR_IO_URING);
	/* The first batch also zeroes space ahead (pool, alone). */
	append_range(j, 0, 1, &w0);
	run_until(&w0, 1);
	order_next = 0;

	jr_set_inflight(2);
	jr_test_hold(j, 1);
	assert_int_equal(jr_append(j, S(1)), 0);
	assert_int_equal(jr_wait(j, on_done_ordered, &w[0]), 0);
	turn();                                 /* batch N submitted */
	RUN_UNTIL(jr_test_held(j) == 1, 5000);
	assert_int_equal(jr_test_held(j), 1);   /* N ran, held back */
	ios = jr_test_ios_done(j);
	assert_int_equal(jr_append(j, S(2)), 0);
	assert_int_equal(jr_wait(j, on_done_ordered, &w[1]), 0);
	turn();                                 /* batch N+1 submitted */
	RUN_UNTIL(jr_test_ios_done(j) > ios, 5000);
	assert_int_equal(jr_test_ios_done(j), ios + 1); /* N+1 is durable */
	assert_int_equal(jr_test_held(j), 1);
	assert_int_equal(w[1].calls, 0);        /* ... but N is not: no answer */
	assert_int_equal(w[0].calls, 0);
	turn();
	assert_int_equal(w[1].calls, 0);

	jr_test_release(j);                     /* N durable now */
	RUN_UNTIL(w[1].calls == 1, 5000);
	assert_int_equal(w[0].calls, 1);
	assert_int_equal(w[1].calls, 1);
	assert_int_equal(w[0].rc, 0);
	assert_int_equal(w[1].rc, 0);
	assert_true(w[0].seq < w[1].seq);

	/* A batch in flight at close: its buffer is freed only after the
	 * write is done with it (ASan), and the file loads. */
	append_range(j, 3, 5, NULL);
	turn();
	close_jr(j);
	jr_set_inflight(inflight);
	assert_int_equal(load(&li), 0);
	assert_true(li.records == 3 || li.records == 8);
}

/* ==== 9. fold: a size-triggered compaction off the loop ==================
 * The journal module knows nothing of locks: the fold's ops here are a
 * model whose state is a set of lock and share keys (a LOCK adds or
 * updates its exact key, an UNLOCK removes that key, SHARE/UNSHARE the
 * same by (host, oh, fh), FREE_CLIENT everything of a host).  Replaying
 * what it emits rebuilds it, which is the contract of jr_fold_ops. */

#define MCAP 1024
struct ment { struct sample s; };
struct model { struct ment e[MCAP]; size_t n; };

static void copy_rec(struct sample *d, const struct jr_rec *r)
{
	memset(d, 0, sizeof(*d));
	d->r = *r;
	memcpy(d->host, r->host, r->hostlen);
	d->r.host = d->host;
	if (r->ohlen)
		memcpy(d->oh, r->oh, r->ohlen);
	d->r.oh = r->ohlen ? d->oh : NULL;
	if (r->fhlen)
		memcpy(d->fh, r->fh, r->fhlen);
	d->r.fh = r->fhlen ? d->fh : NULL;
}

static bool same_bytes(const void *a, size_t al, const void *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* Same key: a lock by (host, svid, oh, fh, range), a share by (host, oh, fh). */
static bool same_key(const struct jr_rec *a, const struct jr_rec *b, bool lock)
{
	if (!same_bytes(a->host, a->hostlen, b->host, b->hostlen) ||
	    !same_bytes(a->oh, a->ohlen, b->oh, b->ohlen) ||
	    !same_bytes(a->fh, a->fhlen, b->fh, b->fhlen))
		return false;
	return !lock || (a->svid == b->svid && a->start == b->start && a->end == b->end);
}

static void model_del(struct model *m, size_t k)
{
	m->e[k] = m->e[--m->n];
	m->e[k].s.r.host = m->e[k].s.host;
	m->e[k].s.r.oh = m->e[k].s.r.ohlen ? m->e[k].s.oh : NULL;
	m->e[k].s.r.fh = m->e[k].s.r.fhlen ? m->e[k].s.fh : NULL;
}

static int model_apply(void *arg, const struct jr_rec *r)
{
	struct model *m = arg;
	bool lock = r->type == JR_LOCK || r->type == JR_UNLOCK;
	enum jr_type held = lock ? JR_LOCK : JR_SHARE;

	if (r->type == JR_FREE_CLIENT) {
		for (size_t k = m->n; k-- > 0;)
			if (same_bytes(m->e[k].s.r.host, m->e[k].s.r.hostlen, r->host, r->hostlen))
				model_del(m, k);
		return 0;
	}
	for (size_t k = 0; k < m->n; k++) {
		if (m->e[k].s.r.type != held || !same_key(&m->e[k].s.r, r, lock))
			continue;
		if (r->type == JR_UNLOCK || r->type == JR_UNSHARE)
			model_del(m, k);
		else
			copy_rec(&m->e[k].s, r);
		return 0;
	}
	if (r->type == JR_UNLOCK || r->type == JR_UNSHARE)
		return 0;
	if (m->n == MCAP)
		return -ENOSPC;
	copy_rec(&m->e[m->n++].s, r);
	return 0;
}

static bool model_equal(const struct model *a, const struct model *b)
{
	if (a->n != b->n)
		return false;
	for (size_t k = 0; k < a->n; k++) {
		const struct jr_rec *r = &a->e[k].s.r;
		bool found = false;

		for (size_t i = 0; i < b->n && !found; i++) {
			const struct jr_rec *q = &b->e[i].s.r;
			found = q->type == r->type && same_key(q, r, r->type == JR_LOCK) &&
				q->excl == r->excl && q->mode == r->mode && q->deny == r->deny;
		}
		if (!found)
			return false;
	}
	return true;
}

/* The fold's ops over the model, with failures on demand. */
static pthread_t main_thread;
static struct {
	int new_rc;             /* new() fails with this */
	long apply_at;          /* apply() fails at this record (-1: never) ... */
	int apply_rc;           /* ... with this */
	long applied;
	int on_loop;            /* ops that ran on the loop thread */
	int off_loop;
	int emitted;
} mf;

static void mf_reset(void)
{
	memset(&mf, 0, sizeof(mf));
	mf.apply_at = -1;
}

static void mf_where(void)
{
	if (pthread_equal(pthread_self(), main_thread))
		mf.on_loop++;
	else
		mf.off_loop++;
}

static int mf_new(void *arg, void **st)
{
	(void)arg;
	mf_where();
	if (mf.new_rc)
		return mf.new_rc;
	*st = calloc(1, sizeof(struct model));
	return *st ? 0 : -ENOMEM;
}

static int mf_apply(void *st, const struct jr_rec *r)
{
	mf_where();
	if (mf.applied++ == mf.apply_at)
		return mf.apply_rc;
	return model_apply(st, r);
}

static int mf_emit(void *st, jr_replay_fn add, void *add_arg)
{
	struct model *m = st;

	mf_where();
	for (size_t k = 0; k < m->n; k++) {
		int rc = add(add_arg, &m->e[k].s.r);
		if (rc < 0)
			return rc;
		mf.emitted++;
	}
	return 0;
}

static void mf_free(void *st)
{
	mf_where();
	free(st);
}

static const struct jr_fold_ops mf_ops = {
	.new = mf_new, .apply = mf_apply, .emit = mf_emit, .free = mf_free,
};

/* Record k of a stream over a few hosts, owners, files and ranges, so
 * that unlocks, unshares and FREE_CLIENTs meet what earlier records took.
 * Owner handles are long (900 bytes) so a few thousand records pass
 * JR_COMPACT_MIN. */
static void gen_rec(unsigned k, struct sample *s)
{
	static const enum jr_type ty[] = { JR_LOCK, JR_LOCK, JR_LOCK, JR_UNLOCK, JR_UNLOCK,
					   JR_SHARE, JR_UNSHARE, JR_LOCK, JR_SHARE, JR_LOCK };
	struct jr_rec *r = &s->r;
	unsigned owner = (k * 7 / 3) % 3;

	memset(s, 0, sizeof(*s));
	r->type = k % 97 == 96 ? JR_FREE_CLIENT : ty[k % 10];
	r->host = s->host;
	r->hostlen = (size_t)snprintf(s->host, sizeof(s->host), "host-%u", (k * 5 / 2) % 4);
	if (r->type == JR_FREE_CLIENT)
		return;
	r->ohlen = 900;
	memset(s->oh, 'a' + (int)owner, r->ohlen);
	r->oh = s->oh;
	r->fhlen = (size_t)snprintf((char *)s->fh, sizeof(s->fh), "file-%u", (k * 13 / 4) % 8);
	r->fh = s->fh;
	if (r->type == JR_LOCK || r->type == JR_UNLOCK) {
		r->svid = owner;
		r->excl = r->type == JR_LOCK && (k & 1);
		r->start = ((k * 11 / 5) % 4) * 100;
		r->end = k % 9 == 0 ? UINT64_MAX : r->start + 99;
	} else if (r->type == JR_SHARE) {
		r->mode = 1 + k % 3;
		r->deny = k % 2;
	}
}

/* The live model: every record appended, in order. */
static struct model *live;
static unsigned gen_next;

/* Append the next @n records of the stream in this turn, with a waiter. */
static void fold_append(struct jr *j, unsigned n, struct owait *w)
{
	struct sample s;

	for (unsigned k = 0; k < n; k++) {
		gen_rec(gen_next++, &s);
		assert_int_equal(jr_append(j, &s.r), 0);
		assert_int_equal(model_apply(live, &s.r), 0);
	}
	assert_int_equal(jr_wait(j, on_done_ordered, w), 0);
}

/* Append batches of 64 records, each waited for, until a fold began (it
 * may have ended already: a failure comes back fast). */
static bool fold_began(const struct jr *j, const struct jr_stats *before)
{
	struct jr_stats js;

	jr_get_stats(j, &js);
	return jr_folding(j) || js.compactions > before->compactions ||
	       js.fold_failures > before->fold_failures;
}

static void fold_fill(struct jr *j, struct owait *w, size_t nw, size_t *used)
{
	struct jr_stats before;

	jr_get_stats(j, &before);
	while (!fold_began(j, &before)) {
		assert_true(*used < nw);
		fold_append(j, 64, &w[*used]);
		RUN_UNTIL(w[*used].calls == 1, 5000);
		assert_int_equal(w[*used].calls, 1);
		assert_int_equal(w[*used].rc, 0);
		(*used)++;
	}
}

/* Load jpath into a fresh model: must equal the live one. */
static void expect_loads_to_live(struct jr_load_info *li)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	assert_int_equal(jr_load(jpath, GROUP, model_apply, m, li), 0);
	assert_true(model_equal(m, live));
	free(m);
}

/* Batch numbers in the file go up by one from batch to batch. */
static void expect_consecutive_batches(void)
{
	static struct fbatch fb[1 << 16];
	size_t n = file_batches(fb, sizeof(fb) / sizeof(fb[0]));

	assert_true(n > 0);
	for (size_t k = 1; k < n; k++)
		assert_int_equal(fb[k].bno, fb[k - 1].bno + 1);
}

static void fold_setup(struct jr **jp, struct snap *s)
{
	mf_reset();
	gen_next = 0;
	order_next = 0;
	live = calloc(1, sizeof(*live));
	assert_non_null(live);
	*jp = open_new(true, s);
	jr_set_fold(*jp, &mf_ops, NULL);
}

#define NW 300

/* With the fold's first step held back (jr_test_fold_hold, done): append
 * C (waited for by @wc), hold its write in flight once its I/O ran, then
 * let the fold go on until it holds appends for its switch, which waits
 * for C. */
static void fold_hold_for_switch(struct jr *j, struct owait *wc)
{
	jr_test_hold(j, 1);
	fold_append(j, 64, wc);
	turn();
	RUN_UNTIL(jr_test_held(j) == 1, 5000);
	assert_int_equal(jr_test_held(j), 1);
	jr_test_fold_release(j);
	RUN_UNTIL(jr_test_fold_holding(j), 5000);
	assert_true(jr_test_fold_holding(j));
}

static void test_fold_appends_go_on(void **st)
{
	struct snap s = { 0 };
	struct owait w[NW] = { 0 }, wa = { 0 }, wc = { 0 }, wd = { 0 };
	struct jr_load_info li;
	struct jr_stats js;
	size_t used = 0;
	int d_seen_compactions;
	struct jr *j;

	fold_setup(&j, &s);
	jr_test_fold_hold(j);
	fold_fill(j, w, NW, &used);
	assert_true(jr_folding(j));
	/* The fold's first step (read, replay, new file) ran, held back. */
	RUN_UNTIL(jr_test_fold_held(j), 5000);
	assert_true(jr_test_fold_held(j));
	assert_int_equal(mf.on_loop, 0);
	assert_true(mf.off_loop > 0);

	/* Appends go on into the old file meanwhile, acknowledged as usual. */
	fold_append(j, 64, &wa);
	RUN_UNTIL(wa.calls == 1, 5000);
	assert_int_equal(wa.calls, 1);
	assert_int_equal(wa.rc, 0);
	assert_int_equal(compactions(j), 0);

	/* C's write ran but is held in flight when the fold's next step
	 * comes back: the fold holds appends and waits for it. */
	fold_hold_for_switch(j, &wc);

	/* D, appended while appends are held, waits for the switch. */
	fold_append(j, 64, &wd);
	turn();
	turn();
	assert_int_equal(wc.calls, 0);
	assert_int_equal(wd.calls, 0);
	assert_int_equal(compactions(j), 0);
	jr_test_release(j);
	RUN_UNTIL(wc.calls == 1, 5000);
	assert_int_equal(wc.calls, 1);
	assert_int_equal(wc.rc, 0);
	d_seen_compactions = (int)compactions(j);
	assert_int_equal(d_seen_compactions, 0); /* C: durable in the old file */
	RUN_UNTIL(wd.calls == 1, 5000);
	assert_int_equal(wd.calls, 1);
	assert_int_equal(wd.rc, 0);
	assert_false(jr_folding(j));
	/* In order, each once, after its batch was durable. */
	for (size_t k = 1; k < used; k++)
		assert_true(w[k - 1].seq < w[k].seq);
	assert_true(w[used - 1].seq < wa.seq);
	assert_true(wa.seq < wc.seq);
	assert_true(wc.seq < wd.seq);

	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 1);
	assert_int_equal(js.folds, 1);
	assert_int_equal(js.fold_failures, 0);
	assert_int_equal(s.calls, 0);           /* no snapshot of the live state */
	assert_int_equal(mf.on_loop, 0);        /* every op ran off the loop */
	assert_true(mf.emitted > 0);
	assert_true(js.size < 4 * 1024 * 1024);
	assert_int_equal(js.file, file_size(jpath));
	assert_int_equal(access(jpath, F_OK), 0);
	char fold_tmp[320];
	snprintf(fold_tmp, sizeof(fold_tmp), "%s/.journal.fold", dir);
	assert_int_equal(access(fold_tmp, F_OK), -1);

	/* What is on disk loads to the live state, numbered without a gap;
	 * and more appends after the switch land in the new file. */
	expect_loads_to_live(&li);
	assert_true(li.complete);
	expect_consecutive_batches();
	struct owait we = { 0 };
	fold_append(j, 3, &we);
	RUN_UNTIL(we.calls == 1, 5000);
	assert_int_equal(we.rc, 0);
	close_jr(j);
	expect_loads_to_live(&li);
	expect_consecutive_batches();
	free(live);
}

static void on_closed(void *arg)
{
	(*(unsigned *)arg)++;
}

/* jr_close writes what was appended: the batch in flight, the open one
 * behind it, a held one; and says so (on_closed) only after that.  The
 * waiters are never called. */
static void test_close_writes_what_was_appended(void **st)
{
	struct jr_load_info li;
	unsigned closed = 0;
	struct jr *j = open_new(true, NULL);

	(void)st;
	/* Batch 0..2 in flight (held once its I/O ran), 3..4 open behind. */
	jr_test_hold(j, 1);
	append_range(j, 0, 3, NULL);
	assert_int_equal(jr_wait(j, on_done_never, NULL), 0);
	turn();
	RUN_UNTIL(jr_test_held(j) == 1, 5000);
	assert_int_equal(jr_test_held(j), 1);
	append_range(j, 3, 2, NULL);
	assert_int_equal(jr_wait(j, on_done_never, NULL), 0);
	jr_close(j, on_closed, &closed);
	assert_int_equal(closed, 0);            /* 3..4 are not durable yet */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(closed, 1);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 5);

	/* Nothing left to write: closed within the call. */
	assert_int_equal(jr_open(&loop, dir, GROUP, &li, true, false, snap_cb, NULL, &j), 0);
	closed = 0;
	jr_close(j, on_closed, &closed);
	assert_int_equal(closed, 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(closed, 1);
	assert_int_equal(load(&li), 0);
	expect_log_range(0, 5);
}

/* A fold under way when the journal closes: what was appended while it
 * held appends for its switch is written all the same, to the old file
 * (a fold between steps is set aside) or to the new one (a switch on the
 * pool that renamed stands), and either loads to the live state. */
static void close_during_fold(bool switching)
{
	struct snap s = { 0 };
	struct owait w[NW] = { 0 }, wc = { 0 }, wd = { 0 };
	struct jr_load_info li;
	char fold_tmp[320];
	unsigned closed = 0;
	size_t used = 0;
	struct jr *j;

	fold_setup(&j, &s);
	jr_test_fold_hold(j);
	fold_fill(j, w, NW, &used);
	RUN_UNTIL(jr_test_fold_held(j), 5000);
	assert_true(jr_test_fold_held(j));
	/* C in flight, held; the fold then holds appends for its switch. */
	fold_hold_for_switch(j, &wc);
	/* D waits for the switch. */
	fold_append(j, 64, &wd);
	turn();
	assert_int_equal(wd.calls, 0);
	if (switching) {
		/* C is taken: the switch goes to the pool in this call. */
		jr_test_release(j);
		assert_int_equal(wc.calls, 1);
		assert_true(jr_folding(j));
	}
	fold_append(j, 7, &wd);                 /* and more, in the same turn */
	jr_close(j, on_closed, &closed);
	assert_int_equal(closed, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(closed, 1);
	assert_int_equal(wd.calls, 0);          /* its caller has gone */
	expect_loads_to_live(&li);
	expect_consecutive_batches();
	snprintf(fold_tmp, sizeof(fold_tmp), "%s/.journal.fold", dir);
	assert_int_equal(access(fold_tmp, F_OK), -1);
	/* The switch that was on the pool renamed: the file is folded. */
	assert_int_equal(li.batches < 10, switching);
	free(live);
}

static void test_close_during_fold_hold(void **st)
{
	(void)st;
	close_during_fold(false);
}

static void test_close_during_fold_switch(void **st)
{
	(void)st;
	close_during_fold(true);
}

/* A fold that fails at @step (or in the caller's ops, per mf) leaves the
 * old journal the journal: whole, appended to, loading to the live state;
 * the temporary is gone. */
static void fold_fails(enum jr_fold_step step, int rc, bool refused)
{
	struct snap s = { .rc = -ENOMEM };      /* the live snapshot: refused too */
	struct owait w[NW] = { 0 }, wa = { 0 };
	struct jr_load_info li;
	struct jr_stats js;
	size_t used = 0;
	char fold_tmp[320];
	struct jr *j;

	fold_setup(&j, &s);
	if (step)
		jr_test_fold_fail(j, step, rc);
	fold_fill(j, w, NW, &used);
	/* Appends go on while it runs and after it failed. */
	fold_append(j, 64, &wa);
	RUN_UNTIL(!jr_folding(j) && wa.calls == 1, 5000);
	assert_false(jr_folding(j));
	assert_int_equal(wa.calls, 1);
	assert_int_equal(wa.rc, 0);
	assert_true(jr_can_grant(j));
	jr_get_stats(j, &js);
	assert_int_equal(js.compactions, 0);
	assert_int_equal(js.folds, 0);
	assert_int_equal(js.fold_failures, 1);
	/* Only a file that does not replay asks for the live snapshot (the
	 * test's refuses, so that nothing else rewrites the file). */
	RUN_UNTIL(s.calls == (refused ? 1 : 0), 1000);
	assert_int_equal(s.calls, refused ? 1 : 0);
	assert_int_equal(mf.on_loop, 0);
	snprintf(fold_tmp, sizeof(fold_tmp), "%s/.journal.fold", dir);
	assert_int_equal(access(fold_tmp, F_OK), -1);
	for (size_t k = 1; k < used; k++)
		assert_true(w[k - 1].seq < w[k].seq);
	close_jr(j);
	expect_loads_to_live(&li);
	expect_consecutive_batches();
	free(live);
}

static void test_fold_fails_read(void **st) { fold_fails(JR_FOLD_READ, -EIO, false); }
static void test_fold_fails_write(void **st) { fold_fails(JR_FOLD_WRITE, -ENOSPC, false); }
static void test_fold_fails_copy(void **st) { fold_fails(JR_FOLD_COPY, -EIO, false); }
static void test_fold_fails_rename(void **st) { fold_fails(JR_FOLD_RENAME, -EACCES, false); }

static void test_fold_fails_ops(void **st)
{
	struct snap s = { .rc = -ENOMEM };
	struct owait w[NW] = { 0 }, wa = { 0 };
	struct jr_load_info li;
	struct jr_stats js;
	size_t used = 0;
	struct jr *j;

	/* new() out of memory; then apply() out of memory at record 100;
	 * then apply() refusing a record: each leaves the old file whole. */
	for (int round = 0; round < 3; round++) {
		size_t u0;

		if (round == 0) {
			fold_setup(&j, &s);
			mf.new_rc = -ENOMEM;
		} else {
			mf.new_rc = 0;
			mf.applied = 0;
			mf.apply_at = 100;
			mf.apply_rc = round == 1 ? -ENOMEM : -EINVAL;
		}
		u0 = used;
		fold_fill(j, w, NW, &used);
		assert_true(used > u0);
		RUN_UNTIL(!jr_folding(j), 5000);
		assert_false(jr_folding(j));
		jr_get_stats(j, &js);
		assert_int_equal(js.fold_failures, (uint64_t)round + 1);
		assert_int_equal(js.compactions, 0);
		/* The refused record: the live snapshot is asked for. */
		RUN_UNTIL(s.calls == (round == 2), 1000);
		assert_int_equal(s.calls, round == 2);
	}
	fold_append(j, 1, &wa);
	RUN_UNTIL(wa.calls == 1, 5000);
	assert_int_equal(wa.rc, 0);
	assert_int_equal(mf.on_loop, 0);
	for (size_t k = 1; k < used; k++)
		assert_true(w[k - 1].seq < w[k].seq);
	close_jr(j);
	expect_loads_to_live(&li);
	expect_consecutive_batches();
	free(live);
}

/* jr_compact while a fold is under way: the snapshot of the live state
 * wins (grace end drops reservations the file still has). */
static void test_fold_yields_to_compact(void **st)
{
	static const unsigned state[] = { 40 };
	struct snap s = { .idx = state, .n = 1 };
	struct owait w[NW] = { 0 };
	struct jr_load_info li;
	struct jr_stats js;
	size_t used = 0;
	struct jr *j;

	fold_setup(&j, &s);
	jr_test_fold_hold(j);
	fold_fill(j, w, NW, &used);
	RUN_UNTIL(jr_test_fold_held(j), 5000);
	jr_compact(j, true);
	run_until_compactions(j, 1);
	assert_false(jr_folding(j));
	assert_false(jr_test_fold_held(j));
	jr_get_stats(j, &js);
	assert_int_equal(js.folds, 0);
	assert_int_equal(s.calls, 1);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log(state, 1);
	free(live);
}

/* jr_compact_own: the records appended since the open, alone, folded off
 * the loop (grace end: the loaded state goes); once a compaction has
 * mixed them with the loaded ones, the snapshot of the live state. */
static void test_fold_own(void **st)
{
	static const unsigned state[] = { 40 };
	struct snap s = { .idx = state, .n = 1 };
	struct owait wl = { 0 }, wa = { 0 }, wb = { 0 };
	struct jr_load_info li;
	struct jr_stats js;
	struct jr *j;

	fold_setup(&j, &s);
	jr_close(j, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(jr_open(&loop, dir, GROUP, NULL, false, false, snap_cb, &s, &j), 0);
	jr_set_fold(j, &mf_ops, NULL);
	fold_append(j, 300, &wl);               /* the "loaded" records */
	RUN_UNTIL(wl.calls == 1, 5000);
	assert_int_equal(wl.rc, 0);
	close_jr(j);

	assert_int_equal(load(&li), 0);
	assert_false(li.complete);
	assert_int_equal(jr_open(&loop, dir, GROUP, &li, true, false, snap_cb, &s, &j), 0);
	jr_set_fold(j, &mf_ops, NULL);
	memset(live, 0, sizeof(*live));         /* this owner's records only */
	fold_append(j, 200, &wa);
	RUN_UNTIL(wa.calls == 1, 5000);
	assert_int_equal(wa.rc, 0);
	jr_compact_own(j, true);
	fold_append(j, 50, &wb);                /* during the fold: kept */
	run_until_compactions(j, 1);
	RUN_UNTIL(wb.calls == 1, 5000);
	assert_int_equal(wb.rc, 0);
	jr_get_stats(j, &js);
	assert_int_equal(js.folds, 1);
	assert_int_equal(s.calls, 0);
	assert_int_equal(mf.on_loop, 0);
	expect_loads_to_live(&li);
	assert_true(li.complete);
	expect_consecutive_batches();

	/* Mixed now: the live state's snapshot. */
	jr_compact_own(j, true);
	run_until_compactions(j, 2);
	assert_int_equal(s.calls, 1);
	close_jr(j);
	assert_int_equal(load(&li), 0);
	expect_log(state, 1);
	assert_true(li.complete);
	free(live);
}

/* One fold builds at a time in a process (it holds a pool thread for its
 * length): a second journal's waits for its turn, and takes it without an
 * append to prompt it (a grace end's). */
static void test_fold_one_at_a_time(void **st)
{
	struct snap s = { 0 }, s2 = { 0 };
	struct owait wa = { 0 }, wb = { 0 };
	char dir2[320], path2[340];
	struct jr_load_info li;
	struct jr_stats js;
	struct jr *j, *j2;
	struct model *m;
	bool waited;

	fold_setup(&j, &s);
	snprintf(dir2, sizeof(dir2), "%s/b", dir);
	assert_int_equal(mkdir(dir2, 0700), 0);
	assert_int_equal(jr_open(&loop, dir2, GROUP, NULL, false, false, snap_cb, &s2, &j2), 0);
	jr_set_fold(j2, &mf_ops, NULL);
	fold_append(j, 10, &wa);
	fold_append(j2, 10, &wb);
	RUN_UNTIL(wa.calls == 1 && wb.calls == 1, 5000);
	assert_int_equal(wb.rc, 0);

	block_pool();                           /* j's build is queued, not done */
	jr_test_fold(j);
	turn();
	assert_true(jr_folding(j));
	jr_compact_own(j2, true);
	turn();
	turn();
	waited = !jr_folding(j2);               /* not its turn */
	unblock_pool();                         /* (before any assert fails) */
	assert_true(waited);
	RUN_UNTIL(compactions(j) == 1 && compactions(j2) == 1, 5000);
	assert_int_equal(compactions(j), 1);
	assert_int_equal(compactions(j2), 1);
	jr_get_stats(j2, &js);
	assert_int_equal(js.folds, 1);
	assert_int_equal(s.calls + s2.calls, 0);
	jr_close(j, NULL, NULL);
	jr_close(j2, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Both streams went into one model: each file holds its part. */
	snprintf(path2, sizeof(path2), "%s/journal", dir2);
	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	assert_int_equal(jr_load(jpath, GROUP, model_apply, m, &li), 0);
	assert_int_equal(li.batches, 1);        /* the folded state alone */
	assert_int_equal(jr_load(path2, GROUP, model_apply, m, &li), 0);
	assert_true(li.complete);
	assert_int_equal(li.batches, 1);
	assert_true(model_equal(m, live));
	free(m);
	free(live);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_rec_roundtrip),
		T(test_rec_size_rejects),
		T(test_load_gives_way),
		T(test_rec_decode_rejects),
		T(test_load_replays_in_order),
		T(test_load_refuses),
		T(test_torn_cut_everywhere),
		T(test_torn_flipped_byte),
		T(test_torn_no_last_flag),
		T(test_torn_two_in_flight),
		T(test_damage_before_solo),
		T(test_load_random_damage),
		T(test_load_versions),
		T(test_damage_flipped_byte),
		T(test_damage_callback_refuses),
		T(test_damage_batch_order),
		T(test_writer_new_journal),
		T(test_writer_group_commit),
		T(test_writer_appends_while_in_flight),
		T(test_writer_two_in_flight),
		T(test_writer_one_in_flight),
		T(test_writer_gathers),
		T(test_gather_bound),
		T(test_writer_reopen_continues),
		T(test_writer_open_off_loop),
		T(test_compact_snapshot),
		T(test_writer_version1_file),
		T(test_compact_complete),
		T(test_compact_when_large),
		T(test_compact_snapshot_refused),
		T(test_failure_and_recovery),
		T(test_failed_compaction_keeps_complete),
		T(test_close_in_flight),
		T(test_close_gives_up_descriptors_safely),
		T(test_order_held_batch),
		T(test_fold_appends_go_on),
		T(test_close_writes_what_was_appended),
		T(test_close_during_fold_hold),
		T(test_close_during_fold_switch),
		T(test_fold_fails_read),
		T(test_fold_fails_write),
		T(test_fold_fails_copy),
		T(test_fold_fails_rename),
		T(test_fold_fails_ops),
		T(test_fold_yields_to_compact),
		T(test_fold_own),
		T(test_fold_one_at_a_time),
#undef T
	};

	/* One pool thread: see the blocker above.  Must precede the first
	 * uv_queue_work of the process. */
	setenv("UV_THREADPOOL_SIZE", "1", 1);
	/* Which write path (meson runs both): JR_TEST_IO=uring|thread. */
	const char *m = getenv("JR_TEST_IO");
	if (m && jr_io_parse(m, &io_mode) < 0) {
		fprintf(stderr, "JR_TEST_IO=%s: uring or thread\n", m);
		return 1;
	}
	if (io_mode == JR_IO_URING) {
		struct io_uring r;
		if (io_uring_queue_init(4, &r, 0) < 0) {
			fprintf(stderr, "io_uring not available here: skipped\n");
			return 77;
		}
		io_uring_queue_exit(&r);
	}
	jr_set_io(io_mode);
	/* And how many batches at once (meson runs 1, the default, and 2). */
	m = getenv("JR_TEST_INFLIGHT");
	if (m)
		inflight = (unsigned)atoi(m);
	if (inflight < 1 || inflight > JR_INFLIGHT_MAX) {
		fprintf(stderr, "JR_TEST_INFLIGHT=%s: 1 .. %d\n", m, JR_INFLIGHT_MAX);
		return 1;
	}
	jr_set_inflight(inflight);
	getrlimit(RLIMIT_FSIZE, &fsize_saved);
	main_thread = pthread_self();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* e.g. "test_compact*" */
	for (unsigned i = 0; i < NSAMPLES; i++)
		sample_init(&pool[i], i);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
