/* metrics.h - counters and histograms for Prometheus' text format.
 *
 * Each event loop (thread) owns its counters and is their only writer:
 * an update is a relaxed load and store, no lock and no locked
 * instruction.  A scrape, from any thread, reads every loop's counters
 * with relaxed loads and sums them; a sum may miss an event in flight,
 * never tear a value.  Gauges are counters that also go down (unsigned
 * arithmetic wraps back).
 */
#ifndef PORTICO_METRICS_H
#define PORTICO_METRICS_H

#include <stdint.h>

#include "common/buf.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf after),
 * and of the size buckets (1, 2, 4 ... 8192). */
#define METRICS_BUCKETS 14
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS];
extern const uint64_t metrics_bucket_size[METRICS_BUCKETS];

struct metrics_hist {
	uint64_t bucket[METRICS_BUCKETS + 1]; /* not cumulative; last +Inf */
	uint64_t count;
	uint64_t sum_us;
};

static inline void
metrics_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void
metrics_sub(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) - n,
			 __ATOMIC_RELAXED);
}

static inline uint64_t
metrics_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Records one observation of us microseconds (by the owner). */
void metrics_observe(struct metrics_hist *h, uint64_t us);
/* Records a value against other bounds (metrics_bucket_size). */
void metrics_observe_in(struct metrics_hist *h, const uint64_t *bounds,
			uint64_t value);
/* acc += h (read with relaxed loads; acc is the scraper's). */
void metrics_hist_sum(struct metrics_hist *acc, const struct metrics_hist *h);

/* "# HELP" and "# TYPE" lines. */
void metrics_family(struct buf *b, const char *name, const char *type,
		    const char *help);
/* One sample: name{labels} value (labels may be "" or NULL). */
void metrics_sample(struct buf *b, const char *name, const char *labels,
		    uint64_t value);
/* A histogram in seconds: _bucket{labels,le=...}, _sum, _count. */
void metrics_hist_write(struct buf *b, const char *name, const char *labels,
			const struct metrics_hist *h);
/* The same for values observed against bounds, divided by unit. */
void metrics_hist_write_in(struct buf *b, const char *name,
			   const char *labels, const struct metrics_hist *h,
			   const uint64_t *bounds, double unit);

#endif
