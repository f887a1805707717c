/*
 * nlm_grant.h - blocked-lock grants (nlm_grant.c): queued blocking LOCKs,
 * the engine's grants of them journaled and called back (NLM_GRANTED or
 * GRANTED_MSG), and the waiters parked behind a reservation in grace.
 * 0 or -errno throughout.  Loop thread.
 */
#ifndef SGNFS_NLM_GRANT_H
#define SGNFS_NLM_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lock/lock.h"
#include "nlm/nlm_xdr.h"

struct nlm_cb_target;
struct nlm_group;
struct nlm_host;

/*
 * A blocking lock of @o (of @host) on @lk's file and range @r: granted now
 * (0), queued (-EINPROGRESS; a new nlm_block remembers @target and whether
 * to answer with GRANTED_MSG, @msg), or refused (-errno as lk_lock_wait,
 * -ENOMEM).  @resv_block: it conflicts only with another owner's
 * reservation, so it waits outside the engine until that goes.  A
 * retransmission finds its waiter and is -EINPROGRESS again.
 */
int nlm_block_queue(struct nlm_group *ng, struct nlm_host *host, struct lk_owner *o,
		    const nlm4_lock *lk, struct lk_range r, bool exclusive, bool resv_block,
		    const struct nlm_cb_target *target, bool msg);
/* CANCEL: drop the matching waiter.  0, or -EAGAIN if there is none. */
int nlm_block_cancel(struct nlm_group *ng, struct nlm_host *host, struct lk_owner *o,
		     const nlm4_lock *lk, bool exclusive, struct lk_range r);
/* A GRANTED_RES from @peer carrying a cookie (from the wire): the client
 * took (@accepted) or refused the grant.  Only the address the GRANTED_MSG
 * went to, with the random cookie it carried, counts: a refusal takes the
 * lock back, which no third host may do for the holder. */
void nlm_granted_res(struct nlm_group *ng, const struct sockaddr_storage *peer,
		     const void *cookie_val, size_t cookie_len, bool accepted);

/* Journal and announce what the engine granted during the change the
 * caller has just journaled (records follow the change, as replay needs). */
void nlm_flush_grants(struct nlm_group *ng);
/* Release what @o holds in @r of @fh, journal it, flush the grants this
 * causes.  0 or -errno from the engine (nothing changed then). */
int nlm_unlock_journaled(struct nlm_group *ng, struct nlm_host *h, struct lk_owner *o,
			 const void *fh, size_t fhlen, struct lk_range r);

/* Waiters behind reservations: enter the engine those no reservation
 * stops any more; drop @h's (it rebooted or freed all). */
void nlm_resv_waiters_retry(struct nlm_group *ng);
void nlm_resv_waiters_drop_host(struct nlm_group *ng, const struct nlm_host *h);

/* The lock table's callbacks (lk_table_opts on_grant / on_drop). */
void nlm_on_grant(void *arg, struct lk_waiter *w);
void nlm_on_drop(void *arg, struct lk_waiter *w);

/* The group closes: forget every block (no callback, no reply). */
void nlm_blocks_abandon(struct nlm_group *ng);

#endif
