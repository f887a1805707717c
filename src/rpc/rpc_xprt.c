/*
 * rpc_xprt.c - RPC over TCP (record marking) and UDP on the libuv loop.
 *
 * TCP records (RFC 5531 section 11) are parsed by rpc_rm.c in fail mode
 * (state in struct rpc_conn): a record whose marks add up past max_record
 * closes the connection before any of it is buffered, so a mark announcing
 * 2^31 bytes costs nothing but the connection.
 *
 * Back-pressure: a connection stops reading while it has too many requests
 * in flight or too many reply bytes queued; limits on connections and idle
 * time keep one client from exhausting the node.  Nothing one connection
 * does changes another's state.
 *
 * Limits per source address (docs/configuration.md, Limits): one address
 * holds at most max_conns_per_host connections, the node max_conns.  At
 * either limit a connection with nothing in flight and nothing queued is
 * evicted first (the longest without a whole record: idle ones and those
 * stuck in a partial record; at the node limit, one of the address that
 * holds the most), so a host hoarding idle connections cannot lock out
 * another; only when nothing can be evicted is the new one refused.
 * Refusals are logged at most once a second per address (and once a second
 * for the node), with the count of those not logged.
 *
 * The byte budget (rpc_limits.max_held_bytes*, "the byte budget" below):
 * what TCP calls in flight and their queued replies hold is counted per
 * connection, per address and for the node, and a connection that holds
 * anything stops reading, at a record boundary, while its address or the
 * node is at its bound.  The call counts alone let one address with 64
 * connections of 128 pipelined 1 MiB WRITEs hold 8 GiB.
 *
 * Record buffers grow with the bytes that arrive (rpc_rm.c), never to the
 * size a record mark announces: 500 connections announcing 1 MiB and
 * sending a few bytes cost a few KiB each.
 *
 * Replies on TCP are encoded straight into the connection's output buffer
 * and written once per loop turn, whatever the number of records (a
 * pipelining client gets its dozen replies in one write, and the kernel
 * handles one segment instead of a dozen: on loopback that segment's
 * transmission and reception are most of the cost of a small RPC).  The
 * flush tries uv_try_write first (no allocation, no callback in the common
 * case) and hands what the socket did not take to a queued write.  A
 * reply whose results end in a large opaque (READ's data, rpc_proc.res_tail)
 * is written at once instead, with the pending records, its header and the
 * opaque as separate buffers of one writev: the data goes from the buffer
 * the pool thread read it into straight to the socket, never copied on the
 * loop.  UDP replies go out at once with uv_udp_try_send.
 *
 * A record that arrives whole inside one read is dispatched from the read
 * buffer itself; only records split across reads are reassembled in
 * conn->rm.
 */
#include "rpc_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/sock_diag.h>

#include "log.h"
#include "saddr.h"

/* ---- reference counts ------------------------------------------------- */

static void rpcx_lsn_free_cb(uv_handle_t *h);

void rpcx_lsn_get(struct rpc_listener *lsn)
{
	lsn->refs++;
}

void rpcx_lsn_put(struct rpc_listener *lsn)
{
	if (--lsn->refs)
		return;
	if (lsn->release)
		lsn->release(lsn->ctx);
	free(lsn);
}

void rpc_listener_set_release(struct rpc_listener *l, void (*release)(void *ctx))
{
	l->release = release;
}

void rpcx_conn_get(struct rpc_conn *conn)
{
	conn->refs++;
}

void rpcx_conn_put(struct rpc_conn *conn)
{
	if (--conn->refs)
		return;
	rm_fini(&conn->rm);
	free(conn->out);
	free(conn->stash);
	if (conn->host)
		rpcx_host_unref(conn->lsn->svc, conn->host);
	rpcx_lsn_put(conn->lsn);
	free(conn);
}

static void rpcx_lsn_free_cb(uv_handle_t *h)
{
	rpcx_lsn_put(h->data);
}

/* Before lsn->udp is closed: no pool thread sends through its descriptor
 * any more (one in the middle of a send finishes it first). */
static void rpcx_udp_tx_off(struct rpc_listener *lsn)
{
	pthread_mutex_lock(&lsn->svc->udp_tx_mu);
	lsn->udp_tx_fd = -1;
	pthread_mutex_unlock(&lsn->svc->udp_tx_mu);
}

/* ---- source addresses ------------------------------------------------- */

/* Hosts are kept normalised (saddr.h: host part only). */
static size_t rpcx_host_bucket(const struct sockaddr_storage *n)
{
	return (size_t)(sa_hash(n) % RPC_HOST_BUCKETS);
}

struct rpcx_host *rpcx_host_find(struct rpc_svc *svc, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage n;
	struct rpcx_host *h;

	sa_norm(peer, &n);
	for (h = svc->hosts[rpcx_host_bucket(&n)]; h; h = h->next)
		if (sa_same_host(&h->addr, &n))
			return h;
	return NULL;
}

struct rpcx_host *rpcx_host_get(struct rpc_svc *svc, const struct sockaddr_storage *peer)
{
	struct rpcx_host *h = rpcx_host_find(svc, peer);
	size_t b;

	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return NULL;
		sa_norm(peer, &h->addr);
		b = rpcx_host_bucket(&h->addr);
		h->next = svc->hosts[b];
		svc->hosts[b] = h;
	}
	h->refs++;
	return h;
}

/* The entry goes with the last reference: a connection of its freed (every
 * one of its calls has ended: each holds its connection) or a UDP request
 * of its leaving its group's queue. */
void rpcx_host_unref(struct rpc_svc *svc, struct rpcx_host *h)
{
	struct rpcx_host **pp;

	if (--h->refs)
		return;
	for (pp = &svc->hosts[rpcx_host_bucket(&h->addr)]; *pp && *pp != h; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = h->next;
	free(h);
}

/* ---- the byte budget ---------------------------------------------------- */

/*
 * A connection holding anything stops reading, at a record boundary, while
 * its host or the node holds its bound (>=), and waits on that one's list;
 * the list is woken when the holder is back under three quarters of it (so
 * a connection is not stopped and started on every call).  One holding
 * nothing always reads its next call, whatever the bounds: every client
 * progresses, and every stopped connection has something in flight whose
 * end wakes it, so no stop lasts longer than calls take.  That leaves the
 * bound exceeded by at most one call per connection (max_conns_per_host,
 * max_conns), where the call counts alone allowed 128.
 */
static bool rpcx_at_bound(uint64_t held, uint64_t bound)
{
	return bound && held >= bound;
}

static bool rpcx_under_low(uint64_t held, uint64_t bound)
{
	return !bound || held < bound - bound / 4;
}

static void rpcx_wait_del(struct rpc_conn *c)
{
	if (!c->bw_list)
		return;
	if (c->bw_prev)
		c->bw_prev->bw_next = c->bw_next;
	else
		c->bw_list->head = c->bw_next;
	if (c->bw_next)
		c->bw_next->bw_prev = c->bw_prev;
	c->bw_next = c->bw_prev = NULL;
	c->bw_list = NULL;
}

static void rpcx_wait_add(struct rpcx_waitq *q, struct rpc_conn *c)
{
	if (c->bw_list == q)
		return;
	rpcx_wait_del(c);
	c->bw_list = q;
	c->bw_next = q->head;
	if (q->head)
		q->head->bw_prev = c;
	q->head = c;
}

/*
 * The list @conn must wait on before it reads more, or NULL: it may read.
 * @resume: for a stopped connection, judged against the low marks.
 */
static struct rpcx_waitq *rpcx_budget_wait(struct rpc_conn *conn, bool resume)
{
	struct rpc_svc *svc = conn->lsn->svc;
	struct rpcx_host *h = conn->host;
	const struct rpc_limits *l = &svc->lim;

	if (conn->held == 0)
		return NULL;
	if (h && (resume ? !rpcx_under_low(h->held, l->max_held_bytes_per_host)
			 : rpcx_at_bound(h->held, l->max_held_bytes_per_host)))
		return &h->waiting;
	if (resume ? !rpcx_under_low(svc->held, l->max_held_bytes)
		   : rpcx_at_bound(svc->held, l->max_held_bytes))
		return &svc->waiting;
	return NULL;
}

static void rpcx_conn_maybe_resume(struct rpc_conn *conn);

/* Resume the connections waiting on @q (its holder is under its low mark);
 * one still held back by the other bound moves to that one's list. */
static void rpcx_wake(struct rpcx_waitq *q)
{
	struct rpc_conn *c = q->head, *next;

	q->head = NULL;
	for (; c; c = next) {
		next = c->bw_next;
		c->bw_list = NULL;
		c->bw_next = c->bw_prev = NULL;
		rpcx_conn_maybe_resume(c);
	}
}

static void rpcx_hold(struct rpc_conn *conn, uint64_t n)
{
	conn->held += n;
	if (conn->host)
		conn->host->held += n;
	conn->lsn->svc->held += n;
}

static void rpcx_release(struct rpc_conn *conn, uint64_t n)
{
	struct rpc_svc *svc = conn->lsn->svc;
	struct rpcx_host *h = conn->host;

	conn->held -= n;
	svc->held -= n;
	if (h) {
		h->held -= n;
		if (h->waiting.head && rpcx_under_low(h->held, svc->lim.max_held_bytes_per_host))
			rpcx_wake(&h->waiting);
	}
	if (svc->waiting.head && rpcx_under_low(svc->held, svc->lim.max_held_bytes))
		rpcx_wake(&svc->waiting);
}

/* @conn stopped reading at @q's bound: counted, and logged at most once a
 * second per address (host bound) or for the node. */
static void rpcx_budget_stopped(struct rpc_conn *conn, struct rpcx_waitq *q)
{
	struct rpc_svc *svc = conn->lsn->svc;
	struct rpcx_host *h = conn->host;
	bool node = !h || q == &svc->waiting;
	uint64_t now = uv_now(svc->loop);
	uint64_t *at = node ? &svc->budget_logged_ms : &h->budget_logged_ms;
	uint64_t *quiet = node ? &svc->budget_quiet : &h->budget_quiet;
	char a[80];

	if (node)
		svc->budget_stops_node++;
	else
		svc->budget_stops_host++;
	++*quiet;
	if (*at && now - *at < 1000)
		return;
	rpc_addr_str(&conn->peer, false, a, sizeof(a));
	if (node)
		log_warn("rpc: the node's calls in flight hold %" PRIu64 " bytes (max_inflight_mb); client %s has %" PRIu64 " of them and a connection of its stopped reading until some end (%" PRIu64 " stops since the last line)",
			 svc->held, a, h ? h->held : conn->held, *quiet);
	else
		log_warn("rpc: client %s's calls in flight hold %" PRIu64 " bytes (max_inflight_mb_per_host); a connection of its stopped reading until some end (%" PRIu64 " stops since the last line)",
			 a, h->held, *quiet);
	*quiet = 0;
	*at = now ? now : 1;
}

/* ---- TCP connections -------------------------------------------------- */

static void rpcx_conn_handle_closed(uv_handle_t *h)
{
	struct rpc_conn *conn = h->data;

	if (--conn->handles_open == 0)
		rpcx_conn_put(conn); /* the socket's reference */
}

static void rpcx_conn_close(struct rpc_conn *conn, const char *why)
{
	struct rpc_listener *lsn = conn->lsn;
	char a[80];

	if (conn->closing)
		return;
	conn->closing = true;
	/* Replies made earlier in this turn went out at once before replies
	 * were batched; keep it so (best effort, as any write before a close):
	 * a client whose next record was bad still gets the answers to the
	 * good ones. */
	if (conn->out_len &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) == 0) {
		uv_buf_t b = uv_buf_init((char *)conn->out, (unsigned)conn->out_len);
		(void)uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
	}
	conn->out_len = 0;
	if (why)
		log_debug("rpc: closing connection from %s: %s",
			  rpc_addr_str(&conn->peer, true, a, sizeof(a)), why);
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		lsn->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	conn->next = conn->prev = NULL;
	if (conn->svc_prev)
		conn->svc_prev->svc_next = conn->svc_next;
	else
		lsn->svc->conns = conn->svc_next;
	if (conn->svc_next)
		conn->svc_next->svc_prev = conn->svc_prev;
	conn->svc_next = conn->svc_prev = NULL;
	/* The host entry stays the connection's until it is freed: the bytes
	 * of its calls still in flight are the host's until they end. */
	if (conn->host)
		conn->host->nconns--;
	rpcx_wait_del(conn);
	lsn->svc->nconns--;
	if (lsn->stats)
		lsn->stats->conns_open--;
	uv_close((uv_handle_t *)&conn->tcp, rpcx_conn_handle_closed);
	uv_close((uv_handle_t *)&conn->idle, rpcx_conn_handle_closed);
}

static void rpcx_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct rpc_svc *svc;

	if (h->type == UV_TCP)
		svc = ((struct rpc_conn *)h->data)->lsn->svc;
	else
		svc = ((struct rpc_listener *)h->data)->svc;
	/* One buffer serves every socket: libuv hands it back in the read
	 * callback, which consumes it before the next allocation. */
	if (svc->rdbuf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	svc->rdbuf_busy = true;
	*buf = uv_buf_init((char *)svc->rdbuf, sizeof(svc->rdbuf));
}

static void rpcx_conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Reply bytes not yet taken by the kernel: queued writes plus this turn's. */
static size_t rpcx_conn_queued(struct rpc_conn *conn)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) + conn->out_len;
}

static void rpcx_refeed_cb(uv_idle_t *h);

/*
 * Read @conn again if it stopped and nothing holds it back any more: its
 * calls in flight, its queued replies (both under half their bound), its
 * host's and the node's bytes (under their low marks; else it waits on
 * that one's list).  Input it stopped in the middle of (conn->stash) is fed
 * first, from the listener's idle handle before the loop next waits
 * (lsn->refeed), never from inside the call that ended here.
 */
static void rpcx_conn_maybe_resume(struct rpc_conn *conn)
{
	struct rpcx_waitq *q;

	if (!conn->paused || conn->closing || conn->lsn->held)
		return;
	if (conn->inflight >= RPC_CONN_MAX_INFLIGHT / 2 ||
	    rpcx_conn_queued(conn) > RPC_CONN_MAX_QUEUED / 2)
		return;
	q = rpcx_budget_wait(conn, true);
	if (q) {
		rpcx_wait_add(q, conn);
		return;
	}
	rpcx_wait_del(conn);
	if (conn->stash) {
		if (!conn->refeed_queued) {
			conn->refeed_queued = true;
			rpcx_conn_get(conn);
			conn->refeed_next = conn->lsn->refeed;
			conn->lsn->refeed = conn;
			/* An idle handle: it runs before the loop's next wait
			 * and keeps it from blocking, whatever phase this is;
			 * the replies go out at that turn's flush. */
			uv_idle_start(&conn->lsn->refeed_idle, rpcx_refeed_cb);
		}
		return; /* paused until its stash is fed */
	}
	conn->paused = false;
	if (uv_read_start((uv_stream_t *)&conn->tcp, rpcx_alloc, rpcx_conn_read_cb) != 0)
		rpcx_conn_close(conn, "read restart failed");
}

/* Must @conn read no more now?  The list to wait on, if its bytes are why,
 * in *@q. */
static bool rpcx_conn_must_stop(struct rpc_conn *conn, struct rpcx_waitq **q)
{
	*q = rpcx_budget_wait(conn, false);
	return *q || conn->inflight >= RPC_CONN_MAX_INFLIGHT ||
	       rpcx_conn_queued(conn) >= RPC_CONN_MAX_QUEUED;
}

/* Stop reading @conn if a bound says so, or if @stashed (it stopped in the
 * middle of its input, which must wait for the resume). */
static void rpcx_conn_maybe_pause(struct rpc_conn *conn, bool stashed)
{
	struct rpcx_waitq *q;
	bool stop;

	if (conn->closing)
		return;
	stop = rpcx_conn_must_stop(conn, &q);
	if (!stop && !stashed)
		return;
	if (!conn->paused) {
		conn->paused = true;
		uv_read_stop((uv_stream_t *)&conn->tcp);
	}
	if (q && conn->bw_list != q) {
		rpcx_wait_add(q, conn);
		rpcx_budget_stopped(conn, q);
	}
	if (!stop)
		rpcx_conn_maybe_resume(conn); /* the bound went meanwhile */
}

void rpcx_conn_req_start(struct rpc_conn *conn, uint64_t charge)
{
	conn->inflight++;
	rpcx_hold(conn, charge);
}

void rpcx_conn_req_done(struct rpc_conn *conn, uint64_t charge)
{
	conn->inflight--;
	rpcx_release(conn, charge);
	rpcx_conn_maybe_resume(conn);
}

/* One whole record from the parser: dispatch it (the dispatcher copies out
 * what it keeps).  Stops the feed once the connection is closing or at a
 * bound: one read can hold a thousand small calls, and the bounds hold
 * per call, not per read. */
static int rpcx_conn_record(void *arg, const uint8_t *rec, size_t len, bool oversize)
{
	struct rpc_conn *conn = arg;
	struct rpcx_waitq *q;
	int rc;

	(void)oversize; /* fail mode: never set */
	conn->last_active = uv_now(conn->lsn->svc->loop);
	rc = rpcs_dispatch(conn->lsn, conn, &conn->peer, &conn->local, rec, len, conn->read_ns);
	if (rc < 0)
		return rc;
	return conn->closing || rpcx_conn_must_stop(conn, &q) ? 1 : 0;
}

/*
 * Feed @n bytes at @p (the read buffer or the connection's former stash,
 * which the caller frees) to @conn's parser.  What a bound left unfed is
 * copied to conn->stash and the connection stops reading until resumed.
 */
static void rpcx_conn_feed(struct rpc_conn *conn, const uint8_t *p, size_t n)
{
	struct rpc_svc *svc = conn->lsn->svc;
	size_t left = 0;
	int rc;

	rc = rm_feed_until(&conn->rm, p, n, rpcx_conn_record, conn, &left);
	if (rc == -EMSGSIZE) {
		char a[80];
		log_warn("rpc: client %s sent a record over max_record (%u bytes); connection closed",
			 rpc_addr_str(&conn->peer, true, a, sizeof(a)), svc->lim.max_record);
	}
	if (rc < 0) {
		rpcx_conn_close(conn, "bad record");
		return;
	}
	if (conn->closing)
		return;
	if (left) {
		conn->stash = malloc(left);
		if (!conn->stash) {
			rpcx_conn_close(conn, "out of memory");
			return;
		}
		memcpy(conn->stash, p + (n - left), left);
		conn->stash_len = left;
	}
	rpcx_conn_maybe_pause(conn, left != 0);
}

/* Count input from the source @src (a key: a connection's address, or
 * rpcx_udp_src_key's), noting a change of source (rpc_svc_input_count). */
static void rpcx_input(struct rpc_svc *svc, uint64_t src)
{
	svc->input++;
	if (src != svc->input_src) {
		svc->input_src = src;
		svc->input_switches++;
	}
}

/* A UDP source address as a key: FNV-1a of its bytes, odd, so that it is
 * never a connection's (aligned) address.  A collision only makes two
 * sources count as one. */
static uint64_t rpcx_udp_src_key(const struct sockaddr *addr)
{
	const uint8_t *p = (const uint8_t *)addr;
	size_t n = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					       : sizeof(struct sockaddr_in);
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h | 1;
}

static void rpcx_conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rpc_conn *conn = s->data;
	struct rpc_svc *svc = conn->lsn->svc;

	if (buf->base == (char *)svc->rdbuf)
		svc->rdbuf_busy = false;
	if (nread == 0)
		return;
	if (nread < 0) {
		rpcx_conn_close(conn, nread == UV_EOF ? NULL : uv_strerror((int)nread));
		return;
	}
	rpcx_input(svc, (uint64_t)(uintptr_t)conn);
	if (conn->lsn->stats)
		conn->lsn->stats->bytes_in += (uint64_t)nread;
	/* A stash fed later keeps this time: its calls waited since. */
	conn->read_ns = uv_hrtime();
	rpcx_conn_get(conn); /* dispatch may close it */
	rpcx_conn_feed(conn, (const uint8_t *)buf->base, (size_t)nread);
	rpcx_conn_put(conn);
}

/* Feed the stash of each connection resumed since the last turn; those
 * resumed meanwhile too (each feed takes at least one record, so this
 * ends). */
static void rpcx_refeed_all(struct rpc_listener *lsn)
{
	struct rpc_conn *conn;

	while ((conn = lsn->refeed)) {
		lsn->refeed = conn->refeed_next;
		conn->refeed_next = NULL;
		conn->refeed_queued = false;
		if (!conn->closing && !lsn->held && conn->paused && conn->stash) {
			uint8_t *p = conn->stash;
			size_t n = conn->stash_len;

			conn->stash = NULL;
			conn->stash_len = 0;
			conn->paused = false;
			rpcx_conn_feed(conn, p, n);
			free(p);
			if (!conn->closing && !conn->paused &&
			    uv_read_start((uv_stream_t *)&conn->tcp, rpcx_alloc,
					  rpcx_conn_read_cb) != 0)
				rpcx_conn_close(conn, "read restart failed");
		}
		rpcx_conn_put(conn);
	}
}

static void rpcx_refeed_cb(uv_idle_t *h)
{
	struct rpc_listener *lsn = h->data;

	rpcx_refeed_all(lsn);
	uv_idle_stop(h);
}

static void rpcx_idle_cb(uv_timer_t *t)
{
	struct rpc_conn *conn = t->data;
	uint64_t now = uv_now(conn->lsn->svc->loop);
	uint64_t limit = conn->lsn->svc->lim.idle_timeout_ms;

	if (conn->inflight == 0 && now - conn->last_active >= limit)
		rpcx_conn_close(conn, "idle");
}

/* May @c be closed to make room: nothing in flight, nothing to write. */
static bool rpcx_conn_evictable(struct rpc_conn *c)
{
	return !c->closing && c->inflight == 0 && rpcx_conn_queued(c) == 0;
}

/*
 * The connection to close to make room for @except, or NULL: of @host's
 * connections if @host is given, else of the address holding the most; the
 * one longest without a whole record (idle, or stuck in a partial one).
 */
static struct rpc_conn *rpcx_pick_victim(struct rpc_svc *svc, struct rpcx_host *host,
					 struct rpc_conn *except)
{
	struct rpc_conn *best = NULL;

	for (struct rpc_conn *c = svc->conns; c; c = c->svc_next) {
		if (c == except || !c->host || !rpcx_conn_evictable(c))
			continue;
		if (host && c->host != host)
			continue;
		if (!best || c->host->nconns > best->host->nconns ||
		    (c->host->nconns == best->host->nconns && c->last_active < best->last_active))
			best = c;
	}
	return best;
}

/* Refuse @conn (a limit is reached and nothing could be evicted), logging at
 * most one line a second per address and one a second for the node. */
static void rpcx_refuse(struct rpc_conn *conn, bool node_wide)
{
	struct rpc_svc *svc = conn->lsn->svc;
	uint64_t now = uv_now(svc->loop);
	struct rpcx_host *h = conn->host;
	uint64_t *count = node_wide || !h ? &svc->node_refused : &h->refused;
	uint64_t *at = node_wide || !h ? &svc->node_logged_ms : &h->logged_ms;
	char a[80];

	svc->refused++;
	++*count;
	if (*at == 0 || now - *at >= 1000) {
		if (node_wide)
			log_warn("rpc: connection limit of the node (max_conns %u) reached, nothing idle to close; refused a connection from %s (%" PRIu64 " refused since the last line)",
				 svc->lim.max_conns, rpc_addr_str(&conn->peer, false, a, sizeof(a)),
				 *count);
		else
			log_warn("rpc: client %s holds max_conns_per_host (%u) connections, none idle; refused a connection (%" PRIu64 " refused since the last line)",
				 rpc_addr_str(&conn->peer, false, a, sizeof(a)),
				 svc->lim.max_conns_per_host, *count);
		*count = 0;
		*at = now ? now : 1;
	}
	rpcx_conn_close(conn, "connection limit");
}

static void rpcx_evict(struct rpc_conn *victim, const char *why)
{
	victim->lsn->svc->evicted++;
	rpcx_conn_close(victim, why);
}

static void rpcx_accept_cb(uv_stream_t *server, int status);

static void rpcx_spare_closed(uv_handle_t *h)
{
	struct rpc_listener *lsn = h->data;

	lsn->spare_busy = false;
	if (lsn->accept_pending && !lsn->closing && lsn->has_tcp_sock) {
		/* A connection waited on the socket meanwhile: take it now. */
		lsn->accept_pending = false;
		rpcx_accept_cb((uv_stream_t *)&lsn->tcp, 0);
	}
	rpcx_lsn_put(lsn);
}

/*
 * No memory for a new connection: take it off the listening socket with
 * the spare handle and close it (the client connects again).  Left there,
 * libuv would stop accepting on this socket altogether until something
 * accepted it, so one failed allocation would make the VIP deaf.  If the
 * spare is still closing, the connection waits for it (rpcx_spare_closed).
 */
static void rpcx_accept_drop(struct rpc_listener *lsn, uv_stream_t *server)
{
	char a[80];

	rpc_addr_str(&lsn->addr, true, a, sizeof(a));
	if (lsn->spare_busy) {
		lsn->accept_pending = true;
		return;
	}
	uv_tcp_init(lsn->svc->loop, &lsn->spare);
	lsn->spare.data = lsn;
	lsn->spare_busy = true;
	rpcx_lsn_get(lsn);
	if (uv_accept(server, (uv_stream_t *)&lsn->spare) != 0)
		log_warn("rpc: %s: cannot take a connection off the socket", a);
	uv_close((uv_handle_t *)&lsn->spare, rpcx_spare_closed);
	log_warn("rpc: %s: no memory for a new connection; closed it", a);
}

static void rpcx_accept_cb(uv_stream_t *server, int status)
{
	struct rpc_listener *lsn = server->data;
	struct rpc_svc *svc = lsn->svc;
	struct rpc_conn *conn, *victim;
	int len;

	if (status < 0) {
		log_warn("rpc: accept failed: %s", uv_strerror(status));
		return;
	}
	conn = calloc(1, sizeof(*conn));
	if (!conn) {
		rpcx_accept_drop(lsn, server);
		return;
	}
	conn->lsn = lsn;
	rpcx_lsn_get(lsn);
	conn->refs = 1;
	rm_init(&conn->rm, svc->lim.max_record, RM_OVERSIZE_FAIL);
	uv_tcp_init(svc->loop, &conn->tcp);
	uv_timer_init(svc->loop, &conn->idle);
	conn->tcp.data = conn;
	conn->idle.data = conn;
	conn->handles_open = 2;
	conn->next = lsn->conns;
	if (lsn->conns)
		lsn->conns->prev = conn;
	lsn->conns = conn;
	conn->svc_next = svc->conns;
	if (svc->conns)
		svc->conns->svc_prev = conn;
	svc->conns = conn;
	svc->nconns++;
	if (lsn->stats) {
		lsn->stats->conns_accepted++;
		lsn->stats->conns_open++;
	}
	if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
		rpcx_conn_close(conn, "accept");
		return;
	}
	if (lsn->closing) {
		rpcx_conn_close(conn, "listener closing");
		return;
	}
	len = sizeof(conn->peer);
	uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &len);
	len = sizeof(conn->local);
	uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&conn->local, &len);
	conn->last_active = uv_now(svc->loop);
	conn->host = rpcx_host_get(svc, &conn->peer);
	if (!conn->host) {
		rpcx_conn_close(conn, "out of memory");
		return;
	}
	conn->host->nconns++;
	if (conn->host->nconns > svc->lim.max_conns_per_host) {
		victim = rpcx_pick_victim(svc, conn->host, conn);
		if (!victim) {
			rpcx_refuse(conn, false);
			return;
		}
		rpcx_evict(victim, "evicted: its address is at max_conns_per_host");
	}
	if (svc->nconns > svc->lim.max_conns) {
		victim = rpcx_pick_victim(svc, NULL, conn);
		if (!victim) {
			rpcx_refuse(conn, true);
			return;
		}
		rpcx_evict(victim, "evicted: the node is at max_conns");
	}
	uv_tcp_nodelay(&conn->tcp, 1);
	if (svc->lim.idle_timeout_ms) {
		uint64_t every = svc->lim.idle_timeout_ms / 4 + 1;
		uv_timer_start(&conn->idle, rpcx_idle_cb, every, every);
	}
	if (lsn->held) {
		/* Read once the listener serves (rpc_listener_serve). */
		conn->paused = true;
		return;
	}
	if (uv_read_start((uv_stream_t *)&conn->tcp, rpcx_alloc, rpcx_conn_read_cb) != 0)
		rpcx_conn_close(conn, "read start");
}

/* ---- sending ---------------------------------------------------------- */

/* A queued write: owns the connection's former output buffer and, for a
 * reply sent with its data in place (rpcx_out_send_tail), that data. */
struct rpcx_wreq {
	uv_write_t w;
	struct rpc_conn *conn;
	uint64_t charge;             /* bytes queued: the byte budget's */
	uint8_t *buf;
	void *tail;
	void (*tail_free)(void *);   /* NULL: free(3) */
};

/* Release a reply's trailing data the way its procedure asked. */
static void rpcx_tail_release(void *tail, void (*tail_free)(void *))
{
	if (tail_free)
		tail_free(tail);
	else
		free(tail);
}

static void rpcx_write_cb(uv_write_t *w, int status)
{
	struct rpcx_wreq *wr = (struct rpcx_wreq *)w;

	rpcx_release(wr->conn, wr->charge);
	if (status < 0 && status != UV_ECANCELED)
		rpcx_conn_close(wr->conn, "write failed");
	else
		rpcx_conn_maybe_resume(wr->conn);
	rpcx_conn_put(wr->conn);
	free(wr->buf);
	rpcx_tail_release(wr->tail, wr->tail_free);
	free(wr);
}

/*
 * Write @bufs (the first is always the connection's output buffer, whole):
 * as much as the socket takes now, the rest handed to a queued write that
 * takes the output buffer and @tail (released with @tail_free when
 * written; here when everything went at once).
 */
static void rpcx_conn_writev(struct rpc_conn *conn, uv_buf_t *bufs, unsigned nbufs, void *tail,
			     void (*tail_free)(void *))
{
	struct rpcx_wreq *wr;
	size_t total = 0, n = 0;
	unsigned i = 0;
	int rc;

	for (unsigned k = 0; k < nbufs; k++)
		total += bufs[k].len;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) == 0) {
		rc = uv_try_write((uv_stream_t *)&conn->tcp, bufs, nbufs);
		if (rc >= 0 && (size_t)rc == total) {
			conn->out_len = 0;
			if (conn->out_cap > RPC_OUT_KEEP) {
				free(conn->out);
				conn->out = NULL;
				conn->out_cap = 0;
			}
			rpcx_tail_release(tail, tail_free);
			return;
		}
		if (rc < 0 && rc != UV_EAGAIN) {
			rpcx_tail_release(tail, tail_free);
			rpcx_conn_close(conn, "write failed");
			return;
		}
		if (rc > 0)
			n = (size_t)rc;
	}
	wr = malloc(sizeof(*wr));
	if (!wr) {
		/* Part of a record may be out: the stream is unusable. */
		rpcx_tail_release(tail, tail_free);
		rpcx_conn_close(conn, "out of memory");
		return;
	}
	wr->conn = conn;
	wr->buf = conn->out;
	wr->tail = tail;
	wr->tail_free = tail_free;
	wr->charge = total - n;
	conn->out = NULL;
	conn->out_len = conn->out_cap = 0;
	rpcx_conn_get(conn);
	rpcx_hold(conn, wr->charge);
	/* Skip what the socket took: whole buffers, then part of one. */
	while (i < nbufs && n >= bufs[i].len)
		n -= bufs[i++].len;
	bufs[i].base += n;
	bufs[i].len -= n;
	if (uv_write(&wr->w, (uv_stream_t *)&conn->tcp, bufs + i, nbufs - i, rpcx_write_cb) != 0) {
		rpcx_release(conn, wr->charge);
		rpcx_conn_put(conn);
		free(wr->buf);
		rpcx_tail_release(wr->tail, wr->tail_free);
		free(wr);
		rpcx_conn_close(conn, "write failed");
	}
}

/* Write this turn's replies of @conn. */
static void rpcx_conn_flush(struct rpc_conn *conn)
{
	uv_buf_t b;

	if (conn->closing || conn->out_len == 0)
		return;
	b = uv_buf_init((char *)conn->out, (unsigned)conn->out_len);
	rpcx_conn_writev(conn, &b, 1, NULL, NULL);
}

static void rpcx_flush_all(struct rpc_listener *lsn)
{
	struct rpc_conn *list;

	list = lsn->dirty;
	lsn->dirty = NULL;
	if (lsn->flush_armed) {
		uv_prepare_stop(&lsn->flush_prep);
		uv_check_stop(&lsn->flush_chk);
		lsn->flush_armed = false;
	}
	while (list) {
		struct rpc_conn *conn = list;

		list = conn->dirty_next;
		conn->dirty_next = NULL;
		conn->dirty = false;
		rpcx_conn_flush(conn);
		rpcx_conn_put(conn);
	}
}

static void rpcx_flush_prep_cb(uv_prepare_t *h)
{
	rpcx_flush_all(h->data);
}

static void rpcx_flush_chk_cb(uv_check_t *h)
{
	rpcx_flush_all(h->data);
}

uint8_t *rpcx_out_reserve(struct rpc_conn *conn, size_t len, size_t *room)
{
	size_t need, cap;
	uint8_t *nout;

	if (len > RM_LEN_MASK)
		return NULL;
	need = conn->out_len + RPC_MARK_LEN + len;
	if (need > conn->out_cap) {
		cap = conn->out_cap ? conn->out_cap : 4096;
		while (cap < need)
			cap *= 2;
		nout = realloc(conn->out, cap);
		if (!nout)
			return NULL;
		conn->out = nout;
		conn->out_cap = cap;
	}
	*room = conn->out_cap - conn->out_len - RPC_MARK_LEN;
	if (*room > RM_LEN_MASK)
		*room = RM_LEN_MASK;
	return conn->out + conn->out_len + RPC_MARK_LEN;
}

void rpcx_out_commit(struct rpc_conn *conn, size_t len)
{
	struct rpc_listener *lsn = conn->lsn;

	rm_put_mark(conn->out + conn->out_len, (uint32_t)len, true);
	conn->out_len += RPC_MARK_LEN + len;
	if (lsn->stats)
		lsn->stats->bytes_out += RPC_MARK_LEN + len;
	if (conn->dirty)
		return;
	conn->dirty = true;
	rpcx_conn_get(conn);
	conn->dirty_next = lsn->dirty;
	lsn->dirty = conn;
	if (!lsn->flush_armed) {
		uv_prepare_start(&lsn->flush_prep, rpcx_flush_prep_cb);
		uv_check_start(&lsn->flush_chk, rpcx_flush_chk_cb);
		lsn->flush_armed = true;
	}
}

int rpcx_out_send_tail(struct rpc_conn *conn, const uint8_t *hdr, size_t hlen,
		       void *tail, size_t tlen, void (*tail_free)(void *))
{
	/* Read only (by the kernel), so one copy serves every connection. */
	static const uint8_t zeros[4];
	struct rpc_listener *lsn = conn->lsn;
	size_t pad = (4 - (tlen & 3)) & 3, room;
	uv_buf_t bufs[3];
	uint8_t *p;

	if (conn->closing) {
		rpcx_tail_release(tail, tail_free);
		return 0; /* dropped, as every reply to a closed connection */
	}
	if (tlen > RM_LEN_MASK - pad || hlen > RM_LEN_MASK - pad - tlen) {
		rpcx_tail_release(tail, tail_free);
		return -EMSGSIZE;
	}
	p = rpcx_out_reserve(conn, hlen, &room);
	if (!p) {
		rpcx_tail_release(tail, tail_free);
		return -ENOMEM;
	}
	memcpy(p, hdr, hlen);
	rm_put_mark(conn->out + conn->out_len, (uint32_t)(hlen + tlen + pad), true);
	conn->out_len += RPC_MARK_LEN + hlen;
	if (lsn->stats)
		lsn->stats->bytes_out += RPC_MARK_LEN + hlen + tlen + pad;
	/* The records before it in the output go in the same write; the
	 * connection may stay on the dirty list with nothing left to flush. */
	bufs[0] = uv_buf_init((char *)conn->out, (unsigned)conn->out_len);
	bufs[1] = uv_buf_init(tail, (unsigned)tlen);
	bufs[2] = uv_buf_init((char *)zeros, (unsigned)pad);
	rpcx_conn_writev(conn, bufs, pad ? 3 : 2, tail, tail_free);
	return 0;
}

struct rpcx_ureq {
	uv_udp_send_t s;
	struct rpc_listener *lsn;
	uint8_t *buf;
};

static void rpcx_udp_send_cb(uv_udp_send_t *s, int status)
{
	struct rpcx_ureq *ur = (struct rpcx_ureq *)s;

	rpcx_lsn_put(ur->lsn);
	free(ur->buf);
	free(ur);
}

void rpcx_udp_send(struct rpc_listener *lsn, const struct sockaddr_storage *peer,
		   const uint8_t *buf, size_t len)
{
	struct rpcx_ureq *ur;
	uv_buf_t b;
	int n;

	if (lsn->closing || !lsn->has_udp)
		return;
	if (lsn->stats)
		lsn->stats->bytes_out += len;
	b = uv_buf_init((char *)buf, (unsigned)len);
	n = uv_udp_try_send(&lsn->udp, &b, 1, (const struct sockaddr *)peer);
	if (n >= 0 || n != UV_EAGAIN)
		return; /* UDP: a lost reply is the client's retransmit */
	/* The socket buffer is full: queue a copy (@buf is reused). */
	ur = malloc(sizeof(*ur));
	if (!ur)
		return;
	ur->buf = malloc(len);
	if (!ur->buf) {
		free(ur);
		return;
	}
	memcpy(ur->buf, buf, len);
	b.base = (char *)ur->buf;
	ur->lsn = lsn;
	rpcx_lsn_get(lsn);
	if (uv_udp_send(&ur->s, &lsn->udp, &b, 1, (const struct sockaddr *)peer,
			rpcx_udp_send_cb) != 0) {
		rpcx_lsn_put(lsn);
		free(ur->buf);
		free(ur);
	}
}

/* ---- UDP -------------------------------------------------------------- */

static void rpcx_udp_recv_cb(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
			     const struct sockaddr *addr, unsigned flags)
{
	struct rpc_listener *lsn = u->data;
	struct sockaddr_storage peer;

	if (buf->base == (char *)lsn->svc->rdbuf)
		lsn->svc->rdbuf_busy = false;
	if (nread <= 0 || !addr || lsn->closing)
		return;
	rpcx_input(lsn->svc, rpcx_udp_src_key(addr));
	if (flags & UV_UDP_PARTIAL) {
		log_debug("rpc: truncated UDP datagram dropped");
		return;
	}
	if (lsn->stats)
		lsn->stats->bytes_in += (uint64_t)nread;
	if (!rpcs_udp_admit(lsn, addr))
		return;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							: sizeof(struct sockaddr_in));
	rpcx_lsn_get(lsn);
	(void)rpcs_dispatch(lsn, NULL, &peer, &lsn->addr, (const uint8_t *)buf->base,
			    (size_t)nread, uv_hrtime());
	rpcx_lsn_put(lsn);
}

/* The socket's count of datagrams the kernel dropped (receive buffer
 * full), or 0 if it cannot be read. */
static uint32_t rpcx_udp_kernel_drops(struct rpc_listener *lsn)
{
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mi);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&lsn->udp, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0 ||
	    len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
		return 0;
	return mi[SK_MEMINFO_DROPS];
}

void rpcx_udp_pause(struct rpc_listener *lsn)
{
	if (lsn->udp_paused || !lsn->has_udp || lsn->closing || lsn->held)
		return;
	uv_udp_recv_stop(&lsn->udp);
	lsn->udp_paused = true;
	lsn->drops_at_pause = rpcx_udp_kernel_drops(lsn);
}

uint64_t rpcx_udp_resume(struct rpc_listener *lsn)
{
	uint32_t drops = 0;

	if (!lsn->udp_paused)
		return 0;
	lsn->udp_paused = false;
	/* Closed or quiesced meanwhile: its socket is gone or held. */
	if (!lsn->has_udp || lsn->closing || lsn->held)
		return 0;
	drops = rpcx_udp_kernel_drops(lsn) - lsn->drops_at_pause;
	/* EALREADY: rpc_listener_serve restarted it meanwhile. */
	int rc = uv_udp_recv_start(&lsn->udp, rpcx_alloc, rpcx_udp_recv_cb);
	if (rc != 0 && rc != UV_EALREADY)
		log_warn("rpc: cannot read UDP requests on a listener");
	return drops;
}

/* ---- listeners -------------------------------------------------------- */

int rpc_listen(struct rpc_svc *svc, const struct sockaddr *addr, unsigned flags,
	       void *ctx, struct rpc_listener **out)
{
	struct rpc_listener *lsn = calloc(1, sizeof(*lsn));
	size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int rc;

	if (!lsn)
		return -ENOMEM;
	lsn->svc = svc;
	lsn->ctx = ctx;
	lsn->refs = 1; /* the caller's, dropped by rpc_listener_close */
	lsn->udp_tx_fd = -1;
	memcpy(&lsn->addr, addr, alen);

	if (flags & RPC_LISTEN_TCP) {
		uv_tcp_init(svc->loop, &lsn->tcp);
		lsn->tcp.data = lsn;
		lsn->has_tcp = lsn->has_tcp_sock = true;
		rpcx_lsn_get(lsn);
		uv_prepare_init(svc->loop, &lsn->flush_prep);
		uv_check_init(svc->loop, &lsn->flush_chk);
		uv_idle_init(svc->loop, &lsn->refeed_idle);
		lsn->flush_prep.data = lsn->flush_chk.data = lsn->refeed_idle.data = lsn;
		rpcx_lsn_get(lsn);
		rpcx_lsn_get(lsn);
		rpcx_lsn_get(lsn);
		rc = uv_tcp_bind(&lsn->tcp, addr, 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)&lsn->tcp, 1024, rpcx_accept_cb);
		if (rc != 0)
			goto fail;
	}
	if (flags & RPC_LISTEN_UDP) {
		uv_udp_init(svc->loop, &lsn->udp);
		lsn->udp.data = lsn;
		lsn->has_udp = true;
		rpcx_lsn_get(lsn);
		rc = uv_udp_bind(&lsn->udp, addr, 0);
		if (rc == 0) {
			uv_os_fd_t fd;

			if (uv_fileno((uv_handle_t *)&lsn->udp, &fd) == 0) {
				pthread_mutex_lock(&svc->udp_tx_mu);
				lsn->udp_tx_fd = fd;
				pthread_mutex_unlock(&svc->udp_tx_mu);
			}
		}
		if (rc == 0 && !(flags & RPC_LISTEN_HELD))
			rc = uv_udp_recv_start(&lsn->udp, rpcx_alloc, rpcx_udp_recv_cb);
		if (rc != 0)
			goto fail;
	}
	lsn->held = flags & RPC_LISTEN_HELD;
	*out = lsn;
	return 0;
fail:
	rpc_listener_close(lsn);
	return rc; /* libuv errors are already negative errno values */
}

void rpc_listener_serve(struct rpc_listener *lsn)
{
	if (!lsn->held || lsn->closing)
		return;
	lsn->held = false;
	if (lsn->has_udp && uv_udp_recv_start(&lsn->udp, rpcx_alloc, rpcx_udp_recv_cb) != 0)
		log_warn("rpc: cannot read UDP requests on a listener");
	/* Each connection accepted while held waits as paused; resume looks
	 * at back-pressure too, as after any pause.  The list may lose a
	 * member on the way (a failed restart closes it): take next first. */
	for (struct rpc_conn *c = lsn->conns, *next; c; c = next) {
		next = c->next;
		rpcx_conn_maybe_resume(c);
	}
}

void rpc_listener_quiesce(struct rpc_listener *lsn)
{
	if (lsn->closing)
		return;
	lsn->held = true;
	for (struct rpc_conn *c = lsn->conns; c; c = c->next) {
		if (c->closing || c->paused)
			continue;
		c->paused = true;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
	/* The listening sockets go now (uv_close closes the descriptor at
	 * once), so another process can bind the address; the flush handles
	 * stay for the replies still due on the connections. */
	if (lsn->has_tcp_sock) {
		uv_close((uv_handle_t *)&lsn->tcp, rpcx_lsn_free_cb);
		lsn->has_tcp_sock = false;
	}
	if (lsn->has_udp) {
		rpcx_udp_tx_off(lsn);
		uv_close((uv_handle_t *)&lsn->udp, rpcx_lsn_free_cb);
		lsn->has_udp = false;
	}
}

void rpc_listener_close(struct rpc_listener *lsn)
{
	if (lsn->closing)
		return;
	lsn->closing = true;
	rpcs_udp_unpause(lsn);
	while (lsn->conns)
		rpcx_conn_close(lsn->conns, NULL);
	/* Both only drop references now: every conn is closing. */
	rpcx_refeed_all(lsn);
	rpcx_flush_all(lsn);
	if (lsn->has_tcp) {
		if (lsn->has_tcp_sock)
			uv_close((uv_handle_t *)&lsn->tcp, rpcx_lsn_free_cb);
		uv_close((uv_handle_t *)&lsn->flush_prep, rpcx_lsn_free_cb);
		uv_close((uv_handle_t *)&lsn->flush_chk, rpcx_lsn_free_cb);
		uv_close((uv_handle_t *)&lsn->refeed_idle, rpcx_lsn_free_cb);
	}
	if (lsn->has_udp) {
		rpcx_udp_tx_off(lsn);
		uv_close((uv_handle_t *)&lsn->udp, rpcx_lsn_free_cb);
	}
	rpcx_lsn_put(lsn);
}
