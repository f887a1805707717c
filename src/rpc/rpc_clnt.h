/*
 * rpc_clnt.h - ONC RPC (RFC 5531) client side on the libuv loop.
 *
 * A handle (struct rpcc_clnt) talks to one server address, program and
 * version over UDP or TCP, from an explicit local source address when one is
 * given (a node sends NLM_GRANTED and SM_NOTIFY *from* a VIP; a simulated
 * client host sends from its own 127.x address).  Calls are asynchronous:
 * rpcc_call() encodes the arguments at once and returns; the callback runs
 * later on the loop thread with the decoded result or an error.  Nothing
 * here blocks the loop.
 *
 * Transports:
 *   UDP: one connected socket.  A call is retransmitted (same xid) after
 *        retrans_ms, the interval doubling up to retrans_max_ms, until
 *        total_ms have passed.
 *   TCP: one connection, opened on the first call and re-opened on demand.
 *        Calls are never retransmitted on a live connection; when it breaks,
 *        every unanswered call is re-sent on the next one (same xid) until
 *        its total_ms is up.  Replies may arrive in any number of fragments
 *        (record marking); a reply record larger than max_reply fails only
 *        its own call, with -EMSGSIZE, and is skipped without buffering.
 *   On both, "connection refused" (ICMP port unreachable, TCP RST on
 *   connect) fails every waiting call at once with -ECONNREFUSED: nobody is
 *   listening, and waiting would only delay the caller's own recovery.
 *   Datagram handle (rpcc_new_dgram): one unconnected UDP socket from a
 *        given source address, each call to a server, program and version
 *        of its own (rpcc_call_to), retransmitted as on UDP.  For a node
 *        that calls thousands of hosts once each (SM_NOTIFY after a
 *        takeover): one socket for all of them instead of a socket, a bind
 *        and a connect per call.  A reply completes a call only when it
 *        comes from the address and port the call went to.  No ICMP error
 *        reaches an unconnected socket, so a host where nothing listens
 *        times out (-ETIMEDOUT) instead of being refused.
 *
 * Errors passed to callbacks (and returned by functions) are 0, a negative
 * errno, or one of the RPCC_ERR_* codes below, which are disjoint from
 * errno values; rpcc_strerror() names any of them.
 *
 * Lifetimes: the caller's args are encoded before rpcc_call() returns and
 * may be freed then.  The decoded result lives until the callback returns
 * (then it is xdr_free()d); copy what you keep.  rpcc_close() completes
 * every outstanding call with -ECANCELED before it returns and frees the
 * handle once its sockets are closed; the handle must not be used after.
 * All functions are loop-thread only.
 */
#ifndef SGNFS_RPC_CLNT_H
#define SGNFS_RPC_CLNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <rpc/rpc.h>
#include <uv.h>

/* RPC-level failures, each distinct (negative, outside the errno range). */
enum rpcc_err {
	RPCC_ERR_PROG_UNAVAIL  = -20001, /* accepted: program not offered */
	RPCC_ERR_PROG_MISMATCH = -20002, /* accepted: version not offered (low/high set) */
	RPCC_ERR_PROC_UNAVAIL  = -20003, /* accepted: procedure not offered */
	RPCC_ERR_GARBAGE_ARGS  = -20004, /* accepted: server could not decode arguments */
	RPCC_ERR_SYSTEM_ERR    = -20005, /* accepted: server-side failure */
	RPCC_ERR_AUTH_ERROR    = -20006, /* denied: credentials refused (auth_stat set) */
	RPCC_ERR_RPC_MISMATCH  = -20007, /* denied: RPC version not 2 (low/high set) */
	RPCC_ERR_BAD_REPLY     = -20008, /* reply header or results did not decode */
};

enum rpcc_transport { RPCC_UDP = 0, RPCC_TCP = 1 };

#define RPCC_AUTH_NONE 0u
#define RPCC_AUTH_SYS  1u
#define RPCC_AUTH_MAX_GIDS 16
#define RPCC_AUTH_MAX_MACHNAME 255

struct rpcc_auth {
	uint32_t flavor;           /* RPCC_AUTH_NONE or RPCC_AUTH_SYS */
	uint32_t uid, gid;
	uint32_t ngids;            /* <= RPCC_AUTH_MAX_GIDS */
	uint32_t gids[RPCC_AUTH_MAX_GIDS];
	char machinename[RPCC_AUTH_MAX_MACHNAME + 1];
};

/* Zero fields take the handle's defaults (rpcc_opts.timeout), whose own zero
 * fields mean 500 ms / 4000 ms / 10000 ms. */
struct rpcc_timeout {
	uint32_t retrans_ms;       /* UDP: first retransmission after this */
	uint32_t retrans_max_ms;   /* UDP: back-off (doubling) stops here */
	uint32_t total_ms;         /* the call fails with -ETIMEDOUT after this */
};

struct rpcc_opts {
	const struct sockaddr *server;  /* IPv4 or IPv6, with port; copied */
	const struct sockaddr *local;   /* source address (port 0 = any) or NULL; copied */
	uint32_t prog, vers;
	enum rpcc_transport transport;
	const struct rpcc_auth *auth;   /* NULL = AUTH_NONE; copied */
	struct rpcc_timeout timeout;    /* defaults for this handle's calls */
	uint32_t max_reply;             /* bytes; 0 = 1 MiB */
};

struct rpcc_clnt;

/* What a callback receives.  Valid only during the callback. */
struct rpcc_reply {
	int err;                   /* 0, -errno or RPCC_ERR_* */
	void *res;                 /* decoded result if err == 0, else NULL */
	uint32_t xid;
	uint32_t low, high;        /* PROG_MISMATCH / RPC_MISMATCH: versions offered */
	uint32_t auth_stat;        /* AUTH_ERROR: RFC 5531 auth_stat */
	uint32_t retransmits;      /* UDP retransmissions + TCP re-sends */
};

typedef void (*rpcc_cb)(const struct rpcc_reply *rep, void *arg);

/*
 * Create a handle.  UDP binds (and connects) its socket here; TCP connects on
 * the first call, but its local address is tried here too, so a bad one
 * fails now on both (-EADDRNOTAVAIL ...), and if it fails later to bind,
 * waiting calls fail at once with that error.
 * Returns 0 or -errno; on success *out is freed by rpcc_close().
 */
int rpcc_new(uv_loop_t *loop, const struct rpcc_opts *o, struct rpcc_clnt **out);

/*
 * A datagram handle bound to @local (IPv4 or IPv6; port 0 = any): calls go
 * through rpcc_call_to only, to servers of @local's family.  @to gives the
 * defaults as rpcc_opts.timeout does (NULL: the built-in ones); AUTH_NONE.
 * Returns 0 or -errno (the bind's: -EADDRNOTAVAIL ...); freed by rpcc_close.
 */
int rpcc_new_dgram(uv_loop_t *loop, const struct sockaddr *local,
		   const struct rpcc_timeout *to, struct rpcc_clnt **out);

/*
 * Cancel every outstanding call (callbacks run now, with -ECANCELED), close
 * the sockets and free the handle asynchronously.  Safe to call from any
 * rpcc callback, including one of this handle's; a second call is a no-op.
 */
void rpcc_close(struct rpcc_clnt *c);

/*
 * Start a call of @proc.  @xdr_args NULL means void arguments; @xdr_res NULL
 * means a void result (then rep->res is NULL).  @to NULL uses the handle's
 * defaults.  Returns 0 (the callback will run exactly once, never from
 * inside rpcc_call) or -errno (-ENOMEM, -EINVAL if the arguments do not
 * encode, -ESHUTDOWN on a closing handle; the callback will not run).
 */
int rpcc_call(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xdr_args,
	      const void *args, xdrproc_t xdr_res, size_t res_size,
	      const struct rpcc_timeout *to, rpcc_cb cb, void *arg);

/*
 * rpcc_call on a datagram handle, to @server (with its port) for
 * @prog/@vers.  *@xid (if not NULL) names the call for rpcc_cancel.
 * rpcc_call and rpcc_send on a datagram handle are -EDESTADDRREQ; this on
 * any other handle -EINVAL, and -EAFNOSUPPORT for a server not of the
 * handle's family.
 */
int rpcc_call_to(struct rpcc_clnt *c, const struct sockaddr *server, uint32_t prog,
		 uint32_t vers, uint32_t proc, xdrproc_t xdr_args, const void *args,
		 xdrproc_t xdr_res, size_t res_size, const struct rpcc_timeout *to,
		 rpcc_cb cb, void *arg, uint32_t *xid);

/* Complete the waiting call @xid of @c now with -ECANCELED (its callback
 * runs before this returns); nothing if it has completed already. */
void rpcc_cancel(struct rpcc_clnt *c, uint32_t xid);

/*
 * Fire and forget: send one call and never wait for its reply (NLM _MSG and
 * _RES procedures, whose RPC replies are void and useless).  UDP sends once;
 * TCP sends when connected, dropping the message if no connection can be
 * made within the handle's total timeout.  Any reply is discarded.
 * Returns 0 or -errno as rpcc_call().
 */
int rpcc_send(struct rpcc_clnt *c, uint32_t proc, xdrproc_t xdr_args,
	      const void *args);

/*
 * Keep the records of up to @n finished calls (their message buffers and
 * result rooms) for the next calls on @c, instead of freeing them: a caller
 * with N calls in flight at a time, N kept, allocates nothing per call.  The
 * results a callback sees then live in the record's room (still only until
 * the callback returns).  0, the default, keeps none; lowering @n frees the
 * surplus now.  rpcc_close() frees them all.
 */
void rpcc_keep_calls(struct rpcc_clnt *c, unsigned n);

/* Calls waiting for a reply (not counting one-way messages). */
unsigned rpcc_outstanding(const struct rpcc_clnt *c);
/* Address the handle talks to (as given to rpcc_new). */
const struct sockaddr *rpcc_server(const struct rpcc_clnt *c);

/* Human-readable name of any error rpcc returns ("timed out", "PROG_UNAVAIL"). */
const char *rpcc_strerror(int err);

/* ---- PORTMAP v2 GETPORT (program 100000, procedure 3) ----------------- */

/* @port is valid when @err == 0.  A program that is not registered is
 * -ENOENT (the portmapper answered port 0). */
typedef void (*rpcc_port_cb)(int err, uint16_t port, void *arg);

struct rpcc_getport_req;

/*
 * Ask the portmapper on @host (UDP; port 111 unless @host carries a port)
 * for the port of @prog/@vers over @prot (IPPROTO_UDP or IPPROTO_TCP),
 * sending from @local (NULL = any).  If @req is not NULL it receives a
 * handle valid until the callback has run, for rpcc_getport_cancel().
 * Returns 0 (callback will run) or -errno.
 */
int rpcc_getport(uv_loop_t *loop, const struct sockaddr *host,
		 const struct sockaddr *local, uint32_t prog, uint32_t vers,
		 uint32_t prot, const struct rpcc_timeout *to, rpcc_port_cb cb,
		 void *arg, struct rpcc_getport_req **req);
/* The callback runs now with -ECANCELED. */
void rpcc_getport_cancel(struct rpcc_getport_req *req);

/* Same question on an existing handle to a portmapper (PMAP v2). */
int rpcc_getport_on(struct rpcc_clnt *pmap, uint32_t prog, uint32_t vers,
		    uint32_t prot, const struct rpcc_timeout *to,
		    rpcc_port_cb cb, void *arg);

/* Same question to @host's portmapper (port 111 unless @host carries one)
 * through the datagram handle @dg; *@xid names the call for rpcc_cancel,
 * which runs the callback with -ECANCELED. */
int rpcc_getport_to(struct rpcc_clnt *dg, const struct sockaddr *host, uint32_t prog,
		    uint32_t vers, uint32_t prot, const struct rpcc_timeout *to,
		    rpcc_port_cb cb, void *arg, uint32_t *xid);

#endif
