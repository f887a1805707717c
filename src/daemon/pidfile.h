/*
 * pidfile.h - one sgnfsd per node: <run_dir>/<node>.pid, locked.
 *
 * The pid file is the node's claim on its run-time names.  It is opened
 * and locked (flock, exclusive, non-blocking) before anything else of the
 * node's is touched: before the control socket is bound (binding replaces
 * the socket file) and before any lease is watched.  A second `sgnfsd -n
 * NODE` finds the lock held, says which pid holds it and exits without
 * removing anything.  The lock belongs to the open file description, so it
 * survives daemon(3)'s fork and goes away with the process however it
 * ends: a pid file left by a crash is simply locked again.
 */
#ifndef SGNFS_PIDFILE_H
#define SGNFS_PIDFILE_H

#include <sys/types.h>

struct pidfile {
	int fd;              /* owned, locked; -1 when not held */
	char path[4200];
};

/*
 * Create @run_dir if needed, then open and lock @run_dir/@node.pid.
 * Returns 0 (held), -EEXIST when another process holds it (*holder set to
 * its pid, or 0 if the file names none), or another -errno.
 */
int pidf_acquire(struct pidfile *pf, const char *run_dir, const char *node, pid_t *holder);

/* Write the current pid into the held file (call after daemon(3)). 0/-errno. */
int pidf_write(struct pidfile *pf);

/* Remove the file (we hold it, so it is ours) and drop the lock. */
void pidf_release(struct pidfile *pf);

#endif
