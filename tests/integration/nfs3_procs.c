/*
 * nfs3_procs.c - every NFSv3 procedure and the MOUNT procedures against a
 * running sgnfsd, through libnfs's raw RPC layer, with one line per check.
 *
 *   nfs3_procs procs  --server VIP --rw PATH --ro PATH [--squash PATH --anonuid N]
 *                     --other-server VIP2 --other PATH
 *   nfs3_procs dump-handles  --server VIP --export PATH --expect TEXT --out FILE
 *   nfs3_procs reuse-handles --server VIP --expect TEXT --in FILE
 *   nfs3_procs shell --server VIP --export PATH
 *
 * "procs" calls all 22 NFSv3 procedures and MOUNT NULL/MNT/DUMP/UMNT/EXPORT
 * with success cases (attributes checked) and the error cases a client
 * depends on: NOENT, EXIST, NOTEMPTY, NOTDIR, ISDIR, ROFS on a read-only
 * export, STALE for another group's handle on this group's VIP and for a
 * removed file, BADHANDLE for garbage, exclusive CREATE replay, WRITE
 * UNSTABLE + COMMIT verifiers, and READDIR/READDIRPLUS over ~1000 entries
 * with cookies.  @rw must be an empty directory (the test creates its
 * files there); @ro must hold a regular file "readme.txt" and a directory
 * "subdir"; @other is any export of another group served on VIP2.
 *
 * "dump-handles" mounts @export, creates (through NFS) a directory and a
 * file, looks up the pre-existing file "ondisk.txt" (whose content must be
 * @expect), and writes "name hex-handle" lines to FILE.  "reuse-handles",
 * typically against a restarted server, does NOT mount: it sends the saved
 * handles, as a client holding them across a failover would, and checks
 * GETATTR, READ, LOOKUP, READDIR and that LOOKUP yields identical handles.
 *
 * "shell" mounts @export and then runs one RPC per line of stdin, printing
 * one line per command (for tests that interleave NFS calls with changes
 * made on the server's filesystem; commands at mode_shell).
 *
 * Each RPC is synchronous: it is queued with the libnfs async API and the
 * context is serviced with poll() until the callback has fired (the reply
 * is copied out inside the callback: libnfs frees it afterwards).
 *
 * Exit status: 0 if every check passed, 1 if any failed, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#define CALL_TIMEOUT_MS 30000
#define BIGDIR_ENTRIES  1000

/* ---- checks ------------------------------------------------------------ */

static unsigned npass, nfail;

static bool check(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf(cond ? "ok   - " : "FAIL - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (cond)
		npass++;
	else
		nfail++;
	return cond;
}

static const char *nfs_stat_name(int s)
{
	switch (s) {
	case -1: return "no reply";
	case NFS3_OK: return "NFS3_OK";
	case NFS3ERR_PERM: return "PERM";
	case NFS3ERR_NOENT: return "NOENT";
	case NFS3ERR_IO: return "IO";
	case NFS3ERR_NXIO: return "NXIO";
	case NFS3ERR_ACCES: return "ACCES";
	case NFS3ERR_EXIST: return "EXIST";
	case NFS3ERR_XDEV: return "XDEV";
	case NFS3ERR_NODEV: return "NODEV";
	case NFS3ERR_NOTDIR: return "NOTDIR";
	case NFS3ERR_ISDIR: return "ISDIR";
	case NFS3ERR_INVAL: return "INVAL";
	case NFS3ERR_FBIG: return "FBIG";
	case NFS3ERR_NOSPC: return "NOSPC";
	case NFS3ERR_ROFS: return "ROFS";
	case NFS3ERR_MLINK: return "MLINK";
	case NFS3ERR_NAMETOOLONG: return "NAMETOOLONG";
	case NFS3ERR_NOTEMPTY: return "NOTEMPTY";
	case NFS3ERR_DQUOT: return "DQUOT";
	case NFS3ERR_STALE: return "STALE";
	case NFS3ERR_REMOTE: return "REMOTE";
	case NFS3ERR_BADHANDLE: return "BADHANDLE";
	case NFS3ERR_NOT_SYNC: return "NOT_SYNC";
	case NFS3ERR_BAD_COOKIE: return "BAD_COOKIE";
	case NFS3ERR_NOTSUPP: return "NOTSUPP";
	case NFS3ERR_TOOSMALL: return "TOOSMALL";
	case NFS3ERR_SERVERFAULT: return "SERVERFAULT";
	case NFS3ERR_BADTYPE: return "BADTYPE";
	case NFS3ERR_JUKEBOX: return "JUKEBOX";
	default: return "(unknown)";
	}
}

static const char *mnt_stat_name(int s)
{
	switch (s) {
	case -1: return "no reply";
	case MNT3_OK: return "MNT3_OK";
	case MNT3ERR_PERM: return "MNT3ERR_PERM";
	case MNT3ERR_NOENT: return "MNT3ERR_NOENT";
	case MNT3ERR_IO: return "MNT3ERR_IO";
	case MNT3ERR_ACCES: return "MNT3ERR_ACCES";
	case MNT3ERR_NOTDIR: return "MNT3ERR_NOTDIR";
	case MNT3ERR_INVAL: return "MNT3ERR_INVAL";
	case MNT3ERR_NAMETOOLONG: return "MNT3ERR_NAMETOOLONG";
	case MNT3ERR_NOTSUPP: return "MNT3ERR_NOTSUPP";
	case MNT3ERR_SERVERFAULT: return "MNT3ERR_SERVERFAULT";
	default: return "(unknown)";
	}
}

/* ---- results copied out of libnfs's reply ------------------------------- */

struct fh {
	uint32_t len;
	uint8_t data[NFS3_FHSIZE];
};

struct dent {
	char *name;
	uint64_t fileid, cookie;
	bool has_attr;
	fattr3 attr;
	bool has_fh;
	struct fh fh;
};

/* What any one reply may carry; each procedure fills the part it has. */
struct res {
	int stat;                       /* nfsstat3 / mountstat3; -1: no reply */
	bool has_attr;                  /* object (or "after") attributes */
	fattr3 attr;
	bool has_fh;                    /* new or looked-up object */
	struct fh fh;
	bool has_dir_attr;              /* directory attributes (after) */
	fattr3 dir_attr;
	bool has_before;                /* wcc "before" */
	wcc_attr before;
	uint32_t count;                 /* READ/WRITE */
	bool eof;
	uint8_t *data;                  /* READ data (malloc) */
	size_t datalen;
	int committed;
	uint8_t verf[NFS3_WRITEVERFSIZE];
	uint32_t access;
	char *path;                     /* READLINK (malloc) */
	uint8_t cookieverf[NFS3_COOKIEVERFSIZE];
	struct dent *ents;              /* READDIR(PLUS) (malloc) */
	size_t nents;
	FSINFO3resok fsinfo;
	FSSTAT3resok fsstat;
	PATHCONF3resok pathconf;
	char **names;                   /* EXPORT dirs / DUMP "host dir" (malloc) */
	size_t nnames;
	int flavors[8];
	size_t nflavors;
	char rpc_err[256];              /* when stat == -3 */
};

static void res_free(struct res *r)
{
	free(r->data);
	free(r->path);
	for (size_t i = 0; i < r->nents; i++)
		free(r->ents[i].name);
	free(r->ents);
	for (size_t i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	memset(r, 0, sizeof(*r));
	r->stat = -1;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

static void fh_set(struct fh *dst, const nfs_fh3 *src)
{
	dst->len = src->data.data_len <= NFS3_FHSIZE ? src->data.data_len : NFS3_FHSIZE;
	memcpy(dst->data, src->data.data_val, dst->len);
}

static nfs_fh3 fh_wire(const struct fh *fh)
{
	nfs_fh3 w;

	w.data.data_len = fh->len;
	w.data.data_val = (char *)fh->data;
	return w;
}

static bool fh_eq(const struct fh *a, const struct fh *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void take_post(bool *has, fattr3 *dst, const post_op_attr *a)
{
	*has = a->attributes_follow;
	if (*has)
		*dst = a->post_op_attr_u.attributes;
}

static void take_wcc(struct res *r, const wcc_data *w, bool obj)
{
	r->has_before = w->before.attributes_follow;
	if (r->has_before)
		r->before = w->before.pre_op_attr_u.attributes;
	if (obj)
		take_post(&r->has_attr, &r->attr, &w->after);
	else
		take_post(&r->has_dir_attr, &r->dir_attr, &w->after);
}

static void take_newobj(struct res *r, const post_op_fh3 *fh, const post_op_attr *a,
			const wcc_data *dir)
{
	r->has_fh = fh->handle_follows;
	if (r->has_fh)
		fh_set(&r->fh, &fh->post_op_fh3_u.handle);
	take_post(&r->has_attr, &r->attr, a);
	take_wcc(r, dir, false);
}

/* ---- synchronous calls ------------------------------------------------- */

enum proc {
	P_NULL, P_GETATTR, P_SETATTR, P_LOOKUP, P_ACCESS, P_READLINK, P_READ,
	P_WRITE, P_CREATE, P_MKDIR, P_SYMLINK, P_MKNOD, P_REMOVE, P_RMDIR,
	P_RENAME, P_LINK, P_READDIR, P_READDIRPLUS, P_FSSTAT, P_FSINFO,
	P_PATHCONF, P_COMMIT,
	M_NULL, M_MNT, M_DUMP, M_UMNT, M_EXPORT,
	X_CONNECT,
};

static const char *const proc_names[] = {
	[P_NULL] = "NULL", [P_GETATTR] = "GETATTR", [P_SETATTR] = "SETATTR",
	[P_LOOKUP] = "LOOKUP", [P_ACCESS] = "ACCESS", [P_READLINK] = "READLINK",
	[P_READ] = "READ", [P_WRITE] = "WRITE", [P_CREATE] = "CREATE",
	[P_MKDIR] = "MKDIR", [P_SYMLINK] = "SYMLINK", [P_MKNOD] = "MKNOD",
	[P_REMOVE] = "REMOVE", [P_RMDIR] = "RMDIR", [P_RENAME] = "RENAME",
	[P_LINK] = "LINK", [P_READDIR] = "READDIR", [P_READDIRPLUS] = "READDIRPLUS",
	[P_FSSTAT] = "FSSTAT", [P_FSINFO] = "FSINFO", [P_PATHCONF] = "PATHCONF",
	[P_COMMIT] = "COMMIT", [M_NULL] = "MOUNT NULL", [M_MNT] = "MOUNT MNT",
	[M_DUMP] = "MOUNT DUMP", [M_UMNT] = "MOUNT UMNT", [M_EXPORT] = "MOUNT EXPORT",
	[X_CONNECT] = "connect",
};

/*
 * When set, an RPC-level failure (e.g. GARBAGE_ARGS) is not a failed check:
 * call() returns -1 with r->stat = -3 and the reason in r->rpc_err.
 */
static bool rpc_errors_expected;

struct waiter {
	enum proc proc;
	struct res *res;
	bool done;
	int status;                     /* RPC_STATUS_* */
	char err[256];
};

struct conn {
	struct rpc_context *rpc;
	char what[128];
};

static void copy_reply(enum proc p, struct res *r, void *data)
{
	switch (p) {
	case P_NULL:
	case M_NULL:
	case M_UMNT:
	case X_CONNECT:
		r->stat = 0;
		break;
	case P_GETATTR: {
		GETATTR3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			r->has_attr = true;
			r->attr = x->GETATTR3res_u.resok.obj_attributes;
		}
		break;
	}
	case P_SETATTR: {
		SETATTR3res *x = data;
		r->stat = x->status;
		take_wcc(r, x->status == NFS3_OK ? &x->SETATTR3res_u.resok.obj_wcc
						 : &x->SETATTR3res_u.resfail.obj_wcc, true);
		break;
	}
	case P_LOOKUP: {
		LOOKUP3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			LOOKUP3resok *ok = &x->LOOKUP3res_u.resok;
			r->has_fh = true;
			fh_set(&r->fh, &ok->object);
			take_post(&r->has_attr, &r->attr, &ok->obj_attributes);
			take_post(&r->has_dir_attr, &r->dir_attr, &ok->dir_attributes);
		} else {
			take_post(&r->has_dir_attr, &r->dir_attr,
				  &x->LOOKUP3res_u.resfail.dir_attributes);
		}
		break;
	}
	case P_ACCESS: {
		ACCESS3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			take_post(&r->has_attr, &r->attr, &x->ACCESS3res_u.resok.obj_attributes);
			r->access = x->ACCESS3res_u.resok.access;
		} else {
			take_post(&r->has_attr, &r->attr, &x->ACCESS3res_u.resfail.obj_attributes);
		}
		break;
	}
	case P_READLINK: {
		READLINK3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			take_post(&r->has_attr, &r->attr, &x->READLINK3res_u.resok.symlink_attributes);
			r->path = xstrdup(x->READLINK3res_u.resok.data ? x->READLINK3res_u.resok.data : "");
		}
		break;
	}
	case P_READ: {
		READ3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			READ3resok *ok = &x->READ3res_u.resok;
			take_post(&r->has_attr, &r->attr, &ok->file_attributes);
			r->count = ok->count;
			r->eof = ok->eof;
			r->datalen = ok->data.data_len;
			r->data = xmalloc(r->datalen);
			memcpy(r->data, ok->data.data_val, r->datalen);
		} else {
			take_post(&r->has_attr, &r->attr, &x->READ3res_u.resfail.file_attributes);
		}
		break;
	}
	case P_WRITE: {
		WRITE3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			WRITE3resok *ok = &x->WRITE3res_u.resok;
			take_wcc(r, &ok->file_wcc, true);
			r->count = ok->count;
			r->committed = ok->committed;
			memcpy(r->verf, ok->verf, sizeof(r->verf));
		} else {
			take_wcc(r, &x->WRITE3res_u.resfail.file_wcc, true);
		}
		break;
	}
	case P_CREATE: {
		CREATE3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK)
			take_newobj(r, &x->CREATE3res_u.resok.obj, &x->CREATE3res_u.resok.obj_attributes,
				    &x->CREATE3res_u.resok.dir_wcc);
		else
			take_wcc(r, &x->CREATE3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_MKDIR: {
		MKDIR3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK)
			take_newobj(r, &x->MKDIR3res_u.resok.obj, &x->MKDIR3res_u.resok.obj_attributes,
				    &x->MKDIR3res_u.resok.dir_wcc);
		else
			take_wcc(r, &x->MKDIR3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_SYMLINK: {
		SYMLINK3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK)
			take_newobj(r, &x->SYMLINK3res_u.resok.obj, &x->SYMLINK3res_u.resok.obj_attributes,
				    &x->SYMLINK3res_u.resok.dir_wcc);
		else
			take_wcc(r, &x->SYMLINK3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_MKNOD: {
		MKNOD3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK)
			take_newobj(r, &x->MKNOD3res_u.resok.obj, &x->MKNOD3res_u.resok.obj_attributes,
				    &x->MKNOD3res_u.resok.dir_wcc);
		else
			take_wcc(r, &x->MKNOD3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_REMOVE: {
		REMOVE3res *x = data;
		r->stat = x->status;
		take_wcc(r, x->status == NFS3_OK ? &x->REMOVE3res_u.resok.dir_wcc
						 : &x->REMOVE3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_RMDIR: {
		RMDIR3res *x = data;
		r->stat = x->status;
		take_wcc(r, x->status == NFS3_OK ? &x->RMDIR3res_u.resok.dir_wcc
						 : &x->RMDIR3res_u.resfail.dir_wcc, false);
		break;
	}
	case P_RENAME: {
		RENAME3res *x = data;
		r->stat = x->status;
		take_wcc(r, x->status == NFS3_OK ? &x->RENAME3res_u.resok.todir_wcc
						 : &x->RENAME3res_u.resfail.todir_wcc, false);
		break;
	}
	case P_LINK: {
		LINK3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			take_post(&r->has_attr, &r->attr, &x->LINK3res_u.resok.file_attributes);
			take_wcc(r, &x->LINK3res_u.resok.linkdir_wcc, false);
		} else {
			take_post(&r->has_attr, &r->attr, &x->LINK3res_u.resfail.file_attributes);
			take_wcc(r, &x->LINK3res_u.resfail.linkdir_wcc, false);
		}
		break;
	}
	case P_READDIR: {
		READDIR3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			READDIR3resok *ok = &x->READDIR3res_u.resok;
			size_t n = 0, i = 0;
			take_post(&r->has_dir_attr, &r->dir_attr, &ok->dir_attributes);
			memcpy(r->cookieverf, ok->cookieverf, sizeof(r->cookieverf));
			for (entry3 *e = ok->reply.entries; e; e = e->nextentry)
				n++;
			r->ents = xmalloc(n * sizeof(*r->ents));
			memset(r->ents, 0, n * sizeof(*r->ents));
			for (entry3 *e = ok->reply.entries; e; e = e->nextentry, i++) {
				r->ents[i].name = xstrdup(e->name ? e->name : "");
				r->ents[i].fileid = e->fileid;
				r->ents[i].cookie = e->cookie;
			}
			r->nents = n;
			r->eof = ok->reply.eof;
		}
		break;
	}
	case P_READDIRPLUS: {
		READDIRPLUS3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			READDIRPLUS3resok *ok = &x->READDIRPLUS3res_u.resok;
			size_t n = 0, i = 0;
			take_post(&r->has_dir_attr, &r->dir_attr, &ok->dir_attributes);
			memcpy(r->cookieverf, ok->cookieverf, sizeof(r->cookieverf));
			for (entryplus3 *e = ok->reply.entries; e; e = e->nextentry)
				n++;
			r->ents = xmalloc(n * sizeof(*r->ents));
			memset(r->ents, 0, n * sizeof(*r->ents));
			for (entryplus3 *e = ok->reply.entries; e; e = e->nextentry, i++) {
				struct dent *d = &r->ents[i];
				d->name = xstrdup(e->name ? e->name : "");
				d->fileid = e->fileid;
				d->cookie = e->cookie;
				take_post(&d->has_attr, &d->attr, &e->name_attributes);
				d->has_fh = e->name_handle.handle_follows;
				if (d->has_fh)
					fh_set(&d->fh, &e->name_handle.post_op_fh3_u.handle);
			}
			r->nents = n;
			r->eof = ok->reply.eof;
		}
		break;
	}
	case P_FSSTAT: {
		FSSTAT3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			r->fsstat = x->FSSTAT3res_u.resok;
			take_post(&r->has_attr, &r->attr, &r->fsstat.obj_attributes);
		}
		break;
	}
	case P_FSINFO: {
		FSINFO3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			r->fsinfo = x->FSINFO3res_u.resok;
			take_post(&r->has_attr, &r->attr, &r->fsinfo.obj_attributes);
		}
		break;
	}
	case P_PATHCONF: {
		PATHCONF3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			r->pathconf = x->PATHCONF3res_u.resok;
			take_post(&r->has_attr, &r->attr, &r->pathconf.obj_attributes);
		}
		break;
	}
	case P_COMMIT: {
		COMMIT3res *x = data;
		r->stat = x->status;
		if (x->status == NFS3_OK) {
			take_wcc(r, &x->COMMIT3res_u.resok.file_wcc, true);
			memcpy(r->verf, x->COMMIT3res_u.resok.verf, sizeof(r->verf));
		} else {
			take_wcc(r, &x->COMMIT3res_u.resfail.file_wcc, true);
		}
		break;
	}
	case M_MNT: {
		mountres3 *x = data;
		r->stat = x->fhs_status;
		if (x->fhs_status == MNT3_OK) {
			mountres3_ok *ok = &x->mountres3_u.mountinfo;
			nfs_fh3 w;
			w.data.data_len = ok->fhandle.fhandle3_len;
			w.data.data_val = ok->fhandle.fhandle3_val;
			r->has_fh = true;
			fh_set(&r->fh, &w);
			for (u_int i = 0; i < ok->auth_flavors.auth_flavors_len && i < 8; i++)
				r->flavors[r->nflavors++] = ok->auth_flavors.auth_flavors_val[i];
		}
		break;
	}
	case M_DUMP: {
		mountlist ml = data ? *(mountlist *)data : NULL;
		size_t n = 0, i = 0;
		r->stat = 0;
		for (mountlist m = ml; m; m = m->ml_next)
			n++;
		r->names = xmalloc(n * sizeof(char *));
		for (mountlist m = ml; m; m = m->ml_next, i++) {
			size_t len = strlen(m->ml_hostname) + strlen(m->ml_directory) + 2;
			r->names[i] = xmalloc(len);
			snprintf(r->names[i], len, "%s %s", m->ml_hostname, m->ml_directory);
		}
		r->nnames = n;
		break;
	}
	case M_EXPORT: {
		exports ex = data ? *(exports *)data : NULL;
		size_t n = 0, i = 0;
		r->stat = 0;
		for (exports e = ex; e; e = e->ex_next)
			n++;
		r->names = xmalloc(n * sizeof(char *));
		for (exports e = ex; e; e = e->ex_next, i++)
			r->names[i] = xstrdup(e->ex_dir);
		r->nnames = n;
		break;
	}
	}
}

static void on_reply(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct waiter *w = priv;

	(void)rpc;
	w->done = true;
	w->status = status;
	if (status == RPC_STATUS_SUCCESS)
		copy_reply(w->proc, w->res, data);
	else if (data)
		snprintf(w->err, sizeof(w->err), "%s", (const char *)data);
	else
		snprintf(w->err, sizeof(w->err), "status %d", status);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Service @c until @w has its reply; 0 on a reply, -1 otherwise (printed). */
static int wait_reply(struct conn *c, struct waiter *w)
{
	int64_t deadline = now_ms() + CALL_TIMEOUT_MS;

	while (!w->done) {
		struct pollfd pfd = {
			.fd = rpc_get_fd(c->rpc),
			.events = (short)rpc_which_events(c->rpc),
		};
		int n = poll(&pfd, 1, 100);

		if (n < 0 && errno != EINTR) {
			snprintf(w->err, sizeof(w->err), "poll: %s", strerror(errno));
			break;
		}
		if (rpc_service(c->rpc, n > 0 ? pfd.revents : 0) < 0) {
			if (!w->done)
				snprintf(w->err, sizeof(w->err), "connection lost: %s",
					 rpc_get_error(c->rpc));
			break;
		}
		if (!w->done && now_ms() > deadline) {
			snprintf(w->err, sizeof(w->err), "no reply within %d ms", CALL_TIMEOUT_MS);
			break;
		}
	}
	if (w->done && w->status == RPC_STATUS_SUCCESS)
		return 0;
	return -1;
}

/*
 * One RPC: @args is the procedure's argument struct (a char * path for
 * MNT/UMNT, unused for NULL/DUMP/EXPORT).  Fills @r (which is reset first).
 * Returns 0 on a reply (r->stat set), -1 on an RPC or transport failure,
 * which is printed as a failed check.
 */
static int call(struct conn *c, enum proc p, void *args, struct res *r)
{
	struct waiter w = { .proc = p, .res = r };
	struct rpc_context *rpc = c->rpc;
	int rc = -1;

	res_free(r);
	switch (p) {
	case P_NULL:        rc = rpc_nfs3_null_async(rpc, on_reply, &w); break;
	case P_GETATTR:     rc = rpc_nfs3_getattr_async(rpc, on_reply, args, &w); break;
	case P_SETATTR:     rc = rpc_nfs3_setattr_async(rpc, on_reply, args, &w); break;
	case P_LOOKUP:      rc = rpc_nfs3_lookup_async(rpc, on_reply, args, &w); break;
	case P_ACCESS:      rc = rpc_nfs3_access_async(rpc, on_reply, args, &w); break;
	case P_READLINK:    rc = rpc_nfs3_readlink_async(rpc, on_reply, args, &w); break;
	case P_READ:        rc = rpc_nfs3_read_async(rpc, on_reply, args, &w); break;
	case P_WRITE:       rc = rpc_nfs3_write_async(rpc, on_reply, args, &w); break;
	case P_CREATE:      rc = rpc_nfs3_create_async(rpc, on_reply, args, &w); break;
	case P_MKDIR:       rc = rpc_nfs3_mkdir_async(rpc, on_reply, args, &w); break;
	case P_SYMLINK:     rc = rpc_nfs3_symlink_async(rpc, on_reply, args, &w); break;
	case P_MKNOD:       rc = rpc_nfs3_mknod_async(rpc, on_reply, args, &w); break;
	case P_REMOVE:      rc = rpc_nfs3_remove_async(rpc, on_reply, args, &w); break;
	case P_RMDIR:       rc = rpc_nfs3_rmdir_async(rpc, on_reply, args, &w); break;
	case P_RENAME:      rc = rpc_nfs3_rename_async(rpc, on_reply, args, &w); break;
	case P_LINK:        rc = rpc_nfs3_link_async(rpc, on_reply, args, &w); break;
	case P_READDIR:     rc = rpc_nfs3_readdir_async(rpc, on_reply, args, &w); break;
	case P_READDIRPLUS: rc = rpc_nfs3_readdirplus_async(rpc, on_reply, args, &w); break;
	case P_FSSTAT:      rc = rpc_nfs3_fsstat_async(rpc, on_reply, args, &w); break;
	case P_FSINFO:      rc = rpc_nfs3_fsinfo_async(rpc, on_reply, args, &w); break;
	case P_PATHCONF:    rc = rpc_nfs3_pathconf_async(rpc, on_reply, args, &w); break;
	case P_COMMIT:      rc = rpc_nfs3_commit_async(rpc, on_reply, args, &w); break;
	case M_NULL:        rc = rpc_mount3_null_async(rpc, on_reply, &w); break;
	case M_MNT:         rc = rpc_mount3_mnt_async(rpc, on_reply, args, &w); break;
	case M_DUMP:        rc = rpc_mount3_dump_async(rpc, on_reply, &w); break;
	case M_UMNT:        rc = rpc_mount3_umnt_async(rpc, on_reply, args, &w); break;
	case M_EXPORT:      rc = rpc_mount3_export_async(rpc, on_reply, &w); break;
	case X_CONNECT:     rc = -1; break;
	}
	if (rc != 0) {
		check(false, "%s: queue %s: %s", c->what, proc_names[p], rpc_get_error(rpc));
		return -1;
	}
	if (wait_reply(c, &w) < 0) {
		if (rpc_errors_expected && w.done) {
			r->stat = -3;
			snprintf(r->rpc_err, sizeof(r->rpc_err), "%s", w.err);
			return -1;
		}
		check(false, "%s: %s gets an RPC reply (%s)", c->what, proc_names[p], w.err);
		return -1;
	}
	return 0;
}

static void on_connect(struct rpc_context *rpc, int status, void *data, void *priv)
{
	on_reply(rpc, status, data, priv);
}

/* Connect to @prog v@vers on @server, through its PORTMAP unless @port. */
static int conn_open(struct conn *c, const char *server, int prog, int vers, int port)
{
	struct res r = { .stat = -1 };
	struct waiter w = { .proc = X_CONNECT, .res = &r };
	int rc;

	snprintf(c->what, sizeof(c->what), "%s %s", prog == MOUNT_PROGRAM ? "MOUNT" : "NFS", server);
	c->rpc = rpc_init_context();
	if (!c->rpc) {
		check(false, "%s: rpc_init_context", c->what);
		return -1;
	}
	if (port > 0)
		rc = rpc_connect_port_async(c->rpc, server, port, prog, vers, on_connect, &w);
	else
		rc = rpc_connect_program_async(c->rpc, server, prog, vers, on_connect, &w);
	if (rc != 0 || wait_reply(c, &w) < 0) {
		check(false, "%s: connect (%s)", c->what, rc != 0 ? rpc_get_error(c->rpc) : w.err);
		rpc_destroy_context(c->rpc);
		c->rpc = NULL;
		return -1;
	}
	check(true, "%s: connected (port from %s)", c->what, port > 0 ? "command line" : "PORTMAP GETPORT");
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->rpc)
		rpc_destroy_context(c->rpc);
	c->rpc = NULL;
}

/* ---- argument builders ------------------------------------------------- */

static int nfs_port, mount_port;

static sattr3 sattr_none(void)
{
	sattr3 s;

	memset(&s, 0, sizeof(s));
	return s;
}

static sattr3 sattr_mode(uint32_t mode)
{
	sattr3 s = sattr_none();

	s.mode.set_it = 1;
	s.mode.set_mode3_u.mode = mode;
	return s;
}

static int do_getattr(struct conn *c, const struct fh *fh, struct res *r)
{
	GETATTR3args a = { .object = fh_wire(fh) };
	return call(c, P_GETATTR, &a, r);
}

static int do_lookup(struct conn *c, const struct fh *dir, const char *name, struct res *r)
{
	LOOKUP3args a = { .what = { .dir = fh_wire(dir), .name = (char *)name } };
	return call(c, P_LOOKUP, &a, r);
}

static int do_create(struct conn *c, const struct fh *dir, const char *name, int mode,
		     const sattr3 *attrs, const uint8_t *verf, struct res *r)
{
	CREATE3args a;

	memset(&a, 0, sizeof(a));
	a.where.dir = fh_wire(dir);
	a.where.name = (char *)name;
	a.how.mode = mode;
	if (mode == EXCLUSIVE)
		memcpy(a.how.createhow3_u.verf, verf, NFS3_CREATEVERFSIZE);
	else if (mode == GUARDED)
		a.how.createhow3_u.g_obj_attributes = *attrs;
	else
		a.how.createhow3_u.obj_attributes = *attrs;
	return call(c, P_CREATE, &a, r);
}

static int do_mkdir(struct conn *c, const struct fh *dir, const char *name, uint32_t mode,
		    struct res *r)
{
	MKDIR3args a;

	memset(&a, 0, sizeof(a));
	a.where.dir = fh_wire(dir);
	a.where.name = (char *)name;
	a.attributes = sattr_mode(mode);
	return call(c, P_MKDIR, &a, r);
}

static int do_remove(struct conn *c, const struct fh *dir, const char *name, struct res *r)
{
	REMOVE3args a = { .object = { .dir = fh_wire(dir), .name = (char *)name } };
	return call(c, P_REMOVE, &a, r);
}

static int do_rmdir(struct conn *c, const struct fh *dir, const char *name, struct res *r)
{
	RMDIR3args a = { .object = { .dir = fh_wire(dir), .name = (char *)name } };
	return call(c, P_RMDIR, &a, r);
}

static int do_read(struct conn *c, const struct fh *fh, uint64_t off, uint32_t count,
		   struct res *r)
{
	READ3args a = { .file = fh_wire(fh), .offset = off, .count = count };
	return call(c, P_READ, &a, r);
}

static int do_write(struct conn *c, const struct fh *fh, uint64_t off, const void *buf,
		    uint32_t len, int stable, struct res *r)
{
	WRITE3args a;

	memset(&a, 0, sizeof(a));
	a.file = fh_wire(fh);
	a.offset = off;
	a.count = len;
	a.stable = stable;
	a.data.data_len = len;
	a.data.data_val = (char *)buf;
	return call(c, P_WRITE, &a, r);
}

static int do_setattr(struct conn *c, const struct fh *fh, const sattr3 *s,
		      const nfstime3 *guard, struct res *r)
{
	SETATTR3args a;

	memset(&a, 0, sizeof(a));
	a.object = fh_wire(fh);
	a.new_attributes = *s;
	if (guard) {
		a.guard.check = 1;
		a.guard.sattrguard3_u.obj_ctime = *guard;
	}
	return call(c, P_SETATTR, &a, r);
}

static int do_access(struct conn *c, const struct fh *fh, uint32_t bits, struct res *r)
{
	ACCESS3args a = { .object = fh_wire(fh), .access = bits };
	return call(c, P_ACCESS, &a, r);
}

static int do_readdir(struct conn *c, const struct fh *dir, uint64_t cookie,
		      const uint8_t *verf, uint32_t count, struct res *r)
{
	READDIR3args a;

	memset(&a, 0, sizeof(a));
	a.dir = fh_wire(dir);
	a.cookie = cookie;
	if (verf)
		memcpy(a.cookieverf, verf, NFS3_COOKIEVERFSIZE);
	a.count = count;
	return call(c, P_READDIR, &a, r);
}

static int do_readdirplus(struct conn *c, const struct fh *dir, uint64_t cookie,
			  const uint8_t *verf, uint32_t dircount, uint32_t maxcount,
			  struct res *r)
{
	READDIRPLUS3args a;

	memset(&a, 0, sizeof(a));
	a.dir = fh_wire(dir);
	a.cookie = cookie;
	if (verf)
		memcpy(a.cookieverf, verf, NFS3_COOKIEVERFSIZE);
	a.dircount = dircount;
	a.maxcount = maxcount;
	return call(c, P_READDIRPLUS, &a, r);
}

static int do_commit(struct conn *c, const struct fh *fh, uint64_t off, uint32_t count,
		     struct res *r)
{
	COMMIT3args a = { .file = fh_wire(fh), .offset = off, .count = count };
	return call(c, P_COMMIT, &a, r);
}

static int do_rename(struct conn *c, const struct fh *from, const char *fname,
		     const struct fh *to, const char *tname, struct res *r)
{
	RENAME3args a = {
		.from = { .dir = fh_wire(from), .name = (char *)fname },
		.to = { .dir = fh_wire(to), .name = (char *)tname },
	};
	return call(c, P_RENAME, &a, r);
}

static int do_link(struct conn *c, const struct fh *file, const struct fh *dir,
		   const char *name, struct res *r)
{
	LINK3args a = { .file = fh_wire(file), .link = { .dir = fh_wire(dir), .name = (char *)name } };
	return call(c, P_LINK, &a, r);
}

static int do_symlink(struct conn *c, const struct fh *dir, const char *name,
		      const char *target, struct res *r)
{
	SYMLINK3args a;

	memset(&a, 0, sizeof(a));
	a.where.dir = fh_wire(dir);
	a.where.name = (char *)name;
	a.symlink.symlink_attributes = sattr_mode(0777);
	a.symlink.symlink_data = (char *)target;
	return call(c, P_SYMLINK, &a, r);
}

static int do_readlink(struct conn *c, const struct fh *fh, struct res *r)
{
	READLINK3args a = { .symlink = fh_wire(fh) };
	return call(c, P_READLINK, &a, r);
}

static int do_mknod(struct conn *c, const struct fh *dir, const char *name, int type,
		    uint32_t major, uint32_t minor, struct res *r)
{
	MKNOD3args a;

	memset(&a, 0, sizeof(a));
	a.where.dir = fh_wire(dir);
	a.where.name = (char *)name;
	a.what.type = type;
	switch (type) {
	case NF3CHR:
		a.what.mknoddata3_u.chr_device.dev_attributes = sattr_mode(0600);
		a.what.mknoddata3_u.chr_device.spec.specdata1 = major;
		a.what.mknoddata3_u.chr_device.spec.specdata2 = minor;
		break;
	case NF3BLK:
		a.what.mknoddata3_u.blk_device.dev_attributes = sattr_mode(0600);
		a.what.mknoddata3_u.blk_device.spec.specdata1 = major;
		a.what.mknoddata3_u.blk_device.spec.specdata2 = minor;
		break;
	case NF3SOCK:
		a.what.mknoddata3_u.sock_attributes = sattr_mode(0600);
		break;
	case NF3FIFO:
		a.what.mknoddata3_u.pipe_attributes = sattr_mode(0600);
		break;
	default:
		break;
	}
	return call(c, P_MKNOD, &a, r);
}

static int do_fsroot(struct conn *c, enum proc p, const struct fh *fh, struct res *r)
{
	FSINFO3args fi = { .fsroot = fh_wire(fh) };
	FSSTAT3args fs = { .fsroot = fh_wire(fh) };
	PATHCONF3args pc = { .object = fh_wire(fh) };

	return call(c, p, p == P_FSINFO ? (void *)&fi : p == P_FSSTAT ? (void *)&fs : (void *)&pc, r);
}

static int do_mnt(struct conn *c, const char *path, struct res *r)
{
	return call(c, M_MNT, (void *)path, r);
}

/* ---- check helpers ----------------------------------------------------- */

/* Status check: @want is the expected status, @alt an accepted alternative (or -2). */
static bool expect2(const char *what, const struct res *r, int want, int alt)
{
	if (r->stat == want || (alt != -2 && r->stat == alt))
		return check(true, "%s: %s", what, nfs_stat_name(r->stat));
	if (alt != -2)
		return check(false, "%s: expected %s or %s, got %s (%d)", what, nfs_stat_name(want),
			     nfs_stat_name(alt), nfs_stat_name(r->stat), r->stat);
	return check(false, "%s: expected %s, got %s (%d)", what, nfs_stat_name(want),
		     nfs_stat_name(r->stat), r->stat);
}

static bool expect(const char *what, const struct res *r, int want)
{
	return expect2(what, r, want, -2);
}

static bool expect_not_ok(const char *what, const struct res *r)
{
	return check(r->stat > 0, "%s: refused (%s)", what, nfs_stat_name(r->stat));
}

static bool expect_mnt(const char *what, const struct res *r, int want)
{
	return check(r->stat == want, "%s: expected %s, got %s", what, mnt_stat_name(want),
		     mnt_stat_name(r->stat));
}

/* Fill @buf with a byte pattern that depends on the absolute file offset. */
static void pattern(uint8_t *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = off + i;
		buf[i] = (uint8_t)(x * 2654435761u >> 13);
	}
}

static bool names_contain(const struct res *r, const char *s, bool suffix)
{
	size_t sl = strlen(s);

	for (size_t i = 0; i < r->nnames; i++) {
		size_t nl = strlen(r->names[i]);
		if (suffix ? (nl >= sl && strcmp(r->names[i] + nl - sl, s) == 0 &&
			      (nl == sl || r->names[i][nl - sl - 1] == ' '))
			   : strcmp(r->names[i], s) == 0)
			return true;
	}
	return false;
}

/* ---- the "procs" mode -------------------------------------------------- */

struct opts {
	const char *server, *other_server;
	const char *rw, *ro, *squash, *other;
	uint32_t anonuid;
	const char *export, *expect_text, *out, *in;
};

static void test_mount(struct conn *m, const struct opts *o, struct fh *rwroot,
		       struct fh *roroot, struct fh *sqroot)
{
	struct res r = { .stat = -1 };
	char path[4200];
	bool auth_unix = false;

	if (call(m, M_NULL, NULL, &r) == 0)
		check(true, "MOUNT NULL");

	if (call(m, M_EXPORT, NULL, &r) == 0) {
		check(names_contain(&r, o->rw, false), "MOUNT EXPORT lists %s", o->rw);
		check(names_contain(&r, o->ro, false), "MOUNT EXPORT lists %s", o->ro);
		if (o->other)
			check(!names_contain(&r, o->other, false),
			      "MOUNT EXPORT on %s does not list the other group's %s", o->server,
			      o->other);
	}

	if (do_mnt(m, o->rw, &r) == 0 && expect_mnt("MOUNT MNT rw export", &r, MNT3_OK)) {
		*rwroot = r.fh;
		check(r.fh.len > 0 && r.fh.len <= NFS3_FHSIZE, "MNT handle length %u in 1..64", r.fh.len);
		for (size_t i = 0; i < r.nflavors; i++)
			auth_unix |= r.flavors[i] == 1;
		check(auth_unix, "MNT offers AUTH_UNIX among %zu flavor(s)", r.nflavors);
	}
	if (do_mnt(m, o->ro, &r) == 0 && expect_mnt("MOUNT MNT ro export", &r, MNT3_OK))
		*roroot = r.fh;
	if (o->squash && do_mnt(m, o->squash, &r) == 0 &&
	    expect_mnt("MOUNT MNT root-squash export", &r, MNT3_OK))
		*sqroot = r.fh;

	snprintf(path, sizeof(path), "%s/subdir", o->ro);
	if (do_mnt(m, path, &r) == 0)
		expect_mnt("MOUNT MNT of a directory below an export", &r, MNT3_OK);
	snprintf(path, sizeof(path), "%s/no-such-dir", o->rw);
	if (do_mnt(m, path, &r) == 0)
		expect_mnt("MOUNT MNT of a missing path", &r, MNT3ERR_NOENT);
	snprintf(path, sizeof(path), "%s/readme.txt", o->ro);
	if (do_mnt(m, path, &r) == 0)
		expect_mnt("MOUNT MNT of a regular file", &r, MNT3ERR_NOTDIR);
	snprintf(path, sizeof(path), "%s/../..", o->ro);
	if (do_mnt(m, path, &r) == 0)
		check(r.stat != MNT3_OK, "MOUNT MNT %s (escapes the export) refused: %s", path,
		      mnt_stat_name(r.stat));
	if (do_mnt(m, "/", &r) == 0)
		check(r.stat != MNT3_OK, "MOUNT MNT / (not exported) refused: %s", mnt_stat_name(r.stat));
	if (o->other && do_mnt(m, o->other, &r) == 0)
		check(r.stat != MNT3_OK, "MOUNT MNT of the other group's export on %s refused: %s",
		      o->server, mnt_stat_name(r.stat));

	if (call(m, M_DUMP, NULL, &r) == 0)
		check(names_contain(&r, o->rw, true), "MOUNT DUMP lists the mount of %s (%zu entries)",
		      o->rw, r.nnames);
	res_free(&r);
}

static void test_umount(struct conn *m, const struct opts *o)
{
	struct res r = { .stat = -1 };

	if (call(m, M_UMNT, (void *)o->rw, &r) == 0)
		check(true, "MOUNT UMNT %s", o->rw);
	if (call(m, M_DUMP, NULL, &r) == 0)
		check(!names_contain(&r, o->rw, true), "MOUNT DUMP no longer lists %s after UMNT",
		      o->rw);
	res_free(&r);
}

/* Read a whole directory with READDIR or READDIRPLUS; returns its entries. */
static struct dent *list_dir(struct conn *c, const struct fh *dir, bool plus, uint32_t count,
			     size_t *nout, unsigned *ncalls, bool *ok)
{
	struct res r = { .stat = -1 };
	struct dent *all = NULL;
	size_t n = 0, cap = 0;
	uint64_t cookie = 0;
	uint8_t verf[NFS3_COOKIEVERFSIZE] = { 0 };
	const char *what = plus ? "READDIRPLUS" : "READDIR";

	*ok = false;
	*ncalls = 0;
	for (;;) {
		int rc = plus ? do_readdirplus(c, dir, cookie, verf, count / 4, count, &r)
			      : do_readdir(c, dir, cookie, verf, count, &r);
		if (rc < 0)
			break;
		(*ncalls)++;
		if (r.stat != NFS3_OK) {
			check(false, "%s call %u (cookie %" PRIu64 "): %s", what, *ncalls, cookie,
			      nfs_stat_name(r.stat));
			break;
		}
		if (r.nents == 0 && !r.eof) {
			check(false, "%s call %u returned no entry and no eof", what, *ncalls);
			break;
		}
		if (n + r.nents > cap) {
			cap = (n + r.nents) * 2;
			all = realloc(all, cap * sizeof(*all));
			if (!all) {
				fprintf(stderr, "out of memory\n");
				exit(2);
			}
		}
		for (size_t i = 0; i < r.nents; i++) {
			all[n++] = r.ents[i];
			r.ents[i].name = NULL; /* moved */
		}
		if (r.nents)
			cookie = r.ents[r.nents - 1].cookie;
		memcpy(verf, r.cookieverf, sizeof(verf));
		if (r.eof) {
			*ok = true;
			break;
		}
		if (*ncalls > 100000) {
			check(false, "%s does not reach eof", what);
			break;
		}
	}
	res_free(&r);
	*nout = n;
	return all;
}

static void free_dents(struct dent *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint32_t g_rtmax, g_wtmax;   /* from FSINFO */

/* READ/WRITE at the server's limits: wtmax-sized writes, an oversized READ. */
static void test_large_io(struct conn *c, const struct fh *root)
{
	struct res r = { .stat = -1 };
	struct fh f;
	sattr3 s = sattr_mode(0644);
	uint32_t chunk = g_wtmax && g_wtmax <= (1u << 20) ? g_wtmax : (1u << 20);
	uint64_t size = 2 * (uint64_t)chunk + 1, off, got = 0;
	uint8_t *buf = xmalloc(chunk);
	unsigned bad = 0, reads = 0;
	bool over = false;

	if (do_create(c, root, "large", UNCHECKED, &s, NULL, &r) < 0 ||
	    !expect("CREATE large", &r, NFS3_OK) || !r.has_fh)
		goto out;
	f = r.fh;
	for (off = 0; off < size; off += chunk) {
		uint32_t n = size - off < chunk ? (uint32_t)(size - off) : chunk;
		pattern(buf, n, off);
		if (do_write(c, &f, off, buf, n, UNSTABLE, &r) < 0 || r.stat != NFS3_OK || r.count != n) {
			check(false, "WRITE %u bytes at %" PRIu64 ": %s, count %u", n, off,
			      nfs_stat_name(r.stat), r.count);
			goto out;
		}
	}
	check(true, "WRITE UNSTABLE %" PRIu64 " bytes in %u-byte (wtmax) chunks", size, chunk);
	if (do_commit(c, &f, 0, 0, &r) == 0)
		expect("COMMIT large", &r, NFS3_OK);
	/* Ask for more than rtmax: the server clamps, and says so in count. */
	for (off = 0; off < size + 1 && reads < 100; reads++) {
		if (do_read(c, &f, off, 4u << 20, &r) < 0 || r.stat != NFS3_OK) {
			check(false, "READ 4 MiB at %" PRIu64 ": %s", off, nfs_stat_name(r.stat));
			goto out;
		}
		if (g_rtmax && r.count > g_rtmax)
			over = true;
		if (r.datalen != r.count)
			bad++;
		for (size_t i = 0; i < r.datalen; i += 4093) {
			uint8_t want;
			pattern(&want, 1, off + i);
			if (r.data[i] != want) {
				bad++;
				break;
			}
		}
		got += r.count;
		off += r.count;
		if (r.eof || r.count == 0)
			break;
	}
	check(!over, "READ of 4 MiB is clamped to rtmax %u", g_rtmax);
	check(got == size && bad == 0, "READ returns all %" PRIu64 " bytes intact in %u calls "
	      "(got %" PRIu64 ", %u bad)", size, reads + 1, got, bad);
	check(r.eof, "the last READ sets eof");
out:
	free(buf);
	res_free(&r);
}

static void test_bigdir(struct conn *c, const struct fh *root)
{
	struct res r = { .stat = -1 };
	struct fh big;
	sattr3 s = sattr_mode(0644);
	unsigned created = 0;

	if (do_mkdir(c, root, "bigdir", 0755, &r) < 0 || !expect("MKDIR bigdir", &r, NFS3_OK) ||
	    !r.has_fh) {
		res_free(&r);
		return;
	}
	big = r.fh;
	for (unsigned i = 0; i < BIGDIR_ENTRIES; i++) {
		char name[64];
		snprintf(name, sizeof(name), "entry-%04u-with-a-longer-name", i);
		if (do_create(c, &big, name, UNCHECKED, &s, NULL, &r) < 0)
			break;
		if (r.stat == NFS3_OK)
			created++;
	}
	check(created == BIGDIR_ENTRIES, "CREATE %u files in bigdir (%u succeeded)",
	      BIGDIR_ENTRIES, created);

	for (int plus = 0; plus < 2; plus++) {
		const char *what = plus ? "READDIRPLUS" : "READDIR";
		size_t n = 0, dots = 0, mine = 0, dups = 0, bad_attr = 0, bad_fh = 0;
		unsigned calls = 0;
		bool ok;
		struct dent *d = list_dir(c, &big, plus, plus ? 8192 : 2048, &n, &calls, &ok);
		char **names = xmalloc(n * sizeof(char *));

		check(ok, "%s of %u entries reaches eof", what, BIGDIR_ENTRIES);
		check(calls > 1, "%s needed %u calls (cookies were followed)", what, calls);
		for (size_t i = 0; i < n; i++) {
			names[i] = d[i].name;
			if (strcmp(d[i].name, ".") == 0 || strcmp(d[i].name, "..") == 0)
				dots++;
			else if (strncmp(d[i].name, "entry-", 6) == 0)
				mine++;
			if (plus && strncmp(d[i].name, "entry-", 6) == 0) {
				if (!d[i].has_attr || d[i].attr.type != NF3REG ||
				    d[i].attr.fileid != d[i].fileid)
					bad_attr++;
				if (!d[i].has_fh || d[i].fh.len == 0)
					bad_fh++;
			}
		}
		qsort(names, n, sizeof(char *), cmp_str);
		for (size_t i = 1; i < n; i++)
			if (strcmp(names[i - 1], names[i]) == 0)
				dups++;
		check(mine == BIGDIR_ENTRIES, "%s lists all %u files (got %zu)", what,
		      BIGDIR_ENTRIES, mine);
		check(dups == 0, "%s lists no name twice (%zu duplicates)", what, dups);
		check(n == mine + dots, "%s lists nothing else (%zu entries, %zu dot entries)", what,
		      n, dots);
		if (plus) {
			check(bad_attr == 0, "READDIRPLUS: every file has attributes of type REG with "
			      "a matching fileid (%zu bad)", bad_attr);
			check(bad_fh == 0, "READDIRPLUS: every file has a handle (%zu missing)", bad_fh);
			/* A handle READDIRPLUS gave works and names the same file. */
			for (size_t i = 0; i < n; i++) {
				if (d[i].has_fh && strncmp(d[i].name, "entry-", 6) == 0) {
					if (do_getattr(c, &d[i].fh, &r) == 0)
						check(r.stat == NFS3_OK && r.attr.fileid == d[i].fileid,
						      "GETATTR with a READDIRPLUS handle (%s): %s",
						      d[i].name, nfs_stat_name(r.stat));
					break;
				}
			}
		}
		free(names);
		free_dents(d, n);
	}

	/* A count too small for any entry. */
	if (do_readdir(c, &big, 0, NULL, 8, &r) == 0)
		expect("READDIR with count 8 (too small for one entry)", &r, NFS3ERR_TOOSMALL);

	/*
	 * "rm -rf" over NFS: read a batch, remove what it named, continue from
	 * the batch's last cookie.  Cookies that are positions in a list shift
	 * when entries go, and then files are skipped and survive.
	 */
	{
		uint64_t cookie = 0;
		uint8_t verf[NFS3_COOKIEVERFSIZE] = { 0 };
		unsigned removed = 0, calls = 0, errors = 0;
		bool done = false;

		while (!done && calls < 10000) {
			struct dent *batch;
			size_t nb;

			if (do_readdir(c, &big, cookie, verf, 2048, &r) < 0 || r.stat != NFS3_OK) {
				check(false, "READDIR while removing (cookie %" PRIu64 "): %s", cookie,
				      nfs_stat_name(r.stat));
				break;
			}
			calls++;
			done = r.eof;
			memcpy(verf, r.cookieverf, sizeof(verf));
			if (r.nents)
				cookie = r.ents[r.nents - 1].cookie;
			batch = r.ents;
			nb = r.nents;
			r.ents = NULL;
			r.nents = 0;
			for (size_t i = 0; i < nb; i++) {
				struct res rr = { .stat = -1 };
				if (strcmp(batch[i].name, ".") == 0 || strcmp(batch[i].name, "..") == 0)
					continue;
				if (do_remove(c, &big, batch[i].name, &rr) == 0 && rr.stat == NFS3_OK)
					removed++;
				else
					errors++;
				res_free(&rr);
			}
			free_dents(batch, nb);
		}
		check(removed == BIGDIR_ENTRIES && errors == 0,
		      "READDIR + REMOVE interleaved (rm -rf) removed all %u files in %u READDIRs "
		      "(%u removed, %u errors)", BIGDIR_ENTRIES, calls, removed, errors);
		if (do_readdir(c, &big, 0, NULL, 4096, &r) == 0 && expect("READDIR of the emptied bigdir", &r, NFS3_OK))
			check(r.nents == 2 && r.eof, "bigdir now lists only . and .. (%zu entries)", r.nents);
		if (do_rmdir(c, root, "bigdir", &r) == 0)
			expect("RMDIR the emptied bigdir", &r, NFS3_OK);
	}
	res_free(&r);
}

static void test_rw(struct conn *c, const struct opts *o, const struct fh *root,
		    const struct fh *sqroot, struct fh *other_group_fh)
{
	struct res r = { .stat = -1 };
	struct fh f1, d1, ex, sl, fifo;
	fattr3 rootattr, f1attr;
	sattr3 s;
	uint8_t verf_a[8] = { 'v', 'e', 'r', 'f', '-', 'a', 0, 1 };
	uint8_t verf_b[8] = { 'v', 'e', 'r', 'f', '-', 'b', 0, 2 };
	uint8_t wverf[8];
	static uint8_t buf[65536], back[65536];
	const char hello[] = "hello, sgnfs\n";
	char longname[300];
	bool have_f1 = false, have_d1 = false;

	memset(&f1, 0, sizeof(f1));
	memset(&d1, 0, sizeof(d1));
	memset(&ex, 0, sizeof(ex));
	memset(&sl, 0, sizeof(sl));
	memset(&fifo, 0, sizeof(fifo));

	/* NULL, GETATTR, FSINFO, FSSTAT, PATHCONF, ACCESS on the root. */
	if (call(c, P_NULL, NULL, &r) == 0)
		check(true, "NULL");
	if (do_getattr(c, root, &r) < 0 || !expect("GETATTR export root", &r, NFS3_OK))
		return;
	rootattr = r.attr;
	check(rootattr.type == NF3DIR, "GETATTR root: type DIR (%d)", rootattr.type);
	check(rootattr.nlink >= 2, "GETATTR root: nlink %u >= 2", rootattr.nlink);
	check(rootattr.fileid != 0, "GETATTR root: fileid %" PRIu64 " != 0", rootattr.fileid);
	check(rootattr.uid == 0, "GETATTR root: uid %u == 0 (squash none)", rootattr.uid);

	if (do_fsroot(c, P_FSINFO, root, &r) == 0 && expect("FSINFO", &r, NFS3_OK)) {
		FSINFO3resok *fi = &r.fsinfo;
		g_rtmax = fi->rtmax;
		g_wtmax = fi->wtmax;
		check(fi->rtmax >= 4096 && fi->rtpref >= 512 && fi->rtpref <= fi->rtmax,
		      "FSINFO rtmax %u >= 4096, rtpref %u in 512..rtmax", fi->rtmax, fi->rtpref);
		check(fi->wtmax >= 4096 && fi->wtpref >= 512 && fi->wtpref <= fi->wtmax,
		      "FSINFO wtmax %u >= 4096, wtpref %u in 512..wtmax", fi->wtmax, fi->wtpref);
		check(fi->dtpref >= 512, "FSINFO dtpref %u >= 512", fi->dtpref);
		check(fi->maxfilesize >= (1ull << 31), "FSINFO maxfilesize %" PRIu64 " >= 2 GiB",
		      fi->maxfilesize);
		check((fi->properties & (FSF3_LINK | FSF3_SYMLINK)) == (FSF3_LINK | FSF3_SYMLINK),
		      "FSINFO properties 0x%x include LINK and SYMLINK", fi->properties);
		check(r.has_attr && r.attr.fileid == rootattr.fileid, "FSINFO carries the root's attributes");
	}
	if (do_fsroot(c, P_FSSTAT, root, &r) == 0 && expect("FSSTAT", &r, NFS3_OK)) {
		FSSTAT3resok *fs = &r.fsstat;
		check(fs->tbytes > 0 && fs->fbytes <= fs->tbytes && fs->abytes <= fs->fbytes,
		      "FSSTAT bytes: total %" PRIu64 " >= free %" PRIu64 " >= avail %" PRIu64,
		      fs->tbytes, fs->fbytes, fs->abytes);
		check(fs->ffiles <= fs->tfiles && fs->afiles <= fs->ffiles,
		      "FSSTAT files: total %" PRIu64 " >= free %" PRIu64 " >= avail %" PRIu64,
		      fs->tfiles, fs->ffiles, fs->afiles);
	}
	if (do_fsroot(c, P_PATHCONF, root, &r) == 0 && expect("PATHCONF", &r, NFS3_OK)) {
		check(r.pathconf.name_max >= 255, "PATHCONF name_max %u >= 255", r.pathconf.name_max);
		check(r.pathconf.linkmax >= 1, "PATHCONF linkmax %u >= 1", r.pathconf.linkmax);
		check(r.pathconf.case_preserving, "PATHCONF case_preserving");
		check(!r.pathconf.case_insensitive, "PATHCONF not case_insensitive");
	}
	if (do_access(c, root, 0x3f, &r) == 0 && expect("ACCESS root (all bits)", &r, NFS3_OK)) {
		uint32_t need = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND |
				ACCESS3_DELETE;
		check((r.access & need) == need, "ACCESS root grants read/lookup/modify/extend/delete "
		      "(0x%x)", r.access);
		check((r.access & ~0x3fu) == 0, "ACCESS grants no bit that was not asked (0x%x)", r.access);
	}

	/* LOOKUP: ".", "..", missing names. */
	if (do_lookup(c, root, ".", &r) == 0 && expect("LOOKUP . in export root", &r, NFS3_OK))
		check(r.has_attr && r.attr.fileid == rootattr.fileid, "LOOKUP . is the root itself");
	if (do_lookup(c, root, "..", &r) == 0)
		check(r.stat != NFS3_OK || (r.has_attr && r.attr.fileid == rootattr.fileid),
		      "LOOKUP .. at the export root does not leave the export (%s, fileid %" PRIu64 ")",
		      nfs_stat_name(r.stat), r.has_attr ? r.attr.fileid : 0);
	if (do_lookup(c, root, "missing", &r) == 0) {
		expect("LOOKUP missing name", &r, NFS3ERR_NOENT);
		check(r.has_dir_attr, "LOOKUP failure carries the directory's attributes");
	}

	/* CREATE: unchecked, guarded, attributes. */
	s = sattr_mode(0666);
	if (do_create(c, root, "f1", UNCHECKED, &s, NULL, &r) == 0 &&
	    expect("CREATE UNCHECKED f1 mode 0666", &r, NFS3_OK)) {
		check(r.has_fh, "CREATE returns a handle");
		check(r.has_attr && r.attr.type == NF3REG, "CREATE f1: type REG");
		check(r.has_attr && (r.attr.mode & 07777) == 0666,
		      "CREATE f1: mode 0%o == 0666 (no server umask)", r.attr.mode & 07777);
		check(r.has_attr && r.attr.size == 0, "CREATE f1: size 0");
		check(r.has_attr && r.attr.uid == 0 && r.attr.gid == 0, "CREATE f1: owner 0:0 (got %u:%u)",
		      r.attr.uid, r.attr.gid);
		check(r.has_dir_attr && r.dir_attr.fileid == rootattr.fileid,
		      "CREATE returns the directory's post-op attributes");
		check(r.has_before, "CREATE returns the directory's pre-op attributes");
		f1 = r.fh;
		have_f1 = r.has_fh;
	}
	if (!have_f1)
		return;
	if (do_create(c, root, "f1", GUARDED, &s, NULL, &r) == 0)
		expect("CREATE GUARDED f1 (exists)", &r, NFS3ERR_EXIST);
	s = sattr_none();
	if (do_create(c, root, "f1", UNCHECKED, &s, NULL, &r) == 0 &&
	    expect("CREATE UNCHECKED f1 again (exists)", &r, NFS3_OK))
		check(!r.has_fh || fh_eq(&r.fh, &f1), "CREATE UNCHECKED on an existing file names it");

	/* LOOKUP of the new file, and inside a file. */
	if (do_lookup(c, root, "f1", &r) == 0 && expect("LOOKUP f1", &r, NFS3_OK)) {
		check(fh_eq(&r.fh, &f1), "LOOKUP f1 returns the CREATE handle byte for byte");
		check(r.has_attr && r.attr.type == NF3REG, "LOOKUP f1: attributes type REG");
	}
	if (do_lookup(c, &f1, "x", &r) == 0)
		expect("LOOKUP in a regular file", &r, NFS3ERR_NOTDIR);

	/* Bad names. */
	memset(longname, 'n', 256);
	longname[256] = 0;
	s = sattr_mode(0644);
	/*
	 * RFC 1813 filename3 is an unbounded string<>, and NAMETOOLONG is the
	 * answer; a server whose XDR bounds names at 255 answers GARBAGE_ARGS
	 * instead.  Either keeps the name off the disk; the second is noted.
	 */
	rpc_errors_expected = true;
	do_create(c, root, longname, UNCHECKED, &s, NULL, &r);
	rpc_errors_expected = false;
	if (r.stat == -3)
		printf("note - CREATE with a 256-byte name: RPC error (%s), not NFS3ERR_NAMETOOLONG\n",
		       r.rpc_err);
	check(r.stat == NFS3ERR_NAMETOOLONG || (r.stat == -3 && strstr(r.rpc_err, "Garbage")),
	      "CREATE with a 256-byte name refused (%s)", r.stat == -3 ? r.rpc_err : nfs_stat_name(r.stat));
	rpc_errors_expected = true;
	do_lookup(c, root, longname, &r);
	rpc_errors_expected = false;
	if (r.stat == -3)
		printf("note - LOOKUP with a 256-byte name: RPC error (%s), not NFS3ERR_NAMETOOLONG\n",
		       r.rpc_err);
	check(r.stat == NFS3ERR_NAMETOOLONG || r.stat == NFS3ERR_NOENT ||
	      (r.stat == -3 && strstr(r.rpc_err, "Garbage")),
	      "LOOKUP with a 256-byte name refused (%s)", r.stat == -3 ? r.rpc_err : nfs_stat_name(r.stat));
	longname[255] = 0;
	if (do_create(c, root, longname, UNCHECKED, &s, NULL, &r) == 0)
		expect("CREATE with a 255-byte name (the limit)", &r, NFS3_OK);
	if (do_remove(c, root, longname, &r) == 0)
		expect("REMOVE the 255-byte name", &r, NFS3_OK);
	if (do_create(c, root, "a/b", UNCHECKED, &s, NULL, &r) == 0)
		expect_not_ok("CREATE name containing '/'", &r);
	if (do_create(c, root, "", UNCHECKED, &s, NULL, &r) == 0)
		expect_not_ok("CREATE empty name", &r);
	if (do_create(c, root, "..", UNCHECKED, &s, NULL, &r) == 0)
		expect_not_ok("CREATE ..", &r);

	/* WRITE FILE_SYNC and READ back. */
	if (do_write(c, &f1, 0, hello, sizeof(hello) - 1, FILE_SYNC, &r) == 0 &&
	    expect("WRITE FILE_SYNC 13 bytes at 0", &r, NFS3_OK)) {
		check(r.count == sizeof(hello) - 1, "WRITE count %u == 13", r.count);
		check(r.committed == FILE_SYNC, "WRITE FILE_SYNC committed %d == FILE_SYNC", r.committed);
		check(r.has_attr && r.attr.size == sizeof(hello) - 1, "WRITE post-op size 13");
	}
	if (do_read(c, &f1, 0, 100, &r) == 0 && expect("READ 100 bytes at 0", &r, NFS3_OK)) {
		check(r.count == sizeof(hello) - 1 && r.datalen == r.count &&
		      memcmp(r.data, hello, r.datalen) == 0, "READ returns the 13 bytes written");
		check(r.eof, "READ to end of file sets eof");
		check(r.has_attr && r.attr.size == sizeof(hello) - 1, "READ post-op attributes size 13");
	}
	if (do_read(c, &f1, 5, 3, &r) == 0 && expect("READ 3 bytes at 5", &r, NFS3_OK))
		check(r.count == 3 && memcmp(r.data, hello + 5, 3) == 0 && !r.eof,
		      "READ in the middle: right bytes, no eof");
	if (do_read(c, &f1, 1000, 10, &r) == 0 && expect("READ past end of file", &r, NFS3_OK))
		check(r.count == 0 && r.eof, "READ past EOF: count 0, eof");
	if (do_read(c, &f1, 0, 0, &r) == 0)
		expect("READ count 0", &r, NFS3_OK);

	/* WRITE UNSTABLE twice + COMMIT: one verifier. */
	pattern(buf, sizeof(buf), 4096);
	if (do_write(c, &f1, 4096, buf, 32768, UNSTABLE, &r) == 0 &&
	    expect("WRITE UNSTABLE 32 KiB at 4096", &r, NFS3_OK)) {
		memcpy(wverf, r.verf, sizeof(wverf));
		check(r.count == 32768, "WRITE UNSTABLE count %u == 32768", r.count);
		check(r.committed >= UNSTABLE && r.committed <= FILE_SYNC, "WRITE committed %d valid",
		      r.committed);
		if (do_write(c, &f1, 4096 + 32768, buf + 32768, 32768, UNSTABLE, &r) == 0 &&
		    expect("WRITE UNSTABLE second 32 KiB", &r, NFS3_OK))
			check(memcmp(r.verf, wverf, 8) == 0, "both UNSTABLE WRITEs carry one verifier");
		if (do_commit(c, &f1, 0, 0, &r) == 0 && expect("COMMIT whole file", &r, NFS3_OK)) {
			check(memcmp(r.verf, wverf, 8) == 0, "COMMIT verifier == WRITE verifier");
			check(r.has_attr && r.attr.size == 4096 + 65536, "COMMIT post-op size %" PRIu64,
			      r.has_attr ? r.attr.size : 0);
		}
		if (do_commit(c, &f1, 4096, 100, &r) == 0 && expect("COMMIT a range", &r, NFS3_OK))
			check(memcmp(r.verf, wverf, 8) == 0, "COMMIT (range) verifier unchanged");
	}
	if (do_read(c, &f1, 4096, 65536, &r) == 0 && expect("READ 64 KiB at 4096", &r, NFS3_OK)) {
		check(r.count == 65536 && r.datalen == 65536 && memcmp(r.data, buf, 65536) == 0,
		      "READ returns the 64 KiB written UNSTABLE (count %u)", r.count);
		check(r.eof, "READ up to the end sets eof");
	}
	if (do_read(c, &f1, 0, 4096, &r) == 0 && expect("READ of the gap", &r, NFS3_OK)) {
		memset(back, 0, 4096);
		memcpy(back, hello, sizeof(hello) - 1);
		check(r.count == 4096 && memcmp(r.data, back, 4096) == 0,
		      "READ: the 13 bytes then zeros up to 4096");
	}
	if (do_write(c, &f1, 0, hello, sizeof(hello) - 1, DATA_SYNC, &r) == 0 &&
	    expect("WRITE DATA_SYNC", &r, NFS3_OK))
		check(r.committed >= DATA_SYNC, "WRITE DATA_SYNC committed %d >= DATA_SYNC", r.committed);

	/* SETATTR: size, mode, times, guard. */
	if (do_getattr(c, &f1, &r) == 0 && expect("GETATTR f1", &r, NFS3_OK)) {
		f1attr = r.attr;
		check(f1attr.size == 4096 + 65536, "GETATTR f1 size %" PRIu64 " == 69632", f1attr.size);
		s = sattr_none();
		s.size.set_it = 1;
		s.size.set_size3_u.size = 5;
		if (do_setattr(c, &f1, &s, NULL, &r) == 0 && expect("SETATTR size 5", &r, NFS3_OK))
			check(r.has_attr && r.attr.size == 5, "SETATTR post-op size 5");
		s = sattr_mode(0600);
		if (do_setattr(c, &f1, &s, &f1attr.ctime, &r) == 0)
			expect("SETATTR with a stale ctime guard", &r, NFS3ERR_NOT_SYNC);
		if (do_getattr(c, &f1, &r) == 0 && expect("GETATTR f1 again", &r, NFS3_OK)) {
			f1attr = r.attr;
			check(f1attr.size == 5, "size is 5 after SETATTR");
			if (do_setattr(c, &f1, &s, &f1attr.ctime, &r) == 0 &&
			    expect("SETATTR mode 0600 with the right ctime guard", &r, NFS3_OK))
				check(r.has_attr && (r.attr.mode & 07777) == 0600, "SETATTR mode 0%o == 0600",
				      r.attr.mode & 07777);
		}
		s = sattr_none();
		s.mtime.set_it = SET_TO_CLIENT_TIME;
		s.mtime.set_mtime_u.mtime.seconds = 1000000000;
		s.mtime.set_mtime_u.mtime.nseconds = 5000;
		s.atime.set_it = SET_TO_CLIENT_TIME;
		s.atime.set_atime_u.atime.seconds = 999999999;
		if (do_setattr(c, &f1, &s, NULL, &r) == 0 && expect("SETATTR client mtime/atime", &r, NFS3_OK))
			check(r.has_attr && r.attr.mtime.seconds == 1000000000 &&
			      r.attr.mtime.nseconds == 5000 && r.attr.atime.seconds == 999999999,
			      "SETATTR times set exactly (mtime %u.%09u)", r.attr.mtime.seconds,
			      r.attr.mtime.nseconds);
		s = sattr_none();
		s.mtime.set_it = SET_TO_SERVER_TIME;
		if (do_setattr(c, &f1, &s, NULL, &r) == 0 && expect("SETATTR mtime to server time", &r, NFS3_OK))
			check(r.has_attr && r.attr.mtime.seconds > 1000000000, "mtime moved to now");
		s = sattr_none();
		s.uid.set_it = 1;
		s.uid.set_uid3_u.uid = 4242;
		s.gid.set_it = 1;
		s.gid.set_gid3_u.gid = 4343;
		if (do_setattr(c, &f1, &s, NULL, &r) == 0 && expect("SETATTR uid/gid (as root)", &r, NFS3_OK))
			check(r.has_attr && r.attr.uid == 4242 && r.attr.gid == 4343,
			      "SETATTR owner 4242:4343 (got %u:%u)", r.attr.uid, r.attr.gid);
	}

	/* ACCESS on a file. */
	if (do_access(c, &f1, ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_LOOKUP, &r) == 0 &&
	    expect("ACCESS f1", &r, NFS3_OK))
		check((r.access & (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND)) ==
		      (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND),
		      "ACCESS f1 grants read/modify/extend to root (0x%x)", r.access);

	/* Exclusive CREATE and its replay. */
	if (do_create(c, root, "excl", EXCLUSIVE, NULL, verf_a, &r) == 0 &&
	    expect("CREATE EXCLUSIVE excl (verifier A)", &r, NFS3_OK)) {
		fattr3 first = r.attr;
		bool had = r.has_attr;
		ex = r.fh;
		if (!r.has_fh && do_lookup(c, root, "excl", &r) == 0)
			ex = r.fh;
		if (do_create(c, root, "excl", EXCLUSIVE, NULL, verf_a, &r) == 0 &&
		    expect("CREATE EXCLUSIVE replay with the same verifier", &r, NFS3_OK)) {
			check(!r.has_fh || fh_eq(&r.fh, &ex), "the replay returns the same handle");
			check(!had || !r.has_attr || r.attr.fileid == first.fileid,
			      "the replay names the same file");
		}
		if (do_create(c, root, "excl", EXCLUSIVE, NULL, verf_b, &r) == 0)
			expect("CREATE EXCLUSIVE with a different verifier", &r, NFS3ERR_EXIST);
		/* Clients set the real attributes after an exclusive create. */
		s = sattr_mode(0640);
		if (do_setattr(c, &ex, &s, NULL, &r) == 0 &&
		    expect("SETATTR mode after EXCLUSIVE create", &r, NFS3_OK))
			check(r.has_attr && (r.attr.mode & 07777) == 0640, "mode 0%o == 0640",
			      r.attr.mode & 07777);
	}
	if (do_create(c, root, "f1", EXCLUSIVE, NULL, verf_a, &r) == 0)
		expect("CREATE EXCLUSIVE over a file not created exclusively", &r, NFS3ERR_EXIST);

	/* MKDIR, NOTEMPTY, ISDIR, NOTDIR. */
	if (do_mkdir(c, root, "d1", 0755, &r) == 0 && expect("MKDIR d1", &r, NFS3_OK)) {
		check(r.has_fh, "MKDIR returns a handle");
		check(r.has_attr && r.attr.type == NF3DIR && (r.attr.mode & 07777) == 0755,
		      "MKDIR d1: type DIR, mode 0%o", r.attr.mode & 07777);
		d1 = r.fh;
		have_d1 = r.has_fh;
	}
	if (do_mkdir(c, root, "d1", 0755, &r) == 0)
		expect("MKDIR d1 again", &r, NFS3ERR_EXIST);
	if (do_mkdir(c, root, "f1", 0755, &r) == 0)
		expect("MKDIR over an existing file", &r, NFS3ERR_EXIST);
	if (have_d1) {
		s = sattr_mode(0644);
		if (do_create(c, &d1, "inner", UNCHECKED, &s, NULL, &r) == 0)
			expect("CREATE d1/inner", &r, NFS3_OK);
		if (do_rmdir(c, root, "d1", &r) == 0)
			expect("RMDIR non-empty d1", &r, NFS3ERR_NOTEMPTY);
		if (do_read(c, &d1, 0, 100, &r) == 0)
			expect("READ a directory", &r, NFS3ERR_ISDIR);
		if (do_write(c, &d1, 0, hello, 4, FILE_SYNC, &r) == 0)
			expect2("WRITE a directory", &r, NFS3ERR_ISDIR, NFS3ERR_INVAL);
		if (do_remove(c, root, "d1", &r) == 0)
			expect2("REMOVE a directory", &r, NFS3ERR_ISDIR, NFS3ERR_NOTEMPTY);
		if (do_lookup(c, &d1, "..", &r) == 0 && expect("LOOKUP .. from d1", &r, NFS3_OK))
			check(r.has_attr && r.attr.fileid == rootattr.fileid, "LOOKUP .. from d1 is the root");
		if (do_lookup(c, &d1, "inner", &r) == 0)
			expect("LOOKUP d1/inner", &r, NFS3_OK);
	}
	if (do_rmdir(c, root, "f1", &r) == 0)
		expect("RMDIR a regular file", &r, NFS3ERR_NOTDIR);
	if (do_rmdir(c, root, "missing", &r) == 0)
		expect("RMDIR missing", &r, NFS3ERR_NOENT);
	if (do_readdir(c, &f1, 0, NULL, 4096, &r) == 0)
		expect("READDIR of a regular file", &r, NFS3ERR_NOTDIR);
	if (do_create(c, &f1, "x", UNCHECKED, &s, NULL, &r) == 0)
		expect("CREATE with a file as directory", &r, NFS3ERR_NOTDIR);

	/* SYMLINK / READLINK. */
	if (do_symlink(c, root, "sl", "f1", &r) == 0 && expect("SYMLINK sl -> f1", &r, NFS3_OK)) {
		check(r.has_attr && r.attr.type == NF3LNK, "SYMLINK: type LNK");
		sl = r.fh;
		if (!r.has_fh && do_lookup(c, root, "sl", &r) == 0)
			sl = r.fh;
		if (do_readlink(c, &sl, &r) == 0 && expect("READLINK sl", &r, NFS3_OK))
			check(r.path && strcmp(r.path, "f1") == 0, "READLINK returns \"f1\" (got \"%s\")",
			      r.path ? r.path : "(null)");
		if (do_lookup(c, root, "sl", &r) == 0 && expect("LOOKUP sl", &r, NFS3_OK))
			check(r.has_attr && r.attr.type == NF3LNK, "LOOKUP does not follow the symlink");
	}
	if (do_symlink(c, root, "sl-abs", "/etc/passwd", &r) == 0)
		expect("SYMLINK to an absolute target (stored verbatim)", &r, NFS3_OK);
	if (do_lookup(c, root, "sl-abs", &r) == 0 && r.stat == NFS3_OK) {
		struct fh h = r.fh;
		if (do_read(c, &h, 0, 100, &r) == 0)
			check(r.stat != NFS3_OK, "READ through a symlink handle does not reach /etc/passwd (%s)",
			      nfs_stat_name(r.stat));
	}
	if (do_readlink(c, &f1, &r) == 0)
		expect("READLINK of a regular file", &r, NFS3ERR_INVAL);
	if (do_symlink(c, root, "sl", "x", &r) == 0)
		expect("SYMLINK over an existing name", &r, NFS3ERR_EXIST);

	/* MKNOD. */
	if (do_mknod(c, root, "fifo", NF3FIFO, 0, 0, &r) == 0 && expect("MKNOD FIFO", &r, NFS3_OK)) {
		check(r.has_attr && r.attr.type == NF3FIFO, "MKNOD FIFO: type FIFO (%d)", r.attr.type);
		fifo = r.fh;
		if (r.has_fh && do_getattr(c, &fifo, &r) == 0)
			check(r.stat == NFS3_OK && r.attr.type == NF3FIFO, "GETATTR of the FIFO: %s",
			      nfs_stat_name(r.stat));
	}
	if (do_mknod(c, root, "sock", NF3SOCK, 0, 0, &r) == 0 && expect("MKNOD SOCK", &r, NFS3_OK))
		check(r.has_attr && r.attr.type == NF3SOCK, "MKNOD SOCK: type SOCK");
	if (do_mknod(c, root, "chr", NF3CHR, 1, 3, &r) == 0) {
		if (r.stat == NFS3_OK)
			check(r.has_attr && r.attr.type == NF3CHR && r.attr.rdev.specdata1 == 1 &&
			      r.attr.rdev.specdata2 == 3, "MKNOD CHR 1,3: type CHR, rdev 1,3");
		else
			expect2("MKNOD CHR (no CAP_MKNOD here)", &r, NFS3ERR_PERM, NFS3ERR_ACCES);
	}
	if (do_mknod(c, root, "reg", NF3REG, 0, 0, &r) == 0)
		expect("MKNOD of type REG", &r, NFS3ERR_BADTYPE);
	if (do_mknod(c, root, "fifo", NF3FIFO, 0, 0, &r) == 0)
		expect("MKNOD over an existing name", &r, NFS3ERR_EXIST);

	/* LINK. */
	if (do_link(c, &f1, root, "f1.link", &r) == 0 && expect("LINK f1 -> f1.link", &r, NFS3_OK)) {
		check(r.has_attr && r.attr.nlink == 2, "LINK: file's nlink now 2 (%u)", r.attr.nlink);
		check(r.has_dir_attr, "LINK returns the directory's attributes");
	}
	if (do_link(c, &f1, root, "excl", &r) == 0)
		expect("LINK over an existing name", &r, NFS3ERR_EXIST);
	if (have_d1 && do_link(c, &d1, root, "d1.link", &r) == 0)
		expect_not_ok("LINK of a directory", &r);

	/* RENAME. */
	if (do_rename(c, root, "f1.link", root, "f1.renamed", &r) == 0)
		expect("RENAME f1.link -> f1.renamed", &r, NFS3_OK);
	if (do_lookup(c, root, "f1.link", &r) == 0)
		expect("LOOKUP old name after RENAME", &r, NFS3ERR_NOENT);
	if (do_lookup(c, root, "f1.renamed", &r) == 0)
		expect("LOOKUP new name after RENAME", &r, NFS3_OK);
	if (do_rename(c, root, "missing", root, "x", &r) == 0)
		expect("RENAME missing", &r, NFS3ERR_NOENT);
	if (have_d1) {
		if (do_rename(c, root, "f1.renamed", &d1, "moved", &r) == 0)
			expect("RENAME across directories", &r, NFS3_OK);
		if (do_lookup(c, &d1, "moved", &r) == 0)
			expect("LOOKUP d1/moved", &r, NFS3_OK);
		if (do_rename(c, root, "d1", &d1, "inside", &r) == 0)
			expect("RENAME a directory into itself", &r, NFS3ERR_INVAL);
		if (do_mkdir(c, root, "d2", 0755, &r) == 0 && r.stat == NFS3_OK &&
		    do_rename(c, root, "d2", root, "d1", &r) == 0)
			expect2("RENAME a directory over a non-empty one", &r, NFS3ERR_EXIST,
				NFS3ERR_NOTEMPTY);
		if (do_rename(c, root, "excl", root, "d1", &r) == 0)
			expect2("RENAME a file over a directory", &r, NFS3ERR_ISDIR, NFS3ERR_EXIST);
	}
	if (sqroot->len && do_rename(c, root, "excl", sqroot, "x", &r) == 0)
		expect("RENAME to another export", &r, NFS3ERR_XDEV);
	if (sqroot->len && do_link(c, &f1, sqroot, "x", &r) == 0)
		expect("LINK into another export", &r, NFS3ERR_XDEV);

	/* REMOVE, and the handle of a removed file. */
	if (do_remove(c, root, "excl", &r) == 0)
		expect("REMOVE excl", &r, NFS3_OK);
	if (do_remove(c, root, "excl", &r) == 0)
		expect("REMOVE excl again", &r, NFS3ERR_NOENT);
	if (ex.len && do_getattr(c, &ex, &r) == 0)
		expect("GETATTR with the handle of a removed file", &r, NFS3ERR_STALE);
	if (ex.len && do_read(c, &ex, 0, 10, &r) == 0)
		expect("READ with the handle of a removed file", &r, NFS3ERR_STALE);
	if (do_remove(c, root, "sl", &r) == 0)
		expect("REMOVE a symlink", &r, NFS3_OK);
	if (do_lookup(c, root, "f1", &r) == 0)
		expect("the symlink's target survives its removal", &r, NFS3_OK);
	if (do_remove(c, root, "fifo", &r) == 0)
		expect("REMOVE a FIFO", &r, NFS3_OK);
	if (do_mkdir(c, root, "empty", 0700, &r) == 0 && r.stat == NFS3_OK) {
		if (do_rmdir(c, root, "empty", &r) == 0)
			expect("RMDIR empty directory", &r, NFS3_OK);
	}

	/* Handles: garbage, truncated, another group's. */
	{
		struct fh g;
		memset(&g, 0, sizeof(g));
		g.len = 16;
		memset(g.data, 0xA5, 16);
		if (do_getattr(c, &g, &r) == 0)
			expect("GETATTR with a garbage handle", &r, NFS3ERR_BADHANDLE);
		g.len = 0;
		if (do_getattr(c, &g, &r) == 0)
			expect("GETATTR with an empty handle", &r, NFS3ERR_BADHANDLE);
		g.len = NFS3_FHSIZE;
		memset(g.data, 0xff, NFS3_FHSIZE);
		if (do_lookup(c, &g, "f1", &r) == 0)
			expect("LOOKUP in a 64-byte garbage handle", &r, NFS3ERR_BADHANDLE);
		g = *root;
		g.len--;
		if (do_getattr(c, &g, &r) == 0)
			expect("GETATTR with the root handle truncated by one byte", &r, NFS3ERR_BADHANDLE);
		g = *root;
		g.data[g.len - 1] ^= 0x5a;
		g.data[g.len - 2] ^= 0x33;
		if (do_getattr(c, &g, &r) == 0)
			expect2("GETATTR with the root handle's kernel part corrupted", &r, NFS3ERR_STALE,
				NFS3ERR_BADHANDLE);
		if (other_group_fh->len) {
			if (do_getattr(c, other_group_fh, &r) == 0)
				expect2("GETATTR with another group's handle on this group's VIP", &r,
					NFS3ERR_STALE, NFS3ERR_BADHANDLE);
			if (do_lookup(c, other_group_fh, "x", &r) == 0)
				expect2("LOOKUP in another group's directory on this group's VIP", &r,
					NFS3ERR_STALE, NFS3ERR_BADHANDLE);
			s = sattr_mode(0644);
			if (do_create(c, other_group_fh, "intruder", UNCHECKED, &s, NULL, &r) == 0)
				expect2("CREATE in another group's directory on this group's VIP", &r,
					NFS3ERR_STALE, NFS3ERR_BADHANDLE);
		}
	}
	(void)o;
	res_free(&r);
}

static void test_ro(struct conn *c, const struct fh *root)
{
	struct res r = { .stat = -1 };
	struct fh file, sub;
	sattr3 s = sattr_mode(0644);

	if (do_getattr(c, root, &r) < 0 || !expect("GETATTR ro export root", &r, NFS3_OK))
		return;
	if (do_lookup(c, root, "readme.txt", &r) < 0 || !expect("LOOKUP ro readme.txt", &r, NFS3_OK))
		return;
	file = r.fh;
	if (do_lookup(c, root, "subdir", &r) < 0 || !expect("LOOKUP ro subdir", &r, NFS3_OK))
		return;
	sub = r.fh;
	if (do_read(c, &file, 0, 4096, &r) == 0 && expect("READ on the ro export", &r, NFS3_OK))
		check(r.count > 0 && r.eof, "READ ro readme.txt: %u bytes, eof", r.count);
	if (do_access(c, &file, 0x3f, &r) == 0 && expect("ACCESS on the ro export", &r, NFS3_OK))
		check((r.access & ACCESS3_READ) &&
		      !(r.access & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE)),
		      "ACCESS on ro grants read but not modify/extend/delete (0x%x)", r.access);
	if (do_access(c, root, 0x3f, &r) == 0 && expect("ACCESS ro root", &r, NFS3_OK))
		check(!(r.access & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE)),
		      "ACCESS on ro root grants no modify/extend/delete (0x%x)", r.access);

	if (do_create(c, root, "new", UNCHECKED, &s, NULL, &r) == 0)
		expect2("CREATE on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_create(c, root, "readme.txt", UNCHECKED, &s, NULL, &r) == 0)
		expect2("CREATE UNCHECKED of an existing file on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_mkdir(c, root, "newdir", 0755, &r) == 0)
		expect2("MKDIR on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_write(c, &file, 0, "x", 1, FILE_SYNC, &r) == 0)
		expect2("WRITE on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_setattr(c, &file, &s, NULL, &r) == 0)
		expect2("SETATTR on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_remove(c, root, "readme.txt", &r) == 0)
		expect2("REMOVE on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_rmdir(c, root, "subdir", &r) == 0)
		expect2("RMDIR on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_rename(c, root, "readme.txt", root, "renamed", &r) == 0)
		expect2("RENAME on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_link(c, &file, &sub, "link", &r) == 0)
		expect2("LINK on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_symlink(c, root, "sl", "readme.txt", &r) == 0)
		expect2("SYMLINK on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_mknod(c, root, "fifo", NF3FIFO, 0, 0, &r) == 0)
		expect2("MKNOD on ro", &r, NFS3ERR_ROFS, NFS3ERR_ACCES);
	if (do_commit(c, &file, 0, 0, &r) == 0)
		check(r.stat == NFS3_OK || r.stat == NFS3ERR_ROFS || r.stat == NFS3ERR_ACCES,
		      "COMMIT on ro: %s (OK, ROFS or ACCES)", nfs_stat_name(r.stat));
	/* Nothing changed. */
	if (do_read(c, &file, 0, 4096, &r) == 0 && expect("READ ro readme.txt after refused writes", &r, NFS3_OK))
		check(r.datalen > 0 && r.data[0] != 'x', "ro file content unchanged");
	res_free(&r);
}

static void test_squash(struct conn *c, const struct fh *root, uint32_t anonuid)
{
	struct res r = { .stat = -1 };
	sattr3 s = sattr_mode(0644);

	if (do_create(c, root, "squashed", UNCHECKED, &s, NULL, &r) == 0 &&
	    expect("CREATE as root on a root-squash export", &r, NFS3_OK))
		check(r.has_attr && r.attr.uid == anonuid, "the file belongs to anonuid %u (got %u)",
		      anonuid, r.attr.uid);
	s = sattr_none();
	s.uid.set_it = 1;
	s.uid.set_uid3_u.uid = 0;
	if (r.stat == NFS3_OK && r.has_fh) {
		struct fh f = r.fh;
		if (do_setattr(c, &f, &s, NULL, &r) == 0)
			expect2("SETATTR uid 0 as squashed root", &r, NFS3ERR_PERM, NFS3ERR_ACCES);
	}
	res_free(&r);
}

static int mode_procs(const struct opts *o)
{
	struct conn m = { 0 }, n = { 0 }, m2 = { 0 };
	struct fh rwroot, roroot, sqroot, otherroot;
	struct res r = { .stat = -1 };

	memset(&rwroot, 0, sizeof(rwroot));
	memset(&roroot, 0, sizeof(roroot));
	memset(&sqroot, 0, sizeof(sqroot));
	memset(&otherroot, 0, sizeof(otherroot));

	/* A handle of the other group, from its own VIP (where it is valid). */
	if (o->other_server && o->other) {
		if (conn_open(&m2, o->other_server, MOUNT_PROGRAM, 3, mount_port) == 0) {
			if (do_mnt(&m2, o->other, &r) == 0 &&
			    expect_mnt("MOUNT MNT other group's export on its own VIP", &r, MNT3_OK))
				otherroot = r.fh;
			conn_close(&m2);
		}
		if (otherroot.len && conn_open(&n, o->other_server, NFS_PROGRAM, 3, nfs_port) == 0) {
			if (do_getattr(&n, &otherroot, &r) == 0)
				expect("GETATTR other group's root on its own VIP", &r, NFS3_OK);
			conn_close(&n);
		}
	}

	if (conn_open(&m, o->server, MOUNT_PROGRAM, 3, mount_port) < 0)
		goto out;
	test_mount(&m, o, &rwroot, &roroot, &sqroot);
	if (conn_open(&n, o->server, NFS_PROGRAM, 3, nfs_port) < 0)
		goto out;
	if (rwroot.len) {
		test_rw(&n, o, &rwroot, &sqroot, &otherroot);
		test_large_io(&n, &rwroot);
		test_bigdir(&n, &rwroot);
	}
	if (roroot.len)
		test_ro(&n, &roroot);
	if (sqroot.len)
		test_squash(&n, &sqroot, o->anonuid);
	test_umount(&m, o);
out:
	res_free(&r);
	conn_close(&n);
	conn_close(&m);
	return nfail ? 1 : 0;
}

/* ---- handle stability -------------------------------------------------- */

#define CREATED_TEXT "written through NFS before the restart\n"

static void hex_put(FILE *f, const char *name, const struct fh *fh)
{
	fprintf(f, "%s ", name);
	for (uint32_t i = 0; i < fh->len; i++)
		fprintf(f, "%02x", fh->data[i]);
	fprintf(f, "\n");
}

static bool hex_get(const char *hex, struct fh *fh)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > NFS3_FHSIZE)
		return false;
	fh->len = (uint32_t)(n / 2);
	for (size_t i = 0; i < fh->len; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return false;
		fh->data[i] = (uint8_t)v;
	}
	return true;
}

static int mode_dump(const struct opts *o)
{
	struct conn m = { 0 }, n = { 0 };
	struct res r = { .stat = -1 };
	struct fh root, ondisk, created, dir, verf;
	sattr3 s = sattr_mode(0644);
	FILE *f = NULL;

	if (conn_open(&m, o->server, MOUNT_PROGRAM, 3, mount_port) < 0 ||
	    conn_open(&n, o->server, NFS_PROGRAM, 3, nfs_port) < 0)
		goto out;
	if (do_mnt(&m, o->export, &r) < 0 || !expect_mnt("MNT", &r, MNT3_OK))
		goto out;
	root = r.fh;
	if (do_lookup(&n, &root, "ondisk.txt", &r) < 0 || !expect("LOOKUP ondisk.txt", &r, NFS3_OK))
		goto out;
	ondisk = r.fh;
	if (do_read(&n, &ondisk, 0, 4096, &r) == 0 && expect("READ ondisk.txt", &r, NFS3_OK))
		check(r.datalen == strlen(o->expect_text) &&
		      memcmp(r.data, o->expect_text, r.datalen) == 0, "ondisk.txt has the expected text");
	if (do_mkdir(&n, &root, "made-by-nfs", 0755, &r) < 0 || !expect("MKDIR made-by-nfs", &r, NFS3_OK))
		goto out;
	dir = r.fh;
	if (do_create(&n, &dir, "created.txt", UNCHECKED, &s, NULL, &r) < 0 ||
	    !expect("CREATE made-by-nfs/created.txt", &r, NFS3_OK))
		goto out;
	created = r.fh;
	if (do_write(&n, &created, 0, CREATED_TEXT, sizeof(CREATED_TEXT) - 1, FILE_SYNC, &r) == 0)
		expect("WRITE FILE_SYNC created.txt", &r, NFS3_OK);
	/* The write verifier of this server instance, for "reuse-handles". */
	if (do_write(&n, &created, 4096, "v", 1, UNSTABLE, &r) < 0 ||
	    !expect("WRITE UNSTABLE created.txt", &r, NFS3_OK))
		goto out;
	verf.len = NFS3_WRITEVERFSIZE;
	memcpy(verf.data, r.verf, NFS3_WRITEVERFSIZE);
	if (do_commit(&n, &created, 0, 0, &r) == 0 && expect("COMMIT created.txt", &r, NFS3_OK))
		check(memcmp(r.verf, verf.data, NFS3_WRITEVERFSIZE) == 0, "COMMIT verifier == WRITE verifier");

	f = fopen(o->out, "w");
	if (!check(f != NULL, "open %s for writing", o->out))
		goto out;
	hex_put(f, "root", &root);
	hex_put(f, "ondisk", &ondisk);
	hex_put(f, "dir", &dir);
	hex_put(f, "created", &created);
	hex_put(f, "verf", &verf);
	check(fclose(f) == 0, "wrote 4 handles and the write verifier to %s", o->out);
out:
	res_free(&r);
	conn_close(&n);
	conn_close(&m);
	return nfail ? 1 : 0;
}

static int mode_reuse(const struct opts *o)
{
	struct conn n = { 0 };
	struct res r = { .stat = -1 };
	struct fh root, ondisk, created, dir, verf;
	unsigned have = 0;
	char line[512], name[64], hex[300];
	FILE *f = fopen(o->in, "r");

	if (!check(f != NULL, "open %s", o->in))
		return 1;
	while (fgets(line, sizeof(line), f)) {
		struct fh *dst = NULL;
		if (sscanf(line, "%63s %299s", name, hex) != 2)
			continue;
		if (strcmp(name, "root") == 0) dst = &root;
		else if (strcmp(name, "ondisk") == 0) dst = &ondisk;
		else if (strcmp(name, "dir") == 0) dst = &dir;
		else if (strcmp(name, "created") == 0) dst = &created;
		else if (strcmp(name, "verf") == 0) dst = &verf;
		if (dst && hex_get(hex, dst))
			have++;
	}
	fclose(f);
	if (!check(have == 5 && verf.len == NFS3_WRITEVERFSIZE,
		   "read 4 saved handles and a write verifier (%u)", have))
		return 1;

	/* No MNT: a client keeps its handles across a server restart. */
	if (conn_open(&n, o->server, NFS_PROGRAM, 3, nfs_port) < 0)
		return 1;
	if (do_getattr(&n, &root, &r) == 0 && expect("GETATTR saved root handle", &r, NFS3_OK))
		check(r.attr.type == NF3DIR, "root is a directory");
	if (do_getattr(&n, &dir, &r) == 0 && expect("GETATTR saved directory handle", &r, NFS3_OK))
		check(r.attr.type == NF3DIR, "made-by-nfs is a directory");
	if (do_getattr(&n, &ondisk, &r) == 0)
		expect("GETATTR saved handle of ondisk.txt", &r, NFS3_OK);
	if (do_read(&n, &ondisk, 0, 4096, &r) == 0 && expect("READ saved handle of ondisk.txt", &r, NFS3_OK))
		check(r.datalen == strlen(o->expect_text) &&
		      memcmp(r.data, o->expect_text, r.datalen) == 0, "ondisk.txt content intact");
	if (do_getattr(&n, &created, &r) == 0)
		expect("GETATTR saved handle of created.txt", &r, NFS3_OK);
	if (do_read(&n, &created, 0, 4096, &r) == 0 && expect("READ saved handle of created.txt", &r, NFS3_OK))
		check(r.datalen >= sizeof(CREATED_TEXT) - 1 &&
		      memcmp(r.data, CREATED_TEXT, sizeof(CREATED_TEXT) - 1) == 0,
		      "created.txt content intact");
	if (do_write(&n, &created, 4096, "w", 1, UNSTABLE, &r) == 0 &&
	    expect("WRITE UNSTABLE through a saved handle", &r, NFS3_OK)) {
		uint8_t now[NFS3_WRITEVERFSIZE];
		memcpy(now, r.verf, sizeof(now));
		check(memcmp(now, verf.data, sizeof(now)) != 0,
		      "the write verifier changed with the restart (clients must resend UNSTABLE data)");
		if (do_commit(&n, &created, 0, 0, &r) == 0 && expect("COMMIT after restart", &r, NFS3_OK))
			check(memcmp(r.verf, now, sizeof(now)) == 0, "COMMIT verifier == the new WRITE verifier");
	}
	if (do_lookup(&n, &root, "ondisk.txt", &r) == 0 && expect("LOOKUP in saved root handle", &r, NFS3_OK))
		check(fh_eq(&r.fh, &ondisk), "LOOKUP yields the same handle bytes as before the restart");
	if (do_lookup(&n, &dir, "created.txt", &r) == 0 && expect("LOOKUP in saved dir handle", &r, NFS3_OK))
		check(fh_eq(&r.fh, &created), "LOOKUP created.txt yields the same handle as before");
	if (do_readdir(&n, &dir, 0, NULL, 4096, &r) == 0 && expect("READDIR saved dir handle", &r, NFS3_OK)) {
		bool found = false;
		for (size_t i = 0; i < r.nents; i++)
			found |= strcmp(r.ents[i].name, "created.txt") == 0;
		check(found, "READDIR lists created.txt");
	}
	res_free(&r);
	conn_close(&n);
	return nfail ? 1 : 0;
}

/* ---- shell: one RPC per stdin line, for tests that interleave ---------- */

#define SHELL_SLOTS 32

struct shell_slot {
	char name[32];
	struct fh fh;
};

static struct fh *shell_fh(struct shell_slot *sl, const char *name, bool create)
{
	for (int i = 0; i < SHELL_SLOTS; i++)
		if (strcmp(sl[i].name, name) == 0)
			return &sl[i].fh;
	for (int i = 0; create && i < SHELL_SLOTS; i++)
		if (!sl[i].name[0]) {
			snprintf(sl[i].name, sizeof(sl[i].name), "%s", name);
			return &sl[i].fh;
		}
	return NULL;
}

/* "STATUS" or "STATUS fileid=N nlink=N size=N" when attributes came. */
static void shell_print(const struct res *r, const char *extra)
{
	printf("%s", nfs_stat_name(r->stat));
	if (r->stat == NFS3_OK && r->has_attr)
		printf(" fileid=%" PRIu64 " nlink=%u size=%" PRIu64,
		       (uint64_t)r->attr.fileid, r->attr.nlink, (uint64_t)r->attr.size);
	printf("%s\n", extra ? extra : "");
}

/*
 * Commands (slots name handles; "root" is the mounted export):
 *   lookup SLOT DIR NAME | create SLOT DIR NAME | getattr SLOT | access SLOT
 *   read SLOT | write SLOT TEXT | commit SLOT | truncate SLOT SIZE (SETATTR size)
 *   remove DIR NAME | rmdir DIR NAME
 *   rename DIR NAME DIR2 NAME2 | handle SLOT (prints the handle in hex)
 *   uid UID GID (the next calls' AUTH_SYS credential; prints "ok")
 * Each prints exactly one line: the status name, attributes if any.
 */
static int mode_shell(const struct opts *o)
{
	struct conn m = { 0 }, n = { 0 };
	struct res r = { .stat = -1 };
	struct shell_slot sl[SHELL_SLOTS];
	char line[1024], cmd[32], a1[256], a2[256], a3[256], a4[256];
	sattr3 s = sattr_mode(0644);

	memset(sl, 0, sizeof(sl));
	if (conn_open(&m, o->server, MOUNT_PROGRAM, 3, mount_port) < 0 ||
	    conn_open(&n, o->server, NFS_PROGRAM, 3, nfs_port) < 0)
		return 1;
	if (do_mnt(&m, o->export, &r) < 0 || r.stat != MNT3_OK) {
		printf("MNT failed\n");
		return 1;
	}
	*shell_fh(sl, "root", true) = r.fh;
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		struct fh *f1, *f2;
		int k;

		a1[0] = a2[0] = a3[0] = a4[0] = '\0';
		k = sscanf(line, "%31s %255s %255s %255s %255s", cmd, a1, a2, a3, a4);
		if (k < 2) {
			printf("usage\n");
			continue;
		}
		res_free(&r);
		if (strcmp(cmd, "uid") == 0) {
			struct AUTH *au;

			if (k < 3) {
				printf("usage\n");
				continue;
			}
			au = libnfs_authunix_create("sgnfs-test", (uint32_t)strtoul(a1, NULL, 10),
						    (uint32_t)strtoul(a2, NULL, 10), 0, NULL);
			if (!au) {
				printf("no auth\n");
				continue;
			}
			rpc_set_auth(n.rpc, au);
			printf("ok\n");
			continue;
		}
		if (strcmp(cmd, "lookup") == 0 || strcmp(cmd, "create") == 0) {
			f2 = shell_fh(sl, a2, false);
			if (!f2 || k < 4) {
				printf("usage\n");
				continue;
			}
			if (cmd[0] == 'l')
				do_lookup(&n, f2, a3, &r);
			else
				do_create(&n, f2, a3, UNCHECKED, &s, NULL, &r);
			f1 = shell_fh(sl, a1, true);
			if (r.stat == NFS3_OK && r.has_fh && f1)
				*f1 = r.fh;
			shell_print(&r, NULL);
			continue;
		}
		if (strcmp(cmd, "remove") == 0 || strcmp(cmd, "rmdir") == 0) {
			f1 = shell_fh(sl, a1, false);
			if (!f1 || k < 3) {
				printf("usage\n");
				continue;
			}
			if (cmd[1] == 'e')
				do_remove(&n, f1, a2, &r);
			else
				do_rmdir(&n, f1, a2, &r);
			shell_print(&r, NULL);
			continue;
		}
		if (strcmp(cmd, "rename") == 0) {
			f1 = shell_fh(sl, a1, false);
			f2 = shell_fh(sl, a3, false);
			if (!f1 || !f2 || k < 5) {
				printf("usage\n");
				continue;
			}
			do_rename(&n, f1, a2, f2, a4, &r);
			shell_print(&r, NULL);
			continue;
		}
		f1 = shell_fh(sl, a1, false);
		if (!f1) {
			printf("no such slot\n");
			continue;
		}
		if (strcmp(cmd, "getattr") == 0) {
			do_getattr(&n, f1, &r);
			shell_print(&r, NULL);
		} else if (strcmp(cmd, "access") == 0) {
			char x[32];

			do_access(&n, f1, 0x3f, &r);
			snprintf(x, sizeof(x), " access=0x%x", r.access);
			shell_print(&r, r.stat == NFS3_OK ? x : NULL);
		} else if (strcmp(cmd, "read") == 0) {
			char x[300];
			size_t len;

			do_read(&n, f1, 0, 200, &r);
			len = r.datalen < 200 ? r.datalen : 200;
			snprintf(x, sizeof(x), " data=%.*s", (int)len, r.data ? (char *)r.data : "");
			for (char *p = x; *p; p++)
				if (*p == '\n')
					*p = '|';
			shell_print(&r, r.stat == NFS3_OK ? x : NULL);
		} else if (strcmp(cmd, "commit") == 0) {
			do_commit(&n, f1, 0, 0, &r);
			shell_print(&r, NULL);
		} else if (strcmp(cmd, "write") == 0) {
			do_write(&n, f1, 0, a2, strlen(a2), FILE_SYNC, &r);
			shell_print(&r, NULL);
		} else if (strcmp(cmd, "truncate") == 0 && k >= 3) {
			sattr3 ts = sattr_none();

			ts.size.set_it = 1;
			ts.size.set_size3_u.size = strtoull(a2, NULL, 10);
			do_setattr(&n, f1, &ts, NULL, &r);
			shell_print(&r, NULL);
		} else if (strcmp(cmd, "handle") == 0) {
			hex_put(stdout, a1, f1);
		} else {
			printf("usage\n");
		}
	}
	res_free(&r);
	conn_close(&n);
	conn_close(&m);
	return 0;
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nfs3_procs procs --server VIP --rw PATH --ro PATH [--squash PATH --anonuid N]\n"
		"                        [--other-server VIP2 --other PATH]\n"
		"       nfs3_procs dump-handles --server VIP --export PATH --expect TEXT --out FILE\n"
		"       nfs3_procs reuse-handles --server VIP --expect TEXT --in FILE\n"
		"       nfs3_procs shell --server VIP --export PATH (commands on stdin: see mode_shell)\n"
		"  common: [--nfs-port N] [--mount-port N] (default: ask the VIP's PORTMAP)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "server", required_argument, NULL, 's' },
		{ "other-server", required_argument, NULL, 'S' },
		{ "rw", required_argument, NULL, 'w' },
		{ "ro", required_argument, NULL, 'r' },
		{ "squash", required_argument, NULL, 'q' },
		{ "anonuid", required_argument, NULL, 'u' },
		{ "other", required_argument, NULL, 'o' },
		{ "export", required_argument, NULL, 'e' },
		{ "expect", required_argument, NULL, 'x' },
		{ "out", required_argument, NULL, 'O' },
		{ "in", required_argument, NULL, 'I' },
		{ "nfs-port", required_argument, NULL, 'N' },
		{ "mount-port", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	const char *mode;
	int c, rc;

	memset(&o, 0, sizeof(o));
	o.anonuid = 65534;
	o.expect_text = "";
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o.server = optarg; break;
		case 'S': o.other_server = optarg; break;
		case 'w': o.rw = optarg; break;
		case 'r': o.ro = optarg; break;
		case 'q': o.squash = optarg; break;
		case 'u': o.anonuid = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'o': o.other = optarg; break;
		case 'e': o.export = optarg; break;
		case 'x': o.expect_text = optarg; break;
		case 'O': o.out = optarg; break;
		case 'I': o.in = optarg; break;
		case 'N': nfs_port = atoi(optarg); break;
		case 'M': mount_port = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "procs") == 0 && o.server && o.rw && o.ro)
		rc = mode_procs(&o);
	else if (strcmp(mode, "dump-handles") == 0 && o.server && o.export && o.out)
		rc = mode_dump(&o);
	else if (strcmp(mode, "reuse-handles") == 0 && o.server && o.in)
		rc = mode_reuse(&o);
	else if (strcmp(mode, "shell") == 0 && o.server && o.export)
		return mode_shell(&o);
	else {
		usage(stderr);
		return 2;
	}
	printf("nfs3_procs %s: %u passed, %u failed\n", mode, npass, nfail);
	return rc;
}
