/*
 * watchdog.h - self-fencing.  A node whose event loop stops turning still
 * holds its groups' leases, and its clients wait forever.  The watchdog
 * thread sees the loop's heartbeat stop and ends the process, so the kernel
 * drops its leases and another node takes the groups over.
 */
#ifndef SGNFS_WATCHDOG_H
#define SGNFS_WATCHDOG_H

#include <stdint.h>
#include <uv.h>

/* Start beating on @loop and watching from a thread: if the loop does not
 * beat for @timeout_ms, the process exits with status 70.  0 or -errno. */
int wd_start(uv_loop_t *loop, uint32_t timeout_ms);
/* Stop (clean shutdown). */
void wd_stop(void);

#endif
