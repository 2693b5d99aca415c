/* enc_int.h: the byte writers both Jaeger encodings need, shared by the
 * struct encoders (thrift.c, apiv2.c) and the direct ones (direct_out.c),
 * so the two paths write each primitive the same way. Static inline: a
 * span is about a hundred of these small writes, and a call per write was
 * a measurable part of the encoders' cost. Internal to the jaeger exporter.
 *
 * Thrift binary protocol: a struct is a run of fields, each a type byte, a
 * big-endian 16-bit id and the value, then a stop byte; integers are
 * big-endian, strings and binaries a 32-bit length and the bytes, lists an
 * element type byte and a 32-bit count.
 * Protobuf: varints in their shortest form (as protobuf-c writes them);
 * every api_v2 field number is below 16, so a tag is one byte. */
#ifndef OT_JAEGER_ENC_INT_H
#define OT_JAEGER_ENC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"

enum {
    JT_STOP = 0,
    JT_BOOL = 2,
    JT_DOUBLE = 4,
    JT_I32 = 8,
    JT_I64 = 10,
    JT_STRING = 11,
    JT_STRUCT = 12,
    JT_LIST = 15,
};

/* jaeger.thrift's TagType, whose numbers differ from api_v2's ValueType. */
enum { JTAG_STRING = 0, JTAG_DOUBLE = 1, JTAG_BOOL = 2, JTAG_LONG = 3, JTAG_BINARY = 4 };

/* Room for n more bytes, or NULL once the buffer is out of memory (the
 * buffer remembers, and the caller checks once at the end). */
static inline unsigned char *jt_room(ot_buf *b, size_t n)
{
    if (b->oom || (b->cap - b->len < n && ot_buf_reserve(b, n) < 0))
        return NULL;
    unsigned char *p = (unsigned char *)b->data + b->len;
    b->len += n;
    return p;
}

static inline void jt_put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void jt_put32(unsigned char *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

static inline void jt_put64(unsigned char *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* Field headers and whole fields written at p (room already taken);
 * each returns the byte after what it wrote. */
static inline unsigned char *jt_head(unsigned char *p, int type, int id)
{
    p[0] = (unsigned char)type;
    jt_put16(p + 1, (unsigned)id);
    return p + 3;
}

static inline unsigned char *jt_i64_at(unsigned char *p, int id, int64_t v)
{
    p = jt_head(p, JT_I64, id);
    jt_put64(p, (uint64_t)v);
    return p + 8;
}

static inline unsigned char *jt_i32_at(unsigned char *p, int id, int32_t v)
{
    p = jt_head(p, JT_I32, id);
    jt_put32(p, (uint32_t)v);
    return p + 4;
}

/* memcpy of a few bytes without a call: keys and values are mostly
 * shorter than 16. */
static inline void jt_copy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (n >= 8 && n <= 16) {
        memcpy(dp, sp, 8);
        memcpy(dp + n - 8, sp + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dp, sp, 4);
        memcpy(dp + n - 4, sp + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dp[i] = sp[i];
    } else
        memcpy(dp, sp, n);
}

static inline unsigned char *jt_bytes_at(unsigned char *p, int id, const void *s, size_t n)
{
    p = jt_head(p, JT_STRING, id);
    jt_put32(p, (uint32_t)n);
    jt_copy(p + 4, s, n);
    return p + 4 + n;
}

static inline unsigned char *jt_list_at(unsigned char *p, int id, int elem, size_t n)
{
    p = jt_head(p, JT_LIST, id);
    p[0] = (unsigned char)elem;
    jt_put32(p + 1, (uint32_t)n);
    return p + 5;
}

/* Bytes a Thrift tag (jaeger.Tag) takes: key field, type field, the value
 * field of vbytes value bytes, stop. */
static inline size_t jt_tag_size(size_t klen, size_t vbytes) { return 7 + klen + 7 + 3 + vbytes + 1; }

/* ---- protobuf ------------------------------------------------------------ */

static inline size_t jp_vlen(uint64_t v) { return ot_varint_size(v); }

/* A length-delimited field of n bytes, its one-byte tag included. */
static inline size_t jp_len_field(size_t n) { return 1 + jp_vlen(n) + n; }

/* proto3 writes an int64 as the varint of its two's complement; zero is
 * left out. */
static inline size_t jp_i64_field(int64_t v) { return v ? 1 + jp_vlen((uint64_t)v) : 0; }

/* Timestamp and Duration have the same two fields. */
static inline size_t jp_time_size(int64_t seconds, int32_t nanos)
{
    return jp_i64_field(seconds) + jp_i64_field(nanos);
}

enum { JP_VARINT = 0, JP_I64 = 1, JP_LEN = 2 };

static inline uint8_t *jp_varint(uint8_t *p, uint64_t v) { return p + ot_varint_put(p, v); }

static inline uint8_t *jp_tag(uint8_t *p, int field, int wt)
{
    *p++ = (uint8_t)(field << 3 | wt);
    return p;
}

static inline uint8_t *jp_len(uint8_t *p, int field, size_t n)
{
    return jp_varint(jp_tag(p, field, JP_LEN), n);
}

/* A length-delimited field, left out when empty (proto3). */
static inline uint8_t *jp_bytes(uint8_t *p, int field, const void *d, size_t n)
{
    if (!n)
        return p;
    p = jp_len(p, field, n);
    jt_copy(p, d, n);
    return p + n;
}

static inline uint8_t *jp_int(uint8_t *p, int field, int64_t v)
{
    return v ? jp_varint(jp_tag(p, field, JP_VARINT), (uint64_t)v) : p;
}

static inline uint8_t *jp_time(uint8_t *p, int field, int64_t seconds, int32_t nanos)
{
    p = jp_len(p, field, jp_time_size(seconds, nanos));
    return jp_int(jp_int(p, 1, seconds), 2, nanos);
}

#endif
