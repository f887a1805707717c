/*
 * sbuf.h - a growable string (never JSON: that is json-c's, see sjson.h).
 * Allocation failure is sticky: sb->oom is set and later appends do nothing, so callers check once at the end.  The buffer is owned by
 * the sbuf; free with sb_free() or take it with sb_take() (caller frees).
 */
#ifndef SGNFS_SBUF_H
#define SGNFS_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *s;     /* NUL-terminated when len > 0 */
	size_t len, cap;
	bool oom;
};

void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_append(struct sbuf *sb, const char *p, size_t n);
char *sb_take(struct sbuf *sb);
void sb_free(struct sbuf *sb);

#endif
