/*
 * journal.c - the per-group lock journal (journal.h).
 *
 * On-disk format (.sgnfs/journal; all integers little-endian):
 *
 *   The file is a sequence of records.  Each record is a multiple of 8
 *   bytes:
 *
 *     0  u32 magic   0x314a4753 ("SGJ1")
 *     4  u32 crc     CRC-32C of bytes 8 .. len
 *     8  u32 len     whole record, header included
 *    12  u8  type    enum jr_type
 *    13  u8  flags   bit 0: last record of its batch;
 *                    bit 1: JR_LOCK exclusive / JR_HEADER state complete;
 *                    bit 2: solo (only with bit 0, version 2 files): the
 *                    batch was written while no earlier batch of the file
 *                    was in flight
 *    14  u16 hostlen client name (JR_HEADER: group name), 1..1024
 *    16  u64 batch   the write (group commit) this record belongs to
 *    24  u32 svid    (JR_HEADER: format version, JR_VERSION_MIN..JR_VERSION)
 *    28  u16 ohlen   owner handle, 0..1024
 *    30  u8  fhlen   file handle, 0..64 (1..64 for lock and share records)
 *    31  u8  share   JR_SHARE: mode | deny << 2
 *    32  u64 start   first byte (JR_HEADER: creation time, unix seconds)
 *    40  u64 end     last byte, inclusive; UINT64_MAX = to end of file
 *    48  host, oh, fh bytes, then zeros up to the next multiple of 8
 *
 *   Records are grouped into batches, one per write: every record of a
 *   batch carries its number, batch numbers go up by exactly one from
 *   batch to batch (the load refuses any other number where a batch
 *   starts), and the last record of a batch has flag bit 0.  The first
 *   batch of a file starts with a JR_HEADER.  A compaction writes a new file (header, then
 *   the state as JR_LOCK/JR_SHARE records, as one batch), fsyncs it and
 *   renames it over the old one.  Batch numbers need not start at 1: a
 *   folded file (below) starts with the number of the last batch it
 *   folded, so the batches copied after it stay consecutive.
 *
 * Loading replays whole batches only.  A batch is written by one pwrite and
 * made durable by one fdatasync; up to jr_inflight batches (at most
 * JR_INFLIGHT_MAX, whatever any writer of the file was set to) are being
 * written at once (with 2 the next one starts while the previous one syncs), and
 * their grants are acknowledged in batch order, each only once it and
 * every batch before it are durable.  So only the last JR_INFLIGHT_MAX batches
 * can be torn, in any way (sectors reach the disk in any order, a later
 * batch before an earlier one): the load drops the first bad batch and
 * everything after it, which held nothing anyone was told.  A bad record
 * followed anywhere by a good record of a batch that could not have been
 * written before it was acknowledged (a number JR_INFLIGHT_MAX or more past the
 * first bad batch) is damage to acknowledged state: the load refuses the
 * journal (the group falls back to a plain grace).
 *
 * The solo flag narrows that window from what any writer might have done
 * to what this one did.  A batch submitted while no earlier batch of the
 * file was in flight (every batch with journal_inflight = 1, most of them
 * with 2 under a light load) has it on its last record: when it was
 * written, every batch before it was durable, and may have been
 * acknowledged.  So a good solo record of any batch after the first bad
 * one also means acknowledged state is damaged: the load refuses it rather
 * than drop the bad batch and the solo one as a torn tail (with one batch
 * in flight, bit rot in the last-but-one batch would otherwise lose its
 * acknowledged grants unseen).  Only the last record carries it: that one
 * is summed again at submission anyway (its last flag), the others are
 * not.  A file whose header says version 1 was started by a node that
 * rejects the flag as damage, so such a file is appended to without it
 * until a compaction gives it a version 2 header.
 *
 * The file is extended in JR_PREALLOC steps by writing zeros ahead of the
 * batches (one write that changes the file's size per step, not one per
 * batch), so a batch's fdatasync flushes its data and no metadata.  Zeros
 * after the last batch are that space, not a torn batch.
 *
 * How a batch reaches the disk (jr_set_io): by default from the event loop
 * through io_uring, its write and its fdatasync submitted as one linked
 * pair, the completions read on the loop when the ring's eventfd fires (no
 * thread hop per batch); or, where io_uring cannot be set up (or with
 * `journal_io = thread`), by a thread-pool job.  Snapshots, the writes that
 * zero space ahead and the cut-back after a failed write always go to the
 * thread pool (they are rare and may be long).  Both paths end in the same
 * jr_job_finished, which takes results in submission order.
 *
 * Compaction, two ways.  The snapshot (jr_start_snapshot) asks the caller
 * for its live state on the loop (jr_snapshot_fn), holds every append and
 * writes the new file on the pool: O(held locks) of the loop's CPU (a
 * million locks stopped every group of the node for most of a second) and
 * one long stall of the group's grants.  It is kept where the caller's
 * state is not the file's: a failed journal (releases were not written;
 * the snapshot carries them) and jr_compact.  A size-triggered compaction
 * folds instead, when the caller gave fold ops (jr_set_fold), and so does
 * jr_compact_own (grace end: the state is what this open appended, the
 * loaded records dropped; the same steps, the records before own_from
 * parsed and checked but not replayed; a snapshot once a compaction has
 * mixed them, or if that fold fails):
 *
 *   1. X = durable_end, b = durable_batch: every batch before X is durable
 *      (results are taken in order) and b is the last of them.  Nothing is
 *      held; appends go on into the old file after X.
 *   2. BUILD, on the pool: the old file is opened read-only (sfile.h:
 *      O_NOFOLLOW, a regular file; and the same inode as the descriptor
 *      appended to), [0, X) read SF_READ_CHUNK at a time, replayed by
 *      jr_load's own parser (whole batches, every check) through the
 *      caller's ops into a private state, which is emitted as one batch
 *      numbered b after a new header, written to .journal.fold (created
 *      O_EXCL|O_NOFOLLOW after removing whatever is at the name), fsynced.
 *      Nothing of the loop's is touched there.
 *   3. COPY, on the pool, appends still going on: [X, durable_end) of the
 *      old file, whole durable batches b+1.., copied byte for byte after
 *      the snapshot, fsynced.
 *   4. SWITCH: the loop holds appends (the open batch accumulates, its
 *      waiters wait) until nothing is in flight; then, on the pool, the
 *      rest [from, end) is copied, fsynced, the file renamed over the
 *      journal and the directory fsynced; back on the loop the new file is
 *      the one appended to, and the held batch goes.
 *
 * Why a crash anywhere loads the same state.  Until the rename the old
 * file is the journal, untouched but for the appends, which are
 * acknowledged as durable in it (the copy of them comes later, and the
 * switch waits for every write in flight before copying the rest).  After
 * the rename the journal is: a header, the state of [0, X) as the
 * caller's own replay built it, then the very bytes of batches b+1..c,
 * all fsynced before the rename.  The loader replays that through the same
 * ops it replays the old file with, and replaying what a state emits
 * rebuilds that state (the contract of jr_fold_ops), so both files load
 * to the same state.  Batch numbers run b, b+1, .., c, c+1 (the held
 * batch): consecutive, as the torn-tail check needs.  A crash after the
 * rename but before the directory's fsync may leave either name; both are
 * whole, and nothing is appended to the new file before that fsync.
 *
 * Failure.  Before the rename (ENOMEM, EIO, ENOSPC, a rename refused, the
 * old file replaced under us) the fold is given up: one log line with the
 * group and the reason, the temporary removed, appending to the old file
 * goes on, and the next fold is tried JR_COMPACT_MIN later (not the
 * snapshot at once: that is the stall the fold exists to avoid, and the
 * error may well be the snapshot's too).  A file whose records do not
 * replay (the caller's apply refuses one, or the parser finds damage)
 * would not load either: then the snapshot is taken at once, the only way
 * to put such a file right.  A directory fsync that fails after the
 * rename fails the journal (refusing grants), and the snapshot that makes
 * it writable again syncs the directory itself.  jr_compact or a failure
 * during a fold sets it aside once its step is back.
 */
#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/statvfs.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "log.h"
#include "wq.h"
#include "sfile.h"
#include "thprio.h"

#define JR_MAGIC 0x314a4753u
#define JR_HDR 48
#define JR_F_LAST 1u
#define JR_F_BIT 2u
#define JR_F_SOLO 4u
#define JR_REC_MAX (JR_HDR + JR_HOST_MAX + JR_OH_MAX + JR_FH_MAX + 8)
#define JR_RETRY_MS 1000
#define JR_TRIM_AT (8u << 20)

/* ---- CRC-32C (Castagnoli) ------------------------------------------------
 * The SSE4.2 instruction where the CPU has it (every record of every grant
 * is summed on the event loop), a table otherwise; both give the same sum. */

static uint32_t jr_crc_tab[256];
static bool jr_crc_hw;
static pthread_once_t jr_crc_once = PTHREAD_ONCE_INIT;

static void jr_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		jr_crc_tab[i] = c;
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	jr_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t jr_crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t jr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&jr_crc_once, jr_crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (jr_crc_hw)
		return ~jr_crc32c_hw(crc, p, len);
#endif
	while (len--)
		crc = jr_crc_tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- records ---------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static bool jr_type_known(unsigned t)
{
	return t >= JR_HEADER && t <= JR_FREE_CLIENT;
}

/* Which fields a record type needs: a file handle, an owner. */
static bool jr_needs_fh(enum jr_type t)
{
	return t == JR_LOCK || t == JR_UNLOCK || t == JR_SHARE || t == JR_UNSHARE;
}

size_t jr_rec_size(const struct jr_rec *r)
{
	if (!jr_type_known(r->type) || r->hostlen == 0 || r->hostlen > JR_HOST_MAX ||
	    r->ohlen > JR_OH_MAX || r->fhlen > JR_FH_MAX || r->mode > 3 || r->deny > 3 ||
	    (jr_needs_fh(r->type) && r->fhlen == 0) ||
	    ((r->type == JR_LOCK || r->type == JR_UNLOCK) && r->start > r->end))
		return 0;
	return (JR_HDR + r->hostlen + r->ohlen + r->fhlen + 7) & ~(size_t)7;
}

ssize_t jr_rec_encode(const struct jr_rec *r, uint64_t batch, bool last, void *buf, size_t cap)
{
	size_t n = jr_rec_size(r);
	uint8_t *p = buf;
	uint8_t flags = (uint8_t)((last ? JR_F_LAST : 0) | (r->excl ? JR_F_BIT : 0) |
				  (last && r->solo ? JR_F_SOLO : 0));

	if (n == 0)
		return -EINVAL;
	if (n > cap)
		return -ENOSPC;
	memset(p, 0, n);
	put32(p, JR_MAGIC);
	put32(p + 8, (uint32_t)n);
	p[12] = (uint8_t)r->type;
	p[13] = flags;
	put16(p + 14, (uint16_t)r->hostlen);
	put64(p + 16, batch);
	put32(p + 24, r->svid);
	put16(p + 28, (uint16_t)r->ohlen);
	p[30] = (uint8_t)r->fhlen;
	p[31] = (uint8_t)(r->mode | r->deny << 2);
	put64(p + 32, r->start);
	put64(p + 40, r->end);
	memcpy(p + JR_HDR, r->host, r->hostlen);
	if (r->ohlen)
		memcpy(p + JR_HDR + r->hostlen, r->oh, r->ohlen);
	if (r->fhlen)
		memcpy(p + JR_HDR + r->hostlen + r->ohlen, r->fh, r->fhlen);
	put32(p + 4, jr_crc32c(0, p + 8, n - 8));
	return (ssize_t)n;
}

/* Set or clear the last-of-batch flag of an encoded record, and with it
 * the solo flag (and re-sum). */
static void jr_rec_set_last(uint8_t *p, bool last, bool solo)
{
	uint32_t n = get32(p + 8);

	p[13] = (uint8_t)((p[13] & ~(JR_F_LAST | JR_F_SOLO)) | (last ? JR_F_LAST : 0) |
			  (last && solo ? JR_F_SOLO : 0));
	put32(p + 4, jr_crc32c(0, p + 8, n - 8));
}

/* jr_rec_decode; @crc false skips the checksum, for a record this load
 * already decoded whole from the same private buffer (jr_load's replay
 * decodes each record twice: once to find its batch's end, once to apply
 * it, and the second sum was a twentieth of a million-lock takeover). */
static ssize_t jr_rec_decode_ex(const void *buf, size_t len, struct jr_rec *r, uint64_t *batch,
				bool *last, bool crc)
{
	const uint8_t *p = buf;
	uint32_t n;
	size_t body;

	if (len < JR_HDR || get32(p) != JR_MAGIC)
		return -EBADMSG;
	n = get32(p + 8);
	if (n < JR_HDR || n % 8 || n > len || n > JR_REC_MAX)
		return -EBADMSG;
	if (crc && get32(p + 4) != jr_crc32c(0, p + 8, n - 8))
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->type = p[12];
	r->hostlen = get16(p + 14);
	r->svid = get32(p + 24);
	r->ohlen = get16(p + 28);
	r->fhlen = p[30];
	r->mode = p[31] & 3;
	r->deny = (p[31] >> 2) & 3;
	r->start = get64(p + 32);
	r->end = get64(p + 40);
	r->excl = (p[13] & JR_F_BIT) != 0;
	r->solo = (p[13] & JR_F_SOLO) != 0;
	if ((p[13] & ~(JR_F_LAST | JR_F_BIT | JR_F_SOLO)) || (p[31] >> 4) ||
	    (r->solo && !(p[13] & JR_F_LAST)))
		return -EBADMSG;
	body = JR_HDR + r->hostlen + r->ohlen + r->fhlen;
	/* The sizes must agree exactly with a record we would write. */
	if (jr_rec_size(r) != n || body > n)
		return -EBADMSG;
	for (size_t i = body; i < n; i++)
		if (p[i])
			return -EBADMSG;
	r->host = (const char *)p + JR_HDR;
	r->oh = r->ohlen ? p + JR_HDR + r->hostlen : NULL;
	r->fh = p + JR_HDR + r->hostlen + r->ohlen;
	*batch = get64(p + 16);
	*last = (p[13] & JR_F_LAST) != 0;
	return (ssize_t)n;
}

ssize_t jr_rec_decode(const void *buf, size_t len, struct jr_rec *r, uint64_t *batch, bool *last)
{
	return jr_rec_decode_ex(buf, len, r, batch, last, true);
}

static const char *jr_type_name(enum jr_type t)
{
	static const char *const names[] = { "?", "HEADER", "LOCK", "UNLOCK", "SHARE",
					     "UNSHARE", "FREE_CLIENT" };
	return jr_type_known(t) ? names[t] : names[0];
}

/* ---- loading ---------------------------------------------------------- */

/* Unmap what jr_read_all mapped, SF_READ_CHUNK at a time with a yield
 * point between: freeing 90 MB in one munmap is another long stretch in
 * the kernel (see jr_read_all). */
static void jr_unmap(uint8_t *buf, size_t maplen)
{
	for (size_t at = 0; at < maplen; at += SF_READ_CHUNK) {
		munmap(buf + at, sf_chunk(maplen - at));
		thp_yield_point();
	}
}

/* @size bytes of anonymous memory, faulted in SF_READ_CHUNK at a time
 * with a yield point between (see jr_read_all); jr_unmap frees them. */
static int jr_map(size_t size, uint8_t **out)
{
	uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);

	if (buf == MAP_FAILED)
		return -ENOMEM;
	for (size_t at = 0; at < size; at += SF_READ_CHUNK) {
		/* Before Linux 5.14 (EINVAL) the read faults the pages in. */
		if (madvise(buf + at, sf_chunk(size - at), MADV_POPULATE_WRITE) < 0)
			break;
		thp_yield_point();
	}
	*out = buf;
	return 0;
}

/*
 * The whole journal file, opened through the state-file helper (a FIFO, a
 * symlink or a file over JR_FILE_MAX planted in its place is refused
 * before a byte is read: sfile.h), read into an anonymous mapping that is
 * faulted in before the read (MADV_POPULATE_WRITE).  A journal of a
 * million locks is ~90 MB: read into fresh malloc'ed memory, every 4 KiB
 * of it was a page fault taken inside read(2), ~15% of the replay on a
 * virtual machine.  The faulting is done SF_READ_CHUNK at a time with a
 * yield point between (thp_yield_point): one MAP_POPULATE of the whole
 * mapping held a CPU for 3.6 ms at a stretch, before the read (which is
 * chunked likewise: sfile.h).  One byte more than fstat's size is asked
 * for, so a file that grew since is caught (-EIO) instead of being
 * silently cut.  The caller unmaps *@out with jr_unmap(*@out, *@maplen).
 */
static int jr_read_all(const char *path, uint8_t **out, size_t *len, size_t *maplen)
{
	struct stat st;
	size_t size;
	uint8_t *buf;
	int fd, rc;

	rc = sf_open_read(AT_FDCWD, path, JR_FILE_MAX, &fd, &st);
	if (rc < 0)
		return rc;
	size = (size_t)st.st_size;
	rc = jr_map(size + 1, &buf);
	if (rc < 0)
		goto out;
	rc = sf_read_exact(fd, buf, size);
	if (rc < 0)
		goto err_unmap;
	*out = buf;
	*len = size;
	*maplen = size + 1;
	rc = 0;
	goto out;
err_unmap:
	jr_unmap(buf, size + 1);
out:
	close(fd);
	return rc;
}

/* Does a good record start anywhere in [@from, @len) that was written
 * after batch @torn was acknowledged: one of a batch JR_INFLIGHT_MAX or
 * more past @torn, or the solo last record of any batch past it?  Its
 * offset goes to *at. */
static bool jr_later_batch_after(const uint8_t *buf, size_t len, size_t from, uint64_t torn,
				 size_t *at)
{
	struct jr_rec r;
	uint64_t b;
	bool last;

	for (size_t pos = (from + 8) & ~(size_t)7; pos + JR_HDR <= len; pos += 8) {
		if (get32(buf + pos) != JR_MAGIC)
			continue;
		if (jr_rec_decode(buf + pos, len - pos, &r, &b, &last) > 0 &&
		    (b >= torn + JR_INFLIGHT_MAX || (b > torn && r.solo))) {
			*at = pos;
			return true;
		}
	}
	return false;
}

#define JR_DAMAGE(...) do { snprintf(info->why, sizeof(info->why), __VA_ARGS__); rc = -EUCLEAN; goto out; } while (0)

/* jr_load's replay of the @len bytes of a journal at @buf (*info zeroed
 * by the caller): also the fold's, over the part of the file it folds.
 * Records before offset @from are checked but not replayed (a fold of
 * what one owner appended: jr_compact_own). */
static int jr_replay_buf(const uint8_t *buf, size_t len, size_t from, const char *group,
			 jr_replay_fn fn, void *arg, struct jr_load_info *info)
{
	size_t pos = 0, committed = 0, nbatch = 0, cap = 0;
	size_t *batch_recs = NULL;         /* offsets of the open batch's records */
	uint64_t cur = 0, last_batch = 0;
	bool have_header = false, bad = false;
	int rc;

	info->file_size = (off_t)len;
	while (pos < len) {
		struct jr_rec r;
		uint64_t b;
		bool last;
		ssize_t n = jr_rec_decode(buf + pos, len - pos, &r, &b, &last);

		if (n < 0) {
			bad = true;
			break;
		}
		/* Every writer numbers a file's batches one up from the one
		 * before (a fold's copy and a held batch included), so a
		 * whole record of any other number where a batch starts was
		 * put there by something else: a batch from another place
		 * (a misdirected write), never a torn one. */
		if (nbatch == 0 && committed > 0 && b != last_batch + 1)
			JR_DAMAGE("batch %" PRIu64 " at offset %zu follows batch %" PRIu64
				  " (each batch is numbered one more than the one before)", b, pos,
				  last_batch);
		if (nbatch > 0 && b != cur)
			JR_DAMAGE("batch %" PRIu64 " at offset %zu interrupts unfinished batch %" PRIu64,
				  b, pos, cur);
		if (pos == 0 && r.type != JR_HEADER)
			JR_DAMAGE("the file does not start with a header");
		if (pos > 0 && r.type == JR_HEADER)
			JR_DAMAGE("a header in the middle, at offset %zu", pos);
		if (nbatch == cap) {
			size_t *nb = realloc(batch_recs, (cap ? cap * 2 : 64) * sizeof(*nb));
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			batch_recs = nb;
			cap = cap ? cap * 2 : 64;
		}
		batch_recs[nbatch++] = pos;
		cur = b;
		pos += (size_t)n;
		if (!last)
			continue;
		/* A whole batch: replay it. */
		for (size_t i = 0; i < nbatch; i++) {
			size_t at = batch_recs[i];
			jr_rec_decode_ex(buf + at, len - at, &r, &b, &last, false);
			if (r.type == JR_HEADER) {
				if (r.svid < JR_VERSION_MIN || r.svid > JR_VERSION)
					JR_DAMAGE("format version %u, this sgnfs reads %u to %u",
						  r.svid, JR_VERSION_MIN, JR_VERSION);
				if (r.hostlen != strlen(group) || memcmp(r.host, group, r.hostlen))
					JR_DAMAGE("it is the journal of another group");
				info->complete = r.excl;
				info->version = r.svid;
				have_header = true;
				continue;
			}
			if (at < from)
				continue;
			rc = fn(arg, &r);
			/* a ~1 us record at a time: a clock read per 16 */
			if ((info->records & 15) == 0)
				thp_yield_point();
			if (rc < 0) {
				info->bad_at = (off_t)at;
				snprintf(info->why, sizeof(info->why),
					 "%s record at offset %zu does not apply to the state before it (%s)",
					 jr_type_name(r.type), at, strerror(-rc));
				rc = -EUCLEAN;
				goto out;
			}
			info->records++;
		}
		info->batches++;
		last_batch = cur;
		committed = pos;
		nbatch = 0;
	}
	if (bad) {
		/* Only the batches being written when the writer died may be
		 * bad: from the open one (or, if none is open, the one after
		 * the last) on, JR_INFLIGHT_MAX of them (the most any
		 * writer had in flight: jr_set_inflight), and none before a
		 * solo one. */
		uint64_t torn = nbatch ? cur : last_batch + 1;
		size_t later;

		if (jr_later_batch_after(buf, len, pos, torn, &later)) {
			info->bad_at = (off_t)pos;
			JR_DAMAGE("bad record at offset %zu, but batch records follow at offset %zu: "
				  "acknowledged state is damaged", pos, later);
		}
	}
	if (!have_header) {
		info->bad_at = 0;
		JR_DAMAGE("no whole header batch");
	}
	info->valid_end = (off_t)committed;
	info->zero_tail = true;
	for (size_t k = committed; k < len && info->zero_tail; k++)
		info->zero_tail = buf[k] == 0;
	info->torn = !info->zero_tail;
	info->last_batch = last_batch;
	rc = 0;
out:
	if (rc == -EUCLEAN && info->bad_at == 0)
		info->bad_at = (off_t)pos;
	free(batch_recs);
	return rc;
}

/* The fold's output until its rename (in the journal's directory). */
#define JR_FOLD_TMP ".journal.fold"

int jr_load(const char *path, const char *group, jr_replay_fn fn, void *arg,
	    struct jr_load_info *info)
{
	uint8_t *buf = NULL;
	size_t len = 0, maplen = 0;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = jr_read_all(path, &buf, &len, &maplen);
	if (rc < 0)
		return rc;
	rc = jr_replay_buf(buf, len, 0, group, fn, arg, info);
	jr_unmap(buf, maplen);
	return rc;
}

/* ---- writing ---------------------------------------------------------- */

struct jr_buf {
	uint8_t *p;
	size_t len, cap;
	size_t last_at;               /* offset of the last record */
};

struct jr_waiter {
	struct jr_waiter *next;
	jr_done_fn fn;
	void *arg;
};

enum jr_job_kind { JR_JOB_APPEND, JR_JOB_SNAPSHOT };

/* One write on the thread pool: owned by itself while in flight.  Its
 * descriptors are its own (dup), so it never depends on the journal's
 * staying open: a job outliving jr_close closes what it has. */
struct jr_job {
	struct wq_work work;
	struct jr_job *next;          /* in the journal's queue, oldest first */
	struct jr *j;                 /* NULL once the journal closed: discard */
	enum jr_job_kind kind;
	bool done;                    /* ran; waits for the jobs before it */
	struct jr_buf buf;            /* owned */
	struct jr_waiter *waiters;    /* owned: called when done */
	int fd;                       /* owned; APPEND: the file; SNAPSHOT: the new file (out) */
	int dirfd;                    /* owned; SNAPSHOT only */
	off_t off;                    /* APPEND: where the batch goes */
	off_t extend_to;              /* APPEND: write zeros after the batch up to here */
	bool extended;                /* ... and it worked */
	bool complete;                /* SNAPSHOT: header's complete flag */
	bool drop_old;                /* SNAPSHOT: remove the old file first */
	uint64_t nrec;
	unsigned nwait;               /* APPEND: callers waiting for it (jr_wait) */
	uint64_t bno;                 /* APPEND: the batch's number */
	uint64_t io_ns;               /* APPEND: the write and fdatasync took (metrics) */
	int rc;
	/* io_uring path (APPEND only) */
	bool ring;                    /* its I/O went (goes) through the ring */
	bool io_ran;                  /* I/O finished; not yet taken (test hold) */
	bool trunc_only;              /* pool job: only cut the failed batch off */
	unsigned cqe_pending;         /* CQEs of the linked pair still to come */
	size_t written;               /* bytes of buf known to be written */
	uint64_t t0;
	char path[PATH_MAX], tmp[PATH_MAX];
};

struct jr {
	uv_loop_t *loop;
	char *group;                  /* owned */
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, dirfd;                /* owned */
	off_t end;                    /* next batch goes here */
	off_t alloc_end;              /* the file's size: zeros from end to here */
	bool no_prealloc;             /* zeroing failed (no room): plain appends
				       * until the next compaction */
	off_t compact_at;
	uint64_t batch;               /* number of the next batch */
	off_t durable_end;            /* every batch before here is durable ... */
	uint64_t durable_batch;       /* ... and this is the last of them */
	struct jr_buf pend;           /* the open batch; owned */
	uint64_t pend_nrec;
	struct jr_waiter *wait, **wtail; /* waiters for pend; owned */
	struct jr_job *jobs, *jlast;  /* in flight, oldest first; each owns itself */
	unsigned njobs;
	bool job_alone;               /* the job in flight must be the only one: a
				       * snapshot, or an append that zeroes space */
	bool failed;                  /* the file cannot be appended to */
	uint32_t version;             /* its header's format version: from 2 on,
				       * solo flags are written (the top of this file) */
	int err;
	bool compact_wanted, compact_complete, complete;
	struct jr_buf *snapbuf;       /* while a snapshot is being built */
	uint64_t snap_batch, snap_nrec;
	jr_snapshot_fn snap;
	void *snap_arg;
	const struct jr_fold_ops *fold_ops; /* borrowed; NULL: size-triggered
				       * compactions take the snapshot */
	void *fold_arg;
	bool fold_wanted;             /* a size-triggered compaction is due */
	bool own_wanted, own_complete; /* jr_compact_own is due (header: complete) */
	off_t own_from;               /* where this open's appends start; -1 once
				       * a compaction has mixed them with the rest */
	struct jr_fold *fold;         /* the fold under way, or NULL; while a
				       * step runs, owned by its work */
	bool fold_hold;               /* test: hold the next fold's first step */
	struct jr_fold *fold_held;    /* ... the one held */
	enum jr_fold_step fold_fail_step; /* test: fail the next fold there */
	int fold_fail_rc;
	uv_check_t check;             /* end of loop turn: submit the batch */
	uv_idle_t idle;               /* until then: the poll must not block (a check
				       * handle alone does not stop it blocking) */
	uv_timer_t retry;             /* after a failure: try a compaction */
	int open_handles;
	struct jr_stats st;
	/* io_uring (jr_attach); NULL: the thread pool writes the batches */
	struct io_uring *ring;        /* owned; handed to a drain job at close */
	int efd;                      /* owned (closed with the poll handle) */
	uv_poll_t poll;               /* efd readable: completions to read */
	unsigned ring_sqes;           /* submitted SQEs whose CQE is to come */
	bool ring_off;                /* a submit failed: the pool writes from now on */
	/* test hook (jr_test_hold): the next I/O to finish is not taken */
	unsigned hold_next;           /* this many more are held */
	struct jr_job *held[2 * JR_INFLIGHT_MAX]; /* in the order they finished */
	unsigned nheld;
	unsigned ios_done;
	/* gathering (jr_gather_hold) */
	unsigned pend_nwait;          /* callers waiting for pend */
	unsigned last_nwait;          /* ... for the last batch made durable */
	uint64_t last_done_ns;        /* when that batch was taken (uv_hrtime) */
	uint64_t sync_avg_ns;         /* moving average of a batch's write + sync */
	int gather_fd;                /* timerfd: the end of a hold, or -1
				       * (owned; closed with gather_poll) */
	uv_poll_t gather_poll;
	uint64_t gather_due;          /* the timer is armed for this; 0: not */
	bool gather_on;               /* the timer is watched: holds can end */
	/* jr_close: the caller has gone; what it appended is still written */
	bool closing;
	jr_closed_fn closed;          /* called once the last batch is durable */
	void *closed_arg;
	uint64_t close_t0;            /* uv_hrtime at jr_close */
};

static enum jr_io jr_io_mode = JR_IO_URING;
static unsigned jr_inflight = 1;
static bool jr_gather = true;

void jr_set_inflight(unsigned n)
{
	jr_inflight = n < 1 ? 1 : n > JR_INFLIGHT_MAX ? JR_INFLIGHT_MAX : n;
}

void jr_set_gather(bool on)
{
	jr_gather = on;
}

bool jr_get_gather(void)
{
	return jr_gather;
}

unsigned jr_get_inflight(void)
{
	return jr_inflight;
}

void jr_set_io(enum jr_io mode)
{
	jr_io_mode = mode;
}

const char *jr_io_name(enum jr_io mode)
{
	return mode == JR_IO_THREAD ? "thread" : "uring";
}

int jr_io_parse(const char *s, enum jr_io *out)
{
	if (strcmp(s, "uring") == 0)
		*out = JR_IO_URING;
	else if (strcmp(s, "thread") == 0)
		*out = JR_IO_THREAD;
	else
		return -EINVAL;
	return 0;
}

static int jr_buf_reserve(struct jr_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int jr_buf_add(struct jr_buf *b, const struct jr_rec *r, uint64_t batch)
{
	size_t n = jr_rec_size(r);
	ssize_t w;

	if (n == 0)
		return -EINVAL;
	if (jr_buf_reserve(b, n) < 0)
		return -ENOMEM;
	w = jr_rec_encode(r, batch, false, b->p + b->len, b->cap - b->len);
	if (w < 0)
		return (int)w;
	b->last_at = b->len;
	b->len += (size_t)w;
	return 0;
}

static int jr_write_all(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Zeros over [from, to) of @fd.  Blocking. */
static int jr_write_zeros(int fd, off_t from, off_t to)
{
	static const uint8_t zeros[64 << 10];

	while (from < to) {
		size_t n = (size_t)(to - from) < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		int rc = jr_write_all(fd, zeros, n, from);

		if (rc < 0)
			return rc;
		from += (off_t)n;
	}
	return 0;
}

/* A new journal holding @buf, durable, renamed over the old one in
 * @dirfd (sfile.h: a symlink or FIFO planted at the temporary name is
 * removed, never written through).  The open file (for appending) goes to
 * *fdp.  With @drop_old the old file goes first, for when there is no room
 * for both: a crash in between leaves no journal, which the next owner
 * treats as a plain grace, never as "no locks".  Blocking. */
static int jr_install(const char *tmp, const char *path, int dirfd, const struct jr_buf *buf,
		      bool drop_old, int *fdp)
{
	(void)tmp;
	(void)path;
	return sf_replace_ex(dirfd, "journal", buf->p, buf->len, 0600, drop_old, fdp);
}

/*
 * Is there room to zero @bytes ahead and still leave one JR_PREALLOC step
 * free?  Zeroing ahead is speculative: on a nearly full filesystem its
 * write took the last free bytes for a moment (until it failed and was cut
 * back), and a client-list record written in that moment failed with
 * ENOSPC, refusing that client's locks (seen on a 1 MiB tmpfs in
 * test_journal_full under load).  Unknown (fstatfs failed): try, as
 * before.  Blocking (a pool thread).
 */
static bool jr_room_ahead(int fd, off_t bytes)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return true;
	return (unsigned long long)sv.f_bavail * sv.f_frsize >=
	       (unsigned long long)bytes + JR_PREALLOC;
}

static void jr_job_work(struct wq_work *w)
{
	struct jr_job *job = w->data;
	off_t bend = job->off + (off_t)job->buf.len;

	if (job->trunc_only) {
		/* A ring write or sync failed: cut the batch back off (see below). */
		if (ftruncate(job->fd, job->off) < 0) {
			/* as below */
		}
		return;
	}
	if (job->kind == JR_JOB_SNAPSHOT) {
		job->rc = jr_install(job->tmp, job->path, job->dirfd, &job->buf, job->drop_old,
				     &job->fd);
		return;
	}
	uint64_t t0 = uv_hrtime();

	job->rc = jr_write_all(job->fd, job->buf.p, job->buf.len, job->off);
	if (job->rc == 0 && job->extend_to > bend) {
		/* Space for the next batches.  Without room for it the batch
		 * is still good: the zeros are cut off again and appending
		 * goes on without them. */
		job->extended = jr_room_ahead(job->fd, job->extend_to - bend) &&
				jr_write_zeros(job->fd, bend, job->extend_to) == 0;
		if (!job->extended && ftruncate(job->fd, bend) < 0)
			job->rc = -errno;
	}
	if (job->rc == 0 && fdatasync(job->fd) < 0)
		job->rc = -errno;
	job->io_ns = uv_hrtime() - t0;
	if (job->rc < 0 && ftruncate(job->fd, job->off) < 0) {
		/* Left as it is: the load treats it as the torn last batch,
		 * and nothing is ever appended after it. */
	}
}

static void jr_call_waiters(struct jr_waiter *w, int rc)
{
	while (w) {
		struct jr_waiter *next = w->next;
		w->fn(w->arg, rc);
		free(w);
		w = next;
	}
}

static void jr_free_waiters(struct jr_waiter *w)
{
	while (w) {
		struct jr_waiter *next = w->next;
		free(w);
		w = next;
	}
}

static void jr_job_free(struct jr_job *job)
{
	if (job->fd >= 0)
		close(job->fd);
	if (job->dirfd >= 0)
		close(job->dirfd);
	if (job->buf.cap >= JR_TRIM_AT) {
		/* A snapshot of a large table: give its pages back rather than
		 * keep them as the process's high-water mark. */
		free(job->buf.p);
		malloc_trim(0);
	} else {
		free(job->buf.p);
	}
	jr_free_waiters(job->waiters);
	free(job);
}

static void jr_kick(struct jr *j);

/* The open batch cannot be written: its waiters learn it, it is dropped. */
static void jr_fail_pending(struct jr *j, int rc)
{
	struct jr_waiter *w = j->wait;

	j->wait = NULL;
	j->wtail = &j->wait;
	j->pend.len = 0;
	j->pend_nrec = 0;
	j->pend_nwait = 0;
	jr_call_waiters(w, rc);
}

static void jr_append_finished(struct jr *j, struct jr_job *job, int rc)
{
	if (rc == 0 && !j->failed) {
		off_t bend = job->off + (off_t)job->buf.len;

		j->st.batches++;
		j->st.records += job->nrec;
		if (job->extend_to) {
			j->alloc_end = job->extended ? job->extend_to : bend;
			j->no_prealloc = !job->extended;
			if (!job->extended)
				log_info("group=%s journal: no room to zero %lld bytes ahead; "
					 "appending without it until the next compaction", j->group,
					 (long long)(job->extend_to - bend));
		} else if (bend > j->alloc_end) {
			j->alloc_end = bend;
		}
		/* Results are taken in order: every batch up to this one is
		 * durable (what a fold may read of the file). */
		j->durable_end = bend;
		j->durable_batch = job->bno;
		if (j->end >= j->compact_at) {
			if (j->fold_ops)
				j->fold_wanted = !j->fold; /* one under way covers it */
			else
				j->compact_wanted = true;
		}
	} else if (rc == 0) {
		/* Durable, but after a batch that failed: its records follow a
		 * gap, so they are not state either. */
		rc = j->err;
	} else if (!j->failed) {
		j->failed = true;
		j->err = rc;
		j->st.failures++;
		log_err("group=%s journal write failed (%s): new locks are refused until a "
			"compaction succeeds; held locks stay as they are", j->group,
			strerror(-rc));
	}
	jr_call_waiters(job->waiters, rc);
	job->waiters = NULL;
	if (rc < 0)
		jr_fail_pending(j, rc);
}

static void jr_snapshot_finished(struct jr *j, struct jr_job *job, int rc)
{
	if (rc == 0) {
		if (j->fd >= 0)
			close(j->fd);
		j->fd = job->fd;
		job->fd = -1;
		j->end = j->alloc_end = (off_t)job->buf.len;
		j->durable_end = j->end;
		j->durable_batch = j->snap_batch;
		j->fold_wanted = false;
		j->own_from = -1;
		j->version = JR_VERSION; /* a new file */
		j->no_prealloc = false;
		j->compact_at = j->end * 2 > JR_COMPACT_MIN ? j->end * 2 : JR_COMPACT_MIN;
		j->complete = job->complete;
		j->st.compactions++;
		j->st.records += job->nrec;
		if (j->failed)
			log_info("group=%s journal writable again after a compaction (%zu bytes)",
				 j->group, job->buf.len);
		else
			log_debug("group=%s journal compacted to %zu bytes", j->group, job->buf.len);
		j->failed = false;
		j->err = 0;
	} else {
		/* The snapshot absorbed the open batch, so the old file now
		 * lacks it: it cannot be appended to any more either. */
		log_err("group=%s journal compaction failed (%s): new locks are refused until one "
			"succeeds; retrying", j->group, strerror(-rc));
		j->failed = true;
		j->err = rc;
		j->st.failures++;
		j->compact_complete |= job->complete; /* for the retry */
	}
	jr_call_waiters(job->waiters, rc);
	job->waiters = NULL;
	if (rc < 0)
		jr_fail_pending(j, rc);
}

/* A job's I/O finished (on the loop, from either path).  Results are taken
 * in submission order: a batch's grants are acknowledged only once every
 * batch before it is durable too. */
static void jr_job_finished(struct jr *j, struct jr_job *job)
{
	job->io_ran = false;
	job->done = true;
	while (j->jobs && j->jobs->done) {
		job = j->jobs;
		j->jobs = job->next;
		if (!j->jobs)
			j->jlast = NULL;
		j->njobs--;
		j->job_alone = false;
		if (job->kind == JR_JOB_APPEND) {
			j->last_nwait = job->nwait;
			j->last_done_ns = uv_hrtime();
			if (job->rc == 0) {
				mt_observe(&j->st.fsync, job->io_ns);
				j->sync_avg_ns = jr_sync_avg_next(j->sync_avg_ns, job->io_ns);
			}
			jr_append_finished(j, job, job->rc);
		}
		else
			jr_snapshot_finished(j, job, job->rc);
		jr_job_free(job);
	}
	jr_kick(j);
}

/* The I/O of @job ran; hand it on unless a test holds it back. */
static void jr_io_ran(struct jr *j, struct jr_job *job)
{
	j->ios_done++;
	job->io_ran = true;
	if (j->hold_next && job->kind == JR_JOB_APPEND && j->nheld < 2 * JR_INFLIGHT_MAX) {
		j->hold_next--;
		j->held[j->nheld++] = job;
		return;
	}
	jr_job_finished(j, job);
}

static void jr_job_done(struct wq_work *w, int status)
{
	struct jr_job *job = w->data;
	struct jr *j = job->j;

	if (status < 0)
		job->rc = status;
	if (!j) {
		/* Closed meanwhile: nobody wants the result. */
		jr_job_free(job);
		return;
	}
	jr_io_ran(j, job);
}

void jr_test_hold(struct jr *j, unsigned n)
{
	j->hold_next = n;
}

unsigned jr_test_held(const struct jr *j)
{
	return j->nheld;
}

unsigned jr_test_ios_done(const struct jr *j)
{
	return j->ios_done;
}

void jr_test_release(struct jr *j)
{
	unsigned n = j->nheld;

	j->hold_next = 0;
	j->nheld = 0;
	for (unsigned k = 0; k < n; k++)
		jr_job_finished(j, j->held[k]);
}

/*
 * The average write + sync that bounds a hold (jr_gather_hold), after one
 * more batch took @sample ns: 1/8 new, so a few batches follow a change of
 * the disk's pace.  A sample counts as at most 4 times the average: one
 * stalled sync (seconds, a disk hiccup) must not hold the next batches for
 * a good part of that, while a disk that really got slower is followed
 * within a few dozen batches.
 */
uint64_t jr_sync_avg_next(uint64_t avg, uint64_t sample)
{
	if (!avg)
		return sample;
	if (sample / 4 > avg)
		sample = 4 * avg;
	return avg - avg / 8 + sample / 8;
}

void jr_test_sync_avg(struct jr *j, uint64_t ns)
{
	j->sync_avg_ns = ns;
}

bool jr_uses_uring(const struct jr *j)
{
	return j->ring && !j->ring_off;
}

/* ---- the io_uring path ---- */

#define JR_RING_ENTRIES 16      /* JR_INFLIGHT_MAX pairs, with room to spare */
#define JR_UD_SYNC 1u           /* user_data tag: the fdatasync of the pair */

/* Submit the rest of @job's batch (from job->written) and its fdatasync,
 * linked: the sync runs only after the whole write succeeded (a failed or
 * short write cancels it).  Returns 0, or -errno with nothing submitted. */
static int jr_ring_issue(struct jr *j, struct jr_job *job)
{
	struct io_uring_sqe *wr, *sync;
	int n, done = 0;

	if (io_uring_sq_space_left(j->ring) < 2)
		return -EAGAIN;
	wr = io_uring_get_sqe(j->ring);
	sync = io_uring_get_sqe(j->ring);
	io_uring_prep_write(wr, job->fd, job->buf.p + job->written,
			    (unsigned)(job->buf.len - job->written),
			    (uint64_t)(job->off + (off_t)job->written));
	wr->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(wr, (uint64_t)(uintptr_t)job);
	io_uring_prep_fsync(sync, job->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sync, (uint64_t)(uintptr_t)job | JR_UD_SYNC);
	while (done < 2) {
		n = io_uring_submit(j->ring);
		if (n < 0 && n != -EINTR && n != -EAGAIN)
			break;
		if (n > 0)
			done += n;
	}
	if (done == 2) {
		job->cqe_pending = 2;
		j->ring_sqes += 2;
		return 0;
	}
	/* The ring refused what it holds: it is not used again (its leftover
	 * entries are never submitted, so they touch nothing). */
	j->ring_off = true;
	log_err("group=%s journal: io_uring submit failed (%s); writing through the "
		"thread pool from now on", j->group, strerror(-n));
	if (done == 0)
		return n;
	/* The write went without its sync: it is not durable, so the batch
	 * fails like any failed write.  Its CQE still comes. */
	job->cqe_pending = 1;
	j->ring_sqes += 1;
	job->rc = -EIO;
	return 0;
}

static void jr_ring_cqe(struct jr *j, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct jr_job *job = (struct jr_job *)(uintptr_t)(ud & ~(uint64_t)JR_UD_SYNC);
	int res = cqe->res;

	j->ring_sqes--;
	if (!(ud & JR_UD_SYNC)) {
		if (res < 0 && job->rc == 0)
			job->rc = res;
		else if (res == 0 && job->rc == 0)
			job->rc = -EIO;
		else if (res > 0)
			job->written += (size_t)res;
	} else if (res < 0 && res != -ECANCELED && job->rc == 0) {
		job->rc = res;
	}
	if (--job->cqe_pending)
		return;
	if (job->rc == 0 && job->written < job->buf.len) {
		/* A short write cancelled its sync: write the rest, sync again. */
		if (jr_ring_issue(j, job) == 0)
			return;
		job->rc = -EIO;
	}
	job->io_ns = uv_hrtime() - job->t0;
	if (job->rc < 0) {
		/* The batch is cut off the file again on the pool (blocking),
		 * as the thread path does; then it is taken as failed. */
		job->trunc_only = true;
		job->work.data = job;
		if (wq_queue(j->loop, &job->work, jr_job_work, jr_job_done) == 0)
			return;
	}
	jr_io_ran(j, job);
}

static void jr_ring_poll_cb(uv_poll_t *p, int status, int events)
{
	struct jr *j = p->data;
	struct io_uring_cqe *cqe;
	uint64_t v;

	(void)status;
	(void)events;
	if (read(j->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled since the last read; the ring is
		 * looked at anyway. */
	}
	while (j->ring && io_uring_peek_cqe(j->ring, &cqe) == 0) {
		struct io_uring_cqe c = *cqe;

		io_uring_cqe_seen(j->ring, cqe);
		jr_ring_cqe(j, &c);
	}
}

/* Submit @job through the ring: 0, or -errno (then the pool takes it). */
static int jr_ring_submit(struct jr *j, struct jr_job *job)
{
	int rc;

	if (!j->ring || j->ring_off || job->kind != JR_JOB_APPEND || job->extend_to)
		return -ENOTSUP;
	job->ring = true;
	job->t0 = uv_hrtime();
	rc = jr_ring_issue(j, job);
	if (rc < 0)
		job->ring = false;
	return rc;
}

/* Set the ring up for @j on its loop; without it the pool writes. */
static void jr_ring_open(struct jr *j)
{
	struct io_uring *ring;
	int rc;

	j->efd = -1;
	if (jr_io_mode != JR_IO_URING)
		return;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return;
	rc = io_uring_queue_init(JR_RING_ENTRIES, ring, 0);
	if (rc < 0) {
		log_info("group=%s journal: io_uring not available (%s); batches are written "
			 "on the thread pool", j->group, strerror(-rc));
		free(ring);
		return;
	}
	j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (j->efd < 0 || io_uring_register_eventfd(ring, j->efd) < 0 ||
	    uv_poll_init(j->loop, &j->poll, j->efd) < 0) {
		log_info("group=%s journal: cannot watch io_uring completions; batches are "
			 "written on the thread pool", j->group);
		if (j->efd >= 0)
			close(j->efd);
		j->efd = -1;
		io_uring_queue_exit(ring);
		free(ring);
		return;
	}
	j->poll.data = j;
	uv_poll_start(&j->poll, UV_READABLE, jr_ring_poll_cb);
	j->ring = ring;
	j->open_handles++;
}

/* A closed journal's ring with writes still in flight: wait for them on
 * the pool (the kernel may still read their buffers), then free them. */
struct jr_drain {
	struct wq_work work;
	struct io_uring *ring;
	unsigned sqes;
};

static void jr_drain_work(struct wq_work *w)
{
	struct jr_drain *d = w->data;
	struct io_uring_cqe *cqe;

	while (d->sqes) {
		int rc = io_uring_wait_cqe(d->ring, &cqe);
		struct jr_job *job;

		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break; /* cannot happen with entries in flight; give up */
		job = (struct jr_job *)(uintptr_t)(io_uring_cqe_get_data64(cqe) &
						   ~(uint64_t)JR_UD_SYNC);
		io_uring_cqe_seen(d->ring, cqe);
		d->sqes--;
		if (--job->cqe_pending == 0)
			jr_job_free(job);
	}
	io_uring_queue_exit(d->ring);
}

static void jr_drain_done(struct wq_work *w, int status)
{
	struct jr_drain *d = w->data;

	(void)status;
	free(d->ring);
	free(d);
}

static void jr_ring_close(struct jr *j)
{
	struct jr_drain *d;

	if (!j->ring)
		return;
	uv_poll_stop(&j->poll);
	if (j->ring_sqes && (d = calloc(1, sizeof(*d)))) {
		d->ring = j->ring;
		d->sqes = j->ring_sqes;
		d->work.data = d;
		if (wq_queue(j->loop, &d->work, jr_drain_work, jr_drain_done) == 0) {
			j->ring = NULL;
			return;
		}
		free(d);
	}
	if (j->ring_sqes) {
		/* No way to hand it over: wait here rather than free buffers
		 * the kernel may still read. */
		struct jr_drain dd = { .ring = j->ring, .sqes = j->ring_sqes };

		dd.work.data = &dd;
		jr_drain_work(&dd.work);
	} else {
		io_uring_queue_exit(j->ring);
	}
	free(j->ring);
	j->ring = NULL;
}

static void jr_retry_cb(uv_timer_t *t)
{
	struct jr *j = t->data;

	if (j->closing) {
		jr_kick(j); /* the last batch, not submitted before */
	} else if (j->failed && !j->njobs) {
		j->compact_wanted = true;
		jr_kick(j);
	} else if (!j->failed && !j->fold && (j->fold_wanted || j->own_wanted)) {
		jr_kick(j); /* a fold that waited for its turn */
	}
}

static int jr_submit(struct jr *j, struct jr_job *job, bool alone)
{
	job->j = j;
	job->work.data = job;
	if (jr_ring_submit(j, job) < 0 &&
	    wq_queue(j->loop, &job->work, jr_job_work, jr_job_done) != 0)
		return -EAGAIN;
	job->next = NULL;
	if (j->jlast)
		j->jlast->next = job;
	else
		j->jobs = job;
	j->jlast = job;
	j->njobs++;
	j->job_alone = alone;
	return 0;
}

/* ---- compaction off the loop: the fold -----------------------------------
 * (the story and why it is safe: the comment at the top of this file) */


enum jr_fold_phase {
	JR_FP_BUILD,                  /* read [0, x), replay, write the snapshot */
	JR_FP_COPY,                   /* copy [from, to) of the old file, appends going on */
	JR_FP_SWITCH,                 /* appends held: copy the rest, rename */
	JR_FP_RELEASE,                /* over: close (and unlink the temporary) */
};

/* A fold under way.  The loop owns it between steps; while a step runs on
 * the pool (busy) only that step touches it but for j, which the loop
 * clears when the journal closes (the step's end then frees it). */
struct jr_fold {
	struct wq_work work;
	struct jr *j;                 /* NULL: closed or over; the step's end frees it */
	enum jr_fold_phase phase;     /* the step queued, or the last that ran */
	bool busy;                    /* a step is on the pool */
	bool holding;                 /* appends are held for the switch */
	const struct jr_fold_ops *ops; /* borrowed (jr_set_fold) */
	void *arg;
	char *group;                  /* owned */
	bool complete;                /* the header's flag: the journal's, unchanged */
	int dirfd, wfd;               /* owned dups: the directory, the file appended to */
	int oldfd;                    /* owned: the old file, read-only */
	int tmpfd;                    /* owned: the new file (until the switch) */
	int oldwfd;                   /* owned after the switch: the journal's old
				       * descriptor, closed off the loop */
	off_t x;                      /* [0, x) of the old file is folded */
	off_t own_from;               /* ... its records from here on only (0: all) */
	uint64_t batch;               /* the snapshot's number: the last batch in [0, x) */
	off_t snaplen;                /* old offset o >= x goes to o - x + snaplen */
	off_t from, to;               /* the copy: [from, to) of the old file */
	off_t paced;                  /* the new file's writeback started up to here */
	uint64_t nrec;
	struct jr_buf buf;            /* BUILD: the snapshot being encoded */
	uint64_t hold_t0;             /* uv_hrtime when appends were held */
	int rc;
	bool refused;                 /* the file did not replay: snapshot instead */
	bool renamed;                 /* the new file has the journal's name */
	bool unlink_tmp;              /* RELEASE: remove the temporary too */
	enum jr_fold_step fail_step;  /* test: fail there with fail_rc */
	int fail_rc;
	char why[200];                /* what failed, for the log */
};

/* Folds building at once in this process (loop thread only).  A build
 * holds a state I/O thread (wq.h) for its whole length (seconds for a
 * million locks), and those threads also write what cannot wait long (the zeroing
 * appends of every journal, the client lists): one at a time leaves it
 * the other threads.  A group whose turn it is not tries again at its
 * next batch. */
#define JR_FOLDS_MAX 1
static unsigned jr_folds_building;

static int jr_fold_inject(const struct jr_fold *f, enum jr_fold_step step)
{
	return f->fail_step == step ? f->fail_rc : 0;
}

/* [0, @size) of @fd into a mapping of its own (jr_map; freed with
 * jr_unmap), SF_READ_CHUNK per read with a yield point between, as the
 * load reads (sfile.h says why).  The file goes on growing past @size
 * meanwhile: only what was durable when the fold started is read. */
static int jr_read_range(int fd, size_t size, uint8_t **out)
{
	uint8_t *buf;
	int rc = jr_map(size, &buf);

	if (rc < 0)
		return rc;
	for (size_t at = 0; at < size;) {
		ssize_t n = pread(fd, buf + at, sf_chunk(size - at), (off_t)at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			jr_unmap(buf, size);
			return rc;
		}
		at += (size_t)n;
		thp_yield_point();
	}
	*out = buf;
	return 0;
}

struct jr_fold_replay {
	const struct jr_fold *f;
	void *st;                     /* the caller's private state */
	int rc;                       /* what apply refused with */
};

static int jr_fold_apply(void *arg, const struct jr_rec *r)
{
	struct jr_fold_replay *fr = arg;
	int rc = fr->f->ops->apply(fr->st, r);

	if (rc < 0)
		fr->rc = rc;
	return rc;
}

/* ops->emit's add: one record of the snapshot (a header would end it). */
static int jr_fold_add(void *arg, const struct jr_rec *r)
{
	struct jr_fold *f = arg;
	int rc;

	if (r->type == JR_HEADER)
		return -EINVAL;
	rc = jr_buf_add(&f->buf, r, f->batch);
	if (rc == 0)
		f->nrec++;
	return rc;
}

/* A fold's writes are handed to writeback JR_PACE at a time, waiting for
 * the step before: tens of MB left dirty and flushed by one fdatasync
 * queued every other journal's sync on the disk behind them (another
 * group's LOCK waited for its batch that long). */
#define JR_PACE ((off_t)4 << 20)

static void jr_pace(int fd, off_t done_to, off_t *paced)
{
	while (done_to - *paced >= JR_PACE) {
		if (*paced >= JR_PACE)
			(void)sync_file_range(fd, *paced - JR_PACE, JR_PACE,
					      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					      SYNC_FILE_RANGE_WAIT_AFTER);
		(void)sync_file_range(fd, *paced, JR_PACE, SYNC_FILE_RANGE_WRITE);
		*paced += JR_PACE;
	}
}

/* The new file under JR_FOLD_TMP, holding the snapshot, durable.  As
 * sf_replace_ex: whatever is at the name (a crashed fold's leftover, a
 * planted symlink) is removed, never written through. */
static int jr_fold_create(struct jr_fold *f)
{
	int rc;

	if (unlinkat(f->dirfd, JR_FOLD_TMP, 0) < 0 && errno != ENOENT)
		return -errno;
	f->tmpfd = openat(f->dirfd, JR_FOLD_TMP,
			  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (f->tmpfd < 0)
		return -errno;
	if (fchmod(f->tmpfd, 0600) < 0)
		return -errno;
	rc = jr_fold_inject(f, JR_FOLD_WRITE);
	for (size_t at = 0; rc == 0 && at < f->buf.len;) {
		size_t n = f->buf.len - at < (size_t)JR_PACE ? f->buf.len - at : (size_t)JR_PACE;

		rc = jr_write_all(f->tmpfd, f->buf.p + at, n, (off_t)at);
		at += n;
		jr_pace(f->tmpfd, (off_t)at, &f->paced);
		thp_yield_point();
	}
	if (rc == 0 && fdatasync(f->tmpfd) < 0)
		rc = -errno;
	return rc;
}

#define JR_FOLD_WHY(...) snprintf(f->why, sizeof(f->why), __VA_ARGS__)

/* Step 1 (pool): the state of [0, x) of the old file, replayed into the
 * caller's private state, emitted as the new file's first batch. */
static void jr_fold_build(struct jr_fold *f)
{
	struct jr_rec h = { .type = JR_HEADER, .host = f->group, .hostlen = strlen(f->group),
			    .svid = JR_VERSION, .excl = f->complete,
			    .start = (uint64_t)time(NULL) };
	struct jr_fold_replay fr = { .f = f };
	struct jr_load_info li;
	struct stat ws, rs;
	uint8_t *map = NULL;
	int rc;

	rc = sf_open(f->dirfd, "journal", O_RDONLY, 0, JR_FILE_MAX, &f->oldfd, &rs);
	if (rc < 0) {
		JR_FOLD_WHY("cannot open it to read: %s", sf_strerror(rc));
		goto out;
	}
	/* Only the file being appended to may be folded: the name names
	 * it unless someone else renamed a file over it. */
	if (fstat(f->wfd, &ws) < 0 || ws.st_dev != rs.st_dev || ws.st_ino != rs.st_ino) {
		rc = -ESTALE;
		JR_FOLD_WHY("the name no longer names the file appended to");
		goto out;
	}
	rc = jr_fold_inject(f, JR_FOLD_READ);
	if (rc == 0)
		rc = jr_read_range(f->oldfd, (size_t)f->x, &map);
	if (rc < 0) {
		JR_FOLD_WHY("cannot read it: %s", strerror(-rc));
		goto out;
	}
	rc = f->ops->new(f->arg, &fr.st);
	if (rc == 0) {
		memset(&li, 0, sizeof(li));
		rc = jr_replay_buf(map, (size_t)f->x, (size_t)f->own_from, f->group, jr_fold_apply,
				   &fr, &li);
		if (rc == 0 && (li.valid_end != f->x || li.last_batch != f->batch)) {
			rc = -EUCLEAN;
			snprintf(li.why, sizeof(li.why),
				 "its durable part ends with batch %" PRIu64 " at offset %lld, "
				 "expected %" PRIu64 " at %lld", li.last_batch,
				 (long long)li.valid_end, f->batch, (long long)f->x);
		}
		if (rc == -EUCLEAN && fr.rc == -ENOMEM) {
			rc = -ENOMEM;
		} else if (rc == -EUCLEAN) {
			/* The file does not replay: it would not load either. */
			f->refused = true;
			JR_FOLD_WHY("%s", li.why);
		}
	}
	jr_unmap(map, (size_t)f->x);
	if (rc == 0)
		rc = jr_buf_add(&f->buf, &h, f->batch);
	if (rc == 0)
		rc = f->ops->emit(fr.st, jr_fold_add, f);
	if (fr.st)
		f->ops->free(fr.st);
	if (rc < 0) {
		if (!f->refused)
			JR_FOLD_WHY("cannot build its state: %s", strerror(-rc));
		goto out;
	}
	jr_rec_set_last(f->buf.p + f->buf.last_at, true, true);
	f->snaplen = (off_t)f->buf.len;
	rc = jr_fold_create(f);
	if (rc < 0)
		JR_FOLD_WHY("cannot write the new file: %s", strerror(-rc));
out:
	free(f->buf.p);
	if (f->buf.cap >= JR_TRIM_AT)
		malloc_trim(0);
	memset(&f->buf, 0, sizeof(f->buf));
	f->rc = rc;
}

/* Copy [from, to) of the old file after the new file's snapshot, then
 * make it durable.  The bytes are whole batches already durable in the
 * old file (their results were taken), copied as they are. */
static int jr_fold_copy(struct jr_fold *f)
{
	off_t at = f->from;
	uint8_t *b;
	int rc = jr_fold_inject(f, JR_FOLD_COPY);

	if (rc < 0 || f->from >= f->to)
		return rc;
	b = malloc(SF_READ_CHUNK);
	if (!b)
		return -ENOMEM;
	while (at < f->to) {
		ssize_t n = pread(f->oldfd, b, sf_chunk((size_t)(f->to - at)), at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		rc = jr_write_all(f->tmpfd, b, (size_t)n, at - f->x + f->snaplen);
		if (rc < 0)
			break;
		at += n;
		jr_pace(f->tmpfd, at - f->x + f->snaplen, &f->paced);
		thp_yield_point();
	}
	free(b);
	if (rc == 0 && fdatasync(f->tmpfd) < 0)
		rc = -errno;
	return rc;
}

static void jr_fold_close_fds(struct jr_fold *f)
{
	int *fds[] = { &f->dirfd, &f->wfd, &f->oldfd, &f->tmpfd, &f->oldwfd };

	for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++) {
		if (*fds[k] >= 0)
			close(*fds[k]);
		*fds[k] = -1;
	}
}

/* The build is background work, as a group's open is (group.c,
 * grp_open_thread): a thread of its own, niced, with a short slice, off
 * one CPU, giving way at its yield points, so a thread woken on its CPU
 * (the journal's io_uring worker behind another group's LOCK) runs at
 * once.  The pool thread waits for it (not the loop). */
#define JR_FOLD_NICE 10

static void *jr_fold_thread(void *arg)
{
	struct jr_fold *f = arg;

	(void)thp_reader("sgnfs-fold", JR_FOLD_NICE);
	jr_fold_build(f);
	return NULL;
}

static void jr_fold_work(struct wq_work *w)
{
	struct jr_fold *f = w->data;
	pthread_t th;

	switch (f->phase) {
	case JR_FP_BUILD:
		if (pthread_create(&th, NULL, jr_fold_thread, f) == 0)
			pthread_join(th, NULL);
		else
			jr_fold_build(f); /* here, at the pool's priority */
		break;
	case JR_FP_COPY:
		f->rc = jr_fold_copy(f);
		if (f->rc < 0)
			JR_FOLD_WHY("cannot copy what was appended meanwhile: %s", strerror(-f->rc));
		break;
	case JR_FP_SWITCH:
		f->rc = jr_fold_copy(f);
		if (f->rc < 0) {
			JR_FOLD_WHY("cannot copy what was appended meanwhile: %s", strerror(-f->rc));
			break;
		}
		f->rc = jr_fold_inject(f, JR_FOLD_RENAME);
		if (f->rc == 0 && renameat(f->dirfd, JR_FOLD_TMP, f->dirfd, "journal") < 0)
			f->rc = -errno;
		if (f->rc < 0) {
			JR_FOLD_WHY("cannot rename the new file over the old: %s",
				    strerror(-f->rc));
			break;
		}
		f->renamed = true;
		/* The rename is durable only once the directory is. */
		if (fsync(f->dirfd) < 0) {
			f->rc = -errno;
			JR_FOLD_WHY("cannot sync the directory after the rename: %s",
				    strerror(-f->rc));
		}
		break;
	case JR_FP_RELEASE:
		/* Closing the last descriptor of the replaced file, or
		 * unlinking a temporary, frees its blocks: tens of MB, a
		 * long stretch in the kernel that must not be the loop's. */
		if (f->unlink_tmp && f->dirfd >= 0)
			unlinkat(f->dirfd, JR_FOLD_TMP, 0);
		jr_fold_close_fds(f);
		return;
	}
	if (f->rc < 0 && !f->renamed && f->tmpfd >= 0) {
		/* The old file stays the journal: the new one goes. */
		close(f->tmpfd);
		f->tmpfd = -1;
		unlinkat(f->dirfd, JR_FOLD_TMP, 0);
	}
}

static void jr_fold_free(struct jr_fold *f)
{
	jr_fold_close_fds(f);
	free(f->buf.p);
	free(f->group);
	free(f);
}

static void jr_fold_done(struct wq_work *w, int status);

static int jr_fold_queue(struct jr *j, struct jr_fold *f)
{
	f->busy = true;
	f->work.data = f;
	if (wq_queue(j->loop, &f->work, jr_fold_work, jr_fold_done) == 0)
		return 0;
	f->busy = false;
	return -EAGAIN;
}

/* The fold is over (done, given up or set aside): the journal forgets it,
 * and its descriptors (the temporary too, with @unlink_tmp) go on the
 * pool. */
static void jr_fold_release(struct jr *j, struct jr_fold *f, bool unlink_tmp)
{
	if (j->fold == f)
		j->fold = NULL;
	if (j->fold_held == f)
		j->fold_held = NULL;
	f->j = NULL;
	f->holding = false;
	f->phase = JR_FP_RELEASE;
	f->unlink_tmp = unlink_tmp;
	if (jr_fold_queue(j, f) == 0)
		return;
	if (unlink_tmp && f->dirfd >= 0)
		unlinkat(f->dirfd, JR_FOLD_TMP, 0);
	jr_fold_free(f);
}

/* A fold failed before its rename: the old file is the journal, whole,
 * and appending to it went on.  Try again once it has grown another
 * JR_COMPACT_MIN (an error such as ENOMEM or EIO may well have passed by
 * then; trying at once would repeat the read for nothing), or, if the
 * file itself does not replay, compact the old way now: from the
 * caller's live state, the only one that can put such a file right. */
static void jr_fold_give_up(struct jr *j, struct jr_fold *f)
{
	j->st.fold_failures++;
	j->compact_at = j->end + JR_COMPACT_MIN;
	j->fold_wanted = false;
	if (f->own_from) {
		/* What jr_compact_own drops must go: the snapshot does it. */
		log_err("group=%s journal fold of this owner's records given up (%s); "
			"compacting from the live state instead", j->group, f->why);
		j->compact_wanted = true;
		j->compact_complete |= f->complete;
	} else if (f->refused) {
		log_err("group=%s journal fold given up: the journal does not replay (%s); "
			"compacting from the live state instead", j->group, f->why);
		j->compact_wanted = true;
	} else {
		log_err("group=%s journal fold given up (%s); appending to the journal as it is, "
			"next try at %lld bytes", j->group, f->why, (long long)j->compact_at);
	}
	jr_fold_release(j, f, true);
}

/* The new file is the journal: append to it from here on. */
static void jr_fold_switched(struct jr *j, struct jr_fold *f)
{
	off_t copied = f->to - f->x;

	f->oldwfd = j->fd;
	j->fd = f->tmpfd;
	f->tmpfd = -1;
	j->end = j->alloc_end = f->snaplen + copied;
	j->durable_end = j->end;
	j->no_prealloc = false;
	j->compact_at = j->end * 2 > JR_COMPACT_MIN ? j->end * 2 : JR_COMPACT_MIN;
	j->fold_wanted = false;
	j->own_from = -1;
	j->version = JR_VERSION; /* a new file */
	j->complete = f->complete;
	j->st.compactions++;
	j->st.folds++;
	j->st.records += f->nrec;
	log_info("group=%s journal folded off the loop: %lld bytes to a %lld-byte state and "
		 "%lld bytes appended meanwhile; appends held %.3f ms", j->group,
		 (long long)f->x, (long long)f->snaplen, (long long)copied,
		 (double)(uv_hrtime() - f->hold_t0) / 1e6);
	jr_fold_release(j, f, false);
}

/* A step of @f came back to the loop: start the next. */
static void jr_fold_step_done(struct jr *j, struct jr_fold *f)
{
	if (f->rc < 0 && f->renamed) {
		/* The new file has the journal's name but the directory may
		 * not say so after a crash, and then appends to it would be
		 * lost: the journal is failed, and the compaction that makes
		 * it writable again syncs the directory itself. */
		jr_fold_switched(j, f);
		j->failed = true;
		j->err = -EIO;
		j->st.failures++;
		log_err("group=%s journal fold: %s; new locks are refused until a compaction "
			"succeeds", j->group, f->why);
		jr_fail_pending(j, -EIO);
		jr_kick(j);
		return;
	}
	if (f->rc < 0) {
		jr_fold_give_up(j, f);
		jr_kick(j);
		return;
	}
	if (f->phase == JR_FP_SWITCH) {
		/* Renamed: the new file is the journal, whatever came since. */
		jr_fold_switched(j, f);
		jr_kick(j);
		return;
	}
	if (j->closing) {
		/* No switch now: the last batch goes to the old file. */
		jr_fold_release(j, f, true);
		jr_kick(j);
		return;
	}
	if (j->failed || j->compact_wanted || (j->own_wanted && !f->own_from)) {
		/* A snapshot of the live state goes first (jr_kick), or a
		 * fold of this owner's records, which drops what this one
		 * would keep. */
		log_info("group=%s journal fold set aside for a compaction from the live state",
			 j->group);
		jr_fold_release(j, f, true);
		jr_kick(j);
		return;
	}
	switch (f->phase) {
	case JR_FP_BUILD:
		/* Copy what became durable meanwhile, appends going on, so
		 * that little is left for the switch. */
		f->phase = JR_FP_COPY;
		f->to = j->durable_end;
		if (f->to > f->from && jr_fold_queue(j, f) == 0)
			return;
		break;
	case JR_FP_COPY:
		f->from = f->to;
		break;
	case JR_FP_SWITCH:
	case JR_FP_RELEASE:
		return;
	}
	/* Hold appends; the switch starts once nothing is in flight. */
	f->holding = true;
	f->hold_t0 = uv_hrtime();
	jr_kick(j);
}

static void jr_fold_done(struct wq_work *w, int status)
{
	struct jr_fold *f = w->data;
	struct jr *j = f->j;

	f->busy = false;
	if (f->phase == JR_FP_BUILD)
		jr_folds_building--;
	if (status < 0 && f->rc == 0)
		f->rc = status;
	if (!j) {
		/* Released, or the journal closed meanwhile. */
		jr_fold_free(f);
		return;
	}
	if (f->phase == JR_FP_BUILD && j->fold_hold && !j->closing) {
		j->fold_hold = false;
		j->fold_held = f;
		return;
	}
	jr_fold_step_done(j, f);
}

static void jr_wake(struct jr *j);

/* Start a fold of what is durable now (@own: of what this open appended
 * only, jr_compact_own); appends go on. */
static void jr_fold_start(struct jr *j, bool own)
{
	struct jr_fold *f;
	int rc = -ENOMEM;

	if (jr_folds_building >= JR_FOLDS_MAX) {
		/* Still wanted: tried again after the next batch, or in a
		 * second (a grace end's fold must not wait for an append). */
		if (!uv_is_active((uv_handle_t *)&j->retry))
			uv_timer_start(&j->retry, jr_retry_cb, JR_RETRY_MS, 0);
		return;
	}
	if (own)
		j->own_wanted = false;
	else
		j->fold_wanted = false;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto err;
	f->dirfd = f->wfd = f->oldfd = f->tmpfd = f->oldwfd = -1;
	f->j = j;
	f->ops = j->fold_ops;
	f->arg = j->fold_arg;
	f->complete = j->complete || (own && j->own_complete);
	f->own_from = own ? j->own_from : 0;
	f->x = f->from = j->durable_end;
	f->batch = j->durable_batch;
	f->fail_step = j->fold_fail_step;
	f->fail_rc = j->fold_fail_rc;
	j->fold_fail_step = 0;
	j->fold_fail_rc = 0;
	f->group = strdup(j->group);
	if (!f->group)
		goto err;
	f->dirfd = dup(j->dirfd);
	f->wfd = dup(j->fd);
	if (f->dirfd < 0 || f->wfd < 0) {
		rc = -errno;
		goto err;
	}
	f->phase = JR_FP_BUILD;
	j->fold = f;
	if (jr_fold_queue(j, f) == 0) {
		jr_folds_building++;
		return;
	}
	j->fold = NULL;
	rc = -EAGAIN;
err:
	j->st.fold_failures++;
	if (own) {
		log_err("group=%s cannot start a journal fold: %s; compacting from the live state "
			"instead", j->group, strerror(-rc));
		j->compact_wanted = true;
		j->compact_complete |= j->own_complete;
	} else {
		j->compact_at = j->end + JR_COMPACT_MIN;
		log_err("group=%s cannot start a journal fold: %s; next try at %lld bytes",
			j->group, strerror(-rc), (long long)j->compact_at);
	}
	if (f)
		jr_fold_free(f);
}

/* Appends are held and nothing is in flight: copy the rest and rename. */
static int jr_fold_switch(struct jr *j, struct jr_fold *f)
{
	f->phase = JR_FP_SWITCH;
	f->to = j->end;
	if (jr_fold_queue(j, f) == 0)
		return 0;
	f->rc = -EAGAIN;
	JR_FOLD_WHY("cannot queue its last step");
	jr_fold_give_up(j, f);
	return -EAGAIN;
}

void jr_compact_own(struct jr *j, bool complete)
{
	if (j->failed || !j->fold_ops) {
		jr_compact(j, complete);
		return;
	}
	j->own_wanted = true;
	j->own_complete |= complete;
	jr_wake(j);
}

void jr_set_fold(struct jr *j, const struct jr_fold_ops *ops, void *arg)
{
	j->fold_ops = ops;
	j->fold_arg = arg;
}

bool jr_folding(const struct jr *j)
{
	return j->fold != NULL;
}

void jr_test_fold_hold(struct jr *j)
{
	j->fold_hold = true;
}

bool jr_test_fold_held(const struct jr *j)
{
	return j->fold_held != NULL;
}

void jr_test_fold_release(struct jr *j)
{
	struct jr_fold *f = j->fold_held;

	j->fold_hold = false;
	j->fold_held = NULL;
	if (f)
		jr_fold_step_done(j, f);
}

void jr_test_fold(struct jr *j)
{
	if (j->fold_ops && !j->fold) {
		j->fold_wanted = true;
		jr_wake(j);
	}
}

bool jr_test_fold_holding(const struct jr *j)
{
	return j->fold && j->fold->holding;
}

void jr_test_fold_fail(struct jr *j, enum jr_fold_step step, int rc)
{
	j->fold_fail_step = step;
	j->fold_fail_rc = rc;
}

/* Start a compaction (nothing in flight): the snapshot comes from the
 * caller's state now. */
static void jr_start_snapshot(struct jr *j)
{
	struct jr_job *job = calloc(1, sizeof(*job));
	bool complete = j->complete || j->compact_complete;
	struct jr_rec h = { .type = JR_HEADER, .host = j->group, .hostlen = strlen(j->group),
			    .svid = JR_VERSION, .excl = complete,
			    .start = (uint64_t)time(NULL) };
	int rc;

	j->compact_wanted = false;
	j->compact_complete = false;
	if (!job)
		return;
	job->kind = JR_JOB_SNAPSHOT;
	job->complete = complete;
	job->fd = -1;
	job->dirfd = dup(j->dirfd);
	if (job->dirfd < 0) {
		rc = -errno;
		goto refused;
	}
	if (j->failed && (j->err == -ENOSPC || j->err == -EDQUOT || j->err == -EFBIG)) {
		/* The full filesystem may be full of this very journal: let
		 * it go (our descriptor too, or its space stays taken; no job
		 * holds a copy, as none is in flight). */
		job->drop_old = true;
		if (j->fd >= 0)
			close(j->fd);
		j->fd = -1;
	}
	snprintf(job->path, sizeof(job->path), "%s", j->path);
	snprintf(job->tmp, sizeof(job->tmp), "%s", j->tmp);
	j->snap_batch = j->batch++;
	rc = jr_buf_add(&job->buf, &h, j->snap_batch);
	j->snapbuf = &job->buf;
	j->snap_nrec = 0;
	if (rc == 0)
		rc = j->snap(j->snap_arg, j);
	j->snapbuf = NULL;
	if (rc == 0) {
		jr_rec_set_last(job->buf.p + job->buf.last_at, true, true);
		job->nrec = j->snap_nrec;
		rc = jr_submit(j, job, true);
	}
	if (rc == 0) {
		/* The snapshot is the state after every record of the open
		 * batch: that batch is not written, its waiters wait for the
		 * snapshot instead. */
		job->waiters = j->wait;
		j->wait = NULL;
		j->wtail = &j->wait;
		j->pend.len = 0;
		j->pend_nrec = 0;
		j->pend_nwait = 0;
		return;
	}
	/* Unused: the open batch (encoded with this number) keeps it, so
	 * batch numbers in the file stay consecutive, which the torn-tail
	 * check of jr_load relies on. */
	j->batch = j->snap_batch;
refused:
	log_err("group=%s cannot build a journal snapshot: %s", j->group, strerror(-rc));
	j->compact_complete |= complete;
	jr_job_free(job);
}

/* Write the open batch. */
static void jr_start_append(struct jr *j)
{
	struct jr_job *job = calloc(1, sizeof(*job));
	off_t bend = j->end + (off_t)j->pend.len;
	bool extend = !j->no_prealloc && bend > j->alloc_end;

	if (extend && j->njobs)
		return; /* after the writes in flight: they must not meet the zeros */
	if (!job) {
		jr_fail_pending(j, -ENOMEM);
		return;
	}
	job->dirfd = -1;
	job->fd = dup(j->fd);
	if (job->fd < 0) {
		jr_fail_pending(j, -errno);
		free(job);
		return;
	}
	/* Solo: nothing of this file is in flight, so every batch before
	 * this one is durable (the top of this file). */
	jr_rec_set_last(j->pend.p + j->pend.last_at, true, j->version >= 2 && j->njobs == 0);
	job->kind = JR_JOB_APPEND;
	job->bno = j->batch;
	job->buf = j->pend;
	job->nrec = j->pend_nrec;
	job->nwait = j->pend_nwait;
	job->waiters = j->wait;
	job->off = j->end;
	if (extend)
		job->extend_to = (bend + JR_PREALLOC) & ~(off_t)(JR_PREALLOC - 1);
	if (jr_submit(j, job, extend) < 0) {
		/* Not submitted: the batch stays open, as it was. */
		jr_rec_set_last(job->buf.p + job->buf.last_at, false, false);
		job->buf.p = NULL;
		job->waiters = NULL;
		jr_job_free(job);
		return;
	}
	memset(&j->pend, 0, sizeof(j->pend));
	j->pend_nrec = 0;
	j->pend_nwait = 0;
	j->wait = NULL;
	j->wtail = &j->wait;
	j->batch++;
	j->end = bend;
}

/*
 * Gathering: should the open batch wait a little longer before it is
 * written?  Yes while all of these hold: nothing is in flight; fewer
 * callers (jr_wait) wait for it than the last batch made durable carried;
 * and less than one average write + sync has passed since that batch was
 * taken.  Then the timer is armed for the end of that time, and the batch
 * goes at the first turn past it, or as soon as enough callers wait.
 *
 * Why: a batch is written as soon as the last one is durable, with
 * whatever waits by then.  The callers just answered are mostly still on
 * their way back (their client takes the reply, sends the next call), so
 * that batch is small and they wait for the whole of it and then their
 * own: with few connections the disk syncs back to back, a handful of
 * grants each.  Holding the batch until as many callers wait as the last
 * one carried lets them join it.  The bound keeps the worst wait where it
 * was: a caller that arrives just after a batch starts waits for that
 * write and then its own, two syncs; one held waits at most one sync and
 * then its own.  After a batch of one caller (a single client, one call
 * at a time) its next call ends the hold at once.
 */
static bool jr_gather_hold(struct jr *j)
{
	uint64_t now, due;

	if (!jr_gather || !j->gather_on || j->njobs || j->pend_nwait >= j->last_nwait)
		return false;
	now = uv_hrtime();
	due = j->last_done_ns + j->sync_avg_ns;
	if (now >= due)
		return false;
	if (j->gather_due != due) {
		struct itimerspec its = { .it_value = {
			.tv_sec = (time_t)(due / 1000000000u),
			.tv_nsec = (long)(due % 1000000000u) } };

		/* uv_hrtime is CLOCK_MONOTONIC, as the timer's clock */
		if (timerfd_settime(j->gather_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
			return false;
		j->gather_due = due;
		j->st.gathered++;
	}
	return true;
}

static void jr_gather_cb(uv_poll_t *p, int status, int events)
{
	struct jr *j = p->data;
	uint64_t n;

	(void)status;
	(void)events;
	if (read(j->gather_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return; /* re-armed for a later end since this turn began */
	j->gather_due = 0;
	/* Past the hold now (jr_gather_hold says no): what waited starts;
	 * with nothing held, nothing new does. */
	jr_kick(j);
}

static void jr_close_step(struct jr *j);

/* Start what can start: a compaction once nothing is in flight, else the
 * open batch if fewer than jr_inflight writes are (and jr_gather_hold does
 * not keep it back). */
static void jr_kick(struct jr *j)
{
	if (j->closing) {
		jr_close_step(j);
		return;
	}
	if (j->fold && !j->fold->busy && (j->failed || j->compact_wanted)) {
		/* A snapshot of the live state goes first; a fold between
		 * steps is set aside (one with a step on the pool, once it is
		 * back: the snapshot may drop the old file it reads). */
		log_info("group=%s journal fold set aside for a compaction from the live state",
			 j->group);
		jr_fold_release(j, j->fold, true);
	}
	if (j->failed) {
		if (j->njobs || j->fold)
			return;
		if (j->compact_wanted)
			jr_start_snapshot(j);
		if (!j->njobs && !uv_is_active((uv_handle_t *)&j->retry))
			uv_timer_start(&j->retry, jr_retry_cb, JR_RETRY_MS, 0);
		return;
	}
	if (j->compact_wanted) {
		/* Appends wait meanwhile: the snapshot takes them in. */
		if (!j->njobs && !j->fold)
			jr_start_snapshot(j);
		if (j->njobs || j->fold)
			return;
	}
	if (j->own_wanted && (j->own_from < 0 || !j->fold_ops)) {
		/* A compaction since the open mixed this owner's records with
		 * the rest: only the live state can tell them apart now. */
		j->own_wanted = false;
		j->compact_wanted = true;
		j->compact_complete |= j->own_complete;
		jr_kick(j);
		return;
	}
	if (j->own_wanted && j->fold && !j->fold->busy && !j->fold->own_from) {
		/* A size fold would keep what this one drops: it goes. */
		log_info("group=%s journal fold set aside for a fold of this owner's records",
			 j->group);
		jr_fold_release(j, j->fold, true);
	}
	if (j->own_wanted && !j->fold)
		jr_fold_start(j, true);
	if (j->fold_wanted && !j->fold)
		jr_fold_start(j, false);
	if (j->fold && j->fold->holding) {
		/* Appends wait for the switch to the new file. */
		if (j->njobs || j->fold->busy || jr_fold_switch(j, j->fold) == 0)
			return;
	}
	if (j->pend.len && !j->job_alone && j->njobs < jr_inflight && !jr_gather_hold(j))
		jr_start_append(j);
}

static void jr_check_cb(uv_check_t *c)
{
	struct jr *j = c->data;

	uv_idle_stop(&j->idle);
	jr_kick(j);
	if (!j->pend.len && !j->compact_wanted)
		uv_check_stop(&j->check);
}

static void jr_idle_cb(uv_idle_t *i)
{
	(void)i;
}

/* Have the check run at the end of this turn even when the append came
 * from outside the poll phase (a timer callback, before uv_run): an active
 * idle handle makes the coming poll return at once. */
static void jr_wake(struct jr *j)
{
	if (!uv_is_active((uv_handle_t *)&j->check))
		uv_check_start(&j->check, jr_check_cb);
	uv_idle_start(&j->idle, jr_idle_cb);
}

static void jr_path(char *out, size_t sz, const char *statedir, const char *name)
{
	snprintf(out, sz, "%s/%s", statedir, name);
}

int jr_open(uv_loop_t *loop, const char *statedir, const char *group,
	    const struct jr_load_info *li, bool complete, bool keep_old,
	    jr_snapshot_fn snap, void *snap_arg, struct jr **out)
{
	struct jr *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return -ENOMEM;
	j->fd = j->dirfd = j->gather_fd = -1;
	j->loop = loop;
	j->snap = snap;
	j->snap_arg = snap_arg;
	j->wtail = &j->wait;
	j->group = strdup(group);
	if (!j->group) {
		rc = -ENOMEM;
		goto err;
	}
	jr_path(j->path, sizeof(j->path), statedir, "journal");
	jr_path(j->tmp, sizeof(j->tmp), statedir, "journal.tmp");
	j->dirfd = open(statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		rc = -errno;
		goto err;
	}
	/* A fold's temporary left by a crash (or a kill) before its rename is
	 * not the journal and never will be: its space goes back now rather
	 * than at the next fold, which may be a long time coming. */
	if (unlinkat(j->dirfd, JR_FOLD_TMP, 0) == 0)
		log_info("group=%s removed %s, left by a journal fold that never finished",
			 group, JR_FOLD_TMP);
	if (li) {
		rc = sf_open(j->dirfd, "journal", O_WRONLY, 0, JR_FILE_MAX, &j->fd, NULL);
		if (rc < 0)
			goto err;
		j->end = j->alloc_end = li->valid_end;
		if (li->file_size > li->valid_end && li->zero_tail) {
			/* Zeroed space written ahead: keep it. */
			j->alloc_end = li->file_size;
		} else if (li->file_size > li->valid_end &&
			   (ftruncate(j->fd, li->valid_end) < 0 || fdatasync(j->fd) < 0)) {
			/* A torn tail goes, so no stale record of it can ever
			 * follow the batches written from here on. */
			rc = -errno;
			goto err;
		}
		j->batch = li->last_batch + 1;
		j->complete = li->complete;
		j->version = li->version;
	} else {
		struct jr_buf b = { 0 };
		struct jr_rec h = { .type = JR_HEADER, .host = group, .hostlen = strlen(group),
				    .svid = JR_VERSION, .excl = complete,
				    .start = (uint64_t)time(NULL) };
		char dmg[PATH_MAX];

		jr_path(dmg, sizeof(dmg), statedir, "journal.damaged");
		if (keep_old && rename(j->path, dmg) < 0 && errno != ENOENT) {
			rc = -errno;
			goto err;
		}
		j->batch = 1;
		rc = jr_buf_add(&b, &h, j->batch++);
		if (rc == 0) {
			jr_rec_set_last(b.p + b.last_at, true, true);
			rc = jr_install(j->tmp, j->path, j->dirfd, &b, false, &j->fd);
		}
		j->end = j->alloc_end = (off_t)b.len;
		free(b.p);
		if (rc < 0)
			goto err;
		j->complete = complete;
		j->version = JR_VERSION;
	}
	j->compact_at = j->end * 2 > JR_COMPACT_MIN ? j->end * 2 : JR_COMPACT_MIN;
	j->durable_end = j->end;
	j->durable_batch = j->batch - 1;
	j->own_from = j->end;
	j->loop = NULL;
	if (loop)
		jr_attach(j, loop);
	*out = j;
	return 0;
err:
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->group);
	free(j);
	return rc;
}

void jr_attach(struct jr *j, uv_loop_t *loop)
{
	j->loop = loop;
	uv_check_init(loop, &j->check);
	uv_timer_init(loop, &j->retry);
	uv_idle_init(loop, &j->idle);
	j->check.data = j->retry.data = j->idle.data = j;
	j->open_handles = 3;
	/* A libuv timer counts milliseconds; a hold is a fraction of a sync.
	 * Without the descriptor batches are simply never held. */
	j->gather_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (j->gather_fd >= 0 && uv_poll_init(loop, &j->gather_poll, j->gather_fd) != 0) {
		close(j->gather_fd); /* a failed init holds nothing */
		j->gather_fd = -1;
	}
	if (j->gather_fd >= 0) {
		/* From here the handle is closed with the journal, and the
		 * descriptor with the handle (jr_handle_closed). */
		j->gather_poll.data = j;
		j->open_handles++;
		j->gather_on = uv_poll_start(&j->gather_poll, UV_READABLE, jr_gather_cb) == 0;
	}
	jr_ring_open(j);
}

static void jr_handle_closed(uv_handle_t *h)
{
	struct jr *j = h->data;

	if (h == (uv_handle_t *)&j->poll) {
		/* Only now: libuv may still watch the descriptor until then. */
		close(j->efd);
		j->efd = -1;
	}
	if (h == (uv_handle_t *)&j->gather_poll) {
		close(j->gather_fd);
		j->gather_fd = -1;
	}

	if (--j->open_handles == 0)
		free(j);
}

/* The drain of jr_close is over: let go of everything, then tell the
 * caller (another node may open the file from now on). */
static void jr_close_finish(struct jr *j)
{
	jr_closed_fn closed = j->closed;
	void *arg = j->closed_arg;

	j->closed = NULL;
	if (j->close_t0) /* set only when the close had to wait */
		log_info("group=%s journal closed: its last writes took %.3f ms after the close",
			 j->group, (double)(uv_hrtime() - j->close_t0) / 1e6);
	jr_free_waiters(j->wait);
	j->wait = NULL;
	free(j->pend.p);
	j->pend.p = NULL;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->dirfd >= 0)
		close(j->dirfd);
	j->dirfd = -1;
	if (j->loop && j->ring) {
		jr_ring_close(j);
		uv_close((uv_handle_t *)&j->poll, jr_handle_closed);
	}
	free(j->group);
	j->group = NULL;
	if (!j->loop) {
		/* Opened off the loop and never attached: no handle, no job. */
		free(j);
	} else {
		uv_close((uv_handle_t *)&j->check, jr_handle_closed);
		uv_close((uv_handle_t *)&j->retry, jr_handle_closed);
		uv_close((uv_handle_t *)&j->idle, jr_handle_closed);
		if (j->gather_fd >= 0)
			uv_close((uv_handle_t *)&j->gather_poll, jr_handle_closed);
	}
	if (closed)
		closed(arg);
}

/*
 * One step of a closing journal (from jr_kick): a fold between steps is
 * set aside, one on the pool is waited for (a switch that renamed makes
 * the new file the one the last batch goes to); writes in flight are
 * waited for; then the open batch goes, alone, and once nothing is left
 * the journal is closed.  No compaction: the caller's state is gone.
 */
static void jr_close_step(struct jr *j)
{
	if (j->fold && !j->fold->busy)
		jr_fold_release(j, j->fold, true);
	if (j->fold || j->njobs)
		return; /* their ends kick again */
	if (j->pend.len && j->failed) {
		log_err("group=%s journal closed with %" PRIu64 " records not written (%s): the "
			"next owner may hold locks they released as reserved until its grace "
			"ends", j->group, j->pend_nrec, strerror(-j->err));
		jr_fail_pending(j, j->err);
	}
	if (j->pend.len) {
		jr_start_append(j);
		if (j->njobs)
			return;
		if (j->pend.len) {
			/* Not submitted (the pool refused it): again in a while. */
			if (!uv_is_active((uv_handle_t *)&j->retry))
				uv_timer_start(&j->retry, jr_retry_cb, JR_RETRY_MS, 0);
			return;
		}
		log_err("group=%s journal closed with its last records not written (cannot "
			"submit them): the next owner may hold locks they released as reserved "
			"until its grace ends", j->group);
	}
	uv_timer_stop(&j->retry);
	jr_close_finish(j);
}

void jr_close(struct jr *j, jr_closed_fn closed, void *arg)
{
	if (!j) {
		if (closed)
			closed(arg);
		return;
	}
	j->closed = closed;
	j->closed_arg = arg;
	j->closing = true;
	/* The caller goes now: nothing of it is called any more (waiters
	 * are freed, no snapshot of its state is asked for), but every
	 * record it appended is still written, so the next owner loads what
	 * this one ended with (a release dropped here would come back as a
	 * reserved lock there). */
	j->snap = NULL;
	jr_free_waiters(j->wait);
	j->wait = NULL;
	j->wtail = &j->wait;
	j->pend_nwait = 0;
	for (struct jr_job *job = j->jobs; job; job = job->next) {
		jr_free_waiters(job->waiters);
		job->waiters = NULL;
	}
	if (!j->loop) {
		jr_close_finish(j);
		return;
	}
	if (j->njobs || j->pend.len || j->fold)
		j->close_t0 = uv_hrtime(); /* for the log: the close waits */
	if (j->fold_held) {
		/* test: a first step held back is given up */
		struct jr_fold *f = j->fold_held;

		j->fold_held = NULL;
		jr_fold_release(j, f, true);
	}
	j->fold_hold = false;
	if (j->nheld)
		jr_test_release(j); /* their I/O ran; it kicks */
	else
		jr_kick(j);
}

int jr_remove(const char *statedir)
{
	char p[PATH_MAX];

	jr_path(p, sizeof(p), statedir, "journal");
	if (unlink(p) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

bool jr_can_grant(const struct jr *j)
{
	return !j->failed;
}

int jr_error(const struct jr *j)
{
	return j->failed ? j->err : 0;
}

int jr_append(struct jr *j, const struct jr_rec *r)
{
	int rc;

	if (j->failed)
		return -EIO;
	rc = jr_buf_add(&j->pend, r, j->batch);
	if (rc < 0)
		return rc;
	j->pend_nrec++;
	jr_wake(j);
	return 0;
}

int jr_wait(struct jr *j, jr_done_fn done, void *arg)
{
	struct jr_waiter *w;

	if (j->failed)
		return -EIO;
	if (!j->pend.len && !j->njobs)
		return 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fn = done;
	w->arg = arg;
	if (j->pend.len) {
		*j->wtail = w;
		j->wtail = &w->next;
		j->pend_nwait++;
	} else {
		/* Everything is in the writes in flight: wait for the last
		 * (results are taken in order, so for all of them). */
		w->next = j->jlast->waiters;
		j->jlast->waiters = w;
	}
	return 0;
}

void jr_compact(struct jr *j, bool complete)
{
	j->compact_wanted = true;
	j->compact_complete |= complete;
	jr_wake(j);
}

int jr_snap_add(struct jr *j, const struct jr_rec *r)
{
	int rc;

	if (!j->snapbuf)
		return -EINVAL;
	rc = jr_buf_add(j->snapbuf, r, j->snap_batch);
	if (rc == 0)
		j->snap_nrec++;
	return rc;
}

void jr_get_stats(const struct jr *j, struct jr_stats *st)
{
	*st = j->st;
	st->version = j->version;
	st->size = j->end;
	st->file = j->alloc_end > j->end ? j->alloc_end : j->end;
}
