/* split.h: a window onto part of a decoded export request, for the batch
 * processor's send_batch_max_size. The window keeps every item's resource
 * and scope; it is built from shallow copies that point into the original
 * (which must outlive it), so taking it costs a few small structs and no
 * copy of attributes or bodies. Packing the window gives the protobuf bytes
 * of just those items. */
#ifndef OT_SPLIT_H
#define OT_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "model/otlp.h"

/* Items [lo, hi) of req (spans, data points or log records, counted in
 * document order, as ot_count_items counts them) as a request of the same
 * type, allocated in a. Resource, scope and metric entries that hold no
 * items travel with the window that holds the item just before them (or
 * the first item when none comes before), so windows that partition
 * [0, total) carry every entry of req exactly once. hi is clamped to the
 * item count. NULL only when a is out of memory. */
ProtobufCMessage *ot_split_view(ot_signal s, const ProtobufCMessage *req, size_t lo, size_t hi,
                                ot_arena *a);

/* The same window cut straight from the protobuf bytes of a request, with
 * no decode: fields outside the item lists are copied as they are, length
 * prefixes are rewritten. total: the request's item count as the decoder
 * counts it. Writes to out when out is not NULL (at most len bytes) and
 * returns the window's size; -1 when the bytes do not parse or hold a
 * different count than total (e.g. a oneof given twice), and the caller
 * decodes instead. */
long ot_split_wire(ot_signal s, const uint8_t *buf, size_t len, size_t total, size_t lo,
                   size_t hi, uint8_t *out);

#endif
