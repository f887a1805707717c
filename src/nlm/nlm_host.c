/*
 * nlm_host.c - the client hosts of a group's NLM: the host table (a host is
 * its caller_name within the group), the index of the source addresses each
 * host used (for SM_NOTIFY / FREE_ALL by address and the per-address caps),
 * and the caps themselves.  Loop thread, except nlm_hosts_free.
 */
#include "nlm/nlm_host.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "config/config.h"
#include "group/gslot.h"
#include "log.h"
#include "nlm/nlm_int.h"
#include "nsm/clist.h"
#include "saddr.h"
#include "shash.h"

/* ---- hosts ------------------------------------------------------------ */

/* Caller names are the client's choice: keyed (shash.h), so none can
 * pick names that share a chain. */
static uint64_t nlm_host_hash(const char *name)
{
	return sh_hash(sh_process_key(), name, strlen(name));
}

static size_t nlm_host_bucket(const struct nlm_group *ng, const char *name)
{
	return (size_t)(nlm_host_hash(name) & (ng->nhbuckets - 1));
}

/* Room for one host more: the first chains, or twice as many once there
 * are two hosts per chain.  -ENOMEM only when there are no chains yet; a
 * table that cannot grow keeps its longer chains (still correct). */
static int nlm_hosts_room(struct nlm_group *ng)
{
	struct nlm_host **nt;
	size_t nb;

	if (!ng->hosts) {
		ng->hosts = calloc(NLM_HOST_BUCKETS, sizeof(*ng->hosts));
		if (!ng->hosts)
			return -ENOMEM;
		ng->nhbuckets = NLM_HOST_BUCKETS;
		return 0;
	}
	if (ng->nhosts + 1 <= 2 * ng->nhbuckets)
		return 0;
	nb = ng->nhbuckets * 2;
	nt = calloc(nb, sizeof(*nt));
	if (!nt)
		return 0;
	for (size_t i = 0; i < ng->nhbuckets; i++) {
		struct nlm_host *h = ng->hosts[i], *next;

		for (; h; h = next) {
			size_t b = (size_t)(nlm_host_hash(h->name) & (nb - 1));

			next = h->hnext;
			h->hnext = nt[b];
			nt[b] = h;
		}
	}
	free(ng->hosts);
	ng->hosts = nt;
	ng->nhbuckets = nb;
	return 0;
}

struct nlm_host *nlm_host_find(struct nlm_group *ng, const char *name)
{
	if (!ng->hosts)
		return NULL;
	for (struct nlm_host *h = ng->hosts[nlm_host_bucket(ng, name)]; h; h = h->hnext) {
		ng->host_probes++;
		if (strcmp(h->name, name) == 0)
			return h;
	}
	return NULL;
}

/* @peer's slot in ng->host_memo: the address's last 32 bits, mixed. */
static size_t nlm_host_memo_slot(const struct sockaddr_storage *peer)
{
	uint32_t w = 0;

	if (peer->ss_family == AF_INET)
		w = ((const struct sockaddr_in *)peer)->sin_addr.s_addr;
	else if (peer->ss_family == AF_INET6)
		memcpy(&w, ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr + 12, sizeof(w));
	/* Every bit of the word reaches the low ones (network byte order puts
	 * an IPv4 address's last octet in the high bits on this end). */
	w ^= w >> 16;
	w *= 0x7feb352du;
	w ^= w >> 15;
	return (size_t)w & (NLM_HOST_MEMO - 1);
}

struct nlm_host *nlm_host_recall(const struct nlm_group *ng, const struct sockaddr_storage *peer,
				 const char *name)
{
	struct nlm_host *h = ng->host_memo[nlm_host_memo_slot(peer)];

	return h && name && strcmp(h->name, name) == 0 ? h : NULL;
}

void nlm_host_remember(struct nlm_group *ng, const struct sockaddr_storage *peer,
		       struct nlm_host *h)
{
	ng->host_memo[nlm_host_memo_slot(peer)] = h;
}

/* ---- the address index ------------------------------------------------ */

/* Addresses in the index are normalised (saddr.h: host part only). */
static size_t nlm_addr_bucket(const struct nlm_group *ng, const struct sockaddr_storage *n)
{
	return (size_t)(sa_hash(n) & (ng->nabuckets - 1));
}

/* Room for one indexed address more: the first chains, or twice as many
 * once there are two addresses per chain (every host brings up to
 * NLM_HOST_ADDRS; a fixed table made each lookup cost hundreds with
 * 100,000 hosts).  -ENOMEM only when there are no chains yet; a table that
 * cannot grow keeps its longer chains. */
static int nlm_addrs_room(struct nlm_group *ng)
{
	struct nlm_haddr **nt;
	size_t nb;

	if (!ng->addrs) {
		ng->addrs = calloc(NLM_ADDR_BUCKETS, sizeof(*ng->addrs));
		if (!ng->addrs)
			return -ENOMEM;
		ng->nabuckets = NLM_ADDR_BUCKETS;
		return 0;
	}
	if (ng->naddrs + 1 <= 2 * ng->nabuckets)
		return 0;
	nb = ng->nabuckets * 2;
	nt = calloc(nb, sizeof(*nt));
	if (!nt)
		return 0;
	for (size_t i = 0; i < ng->nabuckets; i++) {
		struct nlm_haddr *s = ng->addrs[i], *next;

		for (; s; s = next) {
			size_t b = (size_t)(sa_hash(&s->addr) & (nb - 1));

			next = s->next;
			s->next = nt[b];
			nt[b] = s;
		}
	}
	free(ng->addrs);
	ng->addrs = nt;
	ng->nabuckets = nb;
	return 0;
}

static void nlm_haddr_unlink(struct nlm_group *ng, struct nlm_haddr *s)
{
	struct nlm_haddr **pp = &ng->addrs[nlm_addr_bucket(ng, &s->addr)];

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = s->next;
		ng->naddrs--;
	}
	s->next = NULL;
	s->used = false;
}

/* Remember that @h sent a request from @peer (the address index that
 * SM_NOTIFY/FREE_ALL by address and the per-address caps use).  Without
 * memory for the index's first chains the address is not remembered. */
void nlm_host_seen(struct nlm_group *ng, struct nlm_host *h,
		   const struct sockaddr_storage *peer)
{
	struct sockaddr_storage n;
	struct nlm_haddr *slot = NULL;
	size_t b;

	/* sa_same_host and sa_hash read only the family and the host part:
	 * @peer is normalised only to be stored (every request comes here). */
	for (unsigned i = 0; i < NLM_HOST_ADDRS; i++) {
		if (h->addrs[i].used && sa_same_host(&h->addrs[i].addr, peer))
			return;
		if (!h->addrs[i].used && !slot)
			slot = &h->addrs[i];
	}
	sa_norm(peer, &n);
	if (!slot) {
		slot = &h->addrs[h->next_addr++ % NLM_HOST_ADDRS];
		nlm_haddr_unlink(ng, slot);
	}
	if (nlm_addrs_room(ng) < 0)
		return;
	slot->addr = n;
	slot->host = h;
	slot->used = true;
	b = nlm_addr_bucket(ng, &n);
	slot->next = ng->addrs[b];
	ng->addrs[b] = slot;
	ng->naddrs++;
}

static void nlm_host_unindex(struct nlm_group *ng, struct nlm_host *h)
{
	for (unsigned i = 0; i < NLM_HOST_ADDRS; i++)
		if (h->addrs[i].used)
			nlm_haddr_unlink(ng, &h->addrs[i]);
}

/*
 * Call @fn for every host that sent requests from @addr; stops when @fn
 * returns false.  The cost is the entries of one index bucket, never the
 * number of hosts (ng->addr_probes counts them, for status and tests).
 */
void nlm_hosts_at(struct nlm_group *ng, const struct sockaddr_storage *addr,
		  bool (*fn)(void *arg, struct nlm_host *h), void *arg)
{
	/* @addr as it is: the bucket and the comparison read only its family
	 * and host part, as stored (nlm_host_seen). */
	if (!ng->addrs)
		return;
	for (struct nlm_haddr *s = ng->addrs[nlm_addr_bucket(ng, addr)]; s; s = s->next) {
		ng->addr_probes++;
		if (sa_same_host(&s->addr, addr) && !fn(arg, s->host))
			return;
	}
}

struct nlm_addr_count {
	const struct nlm_group *ng;
	size_t names;
	uint64_t locks;
};

static bool nlm_count_host(void *arg, struct nlm_host *h)
{
	struct nlm_addr_count *c = arg;
	struct lk_stats st;

	lk_client_stats(h->lkc, &st);
	c->names++;
	c->locks += st.locks + st.shares + st.waiters;
	return true;
}

/*
 * The node's online groups, for the node-wide caps.  One sgnfsd process is
 * one node, and every group's NLM state lives on its loop thread, so a list
 * of the module's own is the node's.
 */
static struct nlm_group *nlm_node_groups;

void nlm_node_join(struct nlm_group *ng)
{
	if (ng->on_node)
		return;
	ng->node_prev = NULL;
	ng->node_next = nlm_node_groups;
	if (nlm_node_groups)
		nlm_node_groups->node_prev = ng;
	nlm_node_groups = ng;
	ng->on_node = true;
}

void nlm_node_leave(struct nlm_group *ng)
{
	if (!ng->on_node)
		return;
	if (ng->node_prev)
		ng->node_prev->node_next = ng->node_next;
	else
		nlm_node_groups = ng->node_next;
	if (ng->node_next)
		ng->node_next->node_prev = ng->node_prev;
	ng->node_next = ng->node_prev = NULL;
	ng->on_node = false;
}

/* Names (hosts) and locks, shares and waiters of every online group: a
 * few counters per group, never a walk of hosts or locks. */
static void nlm_node_count(struct nlm_addr_count *c)
{
	struct lk_stats st;

	for (const struct nlm_group *g = nlm_node_groups; g; g = g->node_next) {
		lk_table_stats(g->locks, &st);
		c->names += g->nhosts;
		c->locks += st.locks + st.shares + st.waiters;
	}
}

int nlm_addr_caps(struct nlm_group *ng, const char *name,
		  const struct sockaddr_storage *peer, bool new_lock, bool reclaim)
{
	const struct cfg_cluster *cc = ng->gp->cluster;
	struct nlm_addr_count c = { ng, 0, 0 }, n = { ng, 0, 0 };
	const char *what, *where = "at that address";
	char a[80], nm[LOG_SAFE_MAX];
	struct lk_stats gs;
	uint64_t now;

	/* What an address holds in the group is part of what the group holds:
	 * below both per-address caps in the whole group, no address is at
	 * one, and its hosts need not be looked up and counted. */
	lk_table_stats(ng->locks, &gs);
	if (ng->nhosts >= cc->max_names_per_host ||
	    gs.locks + gs.shares + gs.waiters >= cc->max_locks_per_host)
		nlm_hosts_at(ng, peer, nlm_count_host, &c);
	if (!reclaim)
		nlm_node_count(&n);
	/* A new name only counts at a cap (the lookup is the costlier test). */
	if (c.names >= cc->max_names_per_host && !nlm_host_find(ng, name)) {
		what = "max_names_per_host";
	} else if (new_lock && c.locks >= cc->max_locks_per_host) {
		what = "max_locks_per_host";
	} else if (!reclaim && n.names >= cc->max_names && !nlm_host_find(ng, name)) {
		what = "max_names";
		where = "on the node";
		c = n;
	} else if (!reclaim && new_lock && n.locks >= cc->max_locks) {
		what = "max_locks";
		where = "on the node";
		c = n;
	} else {
		return 0;
	}
	now = uv_now(nlm_loop(ng));
	if (ng->refused_caps_logged_ms && now - ng->refused_caps_logged_ms < 1000) {
		ng->refused_caps_quiet++;
		return -ENOLCK;
	}
	log_warn("group=%s client=%s from %s refused: %s reached (%zu names, %" PRIu64
		 " locks %s; %" PRIu64 " more refusals not logged)", ng->name,
		 nlm_safe(nm, sizeof(nm), name), rpc_addr_str(peer, false, a, sizeof(a)), what,
		 c.names, c.locks, where, ng->refused_caps_quiet);
	ng->refused_caps_logged_ms = now;
	ng->refused_caps_quiet = 0;
	return -ENOLCK;
}

struct nlm_host *nlm_host_get(struct nlm_group *ng, const char *name)
{
	struct nlm_host *h = nlm_host_find(ng, name);
	size_t b;

	if (h)
		return h;
	if (nlm_hosts_room(ng) < 0)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->name = strdup(name);
	if (!h->name || lk_client_new(ng->locks, h, &h->lkc) < 0) {
		free(h->name);
		free(h);
		return NULL;
	}
	h->chash = clist_name_hash(name);
	b = nlm_host_bucket(ng, name);
	h->hnext = ng->hosts[b];
	ng->hosts[b] = h;
	ng->nhosts++;
	return h;
}

static bool nlm_host_idle(const struct nlm_host *h)
{
	struct lk_stats st;

	lk_client_stats(h->lkc, &st);
	return st.locks == 0 && st.waiters == 0 && st.shares == 0 && !nlm_host_has_resv(h);
}

/*
 * Called after anything that may have released a host's last lock: the
 * client list starts its idle clock, and a host nobody refers to is freed.
 */
void nlm_host_maybe_idle(struct nlm_group *ng, struct nlm_host *h)
{
	struct nlm_host **pp;

	if (!h || ng->closing || !nlm_host_idle(h))
		return;
	clist_release(ng->clients, h->name, h->chash);
	if (h->refs)
		return;
	for (pp = &ng->hosts[nlm_host_bucket(ng, h->name)]; *pp && *pp != h; pp = &(*pp)->hnext)
		;
	if (*pp)
		*pp = h->hnext;
	ng->nhosts--;
	for (size_t i = 0; i < NLM_HOST_MEMO; i++)
		if (ng->host_memo[i] == h)
			ng->host_memo[i] = NULL;
	nlm_host_unindex(ng, h);
	lk_client_free(ng->locks, h->lkc);
	if (h->rlkc && ng->resv)
		lk_client_free(ng->resv, h->rlkc);
	free(h->name);
	free(h);
}

void nlm_host_put(struct nlm_group *ng, struct nlm_host *h)
{
	h->refs--;
	nlm_host_maybe_idle(ng, h);
}

/* Free the hosts and their lock table: pure memory, any thread. */
void nlm_hosts_free(struct lk_table *locks, struct nlm_host **hosts, size_t nbuckets)
{
	for (size_t i = 0; hosts && i < nbuckets; i++) {
		while (hosts[i]) {
			struct nlm_host *h = hosts[i];
			hosts[i] = h->hnext;
			free(h->name);
			free(h);
		}
	}
	free(hosts);
	lk_table_free(locks); /* frees every lk_client too */
}
