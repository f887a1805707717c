/*
 * mount_svc.c - the MOUNT protocol (RFC 1813 appendix I), program 100005.
 *
 * MNT turns a path into the file handle a client starts from.  Only the
 * exports of the group whose address the request came to are visible: a
 * path exported by another group (even one this node serves) is refused,
 * so each group answers as if it were its own server.  A client may mount
 * an export or any directory below it (resolved with openat2 and
 * RESOLVE_BENEATH, so "..", symlinks and mount points cannot lead out).
 *
 * Versions.  Versions 1 and 2 carry NULL, DUMP, UMNT, UMNTALL and EXPORT
 * in exactly the version 3 format, and tools such as showmount still ask
 * version 1, so all three versions are served from one set of handlers.
 * MNT is answered only in version 3: the v1/v2 reply is a 32-byte NFSv2
 * handle for an NFSv2 server, and there is none here (PROC_UNAVAIL).
 *
 * Threads.  MNT may read the disk (a subdirectory) and is .blocking; the
 * other procedures only read the configuration and the mount list and run
 * on the loop.  The mount list is shared, so nfs_group guards it with a
 * mutex.  It is informational, as in every NFSv3 server (NFS itself is
 * stateless), lives in memory and is bounded (NFS_MOUNTLIST_MAX).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "config/config.h"
#include "log.h"
#include "mount.h"
#include "nfs/export.h"
#include "nfs/fh.h"
#include "nfs/nfs_int.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* The one mapping of internal results to MOUNT status codes. */
static mountstat3 mnt3_stat(int rc)
{
	switch (rc < 0 ? -rc : rc) {
	case 0:            return MNT3_OK;
	case EPERM:        return MNT3ERR_PERM;
	case ENOENT:       return MNT3ERR_NOENT;
	case EACCES:       return MNT3ERR_ACCES;
	case EXDEV:        return MNT3ERR_ACCES;   /* below a mount point we do not cross */
	case ENOTDIR:      return MNT3ERR_NOTDIR;
	case EINVAL:       return MNT3ERR_INVAL;
	case ELOOP:        return MNT3ERR_INVAL;
	case ENAMETOOLONG: return MNT3ERR_NAMETOOLONG;
	case EOPNOTSUPP:   return MNT3ERR_NOTSUPP;
	case ENOSYS:       return MNT3ERR_NOTSUPP;
	case EIO:          return MNT3ERR_IO;
	default:           return MNT3ERR_SERVERFAULT;
	}
}

/*
 * Canonical form of a client's path into @out: absolute, no empty or "."
 * components, no trailing '/'.  A ".." component is refused (-EINVAL)
 * rather than interpreted: the export lookup is textual.
 */
static int mnt_normalize(const char *in, char *out, size_t outsz)
{
	size_t o = 0;

	if (!in || in[0] != '/')
		return -EINVAL;
	while (*in) {
		const char *s;
		size_t n;

		while (*in == '/')
			in++;
		s = in;
		while (*in && *in != '/')
			in++;
		n = (size_t)(in - s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return -EINVAL;
		if (o + 1 + n + 1 > outsz)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, s, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

/* If @path is @root or below it, the rest ("" or "a/b") via *@rest. */
static bool mnt_under(const char *path, const char *root, const char **rest)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/') {
		*rest = path + 1;
		return true;
	}
	if (strncmp(path, root, n) != 0 || (path[n] != '\0' && path[n] != '/'))
		return false;
	*rest = path[n] ? path + n + 1 : path + n;
	return true;
}

/* The export of @ng that @path names or lies in (the deepest, if exports
 * nest); its configured path or real path may be used. */
static struct nfs_exp *mnt_find_export(struct nfs_group *ng, const char *path,
				       const char **rest)
{
	struct nfs_exp *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < ng->nexports; i++) {
		struct nfs_exp *e = &ng->exports[i];
		const char *roots[2] = { e->cfg->path, e->root_path };

		for (int j = 0; j < 2; j++) {
			const char *r;
			size_t len = strlen(roots[j]);

			if (mnt_under(path, roots[j], &r) && (!best || len > best_len)) {
				best = e;
				best_len = len;
				*rest = r;
			}
		}
	}
	return best;
}

/* Handle of directory @rest below export @e into @fh (malloc'ed). */
static int mnt_subdir_fh(const struct nfs_exp *e, const char *rest, mnt3_fhandle *fh)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	struct fh_key k;
	size_t n = strcspn(rest, "/");
	uint8_t *buf = NULL;
	int fd, mid, rc;

	if (!rest[0]) {
		buf = malloc(e->root_fh_len);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, e->root_fh, e->root_fh_len);
		fh->mnt3_fhandle_val = (char *)buf;
		fh->mnt3_fhandle_len = e->root_fh_len;
		return 0;
	}
	if (e->hide_state && n == strlen(NFS_STATE_DIR) &&
	    strncmp(rest, NFS_STATE_DIR, n) == 0)
		return -ENOENT;
	fd = (int)syscall(SYS_openat2, e->root_fd, rest, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	rc = fh_key_at(e->cfg->fsid, fd, "", &k, &mid);
	close(fd);
	if (rc < 0)
		return rc;
	if (mid != e->mount_id)
		return -EXDEV;
	buf = malloc(FH_SIZE_MAX);
	if (!buf)
		return -ENOMEM;
	rc = fh_encode(&k, buf, FH_SIZE_MAX);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	fh->mnt3_fhandle_val = (char *)buf;
	fh->mnt3_fhandle_len = (u_int)rc;
	return 0;
}

/* Refusals of paths nobody exports are not tied to an export's limiter;
 * one line per second for the whole process is plenty. */
static bool mnt_log_allowed(void)
{
	static atomic_llong last;
	struct timespec ts;
	long long now, prev;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec;
	prev = atomic_load(&last);
	return prev != now && atomic_compare_exchange_strong(&last, &prev, now);
}

static enum rpc_disposition mnt_null(struct rpc_req *req)
{
	(void)req;
	return RPC_DONE_REPLY;
}

static int mnt_do_mnt(struct rpc_req *req, struct nfs_group *ng, const char *arg,
		      mnt3_mountres_ok *ok)
{
	char path[MNT3_PATHLEN + 2], host[80], safe[LOG_SAFE_MAX];
	const char *rest = "";
	struct nfs_exp *e;
	enum exp_verdict v;
	int rc;

	rpc_addr_str(&req->peer, false, host, sizeof(host));
	rc = mnt_normalize(arg, path, sizeof(path));
	if (rc < 0)
		return rc;
	e = mnt_find_export(ng, path, &rest);
	if (!e) {
		if (mnt_log_allowed())
			log_warn("group=%s client=%s MNT %s refused: not exported by this group",
				 ng->cfg->name, host,
				 log_safe(safe, sizeof(safe), arg, strlen(arg)));
		return -EACCES;
	}
	v = exp_check_client(e->cfg, &req->peer);
	if (v != EXP_ALLOWED) {
		char what[96];

		snprintf(what, sizeof(what), "MOUNT MNT: %s", exp_verdict_str(v));
		exp_log_refusal(e, ng->cfg->name, &req->peer, what);
		return -EACCES;
	}
	rc = mnt_subdir_fh(e, rest, &ok->fhandle);
	if (rc < 0)
		return rc;
	ok->auth_flavors.auth_flavors_val = malloc(sizeof(int));
	if (!ok->auth_flavors.auth_flavors_val)
		return -ENOMEM;
	ok->auth_flavors.auth_flavors_val[0] = AUTH_SYS;
	ok->auth_flavors.auth_flavors_len = 1;
	/* One line when a host first mounts a path, not one per MOUNT call:
	 * clients re-mount at every failover and a script can call MNT in a
	 * loop.  A full list is the same warning for every host, limited. */
	rc = nfs_mounts_add(ng, host, path);
	if (rc > 0)
		log_info("group=%s client=%s mounted %s", ng->cfg->name, host,
			 log_safe(safe, sizeof(safe), path, strlen(path)));
	else if (rc < 0 && mnt_log_allowed())
		log_warn("group=%s client=%s mounted %s, not listed for DUMP: %s",
			 ng->cfg->name, host, log_safe(safe, sizeof(safe), path, strlen(path)),
			 rc == -ENOSPC ? "mount list full" : strerror(-rc));
	return 0;
}

static enum rpc_disposition mnt_mnt(struct rpc_req *req)
{
	mnt3_dirpath *a = req->args;
	mnt3_mountres *r = req->res;
	struct nfs_group *ng = nfs_group_of_req(req);
	int rc = ng ? mnt_do_mnt(req, ng, *a, &r->mnt3_mountres_u.mountinfo) : -EIO;

	r->fhs_status = mnt3_stat(rc);
	if (rc < 0) {
		/* Nothing may stay in the union's OK arm of an error reply. */
		xdr_free((xdrproc_t)xdr_mnt3_mountres_ok, (char *)&r->mnt3_mountres_u.mountinfo);
		memset(&r->mnt3_mountres_u, 0, sizeof(r->mnt3_mountres_u));
	}
	nfs_group_put(ng);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition mnt_dump(struct rpc_req *req)
{
	mnt3_mountlist *r = req->res;
	struct nfs_group *ng = nfs_group_of_req(req);
	mnt3_mountlist *tail = r;

	if (!ng)
		return RPC_DONE_REPLY;
	pthread_mutex_lock(&ng->mnt_lock);
	for (size_t i = 0; i < ng->nmounts; i++) {
		struct mnt3_mountbody *b = calloc(1, sizeof(*b));

		if (!b || !(b->ml_hostname = strdup(ng->mounts[i].host)) ||
		    !(b->ml_directory = strdup(ng->mounts[i].dir))) {
			if (b) {
				free(b->ml_hostname);
				free(b);
			}
			break;         /* a shorter list beats no answer */
		}
		*tail = b;
		tail = &b->ml_next;
	}
	pthread_mutex_unlock(&ng->mnt_lock);
	nfs_group_put(ng);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition mnt_umnt(struct rpc_req *req)
{
	mnt3_dirpath *a = req->args;
	struct nfs_group *ng = nfs_group_of_req(req);
	char path[MNT3_PATHLEN + 2], host[80];

	if (ng && mnt_normalize(*a, path, sizeof(path)) == 0) {
		rpc_addr_str(&req->peer, false, host, sizeof(host));
		nfs_mounts_del(ng, host, path);
	}
	nfs_group_put(ng);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition mnt_umntall(struct rpc_req *req)
{
	struct nfs_group *ng = nfs_group_of_req(req);
	char host[80];

	if (ng) {
		rpc_addr_str(&req->peer, false, host, sizeof(host));
		nfs_mounts_del_host(ng, host);
	}
	nfs_group_put(ng);
	return RPC_DONE_REPLY;
}

/* "10.0.0.0/8", or the bare address for a single host. */
static char *mnt_net_str(const struct cfg_net *n)
{
	char a[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 8];
	unsigned full = n->family == AF_INET ? 32 : 128;

	if (!inet_ntop(n->family, n->addr, a, sizeof(a)))
		return strdup("?");
	if (n->prefix >= full)
		snprintf(out, sizeof(out), "%s", a);
	else
		snprintf(out, sizeof(out), "%s/%u", a, n->prefix);
	return strdup(out);
}

static enum rpc_disposition mnt_export(struct rpc_req *req)
{
	mnt3_exports *r = req->res;
	struct nfs_group *ng = nfs_group_of_req(req);
	mnt3_exports *tail = r;

	if (!ng)
		return RPC_DONE_REPLY;
	for (size_t i = 0; i < ng->nexports; i++) {
		const struct cfg_export *ce = ng->exports[i].cfg;
		struct mnt3_exportnode *x = calloc(1, sizeof(*x));
		mnt3_groups *gt;

		if (!x || !(x->ex_dir = strdup(ce->path))) {
			free(x);
			break;
		}
		*tail = x;
		tail = &x->ex_next;
		gt = &x->ex_groups;
		for (size_t j = 0; j < ce->nclients; j++) {
			struct mnt3_groupnode *g = calloc(1, sizeof(*g));

			if (!g || !(g->gr_name = mnt_net_str(&ce->clients[j]))) {
				free(g);
				break;
			}
			*gt = g;
			gt = &g->gr_next;
		}
	}
	nfs_group_put(ng);
	return RPC_DONE_REPLY;
}

#define MNT_PROC(num, fn_, atype, axdr, rtype, rxdr, blk) \
	[MOUNTPROC3_##num] = { .name = #num, \
		.xdr_args = (xdrproc_t)axdr, .args_size = sizeof(atype), \
		.xdr_res = (xdrproc_t)rxdr, .res_size = sizeof(rtype), \
		.fn = fn_, .blocking = blk }

/* Versions 1 and 2: everything but MNT (see the file comment). */
static const struct rpc_proc mnt_procs_v1[] = {
	MNT_PROC(NULL,    mnt_null,    char, rpc_xdr_void, char, rpc_xdr_void, false),
	[MOUNTPROC3_MNT] = { .name = "MNT" },  /* .fn NULL: PROC_UNAVAIL */
	MNT_PROC(DUMP,    mnt_dump,    char, rpc_xdr_void, mnt3_mountlist, xdr_mnt3_mountlist, false),
	MNT_PROC(UMNT,    mnt_umnt,    mnt3_dirpath, xdr_mnt3_dirpath, char, rpc_xdr_void, false),
	MNT_PROC(UMNTALL, mnt_umntall, char, rpc_xdr_void, char, rpc_xdr_void, false),
	MNT_PROC(EXPORT,  mnt_export,  char, rpc_xdr_void, mnt3_exports, xdr_mnt3_exports, false),
};

static const struct rpc_proc mnt_procs_v3[] = {
	MNT_PROC(NULL,    mnt_null,    char, rpc_xdr_void, char, rpc_xdr_void, false),
	MNT_PROC(MNT,     mnt_mnt,     mnt3_dirpath, xdr_mnt3_dirpath, mnt3_mountres, xdr_mnt3_mountres, true),
	MNT_PROC(DUMP,    mnt_dump,    char, rpc_xdr_void, mnt3_mountlist, xdr_mnt3_mountlist, false),
	MNT_PROC(UMNT,    mnt_umnt,    mnt3_dirpath, xdr_mnt3_dirpath, char, rpc_xdr_void, false),
	MNT_PROC(UMNTALL, mnt_umntall, char, rpc_xdr_void, char, rpc_xdr_void, false),
	MNT_PROC(EXPORT,  mnt_export,  char, rpc_xdr_void, mnt3_exports, xdr_mnt3_exports, false),
};

static const struct rpc_vers mnt_v1 = { .vers = 1, .nprocs = 6, .procs = mnt_procs_v1 };
static const struct rpc_vers mnt_v2 = { .vers = 2, .nprocs = 6, .procs = mnt_procs_v1 };
static const struct rpc_vers mnt_v3 = { .vers = MNT3_V3, .nprocs = 6, .procs = mnt_procs_v3 };
static const struct rpc_vers *const mnt_versions[] = { &mnt_v1, &mnt_v2, &mnt_v3 };

const struct rpc_prog mount_prog = {
	.name = "mount",
	.prog = MNT3_PROGRAM,
	.vers_lo = 1,
	.vers_hi = MNT3_V3,
	.vers = mnt_versions,
};
