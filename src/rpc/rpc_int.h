/*
 * rpc_int.h - private to src/rpc: the structures shared by the dispatcher
 * (rpc_svc.c) and the socket plumbing (rpc_xprt.c).
 *
 * Lifetimes: a listener lives while it has open handles, open connections
 * or UDP requests in flight (lsn->refs).  A TCP connection lives while its
 * socket is open or a request on it is in flight (conn->refs); a reply for a
 * connection that closed meanwhile is dropped.  Everything here belongs to
 * the loop thread.
 */
#ifndef SGNFS_RPC_INT_H
#define SGNFS_RPC_INT_H

#include <pthread.h>

#include "rpc/rpc.h"
#include "rpc/rpc_drc.h"
#include "rpc/rpc_pool.h"
#include "rpc/rpc_rm.h"
#include "rpc/rpc_stats.h"
#include "slab.h"

#define RPC_MAX_PROGS 16
#define RPC_READ_BUF  65536
/* A connection stops reading while this many of its requests are in flight
 * or this many reply bytes are queued, so one greedy client cannot take the
 * whole server's memory. */
#define RPC_CONN_MAX_INFLIGHT 128
#define RPC_CONN_MAX_QUEUED   (8u << 20)
#define RPC_UDP_MAX_REPLY     65507u
/* Bytes of the TCP record mark in front of every reply record. */
#define RPC_MARK_LEN RM_MARK_LEN
/* A connection's output buffer bigger than this is freed once written, so
 * one big READ reply does not pin 1 MiB for the connection's lifetime. */
#define RPC_OUT_KEEP 65536u

struct rpc_conn;

#define RPC_HOST_BUCKETS 1024
/* Thread-pool jobs of blocking procedures in flight at once, node-wide,
 * on threads of their own (rpc_pool.h); state I/O (client list,
 * journal) has its own (common/wq.h). */
#define RPC_POOL_JOBS 4
/* Jobs of one context (group) on the pool at once: one fewer than the
 * node's, so a slot is always free for another group's request, which
 * then waits for no job of the flooding group to finish; and while n > 1
 * groups are active (work queued or on the pool, or submitted in the last
 * RPC_FQ_ACTIVE_MS), RPC_POOL_JOBS / n (at least 1), so one group's flood
 * takes no more than its share of the CPU the others' requests run on. */
#define RPC_POOL_JOBS_PER_CTX (RPC_POOL_JOBS - 1)
#define RPC_FQ_ACTIVE_MS 1000
/* The threads that run the jobs of a backlogged group (more of its
 * requests queued or on the pool) while another group is active
 * (rpc_pool.c, "sgnfs-low") run SCHED_IDLE (common/thprio.h
 * says why: measured, the flooding group's pool
 * threads kept the loop waiting for a CPU for most of a flood).  Where the
 * kernel refuses SCHED_IDLE they take this nice value instead.  Taken once,
 * at their start: lowering one's own priority needs no privilege, going
 * back would (CAP_SYS_NICE). */
#define RPC_POOL_LOW_NICE 10
/*
 * Low jobs on the pool at once, node-wide: one fewer than the CPUs sgnfsd
 * may run on (sched_getaffinity), at least one.  A CPU running only a
 * SCHED_IDLE thread counts as idle where the scheduler places a woken
 * thread, but on a kernel without full preemption that thread gives the
 * CPU back only when its system call reaches a resched point: up to a
 * millisecond and more inside a READDIRPLUS's getdents and stat calls.
 * With every CPU running one, the loop woken for another group's request
 * waited for that each time.  Keeping one CPU clear of them, measured under
 * bench/fairness.py on 2 CPUs (three alternating runs each, wire p99 flood /
 * baseline, bench/RESULTS.md): LOCK 2.4-4.0x -> 1.7-2.1x, UNLOCK 7.8-14.8x
 * -> 2.5-3.3x, GETATTR 4.4-8.6x -> 3.0-3.1x; the flooding group got a third
 * fewer jobs done meanwhile (a CPU's worth, not two).
 * rpcs_test_ncpus (tests only; 0 = ask the kernel) stands for the count.
 */
extern unsigned rpcs_test_ncpus;

struct rpc_req_priv;

struct rpcx_host;

/*
 * The requests of one source address waiting in one group's queue.  A
 * group's queue is a ring of these that take turns, one request each, so
 * one client's backlog delays another client's request of the same group
 * by a turn, not by the backlog (as groups take turns on the pool).  Lives
 * while it holds a request; requests whose connection has no host entry
 * (no memory for it at accept) share their group's own (fq->anon).
 */
struct rpcx_src {
	struct rpcx_src *rnext;         /* in fq's ring, circular */
	struct rpcx_src *hnext;         /* in host->srcs */
	struct rpcx_fq *fq;             /* not owned */
	struct rpcx_host *host;         /* one ref; NULL for fq->anon */
	struct rpc_req_priv *head, *tail;
};

/* The blocking requests of one service context (a group) waiting for the
 * pool.  Contexts take turns (svc->fq_ring), one job each, so one group's
 * flood delays another group's request by at most a turn of the ring; in
 * a context, source addresses take turns (struct rpcx_src). */
struct rpcx_fq {
	struct rpcx_fq *next;           /* svc->fqs (all) */
	struct rpcx_fq *rnext;          /* svc->fq_ring (those with work), circular */
	bool in_ring;
	void *ctx;                      /* the listeners' ctx; a key only */
	/* Its sources with requests: the one whose turn it is, and the one
	 * before it in the ring (so either is taken out at no walk); NULL
	 * when none waits. */
	struct rpcx_src *src, *src_prev;
	struct rpcx_src anon;
	uint32_t queued;
	uint32_t inflight;              /* its jobs on the pool (<= RPC_POOL_JOBS_PER_CTX) */
	uint64_t last_ms;               /* uv_now() of its last submit, 0 none */
	uint64_t seen_ms;               /* uv_now() of its last call of any kind, 0 none */
	uint64_t dropped;               /* UDP datagrams dropped: queue over its bound */
};

/*
 * A list of connections that stopped reading because their host or the node
 * holds its bound of bytes in flight (rpc_xprt.c, "byte budget"); a
 * connection is on at most one (conn->bw_list).
 */
struct rpcx_waitq {
	struct rpc_conn *head;
};

/*
 * The connections of one source address (port ignored): the per-host slot
 * count, the bytes its calls hold and the refusal log's rate limit; and its
 * UDP requests waiting for the pool.  Lives while a connection of its is
 * allocated or it has requests in a group's queue (refs): a connection that closed
 * still has calls in flight, and their bytes stay the host's until they end,
 * or a host could close and reconnect its way past the bound.
 */
struct rpcx_host {
	struct rpcx_host *next;       /* svc->hosts chain */
	struct sockaddr_storage addr; /* port 0 */
	uint32_t nconns;              /* open (not closing) connections */
	uint32_t refs;                /* connections allocated, open or closing; its sources */
	uint64_t held;                /* bytes its connections hold (conn->held) */
	struct rpcx_waitq waiting;    /* its connections stopped by its bound */
	uint64_t refused;             /* refusals not logged yet */
	uint64_t logged_ms;           /* uv_now() of the last refusal line, 0 never */
	uint64_t budget_logged_ms;    /* ... of the last "at its byte bound" line */
	uint64_t budget_quiet;        /* stops not logged yet */
	/* Its UDP requests waiting for the pool, in every group's queue
	 * (their sources hold refs); max_queued_per_host. */
	uint32_t udp_queued;
	struct rpcx_src *srcs;        /* its requests in groups' queues (one ref each) */
};

/* Kept sizes of request blocks and the empty pages of each kept
 * (rpc_svc.c, rpcs_block_get). */
#define RPCS_NCLASS      2
#define RPCS_BLOCK_SMALL 2048u
#define RPCS_BLOCK_SIZE  8192u
#define RPCS_SMALL_KEEP  8u
#define RPCS_BIG_KEEP    2u

struct rpc_svc {
	uv_loop_t *loop;                       /* not owned */
	struct rpc_limits lim;                 /* copied at creation */
	const struct rpc_prog *progs[RPC_MAX_PROGS]; /* static tables, not owned */
	size_t nprogs;
	uint32_t nconns;                       /* open TCP connections */
	struct rpc_conn *conns;                /* every open connection (svc_next) */
	struct rpcx_host *hosts[RPC_HOST_BUCKETS]; /* owned */
	uint64_t refused, evicted;             /* connections, since start */
	/* The byte budget (rpc_xprt.c): what every connection holds, those
	 * stopped by the node's bound, and stops since start. */
	uint64_t held;
	struct rpcx_waitq waiting;
	uint64_t budget_stops_host, budget_stops_node;
	uint64_t budget_logged_ms, budget_quiet;
	uint64_t node_refused;                 /* node-wide refusals not logged yet */
	uint64_t node_logged_ms;
	struct rpcx_fq *fqs;                   /* owned */
	struct rpcx_fq *fq_ring;               /* next to take a job, or NULL */
	unsigned pool_inflight;                /* jobs handed to the pool */
	unsigned low_inflight;                 /* of those, low ones (<= rpcs_low_cap) */
	struct wq_chan *pool;                  /* owned: the pool's way back; opened at the first job */
	uint64_t udp_dropped;                  /* since start */
	/* Reads that brought bytes (TCP) and datagrams (UDP), since start,
	 * and of those, the ones from another source than the one before (a
	 * connection; a UDP source address): what the loop's busy polling
	 * watches (rpc_svc_input_count). */
	uint64_t input, input_switches;
	uint64_t input_src;                    /* the last one's source, as a key */
	uint64_t udp_drop_logged_ms, udp_drop_quiet;
	/* Of udp_dropped, those dropped by max_queued_per_host; UDP requests
	 * waiting for the pool now (every host's udp_queued); the rate limit
	 * of their log line. */
	uint64_t udp_dropped_host;
	uint32_t udp_queued;
	uint64_t udp_host_logged_ms, udp_host_quiet;
	struct rpc_listener *udp_paused;       /* pause_next list, one lsn ref each */
	uint64_t ncalls;                       /* calls dispatched */
	struct rpc_drc *drc;                   /* owned: the duplicate-request cache */
	/* Request blocks of each kept size (rpc_svc.c, rpcs_block_get; loop
	 * thread only), in pages of their own; owned. */
	struct slab blocks[RPCS_NCLASS];
	/* Where moved arguments are decoded (rpc_svc.c, rpcs_scratch); owned. */
	uint8_t *scratch;
	size_t scratch_len;
	bool rdbuf_busy;                       /* the one read buffer is lent out */
	uint8_t rdbuf[RPC_READ_BUF];           /* consumed inside each read callback */
	/* UDP replies are encoded here and sent at once (copied only when
	 * the socket buffer is full). */
	uint8_t udpbuf[RPC_UDP_MAX_REPLY];
	/* Guards every listener's udp_tx_fd: a pool thread sends a reply
	 * through it while the loop may be closing the socket. */
	pthread_mutex_t udp_tx_mu;
};

struct rpc_listener {
	struct rpc_svc *svc;          /* not owned */
	void *ctx;                    /* the caller's, handed to requests */
	void (*release)(void *ctx);   /* called with ctx when lsn is freed */
	struct sockaddr_storage addr; /* bound address */
	uv_tcp_t tcp;
	uv_udp_t udp;
	/* udp's descriptor for replies sent from a pool thread (rpcs_work),
	 * or -1: set after the bind, back to -1 before the handle is closed
	 * (uv_close closes the descriptor at once, and its number may be
	 * reused), both under svc->udp_tx_mu. */
	int udp_tx_fd;
	/* End-of-turn flush of the connections' replies: the check handle runs
	 * right after the I/O callbacks of a loop turn, the prepare handle
	 * right before the loop blocks, so a reply made anywhere in a turn
	 * (read, timer, thread-pool completion) goes out before any wait. */
	uv_prepare_t flush_prep;
	uv_check_t flush_chk;
	bool has_tcp, has_udp;        /* TCP: flush handles (and the socket); UDP: until closed */
	bool has_tcp_sock;            /* the listening TCP socket is open */
	bool flush_armed;             /* flush_prep and flush_chk started */
	bool held;                    /* reads nothing (RPC_LISTEN_HELD, quiesce) */
	/* UDP reading stopped while its group's queue is full
	 * (svc->udp_paused holds a reference); the socket's kernel drop
	 * count when it stopped. */
	bool udp_paused;
	struct rpc_listener *pause_next;
	uint32_t drops_at_pause;
	bool closing;
	unsigned refs;                /* open handles + conns + UDP reqs in flight */
	struct rpc_conn *conns;       /* accepted connections (owned) */
	struct rpc_conn *dirty;       /* conns with output to flush (one conn ref each) */
	struct rpc_conn *refeed;      /* conns whose stash is due (one conn ref each) */
	uv_idle_t refeed_idle;        /* feeds them (rpc_xprt.c, rpcx_refeed_cb) */
	struct rpc_stats *stats;      /* not owned (the group's slot), or NULL */
	/* Takes a connection there is no memory for, only to close it: one
	 * left unaccepted would stop libuv accepting on the socket at all. */
	uv_tcp_t spare;
	bool spare_busy;              /* closing; holds one lsn ref */
	bool accept_pending;          /* a connection waits for the spare */
};

struct rpc_conn {
	uv_tcp_t tcp;
	uv_timer_t idle;
	struct rpc_listener *lsn;     /* holds one lsn ref */
	struct rpc_conn *next, *prev; /* in lsn->conns */
	struct rpc_conn *svc_next, *svc_prev; /* in svc->conns */
	struct rpcx_host *host;       /* its source address's slot count, or NULL */
	unsigned refs;                /* open socket (1) + requests in flight */
	unsigned handles_open;        /* tcp + timer until their close callbacks */
	unsigned inflight;
	bool closing;
	bool paused;                  /* reading stopped for back-pressure */
	/*
	 * The byte budget (rpc_xprt.c): bytes its calls in flight and its
	 * queued replies hold (each call's rpc_req_priv.charge, each queued
	 * write's), counted into host->held and svc->held too; the wait list
	 * it is on while its host or the node is at its bound, or NULL.
	 */
	uint64_t held;
	struct rpcx_waitq *bw_list;
	struct rpc_conn *bw_next, *bw_prev;
	/* Input read but not fed: reading stopped at a record boundary in
	 * the middle of a read (a bound reached).  Owned; fed again before
	 * the socket is read (lsn->refeed). */
	uint8_t *stash;
	size_t stash_len;
	struct rpc_conn *refeed_next; /* in lsn->refeed, holding a conn ref */
	bool refeed_queued;
	uint64_t last_active;         /* uv_now() of the last record */
	/* uv_hrtime() when the bytes being fed were read: every record of
	 * one read arrived then (one clock read per read, not per call). */
	uint64_t read_ns;
	struct sockaddr_storage peer, local;
	/* Record-marking parser (RFC 5531 section 11), kept here so a record
	 * can arrive split across any number of reads. */
	struct rm_parser rm;
	/* Replies of the current loop turn, record marks included, written
	 * with one write at the end of the turn (lsn->dirty). */
	uint8_t *out;                 /* owned */
	size_t out_len, out_cap;
	struct rpc_conn *dirty_next;  /* in lsn->dirty */
	bool dirty;
};

/* Private part of a request, allocated together with struct rpc_req. */
struct rpc_req_priv {
	struct rpc_req req;           /* must be first */
	struct rpc_listener *lsn;     /* holds one lsn ref (UDP) */
	struct rpc_conn *conn;        /* holds one conn ref (TCP), or NULL */
	struct rpcp_job job;          /* for .blocking handlers (rpc_pool.h) */
	struct rpc_req_priv *fq_next; /* in its rpcx_fq while waiting for the pool */
	enum rpc_disposition disp;
	uint64_t t0;                  /* uv_hrtime() at arrival (rpc_stats) */
	uint8_t prog_idx;             /* in svc->progs (rpc_stats) */
	struct rpc_drc_entry *drc;    /* its in-progress cache entry, or NULL */
	struct rpcx_fq *fq;           /* its context's queue while on the pool */
	/* The reply of a blocking handler, encoded on the pool thread so the
	 * loop only copies or sends bytes (a big READDIRPLUS encoded and
	 * freed on the loop held every group's requests up).  Owned; NULL:
	 * not pre-encoded, the loop encodes as for any handler. */
	uint8_t *enc;
	size_t enc_len;
	/* With enc, on TCP: the results' last opaque, sent after enc from
	 * this buffer (rpc_proc.res_tail).  Owned until handed to the
	 * transport; NULL: none. */
	void *tail;
	uint32_t tail_len;
	bool res_freed;               /* res already xdr_free()d on the pool */
	/* enc was sent by the pool thread (UDP only, no cache entry): the
	 * loop only counts it and frees the request. */
	bool enc_sent;
	/* Bytes this call counts against its connection, host and node
	 * (rpc_xprt.c, byte budget): its record, its block and what its
	 * results may hold (rpc_proc.res_bytes); 0 over UDP. */
	uint64_t charge;
	/* 1 + the kept size class of the block, which goes back to
	 * svc->blocks[cls - 1]; 0: it was sized for its call (free(3)). */
	uint8_t cls;
	/* room_len bytes after the results (rpc_proc.args_room, or what the
	 * arguments use once the block is cut: rpc_proc.args_move), or NULL. */
	uint8_t *room;
	size_t room_len;
};

/* rpc_xprt.c: the entry of @peer's address (port ignored), created if
 * needed, with a reference for the caller (NULL without memory); the
 * entry without a reference, NULL if there is none; drop a reference
 * (the entry goes with the last). */
struct rpcx_host *rpcx_host_get(struct rpc_svc *svc, const struct sockaddr_storage *peer);
struct rpcx_host *rpcx_host_find(struct rpc_svc *svc, const struct sockaddr_storage *peer);
void rpcx_host_unref(struct rpc_svc *svc, struct rpcx_host *h);

/* rpc_svc.c: may a UDP datagram on @lsn be taken?  False when its
 * context's pool queue is over its bound, or its source address has
 * max_queued_per_host requests waiting (counted and logged there). */
bool rpcs_udp_admit(struct rpc_listener *lsn, const struct sockaddr *from);
/* rpc_svc.c: take a closing @lsn off the paused list (drops its ref). */
void rpcs_udp_unpause(struct rpc_listener *lsn);

/* rpc_svc.c: handle one complete record, which arrived at @arrival_ns
 * (uv_hrtime: its latency counts from then).  Returns 0, or -EPROTO when
 * the record is unusable and a TCP connection should be closed. */
int rpcs_dispatch(struct rpc_listener *lsn, struct rpc_conn *conn,
		  const struct sockaddr_storage *peer,
		  const struct sockaddr_storage *local,
		  const uint8_t *rec, size_t len, uint64_t arrival_ns);

/*
 * rpc_xprt.c, TCP replies: rpcx_out_reserve() returns where the next record
 * goes in the connection's pending output, with *@room >= @len bytes free
 * there (all the spare space, so an encoder may try its luck), or NULL when
 * out of memory or @len is over a record's 2^31 - 1 bytes.  The caller
 * encodes into it and, if that worked, rpcx_out_commit() appends the record
 * of @len bytes; it goes out with the others at the end of the loop turn.
 * Nothing else may touch the connection in between.
 */
uint8_t *rpcx_out_reserve(struct rpc_conn *conn, size_t len, size_t *room);
void rpcx_out_commit(struct rpc_conn *conn, size_t len);
/* A TCP reply record of @hlen bytes at @hdr followed by @tlen bytes at
 * @tail and the XDR padding after them, written now (after the records
 * already pending) from @tail itself: no copy of it.  @tail is taken in every case and
 * released with @tail_free (NULL: free(3)) once written.  0, or -errno
 * (nothing of the record was queued). */
int rpcx_out_send_tail(struct rpc_conn *conn, const uint8_t *hdr, size_t hlen,
		       void *tail, size_t tlen, void (*tail_free)(void *));
/* UDP reply: send @len bytes at @buf (not taken; copied if it must wait). */
void rpcx_udp_send(struct rpc_listener *lsn, const struct sockaddr_storage *peer,
		   const uint8_t *buf, size_t len);
void rpcx_conn_get(struct rpc_conn *conn);
void rpcx_conn_put(struct rpc_conn *conn);
void rpcx_lsn_get(struct rpc_listener *lsn);
/* Stop reading @lsn's UDP socket (its group's queue is full: the kernel
 * drops what does not fit its buffer, at no cost to the loop) / read it
 * again.  rpcx_udp_resume returns how many datagrams the kernel dropped
 * on the socket meanwhile. */
void rpcx_udp_pause(struct rpc_listener *lsn);
uint64_t rpcx_udp_resume(struct rpc_listener *lsn);
void rpcx_lsn_put(struct rpc_listener *lsn);
/* A call on @conn holding @charge bytes starts / finished: counted into
 * the byte budget; done may resume reading. */
void rpcx_conn_req_start(struct rpc_conn *conn, uint64_t charge);
void rpcx_conn_req_done(struct rpc_conn *conn, uint64_t charge);

#endif
