/* write.c: a tree back to YAML, as block YAML that loads back to the same
 * tree, with secrets redacted on request: print-config shows it and
 * reloads compare it. Apart because nothing that loads a config writes one. */
#include "config/tree_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"

/* ---- writing --------------------------------------------------------------- */

/* What YAML lets stand unescaped: printable, and not a line break or BOM
 * (NEL, LS, PS) that a reader would turn into something else. */
static bool printable(long cp)
{
    return (cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xD7FF && cp != 0x2028 && cp != 0x2029) ||
           (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* Whether s can be written without quotes and read back as the same text
 * (conservative: anything doubtful is quoted). */
static bool plain_ok(const char *s, size_t len, bool is_key)
{
    if (len == 0 || (!is_key && tree_null_word(s, len)))
        return false;
    if (strchr("?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[len - 1] == ' ' || s[len - 1] == ':')
        return false;
    if (s[0] == '-' && (len == 1 || s[1] == ' ' || (len >= 3 && s[1] == '-' && s[2] == '-')))
        return false;
    if (len >= 3 && memcmp(s, "...", 3) == 0)
        return false;
    for (size_t i = 0; i < len;) {
        size_t n = 1;
        long cp = tree_utf8_decode((const unsigned char *)s + i, len - i, &n);
        if (cp < 0 || !printable(cp))
            return false;
        if ((s[i] == ':' && i + 1 < len && s[i + 1] == ' ') || (s[i] == '#' && i > 0 && s[i - 1] == ' '))
            return false;
        i += n;
    }
    return true;
}

static void write_quoted(FILE *o, const char *s, size_t len)
{
    fputc('"', o);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\0': esc = "\\0"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case 0x1b: esc = "\\e"; break;
        default: break;
        }
        if (esc) {
            fputs(esc, o);
            i++;
            continue;
        }
        long cp = tree_utf8_decode((const unsigned char *)s + i, len - i, &n);
        if (cp >= 0 && printable(cp))
            fwrite(s + i, 1, n, o);
        else if (cp < 0) /* not UTF-8: the byte as a code point */
            fprintf(o, "\\x%02X", c);
        else if (cp <= 0xFF)
            fprintf(o, "\\x%02lX", cp);
        else
            fprintf(o, "\\u%04lX", cp);
        i += n;
    }
    fputc('"', o);
}

static void write_scalar(FILE *o, const ot_node *n, bool is_key)
{
    const char *s = n->str;
    size_t len = n->len;
    ot_buf b = OT_BUF_INIT;
    if (!is_key && memchr(s, '$', len)) { /* values are expanded on load: $ must read back as $ */
        for (size_t i = 0; i < len; i++)
            ot_buf_append(&b, s[i] == '$' ? "$$" : s + i, s[i] == '$' ? 2 : 1);
        if (!b.oom) {
            s = b.data;
            len = b.len;
        }
    }
    if (!n->quoted && plain_ok(s, len, is_key))
        fwrite(s, 1, len, o);
    else
        write_quoted(o, s, len);
    ot_buf_free(&b);
}

static bool secret_key(const ot_node *k)
{
    static const char *const words[] = {"key", "token", "password", "secret"};
    for (size_t w = 0; w < 4; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= k->len; i++)
            if (strncasecmp(k->str + i, words[w], wl) == 0)
                return true;
    }
    return false;
}

static bool is_block(const ot_node *n)
{
    return (n->kind == OT_NODE_MAP || n->kind == OT_NODE_SEQ) && n->n > 0;
}

static void write_inline(FILE *o, const ot_node *n)
{
    if (n->kind == OT_NODE_SCALAR)
        write_scalar(o, n, false);
    else
        fputs(n->kind == OT_NODE_MAP ? "{}" : n->kind == OT_NODE_SEQ ? "[]" : "null", o);
}

/* inl: the first line continues one already started ("- "). */
static void write_block(FILE *o, const ot_node *n, int ind, bool inl, bool redact)
{
    for (size_t i = 0; i < n->n; i++) {
        if (i || !inl)
            fprintf(o, "%*s", ind, "");
        const ot_node *v = n->vals[i];
        if (n->kind == OT_NODE_MAP) {
            write_scalar(o, n->keys[i], true);
            fputc(':', o);
            if (redact && v->kind != OT_NODE_NULL && secret_key(n->keys[i])) {
                fputs(" \"[REDACTED]\"\n", o);
            } else if (v->kind == OT_NODE_NULL) {
                fputc('\n', o);
            } else if (is_block(v)) {
                fputc('\n', o);
                write_block(o, v, ind + 2, false, redact);
            } else {
                fputc(' ', o);
                write_inline(o, v);
                fputc('\n', o);
            }
        } else {
            fputs("- ", o);
            if (is_block(v)) {
                write_block(o, v, ind + 2, true, redact);
            } else {
                write_inline(o, v);
                fputc('\n', o);
            }
        }
    }
}

void ot_node_write_yaml(const ot_node *n, bool redact, FILE *out)
{
    if (n && is_block(n)) {
        write_block(out, n, 0, false, redact);
    } else {
        if (n)
            write_inline(out, n);
        else
            fputs("null", out);
        fputc('\n', out);
    }
}

char *ot_node_to_yaml(const ot_node *n, bool redact)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    ot_node_write_yaml(n, redact, f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
