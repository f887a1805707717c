/*
 * nlm_interop - an independent NLM v4 client against sgnfsd: libnfs's raw
 * RPC layer encodes and decodes every message (MOUNT v3, NFSv3 LOOKUP and
 * NLM v4 via rpc_nlm4_*), so this checks our server against someone
 * else's reading of the XDR.
 *
 *   nlm_interop SERVER EXPORT FILE [CALLER] [NLM_PORT]
 *
 * SERVER is a group VIP, EXPORT the exported path, FILE a file name in the
 * export's root.  The NLM service is found through SERVER's portmapper
 * (rpc_connect_program_async), or with NLM_PORT connected to directly
 * (rpc_connect_port_async).  Two owners of host CALLER (svid 101 "A",
 * svid 202 "B") and a second host CALLER-2 lock, test, conflict and
 * unlock.  One line per check ("ok - ..." / "FAIL - ..."); exit status 0
 * when every check passed, 1 otherwise, 2 on a setup failure.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nlm.h>

#define TIMEOUT_MS 10000

static int failures;
static int checks;

static void check(int cond, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (!cond)
		failures++;
	printf("%s - ", cond ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void die(const char *what, struct rpc_context *rpc)
{
	printf("FAIL - setup: %s: %s\n", what, rpc ? rpc_get_error(rpc) : "");
	exit(2);
}

/* ---- one call at a time ------------------------------------------------- */

struct reply {
	int done;
	int rpc_status;           /* RPC_STATUS_* */
	char err[256];
	/* what the callers need, copied out of the callback's data */
	int stat;                 /* NLM, MOUNT or NFS status */
	char fh[128];             /* MOUNT / LOOKUP: a file handle */
	unsigned fhlen;
	int has_holder;
	nlm4_holder holder;
	char holder_oh[1100];
};

static void wait_reply(struct rpc_context *rpc, struct reply *r, const char *what)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!r->done) {
		struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
		int n = poll(&p, 1, 100);

		if (n < 0)
			die("poll", NULL);
		if (rpc_service(rpc, n > 0 ? p.revents : 0) < 0) {
			snprintf(r->err, sizeof(r->err), "%s", rpc_get_error(rpc));
			r->rpc_status = RPC_STATUS_ERROR;
			r->done = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > TIMEOUT_MS) {
			printf("FAIL - %s: no answer within %d ms\n", what, TIMEOUT_MS);
			exit(2);
		}
	}
}

static void common_cb(struct rpc_context *rpc, int status, void *data, struct reply *r)
{
	r->done = 1;
	r->rpc_status = status;
	if (status != RPC_STATUS_SUCCESS)
		snprintf(r->err, sizeof(r->err), "%s",
			 status == RPC_STATUS_ERROR && data ? (const char *)data : "cancelled");
}

static void connect_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	common_cb(rpc, status, data, priv);
}

static void mnt_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;
	mountres3 *res = data;

	common_cb(rpc, status, data, r);
	if (status != RPC_STATUS_SUCCESS)
		return;
	r->stat = res->fhs_status;
	if (res->fhs_status == MNT3_OK) {
		fhandle3 *fh = &res->mountres3_u.mountinfo.fhandle;
		r->fhlen = fh->fhandle3_len < sizeof(r->fh) ? fh->fhandle3_len : 0;
		memcpy(r->fh, fh->fhandle3_val, r->fhlen);
	}
}

static void lookup_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;
	LOOKUP3res *res = data;

	common_cb(rpc, status, data, r);
	if (status != RPC_STATUS_SUCCESS)
		return;
	r->stat = res->status;
	if (res->status == NFS3_OK) {
		nfs_fh3 *fh = &res->LOOKUP3res_u.resok.object;
		r->fhlen = fh->data.data_len < sizeof(r->fh) ? fh->data.data_len : 0;
		memcpy(r->fh, fh->data.data_val, r->fhlen);
	}
}

static void null_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	common_cb(rpc, status, data, priv);
}

/* LOCK, CANCEL and UNLOCK replies share one layout: cookie, status. */
static void lock_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;

	common_cb(rpc, status, data, r);
	if (status == RPC_STATUS_SUCCESS)
		r->stat = ((NLM4_LOCKres *)data)->status;
}

static void cancel_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;

	common_cb(rpc, status, data, r);
	if (status == RPC_STATUS_SUCCESS)
		r->stat = ((NLM4_CANCres *)data)->status;
}

static void unlock_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;

	common_cb(rpc, status, data, r);
	if (status == RPC_STATUS_SUCCESS)
		r->stat = ((NLM4_UNLOCKres *)data)->status;
}

static void test_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct reply *r = priv;
	NLM4_TESTres *res = data;

	common_cb(rpc, status, data, r);
	if (status != RPC_STATUS_SUCCESS)
		return;
	r->stat = res->reply.status;
	if (res->reply.status == NLM4_DENIED) {
		r->has_holder = 1;
		r->holder = res->reply.nlm4_testreply_u.lock.holder;
		snprintf(r->holder_oh, sizeof(r->holder_oh), "%s",
			 r->holder.oh ? r->holder.oh : "");
		r->holder.oh = r->holder_oh;
	}
}

/* ---- NLM requests ------------------------------------------------------- */

struct owner {
	char *caller;
	unsigned svid;
	char *oh;
};

static struct rpc_context *nlm;
static char file_fh[128];
static unsigned file_fhlen;
static char cookie_bytes[8] = "interop";

static void fill_lock(nlm4_lock *l, const struct owner *o, uint64_t off, uint64_t len)
{
	memset(l, 0, sizeof(*l));
	l->caller_name = o->caller;
	l->fh.data.data_len = file_fhlen;
	l->fh.data.data_val = file_fh;
	l->oh = o->oh;
	l->svid = o->svid;
	l->l_offset = off;
	l->l_len = len;
}

static void fill_cookie(nlm_cookie *c)
{
	c->data.data_len = sizeof(cookie_bytes);
	c->data.data_val = cookie_bytes;
}

static int nlm_lock(const struct owner *o, int excl, uint64_t off, uint64_t len)
{
	NLM4_LOCKargs a;
	struct reply r = { 0 };

	memset(&a, 0, sizeof(a));
	fill_cookie(&a.cookie);
	a.block = 0;
	a.exclusive = (uint32_t)excl;
	fill_lock(&a.lock, o, off, len);
	a.reclaim = 0;
	a.state = 1;
	if (rpc_nlm4_lock_async(nlm, lock_cb, &a, &r) != 0)
		die("rpc_nlm4_lock_async", nlm);
	wait_reply(nlm, &r, "LOCK");
	if (r.rpc_status != RPC_STATUS_SUCCESS) {
		printf("FAIL - LOCK: %s\n", r.err);
		return -1;
	}
	return r.stat;
}

static int nlm_test(const struct owner *o, int excl, uint64_t off, uint64_t len, struct reply *r)
{
	NLM4_TESTargs a;

	memset(r, 0, sizeof(*r));
	memset(&a, 0, sizeof(a));
	fill_cookie(&a.cookie);
	a.exclusive = (uint32_t)excl;
	fill_lock(&a.lock, o, off, len);
	if (rpc_nlm4_test_async(nlm, test_cb, &a, r) != 0)
		die("rpc_nlm4_test_async", nlm);
	wait_reply(nlm, r, "TEST");
	if (r->rpc_status != RPC_STATUS_SUCCESS) {
		printf("FAIL - TEST: %s\n", r->err);
		return -1;
	}
	return r->stat;
}

static int nlm_unlock(const struct owner *o, uint64_t off, uint64_t len)
{
	NLM4_UNLOCKargs a;
	struct reply r = { 0 };

	memset(&a, 0, sizeof(a));
	fill_cookie(&a.cookie);
	fill_lock(&a.lock, o, off, len);
	if (rpc_nlm4_unlock_async(nlm, unlock_cb, &a, &r) != 0)
		die("rpc_nlm4_unlock_async", nlm);
	wait_reply(nlm, &r, "UNLOCK");
	if (r.rpc_status != RPC_STATUS_SUCCESS) {
		printf("FAIL - UNLOCK: %s\n", r.err);
		return -1;
	}
	return r.stat;
}

static int nlm_cancel(const struct owner *o, int excl, uint64_t off, uint64_t len)
{
	NLM4_CANCargs a;
	struct reply r = { 0 };

	memset(&a, 0, sizeof(a));
	fill_cookie(&a.cookie);
	a.block = 1;
	a.exclusive = (uint32_t)excl;
	fill_lock(&a.lock, o, off, len);
	if (rpc_nlm4_cancel_async(nlm, cancel_cb, &a, &r) != 0)
		die("rpc_nlm4_cancel_async", nlm);
	wait_reply(nlm, &r, "CANCEL");
	if (r.rpc_status != RPC_STATUS_SUCCESS) {
		printf("FAIL - CANCEL: %s\n", r.err);
		return -1;
	}
	return r.stat;
}

static const char *st(int s)
{
	static const char *const names[] = {
		"GRANTED", "DENIED", "DENIED_NOLOCKS", "BLOCKED", "DENIED_GRACE_PERIOD",
		"DEADLCK", "ROFS", "STALE_FH", "FBIG", "FAILED",
	};
	return s >= 0 && s < 10 ? names[s] : "(rpc error)";
}

/* ---- setup ---------------------------------------------------------------- */

static struct rpc_context *connect_prog(const char *server, int prog, int vers, int port)
{
	struct rpc_context *rpc = rpc_init_context();
	struct reply r = { 0 };
	int rc;

	if (!rpc)
		die("rpc_init_context", NULL);
	if (port)
		rc = rpc_connect_port_async(rpc, server, port, prog, vers, connect_cb, &r);
	else
		rc = rpc_connect_program_async(rpc, server, prog, vers, connect_cb, &r);
	if (rc != 0)
		die("connect", rpc);
	wait_reply(rpc, &r, "connect");
	if (r.rpc_status != RPC_STATUS_SUCCESS) {
		printf("FAIL - setup: connect to program %d v%d on %s: %s\n", prog, vers, server,
		       r.err);
		exit(2);
	}
	return rpc;
}

int main(int argc, char **argv)
{
	const char *server, *export, *file;
	char caller[256], caller2[300];
	int nlm_port = 0;
	struct reply r;
	int s;

	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: %s SERVER EXPORT FILE [CALLER] [NLM_PORT]\n", argv[0]);
		return 64;
	}
	server = argv[1];
	export = argv[2];
	file = argv[3];
	snprintf(caller, sizeof(caller), "%s", argc > 4 ? argv[4] : "nlm-interop");
	snprintf(caller2, sizeof(caller2), "%s-2", caller);
	if (argc > 5)
		nlm_port = atoi(argv[5]);

	/* MOUNT v3: the export's root handle */
	struct rpc_context *mnt = connect_prog(server, MOUNT_PROGRAM, MOUNT_V3, 0);
	memset(&r, 0, sizeof(r));
	if (rpc_mount3_mnt_async(mnt, mnt_cb, (char *)export, &r) != 0)
		die("rpc_mount3_mnt_async", mnt);
	wait_reply(mnt, &r, "MNT");
	if (r.rpc_status != RPC_STATUS_SUCCESS || r.stat != MNT3_OK || r.fhlen == 0) {
		printf("FAIL - setup: MNT %s: %s status %d\n", export, r.err, r.stat);
		return 2;
	}
	char root[128];
	unsigned rootlen = r.fhlen;
	memcpy(root, r.fh, rootlen);
	rpc_destroy_context(mnt);

	/* NFSv3 LOOKUP: the file's handle */
	struct rpc_context *nfs = connect_prog(server, NFS_PROGRAM, NFS_V3, 0);
	LOOKUP3args la;
	memset(&la, 0, sizeof(la));
	la.what.dir.data.data_len = rootlen;
	la.what.dir.data.data_val = root;
	la.what.name = (char *)file;
	memset(&r, 0, sizeof(r));
	if (rpc_nfs3_lookup_async(nfs, lookup_cb, &la, &r) != 0)
		die("rpc_nfs3_lookup_async", nfs);
	wait_reply(nfs, &r, "LOOKUP");
	if (r.rpc_status != RPC_STATUS_SUCCESS || r.stat != NFS3_OK || r.fhlen == 0) {
		printf("FAIL - setup: LOOKUP %s: %s status %d\n", file, r.err, r.stat);
		return 2;
	}
	file_fhlen = r.fhlen;
	memcpy(file_fh, r.fh, file_fhlen);
	rpc_destroy_context(nfs);
	printf("# %s:%s/%s has a %u-byte handle\n", server, export, file, file_fhlen);

	/* NLM v4, through the portmapper unless a port was given */
	nlm = connect_prog(server, NLM_PROGRAM, NLM_V4, nlm_port);
	memset(&r, 0, sizeof(r));
	if (rpc_nlm4_null_async(nlm, null_cb, &r) != 0)
		die("rpc_nlm4_null_async", nlm);
	wait_reply(nlm, &r, "NULL");
	check(r.rpc_status == RPC_STATUS_SUCCESS, "NLM4 NULL answered (%s)", r.err);

	struct owner A = { caller, 101, "interop-owner-A" };
	struct owner B = { caller, 202, "interop-owner-B" };
	struct owner C = { caller2, 303, "interop-owner-C" };

	s = nlm_lock(&A, 1, 0, 100);
	check(s == NLM4_GRANTED, "LOCK A exclusive 0+100: %s", st(s));
	s = nlm_test(&B, 1, 50, 10, &r);
	check(s == NLM4_DENIED, "TEST B 50+10 conflicts: %s", st(s));
	check(r.has_holder && r.holder.svid == 101 && r.holder.exclusive &&
	      r.holder.l_offset == 0 && r.holder.l_len == 100 &&
	      strcmp(r.holder.oh ? r.holder.oh : "", "interop-owner-A") == 0,
	      "TEST holder is A: svid %u excl %u %" PRIu64 "+%" PRIu64 " oh \"%s\"",
	      r.holder.svid, r.holder.exclusive, r.holder.l_offset, r.holder.l_len,
	      r.holder.oh ? r.holder.oh : "");
	s = nlm_test(&A, 1, 0, 100, &r);
	check(s == NLM4_GRANTED, "TEST by A itself finds no conflict: %s", st(s));
	s = nlm_lock(&B, 1, 50, 10);
	check(s == NLM4_DENIED, "LOCK B 50+10 denied: %s", st(s));
	s = nlm_lock(&B, 0, 99, 1);
	check(s == NLM4_DENIED, "LOCK B shared on A's last byte denied: %s", st(s));
	s = nlm_lock(&B, 1, 100, 10);
	check(s == NLM4_GRANTED, "LOCK B 100+10 (touching A) granted: %s", st(s));
	s = nlm_lock(&C, 1, 105, 1);
	check(s == NLM4_DENIED, "LOCK by another host over B denied: %s", st(s));
	s = nlm_test(&C, 0, 0, 0, &r);
	check(s == NLM4_DENIED && r.has_holder && (r.holder.svid == 101 || r.holder.svid == 202),
	      "TEST by another host of the whole file finds a holder: %s svid %u", st(s),
	      r.holder.svid);
	s = nlm_lock(&C, 0, 200, 0);
	check(s == NLM4_GRANTED, "LOCK C shared 200..EOF granted: %s", st(s));
	s = nlm_lock(&A, 0, 300, 10);
	check(s == NLM4_GRANTED, "LOCK A shared inside C's shared range granted: %s", st(s));
	s = nlm_test(&B, 1, 1000, 1, &r);
	check(s == NLM4_DENIED && r.has_holder && !r.holder.exclusive && r.holder.l_len == 0 &&
	      r.holder.l_offset == 200 && r.holder.svid == 303,
	      "TEST exclusive beyond reports C's shared lock to EOF: %s svid %u %" PRIu64 "+%" PRIu64,
	      st(s), r.holder.svid, r.holder.l_offset, r.holder.l_len);
	s = nlm_lock(&B, 1, UINT64_MAX, 2);
	check(s == NLM4_FBIG, "LOCK 2^64-1 + 2 is FBIG: %s", st(s));
	s = nlm_test(&B, 1, UINT64_MAX - 5, 7, &r);
	check(s == NLM4_FBIG, "TEST past 2^64 is FBIG: %s", st(s));
	s = nlm_unlock(&B, UINT64_MAX, 2);
	check(s == NLM4_FBIG, "UNLOCK past 2^64 is FBIG: %s", st(s));
	s = nlm_cancel(&B, 1, 50, 10);
	check(s == NLM4_DENIED, "CANCEL with nothing queued is DENIED: %s", st(s));
	s = nlm_unlock(&A, 0, 100);
	check(s == NLM4_GRANTED, "UNLOCK A 0+100 granted: %s", st(s));
	s = nlm_test(&B, 1, 50, 10, &r);
	check(s == NLM4_GRANTED, "TEST B 50+10 free now: %s", st(s));
	s = nlm_lock(&B, 1, 50, 10);
	check(s == NLM4_GRANTED, "LOCK B 50+10 granted now: %s", st(s));
	s = nlm_unlock(&B, 0, 0);
	check(s == NLM4_GRANTED, "UNLOCK B whole file: %s", st(s));
	s = nlm_unlock(&A, 0, 0);
	check(s == NLM4_GRANTED, "UNLOCK A whole file: %s", st(s));
	s = nlm_unlock(&C, 0, 0);
	check(s == NLM4_GRANTED, "UNLOCK C whole file: %s", st(s));
	s = nlm_test(&B, 1, 0, 0, &r);
	check(s == NLM4_GRANTED, "TEST of the whole file: nothing left: %s", st(s));
	s = nlm_unlock(&B, 0, 0);
	check(s == NLM4_GRANTED, "UNLOCK of nothing held is still GRANTED: %s", st(s));

	rpc_destroy_context(nlm);
	printf("nlm_interop: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
