/*
 * rpc_pool.c - the threads that run blocking RPC handlers and the channel
 * that brings their jobs back to the loop (rpc_pool.h tells why this is
 * not libuv's pool).
 *
 * Two queues, one per kind of thread, under one mutex; each thread takes
 * the oldest job of its queue and hands it back through its channel
 * (common/wq.h, wq_chan_post: the loop never waits for the thread).
 *
 * Hazards: the threads never exit, so a channel must outlive its jobs
 * (wq_chan_close with jobs out is a bug); a channel is the loop's, so
 * only its thread submits and closes.
 */
#include "rpc/rpc_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_int.h"
#include "thprio.h"

void (*rpcp_test_woke)(struct rpcp_job *j);

/* The process's threads: one queue for each kind. */
struct rpcp_queue {
	pthread_cond_t cv;             /* a job was queued */
	struct rpcp_job *head, *tail;
	int started;                   /* 0 not yet, >0 threads, -1 none could */
};

static struct {
	pthread_mutex_t mu;            /* guards both queues */
	struct rpcp_queue q[2];        /* [0] normal, [1] low */
} rpcp = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.q = { { .cv = PTHREAD_COND_INITIALIZER }, { .cv = PTHREAD_COND_INITIALIZER } },
};

/* @j at the end of the list @head..@tail (the caller holds its mutex). */
static void rpcp_append(struct rpcp_job **head, struct rpcp_job **tail, struct rpcp_job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

/* On the pool thread that ran @j: hand it back to its loop.  j is the
 * loop's from now on (only tests look at it, in the hook). */
static void rpcp_post(struct rpcp_job *j)
{
	wq_chan_post(j->chan, &j->wd);
	if (rpcp_test_woke)
		rpcp_test_woke(j);
}

/* On the loop: the job is back. */
static void rpcp_done(struct wq_done *d)
{
	struct rpcp_job *j = (struct rpcp_job *)((char *)d - offsetof(struct rpcp_job, wd));

	j->done(j);
}

static void *rpcp_thread(void *arg)
{
	struct rpcp_queue *q = arg;
	bool low = q == &rpcp.q[1];

	/* The names tell them apart in top -H and in the tests. */
	(void)pthread_setname_np(pthread_self(), low ? "sgnfs-low" : "sgnfs-pool");
	/* Created by the real-time loop: its policy goes first, then the
	 * daemon's nice and the short slice (common/thprio.h). */
	(void)thp_leave_loop();
	(void)thp_nicer(0);
	if (!low)
		(void)thp_short_slice();
	if (low) {
		int rc = thp_background(RPC_POOL_LOW_NICE);

		if (rc < 0)
			log_warn("rpc: a low-priority pool thread can take neither SCHED_IDLE nor nice %d: %s; backlogged groups' jobs compete with the loop",
				 RPC_POOL_LOW_NICE, strerror(-rc));
		else if (rc == 0)
			log_warn("rpc: a low-priority pool thread cannot take SCHED_IDLE; it runs at nice %d, and the loop may wait for its time slice",
				 RPC_POOL_LOW_NICE);
	}
	pthread_mutex_lock(&rpcp.mu);
	for (;;) {
		while (!q->head)
			pthread_cond_wait(&q->cv, &rpcp.mu);
		struct rpcp_job *j = q->head;

		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&rpcp.mu);
		j->work(j);
		j->lowered = low;
		rpcp_post(j);
		pthread_mutex_lock(&rpcp.mu);
	}
	return NULL;
}

/* With rpcp.mu held: start @q's threads if not yet; true if it has any. */
static bool rpcp_start(struct rpcp_queue *q)
{
	if (q->started == 0) {
		pthread_attr_t a;
		int n = 0;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		for (int i = 0; i < RPC_POOL_JOBS; i++) {
			pthread_t t;

			if (pthread_create(&t, &a, rpcp_thread, q) == 0)
				n++;
		}
		pthread_attr_destroy(&a);
		q->started = n ? n : -1;
		if (!n)
			log_warn("rpc: no %s pool thread could be started",
				 q == &rpcp.q[1] ? "low-priority" : "");
	}
	return q->started > 0;
}

void rpcp_submit(struct wq_chan *ch, struct rpcp_job *j)
{
	struct rpcp_queue *q = &rpcp.q[1];

	j->chan = ch;
	j->wd.fn = rpcp_done;
	j->lowered = false;
	wq_chan_hold(ch);
	pthread_mutex_lock(&rpcp.mu);
	/* A low job where no low thread can run goes to the normal ones. */
	if (!j->low || !rpcp_start(q))
		q = &rpcp.q[0];
	if (!rpcp_start(q)) {
		/* No thread at all: run it here, so the request is answered
		 * (slowly, on the loop) rather than never. */
		pthread_mutex_unlock(&rpcp.mu);
		j->work(j);
		rpcp_post(j);
		return;
	}
	rpcp_append(&q->head, &q->tail, j);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&rpcp.mu);
}
