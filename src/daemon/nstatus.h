/*
 * nstatus.h - the node status (docs/status.md) written off the event loop.
 *
 * Every request of every group passes through the loop, and the status
 * lists what clients grow (each served group's clients and locks, up to
 * 10,000 entries a node): building that as json-c objects, writing it out
 * and freeing it held the loop 70-100 ms, during which no group was
 * served.  So the status is made in two steps:
 *   - on the loop, a flat copy of what it shows (struct nst_snap, filled
 *     by the daemon; the groups' part by grp_node_snap): counters, copied
 *     strings, the list entries up to their cap; nothing in it points into
 *     live state;
 *   - on a state I/O thread (nst_render_async, wq.h), the json-c objects, the
 *     text, what wraps it for the wire, and every free; the answer is
 *     handed back on the loop when the job is done.
 * A job in flight when the node stops still ends (libuv's loop does not
 * return while work is pending), and ends exactly once: its done callback
 * runs on the loop, with the answer or an error.
 */
#ifndef SGNFS_NSTATUS_H
#define SGNFS_NSTATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/peer.h"
#include "rpc/rpc_drc.h"

struct grp_node_snap;

/* What the node object shows (docs/status.md, "Node status"), as copied on
 * the loop.  Pointers are owned by the snapshot unless they say "literal". */
struct nst_snap {
	char *node, *cfg_path, *cfg_sha256;
	int64_t pid;
	bool draining;
	bool loop_rt;                     /* the loop runs real-time */
	int loop_cpu;                     /* -1: not pinned */
	uint32_t spin_max_us;             /* poll_spin_us in force (spin.h) */
	uint64_t spin_hits, spin_misses;
	bool has_peer;                    /* the node answers peer status */
	char peer_listen[64];
	struct peer_stats peer;
	const char *log_level, *log_target;  /* literals */
	char *log_file;                   /* NULL: no log file */
	unsigned long log_dropped;        /* log_dropped() */
	unsigned log_queued;              /* log_queued() */
	bool sd_notify;                   /* sdn_enabled() */
	unsigned long sd_dropped;         /* sdn_dropped() */
	uint64_t udp_dropped, udp_dropped_host, conns_refused, conns_evicted;
	/* The byte budget (rpc.h, rpc_svc_budget_stats). */
	uint64_t inflight_bytes, inflight_stops_host, inflight_stops_node;
	struct rpc_drc_stats drc;
	struct grp_node_snap *groups;     /* "groups" and "standby" */
	uint64_t copy_ns;                 /* the loop's time taking it (debug log) */
};

/* A zeroed snapshot (calloc) or NULL; free with nst_snap_free (any
 * thread; NULL is fine), also when only partly filled. */
struct nst_snap *nst_snap_new(void);
void nst_snap_free(struct nst_snap *s);

/* Pool thread: wrap the JSON text @json (@len bytes, owned by the job) into
 * the answer as it goes out, *@out (malloc'd, *@outlen bytes).  0 or
 * -errno. */
typedef int (*nst_wrap_fn)(void *arg, const char *json, size_t len, char **out,
			   size_t *outlen);
/* Loop thread: the job ended.  @out (from the wrap; ownership passes to the
 * callee) or NULL with @rc < 0 saying why. */
typedef void (*nst_done_fn)(void *arg, int rc, char *out, size_t outlen);

/*
 * Loop thread: write @snap (ownership passes here, also on failure) on the
 * thread pool, wrap it with @wrap there, and call @done(@arg, ...) on the
 * loop when done.  0 (then @done is called exactly once, later, never from
 * here), or -errno (@done is not called; @snap is freed).
 */
int nst_render_async(uv_loop_t *loop, struct nst_snap *snap, nst_wrap_fn wrap,
		     nst_done_fn done, void *arg);

/* The same in the calling thread: the node object into @out (an empty
 * object the caller owns).  Does not free @snap. */
struct json_object;
void nst_render(const struct nst_snap *snap, struct json_object *out);

/* For the metrics (loop thread): jobs queued or running now, and since
 * the start. */
struct nst_stats {
	uint64_t running, total;
};
void nst_get_stats(struct nst_stats *out);

#endif
