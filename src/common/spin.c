/*
 * spin.c - the event loop's busy polling (spin.h).
 */
#include "spin.h"

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
	s->backoff = s->skip = 0;
	/* The next input's gap decides whether a spin follows. */
	s->window_ns = 0;
}

uint64_t spin_window_after(const struct spin *s, uint64_t idle_ns)
{
	return s->max_ns && idle_ns <= s->max_ns ? s->max_ns : 0;
}

/* Input since the last look?  1 if so, with *@one_source saying whether
 * it all came from the source of the input before it. */
static int spin_look(struct spin *s, bool *one_source)
{
	uint64_t sw, in = s->input(s->arg, &sw);

	if (in == s->seen)
		return 0;
	*one_source = sw == s->seen_switches;
	s->seen = in;
	s->seen_switches = sw;
	return 1;
}

void spin_stop(struct spin *s)
{
	s->stop = true;
}

void spin_run(struct spin *s, uv_loop_t *loop)
{
	bool timed = false, one;

	s->stop = false;
	s->seen = s->input(s->arg, &s->seen_switches);
	for (;;) {
		uint64_t idle0;

		if (s->window_ns) {
			uint64_t until = uv_hrtime() + s->window_ns;
			int got = 0;

			/* Turns that do not block (epoll_wait with timeout 0):
			 * timers, the journal's check handle and closes run as
			 * in any turn. */
			do {
				if (!uv_run(loop, UV_RUN_NOWAIT) || s->stop)
					return;
				got = spin_look(s, &one);
			} while (!got && uv_hrtime() < until);
			if (got) {
				s->hits++;
				s->backoff = s->skip = 0;
				if (one)
					continue;
			} else {
				s->misses++;
				s->backoff = s->backoff ? s->backoff * 2 : 1;
				if (s->backoff > SPIN_BACKOFF_MAX)
					s->backoff = SPIN_BACKOFF_MAX;
				s->skip = s->backoff;
			}
			s->window_ns = 0;
		}
		if (!timed && s->max_ns)
			/* libuv then times every wait inside epoll_wait: how long
			 * the loop slept before a client's input woke it says
			 * whether a spin would have caught that input.  Only once
			 * polling is on: with the timing libuv makes a sleep two
			 * polls, one that does not wait, then the one that does. */
			timed = uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0;
		idle0 = timed ? uv_metrics_idle_time(loop) : 0;
		if (!uv_run(loop, UV_RUN_ONCE) || s->stop)
			return;
		if (spin_look(s, &one) && timed) {
			s->window_ns = one ? spin_window_after(s, uv_metrics_idle_time(loop) - idle0)
					   : 0;
			if (s->window_ns && s->skip) {
				s->skip--;
				s->window_ns = 0;
			}
		}
	}
}
