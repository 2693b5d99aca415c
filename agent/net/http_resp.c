/* http_resp.c: the responses of net/http_server.h, made apart from the
 * server that sends them: a copied, handed-over or streamed body, and its
 * header lines (kept as the bytes that go on the wire). */
#include <stdlib.h>
#include <string.h>

#include "net/http1_int.h"

ot_http_resp *ot_http_resp_copy(const void *body, size_t len)
{
    /* one allocation: the body right after the response */
    ot_http_resp *r = calloc(1, sizeof *r + len + 1);
    if (!r)
        return NULL;
    if (len)
        memcpy(r + 1, body, len);
    r->body = (const uint8_t *)(r + 1);
    r->len = len;
    r->slen = 0;
    return r;
}

ot_http_resp *ot_http_resp_take(void *body, size_t len)
{
    ot_http_resp *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        return NULL;
    }
    r->body = body;
    r->owned = body;
    r->len = len;
    return r;
}

ot_http_resp *ot_http_resp_stream(int64_t len, ssize_t (*read)(void *ctx, char *buf, size_t cap),
                                  void (*release)(void *ctx), void *ctx)
{
    ot_http_resp *r = calloc(1, sizeof *r);
    if (!r) {
        if (release)
            release(ctx);
        return NULL;
    }
    r->read = read;
    r->release = release;
    r->ctx = ctx;
    r->slen = len < 0 ? -1 : len;
    return r;
}

int ot_http_resp_header(ot_http_resp *r, const char *name, const char *value)
{
    if (!r || !name || !value)
        return -1;
    /* a value that could end the line would let a caller forge headers */
    if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n"))
        return -1;
    ot_buf_printf(&r->head, "%s: %s\r\n", name, value);
    return r->head.oom ? -1 : 0;
}

void ot_h1_resp_free(ot_http_resp *r)
{
    if (!r)
        return;
    if (r->release)
        r->release(r->ctx);
    free(r->owned);
    ot_buf_free(&r->head);
    free(r);
}
