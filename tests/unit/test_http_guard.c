/* test_http_guard.c: net/http_guard.h driven by hand over socketpairs:
 * when the guard closes a connection whose request is under way it hands
 * that request to cut before the peer can see the end (so a reservation
 * is back by then), once, and never after the server said the request
 * was done. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "net/http_guard.h"

typedef struct cuts {
    atomic_int n;
    void *last;
} cuts;

static void on_cut(void *req, void *arg)
{
    cuts *c = arg;
    c->last = req;
    atomic_fetch_add(&c->n, 1);
}

static ot_http_guard *guard(unsigned max, int64_t timeout_ms, cuts *c)
{
    ot_http_guard_opts o = {.max_connections = max,
                            .request_timeout_ns = timeout_ms * 1000000,
                            .cut = on_cut,
                            .arg = c};
    ot_err err = {{0}};
    ot_http_guard *g = ot_http_guard_start(&o, &err);
    cr_assert_not_null(g, "%s", err.msg);
    return g;
}

/* Reads until the end (the guard's shutdown) or 3 s: what came. */
static size_t read_to_end(int fd, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    return n;
}

Test(http_guard, a_late_body_is_cut_before_its_peer_sees_the_end)
{
    cuts c = {0};
    ot_http_guard *g = guard(8, 200, &c);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int req;
    ot_http_gconn *gc = ot_http_guard_opened(g, sv[0]);
    ot_http_guard_begin(g, gc, &req);
    char buf[512];
    read_to_end(sv[1], buf, sizeof buf);
    /* the end was visible to the peer only after cut ran */
    cr_assert_eq(atomic_load(&c.n), 1);
    cr_assert_eq(c.last, &req);
    cr_assert(strstr(buf, "HTTP/1.1 408 "), "%s", buf);
    cr_assert(!ot_http_guard_answer(g, gc), "an answer after the guard closed it");
    /* the server reaps it later: no second cut */
    ot_http_guard_done(g, gc);
    ot_http_guard_closed(g, gc);
    cr_assert_eq(atomic_load(&c.n), 1);
    cr_assert_eq(ot_http_guard_get_stats(g).timed_out, 1);
    ot_http_guard_free(g);
    close(sv[0]);
    close(sv[1]);
}

Test(http_guard, a_request_done_in_time_is_never_cut)
{
    cuts c = {0};
    ot_http_guard *g = guard(8, 150, &c);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int req;
    ot_http_gconn *gc = ot_http_guard_opened(g, sv[0]);
    ot_http_guard_begin(g, gc, &req);
    cr_assert(ot_http_guard_answer(g, gc));
    ot_http_guard_done(g, gc);
    /* the idle connection's own deadline passes: it is closed, but no
     * request was under way */
    char buf[512];
    read_to_end(sv[1], buf, sizeof buf);
    cr_assert_eq(ot_http_guard_get_stats(g).timed_out, 1);
    cr_assert_eq(atomic_load(&c.n), 0);
    cr_assert_eq(buf[0], '\0', "an idle connection gets no 408: %s", buf);
    ot_http_guard_closed(g, gc);
    ot_http_guard_free(g);
    close(sv[0]);
    close(sv[1]);
}

Test(http_guard, evicting_an_unread_answer_cuts_its_request)
{
    cuts c = {0};
    ot_http_guard *g = guard(1, 60000, &c);
    int a[2], b[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    int req;
    ot_http_gconn *first = ot_http_guard_opened(g, a[0]);
    ot_http_guard_begin(g, first, &req);
    cr_assert(ot_http_guard_answer(g, first)); /* answered; nobody reads it */
    ot_http_gconn *second = ot_http_guard_opened(g, b[0]);
    cr_assert_eq(atomic_load(&c.n), 1);
    cr_assert_eq(c.last, &req);
    cr_assert_eq(ot_http_guard_get_stats(g).evicted, 1);
    char buf[64];
    cr_assert_eq(read_to_end(a[1], buf, sizeof buf), 0);
    ot_http_guard_done(g, first);
    ot_http_guard_closed(g, first);
    ot_http_guard_closed(g, second);
    cr_assert_eq(atomic_load(&c.n), 1);
    ot_http_guard_free(g);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}
