/* dns.h: the little of DNS (RFC 1035, AAAA from RFC 3596) the dns resolver
 * needs: one A or AAAA question over UDP to one server, and the addresses
 * in the answer. Not a general resolver: no search list, no TCP fallback
 * (a truncated answer gives the addresses it holds), no caching. Internal
 * to exporters/loadbalancing/. */
#ifndef OT_LB_DNS_H
#define OT_LB_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define LB_DNS_A 1
#define LB_DNS_AAAA 28
#define LB_DNS_MAX_ADDRS 256

typedef char lb_dns_addr[48]; /* text form, as inet_ntop writes it */

/* The query message for name (dotted, an ending dot optional): length, or
 * -1 with err when the name is not a valid DNS name or cap is too small. */
int lb_dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       ot_err *err);

/* The addresses of type qtype in the answer section of a response to
 * query id. Returns how many (0 for NXDOMAIN or no such records), or -1
 * with err for a message that is not such a response, malformed, or with
 * an error code (SERVFAIL, REFUSED, ...). */
int lb_dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, uint16_t qtype,
                          lb_dns_addr *out, size_t max, ot_err *err);

/* A and AAAA records of name at server host:port, both asked at once, each
 * answer waited for until timeout. Returns the number of addresses (A
 * first) or -1 with err when neither question got an answer. */
int lb_dns_resolve(const char *server, int port, const char *name, int64_t timeout_ns,
                   lb_dns_addr *out, size_t max, ot_err *err);

/* The first `nameserver` of a resolv.conf, or -1. */
int lb_dns_system_server(const char *resolv_conf, char *out, size_t cap);

#endif
