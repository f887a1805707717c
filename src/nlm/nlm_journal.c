/*
 * nlm_journal.c - a group's lock journal as the NLM layer uses it, and the
 * reservations it yields after a takeover.
 *
 * Recording: every change of the group's lock table is appended to the
 * journal (src/journal) by the code that made it, right after the change,
 * in the order the changes happened: replaying the records through the
 * same lock engine rebuilds the same locks.  Grants are answered only once
 * their record is durable (nlm_svc.c parks them); releases are not waited
 * for.
 *
 * Recovery: at open, the journal is replayed into a second lock table,
 * ng->resv: the reservations.  While the group is in grace:
 *   - a reclaim is granted and takes its range out of the owner's
 *     reservation; so does a new lock of that same owner (POSIX: an owner's
 *     lock replaces what it held in the range);
 *   - a new lock or share that conflicts with no reservation of another
 *     owner goes to the lock engine as usual; one that conflicts is refused
 *     with DENIED_GRACE_PERIOD;
 *   - UNLOCK, UNSHARE, FREE_ALL and SM_NOTIFY release reservations too;
 *   - when no reservation is left, grace ends (nlm_resv_check_done).
 * At the timeout what is left is dropped, and the journal is compacted so
 * it no longer holds it.
 *
 * The journal is trusted only if it loaded whole and its header says it is
 * complete.  A missing journal (with clients on the list), a damaged one,
 * or one written during a plain grace that did not finish, gives a plain
 * grace (refuse every new lock until the timeout) and a new journal marked
 * incomplete, which becomes complete when that grace ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "group/gslot.h"
#include "journal/journal.h"
#include "log.h"
#include "wq.h"
#include "sfile.h"
#include "shash.h"
#include "nlm/nlm_host.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_svc.h"
#include "nsm/clist.h"

static uv_loop_t *nlm_jloop(const struct nlm_group *ng)
{
	return ng->gp->loop;
}

/* ---- records ---------------------------------------------------------- */

int nlm_jr_lock(struct nlm_group *ng, bool lock, const struct nlm_host *h, uint32_t svid,
		const void *oh, size_t ohlen, const void *fh, size_t fhlen, bool excl,
		struct lk_range r)
{
	if (!ng->jr)
		return 0;

	struct jr_rec rec = {
		.type = lock ? JR_LOCK : JR_UNLOCK, .host = h->name, .hostlen = strlen(h->name),
		.svid = svid, .oh = oh, .ohlen = ohlen, .fh = fh, .fhlen = fhlen,
		.excl = lock && excl, .start = r.start, .end = r.end,
	};

	return jr_append(ng->jr, &rec);
}

int nlm_jr_share(struct nlm_group *ng, bool share, const struct nlm_host *h, const void *oh,
		 size_t ohlen, const void *fh, size_t fhlen, unsigned mode, unsigned deny)
{
	struct jr_rec rec = {
		.type = share ? JR_SHARE : JR_UNSHARE, .host = h->name,
		.hostlen = strlen(h->name), .oh = oh, .ohlen = ohlen, .fh = fh, .fhlen = fhlen,
		.mode = share ? mode : 0, .deny = share ? deny : 0,
	};

	return ng->jr ? jr_append(ng->jr, &rec) : 0;
}

int nlm_jr_free_client(struct nlm_group *ng, const struct nlm_host *h)
{
	struct jr_rec rec = { .type = JR_FREE_CLIENT, .host = h->name, .hostlen = strlen(h->name) };

	return ng->jr ? jr_append(ng->jr, &rec) : 0;
}

bool nlm_jr_can_grant(struct nlm_group *ng, const struct nlm_host *h)
{
	uint64_t now;
	char nm[LOG_SAFE_MAX];

	if (!ng->jr || jr_can_grant(ng->jr))
		return true;
	ng->jr_refused++;
	now = uv_now(nlm_jloop(ng));
	if (ng->jr_refused_logged == 0 || now - ng->jr_refused_logged >= 1000) {
		log_warn("group=%s client=%s lock refused: the journal cannot be written (%s); "
			 "%" PRIu64 " refused since the last such line", ng->name,
			 log_safe(nm, sizeof(nm), h->name, strlen(h->name)),
			 strerror(-jr_error(ng->jr)), ng->jr_refused);
		ng->jr_refused_logged = now;
		ng->jr_refused = 0;
	}
	return false;
}

/* ---- snapshot (compaction) -------------------------------------------- */

/* Where a table's locks and shares go as records: @add(@add_arg, rec);
 * @host names a client of the table (the live tables' clients are
 * nlm_hosts, a fold's its own nlm_fold_host). */
struct nlm_emit {
	jr_replay_fn add;
	void *add_arg;
	const char *(*host)(const struct lk_client *c);
};

static int nlm_snap_lock(void *arg, const struct lk_lockinfo *li)
{
	const struct nlm_emit *e = arg;
	const char *name = e->host(lk_owner_client(li->owner));
	struct jr_rec rec = { .type = JR_LOCK, .fh = li->key, .fhlen = li->keylen,
			      .excl = li->type == LK_EXCL, .start = li->range.start,
			      .end = li->range.end };

	rec.host = name;
	rec.hostlen = strlen(name);
	rec.svid = lk_owner_svid(li->owner);
	rec.oh = lk_owner_oh(li->owner, &rec.ohlen);
	return e->add(e->add_arg, &rec);
}

static int nlm_snap_share(void *arg, const struct lk_shareinfo *si)
{
	const struct nlm_emit *e = arg;
	const char *name = e->host(lk_owner_client(si->owner));
	struct jr_rec rec = { .type = JR_SHARE, .fh = si->key, .fhlen = si->keylen,
			      .mode = si->mode, .deny = si->deny };

	rec.host = name;
	rec.hostlen = strlen(name);
	rec.oh = lk_owner_oh(si->owner, &rec.ohlen);
	return e->add(e->add_arg, &rec);
}

static int nlm_emit_table(const struct lk_table *t, const struct nlm_emit *e)
{
	int rc = lk_foreach_lock(t, nlm_snap_lock, (void *)e);

	return rc ? rc : lk_foreach_share(t, nlm_snap_share, (void *)e);
}

static const char *nlm_host_name_of(const struct lk_client *c)
{
	return ((const struct nlm_host *)lk_client_priv(c))->name;
}

static int nlm_snap_add(void *arg, const struct jr_rec *r)
{
	return jr_snap_add(arg, r);
}

/* The state as the journal must hold it: reservations not yet reclaimed,
 * then the lock table (which wins where an owner has both).  On the loop:
 * only for the compactions where the live state is not the file's (a
 * failed journal; a grace end after a compaction in grace); the others
 * fold (below). */
static int nlm_snapshot(void *arg, struct jr *j)
{
	struct nlm_group *ng = arg;
	struct nlm_emit e = { .add = nlm_snap_add, .add_arg = j, .host = nlm_host_name_of };
	int rc = 0;

	if (ng->resv)
		rc = nlm_emit_table(ng->resv, &e);
	return rc ? rc : nlm_emit_table(ng->locks, &e);
}

/* ---- loading ---------------------------------------------------------- */

/* Replay @r (its client checked and found: @c of table @t).  *@rlast is
 * the owner of the client's previous record, one reference, kept until
 * the replay ends.  The one replay of a record, for the load and the
 * fold alike. */
static int nlm_replay_into(struct lk_table *t, struct lk_client *c, struct lk_owner **rlast,
			   const struct jr_rec *r)
{
	struct lk_owner *o;
	uint32_t svid;
	int rc;

	if (r->type == JR_FREE_CLIENT) {
		lk_client_release(t, c);
		return 0;
	}
	/* A host's records mostly name the owner its previous one named (a
	 * snapshot, a client's run of locks): reuse it instead of hashing
	 * the owner handle again. */
	svid = r->type == JR_LOCK || r->type == JR_UNLOCK ? r->svid : 0;
	o = *rlast;
	if (o) {
		size_t ohlen;
		const void *oh = lk_owner_oh(o, &ohlen);

		if (lk_owner_svid(o) != svid || ohlen != r->ohlen ||
		    (ohlen && memcmp(oh, r->oh, ohlen) != 0))
			o = NULL;
	}
	if (!o) {
		rc = lk_owner_get(t, c, svid, r->oh, r->ohlen, &o);
		if (rc < 0)
			return rc;
		if (*rlast)
			lk_owner_put(t, *rlast);
		*rlast = o;
	}
	switch (r->type) {
	case JR_LOCK:
		rc = lk_lock(t, r->fh, r->fhlen, o, r->excl ? LK_EXCL : LK_SHARED,
			     (struct lk_range){ r->start, r->end }, NULL);
		break;
	case JR_UNLOCK:
		rc = lk_unlock(t, r->fh, r->fhlen, o, (struct lk_range){ r->start, r->end });
		break;
	case JR_SHARE:
		rc = lk_share(t, r->fh, r->fhlen, o, r->mode, r->deny);
		break;
	case JR_UNSHARE:
		rc = lk_unshare(t, r->fh, r->fhlen, o);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	return rc;
}

static int nlm_replay(void *arg, const struct jr_rec *r)
{
	struct nlm_group *ng = arg;
	char name[JR_HOST_MAX + 1];
	struct nlm_host *h;

	if (clist_name_check(r->host, r->hostlen) < 0)
		return -EINVAL;
	memcpy(name, r->host, r->hostlen);
	name[r->hostlen] = '\0';
	h = nlm_host_get(ng, name);
	if (!h)
		return -ENOMEM;
	if (!h->rlkc && lk_client_new(ng->resv, h, &h->rlkc) < 0)
		return -ENOMEM;
	/* h->rlast: dropped when the load ends (nlm_replay_end). */
	return nlm_replay_into(ng->resv, h->rlkc, &h->rlast, r);
}

/* ---- fold (compaction off the loop) ------------------------------------
 * A size-triggered compaction replays the journal file itself on a pool
 * thread (journal.h, jr_fold_ops) into a lock table of its own, with its
 * own name -> client map: nothing of the group (hosts, ng->locks, their
 * slabs, none of which is thread-safe) is touched there.  The replay is
 * nlm_replay_into, as at the load, so the state it emits is the state the
 * next owner would load from the same bytes. */

struct nlm_fold_host {
	struct nlm_fold_host *next;   /* hash chain */
	struct lk_client *c;          /* in the fold's table; freed with it */
	struct lk_owner *rlast;       /* nlm_replay_into's cache: one reference */
	size_t len;
	char name[];                  /* NUL-terminated */
};

struct nlm_fold {
	struct lk_table *t;           /* owned */
	struct nlm_fold_host **b;     /* owned, with every host */
	size_t nb, n;
	struct sh_key key;            /* names come off the wire */
};

#define NLM_FOLD_BUCKETS0 64

static int nlm_fold_new(void *arg, void **out)
{
	struct lk_table_opts lo = { 0 };
	struct nlm_fold *f = calloc(1, sizeof(*f));
	int rc = -ENOMEM;

	(void)arg;
	if (!f)
		return -ENOMEM;
	(void)sh_key_new(&f->key);
	lo.hash_seed[0] = f->key.k0;
	lo.hash_seed[1] = f->key.k1;
	f->nb = NLM_FOLD_BUCKETS0;
	f->b = calloc(f->nb, sizeof(*f->b));
	if (f->b)
		rc = lk_table_new(&lo, &f->t);
	if (rc < 0) {
		free(f->b);
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* Twice the buckets once there are as many hosts: chains stay short with
 * a million clients as with ten. */
static void nlm_fold_grow(struct nlm_fold *f)
{
	size_t nb = f->nb * 2;
	struct nlm_fold_host **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* longer chains, still right */
	for (size_t i = 0; i < f->nb; i++) {
		while (f->b[i]) {
			struct nlm_fold_host *h = f->b[i];
			size_t k = sh_hash(&f->key, h->name, h->len) & (nb - 1);

			f->b[i] = h->next;
			h->next = b[k];
			b[k] = h;
		}
	}
	free(f->b);
	f->b = b;
	f->nb = nb;
}

static struct nlm_fold_host *nlm_fold_host_get(struct nlm_fold *f, const char *name, size_t len)
{
	size_t k = sh_hash(&f->key, name, len) & (f->nb - 1);
	struct nlm_fold_host *h;

	for (h = f->b[k]; h; h = h->next)
		if (h->len == len && memcmp(h->name, name, len) == 0)
			return h;
	h = calloc(1, sizeof(*h) + len + 1);
	if (!h)
		return NULL;
	memcpy(h->name, name, len);
	h->len = len;
	if (lk_client_new(f->t, h, &h->c) < 0) {
		free(h);
		return NULL;
	}
	h->next = f->b[k];
	f->b[k] = h;
	if (++f->n > f->nb)
		nlm_fold_grow(f);
	return h;
}

static int nlm_fold_apply(void *st, const struct jr_rec *r)
{
	struct nlm_fold *f = st;
	struct nlm_fold_host *h;

	if (clist_name_check(r->host, r->hostlen) < 0)
		return -EINVAL;
	h = nlm_fold_host_get(f, r->host, r->hostlen);
	if (!h)
		return -ENOMEM;
	return nlm_replay_into(f->t, h->c, &h->rlast, r);
}

static const char *nlm_fold_host_name(const struct lk_client *c)
{
	return ((const struct nlm_fold_host *)lk_client_priv(c))->name;
}

static int nlm_fold_emit(void *st, jr_replay_fn add, void *add_arg)
{
	struct nlm_fold *f = st;
	struct nlm_emit e = { .add = add, .add_arg = add_arg, .host = nlm_fold_host_name };

	return nlm_emit_table(f->t, &e);
}

static void nlm_fold_free(void *st)
{
	struct nlm_fold *f = st;

	for (size_t i = 0; i < f->nb; i++) {
		for (struct nlm_fold_host *h = f->b[i]; h; h = h->next) {
			if (h->rlast)
				lk_owner_put(f->t, h->rlast);
			h->rlast = NULL;
		}
	}
	lk_table_free(f->t); /* with every client */
	for (size_t i = 0; i < f->nb; i++) {
		while (f->b[i]) {
			struct nlm_fold_host *h = f->b[i];

			f->b[i] = h->next;
			free(h);
		}
	}
	free(f->b);
	free(f);
}

const struct jr_fold_ops nlm_fold_ops = {
	.new = nlm_fold_new,
	.apply = nlm_fold_apply,
	.emit = nlm_fold_emit,
	.free = nlm_fold_free,
};

/* The load is over (or failed): drop the owners nlm_replay kept. */
static void nlm_replay_end(struct nlm_group *ng)
{
	for (size_t i = 0; ng->hosts && i < ng->nhbuckets; i++) {
		for (struct nlm_host *h = ng->hosts[i]; h; h = h->hnext) {
			if (h->rlast && ng->resv)
				lk_owner_put(ng->resv, h->rlast);
			h->rlast = NULL;
		}
	}
}

/* Throw away reservations and the hosts the load created (nothing else
 * exists yet at open). */
static void nlm_resv_discard(struct nlm_group *ng)
{
	if (ng->resv)
		lk_table_free(ng->resv);
	ng->resv = NULL;
	ng->resv_nobody = NULL;
	memset(ng->host_memo, 0, sizeof(ng->host_memo));
	for (size_t i = 0; ng->hosts && i < ng->nhbuckets; i++) {
		while (ng->hosts[i]) {
			struct nlm_host *h = ng->hosts[i];
			ng->hosts[i] = h->hnext;
			lk_client_free(ng->locks, h->lkc);
			free(h->name);
			free(h);
		}
	}
	ng->nhosts = 0;
}

static int nlm_resv_new(struct nlm_group *ng)
{
	struct lk_table_opts lo = { 0 };
	struct sh_key key;
	int rc;

	/* The journal's keys were clients' (shash.h). */
	(void)sh_key_new(&key);
	lo.hash_seed[0] = key.k0;
	lo.hash_seed[1] = key.k1;
	rc = lk_table_new(&lo, &ng->resv);
	if (rc == 0)
		rc = lk_client_new(ng->resv, NULL, &ng->resv_nobody);
	return rc;
}

/* Off the loop (nlm_group_load): the journal is attached to the loop later. */
int nlm_journal_open(struct nlm_group *ng, const char *statedir)
{
	const struct cfg_group *gc = ng->gp->cfg;
	struct jr_load_info li;
	char path[4300];
	bool complete;
	int rc, lrc;

	if (!gc->journal) {
		/* A journal left from when it was on would be stale the day
		 * it is switched on again. */
		rc = jr_remove(statedir);
		if (rc < 0)
			log_warn("group=%s journal is off but the old one cannot be removed: %s",
				 ng->name, strerror(-rc));
		return 0;
	}
	rc = nlm_resv_new(ng);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/journal", statedir);
	lrc = jr_load(path, ng->name, nlm_replay, ng, &li);
	nlm_replay_end(ng);
	if (lrc == 0 && li.complete) {
		struct lk_stats st;

		rc = jr_open(NULL, statedir, ng->name, &li, true, false, nlm_snapshot, ng, &ng->jr);
		if (rc < 0)
			goto err;
		jr_set_fold(ng->jr, &nlm_fold_ops, NULL);
		ng->jr_trusted = true;
		lk_table_stats(ng->resv, &st);
		ng->resv_loaded = st.locks + st.shares;
		log_info("group=%s journal loaded: %zu records in %zu batches, %zu locks and %zu "
			 "shares reserved for %zu clients%s", ng->name, li.records, li.batches,
			 st.locks, st.shares, ng->nhosts,
			 li.torn ? "; a torn last batch (never acknowledged) was dropped" : "");
		return 0;
	}
	complete = false;
	if (lrc == -ENOENT) {
		complete = clist_count(ng->clients) == 0;
		if (!complete)
			log_warn("group=%s no journal but %zu clients on the list: plain grace this "
				 "time", ng->name, clist_count(ng->clients));
	} else if (lrc == 0) {
		log_warn("group=%s journal was written during a recovery that did not finish: "
			 "plain grace this time", ng->name);
	} else if (lrc == -EUCLEAN) {
		log_err("group=%s journal damaged at offset %lld: %s; kept as journal.damaged, "
			"plain grace this time", ng->name, (long long)li.bad_at, li.why);
	} else {
		log_err("group=%s state file %s: %s; plain grace this time", ng->name, path,
			sf_strerror(lrc));
	}
	nlm_resv_discard(ng);
	rc = jr_open(NULL, statedir, ng->name, NULL, complete, lrc != -ENOENT, nlm_snapshot, ng,
		     &ng->jr);
	if (rc < 0)
		goto err;
	jr_set_fold(ng->jr, &nlm_fold_ops, NULL);
	return 0;
err:
	log_err("group=%s cannot open its journal in %s: %s", ng->name, statedir, strerror(-rc));
	nlm_resv_discard(ng);
	return rc;
}

void nlm_journal_close(struct nlm_group *ng, struct grp_pub *gp)
{
	/* The group does not leave this node (no other node may take it)
	 * until the journal's last batch is written: grp_leave_hold. */
	void *hold = gp && ng->jr ? grp_leave_hold(gp) : NULL;

	jr_close(ng->jr, hold ? grp_leave_put : NULL, hold);
	ng->jr = NULL;
	if (ng->resv)
		lk_table_free(ng->resv);
	ng->resv = NULL;
}

bool nlm_journal_needs_grace(const struct nlm_group *ng)
{
	struct lk_stats st;

	if (!ng->jr || !ng->jr_trusted)
		return clist_count(ng->clients) > 0;
	lk_table_stats(ng->resv, &st);
	return st.locks + st.shares > 0;
}

/* ---- reservations ----------------------------------------------------- */

bool nlm_host_has_resv(const struct nlm_host *h)
{
	struct lk_stats st;

	if (!h->rlkc)
		return false;
	lk_client_stats(h->rlkc, &st);
	return st.locks + st.shares > 0;
}

/* An owner of @h in the reservations (h's own, or nobody's): a reference. */
static int nlm_resv_owner(struct nlm_group *ng, const struct nlm_host *h, uint32_t svid,
			  const void *oh, size_t ohlen, struct lk_owner **o)
{
	return lk_owner_get(ng->resv, h->rlkc ? h->rlkc : ng->resv_nobody, svid, oh, ohlen, o);
}

bool nlm_resv_conflicts_lock(struct nlm_group *ng, const struct nlm_host *h, uint32_t svid,
			     const void *oh, size_t ohlen, const void *fh, size_t fhlen,
			     bool excl, struct lk_range r)
{
	struct lk_owner *o;
	int rc;

	if (!ng->resv)
		return false;
	if (nlm_resv_owner(ng, h, svid, oh, ohlen, &o) < 0)
		return true; /* cannot tell: refuse, as a plain grace would */
	rc = lk_test(ng->resv, fh, fhlen, o, excl ? LK_EXCL : LK_SHARED, r, NULL);
	lk_owner_put(ng->resv, o);
	return rc != 0;
}

bool nlm_resv_conflicts_share(struct nlm_group *ng, const struct nlm_host *h,
			      const void *oh, size_t ohlen, const void *fh, size_t fhlen,
			      unsigned mode, unsigned deny)
{
	struct lk_owner *o;
	int rc;

	if (!ng->resv)
		return false;
	if (nlm_resv_owner(ng, h, 0, oh, ohlen, &o) < 0)
		return true;
	rc = lk_share_test(ng->resv, fh, fhlen, o, mode, deny);
	lk_owner_put(ng->resv, o);
	return rc != 0;
}

void nlm_resv_unlock(struct nlm_group *ng, struct nlm_host *h, uint32_t svid, const void *oh,
		     size_t ohlen, const void *fh, size_t fhlen, struct lk_range r)
{
	struct lk_owner *o;

	if (!ng->resv || !h->rlkc || lk_owner_get(ng->resv, h->rlkc, svid, oh, ohlen, &o) < 0)
		return;
	lk_unlock(ng->resv, fh, fhlen, o, r);
	lk_owner_put(ng->resv, o);
}

void nlm_resv_unshare(struct nlm_group *ng, struct nlm_host *h, const void *oh, size_t ohlen,
		      const void *fh, size_t fhlen)
{
	struct lk_owner *o;

	if (!ng->resv || !h->rlkc || lk_owner_get(ng->resv, h->rlkc, 0, oh, ohlen, &o) < 0)
		return;
	lk_unshare(ng->resv, fh, fhlen, o);
	lk_owner_put(ng->resv, o);
}

void nlm_resv_release_client(struct nlm_group *ng, struct nlm_host *h)
{
	if (ng->resv && h->rlkc)
		lk_client_release(ng->resv, h->rlkc);
}

void nlm_resv_check_done(struct nlm_group *ng, const char *why)
{
	struct lk_stats st;

	if (!ng->resv || !grp_in_grace(ng->gp))
		return;
	lk_table_stats(ng->resv, &st);
	if (st.locks + st.shares)
		return;
	log_info("group=%s every reservation is back (%zu, the last by %s) %" PRIu64
		 " ms into grace: NLM has recovered", ng->name, ng->resv_loaded, why,
		 uv_now(nlm_jloop(ng)) - ng->gp->grace_start);
	grp_recovered(ng->gp, GRP_PROTO_NLM, why);
}

/* A reservation table holds what the journal held (millions of locks, if
 * clients took them): free it on the thread pool.  It has no callbacks and
 * nothing refers to it any more. */
struct nlm_resv_free {
	struct wq_work work;
	struct lk_table *t;
};

static void nlm_resv_free_work(struct wq_work *w)
{
	lk_table_free(((struct nlm_resv_free *)w->data)->t);
}

static void nlm_resv_free_done(struct wq_work *w, int status)
{
	(void)status;
	free(w->data);
}

static void nlm_resv_free_async(struct nlm_group *ng, struct lk_table *t)
{
	struct nlm_resv_free *f = calloc(1, sizeof(*f));

	if (f) {
		f->work.data = f;
		f->t = t;
		if (wq_queue(nlm_jloop(ng), &f->work, nlm_resv_free_work,
				  nlm_resv_free_done) == 0)
			return;
		free(f);
	}
	lk_table_free(t);
}

/*
 * Grace is over.  The journal must then hold the lock table and nothing
 * else: the reservations (what the journal held at the load) are dropped.
 * The table is exactly what the records appended since the load replay
 * to: it started empty at the load, every change of it since was appended
 * in order (reclaims as LOCKs, like any grant), and what touched only
 * reservations (an UNLOCK or FREE_ALL of a range the table did not hold)
 * changes nothing when replayed onto a table that does not hold it
 * either.  So the journal folds those records alone, off the loop
 * (jr_compact_own); it takes the snapshot of the table when that cannot
 * be (a compaction during grace mixed them with the loaded ones, the
 * journal failed).
 */
void nlm_resv_drop(struct nlm_group *ng)
{
	struct lk_stats st;

	if (ng->jr && ng->resv) {
		lk_table_stats(ng->resv, &st);
		if (st.locks + st.shares) {
			log_info("group=%s %zu locks and %zu shares were not reclaimed in grace: "
				 "dropped", ng->name, st.locks, st.shares);
			jr_compact_own(ng->jr, true);
		}
	}
	if (ng->jr && !ng->jr_trusted) {
		/* A plain grace is over: whoever did not reclaim lost their
		 * locks, so what the table holds now is all there is (the
		 * journal was started empty at the load: its records are the
		 * table's). */
		jr_compact_own(ng->jr, true);
		ng->jr_trusted = true;
	}
	if (!ng->resv)
		return;
	nlm_resv_free_async(ng, ng->resv); /* with every host's rlkc */
	ng->resv = NULL;
	ng->resv_nobody = NULL;
	for (size_t i = 0; ng->hosts && i < ng->nhbuckets; i++) {
		struct nlm_host *h = ng->hosts[i], *next;
		for (; h; h = next) {
			next = h->hnext;
			h->rlkc = NULL;
			nlm_host_maybe_idle(ng, h);
		}
	}
}
