/*
 * nsm_svc.c - see nsm_svc.h.  The handlers only check and translate; what
 * "a client rebooted" means for locks is decided by the NLM layer
 * through the group (grp_client_rebooted), so NSM and FREE_ALL share one
 * path and NSM never names NLM.
 */
#include "nsm/nsm_svc.h"

#include <string.h>

#include "group/gslot.h"
#include "log.h"
#include "nsm.h"

static bool nsm_from_loopback(const struct rpc_req *req, const char *what)
{
	char a[80];

	if (rpc_addr_is_loopback(&req->peer))
		return true;
	log_warn("nsm: %s from %s refused: only local callers may change monitoring", what,
		 rpc_addr_str(&req->peer, true, a, sizeof(a)));
	return false;
}

static int32_t nsm_group_state(const struct rpc_req *req)
{
	const struct grp_pub *g = req->svc_ctx;
	return g ? g->nsm_state : 0;
}

static enum rpc_disposition nsm_null(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nsm_stat(struct rpc_req *req)
{
	sgn_sm_stat_res *res = req->res;

	res->res_stat = NSM_STAT_SUCC;
	res->state = nsm_group_state(req);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nsm_mon(struct rpc_req *req)
{
	sgn_sm_stat_res *res = req->res;

	res->state = nsm_group_state(req);
	res->res_stat = nsm_from_loopback(req, "SM_MON") ? NSM_STAT_SUCC : NSM_STAT_FAIL;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nsm_unmon(struct rpc_req *req)
{
	sgn_sm_stat *res = req->res;

	(void)nsm_from_loopback(req, req->proc == NSMPROC_UNMON ? "SM_UNMON" : "SM_UNMON_ALL");
	res->state = nsm_group_state(req);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nsm_simu_crash(struct rpc_req *req)
{
	(void)nsm_from_loopback(req, "SM_SIMU_CRASH");
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nsm_notify(struct rpc_req *req)
{
	struct grp_pub *g = req->svc_ctx;
	const sgn_stat_chge *a = req->args;

	if (g && a->mon_name)
		grp_client_rebooted(g, a->mon_name, &req->peer, false, "SM_NOTIFY");
	return RPC_DONE_REPLY;
}

#define NSM_P(NUM, NAME, fn_, A, XA, R, XR) \
	[NUM] = { .name = NAME, .fn = fn_, .xdr_args = (xdrproc_t)XA, .args_size = sizeof(A), \
		  .xdr_res = (xdrproc_t)XR, .res_size = sizeof(R) }

static const struct rpc_proc nsm_v1_procs[] = {
	NSM_P(NSMPROC_NULL, "NULL", nsm_null, char, rpc_xdr_void, char, rpc_xdr_void),
	NSM_P(NSMPROC_STAT, "STAT", nsm_stat, sgn_sm_name, xdr_sgn_sm_name, sgn_sm_stat_res,
	      xdr_sgn_sm_stat_res),
	NSM_P(NSMPROC_MON, "MON", nsm_mon, sgn_mon, xdr_sgn_mon, sgn_sm_stat_res,
	      xdr_sgn_sm_stat_res),
	NSM_P(NSMPROC_UNMON, "UNMON", nsm_unmon, sgn_mon_id, xdr_sgn_mon_id, sgn_sm_stat,
	      xdr_sgn_sm_stat),
	NSM_P(NSMPROC_UNMON_ALL, "UNMON_ALL", nsm_unmon, sgn_my_id, xdr_sgn_my_id, sgn_sm_stat,
	      xdr_sgn_sm_stat),
	NSM_P(NSMPROC_SIMU_CRASH, "SIMU_CRASH", nsm_simu_crash, char, rpc_xdr_void, char,
	      rpc_xdr_void),
	NSM_P(NSMPROC_NOTIFY, "NOTIFY", nsm_notify, sgn_stat_chge, xdr_sgn_stat_chge, char,
	      rpc_xdr_void),
};

static const struct rpc_vers nsm_v1 = {
	1, sizeof(nsm_v1_procs) / sizeof(nsm_v1_procs[0]), nsm_v1_procs,
};
static const struct rpc_vers *const nsm_versions[] = { &nsm_v1 };

const struct rpc_prog nsm_prog = {
	.name = "status",
	.prog = NSM_PROG,
	.vers_lo = 1,
	.vers_hi = 1,
	.vers = nsm_versions,
};
