/*
 * test_thprio.c - thp_yield_point (src/common/thprio.h): nothing on a
 * thread that did not enable it; the first call on a thread only starts
 * its clock; once THP_YIELD_NS of the thread's time
 * has passed, the next call yields (sched_yield is wrapped here:
 * meson.build), and the clock starts again from after the yield.
 */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yield_point),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
