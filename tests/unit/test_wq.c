/*
 * test_wq.c - the state I/O threads (src/common/wq.h): where a job runs,
 * where its completion runs, that the loop never waits for a thread that
 * has already handed its job back, and that a loop with no channel of its
 * own still gets its jobs done (on libuv's pool).
 *
 * The hook wq_test_woke holds the state thread right after its wake-up
 * (where the kernel preempts it on a shared CPU) until the job's done
 * callback has run on the loop: with libuv's uv_async_send the woken loop
 * would wait for that thread, the hook for the loop.  The hook's wait is
 * bounded only so that a broken channel fails the assertion instead of
 * hanging the test.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <uv.h>

#include "wq.h"

struct tjob {
	struct wq_work w;
	pthread_t work_thread, done_thread;
	char work_name[16];
	int order;                       /* 1: work ran; 2: done ran */
	int status;
};

static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER;
static bool t_done_seen_by_hook;
static int t_hook_calls;

static void tjob_work(struct wq_work *w)
{
	struct tjob *t = w->data;

	t->work_thread = pthread_self();
	(void)pthread_getname_np(t->work_thread, t->work_name, sizeof(t->work_name));
	t->order = 1;
}

static void tjob_done(struct wq_work *w, int status)
{
	struct tjob *t = w->data;

	t->done_thread = pthread_self();
	pthread_mutex_lock(&t_mu);
	t->status = status;
	t->order = 2;
	pthread_cond_broadcast(&t_cv);
	pthread_mutex_unlock(&t_mu);
}

/* Holds the state thread until the loop has run the job's done callback
 * (10 s at most), then says whether it had. */
static void hold_until_done(struct wq_work *w)
{
	struct tjob *t = w->data;
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&t_mu);
	while (t->order != 2 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&t_cv, &t_mu, &until);
	t_done_seen_by_hook = t->order == 2;
	t_hook_calls++;
	pthread_cond_broadcast(&t_cv);
	pthread_mutex_unlock(&t_mu);
}

static void tjob_init(struct tjob *t)
{
	memset(t, 0, sizeof(*t));
	t->w.data = t;
}

static void detach_close(uv_loop_t *loop)
{
	wq_detach(loop);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* The job's completion reaches the loop while its thread is still held
 * right after the wake-up: the loop needs nothing more from it. */
static void test_done_while_sender_held(void **state)
{
	uv_loop_t loop;
	struct tjob t;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(wq_attach(&loop), 0);
	tjob_init(&t);
	t_done_seen_by_hook = false;
	t_hook_calls = 0;
	wq_test_woke = hold_until_done;
	assert_int_equal(wq_queue(&loop, &t.w, tjob_work, tjob_done), 0);
	/* Returns once the job is done: a job out keeps the loop alive. */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(t.order, 2);
	pthread_mutex_lock(&t_mu);
	while (t_hook_calls == 0)
		pthread_cond_wait(&t_cv, &t_mu);
	pthread_mutex_unlock(&t_mu);
	wq_test_woke = NULL;
	assert_true(t_done_seen_by_hook);
	detach_close(&loop);
}

/* Work on a state thread, done on the loop's, status 0; an idle channel
 * does not keep the loop running; a second attach of a loop is refused. */
static void test_threads(void **state)
{
	uv_loop_t loop;
	struct tjob t[8];

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(wq_attach(&loop), 0);
	assert_int_equal(wq_attach(&loop), -EEXIST);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	for (int i = 0; i < 8; i++) {
		tjob_init(&t[i]);
		assert_int_equal(wq_queue(&loop, &t[i].w, tjob_work, tjob_done), 0);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(t[i].order, 2);
		assert_int_equal(t[i].status, 0);
		assert_true(pthread_equal(t[i].done_thread, pthread_self()));
		assert_false(pthread_equal(t[i].work_thread, pthread_self()));
		assert_string_equal(t[i].work_name, "sgnfs-state");
	}
	detach_close(&loop);
}

/* A loop with no channel: its job runs on libuv's pool, done on the loop. */
static void test_unattached_loop(void **state)
{
	uv_loop_t loop;
	struct tjob t;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	tjob_init(&t);
	assert_int_equal(wq_queue(&loop, &t.w, tjob_work, tjob_done), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(t.order, 2);
	assert_int_equal(t.status, 0);
	assert_true(pthread_equal(t.done_thread, pthread_self()));
	assert_false(pthread_equal(t.work_thread, pthread_self()));
	assert_string_not_equal(t.work_name, "sgnfs-state");
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_done_while_sender_held),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_unattached_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
