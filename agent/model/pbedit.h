/* pbedit.h: reading and editing protobuf bytes in place, for processors
 * that work on a batch's wire form instead of decoding it (issue 19).
 *
 * Reading: ot_pb_next steps over one field at a time and says where its
 * tag, length and value are, so a caller can find the few fields it needs
 * and skip the rest by their lengths.
 *
 * Editing: an ot_pbedit collects replacements of byte ranges of one
 * buffer (cut a span, replace an attribute, insert a new one) while the
 * caller walks it in order, and produces the edited buffer in one copy.
 * The caller says which length-delimited fields it walks into (enter /
 * leave); when what is inside one changed size, its length prefix is
 * rewritten once, at leave, and the change passes on to the field around
 * it. A field is only recorded once something inside it changes, so a
 * walk that changes nothing costs a few stores per field. Varints are
 * written in their shortest form, as protobuf-c writes them, so edits of
 * canonical input give canonical output. */
#ifndef OT_PBEDIT_H
#define OT_PBEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "base/arena.h"

/* One field as ot_pb_next found it. */
typedef struct ot_pbfield {
    uint32_t num;
    unsigned wt;         /* wire type */
    const uint8_t *at;   /* first byte of the tag */
    const uint8_t *lenp; /* wire type 2: first byte of the length */
    const uint8_t *val;  /* first byte of the value (content for wire type 2) */
    const uint8_t *end;  /* one past the field */
    uint64_t v;          /* wire type 0: the varint; 1 and 5: the bits */
    size_t len;          /* wire type 2: content length */
} ot_pbfield;

/* Reads the field at *p (p < end) and moves *p past it: 1 with f filled,
 * 0 at end, -1 when the bytes are not a field (truncated, bad wire type). */
int ot_pb_next_slow(const uint8_t **p, const uint8_t *end, ot_pbfield *f);

/* The common cases inline: a one-byte tag, then a one-byte varint, 32 or
 * 64 bits, or a length of one or two bytes (names, keys, attributes, ids,
 * times, kinds, most spans). */
static inline int ot_pb_next(const uint8_t **pp, const uint8_t *end, ot_pbfield *f)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return 0;
    uint8_t t = p[0];
    size_t avail = (size_t)(end - p);
    if (!(t & 0x80) && t >= 8 && avail >= 2) {
        f->at = p;
        f->num = t >> 3;
        f->wt = t & 7;
        f->lenp = NULL;
        f->len = 0;
        switch (t & 7) {
        case 2:
            if (!(p[1] & 0x80)) {
                if (p[1] > avail - 2)
                    break;
                f->lenp = p + 1;
                f->val = p + 2;
                f->len = p[1];
                f->end = *pp = p + 2 + p[1];
                return 1;
            }
            if (avail >= 3 && !(p[2] & 0x80)) {
                size_t l = (size_t)(p[1] & 0x7f) | ((size_t)p[2] << 7);
                if (l > avail - 3)
                    break;
                f->lenp = p + 1;
                f->val = p + 3;
                f->len = l;
                f->end = *pp = p + 3 + l;
                return 1;
            }
            break;
        case 0:
            if (!(p[1] & 0x80)) {
                f->val = p + 1;
                f->v = p[1];
                f->end = *pp = p + 2;
                return 1;
            }
            break;
        case 1:
            if (avail >= 9) {
                f->val = p + 1;
                memcpy(&f->v, p + 1, 8);
                f->end = *pp = p + 9;
                return 1;
            }
            break;
        case 5:
            if (avail >= 5) {
                uint32_t x;
                memcpy(&x, p + 1, 4);
                f->val = p + 1;
                f->v = x;
                f->end = *pp = p + 5;
                return 1;
            }
            break;
        default:
            break;
        }
    }
    return ot_pb_next_slow(pp, end, f);
}

/* Bytes the shortest varint of v takes, and writes it (returns bytes). */
size_t ot_pb_varint_size(uint64_t v);
size_t ot_pb_put_varint(uint8_t *out, uint64_t v);
/* Tag of a length-delimited field num followed by the length len. */
size_t ot_pb_put_ld_head(uint8_t *out, uint32_t num, size_t len);

#define OT_PBEDIT_DEPTH 12
#define OT_PBEDIT_INLINE 256

typedef struct ot_pbedit_op {
    size_t off;         /* where in the original */
    size_t cut;         /* bytes of the original replaced */
    const uint8_t *ins; /* what goes there instead; NULL with ins_len: pre */
    uint32_t ins_len;
    uint8_t pre[12];    /* a rewritten length prefix, kept in the op itself */
} ot_pbedit_op;

typedef struct ot_pbedit_frame {
    const uint8_t *at, *lenp, *content, *end;
    ssize_t delta;   /* size change of the content so far */
    size_t slot;     /* its length-prefix op, once recorded */
    bool recorded;
} ot_pbedit_frame;

typedef struct ot_pbedit {
    const uint8_t *base;
    size_t len;
    ot_arena *arena;       /* inserted bytes and the result */
    ot_pbedit_op *ops;
    size_t n_ops, cap_ops;
    ot_pbedit_op inline_ops[OT_PBEDIT_INLINE];
    ot_pbedit_frame fr[OT_PBEDIT_DEPTH];
    int depth;
    int recorded;          /* fr[0..recorded) all have their slot */
    ssize_t delta;         /* size change of the whole buffer */
    bool failed;           /* out of memory or too deep: apply says so */
} ot_pbedit;

void ot_pbedit_init(ot_pbedit *e, const uint8_t *base, size_t len, ot_arena *arena);
void ot_pbedit_free(ot_pbedit *e);
/* Walks into the length-delimited field f (of e's buffer). */
void ot_pbedit_enter(ot_pbedit *e, const ot_pbfield *f);
/* Walks out of the innermost entered field; with drop the whole field
 * (tag, length and content) is cut out, whatever was edited inside. */
void ot_pbedit_leave(ot_pbedit *e, bool drop);
/* Replaces cut bytes at at (inside the innermost entered field, after
 * every earlier edit) with n bytes of ins; ins must live until apply
 * (the arena is the place). */
void ot_pbedit_replace(ot_pbedit *e, const uint8_t *at, size_t cut, const uint8_t *ins, size_t n);
static inline void ot_pbedit_cut(ot_pbedit *e, const ot_pbfield *f)
{
    ot_pbedit_replace(e, f->at, (size_t)(f->end - f->at), NULL, 0);
}
/* True once something was changed. */
static inline bool ot_pbedit_changed(const ot_pbedit *e)
{
    return e->n_ops > 0;
}
/* The edited buffer, in the arena (or the original when nothing changed).
 * -1 on out of memory. Every entered field must have been left. */
int ot_pbedit_apply(const ot_pbedit *e, const uint8_t **out, size_t *out_len);
/* For a caller that puts the edited bytes somewhere of its own: their
 * length, or (size_t)-1 when the edit failed (out of memory, too deep, a
 * field not left); and writing them to out, which has that many bytes
 * (-1 when the list disagrees with it, a bug). */
size_t ot_pbedit_out_len(const ot_pbedit *e);
int ot_pbedit_write(const ot_pbedit *e, uint8_t *out);

#endif
