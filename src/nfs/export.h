/*
 * export.h - an export at run time and its access rules.
 *
 * struct nfs_exp pairs an [export] section of the configuration with the
 * open root directory it names.  Everything in it is fixed once the group's
 * exports are open, except the refusal-log rate limiter (atomics), so any
 * thread may read it.
 *
 * Access rules, applied to every MOUNT and NFS request (a file handle is
 * not a capability: the address that presents it must be allowed too):
 *   - the client address must match one of the export's `clients` networks;
 *   - with `secure = yes` the source port must be below 1024;
 *   - `access = ro` turns every modifying procedure into NFS3ERR_ROFS;
 *   - `squash = root` maps uid 0 / gid 0 to anonuid / anongid, `squash =
 *     all` maps every user, `squash = none` keeps them; AUTH_NONE requests
 *     are always anonymous.
 */
#ifndef SGNFS_NFS_EXPORT_H
#define SGNFS_NFS_EXPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "nfs/fh.h"
#include "rpc/rpc.h"

struct cfg_export;

struct nfs_exp {
	const struct cfg_export *cfg;    /* immutable configuration */
	int root_fd;                     /* O_RDONLY|O_DIRECTORY; the mount_fd of
					  * open_by_handle_at (O_PATH will not do) */
	char *root_path;                 /* realpath(3) of cfg->path, malloc'ed */
	size_t root_len;
	dev_t dev;                       /* of the root directory */
	ino_t ino;
	int mount_id;                    /* of the root's mount */
	bool hide_state;                 /* the root holds the group's .sgnfs/ */
	uint8_t root_fh[FH_SIZE_MAX];    /* handle of the root (MNT's answer) */
	uint32_t root_fh_len;
	atomic_llong refusal_logged_at;  /* monotonic seconds of the last refusal line */
	atomic_uint refusals_quiet;      /* refusals not logged since */
};

/* A client's identity after squashing: what the filesystem sees. */
struct nfs_ident {
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[RPC_AUTH_MAX_GIDS];
};

/*
 * Open export @cfg: open and realpath its root, take the root's handle.
 * @hide_state: this root holds the group's .sgnfs/ directory.  Returns 0
 * (release with exp_close()) or -errno, after logging why.
 */
int exp_open(const struct cfg_export *cfg, bool hide_state, struct nfs_exp *out);
/* Release what exp_open() took.  Idempotent. */
void exp_close(struct nfs_exp *e);

enum exp_verdict {
	EXP_ALLOWED = 0,
	EXP_DENY_ADDRESS,                /* not in `clients` */
	EXP_DENY_PORT,                   /* `secure` and a port >= 1024 */
};

/* May @peer use export @cfg at all?  Pure: no logging. */
enum exp_verdict exp_check_client(const struct cfg_export *cfg,
				  const struct sockaddr_storage *peer);
const char *exp_verdict_str(enum exp_verdict v);

/*
 * Log that @peer was refused @what on export @e of group @group.  At most
 * one line per export per second; the lines in between are counted and the
 * count reported with the next line.  Thread-safe.
 */
void exp_log_refusal(struct nfs_exp *e, const char *group,
		     const struct sockaddr_storage *peer, const char *what);

/* Apply the export's squash rules to @cred; the result is what the
 * filesystem will see.  Pure. */
void exp_map_cred(const struct cfg_export *cfg, const struct rpc_cred *cred,
		  struct nfs_ident *out);

#endif
