/* fuzz_grpc_frame.c: the gRPC message reader over any byte stream cut into
 * any chunks. It must never write past the buffer it asked for, and feeding
 * the stream in pieces must end exactly as feeding it whole does, with the
 * same message bytes. The header value helpers run on the same input.
 * Byte 0 seeds the chunk sizes, byte 1 the size limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../receivers/otlp/grpc_frame.h"
#include "base/codec.h"
#include "net/grpc_wire.h"

typedef struct holder {
    uint8_t *buf;
    uint32_t len;
    int allocs;
} holder;

static uint8_t *alloc_msg(void *ctx, uint32_t len, bool compressed, int *why)
{
    holder *h = ctx;
    h->allocs++;
    h->len = len;
    h->buf = malloc(len ? len : 1);
    if (!h->buf)
        *why = OT_GRPCF_NOMEM;
    return h->buf;
}

/* Feeds p in chunks; returns the first error or the finish result. */
static int run(const uint8_t *p, size_t n, size_t max, unsigned seed, holder *h)
{
    ot_grpcf_reader r;
    ot_grpcf_reader_init(&r, max, alloc_msg, h);
    size_t off = 0;
    while (off < n) {
        size_t chunk = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 97 : n - off;
        if (chunk > n - off)
            chunk = n - off;
        int rc = ot_grpcf_feed(&r, p + off, chunk);
        if (rc != OT_GRPCF_OK)
            return rc;
        off += chunk;
    }
    if (r.have_len && r.got > r.len)
        abort();
    return ot_grpcf_finish(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned seed = data[0] | 1u;
    size_t max = (size_t)data[1] * 64;
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    holder whole = {0}, pieces = {0};
    int a = run(p, n, max, 0, &whole);
    int b = run(p, n, max, seed, &pieces);
    if (a != b || whole.allocs != pieces.allocs || whole.allocs > 1)
        abort();
    if (a == OT_GRPCF_OK && (whole.len != pieces.len || n != (size_t)whole.len + 5 ||
                             memcmp(whole.buf, pieces.buf, whole.len) != 0 ||
                             memcmp(whole.buf, p + 5, whole.len) != 0))
        abort();
    free(whole.buf);
    free(pieces.buf);

    int64_t ns;
    if (ot_grpc_timeout_parse((const char *)p, n < 12 ? n : 12, &ns) == 0 && ns < 0)
        abort();
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    ot_buf out = OT_BUF_INIT;
    ot_grpc_percent_encode(s, &out);
    for (size_t i = 0; i < out.len; i++)
        if ((unsigned char)out.data[i] < 0x20 || (unsigned char)out.data[i] > 0x7e)
            abort();
    ot_buf_free(&out);
    /* unpadded base64, as -bin headers carry it, and back */
    char *b64 = malloc(ot_base64_len(n, OT_B64_NOPAD) + 1);
    uint8_t *back = malloc(ot_base64_decoded_max(ot_base64_len(n, OT_B64_NOPAD)) + 1);
    size_t bl = ot_base64_encode(p, n, b64, OT_B64_NOPAD);
    if (bl != n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) || ot_base64_decode(b64, bl, back) != (long)n ||
        memcmp(back, p, n) != 0)
        abort();
    free(b64);
    free(back);
    free(s);
    return 0;
}
