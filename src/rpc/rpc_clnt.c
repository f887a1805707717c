/*
 * rpc_clnt.c - ONC RPC client on the libuv loop (see rpc_clnt.h).
 *
 * Every call is encoded once into its own buffer (4 bytes of headroom for
 * the TCP record mark, then the record), kept until the call completes so
 * UDP can retransmit it and TCP can re-send it on a new connection with the
 * same xid.  Calls waiting for a reply sit in a small xid hash (replies are
 * matched there) and in a list in submission order (re-sends keep that
 * order; timeouts are found by scanning it).
 *
 * One timer per handle drives retransmission, deadlines and TCP reconnects.
 * It is armed for the earliest thing due; a new call only re-arms it when it
 * is due sooner, so the common path (reply before any timeout) is O(1), and
 * a timer expiry scans the handle's calls once.
 *
 * Re-entrancy: callbacks may call rpcc_call() or rpcc_close() on any handle,
 * including their own.  So a call is always unlinked from the handle before
 * its callback runs, and every loop that runs callbacks either works on a
 * list it stole from the handle or stops when the handle starts closing.
 * Nothing fails a call synchronously inside rpcc_call(): a refusal seen
 * while sending only sets a flag and arms the timer to fire at once.
 *
 * TCP calls are not written one by one: a call made while connected is
 * marked unsent, and at the end of the loop turn (a check handle, right
 * after the I/O callbacks, and a prepare handle, right before the loop
 * blocks) every unsent call goes out in one writev.  A caller that answers
 * a dozen replies with a dozen new calls costs the kernel one segment, not
 * a dozen, and the server one wake-up.
 *
 * A handle may keep the records of finished calls for its next ones
 * (rpcc_keep_calls; none by default): a kept record's message buffer is
 * encoded into again without a sizing pass, and its results are decoded into
 * the record's own room, so a caller that keeps N calls in flight allocates
 * nothing per call once N records exist (sgnfs-client bench-lock).
 *
 * TCP replies are reassembled from record-marking fragments by rpc_rm.c
 * (state in struct rpcc_conn); the running record size is checked against
 * max_reply before anything is buffered, and an oversized record is skipped
 * (only its first four bytes, the xid, are kept) so it fails only its own
 * call.
 */
#include "rpc/rpc_clnt.h"
#include "rpc/rpc_rm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "rpcmsg.h"
#include "pmap.h"
#include "saddr.h"

#define RPCC_NBUCKETS        256u          /* power of two */
#define RPCC_MARK_LEN        RM_MARK_LEN
#define RPCC_PROG_OFF        12u           /* xid mtype rpcvers | prog vers */
#define RPCC_PROC_OFF        20u           /* xid mtype rpcvers prog vers | proc */
#define RPCC_DEF_RETRANS     500u
#define RPCC_DEF_RETRANS_MAX 4000u
#define RPCC_DEF_TOTAL       10000u
#define RPCC_DEF_MAX_REPLY   (1u << 20)
#define RPCC_RECONNECT_MIN   100u
#define RPCC_RECONNECT_MAX   2000u
#define RPCC_RDBUF           65536u
#define RPCC_WRITEV_MAX      64u           /* calls per writev */
#define RPCC_KEEP_ROUND      512u          /* kept message buffers grow in these */
#define RPCC_NEVER           UINT64_MAX

struct rpcc_conn;

struct rpcc_call {
	struct rpcc_clnt *c;
	struct rpcc_call *hnext;        /* xid bucket chain; not for one-way */
	struct rpcc_call *next, *prev;  /* c->calls, in submission order */
	uint32_t xid;
	bool oneway;
	bool sent;                      /* TCP: written on the current connection */
	unsigned tx_count;              /* transmissions so far */
	uint8_t *msg;                   /* RPCC_MARK_LEN headroom + record (owned) */
	size_t cap;                     /* bytes at msg */
	size_t len;                     /* record length, without the headroom */
	void *room;                     /* kept records: results decoded here (owned) */
	size_t room_cap;                /* bytes at room */
	xdrproc_t xdr_res;
	size_t res_size;
	rpcc_cb cb;
	void *arg;
	uint64_t deadline;              /* uv_now() ms */
	uint64_t next_tx;               /* UDP retransmission due, or RPCC_NEVER */
	uint32_t rto, rto_max;
	struct sockaddr_storage dest;   /* datagram handle: where the call goes */
};

struct rpcc_conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct rpcc_clnt *c;            /* NULL once detached; freed in close cb */
	bool connected;
	/* Record-marking parser (RFC 5531 section 11), skip mode: a reply
	 * over max_reply fails only its own call. */
	struct rm_parser rm;
};

struct rpcc_clnt {
	uv_loop_t *loop;                /* not owned */
	struct sockaddr_storage server;
	struct sockaddr_storage local;
	bool has_local;
	bool dgram;                     /* unconnected UDP: rpcc_call_to only */
	uint32_t prog, vers;
	enum rpcc_transport transport;
	struct rpcc_timeout defto;      /* every field non-zero */
	uint32_t max_reply;
	uint8_t *hdr;                   /* call header template, xid and proc 0 (owned) */
	size_t hdr_len;
	uint32_t next_xid;
	struct rpcc_call *buckets[RPCC_NBUCKETS];
	struct rpcc_call *calls, *tail; /* waiting calls and queued one-way messages */
	unsigned nwaiting;              /* calls in the hash */
	uv_timer_t timer;
	uint64_t timer_due;             /* RPCC_NEVER when stopped */
	int fail_err;                   /* waiting to fail every call (refused, bind) */
	uv_udp_t udp;                   /* UDP only */
	struct rpcc_conn *conn;         /* TCP: current connection or NULL */
	uint32_t backoff;               /* TCP: next reconnect delay */
	uint64_t reconnect_at;          /* TCP: earliest next connect attempt */
	int conn_err;                   /* TCP: why the last connect failed */
	bool binding;                   /* TCP: the failure being handled is bind's */
	uv_prepare_t flush_prep;        /* TCP: end-of-turn write of unsent calls */
	uv_check_t flush_chk;
	bool flush_armed;
	unsigned keep_calls;            /* finished call records kept at most */
	struct rpcc_call *kept;         /* those records, by next (owned) */
	unsigned nkept;
	unsigned handles_open;
	bool closing;
};

/* ---- shared read buffer ------------------------------------------------ */

/* libuv runs alloc_cb and the read callback back to back for one socket at
 * a time, and the read callback consumes the data before returning, so one
 * buffer per loop thread serves every socket.  The busy flag is a guard, not
 * the normal path. */
static _Thread_local uint8_t rpcc_rdbuf[RPCC_RDBUF];
static _Thread_local bool rpcc_rdbuf_busy;

static void rpcc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	if (!rpcc_rdbuf_busy) {
		rpcc_rdbuf_busy = true;
		*buf = uv_buf_init((char *)rpcc_rdbuf, sizeof(rpcc_rdbuf));
		return;
	}
	buf->base = malloc(RPCC_RDBUF);
	buf->len = buf->base ? RPCC_RDBUF : 0;
}

static void rpcc_release(const uv_buf_t *buf)
{
	if (buf->base == (char *)rpcc_rdbuf)
		rpcc_rdbuf_busy = false;
	else
		free(buf->base);
}

/* ---- errors -------------------------------------------------------------- */

const char *rpcc_strerror(int err)
{
	switch (err) {
	case 0:                      return "success";
	case RPCC_ERR_PROG_UNAVAIL:  return "PROG_UNAVAIL (program not offered)";
	case RPCC_ERR_PROG_MISMATCH: return "PROG_MISMATCH (version not offered)";
	case RPCC_ERR_PROC_UNAVAIL:  return "PROC_UNAVAIL (procedure not offered)";
	case RPCC_ERR_GARBAGE_ARGS:  return "GARBAGE_ARGS (server could not decode arguments)";
	case RPCC_ERR_SYSTEM_ERR:    return "SYSTEM_ERR (server failure)";
	case RPCC_ERR_AUTH_ERROR:    return "AUTH_ERROR (credentials refused)";
	case RPCC_ERR_RPC_MISMATCH:  return "RPC_MISMATCH (RPC version refused)";
	case RPCC_ERR_BAD_REPLY:     return "undecodable reply";
	case -ETIMEDOUT:             return "timed out";
	case -ECANCELED:             return "cancelled";
	default:                     return err < 0 ? strerror(-err) : "unknown";
	}
}

/* ---- call bookkeeping -------------------------------------------------- */

static struct rpcc_call **rpcc_bucket(struct rpcc_clnt *c, uint32_t xid)
{
	return &c->buckets[xid & (RPCC_NBUCKETS - 1)];
}

static struct rpcc_call *rpcc_lookup(struct rpcc_clnt *c, uint32_t xid)
{
	for (struct rpcc_call *k = *rpcc_bucket(c, xid); k; k = k->hnext)
		if (k->xid == xid)
			return k;
	return NULL;
}

static void rpcc_link(struct rpcc_clnt *c, struct rpcc_call *k)
{
	k->next = NULL;
	k->prev = c->tail;
	if (c->tail)
		c->tail->next = k;
	else
		c->calls = k;
	c->tail = k;
	if (!k->oneway) {
		struct rpcc_call **b = rpcc_bucket(c, k->xid);
		k->hnext = *b;
		*b = k;
		c->nwaiting++;
	}
}

static void rpcc_unlink(struct rpcc_clnt *c, struct rpcc_call *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		c->tail = k->prev;
	k->next = k->prev = NULL;
	if (!k->oneway) {
		struct rpcc_call **pp = rpcc_bucket(c, k->xid);
		while (*pp != k)
			pp = &(*pp)->hnext;
		*pp = k->hnext;
		k->hnext = NULL;
		c->nwaiting--;
	}
}

/* Free @k, or keep it (buffers included) for the handle's next call. */
static void rpcc_call_free(struct rpcc_call *k)
{
	struct rpcc_clnt *c = k->c;

	if (c && !c->closing && c->nkept < c->keep_calls) {
		k->next = c->kept;
		c->kept = k;
		c->nkept++;
		return;
	}
	free(k->room);
	free(k->msg);
	free(k);
}

/* A record for a new call: a kept one (its buffers and nothing else kept),
 * else a new zeroed one; NULL without memory. */
static struct rpcc_call *rpcc_call_get(struct rpcc_clnt *c)
{
	struct rpcc_call *k = c->kept;
	uint8_t *msg;
	void *room;
	size_t cap, room_cap;

	if (!k)
		return calloc(1, sizeof(*k));
	c->kept = k->next;
	c->nkept--;
	msg = k->msg;
	cap = k->cap;
	room = k->room;
	room_cap = k->room_cap;
	memset(k, 0, sizeof(*k));
	k->msg = msg;
	k->cap = cap;
	k->room = room;
	k->room_cap = room_cap;
	return k;
}

static void rpcc_kept_free(struct rpcc_clnt *c, unsigned keep)
{
	while (c->nkept > keep) {
		struct rpcc_call *k = c->kept;

		c->kept = k->next;
		c->nkept--;
		free(k->room);
		free(k->msg);
		free(k);
	}
}

void rpcc_keep_calls(struct rpcc_clnt *c, unsigned n)
{
	c->keep_calls = n;
	rpcc_kept_free(c, n);
}

/* Run the callback of an already unlinked call with @err and free it. */
static void rpcc_finish_err(struct rpcc_call *k, int err)
{
	if (!k->oneway) {
		struct rpcc_reply rep = { .err = err, .xid = k->xid,
			.retransmits = k->tx_count ? k->tx_count - 1 : 0 };
		k->cb(&rep, k->arg);
	}
	rpcc_call_free(k);
}

/* Steal every call of @c (waiting and queued) into a detached list. */
static struct rpcc_call *rpcc_steal_all(struct rpcc_clnt *c)
{
	struct rpcc_call *list = c->calls;

	c->calls = c->tail = NULL;
	memset(c->buckets, 0, sizeof(c->buckets));
	c->nwaiting = 0;
	for (struct rpcc_call *k = list; k; k = k->next)
		k->hnext = NULL;
	return list;
}

static void rpcc_finish_list(struct rpcc_call *list, int err)
{
	while (list) {
		struct rpcc_call *k = list;
		list = k->next;
		k->next = k->prev = NULL;
		rpcc_finish_err(k, err);
	}
}

/* ---- timer --------------------------------------------------------------- */

static void rpcc_timer_cb(uv_timer_t *t);

/* Make sure the timer fires no later than @due (uv_now() ms). */
static void rpcc_timer_want(struct rpcc_clnt *c, uint64_t due)
{
	uint64_t now = uv_now(c->loop);

	if (c->closing || due == RPCC_NEVER || due >= c->timer_due)
		return;
	c->timer_due = due;
	uv_timer_start(&c->timer, rpcc_timer_cb, due > now ? due - now : 0, 0);
}

/* Re-arm for the earliest thing due, scanning every call. */
static void rpcc_timer_rearm(struct rpcc_clnt *c)
{
	uint64_t due = RPCC_NEVER;

	uv_timer_stop(&c->timer);
	c->timer_due = RPCC_NEVER;
	for (struct rpcc_call *k = c->calls; k; k = k->next) {
		if (k->deadline < due)
			due = k->deadline;
		if (k->next_tx < due)
			due = k->next_tx;
	}
	if (c->transport == RPCC_TCP && !c->conn && c->calls && c->reconnect_at < due)
		due = c->reconnect_at;
	rpcc_timer_want(c, due);
}

/* ---- encoding ------------------------------------------------------------ */

/*
 * Encode the call header once per handle: everything from xid to the
 * verifier, with xid and proc left 0 and patched per call.
 */
static int rpcc_build_header(struct rpcc_clnt *c, const struct rpcc_auth *a)
{
	uint8_t credbody[RPCMSG_MAX_AUTH_BYTES];
	u_int credlen = 0;
	uint32_t flavor = RPCC_AUTH_NONE;
	rpcm_msg m;
	rpcm_call_body *cb;
	XDR x;
	u_long size;

	if (a && a->flavor == RPCC_AUTH_SYS) {
		rpcm_authsys_parms p = {
			/* The stamp is arbitrary (RFC 5531 appendix A); a
			 * per-handle value lets a server tell restarts apart. */
			.stamp = (u_int)(uv_hrtime() / 1000000u),
			.machinename = (char *)a->machinename,
			.uid = a->uid,
			.gid = a->gid,
			.gids = { a->ngids, (u_int *)a->gids },
		};

		if (a->ngids > RPCC_AUTH_MAX_GIDS ||
		    strnlen(a->machinename, sizeof(a->machinename)) > RPCC_AUTH_MAX_MACHNAME)
			return -EINVAL;
		xdrmem_create(&x, (char *)credbody, sizeof(credbody), XDR_ENCODE);
		if (!xdr_rpcm_authsys_parms(&x, &p))
			return -EINVAL;
		credlen = xdr_getpos(&x);
		flavor = RPCC_AUTH_SYS;
	} else if (a && a->flavor != RPCC_AUTH_NONE) {
		return -EINVAL;
	}

	memset(&m, 0, sizeof(m));
	m.body.mtype = RPCM_CALL;
	cb = &m.body.rpcm_body_u.cbody;
	cb->rpcvers = RPCMSG_VERSION;
	cb->prog = c->prog;
	cb->vers = c->vers;
	cb->cred.flavor = flavor;
	cb->cred.body.body_len = credlen;
	cb->cred.body.body_val = (char *)credbody;
	cb->verf.flavor = RPCC_AUTH_NONE;
	size = xdr_sizeof((xdrproc_t)xdr_rpcm_msg, &m);
	if (size == 0)
		return -EINVAL;
	c->hdr = malloc(size);
	if (!c->hdr)
		return -ENOMEM;
	xdrmem_create(&x, (char *)c->hdr, (u_int)size, XDR_ENCODE);
	if (!xdr_rpcm_msg(&x, &m)) {
		free(c->hdr);
		c->hdr = NULL;
		return -EINVAL;
	}
	c->hdr_len = size;
	return 0;
}

static uint32_t rpcc_new_xid(struct rpcc_clnt *c)
{
	uint32_t xid;

	/* A clash needs 2^32 calls with one still waiting; cheap to rule out. */
	do
		xid = c->next_xid++;
	while (rpcc_lookup(c, xid));
	return xid;
}

static void rpcc_put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

/*
 * The call header (with @k's xid and @proc) and @args into @k->msg.  0, or
 * -ENOSPC if they do not fit in k->cap bytes or do not encode (the caller
 * tells these apart by sizing).
 */
static int rpcc_encode_at(struct rpcc_clnt *c, struct rpcc_call *k, uint32_t proc,
			  xdrproc_t xa, const void *args)
{
	XDR x;

	if (k->cap < RPCC_MARK_LEN + c->hdr_len)
		return -ENOSPC;
	memcpy(k->msg + RPCC_MARK_LEN, c->hdr, c->hdr_len);
	rpcc_put32(k->msg + RPCC_MARK_LEN, k->xid);
	rpcc_put32(k->msg + RPCC_MARK_LEN + RPCC_PROC_OFF, proc);
	k->len = c->hdr_len;
	if (xa) {
		xdrmem_create(&x, (char *)k->msg + RPCC_MARK_LEN + c->hdr_len,
			      (u_int)(k->cap - RPCC_MARK_LEN - c->hdr_len), XDR_ENCODE);
		if (!xa(&x, (void *)args))
			return -ENOSPC;
		k->len += xdr_getpos(&x);
	}
	return 0;
}

static int rpcc_encode(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xa,
		       const void *args, struct rpcc_call **out)
{
	struct rpcc_call *k;
	u_long alen = 0;
	size_t need;
	int rc = -ENOMEM;

	k = rpcc_call_get(c);
	if (!k)
		return -ENOMEM;
	k->c = c;
	k->xid = rpcc_new_xid(c);
	/* A kept buffer is tried as it is: a LOCK or UNLOCK fits the room the
	 * last one left, and the sizing pass below costs a second encode. */
	if (k->msg && rpcc_encode_at(c, k, proc, xa, args) == 0)
		goto out;
	if (xa) {
		alen = xdr_sizeof(xa, (void *)args);
		/* 0 is also what a failing encoder yields; the real encode
		 * below tells a void-like encoder from a broken one. */
		if (alen > (64u << 20)) {
			rc = -EMSGSIZE;
			goto out_free;
		}
	}
	need = RPCC_MARK_LEN + c->hdr_len + alen;
	if (need > k->cap) {
		/* kept records round up, so a slightly longer call reuses them */
		size_t cap = c->keep_calls ? (need + RPCC_KEEP_ROUND - 1) / RPCC_KEEP_ROUND *
					     RPCC_KEEP_ROUND : need;

		free(k->msg);
		k->cap = 0;
		k->msg = malloc(cap);
		if (!k->msg)
			goto out_free;
		k->cap = cap;
	}
	if (rpcc_encode_at(c, k, proc, xa, args) < 0 || k->len != c->hdr_len + alen) {
		rc = -EINVAL;
		goto out_free;
	}
out:
	*out = k;
	return 0;
out_free:
	rpcc_call_free(k);
	return rc;
}

/* Zeroed storage for @k's results: the record's room when the handle keeps
 * records (it outlives the callback; xdr_free empties it), else calloc'ed. */
static void *rpcc_res_storage(struct rpcc_clnt *c, struct rpcc_call *k, size_t size)
{
	if (!c->keep_calls)
		return calloc(1, size);
	if (k->room_cap < size) {
		void *n = realloc(k->room, size);

		if (!n)
			return NULL;
		k->room = n;
		k->room_cap = size;
	}
	memset(k->room, 0, size);
	return k->room;
}

/* ---- reply handling ------------------------------------------------------ */

static size_t rpcc_salen(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/*
 * The waiting call a reply with @xid from @from answers.  A datagram handle
 * talks to many servers over one socket that anyone can send to: a reply
 * counts only from the address and port its call went to, so a stray or
 * forged datagram with a guessed xid completes nothing.  @from is NULL on
 * a connected socket (the kernel already filtered).
 */
static struct rpcc_call *rpcc_lookup_from(struct rpcc_clnt *c, uint32_t xid,
					  const struct sockaddr *from)
{
	struct rpcc_call *k = rpcc_lookup(c, xid);
	struct sockaddr_storage f;

	if (!k || !c->dgram)
		return k;
	if (!from || (from->sa_family != AF_INET && from->sa_family != AF_INET6))
		return NULL;
	memset(&f, 0, sizeof(f));
	memcpy(&f, from, rpcc_salen(from));
	if (!sa_same_host(&f, &k->dest) || sa_port(&f) != sa_port(&k->dest))
		return NULL;
	return k;
}

/* Fail the waiting call with @xid (from @from), if any, with @err. */
static void rpcc_fail_xid(struct rpcc_clnt *c, uint32_t xid, const struct sockaddr *from,
			  int err)
{
	struct rpcc_call *k = rpcc_lookup_from(c, xid, from);

	if (!k)
		return;
	rpcc_unlink(c, k);
	rpcc_finish_err(k, err);
}

static int rpcc_accept_err(rpcm_accept_stat s)
{
	switch (s) {
	case RPCM_SUCCESS:       return 0;
	case RPCM_PROG_UNAVAIL:  return RPCC_ERR_PROG_UNAVAIL;
	case RPCM_PROG_MISMATCH: return RPCC_ERR_PROG_MISMATCH;
	case RPCM_PROC_UNAVAIL:  return RPCC_ERR_PROC_UNAVAIL;
	case RPCM_GARBAGE_ARGS:  return RPCC_ERR_GARBAGE_ARGS;
	case RPCM_SYSTEM_ERR:    return RPCC_ERR_SYSTEM_ERR;
	default:                 return RPCC_ERR_BAD_REPLY;
	}
}

/* One complete reply record, from @from (NULL: a connected socket).  May
 * run a callback (which may close @c). */
static void rpcc_handle_record(struct rpcc_clnt *c, const uint8_t *rec, size_t len,
			       const struct sockaddr *from)
{
	struct rpcc_reply rep = { 0 };
	struct rpcc_call *k;
	rpcm_msg m;
	XDR x;

	if (len < 8 || len > UINT32_MAX)
		return;
	memset(&m, 0, sizeof(m));
	xdrmem_create(&x, (char *)rec, (u_int)len, XDR_DECODE);
	if (!xdr_rpcm_msg(&x, &m)) {
		uint32_t xid;

		/* A reply we cannot parse still names its call. */
		memcpy(&xid, rec, 4);
		xdr_free((xdrproc_t)xdr_rpcm_msg, (char *)&m);
		rpcc_fail_xid(c, ntohl(xid), from, RPCC_ERR_BAD_REPLY);
		return;
	}
	if (m.body.mtype != RPCM_REPLY)
		goto out; /* a call, not a reply: not ours to answer */
	k = rpcc_lookup_from(c, m.xid, from);
	if (!k)
		goto out; /* late duplicate, reply to a one-way call, or stray */
	rpcc_unlink(c, k);
	rep.xid = k->xid;
	rep.retransmits = k->tx_count ? k->tx_count - 1 : 0;

	const rpcm_reply_body *rb = &m.body.rpcm_body_u.rbody;
	if (rb->stat == RPCM_MSG_ACCEPTED) {
		const rpcm_accepted_reply_data *d = &rb->rpcm_reply_body_u.areply.reply_data;

		rep.err = rpcc_accept_err(d->stat);
		if (d->stat == RPCM_PROG_MISMATCH) {
			rep.low = d->rpcm_accepted_reply_data_u.mismatch_info.low;
			rep.high = d->rpcm_accepted_reply_data_u.mismatch_info.high;
		}
	} else {
		const rpcm_rejected_reply *r = &rb->rpcm_reply_body_u.rreply;

		if (r->stat == RPCM_RPC_MISMATCH) {
			rep.err = RPCC_ERR_RPC_MISMATCH;
			rep.low = r->rpcm_rejected_reply_u.mismatch_info.low;
			rep.high = r->rpcm_rejected_reply_u.mismatch_info.high;
		} else {
			rep.err = RPCC_ERR_AUTH_ERROR;
			rep.auth_stat = r->rpcm_rejected_reply_u.auth_stat;
		}
	}
	if (rep.err == 0 && k->xdr_res) {
		rep.res = rpcc_res_storage(c, k, k->res_size ? k->res_size : 1);
		if (!rep.res) {
			rep.err = -ENOMEM;
		} else if (!k->xdr_res(&x, rep.res)) {
			xdr_free(k->xdr_res, rep.res);
			if (rep.res != k->room)
				free(rep.res);
			rep.res = NULL;
			rep.err = RPCC_ERR_BAD_REPLY;
		}
	}
	k->cb(&rep, k->arg);
	if (rep.res) {
		xdr_free(k->xdr_res, rep.res);
		if (rep.res != k->room)
			free(rep.res);
	}
	rpcc_call_free(k);
out:
	xdr_free((xdrproc_t)xdr_rpcm_msg, (char *)&m);
}

/* ---- UDP ----------------------------------------------------------------- */

struct rpcc_usend {
	uv_udp_send_t req;
	uint8_t *buf;
};

static void rpcc_usend_cb(uv_udp_send_t *r, int status)
{
	struct rpcc_usend *s = (struct rpcc_usend *)r;

	free(s->buf);
	free(s);
}

/* Fail every waiting call with @err, from the timer (never inside rpcc_call). */
static void rpcc_fail_soon(struct rpcc_clnt *c, int err)
{
	c->fail_err = err;
	rpcc_timer_want(c, uv_now(c->loop));
}

static void rpcc_refused(struct rpcc_clnt *c)
{
	rpcc_fail_soon(c, -ECONNREFUSED);
}

/* Transmit @k once.  Errors are not fatal: a lost datagram is retransmitted. */
static void rpcc_udp_tx(struct rpcc_clnt *c, struct rpcc_call *k)
{
	uv_buf_t b = uv_buf_init((char *)k->msg + RPCC_MARK_LEN, (unsigned)k->len);
	const struct sockaddr *dest = c->dgram ? (const struct sockaddr *)&k->dest : NULL;
	struct rpcc_usend *s;
	int n;

	k->tx_count++;
	n = uv_udp_try_send(&c->udp, &b, 1, dest);
	if (n >= 0)
		return;
	if (n == UV_ECONNREFUSED && !c->dgram) {
		rpcc_refused(c);
		return;
	}
	if (n != UV_EAGAIN && n != UV_ENOBUFS)
		return;
	/* The socket buffer is full: queue a copy, since the call may be
	 * answered (and freed) before the send completes. */
	s = malloc(sizeof(*s));
	if (!s)
		return;
	s->buf = malloc(k->len);
	if (!s->buf) {
		free(s);
		return;
	}
	memcpy(s->buf, b.base, k->len);
	b.base = (char *)s->buf;
	if (uv_udp_send(&s->req, &c->udp, &b, 1, dest, rpcc_usend_cb) != 0) {
		free(s->buf);
		free(s);
	}
}

static void rpcc_udp_recv_cb(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
			     const struct sockaddr *addr, unsigned flags)
{
	struct rpcc_clnt *c = u->data;

	/* Only a connected socket hears of ICMP errors; on a datagram
	 * handle an error could not be pinned on one server's calls. */
	if (nread == UV_ECONNREFUSED && !c->closing && !c->dgram)
		rpcc_refused(c);
	if (nread >= 8 && !c->closing) {
		const struct sockaddr *from = c->dgram ? addr : NULL;

		if ((flags & UV_UDP_PARTIAL) || (size_t)nread > c->max_reply) {
			uint32_t xid;
			memcpy(&xid, buf->base, 4);
			rpcc_fail_xid(c, ntohl(xid), from, -EMSGSIZE);
		} else {
			rpcc_handle_record(c, (const uint8_t *)buf->base, (size_t)nread, from);
		}
	}
	rpcc_release(buf);
}

/* ---- TCP ----------------------------------------------------------------- */

static void rpcc_conn_closed_cb(uv_handle_t *h)
{
	struct rpcc_conn *k = h->data;

	rm_fini(&k->rm);
	free(k);
}

/* Detach and close the current connection without touching any call. */
static void rpcc_conn_drop(struct rpcc_clnt *c)
{
	struct rpcc_conn *k = c->conn;

	if (!k)
		return;
	c->conn = NULL;
	k->c = NULL;
	uv_close((uv_handle_t *)&k->tcp, rpcc_conn_closed_cb);
}

/*
 * The connection failed or broke with @err (0 = orderly EOF).  Waiting calls
 * will be re-sent on the next connection, which is tried at once after a
 * working connection broke and with back-off after a failed attempt; a
 * refused connect fails every call instead (see the header).
 */
static void rpcc_conn_lost(struct rpcc_clnt *c, int err)
{
	bool was_connected = c->conn && c->conn->connected;
	uint64_t now = uv_now(c->loop);

	rpcc_conn_drop(c);
	for (struct rpcc_call *k = c->calls; k; k = k->next)
		k->sent = false;
	if (was_connected) {
		c->backoff = RPCC_RECONNECT_MIN;
		c->reconnect_at = now;
	} else {
		c->conn_err = err;
		c->reconnect_at = now + c->backoff;
		c->backoff = c->backoff * 2 > RPCC_RECONNECT_MAX ? RPCC_RECONNECT_MAX
								 : c->backoff * 2;
	}
	if (!was_connected && err == UV_ECONNREFUSED)
		rpcc_refused(c);
	else if (!was_connected && c->binding)
		rpcc_fail_soon(c, err); /* our own address is unusable: no retry helps */
	else if (c->calls)
		rpcc_timer_want(c, c->reconnect_at);
}

struct rpcc_wreq {
	uv_write_t req;
	struct rpcc_conn *k;
	uint8_t *buf;
};

static void rpcc_write_cb(uv_write_t *w, int status)
{
	struct rpcc_wreq *wr = (struct rpcc_wreq *)w;
	struct rpcc_conn *k = wr->k;

	free(wr->buf);
	free(wr);
	if (status < 0 && k->c && k->c->conn == k)
		rpcc_conn_lost(k->c, status);
}

/* Write @n calls, each as one record, on the connected @k with one writev.
 * 0 or -errno (then the connection is unusable: part of a record may be
 * out). */
static int rpcc_tcp_write(struct rpcc_conn *k, struct rpcc_call **calls, unsigned n)
{
	uv_buf_t b[RPCC_WRITEV_MAX];
	struct rpcc_wreq *wr;
	size_t total = 0, done = 0, o;
	int w;

	for (unsigned i = 0; i < n; i++) {
		struct rpcc_call *call = calls[i];

		rm_put_mark(call->msg, (uint32_t)call->len, true);
		b[i] = uv_buf_init((char *)call->msg, (unsigned)(call->len + RPCC_MARK_LEN));
		total += b[i].len;
		call->tx_count++;
		call->sent = true;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&k->tcp) == 0) {
		w = uv_try_write((uv_stream_t *)&k->tcp, b, n);
		if (w >= 0 && (size_t)w == total)
			return 0;
		if (w < 0 && w != UV_EAGAIN)
			return w;
		if (w > 0)
			done = (size_t)w;
	}
	/* Queue a copy of the rest: a call may complete (timeout, close)
	 * while the write is still queued. */
	wr = malloc(sizeof(*wr));
	if (!wr)
		return -ENOMEM;
	wr->buf = malloc(total - done);
	if (!wr->buf) {
		free(wr);
		return -ENOMEM;
	}
	o = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t skip = done < b[i].len ? done : b[i].len;

		done -= skip;
		memcpy(wr->buf + o, b[i].base + skip, b[i].len - skip);
		o += b[i].len - skip;
	}
	wr->k = k;
	b[0] = uv_buf_init((char *)wr->buf, (unsigned)o);
	w = uv_write(&wr->req, (uv_stream_t *)&k->tcp, b, 1, rpcc_write_cb);
	if (w != 0) {
		free(wr->buf);
		free(wr);
		return w;
	}
	return 0;
}

/* Send every call not yet written on the current connection, in order,
 * RPCC_WRITEV_MAX to a write. */
static void rpcc_tcp_flush(struct rpcc_clnt *c)
{
	struct rpcc_conn *k = c->conn;
	struct rpcc_call *batch[RPCC_WRITEV_MAX], *call;
	unsigned n;
	int rc;

	if (!k || !k->connected)
		return;
	call = c->calls;
	while (call && c->conn == k) {
		n = 0;
		for (; call && n < RPCC_WRITEV_MAX; call = call->next)
			if (!call->sent)
				batch[n++] = call;
		if (n == 0)
			break;
		rc = rpcc_tcp_write(k, batch, n);
		if (rc < 0) {
			rpcc_conn_lost(c, rc);
			return;
		}
		/* Written: one-way messages are done.  @call (the next to
		 * look at) is not among them. */
		for (unsigned i = 0; i < n; i++) {
			if (batch[i]->oneway) {
				rpcc_unlink(c, batch[i]);
				rpcc_call_free(batch[i]);
			}
		}
	}
}

static void rpcc_flush_cb(struct rpcc_clnt *c)
{
	uv_prepare_stop(&c->flush_prep);
	uv_check_stop(&c->flush_chk);
	c->flush_armed = false;
	if (!c->closing)
		rpcc_tcp_flush(c);
}

static void rpcc_flush_prep_cb(uv_prepare_t *h)
{
	rpcc_flush_cb(h->data);
}

static void rpcc_flush_chk_cb(uv_check_t *h)
{
	rpcc_flush_cb(h->data);
}

/* Have the unsent calls written at the end of this loop turn. */
static void rpcc_flush_soon(struct rpcc_clnt *c)
{
	if (c->flush_armed || c->closing)
		return;
	c->flush_armed = true;
	uv_prepare_start(&c->flush_prep, rpcc_flush_prep_cb);
	uv_check_start(&c->flush_chk, rpcc_flush_chk_cb);
}

static void rpcc_conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void rpcc_connect_cb(uv_connect_t *req, int status)
{
	struct rpcc_conn *k = req->data;
	struct rpcc_clnt *c = k->c;

	if (!c)
		return; /* detached while connecting; the close callback frees k */
	if (status < 0) {
		rpcc_conn_lost(c, status);
		return;
	}
	k->connected = true;
	c->backoff = RPCC_RECONNECT_MIN;
	c->conn_err = 0;
	uv_tcp_nodelay(&k->tcp, 1);
	status = uv_read_start((uv_stream_t *)&k->tcp, rpcc_alloc, rpcc_conn_read_cb);
	if (status < 0) {
		rpcc_conn_lost(c, status);
		return;
	}
	rpcc_tcp_flush(c);
}

static void rpcc_tcp_connect(struct rpcc_clnt *c)
{
	struct rpcc_conn *k = calloc(1, sizeof(*k));
	int rc;

	if (!k) {
		c->conn_err = -ENOMEM;
		c->reconnect_at = uv_now(c->loop) + c->backoff;
		rpcc_timer_want(c, c->reconnect_at);
		return;
	}
	rm_init(&k->rm, c->max_reply, RM_OVERSIZE_SKIP);
	uv_tcp_init(c->loop, &k->tcp);
	k->tcp.data = k;
	k->creq.data = k;
	k->c = c;
	c->conn = k;
	rc = 0;
	if (c->has_local) {
		rc = uv_tcp_bind(&k->tcp, (const struct sockaddr *)&c->local, 0);
		if (rc != 0) {
			c->binding = true;
			rpcc_conn_lost(c, rc);
			c->binding = false;
			return;
		}
	}
	rc = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&c->server,
			    rpcc_connect_cb);
	if (rc != 0)
		rpcc_conn_lost(c, rc);
}

/* One whole reply record from the parser; an oversized one (only its
 * first bytes, the xid, kept) fails just its call.  Stops the feed once the
 * connection is detached from its client. */
static int rpcc_conn_record(void *arg, const uint8_t *rec, size_t len, bool oversize)
{
	struct rpcc_conn *k = arg;
	uint32_t xid;

	if (!k->c)
		return 1;
	if (oversize) {
		if (len >= 4) {
			memcpy(&xid, rec, 4);
			rpcc_fail_xid(k->c, ntohl(xid), NULL, -EMSGSIZE);
		}
	} else {
		rpcc_handle_record(k->c, rec, len, NULL);
	}
	return k->c ? 0 : 1;
}

static void rpcc_conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rpcc_conn *k = s->data;
	int rc = 0;

	if (nread < 0 && k->c)
		rpcc_conn_lost(k->c, nread == UV_EOF ? 0 : (int)nread);
	else if (nread > 0 && k->c)
		rc = rm_feed(&k->rm, (const uint8_t *)buf->base, (size_t)nread,
			     rpcc_conn_record, k);
	if (rc < 0 && k->c)
		rpcc_conn_lost(k->c, rc);
	rpcc_release(buf);
}

/* ---- the timer: retransmit, expire, reconnect -------------------------- */

static void rpcc_timer_cb(uv_timer_t *t)
{
	struct rpcc_clnt *c = t->data;
	uint64_t now = uv_now(c->loop);
	struct rpcc_call *expired = NULL, **etail = &expired, *k, *next;

	c->timer_due = RPCC_NEVER;
	if (c->fail_err) {
		int err = c->fail_err;

		c->fail_err = 0;
		c->conn_err = 0;
		if (c->transport == RPCC_TCP)
			rpcc_conn_drop(c);
		rpcc_finish_list(rpcc_steal_all(c), err);
		if (c->closing)
			return;
		rpcc_timer_rearm(c);
		return;
	}
	for (k = c->calls; k; k = next) {
		next = k->next;
		if (now >= k->deadline) {
			rpcc_unlink(c, k);
			*etail = k;
			etail = &k->next;
			continue;
		}
		if (c->transport == RPCC_UDP && now >= k->next_tx) {
			k->rto = k->rto * 2 > k->rto_max ? k->rto_max : k->rto * 2;
			k->next_tx = now + k->rto;
			rpcc_udp_tx(c, k);
		}
	}
	if (c->transport == RPCC_TCP && !c->conn && c->calls && now >= c->reconnect_at)
		rpcc_tcp_connect(c);
	if (!c->fail_err)
		rpcc_timer_rearm(c);
	/* Callbacks last: they may add calls or close the handle. */
	while (expired) {
		int err = -ETIMEDOUT;

		k = expired;
		expired = k->next;
		k->next = NULL;
		if (c->transport == RPCC_TCP && !k->sent && c->conn_err < 0)
			err = c->conn_err; /* never got through: say why */
		rpcc_finish_err(k, err);
	}
}

/* ---- handles ------------------------------------------------------------- */

static void rpcc_handle_closed_cb(uv_handle_t *h)
{
	struct rpcc_clnt *c = h->data;

	if (--c->handles_open > 0)
		return;
	free(c->hdr);
	free(c);
}

static int rpcc_probe_bind(const struct sockaddr_storage *local)
{
	int fd = socket(local->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)local, rpcc_salen((const struct sockaddr *)local)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static uint32_t rpcc_pick(uint32_t v, uint32_t dflt)
{
	return v ? v : dflt;
}

/* rpcc_new, or with @dgram a datagram handle (o->server NULL, o->local
 * required: its family is the socket's). */
static int rpcc_new_any(uv_loop_t *loop, const struct rpcc_opts *o, bool dgram,
			struct rpcc_clnt **out)
{
	struct rpcc_clnt *c;
	int rc;

	if (dgram) {
		if (!o->local || (o->local->sa_family != AF_INET &&
				  o->local->sa_family != AF_INET6))
			return -EAFNOSUPPORT;
	} else {
		if (!o->server || (o->server->sa_family != AF_INET &&
				   o->server->sa_family != AF_INET6))
			return -EAFNOSUPPORT;
		if (o->local && o->local->sa_family != o->server->sa_family)
			return -EAFNOSUPPORT;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->dgram = dgram;
	if (!dgram)
		memcpy(&c->server, o->server, rpcc_salen(o->server));
	if (o->local) {
		memcpy(&c->local, o->local, rpcc_salen(o->local));
		c->has_local = true;
	}
	c->prog = o->prog;
	c->vers = o->vers;
	c->transport = o->transport;
	c->defto.retrans_ms = rpcc_pick(o->timeout.retrans_ms, RPCC_DEF_RETRANS);
	c->defto.retrans_max_ms = rpcc_pick(o->timeout.retrans_max_ms, RPCC_DEF_RETRANS_MAX);
	c->defto.total_ms = rpcc_pick(o->timeout.total_ms, RPCC_DEF_TOTAL);
	c->max_reply = rpcc_pick(o->max_reply, RPCC_DEF_MAX_REPLY);
	if (c->max_reply > RM_LEN_MASK)
		c->max_reply = RM_LEN_MASK;
	c->backoff = RPCC_RECONNECT_MIN;
	c->timer_due = RPCC_NEVER;
	/* Start xids somewhere unpredictable so a restarted client's calls are
	 * not taken for retransmissions by a server's duplicate cache. */
	c->next_xid = (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)c);
	rc = rpcc_build_header(c, o->auth);
	if (rc < 0) {
		free(c);
		return rc;
	}

	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 1;
	if (c->transport == RPCC_UDP) {
		uv_udp_init(loop, &c->udp);
		c->udp.data = c;
		c->handles_open++;
		rc = 0;
		if (c->has_local)
			rc = uv_udp_bind(&c->udp, (const struct sockaddr *)&c->local, 0);
		/* Connected: the kernel drops datagrams from anyone but the
		 * server and reports ICMP port unreachable to us.  A datagram
		 * handle stays unconnected and filters replies itself
		 * (rpcc_lookup_from). */
		if (rc == 0 && !dgram)
			rc = uv_udp_connect(&c->udp, (const struct sockaddr *)&c->server);
		if (rc == 0)
			rc = uv_udp_recv_start(&c->udp, rpcc_alloc, rpcc_udp_recv_cb);
		if (rc != 0) {
			rpcc_close(c);
			return rc;
		}
	} else if (c->transport != RPCC_TCP) {
		rpcc_close(c);
		return -EINVAL;
	} else {
		uv_prepare_init(loop, &c->flush_prep);
		uv_check_init(loop, &c->flush_chk);
		c->flush_prep.data = c->flush_chk.data = c;
		c->handles_open += 2;
	}
	if (c->transport == RPCC_TCP && c->has_local) {
		/* TCP binds when it connects; try the address now so a bad one
		 * is reported here, as for UDP */
		rc = rpcc_probe_bind(&c->local);
		if (rc < 0) {
			rpcc_close(c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

int rpcc_new(uv_loop_t *loop, const struct rpcc_opts *o, struct rpcc_clnt **out)
{
	return rpcc_new_any(loop, o, false, out);
}

int rpcc_new_dgram(uv_loop_t *loop, const struct sockaddr *local,
		   const struct rpcc_timeout *to, struct rpcc_clnt **out)
{
	struct rpcc_opts o = { .local = local, .transport = RPCC_UDP };

	if (to)
		o.timeout = *to;
	return rpcc_new_any(loop, &o, true, out);
}

void rpcc_close(struct rpcc_clnt *c)
{
	if (!c || c->closing)
		return;
	/* What was called in this turn would have been written at once
	 * before calls were batched: a one-way message sent just before the
	 * close still goes out. */
	if (c->transport == RPCC_TCP)
		rpcc_tcp_flush(c);
	c->closing = true;
	rpcc_conn_drop(c);
	rpcc_finish_list(rpcc_steal_all(c), -ECANCELED);
	rpcc_kept_free(c, 0);
	uv_close((uv_handle_t *)&c->timer, rpcc_handle_closed_cb);
	if (c->transport == RPCC_UDP)
		uv_close((uv_handle_t *)&c->udp, rpcc_handle_closed_cb);
	if (c->transport == RPCC_TCP) {
		uv_close((uv_handle_t *)&c->flush_prep, rpcc_handle_closed_cb);
		uv_close((uv_handle_t *)&c->flush_chk, rpcc_handle_closed_cb);
	}
}

unsigned rpcc_outstanding(const struct rpcc_clnt *c)
{
	return c->nwaiting;
}

const struct sockaddr *rpcc_server(const struct rpcc_clnt *c)
{
	return (const struct sockaddr *)&c->server;
}

/* Queue @k (already encoded) and transmit it if the transport is ready. */
static void rpcc_submit(struct rpcc_clnt *c, struct rpcc_call *k)
{
	rpcc_link(c, k);
	if (c->transport == RPCC_UDP) {
		rpcc_udp_tx(c, k);
		if (k->oneway) {
			/* Sent (or lost, like any datagram): nothing to wait for. */
			rpcc_unlink(c, k);
			rpcc_call_free(k);
			return;
		}
	} else if (c->conn && c->conn->connected) {
		rpcc_flush_soon(c); /* frees a one-way message once written */
	} else if (!c->conn && uv_now(c->loop) >= c->reconnect_at) {
		rpcc_tcp_connect(c);
	}
	rpcc_timer_want(c, k->next_tx < k->deadline ? k->next_tx : k->deadline);
	if (c->transport == RPCC_TCP && !c->conn)
		rpcc_timer_want(c, c->reconnect_at);
}

/* The rest of a call of @k (encoded): its timers, then out it goes. */
static void rpcc_start(struct rpcc_clnt *c, struct rpcc_call *k, xdrproc_t xdr_res,
		       size_t res_size, const struct rpcc_timeout *to, rpcc_cb cb, void *arg)
{
	uint64_t now;

	k->xdr_res = xdr_res;
	k->res_size = res_size;
	k->cb = cb;
	k->arg = arg;
	now = uv_now(c->loop);
	k->deadline = now + rpcc_pick(to ? to->total_ms : 0, c->defto.total_ms);
	k->next_tx = RPCC_NEVER;
	if (c->transport == RPCC_UDP) {
		k->rto = rpcc_pick(to ? to->retrans_ms : 0, c->defto.retrans_ms);
		k->rto_max = rpcc_pick(to ? to->retrans_max_ms : 0, c->defto.retrans_max_ms);
		if (k->rto_max < k->rto)
			k->rto_max = k->rto;
		k->next_tx = now + k->rto;
	}
	rpcc_submit(c, k);
}

int rpcc_call(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xdr_args,
	      const void *args, xdrproc_t xdr_res, size_t res_size,
	      const struct rpcc_timeout *to, rpcc_cb cb, void *arg)
{
	struct rpcc_call *k;
	int rc;

	if (c->closing)
		return -ESHUTDOWN;
	if (!cb)
		return -EINVAL;
	if (c->dgram)
		return -EDESTADDRREQ;
	rc = rpcc_encode(c, proc, xdr_args, args, &k);
	if (rc < 0)
		return rc;
	rpcc_start(c, k, xdr_res, res_size, to, cb, arg);
	return 0;
}

int rpcc_call_to(struct rpcc_clnt *c, const struct sockaddr *server, uint32_t prog,
		 uint32_t vers, uint32_t proc, xdrproc_t xdr_args, const void *args,
		 xdrproc_t xdr_res, size_t res_size, const struct rpcc_timeout *to,
		 rpcc_cb cb, void *arg, uint32_t *xid)
{
	struct rpcc_call *k;
	int rc;

	if (c->closing)
		return -ESHUTDOWN;
	if (!cb || !c->dgram)
		return -EINVAL;
	if (!server || server->sa_family != c->local.ss_family)
		return -EAFNOSUPPORT;
	rc = rpcc_encode(c, proc, xdr_args, args, &k);
	if (rc < 0)
		return rc;
	/* The handle's header has program and version 0: this call's go in
	 * after the xid, the message type and the RPC version. */
	rpcc_put32(k->msg + RPCC_MARK_LEN + RPCC_PROG_OFF, prog);
	rpcc_put32(k->msg + RPCC_MARK_LEN + RPCC_PROG_OFF + 4, vers);
	memset(&k->dest, 0, sizeof(k->dest));
	memcpy(&k->dest, server, rpcc_salen(server));
	if (xid)
		*xid = k->xid;
	rpcc_start(c, k, xdr_res, res_size, to, cb, arg);
	return 0;
}

void rpcc_cancel(struct rpcc_clnt *c, uint32_t xid)
{
	struct rpcc_call *k = rpcc_lookup(c, xid);

	if (!k)
		return;
	rpcc_unlink(c, k);
	rpcc_finish_err(k, -ECANCELED);
}

int rpcc_send(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xdr_args, const void *args)
{
	struct rpcc_call *k;
	int rc;

	if (c->closing)
		return -ESHUTDOWN;
	if (c->dgram)
		return -EDESTADDRREQ;
	rc = rpcc_encode(c, proc, xdr_args, args, &k);
	if (rc < 0)
		return rc;
	k->oneway = true;
	k->deadline = uv_now(c->loop) + c->defto.total_ms;
	k->next_tx = RPCC_NEVER;
	rpcc_submit(c, k);
	return 0;
}

/* ---- PORTMAP GETPORT ------------------------------------------------------ */

struct rpcc_getport_on_ctx {
	rpcc_port_cb cb;
	void *arg;
};

static void rpcc_getport_on_done(const struct rpcc_reply *rep, void *arg)
{
	struct rpcc_getport_on_ctx g = *(struct rpcc_getport_on_ctx *)arg;
	int err = rep->err;
	uint32_t port = 0;

	free(arg);
	if (err == 0) {
		port = *(const u_int *)rep->res;
		if (port == 0)
			err = -ENOENT;
		else if (port > 65535)
			err = RPCC_ERR_BAD_REPLY;
	}
	g.cb(err, err == 0 ? (uint16_t)port : 0, g.arg);
}

/* GETPORT on @pmap: to its server, or (@host not NULL) to @host's
 * portmapper through a datagram handle. */
static int rpcc_getport_any(struct rpcc_clnt *pmap, const struct sockaddr *host, uint32_t prog,
			    uint32_t vers, uint32_t prot, const struct rpcc_timeout *to,
			    rpcc_port_cb cb, void *arg, uint32_t *xid)
{
	struct rpcc_getport_on_ctx *g = malloc(sizeof(*g));
	pmap_mapping m = { .prog = prog, .vers = vers, .prot = prot, .port = 0 };
	int rc;

	if (!g)
		return -ENOMEM;
	g->cb = cb;
	g->arg = arg;
	if (host)
		rc = rpcc_call_to(pmap, host, SG_PMAP_PROG, SG_PMAP_VERS, PMAP2PROC_GETPORT,
				  (xdrproc_t)xdr_pmap_mapping, &m, (xdrproc_t)xdr_u_int,
				  sizeof(u_int), to, rpcc_getport_on_done, g, xid);
	else
		rc = rpcc_call(pmap, PMAP2PROC_GETPORT, (xdrproc_t)xdr_pmap_mapping, &m,
			       (xdrproc_t)xdr_u_int, sizeof(u_int), to, rpcc_getport_on_done, g);
	if (rc < 0)
		free(g);
	return rc;
}

int rpcc_getport_on(struct rpcc_clnt *pmap, uint32_t prog, uint32_t vers,
		    uint32_t prot, const struct rpcc_timeout *to,
		    rpcc_port_cb cb, void *arg)
{
	return rpcc_getport_any(pmap, NULL, prog, vers, prot, to, cb, arg, NULL);
}

/* @host's portmapper: @host with port 111 unless it carries one, into
 * *@pm; -EAFNOSUPPORT for a family other than IPv4 and IPv6. */
static int rpcc_pmap_addr(const struct sockaddr *host, struct sockaddr_storage *pm)
{
	if (!host || (host->sa_family != AF_INET && host->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	memset(pm, 0, sizeof(*pm));
	memcpy(pm, host, rpcc_salen(host));
	if (sa_port(pm) == 0)
		sa_set_port(pm, PMAP_PORT);
	return 0;
}

int rpcc_getport_to(struct rpcc_clnt *dg, const struct sockaddr *host, uint32_t prog,
		    uint32_t vers, uint32_t prot, const struct rpcc_timeout *to,
		    rpcc_port_cb cb, void *arg, uint32_t *xid)
{
	struct sockaddr_storage pm;

	if (rpcc_pmap_addr(host, &pm) < 0)
		return -EAFNOSUPPORT;
	return rpcc_getport_any(dg, (const struct sockaddr *)&pm, prog, vers, prot, to, cb, arg,
				xid);
}

struct rpcc_getport_req {
	struct rpcc_clnt *c;
	rpcc_port_cb cb;
	void *arg;
};

static void rpcc_getport_done(int err, uint16_t port, void *arg)
{
	struct rpcc_getport_req *r = arg;

	r->cb(err, port, r->arg);
	rpcc_close(r->c);
	free(r);
}

int rpcc_getport(uv_loop_t *loop, const struct sockaddr *host,
		 const struct sockaddr *local, uint32_t prog, uint32_t vers,
		 uint32_t prot, const struct rpcc_timeout *to, rpcc_port_cb cb,
		 void *arg, struct rpcc_getport_req **req)
{
	struct sockaddr_storage pm;
	struct rpcc_opts o = { 0 };
	struct rpcc_getport_req *r;
	int rc;

	if (rpcc_pmap_addr(host, &pm) < 0)
		return -EAFNOSUPPORT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cb = cb;
	r->arg = arg;
	o.server = (const struct sockaddr *)&pm;
	o.local = local;
	o.prog = SG_PMAP_PROG;
	o.vers = SG_PMAP_VERS;
	o.transport = RPCC_UDP;
	rc = rpcc_new(loop, &o, &r->c);
	if (rc < 0)
		goto out_free;
	rc = rpcc_getport_on(r->c, prog, vers, prot, to, rpcc_getport_done, r);
	if (rc < 0) {
		rpcc_close(r->c);
		goto out_free;
	}
	if (req)
		*req = r;
	return 0;
out_free:
	free(r);
	return rc;
}

void rpcc_getport_cancel(struct rpcc_getport_req *req)
{
	rpcc_close(req->c); /* completes the call with -ECANCELED, which frees req */
}
