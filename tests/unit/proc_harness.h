/* proc_harness.h: runs one processor the way the service does (key walker,
 * validate, create for a pipeline signal, consume) in front of a consumer
 * that records what reaches it, so processor tests state a config in YAML,
 * a request in OTLP JSON, and check what comes out. Test-only; static. */
#ifndef OT_PROC_HARNESS_H
#define OT_PROC_HARNESS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "model/batch.h"
#include "base/buf.h"
#include "config/config.h"
#include "pipeline/factory.h"
#include "model/otlp_json.h"

#define HARNESS_MAX 8

typedef struct harness {
    ot_consumer rec; /* the next consumer */
    ot_batch *got[HARNESS_MAX];
    size_t n_got;
    ot_status answer; /* what the recorder answers */
    const ot_factory *f;
    ot_arena *arena; /* config */
    void *cfg;
    void *self;
    ot_consumer *head;
    ot_diags diags;
} harness;

static inline ot_status harness_record(ot_consumer *self, ot_batch *b, ot_err *err)
{
    harness *h = (harness *)self;
    cr_assert_lt(h->n_got, HARNESS_MAX);
    h->got[h->n_got++] = b;
    if (h->answer != OT_OK)
        ot_err_set(err, "recorder refuses");
    return h->answer;
}

/* Walks and validates yaml as the settings of processor id; diagnostics
 * stay in h->diags. Returns the number of errors. */
static inline size_t harness_check(harness *h, const ot_factory *f, const char *yaml)
{
    memset(h, 0, sizeof *h);
    h->f = f;
    h->rec.consume = harness_record;
    ot_diags_init(&h->diags);
    h->arena = ot_arena_new(0);
    const ot_node *node = ot_node_parse(h->arena, "test.yaml", yaml, strlen(yaml), &h->diags);
    cr_assert_not_null(node, "bad test YAML");
    h->cfg = ot_arena_calloc(h->arena, f->config_size);
    char path[64];
    snprintf(path, sizeof path, "processors.%s", f->type);
    ot_keys_fill(f->keys, node, h->cfg, h->arena, path, &h->diags);
    if (f->validate)
        f->validate(h->cfg, node, path, &h->diags);
    return h->diags.errors;
}

/* Check, then create for signal s; the config must be valid. */
static inline void harness_start(harness *h, const ot_factory *f, ot_signal s, const char *yaml)
{
    size_t errors = harness_check(h, f, yaml);
    cr_assert_eq(errors, 0, "config has errors: %s", h->diags.n ? h->diags.v[0].msg : "?");
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = f->type;
    p.config = h->cfg;
    p.signal = s;
    p.next[s] = &h->rec;
    ot_err err;
    h->self = f->create(&p, &err);
    cr_assert_not_null(h->self, "create: %s", err.msg);
    cr_assert(!f->start || f->start(h->self, &err) == 0);
    h->head = f->consumer(h->self, s);
    cr_assert_not_null(h->head);
}

static inline void harness_stop(harness *h)
{
    for (size_t i = 0; i < h->n_got; i++)
        ot_batch_unref(h->got[i]);
    if (h->self) {
        if (h->f->shutdown)
            h->f->shutdown(h->self, 0);
        h->f->destroy(h->self);
    }
    ot_diags_free(&h->diags);
    ot_arena_free(h->arena);
    memset(h, 0, sizeof *h);
}

/* A batch from OTLP JSON written with ' for " (readable in C strings). */
static inline ot_batch *harness_batch(ot_signal s, const char *json)
{
    ot_err err;
    char *j = strdup(json);
    for (char *p = j; *p; p++)
        if (*p == '\'')
            *p = '"';
    ot_batch *b = ot_batch_from_json(s, j, strlen(j), &err);
    cr_assert_not_null(b, "test JSON: %s\n%s", err.msg, j);
    free(j);
    return b;
}

/* Consumes one batch; what reached the next consumer is h->got[...]. */
static inline ot_status harness_push(harness *h, ot_batch *b, ot_err *err)
{
    return ot_consume(h->head, b, err);
}

/* The last batch that came out, as OTLP JSON (malloc'd), or NULL. */
static inline char *harness_last_json(harness *h)
{
    if (!h->n_got)
        return NULL;
    ot_err err;
    const ProtobufCMessage *m = ot_batch_msg(h->got[h->n_got - 1], &err);
    cr_assert_not_null(m);
    ot_buf out = OT_BUF_INIT;
    cr_assert_eq(ot_json_encode(m, &out, &err), 0);
    ot_buf_putc(&out, '\0');
    return out.data;
}

#endif
