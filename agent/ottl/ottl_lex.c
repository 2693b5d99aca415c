/* ottl_lex.c: the OTTL lexer, and the decoding of string and byte
 * literals into the condition's arena (Go escapes, as OTTL takes them).
 * Apart from the parser because it only turns text into tokens and bytes
 * and knows nothing of the grammar. */
#include "ottl/ottl_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/codec.h"

void ottl_fail(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->err->offset = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
}


static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

void ottl_lex(parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, n = p->n;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    token t = {TK_EOF, i, 0, 0};
    if (i >= n) {
        p->tok = t;
        p->pos = i;
        return;
    }
    char c = s[i];
    size_t j = i + 1;
    switch (c) {
    case '(': t.k = TK_LPAREN; break;
    case ')': t.k = TK_RPAREN; break;
    case '[': t.k = TK_LBRACK; break;
    case ']': t.k = TK_RBRACK; break;
    case ',': t.k = TK_COMMA; break;
    case '=':
    case '!':
    case '<':
    case '>':
        if (j < n && s[j] == '=') {
            t.k = TK_OP;
            t.op = c == '=' ? OP_EQ : c == '!' ? OP_NE : c == '<' ? OP_LE : OP_GE;
            j++;
        } else if (c == '<' || c == '>') {
            t.k = TK_OP;
            t.op = c == '<' ? OP_LT : OP_GT;
        } else {
            t.k = TK_BAD;
        }
        break;
    case '"':
        t.k = TK_STR;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < n)
                j++;
            j++;
        }
        if (j >= n) {
            t.k = TK_BAD; /* the parser says "unterminated string" */
            j = n;
        } else {
            j++;
        }
        break;
    default:
        if (ident_start(c)) {
            while (j < n && ident_char(s[j]))
                j++;
            t.k = TK_IDENT;
        } else if (isdigit((unsigned char)c) || c == '.' || c == '+' || c == '-') {
            size_t k = i;
            if (c == '+' || c == '-')
                k++;
            if (c == '.' && !(k + 1 < n && isdigit((unsigned char)s[k + 1]))) {
                t.k = TK_DOT;
                break;
            }
            if (k < n && s[k] == '0' && k + 1 < n && (s[k + 1] == 'x' || s[k + 1] == 'X') &&
                k == i) {
                k += 2;
                while (k < n && isxdigit((unsigned char)s[k]))
                    k++;
                t.k = TK_BYTES;
            } else {
                bool digits = false, flt = false;
                while (k < n && isdigit((unsigned char)s[k]))
                    k++, digits = true;
                if (k < n && s[k] == '.') {
                    flt = true;
                    k++;
                    while (k < n && isdigit((unsigned char)s[k]))
                        k++, digits = true;
                }
                if (digits && k < n && (s[k] == 'e' || s[k] == 'E')) {
                    size_t e = k + 1;
                    if (e < n && (s[e] == '+' || s[e] == '-'))
                        e++;
                    if (e < n && isdigit((unsigned char)s[e])) {
                        while (e < n && isdigit((unsigned char)s[e]))
                            e++;
                        k = e;
                        flt = true;
                    }
                }
                t.k = !digits ? TK_BAD : flt ? TK_FLOAT : TK_INT;
            }
            /* "12abc" or "1.5.3" is one bad token, not two good ones. */
            if (t.k != TK_BAD && k < n && (ident_char(s[k]) || s[k] == '.')) {
                t.k = TK_BAD;
                while (k < n && (ident_char(s[k]) || s[k] == '.'))
                    k++;
            }
            j = k > i ? k : i + 1;
        } else {
            t.k = TK_BAD;
            if ((c == '&' || c == '|') && j < n && s[j] == c)
                j++;
            else {
                /* one whole UTF-8 character, so the message shows it */
                while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
                    j++;
            }
        }
    }
    t.len = j - i;
    p->tok = t;
    p->pos = j;
}

/* ---- literals ----------------------------------------------------------- */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string token at p->tok (Go escapes, as OTTL takes them). */
bool ottl_decode_str(parser *p, const char **out, size_t *outlen)
{
    const char *s = p->s + p->tok.pos + 1;
    size_t n = p->tok.len - 2;
    char *o = ot_arena_alloc(p->a, n + 1);
    if (!o) {
        ottl_fail(p, p->tok.pos, "out of memory");
        return false;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[w++] = s[i];
            continue;
        }
        size_t at = p->tok.pos + 1 + i;
        char e = s[++i];
        int digits = 0;
        switch (e) {
        case 'a': o[w++] = '\a'; break;
        case 'b': o[w++] = '\b'; break;
        case 'f': o[w++] = '\f'; break;
        case 'n': o[w++] = '\n'; break;
        case 'r': o[w++] = '\r'; break;
        case 't': o[w++] = '\t'; break;
        case 'v': o[w++] = '\v'; break;
        case '\\': o[w++] = '\\'; break;
        case '"': o[w++] = '"'; break;
        case '\'': o[w++] = '\''; break;
        case '/': o[w++] = '/'; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                if (i + 2 < n && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' &&
                    s[i + 2] <= '7' && e <= '3') {
                    o[w++] = (char)((e - '0') * 64 + (s[i + 1] - '0') * 8 + (s[i + 2] - '0'));
                    i += 2;
                    break;
                }
            }
            ottl_fail(p, at, "invalid escape \"\\%c\" in string", e);
            return false;
        }
        if (digits) {
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? ot_hex_digit((unsigned char)s[i + 1 + k]) : -1;
                if (h < 0) {
                    ottl_fail(p, at, "invalid escape in string: \\%c needs %d hex digits", e, digits);
                    return false;
                }
                cp = cp * 16 + (uint32_t)h;
            }
            i += (size_t)digits;
            if (e == 'x') {
                o[w++] = (char)cp;
            } else {
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    ottl_fail(p, at, "invalid escape in string: U+%04" PRIX32 " is not a character",
                         cp);
                    return false;
                }
                /* at most 4 bytes out for at least 6 in */
                w += put_utf8(o + w, cp);
            }
        }
    }
    o[w] = '\0';
    *out = o;
    *outlen = w;
    return true;
}

bool ottl_decode_hex(parser *p, const char *s, size_t n, size_t pos, const char **out,
                       size_t *outlen)
{
    if (n % 2) {
        ottl_fail(p, pos, "a byte string needs an even number of hex digits, found %zu", n);
        return false;
    }
    uint8_t *o = ot_arena_alloc(p->a, n / 2 + 1);
    if (!o) {
        ottl_fail(p, pos, "out of memory");
        return false;
    }
    size_t good = ot_hex_decode(s, n, o);
    if (good != n / 2) {
        ottl_fail(p, pos, "expected hex digits, found \"%.*s\"", 2, s + 2 * good);
        return false;
    }
    *out = (const char *)o;
    *outlen = n / 2;
    return true;
}

