/* buf.c: growable byte buffer (see buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ot_buf_reserve(ot_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->cap - b->len > extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int ot_buf_append(ot_buf *b, const void *p, size_t n)
{
    if (ot_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ot_buf_puts(ot_buf *b, const char *s)
{
    return ot_buf_append(b, s, strlen(s));
}

int ot_buf_putc(ot_buf *b, char c)
{
    return ot_buf_append(b, &c, 1);
}

int ot_buf_printf(ot_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof tmp)
        return ot_buf_append(b, tmp, (size_t)n);
    if (ot_buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        len = 2, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        len = 3, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        len = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

int ot_buf_json_str(ot_buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (ot_buf_reserve(b, n + 2) < 0)
        return -1;
    ot_buf_putc(b, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        size_t ul = c >= 0x80 ? utf8_len(s + i, n - i) : 0;
        if (ul) {
            run += ul;
            i += ul;
            continue;
        }
        ot_buf_append(b, s + i - run, run);
        run = 0;
        switch (c) {
        case '"': ot_buf_append(b, "\\\"", 2); break;
        case '\\': ot_buf_append(b, "\\\\", 2); break;
        case '\n': ot_buf_append(b, "\\n", 2); break;
        case '\r': ot_buf_append(b, "\\r", 2); break;
        case '\t': ot_buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20)
                ot_buf_printf(b, "\\u%04x", c);
            else
                ot_buf_append(b, "\xEF\xBF\xBD", 3);
        }
        i++;
    }
    ot_buf_append(b, s + n - run, run);
    return ot_buf_putc(b, '"');
}

void ot_buf_reset(ot_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ot_buf_free(ot_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
