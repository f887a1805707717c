/*
 * test_spin.c - the event loop's busy polling (src/common/spin.c), on a
 * real libuv loop fed by a thread through a pipe, each byte sent once the
 * loop has read the one before (as a client at depth 1 does):
 *
 *   - poll_spin_us = 0: the loop never spins (no hit, no miss), and
 *     spin_run returns once the pipe closes;
 *   - a window far longer than any send takes here: the bytes after the
 *     first are caught by spins (hits), and once the thread stops sending
 *     the last spin runs out (a miss), which closes the window: a turn
 *     the loop is woken for without input finds it closed, and the close
 *     that follows ends the run;
 *   - after that miss, one window is skipped (the back-off): of three
 *     more bytes, the first is not followed by a spin, the second opens
 *     the window and the third is caught;
 *   - the same, each byte sent on the other of two pipes than the one
 *     before (two sources, as two clients): no spin at all;
 *   - a window of 10 s and the pipe closed while the loop spins: spin_run
 *     returns with the loop (no miss: it did not spin the window out);
 *   - spin_window_after: open after a sleep no longer than the bound,
 *     closed after a longer one and when off; poll_spin_us is capped.
 * No test measures time: the only waits are for what the loop did (with
 * a hang guard that can only fail a test).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "spin.h"

struct feed {
	uv_loop_t loop;
	uv_pipe_t rd[2];
	int wfd[2];
	uint64_t input;          /* bytes read: the spin's input counter */
	uint64_t switches;       /* ... read from the other pipe than the last */
	uv_pipe_t *last;
	sem_t processed;         /* one post per byte read */
	struct spin spin;
	unsigned nbytes;         /* the thread sends this many ... */
	bool alternate;          /* ... on the two pipes in turn (else the first) */
	bool wait_miss;          /* ... then waits for a miss, then wakes the
				  * loop with no input (wake) */
	uv_async_t wake;
	sem_t woken;
	uint64_t window_at_wake; /* the spin window the wake found */
	uint64_t hits_at_miss;
	unsigned after_miss;     /* bytes the thread sends after the miss, then
				  * it waits for a second miss */
	uint64_t hits_at_end, misses_at_end;
};

static uint64_t feed_input(void *arg, uint64_t *switches)
{
	struct feed *f = arg;

	*switches = f->switches;
	return f->input;
}

static void feed_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	static char b[64];

	(void)h;
	(void)sz;
	*buf = uv_buf_init(b, sizeof(b));
}

static void feed_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct feed *f = s->data;

	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)s, NULL);
		return;
	}
	if (f->last != (uv_pipe_t *)s) {
		f->last = (uv_pipe_t *)s;
		f->switches++;
	}
	for (ssize_t i = 0; i < n; i++) {
		f->input++;
		sem_post(&f->processed);
	}
}

/* A turn with no client input: what window does it find? */
static void feed_woken(uv_async_t *a)
{
	struct feed *f = a->data;

	f->window_at_wake = f->spin.window_ns;
	uv_close((uv_handle_t *)a, NULL);
	sem_post(&f->woken);
}

static void *feeder(void *arg)
{
	struct feed *f = arg;

	for (unsigned i = 0; i < f->nbytes; i++) {
		assert_int_equal(write(f->wfd[f->alternate ? i % 2 : 0], "x", 1), 1);
		while (sem_wait(&f->processed) < 0 && errno == EINTR)
			;
	}
	if (f->wait_miss) {
		/* Hang guard only (30 s): without a miss the test fails below. */
		for (int i = 0; i < 30000 &&
				__atomic_load_n(&f->spin.misses, __ATOMIC_RELAXED) == 0; i++)
			usleep(1000);
		f->hits_at_miss = __atomic_load_n(&f->spin.hits, __ATOMIC_RELAXED);
		assert_int_equal(uv_async_send(&f->wake), 0);
		while (sem_wait(&f->woken) < 0 && errno == EINTR)
			;
		for (unsigned i = 0; i < f->after_miss; i++) {
			assert_int_equal(write(f->wfd[0], "x", 1), 1);
			while (sem_wait(&f->processed) < 0 && errno == EINTR)
				;
		}
		for (int i = 0; i < 30000 && f->after_miss &&
				__atomic_load_n(&f->spin.misses, __ATOMIC_RELAXED) < 2; i++)
			usleep(1000);
		f->hits_at_end = __atomic_load_n(&f->spin.hits, __ATOMIC_RELAXED);
		f->misses_at_end = __atomic_load_n(&f->spin.misses, __ATOMIC_RELAXED);
	}
	close(f->wfd[0]);
	close(f->wfd[1]);
	return NULL;
}

/* Run the loop with @max_ns of spin (set directly: the test's windows
 * exceed poll_spin_us's cap) while the thread feeds it. */
static void feed_run(struct feed *f, uint64_t max_ns)
{
	int fds[2];
	pthread_t t;

	assert_int_equal(uv_loop_init(&f->loop), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(fds), 0);
		assert_int_equal(uv_pipe_init(&f->loop, &f->rd[i], 0), 0);
		assert_int_equal(uv_pipe_open(&f->rd[i], fds[0]), 0);
		f->rd[i].data = f;
		f->wfd[i] = fds[1];
		assert_int_equal(uv_read_start((uv_stream_t *)&f->rd[i], feed_alloc, feed_read), 0);
	}
	assert_int_equal(sem_init(&f->processed, 0, 0), 0);
	assert_int_equal(sem_init(&f->woken, 0, 0), 0);
	if (f->wait_miss) {
		assert_int_equal(uv_async_init(&f->loop, &f->wake, feed_woken), 0);
		f->wake.data = f;
	}
	spin_init(&f->spin, 0, feed_input, f);
	f->spin.max_ns = max_ns;
	assert_int_equal(pthread_create(&t, NULL, feeder, f), 0);
	spin_run(&f->spin, &f->loop);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	sem_destroy(&f->processed);
	sem_destroy(&f->woken);
}

static void test_off_never_spins(void **state)
{
	struct feed f = { .nbytes = 6 };

	(void)state;
	feed_run(&f, 0);
	assert_int_equal(f.input, 6);
	assert_int_equal(f.spin.hits, 0);
	assert_int_equal(f.spin.misses, 0);
}

static void test_spins_catch_then_run_out(void **state)
{
	struct feed f = { .nbytes = 6, .wait_miss = true };

	(void)state;
	/* 200 ms: far longer than a thread takes to send its next byte here,
	 * even on a busy machine. */
	feed_run(&f, 200ull * 1000 * 1000);
	assert_int_equal(f.input, 6);
	/* Bytes 2..6 each followed one the loop had read: spins caught most
	 * (all, unless the thread was kept off a CPU for 200 ms). */
	assert_true(f.spin.hits >= 3);
	/* Spins are only made after input: at most one outcome per byte. */
	assert_true(f.spin.hits + f.spin.misses <= 6);
	/* The last spin ran out (the thread waited for it) ... */
	assert_true(f.spin.misses >= 1);
	/* ... which closed the window: a turn without input (the wake) does
	 * not spin again ... */
	assert_int_equal(f.window_at_wake, 0);
	/* ... and the loop then slept: the close woke it, no hit after. */
	assert_int_equal(f.spin.hits, f.hits_at_miss);
}

static void test_backoff_after_miss(void **state)
{
	struct feed f = { .nbytes = 6, .wait_miss = true, .after_miss = 3 };

	(void)state;
	feed_run(&f, 200ull * 1000 * 1000);
	assert_int_equal(f.input, 9);
	assert_true(f.hits_at_miss >= 3);
	assert_int_equal(f.spin.misses, 2);
	/* After the miss, one window is skipped: the first byte after it is
	 * not followed by a spin; the second opens the window again and the
	 * third is caught (one hit, where without the back-off the second and
	 * third both were); the spin after the third runs out. */
	assert_int_equal(f.hits_at_end - f.hits_at_miss, 1);
	assert_int_equal(f.misses_at_end, 2);
}

static void test_many_sources_never_spin(void **state)
{
	struct feed f = { .nbytes = 6, .alternate = true };

	(void)state;
	/* Each byte from the other pipe than the one before: the loop would
	 * take each source's input alone if it spun, so it sleeps. */
	feed_run(&f, 200ull * 1000 * 1000);
	assert_int_equal(f.input, 6);
	assert_int_equal(f.spin.hits, 0);
	assert_int_equal(f.spin.misses, 0);
}

static void test_ends_with_the_loop(void **state)
{
	struct feed f = { .nbytes = 1 };

	(void)state;
	/* The close comes while the loop spins a window of 10 s: spin_run
	 * returns once the loop has nothing left, not after the window. */
	feed_run(&f, 10ull * 1000 * 1000 * 1000);
	assert_int_equal(f.input, 1);
	assert_int_equal(f.spin.misses, 0);
}

struct stopper {
	struct spin spin;
	uint64_t input;
	uv_timer_t keep, stop, guard;
	bool guard_fired;
};

static uint64_t stopper_input(void *arg, uint64_t *switches)
{
	const struct stopper *st = arg;

	*switches = 0;
	return st->input;
}

static void stopper_stop(uv_timer_t *t)
{
	struct stopper *st = t->data;

	st->input++;
	spin_stop(&st->spin);
}

static void stopper_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Hang guard only: without spin_stop working the test fails below. */
static void stopper_guard(uv_timer_t *t)
{
	struct stopper *st = t->data;

	st->guard_fired = true;
	uv_walk(t->loop, stopper_close, NULL);
}

static void stopper_noop(uv_timer_t *t)
{
	(void)t;
}

/* spin_stop from a callback ends spin_run after that turn, while the loop
 * still has active handles (a load generator's connections stay open when
 * its run ends): in a turn that waits (off) and in one that spins. */
static void test_stop(void **state)
{
	const uint64_t windows[] = { 0, 10ull * 1000 * 1000 * 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		struct stopper st = { 0 };
		uv_loop_t loop;

		assert_int_equal(uv_loop_init(&loop), 0);
		uv_timer_init(&loop, &st.keep);
		uv_timer_init(&loop, &st.stop);
		uv_timer_init(&loop, &st.guard);
		st.stop.data = st.guard.data = &st;
		uv_timer_start(&st.keep, stopper_noop, 1000ull * 1000, 0);
		uv_timer_start(&st.stop, stopper_stop, 1, 0);
		uv_timer_start(&st.guard, stopper_guard, 30000, 0);
		spin_init(&st.spin, 0, stopper_input, &st);
		st.spin.max_ns = st.spin.window_ns = windows[i];
		spin_run(&st.spin, &loop);
		assert_false(st.guard_fired);
		assert_int_equal(st.input, 1);
		assert_true(uv_is_active((uv_handle_t *)&st.keep));
		uv_walk(&loop, stopper_close, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(&loop), 0);
	}
}

static void test_window(void **state)
{
	struct spin s;

	(void)state;
	spin_init(&s, 50, feed_input, NULL);
	assert_int_equal(s.max_ns, 50000);
	assert_int_equal(s.window_ns, 0);              /* no input seen yet */
	assert_int_equal(spin_window_after(&s, 0), 50000);
	assert_int_equal(spin_window_after(&s, 50000), 50000);
	assert_int_equal(spin_window_after(&s, 50001), 0);
	spin_set_max(&s, 0);
	assert_int_equal(spin_window_after(&s, 0), 0);  /* off */
	spin_set_max(&s, SPIN_MAX_US + 1);
	assert_int_equal(s.max_ns, (uint64_t)SPIN_MAX_US * 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_never_spins),
		cmocka_unit_test(test_spins_catch_then_run_out),
		cmocka_unit_test(test_backoff_after_miss),
		cmocka_unit_test(test_many_sources_never_spin),
		cmocka_unit_test(test_ends_with_the_loop),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
