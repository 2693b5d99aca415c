/* mslab.c: the store's slab allocator (its slab option). A stream of a
 * scrape endpoint is ~110 bytes; from malloc it costs 8 more for glibc's
 * size word and up to 15 more for its 16-byte rounding, a fifth of the
 * stream. Here blocks of one size (in steps of 8) share 64 KiB pages and
 * carry no header: a block's page is its address rounded down, and its
 * size is what the store asks to free (the store computes it from the
 * stream, as it did to allocate it).
 *
 * Churn: each page keeps its own free list and a count of blocks in use;
 * pages with room are on their size's list, and a page that empties is
 * freed unless it is the only one of its size with room (so one stream
 * coming and going does not allocate a page each time). What is freed
 * goes back to the kernel, not held for the store's lifetime.
 *
 * One mutex: blocks come and go when streams are inserted or removed,
 * which the store does outside its lookups. */
#include "store/mstore_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE ((size_t)OT_MSTORE_SLAB_PAGE)
#define NCLASS (OT_MSTORE_SLAB_MAX / 8 + 1)

typedef struct page {
    struct page *next, *prev; /* on its class's list while it has room */
    void *free;               /* freed blocks, each holding the next */
    uint32_t used, bump;      /* blocks in use; offset of the first never used */
    uint32_t size;
    bool listed;
} page;

#define FIRST_OFF ((sizeof(page) + 63) & ~(size_t)63)

struct ot_mstore_slab {
    pthread_mutex_t mu;
    page *room[NCLASS];
    size_t pages;
};

ot_mstore_slab *ot_mstore_slab_new(void)
{
    ot_mstore_slab *sl = calloc(1, sizeof *sl);
    if (sl)
        pthread_mutex_init(&sl->mu, NULL);
    return sl;
}

/* Pages come from mmap, aligned by trimming a double-sized mapping: an
 * aligned malloc leaves a touched free chunk on each side of every page
 * (8 KiB of RSS a page, measured) and cannot give the page back. */
static page *page_map(void)
{
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + PAGE < p + 2 * PAGE)
        munmap(a + PAGE, (size_t)(p + 2 * PAGE - (a + PAGE)));
    return (page *)(void *)a;
}

static void page_unmap(page *pg) { munmap(pg, PAGE); }

static void unlink_page(ot_mstore_slab *sl, page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        sl->room[pg->size / 8] = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    pg->next = pg->prev = NULL;
    pg->listed = false;
}

static void link_page(ot_mstore_slab *sl, page *pg)
{
    page **head = &sl->room[pg->size / 8];
    pg->prev = NULL;
    pg->next = *head;
    if (*head)
        (*head)->prev = pg;
    *head = pg;
    pg->listed = true;
}

/* Every block is given back before this (the store frees its streams
 * first); what is left is the pages kept for reuse. */
void ot_mstore_slab_free(ot_mstore_slab *sl)
{
    if (!sl)
        return;
    for (size_t c = 0; c < NCLASS; c++)
        while (sl->room[c]) {
            page *pg = sl->room[c];
            unlink_page(sl, pg);
            page_unmap(pg);
        }
    pthread_mutex_destroy(&sl->mu);
    free(sl);
}

void *ot_mstore_slab_alloc(ot_mstore_slab *sl, size_t n, size_t *grew)
{
    size_t size = ot_mstore_slab_cost(n ? n : 1);
    *grew = 0;
    if (size > OT_MSTORE_SLAB_MAX)
        return NULL;
    pthread_mutex_lock(&sl->mu);
    page *pg = sl->room[size / 8];
    if (!pg) {
        if (!(pg = page_map())) {
            pthread_mutex_unlock(&sl->mu);
            return NULL;
        }
        pg->size = (uint32_t)size;
        pg->bump = (uint32_t)FIRST_OFF;
        link_page(sl, pg);
        sl->pages++;
        *grew = PAGE;
    }
    void *p;
    if (pg->free) {
        p = pg->free;
        memcpy(&pg->free, p, sizeof pg->free);
    } else {
        p = (char *)pg + pg->bump;
        pg->bump += pg->size;
    }
    pg->used++;
    if (!pg->free && pg->bump + pg->size > PAGE)
        unlink_page(sl, pg);
    pthread_mutex_unlock(&sl->mu);
    return p;
}

void ot_mstore_slab_release(ot_mstore_slab *sl, void *p, size_t n, size_t *shrank)
{
    (void)n;
    page *pg = (page *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1));
    *shrank = 0;
    pthread_mutex_lock(&sl->mu);
    memcpy(p, &pg->free, sizeof pg->free);
    pg->free = p;
    pg->used--;
    if (!pg->listed)
        link_page(sl, pg);
    if (pg->used == 0 && (pg->prev || pg->next)) { /* not the last with room */
        unlink_page(sl, pg);
        page_unmap(pg);
        sl->pages--;
        *shrank = PAGE;
    }
    pthread_mutex_unlock(&sl->mu);
}
