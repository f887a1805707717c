/*
 * thprio.c - CPU priorities of sgnfsd's threads (see thprio.h).
 */
#include "thprio.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* struct sched_attr of sched_setattr(2), version 1 (glibc 2.36 has no
 * wrapper nor the type). */
struct thp_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;   /* SCHED_OTHER: the requested slice, ns */
	uint64_t sched_deadline;
	uint64_t sched_period;
	uint32_t sched_util_min;
	uint32_t sched_util_max;
};

/* The daemon's nice value as it started (thp_init): a thread created by
 * the real-time loop starts at nice 0 whatever it was (the kernel's reset
 * on fork), so nice values are counted from this. */
static int thp_base;

/* The calling thread's nice value (0 if it cannot be read). */
static int thp_nice(void)
{
	int cur;

	errno = 0;
	cur = getpriority(PRIO_PROCESS, (id_t)gettid());
	return cur == -1 && errno ? 0 : cur;
}

int thp_short_slice(void)
{
#ifdef SYS_sched_setattr
	struct thp_sched_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = SCHED_OTHER;
	/* The nice value is part of what sched_setattr sets: keep it. */
	a.sched_nice = thp_nice();
	a.sched_runtime = THP_SHORT_SLICE_NS;
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return -errno;
	return 0;
#else
	return -ENOSYS;
#endif
}

void thp_init(void)
{
	thp_base = thp_nice();
}

int thp_realtime(void)
{
	struct sched_param sp = { .sched_priority = THP_LOOP_RT_PRIO };

	/* pid 0: the calling thread only (Linux schedules threads).  Not
	 * SCHED_RESET_ON_FORK: the journal's io_uring workers, which the
	 * kernel makes from this thread, are to inherit it (thprio.h). */
	if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		return -errno;
	return 0;
}

/* The CPU the loop thread is pinned to, -1: none.  Written once by the
 * loop before it makes any thread (pthread_create orders it before every
 * reader). */
static int thp_loop_pinned = -1;
/* The CPUs the process could use before the pin, but the loop's: where
 * every other thread runs.  Written with thp_loop_pinned. */
static cpu_set_t thp_off_loop;

int thp_pin_loop(int cpu)
{
	cpu_set_t cs;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	if (sched_getaffinity(0, sizeof(cs), &cs) < 0)
		return -errno;
	if (!CPU_ISSET(cpu, &cs))
		return -EINVAL;
	if (CPU_COUNT(&cs) < 2)
		return 1;
	thp_off_loop = cs;
	CPU_CLR(cpu, &thp_off_loop);
	CPU_ZERO(&cs);
	CPU_SET(cpu, &cs);
	if (sched_setaffinity(0, sizeof(cs), &cs) < 0)
		return -errno;
	thp_loop_pinned = cpu;
	return 0;
}

int thp_loop_cpu(void)
{
	return thp_loop_pinned;
}

/* The calling thread, which inherited the loop's one CPU, runs on the
 * others instead. */
static void thp_leave_loop_cpu(void)
{
	if (thp_loop_pinned >= 0)
		(void)sched_setaffinity(0, sizeof(thp_off_loop), &thp_off_loop);
}

int thp_is_realtime(void)
{
	int pol = sched_getscheduler(0);

	if (pol < 0)
		return -errno;
	pol &= ~SCHED_RESET_ON_FORK;
	return pol == SCHED_FIFO || pol == SCHED_RR;
}

int thp_leave_loop(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	int rt;

	thp_leave_loop_cpu();
	rt = thp_is_realtime();
	if (rt <= 0)
		return rt;
	/* Leaving a real-time policy needs no capability. */
	if (sched_setscheduler(0, SCHED_OTHER, &sp) < 0)
		return -errno;
	return 0;
}

int thp_helper_enter(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	return thp_leave_loop();
}

int thp_nicer(int by)
{
	int cur = thp_nice();
	int want = thp_base + by > 19 ? 19 : thp_base + by;

	if (want <= cur)
		return 0;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), want) < 0)
		return -errno;
	return 0;
}

int thp_background(int fallback_nice)
{
	struct sched_param sp = { .sched_priority = 0 };
	int rc;

	if (sched_setscheduler(0, SCHED_IDLE, &sp) == 0)
		return 1;
	rc = thp_nicer(fallback_nice);
	return rc < 0 ? rc : 0;
}

int thp_spare_one_cpu(void)
{
	cpu_set_t cs;
	int first = -1;

	if (thp_loop_pinned >= 0)
		return 1;
	if (sched_getaffinity(0, sizeof(cs), &cs) < 0)
		return -errno;
	if (CPU_COUNT(&cs) < 2)
		return 1;
	for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
		if (CPU_ISSET(i, &cs))
			first = i;
	CPU_CLR(first, &cs);
	if (sched_setaffinity(0, sizeof(cs), &cs) < 0)
		return -errno;
	return 0;
}

/* Whether this thread's yield points yield (thp_yield_enable), and when
 * it last gave way, CLOCK_MONOTONIC ns (0 before its first point). */
static _Thread_local bool thp_yielding;
static _Thread_local uint64_t thp_yielded_ns;

void thp_yield_enable(void)
{
	thp_yielding = true;
}

bool thp_yield_enabled(void)
{
	return thp_yielding;
}

static uint64_t thp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void thp_yield_point(void)
{
	uint64_t now;

	if (!thp_yielding)
		return;
	now = thp_now_ns();
	if (thp_yielded_ns && now - thp_yielded_ns < THP_YIELD_NS)
		return;
	if (thp_yielded_ns) {
		(void)sched_yield();
		/* the others' time is not the caller's */
		now = thp_now_ns();
	}
	thp_yielded_ns = now;
}

int thp_reader(const char *name, int by)
{
	int rc;

	(void)thp_leave_loop();
	rc = thp_nicer(by);
	/* A woken thread takes this CPU at once, not after a protected
	 * slice; off the loop's spare core; giving way every 0.1 ms. */
	(void)thp_short_slice();
	(void)thp_spare_one_cpu();
	thp_yield_enable();
	/* Named last: a thread that shows the name (top -H, the tests that
	 * sample it) has its priority and CPUs already. */
	(void)pthread_setname_np(pthread_self(), name);
	return rc;
}
