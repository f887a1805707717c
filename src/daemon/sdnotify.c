/*
 * sdnotify.c - see sdnotify.h.
 *
 * Nothing here waits for systemd on the event loop.  sd_notify(3) sends a
 * datagram on NOTIFY_SOCKET with a blocking sendmsg: when the receiver
 * (PID 1, or whatever NOTIFY_SOCKET names) stops reading, its queue fills
 * (net.unix.max_dgram_qlen datagrams: 10 on Debian, 512 elsewhere) and
 * the next send waits until it reads again, however long.  Measured with
 * libsystemd 252: the 12th sd_notify to a bound socket nobody read never
 * returned.  On the loop that would stop every group of the node for a
 * notification.  So the loop only queues a message (a copy, under a
 * mutex), and one thread of ours, the sender ("sgnfs-notify"), sends them
 * in order, waiting as long as the receiver needs.  It is started at the
 * first notification, and only where NOTIFY_SOCKET is set.
 *
 * When the sender cannot be started (pthread_create fails: a thread limit,
 * no memory) the loop still never sends: the message is queued as if it
 * ran (the queue's rules below apply, drops counted), the start is tried
 * again at the next notification and at each watchdog tick, and the
 * failure is logged with its errno at most once per SDN_DROP_LOG_S
 * seconds.  Once a try succeeds the sender sends what waits, in order.
 *
 * The queue is small and fixed (SDN_QLEN).  A STATUS= that finds a STATUS=
 * last in the queue replaces it: only the newest unsent one matters, and
 * the order of the others is kept.  WATCHDOG=1 is a flag, one pending at
 * most, sent before the next queued message (a ping has no place in the
 * order).  READY=1, RELOADING=1 and STOPPING=1 are never dropped while
 * there is room.  When a message finds the queue full:
 *   1. the oldest STATUS= goes;
 *   2. with none queued, the oldest RELOADING=1 immediately followed by a
 *      READY=1 goes with that READY=1 (two dropped): a whole reload the
 *      receiver never saw, so its view is the same without both, whereas
 *      one of them alone would leave it wrong (RELOADING=1 never followed
 *      by READY=1, or READY=1 twice).  A queue full without a STATUS= is
 *      READY=1, RELOADING=1, READY=1, ...: a receiver that missed some
 *      eight reloads, so such a pair is there;
 *   3. with no such pair either (our messages do not come in such an
 *      order), the oldest message that is not STOPPING=1 (the last).
 * Drops are counted (sdn_dropped) and logged, one line at a time at most
 * every SDN_DROP_LOG_S seconds.
 *
 * The systemd watchdog still watches the loop: its timer runs on the loop
 * and only raises the flag, so a stuck loop stops the pings; a stuck
 * receiver stops them too, which is the receiver's problem, not the
 * loop's.  At exit sdn_close gives the sender SDN_CLOSE_S seconds to send
 * what is queued (STOPPING=1 among it) and joins it; a sender still
 * inside a send then is left to the process's end (it touches only this
 * file's static state) and one line says what was not sent.
 */
#include "daemon/sdnotify.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#ifdef HAVE_LIBSYSTEMD
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "tbucket.h"
#include "thprio.h"

#define SDN_QLEN 16        /* messages waiting for a receiver that is behind */
#define SDN_MSG_MAX 512    /* one message, as sd_notify gets it */
#define SDN_CLOSE_S 2      /* sdn_close's wait for the sender */
#define SDN_DROP_LOG_S 10  /* at most one drop line per this many seconds */

enum sdn_kind { SDN_READY, SDN_STATUS, SDN_RELOADING, SDN_STOPPING };

struct sdn_msg {
	enum sdn_kind kind;
	char text[SDN_MSG_MAX];
};

/* The sender's queue; everything under @mu. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t more;  /* the sender: a message, a ping, or stop */
	pthread_cond_t idle;  /* sdn_close: all sent */
	struct sdn_msg ring[SDN_QLEN];
	unsigned head, len;
	bool dog;             /* WATCHDOG=1 pending */
	bool busy;            /* the sender is inside a send */
	bool started;         /* the sender runs (and is not joined yet) */
	bool stop;            /* sdn_close: send what is queued, then end */
	unsigned long dropped;     /* messages dropped since start */
	unsigned long unlogged;    /* ... of which no line has spoken yet */
	struct tb_bucket drop_tb;  /* the drop line's rate */
	struct tb_bucket start_tb; /* the "not started" line's rate */
	pthread_t thread;
} sdn_q = { .mu = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER,
	    .idle = PTHREAD_COND_INITIALIZER };

/* Lines decided under the mutex, logged once it is released (log_msg may
 * take its own); zero: nothing to say. */
struct sdn_say {
	int start_rc;              /* -errno: the sender could not be started */
	unsigned long start_more;  /* ... further failures no line spoke of */
	unsigned long drop_n;      /* dropped since the last drop line */
	unsigned long drop_total;  /* ... and since start */
};

static uv_timer_t sdn_timer;
static bool sdn_timer_on;

static uint64_t sdn_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* One message to NOTIFY_SOCKET, waiting as long as the receiver does.
 * Only the sender calls it, so the failure line's bucket needs no lock:
 * a receiver that refuses every message gets a line per
 * SDN_DROP_LOG_S seconds, saying how many more failed. */
static void sdn_send(const char *msg)
{
	static struct tb_bucket fail_tb;
	int rc = sd_notify(0, msg);

	if (rc < 0 && tb_take(&fail_tb, 1, 1.0 / SDN_DROP_LOG_S, sdn_now_ms()))
		log_warn("systemd notification failed: %s (%llu more failed since the last "
			 "such line)", strerror(-rc),
			 (unsigned long long)tb_refused_take(&fail_tb));
}

/* Messages waiting, and the one being sent. */
static unsigned sdn_left_locked(void)
{
	return sdn_q.len + (sdn_q.busy ? 1u : 0u);
}

/* The queue's entry @i places after the head. */
static struct sdn_msg *sdn_at_locked(unsigned i)
{
	return &sdn_q.ring[(sdn_q.head + i) % SDN_QLEN];
}

static void *sdn_sender(void *arg)
{
	static struct sdn_msg m; /* the message being sent, out of the ring */

	(void)arg;
	(void)thp_helper_enter();
	pthread_mutex_lock(&sdn_q.mu);
	for (;;) {
		while (!sdn_q.len && !sdn_q.dog && !sdn_q.stop)
			pthread_cond_wait(&sdn_q.more, &sdn_q.mu);
		sdn_q.busy = true;
		if (sdn_q.dog && !sdn_q.stop) {
			sdn_q.dog = false;
			pthread_mutex_unlock(&sdn_q.mu);
			/* As before the sender: a ping that fails is not news. */
			(void)sd_notify(0, "WATCHDOG=1");
		} else if (sdn_q.len) {
			m = *sdn_at_locked(0);
			sdn_q.head = (sdn_q.head + 1) % SDN_QLEN;
			sdn_q.len--;
			pthread_mutex_unlock(&sdn_q.mu);
			sdn_send(m.text);
		} else {
			break; /* stop, and nothing left */
		}
		pthread_mutex_lock(&sdn_q.mu);
		sdn_q.busy = false;
		if (!sdn_q.len)
			pthread_cond_broadcast(&sdn_q.idle);
	}
	sdn_q.busy = false;
	pthread_cond_broadcast(&sdn_q.idle);
	pthread_mutex_unlock(&sdn_q.mu);
	return NULL;
}

/*
 * Starts the sender unless it runs: 0, or -errno when it cannot be started
 * (what is queued waits for the next try; the caller never sends itself).
 * The failure goes to @say at most once per SDN_DROP_LOG_S seconds.
 */
static int sdn_start_locked(struct sdn_say *say)
{
	int rc;

	if (sdn_q.started)
		return 0;
	rc = -pthread_create(&sdn_q.thread, NULL, sdn_sender, NULL);
	if (rc == 0) {
		sdn_q.started = true;
		pthread_setname_np(sdn_q.thread, "sgnfs-notify");
		return 0;
	}
	if (tb_take(&sdn_q.start_tb, 1, 1.0 / SDN_DROP_LOG_S, sdn_now_ms())) {
		say->start_rc = rc;
		say->start_more = tb_refused_take(&sdn_q.start_tb);
	}
	return rc;
}

/* Releases the mutex, then logs what @say holds. */
static void sdn_unlock_say(const struct sdn_say *say)
{
	unsigned waiting = sdn_q.len;

	pthread_mutex_unlock(&sdn_q.mu);
	if (say->start_rc)
		log_warn("systemd notification thread not started (%s): %u messages wait for "
			 "it, tried again at the next notification or watchdog tick (%lu more "
			 "failures since the last such line)", strerror(-say->start_rc), waiting,
			 say->start_more);
	if (say->drop_n)
		log_warn("systemd notification queue full (%u waiting: the receiver at "
			 "NOTIFY_SOCKET is not reading): %lu dropped, the oldest STATUS first, "
			 "else the oldest RELOADING with its READY (%lu since start)", SDN_QLEN,
			 say->drop_n, say->drop_total);
}

/* Removes @n entries from @i places after the head on (order kept). */
static void sdn_remove_locked(unsigned i, unsigned n)
{
	for (; i + n < sdn_q.len; i++)
		*sdn_at_locked(i) = *sdn_at_locked(i + n);
	sdn_q.len -= n;
}

/* Makes room in the full queue as the file's header says; how many
 * messages went (2 for a reload cycle). */
static unsigned sdn_make_room_locked(void)
{
	unsigned i;

	for (i = 0; i < sdn_q.len; i++)
		if (sdn_at_locked(i)->kind == SDN_STATUS) {
			sdn_remove_locked(i, 1);
			return 1;
		}
	for (i = 0; i + 1 < sdn_q.len; i++)
		if (sdn_at_locked(i)->kind == SDN_RELOADING &&
		    sdn_at_locked(i + 1)->kind == SDN_READY) {
			sdn_remove_locked(i, 2);
			return 2;
		}
	for (i = 0; i < sdn_q.len && sdn_at_locked(i)->kind == SDN_STOPPING; i++)
		;
	sdn_remove_locked(i < sdn_q.len ? i : 0, 1);
	return 1;
}

/*
 * @kind with @text for the sender: after everything queued before it,
 * merged into a STATUS= queued last when it is one too, making room when
 * the queue is full (the file's header says what goes).  Queued even when
 * the sender cannot be started (it is tried again here).  Any thread.
 */
static void sdn_push(enum sdn_kind kind, const char *text)
{
	struct sdn_say say = { 0 };
	struct sdn_msg *slot;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	pthread_mutex_lock(&sdn_q.mu);
	if (sdn_q.stop) {
		/* sdn_close was called (its sender abandoned, or closing). */
		pthread_mutex_unlock(&sdn_q.mu);
		return;
	}
	slot = sdn_q.len ? sdn_at_locked(sdn_q.len - 1) : NULL;
	if (!(kind == SDN_STATUS && slot && slot->kind == SDN_STATUS)) {
		if (sdn_q.len == SDN_QLEN) {
			unsigned n = sdn_make_room_locked();

			sdn_q.dropped += n;
			sdn_q.unlogged += n;
			if (tb_take(&sdn_q.drop_tb, 1, 1.0 / SDN_DROP_LOG_S, sdn_now_ms())) {
				say.drop_n = sdn_q.unlogged;
				say.drop_total = sdn_q.dropped;
				sdn_q.unlogged = 0;
			}
		}
		slot = sdn_at_locked(sdn_q.len);
		sdn_q.len++;
	}
	slot->kind = kind;
	snprintf(slot->text, sizeof(slot->text), "%s", text);
	(void)sdn_start_locked(&say);
	pthread_cond_signal(&sdn_q.more);
	sdn_unlock_say(&say);
}

void sdn_ready(const char *status)
{
	char msg[SDN_MSG_MAX];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
	sdn_push(SDN_READY, msg);
}

void sdn_status(const char *status)
{
	char msg[SDN_MSG_MAX];

	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	sdn_push(SDN_STATUS, msg);
}

void sdn_reloading(void)
{
	sdn_push(SDN_RELOADING, "RELOADING=1");
}

void sdn_stopping(void)
{
	sdn_push(SDN_STOPPING, "STOPPING=1");
}

/* On the loop: a loop that is stuck raises no flag, and systemd hears of
 * it; the send is the sender's.  Without a sender the flag waits for it
 * (its first send, once a start succeeds; this tick tries again). */
static void sdn_feed(uv_timer_t *t)
{
	struct sdn_say say = { 0 };

	(void)t;
	if (!getenv("NOTIFY_SOCKET"))
		return;
	pthread_mutex_lock(&sdn_q.mu);
	if (!sdn_q.stop) {
		sdn_q.dog = true;
		(void)sdn_start_locked(&say);
		pthread_cond_signal(&sdn_q.more);
	}
	sdn_unlock_say(&say);
}

int sdn_watchdog_start(uv_loop_t *loop)
{
	uint64_t usec = 0;
	int rc = sd_watchdog_enabled(0, &usec);

	if (rc <= 0)
		return rc;
	/* Twice per interval, as sd_watchdog_enabled(3) advises. */
	uint64_t ms = usec / 2000 ? usec / 2000 : 1;
	uv_timer_init(loop, &sdn_timer);
	uv_timer_start(&sdn_timer, sdn_feed, ms, ms);
	uv_unref((uv_handle_t *)&sdn_timer);
	sdn_timer_on = true;
	log_info("systemd watchdog: fed every %llu ms", (unsigned long long)ms);
	return 0;
}

void sdn_watchdog_stop(void)
{
	if (!sdn_timer_on)
		return;
	sdn_timer_on = false;
	uv_close((uv_handle_t *)&sdn_timer, NULL);
}

void sdn_close(void)
{
	struct timespec until;
	unsigned left;
	bool join;

	pthread_mutex_lock(&sdn_q.mu);
	if (sdn_q.stop) {
		pthread_mutex_unlock(&sdn_q.mu);
		return;
	}
	if (!sdn_q.started) {
		/* No sender could be started (or none was needed): nothing to
		 * join; what waited for one is given up, and a later
		 * notification tries again from an empty queue. */
		left = sdn_q.len;
		sdn_q.len = 0;
		sdn_q.dog = false;
		pthread_mutex_unlock(&sdn_q.mu);
		if (left)
			log_warn("systemd notification: %u messages not sent at exit (the "
				 "notification thread could not be started)", left);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &until); /* a clock step cannot stretch it */
	until.tv_sec += SDN_CLOSE_S;
	sdn_q.stop = true;
	sdn_q.dog = false;
	pthread_cond_broadcast(&sdn_q.more);
	while (sdn_left_locked() &&
	       pthread_cond_clockwait(&sdn_q.idle, &sdn_q.mu, CLOCK_MONOTONIC, &until) != ETIMEDOUT)
		;
	left = sdn_left_locked();
	join = !left;
	pthread_mutex_unlock(&sdn_q.mu);
	if (join) {
		pthread_join(sdn_q.thread, NULL);
		pthread_mutex_lock(&sdn_q.mu);
		sdn_q.started = false;
		sdn_q.stop = false; /* a later notification starts a sender again */
		pthread_mutex_unlock(&sdn_q.mu);
		return;
	}
	/* The sender is inside a send that may never return: the process
	 * ends around it; it touches only sdn_q, which outlives it. */
	pthread_detach(sdn_q.thread);
	log_warn("systemd notification: %u messages not sent at exit (the receiver at "
		 "NOTIFY_SOCKET did not read them within %d s)", left, SDN_CLOSE_S);
}

unsigned long sdn_dropped(void)
{
	unsigned long n;

	pthread_mutex_lock(&sdn_q.mu);
	n = sdn_q.dropped;
	pthread_mutex_unlock(&sdn_q.mu);
	return n;
}

bool sdn_enabled(void)
{
	return getenv("NOTIFY_SOCKET") != NULL;
}

int sdn_available(void)
{
	return 1;
}

#else /* !HAVE_LIBSYSTEMD */

void sdn_ready(const char *status) { (void)status; }
void sdn_status(const char *status) { (void)status; }
void sdn_reloading(void) {}
void sdn_stopping(void) {}
int sdn_watchdog_start(uv_loop_t *loop) { (void)loop; return 0; }
void sdn_watchdog_stop(void) {}
void sdn_close(void) {}
unsigned long sdn_dropped(void) { return 0; }
bool sdn_enabled(void) { return false; }
int sdn_available(void) { return 0; }

#endif
