/* fuzz_lb_endpointslice.c: the k8s resolver's reader of what the API server
 * sends: the input is tried as an EndpointSliceList, then each of its
 * lines as a watch event on that state. Nothing may crash or leak, and the
 * endpoints made from the state must come out sorted, without duplicates,
 * each "address:port". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/loadbalancing/k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_k8s_state st = {0};
    ot_err err;
    const char *text = (const char *)data;
    lb_k8s_apply_list(&st, text, size, &err);
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(text + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - text) : size;
        lb_k8s_apply_event(&st, text + i, end - i, &err);
        i = end + 1;
    }
    static const char *const ports[] = {"4317", "55680"};
    size_t n = 0;
    char **eps = lb_k8s_endpoints(&st, ports, 2, &n);
    for (size_t i = 0; eps && i < n; i++) {
        if (!strrchr(eps[i], ':'))
            abort();
        if (i && strcmp(eps[i - 1], eps[i]) >= 0)
            abort();
    }
    lb_k8s_endpoints_free(eps, n);
    lb_k8s_state_free(&st);
    return 0;
}
