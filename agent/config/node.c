/* node.c: reading a finished tree: a key of a map, a dotted key path,
 * null; and the UTF-8 check of key and value text that --set and the
 * writer share. Apart from the loader because every component reads the
 * tree and none of them builds one. */
#include "config/tree_int.h"

#include <string.h>

/* ---- lookup ---------------------------------------------------------------- */

static bool key_is(const ot_node *k, const char *s, size_t len)
{
    return k->len == len && memcmp(k->str, s, len) == 0;
}

long tree_find_key(const ot_node *map, const char *s, size_t len)
{
    for (size_t i = 0; i < map->n; i++)
        if (key_is(map->keys[i], s, len))
            return (long)i;
    return -1;
}

const ot_node *ot_node_get(const ot_node *map, const char *key)
{
    if (!map || map->kind != OT_NODE_MAP || !key)
        return NULL;
    long i = tree_find_key(map, key, strlen(key));
    return i < 0 ? NULL : map->vals[i];
}

/* Key paths split on "::" when they have one (keys with dots), else on ".". */
const char *tree_path_sep(const char *s, size_t len, size_t *seplen)
{
    const char *p = memmem(s, len, "::", 2);
    *seplen = p ? 2 : 1;
    return p ? "::" : ".";
}

const ot_node *ot_node_path(const ot_node *root, const char *dotted)
{
    size_t seplen, len = strlen(dotted);
    const char *sep = tree_path_sep(dotted, len, &seplen);
    const char *p = dotted, *end = dotted + len;
    while (root && p < end) {
        const char *q = memmem(p, (size_t)(end - p), sep, seplen);
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        long i = root->kind == OT_NODE_MAP ? tree_find_key(root, p, n) : -1;
        root = i < 0 ? NULL : root->vals[i];
        p += n + (q ? seplen : 0);
    }
    return root;
}

bool ot_node_is_null(const ot_node *n)
{
    return !n || n->kind == OT_NODE_NULL;
}

/* Code point of the UTF-8 sequence at s (setting *n to its length), or -1
 * when the bytes are not valid UTF-8. */
long tree_utf8_decode(const unsigned char *s, size_t len, size_t *n)
{
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (k == 0 || k > len)
        return -1;
    long cp = k == 1 ? (long)c : (long)(c & (0x7F >> k));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *n = k;
    return cp;
}

bool tree_valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0, n = 1; i < len; i += n)
        if (tree_utf8_decode((const unsigned char *)s + i, len - i, &n) < 0)
            return false;
    return true;
}
