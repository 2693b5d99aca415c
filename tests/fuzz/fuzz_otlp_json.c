/* fuzz_otlp_json.c: the OTLP JSON decoder must survive any input, and what
 * it accepts must encode to JSON that decodes to the same thing (encoding
 * twice gives identical text). Tried as each of the three request types. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_json.h"

static void check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    ot_arena *a = ot_arena_new(0);
    if (!a)
        return;
    ot_err err;
    ProtobufCMessage *m = ot_json_decode(desc, (const char *)data, size, a, &err);
    if (m) {
        ot_buf j1 = OT_BUF_INIT, j2 = OT_BUF_INIT;
        if (ot_json_encode(m, &j1, &err) < 0) {
            fprintf(stderr, "encode of decoded input failed: %s\n", err.msg);
            abort();
        }
        ProtobufCMessage *m2 = ot_json_decode(desc, j1.data, j1.len, a, &err);
        if (!m2) {
            fprintf(stderr, "own output does not decode: %s\n%s\n", err.msg, j1.data);
            abort();
        }
        if (ot_json_encode(m2, &j2, &err) < 0 || j1.len != j2.len ||
            memcmp(j1.data, j2.data, j1.len) != 0) {
            fprintf(stderr, "re-encoding differs:\n%s\n%s\n", j1.data, j2.data ? j2.data : "");
            abort();
        }
        /* the message must also be valid for protobuf */
        size_t n = protobuf_c_message_get_packed_size(m2);
        uint8_t *wire = malloc(n ? n : 1);
        if (wire) {
            protobuf_c_message_pack(m2, wire);
            free(wire);
        }
        ot_buf_free(&j1);
        ot_buf_free(&j2);
    }
    ot_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (ot_signal s = OT_TRACES; s < OT_SIGNAL_COUNT; s++)
        check(ot_signal_request_desc(s), data, size);
    return 0;
}
