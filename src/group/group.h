/*
 * group.h - a service group at run time on this node.
 *
 * A listener bound to one of the group's VIPs carries the group as
 * req->svc_ctx, so every handler knows which group a request came in on and
 * can refuse a file handle of another group (NFS3ERR_STALE).
 *
 * Ownership: the daemon creates a group when it brings it online and
 * destroys it when it takes it offline.  Per-protocol state hangs off it,
 * each owned by its module (nfs_group by src/nfs, ...).  The cfg pointer
 * refers into the immutable cluster config.
 */
#ifndef SGNFS_GROUP_H
#define SGNFS_GROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "group/gslot.h"

struct cfg_group;
struct cfg_cluster;
struct cfg_node;
struct rpc_svc;
struct rpc_listener;

struct sg_group;
struct owner_ops;
struct grp_waiter;
struct sbuf;

#include "metrics.h"
#include "wq.h"
#include "rpc/rpc_stats.h"

/*
 * What a group did on this node, for the metrics (docs/metrics.md).  One
 * per slot, so it lives as long as the node: counters survive the group
 * going offline and coming back.  Loop thread only.
 */
struct grp_metrics {
	struct rpc_stats rpc;           /* the listeners of every incarnation */
	uint64_t takeovers;             /* times it came online here */
	uint64_t takeover_failures;
	uint64_t bind_retries;          /* bind attempts after the first failed */
	uint64_t vip_adds;              /* VIPs this node added to an interface */
	uint64_t vip_announcements;     /* gratuitous ARPs / unsolicited NAs sent */
	struct mt_hist takeover;        /* decision to serve -> online */
	uint64_t notify_sent;           /* SM_NOTIFY started (client x VIP) */
	uint64_t notify_answered;
	uint64_t notify_given_up;
	/* Journals of past incarnations (the live one is read at scrape). */
	uint64_t journal_batches, journal_failures, journal_gathered;
	struct mt_hist journal_fsync;
};

/* A group this node may serve (it is in the group's `nodes`). */
struct sg_slot {
	struct sg_node *node;              /* not owned */
	const struct cfg_group *cfg;       /* immutable */
	const struct owner_ops *own;       /* who decides we serve it (cluster/owner.h) */
	void *own_impl;                    /* owned, freed by own->close */
	struct sg_group *g;                /* owned while opening or online here, else NULL */
	char why[256];                     /* why the last start failed, or "" */
	struct grp_metrics *m;             /* owned, NULL if it could not be had */
	bool stop_pending;                 /* stop once the open is done */
	bool stop_contend;                 /* ... and contend again afterwards (lease) */
	struct grp_waiter *waiters;        /* owned: control requests answered when
					      the open is done */
	struct sg_group *leaving;          /* a group that left by a move or drain and
					      holds its clients' connections until
					      another node has it (not owned: its
					      listeners and timer hold it) */
	const char *statedir;              /* <first export>/.sgnfs: cfg_group.statedir (config
					    * trees live until exit) */
	char vipdir[4200];                 /* <run_dir>/<node>.vips (cluster/vip.h) */
	/* Leaving: the group went offline here but a protocol still writes
	 * its state (gslot.h, grp_leave_hold).  Until the last hold is put
	 * back the owner is not told (another node would open that state),
	 * a managed stop is not answered and the group is not started here
	 * again. */
	struct grp_leave leave;            /* the hold handed out: put is grp_slot_leave_put */
	unsigned leave_holds;
	bool release_pending;              /* own->release(release_target or NULL,
					      release_contend) once they are back */
	bool release_contend;
	char release_target[65];           /* a node's name: CFG_NAME_MAX + 1 */
	bool acquired_pending;             /* the owner said acquired meanwhile */
};

/* This node: one per sgnfsd process. */
struct sg_node {
	uv_loop_t *loop;                   /* not owned */
	struct rpc_svc *svc;               /* owned by the daemon */
	const struct cfg_cluster *cfg;     /* immutable, owned by the daemon */
	const struct cfg_node *me;         /* points into cfg */
	struct sg_slot *slots;             /* owned */
	size_t nslots;
	size_t opening;                    /* groups whose state is being read */
	bool draining;                     /* drain: take no group */
	bool stopping;                     /* shutting down (grp_node_stop) */
	bool stop_walking;                 /* ... its walk over the slots is under way */
};

/*
 * A group's life on this node: opening (its state is read on the thread
 * pool; its slots belong to that work), online (serving; in grace or not),
 * closing (going offline).  Offline is the absence of the group.
 */
enum grp_state { GRP_OPENING, GRP_BINDING, GRP_ONLINE, GRP_CLOSING };
/* GRP_BINDING: installed (protocols online, grace running) but a VIP could
 * not be bound yet (say, its address is not on this machine yet); retried
 * with back-off, online as soon as every bind succeeds. */

struct nsm_notifier;

struct sg_group {
	struct grp_pub pub;                /* what protocols see (gslot.h); first, so
					      a listener's context is both */
	struct sg_node *node;              /* not owned */
	struct grp_metrics *m;             /* the slot's, or NULL */
	uint64_t start_ns;                 /* uv_hrtime() when the start began */
	struct sg_slot *slot;              /* not owned: the slot it is in */
	enum grp_state state;
	struct wq_work open_work;               /* the open on the thread pool */
	int open_rc;                       /* its result (set on the pool) */
	char open_why[256];                /* why it failed */
	struct nsm_notifier *notifier;     /* owned while notifying */
	struct nsm_notifier *notify_prep;  /* owned: prepared by the open off the
					      loop, run when it goes online */
	uv_timer_t grace_timer;            /* holds a reference while open */
	bool timer_open;
	uv_timer_t handover_timer;         /* while leaving: polls the owner; holds
					      a reference while open */
	uint64_t handover_start;           /* uv_now() when it began leaving */
	uint64_t online_at;                /* uv_now() when it came online */
	const struct cfg_cluster *cluster; /* immutable */
	const struct cfg_group *cfg;       /* immutable */
	struct rpc_listener **lsn;         /* owned; one per VIP and port */
	size_t nlsn;                       /* bound so far, in VIP-then-port order */
	bool *vip_added;                   /* owned; [v]: this incarnation added vips[v]
					      to its interface (removed at release) */
	uv_timer_t bind_timer;             /* bind retries; holds a reference while open */
	bool bind_timer_open;
	bool serving;                      /* installed: new listeners serve at once */
	bool bound_told;                   /* the owner was told it listens on every VIP
					      (owner_ops.bound), until it stops */
	uint32_t bind_delay_ms;            /* the next retry's delay: 100 ms doubling to 5 s */
	unsigned bind_tries;               /* failed bind attempts so far */
	char bind_why[320];                /* the last bind failure and the next retry */
	uv_timer_t announce_timer;         /* ARP/NA rounds; holds a reference while open */
	bool announce_timer_open;
	unsigned announce_rounds;          /* rounds sent so far */
	bool online;
	unsigned refs;                     /* the group's own + one per listener + timer */
};

/*
 * Plug protocol @id into every group this node brings online (call before
 * grp_node_start).  @ops must outlive the node.
 */
void grp_proto_register(enum grp_proto_id id, const struct grp_proto_ops *ops);

struct json_object;

/*
 * Open the owner of every group this node may serve (src/cluster/owner.h):
 * a lease-owned group comes online here when this node acquires its lease;
 * a managed one when grp_node_start_group() is called for it.  0 or -errno.
 */
int grp_node_start(struct sg_node *node);
/* Take every group offline (clean shutdown) and close the owners. */
void grp_node_stop(struct sg_node *node);

/*
 * The managed-ownership commands of the control socket (docs/failover.md):
 *   start   bring @group online here; 0 also when it already is.
 *   stop    take it offline here; 0 also when it was not served here.
 * Both return 0 when done, 1 when the group is opening (the caller waits
 * for it: grp_node_ctl_group does), -errno with @why filled when refused
 * or failed (unknown group, lease-owned group, the start failed: the
 * reason stays for grp_node_group_state).
 */
int grp_node_start_group(struct sg_node *node, const char *group, char *why, size_t whylen);
int grp_node_stop_group(struct sg_node *node, const char *group, char *why, size_t whylen);

/* One group's state on this node, for `sgnfsctl status GROUP`. */
enum grp_node_state {
	GRP_NODE_ONLINE,    /* served here (in grace or not) */
	GRP_NODE_OPENING,   /* being brought online here */
	GRP_NODE_OFFLINE,   /* not served here */
	GRP_NODE_FAILED,    /* the last start here failed; @why says why */
	GRP_NODE_UNKNOWN,   /* not a group this node may serve */
};
enum grp_node_state grp_node_group_state(struct sg_node *node, const char *group,
					 const char **why);
/*
 * The control requests "start GROUP", "stop GROUP" and "group GROUP"
 * (@cmd is "start", "stop" or "group"): fill the reply object @out with
 * {"result":"online"|"offline",...} or {"error":why} for start and stop,
 * {"group","node","state":"online"|"offline"|"failed"|"unknown","reason"}
 * for group.
 */
void grp_node_ctl_group(struct sg_node *node, const char *cmd, const char *group,
			struct json_object *out);
/* Control requests: "move GROUP NODE", "drain", "undrain"; the answer's
 * fields go into the reply object @out. */
void grp_node_move(struct sg_node *node, const char *group, const char *target,
		   struct json_object *out);
void grp_node_drain(struct sg_node *node, bool drain, struct json_object *out);
/*
 * The "groups" (served here) and "standby" (may serve, does not, and why)
 * parts of the node's status (docs/status.md), in two steps so that the
 * loop only copies ("Where the status is built"):
 *   grp_node_snap      loop thread: copy what they show into *@out (the
 *                      caller's), each list clients grow cut at its share
 *                      (grp_status_list_max); it points into nothing of
 *                      the node's, so it stays good if a group goes away
 *                      or the node stops.  0 or -ENOMEM (nothing to free).
 *   grp_node_render    any thread (a pool thread): add both parts to the
 *                      node's object @out from the copy alone.
 *   grp_node_snap_free any thread; NULL is fine.
 */
struct grp_node_snap;
int grp_node_snap(struct sg_node *node, struct grp_node_snap **out);
void grp_node_render(const struct grp_node_snap *s, struct json_object *out);
void grp_node_snap_free(struct grp_node_snap *s);

/*
 * Reload: make @next (checked by rl_check, owned by the caller, alive until
 * exit like every tree before it) the node's configuration.  Online groups
 * whose exports changed get their NFS state reopened and swapped in;
 * every other group is not touched.  Each change is logged and appended
 * to @changes (JSON strings).  0, or -errno with @why, and then nothing
 * changed.
 */
int grp_node_reconfigure(struct sg_node *node, const struct cfg_cluster *next,
			 struct json_object *changes, char *why, size_t whylen);

/* Write this node's group and RPC metrics (Prometheus text) to @out, every
 * sample labelled node="NODE" and group="GROUP". */
void grp_node_metrics(struct sg_node *node, struct sbuf *out);

/* The entries per list a status of @nserved served groups gives each
 * (grp_node_snap). */
size_t grp_status_list_max(size_t nserved);

/* Take @g offline: close its sockets and drop its state.  @g is freed once
 * the last request that arrived on it has finished. */
void grp_stop(struct sg_group *g);

/* How long a group that left by a move or drain keeps its clients'
 * connections open (reading nothing) waiting for another node to take
 * it and listen on its VIPs, before it closes them anyway (that node
 * died or is stuck; logged). */
#define GRP_HANDOVER_MS 3000
#define GRP_HANDOVER_POLL_MS 5

#endif
