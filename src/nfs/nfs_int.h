/*
 * nfs_int.h - state shared by the files of src/nfs (not a public API).
 *
 * struct nfs_group is one service group's NFS/MOUNT state; see nfs.h for
 * its life cycle.  Field tags say what protects each field:
 *   [I] immutable after nfs_group_open()   [M] mnt_lock   [A] atomic
 */
#ifndef SGNFS_NFS_INT_H
#define SGNFS_NFS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nfs/nfs.h"
#include "sfile.h"

/*
 * Outcomes that are not errno values, returned negated by internal helpers
 * like any -errno.  Their values are the nfsstat3 codes (all above 10000,
 * far outside the errno range), so the one errno-to-status function passes
 * them through unchanged.
 */
#define NFSE_BADHANDLE   10001
#define NFSE_NOT_SYNC    10002
#define NFSE_BAD_COOKIE  10003
#define NFSE_NOTSUPP     10004
#define NFSE_TOOSMALL    10005
#define NFSE_SERVERFAULT 10006
#define NFSE_BADTYPE     10007
#define NFSE_JUKEBOX     10008

/* The group's private state directory at the root of its first export
 * (client list, NSM state, lease, journal).  Clients never see it. */
#define NFS_STATE_DIR SF_STATE_DIR

/* At most this many (client, path) pairs in a group's mount list: DUMP is
 * informational, and an unbounded list would let clients grow our memory. */
#define NFS_MOUNTLIST_MAX 1024

struct nfs_exp;
struct ohc;

struct nfs_mount_ent {
	char host[64];                 /* client address, as rpc_addr_str() */
	char *dir;                     /* path the client mounted, malloc'ed */
};

struct nfs_group {
	atomic_uint refs;                  /* [A] opener + one per running handler */
	const struct cfg_cluster *cluster; /* [I] */
	const struct cfg_group *cfg;       /* [I] */
	struct nfs_exp *exports;           /* [I] nexports entries, config order */
	size_t nexports;                   /* [I] */
	uint8_t verf[8];                   /* [I] write verifier of this start */
	struct ohc *ohc;                   /* [I] open-handle cache (ohc.h, own lock); NULL: off */
	pthread_mutex_t mnt_lock;
	struct nfs_mount_ent *mounts;      /* [M] */
	size_t nmounts, mounts_cap;        /* [M] */
};

/* Take a reference for a handler; NULL-safe (returns NULL). */
struct nfs_group *nfs_group_get(struct nfs_group *ng);
/* Drop a reference; the last one frees the group. */
void nfs_group_put(struct nfs_group *ng);

/* The nfs_group of the group a request arrived on (req->svc_ctx), with a
 * reference the caller drops with nfs_group_put(); NULL if none. */
struct nfs_group *nfs_group_of_req(const struct rpc_req *req);

/*
 * Mount list (MOUNT's DUMP/UMNT/UMNTALL).  Thread-safe.  nfs_mounts_add:
 * 1 added, 0 listed already, -ENOSPC list full, -ENOMEM.  The list is
 * advisory (DUMP), so a failure never refuses the mount.
 */
int nfs_mounts_add(struct nfs_group *ng, const char *host, const char *dir);
void nfs_mounts_del(struct nfs_group *ng, const char *host, const char *dir);
void nfs_mounts_del_host(struct nfs_group *ng, const char *host);

#endif
