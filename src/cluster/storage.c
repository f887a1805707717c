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

#include "sfile.h"

/* An identity is a few short lines; anything bigger is not one. */
#define STG_MAX 4096

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
	int fd, rc;

	rc = stat(root, &st_root) < 0 ? -errno : !S_ISDIR(st_root.st_mode) ? -ENOTDIR : 0;
	if (rc < 0) {
		snprintf(why, whylen, "storage absent: export %s: %s", root, strerror(-rc));
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/" SF_STATE_DIR "/" STG_IDENTITY, root);
	rc = sf_open_read(AT_FDCWD, path, STG_MAX, &fd, &st_id);
	if (rc < 0) {
		if (rc == -ENOENT)
			snprintf(why, whylen, "storage absent or not initialised: no %s (the "
				 "group's filesystem is not mounted here, or run sgnfsctl init %s)",
				 path, group);
		else
			snprintf(why, whylen, "state file %s: %s", path, sf_strerror(rc));
		return -ENOENT;
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = -errno;
		close(fd);
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	if (statfs(root, &sf) < 0) {
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
	char dir[4200], path[4300], text[1400];
	struct statfs sf;
	int n, rc;

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
	snprintf(dir, sizeof(dir), "%s/" SF_STATE_DIR, root);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/" STG_IDENTITY, dir);
	n = snprintf(text, sizeof(text), "sgnfs-identity 1\ncluster %s\ngroup %s\n"
		     "fstype 0x%" PRIx64 "\nfsid %016" PRIx64 "\ncreated %lld\n", cluster, group,
		     (uint64_t)sf.f_type, stg_fsid(&sf), (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof(text)) {
		snprintf(why, whylen, "cluster or group name too long");
		return -ENAMETOOLONG;
	}
	/* Durable before it is visible: a crash leaves no identity or the
	 * whole of it, never half of one. */
	rc = sf_replace(AT_FDCWD, path, text, (size_t)n, 0600);
	if (rc < 0) {
		snprintf(why, whylen, "cannot write %s: %s", path, sf_strerror(rc));
		return rc;
	}
	return 0;
}
