/* k8s.h: Kubernetes attributes from /var/log/pods paths (k8s.c). */
#ifndef JL_K8S_H
#define JL_K8S_H

#include <stddef.h>

#include "jl.h"

typedef struct jl_k8s {
    const char *ns, *pod, *uid, *container; /* slices of the path */
    size_t ns_len, pod_len, uid_len, container_len;
    long restart; /* -1 when the file name is not <n>.log */
} jl_k8s;

/* 0 when path lies in the pod log layout under root. */
int jl_k8s_parse(const char *root, const char *path, jl_k8s *out);
/* The attributes as Resource.attributes (field 1) KeyValues. */
int jl_k8s_resource(const jl_k8s *k, ot_buf *out);

#endif
