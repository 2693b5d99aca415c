/* fuzz_lb_route.c: the loadbalancing exporter's split of a request by
 * routing key, on bytes the receiver's walker accepted (or not): it must
 * never read outside them, must take whatever the walker accepts, and must
 * neither lose nor invent an item: each part is walked again and the items
 * add up. The first byte picks the signal and key (and with its top bit,
 * that each share is written into an allocation of exactly its size), the
 * rest is the request. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../exporters/loadbalancing/lb.h"
#include "model/pbwalk.h"

typedef struct sum {
    uint8_t *share; /* exactly as long as route asked: ASan sees any overrun */
    ot_signal s;
    const uint8_t *whole;
    size_t len, items;
    int bad;
} sum;

static uint8_t *alloc(void *vctx, size_t len)
{
    sum *s = vctx;
    free(s->share);
    return s->share = malloc(len ? len : 1);
}

static int add(void *vctx, uint32_t b, const uint8_t *req, size_t len, size_t items)
{
    sum *s = vctx;
    size_t n = 0;
    ot_err err;
    (void)b;
    if (!req)
        req = s->whole, len = s->len;
    if (ot_pbwalk(s->s, req, len, &n, &err) < 0 || n != items)
        s->bad = 1;
    s->items += n;
    free(s->share);
    s->share = NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lb_ring *ring;
    if (!ring) {
        static const char *const names[] = {"a:1", "b:1", "c:1"};
        ring = lb_ring_new(names, 3);
    }
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    ot_signal s = (ot_signal)(sel % 3);
    lb_key key = (lb_key)((data[0] >> 2) % 5);
    if (!lb_key_valid(s, key))
        return 0;
    data++, size--;
    size_t items = 0;
    ot_err err;
    bool valid = ot_pbwalk(s, data, size, &items, &err) == 0;
    sum t = {.s = s, .whole = data, .len = size};
    int rc = lb_route(s, key, ring, data, size, (sel & 0x80) ? alloc : NULL, add, &t, &err);
    free(t.share);
    if (valid && (rc != 0 || t.bad || t.items != items))
        abort();
    return 0;
}
