/* stats.c: what a worker records per answered request. The latency
 * histogram has fixed log buckets (16 per power of two, about 6% wide) in
 * the worker's own struct, so recording costs no allocation and no lock;
 * workers' histograms are merged once at the end. */
#include <string.h>

#include "loadgen.h"

static size_t bucket(uint64_t v)
{
    if (v < LG_HIST_SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v); /* >= 4 */
    uint64_t sub = (v >> (e - 4)) & (LG_HIST_SUB - 1);
    return (size_t)(e - 3) * LG_HIST_SUB + (size_t)sub;
}

/* The largest value that falls in bucket i. */
static uint64_t bucket_top(size_t i)
{
    if (i < LG_HIST_SUB)
        return i;
    int e = (int)(i / LG_HIST_SUB) + 3;
    uint64_t sub = i % LG_HIST_SUB;
    uint64_t lo = (1ULL << e) | (sub << (e - 4));
    return lo + (1ULL << (e - 4)) - 1;
}

void lg_hist_add(lg_hist *h, uint64_t v)
{
    h->b[bucket(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

void lg_hist_merge(lg_hist *into, const lg_hist *from)
{
    for (size_t i = 0; i < LG_HIST_N; i++)
        into->b[i] += from->b[i];
    into->n += from->n;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
    if (!h->n)
        return 0;
    if (q >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n)
        rank = h->n - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_N; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t t = bucket_top(i);
            return t < h->max ? t : h->max;
        }
    }
    return h->max;
}

void lg_stats_done(lg_stats *s, int code, bool ok, size_t items, int64_t latency_ns)
{
    if (code < 0 || code >= LG_NCODES)
        code = 0;
    if (ok) {
        s->req_ok++;
        s->items_ok += items;
    } else {
        s->req_failed++;
        s->items_failed += items;
    }
    s->items_by_code[code] += items;
    s->req_by_code[code]++;
    lg_hist_add(&s->lat, latency_ns > 0 ? (uint64_t)latency_ns : 0);
}
