/* shortcopy.h: a copy of a few bytes without a call to memcpy. The store's
 * lookups split every point part into keys and values, and a scrape
 * writes every label name and value: copies mostly under 16 bytes, where
 * the call and its size dispatch cost more than the copy. Two loads that
 * may overlap, never a byte read or written outside [p, p + n). */
#ifndef OT_SHORTCOPY_H
#define OT_SHORTCOPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies n bytes of p to o; returns o + n. */
static inline void *ot_copy_short(void *o, const void *p, size_t n)
{
    unsigned char *d = o;
    const unsigned char *s = p;
    if (n > 16) {
        memcpy(d, s, n);
        return d + n;
    }
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
    return d + n;
}

#endif
