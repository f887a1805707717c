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
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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

void log_init(const char *ident, enum log_level level, bool to_syslog)
{
	log_ident = ident;
	log_level_cur = level;
	log_target_cur = to_syslog ? LOGT_SYSLOG : LOGT_STDERR;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* Is something listening on the syslog socket? (glibc's syslog(3) drops
 * lines silently when not.) */
static int log_probe_devlog(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		rc = -errno;
	close(fd);
	return rc;
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
		rc = log_probe_devlog();
		if (rc < 0) {
			snprintf(why, whylen, "log = syslog, but nothing listens on /dev/log (%s)",
				 strerror(-rc));
			return rc;
		}
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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

static void log_to_stderr(enum log_level level, const char *line)
{
	char pre[160];

	log_prefix(pre, sizeof(pre), level);
	fprintf(stderr, "%s%s\n", pre, line);
}

/* One write(2) per line, so lines of concurrent writers never mix. */
static int log_to_file(enum log_level level, const char *line)
{
	char buf[1400];
	int n = log_prefix(buf, sizeof(buf), level);

	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s\n", line);
	if (n >= (int)sizeof(buf)) {
		n = (int)sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	return write(log_fd, buf, (size_t)n) == n ? 0 : -1;
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
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char f[6][160], msg[1100];
	struct iovec iov[7];
	int n = 0;
	const char *v;
	size_t vl;

	snprintf(msg, sizeof(msg), "MESSAGE=%s", line);
	iov[n++] = (struct iovec){ msg, strlen(msg) };
	snprintf(f[0], sizeof(f[0]), "PRIORITY=%d", prio[level]);
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	va_list ap;

	if (level > log_level_cur)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	switch (log_target_cur) {
	case LOGT_SYSLOG:
		if (log_node[0])
			syslog(prio[level], "node=%s %s", log_node, line);
		else
			syslog(prio[level], "%s", line);
		return;
	case LOGT_JOURNAL:
#ifdef HAVE_LIBSYSTEMD
		if (log_to_journal(level, line) == 0)
			return;
#endif
		break;
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
