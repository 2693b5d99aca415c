/* blobfile.h: small state a component keeps on disk across restarts
 * (the jsonlog receiver's checkpoints) in a directory it was given, whole
 * or not at all. A save writes a temporary file and renames it over the
 * old one, so a kill -9 at any moment leaves the previous or the new
 * contents, never a mix; a CRC32 catches a file damaged some other way. */
#ifndef OT_BLOBFILE_H
#define OT_BLOBFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* Replaces <dir>/<name> with data. sync: fdatasync the file and the
 * directory before returning (survives power loss, not just a crash). */
int ot_blob_save(const char *dir, const char *name, const void *data, size_t len, bool sync,
                 ot_err *err);
/* 1 with the contents appended to out; 0 when there is no such file; -1
 * with err when it is unreadable or its checksum does not match. */
int ot_blob_load(const char *dir, const char *name, ot_buf *out, ot_err *err);

#endif
