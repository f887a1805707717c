/*
 * clist.h - a service group's client list: the clients that hold (or held
 * recently) at least one lock on one of the group's filesystems.
 *
 * The list lives on the group's own storage (claim 2), in
 * <first export>/.sgnfs/clients/, one file per client, so it moves with the
 * group: the node that takes the group over reads it and knows exactly whom
 * to notify.  On-disk format: see clist.c.
 *
 * Durability rule: clist_ensure() calls back only once the client's entry
 * (with the address it used) is durable; the NLM layer replies with a grant
 * only from that callback.  A client that no longer holds anything stays on
 * the list for client_idle seconds, so lock churn costs no disk writes.
 *
 * Threading: every function is for the loop thread; file I/O runs on the
 * libuv thread pool.
 */
#ifndef SGNFS_CLIST_H
#define SGNFS_CLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define CLIST_NAME_MAX 1024
#define CLIST_MAX_ADDRS 8
/* An entry file: a name, a time and CLIST_MAX_ADDRS addresses; far less. */
#define CLIST_FILE_MAX 16384

struct clist;

struct clist_entry_info {
	const char *name;
	const struct sockaddr_storage *addrs;
	size_t naddrs;
	int64_t added;            /* unix seconds */
	bool holding;             /* holds locks now */
};

/*
 * 0 if @name (length @len, not NUL-terminated necessarily) may name a client
 * on disk; -EINVAL if it is empty, longer than CLIST_NAME_MAX, contains '/',
 * a control character or whitespace, starts with '.', or is "..", or has
 * the shape of a long name's file name (clist.c: it would share that file).
 */
int clist_name_check(const char *name, size_t len);

/*
 * Open the list in @statedir (the group's .sgnfs directory; created if
 * missing, with clients/ inside) and load it.  Blocking: call at group
 * start before the group serves.  @idle_s: how long an idle client stays.
 * Returns 0 and *out (free with clist_close) or -errno.
 */
int clist_open(uv_loop_t *loop, const char *statedir, uint32_t idle_s,
	       const char *group, struct clist **out);
/*
 * clist_open with @loop NULL touches no loop, so a group can load its list
 * on the thread pool; the loop thread then calls clist_attach before any
 * other function (clist_close is fine before it).
 */
void clist_attach(struct clist *cl, uv_loop_t *loop);

/* Drop the in-memory list.  I/O in flight completes and is discarded. */
void clist_close(struct clist *cl);
/* The same, and @fn(@arg) on the loop once the writes and unlinks in
 * flight are done (a group leaves only then: a late write of an entry could
 * replace the next owner's newer one).  True if @fn will be called, false
 * if nothing was in flight (@fn is not called). */
bool clist_close_then(struct clist *cl, void (*fn)(void *arg), void *arg);

typedef void (*clist_done_fn)(void *arg, int rc);

/*
 * Make sure client @name, seen at @addr, is durably on the list and marked
 * as holding locks.  Returns 1 if it already is (no callback), 0 if @done
 * will be called on the loop once the entry is durable (rc 0) or the write
 * failed (rc -errno; the caller must then refuse the lock), or -errno at
 * once: -EINVAL (bad name), -ENOMEM, or -EEXIST when another client's entry
 * has the file @name maps to (see clist.c: the lock must be refused, or
 * the two would overwrite each other's entry).
 */
int clist_ensure(struct clist *cl, const char *name, const struct sockaddr_storage *addr,
		 clist_done_fn done, void *arg);

/*
 * The hash under which the list keeps @name's entry (keyed, process-wide:
 * the same in every group's list), for the calls below that take one.  A
 * caller that asks about one name on every request (an NLM host) computes
 * it once, when it first sees the name; a hash that is not @name's makes
 * those calls answer as if @name had no entry.
 */
uint64_t clist_name_hash(const char *name);

/*
 * The case where clist_ensure() returns 1, without its allocation or name
 * check: is @name (its clist_name_hash @hash) durably on the list with
 * @addr among its addresses?  clist_listed only asks; clist_hold_listed
 * also marks it as holding locks (as clist_ensure does) when it is, and
 * changes nothing when it is not (then call clist_ensure).
 */
bool clist_listed(const struct clist *cl, const char *name, uint64_t hash,
		  const struct sockaddr_storage *addr);
bool clist_hold_listed(struct clist *cl, const char *name, uint64_t hash,
		       const struct sockaddr_storage *addr);

/* @name (its clist_name_hash @hash) holds no lock in this group any more:
 * it leaves the list after the idle time unless it locks again. */
void clist_release(struct clist *cl, const char *name, uint64_t hash);

/* True if @addr is one of the addresses recorded for @name. */
bool clist_has_addr(const struct clist *cl, const char *name,
		    const struct sockaddr_storage *addr);

/* Call @fn for every entry (in no particular order). */
void clist_foreach(const struct clist *cl,
		   void (*fn)(void *arg, const struct clist_entry_info *e), void *arg);
size_t clist_count(const struct clist *cl);

/* Remove @name now (e.g. it rebooted and freed everything); asynchronous. */
void clist_forget(struct clist *cl, const char *name);

/* Test hook: number of entry files written so far. */
uint64_t clist_writes(const struct clist *cl);

/* Test hook: how the open read the list's files (sfile.h, sf_read_dir). */
struct sf_dir_stats;
void clist_load_stats(const struct clist *cl, struct sf_dir_stats *st);

/* Test hook: idle sweeps run so far, and the entries they examined in all
 * (each sweep: those it removes, those with I/O in flight, and one more). */
void clist_sweep_stats(const struct clist *cl, uint64_t *sweeps, uint64_t *examined);

#endif
