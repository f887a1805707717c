/*
 * test_config_reload.c - which configuration changes a running node takes
 * (config/reload.h): every live change accepted and described, every other
 * change refused with its reason, an fsid that moves to another path or an
 * export that moves to another group refused.
 *
 * Each case loads a base file and a variant made by one textual edit of it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/reload.h"

static const char base[] =
	"[cluster]\nname = t\nrun_dir = /tmp/r\nlog_level = info\n"
	"[node a]\n[node b]\n"
	"[group g1]\nvip = 127.0.9.1\nnodes = a b\ngrace = 5\n"
	"[group g2]\nvip = 127.0.9.2\nnodes = b\n"
	"[export /srv/g1/a]\ngroup = g1\nfsid = 1\nclients = 127.0.0.0/8\n"
	"[export /srv/g1/b]\ngroup = g1\nfsid = 2\nclients = 127.0.0.0/8\n"
	"[export /srv/g2/a]\ngroup = g2\nfsid = 3\nclients = 127.0.0.0/8\n";

static struct cfg_cluster *load(const char *text)
{
	char path[] = "/tmp/test_reload.XXXXXX";
	struct cfg_cluster *c = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cfg_load(path, stderr, &c), 0);
	unlink(path);
	return c;
}

/* base with the first @from replaced by @to. */
static struct cfg_cluster *variant(const char *from, const char *to)
{
	char text[4096];
	const char *p = strstr(base, from);

	assert_non_null(p);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
	return load(text);
}

struct described {
	char lines[8][256];
	int n;
};

static void collect(void *arg, const char *change)
{
	struct described *d = arg;

	assert_true(d->n < 8);
	snprintf(d->lines[d->n++], sizeof(d->lines[0]), "%s", change);
}

/* Check the verdict of base -> variant(@from, @to): accepted (@why NULL) or
 * refused with a reason containing @why. */
static void verdict(const char *from, const char *to, const char *why)
{
	struct cfg_cluster *a = load(base), *b = variant(from, to);
	char reason[512] = "";
	int rc = rl_check(a, b, reason, sizeof(reason));

	if (!why) {
		if (rc != 0)
			fail_msg("%s -> %s refused: %s", from, to, reason);
	} else {
		assert_int_equal(rc, -EPERM);
		if (!strstr(reason, why))
			fail_msg("%s -> %s: reason '%s' lacks '%s'", from, to, reason, why);
	}
	cfg_free(a);
	cfg_free(b);
}

static void test_live_changes(void **st)
{
	verdict("clients = 127.0.0.0/8\n[export /srv/g1/b]", "clients = 10.0.0.0/8\n[export /srv/g1/b]", NULL);
	verdict("group = g1\nfsid = 2\n", "group = g1\nfsid = 2\naccess = ro\nsquash = all\n", NULL);
	verdict("log_level = info", "log_level = debug", NULL);
	verdict("name = t\n", "name = t\njournal_inflight = 2\n", NULL);
	/* an export added, and one (not the first) removed */
	verdict("[export /srv/g2/a]", "[export /srv/g1/c]\ngroup = g1\nfsid = 9\nclients = ::1\n"
		"[export /srv/g2/a]", NULL);
	verdict("[export /srv/g1/b]\ngroup = g1\nfsid = 2\nclients = 127.0.0.0/8\n", "", NULL);
}

static void test_refused(void **st)
{
	verdict("grace = 5", "grace = 6", "[group g1] grace: 5 -> 6; restart");
	verdict("vip = 127.0.9.2", "vip = 127.0.9.3", "[group g2] vip");
	verdict("nodes = a b", "nodes = b a", "[group g1] nodes");
	verdict("name = t\n", "name = t\nnfs_port = 2050\n", "[cluster] nfs_port: 2049 -> 2050");
	verdict("run_dir = /tmp/r", "run_dir = /tmp/s", "[cluster] run_dir");
	verdict("name = t\n", "name = t\njournal_io = thread\n", "[cluster] journal_io");
	/* Accepted and never applied, once: a reload must not say yes to
	 * what the running service cannot take. */
	verdict("name = t\n", "name = t\nmax_queued_per_group = 9\n",
		"[cluster] max_queued_per_group: 256 -> 9; restart");
	verdict("name = t\n", "name = t\nmax_queued_per_host = 9\n",
		"[cluster] max_queued_per_host: 64 -> 9; restart");
	verdict("name = t\n", "name = t\nmax_locks = 9\n", "[cluster] max_locks: 4194304 -> 9");
	verdict("name = t\n", "name = t\nmax_names = 9\n", "[cluster] max_names: 65536 -> 9");
	verdict("[node b]\n", "[node b]\n[node c]\n", "[node] sections: 2 -> 3");
	verdict("[group g2]\nvip = 127.0.9.2\nnodes = b\n", "[group g2]\nvip = 127.0.9.2\nnodes = b\n"
		"[group g3]\nvip = 127.0.9.3\nnodes = b\n[export /srv/g3]\ngroup = g3\nfsid = 7\n"
		"clients = ::1\n", "[group] sections: 2 -> 3");
	verdict("fsid = 2", "fsid = 8", "[export /srv/g1/b] fsid: 2 -> 8");
	/* the first export holds .sgnfs/ */
	verdict("[export /srv/g1/a]", "[export /srv/g1/z]", "first export");
	/* fsid 2 given to a new path: old handles would open the new files */
	verdict("[export /srv/g1/b]", "[export /srv/g1/c]", "fsid 2 was export /srv/g1/b's");
	/* an export moving to another group (after that group's first) */
	verdict("[export /srv/g1/b]\ngroup = g1\nfsid = 2\nclients = 127.0.0.0/8\n"
		"[export /srv/g2/a]\ngroup = g2\nfsid = 3\nclients = 127.0.0.0/8\n",
		"[export /srv/g2/a]\ngroup = g2\nfsid = 3\nclients = 127.0.0.0/8\n"
		"[export /srv/g1/b]\ngroup = g2\nfsid = 2\nclients = 127.0.0.0/8\n",
		"[export /srv/g1/b] group: g1 -> g2");
	verdict("grace = 5\n", "grace = 5\njournal = no\n", "[group g1] journal");
}

static void test_describe(void **st)
{
	struct cfg_cluster *a = load(base);
	struct cfg_cluster *b = variant("[export /srv/g1/b]\ngroup = g1\nfsid = 2\nclients = 127.0.0.0/8\n",
					"[export /srv/g1/c]\ngroup = g1\nfsid = 9\nclients = ::1\n"
					"squash = none\n");
	struct cfg_cluster *d = variant("group = g1\nfsid = 2\n", "group = g1\nfsid = 2\nsecure = yes\n");
	struct described out = { .n = 0 };

	assert_true(rl_exports_differ(&a->groups[0], &b->groups[0]));
	assert_false(rl_exports_differ(&a->groups[1], &b->groups[1]));
	rl_describe(&a->groups[0], &b->groups[0], collect, &out);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.lines[0], "export /srv/g1/c added (fsid 9)");
	assert_string_equal(out.lines[1], "export /srv/g1/b removed (fsid 2)");
	out.n = 0;
	assert_true(rl_exports_differ(&a->groups[0], &d->groups[0]));
	rl_describe(&a->groups[0], &d->groups[0], collect, &out);
	assert_int_equal(out.n, 1);
	assert_string_equal(out.lines[0], "export /srv/g1/b: secure changed");
	out.n = 0;
	rl_describe(&a->groups[0], &a->groups[0], collect, &out);
	assert_int_equal(out.n, 0);
	assert_false(rl_exports_differ(&a->groups[0], &a->groups[0]));
	cfg_free(a);
	cfg_free(b);
	cfg_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_changes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
