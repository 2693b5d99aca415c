/* jsonlog_fuzz.h: what the jsonlog fuzz targets share: encoded records
 * must always form a request the wire walker accepts (field numbers,
 * lengths, UTF-8 of every string) with the number of records given, since
 * the receiver hands its bytes on without a decode. Test-only; static. */
#ifndef JSONLOG_FUZZ_H
#define JSONLOG_FUZZ_H

#include <stdlib.h>

#include "model/pbwalk.h"
#include "../../receivers/jsonlog/jl.h"
#include "../../receivers/jsonlog/pbw.h"

static inline void jf_check(const ot_buf *recs, size_t want)
{
    ot_buf req = OT_BUF_INIT;
    size_t sl = recs->len, rl = 1 + ot_varint_size(sl) + sl;
    if (pbw_len_hdr(&req, 1, rl) < 0 || pbw_len_hdr(&req, 2, sl) < 0 ||
        ot_buf_append(&req, recs->data, recs->len) < 0)
        abort();
    size_t items = 0;
    ot_err err;
    if (ot_pbwalk(OT_LOGS, req.data, req.len, &items, &err) < 0 || items != want)
        abort();
    ot_buf_free(&req);
}

#endif
