/*
 * group.c - a service group's life on this node: opening, online (with its
 * grace), closing; and the node's table of the groups it may serve.
 *
 * Online, once this node's owner says so (src/cluster/owner.h: the lease
 * was acquired, or a managed "start" came over the control socket):
 *   0. bind each VIP on each service port (TCP and UDP), *held*: from now
 *      on a client's connection is accepted, never refused (Linux waits
 *      3 s after a refused connect), but nothing is read from it;
 *   on the thread pool (the group is "opening"; nothing else sees it):
 *   1. open the group's client list (its NSM identity, on its own storage)
 *      and every protocol's per-group state (struct grp_proto_ops.open:
 *      NFS opens the exports, NLM replays the journal into its own
 *      reservation table);
 *   2. increase the group's NSM state number, durably (odd = up);
 *   on the loop:
 *   3. install: every protocol's online(); if any has something to
 *      recover, the group's grace starts, from now, *before* any request
 *      is read, so no new lock can slip in ahead of a reclaim; otherwise
 *      there is no grace;
 *   4. the listeners serve: the requests that waited are read now; a
 *      bind that failed at the start (the address is not here yet, the
 *      old owner still holds it) is retried with back-off, 100 ms
 *      doubling to 5 s, the group shown as "binding" with the reason;
 *   5. once all are bound: notify every listed client, from each VIP,
 *      asynchronously, and announce the VIPs this node placed.
 * In the embedded mode a VIP written ADDR/PREFIX@IFACE is added to IFACE
 * before the first bind (src/cluster/vip.h) and removed at release; an
 * address that was there already is used but never removed.  In the
 * managed mode the cluster manager (IPaddr2) places every VIP.
 * Holding a request rather than answering it with a retryable status is
 * the quicker path for Linux: it waits 5 s after NFS3ERR_JUKEBOX and after
 * NLM4_DENIED_GRACE_PERIOD, while a held request is answered as soon as
 * the group is online.
 * Grace ends at its timeout or as soon as every protocol that had
 * something to recover says it has (grp_recovered); then each protocol's
 * grace_end() runs.  Offline undoes it in the reverse order: notifications
 * stop, sockets close (no new requests), protocols close, the state number
 * goes even (a clean stop), then the owner is told (a lease is released).
 * A planned move or a drain hands over instead of slamming the door: the
 * listening sockets close and no request is read any more, but the
 * clients' connections stay open until another node has taken the group
 * and says it listens on its VIPs (held, from step 0: owner_ops.bound,
 * a lock on <statedir>/bound) or GRP_HANDOVER_MS passed; only then are they closed, and the clients' reconnects land on
 * the new owner instead of on nobody.
 *
 * The group never names a protocol: the daemon registers each one's ops
 * (grp_proto_register), and the protocols reach their per-group state
 * through the group's slots (gslot.h).
 *
 * Other groups on the node are never touched: each has its own listeners,
 * its own protocol state, its own client list and its own grace.
 */
#include "group/group.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config/config.h"
#include "config/reload.h"
#include "log.h"
#include "wq.h"
#include "sfile.h"
#include "nsm/clist.h"
#include "nsm/notify.h"
#include "cluster/ctlsock.h"
#include "cluster/owner.h"
#include "cluster/storage.h"
#include "cluster/vip.h"
#include "rpc/rpc.h"
#include "sjson.h"
#include "thprio.h"
#include "journal/journal.h"
#include "saddr.h"

/* The ports every VIP answers on, without duplicates (ports may coincide). */
static size_t grp_ports(const struct cfg_cluster *c, uint16_t *ports)
{
	uint16_t want[] = { c->nfs_port, c->mount_port, c->nlm_port, c->nsm_port,
			    c->use_rpcbind ? 0 : c->pmap_port };
	size_t n = 0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool dup = false;
		if (want[i] == 0)
			continue;
		for (size_t j = 0; j < n; j++)
			dup |= ports[j] == want[i];
		if (!dup)
			ports[n++] = want[i];
	}
	return n;
}

/* The protocols plugged into every group (grp_proto_register). */
static const struct grp_proto_ops *grp_protos[GRP_PROTO_MAX];

void grp_proto_register(enum grp_proto_id id, const struct grp_proto_ops *ops)
{
	grp_protos[id] = ops;
}

static void grp_put(void *ctx)
{
	struct sg_group *g = ctx;

	if (--g->refs)
		return;
	/* No request of this group is in flight any more (each held its
	 * listener, each listener held the group): the state can go. */
	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (grp_protos[id] && grp_protos[id]->release && g->pub.slot[id])
			grp_protos[id]->release(g->pub.slot[id]);
	nsm_notify_cancel(g->notify_prep); /* prepared, never run */
	free(g->lsn);
	free(g->vip_added);
	free(g);
}

/* Every protocol's close (after @online ones ran online), then the client
 * list: a group that will not serve (any thread while never attached). */
static void grp_protos_close(struct sg_group *g, unsigned online)
{
	for (int id = GRP_PROTO_MAX - 1; id >= 0; id--) {
		if (!grp_protos[id] || !g->pub.slot[id])
			continue;
		if (grp_protos[id]->close)
			grp_protos[id]->close(&g->pub, g->pub.slot[id], online & (1u << id));
		/* Not serving: nothing is in flight, release at once. */
		if (grp_protos[id]->release)
			grp_protos[id]->release(g->pub.slot[id]);
		g->pub.slot[id] = NULL;
	}
	clist_close(g->pub.clients);
	g->pub.clients = NULL;
}

/* ---- grace: the group's, joined by every protocol ---------------------- */

static void grp_grace_end(struct sg_group *g, const char *why)
{
	bool was = g->pub.in_grace;

	if (g->timer_open)
		uv_timer_stop(&g->grace_timer);
	g->pub.in_grace = false;
	g->pub.recovering = 0;
	if (was)
		log_info("group=%s grace ended after %" PRIu64 " ms: new locks are granted (%s)",
			 g->cfg->name, uv_now(g->node->loop) - g->pub.grace_start, why);
	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (grp_protos[id] && grp_protos[id]->grace_end && g->pub.slot[id])
			grp_protos[id]->grace_end(&g->pub, g->pub.slot[id]);
}

static void grp_grace_timer_cb(uv_timer_t *t)
{
	grp_grace_end(t->data, "its time is up");
}

/* Protocols @need (a bit each) have something to recover: grace starts now
 * and lasts until each has recovered, at most the configured time. */
static void grp_grace_start(struct sg_group *g, unsigned need)
{
	uint32_t s = g->cfg->grace_s;
	char names[64] = "";

	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (need & (1u << id))
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 names[0] ? " " : "", grp_protos[id]->name);
	g->pub.in_grace = true;
	g->pub.recovering = need;
	g->pub.grace_start = uv_now(g->node->loop);
	g->pub.grace_end = g->pub.grace_start + (uint64_t)s * 1000u;
	uv_timer_start(&g->grace_timer, grp_grace_timer_cb, (uint64_t)s * 1000u, 0);
	log_info("group=%s grace started: at most %u s, until %s recovered", g->cfg->name, s,
		 names);
}

/* gslot.h: protocol @id of @gp has nothing left to recover. */
static void grp_recovered_cb(struct grp_pub *gp, enum grp_proto_id id, const char *why)
{
	struct sg_group *g = (struct sg_group *)gp;

	gp->recovering &= ~(1u << id);
	if (gp->in_grace && gp->recovering == 0)
		grp_grace_end(g, why);
}

/* gslot.h: a client of @gp rebooted; every protocol releases it. */
static bool grp_client_rebooted_cb(struct grp_pub *gp, const char *name,
				   const struct sockaddr_storage *from, bool trusted,
				   const char *why)
{
	bool any = false;

	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (grp_protos[id] && grp_protos[id]->client_rebooted && gp->slot[id])
			any |= grp_protos[id]->client_rebooted(gp, gp->slot[id], name, from,
							       trusted, why);
	return any;
}

/* gslot.h: a protocol still writes @gp's state after close. */
static struct grp_leave *grp_leave_hold_cb(struct grp_pub *gp)
{
	struct sg_group *g = (struct sg_group *)gp; /* pub is its first member */
	struct sg_slot *sl = g->slot;

	sl->leave_holds++;
	return &sl->leave;
}

static const struct grp_calls grp_calls = {
	.recovered = grp_recovered_cb,
	.client_rebooted = grp_client_rebooted_cb,
	.leave_hold = grp_leave_hold_cb,
};

static void grp_timer_closed(uv_handle_t *h)
{
	grp_put(h->data);
}

static void grp_notified(void *arg, unsigned notified, unsigned failed)
{
	struct sg_group *g = arg;

	log_info("group=%s notification done: %u answered, %u gave up", g->cfg->name, notified,
		 failed);
	if (g->m) {
		g->m->notify_answered += notified;
		g->m->notify_given_up += failed;
	}
}

/* Tell every client on the group's list that the group restarted: SM_NOTIFY
 * from each VIP (src/nsm/notify.h), in the background, for as long as the
 * grace lasts and at least a minute, so a client that comes back later
 * still learns it must reclaim. */
static uint32_t grp_notify_ms(const struct cfg_group *gc)
{
	return (gc->grace_s > 60 ? gc->grace_s : 60) * 1000u;
}

static int grp_notify(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	int rc = 0;

	/* Prepared by the open (grp_open_read) when the group went online
	 * right after it: the list is what the open read.  Else (a group
	 * that waited to bind served meanwhile) built now. */
	if (g->notify_prep) {
		g->notifier = g->notify_prep;
		g->notify_prep = NULL;
		nsm_notify_run(g->notifier, g->node->loop, grp_notified, g);
	} else {
		rc = nsm_notify_start(g->node->loop, gc->name, g->pub.clients, gc->vips, gc->nvips,
				      g->pub.nsm_state, grp_notify_ms(gc), grp_notified, g,
				      &g->notifier);
	}
	/* One notification per client on the list and VIP (notify.h). */
	if (rc == 0 && g->m)
		g->m->notify_sent += (uint64_t)clist_count(g->pub.clients) * gc->nvips;
	return rc;
}

/* A prepared notification that will not run (the group did not go online
 * right after its open): freed, any thread. */
static void grp_notify_unprep(struct sg_group *g)
{
	nsm_notify_cancel(g->notify_prep);
	g->notify_prep = NULL;
}

/* ---- VIPs this node places (embedded mode, ADDR/PREFIX@IFACE) ---------- */

/* Does this node add and announce @gc's VIP @v itself?  Not in the managed
 * mode (IPaddr2 places it), not without an interface. */
static bool grp_vip_ours(const struct cfg_group *gc, size_t v)
{
	return gc->ownership != CFG_OWN_MANAGED && gc->vip_ifs[v].ifname[0] != '\0';
}

/* On the thread pool: add each VIP this node places.  0, or -errno with
 * g->open_why set (those added before stay marked in g->vip_added). */
static int grp_vips_add(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	char a[80];

	for (size_t v = 0; v < gc->nvips; v++) {
		const struct cfg_vip_if *vi = &gc->vip_ifs[v];
		int rc;

		if (!grp_vip_ours(gc, v))
			continue;
		/* Recorded first: killed right after the add, the node still
		 * knows at its next start that the address is its own. */
		rc = vip_rec_note(g->slot->vipdir, vi->ifname, &gc->vips[v], vi->prefix);
		if (rc == 0)
			rc = vip_add(vi->ifname, &gc->vips[v], vi->prefix, &g->vip_added[v]);
		if (!g->vip_added[v])
			vip_rec_forget(g->slot->vipdir, vi->ifname, &gc->vips[v], vi->prefix);
		if (rc < 0) {
			snprintf(g->open_why, sizeof(g->open_why), "cannot add VIP %s/%u to %s: %s",
				 rpc_addr_str(&gc->vips[v], false, a, sizeof(a)),
				 gc->vip_ifs[v].prefix, gc->vip_ifs[v].ifname, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Remove the VIPs this incarnation added, and only those (an address that
 * was there before it is someone else's). */
static void grp_vips_remove(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	char a[80];

	for (size_t v = 0; v < gc->nvips; v++) {
		int rc;

		if (!g->vip_added[v])
			continue;
		g->vip_added[v] = false;
		rc = vip_del(gc->vip_ifs[v].ifname, &gc->vips[v], gc->vip_ifs[v].prefix);
		rpc_addr_str(&gc->vips[v], false, a, sizeof(a));
		if (rc == 0 || rc == -EADDRNOTAVAIL || rc == -ENODEV)
			vip_rec_forget(g->slot->vipdir, gc->vip_ifs[v].ifname, &gc->vips[v],
				       gc->vip_ifs[v].prefix);
		if (rc < 0)
			log_warn("group=%s cannot remove VIP %s/%u from %s: %s", gc->name, a,
				 gc->vip_ifs[v].prefix, gc->vip_ifs[v].ifname, strerror(-rc));
		else
			log_info("group=%s removed VIP %s/%u from %s", gc->name, a,
				 gc->vip_ifs[v].prefix, gc->vip_ifs[v].ifname);
	}
}

/* Announcement rounds per takeover, a second apart: one lost broadcast
 * (a switch port still coming up, a busy receiver) is covered by the next,
 * as arping -U -c 3 and IPaddr2's default do. */
#define GRP_ANNOUNCE_ROUNDS 3
#define GRP_ANNOUNCE_GAP_MS 1000

static void grp_announce_cb(uv_timer_t *t)
{
	struct sg_group *g = t->data;
	const struct cfg_group *gc = g->cfg;
	char a[80];

	for (size_t v = 0; v < gc->nvips; v++) {
		int rc;

		if (!grp_vip_ours(gc, v))
			continue;
		rc = vip_announce(gc->vip_ifs[v].ifname, &gc->vips[v]);
		rpc_addr_str(&gc->vips[v], false, a, sizeof(a));
		if (rc < 0 && g->announce_rounds == 0)
			log_warn("group=%s cannot announce VIP %s on %s: %s", gc->name, a,
				 gc->vip_ifs[v].ifname, strerror(-rc));
		else if (rc == 0 && g->m)
			g->m->vip_announcements++;
		if (rc == 0 && g->announce_rounds == 0)
			log_info("group=%s announced VIP %s on %s (%s)", gc->name, a,
				 gc->vip_ifs[v].ifname, gc->vips[v].ss_family == AF_INET
				 ? "gratuitous ARP" : "unsolicited neighbour advertisement");
	}
	if (++g->announce_rounds < GRP_ANNOUNCE_ROUNDS)
		uv_timer_start(t, grp_announce_cb, GRP_ANNOUNCE_GAP_MS, 0);
}

/* ---- opening: read on the thread pool, installed on the loop ----------- */

/*
 * On the thread pool: everything that reads the group's storage and whose
 * cost grows with what clients did (one file per client on the list, the
 * journal replayed into the group's own reservation table), and the NSM
 * state number's durable write.  Touches no loop; reads only the immutable
 * configuration, and fills the group's slots and client list, which nothing
 * else sees until installed.
 */
static void grp_open_read(struct sg_group *g)
{
	int rc, id = 0;

	/* Only ever from the storage the group was initialised on: an empty
	 * mount point or someone else's filesystem is never served, and
	 * nothing is created in it (the lock state below would). */
	rc = stg_check(g->cfg->exports[0]->path, g->cluster->name, g->cfg->name, g->open_why,
		       sizeof(g->open_why));
	if (rc < 0)
		goto out;
	rc = clist_open(NULL, g->cfg->statedir, g->cfg->client_idle_s, g->cfg->name, &g->pub.clients);
	if (rc < 0) {
		g->pub.clients = NULL;
		snprintf(g->open_why, sizeof(g->open_why), "cannot open its client list: %s",
			 sf_strerror(rc));
		goto out;
	}
	for (id = 0; id < GRP_PROTO_MAX; id++) {
		if (!grp_protos[id])
			continue;
		rc = grp_protos[id]->open(&g->pub, &g->pub.slot[id]);
		if (rc < 0) {
			g->pub.slot[id] = NULL;
			snprintf(g->open_why, sizeof(g->open_why), "cannot open its %s state: %s",
				 grp_protos[id]->name, sf_strerror(rc));
			goto err;
		}
	}
	rc = nsm_state_up(g->cfg->statedir, &g->pub.nsm_state);
	if (rc < 0) {
		/* Name the file: a bad one (a FIFO, a symlink, a huge file)
		 * is something the administrator must remove by hand. */
		snprintf(g->open_why, sizeof(g->open_why),
			 "cannot store its NSM state number (state file %.160s/state): %s", g->cfg->statedir,
			 sf_strerror(rc));
		goto err;
	}
	/* The notifications' list, so that going online costs the loop no
	 * pass over a long client list.  Without it (no memory now) it is
	 * built when the group goes online. */
	if (nsm_notify_prepare(g->cfg->name, g->pub.clients, g->cfg->vips, g->cfg->nvips,
			       g->pub.nsm_state, grp_notify_ms(g->cfg), &g->notify_prep) < 0)
		g->notify_prep = NULL;
	goto out;
err:
	grp_protos_close(g, 0);
out:
	g->open_rc = rc;
}

/*
 * How much nicer than the pool the thread reading a group's state runs.
 * On a node with few cores that read (a million journal records, one file
 * per client) competes for a core with the event loop, which serves every
 * other group meanwhile: at a nice 10 higher its weight is a tenth of the
 * loop's, and the loop, which asks for the shortest time slice
 * (common/thprio.h), preempts it when a request arrives.  Not SCHED_IDLE
 * like a backlogged group's jobs: the group is offline until the read
 * ends, so it must not starve on a node whose cores other work keeps busy.
 */
#define GRP_OPEN_NICE 10

/* The thread of one open: raises its own nice (raising needs no
 * privilege), reads, ends.  A thread of its own rather than a reniced pool
 * thread: nothing has to be given back (nor CAP_SYS_NICE kept for it), and
 * no request ever runs at the open's priority. */
static void *grp_open_thread(void *arg)
{
	struct sg_group *g = arg;
	int rc;

	/* Nice +10, the short slice (a woken thread, such as the journal's
	 * io_uring worker behind another group's LOCK, takes this CPU at
	 * once), off the loop's spare core, yield points (common/thprio.h). */
	rc = thp_reader("sgnfs-open", GRP_OPEN_NICE);
	if (rc < 0)
		log_warn("group=%s cannot lower the priority of its open: %s; it competes with "
			 "the event loop", g->cfg->name, strerror(-rc));
	grp_open_read(g);
	return NULL;
}

/*
 * On the thread pool: the read runs on a thread of its own at a lower
 * priority (grp_open_thread), this pool thread waits for it; if no thread
 * can be made, it reads here at the pool's priority.
 */
static void grp_open_work(struct wq_work *w)
{
	struct sg_group *g = w->data;
	pthread_t th;
	int rc;

	rc = pthread_create(&th, NULL, grp_open_thread, g);
	if (rc == 0) {
		pthread_join(th, NULL);
		return;
	}
	log_warn("group=%s cannot start a thread for its open: %s; reading on the pool",
		 g->cfg->name, strerror(rc));
	grp_open_read(g);
}

static void grp_waiters_done(struct sg_slot *sl, const char *why);
static void grp_handover_done(struct sg_slot *sl, const char *why);

/* "EADDRNOTAVAIL" for -EADDRNOTAVAIL: what an administrator greps for. */
static const char *grp_errname(int rc)
{
	const char *n = strerrorname_np(-rc);

	return n ? n : strerror(-rc);
}

/*
 * Bind what is not bound yet, VIP by VIP and port by port (g->nlsn says
 * how far earlier attempts got, so a retry never binds twice).  0 when
 * every listener is up, else -errno with g->bind_why saying which.
 */
static int grp_bind(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	uint16_t ports[8];
	size_t nports = grp_ports(g->node->cfg, ports);
	char a[80];

	while (g->nlsn < gc->nvips * nports) {
		struct sockaddr_storage ss = gc->vips[g->nlsn / nports];
		int rc;

		sa_set_port(&ss, ports[g->nlsn % nports]);
		rc = rpc_listen(g->node->svc, (struct sockaddr *)&ss,
				RPC_LISTEN_TCP | RPC_LISTEN_UDP | (g->serving ? 0 : RPC_LISTEN_HELD),
				&g->pub, &g->lsn[g->nlsn]);
		if (rc < 0) {
			snprintf(g->bind_why, sizeof(g->bind_why), "cannot bind %s: %s (%s)",
				 rpc_addr_str(&ss, true, a, sizeof(a)), strerror(-rc), grp_errname(rc));
			return rc;
		}
		rpc_listener_set_release(g->lsn[g->nlsn], grp_put);
		rpc_listener_set_stats(g->lsn[g->nlsn], g->m ? &g->m->rpc : NULL);
		g->refs++;
		g->nlsn++;
	}
	if (!g->bound_told) {
		/* Every VIP accepts connections (held or serving): a node
		 * handing the group over may close its clients' connections
		 * now, their reconnects land here. */
		g->bound_told = true;
		g->slot->own->bound(g->slot->own_impl, true);
		log_info("group=%s listens on all its VIPs on node %s", gc->name,
			 g->node->me->name);
		/* Taken back here before the handover ended (the target died
		 * meanwhile): the connections kept can close, this node listens. */
		if (g->slot->leaving)
			grp_handover_done(g->slot, "this node serves the group again and listens "
					  "on its VIPs");
	}
	return 0;
}

/* @g is about to stop listening: no node handing over may count on it. */
static void grp_unbound(struct sg_group *g)
{
	if (!g->bound_told)
		return;
	g->bound_told = false;
	g->slot->own->bound(g->slot->own_impl, false);
}

/* Every VIP is bound: the group serves, its clients are told, and the
 * VIPs this node placed are announced (off this path, on a timer). */
static void grp_online(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	struct sg_node *node = g->node;
	int rc;

	uv_update_time(node->loop);
	if (g->bind_tries && g->pub.in_grace) {
		/* Grace ran while nobody could reach the group: the clients
		 * get the whole of it from now to reclaim. */
		g->pub.grace_start = uv_now(node->loop);
		g->pub.grace_end = g->pub.grace_start + (uint64_t)gc->grace_s * 1000u;
		uv_timer_start(&g->grace_timer, grp_grace_timer_cb, (uint64_t)gc->grace_s * 1000u,
			       0);
		log_info("group=%s grace restarted now that its VIPs are bound: %u s", gc->name,
			 gc->grace_s);
	}
	g->state = GRP_ONLINE;
	g->online = true;
	g->online_at = uv_now(node->loop);
	g->bind_why[0] = '\0';
	log_info("group=%s online on node %s (%zu VIPs, %zu exports, state %d)", gc->name,
		 node->me->name, gc->nvips, gc->nexports, (int)g->pub.nsm_state);
	if (g->m) {
		g->m->takeovers++;
		mt_observe(&g->m->takeover, uv_hrtime() - g->start_ns);
	}
	rc = grp_notify(g);
	if (rc < 0)
		log_err("group=%s cannot start notifying its clients: %s", gc->name,
			strerror(-rc));
	for (size_t v = 0; v < gc->nvips; v++) {
		if (grp_vip_ours(gc, v)) {
			uv_timer_start(&g->announce_timer, grp_announce_cb, 0, 0);
			break;
		}
	}
}

static void grp_bind_timer_cb(uv_timer_t *t);

/*
 * A managed start gives up after this many failed binds (100 ms doubling:
 * about 6 s in all): the cluster manager waits for its answer, placed the
 * address itself just before (IPaddr2), and decides where to go next.  A
 * lease-owned group keeps trying for as long as this node holds it.
 */
#define GRP_BIND_TRIES_MANAGED 7

/* The bind failed (g->bind_why): try again later, 100 ms doubling to 5 s;
 * a managed group's start fails once it has tried enough. */
static void grp_bind_later(struct sg_group *g)
{
	uint32_t d = g->bind_delay_ms ? g->bind_delay_ms : 100;
	size_t l = strlen(g->bind_why);
	struct sg_slot *sl = g->slot;

	if (g->cfg->ownership == CFG_OWN_MANAGED && g->bind_tries + 1 >= GRP_BIND_TRIES_MANAGED) {
		log_err("group=%s cannot come online on node %s: %s (tried %u times)", g->cfg->name,
			g->node->me->name, g->bind_why, g->bind_tries + 1);
		snprintf(sl->why, sizeof(sl->why), "%s (tried %u times)", g->bind_why,
			 g->bind_tries + 1);
		if (g->m)
			g->m->takeover_failures++;
		grp_stop(g);
		sl->g = NULL;
		grp_waiters_done(sl, NULL);
		return;
	}

	g->bind_tries++;
	snprintf(g->bind_why + l, sizeof(g->bind_why) - l, ", retry %u in %u ms", g->bind_tries,
		 d);
	log_warn("group=%s not online yet on node %s: %s", g->cfg->name, g->node->me->name,
		 g->bind_why);
	uv_timer_start(&g->bind_timer, grp_bind_timer_cb, d, 0);
	g->bind_delay_ms = d >= 2500 ? 5000 : d * 2;
}

static void grp_bind_timer_cb(uv_timer_t *t)
{
	struct sg_group *g = t->data;

	if (g->state != GRP_BINDING)
		return;
	if (g->m)
		g->m->bind_retries++;
	if (grp_bind(g) < 0) {
		grp_bind_later(g);
		return;
	}
	grp_online(g);
	grp_waiters_done(g->slot, NULL);
}

/*
 * On the loop, once the state is loaded: attach it to the loop, start
 * grace from now, bind, notify.  0 (online, or binding: retried until it
 * is), or -errno with g->open_why set and nothing left bound or added.
 */
static int grp_install(struct sg_group *g)
{
	const struct cfg_group *gc = g->cfg;
	struct sg_node *node = g->node;
	unsigned online = 0, need = 0;
	char a[80];
	int rc;

	for (size_t v = 0; v < gc->nvips; v++) {
		if (!g->vip_added[v])
			continue;
		if (g->m)
			g->m->vip_adds++;
		log_info("group=%s added VIP %s/%u to %s", gc->name,
			 rpc_addr_str(&gc->vips[v], false, a, sizeof(a)), gc->vip_ifs[v].prefix,
			 gc->vip_ifs[v].ifname);
	}
	clist_attach(g->pub.clients, node->loop);
	for (int id = 0; id < GRP_PROTO_MAX; id++) {
		if (!grp_protos[id])
			continue;
		rc = grp_protos[id]->online(&g->pub, g->pub.slot[id]);
		if (rc < 0) {
			snprintf(g->open_why, sizeof(g->open_why), "cannot start its %s service: %s",
				 grp_protos[id]->name, strerror(-rc));
			grp_protos_close(g, online);
			grp_vips_remove(g);
			return rc;
		}
		online |= 1u << id;
		if (rc > 0)
			need |= 1u << id;
	}
	uv_timer_init(node->loop, &g->grace_timer);
	g->grace_timer.data = g;
	g->timer_open = true;
	g->refs++; /* the timer's, until its close callback */
	uv_timer_init(node->loop, &g->bind_timer);
	g->bind_timer.data = g;
	g->bind_timer_open = true;
	g->refs++;
	uv_timer_init(node->loop, &g->announce_timer);
	g->announce_timer.data = g;
	g->announce_timer_open = true;
	g->refs++;
	/* The loop's cached clock dates from before this turn's callbacks; a
	 * grace armed from it would lose whatever time they took.  Grace
	 * starts now, before any socket is open, so no new lock can get
	 * ahead of a reclaim. */
	uv_update_time(node->loop);
	if (need)
		grp_grace_start(g, need);
	else
		grp_grace_end(g, "nothing to recover");
	/* Grace (if any) is armed: the requests that waited on the held
	 * listeners may be read now, and any bound later serves at once. */
	for (size_t i = 0; i < g->nlsn; i++)
		rpc_listener_serve(g->lsn[i]);
	g->serving = true;
	if (grp_bind(g) == 0) {
		grp_online(g);
		return 0;
	}
	/* Served once the address is here (or the old owner let go of it);
	 * the owner keeps the group meanwhile, so no other node races it. */
	g->state = GRP_BINDING;
	grp_notify_unprep(g);
	log_err("group=%s cannot bind on node %s: %s", gc->name, node->me->name, g->bind_why);
	grp_bind_later(g);
	return 0;
}

/* Close every listener of @g (held or serving) and its connections. */
static void grp_unbind(struct sg_group *g)
{
	grp_unbound(g);
	for (size_t i = 0; i < g->nlsn; i++) {
		rpc_listener_set_stats(g->lsn[i], NULL);
		rpc_listener_close(g->lsn[i]);
	}
	g->nlsn = 0;
}

static void grp_slot_opened(struct sg_slot *sl, int rc);

static void grp_open_done(struct wq_work *w, int status)
{
	struct sg_group *g = w->data;
	struct sg_slot *sl = g->slot;
	int rc = status < 0 ? status : g->open_rc;

	if (status < 0)
		snprintf(g->open_why, sizeof(g->open_why), "the open was cancelled");
	if (rc == 0 && (sl->stop_pending || g->node->stopping)) {
		/* Stopped while its state was read: it never served, so only
		 * the state number has to go back down. */
	
		log_info("group=%s stopped on node %s before it came online", g->cfg->name,
			 g->node->me->name);
		/* Nothing was read from the held listeners: the connections
		 * that waited are closed, their clients try again. */
		grp_unbind(g);
		grp_protos_close(g, 0);
		grp_vips_remove(g);
		if (nsm_state_down(g->cfg->statedir) < 0)
			log_warn("group=%s cannot store its NSM state number", g->cfg->name);
		sl->g = NULL;
		grp_put(g);
		grp_slot_opened(sl, 0);
		return;
	}
	if (rc < 0)
		grp_vips_remove(g); /* those added before the open failed */
	if (rc == 0)
		rc = grp_install(g);
	if (g->m && rc < 0)
		g->m->takeover_failures++;
	if (rc < 0) {
		log_err("group=%s cannot come online on node %s: %s", g->cfg->name,
			g->node->me->name, g->open_why);
		snprintf(sl->why, sizeof(sl->why), "%s", g->open_why);
		grp_unbind(g);
		sl->g = NULL;
		grp_put(g);
	}
	grp_slot_opened(sl, rc);
}

/*
 * Start bringing @sl's group online on this node: the exports open here,
 * the rest on the thread pool (grp_open_work), then grp_open_done installs
 * it and calls grp_slot_opened.  0 (sl->g is set, opening), or -errno with
 * sl->why set.
 */
static int grp_start(struct sg_slot *sl)
{
	struct sg_node *node = sl->node;
	const struct cfg_group *gc = sl->cfg;
	struct sg_group *g = calloc(1, sizeof(*g));
	uint16_t ports[8];
	size_t nports = grp_ports(node->cfg, ports);
	int rc;

	if (!g) {
		snprintf(sl->why, sizeof(sl->why), "out of memory");
		return -ENOMEM;
	}
	g->pub.name = gc->name;
	g->pub.cfg = gc;
	g->pub.cluster = node->cfg;
	g->pub.loop = node->loop;
	g->pub.calls = &grp_calls;
	g->refs = 1;
	g->node = node;
	g->slot = sl;
	g->m = sl->m;
	g->start_ns = uv_hrtime();
	g->cluster = node->cfg;
	g->cfg = gc;
	g->state = GRP_OPENING;
	g->lsn = calloc(gc->nvips * nports, sizeof(*g->lsn));
	g->vip_added = calloc(gc->nvips, sizeof(*g->vip_added));
	if (!g->lsn || !g->vip_added) {
		rc = -ENOMEM;
		snprintf(sl->why, sizeof(sl->why), "out of memory");
		goto err_free;
	}
	/* Listen first, so that a client reconnecting while the state is
	 * read waits instead of being refused. */
	/* The addresses go on first (one rtnetlink exchange each): a
	 * takeover that cannot place its VIPs is not one. */
	rc = grp_vips_add(g);
	if (rc < 0) {
		snprintf(sl->why, sizeof(sl->why), "%s", g->open_why);
		grp_vips_remove(g);
		goto err_put;
	}
	/* A bind that fails here is retried once the state is installed
	 * (grp_install): the group is then "binding", not failed. */
	(void)grp_bind(g);
	g->open_work.data = g;
	rc = wq_queue(node->loop, &g->open_work, grp_open_work, grp_open_done);
	if (rc < 0) {
		snprintf(sl->why, sizeof(sl->why), "cannot queue the open: %s", uv_strerror(rc));
		goto err_unbind;
	}
	log_info("group=%s opening on node %s: loading its state", gc->name, node->me->name);
	sl->g = g;
	node->opening++;
	return 0;

err_unbind:
	grp_unbind(g);
	grp_vips_remove(g);
err_put:
	/* Listeners closed on the way hold the group until their sockets
	 * have closed: the last of them frees it. */
	if (sl->m)
		sl->m->takeover_failures++;
	grp_put(g);
	return rc;
err_free:
	if (sl->m)
		sl->m->takeover_failures++;
	free(g->lsn);
	free(g->vip_added);
	free(g);
	return rc;
}

/*
 * Take @g offline.  With @handover the listening sockets close but the
 * connections stay open, reading nothing (rpc_listener_quiesce): the
 * caller releases the owner and calls grp_handover_start.
 */
static void grp_stop_ex(struct sg_group *g, bool handover)
{

	if (!g)
		return;
	g->state = GRP_CLOSING;
	g->online = false;
	log_info("group=%s going offline on node %s", g->cfg->name, g->node->me->name);
	grp_unbound(g);
	nsm_notify_cancel(g->notifier);
	g->notifier = NULL;
	/* Requests still in flight finish after this; the listeners stop
	 * counting into the slot's metrics now, so nothing outlives them
	 * with a pointer into it, and the connections all close. */
	for (size_t i = 0; i < g->nlsn; i++) {
		rpc_listener_set_stats(g->lsn[i], NULL);
		if (handover)
			rpc_listener_quiesce(g->lsn[i]);
		else
			rpc_listener_close(g->lsn[i]);
	}
	if (g->m) {
		/* The journals of past incarnations carry on in the metrics. */
		struct jr_stats js = { 0 };

		g->m->rpc.conns_open = 0;
		for (int id = 0; id < GRP_PROTO_MAX; id++)
			if (grp_protos[id] && grp_protos[id]->journal_stats && g->pub.slot[id])
				grp_protos[id]->journal_stats(g->pub.slot[id], &js);
		g->m->journal_batches += js.batches;
		g->m->journal_failures += js.failures;
		g->m->journal_gathered += js.gathered;
		mt_hist_add(&g->m->journal_fsync, &js.fsync);
	}
	g->pub.in_grace = false;
	if (g->timer_open) {
		g->timer_open = false;
		uv_close((uv_handle_t *)&g->grace_timer, grp_timer_closed);
	}
	if (g->bind_timer_open) {
		g->bind_timer_open = false;
		uv_close((uv_handle_t *)&g->bind_timer, grp_timer_closed);
	}
	if (g->announce_timer_open) {
		g->announce_timer_open = false;
		uv_close((uv_handle_t *)&g->announce_timer, grp_timer_closed);
	}
	/* Protocol state on the loop thread is unreachable now (no new
	 * request): each protocol drops it at once (NLM also ends requests
	 * parked on the client list, which hold the listeners).  State that
	 * requests on the thread pool use goes with the last of them
	 * (grp_put, the protocols' release). */
	for (int id = GRP_PROTO_MAX - 1; id >= 0; id--) {
		if (!grp_protos[id] || !g->pub.slot[id])
			continue;
		if (grp_protos[id]->close)
			grp_protos[id]->close(&g->pub, g->pub.slot[id], true);
		if (!grp_protos[id]->release)
			g->pub.slot[id] = NULL;
	}
	/* Entry writes in flight finish before the group leaves: one landing
	 * later could replace the next owner's newer entry of that client. */
	if (!clist_close_then(g->pub.clients, grp_leave_put, grp_leave_hold_cb(&g->pub)))
		g->slot->leave_holds--; /* nothing in flight: no hold after all */
	g->pub.clients = NULL;
	/* The sockets are closed: the address can go (the next owner adds
	 * it on its own interface). */
	grp_vips_remove(g);
	if (nsm_state_down(g->cfg->statedir) < 0)
		log_warn("group=%s cannot store its NSM state number", g->cfg->name);
	log_info("group=%s offline on node %s", g->cfg->name, g->node->me->name);
	grp_put(g);
}

void grp_stop(struct sg_group *g)
{
	grp_stop_ex(g, false);
}

/* ---- handing over: the clients' connections outlive the group here ---- */

static void grp_handover_closed(uv_handle_t *h)
{
	grp_put(h->data);
}

/* @sl's leaving group has a new owner (or waited long enough): close the
 * connections it kept, so the clients reconnect, to a node that listens. */
static void grp_handover_done(struct sg_slot *sl, const char *why)
{
	struct sg_group *g = sl->leaving;

	sl->leaving = NULL;
	log_info("group=%s handover from node %s done after %" PRIu64 " ms (%s): clients' "
		 "connections closed", g->cfg->name, g->node->me->name,
		 uv_now(g->node->loop) - g->handover_start, why);
	uv_timer_stop(&g->handover_timer);
	uv_close((uv_handle_t *)&g->handover_timer, grp_handover_closed);
	for (size_t i = 0; i < g->nlsn; i++)
		rpc_listener_close(g->lsn[i]);
	g->nlsn = 0;
}

static void grp_handover_poll_cb(uv_timer_t *t)
{
	struct sg_group *g = t->data;
	struct sg_slot *sl = g->slot;

	/* Not as soon as the lease is taken: the new owner binds just after
	 * it acquires, and a reconnect landing in between would be refused. */
	if (sl->own->listening(sl->own_impl))
		grp_handover_done(sl, "another node has the group and listens on its VIPs");
	else if (uv_now(g->node->loop) - g->handover_start < GRP_HANDOVER_MS)
		return;
	else if (sl->own->taken(sl->own_impl))
		grp_handover_done(sl, "another node took the group but does not listen on its "
			       "VIPs in time; its clients may be refused until it does");
	else
		grp_handover_done(sl, "no node took the group in time");
}

/*
 * @sl's group @g was just taken offline with grp_stop_ex(g, true) and its
 * owner released: keep its connections until another node has the group
 * and says it listens on every VIP (owner_ops.listening, told by its
 * grp_bind), so a client whose connection closes after that reconnects
 * to a listener, never into a refusal.  Bounded by GRP_HANDOVER_MS: a
 * target that dies or hangs meanwhile costs its clients that long, no
 * more.
 */
static void grp_handover_start(struct sg_slot *sl, struct sg_group *g)
{
	if (sl->leaving)
		grp_handover_done(sl, "the group left again");
	g->handover_start = uv_now(g->node->loop);
	uv_timer_init(g->node->loop, &g->handover_timer);
	g->handover_timer.data = g;
	g->refs++; /* the timer's, until its close callback */
	sl->leaving = g;
	uv_timer_start(&g->handover_timer, grp_handover_poll_cb, 0, GRP_HANDOVER_POLL_MS);
}

/* "10.0.0.0/16" or "fd00::/8" for an export's `clients` entry. */
static struct json_object *grp_net_json(const struct cfg_net *n)
{
	char a[INET6_ADDRSTRLEN + 8];
	size_t l;

	if (!inet_ntop(n->family, n->addr, a, sizeof(a)))
		return NULL;
	l = strlen(a);
	snprintf(a + l, sizeof(a) - l, "/%u", n->prefix);
	return json_object_new_string(a);
}

/*
 * The status of this node's groups in two steps (docs/status.md, "Where
 * the status is built"): grp_node_snap copies on the loop what the
 * "groups" and "standby" parts show into the plain structures below, each
 * protocol its own part (grp_proto_ops.status_snap); grp_node_render
 * builds the json-c objects from that copy alone on a pool thread, while
 * the loop serves every group's requests.  Nothing in a snapshot points
 * into a group, a slot or a configuration tree: a group may go away (and
 * the node stop) while its copy is being rendered.  Every pointer below is
 * owned by its snapshot unless it says "literal".
 */
struct grp_snap_export {
	char *path;
	uint32_t fsid;
	bool rw;
	const char *squash;               /* literal */
	struct cfg_net *nets;             /* its `clients` */
	size_t nnets;
};

struct grp_snap_group {
	char *name;
	const char *state, *ownership;    /* literals */
	char *reason;                     /* while binding, else NULL */
	uint32_t grace;
	int32_t nsm_state;
	uint64_t online_for_ms, nclients, nlocks;
	struct sockaddr_storage *vips;
	size_t nvips;
	struct grp_snap_export *exports;
	size_t nexports;
	void *proto[GRP_PROTO_MAX];       /* each freed by its grp_protos[]->status_free */
	bool has_rpc;                     /* the slot has its counters (g->m) */
	uint64_t udp_dropped, pool_done, pool_lowered, pool_udp_sent;
	uint64_t drc_hits, drc_misses, drc_inprogress_drops;
	uint32_t queued, jobs;
};

struct grp_snap_standby {
	char *name, *reason;
	const char *ownership;            /* literal: owner_ops.name */
};

struct grp_node_snap {
	struct grp_snap_group *groups;    /* served: ngroups of them */
	size_t ngroups;
	struct grp_snap_standby *standby; /* nstandby */
	size_t nstandby;
};

/* What the configuration says of group @gc: VIPs and exports, copied. */
static int grp_snap_cfg(const struct cfg_group *gc, struct grp_snap_group *s)
{
	s->vips = calloc(gc->nvips ? gc->nvips : 1, sizeof(*s->vips));
	s->exports = calloc(gc->nexports ? gc->nexports : 1, sizeof(*s->exports));
	if (!s->vips || !s->exports)
		return -ENOMEM;
	memcpy(s->vips, gc->vips, gc->nvips * sizeof(*s->vips));
	s->nvips = gc->nvips;
	for (size_t i = 0; i < gc->nexports; i++) {
		const struct cfg_export *e = gc->exports[i];
		struct grp_snap_export *x = &s->exports[s->nexports++];

		x->fsid = e->fsid;
		x->rw = e->rw;
		x->squash = e->all_squash ? "all" : e->root_squash ? "root" : "none";
		x->path = strdup(e->path);
		x->nets = calloc(e->nclients ? e->nclients : 1, sizeof(*x->nets));
		if (!x->path || !x->nets)
			return -ENOMEM;   /* the caller frees what was copied */
		memcpy(x->nets, e->clients, e->nclients * sizeof(*x->nets));
		x->nnets = e->nclients;
	}
	return 0;
}

static void grp_snap_group_free(struct grp_snap_group *s)
{
	free(s->name);
	free(s->reason);
	free(s->vips);
	for (size_t i = 0; i < s->nexports; i++) {
		free(s->exports[i].path);
		free(s->exports[i].nets);
	}
	free(s->exports);
	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (s->proto[id])
			grp_protos[id]->status_free(s->proto[id]);
}

void grp_node_snap_free(struct grp_node_snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ngroups; i++)
		grp_snap_group_free(&s->groups[i]);
	for (size_t i = 0; i < s->nstandby; i++) {
		free(s->standby[i].name);
		free(s->standby[i].reason);
	}
	free(s->groups);
	free(s->standby);
	free(s);
}

/* Copy served group @g into @s (zeroed; on failure the caller frees what
 * was copied). */
static int grp_snap_group(const struct sg_group *g, struct grp_snap_group *s, size_t list_max)
{
	/* While opening, the slots belong to the thread pool: not a field of
	 * them may be read here. */
	bool ready = g->state == GRP_ONLINE || g->state == GRP_BINDING;
	int rc;

	s->grace = ready ? grp_grace_left(&g->pub) : 0;
	s->state = g->state == GRP_OPENING ? "opening"
		 : g->state == GRP_BINDING ? "binding"
		 : !g->online ? "offline" : s->grace ? "grace" : "online";
	for (int id = 0; ready && id < GRP_PROTO_MAX; id++)
		if (grp_protos[id] && grp_protos[id]->nlocks && g->pub.slot[id])
			s->nlocks += grp_protos[id]->nlocks(g->pub.slot[id]);
	s->name = strdup(g->cfg->name);
	if (!s->name)
		return -ENOMEM;
	if (g->state == GRP_BINDING && !(s->reason = strdup(g->bind_why)))
		return -ENOMEM;
	s->ownership = cfg_ownership_name(g->cfg->ownership);
	s->nsm_state = g->pub.nsm_state;
	s->online_for_ms = g->state == GRP_ONLINE ? uv_now(g->node->loop) - g->online_at : 0;
	rc = grp_snap_cfg(g->cfg, s);
	if (rc < 0)
		return rc;
	s->nclients = ready && g->pub.clients ? clist_count(g->pub.clients) : 0;
	for (int id = 0; ready && id < GRP_PROTO_MAX; id++)
		if (grp_protos[id] && grp_protos[id]->status_snap && g->pub.slot[id]) {
			rc = grp_protos[id]->status_snap(&g->pub, g->pub.slot[id], list_max,
							 &s->proto[id]);
			if (rc < 0)
				return rc;
		}
	if (g->m) {
		/* Counters since the node started (the slot's, every
		 * incarnation of the group here); queued and jobs: now, its
		 * requests waiting for the thread pool and on it. */
		s->has_rpc = true;
		s->udp_dropped = g->m->rpc.udp_dropped;
		s->pool_done = g->m->rpc.pool_done;
		s->pool_lowered = g->m->rpc.pool_lowered;
		s->pool_udp_sent = g->m->rpc.pool_udp_sent;
		s->drc_hits = g->m->rpc.drc_hits;
		s->drc_misses = g->m->rpc.drc_misses;
		s->drc_inprogress_drops = g->m->rpc.drc_inprogress_drops;
		rpc_svc_ctx_queue(g->node->svc, &g->pub, &s->queued, &s->jobs);
	}
	return 0;
}

/* The group object of the status schema (docs/status.md) from @s. */
static void grp_render_group(const struct grp_snap_group *s, struct json_object *o)
{
	struct json_object *vips = json_object_new_array();
	struct json_object *exps = json_object_new_array();
	char a[80];

	sj_add(o, "name", json_object_new_string(s->name));
	sj_add(o, "state", json_object_new_string(s->state));
	if (s->reason)
		sj_add(o, "reason", json_object_new_string(s->reason));
	sj_add(o, "ownership", json_object_new_string(s->ownership));
	sj_add(o, "grace_left", json_object_new_int64(s->grace));
	sj_add(o, "nsm_state", json_object_new_int64(s->nsm_state));
	sj_add(o, "online_for_ms", json_object_new_uint64(s->online_for_ms));
	for (size_t v = 0; v < s->nvips; v++)
		sj_push(vips, json_object_new_string(rpc_addr_str(&s->vips[v], false, a,
								   sizeof(a))));
	sj_add(o, "vips", vips);
	for (size_t i = 0; i < s->nexports; i++) {
		const struct grp_snap_export *e = &s->exports[i];
		struct json_object *eo = json_object_new_object();
		struct json_object *cl = json_object_new_array();

		sj_add(eo, "path", json_object_new_string(e->path));
		sj_add(eo, "fsid", json_object_new_int64(e->fsid));
		sj_add(eo, "access", json_object_new_string(e->rw ? "rw" : "ro"));
		for (size_t k = 0; k < e->nnets; k++)
			sj_push(cl, grp_net_json(&e->nets[k]));
		sj_add(eo, "clients", cl);
		sj_add(eo, "squash", json_object_new_string(e->squash));
		sj_push(exps, eo);
	}
	sj_add(o, "exports", exps);
	sj_add(o, "nclients", json_object_new_uint64(s->nclients));
	sj_add(o, "nlocks", json_object_new_uint64(s->nlocks));
	for (int id = 0; id < GRP_PROTO_MAX; id++)
		if (s->proto[id])
			grp_protos[id]->status_render(s->proto[id], o);
	if (!json_object_object_get_ex(o, "clients", NULL))
		sj_add(o, "clients", json_object_new_array());
	if (!json_object_object_get_ex(o, "locks", NULL))
		sj_add(o, "locks", json_object_new_array());
	if (s->has_rpc) {
		struct json_object *r = json_object_new_object(), *d = json_object_new_object();

		sj_add(r, "udp_dropped", json_object_new_uint64(s->udp_dropped));
		sj_add(r, "queued", json_object_new_uint64(s->queued));
		sj_add(r, "pool_jobs", json_object_new_uint64(s->jobs));
		sj_add(r, "pool_done", json_object_new_uint64(s->pool_done));
		sj_add(r, "pool_lowered", json_object_new_uint64(s->pool_lowered));
		sj_add(r, "pool_udp_sent", json_object_new_uint64(s->pool_udp_sent));
		sj_add(d, "hits", json_object_new_uint64(s->drc_hits));
		sj_add(d, "misses", json_object_new_uint64(s->drc_misses));
		sj_add(d, "inprogress_drops", json_object_new_uint64(s->drc_inprogress_drops));
		sj_add(r, "drc", d);
		sj_add(o, "rpc", r);
	}
}

/* ---- this node's groups ------------------------------------------------ */

/* A control request waiting for a group to finish opening or closing. */
struct grp_waiter {
	struct grp_waiter *next;
	struct ctl_call *call;        /* answered exactly once */
	struct json_object *out;      /* the call's reply object, not owned */
	bool start;                   /* start (else stop) */
};

static void grp_reply(struct json_object *out, const char *result, const char *group,
		      const char *node)
{
	sj_add(out, "result", json_object_new_string(result));
	sj_add(out, "group", json_object_new_string(group));
	sj_add(out, "node", json_object_new_string(node));
}

/* Answer every waiter of @sl from where the group stands now. */
static void grp_waiters_done(struct sg_slot *sl, const char *why)
{
	bool online = sl->g && sl->g->state == GRP_ONLINE;

	/* "start" returns once the VIPs are bound (grp_bind_timer_cb),
	 * "stop" once the state is written (grp_slot_leave_put). */
	if (!why && sl->g && sl->g->state == GRP_BINDING)
		return;
	if (!why && !sl->g && sl->leave_holds)
		return;

	while (sl->waiters) {
		struct grp_waiter *w = sl->waiters;

		sl->waiters = w->next;
		if (w->start && online)
			grp_reply(w->out, "online", sl->cfg->name, sl->node->me->name);
		else if (!w->start && !sl->g)
			grp_reply(w->out, "offline", sl->cfg->name, sl->node->me->name);
		else
			sj_add(w->out, "error", json_object_new_string(
				why ? why : sl->why[0] ? sl->why
				: w->start ? "stopped before it came online"
				: "started again before it went offline"));
		ctl_call_done(w->call);
		free(w);
	}
}

/* Answer the current control request once @sl's group has finished
 * opening (or closing).  False if it cannot wait (no control request, or
 * no memory): the caller answers now. */
static bool grp_wait(struct sg_slot *sl, bool start, struct json_object *out)
{
	struct grp_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return false;
	w->call = ctl_defer();
	if (!w->call) {
		free(w);
		return false;
	}
	w->out = out;
	w->start = start;
	w->next = sl->waiters;
	sl->waiters = w;
	return true;
}

static void grp_node_finish_stop(struct sg_node *node);
static void grp_slot_acquired(void *arg);

static bool grp_node_leaving(const struct sg_node *node)
{
	for (size_t i = 0; i < node->nslots; i++)
		if (node->slots[i].leave_holds)
			return true;
	return false;
}

/* The group of @sl has gone offline here: tell its owner (with @target,
 * only that node should take it next; @contend as owner_ops.release),
 * at once or, while a protocol still writes its state, once that is done. */
static void grp_slot_release(struct sg_slot *sl, const char *target, bool contend)
{
	_Static_assert(sizeof(sl->release_target) == CFG_NAME_MAX + 1, "a node's name");
	if (!sl->leave_holds) {
		sl->own->release(sl->own_impl, target, contend);
		return;
	}
	sl->release_pending = true;
	sl->release_contend = contend;
	snprintf(sl->release_target, sizeof(sl->release_target), "%s", target ? target : "");
	log_info("group=%s offline on node %s; released once its last state writes (lock "
		 "journal, client list) are durable", sl->cfg->name, sl->node->me->name);
}

/* struct grp_leave: a protocol has written what the group left with. */
static void grp_slot_leave_put(struct grp_leave *hold)
{
	struct sg_slot *sl = (struct sg_slot *)((char *)hold - offsetof(struct sg_slot, leave));
	struct sg_node *node = sl->node;

	if (--sl->leave_holds)
		return;
	if (sl->release_pending) {
		sl->release_pending = false;
		log_info("group=%s state written: released by node %s", sl->cfg->name,
			 node->me->name);
		sl->own->release(sl->own_impl, sl->release_target[0] ? sl->release_target : NULL,
				 sl->release_contend);
	}
	if (node->stopping) {
		/* (not from inside grp_node_stop's walk: it finishes itself) */
		if (!node->stop_walking && node->opening == 0 && !grp_node_leaving(node))
			grp_node_finish_stop(node);
		return;
	}
	grp_waiters_done(sl, NULL); /* a managed stop is answered now */
	if (sl->acquired_pending) {
		sl->acquired_pending = false;
		grp_slot_acquired(sl);
	}
}

/* @sl's group has finished opening: it is online (sl->g), or it failed or
 * was stopped meanwhile (sl->g NULL; rc < 0 for a failure). */
static void grp_slot_opened(struct sg_slot *sl, int rc)
{
	struct sg_node *node = sl->node;

	node->opening--;
	if (!sl->g && !sl->own->external) {
		/* Not served here after all: let another node take it; after a
		 * failure, do not grab it straight back. */
		grp_slot_release(sl, NULL, rc == 0 && sl->stop_contend && !node->draining);
		if (rc < 0)
			log_err("group=%s released by node %s after the failed start",
				sl->cfg->name, node->me->name);
	}
	if (sl->g)
		sl->why[0] = '\0';
	sl->stop_pending = false;
	grp_waiters_done(sl, NULL);
	if (node->stopping && node->opening == 0 && !grp_node_leaving(node))
		grp_node_finish_stop(node);
}

static void grp_slot_acquired(void *arg)
{
	struct sg_slot *sl = arg;

	if (sl->g || sl->node->stopping)
		return;
	if (sl->leave_holds) {
		/* Its last incarnation here still writes: after that. */
		sl->acquired_pending = true;
		return;
	}
	if (grp_start(sl) < 0) {
		sl->own->release(sl->own_impl, NULL, false);
		log_err("group=%s cannot come online on node %s: %s; released", sl->cfg->name,
			sl->node->me->name, sl->why);
	}
}

/* owner_args.ready: the group's storage is here and is the group's. */
static int grp_slot_ready(void *arg, char *why, size_t whylen)
{
	struct sg_slot *sl = arg;

	return stg_check(sl->cfg->exports[0]->path, sl->node->cfg->name, sl->cfg->name, why,
			 whylen);
}

static void grp_swept(void *arg, const char *ifname, const char *addr, unsigned prefix, int rc)
{
	struct sg_node *node = arg;

	if (rc == 0)
		log_info("node %s removed VIP %s/%u from %s: left there when it last stopped "
			 "without releasing it", node->me->name, addr, prefix, ifname);
	else if (rc != -EADDRNOTAVAIL && rc != -ENODEV)
		log_warn("node %s cannot remove VIP %s/%u from %s, left there when it last "
			 "stopped: %s", node->me->name, addr, prefix, ifname, strerror(-rc));
}

int grp_node_start(struct sg_node *node)
{
	const struct cfg_cluster *c = node->cfg;
	char vipdir[4200];
	int rc;

	/* A VIP this node added and never removed (it was killed, or the
	 * machine lost power without a reboot) would answer ARP for a group
	 * another node now serves: it goes before any group can start. */
	snprintf(vipdir, sizeof(vipdir), "%s/%s.vips", c->run_dir, node->me->name);
	rc = vip_rec_sweep(vipdir, grp_swept, node);
	if (rc < 0)
		log_warn("node %s cannot read %s, its record of VIPs left on interfaces: %s",
			 node->me->name, vipdir, strerror(-rc));

	node->slots = calloc(c->ngroups ? c->ngroups : 1, sizeof(*node->slots));
	if (!node->slots)
		return -ENOMEM;
	for (size_t i = 0; i < c->ngroups; i++) {
		const struct cfg_group *gc = &c->groups[i];
		bool mine = false;

		for (size_t n = 0; n < gc->nnodes; n++)
			mine |= strcmp(gc->nodes[n], node->me->name) == 0;
		if (!mine)
			continue;
		struct sg_slot *sl = &node->slots[node->nslots];
		sl->node = node;
		sl->leave.put = grp_slot_leave_put;
		sl->cfg = gc;
		sl->m = calloc(1, sizeof(*sl->m));
		if (!sl->m)
			log_warn("group=%s: no memory for its metrics; they stay empty", gc->name);
		sl->statedir = gc->statedir;
		snprintf(sl->vipdir, sizeof(sl->vipdir), "%s", vipdir);
		sl->own = gc->ownership == CFG_OWN_MANAGED ? &owner_managed_ops : &owner_lease_ops;
		struct owner_args oa = {
			.loop = node->loop, .statedir = sl->statedir, .group = gc->name,
			.me = node->me->name, .prefs = (const char *const *)gc->nodes,
			.nprefs = gc->nnodes, .ready = grp_slot_ready,
			.on_acquired = grp_slot_acquired, .arg = sl,
		};
		rc = sl->own->open(&oa, &sl->own_impl);
		if (rc < 0) {
			log_err("group=%s cannot open its %s owner in %s: %s", gc->name,
				sl->own->name, sl->statedir, strerror(-rc));
			free(sl->m);
			sl->m = NULL;
			continue;
		}
		node->nslots++;
	}
	return 0;
}

/* The last open has finished after a shutdown began: close the owners. */
static void grp_node_finish_stop(struct sg_node *node)
{
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];

		grp_waiters_done(sl, "the node is shutting down");
		sl->own->close(sl->own_impl);
		free(sl->m);
	}
	free(node->slots);
	node->slots = NULL;
	node->nslots = 0;
}

void grp_node_stop(struct sg_node *node)
{
	if (node->stopping)
		return;
	node->stopping = true;
	node->stop_walking = true;
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];

		if (sl->leaving)
			grp_handover_done(sl, "the node is shutting down");
		if (sl->g && sl->g->state == GRP_OPENING) {
			/* Its state is being read on the thread pool: it goes
			 * offline when that is done (grp_open_done). */
			sl->stop_pending = true;
			continue;
		}
		if (sl->g) {
			grp_stop(sl->g);
			sl->g = NULL;
		}
	}
	node->stop_walking = false;
	/* Else once the last open is done, and the last journal written
	 * (grp_slot_opened, grp_slot_leave_put): until then every owner
	 * keeps its group. */
	if (node->opening == 0 && !grp_node_leaving(node))
		grp_node_finish_stop(node);
}

static struct sg_slot *grp_slot_find(struct sg_node *node, const char *group)
{
	for (size_t i = 0; i < node->nslots; i++)
		if (strcmp(node->slots[i].cfg->name, group) == 0)
			return &node->slots[i];
	return NULL;
}

void grp_node_move(struct sg_node *node, const char *group, const char *target,
		   struct json_object *out)
{
	struct sg_slot *sl = grp_slot_find(node, group);
	struct sg_group *g;
	bool allowed = false;

	if (!sl) {
		sj_add(out, "result", json_object_new_string("not a group of this node"));
		return;
	}
	for (size_t n = 0; n < sl->cfg->nnodes; n++)
		allowed |= strcmp(sl->cfg->nodes[n], target) == 0;
	if (!allowed) {
		sj_add(out, "error", json_object_new_string("node is not in the group's nodes list"));
		return;
	}
	if (sl->own->external) {
		/* The cluster manager places it: a move here would fight it. */
		sj_add(out, "error", json_object_new_string(
			"group is managed (ownership = managed): move it with the cluster manager"));
		return;
	}
	if (!sl->g) {
		sj_add(out, "result", json_object_new_string("not the owner"));
		return;
	}
	if (strcmp(target, node->me->name) == 0) {
		sj_add(out, "result", json_object_new_string("already here"));
		return;
	}
	if (sl->g->state == GRP_OPENING) {
		sj_add(out, "error", json_object_new_string(
			"the group is still opening on this node; move it once it is online"));
		return;
	}
	if (!sl->own->node_up(sl->own_impl, target)) {
		/* Released for a node that cannot take it, the group would be
		 * offline until the move's hint expired. */
		char why[300];

		snprintf(why, sizeof(why), "node %s is not running (or is draining, or cannot "
			 "reach the group's storage): group %s stays on node %s", target, group,
			 node->me->name);
		log_warn("group=%s planned move to node %s refused: %s is not running, draining "
			 "or without the group's storage", group, target, target);
		sj_add(out, "error", json_object_new_string(why));
		return;
	}
	log_info("group=%s planned move from node %s to node %s", group, node->me->name, target);
	g = sl->g;
	grp_stop_ex(g, true);
	sl->g = NULL;
	grp_slot_release(sl, target, !node->draining);
	grp_handover_start(sl, g);
	sj_add(out, "result", json_object_new_string("released"));
	sj_add(out, "group", json_object_new_string(group));
	sj_add(out, "to", json_object_new_string(target));
}

void grp_node_drain(struct sg_node *node, bool drain, struct json_object *out)
{
	struct json_object *names = json_object_new_array();
	size_t moved = 0;

	node->draining = drain;
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];

		/* A managed group stays: its manager placed it and watches it
		 * (drain such a node through the manager, e.g. standby). */
		if (sl->own->external)
			continue;
		sl->own->contend(sl->own_impl, !drain);
		if (drain && sl->g && sl->g->state == GRP_OPENING) {
			/* Released once its open is done (grp_slot_opened). */
			sl->stop_pending = true;
			sl->stop_contend = false;
			sj_push(names, json_object_new_string(sl->cfg->name));
			moved++;
		} else if (drain && sl->g) {
			struct sg_group *g = sl->g;

			log_info("group=%s leaves node %s (drain)", sl->cfg->name, node->me->name);
			grp_stop_ex(g, true);
			sl->g = NULL;
			grp_slot_release(sl, NULL, false);
			grp_handover_start(sl, g);
			sj_push(names, json_object_new_string(sl->cfg->name));
			moved++;
		}
	}
	sj_add(out, "result", json_object_new_string(drain ? "draining" : "serving"));
	sj_add(out, "released", json_object_new_uint64(moved));
	/* Which groups left, so that `sgnfsctl drain` can wait for each to be
	 * served by another node. */
	sj_add(out, "groups", names);
}

/*
 * The entries of the lists that clients make long (a group's clients and
 * locks) that one status lists, all groups together; each list of each
 * served group gets an equal share, at least GRP_STATUS_LIST_MIN.  The
 * entries are copied on the event loop, which every group's requests
 * wait for (grp_node_snap), and json-c's 7-10 us per entry are spent on a
 * pool thread (daemon/nstatus.h); the cap bounds both the copy and the
 * memory and time a poll costs (docs/status.md).  The counts stay exact,
 * and a cut list says so.
 */
#define GRP_STATUS_LIST_TOTAL 10000
#define GRP_STATUS_LIST_MIN 100

/* Whether @sl's group is in the status as served (an opening group is not
 * served until it is installed). */
static bool grp_slot_listed(const struct sg_slot *sl)
{
	return sl->g && sl->g->state != GRP_OPENING;
}

size_t grp_status_list_max(size_t nserved)
{
	size_t share = nserved ? GRP_STATUS_LIST_TOTAL / (2 * nserved) : GRP_STATUS_LIST_TOTAL;

	return share > GRP_STATUS_LIST_MIN ? share : GRP_STATUS_LIST_MIN;
}

int grp_node_snap(struct sg_node *node, struct grp_node_snap **out)
{
	struct grp_node_snap *s = calloc(1, sizeof(*s));
	size_t nserved = 0, list_max;
	int rc = -ENOMEM;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < node->nslots; i++)
		nserved += grp_slot_listed(&node->slots[i]);
	list_max = grp_status_list_max(nserved);
	/* calloc: a failure part way leaves zeroed entries, which free as
	 * nothing (grp_node_snap_free walks only the counted ones). */
	s->groups = calloc(nserved ? nserved : 1, sizeof(*s->groups));
	s->standby = calloc(node->nslots - nserved ? node->nslots - nserved : 1,
			    sizeof(*s->standby));
	if (!s->groups || !s->standby)
		goto fail;
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];
		struct grp_snap_standby *b;
		const char *own_why;

		if (grp_slot_listed(sl)) {
			rc = grp_snap_group(sl->g, &s->groups[s->ngroups++], list_max);
			if (rc < 0)
				goto fail;
			continue;
		}
		/* A group this node may serve but does not (yet): say why.  An
		 * opening group is not served until it is installed. */
		b = &s->standby[s->nstandby++];
		own_why = sl->own->why(sl->own_impl);
		b->ownership = sl->own->name;
		b->name = strdup(sl->cfg->name);
		b->reason = strdup(
			sl->g ? "opening: its client list and journal are being read"
			: sl->why[0] ? sl->why
			: own_why[0] ? own_why
			: sl->own->external ? "managed: not started here"
			: node->draining ? "node is draining"
			: "not the lease owner (another node serves it, or a node "
			  "ahead in its nodes list is alive)");
		if (!b->name || !b->reason) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	grp_node_snap_free(s);
	return rc;
}

void grp_node_render(const struct grp_node_snap *s, struct json_object *out)
{
	struct json_object *groups = json_object_new_array();
	struct json_object *standby = json_object_new_array();

	for (size_t i = 0; i < s->ngroups; i++) {
		struct json_object *o = json_object_new_object();

		grp_render_group(&s->groups[i], o);
		sj_push(groups, o);
	}
	for (size_t i = 0; i < s->nstandby; i++) {
		struct json_object *o = json_object_new_object();

		sj_add(o, "name", json_object_new_string(s->standby[i].name));
		sj_add(o, "ownership", json_object_new_string(s->standby[i].ownership));
		sj_add(o, "reason", json_object_new_string(s->standby[i].reason));
		sj_push(standby, o);
	}
	sj_add(out, "groups", groups);
	sj_add(out, "standby", standby);
}

/* ---- managed ownership: start, stop, status of one group --------------- */

/* The slot of @group for a control command, or NULL with @why filled. */
static struct sg_slot *grp_slot_managed(struct sg_node *node, const char *group,
					 char *why, size_t whylen)
{
	struct sg_slot *sl = node->stopping ? NULL : grp_slot_find(node, group);

	if (node->stopping) {
		snprintf(why, whylen, "node %s is shutting down", node->me->name);
		return NULL;
	}
	if (!sl) {
		snprintf(why, whylen, "node %s may not serve group %s (not in its nodes list, "
			 "or no such group)", node->me->name, group);
		return NULL;
	}
	if (!sl->own->external) {
		snprintf(why, whylen, "group %s is lease-owned (ownership = lease): its nodes "
			 "decide who serves it; set ownership = managed to start and stop it "
			 "from a cluster manager, or use move", group);
		return NULL;
	}
	return sl;
}

int grp_node_start_group(struct sg_node *node, const char *group, char *why, size_t whylen)
{
	struct sg_slot *sl = grp_slot_managed(node, group, why, whylen);
	int rc;

	if (!sl)
		return -EPERM;
	sl->stop_pending = false; /* the latest word wins */
	if (sl->g)
		return sl->g->state == GRP_ONLINE ? 0 : 1; /* online already, or opening */
	if (sl->leave_holds) {
		snprintf(why, whylen, "group %s is still stopping on node %s (its last state writes "
			 "are not durable yet); start it once the stop has returned", group,
			 node->me->name);
		return -EBUSY;
	}
	log_info("group=%s start requested on node %s (managed)", group, node->me->name);
	rc = grp_start(sl);
	if (rc < 0) {
		log_err("group=%s cannot come online on node %s: %s", group, node->me->name,
			sl->why);
		snprintf(why, whylen, "%s", sl->why);
		return rc;
	}
	return 1;
}

int grp_node_stop_group(struct sg_node *node, const char *group, char *why, size_t whylen)
{
	struct sg_slot *sl = grp_slot_managed(node, group, why, whylen);

	if (!sl)
		return -EPERM;
	/* A stop also clears a failed start: the manager has seen it and
	 * now knows the group is not served here. */
	sl->why[0] = '\0';
	if (!sl->g)
		return 0;
	if (sl->g->state == GRP_OPENING) {
		sl->stop_pending = true;
		sl->stop_contend = false;
		return 1;
	}
	log_info("group=%s stop requested on node %s (managed)", group, node->me->name);
	grp_stop(sl->g);
	sl->g = NULL;
	grp_waiters_done(sl, NULL); /* a start still waiting for its binds */
	/* Stopped once its state is written: the manager starts it on
	 * another node as soon as this is answered. */
	return sl->leave_holds ? 1 : 0;
}

enum grp_node_state grp_node_group_state(struct sg_node *node, const char *group,
					 const char **why)
{
	struct sg_slot *sl = grp_slot_find(node, group);

	*why = "";
	if (!sl)
		return GRP_NODE_UNKNOWN;
	if (sl->g)
		return sl->g->state == GRP_ONLINE ? GRP_NODE_ONLINE : GRP_NODE_OPENING;
	if (sl->own->external && sl->why[0]) {
		*why = sl->why;
		return GRP_NODE_FAILED;
	}
	if (sl->leave_holds)
		*why = "stopping: its last state writes are not durable yet";
	return GRP_NODE_OFFLINE;
}

void grp_node_ctl_group(struct sg_node *node, const char *cmd, const char *group,
			struct json_object *out)
{
	static const char *const names[] = {
		[GRP_NODE_ONLINE] = "online", [GRP_NODE_OFFLINE] = "offline",
		[GRP_NODE_OPENING] = "opening", [GRP_NODE_FAILED] = "failed",
		[GRP_NODE_UNKNOWN] = "unknown",
	};
	bool start = strcmp(cmd, "start") == 0;
	struct sg_slot *sl;
	char why[512];
	const char *reason;
	int rc;

	if (strcmp(cmd, "group") == 0) {
		enum grp_node_state st = grp_node_group_state(node, group, &reason);
		sj_add(out, "group", json_object_new_string(group));
		sj_add(out, "node", json_object_new_string(node->me->name));
		sj_add(out, "state", json_object_new_string(names[st]));
		if (reason[0])
			sj_add(out, "reason", json_object_new_string(reason));
		return;
	}
	rc = start ? grp_node_start_group(node, group, why, sizeof(why))
		   : grp_node_stop_group(node, group, why, sizeof(why));
	if (rc < 0) {
		sj_add(out, "error", json_object_new_string(why));
		return;
	}
	sl = grp_slot_find(node, group);
	if (rc == 1 && grp_wait(sl, start, out))
		return; /* answered when the open is done */
	if (rc == 1) {
		sj_add(out, "error", json_object_new_string("cannot wait for the group (no memory)"));
		return;
	}
	grp_reply(out, start ? "online" : "offline", group, node->me->name);
}

/* ---- reload ---------------------------------------------------------------- */

struct grp_change_ctx {
	const char *group;
	const char *node;
	struct json_object *changes;   /* borrowed */
};

static void grp_log_change(void *arg, const char *change)
{
	struct grp_change_ctx *c = arg;
	char line[4600];

	log_info("group=%s %s on node %s (reload)", c->group, change, c->node);
	snprintf(line, sizeof(line), "group=%s %s", c->group, change);
	sj_push(c->changes, json_object_new_string(line));
}

int grp_node_reconfigure(struct sg_node *node, const struct cfg_cluster *next,
			 struct json_object *changes, char *why, size_t whylen)
{
	/* prep[slot * GRP_PROTO_MAX + protocol]: each protocol's new state */
	void **prep = calloc((node->nslots ? node->nslots : 1) * GRP_PROTO_MAX, sizeof(*prep));
	const struct cfg_node *me = cfg_node_find(next, node->me->name);
	int rc = 0;

	if (!prep) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	if (!me) {
		snprintf(why, whylen, "[node %s] is not in the new file", node->me->name);
		rc = -EINVAL;
		goto out;
	}
	/* Everything that can fail first, so that a refusal leaves every
	 * group exactly as it was: each online group's protocols prepare. */
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];
		const struct cfg_group *ngc = cfg_group_find(next, sl->cfg->name);

		if (!ngc) {
			snprintf(why, whylen, "[group %s] is not in the new file", sl->cfg->name);
			rc = -EINVAL;
			goto out;
		}
		if (!sl->g || (sl->g->state != GRP_ONLINE && sl->g->state != GRP_BINDING))
			continue;
		for (int id = 0; id < GRP_PROTO_MAX; id++) {
			const struct grp_proto_ops *ops = grp_protos[id];

			if (!ops || !ops->reconf_prepare || !sl->g->pub.slot[id])
				continue;
			rc = ops->reconf_prepare(&sl->g->pub, sl->g->pub.slot[id], next, ngc,
						 &prep[i * GRP_PROTO_MAX + id]);
			if (rc < 0) {
				snprintf(why, whylen, "group=%s: the new %s configuration cannot be "
					 "applied (%s); see the log for why", sl->cfg->name, ops->name,
					 strerror(-rc));
				goto out;
			}
		}
	}
	/* Commit.  The old tree stays alive (the caller keeps it), so any
	 * pointer into it held elsewhere stays valid. */
	node->cfg = next;
	node->me = me;
	for (size_t i = 0; i < node->nslots; i++) {
		struct sg_slot *sl = &node->slots[i];
		const struct cfg_group *ngc = cfg_group_find(next, sl->cfg->name);
		struct grp_change_ctx cc = { ngc->name, me->name, changes };

		rl_describe(sl->cfg, ngc, grp_log_change, &cc);
		sl->cfg = ngc;
		if (!sl->g)
			continue;
		sl->g->cfg = ngc;
		sl->g->cluster = next;
		sl->g->pub.cfg = ngc;
		sl->g->pub.cluster = next;
		sl->g->pub.name = ngc->name;
		for (int id = 0; id < GRP_PROTO_MAX; id++) {
			void **p = &prep[i * GRP_PROTO_MAX + id];

			if (*p) {
				grp_protos[id]->reconf_commit(&sl->g->pub.slot[id], *p);
				*p = NULL;
			}
		}
	}
out:
	for (size_t i = 0; i < node->nslots * GRP_PROTO_MAX; i++)
		if (prep[i])
			grp_protos[i % GRP_PROTO_MAX]->reconf_drop(prep[i]);
	free(prep);
	return rc;
}

/* ---- metrics ------------------------------------------------------------ */

/* Locks held and requests waiting, summed over the group's protocols. */
static size_t grp_nlocks(const struct sg_group *g, bool waiters)
{
	size_t n = 0;

	for (int id = 0; id < GRP_PROTO_MAX; id++) {
		const struct grp_proto_ops *ops = grp_protos[id];
		size_t (*fn)(const void *) = !ops ? NULL : waiters ? ops->nwaiters : ops->nlocks;

		if (fn && g->pub.slot[id])
			n += fn(g->pub.slot[id]);
	}
	return n;
}

/* One gauge or counter family over every group of the node; @expr may use
 * sl, g (NULL unless served here), m (NULL if none) and i. */
#define GRP_FAMILY(name, type, help, expr)                                        \
	do {                                                                      \
		mt_family(out, name, type, help);                                 \
		for (size_t i = 0; i < node->nslots; i++) {                       \
			const struct sg_slot *sl = &node->slots[i];               \
			const struct sg_group *g = sl->g && sl->g->online ? sl->g : NULL; \
			const struct grp_metrics *m = sl->m;                      \
			(void)g;                                                  \
			(void)m;                                                  \
			mt_u64(out, name, labels[i], (uint64_t)(expr));           \
		}                                                                 \
	} while (0)

void grp_node_metrics(struct sg_node *node, struct sbuf *out)
{
	size_t n = node->nslots ? node->nslots : 1;
	char (*lb)[256] = calloc(n, sizeof(*lb));
	const char **labels = calloc(n, sizeof(*labels));
	struct rpc_stats **st = calloc(n, sizeof(*st));
	struct jr_stats *js = calloc(n, sizeof(*js));
	static struct rpc_stats none;  /* a slot without metrics reads zeros */
	static const struct mt_hist empty;

	if (!lb || !labels || !st || !js) {
		out->oom = true;
		goto out;
	}
	for (size_t i = 0; i < node->nslots; i++) {
		const struct sg_slot *sl = &node->slots[i];

		snprintf(lb[i], sizeof(lb[i]), "node=\"%s\",group=\"%s\"", node->me->name,
			 sl->cfg->name);
		labels[i] = lb[i];
		st[i] = sl->m ? &sl->m->rpc : &none;
		/* An opening group's lock state is being filled on the pool. */
		if (sl->g && sl->g->online)
			for (int id = 0; id < GRP_PROTO_MAX; id++)
				if (grp_protos[id] && grp_protos[id]->journal_stats &&
				    sl->g->pub.slot[id])
					grp_protos[id]->journal_stats(sl->g->pub.slot[id], &js[i]);
		if (sl->m) {
			js[i].batches += sl->m->journal_batches;
			js[i].failures += sl->m->journal_failures;
			js[i].gathered += sl->m->journal_gathered;
			mt_hist_add(&js[i].fsync, &sl->m->journal_fsync);
		}
	}
	GRP_FAMILY("sgnfs_group_online", "gauge",
		   "1 while this node serves the group (online or in grace).", g != NULL);
	GRP_FAMILY("sgnfs_group_in_grace", "gauge",
		   "1 while the group is in its grace period on this node.",
		   g && grp_grace_left(&g->pub) > 0);
	GRP_FAMILY("sgnfs_group_grace_remaining_seconds", "gauge",
		   "Seconds of grace left (0 outside grace).",
		   g ? grp_grace_left(&g->pub) : 0);
	GRP_FAMILY("sgnfs_group_nsm_state", "gauge",
		   "The group's NSM state number while served here (odd: up), else 0.",
		   g ? (uint32_t)g->pub.nsm_state : 0);
	GRP_FAMILY("sgnfs_group_takeovers_total", "counter",
		   "Times the group came online on this node.", m ? m->takeovers : 0);
	GRP_FAMILY("sgnfs_group_takeover_failures_total", "counter",
		   "Times bringing the group online here failed.", m ? m->takeover_failures : 0);
	GRP_FAMILY("sgnfs_group_binding", "gauge",
		   "1 while the group waits to bind a VIP here (retried with back-off).",
		   sl->g && sl->g->state == GRP_BINDING);
	GRP_FAMILY("sgnfs_group_bind_retries_total", "counter",
		   "Bind attempts repeated after a failed one (address not here yet, in use).",
		   m ? m->bind_retries : 0);
	GRP_FAMILY("sgnfs_group_vip_adds_total", "counter",
		   "VIPs this node added to an interface at a takeover (ADDR/PREFIX@IFACE).",
		   m ? m->vip_adds : 0);
	GRP_FAMILY("sgnfs_group_vip_announcements_total", "counter",
		   "Gratuitous ARPs and unsolicited neighbour advertisements sent for the "
		   "group's VIPs.", m ? m->vip_announcements : 0);
	mt_family(out, "sgnfs_group_takeover_duration_seconds", "histogram",
		  "From this node deciding to serve the group to the group online (state read, "
		  "NSM state stored, VIPs bound).");
	for (size_t i = 0; i < node->nslots; i++)
		mt_hist_write(out, "sgnfs_group_takeover_duration_seconds", labels[i],
			      node->slots[i].m ? &node->slots[i].m->takeover : &empty);
	GRP_FAMILY("sgnfs_nlm_locks", "gauge", "Byte-range locks held in the group.",
		   g ? grp_nlocks(g, false) : 0);
	GRP_FAMILY("sgnfs_nlm_clients", "gauge", "Clients on the group's client list.",
		   g && g->pub.clients ? clist_count(g->pub.clients) : 0);
	GRP_FAMILY("sgnfs_nlm_waiters", "gauge", "Blocked lock requests queued in the group.",
		   g ? grp_nlocks(g, true) : 0);
	GRP_FAMILY("sgnfs_nsm_notify_sent_total", "counter",
		   "SM_NOTIFY notifications started (one per client and VIP; retries not counted).",
		   m ? m->notify_sent : 0);
	GRP_FAMILY("sgnfs_nsm_notify_answered_total", "counter",
		   "SM_NOTIFY notifications a client answered.", m ? m->notify_answered : 0);
	GRP_FAMILY("sgnfs_nsm_notify_given_up_total", "counter",
		   "SM_NOTIFY notifications given up after retrying.", m ? m->notify_given_up : 0);
	GRP_FAMILY("sgnfs_journal_batches_total", "counter",
		   "Lock journal batches made durable (one fdatasync each).", js[i].batches);
	GRP_FAMILY("sgnfs_journal_gathered_total", "counter",
		   "Lock journal batches held back for more callers (journal_gather).",
		   js[i].gathered);
	GRP_FAMILY("sgnfs_journal_failures_total", "counter",
		   "Lock journal writes that failed.", js[i].failures);
	GRP_FAMILY("sgnfs_journal_compactions_total", "counter",
		   "Lock journal compactions done, of either kind.", js[i].compactions);
	GRP_FAMILY("sgnfs_journal_folds_total", "counter",
		   "Lock journal compactions done by a fold off the event loop.", js[i].folds);
	GRP_FAMILY("sgnfs_journal_fold_failures_total", "counter",
		   "Lock journal folds given up (each logged with its reason).",
		   js[i].fold_failures);
	mt_family(out, "sgnfs_journal_fsync_duration_seconds", "histogram",
		  "Time a journal batch's write and fdatasync took.");
	for (size_t i = 0; i < node->nslots; i++)
		mt_hist_write(out, "sgnfs_journal_fsync_duration_seconds", labels[i], &js[i].fsync);
	rpc_stats_write(node->svc, st, labels, node->nslots, out);
out:
	free(lb);
	free(labels);
	free(st);
	free(js);
}
