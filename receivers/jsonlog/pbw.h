/* pbw.h: writing protobuf wire form straight into a byte buffer. The
 * receiver builds each log record as OTLP bytes (no protobuf-c structs, no
 * second encode) so a batch can pass to an OTLP exporter as it is. Nested
 * messages whose size is not known up front are opened with a one-byte
 * length slot and closed by fixing it; the content moves right only when it
 * turns out to be 128 bytes or more. */
#ifndef JL_PBW_H
#define JL_PBW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"

enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_I32 = 5 };

/* ot_buf_reserve with the common case (room already there) inline. */
static inline int pbw_room(ot_buf *b, size_t extra)
{
    if (b->cap - b->len > extra && !b->oom)
        return 0;
    return ot_buf_reserve(b, extra);
}

static inline char *pbw_putv(char *p, uint64_t v)
{
    return p + ot_varint_put((uint8_t *)p, v);
}

static inline char pbw_tag(unsigned field, unsigned wt)
{
    return (char)((field << 3) | wt);
}

/* Tag and length of a LEN field whose content the caller writes next. */
static inline int pbw_len_hdr(ot_buf *b, unsigned field, size_t n)
{
    if (pbw_room(b, 11 + n) < 0)
        return -1;
    char *p = b->data + b->len;
    *p++ = pbw_tag(field, PBW_LEN);
    p = pbw_putv(p, n);
    b->len = (size_t)(p - b->data);
    return 0;
}

static inline int pbw_bytes(ot_buf *b, unsigned field, const void *s, size_t n)
{
    if (pbw_len_hdr(b, field, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int pbw_fixed64(ot_buf *b, unsigned field, uint64_t v)
{
    if (pbw_room(b, 9) < 0)
        return -1;
    char *p = b->data + b->len;
    *p++ = pbw_tag(field, PBW_I64);
    for (int i = 0; i < 8; i++)
        *p++ = (char)(v >> (8 * i));
    b->len += 9;
    return 0;
}

static inline int pbw_varint(ot_buf *b, unsigned field, uint64_t v)
{
    if (pbw_room(b, 11) < 0)
        return -1;
    char *p = b->data + b->len;
    *p++ = pbw_tag(field, PBW_VARINT);
    p = pbw_putv(p, v);
    b->len = (size_t)(p - b->data);
    return 0;
}

/* Opens a nested LEN field; returns the mark for pbw_close, or
 * (size_t)-1 on out-of-memory. */
static inline size_t pbw_open(ot_buf *b, unsigned field)
{
    if (pbw_room(b, 2) < 0)
        return (size_t)-1;
    b->data[b->len++] = pbw_tag(field, PBW_LEN);
    b->data[b->len++] = 0;
    return b->len - 1;
}

static inline int pbw_close(ot_buf *b, size_t mark)
{
    size_t n = b->len - mark - 1;
    if (n < 0x80) {
        b->data[mark] = (char)n;
        return 0;
    }
    size_t extra = ot_varint_size(n) - 1;
    if (pbw_room(b, extra) < 0)
        return -1;
    memmove(b->data + mark + 1 + extra, b->data + mark + 1, n);
    pbw_putv(b->data + mark, n);
    b->len += extra;
    return 0;
}

#endif
