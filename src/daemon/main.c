/*
 * main.c - sgnfsd, one node of an sgnfs cluster.
 *
 *   sgnfsd -c FILE -n NODE [-f] [-d]   run node NODE
 *   sgnfsd -t -c FILE                  check FILE, print every error, exit
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
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpc/pmap_clnt.h>

#include "cluster/ctlsock.h"
#include "cluster/watchdog.h"
#include "config/config.h"
#include "group/group.h"
#include "log.h"
#include "nfs/fh.h"
#include "nfs/nfs.h"
#include "nlm/nlm_svc.h"
#include "nsm/nsm_svc.h"
#include "rpc/pmap_svc.h"
#include "rpc/rpc.h"

struct sgnfsd {
	uv_loop_t *loop;
	struct cfg_cluster *cfg;              /* owned */
	struct sg_node node;
	uv_signal_t sigterm, sigint;
	struct ctl_server *ctl;               /* owned */
	char pidfile[4096];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgnfsd -c FILE -n NODE [-f] [-d]\n"
		"       sgnfsd -t -c FILE\n"
		"  -c FILE  cluster configuration (INI)\n"
		"  -n NODE  which [node] of FILE this process is\n"
		"  -f       stay in the foreground, log to stderr\n"
		"  -d       debug logging\n"
		"  -t       check FILE: print every error with its line, exit 1 if any\n");
}

static void sgnfsd_shutdown(struct sgnfsd *d, const char *why)
{
	log_info("node %s shutting down (%s)", d->node.me->name, why);
	grp_node_stop(&d->node);
	wd_stop();
	ctl_close(d->ctl);
	d->ctl = NULL;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void sgnfsd_on_signal(uv_signal_t *s, int signum)
{
	sgnfsd_shutdown(s->data, strsignal(signum));
}

/* Control socket requests (see ctlsock.h for the protocol). */
static void sgnfsd_ctl(void *arg, int argc, char **argv, struct sbuf *out)
{
	struct sgnfsd *d = arg;

	if (strcmp(argv[0], "status") == 0) {
		bool text = argc > 1 && strcmp(argv[1], "text") == 0;
		if (!text) {
			sb_printf(out, "{\"node\":");
			sb_json_str(out, d->node.me->name, strlen(d->node.me->name));
			sb_printf(out, ",\"pid\":%ld,\"draining\":%s,\"groups\":[", (long)getpid(),
				  d->node.draining ? "true" : "false");
		}
		grp_node_status(&d->node, out, !text);
		if (!text)
			sb_printf(out, "]}");
		return;
	}
	if (strcmp(argv[0], "move") == 0 && argc == 3) {
		grp_node_move(&d->node, argv[1], argv[2], out);
		return;
	}
	if ((strcmp(argv[0], "drain") == 0 || strcmp(argv[0], "undrain") == 0) && argc == 1) {
		grp_node_drain(&d->node, argv[0][0] == 'd', out);
		return;
	}
	sb_printf(out, "{\"error\":\"unknown request\"}");
}

/* The port table every VIP answers with (or that goes to a system rpcbind). */
static int sgnfsd_register_ports(const struct cfg_cluster *c)
{
	static const struct { uint32_t prog, vlo, vhi; int which; } progs[] = {
		{ 100003, 3, 3, 0 }, /* NFS */
		{ 100005, 1, 3, 1 }, /* MOUNT */
		{ 100021, 1, 4, 2 }, /* NLM (version 2 is not offered) */
		{ 100024, 1, 1, 3 }, /* NSM */
	};
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		uint16_t port = progs[i].which == 0 ? c->nfs_port
			      : progs[i].which == 1 ? c->mount_port
			      : progs[i].which == 2 ? c->nlm_port : c->nsm_port;
		for (uint32_t v = progs[i].vlo; v <= progs[i].vhi; v++) {
			if (progs[i].prog == 100021 && v == 2)
				continue;
			for (int t = 0; t < 2; t++) {
				uint32_t prot = t ? IPPROTO_UDP : IPPROTO_TCP;
				if (c->use_rpcbind) {
					if (!pmap_set(progs[i].prog, v, (int)prot, port)) {
						log_err("cannot register program %u v%u with the system rpcbind",
							progs[i].prog, v);
						return -ECONNREFUSED;
					}
				} else if (pmap_table_set(progs[i].prog, v, prot, port) < 0) {
					return -ENOSPC;
				}
			}
		}
	}
	if (!c->use_rpcbind) {
		pmap_table_set(100000, 2, IPPROTO_TCP, c->pmap_port);
		pmap_table_set(100000, 2, IPPROTO_UDP, c->pmap_port);
	}
	return 0;
}

static int sgnfsd_write_pidfile(struct sgnfsd *d)
{
	char tmp[4200];
	FILE *f;

	if (mkdir(d->cfg->run_dir, 0755) < 0 && errno != EEXIST) {
		log_err("cannot create run_dir %s: %s", d->cfg->run_dir, strerror(errno));
		return -errno;
	}
	snprintf(d->pidfile, sizeof(d->pidfile), "%s/%s.pid", d->cfg->run_dir,
		 d->node.me->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->pidfile);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, d->pidfile) != 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct sgnfsd d;
	const char *cfgpath = NULL, *nodename = NULL;
	bool check = false, foreground = false, debug = false;
	struct rpc_limits lim;
	enum log_level lvl = LOGL_INFO;
	int opt, rc, exit_code = 1;

	memset(&d, 0, sizeof(d));
	while ((opt = getopt(argc, argv, "c:n:ftdh")) != -1) {
		switch (opt) {
		case 'c': cfgpath = optarg; break;
		case 'n': nodename = optarg; break;
		case 'f': foreground = true; break;
		case 't': check = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (!cfgpath || (!check && !nodename) || optind != argc) {
		usage(stderr);
		return 64;
	}
	rc = cfg_load(cfgpath, stderr, &d.cfg);
	if (rc < 0) {
		if (rc != -EINVAL)
			fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
		return 1;
	}
	if (check) {
		/* What the file says is consistent; now what this machine has:
		 * the handle key, the export directories, nesting on disk. */
		rc = cfg_check_host(d.cfg, stderr);
		if (rc != 0) {
			if (rc < 0)
				fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
			cfg_free(d.cfg);
			return 1;
		}
		printf("%s: OK (%zu nodes, %zu groups, %zu exports)\n", cfgpath,
		       d.cfg->nnodes, d.cfg->ngroups, d.cfg->nexports);
		cfg_free(d.cfg);
		return 0;
	}
	d.node.me = cfg_node_find(d.cfg, nodename);
	if (!d.node.me) {
		fprintf(stderr, "%s: no [node %s] in the file\n", cfgpath, nodename);
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
		goto out_cfg;
	}
	if (fh_keys_load(d.cfg->handle_key) < 0)
		goto out_cfg;
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "daemon: %s\n", strerror(errno));
		goto out_cfg;
	}
	log_init("sgnfsd", lvl, !foreground);
	signal(SIGPIPE, SIG_IGN);

	d.loop = uv_default_loop();
	lim.max_record = d.cfg->max_record;
	lim.max_conns = d.cfg->max_conns;
	lim.idle_timeout_ms = d.cfg->idle_timeout_s * 1000u;
	rc = rpc_svc_new(d.loop, &lim, &d.node.svc);
	if (rc < 0)
		goto out_cfg;
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
	if (sgnfsd_write_pidfile(&d) < 0)
		log_warn("cannot write pid file in %s", d.cfg->run_dir);

	rc = grp_node_start(&d.node);
	if (rc < 0)
		goto out_svc;
	if (wd_start(d.loop, d.cfg->watchdog_ms) < 0)
		log_warn("watchdog not started");
	log_info("node %s running: may serve %zu of %zu groups", d.node.me->name,
		 d.node.nslots, d.cfg->ngroups);

	{
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s.sock", d.cfg->run_dir, d.node.me->name);
		rc = ctl_listen(d.loop, path, sgnfsd_ctl, &d, &d.ctl);
		if (rc < 0)
			log_warn("control socket %s: %s", path, strerror(-rc));
	}
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, sgnfsd_on_signal, SIGTERM);
	uv_signal_start(&d.sigint, sgnfsd_on_signal, SIGINT);
	uv_run(d.loop, UV_RUN_DEFAULT);
	exit_code = 0;
	if (d.pidfile[0])
		unlink(d.pidfile);
out_svc:
	rpc_svc_free(d.node.svc);
out_cfg:
	uv_loop_close(uv_default_loop());
	cfg_free(d.cfg);
	return exit_code;
}
