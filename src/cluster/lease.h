/*
 * lease.h - the embedded cluster manager: who serves a service group.
 *
 * A group's owner holds an exclusive open-file-description lock
 * (F_OFD_SETLK) on <statedir>/lease, on the group's own storage.  The
 * kernel drops it when the owner dies, however it dies, so there is never
 * a second owner and a waiting node can take over at once.  Each node that
 * may serve the group also holds a lock on <statedir>/node.<name> for as
 * long as it runs: that is how the others see it is alive.
 *
 * Who takes a free lease: the most preferred live node.  A node contends
 * only when no node ahead of it in the group's `nodes` list is alive (and,
 * just after a cold start, only once better nodes had time to appear), so a
 * less preferred node steps aside while a better one runs; once a node owns
 * the group it keeps it (no automatic failback, which would cost clients a
 * second recovery).  A planned move writes <statedir>/target naming the
 * node that should take the group; for TARGET_TTL seconds only that node
 * contends, as long as it is alive.
 *
 * Handing over without a refused connect: the owner also locks
 * <statedir>/bound once it listens on every VIP of the group (lease_set_bound),
 * and unlocks it before it stops listening.  A node that gave the group up
 * keeps its clients' connections until it sees that lock held by another
 * node (lease_bound_elsewhere): their reconnects then land on a listener.
 * Holding the lease alone says nothing of that: the new owner binds just
 * after it acquires.  A node that dies drops both locks with its process.
 *
 * Everything is decided on the event loop: the lease is polled every
 * LEASE_POLL_MS with non-blocking fcntl calls (microseconds on a local
 * filesystem).  While another node owns the lease, one thread per lease
 * (the waiter, lease.c) sleeps in F_OFD_SETLKW for a read lock on it; the
 * kernel wakes it the moment the owner's lock goes (a kill -9 included),
 * it lets go at once and the loop polls right then: a takeover does not
 * wait for the next poll tick, and the polls are skipped meanwhile (but
 * one a second, as a safety net).  The waiter never holds the lease.
 */
#ifndef SGNFS_LEASE_H
#define SGNFS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define LEASE_POLL_MS 50
/* At start-up a node waits rank x this before contending, so that nodes
 * started at the same moment settle on the most preferred one. */
#define LEASE_SETTLE_MS 1500
#define LEASE_TARGET_TTL_S 15
/* The target file holds "NODE TIME\n": far below this. */
#define LEASE_TARGET_MAX 256

struct lease;

/* Called on the loop when the lease was acquired: the caller brings the
 * group online. */
typedef void (*lease_acquired_fn)(void *arg);
/* Called on the loop before the node contends: 0 if the group's storage
 * is there and is the group's (src/cluster/storage.h), else -errno with
 * @why filled.  The node never contends, and never creates anything in the
 * state directory, while it fails. */
typedef int (*lease_ready_fn)(void *arg, char *why, size_t whylen);

/*
 * Start watching the lease of a group whose state directory is @statedir,
 * as node @me, with the group's preference list @prefs[0..@nprefs).  The
 * lease files are opened once @ready (may be NULL) first succeeds.
 * Returns 0 and *out (free with lease_free), or -errno.
 */
int lease_new(uv_loop_t *loop, const char *statedir, const char *group,
	      const char *me, const char *const *prefs, size_t nprefs,
	      lease_ready_fn ready, lease_acquired_fn on_acquired, void *arg,
	      struct lease **out);

/*
 * Give the group up (the caller has taken it offline).  With @target,
 * only that node may take it for LEASE_TARGET_TTL_S seconds.  With
 * @contend false this node does not try to take the group back (drain)
 * until lease_contend(l, true).
 */
void lease_release(struct lease *l, const char *target, bool contend);
void lease_contend(struct lease *l, bool contend);
bool lease_owned(const struct lease *l);
/* Does any node (this one included) hold the lease now? */
bool lease_held(const struct lease *l);
/* This node, the owner, listens on every VIP of the group (@bound true),
 * or is about to stop (false).  Ignored while not the owner. */
void lease_set_bound(struct lease *l, bool bound);
/* Does another node hold the lease and listen on the group's VIPs now? */
bool lease_bound_elsewhere(const struct lease *l);
/* Is node @node running and contending for the group (it holds its
 * node.<name> lock)?  A draining node, or one whose storage is absent,
 * is not. */
bool lease_node_up(const struct lease *l, const char *node);
/* Why this node cannot contend now (storage absent, ...), or "". */
const char *lease_why(const struct lease *l);

/* Stop watching; releases the lease if held.  @l is freed. */
void lease_free(struct lease *l);

#endif
