/*
 * cl_bench.h - bench-lock, the LOCK+UNLOCK load generator (cl_bench.c).
 */
#ifndef SGNFS_CL_BENCH_H
#define SGNFS_CL_BENCH_H

#include "client/cl.h"

struct cl_bench_opts {
	struct sockaddr_in server;   /* the VIP */
	unsigned depth;              /* requests in flight per host (>= 1) */
	unsigned owners;             /* owners (svids) per host (>= 1) */
	uint32_t svid_base;
	unsigned seconds;            /* run this long ... */
	uint64_t count;              /* ... or this many pairs (0 = use seconds) */
	bool tcp;                    /* for the report only */
	unsigned poll_us;            /* poll this long before sleeping (spin.h); 0: never */
};

/*
 * Run the benchmark on every host of @ctx against @file, print one report
 * line (or JSON object) to @out.  Runs @loop itself and returns when done,
 * leaving ctx open.  0, or -EIO if any RPC failed.
 */
int cl_bench_run(uv_loop_t *loop, struct cl_ctx *ctx, const struct cl_bench_opts *o,
		 const struct cl_file *file, FILE *out, bool json);

#endif
