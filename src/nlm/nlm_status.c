/*
 * nlm_status.c - a group's lock state as data: counts, and the "journal",
 * "nlm", "clients" and "locks" parts of its status (docs/status.md).
 * Reads the group's tables only on the loop thread (nlm_status_snap); the
 * rest works on its own copy, on any thread.
 */
#include "nlm/nlm_status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "nlm/nlm_int.h"
#include "nsm/clist.h"
#include "sbuf.h"
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

/*
 * The status in two steps (docs/status.md, "Where the status is built"):
 * nlm_status_snap copies, on the loop, what the group's part shows into
 * plain data, at most list_max entries of each list (grp_node_status says
 * why); nlm_status_render builds the json-c objects from that copy alone,
 * on a pool thread, while the loop serves requests.  The counts (nclients,
 * nlocks) stay exact.
 *
 * Byte strings of the lists (client names, lock owners, file keys) are
 * appended to one arena (.bytes) and named by offset, so the copy costs
 * the loop a few reallocs, not one malloc per string.
 */
struct nlm_snap_client {
	size_t name, name_len;      /* in bytes */
	size_t addr, naddrs;        /* in addrs[] */
	int64_t added;
	bool holding;
};

struct nlm_snap_lock {
	size_t client, client_len;  /* in bytes */
	size_t owner, owner_len;    /* in bytes */
	size_t file, file_len;      /* in bytes */
	int64_t svid;
	uint64_t start, end;
	bool eof, excl;
};

struct nlm_status_snap {
	/* "journal" */
	const char *jstate;         /* a literal */
	bool has_jr, uring, folding;
	unsigned inflight;       /* journal_inflight in force */
	bool gather;             /* journal_gather in force */
	uint32_t version;        /* the journal file's format version */
	uint64_t reserved, batches, gathered, compactions, folds, failures;
	int64_t jbytes;
	/* "nlm" */
	uint64_t hosts, res_waiting, addr_probes, host_probes, refused_clients, refused_caps;
	/* the lists: every array and the arena owned by the snapshot */
	struct nlm_snap_client *clients;
	size_t nclients, clients_cap;
	bool clients_truncated;
	struct nlm_snap_lock *locks;
	size_t nlocks, locks_cap;
	bool locks_truncated;
	struct sockaddr_storage *addrs;
	size_t naddrs, addrs_cap;
	struct sbuf bytes;          /* sets .oom when an append failed */
	size_t max;                 /* entries listed at most per list */
	bool oom;                   /* an array could not grow */
};

/* Room for one more of @n entries of @size in *@arr (capacity *@cap). */
static bool nlm_snap_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? 2 * *cap : 64;
	p = realloc(*arr, ncap * size);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* Append @n bytes of @p to the arena; their offset. */
static size_t nlm_snap_bytes(struct nlm_status_snap *s, const void *p, size_t n)
{
	size_t off = s->bytes.len;

	sb_append(&s->bytes, p, n);
	return off;
}

static void nlm_snap_client(void *arg, const struct clist_entry_info *e)
{
	struct nlm_status_snap *s = arg;
	struct nlm_snap_client *c;

	if (s->oom)
		return;
	if (s->nclients >= s->max) {
		s->clients_truncated = true;
		return;
	}
	if (!nlm_snap_grow((void **)&s->clients, &s->clients_cap, s->nclients, sizeof(*c))) {
		s->oom = true;
		return;
	}
	while (s->naddrs + e->naddrs > s->addrs_cap)
		if (!nlm_snap_grow((void **)&s->addrs, &s->addrs_cap, s->addrs_cap,
				   sizeof(*s->addrs))) {
			s->oom = true;
			return;
		}
	c = &s->clients[s->nclients++];
	c->name_len = strlen(e->name);
	c->name = nlm_snap_bytes(s, e->name, c->name_len);
	c->holding = e->holding;
	c->added = e->added;
	c->addr = s->naddrs;
	c->naddrs = e->naddrs;
	memcpy(s->addrs + s->naddrs, e->addrs, e->naddrs * sizeof(*s->addrs));
	s->naddrs += e->naddrs;
}

static int nlm_snap_lock(void *arg, const struct lk_lockinfo *li)
{
	struct nlm_status_snap *s = arg;
	const struct nlm_host *h = lk_client_priv(lk_owner_client(li->owner));
	struct nlm_snap_lock *l;
	size_t ohlen;
	const void *oh = lk_owner_oh(li->owner, &ohlen);

	if (s->nlocks >= s->max) {
		s->locks_truncated = true;
		return 1;       /* stops the walk: the rest is not listed */
	}
	if (!nlm_snap_grow((void **)&s->locks, &s->locks_cap, s->nlocks, sizeof(*l))) {
		s->oom = true;
		return 1;
	}
	l = &s->locks[s->nlocks++];
	l->client_len = strlen(h->name);
	l->client = nlm_snap_bytes(s, h->name, l->client_len);
	l->owner_len = ohlen;
	l->owner = nlm_snap_bytes(s, oh, ohlen);
	l->file_len = li->keylen;
	l->file = nlm_snap_bytes(s, li->key, li->keylen);
	l->svid = lk_owner_svid(li->owner);
	l->start = li->range.start;
	l->eof = li->range.end == LK_EOF;
	l->end = li->range.end;
	l->excl = li->type == LK_EXCL;
	return 0;
}

void nlm_status_free(struct nlm_status_snap *s)
{
	if (!s)
		return;
	free(s->clients);
	free(s->locks);
	free(s->addrs);
	sb_free(&s->bytes);
	free(s);
}

int nlm_status_snap(const struct nlm_group *ng, size_t list_max, struct nlm_status_snap **out)
{
	struct nlm_status_snap *s = calloc(1, sizeof(*s));
	struct lk_stats rs = { 0 };
	struct jr_stats js = { 0 };

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (ng->resv)
		lk_table_stats(ng->resv, &rs);
	if (ng->jr)
		jr_get_stats(ng->jr, &js);
	/* The journal: off, on (what is still reserved), or failed. */
	s->jstate = !ng->jr ? "off" : jr_can_grant(ng->jr) ? "on" : "failed";
	s->has_jr = ng->jr != NULL;
	s->uring = ng->jr && jr_uses_uring(ng->jr);
	s->inflight = jr_get_inflight();
	s->gather = jr_get_gather();
	s->version = js.version;
	s->folding = ng->jr && jr_folding(ng->jr);
	s->reserved = rs.locks + rs.shares;
	s->jbytes = (int64_t)js.size;
	s->batches = js.batches;
	s->gathered = js.gathered;
	s->compactions = js.compactions;
	s->folds = js.folds;
	s->failures = js.failures;
	/* Counters of the NLM trust checks (docs/status.md). */
	s->hosts = ng->nhosts;
	s->res_waiting = ng->nres_wait;
	s->addr_probes = ng->addr_probes;
	s->host_probes = ng->host_probes;
	s->refused_clients = ng->refused_clients;
	s->refused_caps = ng->refused_caps;
	s->max = list_max;
	clist_foreach(ng->clients, nlm_snap_client, s);
	/* A list of 0 entries over a non-empty table is cut too. */
	if (!s->oom)
		(void)lk_foreach_lock(ng->locks, nlm_snap_lock, s);
	if (s->oom || s->bytes.oom)
		goto fail;
	*out = s;
	return 0;
fail:
	nlm_status_free(s);
	return -ENOMEM;
}

void nlm_status_render(const struct nlm_status_snap *s, struct json_object *out)
{
	const char *b = s->bytes.s ? s->bytes.s : "";
	struct json_object *j = json_object_new_object(), *arr;
	char a[80];

	sj_add(j, "state", json_object_new_string(s->jstate));
	sj_add(j, "reserved", json_object_new_uint64(s->reserved));
	sj_add(j, "bytes", json_object_new_int64(s->jbytes));
	sj_add(j, "batches", json_object_new_uint64(s->batches));
	sj_add(j, "compactions", json_object_new_uint64(s->compactions));
	sj_add(j, "folds", json_object_new_uint64(s->folds));
	/* A fold holds the folded part of the file and a second lock table
	 * until it ends: the admin reading RSS wants to know (docs/journal.md). */
	sj_add(j, "folding", json_object_new_boolean(s->folding));
	sj_add(j, "failures", json_object_new_uint64(s->failures));
	if (s->has_jr) { /* how batches are written: "uring", or "thread" (the fallback) */
		sj_add(j, "io", json_object_new_string(s->uring ? "uring" : "thread"));
		sj_add(j, "inflight", json_object_new_uint64(s->inflight));
		sj_add(j, "gather", json_object_new_boolean(s->gather));
		sj_add(j, "gathered", json_object_new_uint64(s->gathered));
		/* 1: a file from before the solo flag, until its next compaction */
		sj_add(j, "format", json_object_new_uint64(s->version));
	}
	sj_add(out, "journal", j);
	j = json_object_new_object();
	sj_add(j, "hosts", json_object_new_uint64(s->hosts));
	sj_add(j, "granted_res_waiting", json_object_new_uint64(s->res_waiting));
	sj_add(j, "address_probes", json_object_new_uint64(s->addr_probes));
	sj_add(j, "host_probes", json_object_new_uint64(s->host_probes));
	sj_add(j, "refused_clients", json_object_new_uint64(s->refused_clients));
	sj_add(j, "refused_caps", json_object_new_uint64(s->refused_caps));
	sj_add(out, "nlm", j);

	arr = json_object_new_array();
	for (size_t i = 0; i < s->nclients; i++) {
		const struct nlm_snap_client *c = &s->clients[i];
		struct json_object *o = json_object_new_object();
		struct json_object *addrs = json_object_new_array();

		sj_add(o, "name", sj_wire_str(b + c->name, c->name_len));
		sj_add(o, "holding", json_object_new_boolean(c->holding));
		sj_add(o, "added", json_object_new_int64(c->added));
		for (size_t k = 0; k < c->naddrs; k++)
			sj_push(addrs, json_object_new_string(rpc_addr_str(&s->addrs[c->addr + k],
									    false, a, sizeof(a))));
		sj_add(o, "addresses", addrs);
		sj_push(arr, o);
	}
	sj_add(out, "clients", arr);
	sj_add(out, "clients_truncated", json_object_new_boolean(s->clients_truncated));
	arr = json_object_new_array();
	for (size_t i = 0; i < s->nlocks; i++) {
		const struct nlm_snap_lock *l = &s->locks[i];
		struct json_object *o = json_object_new_object();

		sj_add(o, "client", sj_wire_str(b + l->client, l->client_len));
		sj_add(o, "svid", json_object_new_int64(l->svid));
		sj_add(o, "owner", sj_hex(b + l->owner, l->owner_len));
		sj_add(o, "file", sj_hex(b + l->file, l->file_len));
		sj_add(o, "start", json_object_new_uint64(l->start));
		sj_add(o, "end", l->eof ? json_object_new_string("eof")
					: json_object_new_uint64(l->end));
		sj_add(o, "type", json_object_new_string(l->excl ? "exclusive" : "shared"));
		sj_push(arr, o);
	}
	sj_add(out, "locks_truncated", json_object_new_boolean(s->locks_truncated));
	sj_add(out, "locks", arr);
}

void nlm_group_status(const struct nlm_group *ng, struct json_object *out, size_t list_max)
{
	struct nlm_status_snap *s;

	if (nlm_status_snap(ng, list_max, &s) < 0)
		return;
	nlm_status_render(s, out);
	nlm_status_free(s);
}
