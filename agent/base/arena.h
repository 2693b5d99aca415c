/* arena.h: bump allocation for everything that lives exactly as long as one
 * batch or one loaded config. Freeing is one call; there are no small frees
 * and so no small leaks. Not thread-safe: an arena has one owner at a time. */
#ifndef OT_ARENA_H
#define OT_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct ot_arena ot_arena;

/* first_chunk: bytes of the first chunk (0 picks a default). NULL on OOM. */
ot_arena *ot_arena_new(size_t first_chunk);
void ot_arena_free(ot_arena *a);
/* Drops every allocation but keeps the first chunk for reuse. */
void ot_arena_reset(ot_arena *a);

/* 16-byte aligned; NULL only when the system is out of memory. */
void *ot_arena_alloc(ot_arena *a, size_t n);
void *ot_arena_calloc(ot_arena *a, size_t n);
char *ot_arena_strdup(ot_arena *a, const char *s);
char *ot_arena_strndup(ot_arena *a, const char *s, size_t n);
void *ot_arena_memdup(ot_arena *a, const void *p, size_t n);
char *ot_arena_sprintf(ot_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes reserved from the system (what memory accounting charges). */
size_t ot_arena_reserved(const ot_arena *a);

/* An allocator for protobuf-c that allocates from this arena; its free is a
 * no-op. The returned struct lives inside the arena. */
ProtobufCAllocator *ot_arena_pb_allocator(ot_arena *a);

#endif
