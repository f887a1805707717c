/*
 * pmap_svc.h - PORTMAP v2 (RFC 1833) answered by the node itself on every
 * service address, so clients find MOUNT, NFS, NLM and NSM with no system
 * rpcbind.  The table is per process (one node); SET and UNSET are accepted
 * only from loopback.
 */
#ifndef SGNFS_PMAP_SVC_H
#define SGNFS_PMAP_SVC_H

#include <stdint.h>
#include "rpc/rpc.h"

extern const struct rpc_prog pmap_prog;

/* Add or replace a mapping; 0 or -ENOSPC. */
int pmap_table_set(uint32_t prog, uint32_t vers, uint32_t prot, uint32_t port);
/* Remove every mapping of prog/vers; returns how many were removed. */
int pmap_table_unset(uint32_t prog, uint32_t vers);
/* Port for prog/vers/prot or 0. */
uint32_t pmap_table_get(uint32_t prog, uint32_t vers, uint32_t prot);
void pmap_table_clear(void);

#endif
