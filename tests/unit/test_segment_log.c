/* Unit tests for the persistent queue's segment log: records survive
 * reopening and kill -9, acks persist, damaged records are skipped while the
 * rest survive, the quota refuses or drops the oldest, and fully acked
 * segments are deleted. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export/segment_log.h"

static char tmp[64];

static void mk_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/otelite-seglog-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void rm_tmp(void)
{
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(segment_log, .init = mk_tmp, .fini = rm_tmp);

static ot_segment_log_opts opts(void)
{
    ot_segment_log_opts o;
    ot_segment_log_opts_default(&o);
    o.directory = tmp;
    o.fsync = OT_FSYNC_NEVER;
    return o;
}

static ot_segment_log *open_log(const ot_segment_log_opts *o)
{
    ot_err e = {{0}};
    ot_segment_log *l = ot_segment_log_open(o, "otlp/test", &e);
    cr_assert_not_null(l, "open: %s", e.msg);
    return l;
}

/* Payload i: 'a'+i repeated 100+i times. */
static size_t payload(int i, char *buf)
{
    size_t n = 100 + (size_t)i;
    memset(buf, 'a' + i % 26, n);
    return n;
}

static uint64_t append(ot_segment_log *l, int i)
{
    char buf[4096];
    size_t n = payload(i, buf);
    uint64_t id = 0;
    ot_err e = {{0}};
    ot_segment_log_rc rc = ot_segment_log_append(l, OT_LOGS, (size_t)i + 1, buf, n, &id, &e);
    cr_assert_eq(rc, OT_SEGLOG_OK, "append %d: %s", i, e.msg);
    return id;
}

/* Takes the next record and checks it is payload i. */
static uint64_t expect_next(ot_segment_log *l, int i)
{
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 1, "record %d missing", i);
    char want[4096], got[4096];
    size_t n = payload(i, want);
    cr_assert_eq(r.len, n, "record %d: len %zu", i, r.len);
    cr_assert_eq(r.items, (size_t)i + 1);
    cr_assert_eq(r.signal, OT_LOGS);
    ot_err e = {{0}};
    cr_assert_eq(ot_segment_log_read(l, r.id, got, sizeof got, &e), 0, "read: %s", e.msg);
    cr_assert_eq(memcmp(got, want, n), 0);
    return r.id;
}

static size_t count_segs(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/otlp_test", tmp);
    DIR *d = opendir(p);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

/* The one segment file with data (the test logs keep to one). */
static void seg_path(char *out, size_t cap)
{
    char p[128];
    snprintf(p, sizeof p, "%s/otlp_test", tmp);
    DIR *d = opendir(p);
    cr_assert_not_null(d);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".seg"))
            continue;
        char full[300];
        snprintf(full, sizeof full, "%s/%s", p, de->d_name);
        struct stat st;
        if (stat(full, &st) == 0 && st.st_size > 0)
            snprintf(out, cap, "%s", full);
    }
    closedir(d);
    cr_assert(out[0], "no segment with data");
}

static ot_segment_log_stats stats(ot_segment_log *l)
{
    ot_segment_log_stats st;
    ot_segment_log_stats_get(l, &st);
    return st;
}

Test(segment_log, append_read_ack_across_reopen)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = append(l, i);
    for (int i = 1; i < 5; i++)
        cr_assert_gt(ids[i], ids[i - 1]);
    cr_assert_eq(expect_next(l, 0), ids[0]);
    cr_assert_eq(expect_next(l, 1), ids[1]);
    cr_assert_eq(ot_segment_log_ack(l, ids[0], NULL), 0);
    cr_assert_eq(ot_segment_log_ack(l, ids[1], NULL), 0);
    cr_assert_eq(ot_segment_log_ack(l, 999999, NULL), 0); /* unknown: ignored */
    /* Record 2 was taken but not acked: it must come back after reopen. */
    expect_next(l, 2);
    cr_assert_eq(stats(l).live, 3);
    ot_segment_log_close(l);

    l = open_log(&o);
    cr_assert_eq(stats(l).live, 3);
    cr_assert_eq(stats(l).pending, 3);
    cr_assert_eq(stats(l).corrupt_records, 0);
    uint64_t i2 = expect_next(l, 2);
    cr_assert_eq(i2, ids[2]);
    expect_next(l, 3);
    /* New appends come after what the last run left. */
    uint64_t id5 = append(l, 5);
    cr_assert_gt(id5, ids[4]);
    expect_next(l, 4);
    expect_next(l, 5);
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 0);
    for (int i = 2; i < 5; i++)
        ot_segment_log_ack(l, ids[i], NULL);
    ot_segment_log_ack(l, id5, NULL);
    cr_assert_eq(stats(l).live, 0);
    ot_segment_log_close(l);

    l = open_log(&o);
    cr_assert_eq(stats(l).live, 0);
    cr_assert_eq(ot_segment_log_next(l, &r), 0);
    ot_segment_log_close(l);
}

Test(segment_log, one_process_at_a_time)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    ot_err e = {{0}};
    cr_assert_null(ot_segment_log_open(&o, "otlp/test", &e));
    cr_assert(strstr(e.msg, "in use"), "%s", e.msg);
    ot_segment_log_close(l);
    l = open_log(&o);
    ot_segment_log_close(l);
}

Test(segment_log, bad_directory_is_an_error)
{
    ot_segment_log_opts o = opts();
    o.directory = "/nonexistent/otelite";
    ot_err e = {{0}};
    cr_assert_null(ot_segment_log_open(&o, "x", &e));
    cr_assert(strstr(e.msg, "/nonexistent/otelite"), "%s", e.msg);
}

Test(segment_log, torn_tail_is_skipped_and_cut)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    for (int i = 0; i < 3; i++)
        append(l, i);
    ot_segment_log_close(l);

    char p[300];
    seg_path(p, sizeof p);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(truncate(p, st.st_size - 40), 0); /* mid-way into record 2 */

    l = open_log(&o);
    cr_assert_eq(stats(l).corrupt_records, 1);
    cr_assert_eq(stats(l).live, 2);
    expect_next(l, 0);
    expect_next(l, 1);
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 0);
    ot_segment_log_close(l);

    /* The torn bytes were cut: the next open finds nothing wrong. */
    l = open_log(&o);
    cr_assert_eq(stats(l).corrupt_records, 0);
    cr_assert_eq(stats(l).live, 2);
    ot_segment_log_close(l);
}

static void scribble(const char *path, off_t off, const char *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

/* Record i starts at 28*i + sum of earlier payloads (100, 101, ...). */
static off_t rec_off(int i)
{
    off_t off = 0;
    for (int k = 0; k < i; k++)
        off += 28 + 100 + k;
    return off;
}

Test(segment_log, scribbled_payload_is_skipped_neighbours_survive)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    for (int i = 0; i < 4; i++)
        append(l, i);
    ot_segment_log_close(l);
    char p[300];
    seg_path(p, sizeof p);
    scribble(p, rec_off(1) + 28 + 50, "XYZ", 3);

    l = open_log(&o);
    cr_assert_eq(stats(l).corrupt_records, 1);
    cr_assert_eq(stats(l).live, 3);
    expect_next(l, 0);
    expect_next(l, 2);
    expect_next(l, 3);
    ot_segment_log_close(l);
}

Test(segment_log, scribbled_header_resyncs_on_next_record)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    for (int i = 0; i < 4; i++)
        append(l, i);
    ot_segment_log_close(l);
    char p[300];
    seg_path(p, sizeof p);
    /* A huge length in record 1 and a broken magic in record 2. */
    scribble(p, rec_off(1) + 12, "\xff\xff\xff\x7f", 4);
    scribble(p, rec_off(2), "\0\0", 2);

    l = open_log(&o);
    cr_assert_eq(stats(l).corrupt_records, 1); /* one damaged region */
    cr_assert_eq(stats(l).live, 2);
    expect_next(l, 0);
    expect_next(l, 3);
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 0);
    ot_segment_log_close(l);
}

Test(segment_log, corruption_found_at_read_time)
{
    ot_segment_log_opts o = opts();
    ot_segment_log *l = open_log(&o);
    append(l, 0);
    char p[300];
    seg_path(p, sizeof p);
    scribble(p, 28 + 10, "!", 1);
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 1);
    char buf[4096];
    ot_err e = {{0}};
    cr_assert_eq(ot_segment_log_read(l, r.id, buf, sizeof buf, &e), -1);
    cr_assert(strstr(e.msg, "corrupt"), "%s", e.msg);
    ot_segment_log_close(l);
}

Test(segment_log, fully_acked_segments_are_deleted_oldest_first)
{
    ot_segment_log_opts o = opts();
    o.segment_size = 400; /* three records (128..137 bytes) per segment */
    ot_segment_log *l = open_log(&o);
    uint64_t ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = append(l, i);
    cr_assert_eq(count_segs(), 4);
    /* Segment 2 fully acked but segment 1 not: nothing can go yet. */
    for (int i = 3; i < 6; i++)
        ot_segment_log_ack(l, ids[i], NULL);
    ot_segment_log_ack(l, ids[1], NULL);
    ot_segment_log_ack(l, ids[2], NULL);
    cr_assert_eq(count_segs(), 4);
    /* Segments: [0 1 2] [3 4 5] [6 7] [8 9 + acks]. */
    ot_segment_log_ack(l, ids[0], NULL);
    cr_assert_eq(count_segs(), 2);
    for (int i = 6; i < 9; i++)
        ot_segment_log_ack(l, ids[i], NULL);
    /* The head filled up with ack records and moved on: [8 9 + acks] [acks]. */
    cr_assert_eq(count_segs(), 2);
    cr_assert_eq(stats(l).live, 1);
    ot_segment_log_ack(l, ids[9], NULL);
    cr_assert_eq(count_segs(), 1);
    cr_assert_eq(stats(l).segments, 1);
    ids[9] = append(l, 9);
    ot_segment_log_close(l);

    /* Acks left in the head for deleted segments are harmless. */
    l = open_log(&o);
    cr_assert_eq(stats(l).live, 1);
    cr_assert_eq(stats(l).corrupt_records, 0);
    expect_next(l, 9);
    ot_segment_log_close(l);
}

Test(segment_log, quota_refuse_then_room_after_acks)
{
    ot_segment_log_opts o = opts();
    o.storage_limit = 1000;
    o.segment_size = 300;
    ot_segment_log *l = open_log(&o);
    char buf[200];
    memset(buf, 'q', sizeof buf);
    uint64_t ids[16];
    int n = 0;
    ot_err e = {{0}};
    ot_segment_log_rc rc;
    while ((rc = ot_segment_log_append(l, OT_TRACES, 1, buf, 100, &ids[n], &e)) == OT_SEGLOG_OK)
        n++;
    cr_assert_eq(rc, OT_SEGLOG_FULL);
    cr_assert(strstr(e.msg, "full"), "%s", e.msg);
    cr_assert_eq(n, 7); /* 7 × 128 bytes fit in 1000 */
    cr_assert_leq(stats(l).bytes, 1000);
    cr_assert_eq(stats(l).dropped_records, 0);
    for (int i = 0; i < n; i++) {
        ot_segment_log_rec r;
        cr_assert_eq(ot_segment_log_next(l, &r), 1);
        cr_assert_eq(r.id, ids[i]);
        ot_segment_log_ack(l, r.id, NULL);
    }
    cr_assert_eq(ot_segment_log_append(l, OT_TRACES, 1, buf, 100, &ids[0], &e), OT_SEGLOG_OK);
    cr_assert_eq(ot_segment_log_append(l, OT_TRACES, 1, buf, 2000, &ids[0], &e),
                 OT_SEGLOG_TOO_BIG);
    ot_segment_log_close(l);
}

Test(segment_log, quota_drop_oldest_counts_and_keeps_newest)
{
    ot_segment_log_opts o = opts();
    o.storage_limit = 1000;
    o.segment_size = 300;
    o.on_full = OT_ON_FULL_DROP_OLDEST;
    ot_segment_log *l = open_log(&o);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = append(l, i % 3); /* 128..130 bytes each */
    ot_segment_log_stats st = stats(l);
    cr_assert_leq(st.bytes, 1000);
    cr_assert_gt(st.dropped_records, 0);
    cr_assert_eq(st.live + st.dropped_records, 20);
    /* What is left is the newest, in order. */
    ot_segment_log_rec r;
    uint64_t first = ids[20 - st.live];
    for (size_t i = 0; i < st.live; i++) {
        cr_assert_eq(ot_segment_log_next(l, &r), 1);
        cr_assert_eq(r.id, first + i);
    }
    cr_assert_eq(ot_segment_log_next(l, &r), 0);
    cr_assert_eq(ids[19], first + st.live - 1);
    ot_segment_log_close(l);
}

Test(segment_log, dropped_record_in_flight_reads_as_gone)
{
    ot_segment_log_opts o = opts();
    o.storage_limit = 700;
    o.segment_size = 300;
    o.on_full = OT_ON_FULL_DROP_OLDEST;
    ot_segment_log *l = open_log(&o);
    uint64_t id0 = append(l, 0);
    ot_segment_log_rec r;
    cr_assert_eq(ot_segment_log_next(l, &r), 1);
    cr_assert_eq(r.id, id0);
    for (int i = 1; i < 10; i++)
        append(l, 0);
    char buf[4096];
    ot_err e = {{0}};
    cr_assert_eq(ot_segment_log_read(l, id0, buf, sizeof buf, &e), 1);
    cr_assert_eq(ot_segment_log_ack(l, id0, NULL), 0); /* harmless */
    ot_segment_log_close(l);
}

/* kill -9 right after appends (and some acks) returned: all of it is
 * there on the next open. */
Test(segment_log, survives_kill_9)
{
    ot_segment_log_opts o = opts();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        ot_err e;
        ot_segment_log *l = ot_segment_log_open(&o, "otlp/test", &e);
        if (!l)
            _exit(3);
        char buf[4096];
        for (int i = 0; i < 50; i++) {
            uint64_t id;
            size_t n = payload(i, buf);
            if (ot_segment_log_append(l, OT_LOGS, (size_t)i + 1, buf, n, &id, &e) != OT_SEGLOG_OK)
                _exit(4);
            if (i < 10) {
                ot_segment_log_rec r;
                if (ot_segment_log_next(l, &r) != 1 || ot_segment_log_ack(l, r.id, &e) < 0)
                    _exit(5);
            }
        }
        raise(SIGKILL);
        _exit(6);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

    ot_segment_log *l = open_log(&o); /* the dead child's flock is gone */
    cr_assert_eq(stats(l).live, 40);
    cr_assert_eq(stats(l).corrupt_records, 0);
    for (int i = 10; i < 50; i++)
        expect_next(l, i);
    ot_segment_log_close(l);
}

Test(segment_log, fsync_policies_work)
{
    for (int p = OT_FSYNC_BATCH; p <= OT_FSYNC_NEVER; p++) {
        ot_segment_log_opts o = opts();
        o.fsync = p;
        o.fsync_interval = 1000000;
        ot_segment_log *l = open_log(&o);
        append(l, p);
        cr_assert_eq(ot_segment_log_sync(l, NULL), 0);
        ot_segment_log_close(l);
        l = open_log(&o);
        uint64_t id = expect_next(l, p);
        ot_segment_log_ack(l, id, NULL);
        ot_segment_log_close(l);
    }
}

/* A quota smaller than a segment: once all is acked the head itself must
 * make way, or the log would stay full for ever. */
Test(segment_log, tiny_quota_recovers_after_acks)
{
    ot_segment_log_opts o = opts();
    o.storage_limit = 1000;
    ot_segment_log *l = open_log(&o);
    char buf[100] = {0};
    uint64_t id;
    int n = 0;
    while (ot_segment_log_append(l, OT_METRICS, 1, buf, sizeof buf, &id, NULL) == OT_SEGLOG_OK)
        n++;
    cr_assert_eq(n, 7);
    ot_segment_log_rec r;
    while (ot_segment_log_next(l, &r))
        ot_segment_log_ack(l, r.id, NULL);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(ot_segment_log_append(l, OT_METRICS, 1, buf, sizeof buf, &id, NULL),
                     OT_SEGLOG_OK, "append %d after acks", i);
    cr_assert_leq(stats(l).bytes, 1000);
    ot_segment_log_close(l);
}
