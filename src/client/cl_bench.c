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
 * Reported: pairs/s, RPCs/s, and the latency of each RPC (request sent to
 * answer decoded) at p50 / p99 / max, in microseconds.
 */
#include "client/cl_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlm.h"

struct clb_slot {
	struct clb_run *run;
	struct cl_server *srv;
	struct cl_lockreq rq;
	bool locked;                 /* next RPC is the UNLOCK */
};

struct clb_run {
	const struct cl_bench_opts *o;
	uv_loop_t *loop;
	uint64_t t_start, t_end;     /* uv_hrtime() */
	uint64_t deadline;           /* uv_hrtime(): stop starting pairs */
	uint64_t pairs, ops, errors, denied;
	uint64_t started;            /* pairs begun */
	int first_err;
	uint32_t *lat;               /* microseconds per RPC (owned) */
	size_t nlat, caplat;
	unsigned active;             /* slots still running */
	struct clb_slot *slots;      /* owned */
	size_t nslots;
};

static void clb_next(struct clb_slot *sl);

static void clb_done(const struct cl_result *r, void *arg)
{
	struct clb_slot *sl = arg;
	struct clb_run *run = sl->run;

	run->ops++;
	if (run->nlat == run->caplat) {
		size_t cap = run->caplat ? run->caplat * 2 : 1u << 16;
		uint32_t *n = realloc(run->lat, cap * sizeof(*n));
		if (n) {
			run->lat = n;
			run->caplat = cap;
		}
	}
	if (run->nlat < run->caplat)
		run->lat[run->nlat++] = r->usec > UINT32_MAX ? UINT32_MAX : (uint32_t)r->usec;
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

static void clb_next(struct clb_slot *sl)
{
	struct clb_run *run = sl->run;
	int rc;

	if (!sl->locked) {
		bool over = run->o->count ? run->started >= run->o->count
					  : uv_hrtime() >= run->deadline;
		/* a dead server fails everything: report soon, not after the count */
		if (over || run->errors > 100) {
			run->active--;
			if (run->active == 0) {
				run->t_end = uv_hrtime();
				uv_stop(run->loop);
			}
			return;
		}
		run->started++;
		rc = cl_lock(sl->srv, &sl->rq, clb_done, sl);
	} else {
		rc = cl_unlock(sl->srv, &sl->rq, clb_done, sl);
	}
	if (rc < 0) {
		run->errors++;
		if (!run->first_err)
			run->first_err = rc;
		run->active--;
		if (run->active == 0) {
			run->t_end = uv_hrtime();
			uv_stop(run->loop);
		}
	}
}

static int clb_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t clb_pct(const struct clb_run *run, double p)
{
	size_t i;

	if (run->nlat == 0)
		return 0;
	i = (size_t)(p * (double)(run->nlat - 1) + 0.5);
	return run->lat[i];
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
	if (!run.slots)
		return -ENOMEM;
	for (size_t h = 0; h < nhosts; h++) {
		struct cl_server *srv;

		struct cl_host *host = cl_host_at(ctx, h);

		rc = cl_server_get(host, &o->server, &srv);
		if (rc < 0)
			goto out;
		for (unsigned k = 0; k < o->depth; k++) {
			struct clb_slot *sl = &run.slots[h * o->depth + k];

			sl->run = &run;
			sl->srv = srv;
			sl->rq.file = *file;
			sl->rq.svid = o->svid_base + k % o->owners;
			/* the owner handle cl_lock would make ("<svid>@<host
			 * name>"), made once here rather than per call */
			int n = snprintf((char *)sl->rq.oh.val, CL_MAX_NETOBJ, "%u@%s",
					 sl->rq.svid, cl_host_name(host));
			sl->rq.oh.len = n < CL_MAX_NETOBJ ? (uint32_t)n : CL_MAX_NETOBJ - 1;
			/* disjoint 8-byte ranges: slots never conflict */
			sl->rq.start = ((uint64_t)h * o->depth + k) * 8u;
			sl->rq.len = 8;
			sl->rq.exclusive = true;
		}
	}
	run.t_start = uv_hrtime();
	run.deadline = run.t_start + (uint64_t)o->seconds * 1000000000u;
	run.active = (unsigned)run.nslots;
	for (size_t i = 0; i < run.nslots; i++)
		clb_next(&run.slots[i]);
	if (run.active)
		uv_run(loop, UV_RUN_DEFAULT);
	if (!run.t_end)
		run.t_end = uv_hrtime();

	qsort(run.lat, run.nlat, sizeof(*run.lat), clb_cmp);
	{
		double secs = (double)(run.t_end - run.t_start) / 1e9;
		double pps = secs > 0 ? (double)run.pairs / secs : 0;
		double ops = secs > 0 ? (double)run.ops / secs : 0;
		uint32_t p50 = clb_pct(&run, 0.50), p99 = clb_pct(&run, 0.99);
		uint32_t mx = run.nlat ? run.lat[run.nlat - 1] : 0;

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
	free(run.lat);
	free(run.slots);
	return rc;
}
