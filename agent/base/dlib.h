/* dlib.h: a shared library opened the first time it is used, not linked.
 * Each library linked into the agent costs resident pages at start
 * (mapping, relocations, the pages around every fault), whether or not the
 * config uses it; the ones a config may not need (libcurl and the
 * Kerberos, LDAP and SSH libraries it pulls in; OpenSSL; snappy and the
 * C++ runtime it needs) are opened by the forwarding functions of
 * net/curl_load.c, base/openssl_load.c and base/snappy_load.c only when a
 * component first calls them.
 * tests/e2e/test_packaging.py reads the soname of each OT_DLIB_DEFINE so
 * their packages stay in the image and the .deb's Depends. */
#ifndef OT_DLIB_H
#define OT_DLIB_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct ot_dlib {
    const char *soname;       /* "libcurl.so.4" */
    const char *const *names; /* the symbols, in the order of ptrs */
    void **ptrs;              /* filled by ot_dlib_load */
    size_t n;
    atomic_int state;         /* 0 not tried, 1 loaded, 2 failed; starts 0 */
} ot_dlib;

int ot_dlib_load_slow(ot_dlib *d);

/* The table of the one library a forwarding file opens. SYMS(X) lists its
 * functions; OT_DLIB_REAL(f) is the loaded f, with the type its header
 * gives f; OT_DLIB_LOADED() opens the library the first time. */
#define OT_DLIB_AS_ENUM(f) OT_DLIB_##f,
#define OT_DLIB_AS_NAME(f) #f,
#define OT_DLIB_DEFINE(soname_, SYMS)                                                         \
    enum { SYMS(OT_DLIB_AS_ENUM) OT_DLIB_COUNT };                                             \
    static const char *const ot_dlib_names[OT_DLIB_COUNT] = {SYMS(OT_DLIB_AS_NAME)};          \
    static void *ot_dlib_ptrs[OT_DLIB_COUNT];                                                 \
    static ot_dlib ot_dlib_this = {                                                           \
        .soname = soname_, .names = ot_dlib_names, .ptrs = ot_dlib_ptrs, .n = OT_DLIB_COUNT}
#define OT_DLIB_REAL(f) ((__typeof__(&f))ot_dlib_ptrs[OT_DLIB_##f])
#define OT_DLIB_LOADED() (ot_dlib_load(&ot_dlib_this) == 0)

/* Opens and resolves d once (thread-safe); 0 when every symbol is there.
 * A failure is logged once, with dlerror()'s reason. After the first call
 * it costs one atomic load. */
static inline int ot_dlib_load(ot_dlib *d)
{
    int st = atomic_load_explicit(&d->state, memory_order_acquire);
    if (st == 0)
        return ot_dlib_load_slow(d);
    return st == 1 ? 0 : -1;
}

#endif
