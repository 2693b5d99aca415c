/* test_blobfile.c: whole-file state (base/blobfile.h) as the jsonlog
 * checkpoints use it: what is saved loads back, a missing file is not an
 * error, a damaged one is reported and not loaded, and a save replaces the
 * old contents without leaving its temporary file. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blobfile.h"

static char dir[64];

static void mk(void)
{
    snprintf(dir, sizeof dir, "/tmp/otelite-blob-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(blobfile, .init = mk, .fini = rm);

Test(blobfile, save_load_replace)
{
    ot_err err = {{0}};
    ot_buf b = OT_BUF_INIT;
    cr_assert_eq(ot_blob_load(dir, "x", &b, &err), 0);
    cr_assert_eq(ot_blob_save(dir, "x", "hello", 5, false, &err), 0, "%s", err.msg);
    cr_assert_eq(ot_blob_save(dir, "x", "second", 6, true, &err), 0, "%s", err.msg);
    cr_assert_eq(ot_blob_load(dir, "x", &b, &err), 1, "%s", err.msg);
    cr_assert_eq(b.len, 6);
    cr_assert_eq(memcmp(b.data, "second", 6), 0);
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += de->d_name[0] != '.' || strstr(de->d_name, ".tmp") != NULL;
    closedir(d);
    cr_assert_eq(files, 1, "only the state file is left");
    ot_buf_free(&b);
}

Test(blobfile, damage_is_reported)
{
    ot_err err = {{0}};
    ot_buf b = OT_BUF_INIT;
    cr_assert_eq(ot_blob_save(dir, "x", "0123456789", 10, false, &err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/x", dir);
    FILE *f = fopen(path, "r+");
    fseek(f, 3, SEEK_SET);
    fputc('X', f);
    fclose(f);
    cr_assert_eq(ot_blob_load(dir, "x", &b, &err), -1);
    cr_assert(strstr(err.msg, "checksum"), "%s", err.msg);
    cr_assert_eq(b.len, 0);
    f = fopen(path, "w");
    fputs("abc", f);
    fclose(f);
    cr_assert_eq(ot_blob_load(dir, "x", &b, &err), -1);
    ot_buf_free(&b);
}
