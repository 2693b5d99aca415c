/* varint.h: the protobuf base-128 varint, written and measured.
 *
 * Every encoder in the project writes varints (the batch split, the
 * processors' edits, remote write, the load balancer's rewrite, the
 * jsonlog writer); one inline definition keeps them all in the shortest
 * form protobuf-c emits, and inline because each sits in a per-field
 * loop. Reading stays with the walkers (model/pbedit.h, model/pbwalk.c),
 * which bound it differently. */
#ifndef OT_VARINT_H
#define OT_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes the shortest varint of v takes (1 to 10). */
static inline size_t ot_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at out (room for 10 bytes); returns the bytes written. */
static inline size_t ot_varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

#endif
