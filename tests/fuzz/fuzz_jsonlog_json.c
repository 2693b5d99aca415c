/* fuzz_jsonlog_json.c: the JSON line scanner and record mapping of the
 * jsonlog receiver on arbitrary bytes (whatever an application writes to
 * its log). Every line yields exactly one record, valid OTLP wire form with
 * valid UTF-8, whether it parsed or fell back to a string body. */
#include <stdint.h>

#include "jsonlog_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT;
    jl_rec r = {.observed_ns = 1};
    static const jl_map m = {0};
    bool pe;
    if (jl_encode_json(&e, &m, &r, (const char *)data, size, &out, &pe) < 0)
        abort();
    jl_sevmap_ent sm[] = {{"x", 9}};
    jl_map m2 = {.ts_field = "t", .ts_layout = JL_TS_STRPTIME, .ts_pattern = "%Y-%m-%d %z",
                 .sev_field = "l", .sevmap = sm, .n_sevmap = 1, .body_field = "b"};
    if (jl_encode_msg(&e, &m2, &r, (const char *)data, size, &out, &pe) < 0)
        abort();
    jf_check(&out, 2);
    ot_buf_free(&out);
    jl_enc_free(&e);
    return 0;
}
