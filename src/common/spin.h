/*
 * spin.h - an event loop's busy polling: the daemon's ([cluster]
 * poll_spin_us) and the load generators' (--poll-us of sgnfs-client
 * bench-lock and bench/nlm_null_bench, docs/client.md).
 *
 * On this kind of machine most of a depth-1 call's server time is not the
 * work but the loop thread going to sleep in epoll_wait and being woken
 * for the next call (the wake-up is tens of microseconds in a VM; half of
 * the GETATTR depth-1 profile).  With poll_spin_us = N the loop, after a
 * turn, polls without sleeping for up to N microseconds before it blocks,
 * so a client that sends its next call within that time finds the loop
 * awake.
 *
 * The spin is adaptive, so it costs nothing when it would not pay off: the
 * loop spins after a client's input (reads and datagrams of the node's RPC
 * service) woke it from a sleep of at most N, or a spin caught one, as long
 * as that input came from the same source (connection, UDP address) as the
 * input before it; a spin that runs out, or input from another source,
 * closes the window until the loop is again woken by one source's input
 * after so short a sleep.  So an idle node never spins, traffic sparser
 * than N never does, and the CPU spins waste is at most N per such
 * wake-up, and less after misses: each miss in a row doubles the windows
 * skipped before the next spin (1, 2, 4 .. SPIN_BACKOFF_MAX), a hit ends
 * that.  (A spin that cannot catch anything, as when the client waits for
 * the CPU the spinning loop holds on a busy machine, soon stops.)  One
 * source only, because with many the sleep is what batches:
 * while the loop wakes, more connections' calls arrive, and it reads them
 * all in one turn and answers them in one write each; a spinning loop
 * takes each connection's calls the moment they come, one at a time
 * (measured: pipelined NULL from 16 connections -31%, LOCK with the
 * journal off -41%, before this rule).
 *
 * The cost: the loop thread holds its CPU for up to N microseconds longer
 * after each burst, and with loop_priority = realtime (SCHED_FIFO) nothing
 * of normal priority runs on that CPU meanwhile.  Off (0) by default:
 * docs/configuration.md, poll_spin_us.
 *
 * Loop thread only.
 */
#ifndef SGNFS_SPIN_H
#define SGNFS_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define SPIN_MAX_US 1000        /* poll_spin_us's upper bound */
#define SPIN_BACKOFF_MAX 64     /* misses in a row skip at most this many windows */

/* The input counter the spin watches: anything that moves when a client
 * sent something; *@switches, what moves when input came from another
 * source than the input before it (rpc_svc_input_count). */
typedef uint64_t (*spin_input_fn)(void *arg, uint64_t *switches);

struct spin {
	uint64_t max_ns;        /* poll_spin_us; 0: never spin */
	uint64_t window_ns;     /* the next spin's length: max_ns or 0 */
	uint64_t seen, seen_switches; /* the input counts at the last look */
	unsigned backoff;       /* after misses in a row: windows to skip, 1..SPIN_BACKOFF_MAX */
	unsigned skip;          /* ... still to skip */
	uint64_t hits;          /* spins that saw input before they ran out */
	uint64_t misses;        /* spins that ran out */
	spin_input_fn input;    /* borrowed */
	void *arg;
	bool stop;              /* spin_stop: spin_run returns after this turn */
};

void spin_init(struct spin *s, unsigned max_us, spin_input_fn input, void *arg);

/* Change poll_spin_us (reload); takes effect at the next spin. */
void spin_set_max(struct spin *s, unsigned max_us);

/* Run @loop until it has no active handle left, as uv_run(UV_RUN_DEFAULT)
 * does, spinning between turns as above, or until spin_stop. */
void spin_run(struct spin *s, uv_loop_t *loop);

/* From a callback of the loop spin_run runs: return once this turn ends,
 * as uv_stop does for uv_run (which a turn that does not wait ignores:
 * its loop is still alive). */
void spin_stop(struct spin *s);

/* The next spin's length after the loop slept @idle_ns before a client's
 * input woke it: max_ns if a spin would have caught that input, else 0. */
uint64_t spin_window_after(const struct spin *s, uint64_t idle_ns);

#endif
