/* tree_int.h: what the files behind config.h's tree share, and nothing
 * else includes: the limits on hostile input, and the few helpers that
 * more than one of them needs (the loader, the queries, the file/--set
 * merger and the writer). */
#ifndef OT_CONFIG_TREE_INT_H
#define OT_CONFIG_TREE_INT_H

#include "config/config.h"

/* Limits that keep hostile input (fuzzing, a typo'd anchor) from costing
 * more than a config could ever need. */
#define MAX_DEPTH 100           /* nesting of maps and lists */
#define MAX_ALIAS_NODES 100000  /* nodes created by copying aliases */
#define MAX_KEY_LEN 200         /* keeps written keys under YAML's 1024 limit */
#define MAX_FILE_SIZE (16u << 20)

/* ---- tree.c ------------------------------------------------------------- */

/* A YAML ~/null/Null/NULL (or empty) plain scalar. */
bool tree_null_word(const char *s, size_t len);

/* One YAML document of text into nodes in a; set_line/set_col place a
 * --set value inside its command-line item, prefix is its key path. */
ot_node *tree_parse_text(ot_arena *a, const char *file, const char *text, size_t len,
                         ot_diags *d, int set_line, int set_col, const char *prefix);

/* ---- node.c ------------------------------------------------------------- */

/* Index of key s[0..len) in map, or -1. */
long tree_find_key(const ot_node *map, const char *s, size_t len);
const char *tree_path_sep(const char *s, size_t len, size_t *seplen);
long tree_utf8_decode(const unsigned char *s, size_t len, size_t *n);
bool tree_valid_utf8(const char *s, size_t len);

#endif
