/*
 * nlm_svc.c - NLM as a protocol of the service group (group/gslot.h): the
 * per-group state opened on the thread pool (lock table, journal replayed
 * into reservations), brought online on the loop, the end of grace, a
 * client's reboot, and the close.  The files of the module:
 *   nlm_host.c    the client hosts, their addresses, the per-address caps
 *   nlm_proc.c    the procedures, the grant pipeline and the RPC tables
 *   nlm_grant.c   blocked locks and their GRANTED callbacks
 *   nlm_journal.c the lock journal and the reservations it yields
 *   nlm_status.c  status as data
 *   nlm_cb.c      calls to the clients (GRANTED, _RES)
 *
 * Every piece of state is owned by the group's nlm_group and dies with it;
 * nothing is shared between groups, so one group's recovery cannot touch
 * another's locks.
 */
#include "nlm/nlm_svc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "group/gslot.h"
#include "journal/journal.h"
#include "lock/lock.h"
#include "log.h"
#include "wq.h"
#include "shash.h"
#include "nlm/nlm_cb.h"
#include "nlm/nlm_grant.h"
#include "nlm/nlm_host.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_proc.h"
#include "nsm/clist.h"

/* ---- a client's reboot ------------------------------------------------ */

/* Everything @h has in the group goes: locks, shares, waiters, and its
 * reservations; the waiters this satisfies are granted. */
static void nlm_release_host(struct nlm_group *ng, struct nlm_host *h, const char *why)
{
	lk_client_release(ng->locks, h->lkc);
	nlm_resv_waiters_drop_host(ng, h);
	nlm_jr_free_client(ng, h);
	nlm_flush_grants(ng);
	nlm_resv_release_client(ng, h);
	nlm_resv_check_done(ng, why);
	nlm_resv_waiters_retry(ng);
}

struct nlm_addr_collect {
	struct nlm_group *ng;
	const struct sockaddr_storage *from;
	struct nlm_host *found[16];
	size_t n;
};

static bool nlm_collect_listed(void *arg, struct nlm_host *h)
{
	struct nlm_addr_collect *c = arg;

	if (clist_has_addr(c->ng->clients, h->name, c->from)) {
		h->refs++;
		c->found[c->n++] = h;
	}
	return c->n < 16;
}

/* Release every host that sent requests from @from and whose client-list
 * entry records that address.  Looked up in the address index: a reboot
 * from an address no host used costs nothing, however many hosts there are. */
static bool nlm_release_by_addr(struct nlm_group *ng, const struct sockaddr_storage *from,
				const char *why)
{
	struct nlm_addr_collect c = { .ng = ng, .from = from };
	char nm[LOG_SAFE_MAX], ad[80];

	/* Collect first: releasing may free hosts from the table. */
	nlm_hosts_at(ng, from, nlm_collect_listed, &c);
	for (size_t i = 0; i < c.n; i++) {
		log_info("group=%s client=%s %s from its address %s: client restarted, releasing its locks here",
			 ng->name, nlm_safe(nm, sizeof(nm), c.found[i]->name), why,
			 rpc_addr_str(from, false, ad, sizeof(ad)));
		nlm_release_host(ng, c.found[i], why);
		nlm_host_put(ng, c.found[i]);
	}
	return c.n > 0;
}

bool nlm_group_client_rebooted(struct nlm_group *ng, const char *name,
			       const struct sockaddr_storage *from, bool trusted,
			       const char *why)
{
	struct nlm_host *host;
	char nm[LOG_SAFE_MAX], ad[80];

	if (!name || !(host = nlm_host_find(ng, name))) {
		/* The reboot may name the client differently from its locks
		 * (short name vs FQDN, name vs address): like a Linux statd,
		 * fall back to the sender's address, which must be one the
		 * client list records for the host it frees. */
		if (!trusted && nlm_release_by_addr(ng, from, why))
			return true;
		log_info("group=%s client=%s %s: holds nothing here", ng->name,
			 nlm_safe(nm, sizeof(nm), name), why);
		return false;
	}
	if (!trusted && !clist_has_addr(ng->clients, host->name, from)) {
		log_warn("group=%s client=%s %s from %s refused: not an address of that client",
			 ng->name, nlm_safe(nm, sizeof(nm), name), why,
			 rpc_addr_str(from, false, ad, sizeof(ad)));
		return false;
	}
	log_info("group=%s client=%s %s: client restarted, releasing its locks here", ng->name,
		 nlm_safe(nm, sizeof(nm), name), why);
	host->refs++;
	nlm_release_host(ng, host, why);
	nlm_host_put(ng, host);
	return true;
}

/* ---- group lifecycle (struct grp_proto_ops, group/gslot.h) ----------- */

/* A loaded group that never came online: any thread. */
static void nlm_group_discard(struct nlm_group *ng)
{
	if (!ng)
		return;
	nlm_journal_close(ng, NULL);
	nlm_hosts_free(ng->locks, ng->hosts, ng->nhbuckets);
	free(ng->addrs);
	free(ng);
}

/* On the thread pool: an empty lock table, and the journal replayed into
 * the group's own reservation table.  Touches no loop. */
static int nlm_open(struct grp_pub *gp, void **slot)
{
	struct nlm_group *ng = calloc(1, sizeof(*ng));
	struct lk_table_opts lo = { 0 };
	int rc;

	if (!ng)
		return -ENOMEM;
	ng->gp = gp;
	ng->name = gp->name;
	ng->clients = gp->clients;
	lo.on_grant = nlm_on_grant;
	lo.on_drop = nlm_on_drop;
	lo.cb_arg = ng;
	/* Keys come off the wire: a secret random seed, so collisions cannot
	 * be planned (shash.h). */
	struct sh_key key;
	(void)sh_key_new(&key);
	lo.hash_seed[0] = key.k0;
	lo.hash_seed[1] = key.k1;
	rc = lk_table_new(&lo, &ng->locks);
	if (rc < 0)
		goto err;
	ng->granted_tail = &ng->granted;
	rc = nlm_journal_open(ng, gp->cfg->statedir);
	if (rc < 0)
		goto err;
	*slot = ng;
	return 0;
err:
	nlm_group_discard(ng);
	return rc;
}

/*
 * On the loop, before the group serves: the loop's handles, and whether
 * anything may need reclaiming (reservations from the journal; without a
 * trusted journal, any client on the list).
 */
static int nlm_online(struct grp_pub *gp, void *slot)
{
	struct nlm_group *ng = slot;
	int rc = nlm_cb_new(nlm_loop(ng), ng->name, &ng->cb);

	(void)gp;
	if (rc < 0)
		return rc;
	if (ng->jr)
		jr_attach(ng->jr, nlm_loop(ng));
	ng->attached = true;
	nlm_node_join(ng);
	if (nlm_journal_needs_grace(ng)) {
		if (ng->resv)
			log_info("group=%s NLM recovers %zu reserved locks and shares; new locks "
				 "that conflict with none are granted meanwhile", ng->name,
				 ng->resv_loaded);
		else
			log_info("group=%s NLM recovers with a plain grace: only reclaims are "
				 "granted on its filesystems", ng->name);
		return 1;
	}
	if (ng->jr)
		log_info("group=%s the journal holds no lock to recover: no grace needed",
			 ng->name);
	else
		log_info("group=%s client list is empty: no grace needed", ng->name);
	return 0;
}

/* The lock table and hosts of a group gone offline, freed on the pool: a
 * table holds as many locks as clients took, and freeing millions of
 * them must not stall the other groups. */
struct nlm_free_work {
	struct wq_work work;
	struct lk_table *locks;
	struct nlm_host **hosts;       /* owned, nbuckets chains */
	size_t nbuckets;
};

static void nlm_free_work(struct wq_work *w)
{
	struct nlm_free_work *fw = w->data;

	nlm_hosts_free(fw->locks, fw->hosts, fw->nbuckets);
}

static void nlm_free_done(struct wq_work *w, int status)
{
	(void)status;
	free(w->data);
}

/* Drop every lock, share, waiter and pending reply of the group (it goes
 * offline); requests waiting on the disk are abandoned without a reply. */
static void nlm_close(struct grp_pub *gp, void *slot, bool online)
{
	struct nlm_group *ng = slot;
	struct nlm_free_work *fw;

	if (!ng)
		return;
	/* Its locks and names stop counting towards the node's caps now:
	 * they are being dropped. */
	nlm_node_leave(ng);
	if (!online || !ng->attached) {
		nlm_group_discard(ng);
		return;
	}
	ng->closing = true;
	/* Writes in flight finish unheard (nothing waits for them now), and
	 * the open batch is still written: the group leaves after it. */
	nlm_journal_close(ng, gp);
	nlm_parked_abandon(ng);
	nlm_cb_close(ng->cb); /* in-flight GRANTED callbacks end here */
	nlm_blocks_abandon(ng);
	fw = calloc(1, sizeof(*fw));
	if (fw) {
		fw->work.data = fw;
		fw->locks = ng->locks;
		fw->hosts = ng->hosts;
		fw->nbuckets = ng->nhbuckets;
		if (wq_queue(nlm_loop(ng), &fw->work, nlm_free_work, nlm_free_done) != 0) {
			free(fw);
			fw = NULL;
		}
	}
	if (!fw)
		nlm_hosts_free(ng->locks, ng->hosts, ng->nhbuckets);
	free(ng->addrs);        /* the chains only: the slots are the hosts' */
	free(ng);
}

/* The group's grace is over: what was not reclaimed is dropped. */
static void nlm_grace_end(struct grp_pub *gp, void *slot)
{
	(void)gp;
	nlm_resv_drop(slot);
	nlm_resv_waiters_retry(slot);
}

static bool nlm_client_rebooted_op(struct grp_pub *gp, void *slot, const char *name,
				   const struct sockaddr_storage *from, bool trusted,
				   const char *why)
{
	(void)gp;
	return nlm_group_client_rebooted(slot, name, from, trusted, why);
}

/* Loop: a copy of the group's status part (nlm_status.h); the caller owns it. */
static int nlm_status_snap_op(const struct grp_pub *gp, const void *slot, size_t list_max,
			      void **snap)
{
	(void)gp;
	return nlm_status_snap(slot, list_max, (struct nlm_status_snap **)snap);
}

/* Pool thread: the part from the copy alone. */
static void nlm_status_render_op(const void *snap, struct json_object *o)
{
	nlm_status_render(snap, o);
}

static void nlm_status_free_op(void *snap)
{
	nlm_status_free(snap);
}

static size_t nlm_nlocks_op(const void *slot)
{
	return nlm_group_nlocks(slot);
}

static size_t nlm_nwaiters_op(const void *slot)
{
	return nlm_group_nwaiters(slot);
}

static void nlm_journal_stats_op(const void *slot, struct jr_stats *st)
{
	nlm_group_journal_stats(slot, st);
}

const struct grp_proto_ops nlm_group_ops = {
	.name = "nlm",
	.open = nlm_open,
	.online = nlm_online,
	.grace_end = nlm_grace_end,
	.close = nlm_close,
	.status_snap = nlm_status_snap_op,
	.status_render = nlm_status_render_op,
	.status_free = nlm_status_free_op,
	.client_rebooted = nlm_client_rebooted_op,
	.nlocks = nlm_nlocks_op,
	.nwaiters = nlm_nwaiters_op,
	.journal_stats = nlm_journal_stats_op,
};

