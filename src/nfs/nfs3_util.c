/*
 * nfs3_util.c - what every NFSv3 procedure needs: the request context,
 * handle resolution with the export rules, the per-thread identity switch,
 * attributes, and the errno -> nfsstat3 mapping.
 *
 * Identity.  sgnfsd runs as root; open_by_handle_at needs that.  The
 * operation itself must run with the client's permissions, so after
 * resolving the handle the pool thread switches its *filesystem* identity
 * with the raw system calls setfsuid/setfsgid/setgroups.  In Linux those
 * change only the calling thread's credentials; glibc's setgroups() and
 * setuid() wrappers would broadcast the change to every thread of the
 * process, including the event loop.  A non-zero fsuid also clears the
 * filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN,
 * CAP_FSETID ...), and setting fsuid 0 again restores them.  Capabilities
 * outside that set stay, which is why MKNOD checks device creation itself
 * (CAP_MKNOD).  The thread always returns to root before it goes back to
 * its pool: other handlers run on the same threads.
 */
#include "nfs/nfs3_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "config/config.h"
#include "log.h"
#include "priv.h"
#include "nfs/fh.h"
#include "nfs/ohc.h"

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
/* 32-bit x86 and arm have 16-bit legacy calls; the *32 ones are the real
 * ones there.  Elsewhere the plain names take 32-bit ids. */
#ifdef SYS_setfsuid32
#define NFS3_SYS_SETFSUID  SYS_setfsuid32
#define NFS3_SYS_SETFSGID  SYS_setfsgid32
#define NFS3_SYS_SETGROUPS SYS_setgroups32
#else
#define NFS3_SYS_SETFSUID  SYS_setfsuid
#define NFS3_SYS_SETFSGID  SYS_setfsgid
#define NFS3_SYS_SETGROUPS SYS_setgroups
#endif

/* The daemon's own filesystem identity, restored after every request. */
static struct {
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[64];
} nfs3_self;
static pthread_once_t nfs3_self_once = PTHREAD_ONCE_INIT;
static atomic_bool nfs3_switch_failed_logged;

static void nfs3_self_init(void)
{
	nfs3_self.fsuid = geteuid();
	nfs3_self.fsgid = getegid();
	nfs3_self.ngroups = getgroups(64, nfs3_self.groups);
	if (nfs3_self.ngroups < 0)
		nfs3_self.ngroups = 0;
}

int nfs3_begin(struct nfs3_ctx *c, struct rpc_req *req)
{
	memset(c, 0, sizeof(*c));
	c->req = req;
	pthread_once(&nfs3_self_once, nfs3_self_init);
	c->ng = nfs_group_of_req(req);
	return c->ng ? 0 : -NFSE_SERVERFAULT;
}

void nfs3_end(struct nfs3_ctx *c)
{
	nfs3_root(c);
	nfs_group_put(c->ng);
	c->ng = NULL;
}

int nfs3_user(struct nfs3_ctx *c)
{
	gid_t gids[RPC_AUTH_MAX_GIDS];

	if (c->as_user)
		return 0;
	for (uint32_t i = 0; i < c->id.ngids; i++)
		gids[i] = c->id.gids[i];
	if (syscall(NFS3_SYS_SETGROUPS, (size_t)c->id.ngids, gids) < 0)
		goto fail;
	syscall(NFS3_SYS_SETFSGID, (gid_t)c->id.gid);
	syscall(NFS3_SYS_SETFSUID, (uid_t)c->id.uid);
	/* setfsuid/setfsgid report no errors; (id_t)-1 is never a valid id,
	 * so passing it reads the current value back. */
	if ((uid_t)syscall(NFS3_SYS_SETFSUID, (uid_t)-1) != c->id.uid ||
	    (gid_t)syscall(NFS3_SYS_SETFSGID, (gid_t)-1) != c->id.gid) {
		c->as_user = true;     /* partially switched: undo all of it */
		nfs3_root(c);
		goto fail;
	}
	/* The kernel dropped the filesystem capabilities with the fsuid;
	 * CAP_SYS_RESOURCE it keeps: drop it too for anyone but root, or a
	 * squashed client fills ext4's root-reserved blocks (knfsd's rule). */
	if (c->id.uid != 0 && priv_resource(false) < 0) {
		c->as_user = true;
		nfs3_root(c);
		goto fail;
	}
	c->as_user = true;
	return 0;

fail:
	if (!atomic_exchange(&nfs3_switch_failed_logged, true))
		log_err("cannot switch to a client's identity (uid %u): %s; "
			"sgnfsd must run as root", c->id.uid, strerror(errno ? errno : EPERM));
	return -NFSE_SERVERFAULT;
}

void nfs3_root(struct nfs3_ctx *c)
{
	if (!c->as_user)
		return;
	syscall(NFS3_SYS_SETFSUID, nfs3_self.fsuid);
	syscall(NFS3_SYS_SETFSGID, nfs3_self.fsgid);
	syscall(NFS3_SYS_SETGROUPS, (size_t)nfs3_self.ngroups, nfs3_self.groups);
	/* A pool thread that kept a client's identity would run the next
	 * task, possibly another module's, as that client.  Restoring our own
	 * ids cannot fail for a root process; if it ever does, stop. */
	if ((uid_t)syscall(NFS3_SYS_SETFSUID, (uid_t)-1) != nfs3_self.fsuid ||
	    priv_resource(true) < 0) {
		log_err("cannot restore the daemon's filesystem identity; aborting");
		abort();
	}
	c->as_user = false;
}

/* ---- handles ---------------------------------------------------------- */

/* Resolve @k in @e as root: from the group's open-handle cache when it
 * holds it, else open_by_handle_at (fh_open) and cache the result. */
static int nfs3_resolve(struct nfs_group *ng, struct nfs_exp *e, const struct fh_key *k,
			struct nfs3_obj *o)
{
	struct ohc_ent *ce = ohc_get(ng->ohc, k);
	int fd, rc;

	if (ce) {
		/* The descriptor pins the inode even after its last link went
		 * (removed by a client or on the server): such an object is
		 * stale, as knfsd and a fresh open_by_handle_at would say. */
		if (fstat(ohc_fd(ce), &o->st) == 0 && o->st.st_nlink > 0) {
			o->fd = ohc_fd(ce);
			o->ce = ce;
			return 0;
		}
		ohc_drop(ce);
		ohc_release(ce);
		return -ESTALE;
	}
	rc = fh_open(e, k, &fd, &o->st);
	if (rc == -EMFILE || rc == -ENFILE) {
		/* Our own cache is the likeliest holder of descriptors. */
		if (ohc_pressure() > 0)
			rc = fh_open(e, k, &fd, &o->st);
	}
	if (rc < 0)
		return rc;
	if (o->st.st_nlink == 0) {
		/* Unlinked but still open somewhere (by a local process): no
		 * name leads to it any more, so no client may reach it. */
		close(fd);
		return -ESTALE;
	}
	o->fd = fd;
	ce = ohc_add(ng->ohc, k, fd);
	if (ce) {
		o->fd = ohc_fd(ce);
		o->ce = ce;
	}
	return 0;
}

/* Decode @fh and find its export among @ng's; check the client.  The
 * refusals are logged only when @log (the loop's try is silent: the pool
 * path that follows logs them). */
static int nfs3_check_handle(struct nfs_group *ng, const struct rpc_req *req, const nfs_fh3 *fh,
			     bool log, struct fh_key *k, struct nfs_exp **ep)
{
	struct nfs_exp *e;
	enum exp_verdict v;
	int rc;

	rc = fh_decode(fh->data.data_val, fh->data.data_len, k);
	if (rc == -FH_EMAC) {
		if (log)
			fh_log_badmac(ng->cfg->name, &req->peer, req->pd ? req->pd->name : "NFS");
		return -NFSE_BADHANDLE;
	}
	if (rc < 0)
		return rc;
	/* Only the exports of the group this address serves: a handle of
	 * another group's export, even one this node serves, is stale here. */
	e = fh_find_export(ng->exports, ng->nexports, k->fsid);
	if (!e)
		return -ESTALE;
	v = exp_check_client(e->cfg, &req->peer);
	if (v != EXP_ALLOWED) {
		char what[96];

		if (log) {
			snprintf(what, sizeof(what), "NFS %s: %s",
				 req->pd ? req->pd->name : "?", exp_verdict_str(v));
			exp_log_refusal(e, ng->cfg->name, &req->peer, what);
		}
		return -EACCES;
	}
	*ep = e;
	return 0;
}

int nfs3_get(struct nfs3_ctx *c, const nfs_fh3 *fh, unsigned flags, struct nfs3_obj *o)
{
	struct fh_key k;
	struct nfs_exp *e;
	int rc;

	o->exp = NULL;
	o->fd = -1;
	o->ce = NULL;
	rc = nfs3_check_handle(c->ng, c->req, fh, true, &k, &e);
	if (rc < 0)
		return rc;
	if (c->exp && c->exp != e)
		return -EXDEV;
	if ((flags & NFS3_MODIFY) && !e->cfg->rw)
		return -EROFS;
	if (!c->exp) {
		c->exp = e;
		exp_map_cred(e->cfg, &c->req->cred, &c->id);
	}
	/* open_by_handle_at needs CAP_DAC_READ_SEARCH: resolve as root. */
	if (c->as_user) {
		nfs3_root(c);
		rc = nfs3_resolve(c->ng, e, &k, o);
		int urc = nfs3_user(c);
		if (rc == 0 && urc < 0) {
			nfs3_obj_close(o);
			rc = urc;
		}
	} else {
		rc = nfs3_resolve(c->ng, e, &k, o);
	}
	if (rc < 0)
		return rc;
	o->exp = e;
	return 0;
}

int nfs3_loop_stat(struct nfs_group *ng, const struct rpc_req *req, const nfs_fh3 *fh,
		   struct nfs_exp **exp, struct stat *st)
{
	struct ohc_ent *ce;
	struct fh_key k;
	struct nfs_exp *e;
	int rc;

	if (!ng->ohc)
		return -EAGAIN;
	rc = nfs3_check_handle(ng, req, fh, false, &k, &e);
	if (rc < 0)
		return -EAGAIN;
	ce = ohc_try(ng->ohc, &k);
	if (!ce)
		return -EAGAIN;
	/* fstat of an open inode reads memory only (no disk, no lock a slow
	 * operation holds), so it may run on the loop. */
	rc = fstat(ohc_fd(ce), st) == 0 && st->st_nlink > 0 ? 0 : -EAGAIN;
	ohc_release(ce);
	if (rc == 0)
		*exp = e;
	return rc;
}

void nfs3_obj_cache(struct nfs3_ctx *c, const struct fh_key *k, struct nfs3_obj *o)
{
	struct ohc_ent *ce;

	if (o->ce || o->fd < 0 || o->st.st_nlink == 0)
		return;
	ce = ohc_add(c->ng->ohc, k, o->fd);
	if (ce) {
		o->fd = ohc_fd(ce);
		o->ce = ce;
	}
}

void nfs3_obj_close(struct nfs3_obj *o)
{
	if (o->ce)
		ohc_release(o->ce);
	else if (o->fd >= 0)
		close(o->fd);
	o->ce = NULL;
	o->fd = -1;
}

int nfs3_obj_stat(struct nfs3_obj *o)
{
	if (o->fd < 0)
		return -EBADF;
	return fstat(o->fd, &o->st) < 0 ? -errno : 0;
}

int nfs3_reopen(const struct nfs3_obj *o, int flags)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd);
	fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && ohc_pressure() > 0)
		fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
	return fd < 0 ? -errno : fd;
}

int nfs3_open_data(struct nfs3_ctx *c, const struct nfs3_obj *o, int flags)
{
	int fd = nfs3_reopen(o, flags);
	int rc;

	if (fd != -EACCES || !c->as_user || !S_ISREG(o->st.st_mode) ||
	    o->st.st_uid != c->id.uid)
		return fd;
	nfs3_root(c);
	fd = nfs3_reopen(o, flags);
	rc = nfs3_user(c);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* May the client (this thread, as user) open @o for @want (R_OK or W_OK)
 * as open(2) would let it?  0, -errno as open(2) would fail, or -EAGAIN:
 * "cannot tell here", the caller reopens the object the usual way. */
static int nfs3_data_check(struct nfs3_ctx *c, const struct nfs3_obj *o, int want)
{
	struct statx sx;

	if (syscall(SYS_faccessat2, o->fd, "", want, AT_EACCESS | AT_EMPTY_PATH) < 0) {
		/* Before Linux 5.8; or the owner override, which
		 * nfs3_open_data applies (and which stays rare). */
		if (errno == ENOSYS ||
		    (errno == EACCES && S_ISREG(o->st.st_mode) && o->st.st_uid == c->id.uid))
			return -EAGAIN;
		return -errno;
	}
	/* access(2) checks what inode_permission checks (mode, ACLs,
	 * immutable, read-only mount); open(2) also refuses to write an
	 * append-only file without O_APPEND.  Let the reopen say so. */
	if (want == W_OK &&
	    (statx(o->fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, 0, &sx) < 0 ||
	     (sx.stx_attributes & STATX_ATTR_APPEND)))
		return -EAGAIN;
	return 0;
}

int nfs3_data_open(struct nfs3_ctx *c, struct nfs3_obj *o, bool write, int *fd, bool *owned)
{
	int rc;

	*owned = false;
	/* A read-only export never gets a descriptor open for writing, in
	 * the cache or out of it (nfs3_get refused NFS3_MODIFY already). */
	if (write && !o->exp->cfg->rw)
		return -EROFS;
	if (o->ce) {
		/* The cached descriptors are shared by every client: the
		 * check a fresh open would make is made here, per call, as
		 * this client. */
		rc = nfs3_data_check(c, o, write ? W_OK : R_OK);
		if (rc < 0 && rc != -EAGAIN)
			return rc;
		if (rc == 0) {
			*fd = ohc_data_peek(o->ce, write);
			if (*fd >= 0)
				return 0;
			/* First use: open it as root (the check is done),
			 * so that it serves the next client too. */
			nfs3_root(c);
			*fd = ohc_data_fd(o->ce, write);
			rc = nfs3_user(c);
			if (rc < 0)
				return rc;
			if (*fd >= 0)
				return 0;
		}
	}
	*fd = nfs3_open_data(c, o, write ? O_WRONLY : O_RDONLY);
	if (*fd < 0)
		return *fd;
	*owned = true;
	return 0;
}

int nfs3_fh_out(const struct nfs_exp *e, int dirfd, const char *name, nfs_fh3 *out)
{
	struct fh_key k;

	return nfs3_fh_out_key(e, dirfd, name, out, &k);
}

int nfs3_fh_out_key(const struct nfs_exp *e, int dirfd, const char *name, nfs_fh3 *out,
		    struct fh_key *kp)
{
	struct fh_key k;
	int mid, rc;
	uint8_t *buf;

	rc = fh_key_at(e->cfg->fsid, dirfd, name, &k, &mid);
	*kp = k;
	if (rc < 0)
		return rc;
	if (mid != e->mount_id)
		return -EXDEV;
	buf = malloc(FH_SIZE_MAX);
	if (!buf)
		return -ENOMEM;
	rc = fh_encode(&k, buf, FH_SIZE_MAX);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	free(out->data.data_val);
	out->data.data_val = (char *)buf;
	out->data.data_len = (u_int)rc;
	return 0;
}

/* ---- names ------------------------------------------------------------ */

int nfs3_name_check(const char *name, bool create)
{
	if (!name || !name[0] || strchr(name, '/'))
		return -EINVAL;
	if (strlen(name) > NFS3_NAMEMAX)
		return -ENAMETOOLONG;
	if (create && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
		return -EEXIST;
	return 0;
}

bool nfs3_name_hidden(const struct nfs3_obj *dir, const char *name)
{
	const struct nfs_exp *e = dir->exp;

	return e && e->hide_state && dir->st.st_ino == e->ino &&
	       dir->st.st_dev == e->dev && strcmp(name, NFS_STATE_DIR) == 0;
}

/* ---- status ----------------------------------------------------------- */

nfsstat3 nfs3_stat(int rc)
{
	int e = rc < 0 ? -rc : rc;

	if (e >= NFSE_BADHANDLE && e <= NFSE_JUKEBOX)
		return (nfsstat3)e;
	switch (e) {
	case 0:            return NFS3_OK;
	case EPERM:        return NFS3ERR_PERM;
	case ENOENT:       return NFS3ERR_NOENT;
	case EIO:          return NFS3ERR_IO;
	case ENXIO:        return NFS3ERR_NXIO;
	case EACCES:       return NFS3ERR_ACCES;
	case ETXTBSY:      return NFS3ERR_ACCES;
	case EEXIST:       return NFS3ERR_EXIST;
	case EXDEV:        return NFS3ERR_XDEV;
	case ENODEV:       return NFS3ERR_NODEV;
	case ENOTDIR:      return NFS3ERR_NOTDIR;
	case EISDIR:       return NFS3ERR_ISDIR;
	case EINVAL:       return NFS3ERR_INVAL;
	case ELOOP:        return NFS3ERR_INVAL;   /* a symlink where a directory was needed */
	case EFBIG:        return NFS3ERR_FBIG;
	case EOVERFLOW:    return NFS3ERR_FBIG;
	case ENOSPC:       return NFS3ERR_NOSPC;
	case EROFS:        return NFS3ERR_ROFS;
	case EMLINK:       return NFS3ERR_MLINK;
	case ENAMETOOLONG: return NFS3ERR_NAMETOOLONG;
	case ENOTEMPTY:    return NFS3ERR_NOTEMPTY;
	case EDQUOT:       return NFS3ERR_DQUOT;
	case ESTALE:       return NFS3ERR_STALE;
	case EOPNOTSUPP:   return NFS3ERR_NOTSUPP;
	case ENOSYS:       return NFS3ERR_NOTSUPP;
	/* Transient shortages: JUKEBOX makes the client retry later instead
	 * of failing the application's call. */
	case EAGAIN:       return NFS3ERR_JUKEBOX;
	case EMFILE:       return NFS3ERR_JUKEBOX;
	case ENFILE:       return NFS3ERR_JUKEBOX;
	case ENOMEM:       return NFS3ERR_JUKEBOX;
	case EBADF:        return NFS3ERR_SERVERFAULT;
	case EFAULT:       return NFS3ERR_SERVERFAULT;
	default:           return NFS3ERR_IO;
	}
}

/* ---- attributes ------------------------------------------------------- */

static ftype3 nfs3_ftype(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR:  return NF3DIR;
	case S_IFBLK:  return NF3BLK;
	case S_IFCHR:  return NF3CHR;
	case S_IFLNK:  return NF3LNK;
	case S_IFSOCK: return NF3SOCK;
	case S_IFIFO:  return NF3FIFO;
	default:       return NF3REG;
	}
}

static void nfs3_time(const struct timespec *ts, nfstime3 *out)
{
	/* nfstime3 is unsigned 32-bit seconds: 1970..2106, as every v3 server. */
	out->seconds = (unsigned int)ts->tv_sec;
	out->nseconds = (unsigned int)ts->tv_nsec;
}

void nfs3_fattr(const struct nfs_exp *e, const struct stat *st, fattr3 *f)
{
	f->type = nfs3_ftype(st->st_mode);
	f->mode = st->st_mode & 07777;
	f->nlink = st->st_nlink > UINT32_MAX ? UINT32_MAX : (unsigned int)st->st_nlink;
	f->uid = st->st_uid;
	f->gid = st->st_gid;
	f->size = (size3)st->st_size;
	f->used = (size3)st->st_blocks * 512u;
	f->rdev.specdata1 = major(st->st_rdev);
	f->rdev.specdata2 = minor(st->st_rdev);
	/* The configured fsid, not st_dev: it is the same on every node, so a
	 * client sees no new filesystem after a failover. */
	f->fsid = e->cfg->fsid;
	f->fileid = st->st_ino;
	nfs3_time(&st->st_atim, &f->atime);
	nfs3_time(&st->st_mtim, &f->mtime);
	nfs3_time(&st->st_ctim, &f->ctime);
}

void nfs3_post(struct nfs3_obj *o, post_op_attr *out)
{
	if (!o->exp || nfs3_obj_stat(o) < 0) {
		out->attributes_follow = FALSE;
		return;
	}
	out->attributes_follow = TRUE;
	nfs3_fattr(o->exp, &o->st, &out->post_op_attr_u.attributes);
}

void nfs3_wcc(struct nfs3_obj *o, const struct stat *pre, wcc_data *out)
{
	if (pre) {
		wcc_attr *w = &out->before.pre_op_attr_u.attributes;

		out->before.attributes_follow = TRUE;
		w->size = (size3)pre->st_size;
		nfs3_time(&pre->st_mtim, &w->mtime);
		nfs3_time(&pre->st_ctim, &w->ctime);
	} else {
		out->before.attributes_follow = FALSE;
	}
	nfs3_post(o, &out->after);
}

/* ---- SETATTR and the attributes of new objects ------------------------ */

static int nfs3_time_check(time_how how, const nfstime3 *t)
{
	if (how == SET_TO_CLIENT_TIME && t->nseconds >= 1000000000u)
		return -EINVAL;
	if (how != DONT_CHANGE && how != SET_TO_SERVER_TIME && how != SET_TO_CLIENT_TIME)
		return -EINVAL;
	return 0;
}

static void nfs3_timespec(time_how how, const nfstime3 *t, struct timespec *ts)
{
	ts->tv_sec = 0;
	if (how == SET_TO_CLIENT_TIME) {
		ts->tv_sec = (time_t)t->seconds;
		ts->tv_nsec = (long)t->nseconds;
	} else if (how == SET_TO_SERVER_TIME) {
		ts->tv_nsec = UTIME_NOW;
	} else {
		ts->tv_nsec = UTIME_OMIT;
	}
}

int nfs3_apply_sattr(struct nfs3_ctx *c, struct nfs3_obj *o, const sattr3 *a,
		     bool skip_mode)
{
	char path[32];
	struct timespec ts[2];
	int rc;

	/* Validate everything first: a refused SETATTR changes nothing. */
	rc = nfs3_time_check(a->atime.set_it, &a->atime.set_atime_u.atime);
	if (rc == 0)
		rc = nfs3_time_check(a->mtime.set_it, &a->mtime.set_mtime_u.mtime);
	if (rc < 0)
		return rc;
	if (a->size.set_it) {
		if (S_ISDIR(o->st.st_mode))
			return -EISDIR;
		if (!S_ISREG(o->st.st_mode))
			return -EINVAL;
		if (a->size.set_size3_u.size > (size3)INT64_MAX)
			return -EFBIG;
	}

	/* Owner first: chown clears set-id bits, so a mode set in the same
	 * call must come after it to stick. */
	if (a->uid.set_it || a->gid.set_it) {
		uid_t u = a->uid.set_it ? (uid_t)a->uid.set_uid3_u.uid : (uid_t)-1;
		gid_t g = a->gid.set_it ? (gid_t)a->gid.set_gid3_u.gid : (gid_t)-1;

		if (fchownat(o->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	/* Linux has no modes on symlinks (lchmod fails); like knfsd, we
	 * ignore a mode sent for one. */
	if (a->mode.set_it && !skip_mode && !S_ISLNK(o->st.st_mode)) {
		/* chmod(2) through /proc: fchmod refuses O_PATH descriptors. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd);
		if (chmod(path, a->mode.set_mode3_u.mode & 07777) < 0)
			return -errno;
	}
	/* Size before times: truncation sets mtime, an explicit time wins. */
	if (a->size.set_it) {
		/* Through the entry's write descriptor, with the per-call
		 * check as this client a fresh open would make
		 * (nfs3_data_open); the truncate itself runs as the client. */
		bool had = o->ce && ohc_data_peek(o->ce, true) >= 0, owned;
		int fd;

		rc = nfs3_data_open(c, o, true, &fd, &owned);
		if (rc < 0)
			return rc;
		rc = ftruncate(fd, (off_t)a->size.set_size3_u.size) < 0 ? -errno : 0;
		if (owned)
			close(fd);
		else if (!had)
			/* Opened for this call only: a SETATTR alone never
			 * leaves the file open for writing (ETXTBSY for a
			 * local exec); while WRITEs hold it, it is reused. */
			(void)ohc_data_close_idle(o->ce, true);
		if (rc < 0)
			return rc;
	}
	if (a->atime.set_it != DONT_CHANGE || a->mtime.set_it != DONT_CHANGE) {
		nfs3_timespec(a->atime.set_it, &a->atime.set_atime_u.atime, &ts[0]);
		nfs3_timespec(a->mtime.set_it, &a->mtime.set_mtime_u.mtime, &ts[1]);
		if (utimensat(o->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

/* ---- ACCESS ----------------------------------------------------------- */

/* The classic owner/group/other test, for kernels without faccessat2
 * (before 5.8).  It ignores ACLs, which faccessat2 honours. */
static bool nfs3_mode_allows(const struct stat *st, const struct nfs_ident *id, int want)
{
	unsigned bits;
	bool member = st->st_gid == id->gid;

	if (id->uid == 0) {
		/* root may execute only what someone may execute. */
		return !(want & X_OK) || S_ISDIR(st->st_mode) || (st->st_mode & 0111);
	}
	for (uint32_t i = 0; i < id->ngids && !member; i++)
		member = st->st_gid == id->gids[i];
	if (st->st_uid == id->uid)
		bits = (st->st_mode >> 6) & 7;
	else if (member)
		bits = (st->st_mode >> 3) & 7;
	else
		bits = st->st_mode & 7;
	return ((int)bits & want) == want;
}

static bool nfs3_may(struct nfs3_ctx *c, const struct nfs3_obj *o, int want)
{
	long rc = syscall(SYS_faccessat2, o->fd, "", want, AT_EACCESS | AT_EMPTY_PATH);

	if (rc == 0)
		return true;
	if (errno == ENOSYS)
		return nfs3_mode_allows(&o->st, &c->id, want);
	return false;
}

uint32_t nfs3_access_bits(struct nfs3_ctx *c, const struct nfs3_obj *o, uint32_t want)
{
	bool dir = S_ISDIR(o->st.st_mode);
	uint32_t got = 0;

	if (!o->exp->cfg->rw)
		want &= ~(uint32_t)(ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
	if ((want & ACCESS3_READ) && nfs3_may(c, o, R_OK))
		got |= ACCESS3_READ;
	if (dir) {
		/* Changing a directory's entries needs write and search. */
		if ((want & ACCESS3_LOOKUP) && nfs3_may(c, o, X_OK))
			got |= ACCESS3_LOOKUP;
		if ((want & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE)) &&
		    nfs3_may(c, o, W_OK | X_OK))
			got |= want & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
	} else {
		/* LOOKUP and DELETE mean nothing for a non-directory (RFC
		 * 1813 3.3.4); deleting it is a right on its directory. */
		if ((want & (ACCESS3_MODIFY | ACCESS3_EXTEND)) && nfs3_may(c, o, W_OK))
			got |= want & (ACCESS3_MODIFY | ACCESS3_EXTEND);
		if ((want & ACCESS3_EXECUTE) && nfs3_may(c, o, X_OK))
			got |= ACCESS3_EXECUTE;
	}
	return got;
}

uint32_t nfs3_iomax(const struct nfs3_ctx *c)
{
	uint32_t io = c->req->is_tcp ? NFS3_IOMAX_TCP : NFS3_IOMAX_UDP;
	const struct cfg_cluster *cl = c->ng ? c->ng->cluster : NULL;

	/* A WRITE must fit the transport's record limit with its RPC header
	 * and arguments (a few hundred bytes; 4 KiB leaves room), or the
	 * transport closes the connection instead of answering. */
	/* >= : 8192 is the smallest max_record allowed and must clamp too
	 * (to 4 KiB); with > it advertised 1 MiB, and a client's first
	 * large WRITE closed its connection. */
	if (cl && cl->max_record >= 8192 && cl->max_record - 4096 < io)
		io = (cl->max_record - 4096) & ~4095u;
	return io;
}
