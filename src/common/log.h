/*
 * log.h - one line per event, to stderr, syslog, the journal or a file
 * (docs/operations.md).
 *
 * Format strings are always literals in our code; anything that came from
 * the network is passed as an argument, after log_safe() has escaped it.
 * Convention for event lines: "group=G client=C <what happened>".
 */
#ifndef SGNFS_LOG_H
#define SGNFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOGL_ERR = 0, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };
enum log_target { LOGT_STDERR = 0, LOGT_SYSLOG, LOGT_JOURNAL, LOGT_FILE };

/* Tools: stderr, or syslog; no node name. */
void log_init(const char *ident, enum log_level level, bool to_syslog);
/*
 * The daemon: log as @ident for node @node to @target ("auto", "stderr",
 * "syslog", "journal" or an absolute path where "%n" is the node's name).
 * "auto": the journal when systemd connected stderr to it, else stderr in
 * the foreground, syslog otherwise.  Returns 0, or -errno when the target
 * cannot be used: logging then goes to stderr, and @why says what went
 * wrong (the caller logs it, so nothing is dropped without a word).
 */
int log_open(const char *ident, const char *node, enum log_level level, const char *target,
	     bool foreground, char *why, size_t whylen);
/*
 * Start the thread that delivers to syslog, the journal, or stderr when it
 * is a pipe or a socket, the lines that could not be sent at once (log.c
 * says why); from then on no line waits for stderr's reader, whatever the
 * target.  The daemon calls it once it has dropped its privileges and left
 * the loop's CPU, so the thread starts with neither; nothing to do for a
 * file, or for stderr on a terminal or a file.  0 or -errno (lines are then
 * sent directly, and queued only until log_close).
 */
int log_start_writer(void);
/* At exit: what is queued gets up to 2 s to reach its reader; what does
 * not is counted and named on stderr.  Never waits longer. */
void log_close(void);
/* Lines dropped since start because their reader was behind (status,
 * metrics). */
unsigned long log_dropped(void);
/* Lines waiting for syslog's, the journal's or stderr's reader now (the
 * one being delivered included). */
unsigned log_queued(void);
/* Reopen the log file (after rotation); 0 or -errno (the old one stays). */
int log_reopen(void);
bool log_journal_available(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
enum log_target log_get_target(void);
const char *log_level_name(enum log_level l);
const char *log_target_name(enum log_target t);
/* The file being written (LOGT_FILE), else NULL. */
const char *log_file_path(void);
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOGL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOGL_DEBUG) log_msg(LOGL_DEBUG, __VA_ARGS__); } while (0)

/*
 * Copy untrusted bytes @s (length @len) into @buf as printable ASCII:
 * control and non-ASCII bytes become \xNN, output truncated with "..." to
 * fit @bufsz.  Returns @buf.
 */
#define LOG_SAFE_MAX 96
const char *log_safe(char *buf, size_t bufsz, const char *s, size_t len);

#endif
