/* log.c: logfmt lines on stderr (see log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = OT_LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ot_log_set_level(ot_log_level l)
{
    atomic_store(&log_level, (int)l);
}

ot_log_level ot_log_get_level(void)
{
    return (ot_log_level)atomic_load(&log_level);
}

void ot_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd < 0 ? 2 : fd);
}

int ot_log_parse_level(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return OT_LOG_WARN;
    return -1;
}

static size_t quote(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3)
        return 0;
    out[n++] = '"';
    for (; *s && n + 3 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20) {
            out[n++] = ' ';
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    return n;
}

void ot_log(ot_log_level l, const char *component, const char *msg, const char *kv, ...)
{
    if ((int)l < atomic_load(&log_level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ level=%s component=%s msg=",
                          ts.tv_nsec / 1000000, level_names[l], component ? component : "agent");
    n += quote(line + n, sizeof line - n - 2, msg ? msg : "");
    if (kv && *kv && n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kv);
        int k = vsnprintf(line + n, sizeof line - n - 1, kv, ap);
        va_end(ap);
        if (k > 0)
            n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(atomic_load(&log_fd), line, n);
    (void)w;
}

bool ot_log_ratelimit(_Atomic int64_t *last_ns, int64_t interval_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t last = atomic_load(last_ns);
    return (last == 0 || now - last >= interval_ns) &&
           atomic_compare_exchange_strong(last_ns, &last, now);
}

static uint64_t once_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull; /* FNV-1a */
    return h;
}

int ot_log_once_check(ot_log_once *o, const char *a, const char *b)
{
    uint64_t k = once_hash(once_hash(0xcbf29ce484222325ull, a), b ? b : "");
    if (!k)
        k = 1; /* 0 marks a free slot */
    for (size_t i = 0; i < OT_LOG_ONCE_SLOTS; i++) {
        uint64_t cur = atomic_load(&o->seen[i]);
        if (cur == k)
            return OT_LOG_SEEN;
        if (cur == 0) {
            if (atomic_compare_exchange_strong(&o->seen[i], &cur, k))
                return OT_LOG_FIRST;
            if (cur == k) /* another thread claimed it for the same reason */
                return OT_LOG_SEEN;
        }
    }
    return atomic_exchange(&o->full, true) ? OT_LOG_SEEN : OT_LOG_NOW_FULL;
}

void ot_log_clean(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    if (!cap)
        return;
    for (; in && *in && n + 1 < cap; in++)
        out[n++] = *in == '"' ? '\'' : (unsigned char)*in < 0x20 ? ' ' : *in;
    out[n] = 0;
}
