/* Unit tests for agent/codec: base64 (RFC 4648 test vectors, both
 * alphabets, with and without padding, and what the decoder refuses) and
 * hex (both cases, and where a bad digit stops the decoder). */
#include <criterion/criterion.h>
#include <string.h>

#include "base/codec.h"

/* RFC 4648 section 10. */
static const struct {
    const char *raw, *b64;
} vectors[] = {
    {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static char *enc(const void *in, size_t n, int flags, char *out)
{
    size_t len = ot_base64_encode(in, n, out, flags);
    cr_assert_eq(len, ot_base64_len(n, flags), "length of %zu bytes, flags %d", n, flags);
    out[len] = '\0';
    return out;
}

Test(codec, base64_rfc4648_vectors_padded_and_not)
{
    char out[32];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const char *raw = vectors[i].raw, *want = vectors[i].b64;
        size_t n = strlen(raw);
        cr_expect_str_eq(enc(raw, n, 0, out), want);
        /* unpadded: the same without the '=' */
        size_t bare = strcspn(want, "=");
        cr_expect_eq(strlen(enc(raw, n, OT_B64_NOPAD, out)), bare);
        cr_expect_eq(strncmp(out, want, bare), 0, "%s", out);
        /* both forms decode back */
        uint8_t back[32];
        cr_expect_eq(ot_base64_decode(want, strlen(want), back), (long)n, "%s", want);
        cr_expect_eq(memcmp(back, raw, n), 0, "%s", want);
        cr_expect_eq(ot_base64_decode(want, bare, back), (long)n, "%.*s", (int)bare, want);
        cr_expect_eq(memcmp(back, raw, n), 0);
        cr_expect_geq(ot_base64_decoded_max(strlen(want)), n);
        cr_expect_geq(ot_base64_decoded_max(bare), n);
    }
}

Test(codec, base64_url_alphabet)
{
    const uint8_t raw[] = {0xfb, 0xff, 0x00, 'h', 'i'};
    char out[16];
    cr_expect_str_eq(enc(raw, sizeof raw, 0, out), "+/8AaGk=");
    cr_expect_str_eq(enc(raw, sizeof raw, OT_B64_URL, out), "-_8AaGk=");
    cr_expect_str_eq(enc(raw, sizeof raw, OT_B64_URL | OT_B64_NOPAD, out), "-_8AaGk");
    static const char *forms[] = {"+/8AaGk=", "+/8AaGk", "-_8AaGk=", "-_8AaGk", "-/8AaGk"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        uint8_t back[8];
        cr_expect_eq(ot_base64_decode(forms[i], strlen(forms[i]), back), 5, "%s", forms[i]);
        cr_expect_eq(memcmp(back, raw, 5), 0, "%s", forms[i]);
    }
}

Test(codec, base64_every_length_round_trips)
{
    uint8_t raw[70], back[70];
    char out[100];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof raw; n++)
        for (int flags = 0; flags < 4; flags++) {
            enc(raw, n, flags, out);
            cr_assert_eq(ot_base64_decode(out, strlen(out), back), (long)n, "n %zu flags %d", n,
                         flags);
            cr_assert_eq(memcmp(back, raw, n), 0, "n %zu flags %d", n, flags);
        }
}

Test(codec, base64_refuses_what_is_not_base64)
{
    uint8_t out[16];
    static const char *bad[] = {
        "A",     /* one character cannot hold a byte */
        "Zm9vY", /* nor can the fifth of a group */
        "!!!!", "ab c", "Zg=a", "Z===",
        "Zg=",   /* padding only completes a group of four */
        "Zm8==", "=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(ot_base64_decode(bad[i], strlen(bad[i]), out), -1, "%s", bad[i]);
    cr_expect_eq(ot_base64_decode("", 0, out), 0);
}

Test(codec, hex_both_ways)
{
    const uint8_t raw[] = {0x00, 0x5b, 0xa0, 0xff};
    char out[9];
    out[ot_hex_encode(raw, sizeof raw, out, false)] = '\0';
    cr_expect_str_eq(out, "005ba0ff");
    out[ot_hex_encode(raw, sizeof raw, out, true)] = '\0';
    cr_expect_str_eq(out, "005BA0FF");
    uint8_t back[4];
    cr_expect_eq(ot_hex_decode("005bA0Ff", 8, back), 4);
    cr_expect_eq(memcmp(back, raw, 4), 0);
    cr_expect_eq(ot_hex_decode("", 0, back), 0);
}

Test(codec, hex_decode_stops_at_the_bad_pair)
{
    uint8_t out[4];
    cr_expect_eq(ot_hex_decode("00x1ff", 6, out), 1);
    cr_expect_eq(ot_hex_decode("0g", 2, out), 0);
    cr_expect_eq(ot_hex_decode("abc", 3, out), 1, "an odd last digit is left alone");
    cr_expect_eq(ot_hex_digit('7'), 7);
    cr_expect_eq(ot_hex_digit('b'), 11);
    cr_expect_eq(ot_hex_digit('F'), 15);
    cr_expect_eq(ot_hex_digit('g'), -1);
    cr_expect_eq(ot_hex_digit('%'), -1);
}
