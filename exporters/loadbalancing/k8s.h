/* k8s.h: the EndpointSlices of one Service as the k8s resolver keeps them:
 * the answer to a list (an EndpointSliceList) and the events of a watch
 * (one JSON object a line: {"type", "object"}) turned into the set of
 * ready addresses, from the discovery.k8s.io/v1 API. Apart from k8s.c (the
 * HTTP side) so the parser of the API server's bytes can be fuzzed alone.
 * Internal to exporters/loadbalancing/. */
#ifndef OT_LB_K8S_H
#define OT_LB_K8S_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct lb_k8s_slice {
    char *name;
    char **addrs; /* ready endpoints' addresses */
    size_t n;
} lb_k8s_slice;

typedef struct lb_k8s_state {
    lb_k8s_slice *slices;
    size_t n, cap;
    char rv[128]; /* the resourceVersion to watch from */
} lb_k8s_state;

/* Replaces the state with the slices of a list answer. -1 with err when
 * the body is not an EndpointSliceList. */
int lb_k8s_apply_list(lb_k8s_state *st, const char *body, size_t len, ot_err *err);

enum { LB_K8S_SAME = 0, LB_K8S_CHANGED = 1, LB_K8S_RELIST = 2 };
/* Applies one watch event line: LB_K8S_CHANGED when the addresses may have
 * changed, LB_K8S_SAME (bookmarks, nothing new), LB_K8S_RELIST (an ERROR
 * event such as 410 Gone: list again), -1 with err for a line that is not
 * an event. */
int lb_k8s_apply_event(lb_k8s_state *st, const char *line, size_t len, ot_err *err);

/* "addr:port" for every address (deduplicated, sorted) and port: a
 * malloc'd array of malloc'd strings, *n of them; NULL on out of memory. */
char **lb_k8s_endpoints(const lb_k8s_state *st, const char *const *ports, size_t nports,
                        size_t *n);
void lb_k8s_endpoints_free(char **v, size_t n);
void lb_k8s_state_free(lb_k8s_state *st);

#endif
