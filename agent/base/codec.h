/* codec.h: base64 and hex, the two ways bytes travel as text here: OTLP
 * JSON (hex ids, base64 for other bytes), gRPC -bin headers, OTTL's hex
 * forms of ids and byte literals, hashed attribute values and percent
 * escapes. One implementation, so every place writes and accepts the same.
 * Nothing here allocates or writes a terminating NUL; the caller sizes out. */
#ifndef OT_CODEC_H
#define OT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for ot_base64_encode: the URL-safe alphabet ("-_" for "+/"), and
 * no '=' padding. */
enum { OT_B64_URL = 1, OT_B64_NOPAD = 2 };

/* Characters ot_base64_encode writes for n bytes. */
size_t ot_base64_len(size_t n, int flags);
/* Writes ot_base64_len(n, flags) characters to out; returns that count. */
size_t ot_base64_encode(const uint8_t *in, size_t n, char *out, int flags);
/* Bytes out must hold to decode len characters: at least what they give. */
size_t ot_base64_decoded_max(size_t len);
/* Decodes either alphabet (the two may even be mixed), padded or not: '='
 * is accepted only as the one or two characters that complete the last
 * group of four. Returns the bytes written, or -1 when in is not base64. */
long ot_base64_decode(const char *in, size_t len, uint8_t *out);

/* 0-15 for a hex digit of either case, else -1. Inline: parsers call it
 * per byte. */
static inline int ot_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}
/* Writes 2n hex digits (lower case, or upper) to out; returns 2n. */
size_t ot_hex_encode(const uint8_t *in, size_t n, char *out, bool upper);
/* Decodes the len / 2 pairs of hex digits of in (either case) to out.
 * Returns how many bytes it wrote: len / 2, or fewer when a pair holds a
 * non-hex character (the pair at the returned index). An odd last
 * character is not looked at. */
size_t ot_hex_decode(const char *in, size_t len, uint8_t *out);

#endif
