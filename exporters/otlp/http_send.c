/* http_send.c: what makes the `otlphttp` exporter OTLP on top of the
 * generic HTTP client (net/http_client.h): one POST per batch to the
 * signal's URL, the body the batch's protobuf bytes as they are or its OTLP
 * JSON, gzip when configured, and the answer read as the OTLP/HTTP
 * specification says: a Status in the body of a failure, partial success
 * in the body of a 2xx, Retry-After on a retryable status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "model/otlp_json.h"
#include "net/http_client.h"
#include "otlpexp.h"

#define RESP_KEEP (64u << 10) /* of a response body: enough for any Status */

struct ot_otlpexp_http {
    const ot_otlpexp_http_cfg *cfg;
    ot_http_client *client;
};

ot_otlpexp_http *ot_otlpexp_http_new(const ot_otlpexp_http_cfg *cfg, ot_err *err)
{
    ot_otlpexp_http *h = calloc(1, sizeof *h);
    if (!h) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    h->cfg = cfg;
    ot_http_client_cfg cc = {
        .id = cfg->id, .tls = cfg->tls, .proxy_url = cfg->proxy_url, .headers = cfg->headers};
    h->client = ot_http_client_new(&cc, err);
    if (!h->client) {
        free(h);
        return NULL;
    }
    return h;
}

void ot_otlpexp_http_free(ot_otlpexp_http *h)
{
    if (!h)
        return;
    ot_http_client_free(h->client);
    free(h);
}

static bool is_json(const char *ct)
{
    return strstr(ct, "json") != NULL;
}

static bool is_proto(const char *ct)
{
    return strstr(ct, "protobuf") != NULL;
}

/* Printable start of a body that is neither proto nor JSON (an HTML error
 * page from a proxy, say). */
static void text_excerpt(const ot_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 1 < cap && o < 160; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    out[o] = '\0';
}

static void read_answer(ot_otlpexp_http *h, const ot_http_response *r, ot_signal s,
                        const char *url, ot_otlpexp_result *out)
{
    const char *ct = r->content_type;
    bool json = *ct ? is_json(ct) : h->cfg->json;
    bool proto = *ct ? is_proto(ct) : !h->cfg->json;
    const ot_buf *body = r->body;
    out->status = ot_http_status_outcome(r->status);
    if (out->status == OT_OK) {
        int rc = 0;
        if (json)
            rc = ot_otlpexp_partial_from_json(s, body->data, body->len, &out->rejected,
                                              out->partial_msg, sizeof out->partial_msg);
        else if (proto)
            rc = ot_otlpexp_partial_from_pb(s, body->data, body->len, &out->rejected,
                                            out->partial_msg, sizeof out->partial_msg);
        if (rc < 0)
            ot_debug("otlphttp", "response body does not decode", "exporter=%s url=%s",
                     h->cfg->id, url);
        return;
    }
    char detail[200] = "";
    ot_grpc_status st;
    if (body->len) {
        if (json && ot_otlpexp_status_from_json(body->data, body->len, &st) == 0)
            snprintf(detail, sizeof detail, "%s", st.msg);
        else if (proto && ot_grpc_status_from_pb(body->data, body->len, &st) == 0)
            snprintf(detail, sizeof detail, "%s", st.msg);
        else if (!json && !proto)
            text_excerpt(body, detail, sizeof detail);
    }
    snprintf(out->msg, sizeof out->msg, "HTTP %d from %s%s%s", r->status, url,
             detail[0] ? ": " : "", detail);
    if (out->status == OT_RETRYABLE && r->has_retry_after)
        out->retry_after_ns = r->retry_after_ns;
}

void ot_otlpexp_http_send(ot_otlpexp_http *h, ot_batch *b, int64_t deadline_ns, ot_buf *json,
                          ot_buf *resp, ot_otlpexp_result *out)
{
    memset(out, 0, sizeof *out);
    ot_signal s = b->signal;
    const char *url = h->cfg->url[s];
    if (!url) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "no URL for %s: set endpoint or %s_endpoint",
                 ot_signal_name(s), ot_signal_name(s));
        return;
    }
    ot_err err = {{0}};
    const uint8_t *body = NULL;
    size_t len = 0;
    if (h->cfg->json) {
        const ProtobufCMessage *m = ot_batch_msg(b, &err);
        ot_buf_reset(json);
        if (!m || ot_json_encode(m, json, &err) < 0) {
            out->status = OT_PERMANENT;
            snprintf(out->msg, sizeof out->msg, "cannot encode as JSON: %s", err.msg);
            return;
        }
        body = (const uint8_t *)json->data;
        len = json->len;
    } else if (ot_batch_wire(b, &body, &len, &err) < 0) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "cannot encode as protobuf: %s", err.msg);
        return;
    }
    static const char *const ct_json[] = {"Content-Type: application/json"};
    static const char *const ct_proto[] = {"Content-Type: application/x-protobuf"};
    ot_http_request req = {
        .method = OT_HTTP_POST,
        .url = url,
        .headers = h->cfg->json ? ct_json : ct_proto,
        .n_headers = 1,
        .body = body,
        .body_len = len,
        .compression = h->cfg->gzip ? OT_COMPRESS_GZIP : OT_COMPRESS_NONE,
        .deadline_ns = deadline_ns,
        .max_body = RESP_KEEP,
    };
    ot_http_response r = {.body = resp};
    if (ot_http_client_do(h->client, &req, &r) < 0) {
        out->status = r.permanent ? OT_PERMANENT : OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "%s", r.error);
        return;
    }
    read_answer(h, &r, s, url, out);
}
