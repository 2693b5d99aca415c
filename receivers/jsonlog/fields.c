/* fields.c: which JSON field is the time, the severity, the message or the
 * trace context, by the names real loggers give them (pino, bunyan,
 * winston, structlog, python-json-logger, zap, logrus, …), and what their
 * severity words and numbers mean in OTLP. Used only for what the config
 * leaves unset: a configured field replaces the names. */
#include <strings.h>
#include <string.h>

#include "base/arena.h"
#include "jl.h"

typedef struct name_kind {
    const char *name;
    int kind;
} name_kind;

static const name_kind known[] = {
    {"time", JL_F_TIME},        {"timestamp", JL_F_TIME}, {"ts", JL_F_TIME},
    {"@timestamp", JL_F_TIME},  {"asctime", JL_F_TIME},   {"datetime", JL_F_TIME},
    {"level", JL_F_SEVERITY},   {"severity", JL_F_SEVERITY}, {"levelname", JL_F_SEVERITY},
    {"lvl", JL_F_SEVERITY},     {"loglevel", JL_F_SEVERITY}, {"log.level", JL_F_SEVERITY},
    {"msg", JL_F_BODY},         {"message", JL_F_BODY},   {"event", JL_F_BODY},
    {"trace_id", JL_F_TRACE},   {"traceId", JL_F_TRACE},  {"traceid", JL_F_TRACE},
    {"trace.id", JL_F_TRACE},   {"span_id", JL_F_SPAN},   {"spanId", JL_F_SPAN},
    {"spanid", JL_F_SPAN},      {"span.id", JL_F_SPAN},
};

static bool eq(const char *k, size_t n, const char *name)
{
    return name && strlen(name) == n && memcmp(k, name, n) == 0;
}

int jl_field_kind(const jl_map *m, const char *k, size_t n)
{
    if (m->ts_field && eq(k, n, m->ts_field))
        return JL_F_TIME;
    if (m->sev_field && eq(k, n, m->sev_field))
        return JL_F_SEVERITY;
    if (m->body_field && eq(k, n, m->body_field))
        return JL_F_BODY;
    if (n < 2 || n > 10)
        return JL_F_OTHER;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!eq(k, n, known[i].name))
            continue;
        int kind = known[i].kind;
        if ((kind == JL_F_TIME && m->ts_field) || (kind == JL_F_SEVERITY && m->sev_field) ||
            (kind == JL_F_BODY && m->body_field))
            return JL_F_OTHER;
        return kind;
    }
    return JL_F_OTHER;
}

static const struct {
    const char *name;
    int number;
} sev_names[] = {
    {"trace", 1},  {"trace2", 2}, {"trace3", 3}, {"trace4", 4}, {"debug", 5},  {"debug2", 6},
    {"debug3", 7}, {"debug4", 8}, {"info", 9},   {"info2", 10}, {"info3", 11}, {"info4", 12},
    {"warn", 13},  {"warn2", 14}, {"warn3", 15}, {"warn4", 16}, {"error", 17}, {"error2", 18},
    {"error3", 19}, {"error4", 20}, {"fatal", 21}, {"fatal2", 22}, {"fatal3", 23},
    {"fatal4", 24},
};

int jl_sev_name(const char *s)
{
    for (size_t i = 0; i < sizeof sev_names / sizeof sev_names[0]; i++)
        if (strcmp(s, sev_names[i].name) == 0)
            return sev_names[i].number;
    return 0;
}

/* The words loggers write, lower case. */
static const struct {
    const char *w;
    int number;
} words[] = {
    {"trace", 1},    {"verbose", 1},  {"silly", 1},     {"debug", 5},   {"dbug", 5},
    {"fine", 5},     {"info", 9},     {"information", 9}, {"informational", 9},
    {"notice", 10},  {"http", 6},     {"warn", 13},     {"warning", 13}, {"wrn", 13},
    {"error", 17},   {"err", 17},     {"eror", 17},     {"critical", 21}, {"crit", 21},
    {"fatal", 21},   {"panic", 22},   {"dpanic", 22},   {"alert", 23},  {"emerg", 24},
    {"emergency", 24}, {"severe", 17}, {"i", 9}, {"w", 13}, {"e", 17}, {"d", 5}, {"f", 21},
};

int jl_sev_word(const jl_map *m, const char *s, size_t n)
{
    for (size_t i = 0; m && i < m->n_sevmap; i++)
        if (strlen(m->sevmap[i].word) == n && strncasecmp(m->sevmap[i].word, s, n) == 0)
            return m->sevmap[i].number;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].w) == n && strncasecmp(words[i].w, s, n) == 0)
            return words[i].number;
    return 0;
}

int jl_sev_number(int64_t v)
{
    if (v >= 0 && v <= 7) {
        static const int syslog[] = {24, 23, 21, 17, 13, 10, 9, 5};
        return syslog[v];
    }
    if (v >= 10 && v <= 60) {
        if (v <= 10)
            return 1;
        if (v <= 20)
            return 5;
        if (v <= 30)
            return 9;
        if (v <= 40)
            return 13;
        if (v <= 50)
            return 17;
        return 21;
    }
    return 0;
}

int jl_sevmap_build(const ot_node *n, ot_arena *a, jl_sevmap_ent **out, size_t *nout,
                    ot_err *err)
{
    *out = NULL;
    *nout = 0;
    if (!n || n->kind == OT_NODE_NULL)
        return 0;
    if (n->kind != OT_NODE_MAP)
        return ot_err_set(err, "mapping must be a map of severity names to lists of words");
    size_t total = 0;
    for (size_t i = 0; i < n->n; i++)
        total += n->vals[i]->kind == OT_NODE_SEQ ? n->vals[i]->n : 1;
    jl_sevmap_ent *v = ot_arena_calloc(a, (total ? total : 1) * sizeof *v);
    if (!v)
        return ot_err_set(err, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n->n; i++) {
        const char *name = n->keys[i]->str;
        int num = jl_sev_name(name);
        if (!num)
            return ot_err_set(err, "mapping: unknown severity \"%s\" (trace, debug, info, warn, "
                                   "error, fatal, or one of those with 2..4)", name);
        const ot_node *val = n->vals[i];
        size_t cnt = val->kind == OT_NODE_SEQ ? val->n : 1;
        for (size_t j = 0; j < cnt; j++) {
            const ot_node *w = val->kind == OT_NODE_SEQ ? val->vals[j] : val;
            if (w->kind != OT_NODE_SCALAR)
                return ot_err_set(err, "mapping.%s: expected words, found a %s", name,
                                  w->kind == OT_NODE_MAP ? "map" : "list");
            v[k].word = w->str;
            v[k].number = num;
            k++;
        }
    }
    *out = v;
    *nout = k;
    return 0;
}
