/* components.c: the table of every built-in component. Adding a component
 * is one folder and one line here; nothing else in agent/ names one. */
#include "pipeline/factory.h"

#include <string.h>

extern const ot_factory ot_otlp_receiver;
extern const ot_factory ot_dogstatsd_receiver, ot_statsd_receiver;
extern const ot_factory ot_jsonlog_receiver;
extern const ot_factory ot_file_exporter;
extern const ot_factory ot_prometheus_exporter;
extern const ot_factory ot_otlp_exporter, ot_otlp_grpc_exporter, ot_otlphttp_exporter;
extern const ot_factory ot_jaeger_exporter;
extern const ot_factory ot_datadog_exporter;
extern const ot_factory ot_prometheusremotewrite_exporter;
extern const ot_factory ot_loadbalancing_exporter;
extern const ot_factory ot_file_storage_extension;
extern const ot_factory ot_bearertokenauth_extension;
extern const ot_factory ot_basicauth_extension;
extern const ot_factory ot_batch_processor, ot_memory_limiter_processor;
extern const ot_factory ot_filter_processor, ot_attributes_processor, ot_resource_processor;

const ot_factory *const ot_factories[] = {
    &ot_otlp_receiver,
    &ot_dogstatsd_receiver,
    &ot_statsd_receiver,
    &ot_jsonlog_receiver,
    &ot_file_exporter,
    &ot_prometheus_exporter,
    &ot_otlp_exporter,
    &ot_otlp_grpc_exporter,
    &ot_otlphttp_exporter,
    &ot_jaeger_exporter,
    &ot_datadog_exporter,
    &ot_prometheusremotewrite_exporter,
    &ot_loadbalancing_exporter,
    &ot_file_storage_extension,
    &ot_bearertokenauth_extension,
    &ot_basicauth_extension,
    &ot_batch_processor,
    &ot_memory_limiter_processor,
    &ot_filter_processor,
    &ot_attributes_processor,
    &ot_resource_processor,
    NULL,
};

const ot_factory *ot_factory_find(ot_kind kind, const char *type, size_t type_len)
{
    for (size_t i = 0; ot_factories[i]; i++) {
        const ot_factory *f = ot_factories[i];
        if (f->kind == kind && strlen(f->type) == type_len && memcmp(f->type, type, type_len) == 0)
            return f;
    }
    return NULL;
}
