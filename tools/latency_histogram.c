/* Log-linear latency buckets: values below 128 ns each have their own bucket; above, each power of
 * two is split into 64 equal buckets. */
#include "latency_histogram.h"

#include <math.h>

#define SUB_BUCKETS 64u
#define LINEAR_LIMIT 128u

static unsigned bucket_of(uint64_t ns)
{
    if (ns < LINEAR_LIMIT)
    {
        return (unsigned)ns;
    }
    unsigned top_bit = 63u - (unsigned)__builtin_clzll(ns); /* 7 or more */
    unsigned shift = top_bit - 6u;                          /* ns >> shift is in 64..127 */
    unsigned index = LINEAR_LIMIT + (shift - 1u) * SUB_BUCKETS + (unsigned)((ns >> shift) - SUB_BUCKETS);
    return index < LATENCY_HISTOGRAM_BUCKETS ? index : LATENCY_HISTOGRAM_BUCKETS - 1u;
}

/* The middle of a bucket's range of values. */
static uint64_t value_of(unsigned index)
{
    if (index < LINEAR_LIMIT)
    {
        return index;
    }
    unsigned shift = (index - LINEAR_LIMIT) / SUB_BUCKETS + 1u;
    uint64_t low = (uint64_t)((index - LINEAR_LIMIT) % SUB_BUCKETS + SUB_BUCKETS) << shift;
    return low + ((1ull << shift) >> 1);
}

void latency_histogram_add(LATENCY_HISTOGRAM* histogram, uint64_t ns)
{
    (void)atomic_fetch_add_explicit(&histogram->counts[bucket_of(ns)], 1, memory_order_relaxed);
}

uint64_t latency_histogram_count(const LATENCY_HISTOGRAM* histogram)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < LATENCY_HISTOGRAM_BUCKETS; i++)
    {
        total += atomic_load_explicit(&histogram->counts[i], memory_order_relaxed);
    }
    return total;
}

uint64_t latency_histogram_quantile(const LATENCY_HISTOGRAM* histogram, double quantile)
{
    uint64_t total = latency_histogram_count(histogram);
    if (total == 0)
    {
        return 0;
    }
    /* The rank of the sample sought, 1-based: p50 of 10 samples is the 5th. */
    uint64_t rank = (uint64_t)ceil(quantile * (double)total);
    rank = rank == 0 ? 1 : rank;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LATENCY_HISTOGRAM_BUCKETS; i++)
    {
        seen += atomic_load_explicit(&histogram->counts[i], memory_order_relaxed);
        if (seen >= rank)
        {
            return value_of(i);
        }
    }
    return value_of(LATENCY_HISTOGRAM_BUCKETS - 1u);
}
