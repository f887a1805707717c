/*
 * metrics.h - histograms and the Prometheus text exposition format
 * (version 0.0.4): what every module's metrics are written with
 * (docs/metrics.md lists the metrics).
 *
 * Not thread-safe: histograms are observed and written on the loop thread.
 * Label strings are passed preformatted ("group=\"g1\",program=\"nfs\"",
 * or "" for none); values in them must not need escaping (they are names
 * from the configuration or from our own tables, never network strings).
 */
#ifndef SGNFS_METRICS_H
#define SGNFS_METRICS_H

#include <stdint.h>

#include "sbuf.h"

/* Upper bounds of the histogram buckets, in seconds (the last, +Inf, is
 * implicit): from 100 us (an in-memory lock) to 10 s (a takeover that
 * waited for storage). */
#define MT_NBUCKETS 13
extern const double mt_bounds[MT_NBUCKETS];

struct mt_hist {
	uint64_t bucket[MT_NBUCKETS + 1];  /* not cumulative; [MT_NBUCKETS] = +Inf */
	uint64_t count;
	uint64_t sum_ns;
};

/* Count one observation of @ns nanoseconds. */
void mt_observe(struct mt_hist *h, uint64_t ns);
/* Add @src's observations to @dst. */
void mt_hist_add(struct mt_hist *dst, const struct mt_hist *src);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void mt_family(struct sbuf *o, const char *name, const char *type, const char *help);
void mt_u64(struct sbuf *o, const char *name, const char *labels, uint64_t v);
void mt_f64(struct sbuf *o, const char *name, const char *labels, double v);
/* name_bucket{labels,le="..."} (cumulative), name_sum, name_count. */
void mt_hist_write(struct sbuf *o, const char *name, const char *labels,
		   const struct mt_hist *h);

/*
 * Merge @n expositions (each one node's, every sample labelled with its
 * node) into one valid exposition in @o: each family once, with its HELP
 * and TYPE from the first text that has it and the samples of every text
 * together, in the order families first appear.  Concatenating them
 * instead repeats each TYPE, which a scraper rejects.  0, -ENOMEM, or
 * -EINVAL for a sample line before any family (which a node never writes).
 */
int mt_merge(struct sbuf *o, const char *const *texts, size_t n);

#endif
