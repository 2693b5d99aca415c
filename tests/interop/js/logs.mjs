// logs.mjs: log records with string and structured bodies, severities and
// attributes, one of them inside a span context, through the SDK's
// LoggerProvider and SimpleLogRecordProcessor into an OTLP log exporter.
import { ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { finish, main, makeExporter, makeResource } from './common.mjs';

main(async (opts) => {
  const results = [];
  const exporter = await makeExporter('logs', opts, results);
  const provider = new LoggerProvider({
    resource: makeResource(opts),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('otelite-interop', '1.2.3');

  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  const spanCtx = trace.setSpanContext(ROOT_CONTEXT, {
    traceId, spanId, traceFlags: TraceFlags.SAMPLED,
  });

  logger.emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: 'user logged in',
    attributes: { 'user.id': 'u-123', attempt: 1, 'mfa.used': true },
    context: spanCtx,
  });
  logger.emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: { msg: 'payment failed', code: 402, retry: false },
    attributes: { amount: 12.5, 'payment.methods': ['card', 'voucher'] },
  });
  logger.emit({
    severityNumber: SeverityNumber.DEBUG2,
    body: 'caf\u00e9 \u2603 "quoted"\n',
  });

  await provider.forceFlush();
  await provider.shutdown();

  finish({
    signal: 'logs',
    protocol: opts.protocol,
    compression: opts.compression || null,
    trace_id: traceId,
    span_id: spanId,
  }, results);
});
