/* fuzz_otlp_response.c: what a backend sends back to the otlp and otlphttp
 * exporters is outside bytes too. The first byte picks the parser:
 * google.rpc.Status as protobuf, JSON or a grpc-status-details-bin header,
 * Retry-After, partial success (protobuf or JSON, each signal), gunzip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/otlp/otlpexp.h"
#include "base/compress.h"
#include "net/http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0];
    data++;
    size--;
    char *text = malloc(size + 1); /* NUL-terminated copy for the text parsers */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    ot_grpc_status st;
    int64_t ns = 0, rejected = 0;
    char msg[128];
    ot_err err;
    switch (which % 6) {
    case 0:
        ot_grpc_status_from_pb(data, size, &st);
        break;
    case 1:
        ot_otlpexp_status_from_json(text, size, &st);
        break;
    case 2:
        ot_grpc_status_from_bin(text, size, &st);
        break;
    case 3:
        ot_http_parse_retry_after(text, 1700000000, &ns);
        break;
    case 4: {
        ot_signal s = (ot_signal)((which / 6) % OT_SIGNAL_COUNT);
        if ((which / 18) & 1)
            ot_otlpexp_partial_from_json(s, text, size, &rejected, msg, sizeof msg);
        else
            ot_otlpexp_partial_from_pb(s, data, size, &rejected, msg, sizeof msg);
        break;
    }
    case 5: {
        uint8_t *out = NULL;
        size_t out_len = 0;
        uint64_t taken = 0;
        ot_decompress(OT_COMPRESS_GZIP, data, size, 1 << 20, NULL, &taken, &out, &out_len, &err);
        free(out);
        break;
    }
    }
    free(text);
    return 0;
}
