/*
 * gslot.h - a service group as the protocols see it.
 *
 * In the spirit of Linux's net_generic(): each protocol keeps its
 * per-group state in a slot the group hands out (grp_slot(g, id)), so the
 * group code never names a protocol's structures and the protocols never
 * reach into the group's.  The arrows point one way: src/nfs, src/nlm and
 * src/nsm include this header and never src/group/group.h; src/group never
 * includes a protocol's header.  The daemon plugs each protocol in with a
 * struct grp_proto_ops at start-up (grp_proto_register).
 *
 * What the group owns and shares here (docs/architecture.md):
 *   - its identity: name, configuration, the loop it runs on;
 *   - its NSM identity: the state number and the client list (the notifier
 *     is the group's own, started when it comes online);
 *   - its grace, which every protocol of the group joins: a protocol asks
 *     grp_in_grace() before granting, says at online whether it has
 *     something to recover, and calls grp_recovered() once it has nothing
 *     left to wait for, so the grace can end early when every protocol
 *     has.  A later NFSv4 service joins the same grace without NLM knowing.
 *
 * Threading: every field is written by src/group on the loop thread (or
 * on the thread pool while the group is opening and nobody else sees it)
 * and read by protocols on the loop thread.  The status's pool step
 * (status_render) reads only its own copy.  The request context of a
 * listener (req->svc_ctx) is the group's struct grp_pub.
 */
#ifndef SGNFS_GSLOT_H
#define SGNFS_GSLOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct cfg_cluster;
struct cfg_group;
struct clist;
struct json_object;
struct jr_stats;
struct grp_pub;

enum grp_proto_id { GRP_PROTO_NFS, GRP_PROTO_NLM, GRP_PROTO_MAX };

/* What a protocol plugs into every group with.  Every function but open
 * runs on the loop thread. */
struct grp_proto_ops {
	const char *name;
	/* On the thread pool, while the group opens: read this protocol's
	 * state of @g from its storage; touch no loop.  0 and *slot (the
	 * protocol's state, owned by it), or -errno. */
	int (*open)(struct grp_pub *g, void **slot);
	/* The group is being installed on the loop: create loop handles.
	 * Returns 1 if something may need reclaiming (the group starts its
	 * grace), 0 if not, or -errno (the group does not come online). */
	int (*online)(struct grp_pub *g, void *slot);
	/* The group's grace has ended (timeout, or every protocol recovered). */
	void (*grace_end)(struct grp_pub *g, void *slot);
	/* The group goes offline (@online: online ran), or failed to come
	 * online after open.  NULL: nothing to do then. */
	void (*close)(struct grp_pub *g, void *slot, bool online);
	/* The last request that arrived on the group has finished (after
	 * close): state that requests on the thread pool use goes now.
	 * NULL: nothing to do then. */
	void (*release)(void *slot);
	/* This protocol's part of the group's status, in two steps, so that
	 * the loop only copies (docs/status.md, "Where the status is built";
	 * grp_node_snap).  status_snap, on the loop: copy what the part shows
	 * out of @slot into *@snap (then the caller's; NULL: no part), plain
	 * data pointing into nothing of the slot's, any list whose length
	 * clients decide cut at @list_max entries; 0 or -ENOMEM (*@snap
	 * NULL).  status_render, on a pool thread while the loop goes on:
	 * add the part to the group's object @o from @snap alone.
	 * status_free: any thread, NULL is fine.  All three or none. */
	int (*status_snap)(const struct grp_pub *g, const void *slot, size_t list_max,
			   void **snap);
	void (*status_render)(const void *snap, struct json_object *o);
	void (*status_free)(void *snap);
	/* Client @name says it rebooted (SM_NOTIFY, FREE_ALL): release what
	 * it held here if @from is an address the group's list records for
	 * it, or @trusted.  True if something was released. */
	bool (*client_rebooted)(struct grp_pub *g, void *slot, const char *name,
				const struct sockaddr_storage *from, bool trusted, const char *why);
	/* The locks it holds and the requests waiting for one (status,
	 * metrics); NULL: none. */
	size_t (*nlocks)(const void *slot);
	size_t (*nwaiters)(const void *slot);
	/* Its journal's counters into @st (metrics); NULL: no journal. */
	void (*journal_stats)(const void *slot, struct jr_stats *st);
	/* A reload to configuration @c, @gc: prepare what may fail (0 and
	 * *prep, NULL when nothing changes; or -errno and nothing changes),
	 * then either commit it into *slot or drop it.  NULL: no change. */
	int (*reconf_prepare)(struct grp_pub *g, void *slot, const struct cfg_cluster *c,
			      const struct cfg_group *gc, void **prep);
	void (*reconf_commit)(void **slot, void *prep);
	void (*reconf_drop)(void *prep);
};

/* A hold on a group's leaving (grp_leave_hold); the group's to free. */
struct grp_leave {
	void (*put)(struct grp_leave *hold);
};

/* Calls from a protocol into its group (set by src/group). */
struct grp_calls {
	void (*recovered)(struct grp_pub *g, enum grp_proto_id id, const char *why);
	struct grp_leave *(*leave_hold)(struct grp_pub *g);
	bool (*client_rebooted)(struct grp_pub *g, const char *name,
				const struct sockaddr_storage *from, bool trusted, const char *why);
};

struct grp_pub {
	const char *name;                  /* the group's name (points into cfg) */
	const struct cfg_group *cfg;       /* immutable */
	const struct cfg_cluster *cluster; /* immutable */
	uv_loop_t *loop;                   /* not owned */
	void *slot[GRP_PROTO_MAX];         /* each protocol's state; owned by it */
	/* NSM identity */
	int32_t nsm_state;                 /* this incarnation's state number */
	struct clist *clients;             /* the client list; owned by the group */
	/* Grace */
	bool in_grace;
	uint64_t grace_start, grace_end;   /* uv_now() ms */
	unsigned recovering;               /* bit per protocol still recovering */
	const struct grp_calls *calls;     /* not owned */
};

static inline void *grp_slot(const struct grp_pub *g, enum grp_proto_id id)
{
	return g ? g->slot[id] : NULL;
}

/* May a protocol of @g grant something new (not a reclaim) without asking
 * its own recovery state?  Not while the group is in grace. */
static inline bool grp_in_grace(const struct grp_pub *g)
{
	return g->in_grace;
}

/* Protocol @id has nothing left to recover in @g (@why for the log). */
static inline void grp_recovered(struct grp_pub *g, enum grp_proto_id id, const char *why)
{
	g->calls->recovered(g, id, why);
}

/*
 * In close, a protocol whose state still has writes to finish on the
 * group's storage (a journal's last batch) holds the group's leaving: the
 * group does not tell its owner it has left this node (so no other node
 * takes it; a managed stop is not answered) until each hold is given back
 * with grp_leave_put(hold), from any later point on the loop (the group
 * itself may be gone by then; the hold outlives it).  Never NULL: the hold
 * lives in the node's slot of the group, not in the group.
 */
static inline void *grp_leave_hold(struct grp_pub *g)
{
	return g->calls->leave_hold(g);
}

static inline void grp_leave_put(void *hold)
{
	struct grp_leave *l = hold;

	l->put(l);
}

/* A client of @g rebooted: every protocol of the group releases it. */
static inline bool grp_client_rebooted(struct grp_pub *g, const char *name,
				       const struct sockaddr_storage *from, bool trusted,
				       const char *why)
{
	return g->calls->client_rebooted(g, name, from, trusted, why);
}

/* Seconds of grace left, 0 when not in grace (rounded up). */
static inline uint32_t grp_grace_left(const struct grp_pub *g)
{
	uint64_t now = uv_now(g->loop);

	if (!g->in_grace || now >= g->grace_end)
		return 0;
	return (uint32_t)((g->grace_end - now + 999) / 1000);
}

#endif
