/*
 * test_group.c - a group's state machine on one node (src/group), with a
 * fake protocol plugged in through gslot.h: offline -> opening (state read
 * on the thread pool) -> online in grace (recovering) -> grace end ->
 * closing -> offline; the reason kept for each way a start can fail; a
 * stop while opening; the group's grace (who may grant, when it ends, from
 * when it counts); and every allocation of a start-to-stop cycle failed in
 * turn (fault_alloc.h).
 *
 * The group is managed-owned (started and stopped as sgnfsctl start/stop
 * would) and binds a private loopback address, 127.128.0.0/10 plus the
 * pid, on one port, so runs in parallel never collide.  Nothing here waits
 * on a clock for an outcome: the loop runs until the event is seen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fault_alloc.h"
#include "uv_drain.h"
#include "cluster/storage.h"
#include "config/config.h"
#include "group/group.h"
#include "log.h"
#include "rpc/rpc.h"
#include "thprio.h"

#define TPORT 40133

/* ---- the fake protocol ------------------------------------------------- */

struct fake_slot {
	int magic;
};

static struct {
	char ev[64];                /* O open, N online, G grace end, C close, R release */
	_Atomic int nev;
	bool close_online;          /* what the last close was told */
	int open_rc, online_rc;     /* what open and online answer */
	int opened, released;       /* slots made and freed */
	/* open_waits: open blocks until the loop has run a callback (at most
	 * 60 s), so an open that ran on the loop thread is seen as such */
	bool open_waits;
	bool loop_ran, open_saw_loop;
	bool open_yields;           /* open's thread gives way (thprio.h) */
	uint64_t loop_ran_at;       /* uv_now() in that callback */
} fk;
static pthread_mutex_t fk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_cv = PTHREAD_COND_INITIALIZER;

static void fk_event(char c)
{
	int i = atomic_fetch_add(&fk.nev, 1);

	assert_true(i < (int)sizeof(fk.ev) - 1);
	fk.ev[i] = c;
}

/* On the thread pool. */
static int fk_open(struct grp_pub *g, void **slot)
{
	struct fake_slot *s;

	(void)g;
	fk_event('O');
	fk.open_yields = thp_yield_enabled();
	if (fk.open_waits) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 60;
		pthread_mutex_lock(&fk_mu);
		while (!fk.loop_ran &&
		       pthread_cond_timedwait(&fk_cv, &fk_mu, &until) == 0)
			;
		fk.open_saw_loop = fk.loop_ran;
		pthread_mutex_unlock(&fk_mu);
	}
	if (fk.open_rc < 0)
		return fk.open_rc;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->magic = 0x5106;
	fk.opened++;
	*slot = s;
	return 0;
}

static int fk_online(struct grp_pub *g, void *slot)
{
	(void)g;
	assert_int_equal(((struct fake_slot *)slot)->magic, 0x5106);
	fk_event('N');
	return fk.online_rc;
}

static void fk_grace_end(struct grp_pub *g, void *slot)
{
	(void)g;
	(void)slot;
	fk_event('G');
}

static void fk_close(struct grp_pub *g, void *slot, bool online)
{
	(void)g;
	(void)slot;
	fk_event('C');
	fk.close_online = online;
}

static void fk_release(void *slot)
{
	fk_event('R');
	fk.released++;
	free(slot);
}

static const struct grp_proto_ops fk_ops = {
	.name = "fake",
	.open = fk_open,
	.online = fk_online,
	.grace_end = fk_grace_end,
	.close = fk_close,
	.release = fk_release,
};

/* ---- fixture: one node "a", one managed group "g1" ---------------------- */

static char dir[256], cfgpath[300], export[300], statedir[320];
static uv_timer_t tick;             /* test_open_off_loop's */
static bool tick_open;
static uv_loop_t loop;
static struct cfg_cluster *cfg;
static struct rpc_svc *svc;
static struct sg_node node;

static const char *vip(void)
{
	static char s[32];
	uint32_t pid = (uint32_t)getpid() & 0x3fffffu;
	struct in_addr a = { .s_addr = htonl(0x7f800000u | pid) };

	inet_ntop(AF_INET, &a, s, sizeof(s));
	return s;
}

/* Write the configuration with grace @grace_s and load it. */
static void load_cfg(unsigned grace_s)
{
	FILE *f = fopen(cfgpath, "w");
	char errs[4096] = "";
	FILE *ef = fmemopen(errs, sizeof(errs) - 1, "w");
	int rc;

	assert_non_null(f);
	assert_non_null(ef);
	fprintf(f,
		"[cluster]\nname = tg\nrun_dir = %s/run\nownership = managed\n"
		"nfs_port = %d\nmount_port = %d\nnlm_port = %d\nnsm_port = %d\npmap_port = %d\n"
		"[node a]\n"
		"[group g1]\nvip = %s\nnodes = a\ngrace = %u\n"
		"[export %s]\ngroup = g1\nfsid = 7\nclients = 127.0.0.1\n",
		dir, TPORT, TPORT, TPORT, TPORT, TPORT, vip(), grace_s, export);
	fclose(f);
	rc = cfg_load(cfgpath, ef, &cfg);
	fclose(ef);
	if (rc != 0)
		fail_msg("config: %d\n%s", rc, errs);
}

static void node_up(unsigned grace_s)
{
	struct rpc_limits lim = { .max_record = 1 << 20, .max_conns = 16,
				  .idle_timeout_ms = 60000 };

	load_cfg(grace_s);
	assert_int_equal(rpc_svc_new(&loop, &lim, &svc), 0);
	memset(&node, 0, sizeof(node));
	node.loop = &loop;
	node.svc = svc;
	node.cfg = cfg;
	node.me = cfg_node_find(cfg, "a");
	assert_non_null(node.me);
	assert_int_equal(grp_node_start(&node), 0);
	assert_int_equal(node.nslots, 1);
}

/* Run the loop until nothing is left to do (closes, frees). */
static void drain(void)
{
	for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
		;
}

static void node_down(void)
{
	grp_node_stop(&node);
	for (int i = 0; i < 100000 && node.slots; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_null(node.slots);
	drain();
	rpc_svc_free(svc);
	ut_loop_drain(&loop);
	cfg_free(cfg);
	cfg = NULL;
}

static int setup(void **st)
{
	bool existed;
	char why[400];

	(void)st;
	snprintf(dir, sizeof(dir), "/var/tmp/test_group.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/sgnfs.conf", dir);
	snprintf(export, sizeof(export), "%s/g1", dir);
	snprintf(statedir, sizeof(statedir), "%s/.sgnfs", export);
	snprintf(why, sizeof(why), "%s/run", dir);
	assert_int_equal(mkdir(why, 0700), 0);
	assert_int_equal(mkdir(export, 0755), 0);
	assert_int_equal(stg_init(export, "tg", "g1", false, &existed, why, sizeof(why)), 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&fk, 0, sizeof(fk));
	fa_reset();
	return 0;
}

static int teardown(void **st)
{
	char cmd[600];

	(void)st;
	fa_reset();
	if (tick_open) {
		tick_open = false;
		uv_close((uv_handle_t *)&tick, NULL);
	}
	if (cfg)
		node_down(); /* the test failed half-way: leave nothing behind */
	assert_int_equal(uv_loop_close(&loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(fk.opened, fk.released);
	return 0;
}

static struct sg_slot *slot(void)
{
	return &node.slots[0];
}

static enum grp_node_state state(const char **why)
{
	const char *w;

	return grp_node_group_state(&node, "g1", why ? why : &w);
}

/* Run the loop until the start has an outcome (online or not opening). */
static enum grp_node_state wait_started(void)
{
	enum grp_node_state s = GRP_NODE_OPENING;

	for (int i = 0; i < 100000 && (s = state(NULL)) == GRP_NODE_OPENING; i++)
		uv_run(&loop, UV_RUN_ONCE);
	return s;
}

static void events_are(const char *want)
{
	fk.ev[fk.nev] = '\0';
	assert_string_equal(fk.ev, want);
}

/* ---- the state machine ------------------------------------------------- */

/* offline -> opening -> online in grace -> recovered -> closing -> offline,
 * each protocol hook once, in that order; release only once the listeners
 * have closed. */
static void test_lifecycle(void **st)
{
	char why[512];
	struct sg_group *g;
	int32_t first;
	uint64_t asked;

	(void)st;
	node_up(30);
	fk.online_rc = 1; /* something to reclaim */
	uv_update_time(&loop);
	asked = uv_now(&loop);
	assert_int_equal(state(NULL), GRP_NODE_OFFLINE);
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(state(NULL), GRP_NODE_OPENING);
	g = slot()->g;
	assert_non_null(g);
	assert_int_equal(g->state, GRP_OPENING);
	/* the open is on the pool; online waits for the loop */
	assert_true(atomic_load(&fk.nev) <= 1);
	assert_true(fk.ev[0] != 'N');
	/* a second start while opening: still opening, nothing new */
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);

	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	assert_ptr_equal(slot()->g, g);
	assert_int_equal(g->state, GRP_ONLINE);
	events_are("ON");
	/* recovering: in grace until NLM says it has recovered */
	assert_true(g->pub.in_grace);
	assert_int_equal(g->pub.recovering, 1u << GRP_PROTO_NLM);
	assert_int_equal(g->pub.grace_end - g->pub.grace_start, 30000);
	/* armed on the loop once the state was read, before serving */
	assert_true(g->pub.grace_start >= asked && g->pub.grace_start <= g->online_at);
	assert_int_equal(g->pub.nsm_state & 1, 1); /* up: odd */
	first = g->pub.nsm_state;
	assert_true(grp_grace_left(&g->pub) > 0 && grp_grace_left(&g->pub) <= 30);
	/* idempotent start: online already */
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 0);

	grp_recovered(&g->pub, GRP_PROTO_NLM, "test: all reclaimed");
	assert_false(g->pub.in_grace);
	assert_int_equal(g->pub.recovering, 0);
	assert_int_equal(grp_grace_left(&g->pub), 0);
	events_are("ONG");
	/* a second recovered (late reclaim bookkeeping) ends nothing twice */
	grp_recovered(&g->pub, GRP_PROTO_NLM, "again");
	events_are("ONG");

	assert_int_equal(grp_node_stop_group(&node, "g1", why, sizeof(why)), 0);
	assert_null(slot()->g);
	assert_int_equal(state(NULL), GRP_NODE_OFFLINE);
	/* closing: the listeners still hold it; close ran, release has not */
	events_are("ONGC");
	assert_true(fk.close_online);
	drain();
	events_are("ONGCR");
	/* idempotent stop */
	assert_int_equal(grp_node_stop_group(&node, "g1", why, sizeof(why)), 0);

	/* the next incarnation has the next odd state number */
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	assert_int_equal(slot()->g->pub.nsm_state, first + 2);
	node_down();
	events_are("ONGCRONCR"); /* shut down in grace: no grace end */
}

/* Nothing to recover: online at once without grace; new grants allowed. */
static void test_no_grace(void **st)
{
	char why[512];

	(void)st;
	node_up(30);
	fk.online_rc = 0;
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	assert_false(grp_in_grace(&slot()->g->pub));
	assert_int_equal(slot()->g->pub.recovering, 0);
	events_are("ONG");
	node_down();
	events_are("ONGCR");
}

/* The grace ends by itself at its time; the group stays online; the grace
 * was counted from the moment the group was installed, not from the start
 * request. */
static void test_grace_timeout(void **st)
{
	char why[512];
	struct sg_group *g;

	(void)st;
	node_up(1);
	fk.online_rc = 1;
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	g = slot()->g;
	assert_true(grp_in_grace(&g->pub));
	assert_int_equal(g->pub.grace_end - g->pub.grace_start, 1000);
	events_are("ON");
	for (int i = 0; i < 100000 && grp_in_grace(&g->pub); i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_false(grp_in_grace(&g->pub));
	assert_true(uv_now(&loop) >= g->pub.grace_end);
	events_are("ONG");
	assert_int_equal(state(NULL), GRP_NODE_ONLINE);
	node_down();
	events_are("ONGCR");
}

static void loop_tick(uv_timer_t *t)
{
	pthread_mutex_lock(&fk_mu);
	if (!fk.loop_ran && fk.nev > 0) {
		/* the open has begun: the loop runs beside it */
		fk.loop_ran = true;
		fk.loop_ran_at = uv_now(t->loop);
		pthread_cond_signal(&fk_cv);
	}
	pthread_mutex_unlock(&fk_mu);
	if (fk.loop_ran)
		uv_timer_stop(t);
}

/* The open runs off the loop: while it is in progress the loop runs other
 * callbacks (another group would be served); the grace is armed only after
 * it, so a slow open does not eat into the grace. */
static void test_open_off_loop(void **st)
{
	char why[512];
	struct sg_group *g;

	(void)st;
	node_up(30);
	fk.online_rc = 1;
	fk.open_waits = true;
	uv_timer_init(&loop, &tick);
	tick_open = true;
	uv_timer_start(&tick, loop_tick, 1, 1);
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	assert_true(fk.open_saw_loop);
	/* and on a thread whose yield points yield: the loop's never do */
	assert_true(fk.open_yields);
	assert_false(thp_yield_enabled());
	g = slot()->g;
	assert_true(grp_in_grace(&g->pub));
	assert_true(g->pub.grace_start >= fk.loop_ran_at);
	assert_int_equal(g->pub.grace_end - g->pub.grace_start, 30000);
	tick_open = false;
	uv_close((uv_handle_t *)&tick, NULL);
	node_down();
	events_are("ONCR");
}

/* A stop while the state is being read: the open finishes, the group never
 * serves, the protocol is closed as never online, the state number goes
 * back down. */
static void test_stop_while_opening(void **st)
{
	char why[512];
	int32_t up;

	(void)st;
	node_up(30);
	fk.online_rc = 1;
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(grp_node_stop_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_OFFLINE);
	drain();
	events_are("OCR");
	assert_false(fk.close_online);
	/* the next start: the state number after the aborted one is odd */
	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	up = slot()->g->pub.nsm_state;
	assert_int_equal(up & 1, 1);
	node_down();
}

/* ---- failures and their reasons ------------------------------------------ */

static void start_fails(const char *reason)
{
	char why[512];
	const char *r;
	int rc;

	rc = grp_node_start_group(&node, "g1", why, sizeof(why));
	if (rc < 0) {
		/* refused on the spot: the same reason in both places */
		assert_non_null(strstr(why, reason));
	} else {
		assert_int_equal(rc, 1);
		assert_int_equal(wait_started(), GRP_NODE_FAILED);
	}
	assert_int_equal(state(&r), GRP_NODE_FAILED);
	if (!strstr(r, reason))
		fail_msg("reason \"%s\" does not say \"%s\"", r, reason);
	assert_null(slot()->g);
	/* a stop clears the failure: the manager has seen it */
	assert_int_equal(grp_node_stop_group(&node, "g1", why, sizeof(why)), 0);
	assert_int_equal(state(NULL), GRP_NODE_OFFLINE);
	drain();
}

static void test_fail_protocol_open(void **st)
{
	(void)st;
	node_up(30);
	fk.open_rc = -EIO;
	start_fails("cannot open its fake state");
	events_are("O");
	/* it can start once the cause is gone */
	fk.open_rc = 0;
	fk.online_rc = 0;
	fk.nev = 0;
	assert_int_equal(grp_node_start_group(&node, "g1", (char[64]){ 0 }, 64), 1);
	assert_int_equal(wait_started(), GRP_NODE_ONLINE);
	node_down();
}

static void test_fail_protocol_online(void **st)
{
	(void)st;
	node_up(30);
	fk.online_rc = -EADDRNOTAVAIL;
	start_fails("cannot start its fake service");
	events_are("ONCR");
	assert_false(fk.close_online); /* its online failed: it is not online */
	node_down();
}

static void test_fail_storage(void **st)
{
	char p[400];

	(void)st;
	node_up(30);
	snprintf(p, sizeof(p), "%s/%s", statedir, STG_IDENTITY);
	assert_int_equal(unlink(p), 0);
	start_fails("identity");
	events_are(""); /* nothing read from storage that is not the group's */
	node_down();
}

static void test_fail_state_number(void **st)
{
	char p[400];

	(void)st;
	node_up(30);
	snprintf(p, sizeof(p), "%s/state", statedir);
	unlink(p);
	assert_int_equal(mkdir(p, 0700), 0);
	start_fails("cannot store its NSM state number");
	events_are("OCR");
	assert_int_equal(rmdir(p), 0);
	node_down();
}

/* The VIP's port is taken: a managed start tries a bounded number of times
 * and then fails with the bind as the reason; while trying it is opening
 * (binding) as far as the manager can see. */
static void test_fail_bind(void **st)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TPORT) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	(void)st;
	assert_true(s >= 0);
	inet_pton(AF_INET, vip(), &sin.sin_addr);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s, 1), 0);
	node_up(30);
	fk.online_rc = 0;
	start_fails("cannot bind");
	events_are("ONGCR");
	close(s);
	node_down();
}

/* ---- every allocation of a cycle failed in turn ------------------------- */

/* One start -> online in grace -> recovered -> stop cycle; returns whether
 * it came online.  Whatever fails, the outcome is online or a failure with
 * a reason, and every slot opened is released. */
static bool cycle(void)
{
	char why[512];
	const char *r;
	bool online = false;
	int rc;

	fk.online_rc = 1;
	fk.nev = 0;
	rc = grp_node_start_group(&node, "g1", why, sizeof(why));
	if (rc < 0) {
		assert_true(why[0] != '\0');
		assert_int_equal(state(&r), GRP_NODE_FAILED);
	} else {
		enum grp_node_state s = wait_started();

		if (s == GRP_NODE_ONLINE) {
			online = true;
			grp_recovered(&slot()->g->pub, GRP_PROTO_NLM, "test");
			assert_false(grp_in_grace(&slot()->g->pub));
		} else {
			assert_int_equal(s, GRP_NODE_FAILED);
			state(&r);
			assert_true(r[0] != '\0');
		}
	}
	assert_int_equal(grp_node_stop_group(&node, "g1", why, sizeof(why)), 0);
	drain();
	assert_int_equal(fk.opened, fk.released);
	return online;
}

static void test_alloc_failure(void **st)
{
	long total, failed_starts = 0;

	(void)st;
	node_up(30);
	fa_reset();
	assert_true(cycle());
	total = fa_calls();
	assert_true(total > 5);
	for (long n = 0; n < total; n++) {
		fa_reset();
		fa_fail_at(n);
		if (!cycle())
			failed_starts++;
		fa_reset();
		/* and the group still comes online after */
		assert_true(cycle());
	}
	/* the allocations the start cannot do without made it fail */
	assert_true(failed_starts > 0);
	node_down();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grace_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_off_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_while_opening, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_protocol_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_protocol_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_state_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_bind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	};

	log_init("test_group", LOGL_ERR, false);
	grp_proto_register(GRP_PROTO_NLM, &fk_ops);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
