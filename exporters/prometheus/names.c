/* names.c: what only the text formats of a scrape need beyond the shared
 * name translation (store/promname.h): escaping label values and HELP. */
#include "prom.h"

void pm_escape(ot_buf *out, const char *p, size_t n, bool help)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        if (p[i] == '\\')
            rep = "\\\\";
        else if (p[i] == '\n')
            rep = "\\n";
        else if (p[i] == '"' && !help)
            rep = "\\\"";
        if (rep) {
            ot_buf_append(out, p + s, i - s);
            ot_buf_puts(out, rep);
            s = i + 1;
        }
    }
    ot_buf_append(out, p + s, n - s);
}
