/* line.c: the framing container runtimes put around a log line. CRI
 * (containerd, CRI-O) writes `<time> <stream> <P|F> <message>`, Docker's
 * json-file driver one JSON object per line with the message in "log".
 * Both split long messages (P lines; a "log" without its newline), which
 * the tailer joins. A file's format is told apart from its first line. */
#include <string.h>

#include "jl.h"

static bool is_stream(const char *s, size_t n)
{
    return (n == 6 && (memcmp(s, "stdout", 6) == 0 || memcmp(s, "stderr", 6) == 0));
}

int jl_cri_parse(const char *line, size_t n, jl_framed *out)
{
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1)
        return -1;
    size_t tn = (size_t)(sp1 - line);
    const char *s = sp1 + 1, *e = line + n;
    const char *sp2 = memchr(s, ' ', (size_t)(e - s));
    if (!sp2 || !is_stream(s, (size_t)(sp2 - s)))
        return -1;
    const char *f = sp2 + 1;
    const char *sp3 = memchr(f, ' ', (size_t)(e - f));
    size_t fl = sp3 ? (size_t)(sp3 - f) : (size_t)(e - f);
    /* the tag is P or F, possibly with more flags after ':' */
    if (fl < 1 || (f[0] != 'P' && f[0] != 'F') || (fl > 1 && f[1] != ':'))
        return -1;
    int64_t ts;
    if (jl_ts_rfc3339(line, tn, &ts) < 0)
        return -1;
    out->ts = ts;
    out->stream = s;
    out->stream_len = 6;
    out->partial = f[0] == 'P';
    out->msg = sp3 ? sp3 + 1 : e;
    out->msg_len = (size_t)(e - out->msg);
    return 0;
}

int jl_docker_parse(const char *line, size_t n, ot_buf *tmp, ot_buf *scratch, jl_framed *out)
{
    const char *p = jl_ws(line, line + n), *e = line + n;
    if (p >= e || *p != '{')
        return -1;
    p++;
    tmp->len = 0;
    bool have_log = false;
    size_t log_len = 0;
    memset(out, 0, sizeof *out);
    /* log is unescaped into tmp; stream and time need no unescaping in
     * practice but may have it, so they go into tmp after log */
    size_t stream_at = 0, stream_n = 0;
    int rc = -1;
    for (;;) {
        p = jl_ws(p, e);
        const char *k, *v;
        size_t kn, vn;
        if (jl_str(&p, e, scratch, &k, &kn) < 0)
            goto out;
        char key[8] = {0};
        if (kn < sizeof key)
            memcpy(key, k, kn);
        p = jl_ws(p, e);
        if (p >= e || *p != ':')
            goto out;
        p = jl_ws(p + 1, e);
        if (p < e && *p == '"') {
            if (jl_str(&p, e, scratch, &v, &vn) < 0)
                goto out;
            if (strcmp(key, "log") == 0 && !have_log) {
                tmp->len = 0;
                if (ot_buf_append(tmp, v, vn) < 0)
                    goto out;
                log_len = vn;
                have_log = true;
            } else if (strcmp(key, "stream") == 0 && is_stream(v, vn)) {
                stream_at = 1 + (memcmp(v, "stderr", 6) == 0);
                stream_n = 6;
            } else if (strcmp(key, "time") == 0) {
                int64_t ts;
                if (jl_ts_rfc3339(v, vn, &ts) == 0)
                    out->ts = ts;
            }
        } else {
            ot_buf junk = OT_BUF_INIT;
            int r = jl_value(&p, e, &junk, scratch, 1);
            ot_buf_free(&junk);
            if (r < 0)
                goto out;
        }
        p = jl_ws(p, e);
        if (p < e && *p == ',') {
            p++;
            continue;
        }
        if (p < e && *p == '}') {
            p++;
            break;
        }
        goto out;
    }
    if (!have_log || jl_ws(p, e) != e)
        goto out;
    if (log_len && tmp->data[log_len - 1] == '\n') {
        log_len--;
        if (log_len && tmp->data[log_len - 1] == '\r')
            log_len--;
    } else
        out->partial = true;
    out->msg = tmp->data ? tmp->data : "";
    out->msg_len = log_len;
    if (stream_n) {
        out->stream = stream_at == 2 ? "stderr" : "stdout";
        out->stream_len = 6;
    }
    rc = 0;
out:
    return rc;
}

int jl_detect(const char *line, size_t n)
{
    const char *p = jl_ws(line, line + n);
    if (p < line + n && *p == '{') {
        /* Docker's driver writes "log" first */
        const char *q = jl_ws(p + 1, line + n);
        if ((size_t)(line + n - q) >= 6 && memcmp(q, "\"log\"", 5) == 0)
            return JL_FMT_DOCKER;
        return JL_FMT_JSON;
    }
    jl_framed f;
    if (jl_cri_parse(line, n, &f) == 0)
        return JL_FMT_CRI;
    return JL_FMT_TEXT;
}
