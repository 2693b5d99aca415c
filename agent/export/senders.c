/* senders.c: an exporter's helper and its pool of sender contexts (see
 * senders.h). The pool is a list under a mutex: it is touched twice per
 * attempt, by at most num_consumers threads, so a lock is cheap enough. */
#include "export/senders.h"

#include <stdio.h>
#include <stdlib.h>

/* A context with the pool's link in front of it; the exporter sees ctx. */
typedef struct ot_senders_node {
    struct ot_senders_node *next;
    max_align_t ctx[];
} ot_senders_node;

static ot_senders_node *node_of(void *ctx)
{
    return (ot_senders_node *)((char *)ctx - offsetof(ot_senders_node, ctx));
}

static void node_free(const ot_senders_ops *ops, ot_senders_node *n)
{
    ops->fini(n->ctx);
    free(n);
}

void ot_senders_init(ot_senders *s, const ot_senders_ops *ops)
{
    s->exph = NULL;
    s->ops = ops;
    s->pool = NULL;
    pthread_mutex_init(&s->mu, NULL);
}

int ot_senders_start(ot_senders *s, const char *id, const ot_exph_config *cfg, ot_send_fn send,
                     void *exporter, ot_segment_log *log, ot_err *err)
{
    s->exph = ot_exph_new(id, cfg, send, exporter, log, err);
    if (!s->exph || ot_exph_start(s->exph, err) < 0)
        return -1;
    return 0;
}

bool ot_senders_running(const ot_senders *s, const char *id, ot_batch *b, ot_err *err)
{
    if (s->exph)
        return true;
    ot_batch_unref(b);
    ot_err_set(err, "exporter %s is not running", id);
    return false;
}

void ot_senders_shutdown(ot_senders *s, int64_t deadline_ns)
{
    if (s->exph)
        ot_exph_shutdown(s->exph, deadline_ns);
}

void ot_senders_fini(ot_senders *s)
{
    ot_exph_free(s->exph);
    s->exph = NULL;
    while (s->pool) {
        ot_senders_node *n = s->pool;
        s->pool = n->next;
        node_free(s->ops, n);
    }
    pthread_mutex_destroy(&s->mu);
}

void *ot_senders_borrow(ot_senders *s, ot_send_result *out)
{
    pthread_mutex_lock(&s->mu);
    ot_senders_node *n = s->pool;
    if (n)
        s->pool = n->next;
    pthread_mutex_unlock(&s->mu);
    if (n)
        return n->ctx;
    n = calloc(1, offsetof(ot_senders_node, ctx) + s->ops->size);
    if (n && s->ops->init && s->ops->init(n->ctx) < 0) {
        node_free(s->ops, n);
        n = NULL;
    }
    if (!n) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "out of memory");
        return NULL;
    }
    return n->ctx;
}

void ot_senders_return(ot_senders *s, void *ctx)
{
    ot_senders_node *n = node_of(ctx);
    if (s->ops->trim && !s->ops->trim(ctx)) {
        node_free(s->ops, n);
        return;
    }
    pthread_mutex_lock(&s->mu);
    n->next = s->pool;
    s->pool = n;
    pthread_mutex_unlock(&s->mu);
}
