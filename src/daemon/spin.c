/*
 * spin.c - the event loop's busy polling (spin.h).
 */
#include "spin.h"

#include <stdbool.h>

void spin_init(struct spin *s, unsigned max_us, spin_input_fn input, void *arg)
{
	*s = (struct spin){ .input = input, .arg = arg };
	spin_set_max(s, max_us);
}

void spin_set_max(struct spin *s, unsigned max_us)
{
	if (max_us > SPIN_MAX_US)
		max_us = SPIN_MAX_US;
	s->max_ns = (uint64_t)max_us * 1000;
	/* The next input's gap decides whether a spin follows. */
	s->window_ns = 0;
}

uint64_t spin_window_after(const struct spin *s, uint64_t idle_ns)
{
	return s->max_ns && idle_ns <= s->max_ns ? s->max_ns : 0;
}

void spin_run(struct spin *s, uv_loop_t *loop)
{
	/* libuv then times every wait inside epoll_wait: how long the loop
	 * slept before a client's input woke it is what says whether a spin
	 * would have caught that input. */
	bool timed = uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0;
	uint64_t in;

	s->seen = s->input(s->arg);
	for (;;) {
		uint64_t idle0;

		if (s->window_ns) {
			uint64_t until = uv_hrtime() + s->window_ns;

			/* Turns that do not block (epoll_wait with timeout 0):
			 * timers, the journal's check handle and closes run as
			 * in any turn. */
			do {
				if (!uv_run(loop, UV_RUN_NOWAIT))
					return;
				in = s->input(s->arg);
			} while (in == s->seen && uv_hrtime() < until);
			if (in != s->seen) {
				s->seen = in;
				s->hits++;
				continue;
			}
			s->misses++;
			s->window_ns = 0;
		}
		idle0 = timed ? uv_metrics_idle_time(loop) : 0;
		if (!uv_run(loop, UV_RUN_ONCE))
			return;
		in = s->input(s->arg);
		if (in != s->seen && timed) {
			s->seen = in;
			s->window_ns = spin_window_after(s, uv_metrics_idle_time(loop) - idle0);
		}
	}
}
