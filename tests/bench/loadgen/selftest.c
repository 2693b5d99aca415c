/* selftest.c: `otelite-loadgen selftest`, the generator's own checks (the
 * bench smoke run calls it). A load generator that sends malformed bodies
 * or wrong seq numbers would make every benchmark and loss count wrong, so
 * this decodes what the templates produce, for every signal and both
 * encodings, across the seq values where varint widths change, and checks
 * the items, the seqs (exactly seq0 .. seq0+n-1) and that no sentinel time
 * or trace id survived the patching. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "model/otlp_json.h"
#include "model/pbwalk.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                    \
            printf(__VA_ARGS__);                                                           \
            printf("\n");                                                                  \
        }                                                                                  \
    } while (0)

/* Seqs found in the JSON text of a request, as count.c finds them. */
static int check_seqs(const char *js, size_t len, uint64_t seq0, size_t n, const char *what)
{
    uint8_t *seen = calloc(n ? n : 1, 1);
    size_t found = 0, bad = 0;
    const char *p = js, *end = js + len;
    while ((p = memmem(p, (size_t)(end - p), "\"loadgen.seq\"", 13))) {
        p += 13;
        while (p < end && (*p < '0' || *p > '9'))
            p++;
        uint64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9')
            v = v * 10 + (uint64_t)(*p++ - '0');
        if (v < seq0 || v >= seq0 + n || seen[v - seq0])
            bad++;
        else
            seen[v - seq0] = 1;
        found++;
    }
    free(seen);
    CHECK(found == n && bad == 0, "%s: %zu seqs found (want %zu), %zu wrong or repeated", what, found, n,
          bad);
    CHECK(!memmem(js, len, "a55ac33c96690ff0", 16), "%s: a sentinel trace id is left", what);
    CHECK(!memmem(js, len, "\"111111111100", 13), "%s: a sentinel time is left", what);
    return 0;
}

static void one(ot_signal sig, bool json, size_t n, uint64_t seq0, size_t payload, lg_content **cp,
                lg_opts *o, lg_body *b)
{
    char what[128];
    snprintf(what, sizeof what, "%s %s n=%zu seq0=%llu payload=%zu", ot_signal_name(sig),
             json ? "json" : "protobuf", n, (unsigned long long)seq0, payload);
    ot_err err = {{0}};
    int rc = lg_content_body(*cp, seq0, n, lg_wall_ns(), b, &err);
    CHECK(rc == 0, "%s: body: %s", what, err.msg);
    if (rc)
        return;
    const char *data = (const char *)b->data + b->prefix;
    size_t len = b->len - b->prefix;
    ot_batch *bt;
    if (json) {
        bt = ot_batch_from_json(sig, data, len, &err);
    } else {
        size_t items = 0;
        CHECK(ot_pbwalk(sig, data, len, &items, &err) == 0 && items == n, "%s: pbwalk: %s (%zu items)",
              what, err.msg, items);
        bt = ot_batch_decode(sig, data, len, &err);
    }
    CHECK(bt != NULL, "%s: decode: %s", what, err.msg);
    if (!bt)
        return;
    const ProtobufCMessage *m = ot_batch_msg(bt, &err);
    CHECK(m && ot_count_items(sig, m) == n, "%s: %zu items decoded", what,
          m ? ot_count_items(sig, m) : 0);
    ot_buf js = OT_BUF_INIT;
    if (m && ot_json_encode(m, &js, &err) == 0)
        check_seqs(js.data, js.len, seq0, n, what);
    ot_buf_free(&js);
    ot_batch_unref(bt);
    (void)o;
}

int lg_selftest_main(int argc, char **argv)
{
    static const uint64_t seqs[] = {0, 100, 16300, 16384, 2097100, 268435400, 300};
    static const size_t sizes[] = {100, 7, 1};
    for (int sig = 0; sig < OT_SIGNAL_COUNT; sig++) {
        for (int json = 0; json < 2; json++) {
            for (size_t pl = 0; pl < 2; pl++) {
                lg_opts o;
                memset(&o, 0, sizeof o);
                o.sig = (ot_signal)sig;
                o.target = LG_T_HTTP;
                o.json = json;
                o.batch = 100;
                o.attributes = pl ? 14 : 10;
                o.payload_bytes = pl ? 50 : 0;
                o.seed = 7;
                snprintf(o.run_id, sizeof o.run_id, "selftest");
                ot_err err = {{0}};
                lg_content *c = lg_content_new(&o, 0, &err);
                lg_body b = {0};
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                    for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++)
                        one((ot_signal)sig, json, sizes[s], seqs[q], o.payload_bytes, &c, &o, &b);
                /* the gRPC framing headroom must not disturb the body */
                lg_body g = {.prefix = 5};
                one((ot_signal)sig, json, 100, 500, o.payload_bytes, &c, &o, &g);
                lg_body_free(&g);
                lg_body_free(&b);
                lg_content_free(c);
            }
        }
    }
    /* the latency histogram: quantiles within a bucket (~6%) of the truth */
    lg_hist *h = calloc(1, sizeof *h);
    for (uint64_t v = 1; v <= 100000; v++)
        lg_hist_add(h, v * 1000);
    uint64_t p50 = lg_hist_quantile(h, 0.5), p99 = lg_hist_quantile(h, 0.99);
    CHECK(p50 >= 50000000 * 0.94 && p50 <= 50000000 * 1.07, "p50 %llu", (unsigned long long)p50);
    CHECK(p99 >= 99000000 * 0.94 && p99 <= 99000000 * 1.07, "p99 %llu", (unsigned long long)p99);
    CHECK(lg_hist_quantile(h, 1.0) == 100000000, "max");
    free(h);
    printf("selftest: %d passed, %d failed\n", passed, failed);
    (void)argc;
    (void)argv;
    return failed ? 1 : 0;
}
