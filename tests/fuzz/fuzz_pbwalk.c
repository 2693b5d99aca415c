/* fuzz_pbwalk.c: the wire walker must never accept what protobuf-c cannot
 * unpack, and must count items exactly as the decoded request does; the
 * fast path hands walked bytes on without decoding, so a disagreement would
 * surface later as a batch no exporter can read. The item rules checked on
 * the wire (ot_pbwalk_check) must reject exactly the items the same rules
 * reject on the decoded structs (ot_drop_invalid), reason by reason. The
 * first byte picks the signal; the rest is the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/arena.h"
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
    ot_pbwalk_info wi;
    if (ot_pbwalk_check(s, p, n, &wi, &err) < 0 || wi.items != items)
        abort(); /* checking items changed what the walk accepts */
    protobuf_c_message_free_unpacked(m, NULL);
    /* dropping moves pointers out of arrays: decode into an arena for it */
    ot_arena *a = ot_arena_new(0);
    m = protobuf_c_message_unpack(ot_signal_request_desc(s), ot_arena_pb_allocator(a), n, p);
    if (!m)
        abort();
    ot_rejects r = OT_REJECTS_INIT;
    ot_drop_invalid(s, m, &r);
    if (r.n != wi.rej.n || r.first != wi.rej.first)
        abort(); /* wire and structs disagree on which items break a rule */
    for (int i = 0; i < OT_REJ_REASONS; i++)
        if (r.by_reason[i] != wi.rej.by_reason[i])
            abort();
    ot_arena_free(a);
    return 0;
}
