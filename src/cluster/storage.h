/*
 * storage.h - a group is only ever served from the storage it was set up
 * on.
 *
 * `sgnfsctl init GROUP` writes an identity into the group's state
 * directory (<first export>/.sgnfs/identity), on the group's own storage:
 * which cluster and group the storage belongs to, and which filesystem it
 * is (statfs type and fsid).  Before a node takes a group (the lease, or a
 * managed start) it checks that identity: missing means the storage is not
 * there (an empty mount point: the LUN is mounted on another node, or not
 * at all) or was never initialised; another group's, another cluster's or
 * another filesystem's means the wrong storage is mounted.  In all these
 * cases the group is not served here, and status says why.  Nothing else
 * ever creates the state directory on its own.
 *
 * On-disk format of `identity` (text, one "key value" per line, in this
 * order; readers ignore keys they do not know):
 *   sgnfs-identity 1        format version
 *   cluster NAME            [cluster] name
 *   group NAME              the group's name
 *   fstype 0xHEX            statfs f_type of the first export at init
 *   fsid HEX                statfs f_fsid (both words, 16 hex digits);
 *                           0 when the filesystem reports none
 *   created SECONDS         Unix time of the init (for people)
 * Written atomically and read with checks by src/common/sfile.
 */
#ifndef SGNFS_STORAGE_H
#define SGNFS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#define STG_IDENTITY "identity"

/*
 * Check that @root (the group's first export) holds the identity of group
 * @group of cluster @cluster, on the filesystem it was initialised on.
 * 0, or -errno with @why filled (for status and logs): -ENOENT no identity
 * (storage absent or not initialised), -EXDEV another filesystem than at
 * init, -EBADF another group's or cluster's, -EINVAL unreadable identity.
 */
int stg_check(const char *root, const char *cluster, const char *group, char *why,
	      size_t whylen);

/*
 * Initialise @root for @group: create <root>/.sgnfs and write the
 * identity.  If a valid identity of this group is already there, nothing
 * is written and 0 is returned with *@existed set.  An identity of another
 * group or filesystem is only replaced with @force.  0 or -errno with @why.
 */
int stg_init(const char *root, const char *cluster, const char *group, bool force,
	     bool *existed, char *why, size_t whylen);

#endif
