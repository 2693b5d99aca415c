/* tree.c: YAML text to the position-carrying node tree. libyaml's event
 * stream is turned into ot_nodes in the config's arena so every value
 * remembers file:line:col; ${env:VAR} is expanded and aliases are copied
 * here, so the rest of the agent sees plain finished trees. Reading the
 * tree is node.c, merging files and --set load.c, writing it write.c. */
#include "config/tree_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/buf.h"

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

bool tree_null_word(const char *s, size_t len)
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
    if (!is_key && !n->quoted && tree_null_word(raw, len)) {
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
        } else if ((dup = tree_find_key(n, key->str, key->len)) >= 0) {
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

ot_node *tree_parse_text(ot_arena *a, const char *file, const char *text, size_t len,
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
    return file ? tree_parse_text(a, file, text, len, diags, 0, 0, "") : NULL;
}
