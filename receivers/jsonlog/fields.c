/* fields.c: which JSON field is the time, the severity, the message or the
 * trace context, by the names real loggers give them (pino, bunyan,
 * winston, structlog, python-json-logger, zap, logrus, …), and what their
 * severity words and numbers mean in OTLP. Used only for what the config
 * leaves unset: a configured field replaces the names. */
#include <pthread.h>
#include <strings.h>
#include <string.h>

#include "base/arena.h"
#include "jl.h"

typedef struct name_kind {
    const char *name;
    size_t len;
    int kind;
} name_kind;

#define NK(s, k) {s, sizeof s - 1, k}
static const name_kind known[] = {
    NK("time", JL_F_TIME),        NK("timestamp", JL_F_TIME),    NK("ts", JL_F_TIME),
    NK("@timestamp", JL_F_TIME),  NK("asctime", JL_F_TIME),      NK("datetime", JL_F_TIME),
    NK("level", JL_F_SEVERITY),   NK("severity", JL_F_SEVERITY), NK("levelname", JL_F_SEVERITY),
    NK("lvl", JL_F_SEVERITY),     NK("loglevel", JL_F_SEVERITY), NK("log.level", JL_F_SEVERITY),
    NK("msg", JL_F_BODY),         NK("message", JL_F_BODY),      NK("event", JL_F_BODY),
    NK("trace_id", JL_F_TRACE),   NK("traceId", JL_F_TRACE),     NK("traceid", JL_F_TRACE),
    NK("trace.id", JL_F_TRACE),   NK("span_id", JL_F_SPAN),      NK("spanId", JL_F_SPAN),
    NK("spanid", JL_F_SPAN),      NK("span.id", JL_F_SPAN),
};

/* Every key of every line is looked up here: an open-addressed table
 * hashed on length and first and last byte, built once. */
#define NSLOTS 64
static const name_kind *slots[NSLOTS];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static unsigned slot_hash(const char *k, size_t n)
{
    return ((unsigned)n * 31u + (unsigned char)k[0] * 7u + (unsigned char)k[n - 1]) &
           (NSLOTS - 1);
}

static void build_slots(void)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        unsigned h = slot_hash(known[i].name, known[i].len);
        while (slots[h])
            h = (h + 1) & (NSLOTS - 1);
        slots[h] = &known[i];
    }
}

/* k (n bytes, not NUL-terminated) equals the C string name; the first
 * byte is compared before anything else, as it rules out nearly all. */
static inline bool eq(const char *k, size_t n, const char *name)
{
    return name && name[0] == k[0] && strnlen(name, n + 1) == n && memcmp(name, k, n) == 0;
}

int jl_field_kind(const jl_map *m, const char *k, size_t n)
{
    if (!n)
        return JL_F_OTHER;
    if (m->ts_field && eq(k, n, m->ts_field))
        return JL_F_TIME;
    if (m->sev_field && eq(k, n, m->sev_field))
        return JL_F_SEVERITY;
    if (m->body_field && eq(k, n, m->body_field))
        return JL_F_BODY;
    if (n < 2 || n > 10)
        return JL_F_OTHER;
    pthread_once(&slots_once, build_slots);
    for (unsigned h = slot_hash(k, n);; h = (h + 1) & (NSLOTS - 1)) {
        const name_kind *nk = slots[h];
        if (!nk)
            return JL_F_OTHER;
        if (nk->len != n || memcmp(nk->name, k, n) != 0)
            continue;
        int kind = nk->kind;
        if ((kind == JL_F_TIME && m->ts_field) || (kind == JL_F_SEVERITY && m->sev_field) ||
            (kind == JL_F_BODY && m->body_field))
            return JL_F_OTHER;
        return kind;
    }
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
#define W(s, v) {s, sizeof s - 1, v}
static const struct {
    const char *w;
    size_t len;
    int number;
} words[] = {
    W("trace", 1),
    W("verbose", 1),
    W("silly", 1),
    W("debug", 5),
    W("dbug", 5),
    W("fine", 5),
    W("info", 9),
    W("information", 9),
    W("informational", 9),
    W("notice", 10),
    W("http", 6),
    W("warn", 13),
    W("warning", 13),
    W("wrn", 13),
    W("error", 17),
    W("err", 17),
    W("eror", 17),
    W("critical", 21),
    W("crit", 21),
    W("fatal", 21),
    W("panic", 22),
    W("dpanic", 22),
    W("alert", 23),
    W("emerg", 24),
    W("emergency", 24),
    W("severe", 17),
    W("i", 9),
    W("w", 13),
    W("e", 17),
    W("d", 5),
    W("f", 21),
};

int jl_sev_word(const jl_map *m, const char *s, size_t n)
{
    for (size_t i = 0; m && i < m->n_sevmap; i++)
        if (strlen(m->sevmap[i].word) == n && strncasecmp(m->sevmap[i].word, s, n) == 0)
            return m->sevmap[i].number;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (words[i].len == n && (words[i].w[0] | 0x20) == (s[0] | 0x20) &&
            strncasecmp(words[i].w, s, n) == 0)
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
