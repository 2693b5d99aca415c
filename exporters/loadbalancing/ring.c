/* ring.c: the consistent-hash ring of the loadbalancing exporter. Each
 * backend owns LB_RING_POINTS points placed by hashing its name; a key
 * belongs to the first point at or after its hash. Adding or removing one
 * backend of N moves only the keys of that backend's arcs, about 1/N, and
 * every agent with the same backends computes the same ring. */
#include "lb.h"

#include <stdlib.h>
#include <string.h>

/* A finaliser that spreads FNV's clustered low bits over all 64. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t lb_hash(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return mix(h);
}

typedef struct point {
    uint64_t pos;
    uint32_t owner;
    uint32_t tie; /* the backend's name hash: equal positions sort the same everywhere */
} point;

static int cmp_point(const void *a, const void *b)
{
    const point *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie;
}

lb_ring *lb_ring_new(const char *const *endpoints, size_t n)
{
    lb_ring *r = calloc(1, sizeof *r);
    point *pts = n ? malloc(n * LB_RING_POINTS * sizeof *pts) : NULL;
    if (!r || (n && !pts))
        goto oom;
    r->n_backends = n;
    r->n_points = n * LB_RING_POINTS;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = lb_hash(endpoints[i], strlen(endpoints[i]), 0);
        for (uint32_t k = 0; k < LB_RING_POINTS; k++)
            pts[i * LB_RING_POINTS + k] =
                (point){mix(h + 0x9e3779b97f4a7c15ull * (k + 1)), (uint32_t)i, (uint32_t)h};
    }
    if (n)
        qsort(pts, r->n_points, sizeof *pts, cmp_point);
    r->pos = n ? malloc(r->n_points * sizeof *r->pos) : NULL;
    r->owner = n ? malloc(r->n_points * sizeof *r->owner) : NULL;
    if (n && (!r->pos || !r->owner))
        goto oom;
    for (size_t i = 0; i < r->n_points; i++) {
        r->pos[i] = pts[i].pos;
        r->owner[i] = pts[i].owner;
    }
    free(pts);
    pts = NULL;
    /* bucket[k]: the first point in the k-th 1/LB_RING_BUCKETS of the
     * hash space, so a lookup searches a point or two, not the ring. */
    r->bucket = malloc((LB_RING_BUCKETS + 1) * sizeof *r->bucket);
    if (!r->bucket)
        goto oom;
    size_t at = 0;
    for (size_t k = 0; k <= LB_RING_BUCKETS; k++) {
        uint64_t start = k == LB_RING_BUCKETS ? UINT64_MAX : (uint64_t)k << (64 - LB_RING_BITS);
        while (at < r->n_points && r->pos[at] < start)
            at++;
        r->bucket[k] = (uint32_t)at;
    }
    if (n)
        r->bucket[LB_RING_BUCKETS] = (uint32_t)r->n_points;
    return r;
oom:
    free(pts);
    lb_ring_free(r);
    return NULL;
}

void lb_ring_free(lb_ring *r)
{
    if (!r)
        return;
    free(r->pos);
    free(r->owner);
    free(r->bucket);
    free(r);
}

uint32_t lb_ring_get(const lb_ring *r, uint64_t h)
{
    size_t k = (size_t)(h >> (64 - LB_RING_BITS));
    size_t lo = r->bucket[k], hi = r->bucket[k + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->pos[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->owner[lo == r->n_points ? 0 : lo];
}
