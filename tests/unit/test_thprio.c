/*
 * test_thprio.c - thp_yield_point (src/common/thprio.h): nothing on a
 * thread that did not enable it; the first call on a thread only starts
 * its clock; once THP_YIELD_NS of the thread's time
 * has passed, the next call yields (sched_yield is wrapped here:
 * meson.build), and the clock starts again from after the yield.
 * thp_pin_loop / thp_leave_loop: the pinned thread runs on its CPU alone, a
 * thread it makes leaves that CPU for all the others, thp_spare_one_cpu
 * then narrows nothing more; a CPU out of range or not the process's is
 * refused, and a second pin on one CPU changes nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sched.h>
#include <time.h>
#include <cmocka.h>

#include "thprio.h"

int __real_sched_yield(void);
int __wrap_sched_yield(void);
static unsigned yields;

int __wrap_sched_yield(void)
{
	yields++;
	return __real_sched_yield();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Work for more than a yield interval: the clock is read, not asserted. */
static void spin_past_interval(void)
{
	uint64_t until = now_ns() + 2 * (uint64_t)THP_YIELD_NS;

	while (now_ns() < until)
		;
}

static void test_yield_point(void **st)
{
	(void)st;
	yields = 0;
	/* not enabled on this thread (the event loop's case): never */
	thp_yield_point();
	spin_past_interval();
	thp_yield_point();
	assert_int_equal(yields, 0);
	thp_yield_enable();
	thp_yield_point();		/* the thread's first: no yield */
	assert_int_equal(yields, 0);
	spin_past_interval();
	thp_yield_point();
	assert_int_equal(yields, 1);
	spin_past_interval();
	thp_yield_point();
	assert_int_equal(yields, 2);
}

/* What a thread made by the pinned loop sees after leaving it. */
struct left {
	cpu_set_t before, after, spared;
	int rc, spare_rc;
};

static void *leave_thread(void *arg)
{
	struct left *l = arg;

	sched_getaffinity(0, sizeof(l->before), &l->before);
	l->rc = thp_leave_loop();
	sched_getaffinity(0, sizeof(l->after), &l->after);
	l->spare_rc = thp_spare_one_cpu();
	sched_getaffinity(0, sizeof(l->spared), &l->spared);
	return NULL;
}

static void test_pin_loop(void **st)
{
	cpu_set_t all, cs;
	struct left l;
	pthread_t t;
	int cpu = -1, other = -1;

	(void)st;
	assert_int_equal(thp_loop_cpu(), -1);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	if (CPU_COUNT(&all) < 2)
		skip();        /* nothing to separate on one CPU */
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &all)) {
			other = cpu < 0 ? i : other;
			cpu = i;
		}
	assert_int_equal(thp_pin_loop(CPU_SETSIZE), -EINVAL);
	assert_int_equal(thp_pin_loop(-1), -EINVAL);
	assert_int_equal(thp_loop_cpu(), -1);
	assert_int_equal(thp_pin_loop(cpu), 0);
	assert_int_equal(thp_loop_cpu(), cpu);
	assert_int_equal(sched_getaffinity(0, sizeof(cs), &cs), 0);
	assert_int_equal(CPU_COUNT(&cs), 1);
	assert_true(CPU_ISSET(cpu, &cs));
	/* a thread it makes starts on its CPU and leaves it for the rest */
	assert_int_equal(pthread_create(&t, NULL, leave_thread, &l), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(CPU_COUNT(&l.before), 1);
	assert_int_equal(l.rc, 0);
	assert_false(CPU_ISSET(cpu, &l.after));
	assert_int_equal(CPU_COUNT(&l.after), CPU_COUNT(&all) - 1);
	assert_true(CPU_ISSET(other, &l.after));
	/* sparing one CPU more would take the open's last one on two cores */
	assert_int_equal(l.spare_rc, 1);
	assert_true(CPU_EQUAL(&l.after, &l.spared));
	/* now this thread may use one CPU: another is not its, the same one
	 * changes nothing */
	assert_int_equal(thp_pin_loop(other), -EINVAL);
	assert_int_equal(thp_pin_loop(cpu), 1);
	assert_int_equal(thp_loop_cpu(), cpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yield_point),
		cmocka_unit_test(test_pin_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
