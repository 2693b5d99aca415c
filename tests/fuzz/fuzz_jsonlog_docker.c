/* fuzz_jsonlog_docker.c: Docker json-file lines on arbitrary bytes: a
 * parsed line's message (unescaped, invalid UTF-8 replaced) maps to one
 * valid record, and its stream is one of the two names. */
#include <stdint.h>
#include <string.h>

#include "jsonlog_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ot_buf tmp = OT_BUF_INIT, scratch = OT_BUF_INIT;
    jl_framed f;
    if (jl_docker_parse((const char *)data, size, &tmp, &scratch, &f) == 0) {
        if (f.stream && strncmp(f.stream, "stdout", 6) != 0 && strncmp(f.stream, "stderr", 6) != 0)
            abort();
        if (jl_utf8_valid(f.msg, f.msg_len) != f.msg_len)
            abort();
        jl_enc e = {0};
        ot_buf out = OT_BUF_INIT;
        jl_rec r = {.observed_ns = 1, .runtime_ns = f.ts, .stream = f.stream,
                    .stream_len = f.stream_len};
        static const jl_map m = {0};
        bool pe;
        if (jl_encode_msg(&e, &m, &r, f.msg, f.msg_len, &out, &pe) < 0)
            abort();
        jf_check(&out, 1);
        ot_buf_free(&out);
        jl_enc_free(&e);
    }
    ot_buf_free(&tmp);
    ot_buf_free(&scratch);
    return 0;
}
