/*
 * sfile.c - state files: bounded, type-checked reads and atomic replace
 * (the rules and why are in sfile.h).
 */
#include "sfile.h"
#include "thprio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/*
 * sf_open, and with @nonblock the descriptor keeps O_NONBLOCK (nothing
 * changes for a regular file; it saves sf_read_into two system calls a
 * file when it loads a hundred thousand of them).
 */
static int sf_open_fd(int dirfd, const char *name, int flags, mode_t mode, size_t max,
		      bool nonblock, int *fdp, struct stat *stp)
{
	const int base = flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
	struct stat st;
	int fd, fl, rc;

	/* O_NOATIME: reading a state file must not make it a metadata write
	 * (ext4 dirties and journals the inode for an atime update, which was
	 * a tenth of loading 100,000 client entries).  Only the file's owner
	 * (or CAP_FOWNER) may ask; anyone else opens it as usual. */
	fd = openat(dirfd, name, base | O_NOATIME, mode);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, base, mode);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EFTYPE_SF;
		goto err_close;
	}
	/* st_size, not blocks: a sparse 1 GiB file is as big as a full one
	 * to the reader that would allocate and scan it. */
	if (st.st_size < 0 || (unsigned long long)st.st_size > max) {
		rc = -EFBIG;
		goto err_close;
	}
	if (!nonblock) {
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			rc = -errno;
			goto err_close;
		}
	}
	if (stp)
		*stp = st;
	*fdp = fd;
	return 0;

err_close:
	close(fd);
	return rc;
}

int sf_open(int dirfd, const char *name, int flags, mode_t mode, size_t max, int *fdp,
	    struct stat *stp)
{
	return sf_open_fd(dirfd, name, flags, mode, max, false, fdp, stp);
}

int sf_open_read(int dirfd, const char *name, size_t max, int *fdp, struct stat *stp)
{
	return sf_open(dirfd, name, O_RDONLY, 0, max, fdp, stp);
}

int sf_read_exact(int fd, void *buf, size_t size)
{
	char *p = buf;
	size_t got = 0, want;
	ssize_t n;

	/* A read of a regular file (all that sf_open lets through) that
	 * returns less than asked has reached its end, so the usual file
	 * takes one read, not two.  A large one (the journal) is read
	 * SF_READ_CHUNK at a time, so that its copy gives the CPU back
	 * between reads (sfile.h). */
	while (got <= size) {
		want = sf_chunk(size + 1 - got);
		n = read(fd, p + got, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
		if (n == 0 || (size_t)n < want)
			break;
		/* Only a file over one chunk gets here (the journal, read
		 * on a group's open thread: thprio.h). */
		thp_yield_point();
	}
	return got == size ? 0 : -EIO;
}

int sf_read(int dirfd, const char *name, size_t max, char **bufp, size_t *lenp)
{
	struct stat st;
	size_t size;
	char *buf;
	int fd, rc;

	rc = sf_open_read(dirfd, name, max, &fd, &st);
	if (rc < 0)
		return rc;
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = sf_read_exact(fd, buf, size);
	if (rc < 0)
		goto err_free;
	buf[size] = '\0';
	*bufp = buf;
	*lenp = size;
	rc = 0;
	goto out_close;

err_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

int sf_read_into(int dirfd, const char *name, char *buf, size_t size, size_t *lenp)
{
	/* Initialised for gcc -O3, which cannot see that sf_open_fd sets
	 * both whenever it returns 0 (-errno could be 0 as far as it knows). */
	struct stat st = { 0 };
	int fd = -1, rc;

	if (size == 0)
		return -EINVAL;
	rc = sf_open_fd(dirfd, name, O_RDONLY, 0, size - 1, true, &fd, &st);
	if (rc < 0)
		return rc;
	/* st_size <= size - 1: room for the one byte more sf_read_exact asks. */
	rc = sf_read_exact(fd, buf, (size_t)st.st_size);
	if (rc == 0) {
		buf[st.st_size] = '\0';
		*lenp = (size_t)st.st_size;
	}
	close(fd);
	return rc;
}

static int sf_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sf_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	return sf_replace_ex(dirfd, name, data, len, mode, false, NULL);
}

/* fsync the directory @name lives in (relative to @dirfd). */
static int sf_sync_dir(int dirfd, const char *name)
{
	const char *base = strrchr(name, '/');
	char dir[PATH_MAX];
	int dfd, rc;

	if (dirfd != AT_FDCWD && !base)
		return fsync(dirfd) < 0 ? -errno : 0;
	if (base)
		snprintf(dir, sizeof(dir), "%.*s", base == name ? 1 : (int)(base - name), name);
	else
		snprintf(dir, sizeof(dir), ".");
	dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	rc = fsync(dfd) < 0 ? -errno : 0;
	close(dfd);
	return rc;
}

int sf_replace_ex(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		  bool drop_old, int *fdp)
{
	char tmp[PATH_MAX];
	const char *base = strrchr(name, '/');
	int fd, rc;

	/* The temp lives beside the file, in the same directory, so the
	 * rename is atomic; names with a directory part keep it. */
	if (base) {
		int pre = (int)(base - name);

		if (snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp", pre, name, base + 1) >=
		    (int)sizeof(tmp))
			return -ENAMETOOLONG;
	} else if (snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= (int)sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	/* A leftover temp (a crash mid-write) or anything planted at the
	 * name - a symlink to /etc/shadow, a FIFO - is removed, never opened:
	 * unlink acts on the link itself.  O_EXCL|O_NOFOLLOW then refuses
	 * whatever a racing writer puts there in between. */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	if (drop_old) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
		rc = sf_sync_dir(dirfd, name);
		if (rc < 0)
			return rc;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		    mode);
	if (fd < 0)
		return -errno;
	/* The umask must not widen or narrow what the caller asked for. */
	if (fchmod(fd, mode) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	rc = sf_write_all(fd, data, len);
	if (rc < 0)
		goto err_unlink;
	if (fdatasync(fd) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	/* The rename is durable only once the directory is. */
	rc = sf_sync_dir(dirfd, name);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	if (fdp)
		*fdp = fd;
	else if (close(fd) < 0)
		return -errno;
	return 0;

err_unlink:
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	return rc;
}

const char *sf_strerror(int rc)
{
	switch (rc) {
	case -ELOOP:     return "a symbolic link (refused, not followed)";
	case -EFTYPE_SF: return "not a regular file (FIFO, device, socket or directory)";
	case -EFBIG:     return "larger than the limit for this state file";
	case -EIO:       return "I/O error or changed while being read";
	default:         return strerror(-rc);
	}
}
