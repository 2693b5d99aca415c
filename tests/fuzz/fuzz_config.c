/* fuzz_config.c: the config loader and key walker must survive any input
 * without crashing or leaking, and the YAML writer's output must load back
 * without errors and write the same text again (print-config and reload
 * comparisons depend on it). Input starting with '=' is instead a list of
 * --set arguments, one per line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

typedef struct sub {
    bool present;
    ot_endpoint endpoint;
    int64_t n;
} sub;

typedef struct fz {
    const char *s;
    bool b;
    int64_t i;
    double d;
    int64_t dur;
    uint64_t size;
    ot_endpoint ep;
    int mode;
    ot_strlist list;
    ot_strmap map;
    sub grpc;
    const ot_node *raw;
} fz;

static const char *const modes[] = {"grpc", "http", NULL};

static const ot_key sub_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(sub, endpoint), .def = "localhost:4317"},
    {.name = "n", .type = OT_KT_INT, .offset = offsetof(sub, n), .min = 1, .max = 10, .flags = OT_KF_REQUIRED},
    {0},
};

static const ot_key keys[] = {
    {.name = "s", .type = OT_KT_STRING, .offset = offsetof(fz, s), .def = "x"},
    {.name = "b", .type = OT_KT_BOOL, .offset = offsetof(fz, b)},
    {.name = "i", .type = OT_KT_INT, .offset = offsetof(fz, i), .def = "5", .min = 0, .max = 100},
    {.name = "d", .type = OT_KT_DOUBLE, .offset = offsetof(fz, d), .min = 0, .max = 1},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(fz, dur), .def = "5s"},
    {.name = "size", .type = OT_KT_SIZE, .offset = offsetof(fz, size), .def = "4MiB", .min = 1, .max = 1e12},
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(fz, ep), .flags = OT_KF_REQUIRED},
    {.name = "mode", .type = OT_KT_ENUM, .offset = offsetof(fz, mode), .choices = modes},
    {.name = "include", .type = OT_KT_STRLIST, .offset = offsetof(fz, list), .def = "[a, b]"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(fz, map)},
    {.name = "grpc", .type = OT_KT_TABLE, .offset = offsetof(fz, grpc), .sub = sub_keys, .flags = OT_KF_PRESENCE},
    {.name = "raw", .type = OT_KT_NODE, .offset = offsetof(fz, raw)},
    {0},
};

static FILE *sink(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

static void check_round_trip(const ot_node *root)
{
    char *a = ot_node_to_yaml(root, false);
    if (!a)
        return;
    ot_diags d;
    ot_diags_init(&d);
    ot_config *c = ot_config_load_string("rt.yaml", a, strlen(a), &d);
    if (!c || d.errors) {
        fprintf(stderr, "writer output does not load:\n%s\n", a);
        ot_diags_print(&d, stderr);
        abort();
    }
    char *b = ot_node_to_yaml(ot_config_root(c), false);
    if (!b || strcmp(a, b) != 0) {
        fprintf(stderr, "writer output changes on reload:\n%s\n---\n%s\n", a, b ? b : "(null)");
        abort();
    }
    free(b);
    free(a);
    free(ot_node_to_yaml(root, true));
    ot_config_free(c);
    ot_diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_config *c;
    if (size && data[0] == '=') {
        char *text = malloc(size);
        const char *sets[8];
        size_t n = 0;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        for (char *p = text, *nl; p && n < 8; p = nl ? nl + 1 : NULL) {
            if ((nl = strchr(p, '\n')) != NULL)
                *nl = '\0';
            sets[n++] = p;
        }
        c = ot_config_load(NULL, 0, sets, n, &d);
        free(text);
    } else {
        c = ot_config_load_string("fuzz.yaml", (const char *)data, size, &d);
    }
    if (c) {
        const ot_node *root = ot_config_root(c);
        fz out;
        ot_keys_fill(keys, root, &out, ot_config_arena(c), "", &d);
        for (size_t i = 0; root->kind == OT_NODE_MAP && i < root->n; i++)
            ot_keys_fill(keys, root->vals[i], &out, ot_config_arena(c), root->keys[i]->str, &d);
        ot_node_path(root, "a.b.c");
        check_round_trip(root);
        ot_config_free(c);
    }
    ot_diags_sort(&d);
    ot_diags_print(&d, sink());
    ot_diags_print_json(&d, sink());
    ot_diags_free(&d);
    return 0;
}
