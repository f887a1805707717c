/*
 * sfile.h - the one way sgnfs reads and replaces its state files.
 *
 * Every file sgnfs keeps on disk (a group's client list entries, NSM state
 * number, lease target, journal, the handle key, ...) may have been
 * tampered with: a group's .sgnfs/ lives on shared storage, and an export
 * or a local user may reach it.  So a state file is only ever
 *   - opened with O_NOFOLLOW (a planted symlink is refused, not followed),
 *     O_NONBLOCK (a FIFO planted in its place cannot hang the opener) and
 *     O_CLOEXEC;
 *   - checked with fstat(2) before a byte is read: it must be a regular
 *     file no larger than the caller's limit (a 1 GiB sparse file is
 *     refused without reading it); sf_read_dir's batches check the same
 *     from the directory's listing and a bounded read instead (sfdir.c
 *     says why that is equivalent there);
 *   - replaced atomically: a new file is created under a temporary name
 *     with O_CREAT|O_EXCL|O_NOFOLLOW (whatever sits at that name is
 *     removed first; a symlink there is unlinked, never written through),
 *     written, fsync'd, renamed over the old one, and the directory
 *     fsync'd, so a crash leaves either the old or the new contents.
 *
 * Errors are -errno; the ones that mean "the file is bad" rather than "the
 * disk failed" are -ELOOP (a symlink), -EFTYPE_SF (not a regular file) and
 * -EFBIG (over the limit).  sf_strerror() turns any of them into words for
 * the log line and the status output that must name the bad file.
 */
#ifndef SGNFS_SFILE_H
#define SGNFS_SFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/*
 * The name of a group's state directory at the root of its first export
 * (client list, NSM state number, lease, journal, identity): the one
 * spelling every module uses (config computes each group's path once,
 * cfg_group.statedir; NFS hides this name from clients).
 */
#define SF_STATE_DIR ".sgnfs"

/* Not a regular file.  EFTYPE is BSD-only; ENOTSUP-ish codes read badly in
 * a log line, so the helper uses its own value above every errno. */
#define EFTYPE_SF 4096

/*
 * Open state file @name (relative to @dirfd) with @flags (O_RDONLY, O_RDWR,
 * O_WRONLY, with O_CREAT and @mode if wanted) plus O_NOFOLLOW|O_NONBLOCK|
 * O_CLOEXEC|O_NOCTTY (and O_NOATIME where the file's owner may), then
 * fstat: anything but a regular file of at most
 * @max bytes (SIZE_MAX: no limit) is refused.  For files that are locked or
 * appended to in place (lease, journal).  *@fd as sf_open_read; *@st may
 * be NULL.  Same errors as sf_open_read.
 */
int sf_open(int dirfd, const char *name, int flags, mode_t mode, size_t max, int *fd,
	    struct stat *st);

/*
 * Open @name (relative to @dirfd; AT_FDCWD or an absolute name work) for
 * reading: O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY, then fstat.
 * Refuses anything but a regular file of at most @max bytes.  On success
 * *@fd is the descriptor (caller closes; O_NONBLOCK is cleared, so reads
 * behave as usual) and *@st (may be NULL) its attributes.
 * Returns 0, -ENOENT, -ELOOP (symlink), -EFTYPE_SF, -EFBIG, or -errno.
 */
int sf_open_read(int dirfd, const char *name, size_t max, int *fd, struct stat *st);

/*
 * The most one read(2) of sf_read_exact asks for.  A read is copied in the
 * kernel, where a kernel built without full preemption (none or voluntary,
 * the usual distribution default) gives the CPU up only at its own resched
 * points: filemap_read checks once per batch of up to 31 folios, which
 * with large folios is tens of MB.  Measured: the group open's one read of
 * a 90 MB journal held a CPU for 5-6 ms at a time, and the journal's
 * io_uring worker behind another group's LOCK waited that long to run.
 * Read 256 KiB at a time, each read still took 0.35-0.45 ms on this
 * virtual machine, and that worker waited as long (perf sched); at 64 KiB
 * a read returns to user space, where the scheduler can switch, within
 * ~0.1 ms.  1,440 reads for 90 MB cost nothing measurable.
 */
#define SF_READ_CHUNK ((size_t)64 * 1024)

/* How much of @left bytes one step of a chunked pass takes: at most
 * SF_READ_CHUNK. */
static inline size_t sf_chunk(size_t left)
{
	return left < SF_READ_CHUNK ? left : SF_READ_CHUNK;
}

/*
 * Read exactly @size bytes (fstat's size of the open file @fd) into @buf,
 * which has room for @size + 1: one byte more is asked for, so a file
 * that grew since the fstat is caught instead of being silently cut.
 * EINTR is retried; at most SF_READ_CHUNK bytes per read(2).  Returns 0,
 * -EIO when the file changed size, or -errno of read(2).  For the
 * state-file readers here and the journal's load, whose buffer is a
 * mapping of its own.
 */
int sf_read_exact(int fd, void *buf, size_t size);

/*
 * Read the whole of state file @name (as sf_open_read) into a malloc'ed
 * buffer with a terminating NUL not counted in *@len.  The caller frees
 * *@buf with free(3).  Returns 0 or the errors of sf_open_read, -EIO when
 * the file changed size while being read, -ENOMEM.
 */
int sf_read(int dirfd, const char *name, size_t max, char **buf, size_t *len);

/*
 * sf_read into the caller's @buf of @size bytes (a file of at most
 * @size - 1 bytes; a NUL follows what was read), for loading many small
 * files: no allocation, and four system calls a file (the descriptor keeps
 * O_NONBLOCK, which changes nothing for a regular file).  Same checks and
 * errors as sf_read, -EFBIG for a file over @size - 1 bytes.
 */
int sf_read_into(int dirfd, const char *name, char *buf, size_t size, size_t *len);

/*
 * sf_read_dir: read every file of a directory of small state files (a
 * group's client list) with the checks of sf_read_into, in batches through
 * io_uring where the kernel allows it (sfdir.c says how the checks are
 * kept there), else one file at a time the plain way (sf_read_into).
 */
enum sf_dir_io {
	SF_DIR_URING = 0,          /* batches, the plain way where refused */
	SF_DIR_PLAIN,              /* sf_read_into only (tests; the fallback) */
	/* Tests: every name enters a batch whatever type the directory
	 * lists, so the batch meets what a name replaced between the
	 * listing and the open would be (a FIFO, a symlink, a directory). */
	SF_DIR_URING_UNTYPED,
};
/* For every later sf_read_dir of the process (tests force the plain way). */
void sf_dir_set_io(enum sf_dir_io io);

/* Whether to read @name (never "." or ".."); it may act on the name (the
 * client list removes a crashed write's temporary). */
typedef bool (*sf_dir_want_fn)(void *arg, const char *name);
/*
 * One file: @rc 0 and its @len bytes at @data (NUL-terminated, writable,
 * valid during the call only), or @rc < 0 and @data NULL: the errors of
 * sf_read_into (-ELOOP a symlink, -EFTYPE_SF not a regular file, -EFBIG
 * over the limit, -ENOENT gone since the listing, -errno).
 */
typedef void (*sf_dir_fn)(void *arg, const char *name, int rc, char *data, size_t len);

/* How sf_read_dir read: test hook and log line. */
struct sf_dir_stats {
	bool uring;                /* a ring was set up */
	size_t batched;            /* files read in a batch */
	size_t plain;              /* files read the plain way */
	size_t refused;            /* refused by their listed type, unopened */
};

/*
 * Call @want (may be NULL: every name) and then @fn (in no particular
 * order) for every name in directory @dirfd, each file read as
 * sf_read_into with room for @max bytes.  @dirfd stays the caller's.
 * *@st (may be NULL) says how.  Blocking; the thread that calls it does
 * the work (a ring is made and freed in the call).  Returns 0 once every
 * name was passed on, -EINVAL (@max 0 or huge), -ENOMEM, or -errno of
 * listing the directory (some names may have been passed on by then).
 */
int sf_read_dir(int dirfd, size_t max, sf_dir_want_fn want, sf_dir_fn fn, void *arg,
		struct sf_dir_stats *st);

/*
 * Replace @name in directory @dirfd with @len bytes at @data, atomically
 * and durably (temp ".NAME.tmp", O_EXCL|O_NOFOLLOW, write, fsync, rename,
 * fsync @dirfd).  @mode: permission bits of the new file.  Returns 0 or
 * -errno; on failure the old file is untouched and the temp removed.
 */
int sf_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/*
 * sf_replace for a file that is then appended to (the journal): with
 * @drop_old the old file is removed (and the directory synced) before the
 * new one is written, for when there is no room for both; with @fdp the new
 * file stays open (O_WRONLY, positioned at its end) and *@fdp receives it.
 * Data is made durable with fdatasync (the size is part of it).
 */
int sf_replace_ex(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		  bool drop_old, int *fdp);

/* Words for an error from the functions above ("a FIFO, not a regular
 * file" needs the stat, so this only knows the class). */
const char *sf_strerror(int rc);

#endif
