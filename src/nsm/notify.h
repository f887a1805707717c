/*
 * notify.h - telling a group's clients that the group restarted, and the
 * group's own NSM state number.
 *
 * When a group comes online its clients must reclaim their locks.  For
 * every client on the group's list, for every VIP of the group, one
 * SM_NOTIFY is sent to the client's statd (port from the client's own
 * portmapper), *from* that VIP, with mon_name = the VIP (the server name
 * the client monitors) and state = the group's state number.  Sending is
 * asynchronous and bounded: each notification is retried with back-off
 * until it is answered or the time is up; nothing waits for it.
 */
#ifndef SGNFS_NOTIFY_H
#define SGNFS_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct clist;
struct nsm_notifier;

/*
 * Read, increase and durably store the group's state number in
 * <statedir>/state before the group serves: the next odd number (odd =
 * up).  Strictly increasing across nodes because the file lives on the
 * group's storage and only the lease holder writes it.  0 and *out, or
 * -errno (the group must not come online without it).
 */
int nsm_state_up(const char *statedir, int32_t *out);
/* Clean shutdown: the next even number (down). */
int nsm_state_down(const char *statedir);

typedef void (*nsm_notify_done_fn)(void *arg, unsigned notified, unsigned failed);

/*
 * Notify every client of @cl as above; @total_ms bounds the retrying of
 * each notification.  @done (may be NULL) runs once all are answered or
 * given up.  0 and *out (stop early with nsm_notify_cancel, which must be
 * called before @cl is closed), or -errno.
 */
int nsm_notify_start(uv_loop_t *loop, const char *group, const struct clist *cl,
		     const struct sockaddr_storage *vips, size_t nvips, int32_t state,
		     uint32_t total_ms, nsm_notify_done_fn done, void *arg,
		     struct nsm_notifier **out);
/*
 * nsm_notify_start in two steps, so that a long list costs the event loop
 * nothing: nsm_notify_prepare, on any thread and with no loop, copies what
 * is to be sent from @cl (one job per address and VIP: for 100,000 clients
 * a tenth of a second of allocation, which on the loop stalled every other
 * group); nsm_notify_run, on the loop, starts sending.  A prepared notifier
 * that will not run is freed with nsm_notify_cancel (any thread).
 */
int nsm_notify_prepare(const char *group, const struct clist *cl,
		       const struct sockaddr_storage *vips, size_t nvips, int32_t state,
		       uint32_t total_ms, struct nsm_notifier **out);
void nsm_notify_run(struct nsm_notifier *n, uv_loop_t *loop, nsm_notify_done_fn done, void *arg);
/* Notifications it holds: one per client address and VIP of a family. */
unsigned nsm_notify_total(const struct nsm_notifier *n);
/*
 * Notifications started so far, in the order the list was prepared.  At
 * most NSM_NOTIFY_BURST start in one turn of the loop (nsm_notify_run
 * starts the first ones; the rest follow a tick of 1 ms apart, or as
 * running ones end), so that a long list never takes the loop a long
 * turn while other groups wait on it.
 */
unsigned nsm_notify_started(const struct nsm_notifier *n);
#define NSM_NOTIFY_BURST 8
/* Answered and given up so far. */
void nsm_notify_progress(const struct nsm_notifier *n, unsigned *notified, unsigned *failed);
/*
 * Tests only (0 = the default): attempts in flight at once per notifier
 * (NSM_NOTIFY_PARALLEL), and the port the clients' portmappers are asked
 * at (111).  Read when a notifier is prepared.
 */
extern unsigned nsm_notify_test_parallel;
extern uint16_t nsm_notify_test_pmap_port;
/* Stop all notifications (the group goes offline); @done is not called. */
void nsm_notify_cancel(struct nsm_notifier *n);

#endif
