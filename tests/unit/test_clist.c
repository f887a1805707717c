/*
 * test_clist.c - the per-group client list: name rules, durable entries,
 * addresses, reload by another process, two names with one file, lazy idle removal, leftovers from a
 * crash, refusal when the directory cannot be written, the load's parse, and
 * the notifications prepared from a loaded list off the loop and started paced;
 * a long list loaded in io_uring batches equals the plain way's load, with
 * the same bad files refused and named in the log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "log.h"
#include "nsm/clist.h"
#include "nsm/notify.h"
#include "nsm.h"
#include "pmap.h"
#include "rpc/rpc.h"
#include "sfile.h"

static char dir[256], statedir[300], clients[320];
static uv_loop_t loop;

static int setup(void **st)
{
	snprintf(dir, sizeof(dir), "/var/tmp/test_clist.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(statedir, sizeof(statedir), "%s/.sgnfs", dir);
	snprintf(clients, sizeof(clients), "%s/clients", statedir);
	uv_loop_init(&loop);
	return 0;
}

static int teardown(void **st)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "chattr -i %s 2>/dev/null; rm -rf %s", clients, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

static struct sockaddr_storage addr4(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr);
	return ss;
}

struct wait { int calls; int rc; };

static void on_done(void *arg, int rc)
{
	struct wait *w = arg;
	w->calls++;
	w->rc = rc;
}

static void run_until(struct wait *w, int calls)
{
	for (int i = 0; i < 2000 && w->calls < calls; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(w->calls, calls);
}

static void close_list(struct clist *cl)
{
	clist_close(cl);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_names(void **st)
{
	char big[1100];
	memset(big, 'a', sizeof(big));
	assert_int_equal(clist_name_check("host1.example", 13), 0);
	assert_int_equal(clist_name_check("%n%s%x", 6), 0); /* harmless as data */
	assert_int_equal(clist_name_check("", 0), -EINVAL);
	assert_int_equal(clist_name_check("a/b", 3), -EINVAL);
	assert_int_equal(clist_name_check("..", 2), -EINVAL);
	assert_int_equal(clist_name_check(".hidden", 7), -EINVAL);
	assert_int_equal(clist_name_check("a b", 3), -EINVAL);
	assert_int_equal(clist_name_check("a\tb", 3), -EINVAL);
	assert_int_equal(clist_name_check("a\nb", 3), -EINVAL);
	assert_int_equal(clist_name_check("a\x7f", 2), -EINVAL);
	assert_int_equal(clist_name_check(big, 1024), 0);
	assert_int_equal(clist_name_check(big, 1025), -EINVAL);

	/* A short name spelling a long name's file name (150 bytes, '~',
	 * 16 lowercase hex digits) would share that client's file. */
	char spell[200];
	memset(spell, 'L', 150);
	memcpy(spell + 150, "~0123456789abcdef", 18);
	assert_int_equal(clist_name_check(spell, 167), -EINVAL);
	spell[160] = 'A'; /* not the shape: uppercase is never written */
	assert_int_equal(clist_name_check(spell, 167), 0);
	spell[160] = '9';
	assert_int_equal(clist_name_check(spell, 166), 0); /* shorter */
}

static void on_closed(void *arg)
{
	(*(int *)arg)++;
}

/* clist_close_then says when the writes in flight are done: after the
 * close, never before (the group leaves only then), once; and not at all
 * when nothing was in flight. */
static void test_close_then_waits_for_writes(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.1");
	char path[512];
	int closed = 0;

	(void)st;
	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, "late1", &a1, on_done, &w), 0);
	assert_true(clist_close_then(cl, on_closed, &closed));
	assert_int_equal(closed, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(closed, 1);
	assert_int_equal(w.calls, 0);           /* its waiter went with the close */
	snprintf(path, sizeof(path), "%s/late1", clients);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	assert_false(clist_close_then(cl, on_closed, &closed));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(closed, 1);
}

static void test_durable_entry_and_reload(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.1"), a2 = addr4("127.1.0.2");
	struct sockaddr_storage a3 = addr4("127.1.0.3");
	char path[512], buf[512];
	char longname[1025];

	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, "client1", &a1, on_done, &w), 0);
	assert_int_equal(w.calls, 0); /* not before it is durable */
	run_until(&w, 1);
	assert_int_equal(w.rc, 0);
	snprintf(path, sizeof(path), "%s/client1", clients);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	assert_non_null(strstr(buf, "sgnfs-clist=1\nname=client1\n"));
	assert_non_null(strstr(buf, "addr=127.1.0.1\n"));

	/* Already durable: no write, no callback. */
	assert_int_equal(clist_ensure(cl, "client1", &a1, on_done, &w), 1);
	assert_int_equal(clist_writes(cl), 1);
	/* A new address must be durable too before the grant. */
	assert_int_equal(clist_ensure(cl, "client1", &a2, on_done, &w), 0);
	run_until(&w, 2);
	assert_int_equal(clist_writes(cl), 2);
	/* The first address (kept in the entry) moved into the array. */
	assert_true(clist_has_addr(cl, "client1", &a1));
	assert_true(clist_has_addr(cl, "client1", &a2));

	memset(longname, 'L', 1024);
	longname[1024] = 0;
	assert_int_equal(clist_ensure(cl, longname, &a1, on_done, &w), 0);
	run_until(&w, 3);
	assert_int_equal(w.rc, 0);
	assert_int_equal(clist_ensure(cl, "bad/name", &a1, on_done, &w), -EINVAL);
	close_list(cl);

	/* Another process (the next owner) reads the same list. */
	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	assert_int_equal(clist_count(cl), 2);
	assert_true(clist_has_addr(cl, "client1", &a1));
	assert_true(clist_has_addr(cl, "client1", &a2));
	assert_false(clist_has_addr(cl, "client1", &(struct sockaddr_storage){ 0 }));
	assert_true(clist_has_addr(cl, longname, &a1));
	/* A third address to a loaded entry with two: all three kept. */
	assert_int_equal(clist_ensure(cl, "client1", &a3, on_done, &w), 0);
	run_until(&w, 4);
	assert_int_equal(w.rc, 0);
	assert_true(clist_has_addr(cl, "client1", &a1));
	assert_true(clist_has_addr(cl, "client1", &a2));
	assert_true(clist_has_addr(cl, "client1", &a3));
	close_list(cl);
}

/*
 * Two long names with one file name.  The file name of a long name is its
 * first 150 bytes and an FNV-1a hash, which is not keyed (every node must
 * find the same file), so a client can compute a name whose file is
 * another client's; these two differ only in their last 11 bytes and were
 * found by a birthday search (FNV-1a 64 of both: be386829e85102fc).  Had
 * both been taken, the second's write would replace the first's entry,
 * and after a failover the first client would not be told to reclaim.
 */
static void test_file_name_clash(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.1"), a2 = addr4("127.1.0.2");
	char n1[256], n2[256], sd[320];
	int len = snprintf(n1, sizeof(n1), "sgnfs-fnv-collision-test-%0175d", 0);

	assert_int_equal(len, 200);
	snprintf(sd, sizeof(sd), "%s/clash", dir); /* a list of its own */
	memset(n1 + 25, 'x', 175);
	memcpy(n2, n1, 200);
	memcpy(n1 + 200, "MAHraLfs7T1", 12);
	memcpy(n2 + 200, "co1Tz0yYhiD", 12);

	assert_int_equal(clist_open(&loop, sd, 300, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, n1, &a1, on_done, &w), 0);
	run_until(&w, 1);
	assert_int_equal(w.rc, 0);
	assert_int_equal(clist_ensure(cl, n2, &a2, on_done, &w), -EEXIST);
	assert_int_equal(clist_count(cl), 1);
	assert_true(clist_has_addr(cl, n1, &a1));
	assert_false(clist_has_addr(cl, n2, &a2));
	/* The first client is not disturbed by the refusal. */
	assert_int_equal(clist_ensure(cl, n1, &a1, on_done, &w), 1);
	close_list(cl);

	/* The next owner finds the first client, whose file it stays. */
	assert_int_equal(clist_open(&loop, sd, 300, "g1", &cl), 0);
	assert_int_equal(clist_count(cl), 1);
	assert_true(clist_has_addr(cl, n1, &a1));
	assert_false(clist_has_addr(cl, n2, &a2));
	close_list(cl);
}

static void holding_of(void *arg, const struct clist_entry_info *e)
{
	if (strcmp(e->name, "listed1") == 0)
		*(int *)arg = e->holding;
}

static int holding(struct clist *cl)
{
	int h = -1;

	clist_foreach(cl, holding_of, &h);
	return h;
}

/*
 * clist_listed / clist_hold_listed answer clist_ensure's "1" case only:
 * the name durable with that address.  Not for an unknown name, a write in
 * flight, another address, an entry being removed; hold_listed marks it
 * holding, and when it says no it changes nothing (clist_ensure still
 * writes the new address).
 */
static void test_listed(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.1"), a2 = addr4("127.1.0.2");
	uint64_t h1 = clist_name_hash("listed1");

	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	assert_false(clist_listed(cl, "listed1", h1, &a1));
	assert_false(clist_hold_listed(cl, "listed1", h1, &a1));
	assert_int_equal(clist_ensure(cl, "listed1", &a1, on_done, &w), 0);
	assert_false(clist_listed(cl, "listed1", h1, &a1)); /* not durable yet */
	run_until(&w, 1);
	assert_true(clist_listed(cl, "listed1", h1, &a1));
	assert_false(clist_listed(cl, "listed1", h1, &a2));
	assert_false(clist_hold_listed(cl, "listed1", h1, &a2));
	clist_release(cl, "listed1", h1);
	assert_int_equal(holding(cl), 0);
	assert_false(clist_hold_listed(cl, "listed1", h1, &a2));
	assert_int_equal(holding(cl), 0);            /* a "no" changed nothing */
	assert_true(clist_hold_listed(cl, "listed1", h1, &a1));
	assert_int_equal(holding(cl), 1);
	assert_int_equal(clist_writes(cl), 1);
	assert_int_equal(clist_ensure(cl, "listed1", &a2, on_done, &w), 0);
	run_until(&w, 2);
	assert_true(clist_listed(cl, "listed1", h1, &a2));
	clist_release(cl, "listed1", h1);
	clist_forget(cl, "listed1");                  /* unlink in flight */
	assert_false(clist_listed(cl, "listed1", h1, &a1));
	/* A long name is kept under its file name's hash: clist_name_hash
	 * says the same, and a hash that is not the name's finds nothing. */
	{
		char lname[300];
		uint64_t hl;

		memset(lname, 'l', sizeof(lname) - 1);
		lname[sizeof(lname) - 1] = '\0';
		hl = clist_name_hash(lname);
		assert_int_equal(clist_ensure(cl, lname, &a1, on_done, &w), 0);
		run_until(&w, 3);
		assert_true(clist_listed(cl, lname, hl, &a1));
		assert_false(clist_listed(cl, lname, hl ^ 1, &a1));
		assert_false(clist_listed(cl, lname, h1, &a1));
	}
	close_list(cl);
}

static void test_leftovers_and_foreign_files(void **st)
{
	struct clist *cl;
	char path[512];

	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	close_list(cl);
	snprintf(path, sizeof(path), "%s/.tmp-half", clients);
	FILE *f = fopen(path, "w");
	fputs("sgnfs-clist=1\nname=ha", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/planted", clients);
	f = fopen(path, "w");
	fputs("sgnfs-clist=1\nname=victim\n", f); /* name does not match file */
	fclose(f);
	size_t before;
	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	before = clist_count(cl);
	assert_false(clist_has_addr(cl, "victim", &(struct sockaddr_storage){ 0 }));
	snprintf(path, sizeof(path), "%s/.tmp-half", clients);
	assert_int_equal(access(path, F_OK), -1); /* removed at load */
	close_list(cl);
	(void)before;
}

static void test_idle_removal(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.9");
	char path[512];

	assert_int_equal(clist_open(&loop, statedir, 1, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, "idler", &a1, on_done, &w), 0);
	run_until(&w, 1);
	snprintf(path, sizeof(path), "%s/idler", clients);
	assert_int_equal(access(path, F_OK), 0);
	clist_release(cl, "idler", clist_name_hash("idler"));
	/* Still there right after release: churn costs no writes. */
	assert_int_equal(access(path, F_OK), 0);
	uint64_t start = uv_now(&loop);
	while (access(path, F_OK) == 0 && uv_now(&loop) - start < 5000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(access(path, F_OK), -1);
	close_list(cl);
}

/*
 * A group loads its list on the thread pool (clist_open without a loop) and
 * attaches it on the loop: the entries are there before the attach, a list
 * closed unattached is freed (ASan: no leak), and the attach starts the
 * idle clock, so an idle client still leaves the list.
 */
static void test_load_off_loop(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.7");
	char path[512];

	assert_int_equal(clist_open(&loop, statedir, 1, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, "loaded", &a1, on_done, &w), 0);
	run_until(&w, 1);
	close_list(cl);

	assert_int_equal(clist_open(NULL, statedir, 1, "g1", &cl), 0);
	assert_int_equal(clist_count(cl), 1);
	assert_true(clist_has_addr(cl, "loaded", &a1));
	clist_close(cl); /* never attached: no handle to close */

	assert_int_equal(clist_open(NULL, statedir, 1, "g1", &cl), 0);
	clist_attach(cl, &loop);
	snprintf(path, sizeof(path), "%s/loaded", clients);
	assert_int_equal(access(path, F_OK), 0);
	uint64_t start = uv_now(&loop);
	while (access(path, F_OK) == 0 && uv_now(&loop) - start < 5000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(access(path, F_OK), -1); /* idle since the attach */
	close_list(cl);
}

/*
 * A loaded entry's idle clock starts at the attach, not before: with
 * client_idle = 8 s the sweep runs every 2 s, and the first two sweeps after
 * the attach (the entry 4 s short of idle) leave it; it goes once idle.
 * Order, not speed: the sweep that may remove it comes after those that
 * must not.
 */
static void test_loaded_idle_from_attach(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.6");
	char path[512];
	uint64_t start;

	(void)st;
	assert_int_equal(clist_open(&loop, statedir, 8, "g1", &cl), 0);
	assert_int_equal(clist_ensure(cl, "early", &a1, on_done, &w), 0);
	run_until(&w, 1);
	close_list(cl);

	assert_int_equal(clist_open(NULL, statedir, 8, "g1", &cl), 0);
	uv_update_time(&loop);
	clist_attach(cl, &loop);
	snprintf(path, sizeof(path), "%s/early", clients);
	start = uv_now(&loop);
	/* Past the first sweep (2 s) and whatever I/O it started, up to the
	 * second (4 s): still 4 s short of idle. */
	while (uv_now(&loop) - start < 3000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(access(path, F_OK), 0); /* two sweeps ran; not idle yet */
	assert_int_equal(clist_count(cl), 1);
	while (access(path, F_OK) == 0 && uv_now(&loop) - start < 20000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(access(path, F_OK), -1);
	close_list(cl);
}

/* @len bytes of @text as the file @fname in the directory @d. */
static void plant_in(const char *d, const char *fname, const char *text, size_t len)
{
	char path[PATH_MAX];
	FILE *f;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", d, fname);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void plant(const char *fname, const char *text, size_t len)
{
	plant_in(clients, fname, text, len);
}

/*
 * The idle sweep examines the entries it removes, not the list: 2,000
 * loaded entries of which all but three are held again; every sweep looks
 * at the three (and at most one more), and the held ones are never touched.
 * A client released later leaves after them.  Counts, not times: the
 * sweeps and the entries they examined (clist_sweep_stats).
 */
static void test_idle_sweep_examines_expired(void **st)
{
	enum { N = 2000, K = 3 };
	struct clist *cl;
	char sd[400], cd[420], name[32], text[160], path[512];
	uint64_t sweeps, examined, start;
	struct sockaddr_storage a;

	(void)st;
	snprintf(sd, sizeof(sd), "%s/sw", dir);
	snprintf(cd, sizeof(cd), "%s/clients", sd);
	assert_int_equal(mkdir(sd, 0700), 0);
	assert_int_equal(mkdir(cd, 0700), 0);
	for (int i = 0; i < N; i++) {
		int n = snprintf(text, sizeof(text), "sgnfs-clist=1\nname=c%04d\nadded=1\n"
				 "addr=127.2.%d.%d\n", i, i >> 8, i & 255);

		snprintf(name, sizeof(name), "c%04d", i);
		plant_in(cd, name, text, (size_t)n);
	}
	assert_int_equal(clist_open(NULL, sd, 1, "g1", &cl), 0);
	assert_int_equal(clist_count(cl), N);
	uv_update_time(&loop);
	clist_attach(cl, &loop);
	for (int i = K; i < N; i++) {
		snprintf(name, sizeof(name), "c%04d", i);
		snprintf(text, sizeof(text), "127.2.%d.%d", i >> 8, i & 255);
		a = addr4(text);
		assert_true(clist_hold_listed(cl, name, clist_name_hash(name), &a));
	}
	/* the three idle ones go */
	start = uv_now(&loop);
	while (clist_count(cl) > N - K && uv_now(&loop) - start < 60000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(clist_count(cl), N - K);
	for (int i = 0; i < K; i++) {
		snprintf(path, sizeof(path), "%s/c%04d", cd, i);
		assert_int_equal(access(path, F_OK), -1);
	}
	clist_sweep_stats(cl, &sweeps, &examined);
	assert_true(sweeps >= 1);
	assert_true(examined <= sweeps * (K + 1));
	/* one released now leaves too, after its own idle time */
	clist_release(cl, "c0100", clist_name_hash("c0100"));
	start = uv_now(&loop);
	while (clist_count(cl) > N - K - 1 && uv_now(&loop) - start < 60000) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	assert_int_equal(clist_count(cl), N - K - 1);
	snprintf(path, sizeof(path), "%s/c0100", cd);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/c0101", cd);
	assert_int_equal(access(path, F_OK), 0); /* held: untouched */
	clist_sweep_stats(cl, &sweeps, &examined);
	assert_true(examined <= sweeps * (K + 1));
	close_list(cl);
}

/*
 * The load's parse (one read of each entry into a buffer, cut into lines):
 * a last line without its newline counts, addresses past the eighth are
 * ignored, and an entry of exactly CLIST_FILE_MAX bytes loads while one
 * byte more is refused unread.
 */
static void test_load_parse(void **st)
{
	static char big[CLIST_FILE_MAX + 2];
	const char *head = "sgnfs-clist=1\nname=full\naddr=127.1.1.1\n";
	struct sockaddr_storage a;
	struct clist *cl;
	char text[512];
	size_t n, before;

	assert_int_equal(clist_open(NULL, statedir, 300, "g1", &cl), 0);
	before = clist_count(cl);
	clist_close(cl);
	/* No newline at the end: the last address is a line too. */
	n = (size_t)snprintf(text, sizeof(text), "sgnfs-clist=1\nname=nonl\nadded=5\naddr=127.1.0.20");
	plant("nonl", text, n);
	n = (size_t)snprintf(text, sizeof(text), "sgnfs-clist=1\nname=many\n");
	for (int i = 1; i <= 9; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "addr=127.1.2.%d\n", i);
	plant("many", text, n);
	/* Padded with comment-like lines the parser skips, to the limit. */
	memset(big, '#', sizeof(big));
	memcpy(big, head, strlen(head));
	for (size_t i = strlen(head) + 99; i < CLIST_FILE_MAX; i += 100)
		big[i] = '\n';
	plant("full", big, CLIST_FILE_MAX);
	memcpy(big, head, strlen(head));
	memcpy(big + strlen("sgnfs-clist=1\nname="), "over", 4);
	memcpy(big + strlen(head) - 2, "2", 1); /* addr=127.1.1.2 */
	plant("over", big, CLIST_FILE_MAX + 1);

	assert_int_equal(clist_open(NULL, statedir, 300, "g1", &cl), 0);
	a = addr4("127.1.0.20");
	assert_true(clist_has_addr(cl, "nonl", &a));
	for (int i = 1; i <= 9; i++) {
		snprintf(text, sizeof(text), "127.1.2.%d", i);
		a = addr4(text);
		assert_true(clist_has_addr(cl, "many", &a) == (i <= CLIST_MAX_ADDRS));
	}
	a = addr4("127.1.1.1");
	assert_true(clist_has_addr(cl, "full", &a));
	a = addr4("127.1.1.2");
	assert_false(clist_has_addr(cl, "over", &a));
	assert_int_equal(clist_count(cl), before + 3);
	clist_close(cl);
}

struct ndone { int calls; unsigned notified, failed; };

static void on_notified(void *arg, unsigned notified, unsigned failed)
{
	struct ndone *d = arg;

	d->calls++;
	d->notified = notified;
	d->failed = failed;
}

/*
 * A group prepares its notifications off the loop, from the list it just
 * loaded (nsm_notify_prepare), and runs them on the loop once online: one
 * per client address and VIP of the same family; a prepared notifier that
 * never runs is freed by cancel (ASan: nothing leaks); one with nothing to
 * send reports done at once when run; one that runs can be cancelled.
 */
static void test_notify_prepared(void **st)
{
	char sd[400], cd[420], path[600];
	struct sockaddr_storage vips[2];
	struct nsm_notifier *n;
	struct ndone d = { 0 };
	struct clist *cl;
	FILE *f;

	snprintf(sd, sizeof(sd), "%s/notify", dir);
	snprintf(cd, sizeof(cd), "%s/clients", sd);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	clist_close(cl);
	snprintf(path, sizeof(path), "%s/two4", cd);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("sgnfs-clist=1\nname=two4\naddr=127.1.3.1\naddr=127.1.3.2\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/one6", cd);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("sgnfs-clist=1\nname=one6\naddr=::1\n", f);
	fclose(f);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	vips[0] = addr4("127.1.3.100");
	memset(&vips[1], 0, sizeof(vips[1]));
	vips[1].ss_family = AF_INET6;
	((struct sockaddr_in6 *)&vips[1])->sin6_addr = in6addr_loopback;

	/* Two VIPs: two IPv4 jobs, one IPv6; never run. */
	assert_int_equal(nsm_notify_prepare("g1", cl, vips, 2, 3, 1000, &n), 0);
	assert_int_equal(nsm_notify_total(n), 3);
	nsm_notify_cancel(n);
	/* An IPv4 VIP only: the IPv6 client gets nothing. */
	assert_int_equal(nsm_notify_prepare("g1", cl, vips, 1, 3, 1000, &n), 0);
	assert_int_equal(nsm_notify_total(n), 2);
	/* Run on the loop, then stopped: its handles close. */
	nsm_notify_run(n, &loop, on_notified, &d);
	nsm_notify_cancel(n);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(d.calls, 0); /* cancel does not call done */
	/* No VIP of any client's family: done at once, with nothing sent. */
	clist_close(cl);
	snprintf(path, sizeof(path), "%s/two4", cd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	assert_int_equal(nsm_notify_prepare("g1", cl, vips, 1, 3, 1000, &n), 0);
	assert_int_equal(nsm_notify_total(n), 0);
	nsm_notify_run(n, &loop, on_notified, &d);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.notified + d.failed, 0);
	nsm_notify_cancel(n);
	clist_close(cl);
}

/*
 * The notifications start paced: nsm_notify_run starts NSM_NOTIFY_BURST of
 * them, each later turn of the loop at most that many more (each turn
 * here runs the timers once, as each of the daemon's turns does), in the list's
 * order, until every one has started (the 128 allowed at once are more
 * than this list).  Started all in one turn, a long list held the loop
 * while the node's other groups waited.
 */
static void test_notify_paced(void **st)
{
	enum { N = 3 * NSM_NOTIFY_BURST + 3 };
	char sd[400], cd[420], path[600];
	struct sockaddr_storage vip = addr4("127.1.3.100");
	struct nsm_notifier *n;
	struct ndone d = { 0 };
	struct clist *cl;
	unsigned started, turns = 0;
	FILE *f;

	(void)st;
	snprintf(sd, sizeof(sd), "%s/paced", dir);
	snprintf(cd, sizeof(cd), "%s/clients", sd);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	clist_close(cl);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/c%02d", cd, i);
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "sgnfs-clist=1\nname=c%02d\naddr=127.1.4.%d\n", i, i + 1);
		fclose(f);
	}
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	assert_int_equal(nsm_notify_prepare("g1", cl, &vip, 1, 3, 60000, &n), 0);
	assert_int_equal(nsm_notify_total(n), N);
	assert_int_equal(nsm_notify_started(n), 0);
	nsm_notify_run(n, &loop, on_notified, &d);
	assert_int_equal(nsm_notify_started(n), NSM_NOTIFY_BURST);
	started = NSM_NOTIFY_BURST;
	/* UV_RUN_NOWAIT: one turn, timers run once (UV_RUN_ONCE runs them
	 * again after the poll: two of the daemon's turns). */
	while (started < N && turns++ < 100000000) {
		uv_run(&loop, UV_RUN_NOWAIT);
		assert_true(nsm_notify_started(n) >= started);
		assert_true(nsm_notify_started(n) - started <= NSM_NOTIFY_BURST);
		started = nsm_notify_started(n);
	}
	assert_int_equal(started, N);
	nsm_notify_cancel(n);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(d.calls, 0);
	clist_close(cl);
}

/*
 * A stand-in for the clients' portmappers and statds, all on one port of
 * several loopback addresses: GETPORT for NSM answers that port at the
 * addresses of nt_live and 0 ("not registered") at the others, so a
 * notification to one of those fails at once, every attempt.
 */
#define NT_PORT 20111
static const char *const nt_live = "127.1.7.11";

static struct {
	unsigned getport_dead, notified_live;
	unsigned failed_at_notify;     /* given up when the live one was told */
	struct nsm_notifier *n;
	bool any_notify_seen;
} NT;

static bool nt_is_live(const struct sockaddr_storage *a)
{
	char buf[INET_ADDRSTRLEN];

	return a->ss_family == AF_INET &&
	       inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, buf, sizeof(buf)) &&
	       strcmp(buf, nt_live) == 0;
}

static enum rpc_disposition nt_null(struct rpc_req *req)
{
	(void)req;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nt_getport(struct rpc_req *req)
{
	const pmap_mapping *m = req->args;
	u_int *port = req->res;

	*port = 0;
	if (m->prog == NSM_PROG && m->vers == 1 && nt_is_live(&req->local))
		*port = NT_PORT;
	else
		NT.getport_dead++;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition nt_sm_notify(struct rpc_req *req)
{
	unsigned notified, failed;

	assert_true(nt_is_live(&req->local));
	nsm_notify_progress(NT.n, &notified, &failed);
	if (!NT.any_notify_seen)
		NT.failed_at_notify = failed;
	NT.any_notify_seen = true;
	NT.notified_live++;
	return RPC_DONE_REPLY;
}

#define NTP(N, f, at, ax, rt, rx) [N] = { .name = #N, .fn = f, .xdr_args = (xdrproc_t)ax, \
	.args_size = sizeof(at), .xdr_res = (xdrproc_t)rx, .res_size = sizeof(rt) }
static const struct rpc_proc nt_pmap_procs[] = {
	NTP(0, nt_null, char, rpc_xdr_void, char, rpc_xdr_void),
	NTP(PMAP2PROC_GETPORT, nt_getport, pmap_mapping, xdr_pmap_mapping, u_int, xdr_u_int),
};
static const struct rpc_vers nt_pmap2 = { .vers = 2, .procs = nt_pmap_procs,
	.nprocs = sizeof(nt_pmap_procs) / sizeof(nt_pmap_procs[0]) };
static const struct rpc_vers *const nt_pmap_vers[] = { &nt_pmap2 };
static const struct rpc_prog nt_pmap_prog = { .name = "stub-pmap", .prog = SG_PMAP_PROG,
	.vers_lo = 2, .vers_hi = 2, .vers = nt_pmap_vers };
static const struct rpc_proc nt_nsm_procs[] = {
	NTP(NSMPROC_NULL, nt_null, char, rpc_xdr_void, char, rpc_xdr_void),
	NTP(NSMPROC_NOTIFY, nt_sm_notify, sgn_stat_chge, xdr_sgn_stat_chge, char, rpc_xdr_void),
};
static const struct rpc_vers nt_nsm1 = { .vers = 1, .procs = nt_nsm_procs,
	.nprocs = sizeof(nt_nsm_procs) / sizeof(nt_nsm_procs[0]) };
static const struct rpc_vers *const nt_nsm_vers[] = { &nt_nsm1 };
static const struct rpc_prog nt_nsm_prog = { .name = "stub-nsm", .prog = NSM_PROG,
	.vers_lo = 1, .vers_hi = 1, .vers = nt_nsm_vers };

static void nt_guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/*
 * A client that never answers holds no notification slot while it waits
 * to be asked again.  One client, three addresses, two attempts in flight
 * at most: the first two addresses fail every attempt, the third answers.
 * The third is told while the first two are still being retried (none has
 * been given up), and those go on being retried afterwards.  When a
 * waiting job kept its slot until its deadline, the third was told only
 * once one of the first two had given up, long after the group's grace:
 * with 128 dead clients, no live one was told in time.
 */
static void test_notify_dead_hold_no_slot(void **st)
{
	const char *addrs[] = { "127.1.7.1", "127.1.7.2", nt_live };
	struct rpc_limits lim = { .max_record = 1 << 16, .max_conns = 16 };
	struct sockaddr_storage vip = addr4("127.1.7.100");
	struct rpc_listener *lsn[3];
	char sd[400], cd[420], text[200];
	struct ndone d = { 0 };
	struct rpc_svc *svc;
	struct clist *cl;
	uv_timer_t guard;
	uv_loop_t nl;   /* its own: a failure leaves nothing on the shared loop */
	bool expired = false;
	int len;

	(void)st;
	memset(&NT, 0, sizeof(NT));
	assert_int_equal(uv_loop_init(&nl), 0);
	assert_int_equal(rpc_svc_new(&nl, &lim, &svc), 0);
	assert_int_equal(rpc_svc_register(svc, &nt_pmap_prog), 0);
	assert_int_equal(rpc_svc_register(svc, &nt_nsm_prog), 0);
	for (int i = 0; i < 3; i++) {
		struct sockaddr_storage a = addr4(addrs[i]);

		((struct sockaddr_in *)&a)->sin_port = htons(NT_PORT);
		assert_int_equal(rpc_listen(svc, (struct sockaddr *)&a, RPC_LISTEN_UDP, NULL,
					    &lsn[i]), 0);
	}
	snprintf(sd, sizeof(sd), "%s/deadslots", dir);
	snprintf(cd, sizeof(cd), "%s/clients", sd);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	clist_close(cl);
	len = snprintf(text, sizeof(text), "sgnfs-clist=1\nname=three\naddr=%s\naddr=%s\naddr=%s\n",
		       addrs[0], addrs[1], addrs[2]);
	plant_in(cd, "three", text, (size_t)len);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);

	nsm_notify_test_parallel = 2;
	nsm_notify_test_pmap_port = NT_PORT;
	assert_int_equal(nsm_notify_prepare("g1", cl, &vip, 1, 5, 60000, &NT.n), 0);
	nsm_notify_test_parallel = 0;
	nsm_notify_test_pmap_port = 0;
	assert_int_equal(nsm_notify_total(NT.n), 3);
	/* A guard against a hang only: the outcome is asserted on order. */
	uv_timer_init(&nl, &guard);
	guard.data = &expired;
	uv_timer_start(&guard, nt_guard_cb, 40000, 0);
	nsm_notify_run(NT.n, &nl, on_notified, &d);
	while (!expired && NT.notified_live == 0)
		uv_run(&nl, UV_RUN_ONCE);
	assert_int_equal(NT.notified_live, 1);
	assert_int_equal(NT.failed_at_notify, 0);
	/* The first two are asked again after the third was told. */
	{
		unsigned before = NT.getport_dead;

		while (!expired && NT.getport_dead < before + 2)
			uv_run(&nl, UV_RUN_ONCE);
		assert_true(NT.getport_dead >= before + 2);
	}
	assert_int_equal(d.calls, 0); /* two are still being retried */

	uv_close((uv_handle_t *)&guard, NULL);
	nsm_notify_cancel(NT.n);
	for (int i = 0; i < 3; i++)
		rpc_listener_close(lsn[i]);
	uv_run(&nl, UV_RUN_DEFAULT);
	rpc_svc_free(svc);
	uv_run(&nl, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&nl), 0);
	clist_close(cl);
}

static void test_unwritable_refuses(void **st)
{
	struct clist *cl;
	struct wait w = { 0 };
	struct sockaddr_storage a1 = addr4("127.1.0.3");
	int fd, flags;

	assert_int_equal(clist_open(&loop, statedir, 300, "g1", &cl), 0);
	fd = open(clients, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		close(fd);
		close_list(cl);
		skip();
	}
	flags |= FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) {
		close(fd);
		close_list(cl);
		skip();
	}
	assert_int_equal(clist_ensure(cl, "nowrite", &a1, on_done, &w), 0);
	run_until(&w, 1);
	assert_true(w.rc < 0);
	flags &= ~FS_IMMUTABLE_FL;
	assert_int_equal(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
	close(fd);
	/* Writable again: the next attempt succeeds. */
	assert_int_equal(clist_ensure(cl, "nowrite", &a1, on_done, &w), 0);
	run_until(&w, 2);
	assert_int_equal(w.rc, 0);
	close_list(cl);
}


/* ---- the load in batches ---------------------------------------------- */

#define LB_GOOD 1000

/* One line per entry ("name added addr addr"), sorted: a list's content. */
struct lb_dump {
	char **lines;
	size_t n;
};

static void lb_line(void *arg, const struct clist_entry_info *e)
{
	struct lb_dump *d = arg;
	char line[2048], a[64];
	size_t o;

	o = (size_t)snprintf(line, sizeof(line), "%s %lld", e->name, (long long)e->added);
	for (size_t i = 0; i < e->naddrs; i++) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&e->addrs[i];

		assert_int_equal(e->addrs[i].ss_family, AF_INET);
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		o += (size_t)snprintf(line + o, sizeof(line) - o, " %s", a);
	}
	d->lines = realloc(d->lines, (d->n + 1) * sizeof(*d->lines));
	assert_non_null(d->lines);
	d->lines[d->n] = strdup(line);
	assert_non_null(d->lines[d->n]);
	d->n++;
}

static int lb_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lb_free(struct lb_dump *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	memset(d, 0, sizeof(*d));
}

static char *lb_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Load the list in @sd with sf_read_dir in @io; its content into @d, how
 * it was read into @st, what it logged into *@log (caller frees). */
static void lb_load(const char *sd, const char *logpath, enum sf_dir_io io, struct lb_dump *d,
		    struct sf_dir_stats *st, char **log)
{
	struct clist *cl;
	char why[256];

	unlink(logpath);
	assert_int_equal(log_open("test_clist", NULL, LOGL_INFO, logpath, false, why, sizeof(why)), 0);
	sf_dir_set_io(io);
	assert_int_equal(clist_open(NULL, sd, 300, "g1", &cl), 0);
	sf_dir_set_io(SF_DIR_URING);
	log_init("test_clist", LOGL_INFO, false);
	clist_load_stats(cl, st);
	memset(d, 0, sizeof(*d));
	clist_foreach(cl, lb_line, d);
	assert_int_equal(d->n, clist_count(cl));
	qsort(d->lines, d->n, sizeof(*d->lines), lb_cmp);
	clist_close(cl);
	*log = lb_slurp(logpath);
}

/*
 * A list of LB_GOOD clients (more than seven batches), some with several
 * addresses, and among them what must be refused: a FIFO (a writer holds
 * it open), a symlink to a good entry, an entry one byte over
 * CLIST_FILE_MAX, a file that is not an entry, one whose name is not its
 * client's, one with a control character in its name.  Loaded in batches
 * and the plain way: the same entries, each bad file named in the log
 * (escaped) as what it is, and nothing else; the batches read every good
 * file, the plain way all of them.
 */
static void test_load_batched(void **st)
{
	static char big[CLIST_FILE_MAX + 2];
	static const struct { const char *name, *why; } bad[] = {
		{ "'zfifo'", "not a regular file" },
		{ "'zlink'", "symbolic link" },
		{ "'zover'", "larger than the limit" },
		{ "'znotentry'", "not a client list entry" },
		{ "'zplanted'", "not a client list entry" },
		{ "'zctl\\x01name'", "not a client list entry" },
	};
	char sd[400], cd[420], logpath[440], name[512], text[256], *log1, *log2;
	struct lb_dump batched, plain;
	struct sf_dir_stats s1, s2;
	size_t n;
	int wfd;

	(void)st;
	snprintf(sd, sizeof(sd), "%s/lb", dir);
	snprintf(cd, sizeof(cd), "%s/clients", sd);
	snprintf(logpath, sizeof(logpath), "%s/lb.log", dir);
	assert_int_equal(mkdir(sd, 0700), 0);
	assert_int_equal(mkdir(cd, 0700), 0);
	for (int i = 0; i < LB_GOOD; i++) {
		n = (size_t)snprintf(text, sizeof(text), "sgnfs-clist=1\nname=c%04d\nadded=%d\n",
				     i, 1700000000 + i);
		for (int a = 0; a <= i % 3; a++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "addr=127.%d.%d.%d\n",
					      10 + a, i / 256, i % 256);
		snprintf(name, sizeof(name), "c%04d", i);
		plant_in(cd, name, text, n);
	}
	snprintf(name, sizeof(name), "%s/zfifo", cd);
	assert_int_equal(mkfifo(name, 0600), 0);
	wfd = open(name, O_RDWR | O_NONBLOCK);
	assert_true(wfd >= 0);
	snprintf(name, sizeof(name), "%s/zlink", cd);
	assert_int_equal(symlink("c0001", name), 0);
	/* A good entry, but one byte too long. */
	memset(big, '#', sizeof(big));
	n = (size_t)snprintf(text, sizeof(text), "sgnfs-clist=1\nname=zover\naddr=127.9.9.9\n");
	memcpy(big, text, n);
	snprintf(name, sizeof(name), "%s/zover", cd);
	FILE *f = fopen(name, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, CLIST_FILE_MAX + 1, f), CLIST_FILE_MAX + 1);
	fclose(f);
	snprintf(name, sizeof(name), "%s/znotentry", cd);
	f = fopen(name, "w");
	fputs("name=znotentry\naddr=127.9.9.8\n", f);  /* no version line */
	fclose(f);
	snprintf(name, sizeof(name), "%s/zplanted", cd);
	f = fopen(name, "w");
	fputs("sgnfs-clist=1\nname=c0002\naddr=127.9.9.7\n", f);
	fclose(f);
	snprintf(name, sizeof(name), "%s/zctl\001name", cd);
	f = fopen(name, "w");
	fputs("sgnfs-clist=1\nname=zctl\001name\n", f);
	fclose(f);

	lb_load(sd, logpath, SF_DIR_URING, &batched, &s1, &log1);
	lb_load(sd, logpath, SF_DIR_PLAIN, &plain, &s2, &log2);
	close(wfd);

	assert_int_equal(batched.n, LB_GOOD);
	assert_int_equal(plain.n, LB_GOOD);
	for (size_t i = 0; i < LB_GOOD; i++)
		assert_string_equal(batched.lines[i], plain.lines[i]);
	/* Spot checks of the content itself. */
	assert_string_equal(batched.lines[0], "c0000 1700000000 127.10.0.0");
	assert_string_equal(batched.lines[2], "c0002 1700000002 127.10.0.2 127.11.0.2 127.12.0.2");
	assert_true(s1.uring);
	assert_int_equal(s1.batched, LB_GOOD + 4);  /* + zover, znotentry, zplanted, zctl */
	assert_int_equal(s1.refused, 2);            /* zfifo, zlink: by their type */
	assert_int_equal(s1.plain, 0);
	assert_false(s2.uring);
	assert_int_equal(s2.plain, LB_GOOD + 6);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (char *log = log1; log; log = log == log1 ? log2 : NULL) {
			char *at = strstr(log, bad[i].name);

			assert_non_null(at);
			assert_non_null(strstr(at, bad[i].why));
			/* once */
			assert_null(strstr(at + 1, bad[i].name));
		}
	}
	assert_null(strstr(log1, "ignoring client list file 'c"));
	assert_null(strstr(log2, "ignoring client list file 'c"));
	lb_free(&batched);
	lb_free(&plain);
	free(log1);
	free(log2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_durable_entry_and_reload),
		cmocka_unit_test(test_listed),
		cmocka_unit_test(test_file_name_clash),
		cmocka_unit_test(test_leftovers_and_foreign_files),
		cmocka_unit_test(test_idle_removal),
		cmocka_unit_test(test_loaded_idle_from_attach),
		cmocka_unit_test(test_load_off_loop),
		cmocka_unit_test(test_notify_paced),
		cmocka_unit_test(test_load_parse),
		cmocka_unit_test(test_notify_prepared),
		cmocka_unit_test(test_notify_dead_hold_no_slot),
		cmocka_unit_test(test_unwritable_refuses),
		cmocka_unit_test(test_load_batched),
		cmocka_unit_test(test_idle_sweep_examines_expired),
		cmocka_unit_test(test_close_then_waits_for_writes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
