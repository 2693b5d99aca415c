/* fuzz_http_body.c: the OTLP/HTTP body path without sockets: content type,
 * decompression under a cap, then the protobuf walk or the JSON decoder.
 * Any input must end in a batch or a refusal, never in a crash, an
 * allocation past the cap, or a leak of the in-flight budget; and a
 * protobuf batch must decode when an exporter asks for its fields.
 * Byte 0 picks the signal, byte 1 the content type, byte 2 the encoding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../receivers/otlp/otlp.h"

static const char *const ctypes[] = {"application/x-protobuf", "application/json",
                                     "application/json; charset=utf-8", "text/plain"};
static const char *const encs[] = {NULL, "gzip", "deflate", "zstd", "br"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    ot_signal s = (ot_signal)(data[0] % OT_SIGNAL_COUNT);
    const char *ct = ctypes[data[1] % 4];
    const char *enc = encs[data[2] % 5];
    otlpr_budget budget = {.max = 4u << 20};
    atomic_init(&budget.used, 0);
    otlpr_outcome o;
    ot_err err;
    ot_batch *b = ot_otlpr_http_body(s, ct, enc, data + 3, size - 3, 1u << 20, &budget, &o, &err);
    if (atomic_load(&budget.used) != 0)
        abort(); /* every byte taken is given back */
    if (!b) {
        if (o == OTLPR_OK)
            abort();
        return 0;
    }
    if (o != OTLPR_OK || b->signal != s)
        abort();
    if (b->wire && !ot_batch_msg(b, &err))
        abort(); /* walked but does not decode */
    ot_batch_unref(b);
    return 0;
}
