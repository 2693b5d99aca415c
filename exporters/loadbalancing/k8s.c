/* k8s.c: placeholder */
#include "lb.h"
void *lb_k8s_main(void *arg) { (void)arg; return NULL; }
void lb_k8s_free(lb *e) { (void)e; }
