/*
 * fuzz_xdr.c - one fuzz entry point for everything that parses bytes from
 * the network before any handler runs: the rpcgen decoders of every
 * procedure argument (NFSv3, MOUNT v1-3, NLM v1/v3/v4 with the v1/v3
 * widening of src/nlm/nlm_xdr.c, NSM, PORTMAP), the RPC message header and
 * the AUTH_SYS body, the results our client decodes, file handles
 * (fh_decode) and client names (clist_name_check).
 *
 * Input: the first 4 bytes (big-endian) pick a target, the rest is its
 * input.  Targets 0..FZ_NSPECIAL-1 are the special ones below; the decoder
 * table follows.  Append new decoders at the end of fz_decs[] only, so the
 * saved corpus keeps meaning the same thing.  A selector beyond the table
 * is taken modulo its size.
 *
 * What is checked, beyond "no sanitizer report":
 *   - a decoder never reports consuming more than it was given;
 *   - xdr_free() after a failed decode frees the partial result (LeakSan);
 *   - for every type the server or client also encodes: encoding what was
 *     decoded succeeds, xdr_sizeof() agrees with it, and decoding then
 *     re-encoding that encoding gives the same bytes (decode/encode are
 *     inverse up to normalisation: padding, bool values, NUL in strings);
 *   - the RPC call target mirrors rpc_svc.c: header, then the AUTH_SYS body
 *     must decode to exactly its length within the bounds the server
 *     copies into fixed arrays (16 gids, 255-byte name), then the
 *     arguments of the procedure the header names;
 *   - fh_decode accepts only what fh_encode gives back byte for byte;
 *   - clist_name_check accepts only names its contract allows.
 *
 * Built two ways: with clang -fsanitize=fuzzer by tests/fuzz/build.sh, and
 * with the normal build into fuzz_replay (replay.c), which runs the saved
 * corpus in every test run.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "mount.h"
#include "nfs3.h"
#include "nlm.h"
#include "nsm.h"
#include "pmap.h"
#include "rpcmsg.h"
#include "nfs/fh.h"
#include "nlm/nlm_xdr.h"
#include "nsm/clist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property violation: libFuzzer (or replay) reports the abort. */
#define FZ_CHECK(cond, what)                                                  \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_xdr: %s: %s (%s:%d)\n", fz_cur,  \
				what, __FILE__, __LINE__);                    \
			abort();                                              \
		}                                                             \
	} while (0)

static const char *fz_cur = "?";

/* FUZZ_XDR_VERBOSE=1: say what each input was decoded as (corpus work). */
static void fz_note(const char *what, bool ok)
{
	static int verbose = -1;

	if (verbose < 0)
		verbose = getenv("FUZZ_XDR_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "fuzz_xdr: %s: %s\n", what, ok ? "decoded" : "rejected");
}

enum fz_rt {
	FZ_RT_NONE = 0, /* decode only (the v1/v3 argument widening) */
	FZ_RT_FULL,     /* encode, sizeof, decode again, encode again */
};

struct fz_dec {
	const char *name;
	xdrproc_t xdr;
	size_t size;
	enum fz_rt rt;
	uint32_t prog;   /* 0: not a call argument (results, callbacks) */
	uint32_t vmask;  /* bit v set: version v of @prog ... */
	uint32_t pmask;  /* ... uses it for procedure p (bit p) */
};

#define V(v) (1u << (v))
#define P(p) (1u << (p))
#define DEC(T, rt, prog, vm, pm) { #T, (xdrproc_t)xdr_##T, sizeof(T), rt, prog, vm, pm }
#define RES(T) DEC(T, FZ_RT_FULL, 0, 0, 0)
#define NLM3(name, T, rt, pm)                                                 \
	{ "nlm3_" #name, (xdrproc_t)nlm3_xdr_##name, sizeof(T), rt, 100021,   \
	  V(1) | V(3), pm }

#define NFS 100003
#define MNT 100005
#define NLM 100021
#define NSM 100024
#define PMAP 100000

/* NLM procedure numbers shared by every version (nlm.x). */
#define NLM_TESTA (P(1) | P(5) | P(6) | P(10))
#define NLM_LOCKA (P(2) | P(7) | P(22))
#define NLM_CANCA (P(3) | P(8))
#define NLM_UNLA  (P(4) | P(9))
#define NLM_TESTR P(11)
#define NLM_RES   (P(12) | P(13) | P(14) | P(15))
#define NLM_SHARE (P(20) | P(21))
#define NLM_FREE  P(23)

/* Append only (see the header comment). */
static const struct fz_dec fz_decs[] = {
	/* NFSv3 arguments */
	DEC(GETATTR3args, FZ_RT_FULL, NFS, V(3), P(1)),
	DEC(SETATTR3args, FZ_RT_FULL, NFS, V(3), P(2)),
	DEC(LOOKUP3args, FZ_RT_FULL, NFS, V(3), P(3)),
	DEC(ACCESS3args, FZ_RT_FULL, NFS, V(3), P(4)),
	DEC(READLINK3args, FZ_RT_FULL, NFS, V(3), P(5)),
	DEC(READ3args, FZ_RT_FULL, NFS, V(3), P(6)),
	DEC(WRITE3args, FZ_RT_FULL, NFS, V(3), P(7)),
	DEC(CREATE3args, FZ_RT_FULL, NFS, V(3), P(8)),
	DEC(MKDIR3args, FZ_RT_FULL, NFS, V(3), P(9)),
	DEC(SYMLINK3args, FZ_RT_FULL, NFS, V(3), P(10)),
	DEC(MKNOD3args, FZ_RT_FULL, NFS, V(3), P(11)),
	DEC(REMOVE3args, FZ_RT_FULL, NFS, V(3), P(12)),
	DEC(RMDIR3args, FZ_RT_FULL, NFS, V(3), P(13)),
	DEC(RENAME3args, FZ_RT_FULL, NFS, V(3), P(14)),
	DEC(LINK3args, FZ_RT_FULL, NFS, V(3), P(15)),
	DEC(READDIR3args, FZ_RT_FULL, NFS, V(3), P(16)),
	DEC(READDIRPLUS3args, FZ_RT_FULL, NFS, V(3), P(17)),
	DEC(FSSTAT3args, FZ_RT_FULL, NFS, V(3), P(18)),
	DEC(FSINFO3args, FZ_RT_FULL, NFS, V(3), P(19)),
	DEC(PATHCONF3args, FZ_RT_FULL, NFS, V(3), P(20)),
	DEC(COMMIT3args, FZ_RT_FULL, NFS, V(3), P(21)),
	/* MOUNT: MNT (v3 only) and UMNT take a path */
	DEC(mnt3_dirpath, FZ_RT_FULL, MNT, V(1) | V(2) | V(3), P(1) | P(3)),
	/* NLM v1/v3: decoded in the 32-bit form, widened to nlm4_* */
	NLM3(testargs, nlm4_testargs, FZ_RT_FULL, NLM_TESTA),
	NLM3(lockargs, nlm4_lockargs, FZ_RT_NONE, NLM_LOCKA),
	NLM3(cancargs, nlm4_cancargs, FZ_RT_NONE, NLM_CANCA),
	NLM3(unlockargs, nlm4_unlockargs, FZ_RT_NONE, NLM_UNLA),
	NLM3(testres, nlm4_testres, FZ_RT_FULL, NLM_TESTR),
	NLM3(res, nlm4_res, FZ_RT_FULL, NLM_RES),
	NLM3(shareargs, nlm4_shareargs, FZ_RT_NONE, NLM_SHARE),
	NLM3(notify, nlm4_notify, FZ_RT_NONE, NLM_FREE),
	/* NLM v4 */
	DEC(nlm4_testargs, FZ_RT_FULL, NLM, V(4), NLM_TESTA),
	DEC(nlm4_lockargs, FZ_RT_FULL, NLM, V(4), NLM_LOCKA),
	DEC(nlm4_cancargs, FZ_RT_FULL, NLM, V(4), NLM_CANCA),
	DEC(nlm4_unlockargs, FZ_RT_FULL, NLM, V(4), NLM_UNLA),
	DEC(nlm4_testres, FZ_RT_FULL, NLM, V(4), NLM_TESTR),
	DEC(nlm4_res, FZ_RT_FULL, NLM, V(4), NLM_RES),
	DEC(nlm4_shareargs, FZ_RT_FULL, NLM, V(4), NLM_SHARE),
	DEC(nlm4_notify, FZ_RT_FULL, NLM, V(4), NLM_FREE),
	/* NSM v1 */
	DEC(sgn_sm_name, FZ_RT_FULL, NSM, V(1), P(1)),
	DEC(sgn_mon, FZ_RT_FULL, NSM, V(1), P(2)),
	DEC(sgn_mon_id, FZ_RT_FULL, NSM, V(1), P(3)),
	DEC(sgn_my_id, FZ_RT_FULL, NSM, V(1), P(4)),
	DEC(sgn_stat_chge, FZ_RT_FULL, NSM, V(1), P(6)),
	/* statd's SM_MON callback, which nlm_svc.c takes as NLM procedure 16
	 * (Linux lockd's number) in every version */
	DEC(sgn_status, FZ_RT_FULL, NLM, V(1) | V(3) | V(4), P(16)),
	/* PORTMAP v2 */
	DEC(pmap_mapping, FZ_RT_FULL, PMAP, V(2), P(1) | P(2) | P(3)),
	/* RPC header and credential */
	DEC(rpcm_msg, FZ_RT_FULL, 0, 0, 0),
	DEC(rpcm_authsys_parms, FZ_RT_FULL, 0, 0, 0),
	/* Results, decoded by our client library */
	RES(GETATTR3res), RES(SETATTR3res), RES(LOOKUP3res), RES(ACCESS3res),
	RES(READLINK3res), RES(READ3res), RES(WRITE3res), RES(CREATE3res),
	RES(MKDIR3res), RES(SYMLINK3res), RES(MKNOD3res), RES(REMOVE3res),
	RES(RMDIR3res), RES(RENAME3res), RES(LINK3res), RES(READDIR3res),
	RES(READDIRPLUS3res), RES(FSSTAT3res), RES(FSINFO3res), RES(PATHCONF3res),
	RES(COMMIT3res),
	RES(mnt3_mountres), RES(mnt3_mountlist), RES(mnt3_exports),
	RES(pmap_dump_res), RES(sgn_sm_stat_res), RES(sgn_sm_stat),
	RES(nlm4_shareres),
	{ "nlm3_shareres", (xdrproc_t)nlm3_xdr_shareres, sizeof(nlm4_shareres),
	  FZ_RT_FULL, 0, 0, 0 },
};

#define FZ_NDECS (sizeof(fz_decs) / sizeof(fz_decs[0]))

enum {
	FZ_T_CALL = 0,  /* a whole RPC call: header, credential, arguments */
	FZ_T_FH,        /* fh_decode / fh_encode */
	FZ_T_CLIST,     /* clist_name_check */
	FZ_T_PATH,      /* fh_path_in_export */
	FZ_NSPECIAL,
};

/* ---- XDR decoders --------------------------------------------------------- */

/* Encode @obj into a fresh buffer; returns it (caller frees) and its length. */
static uint8_t *fz_encode(const struct fz_dec *d, void *obj, u_int *len)
{
	unsigned long sz = xdr_sizeof(d->xdr, obj);
	uint8_t *buf;
	XDR x;
	bool ok;

	FZ_CHECK(sz > 0, "xdr_sizeof fails on a value that decoded");
	buf = malloc(sz);
	FZ_CHECK(buf != NULL, "out of memory");
	xdrmem_create(&x, (char *)buf, (u_int)sz, XDR_ENCODE);
	ok = d->xdr(&x, obj);
	*len = xdr_getpos(&x);
	xdr_destroy(&x);
	FZ_CHECK(ok, "encoding a decoded value fails");
	FZ_CHECK(*len == sz, "xdr_sizeof disagrees with the encoder");
	return buf;
}

/* Decode @n bytes into a fresh object; NULL if they do not decode. */
static void *fz_decode(const struct fz_dec *d, const uint8_t *p, size_t n, u_int *used)
{
	void *obj = calloc(1, d->size);
	XDR x;
	bool ok;

	FZ_CHECK(obj != NULL, "out of memory");
	xdrmem_create(&x, (char *)p, (u_int)n, XDR_DECODE);
	ok = d->xdr(&x, obj);
	*used = xdr_getpos(&x);
	xdr_destroy(&x);
	if (!ok) {
		/* A failed decode may leave allocations behind: the
		 * dispatcher frees them with xdr_free, so must we. */
		xdr_free(d->xdr, obj);
		free(obj);
		return NULL;
	}
	FZ_CHECK(*used <= n, "decoder consumed more than it was given");
	return obj;
}

static void fz_free(const struct fz_dec *d, void *obj)
{
	xdr_free(d->xdr, obj);
	free(obj);
}

static void fz_roundtrip(const struct fz_dec *d, void *obj)
{
	u_int alen, blen, used;
	uint8_t *a, *b;
	void *again;

	a = fz_encode(d, obj, &alen);
	again = fz_decode(d, a, alen, &used);
	FZ_CHECK(again != NULL, "our own encoding does not decode");
	FZ_CHECK(used == alen, "our own encoding decodes to a different length");
	b = fz_encode(d, again, &blen);
	FZ_CHECK(blen == alen && memcmp(a, b, alen) == 0,
		 "decode(encode(x)) encodes differently from x");
	fz_free(d, again);
	free(a);
	free(b);
}

static void fz_run_dec(const struct fz_dec *d, const uint8_t *p, size_t n)
{
	u_int used;
	void *obj;

	fz_cur = d->name;
	obj = fz_decode(d, p, n, &used);
	fz_note(d->name, obj != NULL);
	if (!obj)
		return;
	if (d->rt == FZ_RT_FULL)
		fz_roundtrip(d, obj);
	fz_free(d, obj);
}

/* ---- a whole call, as rpc_svc.c takes it apart ------------------------------ */

static const struct fz_dec *fz_find_args(uint32_t prog, uint32_t vers, uint32_t proc)
{
	if (vers > 31 || proc > 31)
		return NULL;
	for (size_t i = 0; i < FZ_NDECS; i++) {
		const struct fz_dec *d = &fz_decs[i];

		if (d->prog == prog && (d->vmask & V(vers)) && (d->pmask & P(proc)))
			return d;
	}
	return NULL;
}

static void fz_authsys(const rpcm_opaque_auth *c)
{
	rpcm_authsys_parms a;
	XDR x;
	bool ok;

	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, c->body.body_val, c->body.body_len, XDR_DECODE);
	ok = xdr_rpcm_authsys_parms(&x, &a);
	if (ok && xdr_getpos(&x) == c->body.body_len) {
		/* rpc_svc.c copies these into fixed arrays. */
		FZ_CHECK(a.gids.gids_len <= RPC_AUTH_MAX_GIDS, "more than 16 gids accepted");
		FZ_CHECK(a.machinename == NULL ||
			 strlen(a.machinename) <= RPC_AUTH_MAX_MACHNAME,
			 "machine name over 255 bytes accepted");
	}
	xdr_destroy(&x);
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&a);
}

static void fz_call(const uint8_t *p, size_t n)
{
	const struct fz_dec *hdr = NULL, *args;
	rpcm_msg *m;
	u_int used;

	for (size_t i = 0; i < FZ_NDECS; i++)
		if (fz_decs[i].xdr == (xdrproc_t)xdr_rpcm_msg)
			hdr = &fz_decs[i];
	fz_cur = "rpc call header";
	m = fz_decode(hdr, p, n, &used);
	if (!m)
		return;
	FZ_CHECK(m->body.mtype == RPCM_CALL || m->body.mtype == RPCM_REPLY,
		 "a message type other than CALL or REPLY decoded");
	if (m->body.mtype == RPCM_CALL) {
		const rpcm_call_body *cb = &m->body.rpcm_body_u.cbody;

		FZ_CHECK(cb->cred.body.body_len <= RPCMSG_MAX_AUTH_BYTES &&
			 cb->verf.body.body_len <= RPCMSG_MAX_AUTH_BYTES,
			 "opaque_auth over 400 bytes accepted");
		if (cb->cred.flavor == RPCM_AUTH_SYS) {
			fz_cur = "AUTH_SYS body";
			fz_authsys(&cb->cred);
		}
		args = fz_find_args(cb->prog, cb->vers, cb->proc);
		if (args)
			fz_run_dec(args, p + used, n - used);
	}
	fz_cur = "rpc call header";
	fz_roundtrip(hdr, m);
	fz_free(hdr, m);
}

/* ---- handles, names, paths --------------------------------------------------- */

static void fz_fh(const uint8_t *p, size_t n)
{
	struct fh_key k;
	uint8_t out[FH_SIZE_MAX];
	int len;

	fz_cur = "fh_decode";
	if (fh_decode(p, n, &k) != 0)
		return;
	FZ_CHECK(k.klen >= 1 && k.klen <= FH_KHANDLE_MAX, "klen out of range");
	len = fh_encode(&k, out, sizeof(out));
	FZ_CHECK(len == (int)n && memcmp(out, p, n) == 0,
		 "fh_decode accepted a handle fh_encode does not give back");
}

static void fz_clist(const uint8_t *p, size_t n)
{
	fz_cur = "clist_name_check";
	if (clist_name_check((const char *)p, n) != 0)
		return;
	FZ_CHECK(n >= 1 && n <= CLIST_NAME_MAX, "name length outside 1..1024 accepted");
	FZ_CHECK(p[0] != '.', "name starting with '.' accepted");
	for (size_t i = 0; i < n; i++)
		FZ_CHECK(p[i] != '/' && p[i] > 0x20 && p[i] != 0x7f,
			 "name with '/', whitespace or a control character accepted");
}

/* Input: is_dir byte, then root NUL path (the rest, NUL-terminated here). */
static void fz_path(const uint8_t *p, size_t n)
{
	const uint8_t *nul;
	char *root, *path;
	size_t rlen;
	bool is_dir, in;

	fz_cur = "fh_path_in_export";
	if (n < 1)
		return;
	is_dir = p[0] & 1;
	p++;
	n--;
	nul = memchr(p, 0, n);
	if (!nul)
		return;
	rlen = (size_t)(nul - p);
	/* The caller's contract: an absolute root, no trailing '/' unless "/". */
	if (rlen == 0 || p[0] != '/' || (rlen > 1 && p[rlen - 1] == '/'))
		return;
	root = malloc(rlen);                  /* exactly rlen: not terminated */
	path = malloc(n - rlen);
	FZ_CHECK(root && path, "out of memory");
	memcpy(root, p, rlen);
	memcpy(path, nul + 1, n - rlen - 1);
	path[n - rlen - 1] = '\0';
	in = fh_path_in_export(root, rlen, path, is_dir);
	if (in && !(!is_dir && strcmp(path, "/") == 0)) {
		size_t plen = strlen(path);

		FZ_CHECK(path[0] == '/', "a relative path is inside an export");
		if (!(rlen == 1 && root[0] == '/')) {
			FZ_CHECK(plen >= rlen && memcmp(path, root, rlen) == 0,
				 "a path outside the root is inside the export");
			FZ_CHECK(path[rlen] == '\0' || path[rlen] == '/',
				 "a sibling with the root as prefix is inside the export");
		}
	}
	free(root);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t sel;

	if (size < 4)
		return 0;
	sel = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
	      (uint32_t)data[2] << 8 | data[3];
	sel %= (uint32_t)(FZ_NSPECIAL + FZ_NDECS);
	data += 4;
	size -= 4;
	switch (sel) {
	case FZ_T_CALL: fz_call(data, size); break;
	case FZ_T_FH: fz_fh(data, size); break;
	case FZ_T_CLIST: fz_clist(data, size); break;
	case FZ_T_PATH: fz_path(data, size); break;
	default: fz_run_dec(&fz_decs[sel - FZ_NSPECIAL], data, size); break;
	}
	return 0;
}
