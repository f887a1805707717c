/*
 * nlm_proc.c - the NLM procedures of versions 1, 3 and 4, the one grant
 * pipeline that LOCK and SHARE share, and the RPC tables.
 *
 * Inside, everything is 0 or a negative errno; nlm_reply() is the one place
 * where one becomes an nlm4_stats, at the boundary of every handler:
 *   0 GRANTED    -EAGAIN, -EACCES DENIED    -EBUSY DENIED_GRACE_PERIOD
 *   -EINPROGRESS BLOCKED    -EDEADLK DEADLCK    -EOVERFLOW FBIG
 *   -ESTALE STALE_FH    anything else (-ENOLCK, -ENOMEM, -EIO) DENIED_NOLOCKS
 *
 * Story of a LOCK (a SHARE is the same with a share for a range):
 *   1. Checks: the grace rule (nlm_grace_refuses); the file handle must
 *      carry the fsid of one of the exports of the group whose VIP the
 *      request came to (else STALE_FH: a group's locks are decided only by
 *      the node serving that group); the range (overflow is FBIG); the
 *      caller_name and the per-address caps; in grace, another owner's
 *      reservation.  A request refused here writes nothing.
 *   2. The client is made durable on the group's client list (clist.h).
 *      A known client costs nothing; a new one waits for the fsync, the
 *      request parked in ng->parked, and goes on at step 3 when it is
 *      durable.  A failed write refuses the lock: it is never granted.
 *   3. The lock engine decides on the state of that moment: granted,
 *      denied, blocked (queued, nlm_grant.c), deadlock or too many waiters.
 *   4. A grant is appended to the journal (taken back if it cannot be).
 *   5. The reply waits, parked again, until that record is durable, and
 *      goes back as the RPC reply, or for the _MSG procedures as a call to
 *      the client's matching _RES procedure (nlm_cb.c).
 */
#include "nlm/nlm_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "group/gslot.h"
#include "journal/journal.h"
#include "lock/lock.h"
#include "log.h"
#include "nfs/export.h"
#include "nfs/fh.h"
#include "nlm/nlm_cb.h"
#include "nlm/nlm_grant.h"
#include "nlm/nlm_host.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_svc.h"
#include "nlm/nlm_xdr.h"
#include "nsm/clist.h"
#include "nsm.h"

/* ---- replies: the one errno -> nlm4_stats mapping ---------------------- */

static nlm4_stats nlm_stat_of(int rc)
{
	switch (rc) {
	case 0:
		return NLM4_GRANTED;
	case -EAGAIN:      /* a conflicting lock, share or reservation */
	case -EACCES:      /* the address may not use the export */
		return NLM4_DENIED;
	case -EBUSY:       /* grace: only reclaims now */
		return NLM4_DENIED_GRACE_PERIOD;
	case -EINPROGRESS:
		return NLM4_BLOCKED;
	case -EDEADLK:
		return NLM4_DEADLCK;
	case -EOVERFLOW:
		return NLM4_FBIG;
	case -ESTALE:      /* not a handle of this group */
		return NLM4_STALE_FH;
	default:           /* -ENOLCK, -ENOMEM, -EIO, -EINVAL */
		return NLM4_DENIED_NOLOCKS;
	}
}

/* Result procedure of each _MSG procedure: TEST_MSG (6) -> TEST_RES (11). */
#define NLM_RES_OF(msgproc) ((msgproc) + 5)

static xdrproc_t nlm_xdr_for_res(uint32_t vers, uint32_t proc)
{
	bool v4 = vers == 4;

	switch (proc) {
	case NLMPROC_TEST_MSG:
		return v4 ? (xdrproc_t)xdr_nlm4_testres : (xdrproc_t)nlm3_xdr_testres;
	default:
		return v4 ? (xdrproc_t)xdr_nlm4_res : (xdrproc_t)nlm3_xdr_res;
	}
}

/*
 * Finish @req whose result is in req->res: the RPC reply for the synchronous
 * procedures; for the _MSG ones (GRANTED_MSG included) a void RPC reply and
 * the result sent as a call to the client's _RES procedure.  Frees @req.
 */
static void nlm_finish(struct rpc_req *req)
{
	bool is_msg = req->proc >= NLMPROC_TEST_MSG && req->proc <= NLMPROC_GRANTED_MSG;

	if (is_msg) {
		struct nlm_group *ng = nlm_grp(req);
		struct nlm_cb_target t;
		int rc;

		nlm_target(req, &t);
		rc = nlm_cb_send(ng->cb, &t, NLM_RES_OF(req->proc),
				 nlm_xdr_for_res(req->vers, req->proc), req->res);
		if (rc < 0) {
			char a[80];
			log_warn("group=%s client=%s cannot send %s result: %s", ng->name,
				 rpc_addr_str(&req->peer, false, a, sizeof(a)), req->pd->name,
				 strerror(-rc));
		}
	}
	rpc_req_finish(req, RPC_DONE_REPLY);
}

/*
 * The boundary of every handler: @rc (0 or -errno) becomes the status of
 * @req's result, and the result goes out.  @req is done when this returns.
 */
static enum rpc_disposition nlm_reply(struct rpc_req *req, int rc)
{
	nlm4_stats st = nlm_stat_of(rc);

	switch (req->proc) {
	case NLMPROC_TEST:
	case NLMPROC_TEST_MSG:
		((nlm4_testres *)req->res)->test_stat.stat = st;
		break;
	case NLMPROC_SHARE:
	case NLMPROC_UNSHARE:
		((nlm4_shareres *)req->res)->stat = st;
		break;
	default:
		((nlm4_res *)req->res)->stat.stat = st;
		break;
	}
	nlm_finish(req);
	return RPC_DONE_ASYNC; /* nlm_finish completed it */
}

/* ---- checks ----------------------------------------------------------- */

/*
 * The file handle must belong to an export of this group, and @peer must be
 * in that export's `clients`, as for MOUNT and NFS (a handle is not a
 * capability).  No disk access: the engine keys locks by handle bytes, which
 * are stable for a file (fh.h), and locking a file that has since been
 * removed harms no one.  Returns 0, -ESTALE (not a handle of this group) or
 * -EACCES (the address may not use the export; logged, one line a second
 * per group with a count of the rest).  `secure` is not applied: lockd's
 * port says nothing about who asks (Linux's default).
 */
static int nlm_fh_check(struct nlm_group *ng, const sgn_netobj *fh,
			const struct sockaddr_storage *peer, const char *proc)
{
	const struct cfg_group *gc = ng->gp->cfg;
	const struct cfg_export *e = NULL;
	uint32_t fsid;
	uint64_t now;
	char a[80];

	if (fh->sgn_netobj_len == 0 || fh->sgn_netobj_len > LK_KEY_MAX)
		return -ESTALE;
	int rc = fh_verify(fh->sgn_netobj_val, fh->sgn_netobj_len, &fsid);

	/* The MAC makes a made-up handle useless for NLM too: without it a
	 * host could lock (and TEST for holders of) handles it never got. */
	if (rc == -FH_EMAC)
		fh_log_badmac(ng->name, peer, proc);
	if (rc < 0)
		return -ESTALE;
	for (size_t i = 0; i < gc->nexports && !e; i++)
		if (gc->exports[i]->fsid == fsid)
			e = gc->exports[i];
	if (!e)
		return -ESTALE;
	if (exp_check_client(e, peer) != EXP_DENY_ADDRESS)
		return 0;
	ng->refused_clients++;
	now = uv_now(nlm_loop(ng));
	if (ng->refused_logged_ms && now - ng->refused_logged_ms < 1000) {
		ng->refused_quiet++;
		return -EACCES;
	}
	log_warn("group=%s client=%s %s on export %s refused: address not in its clients "
		 "(%" PRIu64 " more refusals not logged)", ng->name,
		 rpc_addr_str(peer, false, a, sizeof(a)), proc, e->path, ng->refused_quiet);
	ng->refused_logged_ms = now;
	ng->refused_quiet = 0;
	return -EACCES;
}

static int nlm_copy_netobj(sgn_netobj *dst, const sgn_netobj *src)
{
	dst->sgn_netobj_len = 0;
	dst->sgn_netobj_val = NULL;
	if (src->sgn_netobj_len == 0)
		return 0;
	dst->sgn_netobj_val = malloc(src->sgn_netobj_len);
	if (!dst->sgn_netobj_val)
		return -ENOMEM;
	memcpy(dst->sgn_netobj_val, src->sgn_netobj_val, src->sgn_netobj_len);
	dst->sgn_netobj_len = src->sgn_netobj_len;
	return 0;
}

/*
 * The results' cookie is the arguments': where those were decoded into the
 * request's room (v4, nlm_xdr.h) it points at the same bytes, which live as
 * long as the results and are not freed with them (the procedure's
 * args_unprep clears it); else a copy.
 */
static int nlm_echo_cookie(const struct rpc_req *req, sgn_netobj *dst, const sgn_netobj *src)
{
	if (rpc_req_in_room(req, src->sgn_netobj_val)) {
		*dst = *src;
		return 0;
	}
	return nlm_copy_netobj(dst, src);
}

/*
 * The grace rule (docs/nlm.md), per group:
 *   in grace:     LOCK, NM_LOCK, SHARE without reclaim and TEST are refused
 *                 (-EBUSY: DENIED_GRACE_PERIOD); reclaims are granted.  With
 *                 a trusted journal (reservations, nlm_journal.c) only those
 *                 that conflict with another owner's reservation are
 *                 refused: the caller checks that once it knows the owner;
 *   out of grace: a reclaim is refused (-ENOLCK): nothing can be reclaimed
 *                 that the group did not announce (but see nlm_proc_lock);
 *   always:       UNLOCK, UNSHARE, CANCEL, FREE_ALL and the _RES/GRANTED
 *                 answers are served: they only give things up.
 * Returns 0 to proceed.
 */
static int nlm_grace_refuses(const struct nlm_group *ng, bool is_reclaim)
{
	if (grp_in_grace(ng->gp) && !is_reclaim && !ng->resv)
		return -EBUSY;
	if (!grp_in_grace(ng->gp) && is_reclaim)
		return -ENOLCK;
	return 0;
}

/*
 * The host a request names: a usable caller_name, within the per-address
 * and node caps (@new_lock: it would take something new; @reclaim: it takes
 * back what it held, nlm_addr_caps), recorded with the address it came
 * from.  0 with *host referenced for the request (nlm_host_put), or -ENOLCK.
 */
static int nlm_host_admit(struct nlm_group *ng, const struct rpc_req *req, const char *name,
			  bool new_lock, bool reclaim, struct nlm_host **host)
{
	/* The host remembered for the address (nlm_host_recall): its name
	 * passed the checks when it was made, so neither they nor the keyed
	 * lookup run again.  The caps are counted for every new lock
	 * whatever. */
	struct nlm_host *h = nlm_host_recall(ng, &req->peer, name);
	bool known = h != NULL;

	if (!known && (!name || clist_name_check(name, strlen(name)) < 0)) {
		char nm[LOG_SAFE_MAX];
		log_warn("group=%s client=%s %s refused: unusable caller_name", ng->name,
			 nlm_safe(nm, sizeof(nm), name), req->pd->name);
		return -ENOLCK;
	}
	if (new_lock && nlm_addr_caps(ng, name, &req->peer, true, reclaim) < 0) {
		ng->refused_caps++;
		return -ENOLCK;
	}
	if (!known) {
		h = nlm_host_get(ng, name);
		if (!h)
			return -ENOLCK;
		nlm_host_remember(ng, &req->peer, h);
	}
	nlm_host_seen(ng, h, &req->peer);
	/* Held for the whole request: what it releases may otherwise free
	 * the host under us (nlm_host_put). */
	h->refs++;
	*host = h;
	return 0;
}

/*
 * Common checks and owner lookup for a request naming @lk.  0 with *host
 * (referenced), *o (a reference: put it) and *r set, or -errno.
 */
static int nlm_prepare(struct nlm_group *ng, const struct rpc_req *req, const nlm4_lock *lk,
		       bool new_lock, bool reclaim, struct nlm_host **host, struct lk_owner **o,
		       struct lk_range *r)
{
	int rc = nlm_fh_check(ng, &lk->fh, &req->peer, req->pd->name);

	if (rc < 0)
		return rc;
	if (lk_range_make(lk->l_offset, lk->l_len, r) < 0)
		return -EOVERFLOW;
	rc = nlm_host_admit(ng, req, lk->caller_name, new_lock, reclaim, host);
	if (rc < 0)
		return rc;
	if (lk_owner_get(ng->locks, (*host)->lkc, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
			 lk->oh.sgn_netobj_len, o) < 0) {
		nlm_host_put(ng, *host);
		return -ENOLCK;
	}
	return 0;
}

/* ---- the grant pipeline (LOCK and SHARE) -------------------------------- */

struct nlm_claim;

/* What differs between a lock and a share on the way to a grant. */
struct nlm_claim_ops {
	/* The engine decides: 0 granted, -EINPROGRESS queued, -errno. */
	int (*engine)(struct nlm_claim *c);
	/* Append the grant's record; on -errno the grant is undone. */
	int (*record)(struct nlm_claim *c);
	/* After a grant: what it settles of the reservations. */
	void (*granted)(struct nlm_claim *c);
	/* The record did not become durable: take the grant back. */
	void (*take_back)(struct nlm_claim *c);
};

/* A LOCK or SHARE on its way through the pipeline. */
struct nlm_claim {
	const struct nlm_claim_ops *ops;
	struct nlm_group *ng;
	struct rpc_req *req;        /* args and result; finished at the end */
	struct nlm_host *host;      /* a reference, dropped at the end */
	struct lk_owner *o;         /* a reference or NULL, dropped at the end */
	/* The owner held some of the range before the engine step: a grant
	 * that is not made durable then stays (see nlm_lock_undo). */
	bool held_before;
};

/* A claim waiting for the disk: its client to be durable on the client
 * list (then it goes on at the engine), or its grant to be durable in the
 * journal (then it is answered). */
struct nlm_parked {
	struct nlm_parked *next, *prev; /* in ng->parked */
	struct nlm_claim c;             /* c.host: the parked claim's own reference;
	                                   c.o is NULL */
	bool journal;                   /* waiting for the journal, not the list */
};

static enum rpc_disposition nlm_claim_end(struct nlm_claim *c, int rc)
{
	if (c->o)
		lk_owner_put(c->ng->locks, c->o);
	nlm_host_put(c->ng, c->host);
	return nlm_reply(c->req, rc);
}

static void nlm_parked_unlink(struct nlm_parked *p)
{
	struct nlm_group *ng = p->c.ng;

	if (p->prev)
		p->prev->next = p->next;
	else
		ng->parked = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

static void nlm_parked_done(void *arg, int rc);

/*
 * Park @c until the disk says yes: its client on the list (@journal false)
 * or its grant's record (@journal true).  1: nothing to wait for, go on;
 * 0: parked (the parked claim holds its own host reference); -ENOLCK or
 * -ENOMEM: refuse.
 */
static int nlm_claim_park(struct nlm_claim *c, bool journal)
{
	struct nlm_group *ng = c->ng;
	struct nlm_parked *p;
	int rc;

	if (journal && !ng->jr)
		return 1;
	/* A known client costs nothing, not even the parking slot. */
	if (!journal && clist_hold_listed(ng->clients, c->host->name, c->host->chash,
					    &c->req->peer))
		return 1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = *c;
	p->c.o = NULL;
	p->journal = journal;
	rc = journal ? jr_wait(ng->jr, nlm_parked_done, p)
		     : clist_ensure(ng->clients, c->host->name, &c->req->peer, nlm_parked_done, p);
	if (rc != 0) {
		free(p);
		return rc == 1 ? 1 : -ENOLCK;
	}
	c->host->refs++;
	p->next = ng->parked;
	if (ng->parked)
		ng->parked->prev = p;
	ng->parked = p;
	return 0;
}

/* Park @c, which goes on elsewhere: the request's own references go. */
static enum rpc_disposition nlm_claim_parked(struct nlm_claim *c)
{
	if (c->o)
		lk_owner_put(c->ng->locks, c->o);
	nlm_host_put(c->ng, c->host);
	return RPC_DONE_ASYNC;
}

static void nlm_claim_take_back(struct nlm_claim *c)
{
	char nm[LOG_SAFE_MAX];

	c->ops->take_back(c);
	log_warn("group=%s client=%s %s refused: the journal cannot record it", c->ng->name,
		 nlm_safe(nm, sizeof(nm), c->host->name), c->req->pd->name);
}

/* Steps 3-5: engine, journal, park until durable. */
static enum rpc_disposition nlm_claim_grant(struct nlm_claim *c)
{
	int rc = c->ops->engine(c);

	/* Journal the grant before anything it caused (a downgrade may
	 * grant waiters), and answer once it is durable. */
	if (rc == 0)
		rc = c->ops->record(c);
	nlm_flush_grants(c->ng);
	if (rc < 0)
		return nlm_claim_end(c, rc);
	rc = nlm_claim_park(c, true);
	if (rc < 0) {
		nlm_claim_take_back(c);
		return nlm_claim_end(c, -ENOLCK);
	}
	if (rc == 0)
		return nlm_claim_parked(c); /* granted() once durable: nlm_parked_done */
	/* The grant stands: its reservation and maybe the grace go now,
	 * never for a grant that is taken back. */
	c->ops->granted(c);
	return nlm_claim_end(c, 0);
}

/* Steps 2-5, once @c passed its checks. */
static enum rpc_disposition nlm_claim_run(struct nlm_claim *c)
{
	int rc = nlm_claim_park(c, false);

	if (rc == 0)
		return nlm_claim_parked(c);
	if (rc < 0)
		return nlm_claim_end(c, rc);
	return nlm_claim_grant(c);
}

static void nlm_parked_done(void *arg, int rc)
{
	struct nlm_parked *p = arg;
	struct nlm_claim c = p->c; /* takes over the parked host reference */
	bool journal = p->journal;

	nlm_parked_unlink(p);
	if (journal) {
		if (rc < 0) {
			/* Not durable: refused, and the owner keeps its
			 * reservation (granted() did not run). */
			nlm_claim_take_back(&c);
			rc = -ENOLCK;
		} else {
			c.ops->granted(&c);
		}
		nlm_claim_end(&c, rc);
		return;
	}
	if (rc < 0) {
		/* Logged by clist; the grant is refused, never given. */
		nlm_claim_end(&c, -ENOLCK);
		return;
	}
	/* Durable on the list: go on from the list step, not from the
	 * checks.  Asked again because the host, holding nothing while it
	 * waited, may have been marked idle there (nlm_host_maybe_idle); the
	 * answer is at once now, and the engine decides on the state of now
	 * (reservations only go away meanwhile). */
	nlm_claim_run(&c);
}

void nlm_parked_abandon(struct nlm_group *ng)
{
	while (ng->parked) {
		struct nlm_parked *p = ng->parked;
		ng->parked = p->next;
		rpc_req_finish(p->c.req, RPC_DONE_NOREPLY);
		free(p);
	}
}

/* -- a lock -- */

static int nlm_lock_engine(struct nlm_claim *c)
{
	struct nlm_group *ng = c->ng;
	const nlm4_lockargs *a = c->req->args;
	const nlm4_lock *lk = &a->alock;
	enum lk_type type = a->exclusive ? LK_EXCL : LK_SHARED;
	struct nlm_cb_target t;
	struct lk_range r;
	bool resv_block;

	if (lk_range_make(lk->l_offset, lk->l_len, &r) < 0)
		return -EOVERFLOW;
	if (!c->o && lk_owner_get(ng->locks, c->host->lkc, (uint32_t)lk->svid,
				  lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len, &c->o) < 0) {
		c->o = NULL;
		return -ENOLCK;
	}
	/* Only a grant that may not become durable is ever undone
	 * (nlm_lock_undo): without a journal there is none. */
	c->held_before = ng->jr && lk_holds_any(ng->locks, lk->fh.sgn_netobj_val,
						lk->fh.sgn_netobj_len, c->o, r);
	if (!a->block || c->req->proc == NLMPROC_NM_LOCK)
		return lk_lock(ng->locks, lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, c->o, type,
			       r, NULL);
	/* In grace, a blocking lock that conflicts only with a reservation
	 * waits behind it (nlm_resv_waiters_retry). */
	resv_block = grp_in_grace(ng->gp) &&
		     nlm_resv_conflicts_lock(ng, c->host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
					     lk->oh.sgn_netobj_len, lk->fh.sgn_netobj_val,
					     lk->fh.sgn_netobj_len, a->exclusive, r);
	nlm_target(c->req, &t);
	return nlm_block_queue(ng, c->host, c->o, lk, r, a->exclusive, resv_block, &t,
			       c->req->proc == NLMPROC_LOCK_MSG);
}

/*
 * Undo a LOCK grant that cannot be made durable, as far as that is safe.
 * Where the owner held nothing of the range before, unlocking the range
 * is the exact undo.  Where it held some (an upgrade, a merge, a second
 * LOCK of what it has), the engine has already replaced that state, and
 * unlocking the range would drop what the client still holds and believes
 * it holds: another host could then be granted it (two writers).  So the
 * grant stays: the client, told the LOCK failed, holds at least what it
 * believes; the extra it holds goes at its UNLOCK, its FREE_ALL or its
 * reboot.  Nothing of it is journaled, so a crash leaves what the
 * journal last recorded, which is what the client believes.  (A downgrade
 * still cannot be undone: the weaker lock stays; see docs/journal.md.)
 */
static void nlm_lock_undo(struct nlm_claim *c, bool journal_unlock)
{
	struct nlm_group *ng = c->ng;
	const nlm4_lock *lk = &((const nlm4_lockargs *)c->req->args)->alock;
	struct lk_owner *o;
	struct lk_range r;
	char nm[LOG_SAFE_MAX];

	if (lk_range_make(lk->l_offset, lk->l_len, &r) < 0)
		return;
	if (c->held_before) {
		log_warn("group=%s client=%s LOCK svid=%u not undone: the owner held part of the range before, so its grant stays unrecorded",
			 ng->name, nlm_safe(nm, sizeof(nm), c->host->name), (unsigned)lk->svid);
		return;
	}
	if (lk_owner_get(ng->locks, c->host->lkc, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
			 lk->oh.sgn_netobj_len, &o) < 0)
		return;
	if (journal_unlock)
		nlm_unlock_journaled(ng, c->host, o, lk->fh.sgn_netobj_val,
				     lk->fh.sgn_netobj_len, r);
	else
		lk_unlock(ng->locks, lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, o, r);
	lk_owner_put(ng->locks, o);
}

static int nlm_lock_record(struct nlm_claim *c)
{
	struct nlm_group *ng = c->ng;
	const nlm4_lockargs *a = c->req->args;
	const nlm4_lock *lk = &a->alock;
	struct lk_range r;

	lk_range_make(lk->l_offset, lk->l_len, &r); /* checked by the engine step */
	if (nlm_jr_lock(ng, true, c->host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
			lk->oh.sgn_netobj_len, lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len,
			a->exclusive, r) < 0) {
		nlm_lock_undo(c, false); /* nothing was appended: nothing to cancel */
		return -ENOLCK;
	}
	return 0;
}

/* The grant is recorded and will be answered: only now does the owner's
 * reservation there go (a reclaim refused at any step before keeps it, so
 * nobody else takes the range in grace), and with the last one the grace. */
static void nlm_lock_granted(struct nlm_claim *c)
{
	const nlm4_lockargs *a = c->req->args;
	const nlm4_lock *lk = &a->alock;
	char nm[LOG_SAFE_MAX];
	struct lk_range r;

	if (lk_range_make(lk->l_offset, lk->l_len, &r) == 0)
		nlm_resv_unlock(c->ng, c->host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
				lk->oh.sgn_netobj_len, lk->fh.sgn_netobj_val,
				lk->fh.sgn_netobj_len, r);
	if (a->reclaim)
		log_info("group=%s client=%s reclaimed a lock", c->ng->name,
			 nlm_safe(nm, sizeof(nm), c->host->name));
	nlm_resv_check_done(c->ng, "a reclaim");
	if (a->reclaim)
		nlm_resv_waiters_retry(c->ng);
}

static void nlm_lock_take_back(struct nlm_claim *c)
{
	nlm_lock_undo(c, true);
}

static const struct nlm_claim_ops nlm_lock_claim = {
	.engine = nlm_lock_engine,
	.record = nlm_lock_record,
	.granted = nlm_lock_granted,
	.take_back = nlm_lock_take_back,
};

/* -- a share (SHARE carries no svid: owners of shares use svid 0) -- */

static int nlm_share_engine(struct nlm_claim *c)
{
	const nlm4_share *sh = &((const nlm4_shareargs *)c->req->args)->share;

	if (!c->o && lk_owner_get(c->ng->locks, c->host->lkc, 0, sh->oh.sgn_netobj_val,
				  sh->oh.sgn_netobj_len, &c->o) < 0) {
		c->o = NULL;
		return -ENOLCK;
	}
	return lk_share(c->ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, c->o,
			(unsigned)sh->access, (unsigned)sh->mode);
}

static int nlm_share_record(struct nlm_claim *c)
{
	const nlm4_share *sh = &((const nlm4_shareargs *)c->req->args)->share;

	if (nlm_jr_share(c->ng, true, c->host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
			 sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, (unsigned)sh->access,
			 (unsigned)sh->mode) < 0) {
		lk_unshare(c->ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, c->o);
		return -ENOLCK;
	}
	return 0;
}

static void nlm_share_granted(struct nlm_claim *c)
{
	const nlm4_share *sh = &((const nlm4_shareargs *)c->req->args)->share;

	/* As nlm_lock_granted: the reservation goes once the grant stands. */
	nlm_resv_unshare(c->ng, c->host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
			 sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len);
	nlm_resv_check_done(c->ng, "a SHARE");
	nlm_resv_waiters_retry(c->ng);
}

static void nlm_share_take_back(struct nlm_claim *c)
{
	const nlm4_share *sh = &((const nlm4_shareargs *)c->req->args)->share;
	struct lk_owner *o;

	if (lk_owner_get(c->ng->locks, c->host->lkc, 0, sh->oh.sgn_netobj_val,
			 sh->oh.sgn_netobj_len, &o) == 0) {
		lk_unshare(c->ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, o);
		lk_owner_put(c->ng->locks, o);
	}
}

static const struct nlm_claim_ops nlm_share_claim = {
	.engine = nlm_share_engine,
	.record = nlm_share_record,
	.granted = nlm_share_granted,
	.take_back = nlm_share_take_back,
};

/* ---- the procedures --------------------------------------------------- */

static enum rpc_disposition nlm_proc_null(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

/* TEST, TEST_MSG */
static enum rpc_disposition nlm_proc_test(struct rpc_req *req)
{
	struct nlm_group *ng = nlm_grp(req);
	const nlm4_testargs *a = req->args;
	nlm4_testres *res = req->res;
	struct nlm_host *host;
	struct lk_owner *o;
	struct lk_lockinfo holder;
	struct lk_range r;
	int rc, frc;

	if (nlm_echo_cookie(req, &res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	rc = nlm_grace_refuses(ng, false);
	if (rc == 0)
		rc = nlm_prepare(ng, req, &a->alock, false, false, &host, &o, &r);
	else if ((frc = nlm_fh_check(ng, &a->alock.fh, &req->peer, req->pd->name)) < 0)
		rc = frc; /* a foreign or refused handle says so even in grace */
	if (rc < 0)
		return nlm_reply(req, rc);
	if (grp_in_grace(ng->gp) &&
	    nlm_resv_conflicts_lock(ng, host, (uint32_t)a->alock.svid, a->alock.oh.sgn_netobj_val,
				    a->alock.oh.sgn_netobj_len, a->alock.fh.sgn_netobj_val,
				    a->alock.fh.sgn_netobj_len, a->exclusive, r)) {
		/* The holder is a lock not reclaimed yet: not reportable. */
		rc = -EBUSY;
	} else if (lk_test(ng->locks, a->alock.fh.sgn_netobj_val, a->alock.fh.sgn_netobj_len, o,
		    a->exclusive ? LK_EXCL : LK_SHARED, r, &holder) == -EAGAIN) {
		nlm4_holder *h = &res->test_stat.nlm4_testrply_u.holder;
		size_t ohlen;
		const void *oh = lk_owner_oh(holder.owner, &ohlen);

		rc = -EAGAIN;
		h->exclusive = holder.type == LK_EXCL;
		h->svid = (int)lk_owner_svid(holder.owner);
		h->l_offset = holder.range.start;
		h->l_len = lk_range_len(&holder.range);
		if (ohlen) {
			h->oh.sgn_netobj_val = malloc(ohlen);
			if (h->oh.sgn_netobj_val) {
				memcpy(h->oh.sgn_netobj_val, oh, ohlen);
				h->oh.sgn_netobj_len = (u_int)ohlen;
			}
		}
	}
	lk_owner_put(ng->locks, o);
	nlm_host_put(ng, host);
	return nlm_reply(req, rc);
}

/* LOCK, LOCK_MSG, NM_LOCK: the checks, then the grant pipeline. */
static enum rpc_disposition nlm_proc_lock(struct rpc_req *req)
{
	struct nlm_group *ng = nlm_grp(req);
	const nlm4_lockargs *a = req->args;
	nlm4_res *res = req->res;
	const nlm4_lock *lk = &a->alock;
	const void *fh = lk->fh.sgn_netobj_val;
	size_t fhlen = lk->fh.sgn_netobj_len;
	enum lk_type type = a->exclusive ? LK_EXCL : LK_SHARED;
	bool block = a->block && req->proc != NLMPROC_NM_LOCK;
	bool late_reclaim = a->reclaim && !grp_in_grace(ng->gp);
	struct nlm_claim c = { .ops = &nlm_lock_claim, .ng = ng, .req = req };
	struct lk_range r;
	char nm[LOG_SAFE_MAX];
	bool listed;
	int rc;

	if (nlm_echo_cookie(req, &res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	rc = nlm_grace_refuses(ng, a->reclaim);
	/* The grace rule refuses a reclaim out of grace; see just below. */
	if (rc == 0 || late_reclaim)
		rc = nlm_prepare(ng, req, lk, true, a->reclaim, &c.host, &c.o, &r);
	if (rc < 0)
		return nlm_reply(req, rc);
	/* A reclaim out of grace is refused, except one of a lock this owner
	 * holds already: a client whose SM_NOTIFY came late (its statd was
	 * unreachable at the takeover) locked anew, then reclaims the same
	 * lock.  Refused, Linux drops that lock from what it reclaims at the
	 * next failover while the server still holds it, and another host is
	 * granted it when that grace ends.  Holding it, nothing changes and
	 * nothing is journaled. */
	if (late_reclaim) {
		rc = lk_holds(ng->locks, fh, fhlen, c.o, type, r) ? 0 : -ENOLCK;
		log_info("group=%s client=%s reclaim out of grace: %s", ng->name,
			 nlm_safe(nm, sizeof(nm), c.host->name),
			 rc == 0 ? "held already, granted" : "not held, refused");
		return nlm_claim_end(&c, rc);
	}
	/* Grace with reservations: refuse only what would take another
	 * owner's lock away (a "reclaim" of such a range claims a lock the
	 * journal says someone else held: no).  A blocking one waits behind
	 * it (nlm_lock_engine). */
	if (grp_in_grace(ng->gp) && (!block || a->reclaim) &&
	    nlm_resv_conflicts_lock(ng, c.host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
				    lk->oh.sgn_netobj_len, fh, fhlen, a->exclusive, r))
		return nlm_claim_end(&c, a->reclaim ? -EAGAIN : -EBUSY);
	/* A request that will be refused at once grants nothing: no disk
	 * write, and no place on the list (nor a notification later).  A
	 * blocking one is listed: its GRANTED callback will be a grant.  A
	 * client durably listed already has nothing to write: the engine
	 * answers a conflict itself, changing nothing (the test here costs
	 * a second lookup of the file). */
	listed = !block && clist_listed(ng->clients, c.host->name, c.host->chash, &req->peer);
	if (!block && !listed && lk_test(ng->locks, fh, fhlen, c.o, type, r, NULL) == -EAGAIN)
		return nlm_claim_end(&c, -EAGAIN);
	if (!nlm_jr_can_grant(ng, c.host)) {
		/* A conflict is still DENIED, whatever the journal. */
		if (!block && listed && lk_test(ng->locks, fh, fhlen, c.o, type, r, NULL) == -EAGAIN)
			return nlm_claim_end(&c, -EAGAIN);
		return nlm_claim_end(&c, -ENOLCK);
	}
	return nlm_claim_run(&c);
}

/* What CANCEL and UNLOCK do once the request is checked: give something up. */
typedef int (*nlm_release_fn)(struct nlm_group *ng, struct nlm_host *h, const nlm4_lock *lk,
			      struct lk_owner *o, struct lk_range r, bool exclusive);

static int nlm_do_cancel(struct nlm_group *ng, struct nlm_host *h, const nlm4_lock *lk,
			 struct lk_owner *o, struct lk_range r, bool exclusive)
{
	return nlm_block_cancel(ng, h, o, lk, exclusive, r);
}

static int nlm_do_unlock(struct nlm_group *ng, struct nlm_host *h, const nlm4_lock *lk,
			 struct lk_owner *o, struct lk_range r, bool exclusive)
{
	int rc = nlm_unlock_journaled(ng, h, o, lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, r);

	(void)exclusive;
	if (rc < 0)
		return rc;
	nlm_resv_unlock(ng, h, (uint32_t)lk->svid, lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len,
			lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, r);
	nlm_resv_check_done(ng, "an UNLOCK");
	nlm_resv_waiters_retry(ng);
	return 0;
}

/* The shared body of CANCEL and UNLOCK (and their _MSG forms): served in
 * and out of grace, since they only give things up. */
static enum rpc_disposition nlm_run_release(struct rpc_req *req, const sgn_netobj *cookie,
					    const nlm4_lock *lk, bool exclusive,
					    nlm_release_fn fn)
{
	struct nlm_group *ng = nlm_grp(req);
	nlm4_res *res = req->res;
	struct nlm_host *host;
	struct lk_owner *o;
	struct lk_range r;
	int rc;

	if (nlm_echo_cookie(req, &res->cookie, cookie) < 0)
		return RPC_DONE_SYSERR;
	rc = nlm_prepare(ng, req, lk, false, false, &host, &o, &r);
	if (rc < 0)
		return nlm_reply(req, rc);
	rc = fn(ng, host, lk, o, r, exclusive);
	lk_owner_put(ng->locks, o);
	nlm_host_put(ng, host);
	return nlm_reply(req, rc);
}

/* CANCEL, CANCEL_MSG */
static enum rpc_disposition nlm_proc_cancel(struct rpc_req *req)
{
	const nlm4_cancargs *a = req->args;

	return nlm_run_release(req, &a->cookie, &a->alock, a->exclusive, nlm_do_cancel);
}

/* UNLOCK, UNLOCK_MSG */
static enum rpc_disposition nlm_proc_unlock(struct rpc_req *req)
{
	const nlm4_unlockargs *a = req->args;

	return nlm_run_release(req, &a->cookie, &a->alock, false, nlm_do_unlock);
}

/* GRANTED, GRANTED_MSG sent *to* us: we are no NLM client, so nothing of
 * ours is blocked; refuse, so the sender does not keep a lock for us. */
static enum rpc_disposition nlm_proc_granted(struct rpc_req *req)
{
	const nlm4_testargs *a = req->args;
	nlm4_res *res = req->res;

	if (nlm_echo_cookie(req, &res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	return nlm_reply(req, -EAGAIN);
}

/* GRANTED_RES: a client's answer to our GRANTED_MSG (nlm_granted_res). */
static enum rpc_disposition nlm_proc_granted_res(struct rpc_req *req)
{
	const nlm4_res *a = req->args;

	nlm_granted_res(nlm_grp(req), &req->peer, a->cookie.sgn_netobj_val,
			a->cookie.sgn_netobj_len, a->stat.stat == NLM4_GRANTED);
	return RPC_DONE_REPLY;
}

/* The other _RES procedures: answers to _MSG calls we never make. */
static enum rpc_disposition nlm_proc_res_ignored(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

/* UNSHARE: gives something up, so no list and no wait for the journal (a
 * release lost in a crash leaves a reservation nobody reclaims). */
static enum rpc_disposition nlm_unshare(struct nlm_claim *c)
{
	const nlm4_share *sh = &((const nlm4_shareargs *)c->req->args)->share;
	struct nlm_group *ng = c->ng;
	int rc;

	if (lk_owner_get(ng->locks, c->host->lkc, 0, sh->oh.sgn_netobj_val,
			 sh->oh.sgn_netobj_len, &c->o) < 0) {
		c->o = NULL;
		return nlm_claim_end(c, -ENOLCK);
	}
	rc = lk_unshare(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, c->o);
	if (rc == 0) {
		nlm_resv_unshare(ng, c->host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
				 sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len);
		nlm_jr_share(ng, false, c->host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
			     sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, (unsigned)sh->access,
			     (unsigned)sh->mode);
		nlm_resv_check_done(ng, "an UNSHARE");
		nlm_resv_waiters_retry(ng);
	}
	return nlm_claim_end(c, rc);
}

/* SHARE, UNSHARE */
static enum rpc_disposition nlm_proc_share(struct rpc_req *req)
{
	struct nlm_group *ng = nlm_grp(req);
	const nlm4_shareargs *a = req->args;
	nlm4_shareres *res = req->res;
	const nlm4_share *sh = &a->share;
	bool unshare = req->proc == NLMPROC_UNSHARE;
	bool late_reclaim = !unshare && a->reclaim && !grp_in_grace(ng->gp);
	struct nlm_claim c = { .ops = &nlm_share_claim, .ng = ng, .req = req };
	struct lk_owner *o;
	int rc;

	if (nlm_echo_cookie(req, &res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	rc = unshare ? 0 : nlm_grace_refuses(ng, a->reclaim);
	/* A reclaim out of grace goes on to the check below (nlm_proc_lock). */
	if (rc < 0 && !late_reclaim)
		return nlm_reply(req, rc);
	rc = nlm_fh_check(ng, &sh->fh, &req->peer, req->pd->name);
	if (rc == 0)
		rc = nlm_host_admit(ng, req, sh->caller_name, !unshare, !unshare && a->reclaim,
				    &c.host);
	if (rc < 0)
		return nlm_reply(req, rc);
	if (late_reclaim) {
		/* Granted only if held already: see nlm_proc_lock. */
		char nm[LOG_SAFE_MAX];

		rc = -ENOLCK;
		if (lk_owner_get(ng->locks, c.host->lkc, 0, sh->oh.sgn_netobj_val,
				 sh->oh.sgn_netobj_len, &o) == 0) {
			if (lk_share_holds(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len,
					   o, (unsigned)sh->access, (unsigned)sh->mode))
				rc = 0;
			lk_owner_put(ng->locks, o);
		}
		log_info("group=%s client=%s share reclaim out of grace: %s", ng->name,
			 nlm_safe(nm, sizeof(nm), c.host->name),
			 rc == 0 ? "held already, granted" : "not held, refused");
		return nlm_claim_end(&c, rc);
	}
	if (unshare)
		return nlm_unshare(&c);
	if (grp_in_grace(ng->gp) &&
	    nlm_resv_conflicts_share(ng, c.host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
				     sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len,
				     (unsigned)sh->access, (unsigned)sh->mode))
		return nlm_claim_end(&c, a->reclaim ? -EAGAIN : -EBUSY);
	if (!nlm_jr_can_grant(ng, c.host))
		return nlm_claim_end(&c, -ENOLCK);
	return nlm_claim_run(&c);
}

/*
 * FREE_ALL: the client's lockd restarted and gives up everything it had in
 * this group.  Honoured only from an address the client list records for
 * that name (docs/nlm.md), so a third host cannot drop a victim's locks.
 */
static enum rpc_disposition nlm_proc_free_all(struct rpc_req *req)
{
	const nlm4_notify *a = req->args;

	nlm_group_client_rebooted(nlm_grp(req), a->name, &req->peer, false, "FREE_ALL");
	return RPC_DONE_REPLY;
}

/*
 * Procedure 16, the private callback a local rpc.statd makes (my_proc of
 * its SM_MON) when a monitored host reboots.  Only this machine's statd may
 * call it: a privileged port on loopback.
 */
static enum rpc_disposition nlm_proc_sm_notify(struct rpc_req *req)
{
	const sgn_status *a = req->args;
	char ad[80];

	if (!rpc_addr_is_loopback(&req->peer) || rpc_addr_port(&req->peer) >= 1024) {
		log_warn("nlm: private SM_NOTIFY callback from %s refused: not a privileged local port",
			 rpc_addr_str(&req->peer, true, ad, sizeof(ad)));
		return RPC_DONE_REPLY;
	}
	nlm_group_client_rebooted(nlm_grp(req), a->mon_name, &req->peer, true, "statd callback");
	return RPC_DONE_REPLY;
}

/* ---- dispatch tables -------------------------------------------------- */

/* The RPC result of a _MSG procedure is void; its real result (held in
 * req->res as the synchronous procedure's type) goes out as a _RES call.
 * These encode nothing and free the held result. */
static bool_t nlm_xdr_msg_res(XDR *x, nlm4_res *r)
{
	return x->x_op == XDR_FREE ? xdr_nlm4_res(x, r) : TRUE;
}

static bool_t nlm_xdr_msg_testres(XDR *x, nlm4_testres *r)
{
	return x->x_op == XDR_FREE ? xdr_nlm4_testres(x, r) : TRUE;
}

/* A row; the optional last argument adds fields (ROOM below). */
#define NLM_P(NAME, fn_, A, XA, R, XR, ...) \
	[NLMPROC_##NAME] = { .name = #NAME, .fn = fn_, \
		.xdr_args = (xdrproc_t)XA, .args_size = sizeof(A), \
		.xdr_res = (xdrproc_t)XR, .res_size = sizeof(R) __VA_ARGS__ }

/* v4 arguments are decoded into the request's room (nlm_xdr.h); v1/v3 are
 * decoded in their 32-bit form and moved, and keep XDR's allocations. */
#define NLM_ROOM4(T) , .args_room = NLM4_ARGS_ROOM, .args_prep = nlm4_prep_##T, \
	.args_unprep = nlm4_unprep_##T, .args_room_used = nlm4_room_used_##T, \
	.args_move = nlm4_move_##T
#define NLM_ROOM3(T)

/* One row set per version; v1/v3 differ only in their edge XDR. */
#define NLM_PROCS(XTESTA, XLOCKA, XCANCA, XUNLA, XRES, XTESTRES, ROOM) \
	NLM_P(NULL, nlm_proc_null, char, rpc_xdr_void, char, rpc_xdr_void),                    \
	NLM_P(TEST, nlm_proc_test, nlm4_testargs, XTESTA, nlm4_testres, XTESTRES,               \
	      ROOM(testargs)),                                                                  \
	NLM_P(LOCK, nlm_proc_lock, nlm4_lockargs, XLOCKA, nlm4_res, XRES, ROOM(lockargs)),      \
	NLM_P(CANCEL, nlm_proc_cancel, nlm4_cancargs, XCANCA, nlm4_res, XRES, ROOM(cancargs)),  \
	NLM_P(UNLOCK, nlm_proc_unlock, nlm4_unlockargs, XUNLA, nlm4_res, XRES,                  \
	      ROOM(unlockargs)),                                                                \
	NLM_P(GRANTED, nlm_proc_granted, nlm4_testargs, XTESTA, nlm4_res, XRES, ROOM(testargs)), \
	NLM_P(TEST_MSG, nlm_proc_test, nlm4_testargs, XTESTA, nlm4_testres, nlm_xdr_msg_testres, \
	      ROOM(testargs)),                                                                  \
	NLM_P(LOCK_MSG, nlm_proc_lock, nlm4_lockargs, XLOCKA, nlm4_res, nlm_xdr_msg_res,        \
	      ROOM(lockargs)),                                                                  \
	NLM_P(CANCEL_MSG, nlm_proc_cancel, nlm4_cancargs, XCANCA, nlm4_res, nlm_xdr_msg_res,    \
	      ROOM(cancargs)),                                                                  \
	NLM_P(UNLOCK_MSG, nlm_proc_unlock, nlm4_unlockargs, XUNLA, nlm4_res, nlm_xdr_msg_res,   \
	      ROOM(unlockargs)),                                                                \
	NLM_P(GRANTED_MSG, nlm_proc_granted, nlm4_testargs, XTESTA, nlm4_res, nlm_xdr_msg_res,  \
	      ROOM(testargs)),                                                                  \
	NLM_P(TEST_RES, nlm_proc_res_ignored, nlm4_testres, XTESTRES, char, rpc_xdr_void),     \
	NLM_P(LOCK_RES, nlm_proc_res_ignored, nlm4_res, XRES, char, rpc_xdr_void),             \
	NLM_P(CANCEL_RES, nlm_proc_res_ignored, nlm4_res, XRES, char, rpc_xdr_void),           \
	NLM_P(UNLOCK_RES, nlm_proc_res_ignored, nlm4_res, XRES, char, rpc_xdr_void),           \
	NLM_P(GRANTED_RES, nlm_proc_granted_res, nlm4_res, XRES, char, rpc_xdr_void)

/* Not in any specification's table: the number Linux's lockd gives the
 * callback it asks statd for (SM_MON my_proc); real statd insists on it. */
#define NLMPROC_SM_NOTIFY 16
#define NLM_P_SM_NOTIFY \
	[NLMPROC_SM_NOTIFY] = { .name = "SM_NOTIFY", .fn = nlm_proc_sm_notify, \
		.xdr_args = (xdrproc_t)xdr_sgn_status, .args_size = sizeof(sgn_status), \
		.xdr_res = (xdrproc_t)rpc_xdr_void, .res_size = 1 }

static const struct rpc_proc nlm_v1_procs[] = {
	NLM_PROCS(nlm3_xdr_testargs, nlm3_xdr_lockargs, nlm3_xdr_cancargs, nlm3_xdr_unlockargs,
		  nlm3_xdr_res, nlm3_xdr_testres, NLM_ROOM3),
	NLM_P_SM_NOTIFY,
};

static const struct rpc_proc nlm_v3_procs[] = {
	NLM_PROCS(nlm3_xdr_testargs, nlm3_xdr_lockargs, nlm3_xdr_cancargs, nlm3_xdr_unlockargs,
		  nlm3_xdr_res, nlm3_xdr_testres, NLM_ROOM3),
	NLM_P(SHARE, nlm_proc_share, nlm4_shareargs, nlm3_xdr_shareargs, nlm4_shareres, nlm3_xdr_shareres),
	NLM_P(UNSHARE, nlm_proc_share, nlm4_shareargs, nlm3_xdr_shareargs, nlm4_shareres, nlm3_xdr_shareres),
	NLM_P(NM_LOCK, nlm_proc_lock, nlm4_lockargs, nlm3_xdr_lockargs, nlm4_res, nlm3_xdr_res),
	NLM_P(FREE_ALL, nlm_proc_free_all, nlm4_notify, nlm3_xdr_notify, char, rpc_xdr_void),
	NLM_P_SM_NOTIFY,
};

static const struct rpc_proc nlm_v4_procs[] = {
	NLM_PROCS(xdr_nlm4_testargs, xdr_nlm4_lockargs, xdr_nlm4_cancargs, xdr_nlm4_unlockargs,
		  xdr_nlm4_res, xdr_nlm4_testres, NLM_ROOM4),
	NLM_P(SHARE, nlm_proc_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres, xdr_nlm4_shareres),
	NLM_P(UNSHARE, nlm_proc_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres, xdr_nlm4_shareres),
	NLM_P(NM_LOCK, nlm_proc_lock, nlm4_lockargs, xdr_nlm4_lockargs, nlm4_res, xdr_nlm4_res,
	      NLM_ROOM4(lockargs)),
	NLM_P(FREE_ALL, nlm_proc_free_all, nlm4_notify, xdr_nlm4_notify, char, rpc_xdr_void),
	NLM_P_SM_NOTIFY,
};

#define NLM_NPROCS(a) (uint32_t)(sizeof(a) / sizeof((a)[0]))
static const struct rpc_vers nlm_v1 = { 1, NLM_NPROCS(nlm_v1_procs), nlm_v1_procs };
static const struct rpc_vers nlm_v3 = { 3, NLM_NPROCS(nlm_v3_procs), nlm_v3_procs };
static const struct rpc_vers nlm_v4 = { 4, NLM_NPROCS(nlm_v4_procs), nlm_v4_procs };
/* Version 2 is a host-local protocol and is not offered. */
static const struct rpc_vers *const nlm_versions[] = { &nlm_v1, NULL, &nlm_v3, &nlm_v4 };

const struct rpc_prog nlm_prog = {
	.name = "nlockmgr",
	.prog = NLM_PROG,
	.vers_lo = 1,
	.vers_hi = 4,
	.vers = nlm_versions,
};
