/*
 * nstatus.c - the node status written off the event loop (nstatus.h).
 */
#include "daemon/nstatus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "group/group.h"
#include "log.h"
#include "wq.h"
#include "sjson.h"
#include "version.h"

/* One status on its way; owned by the state I/O threads (wq.h) from wq_queue to
 * nst_after, then freed there. */
struct nst_job {
	struct wq_work work;
	struct nst_snap *snap;     /* owned; freed on the pool once written */
	nst_wrap_fn wrap;
	nst_done_fn done;
	void *arg;                 /* the caller's, for wrap (pool) and done (loop) */
	char *out;                 /* the wrapped answer; passes to done */
	size_t outlen;
	int rc;
	uint64_t copy_ns;          /* the loop's time taking the snapshot, */
	uint64_t pool_ns;          /* and the pool thread's on the rest (debug log) */
};

/* Loop thread only (nst_render_async and nst_after run there). */
static struct nst_stats nst_stats;

struct nst_snap *nst_snap_new(void)
{
	struct nst_snap *s = calloc(1, sizeof(*s));

	if (s)
		s->loop_cpu = -1;
	return s;
}

void nst_snap_free(struct nst_snap *s)
{
	if (!s)
		return;
	free(s->node);
	free(s->cfg_path);
	free(s->cfg_sha256);
	free(s->log_file);
	grp_node_snap_free(s->groups);
	free(s);
}

void nst_render(const struct nst_snap *s, struct json_object *out)
{
	struct json_object *cfg = json_object_new_object();

	sj_add(out, "schema", json_object_new_int(SGNFS_STATUS_SCHEMA));
	sj_add(out, "node", json_object_new_string(s->node));
	sj_add(out, "pid", json_object_new_int64(s->pid));
	sj_add(out, "version", json_object_new_string(SGNFS_VERSION));
	sj_add(cfg, "path", json_object_new_string(s->cfg_path));
	sj_add(cfg, "sha256", json_object_new_string(s->cfg_sha256));
	sj_add(out, "config", cfg);
	sj_add(out, "draining", json_object_new_boolean(s->draining));
	{
		/* Where the loop stands with the scheduler, as it is, not as
		 * asked (either can be refused at start: the log says why). */
		struct json_object *lp = json_object_new_object();

		sj_add(lp, "priority", json_object_new_string(s->loop_rt ? "realtime" : "normal"));
		sj_add(lp, "cpu", s->loop_cpu >= 0 ? json_object_new_int(s->loop_cpu) : NULL);
		sj_add(lp, "spin_us", json_object_new_int64(s->spin_max_us));
		sj_add(lp, "spin_hits", json_object_new_uint64(s->spin_hits));
		sj_add(lp, "spin_misses", json_object_new_uint64(s->spin_misses));
		sj_add(out, "loop", lp);
	}
	if (s->has_peer) {
		struct json_object *po = json_object_new_object();

		sj_add(po, "listen", json_object_new_string(s->peer_listen));
		sj_add(po, "answered", json_object_new_int64((int64_t)s->peer.answered));
		sj_add(po, "refused", json_object_new_int64((int64_t)s->peer.refused));
		sj_add(po, "limited", json_object_new_int64((int64_t)s->peer.limited));
		sj_add(out, "peer", po);
	}
	{
		struct json_object *lg = json_object_new_object();

		sj_add(lg, "level", json_object_new_string(s->log_level));
		sj_add(lg, "target", json_object_new_string(s->log_target));
		if (s->log_file)
			sj_add(lg, "file", json_object_new_string(s->log_file));
		sj_add(lg, "dropped", json_object_new_uint64(s->log_dropped));
		sj_add(lg, "queued", json_object_new_uint64(s->log_queued));
		sj_add(out, "log", lg);
	}
	{
		struct json_object *sd = json_object_new_object();

		sj_add(sd, "notify", json_object_new_boolean(s->sd_notify));
		sj_add(sd, "dropped", json_object_new_uint64(s->sd_dropped));
		sj_add(out, "systemd", sd);
	}
	{
		/* What the node's limits refused or dropped since start. */
		struct json_object *r = json_object_new_object(), *dj = json_object_new_object();

		sj_add(r, "udp_dropped", json_object_new_uint64(s->udp_dropped));
		sj_add(r, "udp_dropped_host", json_object_new_uint64(s->udp_dropped_host));
		sj_add(r, "connections_refused", json_object_new_uint64(s->conns_refused));
		sj_add(r, "connections_evicted", json_object_new_uint64(s->conns_evicted));
		sj_add(r, "inflight_bytes", json_object_new_uint64(s->inflight_bytes));
		sj_add(r, "inflight_stops_host", json_object_new_uint64(s->inflight_stops_host));
		sj_add(r, "inflight_stops_node", json_object_new_uint64(s->inflight_stops_node));
		sj_add(dj, "entries", json_object_new_uint64(s->drc.entries));
		sj_add(dj, "hosts", json_object_new_uint64(s->drc.hosts));
		sj_add(dj, "hits", json_object_new_uint64(s->drc.hits));
		sj_add(dj, "misses", json_object_new_uint64(s->drc.misses));
		sj_add(dj, "inprogress_drops", json_object_new_uint64(s->drc.inprogress_drops));
		sj_add(dj, "evictions", json_object_new_uint64(s->drc.evictions));
		sj_add(dj, "expired", json_object_new_uint64(s->drc.expired));
		sj_add(dj, "uncached", json_object_new_uint64(s->drc.nocache));
		sj_add(r, "drc", dj);
		sj_add(out, "rpc", r);
	}
	if (s->groups)
		grp_node_render(s->groups, out);
}

/* Pool thread: everything that grows with the lists (objects, text,
 * frees).  Touches nothing but the job. */
static void nst_work(struct wq_work *w)
{
	struct nst_job *j = w->data;
	uint64_t t0 = uv_hrtime();
	struct json_object *doc = json_object_new_object();
	const char *text;

	j->rc = -ENOMEM;
	if (!doc)
		goto out;
	nst_render(j->snap, doc);
	text = sj_text(doc);
	if (!text)
		goto out_put;
	j->rc = j->wrap(j->arg, text, strlen(text), &j->out, &j->outlen);
out_put:
	json_object_put(doc);
out:
	nst_snap_free(j->snap);
	j->snap = NULL;
	j->pool_ns = uv_hrtime() - t0;
}

/* Loop thread: hand the answer over, end the job. */
static void nst_after(struct wq_work *w, int status)
{
	struct nst_job *j = w->data;

	if (status < 0) {           /* cancelled: nst_work did not run */
		nst_snap_free(j->snap);
		j->rc = status;
	}
	nst_stats.running--;
	log_debug("status: copied on the loop in %.2f ms, %zu bytes written on the thread pool "
		  "in %.1f ms", (double)j->copy_ns / 1e6, j->outlen, (double)j->pool_ns / 1e6);
	j->done(j->arg, j->rc, j->out, j->outlen);   /* j->out passes to done */
	free(j);
}

int nst_render_async(uv_loop_t *loop, struct nst_snap *snap, nst_wrap_fn wrap,
		     nst_done_fn done, void *arg)
{
	struct nst_job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j) {
		rc = -ENOMEM;
		goto fail;
	}
	j->snap = snap;
	j->copy_ns = snap->copy_ns;
	j->wrap = wrap;
	j->done = done;
	j->arg = arg;
	j->work.data = j;
	rc = wq_queue(loop, &j->work, nst_work, nst_after);
	if (rc < 0)
		goto fail_job;
	nst_stats.running++;
	nst_stats.total++;
	return 0;
fail_job:
	free(j);
fail:
	nst_snap_free(snap);
	return rc;
}

void nst_get_stats(struct nst_stats *out)
{
	*out = nst_stats;
}
