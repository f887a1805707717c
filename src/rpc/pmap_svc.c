/*
 * pmap_svc.c - see pmap_svc.h.  The table is small (a few programs times
 * versions times two transports), so a flat array is both the simplest and
 * the fastest structure.
 */
#include "rpc/pmap_svc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pmap.h"

#define PMAP_TABLE_MAX 64

static pmap_mapping pmap_table[PMAP_TABLE_MAX];
static size_t pmap_count;

int pmap_table_set(uint32_t prog, uint32_t vers, uint32_t prot, uint32_t port)
{
	for (size_t i = 0; i < pmap_count; i++) {
		pmap_mapping *m = &pmap_table[i];
		if (m->prog == prog && m->vers == vers && m->prot == prot) {
			m->port = port;
			return 0;
		}
	}
	if (pmap_count == PMAP_TABLE_MAX)
		return -ENOSPC;
	pmap_table[pmap_count++] = (pmap_mapping){ prog, vers, prot, port };
	return 0;
}

int pmap_table_unset(uint32_t prog, uint32_t vers)
{
	size_t o = 0;
	int removed = 0;

	for (size_t i = 0; i < pmap_count; i++) {
		if (pmap_table[i].prog == prog && pmap_table[i].vers == vers)
			removed++;
		else
			pmap_table[o++] = pmap_table[i];
	}
	pmap_count = o;
	return removed;
}

uint32_t pmap_table_get(uint32_t prog, uint32_t vers, uint32_t prot)
{
	for (size_t i = 0; i < pmap_count; i++) {
		const pmap_mapping *m = &pmap_table[i];
		if (m->prog == prog && m->vers == vers && m->prot == prot)
			return m->port;
	}
	return 0;
}

void pmap_table_clear(void)
{
	pmap_count = 0;
}

static enum rpc_disposition pmaps_null(struct rpc_req *req)
{
	return RPC_DONE_REPLY;
}

static bool pmaps_may_change(const struct rpc_req *req, const char *what)
{
	char a[80];

	if (rpc_addr_is_loopback(&req->peer))
		return true;
	log_warn("pmap: %s refused from non-loopback client %s", what,
		 rpc_addr_str(&req->peer, true, a, sizeof(a)));
	return false;
}

static enum rpc_disposition pmaps_set(struct rpc_req *req)
{
	const pmap_mapping *m = req->args;
	bool_t *ok = req->res;

	*ok = FALSE;
	if (m->prot != PMAP_IPPROTO_TCP && m->prot != PMAP_IPPROTO_UDP)
		return RPC_DONE_REPLY;
	if (m->port == 0 || m->port > 65535)
		return RPC_DONE_REPLY;
	/* RFC 1833: SET fails if the program is already registered. */
	if (!pmaps_may_change(req, "SET") || pmap_table_get(m->prog, m->vers, m->prot))
		return RPC_DONE_REPLY;
	*ok = pmap_table_set(m->prog, m->vers, m->prot, m->port) == 0;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition pmaps_unset(struct rpc_req *req)
{
	const pmap_mapping *m = req->args;
	bool_t *ok = req->res;

	*ok = pmaps_may_change(req, "UNSET") && pmap_table_unset(m->prog, m->vers) > 0;
	return RPC_DONE_REPLY;
}

static enum rpc_disposition pmaps_getport(struct rpc_req *req)
{
	const pmap_mapping *m = req->args;
	u_int *port = req->res;

	*port = pmap_table_get(m->prog, m->vers, m->prot);
	return RPC_DONE_REPLY;
}

static enum rpc_disposition pmaps_dump(struct rpc_req *req)
{
	pmap_dump_res *res = req->res;
	pmap_list **tail = res;

	/* The list is freed by xdr_free() after the reply, so every node is
	 * malloc'ed; on failure send what we have (still a valid list). */
	for (size_t i = 0; i < pmap_count; i++) {
		pmap_list *n = calloc(1, sizeof(*n));
		if (!n)
			break;
		n->map = pmap_table[i];
		*tail = n;
		tail = &n->next;
	}
	return RPC_DONE_REPLY;
}

#define PMAP_PROC(NAME, fn_, atype, axdr, rtype, rxdr) \
	[PMAP2PROC_##NAME] = { .name = #NAME, .fn = fn_, \
		.xdr_args = (xdrproc_t)axdr, .args_size = sizeof(atype), \
		.xdr_res = (xdrproc_t)rxdr, .res_size = sizeof(rtype) }

static const struct rpc_proc pmap_v2_procs[] = {
	PMAP_PROC(NULL, pmaps_null, char, rpc_xdr_void, char, rpc_xdr_void),
	PMAP_PROC(SET, pmaps_set, pmap_mapping, xdr_pmap_mapping, bool_t, xdr_bool),
	PMAP_PROC(UNSET, pmaps_unset, pmap_mapping, xdr_pmap_mapping, bool_t, xdr_bool),
	PMAP_PROC(GETPORT, pmaps_getport, pmap_mapping, xdr_pmap_mapping, u_int, xdr_u_int),
	PMAP_PROC(DUMP, pmaps_dump, char, rpc_xdr_void, pmap_dump_res, xdr_pmap_dump_res),
};

static const struct rpc_vers pmap_v2 = {
	.vers = SG_PMAP_VERS,
	.nprocs = sizeof(pmap_v2_procs) / sizeof(pmap_v2_procs[0]),
	.procs = pmap_v2_procs,
};

static const struct rpc_vers *const pmap_versions[] = { &pmap_v2 };

const struct rpc_prog pmap_prog = {
	.name = "portmap",
	.prog = SG_PMAP_PROG,
	.vers_lo = 2,
	.vers_hi = 2,
	.vers = pmap_versions,
};
