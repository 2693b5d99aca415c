/* batch.c: batch lifetime, lazy decode and encode (see batch.h). */
#include "model/batch.h"

#include <stdlib.h>
#include <string.h>

static ot_batch *batch_alloc(ot_signal s, size_t hint)
{
    ot_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->arena = ot_arena_new(hint);
    if (!b->arena) {
        free(b);
        return NULL;
    }
    b->signal = s;
    atomic_init(&b->refs, 1);
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

ot_batch *ot_batch_new(ot_signal s)
{
    ot_batch *b = batch_alloc(s, 0);
    if (!b)
        return NULL;
    const ProtobufCMessageDescriptor *d = ot_signal_request_desc(s);
    b->msg = ot_arena_alloc(b->arena, d->sizeof_message);
    if (!b->msg) {
        ot_batch_unref(b);
        return NULL;
    }
    d->message_init(b->msg);
    return b;
}

ot_batch *ot_batch_adopt_wire(ot_signal s, ot_arena *arena, const uint8_t *wire, size_t len,
                              size_t items)
{
    ot_batch *b = calloc(1, sizeof *b);
    if (!b) {
        ot_arena_free(arena);
        return NULL;
    }
    b->arena = arena;
    b->signal = s;
    b->wire = wire;
    b->wire_len = len;
    b->items = items;
    atomic_init(&b->refs, 1);
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

ot_batch *ot_batch_adopt(ot_signal s, ot_arena *arena, ProtobufCMessage *msg)
{
    ot_batch *b = ot_batch_adopt_wire(s, arena, NULL, 0, 0);
    if (b) {
        b->msg = msg;
        b->items = ot_count_items(s, msg);
    }
    return b;
}

static int decode_locked(ot_batch *b, ot_err *err)
{
    if (b->msg)
        return 0;
    const ProtobufCMessageDescriptor *d = ot_signal_request_desc(b->signal);
    b->msg = protobuf_c_message_unpack(d, ot_arena_pb_allocator(b->arena), b->wire_len, b->wire);
    if (!b->msg)
        return ot_err_set(err, "invalid protobuf %s request (%zu bytes)", ot_signal_name(b->signal),
                          b->wire_len);
    if (b->items == (size_t)-1)
        b->items = ot_count_items(b->signal, b->msg);
    return 0;
}

ot_batch *ot_batch_from_wire(ot_signal s, const void *buf, size_t len, size_t items, ot_err *err)
{
    /* Decoding roughly triples the size; size the first chunk so the common
     * request fits in one allocation. */
    ot_batch *b = batch_alloc(s, len + 256 + (items == (size_t)-1 ? len * 3 : 0));
    if (!b) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    uint8_t *copy = ot_arena_memdup(b->arena, buf, len);
    if (!copy && len) {
        ot_batch_unref(b);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    b->wire = copy;
    b->wire_len = len;
    b->items = items;
    if (items == (size_t)-1 && decode_locked(b, err) < 0) {
        ot_batch_unref(b);
        return NULL;
    }
    return b;
}

ot_batch *ot_batch_decode(ot_signal s, const void *buf, size_t len, ot_err *err)
{
    return ot_batch_from_wire(s, buf, len, (size_t)-1, err);
}

ot_batch *ot_batch_ref(ot_batch *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void ot_batch_unref(ot_batch *b)
{
    if (!b)
        return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&b->lock);
    ot_arena_free(b->arena);
    free(b);
}

const ProtobufCMessage *ot_batch_msg(ot_batch *b, ot_err *err)
{
    pthread_mutex_lock(&b->lock);
    int rc = decode_locked(b, err);
    pthread_mutex_unlock(&b->lock);
    return rc < 0 ? NULL : b->msg;
}

ProtobufCMessage *ot_batch_msg_mut(ot_batch *b, ot_err *err)
{
    if (!ot_batch_msg(b, err))
        return NULL;
    b->wire = NULL;
    b->wire_len = 0;
    return b->msg;
}

int ot_batch_wire(ot_batch *b, const uint8_t **buf, size_t *len, ot_err *err)
{
    pthread_mutex_lock(&b->lock);
    if (!b->wire) {
        size_t n = protobuf_c_message_get_packed_size(b->msg);
        uint8_t *p = ot_arena_alloc(b->arena, n ? n : 1);
        if (!p) {
            pthread_mutex_unlock(&b->lock);
            return ot_err_set(err, "out of memory encoding %zu bytes", n);
        }
        protobuf_c_message_pack(b->msg, p);
        b->wire = p;
        b->wire_len = n;
    }
    *buf = b->wire;
    *len = b->wire_len;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

void ot_batch_set_wire(ot_batch *b, const uint8_t *wire, size_t len, size_t items)
{
    b->msg = NULL;
    b->wire = wire;
    b->wire_len = len;
    b->items = items;
}

void ot_batch_recount(ot_batch *b)
{
    if (b->msg)
        b->items = ot_count_items(b->signal, b->msg);
}

static int copy_meta(ot_batch *dst, const ot_batch *src)
{
    for (size_t i = 0; i < src->n_meta; i++)
        if (ot_batch_set_meta(dst, src->meta[i].key, src->meta[i].value) < 0)
            return -1;
    return 0;
}

ot_batch *ot_batch_clone(ot_batch *b, ot_err *err)
{
    const uint8_t *wire;
    size_t len;
    /* The serialized form is the cheapest deep copy there is. */
    if (ot_batch_wire(b, &wire, &len, err) < 0)
        return NULL;
    ot_batch *c = ot_batch_from_wire(b->signal, wire, len, b->items, err);
    if (!c)
        return NULL;
    if (copy_meta(c, b) < 0) {
        ot_batch_unref(c);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    return c;
}

ot_batch *ot_batch_writable(ot_batch *b, ot_err *err)
{
    if (atomic_load_explicit(&b->refs, memory_order_acquire) == 1)
        return b;
    ot_batch *c = ot_batch_clone(b, err);
    ot_batch_unref(b);
    return c;
}

size_t ot_batch_bytes(const ot_batch *b)
{
    return ot_arena_reserved(b->arena) + sizeof *b;
}

int ot_batch_set_meta(ot_batch *b, const char *key, const char *value)
{
    for (size_t i = 0; i < b->n_meta; i++)
        if (strcmp(b->meta[i].key, key) == 0) {
            b->meta[i].value = ot_arena_strdup(b->arena, value);
            return b->meta[i].value ? 0 : -1;
        }
    ot_meta_kv *nm = ot_arena_alloc(b->arena, (b->n_meta + 1) * sizeof *nm);
    if (!nm)
        return -1;
    if (b->n_meta)
        memcpy(nm, b->meta, b->n_meta * sizeof *nm);
    nm[b->n_meta].key = ot_arena_strdup(b->arena, key);
    nm[b->n_meta].value = ot_arena_strdup(b->arena, value);
    if (!nm[b->n_meta].key || !nm[b->n_meta].value)
        return -1;
    b->meta = nm;
    b->n_meta++;
    return 0;
}

const char *ot_batch_get_meta(const ot_batch *b, const char *key)
{
    for (size_t i = 0; i < b->n_meta; i++)
        if (strcmp(b->meta[i].key, key) == 0)
            return b->meta[i].value;
    return NULL;
}
