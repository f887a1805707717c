/*
 * cl_record.c - what a simulated host believes it holds.
 *
 * The record mirrors POSIX lock semantics per owner (server, file handle,
 * svid, owner handle), the way a kernel client's VFS sees them: a granted
 * lock replaces whatever the same owner held in that range (an upgrade or
 * downgrade of the overlap), ranges of one type that touch or overlap are
 * merged, and an unlock cuts its range out, splitting an entry when it
 * falls in the middle.  Ranges are inclusive [first, last]; a length of 0
 * means "to the end of the file" and becomes last = UINT64_MAX.
 *
 * Fault tests compare this record with the server's view after failovers,
 * so it is written (as JSON, via a temporary file and rename) whenever it
 * changes if cl_config.record_path is set.
 *
 * JSON layout, one object:
 *   {"hosts":[{"addr":"127.1.0.1","name":"...","state":N,"pending":N,
 *     "locks":[{"server":"127.0.10.1","file":"/x","fh":"hex","svid":N,
 *               "oh":"hex","start":N,"len":N,"type":"excl"|"shared"|"share",
 *               "mode":N,"access":N,"state":"held"|"reclaiming",
 *               "reclaimed":N}, ...]}, ...]}
 */
#include "client/cl_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t cl_last(uint64_t start, uint64_t len)
{
	if (len == 0 || len - 1 > UINT64_MAX - start)
		return UINT64_MAX;
	return start + (len - 1);
}

static void cl_set_range(struct cl_lock *lk, uint64_t first, uint64_t last)
{
	lk->start = first;
	/* [first, UINT64_MAX] is "to end of file", which NLM spells len 0 */
	lk->len = last == UINT64_MAX ? 0 : last - first + 1;
}

static bool cl_blob_eq(const struct cl_blob *a, const struct cl_blob *b)
{
	return a->len == b->len && memcmp(a->val, b->val, a->len) == 0;
}

static bool cl_same_owner(const struct cl_lock *lk, const struct cl_server *s,
			  const struct cl_lockreq *rq, const struct cl_blob *oh)
{
	return !lk->is_share && lk->srv == s && lk->svid == rq->svid &&
	       cl_blob_eq(&lk->file.fh, &rq->file.fh) && cl_blob_eq(&lk->oh, oh);
}

static void cl_unlink(struct cl_host *h, struct cl_lock *lk)
{
	struct cl_lock **pp = &h->locks;

	while (*pp && *pp != lk)
		pp = &(*pp)->next;
	if (*pp)
		*pp = lk->next;
	lk->next = NULL;
}

/*
 * Cut [first, last] out of every entry of @rq's owner.  If @keep_type is
 * set, entries of type @excl that touch or overlap are instead merged into
 * [*first, *last] and removed (the caller inserts the union).
 * Returns -ENOMEM if a split could not be allocated (the record is left
 * unchanged for that entry).
 */
static int cl_cut(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
		  const struct cl_blob *oh, uint64_t *first, uint64_t *last,
		  bool merge, bool excl)
{
	struct cl_lock *lk, *next;
	int rc = 0;

	for (lk = h->locks; lk; lk = next) {
		uint64_t a = lk->start, b = cl_last(lk->start, lk->len);
		bool overlap, touch;

		next = lk->next;
		if (!cl_same_owner(lk, s, rq, oh))
			continue;
		overlap = a <= *last && *first <= b;
		/* touching: one ends just before the other starts */
		touch = (*first > 0 && b == *first - 1) || (a > 0 && *last == a - 1);
		if (merge && lk->exclusive == excl && (overlap || touch)) {
			if (a < *first)
				*first = a;
			if (b > *last)
				*last = b;
			cl_unlink(h, lk);
			free(lk);
			continue;
		}
		if (!overlap)
			continue;
		if (a < *first && b > *last) {
			/* the cut falls inside: split, allocating first */
			struct cl_lock *right = malloc(sizeof(*right));
			if (!right) {
				rc = -ENOMEM;
				continue;
			}
			*right = *lk;
			cl_set_range(right, *last + 1, b);
			cl_set_range(lk, a, *first - 1);
			right->next = lk->next;
			lk->next = right;
			next = right->next;
		} else if (a < *first) {
			cl_set_range(lk, a, *first - 1);
		} else if (b > *last) {
			cl_set_range(lk, *last + 1, b);
		} else {
			cl_unlink(h, lk);
			free(lk);
		}
	}
	return rc;
}

void cl_record_add(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
		   const struct cl_blob *oh)
{
	uint64_t first = rq->start, last = cl_last(rq->start, rq->len);
	struct cl_lock *lk;

	/* The new lock replaces the owner's other-type locks in its range and
	 * absorbs same-type ones that touch it. */
	cl_cut(h, s, rq, oh, &first, &last, false, !rq->exclusive);
	cl_cut(h, s, rq, oh, &first, &last, true, rq->exclusive);
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return;
	lk->srv = s;
	lk->file = rq->file;
	lk->svid = rq->svid;
	lk->oh = *oh;
	lk->exclusive = rq->exclusive;
	cl_set_range(lk, first, last);
	lk->next = h->locks;
	h->locks = lk;
	cl_record_changed(h->ctx);
}

void cl_record_remove(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq)
{
	uint64_t first = rq->start, last = cl_last(rq->start, rq->len);

	/* an unlock names the owner by svid and oh; the default oh is rebuilt
	 * by the caller, so compare against rq->oh as given */
	cl_cut(h, s, rq, &rq->oh, &first, &last, false, false);
	cl_record_changed(h->ctx);
}

void cl_record_share_add(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
			 const struct cl_blob *oh)
{
	struct cl_lock *lk;

	cl_record_share_remove(h, s, rq, oh);
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return;
	lk->srv = s;
	lk->file = rq->file;
	lk->svid = rq->svid;
	lk->oh = *oh;
	lk->is_share = true;
	lk->mode = rq->mode;
	lk->access = rq->access;
	lk->next = h->locks;
	h->locks = lk;
	cl_record_changed(h->ctx);
}

void cl_record_share_remove(struct cl_host *h, struct cl_server *s, const struct cl_lockreq *rq,
			    const struct cl_blob *oh)
{
	struct cl_lock *lk, *next;

	for (lk = h->locks; lk; lk = next) {
		next = lk->next;
		if (lk->is_share && lk->srv == s && cl_blob_eq(&lk->file.fh, &rq->file.fh) &&
		    cl_blob_eq(&lk->oh, oh)) {
			cl_unlink(h, lk);
			free(lk);
		}
	}
	cl_record_changed(h->ctx);
}

void cl_record_drop(struct cl_host *h, struct cl_lock *lk)
{
	cl_unlink(h, lk);
	free(lk);
	cl_record_changed(h->ctx);
}

void cl_record_drop_server(struct cl_host *h, struct cl_server *s)
{
	struct cl_lock *lk, *next;

	for (lk = h->locks; lk; lk = next) {
		next = lk->next;
		if (lk->srv == s) {
			cl_unlink(h, lk);
			free(lk);
		}
	}
	cl_record_changed(h->ctx);
}

void cl_record_free(struct cl_host *h)
{
	while (h->locks) {
		struct cl_lock *lk = h->locks;
		h->locks = lk->next;
		free(lk);
	}
}

/* ---- JSON ------------------------------------------------------------------ */

static void cl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void cl_json_hex(FILE *f, const struct cl_blob *b)
{
	fputc('"', f);
	for (uint32_t i = 0; i < b->len; i++)
		fprintf(f, "%02x", b->val[i]);
	fputc('"', f);
}

void cl_record_json(const struct cl_ctx *ctx, FILE *f)
{
	fputs("{\"hosts\":[", f);
	for (size_t i = 0; i < ctx->nhosts; i++) {
		const struct cl_host *h = ctx->hosts[i];

		fprintf(f, "%s{\"addr\":\"%s\",\"name\":", i ? "," : "", h->addrstr);
		cl_json_str(f, h->name);
		fprintf(f, ",\"state\":%d,\"pending\":%u,\"locks\":[", (int)h->state, h->nreqs);
		for (const struct cl_lock *lk = h->locks; lk; lk = lk->next) {
			fprintf(f, "%s{\"server\":\"%s\",\"file\":", lk == h->locks ? "" : ",",
				lk->srv->name);
			cl_json_str(f, lk->file.path);
			fputs(",\"fh\":", f);
			cl_json_hex(f, &lk->file.fh);
			fprintf(f, ",\"svid\":%u,\"oh\":", lk->svid);
			cl_json_hex(f, &lk->oh);
			if (lk->is_share)
				fprintf(f, ",\"type\":\"share\",\"mode\":%u,\"access\":%u",
					lk->mode, lk->access);
			else
				fprintf(f, ",\"start\":%llu,\"len\":%llu,\"type\":\"%s\"",
					(unsigned long long)lk->start, (unsigned long long)lk->len,
					lk->exclusive ? "excl" : "shared");
			fprintf(f, ",\"state\":\"%s\",\"reclaimed\":%u}",
				lk->state == CL_HELD ? "held" : "reclaiming", lk->reclaimed);
		}
		fputs("]}", f);
	}
	fputs("]}", f);
}

int cl_record_write(const struct cl_ctx *ctx, const char *path)
{
	char tmp[CL_MAX_PATH + 8];
	FILE *f;
	int rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	cl_record_json(ctx, f);
	fputc('\n', f);
	if (fflush(f) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	/* rename: a reader sees the old record or the new one, never half */
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}
