/*
 * nfs.h - MOUNT v3 and NFSv3 over local directories: the module's public
 * interface.
 *
 * Per service group the module keeps a struct nfs_group: the group's
 * exports opened at run time (root directory descriptors, the handle of
 * each root), the group's write verifier and its mount list.  It is the
 * group's GRP_PROTO_NFS slot (group/gslot.h, nfs_group_ops): opened with
 * the group, released once the group is offline and its last request has
 * finished; requests find it through req->svc_ctx, the group of the
 * listener the request arrived on.
 *
 * Threading: MOUNT and NFS procedures that touch the disk run on libuv's
 * thread pool (.blocking).  Everything they read in nfs_group is immutable
 * after nfs_group_open() except the mount list (mutex) and the reference
 * count (atomic).
 */
#ifndef SGNFS_NFS_H
#define SGNFS_NFS_H

#include "rpc/rpc.h"

struct cfg_cluster;
struct cfg_group;
struct nfs_group;
struct grp_proto_ops;

/* How NFS and MOUNT plug into every service group (GRP_PROTO_NFS). */
extern const struct grp_proto_ops nfs_group_ops;

/* Program tables for rpc_svc_register().  MOUNT answers versions 1, 2 and 3
 * (MNT only in version 3); NFS answers version 3 only. */
extern const struct rpc_prog mount_prog;
extern const struct rpc_prog nfs3_prog;

/*
 * Open the exports of group @gc (all of them, or nothing): each root is
 * opened, resolved with realpath(3) and given its file handle, and a fresh
 * write verifier is drawn, so that clients of a restarted or moved group
 * resend the writes they have not seen committed.
 * @c and @gc must outlive the nfs_group.  Returns 0 and *out (one
 * reference, owned by the caller: drop it with nfs_group_close()), or
 * -errno (the failing export is logged).
 */
int nfs_group_open(const struct cfg_cluster *c, const struct cfg_group *gc,
		   struct nfs_group **out);

/*
 * Drop the opener's reference.  The exports are closed when the last
 * reference goes, so a handler still running on the thread pool (it holds
 * its own reference) finishes safely.  NULL is ignored.
 */
void nfs_group_close(struct nfs_group *ng);

/*
 * Reload: open the exports of @gc (the group's new configuration) as
 * nfs_group_open() does, keeping @old's write verifier and mount list.
 * @old is not changed.  0 and *out, or -errno (nothing is left open).
 */
int nfs_group_reopen(struct nfs_group *old, const struct cfg_cluster *c,
		     const struct cfg_group *gc, struct nfs_group **out);
/*
 * Make @next the group's NFS state in *@slot (struct sg_group's nfs) and
 * drop the opener's reference to the old one: requests that already hold
 * it finish on it, every later request sees @next.  Loop thread only.
 */
void nfs_group_swap(struct nfs_group **slot, struct nfs_group *next);

#endif
