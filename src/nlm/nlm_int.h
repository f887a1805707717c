/*
 * nlm_int.h - the state the files of the NLM module share (hosts, blocked
 * locks, parked requests, the per-group state) and the journal's and
 * reservations' interface (nlm_journal.c).  Not for other modules.
 */
#ifndef SGNFS_NLM_INT_H
#define SGNFS_NLM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include <string.h>

#include "group/gslot.h"
#include "lock/lock.h"
#include "log.h"
#include "nlm/nlm_cb.h"
#include "rpc/rpc.h"

/* The host table starts with this many chains and doubles past two hosts
 * per chain, so a group with 100,000 hosts (a journal's, or clients') costs
 * a few names per lookup, not a fixed table's hundreds. */
#define NLM_HOST_BUCKETS 256
#define NLM_GRANTED_TRIES 3
/* Hosts remembered by the address their last request came from
 * (nlm_host_recall): a power of two. */
#define NLM_HOST_MEMO 8

struct grp_pub;
struct jr;
struct rpc_req;

/* The address index starts with this many chains and doubles past two
 * addresses per chain (nlm_host.c). */
#define NLM_ADDR_BUCKETS 256
/* Source addresses remembered per host (the address index): a host that
 * moves between more addresses than this forgets the oldest. */
#define NLM_HOST_ADDRS 4
/* GRANTED_MSG records waiting for their GRANTED_RES, per group: past this
 * number, or after NLM_GRANTED_RES_WAIT_MS, the oldest is forgotten (the
 * client keeps the lock, as when it does not answer NLM_GRANTED); past
 * NLM_GRANTED_RES_PER_HOST sent to one address, that address's oldest, so
 * one client's unanswered cycles cannot push out another's record. */
#define NLM_GRANTED_RES_MAX 256
#define NLM_GRANTED_RES_PER_HOST 32
#define NLM_GRANTED_RES_WAIT_MS 60000u

struct nlm_host;

/* One source address a host used, in the group's address index. */
struct nlm_haddr {
	struct nlm_haddr *next;        /* ng->addrs chain */
	struct nlm_host *host;         /* the host this slot belongs to */
	struct sockaddr_storage addr;  /* port 0 */
	bool used;
};

struct nlm_host {
	struct nlm_host *hnext;        /* hash chain, owned by ng->hosts */
	char *name;                    /* caller_name, owned */
	uint64_t chash;                /* clist_name_hash(name): the client list is
	                                  asked on every LOCK, twice */
	struct lk_client *lkc;         /* owned (lk_client_free) */
	struct lk_client *rlkc;        /* its reservations in ng->resv, or NULL; owned */
	struct lk_owner *rlast;        /* while the journal loads: its owner in ng->resv of
	                                  the last record, one reference (nlm_replay) */
	unsigned refs;                 /* parked requests + grant callbacks */
	struct nlm_haddr addrs[NLM_HOST_ADDRS]; /* linked into ng->addrs while used */
	unsigned next_addr;            /* slot to reuse when all are used */
};

/* A request waiting for the disk (nlm_proc.c). */
struct nlm_parked;

/* A queued blocking lock: lk_waiter priv. */
struct nlm_block {
	struct nlm_block *next, *prev; /* in ng->blocks */
	struct nlm_block *gnext;       /* in ng->granted, while there */
	struct nlm_group *ng;
	struct nlm_host *host;         /* holds a host ref */
	struct nlm_cb_target target;   /* where GRANTED goes */
	bool msg;                      /* locked with LOCK_MSG: use GRANTED_MSG */
	bool exclusive;
	bool jr_wait;                  /* granted, waiting for the journal */
	/* The owner held some of the range when it was queued: a grant
	 * taken back (refused GRANTED, journal failure) must then not unlock
	 * the range, which would free what the client still holds. */
	bool held_before;
	uint32_t svid;
	uint8_t fh[LK_KEY_MAX];
	size_t fhlen;
	uint8_t *oh;                   /* owned */
	size_t ohlen;
	uint64_t offset, len;          /* as the client asked */
	struct lk_waiter *w;           /* NULL once granted or dropped */
	bool resv_wait;                /* queued behind another owner's
	                                  reservation, not in the engine yet */
	unsigned tries;                /* GRANTED attempts */
	uint64_t cookie;               /* random, for GRANTED_MSG / GRANTED_RES */
	/* GRANTED_MSG sent, waiting for GRANTED_RES (in ng->res_wait). */
	bool res_wait;
	uint64_t res_sent_ms;          /* uv_now() when GRANTED_MSG went out */
	struct nlm_block *rnext, *rprev;
};

struct nlm_group {
	struct grp_pub *gp;            /* not owned: the group (group/gslot.h) */
	const char *name;              /* group name, for logs */
	struct lk_table *locks;        /* owned */
	struct clist *clients;         /* not owned: the group's client list */
	struct nlm_cb *cb;             /* owned */
	struct nlm_host **hosts;       /* owned: nhbuckets chains; NULL before the first host */
	size_t nhbuckets;              /* a power of two (NLM_HOST_BUCKETS, doubling) */
	size_t nhosts;
	struct nlm_host *host_memo[NLM_HOST_MEMO]; /* not owned: the host the last request
	                                * from an address named, in that address's slot
	                                * (nlm_host_recall); cleared when it is freed */
	struct nlm_haddr **addrs;      /* owned: nabuckets chains of hosts' slots (the
	                                * slots are the hosts'); NULL before the first */
	size_t nabuckets;              /* a power of two (NLM_ADDR_BUCKETS, doubling) */
	size_t naddrs;                 /* slots linked */
	uint64_t addr_probes;          /* index entries looked at (status: cost of a lookup) */
	uint64_t host_probes;          /* host table entries looked at (status) */
	struct nlm_block *res_wait, *res_wait_tail; /* oldest first */
	size_t nres_wait;
	uint64_t refused_clients;      /* requests refused by an export's clients */
	uint64_t refused_logged_ms;    /* uv_now() of the last such log line */
	uint64_t refused_quiet;        /* refusals not logged since */
	uint64_t refused_caps;         /* requests refused by a per-address or node cap */
	uint64_t refused_caps_logged_ms;
	uint64_t refused_caps_quiet;
	struct nlm_parked *parked;     /* owned */
	struct nlm_block *blocks;      /* owned: queued and granted-unanswered */
	struct nlm_block *granted, **granted_tail; /* engine grants not yet journaled */
	bool flushing;                 /* nlm_flush_grants is running */
	uint64_t next_cookie;
	bool closing;
	bool attached;                 /* nlm_group_attach ran: loop handles exist */
	/* In the node's list of online groups (nlm_host.c, node caps). */
	bool on_node;
	struct nlm_group *node_next, *node_prev;

	/* The lock journal (journal = on), and what it recovered. */
	struct jr *jr;                 /* owned, or NULL (journal off) */
	bool jr_trusted;               /* loaded whole and complete: reservations hold */
	struct lk_table *resv;         /* reservations during grace, or NULL; owned */
	struct lk_client *resv_nobody; /* an owner with no reservation, for tests */
	size_t resv_loaded;            /* locks + shares reserved at load */
	uint64_t jr_refused;           /* grants refused since the last log line */
	uint64_t jr_refused_logged;    /* uv_now() of that line */
};

/* ---- shared by the files of the module ---- */

static inline struct nlm_group *nlm_grp(const struct rpc_req *req)
{
	return grp_slot(req->svc_ctx, GRP_PROTO_NLM);
}

static inline uv_loop_t *nlm_loop(const struct nlm_group *ng)
{
	return ng->gp->loop;
}

/* A name or owner handle from the wire, safe for a log line. */
static inline const char *nlm_safe(char *buf, size_t sz, const char *s)
{
	return log_safe(buf, sz, s ? s : "", s ? strlen(s) : 0);
}

/* Where a callback to @req's sender goes: its address, our VIP it used,
 * its NLM version and transport. */
static inline void nlm_target(const struct rpc_req *req, struct nlm_cb_target *t)
{
	memset(t, 0, sizeof(*t));
	t->client = req->peer;
	t->local = req->local;
	t->vers = req->vers;
	t->tcp = req->is_tcp;
}

/* ---- nlm_journal.c ---- */

/* Load the journal into reservations (journal on), or remove a stale one
 * (journal off).  Blocking; at group open.  0 or -errno. */
int nlm_journal_open(struct nlm_group *ng, const char *statedir);
/* @gp: the group goes offline, and leaves only once the journal is
 * written (NULL: it never came online, nothing was appended). */
void nlm_journal_close(struct nlm_group *ng, struct grp_pub *gp);

/* Whether the group starts in grace, and from what. */
bool nlm_journal_needs_grace(const struct nlm_group *ng);

/* Append one record (a no-op without a journal).  0, or -errno: for a
 * grant, the caller must not give it. */
int nlm_jr_lock(struct nlm_group *ng, bool lock, const struct nlm_host *h, uint32_t svid,
		const void *oh, size_t ohlen, const void *fh, size_t fhlen, bool excl,
		struct lk_range r);
int nlm_jr_share(struct nlm_group *ng, bool share, const struct nlm_host *h, const void *oh,
		 size_t ohlen, const void *fh, size_t fhlen, unsigned mode, unsigned deny);
int nlm_jr_free_client(struct nlm_group *ng, const struct nlm_host *h);

/* How the group's journal folds (journal.h, jr_fold_ops): a private
 * table and name map, off the loop.  Set on every journal the group opens;
 * exported for bench/jr_fold_bench. */
struct jr_fold_ops;
extern const struct jr_fold_ops nlm_fold_ops;

/* May the journal take a grant now?  Logs (rate limited) when not. */
bool nlm_jr_can_grant(struct nlm_group *ng, const struct nlm_host *h);

/* Reservations (all no-ops while ng->resv is NULL). */
bool nlm_resv_conflicts_lock(struct nlm_group *ng, const struct nlm_host *h, uint32_t svid,
			     const void *oh, size_t ohlen, const void *fh, size_t fhlen,
			     bool excl, struct lk_range r);
bool nlm_resv_conflicts_share(struct nlm_group *ng, const struct nlm_host *h,
			      const void *oh, size_t ohlen, const void *fh, size_t fhlen,
			      unsigned mode, unsigned deny);
/* The owner was granted or released [r]: its reservation there is gone. */
void nlm_resv_unlock(struct nlm_group *ng, struct nlm_host *h, uint32_t svid, const void *oh,
		     size_t ohlen, const void *fh, size_t fhlen, struct lk_range r);
void nlm_resv_unshare(struct nlm_group *ng, struct nlm_host *h, const void *oh, size_t ohlen,
		      const void *fh, size_t fhlen);
void nlm_resv_release_client(struct nlm_group *ng, struct nlm_host *h);
/* Tells the group NLM has recovered if the last reservation just went. */
void nlm_resv_check_done(struct nlm_group *ng, const char *why);
/* Grace is over: drop what was not reclaimed (and make the journal say so). */
void nlm_resv_drop(struct nlm_group *ng);
bool nlm_host_has_resv(const struct nlm_host *h);

#endif
