/*
 * reload.h - which configuration changes a running node can take.
 *
 * A reload (SIGHUP, `sgnfsctl reload`) re-reads the file.  Live:
 *   - adding or removing an export of a group (not the group's first
 *     export, which holds its state directory .sgnfs/);
 *   - an export's clients, access, squash, anonuid, anongid, secure;
 *   - [cluster] log_level, and reopening the log file (rotation).
 * Everything else (ports, limits, run_dir, nodes, groups and their VIPs,
 * node lists, grace, journal, ownership, an export's fsid, the first
 * export) is refused with the first difference as the reason, and the old
 * configuration stays in force.  An fsid may not move to another path
 * either: handles of the old export would open files of the new one.
 *
 * Pure functions over two loaded trees: no I/O (unit-tested).
 */
#ifndef SGNFS_RELOAD_H
#define SGNFS_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_cluster;
struct cfg_group;

/*
 * May @next replace @cur on a running node?  0, or -EPERM with the reason
 * (one line, "what: old -> new; restart the nodes in turn to change it")
 * in @why.
 */
int rl_check(const struct cfg_cluster *cur, const struct cfg_cluster *next, char *why,
	     size_t whylen);

/* Do the exports of @a and @b (the same group) differ in any way? */
bool rl_exports_differ(const struct cfg_group *a, const struct cfg_group *b);

/*
 * Describe how the exports of @next differ from @cur, one change per call
 * of @fn ("export /p added (fsid 7)", "export /p removed", "export /p:
 * clients, squash changed").
 */
void rl_describe(const struct cfg_group *cur, const struct cfg_group *next,
		 void (*fn)(void *arg, const char *change), void *arg);

#endif
