/*
 * nsm_svc.h - NSM v1 (program 100024) on every VIP of every group.
 *
 * SM_NOTIFY from a rebooted client frees that client's locks, shares and
 * queued requests in the group whose VIP it was sent to, and only there;
 * it is honoured only from an address the group's client list records for
 * that client (docs/nsm.md).  SM_STAT answers with the group's state
 * number.  SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH are refused
 * unless they come from loopback; sgnfs monitors nobody (clients learn of
 * a group's restart from the group itself), so from loopback they succeed
 * without effect.
 */
#ifndef SGNFS_NSM_SVC_H
#define SGNFS_NSM_SVC_H

#include "rpc/rpc.h"

extern const struct rpc_prog nsm_prog;

#endif
