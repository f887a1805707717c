/*
 * nlm_status.h - a group's lock state as data (nlm_status.c).
 */
#ifndef SGNFS_NLM_STATUS_H
#define SGNFS_NLM_STATUS_H

#include <stddef.h>

struct json_object;
struct jr_stats;
struct nlm_group;

size_t nlm_group_nlocks(const struct nlm_group *ng);
size_t nlm_group_nwaiters(const struct nlm_group *ng);
/* The group's journal counters into @st (left as they are without a
 * journal). */
void nlm_group_journal_stats(const struct nlm_group *ng, struct jr_stats *st);
/* Adds "journal", "nlm", "clients" and "locks" to the group object @out,
 * each list cut at @list_max entries ("clients_truncated",
 * "locks_truncated" say whether it was). */
void nlm_group_status(const struct nlm_group *ng, struct json_object *out, size_t list_max);

#endif
