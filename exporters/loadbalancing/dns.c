/* dns.c: A and AAAA questions over UDP and the parse of their answers
 * (see dns.h), from RFC 1035 section 4: a 12-byte header (id, flags with
 * QR, opcode, TC, RCODE; four section counts), the question (a name as
 * length-prefixed labels, type, class), then resource records (name,
 * type, class, TTL, RDLENGTH, RDATA). Names in answers may be compressed
 * (a two-byte pointer whose top bits are 11): they are skipped, never
 * followed, so a hostile message cannot loop. */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

int lb_dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       ot_err *err)
{
    size_t nlen = strlen(name);
    if (nlen && name[nlen - 1] == '.')
        nlen--;
    if (!nlen || nlen > 253)
        return ot_err_set(err, "\"%s\" is not a DNS name", name);
    if (cap < 12 + nlen + 2 + 4)
        return ot_err_set(err, "buffer too small");
    memset(out, 0, 12);
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[2] = 0x01; /* RD: let a recursive server answer for names it does not hold */
    out[5] = 1;    /* QDCOUNT */
    size_t o = 12;
    const char *p = name, *end = name + nlen;
    while (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (l == 0 || l > 63)
            return ot_err_set(err, "\"%s\" is not a DNS name (label of %zu bytes)", name, l);
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
        if (dot && p == end)
            return ot_err_set(err, "\"%s\" is not a DNS name", name);
    }
    out[o++] = 0;
    out[o++] = (uint8_t)(qtype >> 8);
    out[o++] = (uint8_t)qtype;
    out[o++] = 0;
    out[o++] = 1; /* class IN */
    return (int)o;
}

/* Past a (possibly compressed) name at off; -1 when it runs off the end. */
static long skip_name(const uint8_t *m, size_t len, size_t off)
{
    for (int labels = 0; labels < 128; labels++) {
        if (off >= len)
            return -1;
        uint8_t b = m[off];
        if (b == 0)
            return (long)off + 1;
        if ((b & 0xc0) == 0xc0)
            return off + 2 <= len ? (long)off + 2 : -1;
        if (b & 0xc0)
            return -1; /* 01 and 10 are reserved */
        off += 1u + b;
    }
    return -1;
}

int lb_dns_parse_response(const uint8_t *m, size_t len, uint16_t id, uint16_t qtype,
                          lb_dns_addr *out, size_t max, ot_err *err)
{
    if (len < 12)
        return ot_err_set(err, "DNS message shorter than its header");
    if (get16(m) != id)
        return ot_err_set(err, "DNS answer to another question (id %u)", get16(m));
    if (!(m[2] & 0x80))
        return ot_err_set(err, "DNS message is a query, not a response");
    int rcode = m[3] & 0x0f;
    if (rcode == 3)
        return 0; /* NXDOMAIN: the name has no addresses */
    if (rcode) {
        static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                            "NOTIMP", "REFUSED"};
        return ot_err_set(err, "DNS server answered %s", rcode < 6 ? names[rcode] : "an error");
    }
    size_t qd = get16(m + 4), an = get16(m + 6), off = 12;
    for (size_t i = 0; i < qd; i++) {
        long e = skip_name(m, len, off);
        if (e < 0 || (size_t)e + 4 > len)
            return ot_err_set(err, "DNS message: question runs past the end");
        off = (size_t)e + 4;
    }
    int n = 0;
    for (size_t i = 0; i < an; i++) {
        long e = skip_name(m, len, off);
        if (e < 0 || (size_t)e + 10 > len)
            return ot_err_set(err, "DNS message: answer %zu runs past the end", i);
        off = (size_t)e;
        uint16_t type = get16(m + off), cls = get16(m + off + 2), rdlen = get16(m + off + 8);
        off += 10;
        if (off + rdlen > len)
            return ot_err_set(err, "DNS message: answer %zu data runs past the end", i);
        if (cls == 1 && type == qtype && (size_t)n < max) {
            if (type == LB_DNS_A && rdlen == 4)
                inet_ntop(AF_INET, m + off, out[n++], sizeof out[0]);
            else if (type == LB_DNS_AAAA && rdlen == 16)
                inet_ntop(AF_INET6, m + off, out[n++], sizeof out[0]);
            else
                return ot_err_set(err, "DNS message: address record of %u bytes", rdlen);
        }
        off += rdlen;
    }
    return n;
}

int lb_dns_resolve(const char *server, int port, const char *name, int64_t timeout_ns,
                   lb_dns_addr *out, size_t max, ot_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, server, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, server, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    } else {
        return ot_err_set(err, "nameserver \"%s\" is not an IP address", server);
    }
    uint8_t q[2][300];
    uint16_t ids[2];
    int qlen[2];
    static const uint16_t types[2] = {LB_DNS_A, LB_DNS_AAAA};
    uint64_t r = (uint64_t)ot_now_ns() * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 2; i++) {
        ids[i] = (uint16_t)(r >> (16 + 16 * i));
        if ((qlen[i] = lb_dns_build_query(q[i], sizeof q[i], ids[i], name, types[i], err)) < 0)
            return -1;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ot_err_set(err, "socket: %s", strerror(errno));
    /* connect: the kernel drops datagrams from anyone but the server. */
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        close(fd);
        return ot_err_set(err, "connect %s:%d: %s", server, port, strerror(errno));
    }
    for (int i = 0; i < 2; i++)
        if (send(fd, q[i], (size_t)qlen[i], 0) < 0) {
            ot_err_set(err, "send to %s:%d: %s", server, port, strerror(errno));
            close(fd);
            return -1;
        }
    lb_dns_addr got[2][LB_DNS_MAX_ADDRS];
    int ngot[2] = {-1, -1};
    int64_t deadline = ot_now_ns() + timeout_ns;
    ot_err last = {{0}};
    snprintf(last.msg, sizeof last.msg, "no answer from %s:%d in time", server, port);
    while (ngot[0] < 0 || ngot[1] < 0) {
        int64_t left = deadline - ot_now_ns();
        if (left <= 0)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)((left + 999999) / 1000000));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        uint8_t buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ot_err_set(&last, "recv from %s:%d: %s", server, port, strerror(errno));
            break; /* ECONNREFUSED: nobody listens there */
        }
        for (int i = 0; i < 2; i++)
            if (ngot[i] < 0 && n >= 2 && get16(buf) == ids[i]) {
                ot_err e = {{0}};
                int k = lb_dns_parse_response(buf, (size_t)n, ids[i], types[i], got[i],
                                              LB_DNS_MAX_ADDRS, &e);
                if (k < 0)
                    last = e;
                ngot[i] = k < 0 ? -2 : k;
            }
        if (ngot[0] == -2 || ngot[1] == -2)
            break; /* an error answer: the resolution failed */
    }
    close(fd);
    if (ngot[0] < 0 || ngot[1] < 0) {
        /* Both must answer: a lost AAAA answer must not look like "no IPv6". */
        ot_err_set(err, "%s", last.msg);
        return -1;
    }
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < ngot[i] && n < max; k++)
            memcpy(out[n++], got[i][k], sizeof out[0]);
    return (int)n;
}

int lb_dns_system_server(const char *resolv_conf, char *out, size_t cap)
{
    FILE *f = fopen(resolv_conf, "r");
    if (!f)
        return -1;
    char line[512];
    int rc = -1;
    while (rc < 0 && fgets(line, sizeof line, f)) {
        char addr[256];
        if (sscanf(line, " nameserver %255s", addr) == 1) {
            snprintf(out, cap, "%s", addr);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}
