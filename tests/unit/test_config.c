/* Unit tests for loading configs: positions, YAML errors, duplicate keys,
 * aliases, ${env} expansion, merging files, --set, the diagnostics' text
 * and JSON forms, and the YAML writer (round trip, quoting, redaction). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

/* Printed diagnostics, sorted, as one malloc'd string. */
static char *diag_text(ot_diags *d)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ot_diags_sort(d);
    ot_diags_print(d, f);
    fclose(f);
    return s;
}

static void expect_diags(ot_diags *d, const char *want)
{
    char *got = diag_text(d);
    cr_assert_str_eq(got, want);
    free(got);
}

static ot_config *load(const char *yaml, ot_diags *d)
{
    ot_diags_init(d);
    return ot_config_load_string("t.yaml", yaml, strlen(yaml), d);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/otelite-test-config-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(config, nodes_carry_file_line_col)
{
    ot_diags d;
    ot_config *c = load("receivers:\n  otlp:\n    protocols:\n      grpc: { endpoint: \"a:1\" }\n"
                        "list:\n  - x\n  - 'y'\nempty:\n",
                        &d);
    cr_assert_not_null(c);
    cr_assert_eq(d.n, 0);
    const ot_node *ep = ot_node_path(ot_config_root(c), "receivers.otlp.protocols.grpc.endpoint");
    cr_assert_not_null(ep);
    cr_assert_str_eq(ep->file, "t.yaml");
    cr_assert_eq(ep->line, 4);
    cr_assert_eq(ep->col, 25);
    cr_assert(ep->quoted);
    cr_assert_str_eq(ep->str, "a:1");
    const ot_node *l = ot_node_get(ot_config_root(c), "list");
    cr_assert_eq(l->kind, OT_NODE_SEQ);
    cr_assert_eq(l->n, 2);
    cr_assert_eq(l->vals[1]->line, 7);
    cr_assert_eq(l->vals[1]->col, 5);
    cr_assert(!l->vals[0]->quoted && l->vals[1]->quoted);
    const ot_node *e = ot_node_get(ot_config_root(c), "empty");
    cr_assert_not_null(e);
    cr_assert(ot_node_is_null(e));
    cr_assert(ot_node_is_null(NULL));
    cr_assert_null(ot_node_get(ot_config_root(c), "absent"));
    cr_assert_null(ot_node_get(l, "x"));
    cr_assert_null(ot_node_path(ot_config_root(c), "list.x"));
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, null_words_only_when_plain)
{
    ot_diags d;
    ot_config *c = load("a: ~\nb: null\nc: \"null\"\nd: ''\ne: !!str\nf: NULL\n", &d);
    const ot_node *r = ot_config_root(c);
    cr_assert_eq(ot_node_get(r, "a")->kind, OT_NODE_NULL);
    cr_assert_eq(ot_node_get(r, "b")->kind, OT_NODE_NULL);
    cr_assert_eq(ot_node_get(r, "c")->kind, OT_NODE_SCALAR);
    cr_assert_eq(ot_node_get(r, "d")->kind, OT_NODE_SCALAR);
    cr_assert_eq(ot_node_get(r, "d")->len, 0);
    cr_assert_eq(ot_node_get(r, "e")->kind, OT_NODE_SCALAR);
    cr_assert_eq(ot_node_get(r, "f")->kind, OT_NODE_NULL);
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, empty_document_is_empty_map)
{
    ot_diags d;
    ot_config *c = load("# nothing\n", &d);
    cr_assert_not_null(c);
    cr_assert_eq(ot_config_root(c)->kind, OT_NODE_MAP);
    cr_assert_eq(ot_config_root(c)->n, 0);
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, duplicate_keys_are_errors_with_both_positions)
{
    ot_diags d;
    ot_config *c = load("exporters:\n  otlp: {}\n  file: {}\n  otlp: {}\n", &d);
    cr_assert_not_null(c);
    expect_diags(&d, "t.yaml:4:3: error: exporters: duplicate key \"otlp\" (first at line 2, column 3)\n");
    cr_assert_eq(ot_config_root(c)->vals[0]->n, 2);
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, all_errors_are_collected)
{
    ot_diags d;
    ot_config *c = load("a: 1\na: 2\nb: ${env:X\nc: *nope\n", &d);
    cr_assert_not_null(c);
    cr_assert_eq(d.errors, 3);
    expect_diags(&d, "t.yaml:2:1: error: duplicate key \"a\" (first at line 1, column 1)\n"
                     "t.yaml:3:4: error: b: unclosed \"${\": write ${NAME}, ${env:NAME} or $$ for a literal $\n"
                     "t.yaml:4:4: error: c: unknown anchor \"nope\" (an alias must follow a complete &nope)\n");
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, syntax_errors_have_positions_and_return_null)
{
    ot_diags d;
    cr_assert_null(load("a:\n  b: 1\n c: 2\n", &d));
    expect_diags(&d, "t.yaml:3:2: error: invalid YAML: did not find expected key (while parsing a block mapping)\n");
    ot_diags_free(&d);
    cr_assert_null(load("a: [1, 2\nb: 3\n", &d));
    expect_diags(&d, "t.yaml:2:2: error: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)\n");
    ot_diags_free(&d);
    cr_assert_null(load("a: b: c\n", &d));
    expect_diags(&d, "t.yaml:1:5: error: invalid YAML: mapping values are not allowed in this context\n");
    ot_diags_free(&d);
    cr_assert_null(load("ok: 1\nbad: \"x\xff\"\n", &d));
    expect_diags(&d, "t.yaml:2:8: error: invalid YAML: invalid leading UTF-8 octet\n");
    ot_diags_free(&d);
}

Test(config, a_second_document_is_an_error)
{
    ot_diags d;
    ot_config *c = load("a: 1\n---\nb: 2\n", &d);
    cr_assert_not_null(c);
    expect_diags(&d, "t.yaml:2:1: error: only one YAML document is allowed; this one is ignored\n");
    cr_assert_null(ot_node_get(ot_config_root(c), "b"));
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, aliases_copy_the_anchor)
{
    ot_diags d;
    ot_config *c = load("base: &b { timeout: 5s, n: [1, 2] }\nx: *b\ny: *b\n", &d);
    cr_assert_eq(d.n, 0);
    const ot_node *x = ot_node_path(ot_config_root(c), "x.timeout");
    cr_assert_not_null(x);
    cr_assert_str_eq(x->str, "5s");
    cr_assert_eq(x->line, 1); /* the anchor's position */
    cr_assert_neq(ot_node_get(ot_config_root(c), "x"), ot_node_get(ot_config_root(c), "y"));
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, alias_bombs_and_deep_nesting_are_refused)
{
    ot_diags d;
    char bomb[2048] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char n = 'b'; n <= 'h'; n++) {
        size_t l = strlen(bomb);
        snprintf(bomb + l, sizeof bomb - l, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", n,
                 n, n - 1, n - 1, n - 1, n - 1, n - 1, n - 1, n - 1, n - 1, n - 1, n - 1);
    }
    ot_config *c = load(bomb, &d);
    cr_assert_not_null(c);
    cr_assert_geq(d.errors, 1);
    cr_assert(strstr(d.v[0].msg, "aliases expand to more than"));
    ot_config_free(c);
    ot_diags_free(&d);

    char deep[512];
    memset(deep, '[', 300);
    deep[300] = '\0';
    cr_assert_null(load(deep, &d));
    cr_assert(strstr(d.v[0].msg, "nesting is deeper than 100 levels"));
    ot_diags_free(&d);
}

Test(config, env_expansion)
{
    setenv("OTCFG_HOST", "db.local", 1);
    setenv("OTCFG_EMPTY", "", 1);
    unsetenv("OTCFG_UNSET");
    ot_diags d;
    ot_config *c = load("a: ${env:OTCFG_HOST}\n"
                        "b: ${OTCFG_HOST}:5432\n"
                        "c: \"http://${env:OTCFG_HOST}/x\"\n"
                        "d: ${env:OTCFG_UNSET:-fallback}\n"
                        "e: ${env:OTCFG_EMPTY:-fallback}\n"
                        "f: ${env:OTCFG_HOST:-fallback}\n"
                        "g: cost $$5 and $${OTCFG_HOST}\n"
                        "h: x${env:OTCFG_UNSET}y\n"
                        "i: $ alone $\n"
                        "${OTCFG_HOST}: keys are not expanded\n",
                        &d);
    const ot_node *r = ot_config_root(c);
    cr_assert_str_eq(ot_node_get(r, "a")->str, "db.local");
    cr_assert_str_eq(ot_node_get(r, "b")->str, "db.local:5432");
    cr_assert_str_eq(ot_node_get(r, "c")->str, "http://db.local/x");
    cr_assert_str_eq(ot_node_get(r, "d")->str, "fallback");
    cr_assert_str_eq(ot_node_get(r, "e")->str, "fallback");
    cr_assert_str_eq(ot_node_get(r, "f")->str, "db.local");
    cr_assert_str_eq(ot_node_get(r, "g")->str, "cost $5 and ${OTCFG_HOST}");
    cr_assert_str_eq(ot_node_get(r, "h")->str, "xy");
    cr_assert_str_eq(ot_node_get(r, "i")->str, "$ alone $");
    cr_assert_not_null(ot_node_get(r, "${OTCFG_HOST}"));
    cr_assert_eq(d.errors, 0);
    expect_diags(&d, "t.yaml:8:5: warning: h: environment variable OTCFG_UNSET is not set; using an empty value\n");
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, env_errors_point_at_the_dollar)
{
    ot_diags d;
    ot_config *c = load("a:\n  b: \"x ${env:1BAD} y\"\n  c: ${env:OK\n  d: pre ${file:/etc/x}\n  e: ${A B}\n", &d);
    cr_assert_not_null(c);
    expect_diags(&d,
                 "t.yaml:2:9: error: a.b: bad variable reference \"${env:1BAD}\": expected ${NAME}, "
                 "${env:NAME} or ${env:NAME:-default}\n"
                 "t.yaml:3:6: error: a.c: unclosed \"${\": write ${NAME}, ${env:NAME} or $$ for a literal $\n"
                 "t.yaml:4:10: error: a.d: unsupported provider \"file\" in \"${file:/etc/x}\": only "
                 "${env:NAME} is supported\n"
                 "t.yaml:5:6: error: a.e: bad variable reference \"${A B}\": expected ${NAME}, "
                 "${env:NAME} or ${env:NAME:-default}\n");
    /* The raw text is kept so later messages quote what was written. */
    cr_assert_str_eq(ot_node_path(ot_config_root(c), "a.c")->str, "${env:OK");
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, files_merge_then_sets_apply)
{
    char *f1 = write_tmp("receivers:\n  otlp:\n    endpoint: a:1\n    include: [x, y]\n    keep: 1\n"
                         "exporters:\n  file: { path: /tmp/a }\n");
    char *f2 = write_tmp("receivers:\n  otlp:\n    endpoint: b:2\n    include: [z]\n    new: yes\n"
                         "exporters: scalar-now\n");
    const char *files[] = {f1, f2};
    const char *sets[] = {"receivers.otlp.endpoint=c:3", "service.pipelines.traces.receivers=[otlp, x]",
                          "processors::batch/x.y::timeout=5s", "receivers.otlp.keep={a: 1}"};
    ot_diags d;
    ot_diags_init(&d);
    ot_config *c = ot_config_load(files, 2, sets, 4, &d);
    cr_assert_not_null(c);
    cr_assert_eq(d.n, 0);
    const ot_node *r = ot_config_root(c);
    const ot_node *ep = ot_node_path(r, "receivers.otlp.endpoint");
    cr_assert_str_eq(ep->str, "c:3");
    cr_assert_str_eq(ep->file, "--set");
    cr_assert_eq(ep->line, 1);
    cr_assert_eq(ep->col, 25);
    const ot_node *inc = ot_node_path(r, "receivers.otlp.include");
    cr_assert_eq(inc->n, 1);
    cr_assert_str_eq(inc->vals[0]->str, "z");
    cr_assert_str_eq(inc->file, f2);
    cr_assert_str_eq(ot_node_path(r, "receivers.otlp.new")->str, "yes");
    cr_assert_eq(ot_node_path(r, "receivers.otlp.keep")->kind, OT_NODE_MAP);
    cr_assert_str_eq(ot_node_path(r, "exporters")->str, "scalar-now");
    const ot_node *rl = ot_node_path(r, "service.pipelines.traces.receivers");
    cr_assert_eq(rl->kind, OT_NODE_SEQ);
    cr_assert_eq(rl->n, 2);
    cr_assert_str_eq(rl->vals[1]->str, "x");
    cr_assert_eq(rl->vals[1]->line, 2);
    cr_assert_eq(rl->vals[1]->col, 43);
    const ot_node *t = ot_node_path(r, "processors::batch/x.y::timeout");
    cr_assert_not_null(t);
    cr_assert_str_eq(t->str, "5s");
    cr_assert_not_null(ot_node_get(ot_node_get(r, "processors"), "batch/x.y"));
    /* The first key of the merged map keeps the first file's position. */
    cr_assert_str_eq(ot_node_get(r, "receivers")->file, f1);
    char *y = ot_node_to_yaml(r, false);
    cr_assert_str_eq(y, "receivers:\n"
                        "  otlp:\n"
                        "    endpoint: c:3\n"
                        "    include:\n"
                        "      - z\n"
                        "    keep:\n"
                        "      a: 1\n"
                        "    new: yes\n"
                        "exporters: scalar-now\n"
                        "service:\n"
                        "  pipelines:\n"
                        "    traces:\n"
                        "      receivers:\n"
                        "        - otlp\n"
                        "        - x\n"
                        "processors:\n"
                        "  batch/x.y:\n"
                        "    timeout: 5s\n");
    free(y);
    ot_config_free(c);
    ot_diags_free(&d);
    unlink(f1);
    unlink(f2);
    free(f1);
    free(f2);
}

Test(config, set_errors)
{
    const char *sets[] = {"no-equals", "a.b=1", "a.b.c=2", "x..y=3", "=4", "q=[1,", "e.f=", "s=${X"};
    ot_diags d;
    ot_diags_init(&d);
    ot_config *c = ot_config_load(NULL, 0, sets, 8, &d);
    cr_assert_not_null(c);
    expect_diags(&d, "--set:1:1: error: expected key.path=value, found \"no-equals\"\n"
                     "--set:3:3: error: a.b.c: cannot set a key inside \"b\": it is not a map (--set:2:5)\n"
                     "--set:4:3: error: x..y: empty key in path\n"
                     "--set:5:1: error: expected key.path=value, found \"=4\"\n"
                     "--set:6:6: error: q: invalid YAML: did not find expected node content (while "
                     "parsing a flow node)\n"
                     "--set:8:3: error: s: unclosed \"${\": write ${NAME}, ${env:NAME} or $$ for a literal $\n");
    const ot_node *f = ot_node_path(ot_config_root(c), "e.f");
    cr_assert_not_null(f);
    cr_assert_eq(f->kind, OT_NODE_NULL);
    cr_assert_eq(f->col, 5);
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, set_nesting_is_bounded)
{
    char arg[400] = "";
    for (int i = 0; i < 99; i++)
        strcat(arg, "a.");
    strcat(arg, "b=[[x]]");
    const char *sets[] = {arg};
    ot_diags d;
    ot_diags_init(&d);
    ot_config *c = ot_config_load(NULL, 0, sets, 1, &d);
    cr_assert_not_null(c);
    cr_assert_eq(d.errors, 1);
    cr_assert_str_eq(d.v[0].msg, "nesting is deeper than 100 levels");
    cr_assert_null(ot_node_get(ot_config_root(c), "a"));
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, unreadable_file_returns_null)
{
    const char *files[] = {"/nonexistent/otelite.yaml"};
    ot_diags d;
    ot_diags_init(&d);
    cr_assert_null(ot_config_load(files, 1, NULL, 0, &d));
    expect_diags(&d, "/nonexistent/otelite.yaml: error: cannot read the config file: No such file or directory\n");
    ot_diags_free(&d);
}

Test(config, diags_sort_is_stable_and_json_escapes)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_diag_add_at(&d, OT_SEV_ERROR, "b.yaml", 1, 1, "x", "first");
    ot_diag_add_at(&d, OT_SEV_WARNING, "a.yaml", 5, 2, "", "w");
    ot_diag_add_at(&d, OT_SEV_ERROR, "b.yaml", 1, 1, "x", "second");
    ot_diag_add_at(&d, OT_SEV_ERROR, "a.yaml", 5, 1, "p.q", "say \"hi\"\n");
    ot_diag_add(&d, OT_SEV_ERROR, NULL, "k", "no position");
    cr_assert_eq(d.errors, 4);
    cr_assert_eq(d.warnings, 1);
    expect_diags(&d, "error: k: no position\n"
                     "a.yaml:5:1: error: p.q: say \"hi\"\n\n"
                     "a.yaml:5:2: warning: w\n"
                     "b.yaml:1:1: error: x: first\n"
                     "b.yaml:1:1: error: x: second\n");
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ot_diags_print_json(&d, f);
    fclose(f);
    cr_assert_str_eq(s, "{\"valid\":false,\"errors\":["
                        "{\"file\":\"-\",\"line\":0,\"column\":0,\"path\":\"k\",\"severity\":\"error\",\"message\":\"no position\"},"
                        "{\"file\":\"a.yaml\",\"line\":5,\"column\":1,\"path\":\"p.q\",\"severity\":\"error\",\"message\":\"say \\\"hi\\\"\\n\"},"
                        "{\"file\":\"a.yaml\",\"line\":5,\"column\":2,\"path\":\"\",\"severity\":\"warning\",\"message\":\"w\"},"
                        "{\"file\":\"b.yaml\",\"line\":1,\"column\":1,\"path\":\"x\",\"severity\":\"error\",\"message\":\"first\"},"
                        "{\"file\":\"b.yaml\",\"line\":1,\"column\":1,\"path\":\"x\",\"severity\":\"error\",\"message\":\"second\"}]}\n");
    free(s);
    ot_diags_free(&d);
    ot_diags_init(&d);
    f = open_memstream(&s, &n);
    ot_diags_print_json(&d, f);
    fclose(f);
    cr_assert_str_eq(s, "{\"valid\":true,\"errors\":[]}\n");
    free(s);
}

/* Writes, reloads, writes again: the text must not change. */
static char *round_trip(const char *yaml)
{
    ot_diags d;
    ot_config *c = load(yaml, &d);
    cr_assert_not_null(c, "%s", yaml);
    char *a = ot_node_to_yaml(ot_config_root(c), false);
    ot_config_free(c);
    ot_diags_free(&d);
    c = load(a, &d);
    cr_assert_not_null(c, "reload of:\n%s", a);
    cr_assert_eq(d.n, 0, "reload of:\n%s", a);
    char *b = ot_node_to_yaml(ot_config_root(c), false);
    cr_assert_str_eq(a, b);
    ot_config_free(c);
    ot_diags_free(&d);
    free(b);
    return a;
}

Test(config, writer_round_trips_and_quotes_what_needs_it)
{
    char *y = round_trip("a: plain\n"
                         "b: \"true\"\n"
                         "c: 'it''s'\n"
                         "d: \"line1\\nline2\\ttab \\\"q\\\" back\\\\slash\"\n"
                         "e: \" lead\"\n"
                         "f: \"- dash\"\n"
                         "g: \"a: b\"\n"
                         "h: \"x #y\"\n"
                         "i: \"\"\n"
                         "j: \"null\"\n"
                         "k: ~\n"
                         "l: []\n"
                         "m: {}\n"
                         "n: [[1, 2], {p: 1, q: [3]}, ~]\n"
                         "\"key with: colon\": 1\n"
                         "o: $$literal\n"
                         "p: \"h\\u00e9llo \\u2028 \\x01\"\n"
                         "q: -5\n"
                         "r: \"---\"\n"
                         "s: \"[x]\"\n");
    cr_assert_str_eq(y, "a: plain\n"
                        "b: \"true\"\n"
                        "c: \"it's\"\n"
                        "d: \"line1\\nline2\\ttab \\\"q\\\" back\\\\slash\"\n"
                        "e: \" lead\"\n"
                        "f: \"- dash\"\n"
                        "g: \"a: b\"\n"
                        "h: \"x #y\"\n"
                        "i: \"\"\n"
                        "j: \"null\"\n"
                        "k:\n"
                        "l: []\n"
                        "m: {}\n"
                        "n:\n"
                        "  - - 1\n"
                        "    - 2\n"
                        "  - p: 1\n"
                        "    q:\n"
                        "      - 3\n"
                        "  - null\n"
                        "\"key with: colon\": 1\n"
                        "o: $$literal\n"
                        "p: \"h\xc3\xa9llo \\u2028 \\x01\"\n"
                        "q: -5\n"
                        "r: \"---\"\n"
                        "s: \"[x]\"\n");
    free(y);
}

Test(config, writer_redacts_secret_looking_keys)
{
    ot_diags d;
    ot_config *c = load("exporters:\n  datadog:\n    api: { key: abc, site: x }\n"
                        "    headers: { Authorization: Bearer x, X-Api-Key: k }\n"
                        "    Password: p\n    client_secret: s\n    tokens: [a, b]\n    token:\n",
                        &d);
    char *y = ot_node_to_yaml(ot_config_root(c), true);
    cr_assert_str_eq(y, "exporters:\n"
                        "  datadog:\n"
                        "    api:\n"
                        "      key: \"[REDACTED]\"\n"
                        "      site: x\n"
                        "    headers:\n"
                        "      Authorization: Bearer x\n"
                        "      X-Api-Key: \"[REDACTED]\"\n"
                        "    Password: \"[REDACTED]\"\n"
                        "    client_secret: \"[REDACTED]\"\n"
                        "    tokens: \"[REDACTED]\"\n"
                        "    token:\n");
    free(y);
    y = ot_node_to_yaml(ot_node_path(ot_config_root(c), "exporters.datadog.api"), false);
    cr_assert_str_eq(y, "key: abc\nsite: x\n");
    free(y);
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config, node_parse_for_fixtures_and_defaults)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const ot_node *n = ot_node_parse(a, "<default>", "[a, b]", 6, &d);
    cr_assert_eq(n->kind, OT_NODE_SEQ);
    cr_assert_eq(n->n, 2);
    n = ot_node_parse(a, "x", "", 0, &d);
    cr_assert_eq(n->kind, OT_NODE_NULL);
    cr_assert_null(ot_node_parse(a, "x", "[", 1, &d));
    cr_assert_eq(d.errors, 1);
    ot_diags_free(&d);
    ot_arena_free(a);
}
