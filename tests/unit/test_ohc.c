/*
 * test_ohc.c - the open-handle cache (nfs/ohc.h): hits and misses by the
 * whole key (a generation byte apart is another object), LRU order of
 * eviction at the limit, an entry in use outliving its eviction and its
 * descriptor closed by the last release, forget and drop, a second insert
 * of one key keeping the first descriptor, descriptor pressure halving
 * every cache, and no descriptor left open after ohc_free.
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
