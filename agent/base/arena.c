/* arena.c: chunked bump allocator (see arena.h). Large requests get a chunk
 * of their own so a big string does not waste the rest of a normal chunk. */
#include "base/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_CHUNK 8192

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(16) unsigned char data[];
} chunk;

struct ot_arena {
    chunk *head;  /* current chunk, newest first */
    chunk *first; /* kept by reset */
    size_t reserved;
    size_t next_size;
    ProtobufCAllocator pb;
};

static chunk *chunk_new(size_t size)
{
    chunk *c = malloc(sizeof *c + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

ot_arena *ot_arena_new(size_t first_chunk)
{
    if (first_chunk == 0)
        first_chunk = ARENA_DEFAULT_CHUNK;
    ot_arena *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    a->head = a->first = chunk_new(first_chunk);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->reserved = sizeof *a + sizeof(chunk) + first_chunk;
    a->next_size = first_chunk < ARENA_DEFAULT_CHUNK ? ARENA_DEFAULT_CHUNK : first_chunk;
    a->pb.alloc = NULL;
    return a;
}

static void free_chain(chunk *c)
{
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
}

void ot_arena_free(ot_arena *a)
{
    if (!a)
        return;
    free_chain(a->head);
    free(a);
}

void ot_arena_reset(ot_arena *a)
{
    /* Big blocks may sit behind the first chunk too: walk the whole chain. */
    for (chunk *c = a->head; c;) {
        chunk *n = c->next;
        if (c != a->first)
            free(c);
        c = n;
    }
    a->head = a->first;
    a->first->used = 0;
    a->first->next = NULL;
    a->reserved = sizeof *a + sizeof(chunk) + a->first->size;
}

void *ot_arena_alloc(ot_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    chunk *c = a->head;
    if (c->size - c->used >= need) {
        void *p = c->data + c->used;
        c->used += need;
        return p;
    }
    if (need > a->next_size / 4) {
        /* Big block: its own chunk, linked behind the current one so the
         * current chunk keeps serving small requests. */
        chunk *big = chunk_new(need);
        if (!big)
            return NULL;
        big->used = need;
        big->next = c->next;
        c->next = big;
        a->reserved += sizeof(chunk) + need;
        return big->data;
    }
    if (a->next_size < (1u << 20))
        a->next_size *= 2;
    chunk *nc = chunk_new(a->next_size);
    if (!nc)
        return NULL;
    nc->next = c;
    a->head = nc;
    a->reserved += sizeof(chunk) + a->next_size;
    nc->used = need;
    return nc->data;
}

void *ot_arena_calloc(ot_arena *a, size_t n)
{
    void *p = ot_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *ot_arena_memdup(ot_arena *a, const void *src, size_t n)
{
    void *p = ot_arena_alloc(a, n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

char *ot_arena_strndup(ot_arena *a, const char *s, size_t n)
{
    char *p = ot_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ot_arena_strdup(ot_arena *a, const char *s)
{
    return s ? ot_arena_strndup(a, s, strlen(s)) : NULL;
}

char *ot_arena_sprintf(ot_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : ot_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

size_t ot_arena_reserved(const ot_arena *a)
{
    return a->reserved;
}

static void *pb_alloc(void *data, size_t size)
{
    return ot_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator *ot_arena_pb_allocator(ot_arena *a)
{
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return &a->pb;
}
