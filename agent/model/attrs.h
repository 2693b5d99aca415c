/* attrs.h: attribute actions (insert, update, upsert, delete, hash) as the
 * collector's `attributes` and `resource` processors configure them. Both
 * processors share this one implementation, and components may not
 * include each other, so it lives in agent/.
 *
 * Config: a sequence of maps {key, action, value | from_attribute}. A
 * `value` keeps its YAML type: 5 is an int, "5" a string, 1.5 a double,
 * true a bool. `hash` replaces a value with the lowercase hex SHA-256 of
 * its string form (maps and lists are left as they are). */
#ifndef OT_ATTRS_H
#define OT_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "config/config.h"
#include "base/err.h"
#include "model/otlp.h"

typedef enum ot_attrs_op {
    OT_ATTRS_INSERT = 0, /* only when the key is absent */
    OT_ATTRS_UPDATE,     /* only when the key is present */
    OT_ATTRS_UPSERT,
    OT_ATTRS_DELETE,
    OT_ATTRS_HASH,
    OT_ATTRS_EXTRACT, /* regex groups of the key's string value upserted by their names */
} ot_attrs_op;

/* The most named groups an extract pattern may have. */
#define OT_ATTRS_GROUPS 31

typedef struct ot_attrs_action {
    ot_attrs_op op;
    const char *key;
    const char *from; /* from_attribute, or NULL */
    ot_anyvalue value; /* when from is NULL (insert/update/upsert) */
    /* extract: the pattern, and the name of each of its groups by number
     * (names[1..groups]); matching is ot_attrs_extract's. */
    struct pcre2_real_code_8 *re;
    struct pcre2_real_match_context_8 *mctx;
    const char **names;
    uint32_t groups;
} ot_attrs_action;

/* Matches extract action act against the string s (n bytes): the number of
 * groups with their spans in start[1..] / len[1..] (a group that took no
 * part is empty), or 0 when the pattern does not match (or hit its match
 * limit). Thread-safe. */
uint32_t ot_attrs_extract(const ot_attrs_action *act, const char *s, size_t n,
                          size_t start[OT_ATTRS_GROUPS + 1], size_t len[OT_ATTRS_GROUPS + 1]);

typedef struct ot_attrs {
    ot_attrs_action *v;
    size_t n;
    ot_arena *arena; /* owns v and its strings */
} ot_attrs;

/* Config check of an `actions` node; every problem goes to d. Returns the
 * number of errors. */
size_t ot_attrs_check(const ot_node *actions, const char *path, ot_diags *d);
/* Builds the actions from a node that passed the check. */
int ot_attrs_build(ot_attrs *out, const ot_node *actions, ot_err *err);
void ot_attrs_free(ot_attrs *a);

/* The actions as one batch uses them: keys and values copied once into
 * the batch's arena, because the data must not point into the config (a
 * reload frees it) and copying per item would grow the batch per item. */
typedef struct ot_attrs_batch {
    const ot_attrs *a;
    ot_arena *arena;
    const char **keys;  /* per action */
    const char **from;  /* per action, or NULL */
    ot_anyvalue *vals;  /* per action */
} ot_attrs_batch;

int ot_attrs_begin(ot_attrs_batch *ab, const ot_attrs *a, ot_arena *arena);
/* Applies every action, in order, to one attribute list; new entries and
 * arrays come from the batch's arena. -1 on out-of-memory. */
int ot_attrs_apply(ot_attrs_batch *ab, ot_keyvalue ***kv, size_t *n);

/* The hash action's result for a scalar value (kind: an AnyValue
 * value_case; p, n the text or bytes), as lowercase hex: 0, or 1 when the
 * kind is not hashed (maps, lists, unset), -1 on a crypto failure. */
int ot_attrs_hash_hex(int kind, const void *p, size_t n, int64_t i, double d, bool b,
                      char hex[65]);

/* ---- the same actions on protobuf bytes (attrs_wire.c) ------------------ */

struct ot_pbedit;

/* The actions' keys and values encoded once per batch. */
typedef struct ot_attrs_wire {
    const ot_attrs *a;
    ot_arena *arena;
    const uint8_t **val; /* per action: AnyValue content of value */
    size_t *vlen;
    size_t *klen, *flen; /* per action: key and from_attribute lengths */
    void *cache;         /* per action: its entry as last encoded (attrs_wire.c) */
    bool adds_only;      /* every action inserts or upserts a constant */
} ot_attrs_wire;

int ot_attrs_wire_begin(ot_attrs_wire *aw, const ot_attrs *a, ot_arena *arena);
/* Applies every action, in order, to the attributes (repeated KeyValue
 * field num) of the message [msg, end) that e has entered, as edits of e:
 * replaced entries in place, deleted ones cut, new ones after the last
 * existing entry (or where field num goes in field order). Returns 1 when
 * something changed, 0 when not, -1 declined (too many entries, a value
 * protobuf-c would merge) or out of memory: decode the batch instead. */
struct ot_wire_index;
int ot_attrs_wire_apply(ot_attrs_wire *aw, struct ot_pbedit *e, const uint8_t *msg,
                        const uint8_t *end, uint32_t num);
/* The same with idx, the index of [msg, end) (otlp_wire.h), so only the
 * attribute entries are stepped over, and only once for every reader of
 * the item when the index keeps them. */
int ot_attrs_wire_apply_idx(ot_attrs_wire *aw, struct ot_pbedit *e, const uint8_t *msg,
                            const uint8_t *end, uint32_t num, struct ot_wire_index *idx);
/* What the actions make of an empty list (a resource that is not there):
 * the new entries as fields num, possibly none. -1 on out of memory. */
int ot_attrs_wire_fresh(ot_attrs_wire *aw, uint32_t num, const uint8_t **out, size_t *n);

#endif
