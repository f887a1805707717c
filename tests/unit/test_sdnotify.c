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
 *     and counts it; with no STATUS= queued the oldest message goes,
 *     never STOPPING=1;
 *   - sdn_close with a receiver that never reads returns (after its
 *     bounded wait) and leaves the thread; later calls do nothing.
 * No test measures time: timeouts are hang guards only.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void on_alarm(int sig)
{
	static const char msg[] = "test_sdnotify: hang guard: the test was stuck "
				  "(a notification waited on the loop?)\n";
	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
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

	/* No STATUS= to drop: the oldest goes, STOPPING=1 (the last) stays. */
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
