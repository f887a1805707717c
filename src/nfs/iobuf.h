/*
 * iobuf.h - the data buffers of READ replies and WRITE arguments, kept
 * for reuse.
 *
 * A READ's data goes from the buffer the pool thread pread() it into
 * straight to the socket (rpc_proc.res_tail), and the loop releases the
 * buffer once the socket took it.  Allocated afresh each time, a 1 MiB
 * buffer is new memory to the process: malloc hands it out of a heap it
 * trimmed (MADV_DONTNEED) or of a new mapping, so the pread faults in
 * every page and copies into cold memory (on this project's VMs that was
 * a quarter of sgnfsd's cycles in a pipelined read, and the copy itself
 * ran at a fraction of its speed into warm pages).  Buffers of a large
 * read are therefore all NFSB_SIZE bytes and up to NFSB_KEEP of them are
 * kept once released, for the next large READ; a small read gets an exact
 * buffer that is not kept.  WRITE's data is decoded into the same kind of
 * buffer (nfs3_xdr_write_args): a fresh 1 MiB per WRITE faulted in on the
 * loop thread just the same.
 *
 * Thread-safe (one mutex; taken once per large READ on each side).  The
 * kept buffers are the process's until nfsb_drain(): at most
 * NFSB_KEEP * NFSB_SIZE bytes.
 */
#ifndef SGNFS_NFS_IOBUF_H
#define SGNFS_NFS_IOBUF_H

#include <stddef.h>

#define NFSB_SIZE (1u << 20)     /* NFS3_MAXDATA, the largest READ */
#define NFSB_KEEP 32             /* released large buffers kept for reuse */
#define NFSB_LARGE (64u << 10)   /* from this size on, a kept buffer */

/* A buffer of at least @len bytes (@len <= NFSB_SIZE), or NULL (ENOMEM).
 * Release with nfsb_put() only (not free(3)). */
void *nfsb_get(size_t len);

/* Release @p (NULL: nothing); from any thread. */
void nfsb_put(void *p);

/* How many released buffers are kept now (tests, metrics). */
unsigned nfsb_kept(void);

/* Free every kept buffer (exit, tests). */
void nfsb_drain(void);

#endif
