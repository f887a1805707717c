/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <inttypes.h>

const double mt_bounds[MT_NBUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 10,
};

void mt_observe(struct mt_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	unsigned i = 0;

	while (i < MT_NBUCKETS && s > mt_bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_ns += ns;
}

void mt_hist_add(struct mt_hist *dst, const struct mt_hist *src)
{
	for (unsigned i = 0; i <= MT_NBUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
}

void mt_family(struct sbuf *o, const char *name, const char *type, const char *help)
{
	sb_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void mt_u64(struct sbuf *o, const char *name, const char *labels, uint64_t v)
{
	if (labels[0])
		sb_printf(o, "%s{%s} %" PRIu64 "\n", name, labels, v);
	else
		sb_printf(o, "%s %" PRIu64 "\n", name, v);
}

void mt_f64(struct sbuf *o, const char *name, const char *labels, double v)
{
	if (labels[0])
		sb_printf(o, "%s{%s} %.9g\n", name, labels, v);
	else
		sb_printf(o, "%s %.9g\n", name, v);
}

void mt_hist_write(struct sbuf *o, const char *name, const char *labels,
		   const struct mt_hist *h)
{
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;

	for (unsigned i = 0; i < MT_NBUCKETS; i++) {
		cum += h->bucket[i];
		sb_printf(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
			  mt_bounds[i], cum);
	}
	cum += h->bucket[MT_NBUCKETS];
	sb_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
	if (labels[0]) {
		sb_printf(o, "%s_sum{%s} %.9g\n", name, labels, (double)h->sum_ns / 1e9);
		sb_printf(o, "%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
	} else {
		sb_printf(o, "%s_sum %.9g\n", name, (double)h->sum_ns / 1e9);
		sb_printf(o, "%s_count %" PRIu64 "\n", name, h->count);
	}
}
