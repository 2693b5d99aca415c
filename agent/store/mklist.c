/* mklist.c: point attribute key lists kept once per store (the store's
 * shared_keys option). A million streams of one metric usually share one
 * or a few key lists ("http.route", "http.status_code", ...), which would
 * otherwise be a third of each stream's bytes. A list lives in a hash
 * table with a count of the streams that point to it and goes with the
 * last of them. The table has its own mutex, taken when a stream is
 * inserted or removed, never on a lookup (a lookup compares the stream's
 * list by its bytes, which are shared and so in cache). */
#include "store/mstore_int.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define FIRST 8
/* As mstore.c counts a malloc block: usable size plus glibc's size word. */
static size_t cost(void *p) { return p ? malloc_usable_size(p) + 8 : 0; }

int ot_mstore_ktab_init(ot_mstore_ktab *t)
{
    memset(t, 0, sizeof *t);
    if (!(t->v = calloc(FIRST, sizeof *t->v)))
        return -1;
    t->mask = FIRST - 1;
    pthread_mutex_init(&t->mu, NULL);
    return 0;
}

void ot_mstore_ktab_free(ot_mstore_ktab *t)
{
    if (!t->v)
        return;
    for (size_t i = 0; i <= t->mask; i++)
        for (ot_mstore_klist *l = t->v[i], *nx; l; l = nx) {
            nx = l->next;
            free(l);
        }
    free(t->v);
    t->v = NULL;
    pthread_mutex_destroy(&t->mu);
}

static void grow(ot_mstore_ktab *t, ptrdiff_t *grew)
{
    size_t cap = (t->mask + 1) * 2;
    ot_mstore_klist **nv = calloc(cap, sizeof *nv);
    if (!nv) /* keep the longer chains */
        return;
    for (size_t i = 0; i <= t->mask; i++)
        for (ot_mstore_klist *l = t->v[i], *nx; l; l = nx) {
            nx = l->next;
            l->next = nv[l->hash & (cap - 1)];
            nv[l->hash & (cap - 1)] = l;
        }
    *grew += (ptrdiff_t)cost(nv) - (ptrdiff_t)cost(t->v);
    free(t->v);
    t->v = nv;
    t->mask = cap - 1;
}

ot_mstore_klist *ot_mstore_klist_get_(ot_mstore_ktab *t, const uint8_t *k, size_t n,
                                      ptrdiff_t *grew)
{
    uint64_t h = ot_mstore_hash(k, n, 0x6b6c697374ull);
    *grew = 0;
    pthread_mutex_lock(&t->mu);
    ot_mstore_klist **bp = &t->v[h & t->mask], *l;
    for (l = *bp; l; l = l->next)
        if (l->hash == h && l->len == n && !memcmp(l->bytes, k, n))
            goto found;
    if (!(l = malloc(sizeof *l + n)))
        goto out;
    l->hash = h;
    l->len = n;
    l->refs = 0;
    memcpy(l->bytes, k, n);
    l->next = *bp;
    *bp = l;
    *grew += (ptrdiff_t)cost(l);
    if (++t->n > t->mask + 1)
        grow(t, grew);
found:
    l->refs++;
out:
    pthread_mutex_unlock(&t->mu);
    return l;
}

void ot_mstore_klist_put_(ot_mstore_ktab *t, ot_mstore_klist *l, size_t *shrank)
{
    *shrank = 0;
    pthread_mutex_lock(&t->mu);
    if (--l->refs == 0) {
        ot_mstore_klist **bp = &t->v[l->hash & t->mask];
        while (*bp != l)
            bp = &(*bp)->next;
        *bp = l->next;
        t->n--;
        *shrank = cost(l);
        free(l);
    }
    pthread_mutex_unlock(&t->mu);
}
