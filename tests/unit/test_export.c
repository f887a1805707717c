/*
 * test_export.c - export access rules: client networks (IPv4, IPv6,
 * v4-mapped), the secure-port rule, ro/rw, and squashing (root, all,
 * none, AUTH_NONE, the (uid_t)-1 trap).  The pure rules are tested
 * directly; then the real handlers are called (no transport) on a
 * temporary tree to see the rules applied end to end: refused clients get
 * ACCES on MOUNT and NFS, a read-only export gives ROFS, squashed files
 * belong to anonuid, and a handle of another group's export is stale.
 * The handler tests need root and are skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <cmocka.h>

#include "config/config.h"
#include "group/gslot.h"
#include "mount.h"
#include "nfs/export.h"
#include "nfs/fh.h"
#include "hkey.h"
#include "nfs/nfs.h"
#include "nfs/nfs_int.h"
#include "nfs3.h"

static struct sockaddr_storage addr(const char *s, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
	}
	return ss;
}

static struct cfg_net net(const char *s)
{
	struct cfg_net n;

	assert_int_equal(cfg_net_parse(s, &n), 0);
	return n;
}

static void test_client_networks(void **st)
{
	struct cfg_net nets[3] = { net("10.0.0.0/8"), net("127.0.0.1"), net("fd00::/16") };
	struct cfg_export e;
	struct sockaddr_storage a;

	(void)st;
	memset(&e, 0, sizeof(e));
	e.clients = nets;
	e.nclients = 3;
	a = addr("10.1.2.3", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	a = addr("11.0.0.1", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_ADDRESS);
	a = addr("127.0.0.1", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	a = addr("127.0.0.2", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_ADDRESS);
	/* An IPv4 client seen on a dual-stack socket. */
	a = addr("::ffff:10.9.9.9", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	a = addr("fd00:1::5", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	a = addr("::1", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_ADDRESS);
	/* No networks: nobody. */
	e.nclients = 0;
	a = addr("10.1.2.3", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_ADDRESS);
	assert_non_null(exp_verdict_str(EXP_DENY_ADDRESS));
}

static void test_secure_port(void **st)
{
	struct cfg_net nets[1] = { net("0.0.0.0/0") };
	struct cfg_export e;
	struct sockaddr_storage a;

	(void)st;
	memset(&e, 0, sizeof(e));
	e.clients = nets;
	e.nclients = 1;
	a = addr("192.0.2.1", 40000);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	e.secure = true;
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_PORT);
	a = addr("192.0.2.1", 1024);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_PORT);
	a = addr("192.0.2.1", 1023);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	a = addr("192.0.2.1", 1);
	assert_int_equal(exp_check_client(&e, &a), EXP_ALLOWED);
	/* The address rule comes first. */
	a = addr("::1", 800);
	assert_int_equal(exp_check_client(&e, &a), EXP_DENY_ADDRESS);
}

static struct rpc_cred sys_cred(uint32_t uid, uint32_t gid, uint32_t n, const uint32_t *g)
{
	struct rpc_cred c;

	memset(&c, 0, sizeof(c));
	c.flavor = AUTH_SYS;
	c.uid = uid;
	c.gid = gid;
	c.ngids = n;
	for (uint32_t i = 0; i < n; i++)
		c.gids[i] = g[i];
	return c;
}

static void test_squash(void **st)
{
	struct cfg_export e;
	struct nfs_ident id;
	const uint32_t g[3] = { 0, 5, 0xffffffff };
	struct rpc_cred c;

	(void)st;
	memset(&e, 0, sizeof(e));
	e.anonuid = 65534;
	e.anongid = 65533;

	/* squash = root */
	e.root_squash = true;
	c = sys_cred(0, 0, 3, g);
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 65534);
	assert_int_equal(id.gid, 65533);
	assert_int_equal(id.ngids, 3);
	assert_int_equal(id.gids[0], 65533);   /* group 0 goes too */
	assert_int_equal(id.gids[1], 5);
	assert_int_equal(id.gids[2], 65533);   /* -1 is never passed on */
	c = sys_cred(1000, 100, 1, g + 1);
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 1000);
	assert_int_equal(id.gid, 100);
	assert_int_equal(id.ngids, 1);
	assert_int_equal(id.gids[0], 5);

	/* squash = none: root stays root */
	e.root_squash = false;
	c = sys_cred(0, 0, 1, g);
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 0);
	assert_int_equal(id.gid, 0);
	assert_int_equal(id.gids[0], 0);
	/* ... but (uid_t)-1, "no change" to the kernel, is anonymous. */
	c = sys_cred(0xffffffff, 0xffffffff, 0, g);
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 65534);
	assert_int_equal(id.gid, 65533);

	/* squash = all */
	e.root_squash = e.all_squash = true;
	c = sys_cred(1000, 100, 2, g);
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 65534);
	assert_int_equal(id.gid, 65533);
	assert_int_equal(id.ngids, 0);

	/* AUTH_NONE is anonymous whatever the squash. */
	e.root_squash = e.all_squash = false;
	memset(&c, 0, sizeof(c));
	c.flavor = AUTH_NONE;
	exp_map_cred(&e, &c, &id);
	assert_int_equal(id.uid, 65534);
	assert_int_equal(id.gid, 65533);
	assert_int_equal(id.ngids, 0);
}

/* ---- the rules applied by the real handlers (root only) --------------- */

enum { EX_RW, EX_RO, EX_ALL, EX_NONE, EX_SECURE, EX_OTHER, NEX };
static char base[256], paths[NEX][300];
static struct cfg_net lo_net, any_net;
static struct cfg_export cex[NEX];
static struct cfg_export *gex[NEX];
static struct cfg_group cg, cg_other;
static struct nfs_group *ng, *ng_other;
static struct grp_pub sg, sg_other;

static int setup_tree(void **st)
{
	(void)st;
	if (geteuid() != 0)
		return 0;
	/* Handles are signed: any key will do for a test. */
	{
		static const struct hk_set ks = { .cur = { 0x5e } };

		fh_keys_install(&ks);
	}
	snprintf(base, sizeof(base), "/var/tmp/test_export.XXXXXX");
	assert_non_null(mkdtemp(base));
	lo_net = net("127.0.0.0/8");
	any_net = net("0.0.0.0/0");
	for (int i = 0; i < NEX; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/e%d", base, i);
		assert_int_equal(mkdir(paths[i], 0777), 0);
		assert_int_equal(chmod(paths[i], 01777), 0);
		memset(&cex[i], 0, sizeof(cex[i]));
		cex[i].path = paths[i];
		cex[i].fsid = 500 + (uint32_t)i;
		cex[i].rw = i != EX_RO;
		cex[i].clients = i == EX_SECURE ? &any_net : &lo_net;
		cex[i].nclients = 1;
		cex[i].root_squash = i != EX_NONE;
		cex[i].all_squash = i == EX_ALL;
		cex[i].secure = i == EX_SECURE;
		cex[i].anonuid = 4242;
		cex[i].anongid = 4343;
		gex[i] = &cex[i];
	}
	/* One group with every export but the last; the last is another
	 * group's. */
	cg.name = "g1";
	cg.exports = gex;
	cg.nexports = EX_OTHER;
	cg_other.name = "g2";
	cg_other.exports = &gex[EX_OTHER];
	cg_other.nexports = 1;
	assert_int_equal(nfs_group_open(NULL, &cg, &ng), 0);
	assert_int_equal(nfs_group_open(NULL, &cg_other, &ng_other), 0);
	sg.slot[GRP_PROTO_NFS] = ng;
	sg.cfg = &cg;
	sg_other.slot[GRP_PROTO_NFS] = ng_other;
	sg_other.cfg = &cg_other;
	return 0;
}

static int teardown_tree(void **st)
{
	char cmd[400];

	(void)st;
	if (geteuid() != 0)
		return 0;
	nfs_group_close(ng);
	nfs_group_close(ng_other);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Call procedure @proc of @prog version @vers as the transport would. */
static void call(const struct rpc_prog *prog, uint32_t vers, uint32_t proc,
		 struct grp_pub *g, const char *from, uint16_t port,
		 const struct rpc_cred *cred, void *args, void *res)
{
	struct rpc_req req;

	memset(&req, 0, sizeof(req));
	req.prog = prog->prog;
	req.vers = vers;
	req.proc = proc;
	req.pd = &prog->vers[vers - prog->vers_lo]->procs[proc];
	req.peer = addr(from, port);
	req.local = addr("127.0.77.1", 2049);
	req.is_tcp = true;
	req.svc_ctx = g;
	req.args = args;
	req.res = res;
	if (cred)
		req.cred = *cred;
	else
		req.cred = sys_cred(0, 0, 0, NULL);
	assert_non_null(req.pd->fn);
	assert_int_equal(req.pd->fn(&req), RPC_DONE_REPLY);
}

static nfs_fh3 root_fh(struct nfs_group *g, int i)
{
	nfs_fh3 fh;

	fh.data.data_val = (char *)g->exports[i].root_fh;
	fh.data.data_len = g->exports[i].root_fh_len;
	return fh;
}

static nfsstat3 getattr(struct grp_pub *g, nfs_fh3 fh, const char *from, uint16_t port)
{
	GETATTR3args a = { .object = fh };
	GETATTR3res r;

	memset(&r, 0, sizeof(r));
	call(&nfs3_prog, 3, NFSPROC3_GETATTR, g, from, port, NULL, &a, &r);
	xdr_free((xdrproc_t)xdr_GETATTR3res, (char *)&r);
	return r.status;
}

/* CREATE @name in export @i as @cred; returns the status, *@st the file. */
static nfsstat3 create(int i, const char *name, const struct rpc_cred *cred, struct stat *st)
{
	CREATE3args a;
	CREATE3res r;
	char p[400];
	nfsstat3 s;

	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	a.where.dir = root_fh(ng, i);
	a.where.name = (char *)name;
	a.how.mode = GUARDED;
	a.how.createhow3_u.obj_attributes.mode.set_it = TRUE;
	a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0640;
	call(&nfs3_prog, 3, NFSPROC3_CREATE, &sg, "127.0.0.9", 800, cred, &a, &r);
	s = r.status;
	if (s == NFS3_OK) {
		assert_true(r.CREATE3res_u.resok.obj.handle_follows);
		assert_true(r.CREATE3res_u.resok.dir_wcc.before.attributes_follow);
		assert_true(r.CREATE3res_u.resok.dir_wcc.after.attributes_follow);
	}
	xdr_free((xdrproc_t)xdr_CREATE3res, (char *)&r);
	snprintf(p, sizeof(p), "%s/%s", paths[i], name);
	if (st && s == NFS3_OK)
		assert_int_equal(lstat(p, st), 0);
	return s;
}

static void test_handlers_client_rules(void **st)
{
	(void)st;
	if (geteuid() != 0)
		skip();
	assert_int_equal(getattr(&sg, root_fh(ng, EX_RW), "127.0.0.9", 40000), NFS3_OK);
	/* The handle is no capability: the address must be allowed too. */
	assert_int_equal(getattr(&sg, root_fh(ng, EX_RW), "10.9.9.9", 40000), NFS3ERR_ACCES);
	assert_int_equal(getattr(&sg, root_fh(ng, EX_SECURE), "10.9.9.9", 40000), NFS3ERR_ACCES);
	assert_int_equal(getattr(&sg, root_fh(ng, EX_SECURE), "10.9.9.9", 1022), NFS3_OK);
	/* Another group's export is stale here, and fine on its own group. */
	assert_int_equal(getattr(&sg, root_fh(ng_other, 0), "127.0.0.9", 800), NFS3ERR_STALE);
	assert_int_equal(getattr(&sg_other, root_fh(ng_other, 0), "127.0.0.9", 800), NFS3_OK);
	assert_int_equal(getattr(&sg_other, root_fh(ng, EX_RW), "127.0.0.9", 800), NFS3ERR_STALE);
	/* Garbage. */
	{
		nfs_fh3 fh = { .data = { .data_len = 3, .data_val = (char *)"abc" } };

		assert_int_equal(getattr(&sg, fh, "127.0.0.9", 800), NFS3ERR_BADHANDLE);
		fh.data.data_len = 0;
		fh.data.data_val = NULL;
		assert_int_equal(getattr(&sg, fh, "127.0.0.9", 800), NFS3ERR_BADHANDLE);
	}
}

static void test_handlers_ro(void **st)
{
	struct rpc_cred c = sys_cred(1000, 1000, 0, NULL);
	WRITE3args wa;
	WRITE3res wr;
	char p[400];

	(void)st;
	if (geteuid() != 0)
		skip();
	assert_int_equal(create(EX_RO, "f", &c, NULL), NFS3ERR_ROFS);
	/* A file put there behind NFS's back: readable, not writable. */
	snprintf(p, sizeof(p), "%s/local", paths[EX_RO]);
	close(open(p, O_CREAT | O_WRONLY, 0666));
	{
		LOOKUP3args la;
		LOOKUP3res lr;

		memset(&lr, 0, sizeof(lr));
		la.what.dir = root_fh(ng, EX_RO);
		la.what.name = (char *)"local";
		call(&nfs3_prog, 3, NFSPROC3_LOOKUP, &sg, "127.0.0.9", 800, &c, &la, &lr);
		assert_int_equal(lr.status, NFS3_OK);
		memset(&wa, 0, sizeof(wa));
		memset(&wr, 0, sizeof(wr));
		wa.file = lr.LOOKUP3res_u.resok.object;
		wa.count = 1;
		wa.stable = FILE_SYNC;
		wa.data.data_len = 1;
		wa.data.data_val = (char *)"x";
		call(&nfs3_prog, 3, NFSPROC3_WRITE, &sg, "127.0.0.9", 800, &c, &wa, &wr);
		assert_int_equal(wr.status, NFS3ERR_ROFS);
		xdr_free((xdrproc_t)xdr_WRITE3res, (char *)&wr);
		assert_int_equal(getattr(&sg, lr.LOOKUP3res_u.resok.object, "127.0.0.9", 800), NFS3_OK);
		xdr_free((xdrproc_t)xdr_LOOKUP3res, (char *)&lr);
	}
	/* ACCESS never offers modification on a read-only export. */
	{
		ACCESS3args aa = { .object = root_fh(ng, EX_RO), .access = 0x3f };
		ACCESS3res ar;

		memset(&ar, 0, sizeof(ar));
		call(&nfs3_prog, 3, NFSPROC3_ACCESS, &sg, "127.0.0.9", 800, &c, &aa, &ar);
		assert_int_equal(ar.status, NFS3_OK);
		assert_int_equal(ar.ACCESS3res_u.resok.access & (ACCESS3_MODIFY | ACCESS3_EXTEND |
								 ACCESS3_DELETE), 0);
		assert_true(ar.ACCESS3res_u.resok.access & ACCESS3_LOOKUP);
		xdr_free((xdrproc_t)xdr_ACCESS3res, (char *)&ar);
	}
}

static void test_handlers_squash(void **st)
{
	struct rpc_cred root = sys_cred(0, 0, 0, NULL), user = sys_cred(1000, 1001, 0, NULL);
	struct stat sb;

	(void)st;
	if (geteuid() != 0)
		skip();
	/* squash = root: root's file belongs to anonuid; a user keeps its id. */
	assert_int_equal(create(EX_RW, "by_root", &root, &sb), NFS3_OK);
	assert_int_equal(sb.st_uid, 4242);
	assert_int_equal(sb.st_gid, 4343);
	assert_int_equal(sb.st_mode & 07777, 0640);   /* exact, whatever the umask */
	assert_int_equal(create(EX_RW, "by_user", &user, &sb), NFS3_OK);
	assert_int_equal(sb.st_uid, 1000);
	assert_int_equal(sb.st_gid, 1001);
	/* squash = none: root is root. */
	assert_int_equal(create(EX_NONE, "by_root", &root, &sb), NFS3_OK);
	assert_int_equal(sb.st_uid, 0);
	/* squash = all: everyone is anonymous. */
	assert_int_equal(create(EX_ALL, "by_user", &user, &sb), NFS3_OK);
	assert_int_equal(sb.st_uid, 4242);
	/* GUARDED on an existing name. */
	assert_int_equal(create(EX_ALL, "by_user", &user, NULL), NFS3ERR_EXIST);
	/* The thread's filesystem identity is root's again after each
	 * request ((uid_t)-1 reads it without changing it). */
	assert_int_equal(syscall(SYS_setfsuid, (uid_t)-1), 0);
	assert_int_equal(syscall(SYS_setfsgid, (gid_t)-1), 0);
	{
		char p[400];

		snprintf(p, sizeof(p), "%s/mine", paths[EX_RW]);
		assert_int_equal(mkdir(p, 0700), 0);   /* only possible with fs caps back */
		assert_int_equal(chown(p, 1, 1), 0);
	}
}

static mountstat3 mnt(struct grp_pub *g, const char *path, const char *from, mnt3_mountres *r)
{
	mnt3_dirpath a = (char *)path;

	memset(r, 0, sizeof(*r));
	call(&mount_prog, 3, MOUNTPROC3_MNT, g, from, 800, NULL, &a, r);
	return r->fhs_status;
}

static void test_mount_rules(void **st)
{
	mnt3_mountres r;
	mnt3_mountlist ml = NULL;
	mnt3_exports ex = NULL;
	char p[400];

	(void)st;
	if (geteuid() != 0)
		skip();
	assert_int_equal(mnt(&sg, paths[EX_RW], "127.0.0.9", &r), MNT3_OK);
	assert_int_equal(r.mnt3_mountres_u.mountinfo.fhandle.mnt3_fhandle_len,
			 ng->exports[EX_RW].root_fh_len);
	assert_memory_equal(r.mnt3_mountres_u.mountinfo.fhandle.mnt3_fhandle_val,
			    ng->exports[EX_RW].root_fh, ng->exports[EX_RW].root_fh_len);
	assert_int_equal(r.mnt3_mountres_u.mountinfo.auth_flavors.auth_flavors_len, 1);
	assert_int_equal(r.mnt3_mountres_u.mountinfo.auth_flavors.auth_flavors_val[0], AUTH_SYS);
	xdr_free((xdrproc_t)xdr_mnt3_mountres, (char *)&r);
	/* Extra slashes are the same path. */
	snprintf(p, sizeof(p), "/%s//./", paths[EX_RW]);
	assert_int_equal(mnt(&sg, p, "127.0.0.9", &r), MNT3_OK);
	xdr_free((xdrproc_t)xdr_mnt3_mountres, (char *)&r);
	/* Refused address, another group's export, nothing exported. */
	assert_int_equal(mnt(&sg, paths[EX_RW], "10.1.1.1", &r), MNT3ERR_ACCES);
	assert_int_equal(mnt(&sg, paths[EX_OTHER], "127.0.0.9", &r), MNT3ERR_ACCES);
	assert_int_equal(mnt(&sg_other, paths[EX_OTHER], "127.0.0.9", &r), MNT3_OK);
	xdr_free((xdrproc_t)xdr_mnt3_mountres, (char *)&r);
	assert_int_equal(mnt(&sg, "/", "127.0.0.9", &r), MNT3ERR_ACCES);
	assert_int_equal(mnt(&sg, "relative", "127.0.0.9", &r), MNT3ERR_INVAL);
	/* A subdirectory may be mounted; ".." and missing ones may not. */
	snprintf(p, sizeof(p), "%s/sub", paths[EX_RW]);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(mnt(&sg, p, "127.0.0.9", &r), MNT3_OK);
	xdr_free((xdrproc_t)xdr_mnt3_mountres, (char *)&r);
	snprintf(p, sizeof(p), "%s/sub/../../e%d", paths[EX_RW], EX_OTHER);
	assert_int_equal(mnt(&sg, p, "127.0.0.9", &r), MNT3ERR_INVAL);
	snprintf(p, sizeof(p), "%s/nope", paths[EX_RW]);
	assert_int_equal(mnt(&sg, p, "127.0.0.9", &r), MNT3ERR_NOENT);
	/* The first export holds the group's hidden state directory. */
	snprintf(p, sizeof(p), "%s/.sgnfs", paths[0]);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(mnt(&sg, p, "127.0.0.9", &r), MNT3ERR_NOENT);

	/* DUMP lists the mounts of this group only. */
	call(&mount_prog, 3, MOUNTPROC3_DUMP, &sg, "127.0.0.9", 800, NULL, NULL, &ml);
	assert_non_null(ml);
	assert_string_equal(ml->ml_hostname, "127.0.0.9");
	xdr_free((xdrproc_t)xdr_mnt3_mountlist, (char *)&ml);
	ml = NULL;
	call(&mount_prog, 1, MOUNTPROC3_UMNTALL, &sg, "127.0.0.9", 800, NULL, NULL, NULL);
	call(&mount_prog, 3, MOUNTPROC3_DUMP, &sg, "127.0.0.9", 800, NULL, NULL, &ml);
	assert_null(ml);
	/* EXPORT: this group's exports with their networks. */
	call(&mount_prog, 1, MOUNTPROC3_EXPORT, &sg, "127.0.0.9", 800, NULL, NULL, &ex);
	assert_non_null(ex);
	assert_string_equal(ex->ex_dir, paths[0]);
	assert_string_equal(ex->ex_groups->gr_name, "127.0.0.0/8");
	xdr_free((xdrproc_t)xdr_mnt3_exports, (char *)&ex);
	/* MNT only in version 3. */
	assert_null(mount_prog.vers[0]->procs[MOUNTPROC3_MNT].fn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_networks),
		cmocka_unit_test(test_secure_port),
		cmocka_unit_test(test_squash),
		cmocka_unit_test(test_handlers_client_rules),
		cmocka_unit_test(test_handlers_ro),
		cmocka_unit_test(test_handlers_squash),
		cmocka_unit_test(test_mount_rules),
	};

	return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
