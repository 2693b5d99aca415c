/* msgpack.h: a MessagePack writer into an ot_buf, for exporters whose
 * backend speaks it (the Datadog trace-agent's /v0.4/traces). Only the
 * write side, and only the types an encoder of telemetry needs; every value
 * takes its shortest form, as the format asks. Errors stick in the buffer
 * (ot_buf.oom), so a caller writes a whole payload and checks once. */
#ifndef OT_MSGPACK_H
#define OT_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

void ot_mp_nil(ot_buf *b);
void ot_mp_bool(ot_buf *b, bool v);
void ot_mp_uint(ot_buf *b, uint64_t v);
void ot_mp_int(ot_buf *b, int64_t v); /* non-negative values take the uint forms */
void ot_mp_double(ot_buf *b, double v);
void ot_mp_str(ot_buf *b, const char *s, size_t n);
void ot_mp_cstr(ot_buf *b, const char *s);
void ot_mp_bin(ot_buf *b, const void *p, size_t n);
void ot_mp_array(ot_buf *b, uint32_t n);
void ot_mp_map(ot_buf *b, uint32_t n);

/* A map or array whose size is known only after its entries are written:
 * ot_mp_map32 writes a 5-byte header and returns its offset; ot_mp_patch32
 * puts the count in. (Valid msgpack: the 32-bit forms need not be the
 * shortest for a decoder.) */
size_t ot_mp_map32(ot_buf *b);
size_t ot_mp_array32(ot_buf *b);
void ot_mp_patch32(ot_buf *b, size_t at, uint32_t n);

#endif
