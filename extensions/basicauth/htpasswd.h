/* htpasswd.h: the htpasswd lines of the basicauth extension, parsed and
 * checked apart from the extension so the fuzz target can reach them. */
#ifndef OT_HTPASSWD_H
#define OT_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct ot_htpasswd_user {
    char *name, *hash;
} ot_htpasswd_user;

/* Appends the users of text ("user:hash" lines; blank and # lines left
 * out) to *u / *n; -1 with err "WHERE line N: ..." on a line that is not
 * user:hash or whose hash format is not supported (what was added so far
 * stays in *u for the caller to free). */
int ot_htpasswd_parse(const char *text, const char *where, ot_htpasswd_user **u, size_t *n,
                      ot_err *err);
void ot_htpasswd_free(ot_htpasswd_user *u, size_t n);
/* Whether pass matches hash ({SHA} or a crypt_r format), compared in
 * constant time. */
bool ot_htpasswd_verify(const char *pass, size_t pl, const char *hash);

#endif
