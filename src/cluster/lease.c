/*
 * lease.c - see lease.h.
 *
 * Files in the group's state directory:
 *   lease         locked (write, whole file) by the owner
 *   node.<name>   locked by node <name> while it runs
 *   target        "<node> <unix seconds>\n": a planned move's destination
 *   bound         locked (write, whole file) by the owner once it listens on
 *                 every VIP of the group, until it stops listening
 *
 * OFD locks (not classic POSIX locks) because they belong to the open file,
 * not the process: closing any other descriptor of the same file in this
 * process cannot drop them by accident, and they work the same from any
 * thread.
 */
#include "cluster/lease.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "thprio.h"
#include "sfile.h"

/*
 * The waiter: a thread that sleeps in F_OFD_SETLKW for a *read* lock on
 * the lease file, through a descriptor of its own, while another node owns
 * the lease.  The kernel wakes it the moment the owner's write lock goes,
 * however the owner went (kill -9 included); it drops its read lock at
 * once and wakes the loop, which polls right then instead of at the next
 * LEASE_POLL_MS tick.  It never takes the lease: every decision stays in
 * lease_poll_cb.  A read lock, so that the waiters of several nodes never
 * queue behind each other, and held for microseconds only (a node's
 * F_OFD_SETLK for the lease that meets one fails; its next wake or poll
 * retries).
 */
struct lease_waiter {
	pthread_t th;
	sem_t arm;                    /* posted by the loop: wait for the lease to go */
	atomic_bool quit;             /* set by lease_free */
	atomic_bool done;             /* the thread has left its loop */
	uv_async_t async;             /* thread -> loop: the owner's lock went */
	int fd;                       /* the lease file, its own open file description */
	struct lease *l;              /* not owned: the lease it wakes */
};

struct lease {
	uv_loop_t *loop;              /* not owned */
	uv_timer_t poll;
	struct lease_waiter *w;       /* owned; NULL until the files are open, or if
					 the thread could not start (polling only) */
	bool w_armed;                 /* the waiter waits (or will) */
	bool woken;                   /* this poll runs because the waiter woke */
	unsigned armed_ticks;         /* polls skipped since the waiter was armed */
	char *dir, *group, *me;       /* owned */
	char **prefs;                 /* owned */
	size_t nprefs;
	size_t my_rank;               /* my index in prefs */
	int lease_fd;                 /* open once ready; locked when owned */
	int alive_fd;                 /* node.<me>, locked while we run */
	int bound_fd;                 /* bound, locked while owned and listening */
	lease_ready_fn ready;         /* may be NULL */
	char why[512];                /* why we cannot contend, or "" */
	bool owned;
	bool contend;
	uint64_t started;             /* uv_now() at lease_new */
	bool seen_owner;              /* saw the lease held since we started */
	bool target_bad;              /* target is unusable and was logged */
	bool target_dead;             /* target names a node not alive; logged */
	lease_acquired_fn on_acquired;
	void *arg;
};

static int lease_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return -errno;
	return 0;
}

/* Is node @name alive, i.e. does someone hold node.<name>? */
static bool lease_node_alive(const struct lease *l, const char *name)
{
	char path[4200];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;
	bool alive;

	snprintf(path, sizeof(path), "%s/node.%s", l->dir, name);
	if (sf_open(AT_FDCWD, path, O_RDWR, 0, SIZE_MAX, &fd, NULL) < 0)
		return false; /* never started here (or not a file we made) */
	alive = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return alive;
}

/* The node a planned move is for, if the hint is fresh; "" if none. */
static void lease_target(struct lease *l, char *out, size_t len)
{
	char path[4200], node[128], *text;
	long long when;
	size_t n;
	int rc;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/target", l->dir);
	/* Read on the loop at every poll, so it must never block or be big:
	 * sf_read refuses a FIFO, a symlink or anything over the limit. */
	rc = sf_read(AT_FDCWD, path, LEASE_TARGET_MAX, &text, &n);
	if (rc < 0) {
		if (rc != -ENOENT && !l->target_bad)
			log_err("group=%s state file %s: %s; ignored (remove it)", l->group, path,
				sf_strerror(rc));
		l->target_bad = rc != -ENOENT;
		return;
	}
	l->target_bad = false;
	if (sscanf(text, "%127s %lld", node, &when) == 2 &&
	    (long long)time(NULL) - when <= LEASE_TARGET_TTL_S)
		snprintf(out, len, "%s", node);
	free(text);
}

static bool lease_should_contend(struct lease *l)
{
	char target[128];

	if (!l->contend)
		return false;
	/* Nodes started together: give every better node time to show it is
	 * alive before taking a group it prefers.  Only at a cold start: once
	 * this node has seen the group owned, an owner's death is a failover
	 * and must be taken over at once. */
	if (!l->seen_owner &&
	    uv_now(l->loop) - l->started < (uint64_t)l->my_rank * LEASE_SETTLE_MS) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		/* An owner holds a write lock; a read lock is another node's
		 * lease waiter, for microseconds, and no owner. */
		if (fcntl(l->lease_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_WRLCK)
			l->seen_owner = true;
		else
			return false;
	}
	lease_target(l, target, sizeof(target));
	/* A hint for a node that is not running (or not contending: draining,
	 * storage gone) is void: it would keep the group offline until the
	 * hint expired. */
	if (target[0] && strcmp(target, l->me) != 0 && !lease_node_alive(l, target)) {
		if (!l->target_dead)
			log_warn("group=%s planned move to node %s ignored by node %s: node %s is "
				 "not running (node.%s is not locked)", l->group, target, l->me,
				 target, target);
		l->target_dead = true;
		target[0] = '\0';
	} else {
		l->target_dead = false;
	}
	if (target[0])
		return strcmp(target, l->me) == 0;
	for (size_t i = 0; i < l->my_rank; i++)
		if (lease_node_alive(l, l->prefs[i]))
			return false; /* a better node is up: it takes the group */
	return true;
}

/* Open the lease files in the (existing) state directory and show this
 * node alive.  0 or -errno with @why filled. */
static int lease_open_files(struct lease *l, char *why, size_t whylen)
{
	char path[4200];
	int rc;

	/* Lock files: their contents are never read, but a FIFO or a symlink
	 * planted in their place must not block or redirect us. */
	snprintf(path, sizeof(path), "%s/lease", l->dir);
	rc = sf_open(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, SIZE_MAX, &l->lease_fd, NULL);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/node.%s", l->dir, l->me);
		rc = sf_open(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, SIZE_MAX, &l->alive_fd, NULL);
	}
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/bound", l->dir);
		rc = sf_open(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, SIZE_MAX, &l->bound_fd, NULL);
	}
	if (rc < 0) {
		snprintf(why, whylen, "state file %.400s: %s", path, sf_strerror(rc));
		goto err;
	}
	rc = lease_lock(l->alive_fd, F_WRLCK);
	if (rc < 0) {
		snprintf(why, whylen, "node %s already runs (node.%s is locked)", l->me, l->me);
		goto err;
	}
	if (!l->contend)
		lease_lock(l->alive_fd, F_UNLCK); /* draining: see lease_show_alive */
	return 0;
err:
	if (l->lease_fd >= 0)
		close(l->lease_fd);
	if (l->alive_fd >= 0)
		close(l->alive_fd);
	if (l->bound_fd >= 0)
		close(l->bound_fd);
	l->lease_fd = l->alive_fd = l->bound_fd = -1;
	return rc;
}

static void lease_waiter_start(struct lease *l, const char *path);

/* Is the group's storage here and the group's, and are the lease files
 * open?  Keeps l->why, and logs each change of it once. */
static bool lease_ready(struct lease *l)
{
	char why[sizeof(l->why)] = "";

	if (l->ready && l->ready(l->arg, why, sizeof(why)) < 0 && !why[0])
		snprintf(why, sizeof(why), "storage not ready");
	if (!why[0] && l->lease_fd < 0 && lease_open_files(l, why, sizeof(why)) == 0) {
		char path[4200];

		l->started = uv_now(l->loop); /* settle from now on */
		snprintf(path, sizeof(path), "%s/lease", l->dir);
		lease_waiter_start(l, path);
	}
	if (strcmp(why, l->why) != 0) {
		if (why[0])
			log_warn("group=%s node %s does not contend: %s", l->group, l->me, why);
		else
			log_info("group=%s node %s: storage ready, contending", l->group, l->me);
		snprintf(l->why, sizeof(l->why), "%s", why);
	}
	return !why[0];
}

#define LEASE_ARMED_POLL_EVERY 20

/* Wakes the waiter out of its F_OFD_SETLKW (no SA_RESTART): nothing else. */
#define LEASE_WAKE_SIG (SIGRTMIN + 2)

static void lease_wake_handler(int sig)
{
	(void)sig;
}

static void *lease_waiter_main(void *arg)
{
	struct lease_waiter *w = arg;
	struct flock rd = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	sigset_t wake;

	/* Made by the real-time loop: not real-time itself (thprio.h). */
	(void)thp_leave_loop();
	/* Created with every signal blocked: only the wake gets through, so
	 * the process's own signals go to the loop thread. */
	sigemptyset(&wake);
	sigaddset(&wake, LEASE_WAKE_SIG);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!atomic_load(&w->quit)) {
		int rc;

		if (sem_wait(&w->arm) < 0)
			continue; /* EINTR */
		do
			rc = fcntl(w->fd, F_OFD_SETLKW, &rd);
		while (rc < 0 && errno == EINTR && !atomic_load(&w->quit));
		if (rc == 0)
			fcntl(w->fd, F_OFD_SETLK, &un);
		if (atomic_load(&w->quit))
			break;
		/* Also after an error: the loop polls, and re-arms only if the
		 * lease is still held. */
		uv_async_send(&w->async);
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void lease_poll_cb(uv_timer_t *t);

static void lease_waiter_async_cb(uv_async_t *a)
{
	struct lease *l = ((struct lease_waiter *)a->data)->l;

	l->w_armed = false;
	l->woken = true;
	lease_poll_cb(&l->poll);
	l->woken = false;
}

static void lease_waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Stop and free the waiter (loop thread).  Blocks until the thread has
 * left: a wake that lands just before its fcntl is sent again. */
static void lease_waiter_stop(struct lease_waiter *w)
{
	atomic_store(&w->quit, true);
	sem_post(&w->arm);
	while (!atomic_load(&w->done)) {
		struct timespec ts = { 0, 1000000 };

		pthread_kill(w->th, LEASE_WAKE_SIG);
		nanosleep(&ts, NULL);
	}
	pthread_join(w->th, NULL);
	close(w->fd);
	sem_destroy(&w->arm);
	uv_close((uv_handle_t *)&w->async, lease_waiter_closed);
}

/* Start the waiter on the (open) lease file @path.  Without it the lease
 * is polled only: logged, not fatal. */
static void lease_waiter_start(struct lease *l, const char *path)
{
	struct lease_waiter *w = calloc(1, sizeof(*w));
	struct sigaction sa = { .sa_handler = lease_wake_handler };
	sigset_t all, old;
	int rc;

	if (!w) {
		rc = -ENOMEM;
		goto err;
	}
	rc = sf_open(AT_FDCWD, path, O_RDONLY, 0, SIZE_MAX, &w->fd, NULL);
	if (rc < 0)
		goto err_free;
	if (sem_init(&w->arm, 0, 0) < 0) {
		rc = -errno;
		goto err_fd;
	}
	rc = uv_async_init(l->loop, &w->async, lease_waiter_async_cb);
	if (rc < 0)
		goto err_sem;
	w->async.data = w;
	w->l = l;
	sigemptyset(&sa.sa_mask);
	sigaction(LEASE_WAKE_SIG, &sa, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&w->th, NULL, lease_waiter_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		close(w->fd);
		sem_destroy(&w->arm);
		uv_close((uv_handle_t *)&w->async, lease_waiter_closed);
		goto err;
	}
	l->w = w;
	return;
err_sem:
	sem_destroy(&w->arm);
err_fd:
	close(w->fd);
err_free:
	free(w);
err:
	log_warn("group=%s node %s: no lease waiter (%s): a takeover waits for the next "
		 "lease poll", l->group, l->me, strerror(-rc));
}

/* Another node owns the lease (a write lock): let the waiter sleep until
 * it goes.  A read lock seen is another node's waiter, for microseconds:
 * the next poll looks again. */
static void lease_waiter_arm(struct lease *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (!l->w || l->w_armed)
		return;
	if (fcntl(l->lease_fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_WRLCK)
		return;
	l->w_armed = true;
	l->armed_ticks = 0;
	sem_post(&l->w->arm);
}

static void lease_poll_cb(uv_timer_t *t)
{
	struct lease *l = t->data;
	char path[4200];

	if (l->owned)
		return;
	/* While the waiter waits, the lease is held and nothing can be taken
	 * before it wakes us; a poll every LEASE_ARMED_POLL_EVERY ticks stays
	 * as a safety net. */
	if (l->w_armed && !l->woken && ++l->armed_ticks % LEASE_ARMED_POLL_EVERY != 0)
		return;
	/* The storage check comes first, every time this node might take the
	 * group: a node whose mount is gone must not take it (nor create the
	 * state directory in an empty mount point). */
	if (!lease_ready(l))
		return;
	if (!lease_should_contend(l) || lease_lock(l->lease_fd, F_WRLCK) < 0) {
		lease_waiter_arm(l); /* someone owns it */
		return;
	}
	l->owned = true;
	snprintf(path, sizeof(path), "%s/target", l->dir);
	unlink(path); /* the move, if any, is done */
	if (l->w_armed && !l->woken)
		log_warn("group=%s node %s: the lease was free but its waiter did not wake",
			 l->group, l->me);
	log_info("group=%s lease acquired by node %s (%s)", l->group, l->me,
		 l->woken ? "woken as the owner's lock went" : "lease poll");
	l->on_acquired(l->arg);
}

int lease_new(uv_loop_t *loop, const char *statedir, const char *group,
	      const char *me, const char *const *prefs, size_t nprefs,
	      lease_ready_fn ready, lease_acquired_fn on_acquired, void *arg,
	      struct lease **out)
{
	struct lease *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->lease_fd = l->alive_fd = l->bound_fd = -1;
	l->contend = true;
	l->ready = ready;
	l->on_acquired = on_acquired;
	l->arg = arg;
	l->dir = strdup(statedir);
	l->group = strdup(group);
	l->me = strdup(me);
	l->prefs = calloc(nprefs, sizeof(char *));
	if (!l->dir || !l->group || !l->me || !l->prefs) {
		rc = -ENOMEM;
		goto err;
	}
	l->my_rank = nprefs;
	for (size_t i = 0; i < nprefs; i++) {
		l->prefs[i] = strdup(prefs[i]);
		if (!l->prefs[i]) {
			rc = -ENOMEM;
			goto err;
		}
		if (strcmp(prefs[i], me) == 0 && l->my_rank == nprefs)
			l->my_rank = i;
		l->nprefs++;
	}
	/* The lease files are opened by the first poll that finds the
	 * storage ready: not here, where the storage may not be mounted. */
	uv_timer_init(loop, &l->poll);
	l->poll.data = l;
	l->started = uv_now(loop);
	uv_timer_start(&l->poll, lease_poll_cb, 0, LEASE_POLL_MS);
	*out = l;
	return 0;
err:
	for (size_t i = 0; i < l->nprefs; i++)
		free(l->prefs[i]);
	free(l->prefs);
	free(l->dir);
	free(l->group);
	free(l->me);
	free(l);
	return rc;
}

/*
 * Show this node alive to the others (node.<me> locked) only while it
 * contends.  A node that steps aside (drain, or a start that failed here)
 * must not look like "a better node is up": the next node of the group's
 * list would wait for it forever, and the group would stay offline.
 */
static void lease_show_alive(struct lease *l, bool alive)
{
	if (l->alive_fd < 0)
		return;
	if (!alive)
		lease_lock(l->alive_fd, F_UNLCK);
	else if (lease_lock(l->alive_fd, F_WRLCK) < 0)
		log_err("group=%s node %s: cannot show itself alive again (node.%s)", l->group,
			l->me, l->me);
}

void lease_release(struct lease *l, const char *target, bool contend)
{
	l->contend = contend;
	lease_show_alive(l, contend);
	if (target) {
		char path[4200], text[200];
		int n, rc;

		/* Write the hint before letting go, so no other node can slip
		 * in between. */
		snprintf(path, sizeof(path), "%s/target", l->dir);
		n = snprintf(text, sizeof(text), "%.127s %lld\n", target, (long long)time(NULL));
		rc = sf_replace(AT_FDCWD, path, text, (size_t)n, 0600);
		if (rc < 0)
			log_err("group=%s state file %s: cannot write: %s", l->group, path,
				sf_strerror(rc));
	}
	lease_set_bound(l, false); /* never "listening" without the lease */
	if (l->owned && l->lease_fd >= 0) {
		lease_lock(l->lease_fd, F_UNLCK);
		l->owned = false;
		log_info("group=%s lease released by node %s%s%s", l->group, l->me,
			 target ? " for node " : "", target ? target : "");
	}
}

void lease_contend(struct lease *l, bool contend)
{
	if (contend != l->contend)
		lease_show_alive(l, contend);
	l->contend = contend;
}

bool lease_owned(const struct lease *l)
{
	return l->owned;
}

bool lease_held(const struct lease *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (l->owned)
		return true;
	/* Our own descriptor holds no lock, so any lock seen is another
	 * node's. */
	return l->lease_fd >= 0 && fcntl(l->lease_fd, F_OFD_GETLK, &fl) == 0 &&
	       fl.l_type != F_UNLCK;
}

void lease_set_bound(struct lease *l, bool bound)
{
	if (l->bound_fd < 0 || (bound && !l->owned))
		return;
	if (lease_lock(l->bound_fd, bound ? F_WRLCK : F_UNLCK) < 0)
		/* Only another node's stale lock could be in the way, and only
		 * the owner takes it: the old owner then waits its bounded
		 * handover time instead of seeing us listen. */
		log_err("group=%s node %s: cannot lock %s/bound", l->group, l->me, l->dir);
}

bool lease_bound_elsewhere(const struct lease *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	/* A lock held through our own descriptor is not reported by
	 * F_OFD_GETLK, so any lock seen is another node's. */
	return l->bound_fd >= 0 && fcntl(l->bound_fd, F_OFD_GETLK, &fl) == 0 &&
	       fl.l_type != F_UNLCK;
}

bool lease_node_up(const struct lease *l, const char *node)
{
	return strcmp(node, l->me) == 0 ? l->contend && l->alive_fd >= 0
					: lease_node_alive(l, node);
}

const char *lease_why(const struct lease *l)
{
	return l->why;
}

static void lease_closed(uv_handle_t *h)
{
	struct lease *l = h->data;

	for (size_t i = 0; i < l->nprefs; i++)
		free(l->prefs[i]);
	free(l->prefs);
	free(l->dir);
	free(l->group);
	free(l->me);
	free(l);
}

void lease_free(struct lease *l)
{
	if (!l)
		return;
	if (l->w)
		lease_waiter_stop(l->w);
	/* Closing the descriptors drops every OFD lock. */
	if (l->lease_fd >= 0)
		close(l->lease_fd);
	if (l->alive_fd >= 0)
		close(l->alive_fd);
	if (l->bound_fd >= 0)
		close(l->bound_fd);
	uv_close((uv_handle_t *)&l->poll, lease_closed);
}
