/* record.c: one log line's message → one OTLP LogRecord in wire form. The
 * top-level fields of a JSON object are looked at once, in line order:
 * the time, severity, message and trace context go to the record's own
 * fields, every other field to an attribute with its JSON type. Protobuf
 * lets fields come in any order, so the record is the attributes (written
 * as they are met) followed by the record's own fields; without a message
 * field the attributes are turned into the body's kvlist instead (the
 * KeyValue encoding is the same, only the field tag differs). */
#include <string.h>

#include "base/codec.h"

#include "jl.h"
#include "pbw.h"

void jl_enc_free(jl_enc *e)
{
    ot_buf_free(&e->attrs);
    ot_buf_free(&e->side);
    ot_buf_free(&e->tmp);
    ot_buf_free(&e->key);
    ot_buf_free(&e->ext);
}

int jl_kv_str(ot_buf *out, unsigned field, const char *k, const char *v, size_t vn)
{
    size_t kn = strlen(k);
    size_t any = 1 + ot_varint_size(vn) + vn;
    size_t kv = 1 + ot_varint_size(kn) + kn + 1 + ot_varint_size(any) + any;
    if (pbw_len_hdr(out, field, kv) < 0 || pbw_bytes(out, 1, k, kn) < 0 ||
        pbw_len_hdr(out, 2, any) < 0 || pbw_bytes(out, 1, v, vn) < 0)
        return -1;
    return 0;
}

static int kv_bool(ot_buf *out, const char *k, bool v)
{
    size_t kn = strlen(k);
    size_t kv = 1 + ot_varint_size(kn) + kn + 1 + 1 + 2;
    if (pbw_len_hdr(out, 6, kv) < 0 || pbw_bytes(out, 1, k, kn) < 0 ||
        pbw_len_hdr(out, 2, 2) < 0 || pbw_varint(out, 2, v) < 0)
        return -1;
    return 0;
}

/* Hex of exactly want bytes, not all zero (an all-zero id is invalid). */
static int hex_id(const char *s, size_t n, uint8_t *out, size_t want)
{
    if (n != want * 2 || ot_hex_decode(s, n, out) != want)
        return -1;
    unsigned any = 0;
    for (size_t i = 0; i < want; i++)
        any |= out[i];
    return any ? 0 : -1;
}

/* A scalar that was looked at as time/severity/trace but did not fit: an
 * attribute after all. */
static int attr_scalar(ot_buf *attrs, const char *k, size_t kn, const char *v, size_t vn,
                       bool is_num, ot_buf *tmp)
{
    size_t kv = pbw_open(attrs, 6);
    if (kv == (size_t)-1 || pbw_bytes(attrs, 1, k, kn) < 0)
        return -1;
    if (is_num) {
        size_t vm = pbw_open(attrs, 2);
        const char *p = v;
        if (vm == (size_t)-1 || jl_value(&p, v + vn, attrs, tmp, 1) < 0 ||
            pbw_close(attrs, vm) < 0)
            return -1;
    } else {
        if (pbw_len_hdr(attrs, 2, 1 + ot_varint_size(vn) + vn) < 0 || pbw_bytes(attrs, 1, v, vn) < 0)
            return -1;
    }
    return pbw_close(attrs, kv);
}

/* Ends a record: frame = attrs (or body from attrs) + side + ext. */
static int finish(jl_enc *e, const jl_rec *r, bool have_body, bool have_time, int64_t ts,
                  ot_buf *out)
{
    ot_buf *side = &e->side, *ext = &e->ext;
    int64_t t = have_time ? ts : r->runtime_ns ? r->runtime_ns : r->observed_ns;
    if (pbw_fixed64(side, 1, (uint64_t)t) < 0 || pbw_fixed64(side, 11, (uint64_t)r->observed_ns) < 0)
        return -1;
    if (r->stream && jl_kv_str(ext, 6, "log.iostream", r->stream, r->stream_len) < 0)
        return -1;
    if (r->truncated && kv_bool(ext, "log.truncated", true) < 0)
        return -1;
    if (r->extra_len && ot_buf_append(ext, r->extra, r->extra_len) < 0)
        return -1;
    size_t a = e->attrs.len, wrap = 0, any = 0;
    if (!have_body) {
        /* KeyValue (attributes, field 6) → KeyValueList.values (field 1) */
        for (size_t i = 0; i < a;) {
            e->attrs.data[i] = pbw_tag(1, PBW_LEN);
            uint64_t len = 0;
            unsigned sh = 0;
            size_t j = i + 1;
            while ((unsigned char)e->attrs.data[j] & 0x80) {
                len |= (uint64_t)((unsigned char)e->attrs.data[j] & 0x7f) << sh;
                sh += 7;
                j++;
            }
            len |= (uint64_t)(unsigned char)e->attrs.data[j] << sh;
            i = j + 1 + len;
        }
        any = 1 + ot_varint_size(a) + a;
        wrap = 1 + ot_varint_size(any) + 1 + ot_varint_size(a);
    }
    size_t total = wrap + a + side->len + ext->len;
    if (pbw_len_hdr(out, 2, total) < 0 || ot_buf_reserve(out, total) < 0)
        return -1;
    if (!have_body) {
        if (pbw_len_hdr(out, 5, any) < 0 || pbw_len_hdr(out, 6, a) < 0)
            return -1;
    }
    char *p = out->data + out->len;
    if (a)
        memcpy(p, e->attrs.data, a);
    memcpy(p + a, side->data, side->len); /* never empty: the times are in it */
    if (ext->len)
        memcpy(p + a + side->len, ext->data, ext->len);
    out->len += a + side->len + ext->len;
    return 0;
}

static void reset(jl_enc *e)
{
    e->attrs.len = 0;
    e->side.len = 0;
    e->ext.len = 0;
}

static int sev_out(ot_buf *side, int num, const char *text, size_t tn)
{
    if (num && pbw_varint(side, 2, (uint64_t)num) < 0)
        return -1;
    return pbw_bytes(side, 3, text, tn);
}

/* 1 parsed, 0 not JSON (caller falls back), -1 out-of-memory. */
static int map_object(jl_enc *e, const jl_map *m, const jl_rec *r, const char *msg, size_t n,
                      ot_buf *out)
{
    const char *p = jl_ws(msg, msg + n), *end = msg + n;
    if (p >= end || *p != '{')
        return 0;
    p = jl_ws(p + 1, end);
    bool have_time = false, have_sev = false, have_body = false, have_trace = false,
         have_span = false;
    int64_t ts = 0;
    if (p < end && *p == '}') {
        p++;
        goto done;
    }
    for (;;) {
        const char *k, *v;
        size_t kn, vn;
        p = jl_ws(p, end);
        if (jl_str(&p, end, &e->key, &k, &kn) < 0)
            return 0;
        p = jl_ws(p, end);
        if (p >= end || *p != ':')
            return 0;
        p = jl_ws(p + 1, end);
        if (p >= end)
            return 0;
        int kind = jl_field_kind(m, k, kn);
        bool scalar = *p == '"' || *p == '-' || (*p >= '0' && *p <= '9');
        if ((kind == JL_F_TIME && have_time) || (kind == JL_F_SEVERITY && have_sev) ||
            (kind == JL_F_BODY && have_body) || (kind == JL_F_TRACE && have_trace) ||
            (kind == JL_F_SPAN && have_span) || (kind != JL_F_BODY && !scalar))
            kind = JL_F_OTHER;
        if (kind == JL_F_BODY) {
            size_t bm = pbw_open(&e->side, 5);
            if (bm == (size_t)-1)
                return -1;
            if (jl_value(&p, end, &e->side, &e->tmp, 1) < 0)
                return 0;
            if (pbw_close(&e->side, bm) < 0)
                return -1;
            have_body = true;
        } else if (kind != JL_F_OTHER) {
            bool is_num = *p != '"';
            if (is_num ? jl_num_span(&p, end, &v, &vn) < 0
                       : jl_str(&p, end, &e->tmp, &v, &vn) < 0)
                return 0;
            bool used = false;
            if (kind == JL_F_TIME) {
                used = jl_ts_parse(v, vn, is_num, m->ts_layout, m->ts_pattern, &ts) == 0;
                have_time = used;
            } else if (kind == JL_F_SEVERITY) {
                int num = jl_sev_word(m, v, vn);
                int64_t iv;
                double dv;
                if (!num && is_num && jl_num_value(v, vn, &iv, &dv) == 1)
                    num = jl_sev_number(iv);
                if (sev_out(&e->side, num, v, vn) < 0)
                    return -1;
                used = have_sev = true;
            } else {
                uint8_t id[16];
                size_t want = kind == JL_F_TRACE ? 16 : 8;
                if (!is_num && hex_id(v, vn, id, want) == 0) {
                    if (pbw_bytes(&e->side, kind == JL_F_TRACE ? 9 : 10, id, want) < 0)
                        return -1;
                    used = true;
                    if (kind == JL_F_TRACE)
                        have_trace = true;
                    else
                        have_span = true;
                }
            }
            if (!used && attr_scalar(&e->attrs, k, kn, v, vn, is_num, &e->tmp) < 0)
                return 0;
        } else {
            size_t kv = pbw_open(&e->attrs, 6);
            if (kv == (size_t)-1 || pbw_bytes(&e->attrs, 1, k, kn) < 0)
                return -1;
            size_t vm = pbw_open(&e->attrs, 2);
            if (vm == (size_t)-1)
                return -1;
            if (jl_value(&p, end, &e->attrs, &e->tmp, 1) < 0)
                return 0;
            if (pbw_close(&e->attrs, vm) < 0 || pbw_close(&e->attrs, kv) < 0)
                return -1;
        }
        p = jl_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        return 0;
    }
done:
    if (jl_ws(p, end) != end)
        return 0;
    if (e->attrs.oom || e->side.oom || e->tmp.oom || e->key.oom)
        return -1;
    return finish(e, r, have_body, have_time, ts, out) < 0 ? -1 : 1;
}

int jl_encode_text(jl_enc *e, const jl_rec *r, const char *msg, size_t n, const char *perr,
                   ot_buf *out)
{
    reset(e);
    e->tmp.len = 0;
    const char *s = msg;
    size_t sn = n;
    if (jl_utf8_valid(msg, n) != n) {
        if (jl_utf8_fix(&e->tmp, msg, n) < 0)
            return -1;
        s = e->tmp.data;
        sn = e->tmp.len;
    }
    if (pbw_len_hdr(&e->side, 5, 1 + ot_varint_size(sn) + sn) < 0 || pbw_bytes(&e->side, 1, s, sn) < 0)
        return -1;
    if (perr && jl_kv_str(&e->attrs, 6, "log.parse_error", perr, strlen(perr)) < 0)
        return -1;
    return finish(e, r, true, false, 0, out);
}

int jl_encode_json(jl_enc *e, const jl_map *m, const jl_rec *r, const char *msg, size_t n,
                   ot_buf *out, bool *parse_error)
{
    reset(e);
    size_t mark = out->len;
    int rc = map_object(e, m, r, msg, n, out);
    *parse_error = rc == 0;
    if (rc == 1)
        return 0;
    out->len = mark;
    if (rc < 0)
        return -1;
    return jl_encode_text(e, r, msg, n, "not a valid JSON object", out);
}

int jl_encode_msg(jl_enc *e, const jl_map *m, const jl_rec *r, const char *msg, size_t n,
                  ot_buf *out, bool *parse_error)
{
    const char *p = jl_ws(msg, msg + n);
    *parse_error = false;
    if (p < msg + n && *p == '{')
        return jl_encode_json(e, m, r, msg, n, out, parse_error);
    return jl_encode_text(e, r, msg, n, NULL, out);
}
