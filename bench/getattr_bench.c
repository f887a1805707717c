/*
 * getattr_bench.c - NFSv3 GETATTR throughput and latency against one export.
 *
 *   getattr_bench SERVER_IP EXPORT_PATH [--depth D] [--seconds T] [--conns N]
 *                 [--warmup W] [--timeout S]
 *
 * What it does, in order:
 *   1. MOUNT v3 MNT of EXPORT_PATH over TCP; the MOUNT port is found through
 *      the portmapper (PMAP2 GETPORT) on SERVER_IP:111, as a client would.
 *      The mount connection stays open and sends UMNT at the end.
 *   2. N NFSv3 TCP connections, their port also from the portmapper.
 *   3. On each connection, D GETATTR calls of the export's root handle are kept
 *      in flight (D is per connection): every reply immediately re-issues the
 *      call on the same slot.  W seconds of warm-up are not measured; then for
 *      T seconds every reply's latency (send to reply, measured here, so it
 *      includes the client's own queueing) is recorded.
 *   4. Prints one line on stdout:
 *        getattr_ops_per_sec=<n> p50_us=<n> p99_us=<n> client_cpu=<x>
 *      and a detail line (errors, samples, depth, conns) on stderr.
 *
 * With --lock NAME it measures NLM instead (a third-party client's view of
 * the lock path, libnfs's NLM v4): NAME is looked up in the export (NFSv3
 * LOOKUP), the N connections go to the NLM v4 port (portmapper), and each
 * of the D slots of a connection is its own lock owner (svid slot+1) on its
 * own byte (offset = slot) that sends LOCK (exclusive, non-blocking), then
 * UNLOCK as soon as LOCK is answered, then LOCK again, and so on.  Latency
 * is per RPC; a pair is one LOCK and its UNLOCK.  It prints one JSON line:
 *        {"pairs_per_s":..,"rpcs_per_s":..,"p50_us":..,"p99_us":..,
 *         "max_us":..,"denied":..,"errors":..,"client_cpu":..}
 * where denied counts LOCKs not granted (the slot then locks again) and
 * errors UNLOCKs not granted.  Exit status 1 if any LOCK was refused.
 * client_cpu is this process's CPU time (user + system) over the measured
 * window, in CPUs: near 1.0 the client itself bounds the figure (it is
 * single-threaded), whatever the server could do.
 *
 * Exit status: 0 on success; 1 if anything failed (connection, MOUNT, a
 * GETATTR that did not return NFS3_OK, or a call unanswered for S seconds);
 * 64 on bad usage.
 *
 * Uses libnfs's raw asynchronous RPC layer (libnfs 4.x: rpc_*_async; later
 * libnfs versions call the same entry points rpc_*_task) driven by our own
 * poll(2) loop over every connection.  Single-threaded: the client costs one
 * core at most, so on a small machine compare servers at the same settings
 * rather than reading the figures as the server's absolute capacity.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nlm.h>

#define GB_MAX_CONNS 256
#define GB_MAX_DEPTH 4096

enum gb_phase { GB_SETUP, GB_WARMUP, GB_MEASURE, GB_DRAIN, GB_DONE };

struct gb_conn;

/* One in-flight GETATTR: owned by its connection, reused for every call. */
struct gb_slot {
	struct gb_conn *conn;      /* back pointer, fixed */
	uint64_t sent_ns;          /* when the current call was queued */
	bool busy;                 /* a call is outstanding on this slot */
	/* --lock: this slot's owner and byte; locked: LOCK was granted,
	 * so UNLOCK goes next. */
	char oh[32];
	unsigned idx;
	bool locked;
};

/* One NFS connection with its pipeline of slots. */
struct gb_conn {
	struct gb_bench *b;        /* back pointer, fixed */
	struct rpc_context *rpc;   /* owned; destroyed in gb_teardown() */
	struct gb_slot *slots;     /* owned, b->depth entries */
	bool connected;            /* connect callback reported success */
	int inflight;              /* slots with busy set */
	uint64_t last_progress_ns; /* last reply or connect, for the stall timeout */
};

/* The whole run; all state lives here and in the connections. */
struct gb_bench {
	const char *server, *export_path;
	int depth, nconns;
	double seconds, warmup, timeout_s;

	enum gb_phase phase;
	uint64_t phase_end_ns;     /* end of warm-up or measurement */
	uint64_t measure_start_ns, measure_end_ns;
	/* This process's CPU time (user + system) at the two ends of the
	 * measured window: a client near one CPU per second of the window is
	 * what bounds the run, whatever the server does. */
	uint64_t cpu_start_ns, cpu_end_ns;
	bool failed;               /* a fatal error was reported */

	/* MOUNT connection and the root handle it returned (owned copy). */
	struct rpc_context *mnt;
	bool mnt_connected, mnt_done, umnt_done;
	char *fh;
	unsigned fh_len;
	GETATTR3args args;         /* points at fh; shared by every call */

	struct gb_conn conns[GB_MAX_CONNS];
	int nconnected;

	/* --lock NAME: the NFS connection for its LOOKUP, and its handle. */
	const char *lock_name;
	struct rpc_context *nfs;
	bool nfs_connected, lookup_done;
	char *lfh;
	unsigned lfh_len;
	uint64_t pairs;            /* UNLOCKs answered in the measured window */
	uint64_t denied;           /* LOCKs not granted */

	uint64_t *lat;             /* measured latencies (ns), owned */
	size_t nlat, cap;
	uint64_t errors;           /* replies that were not NFS3_OK */
};

/* User + system CPU time of this (single-threaded) process. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The client's CPU over the measured window, in CPUs (1.0: one busy CPU). */
static double gb_client_cpu(const struct gb_bench *b)
{
	uint64_t wall = b->measure_end_ns - b->measure_start_ns;

	return wall ? (double)(b->cpu_end_ns - b->cpu_start_ns) / (double)wall : 0.0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void gb_fail(struct gb_bench *b, const char *what, const char *detail)
{
	fprintf(stderr, "getattr_bench: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	b->failed = true;
}

static int gb_record(struct gb_bench *b, uint64_t ns)
{
	if (b->nlat == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1u << 16;
		uint64_t *n = realloc(b->lat, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->lat = n;
		b->cap = ncap;
	}
	b->lat[b->nlat++] = ns;
	return 0;
}

static void gb_getattr_cb(struct rpc_context *rpc, int status, void *data,
			  void *private_data);

static void gb_lock_cb(struct rpc_context *rpc, int status, void *data,
		       void *private_data);

/* Queue @s's next NLM call: LOCK, or UNLOCK once its LOCK was granted. */
static int gb_issue_lock(struct gb_slot *s)
{
	struct gb_conn *c = s->conn;
	struct gb_bench *b = c->b;
	nlm4_lock l = {
		/* a name every statd resolves (Ganesha monitors it) */
		.caller_name = "localhost",
		.fh = { .data = { .data_len = b->lfh_len, .data_val = b->lfh } },
		.oh = s->oh,
		.svid = s->idx + 1,
		.l_offset = s->idx,
		.l_len = 1,
	};
	int rc;

	s->sent_ns = now_ns();
	if (s->locked) {
		NLM4_UNLOCKargs a = { .lock = l };

		rc = rpc_nlm4_unlock_async(c->rpc, gb_lock_cb, &a, s);
	} else {
		NLM4_LOCKargs a = { .block = 0, .exclusive = 1, .lock = l, .state = 1 };

		rc = rpc_nlm4_lock_async(c->rpc, gb_lock_cb, &a, s);
	}
	if (rc != 0) {
		gb_fail(b, "cannot queue an NLM call", rpc_get_error(c->rpc));
		return -EIO;
	}
	s->busy = true;
	c->inflight++;
	return 0;
}

/* Queue one GETATTR on @s.  Returns 0 or -EIO (reported). */
static int gb_issue(struct gb_slot *s)
{
	struct gb_conn *c = s->conn;

	if (c->b->lock_name)
		return gb_issue_lock(s);
	s->sent_ns = now_ns();
	if (rpc_nfs3_getattr_async(c->rpc, gb_getattr_cb, &c->b->args, s) != 0) {
		gb_fail(c->b, "cannot queue GETATTR", rpc_get_error(c->rpc));
		return -EIO;
	}
	s->busy = true;
	c->inflight++;
	return 0;
}

static void gb_getattr_cb(struct rpc_context *rpc, int status, void *data,
			  void *private_data)
{
	struct gb_slot *s = private_data;
	struct gb_conn *c = s->conn;
	struct gb_bench *b = c->b;
	uint64_t t = now_ns();

	s->busy = false;
	c->inflight--;
	c->last_progress_ns = t;
	if (status != RPC_STATUS_SUCCESS) {
		if (status != RPC_STATUS_CANCEL)
			gb_fail(b, "GETATTR failed", status == RPC_STATUS_ERROR ? data : "timeout");
		return;
	}
	if (((GETATTR3res *)data)->status != NFS3_OK)
		b->errors++;
	/* A call counts if it completed inside the measured window. */
	if (b->phase == GB_MEASURE || (b->phase == GB_DRAIN && t <= b->measure_end_ns)) {
		if (s->sent_ns >= b->measure_start_ns && gb_record(b, t - s->sent_ns) < 0)
			gb_fail(b, "out of memory", NULL);
	}
	if ((b->phase == GB_WARMUP || b->phase == GB_MEASURE) && !b->failed)
		gb_issue(s);
}

/* Both NLM replies start with the cookie and the status. */
static void gb_lock_cb(struct rpc_context *rpc, int status, void *data,
		       void *private_data)
{
	struct gb_slot *s = private_data;
	struct gb_conn *c = s->conn;
	struct gb_bench *b = c->b;
	uint64_t t = now_ns();
	bool was_unlock = s->locked, counted;

	s->busy = false;
	c->inflight--;
	c->last_progress_ns = t;
	if (status != RPC_STATUS_SUCCESS) {
		if (status != RPC_STATUS_CANCEL)
			gb_fail(b, "NLM call failed", status == RPC_STATUS_ERROR ? data : "timeout");
		return;
	}
	counted = b->phase == GB_MEASURE || (b->phase == GB_DRAIN && t <= b->measure_end_ns);
	counted = counted && s->sent_ns >= b->measure_start_ns;
	if (was_unlock) {
		if (((NLM4_UNLOCKres *)data)->status != NLM4_GRANTED)
			b->errors++;
		s->locked = false;
		if (counted)
			b->pairs++;
	} else if (((NLM4_LOCKres *)data)->status == NLM4_GRANTED) {
		s->locked = true;
	} else {
		b->denied++;
	}
	if (counted && gb_record(b, t - s->sent_ns) < 0)
		gb_fail(b, "out of memory", NULL);
	/* A held lock is always released, even after the window. */
	if (((b->phase == GB_WARMUP || b->phase == GB_MEASURE) && !b->failed) || s->locked)
		gb_issue(s);
}

static void gb_lookup_cb(struct rpc_context *rpc, int status, void *data,
			 void *private_data)
{
	struct gb_bench *b = private_data;
	LOOKUP3res *res = data;

	b->lookup_done = true;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		gb_fail(b, "LOOKUP of the --lock file failed", NULL);
		return;
	}
	b->lfh_len = res->LOOKUP3res_u.resok.object.data.data_len;
	b->lfh = malloc(b->lfh_len ? b->lfh_len : 1);
	if (!b->lfh) {
		gb_fail(b, "out of memory", NULL);
		return;
	}
	memcpy(b->lfh, res->LOOKUP3res_u.resok.object.data.data_val, b->lfh_len);
}

static void gb_lookup_connect_cb(struct rpc_context *rpc, int status, void *data,
				 void *private_data)
{
	struct gb_bench *b = private_data;
	LOOKUP3args a;

	if (status != RPC_STATUS_SUCCESS) {
		gb_fail(b, "NFS connect failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	b->nfs_connected = true;
	memset(&a, 0, sizeof(a));
	a.what.dir = b->args.object;
	a.what.name = (char *)b->lock_name;
	if (rpc_nfs3_lookup_async(rpc, gb_lookup_cb, &a, b) != 0)
		gb_fail(b, "cannot queue LOOKUP", rpc_get_error(rpc));
}

static void gb_nfs_connect_cb(struct rpc_context *rpc, int status, void *data,
			      void *private_data)
{
	struct gb_conn *c = private_data;

	if (status != RPC_STATUS_SUCCESS) {
		gb_fail(c->b, "NFS connect failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	c->connected = true;
	c->last_progress_ns = now_ns();
	c->b->nconnected++;
}

static void gb_mnt_cb(struct rpc_context *rpc, int status, void *data,
		      void *private_data)
{
	struct gb_bench *b = private_data;
	mountres3 *res = data;

	b->mnt_done = true;
	if (status != RPC_STATUS_SUCCESS) {
		gb_fail(b, "MOUNT MNT failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	if (res->fhs_status != MNT3_OK) {
		char msg[64];

		snprintf(msg, sizeof(msg), "mountstat3 %d", (int)res->fhs_status);
		gb_fail(b, "MOUNT refused the export", msg);
		return;
	}
	b->fh_len = res->mountres3_u.mountinfo.fhandle.fhandle3_len;
	b->fh = malloc(b->fh_len ? b->fh_len : 1);
	if (!b->fh) {
		gb_fail(b, "out of memory", NULL);
		return;
	}
	memcpy(b->fh, res->mountres3_u.mountinfo.fhandle.fhandle3_val, b->fh_len);
	b->args.object.data.data_len = b->fh_len;
	b->args.object.data.data_val = b->fh;
}

static void gb_umnt_cb(struct rpc_context *rpc, int status, void *data,
		       void *private_data)
{
	((struct gb_bench *)private_data)->umnt_done = true;
}

static void gb_mnt_connect_cb(struct rpc_context *rpc, int status, void *data,
			      void *private_data)
{
	struct gb_bench *b = private_data;

	if (status != RPC_STATUS_SUCCESS) {
		gb_fail(b, "MOUNT connect failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	b->mnt_connected = true;
	if (rpc_mount3_mnt_async(rpc, gb_mnt_cb, (char *)b->export_path, b) != 0)
		gb_fail(b, "cannot queue MNT", rpc_get_error(rpc));
}

/*
 * Poll every live context once for up to @ms milliseconds and service it.
 * The fd of a context changes while it connects (portmapper, then the
 * program's port), so it is fetched again on every call.
 */
static void gb_poll_once(struct gb_bench *b, int ms)
{
	struct pollfd pfd[GB_MAX_CONNS + 2];
	struct rpc_context *ctx[GB_MAX_CONNS + 2];
	int n = 0;

	if (b->mnt) {
		ctx[n] = b->mnt;
		n++;
	}
	if (b->nfs)
		ctx[n++] = b->nfs;
	for (int i = 0; i < b->nconns; i++)
		if (b->conns[i].rpc)
			ctx[n++] = b->conns[i].rpc;
	for (int i = 0; i < n; i++) {
		pfd[i].fd = rpc_get_fd(ctx[i]);
		pfd[i].events = (short)rpc_which_events(ctx[i]);
		pfd[i].revents = 0;
	}
	if (poll(pfd, (nfds_t)n, ms) < 0) {
		if (errno != EINTR)
			gb_fail(b, "poll", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		/* revents 0 too: rpc_service() also expires timed-out calls. */
		if (rpc_service(ctx[i], pfd[i].revents) < 0) {
			if ((ctx[i] == b->mnt || ctx[i] == b->nfs) && b->phase >= GB_WARMUP)
				continue; /* server closed an idle MOUNT/LOOKUP connection */
			gb_fail(b, "connection failed", rpc_get_error(ctx[i]));
			return;
		}
	}
}

/* Run the poll loop until @done(b) or failure or @deadline_ns. */
static int gb_run_until(struct gb_bench *b, bool (*done)(struct gb_bench *),
			uint64_t deadline_ns, const char *what)
{
	while (!b->failed && !done(b)) {
		if (now_ns() > deadline_ns) {
			gb_fail(b, "timed out", what);
			break;
		}
		gb_poll_once(b, 20);
	}
	return b->failed ? -1 : 0;
}

static bool gb_mounted(struct gb_bench *b) { return b->mnt_done; }
static bool gb_all_connected(struct gb_bench *b) { return b->nconnected == b->nconns; }
static bool gb_umounted(struct gb_bench *b) { return b->umnt_done; }
static bool gb_looked_up(struct gb_bench *b) { return b->lookup_done; }

static bool gb_drained(struct gb_bench *b)
{
	for (int i = 0; i < b->nconns; i++)
		if (b->conns[i].inflight)
			return false;
	return true;
}

/* The load phase: warm-up then measurement, with a stall check. */
static int gb_load(struct gb_bench *b)
{
	uint64_t timeout_ns = (uint64_t)(b->timeout_s * 1e9);

	b->phase = GB_WARMUP;
	b->phase_end_ns = now_ns() + (uint64_t)(b->warmup * 1e9);
	for (int i = 0; i < b->nconns && !b->failed; i++)
		for (int j = 0; j < b->depth && !b->failed; j++)
			gb_issue(&b->conns[i].slots[j]);
	while (!b->failed) {
		uint64_t t = now_ns();

		if (t >= b->phase_end_ns) {
			if (b->phase == GB_WARMUP) {
				b->phase = GB_MEASURE;
				b->measure_start_ns = t;
				b->cpu_start_ns = cpu_ns();
				b->phase_end_ns = t + (uint64_t)(b->seconds * 1e9);
			} else {
				b->phase = GB_DRAIN;
				b->measure_end_ns = t;
				b->cpu_end_ns = cpu_ns();
				break;
			}
		}
		for (int i = 0; i < b->nconns; i++) {
			struct gb_conn *c = &b->conns[i];

			if (c->inflight && t - c->last_progress_ns > timeout_ns) {
				gb_fail(b, "server stopped answering", NULL);
				return -1;
			}
		}
		gb_poll_once(b, 10);
	}
	if (b->failed)
		return -1;
	return gb_run_until(b, gb_drained, now_ns() + timeout_ns, "draining GETATTR replies");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in microseconds. */
static uint64_t pct_us(const uint64_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (v[rank - 1] + 500) / 1000;
}

static void gb_teardown(struct gb_bench *b)
{
	for (int i = 0; i < b->nconns; i++) {
		if (b->conns[i].rpc)
			rpc_destroy_context(b->conns[i].rpc);
		b->conns[i].rpc = NULL;
		free(b->conns[i].slots);
		b->conns[i].slots = NULL;
	}
	if (b->mnt)
		rpc_destroy_context(b->mnt);
	b->mnt = NULL;
	if (b->nfs)
		rpc_destroy_context(b->nfs);
	b->nfs = NULL;
	free(b->lfh);
	free(b->fh);
	free(b->lat);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: getattr_bench SERVER_IP EXPORT_PATH [--depth D] [--seconds T] [--conns N]\n"
		"                     [--warmup W] [--timeout S] [--lock NAME]\n"
		"  --depth D    GETATTR calls in flight per connection (default 32, max %d)\n"
		"  --seconds T  measured seconds (default 5)\n"
		"  --conns N    NFS TCP connections (default 1, max %d)\n"
		"  --warmup W   unmeasured seconds before that (default 0.5)\n"
		"  --timeout S  fail if a call or a setup step takes longer (default 10)\n"
		"  --lock NAME  NLM v4 LOCK+UNLOCK pairs on file NAME of the export instead\n",
		GB_MAX_DEPTH, GB_MAX_CONNS);
}

static int parse_args(struct gb_bench *b, int argc, char **argv)
{
	int pos = 0;

	b->depth = 32;
	b->nconns = 1;
	b->seconds = 5;
	b->warmup = 0.5;
	b->timeout_s = 10;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;
		double v;

		if (a[0] != '-' || a[1] != '-') {
			if (pos == 0)
				b->server = a;
			else if (pos == 1)
				b->export_path = a;
			else
				return -1;
			pos++;
			continue;
		}
		if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc)
			return -1;
		if (!strcmp(a, "--lock")) {
			b->lock_name = argv[++i];
			continue;
		}
		v = strtod(argv[++i], &end);
		if (*end || v != v)
			return -1;
		if (!strcmp(a, "--depth") && v >= 1 && v <= GB_MAX_DEPTH && v == (int)v)
			b->depth = (int)v;
		else if (!strcmp(a, "--conns") && v >= 1 && v <= GB_MAX_CONNS && v == (int)v)
			b->nconns = (int)v;
		else if (!strcmp(a, "--seconds") && v > 0 && v <= 86400)
			b->seconds = v;
		else if (!strcmp(a, "--warmup") && v >= 0 && v <= 3600)
			b->warmup = v;
		else if (!strcmp(a, "--timeout") && v > 0 && v <= 3600)
			b->timeout_s = v;
		else
			return -1;
	}
	return pos == 2 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static struct gb_bench bench;
	struct gb_bench *b = &bench;
	uint64_t setup_ns;
	int rc = 1;

	if (parse_args(b, argc, argv) < 0) {
		usage(stderr);
		return 64;
	}
	setup_ns = (uint64_t)(b->timeout_s * 1e9);

	/* 1. MOUNT */
	b->mnt = rpc_init_context();
	if (!b->mnt) {
		gb_fail(b, "rpc_init_context failed", NULL);
		goto out;
	}
	if (rpc_connect_program_async(b->mnt, b->server, MOUNT_PROGRAM, MOUNT_V3,
				      gb_mnt_connect_cb, b) != 0) {
		gb_fail(b, "cannot start MOUNT connection", rpc_get_error(b->mnt));
		goto out;
	}
	if (gb_run_until(b, gb_mounted, now_ns() + setup_ns, "MOUNT") < 0)
		goto out;

	/* 1b. --lock: the file's handle */
	if (b->lock_name) {
		b->nfs = rpc_init_context();
		if (!b->nfs || rpc_connect_program_async(b->nfs, b->server, NFS_PROGRAM, NFS_V3,
							 gb_lookup_connect_cb, b) != 0) {
			gb_fail(b, "cannot start the NFS connection for LOOKUP",
				b->nfs ? rpc_get_error(b->nfs) : NULL);
			goto out;
		}
		if (gb_run_until(b, gb_looked_up, now_ns() + setup_ns, "LOOKUP") < 0)
			goto out;
	}

	/* 2. NFS (or NLM) connections; distinct XID ranges so no two calls
	 * share one. */
	for (int i = 0; i < b->nconns; i++) {
		struct gb_conn *c = &b->conns[i];

		c->b = b;
		c->slots = calloc((size_t)b->depth, sizeof(*c->slots));
		c->rpc = rpc_init_context();
		if (!c->slots || !c->rpc) {
			gb_fail(b, "out of memory", NULL);
			goto out;
		}
		for (int j = 0; j < b->depth; j++) {
			c->slots[j].conn = c;
			c->slots[j].idx = (unsigned)(i * b->depth + j);
			snprintf(c->slots[j].oh, sizeof(c->slots[j].oh), "gb-%d-%u", (int)getpid(),
				 c->slots[j].idx);
		}
		rpc_set_next_xid(c->rpc, ((uint32_t)i << 24) ^ (uint32_t)getpid());
		if (rpc_connect_program_async(c->rpc, b->server,
					      b->lock_name ? NLM_PROGRAM : NFS_PROGRAM,
					      b->lock_name ? NLM_V4 : NFS_V3,
					      gb_nfs_connect_cb, c) != 0) {
			gb_fail(b, "cannot start NFS connection", rpc_get_error(c->rpc));
			goto out;
		}
	}
	if (gb_run_until(b, gb_all_connected, now_ns() + setup_ns, "NFS connect") < 0)
		goto out;

	/* 3. load */
	if (gb_load(b) < 0)
		goto out;

	/* 4. UMNT, best effort: the server may have closed the idle connection. */
	if (rpc_mount3_umnt_async(b->mnt, gb_umnt_cb, (char *)b->export_path, b) == 0) {
		b->failed = false;
		gb_run_until(b, gb_umounted, now_ns() + 2000000000u, "UMNT");
		b->failed = false;
	}

	if (b->lock_name) {
		double secs = (double)(b->measure_end_ns - b->measure_start_ns) / 1e9;

		qsort(b->lat, b->nlat, sizeof(*b->lat), cmp_u64);
		printf("{\"pairs_per_s\": %.1f, \"rpcs_per_s\": %.1f, \"p50_us\": %llu, "
		       "\"p99_us\": %llu, \"max_us\": %llu, \"denied\": %llu, \"errors\": %llu, "
		       "\"conns\": %d, \"depth\": %d, \"seconds\": %.2f, \"client\": \"libnfs\", "
		       "\"client_cpu\": %.3f}\n",
		       secs > 0 ? (double)b->pairs / secs : 0.0,
		       secs > 0 ? (double)b->nlat / secs : 0.0,
		       (unsigned long long)pct_us(b->lat, b->nlat, 50),
		       (unsigned long long)pct_us(b->lat, b->nlat, 99),
		       (unsigned long long)pct_us(b->lat, b->nlat, 100),
		       (unsigned long long)b->denied, (unsigned long long)b->errors,
		       b->nconns, b->depth, secs, gb_client_cpu(b));
		rc = (b->errors || b->denied || b->pairs == 0) ? 1 : 0;
		goto out;
	}
	{
		double secs = (double)(b->measure_end_ns - b->measure_start_ns) / 1e9;

		qsort(b->lat, b->nlat, sizeof(*b->lat), cmp_u64);
		printf("getattr_ops_per_sec=%.0f p50_us=%llu p99_us=%llu client_cpu=%.3f\n",
		       secs > 0 ? (double)b->nlat / secs : 0.0,
		       (unsigned long long)pct_us(b->lat, b->nlat, 50),
		       (unsigned long long)pct_us(b->lat, b->nlat, 99), gb_client_cpu(b));
		fprintf(stderr, "getattr_bench: server=%s export=%s conns=%d depth=%d "
			"seconds=%.2f samples=%zu errors=%llu p999_us=%llu max_us=%llu\n",
			b->server, b->export_path, b->nconns, b->depth, secs, b->nlat,
			(unsigned long long)b->errors,
			(unsigned long long)pct_us(b->lat, b->nlat, 99.9),
			(unsigned long long)pct_us(b->lat, b->nlat, 100));
	}
	rc = (b->errors || b->nlat == 0) ? 1 : 0;
out:
	gb_teardown(b);
	return rc;
}
