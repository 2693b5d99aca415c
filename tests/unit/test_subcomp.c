/* test_subcomp.c: a component's settings derived from a template node
 * (ot_node_overlay: the template is left as it was, items apply as --set
 * does) and sub-components made from a node through the factory table
 * (ot_subcomp_*: the key walker's and the factory's checks still apply). */
#include <criterion/criterion.h>
#include <string.h>

#include "base/clock.h"
#include "config/config.h"
#include "pipeline/subcomp.h"

static ot_arena *A;
static void setup(void) { A = ot_arena_new(0); }
static void teardown(void) { ot_arena_free(A); }
TestSuite(subcomp, .init = setup, .fini = teardown);

static const ot_node *parse(const char *y)
{
    const ot_node *n = ot_node_parse(A, "t.yaml", y, strlen(y), NULL);
    cr_assert(n);
    return n;
}

Test(subcomp, overlay_leaves_the_template_alone)
{
    const ot_node *base = parse("tls: { insecure: true }\nsending_queue: { num_consumers: 3 }\n");
    const char *sets[] = {"endpoint=10.0.0.1:4317", "sending_queue.enabled=false",
                          "tls.ca_file=/x"};
    ot_diags d;
    ot_diags_init(&d);
    ot_node *o = ot_node_overlay(A, base, sets, 3, &d);
    cr_assert(o);
    cr_assert_str_eq(ot_node_path(o, "endpoint")->str, "10.0.0.1:4317");
    cr_assert_str_eq(ot_node_path(o, "sending_queue.enabled")->str, "false");
    cr_assert_str_eq(ot_node_path(o, "sending_queue.num_consumers")->str, "3");
    cr_assert_str_eq(ot_node_path(o, "tls.insecure")->str, "true");
    cr_assert_str_eq(ot_node_path(o, "tls.ca_file")->str, "/x");
    cr_assert_null(ot_node_get(base, "endpoint"));
    cr_assert_null(ot_node_path(base, "sending_queue.enabled"));
    cr_assert_null(ot_node_path(base, "tls.ca_file"));
    /* a NULL template is an empty map */
    o = ot_node_overlay(A, NULL, sets, 1, &d);
    cr_assert(o && o->kind == OT_NODE_MAP && o->n == 1);
    /* an item that does not apply */
    const char *bad[] = {"tls.insecure.x=1"};
    cr_assert_null(ot_node_overlay(A, base, bad, 1, &d));
    cr_assert_gt(d.errors, 0);
    ot_diags_free(&d);
}

Test(subcomp, made_through_the_factory_table)
{
    ot_err err = {{0}};
    const ot_node *good = parse("endpoint: 127.0.0.1:1\ntls: { insecure: true }\n"
                                "sending_queue: { enabled: false }\n");
    ot_subcomp *c = ot_subcomp_create(OT_EXPORTER, "otlp", "lb/127.0.0.1:1", good, NULL, &err);
    cr_assert(c, "%s", err.msg);
    cr_assert_eq(ot_subcomp_start(c, &err), 0, "%s", err.msg);
    cr_assert(ot_subcomp_consumer(c, OT_TRACES));
    ot_subcomp_shutdown(c, ot_now_ns());
    ot_subcomp_free(c);

    const ot_node *bad = parse("endpoint: 127.0.0.1:1\ncompression: brotli\n");
    cr_assert_null(ot_subcomp_create(OT_EXPORTER, "otlp", "x", bad, NULL, &err));
    cr_assert(strstr(err.msg, "compression"), "%s", err.msg);
    cr_assert_null(ot_subcomp_create(OT_EXPORTER, "nope", "x", good, NULL, &err));
    cr_assert(strstr(err.msg, "nope"), "%s", err.msg);

    ot_diags d;
    ot_diags_init(&d);
    cr_assert_eq(ot_subcomp_check(OT_EXPORTER, "otlp", good, "p", &d), 0);
    cr_assert_gt(ot_subcomp_check(OT_EXPORTER, "otlp", bad, "p", &d), 0);
    cr_assert_str_eq(d.v[0].path, "p.compression");
    ot_diags_free(&d);
}
