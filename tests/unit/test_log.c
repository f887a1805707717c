/*
 * test_log.c - the syslog target (src/common/log.c) against a reader of
 * ours (connect is wrapped here: "/dev/log" becomes the test's socket).
 *
 *   - a line leaves in syslog(3)'s form: "<30>Mmm dd hh:mm:ss IDENT[PID]:
 *     node=N TEXT", warnings as <28>;
 *   - a reader that stops reading while four threads log 1,500 lines each:
 *     logging never waits (the threads finish), lines beyond the queue are
 *     dropped and counted; once the reader reads again it gets every line
 *     that was not dropped, each thread's in the order logged, and
 *     "N log lines dropped here" notices whose Ns add up to log_dropped();
 *   - log_close returns while the reader does not read, counting what it
 *     leaves behind as dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static char reader_path[108];
static int reader = -1;

int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len);

int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	struct sockaddr_un ours = { .sun_family = AF_UNIX };

	if (sa->sa_family != AF_UNIX || strcmp(sun->sun_path, "/dev/log") != 0)
		return __real_connect(fd, sa, len);
	memcpy(ours.sun_path, reader_path, sizeof(reader_path));
	return __real_connect(fd, (struct sockaddr *)&ours, sizeof(ours));
}

/* One datagram, or "" when none waits (@wait false). */
static const char *recv_line(bool wait)
{
	static char buf[2048];
	ssize_t n = recv(reader, buf, sizeof(buf) - 1, wait ? 0 : MSG_DONTWAIT);

	if (n < 0) {
		assert_true(!wait && (errno == EAGAIN || errno == EWOULDBLOCK));
		return "";
	}
	buf[n] = '\0';
	return buf;
}

static int setup(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char why[256];

	(void)state;
	snprintf(reader_path, sizeof(reader_path), "/tmp/sgnfs-test-log-%ld.sock", (long)getpid());
	unlink(reader_path);
	reader = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(reader >= 0);
	memcpy(sun.sun_path, reader_path, sizeof(reader_path));
	assert_int_equal(bind(reader, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(log_open("tlog", "n1", LOGL_INFO, "syslog", true, why, sizeof(why)), 0);
	assert_int_equal(log_get_target(), LOGT_SYSLOG);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(reader);
	unlink(reader_path);
	return 0;
}

static void test_format(void **state)
{
	char want[64];
	const char *l;

	(void)state;
	log_info("group=%s hello %d", "g1", 1);
	l = recv_line(true);
	snprintf(want, sizeof(want), " tlog[%ld]: node=n1 group=g1 hello 1", (long)getpid());
	assert_true(strncmp(l, "<30>", 4) == 0);
	/* "Mmm dd hh:mm:ss" between the priority and the ident */
	assert_int_equal(l[7], ' ');
	assert_int_equal(l[13], ':');
	assert_string_equal(l + 19, want);
	log_warn("careful");
	l = recv_line(true);
	assert_true(strncmp(l, "<28>", 4) == 0 && strstr(l, "node=n1 careful"));
	log_debug("not at info");
	assert_string_equal(recv_line(false), "");
}

#define NTHREADS 4
#define NLINES 1500

static void *logger(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < NLINES; i++)
		log_info("t%d n%d", t, i);
	return NULL;
}

/* A line the reader got while test_reader_behind drains: a logger's
 * (checked for order), a notice (its count added up), or the end mark. */
static bool take_line(const char *l, int next[NTHREADS], unsigned long *got,
		      unsigned long *noticed)
{
	const char *text = strstr(l, "node=n1 ");
	unsigned long n;
	int t, i;

	assert_non_null(text);
	text += 8;
	if (sscanf(text, "t%d n%d", &t, &i) == 2) {
		assert_true(t >= 0 && t < NTHREADS);
		assert_true(i >= next[t]); /* each thread's lines in order */
		next[t] = i + 1;
		(*got)++;
	} else if (sscanf(text, "%lu log lines dropped here", &n) == 1) {
		assert_true(strncmp(l, "<28>", 4) == 0);
		*noticed += n;
	} else if (strcmp(text, "the end") == 0) {
		return true;
	} else {
		fail_msg("unexpected line %s", l);
	}
	return false;
}

static void test_reader_behind(void **state)
{
	pthread_t th[NTHREADS];
	int next[NTHREADS] = { 0 };
	unsigned long got = 0, noticed = 0, dropped;

	(void)state;
	assert_int_equal(log_start_writer(), 0);
	assert_int_equal(log_dropped(), 0);
	/* The reader does not read: every thread still finishes. */
	for (int t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, logger, (void *)(intptr_t)t), 0);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	dropped = log_dropped();
	assert_true(dropped > 0);
	assert_true(dropped < NTHREADS * NLINES);
	/* It reads again, until nothing waits for it; then a last line (it
	 * must come after the count of the dropped ones). */
	for (;;) {
		const char *l = recv_line(false);

		if (*l) {
			assert_false(take_line(l, next, &got, &noticed));
		} else if (log_queued() == 0) {
			break;
		} else {
			usleep(1000); /* the writer is sending the next line */
		}
	}
	log_info("the end");
	while (!take_line(recv_line(true), next, &got, &noticed))
		;
	assert_int_equal(log_dropped(), dropped); /* nothing lost once it read */
	assert_int_equal(noticed, dropped);
	assert_int_equal(got + dropped, NTHREADS * NLINES);
	assert_string_equal(recv_line(false), "");
}

static void test_close_reader_stuck(void **state)
{
	unsigned long before;

	(void)state;
	/* More than the reader's socket (net.unix.max_dgram_qlen datagrams,
	 * and the sender's buffer) and the queue can hold: lines wait. */
	for (int i = 0; i < 3000; i++)
		log_info("unread %d", i);
	before = log_dropped();
	assert_true(log_queued() > 0);
	log_close(); /* returns although nobody reads */
	assert_true(log_dropped() > before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_reader_behind),
		cmocka_unit_test(test_close_reader_stuck),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
