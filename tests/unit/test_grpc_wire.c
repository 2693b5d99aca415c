/* Unit tests for agent/grpc_wire: the values both gRPC ends share. The
 * header values are also pinned where each end uses them (test_otlp_exp.c,
 * test_otlp_recv.c); here: paths both ways, the prefix both ways, and that
 * grpc-message decodes back to what was encoded. */
#include <criterion/criterion.h>
#include <string.h>

#include "net/grpc_wire.h"

Test(grpc_wire, paths_name_a_signal_and_back)
{
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        const char *p = ot_grpc_path((ot_signal)s);
        cr_expect_eq(ot_grpc_path_signal(p, strlen(p)), s, "%s", p);
        /* nor does a path cut short */
        cr_expect_eq(ot_grpc_path_signal(p, strlen(p) - 1), -1);
    }
    cr_expect_str_eq(ot_grpc_path(OT_SIGNAL_COUNT), "/");
    cr_expect_eq(ot_grpc_path_signal("/", 1), -1);
    cr_expect_eq(ot_grpc_path_signal("", 0), -1);
}

Test(grpc_wire, prefix_is_flag_and_big_endian_length)
{
    uint8_t p[5];
    ot_grpc_prefix(p, true, 0x01020304u);
    cr_expect_eq(memcmp(p, "\x01\x01\x02\x03\x04", 5), 0);
    cr_expect_eq(ot_grpc_prefix_len(p), 0x01020304u);
    ot_grpc_prefix(p, false, 0xffffffffu);
    cr_expect_eq(p[0], 0);
    cr_expect_eq(ot_grpc_prefix_len(p), 0xffffffffu);
}

Test(grpc_wire, grpc_message_decodes_to_what_was_encoded)
{
    const char *msgs[] = {"", "plain", "50% off\n\xc3\xa9", "%%%", "tab\there", "\x7f\x01"};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        ot_buf b = OT_BUF_INIT;
        cr_assert_eq(ot_grpc_percent_encode(msgs[i], &b), 0);
        char out[64];
        ot_grpc_percent_decode(b.data ? b.data : "", b.len, out, sizeof out);
        cr_expect_str_eq(out, msgs[i]);
        ot_buf_free(&b);
    }
    char out[8];
    ot_grpc_percent_decode("%4a%4A%zz%4", 11, out, sizeof out);
    cr_expect_str_eq(out, "JJ%zz%4");
}

Test(grpc_wire, timeout_written_is_read_back_no_shorter)
{
    const int64_t ns[] = {1, 999, 1000000, 1500000001, 3600LL * 1000000000LL, INT64_MAX / 4};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char t[16];
        int64_t back;
        ot_grpc_timeout_format(ns[i], t);
        cr_assert_eq(ot_grpc_timeout_parse(t, strlen(t), &back), 0, "%s", t);
        cr_expect_geq(back, ns[i], "%s", t);
    }
}
