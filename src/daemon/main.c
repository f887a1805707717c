/*
 * main.c - sgnfsd, one node of an sgnfs cluster.
 *
 *   sgnfsd -c FILE -n NODE [-f] [-d]   run node NODE
 *   sgnfsd -t -c FILE                  check FILE, print every error, exit
 *   sgnfsd -V | -h                     version, usage
 *
 * One process per node: the pid file is locked before anything else of
 * the node's is touched (pidfile.h).  Exit codes: see the enum below and
 * docs/operations.md.
 *
 * The node runs one libuv loop that owns all protocol and lock state;
 * blocking disk work goes to libuv's thread pool.  Signal handlers are
 * libuv signal watchers, so nothing runs in async-signal context.
 *
 * Which groups this node serves: those whose lease it holds (the embedded
 * lease manager, src/cluster/lease.h); a watchdog ends the process if the
 * loop stops turning, so its leases pass on.
 */
#include <errno.h>
#include <sched.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpc/pmap_clnt.h>

#include "cluster/ctlsock.h"
#include "cluster/peer.h"
#include "cluster/watchdog.h"
#include "daemon/metrics_http.h"
#include "daemon/nstatus.h"
#include "daemon/pidfile.h"
#include "daemon/sdnotify.h"
#include "config/config.h"
#include "config/reload.h"
#include "group/group.h"
#include "journal/journal.h"
#include "log.h"
#include "wq.h"
#include "metrics.h"
#include "mount.h"
#include "nfs3.h"
#include "nlm.h"
#include "nsm.h"
#include "pmap.h"
#include "nfs/fh.h"
#include "priv.h"
#include "sandbox.h"
#include "thprio.h"
#include "nfs/nfs.h"
#include "nlm/nlm_svc.h"
#include "nsm/nsm_svc.h"
#include "rpc/pmap_svc.h"
#include "rpc/rpc.h"
#include "rpc/rpc_drc.h"
#include "saddr.h"
#include "sjson.h"
#include "version.h"
#include "spin.h"

struct sgnfsd {
	uv_loop_t *loop;
	struct cfg_cluster *cfg;              /* owned */
	struct sg_node node;
	uv_signal_t sigterm, sigint, sighup;
	struct ctl_server *ctl;               /* owned */
	struct peer_server *peer;             /* owned: peer status, or NULL */
	struct cfg_cluster **retired;         /* owned: trees a reload replaced, freed
					       * at exit (pointers into them live on) */
	size_t nretired;
	uint64_t reloads, reload_refusals;    /* for the metrics */
	struct mh_server *mh;                 /* owned: HTTP /metrics, or NULL */
	struct pidfile pid;                   /* held from start to exit */
	struct spin spin;                     /* the loop's busy polling (poll_spin_us) */
};

/* Exit codes (sgnfsd(8), docs/operations.md). */
enum {
	SGNFSD_EXIT_OK = 0,       /* stopped on SIGTERM/SIGINT; -t: no error; -h, -V */
	SGNFSD_EXIT_CONFIG = 1,   /* the file has errors or cannot be read; no such node */
	SGNFSD_EXIT_START = 2,    /* could not start (run_dir, sockets, rpcbind, ...) */
	SGNFSD_EXIT_RUNNING = 3,  /* another sgnfsd runs this node */
	SGNFSD_EXIT_USAGE = 64,   /* bad command line */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgnfsd -c FILE -n NODE [-f] [-d]\n"
		"       sgnfsd -t -c FILE\n"
		"       sgnfsd -V | -h\n"
		"  -c, --config FILE  cluster configuration (INI)\n"
		"  -n, --node NODE    which [node] of FILE this process is\n"
		"  -f, --foreground   stay in the foreground, log to stderr\n"
		"  -d, --debug        debug logging\n"
		"  -t, --check        check FILE: print every error with its line, exit 1 if any\n"
		"  -V, --version      print the version\n"
		"  -h, --help         this text\n"
		"exit: 0 stopped cleanly, 1 configuration error, 2 could not start,\n"
		"      3 another sgnfsd runs this node, 64 usage (sgnfsd(8))\n");
}

/* What the loop's busy polling watches (spin.h): the node's RPC input. */
static uint64_t sgnfsd_input_count(void *svc, uint64_t *switches)
{
	return rpc_svc_input_count(svc, switches);
}

/* The busy polling to use for poll_spin_us = @want: none where the loop
 * would share its one CPU with everything else (clients on this machine
 * included, which a polling loop would keep off it). */
static unsigned sgnfsd_spin_us(const struct sgnfsd *d, unsigned want)
{
	cpu_set_t cs;

	if (!want || thp_loop_cpu() >= 0)
		return want;
	if (sched_getaffinity(0, sizeof(cs), &cs) == 0 && CPU_COUNT(&cs) < 2) {
		log_warn("node %s: poll_spin_us = %u, but the node may use one CPU only: the "
			 "loop does not poll", d->node.me->name, want);
		return 0;
	}
	return want;
}

static void sgnfsd_shutdown(struct sgnfsd *d, const char *why)
{
	log_info("node %s shutting down (%s)", d->node.me->name, why);
	sdn_stopping();
	sdn_watchdog_stop();
	mh_stop(d->mh);
	d->mh = NULL;
	grp_node_stop(&d->node);
	wd_stop();
	ctl_close(d->ctl);
	d->ctl = NULL;
	peer_close(d->peer);
	d->peer = NULL;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
}

static int sgnfsd_status_snap(struct sgnfsd *d, struct nst_snap **out);

/* nst_wrap_fn, pool thread: the reply a peer gets, length, JSON and MAC
 * (cluster/peer.h); @arg is its peer_call. */
static int sgnfsd_peer_wrap(void *arg, const char *json, size_t len, char **out,
			    size_t *outlen)
{
	return peer_call_frame(arg, json, len, (uint8_t **)out, outlen);
}

/* nst_done_fn, loop: send it (or close unanswered: logged). */
static void sgnfsd_peer_done(void *arg, int rc, char *out, size_t outlen)
{
	if (rc < 0)
		log_warn("peer: a status request is not answered: %s", strerror(-rc));
	peer_call_done(arg, (uint8_t *)out, outlen);
}

/* peer_status_fn: what a peer asks for is the node status, copied here
 * and written on the thread pool (daemon/nstatus.h); @call is answered
 * once, by sgnfsd_peer_done or here. */
static void sgnfsd_peer_status(void *arg, struct peer_call *call)
{
	struct sgnfsd *d = arg;
	struct nst_snap *s;
	int rc = sgnfsd_status_snap(d, &s);

	if (rc == 0)
		rc = nst_render_async(d->loop, s, sgnfsd_peer_wrap, sgnfsd_peer_done, call);
	if (rc < 0) {
		log_warn("peer: a status request is not answered: %s", strerror(-rc));
		peer_call_done(call, NULL, 0);
	}
}

/* (Re)load the peer status key into the peer listener; 0 or -errno
 * (logged; the keys in use stay). */
static int sgnfsd_peer_keys(struct sgnfsd *d)
{
	const char *path = cfg_peer_key_path(d->cfg);
	struct hk_set ks;
	char why[200];
	int rc = path ? hk_load(path, &ks, why, sizeof(why)) : -ENOENT;

	if (rc < 0) {
		log_err("node %s peer key %s: %s", d->node.me->name, path ? path : "(none)",
			path ? why : "no peer_key or handle_key");
		return rc;
	}
	peer_server_set_keys(d->peer, &ks);
	explicit_bzero(&ks, sizeof(ks));
	return 0;
}

/*
 * Listen for peer status requests on this node's address (cluster/peer.h),
 * if it has one.  0, or -errno (logged): a configured address that cannot
 * be served is an error, or peers would report a live node down.
 */
static int sgnfsd_peer_start(struct sgnfsd *d)
{
	struct sockaddr_storage sa;
	struct hk_set ks = { 0 };
	char a[64];
	int rc;

	if (!cfg_node_peer_addr(d->cfg, d->node.me, &sa))
		return 0;
	rc = peer_listen(d->loop, &sa, &ks, sgnfsd_peer_status, d, &d->peer);
	if (rc == 0)
		rc = sgnfsd_peer_keys(d);
	sa_str(&sa, true, a, sizeof(a));
	if (rc < 0) {
		log_err("node %s cannot answer peer status on %s: %s", d->node.me->name, a,
			strerror(-rc));
		peer_close(d->peer);
		d->peer = NULL;
		return rc;
	}
	log_info("node %s answers peer status on %s", d->node.me->name, a);
	return 0;
}

static void sgnfsd_on_signal(uv_signal_t *s, int signum)
{
	sgnfsd_shutdown(s->data, strsignal(signum));
}

/*
 * Loop thread: copy what the node status shows (docs/status.md) into
 * *@out (the caller's; daemon/nstatus.h): the node's part here, the
 * groups' by grp_node_snap.  Copies only, lists cut at their share: the
 * json-c objects are made from it on the thread pool.  0 or -ENOMEM
 * (nothing to free).
 */
static int sgnfsd_status_snap(struct sgnfsd *d, struct nst_snap **out)
{
	uint64_t t0 = uv_hrtime();
	struct nst_snap *s = nst_snap_new();
	int rc = -ENOMEM;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->node = strdup(d->node.me->name);
	s->cfg_path = strdup(d->cfg->path);
	s->cfg_sha256 = strdup(d->cfg->sha256);
	if (!s->node || !s->cfg_path || !s->cfg_sha256)
		goto fail;
	s->pid = getpid();
	s->draining = d->node.draining;
	s->loop_rt = thp_is_realtime() == 1;
	s->loop_cpu = thp_loop_cpu();
	s->spin_max_us = (uint32_t)(d->spin.max_ns / 1000);
	s->spin_hits = d->spin.hits;
	s->spin_misses = d->spin.misses;
	if (d->peer) {
		struct sockaddr_storage sa;

		s->has_peer = true;
		peer_server_stats(d->peer, &s->peer);
		cfg_node_peer_addr(d->cfg, d->node.me, &sa);
		sa_str(&sa, true, s->peer_listen, sizeof(s->peer_listen));
	}
	s->log_level = log_level_name(log_get_level());
	s->log_target = log_target_name(log_get_target());
	s->log_dropped = log_dropped();
	s->log_queued = log_queued();
	s->sd_notify = sdn_enabled();
	s->sd_dropped = sdn_dropped();
	if (log_file_path() && !(s->log_file = strdup(log_file_path())))
		goto fail;
	/* What the node's limits refused or dropped since start. */
	rpc_svc_limit_stats(d->node.svc, &s->conns_refused, &s->conns_evicted);
	rpc_svc_drc_stats(d->node.svc, &s->drc);
	s->udp_dropped = rpc_svc_udp_dropped(d->node.svc);
	s->udp_dropped_host = rpc_svc_udp_dropped_host(d->node.svc);
	rpc_svc_budget_stats(d->node.svc, &s->inflight_bytes, &s->inflight_stops_host,
			     &s->inflight_stops_node);
	rc = grp_node_snap(&d->node, &s->groups);
	if (rc < 0)
		goto fail;
	s->copy_ns = uv_hrtime() - t0;
	*out = s;
	return 0;
fail:
	nst_snap_free(s);
	return rc;
}

/* A control request "status" on its way: its call and the reply object the
 * handler got (owned by the call until it is done).  Freed when done. */
struct sgnfsd_ctl_status {
	struct ctl_call *call;
	struct json_object *reply;
};

/* nst_wrap_fn, pool thread: the control socket's answer is the JSON line. */
static int sgnfsd_ctl_wrap(void *arg, const char *json, size_t len, char **out, size_t *outlen)
{
	char *line = malloc(len + 2);

	(void)arg;
	if (!line)
		return -ENOMEM;
	memcpy(line, json, len);
	memcpy(line + len, "\n", 2);
	*out = line;
	*outlen = len + 1;
	return 0;
}

/* nst_done_fn, loop: send the line, or {"error"} when it could not be made. */
static void sgnfsd_ctl_status_done(void *arg, int rc, char *out, size_t outlen)
{
	struct sgnfsd_ctl_status *cs = arg;

	if (out) {
		ctl_call_done_text(cs->call, out, outlen);
	} else {
		sj_add(cs->reply, "error", json_object_new_string(strerror(rc < 0 ? -rc : ENOMEM)));
		ctl_call_done(cs->call);
	}
	free(cs);
}

/*
 * The control request "status": copied now, written on the thread pool,
 * answered when that is done (ctl_defer).  On a failure before the job is
 * queued the answer is {"error"} at once.
 */
static void sgnfsd_ctl_status(struct sgnfsd *d, struct json_object *out)
{
	struct sgnfsd_ctl_status *cs = calloc(1, sizeof(*cs));
	struct nst_snap *s = NULL;
	int rc = -ENOMEM;

	if (!cs)
		goto fail;
	rc = sgnfsd_status_snap(d, &s);
	if (rc < 0)
		goto fail_cs;
	cs->reply = out;
	cs->call = ctl_defer();
	/* s passes to the job, also when queueing fails */
	rc = nst_render_async(d->loop, s, sgnfsd_ctl_wrap, sgnfsd_ctl_status_done, cs);
	if (rc < 0)
		goto fail_cs;
	return;
fail_cs:
	/* Not deferred after all: answered on return (ctl_defer only marks
	 * the call while its handler runs). */
	if (cs->call)
		ctl_undefer();
	free(cs);
fail:
	log_warn("node %s: status not made: %s", d->node.me->name, strerror(-rc));
	sj_add(out, "error", json_object_new_string(strerror(-rc)));
}

/* [cluster] journal_gather and journal_inflight, live: the next batch of every group's journal
 * starts under the new bound (batches in flight finish as they are); poll_spin_us, live: the
 * next spin of the loop. */
static void sgnfsd_reload_live(struct sgnfsd *d, const struct cfg_cluster *next,
				  struct json_object *changes)
{
	char line[128];

	if (next->journal_gather != d->cfg->journal_gather) {
		jr_set_gather(next->journal_gather);
		snprintf(line, sizeof(line), "[cluster] journal_gather %s -> %s",
			 d->cfg->journal_gather ? "yes" : "no", next->journal_gather ? "yes" : "no");
		log_info("node %s %s (reload)", d->node.me->name, line);
		sj_push(changes, json_object_new_string(line));
	}
	if (next->poll_spin_us != d->cfg->poll_spin_us) {
		spin_set_max(&d->spin, sgnfsd_spin_us(d, next->poll_spin_us));
		snprintf(line, sizeof(line), "[cluster] poll_spin_us %u -> %u",
			 d->cfg->poll_spin_us, next->poll_spin_us);
		log_info("node %s %s (reload)", d->node.me->name, line);
		sj_push(changes, json_object_new_string(line));
	}
	if (next->journal_inflight == d->cfg->journal_inflight)
		return;
	jr_set_inflight(next->journal_inflight);
	snprintf(line, sizeof(line), "[cluster] journal_inflight %u -> %u",
		 d->cfg->journal_inflight, next->journal_inflight);
	log_info("node %s %s (reload)", d->node.me->name, line);
	sj_push(changes, json_object_new_string(line));
}

/*
 * Re-read the configuration file (SIGHUP, "reload"): apply what can change
 * live (config/reload.h), refuse the rest with the reason, keeping the old
 * configuration.  The answer goes into @out: {"result": "reloaded",
 * "sha256", "changes": [...]} or {"error", "sha256" (the one in force)}.
 */
static void sgnfsd_reload(struct sgnfsd *d, const char *why_asked, struct json_object *out)
{
	struct cfg_cluster *next = NULL, **r;
	struct json_object *changes = json_object_new_array();
	char why[1024] = "", *errs = NULL;
	size_t errlen = 0;
	FILE *ef;
	enum log_level lvl;
	int rc;

	sdn_reloading();
	log_info("node %s reloading %s (%s)", d->node.me->name, d->cfg->path, why_asked);
	ef = open_memstream(&errs, &errlen);
	rc = cfg_load(d->cfg->path, ef, &next);
	if (ef)
		fclose(ef);
	if (rc == -EINVAL) {
		/* The first error line is enough for the reason; all are logged. */
		size_t l = errs ? strcspn(errs, "\n") : 0;
		snprintf(why, sizeof(why), "the file has errors: %.*s%s", (int)l, errs ? errs : "",
			 errs && errs[l] && errs[l + 1] ? " (and more, see the log)" : "");
		for (char *p = errs, *nl; p && *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				nl = p + strlen(p) - 1;
			log_err("reload: %.*s", (int)(nl - p), p);
		}
	} else if (rc < 0) {
		snprintf(why, sizeof(why), "%s: %s", d->cfg->path, strerror(-rc));
	} else if (strcmp(next->sha256, d->cfg->sha256) == 0) {
		/* Nothing changed; still a chance to reopen a rotated log. */
		rc = 1;
	} else if ((rc = rl_check(d->cfg, next, why, sizeof(why))) == 0) {
		r = realloc(d->retired, (d->nretired + 1) * sizeof(*r));
		if (!r) {
			rc = -ENOMEM;
			snprintf(why, sizeof(why), "out of memory");
		} else {
			d->retired = r;
			rc = grp_node_reconfigure(&d->node, next, changes, why, sizeof(why));
		}
		if (rc == 0) {
			sgnfsd_reload_live(d, next, changes);
			d->retired[d->nretired++] = d->cfg;
			d->cfg = next;
			next = NULL;
		}
	}
	free(errs);
	cfg_free(next);
	if (rc >= 0)
		d->reloads++;
	else
		d->reload_refusals++;
	if (rc >= 0) {
		if (log_level_parse(d->cfg->log_level, &lvl) == 0 && lvl != log_get_level()) {
			log_info("node %s log level %s -> %s (reload)", d->node.me->name,
				 log_level_name(log_get_level()), log_level_name(lvl));
			log_set_level(lvl);
		}
		if (log_reopen() < 0)
			log_warn("node %s cannot reopen its log file %s: %s", d->node.me->name,
				 log_file_path(), strerror(errno));
		/* A rotated handle key (docs/security.md) is read again even when
		 * the configuration is unchanged: the file is not part of it.  On
		 * failure the keys in use stay (logged). */
		if (d->cfg->handle_key && fh_keys_load(d->cfg->handle_key) < 0)
			sj_add(out, "handle_key_error",
			       json_object_new_string("the handle key file cannot be used; "
						      "the keys loaded before stay in use"));
		if (d->peer && sgnfsd_peer_keys(d) < 0)
			sj_add(out, "peer_key_error",
			       json_object_new_string("the peer key file cannot be used; "
						      "the keys loaded before stay in use"));
		log_info("node %s reloaded %s (sha256 %.12s, %zu changes)", d->node.me->name,
			 d->cfg->path, d->cfg->sha256, json_object_array_length(changes));
		sj_add(out, "result", json_object_new_string(rc == 1 ? "unchanged" : "reloaded"));
		sj_add(out, "changes", changes);
	} else {
		log_err("node %s reload refused, the old configuration stays in force: %s",
			d->node.me->name, why);
		sj_add(out, "error", json_object_new_string(why));
		json_object_put(changes);
	}
	sj_add(out, "sha256", json_object_new_string(d->cfg->sha256));
	{
		char st[128];
		snprintf(st, sizeof(st), "node %s: config %.12s", d->node.me->name, d->cfg->sha256);
		sdn_ready(st);
	}
}

static void sgnfsd_on_sighup(uv_signal_t *s, int signum)
{
	struct json_object *out = json_object_new_object();

	sgnfsd_reload(s->data, "SIGHUP", out);
	json_object_put(out);
}

/* The node's metrics in the Prometheus text format (docs/metrics.md). */
static void sgnfsd_metrics(void *arg, struct sbuf *out)
{
	struct sgnfsd *d = arg;
	const char *n = d->node.me->name;
	uint64_t calls, conns;

	rpc_svc_stats(d->node.svc, &calls, &conns);
	mt_family(out, "sgnfs_build_info", "gauge", "Always 1; the labels say what runs.");
	sb_printf(out, "sgnfs_build_info{node=\"%s\",version=\"%s\",config_sha256=\"%s\"} 1\n",
		  n, SGNFS_VERSION, d->cfg->sha256);
	mt_family(out, "sgnfs_node_draining", "gauge", "1 while the node is drained.");
	sb_printf(out, "sgnfs_node_draining{node=\"%s\"} %d\n", n, d->node.draining ? 1 : 0);
	mt_family(out, "sgnfs_node_rpc_calls_total", "counter",
		  "RPC calls received by the node, every group and outcome together.");
	sb_printf(out, "sgnfs_node_rpc_calls_total{node=\"%s\"} %" PRIu64 "\n", n, calls);
	mt_family(out, "sgnfs_node_connections", "gauge", "TCP connections open on the node.");
	sb_printf(out, "sgnfs_node_connections{node=\"%s\"} %" PRIu64 "\n", n, conns);
	{
		struct rpc_drc_stats ds;
		uint64_t refused, evicted;

		rpc_svc_limit_stats(d->node.svc, &refused, &evicted);
		rpc_svc_drc_stats(d->node.svc, &ds);
		mt_family(out, "sgnfs_log_dropped_total", "counter",
			  "Log lines dropped because syslog's or the journal's reader was behind.");
		sb_printf(out, "sgnfs_log_dropped_total{node=\"%s\"} %lu\n", n, log_dropped());
		mt_family(out, "sgnfs_log_queued", "gauge",
			  "Log lines waiting for syslog's or the journal's reader.");
		sb_printf(out, "sgnfs_log_queued{node=\"%s\"} %u\n", n, log_queued());
		mt_family(out, "sgnfs_systemd_notify_dropped_total", "counter",
			  "systemd notifications dropped because the receiver at NOTIFY_SOCKET was not reading.");
		sb_printf(out, "sgnfs_systemd_notify_dropped_total{node=\"%s\"} %lu\n", n,
			  sdn_dropped());
		mt_family(out, "sgnfs_loop_spin_hits_total", "counter",
			  "Busy polls of the event loop (poll_spin_us) that saw a client's input before they ran out.");
		sb_printf(out, "sgnfs_loop_spin_hits_total{node=\"%s\"} %" PRIu64 "\n", n,
			  d->spin.hits);
		mt_family(out, "sgnfs_loop_spin_misses_total", "counter",
			  "Busy polls of the event loop (poll_spin_us) that ran out, after which the loop slept.");
		sb_printf(out, "sgnfs_loop_spin_misses_total{node=\"%s\"} %" PRIu64 "\n", n,
			  d->spin.misses);
		mt_family(out, "sgnfs_node_udp_dropped_total", "counter",
			  "UDP requests dropped because their group's queue was full or their source address had max_queued_per_host requests waiting.");
		sb_printf(out, "sgnfs_node_udp_dropped_total{node=\"%s\"} %" PRIu64 "\n", n,
			  rpc_svc_udp_dropped(d->node.svc));
		mt_family(out, "sgnfs_node_udp_dropped_host_total", "counter",
			  "Of sgnfs_node_udp_dropped_total, UDP requests dropped because their source address had max_queued_per_host requests waiting.");
		sb_printf(out, "sgnfs_node_udp_dropped_host_total{node=\"%s\"} %" PRIu64 "\n", n,
			  rpc_svc_udp_dropped_host(d->node.svc));
		mt_family(out, "sgnfs_node_connections_refused_total", "counter",
			  "TCP connections refused by max_conns or max_conns_per_host.");
		sb_printf(out, "sgnfs_node_connections_refused_total{node=\"%s\"} %" PRIu64 "\n",
			  n, refused);
		mt_family(out, "sgnfs_node_connections_evicted_total", "counter",
			  "Idle or partial-record TCP connections closed to make room.");
		sb_printf(out, "sgnfs_node_connections_evicted_total{node=\"%s\"} %" PRIu64 "\n",
			  n, evicted);
		{
			uint64_t held, sh, sn;

			rpc_svc_budget_stats(d->node.svc, &held, &sh, &sn);
			mt_family(out, "sgnfs_node_inflight_bytes", "gauge",
				  "Bytes TCP calls in flight and their queued replies hold.");
			sb_printf(out, "sgnfs_node_inflight_bytes{node=\"%s\"} %" PRIu64 "\n", n,
				  held);
			mt_family(out, "sgnfs_node_inflight_stops_total", "counter",
				  "Connections stopped reading at max_inflight_mb_per_host (bound=\"host\") or max_inflight_mb (bound=\"node\").");
			sb_printf(out, "sgnfs_node_inflight_stops_total{node=\"%s\",bound=\"host\"} %" PRIu64 "\n",
				  n, sh);
			sb_printf(out, "sgnfs_node_inflight_stops_total{node=\"%s\",bound=\"node\"} %" PRIu64 "\n",
				  n, sn);
		}
		mt_family(out, "sgnfs_drc_entries", "gauge",
			  "Replies in the duplicate-request cache (calls in progress included).");
		sb_printf(out, "sgnfs_drc_entries{node=\"%s\"} %u\n", n, ds.entries);
		mt_family(out, "sgnfs_drc_evictions_total", "counter",
			  "Cached replies evicted to make room (a host at its share evicts its own).");
		sb_printf(out, "sgnfs_drc_evictions_total{node=\"%s\"} %" PRIu64 "\n", n,
			  ds.evictions);
		mt_family(out, "sgnfs_drc_expired_total", "counter",
			  "Cached replies dropped after drc_ttl.");
		sb_printf(out, "sgnfs_drc_expired_total{node=\"%s\"} %" PRIu64 "\n", n, ds.expired);
		mt_family(out, "sgnfs_drc_uncached_total", "counter",
			  "Non-idempotent calls executed without a cache entry (no room: every "
			  "entry of the host or node in progress).");
		sb_printf(out, "sgnfs_drc_uncached_total{node=\"%s\"} %" PRIu64 "\n", n, ds.nocache);
	}
	{
		struct nst_stats ns;

		nst_get_stats(&ns);
		mt_family(out, "sgnfs_status_jobs", "gauge",
			  "Node status documents being written on the thread pool now "
			  "(queued or running).");
		sb_printf(out, "sgnfs_status_jobs{node=\"%s\"} %" PRIu64 "\n", n, ns.running);
		mt_family(out, "sgnfs_status_jobs_total", "counter",
			  "Node status documents handed to the thread pool since start.");
		sb_printf(out, "sgnfs_status_jobs_total{node=\"%s\"} %" PRIu64 "\n", n, ns.total);
	}
	mt_family(out, "sgnfs_config_reloads_total", "counter",
		  "Reloads of the configuration, by result.");
	sb_printf(out, "sgnfs_config_reloads_total{node=\"%s\",result=\"applied\"} %" PRIu64 "\n"
		  "sgnfs_config_reloads_total{node=\"%s\",result=\"refused\"} %" PRIu64 "\n",
		  n, d->reloads, n, d->reload_refusals);
	if (d->peer) {
		struct peer_stats ps;

		peer_server_stats(d->peer, &ps);
		mt_family(out, "sgnfs_peer_requests_total", "counter",
			  "Peer status requests on the node address, by outcome.");
		sb_printf(out, "sgnfs_peer_requests_total{node=\"%s\",result=\"answered\"} %" PRIu64
			  "\nsgnfs_peer_requests_total{node=\"%s\",result=\"refused\"} %" PRIu64
			  "\nsgnfs_peer_requests_total{node=\"%s\",result=\"limited\"} %" PRIu64 "\n",
			  n, ps.answered, n, ps.refused, n, ps.limited);
	}
	grp_node_metrics(&d->node, out);
}

/* Control socket requests (see ctlsock.h for the protocol). */
static void sgnfsd_ctl(void *arg, int argc, char **argv, struct json_object *out)
{
	struct sgnfsd *d = arg;

	switch (ctl_req_find(argc, argv)) {
	case CTL_REQ_STATUS:
		sgnfsd_ctl_status(d, out);
		return;
	case CTL_REQ_METRICS: {
		struct sbuf m = { 0 };

		sgnfsd_metrics(d, &m);
		if (m.oom)
			sj_add(out, "error", json_object_new_string("out of memory"));
		else
			sj_add(out, "text", json_object_new_string_len(m.s ? m.s : "", (int)m.len));
		sb_free(&m);
		return;
	}
	case CTL_REQ_RELOAD:
		sgnfsd_reload(d, "sgnfsctl reload", out);
		return;
	case CTL_REQ_LOG_LEVEL: {
		enum log_level old = log_get_level(), lvl;

		if (log_level_parse(argv[1], &lvl) < 0) {
			sj_add(out, "error", json_object_new_string(
				"expected error, warn, info or debug"));
			return;
		}
		log_set_level(lvl);
		log_msg(LOGL_INFO > lvl ? lvl : LOGL_INFO, "node %s log level %s -> %s (sgnfsctl)",
			d->node.me->name, log_level_name(old), log_level_name(lvl));
		sj_add(out, "log_level", json_object_new_string(log_level_name(lvl)));
		sj_add(out, "was", json_object_new_string(log_level_name(old)));
		return;
	}
	case CTL_REQ_MOVE:
		grp_node_move(&d->node, argv[1], argv[2], out);
		return;
	case CTL_REQ_DRAIN:
	case CTL_REQ_UNDRAIN:
		grp_node_drain(&d->node, ctl_req_find(argc, argv) == CTL_REQ_DRAIN, out);
		return;
	case CTL_REQ_START:
	case CTL_REQ_STOP:
	case CTL_REQ_GROUP:
		grp_node_ctl_group(&d->node, argv[0], argv[1], out);
		return;
	default:
		sj_add(out, "error", json_object_new_string("unknown request"));
	}
}

/*
 * With use_rpcbind, what this process registered with the host's rpcbind
 * (prog, vers), so that a clean stop removes exactly that and nothing of
 * another daemon's (rpc.statd's NSM registration above all).
 */
static struct { uint32_t prog, vers; } sgnfsd_pmap_mine[16];
static size_t sgnfsd_pmap_nmine;

/*
 * Register (@prog, @vers) on @port for TCP and UDP with the host's rpcbind.
 * Someone else's registration on another port is left alone: for NSM that
 * is the host's rpc.statd (warn: SM_NOTIFY from a rebooted client that asks
 * rpcbind reaches it, while ours still answers on nsm_port of every VIP);
 * for the others it is a real conflict (a kernel nfsd or lockd): refuse.
 * A registration on our own port is a leftover of an sgnfsd that did not
 * stop cleanly: replaced.  0 or -errno.
 */
static int sgnfsd_pmap_register(struct pmaplist *maps, uint32_t prog, uint32_t vers,
				uint16_t port)
{
	/* Any version of the program on another port belongs to someone else
	 * (rpcbind's table, read once by the caller: pmap_getport() leaks in
	 * libtirpc). */
	for (int t = 0; t < 2; t++) {
		int prot = t ? IPPROTO_UDP : IPPROTO_TCP;
		u_short have = 0;

		for (struct pmaplist *m = maps; m; m = m->pml_next)
			if (m->pml_map.pm_prog == prog && m->pml_map.pm_prot == (u_long)prot &&
			    m->pml_map.pm_port != port)
				have = (u_short)m->pml_map.pm_port;
		if (!have)
			continue;
		if (prog == NSM_PROG) {
			log_warn("rpcbind: NSM (100024 %s) belongs to port %u (the host's rpc.statd): "
				 "left to it; sgnfsd answers NSM on port %u of each VIP",
				 t ? "udp" : "tcp", have, port);
			return 0;
		}
		log_err("rpcbind: program %u %s is registered on port %u by another service "
			"(a kernel nfsd or lockd?); sgnfsd needs it on port %u", prog,
			t ? "udp" : "tcp", have, port);
		return -EADDRINUSE;
	}
	/* Ours (same port) from a node that did not stop cleanly: start from
	 * a clean entry for this version. */
	for (struct pmaplist *m = maps; m; m = m->pml_next) {
		if (m->pml_map.pm_prog == prog && m->pml_map.pm_vers == vers) {
			pmap_unset(prog, vers);
			break;
		}
	}
	for (int t = 0; t < 2; t++) {
		int prot = t ? IPPROTO_UDP : IPPROTO_TCP;

		if (!pmap_set(prog, vers, prot, port)) {
			log_err("rpcbind: cannot register program %u v%u %s (is rpcbind running?)",
				prog, vers, t ? "udp" : "tcp");
			pmap_unset(prog, vers);
			return -ECONNREFUSED;
		}
	}
	if (sgnfsd_pmap_nmine < sizeof(sgnfsd_pmap_mine) / sizeof(sgnfsd_pmap_mine[0])) {
		sgnfsd_pmap_mine[sgnfsd_pmap_nmine].prog = prog;
		sgnfsd_pmap_mine[sgnfsd_pmap_nmine].vers = vers;
		sgnfsd_pmap_nmine++;
	}
	return 0;
}

/* Remove what sgnfsd_pmap_register() put in rpcbind. */
static void sgnfsd_pmap_unregister(void)
{
	for (size_t i = 0; i < sgnfsd_pmap_nmine; i++)
		pmap_unset(sgnfsd_pmap_mine[i].prog, sgnfsd_pmap_mine[i].vers);
	sgnfsd_pmap_nmine = 0;
}

/* The port table every VIP answers with (or that goes to a system rpcbind). */
static int sgnfsd_register_ports(const struct cfg_cluster *c)
{
	static const struct { uint32_t prog, vlo, vhi; int which; } progs[] = {
		{ NFS3_PROGRAM, NFS_V3, NFS_V3, 0 },
		{ MNT3_PROGRAM, 1, MNT3_V3, 1 },
		{ NLM_PROG, NLM_VERS, NLM4_VERS, 2 }, /* version 2 is not offered */
		{ NSM_PROG, NSM_VERS, NSM_VERS, 3 },
	};
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct pmaplist *maps = c->use_rpcbind ? pmap_getmaps(&lo) : NULL;
	int rc;

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		uint16_t port = progs[i].which == 0 ? c->nfs_port
			      : progs[i].which == 1 ? c->mount_port
			      : progs[i].which == 2 ? c->nlm_port : c->nsm_port;
		for (uint32_t v = progs[i].vlo; v <= progs[i].vhi; v++) {
			if (progs[i].prog == NLM_PROG && v == 2)
				continue;
			if (c->use_rpcbind) {
				rc = sgnfsd_pmap_register(maps, progs[i].prog, v, port);
				if (rc < 0) {
					sgnfsd_pmap_unregister();
					xdr_free((xdrproc_t)xdr_pmaplist, (char *)&maps);
					return rc;
				}
				continue;
			}
			for (int t = 0; t < 2; t++) {
				uint32_t prot = t ? IPPROTO_UDP : IPPROTO_TCP;
				if (pmap_table_set(progs[i].prog, v, prot, port) < 0)
					return -ENOSPC;
			}
		}
	}
	xdr_free((xdrproc_t)xdr_pmaplist, (char *)&maps);
	if (!c->use_rpcbind) {
		pmap_table_set(SG_PMAP_PROG, SG_PMAP_VERS, IPPROTO_TCP, c->pmap_port);
		pmap_table_set(SG_PMAP_PROG, SG_PMAP_VERS, IPPROTO_UDP, c->pmap_port);
	}
	return 0;
}

static const struct option sgnfsd_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "node", required_argument, NULL, 'n' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "check", no_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/*
 * Make room for the limits: every connection is a descriptor, and a node
 * out of descriptors refuses everyone (accept fails) long before max_conns.
 * Room for max_conns plus SGNFSD_FD_RESERVE of our own (listeners, state
 * files, the thread pool's I/O, callbacks).  Done while still privileged
 * (raising the hard limit needs CAP_SYS_RESOURCE); a shortfall is logged.
 */
#define SGNFSD_FD_RESERVE 1024u
static void sgnfsd_raise_nofile(const struct cfg_cluster *cfg)
{
	/* + the open-handle cache (nfs/ohc.h), which holds up to open_handles. */
	rlim_t want = (rlim_t)cfg->max_conns + cfg->open_handles + SGNFSD_FD_RESERVE;
	struct rlimit rl, nl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		nl.rlim_cur = want;
		nl.rlim_max = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nl) < 0 && rl.rlim_max != RLIM_INFINITY) {
			/* Not allowed to raise the hard limit: take all of it. */
			nl.rlim_cur = rl.rlim_max;
			nl.rlim_max = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &nl);
		}
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("RLIMIT_NOFILE is %llu, below the %llu that max_conns = %u needs: connections past the descriptor limit will be refused",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)want, cfg->max_conns);
	else
		log_debug("RLIMIT_NOFILE %llu (max_conns %u + %u)",
			  (unsigned long long)rl.rlim_cur, cfg->max_conns, SGNFSD_FD_RESERVE);
}

static void sgnfsd_noop_work(uv_work_t *w)
{
	(void)w;
}

static void *sgnfsd_uv_pool_thread(void *arg)
{
	uv_loop_t l;
	uv_work_t w;

	(void)arg;
	(void)thp_leave_loop();
	if (uv_loop_init(&l) != 0)
		return NULL;
	if (uv_queue_work(&l, &w, sgnfsd_noop_work, NULL) == 0)
		uv_run(&l, UV_RUN_DEFAULT);
	(void)uv_loop_close(&l);
	return NULL;
}

/*
 * libuv makes its pool's threads at the first uv_queue_work, from the
 * thread that calls it, and they inherit that thread's scheduling policy
 * and capabilities.  Queued from a short-lived thread that left the
 * loop's real-time policy (common/thprio.h, thp_realtime), after the
 * capabilities were dropped (common/priv.h): the pool starts at normal
 * priority with the reduced set, whichever thread queues work first.
 */
static void sgnfsd_uv_pool_start(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, sgnfsd_uv_pool_thread, NULL) == 0)
		(void)pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
	struct sgnfsd d;
	const char *cfgpath = NULL, *nodename = NULL;
	bool check = false, foreground = false, debug = false;
	bool loop_rt = false;  /* the loop thread runs SCHED_FIFO */
	struct rpc_limits lim;
	enum log_level lvl = LOGL_INFO;
	pid_t holder;
	int opt, rc, exit_code = SGNFSD_EXIT_START;

	memset(&d, 0, sizeof(d));
	d.pid.fd = -1;
	while ((opt = getopt_long(argc, argv, "c:n:ftdhV", sgnfsd_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfgpath = optarg; break;
		case 'n': nodename = optarg; break;
		case 'f': foreground = true; break;
		case 't': check = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return SGNFSD_EXIT_OK;
		case 'V': printf("sgnfsd %s\n", SGNFS_VERSION); return SGNFSD_EXIT_OK;
		default: usage(stderr); return SGNFSD_EXIT_USAGE;
		}
	}
	if (!cfgpath || (!check && !nodename) || optind != argc) {
		usage(stderr);
		return SGNFSD_EXIT_USAGE;
	}
	rc = cfg_load(cfgpath, stderr, &d.cfg);
	if (rc < 0) {
		if (rc != -EINVAL)
			fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
		return SGNFSD_EXIT_CONFIG;
	}
	if (check) {
		/* What the file says is consistent; now what this machine has:
		 * the handle key, the export directories, nesting on disk. */
		rc = cfg_check_host(d.cfg, stderr);
		if (rc == 0) {
			char why[160];

			/* The filter must build with this machine's libseccomp. */
			if (sbx_apply(d.cfg->seccomp, 0, why, sizeof(why)) < 0) {
				fprintf(stderr, "%s: [cluster] seccomp = %s: %s\n", cfgpath,
					sbx_mode_name(d.cfg->seccomp), why);
				rc = 1;
			}
		}
		if (rc != 0) {
			if (rc < 0)
				fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
			cfg_free(d.cfg);
			return 1;
		}
		printf("%s: OK (%zu nodes, %zu groups, %zu exports)\n", cfgpath,
		       d.cfg->nnodes, d.cfg->ngroups, d.cfg->nexports);
		cfg_free(d.cfg);
		return SGNFSD_EXIT_OK;
	}
	d.node.me = cfg_node_find(d.cfg, nodename);
	if (!d.node.me) {
		fprintf(stderr, "%s: no [node %s] in the file\n", cfgpath, nodename);
		exit_code = SGNFSD_EXIT_CONFIG;
		goto out_cfg;
	}
	/* Before anything of the node's is touched (socket, leases): one
	 * process per node. */
	rc = pidf_acquire(&d.pid, d.cfg->run_dir, d.node.me->name, &holder);
	if (rc == -EEXIST) {
		fprintf(stderr, "sgnfsd: node %s is already running (pid %ld holds %s/%s.pid)\n",
			d.node.me->name, (long)holder, d.cfg->run_dir, d.node.me->name);
		exit_code = SGNFSD_EXIT_RUNNING;
		goto out_cfg;
	}
	if (rc < 0) {
		fprintf(stderr, "sgnfsd: pid file %s/%s.pid: %s\n", d.cfg->run_dir,
			d.node.me->name, strerror(-rc));
		goto out_cfg;
	}
	if (d.cfg->log_level)
		log_level_parse(d.cfg->log_level, &lvl);
	if (debug)
		lvl = LOGL_DEBUG;
	/* No key, no handles: refuse to start rather than hand out handles
	 * that anyone could forge or that would not survive a failover. */
	if (!d.cfg->handle_key) {
		fprintf(stderr, "%s: [cluster] has no handle_key (create one with `sgnfsctl keygen "
			"FILE`, the same file on every node); not starting\n", cfgpath);
		exit_code = SGNFSD_EXIT_CONFIG;
		goto out_pid;
	}
	if (fh_keys_load(d.cfg->handle_key) < 0) {
		exit_code = SGNFSD_EXIT_CONFIG;
		goto out_pid;
	}
	/* Where logs go is settled before daemon(3), so a target that does
	 * not work can still be reported where the operator is looking, and
	 * so the daemon keeps stderr when that is where its lines go. */
	{
		char why[512];
		rc = log_open("sgnfsd", d.node.me->name, lvl, d.cfg->log, foreground, why,
			      sizeof(why));
		if (rc < 0)
			fprintf(stderr, "sgnfsd: %s; logging to stderr instead\n", why);
		if (!foreground && daemon(0, log_get_target() == LOGT_STDERR) < 0) {
			fprintf(stderr, "daemon: %s\n", strerror(errno));
			goto out_pid;
		}
		if (!foreground && log_get_target() == LOGT_STDERR) {
			int fd = open("/dev/null", O_RDWR);
			if (fd >= 0) {
				dup2(fd, STDIN_FILENO);
				dup2(fd, STDOUT_FILENO);
				if (fd > STDERR_FILENO)
					close(fd);
			}
		}
		if (rc < 0)
			log_warn("%s; logging to stderr instead", why);
	}
	signal(SIGPIPE, SIG_IGN);
	/* A reload asked for before the loop watches SIGHUP must not kill the
	 * node (the default action); the loop's watcher replaces this. */
	signal(SIGHUP, SIG_IGN);
	if (pidf_write(&d.pid) < 0)
		log_warn("cannot write pid file %s", d.pid.path);
	if (getenv("NOTIFY_SOCKET") && !sdn_available())
		log_warn("NOTIFY_SOCKET is set but sgnfsd was built without libsystemd: "
			 "systemd will not hear that the node is ready");

	sgnfsd_raise_nofile(d.cfg);
	/* This thread will run the event loop.  Its real-time priority is the
	 * one step that needs CAP_SYS_NICE, so it is taken now, before that is
	 * dropped; of the threads created later only the journal's io_uring
	 * workers keep it (common/thprio.h). */
	thp_init();
	if (d.cfg->loop_realtime) {
		rc = thp_realtime();
		if (rc < 0)
			log_warn("node %s: loop_priority = realtime, but SCHED_FIFO was refused (%s): the event loop runs at normal priority",
				 d.node.me->name, strerror(-rc));
		else
			log_info("node %s: event loop runs SCHED_FIFO priority %d (loop_priority = realtime)",
				 d.node.me->name, THP_LOOP_RT_PRIO);
		loop_rt = rc == 0;
	}
	/* Pinned here, before it makes a thread: each thread sgnfsd makes
	 * leaves this CPU as it starts (common/thprio.h, thp_pin_loop). */
	if (d.cfg->loop_cpu >= 0) {
		rc = thp_pin_loop(d.cfg->loop_cpu);
		if (rc == 0)
			log_info("node %s: event loop pinned to CPU %d (loop_cpu); the node's other "
				 "threads run on its other CPUs", d.node.me->name, d.cfg->loop_cpu);
		else if (rc == 1)
			log_warn("node %s: loop_cpu = %d, but the node may use one CPU only: the loop "
				 "is not pinned", d.node.me->name, d.cfg->loop_cpu);
		else
			log_warn("node %s: loop_cpu = %d: %s: the loop is not pinned", d.node.me->name,
				 d.cfg->loop_cpu, rc == -EINVAL ? "not a CPU this node may use"
								: strerror(-rc));
	}
	/* Capabilities are per thread: drop them before the loop, the pool
	 * and the watchdog create any, so every thread starts reduced
	 * (common/priv.h says what stays and why). */
	{
		char why[160];

		rc = priv_drop(cfg_manages_vips(d.cfg), why, sizeof(why));
		if (rc < 0) {
			log_err("node %s cannot drop privileges: %s; not starting",
				d.node.me->name, why);
			goto out_pid;
		}
	}
	/* Syslog's or the journal's reader may fall behind; the lines that
	 * must wait for it wait on this thread, never on the loop (log.c). */
	rc = log_start_writer();
	if (rc < 0)
		log_warn("node %s: log writer thread not started (%s): lines for a reader that is "
			 "behind wait until exit", d.node.me->name, strerror(-rc));
	/* libuv's pool is only the fallback of state I/O (common/wq.h: a
	 * loop without a channel of its own, or no state thread started).
	 * Made now, with the capabilities dropped and from a thread that left
	 * the loop's real-time policy and CPU: libuv's threads are not
	 * sgnfsd's and do not leave them themselves (a normal, unpinned loop
	 * makes it at its first use, as it always did). */
	if (loop_rt || thp_loop_cpu() >= 0)
		sgnfsd_uv_pool_start();
	d.loop = uv_default_loop();
	/* State I/O comes back through a channel of the loop's own, never
	 * through libuv's async handle (common/wq.h says why). */
	rc = wq_attach(d.loop);
	if (rc < 0)
		log_warn("state I/O completions go through libuv's pool: %s (the loop may wait for its threads)",
			 strerror(-rc));
	/* Before any group opens its journal. */
	jr_set_io(d.cfg->journal_io_thread ? JR_IO_THREAD : JR_IO_URING);
	_Static_assert(CFG_JOURNAL_INFLIGHT_MAX == JR_INFLIGHT_MAX, "journal_inflight's range");
	jr_set_inflight(d.cfg->journal_inflight);
	jr_set_gather(d.cfg->journal_gather);
	/*
	 * Before anything a supervisor can see (ports, control socket, the
	 * "running" line): a SIGTERM sent as soon as the node shows it is up
	 * must stop it cleanly, not kill it with the default action.  A signal
	 * that arrives before uv_run() waits in libuv until the loop runs.
	 */
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, sgnfsd_on_signal, SIGTERM);
	uv_signal_start(&d.sigint, sgnfsd_on_signal, SIGINT);
	uv_signal_start(&d.sighup, sgnfsd_on_sighup, SIGHUP);
	/* Designated: a limit added to struct rpc_limits and not set here is
	 * 0 (its documented "no bound" or default), never stack garbage. */
	lim = (struct rpc_limits){
		.max_record = d.cfg->max_record,
		.max_conns = d.cfg->max_conns,
		.max_conns_per_host = d.cfg->max_conns_per_host,
		.max_held_bytes = (uint64_t)d.cfg->max_inflight_mb << 20,
		.max_held_bytes_per_host = (uint64_t)d.cfg->max_inflight_mb_per_host << 20,
		.max_queued_per_ctx = d.cfg->max_queued_per_group,
		.max_queued_per_host = d.cfg->max_queued_per_host,
		.idle_timeout_ms = d.cfg->idle_timeout_s * 1000u,
		.drc_entries = d.cfg->drc_entries,
		.drc_entries_per_host = d.cfg->drc_entries_per_host,
		.drc_ttl_ms = d.cfg->drc_ttl_s * 1000u,
	};
	rc = rpc_svc_new(d.loop, &lim, &d.node.svc);
	if (rc < 0)
		goto out_pid;
	/* Without a real-time priority the loop asks for the shortest time
	 * slice, so a request preempts pool and background work on arrival
	 * (common/thprio.h).  Kernels before 6.12 have no such request. */
	rc = loop_rt ? 0 : thp_short_slice();
	if (rc < 0)
		log_info("event loop: the kernel takes no time-slice request (%s); requests may wait for a running pool thread's slice",
			 strerror(-rc));
	d.node.loop = d.loop;
	d.node.cfg = d.cfg;
	if (rpc_svc_register(d.node.svc, &pmap_prog) < 0 ||
	    rpc_svc_register(d.node.svc, &mount_prog) < 0 ||
	    rpc_svc_register(d.node.svc, &nfs3_prog) < 0 ||
	    rpc_svc_register(d.node.svc, &nlm_prog) < 0 ||
	    rpc_svc_register(d.node.svc, &nsm_prog) < 0)
		goto out_svc;
	if (sgnfsd_register_ports(d.cfg) < 0)
		goto out_svc;
	{
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s.sock", d.cfg->run_dir, d.node.me->name);
		rc = ctl_listen(d.loop, path, sgnfsd_ctl, &d, &d.ctl);
		if (rc < 0) {
			log_err("node %s cannot listen on its control socket %s: %s",
				d.node.me->name, path, strerror(-rc));
			goto out_svc;
		}
	}

	if (sgnfsd_peer_start(&d) < 0)
		goto out_ctl;
	grp_proto_register(GRP_PROTO_NFS, &nfs_group_ops);
	grp_proto_register(GRP_PROTO_NLM, &nlm_group_ops);
	{
		const struct cfg_listen *ml = d.node.me->metrics_listen.set ? &d.node.me->metrics_listen
									   : &d.cfg->metrics_listen;
		if (ml->set) {
			char a[80];
			rc = mh_start(d.loop, (const struct sockaddr *)&ml->addr, sgnfsd_metrics, &d,
				      &d.mh);
			rpc_addr_str(&ml->addr, true, a, sizeof(a));
			if (rc < 0) {
				log_err("node %s cannot serve metrics on %s: %s", d.node.me->name, a,
					strerror(-rc));
				goto out_ctl;
			}
			log_info("node %s serves metrics on http://%s/metrics", d.node.me->name, a);
		}
	}
	rc = grp_node_start(&d.node);
	if (rc < 0)
		goto out_ctl;
	if (wd_start(d.loop, d.cfg->watchdog_ms) < 0)
		log_warn("watchdog not started");
	if (sdn_watchdog_start(d.loop) < 0)
		log_warn("systemd watchdog not started");
	log_info("node %s running (sgnfsd %s, pid %ld): may serve %zu of %zu groups",
		 d.node.me->name, SGNFS_VERSION, (long)getpid(), d.node.nslots, d.cfg->ngroups);

	{
		char st[128];
		snprintf(st, sizeof(st), "node %s: may serve %zu of %zu groups", d.node.me->name,
			 d.node.nslots, d.cfg->ngroups);
		sdn_ready(st);
	}
	/* Last step of the start-up: every thread there is (pool, watchdog)
	 * and every thread still to come gets the system call filter. */
	{
		char why[160];

		rc = sbx_apply(d.cfg->seccomp, 1, why, sizeof(why));
		if (rc < 0) {
			log_err("node %s: %s; not starting ([cluster] seccomp = off runs without it)",
				d.node.me->name, why);
			exit_code = 1;
			goto out_ctl;
		}
		if (d.cfg->seccomp != SBX_OFF)
			log_info("node %s: seccomp filter %s (docs/security.md)", d.node.me->name,
				 d.cfg->seccomp == SBX_ON ? "on" : "in log mode");
	}
	_Static_assert(CFG_POLL_SPIN_MAX_US == SPIN_MAX_US, "poll_spin_us's range");
	spin_init(&d.spin, sgnfsd_spin_us(&d, d.cfg->poll_spin_us), sgnfsd_input_count,
		  d.node.svc);
	if (d.spin.max_ns)
		log_info("node %s: the loop polls up to %u us before it sleeps (poll_spin_us)",
			 d.node.me->name, d.cfg->poll_spin_us);
	spin_run(&d.spin, d.loop);
	exit_code = SGNFSD_EXIT_OK;
	goto out_svc;
out_ctl:
	mh_stop(d.mh);
	d.mh = NULL;
	peer_close(d.peer);
	d.peer = NULL;
	ctl_close(d.ctl);
	d.ctl = NULL;
	uv_run(d.loop, UV_RUN_NOWAIT);
out_svc:
	sgnfsd_pmap_unregister();
	rpc_svc_free(d.node.svc);
	/* The close of the svc's pool channel (rpc.h). */
	uv_run(d.loop, UV_RUN_NOWAIT);
out_pid:
	if (d.loop) {
		/* Every job is back: the groups are closed or never opened. */
		wq_detach(d.loop);
		uv_run(d.loop, UV_RUN_NOWAIT);
	}
	if (d.loop && !uv_is_closing((uv_handle_t *)&d.sigterm)) {
		/* a failed start: the loop never ran, so nothing closed them */
		uv_close((uv_handle_t *)&d.sigterm, NULL);
		uv_close((uv_handle_t *)&d.sigint, NULL);
		uv_close((uv_handle_t *)&d.sighup, NULL);
		uv_run(d.loop, UV_RUN_NOWAIT);
	}
	/* Last: while we hold it, the socket and this file are ours. */
	pidf_release(&d.pid);
out_cfg:
	uv_loop_close(uv_default_loop());
	cfg_free(d.cfg);
	for (size_t i = 0; i < d.nretired; i++)
		cfg_free(d.retired[i]);
	free(d.retired);
	/* STOPPING=1 is queued (sgnfsd_shutdown): up to 2 s for it to leave,
	 * never waiting for a receiver that does not read (sdnotify.h). */
	sdn_close();
	log_close();
	return exit_code;
}
