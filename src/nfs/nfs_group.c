/*
 * nfs_group.c - one service group's NFS and MOUNT state.
 *
 * Created when the group comes online on this node, with every export
 * opened and a new write verifier; freed when the last reference goes.
 * The opener holds one reference and every handler takes one for the time
 * it runs, so nfs_group_close() is safe while requests of the group are
 * still running on the thread pool.
 *
 * The write verifier.  An UNSTABLE write lives in this node's page cache
 * until COMMIT; if the group restarts or moves to another node before that,
 * the data may be lost, and the client learns it only because the verifier
 * it sees changes, which makes it resend every uncommitted write (RFC 1813
 * 3.3.7).  So the verifier must differ for every start of the group on any
 * node: it mixes CLOCK_REALTIME in nanoseconds, the process id and 64 bits
 * from getrandom(2).
 *
 * The mount list (MOUNT DUMP) is informational only, as in every NFSv3
 * server: it lives in memory, is bounded, and is protected by mnt_lock
 * because MNT runs on the thread pool while DUMP/UMNT run on the loop.
 */
#include "nfs/nfs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include <unistd.h>
#include <sys/random.h>

#include "config/config.h"
#include "config/reload.h"
#include "group/gslot.h"
#include "log.h"
#include "nfs/export.h"
#include "nfs/ohc.h"

static void nfs_group_new_verf(uint8_t verf[8])
{
	struct timespec ts;
	uint64_t v, r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	v ^= (uint64_t)getpid() << 40;
	/* GRND_NONBLOCK: at early boot a short read still leaves time and pid,
	 * which already differ from any earlier start. */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = 0;
	v ^= r;
	for (int i = 0; i < 8; i++)
		verf[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void nfs_group_free(struct nfs_group *ng)
{
	/* Before the roots: no descriptor of the exports may outlive the
	 * group, or the filesystem could not be unmounted after a move. */
	ohc_free(ng->ohc);
	for (size_t i = 0; i < ng->nexports; i++)
		exp_close(&ng->exports[i]);
	free(ng->exports);
	for (size_t i = 0; i < ng->nmounts; i++)
		free(ng->mounts[i].dir);
	free(ng->mounts);
	pthread_mutex_destroy(&ng->mnt_lock);
	free(ng);
}

/* @inner lies inside or is @outer (both resolved, no trailing '/'). */
static bool nfs_path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (n == 1)
		return true;            /* "/" */
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/*
 * The configuration forbids nesting on the paths as written; a symbolic
 * link can still make one export resolve into (or around) another, which
 * `sgnfsd -t` reports but a node started without it would serve: two
 * groups, two lock tables for one file, or .sgnfs/ reachable by name.  So
 * every open checks the resolved root of each of its exports against every
 * other export of the cluster that resolves on this node.  Blocking
 * (realpath): runs with the rest of the open, off the loop.
 */
static int nfs_group_check_nesting(const struct cfg_cluster *c, const struct cfg_group *gc,
				   const struct nfs_exp *e)
{
	for (size_t j = 0; c && j < c->nexports; j++) {
		const struct cfg_export *o = &c->exports[j];
		char *real;
		bool nested;

		if (o == e->cfg)
			continue;
		real = realpath(o->path, NULL);
		if (!real)
			continue;       /* not here (storage of a group served elsewhere) */
		nested = nfs_path_within(real, e->root_path) || nfs_path_within(e->root_path, real);
		if (nested)
			log_err("group=%s export %s (resolved %s) nests with export %s of group %s "
				"(resolved %s): not served; `sgnfsd -t` reports this", gc->name,
				e->cfg->path, e->root_path, o->path,
				o->group ? o->group->name : "?", real);
		free(real);
		if (nested)
			return -ELOOP;
	}
	return 0;
}

int nfs_group_open(const struct cfg_cluster *c, const struct cfg_group *gc,
		   struct nfs_group **out)
{
	struct nfs_group *ng = calloc(1, sizeof(*ng));
	int rc;

	if (!ng)
		return -ENOMEM;
	/* A takeover is when a rotated key file (hkey.h) is picked up: the
	 * node that issued handles with the new key may just have died.  On
	 * failure the keys loaded before stay in use (logged). */
	if (c && c->handle_key)
		fh_keys_load(c->handle_key);
	atomic_init(&ng->refs, 1);
	ng->cluster = c;
	ng->cfg = gc;
	pthread_mutex_init(&ng->mnt_lock, NULL);
	nfs_group_new_verf(ng->verf);
	ng->exports = calloc(gc->nexports ? gc->nexports : 1, sizeof(*ng->exports));
	if (!ng->exports) {
		nfs_group_free(ng);
		return -ENOMEM;
	}
	for (size_t i = 0; i < gc->nexports; i++) {
		/* exports[0] holds the group's .sgnfs/ (config.h). */
		rc = exp_open(gc->exports[i], i == 0, &ng->exports[i]);
		if (rc == 0) {
			rc = nfs_group_check_nesting(c, gc, &ng->exports[i]);
			if (rc < 0)
				exp_close(&ng->exports[i]);
		}
		if (rc < 0) {
			log_err("group=%s export %s cannot be served", gc->name,
				gc->exports[i]->path);
			nfs_group_free(ng);
			return rc;
		}
		ng->nexports++;
	}
	if (c && c->open_handles > 0) {
		/* An equal share per configured group: a group's hot set cannot
		 * push another group's out. */
		size_t share = c->open_handles / (c->ngroups ? c->ngroups : 1);

		rc = ohc_new(share < 16 ? 16 : share, gc->name, &ng->ohc);
		if (rc < 0) {
			nfs_group_free(ng);
			return rc;
		}
	}
	*out = ng;
	return 0;
}

struct nfs_group *nfs_group_get(struct nfs_group *ng)
{
	if (ng)
		atomic_fetch_add(&ng->refs, 1);
	return ng;
}

void nfs_group_put(struct nfs_group *ng)
{
	if (ng && atomic_fetch_sub(&ng->refs, 1) == 1)
		nfs_group_free(ng);
}

void nfs_group_close(struct nfs_group *ng)
{
	nfs_group_put(ng);
}

/*
 * A reload replaces a group's nfs_group (nfs_group_swap) on the loop
 * thread while handlers on the thread pool look it up: loading the pointer
 * and taking the reference happen under this lock, so the opener's
 * reference that the swap drops can never be the last one between the two.
 * Held for a load and an increment only.
 */
static pthread_mutex_t nfs_swap_lock = PTHREAD_MUTEX_INITIALIZER;

struct nfs_group *nfs_group_of_req(const struct rpc_req *req)
{
	const struct grp_pub *g = req->svc_ctx;
	struct nfs_group *ng;

	/* The listener holds its group, and the group holds nfs until every
	 * request on the listener has finished (group.c), so the pointer is
	 * valid here; the reference keeps it valid for the whole handler. */
	if (!g)
		return NULL;
	pthread_mutex_lock(&nfs_swap_lock);
	ng = nfs_group_get(grp_slot(g, GRP_PROTO_NFS));
	pthread_mutex_unlock(&nfs_swap_lock);
	return ng;
}

int nfs_group_reopen(struct nfs_group *old, const struct cfg_cluster *c,
		     const struct cfg_group *gc, struct nfs_group **out)
{
	struct nfs_group *ng;
	int rc = nfs_group_open(c, gc, &ng);

	if (rc < 0)
		return rc;
	/* Same server instance: the data of unstable writes is where it was,
	 * so clients need not resend them (RFC 1813, WRITE verifier). */
	memcpy(ng->verf, old->verf, sizeof(ng->verf));
	pthread_mutex_lock(&old->mnt_lock);
	for (size_t i = 0; i < old->nmounts; i++)
		(void)nfs_mounts_add(ng, old->mounts[i].host, old->mounts[i].dir);
	pthread_mutex_unlock(&old->mnt_lock);
	*out = ng;
	return 0;
}

void nfs_group_swap(struct nfs_group **slot, struct nfs_group *next)
{
	struct nfs_group *old;

	pthread_mutex_lock(&nfs_swap_lock);
	old = *slot;
	*slot = next;
	pthread_mutex_unlock(&nfs_swap_lock);
	/* Handlers still running on @old hold their own references. */
	nfs_group_close(old);
}

/* ---- as a protocol of the group (group/gslot.h) ----------------------- */

/* On the thread pool with the rest of the group's open. */
static int nfs_open_op(struct grp_pub *g, void **slot)
{
	return nfs_group_open(g->cluster, g->cfg, (struct nfs_group **)slot);
}

/* Nothing of NFS needs reclaiming: handles stay valid across a move. */
static int nfs_online_op(struct grp_pub *g, void *slot)
{
	(void)g;
	(void)slot;
	return 0;
}

/* Requests on the thread pool may still use the exports after the group
 * has gone offline: they go with the last of those requests. */
static void nfs_release_op(void *slot)
{
	nfs_group_close(slot);
}

/* A reload with other exports: open them beside the old ones (which may
 * fail, changing nothing), then swap between requests. */
static int nfs_reconf_prepare_op(struct grp_pub *g, void *slot, const struct cfg_cluster *c,
				 const struct cfg_group *gc, void **prep)
{
	*prep = NULL;
	if (!slot || !rl_exports_differ(g->cfg, gc))
		return 0;
	return nfs_group_reopen(slot, c, gc, (struct nfs_group **)prep);
}

static void nfs_reconf_commit_op(void **slot, void *prep)
{
	nfs_group_swap((struct nfs_group **)slot, prep);
}

static void nfs_reconf_drop_op(void *prep)
{
	nfs_group_close(prep);
}

/*
 * "open_handles": the group's open-handle cache (docs/status.md), in the
 * two steps of every protocol's status part (group/gslot.h): the counters
 * copied on the loop, the object built from the copy on a pool thread.
 * No list of the clients' making here, so list_max is not used.
 */
static int nfs_status_snap_op(const struct grp_pub *g, const void *slot, size_t list_max,
			      void **snap)
{
	const struct nfs_group *ng = slot;
	struct ohc_stats *st;

	(void)g;
	(void)list_max;
	*snap = NULL;
	if (!ng || !ng->ohc)
		return 0;       /* no cache: no "open_handles" */
	st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	ohc_get_stats(ng->ohc, st);
	*snap = st;
	return 0;
}

static void nfs_status_render_op(const void *snap, struct json_object *o)
{
	const struct ohc_stats *st = snap;
	struct json_object *c;

	if (!st)
		return;
	c = json_object_new_object();
	if (!c)
		return;
	json_object_object_add(c, "entries", json_object_new_int64((int64_t)st->entries));
	json_object_object_add(c, "limit", json_object_new_int64((int64_t)st->limit));
	json_object_object_add(c, "hits", json_object_new_int64((int64_t)st->hits));
	json_object_object_add(c, "misses", json_object_new_int64((int64_t)st->misses));
	json_object_object_add(c, "evictions", json_object_new_int64((int64_t)st->evictions));
	json_object_object_add(c, "drops", json_object_new_int64((int64_t)st->drops));
	json_object_object_add(c, "pressure_evictions",
			       json_object_new_int64((int64_t)st->pressure_evictions));
	json_object_object_add(c, "data_fds", json_object_new_int64((int64_t)st->data_fds));
	json_object_object_add(c, "data_opens", json_object_new_int64((int64_t)st->data_opens));
	json_object_object_add(c, "data_hits", json_object_new_int64((int64_t)st->data_hits));
	json_object_object_add(o, "open_handles", c);
}

static void nfs_status_free_op(void *snap)
{
	free(snap);
}

const struct grp_proto_ops nfs_group_ops = {
	.name = "nfs",
	.status_snap = nfs_status_snap_op,
	.status_render = nfs_status_render_op,
	.status_free = nfs_status_free_op,
	.open = nfs_open_op,
	.online = nfs_online_op,
	.release = nfs_release_op,
	.reconf_prepare = nfs_reconf_prepare_op,
	.reconf_commit = nfs_reconf_commit_op,
	.reconf_drop = nfs_reconf_drop_op,
};

/* ---- mount list ------------------------------------------------------- */

int nfs_mounts_add(struct nfs_group *ng, const char *host, const char *dir)
{
	struct nfs_mount_ent *e;
	int rc = 0;

	pthread_mutex_lock(&ng->mnt_lock);
	for (size_t i = 0; i < ng->nmounts; i++) {
		if (strcmp(ng->mounts[i].host, host) == 0 &&
		    strcmp(ng->mounts[i].dir, dir) == 0)
			goto out;
	}
	rc = -ENOSPC;
	if (ng->nmounts == NFS_MOUNTLIST_MAX)
		goto out;
	rc = -ENOMEM;
	if (ng->nmounts == ng->mounts_cap) {
		size_t cap = ng->mounts_cap ? ng->mounts_cap * 2 : 16;

		e = realloc(ng->mounts, cap * sizeof(*e));
		if (!e)
			goto out;
		ng->mounts = e;
		ng->mounts_cap = cap;
	}
	e = &ng->mounts[ng->nmounts];
	e->dir = strdup(dir);
	if (!e->dir)
		goto out;
	snprintf(e->host, sizeof(e->host), "%s", host);
	ng->nmounts++;
	rc = 1;
out:
	pthread_mutex_unlock(&ng->mnt_lock);
	return rc;
}

/* Remove the entries matching @host and @dir; NULL matches anything. */
static void nfs_mounts_remove(struct nfs_group *ng, const char *host, const char *dir)
{
	size_t j = 0;

	pthread_mutex_lock(&ng->mnt_lock);
	for (size_t i = 0; i < ng->nmounts; i++) {
		struct nfs_mount_ent *e = &ng->mounts[i];

		if ((!host || strcmp(e->host, host) == 0) &&
		    (!dir || strcmp(e->dir, dir) == 0)) {
			free(e->dir);
			continue;
		}
		ng->mounts[j++] = *e;
	}
	ng->nmounts = j;
	pthread_mutex_unlock(&ng->mnt_lock);
}

void nfs_mounts_del(struct nfs_group *ng, const char *host, const char *dir)
{
	nfs_mounts_remove(ng, host, dir);
}

void nfs_mounts_del_host(struct nfs_group *ng, const char *host)
{
	nfs_mounts_remove(ng, host, NULL);
}
