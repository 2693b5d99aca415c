/* fuzz_otlp_json_wire.c: JSON written from protobuf bytes must equal what
 * the struct encoder writes for the same bytes decoded by protobuf-c, or
 * hand the bytes back (1) with nothing appended. The first byte picks the
 * signal; the rest is the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "model/otlp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ot_signal s = (ot_signal)(data[0] % OT_SIGNAL_COUNT);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    ot_buf got = OT_BUF_INIT;
    ot_err err;
    int rc = ot_json_encode_wire(s, p, n, &got, &err);
    if (rc != 0 && (rc != 1 || got.len != 0))
        abort(); /* no OOM here; a fallback leaves nothing behind */
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(s), ot_arena_pb_allocator(a), n, p);
    if (m && rc == 0) {
        ot_buf want = OT_BUF_INIT;
        if (ot_json_encode(m, &want, &err) != 0)
            abort(); /* written from the bytes, refused from the structs */
        if (want.len != got.len || memcmp(want.data, got.data, got.len) != 0)
            abort(); /* written differently */
        ot_buf_free(&want);
    }
    ot_arena_free(a);
    ot_buf_free(&got);
    return 0;
}
