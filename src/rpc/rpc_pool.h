/*
 * rpc_pool.h - the threads that run blocking RPC handlers, and the way a
 * finished job gets back to its event loop.
 *
 * Not libuv's pool (uv_queue_work): libuv 1.44 tells the loop that a job
 * is done with uv_async_send, which marks its async handle busy, writes
 * the loop's eventfd and only then marks it done; the loop, woken by that
 * write, spins (sched_yield) until the mark is done.  The loop asks for a
 * short time slice (common/thprio.h), so when it shares a CPU with the
 * sending thread its wake-up preempts that thread inside the write, and
 * the loop then yields until the thread runs again, behind every other
 * runnable thread of the machine.  Measured under one group's UDP flood
 * (bench/RESULTS.md): 800 such waits in 14 s, median 0.7 ms, p99 2.6 ms,
 * during which no request of any group was read.
 *
 * Here a finished job goes back through a channel of the loop's own
 * (common/wq.h, wq_chan: appended to a list under a mutex, the mutex
 * released, and only then the loop woken through an eventfd of the
 * channel's own that a uv_poll_t watches).  Whatever happens
 * to the thread after that write, the loop finds the job whole and never
 * waits for the thread.  Every completion writes (no coalescing): a thread
 * held up between its append and its write must not delay the next job's
 * completion either.
 *
 * The threads are process-wide (like libuv's) and live as long as the
 * process: RPC_POOL_JOBS (rpc_int.h) of them for normal jobs
 * ("sgnfs-pool"), and as
 * many for low jobs ("sgnfs-low", SCHED_IDLE or nice RPC_POOL_LOW_NICE,
 * taken once at their start: rpc_int.h says why), started by the
 * first rpcp_submit, from the loop thread, so they inherit its resting
 * state (root file-system identity, capabilities, CPUs, slice).
 */
#ifndef SGNFS_RPC_POOL_H
#define SGNFS_RPC_POOL_H

#include <stdbool.h>
#include <uv.h>

#include "wq.h"

/* One job; the caller's memory (embedded in its request), untouched by
 * the pool between rpcp_submit and @done. */
struct rpcp_job {
	void (*work)(struct rpcp_job *j);   /* on a pool thread */
	void (*done)(struct rpcp_job *j);   /* then on the channel's loop */
	bool low;                           /* run it on a low thread (if any) */
	bool lowered;                       /* set: a low thread ran it */
	struct wq_chan *chan;               /* the pool's */
	struct rpcp_job *next;              /* the pool's */
	struct wq_done wd;                  /* the pool's */
};

/* On the loop thread: run @j->work on a pool thread, then @j->done on
 * @ch's loop (a channel of wq.h, opened on it with wq_chan_open and closed
 * with wq_chan_close once no job of it is out).  A low job runs on a normal thread where no low thread
 * could be started. */
void rpcp_submit(struct wq_chan *ch, struct rpcp_job *j);

/* Tests only: called on the pool thread right after it woke the loop for
 * @j (the moment the woken loop preempts it on a shared CPU).  NULL in
 * sgnfsd. */
extern void (*rpcp_test_woke)(struct rpcp_job *j);

#endif
