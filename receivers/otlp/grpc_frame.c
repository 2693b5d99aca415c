/* grpc_frame.c: reading the one message of a unary gRPC call (see
 * grpc_frame.h). */
#include "grpc_frame.h"

#include <string.h>

#include "net/grpc_wire.h"

void ot_grpcf_reader_init(ot_grpcf_reader *r, size_t max_len, ot_grpcf_alloc_fn alloc, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len;
    r->alloc = alloc;
    r->ctx = ctx;
}

bool ot_grpcf_complete(const ot_grpcf_reader *r)
{
    return r->have_len && r->got == r->len;
}

int ot_grpcf_feed(ot_grpcf_reader *r, const uint8_t *p, size_t n)
{
    while (n) {
        if (!r->have_len) {
            size_t take = 5 - r->hdr_got;
            if (take > n)
                take = n;
            memcpy(r->hdr + r->hdr_got, p, take);
            r->hdr_got += (uint8_t)take;
            p += take;
            n -= take;
            if (r->hdr_got < 5)
                return OT_GRPCF_OK;
            if (r->hdr[0] > 1)
                return OT_GRPCF_BAD_FLAG;
            r->compressed = r->hdr[0] == 1;
            r->len = ot_grpc_prefix_len(r->hdr);
            if (r->len > r->max_len)
                return OT_GRPCF_TOO_LARGE;
            int why = OT_GRPCF_REFUSED;
            r->buf = r->alloc(r->ctx, r->len, r->compressed, &why);
            if (!r->buf)
                return why;
            r->have_len = true;
            r->got = 0;
            continue;
        }
        size_t want = r->len - r->got;
        if (want == 0)
            return OT_GRPCF_EXTRA;
        size_t take = want < n ? want : n;
        memcpy(r->buf + r->got, p, take);
        r->got += take;
        p += take;
        n -= take;
    }
    return OT_GRPCF_OK;
}

int ot_grpcf_finish(const ot_grpcf_reader *r)
{
    if (!r->have_len)
        return r->hdr_got ? OT_GRPCF_TRUNCATED : OT_GRPCF_NO_MESSAGE;
    return r->got == r->len ? OT_GRPCF_OK : OT_GRPCF_TRUNCATED;
}
