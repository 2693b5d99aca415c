// traces.mjs: a parent span with a child and a sibling, through the SDK's
// TracerProvider and BatchSpanProcessor into an OTLP trace exporter, flushed
// by hand (no timers). Attributes cover every value type the OTLP mapping
// has in JS: string, int, double, bool and a homogeneous array.
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { finish, main, makeExporter, makeResource } from './common.mjs';

main(async (opts) => {
  const results = [];
  const exporter = await makeExporter('traces', opts, results);
  const provider = new TracerProvider({
    resource: makeResource(opts),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 600000 })],
  });
  const tracer = provider.getTracer('otelite-interop', '1.2.3');

  const parent = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.method': 'GET',
      'http.status_code': 200,
      'load.ratio': 0.75,
      'cache.hit': true,
      'tags': ['a', 'b', 'c'],
      'sizes': [1, 2, 3],
    },
  });
  const ctx = trace.setSpan(context.active(), parent);
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT }, ctx);
  child.setAttribute('db.rows', 42);
  child.setAttribute('db.statement', 'SELECT * FROM orders WHERE id = ?');
  child.addEvent('retry', { attempt: 2, 'backoff.seconds': 0.5, final: false });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'deadline exceeded' });
  child.end();
  const sibling = tracer.startSpan('render', { kind: SpanKind.INTERNAL }, ctx);
  sibling.setStatus({ code: SpanStatusCode.OK });
  sibling.end();
  parent.end();

  await provider.forceFlush();
  await provider.shutdown();

  const ids = (s) => ({ trace_id: s.spanContext().traceId, span_id: s.spanContext().spanId });
  finish({
    signal: 'traces',
    protocol: opts.protocol,
    compression: opts.compression || null,
    trace_id: parent.spanContext().traceId,
    spans: {
      parent: ids(parent),
      child: ids(child),
      sibling: ids(sibling),
    },
  }, results);
});
