/*
 * test_lk_slab.c - the lock nodes' page allocator (lock/lk_slab.h): objects
 * are distinct, inside their page, aligned and never overlap across pages;
 * a page whose last object is freed goes back (one spare kept); freed
 * slots are reused before a new page is mapped; fini unmaps live pages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lock/lk_slab.h"

#define OSZ 120

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void test_distinct_and_pages(void **state)
{
	struct lk_slab s;
	size_t n;
	void **v;

	(void)state;
	lk_slab_init(&s, OSZ);
	assert_true(s.per_page > 500);          /* 64 KiB pages, 120-byte nodes */
	n = (size_t)s.per_page * 3 + 7;         /* four pages, the last partial */
	v = calloc(n, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = lk_slab_alloc(&s);
		assert_non_null(v[i]);
		assert_int_equal((uintptr_t)v[i] % 8, 0);
		memset(v[i], (int)(i & 0xff), OSZ);     /* whole object writable */
	}
	assert_int_equal(s.npages, 4);
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		assert_true((uintptr_t)v[i] >= (uintptr_t)v[i - 1] + OSZ);   /* no overlap */
	for (size_t i = 0; i < n; i++) {
		uintptr_t pg = (uintptr_t)v[i] & ~(uintptr_t)(LK_SLAB_PAGE - 1);

		assert_true((uintptr_t)v[i] + OSZ <= pg + LK_SLAB_PAGE);     /* inside its page */
	}
	/* Free everything: every page but one spare goes back. */
	for (size_t i = 0; i < n; i++)
		lk_slab_free(&s, v[i]);
	assert_int_equal(s.npages, 1);
	assert_null(s.partial);
	assert_non_null(s.spare);
	/* The spare is used before anything new is mapped. */
	v[0] = lk_slab_alloc(&s);
	assert_int_equal(s.npages, 1);
	assert_null(s.spare);
	lk_slab_free(&s, v[0]);
	lk_slab_fini(&s);
	assert_int_equal(s.npages, 0);
	free(v);
}

static void test_reuse_before_new_page(void **state)
{
	struct lk_slab s;
	void *a[600], *x;
	size_t n;

	(void)state;
	lk_slab_init(&s, OSZ);
	n = s.per_page + 10;                    /* two pages */
	assert_true(n <= 600);
	for (size_t i = 0; i < n; i++)
		a[i] = lk_slab_alloc(&s);
	assert_int_equal(s.npages, 2);
	/* A freed slot in the full first page is handed out again (LIFO). */
	lk_slab_free(&s, a[5]);
	x = lk_slab_alloc(&s);
	assert_ptr_equal(x, a[5]);
	assert_int_equal(s.npages, 2);
	/* fini unmaps pages with live objects too. */
	lk_slab_fini(&s);
	assert_int_equal(s.npages, 0);
	assert_null(s.all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distinct_and_pages),
		cmocka_unit_test(test_reuse_before_new_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
