/* scan.h: the byte scans under the DogStatsD parser (parse.c), apart
 * because they are the word-at-a-time part: finding a delimiter, a line's
 * end together with the check that its bytes are plain ASCII. SSE2 (the
 * x86-64 baseline) takes sixteen bytes a step, SWAR eight elsewhere and at
 * the tails, then single bytes; no load reaches past the end given. For
 * parse.c only. */
#ifndef OT_DSD_SCAN_H
#define OT_DSD_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
/* x86-64 has SSE2 always: sixteen bytes a step where a scan is long
 * enough, eight (SWAR) or one at its tail. Loads stay inside the line. */
#define DSD_SSE2 1
static inline __m128i dsd_load16(const char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

static inline unsigned dsd_eq16(__m128i x, char c)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c)));
}

#endif

#define DSD_HI 0x8080808080808080ull
#define DSD_LO 0x0101010101010101ull

/* memchr for the short spans of a line (a line, a field, a tag): inline,
 * because a libc call per delimiter cost more than the scan itself. Eight
 * bytes a step: the lowest flagged byte of the zero-byte test is always a
 * true match (false flags only sit above one), and on a little-endian
 * machine the lowest byte is the first in memory. */
static inline const char *dsd_find(const char *p, const char *end, char c)
{
#ifdef DSD_SSE2
    while (end - p >= 16) {
        unsigned m = dsd_eq16(dsd_load16(p), c);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t pat = DSD_LO * (uint8_t)c;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        x ^= pat;
        uint64_t z = (x - DSD_LO) & ~x & DSD_HI;
        if (z)
            return p + (__builtin_ctzll(z) >> 3);
        p += 8;
    }
#endif
    for (; p < end; p++)
        if (*p == c)
            return p;
    return NULL;
}

#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DSD_SWAR 1
/* The first byte of x equal to c is the lowest flag (higher ones may be
 * false: a borrow from a true match). */
static inline uint64_t dsd_has(uint64_t x, char c)
{
    uint64_t y = x ^ (DSD_LO * (uint8_t)c);
    return (y - DSD_LO) & ~y & DSD_HI;
}

/* The bytes below byte `at` of a word. */
static inline uint64_t dsd_below(unsigned at)
{
    return at ? ~0ull >> (64 - 8 * at) : 0;
}
#endif

/* A line's end ('\n' or the datagram's end) found in the same pass that
 * checks its bytes are plain: ASCII and no NUL, which nearly every line
 * is. *plain false means "not known": the parser then checks the line
 * byte by byte for UTF-8 as before. */
static inline const char *dsd_line_end(const char *p, const char *end, bool *plain)
{
    *plain = true;
#ifdef DSD_SSE2
    while (end - p >= 16) {
        __m128i x = dsd_load16(p);
        unsigned nl = dsd_eq16(x, '\n');
        unsigned bad = (unsigned)_mm_movemask_epi8(x) | dsd_eq16(x, '\0');
        if (nl) {
            if (bad & ((1u << __builtin_ctz(nl)) - 1))
                *plain = false;
            return p + __builtin_ctz(nl);
        }
        if (bad) {
            *plain = false;
            const char *nlp = dsd_find(p, end, '\n');
            return nlp ? nlp : end;
        }
        p += 16;
    }
#endif
#ifdef DSD_SWAR
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t nl = dsd_has(x, '\n');
        /* a false zero flag sits above a true zero: still a bad byte */
        uint64_t bad = (x & DSD_HI) | ((x - DSD_LO) & ~x & DSD_HI);
        if (nl) {
            if (bad & dsd_below((unsigned)__builtin_ctzll(nl) >> 3))
                *plain = false;
            return p + (__builtin_ctzll(nl) >> 3);
        }
        if (bad) {
            *plain = false;
            const char *nlp = dsd_find(p, end, '\n');
            return nlp ? nlp : end;
        }
        p += 8;
    }
#endif
    for (; p < end && *p != '\n'; p++)
        if ((uint8_t)*p >= 0x80 || *p == 0)
            *plain = false;
    return p;
}

#endif
