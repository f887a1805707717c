/*
 * nfs3_dir.c - NFSv3 procedures on directories: LOOKUP, CREATE, MKDIR,
 * SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK, READDIR, READDIRPLUS.
 *
 * Names are resolved by the kernel relative to the directory's O_PATH
 * descriptor (openat/mkdirat/unlinkat/renameat ...) while the thread runs
 * as the client, so search, write, sticky-bit and protected-link rules are
 * the kernel's own.  Final symlinks are never followed.  At an export's
 * root ".." is the root itself, and the group's .sgnfs/ state directory
 * does not exist for clients.
 *
 * Creation.  The process umask applies to every object we create, but the
 * client's mode must be exact, so a mode the umask trimmed is set again
 * with chmod.  A mode the client did not send means 0 (as in knfsd).
 * Exclusive CREATE (RFC 1813 3.3.8) stores the client's 8-byte verifier in
 * the new file's atime and mtime seconds (31 bits of each half, so a
 * filesystem limited to 2038 stores it unchanged); a retransmitted CREATE
 * finding a regular, empty file with those times is the same request and
 * succeeds.  The file is created 0600; the client sets the real attributes
 * with the SETATTR the RFC makes it send next.
 *
 * Directory cookies are the filesystem's own directory offsets (d_off, the
 * position after an entry), which ext4, xfs, btrfs and tmpfs keep stable
 * while the directory changes and across remounts and nodes: so any cookie
 * a client holds stays valid, and the cookie verifier need only name the
 * directory (its inode number).  A reply is at most NFS3_MAXDIRCOUNT bytes,
 * which also bounds the XDR encoder's recursion over the entry list.
 */
#include "nfs/nfs3_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sysmacros.h>

#include "config/config.h"
#include "nfs/ohc.h"

/* Open what @name in @dir is now, without following a final symlink. */
static int nfs3_child(const struct nfs3_obj *dir, const char *name, struct nfs3_obj *out)
{
	out->exp = dir->exp;
	out->fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	/* Out of descriptors: the open-handle cache holds most of ours. */
	if (out->fd < 0 && (errno == EMFILE || errno == ENFILE) && ohc_pressure() > 0)
		out->fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (out->fd < 0)
		return -errno;
	if (fstat(out->fd, &out->st) < 0) {
		int rc = -errno;

		nfs3_obj_close(out);
		return rc;
	}
	return 0;
}

/* The handle and attributes of a new object, when it can be had. */
static void nfs3_new_result(struct nfs3_obj *o, post_op_fh3 *fh, post_op_attr *attr)
{
	fh->handle_follows = FALSE;
	attr->attributes_follow = FALSE;
	if (o->fd < 0)
		return;
	if (nfs3_fh_out(o->exp, o->fd, "", &fh->post_op_fh3_u.handle) == 0)
		fh->handle_follows = TRUE;
	nfs3_post(o, attr);
}

/* Undo what the umask took from @want (see the file comment).  As user. */
static int nfs3_fix_mode(struct nfs3_obj *o, mode_t want)
{
	char path[32];

	want &= 07777;
	/* A new directory inherits set-gid from its parent (BSD group
	 * semantics); keep it, as a local mkdir would. */
	if (S_ISDIR(o->st.st_mode))
		want |= o->st.st_mode & S_ISGID;
	if ((o->st.st_mode & 07777) == want || S_ISLNK(o->st.st_mode))
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd);
	if (chmod(path, want) < 0)
		return -errno;
	return nfs3_obj_stat(o);
}

/*
 * Resolve the directory of a name-based procedure: a directory of a
 * writable export (@flags), a usable @name (@create: "." and ".." are
 * taken), never the hidden state directory.
 */
static int nfs3_get_dir(struct nfs3_ctx *c, const diropargs3 *d, unsigned flags,
			bool create, struct nfs3_obj *dir)
{
	int rc = nfs3_get(c, &d->dir, flags, dir);

	if (rc < 0)
		return rc;
	if (!S_ISDIR(dir->st.st_mode))
		return -ENOTDIR;
	rc = nfs3_name_check(d->name, create);
	if (rc < 0)
		return rc;
	if (nfs3_name_hidden(dir, d->name))
		return -EACCES;
	return 0;
}

/* ---- LOOKUP ----------------------------------------------------------- */

static int nfs3_do_lookup(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name,
			  struct nfs3_obj *child, nfs_fh3 *fh)
{
	bool at_root = dir->st.st_ino == dir->exp->ino && dir->st.st_dev == dir->exp->dev;
	struct fh_key k;
	int rc;

	if (!name[0] || nfs3_name_hidden(dir, name))
		return -ENOENT;
	rc = nfs3_name_check(name, false);
	if (rc < 0)
		return rc;
	/* The export's root is the top of the client's world. */
	if (at_root && strcmp(name, "..") == 0)
		name = ".";
	rc = nfs3_user(c);
	if (rc < 0)
		return rc;
	rc = nfs3_child(dir, name, child);
	nfs3_root(c);
	if (rc < 0)
		return rc;
	rc = nfs3_fh_out_key(dir->exp, child->fd, "", fh, &k);
	/* A mount point inside the export: we do not cross into another
	 * filesystem, whose handles we could not resolve. */
	if (rc == -EXDEV)
		return -EACCES;
	/* A name found from a resolved directory of this export, on its
	 * mount: as checked as a handle resolution, so the GETATTR, ACCESS
	 * and READ that follow a LOOKUP find it cached. */
	if (rc == 0)
		nfs3_obj_cache(c, &k, child);
	return rc;
}

enum rpc_disposition nfs3_lookup(struct rpc_req *req)
{
	LOOKUP3args *a = req->args;
	LOOKUP3res *r = req->res;
	struct nfs3_obj dir = NFS3_OBJ_INIT, child = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->what.dir, 0, &dir);
	if (rc == 0 && !S_ISDIR(dir.st.st_mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = nfs3_do_lookup(&c, &dir, a->what.name, &child,
				    &r->LOOKUP3res_u.resok.object);
	if (rc == 0) {
		LOOKUP3resok *ok = &r->LOOKUP3res_u.resok;

		nfs3_post(&child, &ok->obj_attributes);
		nfs3_post(&dir, &ok->dir_attributes);
	} else {
		/* The union's resok arm may hold a handle from a failed step. */
		free(r->LOOKUP3res_u.resok.object.data.data_val);
		memset(&r->LOOKUP3res_u, 0, sizeof(r->LOOKUP3res_u));
		nfs3_post(&dir, &r->LOOKUP3res_u.resfail.dir_attributes);
	}
	r->status = nfs3_stat(rc);
	nfs3_obj_close(&child);
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- CREATE ----------------------------------------------------------- */

/* The verifier halves as they are stored in atime and mtime seconds. */
static void nfs3_verf_times(const createverf3 v, time_t *at, time_t *mt)
{
	uint32_t a = (uint32_t)(uint8_t)v[0] << 24 | (uint32_t)(uint8_t)v[1] << 16 |
		     (uint32_t)(uint8_t)v[2] << 8 | (uint8_t)v[3];
	uint32_t m = (uint32_t)(uint8_t)v[4] << 24 | (uint32_t)(uint8_t)v[5] << 16 |
		     (uint32_t)(uint8_t)v[6] << 8 | (uint8_t)v[7];

	*at = (time_t)(a & 0x7fffffffu);
	*mt = (time_t)(m & 0x7fffffffu);
}

static int nfs3_create_new(struct nfs3_obj *dir, const char *name, mode_t mode,
			   struct nfs3_obj *o)
{
	/* O_RDONLY: a new file is opened whatever its mode; we never read. */
	o->exp = dir->exp;
	o->fd = openat(dir->fd, name, O_CREAT | O_EXCL | O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		       mode & 07777);
	if (o->fd < 0)
		return -errno;
	return nfs3_obj_stat(o);
}

/* The body of CREATE, as the client.  @o receives the file. */
static int nfs3_do_create(struct nfs3_ctx *c, struct nfs3_obj *dir, const CREATE3args *a,
			  struct nfs3_obj *o)
{
	const char *name = a->where.name;
	const sattr3 *sa = &a->how.createhow3_u.obj_attributes;
	mode_t mode = 0;
	int rc;

	switch (a->how.mode) {
	case UNCHECKED:
	case GUARDED:
		if (sa->mode.set_it)
			mode = sa->mode.set_mode3_u.mode & 07777;
		rc = nfs3_create_new(dir, name, mode, o);
		if (rc == -EEXIST && a->how.mode == UNCHECKED) {
			sattr3 only_size;

			/* UNCHECKED on an existing file truncates it if asked
			 * and keeps everything else (RFC 1813 3.3.8; knfsd).
			 * Anything but a regular file is a conflict. */
			rc = nfs3_child(dir, name, o);
			if (rc < 0)
				return rc;
			if (!S_ISREG(o->st.st_mode))
				return -EEXIST;
			memset(&only_size, 0, sizeof(only_size));
			only_size.size = sa->size;
			return nfs3_apply_sattr(c, o, &only_size, true);
		}
		if (rc < 0)
			return rc;
		rc = nfs3_fix_mode(o, mode);
		if (rc < 0)
			return rc;
		return nfs3_apply_sattr(c, o, sa, true);
	case EXCLUSIVE: {
		struct timespec ts[2] = { { 0, 0 }, { 0, 0 } };

		nfs3_verf_times(a->how.createhow3_u.verf, &ts[0].tv_sec, &ts[1].tv_sec);
		rc = nfs3_create_new(dir, name, 0600, o);
		if (rc == -EEXIST) {
			rc = nfs3_child(dir, name, o);
			if (rc < 0)
				return rc;
			/* Our own earlier reply got lost: same verifier. */
			if (S_ISREG(o->st.st_mode) && o->st.st_size == 0 &&
			    o->st.st_atim.tv_sec == ts[0].tv_sec &&
			    o->st.st_mtim.tv_sec == ts[1].tv_sec)
				return 0;
			return -EEXIST;
		}
		if (rc < 0)
			return rc;
		rc = nfs3_fix_mode(o, 0600);
		if (rc == 0 && utimensat(o->fd, "", ts, AT_EMPTY_PATH) < 0)
			rc = -errno;
		return rc;
	}
	}
	return -EINVAL;
}

enum rpc_disposition nfs3_create(struct rpc_req *req)
{
	CREATE3args *a = req->args;
	CREATE3res *r = req->res;
	struct nfs3_obj dir = NFS3_OBJ_INIT, o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get_dir(&c, &a->where, NFS3_MODIFY, true, &dir);
	if (rc == 0) {
		pre = dir.st;
		have_pre = true;
		rc = nfs3_user(&c);
	}
	if (rc == 0)
		rc = nfs3_do_create(&c, &dir, a, &o);
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		CREATE3resok *ok = &r->CREATE3res_u.resok;

		nfs3_new_result(&o, &ok->obj, &ok->obj_attributes);
		nfs3_wcc(&dir, &pre, &ok->dir_wcc);
	} else {
		nfs3_wcc(&dir, have_pre ? &pre : NULL, &r->CREATE3res_u.resfail.dir_wcc);
	}
	nfs3_obj_close(&o);
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- MKDIR, SYMLINK, MKNOD -------------------------------------------- */

/* After making @name: open it, set the exact mode and the other
 * attributes.  As user. */
static int nfs3_finish_new(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name,
			   const sattr3 *sa, struct nfs3_obj *o)
{
	int rc = nfs3_child(dir, name, o);

	if (rc == 0)
		rc = nfs3_fix_mode(o, sa->mode.set_it ? sa->mode.set_mode3_u.mode : 0);
	if (rc == 0)
		rc = nfs3_apply_sattr(c, o, sa, true);
	return rc;
}

static mode_t nfs3_sattr_mode(const sattr3 *sa)
{
	return sa->mode.set_it ? (mode_t)(sa->mode.set_mode3_u.mode & 07777) : 0;
}

/* What MKDIR, SYMLINK and MKNOD share: resolve, make, describe. */
struct nfs3_mk {
	const diropargs3 *where;
	const sattr3 *sa;
	int (*make)(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name, const void *arg);
	const void *arg;
	/* results */
	post_op_fh3 *fh;
	post_op_attr *attr;
	wcc_data *ok_wcc, *fail_wcc;
};

static nfsstat3 nfs3_make_object(struct rpc_req *req, struct nfs3_mk *mk)
{
	struct nfs3_obj dir = NFS3_OBJ_INIT, o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get_dir(&c, mk->where, NFS3_MODIFY, true, &dir);
	if (rc == 0) {
		pre = dir.st;
		have_pre = true;
		rc = nfs3_user(&c);
	}
	if (rc == 0)
		rc = mk->make(&c, &dir, mk->where->name, mk->arg);
	if (rc == 0)
		rc = nfs3_finish_new(&c, &dir, mk->where->name, mk->sa, &o);
	nfs3_root(&c);
	if (rc == 0) {
		nfs3_new_result(&o, mk->fh, mk->attr);
		nfs3_wcc(&dir, &pre, mk->ok_wcc);
	} else {
		nfs3_wcc(&dir, have_pre ? &pre : NULL, mk->fail_wcc);
	}
	nfs3_obj_close(&o);
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return nfs3_stat(rc);
}

static int nfs3_make_dir(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name,
			 const void *arg)
{
	(void)c;
	return mkdirat(dir->fd, name, nfs3_sattr_mode(arg)) < 0 ? -errno : 0;
}

enum rpc_disposition nfs3_mkdir(struct rpc_req *req)
{
	MKDIR3args *a = req->args;
	MKDIR3res *r = req->res;
	struct nfs3_mk mk = {
		.where = &a->where, .sa = &a->attributes,
		.make = nfs3_make_dir, .arg = &a->attributes,
		.fh = &r->MKDIR3res_u.resok.obj,
		.attr = &r->MKDIR3res_u.resok.obj_attributes,
		.ok_wcc = &r->MKDIR3res_u.resok.dir_wcc,
		.fail_wcc = &r->MKDIR3res_u.resfail.dir_wcc,
	};

	r->status = nfs3_make_object(req, &mk);
	return RPC_DONE_REPLY;
}

static int nfs3_make_symlink(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name,
			     const void *arg)
{
	const char *target = arg;

	(void)c;
	if (!target || !target[0])
		return -EINVAL;
	return symlinkat(target, dir->fd, name) < 0 ? -errno : 0;
}

enum rpc_disposition nfs3_symlink(struct rpc_req *req)
{
	SYMLINK3args *a = req->args;
	SYMLINK3res *r = req->res;
	struct nfs3_mk mk = {
		.where = &a->where, .sa = &a->symlink.symlink_attributes,
		.make = nfs3_make_symlink, .arg = a->symlink.symlink_data,
		.fh = &r->SYMLINK3res_u.resok.obj,
		.attr = &r->SYMLINK3res_u.resok.obj_attributes,
		.ok_wcc = &r->SYMLINK3res_u.resok.dir_wcc,
		.fail_wcc = &r->SYMLINK3res_u.resfail.dir_wcc,
	};

	r->status = nfs3_make_object(req, &mk);
	return RPC_DONE_REPLY;
}

static int nfs3_make_node(struct nfs3_ctx *c, struct nfs3_obj *dir, const char *name,
			  const void *arg)
{
	const mknoddata3 *w = arg;
	const sattr3 *sa;
	mode_t type;
	dev_t dev = 0;

	switch (w->type) {
	case NF3CHR:
	case NF3BLK:
		/* Our thread keeps CAP_MKNOD whatever its fsuid (it is not a
		 * filesystem capability), so the rule that only root makes
		 * device nodes is enforced here. */
		if (c->id.uid != 0)
			return -EPERM;
		type = w->type == NF3CHR ? S_IFCHR : S_IFBLK;
		sa = &w->mknoddata3_u.device.dev_attributes;
		dev = makedev(w->mknoddata3_u.device.spec.specdata1,
			      w->mknoddata3_u.device.spec.specdata2);
		break;
	case NF3SOCK:
	case NF3FIFO:
		type = w->type == NF3SOCK ? S_IFSOCK : S_IFIFO;
		sa = &w->mknoddata3_u.pipe_attributes;
		break;
	default:
		return -NFSE_BADTYPE;
	}
	return mknodat(dir->fd, name, type | nfs3_sattr_mode(sa), dev) < 0 ? -errno : 0;
}

enum rpc_disposition nfs3_mknod(struct rpc_req *req)
{
	MKNOD3args *a = req->args;
	MKNOD3res *r = req->res;
	static const sattr3 none;
	const sattr3 *sa = &none;
	struct nfs3_mk mk = {
		.where = &a->where,
		.make = nfs3_make_node, .arg = &a->what,
		.fh = &r->MKNOD3res_u.resok.obj,
		.attr = &r->MKNOD3res_u.resok.obj_attributes,
		.ok_wcc = &r->MKNOD3res_u.resok.dir_wcc,
		.fail_wcc = &r->MKNOD3res_u.resfail.dir_wcc,
	};

	if (a->what.type == NF3CHR || a->what.type == NF3BLK)
		sa = &a->what.mknoddata3_u.device.dev_attributes;
	else if (a->what.type == NF3SOCK || a->what.type == NF3FIFO)
		sa = &a->what.mknoddata3_u.pipe_attributes;
	mk.sa = sa;
	r->status = nfs3_make_object(req, &mk);
	return RPC_DONE_REPLY;
}

/* ---- REMOVE, RMDIR ---------------------------------------------------- */

static nfsstat3 nfs3_unlink(struct rpc_req *req, const diropargs3 *d, int flags,
			    wcc_data *ok_wcc, wcc_data *fail_wcc)
{
	struct nfs3_obj dir = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	struct fh_key k;
	bool have_pre = false, have_key = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get_dir(&c, d, NFS3_MODIFY, false, &dir);
	if (rc == 0) {
		pre = dir.st;
		have_pre = true;
		rc = nfs3_user(&c);
	}
	if (rc == 0) {
		/* Its handle before the name goes; dropped from the cache
		 * once it is gone, so its space is freed now, not at eviction. */
		have_key = fh_key_at(dir.exp->cfg->fsid, dir.fd, d->name, &k, NULL) == 0;
		if (unlinkat(dir.fd, d->name, flags) < 0)
			rc = -errno;
	}
	nfs3_root(&c);
	if (rc == 0 && have_key)
		ohc_forget(c.ng->ohc, &k);
	nfs3_wcc(&dir, have_pre ? &pre : NULL, rc == 0 ? ok_wcc : fail_wcc);
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return nfs3_stat(rc);
}

enum rpc_disposition nfs3_remove(struct rpc_req *req)
{
	REMOVE3args *a = req->args;
	REMOVE3res *r = req->res;

	r->status = nfs3_unlink(req, &a->object, 0, &r->REMOVE3res_u.resok.dir_wcc,
				&r->REMOVE3res_u.resfail.dir_wcc);
	return RPC_DONE_REPLY;
}

enum rpc_disposition nfs3_rmdir(struct rpc_req *req)
{
	RMDIR3args *a = req->args;
	RMDIR3res *r = req->res;

	r->status = nfs3_unlink(req, &a->object, AT_REMOVEDIR, &r->RMDIR3res_u.resok.dir_wcc,
				&r->RMDIR3res_u.resfail.dir_wcc);
	return RPC_DONE_REPLY;
}

/* ---- RENAME, LINK ----------------------------------------------------- */

static bool nfs3_is_dots(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

enum rpc_disposition nfs3_rename(struct rpc_req *req)
{
	RENAME3args *a = req->args;
	RENAME3res *r = req->res;
	struct nfs3_obj from = NFS3_OBJ_INIT, to = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre_from, pre_to;
	struct fh_key kf, kt;
	bool have_from = false, have_to = false, have_kf = false, have_kt = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get_dir(&c, &a->from, NFS3_MODIFY, false, &from);
	if (rc == 0) {
		pre_from = from.st;
		have_from = true;
		/* Both directories in one export, or NFS3ERR_XDEV. */
		rc = nfs3_get_dir(&c, &a->to, NFS3_MODIFY, false, &to);
	}
	if (rc == 0) {
		pre_to = to.st;
		have_to = true;
		if (nfs3_is_dots(a->from.name) || nfs3_is_dots(a->to.name))
			rc = -EINVAL;
	}
	if (rc == 0) {
		/* The object moved and the one renamed over leave the cache
		 * (the latter loses its link: its space is freed now). */
		have_kf = fh_key_at(from.exp->cfg->fsid, from.fd, a->from.name, &kf, NULL) == 0;
		have_kt = fh_key_at(to.exp->cfg->fsid, to.fd, a->to.name, &kt, NULL) == 0;
		rc = nfs3_user(&c);
	}
	if (rc == 0 && renameat(from.fd, a->from.name, to.fd, a->to.name) < 0)
		rc = -errno;
	nfs3_root(&c);
	if (rc == 0 && have_kf)
		ohc_forget(c.ng->ohc, &kf);
	if (rc == 0 && have_kt)
		ohc_forget(c.ng->ohc, &kt);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		nfs3_wcc(&from, &pre_from, &r->RENAME3res_u.resok.fromdir_wcc);
		nfs3_wcc(&to, &pre_to, &r->RENAME3res_u.resok.todir_wcc);
	} else {
		nfs3_wcc(&from, have_from ? &pre_from : NULL, &r->RENAME3res_u.resfail.fromdir_wcc);
		nfs3_wcc(&to, have_to ? &pre_to : NULL, &r->RENAME3res_u.resfail.todir_wcc);
	}
	nfs3_obj_close(&from);
	nfs3_obj_close(&to);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

enum rpc_disposition nfs3_link(struct rpc_req *req)
{
	LINK3args *a = req->args;
	LINK3res *r = req->res;
	struct nfs3_obj file = NFS3_OBJ_INIT, dir = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	char path[32];
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->file, NFS3_MODIFY, &file);
	if (rc == 0)
		rc = nfs3_get_dir(&c, &a->link, NFS3_MODIFY, true, &dir);
	if (rc == 0) {
		pre = dir.st;
		have_pre = true;
		rc = nfs3_user(&c);
	}
	/* linkat(AT_EMPTY_PATH) wants CAP_DAC_READ_SEARCH, which the client's
	 * identity lacks; following the /proc magic link does not. */
	if (rc == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", file.fd);
		if (linkat(AT_FDCWD, path, dir.fd, a->link.name, AT_SYMLINK_FOLLOW) < 0)
			rc = -errno;
	}
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		nfs3_post(&file, &r->LINK3res_u.resok.file_attributes);
		nfs3_wcc(&dir, &pre, &r->LINK3res_u.resok.linkdir_wcc);
	} else {
		nfs3_post(&file, &r->LINK3res_u.resfail.file_attributes);
		nfs3_wcc(&dir, have_pre ? &pre : NULL, &r->LINK3res_u.resfail.linkdir_wcc);
	}
	nfs3_obj_close(&file);
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- READDIR, READDIRPLUS --------------------------------------------- */

/* XDR sizes (RFC 1813 section 3.3.16/17; 4-byte units). */
#define XDR_FATTR3     84u                  /* 5 words + 5 hypers + rdev + 3 times */
#define XDR_POST_ATTR  (4u + XDR_FATTR3)
/* status + dir_attributes + cookieverf + list terminator + eof */
#define XDR_RD_FIXED   (4u + XDR_POST_ATTR + 8u + 4u + 4u)

static uint32_t xdr_pad4(size_t n)
{
	return (uint32_t)((n + 3) & ~(size_t)3);
}

struct nfs3_rd {
	struct nfs3_ctx *c;
	struct nfs3_obj *dir;
	int dfd;                   /* the directory, open for reading */
	bool plus;
	uint32_t max, used;        /* whole reply (count / maxcount) */
	unsigned n;                /* entries emitted */
	entry3 **tail;             /* READDIR list end */
	entryplus3 **ptail;        /* READDIRPLUS list end */
	int err;
};

/* READDIRPLUS extras for one entry: attributes and handle, best effort. */
static void nfs3_rd_plus(struct nfs3_rd *rd, const char *name, entryplus3 *e)
{
	struct stat st;

	e->name_attributes.attributes_follow = FALSE;
	e->name_handle.handle_follows = FALSE;
	/* ".." may lead out of the export; the client does not need it. */
	if (strcmp(name, "..") == 0)
		return;
	if (nfs3_fh_out(rd->dir->exp, rd->dfd, name, &e->name_handle.post_op_fh3_u.handle) < 0)
		return;
	e->name_handle.handle_follows = TRUE;
	if (fstatat(rd->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		e->name_attributes.attributes_follow = TRUE;
		nfs3_fattr(rd->dir->exp, &st, &e->name_attributes.post_op_attr_u.attributes);
	}
}

/* Add one entry if it fits; false stops the listing (full, or error). */
static bool nfs3_rd_emit(struct nfs3_rd *rd, const struct dirent64 *d)
{
	size_t len = strlen(d->d_name);
	uint32_t dsz = 4u + 8u + 4u + xdr_pad4(len) + 8u;  /* follows, fileid, name, cookie */
	uint32_t sz = dsz;

	if (len > NFS3_NAMEMAX || nfs3_name_hidden(rd->dir, d->d_name))
		return true;           /* not representable / not for clients */
	if (rd->plus)
		sz += XDR_POST_ATTR + 4u + 4u + FH_SIZE_MAX; /* worst case: attrs + handle */
	if (rd->used + sz > rd->max)
		return false;

	if (rd->plus) {
		entryplus3 *e = calloc(1, sizeof(*e));

		if (!e || !(e->name = strdup(d->d_name))) {
			free(e);
			rd->err = -ENOMEM;
			return false;
		}
		e->fileid = d->d_ino;
		e->cookie = (cookie3)d->d_off;
		nfs3_rd_plus(rd, d->d_name, e);
		/* Count what the entry really takes, not the worst case. */
		sz = dsz + 4u + (e->name_attributes.attributes_follow ? XDR_FATTR3 : 0) + 4u +
		     (e->name_handle.handle_follows
		      ? 4u + xdr_pad4(e->name_handle.post_op_fh3_u.handle.data.data_len) : 0);
		*rd->ptail = e;
		rd->ptail = &e->nextentry;
	} else {
		entry3 *e = calloc(1, sizeof(*e));

		if (!e || !(e->name = strdup(d->d_name))) {
			free(e);
			rd->err = -ENOMEM;
			return false;
		}
		e->fileid = d->d_ino;
		e->cookie = (cookie3)d->d_off;
		*rd->tail = e;
		rd->tail = &e->nextentry;
	}
	rd->used += sz;
	rd->n++;
	return true;
}

/* List @rd->dir from @cookie until the reply is full or the end (*@eof). */
static int nfs3_rd_list(struct nfs3_rd *rd, uint64_t cookie, bool *eof)
{
	enum { BUFSZ = 32768 };
	char *buf;
	int rc = 0;

	*eof = false;
	rd->dfd = nfs3_reopen(rd->dir, O_RDONLY | O_DIRECTORY);
	if (rd->dfd < 0)
		return rd->dfd;
	/* Cookies are d_off values: any 63-bit offset the filesystem made. */
	if (cookie != 0 && (cookie > (uint64_t)INT64_MAX ||
			    lseek(rd->dfd, (off_t)cookie, SEEK_SET) < 0)) {
		rc = -NFSE_BAD_COOKIE;
		goto out;
	}
	buf = malloc(BUFSZ);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = getdents64(rd->dfd, buf, BUFSZ);
		bool full = false;

		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0) {
			*eof = true;
			break;
		}
		for (ssize_t off = 0; off < n && !full; ) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);

			full = !nfs3_rd_emit(rd, d);
			off += d->d_reclen;
		}
		if (full)
			break;
	}
	free(buf);
	if (rc == 0)
		rc = rd->err;
	if (rc == 0 && rd->n == 0 && !*eof)
		rc = -NFSE_TOOSMALL;   /* not even one entry fits */
out:
	close(rd->dfd);
	rd->dfd = -1;
	return rc;
}

/* The directory's verifier: its inode number (see the file comment). */
static void nfs3_rd_verf(const struct stat *st, cookieverf3 out)
{
	uint64_t v = (uint64_t)st->st_ino;

	for (int i = 0; i < 8; i++)
		out[i] = (char)(v >> (56 - 8 * i));
}

static int nfs3_rd_check_verf(const struct stat *st, uint64_t cookie, const cookieverf3 verf)
{
	static const cookieverf3 zero;
	cookieverf3 mine;

	/* Cookie 0 starts afresh; a zero verifier is what a client that
	 * never saw one sends. */
	if (cookie == 0 || memcmp(verf, zero, sizeof(zero)) == 0)
		return 0;
	nfs3_rd_verf(st, mine);
	return memcmp(verf, mine, sizeof(mine)) == 0 ? 0 : -NFSE_BAD_COOKIE;
}

/* Free a partial list left in a reply that turned into an error. */
static void nfs3_rd_free(entry3 *e, entryplus3 *p)
{
	while (e) {
		entry3 *next = e->nextentry;

		free(e->name);
		free(e);
		e = next;
	}
	while (p) {
		entryplus3 *next = p->nextentry;

		free(p->name);
		free(p->name_handle.post_op_fh3_u.handle.data.data_val);
		free(p);
		p = next;
	}
}

static uint32_t nfs3_rd_cap(const struct nfs3_ctx *c, uint32_t count)
{
	uint32_t cap = NFS3_MAXDIRCOUNT;

	if (nfs3_iomax(c) < cap)
		cap = nfs3_iomax(c);
	return count < cap ? count : cap;
}

enum rpc_disposition nfs3_readdir(struct rpc_req *req)
{
	READDIR3args *a = req->args;
	READDIR3res *r = req->res;
	READDIR3resok *ok = &r->READDIR3res_u.resok;
	struct nfs3_obj dir = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct nfs3_rd rd = { .dfd = -1, .tail = &ok->reply.entries };
	bool eof = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->dir, 0, &dir);
	if (rc == 0 && !S_ISDIR(dir.st.st_mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = nfs3_rd_check_verf(&dir.st, a->cookie, a->cookieverf);
	if (rc == 0)
		rc = nfs3_user(&c);
	if (rc == 0) {
		rd.c = &c;
		rd.dir = &dir;
		rd.max = nfs3_rd_cap(&c, a->count);
		rd.used = XDR_RD_FIXED;
		rc = nfs3_rd_list(&rd, a->cookie, &eof);
	}
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		nfs3_post(&dir, &ok->dir_attributes);
		nfs3_rd_verf(&dir.st, ok->cookieverf);
		ok->reply.eof = eof;
	} else {
		nfs3_rd_free(ok->reply.entries, NULL);
		memset(&r->READDIR3res_u, 0, sizeof(r->READDIR3res_u));
		nfs3_post(&dir, &r->READDIR3res_u.resfail.dir_attributes);
	}
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

enum rpc_disposition nfs3_readdirplus(struct rpc_req *req)
{
	READDIRPLUS3args *a = req->args;
	READDIRPLUS3res *r = req->res;
	READDIRPLUS3resok *ok = &r->READDIRPLUS3res_u.resok;
	struct nfs3_obj dir = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct nfs3_rd rd = { .dfd = -1, .plus = true, .ptail = &ok->reply.entries };
	bool eof = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->dir, 0, &dir);
	if (rc == 0 && !S_ISDIR(dir.st.st_mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = nfs3_rd_check_verf(&dir.st, a->cookie, a->cookieverf);
	if (rc == 0)
		rc = nfs3_user(&c);
	if (rc == 0) {
		rd.c = &c;
		rd.dir = &dir;
		rd.max = nfs3_rd_cap(&c, a->maxcount);
		rd.used = XDR_RD_FIXED;
		/* dircount is not enforced, as in knfsd: Linux asks for an
		 * eighth of maxcount, which would halve every listing; the
		 * reply still respects maxcount, the real limit. */
		rc = nfs3_rd_list(&rd, a->cookie, &eof);
	}
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		nfs3_post(&dir, &ok->dir_attributes);
		nfs3_rd_verf(&dir.st, ok->cookieverf);
		ok->reply.eof = eof;
	} else {
		nfs3_rd_free(NULL, ok->reply.entries);
		memset(&r->READDIRPLUS3res_u, 0, sizeof(r->READDIRPLUS3res_u));
		nfs3_post(&dir, &r->READDIRPLUS3res_u.resfail.dir_attributes);
	}
	nfs3_obj_close(&dir);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}
