/*
 * rpc_stats.h - what the RPC layer counts for one service group (the
 * listeners of a group share one struct rpc_stats, owned by the group's
 * slot so the counters live as long as the node).  Loop thread only: every
 * count is taken where the request finishes, on the loop.
 *
 * Indices: program = its position in the service's registration order,
 * version = vers - the program's vers_lo, procedure = its number.  Calls
 * outside the arrays are not counted per procedure (none of our tables
 * reaches them).
 */
#ifndef SGNFS_RPC_STATS_H
#define SGNFS_RPC_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sbuf.h"

#define RPCST_NPROG 8
#define RPCST_NVERS 4
#define RPCST_NPROC 32

enum rpcst_outcome {
	RPCST_SUCCESS = 0,   /* accepted, reply sent */
	RPCST_GARBAGE_ARGS,
	RPCST_SYSTEM_ERR,
	RPCST_NOREPLY,       /* no reply by design (NLM _MSG procedures) */
	RPCST_DROPPED,       /* the connection or listener went away first */
	RPCST_NOUT
};

enum rpcst_reject {
	RPCST_PROG_UNAVAIL = 0,
	RPCST_PROG_MISMATCH,
	RPCST_PROC_UNAVAIL,
	RPCST_AUTH_ERROR,
	RPCST_RPC_MISMATCH,
	RPCST_NREJ
};

struct rpc_stats {
	uint64_t calls[RPCST_NPROG][RPCST_NVERS][RPCST_NPROC][RPCST_NOUT];
	struct mt_hist latency[RPCST_NPROG][RPCST_NPROC]; /* arrival to reply */
	uint64_t rejected[RPCST_NREJ];
	uint64_t bytes_in, bytes_out;     /* RPC payload incl. record marks (TCP) */
	uint64_t conns_accepted, conns_open;
	uint64_t udp_dropped;             /* datagrams dropped: the group's queue was full */
	uint64_t pool_done;               /* blocking requests back from the thread pool */
	uint64_t pool_lowered;            /* of those, run at a lower CPU priority (backlogged) */
	uint64_t pool_udp_sent;           /* of those, UDP replies sent by the pool thread */
	/* Duplicate-request cache (rpc_drc.h), calls of this group. */
	uint64_t drc_hits, drc_misses, drc_inprogress_drops;
};

struct rpc_svc;
struct rpc_listener;

/* Count the traffic of @l into @st (NULL: none).  @st must outlive @l. */
void rpc_listener_set_stats(struct rpc_listener *l, struct rpc_stats *st);

/*
 * Write the RPC metric families for @n groups: @st[i] with the label
 * string @labels[i] (e.g. group="g1").  Procedure and program names come
 * from @svc's tables.
 */
void rpc_stats_write(const struct rpc_svc *svc, struct rpc_stats *const *st,
		     const char *const *labels, size_t n, struct sbuf *out);

#endif
