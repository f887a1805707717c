/*
 * watchdog.c - see watchdog.h.  The heartbeat is an atomic counter bumped
 * by a loop timer; the thread only reads it, so a stuck loop cannot stop
 * the thread from noticing.  _exit, not exit: atexit handlers and stdio
 * flushing could themselves block on what the loop is stuck in.
 */
#include "cluster/watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "thprio.h"

static atomic_ulong wd_beats;
static atomic_bool wd_running;
static uint32_t wd_timeout_ms;
static uv_timer_t wd_timer;
static pthread_t wd_thread;

static void wd_beat(uv_timer_t *t)
{
	atomic_fetch_add(&wd_beats, 1);
}

static void *wd_main(void *arg)
{
	unsigned long last = atomic_load(&wd_beats);
	struct timespec step = { .tv_sec = 0, .tv_nsec = 0 };
	uint32_t silent_ms = 0, step_ms = wd_timeout_ms / 8 ? wd_timeout_ms / 8 : 1;

	/* Not the real-time loop's policy, should it have made this thread:
	 * a watchdog is not to compete with what it watches (thprio.h). */
	(void)thp_leave_loop();
	step.tv_sec = step_ms / 1000;
	step.tv_nsec = (long)(step_ms % 1000) * 1000000L;
	while (atomic_load(&wd_running)) {
		nanosleep(&step, NULL);
		unsigned long now = atomic_load(&wd_beats);
		if (now != last) {
			last = now;
			silent_ms = 0;
			continue;
		}
		silent_ms += step_ms;
		if (silent_ms >= wd_timeout_ms && atomic_load(&wd_running)) {
			/* Async-signal-safe path only from here on. */
			static const char msg[] =
				"sgnfsd: watchdog: event loop stuck, exiting so leases pass on\n";
			ssize_t n = write(2, msg, sizeof(msg) - 1);
			(void)n;
			_exit(70);
		}
	}
	return NULL;
}

int wd_start(uv_loop_t *loop, uint32_t timeout_ms)
{
	uint64_t every = timeout_ms / 8 ? timeout_ms / 8 : 1;

	wd_timeout_ms = timeout_ms;
	uv_timer_init(loop, &wd_timer);
	uv_timer_start(&wd_timer, wd_beat, 0, every);
	uv_unref((uv_handle_t *)&wd_timer); /* the loop may end without us */
	atomic_store(&wd_running, true);
	if (pthread_create(&wd_thread, NULL, wd_main, NULL) != 0) {
		atomic_store(&wd_running, false);
		uv_close((uv_handle_t *)&wd_timer, NULL);
		return -1;
	}
	return 0;
}

void wd_stop(void)
{
	if (!atomic_load(&wd_running))
		return;
	atomic_store(&wd_running, false);
	pthread_join(wd_thread, NULL);
	uv_close((uv_handle_t *)&wd_timer, NULL);
}
