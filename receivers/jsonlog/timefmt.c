/* timefmt.c: the timestamp layouts log lines use, to nanoseconds since
 * 1970 UTC. RFC 3339 and epoch numbers are parsed by hand, exactly (no
 * float rounding of nanoseconds, no locale, no time zone database); other
 * layouts go through strptime(3). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jl.h"

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Seconds and nanoseconds → ns since 1970; -1 outside what int64 holds
 * (before 1677, after 2262). */
static int to_ns(int64_t s, int64_t frac, int64_t *ns)
{
    int64_t v;
    if (__builtin_mul_overflow(s, 1000000000LL, &v) || __builtin_add_overflow(v, frac, &v))
        return -1;
    *ns = v;
    return 0;
}

static int digits(const char *s, size_t n, size_t at, size_t k, int *out)
{
    if (at + k > n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

int jl_ts_rfc3339(const char *s, size_t n, int64_t *ns)
{
    int Y, M, D, h, mi, sec;
    if (digits(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || digits(s, n, 5, 2, &M) ||
        s[7] != '-' || digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' ||
        digits(s, n, 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (k < 9) {
                frac = frac * 10 + (s[i] - '0');
                k++;
            }
            i++;
        }
        if (!k)
            return -1;
        while (k < 9) {
            frac *= 10;
            k++;
        }
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
        i++;
        if (digits(s, n, i, 2, &oh))
            return -1;
        i += 2;
        if (i < n && s[i] == ':')
            i++;
        if (i < n && !digits(s, n, i, 2, &om))
            i += 2;
        if (oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    if (i != n)
        return -1;
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t t = days * 86400 + h * 3600 + mi * 60 + sec - off;
    return to_ns(t, frac, ns);
}

static const int64_t unit_ns[] = {[JL_TS_EPOCH_S] = 1000000000LL, [JL_TS_EPOCH_MS] = 1000000LL,
                                  [JL_TS_EPOCH_US] = 1000LL, [JL_TS_EPOCH_NS] = 1};

/* Integer and fraction parts of decimal text; -1 unless [-]digits[.digits]. */
static int split_num(const char *s, size_t n, bool *neg, uint64_t *ip, const char **fp,
                     size_t *fn)
{
    size_t i = 0;
    *neg = false;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    uint64_t v = 0;
    size_t k = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > UINT64_MAX / 10 - 9)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
        k++;
    }
    *fp = NULL;
    *fn = 0;
    if (i < n && s[i] == '.') {
        i++;
        *fp = s + i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            (*fn)++;
        }
    }
    if (!k || i != n)
        return -1;
    *ip = v;
    return 0;
}

int jl_ts_epoch(const char *s, size_t n, int layout, int64_t *ns)
{
    if (layout < JL_TS_EPOCH_S || layout > JL_TS_EPOCH_NS)
        return -1;
    bool neg;
    uint64_t ip;
    const char *fp;
    size_t fn;
    if (split_num(s, n, &neg, &ip, &fp, &fn) < 0)
        return -1;
    int64_t u = unit_ns[layout];
    if (ip > (uint64_t)(INT64_MAX / u))
        return -1;
    int64_t v = (int64_t)ip * u;
    int64_t f = 0, scale = u;
    for (size_t i = 0; i < fn && scale > 1; i++) {
        scale /= 10;
        f += (fp[i] - '0') * scale;
    }
    v += f;
    *ns = neg ? -v : v;
    return 0;
}

int jl_ts_epoch_guess(const char *s, size_t n, int64_t *ns)
{
    bool neg;
    uint64_t ip;
    const char *fp;
    size_t fn;
    if (split_num(s, n, &neg, &ip, &fp, &fn) < 0 || neg)
        return -1;
    int layout;
    if (ip < 100000000ULL)
        return -1; /* before 1973: a counter, not a time */
    else if (ip < 100000000000ULL)
        layout = JL_TS_EPOCH_S;
    else if (ip < 100000000000000ULL)
        layout = JL_TS_EPOCH_MS;
    else if (ip < 100000000000000000ULL)
        layout = JL_TS_EPOCH_US;
    else
        layout = JL_TS_EPOCH_NS;
    return jl_ts_epoch(s, n, layout, ns);
}

int jl_ts_strptime(const char *s, size_t n, const char *pattern, int64_t *ns)
{
    char buf[128];
    if (!pattern || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(buf, pattern, &tm);
    if (!end)
        return -1;
    int64_t frac = 0;
    if ((*end == '.' || *end == ',') && end[1] >= '0' && end[1] <= '9') {
        end++;
        int64_t scale = 100000000;
        while (*end >= '0' && *end <= '9') {
            frac += (*end - '0') * scale;
            scale /= 10;
            end++;
        }
    }
    if (*end)
        return -1;
    long gmtoff = tm.tm_gmtoff;
    time_t t = timegm(&tm);
    return to_ns((int64_t)t - gmtoff, frac, ns);
}

int jl_ts_parse(const char *s, size_t n, bool is_num, int layout, const char *pattern,
                int64_t *ns)
{
    switch (layout) {
    case JL_TS_RFC3339:
        return jl_ts_rfc3339(s, n, ns);
    case JL_TS_STRPTIME:
        return jl_ts_strptime(s, n, pattern, ns);
    case JL_TS_AUTO:
        if (!is_num && jl_ts_rfc3339(s, n, ns) == 0)
            return 0;
        return jl_ts_epoch_guess(s, n, ns);
    default:
        return jl_ts_epoch(s, n, layout, ns);
    }
}
