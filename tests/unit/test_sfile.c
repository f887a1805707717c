/*
 * test_sfile.c - the state-file helper (src/common/sfile.h): a FIFO, a
 * symlink, a directory and an oversized (sparse) file are refused without
 * blocking or reading; a file that fits is read whole; sf_replace removes
 * a symlink planted at its temporary name instead of writing through it,
 * and leaves the mode asked for; a large file is read whole in reads of
 * at most SF_READ_CHUNK (read(2) is wrapped here: meson.build);
 * sf_read_dir reads a directory of them in io_uring batches with the same
 * results and refusals as the plain way, its fallback, which it takes
 * where io_uring is refused.
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
#include <sys/wait.h>
#include <cmocka.h>
#include <seccomp.h>

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


/* ---- sf_read_dir ------------------------------------------------------ */

/* Good files of the directory sf_read_dir reads: more than two batches of
 * 128, the last one partial. */
#define RD_GOOD 300
#define RD_MAX 100

/* What sf_read_dir handed over for one name. */
struct rd_seen {
	char name[64];
	int rc;
	char data[RD_MAX + 1];
	size_t len;
	int calls;
};

struct rd_result {
	struct rd_seen seen[RD_GOOD + 16];
	size_t n;
	struct sf_dir_stats st;
};

static bool rd_want(void *arg, const char *name)
{
	(void)arg;
	return name[0] != '.';
}

static void rd_fn(void *arg, const char *name, int rc, char *data, size_t len)
{
	struct rd_result *r = arg;
	struct rd_seen *s = NULL;

	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->seen[i].name, name) == 0)
			s = &r->seen[i];
	if (!s) {
		assert_true(r->n < sizeof(r->seen) / sizeof(r->seen[0]));
		s = &r->seen[r->n++];
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	s->calls++;
	s->rc = rc;
	if (rc == 0) {
		assert_non_null(data);
		assert_true(len <= RD_MAX);
		assert_int_equal(data[len], '\0');
		memcpy(s->data, data, len + 1);
		s->len = len;
		/* writable, as the client list's parser needs */
		if (len)
			data[0] = '!';
	} else {
		assert_null(data);
	}
}

static const struct rd_seen *rd_find(const struct rd_result *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->seen[i].name, name) == 0)
			return &r->seen[i];
	return NULL;
}

static void rd_read(int rdfd, enum sf_dir_io io, struct rd_result *r)
{
	memset(r, 0, sizeof(*r));
	sf_dir_set_io(io);
	assert_int_equal(sf_read_dir(rdfd, RD_MAX, rd_want, rd_fn, r, &r->st), 0);
	sf_dir_set_io(SF_DIR_URING);
}

/*
 * The refused files among the good ones, each named once with its own
 * error; the good ones read whole; the dot file never offered.
 */
static void rd_check(const struct rd_result *r)
{
	static const struct { const char *name; int rc; } bad[] = {
		{ "fifo", -EFTYPE_SF }, { "fifo0", -EFTYPE_SF }, { "link", -ELOOP },
		{ "sub", -EFTYPE_SF },
		{ "over", -EFBIG }, { "sparse", -EFBIG },
	};
	char name[64], text[RD_MAX + 1];

	assert_int_equal(r->n, RD_GOOD + 2 + sizeof(bad) / sizeof(bad[0]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct rd_seen *s = rd_find(r, bad[i].name);

		assert_non_null(s);
		assert_int_equal(s->calls, 1);
		assert_int_equal(s->rc, bad[i].rc);
	}
	for (int i = 0; i < RD_GOOD; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		snprintf(text, sizeof(text), "file %d\n%.*s", i, i % 50, "0123456789012345678901234567890123456789012345678901234567890");
		const struct rd_seen *s = rd_find(r, name);

		assert_non_null(s);
		assert_int_equal(s->calls, 1);
		assert_int_equal(s->rc, 0);
		assert_string_equal(s->data, text);
	}
	assert_int_equal(rd_find(r, "empty")->rc, 0);
	assert_int_equal(rd_find(r, "empty")->len, 0);
	assert_int_equal(rd_find(r, "exact")->rc, 0);
	assert_int_equal(rd_find(r, "exact")->len, RD_MAX);
	assert_null(rd_find(r, ".tmp"));
}

/* A directory of RD_GOOD files and, among them, what must be refused. */
static int rd_make(void)
{
	char name[64], text[RD_MAX + 2];
	int rdfd, fd;

	assert_int_equal(mkdirat(dfd, "rd", 0700), 0);
	rdfd = openat(dfd, "rd", O_RDONLY | O_DIRECTORY);
	assert_true(rdfd >= 0);
	for (int i = 0; i < RD_GOOD; i++) {
		snprintf(name, sizeof(name), "rd/f%03d", i);
		snprintf(text, sizeof(text), "file %d\n%.*s", i, i % 50, "0123456789012345678901234567890123456789012345678901234567890");
		put(name, text);
	}
	put("rd/empty", "");
	memset(text, 'e', RD_MAX + 1);
	text[RD_MAX] = '\0';
	put("rd/exact", text);                      /* the limit: read */
	text[RD_MAX] = 'o';
	text[RD_MAX + 1] = '\0';
	put("rd/over", text);                       /* one byte more: refused */
	put("rd/.tmp", "not offered");
	assert_int_equal(mkfifoat(rdfd, "fifo", 0600), 0);
	assert_int_equal(mkfifoat(rdfd, "fifo0", 0600), 0);  /* never a writer */
	assert_int_equal(symlinkat("f001", rdfd, "link"), 0);
	assert_int_equal(mkdirat(rdfd, "sub", 0700), 0);
	fd = openat(rdfd, "sparse", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 30), 0);
	close(fd);
	return rdfd;
}

/*
 * sf_read_dir in batches and the plain way: the same files read, the same
 * refusals, each name once.  Batched: the FIFO, symlink and directory are
 * refused from their listed type, unopened; everything else (the oversize
 * files too) goes through the ring.  Untyped (as if each name had been
 * replaced after the listing): the batch's own checks refuse them - the
 * FIFO with a writer holding it open, whose read in a ring would wait for
 * data, is cancelled by the read's timeout and then refused by fstat; the
 * one without a writer reads as empty and is refused by fstat too.
 */
static void test_read_dir(void **st)
{
	static struct rd_result batched, plain, untyped;
	int rdfd = rd_make(), wfd;

	(void)st;
	rd_read(rdfd, SF_DIR_URING, &batched);
	rd_check(&batched);
	assert_true(batched.st.uring);
	/* the good ones, exact, over, sparse; empty (0 bytes) is read again
	 * the plain way */
	assert_int_equal(batched.st.batched, RD_GOOD + 3);
	assert_int_equal(batched.st.refused, 4);           /* fifo, fifo0, link, sub */
	assert_int_equal(batched.st.plain, 1);

	rd_read(rdfd, SF_DIR_PLAIN, &plain);
	rd_check(&plain);
	assert_false(plain.st.uring);
	assert_int_equal(plain.st.batched, 0);
	assert_int_equal(plain.st.plain, RD_GOOD + 8);

	wfd = openat(rdfd, "fifo", O_RDWR | O_NONBLOCK);
	assert_true(wfd >= 0);
	rd_read(rdfd, SF_DIR_URING_UNTYPED, &untyped);
	close(wfd);
	rd_check(&untyped);
	assert_true(untyped.st.uring);
	assert_int_equal(untyped.st.batched, RD_GOOD + 3);
	assert_int_equal(untyped.st.plain, 5);             /* fifo, fifo0, link, sub, empty */
	assert_int_equal(untyped.st.refused, 0);

	/* Limits and a directory that is not one. */
	assert_int_equal(sf_read_dir(rdfd, 0, NULL, rd_fn, &plain, NULL), -EINVAL);
	assert_int_equal(sf_read_dir(-1, RD_MAX, NULL, rd_fn, &plain, NULL), -EBADF);
	close(rdfd);
}

/*
 * Where io_uring_setup is refused (a seccomp profile, a sysctl), every
 * file goes the plain way, with the same results: in a child whose filter
 * fails io_uring_setup with EPERM.
 */
static void test_read_dir_refused_uring(void **st)
{
	static struct rd_result r;
	int rdfd, status;
	pid_t pid;

	(void)st;
	rdfd = openat(dfd, "rd", O_RDONLY | O_DIRECTORY);
	assert_true(rdfd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
					     SCMP_SYS(io_uring_setup), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(2);
		rd_read(rdfd, SF_DIR_URING, &r);
		rd_check(&r);
		_exit(!r.st.uring && r.st.batched == 0 && r.st.plain == RD_GOOD + 8 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(rdfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_refusals),
		cmocka_unit_test(test_read_into),
		cmocka_unit_test(test_read_exact),
		cmocka_unit_test(test_read_exact_chunked),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_read_dir),
		cmocka_unit_test(test_read_dir_refused_uring),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
