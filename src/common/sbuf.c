/* sbuf.c - see sbuf.h. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sb_reserve(struct sbuf *sb, size_t extra)
{
	size_t cap;
	char *n;

	if (sb->oom)
		return false;
	if (sb->len + extra + 1 <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	n = realloc(sb->s, cap);
	if (!n) {
		sb->oom = true;
		return false;
	}
	sb->s = n;
	sb->cap = cap;
	return true;
}

void sb_append(struct sbuf *sb, const char *p, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	memcpy(sb->s + sb->len, p, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *sb_take(struct sbuf *sb)
{
	char *s = sb->oom ? NULL : sb->s;

	if (sb->oom)
		free(sb->s);
	else if (!s)
		s = calloc(1, 1);
	sb->s = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void sb_free(struct sbuf *sb)
{
	free(sb->s);
	sb->s = NULL;
	sb->len = sb->cap = 0;
	sb->oom = false;
}
