/* buf.h: a growable byte buffer for building output (JSON, Prometheus text,
 * HTTP bodies). Owned by whoever declared it; ot_buf_free releases it. */
#ifndef OT_BUF_H
#define OT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ot_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom; /* set once an append failed; later appends are ignored */
} ot_buf;

#define OT_BUF_INIT {NULL, 0, 0, 0}

int ot_buf_reserve(ot_buf *b, size_t extra);
int ot_buf_append(ot_buf *b, const void *p, size_t n);
int ot_buf_puts(ot_buf *b, const char *s);
int ot_buf_putc(ot_buf *b, char c);
int ot_buf_printf(ot_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* JSON string literal with quotes and escapes; invalid UTF-8 becomes U+FFFD. */
int ot_buf_json_str(ot_buf *b, const char *s, size_t n);
void ot_buf_reset(ot_buf *b);
void ot_buf_free(ot_buf *b);

#endif
