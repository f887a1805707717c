/*
 * wq.c - state I/O threads whose jobs come back to their loop through an
 * eventfd of the loop's own (wq.h tells why not libuv's pool alone).
 *
 * One queue of jobs under wq.mu, taken oldest first by WQ_THREADS threads.
 * A channel (one per attached loop) is an eventfd, a uv_poll_t on it and
 * the list of its finished jobs under its own mutex: append under the
 * mutex, release it, then write the eventfd; the loop reads the eventfd,
 * takes the whole list under the mutex and runs each done callback outside
 * it.  The threads never exit, so a channel must outlive its jobs
 * (wq_detach with jobs out is a bug).  The table of attached loops is
 * read under wq.mu: a few entries (sgnfsd has one loop).
 */
#include "wq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "log.h"
#include "thprio.h"

#define WQ_MAX_LOOPS 8

void (*wq_test_woke)(struct wq_work *w);

struct wq_chan {
	uv_poll_t poll;                /* on efd; ref'd while jobs are out */
	uv_loop_t *loop;
	int efd;                       /* owned */
	unsigned out;                  /* jobs out, not yet done (loop) */
	pthread_mutex_t mu;            /* guards head, tail */
	struct wq_done *head, *tail;   /* finished, not yet taken by the loop */
};

static struct {
	pthread_mutex_t mu;            /* guards everything below */
	pthread_cond_t cv;             /* a job was queued */
	struct wq_work *head, *tail;
	int started;                   /* 0 not yet, >0 threads, -1 none could */
	struct wq_chan *chans[WQ_MAX_LOOPS];
} wq = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static void wq_append(struct wq_work **head, struct wq_work **tail, struct wq_work *w)
{
	w->next = NULL;
	if (*tail)
		(*tail)->next = w;
	else
		*head = w;
	*tail = w;
}

void wq_chan_post(struct wq_chan *ch, struct wq_done *d)
{
	uint64_t one = 1;

	d->next = NULL;
	pthread_mutex_lock(&ch->mu);
	if (ch->tail)
		ch->tail->next = d;
	else
		ch->head = d;
	ch->tail = d;
	pthread_mutex_unlock(&ch->mu);
	/* Last, after the unlock: the woken loop may preempt this thread
	 * right here, and then needs nothing more from it. */
	while (write(ch->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void wq_chan_hold(struct wq_chan *ch)
{
	if (ch->out++ == 0)
		uv_ref((uv_handle_t *)&ch->poll);
}

/* On the thread that ran @w: hand it back to its loop. */
static void wq_post(struct wq_work *w)
{
	wq_chan_post(w->chan, &w->wd);
	if (wq_test_woke)
		wq_test_woke(w);
}

static void *wq_thread(void *arg)
{
	(void)arg;
	/* Started by the real-time loop: its policy and CPU go first, then
	 * the daemon's nice (common/thprio.h); named once that is done. */
	(void)thp_leave_loop();
	(void)thp_nicer(0);
	(void)pthread_setname_np(pthread_self(), "sgnfs-state");
	pthread_mutex_lock(&wq.mu);
	for (;;) {
		while (!wq.head)
			pthread_cond_wait(&wq.cv, &wq.mu);
		struct wq_work *w = wq.head;

		wq.head = w->next;
		if (!wq.head)
			wq.tail = NULL;
		pthread_mutex_unlock(&wq.mu);
		w->work(w);
		wq_post(w);
		pthread_mutex_lock(&wq.mu);
	}
	return NULL;
}

/* With wq.mu held: start the threads if not yet; true if there are any. */
static bool wq_start(void)
{
	if (wq.started == 0) {
		pthread_attr_t a;
		int n = 0;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		for (int i = 0; i < WQ_THREADS; i++) {
			pthread_t t;

			if (pthread_create(&t, &a, wq_thread, NULL) == 0)
				n++;
		}
		pthread_attr_destroy(&a);
		wq.started = n ? n : -1;
		if (!n)
			log_warn("no state I/O thread could be started; libuv's pool does that work");
	}
	return wq.started > 0;
}

/* With wq.mu held: @loop's channel, or NULL. */
static struct wq_chan *wq_chan_of(uv_loop_t *loop)
{
	for (int i = 0; i < WQ_MAX_LOOPS; i++)
		if (wq.chans[i] && wq.chans[i]->loop == loop)
			return wq.chans[i];
	return NULL;
}

/* ---- the fallback: libuv's pool ----------------------------------------- */

static void wq_uv_work(uv_work_t *u)
{
	struct wq_work *w = u->data;

	w->work(w);
}

static void wq_uv_done(uv_work_t *u, int status)
{
	struct wq_work *w = u->data;

	w->done(w, status);
}

static void wq_done_fn(struct wq_done *d)
{
	struct wq_work *w = (struct wq_work *)((char *)d - offsetof(struct wq_work, wd));

	w->done(w, 0);
}

int wq_queue(uv_loop_t *loop, struct wq_work *w, void (*work)(struct wq_work *w),
	     void (*done)(struct wq_work *w, int status))
{
	struct wq_chan *ch;

	w->work = work;
	w->done = done;
	pthread_mutex_lock(&wq.mu);
	ch = wq_chan_of(loop);
	if (!ch || !wq_start()) {
		pthread_mutex_unlock(&wq.mu);
		w->chan = NULL;
		w->uv.data = w;
		return uv_queue_work(loop, &w->uv, wq_uv_work, wq_uv_done);
	}
	w->chan = ch;
	w->wd.fn = wq_done_fn;
	wq_chan_hold(ch);
	wq_append(&wq.head, &wq.tail, w);
	pthread_cond_signal(&wq.cv);
	pthread_mutex_unlock(&wq.mu);
	return 0;
}

/* ---- channels ---------------------------------------------------------- */

static void wq_chan_cb(uv_poll_t *p, int status, int events)
{
	struct wq_chan *ch = p->data;
	struct wq_done *list;
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
		struct wq_done *d = list;

		list = d->next;
		if (--ch->out == 0)
			uv_unref((uv_handle_t *)&ch->poll);
		d->fn(d);
	}
}

static void wq_chan_closed(uv_handle_t *h)
{
	struct wq_chan *ch = h->data;

	close(ch->efd);
	pthread_mutex_destroy(&ch->mu);
	free(ch);
}

int wq_chan_open(uv_loop_t *loop, struct wq_chan **out)
{
	struct wq_chan *ch = calloc(1, sizeof(*ch));
	int rc;

	if (!ch)
		return -ENOMEM;
	ch->loop = loop;
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		rc = -errno;
		free(ch);
		return rc;
	}
	rc = uv_poll_init(loop, &ch->poll, ch->efd);
	if (rc < 0) {
		close(ch->efd);
		free(ch);
		return rc;
	}
	pthread_mutex_init(&ch->mu, NULL);
	ch->poll.data = ch;
	rc = uv_poll_start(&ch->poll, UV_READABLE, wq_chan_cb);
	if (rc < 0) {
		/* The handle exists: its close callback frees the rest. */
		uv_close((uv_handle_t *)&ch->poll, wq_chan_closed);
		return rc;
	}
	/* Idle, it does not keep the loop running (wq_chan_hold refs it). */
	uv_unref((uv_handle_t *)&ch->poll);
	*out = ch;
	return 0;
}

void wq_chan_close(struct wq_chan *ch)
{
	if (ch)
		uv_close((uv_handle_t *)&ch->poll, wq_chan_closed);
}

/* ---- attached loops -------------------------------------------------- */

int wq_attach(uv_loop_t *loop)
{
	struct wq_chan *ch;
	int rc;

	rc = wq_chan_open(loop, &ch);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&wq.mu);
	if (wq_chan_of(loop)) {
		rc = -EEXIST;
	} else {
		rc = -ENOSPC;
		for (int i = 0; i < WQ_MAX_LOOPS; i++) {
			if (!wq.chans[i]) {
				wq.chans[i] = ch;
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&wq.mu);
	if (rc < 0)
		wq_chan_close(ch);
	return rc;
}

void wq_detach(uv_loop_t *loop)
{
	struct wq_chan *ch;

	pthread_mutex_lock(&wq.mu);
	ch = wq_chan_of(loop);
	for (int i = 0; ch && i < WQ_MAX_LOOPS; i++)
		if (wq.chans[i] == ch)
			wq.chans[i] = NULL;
	pthread_mutex_unlock(&wq.mu);
	wq_chan_close(ch);
}
