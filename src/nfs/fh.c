/*
 * fh.c - file handles: encode, decode, resolve (layout in fh.h).
 *
 * Resolution is open_by_handle_at(2) relative to the export's root
 * directory, which names the filesystem to decode the kernel handle on: a
 * forged kernel handle can therefore never reach another filesystem.
 *
 * The subtree check.  Several exports may share one filesystem (sibling
 * directories on the same disk are the default topology), and the kernel
 * decodes a handle against the whole filesystem, so a client allowed on
 * export A could present a handle of a file in export B with A's fsid, or
 * one of a file outside every export.  After opening, we therefore ask the
 * kernel where the object is (readlink of /proc/self/fd/N: one d_path, no
 * disk access) and require that path to lie under the export's root:
 *   - directories are always connected to the tree by open_by_handle_at
 *     (exportfs reconnects them through ".."), so for them the check is
 *     exact;
 *   - a regular file (or symlink, device...) whose inode was not in the
 *     dentry cache comes back as a disconnected dentry reported as "/":
 *     its parent cannot be known without either a name scan of every
 *     directory or a parent handle inside ours, which goes stale when the
 *     file is renamed to another directory (the well-known knfsd
 *     subtree_check problem; knfsd defaults to no_subtree_check).  We
 *     accept such a file only because its handle's MAC verified: the MAC
 *     proves that this cluster issued exactly this (fsid, kernel handle)
 *     pair from a lookup inside this export, so neither a guessed inode
 *     (ext4 takes generation 0 as "any") nor a handle relabelled with
 *     another export's fsid gets this far.  What remains is a file moved
 *     (renamed) by someone on the server from this export into another one
 *     on the same filesystem while a client holds its handle; to rule that
 *     out too, give every export its own filesystem.
 *   - a file hard-linked into two exports may be reported under the other
 *     export's path and refused as stale: a link across an export boundary
 *     is not supported.
 * The same path test keeps handles out of the group's .sgnfs/ directory
 * (lease, client list, journal), which clients can also not reach by name.
 */
#include "nfs/fh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "config/config.h"
#include "hkey.h"
#include "log.h"
#include "rpc/rpc.h"
#include "nfs/export.h"
#include "nfs/nfs_int.h"

/* struct file_handle with room for the largest kernel handle (MAX_HANDLE_SZ
 * is 128), so name_to_handle_at() tells us the real size instead of failing
 * with EOVERFLOW before we can say which filesystem is at fault. */
union fh_kbuf {
	struct file_handle fh;
	uint8_t bytes[sizeof(struct file_handle) + 128];
};

/* The handle keys, HMAC state precomputed per key (set_key hashes the
 * padded key once; each MAC then copies the context).  Written by
 * fh_keys_install() under the write lock, read by every handler thread. */
static struct {
	pthread_rwlock_t lock;
	bool have;
	bool has_prev;
	/* Bumped by every install (under the write lock): a handle verified
	 * under older keys is verified again (fh_vcache).  Read without the
	 * lock for a remembered handle: a decode racing an install answers
	 * as if it had run just before it. */
	_Atomic uint64_t gen;
	struct hmac_sha256_ctx cur, prev;
} fh_keys = { .lock = PTHREAD_RWLOCK_INITIALIZER, .gen = 1 };

/*
 * Handles whose MAC verified lately, per thread (the loop decodes every
 * NLM handle and the GETATTRs of cached objects; the pool threads the
 * rest): a client names the same few files call after call, and the HMAC
 * (two SHA-256 blocks) was a twentieth of the loop's time in a pipelined
 * LOCK/UNLOCK.  A handle equal, byte for byte and MAC included, to one
 * verified under the same keys (gen) is the same verified handle; nothing
 * else is taken from here.  The comparison is memeql_sec over the whole
 * handle (fh_equal_ct), so its time says nothing about how much of a
 * forged MAC is right.  Entries are chosen by the MAC's first byte: a
 * client can evict another's entry (one HMAC more), never make a handle
 * pass.
 */
#define FH_VCACHE 16
struct fh_vent {
	uint64_t gen;                  /* fh_keys.gen it verified under; 0 empty */
	size_t len;
	uint8_t b[FH_SIZE_MAX];
};
static _Thread_local struct fh_vent fh_vcache[FH_VCACHE];

/*
 * Do @a and @b, @n bytes (at most FH_SIZE_MAX), hold the same bytes?  In a
 * time that depends on @n only: every word is compared, no early exit,
 * and the empty asm keeps the compiler from adding one.  Nettle's
 * memeql_sec does the same a byte at a time through volatile pointers,
 * which made it most of a remembered handle's cost.
 */
static bool fh_equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t d = 0, x, y;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		d |= x ^ y;
		__asm__("" : "+r"(d));
	}
	for (; i < n; i++) {
		d |= (uint64_t)(a[i] ^ b[i]);
		__asm__("" : "+r"(d));
	}
	return d == 0;
}

void fh_keys_install(const struct hk_set *ks)
{
	struct hmac_sha256_ctx cur, prev;

	hmac_sha256_set_key(&cur, HK_KEY_SIZE, ks->cur);
	if (ks->has_prev)
		hmac_sha256_set_key(&prev, HK_KEY_SIZE, ks->prev);
	pthread_rwlock_wrlock(&fh_keys.lock);
	fh_keys.cur = cur;
	if (ks->has_prev)
		fh_keys.prev = prev;
	fh_keys.has_prev = ks->has_prev;
	fh_keys.have = true;
	atomic_fetch_add(&fh_keys.gen, 1);
	pthread_rwlock_unlock(&fh_keys.lock);
	explicit_bzero(&cur, sizeof(cur));
	explicit_bzero(&prev, sizeof(prev));
}

int fh_keys_load(const char *path)
{
	struct hk_set ks;
	char why[160];
	int rc;

	rc = hk_load(path, &ks, why, sizeof(why));
	if (rc < 0) {
		log_err("handle key %s: %s", path, why);
		return rc;
	}
	fh_keys_install(&ks);
	log_info("handle key %s loaded (%s)", path,
		 ks.has_prev ? "current and previous key" : "current key");
	explicit_bzero(&ks, sizeof(ks));
	return 0;
}

static void fh_mac(const struct hmac_sha256_ctx *key, const uint8_t *data, size_t len,
		   uint8_t mac[FH_MAC_SIZE])
{
	struct hmac_sha256_ctx c = *key;

	hmac_sha256_update(&c, len, data);
	hmac_sha256_digest(&c, FH_MAC_SIZE, mac);
}

static void fh_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t fh_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int fh_encode(const struct fh_key *k, uint8_t *buf, size_t bufsz)
{
	size_t len = FH_HDR_SIZE + k->klen + FH_MAC_SIZE;
	size_t body = FH_HDR_SIZE + k->klen;
	int rc = (int)len;

	if (k->klen == 0)
		return -EINVAL;
	if (k->klen > FH_KHANDLE_MAX || len > bufsz)
		return -EOVERFLOW;
	buf[0] = FH_VERSION;
	buf[1] = (uint8_t)k->klen;
	fh_put32(buf + 2, k->fsid);
	fh_put32(buf + 6, (uint32_t)k->ktype);
	memcpy(buf + FH_HDR_SIZE, k->kh, k->klen);
	pthread_rwlock_rdlock(&fh_keys.lock);
	if (fh_keys.have)
		fh_mac(&fh_keys.cur, buf, body, buf + body);
	else
		rc = -ENOKEY;
	pthread_rwlock_unlock(&fh_keys.lock);
	return rc;
}

int fh_verify(const void *buf, size_t len, uint32_t *fsid)
{
	const uint8_t *p = buf;
	struct fh_vent *v;
	uint8_t mac[FH_MAC_SIZE];
	size_t body;
	bool ok = false;

	if (!p || len < FH_HDR_SIZE + 1 + FH_MAC_SIZE || len > FH_SIZE_MAX)
		return -NFSE_BADHANDLE;
	if (p[0] != FH_VERSION)
		return -NFSE_BADHANDLE;
	body = len - FH_MAC_SIZE;
	if (p[1] == 0 || p[1] > FH_KHANDLE_MAX || (size_t)p[1] != body - FH_HDR_SIZE)
		return -NFSE_BADHANDLE;
	/* memeql_sec: the comparison takes the same time wherever the first
	 * wrong byte is, so a client cannot find a MAC byte by byte. */
	v = &fh_vcache[p[body] % FH_VCACHE];
	if (v->gen == atomic_load(&fh_keys.gen) && v->len == len && fh_equal_ct(v->b, p, len))
		goto verified;
	pthread_rwlock_rdlock(&fh_keys.lock);
	if (fh_keys.have) {
		fh_mac(&fh_keys.cur, p, body, mac);
		ok = memeql_sec(mac, p + body, FH_MAC_SIZE);
		if (!ok && fh_keys.has_prev) {
			fh_mac(&fh_keys.prev, p, body, mac);
			ok = memeql_sec(mac, p + body, FH_MAC_SIZE);
		}
		if (ok) {
			v->gen = atomic_load(&fh_keys.gen);
			v->len = len;
			memcpy(v->b, p, len);
		}
	}
	pthread_rwlock_unlock(&fh_keys.lock);
	if (!ok)
		return -FH_EMAC;
verified:
	*fsid = fh_get32(p + 2);
	return 0;
}

int fh_decode(const void *buf, size_t len, struct fh_key *out)
{
	const uint8_t *p = buf;
	uint32_t fsid;
	int rc = fh_verify(buf, len, &fsid);

	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->klen = p[1];
	out->fsid = fsid;
	out->ktype = (int32_t)fh_get32(p + 6);
	memcpy(out->kh, p + FH_HDR_SIZE, out->klen);
	return 0;
}

int fh_key_at(uint32_t fsid, int dirfd, const char *name, struct fh_key *out,
	      int *mount_id)
{
	union fh_kbuf kb;
	int mid;

	kb.fh.handle_bytes = sizeof(kb) - sizeof(struct file_handle);
	if (name_to_handle_at(dirfd, name, &kb.fh, &mid, name[0] ? 0 : AT_EMPTY_PATH) < 0)
		return -errno;
	if (kb.fh.handle_bytes == 0 || kb.fh.handle_bytes > FH_KHANDLE_MAX)
		return -EOVERFLOW;
	memset(out, 0, sizeof(*out));
	out->fsid = fsid;
	out->ktype = kb.fh.handle_type;
	out->klen = kb.fh.handle_bytes;
	memcpy(out->kh, kb.fh.f_handle, out->klen);
	if (mount_id)
		*mount_id = mid;
	return 0;
}

bool fh_badmac_take(struct fh_badmac_lim *l, const struct sockaddr_storage *peer,
		    uint64_t now_ms, uint64_t *quiet)
{
	bool ok;

	pthread_mutex_lock(&l->mu);
	if (!l->ready) {
		/* No table (no memory): the node-wide bucket alone still
		 * bounds the lines. */
		l->have_hosts = tb_table_init(&l->hosts, FH_BADMAC_HOSTS, FH_BADMAC_HOST_BURST,
					      FH_BADMAC_HOST_RATE) == 0;
		l->ready = true;
	}
	/* The host's own bucket first: a forger spends its tokens, not
	 * another host's; then the node-wide one, which bounds the sum over
	 * many (made-up) source addresses. */
	ok = (!peer || !l->have_hosts || tb_table_take(&l->hosts, peer, now_ms)) &&
	     tb_take(&l->all, FH_BADMAC_ALL_BURST, FH_BADMAC_ALL_RATE, now_ms);
	if (ok) {
		*quiet = l->quiet;
		l->quiet = 0;
	} else {
		l->quiet++;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

/* The node's limiter for the bad-MAC line (process lifetime: its table is
 * never freed). */
static struct fh_badmac_lim badmac_lim = { .mu = PTHREAD_MUTEX_INITIALIZER };

void fh_log_badmac(const char *group, const struct sockaddr_storage *peer, const char *what)
{
	struct timespec ts;
	uint64_t quiet;
	char a[64];

	/* Handlers run on the thread pool and on the loop: no uv_now here. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!fh_badmac_take(&badmac_lim, peer,
			    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, &quiet))
		return;
	log_warn("group=%s client=%s %s: file handle with a bad MAC (forged, from another "
		 "cluster, or signed with a rotated-out key): BADHANDLE (%" PRIu64 " more not logged)",
		 group, peer ? rpc_addr_str(peer, true, a, sizeof(a)) : "?", what, quiet);
}

struct nfs_exp *fh_find_export(struct nfs_exp *exps, size_t n, uint32_t fsid)
{
	/* A group has a handful of exports: a linear scan beats any index. */
	for (size_t i = 0; i < n; i++) {
		if (exps[i].cfg && exps[i].cfg->fsid == fsid)
			return &exps[i];
	}
	return NULL;
}

bool fh_path_in_export(const char *root, size_t root_len, const char *path,
		       bool is_dir)
{
	size_t plen = strlen(path);

	if (!is_dir && strcmp(path, "/") == 0)
		return true;           /* disconnected non-directory: see above */
	if (root_len == 1 && root[0] == '/')
		return path[0] == '/';
	if (plen < root_len || memcmp(path, root, root_len) != 0)
		return false;
	/* "/srv/a" must not admit "/srv/ab": the next byte ends a component.
	 * A deleted but open file reads "/srv/a/f (deleted)", which passes. */
	return path[root_len] == '\0' || path[root_len] == '/';
}

/* @path (inside @e) is the group's state directory or below it: clients
 * never see it by name, and a handle must not reach it either. */
static bool fh_path_is_state(const struct nfs_exp *e, const char *path)
{
	const char *rest = path + (e->root_len == 1 ? 0 : e->root_len);
	size_t n = strlen(NFS_STATE_DIR);

	if (strlen(path) < e->root_len || rest[0] != '/' ||
	    strncmp(rest + 1, NFS_STATE_DIR, n) != 0)
		return false;
	return rest[1 + n] == '\0' || rest[1 + n] == '/';
}

int fh_open(const struct nfs_exp *e, const struct fh_key *k, int *fdp, struct stat *st)
{
	union fh_kbuf kb;
	char link[32], path[PATH_MAX + 1];
	ssize_t n;
	int fd, rc;

	kb.fh.handle_bytes = k->klen;
	kb.fh.handle_type = k->ktype;
	memcpy(kb.fh.f_handle, k->kh, k->klen);
	fd = open_by_handle_at(e->root_fd, &kb.fh, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		rc = errno;
		/* ESTALE: no such inode (any more).  EINVAL/EOPNOTSUPP: the
		 * filesystem cannot parse this handle type -> not ours.
		 * Resource shortages are passed on as themselves. */
		if (rc == EINVAL || rc == EOPNOTSUPP)
			return -NFSE_BADHANDLE;
		if (rc == ENOENT || rc == EACCES || rc == EPERM)
			return -ESTALE;
		return -rc;
	}
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (st->st_dev != e->dev) {
		rc = -ESTALE;          /* cannot happen with one mount_fd, but cheap */
		goto err_close;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0) {
		rc = -errno;
		goto err_close;
	}
	/* A path longer than the buffer comes back truncated; its first
	 * root_len bytes are still exact, which is all the check reads. */
	path[n] = '\0';
	if (!fh_path_in_export(e->root_path, e->root_len, path, S_ISDIR(st->st_mode)) ||
	    (e->hide_state && fh_path_is_state(e, path))) {
		rc = -ESTALE;
		goto err_close;
	}
	*fdp = fd;
	return 0;

err_close:
	close(fd);
	return rc;
}
