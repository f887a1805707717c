/*
 * nlm_svc.h - the NLM service (versions 1, 3 and 4) of one node, with the
 * lock state of each service group kept apart: each group has its own lock
 * table, its own client hosts and its own client list on its own storage.
 *
 * Owner identity (docs/nlm.md): a client host is its caller_name within a
 * group; an owner is (host, svid, oh bytes).  The source address does not
 * make a different host (multi-homed clients and NAT keep their locks), but
 * every address a host used is recorded on the client list, because that is
 * where notifications go and what SM_NOTIFY / FREE_ALL are checked against.
 *
 * Durability: a client is on its group's client list, on disk, before any
 * reply that grants it a lock or share in that group (clist.h).
 */
#ifndef SGNFS_NLM_SVC_H
#define SGNFS_NLM_SVC_H

#include <stdbool.h>
#include <stdint.h>
#include "rpc/rpc.h"

struct sg_group;
struct nlm_group;
struct json_object;

extern const struct rpc_prog nlm_prog;

/*
 * Open the lock state of group @g: its client list in
 * <first export>/.sgnfs/clients (read now) and an empty lock table.
 * Returns 0 and *out (free with nlm_group_close), or -errno.
 */
int nlm_group_open(struct sg_group *g, struct nlm_group **out);
/*
 * nlm_group_open in two halves.  nlm_group_load reads everything from disk
 * (client list, journal replayed into the group's own reservation table)
 * and touches no loop: it runs on the thread pool, and reads only @g's
 * immutable configuration.  nlm_group_attach then creates the loop's
 * handles, on the loop thread, before the group serves.  A loaded group
 * that is not attached is freed with nlm_group_discard (any thread).
 */
int nlm_group_load(struct sg_group *g, struct nlm_group **out);
int nlm_group_attach(struct nlm_group *ng);
void nlm_group_discard(struct nlm_group *ng);

/* Drop every lock, share, waiter and pending reply of the group (it goes
 * offline); requests waiting on the disk are abandoned without a reply. */
void nlm_group_close(struct nlm_group *ng);

/* Grace (per group): until nlm_group_end_grace() or @seconds pass, only
 * reclaims are granted on the group's files.  0 seconds ends it. */
void nlm_group_start_grace(struct nlm_group *ng, uint32_t seconds);
void nlm_group_end_grace(struct nlm_group *ng);
/*
 * Start the group's recovery, before it serves: grace for up to @seconds if
 * anything may need reclaiming (reservations from the journal; without a
 * trusted journal, any client on the list), else none.
 */
void nlm_group_recover(struct nlm_group *ng, uint32_t seconds);

/* Seconds of grace left, 0 when not in grace. */
uint32_t nlm_group_grace_left(const struct nlm_group *ng);

/*
 * Tell every client on the group's list that the group restarted with NSM
 * state @state: SM_NOTIFY from each VIP (src/nsm/notify.h), in the
 * background.  0 or -errno.
 */
int nlm_group_notify(struct nlm_group *ng, int32_t state);

/*
 * Client @name says it rebooted (SM_NOTIFY, NLM FREE_ALL, the local statd's
 * callback): release its locks, shares and queued requests in this group
 * only, if @from is an address the group's client list records for it, or
 * @trusted (the caller already proved it is this machine's own statd).
 * @why names the messenger for the log.  Returns true if something was
 * released.
 */
bool nlm_group_client_rebooted(struct nlm_group *ng, const char *name,
			       const struct sockaddr_storage *from, bool trusted,
			       const char *why);

/* Counts, and the lock part of a group's status (docs/status.md): adds
 * "journal", "clients" and "locks" to the group object @out. */
size_t nlm_group_nclients(const struct nlm_group *ng);
size_t nlm_group_nlocks(const struct nlm_group *ng);
size_t nlm_group_nwaiters(const struct nlm_group *ng);
struct jr_stats;
struct mt_hist;
/* The group's journal counters into @st (left as they are without a
 * journal). */
void nlm_group_journal_stats(const struct nlm_group *ng, struct jr_stats *st);
/* Add the journal's batches, failures and fsync histogram to the given
 * totals (the group goes offline; its metrics carry on).  NULL @ng: no-op. */
void nlm_group_fold_journal(const struct nlm_group *ng, uint64_t *batches, uint64_t *failures,
			    struct mt_hist *fsync);
void nlm_group_status(const struct nlm_group *ng, struct json_object *out);

#endif
