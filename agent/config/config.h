/* config.h: the YAML configuration, as a tree that remembers where every
 * value came from, and the key tables components use to describe their
 * settings. One generic walker turns a YAML map into a component's config
 * struct and reports every problem with file:line:col and the key path;
 * components never parse YAML themselves. */
#ifndef OT_CONFIG_H
#define OT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/arena.h"
#include "base/err.h"

/* ---- the tree ---------------------------------------------------------- */

typedef enum ot_node_kind {
    OT_NODE_NULL = 0, /* `key:` with nothing, or `~` / `null` */
    OT_NODE_SCALAR,
    OT_NODE_MAP,
    OT_NODE_SEQ,
} ot_node_kind;

typedef struct ot_node ot_node;
struct ot_node {
    ot_node_kind kind;
    const char *file; /* where it was written; "--set" for command-line values */
    int line, col;    /* 1-based */
    const char *str;  /* SCALAR: text after ${env} expansion; NUL-terminated */
    size_t len;
    bool quoted;      /* SCALAR was quoted: never null/bool/number by accident */
    size_t n;         /* MAP: pairs; SEQ: items */
    ot_node **keys;   /* MAP: key nodes (scalars) */
    ot_node **vals;   /* MAP: values; SEQ: items */
};

/* MAP lookup by key text; NULL when absent or when map is not a MAP. */
const ot_node *ot_node_get(const ot_node *map, const char *key);
/* Follows a dotted path of map keys ("service.telemetry.logs"). */
const ot_node *ot_node_path(const ot_node *root, const char *dotted);
/* True for a NULL node and for an absent one (n == NULL). */
bool ot_node_is_null(const ot_node *n);
struct ot_diags;
/* Parses one YAML value (a key-table default, a test fixture) into nodes
 * allocated in a; name is used as the file in positions; ${env} expands as
 * in files. Empty text gives a NULL node. Returns NULL on a YAML syntax
 * error, which goes to diags (diags may be NULL). */
const ot_node *ot_node_parse(ot_arena *a, const char *name, const char *text, size_t len,
                             struct ot_diags *diags);

/* ---- diagnostics ------------------------------------------------------- */

typedef enum ot_severity { OT_SEV_ERROR = 0, OT_SEV_WARNING = 1 } ot_severity;

typedef struct ot_diag {
    ot_severity sev;
    const char *file;
    int line, col;
    const char *path; /* key path, e.g. receivers.otlp.protocols.grpc.endpoint */
    const char *msg;  /* what was expected, what was found */
} ot_diag;

typedef struct ot_diags {
    ot_arena *arena;
    ot_diag *v;
    size_t n, cap;
    size_t errors, warnings;
} ot_diags;

void ot_diags_init(ot_diags *d);
void ot_diags_free(ot_diags *d);
/* at may be NULL (then the position is unknown: file "-", 0:0). */
void ot_diag_add(ot_diags *d, ot_severity sev, const ot_node *at, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Same, at an explicit position (e.g. inside a string). */
void ot_diag_add_at(ot_diags *d, ot_severity sev, const char *file, int line, int col,
                    const char *path, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Sorted by file, line, col. Text: "file:line:col: error: path: msg". */
void ot_diags_sort(ot_diags *d);
void ot_diags_print(const ot_diags *d, FILE *out);
/* {"valid":bool,"errors":[{"file","line","column","path","severity","message"}...]} */
void ot_diags_print_json(const ot_diags *d, FILE *out);

/* ---- loading ----------------------------------------------------------- */

typedef struct ot_config ot_config;

/* Loads and merges files in order (maps merge key by key, anything else is
 * replaced by the later file), then applies --set items ("a.b.c=value",
 * value parsed as YAML). ${env:VAR}, ${VAR}, ${env:VAR:-default} expand in
 * scalars; $$ is a literal $. Problems go to diags. Returns NULL only when
 * nothing usable was loaded (unreadable file, YAML syntax error); a config
 * with errors in its contents still returns a tree so all errors are seen. */
ot_config *ot_config_load(const char *const *files, size_t nfiles, const char *const *sets,
                          size_t nsets, ot_diags *diags);
/* Loads from memory; name is used in positions. */
ot_config *ot_config_load_string(const char *name, const char *yaml, size_t len, ot_diags *diags);
const ot_node *ot_config_root(const ot_config *c);
/* Arena that lives as long as the config: component config structs and
 * their strings are allocated here. */
ot_arena *ot_config_arena(ot_config *c);
void ot_config_free(ot_config *c);

/* A copy of base (a map; NULL or a null node is an empty map) with each
 * "key.path=value" item applied as --set applies it to a config. base is
 * not changed; the copy lives in a. What one component uses to make the
 * settings of a sub-component it runs (a backend's from a template plus
 * the endpoint it found). NULL when an item does not apply (diags says
 * why; diags may be NULL) or on out of memory. */
ot_node *ot_node_overlay(ot_arena *a, const ot_node *base, const char *const *sets, size_t nsets,
                         ot_diags *diags);

/* Writes a node as YAML (block style, keys in file order). With redact,
 * values of keys that look secret (key, token, password, secret, anywhere
 * in the name, any case) print as "[REDACTED]". Also the canonical text used
 * to tell whether a component's config changed across a reload. */
void ot_node_write_yaml(const ot_node *n, bool redact, FILE *out);
char *ot_node_to_yaml(const ot_node *n, bool redact); /* malloc'd */

/* ---- shared value parsers ---------------------------------------------- */

typedef struct ot_endpoint {
    const char *host; /* without brackets for IPv6 */
    int port;
    const char *text; /* as written */
} ot_endpoint;

typedef struct ot_strlist {
    const char **v;
    size_t n;
    const ot_node *node; /* the SEQ, for positions of items; NULL if default */
} ot_strlist;

typedef struct ot_strmap {
    const char **keys;
    const char **vals;
    size_t n;
} ot_strmap;

/* "200ms", "10s", "1m", "1h30m", "1.5s", "0"; units ns us µs ms s m h. A
 * plain number other than 0 is refused (ambiguous). */
int ot_parse_duration(const char *s, int64_t *ns, ot_err *err);
/* "4MiB", "512KiB", "1GiB", "100B", "4MB" (10^6), plain bytes "1024". */
int ot_parse_size(const char *s, uint64_t *bytes, ot_err *err);
/* "host:port", "[::1]:4317", ":4317" (host empty => all interfaces). */
int ot_parse_endpoint(const char *s, ot_endpoint *out, ot_arena *a, ot_err *err);
int ot_parse_bool(const char *s, bool *out, ot_err *err);
int ot_parse_int(const char *s, int64_t *out, ot_err *err);

/* Edit distance, for "did you mean" suggestions. */
size_t ot_edit_distance(const char *a, const char *b);

/* ---- key tables -------------------------------------------------------- */

typedef enum ot_key_type {
    OT_KT_STRING,   /* const char *            */
    OT_KT_BOOL,     /* bool                    */
    OT_KT_INT,      /* int64_t, bounds min/max */
    OT_KT_DOUBLE,   /* double, bounds min/max  */
    OT_KT_DURATION, /* int64_t ns, bounds in ns */
    OT_KT_SIZE,     /* uint64_t bytes, bounds in bytes */
    OT_KT_ENDPOINT, /* ot_endpoint             */
    OT_KT_ENUM,     /* int: index into choices */
    OT_KT_STRLIST,  /* ot_strlist; a lone scalar is taken as a one-item list */
    OT_KT_STRMAP,   /* ot_strmap (string values) */
    OT_KT_TABLE,    /* nested struct at offset, described by sub */
    OT_KT_NODE,     /* const ot_node *: raw, the component checks it */
} ot_key_type;

enum {
    OT_KF_REQUIRED = 1u << 0,
    /* TABLE only: the nested struct starts with `bool present`, set when the
     * key is written at all (even as `grpc:` with no value). Absent tables
     * are still filled with defaults. */
    OT_KF_PRESENCE = 1u << 1,
    OT_KF_SECRET = 1u << 2, /* never printed (print-config, components) */
};

typedef struct ot_key {
    const char *name;
    ot_key_type type;
    size_t offset;
    const char *def;               /* default, written as a user would; NULL = zero */
    const char *help;              /* one line */
    double min, max;               /* bounds when min < max */
    const char *const *choices;    /* ENUM: NULL-terminated */
    const struct ot_key *sub;      /* TABLE: nested keys, ended by {0} */
    unsigned flags;
} ot_key;

/* Fills out (a struct laid out as keys say) from map. map may be NULL or a
 * NULL node: every key takes its default. Unknown keys are errors that name
 * the nearest known key. path prefixes every diagnostic. Strings are
 * allocated in arena. Returns the number of errors added. */
size_t ot_keys_fill(const ot_key *keys, const ot_node *map, void *out, ot_arena *arena,
                    const char *path, ot_diags *diags);

/* Prints one line per key ("  name  type  default  help"), nested tables
 * indented, for `otelite components`. */
void ot_keys_describe(const ot_key *keys, FILE *out, int indent);
/* The same as Markdown table rows (key, type, default, help), nested keys
 * with dotted names under prefix. */
void ot_keys_describe_md(const ot_key *keys, FILE *out, const char *prefix);
const char *ot_key_type_name(ot_key_type t);

#endif
