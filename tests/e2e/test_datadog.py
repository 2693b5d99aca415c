"""The `datadog` exporter end to end: OTLP/HTTP into the real binary, out to
a Datadog intake on loopback (tests/dd_intake.py, written from Datadog's
API docs) that decodes series and logs JSON, sketch protobuf and trace
msgpack by itself and checks headers, compression and schemas. Values are
compared with what was sent."""
import json
import os
import sys
import time

import pytest

from conftest import free_port, http_get, post_json, run_cli, wait_for

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dd_intake import Intake, sketch_quantile  # noqa: E402

KEY = "dd-secret-0123456789abcdef"

CONFIG = """\
receivers:
  otlp:
    protocols:
      http: {{ endpoint: "127.0.0.1:{http}" }}
exporters:
  datadog:
    api: {{ key: "{key}"{api_extra} }}
    metrics:
      endpoint: "http://127.0.0.1:{intake}"
{metrics_extra}
    logs: {{ endpoint: "http://127.0.0.1:{intake}" }}
    traces: {{ endpoint: "http://127.0.0.1:{intake}" }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 2s }}
{extra}
service:
  pipelines:
    metrics: {{ receivers: [otlp], exporters: [datadog] }}
    logs: {{ receivers: [otlp], exporters: [datadog] }}
    traces: {{ receivers: [otlp], exporters: [datadog] }}
  telemetry: {{ metrics: {{ endpoint: "127.0.0.1:{tel}" }} }}
"""


def metric_value(tel, name):
    """The sum of a self-telemetry metric's samples."""
    _, body = http_get(f"http://127.0.0.1:{tel}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def dd(agent_factory, tmp_path):
    """start(**config parts) → (agent, intake, ports)."""
    made = []

    def start(key=KEY, intake_key=KEY, metrics_extra="", extra="", api_extra="", wait=True):
        p = dict(http=free_port(), tel=free_port(), intake=free_port())
        intake = Intake(p["intake"], api_key=intake_key).start()
        made.append(intake)
        text = CONFIG.format(key=key, metrics_extra=metrics_extra, extra=extra,
                             api_extra=api_extra, **p)
        a = agent_factory(text)
        if wait:
            a.start(wait_url=f"http://127.0.0.1:{p['tel']}/readyz")
        return a, intake, p

    yield start
    for i in made:
        i.stop()


def now_ns():
    return time.time_ns()


def attrs(**kv):
    out = []
    for k, v in kv.items():
        k = k.replace("__", ".")
        if isinstance(v, bool):
            out.append({"key": k, "value": {"boolValue": v}})
        elif isinstance(v, int):
            out.append({"key": k, "value": {"intValue": str(v)}})
        elif isinstance(v, float):
            out.append({"key": k, "value": {"doubleValue": v}})
        else:
            out.append({"key": k, "value": {"stringValue": v}})
    return out


RESOURCE = {"attributes": attrs(service__name="checkout", service__version="1.4.2",
                                deployment__environment__name="prod", host__name="web-7",
                                cloud__region="eu-west-1")}


def metrics_doc(metrics, resource=RESOURCE):
    return {"resourceMetrics": [{"resource": resource,
                                 "scopeMetrics": [{"scope": {"name": "t"}, "metrics": metrics}]}]}


def num_point(v, t, start=None, **a):
    p = {"timeUnixNano": str(t), "attributes": attrs(**a)}
    if start is not None:
        p["startTimeUnixNano"] = str(start)
    if isinstance(v, int):
        p["asInt"] = str(v)
    else:  # proto3 JSON writes NaN as a string
        p["asDouble"] = v if v == v else "NaN"
    return p


def send_metrics(port, metrics, resource=RESOURCE):
    status, body = post_json(port, "/v1/metrics", metrics_doc(metrics, resource))
    assert status == 200, body


def by_metric(series, name):
    return [s for s in series if s["metric"] == name]


def test_series_gauges_counts_and_deltas(dd):
    a, intake, p = dd()
    t0 = now_ns()
    old = t0 - 3600 * 10**9  # a counter that started long before the agent
    cum = 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
    send_metrics(p["http"], [
        {"name": "temp", "gauge": {"dataPoints": [num_point(21.5, t0, room="lab"),
                                                  num_point(float("nan"), t0, room="bad")]}},
        {"name": "req.delta", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                                      "dataPoints": [num_point(7, t0, t0 - 10**10, route="/a")]}},
        {"name": "req.old", "sum": {"aggregationTemporality": cum, "isMonotonic": True,
                                    "dataPoints": [num_point(100, t0, old)]}},
        {"name": "req.new", "sum": {"aggregationTemporality": cum, "isMonotonic": True,
                                    "dataPoints": [num_point(10, t0, t0 - 10**6)]}},
        {"name": "queue.depth", "sum": {"aggregationTemporality": cum, "isMonotonic": False,
                                        "dataPoints": [num_point(-4, t0, old)]}},
    ])
    t1 = t0 + 10 * 10**9
    send_metrics(p["http"], [
        {"name": "req.old", "sum": {"aggregationTemporality": cum, "isMonotonic": True,
                                    "dataPoints": [num_point(130, t1, old)]}},
        {"name": "req.new", "sum": {"aggregationTemporality": cum, "isMonotonic": True,
                                    "dataPoints": [num_point(25, t1, t0 - 10**6)]}},
    ])
    # a restart: the start time moved on, the value counts from there
    t2 = t1 + 10 * 10**9
    send_metrics(p["http"], [
        {"name": "req.old", "sum": {"aggregationTemporality": cum, "isMonotonic": True,
                                    "dataPoints": [num_point(4, t2, t1 + 1)]}},
    ])
    intake.wait("series", lambda: len(by_metric(intake.series(), "req.old")) >= 2)
    intake.wait("series", lambda: len(by_metric(intake.series(), "req.new")) >= 2)
    s = intake.series()
    assert intake.problems == []
    (temp,) = by_metric(s, "temp")
    assert temp["type"] == 3 and temp["points"][0]["value"] == 21.5
    assert temp["points"][0]["timestamp"] == t0 // 10**9
    assert temp["resources"] == [{"name": "web-7", "type": "host"}]
    tags = set(temp["tags"])
    assert {"env:prod", "service:checkout", "version:1.4.2", "cloud.region:eu-west-1",
            "room:lab"} <= tags
    assert not any(t.startswith("host.name") for t in tags)
    (d,) = by_metric(s, "req.delta")
    assert d["type"] == 1 and d["points"][0]["value"] == 7 and "route:/a" in d["tags"]
    assert d["interval"] == 10
    # the old counter's first point is only a base; then 30, then 4 after the restart
    def values(name):  # two sender threads: requests may come in either order
        return [x["points"][0]["value"]
                for x in sorted(by_metric(s, name), key=lambda x: x["points"][0]["timestamp"])]
    assert values("req.old") == [30, 4]
    assert all(x["type"] == 1 for x in by_metric(s, "req.old"))
    # a counter that started after the agent: its first value is new too
    assert values("req.new") == [10, 15]
    (q,) = by_metric(s, "queue.depth")
    assert q["type"] == 3 and q["points"][0]["value"] == -4
    wait_for(lambda: metric_value(p["tel"], "otelite_datadog_dropped_points_total") == 1, 5,
             "the NaN point counted")
    for r in intake.accepted("/api/v2/series"):
        assert r["headers"]["dd-api-key"] == KEY
        assert r["headers"]["content-encoding"] == "gzip"
        assert r["raw_len"] < r["body_len"]
    assert KEY not in a.log()
    assert a.stop() == 0


def test_summaries_and_histogram_modes(dd):
    a, intake, p = dd(metrics_extra="      histograms: { mode: counters }")
    t0 = now_ns()
    send_metrics(p["http"], [
        {"name": "lat", "histogram": {"aggregationTemporality": 1, "dataPoints": [{
            "timeUnixNano": str(t0), "startTimeUnixNano": str(t0 - 10**10), "count": "6",
            "sum": 21.0, "bucketCounts": ["1", "2", "3"], "explicitBounds": [1.0, 5.0]}]}},
        {"name": "rpc", "summary": {"dataPoints": [{
            "timeUnixNano": str(t0), "startTimeUnixNano": str(t0 - 10**6), "count": "4",
            "sum": 10.0, "quantileValues": [{"quantile": 0.5, "value": 2.0},
                                            {"quantile": 0.99, "value": 4.0}]}]}},
    ])
    intake.wait("series", lambda: by_metric(intake.series(), "rpc.quantile"))
    intake.wait("series", lambda: len(by_metric(intake.series(), "lat.bucket")) == 3)
    s = intake.series()
    assert intake.problems == []
    assert by_metric(s, "lat.count")[0]["points"][0]["value"] == 6
    assert by_metric(s, "lat.sum")[0]["points"][0]["value"] == 21
    buckets = {(next(t for t in b["tags"] if t.startswith("lower_bound:")),
                next(t for t in b["tags"] if t.startswith("upper_bound:"))): b["points"][0]["value"]
               for b in by_metric(s, "lat.bucket")}
    assert buckets == {("lower_bound:-inf", "upper_bound:1"): 1,
                       ("lower_bound:1", "upper_bound:5"): 2,
                       ("lower_bound:5", "upper_bound:inf"): 3}
    assert all(b["type"] == 1 for b in by_metric(s, "lat.bucket"))
    quant = {next(t for t in x["tags"] if t.startswith("quantile:")): x["points"][0]["value"]
             for x in by_metric(s, "rpc.quantile")}
    assert quant == {"quantile:0.5": 2, "quantile:0.99": 4}
    # the summary's stream started after the agent: count and sum are new
    assert by_metric(s, "rpc.count")[0]["points"][0]["value"] == 4
    assert by_metric(s, "rpc.sum")[0]["points"][0]["value"] == 10
    assert intake.sketches() == []
    assert a.stop() == 0


def test_distributions_as_sketches(dd):
    a, intake, p = dd()
    t0 = now_ns()
    send_metrics(p["http"], [
        {"name": "lat", "histogram": {"aggregationTemporality": 1, "dataPoints": [{
            "timeUnixNano": str(t0), "startTimeUnixNano": str(t0 - 10**10), "count": "100",
            "sum": 2500.0, "min": 1.0, "max": 100.0, "bucketCounts": ["10", "40", "50"],
            "explicitBounds": [10.0, 20.0], "attributes": attrs(op="read")}]}},
        {"name": "size", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [{
            "timeUnixNano": str(t0), "startTimeUnixNano": str(t0 - 10**10), "count": "5",
            "sum": 40.0, "scale": 2, "zeroCount": "1", "min": 0.0, "max": 16.0,
            "positive": {"offset": 8, "bucketCounts": ["1", "1", "1", "1"]}}]}},
    ])
    intake.wait("sketches", lambda: len(intake.sketches()) >= 2)
    sk = {s["metric"]: s for s in intake.sketches()}
    assert intake.problems == []
    lat = sk["lat"]
    assert lat["host"] == "web-7" and "op:read" in lat["tags"] and "env:prod" in lat["tags"]
    (d,) = lat["dogsketches"]
    assert d["cnt"] == 100 and d["sum"] == 2500 and d["min"] == 1 and d["max"] == 100
    assert d["avg"] == 25 and d["ts"] == t0 // 10**9
    assert sum(d["n"]) == 100 and len(d["k"]) == len(d["n"])
    assert d["k"] == sorted(d["k"])
    # the median is in the (10, 20] bucket, p95 in (20, 100]
    assert 10 <= sketch_quantile(d, 0.5) <= 20.5
    assert 20 <= sketch_quantile(d, 0.95) <= 100
    (e,) = sk["size"]["dogsketches"]
    assert e["cnt"] == 5 and sum(e["n"]) == 5 and e["sum"] == 40
    assert 0 in e["k"]  # the zero bucket
    # scale 2: buckets (2^(8/4), 2^(12/4)] = (4, 8]
    assert 4 <= sketch_quantile(e, 0.5) <= 8.1
    for r in intake.accepted("/api/beta/sketches"):
        assert r["headers"]["content-type"] == "application/x-protobuf"
        assert r["headers"]["dd-api-key"] == KEY
    assert a.stop() == 0


def log_doc(records, resource=RESOURCE):
    return {"resourceLogs": [{"resource": resource,
                              "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}]}]}


def test_logs(dd):
    a, intake, p = dd()
    t0 = now_ns()
    rec = {"timeUnixNano": str(t0), "severityNumber": 17, "severityText": "ERROR",
           "body": {"stringValue": "payment failed"},
           "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
           "attributes": attrs(user__id="u-1", retries=3) + [
               {"key": "http", "value": {"kvlistValue": {"values": attrs(method="POST", status=502)}}}]}
    warn = {"timeUnixNano": str(t0), "severityNumber": 13, "body": {"stringValue": "slow"}}
    big = {"timeUnixNano": str(t0), "severityNumber": 9, "body": {"stringValue": "x" * 1_500_000}}
    status, body = post_json(p["http"], "/v1/logs", log_doc([rec, warn, big]))
    assert status == 200, body
    intake.wait("logs", lambda: len(intake.logs()) >= 3)
    assert intake.problems == []
    logs = intake.logs()
    e = next(l for l in logs if l["message"] == "payment failed")
    assert e["status"] == "error" and e["service"] == "checkout" and e["hostname"] == "web-7"
    assert e["timestamp"] == t0 // 10**6
    assert e["dd.trace_id"] == str(int("d269b633813fc60c", 16))
    assert e["dd.span_id"] == str(int("eee19b7ec3c1b174", 16))
    assert e["user.id"] == "u-1" and e["retries"] == 3
    assert e["http.method"] == "POST" and e["http.status"] == 502
    assert set(e["ddtags"].split(",")) >= {"env:prod", "service:checkout", "version:1.4.2"}
    assert e["ddsource"]
    w = next(l for l in logs if l["message"] == "slow")
    assert w["status"] == "warn"
    b = next(l for l in logs if l["message"].startswith("xxx"))
    assert 900_000 < len(b["message"]) < 1_000_000  # cut to fit Datadog's 1 MB per entry
    for r in intake.accepted("/api/v2/logs"):
        assert r["headers"]["content-encoding"] == "gzip"
    assert a.stop() == 0


def test_logs_cut_at_1000_per_request(dd):
    a, intake, p = dd()
    recs = [{"body": {"stringValue": f"line {i}"}, "severityNumber": 9} for i in range(2500)]
    status, _ = post_json(p["http"], "/v1/logs", log_doc(recs))
    assert status == 200
    intake.wait("2500 logs", lambda: len(intake.logs()) >= 2500)
    sizes = [r["items"] for r in intake.accepted("/api/v2/logs")]
    assert sorted(sizes) == [500, 1000, 1000]
    assert sorted(l["message"] for l in intake.logs()) == sorted(f"line {i}" for i in range(2500))
    assert a.stop() == 0


def span(name, tid, sid, parent="", kind=2, **a):
    s = {"traceId": tid, "spanId": sid, "name": name, "kind": kind,
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
         "attributes": attrs(**a)}
    if parent:
        s["parentSpanId"] = parent
    return s


def test_traces(dd):
    a, intake, p = dd()
    t1, t2 = "5b8efff798038103d269b633813fc60c", "00000000000000000000000000000007"
    spans = [span("GET /cart", t1, "eee19b7ec3c1b174", http__route="/cart/{id}",
                  http__request__method="GET", http__status_code=200),
             span("db", t1, "0000000000000002", parent="eee19b7ec3c1b174", kind=3,
                  db__system="postgresql", db__rows=3.5),
             span("job", t2, "0000000000000003", kind=1)]
    spans[1]["status"] = {"code": 2, "message": "timeout"}
    spans[1]["events"] = [{"name": "exception", "timeUnixNano": "1700000000100000000",
                           "attributes": attrs(exception__type="TimeoutError",
                                               exception__message="query timed out",
                                               exception__stacktrace="at db.query")}]
    doc = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [
        {"scope": {"name": "io.opentelemetry.Flask"}, "spans": spans}]}]}
    status, body = post_json(p["http"], "/v1/traces", doc)
    assert status == 200, body
    intake.wait("spans", lambda: len(intake.spans()) >= 3)
    assert intake.problems == []
    (req,) = intake.accepted("/v0.4/traces")
    assert req["headers"]["x-datadog-trace-count"] == "2"
    assert req["headers"]["content-type"] == "application/msgpack"
    assert "content-encoding" not in req["headers"]
    traces = req["doc"]
    assert sorted(len(t) for t in traces) == [1, 2]
    sp = {s["span_id"]: s for s in intake.spans()}
    root = sp[int("eee19b7ec3c1b174", 16)]
    assert root["trace_id"] == int("d269b633813fc60c", 16)
    assert root["meta"]["_dd.p.tid"] == "5b8efff798038103"
    assert root["service"] == "checkout" and root["name"] == "io.opentelemetry.flask.server"
    assert root["resource"] == "GET /cart/{id}" and root["type"] == "web"
    assert root["start"] == 1700000000000000000 and root["duration"] == 250000000
    assert root["parent_id"] == 0 and root["error"] == 0
    assert root["meta"]["env"] == "prod" and root["meta"]["version"] == "1.4.2"
    assert root["meta"]["http.route"] == "/cart/{id}" and root["meta"]["span.kind"] == "server"
    assert root["metrics"]["http.status_code"] == 200.0
    db = sp[2]
    assert db["parent_id"] == root["span_id"] and db["error"] == 1 and db["type"] == "db"
    assert db["resource"] == "db" and db["name"] == "io.opentelemetry.flask.client"
    assert db["meta"]["error.msg"] == "query timed out" and db["metrics"]["db.rows"] == 3.5
    assert db["meta"]["error.type"] == "TimeoutError" and db["meta"]["error.stack"] == "at db.query"
    (ev,) = json.loads(db["meta"]["events"])
    assert ev["name"] == "exception" and ev["time_unix_nano"] == 1700000000100000000
    assert ev["attributes"]["exception.type"] == "TimeoutError"
    assert "events" not in root["meta"]
    job = sp[3]
    assert job["trace_id"] == 7 and "_dd.p.tid" not in job["meta"]
    assert job["type"] == "custom" and job["name"] == "io.opentelemetry.flask.internal"
    assert a.stop() == 0


def test_413_splits_and_retries_the_halves(dd):
    a, intake, p = dd()
    intake.max_items["/api/v2/series"] = 3
    t0 = now_ns()
    send_metrics(p["http"], [{"name": f"g{i}", "gauge": {"dataPoints": [num_point(i, t0)]}}
                             for i in range(10)])
    intake.wait("10 series", lambda: len(intake.series()) >= 10)
    got = sorted(s["metric"] for s in intake.series())
    assert got == sorted(f"g{i}" for i in range(10))  # every one, once
    statuses = [r["status"] for r in intake.requests if r["path"] == "/api/v2/series"]
    assert statuses.count(413) >= 1
    assert all(r["items"] <= 3 for r in intake.accepted("/api/v2/series"))
    # counted when the sender is done with the batch, just after the last answer
    wait_for(lambda: metric_value(p["tel"], "otelite_datadog_payload_splits_total") >= 1,
             5, "the split counter")
    assert a.stop() == 0


@pytest.mark.parametrize("code", [429, 503])
def test_retryable_answers_are_retried_after_retry_after(dd, code):
    a, intake, p = dd()
    intake.answers["/api/v2/logs"] = [code]
    status, _ = post_json(p["http"], "/v1/logs", log_doc([{"body": {"stringValue": "again"}}]))
    assert status == 200
    intake.wait("the log", lambda: intake.logs())
    reqs = [r for r in intake.requests if r["path"] == "/api/v2/logs"]
    assert [r["status"] for r in reqs] == [code, 202]
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.9  # Retry-After: 1
    assert a.stop() == 0


def test_403_is_not_retried_and_names_the_key(dd):
    a, intake, p = dd(intake_key="another-key")
    status, _ = post_json(p["http"], "/v1/logs", log_doc([{"body": {"stringValue": "x"}}]))
    assert status == 200
    a.wait_log("API key")
    time.sleep(1.0)
    reqs = [r for r in intake.requests if r["path"] == "/api/v2/logs"]
    assert len(reqs) == 1 and reqs[0]["status"] == 403
    lines = [l for l in a.log().splitlines() if "API key" in l]
    assert len(lines) == 1, lines
    assert KEY not in a.log()
    assert a.stop() == 0


def test_fail_on_invalid_key_stops_the_start(dd):
    a, intake, p = dd(intake_key="another-key", wait=False,
                      api_extra=", fail_on_invalid_key: true")
    a.start()
    rc = a.proc.wait(20)
    assert rc != 0
    assert "API key was refused" in a.log() and KEY not in a.log()


def test_zstd_bodies(dd):
    a, intake, p = dd(extra="    compression: zstd")
    send_metrics(p["http"], [{"name": "z", "gauge": {"dataPoints": [num_point(1.25, now_ns())]}}])
    intake.wait("series", lambda: intake.series())
    assert intake.accepted("/api/v2/series")[0]["headers"]["content-encoding"] == "zstd"
    assert intake.series()[0]["points"][0]["value"] == 1.25
    assert a.stop() == 0


def test_print_config_redacts_the_api_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(key=KEY, metrics_extra="", extra="", api_extra="", http=1,
                                 tel=2, intake=3))
    r = run_cli("print-config", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert KEY not in r.stdout and "REDACTED" in r.stdout


def test_validate_needs_a_key_for_datadog_hosts(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("""\
receivers: { otlp: { protocols: { http: {} } } }
exporters: { datadog: { api: { site: datadoghq.eu } } }
service: { pipelines: { logs: { receivers: [otlp], exporters: [datadog] } } }
""")
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode == 1 and "api.key" in r.stdout + r.stderr
    cfg.write_text(cfg.read_text().replace("site: datadoghq.eu", "site: datadoghq.mars, key: k"))
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode == 1 and "not a Datadog site" in r.stdout + r.stderr


def test_big_batches_are_cut_to_the_series_limits(dd):
    """30,000 series with long tags in one batch: several requests, each
    under 512 KB compressed and 5 MiB raw (the intake checks both)."""
    a, intake, p = dd()
    t0 = now_ns()
    pts = [num_point(float(i), t0, idx=str(i), blob="%08d" % (i * 7919 % 100000) * 12)
           for i in range(30000)]
    send_metrics(p["http"], [{"name": "wide", "gauge": {"dataPoints": pts}}])
    intake.wait("30000 series", lambda: len(intake.series()) >= 30000, timeout=60)
    assert intake.problems == []
    reqs = intake.accepted("/api/v2/series")
    assert len(reqs) >= 3
    assert all(r["raw_len"] <= 512_000 and r["body_len"] <= 5 * 1024 * 1024 for r in reqs)
    got = sorted(int(s["points"][0]["value"]) for s in intake.series())
    assert got == list(range(30000))
    assert a.stop() == 0


def test_protobuf_batches_take_the_bytes_path(dd, otlp_pb2):
    """OTLP protobuf arrives as bytes and is translated one span / record /
    metric at a time from them: the same fields come out."""
    from conftest import http_post
    a, intake, p = dd()
    tr = otlp_pb2["trace_service_pb2"]
    req = tr.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "pb-svc"
    ss = rs.scope_spans.add()
    ss.scope.name = "pb.scope"
    for i in range(3):
        sp = ss.spans.add()
        sp.trace_id = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
        sp.span_id = bytes([0, 0, 0, 0, 0, 0, 0, i + 1])
        sp.name, sp.kind = f"op{i}", 2
        sp.start_time_unix_nano, sp.end_time_unix_nano = 10**18, 10**18 + 5000
    st, _, _ = http_post(f"http://127.0.0.1:{p['http']}/v1/traces", req.SerializeToString(),
                         {"Content-Type": "application/x-protobuf"})
    assert st == 200
    lg = otlp_pb2["logs_service_pb2"]
    lreq = lg.ExportLogsServiceRequest()
    rl = lreq.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key, kv.value.string_value = "host.name", "pb-host"
    rec = rl.scope_logs.add().log_records.add()
    rec.body.string_value, rec.severity_number = "from bytes", 21
    st, _, _ = http_post(f"http://127.0.0.1:{p['http']}/v1/logs", lreq.SerializeToString(),
                         {"Content-Type": "application/x-protobuf"})
    assert st == 200
    ms = otlp_pb2["metrics_service_pb2"]
    mreq = ms.ExportMetricsServiceRequest()
    m = mreq.resource_metrics.add().scope_metrics.add().metrics.add()
    m.name = "pb.count"
    m.sum.aggregation_temporality, m.sum.is_monotonic = 2, True
    t0 = now_ns()
    for v, t in ((5, t0), (12, t0 + 10**10)):
        del m.sum.data_points[:]
        dp = m.sum.data_points.add()
        dp.as_int, dp.time_unix_nano, dp.start_time_unix_nano = v, t, t0 - 1
        st, _, _ = http_post(f"http://127.0.0.1:{p['http']}/v1/metrics", mreq.SerializeToString(),
                             {"Content-Type": "application/x-protobuf"})
        assert st == 200
    intake.wait("everything", lambda: len(intake.spans()) == 3 and intake.logs()
                and len(by_metric(intake.series(), "pb.count")) == 2)
    assert intake.problems == []
    (trace,) = intake.accepted("/v0.4/traces")[0]["doc"]
    assert [s["name"] for s in trace] == ["pb.scope.server"] * 3
    assert [s["resource"] for s in trace] == ["op0", "op1", "op2"]
    assert {s["service"] for s in trace} == {"pb-svc"}
    assert {s["trace_id"] for s in trace} == {0x090a0b0c0d0e0f10}
    (log,) = intake.logs()
    assert log["message"] == "from bytes" and log["status"] == "fatal"
    assert log["hostname"] == "pb-host"
    vals = sorted(s["points"][0]["value"] for s in by_metric(intake.series(), "pb.count"))
    assert vals == [5, 7]
    assert a.stop() == 0


def test_a_retry_repeats_only_the_request_that_failed(dd):
    """2500 log records in one batch are queued as pieces of one request
    each: when the second request gets a 503, only that piece is sent
    again, so every record arrives exactly once."""
    a, intake, p = dd()
    intake.answers["/api/v2/logs"] = [0, 503]  # 0: answer as usual
    recs = [{"body": {"stringValue": f"once {i}"}} for i in range(2500)]
    status, _ = post_json(p["http"], "/v1/logs", log_doc(recs))
    assert status == 200
    intake.wait("2500 logs", lambda: len(intake.logs()) >= 2500)
    time.sleep(1.5)  # a repeat would come within the retry interval
    statuses = [r["status"] for r in intake.requests if r["path"] == "/api/v2/logs"]
    assert statuses.count(503) == 1
    msgs = [l["message"] for l in intake.logs()]
    assert len(msgs) == 2500 and sorted(msgs) == sorted(f"once {i}" for i in range(2500))
    assert a.stop() == 0
