/* fuzz_otlp_json_cmp.c: the streaming OTLP JSON decoder against the DOM
 * decoder it replaces (ot_json_decode_dom), as each of the three request
 * types: both accept or both refuse, and what both accept packs to the same
 * protobuf bytes. Two differences are allowed: a key given twice in one
 * object (the DOM kept the later value at the earlier key's place, the
 * stream takes values in document order), and a NUL byte outside a string,
 * which jansson drops when it ends a number or a literal (its lexer reads
 * the NUL back as "no character saved") and the stream refuses. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_json.h"

static int allowed_difference(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size))
        return 1;
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (j) {
        json_decref(j);
        return 0;
    }
    return strstr(je.text, "duplicate") != NULL;
}

static void check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    ot_arena *a = ot_arena_new(0);
    if (!a)
        return;
    ot_err e1 = {{0}}, e2 = {{0}};
    ProtobufCMessage *m1 = ot_json_decode(desc, (const char *)data, size, a, &e1);
    ProtobufCMessage *m2 = ot_json_decode_dom(desc, (const char *)data, size, a, &e2);
    if (!m1 != !m2) {
        if (!allowed_difference(data, size)) {
            fprintf(stderr, "%s: stream %s, dom %s\n", desc->short_name,
                    m1 ? "accepts" : e1.msg, m2 ? "accepts" : e2.msg);
            abort();
        }
    } else if (m1) {
        size_t n1 = protobuf_c_message_get_packed_size(m1);
        size_t n2 = protobuf_c_message_get_packed_size(m2);
        uint8_t *w1 = malloc(n1 + 1), *w2 = malloc(n2 + 1);
        if (w1 && w2) {
            protobuf_c_message_pack(m1, w1);
            protobuf_c_message_pack(m2, w2);
            if ((n1 != n2 || memcmp(w1, w2, n1) != 0) && !allowed_difference(data, size)) {
                fprintf(stderr, "%s: the two decoders built different messages (%zu, %zu bytes)\n",
                        desc->short_name, n1, n2);
                abort();
            }
        }
        free(w1);
        free(w2);
    }
    ot_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (ot_signal s = OT_TRACES; s < OT_SIGNAL_COUNT; s++)
        check(ot_signal_request_desc(s), data, size);
    return 0;
}
