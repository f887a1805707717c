/*
 * test_iobuf.c - READ's data buffers (src/nfs/iobuf.h): a released large
 * buffer is handed out again (its pages stay the process's), at most
 * NFSB_KEEP are kept, small buffers are exact and never kept, and a
 * buffer is usable over the whole size asked for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "nfs/iobuf.h"

static void test_large_reused(void **st)
{
	void *a, *b;

	(void)st;
	nfsb_drain();
	a = nfsb_get(NFSB_SIZE);
	assert_non_null(a);
	memset(a, 0xa5, NFSB_SIZE);         /* the whole size is ours */
	nfsb_put(a);
	assert_int_equal(nfsb_kept(), 1);
	b = nfsb_get(NFSB_LARGE);            /* any large read takes a kept one */
	assert_ptr_equal(a, b);
	assert_int_equal(nfsb_kept(), 0);
	memset(b, 0x5a, NFSB_SIZE);          /* and it is full size */
	nfsb_put(b);
	nfsb_drain();
	assert_int_equal(nfsb_kept(), 0);
}

static void test_small_not_kept(void **st)
{
	void *a;

	(void)st;
	nfsb_drain();
	a = nfsb_get(NFSB_LARGE - 1);
	assert_non_null(a);
	memset(a, 1, NFSB_LARGE - 1);
	nfsb_put(a);
	assert_int_equal(nfsb_kept(), 0);
	a = nfsb_get(0);
	assert_non_null(a);
	nfsb_put(a);
	assert_int_equal(nfsb_kept(), 0);
	nfsb_put(NULL);
	assert_null(nfsb_get(NFSB_SIZE + 1));
}

static void test_keep_bounded(void **st)
{
	void *v[NFSB_KEEP + 3];

	(void)st;
	nfsb_drain();
	for (unsigned i = 0; i < NFSB_KEEP + 3; i++) {
		v[i] = nfsb_get(NFSB_SIZE);
		assert_non_null(v[i]);
	}
	for (unsigned i = 0; i < NFSB_KEEP + 3; i++) {
		nfsb_put(v[i]);
		assert_int_equal(nfsb_kept(), i < NFSB_KEEP ? i + 1 : NFSB_KEEP);
	}
	/* the kept ones are handed out again, last released first */
	for (unsigned i = 0; i < NFSB_KEEP; i++)
		assert_ptr_equal(nfsb_get(NFSB_SIZE), v[NFSB_KEEP - 1 - i]);
	assert_int_equal(nfsb_kept(), 0);
	for (unsigned i = 0; i < NFSB_KEEP; i++)
		nfsb_put(v[i]);
	nfsb_drain();
	assert_int_equal(nfsb_kept(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_reused),
		cmocka_unit_test(test_small_not_kept),
		cmocka_unit_test(test_keep_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
