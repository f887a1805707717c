/*
 * config.h - the cluster INI file (one file, the same on every node).
 *
 *   [cluster]  name, run_dir, ports, limits
 *   [node N]   one per node
 *   [group G]  vip, nodes (preference order), grace, journal, ...
 *   [export P] group, fsid, access, clients, squash, anonuid, anongid, secure
 *
 * cfg_load() parses and validates the whole file and reports *every* error
 * as "FILE:LINE: message" on @errs, in line order; see
 * docs/configuration.md for the keys.
 * The resulting tree is immutable after load and owned by the caller
 * (free with cfg_free()).
 */
#ifndef SGNFS_CONFIG_H
#define SGNFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "sandbox.h"

#define CFG_NAME_MAX 64
/* journal_inflight's largest value: JR_INFLIGHT_MAX (journal/journal.h;
 * sgnfsd checks they agree), kept here so the parser needs no journal. */
#define CFG_JOURNAL_INFLIGHT_MAX 2
#define CFG_POLL_SPIN_MAX_US 1000 /* poll_spin_us: a millisecond at most */

/* An address or network an export allows ("127.0.0.1", "10.0.0.0/8", "::1"). */
struct cfg_net {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network byte order; first 4 bytes for AF_INET */
	unsigned prefix;     /* 0..32 or 0..128 */
};

struct cfg_group;

/*
 * Who decides that a node serves a group (docs/failover.md):
 *   lease    the nodes themselves, through the group's lease file (default);
 *   managed  an outside cluster manager, through the control socket
 *            (`sgnfsctl start|stop GROUP`); the node never contends.
 * CFG_OWN_INHERIT only exists while loading: a group without its own
 * `ownership` takes the cluster's.
 */
enum cfg_ownership { CFG_OWN_INHERIT = 0, CFG_OWN_LEASE, CFG_OWN_MANAGED };

struct cfg_export {
	char *path;               /* absolute path as written, no trailing '/' */
	char *group_name;
	struct cfg_group *group;  /* resolved, never NULL after a good load */
	uint32_t fsid;            /* cluster-wide unique, != 0 */
	bool rw;                  /* access = rw | ro (default rw) */
	struct cfg_net *clients;  /* clients = list (required, at least one) */
	size_t nclients;
	bool root_squash;         /* squash = root (default) | none | all */
	bool all_squash;          /* squash = all sets both root_squash and all_squash */
	uint32_t anonuid, anongid;/* default 65534 */
	bool secure;              /* secure = yes: source port < 1024 required (default no) */
	int line;
};

/*
 * How sgnfsd places one VIP (`vip = ADDR[/PREFIX][@IFACE]`).  Without an
 * interface the address must already be on this machine (the default:
 * loopback, or an address an administrator or IPaddr2 added); with one,
 * in the embedded (lease) mode sgnfsd adds ADDR/PREFIX to IFACE at
 * takeover, announces it, and removes it at release (src/cluster/vip.h).
 */
struct cfg_vip_if {
	char ifname[16];               /* IFNAMSIZ; "" = the address is not ours to add */
	uint8_t prefix;                /* /PREFIX, default 32 (IPv4) or 128 (IPv6) */
};

struct cfg_group {
	char *name;
	struct sockaddr_storage *vips; /* port 0; at least one */
	struct cfg_vip_if *vip_ifs;    /* one per vips[i] */
	size_t nvips;
	char **nodes;                  /* preference order, each a [node] name */
	size_t nnodes;
	uint32_t grace_s;              /* default 45 */
	bool journal;                  /* default true */
	uint32_t client_idle_s;        /* drop an idle client from the list after (default 300) */
	enum cfg_ownership ownership;  /* lease or managed after load (default: the cluster's) */
	struct cfg_export **exports;   /* in file order; exports[0] holds .sgnfs/ */
	char *statedir;                /* <exports[0]>/.sgnfs (SF_STATE_DIR), made once at load */
	size_t nexports;
	int line;
};

/* metrics_listen = ADDR:PORT (docs/metrics.md). */
struct cfg_listen {
	bool set;
	struct sockaddr_storage addr;  /* with the port */
};

struct cfg_node {
	char *name;
	bool has_address;              /* address = (optional): where peers reach this
					* node's status (cluster/peer.h) */
	struct sockaddr_storage address; /* port 0 */
	uint16_t peer_port;            /* 0: [cluster] peer_port */
	struct cfg_listen metrics_listen; /* overrides [cluster] metrics_listen */
	int line;
};

/* A new key must also be compared in rl_check() (config/reload.c): a reload
 * refuses what it does not know how to apply. */
struct cfg_cluster {
	char *path;                 /* the file loaded */
	char sha256[65];            /* SHA-256 of its bytes, hex (as sha256sum prints) */
	char *name;                 /* [cluster] name (required) */
	char *run_dir;              /* default /run/sgnfs */
	uint16_t nfs_port;          /* default 2049 */
	uint16_t mount_port;        /* default 20048 */
	uint16_t pmap_port;         /* default 111 */
	uint16_t nlm_port;          /* default 4045 */
	uint16_t nsm_port;          /* default 662 */
	bool use_rpcbind;           /* register with a system rpcbind instead of answering 111 */
	uint32_t max_record;        /* default 1 MiB + 4 KiB */
	uint32_t max_conns;         /* default 1024 */
	/* Per source address ("host") limits, docs/configuration.md "Limits". */
	uint32_t max_conns_per_host;   /* TCP connections, default 64 */
	/* MiB TCP calls in flight and their queued replies may hold, of the
	 * node (default 1024) and of one address (default 64): rpc.h,
	 * rpc_limits.max_held_bytes*. */
	uint32_t max_inflight_mb;
	uint32_t max_inflight_mb_per_host;
	uint32_t max_names_per_host;   /* NLM caller_names, default 1024 */
	uint32_t max_queued_per_group; /* blocking requests waiting for the pool, default 256 */
	uint32_t max_queued_per_host;  /* ... of them UDP from one address, default 64 */
	uint32_t max_locks_per_host;   /* NLM locks and shares, default 65536 */
	/* The same over every group on the node: NLM caller names (hosts)
	 * and locks, shares and waiters; default 65536 and 4194304. */
	uint32_t max_names;
	uint32_t max_locks;
	/* Open-handle cache (nfs/ohc.h): O_PATH descriptors kept on the node,
	 * shared out equally among the configured groups; 0: off. */
	uint32_t open_handles;         /* default 4096 */
	/* Duplicate-request cache (docs/security.md): replies kept on the
	 * node (0: off), of one source address, and for how long. */
	uint32_t drc_entries;          /* default 16384 */
	uint32_t drc_entries_per_host; /* default 1024 */
	uint32_t drc_ttl_s;            /* default 120 */
	enum sbx_mode seccomp;         /* on (default) | log | off (common/sandbox.h) */
	uint32_t idle_timeout_s;    /* default 300 */
	uint32_t watchdog_ms;       /* default 5000 */
	char *log_level;            /* error | warn | info | debug (default info) */
	char *handle_key;           /* key file of the file handle MACs (hkey.h); required to run */
	int handle_key_line;        /* 0: not in the file */
	char *peer_key;             /* key file of peer status (cluster/peer.h); NULL: handle_key */
	uint16_t peer_port;         /* default 20050 (PEER_DEFAULT_PORT) */
	char *log;                  /* auto | stderr | syslog | journal | /path (%n: node) */
	enum cfg_ownership ownership; /* lease (default) or managed */
	bool journal_io_thread;     /* journal_io = thread (default uring; docs/journal.md) */
	uint32_t journal_inflight;  /* batches a group writes at once, 1 (default) ..
				     * CFG_JOURNAL_INFLIGHT_MAX (docs/journal.md) */
	bool journal_gather;        /* hold a batch for more callers (default yes; docs/journal.md) */
	bool loop_realtime;         /* loop_priority = realtime (the default; common/thprio.h) */
	int loop_cpu;               /* loop_cpu: the CPU the loop is pinned to, -1: none (default) */
	uint32_t poll_spin_us;      /* the loop's busy polling, 0 (default): off
				     * (common/spin.h; docs/configuration.md) */
	struct cfg_listen metrics_listen; /* HTTP /metrics; off unless set */

	struct cfg_node *nodes;     size_t nnodes;
	struct cfg_group *groups;   size_t ngroups;
	struct cfg_export *exports; size_t nexports;
};

/*
 * Parse and validate @path.  Every problem is printed to @errs (may be NULL)
 * as "PATH:LINE: message".  Returns 0 and sets *out, or -EINVAL when the file
 * has errors (nothing is returned), -errno when it cannot be read (-ENOENT,
 * -EACCES, -EISDIR, ...) or -ENOMEM; those are NOT printed, the caller
 * reports them.  *out is NULL on every failure.  The caller frees the tree
 * with cfg_free(); every pointer in it lives until then.
 */
int cfg_load(const char *path, FILE *errs, struct cfg_cluster **out);
/*
 * The checks that need this machine, for `sgnfsd -t`: the handle key file
 * (present, owner and mode, syntax), every export path (exists, is a
 * directory) and, on resolved paths with symlinks followed, that no export
 * contains or equals another.  Prints each problem to @errs as
 * "PATH:LINE: message".  Returns the number of problems, or -ENOMEM.
 */
int cfg_check_host(const struct cfg_cluster *c, FILE *errs);
/* True if some lease-owned group has a VIP with @IFACE: sgnfsd adds and
 * announces addresses itself (CAP_NET_ADMIN, CAP_NET_RAW; priv.h). */
bool cfg_manages_vips(const struct cfg_cluster *c);

/* Free everything cfg_load() returned; NULL is fine. */
void cfg_free(struct cfg_cluster *c);

/*
 * Where @n answers peer status requests (cluster/peer.h): its address with
 * its peer_port (or the cluster's).  False when @n has no address.
 */
bool cfg_node_peer_addr(const struct cfg_cluster *c, const struct cfg_node *n,
			struct sockaddr_storage *out);
/* The key file of peer status: peer_key, else handle_key (NULL if neither). */
const char *cfg_peer_key_path(const struct cfg_cluster *c);

/* Linear lookups; NULL when absent.  Paths match exactly (no normalisation). */
const struct cfg_node *cfg_node_find(const struct cfg_cluster *c, const char *name);
const struct cfg_group *cfg_group_find(const struct cfg_cluster *c, const char *name);
const struct cfg_export *cfg_export_by_fsid(const struct cfg_cluster *c, uint32_t fsid);
const struct cfg_export *cfg_export_by_path(const struct cfg_cluster *c, const char *path);
/* "lease" or "managed". */
const char *cfg_ownership_name(enum cfg_ownership o);

/*
 * Parse "a.b.c.d[/n]" or an IPv6 form ("::1", "fd00::/8") into @net; 0 or
 * -EINVAL.  No prefix means a single host (/32, /128).  Bits set beyond the
 * prefix ("10.0.0.1/8") are an error, not silently masked.
 */
int cfg_net_parse(const char *s, struct cfg_net *net);
/*
 * True if @sa (AF_INET/AF_INET6) lies in @net.  IPv4 is compared as its
 * v4-mapped IPv6 form (::ffff:a.b.c.d), so ::ffff:10.1.2.3 lies in
 * 10.0.0.0/8, 10.1.2.3 lies in ::ffff:10.0.0.0/104, and ::/0 matches every
 * address.  Other families never match.
 */
bool cfg_net_match(const struct cfg_net *net, const struct sockaddr *sa);

#endif
