/* http_resp.c: the responses of net/http_server.h, made apart from the
 * server that sends them: a copied, handed-over or streamed body, and its
 * headers. An ot_http_resp is libmicrohttpd's response itself; the type
 * only hides it from the server's users. */
#include <microhttpd.h>
#include <stdlib.h>

#include "net/http_server.h"

/* An ot_http_resp is the library's response itself; the type only hides it. */
static struct MHD_Response *mhd_resp(ot_http_resp *r)
{
    return (struct MHD_Response *)r;
}

ot_http_resp *ot_http_resp_copy(const void *body, size_t len)
{
    return (ot_http_resp *)MHD_create_response_from_buffer(len, (void *)body,
                                                           MHD_RESPMEM_MUST_COPY);
}

ot_http_resp *ot_http_resp_take(void *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(body);
    return (ot_http_resp *)r;
}

typedef struct stream_body {
    ssize_t (*read)(void *ctx, char *buf, size_t cap);
    void (*release)(void *ctx);
    void *ctx;
} stream_body;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_body *b = cls;
    ssize_t n = b->read(b->ctx, buf, max);
    if (n > 0)
        return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_body *b = cls;
    if (b->release)
        b->release(b->ctx);
    free(b);
}

ot_http_resp *ot_http_resp_stream(int64_t len, ssize_t (*read)(void *ctx, char *buf, size_t cap),
                                  void (*release)(void *ctx), void *ctx)
{
    stream_body *b = malloc(sizeof *b);
    if (!b) {
        if (release)
            release(ctx);
        return NULL;
    }
    *b = (stream_body){read, release, ctx};
    struct MHD_Response *r = MHD_create_response_from_callback(
        len < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)len, 64 * 1024, stream_read, b, stream_free);
    if (!r)
        stream_free(b);
    return (ot_http_resp *)r;
}

int ot_http_resp_header(ot_http_resp *r, const char *name, const char *value)
{
    return r && MHD_add_response_header(mhd_resp(r), name, value) == MHD_YES ? 0 : -1;
}

