/*
 * cl_nfs.c - from a path to an NFS file handle, as a client host does:
 * MOUNT v3 MNT of the export, then NFSv3 LOOKUP of each remaining component.
 * This file is the only part of the client that speaks MOUNT and NFS.
 *
 * Which leading part of the path is the export is not known in advance, so
 * MNT is tried on the longest leading directory first and on shorter ones
 * until the server accepts one ("/srv/g1/home/a/f": "/srv/g1/home/a", then
 * "/srv/g1/home", ...).  Resolved handles are cached per server.
 *
 * "fh:HEX" names a handle directly (tests of handles the server never gave
 * out, or servers without MOUNT).
 *
 * One resolution has at most one thing outstanding at a time (a port
 * lookup, an RPC call or the deferred completion), and each of those ends
 * in cl_res_step()/cl_res_finish(), so cancelling it (server teardown) is
 * cancelling that one thing.
 */
#include "client/cl_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mount.h"
#include "nfs3.h"

struct cl_fhent {
	struct cl_fhent *next;
	struct cl_file f;
};

struct cl_res;

struct cl_nfs_cache {
	struct cl_fhent *ents;           /* owned */
	struct cl_res *active;           /* resolutions in progress (owned) */
};

struct cl_res {
	struct cl_res *next;             /* in cache->active */
	struct cl_server *s;
	cl_file_fn done;
	void *arg;
	char path[CL_MAX_PATH];
	size_t mnt_len;                  /* length of the directory tried with MNT */
	size_t pos;                      /* next component to LOOKUP starts here */
	bool mounted;
	bool saw_acces;
	bool cached;                     /* answered from the cache */
	struct cl_file f;                /* f.fh: the handle reached so far */
	struct rpcc_getport_req *gp;
	uint32_t gp_prog;
	bool in_call;
	uv_timer_t timer;
	bool timer_open;
	int err;
};

static void cl_res_step(struct cl_res *r);

static struct cl_nfs_cache *cl_cache(struct cl_server *s)
{
	if (!s->nfsc)
		s->nfsc = calloc(1, sizeof(*s->nfsc));
	return s->nfsc;
}

static void cl_res_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Unlink @r, report, free. */
static void cl_res_finish(struct cl_res *r, int err)
{
	struct cl_nfs_cache *c = r->s->nfsc;
	struct cl_res **pp = &c->active;

	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp)
		*pp = r->next;
	if (err == 0 && !r->cached) {
		struct cl_fhent *e = calloc(1, sizeof(*e));
		if (e) {
			e->f = r->f;
			e->next = c->ents;
			c->ents = e;
		}
	}
	r->done(err, err ? NULL : &r->f, r->arg);
	if (r->timer_open)
		uv_close((uv_handle_t *)&r->timer, cl_res_timer_closed);
	else
		free(r);
}

static void cl_res_deferred(uv_timer_t *t)
{
	struct cl_res *r = t->data;

	cl_res_finish(r, r->err);
}

/* Complete from the loop, never inside cl_resolve(). */
static void cl_res_defer(struct cl_res *r, int err)
{
	r->err = err;
	uv_timer_init(r->s->host->ctx->loop, &r->timer);
	r->timer.data = r;
	r->timer_open = true;
	uv_timer_start(&r->timer, cl_res_deferred, 0, 0);
}

static int cl_nfsstat_errno(int st)
{
	switch (st) {
	case NFS3ERR_NOENT:   return -ENOENT;
	case NFS3ERR_ACCES:   return -EACCES;
	case NFS3ERR_PERM:    return -EPERM;
	case NFS3ERR_NOTDIR:  return -ENOTDIR;
	case NFS3ERR_STALE:   return -ESTALE;
	case NFS3ERR_NAMETOOLONG: return -ENAMETOOLONG;
	default:              return -EIO;
	}
}

/* ---- handles to MOUNT and NFS -------------------------------------------- */

static struct rpcc_clnt **cl_res_slot(struct cl_server *s, uint32_t prog)
{
	return prog == MNT3_PROGRAM ? &s->mnt : &s->nfs;
}

static int cl_res_make(struct cl_server *s, uint32_t prog, uint16_t port)
{
	struct cl_host *h = s->host;
	const struct cl_config *cfg = &h->ctx->cfg;
	struct sockaddr_in srv = s->addr, local = h->addr;
	struct rpcc_auth auth = { .flavor = RPCC_AUTH_SYS, .uid = cfg->uid, .gid = cfg->gid,
				  .ngids = 1, .gids = { cfg->gid } };
	struct rpcc_opts o = { 0 };

	if (*cl_res_slot(s, prog))
		return 0; /* another resolution got there first */
	snprintf(auth.machinename, sizeof(auth.machinename), "%.255s", h->name);
	srv.sin_port = htons(port);
	local.sin_port = 0;
	o.server = (const struct sockaddr *)&srv;
	o.local = (const struct sockaddr *)&local;
	o.prog = prog;
	o.vers = 3;
	o.transport = cfg->proto;
	o.auth = &auth;
	o.timeout = cfg->timeout;
	return rpcc_new(h->ctx->loop, &o, cl_res_slot(s, prog));
}

static void cl_res_port_cb(int err, uint16_t port, void *arg)
{
	struct cl_res *r = arg;

	r->gp = NULL;
	if (err == 0)
		err = cl_res_make(r->s, r->gp_prog, port);
	if (err) {
		cl_res_finish(r, err);
		return;
	}
	cl_res_step(r);
}

/* 0: the handle for @prog exists; 1: being looked up; <0: error. */
static int cl_res_need(struct cl_res *r, uint32_t prog)
{
	struct cl_server *s = r->s;
	const struct cl_config *cfg = &s->host->ctx->cfg;
	uint16_t fixed = prog == MNT3_PROGRAM ? cfg->mount_port : cfg->nfs_port;
	struct sockaddr_in pm = s->addr, local = s->host->addr;
	int rc;

	if (*cl_res_slot(s, prog))
		return 0;
	if (fixed)
		return cl_res_make(s, prog, fixed);
	pm.sin_port = htons(cfg->pmap_port);
	local.sin_port = 0;
	r->gp_prog = prog;
	rc = rpcc_getport(s->host->ctx->loop, (const struct sockaddr *)&pm,
			  (const struct sockaddr *)&local, prog, 3,
			  cfg->proto == RPCC_TCP ? IPPROTO_TCP : IPPROTO_UDP, &cfg->timeout,
			  cl_res_port_cb, r, &r->gp);
	return rc < 0 ? rc : 1;
}

/* ---- MNT and LOOKUP --------------------------------------------------------- */

static void cl_res_mnt_cb(const struct rpcc_reply *rep, void *arg)
{
	struct cl_res *r = arg;
	const mnt3_mountres *m = rep->res;

	r->in_call = false;
	if (rep->err) {
		cl_res_finish(r, rep->err);
		return;
	}
	if (m->fhs_status == MNT3_OK) {
		const mnt3_fhandle *fh = &m->mnt3_mountres_u.mountinfo.fhandle;

		r->f.fh.len = fh->mnt3_fhandle_len;
		memcpy(r->f.fh.val, fh->mnt3_fhandle_val, fh->mnt3_fhandle_len);
		r->mounted = true;
		r->pos = r->mnt_len;
		cl_res_step(r);
		return;
	}
	if (m->fhs_status == MNT3ERR_ACCES || m->fhs_status == MNT3ERR_PERM)
		r->saw_acces = true;
	if (r->mnt_len <= 1) {
		cl_res_finish(r, r->saw_acces ? -EACCES : -ENOENT);
		return;
	}
	/* not an export (or not ours): try the parent directory */
	while (r->mnt_len > 1 && r->path[r->mnt_len - 1] != '/')
		r->mnt_len--;
	if (r->mnt_len > 1)
		r->mnt_len--; /* drop the slash itself, except for "/" */
	cl_res_step(r);
}

static void cl_res_lookup_cb(const struct rpcc_reply *rep, void *arg)
{
	struct cl_res *r = arg;
	const LOOKUP3res *l = rep->res;

	r->in_call = false;
	if (rep->err) {
		cl_res_finish(r, rep->err);
		return;
	}
	if (l->status != NFS3_OK) {
		cl_res_finish(r, cl_nfsstat_errno(l->status));
		return;
	}
	r->f.fh.len = l->LOOKUP3res_u.resok.object.data.data_len;
	memcpy(r->f.fh.val, l->LOOKUP3res_u.resok.object.data.data_val, r->f.fh.len);
	cl_res_step(r);
}

/* Do the next thing: mount, or look the next component up, or finish. */
static void cl_res_step(struct cl_res *r)
{
	struct cl_server *s = r->s;
	int rc;

	if (!r->mounted) {
		char dir[CL_MAX_PATH];
		char *dp = dir;

		rc = cl_res_need(r, MNT3_PROGRAM);
		if (rc == 1)
			return;
		if (rc < 0) {
			cl_res_finish(r, rc);
			return;
		}
		memcpy(dir, r->path, r->mnt_len);
		dir[r->mnt_len] = '\0';
		rc = rpcc_call(s->mnt, MOUNTPROC3_MNT, (xdrproc_t)xdr_mnt3_dirpath, &dp,
			       (xdrproc_t)xdr_mnt3_mountres, sizeof(mnt3_mountres), NULL,
			       cl_res_mnt_cb, r);
		if (rc < 0)
			cl_res_finish(r, rc);
		else
			r->in_call = true;
		return;
	}
	while (r->path[r->pos] == '/')
		r->pos++;
	if (r->path[r->pos] == '\0') {
		cl_res_finish(r, 0);
		return;
	}
	rc = cl_res_need(r, NFS3_PROGRAM);
	if (rc == 1)
		return;
	if (rc < 0) {
		cl_res_finish(r, rc);
		return;
	}
	{
		char name[CL_MAX_PATH];
		size_t n = strcspn(r->path + r->pos, "/");
		LOOKUP3args a;

		memcpy(name, r->path + r->pos, n);
		name[n] = '\0';
		r->pos += n;
		memset(&a, 0, sizeof(a));
		a.what.dir.data.data_len = r->f.fh.len;
		a.what.dir.data.data_val = (char *)r->f.fh.val;
		a.what.name = name;
		rc = rpcc_call(s->nfs, NFSPROC3_LOOKUP, (xdrproc_t)xdr_LOOKUP3args, &a,
			       (xdrproc_t)xdr_LOOKUP3res, sizeof(LOOKUP3res), NULL,
			       cl_res_lookup_cb, r);
	}
	if (rc < 0)
		cl_res_finish(r, rc);
	else
		r->in_call = true;
}

int cl_resolve(struct cl_server *s, const char *path, cl_file_fn done, void *arg)
{
	struct cl_nfs_cache *c;
	struct cl_res *r;
	size_t len = strlen(path);

	if (s->host->ctx->closing)
		return -ESHUTDOWN;
	if (len == 0 || len >= CL_MAX_PATH)
		return -EINVAL;
	c = cl_cache(s);
	if (!c)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->s = s;
	r->done = done;
	r->arg = arg;
	memcpy(r->path, path, len + 1);
	memcpy(r->f.path, path, len + 1);
	r->next = c->active;
	c->active = r;

	if (!strncmp(path, "fh:", 3)) {
		cl_res_defer(r, cl_blob_from_hex(&r->f.fh, path + 3));
		return 0;
	}
	if (path[0] != '/') {
		c->active = r->next;
		free(r);
		return -EINVAL;
	}
	for (struct cl_fhent *e = c->ents; e; e = e->next) {
		if (!strcmp(e->f.path, path)) {
			r->f = e->f;
			r->cached = true;
			cl_res_defer(r, 0);
			return 0;
		}
	}
	/* the longest leading directory first */
	r->mnt_len = len;
	while (r->mnt_len > 1 && path[r->mnt_len - 1] != '/')
		r->mnt_len--;
	if (r->mnt_len > 1)
		r->mnt_len--;
	cl_res_step(r);
	return 0;
}

void cl_nfs_server_free(struct cl_server *s)
{
	struct cl_nfs_cache *c = s->nfsc;

	if (!c)
		goto out_clnts;
	/* Cancel what each resolution waits for; each path ends in finish. */
	while (c->active) {
		struct cl_res *r = c->active;

		if (r->gp) {
			struct rpcc_getport_req *gp = r->gp;
			r->gp = NULL;
			rpcc_getport_cancel(gp);     /* -> port_cb -> finish */
		} else if (r->in_call) {
			/* closing the handle cancels the call -> finish */
			struct rpcc_clnt **slot = r->mounted ? &s->nfs : &s->mnt;
			struct rpcc_clnt *cl = *slot;
			*slot = NULL;
			if (cl)
				rpcc_close(cl);
			else
				cl_res_finish(r, -ECANCELED);
		} else {
			if (r->timer_open)
				uv_timer_stop(&r->timer);
			cl_res_finish(r, -ECANCELED);
		}
	}
	while (c->ents) {
		struct cl_fhent *e = c->ents;
		c->ents = e->next;
		free(e);
	}
	free(c);
	s->nfsc = NULL;
out_clnts:
	if (s->mnt)
		rpcc_close(s->mnt);
	if (s->nfs)
		rpcc_close(s->nfs);
	s->mnt = s->nfs = NULL;
}
