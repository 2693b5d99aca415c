"""The `otlp` receiver against real clients: Python grpcio over gRPC (h2c),
urllib over HTTP with protobuf and JSON. What the agent receives goes to the
`file` exporter and must decode to exactly what was sent.

Message classes are generated at test time from agent/proto with Debian's
protoc, so the check uses a decoder independent of the agent's."""
import base64
import gzip
import json
import time
import urllib.request

import grpc
import pytest
from google.protobuf import json_format

from conftest import TestCA, export_classes, free_port, http_post, read_json_lines

METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
TOP_KEY = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
HEX_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


@pytest.fixture(scope="module")
def pb(otlp_pb2):
    return otlp_pb2


def sample(pb, signal, tag):
    req_cls, _ = export_classes(pb, signal)
    r = req_cls()
    if signal == "traces":
        rs = r.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "py-client"
        ss = rs.scope_spans.add()
        ss.scope.name = "e2e"
        for i in range(3):
            s = ss.spans.add()
            s.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
            s.span_id = bytes([0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, i])
            s.name = f"{tag} span {i} \u00e9"
            s.kind = 2
            s.start_time_unix_nano = 1700000000000000000 + i
            s.end_time_unix_nano = 1700000000000001000 + i
            a = s.attributes.add()
            a.key, a.value.int_value = "http.status_code", 200 + i
            a = s.attributes.add()
            a.key = "tags"
            a.value.array_value.values.add().string_value = "x"
            a.value.array_value.values.add().double_value = 1.5
            ev = s.events.add()
            ev.name, ev.time_unix_nano = "exception", 1700000000000000500
            s.status.code = 2
            s.status.message = "boom"
    elif signal == "metrics":
        rm = r.resource_metrics.add()
        sm = rm.scope_metrics.add()
        m = sm.metrics.add()
        m.name, m.unit = f"{tag}.requests", "1"
        m.sum.aggregation_temporality = 2
        m.sum.is_monotonic = True
        for i in range(2):
            p = m.sum.data_points.add()
            p.as_int = 10 + i
            p.time_unix_nano = 1700000000000000000 + i
            p.attributes.add(key="route").value.string_value = f"/r{i}"
        h = sm.metrics.add()
        h.name = f"{tag}.latency"
        h.histogram.aggregation_temporality = 1
        hp = h.histogram.data_points.add()
        hp.count, hp.sum = 4, 10.5
        hp.bucket_counts.extend([1, 2, 1])
        hp.explicit_bounds.extend([1.0, 5.0])
        g = sm.metrics.add()
        g.name = f"{tag}.temp"
        g.gauge.data_points.add().as_double = -3.25
    else:
        rl = r.resource_logs.add()
        sl = rl.scope_logs.add()
        for i in range(2):
            lr = sl.log_records.add()
            lr.time_unix_nano = 1700000000000000000 + i
            lr.severity_number = 9
            lr.severity_text = "INFO"
            lr.body.string_value = f"{tag} hello {i}"
            lr.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
            lr.span_id = bytes.fromhex("eee19b7ec3c1b174")
            lr.attributes.add(key="n").value.int_value = i
    return r


def map_ids(doc, fn):
    """doc with fn applied to every trace and span id in it: OTLP JSON writes
    them as hex, protobuf's JSON mapping reads bytes as base64."""
    if isinstance(doc, dict):
        return {k: fn(v) if k in HEX_ID_KEYS and isinstance(v, str) else map_ids(v, fn)
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [map_ids(v, fn) for v in doc]
    return doc


def hex_ids_to_base64(doc):
    return map_ids(doc, lambda v: base64.b64encode(bytes.fromhex(v)).decode())


def received(pb, path, signal, want, timeout=15.0):
    """The requests of a signal in the file, once there are want of them."""
    req_cls, _ = export_classes(pb, signal)
    deadline = time.time() + timeout
    while time.time() < deadline:
        docs = [d for d in read_json_lines(path) if TOP_KEY[signal] in d]
        if len(docs) >= want:
            return [json_format.Parse(json.dumps(hex_ids_to_base64(d)), req_cls()) for d in docs]
        time.sleep(0.05)
    raise AssertionError(f"{want} {signal} requests not in {path}:\n{path.read_text()}")


PIPELINES = """\
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
    metrics: {{receivers: [otlp], exporters: [file]}}
    logs: {{receivers: [otlp], exporters: [file]}}
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


@pytest.fixture
def agent(agent_factory, tmp_path):
    ports = dict(grpc=free_port(), http=free_port(), tel=free_port())
    out = tmp_path / "out.jsonl"
    cfg = (f"receivers:\n  otlp:\n    protocols:\n"
           f"      grpc:\n        endpoint: 127.0.0.1:{ports['grpc']}\n"
           f"      http:\n        endpoint: 127.0.0.1:{ports['http']}\n"
           f"exporters:\n  file:\n    path: {out}\n" + PIPELINES.format(tel=ports["tel"]))
    a = agent_factory(cfg)
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    yield a, ports, out
    assert a.stop() == 0


def unary(channel, pb, signal):
    req_cls, resp_cls = export_classes(pb, signal)
    return channel.unary_unary(METHODS[signal], request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)


def test_grpc_each_signal_arrives_intact(agent, pb):
    a, ports, out = agent
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as ch:
        for signal in METHODS:
            sent = sample(pb, signal, "grpc")
            resp = unary(ch, pb, signal)(sent, timeout=5)
            assert not resp.HasField("partial_success")
            assert received(pb, out, signal, 1) == [sent]


def test_grpc_gzip_and_concurrent_calls(agent, pb):
    a, ports, out = agent
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as ch:
        call = unary(ch, pb, "logs")
        sent = [sample(pb, "logs", f"gz{i}") for i in range(8)]
        futs = [call.future(r, timeout=5, compression=grpc.Compression.Gzip) for r in sent]
        for f in futs:
            f.result()
    got = received(pb, out, "logs", len(sent))
    key = lambda r: r.resource_logs[0].scope_logs[0].log_records[0].body.string_value
    assert sorted(got, key=key) == sorted(sent, key=key)


def test_grpc_error_codes(agent, pb):
    a, ports, out = agent
    raw = lambda b: b
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as ch:
        bad = ch.unary_unary(METHODS["traces"], request_serializer=raw, response_deserializer=raw)
        with pytest.raises(grpc.RpcError) as e:
            bad(b"\x0a\x05\x00", timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "offset" in e.value.details()
        nope = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
                              request_serializer=raw, response_deserializer=raw)
        with pytest.raises(grpc.RpcError) as e:
            nope(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        too_big = ch.unary_unary(METHODS["logs"], request_serializer=raw,
                                 response_deserializer=raw)
        with pytest.raises(grpc.RpcError) as e:
            too_big(b"\x00" * (5 << 20), timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # and the receiver still serves
        sent = sample(pb, "traces", "after-errors")
        unary(ch, pb, "traces")(sent, timeout=5)
    assert received(pb, out, "traces", 1) == [sent]


def post(port, path, body, ctype, encoding=None):
    headers = {"Content-Type": ctype}
    if encoding:
        headers["Content-Encoding"] = encoding
    status, h, out = http_post(f"http://127.0.0.1:{port}{path}", body, headers)
    return status, h.get("Content-Type"), out


def test_http_protobuf_json_and_gzip(agent, pb):
    a, ports, out = agent
    paths = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
    for signal, path in paths.items():
        sent_pb = sample(pb, signal, "http-pb")
        st, ct, body = post(ports["http"], path, sent_pb.SerializeToString(),
                            "application/x-protobuf")
        assert (st, ct, body) == (200, "application/x-protobuf", b"")
        sent_gz = sample(pb, signal, "http-gz")
        st, _, _ = post(ports["http"], path, gzip.compress(sent_gz.SerializeToString()),
                        "application/x-protobuf", "gzip")
        assert st == 200
        sent_json = sample(pb, signal, "http-json")
        doc = json_format.MessageToDict(sent_json)
        # OTLP JSON: ids as hex
        doc = map_ids(doc, lambda v: base64.b64decode(v).hex())
        st, ct, body = post(ports["http"], path, json.dumps(doc).encode(), "application/json")
        assert (st, ct) == (200, "application/json")
        assert json.loads(body) == {}
        assert received(pb, out, signal, 3) == [sent_pb, sent_gz, sent_json]


def test_http_errors_carry_status(agent, pb):
    a, ports, out = agent
    st, ct, body = post(ports["http"], "/v1/traces", b"\x0a\x05\x00", "application/x-protobuf")
    assert st == 400 and ct == "application/x-protobuf"
    status = pb["status_pb2"].Status.FromString(body)
    assert status.code == 3 and "offset" in status.message
    st, ct, body = post(ports["http"], "/v1/logs", b"{nope", "application/json")
    assert st == 400 and json.loads(body)["code"] == 3
    assert post(ports["http"], "/v1/logs", b"{}", "text/plain")[0] == 415
    assert post(ports["http"], "/v1/other", b"{}", "application/json")[0] == 404


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    ca = TestCA(tmp_path_factory.mktemp("certs"), key="rsa")
    ca.leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    ca.leaf("client", "extendedKeyUsage=clientAuth")
    return ca.dir


def test_mtls_on_both_transports(agent_factory, tmp_path, pb, certs):
    import ssl
    ports = dict(grpc=free_port(), http=free_port(), tel=free_port())
    out = tmp_path / "tls.jsonl"
    tls = (f"        tls:\n          cert_file: {certs}/server.pem\n"
           f"          key_file: {certs}/server.key\n"
           f"          client_ca_file: {certs}/ca.pem\n")
    cfg = (f"receivers:\n  otlp:\n    protocols:\n"
           f"      grpc:\n        endpoint: 127.0.0.1:{ports['grpc']}\n{tls}"
           f"      http:\n        endpoint: 127.0.0.1:{ports['http']}\n{tls}"
           f"exporters:\n  file:\n    path: {out}\n" + PIPELINES.format(tel=ports["tel"]))
    a = agent_factory(cfg, name="tls")
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    ca, key, crt = ((certs / n).read_bytes() for n in ("ca.pem", "client.key", "client.pem"))
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                         certificate_chain=crt)
    sent = sample(pb, "traces", "mtls")
    with grpc.secure_channel(f"127.0.0.1:{ports['grpc']}", creds) as ch:
        unary(ch, pb, "traces")(sent, timeout=5)
    # without a client certificate the handshake fails
    anon = grpc.ssl_channel_credentials(root_certificates=ca)
    with grpc.secure_channel(f"127.0.0.1:{ports['grpc']}", anon) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, pb, "traces")(sent, timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    req = urllib.request.Request(f"https://127.0.0.1:{ports['http']}/v1/logs",
                                 data=sample(pb, "logs", "mtls").SerializeToString(),
                                 headers={"Content-Type": "application/x-protobuf"},
                                 method="POST")
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        assert r.status == 200
    assert received(pb, out, "traces", 1) == [sent]
    assert received(pb, out, "logs", 1)[0] == sample(pb, "logs", "mtls")
    assert a.stop() == 0
