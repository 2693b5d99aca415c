/* direct.c: a queued batch's protobuf bytes straight to the bytes Jaeger
 * is sent (Thrift or api_v2), the exporter's hot path. The reference path
 * (wire.c or translate.c, then thrift.c or apiv2.c) builds an api_v2
 * struct per span, tag, log and time, copies every string into an arena
 * and measures it again in each encoder; on realistic spans that was most
 * of the exporter's CPU, and at saturation the arenas of the senders held
 * tens of MiB. This walk reads each span into small reusable views
 * (direct_int.h) that point into the request, its tags written in the
 * encoding being made as they are read (the readers: direct_read.h), and
 * direct_out.c writes the rest around them: nothing per span is allocated.
 *
 * It reads every field where it lies, and declines what it is not sure to
 * read exactly as protobuf-c would (a singular message sent twice, which
 * protobuf-c merges; two members of a value's oneof; a wire type the
 * schema does not have; bytes that do not parse): the caller then decodes
 * and takes the reference path (translate.c). Unit tests and a fuzz target
 * compare the two byte for byte. Fields are read with the agent's shared
 * reader (model/pbedit.h). (It replaced wire.c, which read the bytes the
 * same way into the api_v2 structs.) */
#include "direct_read.h"

/* ---- ids ------------------------------------------------------------------ */

/* ot_jg_id's fixed-size id: a short one right-aligned, a long one keeps
 * its last bytes. */
static inline void id_fix(uint8_t *dst, size_t size, jd_str id)
{
    if (id.n == size) {
        memcpy(dst, id.p, size);
        return;
    }
    memset(dst, 0, size);
    size_t n = id.n < size ? id.n : size;
    if (n)
        memcpy(dst + size - n, id.p + id.n - n, n);
}

static int all_zero(jd_str s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i])
            return 0;
    return 1;
}

/* ---- one span (translate.c's span_one) ----------------------------------- */

/* A span's scalars, as its one pass over the fields leaves them. */
typedef struct spanv {
    jd_str trace_id, span_id, trace_state, parent, name, status;
    int has_status;
    int32_t kind;
    uint64_t start, end;
    uint32_t d_attrs, d_events, d_links, flags;
} spanv;

/* A link as a reference; 0 when it only repeats the parent reference. */
static int link_ref(jd_ctx *c, jd_str link, const jd_view *v, const jd_ref *parent, jd_ref *r)
{
    ot_pbfield f;
    jd_str tid = {NULL, 0}, sid = {NULL, 0};
    int child_of = 0, seen_rt = 0;
    FOR_FIELDS(c, link, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            tid = val_of(&f);
        else if (f.num == 2 && want(c, &f, WT_LEN))
            sid = val_of(&f);
        else if (f.num == 4 && want(c, &f, WT_LEN) && !seen_rt) {
            jd_str key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            if (C_EQ(key, "opentracing.ref_type")) {
                seen_rt = 1;
                child_of = kv_string(c, val, has_val, &s) && C_EQ(s, "child_of");
            }
        }
    }
    id_fix(r->tid, 16, tid);
    id_fix(r->sid, 8, sid);
    int same_trace = memcmp(r->tid, v->tid, 16) == 0;
    r->type = child_of && same_trace ? JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF
                                     : JAEGER__API_V2__SPAN_REF_TYPE__FOLLOWS_FROM;
    return !(parent && r->type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF && same_trace &&
             memcmp(r->sid, parent->sid, 8) == 0);
}

/* An event as a log: `event` carries its name unless an attribute has
 * that key, then its attributes. */
static void event_log(jd_ctx *c, jd_str ev, jd_log *l)
{
    jd_view *v = &c->v;
    ot_pbfield f;
    uint64_t time = 0;
    jd_str name = {NULL, 0};
    size_t n_attrs = 0;
    int has_event_key = 0;
    FOR_FIELDS(c, ev, f)
    {
        if (f.num == 1 && want(c, &f, WT_I64))
            time = f.v;
        else if (f.num == 2 && want(c, &f, WT_LEN))
            name = val_of(&f);
        else if (f.num == 3 && want(c, &f, WT_LEN)) {
            n_attrs++;
            jd_str key, val;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            has_event_key |= C_EQ(key, "event");
        } else if (f.num == 4)
            want(c, &f, WT_VARINT);
    }
    l->time = time;
    l->tag0 = v->n_ltags;
    l->n_tags = 0;
    int named = c_nonempty(name) && !has_event_key;
    v->ltags = grow(c, v->ltags, &v->cap_ltags, v->n_ltags + (size_t)named + n_attrs,
                    sizeof *v->ltags);
    if (c->oom)
        return;
    if (named)
        tag_fixed(&v->ltags[v->n_ltags++], LIT("event"), VT(STRING)),
            v->ltags[v->n_ltags - 1].s = cstr(name);
    FOR_FIELDS(c, ev, f)
        if (f.num == 3 && v->n_ltags - l->tag0 < (size_t)named + n_attrs)
            tag_wire(c, &v->ltags[v->n_ltags++], val_of(&f));
    l->n_tags = v->n_ltags - l->tag0;
}

static void put_tag(jd_ctx *c, const jd_tag *t)
{
    jd_put_tag(&c->v.tagb, c->thrift, t);
    c->v.n_tags++;
}

/* Not inlined: with constant keys the compiler warns about the copy
 * branches they never take. */
static void put_encoded(jd_ctx *c, const void *b, size_t n, size_t tags)
{
    unsigned char *p = jt_room(&c->v.tagb, n);
    if (p)
        memcpy(p, b, n);
    c->v.n_tags += tags;
}

__attribute__((noinline)) static void add_str(jd_ctx *c, jd_str key, jd_str s)
{
    jd_tag t;
    tag_fixed(&t, key, VT(STRING));
    t.s = s;
    put_tag(c, &t);
}

__attribute__((noinline)) static void add_int(jd_ctx *c, jd_str key, int type, int64_t x)
{
    jd_tag t;
    tag_fixed(&t, key, type);
    if (type == VT(BOOL))
        t.vbool = x != 0;
    else
        t.vint = x;
    put_tag(c, &t);
}

/* Fills c->v with one span; the scope's name and version have a NULL p
 * when empty. One pass: the views grow as the lists come, and links, which need
 * the span's trace id and parent, are kept aside until the pass is done. */
/* flatten: everything it calls inlined into its one loop (the field
 * reader, the tag readers and writers); a call per field or tag was a
 * sixth of the encoder's instructions (bench-icount jaeger-*). */
__attribute__((flatten)) static void span_view(jd_ctx *c, jd_str span)
{
    jd_view *v = &c->v;
    spanv s;
    memset(&s, 0, sizeof s);
    v->n_tags = v->n_ltags = v->n_refs = v->n_logs = 0;
    ot_buf_reset(&v->tagb);
    c->n_links = 0;
    ot_pbfield f;
    FOR_FIELDS(c, span, f)
    {
        switch (f.num) {
        case 1: if (want(c, &f, WT_LEN)) s.trace_id = val_of(&f); break;
        case 2: if (want(c, &f, WT_LEN)) s.span_id = val_of(&f); break;
        case 3: if (want(c, &f, WT_LEN)) s.trace_state = val_of(&f); break;
        case 4: if (want(c, &f, WT_LEN)) s.parent = val_of(&f); break;
        case 5: if (want(c, &f, WT_LEN)) s.name = val_of(&f); break;
        case 6: if (want(c, &f, WT_VARINT)) s.kind = (int32_t)(uint32_t)f.v; break;
        case 7: if (want(c, &f, WT_I64)) s.start = f.v; break;
        case 8: if (want(c, &f, WT_I64)) s.end = f.v; break;
        case 9:
            if (want(c, &f, WT_LEN) && !tag_fast(c, val_of(&f))) {
                jd_tag t;
                tag_wire(c, &t, val_of(&f));
                put_tag(c, &t);
            }
            break;
        case 10: if (want(c, &f, WT_VARINT)) s.d_attrs = (uint32_t)f.v; break;
        case 11:
            if (!want(c, &f, WT_LEN))
                break;
            if (v->n_logs == v->cap_logs &&
                !(v->logs = grow(c, v->logs, &v->cap_logs, v->n_logs + 1, sizeof *v->logs), !c->oom))
                break;
            event_log(c, val_of(&f), &v->logs[v->n_logs++]);
            break;
        case 12: if (want(c, &f, WT_VARINT)) s.d_events = (uint32_t)f.v; break;
        case 13:
            if (!want(c, &f, WT_LEN))
                break;
            if (c->n_links == c->cap_links &&
                !(c->links = grow(c, c->links, &c->cap_links, c->n_links + 1, sizeof *c->links),
                  !c->oom))
                break;
            c->links[c->n_links++] = val_of(&f);
            break;
        case 14: if (want(c, &f, WT_VARINT)) s.d_links = (uint32_t)f.v; break;
        case 15: set_once(c, &s.status, &s.has_status, &f); break;
        case 16: if (want(c, &f, WT_I32)) s.flags = (uint32_t)f.v; break;
        default: break;
        }
    }
    if (v->tagb.oom)
        c->oom = 1;
    if (c->fallback || c->oom)
        return;
    id_fix(v->tid, 16, s.trace_id);
    id_fix(v->sid, 8, s.span_id);
    v->name = cstr(s.name);
    v->flags = s.flags & 0xffu;
    v->start = s.start;
    v->dur = s.end > s.start ? s.end - s.start : 0;

    int has_parent = s.parent.n > 0 && !all_zero(s.parent);
    v->refs = grow(c, v->refs, &v->cap_refs, (size_t)has_parent + c->n_links, sizeof *v->refs);
    if (c->oom)
        return;
    if (has_parent) {
        jd_ref *r = &v->refs[v->n_refs++];
        memcpy(r->tid, v->tid, 16);
        id_fix(r->sid, 8, s.parent);
        r->type = JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF;
    }
    for (size_t i = 0; i < c->n_links; i++)
        if (link_ref(c, c->links[i], v, has_parent ? &v->refs[0] : NULL, &v->refs[v->n_refs]))
            v->n_refs++;

    int code = CODE(UNSET);
    jd_str desc = {NULL, 0};
    FOR_FIELDS(c, s.status, f)
    {
        if (f.num == 2 && want(c, &f, WT_LEN))
            desc = val_of(&f);
        else if (f.num == 3 && want(c, &f, WT_VARINT))
            code = (int32_t)(uint32_t)f.v;
    }
    const char *code_name = code == CODE(OK) ? "OK" : code == CODE(ERROR) ? "ERROR" : NULL;
    if (c->scope_tags.len)
        put_encoded(c, c->scope_tags.data, c->scope_tags.len, c->n_scope_tags);
    if (s.kind >= 0 && s.kind < 6 && c->kind_n[s.kind])
        put_encoded(c, c->kind_b[s.kind], c->kind_n[s.kind], 1);
    if (code_name)
        add_str(c, LIT("otel.status_code"), lit(code_name));
    if (code == CODE(ERROR))
        add_int(c, LIT("error"), VT(BOOL), 1);
    if (c_nonempty(desc))
        add_str(c, LIT("otel.status_description"), cstr(desc));
    if (c_nonempty(s.trace_state))
        add_str(c, LIT("w3c.tracestate"), cstr(s.trace_state));
    if (s.d_attrs)
        add_int(c, LIT("otel.dropped_attributes_count"), VT(INT64), s.d_attrs);
    if (s.d_events)
        add_int(c, LIT("otel.dropped_events_count"), VT(INT64), s.d_events);
    if (s.d_links)
        add_int(c, LIT("otel.dropped_links_count"), VT(INT64), s.d_links);
    if (v->tagb.oom)
        c->oom = 1;
}

/* ---- one resource ------------------------------------------------------- */

static void process_view(jd_ctx *c, jd_str res)
{
    jd_process *p = &c->p;
    ot_pbfield f;
    size_t n = 0, svc = (size_t)-1;
    jd_str svc_name = {NULL, 0};
    FOR_FIELDS(c, res, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN)) {
            jd_str key, val = {NULL, 0}, s;
            int has_val;
            kv_parts(c, val_of(&f), &key, &val, &has_val);
            if (C_EQ(key, "service.name") && kv_string(c, val, has_val, &s) && c_nonempty(s))
                svc = n, svc_name = s;
            n++;
        }
    }
    p->service = svc != (size_t)-1 ? cstr(svc_name) : LIT(OT_JAEGER_UNKNOWN_SERVICE);
    p->n_tags = 0;
    p->tags = grow(c, p->tags, &p->cap_tags, n, sizeof *p->tags);
    if (c->oom)
        return;
    size_t i = 0;
    FOR_FIELDS(c, res, f)
        if (f.num == 1 && i < n && i++ != svc)
            tag_wire(c, &p->tags[p->n_tags++], val_of(&f));
}

static void scope_of(jd_ctx *c, jd_str ss, jd_str *name, jd_str *version)
{
    ot_pbfield f;
    jd_str scope = {NULL, 0}, nm = {NULL, 0}, ver = {NULL, 0};
    int has_scope = 0;
    FOR_FIELDS(c, ss, f)
        if (f.num == 1)
            set_once(c, &scope, &has_scope, &f);
    FOR_FIELDS(c, scope, f)
    {
        if (f.num == 1 && want(c, &f, WT_LEN))
            nm = val_of(&f);
        else if (f.num == 2 && want(c, &f, WT_LEN))
            ver = val_of(&f);
    }
    *name = c_nonempty(nm) ? cstr(nm) : (jd_str){NULL, 0};
    *version = c_nonempty(ver) ? cstr(ver) : (jd_str){NULL, 0};
}

/* The scope's tags, written once for all its spans (span_view copies
 * them where it would have added them). */
static void scope_tags(jd_ctx *c, jd_str name, jd_str version)
{
    jd_tag t;
    ot_buf_reset(&c->scope_tags);
    c->n_scope_tags = 0;
    if (name.p) {
        tag_fixed(&t, LIT("otel.scope.name"), VT(STRING));
        t.s = name;
        jd_put_tag(&c->scope_tags, c->thrift, &t);
        c->n_scope_tags++;
    }
    if (version.p) {
        tag_fixed(&t, LIT("otel.scope.version"), VT(STRING));
        t.s = version;
        jd_put_tag(&c->scope_tags, c->thrift, &t);
        c->n_scope_tags++;
    }
    if (c->scope_tags.oom)
        c->oom = 1;
}

/* The span.kind tag of every kind that has one, in this call's encoding. */
static void kind_tags(jd_ctx *c)
{
    if (c->kind_for == c->thrift + 1)
        return;
    for (int k = 0; k < 6; k++) {
        const char *name = ot_jg_kind_name(k);
        c->kind_n[k] = 0;
        if (!name)
            continue;
        jd_tag t;
        tag_fixed(&t, LIT("span.kind"), VT(STRING));
        t.s = lit(name);
        ot_buf b = OT_BUF_INIT;
        jd_put_tag(&b, c->thrift, &t);
        if (b.oom || b.len > sizeof c->kind_b[k]) {
            ot_buf_free(&b);
            c->oom = 1;
            return;
        }
        memcpy(c->kind_b[k], b.data, b.len);
        c->kind_n[k] = b.len;
        ot_buf_free(&b);
    }
    c->kind_for = c->thrift + 1;
}

/* One ResourceSpans as one body. The spans are walked once: Thrift's
 * span count is a fixed-width number, written when the spans are, and a
 * resource that had none is taken back out (it gives no Jaeger batch). */
static void batch_out(jd_ctx *c, int thrift, jd_str rs, jd_str res, ot_buf *out)
{
    c->bodies = grow(c, c->bodies, &c->cap_bodies, c->n_bodies + 1, sizeof *c->bodies);
    if (c->oom)
        return;
    process_view(c, res);
    if (c->fallback || c->oom)
        return;
    size_t head = out->len;
    if (thrift)
        ot_jd_thrift_process(out, &c->p, 0);
    else if (ot_buf_reserve(out, OT_JD_PROTO_HEAD) == 0)
        out->len += OT_JD_PROTO_HEAD;
    size_t count_at = out->len - 4; /* Thrift: the span list's count */
    size_t n = 0;
    ot_pbfield f, g;
    FOR_FIELDS(c, rs, f)
    {
        if (f.num != 2)
            continue;
        jd_str sname, sver;
        scope_of(c, val_of(&f), &sname, &sver);
        scope_tags(c, sname, sver);
        FOR_FIELDS(c, val_of(&f), g)
        {
            if (g.num != 2 || !want(c, &g, WT_LEN))
                continue;
            span_view(c, val_of(&g));
            if (c->fallback || c->oom)
                break;
            if (thrift)
                ot_jd_thrift_span(out, &c->v);
            else
                ot_jd_proto_span(out, &c->v);
            n++;
        }
    }
    if (c->fallback || c->oom || out->oom)
        return;
    if (!n) {
        out->len = head;
        return;
    }
    ot_jaeger_body *b = &c->bodies[c->n_bodies++];
    if (thrift) {
        jt_put32((unsigned char *)out->data + count_at, (uint32_t)n);
        ot_jd_thrift_end(out);
        b->off = head;
    } else
        b->off = ot_jd_proto_end(out, &c->p, head);
    b->len = out->len - b->off;
    b->spans = n;
}

ot_jaeger_enc *ot_jaeger_enc_new(void)
{
    jd_ctx *c = calloc(1, sizeof *c);
    if (c && !(c->arena = ot_arena_new(4096))) {
        free(c);
        c = NULL;
    }
    return c;
}

void ot_jaeger_enc_free(ot_jaeger_enc *c)
{
    if (!c)
        return;
    ot_buf_free(&c->v.tagb);
    ot_buf_free(&c->scope_tags);
    free(c->v.ltags);
    free(c->v.refs);
    free(c->v.logs);
    free(c->p.tags);
    free(c->links);
    free(c->bodies);
    ot_buf_free(&c->json);
    ot_arena_free(c->arena);
    free(c);
}

int ot_jaeger_encode_wire(ot_jaeger_enc *c, int thrift, const uint8_t *wire, size_t len,
                          ot_buf *out, const ot_jaeger_body **bodies, size_t *n_bodies,
                          ot_err *err)
{
    c->fallback = c->oom = 0;
    c->thrift = thrift;
    kind_tags(c);
    c->n_bodies = 0;
    ot_arena_reset(c->arena);
    size_t start = out->len;
    jd_str req = {wire, len};
    ot_pbfield f, g;
    FOR_FIELDS(c, req, f)
    {
        if (f.num != 1 || !want(c, &f, WT_LEN))
            continue;
        /* The resource first: it may come after the spans, and Thrift
         * writes it before them. */
        jd_str res = {NULL, 0};
        int has_res = 0, has_ss = 0;
        FOR_FIELDS(c, val_of(&f), g)
        {
            if (g.num == 1)
                set_once(c, &res, &has_res, &g);
            else if (g.num == 2 && want(c, &g, WT_LEN))
                has_ss = 1;
        }
        if (has_ss && !c->fallback)
            batch_out(c, thrift, val_of(&f), res, out);
    }
    /* The views may hold a huge span's worth; a later small batch need
     * not keep that. */
    if (c->v.cap_ltags > 4096) {
        free(c->v.ltags);
        c->v.ltags = NULL;
        c->v.cap_ltags = 0;
    }
    if (c->v.tagb.cap > (1u << 20))
        ot_buf_free(&c->v.tagb);
    if (c->fallback || c->oom || out->oom) {
        out->len = start;
        c->n_bodies = 0;
        if (c->fallback)
            return 1;
        out->oom = 0;
        return ot_err_set(err, "jaeger: out of memory encoding a %zu-byte request", len);
    }
    *bodies = c->bodies;
    *n_bodies = c->n_bodies;
    return 0;
}
