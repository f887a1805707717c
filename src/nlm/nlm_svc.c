/*
 * nlm_svc.c - NLM procedures over the lock engine, per service group.
 *
 * Story of a LOCK:
 *   1. The file handle is checked: it must carry the fsid of one of the
 *      exports of the group whose VIP the request came to (else STALE_FH:
 *      a group's locks are decided only by the node serving that group).
 *   2. Range from (offset, length); overflow is NLM4_FBIG (LOCK, TEST and
 *      UNLOCK alike).  Grace: see nlm_grace_refuses() for the rule of
 *      every procedure.
 *   3. The client is made durable on the group's client list (clist.h).
 *      A known client costs nothing; a new one waits for the fsync, the
 *      request parked in ng->parked.  A failed write refuses the lock
 *      (DENIED_NOLOCKS), it is never granted.
 *   4. The lock engine decides: granted, denied, blocked (queued), deadlock
 *      or too many waiters.
 *   5. The reply goes back as the RPC reply, or for the _MSG procedures as
 *      a call to the client's matching _RES procedure (nlm_cb.c).
 *
 * Blocked requests: when the engine grants a waiter (someone released
 * bytes), the client is told with NLM_GRANTED (or GRANTED_MSG if it locked
 * with LOCK_MSG), from the VIP it used, in the NLM version it used.  A
 * client that answers DENIED does not want the lock any more: it is taken
 * back.  An unanswered GRANTED keeps the lock: the client's next poll (a
 * retransmitted blocking LOCK) is answered GRANTED at once, since it holds
 * the lock already.
 *
 * Every piece of state here is owned by the group's nlm_group and dies with
 * it; nothing is shared between groups, so one group's recovery cannot
 * touch another's locks.
 */
#include "nlm/nlm_svc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>

#include "config/config.h"
#include "group/gslot.h"
#include "lock/lock.h"
#include "journal/journal.h"
#include "log.h"
#include "nfs/export.h"
#include "nfs/fh.h"
#include "nlm/nlm_cb.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_xdr.h"
#include "nsm/clist.h"
#include "nsm.h"
#include "saddr.h"
#include "sjson.h"

static struct nlm_group *nlm_grp(const struct rpc_req *req)
{
	return grp_slot(req->svc_ctx, GRP_PROTO_NLM);
}

static uv_loop_t *nlm_loop(const struct nlm_group *ng)
{
	return ng->gp->loop;
}

/* A name or owner handle from the wire, safe for a log line. */
static const char *nlm_safe(char *buf, size_t sz, const char *s)
{
	return log_safe(buf, sz, s ? s : "", s ? strlen(s) : 0);
}

/* ---- hosts ------------------------------------------------------------ */

static size_t nlm_host_bucket(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return (size_t)(h % NLM_HOST_BUCKETS);
}

static struct nlm_host *nlm_host_find(struct nlm_group *ng, const char *name)
{
	for (struct nlm_host *h = ng->hosts[nlm_host_bucket(name)]; h; h = h->hnext)
		if (strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

/* ---- the address index ------------------------------------------------ */

/* Addresses in the index are normalised (saddr.h: host part only). */
static size_t nlm_addr_bucket(const struct sockaddr_storage *n)
{
	return (size_t)(sa_hash(n) % NLM_ADDR_BUCKETS);
}

static void nlm_haddr_unlink(struct nlm_group *ng, struct nlm_haddr *s)
{
	struct nlm_haddr **pp = &ng->addrs[nlm_addr_bucket(&s->addr)];

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	s->next = NULL;
	s->used = false;
}

/* Remember that @h sent a request from @peer (the address index that
 * SM_NOTIFY/FREE_ALL by address and the per-address caps use). */
static void nlm_host_seen(struct nlm_group *ng, struct nlm_host *h,
			  const struct sockaddr_storage *peer)
{
	struct sockaddr_storage n;
	struct nlm_haddr *slot = NULL;
	size_t b;

	sa_norm(peer, &n);
	for (unsigned i = 0; i < NLM_HOST_ADDRS; i++) {
		if (h->addrs[i].used && sa_same_host(&h->addrs[i].addr, &n))
			return;
		if (!h->addrs[i].used && !slot)
			slot = &h->addrs[i];
	}
	if (!slot) {
		slot = &h->addrs[h->next_addr++ % NLM_HOST_ADDRS];
		nlm_haddr_unlink(ng, slot);
	}
	slot->addr = n;
	slot->host = h;
	slot->used = true;
	b = nlm_addr_bucket(&n);
	slot->next = ng->addrs[b];
	ng->addrs[b] = slot;
}

static void nlm_host_unindex(struct nlm_group *ng, struct nlm_host *h)
{
	for (unsigned i = 0; i < NLM_HOST_ADDRS; i++)
		if (h->addrs[i].used)
			nlm_haddr_unlink(ng, &h->addrs[i]);
}

/*
 * Call @fn for every host that sent requests from @addr; stops when @fn
 * returns false.  The cost is the entries of one index bucket, never the
 * number of hosts (ng->addr_probes counts them, for status and tests).
 */
static void nlm_hosts_at(struct nlm_group *ng, const struct sockaddr_storage *addr,
			 bool (*fn)(void *arg, struct nlm_host *h), void *arg)
{
	struct sockaddr_storage n;

	sa_norm(addr, &n);
	for (struct nlm_haddr *s = ng->addrs[nlm_addr_bucket(&n)]; s; s = s->next) {
		ng->addr_probes++;
		if (sa_same_host(&s->addr, &n) && !fn(arg, s->host))
			return;
	}
}

struct nlm_addr_count {
	const struct nlm_group *ng;
	size_t names;
	uint64_t locks;
};

static bool nlm_count_host(void *arg, struct nlm_host *h)
{
	struct nlm_addr_count *c = arg;
	struct lk_stats st;

	lk_client_stats(h->lkc, &st);
	c->names++;
	c->locks += st.locks + st.shares + st.waiters;
	return true;
}

/*
 * The per-address caps (max_names_per_host, max_locks_per_host): may a
 * request from @peer naming @name take something new?  A host already known
 * by that name costs no new name.  Logs each refusal, at most one line per
 * second per group with a count of those not logged.  0 or -ENOLCK.
 */
static int nlm_addr_caps(struct nlm_group *ng, const char *name,
			 const struct sockaddr_storage *peer, bool new_lock)
{
	const struct cfg_cluster *cc = ng->gp->cluster;
	struct nlm_addr_count c = { ng, 0, 0 };
	const char *what;
	char a[80], nm[LOG_SAFE_MAX];
	uint64_t now;

	nlm_hosts_at(ng, peer, nlm_count_host, &c);
	if (!nlm_host_find(ng, name) && c.names >= cc->max_names_per_host)
		what = "max_names_per_host";
	else if (new_lock && c.locks >= cc->max_locks_per_host)
		what = "max_locks_per_host";
	else
		return 0;
	now = uv_now(nlm_loop(ng));
	if (ng->refused_caps_logged_ms && now - ng->refused_caps_logged_ms < 1000) {
		ng->refused_caps_quiet++;
		return -ENOLCK;
	}
	log_warn("group=%s client=%s from %s refused: %s reached (%zu names, %" PRIu64
		 " locks at that address; %" PRIu64 " more refusals not logged)", ng->name,
		 nlm_safe(nm, sizeof(nm), name), rpc_addr_str(peer, false, a, sizeof(a)), what,
		 c.names, c.locks, ng->refused_caps_quiet);
	ng->refused_caps_logged_ms = now;
	ng->refused_caps_quiet = 0;
	return -ENOLCK;
}

struct nlm_host *nlm_host_get(struct nlm_group *ng, const char *name)
{
	struct nlm_host *h = nlm_host_find(ng, name);
	size_t b;

	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->name = strdup(name);
	if (!h->name || lk_client_new(ng->locks, h, &h->lkc) < 0) {
		free(h->name);
		free(h);
		return NULL;
	}
	b = nlm_host_bucket(name);
	h->hnext = ng->hosts[b];
	ng->hosts[b] = h;
	ng->nhosts++;
	return h;
}

static bool nlm_host_idle(const struct nlm_host *h)
{
	struct lk_stats st;

	lk_client_stats(h->lkc, &st);
	return st.locks == 0 && st.waiters == 0 && st.shares == 0 && !nlm_host_has_resv(h);
}

/*
 * Called after anything that may have released a host's last lock: the
 * client list starts its idle clock, and a host nobody refers to is freed.
 */
void nlm_host_maybe_idle(struct nlm_group *ng, struct nlm_host *h)
{
	struct nlm_host **pp;

	if (!h || ng->closing || !nlm_host_idle(h))
		return;
	clist_release(ng->clients, h->name);
	if (h->refs)
		return;
	for (pp = &ng->hosts[nlm_host_bucket(h->name)]; *pp && *pp != h; pp = &(*pp)->hnext)
		;
	if (*pp)
		*pp = h->hnext;
	ng->nhosts--;
	nlm_host_unindex(ng, h);
	lk_client_free(ng->locks, h->lkc);
	if (h->rlkc && ng->resv)
		lk_client_free(ng->resv, h->rlkc);
	free(h->name);
	free(h);
}

static void nlm_host_put(struct nlm_group *ng, struct nlm_host *h)
{
	h->refs--;
	nlm_host_maybe_idle(ng, h);
}

/* ---- arguments -------------------------------------------------------- */

/*
 * The file handle must belong to an export of this group, and @peer must be
 * in that export's `clients`, as for MOUNT and NFS (a handle is not a
 * capability).  No disk access: the engine keys locks by handle bytes, which
 * are stable for a file (fh.h), and locking a file that has since been
 * removed harms no one.  Returns NLM4_GRANTED, NLM4_STALE_FH (not a handle
 * of this group) or NLM4_DENIED (the address may not use the export; logged,
 * one line a second per group with a count of the rest).  `secure` is not
 * applied: lockd's port says nothing about who asks (Linux's default).
 */
static nlm4_stats nlm_fh_check(struct nlm_group *ng, const sgn_netobj *fh,
			       const struct sockaddr_storage *peer, const char *proc)
{
	const struct cfg_group *gc = ng->gp->cfg;
	const struct cfg_export *e = NULL;
	struct fh_key k;
	uint64_t now;
	char a[80];

	if (fh->sgn_netobj_len == 0 || fh->sgn_netobj_len > LK_KEY_MAX)
		return NLM4_STALE_FH;
	int rc = fh_decode(fh->sgn_netobj_val, fh->sgn_netobj_len, &k);

	/* The MAC makes a made-up handle useless for NLM too: without it a
	 * host could lock (and TEST for holders of) handles it never got. */
	if (rc == -FH_EMAC)
		fh_log_badmac(ng->name, peer, proc);
	if (rc < 0)
		return NLM4_STALE_FH;
	for (size_t i = 0; i < gc->nexports && !e; i++)
		if (gc->exports[i]->fsid == k.fsid)
			e = gc->exports[i];
	if (!e)
		return NLM4_STALE_FH;
	if (exp_check_client(e, peer) != EXP_DENY_ADDRESS)
		return NLM4_GRANTED;
	ng->refused_clients++;
	now = uv_now(nlm_loop(ng));
	if (ng->refused_logged_ms && now - ng->refused_logged_ms < 1000) {
		ng->refused_quiet++;
		return NLM4_DENIED;
	}
	log_warn("group=%s client=%s %s on export %s refused: address not in its clients "
		 "(%" PRIu64 " more refusals not logged)", ng->name,
		 rpc_addr_str(peer, false, a, sizeof(a)), proc, e->path, ng->refused_quiet);
	ng->refused_logged_ms = now;
	ng->refused_quiet = 0;
	return NLM4_DENIED;
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
 * The grace rule (docs/nlm.md), per group:
 *   in grace:     LOCK, NM_LOCK, SHARE without reclaim and TEST are refused
 *                 with DENIED_GRACE_PERIOD; reclaims are granted.  With a
 *                 trusted journal (reservations, nlm_journal.c) only those
 *                 that conflict with another owner's reservation are
 *                 refused: the caller checks that once it knows the owner;
 *   out of grace: a reclaim is refused (DENIED_NOLOCKS): nothing can be
 *                 reclaimed that the group did not announce;
 *   always:       UNLOCK, UNSHARE, CANCEL, FREE_ALL and the _RES/GRANTED
 *                 answers are served: they only give things up.
 * Returns the status to refuse with, or NLM4_GRANTED to proceed.
 */
static nlm4_stats nlm_grace_refuses(const struct nlm_group *ng, bool is_reclaim)
{
	if (grp_in_grace(ng->gp) && !is_reclaim && !ng->resv)
		return NLM4_DENIED_GRACE_PERIOD;
	if (!grp_in_grace(ng->gp) && is_reclaim)
		return NLM4_DENIED_NOLOCKS;
	return NLM4_GRANTED;
}

/* ---- replies ---------------------------------------------------------- */

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

static void nlm_target(const struct rpc_req *req, struct nlm_cb_target *t)
{
	memset(t, 0, sizeof(*t));
	t->client = req->peer;
	t->local = req->local;
	t->vers = req->vers;
	t->tcp = req->is_tcp;
}

/*
 * Finish @req whose result is in req->res: the RPC reply for the synchronous
 * procedures; for the _MSG ones a void RPC reply and the result sent as a
 * call to the client's _RES procedure.  Loop thread; frees @req.
 */
static void nlm_finish(struct rpc_req *req)
{
	bool is_msg = req->proc >= NLMPROC_TEST_MSG && req->proc <= NLMPROC_UNLOCK_MSG;

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

static enum rpc_disposition nlm_done(struct rpc_req *req)
{
	nlm_finish(req);
	return RPC_DONE_ASYNC; /* nlm_finish already completed it */
}

/* ---- the lock engine's grants ---------------------------------------- */

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

static void nlm_flush_grants(struct nlm_group *ng);

/*
 * Release what @o (of host @h) holds in @r of file @fh, journal it, and
 * announce the waiters that this satisfies (after the release's record, as
 * replay needs).  0 or -errno from the engine (nothing changed then).
 */
static int nlm_unlock_journaled(struct nlm_group *ng, struct nlm_host *h, struct lk_owner *o,
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

/* The client refused (or cannot take) a lock we granted it: take it back. */
static void nlm_block_take_back(struct nlm_block *b, const char *why)
{
	struct nlm_group *ng = b->ng;
	struct lk_owner *o;
	struct lk_range r;
	char nm[LOG_SAFE_MAX];

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
static void nlm_flush_grants(struct nlm_group *ng)
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

static void nlm_on_grant(void *arg, struct lk_waiter *w)
{
	struct nlm_block *b = lk_waiter_priv(w);
	struct nlm_group *ng = b->ng;

	/* Not yet journaled: the change that caused this grant is recorded
	 * first, then nlm_flush_grants records and announces it. */
	b->w = NULL;
	*ng->granted_tail = b;
	ng->granted_tail = &b->gnext;
}

static void nlm_on_drop(void *arg, struct lk_waiter *w)
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

static void nlm_resv_waiters_retry(struct nlm_group *ng)
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
static void nlm_resv_waiters_drop_host(struct nlm_group *ng, const struct nlm_host *h)
{
	struct nlm_block *b, *next;

	for (b = ng->blocks; b; b = next) {
		next = b->next;
		if (b->resv_wait && b->host == h)
			nlm_block_free(b);
	}
}

/* ---- the procedures --------------------------------------------------- */

/*
 * Common checks and owner lookup for a request naming @lk.  On success
 * returns NLM4_GRANTED with *host, *o (a reference: put it) and *r set.
 */
static nlm4_stats nlm_prepare(struct nlm_group *ng, const struct rpc_req *req,
			      const nlm4_lock *lk, bool new_lock, struct nlm_host **host,
			      struct lk_owner **o, struct lk_range *r)
{
	nlm4_stats st = nlm_fh_check(ng, &lk->fh, &req->peer, req->pd->name);

	if (st != NLM4_GRANTED)
		return st;
	if (lk_range_make(lk->l_offset, lk->l_len, r) < 0)
		return NLM4_FBIG;
	if (!lk->caller_name ||
	    clist_name_check(lk->caller_name, strlen(lk->caller_name)) < 0) {
		char nm[LOG_SAFE_MAX];
		log_warn("group=%s client=%s refused: unusable caller_name", ng->name,
			 nlm_safe(nm, sizeof(nm), lk->caller_name));
		return NLM4_DENIED_NOLOCKS;
	}
	if (new_lock && nlm_addr_caps(ng, lk->caller_name, &req->peer, true) < 0) {
		ng->refused_caps++;
		return NLM4_DENIED_NOLOCKS;
	}
	*host = nlm_host_get(ng, lk->caller_name);
	if (!*host)
		return NLM4_DENIED_NOLOCKS;
	nlm_host_seen(ng, *host, &req->peer);
	/* Held for the whole request: what it releases may otherwise free
	 * the host under us (nlm_host_put). */
	(*host)->refs++;
	if (lk_owner_get(ng->locks, (*host)->lkc, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
			 lk->oh.sgn_netobj_len, o) < 0) {
		nlm_host_put(ng, *host);
		return NLM4_DENIED_NOLOCKS;
	}
	return NLM4_GRANTED;
}

static void nlm_parked_done(void *arg, int rc);

/*
 * Make the client durable on the list before a grant.  Returns 1 to go on
 * now, 0 if @req was parked (it is re-run by nlm_parked_done), or a status
 * to refuse with (negative of nothing: NLM4_DENIED_NOLOCKS as -1).
 */
static int nlm_ensure_listed(struct nlm_group *ng, struct rpc_req *req, struct nlm_host *host)
{
	struct nlm_parked *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->ng = ng;
	p->req = req;
	p->host = host;
	rc = clist_ensure(ng->clients, host->name, &req->peer, nlm_parked_done, p);
	if (rc == 1 || rc < 0) {
		free(p);
		return rc == 1 ? 1 : -1;
	}
	host->refs++;
	p->next = ng->parked;
	if (ng->parked)
		ng->parked->prev = p;
	ng->parked = p;
	return 0;
}

static enum rpc_disposition nlm_dispatch_again(struct rpc_req *req);
static enum rpc_disposition nlm_proc_share(struct rpc_req *req);

static void nlm_parked_unlink(struct nlm_parked *p)
{
	struct nlm_group *ng = p->ng;

	if (p->prev)
		p->prev->next = p->next;
	else
		ng->parked = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

static void nlm_journal_done(void *arg, int rc);

/*
 * The grant in @req's result is in the lock table and its record appended:
 * answer once the record is durable.  Returns 0 if @req was parked (answered
 * by nlm_journal_done), 1 to answer now (nothing to wait for), or -1 if the
 * journal cannot take it (the caller takes the grant back and refuses).
 */
static int nlm_journal_park(struct nlm_group *ng, struct rpc_req *req, struct nlm_host *host)
{
	struct nlm_parked *p;
	int rc;

	if (!ng->jr)
		return 1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->ng = ng;
	p->req = req;
	p->host = host;
	p->journal = true;
	rc = jr_wait(ng->jr, nlm_journal_done, p);
	if (rc != 0) {
		free(p);
		return rc == 1 ? 1 : -1;
	}
	host->refs++;
	p->next = ng->parked;
	if (ng->parked)
		ng->parked->prev = p;
	ng->parked = p;
	return 0;
}

/* Take back the grant @req was about to answer (its record did not become
 * durable) and make the answer a refusal. */
static void nlm_req_take_back(struct nlm_group *ng, struct rpc_req *req, struct nlm_host *host)
{
	struct lk_owner *o;
	char nm[LOG_SAFE_MAX];

	if (req->proc == NLMPROC_SHARE) {
		const nlm4_share *sh = &((const nlm4_shareargs *)req->args)->share;
		if (lk_owner_get(ng->locks, host->lkc, 0, sh->oh.sgn_netobj_val,
				 sh->oh.sgn_netobj_len, &o) == 0) {
			lk_unshare(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, o);
			lk_owner_put(ng->locks, o);
		}
		((nlm4_shareres *)req->res)->stat = NLM4_DENIED_NOLOCKS;
	} else {
		const nlm4_lock *lk = &((const nlm4_lockargs *)req->args)->alock;
		struct lk_range r;
		if (lk_range_make(lk->l_offset, lk->l_len, &r) == 0 &&
		    lk_owner_get(ng->locks, host->lkc, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
				 lk->oh.sgn_netobj_len, &o) == 0) {
			nlm_unlock_journaled(ng, host, o, lk->fh.sgn_netobj_val,
					     lk->fh.sgn_netobj_len, r);
			lk_owner_put(ng->locks, o);
		}
		((nlm4_res *)req->res)->stat.stat = NLM4_DENIED_NOLOCKS;
	}
	log_warn("group=%s client=%s %s refused: the journal cannot record it", ng->name,
		 nlm_safe(nm, sizeof(nm), host->name), req->pd->name);
}

static void nlm_journal_done(void *arg, int rc)
{
	struct nlm_parked *p = arg;
	struct nlm_group *ng = p->ng;
	struct nlm_host *host = p->host;
	struct rpc_req *req = p->req;

	nlm_parked_unlink(p);
	if (rc < 0)
		nlm_req_take_back(ng, req, host);
	nlm_finish(req);
	nlm_host_put(ng, host);
}

static void nlm_parked_done(void *arg, int rc)
{
	struct nlm_parked *p = arg;
	struct nlm_group *ng = p->ng;
	struct nlm_host *host = p->host;
	struct rpc_req *req = p->req;

	nlm_parked_unlink(p);
	if (rc < 0) {
		/* Logged by clist; the grant is refused, never given. */
		if (req->proc == NLMPROC_SHARE)
			((nlm4_shareres *)req->res)->stat = NLM4_DENIED_NOLOCKS;
		else
			((nlm4_res *)req->res)->stat.stat = NLM4_DENIED_NOLOCKS;
		nlm_host_put(ng, host);
		nlm_finish(req);
		return;
	}
	/* Durable now: run the request again; this time the list says yes
	 * at once, and the lock engine decides on the current state. */
	nlm_dispatch_again(req);
	nlm_host_put(ng, host);
}

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
	nlm4_stats st, fst;

	if (nlm_copy_netobj(&res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	st = nlm_grace_refuses(ng, false);
	if (st == NLM4_GRANTED)
		st = nlm_prepare(ng, req, &a->alock, false, &host, &o, &r);
	else if ((fst = nlm_fh_check(ng, &a->alock.fh, &req->peer, req->pd->name)) != NLM4_GRANTED)
		st = fst; /* a foreign or refused handle says so even in grace */
	if (st != NLM4_GRANTED) {
		res->test_stat.stat = st;
		return nlm_done(req);
	}
	if (grp_in_grace(ng->gp) &&
	    nlm_resv_conflicts_lock(ng, host, (uint32_t)a->alock.svid, a->alock.oh.sgn_netobj_val,
				    a->alock.oh.sgn_netobj_len, a->alock.fh.sgn_netobj_val,
				    a->alock.fh.sgn_netobj_len, a->exclusive, r)) {
		/* The holder is a lock not reclaimed yet: not reportable. */
		res->test_stat.stat = NLM4_DENIED_GRACE_PERIOD;
	} else if (lk_test(ng->locks, a->alock.fh.sgn_netobj_val, a->alock.fh.sgn_netobj_len, o,
		    a->exclusive ? LK_EXCL : LK_SHARED, r, &holder) == -EAGAIN) {
		nlm4_holder *h = &res->test_stat.nlm4_testrply_u.holder;
		size_t ohlen;
		const void *oh = lk_owner_oh(holder.owner, &ohlen);

		res->test_stat.stat = NLM4_DENIED;
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
	} else {
		res->test_stat.stat = NLM4_GRANTED;
	}
	lk_owner_put(ng->locks, o);
	nlm_host_put(ng, host);
	return nlm_done(req);
}

static nlm4_stats nlm_stat_of(int rc)
{
	switch (rc) {
	case 0: return NLM4_GRANTED;
	case -EAGAIN: return NLM4_DENIED;
	case -EINPROGRESS: return NLM4_BLOCKED;
	case -EDEADLK: return NLM4_DEADLCK;
	case -EOVERFLOW: return NLM4_FBIG;
	default: return NLM4_DENIED_NOLOCKS; /* -ENOLCK, -ENOMEM, -EINVAL */
	}
}

/* LOCK, LOCK_MSG, NM_LOCK */
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
	bool resv_block = false;
	bool late_reclaim;
	struct nlm_host *host;
	struct lk_owner *o;
	struct lk_range r;
	nlm4_stats st;
	char nm[LOG_SAFE_MAX];
	int rc;

	if (!res->cookie.sgn_netobj_val && nlm_copy_netobj(&res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	st = nlm_grace_refuses(ng, a->reclaim);
	/* The grace rule refuses a reclaim out of grace; see just below. */
	late_reclaim = st == NLM4_DENIED_NOLOCKS && a->reclaim && !grp_in_grace(ng->gp);
	if (st == NLM4_GRANTED || late_reclaim)
		st = nlm_prepare(ng, req, lk, true, &host, &o, &r);
	if (st != NLM4_GRANTED) {
		res->stat.stat = st;
		return nlm_done(req);
	}
	/* A reclaim out of grace is refused, except one of a lock this owner
	 * holds already: a client whose SM_NOTIFY came late (its statd was
	 * unreachable at the takeover) locked anew, then reclaims the same
	 * lock.  Refused, Linux drops that lock from what it reclaims at the
	 * next failover while the server still holds it, and another host is
	 * granted it when that grace ends.  Holding it, nothing changes and
	 * nothing is journaled. */
	if (late_reclaim) {
		res->stat.stat = lk_holds(ng->locks, fh, fhlen, o, type, r) ?
				 NLM4_GRANTED : NLM4_DENIED_NOLOCKS;
		log_info("group=%s client=%s reclaim out of grace: %s", ng->name,
			 nlm_safe(nm, sizeof(nm), host->name),
			 res->stat.stat == NLM4_GRANTED ? "held already, granted" :
			 "not held, refused");
		goto out_put;
	}
	/* Grace with reservations: refuse only what would take another
	 * owner's lock away (a "reclaim" of such a range claims a lock the
	 * journal says someone else held: no). */
	if (grp_in_grace(ng->gp) && nlm_resv_conflicts_lock(ng, host, (uint32_t)lk->svid,
						    lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len,
						    fh, fhlen, a->exclusive, r)) {
		if (!block || a->reclaim) {
			res->stat.stat = a->reclaim ? NLM4_DENIED : NLM4_DENIED_GRACE_PERIOD;
			goto out_put;
		}
		resv_block = true; /* waits behind it: nlm_resv_waiters_retry */
	}
	/* A request that will be refused at once grants nothing: no disk
	 * write, and no place on the list (nor a notification later).  A
	 * blocking one is listed: its GRANTED callback will be a grant. */
	if (!block && lk_test(ng->locks, fh, fhlen, o, type, r, NULL) == -EAGAIN) {
		rc = -EAGAIN;
		goto out;
	}
	if (!nlm_jr_can_grant(ng, host)) {
		rc = -ENOLCK;
		goto out;
	}
	rc = nlm_ensure_listed(ng, req, host);
	if (rc == 0) {
		lk_owner_put(ng->locks, o);
		nlm_host_put(ng, host); /* the parked request holds its own */
		return RPC_DONE_ASYNC;
	}
	if (rc < 0) {
		res->stat.stat = NLM4_DENIED_NOLOCKS;
		goto out_put;
	}
	if (!block) {
		rc = lk_lock(ng->locks, fh, fhlen, o, type, r, NULL);
	} else {
		struct nlm_block *b = calloc(1, sizeof(*b));
		struct lk_waiter *w = NULL;

		if (!b || (lk->oh.sgn_netobj_len && !(b->oh = malloc(lk->oh.sgn_netobj_len)))) {
			free(b);
			rc = -ENOMEM;
			goto out;
		}
		if (resv_block && nlm_resv_block_find(ng, host, lk, a->exclusive)) {
			rc = -EINPROGRESS; /* a retransmission: still waiting */
			w = NULL;
		} else if (resv_block && nlm_resv_blocks_of(ng, host) >= LK_DEFAULT_MAX_WAITERS) {
			rc = -ENOLCK; /* as the engine caps a client's waiters */
		} else if (resv_block) {
			rc = -EINPROGRESS;
			w = NULL;
			b->resv_wait = true;
		} else {
			rc = lk_lock_wait(ng->locks, fh, fhlen, o, type, r, b, &w, NULL);
		}
		if (rc == -EINPROGRESS && (b->resv_wait || (w && lk_waiter_priv(w) == b))) {
			/* A new waiter: remember how to call the client back. */
			b->ng = ng;
			b->host = host;
			host->refs++;
			nlm_target(req, &b->target);
			b->msg = req->proc == NLMPROC_LOCK_MSG;
			b->exclusive = a->exclusive;
			b->svid = (uint32_t)lk->svid;
			memcpy(b->fh, fh, fhlen);
			b->fhlen = fhlen;
			if (lk->oh.sgn_netobj_len)
				memcpy(b->oh, lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len);
			b->ohlen = lk->oh.sgn_netobj_len;
			b->offset = lk->l_offset;
			b->len = lk->l_len;
			b->w = w;
			/* Unguessable: GRANTED_RES with a refusal takes the
			 * lock back, so a counter would let a third host
			 * answer for the holder. */
			if (getrandom(&b->cookie, sizeof(b->cookie), GRND_NONBLOCK) !=
			    (ssize_t)sizeof(b->cookie))
				b->cookie = uv_hrtime() ^ ((uint64_t)(uintptr_t)b << 16);
			b->next = ng->blocks;
			if (ng->blocks)
				ng->blocks->prev = b;
			ng->blocks = b;
		} else {
			/* Granted at once, refused, or a retransmission that
			 * found its waiter: this block is not needed. */
			free(b->oh);
			free(b);
		}
	}
	if (rc == 0) {
		/* Journal the grant before anything it caused (a downgrade
		 * may grant waiters), and answer once it is durable. */
		nlm_resv_unlock(ng, host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
				lk->oh.sgn_netobj_len, fh, fhlen, r);
		if (nlm_jr_lock(ng, true, host, (uint32_t)lk->svid, lk->oh.sgn_netobj_val,
				lk->oh.sgn_netobj_len, fh, fhlen, a->exclusive, r) < 0) {
			lk_unlock(ng->locks, fh, fhlen, o, r);
			rc = -ENOLCK;
		}
	}
	nlm_flush_grants(ng);
	if (rc == 0 && a->reclaim)
		log_info("group=%s client=%s reclaimed a lock", ng->name,
			 nlm_safe(nm, sizeof(nm), host->name));
	if (rc == 0) {
		res->stat.stat = NLM4_GRANTED;
		nlm_resv_check_done(ng, "a reclaim");
		if (a->reclaim)
			nlm_resv_waiters_retry(ng);
		switch (nlm_journal_park(ng, req, host)) {
		case 0:
			lk_owner_put(ng->locks, o);
			nlm_host_put(ng, host);
			return RPC_DONE_ASYNC;
		case 1:
			break;
		default:
			nlm_req_take_back(ng, req, host);
			break;
		}
		goto out_put;
	}
out:
	res->stat.stat = nlm_stat_of(rc);
out_put:
	lk_owner_put(ng->locks, o);
	nlm_host_put(ng, host);
	return nlm_done(req);
}

/* What CANCEL and UNLOCK do once the request is checked: give something up. */
typedef nlm4_stats (*nlm_release_fn)(struct nlm_group *ng, const nlm4_lock *lk,
				     struct lk_owner *o, struct lk_range r, bool exclusive);

static nlm4_stats nlm_do_cancel(struct nlm_group *ng, const nlm4_lock *lk,
				struct lk_owner *o, struct lk_range r, bool exclusive)
{
	struct lk_waiter *w = lk_waiter_find(ng->locks, lk->fh.sgn_netobj_val,
					     lk->fh.sgn_netobj_len, o,
					     exclusive ? LK_EXCL : LK_SHARED, r);
	struct nlm_block *b;

	if (!w) {
		b = nlm_resv_block_find(ng, lk_client_priv(lk_owner_client(o)), lk, exclusive);
		if (!b)
			return NLM4_DENIED;
		nlm_block_free(b);
		return NLM4_GRANTED;
	}
	b = lk_waiter_priv(w);
	lk_cancel(ng->locks, w); /* never touches held locks */
	b->w = NULL;
	nlm_block_free(b);
	return NLM4_GRANTED;
}

static nlm4_stats nlm_do_unlock(struct nlm_group *ng, const nlm4_lock *lk,
				struct lk_owner *o, struct lk_range r, bool exclusive)
{
	struct nlm_host *h = lk_client_priv(lk_owner_client(o));

	if (nlm_unlock_journaled(ng, h, o, lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, r) < 0)
		return NLM4_DENIED_NOLOCKS;
	nlm_resv_unlock(ng, h, (uint32_t)lk->svid, lk->oh.sgn_netobj_val, lk->oh.sgn_netobj_len,
			lk->fh.sgn_netobj_val, lk->fh.sgn_netobj_len, r);
	nlm_resv_check_done(ng, "an UNLOCK");
	nlm_resv_waiters_retry(ng);
	return NLM4_GRANTED;
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

	if (nlm_copy_netobj(&res->cookie, cookie) < 0)
		return RPC_DONE_SYSERR;
	res->stat.stat = nlm_prepare(ng, req, lk, false, &host, &o, &r);
	if (res->stat.stat != NLM4_GRANTED)
		return nlm_done(req);
	res->stat.stat = fn(ng, lk, o, r, exclusive);
	lk_owner_put(ng->locks, o);
	nlm_host_put(ng, host);
	return nlm_done(req);
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

	if (nlm_copy_netobj(&res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	res->stat.stat = NLM4_DENIED;
	if (req->proc == NLMPROC_GRANTED_MSG) {
		struct nlm_cb_target t;
		nlm_target(req, &t);
		nlm_cb_send(nlm_grp(req)->cb, &t, NLMPROC_GRANTED_RES,
			    req->vers == 4 ? (xdrproc_t)xdr_nlm4_res : (xdrproc_t)nlm3_xdr_res, res);
	}
	return RPC_DONE_REPLY;
}

/*
 * GRANTED_RES: a client's answer to our GRANTED_MSG.  Only the address the
 * GRANTED_MSG went to may answer it, with the random cookie it carried: a
 * refusal takes the lock back, which no third host may do for the holder.
 */
static enum rpc_disposition nlm_proc_granted_res(struct rpc_req *req)
{
	struct nlm_group *ng = nlm_grp(req);
	const nlm4_res *a = req->args;
	struct sockaddr_storage from, to;
	uint64_t cookie;
	char ad[80];

	nlm_res_wait_trim(ng);
	if (a->cookie.sgn_netobj_len != sizeof(cookie))
		return RPC_DONE_REPLY;
	memcpy(&cookie, a->cookie.sgn_netobj_val, sizeof(cookie));
	sa_norm(&req->peer, &from);
	for (struct nlm_block *b = ng->res_wait; b; b = b->rnext) {
		if (b->cookie != cookie)
			continue;
		sa_norm(&b->target.client, &to);
		if (!sa_same_host(&from, &to)) {
			char nm[LOG_SAFE_MAX];
			log_warn("group=%s client=%s GRANTED_RES from %s ignored: the GRANTED_MSG went to another address",
				 ng->name, nlm_safe(nm, sizeof(nm), b->host->name),
				 rpc_addr_str(&req->peer, false, ad, sizeof(ad)));
			break;
		}
		if (a->stat.stat != NLM4_GRANTED)
			nlm_block_take_back(b, "client answered GRANTED_MSG with a refusal");
		nlm_block_free(b);
		break;
	}
	return RPC_DONE_REPLY;
}

/* The other _RES procedures: answers to _MSG calls we never make. */
static enum rpc_disposition nlm_proc_res_ignored(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

/* SHARE, UNSHARE */
static enum rpc_disposition nlm_proc_share(struct rpc_req *req)
{
	struct nlm_group *ng = nlm_grp(req);
	const nlm4_shareargs *a = req->args;
	nlm4_shareres *res = req->res;
	const nlm4_share *sh = &a->share;
	bool unshare = req->proc == NLMPROC_UNSHARE;
	struct nlm_host *host;
	struct lk_owner *o;
	int rc;

	if (!res->cookie.sgn_netobj_val && nlm_copy_netobj(&res->cookie, &a->cookie) < 0)
		return RPC_DONE_SYSERR;
	res->stat = unshare ? NLM4_GRANTED : nlm_grace_refuses(ng, a->reclaim);
	/* A reclaim out of grace goes on to the check below (nlm_proc_lock). */
	if (res->stat != NLM4_GRANTED && !(a->reclaim && !grp_in_grace(ng->gp)))
		return RPC_DONE_REPLY;
	res->stat = nlm_fh_check(ng, &sh->fh, &req->peer, req->pd->name);
	if (res->stat != NLM4_GRANTED)
		return RPC_DONE_REPLY;
	if (!sh->caller_name || clist_name_check(sh->caller_name, strlen(sh->caller_name)) < 0) {
		char nm[LOG_SAFE_MAX];
		log_warn("group=%s client=%s %s refused: unusable caller_name", ng->name,
			 nlm_safe(nm, sizeof(nm), sh->caller_name), req->pd->name);
		res->stat = NLM4_DENIED_NOLOCKS;
		return RPC_DONE_REPLY;
	}
	if (!unshare && nlm_addr_caps(ng, sh->caller_name, &req->peer, true) < 0) {
		ng->refused_caps++;
		res->stat = NLM4_DENIED_NOLOCKS;
		return RPC_DONE_REPLY;
	}
	if (!(host = nlm_host_get(ng, sh->caller_name))) {
		res->stat = NLM4_DENIED_NOLOCKS;
		return RPC_DONE_REPLY;
	}
	nlm_host_seen(ng, host, &req->peer);
	host->refs++; /* for this request, as in nlm_prepare */
	if (!unshare && a->reclaim && !grp_in_grace(ng->gp)) {
		/* Granted only if held already: see nlm_proc_lock. */
		char nm[LOG_SAFE_MAX];

		res->stat = NLM4_DENIED_NOLOCKS;
		if (lk_owner_get(ng->locks, host->lkc, 0, sh->oh.sgn_netobj_val,
				 sh->oh.sgn_netobj_len, &o) == 0) {
			if (lk_share_holds(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len,
					   o, (unsigned)sh->access, (unsigned)sh->mode))
				res->stat = NLM4_GRANTED;
			lk_owner_put(ng->locks, o);
		}
		log_info("group=%s client=%s share reclaim out of grace: %s", ng->name,
			 nlm_safe(nm, sizeof(nm), host->name),
			 res->stat == NLM4_GRANTED ? "held already, granted" : "not held, refused");
		nlm_host_put(ng, host);
		return RPC_DONE_REPLY;
	}
	if (!unshare && grp_in_grace(ng->gp) &&
	    nlm_resv_conflicts_share(ng, host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
				     sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len,
				     (unsigned)sh->access, (unsigned)sh->mode)) {
		res->stat = a->reclaim ? NLM4_DENIED : NLM4_DENIED_GRACE_PERIOD;
		nlm_host_put(ng, host);
		return RPC_DONE_REPLY;
	}
	if (!unshare && !nlm_jr_can_grant(ng, host)) {
		res->stat = NLM4_DENIED_NOLOCKS;
		nlm_host_put(ng, host);
		return RPC_DONE_REPLY;
	}
	if (!unshare) {
		rc = nlm_ensure_listed(ng, req, host);
		if (rc == 0) {
			nlm_host_put(ng, host);
			return RPC_DONE_ASYNC;
		}
		if (rc < 0) {
			res->stat = NLM4_DENIED_NOLOCKS;
			nlm_host_put(ng, host);
			return RPC_DONE_REPLY;
		}
	}
	/* SHARE carries no svid: owners of share reservations use svid 0. */
	if (lk_owner_get(ng->locks, host->lkc, 0, sh->oh.sgn_netobj_val,
			 sh->oh.sgn_netobj_len, &o) < 0) {
		res->stat = NLM4_DENIED_NOLOCKS;
		nlm_host_put(ng, host);
		return RPC_DONE_REPLY;
	}
	if (unshare)
		rc = lk_unshare(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, o);
	else
		rc = lk_share(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, o,
			      (unsigned)sh->access, (unsigned)sh->mode);
	if (rc == 0) {
		/* Either way the owner's reservation on the file is settled. */
		nlm_resv_unshare(ng, host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
				 sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len);
		if (nlm_jr_share(ng, !unshare, host, sh->oh.sgn_netobj_val, sh->oh.sgn_netobj_len,
				 sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, (unsigned)sh->access,
				 (unsigned)sh->mode) < 0 && !unshare) {
			lk_unshare(ng->locks, sh->fh.sgn_netobj_val, sh->fh.sgn_netobj_len, o);
			rc = -ENOLCK;
		}
	}
	res->stat = nlm_stat_of(rc);
	lk_owner_put(ng->locks, o);
	if (rc == 0) {
		nlm_resv_check_done(ng, unshare ? "an UNSHARE" : "a SHARE");
		nlm_resv_waiters_retry(ng);
		if (!unshare) {
			switch (nlm_journal_park(ng, req, host)) {
			case 0:
				nlm_host_put(ng, host);
				return RPC_DONE_ASYNC;
			case 1:
				break;
			default:
				nlm_req_take_back(ng, req, host);
				break;
			}
		}
	}
	nlm_host_put(ng, host);
	return RPC_DONE_REPLY;
}

/* Everything @h has in the group goes: locks, shares, waiters, and its
 * reservations; the waiters this satisfies are granted. */
static void nlm_release_host(struct nlm_group *ng, struct nlm_host *h, const char *why)
{
	lk_client_release(ng->locks, h->lkc);
	nlm_resv_waiters_drop_host(ng, h);
	nlm_jr_free_client(ng, h);
	nlm_flush_grants(ng);
	nlm_resv_release_client(ng, h);
	nlm_resv_check_done(ng, why);
	nlm_resv_waiters_retry(ng);
}

struct nlm_addr_collect {
	struct nlm_group *ng;
	const struct sockaddr_storage *from;
	struct nlm_host *found[16];
	size_t n;
};

static bool nlm_collect_listed(void *arg, struct nlm_host *h)
{
	struct nlm_addr_collect *c = arg;

	if (clist_has_addr(c->ng->clients, h->name, c->from)) {
		h->refs++;
		c->found[c->n++] = h;
	}
	return c->n < 16;
}

/* Release every host that sent requests from @from and whose client-list
 * entry records that address.  Looked up in the address index: a reboot
 * from an address no host used costs nothing, however many hosts there are. */
static bool nlm_release_by_addr(struct nlm_group *ng, const struct sockaddr_storage *from,
				const char *why)
{
	struct nlm_addr_collect c = { .ng = ng, .from = from };
	char nm[LOG_SAFE_MAX], ad[80];

	/* Collect first: releasing may free hosts from the table. */
	nlm_hosts_at(ng, from, nlm_collect_listed, &c);
	for (size_t i = 0; i < c.n; i++) {
		log_info("group=%s client=%s %s from its address %s: client restarted, releasing its locks here",
			 ng->name, nlm_safe(nm, sizeof(nm), c.found[i]->name), why,
			 rpc_addr_str(from, false, ad, sizeof(ad)));
		nlm_release_host(ng, c.found[i], why);
		nlm_host_put(ng, c.found[i]);
	}
	return c.n > 0;
}

bool nlm_group_client_rebooted(struct nlm_group *ng, const char *name,
			       const struct sockaddr_storage *from, bool trusted,
			       const char *why)
{
	struct nlm_host *host;
	char nm[LOG_SAFE_MAX], ad[80];

	if (!name || !(host = nlm_host_find(ng, name))) {
		/* The reboot may name the client differently from its locks
		 * (short name vs FQDN, name vs address): like a Linux statd,
		 * fall back to the sender's address, which must be one the
		 * client list records for the host it frees. */
		if (!trusted && nlm_release_by_addr(ng, from, why))
			return true;
		log_info("group=%s client=%s %s: holds nothing here", ng->name,
			 nlm_safe(nm, sizeof(nm), name), why);
		return false;
	}
	if (!trusted && !clist_has_addr(ng->clients, host->name, from)) {
		log_warn("group=%s client=%s %s from %s refused: not an address of that client",
			 ng->name, nlm_safe(nm, sizeof(nm), name), why,
			 rpc_addr_str(from, false, ad, sizeof(ad)));
		return false;
	}
	log_info("group=%s client=%s %s: client restarted, releasing its locks here", ng->name,
		 nlm_safe(nm, sizeof(nm), name), why);
	host->refs++;
	nlm_release_host(ng, host, why);
	nlm_host_put(ng, host);
	return true;
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

/* A parked request, now durable on the client list, runs again. */
static enum rpc_disposition nlm_dispatch_again(struct rpc_req *req)
{
	enum rpc_disposition d;

	d = req->proc == NLMPROC_SHARE ? nlm_proc_share(req) : nlm_proc_lock(req);
	if (d != RPC_DONE_ASYNC)
		rpc_req_finish(req, d);
	return RPC_DONE_ASYNC;
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

#define NLM_P(NAME, fn_, A, XA, R, XR) \
	[NLMPROC_##NAME] = { .name = #NAME, .fn = fn_, \
		.xdr_args = (xdrproc_t)XA, .args_size = sizeof(A), \
		.xdr_res = (xdrproc_t)XR, .res_size = sizeof(R) }

/* One row set per version; v1/v3 differ only in their edge XDR. */
#define NLM_PROCS(XTESTA, XLOCKA, XCANCA, XUNLA, XRES, XTESTRES, XSHAREA, XSHARERES, XNOTIFY) \
	NLM_P(NULL, nlm_proc_null, char, rpc_xdr_void, char, rpc_xdr_void),                    \
	NLM_P(TEST, nlm_proc_test, nlm4_testargs, XTESTA, nlm4_testres, XTESTRES),              \
	NLM_P(LOCK, nlm_proc_lock, nlm4_lockargs, XLOCKA, nlm4_res, XRES),                      \
	NLM_P(CANCEL, nlm_proc_cancel, nlm4_cancargs, XCANCA, nlm4_res, XRES),                  \
	NLM_P(UNLOCK, nlm_proc_unlock, nlm4_unlockargs, XUNLA, nlm4_res, XRES),                 \
	NLM_P(GRANTED, nlm_proc_granted, nlm4_testargs, XTESTA, nlm4_res, XRES),                \
	NLM_P(TEST_MSG, nlm_proc_test, nlm4_testargs, XTESTA, nlm4_testres, nlm_xdr_msg_testres), \
	NLM_P(LOCK_MSG, nlm_proc_lock, nlm4_lockargs, XLOCKA, nlm4_res, nlm_xdr_msg_res),       \
	NLM_P(CANCEL_MSG, nlm_proc_cancel, nlm4_cancargs, XCANCA, nlm4_res, nlm_xdr_msg_res),   \
	NLM_P(UNLOCK_MSG, nlm_proc_unlock, nlm4_unlockargs, XUNLA, nlm4_res, nlm_xdr_msg_res),  \
	NLM_P(GRANTED_MSG, nlm_proc_granted, nlm4_testargs, XTESTA, nlm4_res, nlm_xdr_msg_res), \
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
		  nlm3_xdr_res, nlm3_xdr_testres, _, _, _),
	NLM_P_SM_NOTIFY,
};

static const struct rpc_proc nlm_v3_procs[] = {
	NLM_PROCS(nlm3_xdr_testargs, nlm3_xdr_lockargs, nlm3_xdr_cancargs, nlm3_xdr_unlockargs,
		  nlm3_xdr_res, nlm3_xdr_testres, _, _, _),
	NLM_P(SHARE, nlm_proc_share, nlm4_shareargs, nlm3_xdr_shareargs, nlm4_shareres, nlm3_xdr_shareres),
	NLM_P(UNSHARE, nlm_proc_share, nlm4_shareargs, nlm3_xdr_shareargs, nlm4_shareres, nlm3_xdr_shareres),
	NLM_P(NM_LOCK, nlm_proc_lock, nlm4_lockargs, nlm3_xdr_lockargs, nlm4_res, nlm3_xdr_res),
	NLM_P(FREE_ALL, nlm_proc_free_all, nlm4_notify, nlm3_xdr_notify, char, rpc_xdr_void),
	NLM_P_SM_NOTIFY,
};

static const struct rpc_proc nlm_v4_procs[] = {
	NLM_PROCS(xdr_nlm4_testargs, xdr_nlm4_lockargs, xdr_nlm4_cancargs, xdr_nlm4_unlockargs,
		  xdr_nlm4_res, xdr_nlm4_testres, _, _, _),
	NLM_P(SHARE, nlm_proc_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres, xdr_nlm4_shareres),
	NLM_P(UNSHARE, nlm_proc_share, nlm4_shareargs, xdr_nlm4_shareargs, nlm4_shareres, xdr_nlm4_shareres),
	NLM_P(NM_LOCK, nlm_proc_lock, nlm4_lockargs, xdr_nlm4_lockargs, nlm4_res, xdr_nlm4_res),
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

/* ---- group lifecycle (struct grp_proto_ops, group/gslot.h) ----------- */

/* Free the hosts and their lock table: pure memory, any thread. */
static void nlm_group_free_tables(struct lk_table *locks, struct nlm_host **hosts)
{
	for (size_t i = 0; i < NLM_HOST_BUCKETS; i++) {
		while (hosts[i]) {
			struct nlm_host *h = hosts[i];
			hosts[i] = h->hnext;
			free(h->name);
			free(h);
		}
	}
	lk_table_free(locks); /* frees every lk_client too */
}

/* A loaded group that never came online: any thread. */
static void nlm_group_discard(struct nlm_group *ng)
{
	if (!ng)
		return;
	nlm_journal_close(ng);
	nlm_group_free_tables(ng->locks, ng->hosts);
	free(ng);
}

/* On the thread pool: an empty lock table, and the journal replayed into
 * the group's own reservation table.  Touches no loop. */
static int nlm_open(struct grp_pub *gp, void **slot)
{
	struct nlm_group *ng = calloc(1, sizeof(*ng));
	struct lk_table_opts lo = { 0 };
	int rc;

	if (!ng)
		return -ENOMEM;
	ng->gp = gp;
	ng->name = gp->name;
	ng->clients = gp->clients;
	lo.on_grant = nlm_on_grant;
	lo.on_drop = nlm_on_drop;
	lo.cb_arg = ng;
	/* Keys come off the wire: seed the hash so collisions cannot be
	 * planned (no secrecy needed beyond that). */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lo.hash_seed[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)ng;
	lo.hash_seed[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull;
	rc = lk_table_new(&lo, &ng->locks);
	if (rc < 0)
		goto err;
	ng->granted_tail = &ng->granted;
	rc = nlm_journal_open(ng, gp->cfg->statedir);
	if (rc < 0)
		goto err;
	*slot = ng;
	return 0;
err:
	nlm_group_discard(ng);
	return rc;
}

/*
 * On the loop, before the group serves: the loop's handles, and whether
 * anything may need reclaiming (reservations from the journal; without a
 * trusted journal, any client on the list).
 */
static int nlm_online(struct grp_pub *gp, void *slot)
{
	struct nlm_group *ng = slot;
	int rc = nlm_cb_new(nlm_loop(ng), ng->name, &ng->cb);

	(void)gp;
	if (rc < 0)
		return rc;
	if (ng->jr)
		jr_attach(ng->jr, nlm_loop(ng));
	ng->attached = true;
	if (nlm_journal_needs_grace(ng)) {
		if (ng->resv)
			log_info("group=%s NLM recovers %zu reserved locks and shares; new locks "
				 "that conflict with none are granted meanwhile", ng->name,
				 ng->resv_loaded);
		else
			log_info("group=%s NLM recovers with a plain grace: only reclaims are "
				 "granted on its filesystems", ng->name);
		return 1;
	}
	if (ng->jr)
		log_info("group=%s the journal holds no lock to recover: no grace needed",
			 ng->name);
	else
		log_info("group=%s client list is empty: no grace needed", ng->name);
	return 0;
}

/* The lock table and hosts of a group gone offline, freed on the pool: a
 * table holds as many locks as clients took, and freeing millions of
 * them must not stall the other groups. */
struct nlm_free_work {
	uv_work_t work;
	struct lk_table *locks;
	struct nlm_host *hosts[NLM_HOST_BUCKETS];
};

static void nlm_free_work(uv_work_t *w)
{
	struct nlm_free_work *fw = w->data;

	nlm_group_free_tables(fw->locks, fw->hosts);
}

static void nlm_free_done(uv_work_t *w, int status)
{
	(void)status;
	free(w->data);
}

/* Drop every lock, share, waiter and pending reply of the group (it goes
 * offline); requests waiting on the disk are abandoned without a reply. */
static void nlm_close(struct grp_pub *gp, void *slot, bool online)
{
	struct nlm_group *ng = slot;
	struct nlm_free_work *fw;

	(void)gp;
	if (!ng)
		return;
	if (!online || !ng->attached) {
		nlm_group_discard(ng);
		return;
	}
	ng->closing = true;
	/* Writes in flight finish unheard; nothing waits for them now. */
	nlm_journal_close(ng);
	ng->granted = NULL;
	while (ng->parked) {
		struct nlm_parked *p = ng->parked;
		ng->parked = p->next;
		rpc_req_finish(p->req, RPC_DONE_NOREPLY);
		free(p);
	}
	nlm_cb_close(ng->cb); /* in-flight GRANTED callbacks end here */
	while (ng->blocks) {
		struct nlm_block *b = ng->blocks;
		ng->blocks = b->next;
		free(b->oh);
		free(b);
	}
	fw = calloc(1, sizeof(*fw));
	if (fw) {
		fw->work.data = fw;
		fw->locks = ng->locks;
		memcpy(fw->hosts, ng->hosts, sizeof(fw->hosts));
		if (uv_queue_work(nlm_loop(ng), &fw->work, nlm_free_work, nlm_free_done) != 0) {
			free(fw);
			fw = NULL;
		}
	}
	if (!fw)
		nlm_group_free_tables(ng->locks, ng->hosts);
	free(ng);
}

/* The group's grace is over: what was not reclaimed is dropped. */
static void nlm_grace_end(struct grp_pub *gp, void *slot)
{
	(void)gp;
	nlm_resv_drop(slot);
	nlm_resv_waiters_retry(slot);
}

static bool nlm_client_rebooted_op(struct grp_pub *gp, void *slot, const char *name,
				   const struct sockaddr_storage *from, bool trusted,
				   const char *why)
{
	(void)gp;
	return nlm_group_client_rebooted(slot, name, from, trusted, why);
}

static void nlm_status_op(const struct grp_pub *gp, const void *slot, struct json_object *o)
{
	(void)gp;
	nlm_group_status(slot, o);
}

static size_t nlm_nlocks_op(const void *slot)
{
	return nlm_group_nlocks(slot);
}

static size_t nlm_nwaiters_op(const void *slot)
{
	return nlm_group_nwaiters(slot);
}

static void nlm_journal_stats_op(const void *slot, struct jr_stats *st)
{
	nlm_group_journal_stats(slot, st);
}

const struct grp_proto_ops nlm_group_ops = {
	.name = "nlm",
	.open = nlm_open,
	.online = nlm_online,
	.grace_end = nlm_grace_end,
	.close = nlm_close,
	.status = nlm_status_op,
	.client_rebooted = nlm_client_rebooted_op,
	.nlocks = nlm_nlocks_op,
	.nwaiters = nlm_nwaiters_op,
	.journal_stats = nlm_journal_stats_op,
};

/* ---- status ----------------------------------------------------------- */

size_t nlm_group_nwaiters(const struct nlm_group *ng)
{
	struct lk_stats st;

	lk_table_stats(ng->locks, &st);
	return st.waiters;
}

void nlm_group_journal_stats(const struct nlm_group *ng, struct jr_stats *st)
{
	if (ng && ng->jr)
		jr_get_stats(ng->jr, st);
}

size_t nlm_group_nlocks(const struct nlm_group *ng)
{
	struct lk_stats st;

	lk_table_stats(ng->locks, &st);
	return st.locks;
}

struct nlm_status_ctx {
	struct json_object *arr;   /* borrowed: the "clients" or "locks" array */
};

static void nlm_status_client(void *arg, const struct clist_entry_info *e)
{
	struct nlm_status_ctx *c = arg;
	struct json_object *o = json_object_new_object();
	struct json_object *addrs = json_object_new_array();
	char a[80];

	sj_add(o, "name", sj_wire_str(e->name, strlen(e->name)));
	sj_add(o, "holding", json_object_new_boolean(e->holding));
	sj_add(o, "added", json_object_new_int64(e->added));
	for (size_t i = 0; i < e->naddrs; i++)
		sj_push(addrs, json_object_new_string(rpc_addr_str(&e->addrs[i], false, a,
								    sizeof(a))));
	sj_add(o, "addresses", addrs);
	sj_push(c->arr, o);
}

static int nlm_status_lock(void *arg, const struct lk_lockinfo *li)
{
	struct nlm_status_ctx *c = arg;
	const struct nlm_host *h = lk_client_priv(lk_owner_client(li->owner));
	size_t ohlen;
	const void *oh = lk_owner_oh(li->owner, &ohlen);
	struct json_object *o = json_object_new_object();

	sj_add(o, "client", sj_wire_str(h->name, strlen(h->name)));
	sj_add(o, "svid", json_object_new_int64(lk_owner_svid(li->owner)));
	sj_add(o, "owner", sj_hex(oh, ohlen));
	sj_add(o, "file", sj_hex(li->key, li->keylen));
	sj_add(o, "start", json_object_new_uint64(li->range.start));
	sj_add(o, "end", li->range.end == LK_EOF ? json_object_new_string("eof")
						 : json_object_new_uint64(li->range.end));
	sj_add(o, "type", json_object_new_string(li->type == LK_EXCL ? "exclusive" : "shared"));
	sj_push(c->arr, o);
	return 0;
}

void nlm_group_status(const struct nlm_group *ng, struct json_object *out)
{
	struct nlm_status_ctx c;
	/* The journal: off, on (what is still reserved), or failed. */
	struct lk_stats rs = { 0 };
	struct jr_stats js = { 0 };
	const char *jstate = !ng->jr ? "off" : jr_can_grant(ng->jr) ? "on" : "failed";
	struct json_object *j = json_object_new_object();

	if (ng->resv)
		lk_table_stats(ng->resv, &rs);
	if (ng->jr)
		jr_get_stats(ng->jr, &js);
	sj_add(j, "state", json_object_new_string(jstate));
	sj_add(j, "reserved", json_object_new_uint64(rs.locks + rs.shares));
	sj_add(j, "bytes", json_object_new_int64(js.size));
	sj_add(j, "batches", json_object_new_uint64(js.batches));
	sj_add(j, "compactions", json_object_new_uint64(js.compactions));
	sj_add(j, "failures", json_object_new_uint64(js.failures));
	if (ng->jr) /* how batches are written: "uring", or "thread" (the fallback) */
		sj_add(j, "io", json_object_new_string(jr_uses_uring(ng->jr) ? "uring" : "thread"));
	sj_add(out, "journal", j);
	/* Counters of the NLM trust checks (docs/status.md). */
	j = json_object_new_object();
	sj_add(j, "hosts", json_object_new_uint64(ng->nhosts));
	sj_add(j, "granted_res_waiting", json_object_new_uint64(ng->nres_wait));
	sj_add(j, "address_probes", json_object_new_uint64(ng->addr_probes));
	sj_add(j, "refused_clients", json_object_new_uint64(ng->refused_clients));
	sj_add(j, "refused_caps", json_object_new_uint64(ng->refused_caps));
	sj_add(out, "nlm", j);
	c.arr = json_object_new_array();
	clist_foreach(ng->clients, nlm_status_client, &c);
	sj_add(out, "clients", c.arr);
	c.arr = json_object_new_array();
	lk_foreach_lock(ng->locks, nlm_status_lock, &c);
	sj_add(out, "locks", c.arr);
}
