/* fuzz_lb_dns.c: the loadbalancing exporter's DNS answer parser gets what
 * any host on the path can send: it must never read outside the message,
 * never return more addresses than asked, and every address it returns must
 * be text an IP parser reads back. The input is the response; its own id
 * is taken as the question's so that the sections are reached. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/loadbalancing/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_dns_addr out[4];
    ot_err err;
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    for (int t = 0; t < 2; t++) {
        uint16_t qt = t ? LB_DNS_AAAA : LB_DNS_A;
        int n = lb_dns_parse_response(data, size, id, qt, out, 4, &err);
        if (n > 4)
            abort();
        for (int i = 0; i < n; i++) {
            uint8_t bin[16];
            if (inet_pton(t ? AF_INET6 : AF_INET, out[i], bin) != 1)
                abort();
        }
    }
    return 0;
}
