/*
 * cl_int.h - private to src/client: the structures behind cl.h.
 *
 * Ownership: the ctx owns its hosts; a host owns its servers, its record
 * (struct cl_lock list) and its pending requests.  A request is reference
 * counted: one reference while it is pending (in host->reqs), one per RPC
 * call in flight that carries it as the callback argument, one while its
 * timer handle is open; it is freed when the last one goes.  A completed
 * request is off the list at once, so late replies find it "done" and are
 * ignored.  Everything belongs to the loop thread.
 */
#ifndef SGNFS_CL_INT_H
#define SGNFS_CL_INT_H

#include <arpa/inet.h>

#include "client/cl.h"
#include "rpc/rpc.h"

#define CL_DEF_CB_PMAP_PORT 111
#define CL_DEF_CB_NLM_PORT  4045
#define CL_DEF_CB_NSM_PORT  4046
#define CL_DEF_POLL_MS      30000u
#define CL_DEF_RECLAIM_MS   120000u
#define CL_RETRY_MIN_MS     100u     /* reclaim back-off: 100 ms doubling ... */
#define CL_RETRY_MAX_MS     1000u    /* ... up to 1 s */

enum cl_op {
	CL_OP_NULL = 0,
	CL_OP_TEST,
	CL_OP_LOCK,
	CL_OP_CANCEL,
	CL_OP_UNLOCK,
	CL_OP_SHARE,
	CL_OP_UNSHARE,
	CL_OP_FREE_ALL,
	CL_OP_GRANTED_RES,                /* one-way answer to a GRANTED_MSG */
};

enum cl_req_state {
	RQ_WAIT_PORT = 0,  /* the server's NLM port is being looked up */
	RQ_WAIT_REPLY,     /* RPC call in flight */
	RQ_WAIT_RES,       /* _MSG sent, waiting for the matching _RES call */
	RQ_BLOCKED,        /* LOCK answered BLOCKED: waiting for GRANTED */
	RQ_BACKOFF,        /* waiting to retry (grace period, unreachable server) */
};

struct cl_ctx {
	uv_loop_t *loop;                  /* not owned */
	struct cl_config cfg;
	struct rpc_svc *svc;              /* the hosts' services, or NULL (owned) */
	struct cl_host **hosts;           /* owned */
	size_t nhosts, cap;
	uint64_t cookie_seq;              /* NLM cookies, unique in this process */
	unsigned listeners_open;          /* until their release callbacks */
	struct cl_host *dead;             /* hosts whose start failed (owned) */
	bool closing;
	bool record_dirty;
};

struct cl_host {
	struct cl_ctx *ctx;
	struct sockaddr_in addr;
	char addrstr[INET_ADDRSTRLEN];
	char name[CL_MAX_NAME + 1];
	int32_t state;                    /* NSM state number, odd while up */
	struct rpc_listener *lsn[3];      /* portmapper, NLM callback, NSM */
	struct cl_server *servers;        /* owned */
	struct cl_lock *locks;            /* the record (owned) */
	struct cl_req *reqs;              /* pending requests (one reference each) */
	unsigned nreqs;
	struct cl_host *next_dead;        /* in ctx->dead */
	struct cl_smn *smn;               /* SM_NOTIFY calls in flight (owned) */
	unsigned smn_pending;             /* of the last reboot, not yet finished */
	int smn_err;                      /* the first failure among them, or 0 */
	cl_done_fn reboot_done;           /* called once they all finished, or NULL */
	void *reboot_arg;
};

struct cl_nfs_cache;

struct cl_server {
	struct cl_server *next;           /* in host->servers */
	struct cl_host *host;
	struct sockaddr_in addr;          /* the VIP, port 0 */
	char name[INET_ADDRSTRLEN];       /* what SM_NOTIFY names as mon_name */
	uint32_t vers;                    /* NLM version spoken */
	struct rpcc_clnt *nlm;            /* NULL until its port is known */
	struct rpcc_getport_req *gp;      /* NLM port lookup in flight */
	int last_err;                     /* of the last port lookup */
	bool has_state;
	int32_t last_state;               /* state of the last SM_NOTIFY */
	unsigned gen;                     /* bumped per SM_NOTIFY: reclaim round */
	unsigned reclaiming;              /* reclaims of the current round left */
	unsigned nslots;                  /* cl_slots on it: NLM call records kept */
	/* cl_nfs.c */
	struct rpcc_clnt *mnt, *nfs;
	struct cl_nfs_cache *nfsc;
};

struct cl_req {
	struct cl_req *next, *prev;       /* host->reqs while pending */
	unsigned refs;
	struct cl_server *srv;            /* valid while pending */
	enum cl_op op;
	enum cl_req_state state;
	struct cl_lockreq rq;             /* rq.oh is always filled in */
	uint8_t cookie[8];                /* ours, unique in the process */
	uint32_t vers;                    /* NLM version of the last call */
	bool done;                        /* completed: no longer in host->reqs */
	bool slot;                        /* a cl_slot's block: reused, no record */
	unsigned ncalls;                  /* RPC calls in flight carrying it */
	bool retry;                       /* retry grace / unreachable (reclaims, re-sent waits) */
	bool said_blocked;                /* "blocked" event logged */
	unsigned gen;                     /* reclaim round it belongs to (0 = none) */
	uv_timer_t timer;
	bool timer_open;                  /* holds a reference until closed */
	uint64_t t0;                      /* uv_hrtime() at start */
	uint64_t retry_until;             /* uv_now() ms: give up retrying */
	uint64_t wait_until;              /* uv_now() ms: give up a blocked wait (0 = never) */
	uint64_t res_until;               /* uv_now() ms: give up waiting for a _RES */
	uint32_t backoff;
	struct cl_blob xcookie;           /* GRANTED_RES: the server's cookie */
	int xstat;                        /* GRANTED_RES: our answer */
	/* internal follow-up, runs before done_fn (reclaims) */
	void (*internal)(struct cl_req *r, const struct cl_result *res);
	cl_done_fn done_fn;
	void *arg;
};

/* A request block used for every call of one lock (cl_slot_*).  req comes
 * first: the block is freed as a struct cl_req by its last reference. */
struct cl_slot {
	struct cl_req req;                /* rq fixed at cl_slot_new */
	struct cl_result res;             /* answers widened here: err, stat, usec */
};

/* cl_host.c */
void cl_host_listener_released(void *arg);
uint64_t cl_now_ms(const struct cl_ctx *ctx);
struct cl_server *cl_server_by_addr(struct cl_host *h, const struct in_addr *a);
void cl_server_drop_nlm(struct cl_server *s);
void cl_record_changed(struct cl_ctx *ctx);

/* cl_nlm.c: the callback side, called from cl_svc.c handlers */
struct cl_granted {
	const struct cl_blob *cookie;     /* the server's, echoed back */
	bool exclusive;
	const uint8_t *fh; uint32_t fh_len;
	const uint8_t *oh; uint32_t oh_len;
	uint32_t svid;
	uint64_t start, len;
};
/* Returns the nlm4_stats to answer GRANTED with. */
int cl_nlm_granted(struct cl_host *h, const struct sockaddr_in *from,
		   const struct cl_granted *g);
/* A _RES call: @op is the procedure it answers. */
void cl_nlm_res(struct cl_host *h, enum cl_op op, const uint8_t *cookie, uint32_t cookie_len,
		int stat, const struct cl_result *detail);
/* SM_NOTIFY @xid from @from (the event names both: a retransmission of one
 * call, the same XID from the same sender, is told apart from a second
 * notification). */
void cl_nsm_notify(struct cl_host *h, const struct sockaddr_in *from, uint32_t xid,
		   const char *mon_name, int32_t state);
/* Send NLM GRANTED_RES for a GRANTED_MSG from @from. */
void cl_nlm_send_granted_res(struct cl_host *h, const struct sockaddr_in *from,
			     uint32_t vers, const struct cl_blob *cookie, int stat);
/* Complete every pending request of @h with -ECANCELED. */
void cl_nlm_cancel_all(struct cl_host *h);
/* The NLM port of @s became known (or its lookup failed with @err). */
void cl_nlm_port_ready(struct cl_server *s, int err);
/* After @s's handle was dropped: look the port up again for the requests
 * that were waiting for the lookup the drop cancelled. */
void cl_nlm_lookup_again(struct cl_server *s);

/* Cancel this host's SM_NOTIFY calls (host teardown). */
void cl_nsm_cancel_all(struct cl_host *h);

/* cl_svc.c */
int cl_svc_start_host(struct cl_host *h);
int cl_svc_init(struct cl_ctx *ctx);

/* cl_record.c */
void cl_record_add(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
		   const struct cl_blob *oh);
void cl_record_remove(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq);
void cl_record_share_add(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
			 const struct cl_blob *oh);
void cl_record_share_remove(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
			    const struct cl_blob *oh);
void cl_record_drop(struct cl_host *h, struct cl_lock *lk);
void cl_record_drop_server(struct cl_host *h, struct cl_server *s);
void cl_record_free(struct cl_host *h);
int cl_record_write(const struct cl_ctx *ctx, const char *path);

/* cl_nfs.c */
void cl_nfs_server_free(struct cl_server *s);

#endif
