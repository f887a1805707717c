/*
 * rpc_pool.c - the threads that run blocking RPC handlers and the channel
 * that brings their jobs back to the loop (rpc_pool.h tells why this is
 * not libuv's pool).
 *
 * Two queues, one per kind of thread, under one mutex; each thread takes
 * the oldest job of its queue.  A channel is an eventfd, a uv_poll_t on
 * it, and the list of its finished jobs under its own mutex.  The order
 * of a completion is the point of the file: append under the mutex,
 * release it, then write the eventfd; the loop reads the eventfd, takes
 * the whole list under the mutex and runs each job's done callback
 * outside it.  A write that finds the list already taken wakes the loop
 * for nothing; one that comes after a take wakes it for the new job.
 *
 * Hazards: the threads never exit, so a channel must outlive its jobs
 * (rpcp_chan_close with jobs out is a bug); a channel is the loop's, so
 * only its thread submits and closes.
 */
#include "rpc/rpc_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "log.h"
#include "rpc_int.h"
#include "thprio.h"

void (*rpcp_test_woke)(struct rpcp_job *j);

struct rpcp_chan {
	uv_poll_t poll;                /* on efd; ref'd while jobs are out */
	int efd;                       /* owned */
	unsigned out;                  /* jobs submitted, not yet done (loop) */
	pthread_mutex_t mu;            /* guards head, tail */
	struct rpcp_job *head, *tail;  /* finished, not yet taken by the loop */
};

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

/* On the pool thread that ran @j: hand it back to its loop. */
static void rpcp_post(struct rpcp_job *j)
{
	struct rpcp_chan *ch = j->chan;
	uint64_t one = 1;

	pthread_mutex_lock(&ch->mu);
	rpcp_append(&ch->head, &ch->tail, j);
	pthread_mutex_unlock(&ch->mu);
	/* Last, and after the unlock: the woken loop may preempt this
	 * thread right here, and must then need nothing from it.  j is the
	 * loop's from now on (only tests look at it, in the hook). */
	while (write(ch->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	if (rpcp_test_woke)
		rpcp_test_woke(j);
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

void rpcp_submit(struct rpcp_chan *ch, struct rpcp_job *j)
{
	struct rpcp_queue *q = &rpcp.q[1];

	j->chan = ch;
	j->lowered = false;
	if (ch->out++ == 0)
		uv_ref((uv_handle_t *)&ch->poll);
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

static void rpcp_chan_cb(uv_poll_t *p, int status, int events)
{
	struct rpcp_chan *ch = p->data;
	struct rpcp_job *list;
	uint64_t n;

	(void)status;
	(void)events;
	/* Clear the count first: a write after this read wakes the loop
	 * again, for a job appended after the take below. */
	(void)!read(ch->efd, &n, sizeof(n));
	pthread_mutex_lock(&ch->mu);
	list = ch->head;
	ch->head = ch->tail = NULL;
	pthread_mutex_unlock(&ch->mu);
	while (list) {
		struct rpcp_job *j = list;

		list = j->next;
		if (--ch->out == 0)
			uv_unref((uv_handle_t *)&ch->poll);
		j->done(j);
	}
}

static void rpcp_chan_closed(uv_handle_t *h);

int rpcp_chan_open(uv_loop_t *loop, struct rpcp_chan **out)
{
	struct rpcp_chan *ch = calloc(1, sizeof(*ch));
	int rc;

	if (!ch)
		return -ENOMEM;
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		rc = -errno;
		goto out_free;
	}
	rc = uv_poll_init(loop, &ch->poll, ch->efd);
	if (rc < 0)
		goto out_efd;
	pthread_mutex_init(&ch->mu, NULL);
	ch->poll.data = ch;
	rc = uv_poll_start(&ch->poll, UV_READABLE, rpcp_chan_cb);
	if (rc < 0) {
		/* The handle exists: its close callback frees the rest. */
		uv_close((uv_handle_t *)&ch->poll, rpcp_chan_closed);
		return rc;
	}
	/* Idle, it does not keep the loop running (rpcp_submit refs it). */
	uv_unref((uv_handle_t *)&ch->poll);
	*out = ch;
	return 0;

out_efd:
	close(ch->efd);
out_free:
	free(ch);
	return rc;
}

static void rpcp_chan_closed(uv_handle_t *h)
{
	struct rpcp_chan *ch = h->data;

	close(ch->efd);
	pthread_mutex_destroy(&ch->mu);
	free(ch);
}

void rpcp_chan_close(struct rpcp_chan *ch)
{
	if (!ch)
		return;
	uv_close((uv_handle_t *)&ch->poll, rpcp_chan_closed);
}
