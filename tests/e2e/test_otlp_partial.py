"""Strict ids and partial success, and the memory a request can make the
agent allocate, through the real binary.

A request with some bad items (ids of the wrong length, number points
without a value, exponential histograms whose buckets do not add up) is
answered with partial_success naming the count and the first reason, on
HTTP protobuf, HTTP JSON and gRPC; the good items reach the file exporter
and the bad ones do not. Bodies built to amplify (2 bytes that unpack to a
200-byte struct) are refused before they are decoded, so the agent's peak
RSS stays within a few times their size. Requests and responses are built
and read with protoc-generated classes, not the agent's codec."""
import json
import time
import urllib.error
import urllib.request

import grpc
import pytest
from google.protobuf import json_format

from conftest import export_classes, free_port, http_get, read_json_lines, wait_for

METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
TID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SID = bytes.fromhex("eee19b7ec3c1b174")


@pytest.fixture(scope="module")
def pb(otlp_pb2):
    return otlp_pb2


def start(agent_factory, tmp_path, extra_http=""):
    ports = dict(grpc=free_port(), http=free_port(), tel=free_port())
    out = tmp_path / "out.jsonl"
    cfg = (f"receivers:\n  otlp:\n    protocols:\n"
           f"      grpc:\n        endpoint: 127.0.0.1:{ports['grpc']}\n"
           f"      http:\n        endpoint: 127.0.0.1:{ports['http']}\n{extra_http}"
           f"exporters:\n  file:\n    path: {out}\n"
           "service:\n  pipelines:\n"
           "    traces: {receivers: [otlp], exporters: [file]}\n"
           "    metrics: {receivers: [otlp], exporters: [file]}\n"
           "    logs: {receivers: [otlp], exporters: [file]}\n"
           f"  telemetry:\n    metrics:\n      endpoint: 127.0.0.1:{ports['tel']}\n")
    a = agent_factory(cfg)
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    return a, ports, out


def traces(pb):
    req_cls, _ = export_classes(pb, "traces")
    r = req_cls()
    ss = r.resource_spans.add().scope_spans.add()
    bad = [(TID + b"\x00" * 8, SID, b""), (b"", SID, b""), (TID, SID + b"\x01", b""),
           (TID, SID, b"\x02" * 100)]
    for i, (t, s, p) in enumerate(bad):
        sp = ss.spans.add(name=f"bad{i}", trace_id=t, span_id=s, parent_span_id=p)
    ss.spans.add(name="good-root", trace_id=TID, span_id=SID)
    ss.spans.add(name="good-child", trace_id=TID, span_id=SID, parent_span_id=SID)
    return r, 4, "invalid trace_id", {"good-root", "good-child"}


def metrics(pb):
    req_cls, _ = export_classes(pb, "metrics")
    r = req_cls()
    sm = r.resource_metrics.add().scope_metrics.add()
    g = sm.metrics.add(name="g")
    g.gauge.data_points.add(time_unix_nano=1)  # no value
    g.gauge.data_points.add(time_unix_nano=2, as_int=7)
    e = sm.metrics.add(name="e")
    p = e.exponential_histogram.data_points.add(count=10, zero_count=1)
    p.positive.bucket_counts.extend([2, 3])  # 6 != 10
    p = e.exponential_histogram.data_points.add(count=6, zero_count=1)
    p.positive.bucket_counts.extend([2, 3])
    return r, 2, "a number data point without a value", None


def logs(pb):
    req_cls, _ = export_classes(pb, "logs")
    r = req_cls()
    sl = r.resource_logs.add().scope_logs.add()
    sl.log_records.add(severity_text="bad", trace_id=TID[:15])
    sl.log_records.add(severity_text="bad", span_id=SID[:4])
    sl.log_records.add(severity_text="good")  # ids may be empty in logs
    sl.log_records.add(severity_text="good", trace_id=TID, span_id=SID)
    return r, 2, "invalid trace_id", None


BUILD = {"traces": traces, "metrics": metrics, "logs": logs}
REJ = {"traces": "rejected_spans", "metrics": "rejected_data_points", "logs": "rejected_log_records"}
ITEMS = {"traces": 2, "metrics": 2, "logs": 2}


def post(port, path, body, ctype):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def delivered(out):
    try:
        return read_json_lines(out)
    except FileNotFoundError:
        return []


def count_items(lines, signal):
    n = 0
    for line in lines:
        for res in line.get({"traces": "resourceSpans", "metrics": "resourceMetrics",
                             "logs": "resourceLogs"}[signal], []):
            for sc in res.get({"traces": "scopeSpans", "metrics": "scopeMetrics",
                               "logs": "scopeLogs"}[signal], []):
                if signal == "traces":
                    n += len(sc.get("spans", []))
                elif signal == "logs":
                    n += len(sc.get("logRecords", []))
                else:
                    for m in sc.get("metrics", []):
                        for kind in ("gauge", "sum", "exponentialHistogram"):
                            n += len(m.get(kind, {}).get("dataPoints", []))
    return n


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_partial_success_on_all_three_encodings(agent_factory, tmp_path, pb, signal):
    a, ports, out = start(agent_factory, tmp_path)
    req, n_bad, first, names = BUILD[signal](pb)
    _, resp_cls = export_classes(pb, signal)
    path = f"/v1/{signal}"
    # HTTP protobuf
    st, body = post(ports["http"], path, req.SerializeToString(), "application/x-protobuf")
    assert st == 200
    ps = resp_cls.FromString(body).partial_success
    assert getattr(ps, REJ[signal]) == n_bad
    assert f"{n_bad} " in ps.error_message and first in ps.error_message, ps.error_message
    # HTTP JSON (ids as hex, as OTLP/JSON writes them)
    js = json_format.MessageToDict(req)
    def hexify(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    import base64
                    o[k] = base64.b64decode(v).hex()
                else:
                    hexify(v)
        elif isinstance(o, list):
            for x in o:
                hexify(x)
    hexify(js)
    st, body = post(ports["http"], path, json.dumps(js).encode(), "application/json")
    assert st == 200, body
    got = json.loads(body)["partialSuccess"]
    camel = {"traces": "rejectedSpans", "metrics": "rejectedDataPoints",
             "logs": "rejectedLogRecords"}[signal]
    assert int(got[camel]) == n_bad and first in got["errorMessage"], got
    # gRPC
    req_cls, _ = export_classes(pb, signal)
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as ch:
        call = ch.unary_unary(METHODS[signal], request_serializer=req_cls.SerializeToString,
                              response_deserializer=resp_cls.FromString)
        r = call(req, timeout=10)
    assert getattr(r.partial_success, REJ[signal]) == n_bad
    assert first in r.partial_success.error_message
    # three times the good items arrive, the bad ones never
    wait_for(lambda: count_items(delivered(out), signal) >= 3 * ITEMS[signal], what="good items")
    time.sleep(0.3)
    lines = delivered(out)
    assert count_items(lines, signal) == 3 * ITEMS[signal]
    if names:
        seen = {s["name"] for l in lines for rs in l["resourceSpans"] for ss in rs["scopeSpans"]
                for s in ss["spans"]}
        assert seen == names
    # counters per reason
    _, text = http_get(f"http://127.0.0.1:{ports['tel']}/metrics")
    text = text.decode() if isinstance(text, bytes) else text
    item = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}[signal]
    assert f"otelite_receiver_rejected_{item}_total" in text
    assert a.stop() == 0


def test_valid_request_answers_no_partial_success(agent_factory, tmp_path, pb):
    a, ports, out = start(agent_factory, tmp_path)
    req_cls, resp_cls = export_classes(pb, "traces")
    r = req_cls()
    r.resource_spans.add().scope_spans.add().spans.add(name="ok", trace_id=TID, span_id=SID)
    st, body = post(ports["http"], "/v1/traces", r.SerializeToString(), "application/x-protobuf")
    assert st == 200 and body == b""
    assert a.stop() == 0


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def varint(n):
    b = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        b.append(c | (0x80 if n else 0))
        if not n:
            return bytes(b)


def empty_spans(size):
    inner = b"\x12\x00" * (size // 2)
    ss = b"\x12" + varint(len(inner)) + inner
    return b"\x0a" + varint(len(ss)) + ss


def empty_attributes(size):
    inner = b"\x4a\x00" * (size // 2)  # Span.attributes = 9, empty KeyValue
    span = (b"\x0a\x10" + b"\x01" * 16 + b"\x12\x08" + b"\x02" * 8 + inner)
    span_f = b"\x12" + varint(len(span)) + span
    ss = b"\x12" + varint(len(span_f)) + span_f
    return b"\x0a" + varint(len(ss)) + ss


@pytest.mark.parametrize("shape,size,extra", [
    ("empty spans", 4 << 20, ""),
    ("empty spans", 20 << 20, "        max_request_body_size: 32MiB\n"),
    ("empty attributes", 4 << 20, ""),
])
def test_amplifying_bodies_are_refused_before_decoding(agent_factory, tmp_path, shape, size,
                                                        extra):
    a, ports, out = start(agent_factory, tmp_path, extra_http=extra)
    before = peak_rss_kib(a.proc.pid)
    body = empty_spans(size) if shape == "empty spans" else empty_attributes(size)
    st, resp = post(ports["http"], "/v1/traces", body, "application/x-protobuf")
    assert st == 413, (st, resp[:200])
    assert b"decodes to" in resp and b"fewer items" in resp, resp[:300]
    peak = peak_rss_kib(a.proc.pid)
    budget_kib = 32 << 10  # max_inflight_bytes default
    assert peak - before <= 4 * len(body) // 1024 + budget_kib, (before, peak, len(body))
    assert a.stop() == 0
