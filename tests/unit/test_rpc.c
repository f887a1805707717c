/*
 * test_rpc.c - the RPC transport and dispatcher against raw sockets.
 *
 * The server runs on its own libuv loop in a second thread; the test thread
 * speaks bytes to it over TCP and UDP on 127.0.77.1 and checks every reply
 * RFC 5531 defines for a failure, record marking (fragments, zero-length
 * fragments, oversized marks, bytes arriving one at a time) and that a
 * connection that misbehaves never disturbs another.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <cmocka.h>

#include "rpc/rpc.h"
#include "rpc/rpc_int.h" /* rpcs_test_ncpus */
#include "fault_alloc.h"

#define TPROG 0x20000099u
#define TPORT 40111

/*
 * The server's address: 127.64.0.0/10 plus our pid, so that two runs of
 * this test at once (plain and ASan builds, two worktrees) never share an
 * address and port.  The timeouts below only stop a broken server from
 * hanging the test; they are long so that a loaded machine is not a failure.
 */
#define REPLY_WAIT_S 60

static struct sockaddr_in test_addr(void)
{
	uint32_t pid = (uint32_t)getpid() & 0x3fffffu;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(TPORT) };

	sin.sin_addr.s_addr = htonl(0x7f400000u | pid);
	return sin;
}
#define MAXREC 8192

/* ---- the server under test ------------------------------------------- */

static enum rpc_disposition t_null(struct rpc_req *r) { return RPC_DONE_REPLY; }
static enum rpc_disposition t_echo(struct rpc_req *r)
{
	*(u_int *)r->res = *(u_int *)r->args + 1;
	return RPC_DONE_REPLY;
}
static enum rpc_disposition t_syserr(struct rpc_req *r) { return RPC_DONE_SYSERR; }
static enum rpc_disposition t_uid(struct rpc_req *r)
{
	*(u_int *)r->res = r->cred.uid;
	return RPC_DONE_REPLY;
}

/* HOLD: on the listener of context "group A" (lsn_a) the call waits on
 * the pool until the test releases it; elsewhere it is ECHO.  Counts how
 * many of A's run at once. */
static int ctx_a, ctx_b;
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static unsigned hold_running, hold_max, hold_low, hold_low_running, hold_low_max;
static bool hold_release;
/* Until hold_release, each token lets one held call go. */
static unsigned hold_tokens;
/* The arguments of A's HOLD calls in the order they started on the pool. */
static u_int hold_order[32];
static unsigned hold_norder;

static enum rpc_disposition t_hold(struct rpc_req *r)
{
	if (r->svc_ctx == &ctx_a) {
		char name[16] = "";
		bool low;

		/* "sgnfs-low": a low pool thread (rpc_pool.c) runs it */
		(void)pthread_getname_np(pthread_self(), name, sizeof(name));
		low = strcmp(name, "sgnfs-low") == 0;
		pthread_mutex_lock(&hold_mu);
		if (hold_norder < sizeof(hold_order) / sizeof(hold_order[0]))
			hold_order[hold_norder++] = *(u_int *)r->args;
		if (++hold_running > hold_max)
			hold_max = hold_running;
		hold_low += low;
		if (low && ++hold_low_running > hold_low_max)
			hold_low_max = hold_low_running;
		pthread_cond_broadcast(&hold_cv);
		while (!hold_release && hold_tokens == 0)
			pthread_cond_wait(&hold_cv, &hold_mu);
		if (!hold_release)
			hold_tokens--;
		hold_running--;
		hold_low_running -= low;
		pthread_mutex_unlock(&hold_mu);
	}
	return t_echo(r);
}

/* BLOB n: results { u_int st; opaque data<> } with n bytes of a pattern,
 * sent on TCP from the handler's buffer (xdr_res_head, res_tail). */
struct tblob {
	u_int st;
	struct { u_int len; char *val; } data;
};

static uint8_t blob_byte(uint32_t n, uint32_t i)
{
	return (uint8_t)(i * 7u + n);
}

static bool_t xdr_tblob(XDR *x, struct tblob *b)
{
	return xdr_u_int(x, &b->st) && xdr_bytes(x, &b->data.val, &b->data.len, ~0u);
}

static bool_t xdr_tblob_head(XDR *x, struct tblob *b)
{
	return xdr_u_int(x, &b->st) && xdr_u_int(x, &b->data.len);
}

static void *t_blob_tail(void *res, uint32_t *len)
{
	struct tblob *b = res;
	void *p = b->data.val;

	if (!p)
		return NULL;
	*len = b->data.len;
	b->data.val = NULL;
	b->data.len = 0;
	return p;
}

static enum rpc_disposition t_blob(struct rpc_req *r)
{
	struct tblob *b = r->res;
	uint32_t n = *(u_int *)r->args;

	b->st = 7;
	if (n == 0)
		return RPC_DONE_REPLY; /* no buffer: the head is the reply */
	b->data.val = malloc(n);
	if (!b->data.val)
		return RPC_DONE_SYSERR;
	for (uint32_t i = 0; i < n; i++)
		b->data.val[i] = (char)blob_byte(n, i);
	b->data.len = n;
	return RPC_DONE_REPLY;
}

/* PBLOB n: BLOB with its buffer from an allocator of its own (rpc_proc
 * .tail_free): a header before the bytes, so free(3) of the pointer
 * handed out would be an invalid free (abort; ASan: bad-free).  Counts
 * buffers handed out and released. */
#define PB_MAGIC 0x5042u
static pthread_mutex_t pb_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned pb_got, pb_put;

static void pb_release(void *p)
{
	uint32_t *h;

	if (!p)
		return;
	h = (uint32_t *)p - 4;
	assert_int_equal(h[0], PB_MAGIC); /* released once, and one of ours */
	h[0] = 0;
	free(h);
	pthread_mutex_lock(&pb_mu);
	pb_put++;
	pthread_mutex_unlock(&pb_mu);
}

static enum rpc_disposition t_pblob(struct rpc_req *r)
{
	struct tblob *b = r->res;
	uint32_t n = *(u_int *)r->args;
	uint32_t *h;

	b->st = 7;
	h = malloc(16 + (n ? n : 1));
	if (!h)
		return RPC_DONE_SYSERR;
	h[0] = PB_MAGIC;
	b->data.val = (char *)(h + 4);
	for (uint32_t i = 0; i < n; i++)
		b->data.val[i] = (char)blob_byte(n, i);
	b->data.len = n;
	pthread_mutex_lock(&pb_mu);
	pb_got++;
	pthread_mutex_unlock(&pb_mu);
	return RPC_DONE_REPLY;
}

/* CRED: what of the credential reached the handler. */
struct tcred_res {
	u_int ngids, last_gid, namelen, name0;
};

static bool_t xdr_tcred_res(XDR *x, struct tcred_res *r)
{
	return xdr_u_int(x, &r->ngids) && xdr_u_int(x, &r->last_gid) &&
	       xdr_u_int(x, &r->namelen) && xdr_u_int(x, &r->name0);
}

static enum rpc_disposition t_cred(struct rpc_req *r)
{
	struct tcred_res *c = r->res;

	c->ngids = r->cred.ngids;
	c->last_gid = r->cred.ngids ? r->cred.gids[r->cred.ngids - 1] : 0;
	c->namelen = (u_int)strlen(r->cred.machinename);
	c->name0 = (u_char)r->cred.machinename[0];
	return RPC_DONE_REPLY;
}

/* ROOMY: arguments decoded into the request's room (rpc_proc.args_room):
 * an opaque<64> and a string<32>, echoed from the room by the results. */
#define ROOMY_OPAQUE 64u
#define ROOMY_STRING 32u
struct troomy_args {
	struct { u_int len; char *val; } a;
	char *s;
};
struct troomy_res {
	u_int in_room;
	struct { u_int len; char *val; } a;
	char *s;
};

static bool_t xdr_troomy_args(XDR *x, struct troomy_args *p)
{
	return xdr_bytes(x, &p->a.val, &p->a.len, ROOMY_OPAQUE) &&
	       xdr_string(x, &p->s, ROOMY_STRING);
}

static bool_t xdr_troomy_res(XDR *x, struct troomy_res *p)
{
	return xdr_u_int(x, &p->in_room) && xdr_bytes(x, &p->a.val, &p->a.len, ROOMY_OPAQUE) &&
	       xdr_string(x, &p->s, ROOMY_STRING);
}

static void t_roomy_prep(void *args, uint8_t *room)
{
	struct troomy_args *p = args;

	p->a.val = (char *)room;
	p->s = (char *)room + ROOMY_OPAQUE;
}

static void t_roomy_unprep(struct rpc_req *r)
{
	struct troomy_args *p = r->args;
	struct troomy_res *q = r->res;

	if (rpc_req_in_room(r, p->a.val))
		p->a.val = NULL;
	if (rpc_req_in_room(r, p->s))
		p->s = NULL;
	if (rpc_req_in_room(r, q->a.val))
		q->a.val = NULL;
	if (rpc_req_in_room(r, q->s))
		q->s = NULL;
}

static enum rpc_disposition t_roomy(struct rpc_req *r)
{
	struct troomy_args *p = r->args;
	struct troomy_res *q = r->res;

	q->in_room = rpc_req_in_room(r, p->a.val) && rpc_req_in_room(r, p->s) &&
		     rpc_req_in_room(r, p->s + ROOMY_STRING) &&
		     !rpc_req_in_room(r, p->s + ROOMY_STRING + 1);
	q->a.len = p->a.len; /* the results point at the arguments' bytes */
	q->a.val = p->a.val;
	q->s = p->s;
	return RPC_DONE_REPLY;
}

/* ROOMC: ROOMY's arguments in a room far larger than they need, cut to
 * what they use once decoded (rpc_proc.args_room_used, args_move): the
 * opaque 8-aligned, then the string.  Its result says whether the room
 * ends right after the string's NUL (so the block was cut) with both
 * fields inside it. */
#define ROOMC_ROOM 4000u

static void t_roomc_prep(void *args, uint8_t *room)
{
	struct troomy_args *p = args;

	p->a.val = (char *)room;
	p->s = (char *)room + ROOMC_ROOM - ROOMY_STRING - 1;
}

static size_t t_roomc_used(const void *args)
{
	const struct troomy_args *p = args;

	return ((p->a.len + 7u) & ~7u) + strlen(p->s) + 1;
}

static void t_roomc_move(void *to, const void *from, uint8_t *room)
{
	const struct troomy_args *f = from;
	struct troomy_args *t = to;

	*t = *f;
	t->a.val = memcpy(room, f->a.val, f->a.len);
	t->s = memcpy(room + ((f->a.len + 7u) & ~7u), f->s, strlen(f->s) + 1);
}

static enum rpc_disposition t_roomc(struct rpc_req *r)
{
	struct troomy_args *p = r->args;
	struct troomy_res *q = r->res;
	size_t slen = strlen(p->s);

	q->in_room = rpc_req_in_room(r, p->a.val) && rpc_req_in_room(r, p->s) &&
		     rpc_req_in_room(r, p->s + slen) && !rpc_req_in_room(r, p->s + slen + 1);
	q->a.len = p->a.len;
	q->a.val = p->a.val;
	q->s = p->s;
	return RPC_DONE_REPLY;
}

/* SET2 sets both results; NOSET sets none (its reply shows what a
 * request's results hold before the handler writes them). */
struct tpair { u_int x, y; };

static bool_t xdr_tpair(XDR *x, struct tpair *p)
{
	return xdr_u_int(x, &p->x) && xdr_u_int(x, &p->y);
}

static enum rpc_disposition t_set2(struct rpc_req *r)
{
	struct tpair *p = r->res;

	p->x = 7;
	p->y = 9;
	return RPC_DONE_REPLY;
}

static const struct rpc_proc t_v1_procs[] = {
	[0] = { .name = "NULL", .fn = t_null, .xdr_args = (xdrproc_t)rpc_xdr_void,
		.xdr_res = (xdrproc_t)rpc_xdr_void },
	[1] = { .name = "ECHO", .fn = t_echo, .xdr_args = (xdrproc_t)xdr_u_int,
		.args_size = sizeof(u_int), .xdr_res = (xdrproc_t)xdr_u_int,
		.res_size = sizeof(u_int) },
	[2] = { .name = "SYSERR", .fn = t_syserr, .xdr_args = (xdrproc_t)rpc_xdr_void,
		.xdr_res = (xdrproc_t)rpc_xdr_void },
	[3] = { .name = "BECHO", .fn = t_echo, .blocking = true,
		.xdr_args = (xdrproc_t)xdr_u_int, .args_size = sizeof(u_int),
		.xdr_res = (xdrproc_t)xdr_u_int, .res_size = sizeof(u_int) },
	/* [4] deliberately missing: PROC_UNAVAIL */
	[5] = { .name = "UID", .fn = t_uid, .xdr_args = (xdrproc_t)rpc_xdr_void,
		.xdr_res = (xdrproc_t)xdr_u_int, .res_size = sizeof(u_int) },
	[6] = { .name = "HOLD", .fn = t_hold, .blocking = true,
		.xdr_args = (xdrproc_t)xdr_u_int, .args_size = sizeof(u_int),
		.xdr_res = (xdrproc_t)xdr_u_int, .res_size = sizeof(u_int) },
	[7] = { .name = "BLOB", .fn = t_blob, .blocking = true,
		.xdr_args = (xdrproc_t)xdr_u_int, .args_size = sizeof(u_int),
		.xdr_res = (xdrproc_t)xdr_tblob, .res_size = sizeof(struct tblob),
		.xdr_res_head = (xdrproc_t)xdr_tblob_head, .res_tail = t_blob_tail },
	[8] = { .name = "PBLOB", .fn = t_pblob, .blocking = true,
		.xdr_args = (xdrproc_t)xdr_u_int, .args_size = sizeof(u_int),
		.xdr_res = (xdrproc_t)xdr_tblob, .res_size = sizeof(struct tblob),
		.xdr_res_head = (xdrproc_t)xdr_tblob_head, .res_tail = t_blob_tail,
		.tail_free = pb_release },
	[9] = { .name = "CRED", .fn = t_cred, .xdr_args = (xdrproc_t)rpc_xdr_void,
		.xdr_res = (xdrproc_t)xdr_tcred_res, .res_size = sizeof(struct tcred_res) },
	[10] = { .name = "ROOMY", .fn = t_roomy, .xdr_args = (xdrproc_t)xdr_troomy_args,
		 .args_size = sizeof(struct troomy_args), .xdr_res = (xdrproc_t)xdr_troomy_res,
		 .res_size = sizeof(struct troomy_res), .args_room = ROOMY_OPAQUE + ROOMY_STRING + 1,
		 .args_prep = t_roomy_prep, .args_unprep = t_roomy_unprep },
	[11] = { .name = "SET2", .fn = t_set2, .xdr_args = (xdrproc_t)rpc_xdr_void,
		 .xdr_res = (xdrproc_t)xdr_tpair, .res_size = sizeof(struct tpair) },
	[12] = { .name = "NOSET", .fn = t_null, .xdr_args = (xdrproc_t)rpc_xdr_void,
		 .xdr_res = (xdrproc_t)xdr_tpair, .res_size = sizeof(struct tpair) },
	[13] = { .name = "ROOMC", .fn = t_roomc, .xdr_args = (xdrproc_t)xdr_troomy_args,
		 .args_size = sizeof(struct troomy_args), .xdr_res = (xdrproc_t)xdr_troomy_res,
		 .res_size = sizeof(struct troomy_res), .args_room = ROOMC_ROOM,
		 .args_prep = t_roomc_prep, .args_unprep = t_roomy_unprep,
		 .args_room_used = t_roomc_used, .args_move = t_roomc_move },
};
#define T_NPROCS (sizeof(t_v1_procs) / sizeof(t_v1_procs[0]))
static const struct rpc_vers t_v1 = { 1, T_NPROCS, t_v1_procs };
static const struct rpc_vers t_v3 = { 3, T_NPROCS, t_v1_procs };
static const struct rpc_vers *const t_versions[] = { &t_v1, NULL, &t_v3 };
static const struct rpc_prog t_prog = { "test", TPROG, 1, 3, t_versions };

static uv_loop_t loop;
static uv_async_t stop_async;
static struct rpc_svc *svc;
static struct rpc_listener *lsn;
static struct rpc_listener *lsn_a;     /* context &ctx_a, port TPORT + 1 */
static struct rpc_listener *lsn_b;     /* context &ctx_b, port TPORT + 2 */
static pthread_t loop_thread;

static void on_stop(uv_async_t *a)
{
	rpc_listener_close(lsn);
	rpc_listener_close(lsn_a);
	rpc_listener_close(lsn_b);
	uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

/* The server with @lim; group A's listener takes TCP too if @a_tcp. */
static int server_up_lim(const struct rpc_limits *lim, bool a_tcp)
{
	struct sockaddr_in sin = test_addr();

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rpc_svc_new(&loop, lim, &svc), 0);
	assert_int_equal(rpc_svc_register(svc, &t_prog), 0);
	assert_int_equal(rpc_listen(svc, (struct sockaddr *)&sin,
				    RPC_LISTEN_TCP | RPC_LISTEN_UDP, NULL, &lsn), 0);
	sin.sin_port = htons(TPORT + 1);
	assert_int_equal(rpc_listen(svc, (struct sockaddr *)&sin,
				    RPC_LISTEN_UDP | (a_tcp ? RPC_LISTEN_TCP : 0), &ctx_a, &lsn_a), 0);
	sin.sin_port = htons(TPORT + 2);
	assert_int_equal(rpc_listen(svc, (struct sockaddr *)&sin, RPC_LISTEN_UDP, &ctx_b,
				    &lsn_b), 0);
	uv_async_init(&loop, &stop_async, on_stop);
	pthread_create(&loop_thread, NULL, loop_main, NULL);
	return 0;
}

static int server_up(void **st)
{
	struct rpc_limits lim = { .max_record = MAXREC, .max_conns = 8, .idle_timeout_ms = 0 };

	return server_up_lim(&lim, false);
}

/* The byte budget's server: one address may hold BUDGET_HOST bytes in
 * calls in flight, the node BUDGET_NODE (a HOLD call counts ~2.1 KiB: its
 * record and its 2 KiB block). */
#define BUDGET_HOST (16u << 10)
#define BUDGET_NODE (40u << 10)

static int server_up_budget(void **st)
{
	struct rpc_limits lim = { .max_record = MAXREC, .max_conns = 16, .idle_timeout_ms = 0,
				  .max_held_bytes_per_host = BUDGET_HOST,
				  .max_held_bytes = BUDGET_NODE };

	return server_up_lim(&lim, true);
}

static int server_down(void **st)
{
	uv_async_send(&stop_async);
	pthread_join(loop_thread, NULL);
	/* The service closes its pool channel's handle (rpc.h): the loop
	 * runs that close, then has no handle left. */
	rpc_svc_free(svc);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0); /* every handle closed */
	return 0;
}

/* ---- building calls ---------------------------------------------------- */

struct msg { uint8_t b[2048]; size_t n; };

static void w32(struct msg *m, uint32_t v)
{
	v = htonl(v);
	memcpy(m->b + m->n, &v, 4);
	m->n += 4;
}

static void wbytes(struct msg *m, const void *p, size_t len)
{
	memcpy(m->b + m->n, p, len);
	m->n += len;
	while (m->n % 4)
		m->b[m->n++] = 0;
}

enum { CRED_NONE, CRED_SYS, CRED_SYS_17GIDS, CRED_SYS_LONGNAME, CRED_BADFLAVOR,
       CRED_BADVERF, CRED_SYS_TRAILING, CRED_SYS_MAX };

static void call_hdr(struct msg *m, uint32_t xid, uint32_t rpcvers, uint32_t prog,
		     uint32_t vers, uint32_t proc, int cred)
{
	m->n = 0;
	w32(m, xid);
	w32(m, 0); /* CALL */
	w32(m, rpcvers);
	w32(m, prog);
	w32(m, vers);
	w32(m, proc);
	if (cred == CRED_NONE || cred == CRED_BADVERF) {
		w32(m, 0);
		w32(m, 0);
	} else if (cred == CRED_BADFLAVOR) {
		w32(m, 99);
		w32(m, 0);
	} else {
		struct msg body = { .n = 0 };
		char name[300];
		uint32_t ngids = cred == CRED_SYS_17GIDS ? 17 : cred == CRED_SYS_MAX ? 16 : 2;
		size_t nlen = cred == CRED_SYS_LONGNAME ? 256 : cred == CRED_SYS_MAX ? 255 : 4;

		memset(name, 'h', sizeof(name));
		w32(&body, 1);          /* stamp */
		w32(&body, (uint32_t)nlen);
		wbytes(&body, name, nlen);
		w32(&body, 4242);       /* uid */
		w32(&body, 42);         /* gid */
		w32(&body, ngids);
		for (uint32_t i = 0; i < ngids; i++)
			w32(&body, 100 + i);
		if (cred == CRED_SYS_TRAILING)
			w32(&body, 0);
		w32(m, 1);
		w32(m, (uint32_t)body.n);
		wbytes(m, body.b, body.n);
	}
	w32(m, cred == CRED_BADVERF ? 1 : 0); /* verifier */
	w32(m, 0);
}

/* ---- transports -------------------------------------------------------- */

static int tcp_connect(void)
{
	struct sockaddr_in sin = test_addr();
	struct timeval tv = { .tv_sec = REPLY_WAIT_S };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 50; i++) {
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return fd;
		usleep(20000);
	}
	fail_msg("cannot connect: %s", strerror(errno));
	return -1;
}

/* A TCP connection from source address 127.1.0.@host to port @port of the
 * server. */
static int tcp_connect_from(uint8_t host, uint16_t port)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct sockaddr_in sin = test_addr();
	struct timeval tv = { .tv_sec = REPLY_WAIT_S };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	src.sin_addr.s_addr = htonl(0x7f010000u | host);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sin.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void tcp_send_record(int fd, const struct msg *m)
{
	uint32_t mark = htonl(0x80000000u | (uint32_t)m->n);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_int_equal(write(fd, m->b, m->n), (ssize_t)m->n);
}

static bool readn(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* Reads one reply record into @out (as 32-bit host-order words). */
static size_t tcp_recv_reply(int fd, uint32_t *out, size_t maxw)
{
	uint32_t mark;
	uint8_t buf[4096];
	size_t len;

	assert_true(readn(fd, &mark, 4));
	mark = ntohl(mark);
	assert_true(mark & 0x80000000u);
	len = mark & 0x7fffffffu;
	assert_true(len <= sizeof(buf) && len % 4 == 0);
	assert_true(readn(fd, buf, len));
	for (size_t i = 0; i < len / 4 && i < maxw; i++) {
		memcpy(&out[i], buf + 4 * i, 4);
		out[i] = ntohl(out[i]);
	}
	return len / 4;
}

static bool tcp_is_closed(int fd)
{
	uint8_t c;
	return read(fd, &c, 1) == 0;
}

/*
 * Send each of @bad (which must get no reply) and then @m on one UDP socket;
 * the first reply read is @m's if the server dropped every @bad one: order,
 * not a timeout, shows that nothing was answered.
 */
static size_t udp_call_after(const struct msg *bad, size_t nbad, const struct msg *m,
			     uint32_t *out, size_t maxw)
{
	struct sockaddr_in sin = test_addr();
	struct timeval tv = { .tv_sec = REPLY_WAIT_S };
	uint8_t buf[4096];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	ssize_t r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t i = 0; i < nbad; i++)
		sendto(fd, bad[i].b, bad[i].n, 0, (struct sockaddr *)&sin, sizeof(sin));
	sendto(fd, m->b, m->n, 0, (struct sockaddr *)&sin, sizeof(sin));
	r = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	if (r <= 0)
		return 0;
	for (size_t i = 0; i < (size_t)r / 4 && i < maxw; i++) {
		memcpy(&out[i], buf + 4 * i, 4);
		out[i] = ntohl(out[i]);
	}
	return (size_t)r / 4;
}

static size_t udp_call(const struct msg *m, uint32_t *out, size_t maxw)
{
	return udp_call_after(NULL, 0, m, out, maxw);
}

/* One ECHO call @xid to group B's listener, answered (on the loop: B is
 * active, with nothing on the pool). */
static void b_echo(uint32_t xid)
{
	struct sockaddr_in sb = test_addr();
	struct timeval tv = { .tv_sec = REPLY_WAIT_S };
	uint8_t buf[512];
	uint32_t w0;
	struct msg m;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sb.sin_port = htons(TPORT + 2);
	call_hdr(&m, xid, 2, TPROG, 1, 1, CRED_SYS);
	w32(&m, 1);
	assert_true(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&sb, sizeof(sb)) == (ssize_t)m.n);
	assert_true(recv(fd, buf, sizeof(buf), 0) >= 28);
	memcpy(&w0, buf, 4);
	assert_int_equal(ntohl(w0), xid);
	close(fd);
}

/* Send @m on a fresh TCP connection and on UDP; both replies into w[2][]. */
static void both(const struct msg *m, uint32_t w[2][64], size_t n[2])
{
	int fd = tcp_connect();
	tcp_send_record(fd, m);
	n[0] = tcp_recv_reply(fd, w[0], 64);
	close(fd);
	n[1] = udp_call(m, w[1], 64);
}

/* reply words: xid, 1 (REPLY), reply_stat, ... */
static void expect_accepted(uint32_t *w, size_t n, uint32_t xid, uint32_t astat)
{
	assert_true(n >= 6);
	assert_int_equal(w[0], xid);
	assert_int_equal(w[1], 1);
	assert_int_equal(w[2], 0);   /* MSG_ACCEPTED */
	assert_int_equal(w[3], 0);   /* verf AUTH_NONE */
	assert_int_equal(w[4], 0);   /* verf length */
	assert_int_equal(w[5], astat);
}

/* ---- tests ------------------------------------------------------------ */

static void test_echo_ok(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];

	call_hdr(&m, 0x1001, 2, TPROG, 1, 1, CRED_SYS);
	w32(&m, 41);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1001, 0);
		assert_int_equal(w[t][6], 42);
	}
	call_hdr(&m, 0x1002, 2, TPROG, 3, 3, CRED_NONE); /* blocking, v3 */
	w32(&m, 99);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1002, 0);
		assert_int_equal(w[t][6], 100);
	}
	call_hdr(&m, 0x1003, 2, TPROG, 1, 5, CRED_SYS); /* credentials reach the handler */
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1003, 0);
		assert_int_equal(w[t][6], 4242);
	}
}

static void test_rpc_mismatch(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];

	call_hdr(&m, 0x2001, 3, TPROG, 1, 0, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(n[t], 6);
		assert_int_equal(w[t][2], 1);  /* MSG_DENIED */
		assert_int_equal(w[t][3], 0);  /* RPC_MISMATCH */
		assert_int_equal(w[t][4], 2);
		assert_int_equal(w[t][5], 2);
	}
}

static void expect_auth_error(int cred, uint32_t why)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];

	call_hdr(&m, 0x3000 + (uint32_t)cred, 2, TPROG, 1, 0, cred);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(n[t], 5);
		assert_int_equal(w[t][0], 0x3000 + (uint32_t)cred);
		assert_int_equal(w[t][2], 1);  /* MSG_DENIED */
		assert_int_equal(w[t][3], 1);  /* AUTH_ERROR */
		assert_int_equal(w[t][4], why);
	}
}

static void test_auth_errors(void **st)
{
	expect_auth_error(CRED_SYS_17GIDS, 1);   /* AUTH_BADCRED */
	expect_auth_error(CRED_SYS_LONGNAME, 1);
	expect_auth_error(CRED_SYS_TRAILING, 1);
	expect_auth_error(CRED_BADFLAVOR, 1);
	expect_auth_error(CRED_BADVERF, 3);      /* AUTH_BADVERF */
}

static void test_prog_vers_proc(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];

	call_hdr(&m, 0x4001, 2, TPROG + 1, 1, 0, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x4001, 1); /* PROG_UNAVAIL */

	for (uint32_t v = 2; v <= 5; v += 3) { /* a gap and beyond the range */
		call_hdr(&m, 0x4002, 2, TPROG, v, 0, CRED_NONE);
		both(&m, w, n);
		for (int t = 0; t < 2; t++) {
			expect_accepted(w[t], n[t], 0x4002, 2); /* PROG_MISMATCH */
			assert_int_equal(w[t][6], 1);
			assert_int_equal(w[t][7], 3);
		}
	}
	call_hdr(&m, 0x4003, 2, TPROG, 1, 4, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x4003, 3); /* PROC_UNAVAIL */
	call_hdr(&m, 0x4004, 2, TPROG, 1, 0x7fffffff, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x4004, 3);

	call_hdr(&m, 0x4005, 2, TPROG, 1, 1, CRED_NONE); /* ECHO without its argument */
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x4005, 4); /* GARBAGE_ARGS */

	call_hdr(&m, 0x4006, 2, TPROG, 1, 2, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x4006, 5); /* SYSTEM_ERR */
}

static void test_tcp_fragments(void **st)
{
	struct msg m;
	uint32_t w[64];
	int fd = tcp_connect();
	uint32_t mark;

	call_hdr(&m, 0x5001, 2, TPROG, 1, 1, CRED_SYS);
	w32(&m, 7);
	/* three fragments: 10 bytes, 0 bytes, the rest (last) */
	mark = htonl(10);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_int_equal(write(fd, m.b, 10), 10);
	mark = htonl(0);
	assert_int_equal(write(fd, &mark, 4), 4);
	mark = htonl(0x80000000u | (uint32_t)(m.n - 10));
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_int_equal(write(fd, m.b + 10, m.n - 10), (ssize_t)(m.n - 10));
	expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x5001, 0);
	assert_int_equal(w[6], 8);

	/* the same record one byte at a time, mark included */
	mark = htonl(0x80000000u | (uint32_t)m.n);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(write(fd, (uint8_t *)&mark + i, 1), 1);
		usleep(1000);
	}
	for (size_t i = 0; i < m.n; i++)
		assert_int_equal(write(fd, m.b + i, 1), 1);
	expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x5001, 0);

	/* two records in one write: pipelining */
	uint8_t two[2 * 2048];
	size_t o = 0;
	for (int k = 0; k < 2; k++) {
		memcpy(two + o, &mark, 4);
		memcpy(two + o + 4, m.b, m.n);
		o += 4 + m.n;
	}
	assert_int_equal(write(fd, two, o), (ssize_t)o);
	expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x5001, 0);
	expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x5001, 0);
	close(fd);
}

static void test_tcp_bad_records_close_only_that_connection(void **st)
{
	struct msg m;
	uint32_t w[64];
	int good = tcp_connect();
	uint32_t mark;
	int fd;

	/* a mark announcing nearly 2^31 bytes: closed before any buffering */
	fd = tcp_connect();
	mark = htonl(0xfffffff0u);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_true(tcp_is_closed(fd));
	close(fd);

	/* fragments that each fit but together exceed max_record */
	fd = tcp_connect();
	static uint8_t junk[MAXREC];
	mark = htonl(MAXREC - 16);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_int_equal(write(fd, junk, MAXREC - 16), MAXREC - 16);
	mark = htonl(0x80000000u | 64);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_true(tcp_is_closed(fd));
	close(fd);

	/* an empty record (a zero-length last fragment) */
	fd = tcp_connect();
	mark = htonl(0x80000000u);
	assert_int_equal(write(fd, &mark, 4), 4);
	assert_true(tcp_is_closed(fd));
	close(fd);

	/* a truncated call header */
	fd = tcp_connect();
	call_hdr(&m, 0x6001, 2, TPROG, 1, 1, CRED_SYS);
	m.n = 20;
	tcp_send_record(fd, &m);
	assert_true(tcp_is_closed(fd));
	close(fd);

	/* a REPLY sent to the server */
	fd = tcp_connect();
	m.n = 0;
	w32(&m, 1);
	w32(&m, 1);
	w32(&m, 0);
	tcp_send_record(fd, &m);
	assert_true(tcp_is_closed(fd));
	close(fd);

	/* the first connection never noticed */
	call_hdr(&m, 0x6002, 2, TPROG, 1, 1, CRED_NONE);
	w32(&m, 1);
	tcp_send_record(good, &m);
	expect_accepted(w, tcp_recv_reply(good, w, 64), 0x6002, 0);
	close(good);
}

static void test_udp_garbage_dropped(void **st)
{
	struct msg bad[3], m;
	uint32_t w[64];
	uint32_t junk[3] = { 0xffffffffu, 0xffffffffu, 0xffffffffu };

	bad[0].n = 0;
	wbytes(&bad[0], junk, 3);
	bad[1].n = 0;
	wbytes(&bad[1], junk, sizeof(junk));
	/* a call whose cred length claims ~4 GiB in a short datagram */
	call_hdr(&bad[2], 0x7001, 2, TPROG, 1, 0, CRED_NONE);
	uint32_t big = htonl(0xfffffff8u);
	memcpy(bad[2].b + 28, &big, 4);
	/* the server still answers, and answers nothing before this call */
	call_hdr(&m, 0x7002, 2, TPROG, 1, 1, CRED_NONE);
	w32(&m, 5);
	size_t n = udp_call_after(bad, 3, &m, w, 64);
	expect_accepted(w, n, 0x7002, 0);
	assert_int_equal(w[6], 6);
}

/* The AUTH_SYS credential, decoded straight into the request's (no
 * allocation), reaches the handler whole: its group list and machine name,
 * at their largest (16 groups, a 255-byte name) too. */
static void test_cred_fields(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];

	call_hdr(&m, 0x1101, 2, TPROG, 1, 9, CRED_SYS);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1101, 0);
		assert_int_equal(w[t][6], 2);      /* gids 100, 101 */
		assert_int_equal(w[t][7], 101);
		assert_int_equal(w[t][8], 4);      /* "hhhh" */
		assert_int_equal(w[t][9], 'h');
	}
	call_hdr(&m, 0x1102, 2, TPROG, 1, 9, CRED_SYS_MAX);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1102, 0);
		assert_int_equal(w[t][6], 16);
		assert_int_equal(w[t][7], 115);
		assert_int_equal(w[t][8], 255);
		assert_int_equal(w[t][9], 'h');
	}
	call_hdr(&m, 0x1103, 2, TPROG, 1, 9, CRED_NONE);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1103, 0);
		assert_int_equal(w[t][6], 0);
		assert_int_equal(w[t][8], 0);
	}
}

static void roomy_call_proc(struct msg *m, uint32_t xid, uint32_t proc, size_t alen, size_t slen)
{
	uint8_t a[ROOMY_OPAQUE + 8];
	char s[ROOMY_STRING + 8];

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 3 + 1);
	memset(s, 's', sizeof(s));
	call_hdr(m, xid, 2, TPROG, 1, proc, CRED_NONE);
	w32(m, (uint32_t)alen);
	wbytes(m, a, alen);
	w32(m, (uint32_t)slen);
	wbytes(m, s, slen);
}

static void roomy_call(struct msg *m, uint32_t xid, size_t alen, size_t slen)
{
	roomy_call_proc(m, xid, 10, alen, slen);
}

/* A ROOMY/ROOMC reply: accepted, in_room 1, the opaque's @alen bytes and
 * the string's @slen as roomy_call sent them. */
static void expect_roomy_reply(uint32_t *w, size_t n, uint32_t xid, size_t alen,
			       size_t slen)
{
	uint8_t got[ROOMY_OPAQUE + 4];
	size_t o;

	expect_accepted(w, n, xid, 0);
	assert_int_equal(w[6], 1);             /* in the room */
	assert_int_equal(w[7], alen);
	for (size_t i = 0; i < (alen + 3) / 4; i++) {
		uint32_t be = htonl(w[8 + i]);
		memcpy(got + 4 * i, &be, 4);
	}
	for (size_t i = 0; i < alen; i++)
		assert_int_equal(got[i], (uint8_t)(i * 3 + 1));
	o = 8 + (alen + 3) / 4;
	assert_int_equal(w[o], slen);
	for (size_t i = 0; i < slen; i++)
		assert_int_equal((w[o + 1 + i / 4] >> (24 - 8 * (i % 4))) & 0xff, 's');
}

/*
 * Arguments decoded into the request's room: every field inside it, the
 * string's NUL its last byte; results pointing at them are encoded and the
 * request freed without freeing them (ASan: no bad free, no leak).  At the
 * .x bounds, the room is exactly full; one byte over a bound is
 * GARBAGE_ARGS (nothing written past the room), and the next call is
 * served.
 */
static void test_args_room(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];
	static const size_t lens[][2] = { { 0, 0 }, { 5, 3 }, { ROOMY_OPAQUE, ROOMY_STRING } };

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t alen = lens[k][0], slen = lens[k][1];

		roomy_call(&m, 0x1200 + (uint32_t)k, alen, slen);
		both(&m, w, n);
		for (int t = 0; t < 2; t++)
			expect_roomy_reply(w[t], n[t], 0x1200 + (uint32_t)k, alen, slen);
	}
	roomy_call(&m, 0x1210, ROOMY_OPAQUE + 1, 1);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x1210, 4); /* GARBAGE_ARGS */
	roomy_call(&m, 0x1211, 1, ROOMY_STRING + 1);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x1211, 4);
	roomy_call(&m, 0x1212, 2, 2);
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1212, 0);
		assert_int_equal(w[t][6], 1);
	}
}

/*
 * A call whose arguments use little of their room is cut to what they use
 * (ROOMC): both fields inside the cut room, which ends right after the
 * string's NUL, the bytes intact (an empty opaque too, its pointer still
 * in the room for unprep: ASan finds no bad free); a call over a bound is
 * still GARBAGE_ARGS, and calls keep being served in both sizes of block.
 */
static void test_args_room_cut(void **st)
{
	struct msg m;
	uint32_t w[2][64];
	size_t n[2];
	static const size_t lens[][2] = { { 0, 0 }, { 5, 3 }, { 0, 7 }, { 9, 0 },
					   { ROOMY_OPAQUE, ROOMY_STRING } };

	(void)st;
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t alen = lens[k][0], slen = lens[k][1];

		roomy_call_proc(&m, 0x1400 + (uint32_t)k, 13, alen, slen);
		both(&m, w, n);
		for (int t = 0; t < 2; t++)   /* "in the room": the cut one */
			expect_roomy_reply(w[t], n[t], 0x1400 + (uint32_t)k, alen, slen);
	}
	roomy_call_proc(&m, 0x1410, 13, 1, ROOMY_STRING + 1);
	both(&m, w, n);
	for (int t = 0; t < 2; t++)
		expect_accepted(w[t], n[t], 0x1410, 4); /* GARBAGE_ARGS */
	roomy_call(&m, 0x1411, 2, 2);             /* the full room still works */
	both(&m, w, n);
	for (int t = 0; t < 2; t++) {
		expect_accepted(w[t], n[t], 0x1411, 0);
		assert_int_equal(w[t][6], 1);
	}
}

/*
 * Request blocks are reused: the results of a request start zeroed even in
 * the block of one whose handler set them.  SET2 then NOSET on one
 * connection, one at a time (NOSET takes the block SET2 gave back).
 */
static void test_block_reuse_zeroed(void **st)
{
	struct msg m;
	uint32_t w[64];
	int fd = tcp_connect();

	for (int i = 0; i < 3; i++) {
		call_hdr(&m, 0x1300 + (uint32_t)i, 2, TPROG, 1, 11, CRED_SYS);
		tcp_send_record(fd, &m);
		expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x1300 + (uint32_t)i, 0);
		assert_int_equal(w[6], 7);
		assert_int_equal(w[7], 9);
		call_hdr(&m, 0x1310 + (uint32_t)i, 2, TPROG, 1, 12, CRED_SYS);
		tcp_send_record(fd, &m);
		expect_accepted(w, tcp_recv_reply(fd, w, 64), 0x1310 + (uint32_t)i, 0);
		assert_int_equal(w[6], 0);
		assert_int_equal(w[7], 0);
	}
	close(fd);
}

/* Group A's eight HOLD calls @xid0.., sent at once with the hold counters
 * reset (they block on the pool until a_release): the socket. */
static int a_send_held(uint32_t xid0)
{
	struct sockaddr_in sa = test_addr();
	struct timeval tv = { .tv_sec = REPLY_WAIT_S };
	struct msg m;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	pthread_mutex_lock(&hold_mu);
	hold_release = false;
	hold_max = hold_low = hold_low_max = 0;
	pthread_mutex_unlock(&hold_mu);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sa.sin_port = htons(TPORT + 1);
	for (uint32_t i = 0; i < 8; i++) {
		call_hdr(&m, xid0 + i, 2, TPROG, 1, 6, CRED_SYS);
		w32(&m, i);
		assert_true(sendto(fd, m.b, m.n, 0, (struct sockaddr *)&sa, sizeof(sa)) ==
			    (ssize_t)m.n);
	}
	return fd;
}

/* Wait until *@count (a hold counter) reaches @n or @secs pass: its value. */
static unsigned a_wait(const unsigned *count, unsigned n, int secs)
{
	struct timespec until;
	unsigned v;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&hold_mu);
	while (*count < n && pthread_cond_timedwait(&hold_cv, &hold_mu, &until) == 0)
		;
	v = *count;
	pthread_mutex_unlock(&hold_mu);
	return v;
}

/* Let A's calls go: how many of the eight were answered on @fd (closed). */
static unsigned a_release(int fd)
{
	uint8_t buf[512];
	unsigned got = 0;

	pthread_mutex_lock(&hold_mu);
	hold_release = true;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	for (int i = 0; i < 8; i++)
		got += recv(fd, buf, sizeof(buf), 0) > 0;
	close(fd);
	return got;
}

/*
 * One group cannot take every pool thread: with group A's calls blocked on
 * the pool (more of them than there are threads), a call of another
 * context is still answered, before any of A's is released.  Order, not
 * time: the reply wait only stops a broken server from hanging the test.
 */
static void test_pool_slot_for_other_group(void **st)
{
	uint32_t w[64];
	unsigned running, max_a, got_a;
	struct msg m;
	size_t n;
	int fd;

	/* the low jobs' cap (test_low_jobs_leave_a_cpu) out of the way */
	rpcs_test_ncpus = 8;
	fd = a_send_held(0x6000);
	/* A's calls have taken what the pool gives one group (3, or 2 while
	 * another context was active in the last second). */
	running = a_wait(&hold_running, 2, REPLY_WAIT_S);

	/* Another context's blocking call is answered meanwhile. */
	call_hdr(&m, 0x6100, 2, TPROG, 1, 6, CRED_SYS);
	w32(&m, 77);
	n = udp_call(&m, w, 64);

	max_a = hold_max;
	got_a = a_release(fd);
	rpcs_test_ncpus = 0;
	assert_true(running >= 2);
	expect_accepted(w, n, 0x6100, 0);
	assert_int_equal(w[6], 78);
	assert_true(max_a <= 3);     /* a thread was left for the other context */
	assert_int_equal(got_a, 8);  /* and A's calls all answered once released */
}

/*
 * In one group's queue, source addresses take turns: host 1 has six calls
 * on group A's listener (as many as the pool gives a group blocked on it,
 * the rest waiting; six stay under the byte budget's bound), then host 2
 * sends one.  The held calls are then let go one at a time, each only once
 * the call that took its place has started, so the calls start in the
 * order the queue hands them out: host 2's right after one more of host
 * 1's, not behind host 1's whole backlog (last, as when the queue was one
 * line).  Host 2 sends an ECHO after its call on the same connection: its
 * reply shows the call was queued first.  Order, not time: the waits only
 * stop a broken server from hanging the test.
 */
static void test_pool_hosts_take_turns(void **st)
{
	uint16_t port = TPORT + 1;
	int fa = tcp_connect_from(1, port), fb = tcp_connect_from(2, port);
	uint32_t w[64];
	unsigned running, at = 99;
	struct msg m, m2;

	pthread_mutex_lock(&hold_mu);
	hold_release = false;
	hold_tokens = 0;
	hold_norder = 0;
	pthread_mutex_unlock(&hold_mu);
	for (u_int i = 0; i < 6; i++) {
		call_hdr(&m, 0x7000 + i, 2, TPROG, 1, 6, CRED_SYS);
		w32(&m, i);
		tcp_send_record(fa, &m);
	}
	/* What the pool gives a group while no other is active: 3. */
	running = a_wait(&hold_norder, 3, REPLY_WAIT_S);
	assert_int_equal(running, 3);
	call_hdr(&m, 0x7100, 2, TPROG, 1, 6, CRED_SYS);
	w32(&m, 100);
	call_hdr(&m2, 0x7101, 2, TPROG, 1, 1, CRED_SYS);
	w32(&m2, 5);
	tcp_send_record(fb, &m);
	tcp_send_record(fb, &m2);
	expect_accepted(w, tcp_recv_reply(fb, w, 64), 0x7101, 0);

	/* One call let go: one job more, whose start is waited for. */
	for (unsigned started = running; started < 7; started++) {
		pthread_mutex_lock(&hold_mu);
		hold_tokens++;
		pthread_cond_broadcast(&hold_cv);
		pthread_mutex_unlock(&hold_mu);
		assert_int_equal(a_wait(&hold_norder, started + 1, REPLY_WAIT_S), started + 1);
	}
	pthread_mutex_lock(&hold_mu);
	hold_release = true;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
	expect_accepted(w, tcp_recv_reply(fb, w, 64), 0x7100, 0);
	for (int i = 0; i < 6; i++) {
		size_t n = tcp_recv_reply(fa, w, 64);

		assert_true(n >= 1 && w[0] >= 0x7000 && w[0] < 0x7006);
		expect_accepted(w, n, w[0], 0);
	}
	close(fa);
	close(fb);
	pthread_mutex_lock(&hold_mu);
	assert_int_equal(hold_norder, 7);
	for (unsigned i = 0; i < hold_norder; i++)
		if (hold_order[i] == 100)
			at = i;
	pthread_mutex_unlock(&hold_mu);
	if (at != running + 1)
		fail_msg("host 2's call started %uth of 7, after %u of host 1's (%u on the pool when it came)",
			 at + 1, at, running);
}

/*
 * A backlogged group's low jobs leave a CPU free (rpc_int.h,
 * rpcs_low_cap): with B active and two CPUs (rpcs_test_ncpus), at most one
 * of A's eight blocked calls runs on a low thread at a time (the first may
 * run at normal priority, taken before A had a backlog); B is answered
 * meanwhile; once released every A call is answered.  Before, A's share
 * of the pool (three jobs, A alone on it) ran two low at once.  The bounded
 * wait for a second low one only keeps a wrong server from passing by
 * luck; a right one never starts it.
 */
static void test_low_jobs_leave_a_cpu(void **st)
{
	unsigned got_a, max_low, low_a;
	int fd;

	rpcs_test_ncpus = 2;
	b_echo(0x7000); /* B is active (answered on the loop) */
	fd = a_send_held(0x7100);
	a_wait(&hold_running, 1, REPLY_WAIT_S);
	b_echo(0x7001); /* B still answered while A's backlog waits */
	max_low = a_wait(&hold_low_running, 2, 2);
	low_a = hold_low;
	got_a = a_release(fd);
	rpcs_test_ncpus = 0;

	assert_int_equal(max_low, 1); /* one low at a time: a CPU left free */
	assert_int_equal(hold_low_max, 1);
	assert_true(low_a >= 1);      /* A was backlogged: its jobs ran low */
	assert_true(hold_max <= 2);
	assert_int_equal(got_a, 8);
}

/* Check one BLOB reply (@rec: the record's bytes) to call @xid for @n bytes. */
static void expect_blob(const uint8_t *rec, size_t len, uint32_t xid, uint32_t n)
{
	size_t pad = (4 - (n & 3)) & 3;
	uint32_t w[8];

	assert_int_equal(len, 8 * 4 + (size_t)n + pad);
	for (int i = 0; i < 8; i++) {
		memcpy(&w[i], rec + 4 * i, 4);
		w[i] = ntohl(w[i]);
	}
	expect_accepted(w, 8, xid, 0);
	assert_int_equal(w[6], 7);
	assert_int_equal(w[7], n);
	for (uint32_t i = 0; i < n; i++)
		if (rec[32 + i] != blob_byte(n, i))
			fail_msg("BLOB %u: byte %u is %u, not %u", n, i, rec[32 + i],
				 blob_byte(n, i));
	for (size_t i = 0; i < pad; i++)
		assert_int_equal(rec[32 + n + i], 0);
}

/* A 5-byte BLOB call @xid to procedure @proc over UDP: its reply, one
 * datagram, has the bytes of the full encoding. */
static void expect_udp_blob(uint32_t xid, uint32_t proc)
{
	uint32_t w[64];
	uint8_t rec[64];
	struct msg m;
	size_t n;

	call_hdr(&m, xid, 2, TPROG, 1, proc, CRED_SYS);
	w32(&m, 5);
	n = udp_call(&m, w, 64);
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++) {
		uint32_t v = htonl(w[i]);

		memcpy(rec + 4 * i, &v, 4);
	}
	expect_blob(rec, 4 * n, xid, 5);
}

/*
 * Replies whose data is written from the handler's buffer (rpc_proc
 * .res_tail): every length, every padding, a reply bigger than the
 * socket takes at once (the rest queued with its buffer) and, pipelined
 * on one connection, records before and after it: each reply whole, once,
 * with the bytes the full encoding has.  UDP gets the full encoding.
 */
static void test_tail_replies(void **st)
{
	static const uint32_t lens[] = { 0, 1, 2, 3, 4, 5, 4099, 3u << 20, 6, 70001, 7 };
	const size_t nl = sizeof(lens) / sizeof(lens[0]);
	bool seen[sizeof(lens) / sizeof(lens[0])] = { false };
	unsigned echoes = 0;
	struct msg m;
	int rcv = 4096, fd;

	/* A small receive window: the 3 MiB reply cannot go in one write. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	{
		struct sockaddr_in sin = test_addr();
		struct timeval tv = { .tv_sec = REPLY_WAIT_S };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	for (size_t i = 0; i < nl; i++) {
		call_hdr(&m, 0x7000 + (uint32_t)i, 2, TPROG, 1, 7, CRED_SYS);
		w32(&m, lens[i]);
		tcp_send_record(fd, &m);
		call_hdr(&m, 0x8000 + (uint32_t)i, 2, TPROG, 1, 1, CRED_SYS); /* ECHO, on the loop */
		w32(&m, (uint32_t)i);
		tcp_send_record(fd, &m);
	}
	for (size_t k = 0; k < 2 * nl; k++) {
		uint32_t mark, xid;
		size_t len;
		uint8_t *rec;

		assert_true(readn(fd, &mark, 4));
		mark = ntohl(mark);
		assert_true(mark & 0x80000000u);
		len = mark & 0x7fffffffu;
		assert_true(len >= 4 && len <= (4u << 20));
		rec = malloc(len);
		assert_non_null(rec);
		assert_true(readn(fd, rec, len));
		memcpy(&xid, rec, 4);
		xid = ntohl(xid);
		if (xid >= 0x8000) {
			assert_int_equal(len, 7 * 4);
			echoes++;
		} else {
			size_t i = xid - 0x7000;

			assert_true(xid >= 0x7000 && i < nl);
			assert_false(seen[i]);
			seen[i] = true;
			expect_blob(rec, len, xid, lens[i]);
		}
		free(rec);
	}
	assert_int_equal(echoes, nl);
	for (size_t i = 0; i < nl; i++)
		assert_true(seen[i]);
	close(fd);

	/* UDP: one datagram, the same bytes. */
	expect_udp_blob(0x7005, 7);
}

/*
 * A procedure with its own tail allocator (rpc_proc.tail_free): over TCP
 * (data sent from the buffer, whole and partial writes) and over UDP (the
 * full encoding, then the results freed) each buffer comes back to
 * tail_free exactly once and never reaches free(3) (pb_release checks the
 * header; an invalid free aborts).  The replies carry the bytes.
 */
static void test_tail_free(void **st)
{
	static const uint32_t lens[] = { 0, 3, 4099, 2u << 20, 9 };
	const size_t nl = sizeof(lens) / sizeof(lens[0]);
	struct msg m;
	int rcv = 4096, fd;
	unsigned got, put;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	{
		struct sockaddr_in sin = test_addr();
		struct timeval tv = { .tv_sec = REPLY_WAIT_S };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	for (size_t i = 0; i < nl; i++) {
		call_hdr(&m, 0x9000 + (uint32_t)i, 2, TPROG, 1, 8, CRED_SYS);
		w32(&m, lens[i]);
		tcp_send_record(fd, &m);
	}
	for (size_t k = 0; k < nl; k++) {
		uint32_t mark, xid;
		size_t len;
		uint8_t *rec;

		assert_true(readn(fd, &mark, 4));
		mark = ntohl(mark);
		assert_true(mark & 0x80000000u);
		len = mark & 0x7fffffffu;
		assert_true(len >= 4 && len <= (4u << 20));
		rec = malloc(len);
		assert_non_null(rec);
		assert_true(readn(fd, rec, len));
		memcpy(&xid, rec, 4);
		xid = ntohl(xid);
		assert_true(xid >= 0x9000 && xid - 0x9000 < nl);
		expect_blob(rec, len, xid, lens[xid - 0x9000]);
		free(rec);
	}
	close(fd);

	/* UDP: encoded whole, then the results freed through tail_free. */
	expect_udp_blob(0x9100, 8);

	/* A buffer is released after its reply left, on the loop: wait for
	 * the count (bounded only so that a leak fails instead of hanging). */
	for (int i = 0; i < REPLY_WAIT_S * 100; i++) {
		pthread_mutex_lock(&pb_mu);
		got = pb_got;
		put = pb_put;
		pthread_mutex_unlock(&pb_mu);
		if (got == nl + 1 && put == got)
			break;
		usleep(10000);
	}
	assert_int_equal(got, nl + 1);
	assert_int_equal(put, got);
}

/* ---- the byte budget ---------------------------------------------------- */

/* An ECHO @xid from 127.1.0.@host to @port on a new connection is
 * answered. */
static void echo_from(uint8_t host, uint16_t port, uint32_t xid)
{
	int fd = tcp_connect_from(host, port);
	uint32_t w[64];
	struct msg m;

	call_hdr(&m, xid, 2, TPROG, 1, 1, CRED_SYS);
	w32(&m, xid);
	tcp_send_record(fd, &m);
	expect_accepted(w, tcp_recv_reply(fd, w, 64), xid, 0);
	assert_int_equal(w[6], xid + 1);
	close(fd);
}

/* @n HOLD calls @xid0.. to group A, sent with one write. */
static void send_holds(int fd, uint32_t xid0, unsigned n)
{
	static uint8_t buf[64 * 128];
	size_t len = 0;
	struct msg m;

	assert_true(n <= 64);
	for (unsigned i = 0; i < n; i++) {
		uint32_t mark;

		call_hdr(&m, xid0 + i, 2, TPROG, 1, 6, CRED_SYS);
		w32(&m, i);
		mark = htonl(0x80000000u | (uint32_t)m.n);
		memcpy(buf + len, &mark, 4);
		memcpy(buf + len + 4, m.b, m.n);
		len += 4 + m.n;
	}
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

struct budget {
	uint64_t held, stops_host, stops_node, calls;
};

/* The server's budget counters (read from the test thread: they only
 * grow or settle while the server waits for the test). */
static struct budget budget_now(void)
{
	struct budget b;
	uint64_t conns;

	rpc_svc_budget_stats(svc, &b.held, &b.stops_host, &b.stops_node);
	rpc_svc_stats(svc, &b.calls, &conns);
	return b;
}

/* Wait until the stops at the host bound reach @host and at the node's
 * @node (the wait only keeps a broken server from hanging the test). */
static struct budget budget_wait_stops(uint64_t host, uint64_t node)
{
	struct budget b;

	for (int i = 0; i < REPLY_WAIT_S * 100; i++) {
		b = budget_now();
		if (b.stops_host >= host && b.stops_node >= node)
			return b;
		usleep(10000);
	}
	fail_msg("no stop at the byte bound: %" PRIu64 "/%" PRIu64 " (host), %" PRIu64
		 "/%" PRIu64 " (node)", b.stops_host, host, b.stops_node, node);
	return b;
}

/* Read @n replies on @fd: every one accepted, each xid of @xid0.. once. */
static void expect_hold_replies(int fd, uint32_t xid0, unsigned n)
{
	bool seen[64] = { false };
	uint32_t w[64];

	for (unsigned i = 0; i < n; i++) {
		size_t nw = tcp_recv_reply(fd, w, 64);

		expect_accepted(w, nw, w[0], 0);
		assert_true(w[0] >= xid0 && w[0] < xid0 + n);
		assert_false(seen[w[0] - xid0]);
		seen[w[0] - xid0] = true;
	}
}

static void hold_reset(void)
{
	pthread_mutex_lock(&hold_mu);
	hold_release = false;
	hold_max = hold_low = hold_low_max = 0;
	pthread_mutex_unlock(&hold_mu);
}

static void hold_go(void)
{
	pthread_mutex_lock(&hold_mu);
	hold_release = true;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
}

/*
 * One address's calls in flight hold at most its bound, plus the call that
 * reached it: 40 HOLD calls sent in one write (one read of the server's)
 * on one connection are taken until the address holds BUDGET_HOST bytes,
 * and no further, though the connection is far from its 128 calls; a
 * second connection of the address holding nothing is still read, one
 * call, then stops too; an ECHO on a third is answered meanwhile.  Once
 * the calls are let go every one is answered (the stopped input is fed
 * again in order), and nothing is held after.  Before the budget every
 * one of the 40 was taken at once.
 */
static void test_budget_host(void **st)
{
	struct budget b0, b1, b2;
	uint64_t per_call, held;
	int fd1, fd2;

	hold_reset();
	b0 = budget_now();
	fd1 = tcp_connect_from(1, TPORT + 1);
	send_holds(fd1, 0x8000, 40);
	b1 = budget_wait_stops(b0.stops_host + 1, 0);
	per_call = b1.held / (b1.calls - b0.calls);
	assert_true(b1.calls - b0.calls < 40);
	assert_true(b1.held >= BUDGET_HOST);
	assert_true(b1.held - per_call < BUDGET_HOST); /* the call that reached it, no more */
	assert_int_equal(b1.stops_node, b0.stops_node);

	/* Another connection of the address: its first call is read. */
	fd2 = tcp_connect_from(1, TPORT + 1);
	send_holds(fd2, 0x8100, 3);
	b2 = budget_wait_stops(b1.stops_host + 1, 0);
	assert_int_equal(b2.calls, b1.calls + 1);

	/* An ECHO on a third is answered, the 43 HOLDs still held. */
	echo_from(1, TPORT + 1, 0x8200);

	hold_go();
	expect_hold_replies(fd1, 0x8000, 40);
	expect_hold_replies(fd2, 0x8100, 3);
	close(fd1);
	close(fd2);
	for (int i = 0; i < REPLY_WAIT_S * 100 && budget_now().held; i++)
		usleep(10000);
	held = budget_now().held;
	assert_int_equal(held, 0);
}

/*
 * The node's bound holds across addresses: two addresses at their own
 * bound, a third is stopped by the node's (while under its own), a fourth
 * holding nothing is still answered; all answered once let go.
 */
static void test_budget_node(void **st)
{
	struct budget b0, b1, b2;
	int fa, fb, fc;

	hold_reset();
	b0 = budget_now();
	fa = tcp_connect_from(11, TPORT + 1);
	send_holds(fa, 0x9000, 20);
	b1 = budget_wait_stops(b0.stops_host + 1, 0);
	fb = tcp_connect_from(12, TPORT + 1);
	send_holds(fb, 0x9100, 20);
	b1 = budget_wait_stops(b0.stops_host + 2, 0);
	assert_true(b1.held < BUDGET_NODE);
	assert_int_equal(b1.stops_node, b0.stops_node);

	fc = tcp_connect_from(13, TPORT + 1);
	send_holds(fc, 0x9200, 20);
	b2 = budget_wait_stops(b1.stops_host, b0.stops_node + 1);
	assert_int_equal(b2.stops_host, b1.stops_host); /* the node's bound, not its own */
	assert_true(b2.held >= BUDGET_NODE);
	assert_true(b2.calls - b1.calls < 20);

	echo_from(14, TPORT, 0x9300);

	hold_go();
	expect_hold_replies(fa, 0x9000, 20);
	expect_hold_replies(fb, 0x9100, 20);
	expect_hold_replies(fc, 0x9200, 20);
	close(fa);
	close(fb);
	close(fc);
}

/* ---- allocation failures ------------------------------------------------ */

/* What one call on a fresh connection came to. */
enum af_outcome { AF_ANSWERED, AF_SYSTEM_ERR, AF_CLOSED };

/* A ROOMC call (its arguments decoded into the service's scratch room and
 * moved into a block of their size) on a fresh TCP connection: answered
 * with the right bytes, answered SYSTEM_ERR, or the connection closed.
 * Anything else (no answer: the read times out; a wrong answer) fails. */
static enum af_outcome af_call(uint32_t xid)
{
	struct msg m;
	uint32_t mark, w[64];
	uint8_t buf[512];
	size_t len;
	ssize_t r;
	int fd = tcp_connect();

	roomy_call_proc(&m, xid, 13, 5, 3);
	/* The server may close before taking it all: not the test's error. */
	mark = htonl(0x80000000u | (uint32_t)m.n);
	(void)!send(fd, &mark, 4, MSG_NOSIGNAL);
	(void)!send(fd, m.b, m.n, MSG_NOSIGNAL);
	r = recv(fd, &mark, 4, MSG_WAITALL);
	if (r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE))) {
		close(fd);
		return AF_CLOSED;
	}
	assert_int_equal(r, 4);
	len = ntohl(mark) & 0x7fffffffu;
	assert_true(len % 4 == 0 && len <= sizeof(buf));
	assert_true(readn(fd, buf, len));
	close(fd);
	for (size_t i = 0; i < len / 4 && i < 64; i++) {
		memcpy(&w[i], buf + 4 * i, 4);
		w[i] = ntohl(w[i]);
	}
	if (len / 4 >= 6 && w[5] == 5) {
		expect_accepted(w, len / 4, xid, 5);
		return AF_SYSTEM_ERR;
	}
	expect_roomy_reply(w, len / 4, xid, 5, 3);
	return AF_ANSWERED;
}

/*
 * Every allocation one call makes on a fresh server (the connection, its
 * address's entry, the scratch room the arguments are decoded into, the
 * reply's buffer; request blocks come from slab pages that are mmap'ed, so
 * the scratch room's failure is the one that takes the no-block path) fails
 * in turn: the call is answered, answered SYSTEM_ERR or its connection closed,
 * never left unanswered on an open connection; the server keeps serving (a
 * second connection's call is answered once allocations work); and under
 * ASan nothing leaks.  The request block's failure is among them: some
 * allocation must give SYSTEM_ERR.
 */
static void test_alloc_failures(void **st)
{
	struct rpc_limits lim = { .max_record = MAXREC, .max_conns = 8, .idle_timeout_ms = 0 };
	unsigned seen[3] = { 0 };
	long total;

	(void)st;
	/* How many allocations the call makes with none failing. */
	server_up_lim(&lim, false);
	fa_reset();
	assert_int_equal(af_call(0xa000), AF_ANSWERED);
	total = fa_calls();
	server_down(NULL);
	assert_true(total > 0);

	for (long i = 0; i < total; i++) {
		enum af_outcome o;

		server_up_lim(&lim, false);
		fa_reset();
		fa_fail_at(i);
		o = af_call(0xa100 + (uint32_t)i);
		seen[o]++;
		fa_fail_at(-1);
		assert_int_equal(af_call(0xa200 + (uint32_t)i), AF_ANSWERED);
		server_down(NULL);
	}
	print_message("%ld allocations: %u answered, %u SYSTEM_ERR, %u closed\n", total,
		      seen[AF_ANSWERED], seen[AF_SYSTEM_ERR], seen[AF_CLOSED]);
	assert_true(seen[AF_SYSTEM_ERR] > 0);
	assert_true(seen[AF_CLOSED] > 0);
	fa_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_ok),
		cmocka_unit_test(test_rpc_mismatch),
		cmocka_unit_test(test_auth_errors),
		cmocka_unit_test(test_prog_vers_proc),
		cmocka_unit_test(test_tcp_fragments),
		cmocka_unit_test(test_tcp_bad_records_close_only_that_connection),
		cmocka_unit_test(test_udp_garbage_dropped),
		cmocka_unit_test(test_cred_fields),
		cmocka_unit_test(test_args_room),
		cmocka_unit_test(test_args_room_cut),
		cmocka_unit_test(test_block_reuse_zeroed),
		cmocka_unit_test(test_pool_slot_for_other_group),
		cmocka_unit_test(test_tail_replies),
		cmocka_unit_test(test_tail_free),
	};
	/* On a server of its own, whose pool no other group used: A's share
	 * of it is then three jobs, two of them low without the cap. */
	const struct CMUnitTest low_tests[] = {
		cmocka_unit_test(test_low_jobs_leave_a_cpu),
	};
	/* On a server with small byte bounds (BUDGET_HOST, BUDGET_NODE). */
	const struct CMUnitTest budget_tests[] = {
		/* here for group A's TCP listener; first, so no other group
		 * was active in the last second and the pool's share for A
		 * does not change while it runs */
		cmocka_unit_test(test_pool_hosts_take_turns),
		cmocka_unit_test(test_budget_host),
		cmocka_unit_test(test_budget_node),
	};
	/* Each on servers of its own, started and stopped inside it; last,
	 * because a failure there leaves its server's loop running. */
	const struct CMUnitTest alloc_tests[] = {
		cmocka_unit_test(test_alloc_failures),
	};
	int rc = cmocka_run_group_tests_name("low jobs", low_tests, server_up, server_down);


	rc |= cmocka_run_group_tests_name("byte budget", budget_tests, server_up_budget,
					  server_down);
	rc |= cmocka_run_group_tests(tests, server_up, server_down);
	return rc | cmocka_run_group_tests_name("allocation failures", alloc_tests, NULL, NULL);
}
