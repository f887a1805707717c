/*
 * priv.h - least privilege for sgnfsd (docs/security.md).
 *
 * sgnfsd starts as root.  Before it creates any thread (capabilities are
 * per thread, so a pool thread started earlier would keep everything) it
 * keeps only what serving NFS needs, in the effective, permitted and
 * bounding sets, and sets NoNewPrivs:
 *   CAP_NET_BIND_SERVICE  VIP sockets on ports below 1024 (PORTMAP 111,
 *                         NSM 662), bound at every takeover, and reserved
 *                         source ports for callbacks
 *   CAP_DAC_READ_SEARCH   open_by_handle_at(2): every file handle
 *   CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN, CAP_FSETID, CAP_MKNOD
 *                         what a root client (squash = none) may do; the
 *                         kernel drops them from the effective set while a
 *                         thread's fsuid is not 0 (setfsuid(2))
 *   CAP_SETUID, CAP_SETGID  setfsuid/setfsgid/setgroups per request
 *   CAP_SYS_RESOURCE      the daemon's own state writes may use ext4's
 *                         root-reserved blocks; dropped per request for a
 *                         client identity that is not root, as knfsd does
 *   CAP_NET_ADMIN, CAP_NET_RAW  only when sgnfsd manages VIP addresses
 *                         itself (adding them, gratuitous ARP)
 * Everything else (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_KILL, ...) is gone
 * for good, also from the bounding set, so no exec can regain it.
 * CAP_SYS_NICE too, after its one use: the loop thread's real-time
 * priority, taken before priv_drop (daemon/main.c, common/thprio.h).  The
 * threads that run a backlogged group's jobs at a lower priority take
 * SCHED_IDLE once and never leave it (rpc/rpc_svc.c, the low-priority
 * threads), which needs no privilege.
 */
#ifndef SGNFS_PRIV_H
#define SGNFS_PRIV_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Reduce the calling (only) thread's capabilities to the set above and set
 * NoNewPrivs.  Call before any other thread exists.  Does nothing and
 * returns 0 when not running as root (tests, unprivileged runs).  Returns
 * 0 or -errno, with the reason in @why.
 */
int priv_drop(bool manage_vips, char *why, size_t whysz);

/*
 * Per request, on the calling thread: @on false drops CAP_SYS_RESOURCE
 * from the effective set (a client identity that is not root: no
 * root-reserved blocks, no quota override), true raises it again if it is
 * permitted.  Cheap (two syscalls); 0 or -errno.
 */
int priv_resource(bool on);

#endif
