/* config_keys.c: the one walker that turns a YAML map into a component's
 * config struct, driven by the component's key table. Components declare
 * their settings as data; this file does all the checking and reports each
 * problem with its position, key path, what was expected and what was
 * found. The same tables print `otelite components --verbose`. */
#include "config/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

typedef struct walk {
    ot_arena *a;
    ot_diags *d;
} walk;

const char *ot_key_type_name(ot_key_type t)
{
    static const char *const names[] = {
        [OT_KT_STRING] = "string", [OT_KT_BOOL] = "bool",         [OT_KT_INT] = "int",
        [OT_KT_DOUBLE] = "number", [OT_KT_DURATION] = "duration", [OT_KT_SIZE] = "size",
        [OT_KT_ENDPOINT] = "endpoint", [OT_KT_ENUM] = "enum",     [OT_KT_STRLIST] = "list",
        [OT_KT_STRMAP] = "map",    [OT_KT_TABLE] = "table",       [OT_KT_NODE] = "any",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- formatting for messages ------------------------------------------- */

/* s as a double-quoted, escaped, shortened string (cap >= 80). */
static const char *quote_text(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (o + 10 > cap || i == 60) { /* room for an escape, "...", quote, NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *found(const ot_node *v, char *buf, size_t cap)
{
    switch (v->kind) {
    case OT_NODE_MAP: return "a map";
    case OT_NODE_SEQ: return "a list";
    case OT_NODE_NULL: return "nothing";
    default: return quote_text(buf, cap, v->str, v->len);
    }
}

static void fmt_duration(double d, char *buf, size_t cap)
{
    long long ns = (long long)d;
    if (ns % 1000000000LL == 0) {
        long long s = ns / 1000000000LL, h = s / 3600, m = s / 60 % 60;
        size_t o = 0;
        if (h)
            o += (size_t)snprintf(buf + o, cap - o, "%lldh", h);
        if (m)
            o += (size_t)snprintf(buf + o, cap - o, "%lldm", m);
        if (s % 60 || (!h && !m))
            snprintf(buf + o, cap - o, "%llds", s % 60);
    } else if (ns % 1000000 == 0) {
        snprintf(buf, cap, "%lldms", ns / 1000000);
    } else if (ns % 1000 == 0) {
        snprintf(buf, cap, "%lldus", ns / 1000);
    } else {
        snprintf(buf, cap, "%lldns", ns);
    }
}

static void fmt_size(double d, char *buf, size_t cap)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    unsigned long long b = (unsigned long long)d;
    for (int i = 0; i < 4; i++) {
        unsigned long long m = 1ULL << (10 * (4 - i));
        if (b && b % m == 0) {
            snprintf(buf, cap, "%llu%s", b / m, units[i]);
            return;
        }
    }
    snprintf(buf, cap, "%llu", b);
}

static void fmt_bound(const ot_key *k, double v, char *buf, size_t cap)
{
    if (k->type == OT_KT_DURATION)
        fmt_duration(v, buf, cap);
    else if (k->type == OT_KT_SIZE)
        fmt_size(v, buf, cap);
    else
        snprintf(buf, cap, "%.15g", v);
}

static bool bounded(const ot_key *k)
{
    return k->min < k->max;
}

/* "expected ..." for a key; in_range: the value parsed but was out of
 * bounds, so say the bounds. */
static const char *expected(const ot_key *k, bool in_range, char *buf, size_t cap)
{
    char lo[48], hi[48];
    fmt_bound(k, k->min, lo, sizeof lo);
    fmt_bound(k, k->max, hi, sizeof hi);
    bool say_range = bounded(k) && (in_range || k->type == OT_KT_INT || k->type == OT_KT_DOUBLE);
    const char *what = NULL;
    switch (k->type) {
    case OT_KT_STRING: what = "a string"; break;
    case OT_KT_BOOL: what = "true or false"; break;
    case OT_KT_INT: what = "an integer"; break;
    case OT_KT_DOUBLE: what = "a number"; break;
    case OT_KT_DURATION: what = say_range ? "a duration" : "a duration like 200ms or 5s"; break;
    case OT_KT_SIZE: what = say_range ? "a size" : "a size like 4MiB or 512KiB"; break;
    case OT_KT_ENDPOINT: what = "host:port"; break;
    case OT_KT_STRLIST: what = "a list of strings"; break;
    case OT_KT_STRMAP: what = "a map of strings"; break;
    case OT_KT_TABLE: what = "a map"; break;
    case OT_KT_NODE: what = "a value"; break;
    case OT_KT_ENUM: {
        size_t o = (size_t)snprintf(buf, cap, "expected one of ");
        for (size_t i = 0; k->choices && k->choices[i] && o < cap; i++)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", k->choices[i]);
        return buf;
    }
    }
    if (say_range)
        snprintf(buf, cap, "expected %s between %s and %s", what, lo, hi);
    else
        snprintf(buf, cap, "expected %s", what);
    return buf;
}

/* Reports a value that does not fit its key. found_text NULL: describe v.
 * A bad default is the component's bug, reported without a position. */
static void bad(walk *w, const ot_key *k, const ot_node *v, const char *path, bool is_def,
                bool in_range, const char *found_text)
{
    char exp[512], fb[100];
    expected(k, in_range, exp, sizeof exp);
    char sep = k->type == OT_KT_ENUM ? ';' : ',';
    if (!found_text)
        found_text = found(v, fb, sizeof fb);
    if (is_def)
        ot_diag_add(w->d, OT_SEV_ERROR, NULL, path,
                    "bad default in the key table: %s%c found %s", exp, sep, found_text);
    else
        ot_diag_add(w->d, OT_SEV_ERROR, v, path, "%s%c found %s", exp, sep, found_text);
}

/* ---- values --------------------------------------------------------------- */

static size_t type_size(ot_key_type t)
{
    switch (t) {
    case OT_KT_STRING: return sizeof(const char *);
    case OT_KT_BOOL: return sizeof(bool);
    case OT_KT_INT:
    case OT_KT_DURATION: return sizeof(int64_t);
    case OT_KT_DOUBLE: return sizeof(double);
    case OT_KT_SIZE: return sizeof(uint64_t);
    case OT_KT_ENDPOINT: return sizeof(ot_endpoint);
    case OT_KT_ENUM: return sizeof(int);
    case OT_KT_STRLIST: return sizeof(ot_strlist);
    case OT_KT_STRMAP: return sizeof(ot_strmap);
    case OT_KT_NODE: return sizeof(const ot_node *);
    case OT_KT_TABLE: return 0;
    }
    return 0;
}

static void fill_list(walk *w, const ot_key *k, const ot_node *v, ot_strlist *out,
                      const char *path, bool is_def)
{
    ot_node *const *items;
    size_t n;
    ot_node *seq = (ot_node *)v;
    if (v->kind == OT_NODE_SCALAR) {
        /* A lone scalar is a one-item list; node stays a SEQ for callers
         * that point at items. */
        seq = ot_arena_calloc(w->a, sizeof *seq);
        ot_node **one = ot_arena_alloc(w->a, sizeof *one);
        if (!seq || !one)
            return;
        *seq = *v;
        seq->kind = OT_NODE_SEQ;
        seq->str = "";
        seq->len = 0;
        seq->n = 1;
        one[0] = (ot_node *)v;
        seq->vals = one;
    } else if (v->kind != OT_NODE_SEQ) {
        bad(w, k, v, path, is_def, false, NULL);
        return;
    }
    items = seq->vals;
    n = seq->n;
    const char **arr = ot_arena_alloc(w->a, (n ? n : 1) * sizeof *arr);
    if (!arr)
        return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind != OT_NODE_SCALAR) {
            char ip[600], fb[100];
            snprintf(ip, sizeof ip, "%s[%zu]", path, i);
            ot_diag_add(w->d, OT_SEV_ERROR, is_def ? NULL : items[i], ip,
                        "%sexpected a string, found %s", is_def ? "bad default in the key table: " : "",
                        found(items[i], fb, sizeof fb));
            continue;
        }
        arr[m++] = ot_arena_strndup(w->a, items[i]->str, items[i]->len);
    }
    *out = (ot_strlist){arr, m, is_def ? NULL : seq};
}

static void fill_map(walk *w, const ot_key *k, const ot_node *v, ot_strmap *out, const char *path,
                     bool is_def)
{
    if (v->kind != OT_NODE_MAP) {
        bad(w, k, v, path, is_def, false, NULL);
        return;
    }
    size_t cap = v->n ? v->n : 1, m = 0;
    const char **keys = ot_arena_alloc(w->a, cap * sizeof *keys);
    const char **vals = ot_arena_alloc(w->a, cap * sizeof *vals);
    if (!keys || !vals)
        return;
    for (size_t i = 0; i < v->n; i++) {
        const ot_node *val = v->vals[i];
        if (val->kind == OT_NODE_MAP || val->kind == OT_NODE_SEQ) {
            char ip[600], fb[100];
            snprintf(ip, sizeof ip, "%s.%.*s", path, (int)v->keys[i]->len, v->keys[i]->str);
            ot_diag_add(w->d, OT_SEV_ERROR, is_def ? NULL : val, ip,
                        "%sexpected a string, found %s", is_def ? "bad default in the key table: " : "",
                        found(val, fb, sizeof fb));
            continue;
        }
        keys[m] = ot_arena_strndup(w->a, v->keys[i]->str, v->keys[i]->len);
        vals[m++] = ot_arena_strndup(w->a, val->str, val->len); /* null: "" */
    }
    *out = (ot_strmap){keys, vals, m};
}

static bool parse_double(const char *s, double *out)
{
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.'))
        return false;
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d))
        return false;
    *out = d;
    return true;
}

/* Converts a non-null value node into dst. On failure dst keeps what it
 * had (the default). */
static void convert(walk *w, const ot_key *k, const ot_node *v, char *dst, const char *path,
                    bool is_def)
{
    if (k->type == OT_KT_STRLIST) {
        fill_list(w, k, v, (ot_strlist *)dst, path, is_def);
        return;
    }
    if (k->type == OT_KT_STRMAP) {
        fill_map(w, k, v, (ot_strmap *)dst, path, is_def);
        return;
    }
    if (v->kind != OT_NODE_SCALAR || (k->type != OT_KT_STRING && strlen(v->str) != v->len)) {
        bad(w, k, v, path, is_def, false, NULL);
        return;
    }
    const char *s = v->str;
    bool ok = true, in_range = true;
    switch (k->type) {
    case OT_KT_STRING: {
        const char *t = ot_arena_strndup(w->a, s, v->len);
        memcpy(dst, &t, sizeof t);
        return;
    }
    case OT_KT_BOOL: ok = ot_parse_bool(s, (bool *)dst, NULL) == 0; break;
    case OT_KT_INT: {
        int64_t x;
        if ((ok = ot_parse_int(s, &x, NULL) == 0) && (in_range = !bounded(k) || (x >= k->min && x <= k->max)))
            *(int64_t *)dst = x;
        break;
    }
    case OT_KT_DOUBLE: {
        double x;
        if ((ok = parse_double(s, &x)) && (in_range = !bounded(k) || (x >= k->min && x <= k->max)))
            *(double *)dst = x;
        break;
    }
    case OT_KT_DURATION: {
        int64_t x;
        if ((ok = ot_parse_duration(s, &x, NULL) == 0) &&
            (in_range = !bounded(k) || ((double)x >= k->min && (double)x <= k->max)))
            *(int64_t *)dst = x;
        break;
    }
    case OT_KT_SIZE: {
        uint64_t x;
        if ((ok = ot_parse_size(s, &x, NULL) == 0) &&
            (in_range = !bounded(k) || ((double)x >= k->min && (double)x <= k->max)))
            *(uint64_t *)dst = x;
        break;
    }
    case OT_KT_ENDPOINT: ok = ot_parse_endpoint(s, (ot_endpoint *)dst, w->a, NULL) == 0; break;
    case OT_KT_ENUM:
        ok = false;
        for (int i = 0; k->choices && k->choices[i] && !ok; i++)
            if (strcmp(s, k->choices[i]) == 0) {
                *(int *)dst = i;
                ok = true;
            }
        break;
    default: break;
    }
    if (!ok)
        bad(w, k, v, path, is_def, false, NULL);
    else if (!in_range)
        bad(w, k, v, path, is_def, true, s);
}

static void set_default(walk *w, const ot_key *k, char *dst, const char *path)
{
    memset(dst, 0, type_size(k->type));
    if (!k->def)
        return;
    if (k->type == OT_KT_STRLIST || k->type == OT_KT_STRMAP || k->type == OT_KT_NODE) {
        const ot_node *n = ot_node_parse(w->a, "<default>", k->def, strlen(k->def), w->d);
        if (k->type == OT_KT_NODE)
            memcpy(dst, &n, sizeof n);
        else if (n && n->kind != OT_NODE_NULL)
            convert(w, k, n, dst, path, true);
        return;
    }
    ot_node n = {.kind = OT_NODE_SCALAR, .file = "<default>", .str = k->def, .len = strlen(k->def)};
    convert(w, k, &n, dst, path, true);
}

/* ---- tables ---------------------------------------------------------------- */

static const ot_key *find(const ot_key *keys, const ot_node *name)
{
    for (size_t i = 0; keys && keys[i].name; i++)
        if (strlen(keys[i].name) == name->len && memcmp(keys[i].name, name->str, name->len) == 0)
            return &keys[i];
    return NULL;
}

static void unknown_key(walk *w, const ot_key *keys, const ot_node *key, const char *path)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    ot_buf known = OT_BUF_INIT;
    for (size_t i = 0; keys && keys[i].name; i++) {
        size_t d = ot_edit_distance(key->str, keys[i].name), len = strlen(keys[i].name);
        if (d < bestd && d <= (len / 3 > 1 ? len / 3 : 1)) {
            best = keys[i].name;
            bestd = d;
        }
        ot_buf_printf(&known, "%s%s", i ? ", " : "", keys[i].name);
    }
    char q[100];
    quote_text(q, sizeof q, key->str, key->len);
    if (!known.len)
        ot_diag_add(w->d, OT_SEV_ERROR, key, path, "unknown key %s; this takes no settings", q);
    else if (best)
        ot_diag_add(w->d, OT_SEV_ERROR, key, path, "unknown key %s; did you mean \"%s\"? known keys: %s",
                    q, best, known.data);
    else
        ot_diag_add(w->d, OT_SEV_ERROR, key, path, "unknown key %s; known keys: %s", q, known.data);
    ot_buf_free(&known);
}

static void fill_table(walk *w, const ot_key *keys, const ot_node *map, char *out, const char *path);

static bool is_map_or_null(const ot_node *v)
{
    return v->kind == OT_NODE_MAP || v->kind == OT_NODE_NULL;
}

/* One key: its value v (NULL when absent) from map, into dst. */
static void fill_key(walk *w, const ot_key *k, const ot_node *map, const ot_node *v, char *dst,
                     const char *path, const char *kpath)
{
    bool required = k->flags & OT_KF_REQUIRED;
    if (!v && required)
        ot_diag_add(w->d, OT_SEV_ERROR, map, path, "missing required key \"%s\"", k->name);
    switch (k->type) {
    case OT_KT_TABLE:
        if (v && !is_map_or_null(v))
            bad(w, k, v, kpath, false, false, NULL);
        fill_table(w, k->sub, v && v->kind == OT_NODE_MAP ? v : NULL, dst, kpath);
        if (k->flags & OT_KF_PRESENCE)
            *(bool *)dst = v != NULL;
        return;
    case OT_KT_NODE:
        if (v)
            memcpy(dst, &v, sizeof v);
        else
            set_default(w, k, dst, kpath);
        return;
    default:
        set_default(w, k, dst, kpath);
        if (v && v->kind != OT_NODE_NULL)
            convert(w, k, v, dst, kpath, false);
        else if (v && required)
            ot_diag_add(w->d, OT_SEV_ERROR, v, kpath, "a value is required");
        return;
    }
}

static void fill_table(walk *w, const ot_key *keys, const ot_node *map, char *out, const char *path)
{
    bool is_map = map && map->kind == OT_NODE_MAP;
    for (size_t i = 0; is_map && i < map->n; i++)
        if (!find(keys, map->keys[i]))
            unknown_key(w, keys, map->keys[i], path);
    for (size_t i = 0; keys && keys[i].name; i++) {
        char kpath[512];
        snprintf(kpath, sizeof kpath, "%s%s%s", path, *path ? "." : "", keys[i].name);
        fill_key(w, &keys[i], map, is_map ? ot_node_get(map, keys[i].name) : NULL,
                 out + keys[i].offset, path, kpath);
    }
}

size_t ot_keys_fill(const ot_key *keys, const ot_node *map, void *out, ot_arena *arena,
                    const char *path, ot_diags *diags)
{
    size_t before = diags ? diags->errors : 0;
    walk w = {arena, diags};
    if (!path)
        path = "";
    if (map && !is_map_or_null(map)) {
        char fb[100];
        ot_diag_add(diags, OT_SEV_ERROR, map, path, "expected a map, found %s", found(map, fb, sizeof fb));
        map = NULL;
    }
    fill_table(&w, keys, map, out, path);
    return diags ? diags->errors - before : 0;
}

/* ---- description ------------------------------------------------------------ */

/* What a reader needs beyond the help line: choices, bounds, required. */
static void key_notes(const ot_key *k, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (k->type == OT_KT_ENUM && k->choices && k->choices[0]) {
        n += (size_t)snprintf(out + n, cap - n, " (one of: ");
        for (size_t j = 0; k->choices[j] && n < cap; j++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", j ? ", " : "", k->choices[j]);
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, ")");
    }
    if (bounded(k) && k->type != OT_KT_ENUM && n < cap) {
        char lo[48], hi[48];
        fmt_bound(k, k->min, lo, sizeof lo);
        fmt_bound(k, k->max, hi, sizeof hi);
        n += (size_t)snprintf(out + n, cap - n, " (%s..%s)", lo, hi);
    }
    if ((k->flags & OT_KF_REQUIRED) && n < cap)
        snprintf(out + n, cap - n, " (required)");
}

static const char *key_default(const ot_key *k)
{
    return !k->def ? "-" : (k->flags & OT_KF_SECRET) ? "(secret)" : k->def;
}

void ot_keys_describe(const ot_key *keys, FILE *out, int indent)
{
    for (size_t i = 0; keys && keys[i].name; i++) {
        const ot_key *k = &keys[i];
        char notes[512];
        key_notes(k, notes, sizeof notes);
        int width = 26 - indent > 8 ? 26 - indent : 8;
        fprintf(out, "%*s%-*s %-9s %-14s %s%s\n", indent + 2, "", width, k->name,
                ot_key_type_name(k->type), key_default(k), k->help ? k->help : "", notes);
        if (k->type == OT_KT_TABLE)
            ot_keys_describe(k->sub, out, indent + 2);
    }
}

void ot_keys_describe_md(const ot_key *keys, FILE *out, const char *prefix)
{
    for (size_t i = 0; keys && keys[i].name; i++) {
        const ot_key *k = &keys[i];
        char notes[512], name[256];
        key_notes(k, notes, sizeof notes);
        snprintf(name, sizeof name, "%s%s%s", prefix ? prefix : "", prefix && *prefix ? "." : "",
                 k->name);
        fprintf(out, "| `%s` | %s | `%s` | %s%s |\n", name, ot_key_type_name(k->type),
                key_default(k), k->help ? k->help : "", notes);
        if (k->type == OT_KT_TABLE)
            ot_keys_describe_md(k->sub, out, name);
    }
}
