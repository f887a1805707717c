/*
 * test_slab.c - the page allocator of lock nodes and request blocks
 * (common/slab.h): objects are distinct, inside their page, aligned and
 * never overlap across pages; a page whose last object is freed goes back
 * (but the @keep kept empty); freed slots are reused before a new page is
 * mapped; fini unmaps live pages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "slab.h"

#define OSZ 120

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void test_distinct_and_pages(void **state)
{
	struct slab s;
	size_t n;
	void **v;

	(void)state;
	slab_init(&s, OSZ, 1);
	assert_true(s.per_page > 500);          /* 64 KiB pages, 120-byte nodes */
	n = (size_t)s.per_page * 3 + 7;         /* four pages, the last partial */
	v = calloc(n, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = slab_alloc(&s);
		assert_non_null(v[i]);
		assert_int_equal((uintptr_t)v[i] % 8, 0);
		memset(v[i], (int)(i & 0xff), OSZ);     /* whole object writable */
	}
	assert_int_equal(s.npages, 4);
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (size_t i = 1; i < n; i++)
		assert_true((uintptr_t)v[i] >= (uintptr_t)v[i - 1] + OSZ);   /* no overlap */
	for (size_t i = 0; i < n; i++) {
		uintptr_t pg = (uintptr_t)v[i] & ~(uintptr_t)(SLAB_PAGE - 1);

		assert_true((uintptr_t)v[i] + OSZ <= pg + SLAB_PAGE);     /* inside its page */
	}
	/* Free everything: every page but one spare goes back. */
	for (size_t i = 0; i < n; i++)
		slab_free(&s, v[i]);
	assert_int_equal(s.npages, 1);
	assert_null(s.partial);
	assert_non_null(s.spare);
	/* The spare is used before anything new is mapped. */
	v[0] = slab_alloc(&s);
	assert_int_equal(s.npages, 1);
	assert_null(s.spare);
	slab_free(&s, v[0]);
	slab_fini(&s);
	assert_int_equal(s.npages, 0);
	free(v);
}

static void test_reuse_before_new_page(void **state)
{
	struct slab s;
	void *a[600], *x;
	size_t n;

	(void)state;
	slab_init(&s, OSZ, 1);
	n = s.per_page + 10;                    /* two pages */
	assert_true(n <= 600);
	for (size_t i = 0; i < n; i++)
		a[i] = slab_alloc(&s);
	assert_int_equal(s.npages, 2);
	/* A freed slot in the full first page is handed out again (LIFO). */
	slab_free(&s, a[5]);
	x = slab_alloc(&s);
	assert_ptr_equal(x, a[5]);
	assert_int_equal(s.npages, 2);
	/* fini unmaps pages with live objects too. */
	slab_fini(&s);
	assert_int_equal(s.npages, 0);
	assert_null(s.all);
}

/* With keep = 3 (the RPC service's request blocks keep a few): five
 * pages' objects freed leave three empty pages mapped, all used again
 * before a new page is mapped; the objects are 2 KiB ones. */
static void test_keep_several(void **state)
{
	struct slab s;
	size_t n;
	void **v;

	(void)state;
	slab_init(&s, 2048, 3);
	assert_int_equal(s.per_page, 31);       /* (64 KiB - header) / 2 KiB */
	n = (size_t)s.per_page * 5;
	v = calloc(n, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = slab_alloc(&s);
		assert_non_null(v[i]);
		memset(v[i], 0x5a, 2048);
	}
	assert_int_equal(s.npages, 5);
	for (size_t i = 0; i < n; i++)
		slab_free(&s, v[i]);
	assert_int_equal(s.npages, 3);
	assert_int_equal(s.nspare, 3);
	for (size_t i = 0; i < (size_t)s.per_page * 3; i++)
		v[i] = slab_alloc(&s);
	assert_int_equal(s.npages, 3);          /* the kept pages, nothing new */
	assert_int_equal(s.nspare, 0);
	v[n - 1] = slab_alloc(&s);
	assert_int_equal(s.npages, 4);
	slab_fini(&s);
	assert_int_equal(s.npages, 0);
	assert_int_equal(s.nspare, 0);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distinct_and_pages),
		cmocka_unit_test(test_reuse_before_new_page),
		cmocka_unit_test(test_keep_several),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
