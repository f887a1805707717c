/*
 * hkey.h - the cluster's file handle key file.
 *
 * Every file handle sgnfs gives out carries a MAC (nfs/fh.h) computed with
 * a secret that every node of the cluster shares, so that a handle issued
 * by one node verifies on the node a group fails over to.  The secret
 * lives in the file named by `[cluster] handle_key`, installed on every
 * node (or on storage they all see).  Format, one key per line, text:
 *
 *     # comments and blank lines are ignored
 *     current = <64 hex digits>      ; 32 bytes: issues and verifies
 *     previous = <64 hex digits>     ; optional: verifies only
 *
 * Rotation (`sgnfsctl keygen --rotate FILE`) writes a new `current` and
 * keeps the old one as `previous`, so handles clients already hold keep
 * working until the next rotation.  The file must be a regular file owned
 * by the user sgnfsd runs as (root) with no permission bits for group or
 * others (0600 or 0400): it is refused otherwise, because whoever reads it
 * can forge handles.
 */
#ifndef SGNFS_HKEY_H
#define SGNFS_HKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HK_KEY_SIZE  32
#define HK_FILE_MAX  4096     /* a key file is a few lines */

struct hk_set {
	uint8_t cur[HK_KEY_SIZE];
	uint8_t prev[HK_KEY_SIZE];
	bool has_prev;
};

/*
 * Read and check key file @path into @out.  On failure returns -errno and
 * writes a one-line reason (no trailing newline) to @why (@whysz bytes):
 * -ENOENT, -EPERM (owner or mode wrong), -EINVAL (syntax), or the
 * state-file errors of sfile.h (symlink, not a regular file, too big).
 */
int hk_load(const char *path, struct hk_set *out, char *why, size_t whysz);

/*
 * Create key file @path with a fresh random key (fails with -EEXIST if it
 * exists), or with @rotate, replace it atomically with a fresh `current`
 * and the old `current` as `previous` (the old `previous` is dropped).
 * The file is written 0600.  Returns 0 or -errno, with @why as hk_load.
 */
int hk_generate(const char *path, bool rotate, char *why, size_t whysz);

#endif
