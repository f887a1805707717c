/*
 * group.c - bringing a service group online and offline on this node.
 *
 * Online: open the group's exports (src/nfs), then bind each VIP on each
 * service port (TCP and UDP).  Binding last means a client can reach the
 * group only once everything behind the address is ready.  Offline undoes
 * it in the reverse order: sockets first (no new requests), then state.
 * Other groups on the node are never touched: each has its own listeners
 * and its own state.
 */
#include "group/group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config/config.h"
#include "log.h"
#include "nfs/nfs.h"
#include "nlm/nlm_svc.h"
#include "rpc/rpc.h"
#include "sbuf.h"

static void grp_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The ports every VIP answers on, without duplicates (ports may coincide). */
static size_t grp_ports(const struct cfg_cluster *c, uint16_t *ports)
{
	uint16_t want[] = { c->nfs_port, c->mount_port, c->nlm_port,
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

static void grp_put(void *ctx)
{
	struct sg_group *g = ctx;

	if (--g->refs)
		return;
	/* No request of this group is in flight any more (each held its
	 * listener, each listener held the group): the state can go. */
	nfs_group_close(g->nfs);
	free(g->lsn);
	free(g);
}

int grp_start(struct sg_node *node, const struct cfg_group *gc, struct sg_group **out)
{
	const struct cfg_cluster *c = node->cfg;
	struct sg_group *g = calloc(1, sizeof(*g));
	uint16_t ports[8];
	size_t nports = grp_ports(c, ports);
	char a[80];
	int rc;

	if (!g)
		return -ENOMEM;
	g->refs = 1;
	g->node = node;
	g->cluster = c;
	g->cfg = gc;
	g->lsn = calloc(gc->nvips * nports, sizeof(*g->lsn));
	if (!g->lsn) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = nfs_group_open(c, gc, &g->nfs);
	if (rc < 0) {
		log_err("group=%s cannot open exports: %s", gc->name, strerror(-rc));
		goto err_free;
	}
	rc = nlm_group_open(g, &g->nlm);
	if (rc < 0) {
		log_err("group=%s cannot open its lock state: %s", gc->name, strerror(-rc));
		nfs_group_close(g->nfs);
		goto err_free;
	}
	for (size_t v = 0; v < gc->nvips; v++) {
		for (size_t p = 0; p < nports; p++) {
			struct sockaddr_storage ss = gc->vips[v];

			grp_set_port(&ss, ports[p]);
			rc = rpc_listen(node->svc, (struct sockaddr *)&ss,
					RPC_LISTEN_TCP | RPC_LISTEN_UDP, g, &g->lsn[g->nlsn]);
			if (rc < 0) {
				log_err("group=%s cannot bind %s: %s", gc->name,
					rpc_addr_str(&ss, true, a, sizeof(a)), strerror(-rc));
				goto err_close;
			}
			rpc_listener_set_release(g->lsn[g->nlsn], grp_put);
			g->refs++;
			g->nlsn++;
		}
	}
	g->online = true;
	log_info("group=%s online on node %s (%zu VIPs, %zu exports)", gc->name,
		 node->me->name, gc->nvips, gc->nexports);
	*out = g;
	return 0;

err_close:
	for (size_t i = 0; i < g->nlsn; i++)
		rpc_listener_close(g->lsn[i]);
	nlm_group_close(g->nlm);
	g->nlm = NULL;
	grp_put(g);
	return rc;
err_free:
	free(g->lsn);
	free(g);
	return rc;
}

void grp_stop(struct sg_group *g)
{
	if (!g)
		return;
	g->online = false;
	log_info("group=%s offline on node %s", g->cfg->name, g->node->me->name);
	for (size_t i = 0; i < g->nlsn; i++)
		rpc_listener_close(g->lsn[i]);
	/* Lock state lives on the loop thread and no new request can reach
	 * it now: drop it at once (this also ends requests parked on the
	 * client list, which hold the listeners).  NFS state goes when the
	 * last request on the thread pool finishes (grp_put). */
	nlm_group_close(g->nlm);
	g->nlm = NULL;
	grp_put(g);
}

void grp_status(const struct sg_group *g, struct sbuf *out, bool json)
{
	uint32_t grace = g->nlm ? nlm_group_grace_left(g->nlm) : 0;
	const char *state = !g->online ? "offline" : grace ? "grace" : "online";
	size_t nclients = g->nlm ? nlm_group_nclients(g->nlm) : 0;
	size_t nlocks = g->nlm ? nlm_group_nlocks(g->nlm) : 0;

	if (!json) {
		sb_printf(out, "G\t%s\t%s\t%u\t%zu\t%zu\n", g->cfg->name, state, grace,
			  nclients, nlocks);
		if (g->nlm)
			nlm_group_status(g->nlm, out, false);
		return;
	}
	sb_printf(out, "{\"name\":");
	sb_json_str(out, g->cfg->name, strlen(g->cfg->name));
	sb_printf(out, ",\"state\":\"%s\",\"grace_left\":%u,", state, grace);
	if (g->nlm)
		nlm_group_status(g->nlm, out, true);
	else
		sb_printf(out, "\"clients\":[],\"locks\":[]");
	sb_printf(out, "}");
}
