/* fuzz_batch_split.c: the batch processor cuts requests at
 * send_batch_max_size straight from their bytes (split.h) and falls back
 * to a decoded window only when the byte cut refuses. For any request the
 * receivers would accept (pbwalk), a byte cut that does not refuse must
 * read back as exactly the decoded window: same items, same resources and
 * scopes, nothing lost or doubled. The first byte picks the signal, the
 * second the window size; the rest is the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../processors/batch/split.h"
#include "base/arena.h"
#include "model/pbwalk.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    if (!b)
        abort();
    protobuf_c_message_pack(m, b);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    ot_signal s = (ot_signal)(data[0] % OT_SIGNAL_COUNT);
    size_t k = (size_t)data[1] % 16 + 1;
    const uint8_t *p = data + 2;
    size_t n = size - 2, items = 0;
    if (ot_pbwalk(s, p, n, &items, NULL) < 0)
        return 0;
    const ProtobufCMessageDescriptor *d = ot_signal_request_desc(s);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (!m)
        abort();
    uint8_t *cut = malloc(n + 1);
    size_t seen = 0;
    for (size_t lo = 0; lo < (items ? items : 1); lo += k) {
        long w = ot_split_wire(s, p, n, items, lo, lo + k, cut);
        if (w < 0)
            continue; /* the processor decodes instead */
        if ((size_t)w > n || ot_split_wire(s, p, n, items, lo, lo + k, NULL) != w)
            abort();
        ProtobufCMessage *got = protobuf_c_message_unpack(d, NULL, (size_t)w, cut);
        if (!got)
            abort(); /* the cut is not a valid request */
        ot_arena *a = ot_arena_new(0);
        ProtobufCMessage *view = ot_split_view(s, m, lo, lo + k, a);
        size_t lg, lv;
        uint8_t *bg = pack(got, &lg), *bv = pack(view, &lv);
        if (lg != lv || memcmp(bg, bv, lg) != 0)
            abort(); /* the two windows differ */
        seen += ot_count_items(s, got);
        free(bg);
        free(bv);
        ot_arena_free(a);
        protobuf_c_message_free_unpacked(got, NULL);
    }
    if (seen > items)
        abort();
    free(cut);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
