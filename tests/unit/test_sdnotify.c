/*
 * test_sdnotify.c - systemd notifications never stop the event loop
 * (src/daemon/sdnotify.c).  The test is the receiver: NOTIFY_SOCKET names
 * a datagram socket it binds, and reads only when it says so.
 *
 *   - without NOTIFY_SOCKET nothing is sent and no thread is started;
 *   - a receiver that reads gets READY=1 (STATUS=, MAINPID=), STATUS=,
 *     WATCHDOG=1 while WATCHDOG_USEC is set, and STOPPING=1, in order;
 *   - a receiver whose queue is full and who does not read: the loop keeps
 *     running its timers through 600 notifications and watchdog ticks (a
 *     send on the loop would hang here: the hang guard fails the test);
 *     once it reads it gets READY=1 before RELOADING=1 before READY=1
 *     before STOPPING=1, each STATUS= run as its newest, nothing dropped;
 *     sdn_close then joins the thread;
 *   - a full queue drops the oldest STATUS= first, never a RELOADING=1,
 *     and counts it; with no STATUS= queued, the oldest RELOADING=1 with
 *     the READY=1 right after it (READY=1 and nine reloads unread arrive
 *     as READY=1, then RELOADING=1/READY=1 pairs, the newest ones, then
 *     STOPPING=1); with neither, the oldest message, never STOPPING=1;
 *   - pthread_create failing (a link-time wrap, -Wl,--wrap=pthread_create):
 *     nothing reaches the receiver, though it reads; the messages are
 *     queued (the full queue's rules apply), the start is tried at each
 *     notification and watchdog tick, and a line names the errno; once a
 *     start succeeds the pending WATCHDOG=1 then the queued messages
 *     arrive in order.  sdn_close with no thread joins nothing and gives
 *     the queued messages up;
 *   - sdn_close with a receiver that never reads returns (after its
 *     bounded wait) and leaves the thread; later calls do nothing.
 * No test measures time: timeouts are hang guards only.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "daemon/sdnotify.h"
#include "log.h"

#define HANG_GUARD_S 120 /* a loop stuck in a send fails the test here */
#define MAXMSG 64

static char dir[] = "/tmp/sdn-test-XXXXXX";
static struct sockaddr_un rcv_addr;
static int rcv = -1;   /* the receiver (NOTIFY_SOCKET) */
static int junk;       /* datagrams the test queued to fill the receiver */
static int saved_stderr = -1; /* stderr while a test reads the log's lines */

/* pthread_create, wrapped at link time (tests/unit/meson.build): only
 * sdnotify.c creates threads in this program's own code. */
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
static atomic_int create_fail;  /* the error every call returns (0: calls go through) */
static atomic_int create_calls; /* calls made */

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	int rc = atomic_load(&create_fail);

	atomic_fetch_add(&create_calls, 1);
	return rc ? rc : __real_pthread_create(t, a, fn, arg);
}

static void on_alarm(int sig)
{
	static const char msg[] = "test_sdnotify: hang guard: the test was stuck "
				  "(a notification waited on the loop?)\n";
	(void)sig;
	(void)!write(saved_stderr >= 0 ? saved_stderr : STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Threads of this process named @name. */
static int threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char p[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0 &&
		    comm[strlen(name)] == '\n')
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* A fresh receiver at NOTIFY_SOCKET; no watchdog asked for. */
static void receiver_open(void)
{
	static int seq;

	rcv_addr.sun_family = AF_UNIX;
	snprintf(rcv_addr.sun_path, sizeof(rcv_addr.sun_path), "%s/notify%d", dir, seq++);
	rcv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(rcv >= 0);
	assert_int_equal(bind(rcv, (struct sockaddr *)&rcv_addr, sizeof(rcv_addr)), 0);
	struct timeval tv = { .tv_sec = HANG_GUARD_S };
	assert_int_equal(setsockopt(rcv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	setenv("NOTIFY_SOCKET", rcv_addr.sun_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	junk = 0;
}

static void receiver_close(void)
{
	close(rcv);
	rcv = -1;
	unlink(rcv_addr.sun_path);
	unsetenv("NOTIFY_SOCKET");
}

/*
 * Fills the receiver's queue with "JUNK" until a socket that has sent
 * nothing yet cannot send either: the receiver is full
 * (net.unix.max_dgram_qlen, or its buffer), not the sender's own buffer.
 */
static void receiver_fill(void)
{
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int sent = 0;

		assert_true(fd >= 0);
		while (sendto(fd, "JUNK", 4, MSG_DONTWAIT, (struct sockaddr *)&rcv_addr,
			      sizeof(rcv_addr)) == 4)
			sent++;
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		close(fd);
		junk += sent;
		if (!sent)
			return;
	}
}

/* The next datagram, the test's junk first (checked and skipped). */
static void receive(char *buf, size_t sz)
{
	for (;;) {
		ssize_t k = recv(rcv, buf, sz - 1, 0);

		assert_true(k > 0); /* -1: the hang guard's receive timeout */
		buf[k] = '\0';
		if (strcmp(buf, "JUNK") != 0)
			return;
		assert_true(junk-- > 0);
	}
}

/* Every message up to STOPPING=1, WATCHDOG=1 left out; their number. */
static int receive_until_stopping(char msgs[][600], int max, int *dogs)
{
	int n = 0;

	*dogs = 0;
	for (;;) {
		char buf[600];

		receive(buf, sizeof(buf));
		if (strcmp(buf, "WATCHDOG=1") == 0) {
			++*dogs;
			continue;
		}
		assert_true(n < max);
		snprintf(msgs[n++], 600, "%s", buf);
		if (strcmp(buf, "STOPPING=1") == 0)
			return n;
	}
}

static void ready_text(char *buf, size_t sz, const char *status)
{
	snprintf(buf, sz, "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
}

/* After a test that queues with no sender or fills the receiver: starts
 * go through again, and a failure half way leaves no queue or receiver
 * to the next test (a sender still waiting on a full receiver is
 * abandoned by sdn_close; the next test's first check says so). */
static int reset_teardown(void **state)
{
	(void)state;
	atomic_store(&create_fail, 0);
	alarm(0);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
	sdn_close();
	if (rcv >= 0)
		receiver_close();
	return 0;
}

/* ---- no NOTIFY_SOCKET ----------------------------------------------- */

static void test_no_socket(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	sdn_ready("up");
	sdn_status("s");
	sdn_reloading();
	sdn_stopping();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	sdn_close();
	assert_int_equal(sdn_dropped(), 0);
}

/* ---- a receiver that reads ------------------------------------------ */

struct live {
	uv_poll_t poll;
	int dogs;        /* WATCHDOG=1 received since READY=1 */
	int step;        /* 0 before READY=1, 1 READY=1 in, 2 STATUS= asked, 3 STOPPING=1 asked, 4 done */
	char ready[600];
};

static void live_on_read(uv_poll_t *p, int status, int events)
{
	struct live *l = p->data;
	char buf[600];
	ssize_t k;

	(void)events;
	assert_int_equal(status, 0);
	while ((k = recv(rcv, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[k] = '\0';
		if (strcmp(buf, "WATCHDOG=1") == 0) {
			/* A ping may overtake READY=1 (one pending at most). */
			l->dogs += l->step > 0;
		} else if (l->step == 0) {
			snprintf(l->ready, sizeof(l->ready), "%s", buf);
			l->step = 1;
		} else if (l->step == 2) {
			assert_string_equal(buf, "STATUS=later");
			sdn_watchdog_stop();
			sdn_stopping();
			l->step = 3;
		} else {
			assert_int_equal(l->step, 3);
			assert_string_equal(buf, "STOPPING=1");
			l->step = 4;
		}
	}
	/* Three pings after READY=1, then a STATUS=, then STOPPING=1. */
	if (l->step == 1 && l->dogs >= 3) {
		sdn_status("later");
		l->step = 2;
	}
	if (l->step == 4)
		uv_close((uv_handle_t *)p, NULL);
}

static void test_reading_receiver(void **state)
{
	uv_loop_t loop;
	struct live l = { .step = 0 };
	char want[600];

	(void)state;
	receiver_open();
	setenv("WATCHDOG_USEC", "20000", 1); /* a ping every 10 ms */
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(sdn_watchdog_start(&loop), 0);
	uv_poll_init(&loop, &l.poll, rcv);
	l.poll.data = &l;
	uv_poll_start(&l.poll, UV_READABLE, live_on_read);
	sdn_ready("up");
	assert_int_equal(threads_named("sgnfs-notify"), 1);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	ready_text(want, sizeof(want), "up");
	assert_string_equal(l.ready, want);
	assert_int_equal(l.step, 4);
	assert_true(l.dogs >= 3);
	sdn_close();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	assert_int_equal(sdn_dropped(), 0);
	receiver_close();
}

/* ---- a receiver that does not read ----------------------------------- */

struct stuck {
	uv_timer_t tick;
	int ticks;
};

/* 600 turns of the loop, each asking for a notification; every ms a
 * watchdog tick too.  The loop must get through them all. */
static void stuck_on_tick(uv_timer_t *t)
{
	struct stuck *s = t->data;
	char st[32];
	int k = ++s->ticks;

	if (k == 1) {
		sdn_ready("one");
	} else if (k <= 300) {
		snprintf(st, sizeof(st), "a%d", k);
		sdn_status(st);
	} else if (k == 301) {
		sdn_reloading();
	} else if (k == 302) {
		sdn_ready("two");
	} else if (k <= 600) {
		snprintf(st, sizeof(st), "b%d", k);
		sdn_status(st);
	} else {
		sdn_watchdog_stop();
		sdn_stopping();
		uv_close((uv_handle_t *)t, NULL);
	}
}

static void test_stuck_receiver(void **state)
{
	uv_loop_t loop;
	struct stuck s = { .ticks = 0 };
	char msgs[MAXMSG][600], want[6][600];
	int n, dogs;

	(void)state;
	receiver_open();
	receiver_fill();
	assert_true(junk > 0);
	setenv("WATCHDOG_USEC", "2000", 1); /* a tick every ms */
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(sdn_watchdog_start(&loop), 0);
	uv_timer_init(&loop, &s.tick);
	s.tick.data = &s;
	uv_timer_start(&s.tick, stuck_on_tick, 1, 1);
	alarm(HANG_GUARD_S);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	alarm(0);
	assert_int_equal(s.ticks, 601);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(threads_named("sgnfs-notify"), 1);

	/* Now the receiver reads. */
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	ready_text(want[0], sizeof(want[0]), "one");
	snprintf(want[1], sizeof(want[1]), "STATUS=a300");
	snprintf(want[2], sizeof(want[2]), "RELOADING=1");
	ready_text(want[3], sizeof(want[3]), "two");
	snprintf(want[4], sizeof(want[4]), "STATUS=b600");
	snprintf(want[5], sizeof(want[5]), "STOPPING=1");
	for (int i = 0; i < n && i < 6; i++)
		assert_string_equal(msgs[i], want[i]);
	assert_int_equal(n, 6);
	assert_true(dogs <= 2); /* one being sent, one pending at most */
	assert_int_equal(junk, 0);
	assert_int_equal(sdn_dropped(), 0);
	sdn_close();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_close();
}

/* ---- a full queue ----------------------------------------------------- */

static void test_full_queue(void **state)
{
	char msgs[MAXMSG][600], want[MAXMSG][600];
	unsigned long before = sdn_dropped(), dropped;
	int n, w = 0, dogs;

	(void)state;
	receiver_open();
	receiver_fill();
	/* STATUS= and RELOADING=1 in turn: no two STATUS= meet, so each takes
	 * a place, and 20 of them with READY=1 and STOPPING=1 overflow. */
	sdn_ready("r");
	for (int i = 0; i < 10; i++) {
		char st[16];
		snprintf(st, sizeof(st), "s%d", i);
		sdn_status(st);
		sdn_reloading();
	}
	sdn_stopping();
	dropped = sdn_dropped() - before;
	assert_true(dropped >= 1 && dropped <= 10);
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	/* What was asked, less the oldest STATUS= lines. */
	ready_text(want[w++], sizeof(want[0]), "r");
	for (int i = 0; i < 10; i++) {
		if ((unsigned long)i >= dropped)
			snprintf(want[w++], sizeof(want[0]), "STATUS=s%d", i);
		snprintf(want[w++], sizeof(want[0]), "RELOADING=1");
	}
	snprintf(want[w++], sizeof(want[0]), "STOPPING=1");
	for (int i = 0; i < n && i < w; i++)
		assert_string_equal(msgs[i], want[i]);
	assert_int_equal(n, w);
	assert_int_equal(dogs, 0);
	sdn_close();

	/* No STATUS= to drop and no RELOADING=1 followed by READY=1 (not an
	 * order sgnfsd asks for): the oldest goes, STOPPING=1 (the last)
	 * stays. */
	receiver_fill();
	before = sdn_dropped();
	sdn_ready("r");
	for (int i = 0; i < 30; i++)
		sdn_reloading();
	sdn_stopping();
	dropped = sdn_dropped() - before;
	assert_true(dropped >= 15);
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	assert_int_equal((unsigned long)n, 32 - dropped);
	for (int i = 0; i < n - 1; i++)
		if (strcmp(msgs[i], "RELOADING=1") != 0)
			assert_int_equal(i, 0); /* READY=1, when the sender held it */
	assert_string_equal(msgs[n - 1], "STOPPING=1");
	sdn_close();
	receiver_close();
}

/* READY=1 "r0", then @cycles reloads: RELOADING=1, READY=1 "rK". */
static void push_reloads(int cycles)
{
	char st[16];

	sdn_ready("r0");
	for (int k = 1; k <= cycles; k++) {
		snprintf(st, sizeof(st), "r%d", k);
		sdn_reloading();
		sdn_ready(st);
	}
}

/* @msgs (@n, the last STOPPING=1) are READY=1 "r0", the reloads @first
 * to @last (RELOADING=1, READY=1 "rK" each), STOPPING=1: the oldest
 * reloads gone whole. */
static void assert_reloads(char msgs[][600], int n, int first, int last)
{
	char want[600], st[16];
	int w = 0;

	ready_text(want, sizeof(want), "r0");
	assert_true(n > w);
	assert_string_equal(msgs[w++], want);
	for (int k = first; k <= last; k++) {
		snprintf(st, sizeof(st), "r%d", k);
		ready_text(want, sizeof(want), st);
		assert_true(n > w + 1);
		assert_string_equal(msgs[w++], "RELOADING=1");
		assert_string_equal(msgs[w++], want);
	}
	assert_int_equal(n, w + 1);
	assert_string_equal(msgs[w], "STOPPING=1");
}

/* No STATUS= queued: READY=1 and nine reloads the receiver does not read.
 * 20 messages with STOPPING=1; the queue holds 16 (the sender may hold
 * READY=1 "r0" too, in a send that waits) and drops go by two, so the two
 * oldest reloads go, each whole. */
static void test_full_queue_reloads(void **state)
{
	char msgs[MAXMSG][600];
	unsigned long before = sdn_dropped();
	int n, dogs;

	(void)state;
	receiver_open();
	receiver_fill();
	push_reloads(9);
	sdn_stopping();
	assert_int_equal(sdn_dropped() - before, 4);
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	assert_int_equal(n, 20 - 4);
	assert_reloads(msgs, n, 3, 9);
	assert_int_equal(dogs, 0);
	assert_int_equal(junk, 0);
	sdn_close();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_close();
}

/* ---- the sender cannot be started --------------------------------------- */

/* stderr (the log's lines: no writer thread here) into a memory file. */
static int stderr_begin(void)
{
	int fd = memfd_create("test_sdnotify-stderr", MFD_CLOEXEC);

	assert_true(fd >= 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	return fd;
}

/* stderr back; what was written to it since stderr_begin into @buf. */
static void stderr_end(int fd, char *buf, size_t sz)
{
	ssize_t k;

	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	k = pread(fd, buf, sz - 1, 0);
	assert_true(k >= 0);
	buf[k] = '\0';
	close(fd);
	(void)!write(STDERR_FILENO, buf, (size_t)k); /* the test's log keeps them */
}

/* Nothing reached the receiver (it would be there already: it is not
 * full, and a send returns once its datagram is queued). */
static void assert_received_nothing(void)
{
	char buf[600];

	assert_int_equal(recv(rcv, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Ticks until create_calls reaches @calls; at most CALLS_WAIT_TICKS (the
 * watchdog's timer has the same period and an earlier start, so it fires
 * in every turn this one does: reaching the bound is a failure, not a
 * slow machine). */
#define CALLS_WAIT_TICKS 1000
struct calls_wait {
	uv_timer_t t;
	int calls;
	int ticks;
};

static void calls_wait_on_tick(uv_timer_t *t)
{
	struct calls_wait *w = t->data;

	if (atomic_load(&create_calls) < w->calls && ++w->ticks < CALLS_WAIT_TICKS)
		return;
	sdn_watchdog_stop();
	uv_close((uv_handle_t *)t, NULL);
}

static void test_start_fails(void **state)
{
	char msgs[MAXMSG][600], buf[600], log[16384], want[200];
	unsigned long before = sdn_dropped();
	struct calls_wait w;
	uv_loop_t loop;
	int calls, n, dogs, err;

	(void)state;
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_open(); /* not filled, and the test reads only at the end */
	setenv("WATCHDOG_USEC", "2000", 1); /* a tick every ms */
	err = stderr_begin();
	atomic_store(&create_fail, EAGAIN);
	calls = atomic_load(&create_calls);
	alarm(HANG_GUARD_S); /* a send here would wait once the receiver is full */
	sdn_ready("first");
	assert_received_nothing();
	sdn_close(); /* gives "first" up: no sender */
	push_reloads(9);
	assert_int_equal(atomic_load(&create_calls) - calls, 20); /* a try each */
	/* 19 for 16 places, no sender: the two oldest reloads went. */
	assert_int_equal(sdn_dropped() - before, 4);

	/* Watchdog ticks raise the flag and try again, sending nothing. */
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(sdn_watchdog_start(&loop), 0);
	uv_timer_init(&loop, &w.t);
	w.t.data = &w;
	w.calls = atomic_load(&create_calls) + 3;
	w.ticks = 0;
	uv_timer_start(&w.t, calls_wait_on_tick, 1, 1);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	alarm(0);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_true(atomic_load(&create_calls) >= w.calls);
	stderr_end(err, log, sizeof(log));
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	assert_received_nothing();
	snprintf(want, sizeof(want), "systemd notification thread not started (%s)",
		 strerror(EAGAIN));
	assert_non_null(strstr(log, want));

	/* A start that succeeds (at a notification): the pending ping
	 * first, then what was queued, in order. */
	atomic_store(&create_fail, 0);
	sdn_stopping();
	assert_int_equal(threads_named("sgnfs-notify"), 1);
	receive(buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	assert_reloads(msgs, n, 3, 9);
	assert_int_equal(dogs, 0);
	assert_int_equal(sdn_dropped() - before, 4);
	sdn_close();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_close();
}

/* sdn_close with no sender: nothing to join; the queued messages are
 * given up (one line), not sent by a later sender. */
static void test_close_never_started(void **state)
{
	char msgs[MAXMSG][600], log[16384], want[600];
	int n, dogs, err;

	(void)state;
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_open();
	atomic_store(&create_fail, ENOMEM);
	err = stderr_begin();
	sdn_ready("lost");
	sdn_stopping();
	alarm(HANG_GUARD_S);
	sdn_close();
	alarm(0);
	stderr_end(err, log, sizeof(log));
	assert_non_null(strstr(log, "2 messages not sent at exit (the notification thread "
				    "could not be started)"));
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	assert_received_nothing();

	atomic_store(&create_fail, 0);
	sdn_ready("again");
	sdn_stopping();
	n = receive_until_stopping(msgs, MAXMSG, &dogs);
	assert_int_equal(n, 2);
	ready_text(want, sizeof(want), "again");
	assert_string_equal(msgs[0], want);
	sdn_close();
	assert_int_equal(threads_named("sgnfs-notify"), 0);
	receiver_close();
}

/* ---- exit with a receiver that never reads ---------------------------- */

static void test_close_abandons(void **state)
{
	unsigned long before = sdn_dropped();

	(void)state;
	receiver_open();
	receiver_fill();
	sdn_ready("never read");
	sdn_stopping();
	alarm(HANG_GUARD_S);
	sdn_close(); /* waits its bounded while, then leaves the thread */
	alarm(0);
	assert_int_equal(threads_named("sgnfs-notify"), 1);
	sdn_status("after close");
	sdn_close();
	assert_int_equal(sdn_dropped(), before);
	/* The receiver stays open: the thread is inside a send to it until
	 * the process ends. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_reading_receiver),
		cmocka_unit_test(test_stuck_receiver),
		cmocka_unit_test(test_full_queue),
		cmocka_unit_test_teardown(test_full_queue_reloads, reset_teardown),
		cmocka_unit_test_teardown(test_start_fails, reset_teardown),
		cmocka_unit_test_teardown(test_close_never_started, reset_teardown),
		cmocka_unit_test(test_close_abandons), /* last: it leaves the thread */
	};
	int rc;

	signal(SIGALRM, on_alarm);
	log_init("test_sdnotify", LOGL_INFO, false);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(rcv_addr.sun_path);
	rmdir(dir);
	return rc;
}
