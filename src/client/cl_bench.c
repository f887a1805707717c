/*
 * cl_bench.c - bench-lock: LOCK+UNLOCK pairs as fast as the server answers.
 *
 * Every host runs @depth independent slots; a slot loops LOCK (exclusive,
 * non-blocking) then UNLOCK of its own 8-byte range, so slots never conflict
 * and the server does real work (insert, then split/remove) on one file.
 * Slot k uses owner svid = base + k % owners, so @owners owners per host
 * share the file.  With depth 1 this measures one request at a time on one
 * connection per host; with depth D, D requests are in flight per connection.
 *
 * Each slot is a cl_slot (cl.h): its request block, NLM call record and
 * result are made once and reused, so the load generator allocates nothing
 * per call and keeps no record of held locks (nothing here reclaims: see
 * cl.h), and a run measures the server rather than the client's malloc.
 *
 * Reported: pairs/s, RPCs/s, and the latency of each RPC (request sent to
 * answer decoded) at p50 / p99 / max, in microseconds.  Every RPC's latency
 * is counted, exactly: a count per microsecond below CLB_HIST_US and each
 * slower one kept as it is, so the percentiles are those of the sorted list
 * of all of them without keeping (and sorting) a list of millions.
 */
#include "client/cl_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlm.h"
#include "spin.h"

#define CLB_MAX_ERRORS 100           /* then the run stops early */
#define CLB_HIST_US    (1u << 16)    /* latencies counted per microsecond below */

struct clb_slot {
	struct clb_run *run;
	struct cl_slot *slot;        /* owned */
	bool locked;                 /* next RPC is the UNLOCK */
};

struct clb_run {
	const struct cl_bench_opts *o;
	uv_loop_t *loop;
	uint64_t t_start, t_end;     /* uv_hrtime() */
	uint64_t deadline_ms;        /* uv_now(): stop starting pairs */
	uint64_t pairs, ops, errors, denied;
	uint64_t started;            /* pairs begun */
	int first_err;
	uint64_t *hist;              /* RPCs per microsecond, below CLB_HIST_US (owned) */
	uint32_t *slow;              /* each latency >= CLB_HIST_US, in us (owned) */
	size_t nslow, capslow;
	uint64_t nlat;               /* latencies counted (hist + slow) */
	unsigned active;             /* slots still running */
	struct clb_slot *slots;      /* owned */
	size_t nslots;
	struct spin spin;            /* with --poll-us: the loop polls before it sleeps */
};

static void clb_next(struct clb_slot *sl);

/* One RPC's latency; dropped (not counted) only if a slow one finds no memory. */
static void clb_count(struct clb_run *run, uint64_t usec)
{
	if (usec < CLB_HIST_US) {
		run->hist[usec]++;
		run->nlat++;
		return;
	}
	if (run->nslow == run->capslow) {
		size_t cap = run->capslow ? run->capslow * 2 : 1024;
		uint32_t *n = realloc(run->slow, cap * sizeof(*n));

		if (!n)
			return;
		run->slow = n;
		run->capslow = cap;
	}
	run->slow[run->nslow++] = usec > UINT32_MAX ? UINT32_MAX : (uint32_t)usec;
	run->nlat++;
}

static void clb_done(const struct cl_result *r, void *arg)
{
	struct clb_slot *sl = arg;
	struct clb_run *run = sl->run;

	run->ops++;
	clb_count(run, r->usec);
	if (r->err || r->stat != NLM4_GRANTED) {
		if (r->err) {
			run->errors++;
			if (!run->first_err)
				run->first_err = r->err;
		} else {
			run->denied++;
		}
		/* a failed LOCK leaves nothing to unlock; a failed UNLOCK is retried */
		if (!sl->locked) {
			clb_next(sl);
			return;
		}
	} else if (sl->locked) {
		sl->locked = false;
		run->pairs++;
	} else {
		sl->locked = true;
	}
	clb_next(sl);
}

/* @sl starts nothing more; the last slot to stop ends the run. */
static void clb_stop(struct clb_slot *sl)
{
	struct clb_run *run = sl->run;

	run->active--;
	if (run->active == 0) {
		run->t_end = uv_hrtime();
		uv_stop(run->loop);
		spin_stop(&run->spin);
	}
}

static void clb_next(struct clb_slot *sl)
{
	struct clb_run *run = sl->run;
	int rc;

	/* A dead server fails everything: report soon, not after the count.
	 * Checked before an UNLOCK too: one that fails at once (connection
	 * refused) would otherwise be retried for ever. */
	if (run->errors > CLB_MAX_ERRORS) {
		clb_stop(sl);
		return;
	}
	if (!sl->locked) {
		/* the loop's clock (ms, updated every turn) is enough for the
		 * deadline; the rate uses t_start/t_end */
		bool over = run->o->count ? run->started >= run->o->count
					  : uv_now(run->loop) >= run->deadline_ms;

		if (over) {
			clb_stop(sl);
			return;
		}
		run->started++;
	}
	rc = cl_slot_call(sl->slot, sl->locked, clb_done, sl);
	if (rc < 0) {
		run->errors++;
		if (!run->first_err)
			run->first_err = rc;
		clb_stop(sl);
	}
}

/* What the polling watches (spin.h): answers decoded.  All of them count as
 * one source: a load generator wants every connection's answer at once,
 * where the server's loop lets a sleep batch many connections' calls. */
static uint64_t clb_input(void *arg, uint64_t *switches)
{
	const struct clb_run *run = arg;

	*switches = 0;
	return run->ops + run->errors;
}

static int clb_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The @i-th smallest latency counted (0-based, i < nlat; slow sorted). */
static uint32_t clb_nth(const struct clb_run *run, uint64_t i)
{
	for (uint32_t us = 0; us < CLB_HIST_US; us++) {
		if (i < run->hist[us])
			return us;
		i -= run->hist[us];
	}
	return run->slow[i];
}

static uint32_t clb_pct(const struct clb_run *run, double p)
{
	if (run->nlat == 0)
		return 0;
	return clb_nth(run, (uint64_t)(p * (double)(run->nlat - 1) + 0.5));
}

int cl_bench_run(uv_loop_t *loop, struct cl_ctx *ctx, const struct cl_bench_opts *o,
		 const struct cl_file *file, FILE *out, bool json)
{
	struct clb_run run;
	size_t nhosts = cl_host_count(ctx);
	int rc = 0;

	memset(&run, 0, sizeof(run));
	run.o = o;
	run.loop = loop;
	run.nslots = nhosts * o->depth;
	run.slots = calloc(run.nslots ? run.nslots : 1, sizeof(*run.slots));
	run.hist = calloc(CLB_HIST_US, sizeof(*run.hist));
	if (!run.slots || !run.hist) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t h = 0; h < nhosts; h++) {
		struct cl_server *srv;
		struct cl_lockreq *rq = malloc(sizeof(*rq));

		if (!rq) {
			rc = -ENOMEM;
			goto out;
		}
		rc = cl_server_get(cl_host_at(ctx, h), &o->server, &srv);
		for (unsigned k = 0; k < o->depth && rc == 0; k++) {
			struct clb_slot *sl = &run.slots[h * o->depth + k];

			memset(rq, 0, sizeof(*rq));
			rq->file = *file;
			rq->svid = o->svid_base + k % o->owners;
			/* disjoint 8-byte ranges: slots never conflict; the owner
			 * handle is cl_lock's default, "<svid>@<host name>" */
			rq->start = ((uint64_t)h * o->depth + k) * 8u;
			rq->len = 8;
			rq->exclusive = true;
			sl->run = &run;
			rc = cl_slot_new(srv, rq, &sl->slot);
		}
		free(rq);
		if (rc < 0)
			goto out;
	}
	uv_update_time(loop);
	run.t_start = uv_hrtime();
	run.deadline_ms = uv_now(loop) + (uint64_t)o->seconds * 1000u;
	run.active = (unsigned)run.nslots;
	for (size_t i = 0; i < run.nslots; i++)
		clb_next(&run.slots[i]);
	/* Polling spares the server the client's wake-up: on one machine a
	 * reply that finds the client asleep wakes it from inside the
	 * server's send (loopback delivers in the sender's context), a cost
	 * a server pays for no client on a network. */
	spin_init(&run.spin, o->poll_us, clb_input, &run);
	if (run.active)
		spin_run(&run.spin, loop);
	if (!run.t_end)
		run.t_end = uv_hrtime();

	qsort(run.slow, run.nslow, sizeof(*run.slow), clb_cmp);
	{
		double secs = (double)(run.t_end - run.t_start) / 1e9;
		double pps = secs > 0 ? (double)run.pairs / secs : 0;
		double ops = secs > 0 ? (double)run.ops / secs : 0;
		uint32_t p50 = clb_pct(&run, 0.50), p99 = clb_pct(&run, 0.99);
		uint32_t mx = run.nlat ? clb_nth(&run, run.nlat - 1) : 0;

		if (json)
			fprintf(out, "{\"hosts\":%zu,\"owners\":%u,\"depth\":%u,\"transport\":\"%s\","
				"\"seconds\":%.3f,\"pairs\":%llu,\"rpcs\":%llu,\"pairs_per_s\":%.0f,"
				"\"rpcs_per_s\":%.0f,\"p50_us\":%u,\"p99_us\":%u,\"max_us\":%u,"
				"\"denied\":%llu,\"errors\":%llu}\n",
				nhosts, o->owners, o->depth, o->tcp ? "tcp" : "udp", secs,
				(unsigned long long)run.pairs, (unsigned long long)run.ops, pps, ops,
				p50, p99, mx, (unsigned long long)run.denied,
				(unsigned long long)run.errors);
		else
			fprintf(out, "bench-lock hosts=%zu owners=%u depth=%u transport=%s "
				"seconds=%.3f pairs=%llu rpcs=%llu pairs/s=%.0f rpcs/s=%.0f "
				"p50_us=%u p99_us=%u max_us=%u denied=%llu errors=%llu\n",
				nhosts, o->owners, o->depth, o->tcp ? "tcp" : "udp", secs,
				(unsigned long long)run.pairs, (unsigned long long)run.ops, pps, ops,
				p50, p99, mx, (unsigned long long)run.denied,
				(unsigned long long)run.errors);
		if (run.errors)
			fprintf(stderr, "sgnfs-client: bench-lock: %llu errors, first: %s\n",
				(unsigned long long)run.errors, rpcc_strerror(run.first_err));
	}
	rc = run.errors ? -EIO : 0;
out:
	for (size_t i = 0; run.slots && i < run.nslots; i++)
		cl_slot_free(run.slots[i].slot);
	free(run.hist);
	free(run.slow);
	free(run.slots);
	return rc;
}
