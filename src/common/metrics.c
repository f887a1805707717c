/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

/* One family of a merge: its HELP and TYPE lines and its samples. */
struct mt_fam {
	char *name;
	struct sbuf head;   /* "# HELP ...\n# TYPE ...\n", from the first text */
	struct sbuf body;   /* every text's samples */
	bool has_help, has_type;
};

/* The name of a "# HELP name ..." / "# TYPE name ..." line of length @n. */
static size_t mt_meta_name(const char *ln, size_t n, const char **name)
{
	size_t k = 7;       /* after "# HELP " or "# TYPE " */

	*name = ln + k;
	while (k < n && ln[k] != ' ')
		k++;
	return (size_t)(ln + k - *name);
}

int mt_merge(struct sbuf *o, const char *const *texts, size_t n)
{
	struct mt_fam *fams = NULL, *cur;
	size_t nfams = 0, cap = 0;
	int rc = 0;

	for (size_t t = 0; t < n && rc == 0; t++) {
		const char *p = texts[t];

		cur = NULL;
		while (*p && rc == 0) {
			const char *e = strchr(p, '\n');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			bool help = len > 7 && strncmp(p, "# HELP ", 7) == 0;
			bool type = len > 7 && strncmp(p, "# TYPE ", 7) == 0;

			if (help || type) {
				const char *nm;
				size_t nl = mt_meta_name(p, len, &nm);

				cur = NULL;
				for (size_t i = 0; i < nfams && !cur; i++)
					if (strlen(fams[i].name) == nl &&
					    memcmp(fams[i].name, nm, nl) == 0)
						cur = &fams[i];
				if (!cur) {
					if (nfams == cap) {
						size_t nc = cap ? 2 * cap : 64;
						struct mt_fam *nf = realloc(fams, nc * sizeof(*nf));

						if (!nf) {
							rc = -ENOMEM;
							break;
						}
						fams = nf;
						cap = nc;
					}
					cur = &fams[nfams];
					memset(cur, 0, sizeof(*cur));
					cur->name = malloc(nl + 1);
					if (!cur->name) {
						rc = -ENOMEM;
						break;
					}
					memcpy(cur->name, nm, nl);
					cur->name[nl] = '\0';
					nfams++;
				}
				if ((help && !cur->has_help) || (type && !cur->has_type)) {
					sb_append(&cur->head, p, len);
					sb_append(&cur->head, "\n", 1);
					cur->has_help |= help;
					cur->has_type |= type;
				}
			} else if (len > 0 && p[0] != '#') {
				if (!cur) {
					rc = -EINVAL;
					break;
				}
				sb_append(&cur->body, p, len);
				sb_append(&cur->body, "\n", 1);
			}
			p += len + (e ? 1 : 0);
		}
	}
	for (size_t i = 0; i < nfams; i++) {
		if (rc == 0 && (fams[i].head.oom || fams[i].body.oom))
			rc = -ENOMEM;
		if (rc == 0) {
			if (fams[i].head.len)
				sb_append(o, fams[i].head.s, fams[i].head.len);
			if (fams[i].body.len)
				sb_append(o, fams[i].body.s, fams[i].body.len);
		}
		free(fams[i].name);
		sb_free(&fams[i].head);
		sb_free(&fams[i].body);
	}
	free(fams);
	if (rc == 0 && o->oom)
		rc = -ENOMEM;
	return rc;
}
