/* pidfile.c - see pidfile.h. */
#include "daemon/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int pidf_acquire(struct pidfile *pf, const char *run_dir, const char *node, pid_t *holder)
{
	char buf[32];
	ssize_t n;
	int rc;

	pf->fd = -1;
	*holder = 0;
	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(pf->path, sizeof(pf->path), "%s/%s.pid", run_dir, node) >=
	    sizeof(pf->path))
		return -ENAMETOOLONG;
	for (;;) {
		struct stat fst, pst;

		pf->fd = open(pf->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (pf->fd < 0)
			return -errno;
		if (flock(pf->fd, LOCK_EX | LOCK_NB) != 0)
			break;
		/* Locked; but if the previous holder unlinked the file
		 * between our open and our flock, we hold a lock on a name
		 * nobody else will ever open: start again on the new file. */
		if (fstat(pf->fd, &fst) == 0 && stat(pf->path, &pst) == 0 &&
		    fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino)
			return 0;
		close(pf->fd);
	}
	rc = errno == EWOULDBLOCK ? -EEXIST : -errno;
	/* The holder wrote its pid once it was running; it may not have yet. */
	n = pread(pf->fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = '\0';
		*holder = (pid_t)strtol(buf, NULL, 10);
	}
	close(pf->fd);
	pf->fd = -1;
	return rc;
}

int pidf_write(struct pidfile *pf)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(pf->fd, 0) < 0 || pwrite(pf->fd, buf, (size_t)len, 0) != len)
		return -errno;
	return 0;
}

void pidf_release(struct pidfile *pf)
{
	if (pf->fd < 0)
		return;
	/* Unlink while still holding the lock: a newcomer either found the
	 * old file locked (and refused: we were still running) or creates a
	 * fresh one. */
	unlink(pf->path);
	close(pf->fd);
	pf->fd = -1;
}
