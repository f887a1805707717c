/*
 * test_rpc_clnt.c - the RPC client (src/rpc/rpc_clnt.c) against a tiny RPC
 * server written here on libuv, UDP and TCP, whose procedures each misbehave
 * in one specific way: drop datagrams, never answer, reject the call in each
 * of the ways RFC 5531 allows, send undecodable or oversized results, split
 * replies into tiny fragments, close the connection mid-call.  Every test
 * ends by closing everything and checking that the loop has no handle left
 * (and, under ASan, that nothing leaked).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fault_alloc.h"
#include "rpc/rpc_clnt.h"
#include "rpcmsg.h"
#include "pmap.h"

#define T_PROG 0x20005150u
#define T_VERS 1u

enum {
	P_NULL = 0,
	P_ECHO = 1,        /* bytes -> same bytes */
	P_DROP2 = 2,       /* first two receptions of each xid are dropped */
	P_NOREPLY = 3,
	P_BIG = 4,         /* u_int n -> n bytes */
	P_CLOSE_ONCE = 5,  /* TCP: first call closes the connection */
	P_SINK = 6,        /* counted, never answered (one-way target) */
	P_PROG_UNAVAIL = 10,
	P_PROG_MISMATCH,
	P_PROC_UNAVAIL,
	P_GARBAGE_ARGS,
	P_SYSTEM_ERR,
	P_AUTH_ERROR,
	P_RPC_MISMATCH,
	P_BAD_RESULT,
};

struct blob {
	u_int len;
	char *val;
};

static bool_t xdr_blob(XDR *x, struct blob *b)
{
	return xdr_bytes(x, &b->val, &b->len, 1u << 20);
}

/* ---- the test server -------------------------------------------------- */

struct tconn;

struct tsrv {
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_tcp_t tcp;
	bool has_udp, has_tcp;
	struct sockaddr_in addr;        /* bound address, with port */
	unsigned frag;                  /* TCP reply fragment size (0 = one) */
	uint32_t pmap_port;             /* PMAP GETPORT answer for T_PROG */
	/* observations */
	unsigned ncalls, nsink;
	struct sockaddr_storage last_peer;
	uint32_t last_flavor, last_uid;
	char last_machine[256];
	uint32_t seen_xid[64];
	unsigned seen_count[64];
	unsigned nseen;
	bool closed_once;
	struct tconn *conns;
};

struct tconn {
	uv_tcp_t tcp;
	struct tsrv *s;
	struct tconn *next;
	uint8_t *buf;
	size_t len, cap;
	bool closing;
};

static unsigned seen(struct tsrv *s, uint32_t xid)
{
	for (unsigned i = 0; i < s->nseen; i++)
		if (s->seen_xid[i] == xid)
			return ++s->seen_count[i];
	if (s->nseen < 64) {
		s->seen_xid[s->nseen] = xid;
		s->seen_count[s->nseen++] = 1;
	}
	return 1;
}

/*
 * Build the reply to one call record into @out (malloc'ed).  Returns its
 * length, 0 for no reply, -1 to close the connection.
 */
static long tsrv_handle(struct tsrv *s, const uint8_t *rec, size_t len,
			bool tcp, uint8_t **out)
{
	rpcm_msg m, r;
	XDR x, y;
	size_t cap = 8192;
	uint8_t *o;
	long n = 0;
	struct blob b = { 0, NULL };
	u_int big = 0;
	rpcm_accepted_reply *ar;

	memset(&m, 0, sizeof(m));
	xdrmem_create(&x, (char *)rec, (u_int)len, XDR_DECODE);
	if (!xdr_rpcm_msg(&x, &m) || m.body.mtype != RPCM_CALL)
		goto out;
	rpcm_call_body *cb = &m.body.rpcm_body_u.cbody;
	s->ncalls++;
	s->last_flavor = cb->cred.flavor;
	if (cb->cred.flavor == RPCM_AUTH_SYS) {
		rpcm_authsys_parms p;
		XDR z;

		memset(&p, 0, sizeof(p));
		xdrmem_create(&z, cb->cred.body.body_val, cb->cred.body.body_len, XDR_DECODE);
		if (xdr_rpcm_authsys_parms(&z, &p)) {
			s->last_uid = p.uid;
			snprintf(s->last_machine, sizeof(s->last_machine), "%s", p.machinename);
		}
		xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);
	}

	memset(&r, 0, sizeof(r));
	r.xid = m.xid;
	r.body.mtype = RPCM_REPLY;
	r.body.rpcm_body_u.rbody.stat = RPCM_MSG_ACCEPTED;
	ar = &r.body.rpcm_body_u.rbody.rpcm_reply_body_u.areply;
	ar->reply_data.stat = RPCM_SUCCESS;

	if (cb->prog == SG_PMAP_PROG) {
		pmap_mapping pm;
		u_int port = 0;

		if (!xdr_pmap_mapping(&x, &pm))
			goto out;
		if (pm.prog == T_PROG && pm.vers == T_VERS)
			port = s->pmap_port;
		o = malloc(cap);
		xdrmem_create(&y, (char *)o + 4, (u_int)cap - 4, XDR_ENCODE);
		assert_true(xdr_rpcm_msg(&y, &r));
		assert_true(xdr_u_int(&y, &port));
		*out = o;
		n = xdr_getpos(&y);
		goto out;
	}

	switch (cb->proc) {
	case P_NULL:
		break;
	case P_DROP2:
		if (seen(s, m.xid) <= 2)
			goto out;
		/* fall through */
	case P_ECHO:
	case P_CLOSE_ONCE:
		if (cb->proc == P_CLOSE_ONCE && tcp && !s->closed_once) {
			s->closed_once = true;
			n = -1;
			goto out;
		}
		if (!xdr_blob(&x, &b))
			ar->reply_data.stat = RPCM_GARBAGE_ARGS;
		break;
	case P_NOREPLY:
		goto out;
	case P_SINK:
		s->nsink++;
		goto out;
	case P_BIG:
		if (!xdr_u_int(&x, &big))
			goto out;
		b.len = big;
		b.val = calloc(1, big + 1);
		cap += big;
		break;
	case P_PROG_UNAVAIL:
		ar->reply_data.stat = RPCM_PROG_UNAVAIL;
		break;
	case P_PROG_MISMATCH:
		ar->reply_data.stat = RPCM_PROG_MISMATCH;
		ar->reply_data.rpcm_accepted_reply_data_u.mismatch_info.low = 2;
		ar->reply_data.rpcm_accepted_reply_data_u.mismatch_info.high = 3;
		break;
	case P_PROC_UNAVAIL:
		ar->reply_data.stat = RPCM_PROC_UNAVAIL;
		break;
	case P_GARBAGE_ARGS:
		ar->reply_data.stat = RPCM_GARBAGE_ARGS;
		break;
	case P_SYSTEM_ERR:
		ar->reply_data.stat = RPCM_SYSTEM_ERR;
		break;
	case P_AUTH_ERROR:
		r.body.rpcm_body_u.rbody.stat = RPCM_MSG_DENIED;
		r.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply.stat = RPCM_AUTH_ERROR;
		r.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply.rpcm_rejected_reply_u.auth_stat =
			RPCM_AUTH_TOOWEAK;
		break;
	case P_RPC_MISMATCH:
		r.body.rpcm_body_u.rbody.stat = RPCM_MSG_DENIED;
		r.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply.stat = RPCM_RPC_MISMATCH;
		r.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply.rpcm_rejected_reply_u
			.mismatch_info.low = 2;
		r.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply.rpcm_rejected_reply_u
			.mismatch_info.high = 2;
		break;
	case P_BAD_RESULT:
		break;
	default:
		ar->reply_data.stat = RPCM_PROC_UNAVAIL;
		break;
	}
	o = malloc(cap);
	xdrmem_create(&y, (char *)o + 4, (u_int)cap - 4, XDR_ENCODE);
	assert_true(xdr_rpcm_msg(&y, &r));
	if (ar->reply_data.stat == RPCM_SUCCESS && r.body.rpcm_body_u.rbody.stat == RPCM_MSG_ACCEPTED) {
		if (cb->proc == P_BAD_RESULT) {
			u_int claim = 100, word = 7;
			/* a byte string claiming 100 bytes, carrying 4 */
			assert_true(xdr_u_int(&y, &claim));
			assert_true(xdr_u_int(&y, &word));
		} else if (cb->proc != P_NULL) {
			assert_true(xdr_blob(&y, &b));
		}
	}
	*out = o;
	n = xdr_getpos(&y);
out:
	xdr_free((xdrproc_t)xdr_blob, (char *)&b);
	xdr_free((xdrproc_t)xdr_rpcm_msg, (char *)&m);
	return n;
}

static void t_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	buf->base = malloc(65536);
	buf->len = 65536;
}

static void t_udp_send_cb(uv_udp_send_t *req, int status)
{
	free(req->data);
	free(req);
}

static void tsrv_udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
			  const struct sockaddr *addr, unsigned flags)
{
	struct tsrv *s = u->data;
	uint8_t *out = NULL;
	long n;

	if (nread > 0 && addr) {
		memcpy(&s->last_peer, addr, sizeof(struct sockaddr_in));
		n = tsrv_handle(s, (const uint8_t *)buf->base, (size_t)nread, false, &out);
		if (n > 0) {
			uv_udp_send_t *req = malloc(sizeof(*req));
			uv_buf_t b = uv_buf_init((char *)out + 4, (unsigned)n);

			req->data = out;
			assert_int_equal(uv_udp_send(req, u, &b, 1, addr, t_udp_send_cb), 0);
			out = NULL;
		}
		free(out);
	}
	free(buf->base);
}

static void t_conn_closed(uv_handle_t *h)
{
	struct tconn *c = h->data;

	free(c->buf);
	free(c);
}

static void tconn_close(struct tconn *c)
{
	struct tconn **pp = &c->s->conns;

	if (c->closing)
		return;
	c->closing = true;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	uv_close((uv_handle_t *)&c->tcp, t_conn_closed);
}

static void t_write_cb(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

/* Send a reply record, split into fragments of s->frag bytes. */
static void tconn_reply(struct tconn *c, uint8_t *out, long n)
{
	unsigned frag = c->s->frag ? c->s->frag : (unsigned)n;
	size_t nfrags = ((size_t)n + frag - 1) / frag;
	uint8_t *w = malloc((size_t)n + 4 * nfrags), *p = w;

	for (long off = 0; off < n; off += frag) {
		uint32_t fl = (uint32_t)(n - off < frag ? n - off : frag);
		uint32_t mark = htonl(fl | (off + (long)fl == n ? 0x80000000u : 0));

		memcpy(p, &mark, 4);
		memcpy(p + 4, out + 4 + off, fl);
		p += 4 + fl;
	}
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t b = uv_buf_init((char *)w, (unsigned)(p - w));
	req->data = w;
	assert_int_equal(uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, t_write_cb), 0);
}

static void tconn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct tconn *c = st->data;

	if (nread < 0) {
		tconn_close(c);
	} else if (nread > 0 && !c->closing) {
		if (c->len + (size_t)nread > c->cap) {
			c->cap = (c->len + (size_t)nread) * 2;
			c->buf = realloc(c->buf, c->cap);
		}
		memcpy(c->buf + c->len, buf->base, (size_t)nread);
		c->len += (size_t)nread;
		/* The client sends one fragment per record. */
		while (c->len >= 4 && !c->closing) {
			uint32_t mark;
			memcpy(&mark, c->buf, 4);
			mark = ntohl(mark) & 0x7fffffffu;
			if (c->len < 4 + (size_t)mark)
				break;
			uint8_t *out = NULL;
			long n = tsrv_handle(c->s, c->buf + 4, mark, true, &out);
			if (n > 0)
				tconn_reply(c, out, n);
			free(out);
			memmove(c->buf, c->buf + 4 + mark, c->len - 4 - mark);
			c->len -= 4 + mark;
			if (n < 0)
				tconn_close(c);
		}
	}
	free(buf->base);
}

static void tsrv_accept(uv_stream_t *l, int status)
{
	struct tsrv *s = l->data;
	struct tconn *c = calloc(1, sizeof(*c));
	int len = sizeof(s->last_peer);

	c->s = s;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->conns;
	s->conns = c;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&s->last_peer, &len);
	uv_read_start((uv_stream_t *)&c->tcp, t_alloc, tconn_read);
}

static void tsrv_start(struct tsrv *s, uv_loop_t *loop, bool udp, bool tcp)
{
	/*
	 * UDP picks a free port; TCP wants the same one, which another process's
	 * connection may hold at this moment: then start over with a new port.
	 */
	for (int attempt = 0; attempt < 50; attempt++) {
		int len = sizeof(s->addr);
		int err = 0;

		memset(s, 0, sizeof(*s));
		s->loop = loop;
		s->addr.sin_family = AF_INET;
		s->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (udp) {
			uv_udp_init(loop, &s->udp);
			s->udp.data = s;
			assert_int_equal(uv_udp_bind(&s->udp, (struct sockaddr *)&s->addr, 0), 0);
			uv_udp_getsockname(&s->udp, (struct sockaddr *)&s->addr, &len);
		}
		if (tcp) {
			uv_tcp_init(loop, &s->tcp);
			s->tcp.data = s;
			/* Same port as UDP when both are wanted. */
			err = uv_tcp_bind(&s->tcp, (struct sockaddr *)&s->addr, 0);
			if (err == 0)
				err = uv_listen((uv_stream_t *)&s->tcp, 16, tsrv_accept);
		}
		if (err == UV_EADDRINUSE && udp) {
			uv_close((uv_handle_t *)&s->udp, NULL);
			uv_close((uv_handle_t *)&s->tcp, NULL);
			uv_run(loop, UV_RUN_NOWAIT);
			continue;
		}
		assert_int_equal(err, 0);
		if (udp) {
			uv_udp_recv_start(&s->udp, t_alloc, tsrv_udp_recv);
			s->has_udp = true;
		}
		if (tcp) {
			len = sizeof(s->addr);
			uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&s->addr, &len);
			s->has_tcp = true;
		}
		return;
	}
	fail_msg("no port free for both UDP and TCP after 50 tries");
}

static void tsrv_stop(struct tsrv *s)
{
	while (s->conns)
		tconn_close(s->conns);
	if (s->has_udp)
		uv_close((uv_handle_t *)&s->udp, NULL);
	if (s->has_tcp)
		uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* ---- helpers ------------------------------------------------------------ */

struct result {
	bool done;
	int err;
	unsigned ncb;
	uint32_t low, high, auth_stat, retransmits;
	char data[256];
	size_t dlen;
	struct rpcc_clnt *close_me; /* close this handle from the callback */
	int call_after_close;       /* what rpcc_call said right after */
};

static void on_reply(const struct rpcc_reply *rep, void *arg)
{
	struct result *r = arg;

	r->done = true;
	r->ncb++;
	r->err = rep->err;
	r->low = rep->low;
	r->high = rep->high;
	r->auth_stat = rep->auth_stat;
	r->retransmits = rep->retransmits;
	if (rep->err == 0 && rep->res) {
		const struct blob *b = rep->res;
		r->dlen = b->len < sizeof(r->data) ? b->len : sizeof(r->data);
		memcpy(r->data, b->val, r->dlen);
	}
	if (r->close_me) {
		rpcc_close(r->close_me);
		r->call_after_close = rpcc_call(r->close_me, P_NULL, NULL, NULL, NULL, 0,
						NULL, on_reply, r);
	}
}

static void guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run @loop until *@flag or @ms pass; returns *@flag. */
/*
 * How long a test waits for an answer it expects: only a net under a broken
 * client, never a measure, so that a loaded machine is not a failure.
 */
#define WAIT_MS 60000

static bool run_until(uv_loop_t *loop, bool *flag, unsigned ms)
{
	uv_timer_t guard;
	bool fired = false;

	uv_timer_init(loop, &guard);
	guard.data = &fired;
	uv_timer_start(&guard, guard_cb, ms, 0);
	while (!*flag && !fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *flag;
}

static bool all_done(struct result *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!r[i].done)
			return false;
	return true;
}

static void run_until_all(uv_loop_t *loop, struct result *r, unsigned n, unsigned ms)
{
	uint64_t end = uv_now(loop) + ms;

	while (!all_done(r, n) && uv_now(loop) < end) {
		bool never = false;
		run_until(loop, &never, 10);
	}
	assert_true(all_done(r, n));
}

/* Close everything and check the loop is empty. */
static void finish(uv_loop_t *loop, struct tsrv *s, struct rpcc_clnt *c)
{
	if (c)
		rpcc_close(c);
	if (s)
		tsrv_stop(s);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

static struct rpcc_clnt *mk(uv_loop_t *loop, struct tsrv *s, enum rpcc_transport t,
			    const char *local, const struct rpcc_auth *auth,
			    const struct rpcc_timeout *to, uint32_t max_reply)
{
	struct rpcc_opts o = { 0 };
	struct sockaddr_in la;
	struct rpcc_clnt *c = NULL;

	o.server = (struct sockaddr *)&s->addr;
	if (local) {
		assert_int_equal(uv_ip4_addr(local, 0, &la), 0);
		o.local = (struct sockaddr *)&la;
	}
	o.prog = T_PROG;
	o.vers = T_VERS;
	o.transport = t;
	o.auth = auth;
	if (to)
		o.timeout = *to;
	o.max_reply = max_reply;
	assert_int_equal(rpcc_new(loop, &o, &c), 0);
	return c;
}

static int echo(struct rpcc_clnt *c, uint32_t proc, const char *text,
		const struct rpcc_timeout *to, struct result *r)
{
	struct blob b = { (u_int)strlen(text), (char *)text };

	return rpcc_call(c, proc, (xdrproc_t)xdr_blob, &b, (xdrproc_t)xdr_blob,
			 sizeof(struct blob), to, on_reply, r);
}

static const char *peer_ip(struct tsrv *s, char *buf)
{
	return inet_ntop(AF_INET, &((struct sockaddr_in *)&s->last_peer)->sin_addr, buf, 64);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_echo_udp_local_source_and_auth(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct rpcc_auth auth = { .flavor = RPCC_AUTH_SYS, .uid = 1234, .gid = 5,
				  .ngids = 2, .gids = { 5, 6 } };
	struct result r = { 0 };
	char ip[64];

	strcpy(auth.machinename, "host-a");
	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, false);
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_UDP, "127.0.0.5", &auth, NULL, 0);
	assert_int_equal(echo(c, P_ECHO, "hello", NULL, &r), 0);
	assert_false(r.done); /* never called back from inside rpcc_call */
	assert_int_equal(rpcc_outstanding(c), 1);
	assert_true(run_until(&loop, &r.done, WAIT_MS));
	assert_int_equal(r.err, 0);
	assert_int_equal(r.dlen, 5);
	assert_memory_equal(r.data, "hello", 5);
	assert_string_equal(peer_ip(&s, ip), "127.0.0.5");
	assert_int_equal(s.last_flavor, RPCM_AUTH_SYS);
	assert_int_equal(s.last_uid, 1234);
	assert_string_equal(s.last_machine, "host-a");
	assert_int_equal(rpcc_outstanding(c), 0);
	finish(&loop, &s, c);
}

static void test_tcp_pipelined_fragmented(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r[50];
	char text[50][32];
	char ip[64];

	memset(r, 0, sizeof(r));
	uv_loop_init(&loop);
	tsrv_start(&s, &loop, false, true);
	s.frag = 7; /* every reply in many small fragments */
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_TCP, "127.0.0.6", NULL, NULL, 0);
	for (int i = 0; i < 50; i++) {
		snprintf(text[i], sizeof(text[i]), "message number %d", i);
		assert_int_equal(echo(c, P_ECHO, text[i], NULL, &r[i]), 0);
	}
	run_until_all(&loop, r, 50, WAIT_MS);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].dlen, strlen(text[i]));
		assert_memory_equal(r[i].data, text[i], r[i].dlen);
		assert_int_equal(r[i].retransmits, 0);
	}
	assert_string_equal(peer_ip(&s, ip), "127.0.0.6");
	assert_int_equal(s.last_flavor, RPCM_AUTH_NONE);
	finish(&loop, &s, c);
}

static void test_udp_retransmit(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r = { 0 };
	struct rpcc_timeout to = { .retrans_ms = 20, .retrans_max_ms = 40, .total_ms = WAIT_MS };

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, false);
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_UDP, NULL, NULL, NULL, 0);
	assert_int_equal(echo(c, P_DROP2, "again", &to, &r), 0);
	assert_true(run_until(&loop, &r.done, WAIT_MS));
	assert_int_equal(r.err, 0);
	/* two were dropped; a loaded loop may send one more before the reply */
	assert_true(r.retransmits >= 2);
	assert_memory_equal(r.data, "again", 5);
	finish(&loop, &s, c);
}

static void test_timeout(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r = { 0 }, rt = { 0 };
	struct rpcc_timeout to = { .retrans_ms = 20, .retrans_max_ms = 50, .total_ms = 300 };

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, true);
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_UDP, NULL, NULL, NULL, 0);
	struct rpcc_clnt *ct = mk(&loop, &s, RPCC_TCP, NULL, NULL, NULL, 0);
	uint64_t t0 = uv_now(&loop);
	assert_int_equal(echo(c, P_NOREPLY, "x", &to, &r), 0);
	assert_int_equal(echo(ct, P_NOREPLY, "x", &to, &rt), 0);
	assert_true(run_until(&loop, &r.done, WAIT_MS));
	assert_true(run_until(&loop, &rt.done, WAIT_MS));
	uv_update_time(&loop);
	assert_int_equal(r.err, -ETIMEDOUT);
	assert_int_equal(rt.err, -ETIMEDOUT);
	assert_true(r.retransmits >= 1);  /* 20, 40, 50 ...: how many depends on the load */
	assert_int_equal(rt.retransmits, 0);
	/* never early; how late depends on the machine's load */
	assert_true(uv_now(&loop) - t0 >= 290);
	rpcc_close(ct);
	finish(&loop, &s, c);
}

static void test_rejections_distinct(void **state)
{
	static const struct { uint32_t proc; int err; } cases[] = {
		{ P_PROG_UNAVAIL,  RPCC_ERR_PROG_UNAVAIL },
		{ P_PROG_MISMATCH, RPCC_ERR_PROG_MISMATCH },
		{ P_PROC_UNAVAIL,  RPCC_ERR_PROC_UNAVAIL },
		{ P_GARBAGE_ARGS,  RPCC_ERR_GARBAGE_ARGS },
		{ P_SYSTEM_ERR,    RPCC_ERR_SYSTEM_ERR },
		{ P_AUTH_ERROR,    RPCC_ERR_AUTH_ERROR },
		{ P_RPC_MISMATCH,  RPCC_ERR_RPC_MISMATCH },
		{ P_BAD_RESULT,    RPCC_ERR_BAD_REPLY },
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);

	for (int t = 0; t < 2; t++) {
		uv_loop_t loop;
		struct tsrv s;
		struct result r[8];

		memset(r, 0, sizeof(r));
		uv_loop_init(&loop);
		tsrv_start(&s, &loop, true, true);
		struct rpcc_clnt *c = mk(&loop, &s, t ? RPCC_TCP : RPCC_UDP, NULL, NULL, NULL, 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(echo(c, cases[i].proc, "z", NULL, &r[i]), 0);
		run_until_all(&loop, r, (unsigned)n, WAIT_MS);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(r[i].err, cases[i].err);
			for (size_t j = 0; j < i; j++)
				assert_int_not_equal(cases[i].err, cases[j].err);
			assert_non_null(rpcc_strerror(r[i].err));
		}
		assert_int_equal(r[1].low, 2);
		assert_int_equal(r[1].high, 3);
		assert_int_equal(r[5].auth_stat, RPCM_AUTH_TOOWEAK);
		assert_int_equal(r[6].low, 2);
		assert_int_equal(r[6].high, 2);
		finish(&loop, &s, c);
	}
}

static void test_tcp_oversized_reply(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r[3];
	u_int big = 5000;

	memset(r, 0, sizeof(r));
	uv_loop_init(&loop);
	tsrv_start(&s, &loop, false, true);
	s.frag = 1000; /* the cap is crossed in the middle of a record */
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_TCP, NULL, NULL, NULL, 2048);
	assert_int_equal(echo(c, P_ECHO, "before", NULL, &r[0]), 0);
	assert_int_equal(rpcc_call(c, P_BIG, (xdrproc_t)xdr_u_int, &big, (xdrproc_t)xdr_blob,
				   sizeof(struct blob), NULL, on_reply, &r[1]), 0);
	assert_int_equal(echo(c, P_ECHO, "after", NULL, &r[2]), 0);
	run_until_all(&loop, r, 3, WAIT_MS);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, -EMSGSIZE);
	assert_int_equal(r[2].err, 0);
	assert_memory_equal(r[2].data, "after", 5);
	/* a reply just under the cap still works */
	memset(r, 0, sizeof(r));
	big = 1900;
	assert_int_equal(rpcc_call(c, P_BIG, (xdrproc_t)xdr_u_int, &big, (xdrproc_t)xdr_blob,
				   sizeof(struct blob), NULL, on_reply, &r[0]), 0);
	assert_true(run_until(&loop, &r[0].done, WAIT_MS));
	assert_int_equal(r[0].err, 0);
	finish(&loop, &s, c);
}

static void test_close_cancels(void **state)
{
	for (int t = 0; t < 2; t++) {
		uv_loop_t loop;
		struct tsrv s;
		struct result r[5];

		memset(r, 0, sizeof(r));
		uv_loop_init(&loop);
		tsrv_start(&s, &loop, true, true);
		struct rpcc_clnt *c = mk(&loop, &s, t ? RPCC_TCP : RPCC_UDP, NULL, NULL, NULL, 0);
		for (int i = 0; i < 5; i++)
			assert_int_equal(echo(c, P_NOREPLY, "q", NULL, &r[i]), 0);
		bool never = false;
		run_until(&loop, &never, 50);
		assert_int_equal(rpcc_outstanding(c), 5);
		rpcc_close(c);
		for (int i = 0; i < 5; i++) {
			assert_true(r[i].done);
			assert_int_equal(r[i].ncb, 1);
			assert_int_equal(r[i].err, -ECANCELED);
		}
		finish(&loop, &s, NULL);
	}
}

static void test_close_from_callback(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r[10];

	memset(r, 0, sizeof(r));
	uv_loop_init(&loop);
	tsrv_start(&s, &loop, false, true);
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_TCP, NULL, NULL, NULL, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(echo(c, P_ECHO, "pipelined", NULL, &r[i]), 0);
	r[0].close_me = c; /* replies 1..9 may sit in the same read buffer */
	run_until_all(&loop, r, 10, WAIT_MS);
	assert_int_equal(r[0].err, 0);
	for (int i = 1; i < 10; i++) {
		assert_int_equal(r[i].ncb, 1);
		assert_int_equal(r[i].err, -ECANCELED);
	}
	assert_int_equal(r[0].call_after_close, -ESHUTDOWN);
	assert_int_equal(r[0].ncb, 1);
	finish(&loop, &s, NULL);
}

static void test_oneway(void **state)
{
	for (int t = 0; t < 2; t++) {
		uv_loop_t loop;
		struct tsrv s;
		struct blob b = { 3, "one" };
		struct result r = { 0 };

		uv_loop_init(&loop);
		tsrv_start(&s, &loop, true, true);
		struct rpcc_clnt *c = mk(&loop, &s, t ? RPCC_TCP : RPCC_UDP, NULL, NULL, NULL, 0);
		/* On TCP these are queued until the connection is up. */
		for (int i = 0; i < 3; i++)
			assert_int_equal(rpcc_send(c, P_SINK, (xdrproc_t)xdr_blob, &b), 0);
		assert_int_equal(rpcc_send(c, P_ECHO, (xdrproc_t)xdr_blob, &b), 0);
		assert_int_equal(rpcc_outstanding(c), 0);
		/* a normal call after them: when it returns, they have arrived */
		assert_int_equal(echo(c, P_ECHO, "sync", NULL, &r), 0);
		assert_true(run_until(&loop, &r.done, WAIT_MS));
		assert_int_equal(r.err, 0);
		assert_int_equal(s.nsink, 3);
		assert_int_equal(s.ncalls, 5);
		finish(&loop, &s, c);
	}
}

static void test_tcp_reconnect_resend(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r = { 0 };

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, false, true);
	struct rpcc_clnt *c = mk(&loop, &s, RPCC_TCP, "127.0.0.7", NULL, NULL, 0);
	assert_int_equal(echo(c, P_CLOSE_ONCE, "survive", NULL, &r), 0);
	assert_true(run_until(&loop, &r.done, WAIT_MS));
	assert_int_equal(r.err, 0);
	assert_true(s.closed_once);
	assert_int_equal(r.retransmits, 1);
	assert_memory_equal(r.data, "survive", 7);
	finish(&loop, &s, c);
}

static void test_refused(void **state)
{
	for (int t = 0; t < 2; t++) {
		uv_loop_t loop;
		struct tsrv s;
		struct result r = { 0 };
		/* refused, not timed out: the error tells them apart */
		struct rpcc_timeout to = { .retrans_ms = 50, .total_ms = WAIT_MS };

		uv_loop_init(&loop);
		/* grab a free port, then close it so nobody listens there */
		tsrv_start(&s, &loop, true, true);
		tsrv_stop(&s);
		uv_run(&loop, UV_RUN_DEFAULT);
		struct rpcc_clnt *c = mk(&loop, &s, t ? RPCC_TCP : RPCC_UDP, NULL, NULL, NULL, 0);
		assert_int_equal(echo(c, P_ECHO, "anyone?", &to, &r), 0);
		assert_true(run_until(&loop, &r.done, WAIT_MS));
		uv_update_time(&loop);
		assert_int_equal(r.err, -ECONNREFUSED);
		finish(&loop, NULL, c);
	}
}

static void test_bad_local_address(void **state)
{
	uv_loop_t loop;
	struct sockaddr_in srv, la;
	struct rpcc_opts o = { 0 };
	struct rpcc_clnt *c = NULL;

	uv_loop_init(&loop);
	uv_ip4_addr("127.0.0.1", 9, &srv);
	uv_ip4_addr("192.0.2.1", 0, &la); /* TEST-NET: not ours */
	o.server = (struct sockaddr *)&srv;
	o.local = (struct sockaddr *)&la;
	o.prog = T_PROG;
	o.vers = T_VERS;
	o.transport = RPCC_UDP;
	assert_int_equal(rpcc_new(&loop, &o, &c), UV_EADDRNOTAVAIL);
	o.transport = RPCC_TCP; /* binds only when connecting, but checked now */
	assert_int_equal(rpcc_new(&loop, &o, &c), -EADDRNOTAVAIL);
	o.transport = RPCC_UDP;
	struct rpcc_auth bad = { .flavor = 99 };
	o.local = NULL;
	o.auth = &bad;
	assert_int_equal(rpcc_new(&loop, &o, &c), -EINVAL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

struct chain {
	struct rpcc_clnt *c;
	int left;
	int err;
	bool done;
};

static void on_chain(const struct rpcc_reply *rep, void *arg)
{
	struct chain *ch = arg;

	if (rep->err || --ch->left == 0) {
		ch->err = rep->err;
		ch->done = true;
		return;
	}
	/* a new call from inside a callback */
	assert_int_equal(rpcc_call(ch->c, P_NULL, NULL, NULL, NULL, 0, NULL, on_chain, ch), 0);
}

static void test_call_from_callback(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct chain ch = { 0 };

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, false);
	ch.c = mk(&loop, &s, RPCC_UDP, NULL, NULL, NULL, 0);
	ch.left = 100;
	assert_int_equal(rpcc_call(ch.c, P_NULL, NULL, NULL, NULL, 0, NULL, on_chain, &ch), 0);
	assert_true(run_until(&loop, &ch.done, WAIT_MS));
	assert_int_equal(ch.err, 0);
	assert_int_equal(s.ncalls, 100);
	finish(&loop, &s, ch.c);
}

struct portres {
	bool done;
	int err;
	uint16_t port;
};

static void on_port(int err, uint16_t port, void *arg)
{
	struct portres *p = arg;

	p->done = true;
	p->err = err;
	p->port = port;
}

static void test_getport(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct portres a = { 0 }, b = { 0 }, cx = { 0 };
	struct sockaddr_in la;
	struct rpcc_getport_req *req = NULL;
	char ip[64];

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, false);
	s.pmap_port = 4045;
	uv_ip4_addr("127.0.0.9", 0, &la);
	assert_int_equal(rpcc_getport(&loop, (struct sockaddr *)&s.addr, (struct sockaddr *)&la,
				      T_PROG, T_VERS, IPPROTO_UDP, NULL, on_port, &a, NULL), 0);
	assert_true(run_until(&loop, &a.done, WAIT_MS));
	assert_int_equal(a.err, 0);
	assert_int_equal(a.port, 4045);
	assert_string_equal(peer_ip(&s, ip), "127.0.0.9"); /* from the given source */
	assert_int_equal(rpcc_getport(&loop, (struct sockaddr *)&s.addr, NULL,
				      T_PROG + 1, T_VERS, IPPROTO_UDP, NULL, on_port, &b, NULL), 0);
	assert_true(run_until(&loop, &b.done, WAIT_MS));
	assert_int_equal(b.err, -ENOENT); /* portmapper said 0: not registered */
	/* cancellation */
	assert_int_equal(rpcc_getport(&loop, (struct sockaddr *)&s.addr, NULL, T_PROG, T_VERS,
				      IPPROTO_TCP, NULL, on_port, &cx, &req), 0);
	rpcc_getport_cancel(req);
	assert_true(cx.done);
	assert_int_equal(cx.err, -ECANCELED);
	finish(&loop, &s, NULL);
}

/* @n echo calls one after the other, each checked; the allocations they
 * (and the test server) made. */
static long echo_round(uv_loop_t *loop, struct rpcc_clnt *c, unsigned n)
{
	fa_reset();
	for (unsigned i = 0; i < n; i++) {
		struct result r = { 0 };
		char text[32];

		snprintf(text, sizeof(text), "call number %u", i);
		assert_int_equal(echo(c, P_ECHO, text, NULL, &r), 0);
		assert_true(run_until(loop, &r.done, WAIT_MS));
		assert_int_equal(r.err, 0);
		assert_int_equal(r.dlen, strlen(text));
		assert_memory_equal(r.data, text, r.dlen);
	}
	return fa_calls();
}

/*
 * Kept call records (rpcc_keep_calls), on UDP and TCP: once a handle has
 * them, a call allocates nothing of its own: the same calls without keeping
 * allocate exactly three more each (the call record, its message, its
 * result), the test server's allocations being the same both ways.  Results
 * still decode right when a call is longer than any kept buffer (one grows)
 * and two are in flight, a result that does not decode fails only its call,
 * keeping 0 again allocates as before, and close frees what was kept (ASan).
 */
static void test_keep_calls(void **state)
{
	for (int tcp = 0; tcp < 2; tcp++) {
		uv_loop_t loop;
		struct tsrv s;
		struct result r[2];
		char big[3000];
		long plain, kept;

		uv_loop_init(&loop);
		tsrv_start(&s, &loop, !tcp, tcp);
		struct rpcc_clnt *c = mk(&loop, &s, tcp ? RPCC_TCP : RPCC_UDP, NULL, NULL, NULL, 0);
		echo_round(&loop, c, 2);               /* connected, buffers grown */
		plain = echo_round(&loop, c, 20);
		rpcc_keep_calls(c, 2);
		echo_round(&loop, c, 1);               /* the first kept record */
		kept = echo_round(&loop, c, 20);
		assert_int_equal(plain - kept, 3 * 20);

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		memset(r, 0, sizeof(r));
		assert_int_equal(echo(c, P_ECHO, big, NULL, &r[0]), 0);
		assert_int_equal(echo(c, P_BAD_RESULT, "bad", NULL, &r[1]), 0);
		run_until_all(&loop, r, 2, WAIT_MS);
		assert_int_equal(r[0].err, 0);
		assert_int_equal(r[0].dlen, sizeof(r[0].data)); /* what struct result keeps */
		assert_memory_equal(r[0].data, big, r[0].dlen);
		assert_int_equal(r[1].err, RPCC_ERR_BAD_REPLY);
		assert_int_equal(echo_round(&loop, c, 20), kept);

		rpcc_keep_calls(c, 0);
		assert_int_equal(echo_round(&loop, c, 20), plain);
		finish(&loop, &s, c);
	}
}

/* ---- datagram handles ------------------------------------------------------ */

static struct rpcc_clnt *mk_dgram(uv_loop_t *loop, const char *local)
{
	struct sockaddr_in la;
	struct rpcc_clnt *c = NULL;

	assert_int_equal(uv_ip4_addr(local, 0, &la), 0);
	assert_int_equal(rpcc_new_dgram(loop, (struct sockaddr *)&la, NULL, &c), 0);
	return c;
}

static int echo_to(struct rpcc_clnt *c, struct tsrv *s, uint32_t proc, const char *text,
		   const struct rpcc_timeout *to, struct result *r, uint32_t *xid)
{
	struct blob b = { (u_int)strlen(text), (char *)text };

	return rpcc_call_to(c, (struct sockaddr *)&s->addr, T_PROG, T_VERS, proc,
			    (xdrproc_t)xdr_blob, &b, (xdrproc_t)xdr_blob, sizeof(struct blob), to,
			    on_reply, r, xid);
}

/* One socket, several servers, each call with its own program: every
 * answer reaches its own call, every server sees the one source. */
static void test_dgram_many_servers(void **state)
{
	uv_loop_t loop;
	struct tsrv s1, s2;
	struct result r1 = { 0 }, r2 = { 0 }, rx = { 0 };
	struct portres p = { 0 };
	uint32_t xid1 = 0, xid2 = 0;
	char ip[64];

	uv_loop_init(&loop);
	tsrv_start(&s1, &loop, true, false);
	tsrv_start(&s2, &loop, true, false);
	s1.pmap_port = 4046;
	struct rpcc_clnt *c = mk_dgram(&loop, "127.0.0.7");
	assert_int_equal(echo_to(c, &s1, P_ECHO, "to one", NULL, &r1, &xid1), 0);
	assert_int_equal(echo_to(c, &s2, P_ECHO, "to two", NULL, &r2, &xid2), 0);
	assert_int_not_equal(xid1, xid2);
	assert_int_equal(rpcc_outstanding(c), 2);
	/* the server's portmapper, through the same socket */
	assert_int_equal(rpcc_getport_to(c, (struct sockaddr *)&s1.addr, T_PROG, T_VERS,
					 IPPROTO_UDP, NULL, on_port, &p, NULL), 0);
	/* a datagram handle has no server of its own */
	assert_int_equal(rpcc_call(c, P_NULL, NULL, NULL, NULL, 0, NULL, on_reply, &rx),
			 -EDESTADDRREQ);
	assert_int_equal(rpcc_send(c, P_NULL, NULL, NULL), -EDESTADDRREQ);
	run_until_all(&loop, &r1, 1, WAIT_MS);
	run_until_all(&loop, &r2, 1, WAIT_MS);
	assert_true(run_until(&loop, &p.done, WAIT_MS));
	assert_int_equal(r1.err, 0);
	assert_int_equal(r1.dlen, 6);
	assert_memory_equal(r1.data, "to one", 6);
	assert_int_equal(r2.err, 0);
	assert_memory_equal(r2.data, "to two", 6);
	assert_int_equal(p.err, 0);
	assert_int_equal(p.port, 4046);
	assert_string_equal(peer_ip(&s1, ip), "127.0.0.7");
	assert_string_equal(peer_ip(&s2, ip), "127.0.0.7");
	assert_false(rx.done);
	rpcc_close(c);
	tsrv_stop(&s2);
	finish(&loop, &s1, NULL);
}

/* A success reply with @xid carrying @text, sent from @u to @to. */
static void forge_reply(uv_udp_t *u, const struct sockaddr_storage *to, uint32_t xid,
			const char *text)
{
	rpcm_msg r;
	struct blob b = { (u_int)strlen(text), (char *)text };
	uint8_t out[512];
	XDR y;

	memset(&r, 0, sizeof(r));
	r.xid = xid;
	r.body.mtype = RPCM_REPLY;
	r.body.rpcm_body_u.rbody.stat = RPCM_MSG_ACCEPTED;
	r.body.rpcm_body_u.rbody.rpcm_reply_body_u.areply.reply_data.stat = RPCM_SUCCESS;
	xdrmem_create(&y, (char *)out, sizeof(out), XDR_ENCODE);
	assert_true(xdr_rpcm_msg(&y, &r));
	assert_true(xdr_blob(&y, &b));
	uv_buf_t ub = uv_buf_init((char *)out, xdr_getpos(&y));
	assert_int_equal(uv_udp_try_send(u, &ub, 1, (const struct sockaddr *)to),
			 (int)xdr_getpos(&y));
}

static void on_ncalls(uv_timer_t *t)
{
	(void)t;
}

/* Replies with the right xid from another port of the server's host and
 * from another host with the server's port complete nothing: only the
 * server's own reply does. */
static void test_dgram_reply_only_from_server(void **state)
{
	uv_loop_t loop;
	struct tsrv s;
	struct result r = { 0 };
	struct rpcc_timeout to = { .retrans_ms = 20, .retrans_max_ms = 40, .total_ms = WAIT_MS };
	uv_udp_t f1, f2;
	struct sockaddr_in a2;
	uint32_t xid = 0;
	uv_timer_t tick;

	uv_loop_init(&loop);
	tsrv_start(&s, &loop, true, false);
	uv_udp_init(&loop, &f1);
	uv_udp_init(&loop, &f2);
	/* another port on the server's address; the server's port on another */
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a2), 0);
	assert_int_equal(uv_udp_bind(&f1, (struct sockaddr *)&a2, 0), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.2", ntohs(s.addr.sin_port), &a2), 0);
	assert_int_equal(uv_udp_bind(&f2, (struct sockaddr *)&a2, 0), 0);
	uv_timer_init(&loop, &tick);
	struct rpcc_clnt *c = mk_dgram(&loop, "127.0.0.8");
	/* answered only on its third reception */
	assert_int_equal(echo_to(c, &s, P_DROP2, "real", &to, &r, &xid), 0);
	/* the first reception tells the forgers where the caller is */
	uv_timer_start(&tick, on_ncalls, 1, 1);
	while (s.ncalls == 0)
		uv_run(&loop, UV_RUN_ONCE);
	assert_false(r.done);
	forge_reply(&f1, &s.last_peer, xid, "forged by port");
	forge_reply(&f2, &s.last_peer, xid, "forged by host");
	assert_true(run_until(&loop, &r.done, WAIT_MS));
	uv_timer_stop(&tick);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.dlen, 4);
	assert_memory_equal(r.data, "real", 4);
	assert_true(s.ncalls >= 3);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_close((uv_handle_t *)&f1, NULL);
	uv_close((uv_handle_t *)&f2, NULL);
	finish(&loop, &s, c);
}

/* Nobody listening at one destination fails only the call sent there
 * (it times out: an unconnected socket hears no ICMP error), not the
 * others on the socket; a cancelled call ends at once, exactly once. */
static void test_dgram_dead_server_and_cancel(void **state)
{
	uv_loop_t loop;
	struct tsrv s, dead;
	struct result rd = { 0 }, rl = { 0 }, rc = { 0 };
	struct portres pc = { 0 };
	struct rpcc_timeout short_to = { .retrans_ms = 20, .retrans_max_ms = 40, .total_ms = 200 };
	uint32_t xid = 0, pxid = 0;

	uv_loop_init(&loop);
	tsrv_start(&dead, &loop, true, false);
	tsrv_stop(&dead);
	uv_run(&loop, UV_RUN_DEFAULT);
	tsrv_start(&s, &loop, true, false);
	struct rpcc_clnt *c = mk_dgram(&loop, "127.0.0.9");
	assert_int_equal(echo_to(c, &dead, P_ECHO, "anyone?", &short_to, &rd, NULL), 0);
	assert_true(run_until(&loop, &rd.done, WAIT_MS));
	assert_int_equal(rd.err, -ETIMEDOUT);
	assert_true(rd.retransmits >= 1);
	assert_int_equal(echo_to(c, &dead, P_ECHO, "anyone?", NULL, &rc, &xid), 0);
	assert_int_equal(echo_to(c, &s, P_ECHO, "alive", NULL, &rl, NULL), 0);
	assert_true(run_until(&loop, &rl.done, WAIT_MS));
	assert_int_equal(rl.err, 0);
	assert_memory_equal(rl.data, "alive", 5);
	assert_false(rc.done);
	rpcc_cancel(c, xid);
	assert_int_equal(rc.ncb, 1);
	assert_int_equal(rc.err, -ECANCELED);
	rpcc_cancel(c, xid); /* done already: nothing */
	assert_int_equal(rc.ncb, 1);
	/* a portmapper question too */
	assert_int_equal(rpcc_getport_to(c, (struct sockaddr *)&dead.addr, T_PROG, T_VERS,
					 IPPROTO_UDP, NULL, on_port, &pc, &pxid), 0);
	rpcc_cancel(c, pxid);
	assert_true(pc.done);
	assert_int_equal(pc.err, -ECANCELED);
	assert_int_equal(rpcc_outstanding(c), 0);
	finish(&loop, &s, c);
}

static void test_strerror_names(void **state)
{
	assert_string_equal(rpcc_strerror(-ETIMEDOUT), "timed out");
	assert_string_equal(rpcc_strerror(-ECANCELED), "cancelled");
	assert_non_null(strstr(rpcc_strerror(RPCC_ERR_PROG_UNAVAIL), "PROG_UNAVAIL"));
	assert_non_null(strstr(rpcc_strerror(RPCC_ERR_AUTH_ERROR), "AUTH_ERROR"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_udp_local_source_and_auth),
		cmocka_unit_test(test_tcp_pipelined_fragmented),
		cmocka_unit_test(test_udp_retransmit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_rejections_distinct),
		cmocka_unit_test(test_tcp_oversized_reply),
		cmocka_unit_test(test_close_cancels),
		cmocka_unit_test(test_close_from_callback),
		cmocka_unit_test(test_oneway),
		cmocka_unit_test(test_tcp_reconnect_resend),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bad_local_address),
		cmocka_unit_test(test_call_from_callback),
		cmocka_unit_test(test_getport),
		cmocka_unit_test(test_keep_calls),
		cmocka_unit_test(test_strerror_names),
		cmocka_unit_test(test_dgram_many_servers),
		cmocka_unit_test(test_dgram_reply_only_from_server),
		cmocka_unit_test(test_dgram_dead_server_and_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
