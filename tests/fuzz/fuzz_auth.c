/* fuzz_auth.c: what the authenticators parse from outside: an
 * Authorization header's Basic credentials (any client can send one) and
 * htpasswd lines (a file an operator mounts). Beyond not crashing, a
 * decoded credential fits its buffer and is NUL-terminated where the
 * length says, every parsed user has a non-empty name without ':' or a
 * line break, and a {SHA} entry is checked against the input without
 * reading outside it. crypt_r formats are not verified here: a bcrypt
 * cost in the input could make one call take hours. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../extensions/basicauth/htpasswd.h"
#include "net/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    uint8_t out[768];
    long m = ot_auth_basic_decode(text, out, sizeof out);
    if (m >= (long)sizeof out || (m >= 0 && out[m] != '\0'))
        abort();

    ot_htpasswd_user *u = NULL;
    size_t n = 0;
    ot_err err = {{0}};
    ot_htpasswd_parse(text, "fuzz", &u, &n, &err);
    for (size_t i = 0; i < n; i++) {
        if (!u[i].name[0] || strpbrk(u[i].name, ":\r\n") || strpbrk(u[i].hash, "\r\n"))
            abort();
        if (strncmp(u[i].hash, "{SHA}", 5) == 0)
            (void)ot_htpasswd_verify(text, size, u[i].hash);
    }
    ot_htpasswd_free(u, n);
    free(text);
    return 0;
}
