/* load.c: a config from its sources: each --config file read and parsed,
 * the files merged in order (maps key by key, the rest replaced), then each
 * --set item applied, into one tree that owns its arena (ot_config). Apart
 * from the YAML loader because this is the CLI's notion of a config, not
 * YAML's. */
#include "config/tree_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

struct ot_config {
    ot_arena *arena;
    ot_node *root;
};

/* ---- loading, merging, --set --------------------------------------------- */

/* Later files win: maps merge key by key, anything else is replaced. */
static ot_node *merge(ot_arena *a, ot_node *dst, ot_node *src)
{
    if (!dst || dst->kind != OT_NODE_MAP || src->kind != OT_NODE_MAP)
        return src;
    size_t extra = 0;
    for (size_t i = 0; i < src->n; i++)
        extra += tree_find_key(dst, src->keys[i]->str, src->keys[i]->len) < 0;
    if (extra) {
        ot_node **k = ot_arena_alloc(a, (dst->n + extra) * sizeof *k);
        ot_node **v = ot_arena_alloc(a, (dst->n + extra) * sizeof *v);
        if (!k || !v)
            return dst;
        if (dst->n) {
            memcpy(k, dst->keys, dst->n * sizeof *k);
            memcpy(v, dst->vals, dst->n * sizeof *v);
        }
        dst->keys = k;
        dst->vals = v;
    }
    for (size_t i = 0; i < src->n; i++) {
        long j = tree_find_key(dst, src->keys[i]->str, src->keys[i]->len);
        if (j >= 0) {
            dst->vals[j] = merge(a, dst->vals[j], src->vals[i]);
        } else {
            dst->keys[dst->n] = src->keys[i];
            dst->vals[dst->n++] = src->vals[i];
        }
    }
    return dst;
}

static ot_node *plain_node(ot_arena *a, ot_node_kind kind, const char *file, int line, int col,
                           const char *s, size_t len)
{
    ot_node *n = ot_arena_calloc(a, sizeof *n);
    char *t = ot_arena_strndup(a, s, len);
    if (!n || !t)
        return NULL;
    *n = (ot_node){.kind = kind, .file = file, .line = line, .col = col, .str = t, .len = len};
    return n;
}

static int height(const ot_node *n)
{
    int h = 0;
    for (size_t i = 0; i < n->n; i++) {
        int c = 1 + height(n->vals[i]);
        h = c > h ? c : h;
    }
    return h;
}

static bool map_append(ot_arena *a, ot_node *map, ot_node *key, ot_node *val)
{
    ot_node **k = ot_arena_alloc(a, (map->n + 1) * sizeof *k);
    ot_node **v = ot_arena_alloc(a, (map->n + 1) * sizeof *v);
    if (!k || !v)
        return false;
    if (map->n) {
        memcpy(k, map->keys, map->n * sizeof *k);
        memcpy(v, map->vals, map->n * sizeof *v);
    }
    k[map->n] = key;
    v[map->n] = val;
    map->keys = k;
    map->vals = v;
    map->n++;
    return true;
}

/* "a.b.c=value": creates the maps on the way, then merges the value in as a
 * one-key file would. Positions: file "--set", line = the item's number,
 * column = offset in the argument. */
static void apply_set(ot_arena *a, ot_node *root, const char *arg, int line, ot_diags *d)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, 1, "", "expected key.path=value, found \"%.*s\"",
                       (int)strnlen(arg, 200), arg);
        return;
    }
    size_t plen = (size_t)(eq - arg), seplen;
    const char *sep = tree_path_sep(arg, plen, &seplen);
    char *path = ot_arena_strndup(a, arg, plen);
    if (!path)
        return;
    if (root->kind != OT_NODE_MAP) {
        ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, 1, path,
                       "cannot set a key: the top level of the config (%s:%d:%d) is not a map",
                       root->file, root->line, root->col);
        return;
    }
    /* Check every segment before touching the tree. */
    int nseg = 1;
    for (const char *p = arg;; nseg++) {
        const char *q = memmem(p, (size_t)(eq - p), sep, seplen);
        size_t n = q ? (size_t)(q - p) : (size_t)(eq - p);
        const char *why = n == 0             ? "empty key in path"
                          : n > MAX_KEY_LEN    ? "key is longer than 200 bytes"
                          : !tree_valid_utf8(p, n) ? "key is not valid UTF-8"
                                               : NULL;
        if (why) {
            ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, (int)(p - arg) + 1, path, "%s", why);
            return;
        }
        if (!q)
            break;
        p = q + seplen;
    }
    const ot_node *cv = tree_parse_text(a, "--set", eq + 1, strlen(eq + 1), d, line,
                                   (int)(eq + 1 - arg), path);
    if (!cv)
        return;
    if (nseg + height(cv) > MAX_DEPTH) {
        ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, 1, path, "nesting is deeper than %d levels",
                       MAX_DEPTH);
        return;
    }
    ot_node *val = (ot_node *)cv, *cur = root;
    for (const char *p = arg;;) {
        const char *q = memmem(p, (size_t)(eq - p), sep, seplen);
        size_t n = q ? (size_t)(q - p) : (size_t)(eq - p);
        int col = (int)(p - arg) + 1;
        long i = tree_find_key(cur, p, n);
        ot_node *child = i >= 0 ? cur->vals[i] : NULL;
        if (q && child && child->kind == OT_NODE_NULL) {
            child->kind = OT_NODE_MAP;
        } else if (q && child && child->kind != OT_NODE_MAP) {
            ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, col, path,
                           "cannot set a key inside \"%.*s\": it is not a map (%s:%d:%d)", (int)n, p,
                           child->file, child->line, child->col);
            return;
        }
        if (!q && child) {
            cur->vals[i] = merge(a, child, val);
            return;
        }
        if (!child) {
            ot_node *k = plain_node(a, OT_NODE_SCALAR, "--set", line, col, p, n);
            child = q ? plain_node(a, OT_NODE_MAP, "--set", line, col, "", 0) : val;
            if (!k || !child || !map_append(a, cur, k, child) || !q)
                return;
        }
        cur = child;
        p = q + seplen;
    }
}

static int read_file(const char *path, char **text, size_t *len, ot_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ot_err_set(err, "cannot read the config file: %s", strerror(errno));
    ot_buf b = OT_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= MAX_FILE_SIZE)
        ot_buf_append(&b, chunk, n);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr || b.oom || b.len > MAX_FILE_SIZE) {
        ot_buf_free(&b);
        if (rerr)
            return ot_err_set(err, "cannot read the config file: %s", strerror(rerr));
        return ot_err_set(err, "the config file is larger than 16 MiB");
    }
    *text = b.data ? b.data : strdup("");
    *len = b.len;
    return *text ? 0 : ot_err_set(err, "out of memory");
}

static ot_config *config_new(ot_diags *d)
{
    ot_arena *a = ot_arena_new(0);
    ot_config *c = a ? ot_arena_calloc(a, sizeof *c) : NULL;
    if (!c) {
        ot_arena_free(a);
        ot_diag_add_at(d, OT_SEV_ERROR, NULL, 0, 0, "", "out of memory");
        return NULL;
    }
    c->arena = a;
    return c;
}

/* An empty document (or none at all) is an empty map, so callers always
 * get a root to look keys up in. */
static ot_node *root_or_empty(ot_config *c, ot_node *root, const char *file)
{
    if (root && root->kind != OT_NODE_NULL)
        return root;
    return plain_node(c->arena, OT_NODE_MAP, file, 1, 1, "", 0);
}

ot_config *ot_config_load(const char *const *files, size_t nfiles, const char *const *sets,
                          size_t nsets, ot_diags *diags)
{
    ot_config *c = config_new(diags);
    if (!c)
        return NULL;
    ot_node *root = NULL;
    const char *last = "--set";
    bool fatal = false;
    for (size_t i = 0; i < nfiles; i++) {
        char *text = NULL;
        size_t len = 0;
        ot_err err;
        const char *name = ot_arena_strdup(c->arena, files[i]);
        if (!name || read_file(files[i], &text, &len, &err) < 0) {
            ot_diag_add_at(diags, OT_SEV_ERROR, files[i], 0, 0, "", "%s",
                           name ? err.msg : "out of memory");
            fatal = true;
            continue;
        }
        ot_node *doc = tree_parse_text(c->arena, name, text, len, diags, 0, 0, "");
        free(text);
        last = name;
        if (!doc)
            fatal = true;
        else if (doc->kind != OT_NODE_NULL) /* an empty file adds nothing */
            root = merge(c->arena, root, doc);
    }
    if (fatal || !(root = root_or_empty(c, root, last))) {
        ot_config_free(c);
        return NULL;
    }
    for (size_t i = 0; i < nsets; i++)
        apply_set(c->arena, root, sets[i], (int)i + 1, diags);
    c->root = root;
    return c;
}

ot_config *ot_config_load_string(const char *name, const char *yaml, size_t len, ot_diags *diags)
{
    ot_config *c = config_new(diags);
    if (!c)
        return NULL;
    const char *file = ot_arena_strdup(c->arena, name ? name : "-");
    ot_node *root = file ? tree_parse_text(c->arena, file, yaml, len, diags, 0, 0, "") : NULL;
    if (!root || !(c->root = root_or_empty(c, root, file))) {
        ot_config_free(c);
        return NULL;
    }
    return c;
}

const ot_node *ot_config_root(const ot_config *c)
{
    return c ? c->root : NULL;
}

ot_arena *ot_config_arena(ot_config *c)
{
    return c->arena;
}

void ot_config_free(ot_config *c)
{
    if (c)
        ot_arena_free(c->arena);
}

/* ---- overlays: one component's settings derived from another's ----------- */

static ot_node *copy_node(ot_arena *a, const ot_node *src)
{
    ot_node *n = ot_arena_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    *n = *src;
    if (src->kind != OT_NODE_MAP && src->kind != OT_NODE_SEQ)
        return n; /* scalars are never changed in place: their text is shared */
    n->vals = src->n ? ot_arena_alloc(a, src->n * sizeof *n->vals) : NULL;
    n->keys = src->kind == OT_NODE_MAP && src->n ? ot_arena_alloc(a, src->n * sizeof *n->keys)
                                                 : NULL;
    if (src->n && (!n->vals || (src->kind == OT_NODE_MAP && !n->keys)))
        return NULL;
    for (size_t i = 0; i < src->n; i++) {
        if (src->kind == OT_NODE_MAP)
            n->keys[i] = src->keys[i];
        if (!(n->vals[i] = copy_node(a, src->vals[i])))
            return NULL;
    }
    return n;
}

ot_node *ot_node_overlay(ot_arena *a, const ot_node *base, const char *const *sets, size_t nsets,
                         ot_diags *diags)
{
    ot_node *root = base && base->kind == OT_NODE_MAP
                        ? copy_node(a, base)
                        : plain_node(a, OT_NODE_MAP, base ? base->file : "-", base ? base->line : 0,
                                     base ? base->col : 0, "", 0);
    if (!root)
        return NULL;
    size_t before = diags ? diags->errors : 0;
    for (size_t i = 0; i < nsets; i++)
        apply_set(a, root, sets[i], (int)i + 1, diags);
    return diags && diags->errors > before ? NULL : root;
}
