"""The jaeger exporter's bytes read by decoders otelite had no hand in.

An OTLP request built here with protoc's Python classes goes through the
test helper jaeger-encode (the exporter's translation and encoders, built
by `make check`); Debian's python3-thrift reads the Thrift batches with
classes thrift-compiler generates from jaeger_batch.thrift (beside this
file), and python3-protobuf reads the api_v2 PostSpansRequests with classes
protoc generates from exporters/jaeger/proto. Every translated field is
compared with what this file expects, worked out here in Python from the
OTLP request: a second implementation of the mapping, not the agent's."""
import base64
import importlib
import json
import os
import pathlib
import struct
import subprocess
import sys

import pytest

from conftest import BIN, ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
ENCODER = os.path.join(os.path.dirname(BIN), "jaeger-encode")
JAEGER_PROTO = os.path.join(ROOT, "exporters", "jaeger", "proto")
MASK64 = (1 << 64) - 1


@pytest.fixture(scope="module")
def jaeger_pb2(tmp_path_factory):
    out = tmp_path_factory.mktemp("jaeger_pb2")
    protos = sorted(str(p) for p in pathlib.Path(JAEGER_PROTO).glob("*.proto"))
    subprocess.run(["protoc", f"--python_out={out}", "-I", JAEGER_PROTO] + protos, check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("jaeger_collector_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def thrift_types(tmp_path_factory):
    out = tmp_path_factory.mktemp("jaeger_thrift")
    subprocess.run(["thrift", "--gen", "py", "-out", str(out),
                    os.path.join(HERE, "jaeger_batch.thrift")], check=True)
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("jaeger_batch.ttypes")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def otlp(otlp_pb2):
    """(trace_service, trace, common) pb2 modules."""
    return otlp_pb2["trace_service_pb2"], sys.modules["trace_pb2"], sys.modules["common_pb2"]


def encode(req_bytes, mode):
    assert os.path.exists(ENCODER), f"{ENCODER} missing: make {os.path.relpath(ENCODER, ROOT)}"
    r = subprocess.run([ENCODER, mode], input=req_bytes, capture_output=True, check=True)
    out, batches = r.stdout, []
    while out:
        (n,) = struct.unpack(">I", out[:4])
        batches.append(out[4:4 + n])
        out = out[4 + n:]
    return batches


# ---- the request ---------------------------------------------------------

TRACE_A = bytes.fromhex("80000000000000aaffffffffffffff01")  # top bit set in both halves
TRACE_B = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]


def set_value(common, av, v):
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        av.int_value = v
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, str):
        av.string_value = v
    elif isinstance(v, bytes):
        av.bytes_value = v
    elif isinstance(v, list):
        av.array_value.SetInParent()
        for x in v:
            set_value(common, av.array_value.values.add(), x)
    elif isinstance(v, dict):
        av.kvlist_value.SetInParent()
        for k, x in v.items():
            kv = av.kvlist_value.values.add(key=k)
            set_value(common, kv.value, x)


def add_attrs(common, field, attrs):
    for k, v in attrs.items():
        set_value(common, field.add(key=k).value, v)


ALL_TYPES = {
    "str": "héllo \"q\"", "t": True, "f": False, "int": -(1 << 63), "big": (1 << 63) - 1,
    "dbl": 3.25, "neg": -1e-300, "bin": b"\x00\xff\x80", "empty_bin": b"",
    "arr": [1, "two", 3.5, False, b"\x01\x02", [None, {"x": 1}]],
    "map": {"a": {"b": [1, 2]}, "s": "v", "n": None}, "earr": [], "emap": {},
}


def build_request(otlp):
    svc, tr, common = otlp
    req = svc.ExportTraceServiceRequest()

    rs = req.resource_spans.add()
    add_attrs(common, rs.resource.attributes,
              {"host.name": "node-1", "service.name": "checkout", "pid": 4242, "up": 0.5,
               "tags": ["a", "b"]})
    ss = rs.scope_spans.add()
    ss.scope.name = "io.example.lib"
    ss.scope.version = "1.4.0"
    root = ss.spans.add(trace_id=TRACE_A, span_id=bytes.fromhex("8000000000000001"),
                        name="GET /cart", kind=tr.Span.SPAN_KIND_SERVER,
                        start_time_unix_nano=1700000000123456789,
                        end_time_unix_nano=1700000000987654321, flags=0x101,
                        trace_state="rojo=00f067aa0ba902b7")
    add_attrs(common, root.attributes, ALL_TYPES)
    root.status.code = tr.Status.STATUS_CODE_ERROR
    root.status.message = "cart service down"
    root.dropped_attributes_count = 2
    root.dropped_events_count = 3
    root.dropped_links_count = 4
    ev = root.events.add(time_unix_nano=1700000000500000123, name="exception")
    add_attrs(common, ev.attributes, {"exception.type": "IOError", "attempt": 2,
                                      "stack": ["f1", "f2"]})
    root.events.add(time_unix_nano=1700000000600000000, name="")
    ev = root.events.add(time_unix_nano=1700000000700000000, name="named")
    add_attrs(common, ev.attributes, {"event": "attr wins"})

    for i, kind in enumerate(KINDS):
        s = ss.spans.add(trace_id=TRACE_A, span_id=bytes([0xf0 + i] * 8), name=f"child-{kind}",
                         parent_span_id=bytes.fromhex("8000000000000001"),
                         kind=getattr(tr.Span, "SPAN_KIND_" + kind),
                         start_time_unix_nano=1700000000200000000 + i,
                         end_time_unix_nano=1700000000300000000 + 7 * i)
        s.status.code = [tr.Status.STATUS_CODE_UNSET, tr.Status.STATUS_CODE_OK,
                         tr.Status.STATUS_CODE_ERROR][i % 3]
        if i % 3 == 1:
            s.status.message = "fine"  # a description without an error is kept too
    links = ss.spans.add(trace_id=TRACE_A, span_id=bytes.fromhex("ff000000000000ff"),
                         name="links", parent_span_id=bytes.fromhex("8000000000000001"),
                         start_time_unix_nano=5, end_time_unix_nano=3)  # end before start
    for trace, span, ref in [(TRACE_B, b"\x11" * 8, None), (TRACE_A, b"\x22" * 8, "child_of"),
                             (TRACE_B, b"\x33" * 8, "child_of"),
                             (TRACE_A, b"\x44" * 8, "follows_from"),
                             (TRACE_A, bytes.fromhex("8000000000000001"), "child_of")]:
        l = links.links.add(trace_id=trace, span_id=span)
        add_attrs(common, l.attributes, {"x": 1} if ref is None else {"opentracing.ref_type": ref})

    req.resource_spans.add()  # no spans: no batch
    rs3 = req.resource_spans.add()  # no service.name
    add_attrs(common, rs3.resource.attributes, {"k8s.pod.name": "p-0"})
    ss3 = rs3.scope_spans.add()
    ss3.spans.add(trace_id=TRACE_B, span_id=b"\x7f" * 8, name="lonely",
                  start_time_unix_nano=1, end_time_unix_nano=1001)
    return req


# ---- what Jaeger should get, worked out from the request ----------------

def raw(common, av):
    w = av.WhichOneof("value")
    if w is None:
        return None
    if w == "bytes_value":
        return base64.b64encode(av.bytes_value).decode()
    if w == "array_value":
        return [raw(common, x) for x in av.array_value.values]
    if w == "kvlist_value":
        return {kv.key: raw(common, kv.value) for kv in av.kvlist_value.values}
    return getattr(av, w)


def tag_of(common, kv):
    """(key, kind, value); arrays and maps compare as parsed JSON."""
    w = kv.value.WhichOneof("value")
    if w == "string_value":
        return (kv.key, "str", kv.value.string_value)
    if w == "bool_value":
        return (kv.key, "bool", kv.value.bool_value)
    if w == "int_value":
        return (kv.key, "int", kv.value.int_value)
    if w == "double_value":
        return (kv.key, "float", kv.value.double_value)
    if w == "bytes_value":
        return (kv.key, "bin", kv.value.bytes_value)
    if w in ("array_value", "kvlist_value"):
        return (kv.key, "json", raw(common, kv.value))
    return (kv.key, "str", "")


def expected(otlp, req):
    _, tr, common = otlp
    kind_names = {tr.Span.SPAN_KIND_SERVER: "server", tr.Span.SPAN_KIND_CLIENT: "client",
                  tr.Span.SPAN_KIND_PRODUCER: "producer", tr.Span.SPAN_KIND_CONSUMER: "consumer"}
    batches = []
    for rs in req.resource_spans:
        spans = [(ss.scope, s) for ss in rs.scope_spans for s in ss.spans]
        if not spans:
            continue
        service = "unknown_service"
        ptags = []
        for kv in rs.resource.attributes:
            if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
                service = kv.value.string_value
            else:
                ptags.append(tag_of(common, kv))
        out = []
        for scope, s in spans:
            refs = []
            if s.parent_span_id and any(s.parent_span_id):
                refs.append((s.trace_id, s.parent_span_id, "CHILD_OF"))
            for l in s.links:
                rt = {kv.key: kv.value.string_value for kv in l.attributes}.get("opentracing.ref_type")
                t = "CHILD_OF" if rt == "child_of" and l.trace_id == s.trace_id else "FOLLOWS_FROM"
                if refs and t == "CHILD_OF" and (l.trace_id, l.span_id) == refs[0][:2]:
                    continue
                refs.append((l.trace_id, l.span_id, t))
            tags = [tag_of(common, kv) for kv in s.attributes]
            if scope.name:
                tags.append(("otel.scope.name", "str", scope.name))
            if scope.version:
                tags.append(("otel.scope.version", "str", scope.version))
            if s.kind in kind_names:
                tags.append(("span.kind", "str", kind_names[s.kind]))
            if s.status.code == tr.Status.STATUS_CODE_OK:
                tags.append(("otel.status_code", "str", "OK"))
            if s.status.code == tr.Status.STATUS_CODE_ERROR:
                tags.append(("otel.status_code", "str", "ERROR"))
                tags.append(("error", "bool", True))
            if s.status.message:
                tags.append(("otel.status_description", "str", s.status.message))
            if s.trace_state:
                tags.append(("w3c.tracestate", "str", s.trace_state))
            for name in ("attributes", "events", "links"):
                n = getattr(s, f"dropped_{name}_count")
                if n:
                    tags.append((f"otel.dropped_{name}_count", "int", n))
            logs = []
            for e in s.events:
                fields = []
                if e.name and not any(kv.key == "event" for kv in e.attributes):
                    fields.append(("event", "str", e.name))
                fields += [tag_of(common, kv) for kv in e.attributes]
                logs.append((e.time_unix_nano, fields))
            out.append({"trace_id": s.trace_id, "span_id": s.span_id, "name": s.name,
                        "refs": refs, "flags": s.flags & 0xff, "start": s.start_time_unix_nano,
                        "duration": max(0, s.end_time_unix_nano - s.start_time_unix_nano),
                        "tags": tags, "logs": logs})
        batches.append({"service": service, "process_tags": ptags, "spans": out})
    return batches


def to_us(ns_value):
    return ns_value // 1000


# ---- api_v2 --------------------------------------------------------------

def pb_tag(kv):
    t = kv.v_type
    if t == 1:
        return (kv.key, "bool", kv.v_bool)
    if t == 2:
        return (kv.key, "int", kv.v_int64)
    if t == 3:
        return (kv.key, "float", kv.v_float64)
    if t == 4:
        return (kv.key, "bin", kv.v_binary)
    return (kv.key, "str", kv.v_str)


def json_aware(want, got):
    """Tags compared, parsing the JSON of arrays and maps."""
    assert len(want) == len(got), (want, got)
    for w, g in zip(want, got):
        if w[1] == "json":
            assert g[0] == w[0] and g[1] == "str", (w, g)
            assert json.loads(g[2]) == w[2], (w, g)
        else:
            assert g == w, (w, g)


def test_api_v2_decodes_with_protobuf(otlp, jaeger_pb2):
    req = build_request(otlp)
    want = expected(otlp, req)
    bodies = encode(req.SerializeToString(), "proto")
    assert len(bodies) == len(want) == 2
    for body, wb in zip(bodies, want):
        r = jaeger_pb2.PostSpansRequest()
        r.ParseFromString(body)
        assert r.SerializeToString() == body, "canonical encoding: nothing unknown, nothing out of order"
        check_pb_batch(r.batch, wb)


def check_pb_batch(b, wb):
    """An api_v2 Batch against one batch of expected() (also used by
    test_jaeger_collector.py on what a collector received)."""
    ref_name = {0: "CHILD_OF", 1: "FOLLOWS_FROM"}
    assert b.process.service_name == wb["service"]
    json_aware(wb["process_tags"], [pb_tag(t) for t in b.process.tags])
    assert len(b.spans) == len(wb["spans"])
    for s, ws in zip(b.spans, wb["spans"]):
        assert s.trace_id == ws["trace_id"] and len(s.trace_id) == 16
        assert s.span_id == ws["span_id"] and len(s.span_id) == 8
        assert s.operation_name == ws["name"]
        assert s.flags == ws["flags"]
        assert s.start_time.seconds * 10**9 + s.start_time.nanos == ws["start"]
        assert s.duration.seconds * 10**9 + s.duration.nanos == ws["duration"]
        assert [(x.trace_id, x.span_id, ref_name[x.ref_type]) for x in s.references] == ws["refs"]
        json_aware(ws["tags"], [pb_tag(t) for t in s.tags])
        assert len(s.logs) == len(ws["logs"])
        for l, (ts, fields) in zip(s.logs, ws["logs"]):
            assert l.timestamp.seconds * 10**9 + l.timestamp.nanos == ts
            json_aware(fields, [pb_tag(t) for t in l.fields])
        assert not s.HasField("process") and s.process_id == "" and not s.warnings


# ---- Thrift --------------------------------------------------------------

def thrift_decode(ttypes, body):
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport
    buf = TTransport.TMemoryBuffer(body)
    b = ttypes.Batch()
    b.read(TBinaryProtocol.TBinaryProtocol(buf))
    b.validate()  # every required field is there
    assert buf._buffer.tell() == len(body), "bytes left after the Batch"
    return b


def th_tag(ttypes, t):
    T = ttypes.TagType
    present = [v for v in (t.vStr, t.vDouble, t.vBool, t.vLong, t.vBinary) if v is not None]
    assert len(present) == 1, f"tag {t.key}: exactly one value field"
    if t.vType == T.BOOL:
        return (t.key, "bool", t.vBool)
    if t.vType == T.LONG:
        return (t.key, "int", t.vLong)
    if t.vType == T.DOUBLE:
        return (t.key, "float", t.vDouble)
    if t.vType == T.BINARY:
        return (t.key, "bin", t.vBinary)
    assert t.vType == T.STRING
    return (t.key, "str", t.vStr)


def halves(trace_id):
    hi, lo = struct.unpack(">qq", trace_id)  # signed, as Thrift's i64
    return hi, lo


def test_thrift_decodes_with_python_thrift(otlp, thrift_types):
    req = build_request(otlp)
    want = expected(otlp, req)
    bodies = encode(req.SerializeToString(), "thrift")
    assert len(bodies) == len(want) == 2
    saw_negative = False
    for body, wb in zip(bodies, want):
        saw_negative |= check_thrift_batch(thrift_types, thrift_decode(thrift_types, body), wb)
    assert saw_negative, "the sample must exercise ids with the top bit set"


def check_thrift_batch(thrift_types, b, wb):
    """A decoded Thrift Batch against one batch of expected(); True when an
    id had its top bit set (also used by test_jaeger_collector.py)."""
    R = thrift_types.SpanRefType
    ref_name = {R.CHILD_OF: "CHILD_OF", R.FOLLOWS_FROM: "FOLLOWS_FROM"}
    saw_negative = False
    assert b.process.serviceName == wb["service"]
    json_aware(wb["process_tags"], [th_tag(thrift_types, t) for t in b.process.tags or []])
    assert (b.process.tags is None) == (not wb["process_tags"]), "optional list only when not empty"
    assert len(b.spans) == len(wb["spans"])
    for s, ws in zip(b.spans, wb["spans"]):
        hi, lo = halves(ws["trace_id"])
        saw_negative |= hi < 0 or lo < 0
        assert (s.traceIdHigh, s.traceIdLow) == (hi, lo)
        assert s.spanId == struct.unpack(">q", ws["span_id"])[0]
        parents = [r for r in ws["refs"] if r[2] == "CHILD_OF" and r[0] == ws["trace_id"]]
        assert s.parentSpanId == (struct.unpack(">q", parents[0][1])[0] if parents else 0)
        assert s.operationName == ws["name"]
        assert s.flags == ws["flags"]
        assert s.startTime == to_us(ws["start"])
        assert s.duration == to_us(ws["duration"])
        got_refs = [(struct.pack(">qq", r.traceIdHigh, r.traceIdLow), struct.pack(">q", r.spanId),
                     ref_name[r.refType]) for r in s.references or []]
        assert got_refs == ws["refs"]
        json_aware(ws["tags"], [th_tag(thrift_types, t) for t in s.tags or []])
        assert len(s.logs or []) == len(ws["logs"])
        for l, (ts, fields) in zip(s.logs or [], ws["logs"]):
            assert l.timestamp == to_us(ts)
            json_aware(fields, [th_tag(thrift_types, t) for t in l.fields])
    return saw_negative


def test_expected_covers_the_issue(otlp):
    """The comparison above is only as good as the request: make sure it
    holds every case the translation distinguishes."""
    req = build_request(otlp)
    want = expected(otlp, req)
    tags = {t[0] for b in want for s in b["spans"] for t in s["tags"]}
    for k in ("span.kind", "otel.status_code", "otel.status_description", "error",
              "otel.scope.name", "otel.scope.version", "w3c.tracestate",
              "otel.dropped_attributes_count", "otel.dropped_events_count",
              "otel.dropped_links_count"):
        assert k in tags, k
    kinds = {t[2] for b in want for s in b["spans"] for t in s["tags"] if t[0] == "span.kind"}
    assert kinds == {"server", "client", "producer", "consumer"}
    types = {t[1] for b in want for s in b["spans"] for t in s["tags"]}
    assert types == {"str", "bool", "int", "float", "bin", "json"}
    refs = [r[2] for b in want for s in b["spans"] for r in s["refs"]]
    assert "CHILD_OF" in refs and "FOLLOWS_FROM" in refs
    assert {b["service"] for b in want} == {"checkout", "unknown_service"}
