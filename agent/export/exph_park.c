/* exph_park.c: batches parked between a replaced exporter's helper and its
 * replacement's (see exph_park.h). A list, since a reload replaces a few
 * exporters at most and each is looked up once. */
#include "export/exph_park.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/exphelper.h"

typedef struct parked {
    struct parked *next;
    char *id;
    ot_batch **b;
    size_t n;
} parked;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static parked *list;     /* under mu, oldest first */
static char **replacing; /* ids marked by the reload in progress, under mu */
static size_t n_replacing;

void ot_exph_replacing(const char *id)
{
    char *d = strdup(id);
    pthread_mutex_lock(&mu);
    char **nv = d ? realloc(replacing, (n_replacing + 1) * sizeof *nv) : NULL;
    if (nv) {
        replacing = nv;
        replacing[n_replacing++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(d); /* out of memory: that queue is dropped at the deadline as before */
}

bool ot_exph_park_wanted(const char *id)
{
    bool yes = false;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_replacing && !yes; i++)
        yes = strcmp(replacing[i], id) == 0;
    pthread_mutex_unlock(&mu);
    return yes;
}

static void unref_all(ot_batch **b, size_t n, size_t *items)
{
    for (size_t i = 0; i < n; i++) {
        *items += b[i]->items;
        ot_batch_unref(b[i]);
    }
    free(b);
}

void ot_exph_park_put(const char *id, ot_batch **b, size_t n)
{
    parked *p = calloc(1, sizeof *p);
    if (!p || !(p->id = strdup(id))) {
        free(p);
        size_t items = 0;
        unref_all(b, n, &items);
        ot_warn("exphelper", "batches dropped at reload: out of memory",
                "exporter=%s batches=%zu items=%zu", id, n, items);
        return;
    }
    p->b = b;
    p->n = n;
    pthread_mutex_lock(&mu);
    parked **tail = &list;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    pthread_mutex_unlock(&mu);
    ot_info("exphelper", "queue kept for the exporter that replaces it", "exporter=%s batches=%zu",
            id, n);
}

ot_batch **ot_exph_park_take(const char *id, size_t *n)
{
    pthread_mutex_lock(&mu);
    parked *got = NULL;
    for (parked **pp = &list; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            got = *pp;
            *pp = got->next;
            break;
        }
    pthread_mutex_unlock(&mu);
    if (!got)
        return NULL;
    ot_batch **b = got->b;
    *n = got->n;
    free(got->id);
    free(got);
    return b;
}

void ot_exph_parked_drop(void)
{
    pthread_mutex_lock(&mu);
    parked *p = list;
    list = NULL;
    for (size_t i = 0; i < n_replacing; i++)
        free(replacing[i]);
    free(replacing);
    replacing = NULL;
    n_replacing = 0;
    pthread_mutex_unlock(&mu);
    while (p) {
        parked *next = p->next;
        size_t items = 0;
        unref_all(p->b, p->n, &items);
        ot_warn("exphelper", "batches dropped at reload: no exporter of that id took them",
                "exporter=%s batches=%zu items=%zu", p->id, p->n, items);
        free(p->id);
        free(p);
        p = next;
    }
}
