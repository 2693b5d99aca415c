/* template.c: pre-encoded request bodies, so the generator is not the
 * bottleneck. A worker encodes its request once (protobuf-c pack, or OTLP
 * JSON with ot_json_encode), finds in the bytes where every time, trace id
 * and loadgen.seq value sits, and per request only rewrites those:
 *
 *   protobuf: times are fixed64 and ids fixed 16 bytes, so they are
 *     overwritten in place; a seq is a varint whose width changes only at
 *     powers of 128, so the bytes are re-packed (rarely) when a request's
 *     seqs do not all have the width the template was packed with.
 *   JSON: times (19 digits) and ids (32 hex) are fixed width too; seqs are
 *     decimal strings of any width, so the body is re-assembled from the
 *     segments between them (one memcpy pass). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "model/otlp_json.h"

struct lg_content {
    const lg_opts *o;
    uint64_t seed;
    uint64_t rng;
    ot_arena *arena;
    lg_msg *msg;
    size_t n;
    ot_buf bytes; /* the master encoding */
    uint64_t version;
    int seq_w;    /* protobuf: width of every seq varint; -1 when mixed */
    uint32_t *seq_off, *seq_len, *seq_idx; /* per slot in the bytes */
    uint32_t *time_off, *id_off;
    uint8_t (*gid)[16];
};

static int vwidth(uint64_t v)
{
    int w = 1;
    while (v >= 128) {
        v >>= 7;
        w++;
    }
    return w;
}

static void put_varint_w(uint8_t *p, uint64_t v, int w)
{
    for (int i = 0; i < w - 1; i++) {
        p[i] = (uint8_t)(v & 0x7f) | 0x80;
        v >>= 7;
    }
    p[w - 1] = (uint8_t)v;
}

static const uint8_t *find(const uint8_t *hay, size_t hl, size_t from, const void *needle,
                           size_t nl)
{
    if (from < hl) {
        const uint8_t *p = memmem(hay + from, hl - from, needle, nl);
        if (p)
            return p;
    }
    return memmem(hay, hl, needle, nl);
}

static void hex16(char *out, const uint8_t *id)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
}

static void dec19(char *out, uint64_t v)
{
    for (int i = 18; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void content_reset(lg_content *c)
{
    ot_arena_free(c->arena);
    c->arena = NULL;
    c->msg = NULL;
    free(c->seq_off);
    free(c->seq_len);
    free(c->seq_idx);
    free(c->time_off);
    free(c->id_off);
    free(c->gid);
    c->seq_off = c->seq_len = c->seq_idx = c->time_off = c->id_off = NULL;
    c->gid = NULL;
}

lg_content *lg_content_new(const lg_opts *o, int worker, ot_err *err)
{
    lg_content *c = calloc(1, sizeof *c);
    if (!c) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->o = o;
    c->seed = o->seed * 1000003u + (uint64_t)worker * 7919u + 1;
    c->rng = c->seed ^ 0x5eed5eed5eedULL;
    c->seq_w = -1;
    return c;
}

void lg_content_free(lg_content *c)
{
    if (!c)
        return;
    content_reset(c);
    ot_buf_free(&c->bytes);
    free(c);
}

void lg_body_free(lg_body *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int body_reserve(lg_body *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < need)
        nc *= 2;
    uint8_t *p = realloc(b->data, nc);
    if (!p)
        return -1;
    b->data = p;
    b->cap = nc;
    return 0;
}

/* (Re)builds the message for n items. */
static int build_msg(lg_content *c, size_t n, ot_err *err)
{
    content_reset(c);
    c->arena = ot_arena_new(1 << 16);
    if (!c->arena)
        return ot_err_set(err, "out of memory");
    c->msg = lg_msg_build(c->o, c->seed, n, c->arena);
    if (!c->msg)
        return ot_err_set(err, "out of memory");
    c->n = n;
    lg_msg *m = c->msg;
    c->seq_off = calloc(n ? n : 1, sizeof *c->seq_off);
    c->seq_len = calloc(n ? n : 1, sizeof *c->seq_len);
    c->seq_idx = calloc(n ? n : 1, sizeof *c->seq_idx);
    c->time_off = calloc(m->n_times ? m->n_times : 1, sizeof *c->time_off);
    c->id_off = calloc(m->n_ids ? m->n_ids : 1, sizeof *c->id_off);
    c->gid = calloc(m->n_groups ? m->n_groups : 1, 16);
    if (!c->seq_off || !c->seq_len || !c->seq_idx || !c->time_off || !c->id_off || !c->gid)
        return ot_err_set(err, "out of memory");
    c->seq_w = -2; /* not encoded yet */
    return 0;
}

static int encode_pb(lg_content *c, uint64_t seq0, ot_err *err)
{
    lg_msg *m = c->msg;
    for (size_t i = 0; i < m->n; i++)
        m->seq[i]->int_value = (int64_t)(seq0 + i);
    size_t len = protobuf_c_message_get_packed_size(m->req);
    ot_buf_reset(&c->bytes);
    if (ot_buf_reserve(&c->bytes, len) < 0)
        return ot_err_set(err, "out of memory");
    c->bytes.len = protobuf_c_message_pack(m->req, (uint8_t *)c->bytes.data);
    const uint8_t *d = (const uint8_t *)c->bytes.data;
    size_t dl = c->bytes.len;
    size_t from = 0;
    for (size_t k = 0; k < m->n_times; k++) {
        uint64_t v = LG_TIME_SENTINEL(k);
        uint8_t le[8];
        for (int q = 0; q < 8; q++)
            le[q] = (uint8_t)(v >> (8 * q));
        const uint8_t *p = find(d, dl, from, le, 8);
        if (!p)
            return ot_err_set(err, "template: time %zu not found in the encoding", k);
        c->time_off[k] = (uint32_t)(p - d);
        from = (size_t)(p - d) + 8;
    }
    from = 0;
    for (size_t k = 0; k < m->n_ids; k++) {
        uint8_t id[16];
        lg_id_sentinel(id, k);
        const uint8_t *p = find(d, dl, from, id, 16);
        if (!p)
            return ot_err_set(err, "template: trace id %zu not found in the encoding", k);
        c->id_off[k] = (uint32_t)(p - d);
        from = (size_t)(p - d) + 16;
    }
    /* KeyValue{key=1:"loadgen.seq", value=2:AnyValue{int_value=3:varint}} */
    static const uint8_t pat[] = "\x0a\x0bloadgen.seq\x12";
    from = 0;
    int w0 = vwidth(seq0), w1 = vwidth(seq0 + (m->n ? m->n - 1 : 0));
    for (size_t i = 0; i < m->n; i++) {
        const uint8_t *p = memmem(d + from, dl - from, pat, sizeof pat - 1);
        if (!p || (size_t)(p - d) + sizeof pat + 1 >= dl || p[sizeof pat] != 0x18)
            return ot_err_set(err, "template: loadgen.seq %zu not found in the encoding", i);
        size_t off = (size_t)(p - d) + sizeof pat + 1;
        /* Items are not in index order in the bytes (traces go round-robin
         * over resources), so remember which seq each slot holds. */
        uint64_t v = 0;
        int w = 0;
        while (off + (size_t)w < dl && w < 10) {
            v |= (uint64_t)(d[off + (size_t)w] & 0x7f) << (7 * w);
            if (!(d[off + (size_t)w++] & 0x80))
                break;
        }
        c->seq_off[i] = (uint32_t)off;
        c->seq_len[i] = (uint32_t)w;
        c->seq_idx[i] = (uint32_t)(v - seq0);
        from = off;
    }
    c->seq_w = w0 == w1 ? w0 : -1;
    c->version++;
    return 0;
}

static int encode_json(lg_content *c, uint64_t seq0, ot_err *err)
{
    lg_msg *m = c->msg;
    for (size_t i = 0; i < m->n; i++)
        m->seq[i]->int_value = (int64_t)(seq0 + i);
    ot_buf_reset(&c->bytes);
    if (ot_json_encode(m->req, &c->bytes, err) < 0)
        return -1;
    const uint8_t *d = (const uint8_t *)c->bytes.data;
    size_t dl = c->bytes.len;
    size_t from = 0;
    char pat[40];
    for (size_t k = 0; k < m->n_times; k++) {
        pat[0] = '"';
        dec19(pat + 1, LG_TIME_SENTINEL(k));
        pat[20] = '"';
        const uint8_t *p = find(d, dl, from, pat, 21);
        if (!p)
            return ot_err_set(err, "template: time %zu not found in the JSON", k);
        c->time_off[k] = (uint32_t)(p - d) + 1;
        from = (size_t)(p - d) + 21;
    }
    from = 0;
    for (size_t k = 0; k < m->n_ids; k++) {
        uint8_t id[16];
        lg_id_sentinel(id, k);
        pat[0] = '"';
        hex16(pat + 1, id);
        pat[33] = '"';
        const uint8_t *p = find(d, dl, from, pat, 34);
        if (!p)
            return ot_err_set(err, "template: trace id %zu not found in the JSON", k);
        c->id_off[k] = (uint32_t)(p - d) + 1;
        from = (size_t)(p - d) + 34;
    }
    static const char spat[] = "\"loadgen.seq\",\"value\":{\"intValue\":\"";
    from = 0;
    for (size_t i = 0; i < m->n; i++) {
        const uint8_t *p = memmem(d + from, dl - from, spat, sizeof spat - 1);
        if (!p)
            return ot_err_set(err, "template: loadgen.seq %zu not found in the JSON", i);
        size_t off = (size_t)(p - d) + sizeof spat - 1;
        size_t e = off;
        uint64_t v = 0;
        while (e < dl && d[e] >= '0' && d[e] <= '9')
            v = v * 10 + (uint64_t)(d[e++] - '0');
        c->seq_idx[i] = (uint32_t)(v - seq0);
        c->seq_off[i] = (uint32_t)off;
        c->seq_len[i] = (uint32_t)(e - off);
        from = e;
    }
    c->seq_w = 0;
    c->version++;
    return 0;
}

static void new_ids(lg_content *c)
{
    for (size_t g = 0; g < c->msg->n_groups; g++) {
        uint64_t a = lg_rand(&c->rng), b = lg_rand(&c->rng);
        memcpy(c->gid[g], &a, 8);
        memcpy(c->gid[g] + 8, &b, 8);
    }
}

int lg_content_body(lg_content *c, uint64_t seq0, size_t n, int64_t wall_ns, lg_body *b,
                    ot_err *err)
{
    const lg_opts *o = c->o;
    bool json = o->json || o->target == LG_T_FILE;
    /* --series for metrics: the same streams again and again (a scrape
     * endpoint's load); requests start at multiples of the batch, so with
     * series a multiple of it, seq % series is seq0 % series + i. */
    if (o->series && o->sig == OT_METRICS)
        seq0 %= o->series;
    if (!c->msg || c->n != n) {
        if (build_msg(c, n, err) < 0)
            return -1;
    }
    lg_msg *m = c->msg;
    new_ids(c);
    if (!json) {
        int w0 = vwidth(seq0), w1 = vwidth(seq0 + (n ? n - 1 : 0));
        if (c->seq_w < 0 || w0 != w1 || w0 != c->seq_w) {
            if (encode_pb(c, seq0, err) < 0)
                return -1;
        }
        if (b->version != c->version || b->n != n) {
            if (body_reserve(b, b->prefix + c->bytes.len) < 0)
                return ot_err_set(err, "out of memory");
            memcpy(b->data + b->prefix, c->bytes.data, c->bytes.len);
            b->len = b->prefix + c->bytes.len;
            b->version = c->version;
            b->n = n;
        }
        uint8_t *d = b->data + b->prefix;
        for (size_t k = 0; k < m->n_times; k++) {
            uint64_t v = (uint64_t)(wall_ns + m->time_delta[k]);
            uint8_t *p = d + c->time_off[k];
            for (int q = 0; q < 8; q++)
                p[q] = (uint8_t)(v >> (8 * q));
        }
        for (size_t k = 0; k < m->n_ids; k++)
            memcpy(d + c->id_off[k], c->gid[m->id_group[k]], 16);
        for (size_t i = 0; i < n; i++)
            put_varint_w(d + c->seq_off[i], seq0 + c->seq_idx[i], (int)c->seq_len[i]);
        return 0;
    }
    if (c->seq_w < -1) {
        if (encode_json(c, seq0, err) < 0)
            return -1;
    }
    /* times and ids in the master, then segments with fresh seqs */
    uint8_t *d = (uint8_t *)c->bytes.data;
    for (size_t k = 0; k < m->n_times; k++)
        dec19((char *)d + c->time_off[k], (uint64_t)(wall_ns + m->time_delta[k]));
    for (size_t k = 0; k < m->n_ids; k++)
        hex16((char *)d + c->id_off[k], c->gid[m->id_group[k]]);
    if (body_reserve(b, b->prefix + c->bytes.len + n * 20 + 1) < 0)
        return ot_err_set(err, "out of memory");
    uint8_t *out = b->data + b->prefix;
    size_t src = 0, dst = 0;
    for (size_t i = 0; i < n; i++) {
        size_t seg = c->seq_off[i] - src;
        memcpy(out + dst, d + src, seg);
        dst += seg;
        char tmp[24];
        int l = 0;
        uint64_t v = seq0 + c->seq_idx[i];
        do {
            tmp[l++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (l)
            out[dst++] = (uint8_t)tmp[--l];
        src = c->seq_off[i] + c->seq_len[i];
    }
    memcpy(out + dst, d + src, c->bytes.len - src);
    dst += c->bytes.len - src;
    b->len = b->prefix + dst;
    b->version = 0;
    b->n = n;
    return 0;
}
