/*
 * nlm_status.c - a group's lock state as data: counts, and the "journal",
 * "nlm", "clients" and "locks" parts of its status (docs/status.md).
 * Reads only; loop thread.
 */
#include "nlm/nlm_status.h"

#include "journal/journal.h"
#include "nlm/nlm_int.h"
#include "nsm/clist.h"
#include "sjson.h"

size_t nlm_group_nwaiters(const struct nlm_group *ng)
{
	struct lk_stats st;

	lk_table_stats(ng->locks, &st);
	return st.waiters;
}

void nlm_group_journal_stats(const struct nlm_group *ng, struct jr_stats *st)
{
	if (ng && ng->jr)
		jr_get_stats(ng->jr, st);
}

size_t nlm_group_nlocks(const struct nlm_group *ng)
{
	struct lk_stats st;

	lk_table_stats(ng->locks, &st);
	return st.locks;
}

/* The lists are cut at the caller's list_max (grp_node_status says why);
 * the counts (nclients, nlocks) stay exact. */
struct nlm_status_ctx {
	struct json_object *arr;   /* borrowed: the "clients" or "locks" array */
	size_t n;                  /* entries seen, listed or not */
	size_t max;                /* entries listed at most */
};

static void nlm_status_client(void *arg, const struct clist_entry_info *e)
{
	struct nlm_status_ctx *c = arg;
	struct json_object *o, *addrs;
	char a[80];

	if (c->n++ >= c->max)
		return;
	o = json_object_new_object();
	addrs = json_object_new_array();
	sj_add(o, "name", sj_wire_str(e->name, strlen(e->name)));
	sj_add(o, "holding", json_object_new_boolean(e->holding));
	sj_add(o, "added", json_object_new_int64(e->added));
	for (size_t i = 0; i < e->naddrs; i++)
		sj_push(addrs, json_object_new_string(rpc_addr_str(&e->addrs[i], false, a,
								    sizeof(a))));
	sj_add(o, "addresses", addrs);
	sj_push(c->arr, o);
}

static int nlm_status_lock(void *arg, const struct lk_lockinfo *li)
{
	struct nlm_status_ctx *c = arg;
	const struct nlm_host *h = lk_client_priv(lk_owner_client(li->owner));
	size_t ohlen;
	const void *oh = lk_owner_oh(li->owner, &ohlen);
	struct json_object *o;

	if (c->n++ >= c->max)
		return 1;       /* stops the walk: the rest is not listed */
	o = json_object_new_object();

	sj_add(o, "client", sj_wire_str(h->name, strlen(h->name)));
	sj_add(o, "svid", json_object_new_int64(lk_owner_svid(li->owner)));
	sj_add(o, "owner", sj_hex(oh, ohlen));
	sj_add(o, "file", sj_hex(li->key, li->keylen));
	sj_add(o, "start", json_object_new_uint64(li->range.start));
	sj_add(o, "end", li->range.end == LK_EOF ? json_object_new_string("eof")
						 : json_object_new_uint64(li->range.end));
	sj_add(o, "type", json_object_new_string(li->type == LK_EXCL ? "exclusive" : "shared"));
	sj_push(c->arr, o);
	return 0;
}

void nlm_group_status(const struct nlm_group *ng, struct json_object *out, size_t list_max)
{
	struct nlm_status_ctx c;
	/* The journal: off, on (what is still reserved), or failed. */
	struct lk_stats rs = { 0 };
	struct jr_stats js = { 0 };
	const char *jstate = !ng->jr ? "off" : jr_can_grant(ng->jr) ? "on" : "failed";
	struct json_object *j = json_object_new_object();

	if (ng->resv)
		lk_table_stats(ng->resv, &rs);
	if (ng->jr)
		jr_get_stats(ng->jr, &js);
	sj_add(j, "state", json_object_new_string(jstate));
	sj_add(j, "reserved", json_object_new_uint64(rs.locks + rs.shares));
	sj_add(j, "bytes", json_object_new_int64(js.size));
	sj_add(j, "batches", json_object_new_uint64(js.batches));
	sj_add(j, "compactions", json_object_new_uint64(js.compactions));
	sj_add(j, "failures", json_object_new_uint64(js.failures));
	if (ng->jr) /* how batches are written: "uring", or "thread" (the fallback) */
		sj_add(j, "io", json_object_new_string(jr_uses_uring(ng->jr) ? "uring" : "thread"));
	sj_add(out, "journal", j);
	/* Counters of the NLM trust checks (docs/status.md). */
	j = json_object_new_object();
	sj_add(j, "hosts", json_object_new_uint64(ng->nhosts));
	sj_add(j, "granted_res_waiting", json_object_new_uint64(ng->nres_wait));
	sj_add(j, "address_probes", json_object_new_uint64(ng->addr_probes));
	sj_add(j, "host_probes", json_object_new_uint64(ng->host_probes));
	sj_add(j, "refused_clients", json_object_new_uint64(ng->refused_clients));
	sj_add(j, "refused_caps", json_object_new_uint64(ng->refused_caps));
	sj_add(out, "nlm", j);
	c.arr = json_object_new_array();
	c.n = 0;
	c.max = list_max;
	clist_foreach(ng->clients, nlm_status_client, &c);
	sj_add(out, "clients", c.arr);
	sj_add(out, "clients_truncated", json_object_new_boolean(c.n > list_max));
	c.arr = json_object_new_array();
	c.n = 0;
	sj_add(out, "locks_truncated", json_object_new_boolean(
		       lk_foreach_lock(ng->locks, nlm_status_lock, &c) != 0));
	sj_add(out, "locks", c.arr);
}
