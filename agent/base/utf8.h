/* utf8.h: the one UTF-8 sequence check the JSON readers share (OTLP/JSON
 * decoding refuses what it rejects, the log scanner replaces it with
 * U+FFFD). Inline: both call it per non-ASCII byte on their hot loops. */
#ifndef OT_UTF8_H
#define OT_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (p < e, *p >= 0x80), 0 if
 * invalid: no overlong forms, no surrogates, nothing above U+10FFFF. */
static inline size_t ot_utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

#endif
