/* config_diag.c: the list of configuration problems. A config is checked
 * whole, so problems are collected rather than returned one at a time, then
 * sorted by position and printed as compiler-style text or as JSON for
 * editors and CI. Each diagnostic owns copies of its strings (in the list's
 * arena) so it outlives the config it talks about. */
#include "config/config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

void ot_diags_init(ot_diags *d)
{
    memset(d, 0, sizeof *d);
}

void ot_diags_free(ot_diags *d)
{
    ot_arena_free(d->arena);
    free(d->v);
    memset(d, 0, sizeof *d);
}

static char *arena_vsprintf(ot_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *p = n < 0 ? NULL : ot_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

static void diag_vadd(ot_diags *d, ot_severity sev, const char *file, int line, int col,
                      const char *path, const char *fmt, va_list ap)
{
    if (!d)
        return;
    /* Counted first: even when memory runs out, the caller learns the
     * config is invalid. */
    if (sev == OT_SEV_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (!d->arena && !(d->arena = ot_arena_new(0)))
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        ot_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return;
        d->v = v;
        d->cap = cap;
    }
    ot_diag g = {
        .sev = sev,
        .file = ot_arena_strdup(d->arena, file ? file : "-"),
        .line = line,
        .col = col,
        .path = ot_arena_strdup(d->arena, path ? path : ""),
        .msg = arena_vsprintf(d->arena, fmt, ap),
    };
    if (g.file && g.path && g.msg)
        d->v[d->n++] = g;
}

void ot_diag_add(ot_diags *d, ot_severity sev, const ot_node *at, const char *path,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, sev, at ? at->file : NULL, at ? at->line : 0, at ? at->col : 0, path, fmt, ap);
    va_end(ap);
}

void ot_diag_add_at(ot_diags *d, ot_severity sev, const char *file, int line, int col,
                    const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, sev, file, line, col, path, fmt, ap);
    va_end(ap);
}

static int diag_cmp(const ot_diag *a, const ot_diag *b)
{
    int c = strcmp(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return 0;
}

/* Bottom-up merge sort: stable (qsort is not), so problems at one position
 * keep the order in which they were found. */
void ot_diags_sort(ot_diags *d)
{
    if (d->n < 2)
        return;
    ot_diag *tmp = malloc(d->n * sizeof *tmp);
    if (!tmp)
        return;
    ot_diag *src = d->v, *dst = tmp;
    for (size_t w = 1; w < d->n; w *= 2) {
        for (size_t lo = 0; lo < d->n; lo += 2 * w) {
            size_t mid = lo + w < d->n ? lo + w : d->n;
            size_t hi = lo + 2 * w < d->n ? lo + 2 * w : d->n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = diag_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        ot_diag *t = src;
        src = dst;
        dst = t;
    }
    if (src != d->v)
        memcpy(d->v, src, d->n * sizeof *src);
    free(tmp);
}

static const char *sev_name(ot_severity s)
{
    return s == OT_SEV_ERROR ? "error" : "warning";
}

void ot_diags_print(const ot_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const ot_diag *g = &d->v[i];
        /* Without a line there is no position worth printing; without a
         * file either (a programming error), no location at all. */
        if (g->line > 0)
            fprintf(out, "%s:%d:%d: ", g->file, g->line, g->col);
        else if (strcmp(g->file, "-") != 0)
            fprintf(out, "%s: ", g->file);
        fprintf(out, "%s: ", sev_name(g->sev));
        if (g->path[0])
            fprintf(out, "%s: ", g->path);
        fprintf(out, "%s\n", g->msg);
    }
}

void ot_diags_print_json(const ot_diags *d, FILE *out)
{
    ot_buf b = OT_BUF_INIT;
    ot_buf_printf(&b, "{\"valid\":%s,\"errors\":[", d->errors ? "false" : "true");
    for (size_t i = 0; i < d->n; i++) {
        const ot_diag *g = &d->v[i];
        ot_buf_puts(&b, i ? ",{\"file\":" : "{\"file\":");
        ot_buf_json_str(&b, g->file, strlen(g->file));
        ot_buf_printf(&b, ",\"line\":%d,\"column\":%d,\"path\":", g->line, g->col);
        ot_buf_json_str(&b, g->path, strlen(g->path));
        ot_buf_printf(&b, ",\"severity\":\"%s\",\"message\":", sev_name(g->sev));
        ot_buf_json_str(&b, g->msg, strlen(g->msg));
        ot_buf_putc(&b, '}');
    }
    ot_buf_puts(&b, "]}\n");
    if (!b.oom)
        fwrite(b.data, 1, b.len, out);
    ot_buf_free(&b);
}
