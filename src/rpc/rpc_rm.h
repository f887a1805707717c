/*
 * rpc_rm.h - RPC record marking over a byte stream (RFC 5531 section 11),
 * the one parser and reassembler used by the server transport (rpc_xprt.c)
 * and the client transport (rpc_clnt.c, which the sgnfs-client tool and the
 * daemon's callbacks use).
 *
 * Each fragment starts with a 4-byte big-endian mark: top bit = last
 * fragment of the record, low 31 bits = fragment length.  Zero-length
 * fragments are legal.  The parser is resumable: bytes may arrive split at
 * any point, one at a time included.
 *
 * Memory follows the bytes that really arrive, never the length a mark
 * announces: a mark claiming 1 MiB followed by 10 bytes costs about 4 KiB.
 * A record whose running size would exceed max_record is refused as soon as
 * the mark that makes it too big is read, before any of its bytes are
 * buffered; what happens then depends on the mode:
 *   RM_OVERSIZE_FAIL  rm_feed() returns -EMSGSIZE (the server closes: a
 *                     client that sends too much is not worth serving);
 *   RM_OVERSIZE_SKIP  the rest of the record is discarded as it arrives and
 *                     the callback gets its first RM_HEAD_LEN bytes with
 *                     oversize set (the client fails just that call, by
 *                     xid, and keeps the connection).
 *
 * Not thread-safe; a parser belongs to its connection's loop thread.
 */
#ifndef SGNFS_RPC_RM_H
#define SGNFS_RPC_RM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RM_MARK_LEN   4
#define RM_LAST_FRAG  0x80000000u
#define RM_LEN_MASK   0x7fffffffu
/* Bytes of an oversized record kept for the callback (an RPC xid). */
#define RM_HEAD_LEN   4
/* A reassembly buffer bigger than this is freed after a record no bigger
 * than it, so one big record does not pin memory for the connection's
 * lifetime. */
#define RM_KEEP_CAP   65536u

enum rm_oversize {
	RM_OVERSIZE_FAIL,
	RM_OVERSIZE_SKIP,
};

/*
 * Called once per complete record.  @rec is valid only during the call (it
 * may point into the caller's input or into the parser's buffer); it is
 * never NULL, even for an empty record.  With @oversize set (skip mode
 * only), @rec holds just the record's first min(RM_HEAD_LEN, size) bytes.
 * Return 0 to go on, > 0 to stop feeding quietly (the connection is going
 * away), < 0 to stop and have rm_feed() return that value.
 */
typedef int (*rm_record_fn)(void *arg, const uint8_t *rec, size_t len, bool oversize);

struct rm_parser {
	uint32_t max_record;        /* bytes of one record, fragments summed */
	enum rm_oversize mode;
	uint8_t mark[RM_MARK_LEN];  /* the mark being read */
	unsigned mark_have;         /* bytes of it received */
	uint32_t frag_left;         /* bytes of the current fragment still due */
	bool in_frag;               /* mark read, body (maybe empty) pending */
	bool frag_last;
	bool skipping;              /* current record is over max_record (skip mode) */
	uint8_t head[RM_HEAD_LEN];  /* first bytes of the current record */
	unsigned head_have;
	uint8_t *rec;               /* reassembly buffer (owned) */
	size_t rec_len, rec_cap;
};

/* @max_record must be at most RM_LEN_MASK. */
void rm_init(struct rm_parser *rm, uint32_t max_record, enum rm_oversize mode);
/* Frees the buffer; the parser may be rm_init()ed again. */
void rm_fini(struct rm_parser *rm);
/* True when no record is partly received (a mark, a fragment or a
 * non-last fragment's bytes are pending). */
bool rm_idle(const struct rm_parser *rm);

/*
 * Feed @n bytes of the stream, calling @fn for each complete record.
 * Returns 0, -EMSGSIZE (fail mode: a record over max_record), -ENOMEM, or
 * the callback's negative value.  After an error the stream is unusable
 * (the caller closes it); after a callback's > 0 the remaining input is
 * dropped.
 */
int rm_feed(struct rm_parser *rm, const uint8_t *p, size_t n, rm_record_fn fn, void *arg);

/*
 * rm_feed, telling in *@left how many bytes of the input a callback's > 0
 * left unread (0 otherwise).  They start at a record boundary: a caller
 * that stopped to take a breath (the server, at its bounds) feeds them
 * again later, and the stream goes on as if never cut.
 */
int rm_feed_until(struct rm_parser *rm, const uint8_t *p, size_t n, rm_record_fn fn, void *arg,
		  size_t *left);

/* Write the mark of a one-fragment record of @len bytes (<= RM_LEN_MASK). */
void rm_put_mark(uint8_t out[RM_MARK_LEN], uint32_t len, bool last);

#endif
