/*
 * sgnfsctl - administer an sgnfs cluster through each node's control socket.
 *
 *   sgnfsctl -c FILE status [--json]   nodes, groups, clients and locks
 *   sgnfsctl -c FILE move GROUP NODE   planned switchover of GROUP to NODE
 *   sgnfsctl -c FILE drain [--no-wait] [--timeout S] NODE
 *                                      move every group off NODE, wait until
 *                                      each is served elsewhere
 *   sgnfsctl -c FILE undrain NODE      NODE may take groups again
 *   sgnfsctl keygen [--rotate] KEYFILE  create (or rotate) the handle key
 *   sgnfsctl -c FILE [-n NODE] ping      does NODE's sgnfsd answer (OCF monitor)
 *   sgnfsctl -c FILE init [--force] GROUP  write GROUP's storage identity
 *   sgnfsctl -c FILE log-level LEVEL [NODE]   change the log level at run time
 *   sgnfsctl -c FILE reload [NODE]     nodes re-read their file (docs/operations.md)
 *   sgnfsctl -c FILE metrics [NODE]    Prometheus text (docs/metrics.md)
 *   sgnfsctl -c FILE [-n NODE] start|stop|status GROUP
 *                                      managed ownership: bring GROUP online
 *                                      on NODE, take it offline, ask its state
 *
 * Every node of the file is asked in turn; a node whose socket does not
 * answer is reported as down.  Groups no node serves are offline, with the
 * reasons the nodes that may serve them give.  Every node answers in JSON
 * (docs/status.md); the tables are built from the parsed answers.
 * Exit codes (docs/status.md): 0 ok, 1 the request failed, 2 a node is
 * down (status), 3 a group is not served (status), 4 nodes run different
 * configuration files (status), 64 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cluster/ctlsock.h"
#include "cluster/peer.h"
#include "cluster/storage.h"
#include "config/config.h"
#include "hkey.h"
#include "log.h"
#include "metrics.h"
#include "saddr.h"
#include "sbuf.h"
#include "sjson.h"
#include "version.h"

/* Exit codes of `sgnfsctl status`, worst first (docs/status.md). */
enum {
	STATUS_ERROR = 1,          /* a node's answer could not be read */
	STATUS_NODE_DOWN = 2,      /* every group served, but a node does not answer */
	STATUS_GROUP_DOWN = 3,     /* a group is offline (or served twice) */
	STATUS_CONFIG_DIFFERS = 4, /* all served, all up, some node runs another file */
};

#define CTL_REPLY_MAX (64u << 20)
#define CTL_WAIT_MS 10000
/* A peer on another machine: each step (connect, hello, reply) waits at
 * most this long, so a dead machine costs `status` seconds, not minutes. */
#define PEER_WAIT_MS 3000
/* start and stop return when the work is done, and a large group takes a
 * while to open; a cluster manager's own operation timeout is the real
 * limit (the OCF agent's start timeout), this one only ends a hung node. */
#define CTL_WAIT_GROUP_MS 600000

/* Exit codes of `sgnfsctl start|stop|status GROUP` (the OCF agent maps
 * them; docs/failover.md). */
enum {
	GROUP_OK = 0,              /* online (start, status), offline (stop) */
	GROUP_FAILED = 1,          /* refused or failed; the reason is on stderr */
	GROUP_USAGE = 2,           /* unknown group or node, no node for this host */
	GROUP_NOT_RUNNING = 7,     /* status: not served by NODE (OCF_NOT_RUNNING) */
};

static char *ctl_ask_wait(const struct cfg_cluster *c, const char *node, const char *req,
			  int wait_ms);

/* Send one request line to @node; the reply (one line, NUL-terminated,
 * caller frees) or NULL with errno set. */
static char *ctl_ask(const struct cfg_cluster *c, const char *node, const char *req)
{
	return ctl_ask_wait(c, node, req, CTL_WAIT_MS);
}

/* ctl_ask, waiting up to @wait_ms for each part of the answer. */
static char *ctl_ask_wait(const struct cfg_cluster *c, const char *node, const char *req,
			  int wait_ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sbuf out = { 0 };
	char buf[65536];
	int fd, n;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s.sock",
			     c->run_dir, node) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto err;
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) || write(fd, "\n", 1) != 1)
		goto err;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, wait_ms) <= 0) {
			errno = ETIMEDOUT;
			goto err;
		}
		n = (int)read(fd, buf, sizeof(buf));
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		sb_append(&out, buf, (size_t)n);
		if (out.len > CTL_REPLY_MAX) {
			errno = EMSGSIZE;
			goto err;
		}
	}
	close(fd);
	if (out.len && out.s[out.len - 1] == '\n')
		out.s[--out.len] = '\0';
	return sb_take(&out);
err:
	n = errno;
	close(fd);
	sb_free(&out);
	errno = n;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgnfsctl -c FILE status [--json]\n"
		"       sgnfsctl -c FILE move GROUP NODE\n"
		"       sgnfsctl -c FILE drain [--no-wait] [--timeout S] NODE\n"
		"       sgnfsctl -c FILE undrain NODE\n"
		"       sgnfsctl -c FILE log-level error|warn|info|debug [NODE]\n"
		"       sgnfsctl -c FILE reload [NODE]\n"
		"       sgnfsctl -c FILE metrics [NODE]\n"
		"       sgnfsctl -c FILE [-n NODE] start|stop|status GROUP\n"
		"       sgnfsctl -c FILE [-n NODE] ping\n"
		"       sgnfsctl -c FILE init [--force] GROUP\n"
		"       sgnfsctl keygen [--rotate] KEYFILE\n"
		"status exits 0 when every node answers and every group is served\n"
		"(online or in grace), 3 while a group is not served, 2 while a node\n"
		"does not answer, 4 when nodes run different configuration files,\n"
		"1 on errors; 64: usage.\n"
		"start|stop|status GROUP act on NODE (default: the [node] named like\n"
		"`uname -n`); they exit 0 when GROUP is online there (start, status) or\n"
		"offline there (stop), 7 when it is not served there (status), 1 when\n"
		"refused or failed (the reason on stderr), 2 on a usage or config error.\n"
		"drain waits until each group NODE gave up is served by another node\n"
		"(at most S seconds, default 120): 0 when all are, 3 when one is not\n"
		"(the reason on stderr), 1 when NODE refused or did not answer.\n"
		"ping exits 0 when NODE's sgnfsd answers, 7 when it does not run, 1\n"
		"when it does not answer.\n"
		"init writes GROUP's storage identity (run it where the storage is\n"
		"mounted; no node serves a group whose storage lacks it); 0 also when\n"
		"already initialised, 1 when the storage is another group's or another\n"
		"filesystem's (--force replaces it).\n");
}

/* ---- status ------------------------------------------------------------- */

/* The peer status key, read once (cluster/peer.h): rc 0, or -errno and why. */
static struct {
	bool tried;
	int rc;
	struct hk_set ks;
	char why[300];
} peer_key;

static const struct hk_set *peer_keys(const struct cfg_cluster *c, const char **why)
{
	const char *path = cfg_peer_key_path(c);

	if (!peer_key.tried) {
		char w[200];

		peer_key.tried = true;
		peer_key.rc = path ? hk_load(path, &peer_key.ks, w, sizeof(w)) : -ENOENT;
		if (peer_key.rc < 0)
			snprintf(peer_key.why, sizeof(peer_key.why), "peer key %s: %s",
				 path ? path : "(none)", path ? w : "no peer_key or handle_key");
	}
	*why = peer_key.why;
	return peer_key.rc == 0 ? &peer_key.ks : NULL;
}

/*
 * The node status of @n (JSON text, caller frees): through its control
 * socket when this machine has it, else, if @n has an address, through
 * its peer port (another machine).  @via is set to "socket" or "peer".
 * NULL with @why (both ways' errors) when neither answers.
 */
static char *status_ask(const struct cfg_cluster *c, const struct cfg_node *n,
			const char **via, char *why, size_t whylen)
{
	struct sockaddr_storage sa;
	const struct hk_set *ks;
	const char *kwhy;
	char *r = ctl_ask(c, n->name, ctl_reqs[CTL_REQ_STATUS].name), *json = NULL;
	char a[64], pwhy[256], me[PEER_NAME_LEN], host[PEER_NAME_LEN - 16] = "?";
	int e = errno, rc;

	*via = "socket";
	if (r)
		return r;
	if (!cfg_node_peer_addr(c, n, &sa)) {
		snprintf(why, whylen, "%s", strerror(e));
		return NULL;
	}
	sa_str(&sa, true, a, sizeof(a));
	ks = peer_keys(c, &kwhy);
	if (!ks) {
		snprintf(why, whylen, "control socket: %s; peer %s: not asked: %s", strerror(e), a,
			 kwhy);
		return NULL;
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(me, sizeof(me), "sgnfsctl@%s", host);
	rc = peer_ask(&sa, ks, me, PEER_WAIT_MS, &json, pwhy, sizeof(pwhy));
	if (rc < 0) {
		snprintf(why, whylen, "control socket: %s; peer %s: %s", strerror(e), a, pwhy);
		return NULL;
	}
	*via = "peer";
	return json;
}

/* Member @key of object @o, or NULL. */
static struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* String member @key of @o, or @dflt.  Printable only: a node's answer can
 * carry client names off the wire, and a terminal is no place for their
 * control bytes. */
static const char *jstr(struct json_object *o, const char *key, const char *dflt,
			char *buf, size_t bufsz)
{
	struct json_object *v = jget(o, key);
	const char *s;

	if (!v || json_object_is_type(v, json_type_null))
		return dflt;
	s = json_object_get_string(v);
	return log_safe(buf, bufsz, s, strlen(s));
}

static int64_t jint(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v = jget(o, key);

	return v && (json_object_is_type(v, json_type_int) ||
		     json_object_is_type(v, json_type_double))
	       ? json_object_get_int64(v) : dflt;
}

static bool jbool(struct json_object *o, const char *key)
{
	struct json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static size_t jlen(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

/* Parse one node's answer: an object, or NULL (caller frees with
 * json_object_put). */
static struct json_object *parse_reply(const char *node, const char *r)
{
	struct json_object *o;
	enum json_tokener_error err;

	o = json_tokener_parse_verbose(r, &err);
	if (!o || !json_object_is_type(o, json_type_object)) {
		fprintf(stderr, "sgnfsctl: node %s: the answer is not a JSON object (%s)\n", node,
			o ? "other type" : json_tokener_error_desc(err));
		json_object_put(o);
		return NULL;
	}
	return o;
}

/*
 * Ask every node for its status and put the cluster together (the schema
 * is docs/status.md):
 *   {"schema", "cluster", "config": {path, sha256},
 *    "nodes": [{name, up, error?, config_matches?, status}],
 *    "groups": [{name, state, owner, owners, grace_left, reason}]}
 * Returns the document (caller puts it) and *code, the exit code of
 * `sgnfsctl status` (see usage()).
 */
static struct json_object *status_collect(const struct cfg_cluster *c, int *code)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *nodes = json_object_new_array();
	struct json_object *groups = json_object_new_array();
	struct json_object *cfg = json_object_new_object();
	bool node_down = false, group_bad = false, cfg_differs = false, broken = false;

	if (!doc || !nodes || !groups || !cfg) {
		json_object_put(doc);
		json_object_put(nodes);
		json_object_put(groups);
		json_object_put(cfg);
		*code = 1;
		return NULL;
	}
	sj_add(doc, "schema", json_object_new_int(SGNFS_STATUS_SCHEMA));
	sj_add(doc, "cluster", json_object_new_string(c->name));
	sj_add(cfg, "path", json_object_new_string(c->path));
	sj_add(cfg, "sha256", json_object_new_string(c->sha256));
	sj_add(doc, "config", cfg);
	for (size_t i = 0; i < c->nnodes; i++) {
		struct json_object *n = json_object_new_object();
		struct json_object *st = NULL;
		struct sockaddr_storage sa;
		const char *via;
		char why[700], a[64];
		char *r = status_ask(c, &c->nodes[i], &via, why, sizeof(why));

		sj_add(n, "name", json_object_new_string(c->nodes[i].name));
		if (cfg_node_peer_addr(c, &c->nodes[i], &sa))
			sj_add(n, "peer_address",
			       json_object_new_string(sa_str(&sa, true, a, sizeof(a))));
		if (!r) {
			sj_add(n, "error", json_object_new_string(why));
			node_down = true;
		} else {
			sj_add(n, "via", json_object_new_string(via));
			st = parse_reply(c->nodes[i].name, r);
			if (!st)
				broken = true;
		}
		free(r);
		sj_add(n, "up", json_object_new_boolean(st != NULL));
		if (st) {
			struct json_object *sum = jget(jget(st, "config"), "sha256");
			bool same = sum && strcmp(json_object_get_string(sum), c->sha256) == 0;

			sj_add(n, "config_matches", json_object_new_boolean(same));
			cfg_differs |= !same;
		}
		sj_add(n, "status", st);
		sj_push(nodes, n);
	}
	for (size_t gi = 0; gi < c->ngroups; gi++) {
		const struct cfg_group *gc = &c->groups[gi];
		struct json_object *g = json_object_new_object();
		struct json_object *owners = json_object_new_array();
		struct json_object *served = NULL;
		struct sbuf why = { 0 };

		for (size_t i = 0; i < c->nnodes; i++) {
			struct json_object *st = jget(json_object_array_get_idx(nodes, i), "status");
			struct json_object *gs = jget(st, "groups"), *sb = jget(st, "standby");
			bool may = false;

			for (size_t k = 0; k < jlen(gs); k++) {
				struct json_object *o = json_object_array_get_idx(gs, k);
				struct json_object *nm = jget(o, "name");
				if (nm && strcmp(json_object_get_string(nm), gc->name) == 0) {
					sj_push(owners, json_object_new_string(c->nodes[i].name));
					if (!served)
						served = o;
				}
			}
			for (size_t k = 0; k < jlen(sb); k++) {
				struct json_object *o = json_object_array_get_idx(sb, k);
				struct json_object *nm = jget(o, "name");
				if (nm && strcmp(json_object_get_string(nm), gc->name) == 0) {
					struct json_object *rs = jget(o, "reason");
					sb_printf(&why, "%s%s: %s", why.len ? "; " : "",
						  c->nodes[i].name,
						  rs ? json_object_get_string(rs) : "?");
				}
			}
			for (size_t k = 0; k < gc->nnodes; k++)
				may |= strcmp(gc->nodes[k], c->nodes[i].name) == 0;
			if (may && !st)
				sb_printf(&why, "%s%s: node down", why.len ? "; " : "",
					  c->nodes[i].name);
		}
		sj_add(g, "name", json_object_new_string(gc->name));
		if (jlen(owners) == 1) {
			struct json_object *stn = jget(served, "state");
			const char *state = stn ? json_object_get_string(stn) : "online";
			/* Served means answering: online, or in grace.  A group
			 * still loading its state ("opening") is not yet. */
			bool up = strcmp(state, "online") == 0 || strcmp(state, "grace") == 0;

			sj_add(g, "state", json_object_new_string(state));
			sj_add(g, "owner", json_object_get(json_object_array_get_idx(owners, 0)));
			sj_add(g, "grace_left", json_object_new_int64(jint(served, "grace_left", 0)));
			/* Not answering yet: loading its state, or waiting to
			 * bind a VIP (the owner says why: "binding"). */
			struct json_object *rs = jget(served, "reason");
			char rbuf[600];

			snprintf(rbuf, sizeof(rbuf), "%s: %s",
				 json_object_get_string(json_object_array_get_idx(owners, 0)),
				 rs ? json_object_get_string(rs) : "");
			sj_add(g, "reason", up ? NULL : json_object_new_string(
				rs ? rbuf : "coming online: its state is being loaded"));
			group_bad |= !up;
		} else if (jlen(owners) > 1) {
			/* The lease makes this impossible; say so loudly if not. */
			sj_add(g, "state", json_object_new_string("split"));
			sj_add(g, "owner", NULL);
			sj_add(g, "grace_left", json_object_new_int64(0));
			sj_add(g, "reason", json_object_new_string("served by more than one node"));
			group_bad = true;
		} else {
			sj_add(g, "state", json_object_new_string("offline"));
			sj_add(g, "owner", NULL);
			sj_add(g, "grace_left", json_object_new_int64(0));
			sj_add(g, "reason", json_object_new_string(
				why.len && !why.oom ? why.s : "no node of its nodes list answers"));
			group_bad = true;
		}
		sj_add(g, "owners", owners);
		sb_free(&why);
		sj_push(groups, g);
	}
	sj_add(doc, "nodes", nodes);
	sj_add(doc, "groups", groups);
	*code = broken ? STATUS_ERROR : group_bad ? STATUS_GROUP_DOWN
	      : node_down ? STATUS_NODE_DOWN : cfg_differs ? STATUS_CONFIG_DIFFERS : 0;
	return doc;
}

static int cmd_status_json(const struct cfg_cluster *c)
{
	int code;
	struct json_object *doc = status_collect(c, &code);

	if (!doc)
		return STATUS_ERROR;
	printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return code;
}

/* The tables of `sgnfsctl status`, every one built from status_collect()'s
 * document. */
static int cmd_status_text(const struct cfg_cluster *c)
{
	int code;
	struct json_object *doc = status_collect(c, &code);
	struct json_object *nodes, *groups;
	char b1[LOG_SAFE_MAX], b2[LOG_SAFE_MAX], b3[LOG_SAFE_MAX], b4[LOG_SAFE_MAX],
	     b5[LOG_SAFE_MAX];

	if (!doc)
		return STATUS_ERROR;
	nodes = jget(doc, "nodes");
	groups = jget(doc, "groups");
	printf("cluster %s (config sha256 %.12s)\n\n", c->name, c->sha256);
	printf("NODE        STATE  PID       DRAIN  CONFIG        VERSION   VIA\n");
	for (size_t i = 0; i < jlen(nodes); i++) {
		struct json_object *n = json_object_array_get_idx(nodes, i);
		struct json_object *st = jget(n, "status");
		struct json_object *dr = jget(st, "draining");
		struct json_object *cm = jget(n, "config_matches");
		char cfgs[32];

		if (!st) {
			/* With an address the error names both ways tried. */
			printf("%-11s %-6s (%s%s)\n", jstr(n, "name", "?", b1, sizeof(b1)),
			       "down", jget(n, "peer_address") ? "" : "control socket: ",
			       jstr(n, "error", "no answer", b2, sizeof(b2)));
			continue;
		}
		snprintf(cfgs, sizeof(cfgs), "%.12s%s",
			 jstr(jget(st, "config"), "sha256", "?", b2, sizeof(b2)),
			 cm && json_object_get_boolean(cm) ? "" : " (differs)");
		{
			const char *via = jstr(n, "via", "socket", b4, sizeof(b4));
			bool peer = strcmp(via, "peer") == 0;

			printf("%-11s %-6s %-9" PRId64 " %-6s %-13s %-9s %s%s%s\n",
			       jstr(n, "name", "?", b1, sizeof(b1)), "up", jint(st, "pid", 0),
			       dr && json_object_get_boolean(dr) ? "yes" : "no", cfgs,
			       jstr(st, "version", "?", b3, sizeof(b3)), via, peer ? " " : "",
			       peer ? jstr(n, "peer_address", "", b5, sizeof(b5)) : "");
		}
	}

	printf("\nGROUP        OWNER       STATE             NSM  CLIENTS  LOCKS  VIPS\n");
	for (size_t i = 0; i < jlen(groups); i++) {
		struct json_object *g = json_object_array_get_idx(groups, i);
		const char *name = jstr(g, "name", "?", b1, sizeof(b1));
		const char *state = jstr(g, "state", "?", b2, sizeof(b2));
		struct json_object *gs = NULL;
		char stbuf[64], vips[256] = "";

		/* The owner's own view of the group, for the details. */
		for (size_t k = 0; k < jlen(nodes) && !gs; k++) {
			struct json_object *arr = jget(jget(json_object_array_get_idx(nodes, k),
							    "status"), "groups");
			for (size_t m = 0; m < jlen(arr); m++) {
				struct json_object *o = json_object_array_get_idx(arr, m);
				if (strcmp(jstr(o, "name", "", b3, sizeof(b3)), name) == 0)
					gs = o;
			}
		}
		if (strcmp(state, "grace") == 0)
			snprintf(stbuf, sizeof(stbuf), "in grace (%" PRId64 "s)",
				 jint(g, "grace_left", 0));
		else
			snprintf(stbuf, sizeof(stbuf), "%s", state);
		{
			const struct cfg_group *gc = cfg_group_find(c, name);
			for (size_t v = 0; gc && v < gc->nvips; v++) {
				char a[INET6_ADDRSTRLEN] = "?";
				const struct sockaddr_storage *ss = &gc->vips[v];
				inet_ntop(ss->ss_family, ss->ss_family == AF_INET
					  ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
					  : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
					  a, sizeof(a));
				size_t l = strlen(vips);
				snprintf(vips + l, sizeof(vips) - l, "%s%s", v ? " " : "", a);
			}
		}
		if (gs)
			/* the counts, not the lists' lengths: a status cuts the
			 * lists (docs/status.md) */
			printf("%-12s %-11s %-16s %4" PRId64 " %8" PRId64 " %6" PRId64 "  %s\n", name,
			       jstr(g, "owner", "-", b3, sizeof(b3)), stbuf, jint(gs, "nsm_state", 0),
			       jint(gs, "nclients", 0), jint(gs, "nlocks", 0), vips);
		else
			printf("%-12s %-11s %-16s %4s %8s %6s  %s\n", name, "-", stbuf, "-", "-",
			       "-", vips);
		if (jget(g, "reason") && !json_object_is_type(jget(g, "reason"), json_type_null))
			printf("    why: %s\n", jstr(g, "reason", "", b3, sizeof(b3)));
	}

	printf("\nGROUP        FSID        ACCESS SQUASH PATH\n");
	for (size_t gi = 0; gi < c->ngroups; gi++)
		for (size_t e = 0; e < c->groups[gi].nexports; e++) {
			const struct cfg_export *x = c->groups[gi].exports[e];
			printf("%-12s %-11u %-6s %-6s %s\n", c->groups[gi].name, x->fsid,
			       x->rw ? "rw" : "ro",
			       x->all_squash ? "all" : x->root_squash ? "root" : "none", x->path);
		}

	/* FORMAT: the journal file's version (1: from an older release, until
	 * it is compacted; docs/operations.md, "Upgrading a cluster"). */
	printf("\nGROUP        JOURNAL  RESERVED        BYTES    BATCHES  COMPACTIONS  FAILURES  "
	       "FORMAT\n");
	for (size_t i = 0; i < jlen(nodes); i++) {
		struct json_object *arr = jget(jget(json_object_array_get_idx(nodes, i), "status"),
					       "groups");
		for (size_t m = 0; m < jlen(arr); m++) {
			struct json_object *o = json_object_array_get_idx(arr, m);
			struct json_object *j = jget(o, "journal");
			if (!j)
				continue;
			int64_t fmt = jint(j, "format", 0);

			printf("%-12s %-7s %9" PRId64 " %12" PRId64 " %10" PRId64 " %12" PRId64
			       " %9" PRId64, jstr(o, "name", "?", b1, sizeof(b1)),
			       jstr(j, "state", "?", b2, sizeof(b2)), jint(j, "reserved", 0),
			       jint(j, "bytes", 0), jint(j, "batches", 0), jint(j, "compactions", 0),
			       jint(j, "failures", 0));
			if (fmt > 0)
				printf("  %6" PRId64 "\n", fmt);
			else
				printf("  %6s\n", "-");
		}
	}

	printf("\nGROUP        CLIENT                ADDRESSES\n");
	for (size_t i = 0; i < jlen(nodes); i++) {
		struct json_object *arr = jget(jget(json_object_array_get_idx(nodes, i), "status"),
					       "groups");
		for (size_t m = 0; m < jlen(arr); m++) {
			struct json_object *o = json_object_array_get_idx(arr, m);
			struct json_object *cl = jget(o, "clients"), *lk = jget(o, "locks");
			const char *gname = jstr(o, "name", "?", b1, sizeof(b1));

			for (size_t k = 0; k < jlen(cl); k++) {
				struct json_object *e = json_object_array_get_idx(cl, k);
				struct json_object *ad = jget(e, "addresses");
				struct json_object *ho = jget(e, "holding");
				printf("%-12s %-21s ", gname, jstr(e, "name", "?", b2, sizeof(b2)));
				for (size_t a = 0; a < jlen(ad); a++) {
					const char *s = json_object_get_string(
						json_object_array_get_idx(ad, a));
					printf("%s%s", a ? "," : "",
					       log_safe(b3, sizeof(b3), s ? s : "", s ? strlen(s) : 0));
				}
				printf("%s\n", ho && json_object_get_boolean(ho) ? "" : " (idle)");
			}
			for (size_t k = 0; k < jlen(lk); k++) {
				struct json_object *l = json_object_array_get_idx(lk, k);
				char own[40], end[24], fb[300];
				struct json_object *ev = jget(l, "end");

				snprintf(own, sizeof(own), "%.32s", jstr(l, "owner", "", b3, sizeof(b3)));
				if (ev && json_object_is_type(ev, json_type_string))
					snprintf(end, sizeof(end), "eof");
				else
					snprintf(end, sizeof(end), "%" PRIu64,
						 ev ? json_object_get_uint64(ev) : 0);
				printf("  lock %-9s %s svid=%" PRId64 " owner=%s file=%s range=%" PRIu64
				       "-%s\n", jstr(l, "type", "?", b2, sizeof(b2)),
				       jstr(l, "client", "?", b3, sizeof(b3)), jint(l, "svid", 0), own,
				       jstr(l, "file", "?", fb, sizeof(fb)),
				       jget(l, "start") ? json_object_get_uint64(jget(l, "start")) : 0,
				       end);
			}
			if (jbool(o, "clients_truncated") || jbool(o, "locks_truncated"))
				printf("%-12s (listed %zu of %" PRId64 " clients, %zu of %" PRId64
				       " locks: docs/status.md)\n", gname, jlen(cl),
				       jint(o, "nclients", 0), jlen(lk), jint(o, "nlocks", 0));
		}
	}
	json_object_put(doc);
	return code;
}

/* True unless @r is a JSON object without an "error" member. */
static bool reply_is_error(const char *node, const char *r)
{
	struct json_object *o = parse_reply(node, r);
	bool bad = !o || jget(o, "error") != NULL;

	json_object_put(o);
	return bad;
}

/* Forward a request to the node that must act on it; print its answer. */
static int cmd_forward(const struct cfg_cluster *c, const char *node, const char *req)
{
	char *r = ctl_ask(c, node, req);
	int rc;

	if (!r) {
		fprintf(stderr, "sgnfsctl: node %s: %s\n", node, strerror(errno));
		return 1;
	}
	rc = reply_is_error(node, r) ? 1 : 0;
	printf("%s\n", r);
	free(r);
	return rc;
}

/* Send @req to every node (or @node); print each answer; 1 if any node
 * did not answer or refused, else 0. */
static int cmd_each_node(const struct cfg_cluster *c, const char *req, const char *node)
{
	int rc = 0;

	if (node && !cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: no [node %s] in %s\n", node, c->path);
		return 1;
	}
	for (size_t i = 0; i < c->nnodes; i++) {
		const char *n = c->nodes[i].name;
		char *r;

		if (node && strcmp(node, n) != 0)
			continue;
		r = ctl_ask(c, n, req);
		if (!r) {
			fprintf(stderr, "sgnfsctl: node %s: %s\n", n, strerror(errno));
			rc = 1;
			continue;
		}
		if (reply_is_error(n, r))
			rc = 1;
		printf("%s: %s\n", n, r);
		free(r);
	}
	return rc;
}

/* `metrics [NODE]`: NODE's metrics as Prometheus text, or every node's
 * merged into one valid exposition (each family once; every sample
 * carries node="NAME").  A node that does not answer is named on stderr,
 * exit 1, and the others are still printed. */
static int cmd_metrics(const struct cfg_cluster *c, const char *node)
{
	struct json_object **replies = calloc(c->nnodes ? c->nnodes : 1, sizeof(*replies));
	const char **texts = calloc(c->nnodes ? c->nnodes : 1, sizeof(*texts));
	struct sbuf out = { 0 };
	size_t ntexts = 0;
	int rc = 0, mrc;

	if (!replies || !texts) {
		fprintf(stderr, "sgnfsctl: out of memory\n");
		rc = 1;
		goto out;
	}
	if (node && !cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: no [node %s] in %s\n", node, c->path);
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < c->nnodes; i++) {
		const char *n = c->nodes[i].name;
		struct json_object *t;
		char *r;

		if (node && strcmp(node, n) != 0)
			continue;
		r = ctl_ask(c, n, ctl_reqs[CTL_REQ_METRICS].name);
		if (!r) {
			fprintf(stderr, "sgnfsctl: node %s: %s\n", n, strerror(errno));
			rc = 1;
			continue;
		}
		replies[i] = parse_reply(n, r);
		free(r);
		t = jget(replies[i], "text");
		if (!t || !json_object_is_type(t, json_type_string)) {
			fprintf(stderr, "sgnfsctl: node %s: no metrics in the answer\n", n);
			rc = 1;
			continue;
		}
		texts[ntexts++] = json_object_get_string(t);
	}
	mrc = mt_merge(&out, texts, ntexts);
	if (mrc < 0) {
		fprintf(stderr, "sgnfsctl: cannot merge the nodes' metrics: %s\n", strerror(-mrc));
		rc = 1;
	} else if (out.len) {
		fwrite(out.s, 1, out.len, stdout);
	}
out:
	sb_free(&out);
	for (size_t i = 0; replies && i < c->nnodes; i++)
		json_object_put(replies[i]);
	free(replies);
	free(texts);
	return rc;
}

/* `log-level LEVEL [NODE]`: every node (or NODE) logs at LEVEL from now on. */
static int cmd_log_level(const struct cfg_cluster *c, const char *level, const char *node)
{
	char req[64];

	if (ctl_req_line(req, sizeof(req), CTL_REQ_LOG_LEVEL, level) < 0) {
		fprintf(stderr, "sgnfsctl: expected error, warn, info or debug\n");
		return 1;
	}
	return cmd_each_node(c, req, node);
}

/*
 * `move GROUP NODE`: the owner acts on the request, every other node
 * answers "not the owner".  The nodes other than the target are asked
 * first, and the asking stops at the owner's answer: a target that is
 * stopped or slow to answer does not hold the command up (the owner
 * itself refuses a target that is not running).  The target is asked
 * last, only when no other node owns the group (it may be the owner).
 * 0 when the owner released the group for NODE (or NODE has it already),
 * else 1 with the reason on stderr.
 */
static int cmd_move(const struct cfg_cluster *c, const char *group, const char *node)
{
	char req[256], b[LOG_SAFE_MAX];
	int rc = -1; /* no owner has answered yet */

	if (!cfg_group_find(c, group) || !cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: unknown group or node\n");
		return 1;
	}
	if (ctl_req_line(req, sizeof(req), CTL_REQ_MOVE, group, node) < 0) {
		fprintf(stderr, "sgnfsctl: unknown group or node\n");
		return 1;
	}
	for (int pass = 0; pass < 2 && rc < 0; pass++) {
		for (size_t i = 0; i < c->nnodes && rc < 0; i++) {
			const char *n = c->nodes[i].name;
			struct json_object *o;
			const char *res;
			char *r;

			if ((strcmp(n, node) == 0) != (pass == 1))
				continue;
			r = ctl_ask(c, n, req);
			if (!r)
				continue; /* not running here: not the owner */
			printf("%s: %s\n", n, r);
			o = parse_reply(n, r);
			free(r);
			res = jstr(o, "result", "", b, sizeof(b));
			if (!o) {
				rc = 1;
			} else if (jget(o, "error")) {
				/* Only a node of the group answers with an error
				 * (the owner refusing, or a managed group). */
				fprintf(stderr, "sgnfsctl: node %s: %s\n", n,
					jstr(o, "error", "", b, sizeof(b)));
				rc = 1;
			} else if (strcmp(res, "released") == 0 || strcmp(res, "already here") == 0) {
				rc = 0;
			}
			json_object_put(o);
		}
	}
	if (rc < 0) {
		fprintf(stderr, "sgnfsctl: no running node serves group %s now; nothing moved\n",
			group);
		rc = 1;
	}
	return rc;
}

/* May @gc be served by a node other than @gone, going by @doc: one of its
 * nodes answers and is not draining. */
static bool drain_has_taker(const struct cfg_group *gc, const char *gone,
			    struct json_object *doc)
{
	struct json_object *nodes = jget(doc, "nodes");

	for (size_t k = 0; k < gc->nnodes; k++) {
		if (strcmp(gc->nodes[k], gone) == 0)
			continue;
		for (size_t i = 0; i < jlen(nodes); i++) {
			struct json_object *n = json_object_array_get_idx(nodes, i);
			struct json_object *st = jget(n, "status"), *dr = jget(st, "draining");
			struct json_object *nm = jget(n, "name");

			if (nm && strcmp(json_object_get_string(nm), gc->nodes[k]) == 0 && st &&
			    !(dr && json_object_get_boolean(dr)))
				return true;
		}
	}
	return false;
}

/* @name's object in the cluster document @doc, or NULL. */
static struct json_object *doc_group(struct json_object *doc, const char *name)
{
	struct json_object *arr = jget(doc, "groups");
	char b[LOG_SAFE_MAX];

	for (size_t k = 0; k < jlen(arr); k++) {
		struct json_object *x = json_object_array_get_idx(arr, k);
		if (strcmp(jstr(x, "name", "", b, sizeof(b)), name) == 0)
			return x;
	}
	return NULL;
}

/*
 * Of @groups (names) that node @gone gave up, going by @doc: how many are
 * not yet served by another node (*pending), and how many of those have
 * no node left to go to (*stuck).  With @report, each one not served is
 * named on stderr with its reason.
 */
static void drain_check(const struct cfg_cluster *c, const char *gone,
			struct json_object *groups, struct json_object *doc, bool report,
			size_t *pending, size_t *stuck)
{
	*pending = *stuck = 0;
	for (size_t i = 0; i < jlen(groups); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(groups, i));
		const struct cfg_group *gc = cfg_group_find(c, name);
		struct json_object *g = doc_group(doc, name);
		char b1[LOG_SAFE_MAX], b2[LOG_SAFE_MAX], b3[LOG_SAFE_MAX];
		const char *state = jstr(g, "state", "?", b1, sizeof(b1));
		const char *owner = jstr(g, "owner", NULL, b2, sizeof(b2));
		bool taker;

		if ((strcmp(state, "online") == 0 || strcmp(state, "grace") == 0) && owner &&
		    strcmp(owner, gone) != 0)
			continue;
		(*pending)++;
		taker = gc && drain_has_taker(gc, gone, doc);
		*stuck += !taker;
		if (report)
			fprintf(stderr, "sgnfsctl: group %s is not served%s: %s\n", name,
				taker ? "" : " (no other node of its list answers and takes groups)",
				jstr(g, "reason", state, b3, sizeof(b3)));
	}
}

/*
 * `drain [--no-wait] [--timeout S] NODE`: NODE gives up its groups and takes
 * none.  Unless --no-wait, wait until every group it gave up is served
 * (online or in grace) by another node, and say where: 0 when all are, 3
 * (as status: a group is not served) when one is not after S seconds or
 * has no other node to go to (every other node of its list down or
 * draining), with the reasons; 1 when the node refused or did not answer.
 */
static int cmd_drain(const struct cfg_cluster *c, const char *node, bool wait, int timeout_s)
{
	struct json_object *o, *groups;
	struct timespec t0, now;
	char *r;
	int rc = 0;

	if (!cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: no [node %s] in %s\n", node, c->path);
		return 1;
	}
	r = ctl_ask(c, node, ctl_reqs[CTL_REQ_DRAIN].name);
	if (!r) {
		fprintf(stderr, "sgnfsctl: node %s: %s\n", node, strerror(errno));
		return 1;
	}
	o = parse_reply(node, r);
	printf("%s\n", r);
	free(r);
	if (!o || jget(o, "error")) {
		json_object_put(o);
		return 1;
	}
	groups = jget(o, "groups");
	if (!wait || jlen(groups) == 0) {
		json_object_put(o);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int code;
		struct json_object *doc = status_collect(c, &code);
		size_t pending = 1, stuck = 0;
		bool late;

		clock_gettime(CLOCK_MONOTONIC, &now);
		late = now.tv_sec - t0.tv_sec >= timeout_s;
		if (doc)
			drain_check(c, node, groups, doc, false, &pending, &stuck);
		if (doc && pending == 0) {
			for (size_t i = 0; i < jlen(groups); i++) {
				const char *name = json_object_get_string(
					json_object_array_get_idx(groups, i));
				struct json_object *g = doc_group(doc, name);
				char b1[LOG_SAFE_MAX], b2[LOG_SAFE_MAX];

				printf("group %s: %s on node %s\n", name,
				       jstr(g, "state", "?", b1, sizeof(b1)),
				       jstr(g, "owner", "?", b2, sizeof(b2)));
			}
			json_object_put(doc);
			break;
		}
		/* Nothing more to wait for: out of time, or the groups left
		 * have nowhere to go. */
		if (late || (doc && stuck == pending)) {
			if (doc)
				drain_check(c, node, groups, doc, true, &pending, &stuck);
			else
				fprintf(stderr, "sgnfsctl: the cluster's status cannot be read\n");
			json_object_put(doc);
			rc = STATUS_GROUP_DOWN;
			break;
		}
		json_object_put(doc);
		usleep(100 * 1000);
	}
	json_object_put(o);
	return rc;
}

/* `keygen [--rotate] FILE`: the file `[cluster] handle_key` names (hkey.h). */
static int cmd_keygen(int nargs, char **args)
{
	bool rotate = nargs == 2 && strcmp(args[0], "--rotate") == 0;
	const char *path = args[nargs - 1];
	char why[200];
	int rc;

	if (nargs != 1 && !rotate) {
		usage(stderr);
		return 64;
	}
	rc = hk_generate(path, rotate, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "sgnfsctl: %s: %s\n", path, why);
		return 1;
	}
	printf("%s: %s; install the same file on every node and restart or move "
	       "their groups\n", path, rotate ? "new current key, old one kept as previous"
	       : "new handle key");
	return 0;
}

/* ---- managed ownership: start, stop, status of one group --------------- */

/* The [node] this host is: named like `uname -n` up to the first dot. */
static const char *my_node(const struct cfg_cluster *c, char *host, size_t len)
{
	if (gethostname(host, len) < 0)
		return NULL;
	host[len - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	return cfg_node_find(c, host) ? host : NULL;
}

/*
 * start, stop or status of @group on @node (see usage()).  The node does
 * the work and decides (managed or not, failed or not); this only maps its
 * answer to an exit code a cluster manager's agent can use.
 */
static int cmd_group(const struct cfg_cluster *c, const char *node, const char *cmd,
		     const char *group)
{
	const struct cfg_group *g = cfg_group_find(c, group);
	bool allowed = false, status = strcmp(cmd, "status") == 0;
	struct json_object *o;
	char req[256], b1[256], b2[512];
	char *r;
	int rc;

	if (!g) {
		fprintf(stderr, "sgnfsctl: no [group %s] in %s\n", group, c->path);
		return GROUP_USAGE;
	}
	for (size_t i = 0; i < g->nnodes; i++)
		allowed |= strcmp(g->nodes[i], node) == 0;
	if (!allowed) {
		fprintf(stderr, "sgnfsctl: node %s is not in the nodes list of group %s\n", node,
			group);
		return GROUP_USAGE;
	}
	if (ctl_req_line(req, sizeof(req), status ? CTL_REQ_GROUP : strcmp(cmd, "start") == 0
			 ? CTL_REQ_START : CTL_REQ_STOP, group) < 0) {
		fprintf(stderr, "sgnfsctl: no [group %s] in %s\n", group, c->path);
		return GROUP_USAGE;
	}
	r = ctl_ask_wait(c, node, req, status ? CTL_WAIT_MS : CTL_WAIT_GROUP_MS);
	/* A group being opened is neither served nor stopped yet: status
	 * answers once the open is over, as start would. */
	for (int waited = 0; status && r && strstr(r, "\"state\":\"opening\"") &&
			     waited < CTL_WAIT_GROUP_MS; waited += 100) {
		free(r);
		usleep(100 * 1000);
		r = ctl_ask_wait(c, node, req, CTL_WAIT_MS);
	}
	if (!r) {
		int e = errno;
		/* No sgnfsd listens there: it serves nothing. */
		bool down = e == ENOENT || e == ECONNREFUSED;

		fprintf(stderr, "sgnfsctl: node %s: %s%s\n", node, strerror(e),
			down ? " (sgnfsd is not running there)" : "");
		if (down && status)
			return GROUP_NOT_RUNNING;
		if (down && strcmp(cmd, "stop") == 0)
			return GROUP_OK;
		return GROUP_FAILED;
	}
	o = parse_reply(node, r);
	free(r);
	if (!o)
		return GROUP_FAILED;
	if (jget(o, "error")) {
		fprintf(stderr, "sgnfsctl: %s %s on node %s: %s\n", cmd, group, node,
			jstr(o, "error", "", b2, sizeof(b2)));
		rc = GROUP_FAILED;
	} else if (!status) {
		printf("group %s %s on node %s\n", group, jstr(o, "result", "?", b1, sizeof(b1)),
		       node);
		rc = GROUP_OK;
	} else {
		const char *st = jstr(o, "state", "?", b1, sizeof(b1));
		const char *why = jstr(o, "reason", "", b2, sizeof(b2));

		printf("group %s %s on node %s%s%s\n", group, st, node, why[0] ? ": " : "", why);
		rc = strcmp(st, "online") == 0 ? GROUP_OK
		   : strcmp(st, "failed") == 0 ? GROUP_FAILED : GROUP_NOT_RUNNING;
		if (rc == GROUP_FAILED)
			fprintf(stderr, "sgnfsctl: group %s failed on node %s: %s\n", group, node,
				why);
	}
	json_object_put(o);
	return rc;
}

/*
 * init: write @group's storage identity into its first export's .sgnfs/
 * (src/cluster/storage.h).  Run once per group, on the machine where the
 * group's storage is mounted; no node needs to run.  Without it no node
 * serves the group.
 */
static int cmd_init(const struct cfg_cluster *c, const char *group, bool force)
{
	const struct cfg_group *g = cfg_group_find(c, group);
	char why[1024];
	bool existed;
	int rc;

	if (!g) {
		fprintf(stderr, "sgnfsctl: no [group %s] in %s\n", group, c->path);
		return GROUP_USAGE;
	}
	rc = stg_init(g->exports[0]->path, c->name, group, force, &existed, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "sgnfsctl: init %s: %s%s\n", group, why,
			rc == -EBADF || rc == -EXDEV ? " (--force replaces it)" : "");
		return 1;
	}
	printf("group %s: storage %s %s\n", group, g->exports[0]->path,
	       existed ? "already initialised" : "initialised");
	return 0;
}

/*
 * ping: does @node's sgnfsd answer on its control socket?  The OCF agent
 * of the node daemon monitors with it: 0 answers, 7 not running there (no
 * socket, or nobody behind it), 1 anything else (a hung or broken node).
 */
static int cmd_ping(const struct cfg_cluster *c, const char *node)
{
	struct json_object *o;
	char *r = ctl_ask(c, node, ctl_reqs[CTL_REQ_STATUS].name);

	if (!r) {
		int e = errno;

		fprintf(stderr, "sgnfsctl: node %s: %s\n", node, strerror(e));
		return e == ENOENT || e == ECONNREFUSED ? GROUP_NOT_RUNNING : GROUP_FAILED;
	}
	o = parse_reply(node, r);
	free(r);
	if (!o)
		return GROUP_FAILED;
	json_object_put(o);
	printf("node %s answers\n", node);
	return GROUP_OK;
}

/* drain [--no-wait] [--timeout S] NODE */
static int drain_args(const struct cfg_cluster *c, int nargs, char **args)
{
	bool wait = true;
	long timeout = 120;
	int i;

	for (i = 0; i < nargs - 1; i++) {
		char *end;

		if (strcmp(args[i], "--no-wait") == 0) {
			wait = false;
		} else if (strcmp(args[i], "--timeout") == 0 && i + 1 < nargs - 1) {
			timeout = strtol(args[++i], &end, 10);
			if (*end || timeout < 1 || timeout > 86400) {
				usage(stderr);
				return 64;
			}
		} else {
			usage(stderr);
			return 64;
		}
	}
	return cmd_drain(c, args[nargs - 1], wait, (int)timeout);
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL, *node = NULL;
	char host[256] = "";
	struct cfg_cluster *c;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+c:n:h")) != -1) {
		switch (opt) {
		case 'c': cfgpath = optarg; break;
		case 'n': node = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	/* keygen needs no cluster file: it makes a file the cluster names. */
	if (optind < argc && strcmp(argv[optind], "keygen") == 0)
		return cmd_keygen(argc - optind - 1, argv + optind + 1);
	if (!cfgpath || optind >= argc) {
		usage(stderr);
		return 64;
	}
	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	bool group_cmd = nargs == 1 && strcmp(args[0], "--json") != 0 &&
			 (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 ||
			  strcmp(cmd, "status") == 0);
	bool ping = nargs == 0 && strcmp(cmd, "ping") == 0;

	rc = cfg_load(cfgpath, stderr, &c);
	if (rc < 0) {
		if (rc != -EINVAL)
			fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
		return group_cmd || ping ? GROUP_USAGE : 1;
	}

	if (ping) {
		if (!node && !(node = my_node(c, host, sizeof(host)))) {
			fprintf(stderr, "sgnfsctl: no [node %s] in %s for this host; name the "
				"node with -n NODE\n", host, cfgpath);
			rc = GROUP_USAGE;
		} else if (!cfg_node_find(c, node)) {
			fprintf(stderr, "sgnfsctl: no [node %s] in %s\n", node, cfgpath);
			rc = GROUP_USAGE;
		} else {
			rc = cmd_ping(c, node);
		}
	} else if (group_cmd && !node && !(node = my_node(c, host, sizeof(host)))) {
		fprintf(stderr, "sgnfsctl: no [node %s] in %s for this host; name the node "
			"with -n NODE\n", host, cfgpath);
		rc = GROUP_USAGE;
	} else if (group_cmd && !cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: no [node %s] in %s\n", node, cfgpath);
		rc = GROUP_USAGE;
	} else if (group_cmd) {
		rc = cmd_group(c, node, cmd, args[0]);
	} else if (node) {
		fprintf(stderr, "sgnfsctl: -n only goes with start, stop or status GROUP\n");
		rc = 64;
	} else if (strcmp(cmd, "status") == 0 && nargs == 0)
		rc = cmd_status_text(c);
	else if (strcmp(cmd, "status") == 0 && nargs == 1 && strcmp(args[0], "--json") == 0)
		rc = cmd_status_json(c);
	else if (strcmp(cmd, "move") == 0 && nargs == 2)
		rc = cmd_move(c, args[0], args[1]);
	else if (strcmp(cmd, "init") == 0 && nargs == 1)
		rc = cmd_init(c, args[0], false);
	else if (strcmp(cmd, "init") == 0 && nargs == 2 && strcmp(args[0], "--force") == 0)
		rc = cmd_init(c, args[1], true);
	else if (strcmp(cmd, "drain") == 0 && nargs >= 1)
		rc = drain_args(c, nargs, args);
	else if (strcmp(cmd, "undrain") == 0 && nargs == 1)
		rc = cmd_forward(c, args[0], ctl_reqs[CTL_REQ_UNDRAIN].name);
	else if (strcmp(cmd, "metrics") == 0 && nargs <= 1)
		rc = cmd_metrics(c, nargs == 1 ? args[0] : NULL);
	else if (strcmp(cmd, "reload") == 0 && nargs <= 1)
		rc = cmd_each_node(c, ctl_reqs[CTL_REQ_RELOAD].name, nargs == 1 ? args[0] : NULL);
	else if (strcmp(cmd, "log-level") == 0 && (nargs == 1 || nargs == 2))
		rc = cmd_log_level(c, args[0], nargs == 2 ? args[1] : NULL);
	else {
		usage(stderr);
		rc = 64;
	}
	cfg_free(c);
	return rc;
}
