/* scan.h: the byte scans under the DogStatsD parser (parse.c), apart
 * because they are the word-at-a-time part: finding a delimiter, a line's
 * end together with the check that its bytes are plain ASCII, and the
 * tags field together with its tag count. SSE2 (the x86-64 baseline) takes
 * sixteen bytes a step, SWAR eight elsewhere and at the tails, then single
 * bytes; no load reaches past the end given. For parse.c only. */
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

/* Bits set in a 16-bit mask (no popcnt instruction in the baseline). */
static inline uint32_t dsd_bits16(unsigned m)
{
    m = m - ((m >> 1) & 0x5555);
    m = (m & 0x3333) + ((m >> 2) & 0x3333);
    m = (m + (m >> 4)) & 0x0f0f;
    return (m + (m >> 8)) & 0x1f;
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
/* The bytes of x equal to c, as their high bits: exact (no borrow from
 * one byte into the next), so a mask can be counted, not only searched. */
static inline uint64_t dsd_eq(uint64_t x, char c)
{
    uint64_t y = x ^ (DSD_LO * (uint8_t)c);
    uint64_t t = (y & ~DSD_HI) + ~DSD_HI;
    return ~(t | y) & DSD_HI;
}

/* The first byte of x equal to c is the lowest flag (higher ones may be
 * false: a borrow from a true match): cheaper than dsd_eq, for searches. */
static inline uint64_t dsd_has(uint64_t x, char c)
{
    uint64_t y = x ^ (DSD_LO * (uint8_t)c);
    return (y - DSD_LO) & ~y & DSD_HI;
}

/* How many bytes of m (high bits only) are flagged. */
static inline uint32_t dsd_count(uint64_t m)
{
    return (uint32_t)(((m >> 7) * DSD_LO) >> 56);
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

/* The tags field from s (past its '#') to the next '|' or end, in one
 * pass that also counts the tags the iterator will yield (non-empty
 * entries between commas). Returns the field's end. */
static const char *dsd_scan_tags(const char *p, const char *end, uint32_t *count)
{
    uint32_t c = 0;
    bool prev_sep = true; /* the byte before p is a separator (the '#') */
#ifdef DSD_SSE2
    while (end - p >= 16) {
        __m128i x = dsd_load16(p);
        unsigned bar = dsd_eq16(x, '|');
        unsigned sep = dsd_eq16(x, ',') | bar;
        unsigned starts = ~sep & ((sep << 1) | (unsigned)prev_sep) & 0xffff;
        if (bar) {
            unsigned at = (unsigned)__builtin_ctz(bar);
            *count = c + dsd_bits16(starts & ((1u << at) - 1));
            return p + at;
        }
        c += dsd_bits16(starts);
        prev_sep = (sep >> 15) & 1;
        p += 16;
    }
#endif
#ifdef DSD_SWAR
    uint64_t carry = prev_sep ? 0x80 : 0;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t bar = dsd_has(x, '|');
        /* commas exact, since they are counted; bars past the first are
         * not looked at, so a false flag among them is harmless */
        uint64_t sep = dsd_eq(x, ',') | bar;
        /* an entry starts at a byte that is not a separator after one that is */
        uint64_t starts = ~sep & DSD_HI & ((sep << 8) | carry);
        if (bar) {
            unsigned at = (unsigned)__builtin_ctzll(bar) >> 3;
            *count = c + dsd_count(starts & dsd_below(at));
            return p + at;
        }
        c += dsd_count(starts);
        carry = (sep >> 56) & 0x80;
        p += 8;
    }
    prev_sep = carry != 0;
#endif
    for (; p < end && *p != '|'; p++) {
        bool sp = *p == ',';
        if (!sp && prev_sep)
            c++;
        prev_sep = sp;
    }
    *count = c;
    return p;
}

#endif
