/* test_otlp_json_cmp.c: the streaming OTLP JSON decoder builds the same
 * messages as the DOM decoder it replaces, on the samples every other test
 * uses (encoded to JSON, also re-spaced and in snake_case) and on the
 * fuzz corpora of both JSON targets. Goes with the DOM decoder. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_json.h"
#include "otlp_samples.h"

static size_t compared, accepted;

static void same(const ProtobufCMessageDescriptor *desc, const char *js, size_t len, const char *what)
{
    ot_arena *a = ot_arena_new(0);
    ot_err e1 = {{0}}, e2 = {{0}};
    ProtobufCMessage *m1 = ot_json_decode(desc, js, len, a, &e1);
    ProtobufCMessage *m2 = ot_json_decode_dom(desc, js, len, a, &e2);
    cr_assert_eq(!m1, !m2, "%s as %s: stream %s, dom %s", what, desc->short_name,
                 m1 ? "accepts" : e1.msg, m2 ? "accepts" : e2.msg);
    compared++;
    if (m1) {
        accepted++;
        size_t n1 = protobuf_c_message_get_packed_size(m1), n2 = protobuf_c_message_get_packed_size(m2);
        cr_assert_eq(n1, n2, "%s: packed sizes %zu and %zu", what, n1, n2);
        uint8_t *w1 = ot_arena_alloc(a, n1 + 1), *w2 = ot_arena_alloc(a, n2 + 1);
        protobuf_c_message_pack(m1, w1);
        protobuf_c_message_pack(m2, w2);
        cr_assert(memcmp(w1, w2, n1) == 0, "%s: different messages", what);
    }
    ot_arena_free(a);
}

/* snake_case keys and a space after every ':' and ',' outside strings */
static char *variant(const char *js, size_t len, size_t *out_len)
{
    char *o = malloc(len * 3 + 1);
    size_t k = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = js[i];
        if (in_str) {
            o[k++] = c;
            if (c == '\\')
                o[k++] = js[++i];
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            /* a key: the next non-string char after the closing quote is ':' */
            size_t j = i + 1;
            while (j < len && js[j] != '"')
                j++;
            if (j + 1 < len && js[j + 1] == ':') {
                o[k++] = '"';
                for (size_t q = i + 1; q < j; q++) {
                    if (js[q] >= 'A' && js[q] <= 'Z') {
                        o[k++] = '_';
                        o[k++] = (char)(js[q] - 'A' + 'a');
                    } else {
                        o[k++] = js[q];
                    }
                }
                o[k++] = '"';
                i = j;
                continue;
            }
            in_str = 1;
        }
        o[k++] = c;
        if (c == ':' || c == ',')
            o[k++] = ' ';
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

Test(otlp_json_cmp, samples)
{
    for (ot_signal s = OT_TRACES; s < OT_SIGNAL_COUNT; s++) {
        for (size_t n = 0; n <= 64; n += 16) {
            ot_arena *a = ot_arena_new(0);
            ProtobufCMessage *m = ot_sample_request(a, s, n, 6);
            ot_buf b = OT_BUF_INIT;
            ot_err err = {{0}};
            cr_assert_eq(ot_json_encode(m, &b, &err), 0, "%s", err.msg);
            same(ot_signal_request_desc(s), b.data, b.len, "sample");
            size_t vl;
            char *v = variant(b.data, b.len, &vl);
            same(ot_signal_request_desc(s), v, vl, "snake_case sample");
            free(v);
            ot_buf_free(&b);
            ot_arena_free(a);
        }
    }
    ot_arena *a = ot_arena_new(0);
    ot_buf b = OT_BUF_INIT;
    ot_err err = {{0}};
    cr_assert_eq(ot_json_encode(&ot_sample_traces_rich(a)->base, &b, &err), 0);
    same(ot_signal_request_desc(OT_TRACES), b.data, b.len, "rich traces");
    ot_buf_free(&b);
    ot_arena_free(a);
}

static void corpus_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        for (ot_signal s = OT_TRACES; s < OT_SIGNAL_COUNT; s++)
            same(ot_signal_request_desc(s), buf, n, path);
        free(buf);
    }
    closedir(dp);
}

Test(otlp_json_cmp, fuzz_corpora)
{
    compared = accepted = 0;
    corpus_dir("tests/fuzz/corpus/fuzz_otlp_json");
    corpus_dir("tests/fuzz/corpus/fuzz_otlp_json_cmp");
    cr_assert_gt(accepted, 3, "the seed corpus decodes");
    cr_log_info("compared %zu decodes, %zu accepted by both", compared, accepted);
}
