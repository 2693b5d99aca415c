/* config_parse.c: the one parser for each kind of value a config holds
 * (durations, sizes, endpoints, booleans, integers), shared by the key
 * walker and by anything else that reads such values, so "5s" or
 * "[::1]:4317" means the same thing everywhere. Also the edit distance used
 * to suggest the key a user probably meant. */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- durations ---------------------------------------------------------- */

typedef struct unit {
    const char *name;
    int64_t ns;
} unit;

/* Longest names first so "ms" is not read as "m" followed by "s". */
static const unit dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* µs, micro sign */
    {"\xce\xbcs", 1000}, /* μs, Greek mu */
    {"ms", 1000000},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
};

int ot_parse_duration(const char *s, int64_t *ns, ot_err *err)
{
    if (!s || !*s)
        return ot_err_set(err, "empty duration");
    if (*s == '-')
        return ot_err_set(err, "duration \"%s\" is negative", s);
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;
        for (; is_digit(*p); p++, digits = true) {
            if (whole > (UINT64_MAX - 9) / 10)
                return ot_err_set(err, "duration \"%s\" is too large", s);
            whole = whole * 10 + (uint64_t)(*p - '0');
        }
        if (*p == '.') {
            for (p++; is_digit(*p); p++, digits = true) {
                if (scale < 1000000000000000000ULL) { /* digits past 1e-18 change nothing */
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    scale *= 10;
                }
            }
        }
        if (!digits)
            return ot_err_set(err, "\"%s\" is not a duration", s);
        const unit *u = NULL;
        for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
            size_t n = strlen(dur_units[i].name);
            if (strncmp(p, dur_units[i].name, n) == 0) {
                u = &dur_units[i];
                p += n;
                break;
            }
        }
        if (!u)
            return ot_err_set(err, "duration \"%s\" needs a unit (ns, us, ms, s, m, h)", s);
        int64_t part;
        if (whole > (uint64_t)INT64_MAX ||
            __builtin_mul_overflow((int64_t)whole, u->ns, &part) ||
            __builtin_add_overflow(part, (int64_t)((double)frac / (double)scale * (double)u->ns + 0.5),
                                   &part) ||
            __builtin_add_overflow(total, part, &total))
            return ot_err_set(err, "duration \"%s\" is too large", s);
    }
    *ns = total;
    return 0;
}

/* ---- sizes -------------------------------------------------------------- */

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
    {"KB", 1000ULL},
    {"MB", 1000000ULL},
    {"GB", 1000000000ULL},
    {"TB", 1000000000000ULL},
};

int ot_parse_size(const char *s, uint64_t *bytes, ot_err *err)
{
    if (!s || !is_digit(*s))
        return ot_err_set(err, "\"%s\" is not a size", s ? s : "");
    uint64_t n = 0;
    const char *p = s;
    for (; is_digit(*p); p++) {
        if (n > (UINT64_MAX - 9) / 10)
            return ot_err_set(err, "size \"%s\" is too large", s);
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
        if (strcmp(p, size_units[i].name) == 0) {
            uint64_t b;
            if (__builtin_mul_overflow(n, size_units[i].mult, &b))
                return ot_err_set(err, "size \"%s\" is too large", s);
            *bytes = b;
            return 0;
        }
    }
    return ot_err_set(err, "size \"%s\" has an unknown unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)",
                      s);
}

/* ---- endpoints ---------------------------------------------------------- */

static bool host_char(char c, bool bracketed)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' ||
        c == '_')
        return true;
    return bracketed && (c == ':' || c == '%');
}

int ot_parse_endpoint(const char *s, ot_endpoint *out, ot_arena *a, ot_err *err)
{
    if (!s)
        return ot_err_set(err, "empty endpoint");
    const char *host = s, *colon;
    size_t hlen;
    bool br = s[0] == '[';
    if (br) {
        const char *close = strchr(s, ']');
        if (!close)
            return ot_err_set(err, "endpoint \"%s\": unclosed '['", s);
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':')
            return ot_err_set(err, "endpoint \"%s\" needs :port after ']'", s);
        if (hlen == 0)
            return ot_err_set(err, "endpoint \"%s\" has an empty address in brackets", s);
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return ot_err_set(err, "endpoint \"%s\" needs host:port", s);
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return ot_err_set(err, "endpoint \"%s\": an IPv6 address needs brackets, like [::1]:4317",
                              s);
    }
    for (size_t i = 0; i < hlen; i++)
        if (!host_char(host[i], br))
            return ot_err_set(err, "endpoint \"%s\" has a bad host", s);
    const char *p = colon + 1;
    int port = 0;
    if (!*p)
        return ot_err_set(err, "endpoint \"%s\" has no port", s);
    for (; *p; p++) {
        if (!is_digit(*p))
            return ot_err_set(err, "endpoint \"%s\" has a bad port", s);
        port = port * 10 + (*p - '0');
        if (port > 65535)
            return ot_err_set(err, "endpoint \"%s\": port must be between 0 and 65535", s);
    }
    char *h = ot_arena_strndup(a, host, hlen);
    char *t = ot_arena_strdup(a, s);
    if (!h || !t)
        return ot_err_set(err, "out of memory");
    out->host = h;
    out->port = port;
    out->text = t;
    return 0;
}

/* ---- scalars ------------------------------------------------------------ */

int ot_parse_bool(const char *s, bool *out, ot_err *err)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; s && i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return ot_err_set(err, "\"%s\" is not true or false", s ? s : "");
}

int ot_parse_int(const char *s, int64_t *out, ot_err *err)
{
    if (!s)
        return ot_err_set(err, "empty integer");
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (!is_digit(*p))
        return ot_err_set(err, "\"%s\" is not an integer", s);
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; is_digit(*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (lim - d) / 10)
            return ot_err_set(err, "integer \"%s\" is out of range", s);
        v = v * 10 + d;
    }
    if (*p)
        return ot_err_set(err, "\"%s\" is not an integer", s);
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- edit distance ------------------------------------------------------ */

/* Optimal string alignment distance: Levenshtein plus adjacent swaps, so
 * "tiemout" is one edit from "timeout", as a typo usually is. */
size_t ot_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    size_t stack[3 * 65];
    size_t *rows = m < 65 ? stack : malloc(3 * (m + 1) * sizeof *rows);
    if (!rows)
        return n > m ? n : m;
    size_t *pp = rows, *prev = rows + (m + 1), *cur = rows + 2 * (m + 1);
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    size_t d = prev[m];
    if (rows != stack)
        free(rows);
    return d;
}
