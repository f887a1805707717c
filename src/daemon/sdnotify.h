/*
 * sdnotify.h - tell systemd how the node is doing (Type=notify units).
 *
 * Only where NOTIFY_SOCKET is set (systemd started us); everywhere else
 * these do nothing.  Built on libsystemd's sd_notify(3) when meson found
 * it; without it the daemon says once, at start, that it cannot notify.
 * The systemd watchdog (WatchdogSec=) is fed from a timer on the event
 * loop, so a stuck loop stops feeding it, as with our own watchdog.
 */
#ifndef SGNFS_SDNOTIFY_H
#define SGNFS_SDNOTIFY_H

#include <uv.h>

/* READY=1 with a STATUS= line; once the node answers on its socket. */
void sdn_ready(const char *status);
/* STATUS= only. */
void sdn_status(const char *status);
/* RELOADING=1 (ready again with sdn_ready). */
void sdn_reloading(void);
/* STOPPING=1. */
void sdn_stopping(void);
/* If systemd asked for a watchdog (WATCHDOG_USEC), feed it from @loop;
 * 0 or -errno. */
int sdn_watchdog_start(uv_loop_t *loop);
void sdn_watchdog_stop(void);
/* Whether sgnfsd was built with libsystemd (for the start-up log). */
int sdn_available(void);

#endif
