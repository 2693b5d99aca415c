/* jscan.c: a hand-written JSON scanner that writes OTLP AnyValue wire bytes
 * as it goes. A DOM (jansson) would allocate a node per value and then be
 * walked again; on the tailer's hot path each byte of a line is looked at
 * once here. Strings without escapes and with valid UTF-8 are passed on as
 * slices of the line; everything else is unescaped with invalid sequences
 * replaced by U+FFFD, so a bad byte never costs the line. */
#include "base/utf8.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "jl.h"
#include "pbw.h"

static const char REPL[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

const char *jl_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

size_t jl_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = ot_utf8_seq(p, e);
        if (!k)
            break;
        p += k;
    }
    return (size_t)(p - (const unsigned char *)s);
}

int jl_utf8_fix(ot_buf *out, const char *s, size_t n)
{
    if (ot_buf_reserve(out, n) < 0)
        return -1;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        size_t ok = jl_utf8_valid((const char *)p, (size_t)(e - p));
        if (ot_buf_append(out, p, ok) < 0)
            return -1;
        p += ok;
        if (p < e) {
            if (ot_buf_append(out, REPL, 3) < 0)
                return -1;
            p++;
        }
    }
    return 0;
}

static int hex4(const char *p, const char *e, unsigned *v)
{
    if (e - p < 4)
        return -1;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        int d = ot_hex_digit((unsigned char)p[i]);
        if (d < 0)
            return -1;
        x = x << 4 | (unsigned)d;
    }
    *v = x;
    return 0;
}

static int put_cp(ot_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return ot_buf_append(b, u, n);
}

/* The slow path from p (inside the string, after what was plain). */
static int str_slow(const char *start, const char *p, const char *e, ot_buf *tmp,
                    const char **after)
{
    tmp->len = 0;
    if (ot_buf_append(tmp, start, (size_t)(p - start)) < 0)
        return -1;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *after = p + 1;
            return 0;
        }
        if (c == '\\') {
            if (e - p < 2)
                return -1;
            char x = p[1];
            char o;
            p += 2;
            switch (x) {
            case '"': o = '"'; break;
            case '\\': o = '\\'; break;
            case '/': o = '/'; break;
            case 'b': o = '\b'; break;
            case 'f': o = '\f'; break;
            case 'n': o = '\n'; break;
            case 'r': o = '\r'; break;
            case 't': o = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (hex4(p, e, &cp) < 0)
                    return -1;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, e, &lo) == 0 &&
                        lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    } else
                        cp = 0xFFFD;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                if (put_cp(tmp, cp) < 0)
                    return -1;
                continue;
            }
            default:
                return -1;
            }
            if (ot_buf_putc(tmp, o) < 0)
                return -1;
            continue;
        }
        if (c < 0x80) {
            const char *q = p;
            while (q < e && (unsigned char)*q < 0x80 && *q != '"' && *q != '\\')
                q++;
            if (ot_buf_append(tmp, p, (size_t)(q - p)) < 0)
                return -1;
            p = q;
            continue;
        }
        size_t k = ot_utf8_seq((const unsigned char *)p, (const unsigned char *)e);
        if (k) {
            if (ot_buf_append(tmp, p, k) < 0)
                return -1;
            p += k;
        } else {
            if (ot_buf_append(tmp, REPL, 3) < 0)
                return -1;
            p++;
        }
    }
    return -1;
}

int jl_str(const char **pp, const char *e, ot_buf *tmp, const char **s, size_t *n)
{
    const char *p = *pp;
    if (p >= e || *p != '"')
        return -1;
    const char *start = ++p;
    for (;;) {
        /* eight bytes at a time until a quote, a backslash or a non-ASCII
         * byte: q and b have a zero byte where one matches, which the
         * has-zero-byte test finds; its lowest hit is exact, and on a
         * little-endian machine the lowest bit is the first byte */
        while (e - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
            uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | v;
            hit &= high;
            if (hit) {
                p += __builtin_ctzll(hit) >> 3;
                break;
            }
            p += 8;
        }
        if (p >= e)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = start;
            *n = (size_t)(p - start);
            *pp = p + 1;
            return 0;
        }
        if (c == '\\')
            break;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k = ot_utf8_seq((const unsigned char *)p, (const unsigned char *)e);
        if (!k)
            break;
        p += k;
    }
    if (p >= e)
        return -1;
    const char *after;
    if (str_slow(start, p, e, tmp, &after) < 0)
        return -1;
    *s = tmp->data;
    *n = tmp->len;
    *pp = after;
    return 0;
}

int jl_num_span(const char **pp, const char *e, const char **s, size_t *n)
{
    const char *p = *pp, *b = p;
    if (p < e && *p == '-')
        p++;
    if (p >= e || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    *s = b;
    *n = (size_t)(p - b);
    *pp = p;
    return 0;
}

int jl_num_value(const char *s, size_t n, int64_t *i, double *d)
{
    if (!n)
        return -1;
    size_t k = 0;
    bool neg = s[0] == '-';
    if (neg)
        k++;
    uint64_t v = 0;
    bool integer = k < n, over = false;
    for (size_t j = k; j < n; j++) {
        char c = s[j];
        if (c < '0' || c > '9') {
            integer = false;
            break;
        }
        if (v > (UINT64_MAX - 9) / 10)
            over = true;
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (integer && !over && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
        *i = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 1;
    }
    /* [-]digits.digits with at most 15 digits: both parts are exact
     * doubles and one division rounds correctly, as strtod would */
    {
        static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                     1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        uint64_t m = 0;
        size_t nd = 0, fd = 0;
        bool dot = false, ok = true;
        for (size_t j = k; j < n && ok; j++) {
            char c = s[j];
            if (c >= '0' && c <= '9') {
                m = m * 10 + (uint64_t)(c - '0');
                nd++;
                fd += dot;
            } else if (c == '.' && !dot)
                dot = true;
            else
                ok = false;
        }
        if (ok && dot && fd && nd <= 15) {
            double x = (double)m / p10[fd];
            *d = neg ? -x : x;
            return 2;
        }
    }
    char buf[512];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    *d = strtod(buf, &end);
    return end == buf + n ? 2 : -1;
}

static int lit(const char **pp, const char *e, const char *w, size_t n)
{
    if ((size_t)(e - *pp) < n || memcmp(*pp, w, n) != 0)
        return -1;
    *pp += n;
    return 0;
}

int jl_value(const char **pp, const char *e, ot_buf *out, ot_buf *tmp, int depth)
{
    const char *p = jl_ws(*pp, e);
    if (p >= e || depth > JL_MAX_DEPTH)
        return -1;
    const char *s;
    size_t n;
    switch (*p) {
    case '"':
        if (jl_str(&p, e, tmp, &s, &n) < 0 || pbw_bytes(out, 1, s, n) < 0)
            return -1;
        break;
    case '{': {
        size_t m = pbw_open(out, 6);
        if (m == (size_t)-1)
            return -1;
        p = jl_ws(p + 1, e);
        if (p < e && *p == '}') {
            p++;
        } else {
            for (;;) {
                p = jl_ws(p, e);
                if (jl_str(&p, e, tmp, &s, &n) < 0)
                    return -1;
                size_t kv = pbw_open(out, 1);
                if (kv == (size_t)-1 || pbw_bytes(out, 1, s, n) < 0)
                    return -1;
                p = jl_ws(p, e);
                if (p >= e || *p != ':')
                    return -1;
                p++;
                size_t vm = pbw_open(out, 2);
                if (vm == (size_t)-1 || jl_value(&p, e, out, tmp, depth + 1) < 0 ||
                    pbw_close(out, vm) < 0 || pbw_close(out, kv) < 0)
                    return -1;
                p = jl_ws(p, e);
                if (p < e && *p == ',') {
                    p++;
                    continue;
                }
                if (p < e && *p == '}') {
                    p++;
                    break;
                }
                return -1;
            }
        }
        if (pbw_close(out, m) < 0)
            return -1;
        break;
    }
    case '[': {
        size_t m = pbw_open(out, 5);
        if (m == (size_t)-1)
            return -1;
        p = jl_ws(p + 1, e);
        if (p < e && *p == ']') {
            p++;
        } else {
            for (;;) {
                size_t vm = pbw_open(out, 1);
                if (vm == (size_t)-1 || jl_value(&p, e, out, tmp, depth + 1) < 0 ||
                    pbw_close(out, vm) < 0)
                    return -1;
                p = jl_ws(p, e);
                if (p < e && *p == ',') {
                    p++;
                    continue;
                }
                if (p < e && *p == ']') {
                    p++;
                    break;
                }
                return -1;
            }
        }
        if (pbw_close(out, m) < 0)
            return -1;
        break;
    }
    case 't':
        if (lit(&p, e, "true", 4) < 0 || pbw_varint(out, 2, 1) < 0)
            return -1;
        break;
    case 'f':
        if (lit(&p, e, "false", 5) < 0 || pbw_varint(out, 2, 0) < 0)
            return -1;
        break;
    case 'n':
        if (lit(&p, e, "null", 4) < 0)
            return -1;
        break;
    default: {
        int64_t iv;
        double dv;
        if (jl_num_span(&p, e, &s, &n) < 0)
            return -1;
        int k = jl_num_value(s, n, &iv, &dv);
        if (k == 1) {
            if (pbw_varint(out, 3, (uint64_t)iv) < 0)
                return -1;
        } else if (k == 2) {
            uint64_t bits;
            memcpy(&bits, &dv, sizeof bits);
            if (pbw_fixed64(out, 4, bits) < 0)
                return -1;
        } else
            return -1;
    }
    }
    *pp = p;
    return 0;
}
