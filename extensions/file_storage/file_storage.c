/* file_storage.c: the `file_storage` extension. It owns no files itself:
 * it names a directory and the on-disk policy (fsync, quota, what to do
 * when full), and each exporter whose `sending_queue.storage` points here
 * opens its own segment log inside that directory. Through the host, an
 * exporter gets this extension's ot_segment_log_opts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline/factory.h"
#include "export/segment_log.h"

static void fs_validate(const void *cfg, const ot_node *node, const char *path, ot_diags *d)
{
    const ot_segment_log_opts *o = cfg;
    struct stat st;
    if (o->directory && *o->directory && (stat(o->directory, &st) != 0 || !S_ISDIR(st.st_mode)))
        ot_diag_add(d, OT_SEV_WARNING, ot_node_get(node, "directory"), path,
                    "directory %s does not exist yet; it is created at start", o->directory);
}

static void *fs_create(const ot_create_params *p, ot_err *err)
{
    ot_segment_log_opts *o = malloc(sizeof *o);
    if (!o) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    *o = *(const ot_segment_log_opts *)p->config;
    return o;
}

static int fs_start(void *self, ot_err *err)
{
    const ot_segment_log_opts *o = self;
    if (mkdir(o->directory, 0700) != 0 && errno != EEXIST)
        return ot_err_set(err, "mkdir %s: %s", o->directory, strerror(errno));
    return 0;
}

static void fs_destroy(void *self)
{
    free(self);
}

const ot_factory ot_file_storage_extension = {
    .type = "file_storage",
    .kind = OT_EXTENSION,
    .signals = 0,
    .help = "directory for persistent exporter queues (sending_queue.storage)",
    .keys = ot_segment_log_keys,
    .config_size = sizeof(ot_segment_log_opts),
    .validate = fs_validate,
    .create = fs_create,
    .start = fs_start,
    .destroy = fs_destroy,
};
