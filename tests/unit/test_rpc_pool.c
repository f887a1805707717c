/*
 * test_rpc_pool.c - the pool of blocking RPC handlers (src/rpc/rpc_pool.h):
 * where a job runs, where its completion runs, and that the loop never
 * waits for a thread that has already handed its job back.
 *
 * The last is the reason the pool exists: libuv's uv_async_send marks its
 * handle done only after waking the loop, and the woken loop spins until
 * it is; a sender preempted by that wake-up held every request of the node.
 * Here the hook rpcp_test_woke holds the pool thread right after its
 * wake-up (where the kernel preempts it on a shared CPU) until the job's
 * done callback has run on the loop.  The hook's wait is bounded only so
 * that a broken pool fails the assertion instead of hanging the test.
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

#include "rpc/rpc_pool.h"

struct tjob {
	struct rpcp_job job;             /* first */
	pthread_t work_thread, done_thread;
	char work_name[16];
	int order;                       /* 1: work ran; 2: done ran */
};

static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER;
static bool t_done_seen_by_hook;     /* the hook found done already run */
static int t_hook_calls;

static void tjob_work(struct rpcp_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->work_thread = pthread_self();
	(void)pthread_getname_np(t->work_thread, t->work_name, sizeof(t->work_name));
	t->order = 1;
}

static void tjob_done(struct rpcp_job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->done_thread = pthread_self();
	pthread_mutex_lock(&t_mu);
	t->order = 2;
	pthread_cond_broadcast(&t_cv);
	pthread_mutex_unlock(&t_mu);
}

/* Holds the pool thread until the loop has run the job's done callback
 * (10 s at most: a pool whose loop waits for this thread fails below),
 * then says whether it had. */
static void hold_until_done(struct rpcp_job *j)
{
	struct tjob *t = (struct tjob *)j;
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

static void tjob_init(struct tjob *t, bool low)
{
	memset(t, 0, sizeof(*t));
	t->job.work = tjob_work;
	t->job.done = tjob_done;
	t->job.low = low;
}

static void close_chan(uv_loop_t *loop, struct wq_chan *ch)
{
	wq_chan_close(ch);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* The job's completion reaches the loop while its thread is still held
 * right after the wake-up: the loop needs nothing more from it. */
static void test_done_while_sender_held(void **state)
{
	uv_loop_t loop;
	struct wq_chan *ch;
	struct tjob t;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(wq_chan_open(&loop, &ch), 0);
	tjob_init(&t, false);
	t_done_seen_by_hook = false;
	t_hook_calls = 0;
	rpcp_test_woke = hold_until_done;
	rpcp_submit(ch, &t.job);
	/* Returns once the job is done: a job out keeps the loop alive. */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(t.order, 2);
	/* The hook may still be on its way out. */
	pthread_mutex_lock(&t_mu);
	while (t_hook_calls == 0)
		pthread_cond_wait(&t_cv, &t_mu);
	pthread_mutex_unlock(&t_mu);
	rpcp_test_woke = NULL;
	assert_true(t_done_seen_by_hook);
	close_chan(&loop, ch);
}

/* Work on a pool thread, done on the loop's; a low job on a low thread. */
static void test_threads(void **state)
{
	uv_loop_t loop;
	struct wq_chan *ch;
	struct tjob n, l;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(wq_chan_open(&loop, &ch), 0);
	/* Idle, the channel does not keep the loop running. */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	tjob_init(&n, false);
	tjob_init(&l, true);
	rpcp_submit(ch, &n.job);
	rpcp_submit(ch, &l.job);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(n.order, 2);
	assert_int_equal(l.order, 2);
	assert_true(pthread_equal(n.done_thread, pthread_self()));
	assert_true(pthread_equal(l.done_thread, pthread_self()));
	assert_false(pthread_equal(n.work_thread, pthread_self()));
	assert_false(pthread_equal(l.work_thread, pthread_self()));
	assert_string_equal(n.work_name, "sgnfs-pool");
	assert_false(n.job.lowered);
	assert_string_equal(l.work_name, "sgnfs-low");
	assert_true(l.job.lowered);
	close_chan(&loop, ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_done_while_sender_held),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
