// metrics.mjs: one instrument of each common kind (int counter, double
// histogram, up-down counter, gauge, observable gauge) through the SDK's
// MeterProvider into an OTLP metric exporter. The reader's interval is an
// hour; meterProvider.forceFlush() does the one collection and export.
import { ValueType } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { finish, main, makeExporter, makeResource } from './common.mjs';

main(async (opts) => {
  const results = [];
  const exporter = await makeExporter('metrics', opts, results);
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3600000,
    exportTimeoutMillis: 10000,
  });
  const provider = new MeterProvider({ resource: makeResource(opts), readers: [reader] });
  const meter = provider.getMeter('otelite-interop', '1.2.3');

  const requests = meter.createCounter('interop.requests', {
    description: 'requests served', unit: '{request}', valueType: ValueType.INT,
  });
  requests.add(5, { route: '/a' });
  requests.add(7, { route: '/a' });
  requests.add(1, { route: '/b' });

  const latency = meter.createHistogram('interop.latency', { unit: 'ms' });
  for (const v of [0.5, 7, 120]) latency.record(v, { route: '/a' });

  const inflight = meter.createUpDownCounter('interop.inflight', { valueType: ValueType.INT });
  inflight.add(10);
  inflight.add(-3);

  const temperature = meter.createGauge('interop.temperature', { unit: 'Cel' });
  temperature.record(21.5, { room: 'lab' });
  temperature.record(22.75, { room: 'lab' });

  meter.createObservableGauge('interop.queue_depth', { valueType: ValueType.INT })
    .addCallback((r) => r.observe(17, { queue: 'main' }));

  await provider.forceFlush();
  await provider.shutdown();

  finish({
    signal: 'metrics',
    protocol: opts.protocol,
    compression: opts.compression || null,
    expected: {
      'interop.requests': { '/a': 12, '/b': 1 },
      'interop.latency': { count: 3, sum: 127.5, min: 0.5, max: 120 },
      'interop.inflight': 7,
      'interop.temperature': 22.75,
      'interop.queue_depth': 17,
    },
  }, results);
});
