/*
 * log.c - see log.h.
 *
 * Targets: stderr and a file get one line per event,
 *   2026-12-04T07:30:01.123Z sgnfsd[1234] node=a info: group=g1 ...
 * (UTC, ISO 8601, milliseconds); syslog gets the message with the node in
 * front; the journal gets the message plus fields (PRIORITY,
 * SYSLOG_IDENTIFIER, SGNFS_NODE, and SGNFS_GROUP / SGNFS_CLIENT taken from
 * the leading "group=G client=C" of our own event lines).
 *
 * Nothing is dropped without a word: a target that cannot be used at
 * open is replaced by stderr and the caller is told why (it logs that as
 * the first line); a line the file or the journal refuses at run time goes
 * to stderr instead, and the file gets a count of what it missed once it
 * accepts lines again.
 *
 * Nothing waits for a reader.  Syslog and the journal are other processes
 * reading a datagram socket whose queue holds a few datagrams
 * (net.unix.max_dgram_qlen, 10 on Debian); a daemon that stalls (a full
 * disk under rsyslog, a journald being restarted) would block a plain
 * send, and the event loop with it, until the watchdog ends the node and
 * every group fails over because of a log line.  So a line for those two
 * is sent without waiting (syslog: our own datagram socket on /dev/log,
 * MSG_DONTWAIT), and one that cannot be (the receiver is behind, or the
 * journal, whose library has no such send) goes into a bounded queue
 * that one thread of ours, the writer, delivers in order, waiting as long
 * as the receiver needs.  A line that finds the queue full is dropped and
 * counted (log_dropped: status, metrics); stderr hears of the first drop
 * of a burst, and the receiver gets "N log lines dropped" where they were
 * lost once it reads again.  The file is written directly: a local file
 * does not stop reading, and its last line before a crash is the one most
 * wanted (docs/operations.md).  So is stderr when it is a terminal or a
 * file; when it is a pipe or a socket (a container runtime's log pipe, a
 * supervisor, systemd's journal stream) it has a reader that can stall
 * like syslog's, and gets the same treatment once the writer runs: a line
 * is written without waiting (a non-blocking descriptor of its own for a
 * pipe, MSG_DONTWAIT for a socket) while nothing is queued before it, else
 * queued for the writer, which waits.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "thprio.h"

#ifdef HAVE_LIBSYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION 1 /* the line is ours, log.c is no news */
#include <systemd/sd-journal.h>
#endif

static enum log_level log_level_cur = LOGL_INFO;
static enum log_target log_target_cur = LOGT_STDERR;
static const char *log_ident = "sgnfs";
static char log_node[64];
static char log_path[4096];      /* LOGT_FILE */
static int log_fd = -1;          /* LOGT_FILE, owned */
static unsigned long log_missed; /* lines the file refused since the last good write */

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };
static const char *const log_target_names[] = { "stderr", "syslog", "journal", "file" };
static const int log_syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

#define LOG_LINE_MAX 1024 /* one event line, as formatted by log_msg */
#define LOG_QLEN 1024     /* lines the writer may hold for a receiver that is behind */
#define LOG_DATAGRAM_MAX (LOG_LINE_MAX + 160)

/* A line waiting for the writer; @dropped > 0 makes it the notice that
 * so many lines were dropped at this place instead (no @text). */
struct log_rec {
	struct timespec when;
	enum log_level level;
	unsigned long dropped;
	char text[LOG_LINE_MAX];
};

/*
 * The writer's queue (syslog and the journal).  Everything under @mu.
 * The syslog socket is used by whoever delivers: a direct send only while
 * the writer holds no line (!busy and the queue empty), so lines leave in
 * the order they were logged; the writer, while @busy, owns it (it may
 * reconnect).
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t more; /* the writer: a line, or stop */
	pthread_cond_t idle; /* log_close: all delivered */
	struct log_rec ring[LOG_QLEN];
	unsigned head, len;
	bool busy;             /* the writer is delivering a line it took */
	bool started;          /* the writer runs (log_start_writer) */
	bool stop;             /* log_close: deliver what is queued, then end */
	unsigned long burst;   /* lines dropped since the last notice was queued */
	pthread_t thread;
} log_q = { .mu = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER,
	    .idle = PTHREAD_COND_INITIALIZER };
static int log_sock = -1;           /* LOGT_SYSLOG: connected to /dev/log, owned */
/* LOGT_STDERR once the writer runs, when stderr is a pipe or a socket
 * (log_start_writer): how a line goes without waiting.  Else PLAIN: every
 * line is written at once, waiting if need be. */
static enum { LOG_ERR_PLAIN, LOG_ERR_PIPE, LOG_ERR_SOCK } log_err_mode;
static int log_err_nb = -1;         /* LOG_ERR_PIPE: the pipe again, O_NONBLOCK, owned */
/* LOGT_STDERR lines go through log_q_line (the writer runs for them). */
static atomic_bool log_err_queue;
static atomic_ulong log_dropped_n;  /* lines dropped since start (queue full, exit) */

/* A datagram socket connected to /dev/log into log_sock; 0 or -errno.
 * Blocking: the direct send asks not to wait per call, the writer waits. */
static int log_syslog_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (log_sock >= 0)
		close(log_sock);
	log_sock = fd;
	return 0;
}

void log_init(const char *ident, enum log_level level, bool to_syslog)
{
	log_ident = ident;
	log_level_cur = level;
	log_target_cur = to_syslog && log_syslog_connect() == 0 ? LOGT_SYSLOG : LOGT_STDERR;
}

/* systemd connected our stderr to the journal (systemd.exec(5),
 * $JOURNAL_STREAM = "DEV:INO" of that stream). */
static bool log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int log_open_file(void)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return -errno;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int log_open(const char *ident, const char *node, enum log_level level, const char *target,
	     bool foreground, char *why, size_t whylen)
{
	int rc = 0;

	log_ident = ident;
	log_level_cur = level;
	snprintf(log_node, sizeof(log_node), "%s", node ? node : "");
	why[0] = '\0';
	if (!target || strcmp(target, "auto") == 0) {
		if (log_stderr_is_journal() && log_journal_available())
			target = "journal";
		else
			target = foreground ? "stderr" : "syslog";
	}
	log_target_cur = LOGT_STDERR;
	if (strcmp(target, "stderr") == 0)
		return 0;
	if (strcmp(target, "syslog") == 0) {
		rc = log_syslog_connect();
		if (rc < 0) {
			snprintf(why, whylen, "log = syslog, but nothing listens on /dev/log (%s)",
				 rc == -EPROTOTYPE ? "it is not a datagram socket" : strerror(-rc));
			return rc;
		}
		tzset(); /* syslog's timestamps are local time: read the zone once, now */
		log_target_cur = LOGT_SYSLOG;
		return 0;
	}
	if (strcmp(target, "journal") == 0) {
		if (!log_journal_available()) {
			snprintf(why, whylen, "log = journal, but %s",
#ifdef HAVE_LIBSYSTEMD
				 "journald's socket /run/systemd/journal/socket is missing"
#else
				 "sgnfsd was built without libsystemd"
#endif
				 );
			return -ENOTSUP;
		}
		log_target_cur = LOGT_JOURNAL;
		return 0;
	}
	if (target[0] != '/') {
		snprintf(why, whylen, "log = %s: not stderr, syslog, journal, auto or a path", target);
		return -EINVAL;
	}
	/* A path; "%n" is the node's name (one file per node, same config). */
	{
		size_t o = 0;
		for (const char *p = target; *p && o + 1 < sizeof(log_path); p++) {
			if (p[0] == '%' && p[1] == 'n') {
				o += (size_t)snprintf(log_path + o, sizeof(log_path) - o, "%s", log_node);
				if (o >= sizeof(log_path))
					o = sizeof(log_path) - 1;
				p++;
			} else {
				log_path[o++] = *p;
			}
		}
		log_path[o] = '\0';
	}
	rc = log_open_file();
	if (rc < 0) {
		snprintf(why, whylen, "log file %s: %s", log_path, strerror(-rc));
		return rc;
	}
	log_target_cur = LOGT_FILE;
	return 0;
}

int log_reopen(void)
{
	if (log_target_cur != LOGT_FILE)
		return 0;
	return log_open_file();
}

bool log_journal_available(void)
{
#ifdef HAVE_LIBSYSTEMD
	struct stat st;
	return stat("/run/systemd/journal/socket", &st) == 0 && S_ISSOCK(st.st_mode);
#else
	return false;
#endif
}

void log_set_level(enum log_level level) { log_level_cur = level; }
enum log_level log_get_level(void) { return log_level_cur; }
enum log_target log_get_target(void) { return log_target_cur; }
const char *log_level_name(enum log_level l) { return log_level_names[l]; }
const char *log_target_name(enum log_target t) { return log_target_names[t]; }
const char *log_file_path(void) { return log_target_cur == LOGT_FILE ? log_path : NULL; }

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcasecmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* "2026-12-04T07:30:01.123Z sgnfsd[1234] node=a info: " into @buf. */
static int log_prefix(char *buf, size_t sz, enum log_level level)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_node[0])
		return snprintf(buf, sz, "%s.%03ldZ %s[%ld] node=%s %s: ", when,
				ts.tv_nsec / 1000000L, log_ident, (long)getpid(), log_node,
				log_level_names[level]);
	return snprintf(buf, sz, "%s.%03ldZ %s[%ld] %s: ", when, ts.tv_nsec / 1000000L,
			log_ident, (long)getpid(), log_level_names[level]);
}

/* @line with its prefix and a newline into @buf (cut to fit); its length. */
static size_t log_err_fmt(char *buf, size_t sz, enum log_level level, const char *line)
{
	int n = log_prefix(buf, sz, level);

	n += snprintf(buf + n, sz - (size_t)n, "%s\n", line);
	if (n >= (int)sz) {
		n = (int)sz - 1;
		buf[n - 1] = '\n';
	}
	return (size_t)n;
}

/* @n bytes to stderr in one call; without waiting (@nowait) where stderr
 * can stall (log_err_mode).  0, or -1 with errno (EAGAIN: it would have
 * waited). */
static int log_err_write(const char *buf, size_t n, bool nowait)
{
	ssize_t k;

	do {
		if (nowait && log_err_mode == LOG_ERR_SOCK)
			k = send(STDERR_FILENO, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			k = write(nowait && log_err_mode == LOG_ERR_PIPE ? log_err_nb : STDERR_FILENO,
				  buf, n);
	} while (k < 0 && errno == EINTR);
	return k == (ssize_t)n ? 0 : -1;
}

/* A line straight to stderr: the fallback of the other targets and their
 * notes.  Where stderr can stall it is not waited for (dropped then). */
static void log_to_stderr(enum log_level level, const char *line)
{
	char buf[LOG_DATAGRAM_MAX];

	(void)log_err_write(buf, log_err_fmt(buf, sizeof(buf), level, line),
			    log_err_mode != LOG_ERR_PLAIN);
}

/* One write(2) per line, so lines of concurrent writers never mix. */
static int log_to_file(enum log_level level, const char *line)
{
	char buf[LOG_DATAGRAM_MAX];
	size_t n = log_err_fmt(buf, sizeof(buf), level, line);

	return write(log_fd, buf, n) == (ssize_t)n ? 0 : -1;
}

#ifdef HAVE_LIBSYSTEMD
/* Value of the leading "KEY=" token of @line, if it starts with it or
 * follows it with another token ("group=g1 client=c1 ..."). */
static size_t log_token(const char *line, const char *key, const char **val)
{
	size_t kl = strlen(key);
	const char *p = line;

	for (int i = 0; i < 2 && *p; i++) {
		size_t tl = strcspn(p, " ");
		if (tl > kl && strncmp(p, key, kl) == 0) {
			*val = p + kl;
			return tl - kl;
		}
		p += tl;
		p += strspn(p, " ");
	}
	return 0;
}

static int log_to_journal(enum log_level level, const char *line)
{
	char f[6][160], msg[1100];
	struct iovec iov[7];
	int n = 0;
	const char *v;
	size_t vl;

	snprintf(msg, sizeof(msg), "MESSAGE=%s", line);
	iov[n++] = (struct iovec){ msg, strlen(msg) };
	snprintf(f[0], sizeof(f[0]), "PRIORITY=%d", log_syslog_prio[level]);
	snprintf(f[1], sizeof(f[1]), "SYSLOG_IDENTIFIER=%s", log_ident);
	snprintf(f[2], sizeof(f[2]), "SGNFS_NODE=%s", log_node);
	for (int i = 0; i < 3; i++)
		iov[n++] = (struct iovec){ f[i], strlen(f[i]) };
	if ((vl = log_token(line, "group=", &v)) > 0) {
		snprintf(f[3], sizeof(f[3]), "SGNFS_GROUP=%.*s", (int)vl, v);
		iov[n++] = (struct iovec){ f[3], strlen(f[3]) };
	}
	if ((vl = log_token(line, "client=", &v)) > 0) {
		snprintf(f[4], sizeof(f[4]), "SGNFS_CLIENT=%.*s", (int)vl, v);
		iov[n++] = (struct iovec){ f[4], strlen(f[4]) };
	}
	return sd_journal_sendv(iov, n) < 0 ? -1 : 0;
}
#endif

/* The text of @r as it is delivered: a notice, or the line. */
static const char *log_rec_text(const struct log_rec *r, char *buf, size_t sz)
{
	if (!r->dropped)
		return r->text;
	snprintf(buf, sz, "%lu log lines dropped here: the %s reader did not keep up "
		 "(%u lines were waiting for it)", r->dropped, log_target_names[log_target_cur],
		 LOG_QLEN);
	return buf;
}

/* @r as an RFC 3164 datagram, as syslog(3) would send it:
 * "<30>Dec  6 09:57:12 sgnfsd[1234]: node=a ...".  Its length. */
static size_t log_syslog_fmt(char *buf, size_t sz, const struct log_rec *r)
{
	char when[32], note[160];
	const char *text = log_rec_text(r, note, sizeof(note));
	struct tm tm;
	int n;

	localtime_r(&r->when.tv_sec, &tm);
	strftime(when, sizeof(when), "%b %e %H:%M:%S", &tm);
	n = snprintf(buf, sz, "<%d>%s %s[%ld]: %s%s%s", LOG_DAEMON | log_syslog_prio[r->level],
		     when, log_ident, (long)getpid(), log_node[0] ? "node=" : "", log_node,
		     log_node[0] ? " " : "");
	n += snprintf(buf + n, sz - (size_t)n, "%s", text);
	return n < (int)sz ? (size_t)n : sz - 1;
}

/*
 * Deliver @r to its receiver, waiting as long as it takes (the writer).
 * A syslog daemon that went away (restarted: ECONNREFUSED) is reconnected
 * to once a second until it is back; a journal that refuses a line sends
 * it to stderr, as before there was a writer.
 */
static void log_deliver(const struct log_rec *r)
{
	char buf[LOG_DATAGRAM_MAX];

	if (log_target_cur == LOGT_STDERR) {
		char note[160];

		/* Waits as long as the reader does; a reader gone (EPIPE) is
		 * not waited for. */
		(void)log_err_write(buf, log_err_fmt(buf, sizeof(buf), r->level,
						     log_rec_text(r, note, sizeof(note))), false);
		return;
	}
	if (log_target_cur == LOGT_JOURNAL) {
#ifdef HAVE_LIBSYSTEMD
		char note[160];
		const char *text = log_rec_text(r, note, sizeof(note));

		if (log_to_journal(r->level, text) < 0)
			log_to_stderr(r->level, text);
#endif
		return;
	}
	size_t n = log_syslog_fmt(buf, sizeof(buf), r);
	bool fresh = false; /* log_sock was just connected */
	for (;;) {
		if (log_sock >= 0) {
			ssize_t k = send(log_sock, buf, n, MSG_NOSIGNAL);
			if (k == (ssize_t)n)
				return;
			if (k < 0 && errno == EINTR)
				continue;
		}
		/* One new connection per failure; a send that fails on a fresh
		 * one waits too, so an error that persists never spins. */
		if (!fresh && log_syslog_connect() == 0) {
			fresh = true;
			continue;
		}
		fresh = false;
		/* Nobody at /dev/log: look again in a second (or at log_close's
		 * word: it waits no longer than it said it would). */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&log_q.mu);
		pthread_cond_timedwait(&log_q.more, &log_q.mu, &until);
		pthread_mutex_unlock(&log_q.mu);
	}
}

static void *log_writer(void *arg)
{
	static struct log_rec r; /* the line being delivered, out of the ring */

	(void)arg;
	(void)thp_helper_enter();
	pthread_mutex_lock(&log_q.mu);
	for (;;) {
		while (!log_q.len && !log_q.stop)
			pthread_cond_wait(&log_q.more, &log_q.mu);
		if (!log_q.len)
			break;
		r = log_q.ring[log_q.head];
		log_q.head = (log_q.head + 1) % LOG_QLEN;
		log_q.len--;
		log_q.busy = true;
		pthread_mutex_unlock(&log_q.mu);
		log_deliver(&r);
		pthread_mutex_lock(&log_q.mu);
		log_q.busy = false;
		if (!log_q.len)
			pthread_cond_broadcast(&log_q.idle);
	}
	pthread_cond_broadcast(&log_q.idle);
	pthread_mutex_unlock(&log_q.mu);
	return NULL;
}

/* log_err_mode for stderr as it is: a pipe or a socket, whose reader may
 * stall, or PLAIN.  A pipe is opened again through /proc so that only our
 * descriptor is non-blocking (O_NONBLOCK on fd 2 would be on the
 * description whoever shares it uses too). */
static void log_err_classify(void)
{
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		log_err_mode = LOG_ERR_SOCK;
	} else if (S_ISFIFO(st.st_mode)) {
		/* No /proc, or no reader: PLAIN, lines are written as before. */
		fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			log_err_nb = fd;
			log_err_mode = LOG_ERR_PIPE;
		}
	}
}

int log_start_writer(void)
{
	static bool err_checked;
	int rc = 0;

	/* Whatever the target: stderr is every target's fallback, and a
	 * fallback line must not wait for a stalled reader either. */
	if (!err_checked) {
		err_checked = true;
		log_err_classify();
	}
	if (log_target_cur == LOGT_FILE ||
	    (log_target_cur == LOGT_STDERR && log_err_mode == LOG_ERR_PLAIN))
		return 0;
	pthread_mutex_lock(&log_q.mu);
	if (!log_q.started) {
		rc = -pthread_create(&log_q.thread, NULL, log_writer, NULL);
		log_q.started = rc == 0;
		if (rc == 0)
			pthread_setname_np(log_q.thread, "sgnfs-log");
	}
	if (log_q.started && log_target_cur == LOGT_STDERR)
		atomic_store(&log_err_queue, true);
	pthread_mutex_unlock(&log_q.mu);
	return rc;
}

/* Lines waiting, and whether the writer holds one. */
static unsigned log_q_left_locked(void)
{
	return log_q.len + (log_q.busy ? 1u : 0u);
}

void log_close(void)
{
	struct timespec until;
	unsigned left;
	bool join = false;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	/* Lines after this one go straight to stderr (without waiting). */
	atomic_store(&log_err_queue, false);
	pthread_mutex_lock(&log_q.mu);
	log_q.stop = true;
	pthread_cond_broadcast(&log_q.more);
	if (log_q.started) {
		while (log_q_left_locked() &&
		       pthread_cond_timedwait(&log_q.idle, &log_q.mu, &until) != ETIMEDOUT)
			;
		join = !log_q_left_locked();
	} else {
		/* No writer (a start that failed early): what a reader behind
		 * left queued gets until the same deadline, never a wait beyond. */
		while (log_q.len && log_sock >= 0) {
			char buf[LOG_DATAGRAM_MAX];
			size_t n = log_syslog_fmt(buf, sizeof(buf), &log_q.ring[log_q.head]);
			struct pollfd pfd = { .fd = log_sock, .events = POLLOUT };
			struct timespec now;

			if (send(log_sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n) {
				log_q.head = (log_q.head + 1) % LOG_QLEN;
				log_q.len--;
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &now);
			if ((errno != EAGAIN && errno != EINTR) || now.tv_sec >= until.tv_sec ||
			    poll(&pfd, 1, (int)(until.tv_sec - now.tv_sec) * 1000) <= 0)
				break;
		}
	}
	left = log_q_left_locked();
	pthread_mutex_unlock(&log_q.mu);
	if (join) {
		pthread_join(log_q.thread, NULL);
		log_q.started = false;
	} else if (left) {
		/* The writer may be inside a send that never returns: the
		 * process ends around it. */
		char note[160];
		atomic_fetch_add(&log_dropped_n, left);
		snprintf(note, sizeof(note), "%u log lines for %s not delivered at exit: its reader "
			 "did not read them", left, log_target_names[log_target_cur]);
		log_to_stderr(LOGL_WARN, note);
	}
}

unsigned long log_dropped(void)
{
	return atomic_load(&log_dropped_n);
}

unsigned log_queued(void)
{
	unsigned n;

	pthread_mutex_lock(&log_q.mu);
	n = log_q_left_locked();
	pthread_mutex_unlock(&log_q.mu);
	return n;
}

/* The free slot after the queue's last line, filled in; queued only when
 * the caller counts it (log_q.len++).  The queue has room. */
static struct log_rec *log_q_tail_locked(const struct timespec *when, enum log_level level,
					 unsigned long dropped, const char *line)
{
	struct log_rec *r = &log_q.ring[(log_q.head + log_q.len) % LOG_QLEN];

	r->when = *when;
	r->level = level;
	r->dropped = dropped;
	snprintf(r->text, sizeof(r->text), "%s", line);
	return r;
}

/*
 * A line for syslog or the journal: sent now if that cannot wait (syslog,
 * nothing queued before it), else queued for the writer, else dropped and
 * counted.  Any thread.
 */
static void log_q_line(enum log_level level, const char *line)
{
	struct timespec when;
	bool first_drop = false;

	clock_gettime(CLOCK_REALTIME, &when);
	pthread_mutex_lock(&log_q.mu);
	/* Not past a count of dropped lines still to be queued (log_q.burst):
	 * the reader is told where they were lost. */
	if (log_target_cur == LOGT_SYSLOG && !log_q_left_locked() && !log_q.burst &&
	    log_sock >= 0) {
		char buf[LOG_DATAGRAM_MAX];
		size_t n = log_syslog_fmt(buf, sizeof(buf),
					  log_q_tail_locked(&when, level, 0, line));

		if (send(log_sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n) {
			pthread_mutex_unlock(&log_q.mu);
			return;
		}
	}
	if (log_target_cur == LOGT_STDERR && !log_q_left_locked() && !log_q.burst) {
		char buf[LOG_DATAGRAM_MAX];

		if (log_err_write(buf, log_err_fmt(buf, sizeof(buf), level, line), true) == 0) {
			pthread_mutex_unlock(&log_q.mu);
			return;
		}
	}
#ifdef HAVE_LIBSYSTEMD
	/* The journal before the writer runs (the start, before the loop):
	 * sent directly, as nothing can be stalled by it yet. */
	if (log_target_cur == LOGT_JOURNAL && !log_q.started && !log_q.len && !log_q.burst) {
		pthread_mutex_unlock(&log_q.mu);
		if (log_to_journal(level, line) < 0)
			log_to_stderr(level, line);
		return;
	}
#endif
	unsigned need = log_q.burst ? 2 : 1;
	if (LOG_QLEN - log_q.len < need) {
		first_drop = log_q.burst++ == 0;
		atomic_fetch_add(&log_dropped_n, 1);
	} else {
		if (log_q.burst) {
			log_q_tail_locked(&when, LOGL_WARN, log_q.burst, "");
			log_q.len++;
			log_q.burst = 0;
		}
		log_q_tail_locked(&when, level, 0, line);
		log_q.len++;
		pthread_cond_signal(&log_q.more);
	}
	pthread_mutex_unlock(&log_q.mu);
	/* stderr's own reader is the one behind: the queued count tells it. */
	if (first_drop && log_target_cur != LOGT_STDERR) {
		char note[200];
		snprintf(note, sizeof(note), "log = %s: its reader is not keeping up and %u lines "
			 "wait for it; lines are dropped and counted (status log.dropped) until it "
			 "reads again", log_target_names[log_target_cur], LOG_QLEN);
		log_to_stderr(LOGL_WARN, note);
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;

	if (level > log_level_cur)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	switch (log_target_cur) {
	case LOGT_SYSLOG:
	case LOGT_JOURNAL:
		log_q_line(level, line);
		return;
	case LOGT_FILE:
		if (log_missed) {
			char note[96];
			snprintf(note, sizeof(note), "%lu log lines could not be written to this "
				 "file (they went to stderr)", log_missed);
			if (log_to_file(LOGL_WARN, note) == 0)
				log_missed = 0;
		}
		if (!log_missed && log_to_file(level, line) == 0)
			return;
		log_missed++;
		break;
	case LOGT_STDERR:
		if (atomic_load(&log_err_queue)) {
			log_q_line(level, line);
			return;
		}
		break;
	}
	log_to_stderr(level, line);
}

const char *log_safe(char *buf, size_t bufsz, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (bufsz == 0)
		return buf;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
		if (o + need + 4 > bufsz) { /* leave room for "..." and NUL */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}
