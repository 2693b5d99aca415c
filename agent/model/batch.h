/* batch.h: the unit of data that flows through a pipeline. One OTLP export
 * request (traces, metrics or logs), the arena that owns every byte of it,
 * and a reference count.
 *
 * A batch may hold the decoded message, its protobuf bytes, or both. The
 * fast path keeps only bytes: receivers check them and exporters that speak
 * OTLP send them as they are. The first caller that needs fields decodes
 * (once; thread-safe). Whoever changes the message must own the only
 * reference (ot_batch_writable) and asks for it with ot_batch_msg_mut,
 * which forgets the bytes so they are re-encoded when next asked for.
 *
 * Ownership: ot_consumer.consume() takes one reference. A stage that keeps
 * the batch keeps that reference; one that is done with it unrefs. */
#ifndef OT_BATCH_H
#define OT_BATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "model/otlp.h"

typedef struct ot_meta_kv {
    const char *key; /* lower-case header name */
    const char *value;
} ot_meta_kv;

typedef struct ot_batch {
    ot_signal signal;
    atomic_int refs;
    ot_arena *arena;
    ProtobufCMessage *msg; /* decoded form, or NULL */
    const uint8_t *wire;   /* serialized form, or NULL */
    size_t wire_len;
    size_t items;          /* spans / data points / log records */
    size_t decode_cost;    /* bytes decoding wire would allocate (ot_pbwalk_check),
                              0 when not known or already decoded */
    ot_meta_kv *meta;      /* request metadata (include_metadata) */
    size_t n_meta;
    pthread_mutex_t lock;  /* guards lazy decode and encode */
} ot_batch;

/* An empty request of the signal, ready to be filled in its arena. */
ot_batch *ot_batch_new(ot_signal s);
/* Takes a copy of protobuf bytes. items: the count if the caller already
 * walked the bytes, else (size_t)-1 and the batch decodes to count. NULL
 * with err set when the bytes do not decode (only when it had to decode). */
ot_batch *ot_batch_from_wire(ot_signal s, const void *buf, size_t len, size_t items, ot_err *err);
/* Wraps a message already built in arena (the batch now owns it). NULL
 * (arena freed) on OOM. */
ot_batch *ot_batch_adopt(ot_signal s, ot_arena *arena, ProtobufCMessage *msg);
/* Wraps protobuf bytes that already live in arena (the batch now owns it):
 * the receive and batching fast paths, with no copy. items must be the
 * count the caller got from walking the bytes. NULL (arena freed) on OOM. */
ot_batch *ot_batch_adopt_wire(ot_signal s, ot_arena *arena, const uint8_t *wire, size_t len,
                              size_t items);
/* Decodes now; NULL with err set when the bytes are not a valid request. */
ot_batch *ot_batch_decode(ot_signal s, const void *buf, size_t len, ot_err *err);

ot_batch *ot_batch_ref(ot_batch *b);
void ot_batch_unref(ot_batch *b);
/* A deep, independent copy (own arena, refs = 1). */
ot_batch *ot_batch_clone(ot_batch *b, ot_err *err);
/* Returns b when the caller holds the only reference; otherwise a clone,
 * and the caller's reference to b is dropped. NULL (b dropped) on error. */
ot_batch *ot_batch_writable(ot_batch *b, ot_err *err);

/* The decoded request, read-only; decodes lazily. NULL with err set if the
 * bytes do not decode. */
const ProtobufCMessage *ot_batch_msg(ot_batch *b, ot_err *err);
/* The decoded request for changing in place. Caller must hold the only
 * reference. Forgets the serialized form. */
ProtobufCMessage *ot_batch_msg_mut(ot_batch *b, ot_err *err);
/* Protobuf bytes; encodes lazily. */
int ot_batch_wire(ot_batch *b, const uint8_t **buf, size_t *len, ot_err *err);
/* Hands the batch edited protobuf bytes (in its arena) with their item
 * count: the processors that edit the wire form (issue 19). The decoded
 * form, if any, is forgotten. Caller must hold the only reference. */
void ot_batch_set_wire(ot_batch *b, const uint8_t *wire, size_t len, size_t items);
/* Recount items after the message was changed. */
void ot_batch_recount(ot_batch *b);

/* Bytes this batch holds, for queue and memory bounds. */
size_t ot_batch_bytes(const ot_batch *b);

int ot_batch_set_meta(ot_batch *b, const char *key, const char *value);
const char *ot_batch_get_meta(const ot_batch *b, const char *key);

#endif
