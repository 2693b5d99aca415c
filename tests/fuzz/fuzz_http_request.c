/* fuzz_http_request.c: the HTTP/1.1 request head and chunked framing of
 * agent/net/http1_parse.c, as the server feeds them: bytes that arrive in
 * pieces, a head parsed in place, then a body de-chunked a piece at a
 * time. Any input must end in a head or a refusal with a status the
 * server can send, never a crash or a read past what was given; a parsed
 * head must hold what the parser promises (a path that starts with '/',
 * no CR or LF in any name or value), and chunked data must never pass the
 * body limit nor come out of anywhere but the input. Byte 0 sets the size
 * of the pieces. */
#include <stdlib.h>
#include <string.h>

#include "net/http1_parse.h"

static void check_status(long rc)
{
    if (rc != -400 && rc != -413 && rc != -417 && rc != -431 && rc != -501 && rc != -505)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    /* a copy the parser may write into, as the server's buffer */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    ot_h1_head h;
    size_t scanned = 0, len = 0;
    long rc = 0;
    while (len < size) {
        len = len + piece < size ? len + piece : size;
        if ((rc = ot_h1_parse_head(buf, len, &scanned, &h)) != 0)
            break;
    }
    if (rc < 0)
        check_status(rc);
    if (rc <= 0) {
        free(buf);
        return 0;
    }
    if (!h.path || h.path[0] != '/' || !h.method || h.n > OT_H1_MAX_HEADERS)
        abort();
    for (unsigned i = 0; i < h.n; i++)
        if (strpbrk(h.h[i].name, "\r\n: \t") || strpbrk(h.h[i].value, "\r\n") ||
            !*h.h[i].name)
            abort();
    if (h.chunked && h.content_length >= 0)
        abort();
    if (!h.chunked) {
        free(buf);
        return 0;
    }
    const uint64_t max = 4096;
    ot_h1_chunk c;
    ot_h1_chunk_init(&c, max);
    const uint8_t *p = (const uint8_t *)buf + rc;
    size_t n = size - (size_t)rc, at = 0;
    uint64_t total = 0;
    while (at < n && !ot_h1_chunk_done(&c)) {
        size_t take = n - at < piece ? n - at : piece;
        size_t used = 0;
        while (used < take && !ot_h1_chunk_done(&c)) {
            size_t off, dl;
            long k = ot_h1_chunk_step(&c, p + at + used, take - used, &off, &dl);
            if (k < 0) {
                check_status(k);
                free(buf);
                return 0;
            }
            if ((size_t)k > take - used || off + dl > (size_t)k || (k == 0 && take > used))
                abort();
            total += dl;
            if (total > max)
                abort();
            used += (size_t)k;
        }
        at += used;
    }
    free(buf);
    return 0;
}
