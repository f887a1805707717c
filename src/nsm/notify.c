/*
 * notify.c - see notify.h.
 *
 * Each (client address, VIP) pair is one job: ask the client's portmapper
 * for its statd (NSM v1, UDP), then call SM_NOTIFY: one attempt.  A failed
 * attempt is tried again after 250 ms, doubling up to 8 s, until the job's
 * deadline.  At most NSM_NOTIFY_PARALLEL attempts are in flight at once;
 * a job waiting to try again holds none of them (nsm_job_fail), and first
 * attempts go before retries (nsm_pump).
 *
 * Every call of a notifier from one VIP goes through one unconnected
 * socket bound to that VIP (rpc_clnt.h, rpcc_new_dgram), made when the
 * first job needs it and closed when the last job ends.  A socket, a bind,
 * a connect and a close per call (two per job, and again per retry) were
 * most of what a notification cost the loop.  Such a socket hears no ICMP
 * error: a client where nothing listens is a call that times out (3-4 s)
 * instead of one refused at once, which only spaces its retries out.
 *
 * The jobs not started yet are packed (struct nsm_pend: the address, the
 * VIP's index, the name's offset in one block of names): a job's full
 * state (its sockaddr_storage, its deadline) is made only when it starts.
 * Prepared for 100,000 clients as one struct and one name copy each, the
 * list took a takeover's open 0.2 s of allocation and page faults.
 *
 * Starts are paced: at most NSM_NOTIFY_BURST jobs start per tick of
 * NSM_NOTIFY_PACE_MS (each start was a socket, a bind, a connect and a
 * datagram on the loop, ~40 us on a 2-core VM).  Started all at once,
 * the first 128 took the loop 3-14 ms in one turn at online, and their
 * retries came back together 250 ms, 750 ms, ... later; the other groups'
 * requests waited behind each of those turns.  Paced, the retries are
 * spread as the starts were.
 */
#include "nsm/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "log.h"
#include "sfile.h"
#include "nsm.h"
#include "nsm/clist.h"
#include "rpc/rpc_clnt.h"
#include "saddr.h"
#include "thprio.h"

/* Attempts in flight per notifier: a call in flight is an entry and a
 * timer in its VIP's socket; the bound keeps a long list's retransmissions
 * from flooding the loop and the network. */
#define NSM_NOTIFY_PARALLEL 128
#define NSM_NOTIFY_PACE_MS 1

/* ---- state number ------------------------------------------------------ */

/* The state file holds one decimal number: a few bytes. */
#define NSM_STATE_FILE_MAX 64

static int nsm_state_read(const char *statedir, int32_t *out)
{
	char path[4200], *text, *end;
	long long v;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/state", statedir);
	rc = sf_read(AT_FDCWD, path, NSM_STATE_FILE_MAX, &text, &len);
	if (rc == -ENOENT) {
		*out = 0;
		return 0;
	}
	if (rc < 0) {
		log_err("NSM state file %s: %s", path, sf_strerror(rc));
		return rc;
	}
	errno = 0;
	v = strtoll(text, &end, 10);
	rc = 0;
	if (errno || end == text || (*end && *end != '\n') || v < 0 || v > INT32_MAX - 2) {
		log_err("NSM state file %s: not a state number", path);
		rc = -EINVAL;
	}
	free(text);
	if (rc == 0)
		*out = (int32_t)v;
	return rc;
}

/* Atomic replace (sfile.h): the number is never torn or lost. */
static int nsm_state_write(const char *statedir, int32_t v)
{
	char path[4200];
	int fd, rc;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRId32 "\n", v);

	snprintf(path, sizeof(path), "%s/state", statedir);
	rc = sf_replace(AT_FDCWD, path, buf, (size_t)n, 0600);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* A full filesystem must not keep the group from starting:
		 * rewrite the few bytes in place, in the block the file
		 * already has (one sector: it lands whole or not at all). */
		int rc2 = sf_open(AT_FDCWD, path, O_WRONLY, 0, NSM_STATE_FILE_MAX, &fd, NULL);

		if (rc2 < 0)
			return rc;
		rc = 0;
		if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0 || fsync(fd) < 0)
			rc = errno ? -errno : -EIO;
		close(fd);
		return rc;
	}
	if (rc < 0)
		log_err("NSM state file %s: cannot replace: %s", path, sf_strerror(rc));
	return rc;
}

int nsm_state_up(const char *statedir, int32_t *out)
{
	int32_t v;
	int rc = nsm_state_read(statedir, &v);

	if (rc < 0)
		return rc;
	v = (v & 1) ? v + 2 : v + 1;
	rc = nsm_state_write(statedir, v);
	if (rc == 0)
		*out = v;
	return rc;
}

int nsm_state_down(const char *statedir)
{
	int32_t v;
	int rc = nsm_state_read(statedir, &v);

	if (rc < 0)
		return rc;
	if (!(v & 1))
		return 0;
	return nsm_state_write(statedir, v + 1);
}

/* ---- notifications ----------------------------------------------------- */

/* A notification not started yet (n->pend). */
struct nsm_pend {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} client;
	uint32_t vip;                  /* index into n->vips */
	uint32_t name;                 /* offset of the client's name in n->names */
};

/* A started notification (n->act), from its first attempt to its end. */
struct nsm_job {
	struct nsm_job *next;          /* n->act */
	struct nsm_job *aprev;
	struct nsm_notifier *n;
	struct sockaddr_storage client;
	const char *name;              /* client name, into n->names (logs) */
	uint64_t deadline;             /* no attempt starts at or after it */
	uint64_t due;                  /* while waiting: its next attempt's time */
	uint32_t backoff_ms;
	uint32_t vipi;                 /* its VIP: n->vips[vipi], socket n->dg[vipi] */
	uint32_t xid;                  /* the call in flight, while calling */
	uint32_t qi;                   /* its place in n->rq, while waiting */
	bool calling;
	bool slot, rslot;              /* holds an attempt slot (a retry's) */
};

struct nsm_notifier {
	uv_loop_t *loop;
	char *group;                   /* owned */
	struct sockaddr_storage *vips; /* owned copy */
	size_t nvips;
	struct rpcc_clnt **dg;         /* per VIP, made on first use; owned (rpcc_close) */
	int32_t state;
	uint32_t total_ms;
	uint16_t pmap_port;
	struct nsm_pend *pend;         /* owned, total of them, in order */
	size_t pend_cap;
	char *names;                   /* owned: the names, NUL-terminated */
	size_t names_len, names_cap;
	unsigned next;                 /* pend[next..total) not yet started */
	struct nsm_job *act;           /* started, not ended; owned */
	struct nsm_job **rq;           /* waiting to retry: min-heap by due; owned array */
	size_t nrq, rq_cap;
	unsigned live;                 /* jobs on n->act */
	unsigned slots, rslots;        /* attempts in flight (of them retries) */
	unsigned parallel;             /* at most this many attempts in flight */
	unsigned notified, failed, total;
	unsigned budget;               /* starts left in this pacing tick */
	uv_timer_t tick;               /* refills budget, wakes due retries */
	uint64_t tick_at;              /* when it fires; UINT64_MAX: not armed */
	bool tick_open;
	bool cancelled, finished;
	nsm_notify_done_fn done;
	void *arg;
	unsigned refs;                 /* 1 + the tick timer until it is closed */
};

unsigned nsm_notify_test_parallel;
uint16_t nsm_notify_test_pmap_port;

static void nsm_job_step(struct nsm_job *j);
static void nsm_pump(struct nsm_notifier *n);

/* Close the VIPs' sockets: each call still in flight completes now with
 * -ECANCELED (its job's callback returns at once). */
static void nsm_dg_close(struct nsm_notifier *n)
{
	for (size_t v = 0; n->dg && v < n->nvips; v++) {
		struct rpcc_clnt *c = n->dg[v];

		n->dg[v] = NULL;
		rpcc_close(c);
	}
}

/* The socket of VIP @v, made on first use. */
static int nsm_dg_get(struct nsm_notifier *n, uint32_t v, struct rpcc_clnt **out)
{
	struct sockaddr_storage loc = n->vips[v];
	int rc;

	if (!n->dg[v]) {
		sa_set_port(&loc, 0);
		rc = rpcc_new_dgram(n->loop, (const struct sockaddr *)&loc, NULL, &n->dg[v]);
		if (rc < 0) {
			n->dg[v] = NULL;
			return rc;
		}
	}
	*out = n->dg[v];
	return 0;
}

static void nsm_notifier_put(struct nsm_notifier *n)
{
	if (--n->refs)
		return;
	free(n->rq);
	free(n->pend);
	free(n->names);
	free(n->dg);
	free(n->vips);
	free(n->group);
	free(n);
}

static void nsm_tick_closed(uv_handle_t *h)
{
	nsm_notifier_put(h->data);
}

/* ---- the retry queue: a min-heap of waiting jobs by due time ---- */

static void nsm_rq_set(struct nsm_notifier *n, size_t i, struct nsm_job *j)
{
	n->rq[i] = j;
	j->qi = (uint32_t)i;
}

static void nsm_rq_up(struct nsm_notifier *n, size_t i)
{
	struct nsm_job *j = n->rq[i];

	while (i > 0 && n->rq[(i - 1) / 2]->due > j->due) {
		nsm_rq_set(n, i, n->rq[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	nsm_rq_set(n, i, j);
}

static void nsm_rq_down(struct nsm_notifier *n, size_t i)
{
	struct nsm_job *j = n->rq[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n->nrq)
			break;
		if (c + 1 < n->nrq && n->rq[c + 1]->due < n->rq[c]->due)
			c++;
		if (n->rq[c]->due >= j->due)
			break;
		nsm_rq_set(n, i, n->rq[c]);
		i = c;
	}
	nsm_rq_set(n, i, j);
}

/* Room is made when the job starts (nsm_pump): a push cannot fail. */
static void nsm_rq_push(struct nsm_notifier *n, struct nsm_job *j)
{
	n->rq[n->nrq++] = j;
	nsm_rq_up(n, n->nrq - 1);
}

static struct nsm_job *nsm_rq_pop(struct nsm_notifier *n)
{
	struct nsm_job *j = n->rq[0];

	if (--n->nrq > 0) {
		nsm_rq_set(n, 0, n->rq[n->nrq]);
		nsm_rq_down(n, 0);
	}
	return j;
}

/* ---- jobs ---- */

/* The attempt @j made is over: its slot goes to the next attempt. */
static void nsm_slot_put(struct nsm_job *j)
{
	if (j->slot) {
		j->slot = false;
		j->n->slots--;
	}
	if (j->rslot) {
		j->rslot = false;
		j->n->rslots--;
	}
}

/* Count, log, unlink and free @j (it holds no slot, waits on no queue and
 * has no call in flight). */
static void nsm_job_free(struct nsm_job *j, bool ok)
{
	struct nsm_notifier *n = j->n;
	char a[80], v[80];

	if (ok) {
		n->notified++;
		log_info("group=%s client=%s notified at %s from %s (state %" PRId32 ")",
			 n->group, j->name, rpc_addr_str(&j->client, false, a, sizeof(a)),
			 rpc_addr_str(&n->vips[j->vipi], false, v, sizeof(v)), n->state);
	} else {
		n->failed++;
		log_warn("group=%s client=%s not notified at %s: gave up after %u ms",
			 n->group, j->name, rpc_addr_str(&j->client, false, a, sizeof(a)),
			 n->total_ms);
	}
	n->live--;
	if (j->aprev)
		j->aprev->next = j->next;
	else
		n->act = j->next;
	if (j->next)
		j->next->aprev = j->aprev;
	free(j);
}

/*
 * @j's attempt failed: it gives its slot back and waits in the retry
 * queue (250 ms, doubling up to 8 s), or it gives up if its next attempt
 * would start after its deadline.  A client that does not answer (a dead
 * host: each attempt waits 3-4 s for its timeout) so holds a slot only
 * while an attempt is in flight: held from the first attempt to the
 * deadline, 128 dead clients kept every other client of the group from
 * being told until long after its grace had ended.  No pump here: the
 * caller pumps (a callback) or is the pump.
 */
static void nsm_job_fail(struct nsm_job *j)
{
	struct nsm_notifier *n = j->n;
	uint64_t now = uv_now(n->loop);

	nsm_slot_put(j);
	if (now + j->backoff_ms >= j->deadline) {
		nsm_job_free(j, false);
		return;
	}
	j->due = now + j->backoff_ms;
	j->backoff_ms = j->backoff_ms * 2 > 8000 ? 8000 : j->backoff_ms * 2;
	nsm_rq_push(n, j);
}

static void nsm_notify_reply(const struct rpcc_reply *rep, void *arg)
{
	struct nsm_job *j = arg;
	struct nsm_notifier *n = j->n;

	j->calling = false;
	if (rep->err == -ECANCELED || n->cancelled)
		return;
	if (rep->err == 0) {
		nsm_slot_put(j);
		nsm_job_free(j, true);
	} else {
		nsm_job_fail(j);
	}
	nsm_pump(n);
}

static void nsm_port_cb(int err, uint16_t port, void *arg)
{
	struct nsm_job *j = arg;
	struct nsm_notifier *n = j->n;
	struct sockaddr_storage srv = j->client;
	struct rpcc_timeout to = { .retrans_ms = 250, .retrans_max_ms = 2000, .total_ms = 4000 };
	sgn_stat_chge args;
	char mon[80];

	j->calling = false;
	if (err == -ECANCELED || n->cancelled)
		return;
	if (err != 0)
		goto fail;
	sa_set_port(&srv, port);
	/* The server name the client knows is the VIP it mounted from. */
	rpc_addr_str(&n->vips[j->vipi], false, mon, sizeof(mon));
	args.mon_name = mon;
	args.state = n->state;
	if (rpcc_call_to(n->dg[j->vipi], (const struct sockaddr *)&srv, NSM_PROG, 1,
			 NSMPROC_NOTIFY, (xdrproc_t)xdr_sgn_stat_chge, &args, NULL, 0, &to,
			 nsm_notify_reply, j, &j->xid) < 0)
		goto fail;
	j->calling = true;
	return;
fail:
	nsm_job_fail(j);
	nsm_pump(n);
}

/* One attempt: the client's statd port from its portmapper, then (in
 * nsm_port_cb) SM_NOTIFY.  Failing at once, @j fails (not pumped). */
static void nsm_job_step(struct nsm_job *j)
{
	struct sockaddr_storage pm = j->client;
	struct rpcc_timeout to = { .retrans_ms = 250, .retrans_max_ms = 2000, .total_ms = 3000 };
	struct rpcc_clnt *dg;

	sa_set_port(&pm, j->n->pmap_port);
	if (nsm_dg_get(j->n, j->vipi, &dg) < 0 ||
	    rpcc_getport_to(dg, (struct sockaddr *)&pm, NSM_PROG, 1, IPPROTO_UDP, &to,
			    nsm_port_cb, j, &j->xid) < 0) {
		nsm_job_fail(j);
		return;
	}
	j->calling = true;
}

static void nsm_tick_cb(uv_timer_t *t)
{
	struct nsm_notifier *n = t->data;

	n->tick_at = UINT64_MAX;
	n->budget = NSM_NOTIFY_BURST;
	nsm_pump(n);
}

/* Have the tick timer fire at @at at the latest. */
static void nsm_tick_arm(struct nsm_notifier *n, uint64_t now, uint64_t at)
{
	if (at >= n->tick_at)
		return;
	n->tick_at = at;
	uv_timer_start(&n->tick, nsm_tick_cb, at > now ? at - now : 0, 0);
}

/* A new job for pend[next], on n->act; NULL when out of memory. */
static struct nsm_job *nsm_job_new(struct nsm_notifier *n, uint64_t now)
{
	const struct nsm_pend *p = &n->pend[n->next];
	struct nsm_job *j;

	/* Its place in the retry queue is made now, so that a failed
	 * attempt always has one. */
	if (n->live == n->rq_cap) {
		size_t cap = n->rq_cap ? n->rq_cap * 2 : 64;
		struct nsm_job **q = reallocarray(n->rq, cap, sizeof(*q));

		if (!q)
			return NULL;
		n->rq = q;
		n->rq_cap = cap;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return NULL;
	n->next++;
	j->n = n;
	memcpy(&j->client, &p->client, p->client.sa.sa_family == AF_INET
	       ? sizeof(p->client.in) : sizeof(p->client.in6));
	j->vipi = p->vip;
	j->name = n->names + p->name;
	j->next = n->act;
	if (n->act)
		n->act->aprev = j;
	n->act = j;
	n->live++;
	j->deadline = now + n->total_ms;
	j->backoff_ms = 250;
	return j;
}

/*
 * Start the attempts the slots and this tick's budget allow: first
 * attempts before due retries (a client that answers is told at its first
 * attempt; one that failed once most likely does not answer), except that
 * a quarter of the slots may go to due retries while first attempts wait,
 * so that a client whose datagram was lost is asked again before its
 * deadline.  What cannot start now waits for a slot or for the tick.
 * Runs done once every job has ended.
 */
static void nsm_pump(struct nsm_notifier *n)
{
	uint64_t now = uv_now(n->loop);
	unsigned rmax = n->parallel / 4 ? n->parallel / 4 : 1;

	while (!n->cancelled && n->slots < n->parallel) {
		bool first = n->next < n->total;
		bool due = n->nrq > 0 && n->rq[0]->due <= now;
		struct nsm_job *j;

		if (!first && !due)
			break;
		if (n->budget == 0) {
			nsm_tick_arm(n, now, now + NSM_NOTIFY_PACE_MS);
			return;
		}
		if (due && (!first || n->rslots < rmax)) {
			j = nsm_rq_pop(n);
			if (now >= j->deadline) {
				nsm_job_free(j, false);
				continue;
			}
			j->rslot = true;
			n->rslots++;
		} else if (!(j = nsm_job_new(n, now))) {
			/* No memory now: the next tick tries again. */
			nsm_tick_arm(n, now, now + NSM_NOTIFY_PACE_MS);
			return;
		}
		n->budget--;
		j->slot = true;
		n->slots++;
		nsm_job_step(j);
	}
	if (n->cancelled)
		return;
	if (n->nrq > 0 && n->slots < n->parallel)
		nsm_tick_arm(n, now, n->rq[0]->due);
	if (n->live == 0 && n->next == n->total && !n->finished) {
		nsm_notify_done_fn done = n->done;

		n->finished = true;
		nsm_dg_close(n);
		n->done = NULL;
		if (done)
			done(n->arg, n->notified, n->failed);
	}
}

struct nsm_build {
	struct nsm_notifier *n;
	int err;
};

/* Append @len bytes of @s and a NUL to n->names: its offset, or -ENOMEM. */
static int64_t nsm_name_add(struct nsm_notifier *n, const char *s, size_t len)
{
	size_t off = n->names_len;

	if (n->names_cap - n->names_len < len + 1) {
		size_t cap = n->names_cap ? n->names_cap : 4096;
		char *p;

		while (cap - n->names_len < len + 1)
			cap *= 2;
		if (cap > UINT32_MAX || !(p = realloc(n->names, cap)))
			return -ENOMEM;
		n->names = p;
		n->names_cap = cap;
	}
	memcpy(n->names + off, s, len + 1);
	n->names_len += len + 1;
	return (int64_t)off;
}

static void nsm_add_client(void *arg, const struct clist_entry_info *e)
{
	struct nsm_build *b = arg;
	struct nsm_notifier *n = b->n;
	int64_t name = -1;

	if (b->err < 0)
		return;
	/* Prepared on a group's open thread, 100,000 clients in ~30 ms: it
	 * gives way there (a no-op on the loop: thprio.h). */
	thp_yield_point();
	for (size_t a = 0; a < e->naddrs; a++) {
		for (size_t v = 0; v < n->nvips; v++) {
			struct nsm_pend *p;

			if (e->addrs[a].ss_family != n->vips[v].ss_family)
				continue;
			if (name < 0 && (name = nsm_name_add(n, e->name, strlen(e->name))) < 0) {
				b->err = -ENOMEM;
				return;
			}
			if (n->total == n->pend_cap) {
				size_t cap = n->pend_cap ? n->pend_cap * 2 : 64;

				if (cap > UINT32_MAX ||
				    !(p = reallocarray(n->pend, cap, sizeof(*p)))) {
					b->err = -ENOMEM;
					return;
				}
				n->pend = p;
				n->pend_cap = cap;
			}
			p = &n->pend[n->total++];
			memset(p, 0, sizeof(*p));
			memcpy(&p->client, &e->addrs[a], e->addrs[a].ss_family == AF_INET
			       ? sizeof(p->client.in) : sizeof(p->client.in6));
			p->vip = (uint32_t)v;
			p->name = (uint32_t)name;
		}
	}
}

int nsm_notify_prepare(const char *group, const struct clist *cl,
		       const struct sockaddr_storage *vips, size_t nvips, int32_t state,
		       uint32_t total_ms, struct nsm_notifier **out)
{
	struct nsm_notifier *n = calloc(1, sizeof(*n));
	struct nsm_build b = { n, 0 };

	if (!n)
		return -ENOMEM;
	n->refs = 1;
	n->state = state;
	n->total_ms = total_ms;
	n->pmap_port = nsm_notify_test_pmap_port ? nsm_notify_test_pmap_port : 111;
	n->parallel = nsm_notify_test_parallel ? nsm_notify_test_parallel : NSM_NOTIFY_PARALLEL;
	n->tick_at = UINT64_MAX;
	n->group = strdup(group);
	n->vips = calloc(nvips ? nvips : 1, sizeof(*vips));
	if (!n->group || !n->vips) {
		nsm_notifier_put(n);
		return -ENOMEM;
	}
	memcpy(n->vips, vips, nvips * sizeof(*vips));
	n->nvips = nvips;
	n->dg = calloc(nvips ? nvips : 1, sizeof(*n->dg));
	if (!n->dg) {
		nsm_notifier_put(n);
		return -ENOMEM;
	}
	/* Room for one address per client and VIP, the usual case: one
	 * allocation, grown only for clients with several addresses. */
	n->pend_cap = clist_count(cl) * (nvips ? nvips : 1);
	if (n->pend_cap && !(n->pend = calloc(n->pend_cap, sizeof(*n->pend)))) {
		nsm_notifier_put(n);
		return -ENOMEM;
	}
	clist_foreach(cl, nsm_add_client, &b);
	if (b.err < 0) {
		nsm_notifier_put(n);
		return b.err;
	}
	*out = n;
	return 0;
}

void nsm_notify_run(struct nsm_notifier *n, uv_loop_t *loop, nsm_notify_done_fn done, void *arg)
{
	n->loop = loop;
	n->done = done;
	n->arg = arg;
	log_info("group=%s notifying %u client address/VIP pairs (state %" PRId32 ")",
		 n->group, n->total, n->state);
	if (n->total == 0) {
		n->done = NULL;
		if (done)
			done(arg, 0, 0);
		return;
	}
	uv_timer_init(loop, &n->tick);
	n->tick.data = n;
	n->tick_open = true;
	n->refs++; /* the tick timer's, until its close callback */
	n->budget = NSM_NOTIFY_BURST;
	nsm_pump(n);
}

unsigned nsm_notify_total(const struct nsm_notifier *n)
{
	return n->total;
}

unsigned nsm_notify_started(const struct nsm_notifier *n)
{
	return n->next;
}

void nsm_notify_progress(const struct nsm_notifier *n, unsigned *notified, unsigned *failed)
{
	*notified = n->notified;
	*failed = n->failed;
}

int nsm_notify_start(uv_loop_t *loop, const char *group, const struct clist *cl,
		     const struct sockaddr_storage *vips, size_t nvips, int32_t state,
		     uint32_t total_ms, nsm_notify_done_fn done, void *arg,
		     struct nsm_notifier **out)
{
	int rc = nsm_notify_prepare(group, cl, vips, nvips, state, total_ms, out);

	if (rc == 0)
		nsm_notify_run(*out, loop, done, arg);
	return rc;
}

void nsm_notify_cancel(struct nsm_notifier *n)
{
	if (!n)
		return;
	n->cancelled = true;
	n->next = n->total; /* the jobs not started never will be */
	n->done = NULL;
	if (n->tick_open) {
		n->tick_open = false;
		uv_close((uv_handle_t *)&n->tick, nsm_tick_closed);
	}
	/* The calls in flight end with the sockets (their callbacks see
	 * cancelled and return), then the jobs go. */
	nsm_dg_close(n);
	while (n->act) {
		struct nsm_job *j = n->act;

		n->act = j->next;
		free(j);
	}
	n->live = n->slots = n->rslots = 0;
	n->nrq = 0;
	nsm_notifier_put(n); /* the tick timer keeps it until its close */
}
