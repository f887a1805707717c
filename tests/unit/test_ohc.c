/*
 * test_ohc.c - the open-handle cache (nfs/ohc.h): hits and misses by the
 * whole key (a generation byte apart is another object), LRU order of
 * eviction at the limit, an entry in use outliving its eviction and its
 * descriptor closed by the last release, forget and drop, a second insert
 * of one key keeping the first descriptor, descriptor pressure halving
 * every cache, and no descriptor left open after ohc_free.  Data
 * descriptors (ohc_data_fd): opened once per entry and direction with the
 * right access mode, bound to the inode the entry pins (a local truncate
 * is seen, a replacement by rename is not: the NFS layer finds that one
 * stale by st_nlink), counted against the limit, and closed by forget,
 * eviction, pressure and ohc_free.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "nfs/ohc.h"

static struct fh_key key(uint8_t n)
{
	struct fh_key k;

	memset(&k, 0, sizeof(k));
	k.fsid = 7;
	k.ktype = 1;
	k.klen = 8;
	for (uint32_t i = 0; i < k.klen; i++)
		k.kh[i] = (uint8_t)(n + i);
	return k;
}

static int newfd(void)
{
	int fd = open("/", O_PATH | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Is @k in @c?  (A get is a use: it also moves @k to the LRU head.) */
static bool has(struct ohc *c, uint8_t k)
{
	struct fh_key kk = key(k);
	struct ohc_ent *e = ohc_get(c, &kk);

	ohc_release(e);
	return e != NULL;
}

static void add(struct ohc *c, uint8_t k)
{
	struct fh_key kk = key(k);
	struct ohc_ent *e = ohc_add(c, &kk, newfd());

	assert_non_null(e);
	ohc_release(e);
}

static void test_hit_miss(void **state)
{
	struct ohc *c;
	struct ohc_stats st;
	struct fh_key k1 = key(1), k1gen = key(1);
	struct ohc_ent *e, *g;
	int fd = newfd();

	(void)state;
	assert_int_equal(ohc_new(4, "g", &c), 0);
	assert_null(ohc_get(c, &k1));
	e = ohc_add(c, &k1, fd);
	assert_non_null(e);
	assert_int_equal(ohc_fd(e), fd);
	ohc_release(e);
	g = ohc_get(c, &k1);
	assert_ptr_equal(g, e);
	assert_int_equal(ohc_fd(g), fd);
	ohc_release(g);
	/* The last byte (where ext4 keeps the generation) differs: a file
	 * recreated under the same inode number is another object. */
	k1gen.kh[7] ^= 1;
	assert_null(ohc_get(c, &k1gen));
	k1gen = k1;
	k1gen.fsid = 8;
	assert_null(ohc_get(c, &k1gen));
	assert_null(ohc_try(c, &k1gen));   /* a try's miss is not counted */
	g = ohc_try(c, &k1);               /* its hit is */
	assert_ptr_equal(g, e);
	ohc_release(g);
	ohc_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.entries, 1);
	assert_true(fd_open(fd));
	ohc_free(c);
	assert_false(fd_open(fd));
	assert_null(ohc_get(NULL, &k1));
	assert_null(ohc_add(NULL, &k1, -1));
}

static void test_lru_order(void **state)
{
	struct ohc *c;
	struct ohc_stats st;

	(void)state;
	assert_int_equal(ohc_new(3, "g", &c), 0);
	add(c, 10);
	add(c, 20);
	add(c, 30);
	assert_true(has(c, 10));        /* 10 is now the most recent */
	add(c, 40);                     /* evicts the least recent: 20 */
	assert_false(has(c, 20));
	assert_true(has(c, 30));        /* old -> new: 10, 40, 30 */
	add(c, 50);                     /* evicts 10 */
	assert_false(has(c, 10));
	assert_true(has(c, 40));
	assert_true(has(c, 30));
	assert_true(has(c, 50));
	ohc_get_stats(c, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evictions, 2);
	ohc_free(c);
}

static void test_in_use_outlives_eviction(void **state)
{
	struct ohc *c;
	struct fh_key k1 = key(1);
	struct ohc_ent *e;
	int fd;

	(void)state;
	assert_int_equal(ohc_new(1, "g", &c), 0);
	fd = newfd();
	e = ohc_add(c, &k1, fd);        /* held: as a handler would */
	add(c, 2);                      /* evicts 1 while it is in use */
	assert_false(has(c, 1));
	assert_true(fd_open(fd));       /* the handler can still use it */
	ohc_release(e);
	assert_false(fd_open(fd));      /* the last user closed it */
	ohc_free(c);
}

static void test_forget_drop(void **state)
{
	struct ohc *c;
	struct fh_key k1 = key(1), k2 = key(2);
	struct ohc_ent *e;
	int fd1 = newfd(), fd2 = newfd();

	(void)state;
	assert_int_equal(ohc_new(8, "g", &c), 0);
	ohc_release(ohc_add(c, &k1, fd1));
	ohc_forget(c, &k1);             /* removed by a client: closed now */
	assert_false(fd_open(fd1));
	assert_false(has(c, 1));
	ohc_forget(c, &k1);             /* twice: nothing */

	e = ohc_add(c, &k2, fd2);
	ohc_drop(e);                    /* found stale by its user */
	assert_false(has(c, 2));
	assert_true(fd_open(fd2));
	ohc_drop(e);                    /* twice: nothing */
	ohc_release(e);
	assert_false(fd_open(fd2));
	ohc_free(c);
}

static void test_duplicate_insert(void **state)
{
	struct ohc *c;
	struct fh_key k1 = key(1);
	struct ohc_ent *a, *b;
	int fd1 = newfd(), fd2 = newfd();

	(void)state;
	assert_int_equal(ohc_new(8, "g", &c), 0);
	a = ohc_add(c, &k1, fd1);
	b = ohc_add(c, &k1, fd2);       /* two handlers resolved it at once */
	assert_ptr_equal(a, b);
	assert_int_equal(ohc_fd(b), fd1);
	assert_false(fd_open(fd2));
	ohc_release(a);
	ohc_release(b);
	assert_true(fd_open(fd1));
	ohc_free(c);
}

static void test_pressure(void **state)
{
	struct ohc *c1, *c2;
	struct ohc_stats st;
	size_t closed;

	(void)state;
	assert_int_equal(ohc_new(16, "g1", &c1), 0);
	assert_int_equal(ohc_new(16, "g2", &c2), 0);
	for (uint8_t i = 0; i < 8; i++)
		add(c1, (uint8_t)(i * 10));
	add(c2, 1);
	closed = ohc_pressure();
	assert_int_equal(closed, 4 + 1);
	ohc_get_stats(c1, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.pressure_evictions, 4);
	/* The most recent half stays: 40..70. */
	assert_false(has(c1, 0));
	assert_false(has(c1, 30));
	assert_true(has(c1, 40));
	assert_true(has(c1, 70));
	ohc_get_stats(c2, &st);
	assert_int_equal(st.entries, 0);
	ohc_free(c1);
	assert_int_equal(ohc_pressure(), 0);  /* c2 empty, c1 gone */
	ohc_free(c2);
}

static void test_no_leak(void **state)
{
	struct ohc *c;
	int before = count_fds();

	(void)state;
	assert_int_equal(ohc_new(64, "g", &c), 0);
	for (int i = 0; i < 200; i++)
		add(c, (uint8_t)i);
	assert_int_equal(count_fds(), before + 64);
	assert_int_equal(ohc_shrink(c, 10), 10);
	assert_int_equal(count_fds(), before + 54);
	ohc_free(c);
	assert_int_equal(count_fds(), before);
}

/* A scratch file with @text; its path in @path (PATH_MAX). */
static int scratch(char *path, const char *text)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd;

	snprintf(path, 4096, "%s/test_ohc.XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fd = open(path, O_PATH | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static int accmode(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	return fl & O_ACCMODE;
}

static void test_data_fds(void **state)
{
	char path[4096], tmp[4200], buf[16];
	struct ohc *c;
	struct ohc_stats st;
	struct fh_key k1 = key(1);
	struct ohc_ent *e;
	struct stat sb;
	int before = count_fds(), rfd, wfd;

	(void)state;
	assert_int_equal(ohc_new(8, "g", &c), 0);
	e = ohc_add(c, &k1, scratch(path, "abcdef"));
	assert_non_null(e);
	assert_int_equal(ohc_data_peek(e, false), -1);   /* none yet, none opened */
	rfd = ohc_data_fd(e, false);
	assert_true(rfd >= 0);
	assert_int_equal(accmode(rfd), O_RDONLY);        /* never more than asked */
	assert_int_equal(ohc_data_fd(e, false), rfd);     /* kept: opened once */
	assert_int_equal(ohc_data_peek(e, true), -1);
	wfd = ohc_data_fd(e, true);
	assert_true(wfd >= 0 && wfd != rfd);
	assert_int_equal(accmode(wfd), O_WRONLY);
	assert_int_equal(pread(rfd, buf, sizeof(buf), 0), 6);
	assert_int_equal(pwrite(wfd, "XY", 2, 1), 2);
	assert_int_equal(pread(rfd, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "aXYdef", 6);
	/* Truncated on the filesystem directly: the next read sees it. */
	assert_int_equal(truncate(path, 2), 0);
	assert_int_equal(pread(rfd, buf, sizeof(buf), 0), 2);
	/* Replaced by rename: the descriptors still name the old inode,
	 * which has no link left (what the NFS layer answers STALE). */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	close(scratch(tmp, "new"));
	assert_int_equal(rename(tmp, path), 0);
	assert_int_equal(pread(rfd, buf, sizeof(buf), 0), 2);
	assert_int_equal(fstat(ohc_fd(e), &sb), 0);
	assert_int_equal(sb.st_nlink, 0);
	ohc_get_stats(c, &st);
	assert_int_equal(st.data_opens, 2);
	assert_int_equal(st.data_hits, 1);
	assert_int_equal(st.data_fds, 2);
	/* Closing an idle write descriptor (COMMIT): not while another
	 * holder of the entry may be using it; with ours the only one, yes. */
	{
		struct ohc_ent *other = ohc_get(c, &k1);

		assert_ptr_equal(other, e);
		assert_false(ohc_data_close_idle(e, true));
		assert_true(fd_open(wfd));
		ohc_release(other);
	}
	assert_true(ohc_data_close_idle(e, true));
	assert_false(fd_open(wfd));
	assert_int_equal(ohc_data_peek(e, true), -1);
	ohc_get_stats(c, &st);
	assert_int_equal(st.data_fds, 1);
	wfd = ohc_data_fd(e, true);                      /* the next WRITE reopens */
	assert_true(wfd >= 0);
	ohc_release(e);
	assert_true(fd_open(rfd));                       /* cached with the entry */
	assert_int_equal(count_fds(), before + 3);
	ohc_forget(c, &k1);                              /* removed: all three close */
	assert_false(fd_open(rfd));
	assert_false(fd_open(wfd));
	assert_int_equal(count_fds(), before);
	ohc_get_stats(c, &st);
	assert_int_equal(st.data_fds, 0);
	ohc_free(c);
	unlink(path);
}

static void test_data_fds_bounded(void **state)
{
	char p1[4096], p2[4096];
	struct ohc *c;
	struct ohc_stats st;
	struct fh_key k1 = key(1), k2 = key(2);
	struct ohc_ent *e;
	int before = count_fds(), rfd;

	(void)state;
	/* The limit counts descriptors: an entry and its two data ones fill 3. */
	assert_int_equal(ohc_new(3, "g", &c), 0);
	e = ohc_add(c, &k1, scratch(p1, "one"));
	rfd = ohc_data_fd(e, false);
	assert_true(ohc_data_fd(e, true) >= 0);
	ohc_release(e);
	ohc_get_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(count_fds(), before + 3);
	e = ohc_add(c, &k2, scratch(p2, "two"));         /* 4 > 3: 1 goes, with its data */
	assert_false(fd_open(rfd));
	assert_true(ohc_data_fd(e, false) >= 0);          /* 2 + 1 = 3 */
	ohc_release(e);
	ohc_get_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.data_fds, 1);
	assert_int_equal(count_fds(), before + 2);
	/* Out of descriptors: the data ones go with their entry. */
	assert_int_equal(ohc_pressure(), 2);
	assert_int_equal(count_fds(), before);
	assert_true(has(c, 1) == false && has(c, 2) == false);
	ohc_free(c);
	unlink(p1);
	unlink(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_in_use_outlives_eviction),
		cmocka_unit_test(test_forget_drop),
		cmocka_unit_test(test_duplicate_insert),
		cmocka_unit_test(test_pressure),
		cmocka_unit_test(test_no_leak),
		cmocka_unit_test(test_data_fds),
		cmocka_unit_test(test_data_fds_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
