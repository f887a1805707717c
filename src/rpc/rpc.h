/*
 * rpc.h - ONC RPC (RFC 5531) server side: listeners, dispatch, replies.
 *
 * The transport owns sockets and record marking; a program is a table of
 * procedures (designated initialisers), each with its XDR argument decoder,
 * result encoder and handler.  Everything here runs on the one event loop,
 * except handlers of procedures marked .blocking, which run on libuv's
 * thread pool and must touch no loop-owned state.
 *
 * Request lifetime:
 *   transport decodes header + credentials -> finds program/version/proc ->
 *   allocates req->args (args_size, zeroed) and decodes into it ->
 *   allocates req->res (res_size, zeroed) -> calls fn(req).
 *   fn returns an rpc_disposition.  For RPC_DONE_ASYNC the handler keeps the
 *   request and later calls rpc_req_finish() on the loop thread exactly once.
 *   After the reply is sent (or dropped) the transport frees args and res
 *   with xdr_free(), so every pointer a handler stores in res must be
 *   malloc(3)ed and owned by res.
 */
#ifndef SGNFS_RPC_H
#define SGNFS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
/* This header's path shadows libtirpc's <rpc/rpc.h> for every file built
 * with -Isrc (rpcgen output included), so it pulls libtirpc's in by its full
 * path and is a superset of it. */
#include <tirpc/rpc/rpc.h>
#include <uv.h>

#define RPC_AUTH_MAX_GIDS     16
#define RPC_AUTH_MAX_MACHNAME 255

enum rpc_disposition {
	RPC_DONE_REPLY = 0, /* res is filled: encode and send it */
	RPC_DONE_NOREPLY,   /* send nothing (e.g. NLM _MSG, answered by a call) */
	RPC_DONE_ASYNC,     /* handler keeps req, calls rpc_req_finish() later */
	RPC_DONE_SYSERR,    /* reply SYSTEM_ERR */
	RPC_DONE_GARBAGE,   /* reply GARBAGE_ARGS */
};

struct rpc_cred {
	uint32_t flavor;                   /* AUTH_NONE (0) or AUTH_SYS (1) */
	uint32_t stamp;
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[RPC_AUTH_MAX_GIDS];
	char machinename[RPC_AUTH_MAX_MACHNAME + 1]; /* NUL-terminated, untrusted */
};

/* xdr_void for procedure tables: libtirpc declares xdr_void(void), which
 * does not cast cleanly to xdrproc_t. */
static inline bool_t rpc_xdr_void(XDR *x, void *p)
{
	(void)x;
	(void)p;
	return TRUE;
}

struct rpc_req;
struct rpc_svc;
struct rpc_listener;

struct rpc_proc {
	const char *name;
	xdrproc_t xdr_args;
	size_t args_size;
	xdrproc_t xdr_res;
	size_t res_size;
	enum rpc_disposition (*fn)(struct rpc_req *req);
	bool blocking; /* run fn on the thread pool (disk I/O) */
	/*
	 * Optional, for a .blocking procedure: tried first, on the loop, for
	 * calls that can be answered without blocking (a cache hit).  true:
	 * res is filled, reply it; false: res untouched, run fn on the pool
	 * as usual.  Must not block.
	 */
	bool (*on_loop)(struct rpc_req *req);
	/* Not idempotent: its replies go to the duplicate-request cache
	 * (rpc_drc.h), so a retransmission gets the first reply. */
	bool drc;
	/*
	 * Optional, for a .blocking procedure whose results end in a large
	 * opaque (READ's data): on TCP the opaque's bytes are written from
	 * the handler's own buffer, not copied into the reply.  On the pool
	 * thread, after the handler: xdr_res_head encodes the results up to
	 * and including the opaque's length word (for results without such
	 * an opaque, exactly as xdr_res); then res_tail detaches the opaque
	 * from @res (so xdr_free leaves it) and returns it with its length,
	 * the buffer now the transport's, which sends it, then the XDR
	 * padding, and releases it once written.  NULL: no opaque, the head
	 * is the whole reply.  Not used on UDP nor with .drc.
	 */
	xdrproc_t xdr_res_head;
	void *(*res_tail)(void *res, uint32_t *len);
	/*
	 * Optional, with res_tail: releases what res_tail returned, on any
	 * thread (NULL: free(3)).  With it set, the opaque is never left to
	 * xdr_free: whatever way the reply goes (UDP, a failed encoding, a
	 * request dropped), res_tail detaches it first and this releases it,
	 * so a handler may fill it from its own allocator (READ: iobuf.h).
	 */
	void (*tail_free)(void *tail);
	/*
	 * Optional: arguments decoded without an allocation.  args_room bytes
	 * are set aside in the request's own block; before the arguments are
	 * decoded, args_prep points *every* variable-length field of theirs at
	 * a share of @room as large as its .x bound (XDR decodes into a buffer
	 * it is given and allocates only where it is given none), so they own
	 * nothing and are never xdr_free'd.  args_unprep runs before the
	 * results are xdr_free'd and sets back to NULL every pointer of theirs
	 * into the room (rpc_req_in_room), which is not the allocator's to
	 * free: a handler may point a result at argument bytes in the room (an
	 * NLM cookie echoed) for the request's lifetime.  It must be
	 * idempotent (it may run twice: on the pool thread, then the loop).
	 */
	size_t args_room;
	void (*args_prep)(void *args, uint8_t *room);
	void (*args_unprep)(struct rpc_req *req);
	/*
	 * Optional, with args_room: what the decoded @args use of their room
	 * (args_room_used), and their copy into @to with every pointer into the
	 * room moved into @room, of that many bytes (args_move; @to is the
	 * copy's argument structure, @from is left as it was).  With both, a
	 * call's block is cut to what its arguments hold right after they are
	 * decoded: a call waiting in flight (an NLM LOCK parked until its
	 * journal batch is durable) then holds ~1 KiB instead of the .x
	 * bounds' 5 KiB.  args_move must leave every pointer it sets strictly
	 * inside @room (even one of an empty field) so args_unprep finds it.
	 */
	size_t (*args_room_used)(const void *args);
	void (*args_move)(void *to, const void *from, uint8_t *room);
	/*
	 * Optional: the most bytes the results of a call with these decoded
	 * @args may hold beyond res_size (READ: its count, capped as the
	 * handler caps it).  Counted, with the record and the request's block,
	 * against the byte bounds of its connection's host and of the node
	 * (rpc_limits.max_held_bytes*) until the call ends; NULL: none.
	 */
	size_t (*res_bytes)(const void *args);
};

struct rpc_vers {
	uint32_t vers;
	uint32_t nprocs;
	const struct rpc_proc *procs; /* indexed by procedure number; .fn NULL = PROC_UNAVAIL */
};

struct rpc_prog {
	const char *name;
	uint32_t prog;
	uint32_t vers_lo, vers_hi;        /* range reported in PROG_MISMATCH */
	const struct rpc_vers *const *vers; /* [v - vers_lo], NULL entries = gaps */
};

/* One request.  Fields are read-only for handlers except args/res contents. */
struct rpc_req {
	uint32_t xid, prog, vers, proc;
	struct rpc_cred cred;
	struct sockaddr_storage peer;  /* the client's address and port */
	struct sockaddr_storage local; /* address the request arrived on (a VIP) */
	bool is_tcp;
	void *svc_ctx;                 /* the listener's ctx (its service group) */
	const struct rpc_proc *pd;
	void *args;                    /* owned by req */
	void *res;                     /* owned by req, freed with xdr_free(pd->xdr_res) */
	void *priv;                    /* transport-private */
};

/* Does @p point into @req's args_room (rpc_proc.args_room)?  Such bytes
 * live as long as the request and are never freed on their own. */
bool rpc_req_in_room(const struct rpc_req *req, const void *p);

struct rpc_limits {
	uint32_t max_record;      /* bytes; a bigger TCP record closes the connection */
	uint32_t max_conns;       /* accepted TCP connections per svc */
	uint32_t max_conns_per_host; /* of one source address; 0 = max_conns */
	uint32_t max_queued_per_ctx; /* blocking requests waiting per group; 0 = 256 */
	/* UDP requests of one source address waiting, in every group's
	 * queue; 0 = max_queued_per_ctx. */
	uint32_t max_queued_per_host;
	uint32_t idle_timeout_ms; /* idle TCP connections are closed */
	/* Duplicate-request cache (rpc_drc.h): entries on the node (0: off),
	 * of one source address, and how long a reply is kept. */
	uint32_t drc_entries;
	uint32_t drc_entries_per_host;
	uint32_t drc_ttl_ms;
	/*
	 * Bytes the TCP calls in flight and their queued replies may hold, of
	 * one source address and of the node (0: no bound).  At its bound a
	 * connection with anything in flight stops reading until its host and
	 * the node are back under three quarters of theirs; one with nothing
	 * in flight always reads its next call, so every client progresses.
	 */
	uint64_t max_held_bytes_per_host;
	uint64_t max_held_bytes;
};

/*
 * Create a service on @loop.  Returns 0 or -errno.  Caller frees with
 * rpc_svc_free() after closing every listener and once no request is left;
 * if the service ran blocking handlers, rpc_svc_free closes a handle of
 * @loop, whose memory goes when @loop runs once more (uv_run NOWAIT)
 * before uv_loop_close.
 */
int rpc_svc_new(uv_loop_t *loop, const struct rpc_limits *lim, struct rpc_svc **out);
void rpc_svc_free(struct rpc_svc *svc);
/* @prog must outlive the svc (normally a static const table). */
int rpc_svc_register(struct rpc_svc *svc, const struct rpc_prog *prog);
uv_loop_t *rpc_svc_loop(struct rpc_svc *svc);
void rpc_svc_stats(const struct rpc_svc *svc, uint64_t *calls, uint64_t *conns);
/* Connections refused and evicted by the limits since start (docs/configuration.md, Limits). */
void rpc_svc_limit_stats(const struct rpc_svc *svc, uint64_t *refused, uint64_t *evicted);
/* The byte budget: bytes TCP calls in flight and queued replies hold now,
 * and connections stopped at their host's / the node's bound since start. */
void rpc_svc_budget_stats(const struct rpc_svc *svc, uint64_t *held, uint64_t *stops_host,
			  uint64_t *stops_node);
/* UDP datagrams dropped because their group's queue was full or their
 * source address had max_queued_per_host requests waiting, since start;
 * of those, the second kind. */
uint64_t rpc_svc_udp_dropped(const struct rpc_svc *svc);
/* Reads that brought bytes and datagrams received, since start (loop
 * thread): it moves whenever a client sent something; *@switches, those
 * that came from another source (connection, UDP address) than the input
 * before them. */
uint64_t rpc_svc_input_count(const struct rpc_svc *svc, uint64_t *switches);
uint64_t rpc_svc_udp_dropped_host(const struct rpc_svc *svc);
/* The blocking requests of context @ctx (a group) waiting for the thread
 * pool (*queued) and on it (*jobs) now; 0 and 0 for a context with none. */
void rpc_svc_ctx_queue(const struct rpc_svc *svc, const void *ctx, uint32_t *queued, uint32_t *jobs);
struct rpc_drc_stats;
/* The node's duplicate-request cache counters (rpc_drc.h). */
void rpc_svc_drc_stats(const struct rpc_svc *svc, struct rpc_drc_stats *out);

#define RPC_LISTEN_TCP 1u
#define RPC_LISTEN_UDP 2u
/* Listen, but read nothing until rpc_listener_serve: TCP connections are
 * accepted (a client is never refused) and their requests wait in the
 * kernel; UDP datagrams wait in the socket's buffer. */
#define RPC_LISTEN_HELD 4u
/*
 * Bind @addr (with port) for TCP and/or UDP; requests carry @ctx in
 * req->svc_ctx.  Returns 0 or -errno (-EADDRINUSE, -EADDRNOTAVAIL ...).
 */
int rpc_listen(struct rpc_svc *svc, const struct sockaddr *addr, unsigned flags,
	       void *ctx, struct rpc_listener **out);
/*
 * Have @release(ctx) called when @l is finally freed: after its sockets are
 * closed and every request that arrived on it has finished.  That is the
 * moment a ctx shared with in-flight requests may be destroyed.
 */
void rpc_listener_set_release(struct rpc_listener *l, void (*release)(void *ctx));

/* A listener opened with RPC_LISTEN_HELD starts reading requests (from
 * the connections accepted meanwhile too).  No-op on a serving listener. */
void rpc_listener_serve(struct rpc_listener *l);

/*
 * Stop taking anything on @l while keeping its connections open: the
 * listening sockets close (the address and port are free for another
 * process to bind), no connection reads another request, requests in
 * flight still get their replies.  A client whose connection stays open
 * does not reconnect yet, so it cannot be refused while nobody listens;
 * rpc_listener_close then closes the connections.
 */
void rpc_listener_quiesce(struct rpc_listener *l);

/* Closes the sockets and every connection accepted on them.  Idempotent-safe
 * to call once; @l is freed asynchronously. */
void rpc_listener_close(struct rpc_listener *l);

/*
 * Complete a request a handler kept (RPC_DONE_ASYNC).  @disp is one of
 * RPC_DONE_REPLY / NOREPLY / SYSERR / GARBAGE.  Frees @req.  Loop thread only.
 */
void rpc_req_finish(struct rpc_req *req, enum rpc_disposition disp);

/* Format an address as "a.b.c.d" or "a.b.c.d:port" into buf (>= 64 bytes). */
const char *rpc_addr_str(const struct sockaddr_storage *ss, bool with_port,
			 char *buf, size_t len);
uint16_t rpc_addr_port(const struct sockaddr_storage *ss);
/* True if the address is in 127.0.0.0/8 or ::1. */
bool rpc_addr_is_loopback(const struct sockaddr_storage *ss);

#endif
