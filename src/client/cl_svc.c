/*
 * cl_svc.c - the services every simulated host offers on its own address,
 * as a kernel NFS client host does: PORTMAP (so a server can find the
 * other two), the NLM callback service (a server calls GRANTED /
 * GRANTED_MSG when a blocked lock is granted, and the _RES procedures to
 * answer our _MSG requests) and NSM (SM_NOTIFY: "server X restarted").
 *
 * One rpc_svc carries the three programs for every host; each host has its
 * own listeners, whose context is the host.  All hosts use the same port
 * numbers on their different addresses, so the process-wide portmapper
 * table of src/rpc/pmap_svc.c answers correctly for each of them.
 *
 * Handlers only translate: v1/v3 arguments are widened to the v4 form here
 * and the work is done once in cl_nlm.c.  Every procedure returns void or a
 * result a server will read; nothing here is blocking.
 */
#include "client/cl_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nlm.h"
#include "nsm.h"
#include "pmap.h"
#include "rpc/pmap_svc.h"

static struct cl_host *cls_host(const struct rpc_req *req)
{
	return req->svc_ctx;
}

static struct sockaddr_in cls_from(const struct rpc_req *req)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	if (req->peer.ss_family == AF_INET)
		memcpy(&sin, &req->peer, sizeof(sin));
	return sin;
}

static void cls_blob(struct cl_blob *b, const sgn_netobj *n)
{
	b->len = n->sgn_netobj_len <= CL_MAX_NETOBJ ? n->sgn_netobj_len : CL_MAX_NETOBJ;
	memcpy(b->val, n->sgn_netobj_val, b->len);
}

/* Copy a cookie into a result: the result is xdr_free()d after the reply. */
static int cls_cookie(sgn_netobj *dst, const struct cl_blob *c)
{
	dst->sgn_netobj_len = 0;
	dst->sgn_netobj_val = NULL;
	if (c->len == 0)
		return 0;
	dst->sgn_netobj_val = malloc(c->len);
	if (!dst->sgn_netobj_val)
		return -ENOMEM;
	memcpy(dst->sgn_netobj_val, c->val, c->len);
	dst->sgn_netobj_len = c->len;
	return 0;
}

static enum rpc_disposition cls_null(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

/* Widen GRANTED / GRANTED_MSG arguments of any version and handle them. */
static int cls_do_granted(struct rpc_req *req, struct cl_blob *cookie)
{
	struct cl_granted g;
	struct sockaddr_in from = cls_from(req);

	memset(&g, 0, sizeof(g));
	if (req->vers == NLM4_VERS) {
		const nlm4_testargs *a = req->args;

		cls_blob(cookie, &a->cookie);
		g.exclusive = a->exclusive;
		g.fh = (const uint8_t *)a->alock.fh.sgn_netobj_val;
		g.fh_len = a->alock.fh.sgn_netobj_len;
		g.oh = (const uint8_t *)a->alock.oh.sgn_netobj_val;
		g.oh_len = a->alock.oh.sgn_netobj_len;
		g.svid = (uint32_t)a->alock.svid;
		g.start = a->alock.l_offset;
		g.len = a->alock.l_len;
	} else {
		const sgn_nlm_testargs *a = req->args;

		cls_blob(cookie, &a->cookie);
		g.exclusive = a->exclusive;
		g.fh = (const uint8_t *)a->alock.fh.sgn_netobj_val;
		g.fh_len = a->alock.fh.sgn_netobj_len;
		g.oh = (const uint8_t *)a->alock.oh.sgn_netobj_val;
		g.oh_len = a->alock.oh.sgn_netobj_len;
		g.svid = (uint32_t)a->alock.svid;
		g.start = a->alock.l_offset;
		g.len = a->alock.l_len;
	}
	g.cookie = cookie;
	return cl_nlm_granted(cls_host(req), &from, &g);
}

static enum rpc_disposition cls_granted(struct rpc_req *req)
{
	struct cl_blob *cookie = malloc(sizeof(*cookie));
	int stat, rc;

	if (!cookie)
		return RPC_DONE_SYSERR;
	stat = cls_do_granted(req, cookie);
	/* nlm4_res and sgn_nlm_res have the same shape on the wire and here */
	if (req->vers == NLM4_VERS) {
		nlm4_res *r = req->res;
		rc = cls_cookie(&r->cookie, cookie);
		r->stat.stat = (nlm4_stats)stat;
	} else {
		sgn_nlm_res *r = req->res;
		rc = cls_cookie(&r->cookie, cookie);
		r->stat.stat = (sgn_nlm_stats)stat;
	}
	free(cookie);
	return rc < 0 ? RPC_DONE_SYSERR : RPC_DONE_REPLY;
}

static enum rpc_disposition cls_granted_msg(struct rpc_req *req)
{
	struct cl_blob *cookie = malloc(sizeof(*cookie));
	struct sockaddr_in from = cls_from(req);
	int stat;

	if (!cookie)
		return RPC_DONE_SYSERR;
	stat = cls_do_granted(req, cookie);
	cl_nlm_send_granted_res(cls_host(req), &from, req->vers, cookie, stat);
	free(cookie);
	return RPC_DONE_REPLY; /* void: harmless to a sender that ignores it */
}

static enum rpc_disposition cls_test_res(struct rpc_req *req)
{
	struct cl_result *d = calloc(1, sizeof(*d));
	const sgn_netobj *cookie;

	if (!d)
		return RPC_DONE_SYSERR;
	if (req->vers == NLM4_VERS) {
		const nlm4_testres *a = req->args;
		cookie = &a->cookie;
		d->stat = a->test_stat.stat;
		if (a->test_stat.stat == NLM4_DENIED) {
			const nlm4_holder *ho = &a->test_stat.nlm4_testrply_u.holder;
			d->has_holder = true;
			d->holder_excl = ho->exclusive;
			d->holder_svid = (uint32_t)ho->svid;
			cls_blob(&d->holder_oh, &ho->oh);
			d->holder_start = ho->l_offset;
			d->holder_len = ho->l_len;
		}
	} else {
		const sgn_nlm_testres *a = req->args;
		cookie = &a->cookie;
		d->stat = a->test_stat.stat;
		if (a->test_stat.stat == LCK_DENIED) {
			const sgn_nlm_holder *ho = &a->test_stat.sgn_nlm_testrply_u.holder;
			d->has_holder = true;
			d->holder_excl = ho->exclusive;
			d->holder_svid = (uint32_t)ho->svid;
			cls_blob(&d->holder_oh, &ho->oh);
			d->holder_start = ho->l_offset;
			d->holder_len = ho->l_len;
		}
	}
	cl_nlm_res(cls_host(req), CL_OP_TEST, (const uint8_t *)cookie->sgn_netobj_val,
		   cookie->sgn_netobj_len, d->stat, d);
	free(d);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition cls_res(struct rpc_req *req, enum cl_op op)
{
	/* nlm4_res and sgn_nlm_res: cookie, then a status enum */
	const nlm4_res *a4 = req->args;
	const sgn_nlm_res *a1 = req->args;
	const sgn_netobj *cookie = req->vers == NLM4_VERS ? &a4->cookie : &a1->cookie;
	int stat = req->vers == NLM4_VERS ? (int)a4->stat.stat : (int)a1->stat.stat;

	cl_nlm_res(cls_host(req), op, (const uint8_t *)cookie->sgn_netobj_val,
		   cookie->sgn_netobj_len, stat, NULL);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition cls_lock_res(struct rpc_req *req)
{
	return cls_res(req, CL_OP_LOCK);
}

static enum rpc_disposition cls_cancel_res(struct rpc_req *req)
{
	return cls_res(req, CL_OP_CANCEL);
}

static enum rpc_disposition cls_unlock_res(struct rpc_req *req)
{
	return cls_res(req, CL_OP_UNLOCK);
}

static enum rpc_disposition cls_granted_res(struct rpc_req *req)
{
	return RPC_DONE_REPLY; /* we never send GRANTED_MSG: nothing to match */
}

/* Two levels so CLS_VOID expands to its two arguments first. */
#define CLS_PROC(...) CLS_PROC_(__VA_ARGS__)
#define CLS_PROC_(NUM, fn_, at, ax, rt, rx) \
	[NUM] = { .name = #NUM, .fn = fn_, .xdr_args = (xdrproc_t)ax, .args_size = sizeof(at), \
		  .xdr_res = (xdrproc_t)rx, .res_size = sizeof(rt) }
#define CLS_VOID char, rpc_xdr_void

static const struct rpc_proc cls_nlm4_procs[] = {
	CLS_PROC(NLMPROC_NULL, cls_null, CLS_VOID, CLS_VOID),
	CLS_PROC(NLMPROC_GRANTED, cls_granted, nlm4_testargs, xdr_nlm4_testargs,
		 nlm4_res, xdr_nlm4_res),
	CLS_PROC(NLMPROC_GRANTED_MSG, cls_granted_msg, nlm4_testargs, xdr_nlm4_testargs,
		 CLS_VOID),
	CLS_PROC(NLMPROC_TEST_RES, cls_test_res, nlm4_testres, xdr_nlm4_testres, CLS_VOID),
	CLS_PROC(NLMPROC_LOCK_RES, cls_lock_res, nlm4_res, xdr_nlm4_res, CLS_VOID),
	CLS_PROC(NLMPROC_CANCEL_RES, cls_cancel_res, nlm4_res, xdr_nlm4_res, CLS_VOID),
	CLS_PROC(NLMPROC_UNLOCK_RES, cls_unlock_res, nlm4_res, xdr_nlm4_res, CLS_VOID),
	CLS_PROC(NLMPROC_GRANTED_RES, cls_granted_res, nlm4_res, xdr_nlm4_res, CLS_VOID),
};

/* v1 and v3 share the argument types; v3 adds nothing a client serves. */
static const struct rpc_proc cls_nlm1_procs[] = {
	CLS_PROC(NLMPROC_NULL, cls_null, CLS_VOID, CLS_VOID),
	CLS_PROC(NLMPROC_GRANTED, cls_granted, sgn_nlm_testargs, xdr_sgn_nlm_testargs,
		 sgn_nlm_res, xdr_sgn_nlm_res),
	CLS_PROC(NLMPROC_GRANTED_MSG, cls_granted_msg, sgn_nlm_testargs,
		 xdr_sgn_nlm_testargs, CLS_VOID),
	CLS_PROC(NLMPROC_TEST_RES, cls_test_res, sgn_nlm_testres, xdr_sgn_nlm_testres,
		 CLS_VOID),
	CLS_PROC(NLMPROC_LOCK_RES, cls_lock_res, sgn_nlm_res, xdr_sgn_nlm_res, CLS_VOID),
	CLS_PROC(NLMPROC_CANCEL_RES, cls_cancel_res, sgn_nlm_res, xdr_sgn_nlm_res, CLS_VOID),
	CLS_PROC(NLMPROC_UNLOCK_RES, cls_unlock_res, sgn_nlm_res, xdr_sgn_nlm_res, CLS_VOID),
	CLS_PROC(NLMPROC_GRANTED_RES, cls_granted_res, sgn_nlm_res, xdr_sgn_nlm_res, CLS_VOID),
};

static const struct rpc_vers cls_nlm_v1 = {
	.vers = NLM_VERS, .procs = cls_nlm1_procs,
	.nprocs = sizeof(cls_nlm1_procs) / sizeof(cls_nlm1_procs[0]),
};
static const struct rpc_vers cls_nlm_v3 = {
	.vers = NLM_VERSX, .procs = cls_nlm1_procs,
	.nprocs = sizeof(cls_nlm1_procs) / sizeof(cls_nlm1_procs[0]),
};
static const struct rpc_vers cls_nlm_v4 = {
	.vers = NLM4_VERS, .procs = cls_nlm4_procs,
	.nprocs = sizeof(cls_nlm4_procs) / sizeof(cls_nlm4_procs[0]),
};
static const struct rpc_vers *const cls_nlm_versions[] = {
	&cls_nlm_v1, NULL, &cls_nlm_v3, &cls_nlm_v4,
};
static const struct rpc_prog cls_nlm_prog = {
	.name = "nlm-callback", .prog = NLM_PROG, .vers_lo = 1, .vers_hi = 4,
	.vers = cls_nlm_versions,
};

/* ---- NSM ------------------------------------------------------------------ */

static enum rpc_disposition cls_sm_stat(struct rpc_req *req)
{
	sgn_sm_stat_res *r = req->res;

	r->res_stat = NSM_STAT_SUCC;
	r->state = cls_host(req)->state;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition cls_sm_notify(struct rpc_req *req)
{
	const sgn_stat_chge *a = req->args;
	struct sockaddr_in from = cls_from(req);

	cl_nsm_notify(cls_host(req), &from, req->xid, a->mon_name ? a->mon_name : "", a->state);
	return RPC_DONE_REPLY;
}

static const struct rpc_proc cls_nsm_procs[] = {
	CLS_PROC(NSMPROC_NULL, cls_null, CLS_VOID, CLS_VOID),
	CLS_PROC(NSMPROC_STAT, cls_sm_stat, sgn_sm_name, xdr_sgn_sm_name,
		 sgn_sm_stat_res, xdr_sgn_sm_stat_res),
	CLS_PROC(NSMPROC_NOTIFY, cls_sm_notify, sgn_stat_chge, xdr_sgn_stat_chge, CLS_VOID),
};
static const struct rpc_vers cls_nsm_v1 = {
	.vers = NSM_VERS, .procs = cls_nsm_procs,
	.nprocs = sizeof(cls_nsm_procs) / sizeof(cls_nsm_procs[0]),
};
static const struct rpc_vers *const cls_nsm_versions[] = { &cls_nsm_v1 };
static const struct rpc_prog cls_nsm_prog = {
	.name = "nsm", .prog = NSM_PROG, .vers_lo = 1, .vers_hi = 1,
	.vers = cls_nsm_versions,
};

/* ---- setup ---------------------------------------------------------------- */

int cl_svc_init(struct cl_ctx *ctx)
{
	struct rpc_limits lim = {
		.max_record = 65536,        /* callbacks are small */
		.max_conns = 65536,
		.idle_timeout_ms = 300000,
	};
	static const uint32_t nlm_versions[] = { NLM_VERS, NLM_VERSX, NLM4_VERS };
	int rc;

	rc = rpc_svc_new(ctx->loop, &lim, &ctx->svc);
	if (rc < 0)
		return rc;
	if ((rc = rpc_svc_register(ctx->svc, &pmap_prog)) < 0 ||
	    (rc = rpc_svc_register(ctx->svc, &cls_nlm_prog)) < 0 ||
	    (rc = rpc_svc_register(ctx->svc, &cls_nsm_prog)) < 0)
		goto fail;
	for (size_t i = 0; i < 3; i++) {
		pmap_table_set(NLM_PROG, nlm_versions[i], PMAP_IPPROTO_UDP, ctx->cfg.cb_nlm_port);
		pmap_table_set(NLM_PROG, nlm_versions[i], PMAP_IPPROTO_TCP, ctx->cfg.cb_nlm_port);
	}
	pmap_table_set(NSM_PROG, NSM_VERS, PMAP_IPPROTO_UDP, ctx->cfg.cb_nsm_port);
	pmap_table_set(NSM_PROG, NSM_VERS, PMAP_IPPROTO_TCP, ctx->cfg.cb_nsm_port);
	return 0;
fail:
	rpc_svc_free(ctx->svc);
	ctx->svc = NULL;
	return rc;
}

int cl_svc_start_host(struct cl_host *h)
{
	struct cl_ctx *ctx = h->ctx;
	const uint16_t ports[3] = { ctx->cfg.cb_pmap_port, ctx->cfg.cb_nlm_port,
				    ctx->cfg.cb_nsm_port };

	for (int i = 0; i < 3; i++) {
		struct sockaddr_in a = h->addr;
		int rc;

		a.sin_port = htons(ports[i]);
		rc = rpc_listen(ctx->svc, (const struct sockaddr *)&a,
				RPC_LISTEN_TCP | RPC_LISTEN_UDP, h, &h->lsn[i]);
		if (rc < 0) {
			h->lsn[i] = NULL;
			cl_event(ctx, h, "event=error what=listen port=%u err=\"%s\"",
				 ports[i], strerror(-rc));
			return rc;
		}
		rpc_listener_set_release(h->lsn[i], cl_host_listener_released);
		ctx->listeners_open++;
	}
	return 0;
}
