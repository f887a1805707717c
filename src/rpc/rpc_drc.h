/*
 * rpc_drc.h - the duplicate-request cache (DRC) for non-idempotent calls.
 *
 * NFSv3 runs over a transport that may lose a reply: a client whose REMOVE
 * reply was lost retransmits the same call (same xid), maybe on a new
 * connection, and a server that executes it again answers NOENT for a
 * remove that succeeded.  The cache keeps the reply of every call of a
 * procedure marked .drc in its table, keyed by
 *
 *   group (an opaque pointer that lives as long as the node), the client's
 *   address (port ignored: many clients reconnect from a new port), xid,
 *   program, version, procedure, call length and a 64-bit checksum of the
 *   whole call after the xid (header, credential and arguments),
 *
 * so a retransmission gets the original reply and is not executed again,
 * and a different call that reuses an xid is executed.
 *
 * Life of an entry: a miss creates it *in progress* (no reply yet); while
 * in progress a retransmission is dropped (the first execution answers it);
 * rpc_drc_done() stores the reply (or forgets the entry, for a reply that
 * must not be replayed).  Done entries expire after ttl_ms.
 *
 * Bounds: at most max_entries entries on the node and max_per_host of one
 * address (over every group), each reply at most RPC_DRC_MAX_REPLY bytes.
 * A host at its share can only evict its own oldest entries, so a flood
 * from one address cannot push everyone else's out; only done entries are
 * evicted, never one in progress (when none can go, the call is executed
 * without an entry: RPC_DRC_NOCACHE).
 *
 * Pure: no sockets, no clock (callers pass now_ms), no threads.  Loop
 * thread only in sgnfsd.
 */
#ifndef SGNFS_RPC_DRC_H
#define SGNFS_RPC_DRC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RPC_DRC_MAX_REPLY 1024u

struct rpc_drc;
struct rpc_drc_entry;

struct rpc_drc_limits {
	uint32_t max_entries;   /* node-wide; 0 turns the cache off */
	uint32_t max_per_host;  /* of one address; 0 or > max_entries = max_entries */
	uint32_t ttl_ms;        /* a done entry lives this long */
};

struct rpc_drc_key {
	const void *group;      /* compared, never dereferenced */
	struct sockaddr_storage addr; /* the port is ignored */
	uint32_t xid, prog, vers, proc;
	uint32_t len;           /* bytes of the call */
	uint64_t sum;           /* rpc_drc_sum() of the call after the xid */
};

enum rpc_drc_result {
	RPC_DRC_MISS = 0,   /* new in-progress entry in *entry: execute, then rpc_drc_done */
	RPC_DRC_NOCACHE,    /* no room for an entry: execute without one */
	RPC_DRC_HIT,        /* send the cached reply (*reply, *reply_len; valid until
			       the next call into the cache) */
	RPC_DRC_INPROGRESS, /* the same call is being executed: drop this one */
};

struct rpc_drc_stats {
	uint64_t hits, misses, inprogress_drops, evictions, expired, nocache;
	uint32_t entries;       /* now, in progress included */
	uint32_t hosts;         /* addresses holding entries now */
};

/* 0 or -ENOMEM.  Caller frees with rpc_drc_free(). */
int rpc_drc_new(const struct rpc_drc_limits *lim, struct rpc_drc **out);
/* Frees every entry, in progress or not (no request may still hold one). */
void rpc_drc_free(struct rpc_drc *drc);

/* Checksum of @len bytes, 64 bits, every byte counted; word-at-a-time
 * (rpc_drc.c) because it runs on the loop over every WRITE's payload. */
uint64_t rpc_drc_sum(const uint8_t *p, size_t len);

enum rpc_drc_result rpc_drc_lookup(struct rpc_drc *drc, const struct rpc_drc_key *key,
				   uint64_t now_ms, struct rpc_drc_entry **entry,
				   const uint8_t **reply, size_t *reply_len);
/*
 * The call of in-progress @e is answered with @len bytes at @reply (the
 * whole RPC reply message, no record mark; copied).  @reply NULL, @len 0 or
 * @len > RPC_DRC_MAX_REPLY: the entry is forgotten (a retransmission will
 * be executed).  @e is not valid afterwards.
 */
void rpc_drc_done(struct rpc_drc *drc, struct rpc_drc_entry *e,
		  const uint8_t *reply, size_t len, uint64_t now_ms);

void rpc_drc_stats(const struct rpc_drc *drc, struct rpc_drc_stats *out);
/* Entries (in progress included) held by @addr now (its port ignored). */
uint32_t rpc_drc_host_entries(const struct rpc_drc *drc, const struct sockaddr_storage *addr);

#endif
