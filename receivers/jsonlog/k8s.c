/* k8s.c: the Kubernetes resource of a container log file, read off its
 * path. The kubelet lays them out as
 *   <pod_logs_root>/<namespace>_<pod>_<uid>/<container>/<restart>.log
 * (namespace and pod names cannot hold '_', so the split is exact), which
 * gives a DaemonSet the pod's identity without asking the API server. */
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "pbw.h"

int jl_k8s_parse(const char *root, const char *path, jl_k8s *out)
{
    memset(out, 0, sizeof *out);
    if (!root || !*root)
        return -1;
    size_t rn = strlen(root);
    while (rn > 1 && root[rn - 1] == '/')
        rn--;
    if (strncmp(path, root, rn) != 0 || path[rn] != '/')
        return -1;
    const char *p = path + rn + 1;
    const char *s1 = strchr(p, '/');
    if (!s1)
        return -1;
    const char *c = s1 + 1, *s2 = strchr(c, '/');
    if (!s2 || s2 == c)
        return -1;
    const char *f = s2 + 1;
    if (strchr(f, '/'))
        return -1;
    const char *u1 = memchr(p, '_', (size_t)(s1 - p));
    if (!u1 || u1 == p)
        return -1;
    const char *u2 = memchr(u1 + 1, '_', (size_t)(s1 - u1 - 1));
    if (!u2 || u2 == u1 + 1 || u2 + 1 == s1)
        return -1;
    out->ns = p;
    out->ns_len = (size_t)(u1 - p);
    out->pod = u1 + 1;
    out->pod_len = (size_t)(u2 - u1 - 1);
    out->uid = u2 + 1;
    out->uid_len = (size_t)(s1 - u2 - 1);
    out->container = c;
    out->container_len = (size_t)(s2 - c);
    /* "<n>.log" (also "<n>.log.<date>" once rotated by the kubelet) */
    char *end;
    long n = strtol(f, &end, 10);
    out->restart = (end != f && *end == '.' && n >= 0) ? n : -1;
    return 0;
}

int jl_k8s_resource(const jl_k8s *k, ot_buf *out)
{
    if (jl_kv_str(out, 1, "k8s.namespace.name", k->ns, k->ns_len) < 0 ||
        jl_kv_str(out, 1, "k8s.pod.name", k->pod, k->pod_len) < 0 ||
        jl_kv_str(out, 1, "k8s.pod.uid", k->uid, k->uid_len) < 0 ||
        jl_kv_str(out, 1, "k8s.container.name", k->container, k->container_len) < 0)
        return -1;
    if (k->restart >= 0) {
        static const char key[] = "k8s.container.restart_count";
        size_t kn = sizeof key - 1;
        size_t any = 1 + ot_varint_size((uint64_t)k->restart);
        size_t kv = 1 + ot_varint_size(kn) + kn + 1 + ot_varint_size(any) + any;
        if (pbw_len_hdr(out, 1, kv) < 0 || pbw_bytes(out, 1, key, kn) < 0 ||
            pbw_len_hdr(out, 2, any) < 0 || pbw_varint(out, 3, (uint64_t)k->restart) < 0)
            return -1;
    }
    return 0;
}
