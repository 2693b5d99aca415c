/* fuzz_jaeger_thrift.c: whatever OTLP request the agent accepts, the jaeger
 * exporter must turn into Thrift that a reader can walk to the end: every
 * field where jaeger.thrift puts it, every length inside the body, and the
 * same spans, ids and counts as the request. A reader written here (not the
 * encoder's code run backwards) checks that. The api_v2 bytes of the same
 * batches must unpack to the same span counts and be, byte for byte, what
 * protobuf-c packs from the same structs. Input: OTLP protobuf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/jaeger/jaeger.h"
#include "model/batch.h"

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c))                                                                  \
            abort();                                                               \
    } while (0)

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static uint64_t be(rd *r, int n)
{
    CHECK(r->end - r->p >= n);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | *r->p++;
    return v;
}

/* Field header: type, and id unless it is the stop byte. */
static int field(rd *r, int *id)
{
    int t = (int)be(r, 1);
    *id = t ? (int)(int16_t)be(r, 2) : 0;
    return t;
}

static size_t string(rd *r, const uint8_t **s)
{
    uint32_t n = (uint32_t)be(r, 4);
    CHECK((size_t)(r->end - r->p) >= n);
    *s = r->p;
    r->p += n;
    return n;
}

static size_t list_of_structs(rd *r)
{
    CHECK(be(r, 1) == 12);
    uint32_t n = (uint32_t)be(r, 4);
    CHECK(n <= (size_t)(r->end - r->p)); /* every struct is at least a stop byte */
    return n;
}

/* A Tag: key and type required, exactly the one value field its type names. */
static void tag(rd *r)
{
    static const int value_field[] = {3, 4, 5, 6, 7};     /* by TagType */
    static const int value_type[] = {11, 4, 2, 10, 11};
    int id, t, seen = 0, vtype = -1, values = 0, vid = 0;
    const uint8_t *s;
    while ((t = field(r, &id)) != 0) {
        if (id == 1 && t == 11) {
            string(r, &s);
            seen |= 1;
        } else if (id == 2 && t == 8) {
            vtype = (int)(int32_t)be(r, 4);
            CHECK(vtype >= 0 && vtype <= 4);
            seen |= 2;
        } else {
            CHECK(id >= 3 && id <= 7);
            CHECK(t == value_type[id - 3]);
            if (t == 11)
                string(r, &s);
            else
                be(r, t == 2 ? 1 : 8);
            values++;
            vid = id;
        }
    }
    CHECK(seen == 3 && values == 1 && vid == value_field[vtype]);
}

static size_t tags(rd *r)
{
    size_t n = list_of_structs(r);
    for (size_t i = 0; i < n; i++)
        tag(r);
    return n;
}

static void span(rd *r, const ot_jaeger_span *js)
{
    int id, t;
    unsigned seen = 0;
    int64_t v[10] = {0};
    size_t n_refs = 0, n_tags = 0, n_logs = 0;
    const uint8_t *s;
    while ((t = field(r, &id)) != 0) {
        CHECK(id >= 1 && id <= 11 && !(seen & (1u << id)));
        seen |= 1u << id;
        switch (id) {
        case 1: case 2: case 3: case 4: case 8: case 9:
            CHECK(t == 10);
            v[id] = (int64_t)be(r, 8);
            break;
        case 5: {
            CHECK(t == 11);
            size_t n = string(r, &s);
            CHECK(n == strlen(js->operation_name) && memcmp(s, js->operation_name, n) == 0);
            break;
        }
        case 6:
            CHECK(t == 15);
            n_refs = list_of_structs(r);
            for (size_t i = 0; i < n_refs; i++) {
                int rid, rt;
                unsigned rseen = 0;
                while ((rt = field(r, &rid)) != 0) {
                    CHECK(rid >= 1 && rid <= 4 && rt == (rid == 1 ? 8 : 10));
                    rseen |= 1u << rid;
                    be(r, rid == 1 ? 4 : 8);
                }
                CHECK(rseen == 0x1e);
            }
            break;
        case 7:
            CHECK(t == 8);
            CHECK((uint32_t)be(r, 4) == js->flags);
            break;
        case 10:
            CHECK(t == 15);
            n_tags = tags(r);
            break;
        case 11:
            CHECK(t == 15);
            n_logs = list_of_structs(r);
            for (size_t i = 0; i < n_logs; i++) {
                int lid, lt;
                unsigned lseen = 0;
                while ((lt = field(r, &lid)) != 0) {
                    CHECK((lid == 1 && lt == 10) || (lid == 2 && lt == 15));
                    lseen |= 1u << lid;
                    if (lid == 1)
                        be(r, 8);
                    else
                        CHECK(tags(r) == js->logs[i]->n_fields);
                }
                CHECK(lseen == 6);
            }
            break;
        default: abort();
        }
    }
    CHECK((seen & 0x3be) == 0x3be); /* 1-5, 7-9: the required fields */
    CHECK(n_refs == js->n_references && n_tags == js->n_tags && n_logs == js->n_logs);
    /* The ids: the request's bytes, read back as two big-endian halves. */
    uint8_t tid[16], sid[8];
    for (int i = 0; i < 8; i++) {
        tid[i] = (uint8_t)((uint64_t)v[2] >> (56 - 8 * i));
        tid[8 + i] = (uint8_t)((uint64_t)v[1] >> (56 - 8 * i));
        sid[i] = (uint8_t)((uint64_t)v[3] >> (56 - 8 * i));
    }
    CHECK(js->trace_id.len == 16 && memcmp(tid, js->trace_id.data, 16) == 0);
    CHECK(js->span_id.len == 8 && memcmp(sid, js->span_id.data, 8) == 0);
    int64_t parent = 0;
    for (size_t i = 0; i < js->n_references; i++) {
        const Jaeger__ApiV2__SpanRef *ref = js->references[i];
        if (ref->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && ref->trace_id.len == 16 &&
            memcmp(ref->trace_id.data, tid, 16) == 0) {
            for (int k = 0; k < 8; k++)
                parent = (int64_t)(((uint64_t)parent << 8) | ref->span_id.data[k]);
            break;
        }
    }
    CHECK(v[4] == parent);
    CHECK(v[8] == js->start_time->seconds * 1000000 + js->start_time->nanos / 1000);
    CHECK(v[9] == js->duration->seconds * 1000000 + js->duration->nanos / 1000 && v[9] >= 0);
}

static void batch(const uint8_t *p, size_t n, const ot_jaeger_batch *jb)
{
    rd r = {p, p + n};
    int id;
    CHECK(field(&r, &id) == 12 && id == 1);
    const uint8_t *s;
    CHECK(field(&r, &id) == 11 && id == 1);
    size_t sl = string(&r, &s);
    CHECK(sl == strlen(jb->process->service_name) && memcmp(s, jb->process->service_name, sl) == 0);
    int t = field(&r, &id);
    if (t) {
        CHECK(t == 15 && id == 2);
        CHECK(tags(&r) == jb->process->n_tags);
        CHECK(field(&r, &id) == 0);
    } else {
        CHECK(jb->process->n_tags == 0);
    }
    CHECK(field(&r, &id) == 15 && id == 2);
    size_t spans = list_of_structs(&r);
    CHECK(spans == jb->n_spans);
    for (size_t i = 0; i < spans; i++)
        span(&r, jb->spans[i]);
    CHECK(field(&r, &id) == 0);
    CHECK(r.p == r.end);
}

/* The OTLP side: the batch's spans in order, ids as the exporter must
 * size them. */
static void same_as_request(const ot_resource_spans *rs, const ot_jaeger_batch *jb)
{
    size_t k = 0;
    for (size_t i = 0; i < rs->n_scope_spans; i++)
        for (size_t j = 0; j < rs->scope_spans[i]->n_spans; j++, k++) {
            const ot_span *s = rs->scope_spans[i]->spans[j];
            CHECK(k < jb->n_spans);
            const ot_jaeger_span *js = jb->spans[k];
            if (s->trace_id.len == 16)
                CHECK(memcmp(s->trace_id.data, js->trace_id.data, 16) == 0);
            if (s->span_id.len == 8)
                CHECK(memcmp(s->span_id.data, js->span_id.data, 8) == 0);
            CHECK(js->n_logs == s->n_events);
            CHECK(js->n_references <= s->n_links + 1);
            CHECK(js->n_tags >= s->n_attributes);
        }
    CHECK(k == jb->n_spans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ot_err err;
    ot_batch *b = ot_batch_decode(OT_TRACES, data, size, &err);
    if (!b)
        return 0;
    const ot_trace_req *req = (const ot_trace_req *)ot_batch_msg(b, &err);
    ot_jaeger_out out;
    CHECK(req && ot_jaeger_translate(req, b->arena, &out, &err) == 0);
    ot_buf buf = OT_BUF_INIT;
    size_t k = 0, spans = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const ot_resource_spans *rs = req->resource_spans[i];
        size_t n = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            n += rs->scope_spans[j]->n_spans;
        if (!n)
            continue;
        CHECK(k < out.n_batches);
        same_as_request(rs, out.batches[k]);
        spans += n;
        k++;
    }
    CHECK(k == out.n_batches && spans == out.n_spans);
    for (size_t i = 0; i < out.n_batches; i++) {
        ot_buf_reset(&buf);
        CHECK(ot_jaeger_thrift_batch(out.batches[i], &buf, &err) == 0);
        batch((const uint8_t *)buf.data, buf.len, out.batches[i]);
        ot_buf_reset(&buf);
        CHECK(ot_jaeger_proto_pack(out.batches[i], &buf, &err) == 0);
        Jaeger__ApiV2__PostSpansRequest *r =
            jaeger__api_v2__post_spans_request__unpack(NULL, buf.len, (const uint8_t *)buf.data);
        CHECK(r && r->batch && r->batch->n_spans == out.batches[i]->n_spans);
        jaeger__api_v2__post_spans_request__free_unpacked(r, NULL);
        /* apiv2.c's hand-written bytes are protobuf-c's, exactly */
        Jaeger__ApiV2__PostSpansRequest req2 = JAEGER__API_V2__POST_SPANS_REQUEST__INIT;
        req2.batch = out.batches[i];
        size_t n = jaeger__api_v2__post_spans_request__get_packed_size(&req2);
        uint8_t *ref = malloc(n + 1);
        CHECK(ref);
        CHECK(jaeger__api_v2__post_spans_request__pack(&req2, ref) == n);
        CHECK(n == buf.len && memcmp(ref, buf.data, n) == 0);
        free(ref);
    }
    ot_buf_free(&buf);
    ot_batch_unref(b);
    return 0;
}
