/*
 * sdnotify.h - tell systemd how the node is doing (Type=notify units).
 *
 * Only where NOTIFY_SOCKET is set (systemd started us); everywhere else
 * these do nothing and no thread is started.  Built on libsystemd's
 * sd_notify(3) when meson found it; without it the daemon says once, at
 * start, that it cannot notify.
 *
 * The event loop never waits for systemd: these calls queue a message and
 * one thread, "sgnfs-notify", started at the first of them, sends it
 * (sd_notify blocks once the receiver's queue is full).  A thread that
 * cannot be started is tried again at the next call (or watchdog tick);
 * meanwhile messages wait in the queue, never sent from the caller.
 * Messages leave in the order asked; a STATUS= replaces an unsent one
 * queued last; the queue is small and fixed, and when full the oldest
 * STATUS= is dropped first, else the oldest RELOADING=1 with the READY=1
 * right after it (sdnotify.c says what goes, counted by sdn_dropped).
 * The systemd watchdog (WATCHDOG_USEC) is fed from a timer on the event
 * loop that asks the thread for a WATCHDOG=1 (one pending at most), so a
 * stuck loop stops feeding it, as with our own watchdog.
 * Called from the loop's thread.
 */
#ifndef SGNFS_SDNOTIFY_H
#define SGNFS_SDNOTIFY_H

#include <stdbool.h>

#include <uv.h>

/* READY=1 with a STATUS= line and MAINPID=; once the node answers on its
 * socket. */
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
/* Stops the feeding timer (closes it on its loop); idempotent. */
void sdn_watchdog_stop(void);
/*
 * At exit, after the last notification (STOPPING=1): waits up to 2 s for
 * the thread to send what is queued, then joins it.  A thread still
 * waiting for the receiver then is left to the process's end, and one
 * line says how many messages were not sent; later calls do nothing.
 * When no thread could be started, nothing is joined: the queued messages
 * are given up, one line saying how many.  Does nothing when nothing was
 * queued and no thread was started.  A clean close lets a later
 * notification start a thread again (the unit tests).
 */
void sdn_close(void);
/* Messages dropped because the queue was full, since start. */
unsigned long sdn_dropped(void);
/* Whether notifications are sent at all: built with libsystemd and
 * NOTIFY_SOCKET set (systemd started us with Type=notify). */
bool sdn_enabled(void);
/* Whether sgnfsd was built with libsystemd (for the start-up log). */
int sdn_available(void);

#endif
