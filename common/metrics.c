/* metrics.c - Prometheus text exposition helpers. */
#include "common/metrics.h"

#include <stdio.h>

const uint64_t metrics_bucket_us[METRICS_BUCKETS] = {
	100,    250,    500,     1000,    2500,    5000,    10000,
	25000,  50000,  100000,  250000,  500000,  1000000, 5000000,
};

const uint64_t metrics_bucket_size[METRICS_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
};

void
metrics_observe_in(struct metrics_hist *h, const uint64_t *bounds,
		   uint64_t value)
{
	unsigned i = 0;
	while (i < METRICS_BUCKETS && value > bounds[i])
		i++;
	metrics_add(&h->bucket[i], 1);
	metrics_add(&h->sum_us, value);
	metrics_add(&h->count, 1);
}

void
metrics_observe(struct metrics_hist *h, uint64_t us)
{
	metrics_observe_in(h, metrics_bucket_us, us);
}

void
metrics_hist_sum(struct metrics_hist *acc, const struct metrics_hist *h)
{
	for (unsigned i = 0; i <= METRICS_BUCKETS; i++)
		acc->bucket[i] += metrics_get(&h->bucket[i]);
	acc->count += metrics_get(&h->count);
	acc->sum_us += metrics_get(&h->sum_us);
}

void
metrics_family(struct buf *b, const char *name, const char *type,
	       const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metrics_sample(struct buf *b, const char *name, const char *labels,
	       uint64_t value)
{
	if (labels != NULL && labels[0] != '\0')
		buf_printf(b, "%s{%s} %llu\n", name, labels,
			   (unsigned long long)value);
	else
		buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

void
metrics_hist_write(struct buf *b, const char *name, const char *labels,
		   const struct metrics_hist *h)
{
	metrics_hist_write_in(b, name, labels, h, metrics_bucket_us, 1e6);
}

void
metrics_hist_write_in(struct buf *b, const char *name, const char *labels,
		      const struct metrics_hist *h, const uint64_t *bounds,
		      double unit)
{
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
	if (labels == NULL)
		labels = "";
	uint64_t cum = 0;
	for (unsigned i = 0; i < METRICS_BUCKETS; i++) {
		cum += h->bucket[i];
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
			   sep, (double)bounds[i] / unit,
			   (unsigned long long)cum);
	}
	cum += h->bucket[METRICS_BUCKETS];
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		   (unsigned long long)cum);
	if (labels[0] != '\0') {
		buf_printf(b, "%s_sum{%s} %.6f\n", name, labels,
			   (double)h->sum_us / unit);
		buf_printf(b, "%s_count{%s} %llu\n", name, labels,
			   (unsigned long long)h->count);
	} else {
		buf_printf(b, "%s_sum %.6f\n", name, (double)h->sum_us / unit);
		buf_printf(b, "%s_count %llu\n", name,
			   (unsigned long long)h->count);
	}
}
