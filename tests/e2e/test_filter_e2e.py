"""The filter, attributes and resource processors in the real binary: OTLP/HTTP
JSON in, processors, file exporter out, for traces, metrics and logs; the
dropped counts on the self-telemetry endpoint; and `otelite validate`
pointing at the offending character of a bad condition."""
import json

from conftest import free_port, http_get, post_json, run_cli, wait_lines

CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
  filter/drop:
    error_mode: ignore
    traces:
      span:
        - 'attributes["http.route"] == "/healthz"'
        - 'IsMatch(name, "^internal\\\\.")'
      spanevent:
        - 'name == "debug"'
    metrics:
      metric:
        - 'name == "debug.metric"'
      datapoint:
        - 'attributes["core"] == "1"'
    logs:
      log_record:
        - 'severity_number < SEVERITY_NUMBER_WARN'
  attributes/scrub:
    actions:
      - {{key: auth.token, action: delete}}
      - {{key: user.id, action: hash}}
  resource/env:
    attributes:
      - {{key: deployment.environment, action: upsert, value: production}}
exporters:
  file/traces: {{path: {out}/traces.jsonl}}
  file/metrics: {{path: {out}/metrics.jsonl}}
  file/logs: {{path: {out}/logs.jsonl}}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [filter/drop, attributes/scrub, resource/env]
      exporters: [file/traces]
    metrics:
      receivers: [otlp]
      processors: [filter/drop, resource/env]
      exporters: [file/metrics]
    logs:
      receivers: [otlp]
      processors: [filter/drop, attributes/scrub]
      exporters: [file/logs]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def sattr(k, v):
    return {"key": k, "value": {"stringValue": v}}


def span(name, route, events=(), attrs=()):
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": name,
        "kind": 2,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [sattr("http.route", route)] + list(attrs),
        "events": [{"name": e, "timeUnixNano": "1544712660500000000"} for e in events],
    }


TRACES = {
    "resourceSpans": [
        {
            "resource": {"attributes": [sattr("service.name", "checkout")]},
            "scopeSpans": [{
                "scope": {"name": "e2e"},
                "spans": [
                    span("GET /healthz", "/healthz"),
                    span("GET /cart", "/cart", events=["ok", "debug"],
                         attrs=[sattr("auth.token", "s3cret"), sattr("user.id", "alice")]),
                    span("internal.gc", "-"),
                ],
            }],
        },
        {   # only health checks: the whole resource goes
            "resource": {"attributes": [sattr("service.name", "probe")]},
            "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [span("GET /healthz", "/healthz")]}],
        },
    ]
}


def gauge(name, cores):
    return {"name": name, "gauge": {"dataPoints": [
        {"asDouble": 0.5, "timeUnixNano": "1544712660000000000",
         "attributes": [sattr("core", c)]} for c in cores]}}


METRICS = {"resourceMetrics": [{
    "resource": {"attributes": [sattr("service.name", "node")]},
    "scopeMetrics": [{"scope": {"name": "host"}, "metrics": [
        gauge("cpu", ["0", "1"]),
        gauge("mem", ["1"]),               # left without points
        gauge("debug.metric", ["0"]),      # matched by name
    ]}],
}]}


def log(body, sev, attrs=()):
    return {"timeUnixNano": "1544712660000000000", "severityNumber": sev,
            "body": {"stringValue": body}, "attributes": list(attrs)}


LOGS = {"resourceLogs": [{
    "resource": {"attributes": [sattr("service.name", "api")]},
    "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [
        log("debug noise", 5),
        log("disk full", 17, [sattr("auth.token", "t"), sattr("user.id", "alice")]),
        log("starting", 9),
    ]}],
}]}

ALICE_SHA256 = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"


def attrs_of(obj):
    out = {}
    for kv in obj.get("attributes", []):
        v = kv["value"]
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def start(tmp_path, agent_factory):
    ports = dict(http=free_port(), tel=free_port())
    text = CONFIG.format(out=tmp_path, **ports)
    assert run_cli("validate", "--config", str(_write(tmp_path, text))).returncode == 0
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    return a, ports


def _write(tmp_path, text):
    p = tmp_path / "check.yaml"
    p.write_text(text)
    return p


def test_filter_attributes_resource_all_signals(tmp_path, agent_factory):
    a, ports = start(tmp_path, agent_factory)

    assert post_json(ports["http"], "/v1/traces", TRACES)[0] == 200
    got = json.loads(wait_lines(tmp_path / "traces.jsonl", 1)[0])
    assert len(got["resourceSpans"]) == 1
    rs = got["resourceSpans"][0]
    assert attrs_of(rs["resource"]) == {"service.name": "checkout",
                                        "deployment.environment": "production"}
    spans = rs["scopeSpans"][0]["spans"]
    assert [s["name"] for s in spans] == ["GET /cart"]
    assert [e["name"] for e in spans[0]["events"]] == ["ok"]
    assert attrs_of(spans[0]) == {"http.route": "/cart", "user.id": ALICE_SHA256}

    assert post_json(ports["http"], "/v1/metrics", METRICS)[0] == 200
    got = json.loads(wait_lines(tmp_path / "metrics.jsonl", 1)[0])
    rm = got["resourceMetrics"][0]
    assert attrs_of(rm["resource"])["deployment.environment"] == "production"
    metrics = rm["scopeMetrics"][0]["metrics"]
    assert [m["name"] for m in metrics] == ["cpu"]
    assert [attrs_of(p)["core"] for p in metrics[0]["gauge"]["dataPoints"]] == ["0"]

    assert post_json(ports["http"], "/v1/logs", LOGS)[0] == 200
    got = json.loads(wait_lines(tmp_path / "logs.jsonl", 1)[0])
    recs = got["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert [r["body"]["stringValue"] for r in recs] == ["disk full"]
    assert attrs_of(recs[0]) == {"user.id": ALICE_SHA256}

    # a batch that loses everything is accepted and nothing is written
    only_health = {"resourceSpans": [TRACES["resourceSpans"][1]]}
    assert post_json(ports["http"], "/v1/traces", only_health)[0] == 200
    assert post_json(ports["http"], "/v1/traces", TRACES)[0] == 200
    lines = wait_lines(tmp_path / "traces.jsonl", 2)
    assert len(lines) == 2

    st, body = http_get(f"http://127.0.0.1:{ports['tel']}/metrics")
    text = body.decode()
    lbl = '{processor="filter/drop"}'
    assert metric_value(text, "otelite_processor_filter_dropped_spans_total" + lbl) == 7, text
    assert metric_value(text, "otelite_processor_filter_dropped_span_events_total" + lbl) == 2
    assert metric_value(text, "otelite_processor_filter_dropped_metric_points_total" + lbl) == 3
    assert metric_value(text, "otelite_processor_filter_dropped_log_records_total" + lbl) == 2
    assert a.stop() == 0, a.log()


def test_filter_error_mode_propagate_refuses(tmp_path, agent_factory):
    ports = dict(http=free_port(), tel=free_port())
    text = f"""\
receivers:
  otlp:
    protocols:
      http: {{endpoint: 127.0.0.1:{ports['http']}}}
processors:
  filter:
    logs:
      log_record: ['Len(attributes["n"]) > 1']
exporters:
  file: {{path: {tmp_path}/out.jsonl}}
service:
  pipelines:
    logs: {{receivers: [otlp], processors: [filter], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: 127.0.0.1:{ports['tel']}}}}}
"""
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "x"}, "attributes": [{"key": "n", "value": {"intValue": "5"}}]}]}]}]}
    st, _ = post_json(ports["http"], "/v1/logs", body)
    assert st == 400, st
    assert a.stop() == 0, a.log()


def test_validate_points_at_the_bad_character(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:4318}
processors:
  filter/x:
    traces:
      span:
        - 'attributes["http.route"] == "/healthz"'
        - 'name = "x"'
    logs:
      log_record: ["IsMatch(body, \\"[oops\\")"]
  attributes:
    actions: [{key: a, action: insert}]
    include: {conditions: ['kind == SPAN_KIND_SERVR']}
exporters:
  file: {path: /tmp/never}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [filter/x, attributes], exporters: [file]}
""")
    r = run_cli("validate", "--config", str(bad))
    assert r.returncode == 1, r.stderr
    err = r.stderr
    assert (f'{bad}:10:17: error: processors.filter/x.traces.span[1]: '
            f'expected an operator, found "="') in err, err
    assert f"{bad}:12:" in err and "IsMatch: invalid regex" in err, err
    assert f"{bad}:14:" in err and "insert needs value or from_attribute" in err, err
    assert (f"{bad}:15:37: error: processors.attributes.include.conditions[0]: "
            f'unknown enum "SPAN_KIND_SERVR"') in err, err
    assert "4 errors" in err, err
