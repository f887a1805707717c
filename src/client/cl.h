/*
 * cl.h - the client host simulator: one or many NFS client hosts in one
 * process, each behaving like a kernel NFS client's lockd and statd.
 *
 * A host (struct cl_host) has its own 127.x address and caller_name and,
 * when callbacks are enabled, its own services on that address: PORTMAP
 * (port 111), an NLM callback service (GRANTED, GRANTED_MSG and the _RES
 * procedures, NLM v1/v3/v4) and an NSM service (SM_NOTIFY, SM_STAT).
 * A host talks to servers (struct cl_server: one per server VIP it uses),
 * always sending from its own address.
 *
 * Locking follows a kernel lockd: caller_name = the host's name, svid = the
 * owning process id, oh = "<svid>@<name>" unless given.  A blocking LOCK
 * that is answered BLOCKED waits for the server's GRANTED (or GRANTED_MSG)
 * callback, re-polling the server now and then in case the callback was
 * lost; a GRANTED for nothing the host waits for is answered DENIED so the
 * server does not keep a lock nobody wants.
 *
 * The host keeps a record of the locks it believes it holds (POSIX
 * semantics per owner: a new lock replaces the owner's overlapping ranges,
 * an unlock splits them).  When SM_NOTIFY arrives naming a server the host
 * holds locks on, every one of them is re-sent there with reclaim = TRUE,
 * retried with back-off while the server answers DENIED_GRACE_PERIOD (or
 * is unreachable, during a takeover), until cl_config.reclaim_ms; blocked
 * requests are re-sent too.  A lock the server refuses to give back is
 * dropped from the record and reported as lost.
 *
 * Every event is reported through cl_config.events as one line:
 *   <ISO-8601 UTC time> host=<addr> event=<what> key=value ...
 *
 * Threading: everything runs on the one libuv loop given to cl_ctx_new().
 */
#ifndef SGNFS_CL_H
#define SGNFS_CL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <uv.h>

#include "rpc/rpc_clnt.h"

#define CL_MAX_NETOBJ 1024   /* NLM netobj limit (MAXNETOBJ_SZ) */
#define CL_MAX_NAME   1024   /* caller_name limit (LM_MAXSTRLEN) */
#define CL_MAX_PATH   1024

/* Exit codes of sgnfs-client (also documented in docs/client.md). */
enum cl_exit {
	CL_EXIT_OK     = 0,
	CL_EXIT_DENIED = 1,   /* lock/test/share refused (conflict, deadlock, ...) */
	CL_EXIT_GRACE  = 2,   /* NLM4_DENIED_GRACE_PERIOD */
	CL_EXIT_ERROR  = 3,   /* transport error, timeout, server failure */
	CL_EXIT_USAGE  = 64,  /* bad command line (EX_USAGE) */
};

struct cl_blob {
	uint32_t len;
	uint8_t val[CL_MAX_NETOBJ];
};

/* A file as the server knows it: its NFS file handle. */
struct cl_file {
	char path[CL_MAX_PATH];   /* for humans and the record ("fh:HEX" if given so) */
	struct cl_blob fh;
};

struct cl_config {
	uint16_t pmap_port;             /* servers' portmapper; 0 = 111 */
	uint16_t nlm_port;              /* 0 = ask the server's portmapper */
	uint16_t mount_port, nfs_port;  /* 0 = ask the server's portmapper */
	enum rpcc_transport proto;      /* for NLM, MOUNT and NFS */
	uint32_t nlm_vers;              /* 1, 3 or 4; 0 = 4 */
	bool use_msg;                   /* the asynchronous _MSG / _RES procedures */
	struct rpcc_timeout timeout;    /* per RPC */
	bool callbacks;                 /* run PORTMAP/NLM/NSM services per host */
	uint16_t cb_pmap_port;          /* 0 = 111 */
	uint16_t cb_nlm_port;           /* 0 = 4045 */
	uint16_t cb_nsm_port;           /* 0 = 4046 */
	uint32_t poll_ms;               /* re-poll a blocked lock; 0 = 30000 */
	uint32_t reclaim_ms;            /* stop reclaiming after; 0 = 120000 */
	uint32_t uid, gid;              /* AUTH_SYS credentials */
	FILE *events;                   /* event lines, or NULL */
	const char *record_path;        /* JSON record rewritten on every change, or NULL */
};

struct cl_ctx;
struct cl_host;
struct cl_server;

/* A lock or share reservation a host believes it holds. */
enum cl_lock_state { CL_HELD = 0, CL_RECLAIMING };

struct cl_lock {
	struct cl_lock *next;         /* in the host's record */
	struct cl_server *srv;        /* where it is held (not owned) */
	struct cl_file file;
	uint32_t svid;
	struct cl_blob oh;
	uint64_t start, len;          /* len 0 = to end of file */
	bool exclusive;
	bool is_share;                /* a SHARE reservation, not a byte range */
	uint32_t mode, access;        /* share: fsh4_mode, fsh4_access */
	enum cl_lock_state state;
	unsigned reclaimed;           /* successful reclaims so far */
};

/* What to lock, test, unlock, share.  Copied by every call that takes it. */
struct cl_lockreq {
	struct cl_file file;
	uint32_t svid;
	struct cl_blob oh;            /* len 0 = "<svid>@<host name>" */
	uint64_t start, len;          /* len 0 = to end of file */
	bool exclusive;
	bool block;                   /* LOCK: wait for a GRANTED callback */
	bool reclaim;
	uint32_t wait_ms;             /* LOCK with block: CANCEL after this; 0 = forever */
	uint32_t mode, access;        /* SHARE / UNSHARE: fsh4_mode, fsh4_access */
};

struct cl_result {
	int err;                      /* 0, -errno or RPCC_ERR_* (transport level) */
	int stat;                     /* nlm4_stats, valid when err == 0 */
	bool has_holder;              /* TEST found a conflict */
	bool holder_excl;
	uint32_t holder_svid;
	struct cl_blob holder_oh;
	uint64_t holder_start, holder_len;
	int sequence;                 /* SHARE / UNSHARE */
	uint64_t usec;                /* request to answer (to GRANTED when blocked) */
};

typedef void (*cl_done_fn)(const struct cl_result *r, void *arg);

/* ---- setup -------------------------------------------------------------- */

/* 0 or -errno.  @cfg is copied; cfg->events / record_path must outlive ctx. */
int cl_ctx_new(uv_loop_t *loop, const struct cl_config *cfg, struct cl_ctx **out);
/*
 * Stop everything: pending requests complete with -ECANCELED, sockets close.
 * Run the loop afterwards until it is empty; ctx is freed then.
 */
void cl_ctx_close(struct cl_ctx *ctx);
const struct cl_config *cl_ctx_config(const struct cl_ctx *ctx);

/*
 * Add a host on @addr (port ignored) named @name (NULL = the address as a
 * string), starting its services if callbacks are enabled.  0 or -errno
 * (-EADDRINUSE when another process serves that host already).
 */
int cl_host_add(struct cl_ctx *ctx, const struct sockaddr_in *addr, const char *name,
		struct cl_host **out);
size_t cl_host_count(const struct cl_ctx *ctx);
struct cl_host *cl_host_at(const struct cl_ctx *ctx, size_t i);
/* By address "127.1.0.2", index "#3" or name; NULL if none. */
struct cl_host *cl_host_find(const struct cl_ctx *ctx, const char *key);
const char *cl_host_name(const struct cl_host *h);
const char *cl_host_addr(const struct cl_host *h);
int32_t cl_host_state(const struct cl_host *h);
struct cl_lock *cl_host_locks(const struct cl_host *h);
/* Requests still waiting (blocked locks, calls in flight, reclaims). */
unsigned cl_host_pending(const struct cl_host *h);

/* The host's handle on server @vip (created on first use).  0 or -errno. */
int cl_server_get(struct cl_host *h, const struct sockaddr_in *vip, struct cl_server **out);
const char *cl_server_name(const struct cl_server *s);
/* Reclaims of this server still running. */
unsigned cl_server_reclaiming(const struct cl_server *s);

/* ---- NLM ---------------------------------------------------------------- */

/*
 * Each returns 0 and later calls @done exactly once (never from inside the
 * call), or returns -errno and never calls it.  Granted locks and shares are
 * added to / removed from the host's record before @done runs.
 */
int cl_lock(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
int cl_test(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
int cl_unlock(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
int cl_cancel(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
int cl_share(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
int cl_unshare(struct cl_server *s, const struct cl_lockreq *rq, cl_done_fn done, void *arg);
/* NLM NULL (a ping) and FREE_ALL (forget every lock of this host's name). */
int cl_null(struct cl_server *s, cl_done_fn done, void *arg);
int cl_free_all(struct cl_server *s, cl_done_fn done, void *arg);

/*
 * Request slots, for load generation (bench-lock): a slot LOCKs and UNLOCKs
 * one lock, @rq (copied once, its owner handle filled in as cl_lock() would),
 * again and again through one request block, one call at a time.  Nothing is
 * allocated or copied per call: the block, the NLM handle's call record
 * (one kept per slot of the server) and the slot's result are reused.  The
 * result @done gets lives in the slot until its next call.
 *
 * Unlike cl_lock(), a slot's lock is not entered in the host's record: it
 * is not reclaimed after SM_NOTIFY, not written to cl_config.record_path,
 * not released by a host reboot's bookkeeping.  bench-lock holds each lock
 * for one round trip and runs without callbacks (no SM_NOTIFY reaches it);
 * after a server restart its next UNLOCK of a forgotten lock is granted all
 * the same.  A slot cannot block (@rq->block is -EINVAL).
 *
 * cl_slot_new: 0 or -errno.  cl_slot_call: LOCK (@unlock false) or UNLOCK;
 * like cl_lock(), 0 and later @done exactly once, or -errno and never;
 * -EBUSY while the slot's last call is pending, or was cancelled while its
 * RPC is still in flight.  cl_slot_free: completes a pending call with
 * -ECANCELED, then frees @sl; every slot is freed before cl_ctx_close().
 */
struct cl_slot;
int cl_slot_new(struct cl_server *s, const struct cl_lockreq *rq, struct cl_slot **out);
int cl_slot_call(struct cl_slot *sl, bool unlock, cl_done_fn done, void *arg);
void cl_slot_free(struct cl_slot *sl);

/*
 * Simulate a reboot of @h: increase its NSM state, forget its record and
 * pending requests, and send SM_NOTIFY (mon_name = host name) to every
 * server it has used, so they release its locks.  0 or -errno.  @done
 * (may be NULL) is called once every SM_NOTIFY has been answered or has
 * failed (result err: 0, or the first failure), so a caller that exits
 * afterwards does not cut them off; not called when this returns < 0.
 */
int cl_host_reboot(struct cl_host *h, cl_done_fn done, void *arg);

/* ---- MOUNT + NFSv3 LOOKUP -------------------------------------------------- */

typedef void (*cl_file_fn)(int err, const struct cl_file *f, void *arg);
/*
 * Find @path on @s: MNT of the longest leading directory the server
 * exports, then LOOKUP of each remaining component.  "fh:HEX" is taken as a
 * handle without asking.  Results are cached per server.  0 or -errno;
 * @done runs exactly once when 0 is returned.
 */
int cl_resolve(struct cl_server *s, const char *path, cl_file_fn done, void *arg);

/* ---- the record ------------------------------------------------------------ */

/* Write every host's record as one JSON object (one line, no newline). */
void cl_record_json(const struct cl_ctx *ctx, FILE *f);

/* ---- helpers ------------------------------------------------------------- */

/* "granted", "denied", "grace" ...; "error" for an unknown value. */
const char *cl_stat_name(int stat);
/* The exit code a result stands for. */
int cl_result_exit(const struct cl_result *r);
/* Hex into @b; 0 or -EINVAL. */
int cl_blob_from_hex(struct cl_blob *b, const char *hex);
/* Hex of @b into @buf (2 * len + 1 bytes), returns buf. */
char *cl_blob_hex(const struct cl_blob *b, char *buf, size_t bufsz);
/* Log one event line for @h (or the process when NULL). */
void cl_event(const struct cl_ctx *ctx, const struct cl_host *h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
