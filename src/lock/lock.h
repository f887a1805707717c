/*
 * lock.h - the pure byte-range lock engine: NLM locks, blocked requests and
 * share reservations of one lock table (one table per service group).
 *
 * Pure: no sockets, files, clocks, threads or mutexes.  Every function is
 * called from the one event loop that owns the table; nothing here blocks.
 * Errors are 0 or a negative errno; the NLM procedure handlers turn them
 * into NLM status codes:
 *
 *   0             granted            -EAGAIN     denied (conflict)
 *   -EINPROGRESS  blocked (queued)   -EDEADLK    deadlock
 *   -ENOLCK       too many waiters   -ENOMEM     no memory (state unchanged)
 *   -EOVERFLOW    range beyond 2^64 (NLM4_FBIG) -EINVAL  bad argument
 *
 * Objects and who owns them:
 *
 *   lk_table   created by lk_table_new, freed by lk_table_free together with
 *              everything below.  All pointers into it die with it.
 *   lk_client  one client host.  The caller creates it (lk_client_new) and
 *              keeps it in its own host table; identity is the pointer.
 *              lk_client_free releases what it holds and frees it.
 *   lk_owner   one lock owner: (client, svid, oh).  Two requests are the
 *              same owner iff they name the same lk_client pointer, the
 *              same svid and byte-for-byte the same oh (same length).
 *              lk_owner_get finds or creates it and takes a reference;
 *              lk_owner_put drops it.  The engine keeps an owner alive while
 *              it holds a lock, a share or a waiter, so a caller may put its
 *              reference right after each request.  Share reservations
 *              (NLM SHARE carries no svid) use svid 0 by convention.
 *   file       keyed by opaque bytes (the NFS file handle, 1..LK_KEY_MAX
 *              bytes) in a per-table hash map; created on first use, freed
 *              when nothing on it remains.  Never seen by the caller.
 *   lk_waiter  a blocked request.  The caller keeps the handle (lk_lock_wait
 *              returns it; lk_waiter_find finds it again for a retransmitted
 *              LOCK or a CANCEL).  The engine frees it on lk_cancel, or after
 *              the on_grant/on_drop callback for it returns, or in
 *              lk_table_free (no callback then).
 *
 * Ranges are inclusive: [start, end] with start <= end; end == UINT64_MAX is
 * "to end of file" (the EOF sentinel).  lk_range_make() builds them from
 * NLM (offset, length).  Locks follow POSIX semantics: a lock by an owner
 * replaces what that owner held in the range (upgrade/downgrade is atomic:
 * on conflict nothing changes); touching or overlapping ranges of one owner
 * and one type merge; unlocking part of a range splits it.  An owner never
 * conflicts with itself.
 *
 * Blocking: each file keeps a FIFO queue of waiters.  Whenever bytes are
 * released (unlock, downgrade, release of an owner/client), the engine
 * grants, in FIFO order, exactly the waiters of that file that can now be
 * satisfied (repeatedly the first satisfiable one, until none is) and then
 * calls on_grant for each, in grant order.  A new request does not queue
 * behind waiters: it is granted if no held lock conflicts (POSIX).
 *
 * Callbacks (on_grant, on_drop) run at the end of the public call that
 * caused them, once the table is consistent.  They may call any lk_
 * function except lk_table_free; what they cause is reported after them.
 * Pointers the engine hands out (lk_lockinfo.key, holders) are valid until
 * the next call that changes the table.
 */
#ifndef SGNFS_LOCK_H
#define SGNFS_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_KEY_MAX 64			/* NFS3_FHSIZE */
#define LK_OH_MAX 1024			/* NLM netobj limit */
#define LK_EOF UINT64_MAX		/* end of a range "to end of file" */
#define LK_DEFAULT_MAX_WAITERS 64	/* per client, when opts leave 0 */

struct lk_table;
struct lk_client;
struct lk_owner;
struct lk_waiter;

enum lk_type {
	LK_SHARED = 1,			/* NLM exclusive == FALSE */
	LK_EXCL = 2,			/* NLM exclusive == TRUE */
};

/* Share reservation mode and deny bits: the NLM fsh4_access/fsh4_mode values. */
enum lk_share_bits {
	LK_SH_NONE = 0,
	LK_SH_READ = 1,
	LK_SH_WRITE = 2,
	LK_SH_BOTH = 3,
};

struct lk_range {
	uint64_t start;
	uint64_t end;			/* inclusive; LK_EOF = to end of file */
};

/* One lock (held, conflicting or waited for), as reported by the engine. */
struct lk_lockinfo {
	const void *key;		/* the file's key; borrowed from the table */
	size_t keylen;
	struct lk_owner *owner;		/* borrowed; no reference taken */
	enum lk_type type;
	struct lk_range range;
};

struct lk_stats {
	size_t locks;			/* held lock ranges (after merging) */
	size_t waiters;			/* queued blocked requests */
	size_t shares;
	size_t files;			/* files with anything on them (table only) */
	size_t owners;
	size_t clients;			/* table only */
};

/* Memory hooks, for tests that fail the Nth allocation.  @size is the size
 * given to alloc for the same block. */
struct lk_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p, size_t size);
	void *ctx;
};

/* Called for a waiter that was granted (on_grant) or dropped because its
 * owner or client was released (on_drop).  @w is valid until the callback
 * returns; forget your pointer to it there. */
typedef void (*lk_waiter_fn)(void *arg, struct lk_waiter *w);

struct lk_table_opts {
	unsigned max_waiters_per_client; /* 0: LK_DEFAULT_MAX_WAITERS */
	lk_waiter_fn on_grant;		/* may be NULL */
	lk_waiter_fn on_drop;		/* may be NULL */
	void *cb_arg;			/* first argument of both callbacks */
	uint64_t hash_seed[2];		/* random per process: keys come off the wire */
	const struct lk_allocator *allocator; /* NULL: malloc/free; copied */
};

/*
 * Create an empty table.  @opts may be NULL (defaults).  Returns 0 and
 * *out, or -ENOMEM.  Free with lk_table_free.
 */
int lk_table_new(const struct lk_table_opts *opts, struct lk_table **out);

/*
 * Free the table and every client, owner, lock, share and waiter in it,
 * without callbacks (a group going offline drops its whole state).  Every
 * handle into the table becomes invalid.  Not from inside a callback.
 */
void lk_table_free(struct lk_table *t);

/* Counts for the whole table. */
void lk_table_stats(const struct lk_table *t, struct lk_stats *st);

/*
 * Check every internal invariant (tree shape and order, merged ranges, no
 * two conflicting locks held, no queued waiter that could be granted,
 * counters).  For tests and debugging: O(n log n).  Returns 0, or
 * -EUCLEAN with *why (static string) naming the first broken rule.
 */
int lk_table_check(const struct lk_table *t, const char **why);

/* ---- clients and owners ---- */

/*
 * Create a client.  @priv is the caller's (e.g. its host object), returned
 * by lk_client_priv.  Returns 0 and *out, or -ENOMEM / -EINVAL.
 */
int lk_client_new(struct lk_table *t, void *priv, struct lk_client **out);

void *lk_client_priv(const struct lk_client *c);

/* Counts for one client (files and clients stay 0). */
void lk_client_stats(const struct lk_client *c, struct lk_stats *st);

/*
 * Release every lock, share and waiter of every owner of @c (NLM FREE_ALL,
 * SM_NOTIFY from a rebooted client).  Waiters of other clients that can now
 * be satisfied are granted; @c's waiters are reported to on_drop.  @c stays
 * usable.
 */
void lk_client_release(struct lk_table *t, struct lk_client *c);

/*
 * lk_client_release, then free @c.  Owners of @c must not be used after
 * this; if the caller still holds owner references, the client's memory is
 * reclaimed when the last of them is put.
 */
void lk_client_free(struct lk_table *t, struct lk_client *c);

/*
 * Find or create the owner (@c, @svid, @oh[0..@ohlen)) and take a
 * reference.  @oh may be NULL when @ohlen is 0; at most LK_OH_MAX bytes,
 * copied.  Returns 0 and *out, -EINVAL (bad argument, freed client) or
 * -ENOMEM.  Drop with lk_owner_put.
 */
int lk_owner_get(struct lk_table *t, struct lk_client *c, uint32_t svid,
		 const void *oh, size_t ohlen, struct lk_owner **out);

/* Drop a reference from lk_owner_get.  The owner is freed once nobody
 * references it and it holds nothing. */
void lk_owner_put(struct lk_table *t, struct lk_owner *o);

struct lk_client *lk_owner_client(const struct lk_owner *o);
uint32_t lk_owner_svid(const struct lk_owner *o);
/* The owner handle; *len receives its length.  Borrowed. */
const void *lk_owner_oh(const struct lk_owner *o, size_t *len);

/* Release every lock, share and waiter of @o (the process exited). */
void lk_owner_release(struct lk_table *t, struct lk_owner *o);

/*
 * Decide, for every owner of the table and every file it has something on,
 * whether to release it: @match(arg, owner, key, keylen) returns true to
 * release that owner's locks, shares and waiters on that file.  The one
 * walker behind free-by-client and free-by-owner; the caller uses it for
 * anything else (e.g. every file of one filesystem, by key prefix).
 */
typedef bool (*lk_match_fn)(void *arg, const struct lk_owner *o,
			    const void *key, size_t keylen);
void lk_release_matching(struct lk_table *t, lk_match_fn match, void *arg);

/* ---- ranges ---- */

/*
 * Turn an NLM (@offset, @length) into an inclusive range: length 0 means to
 * end of file.  Returns 0, or -EOVERFLOW when offset + length - 1 does not
 * fit in 64 bits (NLM4_FBIG).
 */
int lk_range_make(uint64_t offset, uint64_t length, struct lk_range *r);

/* The NLM length of @r: 0 when it runs to LK_EOF, else end - start + 1. */
uint64_t lk_range_len(const struct lk_range *r);

/* ---- byte-range locks ---- */

/*
 * Would @o get a @type lock on @r of file @key?  Returns 0 if yes, -EAGAIN
 * if not, with the conflicting lock (the leftmost one) in *holder when
 * @holder is not NULL; -EINVAL on bad arguments.  Changes nothing.
 */
int lk_test(struct lk_table *t, const void *key, size_t keylen,
	    struct lk_owner *o, enum lk_type type, struct lk_range r,
	    struct lk_lockinfo *holder);

/*
 * Non-blocking lock: 0 granted, -EAGAIN conflict (*holder filled if not
 * NULL), -ENOMEM (nothing changed), -EINVAL.  Granting a shared lock over
 * @o's exclusive one is a downgrade and may grant waiters.
 */
int lk_lock(struct lk_table *t, const void *key, size_t keylen,
	    struct lk_owner *o, enum lk_type type, struct lk_range r,
	    struct lk_lockinfo *holder);

/*
 * Blocking lock.  Returns 0 if granted at once (*wp = NULL), or
 * -EINPROGRESS with *wp = the queued waiter (priv = @priv) whose grant
 * on_grant will report.  If @o already has a queued waiter for exactly
 * this file, type and range (a retransmission), that one is returned and
 * @priv is ignored.  Errors, nothing queued: -ENOLCK (the client already
 * has max_waiters_per_client waiters), -EDEADLK (queueing would close a
 * wait-for cycle among waiters), -ENOMEM, -EINVAL.  *holder as lk_lock.
 */
int lk_lock_wait(struct lk_table *t, const void *key, size_t keylen,
		 struct lk_owner *o, enum lk_type type, struct lk_range r,
		 void *priv, struct lk_waiter **wp, struct lk_lockinfo *holder);

/*
 * Release whatever @o holds in @r (any type; nothing held is fine) and
 * grant the waiters this satisfies.  Returns 0, -ENOMEM (a split needed a
 * node; nothing changed) or -EINVAL.  Taking back a grant the client
 * refused (GRANTED answered with DENIED) is this call with the waiter's
 * range; like any unlock it does not restore what @o held there before.
 */
int lk_unlock(struct lk_table *t, const void *key, size_t keylen,
	      struct lk_owner *o, struct lk_range r);

/*
 * Does @o already hold a @type lock over all of @r on @key, so that
 * lk_lock(@o, @type, @r) would change nothing?  (NLM: a reclaim of such a
 * lock repeats what the server holds.)  False on bad arguments.
 */
bool lk_holds(const struct lk_table *t, const void *key, size_t keylen,
	      const struct lk_owner *o, enum lk_type type, struct lk_range r);

/*
 * Does @o hold any lock, of either type, on any byte of @r on @key?  (NLM:
 * a grant that cannot be made durable is taken back only where the owner
 * held nothing before.)  False on bad arguments.
 */
bool lk_holds_any(const struct lk_table *t, const void *key, size_t keylen,
		  const struct lk_owner *o, struct lk_range r);

/* The queued waiter of @o on @key with exactly @type and @r, or NULL. */
struct lk_waiter *lk_waiter_find(struct lk_table *t, const void *key,
				 size_t keylen, const struct lk_owner *o,
				 enum lk_type type, struct lk_range r);

/*
 * Remove a queued waiter and free it (NLM CANCEL).  Never touches locks
 * already held, by its owner or anyone.  No callback.  A NULL @w, or a
 * waiter whose callback is running, is ignored.
 */
void lk_cancel(struct lk_table *t, struct lk_waiter *w);

/* What @w waits for (or was just granted). */
void lk_waiter_info(const struct lk_waiter *w, struct lk_lockinfo *li);
void *lk_waiter_priv(const struct lk_waiter *w);
void lk_waiter_set_priv(struct lk_waiter *w, void *priv);

/* ---- share reservations (NLM SHARE / UNSHARE) ---- */

/*
 * Take or change @o's share reservation on @key: @mode (access wanted) and
 * @deny, each an lk_share_bits value.  It conflicts with another owner's
 * reservation if @mode & its deny or @deny & its mode.  Returns 0, -EAGAIN
 * (conflict; nothing changed), -ENOMEM, -EINVAL.
 */
int lk_share(struct lk_table *t, const void *key, size_t keylen,
	     struct lk_owner *o, unsigned mode, unsigned deny);

/* Would lk_share(@o, @mode, @deny) on @key conflict?  0 if not, -EAGAIN if
 * another owner's reservation conflicts, -EINVAL.  Changes nothing. */
int lk_share_test(const struct lk_table *t, const void *key, size_t keylen,
		  const struct lk_owner *o, unsigned mode, unsigned deny);

/* Does @o hold exactly the reservation (@mode, @deny) on @key?  False on
 * bad arguments. */
bool lk_share_holds(const struct lk_table *t, const void *key, size_t keylen,
		    const struct lk_owner *o, unsigned mode, unsigned deny);

/* Drop @o's share reservation on @key, if any.  Returns 0 or -EINVAL. */
int lk_unshare(struct lk_table *t, const void *key, size_t keylen,
	       struct lk_owner *o);

/* ---- iteration (status reporting) ---- */

/* Return non-zero to stop; lk_foreach_* returns that value (0 if none). */
typedef int (*lk_lock_fn)(void *arg, const struct lk_lockinfo *li);

/* Every held lock of the table, file by file, in start order within a
 * file.  @fn must not change the table. */
int lk_foreach_lock(const struct lk_table *t, lk_lock_fn fn, void *arg);

/* Every held lock of @c, in no particular order.  @fn must not change the
 * table. */
int lk_client_foreach_lock(const struct lk_client *c, lk_lock_fn fn, void *arg);

/* Every queued waiter, file by file, in FIFO order within a file. */
int lk_foreach_waiter(const struct lk_table *t, lk_lock_fn fn, void *arg);

/* One share reservation, as reported by lk_foreach_share. */
struct lk_shareinfo {
	const void *key;		/* the file's key; borrowed from the table */
	size_t keylen;
	struct lk_owner *owner;		/* borrowed */
	unsigned mode, deny;		/* lk_share_bits */
};

typedef int (*lk_share_fn)(void *arg, const struct lk_shareinfo *si);

/* Every share reservation of the table, file by file.  @fn must not change
 * the table.  Returns what lk_foreach_lock returns. */
int lk_foreach_share(const struct lk_table *t, lk_share_fn fn, void *arg);

#endif
