/* discover.c: which files the include and exclude globs name right now.
 * glob(3) has no `**`, so the walk is ours: from the literal directory at
 * the head of a pattern down, matching each path segment with fnmatch(3),
 * `**` standing for any number of directories. Symlinks are followed (the
 * kubelet links /var/log/containers/NAME.log into /var/log/pods); the
 * same file reached twice is told apart later by its inode. */
#include <dirent.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "discover.h"

#define MAX_DEPTH 24

static bool seg_eq(const char *p, size_t pn, const char *s, size_t sn)
{
    char pb[256], sb[256];
    if (pn >= sizeof pb || sn >= sizeof sb)
        return false;
    memcpy(pb, p, pn);
    pb[pn] = 0;
    memcpy(sb, s, sn);
    sb[sn] = 0;
    return fnmatch(pb, sb, FNM_PERIOD) == 0;
}

static bool match(const char *p, const char *s, int depth)
{
    if (depth > 64)
        return false;
    if (!*p)
        return !*s;
    if (p[0] == '*' && p[1] == '*' && (p[2] == '/' || !p[2])) {
        const char *rest = p[2] == '/' ? p + 3 : p + 2;
        if (!*rest)
            return true;
        for (;;) {
            if (match(rest, s, depth + 1))
                return true;
            const char *sl = strchr(s, '/');
            if (!sl)
                return false;
            s = sl + 1;
        }
    }
    const char *pe = strchr(p, '/'), *se = strchr(s, '/');
    size_t pn = pe ? (size_t)(pe - p) : strlen(p), sn = se ? (size_t)(se - s) : strlen(s);
    if (!seg_eq(p, pn, s, sn))
        return false;
    if (!pe || !se)
        return !pe && !se;
    return match(pe + 1, se + 1, depth + 1);
}

bool jl_glob_match(const char *pattern, const char *path)
{
    return match(pattern, path, 0);
}

typedef struct walk {
    const char *pattern;
    const ot_strlist *exclude;
    jl_found_fn fn;
    void *ud;
    int max_depth;
} walk;

static bool excluded(const walk *w, const char *path)
{
    for (size_t i = 0; w->exclude && i < w->exclude->n; i++)
        if (jl_glob_match(w->exclude->v[i], path))
            return true;
    return false;
}

static void walk_dir(const walk *w, char *path, size_t len, size_t cap, int depth)
{
    if (depth > w->max_depth)
        return;
    DIR *d = opendir(len ? path : "/");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
            continue;
        size_t nl = strlen(nm);
        if (len + 1 + nl + 1 > cap)
            continue;
        path[len] = '/';
        memcpy(path + len + 1, nm, nl + 1);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISREG(st.st_mode)) {
                if (jl_glob_match(w->pattern, path) && !excluded(w, path))
                    w->fn(w->ud, path, &st);
            } else if (S_ISDIR(st.st_mode)) {
                walk_dir(w, path, len + 1 + nl, cap, depth + 1);
            }
        }
        path[len] = 0;
    }
    closedir(d);
}

void jl_discover(const ot_strlist *include, const ot_strlist *exclude, jl_found_fn fn, void *ud)
{
    for (size_t i = 0; include && i < include->n; i++) {
        const char *pat = include->v[i];
        if (pat[0] != '/')
            continue; /* validate refuses relative patterns */
        /* the literal head: segments up to the first with a wildcard */
        size_t head = 0, segs_after = 0;
        bool wild = false, dstar = false;
        for (const char *p = pat; *p;) {
            const char *sl = strchr(p + 1, '/');
            size_t n = sl ? (size_t)(sl - p) : strlen(p);
            bool w = memchr(p, '*', n) || memchr(p, '?', n) || memchr(p, '[', n);
            if (w)
                wild = true;
            if (!wild)
                head = (size_t)(p - pat) + n;
            else
                segs_after++;
            if (n >= 3 && memcmp(p, "/**", 3) == 0)
                dstar = true;
            p += n;
        }
        if (!wild) {
            struct stat st;
            if (stat(pat, &st) == 0 && S_ISREG(st.st_mode)) {
                walk w = {pat, exclude, fn, ud, 0};
                if (!excluded(&w, pat))
                    fn(ud, pat, &st);
            }
            continue;
        }
        char path[4096];
        if (head >= sizeof path)
            continue;
        memcpy(path, pat, head);
        path[head] = 0;
        walk w = {pat, exclude, fn, ud, dstar ? MAX_DEPTH : (int)segs_after};
        walk_dir(&w, path, head, sizeof path, 1);
    }
}
