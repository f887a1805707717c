/*
 * sgnfsctl - administer an sgnfs cluster through each node's control socket.
 *
 *   sgnfsctl -c FILE status [--json]   nodes, groups, clients and locks
 *   sgnfsctl -c FILE move GROUP NODE   planned switchover of GROUP to NODE
 *   sgnfsctl -c FILE drain NODE        move every group off NODE
 *   sgnfsctl keygen [--rotate] KEYFILE  create (or rotate) the handle key
 *
 * Every node of the file is asked in turn; a node whose socket does not
 * answer is reported as down.  Groups no node reports are offline.
 * Exit codes: 0 ok, 1 the request failed, 2 a node is down (status only),
 * 64 usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "hkey.h"
#include "sbuf.h"

#define CTL_REPLY_MAX (64u << 20)

/* Send one request line to @node; the reply (one line, NUL-terminated,
 * caller frees) or NULL with errno set. */
static char *ctl_ask(const struct cfg_cluster *c, const char *node, const char *req)
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
		if (poll(&p, 1, 10000) <= 0) {
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
		"       sgnfsctl -c FILE drain NODE\n"
		"       sgnfsctl keygen [--rotate] KEYFILE\n");
}

/* Split @s at tabs into at most @max fields; returns the count. */
static int split_tabs(char *s, char **f, int max)
{
	int n = 0;
	f[n++] = s;
	for (char *p = s; *p && n < max; p++) {
		if (*p == '\t') {
			*p = '\0';
			f[n++] = p + 1;
		}
	}
	return n;
}

/*
 * Table form: the nodes answer "status text" with tab-separated records:
 *   G group state grace_left clients locks
 *   C group client addresses holding
 *   L group client svid owner file start end type
 *   J group journal reserved bytes batches compactions failures
 */
static int cmd_status_text(const struct cfg_cluster *c)
{
	char **replies = calloc(c->nnodes, sizeof(char *));
	bool *seen = calloc(c->ngroups, sizeof(bool));
	int rc = 0;

	if (!replies || !seen)
		return 1;
	printf("cluster %s\n\nNODE        STATE\n", c->name);
	for (size_t i = 0; i < c->nnodes; i++) {
		replies[i] = ctl_ask(c, c->nodes[i].name, "status text");
		printf("%-11s %s\n", c->nodes[i].name, replies[i] ? "up" : "down");
		if (!replies[i])
			rc = 2;
	}
	printf("\nGROUP        OWNER       STATE            CLIENTS  LOCKS\n");
	for (size_t i = 0; i < c->nnodes; i++) {
		char *save = NULL;
		if (!replies[i])
			continue;
		char *copy = strdup(replies[i]);
		for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char *f[12];
			int nf = split_tabs(l, f, 12);
			if (nf < 6 || strcmp(f[0], "G") != 0)
				continue;
			char state[64];
			if (strcmp(f[2], "grace") == 0)
				snprintf(state, sizeof(state), "in grace (%ss)", f[3]);
			else
				snprintf(state, sizeof(state), "%s", f[2]);
			printf("%-12s %-11s %-16s %7s %6s\n", f[1], c->nodes[i].name, state, f[4], f[5]);
			const struct cfg_group *g = cfg_group_find(c, f[1]);
			if (g)
				seen[g - c->groups] = true;
		}
		free(copy);
	}
	for (size_t g = 0; g < c->ngroups; g++)
		if (!seen[g])
			printf("%-12s %-11s %-16s %7s %6s\n", c->groups[g].name, "-", "offline", "-", "-");

	printf("\nGROUP        JOURNAL  RESERVED        BYTES    BATCHES  COMPACTIONS  FAILURES\n");
	for (size_t i = 0; i < c->nnodes; i++) {
		char *save = NULL;
		char *copy = replies[i] ? strdup(replies[i]) : NULL;

		if (!copy)
			continue;
		for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char *f[12];
			int nf = split_tabs(l, f, 12);
			if (nf >= 8 && strcmp(f[0], "J") == 0)
				printf("%-12s %-7s %9s %12s %10s %12s %9s\n", f[1], f[2], f[3], f[4],
				       f[5], f[6], f[7]);
		}
		free(copy);
	}

	printf("\nGROUP        CLIENT                ADDRESSES\n");
	for (size_t i = 0; i < c->nnodes; i++) {
		char *save = NULL;
		if (!replies[i])
			continue;
		for (char *l = strtok_r(replies[i], "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char *f[12];
			int nf = split_tabs(l, f, 12);
			if (nf >= 4 && strcmp(f[0], "C") == 0)
				printf("%-12s %-21s %s%s\n", f[1], f[2], f[3],
				       nf >= 5 && strcmp(f[4], "1") == 0 ? "" : " (idle)");
			else if (nf >= 10 && strcmp(f[0], "L") == 0)
				printf("  lock %-7s %s svid=%s owner=%s file=%s range=%s-%s\n",
				       f[9], f[2], f[3], f[4], f[5], f[6], f[7]);
		}
	}
	for (size_t i = 0; i < c->nnodes; i++)
		free(replies[i]);
	free(replies);
	free(seen);
	return rc;
}

static int cmd_status_json(const struct cfg_cluster *c)
{
	struct sbuf out = { 0 };
	int rc = 0;

	sb_printf(&out, "{\"cluster\":");
	sb_json_str(&out, c->name, strlen(c->name));
	sb_printf(&out, ",\"nodes\":[");
	for (size_t i = 0; i < c->nnodes; i++) {
		char *r = ctl_ask(c, c->nodes[i].name, "status");
		sb_printf(&out, "%s{\"name\":", i ? "," : "");
		sb_json_str(&out, c->nodes[i].name, strlen(c->nodes[i].name));
		sb_printf(&out, ",\"up\":%s,\"status\":%s}", r ? "true" : "false", r ? r : "null");
		if (!r)
			rc = 2;
		free(r);
	}
	sb_printf(&out, "]}\n");
	if (out.oom)
		return 1;
	fputs(out.s, stdout);
	sb_free(&out);
	return rc;
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
	rc = strstr(r, "\"error\"") ? 1 : 0;
	printf("%s\n", r);
	free(r);
	return rc;
}

static int cmd_move(const struct cfg_cluster *c, const char *group, const char *node)
{
	char req[256];

	if (!cfg_group_find(c, group) || !cfg_node_find(c, node)) {
		fprintf(stderr, "sgnfsctl: unknown group or node\n");
		return 1;
	}
	/* Every node learns the request; the owner releases, the target
	 * acquires (see src/cluster for the sequence). */
	snprintf(req, sizeof(req), "move %s %s", group, node);
	int rc = 1;
	for (size_t i = 0; i < c->nnodes; i++) {
		char *r = ctl_ask(c, c->nodes[i].name, req);
		if (!r)
			continue;
		if (!strstr(r, "\"error\""))
			rc = 0;
		printf("%s: %s\n", c->nodes[i].name, r);
		free(r);
	}
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

int main(int argc, char **argv)
{
	const char *cfgpath = NULL;
	struct cfg_cluster *c;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		switch (opt) {
		case 'c': cfgpath = optarg; break;
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
	rc = cfg_load(cfgpath, stderr, &c);
	if (rc < 0) {
		if (rc != -EINVAL)
			fprintf(stderr, "%s: %s\n", cfgpath, strerror(-rc));
		return 1;
	}
	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;

	if (strcmp(cmd, "status") == 0 && nargs == 0)
		rc = cmd_status_text(c);
	else if (strcmp(cmd, "status") == 0 && nargs == 1 && strcmp(args[0], "--json") == 0)
		rc = cmd_status_json(c);
	else if (strcmp(cmd, "move") == 0 && nargs == 2)
		rc = cmd_move(c, args[0], args[1]);
	else if (strcmp(cmd, "drain") == 0 && nargs == 1)
		rc = cmd_forward(c, args[0], "drain");
	else {
		usage(stderr);
		rc = 64;
	}
	cfg_free(c);
	return rc;
}
