/*
 * shash.h - keyed hashing of values that come off the network (caller
 * names, source addresses, file and owner handles) for in-memory tables.
 *
 * SipHash-1-3 under a secret random key: without the key a client cannot
 * choose names or addresses that share a chain, so no table's lookup can be
 * made to cost its whole size.  An unkeyed hash (FNV) lets anyone compute,
 * offline, thousands of caller names or IPv6 addresses in one chain.
 * Only for tables in memory: a name on shared storage must hash the same
 * on every node and after a restart (nsm/clist.c's file names).
 */
#ifndef SGNFS_SHASH_H
#define SGNFS_SHASH_H

#include <stddef.h>
#include <stdint.h>

struct sh_key {
	uint64_t k0, k1;
};

uint64_t sh_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* sh_siphash under @k. */
static inline uint64_t sh_hash(const struct sh_key *k, const void *data, size_t len)
{
	return sh_siphash(k->k0, k->k1, data, len);
}

/* A fresh key from the kernel's random source (getrandom(2)).  0, or
 * -errno (logged) with *@out set from the clock and addresses instead. */
int sh_key_new(struct sh_key *out);

/* The process's key, made on first use (any thread) and never changed:
 * for hashes shared by several tables or modules (saddr.c). */
const struct sh_key *sh_process_key(void);

#endif
