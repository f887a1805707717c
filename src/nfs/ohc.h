/*
 * ohc.h - the open-handle cache: O_PATH descriptors of recently used
 * objects, by file handle, one bounded cache per service group.
 *
 * Why.  Resolving a handle costs open_by_handle_at(2), an fstat and a
 * readlink of /proc/self/fd/N (the subtree check, fh.c) for every call;
 * GETATTR and ACCESS then do nothing but one fstat or faccessat2.  A hit
 * here skips all of that, and GETATTR of a cached object is answered on
 * the event loop without a thread-pool hop (nfs3_svc.c).
 *
 * What is cached.  A descriptor enters only after the full resolution
 * (fh_open: MAC, export, subtree check) or a LOOKUP by name from a
 * resolved directory, so a hit has passed the same checks as a miss.  The
 * key is the whole handle body (fsid, kernel handle type and bytes, which
 * include the inode's generation), so a file recreated with the same
 * inode number is another key.
 *
 * Staleness.  A cached descriptor pins its inode, even after the last name
 * is gone (removed by a client or on the server itself).  Every user of a
 * hit therefore fstat()s it and treats st_nlink == 0 as ESTALE (what knfsd
 * answers for a removed file) and drops the entry (ohc_drop).  REMOVE,
 * RMDIR and RENAME drop the entries of the objects they unlink or move
 * (ohc_forget), so the space of a file removed over NFS is freed at once;
 * a file removed on the server directly keeps its blocks until its entry
 * is evicted or next used.
 *
 * Bounds.  Each cache holds at most its limit (the group's share of
 * [cluster] open_handles); a full cache evicts its least recently used
 * entry that no handler is using.  When the process runs out of
 * descriptors (EMFILE/ENFILE), ohc_pressure() halves every cache.  The
 * limit counts descriptors: an entry's O_PATH one and its data ones.
 *
 * Threads.  Every function is thread-safe (one mutex per cache, one for the
 * list of caches); handlers on the pool and the loop share a cache.  An
 * entry in use (ohc_get/ohc_add reference) keeps its descriptor open even
 * if it is dropped or evicted meanwhile; the last ohc_release closes it.
 */
#ifndef SGNFS_NFS_OHC_H
#define SGNFS_NFS_OHC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nfs/fh.h"

struct ohc;
struct ohc_ent;

/* Counters since the cache was made (status, tests). */
struct ohc_stats {
	uint64_t hits, misses, inserts, evictions, drops, pressure_evictions;
	uint64_t data_opens, data_hits;   /* ohc_data_fd: opened / found open */
	size_t entries, limit;
	size_t data_fds;                  /* data descriptors held (in the table) */
};

/* A cache of at most @limit entries (>= 1) for group @group (logs; the
 * string must outlive the cache).  0 or -ENOMEM. */
int ohc_new(size_t limit, const char *group, struct ohc **out);
/* Close every entry.  No entry may still be referenced. */
void ohc_free(struct ohc *c);

/*
 * The entry of @k with a reference for the caller, or NULL (miss; also
 * when @c is NULL).  The descriptor is ohc_fd(); the caller must check it
 * (fstat, st_nlink) before trusting it, and ohc_drop() it when stale.
 */
struct ohc_ent *ohc_get(struct ohc *c, const struct fh_key *k);
/* ohc_get() that does not count a miss: for a try whose miss is retried
 * (and counted) by the usual path, so each call counts once. */
struct ohc_ent *ohc_try(struct ohc *c, const struct fh_key *k);

/*
 * Insert @fd, an O_PATH descriptor of the object @k names whose checks
 * have passed, and return its entry referenced: the descriptor is then
 * the cache's (closed at once if another thread cached @k first; use
 * ohc_fd() of the entry returned).  NULL (@c NULL, or no memory): nothing
 * changed and @fd is still the caller's.
 */
struct ohc_ent *ohc_add(struct ohc *c, const struct fh_key *k, int fd);

/* Drop one reference; the entry's descriptor closes when it was evicted or
 * dropped and this was the last user. */
void ohc_release(struct ohc_ent *e);
int ohc_fd(const struct ohc_ent *e);

/*
 * Data descriptors.  An entry also keeps up to two descriptors for I/O on
 * its object, one O_RDONLY and one O_WRONLY, opened on first use from the
 * entry's O_PATH descriptor with the caller's credentials (the NFS layer
 * calls as root, after its own per-call permission check: these are shared
 * by every client, so whoever uses one must have checked the caller's
 * right to read or write first; ohc itself checks nothing).  They count
 * against the limit, close with the entry (eviction, drop, forget,
 * pressure) and are valid while the caller's reference is held.
 *
 * ohc_data_fd: the descriptor for reading (@write false) or writing,
 * opened now if the entry has none; a descriptor or -errno.
 * ohc_data_peek: the one already open, or -1 (never opens).
 */
int ohc_data_fd(struct ohc_ent *e, bool write);
int ohc_data_peek(struct ohc_ent *e, bool write);
/* Close @e's data descriptor for @write now if the caller's reference is
 * the entry's only one (nobody can be using it); true if closed. */
bool ohc_data_close_idle(struct ohc_ent *e, bool write);

/* Remove @e from its cache now (stale); the caller's reference stays. */
void ohc_drop(struct ohc_ent *e);
/* Remove the entry of @k, if any (the object was removed or renamed). */
void ohc_forget(struct ohc *c, const struct fh_key *k);

/* Evict up to @n least recently used unreferenced entries; returns how many. */
size_t ohc_shrink(struct ohc *c, size_t n);
/* Out of descriptors: evict half of every cache (at least one entry of
 * each that has one).  Returns the number of descriptors closed. */
size_t ohc_pressure(void);

void ohc_get_stats(struct ohc *c, struct ohc_stats *out);

#endif
