/* wire.c: the leaves of an OTLP request (spans, metrics, log records) one
 * at a time, from the request's protobuf bytes. Decoding a whole batch
 * into protobuf-c structs takes about seven times its wire size (24 MB for
 * 8192 spans) per sender; decoding one leaf at a time into an arena the
 * caller resets keeps a sender to its resources, scopes and one request's
 * worth of leaves.
 *
 * The three requests have one shape: field 1 of the request is repeated
 * Resource<X> {resource = 1, scope_<x> = 2}, and Scope<X> is {scope = 1,
 * leaves = 2}. A resource or scope written twice is merged by protobuf
 * rules, which this walk does not do: it declines (returns 1) and the
 * caller decodes the whole request instead. */
#include <string.h>

#include "dd.h"

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

typedef struct fld {
    uint32_t num;
    int wt;
    const uint8_t *p; /* length-delimited: the bytes */
    size_t n;
} fld;

/* The next field at *p: 1, 0 at the end, -1 when the bytes do not parse. */
static int next(const uint8_t **p, const uint8_t *end, fld *f)
{
    if (*p >= end)
        return 0;
    uint64_t key, v;
    if (varint(p, end, &key) < 0)
        return -1;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    f->p = NULL;
    f->n = 0;
    switch (f->wt) {
    case 0:
        return varint(p, end, &v) < 0 ? -1 : 1;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 1;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 1;
    case 2:
        if (varint(p, end, &v) < 0 || v > (uint64_t)(end - *p))
            return -1;
        f->p = *p;
        f->n = (size_t)v;
        *p += v;
        return 1;
    default:
        return -1;
    }
}

/* The one field num of a message (length-delimited), or none. 1 when it
 * is there twice (or not length-delimited): the caller declines. */
static int once(const uint8_t *p, size_t n, uint32_t num, fld *out)
{
    const uint8_t *end = p + n;
    fld f;
    int rc, seen = 0;
    memset(out, 0, sizeof *out);
    while ((rc = next(&p, end, &f)) == 1) {
        if (f.num != num)
            continue;
        if (seen++ || f.wt != 2)
            return 1;
        *out = f;
    }
    return rc < 0 ? -1 : 0;
}

int dd_wire_leaves(ot_signal s, const uint8_t *wire, size_t len, ot_arena *keep,
                   dd_leaf_fn fn, void *ctx, ot_err *err)
{
    static const ProtobufCMessageDescriptor *const res_desc =
        &opentelemetry__proto__resource__v1__resource__descriptor;
    static const ProtobufCMessageDescriptor *const scope_desc =
        &opentelemetry__proto__common__v1__instrumentation_scope__descriptor;
    (void)s;
    ProtobufCAllocator *pa = ot_arena_pb_allocator(keep);
    const uint8_t *p = wire, *end = wire + len;
    fld rf;
    int rc;
    size_t ri = 0;
    /* The first pass only checks that the walk can be made: declining half
     * way would have sent half the leaves. */
    for (int pass = 0; pass < 2; pass++) {
        p = wire;
        ri = 0;
        while ((rc = next(&p, end, &rf)) == 1) {
            if (rf.num != 1)
                continue;
            if (rf.wt != 2)
                return 1;
            fld resf;
            int o = once(rf.p, rf.n, 1, &resf);
            if (o)
                return o < 0 ? ot_err_set(err, "request bytes do not parse") : 1;
            const ot_resource *res = NULL;
            if (pass == 1 && resf.p) {
                res = (const ot_resource *)protobuf_c_message_unpack(res_desc, pa, resf.n, resf.p);
                if (!res)
                    return 1;
            }
            const uint8_t *q = rf.p, *qe = rf.p + rf.n;
            fld sf;
            while ((rc = next(&q, qe, &sf)) == 1) {
                if (sf.num != 2)
                    continue;
                if (sf.wt != 2)
                    return 1;
                fld scf;
                o = once(sf.p, sf.n, 1, &scf);
                if (o)
                    return o < 0 ? ot_err_set(err, "request bytes do not parse") : 1;
                const ot_scope *scope = NULL;
                if (pass == 1 && scf.p &&
                    !(scope = (const ot_scope *)protobuf_c_message_unpack(scope_desc, pa, scf.n,
                                                                          scf.p)))
                    return 1;
                const uint8_t *l = sf.p, *le = sf.p + sf.n;
                fld lf;
                while ((rc = next(&l, le, &lf)) == 1) {
                    if (lf.num != 2)
                        continue;
                    if (lf.wt != 2)
                        return 1;
                    if (pass == 1) {
                        int r = fn(ctx, res, ri, scope, lf.p, lf.n);
                        if (r)
                            return r < 0 ? -1 : 2;
                    }
                }
                if (rc < 0)
                    return ot_err_set(err, "request bytes do not parse");
            }
            if (rc < 0)
                return ot_err_set(err, "request bytes do not parse");
            ri++;
        }
        if (rc < 0)
            return ot_err_set(err, "request bytes do not parse");
    }
    return 0;
}

/* Span.trace_id (field 1) without decoding the span; empty when absent. */
ProtobufCBinaryData dd_wire_trace_id(const uint8_t *span, size_t len)
{
    const uint8_t *p = span, *end = span + len;
    fld f;
    ProtobufCBinaryData id = {0, NULL};
    while (next(&p, end, &f) == 1)
        if (f.num == 1 && f.wt == 2)
            id = (ProtobufCBinaryData){f.n, (uint8_t *)f.p}; /* the last one wins */
    return id;
}

void dd_put_varint(ot_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    ot_buf_append(b, t, n);
}

static void put_field(ot_buf *b, uint32_t num, const void *p, size_t n)
{
    dd_put_varint(b, (uint64_t)num << 3 | 2);
    dd_put_varint(b, n);
    ot_buf_append(b, p, n);
}

/* The bytes of one field as they came: key, and the value. */
static void put_raw(ot_buf *b, const uint8_t *start, const uint8_t *end)
{
    ot_buf_append(b, start, (size_t)(end - start));
}

int dd_wire_rewrite(const uint8_t *wire, size_t len, ot_arena *keep, dd_rewrite_fn fn, void *ctx,
                    ot_buf *out, size_t *leaves, ot_err *err)
{
    static const ProtobufCMessageDescriptor *const res_desc =
        &opentelemetry__proto__resource__v1__resource__descriptor;
    static const ProtobufCMessageDescriptor *const scope_desc =
        &opentelemetry__proto__common__v1__instrumentation_scope__descriptor;
    ProtobufCAllocator *pa = ot_arena_pb_allocator(keep);
    const uint8_t *p = wire, *end = wire + len;
    ot_buf rbuf = OT_BUF_INIT, sbuf = OT_BUF_INIT;
    int rc, ret = 0;
    fld rf;
    *leaves = 0;
    /* declines are found before anything is written */
    for (const uint8_t *c = wire; (rc = next(&c, end, &rf)) == 1;) {
        fld x;
        if (rf.num != 1)
            continue;
        if (rf.wt != 2 || once(rf.p, rf.n, 1, &x))
            return 1;
        const uint8_t *q = rf.p, *qe = rf.p + rf.n;
        while ((rc = next(&q, qe, &x)) == 1) {
            fld y;
            if (x.num == 2 && (x.wt != 2 || once(x.p, x.n, 1, &y)))
                return 1;
        }
        if (rc < 0)
            return 1;
    }
    if (rc < 0)
        return ot_err_set(err, "request bytes do not parse");
    const uint8_t *fstart = p;
    while ((rc = next(&p, end, &rf)) == 1 && ret == 0) {
        if (rf.num != 1) {
            put_raw(out, fstart, p);
            fstart = p;
            continue;
        }
        fld resf;
        once(rf.p, rf.n, 1, &resf);
        const ot_resource *res = resf.p ? (const ot_resource *)protobuf_c_message_unpack(
                                              res_desc, pa, resf.n, resf.p)
                                        : NULL;
        if (resf.p && !res) {
            ret = 1;
            break;
        }
        ot_buf_reset(&rbuf);
        size_t res_kept = 0;
        const uint8_t *q = rf.p, *qe = rf.p + rf.n, *qstart = q;
        fld sf;
        while ((rc = next(&q, qe, &sf)) == 1 && ret == 0) {
            if (sf.num != 2) {
                put_raw(&rbuf, qstart, q); /* resource, schema_url, unknown: as they came */
                qstart = q;
                continue;
            }
            fld scf;
            once(sf.p, sf.n, 1, &scf);
            const ot_scope *scope = scf.p ? (const ot_scope *)protobuf_c_message_unpack(
                                                scope_desc, pa, scf.n, scf.p)
                                          : NULL;
            if (scf.p && !scope) {
                ret = 1;
                break;
            }
            ot_buf_reset(&sbuf);
            const uint8_t *l = sf.p, *le = sf.p + sf.n, *lstart = l;
            fld lf;
            size_t kept = 0;
            while ((rc = next(&l, le, &lf)) == 1) {
                if (lf.num != 2) {
                    put_raw(&sbuf, lstart, l);
                    lstart = l;
                    continue;
                }
                ot_buf leaf = OT_BUF_INIT;
                int r = fn(ctx, res, scope, lf.p, lf.n, &leaf);
                if (r < 0 || leaf.oom) {
                    ot_buf_free(&leaf);
                    ret = -1;
                    break;
                }
                if (r == 0 && leaf.len) { /* kept, as rewritten */
                    put_field(&sbuf, 2, leaf.data, leaf.len);
                    kept++;
                }
                ot_buf_free(&leaf);
                lstart = l;
            }
            if (ret == 0 && rc < 0)
                ret = -1;
            if (ret == 0 && kept) {
                put_field(&rbuf, 2, sbuf.data, sbuf.len);
                *leaves += kept;
                res_kept += kept;
            }
            qstart = q;
        }
        if (ret == 0 && rc < 0)
            ret = -1;
        if (ret == 0 && res_kept) /* a resource left without leaves goes */
            put_field(out, 1, rbuf.data, rbuf.len);
        fstart = p;
    }
    if (ret == 0 && rc < 0)
        ret = -1;
    ot_buf_free(&rbuf);
    ot_buf_free(&sbuf);
    if (ret < 0 && !err->msg[0])
        ot_err_set(err, "out of memory");
    if (ret == 0 && out->oom)
        ret = ot_err_set(err, "out of memory");
    return ret;
}

/* ---- cutting a request into pieces ------------------------------------- */

/* Data points of a Metric's bytes: data_points (field 1) of the one of
 * gauge 5, sum 7, histogram 9, exponential_histogram 10, summary 11 it
 * holds. SIZE_MAX (unknown: the batch counts by decoding) when it holds
 * more than one, which protobuf merges or replaces by its own rules. */
static size_t metric_points(const uint8_t *m, size_t n)
{
    const uint8_t *p = m, *end = m + n;
    fld f, data = {0};
    int seen = 0;
    while (next(&p, end, &f) == 1)
        if (f.num == 5 || f.num == 7 || f.num == 9 || f.num == 10 || f.num == 11) {
            data = f;
            seen++;
        }
    if (seen > 1 || (seen && data.wt != 2))
        return SIZE_MAX;
    if (!data.p)
        return 0;
    size_t c = 0;
    p = data.p;
    end = data.p + data.n;
    while (next(&p, end, &f) == 1)
        c += f.num == 1;
    return c;
}

typedef struct cut {
    ot_buf out, rbuf, sbuf;
    ot_buf rh, sh; /* non-leaf fields of the open resource, scope */
    size_t leaves, items, bytes;
    bool r_open, s_open;
} cut;

static void close_scope(cut *c)
{
    if (c->s_open && c->sbuf.len) {
        /* the head stays as it is: the scope may open again in the next piece */
        ot_buf tmp = OT_BUF_INIT;
        ot_buf_append(&tmp, c->sh.data, c->sh.len);
        ot_buf_append(&tmp, c->sbuf.data, c->sbuf.len);
        put_field(&c->rbuf, 2, tmp.data, tmp.len);
        ot_buf_free(&tmp);
    }
    c->s_open = false;
    ot_buf_reset(&c->sbuf);
}

static void close_resource(cut *c)
{
    close_scope(c);
    if (c->r_open && c->rbuf.len) {
        ot_buf tmp = OT_BUF_INIT;
        ot_buf_append(&tmp, c->rh.data, c->rh.len);
        ot_buf_append(&tmp, c->rbuf.data, c->rbuf.len);
        put_field(&c->out, 1, tmp.data, tmp.len);
        ot_buf_free(&tmp);
    }
    c->r_open = false;
    ot_buf_reset(&c->rbuf);
}

int dd_wire_split(ot_signal s, const uint8_t *wire, size_t len, size_t max_leaves,
                  size_t max_bytes, dd_piece_fn emit, void *ctx, ot_err *err)
{
    const uint8_t *p = wire, *end = wire + len;
    cut c;
    memset(&c, 0, sizeof c);
    fld rf;
    int rc, ret = 0;
    /* The non-leaf fields of each resource and scope go into every piece
     * that holds its leaves; their order inside a message does not matter. */
    while (ret == 0 && (rc = next(&p, end, &rf)) == 1) {
        if (rf.num != 1 || rf.wt != 2)
            continue; /* unknown fields of the request are not kept */
        ot_buf_reset(&c.rh);
        const uint8_t *q = rf.p, *qe = rf.p + rf.n, *qs = q;
        fld sf;
        while ((rc = next(&q, qe, &sf)) == 1) {
            if (sf.num != 2)
                put_raw(&c.rh, qs, q);
            qs = q;
        }
        if (rc < 0)
            break;
        c.r_open = true;
        q = rf.p;
        while (ret == 0 && (rc = next(&q, qe, &sf)) == 1) {
            if (sf.num != 2 || sf.wt != 2)
                continue;
            ot_buf_reset(&c.sh);
            const uint8_t *l = sf.p, *le = sf.p + sf.n, *ls = l;
            fld lf;
            while ((rc = next(&l, le, &lf)) == 1) {
                if (lf.num != 2)
                    put_raw(&c.sh, ls, l);
                ls = l;
            }
            if (rc < 0)
                break;
            c.s_open = true;
            l = sf.p;
            while (ret == 0 && (rc = next(&l, le, &lf)) == 1) {
                if (lf.num != 2 || lf.wt != 2)
                    continue;
                if (c.leaves && (c.leaves >= max_leaves || c.bytes + lf.n > max_bytes)) {
                    /* this piece is full: send it, and open the same
                     * resource and scope in the next */
                    close_resource(&c);
                    if (c.out.oom) {
                        ret = ot_err_set(err, "out of memory");
                        break;
                    }
                    ret = emit(ctx, (const uint8_t *)c.out.data, c.out.len, c.items);
                    ot_buf_reset(&c.out);
                    c.leaves = c.items = c.bytes = 0;
                    c.r_open = c.s_open = true;
                    if (ret)
                        break;
                }
                put_field(&c.sbuf, 2, lf.p, lf.n);
                c.leaves++;
                c.bytes += lf.n;
                size_t k = s == OT_METRICS ? metric_points(lf.p, lf.n) : 1;
                c.items = c.items == SIZE_MAX || k == SIZE_MAX ? SIZE_MAX : c.items + k;
            }
            if (ret == 0 && rc < 0)
                break;
            close_scope(&c);
            c.s_open = false;
        }
        if (ret == 0 && rc < 0)
            break;
        close_resource(&c);
    }
    if (ret == 0 && rc < 0)
        ret = ot_err_set(err, "request bytes do not parse");
    if (ret == 0 && c.leaves) {
        if (c.out.oom)
            ret = ot_err_set(err, "out of memory");
        else
            ret = emit(ctx, (const uint8_t *)c.out.data, c.out.len, c.items);
    }
    ot_buf_free(&c.out);
    ot_buf_free(&c.rbuf);
    ot_buf_free(&c.sbuf);
    ot_buf_free(&c.rh);
    ot_buf_free(&c.sh);
    return ret;
}
