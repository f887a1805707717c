/*
 * journal.h - a service group's lock journal: every grant and release of a
 * lock or share reservation, in the group's own storage
 * (<first export>/.sgnfs/journal), so the node that takes the group over
 * knows exactly which locks existed (reservations, docs/journal.md).
 *
 * Writing is group commit: jr_append() encodes a record into the batch of
 * the current event-loop turn; at the end of the turn the batch is written
 * as one write plus one fdatasync (one at a time, or up to JR_INFLIGHT_MAX
 * with jr_set_inflight; taken in order): submitted from the loop through
 * io_uring, or on the thread pool where io_uring is not available
 * (jr_set_io).  jr_wait() calls back once everything appended so
 * far is durable.  The NLM layer replies with a
 * grant only from that callback; releases need not wait (a release lost in
 * a crash leaves a reservation nobody reclaims: it costs grace time for
 * that range, never a conflicting grant).
 *
 * Failure (ENOSPC, EIO): the failed batch is cut off the file, every
 * waiter still pending is called with the error (the caller takes those
 * grants back), and the journal refuses grants (jr_can_grant) until a
 * compaction - a snapshot of the caller's state written to a new file and
 * renamed over the old one - succeeds; it is retried every second.
 * Releases during that time are not written: the snapshot carries them.
 *
 * Compaction when the file has doubled: with fold ops (jr_set_fold) the
 * file itself is replayed and rewritten on the thread pool while appends
 * go on, and appends wait only for the last copy and the rename (a
 * "fold"); without, and for jr_compact and a failed journal, the caller's
 * snapshot is taken on the loop (journal.c says why both).
 *
 * On-disk format: see journal.c.  Threading: every function is for the loop
 * thread except jr_load and jr_open without a loop, which block (group
 * start, on the thread pool) and touch no loop.
 */
#ifndef SGNFS_JOURNAL_H
#define SGNFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "metrics.h"

/* Format version written in every new file's header.  2: the last record
 * of a batch may carry the "solo" flag (journal.c); a node that reads only
 * version 1 refuses such a file whole (a plain grace) instead of taking a
 * flagged record for a torn one.  Version 1 files are still read, and
 * appended to without the flag until a compaction rewrites them. */
#define JR_VERSION 2
#define JR_VERSION_MIN 1
#define JR_HOST_MAX 1024        /* CLIST_NAME_MAX */
#define JR_OH_MAX 1024          /* LK_OH_MAX */
#define JR_FH_MAX 64            /* LK_KEY_MAX */
/* Compact once the journal passes twice its last snapshot, or this: small
 * next to any filesystem, yet large enough that lock churn compacts rarely
 * (each costs a new file, a rename and two syncs, with appends held). */
#define JR_COMPACT_MIN (4u << 20)
/* The most batches a journal writes at once ([cluster] journal_inflight,
 * jr_set_inflight): with 2 the next batch is written while the one before
 * it syncs.  The loader accepts damage confined to this many last batches
 * (none of them was acknowledged), whatever the writer's setting was (a
 * file may have been appended to by nodes set differently), except where a
 * later batch says it was written alone: then only damage after every
 * batch before it is accepted (journal.c, "solo"). */
#define JR_INFLIGHT_MAX 2
/* The file grows by this much zeroed space at a time (journal.c). */
#define JR_PREALLOC (1u << 20)
/* The largest journal file read: far above what compaction lets a live
 * journal grow to for a million locks; a bigger file is refused unread as
 * damaged (plain grace) instead of being loaded on a takeover. */
#define JR_FILE_MAX ((size_t)512 << 20)

enum jr_type {
	JR_HEADER = 1,          /* first record of every file: version, group, complete */
	JR_LOCK = 2,            /* lk_lock(host/svid/oh, fh, excl, [start, end]) */
	JR_UNLOCK = 3,          /* lk_unlock(host/svid/oh, fh, [start, end]) */
	JR_SHARE = 4,           /* lk_share(host/oh (svid 0), fh, mode, deny) */
	JR_UNSHARE = 5,         /* lk_unshare(host/oh (svid 0), fh) */
	JR_FREE_CLIENT = 6,     /* lk_client_release(host) */
};

/* One record, decoded.  Pointers borrow from the caller (append) or from
 * the loaded file (replay); they are valid for the call only. */
struct jr_rec {
	enum jr_type type;
	const char *host;       /* JR_HEADER: the group name */
	size_t hostlen;
	uint32_t svid;          /* JR_HEADER: JR_VERSION */
	const void *oh;
	size_t ohlen;
	const void *fh;
	size_t fhlen;
	bool excl;              /* JR_LOCK; JR_HEADER: the state is complete */
	bool solo;              /* the last record of a batch written while no
				 * earlier batch of the file was in flight
				 * (encoded only with @last; decoded) */
	unsigned mode, deny;    /* JR_SHARE */
	uint64_t start, end;    /* JR_LOCK, JR_UNLOCK: inclusive; JR_HEADER: created (unix s) */
};

/* ---- records (pure; for the writer, the loader and tests) ---- */

uint32_t jr_crc32c(uint32_t crc, const void *buf, size_t len);

/* Bytes @r takes on disk (a multiple of 8), or 0 if a field is out of range. */
size_t jr_rec_size(const struct jr_rec *r);

/* Encode @r as part of batch @batch (@last: its final record) into @buf of
 * @cap bytes.  Returns the size written, or -EINVAL / -ENOSPC (cap). */
ssize_t jr_rec_encode(const struct jr_rec *r, uint64_t batch, bool last, void *buf, size_t cap);

/* Decode the record at @buf (@len bytes available).  Returns its size and
 * fills *r, *batch, *last; or -EBADMSG if these bytes are not a whole,
 * checksummed, well-formed record. */
ssize_t jr_rec_decode(const void *buf, size_t len, struct jr_rec *r, uint64_t *batch, bool *last);

/* ---- loading ---- */

struct jr_load_info {
	bool complete;          /* the header says the state covers every lock */
	size_t records;         /* records replayed (header excluded) */
	size_t batches;         /* whole batches replayed */
	off_t valid_end;        /* the file's good part ends here */
	off_t file_size;
	bool torn;              /* a torn last batch was dropped */
	bool zero_tail;         /* only zeros (preallocated space) follow valid_end */
	uint64_t last_batch;
	uint32_t version;       /* the header's format version */
	off_t bad_at;           /* where damage was found (-EUCLEAN) */
	char why[200];          /* what was wrong, for the log (-EUCLEAN) */
};

/* Apply one replayed record; return 0, or a negative errno to declare the
 * journal inconsistent (the load then fails with -EUCLEAN). */
typedef int (*jr_replay_fn)(void *arg, const struct jr_rec *r);

/*
 * Read the journal at @path and replay every whole batch, in order, through
 * @fn.  A torn last batch (a crash during its write: it was never
 * acknowledged) is dropped.  Returns 0; -ENOENT if there is no journal;
 * -EUCLEAN if it is damaged anywhere but in its last batch, is not a
 * journal of @group, or @fn refused a record (info->why, info->bad_at say
 * what and where; @fn may have seen part of it: discard what it built);
 * or another -errno.  Blocking.
 */
int jr_load(const char *path, const char *group, jr_replay_fn fn, void *arg,
	    struct jr_load_info *info);

/* ---- writing ---- */

struct jr;

/* Emit the whole current state (as JR_LOCK / JR_SHARE records) through
 * jr_snap_add; return 0 or -errno (e.g. -ENOMEM) to abandon the snapshot. */
typedef int (*jr_snapshot_fn)(void *arg, struct jr *j);

/*
 * Open the journal in @statedir for appending.  With @li from a good
 * jr_load, appending continues at li->valid_end (a torn tail is cut off).
 * With @li NULL a new journal is written at once (blocking), holding only
 * a header that says whether the state is @complete; an existing file is
 * kept as journal.damaged first if @keep_old.  @snap is how a compaction
 * gets the current state.  Returns 0 and *out, or -errno.
 */
int jr_open(uv_loop_t *loop, const char *statedir, const char *group,
	    const struct jr_load_info *li, bool complete, bool keep_old,
	    jr_snapshot_fn snap, void *snap_arg, struct jr **out);
/*
 * jr_open with @loop NULL touches no loop, so a group can open its journal
 * on the thread pool; the loop thread then calls jr_attach before anything
 * else (jr_close is fine before it).
 */
void jr_attach(struct jr *j, uv_loop_t *loop);

/*
 * Stop appending: the caller's part ends here (waiters are freed without
 * being called, no snapshot is asked for), but what it appended is not
 * dropped.  The writes in flight finish, a fold's step on the pool comes
 * back (a switch that renamed stands), the open batch is written and
 * synced, and only then is the file closed and @closed(@arg) called (on
 * the loop; within this call when nothing was left to write, or the
 * journal was never attached).  Until then another node must not open
 * the journal: its appends and ours would meet in one file, and a
 * release dropped here would load there as a reserved lock.  A journal
 * that failed drops its open batch (logged).  @closed may be NULL.  Not
 * from inside a waiter's callback.
 */
typedef void (*jr_closed_fn)(void *arg);
void jr_close(struct jr *j, jr_closed_fn closed, void *arg);

/* Remove the journal of a group whose journal is switched off, so a later
 * switch on does not trust a stale one.  Blocking. */
int jr_remove(const char *statedir);

/* How batches reach the disk ([cluster] journal_io).  URING (the default):
 * write and fdatasync submitted linked from the loop through io_uring,
 * completions read on the loop; a journal whose ring cannot be set up
 * (io_uring_queue_init fails: old kernel, seccomp, sysctl) uses the thread
 * pool instead and logs it.  THREAD: always the thread pool.  Set before
 * journals are attached; it applies to each journal attached after. */
enum jr_io { JR_IO_URING = 0, JR_IO_THREAD };
void jr_set_io(enum jr_io mode);
const char *jr_io_name(enum jr_io mode);
/* "uring" | "thread": 0, else -EINVAL. */
int jr_io_parse(const char *s, enum jr_io *out);
/* Batches each journal writes at once ([cluster] journal_inflight), 1 (the
 * default) .. JR_INFLIGHT_MAX.  With 1, what arrives while a batch syncs
 * gathers into the next one (fewer, larger batches: every batch costs the
 * loop a submission, a worker's wake-up and a completion, and on this
 * project's bench machine 1 gave 11-28% more locks per second than 2);
 * with 2 the next batch starts while one syncs, which shortens the wait
 * where a sync takes milliseconds (docs/journal.md).  Applies from the
 * next batch on, also when changed while journals run (a reload): the
 * loader reads what each batch's solo flag says, not this setting. */
void jr_set_inflight(unsigned n);
/* Gathering ([cluster] journal_gather, on by default): once a batch that
 * carried two or more waiting callers is durable, the next one is held
 * until as many wait again, for at most one average write + sync
 * (journal.c, jr_gather_hold, says why).  Applies from the next batch. */
void jr_set_gather(bool on);
bool jr_get_gather(void);
/* The bound of a hold after one more batch took @sample ns (pure; journal.c
 * says why an outlier counts as at most 4 times @avg). */
uint64_t jr_sync_avg_next(uint64_t avg, uint64_t sample);
unsigned jr_get_inflight(void);
/* Whether @j writes its batches through io_uring (else the thread pool). */
bool jr_uses_uring(const struct jr *j);

/* Fault injection, for tests of the durability order: jr_test_hold makes
 * the next @n appends whose write+sync finishes be held as if they had not
 * finished (their waiters, and those of every later batch, stay waiting)
 * until jr_test_release (at most 2 * JR_INFLIGHT_MAX are held; jr_test_held
 * says how many are).  jr_test_ios_done counts writes+syncs finished (held
 * or not). */
void jr_test_hold(struct jr *j, unsigned n);
unsigned jr_test_held(const struct jr *j);
void jr_test_release(struct jr *j);
unsigned jr_test_ios_done(const struct jr *j);
/* Test hook: take @ns as the average write + sync from now on (until the
 * next batch is durable), the bound of a hold (jr_set_gather). */
void jr_test_sync_avg(struct jr *j, uint64_t ns);

/* False while the journal cannot be written (grants must be refused). */
bool jr_can_grant(const struct jr *j);

/* The last write error (negative errno) while !jr_can_grant, else 0. */
int jr_error(const struct jr *j);

/*
 * Add @r to the current batch.  Returns 0, -EIO when the journal is failed
 * (a release is then carried by the next snapshot; a grant must not be
 * given), or -EINVAL / -ENOMEM.
 */
int jr_append(struct jr *j, const struct jr_rec *r);

typedef void (*jr_done_fn)(void *arg, int rc);

/*
 * Call @done(arg, 0) once every record appended so far is durable, or
 * @done(arg, -errno) if it cannot be made durable.  Returns 0 (queued),
 * 1 (already durable: no call), -EIO (the journal is failed: what was
 * appended is not durable and will not be), or -ENOMEM.
 */
int jr_wait(struct jr *j, jr_done_fn done, void *arg);

/* Rewrite the journal as a snapshot of the current state (through @snap),
 * after the write in flight, on the loop: for a state the file does not
 * replay to (jr_compact_own says when a fold can do it instead). */
void jr_compact(struct jr *j, bool complete);

/*
 * jr_compact, for when the state to keep is exactly what was appended
 * since this journal was opened (the loaded records dropped: grace end,
 * whose reservations are the loaded state and are all dropped, reclaimed
 * ones being appended again as they were reclaimed): a fold of those
 * records alone, off the loop, when fold ops are set and no compaction
 * has run since the open; jr_compact otherwise (and if the fold fails).
 */
void jr_compact_own(struct jr *j, bool complete);

/* For jr_snapshot_fn: add one record of the state. */
int jr_snap_add(struct jr *j, const struct jr_rec *r);

/*
 * Compaction off the loop ("fold", journal.c): how a size-triggered
 * compaction rebuilds the state from the journal file itself, on a thread
 * of its own (started from the pool), instead of asking the loop for a
 * snapshot of the live tables.
 * Every op runs on that thread, never on the loop, and must touch nothing
 * the loop uses (no table, host or allocator shared with the live state):
 *   new(arg, &st)    a new, empty private state in *st; 0 or -errno;
 *   apply(st, r)     replay one record of the file, as jr_replay_fn: 0,
 *                    -ENOMEM (the fold is given up and tried again
 *                    later), or another -errno: the file does not replay
 *                    (it would not load either), and the compaction is
 *                    done the old way, from the caller's live state;
 *   emit(st, add, add_arg)  the whole state as JR_LOCK / JR_SHARE
 *                    records, each through add(add_arg, r), whose return
 *                    is passed on (0 or -errno); as jr_snapshot_fn;
 *   free(st)         frees the state (also after a failure; st may be
 *                    half built).
 * Replaying what emit gave must rebuild the same state as replaying the
 * records applied: the new file is that, followed by the records appended
 * meanwhile, so it loads to what the old file loads to.
 */
struct jr_fold_ops {
	int (*new)(void *arg, void **st);
	jr_replay_fn apply;
	int (*emit)(void *st, jr_replay_fn add, void *add_arg);
	void (*free)(void *st);
};

/*
 * Size-triggered compactions of @j fold through @ops (borrowed; with @arg,
 * for ops->new) from now on; NULL: through the snapshot (jr_snapshot_fn)
 * on the loop, as before.  jr_compact() and the compaction that makes a
 * failed journal writable again always take the snapshot: the caller's
 * state differs from the file there (releases not written, reservations
 * dropped).  Call before the journal is attached or on its loop.
 */
void jr_set_fold(struct jr *j, const struct jr_fold_ops *ops, void *arg);

/* Test hooks for the fold.  jr_test_fold_hold: the result of the next
 * fold's first step (the file read, replayed, written as the new file's
 * snapshot) is held, as if that step had not finished, until
 * jr_test_fold_release (jr_test_fold_held says whether one is).
 * jr_test_fold_fail: the next fold fails at @step with @rc (0: none). */
enum jr_fold_step { JR_FOLD_READ = 1, JR_FOLD_WRITE, JR_FOLD_COPY, JR_FOLD_RENAME };
void jr_test_fold_hold(struct jr *j);
bool jr_test_fold_held(const struct jr *j);
void jr_test_fold_release(struct jr *j);
void jr_test_fold_fail(struct jr *j, enum jr_fold_step step, int rc);
/* Start a fold now, as if the journal had reached its size (no-op
 * without fold ops or with one under way). */
void jr_test_fold(struct jr *j);
/* Whether a fold holds appends now (its last step: copy and rename). */
bool jr_test_fold_holding(const struct jr *j);
/* Whether a fold is under way (from its start to its switch or end). */
bool jr_folding(const struct jr *j);

struct jr_stats {
	uint64_t batches;       /* batches written */
	uint64_t records;       /* records written */
	uint64_t compactions;   /* of either kind */
	uint64_t folds;         /* compactions done by a fold (off the loop) */
	uint64_t fold_failures; /* folds given up (logged with the reason) */
	uint64_t failures;
	uint64_t gathered;      /* batches held for more callers (jr_set_gather) */
	off_t size;             /* bytes of records (where the next batch goes) */
	off_t file;             /* the file's size: records, then zeroed space */
	uint32_t version;       /* the format version of the file appended to */
	struct mt_hist fsync;   /* write + fdatasync of each appended batch */
};
void jr_get_stats(const struct jr *j, struct jr_stats *st);

#endif
