/* msgpack.c: the MessagePack writer (msgpack.h). */
#include "base/msgpack.h"

#include <string.h>

static void put_be(ot_buf *b, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t t[9];
    t[0] = tag;
    for (int i = 0; i < bytes; i++)
        t[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    ot_buf_append(b, t, (size_t)bytes + 1);
}

void ot_mp_nil(ot_buf *b)
{
    ot_buf_putc(b, (char)0xc0);
}

void ot_mp_bool(ot_buf *b, bool v)
{
    ot_buf_putc(b, (char)(v ? 0xc3 : 0xc2));
}

void ot_mp_uint(ot_buf *b, uint64_t v)
{
    if (v < 0x80)
        ot_buf_putc(b, (char)v);
    else if (v <= 0xff)
        put_be(b, 0xcc, v, 1);
    else if (v <= 0xffff)
        put_be(b, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        put_be(b, 0xce, v, 4);
    else
        put_be(b, 0xcf, v, 8);
}

void ot_mp_int(ot_buf *b, int64_t v)
{
    if (v >= 0) {
        ot_mp_uint(b, (uint64_t)v);
        return;
    }
    if (v >= -32)
        ot_buf_putc(b, (char)(uint8_t)(int8_t)v);
    else if (v >= INT8_MIN)
        put_be(b, 0xd0, (uint64_t)v & 0xff, 1);
    else if (v >= INT16_MIN)
        put_be(b, 0xd1, (uint64_t)v & 0xffff, 2);
    else if (v >= INT32_MIN)
        put_be(b, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    else
        put_be(b, 0xd3, (uint64_t)v, 8);
}

void ot_mp_double(ot_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_be(b, 0xcb, u, 8);
}

static void len_header(ot_buf *b, uint32_t n, uint8_t fix, uint8_t fix_max, uint8_t t8,
                       uint8_t t16, uint8_t t32)
{
    if (n <= fix_max && fix)
        ot_buf_putc(b, (char)(fix | n));
    else if (n <= 0xff && t8)
        put_be(b, t8, n, 1);
    else if (n <= 0xffff)
        put_be(b, t16, n, 2);
    else
        put_be(b, t32, n, 4);
}

void ot_mp_str(ot_buf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    len_header(b, (uint32_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    ot_buf_append(b, s, n);
}

void ot_mp_cstr(ot_buf *b, const char *s)
{
    ot_mp_str(b, s ? s : "", s ? strlen(s) : 0);
}

void ot_mp_bin(ot_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    len_header(b, (uint32_t)n, 0, 0, 0xc4, 0xc5, 0xc6);
    ot_buf_append(b, p, n);
}

void ot_mp_array(ot_buf *b, uint32_t n)
{
    len_header(b, n, 0x90, 15, 0, 0xdc, 0xdd);
}

void ot_mp_map(ot_buf *b, uint32_t n)
{
    len_header(b, n, 0x80, 15, 0, 0xde, 0xdf);
}

size_t ot_mp_map32(ot_buf *b)
{
    size_t at = b->len;
    put_be(b, 0xdf, 0, 4);
    return at;
}

size_t ot_mp_array32(ot_buf *b)
{
    size_t at = b->len;
    put_be(b, 0xdd, 0, 4);
    return at;
}

void ot_mp_patch32(ot_buf *b, size_t at, uint32_t n)
{
    if (b->oom || at + 5 > b->len)
        return;
    uint8_t *p = (uint8_t *)b->data + at + 1;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}
