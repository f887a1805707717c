/*
 * test_metrics.c - merging nodes' Prometheus expositions (mt_merge), the
 * form `sgnfsctl metrics` prints for the whole cluster.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "fault_alloc.h"
#include "metrics.h"

static const char node_a[] =
	"# HELP sgnfs_up Whether the node runs.\n"
	"# TYPE sgnfs_up gauge\n"
	"sgnfs_up{node=\"a\"} 1\n"
	"# HELP sgnfs_lat Latency.\n"
	"# TYPE sgnfs_lat histogram\n"
	"sgnfs_lat_bucket{node=\"a\",le=\"+Inf\"} 2\n"
	"sgnfs_lat_sum{node=\"a\"} 0.5\n"
	"sgnfs_lat_count{node=\"a\"} 2\n";

/* A newer node: one family more, in the middle, and no final newline. */
static const char node_b[] =
	"# HELP sgnfs_up Whether the node runs.\n"
	"# TYPE sgnfs_up gauge\n"
	"sgnfs_up{node=\"b\"} 1\n"
	"# HELP sgnfs_new Only b has it.\n"
	"# TYPE sgnfs_new counter\n"
	"sgnfs_new_total{node=\"b\"} 7\n"
	"# HELP sgnfs_lat Latency.\n"
	"# TYPE sgnfs_lat histogram\n"
	"sgnfs_lat_bucket{node=\"b\",le=\"+Inf\"} 0\n"
	"sgnfs_lat_sum{node=\"b\"} 0\n"
	"sgnfs_lat_count{node=\"b\"} 0";

static const char merged[] =
	"# HELP sgnfs_up Whether the node runs.\n"
	"# TYPE sgnfs_up gauge\n"
	"sgnfs_up{node=\"a\"} 1\n"
	"sgnfs_up{node=\"b\"} 1\n"
	"# HELP sgnfs_lat Latency.\n"
	"# TYPE sgnfs_lat histogram\n"
	"sgnfs_lat_bucket{node=\"a\",le=\"+Inf\"} 2\n"
	"sgnfs_lat_sum{node=\"a\"} 0.5\n"
	"sgnfs_lat_count{node=\"a\"} 2\n"
	"sgnfs_lat_bucket{node=\"b\",le=\"+Inf\"} 0\n"
	"sgnfs_lat_sum{node=\"b\"} 0\n"
	"sgnfs_lat_count{node=\"b\"} 0\n"
	"# HELP sgnfs_new Only b has it.\n"
	"# TYPE sgnfs_new counter\n"
	"sgnfs_new_total{node=\"b\"} 7\n";

static void test_merge(void **st)
{
	const char *texts[] = { node_a, node_b };
	struct sbuf o = { 0 };

	(void)st;
	assert_int_equal(mt_merge(&o, texts, 2), 0);
	assert_non_null(o.s);
	assert_string_equal(o.s, merged);
	sb_free(&o);
}

/* One text comes out as it went in (a single node's exposition). */
static void test_merge_one(void **st)
{
	const char *texts[] = { node_a };
	struct sbuf o = { 0 };

	(void)st;
	assert_int_equal(mt_merge(&o, texts, 1), 0);
	assert_string_equal(o.s, node_a);
	sb_free(&o);
	assert_int_equal(mt_merge(&o, texts, 0), 0);
	assert_int_equal(o.len, 0);
	sb_free(&o);
}

/* A sample before any family cannot be placed: refused, nothing leaks. */
static void test_merge_orphan(void **st)
{
	const char *texts[] = { node_a, "sgnfs_up{node=\"c\"} 1\n" };
	struct sbuf o = { 0 };

	(void)st;
	assert_int_equal(mt_merge(&o, texts, 2), -EINVAL);
	sb_free(&o);
}

/* Every allocation failed in turn: -ENOMEM or the whole result, no leak
 * (the sanitizer build checks the leak). */
static void test_merge_alloc_failure(void **st)
{
	const char *texts[] = { node_a, node_b };
	long total;

	(void)st;
	fa_reset();
	{
		struct sbuf o = { 0 };

		assert_int_equal(mt_merge(&o, texts, 2), 0);
		sb_free(&o);
	}
	total = fa_calls();
	assert_true(total > 0);
	for (long n = 0; n < total; n++) {
		struct sbuf o = { 0 };
		int rc;

		fa_reset();
		fa_fail_at(n);
		rc = mt_merge(&o, texts, 2);
		fa_reset();
		if (rc == 0)
			assert_string_equal(o.s, merged);
		else
			assert_int_equal(rc, -ENOMEM);
		sb_free(&o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_merge_one),
		cmocka_unit_test(test_merge_orphan),
		cmocka_unit_test(test_merge_alloc_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
