/* curl_load.c: libcurl opened on first use instead of linked (see
 * base/dlib.h for why). The functions below carry libcurl's own names and
 * prototypes (checked against <curl/curl.h>), so http_client.c calls them
 * as if libcurl were linked; each opens the library the first time and
 * forwards. Only the calls the agent makes are here: a new one fails the
 * link until it is added. curl_easy_setopt and curl_easy_getinfo take one
 * variable argument whose type libcurl derives from the option number, and
 * so does the forwarding below. */
#include <curl/curl.h>
#include <stdarg.h>

#include "base/dlib.h"

#define CURL_SYMS(X)                                                                          \
    X(curl_global_init)                                                                       \
    X(curl_easy_init)                                                                         \
    X(curl_easy_setopt)                                                                       \
    X(curl_easy_perform)                                                                      \
    X(curl_easy_getinfo)                                                                      \
    X(curl_easy_header)                                                                       \
    X(curl_easy_cleanup)                                                                      \
    X(curl_easy_strerror)                                                                     \
    X(curl_slist_append)                                                                      \
    X(curl_slist_free_all)

OT_DLIB_DEFINE("libcurl.so.4", CURL_SYMS);
#define REAL OT_DLIB_REAL
#define LOADED OT_DLIB_LOADED

/* Names in parentheses: curl.h may define function-like macros of them. */
CURLcode(curl_global_init)(long flags)
{
    return LOADED() ? REAL(curl_global_init)(flags) : CURLE_FAILED_INIT;
}

CURL *(curl_easy_init)(void)
{
    return LOADED() ? REAL(curl_easy_init)() : NULL;
}

CURLcode(curl_easy_setopt)(CURL *curl, CURLoption option, ...)
{
    if (!LOADED())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT)
        rc = REAL(curl_easy_setopt)(curl, option, va_arg(ap, long));
    else if (option < CURLOPTTYPE_FUNCTIONPOINT)
        rc = REAL(curl_easy_setopt)(curl, option, va_arg(ap, void *));
    else if (option < CURLOPTTYPE_OFF_T)
        rc = REAL(curl_easy_setopt)(curl, option, va_arg(ap, void (*)(void)));
    else if (option < CURLOPTTYPE_BLOB)
        rc = REAL(curl_easy_setopt)(curl, option, va_arg(ap, curl_off_t));
    else
        rc = REAL(curl_easy_setopt)(curl, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode(curl_easy_perform)(CURL *curl)
{
    return LOADED() ? REAL(curl_easy_perform)(curl) : CURLE_FAILED_INIT;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode(curl_easy_getinfo)(CURL *curl, CURLINFO info, ...)
{
    if (!LOADED())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = REAL(curl_easy_getinfo)(curl, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLHcode(curl_easy_header)(CURL *easy, const char *name, size_t index, unsigned int origin,
                            int request, struct curl_header **hout)
{
    return LOADED() ? REAL(curl_easy_header)(easy, name, index, origin, request, hout)
                    : CURLHE_NOT_BUILT_IN;
}

void(curl_easy_cleanup)(CURL *curl)
{
    if (LOADED())
        REAL(curl_easy_cleanup)(curl);
}

const char *(curl_easy_strerror)(CURLcode code)
{
    return LOADED() ? REAL(curl_easy_strerror)(code) : "libcurl.so.4 cannot be loaded";
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *s)
{
    return LOADED() ? REAL(curl_slist_append)(list, s) : NULL;
}

void(curl_slist_free_all)(struct curl_slist *list)
{
    if (LOADED())
        REAL(curl_slist_free_all)(list);
}
