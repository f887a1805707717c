/*
 * nfs3_int.h - helpers shared by the NFSv3 procedure files (nfs3_svc.c,
 * nfs3_dir.c); implemented in nfs3_util.c.
 *
 * Every handler follows one pattern:
 *
 *	nfs3_begin(&c, req)            reference the request's nfs_group
 *	nfs3_get(&c, &args->fh, ...)   as root: decode, export + client checks,
 *	                               open_by_handle_at, subtree check
 *	nfs3_user(&c)                  this pool thread now acts as the client
 *	... the operation ...          the kernel checks permissions
 *	nfs3_root(&c)
 *	fill res (attributes, wcc)
 *	res->status = nfs3_stat(rc)    the one errno -> nfsstat3 mapping
 *	nfs3_end(&c)                   back to root for sure, drop the reference
 *
 * Internal helpers return 0 or -errno (or -NFSE_*, nfs_int.h); only the
 * handler turns that into a protocol status.
 */
#ifndef SGNFS_NFS3_INT_H
#define SGNFS_NFS3_INT_H

#include <stdbool.h>
#include <sys/stat.h>

#include "nfs/export.h"
#include "nfs/nfs_int.h"
#include "nfs3.h"
#include "rpc/rpc.h"

/* Transfer sizes (FSINFO).  Over TCP the XDR bound NFS3_MAXDATA; over UDP a
 * reply must fit one datagram, so 32 KiB as classic servers do. */
#define NFS3_IOMAX_TCP NFS3_MAXDATA
#define NFS3_IOMAX_UDP 32768u

struct nfs3_ctx {
	struct rpc_req *req;
	struct nfs_group *ng;      /* referenced for the handler's duration */
	struct nfs_exp *exp;       /* export of the first handle resolved */
	struct nfs_ident id;       /* the client as the filesystem sees it */
	bool as_user;              /* this thread currently runs as id */
};

struct ohc_ent;

struct nfs3_obj {
	struct nfs_exp *exp;
	int fd;                    /* O_PATH descriptor; -1 = none.  Owned, or
				    * the cache's while ce holds its entry */
	struct ohc_ent *ce;        /* referenced open-handle cache entry, or NULL */
	struct stat st;            /* as of resolution or the last nfs3_obj_stat */
};

#define NFS3_OBJ_INIT { .exp = NULL, .fd = -1, .ce = NULL }

/* nfs3_get() flags */
#define NFS3_MODIFY 0x1u           /* the procedure modifies: refuse on ro */

int nfs3_begin(struct nfs3_ctx *c, struct rpc_req *req);
void nfs3_end(struct nfs3_ctx *c);

/*
 * Resolve @fh for this request into @o (as root).  The first handle fixes
 * the export and the identity; a second handle of another export is
 * -EXDEV.  A client the export refuses gets -EACCES (logged), a modifying
 * procedure on a read-only export -EROFS.  Close @o with nfs3_obj_close().
 * A handle in the group's open-handle cache (ohc.h) is served from it; an
 * object whose last link is gone is -ESTALE (and leaves the cache).
 */
int nfs3_get(struct nfs3_ctx *c, const nfs_fh3 *fh, unsigned flags, struct nfs3_obj *o);

/*
 * On the loop: @fh's attributes into @st from the open-handle cache,
 * without blocking: decode, export and client checks, a hit, fstat.  0 on
 * a hit whose object still has a link; -EAGAIN in every other case (a
 * miss, a refusal, a stale entry), which the caller answers by the usual
 * path on the thread pool (nfs3_get), where refusals are logged.
 */
int nfs3_loop_stat(struct nfs_group *ng, const struct rpc_req *req, const nfs_fh3 *fh,
		   struct nfs_exp **exp, struct stat *st);

void nfs3_obj_close(struct nfs3_obj *o);
/* Refresh o->st. */
int nfs3_obj_stat(struct nfs3_obj *o);

/* Switch this thread's filesystem identity to the client's / back to the
 * daemon's.  Both are idempotent; nfs3_end() always returns to root. */
int nfs3_user(struct nfs3_ctx *c);
void nfs3_root(struct nfs3_ctx *c);

/* Reopen an O_PATH object for I/O through /proc/self/fd, under the current
 * identity (so the kernel checks permissions).  Returns a fd or -errno. */
int nfs3_reopen(const struct nfs3_obj *o, int flags);
/*
 * nfs3_reopen() as the client, with the owner override every NFS server
 * applies to data access: the owner of a file may read and write it even
 * if its mode says otherwise, because the client already checked the mode
 * when the file was opened (a file created 0444 by open(O_CREAT|O_WRONLY)
 * must still take its first writes).  Call as user.
 */
int nfs3_open_data(struct nfs3_ctx *c, const struct nfs3_obj *o, int flags);

/*
 * A descriptor of @o for reading or writing (@write), as the client (call
 * as user; returns as user): the permission check is the one open(2) as
 * the client would make (with nfs3_open_data's owner override), then a
 * cached descriptor of @o's open-handle cache entry (ohc_data_fd) serves
 * (*@owned false: valid until nfs3_obj_close), else a reopen (*@owned
 * true: the caller closes it).  A read-only export's object is -EROFS for
 * writing.  0 or -errno.
 */
int nfs3_data_open(struct nfs3_ctx *c, struct nfs3_obj *o, bool write, int *fd, bool *owned);

/* The one mapping of internal results to NFSv3 status codes. */
nfsstat3 nfs3_stat(int rc);

/* Attributes. */
void nfs3_fattr(const struct nfs_exp *e, const struct stat *st, fattr3 *out);
/* Fresh post-op attributes of @o (none if it is not open or fstat fails). */
void nfs3_post(struct nfs3_obj *o, post_op_attr *out);
/* wcc_data: @pre (may be NULL: no pre-op attributes) and fresh post-op. */
void nfs3_wcc(struct nfs3_obj *o, const struct stat *pre, wcc_data *out);

/*
 * A handle for @name in @dirfd ("" = dirfd itself) of export @e, into @out
 * (data malloc'ed, freed with the result).  -EXDEV if the object is on
 * another mount than the export (we do not cross mount points).
 */
int nfs3_fh_out(const struct nfs_exp *e, int dirfd, const char *name, nfs_fh3 *out);
/* nfs3_fh_out() that also returns the handle's key (@k). */
int nfs3_fh_out_key(const struct nfs_exp *e, int dirfd, const char *name, nfs_fh3 *out,
		    struct fh_key *k);
/* Put @o (a LOOKUP result with key @k, still linked) into the group's
 * open-handle cache; @o then uses the cache's descriptor. */
void nfs3_obj_cache(struct nfs3_ctx *c, const struct fh_key *k, struct nfs3_obj *o);

/* A name a client may use: -EINVAL (empty, has '/') or 0.  @create: also
 * refuse "." and ".." (-EEXIST), which name existing entries. */
int nfs3_name_check(const char *name, bool create);
/* True if @name in directory @dir is the group's private state directory. */
bool nfs3_name_hidden(const struct nfs3_obj *dir, const char *name);

/*
 * Apply @a to @o as the client (call as user), in the order that makes the
 * result what was asked: owner, mode, size, times.  Everything is validated
 * before anything changes.  @skip_mode: the mode was set at creation.
 */
int nfs3_apply_sattr(struct nfs3_ctx *c, struct nfs3_obj *o, const sattr3 *a,
		     bool skip_mode);

/* Requested ACCESS3_* bits -> granted bits for @o, as the client. */
uint32_t nfs3_access_bits(struct nfs3_ctx *c, const struct nfs3_obj *o, uint32_t want);

/* Largest READ/WRITE this request may carry: the XDR bound over TCP, one
 * datagram over UDP, never more than the configured record limit allows. */
uint32_t nfs3_iomax(const struct nfs3_ctx *c);

/*
 * Write-behind: an UNSTABLE WRITE of at least NFS3_WRITE_BEHIND_MIN bytes
 * starts the writeback of what it wrote (sync_file_range, WRITE only: no
 * wait, nothing made durable), as the kernel's own flusher would later,
 * so the disk works while the client sends the rest and the COMMIT that
 * follows finds little left to flush.  Small writes are left in the page
 * cache (a page rewritten soon would be written twice).  True: start it.
 */
#define NFS3_WRITE_BEHIND_MIN (256u << 10)

/* WRITE's argument decoder (nfs3_svc.c): the data in an iobuf.h buffer,
 * released by XDR_FREE. */
bool_t nfs3_xdr_write_args(XDR *x, WRITE3args *a);
bool nfs3_write_behind(stable_how stable, uint32_t written);

/* The procedures of nfs3_dir.c, for the table in nfs3_svc.c. */
enum rpc_disposition nfs3_lookup(struct rpc_req *req);
enum rpc_disposition nfs3_create(struct rpc_req *req);
enum rpc_disposition nfs3_mkdir(struct rpc_req *req);
enum rpc_disposition nfs3_symlink(struct rpc_req *req);
enum rpc_disposition nfs3_mknod(struct rpc_req *req);
enum rpc_disposition nfs3_remove(struct rpc_req *req);
enum rpc_disposition nfs3_rmdir(struct rpc_req *req);
enum rpc_disposition nfs3_rename(struct rpc_req *req);
enum rpc_disposition nfs3_link(struct rpc_req *req);
enum rpc_disposition nfs3_readdir(struct rpc_req *req);
enum rpc_disposition nfs3_readdirplus(struct rpc_req *req);

#endif
