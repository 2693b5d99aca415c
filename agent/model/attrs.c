/* attrs.c: attribute actions (see attrs.h). The config side goes through
 * the key walker per action, so a typo in an action gets the same "did you
 * mean" as any other key; the data side edits protobuf-c attribute arrays
 * in place, allocating replacements from the batch's arena. */
#include "model/attrs.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

#include "base/codec.h"

typedef struct action_cfg {
    const char *key;
    int action;
    const ot_node *value;
    const char *from_attribute;
    const char *pattern;
} action_cfg;

static const char *const action_names[] = {"insert", "update", "upsert", "delete", "hash",
                                           "extract", NULL};

static const ot_key action_keys[] = {
    {.name = "key", .type = OT_KT_STRING, .offset = offsetof(action_cfg, key),
     .flags = OT_KF_REQUIRED, .help = "the attribute to act on"},
    {.name = "action", .type = OT_KT_ENUM, .offset = offsetof(action_cfg, action),
     .choices = action_names, .flags = OT_KF_REQUIRED,
     .help = "insert (if absent), update (if present), upsert, delete, hash (SHA-256 hex), "
             "extract (pattern's named groups of the key's string value, upserted by name)"},
    {.name = "value", .type = OT_KT_NODE, .offset = offsetof(action_cfg, value),
     .help = "the value; its YAML type is kept: 5 int, \"5\" string, 1.5 double, true bool"},
    {.name = "from_attribute", .type = OT_KT_STRING, .offset = offsetof(action_cfg, from_attribute),
     .help = "take the value from this attribute of the same item instead"},
    {.name = "pattern", .type = OT_KT_STRING, .offset = offsetof(action_cfg, pattern),
     .help = "extract: a regular expression (PCRE2) whose groups are all named, (?P<name>...)"},
    {0},
};

#define KV_INIT OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT
#define AV_INIT OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT
#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

static bool is_bool_word(const char *s, bool *b)
{
    return ot_parse_bool(s, b, NULL) == 0;
}

static bool is_number(const char *s, double *d)
{
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.') || strpbrk(s, "xX"))
        return false;
    char *end;
    *d = strtod(s, &end);
    return !*end && isfinite(*d);
}

/* YAML 1.2 writes ints in hex as 0x1F. */
static bool hex_int(const char *s, int64_t *i)
{
    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2])
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s + 2, &end, 16);
    if (*end || errno || v > INT64_MAX || s[2] == '-' || s[2] == '+' || s[2] == ' ')
        return false;
    *i = (int64_t)v;
    return true;
}

/* A YAML scalar as the attribute value a user meant by it. */
static int scalar_value(const ot_node *n, ot_anyvalue *out, ot_arena *a)
{
    ot_anyvalue init = AV_INIT;
    *out = init;
    bool b;
    int64_t i;
    double d;
    if (!n->quoted && strlen(n->str) == n->len) {
        if (is_bool_word(n->str, &b)) {
            out->value_case = AV(BOOL_VALUE);
            out->bool_value = b;
            return 0;
        }
        if (ot_parse_int(n->str, &i, NULL) == 0 || hex_int(n->str, &i)) {
            out->value_case = AV(INT_VALUE);
            out->int_value = i;
            return 0;
        }
        if (is_number(n->str, &d)) {
            out->value_case = AV(DOUBLE_VALUE);
            out->double_value = d;
            return 0;
        }
    }
    out->value_case = AV(STRING_VALUE);
    out->string_value = ot_arena_strndup(a, n->str, n->len);
    return out->string_value ? 0 : -1;
}

static bool needs_value(int op)
{
    return op == OT_ATTRS_INSERT || op == OT_ATTRS_UPDATE || op == OT_ATTRS_UPSERT;
}

/* An extract pattern compiled, with its group names by number: NULL with
 * why set when it does not compile or has an unnamed or no group. */
static pcre2_code *compile_pattern(const char *pat, ot_arena *a, const char ***names,
                                   uint32_t *groups, char *why, size_t cap)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo,
                                   NULL);
    if (!re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(why, cap, "pattern: %s at offset %zu", (const char *)msg, (size_t)eo);
        return NULL;
    }
    uint32_t caps = 0, named = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &caps);
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &named);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    const char *bad = NULL;
    if (!named)
        bad = "pattern has no named group, (?P<name>...)";
    else if (named != caps)
        bad = "pattern has a group without a name; name it, or write (?:...)";
    else if (caps > OT_ATTRS_GROUPS)
        bad = "pattern has more than 31 groups";
    if (!bad && a && !(*names = ot_arena_calloc(a, (caps + 1) * sizeof **names)))
        bad = "out of memory";
    for (uint32_t i = 0; !bad && a && i < named; i++) {
        PCRE2_SPTR e = table + (size_t)i * esize; /* 2 bytes of group number, then the name */
        uint32_t g = ((uint32_t)e[0] << 8) | e[1];
        if (g >= 1 && g <= caps && !((*names)[g] = ot_arena_strdup(a, (const char *)e + 2)))
            bad = "out of memory";
    }
    if (bad) {
        snprintf(why, cap, "%s", bad);
        pcre2_code_free(re);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    *groups = caps;
    return re;
}

/* The checks across one action's keys; the walker did the keys one by one. */
static size_t check_action(const action_cfg *c, const ot_node *item, const char *ipath,
                           ot_diags *d)
{
    size_t errors = 0;
    const char *name = action_names[c->action];
    bool has_value = c->value != NULL, has_from = c->from_attribute != NULL;
    if (c->key && !c->key[0]) {
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, "key"), ipath, "key is empty");
        errors++;
    }
    if (c->action == OT_ATTRS_EXTRACT) {
        char why[200];
        uint32_t g;
        pcre2_code *re;
        if (has_value || has_from) {
            ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, has_value ? "value" : "from_attribute"),
                        ipath, "extract takes no %s", has_value ? "value" : "from_attribute");
            errors++;
        } else if (!c->pattern) {
            ot_diag_add(d, OT_SEV_ERROR, item, ipath, "extract needs a pattern");
            errors++;
        } else if (!(re = compile_pattern(c->pattern, NULL, NULL, &g, why, sizeof why))) {
            ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, "pattern"), ipath, "%s", why);
            errors++;
        } else {
            pcre2_code_free(re);
        }
        return errors;
    }
    if (c->pattern) {
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, "pattern"), ipath,
                    "%s takes no pattern (only extract does)", name);
        errors++;
    }
    if (needs_value(c->action)) {
        if (has_value && has_from) {
            ot_diag_add(d, OT_SEV_ERROR, item, ipath,
                        "%s takes value or from_attribute, not both", name);
            errors++;
        } else if (!has_value && !has_from) {
            ot_diag_add(d, OT_SEV_ERROR, item, ipath, "%s needs value or from_attribute", name);
            errors++;
        } else if (has_value && c->value->kind != OT_NODE_SCALAR) {
            ot_diag_add(d, OT_SEV_ERROR, c->value, ipath,
                        "value: expected a string, number or bool, found %s",
                        c->value->kind == OT_NODE_NULL  ? "nothing (write \"\" for an empty string)"
                        : c->value->kind == OT_NODE_MAP ? "a map"
                                                        : "a list");
            errors++;
        } else if (has_from && !c->from_attribute[0]) {
            ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, "from_attribute"), ipath,
                        "from_attribute is empty");
            errors++;
        }
    } else if (has_value || has_from) {
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(item, has_value ? "value" : "from_attribute"),
                    ipath, "%s takes no %s", name, has_value ? "value" : "from_attribute");
        errors++;
    }
    return errors;
}

size_t ot_attrs_check(const ot_node *actions, const char *path, ot_diags *d)
{
    if (!actions)
        return 0; /* the walker reported the missing required key */
    if (actions->kind != OT_NODE_SEQ) {
        ot_diag_add(d, OT_SEV_ERROR, actions, path,
                    "expected a list of actions ({key, action, value}), found %s",
                    actions->kind == OT_NODE_NULL ? "nothing"
                    : actions->kind == OT_NODE_MAP ? "a map"
                                                   : "a scalar");
        return 1;
    }
    if (actions->n == 0)
        ot_diag_add(d, OT_SEV_WARNING, actions, path, "no actions: this processor changes nothing");
    ot_arena *a = ot_arena_new(0);
    if (!a) {
        ot_diag_add(d, OT_SEV_ERROR, actions, path, "out of memory");
        return 1;
    }
    size_t errors = 0;
    for (size_t i = 0; i < actions->n; i++) {
        char ipath[512];
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        action_cfg c;
        memset(&c, 0, sizeof c);
        size_t e = ot_keys_fill(action_keys, actions->vals[i], &c, a, ipath, d);
        errors += e;
        if (!e && actions->vals[i]->kind == OT_NODE_MAP)
            errors += check_action(&c, actions->vals[i], ipath, d);
    }
    ot_arena_free(a);
    return errors;
}

int ot_attrs_build(ot_attrs *out, const ot_node *actions, ot_err *err)
{
    memset(out, 0, sizeof *out);
    if (!actions || actions->kind != OT_NODE_SEQ)
        return actions ? ot_err_set(err, "actions: expected a list") : 0;
    if (!(out->arena = ot_arena_new(0)) ||
        !(out->v = ot_arena_calloc(out->arena, (actions->n + 1) * sizeof *out->v))) {
        ot_attrs_free(out);
        return ot_err_set(err, "out of memory");
    }
    ot_diags d;
    ot_diags_init(&d);
    for (size_t i = 0; i < actions->n; i++) {
        char ipath[64];
        snprintf(ipath, sizeof ipath, "actions[%zu]", i);
        action_cfg c;
        memset(&c, 0, sizeof c);
        if (ot_keys_fill(action_keys, actions->vals[i], &c, out->arena, ipath, &d) ||
            check_action(&c, actions->vals[i], ipath, &d))
            break;
        ot_attrs_action *act = &out->v[out->n];
        act->op = (ot_attrs_op)c.action;
        act->key = c.key;
        act->from = c.from_attribute;
        if (needs_value(c.action) && c.value && scalar_value(c.value, &act->value, out->arena) < 0) {
            ot_err_set(err, "out of memory");
            ot_diags_free(&d);
            ot_attrs_free(out);
            return -1;
        }
        if (c.action == OT_ATTRS_EXTRACT) {
            char why[200];
            out->n++; /* freed with the others from here on */
            if (!(act->re = compile_pattern(c.pattern, out->arena, &act->names, &act->groups, why,
                                            sizeof why)) ||
                !(act->mctx = pcre2_match_context_create(NULL))) {
                ot_err_set(err, "%s: %s", ipath, act->re ? "out of memory" : why);
                ot_diags_free(&d);
                ot_attrs_free(out);
                return -1;
            }
            /* bounded work per value, as OTTL's IsMatch */
            pcre2_set_match_limit(act->mctx, 1000000);
            pcre2_set_depth_limit(act->mctx, 100000);
            pcre2_set_heap_limit(act->mctx, 8192);
            continue;
        }
        out->n++;
    }
    if (d.errors) {
        if (d.n)
            ot_err_set(err, "%s: %s", d.v[0].path, d.v[0].msg);
        else
            ot_err_set(err, "bad actions");
        ot_diags_free(&d);
        ot_attrs_free(out);
        return -1;
    }
    ot_diags_free(&d);
    return 0;
}

void ot_attrs_free(ot_attrs *a)
{
    for (size_t i = 0; i < a->n; i++) {
        pcre2_code_free(a->v[i].re);
        pcre2_match_context_free(a->v[i].mctx);
    }
    ot_arena_free(a->arena);
    memset(a, 0, sizeof *a);
}

/* ---- applying ------------------------------------------------------------ */

/* One match-data block per thread, big enough for any extract pattern. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_init(void)
{
    pthread_key_create(&md_key, md_free);
}

uint32_t ot_attrs_extract(const ot_attrs_action *act, const char *s, size_t n,
                          size_t start[OT_ATTRS_GROUPS + 1], size_t len[OT_ATTRS_GROUPS + 1])
{
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        if (!(md = pcre2_match_data_create(OT_ATTRS_GROUPS + 1, NULL)))
            return 0;
        if (pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            return 0;
        }
    }
    int rc = pcre2_match(act->re, (PCRE2_SPTR)(n ? s : ""), n, 0, 0, md, act->mctx);
    if (rc <= 0)
        return 0; /* no match, an error or a limit: the value stays as it is */
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (uint32_t g = 1; g <= act->groups; g++) {
        bool set = (int)g < rc && ov[2 * g] != PCRE2_UNSET;
        start[g] = set ? ov[2 * g] : 0;
        len[g] = set ? ov[2 * g + 1] - ov[2 * g] : 0;
    }
    return act->groups;
}

int ot_attrs_begin(ot_attrs_batch *ab, const ot_attrs *a, ot_arena *arena)
{
    memset(ab, 0, sizeof *ab);
    ab->a = a;
    ab->arena = arena;
    size_t n = a->n ? a->n : 1;
    ab->keys = ot_arena_alloc(arena, n * sizeof *ab->keys);
    ab->from = ot_arena_alloc(arena, n * sizeof *ab->from);
    ab->vals = ot_arena_alloc(arena, n * sizeof *ab->vals);
    if (!ab->keys || !ab->from || !ab->vals)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        const ot_attrs_action *act = &a->v[i];
        ab->keys[i] = ot_arena_strdup(arena, act->key);
        ab->from[i] = act->from ? ot_arena_strdup(arena, act->from) : NULL;
        ab->vals[i] = act->value;
        if (!ab->keys[i] || (act->from && !ab->from[i]))
            return -1;
        if (act->value.value_case == AV(STRING_VALUE) &&
            !(ab->vals[i].string_value = ot_arena_strdup(arena, act->value.string_value)))
            return -1;
    }
    return 0;
}

static ssize_t find(ot_keyvalue *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0)
            return (ssize_t)i;
    return -1;
}

/* A fresh entry rather than an edit of the old one: entries may be shared
 * with data this processor does not own. */
static ot_keyvalue *new_kv(ot_arena *a, const char *key, const ot_anyvalue *v)
{
    ot_keyvalue init = KV_INIT;
    ot_anyvalue vinit = AV_INIT;
    ot_keyvalue *kv = ot_arena_alloc(a, sizeof *kv);
    ot_anyvalue *av = ot_arena_alloc(a, sizeof *av);
    if (!kv || !av)
        return NULL;
    *kv = init;
    *av = vinit;
    if (v) {
        av->value_case = v->value_case;
        switch (v->value_case) {
        case AV(STRING_VALUE): av->string_value = v->string_value; break;
        case AV(BOOL_VALUE): av->bool_value = v->bool_value; break;
        case AV(INT_VALUE): av->int_value = v->int_value; break;
        case AV(DOUBLE_VALUE): av->double_value = v->double_value; break;
        case AV(ARRAY_VALUE): av->array_value = v->array_value; break;
        case AV(KVLIST_VALUE): av->kvlist_value = v->kvlist_value; break;
        case AV(BYTES_VALUE): av->bytes_value = v->bytes_value; break;
        default: break;
        }
    }
    kv->key = (char *)key;
    kv->value = av;
    return kv;
}

static int append(ot_arena *a, ot_keyvalue ***kv, size_t *n, ot_keyvalue *e)
{
    ot_keyvalue **v = ot_arena_alloc(a, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    if (*n)
        memcpy(v, *kv, *n * sizeof *v);
    v[*n] = e;
    *kv = v;
    (*n)++;
    return 0;
}

/* The text a value hashes as: what a user would write for it. */
static const char *hash_input(int kind, const void *p, size_t n, int64_t i, double d, bool b,
                              char *buf, size_t cap, size_t *len)
{
    switch (kind) {
    case AV(STRING_VALUE):
        *len = n;
        return p ? p : "";
    case AV(BYTES_VALUE):
        *len = n;
        return n ? p : NULL; /* empty bytes are left as they are */
    case AV(BOOL_VALUE):
        *len = b ? 4 : 5;
        return b ? "true" : "false";
    case AV(INT_VALUE):
        *len = (size_t)snprintf(buf, cap, "%lld", (long long)i);
        return buf;
    case AV(DOUBLE_VALUE): {
        /* shortest text that reads back as the same double */
        int prec = 1;
        for (; prec < 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        *len = (size_t)snprintf(buf, cap, "%.*g", prec, d);
        return buf;
    }
    default:
        return NULL; /* maps, lists, empty: left as they are */
    }
}

int ot_attrs_hash_hex(int kind, const void *p, size_t n, int64_t i, double d, bool b,
                      char hex[65])
{
    char buf[64];
    size_t len = 0;
    const char *in = hash_input(kind, p, n, i, d, b, buf, sizeof buf, &len);
    if (!in)
        return 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(in, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    hex[ot_hex_encode(md, mdlen, hex, false)] = '\0';
    return 0;
}

static int hash_value(ot_arena *a, const ot_anyvalue *v, ot_anyvalue *out)
{
    char hex[65];
    const void *p = NULL;
    size_t n = 0;
    if (v->value_case == AV(STRING_VALUE)) {
        p = v->string_value;
        n = p ? strlen(p) : 0;
    } else if (v->value_case == AV(BYTES_VALUE)) {
        p = v->bytes_value.data;
        n = v->bytes_value.len;
    }
    int r = ot_attrs_hash_hex((int)v->value_case, p, n, v->int_value, v->double_value,
                              v->bool_value, hex);
    if (r)
        return r;
    char *s = ot_arena_strdup(a, hex);
    if (!s)
        return -1;
    ot_anyvalue init = AV_INIT;
    *out = init;
    out->value_case = AV(STRING_VALUE);
    out->string_value = s;
    return 0;
}

int ot_attrs_apply(ot_attrs_batch *ab, ot_keyvalue ***kv, size_t *n)
{
    ot_arena *a = ab->arena;
    for (size_t i = 0; i < ab->a->n; i++) {
        const ot_attrs_action *act = &ab->a->v[i];
        ssize_t at = find(*kv, *n, ab->keys[i]);
        const ot_anyvalue *src = &ab->vals[i];
        if (ab->from[i]) {
            ssize_t f = find(*kv, *n, ab->from[i]);
            src = f >= 0 ? (*kv)[f]->value : NULL;
        }
        switch (act->op) {
        case OT_ATTRS_INSERT:
        case OT_ATTRS_UPDATE:
        case OT_ATTRS_UPSERT: {
            if (!src || (act->op == OT_ATTRS_INSERT && at >= 0) ||
                (act->op == OT_ATTRS_UPDATE && at < 0))
                break;
            ot_keyvalue *e = new_kv(a, at >= 0 ? (*kv)[at]->key : ab->keys[i], src);
            if (!e)
                return -1;
            if (at >= 0)
                (*kv)[at] = e;
            else if (append(a, kv, n, e) < 0)
                return -1;
            break;
        }
        case OT_ATTRS_DELETE: {
            if (at < 0)
                break;
            size_t w = 0;
            for (size_t r = 0; r < *n; r++)
                if (!((*kv)[r] && (*kv)[r]->key && strcmp((*kv)[r]->key, ab->keys[i]) == 0))
                    (*kv)[w++] = (*kv)[r];
            *n = w;
            break;
        }
        case OT_ATTRS_EXTRACT: {
            const ot_anyvalue *v = at >= 0 ? (*kv)[at]->value : NULL;
            if (!v || v->value_case != AV(STRING_VALUE))
                break;
            const char *str = v->string_value ? v->string_value : "";
            size_t st[OT_ATTRS_GROUPS + 1], ln[OT_ATTRS_GROUPS + 1];
            uint32_t g = ot_attrs_extract(act, str, strlen(str), st, ln);
            for (uint32_t k = 1; k <= g; k++) {
                ot_anyvalue nv = AV_INIT;
                nv.value_case = AV(STRING_VALUE);
                if (!(nv.string_value = ot_arena_strndup(a, str + st[k], ln[k])))
                    return -1;
                ssize_t to = find(*kv, *n, act->names[k]);
                ot_keyvalue *e = new_kv(a, to >= 0 ? (*kv)[to]->key : act->names[k], &nv);
                if (!e)
                    return -1;
                if (to >= 0)
                    (*kv)[to] = e;
                else if (append(a, kv, n, e) < 0)
                    return -1;
            }
            break;
        }
        case OT_ATTRS_HASH: {
            if (at < 0 || !(*kv)[at]->value)
                break;
            ot_anyvalue h;
            int r = hash_value(a, (*kv)[at]->value, &h);
            if (r < 0)
                return -1;
            if (r > 0)
                break;
            ot_keyvalue *e = new_kv(a, (*kv)[at]->key, &h);
            if (!e)
                return -1;
            (*kv)[at] = e;
            break;
        }
        }
    }
    return 0;
}
