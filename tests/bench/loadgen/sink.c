/* sink.c: `otelite-loadgen sink --http PORT`, a null OTLP/HTTP server
 * (`--grpc PORT` is its OTLP/gRPC twin, sink_grpc.c).
 * It answers every POST with 200 and an empty Export response, so the
 * generator can be measured without an agent in the way (how fast can it
 * offer load on this machine?). One thread, epoll, keep-alive. With --walk
 * it also checks each body with the agent's protobuf walker and counts
 * items, which costs time but shows the bodies are valid. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"
#include "model/pbwalk.h"

typedef struct sconn {
    struct sconn *prev, *next; /* every open connection, to free them at exit */
    int fd;
    char *buf;
    size_t len, cap;
    size_t need; /* head + body bytes of the request being read; 0 = head unknown */
    size_t head;
    bool json;
} sconn;

static volatile sig_atomic_t g_stop;
static void on_sig(int s)
{
    (void)s;
    g_stop = 1;
}

/* Rewritten while running, so a benchmark can watch delivery progress. */
void lg_sink_dump(const char *path, const lg_sink_counts *k)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "{\"requests\":%llu,\"bytes\":%llu,\"items\":%llu,\"bad\":%llu}\n",
            (unsigned long long)k->reqs, (unsigned long long)k->bytes,
            (unsigned long long)k->items, (unsigned long long)k->bad);
    fclose(f);
    rename(tmp, path);
}

static int report(const lg_sink_counts *k, const char *json_out)
{
    double secs = k->last > k->first ? (double)(k->last - k->first) / 1e9 : 0;
    printf("sink: requests %llu, bytes %llu, items %llu, bad %llu, %.0f requests/s over %.2f s\n",
           (unsigned long long)k->reqs, (unsigned long long)k->bytes,
           (unsigned long long)k->items, (unsigned long long)k->bad,
           secs > 0 ? (double)k->reqs / secs : 0, secs);
    if (json_out)
        lg_sink_dump(json_out, k);
    return 0;
}

int lg_sink_main(int argc, char **argv)
{
    int port = 0, gport = 0;
    double dur = 0;
    int walk = -1;
    const char *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--http") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--grpc") && i + 1 < argc)
            gport = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
            dur = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json-out") && i + 1 < argc)
            json_out = argv[++i];
        else if (!strcmp(argv[i], "--walk") && i + 1 < argc)
            walk = ot_signal_parse(argv[i + 1], strlen(argv[i + 1])), i++;
        else
            return fprintf(stderr, "usage: otelite-loadgen sink --http PORT | --grpc PORT [--duration SECONDS] [--walk traces|metrics|logs] [--json-out FILE]\n"), 2;
    }
    bool grpc = gport != 0;
    if (grpc)
        port = gport;
    if (port <= 0 || port > 65535)
        return fprintf(stderr, "otelite-loadgen sink: --http PORT or --grpc PORT is required\n"), 2;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0) {
        fprintf(stderr, "otelite-loadgen sink: 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "sink: listening on 127.0.0.1:%d%s\n", port, grpc ? " (gRPC)" : "");
    lg_sink_counts k = {.walk = walk};
    if (grpc) {
        lg_sink_grpc_run(ls, &k, &g_stop, dur, json_out);
        close(ls);
        return report(&k, json_out);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    uint64_t reqs = 0, bytes = 0, items = 0, bad = 0;
    int64_t t0 = lg_now(), first = 0, last = 0, dumped = 0;
    static const char ok_pb[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
    static const char ok_js[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    static const char bad_rq[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    struct epoll_event evs[64];
    sconn *conns = NULL;
    while (!g_stop && (dur <= 0 || lg_now() - t0 < (int64_t)(dur * 1e9))) {
        int n = epoll_wait(ep, evs, 64, 100);
        if (json_out && lg_now() - dumped > 200000000) {
            k = (lg_sink_counts){reqs, bytes, items, bad, first, last, walk};
            lg_sink_dump(json_out, &k);
            dumped = lg_now();
        }
        for (int i = 0; i < n; i++) {
            sconn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    sconn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->next = conns;
                    if (conns)
                        conns->prev = nc;
                    conns = nc;
                    nc->cap = 1 << 16;
                    nc->buf = malloc(nc->cap);
                    struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                }
                continue;
            }
            bool closed = false;
            for (;;) {
                if (c->len == c->cap) {
                    c->cap *= 2;
                    c->buf = realloc(c->buf, c->cap);
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r <= 0) {
                    closed = true;
                    break;
                }
                c->len += (size_t)r;
                bytes += (uint64_t)r;
                for (;;) { /* every complete request in the buffer */
                    if (!c->need) {
                        char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
                        if (!e)
                            break;
                        c->head = (size_t)(e - c->buf) + 4;
                        char *cl = NULL;
                        bool cont = false;
                        for (char *l = c->buf; l && l < e; l = memchr(l, '\n', (size_t)(e - l))) {
                            if (*l == '\n')
                                l++;
                            if (!strncasecmp(l, "content-length:", 15))
                                cl = l + 15;
                            if (!strncasecmp(l, "expect:", 7))
                                cont = true;
                            if (!strncasecmp(l, "content-type:", 13))
                                c->json = memmem(l, (size_t)(e - l) < 64 ? (size_t)(e - l) : 64,
                                                 "json", 4) != NULL;
                        }
                        if (!cl) {
                            bad++;
                            ssize_t wr = write(c->fd, bad_rq, sizeof bad_rq - 1);
                            (void)wr;
                            closed = true;
                            break;
                        }
                        c->need = c->head + (size_t)strtoull(cl, NULL, 10);
                        if (cont) { /* the client waits for this before the body */
                            static const char c100[] = "HTTP/1.1 100 Continue\r\n\r\n";
                            ssize_t wr = write(c->fd, c100, sizeof c100 - 1);
                            (void)wr;
                        }
                    }
                    if (c->len < c->need)
                        break;
                    if (walk >= 0 && !c->json) {
                        size_t it = 0;
                        ot_err err = {{0}};
                        if (ot_pbwalk((ot_signal)walk, c->buf + c->head, c->need - c->head, &it, &err) < 0)
                            bad++;
                        items += it;
                    }
                    reqs++;
                    last = lg_now();
                    if (!first)
                        first = last;
                    const char *resp = c->json ? ok_js : ok_pb;
                    size_t rl = c->json ? sizeof ok_js - 1 : sizeof ok_pb - 1;
                    if (write(c->fd, resp, rl) != (ssize_t)rl) {
                        closed = true;
                        break;
                    }
                    memmove(c->buf, c->buf + c->need, c->len - c->need);
                    c->len -= c->need;
                    c->need = 0;
                }
                if (closed)
                    break;
            }
            if (closed) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                if (c->prev)
                    c->prev->next = c->next;
                else
                    conns = c->next;
                if (c->next)
                    c->next->prev = c->prev;
                free(c->buf);
                free(c);
            }
        }
    }
    while (conns) {
        sconn *c = conns;
        conns = c->next;
        close(c->fd);
        free(c->buf);
        free(c);
    }
    close(ls);
    close(ep);
    k = (lg_sink_counts){reqs, bytes, items, bad, first, last, walk};
    return report(&k, json_out);
}
