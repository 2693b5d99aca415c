/* codec.c: base64 and hex (see codec.h). */
#include "base/codec.h"

static const char b64_std[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ot_base64_len(size_t n, int flags)
{
    if (!(flags & OT_B64_NOPAD))
        return (n + 2) / 3 * 4;
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t ot_base64_encode(const uint8_t *in, size_t n, char *out, int flags)
{
    const char *t = flags & OT_B64_URL ? b64_url : b64_std;
    char *o = out;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t w = (uint32_t)in[i] << 16 | (left > 1 ? (uint32_t)in[i + 1] << 8 : 0) |
                     (left > 2 ? in[i + 2] : 0);
        /* 1 byte gives 2 characters, 2 give 3, 3 give 4 */
        size_t chars = left > 2 ? 4 : left + 1;
        for (size_t k = 0; k < chars; k++)
            *o++ = t[(w >> (18 - 6 * k)) & 63];
        if (!(flags & OT_B64_NOPAD))
            for (size_t k = chars; k < 4; k++)
                *o++ = '=';
    }
    return (size_t)(o - out);
}

size_t ot_base64_decoded_max(size_t len)
{
    return (len + 3) / 4 * 3;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long ot_base64_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4 == 0 && len >= 4) {
        if (in[len - 1] == '=')
            len--;
        if (in[len - 1] == '=')
            len--;
    }
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

size_t ot_hex_encode(const uint8_t *in, size_t n, char *out, bool upper)
{
    const char *t = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = t[in[i] >> 4];
        out[2 * i + 1] = t[in[i] & 15];
    }
    return 2 * n;
}

size_t ot_hex_decode(const char *in, size_t len, uint8_t *out)
{
    size_t i = 0;
    for (; i < len / 2; i++) {
        int hi = ot_hex_digit((unsigned char)in[2 * i]);
        int lo = ot_hex_digit((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            break;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return i;
}
