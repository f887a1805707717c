/* reload.c - see reload.h. */
#include "config/reload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"

#define RL_RESTART "; restart the nodes in turn to change it"

static bool rl_streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool rl_addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static const struct cfg_export *rl_export(const struct cfg_group *g, const char *path)
{
	for (size_t i = 0; i < g->nexports; i++)
		if (strcmp(g->exports[i]->path, path) == 0)
			return g->exports[i];
	return NULL;
}

/* The export of any group of @c with @fsid, or NULL. */
static const struct cfg_export *rl_fsid(const struct cfg_cluster *c, uint32_t fsid)
{
	for (size_t i = 0; i < c->nexports; i++)
		if (c->exports[i].fsid == fsid)
			return &c->exports[i];
	return NULL;
}

static int rl_cluster(const struct cfg_cluster *a, const struct cfg_cluster *b, char *why,
		      size_t n)
{
#define RL_NUM(f, key)                                                                  \
	if (a->f != b->f) {                                                             \
		snprintf(why, n, "[cluster] " key ": %lld -> %lld" RL_RESTART,          \
			 (long long)a->f, (long long)b->f);                              \
		return -EPERM;                                                          \
	}
#define RL_STR(f, key)                                                                  \
	if (!rl_streq(a->f, b->f)) {                                                    \
		snprintf(why, n, "[cluster] " key ": %s -> %s" RL_RESTART, a->f, b->f); \
		return -EPERM;                                                          \
	}
	RL_STR(name, "name");
	RL_STR(run_dir, "run_dir");
	RL_NUM(nfs_port, "nfs_port");
	RL_NUM(mount_port, "mount_port");
	RL_NUM(pmap_port, "pmap_port");
	RL_NUM(nlm_port, "nlm_port");
	RL_NUM(nsm_port, "nsm_port");
	RL_NUM(use_rpcbind, "use_rpcbind");
	RL_NUM(max_record, "max_record");
	RL_NUM(max_conns, "max_conns");
	RL_NUM(max_conns_per_host, "max_conns_per_host");
	RL_NUM(max_inflight_mb, "max_inflight_mb");
	RL_NUM(max_inflight_mb_per_host, "max_inflight_mb_per_host");
	RL_NUM(max_names_per_host, "max_names_per_host");
	RL_NUM(max_locks_per_host, "max_locks_per_host");
	RL_NUM(max_names, "max_names");
	RL_NUM(max_locks, "max_locks");
	/* Copied into the RPC service at its creation (rpc_svc_new). */
	RL_NUM(max_queued_per_group, "max_queued_per_group");
	RL_NUM(max_queued_per_host, "max_queued_per_host");
	RL_NUM(drc_entries, "drc_entries");
	RL_NUM(open_handles, "open_handles");
	RL_NUM(drc_entries_per_host, "drc_entries_per_host");
	RL_NUM(drc_ttl_s, "drc_ttl");
	/* A filter, once installed, cannot be loosened. */
	RL_NUM(seccomp, "seccomp");
	/* Another key would turn every handle the clients hold stale. */
	RL_STR(handle_key, "handle_key");
	RL_STR(peer_key, "peer_key");
	RL_NUM(peer_port, "peer_port");
	RL_NUM(idle_timeout_s, "idle_timeout");
	RL_NUM(watchdog_ms, "watchdog_ms");
	RL_STR(log, "log");
	RL_NUM(ownership, "ownership");
	RL_NUM(journal_io_thread, "journal_io");
	/* journal_inflight is live (sgnfsd_reload): each batch's solo flag
	 * records what its writer did, so the loader needs no setting.
	 * journal_gather is live too: it only decides when a batch starts.
	 * poll_spin_us is live: it only decides how long the loop polls. */
	/* Set once while sgnfsd still held CAP_SYS_NICE. */
	RL_NUM(loop_realtime, "loop_priority");
	/* Every thread took its CPUs from it as it started. */
	RL_NUM(loop_cpu, "loop_cpu");
	if (a->metrics_listen.set != b->metrics_listen.set ||
	    memcmp(&a->metrics_listen.addr, &b->metrics_listen.addr,
		   sizeof(a->metrics_listen.addr)) != 0) {
		snprintf(why, n, "[cluster] metrics_listen changed" RL_RESTART);
		return -EPERM;
	}
#undef RL_NUM
#undef RL_STR
	return 0;
}

static int rl_group(const struct cfg_cluster *cur, const struct cfg_cluster *next,
		    const struct cfg_group *a, const struct cfg_group *b, char *why, size_t n)
{
	bool same;

	if (a->nvips != b->nvips) {
		snprintf(why, n, "[group %s] vip: the list changed" RL_RESTART, a->name);
		return -EPERM;
	}
	for (size_t i = 0; i < a->nvips; i++) {
		if (!rl_addr_eq(&a->vips[i], &b->vips[i]) ||
		    a->vip_ifs[i].prefix != b->vip_ifs[i].prefix ||
		    strcmp(a->vip_ifs[i].ifname, b->vip_ifs[i].ifname) != 0) {
			snprintf(why, n, "[group %s] vip: the list changed" RL_RESTART, a->name);
			return -EPERM;
		}
	}
	same = a->nnodes == b->nnodes;
	for (size_t i = 0; same && i < a->nnodes; i++)
		same = strcmp(a->nodes[i], b->nodes[i]) == 0;
	if (!same) {
		snprintf(why, n, "[group %s] nodes: the list changed" RL_RESTART, a->name);
		return -EPERM;
	}
#define RL_GNUM(f, key)                                                                  \
	if (a->f != b->f) {                                                              \
		snprintf(why, n, "[group %s] " key ": %lld -> %lld" RL_RESTART, a->name,  \
			 (long long)a->f, (long long)b->f);                               \
		return -EPERM;                                                           \
	}
	RL_GNUM(grace_s, "grace");
	RL_GNUM(journal, "journal");
	RL_GNUM(client_idle_s, "client_idle");
	RL_GNUM(ownership, "ownership");
#undef RL_GNUM
	/* The first export holds .sgnfs/ (client list, NSM state, lease,
	 * journal): it cannot move while the group runs. */
	if (strcmp(a->exports[0]->path, b->exports[0]->path) != 0) {
		snprintf(why, n, "[group %s]: its first export (which holds .sgnfs/) changed: "
			 "%s -> %s" RL_RESTART, a->name, a->exports[0]->path, b->exports[0]->path);
		return -EPERM;
	}
	for (size_t i = 0; i < b->nexports; i++) {
		const struct cfg_export *ne = b->exports[i];
		const struct cfg_export *oe = rl_export(a, ne->path);
		const struct cfg_export *byfsid = rl_fsid(cur, ne->fsid);

		if (oe && oe->fsid != ne->fsid) {
			snprintf(why, n, "[export %s] fsid: %u -> %u (every handle the clients hold "
				 "would go stale)", ne->path, oe->fsid, ne->fsid);
			return -EPERM;
		}
		/* An export moving between groups would change which group's
		 * locks and grace cover its files. */
		if (!oe) {
			for (size_t g = 0; g < cur->ngroups; g++) {
				const struct cfg_group *og = &cur->groups[g];
				if (og != a && rl_export(og, ne->path)) {
					snprintf(why, n, "[export %s] group: %s -> %s" RL_RESTART,
						 ne->path, og->name, b->name);
					return -EPERM;
				}
			}
		}
		if (!oe && byfsid) {
			snprintf(why, n, "[export %s] fsid %u was export %s's: handles of that "
				 "export would open files of this one", ne->path, ne->fsid,
				 byfsid->path);
			return -EPERM;
		}
	}
	(void)next;
	return 0;
}

int rl_check(const struct cfg_cluster *cur, const struct cfg_cluster *next, char *why,
	     size_t whylen)
{
	int rc = rl_cluster(cur, next, why, whylen);

	if (rc < 0)
		return rc;
	if (cur->nnodes != next->nnodes) {
		snprintf(why, whylen, "[node] sections: %zu -> %zu" RL_RESTART, cur->nnodes,
			 next->nnodes);
		return -EPERM;
	}
	for (size_t i = 0; i < cur->nnodes; i++) {
		const struct cfg_node *a = &cur->nodes[i], *b = &next->nodes[i];
		if (strcmp(a->name, b->name) != 0 || a->has_address != b->has_address ||
		    a->peer_port != b->peer_port ||
		    (a->has_address && !rl_addr_eq(&a->address, &b->address)) ||
		    a->metrics_listen.set != b->metrics_listen.set ||
		    !rl_addr_eq(&a->metrics_listen.addr, &b->metrics_listen.addr)) {
			snprintf(why, whylen, "[node %s] changed (-> [node %s])" RL_RESTART, a->name,
				 b->name);
			return -EPERM;
		}
	}
	if (cur->ngroups != next->ngroups) {
		snprintf(why, whylen, "[group] sections: %zu -> %zu" RL_RESTART, cur->ngroups,
			 next->ngroups);
		return -EPERM;
	}
	for (size_t i = 0; i < cur->ngroups; i++) {
		if (strcmp(cur->groups[i].name, next->groups[i].name) != 0) {
			snprintf(why, whylen, "[group %s] -> [group %s]" RL_RESTART,
				 cur->groups[i].name, next->groups[i].name);
			return -EPERM;
		}
		rc = rl_group(cur, next, &cur->groups[i], &next->groups[i], why, whylen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool rl_nets_eq(const struct cfg_export *a, const struct cfg_export *b)
{
	if (a->nclients != b->nclients)
		return false;
	for (size_t i = 0; i < a->nclients; i++)
		if (a->clients[i].family != b->clients[i].family ||
		    a->clients[i].prefix != b->clients[i].prefix ||
		    memcmp(a->clients[i].addr, b->clients[i].addr, 16) != 0)
			return false;
	return true;
}

/* What differs between two versions of one export, "" if nothing. */
static void rl_export_diff(const struct cfg_export *a, const struct cfg_export *b, char *out,
			   size_t n)
{
	out[0] = '\0';
#define RL_ADD(cond, name)                                                       \
	if (cond) {                                                              \
		size_t l = strlen(out);                                           \
		snprintf(out + l, n - l, "%s%s", l ? ", " : "", name);            \
	}
	RL_ADD(!rl_nets_eq(a, b), "clients");
	RL_ADD(a->rw != b->rw, "access");
	RL_ADD(a->root_squash != b->root_squash || a->all_squash != b->all_squash, "squash");
	RL_ADD(a->anonuid != b->anonuid, "anonuid");
	RL_ADD(a->anongid != b->anongid, "anongid");
	RL_ADD(a->secure != b->secure, "secure");
#undef RL_ADD
}

bool rl_exports_differ(const struct cfg_group *a, const struct cfg_group *b)
{
	char d[128];

	if (a->nexports != b->nexports)
		return true;
	for (size_t i = 0; i < a->nexports; i++) {
		if (strcmp(a->exports[i]->path, b->exports[i]->path) != 0)
			return true;
		rl_export_diff(a->exports[i], b->exports[i], d, sizeof(d));
		if (d[0])
			return true;
	}
	return false;
}

void rl_describe(const struct cfg_group *cur, const struct cfg_group *next,
		 void (*fn)(void *arg, const char *change), void *arg)
{
	char line[4400], d[128];

	for (size_t i = 0; i < next->nexports; i++) {
		const struct cfg_export *ne = next->exports[i];
		const struct cfg_export *oe = rl_export(cur, ne->path);

		if (!oe) {
			snprintf(line, sizeof(line), "export %s added (fsid %u)", ne->path, ne->fsid);
			fn(arg, line);
			continue;
		}
		rl_export_diff(oe, ne, d, sizeof(d));
		if (d[0]) {
			snprintf(line, sizeof(line), "export %s: %s changed", ne->path, d);
			fn(arg, line);
		}
	}
	for (size_t i = 0; i < cur->nexports; i++) {
		if (!rl_export(next, cur->exports[i]->path)) {
			snprintf(line, sizeof(line), "export %s removed (fsid %u)",
				 cur->exports[i]->path, cur->exports[i]->fsid);
			fn(arg, line);
		}
	}
}
