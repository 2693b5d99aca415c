/* snappy_load.c: libsnappy opened on first use instead of linked (see
 * dlib.h): linked, it brings the C++ runtime (libstdc++, libgcc_s) into
 * every agent, though only prometheusremotewrite compresses with it. The
 * functions carry snappy-c.h's names and prototypes and forward to the
 * library, which they open the first time. */
#include <snappy-c.h>

#include "base/dlib.h"

#define SNAPPY_SYMS(X)                                                                        \
    X(snappy_compress)                                                                        \
    X(snappy_uncompress)                                                                      \
    X(snappy_max_compressed_length)                                                           \
    X(snappy_uncompressed_length)

OT_DLIB_DEFINE("libsnappy.so.1", SNAPPY_SYMS);
#define REAL OT_DLIB_REAL
#define LOADED OT_DLIB_LOADED

snappy_status snappy_compress(const char *input, size_t input_length, char *compressed,
                              size_t *compressed_length)
{
    return LOADED() ? REAL(snappy_compress)(input, input_length, compressed, compressed_length)
                    : SNAPPY_INVALID_INPUT;
}

snappy_status snappy_uncompress(const char *compressed, size_t compressed_length,
                                char *uncompressed, size_t *uncompressed_length)
{
    return LOADED() ? REAL(snappy_uncompress)(compressed, compressed_length, uncompressed,
                                              uncompressed_length)
                    : SNAPPY_INVALID_INPUT;
}

size_t snappy_max_compressed_length(size_t source_length)
{
    /* snappy's own bound, so a caller sizing a buffer never gets 0 */
    return LOADED() ? REAL(snappy_max_compressed_length)(source_length)
                    : 32 + source_length + source_length / 6;
}

snappy_status snappy_uncompressed_length(const char *compressed, size_t compressed_length,
                                         size_t *result)
{
    return LOADED() ? REAL(snappy_uncompressed_length)(compressed, compressed_length, result)
                    : SNAPPY_INVALID_INPUT;
}
