/*
 * test_config.c - the cluster INI file: a full good file checked field by
 * field, defaults, every error kind at its exact line, several errors in one
 * file, comments and line handling, network parsing and matching at the
 * edges (/0, /32, /128, odd prefixes, v4-mapped), unreadable files.
 *
 * Each case writes its text to a mkstemp() file and loads it with the error
 * stream captured by open_memstream(); nothing is left behind on disk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "config/config.h"

struct result {
	int rc;
	struct cfg_cluster *c;
	char *errs;          /* everything printed to the error stream */
	char path[64];       /* the (already removed) file */
};

static void load_len(const char *text, size_t len, struct result *r)
{
	size_t errlen = 0;
	FILE *m;
	int fd;

	memset(r, 0, sizeof(*r));
	snprintf(r->path, sizeof(r->path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(r->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	m = open_memstream(&r->errs, &errlen);
	assert_non_null(m);
	r->rc = cfg_load(r->path, m, &r->c);
	assert_int_equal(fclose(m), 0);
	assert_int_equal(unlink(r->path), 0);
}

static void load(const char *text, struct result *r)
{
	load_len(text, strlen(text), r);
}

static void done(struct result *r)
{
	cfg_free(r->c);
	free(r->errs);
}

struct want { int line; const char *msg; };

/* The errors are exactly @w (in order), each "PATH:LINE: ...msg...". */
static void check_errors(const char *name, const struct result *r, const struct want *w,
			 size_t n)
{
	const char *s = r->errs;
	char prefix[96];
	size_t i;

	if (r->rc != -EINVAL || r->c)
		fail_msg("%s: rc %d, want -EINVAL\n%s", name, r->rc, r->errs);
	for (i = 0; i < n; i++) {
		const char *nl = strchr(s, '\n');
		if (!nl)
			fail_msg("%s: %zu errors, want %zu:\n%s", name, i, n, r->errs);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", r->path, w[i].line);
		char *line = strndup(s, (size_t)(nl - s));
		assert_non_null(line);
		bool ok = strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, w[i].msg);
		if (!ok)
			fail_msg("%s: error %zu is\n  %s\nwant line %d with \"%s\"; all:\n%s",
				 name, i, line, w[i].line, w[i].msg, r->errs);
		free(line);
		s = nl + 1;
	}
	if (*s)
		fail_msg("%s: more errors than the %zu expected:\n%s", name, n, r->errs);
}

/* ---- a good file --------------------------------------------------------- */

/* The DESIGN.md example grown to 3 nodes and 4 groups, every key used. */
static const char full[] =
	"; sgnfs test cluster\n"                                   /* 1 */
	"[cluster]\n"                                              /* 2 */
	"name = demo\n"                                            /* 3 */
	"run_dir = /var/run/sgnfs-t     ; node-local\n"            /* 4 */
	"nfs_port = 12049\n"                                       /* 5 */
	"mount_port = 12048\n"                                     /* 6 */
	"pmap_port = 1111\n"                                       /* 7 */
	"nlm_port = 14045\n"                                       /* 8 */
	"nsm_port = 1662\n"                                        /* 9 */
	"use_rpcbind = yes\n"                                      /* 10 */
	"max_record = 16777216\n"                                  /* 11 */
	"max_conns = 64\n"                                         /* 12 */
	"idle_timeout = 60\n"                                      /* 13 */
	"watchdog_ms = 2000\n"                                     /* 14 */
	"log_level = debug\n"                                      /* 15 */
	"\n"                                                       /* 16 */
	"[node a]                        ; one section per node\n" /* 17 */
	"[node b]\n"                                               /* 18 */
	"[node c]\n"                                               /* 19 */
	"address = 10.9.0.3\n"                                     /* 20 */
	"\n"                                                       /* 21 */
	"[group sg1]\n"                                            /* 22 */
	"vip = 127.0.10.1 127.0.10.2     ; two VIPs\n"             /* 23 */
	"nodes = a b c                   ; preference order\n"     /* 24 */
	"grace = 45\n"                                             /* 25 */
	"\n"                                                       /* 26 */
	"[group sg2]\n"                                            /* 27 */
	"vip = fd00::20\n"                                         /* 28 */
	"nodes = b c a\n"                                          /* 29 */
	"grace = 3600\n"                                           /* 30 */
	"journal = off\n"                                          /* 31 */
	"client_idle = 0\n"                                        /* 32 */
	"\n"                                                       /* 33 */
	"[group sg3]\n"                                            /* 34 */
	"vip = 127.0.30.1\n"                                       /* 35 */
	"nodes = c\n"                                              /* 36 */
	"grace = 1\n"                                              /* 37 */
	"\n"                                                       /* 38 */
	"[group sg4]\n"                                            /* 39 */
	"vip = 127.0.40.1,::1\n"                                   /* 40 */
	"nodes = a,c\n"                                            /* 41 */
	"client_idle = 600\n"                                      /* 42 */
	"\n"                                                       /* 43 */
	"[export /srv/shared/sg1/home]   ; one section per fs\n"   /* 44 */
	"group = sg1\n"                                            /* 45 */
	"fsid = 101                      ; cluster-wide, unique\n" /* 46 */
	"access = rw\n"                                            /* 47 */
	"clients = 127.0.0.0/8\n"                                  /* 48 */
	"squash = root\n"                                          /* 49 */
	"\n"                                                       /* 50 */
	"[export /srv/shared/sg2]\n"                               /* 51 */
	"group = sg2\n"                                            /* 52 */
	"fsid = 201\n"                                             /* 53 */
	"access = ro\n"                                            /* 54 */
	"clients = 10.0.0.0/8, fd00::/8 192.168.1.7\n"             /* 55 */
	"squash = none\n"                                          /* 56 */
	"anonuid = 1000\n"                                         /* 57 */
	"anongid = 1001\n"                                         /* 58 */
	"secure = yes\n"                                           /* 59 */
	"\n"                                                       /* 60 */
	"[export /srv/shared/sg1/scratch]\n"                       /* 61 */
	"group = sg1\n"                                            /* 62 */
	"fsid = 4294967295\n"                                      /* 63 */
	"clients = ::1\n"                                          /* 64 */
	"squash = all\n"                                           /* 65 */
	"anonuid = 0\n"                                            /* 66 */
	"anongid = 4294967294\n"                                   /* 67 */
	"secure = no\n"                                            /* 68 */
	"\n"                                                       /* 69 */
	"[export /srv/shared/sg3]\n"                               /* 70 */
	"group = sg3\n"                                            /* 71 */
	"fsid = 1\n"                                               /* 72 */
	"clients = 0.0.0.0/0 ::/0\n"                               /* 73 */
	"\n"                                                       /* 74 */
	"[export /srv/shared/sg4]\n"                               /* 75 */
	"group = sg4\n"                                            /* 76 */
	"fsid = 401\n"                                             /* 77 */
	"clients = 127.0.0.1\n"                                    /* 78 */
	"\n"                                                       /* 79 */
	"; a second export of sg2 (exports never nest)\n"          /* 80 */
	"[export /srv/shared/sg2-sub]\n"                           /* 81 */
	"group = sg2\n"                                            /* 82 */
	"fsid = 202\n"                                             /* 83 */
	"clients = 10.1.0.0/16\n";                                 /* 84 */

static void check_v4(const struct sockaddr_storage *ss, const char *want)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, AF_INET);
	assert_int_equal(sin->sin_port, 0);
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)), want);
}

static void check_v6(const struct sockaddr_storage *ss, const char *want)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, AF_INET6);
	assert_int_equal(sin6->sin6_port, 0);
	assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)), want);
}

static void check_net(const struct cfg_net *n, int family, const char *addr, unsigned prefix)
{
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(n->family, family);
	assert_string_equal(inet_ntop(family, n->addr, buf, sizeof(buf)), addr);
	assert_int_equal(n->prefix, prefix);
}

static void test_full(void **state)
{
	struct result r;
	const struct cfg_cluster *c;
	const struct cfg_group *g;
	const struct cfg_export *e;

	(void)state;
	load(full, &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_string_equal(r.errs, "");
	c = r.c;
	assert_string_equal(c->path, r.path);
	assert_string_equal(c->name, "demo");
	assert_string_equal(c->run_dir, "/var/run/sgnfs-t");
	assert_int_equal(c->nfs_port, 12049);
	assert_int_equal(c->mount_port, 12048);
	assert_int_equal(c->pmap_port, 1111);
	assert_int_equal(c->nlm_port, 14045);
	assert_int_equal(c->nsm_port, 1662);
	assert_true(c->use_rpcbind);
	assert_int_equal(c->max_record, 16777216);
	assert_int_equal(c->max_conns, 64);
	assert_int_equal(c->idle_timeout_s, 60);
	assert_int_equal(c->watchdog_ms, 2000);
	assert_string_equal(c->log_level, "debug");

	assert_int_equal(c->nnodes, 3);
	assert_string_equal(c->nodes[0].name, "a");
	assert_int_equal(c->nodes[0].line, 17);
	assert_false(c->nodes[0].has_address);
	assert_string_equal(c->nodes[1].name, "b");
	assert_int_equal(c->nodes[1].line, 18);
	assert_string_equal(c->nodes[2].name, "c");
	assert_int_equal(c->nodes[2].line, 19);
	assert_true(c->nodes[2].has_address);
	check_v4(&c->nodes[2].address, "10.9.0.3");
	assert_ptr_equal(cfg_node_find(c, "b"), &c->nodes[1]);
	assert_null(cfg_node_find(c, "d"));

	assert_int_equal(c->ngroups, 4);
	g = &c->groups[0];
	assert_string_equal(g->name, "sg1");
	assert_int_equal(g->line, 22);
	assert_int_equal(g->nvips, 2);
	check_v4(&g->vips[0], "127.0.10.1");
	check_v4(&g->vips[1], "127.0.10.2");
	assert_int_equal(g->nnodes, 3);
	assert_string_equal(g->nodes[0], "a");
	assert_string_equal(g->nodes[1], "b");
	assert_string_equal(g->nodes[2], "c");
	assert_int_equal(g->grace_s, 45);
	assert_true(g->journal);
	assert_int_equal(g->client_idle_s, 300);
	/* file order, across another group's export in between */
	assert_int_equal(g->nexports, 2);
	assert_ptr_equal(g->exports[0], &c->exports[0]);
	assert_ptr_equal(g->exports[1], &c->exports[2]);

	g = &c->groups[1];
	assert_string_equal(g->name, "sg2");
	assert_int_equal(g->line, 27);
	assert_int_equal(g->nvips, 1);
	check_v6(&g->vips[0], "fd00::20");
	assert_int_equal(g->nnodes, 3);
	assert_string_equal(g->nodes[0], "b");
	assert_string_equal(g->nodes[2], "a");
	assert_int_equal(g->grace_s, 3600);
	assert_false(g->journal);
	assert_int_equal(g->client_idle_s, 0);
	assert_int_equal(g->nexports, 2);
	assert_ptr_equal(g->exports[0], &c->exports[1]);
	assert_ptr_equal(g->exports[1], &c->exports[5]);

	g = &c->groups[2];
	assert_string_equal(g->name, "sg3");
	assert_int_equal(g->nnodes, 1);
	assert_string_equal(g->nodes[0], "c");
	assert_int_equal(g->grace_s, 1);
	assert_int_equal(g->nexports, 1);
	assert_ptr_equal(g->exports[0], &c->exports[3]);

	g = &c->groups[3];
	assert_string_equal(g->name, "sg4");
	assert_int_equal(g->line, 39);
	assert_int_equal(g->nvips, 2);
	check_v4(&g->vips[0], "127.0.40.1");
	check_v6(&g->vips[1], "::1");
	assert_int_equal(g->nnodes, 2);
	assert_string_equal(g->nodes[0], "a");
	assert_string_equal(g->nodes[1], "c");
	assert_int_equal(g->client_idle_s, 600);
	assert_ptr_equal(cfg_group_find(c, "sg4"), g);
	assert_null(cfg_group_find(c, "sg5"));

	assert_int_equal(c->nexports, 6);
	e = &c->exports[0];
	assert_string_equal(e->path, "/srv/shared/sg1/home");
	assert_string_equal(e->group_name, "sg1");
	assert_ptr_equal(e->group, &c->groups[0]);
	assert_int_equal(e->fsid, 101);
	assert_true(e->rw);
	assert_int_equal(e->nclients, 1);
	check_net(&e->clients[0], AF_INET, "127.0.0.0", 8);
	assert_true(e->root_squash);
	assert_false(e->all_squash);
	assert_int_equal(e->anonuid, 65534);
	assert_int_equal(e->anongid, 65534);
	assert_false(e->secure);
	assert_int_equal(e->line, 44);

	e = &c->exports[1];
	assert_string_equal(e->path, "/srv/shared/sg2");
	assert_ptr_equal(e->group, &c->groups[1]);
	assert_int_equal(e->fsid, 201);
	assert_false(e->rw);
	assert_int_equal(e->nclients, 3);
	check_net(&e->clients[0], AF_INET, "10.0.0.0", 8);
	check_net(&e->clients[1], AF_INET6, "fd00::", 8);
	check_net(&e->clients[2], AF_INET, "192.168.1.7", 32);
	assert_false(e->root_squash);
	assert_false(e->all_squash);
	assert_int_equal(e->anonuid, 1000);
	assert_int_equal(e->anongid, 1001);
	assert_true(e->secure);
	assert_int_equal(e->line, 51);

	e = &c->exports[2];
	assert_string_equal(e->path, "/srv/shared/sg1/scratch");
	assert_ptr_equal(e->group, &c->groups[0]);
	assert_int_equal(e->fsid, 4294967295u);
	assert_true(e->rw);
	assert_int_equal(e->nclients, 1);
	check_net(&e->clients[0], AF_INET6, "::1", 128);
	assert_true(e->root_squash);
	assert_true(e->all_squash);
	assert_int_equal(e->anonuid, 0);
	assert_int_equal(e->anongid, 4294967294u);
	assert_false(e->secure);

	e = &c->exports[3];
	assert_int_equal(e->fsid, 1);
	assert_int_equal(e->nclients, 2);
	check_net(&e->clients[0], AF_INET, "0.0.0.0", 0);
	check_net(&e->clients[1], AF_INET6, "::", 0);

	e = &c->exports[5];
	assert_string_equal(e->path, "/srv/shared/sg2-sub");
	assert_int_equal(e->line, 81);

	assert_ptr_equal(cfg_export_by_fsid(c, 401), &c->exports[4]);
	assert_ptr_equal(cfg_export_by_fsid(c, 4294967295u), &c->exports[2]);
	assert_null(cfg_export_by_fsid(c, 0));
	assert_null(cfg_export_by_fsid(c, 402));
	assert_ptr_equal(cfg_export_by_path(c, "/srv/shared/sg1/scratch"), &c->exports[2]);
	assert_null(cfg_export_by_path(c, "/srv/shared/sg1/scratch/"));
	assert_null(cfg_export_by_path(c, "/srv/shared"));
	done(&r);
}

static void test_defaults(void **state)
{
	struct result r;

	(void)state;
	load("[cluster]\nname = t\n[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n"
	     "[export /]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_string_equal(r.c->run_dir, "/run/sgnfs");
	assert_int_equal(r.c->nfs_port, 2049);
	assert_int_equal(r.c->mount_port, 20048);
	assert_int_equal(r.c->pmap_port, 111);
	assert_int_equal(r.c->nlm_port, 4045);
	assert_int_equal(r.c->nsm_port, 662);
	assert_false(r.c->use_rpcbind);
	assert_int_equal(r.c->max_record, 1052672);
	assert_int_equal(r.c->max_conns, 1024);
	assert_int_equal(r.c->max_inflight_mb, 1024);
	assert_int_equal(r.c->max_inflight_mb_per_host, 64);
	assert_int_equal(r.c->idle_timeout_s, 300);
	assert_int_equal(r.c->watchdog_ms, 5000);
	assert_string_equal(r.c->log_level, "info");
	assert_int_equal(r.c->groups[0].grace_s, 45);
	assert_true(r.c->groups[0].journal);
	assert_int_equal(r.c->groups[0].client_idle_s, 300);
	assert_int_equal(r.c->ownership, CFG_OWN_LEASE);
	assert_int_equal(r.c->groups[0].ownership, CFG_OWN_LEASE);
	assert_false(r.c->journal_io_thread); /* io_uring */
	assert_int_equal(r.c->journal_inflight, 1);
	assert_true(r.c->journal_gather);     /* batches held for more callers */
	assert_true(r.c->loop_realtime);      /* the loop SCHED_FIFO (when allowed) */
	assert_int_equal(r.c->poll_spin_us, 0); /* the loop sleeps as soon as it is idle */
	assert_string_equal(r.c->exports[0].path, "/");
	assert_true(r.c->exports[0].rw);
	assert_true(r.c->exports[0].root_squash);
	assert_false(r.c->exports[0].all_squash);
	assert_int_equal(r.c->exports[0].anonuid, 65534);
	assert_int_equal(r.c->exports[0].anongid, 65534);
	assert_false(r.c->exports[0].secure);
	assert_ptr_equal(r.c->groups[0].exports[0], &r.c->exports[0]);
	done(&r);
}

/*
 * A group without `ownership` takes the cluster's, even when [cluster]
 * comes after it; a group's own setting wins either way.
 */
static void test_ownership(void **state)
{
	struct result r;

	(void)state;
	load("[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n"
	     "[group h]\nvip = 127.0.0.2\nnodes = a\nownership = lease\n"
	     "[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n"
	     "[export /h]\ngroup = h\nfsid = 8\nclients = 127.0.0.1\n"
	     "[cluster]\nname = t\nownership = managed\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_int_equal(r.c->ownership, CFG_OWN_MANAGED);
	assert_int_equal(r.c->groups[0].ownership, CFG_OWN_MANAGED);
	assert_int_equal(r.c->groups[1].ownership, CFG_OWN_LEASE);
	assert_string_equal(cfg_ownership_name(r.c->groups[0].ownership), "managed");
	done(&r);

	load("[cluster]\nname = t\n[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n"
	     "ownership = Managed\n[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_int_equal(r.c->ownership, CFG_OWN_LEASE);
	assert_int_equal(r.c->groups[0].ownership, CFG_OWN_MANAGED);
	/* defaults of the hardening keys */
	assert_int_equal(r.c->seccomp, SBX_ON);
	assert_int_equal(r.c->drc_entries, 16384);
	assert_int_equal(r.c->drc_entries_per_host, 1024);
	assert_int_equal(r.c->drc_ttl_s, 120);
	done(&r);

	load("[cluster]\nname = t\nseccomp = LOG\ndrc_entries = 0\n[node a]\n[group g]\n"
	     "vip = 127.0.0.1\nnodes = a\n[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n",
	     &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_int_equal(r.c->seccomp, SBX_LOG);
	assert_int_equal(r.c->drc_entries, 0);
	done(&r);

	/* journal_io: the thread pool on request. */
	load("[cluster]\nname = t\njournal_io = thread\n[node a]\n[group g]\nvip = 127.0.0.1\n"
	     "nodes = a\n[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_true(r.c->journal_io_thread);
	done(&r);

	/* journal_inflight: batches overlap on request; journal_gather off;
	 * the loop's busy polling at its bound. */
	load("[cluster]\nname = t\njournal_inflight = 2\njournal_gather = no\npoll_spin_us = 1000\n[node a]\n[group g]\nvip = 127.0.0.1\n"
	     "nodes = a\n[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_int_equal(r.c->journal_inflight, 2);
	assert_false(r.c->journal_gather);
	assert_int_equal(r.c->poll_spin_us, 1000);
	done(&r);

	/* loop_priority: the fair scheduler on request. */
	load("[cluster]\nname = t\nloop_priority = normal\n[node a]\n[group g]\nvip = 127.0.0.1\n"
	     "nodes = a\n[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_false(r.c->loop_realtime);
	done(&r);
}

/* ADDR[/PREFIX][@IFACE]: where sgnfsd places each VIP (cluster/vip.h). */
static void test_vip_iface(void **state)
{
	struct result r;
	const struct cfg_group *g;

	(void)state;
	load("[cluster]\nname = t\n[node a]\n[group g]\n"
	     "vip = 10.1.0.5/24@eth0 fd00::5/64@veth-a 127.0.0.9 10.1.0.6@eth0\nnodes = a\n"
	     "[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	g = &r.c->groups[0];
	assert_int_equal(g->nvips, 4);
	check_v4(&g->vips[0], "10.1.0.5");
	assert_string_equal(g->vip_ifs[0].ifname, "eth0");
	assert_int_equal(g->vip_ifs[0].prefix, 24);
	check_v6(&g->vips[1], "fd00::5");
	assert_string_equal(g->vip_ifs[1].ifname, "veth-a");
	assert_int_equal(g->vip_ifs[1].prefix, 64);
	check_v4(&g->vips[2], "127.0.0.9");
	assert_string_equal(g->vip_ifs[2].ifname, "");
	check_v4(&g->vips[3], "10.1.0.6");
	assert_int_equal(g->vip_ifs[3].prefix, 32); /* a host address by default */
	assert_true(cfg_manages_vips(r.c));
	done(&r);

	/* Managed: IPaddr2 places the VIPs, sgnfsd never does. */
	load("[cluster]\nname = t\nownership = managed\n[node a]\n[group g]\n"
	     "vip = 10.1.0.5/24@eth0\nnodes = a\n"
	     "[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_false(cfg_manages_vips(r.c));
	done(&r);

	/* Without an interface: nothing to place. */
	load("[cluster]\nname = t\n[node a]\n[group g]\nvip = 127.0.0.9 ::1\nnodes = a\n"
	     "[export /g]\ngroup = g\nfsid = 7\nclients = 127.0.0.1\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_int_equal(r.c->groups[0].vip_ifs[1].prefix, 128);
	assert_false(cfg_manages_vips(r.c));
	done(&r);
}

/* ---- one error at a time ------------------------------------------------- */

/* 2 lines */
#define CL "[cluster]\nname = t\n"
/* 8 lines: node a (3), group g (4), export /srv/g (7) */
#define REST "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n" \
	"[export /srv/g]\ngroup = g\nfsid = 1\nclients = 127.0.0.0/8\n"
/* 10 lines; the next line is 11 and still in [export /srv/g] */
#define BASE CL REST
/* 6 lines, ends inside [group g]; GEXP completes it */
#define GHEAD CL "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n"
#define GEXP "[export /srv/g]\ngroup = g\nfsid = 1\nclients = 127.0.0.0/8\n"
/* a second group h with an export, lines 11-17 after BASE: [group h] at 11 */
#define GROUP_H "[group h]\nvip = 127.0.0.2\nnodes = a\n"

struct error_case {
	const char *name;
	const char *text;
	int line;
	const char *msg;
};

static const struct error_case error_cases[] = {
	/* syntax and structure */
	{ "key outside section", "name = x\n" BASE, 1, "outside any section" },
	{ "no equals sign", BASE "fsid 2\n", 11, "expected 'key = value'" },
	{ "no key name", BASE "= 2\n", 11, "no key name" },
	{ "unterminated header", BASE "[export /srv/h\n", 11, "without ']'" },
	{ "text after header", BASE "[node b] x\n", 11, "text after" },
	{ "unknown section", BASE "[volume v]\n", 11, "unknown section [volume]" },
	{ "section case", BASE "[Node b]\n", 11, "unknown section [Node]" },
	{ "unknown key", BASE "colour = red\n", 11, "unknown key 'colour' in [export /srv/g]" },
	{ "key case", CL "Name = u\n" REST, 3, "unknown key 'Name' in [cluster]" },
	{ "duplicate key", CL "name = u\n" REST, 3, "duplicate key 'name' (first set at line 2)" },
	{ "empty value", CL "nsm_port =\n" REST, 3, "nsm_port needs a value" },

	/* [cluster] */
	{ "no cluster", REST, 1, "no [cluster] section" },
	{ "second cluster", BASE "[cluster]\n", 11, "second [cluster] section (the first is at line 1)" },
	{ "cluster with a name", BASE "[cluster x]\n", 11, "[cluster] takes no name" },
	{ "cluster without name", "[cluster]\nrun_dir = /x\n" REST, 1,
	  "[cluster]: missing required key 'name'" },
	{ "bad cluster name", "[cluster]\nname = a.b\n" REST, 2, "not a valid name" },
	{ "long cluster name", "[cluster]\nname = "
	  "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234\n" REST, 2,
	  "not a valid name" },
	{ "relative run_dir", CL "run_dir = run/sgnfs\n" REST, 3, "must be an absolute path" },
	{ "port 0", CL "nfs_port = 0\n" REST, 3, "nfs_port = 0 is out of range (1..65535)" },
	{ "port 65536", CL "mount_port = 65536\n" REST, 3, "out of range (1..65535)" },
	{ "negative port", CL "pmap_port = -1\n" REST, 3, "'-1': not a number" },
	{ "plus sign", CL "nlm_port = +45\n" REST, 3, "not a number" },
	{ "hex", CL "nsm_port = 0x10\n" REST, 3, "not a number" },
	{ "trailing junk", CL "nsm_port = 662x\n" REST, 3, "not a number" },
	{ "inner blank", CL "watchdog_ms = 5 000\n" REST, 3, "not a number" },
	{ "fraction", CL "idle_timeout = 1.5\n" REST, 3, "not a number" },
	{ "bad bool", CL "use_rpcbind = maybe\n" REST, 3, "expected yes or no" },
	{ "max_record low", CL "max_record = 8191\n" REST, 3, "out of range (8192..16777216)" },
	{ "max_record high", CL "max_record = 16777217\n" REST, 3, "out of range (8192..16777216)" },
	{ "huge number", CL "max_record = 99999999999999999999999\n" REST, 3, "out of range" },
	{ "max_conns 0", CL "max_conns = 0\n" REST, 3, "out of range" },
	{ "idle_timeout 0", CL "idle_timeout = 0\n" REST, 3, "out of range" },
	{ "poll_spin_us high", CL "poll_spin_us = 1001\n" REST, 3, "out of range (0..1000)" },
	{ "watchdog too small", CL "watchdog_ms = 99\n" REST, 3, "out of range (100..600000)" },
	{ "journal_inflight 0", CL "journal_inflight = 0\n" REST, 3, "out of range (1..2)" },
	{ "journal_inflight 3", CL "journal_inflight = 3\n" REST, 3, "out of range (1..2)" },
	{ "log level", CL "log_level = loud\n" REST, 3, "expected error, warn, info or debug" },

	/* [node] */
	{ "no nodes", CL, 1, "no [node NAME] section" },
	{ "bad node name", BASE "[node b!]\n", 11, "bad node name 'b!'" },
	{ "node name too long", BASE
	  "[node abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234]\n", 11,
	  "bad node name" },
	{ "node without name", BASE "[node]\n", 11, "[node] needs a name" },
	{ "second node", BASE "[node a]\n", 11, "second [node a] (the first is at line 3)" },
	{ "node address", BASE "[node b]\naddress = 10.0.0.0/8\n", 12, "is a network" },
	{ "node address junk", BASE "[node b]\naddress = b.example\n", 12,
	  "is not an IPv4 or IPv6 address" },
	{ "node key", BASE "[node b]\nport = 1\n", 12, "unknown key 'port' in [node b]" },

	/* [group] */
	{ "bad group name", BASE "[group g.1]\n", 11, "bad group name 'g.1'" },
	{ "second group", BASE "[group g]\n", 11, "second [group g] (the first is at line 4)" },
	{ "missing vip", CL "[node a]\n[group g]\nnodes = a\n" GEXP, 4,
	  "[group g]: missing required key 'vip'" },
	{ "missing nodes", CL "[node a]\n[group g]\nvip = 127.0.0.1\n" GEXP, 4,
	  "[group g]: missing required key 'nodes'" },
	{ "bad vip", CL "[node a]\n[group g]\nvip = 127.0.0.300\nnodes = a\n" GEXP, 5,
	  "vip '127.0.0.300' is not an IPv4 or IPv6 address" },
	{ "vip network", CL "[node a]\n[group g]\nvip = 10.0.0.0/8\nnodes = a\n" GEXP, 5,
	  "is a network" },
	{ "vip prefix 33", CL "[node a]\n[group g]\nvip = 10.0.0.5/33@eth0\nnodes = a\n" GEXP,
	  5, "prefix length 33 is too long" },
	{ "vip prefix 0", CL "[node a]\n[group g]\nvip = 10.0.0.5/0@eth0\nnodes = a\n" GEXP,
	  5, "bad prefix length '0'" },
	{ "vip prefix word", CL "[node a]\n[group g]\nvip = fd00::5/6x@eth0\nnodes = a\n" GEXP,
	  5, "bad prefix length '6x'" },
	{ "vip empty prefix", CL "[node a]\n[group g]\nvip = fd00::5/@eth0\nnodes = a\n" GEXP,
	  5, "bad prefix length ''" },
	{ "vip no iface", CL "[node a]\n[group g]\nvip = 10.0.0.5/24@\nnodes = a\n" GEXP,
	  5, "'' is not a valid interface name" },
	{ "vip long iface", CL "[node a]\n[group g]\nvip = 10.0.0.5@abcdefghijklmnop\n"
	  "nodes = a\n" GEXP, 5, "'abcdefghijklmnop' is not a valid interface name" },
	{ "vip iface slash", CL "[node a]\n[group g]\nvip = 10.0.0.5/24@eth0/1\nnodes = a\n"
	  GEXP, 5, "'eth0/1' is not a valid interface name" },
	{ "vip iface colon", CL "[node a]\n[group g]\nvip = 10.0.0.5@eth0:1\nnodes = a\n"
	  GEXP, 5, "'eth0:1' is not a valid interface name" },
	{ "vip iface dots", CL "[node a]\n[group g]\nvip = 10.0.0.5@..\nnodes = a\n"
	  GEXP, 5, "'..' is not a valid interface name" },
	{ "vip twice iface", CL "[node a]\n[group g]\nvip = 10.0.0.5/24@eth0 10.0.0.5@eth1\n"
	  "nodes = a\n" GEXP, 5, "vip 10.0.0.5 is listed twice" },
	{ "vip any", CL "[node a]\n[group g]\nvip = 0.0.0.0\nnodes = a\n" GEXP, 5,
	  "unspecified" },
	{ "vip any6", CL "[node a]\n[group g]\nvip = ::\nnodes = a\n" GEXP, 5, "unspecified" },
	{ "vip multicast", CL "[node a]\n[group g]\nvip = ff02::1\nnodes = a\n" GEXP, 5,
	  "multicast" },
	{ "vip multicast4", CL "[node a]\n[group g]\nvip = 239.1.1.1\nnodes = a\n" GEXP, 5,
	  "multicast" },
	{ "vip v4-mapped", CL "[node a]\n[group g]\nvip = ::ffff:127.0.0.1\nnodes = a\n" GEXP, 5,
	  "write it as IPv4" },
	{ "vip twice", CL "[node a]\n[group g]\nvip = 127.0.0.1 127.0.0.1\nnodes = a\n" GEXP,
	  5, "vip 127.0.0.1 is listed twice" },
	{ "vip twice v6", CL "[node a]\n[group g]\nvip = fd00::1 fd00:0::01\nnodes = a\n" GEXP,
	  5, "vip fd00::1 is listed twice" },
	{ "vip list empty", CL "[node a]\n[group g]\nvip = , ,\nnodes = a\n" GEXP, 5,
	  "vip needs at least one address" },
	{ "vip of another group", BASE GROUP_H "[export /srv/h]\ngroup = h\nfsid = 2\nclients = ::1\n"
	  "[group i]\nvip = fd00::9 127.0.0.2\nnodes = a\n"
	  "[export /srv/i]\ngroup = i\nfsid = 3\nclients = ::1\n", 19,
	  "vip 127.0.0.2 is already a vip of group h (line 11)" },
	{ "unknown node", CL "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a z\n" GEXP, 6,
	  "group g: unknown node 'z' (there is no [node z])" },
	{ "node twice", CL "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a a\n" GEXP, 6,
	  "node a is listed twice" },
	{ "bad node in list", CL "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a b@c\n" GEXP, 6,
	  "bad node name 'b@c'" },
	{ "grace 0", GHEAD "grace = 0\n" GEXP, 7, "grace = 0 is out of range (1..3600)" },
	{ "grace 3601", GHEAD "grace = 3601\n" GEXP, 7, "out of range (1..3600)" },
	{ "journal", GHEAD "journal = sometimes\n" GEXP, 7, "expected yes or no" },
	{ "client_idle", GHEAD "client_idle = 604801\n" GEXP, 7, "out of range (0..604800)" },
	{ "ownership", GHEAD "ownership = pacemaker\n" GEXP, 7,
	  "ownership = 'pacemaker': expected lease or managed" },
	{ "cluster ownership", "[cluster]\nname = t\nownership = crm\n" REST, 3,
	  "expected lease or managed" },
	{ "journal_io", "[cluster]\nname = t\njournal_io = aio\n" REST, 3,
	  "journal_io = 'aio': expected uring or thread" },
	{ "loop_priority", "[cluster]\nname = t\nloop_priority = high\n" REST, 3,
	  "loop_priority = 'high': expected realtime or normal" },
	{ "seccomp", "[cluster]\nname = t\nseccomp = strict\n" REST, 3,
	  "seccomp = 'strict': expected on, log or off" },
	{ "drc_ttl", "[cluster]\nname = t\ndrc_ttl = 0\n" REST, 3, "out of range (1..86400)" },
	{ "group key", GHEAD "owner = a\n" GEXP, 7, "unknown key 'owner' in [group g]" },
	{ "group without export", BASE GROUP_H, 11,
	  "group h has no [export]" },

	/* [export] */
	{ "export without path", BASE "[export]\n", 11, "[export] needs a path" },
	{ "relative path", BASE "[export srv/h]\n", 11, "must be absolute" },
	{ "dotdot", BASE "[export /srv/../h]\n", 11, "'.' or '..'" },
	{ "dot", BASE "[export /srv/./h]\n", 11, "'.' or '..'" },
	{ "trailing dot", BASE "[export /srv/h/.]\n", 11, "'.' or '..'" },
	{ "double slash", BASE "[export /srv//h]\n", 11, "must not contain '//'" },
	{ "trailing slash", BASE "[export /srv/h/]\n", 11, "must not end with '/'" },
	{ "second export", BASE "[export /srv/g]\n", 11,
	  "second [export /srv/g] (the first is at line 7)" },
	{ "missing group", BASE "[export /srv/h]\nfsid = 2\nclients = ::1\n", 11,
	  "[export /srv/h]: missing required key 'group'" },
	{ "missing fsid", BASE "[export /srv/h]\ngroup = g\nclients = ::1\n", 11,
	  "[export /srv/h]: missing required key 'fsid'" },
	{ "missing clients", BASE "[export /srv/h]\ngroup = g\nfsid = 2\n", 11,
	  "[export /srv/h]: missing required key 'clients'" },
	{ "unknown group", BASE "[export /srv/h]\ngroup = nosuch\nfsid = 2\nclients = ::1\n", 12,
	  "export /srv/h: unknown group 'nosuch' (there is no [group nosuch])" },
	{ "bad group ref", BASE "[export /srv/h]\ngroup = g h\nfsid = 2\nclients = ::1\n", 12,
	  "not a valid name" },
	{ "fsid 0", BASE "[export /srv/h]\ngroup = g\nfsid = 0\nclients = ::1\n", 13,
	  "fsid = 0 is out of range (1..4294967295)" },
	{ "fsid 2^32", BASE "[export /srv/h]\ngroup = g\nfsid = 4294967296\nclients = ::1\n", 13,
	  "out of range (1..4294967295)" },
	{ "fsid used", BASE "[export /srv/h]\ngroup = g\nfsid = 1\nclients = ::1\n", 13,
	  "fsid 1 is already the fsid of export /srv/g (line 7)" },
	{ "access", BASE "access = rx\n", 11, "expected rw or ro" },
	{ "squash", BASE "squash = some\n", 11, "expected root, none or all" },
	{ "anonuid", BASE "anonuid = 4294967295\n", 11, "out of range (0..4294967294)" },
	{ "anongid", BASE "anongid = -1\n", 11, "not a number" },
	{ "secure", BASE "secure = 2\n", 11, "expected yes or no" },
	{ "host bits v4", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = 10.0.0.1/8\n", 14,
	  "'10.0.0.1/8': host bits set beyond /8; use 10.0.0.0/8" },
	{ "host bits v6", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = fe80::1/10\n", 14,
	  "use fe80::/10" },
	{ "prefix 33", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = 10.0.0.0/33\n", 14,
	  "bad prefix length '/33' (0..32)" },
	{ "prefix 129", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = ::/129\n", 14,
	  "bad prefix length '/129' (0..128)" },
	{ "empty prefix", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = ::1 10.0.0.0/\n", 14,
	  "bad prefix length" },
	{ "hostname client", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = client.example\n",
	  14, "'client.example': not an IPv4 or IPv6 address" },
	{ "empty client list", BASE "[export /srv/h]\ngroup = g\nfsid = 2\nclients = ,\n", 14,
	  "clients needs at least one address" },
	{ "no space before comment", BASE "[export /srv/h]\ngroup = g\nfsid = 2\n"
	  "clients = ::1;note\n", 14, "'::1;note'" },
	{ "nested in the same group (would reach .sgnfs/ of a later one's parent)",
	  BASE "[export /srv/g/sub]\ngroup = g\nfsid = 2\nclients = ::1\n", 11,
	  "export /srv/g/sub (group g) is inside export /srv/g (group g, line 7); exports must not nest" },
	{ "nested in another group", BASE GROUP_H
	  "[export /srv/g/sub]\ngroup = h\nfsid = 2\nclients = ::1\n", 14,
	  "export /srv/g/sub (group h) is inside export /srv/g (group g, line 7)" },
	{ "around another group", BASE GROUP_H
	  "[export /srv]\ngroup = h\nfsid = 2\nclients = ::1\n", 14,
	  "export /srv (group h) is around export /srv/g (group g, line 7)" },
	{ "root around another group", BASE GROUP_H
	  "[export /]\ngroup = h\nfsid = 2\nclients = ::1\n", 14,
	  "export / (group h) is around export /srv/g" },
};

static void test_each_error(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *ec = &error_cases[i];
		struct want w = { ec->line, ec->msg };
		struct result r;

		load(ec->text, &r);
		check_errors(ec->name, &r, &w, 1);
		done(&r);
	}
}

/* Valid neighbours of the error cases above: they must load. */
static void test_near_misses(void **state)
{
	static const char *const good[] = {
		/* a sibling whose name starts with another export's: not nested */
		BASE GROUP_H "[export /srv/gg]\ngroup = h\nfsid = 2\nclients = ::1\n",
		/* a second export of the same group beside the first */
		BASE "[export /srv/g2]\ngroup = g\nfsid = 2\nclients = ::1\n",
		/* names at the limit: 63 characters */
		BASE "[node abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij_-9]\n",
		/* booleans in every spelling, numbers at their limits */
		CL "use_rpcbind = TRUE\nnfs_port = 65535\nmax_record = 8192\n"
		   "watchdog_ms = 600000\n" REST "secure = On\n",
		CL "use_rpcbind = 0\nmax_conns = 1000000\nidle_timeout = 86400\n" REST
		   "secure = false\nanonuid = 007\n",
		/* a file whose last line has no newline */
		BASE "squash = none",
		/* empty sections are fine, and so is a group declared after its export */
		CL "[node a]\n[export /srv/g]\ngroup = g\nfsid = 1\nclients = ::1\n"
		   "[group g]\nvip = 127.0.0.1\nnodes = a\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct result r;
		load(good[i], &r);
		if (r.rc != 0 || *r.errs)
			fail_msg("good case %zu: rc %d:\n%s", i, r.rc, r.errs);
		done(&r);
	}
}

/* ---- several errors in one file ----------------------------------------- */

static void test_many_errors(void **state)
{
	static const char text[] =
		"[cluster]\n"                                 /* 1 */
		"nfs_port = 0\n"                              /* 2: range */
		"bogus = 1\n"                                 /* 3: unknown key */
		"[node a]\n"                                  /* 4 */
		"[node a]\n"                                  /* 5: second node */
		"address = junk\n"                            /* 6: ignored (bad section) */
		"[group g]\n"                                 /* 7: no export */
		"vip = 127.0.0.1 fd00::/8\n"                  /* 8: network as vip */
		"nodes = a b\n"                               /* 9: unknown node b */
		"grace = 0\n"                                 /* 10: range */
		"grace = 45\n"                                /* 11: duplicate */
		"; "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"\n"                                          /* 12: too long */
		"[export /data/x/]\n"                         /* 13: trailing slash */
		"group = g\n"                                 /* 14: ignored */
		"[export /data/y]\n"                          /* 15 */
		"group = nope\n"                              /* 16: unknown group */
		"fsid = 5\n"                                  /* 17 */
		"clients = 10.0.0.1/8, 10.0.0.0/8 ::1/64\n"   /* 18: two host-bit errors */
		"[export /data/z]\n"                          /* 19: missing fsid */
		"group = g\n"                                 /* 20 */
		"clients = ::1\n"                             /* 21 */
		"[export /data/w]\n"                          /* 22 */
		"group = g\n"                                 /* 23 */
		"fsid = 5\n"                                  /* 24: fsid used */
		"clients = ::1\n"                             /* 25 */
		"junk\n";                                     /* 26: syntax */
	/* in line order, whichever pass found them */
	static const struct want w[] = {
		{ 1, "[cluster]: missing required key 'name'" },
		{ 2, "nfs_port = 0 is out of range" },
		{ 3, "unknown key 'bogus'" },
		{ 5, "second [node a] (the first is at line 4)" },
		{ 8, "vip 'fd00::/8' is a network" },
		{ 9, "group g: unknown node 'b'" },
		{ 10, "grace = 0 is out of range" },
		{ 11, "duplicate key 'grace' (first set at line 10)" },
		{ 12, "line too long" },
		{ 13, "must not end with '/'" },
		{ 16, "export /data/y: unknown group 'nope'" },
		{ 18, "'10.0.0.1/8': host bits set beyond /8; use 10.0.0.0/8" },
		{ 18, "'::1/64': host bits set beyond /64; use ::/64" },
		{ 19, "[export /data/z]: missing required key 'fsid'" },
		{ 24, "fsid 5 is already the fsid of export /data/y (line 15)" },
		{ 26, "expected 'key = value'" },
	};
	struct result r;

	(void)state;
	load(text, &r);
	check_errors("many", &r, w, sizeof(w) / sizeof(w[0]));
	done(&r);

	/* No stream: the same result, nothing printed anywhere. */
	{
		struct cfg_cluster *c = (struct cfg_cluster *)1;
		char path[] = "/tmp/test_config.XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
		close(fd);
		assert_int_equal(cfg_load(path, NULL, &c), -EINVAL);
		assert_null(c);
		unlink(path);
	}
}

/* A missing [cluster] and no nodes; the group's nodes are all unknown. */
static void test_empty_and_skeletal(void **state)
{
	static const struct want w_empty[] = {
		{ 1, "no [cluster] section" },
		{ 1, "no [node NAME] section" },
	};
	static const struct want w_group[] = {
		{ 1, "no [node NAME] section" },
		{ 1, "group g has no [export]" },
		{ 3, "unknown node 'a'" },
	};
	struct result r;

	(void)state;
	load("", &r);
	check_errors("empty", &r, w_empty, 2);
	done(&r);
	load("; only a comment\n\n", &r);
	check_errors("comment only", &r, w_empty, 2);
	done(&r);
	load("[group g]\nvip = 127.0.0.1\nnodes = a\n[cluster]\nname = x\n", &r);
	check_errors("group only", &r, w_group, 3);
	done(&r);
}

/* ---- lines and comments --------------------------------------------------- */

static void test_comments_and_lines(void **state)
{
	static const char text[] =
		"\xEF\xBB\xBF# a UTF-8 BOM, then hash and semicolon comment lines\r\n"
		"; comment\r\n"
		"  [cluster]   ; header comment\r\n"
		"  name = demo ; the name\r\n"
		"\trun_dir = /run/x  # hash comment after a value\n"
		"[node a] # header comment\n"
		"[ node b ]\n"
		"[group g]\n"
		"   vip = 127.0.0.1\t; tab before the comment\n"
		"   nodes = a b\n"          /* indented: not a continuation of vip */
		"   grace = 30;\n"          /* ';' right after a value is not a comment... */
		"[export /srv/a;b#c]\n"     /* ...nor inside a path */
		"group=g\n"
		"fsid=9;x\n"
		"clients =127.0.0.1 ::1 ;\n";
	static const struct want w[] = {
		{ 11, "grace = '30;': not a number" },
		{ 14, "fsid = '9;x': not a number" },
	};
	struct result r;

	(void)state;
	load(text, &r);
	check_errors("comments", &r, w, 2);
	done(&r);

	/* The same without the two bad values loads, with the values stripped. */
	load("\xEF\xBB\xBF[cluster]\r\n  name = demo ; the name\r\n"
	     "\trun_dir = /run/x  # c\n[node a] # c\n[ node b ]\n[group g]\n"
	     "   vip = 127.0.0.1\t; c\n   nodes = a b\n   grace = 30\n"
	     "[export /srv/a;b#c]\ngroup=g\nfsid=9\nclients =127.0.0.1 ::1 ;\n", &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_string_equal(r.c->name, "demo");
	assert_string_equal(r.c->run_dir, "/run/x");
	assert_int_equal(r.c->nnodes, 2);
	assert_string_equal(r.c->nodes[1].name, "b");
	assert_int_equal(r.c->groups[0].nvips, 1);
	assert_int_equal(r.c->groups[0].nnodes, 2);
	assert_int_equal(r.c->groups[0].grace_s, 30);
	assert_string_equal(r.c->exports[0].path, "/srv/a;b#c");
	assert_int_equal(r.c->exports[0].fsid, 9);
	assert_int_equal(r.c->exports[0].nclients, 2);
	done(&r);
}

/* A long export path (inih alone would cut section names at 49 bytes). */
static void test_long_path(void **state)
{
	char text[1024], path[200];
	struct result r;

	(void)state;
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[180] = '\0'; /* "[export " + 180 + "]" = 189 characters */
	snprintf(text, sizeof(text), CL "[node a]\n[group g]\nvip = 127.0.0.1\nnodes = a\n"
		 "[export %s]\ngroup = g\nfsid = 1\nclients = ::1\n", path);
	load(text, &r);
	if (r.rc != 0)
		fail_msg("rc %d:\n%s", r.rc, r.errs);
	assert_string_equal(r.c->exports[0].path, path);
	done(&r);
}

/*
 * inih's buffer holds 197 characters (INI_MAX_LINE 200 less "\r\n\0"):
 * 197 loads, 198 is an error, and lines after a long one keep their numbers.
 */
static void test_line_limit(void **state)
{
	static const struct want w[] = {
		{ 11, "line too long (198 characters, at most 197)" },
		{ 12, "line too long (5000 characters, at most 197)" },
		{ 13, "secure = 'perhaps'" },
	};
	static char text[8192];
	struct result r;
	char *p;

	(void)state;
	p = text + sprintf(text, BASE "squash = root ; ");
	memset(p, 'x', 197 - strlen("squash = root ; "));
	strcpy(p + 197 - strlen("squash = root ; "), "\n");
	load(text, &r);
	if (r.rc != 0)
		fail_msg("197 characters: rc %d:\n%s", r.rc, r.errs);
	done(&r);

	p = text + strlen(text) - 1;  /* the '\n': make the line 198 long */
	p += sprintf(p, "x\n");
	memset(p, ';', 5000);
	strcpy(p + 5000, "\nsecure = perhaps\n");
	load(text, &r);
	check_errors("long lines", &r, w, 3);
	done(&r);
}

static void test_nul_byte(void **state)
{
	static const char text[] = BASE "squash\0 = none\n" "secure = perhaps\n";
	static const struct want w[] = {
		{ 11, "NUL byte" },
		{ 12, "expected yes or no" },
	};
	struct result r;

	(void)state;
	load_len(text, sizeof(text) - 1, &r);
	check_errors("nul", &r, w, 2);
	done(&r);
}

static void test_unreadable(void **state)
{
	struct cfg_cluster *c = (struct cfg_cluster *)1;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(cfg_load("/nonexistent/sgnfs.ini", m, &c), -ENOENT);
	assert_null(c);
	c = (struct cfg_cluster *)1;
	assert_int_equal(cfg_load("/tmp", m, &c), -EISDIR);
	assert_null(c);
	fclose(m);
	/* The caller reports these: nothing was printed. */
	assert_string_equal(buf, "");
	free(buf);
	cfg_free(NULL);
}

/* ---- networks --------------------------------------------------------------- */

static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(1023);
	} else {
		assert_int_equal(inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

static bool match(const char *net, const char *addr)
{
	struct cfg_net n;
	struct sockaddr_storage ss = sa(addr);

	if (cfg_net_parse(net, &n) != 0)
		fail_msg("cannot parse %s", net);
	return cfg_net_match(&n, (struct sockaddr *)&ss);
}

static void test_net_parse(void **state)
{
	static const char *const bad[] = {
		"", "/8", "1.2.3", "1.2.3.4.5", "256.0.0.0", "1.2.3.4/", "1.2.3.4/33",
		"1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/ 8", "1.2.3.4/8x", "1.2.3.4/0008",
		"10.0.0.1/8", "11.0.0.0/7", "0.0.0.1/0", "::1/0", "::/129", "fe80::1/10",
		"1.2.3.4 ", " 1.2.3.4", "fe80::1%lo", "example.com", "::1/128/1",
		"0123:4567:89ab:cdef:0123:4567:89ab:cdef:1",
	};
	struct cfg_net n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_net_parse(bad[i], &n) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);

	assert_int_equal(cfg_net_parse("0.0.0.0/0", &n), 0);
	check_net(&n, AF_INET, "0.0.0.0", 0);
	assert_int_equal(cfg_net_parse("10.1.2.3", &n), 0);
	check_net(&n, AF_INET, "10.1.2.3", 32);
	assert_int_equal(cfg_net_parse("10.1.2.3/32", &n), 0);
	check_net(&n, AF_INET, "10.1.2.3", 32);
	assert_int_equal(cfg_net_parse("10.128.0.0/9", &n), 0);
	check_net(&n, AF_INET, "10.128.0.0", 9);
	assert_int_equal(cfg_net_parse("192.168.0.0/016", &n), 0);
	check_net(&n, AF_INET, "192.168.0.0", 16);
	assert_int_equal(cfg_net_parse("::/0", &n), 0);
	check_net(&n, AF_INET6, "::", 0);
	assert_int_equal(cfg_net_parse("::1", &n), 0);
	check_net(&n, AF_INET6, "::1", 128);
	assert_int_equal(cfg_net_parse("::1/128", &n), 0);
	check_net(&n, AF_INET6, "::1", 128);
	assert_int_equal(cfg_net_parse("fe80::/10", &n), 0);
	check_net(&n, AF_INET6, "fe80::", 10);
	assert_int_equal(cfg_net_parse("::ffff:10.0.0.0/104", &n), 0);
	check_net(&n, AF_INET6, "::ffff:10.0.0.0", 104);
	assert_int_equal(cfg_net_parse("0123:4567:89ab:cdef:0123:4567:89ab:cdef", &n), 0);
	assert_int_equal(n.prefix, 128);
}

static void test_net_match(void **state)
{
	struct cfg_net n;
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	/* /0 */
	assert_true(match("0.0.0.0/0", "1.2.3.4"));
	assert_true(match("0.0.0.0/0", "255.255.255.255"));
	assert_true(match("0.0.0.0/0", "::ffff:1.2.3.4"));
	assert_false(match("0.0.0.0/0", "::1"));
	assert_true(match("::/0", "::1"));
	assert_true(match("::/0", "2001:db8::1"));
	assert_true(match("::/0", "1.2.3.4")); /* as ::ffff:1.2.3.4 */
	/* /32 and /128: one host */
	assert_true(match("10.1.2.3/32", "10.1.2.3"));
	assert_false(match("10.1.2.3/32", "10.1.2.2"));
	assert_false(match("10.1.2.3/32", "10.1.2.4"));
	assert_true(match("10.1.2.3", "::ffff:10.1.2.3"));
	assert_true(match("::1/128", "::1"));
	assert_false(match("::1/128", "::2"));
	assert_false(match("::1", "::"));
	assert_false(match("::1", "127.0.0.1"));
	/* a prefix that ends inside a byte */
	assert_false(match("10.128.0.0/9", "10.127.255.255"));
	assert_true(match("10.128.0.0/9", "10.128.0.0"));
	assert_true(match("10.128.0.0/9", "10.255.255.255"));
	assert_false(match("10.128.0.0/9", "11.128.0.0"));
	assert_true(match("10.1.2.2/31", "10.1.2.3"));
	assert_false(match("10.1.2.2/31", "10.1.2.4"));
	assert_true(match("128.0.0.0/1", "255.0.0.1"));
	assert_false(match("128.0.0.0/1", "127.255.255.255"));
	assert_true(match("fe80::/10", "fe80::1"));
	assert_true(match("fe80::/10", "febf:ffff::1"));
	assert_false(match("fe80::/10", "fec0::1"));
	/* v4-mapped both ways */
	assert_true(match("127.0.0.0/8", "::ffff:127.9.9.9"));
	assert_false(match("127.0.0.0/8", "::ffff:128.0.0.1"));
	assert_false(match("127.0.0.0/8", "::127.0.0.1"));  /* v4-compatible, not mapped */
	assert_false(match("127.0.0.0/8", "fd00::ffff:127.0.0.1"));
	assert_true(match("::ffff:10.0.0.0/104", "10.1.2.3"));
	assert_false(match("::ffff:10.0.0.0/104", "11.1.2.3"));
	assert_true(match("::ffff:0.0.0.0/96", "192.0.2.1"));
	/* families that never match */
	assert_int_equal(cfg_net_parse("0.0.0.0/0", &n), 0);
	assert_false(cfg_net_match(&n, (struct sockaddr *)&un));
	assert_int_equal(cfg_net_parse("::/0", &n), 0);
	assert_false(cfg_net_match(&n, (struct sockaddr *)&un));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ownership),
		cmocka_unit_test(test_vip_iface),
		cmocka_unit_test(test_each_error),
		cmocka_unit_test(test_near_misses),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_empty_and_skeletal),
		cmocka_unit_test(test_comments_and_lines),
		cmocka_unit_test(test_long_path),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
