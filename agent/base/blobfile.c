/* blobfile.c: whole-file state saved by rename (see blobfile.h). Layout:
 * the payload, then 8 bytes: "OTB1" and the CRC32 of the payload, little
 * endian. */
#include "base/blobfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int ot_blob_save(const char *dir, const char *name, const void *data, size_t len, bool sync,
                 ot_err *err)
{
    char path[4096], tmp[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp)
        return ot_err_set(err, "path too long: %s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ot_err_set(err, "open %s: %s", tmp, strerror(errno));
    uint32_t crc = (uint32_t)crc32(0L, data, (uInt)len);
    unsigned char trailer[8] = {'O', 'T', 'B', '1', (unsigned char)crc, (unsigned char)(crc >> 8),
                                (unsigned char)(crc >> 16), (unsigned char)(crc >> 24)};
    if ((len && write_all(fd, data, len) < 0) || write_all(fd, trailer, 8) < 0 ||
        (sync && fdatasync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ot_err_set(err, "write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return ot_err_set(err, "rename %s: %s", path, strerror(e));
    }
    if (sync) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

int ot_blob_load(const char *dir, const char *name, ot_buf *out, ot_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return ot_err_set(err, "path too long: %s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return ot_err_set(err, "open %s: %s", path, strerror(errno));
    }
    size_t start = out->len;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return ot_err_set(err, "read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        if (ot_buf_append(out, chunk, (size_t)r) < 0) {
            close(fd);
            return ot_err_set(err, "out of memory reading %s", path);
        }
    }
    close(fd);
    size_t n = out->len - start;
    const unsigned char *t = (const unsigned char *)out->data + out->len - 8;
    if (n < 8 || memcmp(t, "OTB1", 4) != 0) {
        out->len = start;
        return ot_err_set(err, "%s: not a state file (no trailer)", path);
    }
    uint32_t want = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
                    (uint32_t)t[7] << 24;
    uint32_t got = (uint32_t)crc32(0L, (const unsigned char *)out->data + start, (uInt)(n - 8));
    out->len -= 8;
    if (want != got) {
        out->len = start;
        return ot_err_set(err, "%s: checksum mismatch", path);
    }
    return 1;
}
