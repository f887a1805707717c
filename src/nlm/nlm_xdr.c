/*
 * nlm_xdr.c - see nlm_xdr.h.  The 32-bit forms are decoded and encoded with
 * the rpcgen routines of nlm.x; this file only moves fields between the two
 * shapes, so no XDR is written by hand.
 */
#include "nlm/nlm_xdr.h"

#include <string.h>

sgn_nlm_stats nlm3_stat(nlm4_stats s)
{
	switch (s) {
	case NLM4_GRANTED: return LCK_GRANTED;
	case NLM4_DENIED: return LCK_DENIED;
	case NLM4_DENIED_NOLOCKS: return LCK_DENIED_NOLOCKS;
	case NLM4_BLOCKED: return LCK_BLOCKED;
	case NLM4_DENIED_GRACE_PERIOD: return LCK_DENIED_GRACE_PERIOD;
	case NLM4_DEADLCK: return LCK_DENIED;
	default: return LCK_DENIED_NOLOCKS;
	}
}

/* ---- v4 arguments in the request's room ------------------------------ */

static uint8_t *nlm4_prep_netobj(sgn_netobj *o, uint8_t *room)
{
	o->sgn_netobj_val = (char *)room;
	return room + NLM_MAXNETOBJ;
}

/* The cookie, then the lock: NLM4_ARGS_ROOM bytes in all. */
static void nlm4_prep(sgn_netobj *cookie, nlm4_lock *l, uint8_t *room)
{
	room = nlm4_prep_netobj(cookie, room);
	l->caller_name = (char *)room;      /* NUL-terminated by XDR */
	room += NLM_MAXSTRLEN + 1;
	room = nlm4_prep_netobj(&l->fh, room);
	nlm4_prep_netobj(&l->oh, room);
}

static void nlm4_forget(const struct rpc_req *req, char **p)
{
	if (*p && rpc_req_in_room(req, *p))
		*p = NULL;
}

static void nlm4_unprep(struct rpc_req *req, sgn_netobj *cookie, nlm4_lock *l)
{
	/* nlm4_res, nlm4_testres: both begin with the cookie */
	sgn_netobj *rcookie = req->res;

	nlm4_forget(req, &cookie->sgn_netobj_val);
	nlm4_forget(req, &l->caller_name);
	nlm4_forget(req, &l->fh.sgn_netobj_val);
	nlm4_forget(req, &l->oh.sgn_netobj_val);
	nlm4_forget(req, &rcookie->sgn_netobj_val);
}

/* Each netobj's bytes start 8-aligned in a cut room, as in the full one
 * (a handle's bytes are read as fields where they are). */
#define NLM4_ALIGN(n) (((size_t)(n) + 7) & ~(size_t)7)

/* What a decoded cookie and lock use of a room laid out by nlm4_move. */
static size_t nlm4_room_used(const sgn_netobj *cookie, const nlm4_lock *l)
{
	return NLM4_ALIGN(cookie->sgn_netobj_len) + NLM4_ALIGN(l->fh.sgn_netobj_len) +
	       NLM4_ALIGN(l->oh.sgn_netobj_len) + strlen(l->caller_name) + 1;
}

static uint8_t *nlm4_move_netobj(sgn_netobj *to, const sgn_netobj *from, uint8_t *room)
{
	to->sgn_netobj_val = (char *)room;
	if (from->sgn_netobj_len)
		memcpy(room, from->sgn_netobj_val, from->sgn_netobj_len);
	return room + NLM4_ALIGN(from->sgn_netobj_len);
}

/* The cookie, fh and oh, then the caller_name: it is at least its NUL,
 * so every pointer set here, an empty netobj's too, is inside the room
 * (rpc_proc.args_move). */
static void nlm4_move(sgn_netobj *tc, nlm4_lock *tl, const sgn_netobj *fc, const nlm4_lock *fl,
		      uint8_t *room)
{
	room = nlm4_move_netobj(tc, fc, room);
	room = nlm4_move_netobj(&tl->fh, &fl->fh, room);
	room = nlm4_move_netobj(&tl->oh, &fl->oh, room);
	tl->caller_name = memcpy(room, fl->caller_name, strlen(fl->caller_name) + 1);
}

#define NLM4_ROOM_FNS(T)                                                     \
	void nlm4_prep_##T(void *args, uint8_t *room)                        \
	{                                                                    \
		nlm4_##T *a = args;                                          \
		nlm4_prep(&a->cookie, &a->alock, room);                      \
	}                                                                    \
	void nlm4_unprep_##T(struct rpc_req *req)                            \
	{                                                                    \
		nlm4_##T *a = req->args;                                     \
		nlm4_unprep(req, &a->cookie, &a->alock);                     \
	}                                                                    \
	size_t nlm4_room_used_##T(const void *args)                          \
	{                                                                    \
		const nlm4_##T *a = args;                                    \
		return nlm4_room_used(&a->cookie, &a->alock);                \
	}                                                                    \
	void nlm4_move_##T(void *to, const void *from, uint8_t *room)        \
	{                                                                    \
		nlm4_##T *t = to;                                            \
		const nlm4_##T *f = from;                                    \
		*t = *f;                                                     \
		nlm4_move(&t->cookie, &t->alock, &f->cookie, &f->alock, room); \
	}

NLM4_ROOM_FNS(testargs)
NLM4_ROOM_FNS(lockargs)
NLM4_ROOM_FNS(cancargs)
NLM4_ROOM_FNS(unlockargs)

/* ---- v1/v3 ------------------------------------------------------------ */

static nlm4_stats nlm3_widen_stat(sgn_nlm_stats s)
{
	return (nlm4_stats)s; /* 0..4 coincide */
}

/* Move (not copy) a v1/v3 lock into the v4 shape. */
static void nlm3_widen_lock(sgn_nlm_lock *l3, nlm4_lock *l4)
{
	l4->caller_name = l3->caller_name;
	l4->fh.sgn_netobj_len = l3->fh.sgn_netobj_len;
	l4->fh.sgn_netobj_val = l3->fh.sgn_netobj_val;
	l4->oh.sgn_netobj_len = l3->oh.sgn_netobj_len;
	l4->oh.sgn_netobj_val = l3->oh.sgn_netobj_val;
	l4->svid = l3->svid;
	l4->l_offset = l3->l_offset;
	l4->l_len = l3->l_len;
	memset(l3, 0, sizeof(*l3));
}

static void nlm3_move_netobj(sgn_netobj *from, sgn_netobj *to)
{
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/* Decode a v1/v3 structure of type T3 with X3, then move it into *a4 with
 * CONVERT.  On XDR_FREE, free *a4 as the v4 type. */
#define NLM3_WIDEN(name, T3, X3, T4, X4, CONVERT)                           \
	bool_t nlm3_xdr_##name(XDR *x, T4 *a4)                                \
	{                                                                     \
		T3 a3;                                                        \
		if (x->x_op == XDR_FREE)                                      \
			return X4(x, a4);                                     \
		if (x->x_op != XDR_DECODE)                                    \
			return FALSE;                                         \
		memset(&a3, 0, sizeof(a3));                                   \
		if (!X3(x, &a3)) {                                            \
			xdr_free((xdrproc_t)X3, (char *)&a3);                 \
			return FALSE;                                         \
		}                                                             \
		CONVERT;                                                      \
		return TRUE;                                                  \
	}

static void nlm3_clamp(uint64_t off, uint64_t len, u_int *off32, u_int *len32);

/* testargs is also *sent* (GRANTED callbacks to v1/v3 clients), so unlike
 * the other argument types it encodes too. */
bool_t nlm3_xdr_testargs(XDR *x, nlm4_testargs *a4)
{
	sgn_nlm_testargs a3;

	if (x->x_op == XDR_FREE)
		return xdr_nlm4_testargs(x, a4);
	memset(&a3, 0, sizeof(a3));
	if (x->x_op == XDR_ENCODE) {
		a3.cookie = a4->cookie;
		a3.exclusive = a4->exclusive;
		a3.alock.caller_name = a4->alock.caller_name;
		a3.alock.fh = a4->alock.fh;
		a3.alock.oh = a4->alock.oh;
		a3.alock.svid = a4->alock.svid;
		nlm3_clamp(a4->alock.l_offset, a4->alock.l_len, &a3.alock.l_offset,
			   &a3.alock.l_len);
		return xdr_sgn_nlm_testargs(x, &a3);
	}
	if (!xdr_sgn_nlm_testargs(x, &a3)) {
		xdr_free((xdrproc_t)xdr_sgn_nlm_testargs, (char *)&a3);
		return FALSE;
	}
	nlm3_move_netobj(&a3.cookie, &a4->cookie);
	a4->exclusive = a3.exclusive;
	nlm3_widen_lock(&a3.alock, &a4->alock);
	return TRUE;
}

NLM3_WIDEN(lockargs, sgn_nlm_lockargs, xdr_sgn_nlm_lockargs, nlm4_lockargs, xdr_nlm4_lockargs, {
	nlm3_move_netobj(&a3.cookie, &a4->cookie);
	a4->block = a3.block;
	a4->exclusive = a3.exclusive;
	nlm3_widen_lock(&a3.alock, &a4->alock);
	a4->reclaim = a3.reclaim;
	a4->state = a3.state;
})

NLM3_WIDEN(cancargs, sgn_nlm_cancargs, xdr_sgn_nlm_cancargs, nlm4_cancargs, xdr_nlm4_cancargs, {
	nlm3_move_netobj(&a3.cookie, &a4->cookie);
	a4->block = a3.block;
	a4->exclusive = a3.exclusive;
	nlm3_widen_lock(&a3.alock, &a4->alock);
})

NLM3_WIDEN(unlockargs, sgn_nlm_unlockargs, xdr_sgn_nlm_unlockargs, nlm4_unlockargs, xdr_nlm4_unlockargs, {
	nlm3_move_netobj(&a3.cookie, &a4->cookie);
	nlm3_widen_lock(&a3.alock, &a4->alock);
})

NLM3_WIDEN(shareargs, sgn_nlm_shareargs, xdr_sgn_nlm_shareargs, nlm4_shareargs, xdr_nlm4_shareargs, {
	nlm3_move_netobj(&a3.cookie, &a4->cookie);
	a4->share.caller_name = a3.share.caller_name;
	a3.share.caller_name = NULL;
	nlm3_move_netobj(&a3.share.fh, &a4->share.fh);
	nlm3_move_netobj(&a3.share.oh, &a4->share.oh);
	a4->share.mode = (fsh4_mode)a3.share.mode;
	a4->share.access = (fsh4_access)a3.share.access;
	a4->reclaim = a3.reclaim;
})

NLM3_WIDEN(notify, sgn_nlm_notify, xdr_sgn_nlm_notify, nlm4_notify, xdr_nlm4_notify, {
	a4->name = a3.name;
	a3.name = NULL;
	a4->state = a3.state;
})

/* Clamp a 64-bit range into the 32-bit holder fields (see header). */
static void nlm3_clamp(uint64_t off, uint64_t len, u_int *off32, u_int *len32)
{
	const uint64_t max32 = 0xffffffffu;
	uint64_t end = len == 0 ? UINT64_MAX : off + len - 1; /* checked at grant */

	*off32 = (u_int)(off > max32 ? max32 : off);
	if (len == 0 || end > max32)
		*len32 = 0;
	else
		*len32 = (u_int)len;
}

bool_t nlm3_xdr_res(XDR *x, nlm4_res *r)
{
	sgn_nlm_res r3;

	if (x->x_op == XDR_FREE)
		return xdr_nlm4_res(x, r);
	if (x->x_op == XDR_DECODE) {
		memset(&r3, 0, sizeof(r3));
		if (!xdr_sgn_nlm_res(x, &r3)) {
			xdr_free((xdrproc_t)xdr_sgn_nlm_res, (char *)&r3);
			return FALSE;
		}
		nlm3_move_netobj(&r3.cookie, &r->cookie);
		r->stat.stat = nlm3_widen_stat(r3.stat.stat);
		return TRUE;
	}
	/* Borrow the pointers for encoding; nothing is freed here. */
	r3.cookie = r->cookie;
	r3.stat.stat = nlm3_stat(r->stat.stat);
	return xdr_sgn_nlm_res(x, &r3);
}

bool_t nlm3_xdr_testres(XDR *x, nlm4_testres *r)
{
	sgn_nlm_testres r3;

	if (x->x_op == XDR_FREE)
		return xdr_nlm4_testres(x, r);
	memset(&r3, 0, sizeof(r3));
	if (x->x_op == XDR_DECODE) {
		if (!xdr_sgn_nlm_testres(x, &r3)) {
			xdr_free((xdrproc_t)xdr_sgn_nlm_testres, (char *)&r3);
			return FALSE;
		}
		nlm3_move_netobj(&r3.cookie, &r->cookie);
		r->test_stat.stat = nlm3_widen_stat(r3.test_stat.stat);
		if (r3.test_stat.stat == LCK_DENIED) {
			sgn_nlm_holder *h3 = &r3.test_stat.sgn_nlm_testrply_u.holder;
			nlm4_holder *h4 = &r->test_stat.nlm4_testrply_u.holder;
			h4->exclusive = h3->exclusive;
			h4->svid = h3->svid;
			nlm3_move_netobj(&h3->oh, &h4->oh);
			h4->l_offset = h3->l_offset;
			h4->l_len = h3->l_len;
		}
		return TRUE;
	}
	r3.cookie = r->cookie;
	r3.test_stat.stat = nlm3_stat(r->test_stat.stat);
	if (r->test_stat.stat == NLM4_DENIED) {
		const nlm4_holder *h4 = &r->test_stat.nlm4_testrply_u.holder;
		sgn_nlm_holder *h3 = &r3.test_stat.sgn_nlm_testrply_u.holder;
		h3->exclusive = h4->exclusive;
		h3->svid = h4->svid;
		h3->oh = h4->oh;
		nlm3_clamp(h4->l_offset, h4->l_len, &h3->l_offset, &h3->l_len);
	}
	return xdr_sgn_nlm_testres(x, &r3);
}

bool_t nlm3_xdr_shareres(XDR *x, nlm4_shareres *r)
{
	sgn_nlm_shareres r3;

	if (x->x_op == XDR_FREE)
		return xdr_nlm4_shareres(x, r);
	if (x->x_op == XDR_DECODE) {
		memset(&r3, 0, sizeof(r3));
		if (!xdr_sgn_nlm_shareres(x, &r3)) {
			xdr_free((xdrproc_t)xdr_sgn_nlm_shareres, (char *)&r3);
			return FALSE;
		}
		nlm3_move_netobj(&r3.cookie, &r->cookie);
		r->stat = nlm3_widen_stat(r3.stat);
		r->sequence = r3.sequence;
		return TRUE;
	}
	r3.cookie = r->cookie;
	r3.stat = nlm3_stat(r->stat);
	r3.sequence = r->sequence;
	return xdr_sgn_nlm_shareres(x, &r3);
}
