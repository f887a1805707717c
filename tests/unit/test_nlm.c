/*
 * test_nlm.c - the NLM service of one group in one process: the real group
 * (src/group, managed), the real NLM (src/nlm) plugged in as the daemon
 * does, the real RPC server on a private loopback VIP, and our RPC client
 * calling NLM v4 over TCP, all on one loop.
 *
 *   - grace and reservations: a lock journaled by one incarnation is a
 *     reservation in the next; in grace a new lock that conflicts with it
 *     is refused (DENIED_GRACE_PERIOD), one that does not is granted, the
 *     holder's reclaim is granted and, being the last reservation, ends
 *     the group's grace; afterwards the reclaimed lock protects its range;
 *   - error paths of the handlers: a forged file handle, a range that
 *     overflows, an unlock of nothing, a conflicting lock;
 *   - every allocation of LOCK, TEST, UNLOCK, CANCEL and SHARE failed in
 *     turn (fault_alloc.h): each call ends with a status or a transport
 *     error, never a crash or a leak (ASan), and the lock state afterwards
 *     matches what the reply said.
 *
 * The VIP is 127.192.0.0/10 plus the pid (test_group uses 127.128/10), so
 * parallel runs never collide.  Nothing waits on a clock for an outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "fault_alloc.h"
#include "uv_drain.h"
#include "cluster/storage.h"
#include "config/config.h"
#include "group/group.h"
#include "hkey.h"
#include "journal/journal.h"
#include "log.h"
#include "nfs/fh.h"
#include "nlm/nlm_host.h"
#include "nlm/nlm_int.h"
#include "nlm/nlm_status.h"
#include "nlm/nlm_svc.h"
#include "nlm/nlm_xdr.h"
#include "nlm.h"
#include "nsm/clist.h"
#include "rpc/rpc.h"
#include "rpc/rpc_clnt.h"

#define TPORT 40145

static char dir[256], cfgpath[300], export[300], keypath[300];
static uv_loop_t loop;
static struct cfg_cluster *cfg;
static struct rpc_svc *svc;
static struct sg_node node;
static struct rpcc_clnt *clnt;
static uint8_t fh[128];
static int fhlen;

static struct sockaddr_in vip_sin(void)
{
	uint32_t pid = (uint32_t)getpid() & 0x3fffffu;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TPORT) };

	sin.sin_addr.s_addr = htonl(0x7fc00000u | pid);
	return sin;
}

static void load_cfg(void)
{
	struct sockaddr_in sin = vip_sin();
	char v[32], errs[4096] = "";
	FILE *f = fopen(cfgpath, "w");
	FILE *ef = fmemopen(errs, sizeof(errs) - 1, "w");
	int rc;

	assert_non_null(f);
	assert_non_null(ef);
	inet_ntop(AF_INET, &sin.sin_addr, v, sizeof(v));
	fprintf(f,
		"[cluster]\nname = tn\nrun_dir = %s/run\nownership = managed\nhandle_key = %s\n"
		"nfs_port = %d\nmount_port = %d\nnlm_port = %d\nnsm_port = %d\npmap_port = %d\n"
		"[node a]\n"
		"[group g1]\nvip = %s\nnodes = a\ngrace = 300\n"
		"[export %s]\ngroup = g1\nfsid = 9\nclients = 127.0.0.0/8\n",
		dir, keypath, TPORT, TPORT, TPORT, TPORT, TPORT, v, export);
	fclose(f);
	rc = cfg_load(cfgpath, ef, &cfg);
	fclose(ef);
	if (rc != 0)
		fail_msg("config: %d\n%s", rc, errs);
}

static void drain(void)
{
	for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
		;
}

static enum grp_node_state gstate(void)
{
	const char *why;

	return grp_node_group_state(&node, "g1", &why);
}

static void group_start(void)
{
	char why[512];
	enum grp_node_state s;

	assert_int_equal(grp_node_start_group(&node, "g1", why, sizeof(why)), 1);
	for (int i = 0; i < 100000 && (s = gstate()) == GRP_NODE_OPENING; i++)
		uv_run(&loop, UV_RUN_ONCE);
	if (s != GRP_NODE_ONLINE) {
		const char *r;

		grp_node_group_state(&node, "g1", &r);
		fail_msg("group not online: %s", r);
	}
}

/* Stop g1 and wait until it has left: its journal's last batch written
 * (a stop that returns 1 is answered then). */
static void group_stop(void)
{
	char why[512];
	int rc = grp_node_stop_group(&node, "g1", why, sizeof(why));

	assert_true(rc == 0 || rc == 1);
	for (int i = 0; i < 100000 && node.slots[0].leave_holds; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(node.slots[0].leave_holds, 0);
	assert_int_equal(gstate(), GRP_NODE_OFFLINE);
	drain();
}

static struct grp_pub *gpub(void)
{
	return &node.slots[0].g->pub;
}

/* A client handle from @local (an IPv4 loopback address), or from
 * whichever address the kernel picks if NULL. */
static struct rpcc_clnt *client_new(const char *local)
{
	struct sockaddr_in sin = vip_sin(), from = { .sin_family = AF_INET };
	struct rpcc_opts o = {
		.server = (struct sockaddr *)&sin, .prog = NLM_PROG, .vers = NLM4_VERS,
		.transport = RPCC_TCP,
		.timeout = { .total_ms = 60000 },
	};
	struct rpcc_clnt *c;

	if (local) {
		assert_int_equal(inet_pton(AF_INET, local, &from.sin_addr), 1);
		o.local = (struct sockaddr *)&from;
	}
	assert_int_equal(rpcc_new(&loop, &o, &c), 0);
	return c;
}

static void client_open(void)
{
	clnt = client_new(NULL);
}

static void client_close(void)
{
	rpcc_close(clnt);
	clnt = NULL;
	drain();
}

static int setup(void **st)
{
	struct rpc_limits lim = { .max_record = 1 << 20, .max_conns = 64,
				  .idle_timeout_ms = 600000 };
	char why[400];
	struct fh_key k;
	bool existed;
	int dfd, fd;

	(void)st;
	fa_reset();
	snprintf(dir, sizeof(dir), "/var/tmp/test_nlm.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/sgnfs.conf", dir);
	snprintf(export, sizeof(export), "%s/g1", dir);
	snprintf(keypath, sizeof(keypath), "%s/handle.key", dir);
	snprintf(why, sizeof(why), "%s/run", dir);
	assert_int_equal(mkdir(why, 0700), 0);
	assert_int_equal(mkdir(export, 0755), 0);
	assert_int_equal(stg_init(export, "tn", "g1", false, &existed, why, sizeof(why)), 0);
	assert_int_equal(hk_generate(keypath, false, why, sizeof(why)), 0);
	assert_int_equal(fh_keys_load(keypath), 0);
	snprintf(why, sizeof(why), "%s/f", export);
	fd = open(why, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	close(fd);
	dfd = open(export, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(fh_key_at(9, dfd, "f", &k, NULL), 0);
	close(dfd);
	fhlen = fh_encode(&k, fh, sizeof(fh));
	assert_true(fhlen > 0);

	assert_int_equal(uv_loop_init(&loop), 0);
	load_cfg();
	assert_int_equal(rpc_svc_new(&loop, &lim, &svc), 0);
	assert_int_equal(rpc_svc_register(svc, &nlm_prog), 0);
	memset(&node, 0, sizeof(node));
	node.loop = &loop;
	node.svc = svc;
	node.cfg = cfg;
	node.me = cfg_node_find(cfg, "a");
	assert_non_null(node.me);
	assert_int_equal(grp_node_start(&node), 0);
	client_open();
	return 0;
}

static int teardown(void **st)
{
	char cmd[600];

	(void)st;
	fa_reset();
	if (clnt)
		client_close();
	grp_node_stop(&node);
	for (int i = 0; i < 100000 && node.slots; i++)
		uv_run(&loop, UV_RUN_ONCE);
	drain();
	rpc_svc_free(svc);
	ut_loop_drain(&loop);
	cfg_free(cfg);
	cfg = NULL;
	assert_int_equal(uv_loop_close(&loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- calls ---------------------------------------------------------------- */

#define NO_REPLY (-1000000)

struct outcome {
	bool done;
	int err;                /* rpcc error, 0 if a status came */
	int stat;               /* the NLM status */
	int holder_svid;        /* TEST: the conflicting holder */
};

static void on_res(const struct rpcc_reply *rep, void *arg)
{
	struct outcome *o = arg;

	o->done = true;
	o->err = rep->err;
	if (rep->err == 0)
		o->stat = (int)((nlm4_res *)rep->res)->stat.stat;
}

static void on_testres(const struct rpcc_reply *rep, void *arg)
{
	struct outcome *o = arg;
	nlm4_testres *r = rep->res;

	o->done = true;
	o->err = rep->err;
	if (rep->err == 0) {
		o->stat = (int)r->test_stat.stat;
		if (r->test_stat.stat == NLM4_DENIED)
			o->holder_svid = r->test_stat.nlm4_testrply_u.holder.svid;
	}
}

static void on_shareres(const struct rpcc_reply *rep, void *arg)
{
	struct outcome *o = arg;

	o->done = true;
	o->err = rep->err;
	if (rep->err == 0)
		o->stat = (int)((nlm4_shareres *)rep->res)->stat;
}

static void wait_for(struct outcome *o)
{
	for (int i = 0; i < 1000000 && !o->done; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(o->done);
}

static void mklock(nlm4_lock *l, const char *host, int svid, uint64_t off, uint64_t len)
{
	static char oh[2][32];
	static int which;
	char *b = oh[which++ & 1];

	memset(l, 0, sizeof(*l));
	l->caller_name = (char *)host;
	l->fh.sgn_netobj_val = (char *)fh;
	l->fh.sgn_netobj_len = (u_int)fhlen;
	snprintf(b, 32, "%s-%d", host, svid);
	l->oh.sgn_netobj_val = b;
	l->oh.sgn_netobj_len = (u_int)strlen(b);
	l->svid = svid;
	l->l_offset = off;
	l->l_len = len;
}

/* Start a call; the outcome is filled in by the loop.  -errno if rpcc_call
 * itself failed (then no callback comes). */
static int lock_start(struct outcome *o, const char *host, int svid, uint64_t off,
		      uint64_t len, bool reclaim)
{
	nlm4_lockargs a = { .exclusive = 1, .reclaim = reclaim, .state = 1 };

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	mklock(&a.alock, host, svid, off, len);
	return rpcc_call(clnt, NLMPROC_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &a,
			 (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), NULL, on_res, o);
}

static int unlock_start(struct outcome *o, const char *host, int svid, uint64_t off,
			uint64_t len)
{
	nlm4_unlockargs a = { 0 };

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	mklock(&a.alock, host, svid, off, len);
	return rpcc_call(clnt, NLMPROC_UNLOCK, (xdrproc_t)xdr_nlm4_unlockargs, &a,
			 (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), NULL, on_res, o);
}

static int test_start(struct outcome *o, const char *host, int svid, uint64_t off,
		      uint64_t len)
{
	nlm4_testargs a = { .exclusive = 1 };

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	mklock(&a.alock, host, svid, off, len);
	return rpcc_call(clnt, NLMPROC_TEST, (xdrproc_t)xdr_nlm4_testargs, &a,
			 (xdrproc_t)xdr_nlm4_testres, sizeof(nlm4_testres), NULL, on_testres, o);
}

static int cancel_start(struct outcome *o, const char *host, int svid, uint64_t off,
			uint64_t len)
{
	nlm4_cancargs a = { .block = 1, .exclusive = 1 };

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	mklock(&a.alock, host, svid, off, len);
	return rpcc_call(clnt, NLMPROC_CANCEL, (xdrproc_t)xdr_nlm4_cancargs, &a,
			 (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), NULL, on_res, o);
}

static int share_start(struct outcome *o, bool share, const char *host)
{
	nlm4_shareargs a = { .reclaim = 0 };
	nlm4_lock l;

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	mklock(&l, host, 0, 0, 0);
	a.share.caller_name = l.caller_name;
	a.share.fh = l.fh;
	a.share.oh = l.oh;
	a.share.mode = FSM4_DW;
	a.share.access = FSA4_RW;
	return rpcc_call(clnt, share ? NLMPROC_SHARE : NLMPROC_UNSHARE,
			 (xdrproc_t)xdr_nlm4_shareargs, &a, (xdrproc_t)xdr_nlm4_shareres,
			 sizeof(nlm4_shareres), NULL, on_shareres, o);
}

static void on_void(const struct rpcc_reply *rep, void *arg)
{
	struct outcome *o = arg;

	o->done = true;
	o->err = rep->err;
}

/* FREE_ALL naming @host, sent on @c (one-way in spirit, but lockd answers
 * it with a void reply, which orders it before the next call). */
static int free_all_start(struct rpcc_clnt *c, struct outcome *o, const char *host)
{
	nlm4_notify n = { .name = (char *)host, .state = 3 };

	memset(o, 0, sizeof(*o));
	o->stat = NO_REPLY;
	return rpcc_call(c, NLMPROC_FREE_ALL, (xdrproc_t)xdr_nlm4_notify, &n, NULL, 0, NULL,
			 on_void, o);
}

static void free_all_on(struct rpcc_clnt *c, const char *host)
{
	struct outcome o;

	assert_int_equal(free_all_start(c, &o, host), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
}

/* Synchronous forms for the checks (no faults armed). */
static int lock(const char *host, int svid, uint64_t off, uint64_t len, bool reclaim)
{
	struct outcome o;

	assert_int_equal(lock_start(&o, host, svid, off, len, reclaim), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
	return o.stat;
}

static int unlock(const char *host, int svid, uint64_t off, uint64_t len)
{
	struct outcome o;

	assert_int_equal(unlock_start(&o, host, svid, off, len), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
	return o.stat;
}

/* TEST by a third owner: the svid holding [off, off+len), or 0 if free. */
static int holder(uint64_t off, uint64_t len)
{
	struct outcome o;

	assert_int_equal(test_start(&o, "probe", 999, off, len), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
	if (o.stat == NLM4_GRANTED)
		return 0;
	assert_int_equal(o.stat, NLM4_DENIED);
	return o.holder_svid;
}

static int share(bool on, const char *host)
{
	struct outcome o;

	assert_int_equal(share_start(&o, on, host), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
	return o.stat;
}

/* ---- grace and reservations ----------------------------------------------- */

/* The length of the array @key of @o, and whether @key_truncated is true. */
static size_t listed(struct json_object *o, const char *key, bool *cut)
{
	struct json_object *a, *t;
	char tk[64];

	snprintf(tk, sizeof(tk), "%s_truncated", key);
	assert_true(json_object_object_get_ex(o, key, &a));
	assert_true(json_object_object_get_ex(o, tk, &t));
	*cut = json_object_get_boolean(t);
	return json_object_array_length(a);
}

/*
 * The status lists (copied on the loop, grown by clients) are cut at the
 * caller's length, the cut said, the counts whole; a node's status gives
 * each list of each served group an equal share of GRP_STATUS_LIST_TOTAL.
 */
static void test_status_lists_cut(void **st)
{
	enum { NLOCKS = 30 };
	struct outcome o[NLOCKS];
	struct nlm_group *ng;
	struct json_object *doc;
	bool cut;

	(void)st;
	assert_int_equal(grp_status_list_max(0), 10000);
	assert_int_equal(grp_status_list_max(1), 5000);
	assert_int_equal(grp_status_list_max(2), 2500);
	assert_int_equal(grp_status_list_max(50), 100);
	assert_int_equal(grp_status_list_max(1000), 100);
	group_start();
	/* one owner, ranges apart (adjacent ones would merge into one lock) */
	for (int i = 0; i < NLOCKS; i++)
		assert_int_equal(lock_start(&o[i], "hostA", 1, (uint64_t)i * 10, 5, false), 0);
	for (int i = 0; i < NLOCKS; i++) {
		wait_for(&o[i]);
		assert_int_equal(o[i].stat, NLM4_GRANTED);
	}
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	assert_int_equal(nlm_group_nlocks(ng), NLOCKS);

	doc = json_object_new_object();
	nlm_group_status(ng, doc, NLOCKS - 1);
	assert_int_equal(listed(doc, "locks", &cut), NLOCKS - 1);
	assert_true(cut);
	assert_int_equal(listed(doc, "clients", &cut), 1);
	assert_false(cut);
	json_object_put(doc);

	doc = json_object_new_object();
	nlm_group_status(ng, doc, NLOCKS);
	assert_int_equal(listed(doc, "locks", &cut), NLOCKS);
	assert_false(cut);
	json_object_put(doc);

	doc = json_object_new_object();
	nlm_group_status(ng, doc, 0);
	assert_int_equal(listed(doc, "locks", &cut), 0);
	assert_true(cut);
	assert_int_equal(listed(doc, "clients", &cut), 0);
	assert_true(cut);
	json_object_put(doc);
	group_stop();
}

/*
 * The status's copy (nlm_status_snap, taken on the loop; docs/status.md,
 * "Where the status is built") is the group's own data: each of its
 * allocations failing in turn gives -ENOMEM and nothing to free (ASan: no
 * leak), and a copy written out after the group is gone (its hosts and
 * lock table freed; ASan: no use after free) reads exactly as the status
 * made in one step while the group was online.
 */
static void test_status_snap_is_a_copy(void **st)
{
	enum { NLOCKS = 12 };
	struct outcome o[NLOCKS];
	struct nlm_status_snap *snap = NULL, *s2;
	struct json_object *ref, *doc;
	char *want;
	long total, refused = 0;
	int rc;

	(void)st;
	group_start();
	for (int i = 0; i < NLOCKS; i++)
		assert_int_equal(lock_start(&o[i], i % 2 ? "hostA" : "hostB", 1 + i % 3,
					    (uint64_t)i * 10, 5, false), 0);
	for (int i = 0; i < NLOCKS; i++) {
		wait_for(&o[i]);
		assert_int_equal(o[i].stat, NLM4_GRANTED);
	}
	struct nlm_group *ng = grp_slot(gpub(), GRP_PROTO_NLM);

	ref = json_object_new_object();
	nlm_group_status(ng, ref, NLOCKS);
	want = strdup(json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN));
	assert_non_null(want);
	json_object_put(ref);

	fa_reset();
	assert_int_equal(nlm_status_snap(ng, NLOCKS, &snap), 0);
	total = fa_calls();
	fa_reset();
	assert_non_null(snap);
	assert_true(total >= 2);	/* the copy, its entries */
	for (long n = 0; n < total; n++) {
		s2 = (struct nlm_status_snap *)1;
		fa_reset();
		fa_fail_at(n);
		rc = nlm_status_snap(ng, NLOCKS, &s2);
		fa_reset();
		if (rc == 0) {
			nlm_status_free(s2);
			continue;
		}
		assert_int_equal(rc, -ENOMEM);
		refused++;
	}
	assert_int_equal(refused, total);	/* no allocation of the copy is optional */

	group_stop();	/* frees every host, name and lock the copy came from */
	doc = json_object_new_object();
	nlm_status_render(snap, doc);
	nlm_status_free(snap);
	assert_string_equal(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN), want);
	json_object_put(doc);
	free(want);
}

static void test_grace_reservations(void **st)
{
	(void)st;
	group_start();
	assert_false(grp_in_grace(gpub())); /* nobody to recover yet */
	assert_int_equal(lock("hostA", 1, 0, 100, false), NLM4_GRANTED);
	/* a reclaim outside grace is refused */
	assert_int_equal(lock("hostC", 3, 500, 10, true), NLM4_DENIED_NOLOCKS);
	client_close();
	group_stop();

	/* the next incarnation: hostA's lock is a reservation */
	group_start();
	client_open();
	assert_true(grp_in_grace(gpub()));
	/* who may grant: not a new lock over another owner's reservation */
	assert_int_equal(lock("hostB", 2, 50, 10, false), NLM4_DENIED_GRACE_PERIOD);
	/* a new lock clear of every reservation is granted in grace */
	assert_int_equal(lock("hostB", 2, 200, 10, false), NLM4_GRANTED);
	assert_true(grp_in_grace(gpub()));
	/* a reclaim by someone who held nothing there is not refused for
	 * grace, and takes nothing from hostA's reservation */
	assert_int_equal(lock("hostC", 3, 300, 10, true), NLM4_GRANTED);
	assert_true(grp_in_grace(gpub()));
	/* the holder reclaims: the last reservation goes, grace ends */
	assert_int_equal(lock("hostA", 1, 0, 100, true), NLM4_GRANTED);
	assert_false(grp_in_grace(gpub()));
	/* and the reclaimed lock protects its range */
	assert_int_equal(lock("hostB", 2, 50, 10, false), NLM4_DENIED);
	assert_int_equal(holder(0, 100), 1);
	assert_int_equal(holder(200, 10), 2);
	group_stop();
}

/* An UNLOCK in grace releases the reservation too; the last one ends it. */
static void test_grace_unlock_ends(void **st)
{
	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 1, 20, 10, false), NLM4_GRANTED);
	client_close();
	group_stop();
	group_start();
	client_open();
	assert_true(grp_in_grace(gpub()));
	assert_int_equal(unlock("hostA", 1, 0, 10), NLM4_GRANTED);
	assert_true(grp_in_grace(gpub())); /* [20,30) still reserved */
	assert_int_equal(lock("hostB", 2, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 2, 25, 1, false), NLM4_DENIED_GRACE_PERIOD);
	assert_int_equal(unlock("hostA", 1, 20, 10), NLM4_GRANTED);
	assert_false(grp_in_grace(gpub()));
	assert_int_equal(lock("hostB", 2, 25, 1, false), NLM4_GRANTED);
	group_stop();
}

/* One host, two owners, their records interleaved in the journal: the
 * replay keeps them apart (it reuses a host's last owner only when the
 * record names that owner), so each owner's reclaim is its own
 * reservation, and an owner's UNLOCK gave back its range only. */
static void test_replay_owners_apart(void **st)
{
	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 2, 20, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 1, 40, 10, false), NLM4_GRANTED);
	assert_int_equal(unlock("hostA", 2, 20, 10), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 2, 60, 10, false), NLM4_GRANTED);
	client_close();
	group_stop();

	group_start();
	client_open();
	assert_true(grp_in_grace(gpub()));
	assert_int_equal(lock("hostB", 9, 20, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 9, 45, 1, false), NLM4_DENIED_GRACE_PERIOD);
	assert_int_equal(lock("hostA", 2, 60, 10, true), NLM4_GRANTED);
	assert_true(grp_in_grace(gpub()));
	assert_int_equal(lock("hostA", 1, 0, 10, true), NLM4_GRANTED);
	assert_true(grp_in_grace(gpub()));
	assert_int_equal(lock("hostA", 1, 40, 10, true), NLM4_GRANTED);
	assert_false(grp_in_grace(gpub()));
	assert_int_equal(holder(60, 10), 2);
	assert_int_equal(holder(40, 10), 1);
	group_stop();
}

/* ---- error paths -------------------------------------------------------- */

static void test_bad_requests(void **st)
{
	struct outcome o;
	nlm4_lockargs a = { .exclusive = 1, .state = 1 };
	uint8_t forged[128];

	(void)st;
	group_start();
	/* a forged handle: the MAC fails */
	memcpy(forged, fh, (size_t)fhlen);
	forged[fhlen - 1] ^= 0x55;
	mklock(&a.alock, "hostA", 1, 0, 10);
	a.alock.fh.sgn_netobj_val = (char *)forged;
	memset(&o, 0, sizeof(o));
	assert_int_equal(rpcc_call(clnt, NLMPROC_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &a,
				   (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), NULL, on_res, &o), 0);
	wait_for(&o);
	assert_int_equal(o.err, 0);
	assert_int_equal(o.stat, NLM4_STALE_FH);
	/* a range past 2^64 */
	assert_int_equal(lock("hostA", 1, UINT64_MAX - 5, 10, false), NLM4_FBIG);
	/* nothing was granted by either */
	assert_int_equal(holder(0, 0), 0);
	/* conflicting owners */
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 2, 5, 1, false), NLM4_DENIED);
	/* unlock of something never held: granted (POSIX), nothing changes */
	assert_int_equal(unlock("hostB", 2, 0, 10), NLM4_GRANTED);
	assert_int_equal(holder(0, 10), 1);
	/* shares: a second deny-write share over an open one is refused */
	assert_int_equal(share(true, "hostA"), NLM4_GRANTED);
	assert_int_equal(share(true, "hostB"), NLM4_DENIED);
	assert_int_equal(share(false, "hostA"), NLM4_GRANTED);
	assert_int_equal(share(true, "hostB"), NLM4_GRANTED);
	group_stop();
}

/*
 * A LOCK refused at once writes nothing: from a client not on the list it
 * does not list it; from one durably listed (whose conflict the engine
 * answers without the test first, nlm_proc_lock) it is DENIED all the same
 * and writes nothing either.  A listed client's new grant writes nothing.
 */
static void test_refused_lock_writes_nothing(void **st)
{
	struct nlm_group *ng;
	uint64_t w;

	(void)st;
	group_start();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	w = clist_writes(ng->clients);
	assert_int_equal(clist_count(ng->clients), 1);
	assert_int_equal(lock("hostB", 2, 5, 1, false), NLM4_DENIED);
	assert_int_equal(clist_writes(ng->clients), w);
	assert_int_equal(clist_count(ng->clients), 1);   /* hostB not listed */
	assert_int_equal(lock("hostB", 2, 100, 1, false), NLM4_GRANTED);
	w = clist_writes(ng->clients);
	assert_int_equal(lock("hostB", 2, 5, 1, false), NLM4_DENIED);
	assert_int_equal(lock("hostB", 3, 0, 1, false), NLM4_DENIED);
	assert_int_equal(lock("hostB", 2, 200, 1, false), NLM4_GRANTED);
	assert_int_equal(clist_writes(ng->clients), w);
	assert_int_equal(holder(5, 1), 1);
	assert_int_equal(holder(200, 1), 2);
	group_stop();
}

/* Whether the list's entry for @name says it holds locks (-1: no entry). */
struct holding_q {
	const char *name;
	int holding;
};

static void holding_of(void *arg, const struct clist_entry_info *e)
{
	struct holding_q *q = arg;

	if (strcmp(e->name, q->name) == 0)
		q->holding = e->holding;
}

static int list_holding(struct nlm_group *ng, const char *name)
{
	struct holding_q q = { name, -1 };

	clist_foreach(ng->clients, holding_of, &q);
	return q.holding;
}

/*
 * The list follows what a host holds: its first grant lists it as holding,
 * its last UNLOCK starts the entry's idle clock, a LOCK again holds it
 * again; a short caller_name and a long one (kept under a hashed file
 * name).  The host asks the list under a hash it made once (nlm_host.chash):
 * made wrong, the release finds no entry and the client never goes idle.
 */
static void test_list_follows_holding(void **st)
{
	char longname[300];
	const char *names[] = { "hostA", longname };
	struct nlm_group *ng;

	(void)st;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	group_start();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	for (int i = 0; i < 2; i++) {
		uint64_t off = 1000 * (uint64_t)i;

		assert_int_equal(list_holding(ng, names[i]), -1);
		assert_int_equal(lock(names[i], 1, off, 10, false), NLM4_GRANTED);
		assert_int_equal(list_holding(ng, names[i]), 1);
		assert_int_equal(lock(names[i], 1, off + 20, 10, false), NLM4_GRANTED);
		assert_int_equal(unlock(names[i], 1, off, 10), NLM4_GRANTED);
		assert_int_equal(list_holding(ng, names[i]), 1);   /* still holds one */
		assert_int_equal(unlock(names[i], 1, off + 20, 10), NLM4_GRANTED);
		assert_int_equal(list_holding(ng, names[i]), 0);
		assert_int_equal(lock(names[i], 1, off, 10, false), NLM4_GRANTED);
		assert_int_equal(list_holding(ng, names[i]), 1);
		assert_int_equal(unlock(names[i], 1, off, 10), NLM4_GRANTED);
		assert_int_equal(list_holding(ng, names[i]), 0);
	}
	group_stop();
}

/* ---- the cookie echoed ---------------------------------------------------- */

struct cookie_out {
	bool done;
	int err;
	int stat;
	u_int len;
	uint8_t val[NLM_MAXNETOBJ];
};

/* nlm4_res and nlm4_testres (and their v3 forms) begin with the cookie. */
static void on_cookie(const struct rpcc_reply *rep, void *arg)
{
	struct cookie_out *o = arg;
	const sgn_netobj *c = rep->res;

	o->done = true;
	o->err = rep->err;
	if (rep->err)
		return;
	o->len = c->sgn_netobj_len;
	if (c->sgn_netobj_len)
		memcpy(o->val, c->sgn_netobj_val, c->sgn_netobj_len);
	o->stat = (int)((const nlm4_res *)rep->res)->stat.stat;
}

static void cookie_call(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xa, void *a,
			xdrproc_t xr, size_t rsize, const uint8_t *cookie, u_int clen,
			int want_stat)
{
	struct cookie_out o = { .done = false };

	assert_int_equal(rpcc_call(c, proc, xa, a, xr, rsize, NULL, on_cookie, &o), 0);
	for (int i = 0; i < 1000000 && !o.done; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_true(o.done);
	assert_int_equal(o.err, 0);
	assert_int_equal(o.stat, want_stat);
	assert_int_equal(o.len, clen);
	assert_memory_equal(o.val, cookie, clen);
}

/*
 * Every v4 procedure decodes its cookie and lock into the request's room
 * (nlm_xdr.h) and echoes the cookie from there; v3 keeps a copy.  At the
 * bounds of nlm.x (a 1024-byte cookie and owner handle, a 1024-byte
 * caller_name) the reply carries the cookie whole, and the request is
 * freed without freeing the room (ASan: no bad free, no leak).
 */
static void test_cookie_echo(void **st)
{
	static uint8_t cookie[NLM_MAXNETOBJ], oh[NLM_MAXNETOBJ];
	static char longname[NLM_MAXSTRLEN + 1];
	nlm4_lockargs la = { .exclusive = 1, .state = 1 };
	nlm4_testargs ta = { .exclusive = 1 };
	nlm4_unlockargs ua = { 0 };
	nlm4_cancargs ca = { .block = 1, .exclusive = 1 };
	sgn_nlm_lockargs l3 = { .exclusive = 1, .state = 1 };
	struct sockaddr_in sin = vip_sin();
	struct rpcc_opts o3 = {
		.server = (struct sockaddr *)&sin, .prog = NLM_PROG, .vers = NLM_VERSX,
		.transport = RPCC_TCP, .timeout = { .total_ms = 60000 },
	};
	struct rpcc_clnt *c3;

	(void)st;
	for (size_t i = 0; i < sizeof(cookie); i++) {
		cookie[i] = (uint8_t)(i * 7 + 3);
		oh[i] = (uint8_t)(i * 5 + 1);
	}
	memset(longname, 'n', NLM_MAXSTRLEN);
	group_start();
	mklock(&la.alock, "hostC", 3, 0, 10);
	la.alock.oh.sgn_netobj_val = (char *)oh;
	la.alock.oh.sgn_netobj_len = sizeof(oh);
	la.cookie.sgn_netobj_val = (char *)cookie;
	la.cookie.sgn_netobj_len = sizeof(cookie);
	cookie_call(clnt, NLMPROC_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &la,
		    (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), cookie, sizeof(cookie),
		    NLM4_GRANTED);
	ta.alock = la.alock;
	ta.alock.svid = 4;
	ta.alock.oh.sgn_netobj_len = 7;
	ta.cookie = la.cookie;
	ta.cookie.sgn_netobj_len = 9;
	cookie_call(clnt, NLMPROC_TEST, (xdrproc_t)xdr_nlm4_testargs, &ta,
		    (xdrproc_t)xdr_nlm4_testres, sizeof(nlm4_testres), cookie, 9, NLM4_DENIED);
	cookie_call(clnt, NLMPROC_GRANTED, (xdrproc_t)xdr_nlm4_testargs, &ta,
		    (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), cookie, 9, NLM4_DENIED);
	ca.alock = la.alock;
	ca.cookie = la.cookie;
	cookie_call(clnt, NLMPROC_CANCEL, (xdrproc_t)xdr_nlm4_cancargs, &ca,
		    (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), cookie, sizeof(cookie),
		    NLM4_DENIED);
	ua.alock = la.alock;
	ua.cookie = la.cookie;
	ua.cookie.sgn_netobj_len = 0;
	cookie_call(clnt, NLMPROC_UNLOCK, (xdrproc_t)xdr_nlm4_unlockargs, &ua,
		    (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), cookie, 0, NLM4_GRANTED);
	assert_int_equal(holder(0, 10), 0);
	/* a caller_name at the bound, decoded whole: a host of its own */
	la.alock.caller_name = longname;
	cookie_call(clnt, NLMPROC_LOCK, (xdrproc_t)xdr_nlm4_lockargs, &la,
		    (xdrproc_t)xdr_nlm4_res, sizeof(nlm4_res), cookie, sizeof(cookie),
		    NLM4_GRANTED);
	assert_non_null(nlm_host_find(grp_slot(gpub(), GRP_PROTO_NLM), longname));
	/* v3: decoded in the 32-bit form, the cookie copied */
	assert_int_equal(rpcc_new(&loop, &o3, &c3), 0);
	l3.cookie.sgn_netobj_val = (char *)cookie;
	l3.cookie.sgn_netobj_len = 100;
	l3.alock.caller_name = "hostD";
	l3.alock.fh.sgn_netobj_val = (char *)fh;
	l3.alock.fh.sgn_netobj_len = (u_int)fhlen;
	l3.alock.oh.sgn_netobj_val = (char *)oh;
	l3.alock.oh.sgn_netobj_len = 16;
	l3.alock.svid = 5;
	l3.alock.l_offset = 20;
	l3.alock.l_len = 5;
	cookie_call(c3, NLMPROC_LOCK, (xdrproc_t)xdr_sgn_nlm_lockargs, &l3,
		    (xdrproc_t)xdr_sgn_nlm_res, sizeof(sgn_nlm_res), cookie, 100, LCK_GRANTED);
	rpcc_close(c3);
	drain();
	assert_int_equal(holder(20, 5), 5);
	group_stop();
}

/* ---- FREE_ALL --------------------------------------------------------------- */

/*
 * FREE_ALL releases every lock and share of the host it names, and only
 * when it comes from an address the client list records for that host: a
 * third machine cannot drop a victim's locks.  A name the group does not
 * know falls back to the sender's address (a client whose lockd names
 * itself differently from its locks).
 */
static void test_free_all(void **st)
{
	struct rpcc_clnt *other;

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 2, 20, 10, false), NLM4_GRANTED);
	assert_int_equal(share(true, "hostA"), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 3, 40, 10, false), NLM4_GRANTED);

	/* from another machine: refused, nothing changes */
	other = client_new("127.0.0.3");
	free_all_on(other, "hostA");
	assert_int_equal(holder(0, 10), 1);
	assert_int_equal(holder(20, 10), 2);
	assert_int_equal(share(true, "hostC"), NLM4_DENIED);
	/* nor does an unknown name from there release by address */
	free_all_on(other, "nobody");
	assert_int_equal(holder(40, 10), 3);

	/* from hostA's own address: both owners' locks and the share go,
	 * hostB's lock stays */
	free_all_on(clnt, "hostA");
	assert_int_equal(holder(0, 10), 0);
	assert_int_equal(holder(20, 10), 0);
	assert_int_equal(holder(40, 10), 3);
	assert_int_equal(share(true, "hostC"), NLM4_GRANTED);
	assert_int_equal(share(false, "hostC"), NLM4_GRANTED);
	/* what was freed can be taken by another owner */
	assert_int_equal(lock("hostC", 4, 0, 30, false), NLM4_GRANTED);

	/* an unknown name from a recorded address releases the hosts that
	 * address sent as (hostB and hostC here), like Linux's statd */
	free_all_on(clnt, "hostB.example");
	assert_int_equal(holder(40, 10), 0);
	assert_int_equal(holder(0, 30), 0);
	rpcc_close(other);
	drain();
	group_stop();
}

/* ---- every allocation of a call failed in turn --------------------------- */

enum op { OP_LOCK, OP_TEST, OP_UNLOCK, OP_CANCEL, OP_SHARE, OP_FREE_ALL, OP_LOCK_MORE };

static int op_start(enum op op, struct outcome *o)
{
	switch (op) {
	case OP_LOCK:
		return lock_start(o, "hostF", 7, 1000, 10, false);
	case OP_TEST:
		return test_start(o, "hostF", 7, 0, 10);
	case OP_UNLOCK:
		return unlock_start(o, "hostF", 7, 1000, 10);
	case OP_CANCEL:
		return cancel_start(o, "hostF", 7, 1000, 10);
	case OP_SHARE:
		return share_start(o, true, "hostF");
	case OP_FREE_ALL:
		return free_all_start(clnt, o, "hostF");
	case OP_LOCK_MORE:
		return lock_start(o, "hostF", 7, 1000, 20, false);
	}
	return -EINVAL;
}

/* The state before each run of @op: hostF holds [1000,1010) for UNLOCK,
 * FREE_ALL and LOCK_MORE (a LOCK of [1000,1020) by the same owner) and
 * nothing for the others; hostA holds [0,10) throughout. */
static void op_prepare(enum op op)
{
	if (op == OP_UNLOCK || op == OP_FREE_ALL || op == OP_LOCK_MORE)
		assert_int_equal(lock("hostF", 7, 1000, 10, false), NLM4_GRANTED);
}

/* After a run of @op with outcome @o (faults off again): the state is what
 * the reply said, then put back. */
static void op_check(enum op op, const struct outcome *o, int rc)
{
	bool answered = rc == 0 && o->err == 0;

	switch (op) {
	case OP_LOCK:
		if (answered)
			assert_true(o->stat == NLM4_GRANTED || o->stat == NLM4_DENIED_NOLOCKS ||
				    o->stat == NLM4_FAILED);
		if (answered && o->stat == NLM4_GRANTED)
			assert_int_equal(holder(1000, 10), 7);
		else if (answered)
			assert_int_equal(holder(1000, 10), 0);
		/* unanswered: either; put back in any case */
		assert_int_equal(unlock("hostF", 7, 1000, 10), NLM4_GRANTED);
		break;
	case OP_TEST:
		if (answered)
			assert_true(o->stat == NLM4_DENIED || o->stat == NLM4_DENIED_NOLOCKS ||
				    o->stat == NLM4_FAILED);
		if (answered && o->stat == NLM4_DENIED)
			assert_int_equal(o->holder_svid, 1);
		break;
	case OP_UNLOCK:
		if (answered)
			assert_true(o->stat == NLM4_GRANTED || o->stat == NLM4_DENIED_NOLOCKS ||
				    o->stat == NLM4_FAILED);
		if (answered && o->stat == NLM4_GRANTED)
			assert_int_equal(holder(1000, 10), 0);
		assert_int_equal(unlock("hostF", 7, 1000, 10), NLM4_GRANTED);
		break;
	case OP_CANCEL:
		if (answered)
			assert_true(o->stat == NLM4_DENIED || o->stat == NLM4_GRANTED ||
				    o->stat == NLM4_DENIED_NOLOCKS || o->stat == NLM4_FAILED);
		break;
	case OP_SHARE:
		if (answered)
			assert_true(o->stat == NLM4_GRANTED || o->stat == NLM4_DENIED_NOLOCKS ||
				    o->stat == NLM4_FAILED);
		assert_int_equal(share(false, "hostF"), NLM4_GRANTED);
		break;
	case OP_FREE_ALL:
		/* no status to check: released or not, never anything else */
		if (answered && holder(1000, 10) != 0)
			assert_int_equal(holder(1000, 10), 7);
		assert_int_equal(unlock("hostF", 7, 1000, 10), NLM4_GRANTED);
		break;
	case OP_LOCK_MORE:
		if (answered)
			assert_true(o->stat == NLM4_GRANTED || o->stat == NLM4_DENIED_NOLOCKS ||
				    o->stat == NLM4_FAILED);
		if (answered && o->stat == NLM4_GRANTED)
			assert_int_equal(holder(1000, 20), 7);
		/* Granted, refused or unanswered, the client still holds what
		 * it held before: a refused grant taken back by unlocking the
		 * whole range would have freed [1000,1010) under it. */
		assert_int_equal(holder(1000, 10), 7);
		assert_int_equal(unlock("hostF", 7, 1000, 20), NLM4_GRANTED);
		break;
	}
	/* the group is still whole: hostA's lock, nothing else of hostF */
	assert_int_equal(holder(0, 10), 1);
	assert_int_equal(holder(1000, 10), 0);
}

static void test_alloc_failure(void **st)
{
	static const char *const names[] = { "LOCK", "TEST", "UNLOCK", "CANCEL", "SHARE",
					     "FREE_ALL", "LOCK of more than held" };
	long total[7];

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	for (enum op op = OP_LOCK; op <= OP_LOCK_MORE; op++) {
		struct outcome o;
		int rc;
		long failed_ok = 0;

		/* count: a first run without faults */
		op_prepare(op);
		fa_reset();
		rc = op_start(op, &o);
		assert_int_equal(rc, 0);
		wait_for(&o);
		total[op] = fa_calls();
		fa_reset();
		assert_int_equal(o.err, 0);
		op_check(op, &o, rc);
		assert_true(total[op] > 0);
		for (long n = 0; n < total[op]; n++) {
			op_prepare(op);
			fa_reset();
			fa_fail_at(n);
			rc = op_start(op, &o);
			if (rc == 0)
				wait_for(&o);
			fa_reset();
			if (rc == 0 && o.err == 0 &&
			    (o.stat == NLM4_DENIED_NOLOCKS || o.stat == NLM4_FAILED))
				failed_ok++;
			op_check(op, &o, rc);
		}
		print_message("%s: %ld allocations, %ld failures answered with a status\n",
			      names[op], total[op], failed_ok);
	}
	group_stop();
}

/* A reclaim in grace with each of its allocations failed in turn: it is
 * granted (the reservation goes, grace ends, the lock protects its range)
 * or refused with a status (the reservation stays: another owner is still
 * refused for grace), never half of each. */
static void test_alloc_failure_reclaim(void **st)
{
	long total = -1, refused = 0;

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 100, false), NLM4_GRANTED);
	for (long n = -1; total < 0 || n < total; n++) {
		struct outcome o;
		int rc;

		client_close();
		group_stop();
		group_start();
		client_open();
		assert_true(grp_in_grace(gpub()));
		fa_reset();
		if (n >= 0)
			fa_fail_at(n);
		rc = lock_start(&o, "hostA", 1, 0, 100, true);
		if (rc == 0)
			wait_for(&o);
		if (n < 0)
			total = fa_calls();
		fa_reset();
		if (rc == 0 && o.err == 0 && o.stat == NLM4_GRANTED) {
			assert_false(grp_in_grace(gpub()));
			assert_int_equal(holder(0, 100), 1);
		} else if (rc == 0 && o.err == 0) {
			assert_true(o.stat == NLM4_DENIED_NOLOCKS || o.stat == NLM4_FAILED);
			refused++;
			assert_true(grp_in_grace(gpub()));
			/* (TEST is refused in grace: the probe is a lock) */
			assert_int_equal(lock("hostB", 2, 50, 10, false), NLM4_DENIED_GRACE_PERIOD);
		}
		/* whatever happened, hostA can still reclaim */
		if (grp_in_grace(gpub()))
			assert_int_equal(lock("hostA", 1, 0, 100, true), NLM4_GRANTED);
		assert_int_equal(holder(0, 100), 1);
	}
	assert_true(total > 0);
	print_message("reclaim: %ld allocations, %ld failures answered with a status\n", total,
		      refused);
	group_stop();
}

/*
 * The host table alone: it doubles its chains past two hosts per chain
 * (a journal with 100,000 hosts is replayed one record at a time, each
 * finding its host), every host stays findable across the growth, and
 * each allocation of adding a host, failed in turn, either refuses the
 * host (table unchanged) or adds it with the old chains (growth is
 * optional); nothing leaks (ASan).
 */
static void test_host_table_grows(void **st)
{
	struct lk_table_opts lo = { .hash_seed = { 7, 9 } };
	struct nlm_group *ng = calloc(1, sizeof(*ng));
	struct nlm_host **hs = calloc(70000, sizeof(*hs));
	char name[32];
	long total, refused = 0, kept_chains = 0;

	(void)st;
	assert_non_null(ng);
	assert_non_null(hs);
	assert_int_equal(lk_table_new(&lo, &ng->locks), 0);
	assert_null(nlm_host_find(ng, "h-0"));
	for (int i = 0; i < 1024; i++) {
		snprintf(name, sizeof(name), "h-%d", i);
		hs[i] = nlm_host_get(ng, name);
		assert_non_null(hs[i]);
	}
	assert_int_equal(ng->nhosts, 1024);
	assert_int_equal(ng->nhbuckets, 512);
	for (int i = 0; i < 1024; i++) {
		snprintf(name, sizeof(name), "h-%d", i);
		assert_ptr_equal(nlm_host_find(ng, name), hs[i]);
		assert_ptr_equal(nlm_host_get(ng, name), hs[i]);
	}
	assert_int_equal(ng->nhosts, 1024);

	/* Host 1025 makes the chains double: count its allocations, then
	 * fail each in turn, each time on a new host that is due to grow
	 * the table. */
	fa_reset();
	hs[1024] = nlm_host_get(ng, "h-1024");
	total = fa_calls();
	fa_reset();
	assert_non_null(hs[1024]);
	assert_int_equal(ng->nhbuckets, 1024);
	assert_true(total >= 4);	/* chains, host, name, lock client */
	for (long n = 0; n < total; n++) {
		size_t nb = ng->nhbuckets, nh;
		struct nlm_host *h;

		for (size_t i = ng->nhosts; i < 2 * nb; i++) {
			snprintf(name, sizeof(name), "h-%zu", i);
			hs[i] = nlm_host_get(ng, name);
			assert_non_null(hs[i]);
		}
		assert_int_equal(ng->nhbuckets, nb);
		nh = ng->nhosts;
		assert_true(nh < 70000);
		snprintf(name, sizeof(name), "h-%zu", nh);
		fa_reset();
		fa_fail_at(n);
		h = nlm_host_get(ng, name);
		fa_reset();
		if (!h) {
			refused++;
			assert_int_equal(ng->nhosts, nh);
			assert_null(nlm_host_find(ng, name));
		} else {
			hs[nh] = h;
			assert_int_equal(ng->nhosts, nh + 1);
			kept_chains += ng->nhbuckets == nb;
		}
		for (size_t i = 0; i < ng->nhosts; i++) {
			snprintf(name, sizeof(name), "h-%zu", i);
			assert_ptr_equal(nlm_host_find(ng, name), hs[i]);
		}
	}
	assert_true(refused >= 3);
	assert_int_equal(kept_chains, 1);	/* only the chains' own calloc failed */
	nlm_hosts_free(ng->locks, ng->hosts, ng->nhbuckets);
	free(ng);
	free(hs);
}

/* FNV-1a 64 of the family byte and the address (@fam != 0) or of a name
 * (@fam == 0): the unkeyed hashes the host table and the address index
 * used, with which anyone could compute, offline, names or addresses that
 * share a chain. */
static uint64_t old_fnv(int fam, const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;

	if (fam)
		h = (h ^ (unsigned)fam) * 0x100000001b3ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static bool count_host(void *arg, struct nlm_host *h)
{
	struct nlm_host **want = arg;

	if (h == *want)
		*want = NULL;
	return true;
}

/*
 * Names and addresses a client picks cannot be aimed at one chain: 1,000
 * caller names that all shared one chain of the old FNV host table (any
 * size up to 4,096 chains), each having sent from an IPv6 address that all
 * shared one chain of the old fixed 256-chain address index.  Looking each
 * up once costs a few entries on average (status host_probes,
 * address_probes), not the hundreds a shared chain costs; the address
 * index grew with its entries.
 */
static void test_host_index_unaimable(void **st)
{
	enum { N = 1000 };
	struct lk_table_opts lo = { .hash_seed = { 7, 9 } };
	struct nlm_group *ng = calloc(1, sizeof(*ng));
	struct nlm_host **hs = calloc(N, sizeof(*hs));
	struct sockaddr_storage *ad = calloc(N, sizeof(*ad));
	char name[32];
	uint64_t probes;
	unsigned k = 0;

	(void)st;
	assert_non_null(ng);
	assert_non_null(hs);
	assert_non_null(ad);
	assert_int_equal(lk_table_new(&lo, &ng->locks), 0);
	for (int i = 0, found = 0; found < N; i++) {
		snprintf(name, sizeof(name), "aim-%d", i);
		if (old_fnv(0, name, strlen(name)) & 4095)
			continue;
		hs[found] = nlm_host_get(ng, name);
		assert_non_null(hs[found]);
		for (;;) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ad[found];

			memset(a6, 0, sizeof(*a6));
			a6->sin6_family = AF_INET6;
			a6->sin6_addr.s6_addr[0] = 0x20;
			a6->sin6_addr.s6_addr[1] = 0x01;
			a6->sin6_addr.s6_addr[2] = 0x0d;
			a6->sin6_addr.s6_addr[3] = 0xb8;
			k++;
			memcpy(&a6->sin6_addr.s6_addr[12], &k, sizeof(k));
			if (old_fnv(AF_INET6, &a6->sin6_addr, 16) % 256 == 0)
				break;
		}
		nlm_host_seen(ng, hs[found], &ad[found]);
		found++;
	}
	assert_int_equal(ng->nhosts, N);
	assert_int_equal(ng->naddrs, N);
	assert_true(ng->nabuckets >= N / 2);

	probes = ng->host_probes;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "%s", hs[i]->name);
		assert_ptr_equal(nlm_host_find(ng, name), hs[i]);
	}
	print_message("host table: %" PRIu64 " entries looked at for %d lookups\n",
		      ng->host_probes - probes, N);
	assert_true(ng->host_probes - probes <= 4 * N);

	probes = ng->addr_probes;
	for (int i = 0; i < N; i++) {
		struct nlm_host *want = hs[i];

		nlm_hosts_at(ng, &ad[i], count_host, &want);
		assert_null(want);
	}
	print_message("address index: %" PRIu64 " entries looked at for %d lookups\n",
		      ng->addr_probes - probes, N);
	assert_true(ng->addr_probes - probes <= 4 * N);

	nlm_hosts_free(ng->locks, ng->hosts, ng->nhbuckets);
	free(ng->addrs);
	free(ng);
	free(hs);
	free(ad);
}

/* ---- compaction off the loop (fold) -------------------------------------- */

/* Every lock and share of a table, one line each, sorted: the state as a
 * client sees it, whatever the table's internal order. */
struct lines { char **v; size_t n, cap; };

static void lines_add(struct lines *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n] = strdup(s);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static const char *client_name(const struct lk_client *c)
{
	const struct nlm_host *h = lk_client_priv(c);

	return h ? h->name : "(nobody)";
}

static int line_lock(void *arg, const struct lk_lockinfo *li)
{
	size_t ohlen;
	const char *oh = lk_owner_oh(li->owner, &ohlen);
	char b[512];

	snprintf(b, sizeof(b), "L %s %u %.*s %d %" PRIu64 "-%" PRIu64,
		 client_name(lk_owner_client(li->owner)), lk_owner_svid(li->owner), (int)ohlen,
		 oh, li->type, li->range.start, li->range.end);
	lines_add(arg, b);
	return 0;
}

static int line_share(void *arg, const struct lk_shareinfo *si)
{
	size_t ohlen;
	const char *oh = lk_owner_oh(si->owner, &ohlen);
	char b[512];

	snprintf(b, sizeof(b), "S %s %.*s %u %u", client_name(lk_owner_client(si->owner)),
		 (int)ohlen, oh, si->mode, si->deny);
	lines_add(arg, b);
	return 0;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_of(const struct lk_table *t, struct lines *l)
{
	if (!t)
		return;
	assert_int_equal(lk_foreach_lock(t, line_lock, l), 0);
	assert_int_equal(lk_foreach_share(t, line_share, l), 0);
}

static void lines_sort(struct lines *l)
{
	qsort(l->v, l->n, sizeof(*l->v), line_cmp);
}

static void lines_expect_equal(struct lines *a, struct lines *b)
{
	lines_sort(a);
	lines_sort(b);
	for (size_t k = 0; k < a->n && k < b->n; k++)
		assert_string_equal(a->v[k], b->v[k]);
	assert_int_equal(a->n, b->n);
}

static void lines_free(struct lines *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->v[k]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct jr_stats jstats(void)
{
	struct nlm_group *ng = grp_slot(gpub(), GRP_PROTO_NLM);
	struct jr_stats js;

	jr_get_stats(ng->jr, &js);
	return js;
}

/* Run until the journal's compactions reach @n and none is under way. */
static void compactions_wait(uint64_t n)
{
	struct nlm_group *ng = grp_slot(gpub(), GRP_PROTO_NLM);

	for (int i = 0; i < 1000000 && (jstats().compactions < n || jr_folding(ng->jr)); i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(jstats().compactions, n);
	assert_false(jr_folding(ng->jr));
}

/* Fold now (as if the journal had reached its size) and wait for it. */
static void fold_and_wait(void)
{
	struct nlm_group *ng = grp_slot(gpub(), GRP_PROTO_NLM);
	struct jr_stats js = jstats();

	jr_test_fold(ng->jr);
	for (int i = 0; i < 1000000 && jstats().folds == js.folds; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(jstats().folds, js.folds + 1);
	assert_int_equal(jstats().compactions, js.compactions + 1);
	assert_int_equal(jstats().fold_failures, 0);
}

/*
 * A compaction folded off the loop: the NLM fold ops replay the journal
 * into a table of their own and emit it; the next incarnation loads from
 * the folded file exactly the locks and shares the group held (splits,
 * two owners of a host, FREE_ALL, a share, a lock to EOF), in grace the
 * reservations and the new locks together; records appended during and
 * after the fold are kept.
 */
static void test_fold_loads_as_held(void **st)
{
	struct lines live = { 0 }, loaded = { 0 };
	struct nlm_group *ng;
	uint64_t c0;

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 100, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 1, 200, 100, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 2, 400, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 3, 500, 100, false), NLM4_GRANTED);
	assert_int_equal(unlock("hostA", 1, 50, 10), NLM4_GRANTED);   /* a split */
	assert_int_equal(lock("hostC", 5, 100000, 0, false), NLM4_GRANTED); /* to EOF */
	assert_int_equal(share(true, "hostA"), NLM4_GRANTED);
	assert_int_equal(lock("hostD", 6, 700, 10, false), NLM4_GRANTED);
	free_all_on(clnt, "hostD");
	/* The group found no journal: the first compaction (a fold of this
	 * owner's records, its grace being over at once) marks it complete. */
	compactions_wait(1);
	c0 = jstats().compactions;
	fold_and_wait();
	/* after the fold: appended to the new file */
	assert_int_equal(unlock("hostB", 3, 500, 50), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 3, 800, 10, false), NLM4_GRANTED);
	/* a second fold, requests going on while it runs */
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	jr_test_fold(ng->jr);
	assert_int_equal(lock("hostE", 7, 900, 10, false), NLM4_GRANTED);
	assert_int_equal(unlock("hostA", 2, 400, 10), NLM4_GRANTED);
	for (int i = 0; i < 1000000 && jr_folding(ng->jr); i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(jstats().compactions, c0 + 2);
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->locks, &live);
	assert_true(live.n >= 7);
	client_close();
	group_stop();

	group_start();
	client_open();
	assert_true(grp_in_grace(gpub()));
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->resv, &loaded);
	lines_expect_equal(&live, &loaded);
	lines_free(&live);
	lines_free(&loaded);

	/* In grace: reservations and new locks are one state in the file. */
	assert_int_equal(lock("hostA", 1, 0, 50, true), NLM4_GRANTED);   /* a reclaim */
	assert_int_equal(lock("hostF", 8, 5000, 10, false), NLM4_GRANTED);
	fold_and_wait();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->resv, &live);
	lines_of(ng->locks, &live);
	client_close();
	group_stop();
	group_start();
	client_open();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->resv, &loaded);
	lines_expect_equal(&live, &loaded);
	lines_free(&live);
	lines_free(&loaded);
	group_stop();
}

/*
 * A stop leaves only once the journal holds what the group ended with: an
 * UNLOCK is answered before its record is durable, so a stop right after
 * one must still write it (else the next owner loads the released lock as
 * reserved).  Meanwhile the managed stop is not answered (returns 1), the
 * group reads offline ("stopping") and a start is refused.
 */
static void test_stop_writes_last_releases(void **st)
{
	struct lines loaded = { 0 };
	struct nlm_group *ng;
	const char *why;
	char buf[512];
	struct jr *jr;

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 10, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 2, 100, 10, false), NLM4_GRANTED);
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	jr = ng->jr;
	/* hostA's release in flight (its I/O ran, held: the close takes it),
	 * hostB's in the open batch behind it. */
	jr_test_hold(jr, 1);
	assert_int_equal(unlock("hostA", 1, 0, 10), NLM4_GRANTED);
	for (int i = 0; i < 100000 && jr_test_held(jr) == 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(jr_test_held(jr), 1);
	assert_int_equal(unlock("hostB", 2, 100, 10), NLM4_GRANTED);
	client_close();

	assert_int_equal(grp_node_stop_group(&node, "g1", buf, sizeof(buf)), 1);
	assert_int_equal(node.slots[0].leave_holds, 1);
	assert_int_equal(grp_node_group_state(&node, "g1", &why), GRP_NODE_OFFLINE);
	assert_non_null(strstr(why, "stopping"));
	assert_int_equal(grp_node_start_group(&node, "g1", buf, sizeof(buf)), -EBUSY);
	assert_non_null(strstr(buf, "still stopping"));
	for (int i = 0; i < 100000 && node.slots[0].leave_holds; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(node.slots[0].leave_holds, 0);
	drain();

	/* Both releases are in the file: nothing is reserved. */
	group_start();
	client_open();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->resv, &loaded);
	assert_int_equal(loaded.n, 0);
	lines_free(&loaded);
	assert_int_equal(lock("hostC", 3, 0, 200, false), NLM4_GRANTED);
	group_stop();
}

/*
 * Grace ends with reservations left: the journal keeps only the lock
 * table, folded from the records this incarnation appended (reclaims,
 * new locks, a split, releases of reservations only), off the loop; the
 * next incarnation loads exactly that table.
 */
static void test_grace_end_folds_own(void **st)
{
	struct lines live = { 0 }, loaded = { 0 };
	struct nlm_group *ng;
	struct jr_stats js;

	(void)st;
	group_start();
	assert_int_equal(lock("hostA", 1, 0, 100, false), NLM4_GRANTED);
	assert_int_equal(lock("hostA", 1, 200, 100, false), NLM4_GRANTED);
	assert_int_equal(lock("hostB", 2, 400, 100, false), NLM4_GRANTED);
	assert_int_equal(lock("hostC", 3, 600, 100, false), NLM4_GRANTED);
	assert_int_equal(share(true, "hostA"), NLM4_GRANTED);
	client_close();
	group_stop();

	group_start();
	client_open();
	assert_true(grp_in_grace(gpub()));
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	js = jstats();
	assert_int_equal(lock("hostA", 1, 0, 100, true), NLM4_GRANTED);    /* reclaim */
	assert_int_equal(lock("hostD", 4, 1000, 100, false), NLM4_GRANTED); /* new */
	assert_int_equal(unlock("hostB", 2, 400, 50), NLM4_GRANTED);  /* reservation only */
	assert_int_equal(lock("hostB", 2, 450, 50, true), NLM4_GRANTED);    /* reclaim */
	assert_int_equal(lock("hostE", 5, 2000, 10, false), NLM4_GRANTED);
	assert_int_equal(unlock("hostE", 5, 2002, 2), NLM4_GRANTED);  /* a split */
	free_all_on(clnt, "hostC");                                    /* reservation only */
	/* grace ends (the group's hook): A's [200, 300) and share dropped */
	nlm_resv_drop(ng);
	compactions_wait(js.compactions + 1);
	assert_int_equal(jstats().folds, js.folds + 1);  /* folded, not a snapshot */
	assert_int_equal(jstats().fold_failures, 0);
	lines_of(ng->locks, &live);
	assert_int_equal(live.n, 5);
	client_close();
	group_stop();

	group_start();
	client_open();
	ng = grp_slot(gpub(), GRP_PROTO_NLM);
	lines_of(ng->resv, &loaded);
	lines_expect_equal(&live, &loaded);
	lines_free(&live);
	lines_free(&loaded);
	group_stop();
}

/*
 * A decoded v4 LOCK's arguments cut to what they use (rpc_proc.args_move;
 * rpc_svc.c cuts a call's block right after the decode): every field the
 * same after the move into a room of exactly nlm4_room_used_lockargs
 * bytes (heap-allocated, so ASan catches a byte past it), each netobj's
 * bytes 8-aligned, every pointer inside that room, an empty netobj's
 * too; the source is left as it was.
 */
static void test_lockargs_cut(void **st)
{
	static const size_t lens[][4] = { /* cookie, caller_name, fh, oh */
		{ 8, 10, 32, 20 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 }, { 3, 0, 64, 0 },
		{ NLM_MAXNETOBJ, NLM_MAXSTRLEN, NLM_MAXNETOBJ, NLM_MAXNETOBJ },
	};

	(void)st;
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		uint8_t *wire = malloc(4 * NLM_MAXNETOBJ + 256), *room = malloc(NLM4_ARGS_ROOM);
		const size_t *l = lens[k];
		nlm4_lockargs a, b;
		size_t o = 0, used;
		uint8_t *cut;
		XDR x;

		assert_non_null(wire);
		assert_non_null(room);
#define PUT32(v) do { uint32_t be_ = htonl((uint32_t)(v)); memcpy(wire + o, &be_, 4); o += 4; } while (0)
#define PUTB(n, c) do { PUT32(n); memset(wire + o, (c), (n)); o += (n); \
			while (o % 4) wire[o++] = 0; } while (0)
		PUTB(l[0], 'c');        /* cookie */
		PUT32(1);               /* block */
		PUT32(1);               /* exclusive */
		PUTB(l[1], 'n');        /* caller_name */
		PUTB(l[2], 'f');        /* fh */
		PUTB(l[3], 'o');        /* oh */
		PUT32(4242);            /* svid */
		PUT32(0); PUT32(7);     /* l_offset */
		PUT32(0); PUT32(9);     /* l_len */
		PUT32(0);               /* reclaim */
		PUT32(5);               /* state */
#undef PUTB
#undef PUT32
		memset(&a, 0, sizeof(a));
		nlm4_prep_lockargs(&a, room);
		xdrmem_create(&x, (char *)wire, (u_int)o, XDR_DECODE);
		assert_true(xdr_nlm4_lockargs(&x, &a));
		xdr_destroy(&x);

		used = nlm4_room_used_lockargs(&a);
		assert_int_equal(used, ((l[0] + 7) & ~7u) + ((l[2] + 7) & ~7u) +
				       ((l[3] + 7) & ~7u) + l[1] + 1);
		cut = malloc(used);
		assert_non_null(cut);
		memset(&b, 0, sizeof(b));
		nlm4_move_lockargs(&b, &a, cut);

		assert_int_equal(b.cookie.sgn_netobj_len, l[0]);
		assert_int_equal(b.alock.fh.sgn_netobj_len, l[2]);
		assert_int_equal(b.alock.oh.sgn_netobj_len, l[3]);
		assert_int_equal(strlen(b.alock.caller_name), l[1]);
		assert_memory_equal(b.cookie.sgn_netobj_val, a.cookie.sgn_netobj_val, l[0]);
		assert_memory_equal(b.alock.fh.sgn_netobj_val, a.alock.fh.sgn_netobj_val, l[2]);
		assert_memory_equal(b.alock.oh.sgn_netobj_val, a.alock.oh.sgn_netobj_val, l[3]);
		assert_string_equal(b.alock.caller_name, a.alock.caller_name);
		assert_true(b.block && b.exclusive && !b.reclaim);
		assert_int_equal(b.alock.svid, 4242);
		assert_int_equal(b.alock.l_offset, 7);
		assert_int_equal(b.alock.l_len, 9);
		assert_int_equal(b.state, 5);
		{
			const char *p[] = { b.cookie.sgn_netobj_val, b.alock.fh.sgn_netobj_val,
					    b.alock.oh.sgn_netobj_val, b.alock.caller_name };

			for (size_t i = 0; i < 4; i++) {
				assert_true((const uint8_t *)p[i] >= cut &&
					    (const uint8_t *)p[i] < cut + used);
				if (i < 3)
					assert_int_equal((uintptr_t)((const uint8_t *)p[i] - cut) % 8, 0);
			}
		}
		/* the source still points into its own room */
		assert_ptr_equal(a.cookie.sgn_netobj_val, (char *)room);
		free(cut);
		free(room);
		free(wire);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_grace_reservations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grace_unlock_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_owners_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_loads_as_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grace_end_folds_own, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_writes_last_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cookie_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_lists_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_snap_is_a_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_lock_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_follows_holding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure_reclaim, setup, teardown),
		cmocka_unit_test(test_host_table_grows),
		cmocka_unit_test(test_lockargs_cut),
		cmocka_unit_test(test_host_index_unaimable),
	};

	log_init("test_nlm", LOGL_ERR, false);
	grp_proto_register(GRP_PROTO_NLM, &nlm_group_ops);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
