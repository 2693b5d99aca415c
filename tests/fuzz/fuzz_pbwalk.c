/* fuzz_pbwalk.c: the wire walker must never accept what protobuf-c cannot
 * unpack, and must count items exactly as the decoded request does; the
 * fast path hands walked bytes on without decoding, so a disagreement would
 * surface later as a batch no exporter can read. The first byte picks the
 * signal; the rest is the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/pbwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ot_signal s = (ot_signal)(data[0] % OT_SIGNAL_COUNT);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    size_t items = 0;
    ot_err err;
    if (ot_pbwalk(s, p, n, &items, &err) < 0)
        return 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(s), NULL, n, p);
    if (!m)
        abort(); /* accepted by the walker, refused by the decoder */
    if (ot_count_items(s, m) != items)
        abort(); /* counted differently */
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
