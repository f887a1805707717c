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

struct nlm_group;
struct json_object;
struct grp_proto_ops;

extern const struct rpc_prog nlm_prog;

/*
 * How NLM plugs into every service group (group/gslot.h): its per-group
 * state (lock table, hosts, blocked locks, the journal and the
 * reservations it yields) is opened on the thread pool with the group,
 * joins the group's grace with its reservations, and is dropped when the
 * group goes offline.  The daemon registers it as GRP_PROTO_NLM.
 */
extern const struct grp_proto_ops nlm_group_ops;

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

/* Counts, and the lock part of a group's status. */
#include "nlm/nlm_status.h"

#endif
