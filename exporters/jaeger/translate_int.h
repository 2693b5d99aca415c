/* translate_int.h: translate.c's tag, id and time helpers, and the two
 * the direct path (direct.c) shares with it so both name kinds and write
 * arrays and maps alike (ot_jg_kind_name, ot_jg_json_value). Internal to
 * the jaeger exporter. */
#ifndef OT_JAEGER_TRANSLATE_INT_H
#define OT_JAEGER_TRANSLATE_INT_H

#include "jaeger.h"

typedef Jaeger__ApiV2__Timestamp jg_ts;

typedef struct jg_ctx {
    ot_arena *a;
    ot_buf json; /* scratch for arrays and maps; freed at the end */
    int oom;
} jg_ctx;

/* A list of tags being filled; its size is known before it is filled, so
 * the structs are one allocation and the pointer array another. */
typedef struct jg_tags {
    ot_jaeger_kv **v;
    ot_jaeger_kv *slab;
    size_t n, cap;
} jg_tags;

/* Arena allocation that sets c->oom on failure. */
void *ot_jg_alloc(jg_ctx *c, size_t n);
/* An array or map as the JSON of its plain values ([1,"a"], {"k":true}). */
void ot_jg_json_value(ot_buf *b, const ot_anyvalue *v, int depth);
int ot_jg_tags_init(jg_ctx *c, jg_tags *t, size_t cap);
ot_jaeger_kv *ot_jg_tag_add(jg_tags *t, const char *key);
void ot_jg_tag_str(jg_tags *t, const char *key, const char *s);
void ot_jg_tag_bool(jg_tags *t, const char *key, int v);
void ot_jg_tag_int(jg_tags *t, const char *key, int64_t v);
/* A Jaeger id of size bytes from an OTLP id (right-aligned when short). */
ProtobufCBinaryData ot_jg_id(jg_ctx *c, const ProtobufCBinaryData *id, size_t size);
int ot_jg_id_is_zero(const ProtobufCBinaryData *id);
int ot_jg_same_bytes(const ProtobufCBinaryData *x, const ProtobufCBinaryData *y);
jg_ts *ot_jg_time(jg_ctx *c, uint64_t ns);
/* "server", "client", ... or NULL for internal and unspecified. */
const char *ot_jg_kind_name(int kind);

#endif
