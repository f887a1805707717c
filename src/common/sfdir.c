/*
 * sfdir.c - sf_read_dir: every small state file of one directory (a
 * group's client list: one file per client, 100,000 of them), read with
 * the checks of sf_read_into (sfile.h).
 *
 * Why a batch: a takeover reads the whole list before the group serves,
 * and on a virtual machine a system call costs microseconds.  The plain
 * way is four calls a file (openat, fstat, read, close): 100,000 files
 * took 0.7-1.1 s here (2-core VM, hot caches), 6-9 s with cold ones.
 * Here a batch of SFD_BATCH files is one io_uring_enter: per file an
 * openat into a slot of the ring's own file table (a direct descriptor:
 * in no process's table), a read from that slot and a timeout on the
 * read, linked; the kernel does them inline while the names and pages are
 * cached, and on its worker threads, many at once, when they are not
 * (0.26-0.45 s hot, 1.7-2.4 s cold for the same 100,000).
 *
 * What replaces fstat in the batch.  A linked read cannot fstat the
 * descriptor its open made (statx wants a path or a real descriptor, and
 * IORING_OP_STATX always runs on a kernel worker thread, which would cost
 * more than the calls it saves).  The same refusals come from elsewhere:
 *   - type: only entries the directory lists as DT_REG enter a batch; a
 *     symlink is refused as -ELOOP and a FIFO, device, socket or directory
 *     as -EFTYPE_SF without being opened (what sf_open_fd returns for
 *     them), and a file system that does not fill d_type (DT_UNKNOWN)
 *     sends the file the plain way, fstat and all.  The type could change
 *     between the listing and the open only if the entry were replaced in
 *     between, and the directory is written by sgnfsd (root) alone: it is
 *     0700 under .sgnfs/, which NFS hides from every client.  Even then
 *     nothing is trusted or waited for: O_NOFOLLOW refuses a symlink
 *     (-ELOOP), O_NONBLOCK keeps a FIFO's open from waiting for a writer,
 *     a directory's read fails (-EISDIR), a FIFO without a writer reads
 *     as empty, and a FIFO's read with a writer, which in a ring waits
 *     for data despite O_NONBLOCK (measured on 6.18), is cancelled by its
 *     linked timeout (SFD_READ_TIMEOUT_S).  Any error in the batch, and
 *     an empty read, sends the file the plain way, whose fstat names it.
 *     (SF_DIR_URING_UNTYPED lets the tests put such files in a batch.)
 *   - size: the read asks for @max + 1 bytes; getting more than @max is
 *     -EFBIG, what fstat's size would have said (st_size > @max), and no
 *     more than @max + 1 bytes of an oversize (or sparse) file are read,
 *     into the batch's buffer, never parsed.
 *   - a file changed while being read: entries are replaced by rename
 *     (sf_replace), never written in place, so one open file is one
 *     version; fstat's size check on top of that added nothing.
 * A read of a regular file that returns less than asked has reached its
 * end (sf_read_exact relies on the same).
 *
 * Where the batch cannot be had - io_uring_setup refused (old kernel,
 * kernel.io_uring_disabled, a container's seccomp profile), no sparse file
 * table, opens into a slot refused as invalid (a kernel before 5.15) -
 * the files go the plain way (sf_read_into), as they always did.
 * sgnfsd's own seccomp allow-list has io_uring_setup, _enter and
 * _register (the journal uses them); the operations inside the ring are
 * not system calls and are not filtered.
 *
 * The ring is made on the calling thread and gone when sf_read_dir
 * returns: the kernel worker threads it may start (an open whose name is
 * not cached) are copies of that thread, with its nice value and CPU
 * affinity (a group's open runs at nice +10: group.c).
 */
#include "sfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "thprio.h"

/*
 * Files a batch: three ring entries each.  32: a batch is one stretch in
 * the kernel (about 0.1 ms here, THP_YIELD_NS) that a kernel built
 * without preemption (this VM's: PREEMPT_NONE) does not interrupt, and
 * the open gives way between batches (thp_yield_point); 32, 64 and 128
 * loaded 100,000 files in the same time (0.26-0.37 s);
 * its buffers are 32 x (@max + 1) bytes (512 KiB for the client list's
 * 16 KiB limit, of which a page each is touched by an entry of a hundred
 * bytes).
 */
#define SFD_BATCH 32
#define SFD_RING_ENTRIES (SFD_BATCH * 3)

/* user_data of a completion: the slot and which of its three operations. */
enum { SFD_OP_OPEN, SFD_OP_READ, SFD_OP_TIMEOUT };
#define SFD_UD(slot, op) ((uint64_t)(slot) * 4u + (op))

static _Atomic int sfd_io_mode = SF_DIR_URING;

void sf_dir_set_io(enum sf_dir_io io)
{
	atomic_store(&sfd_io_mode, (int)io);
}

/* One file of a batch. */
struct sfd_slot {
	char name[256];            /* d_name (NAME_MAX + 1) */
	int open_rc;               /* completion of the openat (0: opened) */
	int read_rc;               /* bytes read, or -errno */
};

struct sfd {
	int dirfd;
	size_t max;
	sf_dir_fn fn;
	void *arg;
	struct sf_dir_stats *st;
	char *plainbuf;            /* @max + 1 bytes, the plain way's */
	/* the ring, while have_ring (false once, or if, batches are off) */
	struct io_uring ring;
	bool have_ring;
	int oflags;                /* without O_NOATIME after an EPERM */
	char *bufs;                /* SFD_BATCH x (max + 1), owned */
	struct sfd_slot *slots;    /* SFD_BATCH, owned */
	unsigned n;                /* slots filled */
};

/* The plain way: sf_read_into (openat, fstat, read, close). */
static void sfd_plain(struct sfd *d, const char *name)
{
	size_t len = 0;
	int rc = sf_read_into(d->dirfd, name, d->plainbuf, d->max + 1, &len);

	d->st->plain++;
	d->fn(d->arg, name, rc, rc == 0 ? d->plainbuf : NULL, rc == 0 ? len : 0);
}

/*
 * A ring for batches, or false (the plain way then).  SINGLE_ISSUER and
 * DEFER_TASKRUN (6.1): completions are run when this thread waits for
 * them, not by interrupting it; a kernel without them gets a plain ring.
 */
static bool sfd_ring_init(struct sfd *d)
{
	struct io_uring_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	rc = io_uring_queue_init_params(SFD_RING_ENTRIES, &d->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(SFD_RING_ENTRIES, &d->ring, &p);
	}
	if (rc < 0)
		return false;
	/* The slots the opens fill; sparse (5.19), else a table of -1. */
	rc = io_uring_register_files_sparse(&d->ring, SFD_BATCH);
	if (rc < 0) {
		int fds[SFD_BATCH];

		for (unsigned i = 0; i < SFD_BATCH; i++)
			fds[i] = -1;
		rc = io_uring_register_files(&d->ring, fds, SFD_BATCH);
	}
	if (rc < 0)
		goto err_exit;
	d->bufs = malloc(SFD_BATCH * (d->max + 1));
	d->slots = calloc(SFD_BATCH, sizeof(*d->slots));
	if (!d->bufs || !d->slots)
		goto err_free;
	/* sf_open_fd's flags but O_CLOEXEC, which the kernel refuses for a
	 * direct descriptor: it is in no process's table, nothing to exec. */
	d->oflags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_NOATIME;
	d->have_ring = true;
	return true;

err_free:
	free(d->bufs);
	free(d->slots);
	d->bufs = NULL;
	d->slots = NULL;
err_exit:
	io_uring_queue_exit(&d->ring);
	return false;
}

static void sfd_ring_exit(struct sfd *d)
{
	if (!d->have_ring)
		return;
	io_uring_queue_exit(&d->ring);
	free(d->bufs);
	free(d->slots);
	d->have_ring = false;
}

/*
 * How long a batch's read may take before it is cancelled and the file
 * read the plain way instead.  A read of a pipe does not honour
 * O_NONBLOCK in a ring (the kernel waits for data; measured on 6.18), so a
 * FIFO put in a file's place between the listing and the open would hold
 * the batch, and the group's open, forever.  A regular file's read that
 * takes this long (cold storage under load) is only read again, blocking,
 * by the plain way; the FIFO is refused there by fstat.
 */
#define SFD_READ_TIMEOUT_S 2

/*
 * Submit the batch's d->n files and wait for all 3 x n completions.
 * 0, or -errno of io_uring_enter (then no slot's result is known).
 */
static int sfd_submit(struct sfd *d)
{
	static const struct __kernel_timespec tmo = { .tv_sec = SFD_READ_TIMEOUT_S };
	unsigned want = d->n * 3, got = 0;
	struct io_uring_cqe *cqe;
	int rc;

	for (unsigned i = 0; i < d->n; i++) {
		struct io_uring_sqe *op = io_uring_get_sqe(&d->ring);
		struct io_uring_sqe *rd = io_uring_get_sqe(&d->ring);
		struct io_uring_sqe *to = io_uring_get_sqe(&d->ring);

		/* The ring has 3 x SFD_BATCH entries and is empty here.  No
		 * close: the next batch's open into slot i replaces (and
		 * closes) what is there, io_uring_queue_exit the last ones
		 * (measured: the same time as a linked close, and a close
		 * linked after the timeout would be cancelled with it). */
		io_uring_prep_openat_direct(op, d->dirfd, d->slots[i].name, d->oflags, 0, i);
		op->flags |= IOSQE_IO_LINK;
		op->user_data = SFD_UD(i, SFD_OP_OPEN);
		io_uring_prep_read(rd, (int)i, d->bufs + i * (d->max + 1),
				   (unsigned)(d->max + 1), 0);
		rd->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
		rd->user_data = SFD_UD(i, SFD_OP_READ);
		io_uring_prep_link_timeout(to, (struct __kernel_timespec *)&tmo, 0);
		to->user_data = SFD_UD(i, SFD_OP_TIMEOUT);
		d->slots[i].open_rc = d->slots[i].read_rc = -ECANCELED;
	}
	/* Every operation posts one completion (a cancelled one too).  One
	 * system call submits all and waits for all; submitting again while
	 * completions are missing puts in what the kernel did not take at
	 * once (short of memory) and resumes a wait cut by a signal. */
	while (got < want) {
		if (io_uring_peek_cqe(&d->ring, &cqe) != 0) {
			rc = io_uring_submit_and_wait(&d->ring, want - got);
			if (rc < 0 && rc != -EINTR)
				return rc;
			continue;
		}
		unsigned slot = (unsigned)(cqe->user_data / 4u), op = (unsigned)(cqe->user_data % 4u);

		if (slot < d->n && op == SFD_OP_OPEN)
			d->slots[slot].open_rc = cqe->res;
		else if (slot < d->n && op == SFD_OP_READ)
			d->slots[slot].read_rc = cqe->res;
		io_uring_cqe_seen(&d->ring, cqe);
		got++;
	}
	return 0;
}

/* Run the batch and hand each file to the caller (or to the plain way). */
static void sfd_flush(struct sfd *d)
{
	bool off = false;
	int rc;

	if (d->n == 0)
		return;
	rc = sfd_submit(d);
	if (rc < 0) {
		/* The ring failed as a whole (the completions are not known):
		 * this batch and the rest go the plain way.  Slots may still
		 * hold open files: io_uring_queue_exit (after the plain reads,
		 * which take the names from the slots) closes them. */
		for (unsigned i = 0; i < d->n; i++)
			sfd_plain(d, d->slots[i].name);
		d->n = 0;
		sfd_ring_exit(d);
		return;
	}
	for (unsigned i = 0; i < d->n; i++) {
		struct sfd_slot *s = &d->slots[i];
		char *buf = d->bufs + i * (d->max + 1);

		/* 0 bytes go the plain way too: a FIFO without a writer (or
		 * /dev/null) reads as empty, and an empty state file is rare
		 * (no client list entry is). */
		if (s->open_rc == 0 && s->read_rc > 0) {
			d->st->batched++;
			/* More than @max bytes: too big, as fstat's size would
			 * have said (the read asked for one byte more). */
			if ((size_t)s->read_rc > d->max) {
				d->fn(d->arg, s->name, -EFBIG, NULL, 0);
				continue;
			}
			buf[s->read_rc] = '\0';
			d->fn(d->arg, s->name, 0, buf, (size_t)s->read_rc);
			continue;
		}
		if (s->open_rc > 0)
			close(s->open_rc); /* ours: see below */
		/* O_NOATIME is for the file's owner (or CAP_FOWNER): the next
		 * batches open without it, as sf_open_fd does. */
		if (s->open_rc == -EPERM)
			d->oflags &= ~O_NOATIME;
		/* Any failure (gone, a symlink or FIFO planted since the
		 * listing, a read cancelled by its timeout, ...) and an empty
		 * read are decided by the plain way, whose fstat says exactly
		 * what the file is. */
		sfd_plain(d, s->name);
	}
	/* An open into a slot refused as invalid, or one that returned a
	 * descriptor (0 is an open into a slot): a kernel without direct
	 * descriptors (before 5.15), which ignored the slot and put the file
	 * in the process's table.  Batches would only add to the plain way's
	 * cost. */
	for (unsigned i = 0; i < d->n; i++)
		if (d->slots[i].open_rc == -EINVAL || d->slots[i].open_rc > 0)
			off = true;
	if (off)
		sfd_ring_exit(d);
	d->n = 0;
}

/* One listed name: refused by type, batched, or the plain way. */
static void sfd_one(struct sfd *d, const struct dirent *de)
{
	if (!d->have_ring) {
		sfd_plain(d, de->d_name);
		return;
	}
	switch (atomic_load(&sfd_io_mode) == SF_DIR_URING_UNTYPED ? DT_REG : de->d_type) {
	case DT_REG:
		break;
	case DT_UNKNOWN:
		/* The file system does not say (some do not fill d_type). */
		sfd_plain(d, de->d_name);
		return;
	case DT_LNK:
		d->st->refused++;
		d->fn(d->arg, de->d_name, -ELOOP, NULL, 0);
		return;
	default:
		d->st->refused++;
		d->fn(d->arg, de->d_name, -EFTYPE_SF, NULL, 0);
		return;
	}
	/* d_name is at most NAME_MAX bytes (sizeof slot name - 1). */
	strcpy(d->slots[d->n].name, de->d_name);
	if (++d->n == SFD_BATCH)
		sfd_flush(d);
}

int sf_read_dir(int dirfd, size_t max, sf_dir_want_fn want, sf_dir_fn fn, void *arg,
		struct sf_dir_stats *st)
{
	struct sf_dir_stats dummy;
	struct sfd d = { .dirfd = dirfd, .max = max, .fn = fn, .arg = arg };
	struct dirent *de;
	DIR *dir;
	int fd, rc = 0;

	if (max == 0 || max >= SIZE_MAX / SFD_BATCH - 1 || max > 0x7fffffff)
		return -EINVAL;
	d.st = st ? st : &dummy;
	memset(d.st, 0, sizeof(*d.st));
	d.plainbuf = malloc(max + 1);
	if (!d.plainbuf)
		return -ENOMEM;
	/* The caller keeps its descriptor: closedir closes this one. */
	fd = dup(dirfd);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	dir = fdopendir(fd);
	if (!dir) {
		rc = -errno;
		close(fd);
		goto out_free;
	}
	/* The duplicate shares the caller's offset, which an earlier listing
	 * may have left at the end. */
	rewinddir(dir);
	if (atomic_load(&sfd_io_mode) != SF_DIR_PLAIN)
		d.st->uring = sfd_ring_init(&d);
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			/* A list cut short by an I/O error would leave clients
			 * nobody notifies: the caller must know. */
			rc = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (want && !want(arg, de->d_name))
			continue;
		/* On a group's open thread: a woken thread on this CPU gets
		 * it at least every THP_YIELD_NS, between batches or plain
		 * reads (thprio.h; 25 ns where it does not yield). */
		thp_yield_point();
		sfd_one(&d, de);
	}
	sfd_flush(&d);
	sfd_ring_exit(&d);
	closedir(dir);
out_free:
	free(d.plainbuf);
	return rc;
}
