/* filegen.c: the --file target. For logs it appends an application's JSON
 * log lines (the input of the jsonlog receiver); for traces and metrics it
 * appends OTLP JSON export requests, one per line, as the file exporter
 * writes them (handy to try `count` or to feed a file-reading pipeline).
 * O_APPEND keeps lines from different workers whole. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int lg_file_worker(lg_worker *w)
{
    const lg_opts *o = w->o;
    int fd = open(o->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s: %s", o->file, strerror(errno));
        return -1;
    }
    w->st.connects++;
    uint64_t rng = o->seed * 131 + (uint64_t)w->id;
    ot_buf buf = OT_BUF_INIT;
    lg_body body = {0};
    int rc = 0;
    for (;;) {
        int64_t now = lg_now();
        int64_t d = lg_due_in(w, now);
        if (d > 0) {
            struct timespec ts = {(time_t)(d / 1000000000LL), (long)(d % 1000000000LL)};
            nanosleep(&ts, NULL);
            continue;
        }
        uint64_t seq0;
        size_t n = lg_claim(w, &seq0);
        if (!n)
            break;
        int64_t due = lg_take_due(w, now);
        int64_t wall = lg_wall_ns();
        const void *p;
        size_t len;
        if (o->sig == OT_LOGS) {
            ot_buf_reset(&buf);
            for (size_t i = 0; i < n; i++)
                lg_applog_line(&buf, o, seq0 + i, wall + (int64_t)i * 1000, lg_rand(&rng));
            p = buf.data;
            len = buf.len;
        } else {
            ot_err err = {{0}};
            if (lg_content_body(w->content, seq0, n, wall, &body, &err) < 0) {
                snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s", err.msg);
                rc = -1;
                break;
            }
            body.data[body.len++] = '\n'; /* the JSON assembly leaves room for it */
            p = body.data;
            len = body.len;
        }
        bool ok = write_all(fd, p, len) == 0;
        w->st.bytes += len;
        lg_stats_done(&w->st, ok ? 200 : 0, ok, n, lg_now() - due);
        if (!ok) {
            snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s: %s", o->file, strerror(errno));
            rc = -1;
            break;
        }
    }
    lg_body_free(&body);
    ot_buf_free(&buf);
    close(fd);
    return rc;
}
