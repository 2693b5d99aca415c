// common.mjs: what traces.mjs, metrics.mjs and logs.mjs share. Each program
// builds one signal's SDK pipeline around a real OTLP exporter, sends to the
// otelite under test and prints one JSON line: what it sent and the result
// code of every export call, so the Python side can compare both with what
// reached otelite's file exporter. Exit status 0 only if every export
// succeeded.
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';

// The package of each signal's exporter, per protocol. "http" is the
// exporter that sends OTLP JSON over HTTP, "proto" protobuf over HTTP.
const PACKAGES = {
  traces: {
    grpc: '@opentelemetry/exporter-trace-otlp-grpc',
    http: '@opentelemetry/exporter-trace-otlp-http',
    proto: '@opentelemetry/exporter-trace-otlp-proto',
  },
  metrics: {
    grpc: '@opentelemetry/exporter-metrics-otlp-grpc',
    http: '@opentelemetry/exporter-metrics-otlp-http',
    proto: '@opentelemetry/exporter-metrics-otlp-proto',
  },
  logs: {
    grpc: '@opentelemetry/exporter-logs-otlp-grpc',
    http: '@opentelemetry/exporter-logs-otlp-http',
    proto: '@opentelemetry/exporter-logs-otlp-proto',
  },
};

const CLASSES = {
  traces: 'OTLPTraceExporter',
  metrics: 'OTLPMetricExporter',
  logs: 'OTLPLogExporter',
};

const URL_PATHS = { traces: '/v1/traces', metrics: '/v1/metrics', logs: '/v1/logs' };

// argv[2] is one JSON object: {protocol, grpc_port, http_port, service,
// compression?}. One argument keeps the Python side free of quoting.
export function parseOptions() {
  if (process.argv.length < 3) {
    throw new Error('usage: node <program>.mjs \'{"protocol": "grpc", ...}\'');
  }
  const opts = JSON.parse(process.argv[2]);
  if (!['grpc', 'http', 'proto'].includes(opts.protocol)) {
    throw new Error(`unknown protocol ${opts.protocol}`);
  }
  // Exporter problems are logged by the SDK through diag; send them to stderr
  // so a failing test shows why.
  diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  return opts;
}

export function makeResource(opts) {
  return resourceFromAttributes({
    'service.name': opts.service,
    'interop.sdk': 'opentelemetry-js',
  });
}

// A real exporter wrapped so each export's result code is recorded; the SDK
// processors and readers only log failures, they do not report them.
export async function makeExporter(signal, opts, results) {
  const mod = await import(PACKAGES[signal][opts.protocol]);
  const config = { timeoutMillis: 10000 };
  if (opts.protocol === 'grpc') {
    config.url = `http://127.0.0.1:${opts.grpc_port}`;
  } else {
    config.url = `http://127.0.0.1:${opts.http_port}${URL_PATHS[signal]}`;
  }
  if (opts.compression) config.compression = opts.compression;
  const inner = new mod[CLASSES[signal]](config);
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'export') {
        return (items, done) => {
          target.export(items, (result) => {
            results.push({
              code: result.code,
              success: result.code === ExportResultCode.SUCCESS,
              error: result.error ? String(result.error.message || result.error) : null,
            });
            done(result);
          });
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

// Prints the report line and exits: 0 when there was at least one export and
// all succeeded, 1 otherwise. The explicit exit keeps a lingering socket or
// timer from holding the process open.
export function finish(report, results) {
  const ok = results.length > 0 && results.every((r) => r.success);
  report.results = results;
  report.ok = ok;
  report.success_code = ExportResultCode.SUCCESS;
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(ok ? 0 : 1));
}

export async function main(run) {
  try {
    await run(parseOptions());
  } catch (e) {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(2);
  }
}
