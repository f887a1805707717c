/*
 * uv_drain.h - the end of a unit test that runs a libuv loop.
 */
#ifndef SGNFS_TESTS_UV_DRAIN_H
#define SGNFS_TESTS_UV_DRAIN_H

#include <unistd.h>
#include <uv.h>

/*
 * At the end of a test: run the loop until nothing is left on it, closes
 * and work still on the pool (a journal batch, a state file closing), which
 * on a loaded machine can outlast any number of turns of an idle loop.  The
 * bound (about a minute) only stops a test that would otherwise hang; the
 * caller's uv_loop_close() then fails with EBUSY and names it.
 */
static inline void ut_loop_drain(uv_loop_t *loop)
{
	for (int i = 0; i < 60000 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
}

#endif
