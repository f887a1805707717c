/*
 * nlm_grant.c - blocked-lock grants.  A blocking LOCK the engine cannot
 * grant now is an nlm_block: queued in the engine (lk_waiter) or, in grace,
 * behind another owner's reservation.  When the engine grants it (someone
 * released bytes), the grant is journaled after the change that caused it,
 * and once durable the client is told with NLM_GRANTED (or GRANTED_MSG if
 * it locked with LOCK_MSG), from the VIP it used, in the NLM version it
 * used.  A client that answers DENIED does not want the lock any more: it
 * is taken back.  An unanswered GRANTED keeps the lock: the client's next
 * poll (a retransmitted blocking LOCK) is answered GRANTED at once, since it
 * holds the lock already.  Loop thread.
 */
#include "nlm/nlm_grant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "journal/journal.h"
#include "nlm/nlm_host.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_xdr.h"
#include "saddr.h"

static void nlm_res_wait_unlink(struct nlm_block *b)
{
	struct nlm_group *ng = b->ng;

	if (!b->res_wait)
		return;
	if (b->rprev)
		b->rprev->rnext = b->rnext;
	else
		ng->res_wait = b->rnext;
	if (b->rnext)
		b->rnext->rprev = b->rprev;
	else
		ng->res_wait_tail = b->rprev;
	b->rnext = b->rprev = NULL;
	b->res_wait = false;
	ng->nres_wait--;
}

static void nlm_block_free(struct nlm_block *b)
{
	struct nlm_group *ng = b->ng;

	nlm_res_wait_unlink(b);

	if (b->prev)
		b->prev->next = b->next;
	else
		ng->blocks = b->next;
	if (b->next)
		b->next->prev = b->prev;
	free(b->oh);
	nlm_host_put(ng, b->host);
	free(b);
}

static void nlm_block_fill_args(const struct nlm_block *b, nlm4_testargs *a, uint64_t *cookie)
{
	memset(a, 0, sizeof(*a));
	a->cookie.sgn_netobj_len = sizeof(*cookie);
	a->cookie.sgn_netobj_val = (char *)cookie;
	a->exclusive = b->exclusive;
	a->alock.caller_name = b->host->name;
	a->alock.fh.sgn_netobj_len = (u_int)b->fhlen;
	a->alock.fh.sgn_netobj_val = (char *)b->fh;
	a->alock.oh.sgn_netobj_len = (u_int)b->ohlen;
	a->alock.oh.sgn_netobj_val = (char *)b->oh;
	a->alock.svid = (int)b->svid;
	a->alock.l_offset = b->offset;
	a->alock.l_len = b->len;
}

/*
 * Release what @o (of host @h) holds in @r of file @fh, journal it, and
 * announce the waiters that this satisfies (after the release's record, as
 * replay needs).  0 or -errno from the engine (nothing changed then).
 */
int nlm_unlock_journaled(struct nlm_group *ng, struct nlm_host *h, struct lk_owner *o,
			 const void *fh, size_t fhlen, struct lk_range r)
{
	size_t ohlen;
	const void *oh = lk_owner_oh(o, &ohlen);
	int rc = lk_unlock(ng->locks, fh, fhlen, o, r);

	/* Not waited for: a release lost in a crash leaves a reservation
	 * nobody reclaims, never a lock granted twice. */
	if (rc == 0)
		nlm_jr_lock(ng, false, h, lk_owner_svid(o), oh, ohlen, fh, fhlen, false, r);
	nlm_flush_grants(ng);
	return rc;
}

/*
 * The client refused (or cannot take) a lock we granted it: take it back,
 * unless the owner held some of the range when it asked.  Unlocking the
 * range would then free what the client still holds and believes it holds
 * (as for a LOCK that cannot be recorded, nlm_proc.c nlm_lock_undo): the
 * grant stays, and goes at the client's UNLOCK, FREE_ALL or reboot.
 */
static void nlm_block_take_back(struct nlm_block *b, const char *why)
{
	struct nlm_group *ng = b->ng;
	struct lk_owner *o;
	struct lk_range r;
	char nm[LOG_SAFE_MAX];

	if (b->held_before) {
		log_warn("group=%s client=%s granted lock svid=%u not taken back (%s): the owner held part of the range before",
			 ng->name, nlm_safe(nm, sizeof(nm), b->host->name), (unsigned)b->svid, why);
		return;
	}
	if (lk_range_make(b->offset, b->len, &r) == 0 &&
	    lk_owner_get(ng->locks, b->host->lkc, b->svid, b->oh, b->ohlen, &o) == 0) {
		nlm_unlock_journaled(ng, b->host, o, b->fh, b->fhlen, r);
		lk_owner_put(ng->locks, o);
	}
	log_info("group=%s client=%s granted lock taken back: %s", ng->name,
		 nlm_safe(nm, sizeof(nm), b->host->name), why);
}

static void nlm_send_granted(struct nlm_block *b);

static void nlm_granted_reply(const struct rpcc_reply *rep, void *arg)
{
	struct nlm_block *b = arg;
	struct nlm_group *ng = b->ng;

	if (rep->err == -ECANCELED || ng->closing)
		return; /* the group is going away; nlm_group_close frees b */
	if (rep->err == 0) {
		const nlm4_res *res = rep->res;
		if (res->stat.stat != NLM4_GRANTED)
			nlm_block_take_back(b, "client answered GRANTED with a refusal");
		nlm_block_free(b);
		return;
	}
	if (++b->tries < NLM_GRANTED_TRIES) {
		nlm_send_granted(b);
		return;
	}
	char nm[LOG_SAFE_MAX];
	log_warn("group=%s client=%s did not answer NLM_GRANTED (%s); it keeps the lock and sees it on its next poll",
		 ng->name, nlm_safe(nm, sizeof(nm), b->host->name), rpcc_strerror(rep->err));
	nlm_block_free(b);
}

/*
 * Forget the GRANTED_MSG records that waited too long for their GRANTED_RES,
 * and the oldest beyond NLM_GRANTED_RES_MAX: the client keeps the lock (as
 * when it does not answer NLM_GRANTED), only a late refusal can no longer
 * take it back.  Bounds what LOCK_MSG cycles of a client that never
 * answers can cost.
 */
static void nlm_res_wait_trim(struct nlm_group *ng)
{
	uint64_t now = uv_now(nlm_loop(ng));
	struct nlm_block *b;

	while ((b = ng->res_wait) &&
	       (ng->nres_wait > NLM_GRANTED_RES_MAX ||
		now - b->res_sent_ms >= NLM_GRANTED_RES_WAIT_MS))
		nlm_block_free(b);
}

/*
 * @nb was just recorded: if its address now has more than
 * NLM_GRANTED_RES_PER_HOST records, forget that address's oldest, not the
 * group's (which may be another client's, whose refusal would then go
 * unheard and its lock stay held for nobody).  A walk of at most
 * NLM_GRANTED_RES_MAX records, once per GRANTED_MSG.
 */
static void nlm_res_wait_trim_host(struct nlm_group *ng, const struct nlm_block *nb)
{
	struct sockaddr_storage to, t;
	struct nlm_block *oldest = NULL;
	unsigned n = 0;

	sa_norm(&nb->target.client, &to);
	for (struct nlm_block *b = ng->res_wait; b; b = b->rnext) {
		sa_norm(&b->target.client, &t);
		if (!sa_same_host(&t, &to))
			continue;
		if (!oldest)
			oldest = b;
		n++;
	}
	if (n > NLM_GRANTED_RES_PER_HOST && oldest != nb)
		nlm_block_free(oldest);
}

static void nlm_send_granted(struct nlm_block *b)
{
	struct nlm_group *ng = b->ng;
	nlm4_testargs a;
	xdrproc_t x = b->target.vers == 4 ? (xdrproc_t)xdr_nlm4_testargs
					  : (xdrproc_t)nlm3_xdr_testargs;
	int rc;

	nlm_block_fill_args(b, &a, &b->cookie);
	if (b->msg) {
		/* The answer comes as GRANTED_RES, matched by our cookie; the
		 * block stays until then or until the group closes. */
		rc = nlm_cb_send(ng->cb, &b->target, NLMPROC_GRANTED_MSG, x, &a);
		if (rc < 0) {
			nlm_block_free(b);
			return;
		}
		b->res_wait = true;
		b->res_sent_ms = uv_now(nlm_loop(ng));
		b->rnext = NULL;
		b->rprev = ng->res_wait_tail;
		if (ng->res_wait_tail)
			ng->res_wait_tail->rnext = b;
		else
			ng->res_wait = b;
		ng->res_wait_tail = b;
		ng->nres_wait++;
		nlm_res_wait_trim_host(ng, b);
		nlm_res_wait_trim(ng);
		return;
	}
	rc = nlm_cb_call(ng->cb, &b->target, NLMPROC_GRANTED, x, &a,
			 b->target.vers == 4 ? (xdrproc_t)xdr_nlm4_res : (xdrproc_t)nlm3_xdr_res,
			 sizeof(nlm4_res), nlm_granted_reply, b);
	if (rc < 0)
		nlm_block_free(b);
}

/* A granted waiter's record is durable (or cannot be): tell the client. */
static void nlm_block_durable(void *arg, int rc)
{
	struct nlm_block *b = arg;

	b->jr_wait = false;
	if (rc < 0) {
		nlm_block_take_back(b, "the journal cannot record the grant");
		nlm_block_free(b);
		return;
	}
	nlm_send_granted(b);
}

/*
 * The engine granted these waiters while it carried out a change; the
 * caller has journaled that change by now, so the grants' records follow
 * it, as replay needs.  Each client is called back once its grant is
 * durable.  Taking a grant back may grant others: the loop picks them up.
 */
void nlm_flush_grants(struct nlm_group *ng)
{
	struct nlm_block *b;
	char nm[LOG_SAFE_MAX];
	int rc;

	if (ng->flushing)
		return;
	ng->flushing = true;
	while ((b = ng->granted)) {
		struct lk_range r;

		ng->granted = b->gnext;
		if (!ng->granted)
			ng->granted_tail = &ng->granted;
		b->gnext = NULL;
		log_info("group=%s client=%s blocked lock granted; calling back", ng->name,
			 nlm_safe(nm, sizeof(nm), b->host->name));
		if (!ng->jr) {
			nlm_send_granted(b);
			continue;
		}
		lk_range_make(b->offset, b->len, &r);
		nlm_resv_unlock(ng, b->host, b->svid, b->oh, b->ohlen, b->fh, b->fhlen, r);
		rc = nlm_jr_can_grant(ng, b->host) ? 0 : -EIO;
		if (rc == 0)
			rc = nlm_jr_lock(ng, true, b->host, b->svid, b->oh, b->ohlen, b->fh,
					 b->fhlen, b->exclusive, r);
		if (rc == 0)
			rc = jr_wait(ng->jr, nlm_block_durable, b);
		if (rc == 0) {
			b->jr_wait = true;
		} else if (rc == 1) {
			nlm_send_granted(b);
		} else {
			nlm_block_take_back(b, "the journal cannot record the grant");
			nlm_block_free(b);
		}
	}
	ng->flushing = false;
}

void nlm_on_grant(void *arg, struct lk_waiter *w)
{
	struct nlm_block *b = lk_waiter_priv(w);
	struct nlm_group *ng = b->ng;

	/* Not yet journaled: the change that caused this grant is recorded
	 * first, then nlm_flush_grants records and announces it. */
	b->w = NULL;
	*ng->granted_tail = b;
	ng->granted_tail = &b->gnext;
}

void nlm_on_drop(void *arg, struct lk_waiter *w)
{
	struct nlm_block *b = lk_waiter_priv(w);

	b->w = NULL;
	nlm_block_free(b);
}

/* ---- waiting behind a reservation --------------------------------------- */

/*
 * A blocking LOCK in grace that conflicts only with another owner's
 * reservation (a lock held before the takeover, not reclaimed yet) is
 * queued here, outside the engine, and answered BLOCKED: refused with
 * DENIED_GRACE_PERIOD, a Linux client sleeps 5 s before asking again.
 * Whenever reservations go (a reclaim, an UNLOCK, a client's release, the
 * end of grace) the waiters no reservation stops any more enter the engine:
 * granted now (then journaled and called back like any blocked lock) or
 * queued behind the reclaimed lock.
 */
static struct nlm_block *nlm_resv_block_find(struct nlm_group *ng, const struct nlm_host *h,
					     const nlm4_lock *lk, bool exclusive)
{
	for (struct nlm_block *b = ng->blocks; b; b = b->next)
		if (b->resv_wait && b->host == h && b->svid == (uint32_t)lk->svid &&
		    b->exclusive == exclusive && b->offset == lk->l_offset &&
		    b->len == lk->l_len && b->fhlen == lk->fh.sgn_netobj_len &&
		    memcmp(b->fh, lk->fh.sgn_netobj_val, b->fhlen) == 0 &&
		    b->ohlen == lk->oh.sgn_netobj_len &&
		    (b->ohlen == 0 || memcmp(b->oh, lk->oh.sgn_netobj_val, b->ohlen) == 0))
			return b;
	return NULL;
}

static size_t nlm_resv_blocks_of(const struct nlm_group *ng, const struct nlm_host *h)
{
	size_t n = 0;

	for (const struct nlm_block *b = ng->blocks; b; b = b->next)
		n += b->resv_wait && b->host == h;
	return n;
}

void nlm_resv_waiters_retry(struct nlm_group *ng)
{
	struct nlm_block *b, *next;

	for (b = ng->blocks; b; b = next) {
		struct lk_waiter *w = NULL;
		struct lk_owner *o;
		struct lk_range r;
		int rc;

		next = b->next;
		if (!b->resv_wait || lk_range_make(b->offset, b->len, &r) < 0)
			continue;
		if (grp_in_grace(ng->gp) &&
		    nlm_resv_conflicts_lock(ng, b->host, b->svid, b->oh, b->ohlen, b->fh, b->fhlen,
					    b->exclusive, r))
			continue;
		b->resv_wait = false;
		rc = lk_owner_get(ng->locks, b->host->lkc, b->svid, b->oh, b->ohlen, &o);
		if (rc == 0) {
			rc = lk_lock_wait(ng->locks, b->fh, b->fhlen, o,
					  b->exclusive ? LK_EXCL : LK_SHARED, r, b, &w, NULL);
			lk_owner_put(ng->locks, o);
		}
		if (rc == 0) {
			/* As if the engine granted it: journaled, then called back. */
			*ng->granted_tail = b;
			ng->granted_tail = &b->gnext;
		} else if (rc == -EINPROGRESS && lk_waiter_priv(w) == b) {
			b->w = w;
		} else {
			/* Gone with it; the client's next poll asks again. */
			nlm_block_free(b);
		}
	}
	nlm_flush_grants(ng);
}

/* Drop @h's waiters behind reservations (it rebooted or freed all). */
void nlm_resv_waiters_drop_host(struct nlm_group *ng, const struct nlm_host *h)
{
	struct nlm_block *b, *next;

	for (b = ng->blocks; b; b = next) {
		next = b->next;
		if (b->resv_wait && b->host == h)
			nlm_block_free(b);
	}
}


/* ---- queueing, cancelling, answers ------------------------------------- */

int nlm_block_queue(struct nlm_group *ng, struct nlm_host *host, struct lk_owner *o,
		    const nlm4_lock *lk, struct lk_range r, bool exclusive, bool resv_block,
		    const struct nlm_cb_target *target, bool msg)
{
	const void *fh = lk->fh.sgn_netobj_val;
	size_t fhlen = lk->fh.sgn_netobj_len;
	struct nlm_block *b = calloc(1, sizeof(*b));
	struct lk_waiter *w = NULL;
	bool held = lk_holds_any(ng->locks, fh, fhlen, o, r);
	int rc;

	if (!b || (lk->oh.sgn_netobj_len && !(b->oh = malloc(lk->oh.sgn_netobj_len)))) {
		free(b);
		return -ENOMEM;
	}
	if (resv_block && nlm_resv_block_find(ng, host, lk, exclusive)) {
		rc = -EINPROGRESS; /* a retransmission: still waiting */
	} else if (resv_block && nlm_resv_blocks_of(ng, host) >= LK_DEFAULT_MAX_WAITERS) {
		rc = -ENOLCK; /* as the engine caps a client's waiters */
	} else if (resv_block) {
		rc = -EINPROGRESS;
		b->resv_wait = true;
	} else {
		rc = lk_lock_wait(ng->locks, fh, fhlen, o, exclusive ? LK_EXCL : LK_SHARED, r, b,
				  &w, NULL);
	}
	if (rc != -EINPROGRESS || !(b->resv_wait || (w && lk_waiter_priv(w) == b))) {
		/* Granted at once, refused, or a retransmission that found
		 * its waiter: this block is not needed. */
		free(b->oh);
		free(b);
		return rc;
	}
	/* A new waiter: remember how to call the client back. */
	b->ng = ng;
	b->host = host;
	host->refs++;
	b->target = *target;
	b->msg = msg;
	b->exclusive = exclusive;
	b->held_before = held;
	b->svid = (uint32_t)lk->svid;
	memcpy(b->fh, fh, fhlen);
	b->fhlen = fhlen;
	if (lk->oh.sgn_netobj_len)
		memcpy(b->oh, lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len);
	b->ohlen = lk->oh.sgn_netobj_len;
	b->offset = lk->l_offset;
	b->len = lk->l_len;
	b->w = w;
	/* Unguessable: GRANTED_RES with a refusal takes the lock back, so a
	 * counter would let a third host answer for the holder. */
	if (getrandom(&b->cookie, sizeof(b->cookie), GRND_NONBLOCK) != (ssize_t)sizeof(b->cookie))
		b->cookie = uv_hrtime() ^ ((uint64_t)(uintptr_t)b << 16);
	b->next = ng->blocks;
	if (ng->blocks)
		ng->blocks->prev = b;
	ng->blocks = b;
	return rc;
}

int nlm_block_cancel(struct nlm_group *ng, struct nlm_host *host, struct lk_owner *o,
		     const nlm4_lock *lk, bool exclusive, struct lk_range r)
{
	struct lk_waiter *w = lk_waiter_find(ng->locks, lk->fh.sgn_netobj_val,
					     lk->fh.sgn_netobj_len, o,
					     exclusive ? LK_EXCL : LK_SHARED, r);
	struct nlm_block *b;

	if (!w) {
		b = nlm_resv_block_find(ng, host, lk, exclusive);
		if (!b)
			return -EAGAIN;
		nlm_block_free(b);
		return 0;
	}
	b = lk_waiter_priv(w);
	lk_cancel(ng->locks, w); /* never touches held locks */
	b->w = NULL;
	nlm_block_free(b);
	return 0;
}

void nlm_granted_res(struct nlm_group *ng, const struct sockaddr_storage *peer,
		     const void *cookie_val, size_t cookie_len, bool accepted)
{
	struct sockaddr_storage from, to;
	uint64_t cookie;
	char ad[80];

	nlm_res_wait_trim(ng);
	if (cookie_len != sizeof(cookie))
		return;
	memcpy(&cookie, cookie_val, sizeof(cookie));
	sa_norm(peer, &from);
	for (struct nlm_block *b = ng->res_wait; b; b = b->rnext) {
		if (b->cookie != cookie)
			continue;
		sa_norm(&b->target.client, &to);
		if (!sa_same_host(&from, &to)) {
			char nm[LOG_SAFE_MAX];
			log_warn("group=%s client=%s GRANTED_RES from %s ignored: the GRANTED_MSG went to another address",
				 ng->name, nlm_safe(nm, sizeof(nm), b->host->name),
				 rpc_addr_str(peer, false, ad, sizeof(ad)));
			return;
		}
		if (!accepted)
			nlm_block_take_back(b, "client answered GRANTED_MSG with a refusal");
		nlm_block_free(b);
		return;
	}
}

/* Every block of a closing group: no callback, no reply, just memory. */
void nlm_blocks_abandon(struct nlm_group *ng)
{
	ng->granted = NULL;
	while (ng->blocks) {
		struct nlm_block *b = ng->blocks;
		ng->blocks = b->next;
		free(b->oh);
		free(b);
	}
}
