/* payload.c: items into requests the intake takes. Datadog refuses bodies
 * over its limits (series: 5 MiB raw and 512 KB compressed; logs: 5 MB
 * and 1000 entries), so items are cut into requests before sending, and a
 * 413 halves the request and sends both halves instead of dropping it.
 * How each answer counts: 2xx sent; 429, 408 and 5xx retried (with the
 * server's Retry-After); 403 is the API key and is not retried; any other
 * 4xx will not change on a retry. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/msgpack.h"
#include "dd.h"

/* Traces: the trace agent takes far more, but a few MB a request keeps
 * what a sender holds small. */
const dd_limits dd_default_limits[DD_KIND_COUNT] = {
    [DD_SERIES] = {.max_items = 0, .max_raw = 5u << 20, .max_compressed = 512000},
    [DD_SKETCHES] = {.max_items = 0, .max_raw = 5u << 20, .max_compressed = 512000},
    [DD_LOGS] = {.max_items = 1000, .max_raw = 5000000, .max_compressed = 0},
    [DD_TRACES] = {.max_items = 0, .max_raw = 2u << 20, .max_compressed = 0},
};

static size_t item_len(const dd_items *it, size_t i)
{
    return it->end[i] - dd_item_start(it, i);
}

/* Bytes the framing adds around n items. */
static size_t frame_overhead(dd_kind k, size_t n)
{
    switch (k) {
    case DD_SERIES:
        return 13 + (n ? n - 1 : 0);
    case DD_LOGS:
        return 2 + (n ? n - 1 : 0);
    case DD_TRACES:
        return 5;
    default:
        return 0;
    }
}

int dd_frame(dd_kind k, const dd_items *it, size_t from, size_t to, ot_buf *out)
{
    ot_buf_reset(out);
    const char *d = it->data.data;
    switch (k) {
    case DD_SERIES:
    case DD_LOGS:
        ot_buf_puts(out, k == DD_SERIES ? "{\"series\":[" : "[");
        for (size_t i = from; i < to; i++) {
            if (i > from)
                ot_buf_putc(out, ',');
            ot_buf_append(out, d + dd_item_start(it, i), item_len(it, i));
        }
        ot_buf_puts(out, k == DD_SERIES ? "]}" : "]");
        break;
    case DD_TRACES:
        ot_mp_array(out, (uint32_t)(to - from));
        /* fall through */
    default:
        if (to > from)
            ot_buf_append(out, d + dd_item_start(it, from), it->end[to - 1] - dd_item_start(it, from));
        else
            ot_buf_append(out, "", 0);
        break;
    }
    return out->oom ? -1 : 0;
}

typedef struct run {
    dd_kind k;
    const dd_items *it;
    const dd_limits *lim;
    ot_compression how;
    ot_compressor *comp;
    ot_buf *body;
    dd_post_fn post;
    void *ctx;
    ot_send_result *out;
    dd_send_stats *st;
} run;

static const char *const kind_names[] = {"series", "sketches", "logs", "traces"};

/* 0 sent (or dropped for good), 1 stop: out says why. */
static int send_range(run *r, size_t from, size_t to)
{
    ot_err err = {{0}};
    if (dd_frame(r->k, r->it, from, to, r->body) < 0) {
        r->out->status = OT_RETRYABLE;
        snprintf(r->out->msg, sizeof r->out->msg, "out of memory");
        return 1;
    }
    const uint8_t *body = (const uint8_t *)r->body->data;
    size_t len = r->body->len;
    if (r->how != OT_COMPRESS_NONE) {
        if (ot_compress(r->comp, r->how, body, len, &err) < 0) {
            r->out->status = OT_RETRYABLE;
            snprintf(r->out->msg, sizeof r->out->msg, "%s", err.msg);
            return 1;
        }
        body = (const uint8_t *)r->comp->out.data;
        len = r->comp->out.len;
        if (r->lim->max_compressed && len > r->lim->max_compressed && to - from > 1) {
            size_t mid = from + (to - from) / 2;
            r->st->splits++;
            return send_range(r, from, mid) ? 1 : send_range(r, mid, to);
        }
    }
    dd_post_result pr;
    memset(&pr, 0, sizeof pr);
    r->post(r->ctx, r->k, body, len, r->how, to - from, &pr);
    r->st->requests++;
    int s = pr.status;
    if (s >= 200 && s < 300)
        return 0;
    if (s == 413) {
        if (to - from > 1) {
            size_t mid = from + (to - from) / 2;
            r->st->splits++;
            return send_range(r, from, mid) ? 1 : send_range(r, mid, to);
        }
        r->st->dropped_items++;
        static _Atomic int64_t last;
        if (ot_log_ratelimit(&last, 10000000000ll))
            ot_warn("datadog", "intake refused one item as too large; dropped",
                    "kind=%s bytes=%zu", kind_names[r->k], item_len(r->it, from));
        return 0;
    }
    if (s == 403) {
        r->out->status = OT_PERMANENT;
        snprintf(r->out->msg, sizeof r->out->msg,
                 "HTTP 403 from the %s intake: the API key is invalid or not allowed to send "
                 "there (check api.key and api.site)",
                 kind_names[r->k]);
        return 1;
    }
    if (s == 0) {
        r->out->status = pr.permanent ? OT_PERMANENT : OT_RETRYABLE;
    } else if (s == 429 || s == 408 || (s >= 500 && s < 600)) {
        r->out->status = OT_RETRYABLE;
        r->out->retry_after_ns = pr.retry_after_ns;
    } else {
        r->out->status = OT_PERMANENT;
    }
    snprintf(r->out->msg, sizeof r->out->msg, "%s", pr.msg);
    return 1;
}

void dd_send_items(dd_kind k, const dd_items *it, const dd_limits *lim, ot_compression how,
                   ot_compressor *comp, ot_buf *body, dd_post_fn post, void *ctx,
                   ot_send_result *out, dd_send_stats *st)
{
    run r = {k, it, lim, how, comp, body, post, ctx, out, st};
    out->status = OT_OK;
    size_t i = 0;
    while (i < it->n) {
        size_t j = i, raw = frame_overhead(k, 0);
        while (j < it->n) {
            size_t add = item_len(it, j) + (j > i && (k == DD_SERIES || k == DD_LOGS) ? 1 : 0);
            bool full = (lim->max_items && j - i >= lim->max_items) ||
                        (lim->max_raw && raw + add > lim->max_raw);
            if (full && j > i)
                break;
            raw += add;
            j++;
        }
        if (send_range(&r, i, j))
            return;
        i = j;
    }
}
