/* wireproc_check.h: runs a chain of processors (filter, attributes,
 * resource) twice on the same protobuf request, once on the wire form and
 * once on the decoded reference path (OTELITE_DECODED_PROCESSORS set when
 * the processors are made), and compares what comes out: status, whether
 * anything came out, items, and the bytes. Shared by test_wireproc.c and
 * tests/fuzz/fuzz_wireproc.c; no Criterion in here, a difference comes
 * back as text. Test-only; static. */
#ifndef OT_WIREPROC_CHECK_H
#define OT_WIREPROC_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "config/config.h"
#include "model/batch.h"
#include "pipeline/factory.h"

extern const ot_factory ot_filter_processor, ot_attributes_processor, ot_resource_processor;

#define WP_MAX 4

typedef struct wp_rec {
    ot_consumer base;
    ot_batch *got;
    size_t calls;
} wp_rec;

static inline ot_status wp_record(ot_consumer *self, ot_batch *b, ot_err *err)
{
    (void)err;
    wp_rec *r = (wp_rec *)self;
    if (r->got)
        ot_batch_unref(r->got);
    r->got = b;
    r->calls++;
    return OT_OK;
}

typedef struct wp_chain {
    size_t n;
    const ot_factory *f[WP_MAX];
    void *self[WP_MAX];
    ot_arena *arena;
    ot_consumer *head;
    wp_rec rec;
} wp_chain;

/* A processor spec: "filter:<yaml>", "attributes:<yaml>", "resource:<yaml>". */
static inline const ot_factory *wp_factory(const char *spec, const char **yaml)
{
    static const ot_factory *const fs[] = {&ot_filter_processor, &ot_attributes_processor,
                                           &ot_resource_processor};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(fs[i]->type);
        if (strncmp(spec, fs[i]->type, n) == 0 && spec[n] == ':') {
            *yaml = spec + n + 1;
            return fs[i];
        }
    }
    return NULL;
}

static inline void wp_chain_free(wp_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->self[i])
            c->f[i]->destroy(c->self[i]);
    if (c->rec.got)
        ot_batch_unref(c->rec.got);
    ot_arena_free(c->arena);
    memset(c, 0, sizeof *c);
}

/* Builds specs[0] -> ... -> recorder for signal s; decoded forces the
 * reference path. 0, or -1 with why. */
static inline int wp_chain_make(wp_chain *c, ot_signal s, const char *const *specs, size_t n,
                         bool decoded, char *why, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->rec.base.consume = wp_record;
    c->arena = ot_arena_new(0);
    if (decoded)
        setenv("OTELITE_DECODED_PROCESSORS", "1", 1);
    ot_consumer *next = &c->rec.base;
    int rc = 0;
    for (size_t k = n; k-- > 0 && rc == 0;) {
        const char *yaml;
        const ot_factory *f = wp_factory(specs[k], &yaml);
        ot_diags d;
        ot_diags_init(&d);
        const ot_node *node = f ? ot_node_parse(c->arena, "wp.yaml", yaml, strlen(yaml), &d) : NULL;
        void *cfg = f ? ot_arena_calloc(c->arena, f->config_size) : NULL;
        if (node && cfg) {
            ot_keys_fill(f->keys, node, cfg, c->arena, f->type, &d);
            if (f->validate)
                f->validate(cfg, node, f->type, &d);
        }
        if (!f || !node || !cfg || d.errors) {
            snprintf(why, cap, "bad spec %s: %s", specs[k], d.n ? d.v[0].msg : "?");
            rc = -1;
        } else {
            ot_create_params p;
            memset(&p, 0, sizeof p);
            p.id = f->type;
            p.config = cfg;
            p.signal = s;
            p.next[s] = next;
            ot_err err;
            void *self = f->create(&p, &err);
            if (!self) {
                snprintf(why, cap, "create %s: %s", specs[k], err.msg);
                rc = -1;
            } else {
                c->f[c->n] = f;
                c->self[c->n++] = self;
                next = f->consumer(self, s);
            }
        }
        ot_diags_free(&d);
    }
    if (decoded)
        unsetenv("OTELITE_DECODED_PROCESSORS");
    c->head = next;
    return rc;
}

/* pack(unpack(x)): protobuf-c's own field order and encoding. */
static inline uint8_t *wp_normal(ot_signal s, const uint8_t *p, size_t n, size_t *out_n, size_t *items)
{
    const ProtobufCMessageDescriptor *d = ot_signal_request_desc(s);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (!m)
        return NULL;
    *out_n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*out_n ? *out_n : 1);
    protobuf_c_message_pack(m, b);
    *items = ot_count_items(s, m);
    protobuf_c_message_free_unpacked(m, NULL);
    return b;
}

typedef struct wp_result {
    bool passed;   /* something came out */
    bool exact;    /* the wire bytes equal the reference's as they are */
    bool wire_edit; /* the wire path changed the bytes (not declined, not untouched) */
    bool decoded;   /* the wire chain decoded (a processor declined) */
} wp_result;

/* 0 when both paths agree (res says how), -1 with why when they differ. */
static inline int wp_compare(ot_signal s, const uint8_t *req, size_t len, const char *const *specs,
                      size_t n, wp_result *res, char *why, size_t cap)
{
    memset(res, 0, sizeof *res);
    wp_chain ref, wire;
    if (wp_chain_make(&ref, s, specs, n, true, why, cap) < 0) {
        wp_chain_free(&ref);
        return -1;
    }
    if (wp_chain_make(&wire, s, specs, n, false, why, cap) < 0) {
        wp_chain_free(&ref);
        wp_chain_free(&wire);
        return -1;
    }
    size_t items = 0;
    ot_err err;
    int rc = -1;
    uint8_t *na = NULL, *nb = NULL;
    ot_batch *br = ot_batch_from_wire(s, req, len, (size_t)-1, &err);
    if (!br) {
        snprintf(why, cap, "request does not decode: %s", err.msg);
        goto out;
    }
    items = br->items;
    ot_batch_unref(br);
    br = ot_batch_from_wire(s, req, len, items, &err);
    ot_batch *bw = ot_batch_from_wire(s, req, len, items, &err);
    ot_err e1, e2;
    ot_status s1 = ot_consume(ref.head, br, &e1);
    ot_status s2 = ot_consume(wire.head, bw, &e2);
    if (s1 != s2) {
        snprintf(why, cap, "status: reference %d (%s), wire %d (%s)", s1, s1 ? e1.msg : "",
                 s2, s2 ? e2.msg : "");
        goto out;
    }
    if (!ref.rec.got != !wire.rec.got) {
        snprintf(why, cap, "reference %s, wire %s", ref.rec.got ? "passed" : "dropped all",
                 wire.rec.got ? "passed" : "dropped all");
        goto out;
    }
    if (!ref.rec.got) {
        rc = 0;
        goto out;
    }
    res->passed = true;
    const uint8_t *pr, *pw;
    size_t lr, lw;
    if (ot_batch_wire(ref.rec.got, &pr, &lr, &err) < 0 ||
        ot_batch_wire(wire.rec.got, &pw, &lw, &err) < 0) {
        snprintf(why, cap, "encode: %s", err.msg);
        goto out;
    }
    res->wire_edit = !(lw == len && memcmp(pw, req, len) == 0);
    res->decoded = wire.rec.got->msg != NULL;
    res->exact = lr == lw && (!lr || memcmp(pr, pw, lr) == 0);
    size_t nl_a, nl_b, it_a, it_b;
    na = wp_normal(s, pr, lr, &nl_a, &it_a);
    nb = wp_normal(s, pw, lw, &nl_b, &it_b);
    if (!na || !nb) {
        snprintf(why, cap, "%s output does not decode", na ? "wire" : "reference");
        goto out;
    }
    if (nl_a != nl_b || (nl_a && memcmp(na, nb, nl_a) != 0)) {
        size_t at = 0;
        while (at < nl_a && at < nl_b && na[at] == nb[at])
            at++;
        snprintf(why, cap, "outputs differ (reference %zu bytes, wire %zu; first at %zu)", nl_a,
                 nl_b, at);
        goto out;
    }
    if (ref.rec.got->items != wire.rec.got->items || wire.rec.got->items != it_b) {
        snprintf(why, cap, "items: reference %zu, wire %zu, wire bytes hold %zu",
                 ref.rec.got->items, wire.rec.got->items, it_b);
        goto out;
    }
    rc = 0;
out:
    free(na);
    free(nb);
    wp_chain_free(&ref);
    wp_chain_free(&wire);
    return rc;
}

#endif
