/* fuzz_segment_log.c: a persistent queue's segment file is read back from
 * disk after a crash, so its parser must survive any bytes: torn, scribbled
 * or hostile. Each input becomes the first segment of a log, which is then
 * opened and drained (next, read, ack) and closed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "export/segment_log.h"

static char root[64];

static void wipe(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/otelite-fuzz-seglog-XXXXXX");
        if (!mkdtemp(root))
            abort();
        ot_log_set_level(OT_LOG_ERROR);
    }
    char dir[128], seg[192];
    snprintf(dir, sizeof dir, "%s/q", root);
    mkdir(dir, 0700);
    wipe(dir);
    snprintf(seg, sizeof seg, "%s/0000000000000000.seg", dir);
    FILE *f = fopen(seg, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);

    ot_segment_log_opts o;
    ot_segment_log_opts_default(&o);
    o.directory = root;
    o.fsync = OT_FSYNC_NEVER;
    ot_err err;
    ot_segment_log *l = ot_segment_log_open(&o, "q", &err);
    if (!l)
        return 0;
    ot_segment_log_rec rec;
    static uint8_t buf[1 << 20];
    for (int i = 0; i < 10000 && ot_segment_log_next(l, &rec) == 1; i++) {
        if (rec.len <= sizeof buf)
            ot_segment_log_read(l, rec.id, buf, sizeof buf, &err);
        ot_segment_log_ack(l, rec.id, &err);
    }
    ot_segment_log_close(l);
    return 0;
}
