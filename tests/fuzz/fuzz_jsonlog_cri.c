/* fuzz_jsonlog_cri.c: CRI line framing on arbitrary bytes: a parsed line's
 * slices lie inside it, and its message maps to one valid record. */
#include <stdint.h>

#include "jsonlog_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *l = (const char *)data;
    jl_framed f;
    (void)jl_detect(l, size);
    if (jl_cri_parse(l, size, &f) < 0)
        return 0;
    if (f.msg < l || f.msg + f.msg_len > l + size || f.stream < l ||
        f.stream + f.stream_len > l + size)
        abort();
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT;
    jl_rec r = {.observed_ns = 1, .runtime_ns = f.ts, .stream = f.stream,
                .stream_len = f.stream_len, .truncated = f.partial};
    static const jl_map m = {0};
    bool pe;
    if (jl_encode_msg(&e, &m, &r, f.msg, f.msg_len, &out, &pe) < 0)
        abort();
    jf_check(&out, 1);
    ot_buf_free(&out);
    jl_enc_free(&e);
    return 0;
}
