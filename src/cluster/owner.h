/*
 * owner.h - who decides that this node serves a service group: one
 * interface, two implementations.
 *
 *   lease    (owner_lease_ops) the nodes decide among themselves through
 *            the group's lease file on the group's own storage (lease.h):
 *            the node contends on its own and calls @on_acquired when it
 *            wins.  A watchdog ends a stuck node so its leases pass on.
 *   managed  (owner_managed_ops) an outside cluster manager (Pacemaker,
 *            through the OCF agent) decides, and tells the node over the
 *            control socket (`sgnfsctl start|stop GROUP`).  The node never
 *            contends and never calls @on_acquired: membership, quorum and
 *            fencing are the manager's, so the node holds no lease that
 *            could disagree with it.
 *
 * The group layer (src/group) keeps one owner per group this node may
 * serve.  It brings the group online when told (on_acquired, or a
 * control "start" where ops->external), and tells the owner when the group
 * has left this node (release), so that a lease can pass on.
 *
 * Everything runs on the loop thread.
 */
#ifndef SGNFS_OWNER_H
#define SGNFS_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Called on the loop when this node has won the group: bring it online. */
typedef void (*owner_acquired_fn)(void *arg);

/* What an owner is opened with; every pointer is only read during open. */
struct owner_args {
	uv_loop_t *loop;
	const char *statedir;          /* <first export>/.sgnfs */
	const char *group;             /* the group's name, for logs */
	const char *me;                /* this node's name */
	const char *const *prefs;      /* the group's nodes, preferred first */
	size_t nprefs;
	/* 0 if the group's storage is here and is the group's, else -errno
	 * with why filled (storage.h); the lease owner never contends while
	 * it fails.  May be NULL. */
	int (*ready)(void *arg, char *why, size_t whylen);
	owner_acquired_fn on_acquired;
	void *arg;                     /* passed to ready and on_acquired */
};

struct owner_ops {
	const char *name;              /* "lease" or "managed", as in the config */
	/* True: the group is started and stopped from the control socket
	 * only; false: the node decides (and refuses control start/stop). */
	bool external;
	/* Start deciding for one group.  0 and *impl (passed to the other
	 * functions, freed by close), or -errno. */
	int (*open)(const struct owner_args *a, void **impl);
	/* The group has gone offline here.  With @target, only that node
	 * should take it next; with @contend false, this node does not take
	 * it back on its own until contend(impl, true). */
	void (*release)(void *impl, const char *target, bool contend);
	void (*contend)(void *impl, bool contend);
	/* Why this node does not contend now ("" if it does, or the owner
	 * never contends); for status. */
	const char *(*why)(void *impl);
	/* Does some node (this one included) serve the group now, as far as
	 * this owner can tell?  A node that has it listens on its VIPs. */
	bool (*taken)(void *impl);
	/* This node listens on every VIP of the group (@bound true), or is
	 * about to stop listening (false). */
	void (*bound)(void *impl, bool bound);
	/* Does another node serve the group and listen on its VIPs now?  A
	 * node handing the group over closes its clients' connections only
	 * then, so that their reconnects are accepted, never refused. */
	bool (*listening)(void *impl);
	/* Could node @node take the group now (it runs and contends)? */
	bool (*node_up)(void *impl, const char *node);
	/* Stop deciding; lets go of whatever the owner held.  NULL is fine. */
	void (*close)(void *impl);
};

extern const struct owner_ops owner_lease_ops;
extern const struct owner_ops owner_managed_ops;

#endif
