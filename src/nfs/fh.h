/*
 * fh.h - NFSv3 file handles: the wire layout and its resolution.
 *
 * A handle names a file by the configured, cluster-wide export fsid plus
 * the kernel's own handle for the inode (name_to_handle_at(2)).  Neither
 * depends on the process or the node, so the same directory tree served
 * by another sgnfsd after a failover accepts every handle its clients
 * hold: no ESTALE after a move.
 *
 * Wire layout (FH_HDR_SIZE + klen + FH_MAC_SIZE bytes, at most
 * NFS3_FHSIZE = 64):
 *   byte 0      FH_VERSION (2)
 *   byte 1      klen: length of the kernel handle, 1..FH_KHANDLE_MAX (38)
 *   bytes 2-5   export fsid, big-endian
 *   bytes 6-9   kernel handle_type, big-endian (signed)
 *   bytes 10-   the kernel handle, klen bytes
 *   last 16     MAC: HMAC-SHA256 of every byte before it, truncated to 128
 *               bits, keyed with the cluster's handle key (hkey.h)
 * Multi-byte fields are big-endian so that nodes of different byte order
 * agree; the kernel handle itself is opaque and filesystem-defined.
 * Decoding is strict: the total length must be exactly FH_HDR_SIZE + klen +
 * FH_MAC_SIZE, and the MAC must verify with the current or the previous
 * key (a handle that verified is remembered, per thread, until the keys
 * change: fh.c, fh_vcache).
 *
 * Why a MAC.  The kernel handle is not a secret and not a capability: ext4
 * takes generation 0 as "any generation", so inode numbers can be guessed,
 * and a real handle can be relabelled with another export's fsid.  The MAC
 * binds the fsid to the kernel handle and proves that this cluster issued
 * the pair, from a lookup inside that export; a handle that fails it is
 * NFS3ERR_BADHANDLE.  fh_open() still checks that the object lies inside
 * the export (defence in depth, and files moved between exports).
 * Version-1 handles (no MAC, before 0.2) are refused as BADHANDLE: clients
 * must remount after the upgrade.
 */
#ifndef SGNFS_NFS_FH_H
#define SGNFS_NFS_FH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "tbucket.h"

#define FH_VERSION     2
#define FH_SIZE_MAX    64
#define FH_HDR_SIZE    10
#define FH_MAC_SIZE    16
#define FH_KHANDLE_MAX (FH_SIZE_MAX - FH_HDR_SIZE - FH_MAC_SIZE)

/* fh_decode(): well formed, but the MAC verifies with no key we have. */
#define FH_EMAC        EKEYREJECTED

struct nfs_exp;
struct hk_set;

/*
 * Install the keys every handle is signed (current) and verified (current,
 * then previous) with.  Thread-safe; takes effect for the next handle.
 * Until the first call every fh_encode() fails with -ENOKEY and every
 * fh_decode() with -FH_EMAC.
 */
void fh_keys_install(const struct hk_set *ks);

/*
 * Load the key file @path (hkey.h) and install it.  0, or -errno after
 * logging why; on failure the keys installed before stay in use.
 */
int fh_keys_load(const char *path);

/* A handle taken apart. */
struct fh_key {
	uint32_t fsid;
	int32_t ktype;                 /* struct file_handle.handle_type */
	uint32_t klen;                 /* struct file_handle.handle_bytes */
	uint8_t kh[FH_KHANDLE_MAX];
};

/*
 * Write @k into @buf (@bufsz bytes) and sign it.  Returns the handle's
 * length, or -EINVAL (klen 0) / -EOVERFLOW (klen > FH_KHANDLE_MAX or @buf
 * too small) / -ENOKEY (no key installed).
 */
int fh_encode(const struct fh_key *k, uint8_t *buf, size_t bufsz);

/*
 * Parse @len bytes at @buf into @out: 0, -NFSE_BADHANDLE if malformed, or
 * -FH_EMAC if well formed but the MAC fails (a forgery, a handle from
 * another cluster, or one signed with a key rotated out).  The caller logs
 * the latter and answers BADHANDLE.
 */
int fh_decode(const void *buf, size_t len, struct fh_key *out);

/*
 * fh_decode()'s checks alone, with only the export's id out: for callers
 * that key by the handle's bytes (NLM) and need no kernel handle.
 */
int fh_verify(const void *buf, size_t len, uint32_t *fsid);

/*
 * The kernel handle of @name relative to @dirfd (AT_EMPTY_PATH semantics
 * when @name is "", never following a final symlink), tagged with @fsid.
 * *@mount_id (may be NULL) receives the mount the object lives on.
 * Returns 0, -EOVERFLOW if the kernel handle does not fit our layout, or
 * -errno.
 */
int fh_key_at(uint32_t fsid, int dirfd, const char *name, struct fh_key *out,
	      int *mount_id);

/*
 * Log that a handle failed its MAC (fh_decode() said -FH_EMAC): group
 * @group, client @peer (may be NULL when the caller does not know it),
 * protocol and procedure @what.  Rate-limited by its own buckets
 * (fh_badmac_take): per source address FH_BADMAC_HOST_BURST lines, then
 * FH_BADMAC_HOST_RATE a second, and node-wide FH_BADMAC_ALL_BURST, then
 * FH_BADMAC_ALL_RATE a second; the lines left out are counted into the
 * next one.  Its buckets are its own, so a forger neither floods the log
 * nor silences another host's bad-MAC line or any other rate-limited line.
 * Thread-safe.
 */
void fh_log_badmac(const char *group, const struct sockaddr_storage *peer, const char *what);

#define FH_BADMAC_HOSTS      256
#define FH_BADMAC_HOST_BURST 3
#define FH_BADMAC_HOST_RATE  0.2
#define FH_BADMAC_ALL_BURST  20
#define FH_BADMAC_ALL_RATE   2.0

/* The limiter behind fh_log_badmac; its own instance in the tests.
 * Initialise with { .mu = PTHREAD_MUTEX_INITIALIZER }; the host table is
 * allocated at the first take. */
struct fh_badmac_lim {
	pthread_mutex_t mu;
	bool ready, have_hosts;
	struct tb_table hosts;  /* per source address */
	struct tb_bucket all;   /* node-wide */
	uint64_t quiet;         /* lines left out since the last one logged */
};
/*
 * May a bad-MAC line from @peer (NULL: unknown, only the node-wide bucket)
 * be logged at @now_ms?  If so, *@quiet gets the lines left out since the
 * last one logged.
 */
bool fh_badmac_take(struct fh_badmac_lim *l, const struct sockaddr_storage *peer,
		    uint64_t now_ms, uint64_t *quiet);

/* The export among @exps[0..n) whose fsid is @fsid, or NULL. */
struct nfs_exp *fh_find_export(struct nfs_exp *exps, size_t n, uint32_t fsid);

/*
 * True if @path, what the kernel reports for a descriptor (readlink of
 * /proc/self/fd/N), lies inside export root @root (@root_len bytes, no
 * trailing '/' unless it is "/").  @is_dir: the object is a directory.
 * A non-directory the kernel could not connect to a path ("/", the name of
 * a disconnected dentry) is accepted: see fh.c for why.
 */
bool fh_path_in_export(const char *root, size_t root_len, const char *path,
		       bool is_dir);

/*
 * Open the object @k names inside export @e: open_by_handle_at(2) with the
 * export root as mount descriptor, O_PATH (no side effect on devices and
 * FIFOs), then the subtree check.  On success *@fd is an O_PATH descriptor
 * the caller closes and *@st its attributes.  Errors: -ESTALE (no such
 * file, or not inside @e), -NFSE_BADHANDLE (the kernel rejects the handle's
 * shape), other -errno.  Needs CAP_DAC_READ_SEARCH: call as root.
 */
int fh_open(const struct nfs_exp *e, const struct fh_key *k, int *fd, struct stat *st);

#endif
