/*
 * rpc_rm.c - see rpc_rm.h.
 */
#include "rpc/rpc_rm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first buffer of a record split across reads; it doubles from here. */
#define RM_FIRST_CAP 4096u

void rm_init(struct rm_parser *rm, uint32_t max_record, enum rm_oversize mode)
{
	memset(rm, 0, sizeof(*rm));
	rm->max_record = max_record > RM_LEN_MASK ? RM_LEN_MASK : max_record;
	rm->mode = mode;
}

void rm_fini(struct rm_parser *rm)
{
	free(rm->rec);
	rm->rec = NULL;
	rm->rec_len = rm->rec_cap = 0;
}

bool rm_idle(const struct rm_parser *rm)
{
	return !rm->in_frag && rm->mark_have == 0 && rm->rec_len == 0 && !rm->skipping &&
	       rm->head_have == 0;
}

void rm_put_mark(uint8_t out[RM_MARK_LEN], uint32_t len, bool last)
{
	uint32_t m = (len & RM_LEN_MASK) | (last ? RM_LAST_FRAG : 0);

	out[0] = (uint8_t)(m >> 24);
	out[1] = (uint8_t)(m >> 16);
	out[2] = (uint8_t)(m >> 8);
	out[3] = (uint8_t)m;
}

static uint32_t rm_get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Make room for @need bytes (need <= max_record), doubling so a record that
 * trickles in costs O(log n) reallocations, never more than it has sent. */
static int rm_grow(struct rm_parser *rm, size_t need)
{
	size_t cap = rm->rec_cap ? rm->rec_cap : RM_FIRST_CAP;
	uint8_t *nrec;

	if (need <= rm->rec_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > rm->max_record)
		cap = rm->max_record;
	nrec = realloc(rm->rec, cap);
	if (!nrec)
		return -ENOMEM;
	rm->rec = nrec;
	rm->rec_cap = cap;
	return 0;
}

/* A record ended: hand it over and reset for the next one. */
static int rm_deliver(struct rm_parser *rm, rm_record_fn fn, void *arg)
{
	size_t len = rm->rec_len;
	bool skipped = rm->skipping;
	unsigned hh = rm->head_have;
	int rc;

	rm->rec_len = 0;
	rm->skipping = false;
	rm->head_have = 0;
	if (skipped)
		rc = fn(arg, rm->head, hh, true);
	else
		rc = fn(arg, rm->rec ? rm->rec : rm->head, len, false);
	if (rm->rec_cap > RM_KEEP_CAP && len <= RM_KEEP_CAP) {
		free(rm->rec);
		rm->rec = NULL;
		rm->rec_cap = 0;
	}
	return rc;
}

int rm_feed_until(struct rm_parser *rm, const uint8_t *p, size_t n, rm_record_fn fn, void *arg,
		  size_t *left)
{
	int rc;

	*left = 0;
	while (n > 0) {
		/* The common case: a whole one-fragment record inside this
		 * input, handed over where it lies (no copy, no buffer). */
		if (rm_idle(rm) && n >= RM_MARK_LEN) {
			uint32_t mark = rm_get32(p);
			uint32_t flen = mark & RM_LEN_MASK;

			if ((mark & RM_LAST_FRAG) && flen <= n - RM_MARK_LEN &&
			    flen <= rm->max_record) {
				rc = fn(arg, p + RM_MARK_LEN, flen, false);
				p += RM_MARK_LEN + (size_t)flen;
				n -= RM_MARK_LEN + (size_t)flen;
				if (rc != 0) {
					*left = rc > 0 ? n : 0;
					return rc < 0 ? rc : 0;
				}
				continue;
			}
		}
		if (!rm->in_frag) {
			size_t take = RM_MARK_LEN - rm->mark_have;
			uint32_t mark;

			if (take > n)
				take = n;
			memcpy(rm->mark + rm->mark_have, p, take);
			rm->mark_have += (unsigned)take;
			p += take;
			n -= take;
			if (rm->mark_have < RM_MARK_LEN)
				break;
			rm->mark_have = 0;
			mark = rm_get32(rm->mark);
			rm->frag_last = (mark & RM_LAST_FRAG) != 0;
			rm->frag_left = mark & RM_LEN_MASK;
			rm->in_frag = true;
			/* Judged on the mark alone, before any byte of the
			 * fragment is buffered: the mark may claim 2 GiB. */
			if (!rm->skipping &&
			    (uint64_t)rm->rec_len + rm->frag_left > rm->max_record) {
				if (rm->mode == RM_OVERSIZE_FAIL)
					return -EMSGSIZE;
				rm->skipping = true;
				rm->rec_len = 0;
			}
		}
		if (rm->frag_left > 0) {
			size_t take = rm->frag_left < n ? rm->frag_left : n;

			if (rm->head_have < RM_HEAD_LEN) {
				size_t h = RM_HEAD_LEN - rm->head_have;

				if (h > take)
					h = take;
				memcpy(rm->head + rm->head_have, p, h);
				rm->head_have += (unsigned)h;
			}
			if (!rm->skipping && take > 0) {
				rc = rm_grow(rm, rm->rec_len + take);
				if (rc < 0)
					return rc;
				memcpy(rm->rec + rm->rec_len, p, take);
				rm->rec_len += take;
			}
			rm->frag_left -= (uint32_t)take;
			p += take;
			n -= take;
			if (rm->frag_left > 0)
				break; /* the rest of the fragment comes later */
		}
		rm->in_frag = false;
		if (!rm->frag_last)
			continue;
		rc = rm_deliver(rm, fn, arg);
		if (rc != 0) {
			*left = rc > 0 ? n : 0;
			return rc < 0 ? rc : 0;
		}
	}
	return 0;
}

int rm_feed(struct rm_parser *rm, const uint8_t *p, size_t n, rm_record_fn fn, void *arg)
{
	size_t left;

	return rm_feed_until(rm, p, n, fn, arg, &left);
}
