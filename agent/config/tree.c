/* config_tree.c: YAML text to the position-carrying node tree, and back.
 * libyaml's event stream is turned into ot_nodes in the config's arena so
 * every value remembers file:line:col; ${env:VAR} is expanded here, files
 * are merged and --set items applied, so the rest of the agent sees one
 * finished tree. The writer prints a tree as block YAML that loads back to
 * the same tree: print-config shows it and reloads compare it. */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/buf.h"

/* Limits that keep hostile input (fuzzing, a typo'd anchor) from costing
 * more than a config could ever need. */
#define MAX_DEPTH 100           /* nesting of maps and lists */
#define MAX_ALIAS_NODES 100000  /* nodes created by copying aliases */
#define MAX_KEY_LEN 200         /* keeps written keys under YAML's 1024 limit */
#define MAX_FILE_SIZE (16u << 20)

struct ot_config {
    ot_arena *arena;
    ot_node *root;
};

/* ---- building nodes ------------------------------------------------------ */

typedef struct anchor {
    const char *name;
    const ot_node *node;
    size_t size;   /* nodes in the subtree */
    int height;    /* levels below node */
} anchor;

typedef struct loader {
    ot_arena *a;
    ot_diags *d;
    const char *file;
    const char *text; /* the input, to place reader errors */
    size_t len;
    int set_line, set_col; /* for --set values: the argument's line and offset */
    const char *prefix;    /* key path of the --set value, "" otherwise */
    yaml_parser_t p;
    anchor *anchors;
    size_t nanchors, capanchors;
    size_t built;      /* nodes made so far, to size anchored subtrees */
    size_t alias_nodes;
    int deepest;       /* deepest level reached, to measure anchored subtrees */
    /* key path of the node being built: at each level a key or an index */
    struct {
        const ot_node *key;
        size_t idx;
    } stack[MAX_DEPTH + 2];
} loader;

static void pos_of(const loader *ld, yaml_mark_t m, int *line, int *col)
{
    if (ld->set_line) { /* the argument is one line; past it means its end */
        *line = ld->set_line;
        *col = ld->set_col + 1 + (m.line == 0 ? (int)m.column : (int)ld->len);
    } else {
        *line = (int)m.line + 1;
        *col = (int)m.column + 1;
    }
}

/* The key path of the node at depth (into buf), for diagnostics. */
static const char *path_at(const loader *ld, int depth, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", ld->prefix);
    for (int i = 0; i < depth && n < cap; i++) {
        const ot_node *k = ld->stack[i].key;
        if (k)
            n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? "." : "", (int)k->len, k->str);
        else
            n += (size_t)snprintf(buf + n, cap - n, "[%zu]", ld->stack[i].idx);
    }
    return buf;
}

static void diag(loader *ld, ot_severity sev, int line, int col, int depth, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void diag(loader *ld, ot_severity sev, int line, int col, int depth, const char *fmt, ...)
{
    char path[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ot_diag_add_at(ld->d, sev, ld->file, line, col, path_at(ld, depth, path, sizeof path), "%s",
                   msg);
}

static void oom(loader *ld)
{
    ot_diag_add_at(ld->d, OT_SEV_ERROR, ld->file, 0, 0, ld->prefix, "out of memory");
}

static ot_node *new_node(loader *ld, ot_node_kind kind, int line, int col)
{
    ot_node *n = ot_arena_calloc(ld->a, sizeof *n);
    if (!n) {
        oom(ld);
        return NULL;
    }
    n->kind = kind;
    n->file = ld->file;
    n->line = line;
    n->col = col;
    n->str = "";
    ld->built++;
    return n;
}

static ot_node *node_at(loader *ld, ot_node_kind kind, yaml_mark_t m)
{
    int line, col;
    pos_of(ld, m, &line, &col);
    return new_node(ld, kind, line, col);
}

static bool null_word(const char *s, size_t len)
{
    static const char *const w[] = {"~", "null", "Null", "NULL"};
    if (len == 0)
        return true;
    for (size_t i = 0; i < 4; i++)
        if (strlen(w[i]) == len && memcmp(s, w[i], len) == 0)
            return true;
    return false;
}

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* Expands ${env:VAR}, ${VAR}, ${env:VAR:-default} and $$ in a scalar value
 * into b. On a malformed reference it reports the error at the '$' and
 * returns false; the caller then keeps the raw text, so later checks quote
 * what the user wrote. text_col: column of raw[0], 0 when not known. */
static bool expand(loader *ld, ot_buf *b, const ot_node *n, const char *raw, size_t len, int depth,
                   int text_col)
{
    for (size_t i = 0; i < len;) {
        if (raw[i] != '$' || i + 1 == len || (raw[i + 1] != '$' && raw[i + 1] != '{')) {
            ot_buf_putc(b, raw[i++]);
            continue;
        }
        if (raw[i + 1] == '$') {
            ot_buf_putc(b, '$');
            i += 2;
            continue;
        }
        int col = text_col > 0 ? text_col + (int)i : n->col;
        const char *body = raw + i + 2, *end = memchr(body, '}', len - i - 2);
        if (!end) {
            diag(ld, OT_SEV_ERROR, n->line, col, depth,
                 "unclosed \"${\": write ${NAME}, ${env:NAME} or $$ for a literal $");
            return false;
        }
        int blen = (int)(end - body), k = 0;
        bool env = blen >= 4 && memcmp(body, "env:", 4) == 0;
        if (env)
            k = 4;
        int nstart = k;
        if (k < blen && name_start(body[k]))
            for (k++; k < blen && name_char(body[k]); k++)
                ;
        int nlen = k - nstart;
        bool has_def = blen - k >= 2 && body[k] == ':' && body[k + 1] == '-';
        int show = blen < 100 ? blen : 100;
        if (nlen && !env && k < blen && body[k] == ':' && !has_def) {
            diag(ld, OT_SEV_ERROR, n->line, col, depth,
                 "unsupported provider \"%.*s\" in \"${%.*s}\": only ${env:NAME} is supported",
                 nlen < 60 ? nlen : 60, body, show, body);
            return false;
        }
        if (!nlen || nlen > 255 || (k < blen && !has_def)) {
            diag(ld, OT_SEV_ERROR, n->line, col, depth,
                 "bad variable reference \"${%.*s}\": expected ${NAME}, ${env:NAME} or "
                 "${env:NAME:-default}",
                 show, body);
            return false;
        }
        char name[256];
        memcpy(name, body + nstart, (size_t)nlen);
        name[nlen] = '\0';
        const char *v = getenv(name);
        if (has_def && (!v || !*v))
            ot_buf_append(b, body + k + 2, (size_t)(blen - k - 2));
        else if (v)
            ot_buf_puts(b, v);
        else
            diag(ld, OT_SEV_WARNING, n->line, col, depth,
                 "environment variable %s is not set; using an empty value", name);
        i += 2 + (size_t)blen + 1;
    }
    return true;
}

static void set_text(loader *ld, ot_node *n, const char *s, size_t len)
{
    char *t = ot_arena_strndup(ld->a, s ? s : "", len);
    if (!t) {
        oom(ld);
        return;
    }
    n->str = t;
    n->len = len;
}

static ot_node *scalar_node(loader *ld, const yaml_event_t *ev, int depth, bool is_key)
{
    const char *raw = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    yaml_scalar_style_t style = ev->data.scalar.style;
    const char *tag = (const char *)ev->data.scalar.tag;
    ot_node *n = node_at(ld, OT_NODE_SCALAR, ev->start_mark);
    if (!n)
        return NULL;
    n->quoted = style != YAML_PLAIN_SCALAR_STYLE || (tag && strcmp(tag, YAML_STR_TAG) == 0);
    if (!is_key && !n->quoted && null_word(raw, len)) {
        n->kind = OT_NODE_NULL;
        return n;
    }
    if (is_key || !memchr(raw, '$', len)) { /* keys are never expanded */
        set_text(ld, n, raw, len);
        return n;
    }
    bool one_line = ev->start_mark.line == ev->end_mark.line && style != YAML_LITERAL_SCALAR_STYLE &&
                    style != YAML_FOLDED_SCALAR_STYLE;
    int text_col = one_line ? n->col + (style == YAML_PLAIN_SCALAR_STYLE ? 0 : 1) : 0;
    ot_buf b = OT_BUF_INIT;
    if (!expand(ld, &b, n, raw, len, depth, text_col))
        set_text(ld, n, raw, len);
    else if (b.oom)
        oom(ld);
    else
        set_text(ld, n, b.data, b.len);
    ot_buf_free(&b);
    return n;
}

static ot_node *copy_tree(loader *ld, const ot_node *src)
{
    ot_node *n = ot_arena_memdup(ld->a, src, sizeof *n);
    if (!n)
        return NULL;
    ld->built++;
    if (src->n) {
        n->vals = ot_arena_alloc(ld->a, src->n * sizeof *n->vals);
        if (src->kind == OT_NODE_MAP)
            n->keys = ot_arena_memdup(ld->a, src->keys, src->n * sizeof *n->keys);
        if (!n->vals || (src->kind == OT_NODE_MAP && !n->keys))
            return NULL;
        for (size_t i = 0; i < src->n; i++)
            if (!(n->vals[i] = copy_tree(ld, src->vals[i])))
                return NULL;
    }
    return n;
}

/* An alias becomes a copy of its anchor's subtree, so the tree stays a tree
 * (merges and --set edit it in place). Positions stay those of the anchor. */
static ot_node *alias_node(loader *ld, const yaml_event_t *ev, int depth)
{
    const char *name = (const char *)ev->data.alias.anchor;
    ot_node *n = node_at(ld, OT_NODE_NULL, ev->start_mark);
    if (!n)
        return NULL;
    const anchor *an = NULL;
    for (size_t i = ld->nanchors; i-- > 0 && !an;)
        if (strcmp(ld->anchors[i].name, name) == 0)
            an = &ld->anchors[i];
    if (!an) {
        diag(ld, OT_SEV_ERROR, n->line, n->col, depth,
             "unknown anchor \"%.60s\" (an alias must follow a complete &%.60s)", name, name);
        return n;
    }
    if (depth + an->height > MAX_DEPTH) {
        diag(ld, OT_SEV_ERROR, n->line, n->col, depth, "alias *%.60s nests deeper than %d levels",
             name, MAX_DEPTH);
        return n;
    }
    if (ld->alias_nodes + an->size > MAX_ALIAS_NODES) {
        diag(ld, OT_SEV_ERROR, n->line, n->col, depth, "aliases expand to more than %d nodes (at *%.60s)",
             MAX_ALIAS_NODES, name);
        return n;
    }
    ld->alias_nodes += an->size;
    ot_node *c = copy_tree(ld, an->node);
    if (!c) {
        oom(ld);
        return NULL;
    }
    if (depth + an->height > ld->deepest)
        ld->deepest = depth + an->height;
    return c;
}

static void add_anchor(loader *ld, const char *name, const ot_node *n, size_t size, int height)
{
    if (ld->nanchors == ld->capanchors) {
        size_t cap = ld->capanchors ? ld->capanchors * 2 : 8;
        anchor *v = ot_arena_alloc(ld->a, cap * sizeof *v);
        if (!v)
            return;
        if (ld->nanchors)
            memcpy(v, ld->anchors, ld->nanchors * sizeof *v);
        ld->anchors = v;
        ld->capanchors = cap;
    }
    ld->anchors[ld->nanchors++] = (anchor){name, n, size, height};
}

/* Grows a node's item (and key) arrays in the arena, doubling. */
static bool grow(loader *ld, ot_node *n, size_t *cap)
{
    if (n->n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 4;
    ot_node **v = ot_arena_alloc(ld->a, nc * sizeof *v);
    ot_node **k = n->kind == OT_NODE_MAP ? ot_arena_alloc(ld->a, nc * sizeof *k) : NULL;
    if (!v || (n->kind == OT_NODE_MAP && !k)) {
        oom(ld);
        return false;
    }
    if (n->n) {
        memcpy(v, n->vals, n->n * sizeof *v);
        if (k)
            memcpy(k, n->keys, n->n * sizeof *k);
    }
    n->vals = v;
    n->keys = k;
    *cap = nc;
    return true;
}

static bool key_is(const ot_node *k, const char *s, size_t len)
{
    return k->len == len && memcmp(k->str, s, len) == 0;
}

static long find_key(const ot_node *map, const char *s, size_t len)
{
    for (size_t i = 0; i < map->n; i++)
        if (key_is(map->keys[i], s, len))
            return (long)i;
    return -1;
}

static void syntax_error(loader *ld)
{
    const yaml_parser_t *p = &ld->p;
    int line, col;
    if (p->error == YAML_MEMORY_ERROR) {
        oom(ld);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader runs ahead of the scanner; place the bad byte itself. */
        yaml_mark_t m = {0, 0, 0};
        for (size_t i = 0; i < p->problem_offset && i < ld->len; i++) {
            if (ld->text[i] == '\n') {
                m.line++;
                m.column = 0;
            } else {
                m.column++;
            }
        }
        pos_of(ld, m, &line, &col);
    } else {
        pos_of(ld, p->problem_mark, &line, &col);
    }
    char ctx[160] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s)", p->context);
    ot_diag_add_at(ld->d, OT_SEV_ERROR, ld->file, line, col, ld->prefix, "invalid YAML: %s%s",
                   p->problem ? p->problem : "syntax error", ctx);
}

static bool next_event(loader *ld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ld->p, ev))
        return true;
    syntax_error(ld);
    return false;
}

static ot_node *build(loader *ld, yaml_event_t *ev, int depth, bool is_key);

static bool build_seq(loader *ld, ot_node *n, int depth)
{
    size_t cap = 0;
    for (;;) {
        yaml_event_t e;
        if (!next_event(ld, &e))
            return false;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return true;
        }
        ld->stack[depth].key = NULL;
        ld->stack[depth].idx = n->n;
        ot_node *item = build(ld, &e, depth + 1, false);
        if (!item || !grow(ld, n, &cap))
            return false;
        n->vals[n->n++] = item;
    }
}

static bool build_map(loader *ld, ot_node *n, int depth)
{
    size_t cap = 0;
    for (;;) {
        yaml_event_t e;
        if (!next_event(ld, &e))
            return false;
        if (e.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&e);
            return true;
        }
        ld->stack[depth].key = NULL;
        ld->stack[depth].idx = n->n;
        ot_node *key = build(ld, &e, depth + 1, true);
        if (!key || !next_event(ld, &e))
            return false;
        ld->stack[depth].key = key->kind == OT_NODE_SCALAR ? key : NULL;
        ot_node *val = build(ld, &e, depth + 1, false);
        if (!val)
            return false;
        long dup;
        if (key->kind != OT_NODE_SCALAR) {
            diag(ld, OT_SEV_ERROR, key->line, key->col, depth,
                 "a map key must be a plain value, not a %s",
                 key->kind == OT_NODE_MAP ? "map" : key->kind == OT_NODE_SEQ ? "list" : "null");
        } else if (key->len > MAX_KEY_LEN) {
            diag(ld, OT_SEV_ERROR, key->line, key->col, depth, "key is longer than %d bytes",
                 MAX_KEY_LEN);
        } else if ((dup = find_key(n, key->str, key->len)) >= 0) {
            const ot_node *first = n->keys[dup];
            diag(ld, OT_SEV_ERROR, key->line, key->col, depth,
                 "duplicate key \"%.*s\" (first at line %d, column %d)",
                 (int)(key->len < 60 ? key->len : 60), key->str, first->line, first->col);
        } else {
            if (!grow(ld, n, &cap))
                return false;
            n->keys[n->n] = key;
            n->vals[n->n++] = val;
        }
    }
}

/* Builds the node that starts with *ev, consuming ev and the events of its
 * children. NULL on a fatal error (syntax, memory), already reported. */
static ot_node *build(loader *ld, yaml_event_t *ev, int depth, bool is_key)
{
    ot_node *n = NULL;
    const char *anchor_name = NULL;
    yaml_event_type_t type = ev->type;
    size_t built0 = ld->built;
    int deepest0 = ld->deepest;
    ld->deepest = depth;
    bool ok = true;
    if (depth > MAX_DEPTH) {
        int line, col;
        pos_of(ld, ev->start_mark, &line, &col);
        diag(ld, OT_SEV_ERROR, line, col, depth - 1, "nesting is deeper than %d levels", MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        n = alias_node(ld, ev, depth);
        break;
    case YAML_SCALAR_EVENT:
        n = scalar_node(ld, ev, depth, is_key);
        anchor_name = (const char *)ev->data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        n = node_at(ld, OT_NODE_SEQ, ev->start_mark);
        anchor_name = (const char *)ev->data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        n = node_at(ld, OT_NODE_MAP, ev->start_mark);
        anchor_name = (const char *)ev->data.mapping_start.anchor;
        break;
    default: /* libyaml only gives the events above here */
        n = node_at(ld, OT_NODE_NULL, ev->start_mark);
        break;
    }
    char *aname = anchor_name && n ? ot_arena_strdup(ld->a, anchor_name) : NULL;
    yaml_event_delete(ev);
    if (n && type == YAML_SEQUENCE_START_EVENT)
        ok = build_seq(ld, n, depth);
    else if (n && type == YAML_MAPPING_START_EVENT)
        ok = build_map(ld, n, depth);
    if (!n || !ok)
        return NULL;
    int height = ld->deepest - depth;
    if (aname)
        add_anchor(ld, aname, n, ld->built - built0, height);
    if (deepest0 > ld->deepest)
        ld->deepest = deepest0;
    return n;
}

/* Parses one YAML document. Returns its root (a NULL node for an empty
 * stream) or NULL on a fatal error. */
static ot_node *parse_doc(loader *ld)
{
    ot_node *root = NULL;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&ld->p)) {
        oom(ld);
        return NULL;
    }
    yaml_parser_set_input_string(&ld->p, (const unsigned char *)ld->text, ld->len);
    if (!next_event(ld, &ev)) /* stream start */
        goto out;
    yaml_event_delete(&ev);
    if (!next_event(ld, &ev))
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        root = new_node(ld, OT_NODE_NULL, ld->set_line ? ld->set_line : 1, ld->set_col + 1);
        goto out;
    }
    yaml_event_delete(&ev); /* document start */
    if (!next_event(ld, &ev) || !(root = build(ld, &ev, 0, false)))
        goto out;
    if (!next_event(ld, &ev)) { /* document end */
        root = NULL;
        goto out;
    }
    yaml_event_delete(&ev);
    if (!next_event(ld, &ev)) {
        root = NULL;
        goto out;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        int line, col;
        pos_of(ld, ev.start_mark, &line, &col);
        ot_diag_add_at(ld->d, OT_SEV_ERROR, ld->file, line, col, ld->prefix,
                       "only one YAML document is allowed; this one is ignored");
    }
    yaml_event_delete(&ev);
out:
    yaml_parser_delete(&ld->p);
    return root;
}

static ot_node *parse_text(ot_arena *a, const char *file, const char *text, size_t len,
                           ot_diags *d, int set_line, int set_col, const char *prefix)
{
    loader *ld = calloc(1, sizeof *ld);
    if (!ld) {
        ot_diag_add_at(d, OT_SEV_ERROR, file, 0, 0, prefix, "out of memory");
        return NULL;
    }
    ld->a = a;
    ld->d = d;
    ld->file = file;
    ld->text = text;
    ld->len = len;
    ld->set_line = set_line;
    ld->set_col = set_col;
    ld->prefix = prefix;
    ot_node *root = parse_doc(ld);
    free(ld);
    return root;
}

const ot_node *ot_node_parse(ot_arena *a, const char *name, const char *text, size_t len,
                             ot_diags *diags)
{
    const char *file = ot_arena_strdup(a, name ? name : "-");
    return file ? parse_text(a, file, text, len, diags, 0, 0, "") : NULL;
}

/* ---- lookup ---------------------------------------------------------------- */

const ot_node *ot_node_get(const ot_node *map, const char *key)
{
    if (!map || map->kind != OT_NODE_MAP || !key)
        return NULL;
    long i = find_key(map, key, strlen(key));
    return i < 0 ? NULL : map->vals[i];
}

/* Key paths split on "::" when they have one (keys with dots), else on ".". */
static const char *path_sep(const char *s, size_t len, size_t *seplen)
{
    const char *p = memmem(s, len, "::", 2);
    *seplen = p ? 2 : 1;
    return p ? "::" : ".";
}

const ot_node *ot_node_path(const ot_node *root, const char *dotted)
{
    size_t seplen, len = strlen(dotted);
    const char *sep = path_sep(dotted, len, &seplen);
    const char *p = dotted, *end = dotted + len;
    while (root && p < end) {
        const char *q = memmem(p, (size_t)(end - p), sep, seplen);
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        long i = root->kind == OT_NODE_MAP ? find_key(root, p, n) : -1;
        root = i < 0 ? NULL : root->vals[i];
        p += n + (q ? seplen : 0);
    }
    return root;
}

bool ot_node_is_null(const ot_node *n)
{
    return !n || n->kind == OT_NODE_NULL;
}

/* Code point of the UTF-8 sequence at s (setting *n to its length), or -1
 * when the bytes are not valid UTF-8. */
static long utf8_decode(const unsigned char *s, size_t len, size_t *n)
{
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > len)
        return -1;
    long cp = k == 1 ? (long)c : (long)(c & (0x7F >> k));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *n = k;
    return cp;
}

static bool valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0, n = 1; i < len; i += n)
        if (utf8_decode((const unsigned char *)s + i, len - i, &n) < 0)
            return false;
    return true;
}

/* ---- loading, merging, --set --------------------------------------------- */

/* Later files win: maps merge key by key, anything else is replaced. */
static ot_node *merge(ot_arena *a, ot_node *dst, ot_node *src)
{
    if (!dst || dst->kind != OT_NODE_MAP || src->kind != OT_NODE_MAP)
        return src;
    size_t extra = 0;
    for (size_t i = 0; i < src->n; i++)
        extra += find_key(dst, src->keys[i]->str, src->keys[i]->len) < 0;
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
        long j = find_key(dst, src->keys[i]->str, src->keys[i]->len);
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
    const char *sep = path_sep(arg, plen, &seplen);
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
                          : !valid_utf8(p, n) ? "key is not valid UTF-8"
                                               : NULL;
        if (why) {
            ot_diag_add_at(d, OT_SEV_ERROR, "--set", line, (int)(p - arg) + 1, path, "%s", why);
            return;
        }
        if (!q)
            break;
        p = q + seplen;
    }
    const ot_node *cv = parse_text(a, "--set", eq + 1, strlen(eq + 1), d, line,
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
        long i = find_key(cur, p, n);
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
        ot_node *doc = parse_text(c->arena, name, text, len, diags, 0, 0, "");
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
    ot_node *root = file ? parse_text(c->arena, file, yaml, len, diags, 0, 0, "") : NULL;
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

/* ---- writing --------------------------------------------------------------- */

/* What YAML lets stand unescaped: printable, and not a line break or BOM
 * (NEL, LS, PS) that a reader would turn into something else. */
static bool printable(long cp)
{
    return (cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xD7FF && cp != 0x2028 && cp != 0x2029) ||
           (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* Whether s can be written without quotes and read back as the same text
 * (conservative: anything doubtful is quoted). */
static bool plain_ok(const char *s, size_t len, bool is_key)
{
    if (len == 0 || (!is_key && null_word(s, len)))
        return false;
    if (strchr("?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[len - 1] == ' ' || s[len - 1] == ':')
        return false;
    if (s[0] == '-' && (len == 1 || s[1] == ' ' || (len >= 3 && s[1] == '-' && s[2] == '-')))
        return false;
    if (len >= 3 && memcmp(s, "...", 3) == 0)
        return false;
    for (size_t i = 0; i < len;) {
        size_t n = 1;
        long cp = utf8_decode((const unsigned char *)s + i, len - i, &n);
        if (cp < 0 || !printable(cp))
            return false;
        if ((s[i] == ':' && i + 1 < len && s[i + 1] == ' ') || (s[i] == '#' && i > 0 && s[i - 1] == ' '))
            return false;
        i += n;
    }
    return true;
}

static void write_quoted(FILE *o, const char *s, size_t len)
{
    fputc('"', o);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\0': esc = "\\0"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case 0x1b: esc = "\\e"; break;
        default: break;
        }
        if (esc) {
            fputs(esc, o);
            i++;
            continue;
        }
        long cp = utf8_decode((const unsigned char *)s + i, len - i, &n);
        if (cp >= 0 && printable(cp))
            fwrite(s + i, 1, n, o);
        else if (cp < 0) /* not UTF-8: the byte as a code point */
            fprintf(o, "\\x%02X", c);
        else if (cp <= 0xFF)
            fprintf(o, "\\x%02lX", cp);
        else
            fprintf(o, "\\u%04lX", cp);
        i += n;
    }
    fputc('"', o);
}

static void write_scalar(FILE *o, const ot_node *n, bool is_key)
{
    const char *s = n->str;
    size_t len = n->len;
    ot_buf b = OT_BUF_INIT;
    if (!is_key && memchr(s, '$', len)) { /* values are expanded on load: $ must read back as $ */
        for (size_t i = 0; i < len; i++)
            ot_buf_append(&b, s[i] == '$' ? "$$" : s + i, s[i] == '$' ? 2 : 1);
        if (!b.oom) {
            s = b.data;
            len = b.len;
        }
    }
    if (!n->quoted && plain_ok(s, len, is_key))
        fwrite(s, 1, len, o);
    else
        write_quoted(o, s, len);
    ot_buf_free(&b);
}

static bool secret_key(const ot_node *k)
{
    static const char *const words[] = {"key", "token", "password", "secret"};
    for (size_t w = 0; w < 4; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= k->len; i++)
            if (strncasecmp(k->str + i, words[w], wl) == 0)
                return true;
    }
    return false;
}

static bool is_block(const ot_node *n)
{
    return (n->kind == OT_NODE_MAP || n->kind == OT_NODE_SEQ) && n->n > 0;
}

static void write_inline(FILE *o, const ot_node *n)
{
    if (n->kind == OT_NODE_SCALAR)
        write_scalar(o, n, false);
    else
        fputs(n->kind == OT_NODE_MAP ? "{}" : n->kind == OT_NODE_SEQ ? "[]" : "null", o);
}

/* inl: the first line continues one already started ("- "). */
static void write_block(FILE *o, const ot_node *n, int ind, bool inl, bool redact)
{
    for (size_t i = 0; i < n->n; i++) {
        if (i || !inl)
            fprintf(o, "%*s", ind, "");
        const ot_node *v = n->vals[i];
        if (n->kind == OT_NODE_MAP) {
            write_scalar(o, n->keys[i], true);
            fputc(':', o);
            if (redact && v->kind != OT_NODE_NULL && secret_key(n->keys[i])) {
                fputs(" \"[REDACTED]\"\n", o);
            } else if (v->kind == OT_NODE_NULL) {
                fputc('\n', o);
            } else if (is_block(v)) {
                fputc('\n', o);
                write_block(o, v, ind + 2, false, redact);
            } else {
                fputc(' ', o);
                write_inline(o, v);
                fputc('\n', o);
            }
        } else {
            fputs("- ", o);
            if (is_block(v)) {
                write_block(o, v, ind + 2, true, redact);
            } else {
                write_inline(o, v);
                fputc('\n', o);
            }
        }
    }
}

void ot_node_write_yaml(const ot_node *n, bool redact, FILE *out)
{
    if (n && is_block(n)) {
        write_block(out, n, 0, false, redact);
    } else {
        if (n)
            write_inline(out, n);
        else
            fputs("null", out);
        fputc('\n', out);
    }
}

char *ot_node_to_yaml(const ot_node *n, bool redact)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    ot_node_write_yaml(n, redact, f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
