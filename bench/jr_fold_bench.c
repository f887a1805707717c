/*
 * jr_fold_bench - what a size-triggered journal compaction costs the event
 * loop, the old way (a snapshot of the live lock table built on the loop)
 * against the fold (the file replayed on the pool: journal.c).
 *
 *   jr_fold_bench DIR snapshot|fold LOCKS [HOSTS]
 *
 * One uv loop, two journals in DIR/big and DIR/other, as two groups of
 * one node.  "big" gets LOCKS exclusive one-byte locks of HOSTS clients
 * (default 1000) in a real lock table (src/lock), each journaled; then,
 * with two probes running (a LOCK record appended to each journal and
 * waited for, again as soon as it is durable: a client at depth 1 in each
 * group) and a 1 ms timer, a compaction of "big" is started (snapshot:
 * jr_compact, the code a size-triggered compaction ran before; fold:
 * jr_test_fold, the fold a size-triggered compaction starts now, with
 * NLM's own fold ops).  Printed, from the start to one second after the
 * compaction: the longest the 1 ms timer came late (the loop's longest
 * stall), the longest probe wait of each group, the time spent in the
 * snapshot callback on the loop, and probe counts.  Nothing is asserted:
 * a bench.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "journal/journal.h"
#include "lock/lock.h"
#include "nlm/nlm_int.h"

static uv_loop_t loop;
static struct lk_table *live;
static uint64_t snap_ns;
static const char fh[] = "jr_fold_bench file handle";

struct probe {
	struct jr *j;
	const char *name;
	uint64_t t0, max_ns, n;
	bool on;
};

static int snap_lock(void *arg, const struct lk_lockinfo *li)
{
	const char *host = lk_client_priv(lk_owner_client(li->owner));
	struct jr_rec r = { .type = JR_LOCK, .host = host, .hostlen = strlen(host),
			    .svid = lk_owner_svid(li->owner), .fh = li->key, .fhlen = li->keylen,
			    .excl = li->type == LK_EXCL, .start = li->range.start,
			    .end = li->range.end };

	r.oh = lk_owner_oh(li->owner, &r.ohlen);
	return jr_snap_add(arg, &r);
}

static int snap(void *arg, struct jr *j)
{
	uint64_t t0 = uv_hrtime();
	int rc = lk_foreach_lock(arg, snap_lock, j);

	snap_ns += uv_hrtime() - t0;
	return rc;
}

static void probe_go(struct probe *p);

static void probe_done(void *arg, int rc)
{
	struct probe *p = arg;
	uint64_t d = uv_hrtime() - p->t0;

	if (rc < 0) {
		fprintf(stderr, "%s: probe failed: %s\n", p->name, strerror(-rc));
		exit(1);
	}
	if (d > p->max_ns)
		p->max_ns = d;
	p->n++;
	if (p->on)
		probe_go(p);
}

static void probe_go(struct probe *p)
{
	static const char host[] = "probe";
	struct jr_rec r = { .type = JR_LOCK, .host = host, .hostlen = sizeof(host) - 1,
			    .svid = 1, .oh = "o", .ohlen = 1, .fh = fh, .fhlen = sizeof(fh) - 1,
			    .excl = true, .start = UINT64_MAX - 1, .end = UINT64_MAX - 1 };
	int rc;

	p->t0 = uv_hrtime();
	if (jr_append(p->j, &r) < 0 || (rc = jr_wait(p->j, probe_done, p)) < 0) {
		fprintf(stderr, "%s: append failed\n", p->name);
		exit(1);
	}
	if (rc == 1)
		probe_done(p, 0);
}

static uint64_t tick_last, tick_max;

static void tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime();

	(void)t;
	if (tick_last && now - tick_last > tick_max)
		tick_max = now - tick_last;
	tick_last = now;
}

static int done_calls;
static void on_done(void *arg, int rc)
{
	(void)arg;
	if (rc < 0) {
		fprintf(stderr, "build: %s\n", strerror(-rc));
		exit(1);
	}
	done_calls++;
}

static struct jr *open_jr(const char *dir, const char *sub, void *snap_arg)
{
	char p[4096];
	struct jr *j;
	int rc;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	mkdir(p, 0700);
	rc = jr_open(&loop, p, sub, NULL, true, false, snap, snap_arg, &j);
	if (rc < 0) {
		fprintf(stderr, "jr_open %s: %s\n", p, strerror(-rc));
		exit(1);
	}
	return j;
}

static uint64_t compactions(const struct jr *j)
{
	struct jr_stats st;

	jr_get_stats(j, &st);
	return st.compactions;
}

int main(int argc, char **argv)
{
	struct lk_table *other_live;
	struct probe pb = { .name = "big" }, po = { .name = "other" };
	size_t n, hosts = 1000;
	struct lk_client **cl;
	uv_timer_t t;
	bool fold;
	uint64_t c0, t0, t_end;

	if (argc < 4 || argc > 5 || (strcmp(argv[2], "snapshot") && strcmp(argv[2], "fold"))) {
		fprintf(stderr, "usage: jr_fold_bench DIR snapshot|fold LOCKS [HOSTS]\n");
		return 64;
	}
	fold = strcmp(argv[2], "fold") == 0;
	n = strtoul(argv[3], NULL, 10);
	if (argc == 5)
		hosts = strtoul(argv[4], NULL, 10);
	uv_loop_init(&loop);
	if (lk_table_new(NULL, &live) < 0 || lk_table_new(NULL, &other_live) < 0)
		return 1;
	pb.j = open_jr(argv[1], "big", live);
	po.j = open_jr(argv[1], "other", other_live);
	if (fold)
		jr_set_fold(pb.j, &nlm_fold_ops, NULL);
	/* Size-triggered compactions while building go the same way as the
	 * one measured; only the last one is measured. */
	cl = calloc(hosts, sizeof(*cl));
	char (*names)[32] = calloc(hosts, 32);
	for (size_t h = 0; h < hosts; h++) {
		snprintf(names[h], 32, "synth-%zu", h);
		lk_client_new(live, names[h], &cl[h]);
	}
	for (size_t i = 0; i < n;) {
		size_t end = i + 20000 < n ? i + 20000 : n;
		int want = done_calls + 1;

		for (; i < end; i++) {
			struct lk_owner *o;
			struct jr_rec r = { .type = JR_LOCK, .host = names[i % hosts],
					    .hostlen = strlen(names[i % hosts]), .svid = 1,
					    .oh = "o", .ohlen = 1, .fh = fh, .fhlen = sizeof(fh) - 1,
					    .excl = true, .start = i * 2, .end = i * 2 };

			lk_owner_get(live, cl[i % hosts], 1, "o", 1, &o);
			if (lk_lock(live, fh, sizeof(fh) - 1, o, LK_EXCL,
				    (struct lk_range){ i * 2, i * 2 }, NULL) < 0)
				return 1;
			lk_owner_put(live, o);
			if (jr_append(pb.j, &r) < 0)
				return 1;
		}
		if (jr_wait(pb.j, on_done, NULL) == 1)
			done_calls++;
		while (done_calls < want)
			uv_run(&loop, UV_RUN_ONCE);
	}
	/* Let a compaction of the build finish. */
	while (jr_folding(pb.j))
		uv_run(&loop, UV_RUN_ONCE);
	{
		struct jr_stats st;

		jr_get_stats(pb.j, &st);
		printf("built: %zu locks, journal %lld bytes, %" PRIu64 " compactions while building\n",
		       n, (long long)st.size, st.compactions);
	}
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick, 1, 1);
	pb.on = po.on = true;
	probe_go(&pb);
	probe_go(&po);
	/* a baseline second */
	t0 = uv_hrtime();
	while (uv_hrtime() - t0 < 1000000000ull)
		uv_run(&loop, UV_RUN_ONCE);
	printf("baseline 1 s: loop stall max %.3f ms; probe max big %.3f ms other %.3f ms; "
	       "probes %" PRIu64 "/%" PRIu64 "\n", tick_max / 1e6, pb.max_ns / 1e6,
	       po.max_ns / 1e6, pb.n, po.n);
	tick_max = pb.max_ns = po.max_ns = 0;
	pb.n = po.n = 0;
	snap_ns = 0;
	c0 = compactions(pb.j);
	t0 = uv_hrtime();
	if (fold)
		jr_test_fold(pb.j);
	else
		jr_compact(pb.j, false);
	while (compactions(pb.j) == c0)
		uv_run(&loop, UV_RUN_ONCE);
	t_end = uv_hrtime();
	while (uv_hrtime() - t_end < 1000000000ull)
		uv_run(&loop, UV_RUN_ONCE);
	printf("%s: compaction took %.1f ms; loop stall max %.3f ms; probe max big %.3f ms "
	       "other %.3f ms; probes big %" PRIu64 " other %" PRIu64 "; snapshot callback on "
	       "the loop %.1f ms\n", argv[2], (t_end - t0) / 1e6, tick_max / 1e6,
	       pb.max_ns / 1e6, po.max_ns / 1e6, pb.n, po.n, snap_ns / 1e6);
	pb.on = po.on = false;
	uv_timer_stop(&t);
	while (pb.n == 0 || po.n == 0)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
