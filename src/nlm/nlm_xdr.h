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

/* Narrow one v4 status for a v1/v3 reply. */
sgn_nlm_stats nlm3_stat(nlm4_stats s);

#endif
