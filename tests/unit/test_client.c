/*
 * test_client.c - the client host library (src/client) against a stub
 * server written here on the server-side RPC layer (src/rpc/rpc.h): a toy
 * NLM v4/v3 lock table with blocked waiters and GRANTED callbacks, the
 * _MSG/_RES forms, a grace mode, SM_NOTIFY to clients, NSM to receive a
 * client's reboot notice, and just enough MOUNT and NFS LOOKUP to resolve a
 * path.  It stands in for src/nlm until that exists; the stub is simple on
 * purpose (no range splitting), the client is what is under test.
 *
 * Addresses and ports are unusual ones (127.211/127.212, 2xxxx) so the test
 * never meets a real portmapper or another test's listeners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "client/cl_bench.h"
#include "client/cl_int.h"
#include "rpc/rpc.h"
#include "rpc/pmap_svc.h"
#include "nlm.h"
#include "nsm.h"
#include "pmap.h"
#include "mount.h"
#include "nfs3.h"

/*
 * The stub's VIP and the two client hosts are derived from the pid (in
 * main), so two runs at once (the plain and the ASan build, two
 * worktrees) do not bind the same address and port.
 */
static char VIP[16], HOST_A[16], HOST_B[16];
#define P_PMAP   20111
#define P_NLM    20045
#define P_NSM    20046
#define P_NFS    20049

/* ---- the stub server ------------------------------------------------------ */

struct slock {
	char caller[64];
	uint32_t svid;
	struct cl_blob oh, fh;
	uint64_t start, len;
	bool excl;
	bool waiting;                 /* a blocked request, not a lock */
	struct sockaddr_in client;    /* where to send GRANTED */
};

struct stub {
	uv_loop_t *loop;
	struct rpc_svc *svc;
	struct rpc_listener *lsn[4];
	struct slock locks[512];
	size_t n;
	bool grace;                   /* only reclaims are granted */
	int grace_left;               /* answer this many reclaims with GRACE first */
	uint32_t refuse_reclaim_svid; /* reclaims of this svid: DENIED */
	unsigned reclaims, granted_sent, granted_ok, granted_denied, res_sent;
	unsigned lock_calls;
	/* bench-lock: what the stub did, and how it refuses on purpose */
	unsigned lock_granted, unlock_calls, unlock_ok;
	unsigned deny_every;          /* every Nth LOCK: DENIED (0 = none) */
	unsigned syserr_every;        /* every Nth UNLOCK: RPC SYSTEM_ERR (0 = none) */
	unsigned denied_sent, syserr_sent;
	char notified_name[128];
	int notified_state;
	unsigned notifies;
	struct rpcc_clnt *out[8];     /* callbacks to clients, by address */
	struct sockaddr_in out_addr[8];
	size_t nout;
};

static struct stub S;

static uint64_t s_last(uint64_t start, uint64_t len)
{
	return len == 0 ? UINT64_MAX : start + len - 1;
}

static bool s_overlap(const struct slock *a, uint64_t start, uint64_t len)
{
	return a->start <= s_last(start, len) && start <= s_last(a->start, a->len);
}

static bool s_same_owner(const struct slock *a, const struct slock *b)
{
	return !strcmp(a->caller, b->caller) && a->svid == b->svid &&
	       a->oh.len == b->oh.len && !memcmp(a->oh.val, b->oh.val, a->oh.len);
}

static bool s_same_file(const struct slock *a, const struct slock *b)
{
	return a->fh.len == b->fh.len && !memcmp(a->fh.val, b->fh.val, a->fh.len);
}

static struct slock *s_conflict(const struct slock *q)
{
	for (size_t i = 0; i < S.n; i++) {
		struct slock *l = &S.locks[i];
		if (!l->waiting && s_same_file(l, q) && !s_same_owner(l, q) &&
		    s_overlap(l, q->start, q->len) && (l->excl || q->excl))
			return l;
	}
	return NULL;
}

static void s_blob(struct cl_blob *b, const sgn_netobj *o)
{
	b->len = o->sgn_netobj_len;
	memcpy(b->val, o->sgn_netobj_val, b->len);
}

static void s_from4(struct slock *q, const nlm4_lock *l, bool excl, const struct rpc_req *req)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->caller, sizeof(q->caller), "%s", l->caller_name);
	q->svid = (uint32_t)l->svid;
	s_blob(&q->oh, &l->oh);
	s_blob(&q->fh, &l->fh);
	q->start = l->l_offset;
	q->len = l->l_len;
	q->excl = excl;
	memcpy(&q->client, &req->peer, sizeof(q->client));
}

static void s_from1(struct slock *q, const sgn_nlm_lock *l, bool excl, const struct rpc_req *req)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->caller, sizeof(q->caller), "%s", l->caller_name);
	q->svid = (uint32_t)l->svid;
	s_blob(&q->oh, &l->oh);
	s_blob(&q->fh, &l->fh);
	q->start = l->l_offset;
	q->len = l->l_len;
	q->excl = excl;
	memcpy(&q->client, &req->peer, sizeof(q->client));
}

static void s_cookie(sgn_netobj *dst, const sgn_netobj *src)
{
	dst->sgn_netobj_len = src->sgn_netobj_len;
	dst->sgn_netobj_val = malloc(src->sgn_netobj_len + 1);
	memcpy(dst->sgn_netobj_val, src->sgn_netobj_val, src->sgn_netobj_len);
}

/* An outgoing handle to a client's NLM (or NSM) service, sent from the VIP. */
static struct rpcc_clnt *s_out(const struct sockaddr_in *client, uint32_t prog, uint16_t port)
{
	struct sockaddr_in to = *client, vip;
	struct rpcc_opts o = { 0 };
	size_t i;

	to.sin_port = htons(port);
	for (i = 0; i < S.nout; i++)
		if (S.out_addr[i].sin_addr.s_addr == to.sin_addr.s_addr &&
		    S.out_addr[i].sin_port == to.sin_port)
			return S.out[i];
	assert_true(S.nout < 8);
	uv_ip4_addr(VIP, 0, &vip);
	o.server = (struct sockaddr *)&to;
	o.local = (struct sockaddr *)&vip;
	o.prog = prog;
	o.vers = prog == NLM_PROG ? NLM4_VERS : NSM_VERS;
	o.transport = RPCC_UDP;
	o.timeout.total_ms = 2000;
	assert_int_equal(rpcc_new(S.loop, &o, &S.out[S.nout]), 0);
	S.out_addr[S.nout] = to;
	return S.out[S.nout++];
}

static void s_granted_reply(const struct rpcc_reply *rep, void *arg)
{
	struct slock *granted = arg;

	if (rep->err == 0 && ((nlm4_res *)rep->res)->stat.stat == NLM4_GRANTED) {
		S.granted_ok++;
	} else {
		/* the client did not want it: the lock goes away */
		S.granted_denied++;
		for (size_t i = 0; i < S.n; i++)
			if (&S.locks[i] == granted) {
				S.locks[i] = S.locks[--S.n];
				break;
			}
	}
}

/* Send GRANTED for lock @l (already in the table) to its client. */
static void s_send_granted(struct slock *l)
{
	nlm4_testargs a;
	char ck[] = "srvcookie";

	memset(&a, 0, sizeof(a));
	a.cookie.sgn_netobj_len = sizeof(ck) - 1;
	a.cookie.sgn_netobj_val = ck;
	a.exclusive = l->excl;
	a.alock.caller_name = l->caller;
	a.alock.fh.sgn_netobj_len = l->fh.len;
	a.alock.fh.sgn_netobj_val = (char *)l->fh.val;
	a.alock.oh.sgn_netobj_len = l->oh.len;
	a.alock.oh.sgn_netobj_val = (char *)l->oh.val;
	a.alock.svid = (int)l->svid;
	a.alock.l_offset = l->start;
	a.alock.l_len = l->len;
	S.granted_sent++;
	assert_int_equal(rpcc_call(s_out(&l->client, NLM_PROG, P_NLM), NLMPROC_GRANTED,
				   (xdrproc_t)xdr_nlm4_testargs, &a, (xdrproc_t)xdr_nlm4_res,
				   sizeof(nlm4_res), NULL, s_granted_reply, l), 0);
}

static void s_wake(void)
{
	for (size_t i = 0; i < S.n; i++) {
		struct slock *w = &S.locks[i];
		if (w->waiting && !s_conflict(w)) {
			w->waiting = false;
			s_send_granted(w);
		}
	}
}

static int s_do_lock(struct slock *q, bool block, bool reclaim)
{
	struct slock *c;

	S.lock_calls++;
	if (S.deny_every && S.lock_calls % S.deny_every == 0) {
		S.denied_sent++;
		return NLM4_DENIED;
	}
	if (reclaim) {
		S.reclaims++;
		if (S.grace_left > 0) {
			S.grace_left--;
			return NLM4_DENIED_GRACE_PERIOD;
		}
		if (q->svid == S.refuse_reclaim_svid)
			return NLM4_DENIED;
	} else if (S.grace) {
		return NLM4_DENIED_GRACE_PERIOD;
	}
	c = s_conflict(q);
	if (c && !block)
		return NLM4_DENIED;
	for (size_t i = 0; i < S.n; i++) /* a retransmitted blocked request */
		if (S.locks[i].waiting && s_same_owner(&S.locks[i], q) &&
		    s_same_file(&S.locks[i], q) && S.locks[i].start == q->start)
			return NLM4_BLOCKED;
	assert_true(S.n < 512);
	S.locks[S.n] = *q;
	S.locks[S.n].waiting = c != NULL;
	S.n++;
	if (!c)
		S.lock_granted++;
	return c ? NLM4_BLOCKED : NLM4_GRANTED;
}

static int s_do_unlock(const struct slock *q)
{
	for (size_t i = 0; i < S.n;) {
		struct slock *l = &S.locks[i];
		if (!l->waiting && s_same_owner(l, q) && s_same_file(l, q) &&
		    s_overlap(l, q->start, q->len))
			*l = S.locks[--S.n];
		else
			i++;
	}
	s_wake();
	return NLM4_GRANTED;
}

static int s_do_test(const struct slock *q, struct slock *holder)
{
	struct slock *c = S.grace ? NULL : s_conflict(q);

	if (S.grace)
		return NLM4_DENIED_GRACE_PERIOD;
	if (!c)
		return NLM4_GRANTED;
	*holder = *c;
	return NLM4_DENIED;
}

static enum rpc_disposition s_null(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

static enum rpc_disposition s_lock(struct rpc_req *req)
{
	struct slock q;
	int st;

	if (req->vers == NLM4_VERS) {
		const nlm4_lockargs *a = req->args;
		nlm4_res *r = req->res;
		s_from4(&q, &a->alock, a->exclusive, req);
		st = s_do_lock(&q, a->block, a->reclaim);
		s_cookie(&r->cookie, &a->cookie);
		r->stat.stat = (nlm4_stats)st;
	} else {
		const sgn_nlm_lockargs *a = req->args;
		sgn_nlm_res *r = req->res;
		s_from1(&q, &a->alock, a->exclusive, req);
		st = s_do_lock(&q, a->block, a->reclaim);
		s_cookie(&r->cookie, &a->cookie);
		r->stat.stat = (sgn_nlm_stats)st;
	}
	return RPC_DONE_REPLY;
}

static enum rpc_disposition s_unlock(struct rpc_req *req)
{
	struct slock q;

	S.unlock_calls++;
	if (S.syserr_every && S.unlock_calls % S.syserr_every == 0) {
		S.syserr_sent++;
		return RPC_DONE_SYSERR; /* nothing unlocked */
	}
	S.unlock_ok++;

	if (req->vers == NLM4_VERS) {
		const nlm4_unlockargs *a = req->args;
		nlm4_res *r = req->res;
		s_from4(&q, &a->alock, false, req);
		r->stat.stat = (nlm4_stats)s_do_unlock(&q);
		s_cookie(&r->cookie, &a->cookie);
	} else {
		const sgn_nlm_unlockargs *a = req->args;
		sgn_nlm_res *r = req->res;
		s_from1(&q, &a->alock, false, req);
		r->stat.stat = (sgn_nlm_stats)s_do_unlock(&q);
		s_cookie(&r->cookie, &a->cookie);
	}
	return RPC_DONE_REPLY;
}

static enum rpc_disposition s_cancel(struct rpc_req *req)
{
	const nlm4_cancargs *a = req->args;
	nlm4_res *r = req->res;
	struct slock q;

	s_from4(&q, &a->alock, a->exclusive, req);
	for (size_t i = 0; i < S.n; i++)
		if (S.locks[i].waiting && s_same_owner(&S.locks[i], &q)) {
			S.locks[i] = S.locks[--S.n];
			break;
		}
	s_cookie(&r->cookie, &a->cookie);
	r->stat.stat = NLM4_GRANTED;
	return RPC_DONE_REPLY;
}

static void s_fill_holder4(nlm4_testres *r, int st, const struct slock *h)
{
	r->test_stat.stat = (nlm4_stats)st;
	if (st == NLM4_DENIED) {
		nlm4_holder *ho = &r->test_stat.nlm4_testrply_u.holder;
		ho->exclusive = h->excl;
		ho->svid = (int)h->svid;
		ho->oh.sgn_netobj_len = h->oh.len;
		ho->oh.sgn_netobj_val = malloc(h->oh.len + 1);
		memcpy(ho->oh.sgn_netobj_val, h->oh.val, h->oh.len);
		ho->l_offset = h->start;
		ho->l_len = h->len;
	}
}

static enum rpc_disposition s_test(struct rpc_req *req)
{
	struct slock q, holder;
	int st;

	if (req->vers == NLM4_VERS) {
		const nlm4_testargs *a = req->args;
		nlm4_testres *r = req->res;
		s_from4(&q, &a->alock, a->exclusive, req);
		st = s_do_test(&q, &holder);
		s_cookie(&r->cookie, &a->cookie);
		s_fill_holder4(r, st, &holder);
	} else {
		const sgn_nlm_testargs *a = req->args;
		sgn_nlm_testres *r = req->res;
		s_from1(&q, &a->alock, a->exclusive, req);
		st = s_do_test(&q, &holder);
		s_cookie(&r->cookie, &a->cookie);
		r->test_stat.stat = (sgn_nlm_stats)st;
		if (st == NLM4_DENIED) {
			sgn_nlm_holder *ho = &r->test_stat.sgn_nlm_testrply_u.holder;
			ho->exclusive = holder.excl;
			ho->svid = (int)holder.svid;
			ho->oh.sgn_netobj_len = holder.oh.len;
			ho->oh.sgn_netobj_val = malloc(holder.oh.len + 1);
			memcpy(ho->oh.sgn_netobj_val, holder.oh.val, holder.oh.len);
			ho->l_offset = (u_int)holder.start;
			ho->l_len = (u_int)holder.len;
		}
	}
	return RPC_DONE_REPLY;
}

/* _MSG: do the work, answer with a _RES call to the client's NLM service. */
static enum rpc_disposition s_lock_msg(struct rpc_req *req)
{
	const nlm4_lockargs *a = req->args;
	struct slock q;
	nlm4_res r;

	s_from4(&q, &a->alock, a->exclusive, req);
	r.cookie = a->cookie;
	r.stat.stat = (nlm4_stats)s_do_lock(&q, a->block, a->reclaim);
	S.res_sent++;
	assert_int_equal(rpcc_send(s_out(&q.client, NLM_PROG, P_NLM), NLMPROC_LOCK_RES,
				   (xdrproc_t)xdr_nlm4_res, &r), 0);
	return RPC_DONE_NOREPLY;
}

static enum rpc_disposition s_unlock_msg(struct rpc_req *req)
{
	const nlm4_unlockargs *a = req->args;
	struct slock q;
	nlm4_res r;

	S.unlock_calls++;
	S.unlock_ok++;
	s_from4(&q, &a->alock, false, req);
	r.cookie = a->cookie;
	r.stat.stat = (nlm4_stats)s_do_unlock(&q);
	S.res_sent++;
	assert_int_equal(rpcc_send(s_out(&q.client, NLM_PROG, P_NLM), NLMPROC_UNLOCK_RES,
				   (xdrproc_t)xdr_nlm4_res, &r), 0);
	return RPC_DONE_NOREPLY;
}

static enum rpc_disposition s_test_msg(struct rpc_req *req)
{
	const nlm4_testargs *a = req->args;
	struct slock q, holder;
	nlm4_testres r;

	memset(&r, 0, sizeof(r));
	s_from4(&q, &a->alock, a->exclusive, req);
	r.cookie = a->cookie;
	s_fill_holder4(&r, s_do_test(&q, &holder), &holder);
	S.res_sent++;
	assert_int_equal(rpcc_send(s_out(&q.client, NLM_PROG, P_NLM), NLMPROC_TEST_RES,
				   (xdrproc_t)xdr_nlm4_testres, &r), 0);
	if (r.test_stat.stat == NLM4_DENIED)
		free(r.test_stat.nlm4_testrply_u.holder.oh.sgn_netobj_val);
	return RPC_DONE_NOREPLY;
}

static enum rpc_disposition s_share(struct rpc_req *req)
{
	const nlm4_shareargs *a = req->args;
	nlm4_shareres *r = req->res;

	s_cookie(&r->cookie, &a->cookie);
	r->stat = S.grace && !a->reclaim ? NLM4_DENIED_GRACE_PERIOD : NLM4_GRANTED;
	r->sequence = 7;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition s_free_all(struct rpc_req *req)
{
	const nlm4_notify *a = req->args;

	for (size_t i = 0; i < S.n;) {
		if (!strcmp(S.locks[i].caller, a->name))
			S.locks[i] = S.locks[--S.n];
		else
			i++;
	}
	return RPC_DONE_REPLY;
}

#define SP(...) SP_(__VA_ARGS__)
#define SP_(N, f, at, ax, rt, rx) [N] = { .name = #N, .fn = f, .xdr_args = (xdrproc_t)ax, \
	.args_size = sizeof(at), .xdr_res = (xdrproc_t)rx, .res_size = sizeof(rt) }
#define SVOID char, rpc_xdr_void

static const struct rpc_proc s_nlm4_procs[] = {
	SP(NLMPROC_NULL, s_null, SVOID, SVOID),
	SP(NLMPROC_TEST, s_test, nlm4_testargs, xdr_nlm4_testargs, nlm4_testres, xdr_nlm4_testres),
	SP(NLMPROC_LOCK, s_lock, nlm4_lockargs, xdr_nlm4_lockargs, nlm4_res, xdr_nlm4_res),
	SP(NLMPROC_CANCEL, s_cancel, nlm4_cancargs, xdr_nlm4_cancargs, nlm4_res, xdr_nlm4_res),
	SP(NLMPROC_UNLOCK, s_unlock, nlm4_unlockargs, xdr_nlm4_unlockargs, nlm4_res, xdr_nlm4_res),
	SP(NLMPROC_TEST_MSG, s_test_msg, nlm4_testargs, xdr_nlm4_testargs, SVOID),
	SP(NLMPROC_LOCK_MSG, s_lock_msg, nlm4_lockargs, xdr_nlm4_lockargs, SVOID),
	SP(NLMPROC_UNLOCK_MSG, s_unlock_msg, nlm4_unlockargs, xdr_nlm4_unlockargs, SVOID),
	SP(NLMPROC_SHARE, s_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres,
	   xdr_nlm4_shareres),
	SP(NLMPROC_UNSHARE, s_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres,
	   xdr_nlm4_shareres),
	SP(NLMPROC_FREE_ALL, s_free_all, nlm4_notify, xdr_nlm4_notify, SVOID),
};
static const struct rpc_proc s_nlm3_procs[] = {
	SP(NLMPROC_NULL, s_null, SVOID, SVOID),
	SP(NLMPROC_TEST, s_test, sgn_nlm_testargs, xdr_sgn_nlm_testargs, sgn_nlm_testres,
	   xdr_sgn_nlm_testres),
	SP(NLMPROC_LOCK, s_lock, sgn_nlm_lockargs, xdr_sgn_nlm_lockargs, sgn_nlm_res,
	   xdr_sgn_nlm_res),
	SP(NLMPROC_UNLOCK, s_unlock, sgn_nlm_unlockargs, xdr_sgn_nlm_unlockargs, sgn_nlm_res,
	   xdr_sgn_nlm_res),
};
static const struct rpc_vers s_nlm3 = { .vers = 3, .procs = s_nlm3_procs,
	.nprocs = sizeof(s_nlm3_procs) / sizeof(s_nlm3_procs[0]) };
static const struct rpc_vers s_nlm4 = { .vers = 4, .procs = s_nlm4_procs,
	.nprocs = sizeof(s_nlm4_procs) / sizeof(s_nlm4_procs[0]) };
static const struct rpc_vers *const s_nlm_vers[] = { &s_nlm3, &s_nlm4 };
static const struct rpc_prog s_nlm_prog = { .name = "stub-nlm", .prog = NLM_PROG,
	.vers_lo = 3, .vers_hi = 4, .vers = s_nlm_vers };

static enum rpc_disposition s_sm_notify(struct rpc_req *req)
{
	const sgn_stat_chge *a = req->args;

	snprintf(S.notified_name, sizeof(S.notified_name), "%s", a->mon_name);
	S.notified_state = a->state;
	S.notifies++;
	return RPC_DONE_REPLY;
}

static const struct rpc_proc s_nsm_procs[] = {
	SP(NSMPROC_NULL, s_null, SVOID, SVOID),
	SP(NSMPROC_NOTIFY, s_sm_notify, sgn_stat_chge, xdr_sgn_stat_chge, SVOID),
};
static const struct rpc_vers s_nsm1 = { .vers = 1, .procs = s_nsm_procs,
	.nprocs = sizeof(s_nsm_procs) / sizeof(s_nsm_procs[0]) };
static const struct rpc_vers *const s_nsm_vers[] = { &s_nsm1 };
static const struct rpc_prog s_nsm_prog = { .name = "stub-nsm", .prog = NSM_PROG,
	.vers_lo = 1, .vers_hi = 1, .vers = s_nsm_vers };

/* MOUNT: only "/export"; NFS LOOKUP: ROOT/dir -> DIR1, DIR1/file -> FILE */
static enum rpc_disposition s_mnt(struct rpc_req *req)
{
	char *const *path = req->args;
	mnt3_mountres *r = req->res;

	if (strcmp(*path, "/export") != 0) {
		r->fhs_status = MNT3ERR_NOENT;
		return RPC_DONE_REPLY;
	}
	r->fhs_status = MNT3_OK;
	r->mnt3_mountres_u.mountinfo.fhandle.mnt3_fhandle_len = 4;
	r->mnt3_mountres_u.mountinfo.fhandle.mnt3_fhandle_val = strdup("ROOT");
	return RPC_DONE_REPLY;
}

static enum rpc_disposition s_lookup(struct rpc_req *req)
{
	const LOOKUP3args *a = req->args;
	LOOKUP3res *r = req->res;
	const char *dir = a->what.dir.data.data_val;
	const char *to = NULL;

	if (a->what.dir.data.data_len == 4 && !memcmp(dir, "ROOT", 4) && !strcmp(a->what.name, "dir"))
		to = "DIR1";
	if (a->what.dir.data.data_len == 4 && !memcmp(dir, "DIR1", 4) && !strcmp(a->what.name, "file"))
		to = "FILE";
	if (!to) {
		r->status = NFS3ERR_NOENT;
		return RPC_DONE_REPLY;
	}
	r->status = NFS3_OK;
	r->LOOKUP3res_u.resok.object.data.data_len = 4;
	r->LOOKUP3res_u.resok.object.data.data_val = strdup(to);
	return RPC_DONE_REPLY;
}

static const struct rpc_proc s_mnt_procs[] = {
	SP(MOUNTPROC3_NULL, s_null, SVOID, SVOID),
	SP(MOUNTPROC3_MNT, s_mnt, mnt3_dirpath, xdr_mnt3_dirpath, mnt3_mountres, xdr_mnt3_mountres),
};
static const struct rpc_vers s_mnt3 = { .vers = 3, .procs = s_mnt_procs,
	.nprocs = sizeof(s_mnt_procs) / sizeof(s_mnt_procs[0]) };
static const struct rpc_vers *const s_mnt_vers[] = { &s_mnt3 };
static const struct rpc_prog s_mnt_prog = { .name = "stub-mount", .prog = MNT3_PROGRAM,
	.vers_lo = 3, .vers_hi = 3, .vers = s_mnt_vers };

static const struct rpc_proc s_nfs_procs[] = {
	SP(NFSPROC3_NULL, s_null, SVOID, SVOID),
	[1] = { 0 }, [2] = { 0 },
	SP(NFSPROC3_LOOKUP, s_lookup, LOOKUP3args, xdr_LOOKUP3args, LOOKUP3res, xdr_LOOKUP3res),
};
static const struct rpc_vers s_nfs3 = { .vers = 3, .procs = s_nfs_procs,
	.nprocs = sizeof(s_nfs_procs) / sizeof(s_nfs_procs[0]) };
static const struct rpc_vers *const s_nfs_vers[] = { &s_nfs3 };
static const struct rpc_prog s_nfs_prog = { .name = "stub-nfs", .prog = NFS3_PROGRAM,
	.vers_lo = 3, .vers_hi = 3, .vers = s_nfs_vers };

static void stub_start(uv_loop_t *loop)
{
	struct rpc_limits lim = { .max_record = 1 << 20, .max_conns = 64, .idle_timeout_ms = 0 };
	const uint16_t ports[4] = { P_PMAP, P_NLM, P_NSM, P_NFS };

	memset(&S, 0, sizeof(S));
	S.loop = loop;
	assert_int_equal(rpc_svc_new(loop, &lim, &S.svc), 0);
	assert_int_equal(rpc_svc_register(S.svc, &pmap_prog), 0);
	assert_int_equal(rpc_svc_register(S.svc, &s_nlm_prog), 0);
	assert_int_equal(rpc_svc_register(S.svc, &s_nsm_prog), 0);
	assert_int_equal(rpc_svc_register(S.svc, &s_mnt_prog), 0);
	assert_int_equal(rpc_svc_register(S.svc, &s_nfs_prog), 0);
	/* one process-wide table: the same ports serve the stub on the VIP
	 * and the client hosts on theirs */
	pmap_table_set(NLM_PROG, 3, PMAP_IPPROTO_UDP, P_NLM);
	pmap_table_set(NLM_PROG, 3, PMAP_IPPROTO_TCP, P_NLM);
	pmap_table_set(NLM_PROG, 4, PMAP_IPPROTO_UDP, P_NLM);
	pmap_table_set(NLM_PROG, 4, PMAP_IPPROTO_TCP, P_NLM);
	pmap_table_set(NSM_PROG, 1, PMAP_IPPROTO_UDP, P_NSM);
	pmap_table_set(MNT3_PROGRAM, 3, PMAP_IPPROTO_UDP, P_NFS);
	pmap_table_set(MNT3_PROGRAM, 3, PMAP_IPPROTO_TCP, P_NFS);
	pmap_table_set(NFS3_PROGRAM, 3, PMAP_IPPROTO_UDP, P_NFS);
	pmap_table_set(NFS3_PROGRAM, 3, PMAP_IPPROTO_TCP, P_NFS);
	for (int i = 0; i < 4; i++) {
		struct sockaddr_in a;
		uv_ip4_addr(VIP, ports[i], &a);
		assert_int_equal(rpc_listen(S.svc, (struct sockaddr *)&a,
					    RPC_LISTEN_TCP | RPC_LISTEN_UDP, NULL, &S.lsn[i]), 0);
	}
}

static void stub_stop(void)
{
	for (size_t i = 0; i < S.nout; i++)
		rpcc_close(S.out[i]);
	for (int i = 0; i < 4; i++)
		rpc_listener_close(S.lsn[i]);
}

/* The server "restarted": locks gone, grace on, SM_NOTIFY to @client. */
static void s_notify_reply(const struct rpcc_reply *rep, void *arg)
{
	assert_int_equal(rep->err, 0);
}

static void stub_restart_and_notify(const char *client, int state)
{
	struct sockaddr_in c;
	sgn_stat_chge sc = { .mon_name = VIP, .state = state };

	S.n = 0;
	S.grace = true;
	uv_ip4_addr(client, 0, &c);
	assert_int_equal(rpcc_call(s_out(&c, NSM_PROG, P_NSM), NSMPROC_NOTIFY,
				   (xdrproc_t)xdr_sgn_stat_chge, &sc, NULL, 0, NULL,
				   s_notify_reply, NULL), 0);
}

/* ---- harness -------------------------------------------------------------------- */

struct res {
	bool done;
	struct cl_result r;
};

static void on_done(const struct cl_result *r, void *arg)
{
	struct res *x = arg;

	x->done = true;
	x->r = *r;
}

static void guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, unsigned ms)
{
	uv_timer_t guard;
	bool fired = false;

	uv_timer_init(loop, &guard);
	guard.data = &fired;
	uv_timer_start(&guard, guard_cb, ms, 0);
	while (!pred(arg) && !fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return pred(arg);
}

/* @arg is the flag itself (a result's .done or a plain bool), never the
 * struct around it: several result structs are used, and reading one
 * through another's type is what gcc -O3's array-bounds check refused. */
static bool is_done(void *arg)
{
	return *(const bool *)arg;
}

static void wait_done(uv_loop_t *loop, struct res *x)
{
	assert_true(run_until(loop, is_done, &x->done, 5000));
}

struct env {
	uv_loop_t loop;
	struct cl_ctx *ctx;
	struct cl_host *a, *b;
	struct cl_server *sa, *sb;
	FILE *events;
	char *evbuf;
	size_t evlen;
};

static void env_up(struct env *e, bool callbacks, uint32_t vers, bool use_msg,
		   enum rpcc_transport proto)
{
	struct cl_config cfg = { 0 };
	struct sockaddr_in ha, hb, vip;

	memset(e, 0, sizeof(*e));
	uv_loop_init(&e->loop);
	stub_start(&e->loop);
	e->events = open_memstream(&e->evbuf, &e->evlen);
	cfg.pmap_port = P_PMAP;
	cfg.proto = proto;
	cfg.nlm_vers = vers;
	cfg.use_msg = use_msg;
	cfg.timeout.total_ms = 3000;
	cfg.callbacks = callbacks;
	cfg.cb_pmap_port = P_PMAP;
	cfg.cb_nlm_port = P_NLM;
	cfg.cb_nsm_port = P_NSM;
	cfg.poll_ms = 60000;
	cfg.reclaim_ms = 5000;
	cfg.events = e->events;
	assert_int_equal(cl_ctx_new(&e->loop, &cfg, &e->ctx), 0);
	uv_ip4_addr(HOST_A, 0, &ha);
	uv_ip4_addr(HOST_B, 0, &hb);
	uv_ip4_addr(VIP, 0, &vip);
	assert_int_equal(cl_host_add(e->ctx, &ha, "host-a", &e->a), 0);
	assert_int_equal(cl_host_add(e->ctx, &hb, NULL, &e->b), 0);
	assert_int_equal(cl_server_get(e->a, &vip, &e->sa), 0);
	assert_int_equal(cl_server_get(e->b, &vip, &e->sb), 0);
}

static void env_down(struct env *e)
{
	cl_ctx_close(e->ctx);
	stub_stop();
	uv_run(&e->loop, UV_RUN_DEFAULT);
	rpc_svc_free(S.svc);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	fclose(e->events);
	free(e->evbuf);
	pmap_table_clear();
}

static bool events_have(struct env *e, const char *what)
{
	fflush(e->events);
	return e->evbuf && strstr(e->evbuf, what) != NULL;
}

static struct cl_lockreq mkreq(uint32_t svid, uint64_t start, uint64_t len, bool excl)
{
	struct cl_lockreq rq;

	memset(&rq, 0, sizeof(rq));
	snprintf(rq.file.path, sizeof(rq.file.path), "fh:46494c45");
	memcpy(rq.file.fh.val, "FILE", 4);
	rq.file.fh.len = 4;
	rq.svid = svid;
	rq.start = start;
	rq.len = len;
	rq.exclusive = excl;
	return rq;
}

static size_t nlocks(const struct cl_host *h)
{
	size_t n = 0;

	for (const struct cl_lock *lk = cl_host_locks(h); lk; lk = lk->next)
		n++;
	return n;
}

static void do_op(struct env *e, int (*fn)(struct cl_server *, const struct cl_lockreq *,
					   cl_done_fn, void *),
		  struct cl_server *s, const struct cl_lockreq *rq, struct res *x)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(fn(s, rq, on_done, x), 0);
	assert_false(x->done); /* never completes inside the call */
	wait_done(&e->loop, x);
}

/* ---- tests ------------------------------------------------------------------------- */

static int call_free_all(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn d, void *a)
{
	return cl_free_all(s, d, a);
}


static void test_lock_test_unlock(void **state)
{
	for (int t = 0; t < 2; t++) {
		struct env e;
		struct res x;
		struct cl_lockreq a = mkreq(100, 0, 10, true), b = mkreq(200, 5, 10, true);
		char expect_oh[64];

		env_up(&e, false, 4, false, t ? RPCC_UDP : RPCC_TCP);
		do_op(&e, cl_lock, e.sa, &a, &x);
		assert_int_equal(x.r.err, 0);
		assert_int_equal(x.r.stat, NLM4_GRANTED);
		assert_int_equal(nlocks(e.a), 1);
		/* the server saw a kernel-lockd owner: caller_name, svid, "svid@name" */
		assert_string_equal(S.locks[0].caller, "host-a");
		assert_int_equal(S.locks[0].svid, 100);
		snprintf(expect_oh, sizeof(expect_oh), "100@host-a");
		assert_int_equal(S.locks[0].oh.len, strlen(expect_oh));
		assert_memory_equal(S.locks[0].oh.val, expect_oh, strlen(expect_oh));

		do_op(&e, cl_test, e.sb, &b, &x);
		assert_int_equal(x.r.stat, NLM4_DENIED);
		assert_true(x.r.has_holder);
		assert_int_equal(x.r.holder_svid, 100);
		assert_true(x.r.holder_excl);
		assert_int_equal(x.r.holder_start, 0);
		assert_int_equal(x.r.holder_len, 10);
		assert_int_equal(cl_result_exit(&x.r), CL_EXIT_DENIED);

		do_op(&e, cl_lock, e.sb, &b, &x);
		assert_int_equal(x.r.stat, NLM4_DENIED);
		assert_int_equal(nlocks(e.b), 0);

		do_op(&e, cl_unlock, e.sa, &a, &x);
		assert_int_equal(x.r.stat, NLM4_GRANTED);
		assert_int_equal(nlocks(e.a), 0);
		do_op(&e, cl_lock, e.sb, &b, &x);
		assert_int_equal(x.r.stat, NLM4_GRANTED);
		assert_int_equal(nlocks(e.b), 1);

		do_op(&e, call_free_all, e.sb, NULL, &x);
		assert_int_equal(S.n, 0);
		assert_int_equal(nlocks(e.b), 0);
		env_down(&e);
	}
}

static void test_blocking_lock_granted_callback(void **state)
{
	struct env e;
	struct res xa, xb;
	struct cl_lockreq a = mkreq(1, 0, 0, true), b = mkreq(2, 100, 1, true);

	env_up(&e, true, 4, false, RPCC_TCP);
	do_op(&e, cl_lock, e.sa, &a, &xa);
	assert_int_equal(xa.r.stat, NLM4_GRANTED);

	b.block = true;
	memset(&xb, 0, sizeof(xb));
	assert_int_equal(cl_lock(e.sb, &b, on_done, &xb), 0);
	/* BLOCKED: the request waits */
	{
		bool never = false;
		run_until(&e.loop, is_done, &never, 300);
	}
	assert_false(xb.done);
	assert_int_equal(cl_host_pending(e.b), 1);
	assert_true(events_have(&e, "event=blocked"));

	/* release: the stub sends GRANTED to host b's NLM service */
	do_op(&e, cl_unlock, e.sa, &a, &xa);
	wait_done(&e.loop, &xb);
	assert_int_equal(xb.r.err, 0);
	assert_int_equal(xb.r.stat, NLM4_GRANTED);
	assert_int_equal(nlocks(e.b), 1);
	assert_int_equal(cl_host_pending(e.b), 0);
	assert_int_equal(S.granted_sent, 1);
	/* the callback answer reached the stub */
	for (int i = 0; i < 50 && S.granted_ok == 0; i++) {
		bool never = false;
		run_until(&e.loop, is_done, &never, 20);
	}
	assert_int_equal(S.granted_ok, 1);
	assert_true(events_have(&e, "event=granted-callback"));
	env_down(&e);
}

static void test_unwanted_granted_is_denied(void **state)
{
	struct env e;
	struct slock *l;

	env_up(&e, true, 4, false, RPCC_UDP);
	/* a lock the host never asked for, granted out of the blue */
	l = &S.locks[S.n++];
	memset(l, 0, sizeof(*l));
	snprintf(l->caller, sizeof(l->caller), "%s", HOST_B);
	l->svid = 77;
	l->fh.len = 4;
	memcpy(l->fh.val, "FILE", 4);
	l->len = 1;
	l->excl = true;
	uv_ip4_addr(HOST_B, 0, &l->client);
	s_send_granted(l);
	for (int i = 0; i < 100 && S.granted_denied == 0; i++) {
		bool never = false;
		run_until(&e.loop, is_done, &never, 20);
	}
	assert_int_equal(S.granted_denied, 1);
	assert_int_equal(S.n, 0); /* the stub dropped it */
	assert_true(events_have(&e, "event=granted-unwanted"));
	env_down(&e);
}

static void test_msg_res_forms(void **state)
{
	struct env e;
	struct res x;
	struct cl_lockreq a = mkreq(1, 0, 10, true), b = mkreq(2, 0, 10, false);

	env_up(&e, true, 4, true, RPCC_UDP);
	do_op(&e, cl_lock, e.sa, &a, &x);
	assert_int_equal(x.r.err, 0);
	assert_int_equal(x.r.stat, NLM4_GRANTED);
	assert_int_equal(nlocks(e.a), 1);
	do_op(&e, cl_test, e.sb, &b, &x);
	assert_int_equal(x.r.stat, NLM4_DENIED);
	assert_true(x.r.has_holder);
	assert_int_equal(x.r.holder_svid, 1);
	assert_int_equal(S.res_sent, 2);
	env_down(&e);
}

static void test_reclaim_after_notify(void **state)
{
	struct env e;
	struct res x;
	struct cl_lockreq l1 = mkreq(1, 0, 10, true), l2 = mkreq(1, 100, 10, false),
			  l3 = mkreq(3, 200, 0, true), fresh = mkreq(9, 5000, 1, true);
	bool done_ok;

	env_up(&e, true, 4, false, RPCC_TCP);
	do_op(&e, cl_lock, e.sa, &l1, &x);
	do_op(&e, cl_lock, e.sa, &l2, &x);
	do_op(&e, cl_lock, e.sa, &l3, &x);
	assert_int_equal(S.n, 3);
	assert_int_equal(nlocks(e.a), 3);

	/* the server restarts: table empty, grace, the first two reclaims
	 * answered GRACE (not ready yet), svid 3's reclaim refused */
	S.grace_left = 2;
	S.refuse_reclaim_svid = 3;
	stub_restart_and_notify(HOST_A, 5);
	for (int i = 0; i < 200; i++) {
		bool never = false;
		if (events_have(&e, "event=reclaim-done"))
			break;
		run_until(&e.loop, is_done, &never, 20);
	}
	done_ok = events_have(&e, "event=reclaim-done");
	assert_true(done_ok);
	{
		char want[96];

		/* the call's XID sits between (a retransmission repeats it) */
		snprintf(want, sizeof(want), "event=notify from=%s xid=", VIP);
		assert_true(events_have(&e, want));
		snprintf(want, sizeof(want), " mon_name=%s state=5", VIP);
		assert_true(events_have(&e, want));
	}
	assert_int_equal(S.n, 2);               /* l1 and l2 back */
	assert_int_equal(nlocks(e.a), 2);       /* l3 lost */
	assert_true(events_have(&e, "event=lost"));
	for (const struct cl_lock *lk = cl_host_locks(e.a); lk; lk = lk->next) {
		assert_int_equal(lk->reclaimed, 1);
		assert_int_equal(lk->state, CL_HELD);
	}
	assert_true(S.reclaims >= 5);           /* 2 GRACE retries + 3 */

	/* new locks are refused during grace: exit code 2 */
	do_op(&e, cl_lock, e.sb, &fresh, &x);
	assert_int_equal(x.r.stat, NLM4_DENIED_GRACE_PERIOD);
	assert_int_equal(cl_result_exit(&x.r), CL_EXIT_GRACE);

	/* a duplicate notify (same state) starts nothing */
	{
		unsigned before = S.reclaims;
		stub_restart_and_notify(HOST_A, 5);
		for (int i = 0; i < 20; i++) {
			bool never = false;
			run_until(&e.loop, is_done, &never, 10);
		}
		assert_int_equal(S.reclaims, before);
		assert_true(events_have(&e, "event=notify-duplicate"));
	}
	env_down(&e);
}

static void test_nlm_v3_and_overflow(void **state)
{
	struct env e;
	struct res x;
	struct cl_lockreq a = mkreq(1, 10, 20, true), b = mkreq(2, 15, 1, true),
			  big = mkreq(1, 1ull << 33, 10, true);

	env_up(&e, false, 3, false, RPCC_UDP);
	do_op(&e, cl_lock, e.sa, &a, &x);
	assert_int_equal(x.r.stat, NLM4_GRANTED);
	do_op(&e, cl_test, e.sb, &b, &x);
	assert_int_equal(x.r.stat, NLM4_DENIED);
	assert_int_equal(x.r.holder_start, 10);
	assert_int_equal(x.r.holder_len, 20);
	/* a v3 client cannot say offsets above 4 GiB: refused, not truncated */
	assert_int_equal(cl_lock(e.sa, &big, on_done, &x), -EOVERFLOW);
	assert_int_equal(cl_host_pending(e.a), 0);
	env_down(&e);
}

static void test_reboot_sends_sm_notify(void **state)
{
	struct env e;
	struct res x;
	struct cl_lockreq a = mkreq(1, 0, 1, true);
	int32_t before;

	env_up(&e, false, 4, false, RPCC_TCP);
	do_op(&e, cl_lock, e.sa, &a, &x);
	before = cl_host_state(e.a);
	assert_true(before & 1);
	assert_int_equal(cl_host_reboot(e.a, NULL, NULL), 0);
	assert_int_equal(nlocks(e.a), 0);
	for (int i = 0; i < 200 && S.notifies == 0; i++) {
		bool never = false;
		run_until(&e.loop, is_done, &never, 10);
	}
	assert_int_equal(S.notifies, 1);
	assert_string_equal(S.notified_name, "host-a");
	assert_int_equal(S.notified_state, cl_host_state(e.a));
	assert_true(cl_host_state(e.a) > before && (cl_host_state(e.a) & 1));
	env_down(&e);
}

static void test_share_and_record_json(void **state)
{
	struct env e;
	struct res x;
	struct cl_lockreq s = mkreq(4, 0, 0, false);
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	env_up(&e, false, 4, false, RPCC_TCP);
	s.mode = FSM4_DW;
	s.access = FSA4_RW;
	do_op(&e, cl_share, e.sa, &s, &x);
	assert_int_equal(x.r.stat, NLM4_GRANTED);
	assert_int_equal(x.r.sequence, 7);
	f = open_memstream(&buf, &len);
	cl_record_json(e.ctx, f);
	fclose(f);
	assert_non_null(strstr(buf, "\"type\":\"share\",\"mode\":2,\"access\":3"));
	assert_non_null(strstr(buf, "\"name\":\"host-a\""));
	free(buf);
	do_op(&e, cl_unshare, e.sa, &s, &x);
	assert_int_equal(nlocks(e.a), 0);
	env_down(&e);
}

static void on_file(int err, const struct cl_file *f, void *arg)
{
	struct res *x = arg;

	x->done = true;
	x->r.err = err;
	if (!err)
		x->r.holder_oh = f->fh; /* borrow a blob field to carry the handle */
}

static void test_resolve_mount_lookup(void **state)
{
	struct env e;
	struct res x = { 0 }, y = { 0 }, z = { 0 };

	env_up(&e, false, 4, false, RPCC_UDP);
	assert_int_equal(cl_resolve(e.sa, "/export/dir/file", on_file, &x), 0);
	assert_false(x.done);
	wait_done(&e.loop, &x);
	assert_int_equal(x.r.err, 0);
	assert_int_equal(x.r.holder_oh.len, 4);
	assert_memory_equal(x.r.holder_oh.val, "FILE", 4);
	/* cached: answered without the server, still asynchronously */
	assert_int_equal(cl_resolve(e.sa, "/export/dir/file", on_file, &y), 0);
	assert_false(y.done);
	wait_done(&e.loop, &y);
	assert_memory_equal(y.r.holder_oh.val, "FILE", 4);
	assert_int_equal(cl_resolve(e.sa, "/export/nope", on_file, &z), 0);
	wait_done(&e.loop, &z);
	assert_int_equal(z.r.err, -ENOENT);
	memset(&z, 0, sizeof(z));
	assert_int_equal(cl_resolve(e.sa, "/elsewhere/x", on_file, &z), 0);
	wait_done(&e.loop, &z);
	assert_int_equal(z.r.err, -ENOENT);
	env_down(&e);
}

static void on_port(int err, uint16_t port, void *arg)
{
	struct { bool done; int err; uint16_t port; } *g = arg;

	g->done = true;
	g->err = err;
	g->port = port;
}

static void test_host_portmapper_answers(void **state)
{
	struct env e;
	struct sockaddr_in h;
	struct {
		bool done;
		int err;
		uint16_t port;
	} g = { 0 };

	env_up(&e, true, 4, false, RPCC_TCP);
	uv_ip4_addr(HOST_B, P_PMAP, &h);
	assert_int_equal(rpcc_getport(&e.loop, (struct sockaddr *)&h, NULL, NSM_PROG, 1,
				      IPPROTO_UDP, NULL, on_port, &g, NULL), 0);
	assert_true(run_until(&e.loop, is_done, &g.done, 3000));
	assert_int_equal(g.err, 0);
	assert_int_equal(g.port, P_NSM);
	env_down(&e);
}

static void test_close_cancels_blocked(void **state)
{
	struct env e;
	struct res xa, xb;
	struct cl_lockreq a = mkreq(1, 0, 0, true), b = mkreq(2, 0, 0, true);

	env_up(&e, true, 4, false, RPCC_UDP);
	do_op(&e, cl_lock, e.sa, &a, &xa);
	b.block = true;
	memset(&xb, 0, sizeof(xb));
	assert_int_equal(cl_lock(e.sb, &b, on_done, &xb), 0);
	{
		bool never = false;
		run_until(&e.loop, is_done, &never, 200);
	}
	assert_false(xb.done);
	cl_ctx_close(e.ctx);
	assert_true(xb.done);
	assert_int_equal(xb.r.err, -ECANCELED);
	stub_stop();
	uv_run(&e.loop, UV_RUN_DEFAULT);
	rpc_svc_free(S.svc);
	assert_int_equal(uv_loop_close(&e.loop), 0);
	fclose(e.events);
	free(e.evbuf);
	pmap_table_clear();
}

static void test_blocked_wait_timeout_cancels(void **state)
{
	struct env e;
	struct res xa, xb;
	struct cl_lockreq a = mkreq(1, 0, 0, true), b = mkreq(2, 0, 0, true);

	env_up(&e, true, 4, false, RPCC_TCP);
	do_op(&e, cl_lock, e.sa, &a, &xa);
	b.block = true;
	b.wait_ms = 200;
	do_op(&e, cl_lock, e.sb, &b, &xb);
	assert_int_equal(xb.r.err, -ETIMEDOUT);
	/* the CANCEL reached the stub: no waiter left */
	for (int i = 0; i < 50 && S.n > 1; i++) {
		bool never = false;
		run_until(&e.loop, is_done, &never, 10);
	}
	assert_int_equal(S.n, 1);
	assert_true(events_have(&e, "event=wait-timeout"));
	env_down(&e);
}

/* ---- the record's range arithmetic (no server involved) ---------------------- */

static void test_record_ranges(void **state)
{
	struct env e;
	struct cl_lockreq rq;
	const struct cl_lock *lk;

	env_up(&e, false, 4, false, RPCC_TCP);
	/* [0,99] excl; unlock [40,59] -> [0,39] [60,99] */
	rq = mkreq(1, 0, 100, true);
	snprintf((char *)rq.oh.val, 16, "o");
	rq.oh.len = 1;
	cl_record_add(e.a, e.sa, &rq, &rq.oh);
	rq.start = 40;
	rq.len = 20;
	cl_record_remove(e.a, e.sa, &rq);
	assert_int_equal(nlocks(e.a), 2);
	for (lk = cl_host_locks(e.a); lk; lk = lk->next)
		assert_true((lk->start == 0 && lk->len == 40) || (lk->start == 60 && lk->len == 40));
	/* lock [40,59] again: adjacent same type merges back to [0,99] */
	cl_record_add(e.a, e.sa, &rq, &rq.oh);
	assert_int_equal(nlocks(e.a), 1);
	lk = cl_host_locks(e.a);
	assert_int_equal(lk->start, 0);
	assert_int_equal(lk->len, 100);
	/* downgrade the middle: excl [0,49] shared [50,59] excl [60,99] */
	rq.start = 50;
	rq.len = 10;
	rq.exclusive = false;
	cl_record_add(e.a, e.sa, &rq, &rq.oh);
	assert_int_equal(nlocks(e.a), 3);
	/* to EOF from 0: everything becomes one shared lock, len 0 */
	rq.start = 0;
	rq.len = 0;
	cl_record_add(e.a, e.sa, &rq, &rq.oh);
	assert_int_equal(nlocks(e.a), 1);
	lk = cl_host_locks(e.a);
	assert_int_equal(lk->len, 0);
	assert_false(lk->exclusive);
	/* the largest offset: unlock [UINT64_MAX, EOF] keeps [0, UINT64_MAX-1] */
	rq.start = UINT64_MAX;
	rq.len = 0;
	cl_record_remove(e.a, e.sa, &rq);
	lk = cl_host_locks(e.a);
	assert_int_equal(nlocks(e.a), 1);
	assert_int_equal(lk->start, 0);
	assert_int_equal(lk->len, UINT64_MAX);
	/* another owner's unlock touches nothing */
	rq.svid = 2;
	rq.start = 0;
	rq.len = 0;
	cl_record_remove(e.a, e.sa, &rq);
	assert_int_equal(nlocks(e.a), 1);
	env_down(&e);
}

/* ---- bench-lock and its slots ------------------------------------------------ */

/* The value of "key":N in bench-lock's JSON line. */
static unsigned long long json_num(const char *json, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(json, k);
	assert_non_null(p);
	return strtoull(p + strlen(k), NULL, 10);
}

struct bench_out {
	int rc;
	unsigned long long pairs, rpcs, denied, errors, p50, p99, max;
};

static void bench(struct env *e, unsigned depth, unsigned owners, uint64_t count,
		  struct bench_out *b)
{
	struct cl_bench_opts o = { .depth = depth, .owners = owners, .svid_base = 500,
				   .count = count, .tcp = true };
	struct cl_lockreq f = mkreq(0, 0, 0, true);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	uv_ip4_addr(VIP, 0, &o.server);
	b->rc = cl_bench_run(&e->loop, e->ctx, &o, &f.file, out, true);
	fclose(out);
	b->pairs = json_num(buf, "pairs");
	b->rpcs = json_num(buf, "rpcs");
	b->denied = json_num(buf, "denied");
	b->errors = json_num(buf, "errors");
	b->p50 = json_num(buf, "p50_us");
	b->p99 = json_num(buf, "p99_us");
	b->max = json_num(buf, "max_us");
	free(buf);
}

/*
 * bench-lock counts what the server did: N pairs reported are N LOCKs and N
 * UNLOCKs the stub granted (two hosts x depth 4, one slot per 8-byte range),
 * every lock is released at the end, and the hosts' records stay empty (a
 * slot keeps none).  A LOCK the server denies is counted as denied and is no
 * pair; an UNLOCK the server fails (RPC SYSTEM_ERR) is counted as an error
 * and sent again, so the lock is still released; the run then returns -EIO.
 */
static void test_bench_counts(void **state)
{
	struct env e;
	struct bench_out b;

	env_up(&e, false, 4, false, RPCC_TCP);
	bench(&e, 4, 2, 300, &b);
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.pairs, 300);
	assert_int_equal(b.rpcs, 600);
	assert_int_equal(b.denied, 0);
	assert_int_equal(b.errors, 0);
	assert_int_equal(S.lock_calls, 300);
	assert_int_equal(S.lock_granted, 300);
	assert_int_equal(S.unlock_ok, 300);
	assert_int_equal(S.n, 0);
	assert_true(b.p50 <= b.p99 && b.p99 <= b.max);
	assert_int_equal(nlocks(e.a), 0);
	assert_int_equal(nlocks(e.b), 0);

	S.lock_calls = S.lock_granted = S.unlock_calls = S.unlock_ok = 0;
	S.deny_every = 7;
	S.syserr_every = 5;
	bench(&e, 4, 2, 300, &b);
	assert_int_equal(b.rc, -EIO);
	assert_true(S.denied_sent > 0 && S.syserr_sent > 0);
	/* every pair begun ends as a pair or as a denied LOCK */
	assert_int_equal(b.pairs + b.denied, 300);
	assert_int_equal(b.denied, S.denied_sent);
	assert_int_equal(b.pairs, S.lock_granted);
	assert_int_equal(b.pairs, S.unlock_ok);
	assert_int_equal(b.errors, S.syserr_sent);
	assert_int_equal(b.rpcs, S.lock_calls + S.unlock_calls);
	assert_int_equal(S.n, 0);
	assert_int_equal(nlocks(e.a), 0);
	env_down(&e);
}

/*
 * The same over UDP with the _MSG forms: answers come back as _RES calls
 * (matched by cookie), so every slot call runs a timer, which the slot keeps
 * open from call to call and closes when it is freed (the loop ends empty).
 */
static void test_bench_msg_udp(void **state)
{
	struct env e;
	struct bench_out b;

	env_up(&e, true, 4, true, RPCC_UDP);
	bench(&e, 2, 1, 60, &b);
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.pairs, 60);
	assert_int_equal(S.lock_granted, 60);
	assert_int_equal(S.n, 0);
	assert_int_equal(S.res_sent, 120);
	env_down(&e);
}

/*
 * A slot: one call at a time (-EBUSY while one is pending), no blocking, no
 * record; its LOCK and UNLOCK reach the server with the owner handle a
 * cl_lock() would send, and a slot freed with a call pending completes it
 * with -ECANCELED.
 */
static void test_slot(void **state)
{
	struct env e;
	struct cl_lockreq rq = mkreq(77, 0, 10, true);
	struct cl_slot *sl;
	struct res x = { 0 }, y = { 0 };

	env_up(&e, false, 4, false, RPCC_TCP);
	rq.block = true;
	assert_int_equal(cl_slot_new(e.sa, &rq, &sl), -EINVAL);
	rq.block = false;
	assert_int_equal(cl_slot_new(e.sa, &rq, &sl), 0);
	assert_int_equal(cl_slot_call(sl, false, on_done, &x), 0);
	assert_int_equal(cl_slot_call(sl, true, on_done, &y), -EBUSY);
	assert_false(x.done);
	wait_done(&e.loop, &x);
	assert_int_equal(x.r.err, 0);
	assert_int_equal(x.r.stat, NLM4_GRANTED);
	assert_int_equal(S.n, 1);
	assert_int_equal(S.locks[0].oh.len, strlen("77@host-a"));
	assert_memory_equal(S.locks[0].oh.val, "77@host-a", S.locks[0].oh.len);
	assert_int_equal(nlocks(e.a), 0);
	{
		/* the UNLOCK, through the same block */
		memset(&x, 0, sizeof(x));
		assert_int_equal(cl_slot_call(sl, true, on_done, &x), 0);
		wait_done(&e.loop, &x);
		assert_int_equal(x.r.stat, NLM4_GRANTED);
		assert_int_equal(S.n, 0);
	}
	memset(&x, 0, sizeof(x));
	assert_int_equal(cl_slot_call(sl, false, on_done, &x), 0);
	cl_slot_free(sl);
	assert_true(x.done);
	assert_int_equal(x.r.err, -ECANCELED);
	env_down(&e);
}

int main(void)
{
	unsigned pid = (unsigned)getpid() & 0xffffu;

	snprintf(VIP, sizeof(VIP), "127.211.%u.%u", pid >> 8, (pid & 0xffu) | 1u);
	snprintf(HOST_A, sizeof(HOST_A), "127.212.%u.%u", pid >> 8, (pid & 0xffu) | 1u);
	snprintf(HOST_B, sizeof(HOST_B), "127.213.%u.%u", pid >> 8, (pid & 0xffu) | 1u);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_ranges),
		cmocka_unit_test(test_lock_test_unlock),
		cmocka_unit_test(test_blocking_lock_granted_callback),
		cmocka_unit_test(test_unwanted_granted_is_denied),
		cmocka_unit_test(test_msg_res_forms),
		cmocka_unit_test(test_reclaim_after_notify),
		cmocka_unit_test(test_nlm_v3_and_overflow),
		cmocka_unit_test(test_reboot_sends_sm_notify),
		cmocka_unit_test(test_share_and_record_json),
		cmocka_unit_test(test_resolve_mount_lookup),
		cmocka_unit_test(test_host_portmapper_answers),
		cmocka_unit_test(test_close_cancels_blocked),
		cmocka_unit_test(test_blocked_wait_timeout_cancels),
		cmocka_unit_test(test_bench_counts),
		cmocka_unit_test(test_bench_msg_udp),
		cmocka_unit_test(test_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
