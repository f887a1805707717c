/*
 * lock.c - the pure byte-range lock engine (contract in lock.h).
 *
 * The story.  A table maps file keys to files (hash map).  A file holds its
 * locks in two red-black trees over the same nodes:
 *
 *   by_start  keyed (start, owner), augmented with the largest end in each
 *             subtree and the largest end of an exclusive lock in it.  This
 *             is an interval tree: "the leftmost lock overlapping [s,e] that
 *             conflicts" descends only into subtrees whose max end reaches
 *             s, so it costs O(log n) plus the owner's own locks it steps
 *             over (which the request then replaces anyway).  The second
 *             max (exclusive only) keeps a shared request O(log n) even
 *             when thousands of other shared locks overlap it.
 *   by_owner  keyed (owner, start).  An owner's locks on a file never
 *             overlap, so "what does o hold around [s,e]" is one descent
 *             plus a walk over exactly those locks, however many other
 *             owners' locks overlap the range.  Only owners holding more
 *             than OWNER_SCAN_MAX locks are in it ("indexed"); a smaller
 *             owner is looked up in its own short lock list, which spares
 *             the common NLM case (many owners, few locks each) a descent
 *             and a rebalance of a big tree per lock and unlock.
 *
 * A balanced tree rather than a sorted list keeps a file with 100,000 locks
 * within a small factor of one with 10 (O(log n) vs O(n)); red-black (see
 * lk_rb.h) because lock then unlock of one range is an insert/erase pair,
 * which red-black trees rebalance in O(1) amortized.  A lock node is 120
 * bytes on x86_64; see struct lk_lock.  Nodes come from pages of their own
 * (slab.h: no malloc header, no heap shared with the requests that made
 * them) unless a test supplies an allocator.
 *
 * Each owner also lists its locks, waiters and shares (any file), so
 * releasing one owner or client costs what it holds, not the table size.
 *
 * Changing locks: lock and unlock first *plan* (read-only: how many new
 * nodes will a split need?), allocate those nodes, and only then change the
 * trees, so -ENOMEM leaves the table exactly as it was.  A queued waiter
 * carries the two nodes its grant may need (a new lock plus the right half
 * of a split), so granting it later can never fail.  A lock whose start
 * does not move is changed in place (its end and the max ends above it),
 * so a merge or a split costs one tree insert or erase, not three.
 *
 * Appending.  A lock that starts past every byte any lock of its file
 * holds, with a gap (the root's max_end < start - 1), conflicts with
 * nothing and touches nothing: lk_lock grants it as one new node linked
 * last (file_past_end, grant_past_end), without the conflict search and
 * the owner seek.  A journal replays a snapshot that way (each file's
 * locks in start order), so a million-lock replay is mostly appends: the
 * by_start descent is the right spine (in cache), and by_owner is entered
 * next to the owner's previous lock when that is its last in the file.
 *
 * Deadlock: before a request queues, a depth-first search follows "waits
 * for a lock held by" from the holders blocking it, through their own
 * queued requests; reaching the requester again is a cycle (-EDEADLK).
 *
 * Waking.  Every change that frees bytes (unlock, downgrade, release) marks
 * the file dirty with the union of the freed ranges.  At the end of each
 * public call, settle() walks the dirty files and, per file, grants in FIFO
 * order the waiters overlapping the freed range that no held lock blocks
 * any more.  Waiters that do not overlap it cannot have become grantable:
 * their conflicts did not change.  A grant that turns part of its owner's
 * exclusive lock shared frees bytes too: the scan widens and restarts.
 * Granted waiters go to a pending list whose on_grant callbacks run last,
 * when the table is consistent (callbacks may call back in).
 *
 * Ownership.  No field needs a lock: the event loop that owns the table
 * serializes every call.  The field comments say who owns (frees) what and
 * what keeps an object alive ("pinned: ..." names the counter that does).
 *
 * Hazards.
 *  - Neighbours are computed as "start - 1" after checking start > 0; only
 *    the part of a lock right of a cut [s,e] starts at e + 1, where e < that
 *    lock's end, so it cannot wrap.  Never "end + 1": end may be LK_EOF.
 *  - Nodes being moved are chained through by_start.left once they are out
 *    of both trees (free lists below); never touch a linked node that way.
 *  - Files, owners and clients are freed as soon as nothing references
 *    them; anything that keeps using one across a call that could free it
 *    pins it first (owner->refs, file->dirty, file->npending).
 */
#include "lock/lock.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lk_rb.h"
#include "lock/lk_hash.h"
#include "slab.h"
#include "shash.h"

#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

enum {
	LKF_SUBX = 1,		/* some exclusive lock in the by_start subtree */
};

enum {
	W_QUEUED = 1,		/* in file->wq and owner->waiters */
	W_LIMBO,		/* dequeued, being destroyed or pushed */
	W_GRANTED,		/* on table->pend, on_grant to run */
	W_DROPPED,		/* on table->pend, on_drop to run */
};

/*
 * A held lock.  Everything here is owned by the file it is linked in.  The
 * first 64 bytes are what a by_start descent reads (an exclusive request
 * reads nothing else), so a search touches as few cache lines as it can.
 */
struct lk_lock {
	struct lk_rb by_start;		/* file->by_start: (start, owner) */
	uint64_t start, end;		/* inclusive; end LK_EOF = to EOF */
	uint64_t max_end;		/* largest end in by_start subtree (bs_aug) */
	uint64_t max_xend;		/* largest end of an LK_EXCL lock there, iff LKF_SUBX */
	struct lk_owner *owner;		/* holder; counted in owner->nlocks */
	uint8_t type;			/* enum lk_type */
	uint8_t flags;			/* LKF_SUBX, kept by bs_aug */
	struct lk_rb by_owner;		/* file->by_owner iff owner->indexed */
	struct lk_file *file;		/* the file whose trees link this node */
	struct lk_lock *onext, *oprev;	/* owner->locks list */
};

struct lk_file {
	struct lk_hnode hn;		/* table->files, hash of key */
	struct lk_rb *by_start;		/* root; owns every lock of the file */
	struct lk_rb *by_owner;		/* root; the locks of indexed owners */
	struct lk_waiter *wq_head;	/* queued waiters, FIFO; owned */
	struct lk_waiter *wq_tail;
	struct lk_share *shares;	/* share reservations; owned */
	struct lk_file *dnext;		/* table->dirty chain, iff dirty */
	uint64_t wake_lo, wake_hi;	/* bytes freed since settle, iff wake */
	uint32_t nlocks;		/* nodes in the trees */
	uint32_t nqueued;		/* waiters in wq */
	uint32_t npending;		/* dequeued waiters not yet freed: pin */
	uint8_t dirty;			/* on table->dirty: pin until settle */
	uint8_t wake;			/* wake_lo..wake_hi valid */
	uint8_t keylen;
	unsigned char key[];		/* keylen bytes */
};

struct lk_waiter {
	struct lk_waiter *qnext, *qprev; /* file->wq while queued; qnext: table->pend */
	struct lk_waiter *onext, *oprev; /* owner->waiters while queued */
	struct lk_file *file;		/* pinned: file->nqueued or ->npending */
	struct lk_owner *owner;		/* pinned: owner->nwait */
	struct lk_lock *spare;		/* 2 nodes for the grant, chained; owned */
	void *priv;			/* the caller's; never touched */
	uint64_t start, end;
	uint8_t type;
	uint8_t state;			/* W_* */
};

struct lk_share {
	struct lk_share *fnext;		/* file->shares */
	struct lk_share *onext, *oprev;	/* owner->shares */
	struct lk_file *file;		/* pinned: file->shares non-empty */
	struct lk_owner *owner;		/* pinned: owner->nshares */
	uint8_t mode, deny;		/* lk_share_bits */
};

struct lk_owner {
	struct lk_hnode hn;		/* table->owners, hash of (client, svid, oh) */
	struct lk_owner *cnext, *cprev;	/* client->owners */
	struct lk_client *client;	/* pinned: client->nowners */
	struct lk_lock *locks;		/* held locks, any file (nodes owned by files) */
	struct lk_waiter *waiters;	/* queued waiters (owned by files) */
	struct lk_share *shares;	/* shares (owned by files) */
	struct lk_owner *dl_next;	/* deadlock search stack; transient */
	uint64_t dl_gen;		/* last deadlock search that reached it */
	uint32_t refs;			/* lk_owner_get references, plus walker pins */
	uint32_t nlocks, nwait, nshares; /* keep it alive while non-zero */
	uint32_t svid;
	uint16_t ohlen;
	bool indexed;			/* its locks are in by_owner trees; set past
					 * OWNER_SCAN_MAX locks, cleared at 0 */
	unsigned char oh[];
};

/* lk_client.omemo: owners remembered per client (a host's processes are
 * its owners, and their requests interleave). */
#define LK_OWNER_MEMO 4

struct lk_client {
	struct lk_client *tnext, *tprev; /* table->clients */
	struct lk_owner *owners;	/* its owners (owned by the table) */
	void *priv;			/* the caller's */
	size_t nlocks, nqueued, nshares; /* sums over its owners */
	uint32_t nowners;		/* freed when dead and this reaches 0 */
	bool dead;			/* lk_client_free was called */
	/* Not owned: the owner last found for each svid mod LK_OWNER_MEMO
	 * (lk_owner_get), cleared when it is freed. */
	struct lk_owner *omemo[LK_OWNER_MEMO];
};

struct lk_table {
	struct lk_allocator al;		/* copied from opts */
	bool slab;			/* lock nodes from nodes (no allocator given) */
	struct slab nodes;		/* lock nodes, iff slab; owns its pages */
	lk_waiter_fn on_grant, on_drop;
	void *cb_arg;
	unsigned max_waiters;		/* per client */
	uint64_t seed0, seed1;
	struct lk_htab files;		/* struct lk_file by key; owns them */
	struct lk_htab owners;		/* struct lk_owner; owns them */
	struct lk_client *clients;	/* owns them */
	struct lk_file *dirty;		/* files to wake/free at settle */
	struct lk_file *last_file;	/* not owned: the file last found (file_lookup),
					 * cleared when it is freed */
	struct lk_waiter *pend_head;	/* granted/dropped, callback to run; owned */
	struct lk_waiter *pend_tail;
	uint64_t dl_gen;		/* deadlock search generation */
	bool notifying;			/* inside notify(): callbacks running */
	size_t nlocks, nqueued, nshares, nfiles, nowners, nclients;
};

/* ---- memory ---- */

static void *default_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void default_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

static void *lk_alloc(struct lk_table *t, size_t size)
{
	return t->al.alloc(t->al.ctx, size);
}

static void lk_free(struct lk_table *t, void *p, size_t size)
{
	if (p)
		t->al.free(t->al.ctx, p, size);
}

/* Lock nodes: from the table's slab (slab.h: exact size, pages of their
 * own, not interleaved with requests), or from the allocator a test gave. */
static struct lk_lock *node_alloc(struct lk_table *t)
{
	return t->slab ? slab_alloc(&t->nodes) : lk_alloc(t, sizeof(struct lk_lock));
}

static void node_free(struct lk_table *t, struct lk_lock *l)
{
	if (t->slab)
		slab_free(&t->nodes, l);
	else
		lk_free(t, l, sizeof(*l));
}

/* Node free lists, chained through by_start.left (nodes out of the trees). */
static void pool_push(struct lk_lock **pool, struct lk_lock *l)
{
	l->by_start.left = *pool ? &(*pool)->by_start : NULL;
	*pool = l;
}

static struct lk_lock *pool_pop(struct lk_lock **pool)
{
	struct lk_lock *l = *pool;

	if (l)
		*pool = l->by_start.left ? CONTAINER(l->by_start.left, struct lk_lock, by_start) : NULL;
	return l;
}

static void pool_free(struct lk_table *t, struct lk_lock **pool)
{
	struct lk_lock *l;

	while ((l = pool_pop(pool)))
		node_free(t, l);
}

/* Put @n fresh nodes on *pool, or none: 0 or -ENOMEM. */
static int pool_fill(struct lk_table *t, struct lk_lock **pool, unsigned n)
{
	while (n--) {
		struct lk_lock *l = node_alloc(t);

		if (!l) {
			pool_free(t, pool);
			return -ENOMEM;
		}
		pool_push(pool, l);
	}
	return 0;
}

/* ---- lock nodes and the two trees ---- */

static inline struct lk_lock *bs_lock(const struct lk_rb *n)
{
	return n ? CONTAINER(n, struct lk_lock, by_start) : NULL;
}

static inline struct lk_lock *bo_lock(const struct lk_rb *n)
{
	return n ? CONTAINER(n, struct lk_lock, by_owner) : NULL;
}

static bool bs_aug(struct lk_rb *n)
{
	struct lk_lock *l = bs_lock(n), *c;
	uint64_t me = l->end, mx = l->end;
	bool hx = l->type == LK_EXCL;
	uint8_t flags;

	for (int i = 0; i < 2; i++) {
		c = bs_lock(i ? n->right : n->left);
		if (!c)
			continue;
		if (c->max_end > me)
			me = c->max_end;
		if (c->flags & LKF_SUBX) {
			if (!hx || c->max_xend > mx)
				mx = c->max_xend;
			hx = true;
		}
	}
	mx = hx ? mx : 0;
	flags = hx ? (l->flags | LKF_SUBX) : (l->flags & ~LKF_SUBX);
	if (l->max_end == me && l->max_xend == mx && l->flags == flags)
		return false;
	l->max_end = me;
	l->max_xend = mx;
	l->flags = flags;
	return true;
}

static inline bool owner_lt(const struct lk_owner *a, const struct lk_owner *b)
{
	return (uintptr_t)a < (uintptr_t)b;
}

static void bs_insert(struct lk_file *f, struct lk_lock *l)
{
	struct lk_rb **link = &f->by_start, *parent = NULL;

	while (*link) {
		struct lk_lock *p = bs_lock(*link);

		parent = *link;
		if (l->start < p->start || (l->start == p->start && owner_lt(l->owner, p->owner)))
			link = &parent->left;
		else
			link = &parent->right;
	}
	lk_rb_insert(&f->by_start, parent, link, &l->by_start, bs_aug);
}

/*
 * bs_insert of a lock that starts after every lock of @f: it goes right of
 * the last node, found down the right spine (the nodes an append walks
 * every time, so they stay in cache) instead of by comparing keys.  Its
 * end is the largest in the file, so each node of that spine (its
 * ancestors) gets it as max end on the way down; aug_up, which stops at
 * the first node whose values do not change, then stops at once instead
 * of reading both children of every ancestor.  Rotations recompute the
 * nodes they move from their children, so the result is exact either way.
 */
static void bs_insert_last(struct lk_file *f, struct lk_lock *l)
{
	struct lk_rb **link = &f->by_start, *parent = NULL;

	while (*link) {
		struct lk_lock *p = bs_lock(*link);

		p->max_end = l->end;
		if (l->type == LK_EXCL) {
			p->max_xend = l->end;
			p->flags |= LKF_SUBX;
		}
		parent = *link;
		link = &parent->right;
	}
	lk_rb_insert(&f->by_start, parent, link, &l->by_start, bs_aug);
}

static void bo_insert(struct lk_file *f, struct lk_lock *l)
{
	struct lk_rb **link = &f->by_owner, *parent = NULL;

	while (*link) {
		struct lk_lock *p = bo_lock(*link);

		parent = *link;
		if (owner_lt(l->owner, p->owner) || (l->owner == p->owner && l->start < p->start))
			link = &parent->left;
		else
			link = &parent->right;
	}
	lk_rb_insert(&f->by_owner, parent, link, &l->by_owner, NULL);
}

/* Owners holding at most this many locks (all files) are not indexed in
 * by_owner: scanning their list costs a few pointer hops. */
#define OWNER_SCAN_MAX 8

/*
 * bo_insert of @l, which starts after every lock of its file, when @p (the
 * owner's most recently linked lock) is the owner's last lock in that file:
 * @l goes right after @p in by_owner order, found from @p instead of by a
 * descent from the root (p was linked moments ago, so it is in cache).
 * Returns false, changing nothing, when @p is not that lock.
 */
static bool bo_insert_after(struct lk_file *f, struct lk_lock *l, struct lk_lock *p)
{
	struct lk_rb *next, *parent, **link;

	if (!p || p->file != f || p->owner != l->owner)
		return false;
	next = lk_rb_next(&p->by_owner);
	if (next && bo_lock(next)->owner == l->owner)
		return false;		/* a later lock of the owner: p is not its last */
	if (!p->by_owner.right) {
		parent = &p->by_owner;
		link = &parent->right;
	} else {
		parent = next;		/* the leftmost node right of p: no left child */
		link = &parent->left;
	}
	lk_rb_insert(&f->by_owner, parent, link, &l->by_owner, NULL);
	return true;
}

/* Link a filled-in node into its file and owner, and count it.  @last:
 * it starts after every lock of its file (bs_insert_last). */
static void lock_link_at(struct lk_table *t, struct lk_lock *l, bool last)
{
	struct lk_owner *o = l->owner;
	struct lk_lock *x, *prev = o->locks;

	if (last)
		bs_insert_last(l->file, l);
	else
		bs_insert(l->file, l);
	l->oprev = NULL;
	l->onext = o->locks;
	if (o->locks)
		o->locks->oprev = l;
	o->locks = l;
	l->file->nlocks++;
	o->nlocks++;
	o->client->nlocks++;
	t->nlocks++;
	if (o->indexed) {
		if (!last || !bo_insert_after(l->file, l, prev))
			bo_insert(l->file, l);
	} else if (o->nlocks > OWNER_SCAN_MAX) {
		for (x = o->locks; x; x = x->onext)
			bo_insert(x->file, x);
		o->indexed = true;
	}
}

static void lock_link(struct lk_table *t, struct lk_lock *l)
{
	lock_link_at(t, l, false);
}

/* Undo lock_link; the node is then the caller's. */
static void lock_unlink(struct lk_table *t, struct lk_lock *l)
{
	struct lk_owner *o = l->owner;

	lk_rb_erase(&l->file->by_start, &l->by_start, bs_aug);
	if (o->indexed)
		lk_rb_erase(&l->file->by_owner, &l->by_owner, NULL);
	if (l->oprev)
		l->oprev->onext = l->onext;
	else
		o->locks = l->onext;
	if (l->onext)
		l->onext->oprev = l->oprev;
	l->file->nlocks--;
	o->nlocks--;
	o->client->nlocks--;
	t->nlocks--;
	if (o->nlocks == 0)
		o->indexed = false;	/* nothing left in any by_owner tree */
}

/* Change a linked lock's end in place: the keys (start) stay, only the
 * max ends above it move. */
static void lock_set_end(struct lk_lock *l, uint64_t end)
{
	l->end = end;
	lk_rb_augment(&l->by_start, bs_aug);
}

/*
 * Move a linked lock's start up to @start (<= its end).  In place if the
 * by_start order stays (nothing starts between; by_owner order always
 * stays, an owner's locks being disjoint) and true; else false and the
 * caller unlinks and relinks it.  max_end ignores starts: no aug change.
 */
static bool lock_set_start(struct lk_lock *l, uint64_t start)
{
	struct lk_lock *n = bs_lock(lk_rb_next(&l->by_start));

	if (n && (n->start < start || (n->start == start && owner_lt(n->owner, l->owner))))
		return false;
	l->start = start;
	return true;
}

static void lock_init(struct lk_lock *l, struct lk_file *f, struct lk_owner *o,
		      int type, uint64_t s, uint64_t e)
{
	memset(l, 0, sizeof(*l));
	l->file = f;
	l->owner = o;
	l->type = (uint8_t)type;
	l->start = s;
	l->end = e;
}

/* ---- searches ---- */

static inline bool conflicts(const struct lk_lock *l, const struct lk_owner *o, int type)
{
	return l->owner != o && (type == LK_EXCL || l->type == LK_EXCL);
}

/* Can the subtree under @l hold a lock conflicting with @type ending at >= s? */
static inline bool subtree_reaches(const struct lk_lock *l, int type, uint64_t s)
{
	if (type == LK_EXCL)
		return l->max_end >= s;
	return (l->flags & LKF_SUBX) && l->max_xend >= s;
}

/* The leftmost lock under @n overlapping [s,e] that conflicts with @o's @type. */
static struct lk_lock *conflict_find(const struct lk_rb *n, const struct lk_owner *o,
				     int type, uint64_t s, uint64_t e)
{
	while (n) {
		struct lk_lock *l = bs_lock(n), *r;

		if (!subtree_reaches(l, type, s))
			return NULL;
		r = conflict_find(n->left, o, type, s, e);
		if (r)
			return r;
		if (l->start > e)
			return NULL;	/* so does everything to the right */
		if (l->end >= s && conflicts(l, o, type))
			return l;
		n = n->right;
	}
	return NULL;
}

typedef bool (*conflict_fn)(void *arg, struct lk_lock *l);

/* Call @fn for every conflicting lock under @n, in start order, until it
 * returns true; returns true then. */
static bool conflict_each(const struct lk_rb *n, const struct lk_owner *o, int type,
			  uint64_t s, uint64_t e, conflict_fn fn, void *arg)
{
	while (n) {
		struct lk_lock *l = bs_lock(n);

		if (!subtree_reaches(l, type, s))
			return false;
		if (conflict_each(n->left, o, type, s, e, fn, arg))
			return true;
		if (l->start > e)
			return false;
		if (l->end >= s && conflicts(l, o, type) && fn(arg, l))
			return true;
		n = n->right;
	}
	return false;
}

/*
 * The first lock of @o on @f, in start order, whose end is >= @lim.  @o's
 * locks are disjoint, so only the last one starting at or before @lim can
 * reach it; otherwise it is the next one.
 */
static struct lk_lock *owner_seek(const struct lk_file *f, const struct lk_owner *o,
				  uint64_t lim)
{
	const struct lk_rb *n = f->by_owner, *le = NULL, *gt = NULL;
	struct lk_lock *l, *best = NULL;

	if (!o->indexed) {
		for (l = o->locks; l; l = l->onext)
			if (l->file == f && l->end >= lim && (!best || l->start < best->start))
				best = l;
		return best;
	}

	while (n) {
		l = bo_lock(n);
		if (owner_lt(l->owner, o) || (l->owner == o && l->start <= lim)) {
			le = n;
			n = n->right;
		} else {
			gt = n;
			n = n->left;
		}
	}
	l = bo_lock(le);
	if (l && l->owner == o && l->end >= lim)
		return l;
	l = bo_lock(gt);
	return l && l->owner == o ? l : NULL;
}

/* The next lock of l's owner on l's file, in start order, or NULL. */
static struct lk_lock *owner_next(const struct lk_lock *l)
{
	struct lk_lock *n, *best = NULL;

	if (!l->owner->indexed) {
		for (n = l->owner->locks; n; n = n->onext)
			if (n->file == l->file && n->start > l->start &&
			    (!best || n->start < best->start))
				best = n;
		return best;
	}
	n = bo_lock(lk_rb_next(&l->by_owner));
	return n && n->owner == l->owner ? n : NULL;
}

/* Does a range starting at @start begin at or before e + 1? */
static inline bool starts_by(uint64_t start, uint64_t e)
{
	return start == 0 || start - 1 <= e;
}

/* Lower limit on the end of a lock touching a range that starts at @s. */
static inline uint64_t touch_lim(uint64_t s)
{
	return s ? s - 1 : 0;
}

/* ---- changing locks ---- */

/*
 * Plan lock_apply(@o, @type, [s,e]): how many fresh nodes will it need?
 * *first is where its walk over @o's locks starts (NULL: nothing of @o
 * touches the range).  Returns 0 with *noop set if @o already holds @type
 * over the whole range.  Read-only.
 */
static unsigned lock_need(const struct lk_file *f, const struct lk_owner *o, int type,
			  uint64_t s, uint64_t e, bool *noop, struct lk_lock **first)
{
	unsigned reusable = 0, split = 0;
	struct lk_lock *l;

	*noop = false;
	l = owner_seek(f, o, touch_lim(s));
	if (l && l->type != type && l->end < s)
		l = owner_next(l);	/* other type touching on the left: stays */
	*first = l;
	for (; l && starts_by(l->start, e); l = owner_next(l)) {
		if (l->type == type) {
			if (l->start <= s && l->end >= e) {
				*noop = true;
				return 0;
			}
			reusable++;		/* merged into the new lock */
		} else if (l->end < s || l->start > e) {
			continue;		/* other type, only touching: stays */
		} else if (l->start < s && l->end > e) {
			split = 1;		/* other type around the range */
		} else if (l->start >= s && l->end <= e) {
			reusable++;		/* other type inside: replaced */
		}
	}
	return 1 + split > reusable ? 1 + split - reusable : 0;
}

static void widen(uint64_t *lo, uint64_t *hi, bool *any, uint64_t a, uint64_t b)
{
	if (!*any || a < *lo)
		*lo = a;
	if (!*any || b > *hi)
		*hi = b;
	*any = true;
}

/*
 * Make @o hold @type on [s,e] of @f (no other owner conflicts: checked by
 * the caller).  What @o held there of the other type is cut away (split if
 * it surrounds the range); touching or overlapping locks of @type merge.
 * @first and the fresh nodes on *pool come from lock_need.  Returns true,
 * with [*rlo,*rhi], if exclusive bytes of @o became shared, so that waiters
 * there may now be granted.  A lock whose start stays is changed in place
 * (the same-type one reaching s from the left grows into the result; the
 * left part of a cut keeps its node), which spares a tree erase + insert
 * in the common merge and split cases.
 */
static bool lock_apply(struct lk_table *t, struct lk_file *f, struct lk_owner *o, int type,
		       uint64_t s, uint64_t e, struct lk_lock *first, struct lk_lock **pool,
		       uint64_t *rlo, uint64_t *rhi)
{
	struct lk_lock *freed = NULL, *keep = NULL, *grow = NULL, *l, *r, *next;
	uint64_t ne = e;
	bool released = false;

	/* Take the successor before changing anything: erasing a node leaves
	 * every other node, and the order among them, as it was. */
	for (l = first; l; l = next) {
		if (l->start > e && !(l->type == type && l->start - 1 == e))
			break;			/* past the range (or other type touching) */
		/* Ending past e, l is the last lock that can touch [s,e]. */
		next = l->end <= e ? owner_next(l) : NULL;
		if (l->type == type) {
			if (l->end > ne)
				ne = l->end;
			if (l->start <= s) {
				grow = l;	/* only the first can start by s */
				continue;
			}
			lock_unlink(t, l);
			pool_push(&freed, l);
			continue;
		}
		if (l->type == LK_EXCL)		/* and type is LK_SHARED: downgrade */
			widen(rlo, rhi, &released, l->start > s ? l->start : s,
			      l->end < e ? l->end : e);
		if (l->start < s && l->end > e) {
			r = pool_pop(pool);
			assert(r);
			/* e < l->end, so e + 1 cannot wrap. */
			lock_init(r, f, o, l->type, e + 1, l->end);
			pool_push(&keep, r);
			lock_set_end(l, s - 1);	/* s > l->start >= 0 */
		} else if (l->start < s) {
			lock_set_end(l, s - 1);
		} else if (l->end > e) {
			if (!lock_set_start(l, e + 1)) {	/* e < l->end */
				lock_unlink(t, l);
				l->start = e + 1;
				pool_push(&keep, l);
			}
		} else {
			lock_unlink(t, l);
			pool_push(&freed, l);
		}
	}

	if (grow) {
		if (ne > grow->end)
			lock_set_end(grow, ne);
	} else {
		l = freed ? pool_pop(&freed) : pool_pop(pool);
		assert(l);
		lock_init(l, f, o, type, s, ne);
		lock_link(t, l);
	}
	while ((l = pool_pop(&keep)))
		lock_link(t, l);
	pool_free(t, &freed);
	return released;
}

/* Fresh nodes lock_remove(@o, [s,e]) needs: 1 if it splits a lock.  *first:
 * the first lock of @o that may overlap the range. */
static unsigned unlock_need(const struct lk_file *f, const struct lk_owner *o,
			    uint64_t s, uint64_t e, struct lk_lock **first)
{
	struct lk_lock *l = owner_seek(f, o, s);

	*first = l;
	return l && l->start < s && l->end > e ? 1 : 0;
}

/*
 * Remove whatever @o holds in [s,e] of @f.  Takes a node from *pool for a
 * split.  Returns true, with the freed bytes within [*rlo,*rhi], if
 * anything was held.
 */
static bool lock_remove(struct lk_table *t, struct lk_file *f, struct lk_owner *o,
			uint64_t s, uint64_t e, struct lk_lock *first, struct lk_lock **pool,
			uint64_t *rlo, uint64_t *rhi)
{
	struct lk_lock *freed = NULL, *keep = NULL, *l, *r, *next;
	bool released = false;

	for (l = first; l && l->start <= e; l = next) {
		next = l->end < e ? owner_next(l) : NULL;
		widen(rlo, rhi, &released, l->start > s ? l->start : s, l->end < e ? l->end : e);
		if (l->start < s && l->end > e) {
			r = pool_pop(pool);
			assert(r);
			lock_init(r, f, o, l->type, e + 1, l->end);	/* e < l->end */
			pool_push(&keep, r);
			lock_set_end(l, s - 1);
		} else if (l->start < s) {
			lock_set_end(l, s - 1);
		} else if (l->end > e) {
			if (!lock_set_start(l, e + 1)) {
				lock_unlink(t, l);
				l->start = e + 1;
				pool_push(&keep, l);
			}
		} else {
			lock_unlink(t, l);
			pool_push(&freed, l);
		}
	}
	while ((l = pool_pop(&keep)))
		lock_link(t, l);
	pool_free(t, &freed);
	return released;
}

/* ---- files ---- */

static uint64_t key_hash(const struct lk_table *t, const void *key, size_t len)
{
	return sh_siphash(t->seed0, t->seed1, key, len);
}

static struct lk_file *file_find(const struct lk_table *t, const void *key, size_t len,
				 uint64_t h)
{
	struct lk_hnode *n;

	for (n = lk_htab_head(&t->files, h); n; n = n->next) {
		struct lk_file *f = CONTAINER(n, struct lk_file, hn);

		if (n->hash == h && f->keylen == len && memcmp(f->key, key, len) == 0)
			return f;
	}
	return NULL;
}

/*
 * The file of @key, or NULL.  Lock requests come in runs on one file (a
 * process locks and unlocks ranges of the file it works on), so the file
 * last found is compared first and spares the keyed hash; a miss costs
 * one comparison.  file_lookup_keep remembers what it finds (callers
 * that may change the table; the const ones only look).
 */
static struct lk_file *file_lookup(const struct lk_table *t, const void *key, size_t len)
{
	struct lk_file *f = t->last_file;

	if (f && f->keylen == len && memcmp(f->key, key, len) == 0)
		return f;
	return file_find(t, key, len, key_hash(t, key, len));
}

static struct lk_file *file_lookup_keep(struct lk_table *t, const void *key, size_t len)
{
	struct lk_file *f = file_lookup(t, key, len);

	if (f)
		t->last_file = f;
	return f;
}

static int file_new(struct lk_table *t, const void *key, size_t len, uint64_t h,
		    struct lk_file **out)
{
	struct lk_file *f = lk_alloc(t, sizeof(*f) + len);

	if (!f)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	f->hn.hash = h;
	f->keylen = (uint8_t)len;
	memcpy(f->key, key, len);
	lk_htab_add(&t->files, &t->al, &f->hn);
	t->nfiles++;
	t->last_file = f;
	*out = f;
	return 0;
}

static int file_get(struct lk_table *t, const void *key, size_t len, struct lk_file **out)
{
	*out = file_lookup_keep(t, key, len);
	return *out ? 0 : file_new(t, key, len, key_hash(t, key, len), out);
}

static void file_maybe_free(struct lk_table *t, struct lk_file *f)
{
	if (f->nlocks || f->nqueued || f->npending || f->shares || f->dirty)
		return;
	lk_htab_del(&t->files, &f->hn);
	t->nfiles--;
	if (t->last_file == f)
		t->last_file = NULL;
	lk_free(t, f, sizeof(*f) + f->keylen);
}

static void file_dirty(struct lk_table *t, struct lk_file *f)
{
	if (!f->dirty) {
		f->dirty = 1;
		f->dnext = t->dirty;
		t->dirty = f;
	}
}

/* Bytes [lo,hi] of @f were freed: waiters there get a look at settle. */
static void file_released(struct lk_table *t, struct lk_file *f, uint64_t lo, uint64_t hi)
{
	if (!f->wake) {
		f->wake = 1;
		f->wake_lo = lo;
		f->wake_hi = hi;
	} else {
		if (lo < f->wake_lo)
			f->wake_lo = lo;
		if (hi > f->wake_hi)
			f->wake_hi = hi;
	}
	file_dirty(t, f);
}

/* ---- owners and clients ---- */

static void client_destroy(struct lk_table *t, struct lk_client *c)
{
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		t->clients = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	t->nclients--;
	lk_free(t, c, sizeof(*c));
}

static void owner_maybe_free(struct lk_table *t, struct lk_owner *o)
{
	struct lk_client *c = o->client;

	if (o->refs || o->nlocks || o->nwait || o->nshares)
		return;
	lk_htab_del(&t->owners, &o->hn);
	if (c->omemo[o->svid % LK_OWNER_MEMO] == o)
		c->omemo[o->svid % LK_OWNER_MEMO] = NULL;
	if (o->cprev)
		o->cprev->cnext = o->cnext;
	else
		c->owners = o->cnext;
	if (o->cnext)
		o->cnext->cprev = o->cprev;
	t->nowners--;
	c->nowners--;
	lk_free(t, o, sizeof(*o) + o->ohlen);
	if (c->dead && c->nowners == 0)
		client_destroy(t, c);
}

/* ---- waiters ---- */

static void waiter_enqueue(struct lk_table *t, struct lk_waiter *w)
{
	struct lk_file *f = w->file;
	struct lk_owner *o = w->owner;

	w->qnext = NULL;
	w->qprev = f->wq_tail;
	if (f->wq_tail)
		f->wq_tail->qnext = w;
	else
		f->wq_head = w;
	f->wq_tail = w;
	w->oprev = NULL;
	w->onext = o->waiters;
	if (o->waiters)
		o->waiters->oprev = w;
	o->waiters = w;
	w->state = W_QUEUED;
	f->nqueued++;
	o->nwait++;
	o->client->nqueued++;
	t->nqueued++;
}

/* Take @w off its file's queue and its owner's list; it keeps both pinned
 * (file->npending, owner->nwait) until waiter_destroy. */
static void waiter_dequeue(struct lk_table *t, struct lk_waiter *w)
{
	struct lk_file *f = w->file;
	struct lk_owner *o = w->owner;

	if (w->qprev)
		w->qprev->qnext = w->qnext;
	else
		f->wq_head = w->qnext;
	if (w->qnext)
		w->qnext->qprev = w->qprev;
	else
		f->wq_tail = w->qprev;
	if (w->oprev)
		w->oprev->onext = w->onext;
	else
		o->waiters = w->onext;
	if (w->onext)
		w->onext->oprev = w->oprev;
	w->qnext = w->qprev = w->onext = w->oprev = NULL;
	w->state = W_LIMBO;
	f->nqueued--;
	f->npending++;
	o->client->nqueued--;
	t->nqueued--;
}

static void waiter_destroy(struct lk_table *t, struct lk_waiter *w)
{
	struct lk_file *f = w->file;
	struct lk_owner *o = w->owner;

	pool_free(t, &w->spare);
	lk_free(t, w, sizeof(*w));
	f->npending--;
	o->nwait--;
	file_maybe_free(t, f);
	owner_maybe_free(t, o);
}

static void pend_push(struct lk_table *t, struct lk_waiter *w, int state)
{
	w->state = (uint8_t)state;
	w->qnext = NULL;
	if (t->pend_tail)
		t->pend_tail->qnext = w;
	else
		t->pend_head = w;
	t->pend_tail = w;
}

/*
 * Grant, in FIFO order, the waiters of @f overlapping [lo,hi] that no held
 * lock blocks.  A grant never frees bytes except by downgrading its owner's
 * own exclusive lock; then earlier waiters may have become grantable: the
 * range widens and the scan restarts (the queue is shorter each time).
 */
static void file_wake(struct lk_table *t, struct lk_file *f, uint64_t lo, uint64_t hi)
{
	struct lk_waiter *w, *next;
	struct lk_lock *first;
	uint64_t rlo, rhi;
	bool noop;

restart:
	for (w = f->wq_head; w; w = next) {
		next = w->qnext;
		if (w->end < lo || w->start > hi)
			continue;
		if (conflict_find(f->by_start, w->owner, w->type, w->start, w->end))
			continue;
		waiter_dequeue(t, w);
		pend_push(t, w, W_GRANTED);
		/* Needs at most the 2 spare nodes (a new lock, a split). */
		lock_need(f, w->owner, w->type, w->start, w->end, &noop, &first);
		if (lock_apply(t, f, w->owner, w->type, w->start, w->end, first, &w->spare,
			       &rlo, &rhi)) {
			if (rlo < lo)
				lo = rlo;
			if (rhi > hi)
				hi = rhi;
			goto restart;
		}
	}
}

/* Run the callbacks of granted and dropped waiters, then free them.  Runs
 * once at a time: calls made from a callback append to the same list. */
static void notify(struct lk_table *t)
{
	struct lk_waiter *w;
	lk_waiter_fn fn;

	if (t->notifying)
		return;
	t->notifying = true;
	while ((w = t->pend_head)) {
		t->pend_head = w->qnext;
		if (!t->pend_head)
			t->pend_tail = NULL;
		fn = w->state == W_GRANTED ? t->on_grant : t->on_drop;
		w->state = W_LIMBO;
		if (fn)
			fn(t->cb_arg, w);
		waiter_destroy(t, w);
	}
	t->notifying = false;
}

/* End of every public call that changed something: wake, free, report. */
static void settle(struct lk_table *t)
{
	struct lk_file *f;

	while ((f = t->dirty)) {
		t->dirty = f->dnext;
		f->dirty = 0;
		if (f->wake) {
			f->wake = 0;
			if (f->wq_head)
				file_wake(t, f, f->wake_lo, f->wake_hi);
		}
		file_maybe_free(t, f);
	}
	notify(t);
}

/* ---- deadlock detection ---- */

struct dl_search {
	struct lk_owner *target;	/* the owner about to wait */
	struct lk_owner *stack;		/* owners to expand, via dl_next */
	uint64_t gen;
	bool found;
};

static bool dl_visit(void *arg, struct lk_lock *l)
{
	struct dl_search *d = arg;
	struct lk_owner *h = l->owner;

	if (h == d->target) {
		d->found = true;
		return true;
	}
	if (h->dl_gen != d->gen) {
		h->dl_gen = d->gen;
		h->dl_next = d->stack;
		d->stack = h;
	}
	return false;
}

/*
 * Would @o waiting for @type on [s,e] of @f close a cycle?  Depth-first
 * over "holds a lock that blocks": from the holders blocking this request,
 * through the requests those holders are queued for, and so on; a cycle
 * exists iff @o is reached.  Cost: the waiters and conflicts reachable.
 */
static bool would_deadlock(struct lk_table *t, struct lk_file *f, struct lk_owner *o,
			   int type, uint64_t s, uint64_t e)
{
	struct dl_search d = { .target = o, .gen = ++t->dl_gen };
	struct lk_owner *b;
	struct lk_waiter *w;

	conflict_each(f->by_start, o, type, s, e, dl_visit, &d);
	while (!d.found && (b = d.stack)) {
		d.stack = b->dl_next;
		for (w = b->waiters; w && !d.found; w = w->onext)
			conflict_each(w->file->by_start, b, w->type, w->start, w->end,
				      dl_visit, &d);
	}
	return d.found;
}

/* ---- table ---- */

int lk_table_new(const struct lk_table_opts *opts, struct lk_table **out)
{
	static const struct lk_table_opts defaults;
	struct lk_allocator al = { default_alloc, default_free, NULL };
	struct lk_table *t;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->allocator)
		al = *opts->allocator;
	t = al.alloc(al.ctx, sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->al = al;
	t->slab = !opts->allocator;
	if (t->slab)
		slab_init(&t->nodes, sizeof(struct lk_lock), 1);
	t->on_grant = opts->on_grant;
	t->on_drop = opts->on_drop;
	t->cb_arg = opts->cb_arg;
	t->max_waiters = opts->max_waiters_per_client ? opts->max_waiters_per_client
						      : LK_DEFAULT_MAX_WAITERS;
	t->seed0 = opts->hash_seed[0];
	t->seed1 = opts->hash_seed[1];
	if (lk_htab_init(&t->files, &t->al, 64) < 0)
		goto free_table;
	if (lk_htab_init(&t->owners, &t->al, 64) < 0)
		goto free_files;
	*out = t;
	return 0;

free_files:
	lk_htab_fini(&t->files, &t->al);
free_table:
	al.free(al.ctx, t, sizeof(*t));
	return -ENOMEM;
}

void lk_table_free(struct lk_table *t)
{
	struct lk_client *c;
	struct lk_owner *o;
	struct lk_lock *l;
	struct lk_waiter *w;
	struct lk_share *sh;
	struct lk_hnode *n;

	if (!t)
		return;
	assert(!t->notifying && !t->pend_head && !t->dirty);
	/* Every lock, queued waiter and share is on exactly one owner list. */
	while ((c = t->clients)) {
		while ((o = c->owners)) {
			c->owners = o->cnext;
			while ((l = o->locks)) {
				o->locks = l->onext;
				node_free(t, l);
			}
			while ((w = o->waiters)) {
				o->waiters = w->onext;
				pool_free(t, &w->spare);
				lk_free(t, w, sizeof(*w));
			}
			while ((sh = o->shares)) {
				o->shares = sh->onext;
				lk_free(t, sh, sizeof(*sh));
			}
			lk_free(t, o, sizeof(*o) + o->ohlen);
		}
		t->clients = c->tnext;
		lk_free(t, c, sizeof(*c));
	}
	for (size_t i = 0; i < t->files.nb; i++) {
		while ((n = t->files.b[i])) {
			struct lk_file *f = CONTAINER(n, struct lk_file, hn);

			t->files.b[i] = n->next;
			lk_free(t, f, sizeof(*f) + f->keylen);
		}
	}
	lk_htab_fini(&t->files, &t->al);
	lk_htab_fini(&t->owners, &t->al);
	if (t->slab)
		slab_fini(&t->nodes);
	t->al.free(t->al.ctx, t, sizeof(*t));
}

void lk_table_stats(const struct lk_table *t, struct lk_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->locks = t->nlocks;
	st->waiters = t->nqueued;
	st->shares = t->nshares;
	st->files = t->nfiles;
	st->owners = t->nowners;
	st->clients = t->nclients;
}

/* ---- clients and owners (public) ---- */

int lk_client_new(struct lk_table *t, void *priv, struct lk_client **out)
{
	struct lk_client *c;

	*out = NULL;
	if (!t)
		return -EINVAL;
	c = lk_alloc(t, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->priv = priv;
	c->tnext = t->clients;
	if (t->clients)
		t->clients->tprev = c;
	t->clients = c;
	t->nclients++;
	*out = c;
	return 0;
}

void *lk_client_priv(const struct lk_client *c)
{
	return c->priv;
}

void lk_client_stats(const struct lk_client *c, struct lk_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->locks = c->nlocks;
	st->waiters = c->nqueued;
	st->shares = c->nshares;
	st->owners = c->nowners;
}

static uint64_t owner_hash(const struct lk_table *t, const struct lk_client *c,
			   uint32_t svid, const void *oh, size_t ohlen)
{
	return sh_siphash(t->seed0 ^ (uint64_t)(uintptr_t)c, t->seed1 ^ svid, oh, ohlen);
}

int lk_owner_get(struct lk_table *t, struct lk_client *c, uint32_t svid,
		 const void *oh, size_t ohlen, struct lk_owner **out)
{
	struct lk_owner *o;
	struct lk_hnode *n;
	uint64_t h;

	*out = NULL;
	if (!t || !c || c->dead || ohlen > LK_OH_MAX || (ohlen && !oh))
		return -EINVAL;
	/* A client's owners are few and send in runs: the one last found for
	 * this svid is compared first and spares the keyed hash. */
	o = c->omemo[svid % LK_OWNER_MEMO];
	if (o && o->svid == svid && o->ohlen == ohlen &&
	    (ohlen == 0 || memcmp(o->oh, oh, ohlen) == 0)) {
		o->refs++;
		*out = o;
		return 0;
	}
	h = owner_hash(t, c, svid, oh, ohlen);
	for (n = lk_htab_head(&t->owners, h); n; n = n->next) {
		o = CONTAINER(n, struct lk_owner, hn);
		if (n->hash == h && o->client == c && o->svid == svid && o->ohlen == ohlen &&
		    (ohlen == 0 || memcmp(o->oh, oh, ohlen) == 0)) {
			o->refs++;
			c->omemo[svid % LK_OWNER_MEMO] = o;
			*out = o;
			return 0;
		}
	}
	o = lk_alloc(t, sizeof(*o) + ohlen);
	if (!o)
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	o->hn.hash = h;
	o->client = c;
	o->svid = svid;
	o->ohlen = (uint16_t)ohlen;
	if (ohlen)
		memcpy(o->oh, oh, ohlen);
	o->refs = 1;
	lk_htab_add(&t->owners, &t->al, &o->hn);
	o->cnext = c->owners;
	if (c->owners)
		c->owners->cprev = o;
	c->owners = o;
	c->nowners++;
	t->nowners++;
	c->omemo[svid % LK_OWNER_MEMO] = o;
	*out = o;
	return 0;
}

void lk_owner_put(struct lk_table *t, struct lk_owner *o)
{
	if (!o)
		return;
	assert(o->refs > 0);
	o->refs--;
	owner_maybe_free(t, o);
}

struct lk_client *lk_owner_client(const struct lk_owner *o)
{
	return o->client;
}

uint32_t lk_owner_svid(const struct lk_owner *o)
{
	return o->svid;
}

const void *lk_owner_oh(const struct lk_owner *o, size_t *len)
{
	*len = o->ohlen;
	return o->oh;
}

/* ---- the release walker ---- */

static void share_unlink(struct lk_table *t, struct lk_share *sh)
{
	struct lk_share **pp = &sh->file->shares;
	struct lk_owner *o = sh->owner;

	while (*pp != sh)
		pp = &(*pp)->fnext;
	*pp = sh->fnext;
	if (sh->oprev)
		sh->oprev->onext = sh->onext;
	else
		o->shares = sh->onext;
	if (sh->onext)
		sh->onext->oprev = sh->oprev;
	o->nshares--;
	o->client->nshares--;
	t->nshares--;
}

/*
 * Release what @o has on the files @match accepts (all if @match is NULL):
 * locks are removed (their bytes marked freed), queued waiters go to on_drop,
 * shares are removed.  Wakes and callbacks happen at the caller's settle().
 * The caller pins @o.
 */
static void owner_release(struct lk_table *t, struct lk_owner *o, lk_match_fn match, void *arg)
{
	struct lk_lock *l, *ln;
	struct lk_waiter *w, *wn;
	struct lk_share *sh, *sn;
	struct lk_file *f;

	for (l = o->locks; l; l = ln) {
		ln = l->onext;
		f = l->file;
		if (match && !match(arg, o, f->key, f->keylen))
			continue;
		lock_unlink(t, l);
		file_released(t, f, l->start, l->end);
		node_free(t, l);
	}
	for (w = o->waiters; w; w = wn) {
		wn = w->onext;
		f = w->file;
		if (match && !match(arg, o, f->key, f->keylen))
			continue;
		waiter_dequeue(t, w);
		pend_push(t, w, W_DROPPED);
	}
	for (sh = o->shares; sh; sh = sn) {
		sn = sh->onext;
		f = sh->file;
		if (match && !match(arg, o, f->key, f->keylen))
			continue;
		share_unlink(t, sh);
		lk_free(t, sh, sizeof(*sh));
		file_dirty(t, f);	/* settle frees it if now empty */
	}
}

static void client_release(struct lk_table *t, struct lk_client *c, lk_match_fn match, void *arg)
{
	struct lk_owner *o, *next;

	for (o = c->owners; o; o = next) {
		o->refs++;
		owner_release(t, o, match, arg);
		next = o->cnext;
		o->refs--;
		owner_maybe_free(t, o);	/* can free o, never next */
	}
}

void lk_owner_release(struct lk_table *t, struct lk_owner *o)
{
	o->refs++;
	owner_release(t, o, NULL, NULL);
	settle(t);
	o->refs--;
	owner_maybe_free(t, o);
}

void lk_client_release(struct lk_table *t, struct lk_client *c)
{
	client_release(t, c, NULL, NULL);
	settle(t);
}

void lk_client_free(struct lk_table *t, struct lk_client *c)
{
	if (!c || c->dead)
		return;
	client_release(t, c, NULL, NULL);
	c->dead = true;
	/* Owners still pinned (caller references, dropped waiters whose
	 * on_drop is pending) free the client when the last one goes. */
	if (c->nowners == 0)
		client_destroy(t, c);
	settle(t);
}

void lk_release_matching(struct lk_table *t, lk_match_fn match, void *arg)
{
	struct lk_client *c, *next;

	for (c = t->clients; c; c = next) {
		next = c->tnext;
		client_release(t, c, match, arg);	/* can free c, never next */
	}
	settle(t);
}

/* ---- ranges ---- */

int lk_range_make(uint64_t offset, uint64_t length, struct lk_range *r)
{
	if (length == 0) {
		r->start = offset;
		r->end = LK_EOF;
		return 0;
	}
	/* offset + (length - 1) must not pass 2^64 - 1. */
	if (length - 1 > LK_EOF - offset)
		return -EOVERFLOW;
	r->start = offset;
	r->end = offset + (length - 1);
	return 0;
}

uint64_t lk_range_len(const struct lk_range *r)
{
	if (r->end == LK_EOF)
		return 0;
	return r->end - r->start + 1;	/* end < 2^64 - 1: fits */
}

/* ---- byte-range locks (public) ---- */

static int check_req(const struct lk_table *t, const void *key, size_t keylen,
		     const struct lk_owner *o, int type, struct lk_range r)
{
	if (!t || !key || keylen == 0 || keylen > LK_KEY_MAX || !o || r.start > r.end)
		return -EINVAL;
	if (type != LK_SHARED && type != LK_EXCL)
		return -EINVAL;
	return 0;
}

static void holder_fill(struct lk_lockinfo *h, const struct lk_lock *l)
{
	if (!h)
		return;
	h->key = l->file->key;
	h->keylen = l->file->keylen;
	h->owner = l->owner;
	h->type = (enum lk_type)l->type;
	h->range.start = l->start;
	h->range.end = l->end;
}

int lk_test(struct lk_table *t, const void *key, size_t keylen,
	    struct lk_owner *o, enum lk_type type, struct lk_range r,
	    struct lk_lockinfo *holder)
{
	struct lk_file *f;
	struct lk_lock *c;
	int rc = check_req(t, key, keylen, o, type, r);

	if (rc)
		return rc;
	f = file_lookup_keep(t, key, keylen);
	if (!f)
		return 0;
	c = conflict_find(f->by_start, o, type, r.start, r.end);
	if (!c)
		return 0;
	holder_fill(holder, c);
	return -EAGAIN;
}

bool lk_holds(const struct lk_table *t, const void *key, size_t keylen,
	      const struct lk_owner *o, enum lk_type type, struct lk_range r)
{
	const struct lk_file *f;
	struct lk_lock *first;
	bool noop;

	if (check_req(t, key, keylen, o, type, r))
		return false;
	f = file_lookup(t, key, keylen);
	if (!f)
		return false;
	lock_need(f, o, type, r.start, r.end, &noop, &first);
	return noop;
}

bool lk_holds_any(const struct lk_table *t, const void *key, size_t keylen,
		  const struct lk_owner *o, struct lk_range r)
{
	const struct lk_file *f;
	const struct lk_lock *l;

	if (check_req(t, key, keylen, o, LK_SHARED, r))
		return false;
	f = file_lookup(t, key, keylen);
	if (!f)
		return false;
	/* An owner's locks on a file never overlap, so the first one ending
	 * at or after the range's start is the only candidate. */
	l = owner_seek(f, o, r.start);
	return l && l->start <= r.end;
}

/* Grant @o @type on @r now (no conflict), creating the file if needed. */
static int grant_now(struct lk_table *t, struct lk_file *f, const void *key, size_t keylen,
		     struct lk_owner *o, int type, struct lk_range r)
{
	struct lk_lock *pool = NULL, *first;
	uint64_t lo, hi;
	unsigned need;
	bool noop;
	int rc;

	if (!f) {
		rc = file_new(t, key, keylen, key_hash(t, key, keylen), &f);
		if (rc)
			return rc;
	}
	need = lock_need(f, o, type, r.start, r.end, &noop, &first);
	if (noop)
		return 0;
	rc = pool_fill(t, &pool, need);
	if (rc) {
		file_maybe_free(t, f);
		return rc;
	}
	if (lock_apply(t, f, o, type, r.start, r.end, first, &pool, &lo, &hi))
		file_released(t, f, lo, hi);
	assert(!pool);
	settle(t);
	return 0;
}

/*
 * Does [s,...] start past every byte any lock of @f holds, with a gap
 * (s - 1 too)?  Then it overlaps nothing (no conflict, nothing to cut) and
 * touches nothing (nothing to merge): granting it is one new node, linked
 * last.  The root's max_end is the largest end in the file.  This is how a
 * journal replays (a snapshot lists each file's locks in start order) and
 * how a client taking successive records of a file locks.
 */
static bool file_past_end(const struct lk_file *f, uint64_t s)
{
	return f->by_start && s > 0 && bs_lock(f->by_start)->max_end < s - 1;
}

/* grant_now of a range file_past_end says is past every lock of @f. */
static int grant_past_end(struct lk_table *t, struct lk_file *f, struct lk_owner *o, int type,
			  struct lk_range r)
{
	struct lk_lock *pool = NULL, *l;
	int rc = pool_fill(t, &pool, 1);

	if (rc)
		return rc;
	l = pool_pop(&pool);
	lock_init(l, f, o, type, r.start, r.end);
	lock_link_at(t, l, true);
	settle(t);
	return 0;
}

int lk_lock(struct lk_table *t, const void *key, size_t keylen,
	    struct lk_owner *o, enum lk_type type, struct lk_range r,
	    struct lk_lockinfo *holder)
{
	struct lk_file *f;
	struct lk_lock *c;
	int rc = check_req(t, key, keylen, o, type, r);

	if (rc)
		return rc;
	f = file_lookup_keep(t, key, keylen);
	if (f && file_past_end(f, r.start))
		return grant_past_end(t, f, o, type, r);
	if (f && (c = conflict_find(f->by_start, o, type, r.start, r.end))) {
		holder_fill(holder, c);
		return -EAGAIN;
	}
	return grant_now(t, f, key, keylen, o, type, r);
}

static struct lk_waiter *waiter_match(const struct lk_file *f, const struct lk_owner *o,
				      int type, struct lk_range r)
{
	struct lk_waiter *w;

	for (w = f->wq_head; w; w = w->qnext)
		if (w->owner == o && w->type == type && w->start == r.start && w->end == r.end)
			return w;
	return NULL;
}

int lk_lock_wait(struct lk_table *t, const void *key, size_t keylen,
		 struct lk_owner *o, enum lk_type type, struct lk_range r,
		 void *priv, struct lk_waiter **wp, struct lk_lockinfo *holder)
{
	struct lk_waiter *w;
	struct lk_file *f;
	struct lk_lock *c;
	int rc;

	*wp = NULL;
	rc = check_req(t, key, keylen, o, type, r);
	if (rc)
		return rc;
	f = file_lookup_keep(t, key, keylen);
	c = f ? conflict_find(f->by_start, o, type, r.start, r.end) : NULL;
	if (!c)
		return grant_now(t, f, key, keylen, o, type, r);
	holder_fill(holder, c);

	w = waiter_match(f, o, type, r);
	if (w) {
		*wp = w;		/* a retransmission: same waiter */
		return -EINPROGRESS;
	}
	if (o->client->nqueued >= t->max_waiters)
		return -ENOLCK;
	if (would_deadlock(t, f, o, type, r.start, r.end))
		return -EDEADLK;

	w = lk_alloc(t, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	/* A grant needs at most a new node and the right half of a split. */
	rc = pool_fill(t, &w->spare, 2);
	if (rc) {
		lk_free(t, w, sizeof(*w));
		return rc;
	}
	w->file = f;
	w->owner = o;
	w->priv = priv;
	w->start = r.start;
	w->end = r.end;
	w->type = (uint8_t)type;
	waiter_enqueue(t, w);
	*wp = w;
	return -EINPROGRESS;
}

int lk_unlock(struct lk_table *t, const void *key, size_t keylen,
	      struct lk_owner *o, struct lk_range r)
{
	struct lk_lock *pool = NULL, *first;
	struct lk_file *f;
	uint64_t lo, hi;
	int rc = check_req(t, key, keylen, o, LK_SHARED, r);

	if (rc)
		return rc;
	f = file_lookup_keep(t, key, keylen);
	if (!f)
		return 0;
	rc = pool_fill(t, &pool, unlock_need(f, o, r.start, r.end, &first));
	if (rc)
		return rc;
	if (lock_remove(t, f, o, r.start, r.end, first, &pool, &lo, &hi))
		file_released(t, f, lo, hi);
	assert(!pool);
	settle(t);
	owner_maybe_free(t, o);
	return 0;
}

struct lk_waiter *lk_waiter_find(struct lk_table *t, const void *key, size_t keylen,
				 const struct lk_owner *o, enum lk_type type, struct lk_range r)
{
	struct lk_file *f;

	if (check_req(t, key, keylen, o, type, r))
		return NULL;
	f = file_lookup_keep(t, key, keylen);
	return f ? waiter_match(f, o, type, r) : NULL;
}

void lk_cancel(struct lk_table *t, struct lk_waiter *w)
{
	if (!w || w->state != W_QUEUED)
		return;
	waiter_dequeue(t, w);
	waiter_destroy(t, w);
}

void lk_waiter_info(const struct lk_waiter *w, struct lk_lockinfo *li)
{
	li->key = w->file->key;
	li->keylen = w->file->keylen;
	li->owner = w->owner;
	li->type = (enum lk_type)w->type;
	li->range.start = w->start;
	li->range.end = w->end;
}

void *lk_waiter_priv(const struct lk_waiter *w)
{
	return w->priv;
}

void lk_waiter_set_priv(struct lk_waiter *w, void *priv)
{
	w->priv = priv;
}

/* ---- share reservations ---- */

int lk_share_test(const struct lk_table *t, const void *key, size_t keylen,
		  const struct lk_owner *o, unsigned mode, unsigned deny)
{
	const struct lk_file *f;

	if (!t || !key || keylen == 0 || keylen > LK_KEY_MAX || !o ||
	    mode > LK_SH_BOTH || deny > LK_SH_BOTH)
		return -EINVAL;
	f = file_lookup(t, key, keylen);
	for (const struct lk_share *sh = f ? f->shares : NULL; sh; sh = sh->fnext)
		if (sh->owner != o && ((mode & sh->deny) || (deny & sh->mode)))
			return -EAGAIN;
	return 0;
}

bool lk_share_holds(const struct lk_table *t, const void *key, size_t keylen,
		    const struct lk_owner *o, unsigned mode, unsigned deny)
{
	const struct lk_file *f;

	if (!t || !key || keylen == 0 || keylen > LK_KEY_MAX || !o)
		return false;
	f = file_lookup(t, key, keylen);
	for (const struct lk_share *sh = f ? f->shares : NULL; sh; sh = sh->fnext)
		if (sh->owner == o)
			return sh->mode == mode && sh->deny == deny;
	return false;
}

int lk_share(struct lk_table *t, const void *key, size_t keylen,
	     struct lk_owner *o, unsigned mode, unsigned deny)
{
	struct lk_share *sh, *mine = NULL;
	struct lk_file *f;
	int rc;

	if (!t || !key || keylen == 0 || keylen > LK_KEY_MAX || !o ||
	    mode > LK_SH_BOTH || deny > LK_SH_BOTH)
		return -EINVAL;
	rc = file_get(t, key, keylen, &f);
	if (rc)
		return rc;
	for (sh = f->shares; sh; sh = sh->fnext) {
		if (sh->owner == o) {
			mine = sh;
		} else if ((mode & sh->deny) || (deny & sh->mode)) {
			file_maybe_free(t, f);
			return -EAGAIN;
		}
	}
	if (mine) {
		mine->mode = (uint8_t)mode;
		mine->deny = (uint8_t)deny;
		return 0;
	}
	sh = lk_alloc(t, sizeof(*sh));
	if (!sh) {
		file_maybe_free(t, f);
		return -ENOMEM;
	}
	sh->file = f;
	sh->owner = o;
	sh->mode = (uint8_t)mode;
	sh->deny = (uint8_t)deny;
	sh->fnext = f->shares;
	f->shares = sh;
	sh->oprev = NULL;
	sh->onext = o->shares;
	if (o->shares)
		o->shares->oprev = sh;
	o->shares = sh;
	o->nshares++;
	o->client->nshares++;
	t->nshares++;
	return 0;
}

int lk_unshare(struct lk_table *t, const void *key, size_t keylen, struct lk_owner *o)
{
	struct lk_share *sh;
	struct lk_file *f;

	if (!t || !key || keylen == 0 || keylen > LK_KEY_MAX || !o)
		return -EINVAL;
	f = file_lookup_keep(t, key, keylen);
	if (!f)
		return 0;
	for (sh = f->shares; sh; sh = sh->fnext) {
		if (sh->owner == o) {
			share_unlink(t, sh);
			lk_free(t, sh, sizeof(*sh));
			file_maybe_free(t, f);
			owner_maybe_free(t, o);
			break;
		}
	}
	return 0;
}

/* ---- iteration ---- */

static void info_fill(struct lk_lockinfo *li, const struct lk_lock *l)
{
	holder_fill(li, l);
}

int lk_foreach_lock(const struct lk_table *t, lk_lock_fn fn, void *arg)
{
	struct lk_lockinfo li;
	struct lk_hnode *n;
	struct lk_rb *a;
	int rc;

	for (size_t i = 0; i < t->files.nb; i++) {
		for (n = t->files.b[i]; n; n = n->next) {
			struct lk_file *f = CONTAINER(n, struct lk_file, hn);

			for (a = lk_rb_first(f->by_start); a; a = lk_rb_next(a)) {
				info_fill(&li, bs_lock(a));
				rc = fn(arg, &li);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

int lk_foreach_share(const struct lk_table *t, lk_share_fn fn, void *arg)
{
	struct lk_shareinfo si;
	struct lk_hnode *n;
	int rc;

	for (size_t i = 0; i < t->files.nb; i++) {
		for (n = t->files.b[i]; n; n = n->next) {
			struct lk_file *f = CONTAINER(n, struct lk_file, hn);

			for (struct lk_share *s = f->shares; s; s = s->fnext) {
				si.key = f->key;
				si.keylen = f->keylen;
				si.owner = s->owner;
				si.mode = s->mode;
				si.deny = s->deny;
				rc = fn(arg, &si);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

int lk_client_foreach_lock(const struct lk_client *c, lk_lock_fn fn, void *arg)
{
	struct lk_lockinfo li;
	struct lk_owner *o;
	struct lk_lock *l;
	int rc;

	for (o = c->owners; o; o = o->cnext) {
		for (l = o->locks; l; l = l->onext) {
			info_fill(&li, l);
			rc = fn(arg, &li);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int lk_foreach_waiter(const struct lk_table *t, lk_lock_fn fn, void *arg)
{
	struct lk_lockinfo li;
	struct lk_waiter *w;
	struct lk_hnode *n;
	int rc;

	for (size_t i = 0; i < t->files.nb; i++) {
		for (n = t->files.b[i]; n; n = n->next) {
			struct lk_file *f = CONTAINER(n, struct lk_file, hn);

			for (w = f->wq_head; w; w = w->qnext) {
				lk_waiter_info(w, &li);
				rc = fn(arg, &li);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

/* ---- consistency check ---- */

#define CHECK(cond, msg) do { if (!(cond)) { *why = (msg); return -EUCLEAN; } } while (0)

/* Recompute the augmentation below @n and compare. */
static int check_aug(const struct lk_rb *n, const char **why)
{
	struct lk_lock *l, tmp;
	int rc;

	if (!n)
		return 0;
	rc = check_aug(n->left, why);
	if (!rc)
		rc = check_aug(n->right, why);
	if (rc)
		return rc;
	l = bs_lock(n);
	tmp = *l;
	bs_aug(&tmp.by_start);
	CHECK(tmp.max_end == l->max_end && tmp.flags == l->flags &&
	      (!(l->flags & LKF_SUBX) || tmp.max_xend == l->max_xend), "stale max end");
	return 0;
}

static int check_file(const struct lk_table *t, const struct lk_file *f, size_t *nlocks,
		      size_t *nqueued, const char **why)
{
	const struct lk_lock *l, *prev = NULL;
	const struct lk_waiter *w;
	const struct lk_share *sh, *s2;
	const struct lk_rb *a;
	uint32_t n = 0, m = 0;

	CHECK(lk_rb_check(f->by_start) >= 0, "by_start tree shape");
	CHECK(lk_rb_check(f->by_owner) >= 0, "by_owner tree shape");
	if (check_aug(f->by_start, why))
		return -EUCLEAN;
	for (a = lk_rb_first(f->by_start); a; a = lk_rb_next(a), n++) {
		l = bs_lock(a);
		CHECK(l->file == f && l->start <= l->end, "lock node");
		CHECK(l->type == LK_SHARED || l->type == LK_EXCL, "lock type");
		CHECK(!prev || prev->start < l->start ||
		      (prev->start == l->start && owner_lt(prev->owner, l->owner)), "by_start order");
		CHECK(!conflict_find(f->by_start, l->owner, l->type, l->start, l->end),
		      "two conflicting locks held");
		prev = l;
	}
	prev = NULL;
	for (a = lk_rb_first(f->by_owner); a; a = lk_rb_next(a), m++) {
		l = bo_lock(a);
		CHECK(l->owner->indexed, "unindexed owner in by_owner");
		if (prev && prev->owner == l->owner) {
			CHECK(prev->end < l->start, "one owner's locks overlap");
			CHECK(prev->type != l->type || l->start - 1 > prev->end,
			      "touching locks of one owner and type not merged");
		} else {
			CHECK(!prev || owner_lt(prev->owner, l->owner), "by_owner order");
		}
		prev = l;
	}
	/* Owners not indexed: the same rules, pairwise over their short lists. */
	for (a = lk_rb_first(f->by_start); a; a = lk_rb_next(a)) {
		l = bs_lock(a);
		if (l->owner->indexed) {
			m--;
			continue;
		}
		for (prev = l->owner->locks; prev; prev = prev->onext) {
			if (prev == l || prev->file != f)
				continue;
			CHECK(prev->end < l->start || l->end < prev->start,
			      "one owner's locks overlap");
			CHECK(prev->type != l->type || (prev->end < l->start && l->start - 1 > prev->end) ||
			      (l->end < prev->start && prev->start - 1 > l->end),
			      "touching locks of one owner and type not merged");
		}
	}
	CHECK(m == 0 && n == f->nlocks, "file lock count");
	*nlocks += n;
	n = 0;
	for (w = f->wq_head; w; w = w->qnext, n++) {
		CHECK(w->file == f && w->state == W_QUEUED, "waiter node");
		CHECK(w->qnext ? w->qnext->qprev == w : f->wq_tail == w, "waiter queue links");
		CHECK(conflict_find(f->by_start, w->owner, w->type, w->start, w->end),
		      "a queued waiter could be granted");
	}
	CHECK(n == f->nqueued, "file waiter count");
	*nqueued += n;
	for (sh = f->shares; sh; sh = sh->fnext) {
		CHECK(sh->file == f, "share node");
		for (s2 = sh->fnext; s2; s2 = s2->fnext)
			CHECK(s2->owner != sh->owner && !(sh->mode & s2->deny) &&
			      !(sh->deny & s2->mode), "conflicting shares");
	}
	CHECK(f->nlocks || f->nqueued || f->shares || f->npending, "empty file kept");
	CHECK(!f->dirty && !f->wake, "dirty file outside a call");
	(void)t;
	return 0;
}

int lk_table_check(const struct lk_table *t, const char **why)
{
	const char *dummy;
	const struct lk_client *c;
	const struct lk_owner *o;
	const struct lk_lock *l;
	const struct lk_waiter *w;
	const struct lk_share *sh;
	const struct lk_hnode *n;
	size_t nlocks = 0, nqueued = 0, nfiles = 0, nowners = 0, nclients = 0, nshares = 0;
	bool last_file_live = t->last_file == NULL;

	if (!why)
		why = &dummy;
	*why = NULL;
	for (size_t i = 0; i < t->files.nb; i++) {
		for (n = t->files.b[i]; n; n = n->next, nfiles++) {
			const struct lk_file *f = CONTAINER(n, struct lk_file, hn);

			last_file_live |= f == t->last_file;
			CHECK((n->hash & (t->files.nb - 1)) == i, "file in wrong bucket");
			if (check_file(t, f, &nlocks, &nqueued, why))
				return -EUCLEAN;
		}
	}
	CHECK(nfiles == t->nfiles && nfiles == t->files.n, "file count");
	CHECK(last_file_live, "remembered file not in the table");
	CHECK(nlocks == t->nlocks && nqueued == t->nqueued, "table lock/waiter count");
	nlocks = nqueued = 0;
	for (c = t->clients; c; c = c->tnext, nclients++) {
		size_t cl = 0, cq = 0, cs = 0;
		uint32_t co = 0;

		CHECK(!c->tnext || c->tnext->tprev == c, "client links");
		for (o = c->owners; o; o = o->cnext, co++) {
			uint32_t ol = 0, oq = 0, os = 0;

			CHECK(o->client == c, "owner's client");
			CHECK(o->refs || o->nlocks || o->nwait || o->nshares, "unused owner kept");
			for (l = o->locks; l; l = l->onext, ol++)
				CHECK(l->owner == o, "owner lock list");
			for (w = o->waiters; w; w = w->onext, oq++)
				CHECK(w->owner == o && w->state == W_QUEUED, "owner waiter list");
			for (sh = o->shares; sh; sh = sh->onext, os++)
				CHECK(sh->owner == o, "owner share list");
			CHECK(ol == o->nlocks && os == o->nshares && oq <= o->nwait,
			      "owner counts");
			CHECK(o->indexed ? ol > 0 : ol <= OWNER_SCAN_MAX, "owner indexing");
			cl += ol;
			cq += oq;
			cs += os;
		}
		CHECK(co == c->nowners && cl == c->nlocks && cq == c->nqueued &&
		      cs == c->nshares, "client counts");
		for (unsigned k = 0; k < LK_OWNER_MEMO; k++) {
			bool live = c->omemo[k] == NULL;

			for (o = c->owners; o && !live; o = o->cnext)
				live = o == c->omemo[k] && o->svid % LK_OWNER_MEMO == k;
			CHECK(live, "remembered owner not the client's, or in the wrong slot");
		}
		nowners += co;
		nlocks += cl;
		nqueued += cq;
		nshares += cs;
	}
	CHECK(nclients == t->nclients && nowners == t->nowners && nowners == t->owners.n,
	      "client/owner count");
	CHECK(nlocks == t->nlocks && nqueued == t->nqueued && nshares == t->nshares,
	      "owner lists vs table counts");
	return 0;
}
