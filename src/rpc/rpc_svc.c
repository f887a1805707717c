/*
 * rpc_svc.c - ONC RPC call dispatch (RFC 5531).
 *
 * A record (one UDP datagram or one reassembled TCP record) is decoded as an
 * RPC call header with the rpcgen routines from rpcmsg.x, its credentials are
 * checked, the program/version/procedure is found in the registered tables
 * and the arguments decoded.  Every failure gets the reply RFC 5531 names:
 *
 *   rpcvers != 2                    MSG_DENIED  RPC_MISMATCH (2..2)
 *   bad/oversized credential        MSG_DENIED  AUTH_ERROR   AUTH_BADCRED
 *   verifier not AUTH_NONE/empty    MSG_DENIED  AUTH_ERROR   AUTH_BADVERF
 *   unknown flavor                  MSG_DENIED  AUTH_ERROR   AUTH_BADCRED
 *   program not served              PROG_UNAVAIL
 *   version outside the table       PROG_MISMATCH (lo..hi of the program)
 *   procedure not in the table      PROC_UNAVAIL
 *   arguments do not decode         GARBAGE_ARGS
 *   handler failure / reply too big SYSTEM_ERR
 *
 * A record too short to hold a call header, or that is a REPLY, cannot be
 * answered; it is dropped (and on TCP the connection closed, since a client
 * that sends it is not speaking RPC).
 *
 * Hazards: the header decoder allocates the credential and verifier bodies
 * (each bounded at 400 bytes by rpcmsg.x); they are freed before the handler
 * runs.  Argument decoders are bounded by their .x limits and the record cap.
 */
#include "rpc_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "log.h"
#include "rpcmsg.h"
#include "saddr.h"
#include "tbucket.h"

int rpc_svc_new(uv_loop_t *loop, const struct rpc_limits *lim, struct rpc_svc **out)
{
	struct rpc_svc *svc = calloc(1, sizeof(*svc));

	if (!svc)
		return -ENOMEM;
	svc->loop = loop;
	svc->lim = *lim;
	slab_init(&svc->blocks[0], RPCS_BLOCK_SMALL, RPCS_SMALL_KEEP);
	slab_init(&svc->blocks[1], RPCS_BLOCK_SIZE, RPCS_BIG_KEEP);
	if (svc->lim.max_record < 1024)
		svc->lim.max_record = 1024;
	if (svc->lim.max_conns_per_host == 0 || svc->lim.max_conns_per_host > svc->lim.max_conns)
		svc->lim.max_conns_per_host = svc->lim.max_conns;
	if (svc->lim.max_queued_per_ctx == 0)
		svc->lim.max_queued_per_ctx = 256;
	if (svc->lim.max_queued_per_host == 0)
		svc->lim.max_queued_per_host = svc->lim.max_queued_per_ctx;
	struct rpc_drc_limits dl = {
		.max_entries = lim->drc_entries,
		.max_per_host = lim->drc_entries_per_host,
		.ttl_ms = lim->drc_ttl_ms ? lim->drc_ttl_ms : 120000,
	};
	if (rpc_drc_new(&dl, &svc->drc) < 0) {
		free(svc);
		return -ENOMEM;
	}
	pthread_mutex_init(&svc->udp_tx_mu, NULL);
	*out = svc;
	return 0;
}

void rpc_svc_free(struct rpc_svc *svc)
{
	while (svc->udp_paused)
		rpcs_udp_unpause(svc->udp_paused);
	while (svc->fqs) {
		struct rpcx_fq *q = svc->fqs;
		svc->fqs = q->next;
		free(q);
	}
	for (size_t i = 0; i < RPC_HOST_BUCKETS; i++) {
		while (svc->hosts[i]) {
			struct rpcx_host *h = svc->hosts[i];
			svc->hosts[i] = h->next;
			free(h);
		}
	}
	for (size_t c = 0; c < RPCS_NCLASS; c++)
		slab_fini(&svc->blocks[c]);
	free(svc->scratch);
	/* Its memory goes when the loop runs the close (rpc.h). */
	wq_chan_close(svc->pool);
	rpc_drc_free(svc->drc);
	pthread_mutex_destroy(&svc->udp_tx_mu);
	free(svc);
}

void rpc_svc_drc_stats(const struct rpc_svc *svc, struct rpc_drc_stats *out)
{
	rpc_drc_stats(svc->drc, out);
}

uint64_t rpc_svc_input_count(const struct rpc_svc *svc, uint64_t *switches)
{
	*switches = svc->input_switches;
	return svc->input;
}

uint64_t rpc_svc_udp_dropped(const struct rpc_svc *svc)
{
	return svc->udp_dropped;
}

uint64_t rpc_svc_udp_dropped_host(const struct rpc_svc *svc)
{
	return svc->udp_dropped_host;
}

void rpc_svc_ctx_queue(const struct rpc_svc *svc, const void *ctx, uint32_t *queued, uint32_t *jobs)
{
	const struct rpcx_fq *q;

	for (q = svc->fqs; q && q->ctx != ctx; q = q->next)
		;
	*queued = q ? q->queued : 0;
	*jobs = q ? q->inflight : 0;
}

void rpc_svc_limit_stats(const struct rpc_svc *svc, uint64_t *refused, uint64_t *evicted)
{
	if (refused)
		*refused = svc->refused;
	if (evicted)
		*evicted = svc->evicted;
}

void rpc_svc_budget_stats(const struct rpc_svc *svc, uint64_t *held, uint64_t *stops_host,
			  uint64_t *stops_node)
{
	*held = svc->held;
	*stops_host = svc->budget_stops_host;
	*stops_node = svc->budget_stops_node;
}

int rpc_svc_register(struct rpc_svc *svc, const struct rpc_prog *prog)
{
	if (svc->nprogs == RPC_MAX_PROGS)
		return -ENOSPC;
	for (size_t i = 0; i < svc->nprogs; i++)
		if (svc->progs[i]->prog == prog->prog)
			return -EEXIST;
	svc->progs[svc->nprogs++] = prog;
	return 0;
}

uv_loop_t *rpc_svc_loop(struct rpc_svc *svc)
{
	return svc->loop;
}

void rpc_svc_stats(const struct rpc_svc *svc, uint64_t *calls, uint64_t *conns)
{
	if (calls)
		*calls = svc->ncalls;
	if (conns)
		*conns = svc->nconns;
}

/* ---- replies ---------------------------------------------------------- */

/* A first guess at a reply's size: most replies fit, and one that does not
 * is sized exactly (xdr_sizeof) and encoded again. */
#define RPCS_REPLY_GUESS 1024u

/* Encode @msg, then @xdr_res/@res if given, into @len bytes at @buf.
 * Returns the encoded length, or 0 if it did not fit or did not encode. */
static size_t rpcs_encode(uint8_t *buf, size_t len, rpcm_msg *msg,
			  xdrproc_t xdr_res, void *res)
{
	size_t n = 0;
	XDR x;

	xdrmem_create(&x, (char *)buf, (u_int)len, XDR_ENCODE);
	if (xdr_rpcm_msg(&x, msg) && (!xdr_res || xdr_res(&x, res)))
		n = xdr_getpos(&x);
	xdr_destroy(&x);
	return n;
}

/* The exact encoded size of a reply, or 0 if it cannot be encoded. */
static size_t rpcs_reply_size(rpcm_msg *msg, xdrproc_t xdr_res, void *res)
{
	unsigned long hlen = xdr_sizeof((xdrproc_t)xdr_rpcm_msg, msg);
	unsigned long rlen = xdr_res ? xdr_sizeof(xdr_res, res) : 0;

	/* rlen 0 is a void result; a failing sizer also shows up as 0 and
	 * then fails the encode. */
	return hlen ? hlen + rlen : 0;
}

/*
 * Encode a reply header (and optionally results) and hand it to the
 * transport: on TCP straight into the connection's output (sent at the end
 * of the loop turn), on UDP into the service's datagram buffer.  @msg is
 * the reply header; @xdr_res/@res follow it when the call succeeded.
 */
static int rpcs_send_reply(struct rpc_listener *lsn, struct rpc_conn *conn,
			   const struct sockaddr_storage *peer, rpcm_msg *msg,
			   xdrproc_t xdr_res, void *res)
{
	size_t n, want = RPCS_REPLY_GUESS, room;
	uint8_t *buf;

	if (!conn) {
		n = rpcs_encode(lsn->svc->udpbuf, sizeof(lsn->svc->udpbuf), msg, xdr_res, res);
		if (n == 0) {
			size_t size = rpcs_reply_size(msg, xdr_res, res);
			return size > RPC_UDP_MAX_REPLY ? -EMSGSIZE : -EINVAL;
		}
		rpcx_udp_send(lsn, peer, lsn->svc->udpbuf, n);
		return 0;
	}
	if (conn->closing)
		return 0; /* dropped, as every reply to a closed connection */
	for (int pass = 0; pass < 2; pass++) {
		buf = rpcx_out_reserve(conn, want, &room);
		if (!buf)
			return -ENOMEM;
		n = rpcs_encode(buf, room, msg, xdr_res, res);
		if (n) {
			rpcx_out_commit(conn, n);
			return 0;
		}
		if (pass == 0) {
			want = rpcs_reply_size(msg, xdr_res, res);
			if (want == 0 || want <= room)
				break; /* it fitted: the encoder itself failed */
		}
	}
	return -EINVAL;
}

/* Send @len bytes of an encoded reply (a cached one) like rpcs_send_reply. */
static int rpcs_send_bytes(struct rpc_listener *lsn, struct rpc_conn *conn,
			   const struct sockaddr_storage *peer, const uint8_t *p, size_t len)
{
	size_t room;
	uint8_t *buf;

	if (!conn) {
		rpcx_udp_send(lsn, peer, p, len);
		return 0;
	}
	if (conn->closing)
		return 0;
	buf = rpcx_out_reserve(conn, len, &room);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, p, len);
	rpcx_out_commit(conn, len);
	return 0;
}

static void rpcs_init_accepted(rpcm_msg *m, uint32_t xid, rpcm_accept_stat st)
{
	memset(m, 0, sizeof(*m));
	m->xid = xid;
	m->body.mtype = RPCM_REPLY;
	m->body.rpcm_body_u.rbody.stat = RPCM_MSG_ACCEPTED;
	m->body.rpcm_body_u.rbody.rpcm_reply_body_u.areply.verf.flavor = RPCM_AUTH_NONE;
	m->body.rpcm_body_u.rbody.rpcm_reply_body_u.areply.reply_data.stat = st;
}

static void rpcs_reply_accept(struct rpc_listener *lsn, struct rpc_conn *conn,
			      const struct sockaddr_storage *peer, uint32_t xid,
			      rpcm_accept_stat st, uint32_t lo, uint32_t hi)
{
	rpcm_msg m;

	rpcs_init_accepted(&m, xid, st);
	if (st == RPCM_PROG_MISMATCH) {
		rpcm_accepted_reply_data *d =
			&m.body.rpcm_body_u.rbody.rpcm_reply_body_u.areply.reply_data;
		d->rpcm_accepted_reply_data_u.mismatch_info.low = lo;
		d->rpcm_accepted_reply_data_u.mismatch_info.high = hi;
	}
	(void)rpcs_send_reply(lsn, conn, peer, &m, NULL, NULL);
}

static void rpcs_reply_denied(struct rpc_listener *lsn, struct rpc_conn *conn,
			      const struct sockaddr_storage *peer, uint32_t xid,
			      rpcm_reject_stat st, rpcm_auth_stat why)
{
	rpcm_msg m;
	rpcm_rejected_reply *r;

	memset(&m, 0, sizeof(m));
	m.xid = xid;
	m.body.mtype = RPCM_REPLY;
	m.body.rpcm_body_u.rbody.stat = RPCM_MSG_DENIED;
	r = &m.body.rpcm_body_u.rbody.rpcm_reply_body_u.rreply;
	r->stat = st;
	if (st == RPCM_RPC_MISMATCH) {
		r->rpcm_rejected_reply_u.mismatch_info.low = RPCMSG_VERSION;
		r->rpcm_rejected_reply_u.mismatch_info.high = RPCMSG_VERSION;
	} else {
		r->rpcm_rejected_reply_u.auth_stat = why;
	}
	(void)rpcs_send_reply(lsn, conn, peer, &m, NULL, NULL);
}

/* ---- credentials ------------------------------------------------------ */

/* Returns RPCM_AUTH_OK or the auth_stat to reject with. */
static rpcm_auth_stat rpcs_check_auth(const rpcm_call_body *cb, struct rpc_cred *cred)
{
	const rpcm_opaque_auth *c = &cb->cred, *v = &cb->verf;

	memset(cred, 0, sizeof(*cred));
	/* AUTH_NONE and AUTH_SYS both carry an AUTH_NONE verifier with an
	 * empty body; anything else is a client bug or an attack. */
	if (v->flavor != RPCM_AUTH_NONE || v->body.body_len != 0)
		return RPCM_AUTH_BADVERF;
	switch (c->flavor) {
	case RPCM_AUTH_NONE:
		if (c->body.body_len != 0)
			return RPCM_AUTH_BADCRED;
		cred->flavor = RPCM_AUTH_NONE;
		cred->uid = cred->gid = 65534;
		return RPCM_AUTH_OK;
	case RPCM_AUTH_SYS: {
		rpcm_authsys_parms p;
		XDR x;
		bool ok;

		/* Decoded straight into @cred: its machine name and group
		 * arrays are as large as rpcmsg.x's bounds, so XDR fills them
		 * and allocates nothing (it allocates only for NULL). */
		_Static_assert(RPC_AUTH_MAX_GIDS >= RPCMSG_MAX_GIDS &&
			       RPC_AUTH_MAX_MACHNAME >= RPCMSG_MAX_MACHINE_NAME,
			       "rpc_cred must hold what rpcmsg.x allows");
		memset(&p, 0, sizeof(p));
		p.machinename = cred->machinename;
		p.gids.gids_val = cred->gids;
		xdrmem_create(&x, c->body.body_val, c->body.body_len, XDR_DECODE);
		ok = xdr_rpcm_authsys_parms(&x, &p);
		/* The body must be exactly one authsys_parms: trailing bytes
		 * mean the lengths inside lied. */
		if (ok && xdr_getpos(&x) != c->body.body_len)
			ok = false;
		xdr_destroy(&x);
		if (!ok) {
			memset(cred, 0, sizeof(*cred));
			return RPCM_AUTH_BADCRED;
		}
		cred->flavor = RPCM_AUTH_SYS;
		cred->stamp = p.stamp;
		cred->uid = p.uid;
		cred->gid = p.gid;
		cred->ngids = p.gids.gids_len;
		return RPCM_AUTH_OK;
	}
	default:
		return RPCM_AUTH_BADCRED;
	}
}

/* ---- dispatch --------------------------------------------------------- */

static void rpcs_reject(struct rpc_listener *lsn, enum rpcst_reject r)
{
	if (lsn->stats)
		lsn->stats->rejected[r]++;
}

static const struct rpc_prog *rpcs_find_prog(const struct rpc_svc *svc, uint32_t prog)
{
	for (size_t i = 0; i < svc->nprogs; i++)
		if (svc->progs[i]->prog == prog)
			return svc->progs[i];
	return NULL;
}

#define RPCS_ALIGN(n) (((n) + _Alignof(max_align_t) - 1) & ~(size_t)(_Alignof(max_align_t) - 1))

/*
 * Request blocks.  A request, its arguments, its results and its room are
 * one block, of one of two kept sizes, from pages of their own (slab.h;
 * loop thread only: a request is created and freed there), so a call
 * costs no malloc/free of its own, and a burst of calls in flight does not
 * leave its high-water mark in the heap once answered: 100,000 LOCKs
 * parked for their journal batch had left hundreds of MB resident between
 * the allocations made meanwhile.  RPCS_BLOCK_SMALL holds every call once
 * decoded (an NLM v4 call's arguments moved to their size:
 * rpcs_decode_moved); RPCS_BLOCK_SIZE one decoded in place into room of
 * its .x bounds.  Empty pages kept: RPCS_SMALL_KEEP x 64 KiB and
 * RPCS_BIG_KEEP (rpc_int.h).
 */
static const size_t rpcs_block_sizes[RPCS_NCLASS] = { RPCS_BLOCK_SMALL, RPCS_BLOCK_SIZE };

/* 1 + the smallest kept size class @size fits, or 0: none. */
static uint8_t rpcs_block_class(size_t size)
{
	for (uint8_t c = 0; c < RPCS_NCLASS; c++)
		if (size <= rpcs_block_sizes[c])
			return (uint8_t)(c + 1);
	return 0;
}

static struct rpc_req_priv *rpcs_block_get(struct rpc_svc *svc, size_t size, size_t zero)
{
	uint8_t cls = rpcs_block_class(size);
	struct rpc_req_priv *rp = cls ? slab_alloc(&svc->blocks[cls - 1]) : malloc(size);

	if (!rp)
		return NULL;
	/* The room past @zero is written by the decoder before it is read. */
	memset(rp, 0, zero);
	rp->cls = cls;
	return rp;
}

/* A block of @size for a call of @pd: its arguments at @args_off and
 * results at @res_off, zeroed up to @room_off (rpcs_dispatch lays them
 * out); NULL without memory. */
static struct rpc_req_priv *rpcs_req_block(struct rpc_svc *svc, const struct rpc_proc *pd,
					   size_t size, size_t args_off, size_t res_off,
					   size_t room_off)
{
	struct rpc_req_priv *rp = rpcs_block_get(svc, size, room_off);

	if (!rp)
		return NULL;
	rp->req.pd = pd;
	rp->req.args = (uint8_t *)rp + args_off;
	rp->req.res = (uint8_t *)rp + res_off;
	return rp;
}

/* The bytes @rp's block takes (its arguments' room starts at @room_off). */
static size_t rpcs_block_bytes(const struct rpc_req_priv *rp, size_t room_off)
{
	if (rp->cls)
		return rpcs_block_sizes[rp->cls - 1];
	return room_off + rp->room_len;
}

static void rpcs_block_put(struct rpc_svc *svc, struct rpc_req_priv *rp)
{
	if (rp->cls)
		slab_free(&svc->blocks[rp->cls - 1], rp);
	else
		free(rp);
}

/*
 * Arguments that move (rpc_proc.args_move) are decoded into the service's
 * own room first, as large as their .x bounds, and moved into a block of
 * the size they use: a call in flight holds what it brought, not the
 * bounds (an NLM v4 LOCK: ~1 KiB instead of an 8 KiB block).  Loop thread
 * only, used from the decode to the move with nothing in between.  NULL
 * when there is no memory (the call is answered SYSTEM_ERR, as when no
 * block can be had).
 */
static uint8_t *rpcs_scratch(struct rpc_svc *svc, size_t size)
{
	if (size > svc->scratch_len) {
		uint8_t *p = malloc(size);

		if (!p)
			return NULL;
		free(svc->scratch);
		svc->scratch = p;
		svc->scratch_len = size;
	}
	return svc->scratch;
}

/* @pd's arguments decoded from @x into the scratch room and moved into a
 * block of their size (rpcs_scratch); args, res and room set.  NULL: no
 * memory.  *@decoded: whether they decoded (if not, the block has no room
 * and zeroed arguments, which own nothing). */
static struct rpc_req_priv *rpcs_decode_moved(struct rpc_svc *svc, const struct rpc_proc *pd,
					      XDR *x, size_t args_off, size_t res_off,
					      size_t room_off, bool *decoded)
{
	size_t sroom = RPCS_ALIGN(pd->args_size), used = 0;
	uint8_t *sa = rpcs_scratch(svc, sroom + pd->args_room);
	struct rpc_req_priv *rp;

	if (!sa)
		return NULL;
	memset(sa, 0, pd->args_size);
	pd->args_prep(sa, sa + sroom);
	*decoded = pd->xdr_args(x, sa);
	if (*decoded) {
		used = pd->args_room_used(sa);
		if (used > pd->args_room)
			*decoded = false; /* not what the decoder could have written */
	}
	rp = rpcs_req_block(svc, pd, room_off + (*decoded ? used : 0), args_off, res_off, room_off);
	if (!rp)
		return NULL;
	if (*decoded) {
		rp->room = (uint8_t *)rp + room_off;
		rp->room_len = used;
		pd->args_move(rp->req.args, sa, rp->room);
	}
	return rp;
}

bool rpc_req_in_room(const struct rpc_req *req, const void *p)
{
	const struct rpc_req_priv *rp = (const struct rpc_req_priv *)req;
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)rp->room;

	return rp->room && a >= lo && a < lo + rp->room_len;
}

/* Before an xdr_free of @req's args or res: take back what points into
 * the room (rpc_proc.args_unprep; idempotent). */
static void rpcs_unprep(struct rpc_req *req)
{
	if (req->pd->args_unprep && ((struct rpc_req_priv *)req)->room)
		req->pd->args_unprep(req);
}

/* Release a reply's trailing data (rpc_proc.tail_free). */
static void rpcs_tail_release(const struct rpc_proc *pd, void *tail)
{
	if (pd->tail_free)
		pd->tail_free(tail);
	else
		free(tail);
}

/* xdr_free @req's results; with a tail_free, the trailing opaque is
 * detached and released through it first (it need not be malloc'ed). */
static void rpcs_res_free(struct rpc_req *req)
{
	rpcs_unprep(req);
	if (req->pd->tail_free && req->pd->res_tail) {
		uint32_t len;

		rpcs_tail_release(req->pd, req->pd->res_tail(req->res, &len));
	}
	xdr_free(req->pd->xdr_res, req->res);
}

static void rpcs_req_free(struct rpc_req_priv *rp)
{
	struct rpc_req *req = &rp->req;
	struct rpc_svc *svc;

	/* args and res live in rp's own block (rpcs_dispatch).  Arguments
	 * decoded into the room own nothing else (rpc_proc.args_prep): no
	 * walk of them to free nothing. */
	rpcs_unprep(req);
	if (!rp->room)
		xdr_free(req->pd->xdr_args, req->args);
	if (!rp->res_freed)
		rpcs_res_free(req);
	free(rp->enc);
	if (rp->tail)
		rpcs_tail_release(req->pd, rp->tail);
	if (rp->conn) {
		rpcx_conn_req_done(rp->conn, rp->charge);
		rpcx_conn_put(rp->conn);
	}
	svc = rp->lsn->svc;
	rpcx_lsn_put(rp->lsn);
	rpcs_block_put(svc, rp);
}

/* Count a finished call into its listener's rpc_stats. */
static void rpcs_count(struct rpc_req_priv *rp, enum rpcst_outcome o)
{
	struct rpc_stats *st = rp->lsn->stats;
	const struct rpc_req *req = &rp->req;
	const struct rpc_prog *p;
	uint32_t v;

	if (!st || rp->prog_idx >= RPCST_NPROG || req->proc >= RPCST_NPROC)
		return;
	p = rp->lsn->svc->progs[rp->prog_idx];
	v = req->vers - p->vers_lo;
	if (v < RPCST_NVERS)
		st->calls[rp->prog_idx][v][req->proc][o]++;
	mt_observe(&st->latency[rp->prog_idx][req->proc], uv_hrtime() - rp->t0);
}

void rpc_req_finish(struct rpc_req *req, enum rpc_disposition disp)
{
	struct rpc_req_priv *rp = (struct rpc_req_priv *)req;
	bool gone = rp->conn ? rp->conn->closing : rp->lsn->closing;
	int rc;

	rpcs_count(rp, gone ? RPCST_DROPPED : disp == RPC_DONE_NOREPLY ? RPCST_NOREPLY
		       : disp == RPC_DONE_GARBAGE ? RPCST_GARBAGE_ARGS
		       : disp == RPC_DONE_REPLY ? RPCST_SUCCESS : RPCST_SYSTEM_ERR);
	if (rp->enc) {
		/* Encoded on the pool (rpcs_work): cache and send the bytes. */
		if (rp->drc) {
			bool fits = rp->enc_len <= RPC_DRC_MAX_REPLY;

			rpc_drc_done(rp->lsn->svc->drc, rp->drc, fits ? rp->enc : NULL,
				     fits ? rp->enc_len : 0, uv_now(rp->lsn->svc->loop));
			rp->drc = NULL;
		}
		if (rp->enc_sent) {
			if (rp->lsn->stats) {
				rp->lsn->stats->bytes_out += rp->enc_len;
				rp->lsn->stats->pool_udp_sent++;
			}
		} else if (!gone) {
			if (rp->tail) {
				rc = rpcx_out_send_tail(rp->conn, rp->enc, rp->enc_len,
							rp->tail, rp->tail_len,
							req->pd->tail_free);
				rp->tail = NULL; /* taken, whatever rc */
			} else {
				rc = rpcs_send_bytes(rp->lsn, rp->conn, &req->peer, rp->enc,
						     rp->enc_len);
			}
			if (rc != 0)
				log_warn("rpc: prog=%u vers=%u proc=%s reply not sent (%s)",
					 req->prog, req->vers, req->pd->name, strerror(-rc));
		}
		goto out;
	}
	if (rp->drc) {
		/* The reply is kept even when the connection went away: that
		 * is the reply a retransmission on a new connection needs. */
		uint8_t buf[RPC_DRC_MAX_REPLY];
		size_t n = 0;

		if (disp == RPC_DONE_REPLY) {
			rpcm_msg m;

			rpcs_init_accepted(&m, req->xid, RPCM_SUCCESS);
			n = rpcs_encode(buf, sizeof(buf), &m, req->pd->xdr_res, req->res);
		}
		/* n 0: not cacheable (too big, or not a plain reply): a
		 * retransmission is executed again. */
		rpc_drc_done(rp->lsn->svc->drc, rp->drc, n ? buf : NULL, n,
			     uv_now(rp->lsn->svc->loop));
		rp->drc = NULL;
		if (n && !gone) {
			rc = rpcs_send_bytes(rp->lsn, rp->conn, &req->peer, buf, n);
			if (rc == 0)
				goto out;
			log_warn("rpc: prog=%u vers=%u proc=%s reply not sent (%s)",
				 req->prog, req->vers, req->pd->name, strerror(-rc));
			goto out;
		}
	}
	if (gone || disp == RPC_DONE_NOREPLY)
		goto out;
	if (disp == RPC_DONE_REPLY) {
		rpcm_msg m;

		rpcs_init_accepted(&m, req->xid, RPCM_SUCCESS);
		rc = rpcs_send_reply(rp->lsn, rp->conn, &req->peer, &m,
				     req->pd->xdr_res, req->res);
		if (rc == 0)
			goto out;
		log_warn("rpc: prog=%u vers=%u proc=%s reply not sent (%s); SYSTEM_ERR",
			 req->prog, req->vers, req->pd->name, strerror(-rc));
		disp = RPC_DONE_SYSERR;
	}
	rpcs_reply_accept(rp->lsn, rp->conn, &req->peer, req->xid,
			  disp == RPC_DONE_GARBAGE ? RPCM_GARBAGE_ARGS : RPCM_SYSTEM_ERR,
			  0, 0);
out:
	rpcs_req_free(rp);
}

/* ---- the thread pool, shared fairly between groups --------------------- */

static struct rpcx_fq *rpcs_fq(struct rpc_svc *svc, void *ctx, bool create)
{
	struct rpcx_fq *q;

	for (q = svc->fqs; q; q = q->next)
		if (q->ctx == ctx)
			return q;
	if (!create || !(q = calloc(1, sizeof(*q))))
		return NULL;
	q->ctx = ctx;
	q->next = svc->fqs;
	svc->fqs = q;
	return q;
}

static void rpcs_work(struct rpcp_job *j);
static void rpcs_work_done(struct rpcp_job *j);

/* A call of @ctx's group arrived: it counts as active for the lowering of
 * other groups' backlogged jobs (rpcs_pool_kick).  Node-wide listeners (no
 * ctx) do not count; without memory for its queue a group does not. */
static void rpcs_fq_seen(struct rpc_svc *svc, void *ctx)
{
	struct rpcx_fq *q = ctx ? rpcs_fq(svc, ctx, true) : NULL;

	if (q)
		q->seen_ms = uv_now(svc->loop);
}

/* @rp left the pool: its group holds one job fewer (an idle group's
 * queue is forgotten later, by rpcs_fq_cap). */
static void rpcs_fq_done(struct rpc_req_priv *rp)
{
	if (rp->fq)
		rp->fq->inflight--;
	rp->fq = NULL;
}

/* How many jobs one group may have on the pool now (see
 * RPC_POOL_JOBS_PER_CTX), and in *@active how many groups had any call in
 * the last RPC_FQ_ACTIVE_MS (also those served on the loop alone: a group
 * whose GETATTR and LOCK never reach the pool still waits for a CPU behind
 * the pool's threads); forgets queues idle for RPC_FQ_ACTIVE_MS. */
static uint32_t rpcs_fq_cap(struct rpc_svc *svc, uint32_t *active)
{
	uint64_t now = uv_now(svc->loop);
	uint32_t n = 0, seen = 0, cap;

	for (struct rpcx_fq **pp = &svc->fqs; *pp;) {
		struct rpcx_fq *q = *pp;
		bool busy = q->in_ring || q->inflight > 0;
		bool pool = busy || (q->last_ms && now - q->last_ms < RPC_FQ_ACTIVE_MS);
		bool called = q->seen_ms && now - q->seen_ms < RPC_FQ_ACTIVE_MS;

		if (!pool && !called) {
			*pp = q->next;
			free(q);
			continue;
		}
		n += pool;
		seen++;
		pp = &q->next;
	}
	*active = seen;
	cap = n > 1 ? RPC_POOL_JOBS / n : RPC_POOL_JOBS_PER_CTX;
	if (cap > RPC_POOL_JOBS_PER_CTX)
		cap = RPC_POOL_JOBS_PER_CTX;
	return cap ? cap : 1;
}

unsigned rpcs_test_ncpus;

/*
 * How many low jobs may be on the pool at once: one fewer than the CPUs
 * this process may run on, at least one (rpc_int.h says why, above
 * rpcs_test_ncpus).
 */
static unsigned rpcs_low_cap(void)
{
	static unsigned ncpus;

	if (rpcs_test_ncpus)
		return rpcs_test_ncpus > 1 ? rpcs_test_ncpus - 1 : 1;
	if (!ncpus) {
		cpu_set_t cs;

		ncpus = sched_getaffinity(0, sizeof(cs), &cs) == 0 && CPU_COUNT(&cs) > 0
			? (unsigned)CPU_COUNT(&cs) : 1;
	}
	return ncpus > 1 ? ncpus - 1 : 1;
}

/* Whether @q's next job goes to the pool as a low one: its group is
 * backlogged (more of its requests waiting or on the pool) while another
 * group is active.  A group with one request at a time never is. */
static bool rpcs_would_lower(const struct rpcx_fq *q, uint32_t active)
{
	return active > 1 && (q->queued > 1 || q->inflight > 0);
}

/* ---- one group's queue: its source addresses by turns ------------------ */

/* @q's source of @h (NULL: q->anon), created with a reference on @h if it
 * has none; NULL without memory.  Walks the sources @h has in every
 * group (a few), never the group's. */
static struct rpcx_src *rpcs_src_get(struct rpcx_fq *q, struct rpcx_host *h)
{
	struct rpcx_src *s;

	if (!h)
		return &q->anon;
	for (s = h->srcs; s; s = s->hnext)
		if (s->fq == q)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fq = q;
	s->host = h;
	h->refs++;
	s->hnext = h->srcs;
	h->srcs = s;
	return s;
}

/* Append @rp to @s; a source that had nothing joins @q's ring last in
 * this round (just before the one whose turn it is). */
static void rpcs_src_push(struct rpcx_fq *q, struct rpcx_src *s, struct rpc_req_priv *rp)
{
	rp->fq_next = NULL;
	if (s->tail) {
		s->tail->fq_next = rp;
		s->tail = rp;
		return;
	}
	s->head = s->tail = rp;
	if (!q->src) {
		s->rnext = s;
		q->src = q->src_prev = s;
	} else {
		q->src_prev->rnext = s;
		s->rnext = q->src;
		q->src_prev = s;
	}
}

/* Take the first request of the source whose turn it is (@q has one), a
 * UDP one no longer waiting for its address (max_queued_per_host); the
 * turn passes to the next source, and a source left empty leaves the ring
 * and, unless it is q->anon, is freed with its host reference. */
static struct rpc_req_priv *rpcs_src_pop(struct rpc_svc *svc, struct rpcx_fq *q)
{
	struct rpcx_src *s = q->src;
	struct rpc_req_priv *rp = s->head;

	s->head = rp->fq_next;
	rp->fq_next = NULL;
	if (!rp->conn) {
		s->host->udp_queued--;
		svc->udp_queued--;
	}
	if (s->head) {
		q->src_prev = s;
		q->src = s->rnext;
		return rp;
	}
	s->tail = NULL;
	if (s->rnext == s) {
		q->src = q->src_prev = NULL;
	} else {
		q->src_prev->rnext = s->rnext;
		q->src = s->rnext;
	}
	s->rnext = NULL;
	if (s->host) {
		struct rpcx_src **pp = &s->host->srcs;

		while (*pp != s)
			pp = &(*pp)->hnext;
		*pp = s->hnext;
		rpcx_host_unref(svc, s->host);
		free(s);
	}
	return rp;
}

/* Hand queued requests to the pool while fewer than RPC_POOL_JOBS are
 * there, one per group in turn, skipping a group that already holds
 * RPC_POOL_JOBS_PER_CTX of them, or whose job would be low while the low
 * jobs' cap is reached. */
static void rpcs_pool_kick(struct rpc_svc *svc)
{
	uint32_t active = 0;
	uint32_t cap = svc->fq_ring ? rpcs_fq_cap(svc, &active) : 0;
	unsigned low_cap = rpcs_low_cap();

	while (svc->pool_inflight < RPC_POOL_JOBS && svc->fq_ring) {
		struct rpcx_fq *q = svc->fq_ring;

		/* The first group in ring order under its cap (and, when its
		 * job would be a low one, under the low jobs' cap), or none. */
		while (q->inflight >= cap ||
		       (rpcs_would_lower(q, active) && svc->low_inflight >= low_cap)) {
			q = q->rnext;
			if (q == svc->fq_ring)
				return;
		}
		struct rpc_req_priv *rp = rpcs_src_pop(svc, q);

		/* Backlogged while another group is active: its job yields
		 * the CPU to the loop and to the other groups' jobs
		 * (RPC_POOL_LOW_NICE). */
		rp->job.low = rpcs_would_lower(q, active);
		q->queued--;
		/* Take q out of the ring when empty, else move on to the group
		 * after it: round robin. */
		if (!q->src) {
			struct rpcx_fq *prev = q;

			while (prev->rnext != q)
				prev = prev->rnext;
			if (prev == q) {
				svc->fq_ring = NULL;
			} else {
				prev->rnext = q->rnext;
				svc->fq_ring = q->rnext;
			}
			q->rnext = NULL;
			q->in_ring = false;
		} else {
			svc->fq_ring = q->rnext;
		}
		q->inflight++;
		rp->fq = q;
		svc->pool_inflight++;
		if (rp->job.low)
			svc->low_inflight++;
		if (!svc->pool && wq_chan_open(svc->loop, &svc->pool) < 0) {
			svc->pool = NULL;
			svc->pool_inflight--;
			if (rp->job.low)
				svc->low_inflight--;
			rpcs_fq_done(rp);
			rpc_req_finish(&rp->req, RPC_DONE_SYSERR);
			continue;
		}
		rpcp_submit(svc->pool, &rp->job);
	}
}

/* Queue blocking @rp behind its group's others.  0, or -ENOMEM. */
static int rpcs_pool_submit(struct rpc_svc *svc, struct rpc_req_priv *rp)
{
	struct rpcx_fq *q = rpcs_fq(svc, rp->req.svc_ctx, true);
	struct rpcx_src *s;

	if (!q)
		return -ENOMEM;
	if (rp->conn) {
		s = rpcs_src_get(q, rp->conn->host);
	} else {
		/* A UDP request has no connection holding its address's
		 * entry: its source holds it while it waits, and it counts
		 * against the address (rpcs_udp_admit); a TCP connection
		 * has its own bounds. */
		struct rpcx_host *h = rpcx_host_get(svc, &rp->req.peer);

		s = h ? rpcs_src_get(q, h) : NULL;
		if (h)
			rpcx_host_unref(svc, h);
		if (s) {
			s->host->udp_queued++;
			svc->udp_queued++;
		}
	}
	if (!s)
		return -ENOMEM;
	q->last_ms = uv_now(svc->loop);
	rp->job.work = rpcs_work;
	rp->job.done = rpcs_work_done;
	rpcs_src_push(q, s, rp);
	q->queued++;
	if (!q->in_ring) {
		q->in_ring = true;
		if (!svc->fq_ring) {
			q->rnext = q;
			svc->fq_ring = q;
		} else {
			/* Join just before the group whose turn it is: last in
			 * this round. */
			struct rpcx_fq *prev = svc->fq_ring;

			while (prev->rnext != svc->fq_ring)
				prev = prev->rnext;
			prev->rnext = q;
			q->rnext = svc->fq_ring;
		}
	}
	rpcs_pool_kick(svc);
	return 0;
}

/* @from as a struct sockaddr_storage, zero-filled past its length. */
static void rpcs_udp_peer(const struct sockaddr *from, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out, from, from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						      : sizeof(struct sockaddr_in));
}

/* One host's datagram over max_queued_per_host: dropped alone.  The socket
 * keeps being read (stopping it would drop every other client's datagrams
 * with the flooder's); a read and a drop cost the loop little, and libuv
 * reads a bounded number of datagrams per turn. */
static void rpcs_udp_drop_host(struct rpc_listener *lsn, struct rpcx_fq *q,
			       const struct rpcx_host *h)
{
	struct rpc_svc *svc = lsn->svc;
	char a[80], l[80];
	uint64_t now;

	if (q)
		q->dropped++;
	svc->udp_dropped++;
	svc->udp_dropped_host++;
	if (lsn->stats)
		lsn->stats->udp_dropped++;
	svc->udp_host_quiet++;
	now = uv_now(svc->loop);
	if (svc->udp_host_logged_ms == 0 || now - svc->udp_host_logged_ms >= 1000) {
		log_warn("rpc: client %s to %s: %u of its UDP requests wait for the thread pool (max_queued_per_host): UDP request dropped (%" PRIu64 " dropped by that bound since the last line, all clients)",
			 rpc_addr_str(&h->addr, false, a, sizeof(a)),
			 rpc_addr_str(&lsn->addr, true, l, sizeof(l)), h->udp_queued,
			 svc->udp_host_quiet);
		svc->udp_host_logged_ms = now ? now : 1;
		svc->udp_host_quiet = 0;
	}
}

bool rpcs_udp_admit(struct rpc_listener *lsn, const struct sockaddr *from)
{
	struct rpc_svc *svc = lsn->svc;
	struct rpcx_fq *q = rpcs_fq(svc, lsn->ctx, false);
	struct sockaddr_storage peer;
	char a[80], l[80];
	uint64_t now;

	if (!q || q->queued < svc->lim.max_queued_per_ctx) {
		/* No address can hold the bound while fewer wait in all. */
		if (svc->udp_queued < svc->lim.max_queued_per_host)
			return true;
		rpcs_udp_peer(from, &peer);
		const struct rpcx_host *h = rpcx_host_find(svc, &peer);

		if (!h || h->udp_queued < svc->lim.max_queued_per_host)
			return true;
		rpcs_udp_drop_host(lsn, q, h);
		return false;
	}
	/* UDP has no back-pressure of its own: a datagram the group cannot
	 * take is dropped (the client retransmits), not queued without end. */
	q->dropped++;
	svc->udp_dropped++;
	if (lsn->stats)
		lsn->stats->udp_dropped++;
	svc->udp_drop_quiet++;
	/* Stop reading the socket until the queue is half empty: what comes
	 * meanwhile the kernel drops at no cost to the loop (a flood read
	 * and dropped here took the loop from every other group), and those
	 * drops are counted when reading resumes (rpcs_udp_resume_some). */
	if (!lsn->udp_paused && lsn->has_udp && !lsn->closing && !lsn->held) {
		rpcx_udp_pause(lsn);
		rpcx_lsn_get(lsn);
		lsn->pause_next = svc->udp_paused;
		svc->udp_paused = lsn;
	}
	now = uv_now(svc->loop);
	if (svc->udp_drop_logged_ms == 0 || now - svc->udp_drop_logged_ms >= 1000) {
		rpcs_udp_peer(from, &peer);
		log_warn("rpc: client %s to %s: the group's queue holds %u requests (max_queued_per_group): UDP request dropped (%" PRIu64 " dropped since the last line, all clients)",
			 rpc_addr_str(&peer, true, a, sizeof(a)),
			 rpc_addr_str(&lsn->addr, true, l, sizeof(l)), q->queued,
			 svc->udp_drop_quiet);
		svc->udp_drop_logged_ms = now ? now : 1;
		svc->udp_drop_quiet = 0;
	}
	return false;
}

/* On the pool thread: encode @rp's successful reply into rp->enc and free
 * its results, so the loop only sends bytes.  On any failure nothing is
 * set and the loop encodes (and reports) as for any handler. */
static void rpcs_pre_encode(struct rpc_req_priv *rp)
{
	struct rpc_req *req = &rp->req;
	xdrproc_t xdr_res = req->pd->xdr_res;
	size_t size, n;
	uint8_t *buf;
	rpcm_msg m;

	/* On TCP a trailing opaque is sent from its own buffer (no copy
	 * here nor on the loop); a cached reply must be one piece. */
	if (rp->conn && !rp->drc && req->pd->xdr_res_head && req->pd->res_tail)
		xdr_res = req->pd->xdr_res_head;
	rpcs_init_accepted(&m, req->xid, RPCM_SUCCESS);
	size = rpcs_reply_size(&m, xdr_res, req->res);
	if (size == 0 || (!rp->conn && size > RPC_UDP_MAX_REPLY))
		return;
	buf = malloc(size);
	if (!buf)
		return;
	n = rpcs_encode(buf, size, &m, xdr_res, req->res);
	if (n == 0) {
		free(buf);
		return;
	}
	if (xdr_res != req->pd->xdr_res)
		rp->tail = req->pd->res_tail(req->res, &rp->tail_len);
	rpcs_res_free(req);
	rp->res_freed = true;
	rp->enc = buf;
	rp->enc_len = n;
}

void rpcs_udp_unpause(struct rpc_listener *lsn)
{
	struct rpc_svc *svc = lsn->svc;

	for (struct rpc_listener **pp = &svc->udp_paused; *pp; pp = &(*pp)->pause_next) {
		if (*pp == lsn) {
			*pp = lsn->pause_next;
			lsn->pause_next = NULL;
			lsn->udp_paused = false;
			rpcx_lsn_put(lsn);
			return;
		}
	}
}

/* Read again every paused listener whose group's queue is down to half its
 * bound (or gone), counting what the kernel dropped meanwhile. */
static void rpcs_udp_resume_some(struct rpc_svc *svc)
{
	struct rpc_listener **pp = &svc->udp_paused;

	while (*pp) {
		struct rpc_listener *lsn = *pp;
		struct rpcx_fq *q = rpcs_fq(svc, lsn->ctx, false);

		if (q && q->queued > svc->lim.max_queued_per_ctx / 2) {
			pp = &lsn->pause_next;
			continue;
		}
		*pp = lsn->pause_next;
		lsn->pause_next = NULL;
		uint64_t n = rpcx_udp_resume(lsn);

		if (q)
			q->dropped += n;
		svc->udp_dropped += n;
		svc->udp_drop_quiet += n;
		if (lsn->stats)
			lsn->stats->udp_dropped += n;
		rpcx_lsn_put(lsn);
	}
}

/*
 * On the pool thread: send @rp's encoded UDP reply through its listener's
 * socket (sendto on one socket from several threads is safe), so the loop
 * spends nothing on the flood's big replies but the bookkeeping.  Not
 * when the reply goes into the duplicate-request cache (the loop does
 * that, then sends), nor when the socket buffer is full (the loop queues
 * it, rpcx_udp_send).  Any other failure is a lost datagram, which the
 * client retransmits, as on the loop.
 */
static void rpcs_udp_send_off_loop(struct rpc_req_priv *rp)
{
	struct rpc_svc *svc = rp->lsn->svc;
	const struct sockaddr_storage *peer = &rp->req.peer;
	socklen_t plen = peer->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						     : sizeof(struct sockaddr_in);
	ssize_t n = -1;
	int err = EBADF;

	pthread_mutex_lock(&svc->udp_tx_mu);
	if (rp->lsn->udp_tx_fd >= 0) {
		n = sendto(rp->lsn->udp_tx_fd, rp->enc, rp->enc_len, MSG_DONTWAIT,
			   (const struct sockaddr *)peer, plen);
		err = errno;
	}
	pthread_mutex_unlock(&svc->udp_tx_mu);
	/* Closed (-1 above): the loop finds the listener gone and drops it. */
	rp->enc_sent = n >= 0 || (err != EAGAIN && err != EWOULDBLOCK && err != EBADF);
}

/* The handler, the encoding of its reply and, on UDP, its sending, on
 * whichever thread runs the job. */
static void rpcs_run_job(struct rpc_req_priv *rp)
{
	rp->disp = rp->req.pd->fn(&rp->req);
	if (rp->disp == RPC_DONE_REPLY)
		rpcs_pre_encode(rp);
	if (rp->enc && !rp->conn && !rp->drc)
		rpcs_udp_send_off_loop(rp);
}

/* On a pool thread (rpc_pool.h). */
static void rpcs_work(struct rpcp_job *j)
{
	rpcs_run_job((struct rpc_req_priv *)((char *)j - offsetof(struct rpc_req_priv, job)));
}

static void rpcs_work_done(struct rpcp_job *j)
{
	struct rpc_req_priv *rp = (struct rpc_req_priv *)((char *)j - offsetof(struct rpc_req_priv, job));
	struct rpc_svc *svc = rp->lsn->svc;

	svc->pool_inflight--;
	if (j->low)
		svc->low_inflight--;
	rpcs_fq_done(rp);
	if (rp->lsn->stats) {
		rp->lsn->stats->pool_done++;
		if (j->lowered)
			rp->lsn->stats->pool_lowered++;
	}
	rpcs_pool_kick(svc);
	if (svc->udp_paused)
		rpcs_udp_resume_some(svc);

	/* Blocking handlers cannot go asynchronous a second time. */
	if (rp->disp == RPC_DONE_ASYNC)
		rp->disp = RPC_DONE_SYSERR;
	rpc_req_finish(&rp->req, rp->disp);
}

/*
 * A call refused for what it brought or what it needed is logged: GARBAGE_ARGS
 * (a length over the protocol's limit, bytes missing) and SYSTEM_ERR for want
 * of memory for its request.  A token bucket per kind (20 lines, refilled at
 * 20 a second) keeps a flood from filling the disk; the next line logged says
 * how many were left out.
 */
#define RPCS_LOG_BURST 20
static void rpcs_log_refused(struct rpc_svc *svc, struct tb_bucket *lines,
			     const struct sockaddr_storage *peer, uint32_t prog, uint32_t vers,
			     const char *proc, const char *why)
{
	char a[80];

	if (!tb_take(lines, RPCS_LOG_BURST, RPCS_LOG_BURST, uv_now(svc->loop)))
		return;
	log_warn("rpc: client %s prog=%u vers=%u proc=%s: %s (%" PRIu64 " more not logged)",
		 rpc_addr_str(peer, true, a, sizeof(a)), prog, vers, proc, why,
		 tb_refused_take(lines));
}

static void rpcs_log_garbage(struct rpc_svc *svc, const struct rpc_req *req)
{
	static struct tb_bucket lines;

	rpcs_log_refused(svc, &lines, &req->peer, req->prog, req->vers, req->pd->name,
			 "arguments do not decode (over a protocol limit or truncated); GARBAGE_ARGS");
}

int rpcs_dispatch(struct rpc_listener *lsn, struct rpc_conn *conn,
		  const struct sockaddr_storage *peer,
		  const struct sockaddr_storage *local,
		  const uint8_t *rec, size_t len, uint64_t arrival_ns)
{
	struct rpc_svc *svc = lsn->svc;
	const struct rpc_prog *prog;
	const struct rpc_vers *vers;
	const struct rpc_proc *pd;
	struct rpc_req_priv *rp;
	struct rpc_cred cred;
	rpcm_call_body *cb;
	rpcm_auth_stat as;
	struct rpc_drc_entry *drc_e = NULL;
	rpcm_call_body call;
	rpcm_msg_type mtype;
	/* The credential and verifier bodies are decoded here, not into
	 * buffers XDR allocates (it allocates only where it is given none):
	 * each is at most RPCMSG_MAX_AUTH_BYTES by rpcmsg.x, and neither is
	 * used once the credential is checked. */
	char credbody[RPCMSG_MAX_AUTH_BYTES], verfbody[RPCMSG_MAX_AUTH_BYTES];
	u_int argpos;
	uint32_t xid;
	XDR x;
	bool decoded = false;

	/* An rpcm_msg, piece by piece: xid, message type, then the call body
	 * only (a REPLY is dropped whatever follows it). */
	memset(&call, 0, sizeof(call));
	call.cred.body.body_val = credbody;
	call.verf.body.body_val = verfbody;
	xdrmem_create(&x, (char *)rec, (u_int)len, XDR_DECODE);
	if (!xdr_u_int(&x, &xid) || !xdr_rpcm_msg_type(&x, &mtype)) {
		xdr_destroy(&x);
		log_debug("rpc: undecodable call header (%zu bytes), dropped", len);
		return -EPROTO;
	}
	if (mtype != RPCM_CALL) {
		xdr_destroy(&x);
		return -EPROTO;
	}
	if (!xdr_rpcm_call_body(&x, &call)) {
		xdr_destroy(&x);
		/* With a whole xid and a CALL type the header is merely
		 * truncated or its auth lengths lie: there is no reply for
		 * that in RFC 5531, so drop it like every server does. */
		log_debug("rpc: undecodable call header (%zu bytes), dropped", len);
		return -EPROTO;
	}
	argpos = xdr_getpos(&x);
	xdr_destroy(&x);
	cb = &call;
	svc->ncalls++;
	if (cb->rpcvers != RPCMSG_VERSION) {
		rpcs_reply_denied(lsn, conn, peer, xid, RPCM_RPC_MISMATCH, 0);
		rpcs_reject(lsn, RPCST_RPC_MISMATCH);
		goto out_hdr;
	}
	as = rpcs_check_auth(cb, &cred);
	if (as != RPCM_AUTH_OK) {
		rpcs_reply_denied(lsn, conn, peer, xid, RPCM_AUTH_ERROR, as);
		rpcs_reject(lsn, RPCST_AUTH_ERROR);
		goto out_hdr;
	}
	prog = rpcs_find_prog(svc, cb->prog);
	if (!prog) {
		rpcs_reply_accept(lsn, conn, peer, xid, RPCM_PROG_UNAVAIL, 0, 0);
		rpcs_reject(lsn, RPCST_PROG_UNAVAIL);
		goto out_hdr;
	}
	vers = (cb->vers >= prog->vers_lo && cb->vers <= prog->vers_hi)
		? prog->vers[cb->vers - prog->vers_lo] : NULL;
	if (!vers) {
		rpcs_reply_accept(lsn, conn, peer, xid, RPCM_PROG_MISMATCH,
				  prog->vers_lo, prog->vers_hi);
		rpcs_reject(lsn, RPCST_PROG_MISMATCH);
		goto out_hdr;
	}
	pd = cb->proc < vers->nprocs ? &vers->procs[cb->proc] : NULL;
	if (!pd || !pd->fn) {
		rpcs_reply_accept(lsn, conn, peer, xid, RPCM_PROC_UNAVAIL, 0, 0);
		rpcs_reject(lsn, RPCST_PROC_UNAVAIL);
		goto out_hdr;
	}
	/* The group's stats are the cache's group key: they live as long
	 * as the node, across the group's offline and online turns. */
	if (pd->drc && lsn->stats) {
		struct rpc_drc_key k = {
			.group = lsn->stats, .addr = *peer, .xid = xid,
			.prog = cb->prog, .vers = cb->vers, .proc = cb->proc,
			.len = (uint32_t)len,
			/* Everything after the xid: header, credential,
			 * arguments.  A reused xid with other arguments is
			 * a new call. */
			.sum = rpc_drc_sum(rec + 4, len - 4),
		};
		const uint8_t *cached;
		size_t clen;

		switch (rpc_drc_lookup(svc->drc, &k, uv_now(svc->loop), &drc_e, &cached, &clen)) {
		case RPC_DRC_HIT:
			lsn->stats->drc_hits++;
			(void)rpcs_send_bytes(lsn, conn, peer, cached, clen);
			goto out_hdr;
		case RPC_DRC_INPROGRESS:
			/* The first execution answers; running it twice is
			 * what the cache is for. */
			lsn->stats->drc_inprogress_drops++;
			goto out_hdr;
		case RPC_DRC_MISS:
		case RPC_DRC_NOCACHE:
			lsn->stats->drc_misses++;
			break;
		}
	}

	/* One allocation for the request and its argument and result
	 * structures (each aligned as malloc would). */
	size_t args_off = RPCS_ALIGN(sizeof(*rp));
	size_t res_off = args_off + RPCS_ALIGN(pd->args_size);
	size_t room_off = res_off + RPCS_ALIGN(pd->res_size ? pd->res_size : 1);

	xdrmem_create(&x, (char *)rec + argpos, (u_int)(len - argpos), XDR_DECODE);
	if (pd->args_room && pd->args_prep && pd->args_room_used && pd->args_move) {
		rp = rpcs_decode_moved(svc, pd, &x, args_off, res_off, room_off, &decoded);
	} else {
		rp = rpcs_req_block(svc, pd, room_off + pd->args_room, args_off, res_off, room_off);
		if (rp) {
			if (pd->args_room && pd->args_prep) {
				rp->room = (uint8_t *)rp + room_off;
				rp->room_len = pd->args_room;
				pd->args_prep(rp->req.args, rp->room);
			}
			decoded = pd->xdr_args(&x, rp->req.args);
		}
	}
	xdr_destroy(&x);
	if (!rp) {
		static struct tb_bucket nomem_lines;

		if (drc_e)
			rpc_drc_done(svc->drc, drc_e, NULL, 0, 0);
		rpcs_log_refused(svc, &nomem_lines, peer, cb->prog, cb->vers, pd->name,
				 "no memory for the request; SYSTEM_ERR");
		rpcs_reply_accept(lsn, conn, peer, xid, RPCM_SYSTEM_ERR, 0, 0);
		goto out_hdr;
	}
	rp->drc = drc_e;
	rpcs_fq_seen(svc, lsn->ctx);
	rp->req.xid = xid;
	rp->req.prog = cb->prog;
	rp->req.vers = cb->vers;
	rp->req.proc = cb->proc;
	rp->req.cred = cred;
	rp->req.peer = *peer;
	rp->req.local = *local;
	rp->req.is_tcp = conn != NULL;
	rp->req.svc_ctx = lsn->ctx;
	rp->lsn = lsn;
	rp->t0 = arrival_ns;
	for (size_t i = 0; i < svc->nprogs; i++)
		if (svc->progs[i] == prog)
			rp->prog_idx = (uint8_t)i;
	rpcx_lsn_get(lsn);
	if (conn) {
		/* What it holds until it ends: the record's bytes stand for
		 * its arguments' (a WRITE's data is a copy of them). */
		rp->charge = len + rpcs_block_bytes(rp, room_off);
		if (decoded && pd->res_bytes)
			rp->charge += pd->res_bytes(rp->req.args);
		rp->conn = conn;
		rpcx_conn_get(conn);
		rpcx_conn_req_start(conn, rp->charge);
	}
	if (!decoded) {
		rpcs_log_garbage(svc, &rp->req);
		rpc_req_finish(&rp->req, RPC_DONE_GARBAGE);
		return 0;
	}

	if (pd->blocking) {
		if (pd->on_loop && pd->on_loop(&rp->req)) {
			rpc_req_finish(&rp->req, RPC_DONE_REPLY);
			return 0;
		}
		if (rpcs_pool_submit(svc, rp) < 0)
			rpc_req_finish(&rp->req, RPC_DONE_SYSERR);
		return 0;
	}
	/* A handler that returns RPC_DONE_ASYNC may already have finished
	 * (and freed) the request: never touch rp after that. */
	enum rpc_disposition d = pd->fn(&rp->req);
	if (d != RPC_DONE_ASYNC)
		rpc_req_finish(&rp->req, d);
	return 0;

out_hdr:
	return 0;
}

/* ---- addresses -------------------------------------------------------- */

const char *rpc_addr_str(const struct sockaddr_storage *ss, bool with_port,
			 char *buf, size_t len)
{
	return sa_str(ss, with_port, buf, len);
}

uint16_t rpc_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

bool rpc_addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
		return (a >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}
