/* dlib.c: libraries opened on first use (see dlib.h). */
#include "base/dlib.h"

#include <dlfcn.h>
#include <pthread.h>

#include "base/log.h"

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

int ot_dlib_load_slow(ot_dlib *d)
{
    pthread_mutex_lock(&load_mu);
    if (atomic_load_explicit(&d->state, memory_order_relaxed) == 0) {
        /* The handle stays open for the life of the process, as a linked
         * library's would. */
        void *h = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);
        const char *missing = NULL;
        for (size_t i = 0; h && i < d->n && !missing; i++)
            if (!(d->ptrs[i] = dlsym(h, d->names[i])))
                missing = d->names[i];
        if (!h || missing)
            ot_error("agent", "cannot load a shared library", "library=%s symbol=%s error=\"%s\"",
                     d->soname, missing ? missing : "-", h ? "symbol not found" : dlerror());
        atomic_store_explicit(&d->state, h && !missing ? 1 : 2, memory_order_release);
    }
    pthread_mutex_unlock(&load_mu);
    return atomic_load_explicit(&d->state, memory_order_relaxed) == 1 ? 0 : -1;
}
