/*
 * nlm_status.h - a group's lock state as data (nlm_status.c).
 */
#ifndef SGNFS_NLM_STATUS_H
#define SGNFS_NLM_STATUS_H

#include <stddef.h>

struct json_object;
struct jr_stats;
struct nlm_group;
struct nlm_status_snap;

size_t nlm_group_nlocks(const struct nlm_group *ng);
size_t nlm_group_nwaiters(const struct nlm_group *ng);
/* The group's journal counters into @st (left as they are without a
 * journal). */
void nlm_group_journal_stats(const struct nlm_group *ng, struct jr_stats *st);
/*
 * The group's part of the status in two steps, so that the loop only
 * copies (docs/status.md, "Where the status is built"):
 *   nlm_status_snap    loop thread: copy the counters and at most
 *                      @list_max entries of each list (clients, locks) of
 *                      @ng into *@out, plain data that points into nothing
 *                      of the group's; the caller owns it.  0 or -ENOMEM
 *                      (nothing to free then).
 *   nlm_status_render  any thread: add "journal", "nlm", "clients",
 *                      "clients_truncated", "locks_truncated" and "locks"
 *                      to the group object @out from the copy alone.
 *   nlm_status_free    any thread; NULL is fine.
 */
int nlm_status_snap(const struct nlm_group *ng, size_t list_max, struct nlm_status_snap **out);
void nlm_status_render(const struct nlm_status_snap *s, struct json_object *out);
void nlm_status_free(struct nlm_status_snap *s);
/* The three in one, on the loop (tests): "journal", "nlm", "clients" and
 * "locks" added to @out, each list cut at @list_max entries. */
void nlm_group_status(const struct nlm_group *ng, struct json_object *out, size_t list_max);

#endif
