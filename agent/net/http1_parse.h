/* http1_parse.h: the HTTP/1.1 request head and chunked framing, parsed
 * strictly and without allocating, apart from the server that reads the
 * bytes (http_server.c) so that a fuzzer can drive it alone
 * (tests/fuzz/fuzz_http_request.c).
 *
 * The head is parsed in place: names and values are NUL-terminated inside
 * the caller's buffer and the head keeps pointers into it. What is
 * ambiguous between a client and a proxy in front of us (Content-Length
 * with Transfer-Encoding, differing Content-Lengths, folded lines, space
 * before a colon) is refused rather than guessed. */
#ifndef OT_HTTP1_PARSE_H
#define OT_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OT_H1_MAX_HEADERS 64
#define OT_H1_MAX_HEAD (16u << 10)

typedef struct ot_h1_hdr {
    const char *name, *value;
} ot_h1_hdr;

typedef struct ot_h1_head {
    const char *method;
    char *path;  /* percent-decoded, without the query */
    char *query; /* raw, after '?'; NULL without one */
    int minor;   /* HTTP/1.minor */
    unsigned n;
    ot_h1_hdr h[OT_H1_MAX_HEADERS];
    int64_t content_length; /* -1: none */
    bool chunked, keep_alive, expect_continue;
} ot_h1_head;

/* Looks for the end of a head in buf[0..len) (scanning from *scanned on,
 * which it advances) and parses it. Returns the head's length through the
 * blank line, 0 when more bytes are needed, or minus the status to answer:
 * -400 malformed, -431 too many or too large headers (also when len passes
 * OT_H1_MAX_HEAD without an end), -501 a transfer coding other than chunked,
 * -505 not HTTP/1.x, -417 an Expect other than 100-continue. */
long ot_h1_parse_head(char *buf, size_t len, size_t *scanned, ot_h1_head *h);

/* Case-insensitive lookup; NULL when absent. */
const char *ot_h1_header(const ot_h1_head *h, const char *name);

/* Decodes "%XX" in place; false on a malformed escape. '+' is turned into
 * a space when plus is set (query arguments). */
bool ot_h1_unescape(char *s, bool plus);

/* Chunked framing, one byte of state at a time so that a size line or a
 * trailer split across reads needs no buffer of its own. */
typedef struct ot_h1_chunk {
    int st;
    uint64_t left;   /* data bytes left in the current chunk */
    uint64_t total;  /* data bytes so far */
    uint64_t max;    /* a body larger than this is refused 413 */
    unsigned digits; /* of the size, leading zeros excepted */
    unsigned line;   /* bytes of the current size or trailer line */
    unsigned trailer;
    bool big;
} ot_h1_chunk;

void ot_h1_chunk_init(ot_h1_chunk *c, uint64_t max);
/* Consumes framing from p[0..n) up to and including one span of data,
 * which it reports in *off (from p) and *dlen (0: none). Returns the bytes
 * consumed, or minus the status to answer (-400, -413). Done when
 * ot_h1_chunk_done says so; bytes after that belong to the next request. */
long ot_h1_chunk_step(ot_h1_chunk *c, const uint8_t *p, size_t n, size_t *off, size_t *dlen);
bool ot_h1_chunk_done(const ot_h1_chunk *c);

#endif
