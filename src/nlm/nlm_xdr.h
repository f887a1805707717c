/*
 * nlm_xdr.h - NLM v1/v3 arguments widened to the v4 form at the edge, and
 * v4 results narrowed for v1/v3 replies, so each procedure has exactly one
 * handler working on nlm4_* types whatever version the client speaks.
 *
 * These are xdrproc_t routines for the dispatch tables: on XDR_DECODE they
 * decode the 32-bit wire form and fill the nlm4_* structure (pointers are
 * moved, not copied); on XDR_ENCODE they encode an nlm4_* result in the
 * 32-bit wire form; on XDR_FREE they free the nlm4_* structure.
 *
 * Narrowing rules (documented in docs/nlm.md):
 *   status: NLM4_DEADLCK -> LCK_DENIED; NLM4_ROFS, NLM4_STALE_FH, NLM4_FBIG,
 *           NLM4_FAILED -> LCK_DENIED_NOLOCKS (v1/v3 have no such codes);
 *   holder: a range that starts or ends beyond 2^32-1 is reported clamped:
 *           offset min(offset, 2^32-1), length 0 (to end of file) when the
 *           range reaches past 2^32-1.
 */
#ifndef SGNFS_NLM_XDR_H
#define SGNFS_NLM_XDR_H

#include "rpc/rpc.h"
#include "nlm.h"

bool_t nlm3_xdr_testargs(XDR *x, nlm4_testargs *a);
bool_t nlm3_xdr_lockargs(XDR *x, nlm4_lockargs *a);
bool_t nlm3_xdr_cancargs(XDR *x, nlm4_cancargs *a);
bool_t nlm3_xdr_unlockargs(XDR *x, nlm4_unlockargs *a);
bool_t nlm3_xdr_shareargs(XDR *x, nlm4_shareargs *a);
bool_t nlm3_xdr_notify(XDR *x, nlm4_notify *a);
bool_t nlm3_xdr_testres(XDR *x, nlm4_testres *r);
bool_t nlm3_xdr_res(XDR *x, nlm4_res *r);
bool_t nlm3_xdr_shareres(XDR *x, nlm4_shareres *r);

/*
 * NLM v4 arguments decoded without an allocation (rpc_proc.args_room): the
 * cookie and the lock's caller_name, fh and oh are decoded into the
 * request's room, each share as large as its nlm.x bound.  A cookie
 * echoed in the results may point at the arguments' (nlm_proc.c); the
 * unprep routines clear the results' cookie too, for every result type of
 * these procedures begins with it.  (v1/v3 decode a 32-bit form and move
 * its pointers into the v4 one: they keep allocating.)
 */
#define NLM4_LOCK_ROOM (NLM_MAXSTRLEN + 1 + 2 * NLM_MAXNETOBJ)
#define NLM4_ARGS_ROOM (NLM_MAXNETOBJ + NLM4_LOCK_ROOM)
void nlm4_prep_testargs(void *args, uint8_t *room);
void nlm4_prep_lockargs(void *args, uint8_t *room);
void nlm4_prep_cancargs(void *args, uint8_t *room);
void nlm4_prep_unlockargs(void *args, uint8_t *room);
void nlm4_unprep_testargs(struct rpc_req *req);
void nlm4_unprep_lockargs(struct rpc_req *req);
void nlm4_unprep_cancargs(struct rpc_req *req);
void nlm4_unprep_unlockargs(struct rpc_req *req);
/* rpc_proc.args_room_used / args_move: a decoded call's block is cut to
 * what its cookie and lock hold (8-aligned netobjs, then the caller_name). */
size_t nlm4_room_used_testargs(const void *args);
size_t nlm4_room_used_lockargs(const void *args);
size_t nlm4_room_used_cancargs(const void *args);
size_t nlm4_room_used_unlockargs(const void *args);
void nlm4_move_testargs(void *to, const void *from, uint8_t *room);
void nlm4_move_lockargs(void *to, const void *from, uint8_t *room);
void nlm4_move_cancargs(void *to, const void *from, uint8_t *room);
void nlm4_move_unlockargs(void *to, const void *from, uint8_t *room);

/* Narrow one v4 status for a v1/v3 reply. */
sgn_nlm_stats nlm3_stat(nlm4_stats s);

#endif
