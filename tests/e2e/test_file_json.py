"""The file exporter's OTLP JSON, through the real binary, read back with
protobuf's own JSON parser (after turning the hex ids OTLP JSON uses into
the base64 proto3 JSON expects) and compared with protobuf's own decoding of
the bytes sent. One body is laid out as protobuf libraries pack it (the
exporter writes JSON straight from those bytes); the other repeats and
reorders fields, which protobuf merges (the exporter decodes that one
first): both must come out as protobuf reads them."""
import base64
import urllib.request

from google.protobuf import json_format

from conftest import export_classes, free_port, wait_for, read_json_lines

TID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SID = bytes.fromhex("eee19b7ec3c1b174")
PSID = bytes.fromhex("0102030405060708")


def start(agent_factory, tmp_path):
    http, tel = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    cfg = (f"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{http}\n"
           f"exporters:\n  file:\n    path: {out}\n"
           "service:\n  pipelines:\n"
           "    traces: {receivers: [otlp], exporters: [file]}\n"
           "    metrics: {receivers: [otlp], exporters: [file]}\n"
           f"  telemetry:\n    metrics:\n      endpoint: 127.0.0.1:{tel}\n")
    a = agent_factory(cfg)
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    return a, http, out


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def hex_to_b64(doc):
    if isinstance(doc, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode()
                    if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str) else hex_to_b64(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [hex_to_b64(v) for v in doc]
    return doc


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def rich_traces(pb):
    req_cls, _ = export_classes(pb, "traces")
    r = req_cls()
    rs = r.resource_spans.add(schema_url="https://example.com/s")
    rs.resource.attributes.add(key="service.name").value.string_value = "svc \"quoted\" é"
    ss = rs.scope_spans.add()
    ss.scope.name = "lib"
    ss.scope.version = "1.2"
    sp = ss.spans.add(name="root", trace_id=TID, span_id=SID, parent_span_id=PSID, kind=2,
                      start_time_unix_nano=1700000000000000001, end_time_unix_nano=1700000000123456789,
                      flags=257, trace_state="a=b", dropped_attributes_count=3)
    for k, setv in (("s", lambda v: setattr(v, "string_value", "GET /x?y=1\n")),
                    ("empty", lambda v: setattr(v, "string_value", "")),
                    ("i", lambda v: setattr(v, "int_value", -42)),
                    ("zero", lambda v: setattr(v, "int_value", 0)),
                    ("d", lambda v: setattr(v, "double_value", 0.125)),
                    ("big", lambda v: setattr(v, "double_value", 1.2345678901234567e300)),
                    ("b", lambda v: setattr(v, "bool_value", False)),
                    ("raw", lambda v: setattr(v, "bytes_value", b"\x00\xff"))):
        setv(sp.attributes.add(key=k).value)
    arr = sp.attributes.add(key="arr").value.array_value
    arr.values.add().int_value = 5
    arr.values.add().kvlist_value.values.add(key="n").value.string_value = "v"
    sp.events.add(name="exception", time_unix_nano=5).attributes.add(key="m").value.string_value = "boom"
    sp.links.add(trace_id=TID, span_id=SID)
    sp.status.code = 2
    sp.status.message = "failed"
    ss.spans.add(name="child", trace_id=TID, span_id=SID)
    return r


def check_line(pb, line, want_bytes, signal="traces"):
    req_cls, _ = export_classes(pb, signal)
    want = req_cls()
    want.ParseFromString(want_bytes)
    got = req_cls()
    json_format.ParseDict(hex_to_b64(line), got)
    assert got == want, f"{json_format.MessageToDict(got)}\n!=\n{json_format.MessageToDict(want)}"


def test_packed_and_merged_bodies_come_out_as_protobuf_reads_them(agent_factory, tmp_path, otlp_pb2):
    a, port, out = start(agent_factory, tmp_path)
    body = rich_traces(otlp_pb2).SerializeToString()
    post(port, "/v1/traces", body)
    # A span sent as two halves (protobuf merges them: the later name and
    # kind win, attributes add up), its fields out of order. (A singular
    # message sent twice is left out: protobuf-c's merge of proto3 messages
    # drops the first one's scalars, a decoder matter this test leaves alone.)
    span_cls = type(rich_traces(otlp_pb2).resource_spans[0].scope_spans[0].spans[0])
    a1 = span_cls(name="first", trace_id=TID, span_id=SID, kind=1)
    a1.attributes.add(key="k1").value.string_value = "v1"
    a2 = span_cls(name="second", kind=3)
    a2.attributes.add(key="k2").value.int_value = 2
    a2.status.message = "m"
    merged = field(1, field(2, field(2, a1.SerializeToString() + a2.SerializeToString())))
    post(port, "/v1/traces", merged)
    lines = wait_for(lambda: (lambda l: l if len(l) >= 2 else None)(read_json_lines(out)), timeout=10)
    assert lines, "the file exporter wrote nothing"
    check_line(otlp_pb2, lines[0], body)
    check_line(otlp_pb2, lines[1], merged)
    assert lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == TID.hex()
    assert lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] == "1700000000000000001"
    assert lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "second"


def test_metrics_with_doubles_and_histograms(agent_factory, tmp_path, otlp_pb2):
    a, port, out = start(agent_factory, tmp_path)
    req_cls, _ = export_classes(otlp_pb2, "metrics")
    r = req_cls()
    sm = r.resource_metrics.add().scope_metrics.add()
    g = sm.metrics.add(name="g", unit="ms")
    for i, v in enumerate((0.1, 2.5, -3.75, 1e-7, 123456.789, 3.0, float("inf"), 0.0)):
        g.gauge.data_points.add(time_unix_nano=i + 1, as_double=v)
    h = sm.metrics.add(name="h").histogram
    h.aggregation_temporality = 2
    p = h.data_points.add(count=6, sum=0.0, min=0.5, bucket_counts=[1, 0, 5], explicit_bounds=[1.0, 2.5])
    p.attributes.add(key="x").value.string_value = "y"
    e = sm.metrics.add(name="e").exponential_histogram.data_points.add(count=6, zero_count=1, scale=-2)
    e.positive.offset = -3
    e.positive.bucket_counts.extend([2, 3])
    body = r.SerializeToString()
    post(port, "/v1/metrics", body)
    lines = wait_for(lambda: read_json_lines(out) or None, timeout=10)
    assert lines, "the file exporter wrote nothing"
    check_line(otlp_pb2, lines[0], body, "metrics")
