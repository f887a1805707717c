/*
 * storage.c - the storage identity of a service group; see storage.h.
 *
 * Why both the identity file and the filesystem: the file alone proves the
 * storage was initialised, but a copy of .sgnfs/ (a restore, an rsync to a
 * local disk, a directory left under a mount point) would carry it to
 * storage that is not the group's; the filesystem type and fsid recorded at
 * init catch that.  The identity file's device must also be the export's,
 * so a .sgnfs/ that is itself a mount of something else is refused.
 */
#include "cluster/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>

struct stg_id {
	char cluster[512];
	char group[512];
	uint64_t fstype;
	uint64_t fsid;
};

static uint64_t stg_fsid(const struct statfs *s)
{
	uint32_t w[2];

	memcpy(w, &s->f_fsid, sizeof(w));
	return (uint64_t)w[0] << 32 | w[1];
}

/* Parse an identity file; 0 or -EINVAL. */
static int stg_parse(FILE *f, struct stg_id *id)
{
	char line[600], key[64], val[512];
	int version = 0;
	bool have_fstype = false;

	memset(id, 0, sizeof(*id));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %511s", key, val) != 2)
			continue;
		if (strcmp(key, "sgnfs-identity") == 0)
			version = atoi(val);
		else if (strcmp(key, "cluster") == 0)
			snprintf(id->cluster, sizeof(id->cluster), "%s", val);
		else if (strcmp(key, "group") == 0)
			snprintf(id->group, sizeof(id->group), "%s", val);
		else if (strcmp(key, "fstype") == 0) {
			id->fstype = strtoull(val, NULL, 16);
			have_fstype = true;
		} else if (strcmp(key, "fsid") == 0)
			id->fsid = strtoull(val, NULL, 16);
	}
	if (version != 1 || !id->cluster[0] || !id->group[0] || !have_fstype)
		return -EINVAL;
	return 0;
}

int stg_check(const char *root, const char *cluster, const char *group, char *why,
	      size_t whylen)
{
	char path[4200];
	struct stat st_root, st_id;
	struct statfs sf;
	struct stg_id id;
	FILE *f;
	int rc;

	rc = stat(root, &st_root) < 0 ? -errno : !S_ISDIR(st_root.st_mode) ? -ENOTDIR : 0;
	if (rc < 0) {
		snprintf(why, whylen, "storage absent: export %s: %s", root, strerror(-rc));
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/.sgnfs/" STG_IDENTITY, root);
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		if (rc == -ENOENT)
			snprintf(why, whylen, "storage absent or not initialised: no %s (the "
				 "group's filesystem is not mounted here, or run sgnfsctl init %s)",
				 path, group);
		else
			snprintf(why, whylen, "cannot read %s: %s", path, strerror(-rc));
		return -ENOENT;
	}
	if (fstat(fileno(f), &st_id) < 0 || statfs(root, &sf) < 0) {
		rc = -errno;
		fclose(f);
		snprintf(why, whylen, "cannot check the storage of %s: %s", root, strerror(-rc));
		return rc;
	}
	rc = stg_parse(f, &id);
	fclose(f);
	if (rc < 0) {
		snprintf(why, whylen, "unreadable storage identity %s", path);
		return rc;
	}
	if (strcmp(id.group, group) != 0 || strcmp(id.cluster, cluster) != 0) {
		snprintf(why, whylen, "wrong storage: %s belongs to group %s of cluster %s", root,
			 id.group, id.cluster);
		return -EBADF;
	}
	if (st_id.st_dev != st_root.st_dev) {
		snprintf(why, whylen, "wrong storage: %s is on another filesystem than %s", path,
			 root);
		return -EXDEV;
	}
	if ((uint64_t)sf.f_type != id.fstype ||
	    (id.fsid && stg_fsid(&sf) && stg_fsid(&sf) != id.fsid)) {
		snprintf(why, whylen, "wrong storage: %s is not the filesystem %s was "
			 "initialised on (type 0x%" PRIx64 " fsid %016" PRIx64 ", initialised "
			 "on type 0x%" PRIx64 " fsid %016" PRIx64 ")", root, group,
			 (uint64_t)sf.f_type, stg_fsid(&sf), id.fstype, id.fsid);
		return -EXDEV;
	}
	return 0;
}

int stg_init(const char *root, const char *cluster, const char *group, bool force,
	     bool *existed, char *why, size_t whylen)
{
	char dir[4200], path[4300], tmp[4300];
	struct statfs sf;
	int fd = -1, dfd = -1, rc;
	FILE *f;

	*existed = false;
	rc = stg_check(root, cluster, group, why, whylen);
	if (rc == 0) {
		*existed = true;
		return 0;
	}
	if (rc != -ENOENT && !force)
		return rc; /* someone else's storage: never overwrite silently */
	if (statfs(root, &sf) < 0) {
		rc = -errno;
		snprintf(why, whylen, "export %s: %s", root, strerror(-rc));
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s/.sgnfs", root);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/" STG_IDENTITY, dir);
	snprintf(tmp, sizeof(tmp), "%s/." STG_IDENTITY ".tmp", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(-rc));
		return rc;
	}
	f = fdopen(fd, "w");
	if (!f) {
		rc = -errno;
		close(fd);
		goto err_unlink;
	}
	fprintf(f, "sgnfs-identity 1\ncluster %s\ngroup %s\nfstype 0x%" PRIx64 "\n"
		"fsid %016" PRIx64 "\ncreated %lld\n", cluster, group, (uint64_t)sf.f_type,
		stg_fsid(&sf), (long long)time(NULL));
	/* Durable before it is visible: a crash leaves the old state or the
	 * whole new identity, never half of one. */
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = -errno;
		fclose(f);
		goto err_unlink;
	}
	if (fclose(f) != 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(why, whylen, "cannot make %s durable: %s", path, strerror(-rc));
		return rc;
	}
	close(dfd);
	return 0;

err_unlink:
	unlink(tmp);
	snprintf(why, whylen, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}
