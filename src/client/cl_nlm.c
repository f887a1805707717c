/*
 * cl_nlm.c - the NLM client of a simulated host: requests, blocked locks,
 * callbacks, and lock recovery after SM_NOTIFY.
 *
 * A request (struct cl_req) goes through these states:
 *
 *   WAIT_PORT --port known--> WAIT_REPLY --answer--> done
 *                             WAIT_RES (with _MSG: the answer is a _RES call)
 *                                 |
 *   LOCK answered BLOCKED ----> BLOCKED --GRANTED callback--> done
 *                                 |  re-poll every poll_ms (LOCK again)
 *                                 |  wait_ms over: CANCEL, done (-ETIMEDOUT)
 *   grace / unreachable while retrying --> BACKOFF --timer--> sent again
 *
 * Arguments are built in the v4 form and narrowed to v1/v3 (32-bit offsets)
 * only when encoding; results are widened back, so everything above the
 * encoder is version-free.  A v1/v3 range that does not fit 32 bits is
 * refused here with -EOVERFLOW rather than silently truncated.
 *
 * Recovery (kernel lockd's nlmclnt_recovery, per server rather than per
 * host): SM_NOTIFY naming a server starts a new reclaim round for it.  The
 * NLM port is looked up again (the group may now live on another node),
 * every record entry on that server is re-sent with reclaim = TRUE, and
 * requests still waiting for a GRANTED are re-sent.  A round superseded by a
 * newer SM_NOTIFY is abandoned.  Reclaims retry on DENIED_GRACE_PERIOD and
 * on transport errors with a short back-off (100 ms doubling to 1 s) until
 * reclaim_ms; any other answer means the lock is lost, and it leaves the
 * record.
 *
 * Slots (cl_slot_*, for bench-lock): a slot is a request block made once
 * for one fixed lock and used for every LOCK and UNLOCK of it.  A call resets
 * only what a call changes (state, cookie, start time) and links the block
 * into host->reqs like any request, so the state machine above (port
 * lookup, re-send on a new handle, _MSG timers, cancel at close) is the
 * same; its answer is widened into the slot's own result, nothing is copied
 * or allocated, and the record is not touched.  The slot holds one
 * reference of its own, so completion never frees it, and its timer (if a
 * _MSG call ever opened one) stays open until cl_slot_free().
 *
 * Re-entrancy: completing a request runs the caller's callback, which may
 * start or cancel others; loops over host->reqs therefore first collect
 * what they will touch (holding a reference on each), then act.
 */
#include "client/cl_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nlm.h"
#include "nsm.h"

static int cln_send(struct cl_req *r);
static void cln_failed(struct cl_req *r, int err);
static void cln_answer(struct cl_req *r, int stat, struct cl_result *res);

/* ---- reference counting and completion ---------------------------------- */

static void cln_put(struct cl_req *r)
{
	if (--r->refs == 0)
		free(r);
}

static void cln_timer_closed(uv_handle_t *h)
{
	cln_put(h->data);
}

static void cln_unlink(struct cl_req *r)
{
	struct cl_host *h = r->srv->host;

	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	h->nreqs--;
}

/* A finished request's timer: a slot's stays open for its next call. */
static void cln_timer_release(struct cl_req *r)
{
	if (!r->timer_open)
		return;
	uv_timer_stop(&r->timer);
	if (r->slot)
		return;
	uv_close((uv_handle_t *)&r->timer, cln_timer_closed);
}

/* Complete @r with @res (the caller's, filled in here: usec). */
static void cln_complete(struct cl_req *r, struct cl_result *res)
{
	if (r->done)
		return;
	r->done = true;
	cln_unlink(r);
	cln_timer_release(r);
	res->usec = (uv_hrtime() - r->t0) / 1000u;
	if (r->internal)
		r->internal(r, res);
	if (r->done_fn)
		r->done_fn(res, r->arg);
	cln_put(r); /* the pending reference */
}

static void cln_complete_err(struct cl_req *r, int err)
{
	struct cl_result res = { .err = err };

	cln_complete(r, &res);
}

static void cln_timer_cb(uv_timer_t *t);

static void cln_timer(struct cl_req *r, uint64_t ms)
{
	if (!r->timer_open) {
		uv_timer_init(r->srv->host->ctx->loop, &r->timer);
		r->timer.data = r;
		r->timer_open = true;
		r->refs++;
	}
	uv_timer_start(&r->timer, cln_timer_cb, ms, 0);
}

/* The per-call part of a request: a fresh cookie, the start time, the
 * callback; pending (one reference) in its host's list. */
static void cln_begin(struct cl_req *r, cl_done_fn done, void *arg)
{
	struct cl_host *h = r->srv->host;
	uint64_t seq = h->ctx->cookie_seq++;

	for (int i = 7; i >= 0; i--, seq >>= 8)
		r->cookie[i] = (uint8_t)seq;
	r->refs++;
	r->t0 = uv_hrtime();
	r->done_fn = done;
	r->arg = arg;
	r->vers = r->srv->vers;
	r->next = h->reqs;
	r->prev = NULL;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	h->nreqs++;
}

/* @rq's owner handle, or a kernel lockd's "<pid>@<nodename>" if it has none. */
static void cln_fill_oh(struct cl_lockreq *rq, const struct cl_host *h)
{
	int n;

	if (rq->oh.len)
		return;
	n = snprintf((char *)rq->oh.val, CL_MAX_NETOBJ, "%u@%s", rq->svid, h->name);
	rq->oh.len = n < CL_MAX_NETOBJ ? (uint32_t)n : CL_MAX_NETOBJ - 1;
}

static struct cl_req *cln_new(struct cl_server *s, enum cl_op op, const struct cl_lockreq *rq,
			      cl_done_fn done, void *arg)
{
	struct cl_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->srv = s;
	r->op = op;
	if (rq)
		r->rq = *rq;
	cln_fill_oh(&r->rq, s->host);
	cln_begin(r, done, arg);
	return r;
}

/* Start @r; on failure it is discarded without a callback. */
static int cln_start(struct cl_req *r)
{
	int rc = cln_send(r);

	if (rc < 0) {
		r->done = true;
		cln_unlink(r);
		cln_timer_release(r);
		cln_put(r);
	}
	return rc;
}

/* ---- the server's NLM port ------------------------------------------------- */

static int cln_make_clnt(struct cl_server *s, uint16_t port)
{
	struct cl_host *h = s->host;
	const struct cl_config *cfg = &h->ctx->cfg;
	struct sockaddr_in srv = s->addr, local = h->addr;
	struct rpcc_auth auth = { .flavor = RPCC_AUTH_SYS, .uid = cfg->uid, .gid = cfg->gid,
				  .ngids = 1, .gids = { cfg->gid } };
	struct rpcc_opts o = { 0 };
	int rc;

	snprintf(auth.machinename, sizeof(auth.machinename), "%.255s", h->name);
	srv.sin_port = htons(port);
	local.sin_port = 0;
	o.server = (const struct sockaddr *)&srv;
	o.local = (const struct sockaddr *)&local;
	o.prog = NLM_PROG;
	o.vers = s->vers;
	o.transport = cfg->proto;
	o.auth = &auth;
	o.timeout = cfg->timeout;
	rc = rpcc_new(h->ctx->loop, &o, &s->nlm);
	if (rc == 0)
		rpcc_keep_calls(s->nlm, s->nslots); /* a call record per slot, reused */
	return rc;
}

static void cln_port_cb(int err, uint16_t port, void *arg)
{
	struct cl_server *s = arg;

	if (err == -ECANCELED)
		return; /* whoever cancelled has cleared s->gp and decides */
	s->gp = NULL;
	if (err == 0)
		err = cln_make_clnt(s, port);
	/* once per change, not once per request that was waiting */
	if (err && err != s->last_err)
		cl_event(s->host->ctx, s->host, "event=error what=nlm-getport server=%s err=\"%s\"",
			 s->name, rpcc_strerror(err));
	s->last_err = err;
	cl_nlm_port_ready(s, err);
}

/* 0: s->nlm is usable; 1: a lookup is under way; <0: cannot start one. */
static int cln_ensure(struct cl_server *s)
{
	struct cl_host *h = s->host;
	const struct cl_config *cfg = &h->ctx->cfg;
	struct sockaddr_in pm = s->addr, local = h->addr;
	int rc;

	if (s->nlm)
		return 0;
	if (s->gp)
		return 1;
	if (cfg->nlm_port)
		return cln_make_clnt(s, cfg->nlm_port);
	pm.sin_port = htons(cfg->pmap_port);
	local.sin_port = 0;
	rc = rpcc_getport(h->ctx->loop, (const struct sockaddr *)&pm,
			  (const struct sockaddr *)&local, NLM_PROG, s->vers,
			  cfg->proto == RPCC_TCP ? IPPROTO_TCP : IPPROTO_UDP, &cfg->timeout,
			  cln_port_cb, s, &s->gp);
	return rc < 0 ? rc : 1;
}

/* Hold a reference on every pending request of @h that @match accepts. */
static size_t cln_collect(struct cl_host *h, bool (*match)(struct cl_req *, void *),
			  void *marg, struct cl_req ***out)
{
	struct cl_req **v = NULL;
	size_t n = 0, cap = 0;

	for (struct cl_req *r = h->reqs; r; r = r->next) {
		if (!match(r, marg))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct cl_req **nv = realloc(v, nc * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		r->refs++;
		v[n++] = r;
	}
	*out = v;
	return n;
}

static bool cln_waits_port(struct cl_req *r, void *arg)
{
	return r->srv == arg && r->state == RQ_WAIT_PORT;
}

void cl_nlm_port_ready(struct cl_server *s, int err)
{
	struct cl_req **v;
	size_t n = cln_collect(s->host, cln_waits_port, s, &v);

	for (size_t i = 0; i < n; i++) {
		struct cl_req *r = v[i];

		if (!r->done && r->state == RQ_WAIT_PORT) {
			int rc = err ? err : cln_send(r);
			if (rc < 0)
				cln_failed(r, rc);
		}
		cln_put(r);
	}
	free(v);
}

/*
 * The handle of @s was dropped (SM_NOTIFY, refused connection) and with it
 * any port lookup under way.  A request waiting for that lookup has no timer
 * of its own, so unless something looks the port up again it waits forever:
 * after a failover that was a LOCK the client never got an answer to (while
 * the new owner, which had taken its first transmission, held the lock).
 * Start the lookup again for whoever waits, or fail them if it cannot start.
 */
void cl_nlm_lookup_again(struct cl_server *s)
{
	bool waiting = false;
	int rc;

	if (s->host->ctx->closing || s->nlm || s->gp)
		return;
	for (struct cl_req *r = s->host->reqs; r && !waiting; r = r->next)
		waiting = cln_waits_port(r, s) && !r->done;
	if (!waiting)
		return;
	rc = cln_ensure(s);
	if (rc <= 0)
		cl_nlm_port_ready(s, rc); /* usable at once (fixed port), or failed */
}

/* ---- encoding and sending -------------------------------------------------- */

union cln_args4 {
	nlm4_testargs test;
	nlm4_lockargs lock;
	nlm4_cancargs cancel;
	nlm4_unlockargs unlock;
	nlm4_shareargs share;
	nlm4_notify notify;
	nlm4_res res;
};

union cln_args1 {
	sgn_nlm_testargs test;
	sgn_nlm_lockargs lock;
	sgn_nlm_cancargs cancel;
	sgn_nlm_unlockargs unlock;
	sgn_nlm_shareargs share;
	sgn_nlm_notify notify;
	sgn_nlm_res res;
};

struct cln_proc {
	const char *name;
	uint32_t proc, msg_proc;          /* msg_proc 0: no _MSG form */
	xdrproc_t a4, r4, a1, r1;
	size_t rs4, rs1;
};

#define X(f) ((xdrproc_t)(f))
static const struct cln_proc cln_procs[] = {
	[CL_OP_NULL] = { "null", NLMPROC_NULL, 0, NULL, NULL, NULL, NULL, 0, 0 },
	[CL_OP_TEST] = { "test", NLMPROC_TEST, NLMPROC_TEST_MSG,
		X(xdr_nlm4_testargs), X(xdr_nlm4_testres),
		X(xdr_sgn_nlm_testargs), X(xdr_sgn_nlm_testres),
		sizeof(nlm4_testres), sizeof(sgn_nlm_testres) },
	[CL_OP_LOCK] = { "lock", NLMPROC_LOCK, NLMPROC_LOCK_MSG,
		X(xdr_nlm4_lockargs), X(xdr_nlm4_res),
		X(xdr_sgn_nlm_lockargs), X(xdr_sgn_nlm_res),
		sizeof(nlm4_res), sizeof(sgn_nlm_res) },
	[CL_OP_CANCEL] = { "cancel", NLMPROC_CANCEL, NLMPROC_CANCEL_MSG,
		X(xdr_nlm4_cancargs), X(xdr_nlm4_res),
		X(xdr_sgn_nlm_cancargs), X(xdr_sgn_nlm_res),
		sizeof(nlm4_res), sizeof(sgn_nlm_res) },
	[CL_OP_UNLOCK] = { "unlock", NLMPROC_UNLOCK, NLMPROC_UNLOCK_MSG,
		X(xdr_nlm4_unlockargs), X(xdr_nlm4_res),
		X(xdr_sgn_nlm_unlockargs), X(xdr_sgn_nlm_res),
		sizeof(nlm4_res), sizeof(sgn_nlm_res) },
	[CL_OP_SHARE] = { "share", NLMPROC_SHARE, 0,
		X(xdr_nlm4_shareargs), X(xdr_nlm4_shareres),
		X(xdr_sgn_nlm_shareargs), X(xdr_sgn_nlm_shareres),
		sizeof(nlm4_shareres), sizeof(sgn_nlm_shareres) },
	[CL_OP_UNSHARE] = { "unshare", NLMPROC_UNSHARE, 0,
		X(xdr_nlm4_shareargs), X(xdr_nlm4_shareres),
		X(xdr_sgn_nlm_shareargs), X(xdr_sgn_nlm_shareres),
		sizeof(nlm4_shareres), sizeof(sgn_nlm_shareres) },
	[CL_OP_FREE_ALL] = { "free_all", NLMPROC_FREE_ALL, 0,
		X(xdr_nlm4_notify), NULL, X(xdr_sgn_nlm_notify), NULL, 0, 0 },
	[CL_OP_GRANTED_RES] = { "granted_res", NLMPROC_GRANTED_RES, 0,
		X(xdr_nlm4_res), NULL, X(xdr_sgn_nlm_res), NULL, 0, 0 },
};

static sgn_netobj cln_obj(const void *p, uint32_t len)
{
	sgn_netobj o = { len, (char *)p };
	return o;
}

static void cln_lock4(nlm4_lock *l, struct cl_req *r)
{
	l->caller_name = r->srv->host->name;
	l->fh = cln_obj(r->rq.file.fh.val, r->rq.file.fh.len);
	l->oh = cln_obj(r->rq.oh.val, r->rq.oh.len);
	l->svid = (int)r->rq.svid;
	l->l_offset = r->rq.start;
	l->l_len = r->rq.len;
}

/* v1/v3 carry 32-bit offsets: refuse what would be truncated. */
static int cln_lock1(sgn_nlm_lock *l, struct cl_req *r)
{
	if (r->rq.start > UINT32_MAX || r->rq.len > UINT32_MAX)
		return -EOVERFLOW;
	l->caller_name = r->srv->host->name;
	l->fh = cln_obj(r->rq.file.fh.val, r->rq.file.fh.len);
	l->oh = cln_obj(r->rq.oh.val, r->rq.oh.len);
	l->svid = (int)r->rq.svid;
	l->l_offset = (u_int)r->rq.start;
	l->l_len = (u_int)r->rq.len;
	return 0;
}

static void cln_rpc_cb(const struct rpcc_reply *rep, void *arg);

/* Encode @r for its server's version and put it on the wire. */
static int cln_call(struct cl_req *r)
{
	struct cl_server *s = r->srv;
	struct cl_host *h = s->host;
	const struct cl_config *cfg = &h->ctx->cfg;
	const struct cln_proc *p = &cln_procs[r->op];
	bool v4 = s->vers == NLM4_VERS;
	union cln_args4 a4;
	union cln_args1 a1;
	sgn_netobj ck = cln_obj(r->cookie, sizeof(r->cookie));
	void *args = v4 ? (void *)&a4 : (void *)&a1;
	int rc = 0;

	memset(&a4, 0, sizeof(a4));
	memset(&a1, 0, sizeof(a1));
	switch (r->op) {
	case CL_OP_NULL:
		args = NULL;
		break;
	case CL_OP_TEST:
		a4.test.cookie = a1.test.cookie = ck;
		a4.test.exclusive = a1.test.exclusive = r->rq.exclusive;
		if (v4)
			cln_lock4(&a4.test.alock, r);
		else
			rc = cln_lock1(&a1.test.alock, r);
		break;
	case CL_OP_LOCK:
		a4.lock.cookie = a1.lock.cookie = ck;
		a4.lock.block = a1.lock.block = r->rq.block;
		a4.lock.exclusive = a1.lock.exclusive = r->rq.exclusive;
		a4.lock.reclaim = a1.lock.reclaim = r->rq.reclaim;
		a4.lock.state = a1.lock.state = h->state;
		if (v4)
			cln_lock4(&a4.lock.alock, r);
		else
			rc = cln_lock1(&a1.lock.alock, r);
		break;
	case CL_OP_CANCEL:
		a4.cancel.cookie = a1.cancel.cookie = ck;
		a4.cancel.block = a1.cancel.block = r->rq.block;
		a4.cancel.exclusive = a1.cancel.exclusive = r->rq.exclusive;
		if (v4)
			cln_lock4(&a4.cancel.alock, r);
		else
			rc = cln_lock1(&a1.cancel.alock, r);
		break;
	case CL_OP_UNLOCK:
		a4.unlock.cookie = a1.unlock.cookie = ck;
		if (v4)
			cln_lock4(&a4.unlock.alock, r);
		else
			rc = cln_lock1(&a1.unlock.alock, r);
		break;
	case CL_OP_SHARE:
	case CL_OP_UNSHARE:
		/* same layout in every version: no offsets */
		a4.share.cookie = ck;
		a4.share.share.caller_name = h->name;
		a4.share.share.fh = cln_obj(r->rq.file.fh.val, r->rq.file.fh.len);
		a4.share.share.oh = cln_obj(r->rq.oh.val, r->rq.oh.len);
		a4.share.share.mode = (fsh4_mode)r->rq.mode;
		a4.share.share.access = (fsh4_access)r->rq.access;
		a4.share.reclaim = r->rq.reclaim;
		a1.share.cookie = ck;
		a1.share.share.caller_name = h->name;
		a1.share.share.fh = a4.share.share.fh;
		a1.share.share.oh = a4.share.share.oh;
		a1.share.share.mode = a4.share.share.mode;
		a1.share.share.access = a4.share.share.access;
		a1.share.reclaim = r->rq.reclaim;
		break;
	case CL_OP_FREE_ALL:
		a4.notify.name = a1.notify.name = h->name;
		a4.notify.state = a1.notify.state = h->state;
		break;
	case CL_OP_GRANTED_RES:
		a4.res.cookie = a1.res.cookie = cln_obj(r->xcookie.val, r->xcookie.len);
		a4.res.stat.stat = (nlm4_stats)r->xstat;
		a1.res.stat.stat = (sgn_nlm_stats)r->xstat;
		break;
	}
	if (rc < 0)
		return rc;
	r->vers = s->vers;
	if (r->op == CL_OP_GRANTED_RES)
		return rpcc_send(s->nlm, p->proc, v4 ? p->a4 : p->a1, args);
	if (cfg->use_msg && p->msg_proc) {
		rc = rpcc_send(s->nlm, p->msg_proc, v4 ? p->a4 : p->a1, args);
		if (rc == 0)
			r->state = RQ_WAIT_RES;
		return rc;
	}
	rc = rpcc_call(s->nlm, p->proc, v4 ? p->a4 : p->a1, args, v4 ? p->r4 : p->r1,
		       v4 ? p->rs4 : p->rs1, NULL, cln_rpc_cb, r);
	if (rc == 0) {
		r->refs++; /* the call's */
		r->ncalls++;
		r->state = RQ_WAIT_REPLY;
	}
	return rc;
}

/* Send (or re-send) @r; 0 or -errno (then the caller decides). */
static int cln_send(struct cl_req *r)
{
	const struct cl_config *cfg = &r->srv->host->ctx->cfg;
	int rc;

	if (r->done)
		return 0;
	rc = cln_ensure(r->srv);
	if (rc > 0) {
		r->state = RQ_WAIT_PORT;
		return 0;
	}
	if (rc == 0)
		rc = cln_call(r);
	if (rc < 0)
		return rc;
	if (r->op == CL_OP_GRANTED_RES) {
		struct cl_result res = { 0 };

		cln_complete(r, &res);
	} else if (r->state == RQ_WAIT_RES) {
		uint32_t every = cfg->timeout.retrans_ms > 1000 ? cfg->timeout.retrans_ms : 1000;
		uint64_t now = cl_now_ms(r->srv->host->ctx);

		if (!r->res_until)
			r->res_until = now + (cfg->timeout.total_ms ? cfg->timeout.total_ms : 10000);
		cln_timer(r, every);
	}
	return 0;
}

static void cln_backoff(struct cl_req *r)
{
	r->backoff = r->backoff ? r->backoff * 2 : CL_RETRY_MIN_MS;
	if (r->backoff > CL_RETRY_MAX_MS)
		r->backoff = CL_RETRY_MAX_MS;
	r->state = RQ_BACKOFF;
	cln_timer(r, r->backoff);
}

/* A transport-level failure of @r. */
static void cln_failed(struct cl_req *r, int err)
{
	struct cl_server *s = r->srv;
	struct cl_ctx *ctx = s->host->ctx;

	if (r->done)
		return;
	/* Nobody there: the service may come back (or move to another node)
	 * on another port, so the next request asks the portmapper again. */
	if (err == -ECONNREFUSED && s->nlm && !s->gp && !ctx->closing)
		cl_server_drop_nlm(s);
	if (r->retry && !ctx->closing && cl_now_ms(ctx) < r->retry_until) {
		cln_backoff(r);
		return;
	}
	cln_complete_err(r, err);
}

/* @res (as decoded for r->vers) into @d, whose other fields are zero. */
static int cln_widen_res(struct cl_req *r, const void *res, struct cl_result *d)
{
	bool v4 = r->vers == NLM4_VERS;

	switch (r->op) {
	case CL_OP_TEST:
		if (v4) {
			const nlm4_testres *t = res;
			d->stat = t->test_stat.stat;
			if (t->test_stat.stat == NLM4_DENIED) {
				const nlm4_holder *ho = &t->test_stat.nlm4_testrply_u.holder;
				d->has_holder = true;
				d->holder_excl = ho->exclusive;
				d->holder_svid = (uint32_t)ho->svid;
				d->holder_oh.len = ho->oh.sgn_netobj_len;
				memcpy(d->holder_oh.val, ho->oh.sgn_netobj_val, d->holder_oh.len);
				d->holder_start = ho->l_offset;
				d->holder_len = ho->l_len;
			}
		} else {
			const sgn_nlm_testres *t = res;
			d->stat = t->test_stat.stat;
			if (t->test_stat.stat == LCK_DENIED) {
				const sgn_nlm_holder *ho = &t->test_stat.sgn_nlm_testrply_u.holder;
				d->has_holder = true;
				d->holder_excl = ho->exclusive;
				d->holder_svid = (uint32_t)ho->svid;
				d->holder_oh.len = ho->oh.sgn_netobj_len;
				memcpy(d->holder_oh.val, ho->oh.sgn_netobj_val, d->holder_oh.len);
				d->holder_start = ho->l_offset;
				d->holder_len = ho->l_len;
			}
		}
		break;
	case CL_OP_LOCK:
	case CL_OP_CANCEL:
	case CL_OP_UNLOCK:
		d->stat = v4 ? (int)((const nlm4_res *)res)->stat.stat
			     : (int)((const sgn_nlm_res *)res)->stat.stat;
		break;
	case CL_OP_SHARE:
	case CL_OP_UNSHARE:
		if (v4) {
			d->stat = ((const nlm4_shareres *)res)->stat;
			d->sequence = ((const nlm4_shareres *)res)->sequence;
		} else {
			d->stat = ((const sgn_nlm_shareres *)res)->stat;
			d->sequence = ((const sgn_nlm_shareres *)res)->sequence;
		}
		break;
	default:
		d->stat = NLM4_GRANTED; /* void results */
		break;
	}
	return d->stat;
}

static void cln_rpc_cb(const struct rpcc_reply *rep, void *arg)
{
	struct cl_req *r = arg;

	r->ncalls--;
	if (!r->done && r->state == RQ_WAIT_REPLY) {
		struct cl_ctx *ctx = r->srv->host->ctx;

		if (rep->err == -ECANCELED && !ctx->closing) {
			/* the handle was dropped (new port after SM_NOTIFY):
			 * send again on the next one */
			int rc;

			r->state = RQ_WAIT_PORT;
			rc = cln_send(r);
			if (rc < 0)
				cln_failed(r, rc);
		} else if (rep->err) {
			cln_failed(r, rep->err);
		} else if (r->slot) {
			/* only err, stat and usec of a slot's result ever change */
			struct cl_result *d = &((struct cl_slot *)r)->res;

			cln_answer(r, cln_widen_res(r, rep->res, d), d);
		} else {
			struct cl_result *d = calloc(1, sizeof(*d));

			if (!d) {
				cln_failed(r, -ENOMEM);
			} else {
				cln_answer(r, cln_widen_res(r, rep->res, d), d);
				free(d);
			}
		}
	}
	cln_put(r);
}

/* ---- answers ---------------------------------------------------------------- */

static void cln_log_lock(struct cl_req *r, const char *event, const char *extra)
{
	struct cl_host *h = r->srv->host;
	char oh[2 * 64 + 1];
	struct cl_blob short_oh = r->rq.oh;

	if (short_oh.len > 64)
		short_oh.len = 64;
	cl_event(h->ctx, h, "event=%s server=%s file=%s svid=%u oh=%s start=%llu len=%llu type=%s%s%s",
		 event, r->srv->name, r->rq.file.path, r->rq.svid,
		 cl_blob_hex(&short_oh, oh, sizeof(oh)), (unsigned long long)r->rq.start,
		 (unsigned long long)r->rq.len, r->rq.exclusive ? "excl" : "shared",
		 extra ? " " : "", extra ? extra : "");
}

static void cln_timer_blocked(struct cl_req *r)
{
	const struct cl_config *cfg = &r->srv->host->ctx->cfg;
	uint64_t now = cl_now_ms(r->srv->host->ctx);
	uint64_t delay = cfg->poll_ms;

	if (r->wait_until)
		delay = r->wait_until > now ? (r->wait_until - now < delay ? r->wait_until - now : delay)
					    : 0;
	cln_timer(r, delay);
}

/* The server answered @r with @stat; @res (the caller's, completed here)
 * holds the details. */
static void cln_answer(struct cl_req *r, int stat, struct cl_result *res)
{
	struct cl_host *h = r->srv->host;

	if (r->done)
		return;
	res->err = 0;
	res->stat = stat;
	switch (r->op) {
	case CL_OP_LOCK:
		if (stat == NLM4_GRANTED) {
			/* a reclaim's entry is there already; a slot keeps none */
			if (!r->gen && !r->slot)
				cl_record_add(h, r->srv, &r->rq, &r->rq.oh);
			break;
		}
		if (stat == NLM4_BLOCKED && r->rq.block) {
			r->state = RQ_BLOCKED;
			r->backoff = 0;
			if (!r->said_blocked) {
				r->said_blocked = true;
				cln_log_lock(r, "blocked", NULL);
			}
			cln_timer_blocked(r);
			return;
		}
		if (stat == NLM4_DENIED_GRACE_PERIOD && r->retry &&
		    cl_now_ms(h->ctx) < r->retry_until) {
			cln_backoff(r);
			return;
		}
		break;
	case CL_OP_UNLOCK:
		if (stat == NLM4_GRANTED && !r->slot)
			cl_record_remove(h, r->srv, &r->rq);
		break;
	case CL_OP_SHARE:
		if (stat == NLM4_GRANTED && !r->gen)
			cl_record_share_add(h, r->srv, &r->rq, &r->rq.oh);
		if (stat == NLM4_DENIED_GRACE_PERIOD && r->retry &&
		    cl_now_ms(h->ctx) < r->retry_until) {
			cln_backoff(r);
			return;
		}
		break;
	case CL_OP_UNSHARE:
		if (stat == NLM4_GRANTED)
			cl_record_share_remove(h, r->srv, &r->rq, &r->rq.oh);
		break;
	case CL_OP_FREE_ALL:
		cl_record_drop_server(h, r->srv);
		break;
	default:
		break;
	}
	cln_complete(r, res);
}

/* Ask the server to forget a wait we gave up on; nobody waits for this. */
static void cln_cancel_quiet(struct cl_req *blocked)
{
	struct cl_req *c = cln_new(blocked->srv, CL_OP_CANCEL, &blocked->rq, NULL, NULL);

	if (c)
		(void)cln_start(c);
}

static void cln_timer_cb(uv_timer_t *t)
{
	struct cl_req *r = t->data;
	uint64_t now;
	int rc = 0;

	if (r->done)
		return;
	now = cl_now_ms(r->srv->host->ctx);
	switch (r->state) {
	case RQ_BLOCKED:
		if (r->wait_until && now >= r->wait_until) {
			cln_log_lock(r, "wait-timeout", NULL);
			cln_cancel_quiet(r);
			cln_complete_err(r, -ETIMEDOUT);
			return;
		}
		/* re-poll: the GRANTED callback may have been lost */
		rc = cln_send(r);
		break;
	case RQ_BACKOFF:
		rc = cln_send(r);
		break;
	case RQ_WAIT_RES:
		if (now >= r->res_until) {
			cln_failed(r, -ETIMEDOUT);
			return;
		}
		rc = cln_send(r); /* the _MSG or its _RES may have been lost */
		break;
	default:
		break;
	}
	if (rc < 0)
		cln_failed(r, rc);
}

/* ---- public entry points -------------------------------------------------- */

static int cln_op(struct cl_server *s, enum cl_op op, const struct cl_lockreq *rq,
		  cl_done_fn done, void *arg)
{
	struct cl_ctx *ctx = s->host->ctx;
	struct cl_req *r;

	if (ctx->closing)
		return -ESHUTDOWN;
	if (rq && rq->file.fh.len > CL_MAX_NETOBJ)
		return -EINVAL;
	r = cln_new(s, op, rq, done, arg);
	if (!r)
		return -ENOMEM;
	if (op == CL_OP_LOCK && rq->block && rq->wait_ms)
		r->wait_until = cl_now_ms(ctx) + rq->wait_ms;
	return cln_start(r);
}

int cl_lock(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_LOCK, rq, done, arg);
}

int cl_test(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_TEST, rq, done, arg);
}

int cl_unlock(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_UNLOCK, rq, done, arg);
}

int cl_cancel(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_CANCEL, rq, done, arg);
}

int cl_share(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_SHARE, rq, done, arg);
}

int cl_unshare(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_UNSHARE, rq, done, arg);
}

int cl_null(struct cl_server *s, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_NULL, NULL, done, arg);
}

int cl_free_all(struct cl_server *s, cl_done_fn done, void *arg)
{
	return cln_op(s, CL_OP_FREE_ALL, NULL, done, arg);
}

/* ---- slots --------------------------------------------------------------- */

int cl_slot_new(struct cl_server *s, const struct cl_lockreq *rq, struct cl_slot **out)
{
	struct cl_slot *sl;

	if (s->host->ctx->closing)
		return -ESHUTDOWN;
	/* a blocked LOCK would be granted by callback into the record */
	if (rq->block || rq->file.fh.len > CL_MAX_NETOBJ)
		return -EINVAL;
	sl = calloc(1, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	sl->req.refs = 1;      /* the slot's own, until cl_slot_free */
	sl->req.slot = true;
	sl->req.done = true;   /* no call pending */
	sl->req.srv = s;
	sl->req.rq = *rq;
	cln_fill_oh(&sl->req.rq, s->host);
	s->nslots++;
	if (s->nlm)
		rpcc_keep_calls(s->nlm, s->nslots);
	*out = sl;
	return 0;
}

int cl_slot_call(struct cl_slot *sl, bool unlock, cl_done_fn done, void *arg)
{
	struct cl_req *r = &sl->req;

	if (r->srv->host->ctx->closing)
		return -ESHUTDOWN;
	/* Still pending, or completed (cancelled) while its RPC is in flight:
	 * that RPC's callback must not meet the next call. */
	if (!r->done || r->ncalls)
		return -EBUSY;
	r->op = unlock ? CL_OP_UNLOCK : CL_OP_LOCK;
	r->state = RQ_WAIT_PORT;
	r->done = false;
	r->res_until = 0;
	sl->res.err = 0;
	sl->res.stat = 0;
	cln_begin(r, done, arg);
	return cln_start(r);
}

void cl_slot_free(struct cl_slot *sl)
{
	struct cl_req *r;
	struct cl_server *s;

	if (!sl)
		return;
	r = &sl->req;
	s = r->srv;
	if (!r->done)
		cln_complete_err(r, -ECANCELED);
	s->nslots--;
	if (s->nlm)
		rpcc_keep_calls(s->nlm, s->nslots);
	/* completion only stopped the timer; the slot closes it */
	r->slot = false;
	if (r->timer_open)
		uv_close((uv_handle_t *)&r->timer, cln_timer_closed);
	cln_put(r); /* the slot's reference: freed now, or by the last call's */
}

void cl_nlm_cancel_all(struct cl_host *h)
{
	while (h->reqs)
		cln_complete_err(h->reqs, -ECANCELED);
}

/* ---- callbacks from the server ---------------------------------------------- */

static bool cln_bytes_eq(const uint8_t *a, uint32_t alen, const struct cl_blob *b)
{
	return alen == b->len && (alen == 0 || memcmp(a, b->val, alen) == 0);
}

int cl_nlm_granted(struct cl_host *h, const struct sockaddr_in *from,
		   const struct cl_granted *g)
{
	char fromstr[INET_ADDRSTRLEN];
	struct cl_req *r;

	inet_ntop(AF_INET, &from->sin_addr, fromstr, sizeof(fromstr));
	/* Like a kernel client, match what identifies the wait: file, owner
	 * process and range; the owner handle too when the server sends one. */
	for (r = h->reqs; r; r = r->next) {
		if (r->op != CL_OP_LOCK || !r->rq.block || r->done)
			continue;
		if (r->rq.svid == g->svid && r->rq.start == g->start && r->rq.len == g->len &&
		    cln_bytes_eq(g->fh, g->fh_len, &r->rq.file.fh) &&
		    (g->oh_len == 0 || cln_bytes_eq(g->oh, g->oh_len, &r->rq.oh)))
			break;
	}
	if (!r) {
		cl_event(h->ctx, h, "event=granted-unwanted from=%s svid=%u start=%llu len=%llu "
			 "answer=denied", fromstr, g->svid, (unsigned long long)g->start,
			 (unsigned long long)g->len);
		return NLM4_DENIED;
	}
	{
		char extra[64];
		struct cl_result res = { .stat = NLM4_GRANTED };

		snprintf(extra, sizeof(extra), "from=%s", fromstr);
		cln_log_lock(r, "granted-callback", extra);
		cl_record_add(h, r->srv, &r->rq, &r->rq.oh);
		cln_complete(r, &res);
	}
	return NLM4_GRANTED;
}

void cl_nlm_res(struct cl_host *h, enum cl_op op, const uint8_t *cookie, uint32_t cookie_len,
		int stat, const struct cl_result *detail)
{
	for (struct cl_req *r = h->reqs; r; r = r->next) {
		if (r->op == op && r->state == RQ_WAIT_RES && !r->done &&
		    cookie_len == sizeof(r->cookie) && !memcmp(cookie, r->cookie, cookie_len)) {
			struct cl_result res = { 0 };

			if (detail)
				res = *detail;
			cln_answer(r, stat, &res);
			return;
		}
	}
	cl_event(h->ctx, h, "event=res-unmatched proc=%s stat=%s", cln_procs[op].name,
		 cl_stat_name(stat));
}

void cl_nlm_send_granted_res(struct cl_host *h, const struct sockaddr_in *from,
			     uint32_t vers, const struct cl_blob *cookie, int stat)
{
	struct cl_server *s;
	struct cl_req *r;

	if (h->ctx->closing || cl_server_get(h, from, &s) < 0)
		return;
	if (s->vers != vers && !s->nlm && !s->gp)
		s->vers = vers; /* a server we never asked: answer in its version */
	r = cln_new(s, CL_OP_GRANTED_RES, NULL, NULL, NULL);
	if (!r)
		return;
	r->xcookie = *cookie;
	r->xstat = stat;
	(void)cln_start(r);
}

/* ---- recovery after SM_NOTIFY -------------------------------------------- */

static struct cl_lock *cln_find_entry(struct cl_host *h, struct cl_req *r)
{
	for (struct cl_lock *lk = h->locks; lk; lk = lk->next) {
		if (lk->srv != r->srv || lk->svid != r->rq.svid ||
		    !cln_bytes_eq(lk->file.fh.val, lk->file.fh.len, &r->rq.file.fh) ||
		    !cln_bytes_eq(lk->oh.val, lk->oh.len, &r->rq.oh))
			continue;
		if (lk->is_share ? r->op == CL_OP_SHARE
				 : (r->op == CL_OP_LOCK && lk->start == r->rq.start &&
				    lk->len == r->rq.len && lk->exclusive == r->rq.exclusive))
			return lk;
	}
	return NULL;
}

static void cln_reclaim_done(struct cl_req *r, const struct cl_result *res)
{
	struct cl_server *s = r->srv;
	struct cl_host *h = s->host;
	struct cl_lock *lk = cln_find_entry(h, r);
	char extra[96];

	if (r->gen != s->gen || h->ctx->closing)
		return; /* superseded by a newer SM_NOTIFY, or shutting down */
	if (res->err == 0 && res->stat == NLM4_GRANTED) {
		if (lk) {
			lk->state = CL_HELD;
			lk->reclaimed++;
			cl_record_changed(h->ctx);
		}
		snprintf(extra, sizeof(extra), "after_ms=%llu", (unsigned long long)(res->usec / 1000));
		cln_log_lock(r, "reclaimed", extra);
	} else {
		snprintf(extra, sizeof(extra), "why=%s",
			 res->err ? rpcc_strerror(res->err) : cl_stat_name(res->stat));
		cln_log_lock(r, "lost", extra);
		if (lk)
			cl_record_drop(h, lk);
	}
	if (--s->reclaiming == 0)
		cl_event(h->ctx, h, "event=reclaim-done server=%s", s->name);
}

static bool cln_of_server(struct cl_req *r, void *arg)
{
	return r->srv == arg;
}

static void cln_recover(struct cl_server *s)
{
	struct cl_host *h = s->host;
	const struct cl_config *cfg = &h->ctx->cfg;
	uint64_t until = cl_now_ms(h->ctx) + cfg->reclaim_ms;
	struct cl_req **v;
	size_t n, nlocks = 0;

	/* Abandon the previous round's reclaims; keep other requests. */
	n = cln_collect(h, cln_of_server, s, &v);
	for (size_t i = 0; i < n; i++) {
		struct cl_req *r = v[i];

		if (!r->done && r->gen) {
			r->internal = NULL;
			cln_complete_err(r, -ECANCELED);
		}
	}
	s->reclaiming = 0;
	for (struct cl_lock *lk = h->locks; lk; lk = lk->next)
		if (lk->srv == s)
			nlocks++;
	cl_event(h->ctx, h, "event=reclaim-start server=%s locks=%zu", s->name, nlocks);

	for (struct cl_lock *lk = h->locks; lk; lk = lk->next) {
		struct cl_lockreq rq;
		struct cl_req *r;

		if (lk->srv != s)
			continue;
		memset(&rq, 0, sizeof(rq));
		rq.file = lk->file;
		rq.svid = lk->svid;
		rq.oh = lk->oh;
		rq.start = lk->start;
		rq.len = lk->len;
		rq.exclusive = lk->exclusive;
		rq.mode = lk->mode;
		rq.access = lk->access;
		rq.reclaim = true;
		r = cln_new(s, lk->is_share ? CL_OP_SHARE : CL_OP_LOCK, &rq, NULL, NULL);
		if (!r)
			continue;
		lk->state = CL_RECLAIMING;
		r->gen = s->gen;
		r->retry = true;
		r->retry_until = until;
		r->internal = cln_reclaim_done;
		s->reclaiming++;
		if (cln_send(r) < 0)
			cln_backoff(r);
	}
	cl_record_changed(h->ctx);
	if (s->reclaiming == 0)
		cl_event(h->ctx, h, "event=reclaim-done server=%s", s->name);

	/* Waits the server forgot when it restarted: ask again. */
	for (size_t i = 0; i < n; i++) {
		struct cl_req *r = v[i];

		if (!r->done && !r->gen && r->op == CL_OP_LOCK && r->rq.block) {
			r->retry = true;
			r->retry_until = until;
			if (r->state == RQ_BLOCKED || r->state == RQ_BACKOFF) {
				if (cln_send(r) < 0)
					cln_backoff(r);
			}
		}
		cln_put(r);
	}
	free(v);
}

void cl_nsm_notify(struct cl_host *h, const struct sockaddr_in *from, uint32_t xid,
		   const char *mon_name, int32_t state)
{
	char fromstr[INET_ADDRSTRLEN], safe[LOG_SAFE_MAX];
	struct in_addr named;
	bool is_addr = inet_pton(AF_INET, mon_name, &named) == 1;
	bool any = false;

	inet_ntop(AF_INET, &from->sin_addr, fromstr, sizeof(fromstr));
	log_safe(safe, sizeof(safe), mon_name, strlen(mon_name));
	cl_event(h->ctx, h, "event=notify from=%s xid=%" PRIu32 " mon_name=%s state=%d", fromstr, xid,
		 safe, (int)state);
	for (struct cl_server *s = h->servers; s; s = s->next) {
		if (strcmp(s->name, mon_name) != 0 &&
		    !(is_addr && s->addr.sin_addr.s_addr == named.s_addr))
			continue;
		any = true;
		if (s->has_state && s->last_state == state) {
			cl_event(h->ctx, h, "event=notify-duplicate server=%s state=%d", s->name,
				 (int)state);
			continue;
		}
		s->has_state = true;
		s->last_state = state;
		s->gen++;
		cl_server_drop_nlm(s);
		cln_recover(s);
	}
	if (!any)
		cl_event(h->ctx, h, "event=notify-ignored mon_name=%s why=no-such-server", safe);
}

/* ---- a simulated reboot: SM_NOTIFY to every server -------------------------- */

struct cl_smn {
	struct cl_smn *next;              /* in host->smn */
	struct cl_host *host;
	char server[INET_ADDRSTRLEN];
	struct rpcc_getport_req *gp;
	struct rpcc_clnt *c;
};

static void cln_smn_free(struct cl_smn *m)
{
	struct cl_smn **pp = &m->host->smn;

	while (*pp && *pp != m)
		pp = &(*pp)->next;
	if (*pp)
		*pp = m->next;
	free(m);
}

/* One SM_NOTIFY of @h's reboot finished with @err: the reboot's caller
 * hears once the last one has. */
static void cln_smn_finished(struct cl_host *h, int err)
{
	cl_done_fn done = h->reboot_done;
	struct cl_result r = { 0 };

	if (err && !h->smn_err)
		h->smn_err = err;
	if (h->smn_pending == 0 || --h->smn_pending > 0)
		return;
	h->reboot_done = NULL;
	r.err = h->smn_err;
	if (done)
		done(&r, h->reboot_arg);
}

static void cln_smn_done(const struct rpcc_reply *rep, void *arg)
{
	struct cl_smn *m = arg;
	struct cl_host *h = m->host;
	struct rpcc_clnt *c = m->c;
	int err = rep->err;

	cl_event(h->ctx, h, "event=sm-notify-sent server=%s result=\"%s\"", m->server,
		 rpcc_strerror(err));
	m->c = NULL;
	cln_smn_free(m);
	rpcc_close(c);
	cln_smn_finished(h, err);
}

static void cln_smn_port(int err, uint16_t port, void *arg)
{
	struct cl_smn *m = arg;
	struct cl_host *h = m->host;
	struct sockaddr_in srv, local = h->addr;
	sgn_stat_chge sc = { .mon_name = h->name, .state = h->state };
	struct rpcc_opts o = { 0 };

	m->gp = NULL;
	if (err == 0) {
		inet_pton(AF_INET, m->server, &srv.sin_addr);
		srv.sin_family = AF_INET;
		srv.sin_port = htons(port);
		local.sin_port = 0;
		o.server = (const struct sockaddr *)&srv;
		o.local = (const struct sockaddr *)&local;
		o.prog = NSM_PROG;
		o.vers = NSM_VERS;
		o.transport = RPCC_UDP;
		o.timeout = h->ctx->cfg.timeout;
		err = rpcc_new(h->ctx->loop, &o, &m->c);
		if (err == 0) {
			err = rpcc_call(m->c, NSMPROC_NOTIFY, (xdrproc_t)xdr_sgn_stat_chge, &sc,
					NULL, 0, NULL, cln_smn_done, m);
			if (err == 0)
				return;
			rpcc_close(m->c);
			m->c = NULL;
		}
	}
	if (err != -ECANCELED)
		cl_event(h->ctx, h, "event=sm-notify-sent server=%s result=\"%s\"", m->server,
			 rpcc_strerror(err));
	cln_smn_free(m);
	cln_smn_finished(h, err);
}

void cl_nsm_cancel_all(struct cl_host *h)
{
	while (h->smn) {
		struct cl_smn *m = h->smn;

		if (m->gp)
			rpcc_getport_cancel(m->gp);   /* frees m */
		else if (m->c)
			rpcc_close(m->c);             /* cancels the call, which frees m */
		else
			cln_smn_free(m);
	}
}

int cl_host_reboot(struct cl_host *h, cl_done_fn done, void *arg)
{
	const struct cl_config *cfg = &h->ctx->cfg;
	unsigned n = 0;

	if (h->ctx->closing)
		return -ESHUTDOWN;
	/* A reboot while an earlier one still notifies: the earlier caller
	 * hears now, its notifications go on uncounted. */
	if (h->reboot_done) {
		struct cl_result r = { .err = -ECANCELED };
		cl_done_fn prev = h->reboot_done;

		h->reboot_done = NULL;
		prev(&r, h->reboot_arg);
	}
	h->smn_pending = 0;
	h->smn_err = 0;
	/* odd while up: a reboot moves to the next odd number */
	h->state = (int32_t)(((uint32_t)h->state + 2u) & 0x7fffffffu) | 1;
	cl_event(h->ctx, h, "event=reboot state=%d", (int)h->state);
	cl_nlm_cancel_all(h);
	cl_record_free(h);
	cl_record_changed(h->ctx);
	for (struct cl_server *s = h->servers; s; s = s->next) {
		struct cl_smn *m = calloc(1, sizeof(*m));
		struct sockaddr_in pm = s->addr, local = h->addr;
		int rc;

		if (!m)
			return -ENOMEM;
		m->host = h;
		snprintf(m->server, sizeof(m->server), "%s", s->name);
		m->next = h->smn;
		h->smn = m;
		cl_server_drop_nlm(s);
		pm.sin_port = htons(cfg->pmap_port);
		local.sin_port = 0;
		rc = rpcc_getport(h->ctx->loop, (const struct sockaddr *)&pm,
				  (const struct sockaddr *)&local, NSM_PROG, NSM_VERS, IPPROTO_UDP,
				  &cfg->timeout, cln_smn_port, m, &m->gp);
		if (rc < 0) {
			cln_smn_free(m);
			h->smn_pending = 0; /* the ones started report to nobody */
			return rc;
		}
		n++;
	}
	h->smn_pending = n;
	if (n == 0) {
		struct cl_result r = { 0 };

		if (done)
			done(&r, arg);
		return 0;
	}
	h->reboot_done = done;
	h->reboot_arg = arg;
	return 0;
}
