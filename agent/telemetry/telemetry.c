/* telemetry.c: the process-wide registry of the agent's own counters and
 * gauges, and its Prometheus text rendering (see telemetry.h). Cells live in
 * an arena so their addresses never change: components keep the pointer for
 * the life of the process and only ever do an atomic add on it. The mutex
 * guards registration and rendering, never the hot path. */
#include "telemetry/telemetry.h"
#include "base/version.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/log.h"


#define MAX_LABELS 16

enum { KIND_COUNTER, KIND_GAUGE };

typedef struct series {
    struct series *next;
    const char *labels; /* canonical: sorted by name, escaped; "" for none */
    union {
        ot_counter c;
        ot_gauge g;
    } cell;
} series;

typedef struct family {
    struct family *next;
    const char *name;
    const char *help;
    int kind;
    series *series; /* sorted by labels */
} family;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static ot_arena *reg_arena;  /* guarded by reg_mu */
static family *reg_families; /* sorted by name; guarded by reg_mu */
static atomic_bool tel_ready;

/* Where refused or unallocatable registrations write, so callers never need
 * a NULL check. Never rendered. */
static ot_counter sink_counter;
static ot_gauge sink_gauge;

/* Rendered at scrape time from the process itself; nobody may register
 * them. */
static const char *const builtin_names[] = {
    "otelite_build_info",          "otelite_uptime_seconds",
    "process_cpu_seconds_total",   "process_max_fds",
    "process_open_fds",            "process_resident_memory_bytes",
    "process_start_time_seconds",  "process_virtual_memory_bytes",
};

/* ---- validation and canonical labels ---------------------------------- */

static bool name_ok(const char *s, bool colon_ok)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (colon_ok && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

static void put_escaped(ot_buf *b, const char *s, size_t n, bool quote)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            ot_buf_puts(b, "\\\\");
        else if (s[i] == '\n')
            ot_buf_puts(b, "\\n");
        else if (quote && s[i] == '"')
            ot_buf_puts(b, "\\\"");
        else
            ot_buf_putc(b, s[i]);
    }
}

typedef struct label {
    const char *name;
    size_t name_len;
    ot_buf value; /* unescaped */
} label;

static int label_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses `a="x",b="y"` (escapes \\ \" \n understood; a trailing comma
 * allowed) and writes the canonical form: sorted by name, re-escaped, so
 * equal label sets compare equal as strings. -1 with *why on bad input. */
static int canon_labels(const char *in, ot_buf *out, const char **why)
{
    label l[MAX_LABELS];
    size_t n = 0;
    int rc = -1;
    const char *p = skip_ws(in ? in : "");
    while (*p) {
        if (n == MAX_LABELS) {
            *why = "too many labels";
            goto done;
        }
        const char *name = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
               (p > name && *p >= '0' && *p <= '9'))
            p++;
        label *cur = &l[n];
        cur->name = name;
        cur->name_len = (size_t)(p - name);
        cur->value = (ot_buf)OT_BUF_INIT;
        n++;
        if (cur->name_len == 0 || (cur->name_len >= 2 && name[0] == '_' && name[1] == '_')) {
            *why = "bad label name";
            goto done;
        }
        p = skip_ws(p);
        if (*p++ != '=') {
            *why = "expected '=' after label name";
            goto done;
        }
        p = skip_ws(p);
        if (*p++ != '"') {
            *why = "label value must be quoted";
            goto done;
        }
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\' && (*p == '\\' || *p == '"' || *p == 'n')) {
                c = *p == 'n' ? '\n' : *p;
                p++;
            }
            ot_buf_putc(&cur->value, c);
        }
        if (*p++ != '"') {
            *why = "unterminated label value";
            goto done;
        }
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p) {
            *why = "expected ',' between labels";
            goto done;
        }
    }
    qsort(l, n, sizeof l[0], label_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && label_cmp(&l[i - 1], &l[i]) == 0) {
            *why = "duplicate label name";
            goto done;
        }
        if (i > 0)
            ot_buf_putc(out, ',');
        ot_buf_append(out, l[i].name, l[i].name_len);
        ot_buf_puts(out, "=\"");
        put_escaped(out, l[i].value.data, l[i].value.len, true);
        ot_buf_putc(out, '"');
    }
    rc = 0;
done:
    for (size_t i = 0; i < n; i++)
        ot_buf_free(&l[i].value);
    return rc;
}

/* ---- registration ------------------------------------------------------ */

static const char *check_name(const char *name, const char *help, int kind)
{
    if (!name_ok(name, true))
        return "invalid metric name";
    for (size_t i = 0; i < sizeof builtin_names / sizeof builtin_names[0]; i++)
        if (strcmp(name, builtin_names[i]) == 0)
            return "name reserved for process metrics";
    if (kind == KIND_COUNTER && !ends_with(name, "_total"))
        return "counter name must end in _total";
    if (kind == KIND_GAUGE && ends_with(name, "_total"))
        return "gauge name must not end in _total";
    if (!help || !*help)
        return "help text missing";
    return NULL;
}

/* Finds or creates the cell; NULL (with *why) when refused or out of
 * memory. Called with reg_mu held. */
static series *lookup(const char *name, const char *help, const char *canon, int kind,
                      const char **why)
{
    if (!reg_arena && !(reg_arena = ot_arena_new(0))) {
        *why = "out of memory";
        return NULL;
    }
    family **fp = &reg_families;
    while (*fp && strcmp((*fp)->name, name) < 0)
        fp = &(*fp)->next;
    family *f = *fp;
    if (!f || strcmp(f->name, name) != 0) {
        f = ot_arena_calloc(reg_arena, sizeof *f);
        if (!f || !(f->name = ot_arena_strdup(reg_arena, name)) ||
            !(f->help = ot_arena_strdup(reg_arena, help))) {
            *why = "out of memory";
            return NULL;
        }
        f->kind = kind;
        f->next = *fp;
        *fp = f;
    } else if (f->kind != kind) {
        *why = "registered before as another type";
        return NULL;
    }
    series **sp = &f->series;
    int c = 1;
    while (*sp && (c = strcmp((*sp)->labels, canon)) < 0)
        sp = &(*sp)->next;
    if (*sp && c == 0)
        return *sp;
    series *s = ot_arena_calloc(reg_arena, sizeof *s);
    if (!s || !(s->labels = ot_arena_strdup(reg_arena, canon))) {
        *why = "out of memory";
        return NULL;
    }
    s->next = *sp;
    *sp = s;
    return s;
}

static series *reg(const char *name, const char *help, const char *labels, int kind)
{
    const char *why = check_name(name, help, kind);
    ot_buf canon = OT_BUF_INIT;
    series *s = NULL;
    if (!why && canon_labels(labels, &canon, &why) == 0) {
        if (canon.oom)
            why = "out of memory";
        else {
            pthread_mutex_lock(&reg_mu);
            s = lookup(name, help, canon.data ? canon.data : "", kind, &why);
            pthread_mutex_unlock(&reg_mu);
        }
    }
    ot_buf_free(&canon);
    if (!s)
        ot_warn("telemetry", "metric not registered", "name=%s labels=%s reason=\"%s\"",
                name ? name : "(null)", labels ? labels : "", why);
    return s;
}

ot_counter *ot_tel_counter(const char *name, const char *help, const char *labels)
{
    series *s = reg(name, help, labels, KIND_COUNTER);
    return s ? &s->cell.c : &sink_counter;
}

ot_gauge *ot_tel_gauge(const char *name, const char *help, const char *labels)
{
    series *s = reg(name, help, labels, KIND_GAUGE);
    return s ? &s->cell.g : &sink_gauge;
}

void ot_tel_set_ready(bool ready)
{
    atomic_store(&tel_ready, ready);
}

bool ot_tel_ready(void)
{
    return atomic_load(&tel_ready);
}

void ot_tel_reset(void)
{
    pthread_mutex_lock(&reg_mu);
    ot_arena_free(reg_arena);
    reg_arena = NULL;
    reg_families = NULL;
    pthread_mutex_unlock(&reg_mu);
}

/* ---- process metrics --------------------------------------------------- */

typedef struct builtin {
    const char *name;
    const char *help;
    int kind;
    char value[64];
    bool have;
} builtin;

static bool read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* Seconds since this process started, from its start tick in
 * /proc/self/stat and the boot-time clock (the same clock the kernel counts
 * the start tick on). Negative when unknown. */
static double uptime_seconds(void)
{
    char st[1024];
    if (!read_file("/proc/self/stat", st, sizeof st))
        return -1;
    const char *p = strrchr(st, ')'); /* comm may contain spaces */
    if (!p)
        return -1;
    p++;
    /* p is at the space before field 3 (state); starttime is field 22 */
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return -1;
    unsigned long long ticks = strtoull(p + 1, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec now;
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0)
        return -1;
    double up = (double)now.tv_sec + now.tv_nsec / 1e9 - (double)ticks / (double)hz;
    return up < 0 ? 0 : up;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

static void fill_builtins(builtin *b)
{
    long page = sysconf(_SC_PAGESIZE);
    char statm[256];
    unsigned long long vsz = 0, rss = 0;
    bool have_statm = page > 0 && read_file("/proc/self/statm", statm, sizeof statm) &&
                      sscanf(statm, "%llu %llu", &vsz, &rss) == 2;
    double up = uptime_seconds();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct rusage ru;
    bool have_ru = getrusage(RUSAGE_SELF, &ru) == 0;
    struct rlimit rl;
    bool have_rl = getrlimit(RLIMIT_NOFILE, &rl) == 0;
    long fds = count_fds();

    /* in name order, so rendering can merge them with the registry */
    b[0] = (builtin){"otelite_build_info", "Build of this agent; the value is always 1.",
                     KIND_GAUGE, "1", true};
    b[1] = (builtin){"otelite_uptime_seconds", "Seconds since the agent process started.",
                     KIND_GAUGE, "", up >= 0};
    snprintf(b[1].value, sizeof b[1].value, "%.3f", up);
    b[2] = (builtin){"process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                     KIND_COUNTER, "", have_ru};
    if (have_ru)
        snprintf(b[2].value, sizeof b[2].value, "%.6f",
                 (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    b[3] = (builtin){"process_max_fds", "Maximum number of open file descriptors.", KIND_GAUGE,
                     "", have_rl};
    if (have_rl) {
        if (rl.rlim_cur == RLIM_INFINITY)
            snprintf(b[3].value, sizeof b[3].value, "+Inf");
        else
            snprintf(b[3].value, sizeof b[3].value, "%llu", (unsigned long long)rl.rlim_cur);
    }
    b[4] = (builtin){"process_open_fds", "Number of open file descriptors.", KIND_GAUGE, "",
                     fds >= 0};
    snprintf(b[4].value, sizeof b[4].value, "%ld", fds);
    b[5] = (builtin){"process_resident_memory_bytes", "Resident memory size in bytes.",
                     KIND_GAUGE, "", have_statm};
    snprintf(b[5].value, sizeof b[5].value, "%llu", rss * (unsigned long long)page);
    b[6] = (builtin){"process_start_time_seconds",
                     "Start time of the process since the Unix epoch in seconds.", KIND_GAUGE,
                     "", up >= 0};
    snprintf(b[6].value, sizeof b[6].value, "%.3f",
             (double)now.tv_sec + now.tv_nsec / 1e9 - up);
    b[7] = (builtin){"process_virtual_memory_bytes", "Virtual memory size in bytes.",
                     KIND_GAUGE, "", have_statm};
    snprintf(b[7].value, sizeof b[7].value, "%llu", vsz * (unsigned long long)page);
}

/* ---- rendering --------------------------------------------------------- */

static void render_head(ot_buf *out, const char *name, const char *help, int kind)
{
    ot_buf_printf(out, "# HELP %s ", name);
    put_escaped(out, help, strlen(help), false);
    ot_buf_printf(out, "\n# TYPE %s %s\n", name, kind == KIND_COUNTER ? "counter" : "gauge");
}

static void render_sample(ot_buf *out, const char *name, const char *labels, const char *value)
{
    ot_buf_puts(out, name);
    if (*labels) {
        ot_buf_putc(out, '{');
        ot_buf_puts(out, labels);
        ot_buf_putc(out, '}');
    }
    ot_buf_putc(out, ' ');
    ot_buf_puts(out, value);
    ot_buf_putc(out, '\n');
}

static void render_builtin(ot_buf *out, const builtin *b)
{
    if (!b->have)
        return;
    render_head(out, b->name, b->help, b->kind);
    if (strcmp(b->name, "otelite_build_info") == 0) {
        ot_buf lab = OT_BUF_INIT;
        ot_buf_puts(&lab, "revision=\"");
        put_escaped(&lab, ot_revision(), strlen(ot_revision()), true);
        ot_buf_puts(&lab, "\",version=\"");
        put_escaped(&lab, OT_VERSION, strlen(OT_VERSION), true);
        ot_buf_putc(&lab, '"');
        render_sample(out, b->name, lab.data ? lab.data : "", b->value);
        ot_buf_free(&lab);
        return;
    }
    render_sample(out, b->name, "", b->value);
}

static void render_family(ot_buf *out, const family *f)
{
    render_head(out, f->name, f->help, f->kind);
    for (const series *s = f->series; s; s = s->next) {
        char v[32];
        if (f->kind == KIND_COUNTER)
            snprintf(v, sizeof v, "%" PRIuFAST64,
                     atomic_load_explicit(&s->cell.c.v, memory_order_relaxed));
        else
            snprintf(v, sizeof v, "%" PRIdFAST64,
                     atomic_load_explicit(&s->cell.g.v, memory_order_relaxed));
        render_sample(out, f->name, s->labels, v);
    }
}

void ot_tel_render(ot_buf *out)
{
    enum { NB = sizeof builtin_names / sizeof builtin_names[0] };
    builtin b[NB];
    fill_builtins(b);
    size_t bi = 0;
    pthread_mutex_lock(&reg_mu);
    for (const family *f = reg_families; f; f = f->next) {
        while (bi < NB && strcmp(b[bi].name, f->name) < 0)
            render_builtin(out, &b[bi++]);
        render_family(out, f);
    }
    pthread_mutex_unlock(&reg_mu);
    while (bi < NB)
        render_builtin(out, &b[bi++]);
}
