/*
 * test_lease.c - the embedded lease (src/cluster/lease.c) between two
 * "nodes" in one process: OFD locks of different open file descriptions
 * conflict even within a process, so two struct lease on one state
 * directory behave as two nodes do.
 *
 * Checked (order and outcome): the owner's "bound" lock is what the other
 * node sees as "listening", never the lease alone; a planned move to a
 * live node passes the lease to it (through its waiter or its poll); a move
 * hint naming a node that is not running is void, so the old owner takes
 * the group back; lease_node_up follows the node's life.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cluster/lease.h"

struct node {
	const char *name;
	struct lease *l;
	int acquired;                 /* on_acquired calls */
};

static uv_loop_t loop;
static char dir[] = "/tmp/test_lease.XXXXXX";
static const char *const prefs[] = { "a", "b" };

static void on_acquired(void *arg)
{
	((struct node *)arg)->acquired++;
}

static void node_open(struct node *n, const char *name)
{
	n->name = name;
	n->acquired = 0;
	assert_int_equal(lease_new(&loop, dir, "g1", name, prefs, 2, NULL, on_acquired, n,
				   &n->l), 0);
}

static void node_close(struct node *n)
{
	lease_free(n->l);
	n->l = NULL;
	uv_run(&loop, UV_RUN_NOWAIT); /* the close callbacks */
}

/* Run the loop until @pred holds; the bound on turns only guards against
 * a hang (each turn waits for a poll tick or a wake). */
static bool run_until(bool (*pred)(void *), void *arg)
{
	for (int i = 0; i < 200; i++) {
		if (pred(arg))
			return true;
		uv_run(&loop, UV_RUN_ONCE);
	}
	return pred(arg);
}

static bool owns(void *arg)
{
	return lease_owned(((struct node *)arg)->l);
}

static int setup(void **st)
{
	(void)st;
	assert_non_null(mkdtemp(dir));
	return uv_loop_init(&loop);
}

static int teardown(void **st)
{
	char cmd[128];

	(void)st;
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_bound_and_move(void **st)
{
	struct node a, b;

	(void)st;
	node_open(&a, "a");
	node_open(&b, "b");
	/* a is preferred and b sees it alive: a takes the group. */
	assert_true(run_until(owns, &a));
	assert_int_equal(a.acquired, 1);
	assert_false(lease_owned(b.l));
	assert_true(lease_node_up(a.l, "b"));
	assert_true(lease_node_up(b.l, "a"));

	/* Holding the lease is not listening. */
	assert_true(lease_held(b.l));
	assert_false(lease_bound_elsewhere(b.l));
	lease_set_bound(a.l, true);
	assert_true(lease_bound_elsewhere(b.l));
	assert_false(lease_bound_elsewhere(a.l)); /* its own lock is not "elsewhere" */
	/* A node that does not own the lease cannot claim to listen. */
	lease_set_bound(b.l, true);
	assert_false(lease_bound_elsewhere(a.l));

	/* Planned move to b: releasing drops a's bound lock with the lease. */
	lease_release(a.l, "b", true);
	assert_false(lease_owned(a.l));
	assert_false(lease_bound_elsewhere(b.l));
	assert_true(run_until(owns, &b));
	assert_int_equal(b.acquired, 1);
	assert_false(lease_owned(a.l));
	/* b holds the lease but a must not count on it until it listens. */
	assert_true(lease_held(a.l));
	assert_false(lease_bound_elsewhere(a.l));
	lease_set_bound(b.l, true);
	assert_true(lease_bound_elsewhere(a.l));

	/* b stops listening, then goes away: a takes the group back. */
	lease_set_bound(b.l, false);
	assert_false(lease_bound_elsewhere(a.l));
	node_close(&b);
	assert_false(lease_node_up(a.l, "b"));
	assert_true(run_until(owns, &a));
	assert_int_equal(a.acquired, 2);
	node_close(&a);
}

/* A move to a node that is not running: the hint is void and the old
 * owner takes the group back instead of leaving it offline until the
 * hint expires. */
static void test_hint_for_dead_node_is_void(void **st)
{
	struct node a, b;
	char path[256];
	FILE *f;

	(void)st;
	node_open(&a, "a");
	node_open(&b, "b");
	assert_true(run_until(owns, &a));
	node_close(&b);
	assert_false(lease_node_up(a.l, "b"));
	lease_release(a.l, "b", true);
	assert_false(lease_owned(a.l));
	/* Dated an hour ahead: the hint cannot expire while the test runs,
	 * so only its being void lets a take the group back. */
	snprintf(path, sizeof(path), "%s/target", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "b %lld\n", (long long)time(NULL) + 3600);
	assert_int_equal(fclose(f), 0);
	assert_true(run_until(owns, &a));
	assert_int_equal(a.acquired, 2);
	node_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_and_move),
		cmocka_unit_test(test_hint_for_dead_node_is_void),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
