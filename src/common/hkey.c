/*
 * hkey.c - read, check and write the file handle key file (format and
 * rules in hkey.h).
 */
#include "hkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "sfile.h"

static int hk_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2 * HK_KEY_SIZE hex digits at @s (followed by blanks or end). */
static int hk_parse_key(const char *s, uint8_t out[HK_KEY_SIZE])
{
	for (size_t i = 0; i < HK_KEY_SIZE; i++) {
		int hi = hk_hexval(s[2 * i]), lo = hi < 0 ? -1 : hk_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	s += 2 * HK_KEY_SIZE;
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	return *s == '\0' || *s == '#' || *s == ';' ? 0 : -EINVAL;
}

static int hk_parse(char *text, struct hk_set *out, char *why, size_t whysz)
{
	bool has_cur = false;
	char *save = NULL;
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *val;
		uint8_t *dst;

		lineno++;      /* strtok skips empty lines: numbers are approximate */
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#' || *p == ';' || *p == '\r')
			continue;
		if (strncmp(p, "current", 7) == 0) {
			dst = out->cur;
			val = p + 7;
			if (has_cur)
				goto dup;
			has_cur = true;
		} else if (strncmp(p, "previous", 8) == 0) {
			dst = out->prev;
			val = p + 8;
			if (out->has_prev)
				goto dup;
			out->has_prev = true;
		} else {
			snprintf(why, whysz, "line %d: expected 'current = HEX' or 'previous = HEX'",
				 lineno);
			return -EINVAL;
		}
		while (*val == ' ' || *val == '\t')
			val++;
		if (*val++ != '=')
			goto bad;
		while (*val == ' ' || *val == '\t')
			val++;
		if (strlen(val) < 2 * HK_KEY_SIZE || hk_parse_key(val, dst) < 0)
			goto bad;
		continue;
bad:
		snprintf(why, whysz, "line %d: a key is %d hex digits", lineno, 2 * HK_KEY_SIZE);
		return -EINVAL;
dup:
		snprintf(why, whysz, "line %d: key given twice", lineno);
		return -EINVAL;
	}
	if (!has_cur) {
		snprintf(why, whysz, "no 'current = HEX' line");
		return -EINVAL;
	}
	return 0;
}

int hk_load(const char *path, struct hk_set *out, char *why, size_t whysz)
{
	struct stat st;
	char *text = NULL;
	size_t len;
	int fd, rc;

	snprintf(why, whysz, "ok");
	rc = sf_open_read(AT_FDCWD, path, HK_FILE_MAX, &fd, &st);
	if (rc < 0) {
		snprintf(why, whysz, "%s", sf_strerror(rc));
		return rc;
	}
	close(fd);
	/* Whoever can read the key can forge handles; whoever can write it
	 * can make every handle stale. */
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, whysz, "must be owned by uid %u with mode 0600 or 0400 "
			 "(is uid %u mode %04o)", (unsigned)geteuid(), (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	rc = sf_read(AT_FDCWD, path, HK_FILE_MAX, &text, &len);
	if (rc < 0) {
		snprintf(why, whysz, "%s", sf_strerror(rc));
		return rc;
	}
	if (strlen(text) != len) {
		snprintf(why, whysz, "contains a NUL byte");
		rc = -EINVAL;
	} else {
		rc = hk_parse(text, out, why, whysz);
	}
	explicit_bzero(text, len);
	free(text);
	return rc;
}

static void hk_hex(const uint8_t k[HK_KEY_SIZE], char out[2 * HK_KEY_SIZE + 1])
{
	static const char dig[] = "0123456789abcdef";

	for (size_t i = 0; i < HK_KEY_SIZE; i++) {
		out[2 * i] = dig[k[i] >> 4];
		out[2 * i + 1] = dig[k[i] & 15];
	}
	out[2 * HK_KEY_SIZE] = '\0';
}

int hk_generate(const char *path, bool rotate, char *why, size_t whysz)
{
	struct hk_set old, ks;
	char cur[2 * HK_KEY_SIZE + 1], prev[2 * HK_KEY_SIZE + 1], text[512];
	struct stat st;
	int n, rc;

	memset(&ks, 0, sizeof(ks));
	if (rotate) {
		rc = hk_load(path, &old, why, whysz);
		if (rc < 0)
			return rc;
		memcpy(ks.prev, old.cur, HK_KEY_SIZE);
		ks.has_prev = true;
		explicit_bzero(&old, sizeof(old));
	} else if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(why, whysz, "exists (use --rotate to replace its key)");
		return -EEXIST;
	}
	if (getrandom(ks.cur, HK_KEY_SIZE, 0) != HK_KEY_SIZE) {
		rc = -errno;
		snprintf(why, whysz, "getrandom: %s", strerror(errno));
		return rc;
	}
	hk_hex(ks.cur, cur);
	hk_hex(ks.prev, prev);
	n = snprintf(text, sizeof(text),
		     "# sgnfs file handle key: the same file on every node; keep it 0600 root.\n"
		     "# `sgnfsctl keygen --rotate` makes a new current key and keeps this one\n"
		     "# as previous (still accepted).\n"
		     "current = %s\n%s%s%s", cur,
		     ks.has_prev ? "previous = " : "", ks.has_prev ? prev : "",
		     ks.has_prev ? "\n" : "");
	rc = sf_replace(AT_FDCWD, path, text, (size_t)n, 0600);
	explicit_bzero(text, sizeof(text));
	explicit_bzero(&ks, sizeof(ks));
	explicit_bzero(cur, sizeof(cur));
	explicit_bzero(prev, sizeof(prev));
	if (rc < 0)
		snprintf(why, whysz, "%s", sf_strerror(rc));
	return rc;
}
