/*
 * thprio.h - how a thread of sgnfsd asks the scheduler for its place
 * (docs/architecture.md, "CPU priorities").
 *
 * Three kinds of thread share a node's cores:
 *   - the event loop: every request of every group passes through it in
 *     short bursts, so a request waits for the loop whenever the loop waits
 *     for a CPU;
 *   - the pool: requests that block (file I/O, state writes);
 *   - background work: a backlogged group's jobs while another group is
 *     active (rpc_svc.c), a group's open (group.c).
 * The kernel's fair scheduler (EEVDF since Linux 6.6) lets a running
 * thread finish a protected slice (0.7-3 ms) before a woken one of the
 * same weight takes its CPU, unless the woken one asked for a shorter
 * slice; a lower weight (nice) shortens nothing of that.  Measured on two
 * cores under one group's flood, that slice was the other groups' p99.
 * So the loop asks for the shortest slice (it preempts on wake), and a
 * backlogged group's jobs run SCHED_IDLE (a woken normal thread always
 * preempts them), or nice +10 where the kernel refuses that.
 * Preempting is not immediate either: a kernel built without full
 * preemption (Debian's default is "none") lets the running thread finish
 * its system call first, and a woken thread not yet eligible waits for the
 * next tick.  So a group's open keeps its system calls short (the journal
 * is read 64 KiB at a time: sfile.h), gives way at yield points
 * (thp_yield_point), and stays off one CPU: the loop always has a core it
 * does not hold, and a lone thread loses nothing by it while another core
 * is free.  That core is the loop's only when the loop is pinned to it
 * (loop_cpu, thp_pin_loop); unpinned, a woken loop waits where it last ran.
 * A backlogged group's jobs are not
 * narrowed so: measured, that cost the flooding group a third of its
 * answers and gave the other group nothing, as the loop is not pinned
 * (the kernel wakes it where it last ran).
 * None of that needs a privilege: a thread may shorten its slice, lower its
 * own weight, take SCHED_IDLE and narrow its CPUs; it could not go back
 * (CAP_SYS_NICE is dropped).
 *
 * A short slice still leaves the loop in the fair scheduler: once it has
 * run more than its share it is not eligible again until the others have
 * caught up, and on a node whose cores also run other processes (the
 * clients of a test or a bench, a backup, a build) it waited 110-220 ms
 * per second for a CPU (bench/fairness.py, /proc/PID/schedstat), every
 * group's requests with it.  With loop_priority = realtime the loop runs
 * SCHED_FIFO at the lowest real-time level instead (the one privileged
 * step, taken before the capabilities are dropped), as corosync and ctdbd
 * run theirs: it waits then only for a system call in progress on its CPU
 * (Debian's kernel does not preempt those) and for real-time threads.  It
 * is not the default: measured, another group's LOCK did worse with it
 * while a group with a large journal opened on the node
 * (docs/architecture.md).  A loop that never slept would not take a CPU
 * from the node for good: the kernel leaves normal threads 5% of each CPU
 * (sched_rt_runtime_us), the loop is one thread, and the watchdog ends a
 * loop stuck in its work.
 */
#ifndef SGNFS_THPRIO_H
#define SGNFS_THPRIO_H

#include <stdbool.h>

/* The slice the loop asks for: the kernel's minimum (0.1 ms). */
#define THP_SHORT_SLICE_NS 100000u

/* The loop's real-time priority: the lowest SCHED_FIFO level, under every
 * kernel thread and cluster manager that asks for one (corosync runs at
 * SCHED_RR 99), above every normal thread. */
#define THP_LOOP_RT_PRIO 1

/* Notes the daemon's nice value, before anything changes it: thp_nicer
 * counts from it.  Called once at start. */
void thp_init(void);

/*
 * The calling thread runs SCHED_FIFO at THP_LOOP_RT_PRIO.  The threads it
 * creates inherit that (no SCHED_RESET_ON_FORK), because the ones the
 * kernel creates for it must: the journal's io_uring workers, which write
 * and fdatasync each batch behind a LOCK's grant.  Left at normal
 * priority (as a reset gave them), they waited for a CPU behind the
 * flooding group's work, and another group's LOCK p99 on the wire was
 * 2.2-3.3x its baseline under the flood (1.3 ms); real-time, 0.8-1.3x.
 * Every thread sgnfsd creates itself leaves the policy first thing
 * (thp_leave_loop); libuv's pool is made before the loop takes it
 * (sgnfsd's main); sgnfsd starts no process (its seccomp filter forbids
 * fork and exec).  Needs CAP_SYS_NICE (or RLIMIT_RTPRIO); sgnfsd calls it
 * before dropping its capabilities.  0 or -errno.
 */
int thp_realtime(void);

/*
 * The calling thread (the loop, before it makes any thread) runs on @cpu
 * only (loop_cpu), and every thread sgnfsd makes from then on stays off
 * it (thp_leave_loop).  Why: this kernel does not preempt a system call,
 * so a real-time loop woken on the CPU where a group's open is inside a
 * 64 KiB read, an unmapping or a page population waits for that call to
 * end, even with the other CPU idle (the scheduler leaves a woken
 * real-time thread where it last ran when what runs there is a normal
 * thread); measured, nearly all of another group's slow LOCK answers
 * during an open were such waits (bench/RESULTS.md).  Sparing one CPU in
 * the open (thp_spare_one_cpu) does not keep the loop off the open's CPU;
 * pinning both does.  The kernel's io_uring workers are not narrowed:
 * pinned with the loop, a loop that never sleeps (a flood) would starve
 * them at the same real-time priority, and every group's grants with
 * them.  0; 1 when the process may run on one CPU only (nothing to
 * separate; nothing changed); -EINVAL when @cpu is not one it may run on;
 * -errno.
 */
int thp_pin_loop(int cpu);

/* 1 when the calling thread runs a real-time policy (SCHED_FIFO or
 * SCHED_RR), 0 when it does not, -errno. */
int thp_is_realtime(void);

/* The CPU the loop is pinned to (thp_pin_loop), -1 when it is not. */
int thp_loop_cpu(void);

/* The calling thread, made by the loop or from it, leaves what it
 * inherited of the loop: a real-time policy (SCHED_OTHER at the nice value
 * it has) and the loop's CPU when the loop is pinned (thp_pin_loop).
 * 0, or -errno (the policy; the CPUs are best effort). */
int thp_leave_loop(void);

/* First thing in a long-lived thread of our own that only serves the loop
 * (the log writer, the systemd notifier): every signal blocked (signals
 * are the loop's to handle), then thp_leave_loop.  0, or -errno as that. */
int thp_helper_enter(void);

/* The calling thread asks for THP_SHORT_SLICE_NS, keeping its nice value.
 * 0, or -errno (-EINVAL or -ENOSYS on a kernel without custom slices,
 * before 6.12: it then preempts as any thread). */
int thp_short_slice(void);

/* The calling thread may run on every CPU it may run on now but one (the
 * lowest numbered), when it may run on two or more, so the loop always has
 * a core the caller does not hold; nothing when the loop is pinned (the
 * caller left the loop's CPU in thp_leave_loop).  0, 1 when nothing
 * changed, or -errno. */
int thp_spare_one_cpu(void);

/* The calling thread at nice (the daemon's nice at thp_init + @by), at
 * most 19; a thread already nicer is left as it is.  0 or -errno. */
int thp_nicer(int by);

/*
 * A point where long background work (a group's open: the journal's
 * replay, the client list's files) lets a thread that woke on its CPU run
 * now.  The fair scheduler preempts at a wake-up only a thread whose turn
 * is over; a woken thread that is not yet eligible (it ran more than its
 * share lately, as the journal's io_uring worker behind every LOCK does)
 * otherwise waits for the next tick, 4 ms at HZ=250, however low the
 * running thread's weight: measured, that worker waited 3.5-5.7 ms for the
 * open's CPU, and another group's LOCK with it.  Every THP_YIELD_NS of the
 * caller's time, sched_yield(2): the scheduler picks again with the
 * running thread's turn spent, and returns at once when nothing else is
 * runnable on this CPU (1.3 us here).  The first call on a thread only
 * starts the clock.  Only on a thread that asked for it
 * (thp_yield_enable): code that also runs on the event loop (the
 * notifications' preparation, a state file's read) may have yield points,
 * and they do nothing there.
 */
#define THP_YIELD_NS 100000u
void thp_yield_point(void);

/* The calling thread's yield points yield from now on (a group's open). */
void thp_yield_enable(void);

/* Do the calling thread's yield points yield? */
bool thp_yield_enabled(void);

/* The calling thread becomes background work: SCHED_IDLE, or, where that
 * is refused, nice +@fallback_nice.  Returns 1 for SCHED_IDLE, 0 for the
 * nicer fallback, -errno when neither could be set. */
int thp_background(int fallback_nice);

/*
 * The calling thread becomes a reader of state whose size clients made (a
 * group's open, a journal's fold): named @name (top -H, tests), nice +@by,
 * the short slice, off one CPU, yield points on; everything above says
 * why.  Returns thp_nicer's result (the rest is best effort).
 */
int thp_reader(const char *name, int by);

#endif
