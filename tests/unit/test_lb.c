/* test_lb.c: the loadbalancing exporter's pieces that need no network: the
 * consistent-hash ring (spread, and that a change of one backend moves
 * about 1/N of the keys and only those), the split of requests by routing
 * key (decoded with protobuf-c: nothing lost or duplicated, a trace or
 * resource or metric never split, resource and scope kept), and the DNS
 * message code (RFC 1035 queries and answers built by hand here). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../exporters/loadbalancing/dns.h"
#include "../../exporters/loadbalancing/k8s.h"
#include "../../exporters/loadbalancing/lb.h"
#include "base/arena.h"
#include "otlp_samples.h"

static ot_arena *A;
static void setup(void) { A = ot_arena_new(0); }
static void teardown(void) { ot_arena_free(A); }

TestSuite(lb_ring, .init = setup, .fini = teardown);
TestSuite(lb_route, .init = setup, .fini = teardown);
TestSuite(lb_dns, .init = setup, .fini = teardown);
TestSuite(lb_k8s);

/* ---- ring ------------------------------------------------------------------ */

static const char *NAMES[] = {"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317", "10.0.0.4:4317",
                              "10.0.0.5:4317", "10.0.0.6:4317", "10.0.0.7:4317", "10.0.0.8:4317",
                              "10.0.0.9:4317", "10.0.0.10:4317", "10.0.0.11:4317"};

static const char *owner_name(const lb_ring *r, const char *const *names, uint64_t key)
{
    return names[lb_ring_get(r, lb_hash(&key, sizeof key, 99))];
}

Test(lb_ring, same_set_same_ring_whatever_the_order)
{
    const char *a[] = {NAMES[0], NAMES[1], NAMES[2]}, *b[] = {NAMES[2], NAMES[0], NAMES[1]};
    lb_ring *ra = lb_ring_new(a, 3), *rb = lb_ring_new(b, 3);
    for (uint64_t k = 0; k < 20000; k++)
        cr_assert_str_eq(owner_name(ra, a, k), owner_name(rb, b, k));
    lb_ring_free(ra);
    lb_ring_free(rb);
}

Test(lb_ring, spreads_keys_evenly)
{
    lb_ring *r = lb_ring_new(NAMES, 3);
    size_t n[3] = {0}, total = 300000;
    for (uint64_t k = 0; k < total; k++)
        n[lb_ring_get(r, lb_hash(&k, sizeof k, 1))]++;
    for (int i = 0; i < 3; i++)
        cr_assert(n[i] > total * 0.27 && n[i] < total * 0.40, "backend %d got %zu of %zu", i, n[i],
                  total);
    lb_ring_free(r);
}

/* Removing backend `gone` of n moves exactly its keys, about 1/n of all. */
static void check_removal(size_t n, size_t gone)
{
    const char *fewer[16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (i != gone)
            fewer[m++] = NAMES[i];
    lb_ring *before = lb_ring_new(NAMES, n), *after = lb_ring_new(fewer, m);
    size_t moved = 0, total = 200000;
    for (uint64_t k = 0; k < total; k++) {
        const char *x = owner_name(before, NAMES, k), *y = owner_name(after, fewer, k);
        if (strcmp(x, y)) {
            moved++;
            cr_assert_str_eq(x, NAMES[gone], "key %llu moved from a backend that stayed",
                             (unsigned long long)k);
        }
    }
    double share = (double)moved / (double)total, want = 1.0 / (double)n;
    cr_assert(share > want * 0.7 && share < want * 1.3, "n=%zu: %.3f of the keys moved, want ~%.3f",
              n, share, want);
    lb_ring_free(before);
    lb_ring_free(after);
}

Test(lb_ring, removing_one_moves_about_one_nth)
{
    check_removal(3, 2);
    check_removal(3, 0);
    check_removal(5, 1);
    check_removal(10, 7);
}

Test(lb_ring, adding_one_moves_keys_only_to_it)
{
    lb_ring *r3 = lb_ring_new(NAMES, 3), *r4 = lb_ring_new(NAMES, 4);
    size_t moved = 0, total = 200000;
    for (uint64_t k = 0; k < total; k++) {
        const char *x = owner_name(r3, NAMES, k), *y = owner_name(r4, NAMES, k);
        if (strcmp(x, y)) {
            moved++;
            cr_assert_str_eq(y, NAMES[3]);
        }
    }
    cr_assert(moved > total * 0.25 * 0.7 && moved < total * 0.25 * 1.3, "moved %zu", moved);
    lb_ring_free(r3);
    lb_ring_free(r4);
}

/* ---- routing --------------------------------------------------------------- */

#define MAX_PARTS 16

typedef struct parts {
    ot_signal sig;
    const uint8_t *whole;
    size_t whole_len;
    ProtobufCMessage *msg[MAX_PARTS];
    uint32_t backend[MAX_PARTS];
    size_t n;
    int whole_to; /* backend of an unchanged pass-through, or -1 */
} parts;

static int collect(void *vctx, uint32_t backend, const uint8_t *wire, size_t len, size_t items)
{
    parts *p = vctx;
    cr_assert_lt(p->n, MAX_PARTS);
    for (size_t i = 0; i < p->n; i++)
        cr_assert_neq(p->backend[i], backend, "two parts for backend %u", backend);
    if (!wire) {
        p->whole_to = (int)backend;
        wire = p->whole;
        len = p->whole_len;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(ot_signal_request_desc(p->sig), NULL, len, wire);
    cr_assert(m, "part for backend %u does not decode", backend);
    cr_assert_eq(ot_count_items(p->sig, m), items, "item count of the part for %u", backend);
    p->msg[p->n] = m;
    p->backend[p->n++] = backend;
    return 0;
}

static void parts_free(parts *p)
{
    for (size_t i = 0; i < p->n; i++)
        protobuf_c_message_free_unpacked(p->msg[i], NULL);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = ot_arena_alloc(A, *len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static bool same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la, lbn;
    if (!a || !b)
        return a == b;
    uint8_t *x = pack(a, &la), *y = pack(b, &lbn);
    return la == lbn && memcmp(x, y, la) == 0;
}

static void route(ot_signal s, lb_key key, const ProtobufCMessage *req, size_t nb, parts *out)
{
    memset(out, 0, sizeof *out);
    out->sig = s;
    out->whole_to = -1;
    out->whole = pack(req, &out->whole_len);
    lb_ring *r = lb_ring_new(NAMES, nb);
    ot_err err = {{0}};
    cr_assert_eq(lb_route(s, key, r, out->whole, out->whole_len, NULL, collect, out, &err), 0, "%s",
                 err.msg);
    lb_ring_free(r);
}

/* Many traces over several resources: the loadgen's shape. */
static ot_trace_req *traces_3res(void)
{
    ot_trace_req *a = ot_sample_traces(A, 400, 3), *b = ot_sample_traces(A, 300, 2),
                 *rich = ot_sample_traces_rich(A);
    ot_trace_req *r = ot_arena_calloc(A, sizeof *r);
    *r = *a;
    size_t n = a->n_resource_spans + b->n_resource_spans + rich->n_resource_spans, k = 0;
    r->resource_spans = ot_arena_alloc(A, n * sizeof *r->resource_spans);
    for (size_t i = 0; i < a->n_resource_spans; i++)
        r->resource_spans[k++] = a->resource_spans[i];
    for (size_t i = 0; i < rich->n_resource_spans; i++)
        r->resource_spans[k++] = rich->resource_spans[i];
    for (size_t i = 0; i < b->n_resource_spans; i++)
        r->resource_spans[k++] = b->resource_spans[i];
    r->n_resource_spans = k;
    return r;
}

Test(lb_route, traceid_keeps_traces_whole_and_loses_nothing)
{
    ot_trace_req *req = traces_3res();
    size_t total = ot_count_items(OT_TRACES, &req->base);
    parts p;
    route(OT_TRACES, LB_KEY_TRACEID, &req->base, 3, &p);
    cr_assert_eq(p.n, 3, "spans of many traces should reach all three backends");
    cr_assert_eq(p.whole_to, -1);
    /* every span exactly once, its trace in one part, under its own
     * resource and scope (compared by bytes with the original) */
    size_t seen = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const ot_resource_spans *rs = req->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const ot_scope_spans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const ot_span *sp = ss->spans[k];
                int found = 0;
                for (size_t q = 0; q < p.n; q++) {
                    const ot_trace_req *pr = (const ot_trace_req *)p.msg[q];
                    for (size_t a = 0; a < pr->n_resource_spans; a++)
                        for (size_t b = 0; b < pr->resource_spans[a]->n_scope_spans; b++) {
                            const ot_scope_spans *ps = pr->resource_spans[a]->scope_spans[b];
                            for (size_t c = 0; c < ps->n_spans; c++) {
                                const ot_span *x = ps->spans[c];
                                if (same(&x->base, &sp->base)) {
                                    found++;
                                    cr_assert(same(&pr->resource_spans[a]->resource->base,
                                                   &rs->resource->base));
                                    cr_assert_str_eq(pr->resource_spans[a]->schema_url,
                                                     rs->schema_url);
                                    cr_assert(same(ps->scope ? &ps->scope->base : NULL,
                                                   ss->scope ? &ss->scope->base : NULL));
                                }
                            }
                        }
                }
                cr_assert_eq(found, 1, "span %zu/%zu/%zu found %d times", i, j, k, found);
                seen++;
            }
        }
    }
    cr_assert_eq(seen, total);
    /* a trace id in one part only */
    for (size_t q = 0; q < p.n; q++) {
        const ot_trace_req *pr = (const ot_trace_req *)p.msg[q];
        for (size_t a = 0; a < pr->n_resource_spans; a++)
            for (size_t b = 0; b < pr->resource_spans[a]->n_scope_spans; b++) {
                const ot_scope_spans *ps = pr->resource_spans[a]->scope_spans[b];
                for (size_t c = 0; c < ps->n_spans; c++)
                    for (size_t o = 0; o < p.n; o++) {
                        if (o == q)
                            continue;
                        const ot_trace_req *po = (const ot_trace_req *)p.msg[o];
                        for (size_t a2 = 0; a2 < po->n_resource_spans; a2++)
                            for (size_t b2 = 0; b2 < po->resource_spans[a2]->n_scope_spans; b2++) {
                                const ot_scope_spans *s2 = po->resource_spans[a2]->scope_spans[b2];
                                for (size_t c2 = 0; c2 < s2->n_spans; c2++)
                                    cr_assert(ps->spans[c]->trace_id.len == 0 ||
                                                  s2->spans[c2]->trace_id.len !=
                                                      ps->spans[c]->trace_id.len ||
                                                  memcmp(s2->spans[c2]->trace_id.data,
                                                         ps->spans[c]->trace_id.data,
                                                         ps->spans[c]->trace_id.len),
                                              "a trace in two parts");
                            }
                    }
            }
    }
    parts_free(&p);
}

Test(lb_route, one_backend_passes_the_request_through)
{
    ot_trace_req *req = traces_3res();
    parts p;
    route(OT_TRACES, LB_KEY_TRACEID, &req->base, 1, &p);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.whole_to, 0);
    parts_free(&p);
}

Test(lb_route, service_and_resource_keep_resources_whole)
{
    ot_trace_req *req = traces_3res();
    for (int key = LB_KEY_SERVICE; key <= LB_KEY_RESOURCE; key++) {
        parts p;
        route(OT_TRACES, (lb_key)key, &req->base, 5, &p);
        size_t spans = 0, res = 0;
        for (size_t q = 0; q < p.n; q++) {
            const ot_trace_req *pr = (const ot_trace_req *)p.msg[q];
            spans += ot_count_items(OT_TRACES, p.msg[q]);
            res += pr->n_resource_spans;
            /* each resource entry arrives with all of its bytes */
            for (size_t a = 0; a < pr->n_resource_spans; a++) {
                bool match = false;
                for (size_t i = 0; i < req->n_resource_spans && !match; i++)
                    match = same(&pr->resource_spans[a]->base, &req->resource_spans[i]->base);
                cr_assert(match, "a resource entry was cut");
            }
        }
        cr_assert_eq(spans, ot_count_items(OT_TRACES, &req->base));
        cr_assert_eq(res, req->n_resource_spans);
        parts_free(&p);
    }
}

Test(lb_route, metrics_by_metric_and_stream)
{
    ot_metrics_req *req = ot_sample_metrics(A, 400, 3);
    size_t total = ot_count_items(OT_METRICS, &req->base);
    /* metric: every metric name in one part */
    parts p;
    route(OT_METRICS, LB_KEY_METRIC, &req->base, 3, &p);
    cr_assert_gt(p.n, 1);
    size_t pts = 0;
    for (size_t q = 0; q < p.n; q++) {
        pts += ot_count_items(OT_METRICS, p.msg[q]);
        const ot_metrics_req *pr = (const ot_metrics_req *)p.msg[q];
        for (size_t a = 0; a < pr->n_resource_metrics; a++)
            for (size_t b = 0; b < pr->resource_metrics[a]->n_scope_metrics; b++) {
                const ot_scope_metrics *sm = pr->resource_metrics[a]->scope_metrics[b];
                for (size_t c = 0; c < sm->n_metrics; c++)
                    for (size_t o = 0; o < p.n; o++) {
                        if (o == q)
                            continue;
                        const ot_metrics_req *po = (const ot_metrics_req *)p.msg[o];
                        for (size_t a2 = 0; a2 < po->n_resource_metrics; a2++)
                            for (size_t b2 = 0; b2 < po->resource_metrics[a2]->n_scope_metrics; b2++) {
                                const ot_scope_metrics *s2 = po->resource_metrics[a2]->scope_metrics[b2];
                                for (size_t c2 = 0; c2 < s2->n_metrics; c2++)
                                    cr_assert_str_neq(s2->metrics[c2]->name, sm->metrics[c]->name);
                            }
                    }
            }
    }
    cr_assert_eq(pts, total);
    parts_free(&p);
    /* streamID: points of one metric spread, none lost, metric fields kept */
    route(OT_METRICS, LB_KEY_STREAMID, &req->base, 3, &p);
    cr_assert_eq(p.n, 3);
    pts = 0;
    for (size_t q = 0; q < p.n; q++) {
        pts += ot_count_items(OT_METRICS, p.msg[q]);
        const ot_metrics_req *pr = (const ot_metrics_req *)p.msg[q];
        for (size_t a = 0; a < pr->n_resource_metrics; a++)
            for (size_t b = 0; b < pr->resource_metrics[a]->n_scope_metrics; b++) {
                const ot_scope_metrics *sm = pr->resource_metrics[a]->scope_metrics[b];
                for (size_t c = 0; c < sm->n_metrics; c++) {
                    const ot_metric *m = sm->metrics[c];
                    cr_assert(m->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET);
                    if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
                        bool found = false;
                        const ot_scope_metrics *os = req->resource_metrics[0]->scope_metrics[0];
                        for (size_t k = 0; k < os->n_metrics && !found; k++)
                            if (!strcmp(os->metrics[k]->name, m->name) && os->metrics[k]->sum) {
                                found = true;
                                cr_assert_eq(os->metrics[k]->sum->aggregation_temporality,
                                             m->sum->aggregation_temporality);
                                cr_assert_eq(os->metrics[k]->sum->is_monotonic,
                                             m->sum->is_monotonic);
                            }
                        cr_assert(found);
                    }
                }
            }
    }
    cr_assert_eq(pts, total);
    parts_free(&p);
    /* service: one resource, so one part, unchanged */
    route(OT_METRICS, LB_KEY_SERVICE, &req->base, 3, &p);
    cr_assert_eq(p.n, 1);
    cr_assert_geq(p.whole_to, 0);
    parts_free(&p);
}

Test(lb_route, logs_by_trace_id)
{
    ot_logs_req *req = ot_sample_logs(A, 300, 2);
    parts p;
    route(OT_LOGS, LB_KEY_TRACEID, &req->base, 3, &p);
    size_t n = 0;
    for (size_t q = 0; q < p.n; q++)
        n += ot_count_items(OT_LOGS, p.msg[q]);
    cr_assert_eq(n, ot_count_items(OT_LOGS, &req->base));
    cr_assert_gt(p.n, 1);
    parts_free(&p);
}

static int never(void *ctx, uint32_t b, const uint8_t *w, size_t len, size_t items)
{
    (void)ctx, (void)b, (void)w, (void)len, (void)items;
    cr_assert_fail("emitted from malformed bytes");
    return 0;
}

Test(lb_route, refuses_malformed_bytes)
{
    ot_trace_req *req = traces_3res();
    size_t len;
    uint8_t *w = pack(&req->base, &len);
    lb_ring *r = lb_ring_new(NAMES, 3);
    ot_err err = {{0}};
    /* cut inside the first resource entry */
    cr_assert_eq(lb_route(OT_TRACES, LB_KEY_TRACEID, r, w, len / 3, NULL, never, NULL, &err), -1);
    static const uint8_t junk[] = {0x0a, 0x05, 0x12, 0x10, 0x01};
    cr_assert_eq(lb_route(OT_TRACES, LB_KEY_TRACEID, r, junk, sizeof junk, NULL, never, NULL, &err), -1);
    lb_ring_free(r);
}

Test(lb_route, keys_per_signal)
{
    cr_assert(lb_key_valid(OT_TRACES, LB_KEY_TRACEID));
    cr_assert(!lb_key_valid(OT_METRICS, LB_KEY_TRACEID));
    cr_assert(lb_key_valid(OT_METRICS, LB_KEY_STREAMID));
    cr_assert(!lb_key_valid(OT_TRACES, LB_KEY_METRIC));
    cr_assert(lb_key_valid(OT_LOGS, LB_KEY_SERVICE));
}

/* ---- DNS ------------------------------------------------------------------- */

Test(lb_dns, builds_the_query_of_rfc1035)
{
    uint8_t q[300];
    ot_err err = {{0}};
    int n = lb_dns_build_query(q, sizeof q, 0x1234, "gw.example.com.", LB_DNS_AAAA, &err);
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                   2, 'g', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                   3, 'c', 'o', 'm', 0, 0, 28, 0, 1};
    cr_assert_eq(n, (int)sizeof want);
    cr_assert_arr_eq(q, want, sizeof want);
    cr_assert_eq(lb_dns_build_query(q, sizeof q, 1, "a..b", LB_DNS_A, &err), -1);
    cr_assert_eq(lb_dns_build_query(q, sizeof q, 1, "", LB_DNS_A, &err), -1);
    char big[80];
    memset(big, 'x', 70);
    big[70] = 0;
    cr_assert_eq(lb_dns_build_query(q, sizeof q, 1, big, LB_DNS_A, &err), -1, "63-byte label limit");
}

/* A response as a server writes it: header, the question, then answers
 * whose owner names point back at the question (0xc00c). */
static size_t response(uint8_t *m, uint16_t id, int rcode, bool cname)
{
    size_t o = 0;
    uint8_t hdr[12] = {(uint8_t)(id >> 8), (uint8_t)id, 0x81, (uint8_t)(0x80 | rcode), 0, 1, 0,
                       (uint8_t)(cname ? 4 : 3), 0, 0, 0, 0};
    memcpy(m, hdr, 12);
    o = 12;
    static const uint8_t qn[] = {2, 'g', 'w', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    memcpy(m + o, qn, sizeof qn);
    o += sizeof qn;
    if (cname) {
        /* gw.test CNAME real.test; the A records then belong to real.test */
        static const uint8_t cn[] = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7,
                                     4, 'r', 'e', 'a', 'l', 0xc0, 15};
        memcpy(m + o, cn, sizeof cn);
        o += sizeof cn;
    }
    for (int i = 0; i < 2; i++) {
        uint8_t a[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, (uint8_t)(i + 1)};
        memcpy(m + o, a, sizeof a);
        o += sizeof a;
    }
    /* an AAAA record among them, not asked for */
    uint8_t aaaa[28] = {0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 30, 0, 16, 0x20, 0x01, 0x0d, 0xb8};
    aaaa[27] = 1;
    memcpy(m + o, aaaa, sizeof aaaa);
    o += sizeof aaaa;
    return o;
}

Test(lb_dns, parses_answers)
{
    uint8_t m[512];
    lb_dns_addr out[8];
    ot_err err = {{0}};
    size_t len = response(m, 77, 0, false);
    cr_assert_eq(lb_dns_parse_response(m, len, 77, LB_DNS_A, out, 8, &err), 2, "%s", err.msg);
    cr_assert_str_eq(out[0], "10.0.0.1");
    cr_assert_str_eq(out[1], "10.0.0.2");
    cr_assert_eq(lb_dns_parse_response(m, len, 77, LB_DNS_AAAA, out, 8, &err), 1);
    cr_assert_str_eq(out[0], "2001:db8::1");
    len = response(m, 77, 0, true);
    cr_assert_eq(lb_dns_parse_response(m, len, 77, LB_DNS_A, out, 8, &err), 2, "%s", err.msg);
    cr_assert_eq(lb_dns_parse_response(m, len, 77, LB_DNS_A, out, 1, &err), 1, "max is kept");
}

Test(lb_dns, refuses_bad_messages)
{
    uint8_t m[512];
    lb_dns_addr out[8];
    ot_err err = {{0}};
    size_t len = response(m, 9, 0, false);
    cr_assert_eq(lb_dns_parse_response(m, len, 10, LB_DNS_A, out, 8, &err), -1, "other id");
    for (size_t cut = 0; cut < len; cut++) {
        int n = lb_dns_parse_response(m, cut, 9, LB_DNS_A, out, 8, &err);
        cr_assert(n == -1, "a message cut at %zu parsed (%d)", cut, n);
    }
    m[2] &= 0x7f; /* a query, not a response */
    cr_assert_eq(lb_dns_parse_response(m, len, 9, LB_DNS_A, out, 8, &err), -1);
    len = response(m, 9, 2, false);
    cr_assert_eq(lb_dns_parse_response(m, len, 9, LB_DNS_A, out, 8, &err), -1);
    cr_assert(strstr(err.msg, "SERVFAIL"), "%s", err.msg);
    len = response(m, 9, 3, false);
    cr_assert_eq(lb_dns_parse_response(m, len, 9, LB_DNS_A, out, 8, &err), 0, "NXDOMAIN: none");
    /* an A record of 5 bytes */
    len = response(m, 9, 0, false);
    m[12 + 13 + 11] = 5;
    cr_assert_eq(lb_dns_parse_response(m, len, 9, LB_DNS_A, out, 8, &err), -1);
}

Test(lb_dns, reads_resolv_conf)
{
    char path[] = "/tmp/lb-resolv-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char text[] = "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char out[64];
    cr_assert_eq(lb_dns_system_server(path, out, sizeof out), 0);
    cr_assert_str_eq(out, "192.0.2.53");
    unlink(path);
    cr_assert_eq(lb_dns_system_server(path, out, sizeof out), -1);
}

/* ---- EndpointSlices -------------------------------------------------------- */

static void want_eps(const lb_k8s_state *st, const char *const *want, size_t n_want)
{
    static const char *const ports[] = {"4317"};
    size_t n = 0;
    char **eps = lb_k8s_endpoints(st, ports, 1, &n);
    cr_assert_eq(n, n_want, "%zu endpoints, want %zu", n, n_want);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(eps[i], want[i]);
    lb_k8s_endpoints_free(eps, n);
}

Test(lb_k8s, list_then_events)
{
    lb_k8s_state st = {0};
    ot_err err = {{0}};
    const char *list =
        "{\"kind\":\"EndpointSliceList\",\"metadata\":{\"resourceVersion\":\"41\"},\"items\":["
        "{\"metadata\":{\"name\":\"a\"},\"addressType\":\"IPv4\",\"endpoints\":["
        "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":true}},"
        "{\"addresses\":[\"10.0.0.9\"],\"conditions\":{\"ready\":false}},"
        "{\"addresses\":[\"10.0.0.1\"]}]},"
        "{\"metadata\":{\"name\":\"v6\"},\"addressType\":\"IPv6\",\"endpoints\":["
        "{\"addresses\":[\"fd00::1\"]}]},"
        "{\"metadata\":{\"name\":\"f\"},\"addressType\":\"FQDN\",\"endpoints\":["
        "{\"addresses\":[\"gw.example\"]}]}]}";
    cr_assert_eq(lb_k8s_apply_list(&st, list, strlen(list), &err), 0, "%s", err.msg);
    cr_assert_str_eq(st.rv, "41");
    const char *w1[] = {"10.0.0.1:4317", "10.0.0.2:4317", "[fd00::1]:4317"};
    want_eps(&st, w1, 3);
    const char *add = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\","
                      "\"resourceVersion\":\"42\"},\"endpoints\":[{\"addresses\":[\"10.0.0.3\","
                      "\"10.0.0.1\"]}]}}";
    cr_assert_eq(lb_k8s_apply_event(&st, add, strlen(add), &err), LB_K8S_CHANGED, "%s", err.msg);
    cr_assert_str_eq(st.rv, "42");
    const char *w2[] = {"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317", "[fd00::1]:4317"};
    want_eps(&st, w2, 4);
    const char *del = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
    cr_assert_eq(lb_k8s_apply_event(&st, del, strlen(del), &err), LB_K8S_CHANGED);
    const char *w3[] = {"10.0.0.1:4317", "10.0.0.3:4317", "[fd00::1]:4317"};
    want_eps(&st, w3, 3);
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"50\"}}}";
    cr_assert_eq(lb_k8s_apply_event(&st, bm, strlen(bm), &err), LB_K8S_SAME);
    cr_assert_str_eq(st.rv, "50");
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}";
    cr_assert_eq(lb_k8s_apply_event(&st, gone, strlen(gone), &err), LB_K8S_RELIST);
    cr_assert_eq(lb_k8s_apply_event(&st, "{", 1, &err), -1);
    cr_assert_eq(lb_k8s_apply_event(&st, "{\"type\":\"X\",\"object\":{}}", 26, &err), -1);
    cr_assert_eq(lb_k8s_apply_list(&st, "{\"items\":3}", 11, &err), -1);
    want_eps(&st, w3, 3); /* a bad list keeps the state */
    lb_k8s_state_free(&st);
}
