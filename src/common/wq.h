/*
 * wq.h - the threads that do a loop's state I/O (client list writes,
 * journal folds and fallback writes, a group's open, the status), and the
 * way a finished job gets back to its loop without the loop ever waiting
 * for the thread that finished it.
 *
 * libuv 1.44's pool tells the loop a job is done with uv_async_send, which
 * marks its async handle busy, writes the loop's eventfd and only then
 * marks it done; the loop, woken by that write, spins and sched_yields
 * until the mark is done.  sgnfsd's loop runs SCHED_FIFO (common/thprio.h):
 * woken on the CPU of the sending thread it preempts it inside that window,
 * and its sched_yield gives the CPU to no normal thread, so it spins until
 * the sender is moved to the other CPU or the kernel's real-time throttle
 * stops the loop.  Measured with uprobes on libuv (bench/RESULTS.md, "The
 * loop waiting for libuv's pool"): in one run of the lock benchmarks beside
 * the test suite, 156 pool completions held sgnfsd's loop, and every group
 * with it, 2.6 s in all, p90 27 ms, the worst 0.97 s.  rpc/rpc_pool.h
 * solved it for the RPC handlers; this is the same for the rest.
 *
 * A finished job is appended to its loop's list under a mutex, the mutex is
 * released, and only then the loop is woken through an eventfd of its own
 * that a uv_poll_t watches: the loop finds the job whole and never waits.
 *
 * A loop gets that channel with wq_attach (sgnfsd does, at start); work
 * queued for a loop without one goes to libuv's pool as before (the unit
 * tests' loops), so a module calls wq_queue whatever loop it runs on.
 * Threads: WQ_THREADS, process-wide, started at the first job, at normal
 * priority (they leave the real-time policy and CPU of the loop that
 * starts them, common/thprio.h).
 */
#ifndef SGNFS_WQ_H
#define SGNFS_WQ_H

#include <uv.h>

#define WQ_THREADS 4

/*
 * A channel back to a loop: an eventfd of its own, a uv_poll_t on it and
 * the list of finished jobs under a mutex.  A thread appends under the
 * mutex, releases it, and only then writes the eventfd; the loop reads the
 * eventfd, takes the whole list under the mutex and runs each entry's fn
 * outside it.  Used by the state I/O threads here and by the RPC pool
 * (rpc/rpc_pool.h).
 */
struct wq_chan;

/* One finished job on its way back (embedded in the job). */
struct wq_done {
	struct wq_done *next;                     /* the channel's */
	void (*fn)(struct wq_done *d);            /* on the channel's loop */
};

/* Open a channel on @loop (its thread): 0 or -errno.  Idle, it does not
 * keep the loop running. */
int wq_chan_open(uv_loop_t *loop, struct wq_chan **out);
/* On the loop thread, once no job of it is out; the memory goes when the
 * loop has run the close.  NULL: nothing. */
void wq_chan_close(struct wq_chan *ch);
/* On the loop thread: a job whose @d will be posted is out (the loop is
 * kept running until it is back). */
void wq_chan_hold(struct wq_chan *ch);
/* On any thread: have @d->fn run on @ch's loop.  The loop may preempt the
 * caller at the end of this call and needs nothing more from it. */
void wq_chan_post(struct wq_chan *ch, struct wq_done *d);

/* One job: the caller's memory, untouched by wq between wq_queue and
 * @done (except the private fields). */
struct wq_work {
	void *data;                               /* the caller's */
	/* private */
	void (*work)(struct wq_work *w);
	void (*done)(struct wq_work *w, int status);
	struct wq_chan *chan;                     /* NULL: on libuv's pool */
	struct wq_work *next;                     /* in the threads' queue */
	struct wq_done wd;
	uv_work_t uv;
};

/*
 * Run @work on a state thread, then @done on @loop's thread (status 0;
 * on libuv's pool, libuv's status).  0 or a negative errno (nothing
 * queued, @done never called).  Loop thread only.
 */
int wq_queue(uv_loop_t *loop, struct wq_work *w, void (*work)(struct wq_work *w),
	     void (*done)(struct wq_work *w, int status));

/* Bring @loop's finished jobs back through a channel of its own from now
 * on: 0 or -errno (then its jobs keep going to libuv's pool). */
int wq_attach(uv_loop_t *loop);
/* Before @loop is closed, with none of its jobs out: the channel's handle
 * is closed (run the loop once more for its memory to go). */
void wq_detach(uv_loop_t *loop);

/* Tests only: called on the state thread right after it woke the loop for
 * @w (the moment the woken loop preempts it on a shared CPU).  NULL in
 * sgnfsd. */
extern void (*wq_test_woke)(struct wq_work *w);

#endif
