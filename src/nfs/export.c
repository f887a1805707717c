/*
 * export.c - opening an export's root, and who may use it as whom.
 *
 * The root is opened once when the group comes online and kept open: it is
 * the anchor of every handle resolution (open_by_handle_at needs a
 * descriptor on the filesystem) and of the subtree check (its realpath).
 * If the administrator moves the directory while the group is online, its
 * handles go stale until the group restarts; that is the price of checking
 * paths instead of trusting every handle on the filesystem.
 *
 * The access rules themselves (see export.h) are pure functions of the
 * configuration and the request, unit-tested in tests/unit/test_export.c.
 */
#include "nfs/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "log.h"
#include "nfs/nfs_int.h"

int exp_open(const struct cfg_export *cfg, bool hide_state, struct nfs_exp *out)
{
	struct fh_key k;
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	out->root_fd = -1;
	out->cfg = cfg;
	out->hide_state = hide_state;
	out->root_fd = open(cfg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (out->root_fd < 0) {
		rc = -errno;
		log_err("export %s (fsid %u): cannot open: %s", cfg->path, cfg->fsid,
			strerror(-rc));
		goto err;
	}
	out->root_path = realpath(cfg->path, NULL);
	if (!out->root_path) {
		rc = -errno;
		log_err("export %s: realpath: %s", cfg->path, strerror(-rc));
		goto err;
	}
	out->root_len = strlen(out->root_path);
	if (fstat(out->root_fd, &st) < 0) {
		rc = -errno;
		goto err;
	}
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	rc = fh_key_at(cfg->fsid, out->root_fd, "", &k, &out->mount_id);
	if (rc < 0) {
		log_err("export %s: the filesystem gives no usable file handles "
			"(name_to_handle_at: %s)", cfg->path,
			rc == -EOVERFLOW ? "handle longer than 54 bytes" : strerror(-rc));
		goto err;
	}
	rc = fh_encode(&k, out->root_fh, sizeof(out->root_fh));
	if (rc < 0)
		goto err;
	out->root_fh_len = (uint32_t)rc;
	/* Prove now, not at the first client, that handles resolve here: this
	 * needs CAP_DAC_READ_SEARCH and a filesystem that can decode them. */
	{
		int fd;
		struct stat st2;

		rc = fh_open(out, &k, &fd, &st2);
		if (rc < 0) {
			log_err("export %s: cannot resolve its own root handle (%s); "
				"sgnfsd needs CAP_DAC_READ_SEARCH", cfg->path,
				rc == -NFSE_BADHANDLE ? "handle rejected" : strerror(-rc));
			goto err;
		}
		close(fd);
	}
	atomic_init(&out->refusal_logged_at, 0);
	atomic_init(&out->refusals_quiet, 0);
	return 0;

err:
	exp_close(out);
	return rc < 0 ? rc : -EIO;
}

void exp_close(struct nfs_exp *e)
{
	if (e->root_fd >= 0)
		close(e->root_fd);
	e->root_fd = -1;
	free(e->root_path);
	e->root_path = NULL;
}

enum exp_verdict exp_check_client(const struct cfg_export *cfg,
				  const struct sockaddr_storage *peer)
{
	bool match = false;

	for (size_t i = 0; i < cfg->nclients && !match; i++)
		match = cfg_net_match(&cfg->clients[i], (const struct sockaddr *)peer);
	if (!match)
		return EXP_DENY_ADDRESS;
	if (cfg->secure && rpc_addr_port(peer) >= 1024)
		return EXP_DENY_PORT;
	return EXP_ALLOWED;
}

const char *exp_verdict_str(enum exp_verdict v)
{
	switch (v) {
	case EXP_ALLOWED:      return "allowed";
	case EXP_DENY_ADDRESS: return "address not in the export's clients";
	case EXP_DENY_PORT:    return "source port >= 1024 on a secure export";
	}
	return "?";
}

void exp_log_refusal(struct nfs_exp *e, const char *group,
		     const struct sockaddr_storage *peer, const char *what)
{
	struct timespec ts;
	long long now, last;
	unsigned quiet;
	char a[80];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec;
	last = atomic_load(&e->refusal_logged_at);
	/* One line per second per export: a refused client that retries in a
	 * loop must not be able to fill the log.  Losing the race means
	 * another thread logs this second; we are counted instead. */
	if (now == last ||
	    !atomic_compare_exchange_strong(&e->refusal_logged_at, &last, now)) {
		atomic_fetch_add(&e->refusals_quiet, 1);
		return;
	}
	quiet = atomic_exchange(&e->refusals_quiet, 0);
	rpc_addr_str(peer, true, a, sizeof(a));
	if (quiet)
		log_warn("group=%s client=%s export=%s refused: %s (%u more refusals on this export not logged)",
			 group, a, e->cfg->path, what, quiet);
	else
		log_warn("group=%s client=%s export=%s refused: %s", group, a,
			 e->cfg->path, what);
}

void exp_map_cred(const struct cfg_export *cfg, const struct rpc_cred *cred,
		  struct nfs_ident *out)
{
	memset(out, 0, sizeof(*out));
	if (cred->flavor != AUTH_SYS || cfg->all_squash) {
		out->uid = cfg->anonuid;
		out->gid = cfg->anongid;
		return;
	}
	out->uid = cred->uid;
	out->gid = cred->gid;
	/* (uid_t)-1 means "no change" to setfsuid(2) and chown(2); a client
	 * sending it gets the anonymous identity, never root's. */
	if (out->uid == UINT32_MAX || (cfg->root_squash && out->uid == 0))
		out->uid = cfg->anonuid;
	if (out->gid == UINT32_MAX || (cfg->root_squash && out->gid == 0))
		out->gid = cfg->anongid;
	for (uint32_t i = 0; i < cred->ngids && i < RPC_AUTH_MAX_GIDS; i++) {
		uint32_t g = cred->gids[i];

		/* Root squash also takes away membership of group 0, which
		 * would otherwise keep root's group access. */
		if (g == UINT32_MAX || (cfg->root_squash && g == 0))
			g = cfg->anongid;
		out->gids[out->ngids++] = g;
	}
}
