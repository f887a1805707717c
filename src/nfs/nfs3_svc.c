/*
 * nfs3_svc.c - NFSv3 (RFC 1813), program 100003 version 3: the dispatch
 * table and the procedures on one object (attributes, data, filesystem
 * information).  Directory procedures are in nfs3_dir.c; the shared
 * machinery (resolution, identity, attributes, status mapping) in
 * nfs3_util.c.
 *
 * Every procedure but NULL touches the disk and is .blocking: it runs on
 * libuv's thread pool, reads only its request, the immutable configuration
 * and the group's immutable export table, and switches the pool thread's
 * filesystem identity to the client's for the operation itself.
 *
 * Writes and the verifier.  WRITE answers with the group's write verifier
 * (nfs_group.c), which changes whenever the group (re)starts on any node.
 * UNSTABLE data is left to the page cache (a large one with its writeback
 * started: nfs3_write_behind); DATA_SYNC and FILE_SYNC are made durable
 * (fdatasync/fsync) before the reply; COMMIT fsyncs the file.
 * A client that sees the verifier change between WRITE and COMMIT resends.
 */
#include "nfs/nfs3_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statfs.h>

#include "config/config.h"
#include "nfs/iobuf.h"
#include "nfs/ohc.h"

/* ---- NULL, GETATTR, SETATTR, ACCESS, READLINK -------------------------- */

static enum rpc_disposition nfs3_null(struct rpc_req *req)
{
	(void)req;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nfs3_getattr(struct rpc_req *req)
{
	GETATTR3args *a = req->args;
	GETATTR3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->object, 0, &o);
	if (rc == 0)
		nfs3_fattr(o.exp, &o.st, &r->GETATTR3res_u.resok.obj_attributes);
	r->status = nfs3_stat(rc);
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/*
 * GETATTR of an object in the open-handle cache, answered on the loop: no
 * pool hop, no open_by_handle_at.  Anything else (miss, refusal, stale
 * entry) goes to nfs3_getattr on the pool, which decides and logs.
 */
static bool nfs3_getattr_loop(struct rpc_req *req)
{
	GETATTR3args *a = req->args;
	GETATTR3res *r = req->res;
	struct nfs_group *ng = nfs_group_of_req(req);
	struct nfs_exp *e;
	struct stat st;
	bool done = false;

	if (!ng)
		return false;
	if (nfs3_loop_stat(ng, req, &a->object, &e, &st) == 0) {
		nfs3_fattr(e, &st, &r->GETATTR3res_u.resok.obj_attributes);
		r->status = NFS3_OK;
		done = true;
	}
	nfs_group_put(ng);
	return done;
}

static enum rpc_disposition nfs3_setattr(struct rpc_req *req)
{
	SETATTR3args *a = req->args;
	SETATTR3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->object, NFS3_MODIFY, &o);
	if (rc == 0) {
		pre = o.st;
		have_pre = true;
		/* The guard makes SETATTR conditional on nobody having changed
		 * the object since the client last saw its ctime. */
		if (a->guard.check &&
		    (a->guard.sattrguard3_u.obj_ctime.seconds != (unsigned int)pre.st_ctim.tv_sec ||
		     a->guard.sattrguard3_u.obj_ctime.nseconds != (unsigned int)pre.st_ctim.tv_nsec))
			rc = -NFSE_NOT_SYNC;
	}
	if (rc == 0)
		rc = nfs3_user(&c);
	if (rc == 0)
		rc = nfs3_apply_sattr(&c, &o, &a->new_attributes, false);
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	nfs3_wcc(&o, have_pre ? &pre : NULL,
		 rc == 0 ? &r->SETATTR3res_u.resok.obj_wcc : &r->SETATTR3res_u.resfail.obj_wcc);
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nfs3_access(struct rpc_req *req)
{
	ACCESS3args *a = req->args;
	ACCESS3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	uint32_t got = 0;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->object, 0, &o);
	if (rc == 0)
		rc = nfs3_user(&c);
	if (rc == 0)
		got = nfs3_access_bits(&c, &o, a->access);
	nfs3_root(&c);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		r->ACCESS3res_u.resok.access = got;
		nfs3_post(&o, &r->ACCESS3res_u.resok.obj_attributes);
	} else {
		nfs3_post(&o, &r->ACCESS3res_u.resfail.obj_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

static int nfs3_do_readlink(struct nfs3_obj *o, char **out)
{
	/* One byte more than the protocol allows tells "too long" apart. */
	char *buf = malloc(NFS3_PATHMAX + 2);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	if (!S_ISLNK(o->st.st_mode)) {
		free(buf);
		return -EINVAL;
	}
	n = readlinkat(o->fd, "", buf, NFS3_PATHMAX + 1);
	if (n < 0 || n > NFS3_PATHMAX) {
		free(buf);
		return n < 0 ? -errno : -ENAMETOOLONG;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static enum rpc_disposition nfs3_readlink(struct rpc_req *req)
{
	READLINK3args *a = req->args;
	READLINK3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	char *target = NULL;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->symlink, 0, &o);
	if (rc == 0)
		rc = nfs3_do_readlink(&o, &target);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		r->READLINK3res_u.resok.data = target;
		nfs3_post(&o, &r->READLINK3res_u.resok.symlink_attributes);
	} else {
		nfs3_post(&o, &r->READLINK3res_u.resfail.symlink_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- READ, WRITE, COMMIT ---------------------------------------------- */

static int nfs3_data_type(const struct nfs3_obj *o)
{
	if (S_ISDIR(o->st.st_mode))
		return -EISDIR;
	return S_ISREG(o->st.st_mode) ? 0 : -EINVAL;
}

/* Read up to @count bytes at @off into a buffer from nfsb_get (*@buf,
 * *@got; the caller releases it with nfsb_put). */
static int nfs3_do_read(struct nfs3_ctx *c, struct nfs3_obj *o, uint64_t off,
			uint32_t count, char **buf, uint32_t *got)
{
	uint32_t n = 0;
	char *p = NULL;
	bool owned = false;
	int fd = -1, rc = 0;

	*buf = NULL;
	*got = 0;
	rc = nfs3_data_type(o);
	if (rc < 0)
		return rc;
	rc = nfs3_user(c);
	if (rc < 0)
		return rc;
	rc = nfs3_data_open(c, o, false, &fd, &owned);
	nfs3_root(c);
	if (rc < 0)
		return rc;
	/* Nothing lives beyond the largest offset; that is end of file. */
	if (off > (uint64_t)INT64_MAX || count == 0)
		goto out;
	if (count > (uint64_t)INT64_MAX - off)
		count = (uint32_t)((uint64_t)INT64_MAX - off);
	p = nfsb_get(count);
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	while (n < count) {
		ssize_t k = pread(fd, p + n, count - n, (off_t)(off + n));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			break;
		}
		if (k == 0)
			break;
		n += (uint32_t)k;
	}
	if (rc < 0 && n > 0)
		rc = 0;                /* a short read is still a read */
out:
	if (owned)
		close(fd);
	if (rc < 0) {
		nfsb_put(p);
		return rc;
	}
	*buf = p;
	*got = n;
	return 0;
}

static enum rpc_disposition nfs3_read(struct rpc_req *req)
{
	READ3args *a = req->args;
	READ3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	uint32_t count = a->count, got = 0;
	char *data = NULL;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0 && count > nfs3_iomax(&c))
		count = nfs3_iomax(&c);
	if (rc == 0)
		rc = nfs3_get(&c, &a->file, 0, &o);
	if (rc == 0)
		rc = nfs3_do_read(&c, &o, a->offset, count, &data, &got);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		READ3resok *ok = &r->READ3res_u.resok;

		nfs3_post(&o, &ok->file_attributes);
		ok->count = got;
		ok->data.data_val = data;
		ok->data.data_len = got;
		/* EOF: the read stopped short, or reached the size the file
		 * has after the read. */
		ok->eof = got < count || a->offset + got >= (uint64_t)o.st.st_size ||
			  a->offset > (uint64_t)INT64_MAX;
	} else {
		nfs3_post(&o, &r->READ3res_u.resfail.file_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* READ3res up to and including the data's length word (rpc_proc
 * .xdr_res_head): on TCP the data goes from its buffer to the socket
 * (nfs3_read_tail).  A failure encodes as xdr_READ3res. */
static bool_t nfs3_xdr_read_head(XDR *x, READ3res *r)
{
	READ3resok *ok = &r->READ3res_u.resok;

	if (!xdr_nfsstat3(x, &r->status))
		return FALSE;
	if (r->status != NFS3_OK)
		return xdr_READ3resfail(x, &r->READ3res_u.resfail);
	/* the bound xdr_bytes enforces in the full encoding */
	if (ok->data.data_len > NFS3_MAXDATA)
		return FALSE;
	return xdr_post_op_attr(x, &ok->file_attributes) && xdr_count3(x, &ok->count) &&
	       xdr_bool(x, &ok->eof) && xdr_u_int(x, &ok->data.data_len);
}

/* Detach READ's data from its results (rpc_proc.res_tail): the buffer
 * nfs3_do_read filled, now the transport's, released with nfsb_put
 * (rpc_proc.tail_free), on every path: xdr_free never sees it. */
static void *nfs3_read_tail(void *res, uint32_t *len)
{
	READ3res *r = res;
	READ3resok *ok = &r->READ3res_u.resok;
	void *p;

	if (r->status != NFS3_OK || !ok->data.data_val)
		return NULL;
	p = ok->data.data_val;
	*len = ok->data.data_len;
	ok->data.data_val = NULL;
	ok->data.data_len = 0;
	return p;
}

bool nfs3_write_behind(stable_how stable, uint32_t written)
{
	return stable == UNSTABLE && written >= NFS3_WRITE_BEHIND_MIN;
}

/* Write, then make it as durable as @stable asks; *@done = bytes written. */
static int nfs3_do_write(struct nfs3_ctx *c, struct nfs3_obj *o, const WRITE3args *a,
			 uint32_t *done)
{
	uint32_t n = 0;
	bool owned = false;
	int fd = -1, rc = 0;

	*done = 0;
	rc = nfs3_data_type(o);
	if (rc < 0)
		return rc;
	/* count is what the client means; the opaque must carry it all. */
	if (a->count > a->data.data_len)
		return -EINVAL;
	if (a->offset > (uint64_t)INT64_MAX || a->count > (uint64_t)INT64_MAX - a->offset)
		return -EFBIG;
	rc = nfs3_user(c);
	if (rc < 0)
		return rc;
	/* Written as the client: the kernel then clears set-id bits and
	 * enforces RLIMIT_FSIZE-style checks as for a local writer. */
	rc = nfs3_data_open(c, o, true, &fd, &owned);
	if (rc < 0) {
		nfs3_root(c);
		return rc;
	}
	while (n < a->count) {
		ssize_t k = pwrite(fd, a->data.data_val + n, a->count - n,
				   (off_t)(a->offset + n));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = k < 0 ? -errno : -EIO;
			break;
		}
		n += (uint32_t)k;
	}
	if (n > 0 || a->count == 0) {
		rc = 0;                /* report what did reach the file */
		if (a->stable == FILE_SYNC && fsync(fd) < 0)
			rc = -errno;
		else if (a->stable == DATA_SYNC && fdatasync(fd) < 0)
			rc = -errno;
		else if (nfs3_write_behind(a->stable, n))
			/* A hint: a failure here changes nothing the client
			 * was promised.  Without a WAIT flag it neither waits
			 * nor consumes a writeback error: COMMIT's fsync still
			 * sees and reports it. */
			(void)sync_file_range(fd, (off_t)a->offset, n, SYNC_FILE_RANGE_WRITE);
	}
	if (owned)
		close(fd);
	nfs3_root(c);
	*done = n;
	return rc;
}

/*
 * WRITE3args as xdr_WRITE3args, but the data lands in a buffer from
 * iobuf.h instead of a fresh malloc: decoded on the loop, a new 1 MiB
 * for every WRITE was memory glibc had just given back, faulted in page by
 * page on the loop thread (a fifth of sgnfsd's samples in a pipelined
 * write).  XDR_FREE (xdr_free of the arguments, on every path) releases it
 * with nfsb_put.
 */
bool_t nfs3_xdr_write_args(XDR *x, WRITE3args *a)
{
	u_int len;

	if (!xdr_nfs_fh3(x, &a->file) || !xdr_offset3(x, &a->offset) ||
	    !xdr_count3(x, &a->count) || !xdr_stable_how(x, &a->stable))
		return FALSE;
	switch (x->x_op) {
	case XDR_FREE:
		nfsb_put(a->data.data_val);
		a->data.data_val = NULL;
		a->data.data_len = 0;
		return TRUE;
	case XDR_DECODE:
		if (!xdr_u_int(x, &len) || len > NFS3_MAXDATA)
			return FALSE;
		if (!a->data.data_val) {
			a->data.data_val = nfsb_get(len);
			if (!a->data.data_val)
				return FALSE;
		}
		a->data.data_len = len;
		return xdr_opaque(x, a->data.data_val, len);
	default:
		return xdr_bytes(x, &a->data.data_val, &a->data.data_len, NFS3_MAXDATA);
	}
}

static enum rpc_disposition nfs3_write(struct rpc_req *req)
{
	WRITE3args *a = req->args;
	WRITE3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	uint32_t done = 0;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->file, NFS3_MODIFY, &o);
	if (rc == 0) {
		pre = o.st;
		have_pre = true;
		if (a->stable != UNSTABLE && a->stable != DATA_SYNC && a->stable != FILE_SYNC)
			rc = -EINVAL;
	}
	if (rc == 0)
		rc = nfs3_do_write(&c, &o, a, &done);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		WRITE3resok *ok = &r->WRITE3res_u.resok;

		nfs3_wcc(&o, &pre, &ok->file_wcc);
		ok->count = done;
		ok->committed = a->stable;
		memcpy(ok->verf, c.ng->verf, sizeof(ok->verf));
	} else {
		nfs3_wcc(&o, have_pre ? &pre : NULL, &r->WRITE3res_u.resfail.file_wcc);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

static int nfs3_do_commit(struct nfs3_obj *o, const COMMIT3args *a)
{
	int fd, rc;

	rc = nfs3_data_type(o);
	if (rc < 0)
		return rc;
	if (a->offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* As root: flushing data already written needs no permission, and a
	 * client that may no longer open the file must still get its earlier
	 * writes made durable. */
	if (o->ce) {
		/* The descriptor the writes went through, if any: fsync
		 * reports a writeback error to each open file once. */
		fd = ohc_data_peek(o->ce, true);
		if (fd >= 0) {
			rc = fsync(fd) < 0 ? -errno : 0;
			/* The client's writes are durable: stop holding the
			 * file open for writing (a file open for writing
			 * cannot be executed, ETXTBSY, nor leased by a local
			 * process) unless another call is using the entry.
			 * The next WRITE opens it again. */
			(void)ohc_data_close_idle(o->ce, true);
			return rc;
		}
		fd = ohc_data_fd(o->ce, false);
		if (fd >= 0)
			return fsync(fd) < 0 ? -errno : 0;
	}
	fd = nfs3_reopen(o, O_RDONLY);
	if (fd < 0)
		return fd;
	rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static enum rpc_disposition nfs3_commit(struct rpc_req *req)
{
	COMMIT3args *a = req->args;
	COMMIT3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct stat pre;
	bool have_pre = false;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->file, 0, &o);
	if (rc == 0) {
		pre = o.st;
		have_pre = true;
		rc = nfs3_do_commit(&o, a);
	}
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		nfs3_wcc(&o, &pre, &r->COMMIT3res_u.resok.file_wcc);
		memcpy(r->COMMIT3res_u.resok.verf, c.ng->verf, NFS3_WRITEVERFSIZE);
	} else {
		nfs3_wcc(&o, have_pre ? &pre : NULL, &r->COMMIT3res_u.resfail.file_wcc);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- FSSTAT, FSINFO, PATHCONF ----------------------------------------- */

static enum rpc_disposition nfs3_fsstat(struct rpc_req *req)
{
	FSSTAT3args *a = req->args;
	FSSTAT3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	struct statfs sf;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->fsroot, 0, &o);
	if (rc == 0 && fstatfs(o.fd, &sf) < 0)
		rc = -errno;
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		FSSTAT3resok *ok = &r->FSSTAT3res_u.resok;
		/* Block counts are in fragment units (statfs(2)). */
		uint64_t bs = sf.f_frsize ? (uint64_t)sf.f_frsize : (uint64_t)sf.f_bsize;

		nfs3_post(&o, &ok->obj_attributes);
		ok->tbytes = (uint64_t)sf.f_blocks * bs;
		ok->fbytes = (uint64_t)sf.f_bfree * bs;
		ok->abytes = (uint64_t)sf.f_bavail * bs;
		ok->tfiles = (uint64_t)sf.f_files;
		ok->ffiles = (uint64_t)sf.f_ffree;
		ok->afiles = (uint64_t)sf.f_ffree;
		ok->invarsec = 0;      /* the numbers change at any moment */
	} else {
		nfs3_post(&o, &r->FSSTAT3res_u.resfail.obj_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nfs3_fsinfo(struct rpc_req *req)
{
	FSINFO3args *a = req->args;
	FSINFO3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->fsroot, 0, &o);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		FSINFO3resok *ok = &r->FSINFO3res_u.resok;
		uint32_t io = nfs3_iomax(&c);

		nfs3_post(&o, &ok->obj_attributes);
		ok->rtmax = ok->rtpref = io;
		ok->wtmax = ok->wtpref = io;
		ok->rtmult = ok->wtmult = 4096;
		ok->dtpref = NFS3_MAXDIRCOUNT;
		ok->maxfilesize = (size3)INT64_MAX;
		ok->time_delta.seconds = 0;
		ok->time_delta.nseconds = 1;
		ok->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
	} else {
		nfs3_post(&o, &r->FSINFO3res_u.resfail.obj_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nfs3_pathconf(struct rpc_req *req)
{
	PATHCONF3args *a = req->args;
	PATHCONF3res *r = req->res;
	struct nfs3_obj o = NFS3_OBJ_INIT;
	struct nfs3_ctx c;
	int rc;

	rc = nfs3_begin(&c, req);
	if (rc == 0)
		rc = nfs3_get(&c, &a->object, 0, &o);
	r->status = nfs3_stat(rc);
	if (rc == 0) {
		PATHCONF3resok *ok = &r->PATHCONF3res_u.resok;
		long lm = fpathconf(o.fd, _PC_LINK_MAX);

		nfs3_post(&o, &ok->obj_attributes);
		ok->linkmax = lm > 0 && lm < (long)UINT32_MAX ? (unsigned int)lm : 65000;
		ok->name_max = NFS3_NAMEMAX;
		ok->no_trunc = TRUE;           /* long names fail, never shrink */
		ok->chown_restricted = TRUE;
		ok->case_insensitive = FALSE;
		ok->case_preserving = TRUE;
	} else {
		nfs3_post(&o, &r->PATHCONF3res_u.resfail.obj_attributes);
	}
	nfs3_obj_close(&o);
	nfs3_end(&c);
	return RPC_DONE_REPLY;
}

/* ---- the table -------------------------------------------------------- */

#define NFS3_PROC(num, fn_, atype, rtype) \
	[NFSPROC3_##num] = { .name = #num, \
		.xdr_args = (xdrproc_t)xdr_##atype, .args_size = sizeof(atype), \
		.xdr_res = (xdrproc_t)xdr_##rtype, .res_size = sizeof(rtype), \
		.fn = fn_, .blocking = true }
/* Not idempotent (RFC 1813 section 4.7 lists them): a retransmission is
 * answered from the duplicate-request cache, never executed twice.
 * COMMIT and the reads are idempotent and run again. */
#define NFS3_PROC_DRC(num, fn_, atype, rtype) \
	[NFSPROC3_##num] = { .name = #num, \
		.xdr_args = (xdrproc_t)xdr_##atype, .args_size = sizeof(atype), \
		.xdr_res = (xdrproc_t)xdr_##rtype, .res_size = sizeof(rtype), \
		.fn = fn_, .blocking = true, .drc = true }

/* What a call's results may hold (rpc_proc.res_bytes: the byte budget),
 * the bound each handler caps the client's count at. */
static size_t nfs3_read_res_bytes(const void *args)
{
	const READ3args *a = args;

	return a->count < NFS3_MAXDATA ? a->count : NFS3_MAXDATA;
}

static size_t nfs3_readdir_res_bytes(const void *args)
{
	const READDIR3args *a = args;

	return a->count < NFS3_MAXDIRCOUNT ? a->count : NFS3_MAXDIRCOUNT;
}

static size_t nfs3_readdirplus_res_bytes(const void *args)
{
	const READDIRPLUS3args *a = args;

	return a->maxcount < NFS3_MAXDIRCOUNT ? a->maxcount : NFS3_MAXDIRCOUNT;
}

static const struct rpc_proc nfs3_procs[] = {
	[NFSPROC3_NULL] = { .name = "NULL",
		.xdr_args = (xdrproc_t)rpc_xdr_void, .args_size = 0,
		.xdr_res = (xdrproc_t)rpc_xdr_void, .res_size = 0,
		.fn = nfs3_null, .blocking = false },
	[NFSPROC3_GETATTR] = { .name = "GETATTR",
		.xdr_args = (xdrproc_t)xdr_GETATTR3args, .args_size = sizeof(GETATTR3args),
		.xdr_res = (xdrproc_t)xdr_GETATTR3res, .res_size = sizeof(GETATTR3res),
		.fn = nfs3_getattr, .blocking = true, .on_loop = nfs3_getattr_loop },
	NFS3_PROC_DRC(SETATTR,     nfs3_setattr,     SETATTR3args,     SETATTR3res),
	NFS3_PROC(LOOKUP,      nfs3_lookup,      LOOKUP3args,      LOOKUP3res),
	NFS3_PROC(ACCESS,      nfs3_access,      ACCESS3args,      ACCESS3res),
	NFS3_PROC(READLINK,    nfs3_readlink,    READLINK3args,    READLINK3res),
	[NFSPROC3_READ] = { .name = "READ",
		.xdr_args = (xdrproc_t)xdr_READ3args, .args_size = sizeof(READ3args),
		.xdr_res = (xdrproc_t)xdr_READ3res, .res_size = sizeof(READ3res),
		.fn = nfs3_read, .blocking = true, .res_bytes = nfs3_read_res_bytes,
		.xdr_res_head = (xdrproc_t)nfs3_xdr_read_head, .res_tail = nfs3_read_tail,
		.tail_free = nfsb_put },
	[NFSPROC3_WRITE] = { .name = "WRITE",
		.xdr_args = (xdrproc_t)nfs3_xdr_write_args, .args_size = sizeof(WRITE3args),
		.xdr_res = (xdrproc_t)xdr_WRITE3res, .res_size = sizeof(WRITE3res),
		.fn = nfs3_write, .blocking = true, .drc = true },
	NFS3_PROC_DRC(CREATE,      nfs3_create,      CREATE3args,      CREATE3res),
	NFS3_PROC_DRC(MKDIR,       nfs3_mkdir,       MKDIR3args,       MKDIR3res),
	NFS3_PROC_DRC(SYMLINK,     nfs3_symlink,     SYMLINK3args,     SYMLINK3res),
	NFS3_PROC_DRC(MKNOD,       nfs3_mknod,       MKNOD3args,       MKNOD3res),
	NFS3_PROC_DRC(REMOVE,      nfs3_remove,      REMOVE3args,      REMOVE3res),
	NFS3_PROC_DRC(RMDIR,       nfs3_rmdir,       RMDIR3args,       RMDIR3res),
	NFS3_PROC_DRC(RENAME,      nfs3_rename,      RENAME3args,      RENAME3res),
	NFS3_PROC_DRC(LINK,        nfs3_link,        LINK3args,        LINK3res),
	[NFSPROC3_READDIR] = { .name = "READDIR",
		.xdr_args = (xdrproc_t)xdr_READDIR3args, .args_size = sizeof(READDIR3args),
		.xdr_res = (xdrproc_t)xdr_READDIR3res, .res_size = sizeof(READDIR3res),
		.fn = nfs3_readdir, .blocking = true, .res_bytes = nfs3_readdir_res_bytes },
	[NFSPROC3_READDIRPLUS] = { .name = "READDIRPLUS",
		.xdr_args = (xdrproc_t)xdr_READDIRPLUS3args, .args_size = sizeof(READDIRPLUS3args),
		.xdr_res = (xdrproc_t)xdr_READDIRPLUS3res, .res_size = sizeof(READDIRPLUS3res),
		.fn = nfs3_readdirplus, .blocking = true,
		.res_bytes = nfs3_readdirplus_res_bytes },
	NFS3_PROC(FSSTAT,      nfs3_fsstat,      FSSTAT3args,      FSSTAT3res),
	NFS3_PROC(FSINFO,      nfs3_fsinfo,      FSINFO3args,      FSINFO3res),
	NFS3_PROC(PATHCONF,    nfs3_pathconf,    PATHCONF3args,    PATHCONF3res),
	NFS3_PROC(COMMIT,      nfs3_commit,      COMMIT3args,      COMMIT3res),
};

static const struct rpc_vers nfs3_v3 = {
	.vers = NFS_V3,
	.nprocs = sizeof(nfs3_procs) / sizeof(nfs3_procs[0]),
	.procs = nfs3_procs,
};

static const struct rpc_vers *const nfs3_versions[] = { &nfs3_v3 };

/* Version 3 only: a v2 or v4 call gets PROG_MISMATCH 3..3. */
const struct rpc_prog nfs3_prog = {
	.name = "nfs",
	.prog = NFS3_PROGRAM,
	.vers_lo = NFS_V3,
	.vers_hi = NFS_V3,
	.vers = nfs3_versions,
};
