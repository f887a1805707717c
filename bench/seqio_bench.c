/*
 * seqio_bench.c - a sequential file copy the way a kernel NFSv3 client
 * does it: many READs / WRITEs in flight on one TCP connection, writes
 * UNSTABLE and made durable by one COMMIT at the end.
 *
 *   seqio_bench SERVER_IP EXPORT_PATH NAME [--mb N] [--bs KIB] [--depth D]
 *               [--timeout S] [--seed X] [--passes P]
 *
 * Why: libnfs's nfs-cp keeps one synchronous call outstanding, so a copy
 * through it measures the client's round trip, not the server.  Linux keeps
 * up to its slot table of READs (readahead) and WRITEs (write-behind) in
 * flight, sends the WRITEs UNSTABLE and COMMITs on close.  This does that.
 *
 * What it does, in order:
 *   1. MOUNT v3 MNT of EXPORT_PATH (port from the portmapper); one NFSv3
 *      TCP connection, FSINFO of the root: the block is min(--bs, wtmax)
 *      for WRITE and min(--bs, rtmax) for READ.
 *   2. CREATE NAME (UNCHECKED, size 0: an existing file is truncated).
 *   3. Write: N MiB in blocks, D WRITEs (stable UNSTABLE) in flight; every
 *      reply must carry the same write verifier; a short write sends the
 *      rest again.  Then one COMMIT of the whole file, whose verifier must
 *      equal the writes' (else the server restarted and the data may be
 *      lost: reported as a failure, since a bench does not resend).  The
 *      write time runs from the first WRITE to the COMMIT's reply.
 *   4. Read: the same blocks, D READs in flight; every byte read is
 *      compared with what was written (the data is a function of the seed
 *      and the offset, regenerated for the check), and the file must end
 *      exactly at N MiB.
 *   5. Prints one JSON line on stdout:
 *        {"write_MBps":..,"read_MBps":..,"write_s":..,"commit_s":..,
 *         "read_s":..,"bytes":..,"wbs":..,"rbs":..,"depth":..,
 *         "committed":"unstable|data_sync|file_sync","verified":true,
 *         "checksum":"0x.."}
 *      (MB = 10^6 bytes; checksum: order-independent over every 8-byte word
 *      read, the same for every server given the same seed and size).
 *
 * Exit status: 0 on success; 1 if anything failed (a call refused or
 * unanswered for S seconds, a verifier change, a byte that differs); 64 on
 * bad usage.
 *
 * Uses libnfs's raw asynchronous RPC layer (libnfs 4.x rpc_*_async) driven
 * by our own poll(2) loop; single-threaded, so the client costs one core
 * at most and shares the machine with the server: compare servers at the
 * same settings rather than reading a figure as a server's capacity.
 */
#include <errno.h>
#include <inttypes.h>
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

#define SQ_MAX_DEPTH 256
#define SQ_MAX_BS (16u << 20)

struct sq_bench;

/* One call in flight: owned by the bench, reused for every block. */
struct sq_slot {
	struct sq_bench *b;        /* back pointer, fixed */
	char *buf;                 /* b->bs bytes (owned): a WRITE's data */
	uint64_t off;              /* the block's offset in the file */
	uint32_t len;              /* bytes of the current call */
	bool busy;
};

/* The whole run. */
struct sq_bench {
	const char *server, *export_path, *name;
	uint64_t size;             /* bytes to copy */
	uint32_t bs;               /* requested block size */
	uint32_t wbs, rbs;         /* after FSINFO */
	int depth;
	int passes;                /* times the file is read back */
	double timeout_s;
	uint64_t seed;

	struct rpc_context *mnt, *nfs;
	bool step_done, failed;

	nfs_fh3 root, file;        /* data owned (malloc) */

	uint64_t next_off;         /* next block to issue */
	uint64_t done_bytes;       /* bytes acknowledged (write) / checked (read) */
	int inflight;
	uint64_t last_progress_ns;

	bool have_verf;
	char verf[NFS3_WRITEVERFSIZE];
	stable_how committed;      /* the weakest the server answered */
	uint64_t bad_words;        /* read words that differ from the pattern */
	uint64_t checksum;         /* sum of mixed words read */

	struct sq_slot slots[SQ_MAX_DEPTH];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sq_fail(struct sq_bench *b, const char *what, const char *detail)
{
	fprintf(stderr, "seqio_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	b->failed = true;
}

/* The splitmix64 finaliser: a cheap, well-mixed function of one word. */
static uint64_t sq_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/*
 * The file's content: 8-byte word i (at offset 8i) of every 4 KiB page p
 * is key(p) * (i + 1) with key(p) odd and mixed from the seed and p, so
 * every page differs and a page written at the wrong offset is caught,
 * at one multiply per word.  Offsets are multiples of 8 (blocks are).
 */
static uint64_t sq_page_key(const struct sq_bench *b, uint64_t page)
{
	return sq_mix(b->seed ^ (page * 0x9e3779b97f4a7c15u)) | 1;
}

static void sq_fill(const struct sq_bench *b, char *p, uint64_t off, uint32_t len)
{
	uint64_t w = off / 8, end = (off + len) / 8;

	while (w < end) {
		uint64_t key = sq_page_key(b, w / 512), stop = (w / 512 + 1) * 512;

		if (stop > end)
			stop = end;
		for (; w < stop; w++) {
			uint64_t v = key * (w % 512 + 1);

			memcpy(p, &v, 8);
			p += 8;
		}
	}
}

/* Compare @len bytes read at @off with the pattern; returns words that differ. */
static uint64_t sq_check(struct sq_bench *b, const char *p, uint64_t off, uint32_t len)
{
	uint64_t w = off / 8, end = (off + len) / 8, bad = 0, sum = 0;

	while (w < end) {
		uint64_t key = sq_page_key(b, w / 512), stop = (w / 512 + 1) * 512;

		if (stop > end)
			stop = end;
		for (; w < stop; w++) {
			uint64_t v;

			memcpy(&v, p, 8);
			p += 8;
			bad += v != key * (w % 512 + 1);
			sum += v ^ (w * 0x9e3779b97f4a7c15u);
		}
	}
	b->checksum += sum;
	return bad;
}

/* ---- setup steps ---------------------------------------------------- */

static int sq_copy_fh(struct sq_bench *b, nfs_fh3 *dst, const char *val, unsigned len)
{
	dst->data.data_val = malloc(len ? len : 1);
	if (!dst->data.data_val) {
		sq_fail(b, "out of memory", NULL);
		return -ENOMEM;
	}
	memcpy(dst->data.data_val, val, len);
	dst->data.data_len = len;
	return 0;
}

static void sq_connect_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS)
		sq_fail(b, "connect failed", status == RPC_STATUS_ERROR ? data : NULL);
}

static void sq_mnt_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;
	mountres3 *res = data;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS) {
		sq_fail(b, "MOUNT MNT failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	if (res->fhs_status != MNT3_OK) {
		sq_fail(b, "MOUNT refused the export", NULL);
		return;
	}
	sq_copy_fh(b, &b->root, res->mountres3_u.mountinfo.fhandle.fhandle3_val,
		   res->mountres3_u.mountinfo.fhandle.fhandle3_len);
}

static void sq_fsinfo_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;
	FSINFO3res *res = data;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		sq_fail(b, "FSINFO failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	b->wbs = b->bs;
	b->rbs = b->bs;
	/* Blocks stay multiples of 4 KiB so they tile the pattern's pages. */
	if (res->FSINFO3res_u.resok.wtmax && res->FSINFO3res_u.resok.wtmax < b->wbs)
		b->wbs = res->FSINFO3res_u.resok.wtmax & ~4095u;
	if (res->FSINFO3res_u.resok.rtmax && res->FSINFO3res_u.resok.rtmax < b->rbs)
		b->rbs = res->FSINFO3res_u.resok.rtmax & ~4095u;
	if (b->wbs == 0 || b->rbs == 0)
		sq_fail(b, "FSINFO: wtmax or rtmax below 4096", NULL);
}

static void sq_create_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;
	CREATE3res *res = data;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		char msg[32];

		snprintf(msg, sizeof(msg), "nfsstat3 %d",
			 status == RPC_STATUS_SUCCESS ? (int)res->status : -1);
		sq_fail(b, "CREATE failed", msg);
		return;
	}
	if (!res->CREATE3res_u.resok.obj.handle_follows) {
		sq_fail(b, "CREATE returned no file handle", NULL);
		return;
	}
	sq_copy_fh(b, &b->file, res->CREATE3res_u.resok.obj.post_op_fh3_u.handle.data.data_val,
		   res->CREATE3res_u.resok.obj.post_op_fh3_u.handle.data.data_len);
}

/* Poll the live contexts once for up to @ms milliseconds and service them. */
static void sq_poll_once(struct sq_bench *b, int ms)
{
	struct pollfd pfd[2];
	struct rpc_context *ctx[2];
	int n = 0;

	if (b->mnt)
		ctx[n++] = b->mnt;
	if (b->nfs)
		ctx[n++] = b->nfs;
	for (int i = 0; i < n; i++) {
		pfd[i].fd = rpc_get_fd(ctx[i]);
		pfd[i].events = (short)rpc_which_events(ctx[i]);
		pfd[i].revents = 0;
	}
	if (poll(pfd, (nfds_t)n, ms) < 0) {
		if (errno != EINTR)
			sq_fail(b, "poll", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (rpc_service(ctx[i], pfd[i].revents) < 0) {
			if (ctx[i] == b->mnt && b->root.data.data_val)
				continue; /* the server closed the idle MOUNT connection */
			sq_fail(b, "connection failed", rpc_get_error(ctx[i]));
			return;
		}
	}
}

/* Run the loop until the current step's callback ran, or failure/timeout. */
static int sq_step(struct sq_bench *b, const char *what)
{
	uint64_t deadline = now_ns() + (uint64_t)(b->timeout_s * 1e9);

	while (!b->failed && !b->step_done) {
		if (now_ns() > deadline) {
			sq_fail(b, "timed out", what);
			break;
		}
		sq_poll_once(b, 20);
	}
	b->step_done = false;
	return b->failed ? -1 : 0;
}

/* ---- the copy ------------------------------------------------------- */

static void sq_write_cb(struct rpc_context *rpc, int status, void *data, void *priv);
static void sq_read_cb(struct rpc_context *rpc, int status, void *data, void *priv);

static int sq_send_write(struct sq_slot *s)
{
	struct sq_bench *b = s->b;
	WRITE3args a = {
		.file = b->file,
		.offset = s->off,
		.count = s->len,
		.stable = UNSTABLE,
		.data = { .data_len = s->len, .data_val = s->buf },
	};

	if (rpc_nfs3_write_async(b->nfs, sq_write_cb, &a, s) != 0) {
		sq_fail(b, "cannot queue WRITE", rpc_get_error(b->nfs));
		return -EIO;
	}
	s->busy = true;
	b->inflight++;
	return 0;
}

static int sq_send_read(struct sq_slot *s)
{
	struct sq_bench *b = s->b;
	READ3args a = { .file = b->file, .offset = s->off, .count = s->len };

	if (rpc_nfs3_read_async(b->nfs, sq_read_cb, &a, s) != 0) {
		sq_fail(b, "cannot queue READ", rpc_get_error(b->nfs));
		return -EIO;
	}
	s->busy = true;
	b->inflight++;
	return 0;
}

/* Give @s the next block, if any is left; @writing fills its data. */
static void sq_next(struct sq_slot *s, bool writing)
{
	struct sq_bench *b = s->b;
	uint32_t bs = writing ? b->wbs : b->rbs;

	if (b->failed || b->next_off >= b->size)
		return;
	s->off = b->next_off;
	s->len = b->size - s->off < bs ? (uint32_t)(b->size - s->off) : bs;
	b->next_off += s->len;
	if (writing) {
		sq_fill(b, s->buf, s->off, s->len);
		sq_send_write(s);
	} else {
		sq_send_read(s);
	}
}

/* Common to both callbacks: the slot is free again. */
static bool sq_reply(struct sq_slot *s, int status, void *data, const char *what)
{
	struct sq_bench *b = s->b;

	s->busy = false;
	b->inflight--;
	b->last_progress_ns = now_ns();
	if (status != RPC_STATUS_SUCCESS) {
		if (status != RPC_STATUS_CANCEL)
			sq_fail(b, what, status == RPC_STATUS_ERROR ? data : "timeout");
		return false;
	}
	return !b->failed;
}

static void sq_write_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_slot *s = priv;
	struct sq_bench *b = s->b;
	WRITE3res *res = data;
	WRITE3resok *ok;

	(void)rpc;
	if (!sq_reply(s, status, data, "WRITE failed"))
		return;
	if (res->status != NFS3_OK) {
		char msg[32];

		snprintf(msg, sizeof(msg), "nfsstat3 %d at %" PRIu64, (int)res->status, s->off);
		sq_fail(b, "WRITE refused", msg);
		return;
	}
	ok = &res->WRITE3res_u.resok;
	if (!b->have_verf) {
		memcpy(b->verf, ok->verf, sizeof(b->verf));
		b->have_verf = true;
	} else if (memcmp(b->verf, ok->verf, sizeof(b->verf))) {
		sq_fail(b, "the write verifier changed (server restart?)", NULL);
		return;
	}
	if (ok->committed < b->committed)
		b->committed = ok->committed;
	if (ok->count == 0 || ok->count > s->len) {
		sq_fail(b, "WRITE answered a count of 0 or more than was sent", NULL);
		return;
	}
	b->done_bytes += ok->count;
	if (ok->count < s->len) {
		/* A short write: send the rest from where it stopped. */
		memmove(s->buf, s->buf + ok->count, s->len - ok->count);
		s->off += ok->count;
		s->len -= ok->count;
		sq_send_write(s);
		return;
	}
	sq_next(s, true);
}

static void sq_read_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_slot *s = priv;
	struct sq_bench *b = s->b;
	READ3res *res = data;
	READ3resok *ok;

	(void)rpc;
	if (!sq_reply(s, status, data, "READ failed"))
		return;
	if (res->status != NFS3_OK) {
		char msg[32];

		snprintf(msg, sizeof(msg), "nfsstat3 %d at %" PRIu64, (int)res->status, s->off);
		sq_fail(b, "READ refused", msg);
		return;
	}
	ok = &res->READ3res_u.resok;
	if (ok->count != ok->data.data_len || ok->count > s->len || ok->count % 8) {
		sq_fail(b, "READ answered a bad count", NULL);
		return;
	}
	if (ok->count == 0) {
		sq_fail(b, "READ: the file ends early", NULL);
		return;
	}
	b->bad_words += sq_check(b, ok->data.data_val, s->off, ok->count);
	b->done_bytes += ok->count;
	if (ok->count < s->len) {
		s->off += ok->count;
		s->len -= ok->count;
		sq_send_read(s);
		return;
	}
	sq_next(s, false);
}

static void sq_commit_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;
	COMMIT3res *res = data;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		sq_fail(b, "COMMIT failed", status == RPC_STATUS_ERROR ? data : NULL);
		return;
	}
	if (b->have_verf && memcmp(b->verf, res->COMMIT3res_u.resok.verf, sizeof(b->verf)))
		sq_fail(b, "the COMMIT's verifier differs from the writes' (server restart?)", NULL);
}

/* A READ at the size written must find the end of the file. */
static void sq_eof_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct sq_bench *b = priv;
	READ3res *res = data;

	(void)rpc;
	b->step_done = true;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK)
		sq_fail(b, "READ at the end failed", status == RPC_STATUS_ERROR ? data : NULL);
	else if (res->READ3res_u.resok.count != 0 || !res->READ3res_u.resok.eof)
		sq_fail(b, "the file is longer than what was written", NULL);
}

/* One direction of the copy: keep depth calls in flight until all is done. */
static int sq_pipe(struct sq_bench *b, bool writing)
{
	uint64_t timeout_ns = (uint64_t)(b->timeout_s * 1e9);

	b->next_off = 0;
	b->done_bytes = 0;
	b->last_progress_ns = now_ns();
	for (int i = 0; i < b->depth; i++)
		sq_next(&b->slots[i], writing);
	while (!b->failed && (b->inflight || b->done_bytes < b->size)) {
		if (b->inflight == 0) {
			sq_fail(b, "nothing in flight before the end", NULL);
			break;
		}
		if (now_ns() - b->last_progress_ns > timeout_ns) {
			sq_fail(b, "server stopped answering", writing ? "WRITE" : "READ");
			break;
		}
		sq_poll_once(b, 100);
	}
	return b->failed ? -1 : 0;
}

/* ---- main ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: seqio_bench SERVER_IP EXPORT_PATH NAME [--mb N] [--bs KIB] [--depth D]\n"
		"                   [--timeout S] [--seed X] [--passes P]\n"
		"  --mb N       MiB to write then read back (default 1024)\n"
		"  --bs KIB     block per call, KiB, a multiple of 4 (default 1024; capped by\n"
		"               FSINFO wtmax/rtmax)\n"
		"  --depth D    calls in flight (default 16, max %d)\n"
		"  --timeout S  fail if a step or a call takes longer (default 60)\n"
		"  --seed X     data pattern seed (default 1)\n"
		"  --passes P   read the file back P times (default 1; read_MBps covers all)\n",
		SQ_MAX_DEPTH);
}

static int parse_args(struct sq_bench *b, int argc, char **argv)
{
	int pos = 0;

	b->size = 1024ull << 20;
	b->bs = 1u << 20;
	b->depth = 16;
	b->timeout_s = 60;
	b->seed = 1;
	b->passes = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;
		double v;

		if (a[0] != '-' || a[1] != '-') {
			if (pos == 0)
				b->server = a;
			else if (pos == 1)
				b->export_path = a;
			else if (pos == 2)
				b->name = a;
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
		v = strtod(argv[++i], &end);
		if (*end || v != v)
			return -1;
		if (!strcmp(a, "--mb") && v >= 1 && v <= 1048576 && v == (int)v)
			b->size = (uint64_t)v << 20;
		else if (!strcmp(a, "--bs") && v >= 4 && v * 1024 <= SQ_MAX_BS && v == (int)v &&
			 (int)v % 4 == 0)
			b->bs = (uint32_t)v * 1024;
		else if (!strcmp(a, "--depth") && v >= 1 && v <= SQ_MAX_DEPTH && v == (int)v)
			b->depth = (int)v;
		else if (!strcmp(a, "--passes") && v >= 1 && v <= 1000 && v == (int)v)
			b->passes = (int)v;
		else if (!strcmp(a, "--timeout") && v > 0 && v <= 3600)
			b->timeout_s = v;
		else if (!strcmp(a, "--seed") && v >= 0 && v <= 1e15 && v == (double)(uint64_t)v)
			b->seed = (uint64_t)v;
		else
			return -1;
	}
	return pos == 3 ? 0 : -1;
}

static const char *sq_stable_name(stable_how h)
{
	switch (h) {
	case UNSTABLE:
		return "unstable";
	case DATA_SYNC:
		return "data_sync";
	case FILE_SYNC:
		return "file_sync";
	}
	return "?";
}

int main(int argc, char **argv)
{
	static struct sq_bench bench;
	struct sq_bench *b = &bench;
	uint64_t t0, t1, t2, t3;
	int rc = 1;

	if (parse_args(b, argc, argv) < 0 || strchr(b->name, '/')) {
		usage(stderr);
		return 64;
	}
	b->committed = FILE_SYNC;

	/* 1. MOUNT, then the NFS connection and FSINFO */
	b->mnt = rpc_init_context();
	b->nfs = rpc_init_context();
	if (!b->mnt || !b->nfs) {
		sq_fail(b, "rpc_init_context failed", NULL);
		goto out;
	}
	if (rpc_connect_program_async(b->mnt, b->server, MOUNT_PROGRAM, MOUNT_V3, sq_connect_cb,
				      b) != 0) {
		sq_fail(b, "cannot start the MOUNT connection", rpc_get_error(b->mnt));
		goto out;
	}
	if (sq_step(b, "MOUNT connect") < 0)
		goto out;
	if (rpc_mount3_mnt_async(b->mnt, sq_mnt_cb, (char *)b->export_path, b) != 0) {
		sq_fail(b, "cannot queue MNT", rpc_get_error(b->mnt));
		goto out;
	}
	if (sq_step(b, "MNT") < 0)
		goto out;
	if (rpc_connect_program_async(b->nfs, b->server, NFS_PROGRAM, NFS_V3, sq_connect_cb,
				      b) != 0) {
		sq_fail(b, "cannot start the NFS connection", rpc_get_error(b->nfs));
		goto out;
	}
	if (sq_step(b, "NFS connect") < 0)
		goto out;
	{
		FSINFO3args a = { .fsroot = b->root };

		if (rpc_nfs3_fsinfo_async(b->nfs, sq_fsinfo_cb, &a, b) != 0) {
			sq_fail(b, "cannot queue FSINFO", rpc_get_error(b->nfs));
			goto out;
		}
		if (sq_step(b, "FSINFO") < 0)
			goto out;
	}

	/* 2. CREATE (truncating) */
	{
		CREATE3args a;

		memset(&a, 0, sizeof(a));
		a.where.dir = b->root;
		a.where.name = (char *)b->name;
		a.how.mode = UNCHECKED;
		a.how.createhow3_u.obj_attributes.mode.set_it = 1;
		a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
		a.how.createhow3_u.obj_attributes.size.set_it = 1;
		a.how.createhow3_u.obj_attributes.size.set_size3_u.size = 0;
		if (rpc_nfs3_create_async(b->nfs, sq_create_cb, &a, b) != 0) {
			sq_fail(b, "cannot queue CREATE", rpc_get_error(b->nfs));
			goto out;
		}
		if (sq_step(b, "CREATE") < 0)
			goto out;
	}
	for (int i = 0; i < b->depth; i++) {
		b->slots[i].b = b;
		b->slots[i].buf = malloc(b->wbs);
		if (!b->slots[i].buf) {
			sq_fail(b, "out of memory", NULL);
			goto out;
		}
	}

	/* 3. write, COMMIT */
	t0 = now_ns();
	if (sq_pipe(b, true) < 0)
		goto out;
	t1 = now_ns();
	{
		COMMIT3args a = { .file = b->file, .offset = 0, .count = 0 };

		if (rpc_nfs3_commit_async(b->nfs, sq_commit_cb, &a, b) != 0) {
			sq_fail(b, "cannot queue COMMIT", rpc_get_error(b->nfs));
			goto out;
		}
		if (sq_step(b, "COMMIT") < 0)
			goto out;
	}
	t2 = now_ns();

	/* 4. read back and compare */
	for (int i = 0; i < b->passes; i++)
		if (sq_pipe(b, false) < 0)
			goto out;
	t3 = now_ns();
	{
		/* the file must end where the writes did */
		READ3args a = { .file = b->file, .offset = b->size, .count = 8 };

		if (rpc_nfs3_read_async(b->nfs, sq_eof_cb, &a, b) != 0) {
			sq_fail(b, "cannot queue READ", rpc_get_error(b->nfs));
			goto out;
		}
		if (sq_step(b, "READ at the end") < 0)
			goto out;
	}
	if (b->bad_words) {
		char msg[48];

		snprintf(msg, sizeof(msg), "%" PRIu64 " words differ", b->bad_words);
		sq_fail(b, "the data read back is not what was written", msg);
		goto out;
	}
	printf("{\"write_MBps\": %.1f, \"read_MBps\": %.1f, \"write_s\": %.3f, \"commit_s\": %.3f, "
	       "\"read_s\": %.3f, \"bytes\": %" PRIu64 ", \"wbs\": %u, \"rbs\": %u, \"depth\": %d, "
	       "\"committed\": \"%s\", \"verified\": true, \"checksum\": \"0x%016" PRIx64 "\"}\n",
	       (double)b->size / ((double)(t2 - t0) / 1e9) / 1e6,
	       (double)b->size * b->passes / ((double)(t3 - t2) / 1e9) / 1e6,
	       (double)(t2 - t0) / 1e9, (double)(t2 - t1) / 1e9, (double)(t3 - t2) / 1e9,
	       b->size, b->wbs, b->rbs, b->depth, sq_stable_name(b->committed), b->checksum);
	rc = 0;
out:
	if (b->nfs)
		rpc_destroy_context(b->nfs);
	if (b->mnt)
		rpc_destroy_context(b->mnt);
	for (int i = 0; i < SQ_MAX_DEPTH; i++)
		free(b->slots[i].buf);
	free(b->root.data.data_val);
	free(b->file.data.data_val);
	return rc;
}
