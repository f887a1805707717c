/*
 * nlm_proc.h - the NLM procedures and their RPC tables (nlm_proc.c);
 * nlm_prog itself is declared in nlm_svc.h.
 */
#ifndef SGNFS_NLM_PROC_H
#define SGNFS_NLM_PROC_H

struct nlm_group;

/* The group closes: requests waiting for the disk end without a reply. */
void nlm_parked_abandon(struct nlm_group *ng);

#endif
