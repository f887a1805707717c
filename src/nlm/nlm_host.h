/*
 * nlm_host.h - the client hosts of a group's NLM (nlm_host.c): the host
 * table, the index of the addresses each host used, the per-address caps.
 * A host is freed when it holds nothing and nobody refers to it (refs).
 */
#ifndef SGNFS_NLM_HOST_H
#define SGNFS_NLM_HOST_H

#include <stdbool.h>
#include <sys/socket.h>

struct lk_table;
struct nlm_group;
struct nlm_host;

/* The host named @name, or NULL. */
struct nlm_host *nlm_host_find(struct nlm_group *ng, const char *name);
/* The host named @name, made if new (NULL: out of memory). */
struct nlm_host *nlm_host_get(struct nlm_group *ng, const char *name);
/*
 * A client's requests come in runs from its address (lockd keeps one
 * connection and sends what its processes ask): the host the last request
 * from @peer's slot named, if it is named @name, else NULL; and remember @h
 * as that.  A slot holds one host, checked by name: addresses that share a
 * slot, or a crafted one, cost misses only.
 */
struct nlm_host *nlm_host_recall(const struct nlm_group *ng, const struct sockaddr_storage *peer,
				 const char *name);
void nlm_host_remember(struct nlm_group *ng, const struct sockaddr_storage *peer,
		       struct nlm_host *h);
/* Remember that @h sent a request from @peer (the address index). */
void nlm_host_seen(struct nlm_group *ng, struct nlm_host *h,
		   const struct sockaddr_storage *peer);
/* After anything that may have released a host's last lock. */
void nlm_host_maybe_idle(struct nlm_group *ng, struct nlm_host *h);
/* Drop a reference taken with h->refs++ (may free @h). */
void nlm_host_put(struct nlm_group *ng, struct nlm_host *h);

/* Call @fn for each host that sent requests from @addr, until it returns
 * false.  Costs one index bucket, never the number of hosts. */
void nlm_hosts_at(struct nlm_group *ng, const struct sockaddr_storage *addr,
		  bool (*fn)(void *arg, struct nlm_host *h), void *arg);
/*
 * The caps on what one address and the node may hold, for a request from
 * @peer naming @name (@new_lock: it would take something new): per address
 * max_names_per_host and max_locks_per_host; on the node, over every online
 * group, max_names and max_locks, which a reclaim (@reclaim) passes: what a
 * client held before a failover is taken back whatever this node holds
 * already, or it would be lost.  0 or -ENOLCK (logged, rate limited).
 */
int nlm_addr_caps(struct nlm_group *ng, const char *name,
		  const struct sockaddr_storage *peer, bool new_lock, bool reclaim);

/* An online group counts towards the node's caps from nlm_node_join to
 * nlm_node_leave (loop thread; leave is a no-op if it never joined). */
void nlm_node_join(struct nlm_group *ng);
void nlm_node_leave(struct nlm_group *ng);

/* Free a host table @hosts (@nbuckets chains; NULL: none), the array
 * itself and @locks: pure memory, any thread. */
void nlm_hosts_free(struct lk_table *locks, struct nlm_host **hosts, size_t nbuckets);

#endif
