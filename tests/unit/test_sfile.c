/*
 * test_sfile.c - the state-file helper (src/common/sfile.h): a FIFO, a
 * symlink, a directory and an oversized (sparse) file are refused without
 * blocking or reading; a file that fits is read whole; sf_replace removes
 * a symlink planted at its temporary name instead of writing through it,
 * and leaves the mode asked for; a large file is read whole in reads of
 * at most SF_READ_CHUNK (read(2) is wrapped here: meson.build).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "sfile.h"

ssize_t __real_read(int fd, void *buf, size_t count);
ssize_t __wrap_read(int fd, void *buf, size_t count);

/* What the code under test asked read(2) for: the largest count, and how
 * many calls. */
static size_t read_max_count, read_calls;

ssize_t __wrap_read(int fd, void *buf, size_t count)
{
	if (count > read_max_count)
		read_max_count = count;
	read_calls++;
	return __real_read(fd, buf, count);
}

static char dir[64];
static int dfd = -1;

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof(dir), "/tmp/test_sfile.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	return dfd < 0 ? -1 : 0;
}

static int teardown(void **st)
{
	char cmd[128];

	(void)st;
	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_read_refusals(void **st)
{
	char *buf = NULL;
	size_t len;
	int fd;

	(void)st;
	put("ok", "12345\n");
	assert_int_equal(sf_read(dfd, "ok", 6, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "12345\n");
	free(buf);
	/* One byte over the limit. */
	assert_int_equal(sf_read(dfd, "ok", 5, &buf, &len), -EFBIG);
	/* A FIFO with no writer: refused at once, never blocks. */
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	assert_int_equal(sf_read(dfd, "fifo", 64, &buf, &len), -EFTYPE_SF);
	assert_int_equal(sf_open(dfd, "fifo", O_RDWR, 0, 64, &fd, NULL), -EFTYPE_SF);
	/* A symlink to a good file is not followed. */
	assert_int_equal(symlinkat("ok", dfd, "link"), 0);
	assert_int_equal(sf_read(dfd, "link", 64, &buf, &len), -ELOOP);
	/* A directory. */
	assert_int_equal(mkdirat(dfd, "sub", 0700), 0);
	assert_int_equal(sf_read(dfd, "sub", 64, &buf, &len), -EFTYPE_SF);
	/* 1 GiB sparse: refused from fstat, nothing allocated or read. */
	fd = openat(dfd, "big", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 30), 0);
	close(fd);
	assert_int_equal(sf_read(dfd, "big", 1 << 20, &buf, &len), -EFBIG);
	assert_int_equal(sf_read(dfd, "missing", 64, &buf, &len), -ENOENT);
	assert_non_null(strstr(sf_strerror(-EFTYPE_SF), "not a regular file"));
}

/* sf_read_into, the clist's per-entry read: the same refusals as sf_read,
 * a file of exactly size - 1 bytes is read whole and NUL-terminated, one
 * byte more is -EFBIG; a short last chunk ends the read. */
static void test_read_into(void **st)
{
	char buf[8];
	size_t len = 99;
	int fd;

	(void)st;
	put("seven", "1234567");
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(sf_read_into(dfd, "seven", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 7);
	assert_string_equal(buf, "1234567");
	put("eight", "12345678");
	assert_int_equal(sf_read_into(dfd, "eight", buf, sizeof(buf), &len), -EFBIG);
	put("empty", "");
	assert_int_equal(sf_read_into(dfd, "empty", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	put("two", "a\n");
	assert_int_equal(sf_read_into(dfd, "two", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 2);
	assert_string_equal(buf, "a\n");
	assert_int_equal(mkfifoat(dfd, "fifo2", 0600), 0);
	assert_int_equal(sf_read_into(dfd, "fifo2", buf, sizeof(buf), &len), -EFTYPE_SF);
	assert_int_equal(symlinkat("seven", dfd, "link2"), 0);
	assert_int_equal(sf_read_into(dfd, "link2", buf, sizeof(buf), &len), -ELOOP);
	assert_int_equal(mkdirat(dfd, "sub2", 0700), 0);
	assert_int_equal(sf_read_into(dfd, "sub2", buf, sizeof(buf), &len), -EFTYPE_SF);
	fd = openat(dfd, "big2", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 30), 0);
	close(fd);
	assert_int_equal(sf_read_into(dfd, "big2", buf, sizeof(buf), &len), -EFBIG);
	assert_int_equal(sf_read_into(dfd, "missing", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(sf_read_into(dfd, "seven", buf, 0, &len), -EINVAL);
}

/* sf_read_exact, the one read loop of every state-file reader and the
 * journal's load: a file that is not the size fstat gave when it is read
 * (it grew or shrank in between) is -EIO, never silently cut or short. */
static void test_read_exact(void **st)
{
	char buf[32];
	int fd;

	(void)st;
	put("ten", "0123456789");
	fd = openat(dfd, "ten", O_RDONLY);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(sf_read_exact(fd, buf, 10), 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sf_read_exact(fd, buf, 6), -EIO);	/* grew since */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sf_read_exact(fd, buf, 20), -EIO);	/* shrank since */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sf_read_exact(fd, buf, 0), -EIO);
	close(fd);
	put("none", "");
	fd = openat(dfd, "none", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(sf_read_exact(fd, buf, 0), 0);
	close(fd);
	assert_int_equal(sf_read_exact(-1, buf, 4), -EBADF);
}

/* A file of several chunks (and one byte over a whole number of them):
 * read exactly, never more than SF_READ_CHUNK asked of one read(2), so a
 * journal's load gives the CPU back between reads; and still -EIO when it
 * grew since its size was taken. */
static void test_read_exact_chunked(void **st)
{
	size_t size = 3 * SF_READ_CHUNK + 1;
	unsigned char *data = malloc(size), *buf = malloc(size + 1);
	int fd;

	(void)st;
	assert_non_null(data);
	assert_non_null(buf);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	fd = openat(dfd, "big", O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(buf, 0, size + 1);
	read_max_count = read_calls = 0;
	assert_int_equal(sf_read_exact(fd, buf, size), 0);
	assert_memory_equal(buf, data, size);
	assert_true(read_max_count <= SF_READ_CHUNK);
	assert_true(read_calls >= 4);
	/* exactly a whole number of chunks: the end is still found */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	read_max_count = 0;
	assert_int_equal(sf_read_exact(fd, buf, size), 0);
	assert_int_equal(ftruncate(fd, 2 * SF_READ_CHUNK), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sf_read_exact(fd, buf, 2 * SF_READ_CHUNK), 0);
	assert_memory_equal(buf, data, 2 * SF_READ_CHUNK);
	/* grew since its size was taken */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sf_read_exact(fd, buf, SF_READ_CHUNK), -EIO);
	assert_true(read_max_count <= SF_READ_CHUNK);
	close(fd);
	free(data);
	free(buf);
}

static void test_replace(void **st)
{
	struct stat sb;
	char *buf = NULL;
	size_t len;
	int fd;

	(void)st;
	put("victim", "precious\n");
	/* A symlink planted at the temporary name of "state". */
	assert_int_equal(symlinkat("victim", dfd, ".state.tmp"), 0);
	assert_int_equal(sf_replace(dfd, "state", "7\n", 2, 0600), 0);
	assert_int_equal(sf_read(dfd, "victim", 64, &buf, &len), 0);
	assert_string_equal(buf, "precious\n");
	free(buf);
	assert_int_equal(fstatat(dfd, "state", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(fstatat(dfd, ".state.tmp", &sb, AT_SYMLINK_NOFOLLOW), -1);
	/* Replacing again, keeping the file open for appending. */
	assert_int_equal(sf_replace_ex(dfd, "state", "abc", 3, 0644, true, &fd), 0);
	assert_int_equal(write(fd, "d", 1), 1);
	close(fd);
	assert_int_equal(sf_read(dfd, "state", 64, &buf, &len), 0);
	assert_string_equal(buf, "abcd");
	free(buf);
	/* An absolute name works the same way. */
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/abs", dir);
		assert_int_equal(sf_replace(AT_FDCWD, path, "x", 1, 0600), 0);
		assert_int_equal(sf_read(AT_FDCWD, path, 1, &buf, &len), 0);
		assert_string_equal(buf, "x");
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_refusals),
		cmocka_unit_test(test_read_into),
		cmocka_unit_test(test_read_exact),
		cmocka_unit_test(test_read_exact_chunked),
		cmocka_unit_test(test_replace),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
