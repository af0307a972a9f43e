/* A latency histogram for asock-load: log-linear buckets (64 per power of two, so a percentile is
 * within about 1.6% of the true value), counted with relaxed atomics from any thread. */
#ifndef LATENCY_HISTOGRAM_H
#define LATENCY_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define LATENCY_HISTOGRAM_BUCKETS 2432

typedef struct LATENCY_HISTOGRAM_TAG
{
    atomic_uint_fast64_t counts[LATENCY_HISTOGRAM_BUCKETS];
} LATENCY_HISTOGRAM;

/* Counts one sample of ns nanoseconds (thread-safe). */
void latency_histogram_add(LATENCY_HISTOGRAM* histogram, uint64_t ns);

/* The sample count. */
uint64_t latency_histogram_count(const LATENCY_HISTOGRAM* histogram);

/* The value, in nanoseconds, below which the fraction `quantile` (0..1) of the samples lies; 0
 * when there are none. */
uint64_t latency_histogram_quantile(const LATENCY_HISTOGRAM* histogram, double quantile);

#endif /* LATENCY_HISTOGRAM_H */
