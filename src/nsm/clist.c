/*
 * clist.c - a service group's client list on the group's own storage.
 *
 * On-disk format (one file per client in <statedir>/clients/):
 *
 *   file name   the client's name when it is at most 200 bytes; a longer
 *               name (names may have up to 1024 bytes, a file name only 255)
 *               is cut to its first 150 bytes + "~" + 16 hex digits of the
 *               FNV-1a 64-bit hash of the whole name (two names with one
 *               file name are never both on the list: see "table").
 *               Names were checked by clist_name_check(), so they hold no
 *               '/', no control or whitespace characters and never start
 *               with '.'.
 *   contents    text lines "key=value", in this order:
 *                 sgnfs-clist=1           format version
 *                 name=<client name>      the whole name (authoritative)
 *                 added=<unix seconds>    when the client first locked here
 *                 addr=<IPv4 or IPv6>     one line per address it came from
 *                                         (at most 8, newest last)
 *   temporary   ".<file name>.tmp" while being written (".tmp-<file name>"
 *               before); a leftover one is a write that never completed
 *               and is removed at load.  An entry over CLIST_FILE_MAX, a
 *               FIFO, a device or a symlink is refused before its content
 *               is parsed (sfile.h, sfdir.c) and logged.
 *
 * Writing: sf_replace() (sfile.h): temp file, write, fsync, rename over
 * the entry, fsync of the directory (so the rename itself is durable).  Only then is the waiting
 * grant released.  Removal: unlink + fsync of the directory.
 *
 * Concurrency: at most one I/O per entry is in flight; changes made while
 * it runs bump the entry's generation and trigger another write when it
 * completes, so a waiter is released only by a write that contains what it
 * needed (its generation).
 *
 * Idle removal: the entries of clients that hold nothing are on a list in
 * the order they became idle (loaded entries first, idle since the attach;
 * a forgotten one at the head).  The sweep walks it from the head and stops
 * at the first entry not idle long enough, so it examines the entries it
 * removes (and those whose I/O is still in flight), not the whole list: a
 * walk over 100,000 entries on the loop every client_idle / 4 was work
 * that clients, not the administrator, made as large as they liked.
 */
#include "nsm/clist.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "wq.h"
#include "saddr.h"
#include "shash.h"
#include "sfile.h"

#define CLIST_FNAME_DIRECT_MAX 200
#define CLIST_FNAME_PREFIX     150

struct clist_waiter {
	struct clist_waiter *next;
	uint64_t gen;              /* released by a durable write of >= gen */
	clist_done_fn done;
	void *arg;
};

/*
 * One allocation per entry (clist_add): the struct, its first address and
 * its names.  A takeover loads 100,000 of them on the open's thread, and
 * three allocations each (the struct with room for a 200-byte file name,
 * a copy of the name, the addresses) were the load's malloc and page
 * faults.
 */
struct clist_entry {
	struct clist_entry *hnext;  /* hash chain; owned by the table */
	uint64_t hash;              /* clist_hash(fname): compared before the
	                               names, reused when the table grows */
	const char *name;           /* into text[] */
	const char *fname;          /* == name when it is its own file name,
	                               else into text[] (clist_fname) */
	/* naddrs of them (at most CLIST_MAX_ADDRS): &addr1 while there is
	 * at most one (most clients), else owned; room for eight each (1 KiB)
	 * was most of the memory a takeover's load of a long list faulted in */
	struct sockaddr_storage *addrs;
	size_t naddrs;
	int64_t added;
	uint64_t gen;               /* bumped on every change */
	uint64_t disk_gen;          /* generation known durable (0 = no file) */
	bool io_busy;               /* one write or unlink in flight */
	bool removing;              /* the in-flight I/O is an unlink */
	bool holding;               /* the client holds locks here */
	bool on_idle;               /* on cl->idle_head (exactly when !holding) */
	uint64_t idle_since;        /* uv_now() when it stopped holding, or
	                               CLIST_SINCE_ATTACH */
	struct clist_entry *inext, *iprev; /* cl's idle list, oldest first */
	struct clist_waiter *waiters; /* owned, FIFO */
	struct sockaddr_storage addr1;
	char text[];                /* the name, NUL[, the file name, NUL] */
};

/* idle_since of an entry loaded before the list was attached to its loop:
 * idle since clist_attach (cl->attached_ms). */
#define CLIST_SINCE_ATTACH UINT64_MAX

struct clist {
	uv_loop_t *loop;            /* not owned */
	char *group;                /* owned, for log lines */
	int dirfd;                  /* <statedir>/clients, owned */
	uint32_t idle_s;
	struct clist_entry **tab;   /* owned */
	size_t nbuckets, count;
	unsigned refs;              /* 1 (open) + I/O in flight + timer */
	unsigned inflight;          /* writes and unlinks on the pool */
	bool closed;
	void (*closed_fn)(void *arg); /* clist_close_then: the last I/O is done */
	void *closed_arg;
	uv_timer_t sweep;
	struct clist_entry *idle_head, *idle_tail; /* idle entries, oldest first */
	uint64_t sweeps, swept;     /* sweeps run, entries they examined */
	uint64_t attached_ms;       /* uv_now() at clist_attach */
	uint64_t writes;
	struct sf_dir_stats load_stats; /* how clist_load read the files */
	time_t clash_logged_at;     /* clist_clash_log */
	uint64_t clash_quiet;
};

struct clist_io {
	struct wq_work work;
	struct clist *cl;
	struct clist_entry *e;
	bool unlink_op;
	uint64_t gen;
	char *content;              /* owned, for writes */
	size_t len;
	int rc;
};

/* ---- names ----------------------------------------------------------- */

/* A client name for a log line: escaped and cut (names may have 1 KiB).
 * Loop thread only (static buffer). */
static const char *clist_lname(const char *name)
{
	static char buf[LOG_SAFE_MAX];
	return log_safe(buf, sizeof(buf), name, strlen(name));
}

/* Length of a long name's file name: the cut, '~', 16 hex digits. */
#define CLIST_FNAME_HASHED_LEN (CLIST_FNAME_PREFIX + 1 + 16)

/* Whether @name (@len bytes) has the shape of a long name's file name. */
static bool clist_spells_hashed(const char *name, size_t len)
{
	if (len != CLIST_FNAME_HASHED_LEN || name[CLIST_FNAME_PREFIX] != '~')
		return false;
	for (size_t i = CLIST_FNAME_PREFIX + 1; i < len; i++)
		if (!isdigit((unsigned char)name[i]) && (name[i] < 'a' || name[i] > 'f'))
			return false;
	return true;
}

/*
 * A name that spells a long name's file name is refused too: short names
 * are their own file name, so it would share the file of the long name it
 * spells (no host is named so: '~' is not a hostname character).
 */
int clist_name_check(const char *name, size_t len)
{
	if (len == 0 || len > CLIST_NAME_MAX || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x21 || c == 0x7f)
			return -EINVAL;
	}
	if (clist_spells_hashed(name, len))
		return -EINVAL;
	return 0;
}

static uint64_t clist_fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void clist_fname(const char *name, char *out)
{
	size_t len = strlen(name);

	if (len <= CLIST_FNAME_DIRECT_MAX) {
		memcpy(out, name, len + 1);
		return;
	}
	memcpy(out, name, CLIST_FNAME_PREFIX);
	snprintf(out + CLIST_FNAME_PREFIX, CLIST_FNAME_DIRECT_MAX + 1 - CLIST_FNAME_PREFIX,
		 "~%016" PRIx64, clist_fnv(name));
}

/* ---- table ----------------------------------------------------------- */

/*
 * The table is keyed by file name, not by client name: the file is what an
 * entry is on the group's storage, and two names that map to one file (two
 * long names whose cut and FNV hash agree, which anyone can compute; a
 * short name that spells a hashed file name is refused by
 * clist_name_check) must never be two entries.  They would write the same file, the last write would win,
 * and after a failover the other client would be missing from the list:
 * never told to reclaim, its reserved locks dropped at the end of grace
 * while it still believes it holds them.  So a name whose file another
 * client's entry already has is refused (clist_ensure).  In memory the
 * hash is keyed (shash.h): names are the clients' choice.  The file name's
 * hash (clist_fname) is unkeyed because every node must find the same file.
 */

/* The file name of @name: @name itself when short (no copy), else @buf. */
static const char *clist_key(const char *name, char *buf)
{
	if (strlen(name) <= CLIST_FNAME_DIRECT_MAX)
		return name;
	clist_fname(name, buf);
	return buf;
}

static uint64_t clist_hash(const char *fname)
{
	return sh_hash(sh_process_key(), fname, strlen(fname));
}

/* The entry whose file is @fname (its hash @h), whatever client name it
 * has. */
static struct clist_entry *clist_find_file(const struct clist *cl, const char *fname, uint64_t h)
{
	for (struct clist_entry *e = cl->tab[h & (cl->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && strcmp(e->fname, fname) == 0)
			return e;
	return NULL;
}

uint64_t clist_name_hash(const char *name)
{
	char buf[CLIST_FNAME_DIRECT_MAX + 1];

	return clist_hash(clist_key(name, buf));
}

/* The entry of client @name, whose clist_name_hash is @h.  A short name
 * is its own file name: the file's comparison compared the names too. */
static struct clist_entry *clist_find_h(const struct clist *cl, const char *name, uint64_t h)
{
	char buf[CLIST_FNAME_DIRECT_MAX + 1];
	const char *fname = clist_key(name, buf);
	struct clist_entry *e = clist_find_file(cl, fname, h);

	if (e && fname == name && e->fname == e->name)
		return e;
	return e && strcmp(e->name, name) == 0 ? e : NULL;
}

static struct clist_entry *clist_find(const struct clist *cl, const char *name)
{
	return clist_find_h(cl, name, clist_name_hash(name));
}

static void clist_grow(struct clist *cl)
{
	size_t nb = cl->nbuckets * 2;
	struct clist_entry **nt = calloc(nb, sizeof(*nt));

	if (!nt)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < cl->nbuckets; i++) {
		struct clist_entry *e = cl->tab[i], *next;
		for (; e; e = next) {
			size_t b = (size_t)(e->hash & (nb - 1));
			next = e->hnext;
			e->hnext = nt[b];
			nt[b] = e;
		}
	}
	free(cl->tab);
	cl->tab = nt;
	cl->nbuckets = nb;
}

/* A new entry for @name, whose file name is @fname (clist_key) with hash
 * @h; the caller made sure no entry has that file. */
static struct clist_entry *clist_add(struct clist *cl, const char *name, const char *fname,
				     uint64_t h)
{
	size_t nlen = strlen(name), flen = fname == name ? 0 : strlen(fname) + 1;
	struct clist_entry *e = calloc(1, sizeof(*e) + nlen + 1 + flen);
	size_t b;

	if (!e)
		return NULL;
	memcpy(e->text, name, nlen + 1);
	e->name = e->text;
	e->fname = e->name;
	if (flen) {
		memcpy(e->text + nlen + 1, fname, flen);
		e->fname = e->text + nlen + 1;
	}
	e->hash = h;
	e->addrs = &e->addr1;
	/* At most one entry per bucket on average: a chain walked to its
	 * end is a cache miss per entry, and every new name walks one. */
	if (cl->count + 1 > cl->nbuckets)
		clist_grow(cl);
	b = (size_t)(h & (cl->nbuckets - 1));
	e->hnext = cl->tab[b];
	cl->tab[b] = e;
	cl->count++;
	return e;
}

/* ---- the idle list ---------------------------------------------------- */

static void clist_idle_del(struct clist *cl, struct clist_entry *e)
{
	if (!e->on_idle)
		return;
	if (e->iprev)
		e->iprev->inext = e->inext;
	else
		cl->idle_head = e->inext;
	if (e->inext)
		e->inext->iprev = e->iprev;
	else
		cl->idle_tail = e->iprev;
	e->inext = e->iprev = NULL;
	e->on_idle = false;
}

/* @e became idle now: the newest, at the tail (or, @first, one to go at
 * once, at the head). */
static void clist_idle_add(struct clist *cl, struct clist_entry *e, bool first)
{
	clist_idle_del(cl, e);
	e->on_idle = true;
	if (first) {
		e->iprev = NULL;
		e->inext = cl->idle_head;
		if (cl->idle_head)
			cl->idle_head->iprev = e;
		else
			cl->idle_tail = e;
		cl->idle_head = e;
		return;
	}
	e->inext = NULL;
	e->iprev = cl->idle_tail;
	if (cl->idle_tail)
		cl->idle_tail->inext = e;
	else
		cl->idle_head = e;
	cl->idle_tail = e;
}

/* @e holds locks again: off the idle list. */
static void clist_set_holding(struct clist *cl, struct clist_entry *e)
{
	e->holding = true;
	clist_idle_del(cl, e);
}

static void clist_unlink_entry(struct clist *cl, struct clist_entry *e)
{
	struct clist_entry **pp = &cl->tab[e->hash & (cl->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	clist_idle_del(cl, e);
	cl->count--;
}

static void clist_entry_free(struct clist_entry *e)
{
	while (e->waiters) {
		struct clist_waiter *w = e->waiters;
		e->waiters = w->next;
		free(w);
	}
	if (e->addrs != &e->addr1)
		free(e->addrs);
	free(e);
}

/* ---- I/O on the thread pool ------------------------------------------ */

static void clist_put(struct clist *cl);

static void clist_io_work(struct wq_work *w)
{
	struct clist_io *io = w->data;
	int dirfd = io->cl->dirfd;
	io->rc = 0;
	if (io->unlink_op) {
		if (unlinkat(dirfd, io->e->fname, 0) < 0 && errno != ENOENT)
			io->rc = -errno;
		else if (fsync(dirfd) < 0)
			io->rc = -errno;
		return;
	}
	/* Data first, then the name (sfile.h): after a crash either the old
	 * entry or the complete new one exists, never a torn file; whatever
	 * was planted at the temporary name is removed, not written through. */
	io->rc = sf_replace(dirfd, io->e->fname, io->content, io->len, 0644);
}

static void clist_start_io(struct clist *cl, struct clist_entry *e, bool unlink_op);

static void clist_release_waiters(struct clist_entry *e, uint64_t gen, int rc)
{
	struct clist_waiter **pp = &e->waiters;

	while (*pp) {
		struct clist_waiter *w = *pp;
		if (w->gen <= gen) {
			*pp = w->next;
			w->done(w->arg, rc);
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

static void clist_io_done(struct wq_work *w, int status)
{
	struct clist_io *io = w->data;
	struct clist *cl = io->cl;
	struct clist_entry *e = io->e;
	int rc = status < 0 ? status : io->rc;

	e->io_busy = false;
	if (cl->closed)
		goto out;
	if (io->unlink_op) {
		e->removing = false;
		if (rc < 0)
			log_warn("group=%s client=%s cannot remove idle client entry: %s",
				 cl->group, clist_lname(e->name), strerror(-rc));
		if (e->waiters) {
			/* It locked again while being removed: write it back. */
			clist_start_io(cl, e, false);
		} else if (rc == 0) {
			log_info("group=%s client=%s removed from client list (idle)",
				 cl->group, clist_lname(e->name));
			clist_unlink_entry(cl, e);
			clist_entry_free(e);
		}
		goto out;
	}
	if (rc == 0) {
		cl->writes++;
		if (io->gen > e->disk_gen)
			e->disk_gen = io->gen;
	} else {
		log_err("group=%s client=%s cannot record client on the group's storage: %s; its locks are refused",
			cl->group, clist_lname(e->name), strerror(-rc));
	}
	clist_release_waiters(e, io->gen, rc);
	if (e->waiters && rc == 0)
		clist_start_io(cl, e, false);
	else if (e->waiters) /* failed: fail the rest too, they retry */
		clist_release_waiters(e, UINT64_MAX, rc);
out:
	free(io->content);
	free(io);
	if (--cl->inflight == 0 && cl->closed && cl->closed_fn) {
		void (*fn)(void *) = cl->closed_fn;

		cl->closed_fn = NULL;
		fn(cl->closed_arg);
	}
	clist_put(cl);
}

static char *clist_format(const struct clist_entry *e, size_t *len)
{
	size_t cap = 64 + strlen(e->name) + CLIST_MAX_ADDRS * 64;
	char *s = malloc(cap);
	size_t o;

	if (!s)
		return NULL;
	o = (size_t)snprintf(s, cap, "sgnfs-clist=1\nname=%s\nadded=%" PRId64 "\n",
			     e->name, e->added);
	for (size_t i = 0; i < e->naddrs; i++) {
		char a[INET6_ADDRSTRLEN];
		const void *p = e->addrs[i].ss_family == AF_INET
			? (const void *)&((const struct sockaddr_in *)&e->addrs[i])->sin_addr
			: (const void *)&((const struct sockaddr_in6 *)&e->addrs[i])->sin6_addr;
		inet_ntop(e->addrs[i].ss_family, p, a, sizeof(a));
		o += (size_t)snprintf(s + o, cap - o, "addr=%s\n", a);
	}
	*len = o;
	return s;
}

static void clist_start_io(struct clist *cl, struct clist_entry *e, bool unlink_op)
{
	struct clist_io *io = calloc(1, sizeof(*io));

	if (!io)
		goto fail;
	io->cl = cl;
	io->e = e;
	io->unlink_op = unlink_op;
	io->gen = e->gen;
	if (!unlink_op) {
		io->content = clist_format(e, &io->len);
		if (!io->content)
			goto fail;
	}
	io->work.data = io;
	if (wq_queue(cl->loop, &io->work, clist_io_work, clist_io_done) != 0)
		goto fail;
	e->io_busy = true;
	e->removing = unlink_op;
	if (unlink_op)
		e->disk_gen = 0;
	cl->refs++;
	cl->inflight++;
	return;
fail:
	if (io)
		free(io->content);
	free(io);
	if (!unlink_op)
		clist_release_waiters(e, UINT64_MAX, -ENOMEM);
}

/* ---- loading ---------------------------------------------------------- */

static int clist_parse_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/*
 * Parse entry file @fname, its @len bytes at @text (NUL-terminated; cut
 * into lines in place), and add it.  0, -EINVAL (not a client list entry:
 * no version line, a bad name, or a name whose file is not @fname),
 * -EEXIST, -ENOMEM.
 */
static int clist_load_one(struct clist *cl, const char *fname, char *text, size_t len)
{
	char name[CLIST_NAME_MAX + 1] = "", want[CLIST_FNAME_DIRECT_MAX + 1];
	char *line, *nl;
	struct sockaddr_storage addrs[CLIST_MAX_ADDRS];
	size_t naddrs = 0, n;
	int64_t added = 0;
	bool version_ok = false;

	for (line = text; line < text + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(text + len - line));
		if (!nl)
			nl = text + len; /* the last line without its newline */
		*nl = '\0';
		n = (size_t)(nl - line);
		if (strcmp(line, "sgnfs-clist=1") == 0)
			version_ok = true;
		else if (strncmp(line, "name=", 5) == 0 && n - 5 <= CLIST_NAME_MAX)
			memcpy(name, line + 5, n - 4);
		else if (strncmp(line, "added=", 6) == 0)
			added = strtoll(line + 6, NULL, 10);
		else if (strncmp(line, "addr=", 5) == 0 && naddrs < CLIST_MAX_ADDRS &&
			 clist_parse_addr(line + 5, &addrs[naddrs]) == 0)
			naddrs++;
	}
	if (!version_ok || clist_name_check(name, strlen(name)) < 0)
		return -EINVAL;
	const char *key = clist_key(name, want);
	if (strcmp(key, fname) != 0)
		return -EINVAL; /* a file that is not ours, or renamed */
	uint64_t h = clist_hash(key);
	struct clist_entry *e = clist_find_file(cl, key, h);
	if (e)
		return -EEXIST;
	e = clist_add(cl, name, key, h);
	if (!e)
		return -ENOMEM;
	if (naddrs > 1) {
		e->addrs = malloc(naddrs * sizeof(addrs[0]));
		if (!e->addrs) {
			e->addrs = &e->addr1;
			clist_unlink_entry(cl, e);
			clist_entry_free(e);
			return -ENOMEM;
		}
	}
	memcpy(e->addrs, addrs, naddrs * sizeof(addrs[0]));
	e->naddrs = naddrs;
	e->added = added;
	e->gen = e->disk_gen = 1;
	e->idle_since = cl->loop ? uv_now(cl->loop) : CLIST_SINCE_ATTACH;
	clist_idle_add(cl, e, false);
	return 0;
}

/*
 * Client names never start with '.': a dot file is a temporary left by a
 * crash mid-write (".NAME.tmp", or ".tmp-NAME" from older versions).
 * unlink acts on the name, never through it.
 */
static bool clist_load_want(void *arg, const char *fname)
{
	struct clist *cl = arg;

	if (fname[0] != '.')
		return true;
	unlinkat(cl->dirfd, fname, 0);
	return false;
}

/* One file of the list's directory, read (or refused) by sf_read_dir. */
static void clist_load_file(void *arg, const char *fname, int rc, char *text, size_t len)
{
	struct clist *cl = arg;
	char safe[LOG_SAFE_MAX];

	/* A FIFO, symlink, device or huge file in the list's directory was
	 * refused before it was read (sfile.h, sfdir.c): rc < 0 here. */
	if (rc == 0)
		rc = clist_load_one(cl, fname, text, len);
	if (rc < 0)
		log_warn("group=%s ignoring client list file '%s': %s", cl->group,
			 log_safe(safe, sizeof(safe), fname, strlen(fname)),
			 rc == -EINVAL ? "not a client list entry" : sf_strerror(rc));
}

/*
 * Every file of the list's directory: a list of 100,000 clients is
 * 100,000 files, read in batches (sf_read_dir) on the open's thread.
 */
static int clist_load(struct clist *cl)
{
	int rc = sf_read_dir(cl->dirfd, CLIST_FILE_MAX, clist_load_want, clist_load_file, cl,
			     &cl->load_stats);

	if (rc < 0)
		return rc;
	log_info("group=%s client list loaded: %zu entries (%zu files read in batches, %zu one "
		 "by one, %zu refused by type)", cl->group, cl->count, cl->load_stats.batched,
		 cl->load_stats.plain, cl->load_stats.refused);
	return 0;
}

/* ---- sweeping idle clients ------------------------------------------- */

static void clist_sweep_cb(uv_timer_t *t)
{
	struct clist *cl = t->data;
	uint64_t now = uv_now(cl->loop), idle_ms = (uint64_t)cl->idle_s * 1000u;
	struct clist_entry *e, *next;

	cl->sweeps++;
	/* Oldest first: the first entry not idle long enough ends the walk
	 * (none after it is older).  An entry whose I/O is in flight, or
	 * with waiters, stays where it is for the next sweep. */
	for (e = cl->idle_head; e; e = next) {
		uint64_t since = e->idle_since == CLIST_SINCE_ATTACH ? cl->attached_ms
								      : e->idle_since;

		next = e->inext;
		cl->swept++;
		if (now - since < idle_ms)
			break;
		if (!e->io_busy && !e->waiters)
			clist_start_io(cl, e, true);
	}
}

/* ---- public ----------------------------------------------------------- */

int clist_open(uv_loop_t *loop, const char *statedir, uint32_t idle_s,
	       const char *group, struct clist **out)
{
	struct clist *cl = calloc(1, sizeof(*cl));
	char path[4096];
	int rc;

	if (!cl)
		return -ENOMEM;
	cl->loop = loop;
	cl->idle_s = idle_s;
	cl->refs = 1;
	cl->dirfd = -1;
	cl->group = strdup(group);
	cl->nbuckets = 256;
	cl->tab = calloc(cl->nbuckets, sizeof(*cl->tab));
	if (!cl->group || !cl->tab) {
		rc = -ENOMEM;
		goto err;
	}
	if (mkdir(statedir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto err;
	}
	snprintf(path, sizeof(path), "%s/clients", statedir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto err;
	}
	cl->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cl->dirfd < 0) {
		rc = -errno;
		goto err;
	}
	cl->loop = NULL; /* clist_load must not read a loop's clock off the loop */
	rc = clist_load(cl);
	if (rc < 0)
		goto err;
	if (loop)
		clist_attach(cl, loop);
	*out = cl;
	return 0;
err:
	if (cl->dirfd >= 0)
		close(cl->dirfd);
	free(cl->tab);
	free(cl->group);
	free(cl);
	return rc;
}

void clist_attach(struct clist *cl, uv_loop_t *loop)
{
	uint64_t every = (uint64_t)cl->idle_s * 250u;

	cl->loop = loop;
	/* The idle clock of every loaded entry starts now, on the loop's
	 * clock (the load ran on another thread): they say CLIST_SINCE_ATTACH,
	 * so this is one assignment, not a walk over 100,000 entries on the
	 * loop while the other groups wait. */
	cl->attached_ms = uv_now(loop);
	uv_timer_init(loop, &cl->sweep);
	cl->sweep.data = cl;
	if (every < 250)
		every = 250;
	uv_timer_start(&cl->sweep, clist_sweep_cb, every, every);
	cl->refs++; /* the timer, until its close callback */
}

static void clist_put(struct clist *cl)
{
	if (--cl->refs)
		return;
	for (size_t b = 0; b < cl->nbuckets; b++) {
		struct clist_entry *e = cl->tab[b], *next;
		for (; e; e = next) {
			next = e->hnext;
			clist_entry_free(e);
		}
	}
	close(cl->dirfd);
	free(cl->tab);
	free(cl->group);
	free(cl);
}

static void clist_timer_closed(uv_handle_t *h)
{
	clist_put(h->data);
}

static void clist_close_now(struct clist *cl);

void clist_close(struct clist *cl)
{
	clist_close_then(cl, NULL, NULL);
}

bool clist_close_then(struct clist *cl, void (*fn)(void *arg), void *arg)
{
	bool later;

	if (!cl || cl->closed)
		return false;
	later = fn && cl->inflight;
	if (later) {
		cl->closed_fn = fn;
		cl->closed_arg = arg;
	}
	clist_close_now(cl);
	return later;
}

static void clist_close_now(struct clist *cl)
{
	cl->closed = true;
	/* Nobody is left to reply to: waiters are dropped, not called. */
	for (size_t b = 0; b < cl->nbuckets; b++) {
		for (struct clist_entry *e = cl->tab[b]; e; e = e->hnext) {
			while (e->waiters) {
				struct clist_waiter *w = e->waiters;
				e->waiters = w->next;
				free(w);
			}
		}
	}
	if (cl->loop)
		uv_close((uv_handle_t *)&cl->sweep, clist_timer_closed);
	clist_put(cl);
}

/*
 * A name refused because another client's entry has its file: one line a
 * second per group at most, with the count of those not logged (the names
 * are the clients' choice, so a client could otherwise write the log as
 * fast as it sends).  Loop thread only.
 */
static void clist_clash_log(struct clist *cl, const char *name, const char *holder)
{
	/* The two names share their first 150 bytes, more than a log line
	 * shows of a name: their lengths and last bytes tell them apart. */
	enum { TAIL = 24 };
	size_t nl = strlen(name), hl = strlen(holder);
	char other[LOG_SAFE_MAX], ntail[LOG_SAFE_MAX], htail[LOG_SAFE_MAX];
	time_t now = time(NULL);

	if (now == cl->clash_logged_at) {
		cl->clash_quiet++;
		return;
	}
	log_safe(other, sizeof(other), holder, hl);
	log_safe(ntail, sizeof(ntail), name + (nl > TAIL ? nl - TAIL : 0), nl > TAIL ? TAIL : nl);
	log_safe(htail, sizeof(htail), holder + (hl > TAIL ? hl - TAIL : 0), hl > TAIL ? TAIL : hl);
	log_warn("group=%s client=%s (%zu bytes, ending %s) refused: its client-list file name is "
		 "that of client %s (%zu bytes, ending %s); %" PRIu64 " more refused since the "
		 "last such line", cl->group, clist_lname(name), nl, ntail, other, hl, htail,
		 cl->clash_quiet);
	cl->clash_logged_at = now;
	cl->clash_quiet = 0;
}

int clist_ensure(struct clist *cl, const char *name, const struct sockaddr_storage *addr,
		 clist_done_fn done, void *arg)
{
	char fname[CLIST_FNAME_DIRECT_MAX + 1];
	struct clist_entry *e;
	struct clist_waiter *w, **pp;
	bool known = false;

	if (clist_name_check(name, strlen(name)) < 0)
		return -EINVAL;
	const char *key = clist_key(name, fname);
	uint64_t h = clist_hash(key);

	e = clist_find_file(cl, key, h);
	if (e && strcmp(e->name, name) != 0) {
		clist_clash_log(cl, name, e->name);
		return -EEXIST;
	}
	if (!e) {
		e = clist_add(cl, name, key, h);
		if (!e)
			return -ENOMEM;
		e->added = (int64_t)time(NULL);
		e->gen = 1;
		char a[80];
		log_info("group=%s client=%s added to client list (from %s)", cl->group,
			 clist_lname(name),
			 inet_ntop(addr->ss_family, addr->ss_family == AF_INET
				   ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
				   : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr,
				   a, sizeof(a)) ? a : "?");
	}
	clist_set_holding(cl, e);
	for (size_t i = 0; i < e->naddrs; i++)
		known |= sa_same_host(&e->addrs[i], addr);
	if (!known) {
		if (e->naddrs == CLIST_MAX_ADDRS) {
			memmove(&e->addrs[0], &e->addrs[1],
				(CLIST_MAX_ADDRS - 1) * sizeof(e->addrs[0]));
			e->naddrs--;
		} else if (e->naddrs >= 1) {
			/* Past the one address kept in the entry: an array. */
			struct sockaddr_storage *na =
				e->addrs == &e->addr1
				? malloc((e->naddrs + 1) * sizeof(*na))
				: realloc(e->addrs, (e->naddrs + 1) * sizeof(*na));
			if (!na)
				return -ENOMEM;
			if (e->addrs == &e->addr1)
				na[0] = e->addr1;
			e->addrs = na;
		}
		e->addrs[e->naddrs++] = *addr;
		e->gen++;
	}
	if (e->disk_gen == e->gen && !e->removing)
		return 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->gen = e->gen;
	w->done = done;
	w->arg = arg;
	for (pp = &e->waiters; *pp; pp = &(*pp)->next)
		;
	*pp = w;
	if (!e->io_busy)
		clist_start_io(cl, e, false);
	return 0;
}

/* Is @e durable with @addr among its addresses: clist_ensure's case 1? */
static bool clist_entry_listed(const struct clist_entry *e, const struct sockaddr_storage *addr)
{
	if (!e || e->disk_gen != e->gen || e->removing)
		return false;
	for (size_t i = 0; i < e->naddrs; i++)
		if (sa_same_host(&e->addrs[i], addr))
			return true;
	return false;
}

bool clist_listed(const struct clist *cl, const char *name, uint64_t hash,
		  const struct sockaddr_storage *addr)
{
	return clist_entry_listed(clist_find_h(cl, name, hash), addr);
}

bool clist_hold_listed(struct clist *cl, const char *name, uint64_t hash,
		       const struct sockaddr_storage *addr)
{
	struct clist_entry *e = clist_find_h(cl, name, hash);

	if (!clist_entry_listed(e, addr))
		return false;
	clist_set_holding(cl, e);
	return true;
}

void clist_release(struct clist *cl, const char *name, uint64_t hash)
{
	struct clist_entry *e = clist_find_h(cl, name, hash);

	if (e && e->holding) {
		e->holding = false;
		e->idle_since = uv_now(cl->loop);
		clist_idle_add(cl, e, false);
	}
}

void clist_forget(struct clist *cl, const char *name)
{
	struct clist_entry *e = clist_find(cl, name);

	if (!e || e->holding)
		return;
	e->idle_since = 0;
	clist_idle_add(cl, e, true);
	if (!e->io_busy && !e->waiters)
		clist_start_io(cl, e, true);
}

bool clist_has_addr(const struct clist *cl, const char *name,
		    const struct sockaddr_storage *addr)
{
	const struct clist_entry *e = clist_find(cl, name);

	if (!e)
		return false;
	for (size_t i = 0; i < e->naddrs; i++)
		if (sa_same_host(&e->addrs[i], addr))
			return true;
	return false;
}

void clist_foreach(const struct clist *cl,
		   void (*fn)(void *arg, const struct clist_entry_info *e), void *arg)
{
	for (size_t b = 0; b < cl->nbuckets; b++) {
		for (const struct clist_entry *e = cl->tab[b]; e; e = e->hnext) {
			struct clist_entry_info info = {
				.name = e->name, .addrs = e->addrs, .naddrs = e->naddrs,
				.added = e->added, .holding = e->holding,
			};
			fn(arg, &info);
		}
	}
}

size_t clist_count(const struct clist *cl)
{
	return cl->count;
}

uint64_t clist_writes(const struct clist *cl)
{
	return cl->writes;
}

void clist_load_stats(const struct clist *cl, struct sf_dir_stats *st)
{
	*st = cl->load_stats;
}

void clist_sweep_stats(const struct clist *cl, uint64_t *sweeps, uint64_t *examined)
{
	*sweeps = cl->sweeps;
	*examined = cl->swept;
}
