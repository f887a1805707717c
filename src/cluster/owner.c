/*
 * owner.c - the two owner implementations (see owner.h).  The lease one is
 * a thin adapter over lease.c; the managed one holds nothing at all: the
 * cluster manager's word, relayed by the control socket, is the ownership.
 */
#include "cluster/owner.h"

#include "cluster/lease.h"

static int owner_lease_open(const struct owner_args *a, void **impl)
{
	return lease_new(a->loop, a->statedir, a->group, a->me, a->prefs, a->nprefs,
			 a->ready, a->on_acquired, a->arg, (struct lease **)impl);
}

static void owner_lease_release(void *impl, const char *target, bool contend)
{
	lease_release(impl, target, contend);
}

static void owner_lease_contend(void *impl, bool contend)
{
	lease_contend(impl, contend);
}

static const char *owner_lease_why(void *impl)
{
	return lease_why(impl);
}

static bool owner_lease_taken(void *impl)
{
	return lease_held(impl);
}

static void owner_lease_bound(void *impl, bool bound)
{
	lease_set_bound(impl, bound);
}

static bool owner_lease_listening(void *impl)
{
	return lease_bound_elsewhere(impl);
}

static bool owner_lease_node_up(void *impl, const char *node)
{
	return lease_node_up(impl, node);
}

static void owner_lease_close(void *impl)
{
	lease_free(impl);
}

const struct owner_ops owner_lease_ops = {
	.name = "lease",
	.external = false,
	.open = owner_lease_open,
	.release = owner_lease_release,
	.contend = owner_lease_contend,
	.why = owner_lease_why,
	.taken = owner_lease_taken,
	.bound = owner_lease_bound,
	.listening = owner_lease_listening,
	.node_up = owner_lease_node_up,
	.close = owner_lease_close,
};

static int owner_managed_open(const struct owner_args *a, void **impl)
{
	(void)a;
	*impl = NULL;
	return 0;
}

/* Nothing to hand over and nothing to contend for: the manager decides. */
static void owner_managed_release(void *impl, const char *target, bool contend)
{
	(void)impl;
	(void)target;
	(void)contend;
}

static void owner_managed_contend(void *impl, bool contend)
{
	(void)impl;
	(void)contend;
}

static const char *owner_managed_why(void *impl)
{
	(void)impl;
	return "";
}

/* The manager starts the group elsewhere only after this node's stop has
 * returned: it cannot be taken while this node waits. */
static bool owner_managed_taken(void *impl)
{
	(void)impl;
	return true;
}

static void owner_managed_bound(void *impl, bool bound)
{
	(void)impl;
	(void)bound;
}

/* As owner_managed_taken: the manager starts it elsewhere only later. */
static bool owner_managed_listening(void *impl)
{
	(void)impl;
	return true;
}

/* The manager knows which nodes run; this node does not decide. */
static bool owner_managed_node_up(void *impl, const char *node)
{
	(void)impl;
	(void)node;
	return true;
}

static void owner_managed_close(void *impl)
{
	(void)impl;
}

const struct owner_ops owner_managed_ops = {
	.name = "managed",
	.external = true,
	.open = owner_managed_open,
	.release = owner_managed_release,
	.contend = owner_managed_contend,
	.why = owner_managed_why,
	.taken = owner_managed_taken,
	.bound = owner_managed_bound,
	.listening = owner_managed_listening,
	.node_up = owner_managed_node_up,
	.close = owner_managed_close,
};
