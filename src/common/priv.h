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
 *   CAP_SYS_NICE          a pool thread gives back the nice value it took
 *                         for a backlogged group's job (rpc/rpc_int.h,
 *                         RPC_POOL_LOW_NICE); the seccomp filter allows
 *                         setpriority but no real-time scheduling call
 *   CAP_NET_ADMIN, CAP_NET_RAW  only when sgnfsd manages VIP addresses
 *                         itself (adding them, gratuitous ARP)
 * Everything else (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_KILL, ...) is gone
 * for good, also from the bounding set, so no exec can regain it.
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

/*
 * Whether the calling thread may take nice 0 back after raising its nice
 * value (CAP_SYS_NICE, or RLIMIT_NICE of 20 or more).
 */
bool priv_can_renice(void);

#endif
