/* k8s_parse.c: EndpointSlice lists and watch events into the set of ready
 * addresses of a Service (see k8s.h). Fields used, from discovery.k8s.io/v1:
 * metadata.name and metadata.resourceVersion; endpoints[].addresses[];
 * endpoints[].conditions.ready (absent means ready, as the API says
 * consumers should take an unknown state); addressType FQDN slices are
 * skipped (their addresses are names, not the pods'). */
#include "k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static void slice_free(lb_k8s_slice *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->addrs[i]);
    free(s->addrs);
    free(s->name);
    memset(s, 0, sizeof *s);
}

void lb_k8s_state_free(lb_k8s_state *st)
{
    for (size_t i = 0; i < st->n; i++)
        slice_free(&st->slices[i]);
    free(st->slices);
    memset(st, 0, sizeof *st);
}

static void set_rv(lb_k8s_state *st, json_t *meta)
{
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (rv && strlen(rv) < sizeof st->rv)
        snprintf(st->rv, sizeof st->rv, "%s", rv);
}

/* One EndpointSlice object into *out. -1 when it is not one. */
static int parse_slice(json_t *o, lb_k8s_slice *out, ot_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *meta = json_object_get(o, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!json_is_object(o) || !name)
        return ot_err_set(err, "an EndpointSlice without metadata.name");
    const char *type = json_string_value(json_object_get(o, "addressType"));
    if (!(out->name = strdup(name)))
        return ot_err_set(err, "out of memory");
    if (type && !strcmp(type, "FQDN"))
        return 0;
    json_t *eps = json_object_get(o, "endpoints");
    size_t i, cap = 0;
    json_t *ep;
    json_array_foreach(eps, i, ep)
    {
        json_t *ready = json_object_get(json_object_get(ep, "conditions"), "ready");
        if (json_is_false(ready))
            continue;
        json_t *addrs = json_object_get(ep, "addresses"), *a;
        size_t j;
        json_array_foreach(addrs, j, a)
        {
            const char *s = json_string_value(a);
            if (!s || !*s || strlen(s) > 253 || strpbrk(s, " /\"\\[]"))
                continue;
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 4;
                char **nv = realloc(out->addrs, nc * sizeof *nv);
                if (!nv) {
                    slice_free(out);
                    return ot_err_set(err, "out of memory");
                }
                out->addrs = nv;
                cap = nc;
            }
            if (!(out->addrs[out->n] = strdup(s))) {
                slice_free(out);
                return ot_err_set(err, "out of memory");
            }
            out->n++;
        }
    }
    return 0;
}

static long find(const lb_k8s_state *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->slices[i].name, name))
            return (long)i;
    return -1;
}

/* Puts s in (replacing one of the same name); takes it. */
static int put(lb_k8s_state *st, lb_k8s_slice *s, ot_err *err)
{
    long i = find(st, s->name);
    if (i >= 0) {
        slice_free(&st->slices[i]);
        st->slices[i] = *s;
        return 0;
    }
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 4;
        lb_k8s_slice *nv = realloc(st->slices, nc * sizeof *nv);
        if (!nv) {
            slice_free(s);
            return ot_err_set(err, "out of memory");
        }
        st->slices = nv;
        st->cap = nc;
    }
    st->slices[st->n++] = *s;
    return 0;
}

int lb_k8s_apply_list(lb_k8s_state *st, const char *body, size_t len, ot_err *err)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    if (!doc)
        return ot_err_set(err, "EndpointSliceList: %s", je.text);
    json_t *items = json_object_get(doc, "items");
    if (!json_is_object(doc) || !json_is_array(items)) {
        json_decref(doc);
        return ot_err_set(err, "not an EndpointSliceList (no items)");
    }
    lb_k8s_state fresh = {0};
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        lb_k8s_slice s;
        if (parse_slice(it, &s, err) < 0 || put(&fresh, &s, err) < 0) {
            lb_k8s_state_free(&fresh);
            json_decref(doc);
            return -1;
        }
    }
    set_rv(&fresh, json_object_get(doc, "metadata"));
    json_decref(doc);
    lb_k8s_state_free(st);
    *st = fresh;
    return 0;
}

int lb_k8s_apply_event(lb_k8s_state *st, const char *line, size_t len, ot_err *err)
{
    json_error_t je;
    json_t *doc = json_loadb(line, len, 0, &je);
    if (!doc)
        return ot_err_set(err, "watch event: %s", je.text);
    const char *type = json_string_value(json_object_get(doc, "type"));
    json_t *obj = json_object_get(doc, "object");
    int rc = -1;
    if (!type || !json_is_object(obj)) {
        ot_err_set(err, "watch event without type or object");
    } else if (!strcmp(type, "ERROR")) {
        rc = LB_K8S_RELIST;
    } else if (!strcmp(type, "BOOKMARK")) {
        set_rv(st, json_object_get(obj, "metadata"));
        rc = LB_K8S_SAME;
    } else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
        lb_k8s_slice s;
        if (parse_slice(obj, &s, err) == 0) {
            set_rv(st, json_object_get(obj, "metadata"));
            if (!strcmp(type, "DELETED")) {
                long i = find(st, s.name);
                if (i >= 0) {
                    slice_free(&st->slices[i]);
                    st->slices[i] = st->slices[--st->n];
                }
                slice_free(&s);
                rc = LB_K8S_CHANGED;
            } else {
                rc = put(st, &s, err) < 0 ? -1 : LB_K8S_CHANGED;
            }
        }
    } else {
        ot_err_set(err, "watch event of unknown type \"%.40s\"", type);
    }
    json_decref(doc);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **lb_k8s_endpoints(const lb_k8s_state *st, const char *const *ports, size_t nports,
                        size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < st->n; i++)
        total += st->slices[i].n;
    char **v = calloc(total * nports + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < st->n; i++)
        for (size_t j = 0; j < st->slices[i].n; j++)
            for (size_t p = 0; p < nports; p++) {
                const char *a = st->slices[i].addrs[j];
                size_t cap = strlen(a) + strlen(ports[p]) + 4;
                if (!(v[k] = malloc(cap))) {
                    lb_k8s_endpoints_free(v, k);
                    return NULL;
                }
                snprintf(v[k++], cap, strchr(a, ':') ? "[%s]:%s" : "%s:%s", a, ports[p]);
            }
    qsort(v, k, sizeof *v, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m && !strcmp(v[m - 1], v[i])) {
            free(v[i]);
            continue;
        }
        v[m++] = v[i];
    }
    *n = m;
    return v;
}

void lb_k8s_endpoints_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}
