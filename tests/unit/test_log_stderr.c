/*
 * test_log_stderr.c - the stderr target when stderr is a pipe whose reader
 * stops reading (src/common/log.c): a container runtime's log pipe, a
 * supervisor that hangs.
 *
 *   - before the writer runs, lines are written as ever;
 *   - once it runs, logging never waits: 3,000 lines into a pipe nobody
 *     reads all return (a line that waited would hang this test, and the
 *     suite's timeout would fail it), the pipe and the queue fill, the rest
 *     is dropped and counted;
 *   - when the reader reads again it gets every line that was not dropped,
 *     in the order logged, and "N log lines dropped here" where they were
 *     lost, the Ns adding up to log_dropped(); a last line comes after all;
 *   - the fallback lines of the other targets do not wait either.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

#define NLINES 3000

static int rd = -1;          /* the pipe's read end: the test is its reader */
static int saved_err = -1;   /* the test's own stderr */
static char pending[1 << 16];
static size_t pending_len;

/* The next whole line the reader finds, or NULL when none is there yet
 * (@wait false) ; waits for one when @wait. */
static const char *next_line(bool wait)
{
	static char line[2048];

	for (;;) {
		char *nl = memchr(pending, '\n', pending_len);

		if (nl) {
			size_t n = (size_t)(nl - pending);

			assert_true(n < sizeof(line));
			memcpy(line, pending, n);
			line[n] = '\0';
			memmove(pending, nl + 1, pending_len - n - 1);
			pending_len -= n + 1;
			return line;
		}
		int fl = fcntl(rd, F_GETFL);
		fcntl(rd, F_SETFL, wait ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
		ssize_t k = read(rd, pending + pending_len, sizeof(pending) - pending_len);
		if (k < 0) {
			assert_true(!wait && errno == EAGAIN);
			return NULL;
		}
		assert_true(k > 0);
		pending_len += (size_t)k;
	}
}

/* One line read: a numbered one must be the next not dropped (*@next
 * moves past the dropped ones only through a notice), a notice adds to
 * *@noticed.  True for "the end". */
static bool take(const char *l, int *next, unsigned long *noticed, unsigned long *got)
{
	const char *p;
	unsigned long n;
	int i;

	if ((p = strstr(l, " info: line "))) {
		i = atoi(p + strlen(" info: line "));
		assert_int_equal(i, *next);
		(*next)++;
		(*got)++;
		return false;
	}
	if ((p = strstr(l, " warn: ")) && sscanf(p + 7, "%lu log lines dropped here", &n) == 1) {
		assert_true(n > 0);
		*noticed += n;
		*next += (int)n;  /* the next line kept is the one after them */
		return false;
	}
	if (strstr(l, " info: the end"))
		return true;
	fail_msg("unexpected line: %s", l);
	return false;
}

static void test_reader_stops(void **state)
{
	int p[2];
	int next = 0;
	unsigned long noticed = 0, got = 0, dropped;
	char why[256];
	const char *l;

	(void)state;
	assert_int_equal(pipe(p), 0);
	rd = p[0];
	saved_err = dup(STDERR_FILENO);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	assert_int_equal(log_open("tlog", "n1", LOGL_INFO, "stderr", true, why, sizeof(why)), 0);
	assert_int_equal(log_get_target(), LOGT_STDERR);

	/* Before the writer: written at once, as before. */
	log_info("before");
	l = next_line(true);
	assert_non_null(strstr(l, "tlog["));
	assert_non_null(strstr(l, " node=n1 info: before"));

	assert_int_equal(log_start_writer(), 0);
	assert_int_equal(log_dropped(), 0);
	/* Nobody reads: every call returns. */
	for (int i = 0; i < NLINES; i++)
		log_info("line %d %s", i, "................................................................");
	dropped = log_dropped();
	assert_true(dropped > 0);
	assert_true(dropped < NLINES);
	assert_true(log_queued() > 0);

	/* It reads again: every line kept, in order, the gaps noticed. */
	for (;;) {
		if ((l = next_line(false))) {
			assert_false(take(l, &next, &noticed, &got));
		} else if (log_queued() == 0) {
			break; /* a line written meanwhile comes before "the end" */
		} else {
			/* The writer is writing a line, or has written it and
			 * not yet said so: look again. */
			usleep(1000);
		}
	}
	log_info("the end");
	while (!take(next_line(true), &next, &noticed, &got))
		;
	assert_int_equal(log_dropped(), dropped);
	assert_int_equal(noticed, dropped);
	assert_int_equal(got + dropped, NLINES);
	assert_int_equal(next, NLINES);
	assert_null(next_line(false));

	log_close();
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	close(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
