"""The `otlp` (gRPC) and `otlphttp` exporters against real servers: a Python
grpcio server and Python http.server backends, and agent-to-agent chains.

Data goes in through the agent's OTLP/HTTP receiver as protobuf and must come
out at the backend decoding to the same message. The HTTP backends also
answer 503 + Retry-After, 400 and partial success, to check what the
exporter retries and what it counts.

Python message classes are generated at test time from agent/proto with
Debian's protoc, so the test reads the wire with an independent decoder."""
import gzip
import json
import os
import shutil
import subprocess
import ssl
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from conftest import (TestCA, export_classes, free_port, http_get, http_post,
                      read_json_lines, wait_for)

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}


# ---- generated message classes ---------------------------------------------

@pytest.fixture(scope="module")
def pb(otlp_pb2):
    class PB:
        trace = otlp_pb2["trace_service_pb2"]
        metrics = otlp_pb2["metrics_service_pb2"]
        logs = otlp_pb2["logs_service_pb2"]
        status = otlp_pb2["status_pb2"]

        @staticmethod
        def request_class(signal):
            return export_classes(otlp_pb2, signal)[0]
    return PB


def sample(pb, signal, tag="e2e"):
    """A small request of each signal, with a distinct tag in it."""
    if signal == "traces":
        r = pb.trace.ExportTraceServiceRequest()
        rs = r.resource_spans.add()
        a = rs.resource.attributes.add()
        a.key, a.value.string_value = "service.name", "checkout"
        ss = rs.scope_spans.add()
        ss.scope.name = "e2e"
        for i in range(3):
            sp = ss.spans.add()
            sp.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
            sp.span_id = bytes([0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, i])
            sp.name = f"{tag} GET /cart {i}"
            sp.kind = 2
            sp.start_time_unix_nano = 1544712660000000000 + i
            sp.end_time_unix_nano = 1544712661000000000 + i
            at = sp.attributes.add()
            at.key, at.value.int_value = "http.status_code", 200
        return r
    if signal == "metrics":
        r = pb.metrics.ExportMetricsServiceRequest()
        rm = r.resource_metrics.add()
        a = rm.resource.attributes.add()
        a.key, a.value.string_value = "service.name", "checkout"
        sm = rm.scope_metrics.add()
        m = sm.metrics.add()
        m.name = f"{tag}.requests"
        m.sum.aggregation_temporality = 2
        m.sum.is_monotonic = True
        for i in range(2):
            dp = m.sum.data_points.add()
            dp.as_int = 10 + i
            dp.time_unix_nano = 1544712660000000000 + i
        return r
    r = pb.logs.ExportLogsServiceRequest()
    rl = r.resource_logs.add()
    a = rl.resource.attributes.add()
    a.key, a.value.string_value = "service.name", "checkout"
    sl = rl.scope_logs.add()
    lr = sl.log_records.add()
    lr.time_unix_nano = 1544712660000000000
    lr.severity_number = 9
    lr.body.string_value = f"{tag} hello from the log"
    return r


def post_proto(port, signal, msg):
    return http_post(f"http://127.0.0.1:{port}/v1/{signal}", msg.SerializeToString(),
                     {"Content-Type": "application/x-protobuf"})[0]


def metric_value(tel_port, name, labels):
    status, body = http_get(f"http://127.0.0.1:{tel_port}/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and all(l in line for l in labels):
            return float(line.rsplit(" ", 1)[1])
    return None


# ---- backends --------------------------------------------------------------

class GrpcSink:
    """A grpcio server that takes raw request bytes for the three Export
    methods. `answer(signal, n)` may return None (OK), a response message,
    or (code, message, trailing_metadata) to fail the n-th call."""

    def __init__(self, answer=None, port=0, creds=None):
        self.calls = []  # (signal, bytes, metadata dict, time)
        self.lock = threading.Lock()
        self.answer = answer
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = []
        for sig, svc in SERVICES.items():
            handlers.append(grpc.method_handlers_generic_handler(svc, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self._handler(sig), request_deserializer=None, response_serializer=None)}))
        self.server.add_generic_rpc_handlers(tuple(handlers))
        addr = f"127.0.0.1:{port}"
        self.port = (self.server.add_secure_port(addr, creds) if creds
                     else self.server.add_insecure_port(addr))
        assert self.port and (not port or self.port == port)
        self.server.start()

    def _handler(self, sig):
        def handle(request, context):
            with self.lock:
                self.calls.append((sig, bytes(request), dict(context.invocation_metadata()),
                                   time.time()))
                n = sum(1 for c in self.calls if c[0] == sig)
            a = self.answer(sig, n) if self.answer else None
            if isinstance(a, tuple):
                code, msg, trailers = a
                if trailers:
                    context.set_trailing_metadata(trailers)
                context.abort(code, msg)
            return a.SerializeToString() if a is not None else b""
        return handle

    def of(self, sig):
        with self.lock:
            return [c for c in self.calls if c[0] == sig]

    def stop(self):
        self.server.stop(0)


class HttpSink:
    """An OTLP/HTTP backend. `answer(path, n)` returns (status, headers,
    body) for the n-th request to a path, or None for 200 with an empty
    protobuf body."""

    def __init__(self, answer=None, tls=None):
        self.requests = []  # (path, headers, raw body, decoded body, time)
        self.lock = threading.Lock()
        self.answer = answer
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                with sink.lock:
                    sink.requests.append((self.path, dict(self.headers), raw, body, time.time()))
                    k = sum(1 for r in sink.requests if r[0] == self.path)
                a = sink.answer(self.path, k) if sink.answer else None
                status, headers, out = a if a else (200, {"Content-Type": "application/x-protobuf"}, b"")
                self.send_response(status)
                for hk, hv in headers.items():
                    self.send_header(hk, hv)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def to(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def grpc_sink():
    made = []

    def make(answer=None, port=0, creds=None):
        s = GrpcSink(answer, port, creds)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def http_sink():
    made = []

    def make(answer=None, tls=None):
        s = HttpSink(answer, tls)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


# ---- agent configs ---------------------------------------------------------

PIPELINES = """\
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [{exp}]}}
    metrics: {{receivers: [otlp], exporters: [{exp}]}}
    logs: {{receivers: [otlp], exporters: [{exp}]}}
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def agent_with(agent_factory, exporter_yaml, exp="otlp", name="agent"):
    ports = dict(http=free_port(), tel=free_port())
    text = (f"receivers:\n  otlp:\n    protocols:\n      http:\n"
            f"        endpoint: 127.0.0.1:{ports['http']}\n"
            f"exporters:\n{exporter_yaml}" + PIPELINES.format(exp=exp, tel=ports["tel"]))
    a = agent_factory(text, name=name)
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    return a, ports


def grpc_exporter(port, extra=""):
    return (f"  otlp:\n    endpoint: 127.0.0.1:{port}\n    tls:\n      insecure: true\n"
            f"    headers:\n      x-tenant: e2e\n"
            f"    retry_on_failure:\n      initial_interval: 100ms\n      max_interval: 500ms\n"
            + extra)


def http_exporter(port, extra=""):
    return (f"  otlphttp:\n    endpoint: http://127.0.0.1:{port}\n"
            f"    headers:\n      x-tenant: e2e\n" + extra)


# ---- otlp (gRPC) -----------------------------------------------------------

def test_grpc_exporter_delivers_every_signal_unchanged(agent_factory, grpc_sink, pb):
    sink = grpc_sink()
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port))
    for sig in SERVICES:
        assert post_proto(ports["http"], sig, sample(pb, sig)) == 200
    for sig in SERVICES:
        calls = wait_for(lambda: sink.of(sig), what=f"{sig} at the gRPC server")
        got = pb.request_class(sig)()
        got.ParseFromString(calls[0][1])
        assert got == sample(pb, sig), f"{sig}: {got}"
        assert calls[0][2].get("x-tenant") == "e2e"
    assert agent.stop() == 0


def test_grpc_exporter_without_compression(agent_factory, grpc_sink, pb):
    sink = grpc_sink()
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port, "    compression: none\n"))
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    calls = wait_for(lambda: sink.of("logs"), what="logs")
    got = pb.logs.ExportLogsServiceRequest()
    got.ParseFromString(calls[0][1])
    assert got == sample(pb, "logs")
    agent.stop()


def test_grpc_unavailable_is_retried(agent_factory, grpc_sink, pb):
    sink = grpc_sink(lambda sig, n: (grpc.StatusCode.UNAVAILABLE, "warming up", None)
                     if n == 1 else None)
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port))
    assert post_proto(ports["http"], "traces", sample(pb, "traces")) == 200
    calls = wait_for(lambda: len(sink.of("traces")) >= 2 and sink.of("traces"), what="a retry")
    assert calls[0][1] == calls[1][1]
    time.sleep(0.5)
    assert len(sink.of("traces")) == 2
    agent.stop()


def retry_info_trailer(pb, seconds):
    st = pb.status.Status(code=8, message="slow down")
    ri = pb.status.RetryInfo()
    ri.retry_delay.seconds = seconds
    d = st.details.add()
    d.type_url = "type.googleapis.com/google.rpc.RetryInfo"
    d.value = ri.SerializeToString()
    return (("grpc-status-details-bin", st.SerializeToString()),)


def test_grpc_resource_exhausted_with_retry_info_waits_as_told(agent_factory, grpc_sink, pb):
    sink = grpc_sink(lambda sig, n: (grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down",
                                     retry_info_trailer(pb, 1)) if n == 1 else None)
    # A long backoff: only the server's RetryInfo can make the retry come
    # back within a few seconds.
    exp = grpc_exporter(sink.port).replace("initial_interval: 100ms", "initial_interval: 20s") \
        .replace("max_interval: 500ms", "max_interval: 30s")
    agent, ports = agent_with(agent_factory, exp)
    assert post_proto(ports["http"], "metrics", sample(pb, "metrics")) == 200
    calls = wait_for(lambda: len(sink.of("metrics")) >= 2 and sink.of("metrics"), timeout=8,
                     what="the retry after RetryInfo")
    gap = calls[1][3] - calls[0][3]
    assert 0.9 <= gap < 5, gap
    agent.stop()


def test_grpc_resource_exhausted_without_retry_info_is_dropped(agent_factory, grpc_sink, pb):
    sink = grpc_sink(lambda sig, n: (grpc.StatusCode.RESOURCE_EXHAUSTED, "too big", None))
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port))
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    wait_for(lambda: sink.of("logs"), what="the first call")
    time.sleep(1.5)
    assert len(sink.of("logs")) == 1
    agent.stop()


def test_grpc_partial_success_is_counted(agent_factory, grpc_sink, pb):
    def answer(sig, n):
        r = pb.trace.ExportTraceServiceResponse()
        r.partial_success.rejected_spans = 2
        r.partial_success.error_message = "two spans too old"
        return r
    sink = grpc_sink(answer)
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port))
    assert post_proto(ports["http"], "traces", sample(pb, "traces")) == 200
    v = wait_for(lambda: metric_value(ports["tel"], "otelite_exporter_partial_rejected_spans_total",
                                      ['exporter="otlp"']), what="the partial-success counter")
    assert v == 2
    agent.wait_log("two spans too old")
    assert len(sink.of("traces")) == 1
    agent.stop()


def test_grpc_exporter_reconnects_after_the_server_restarts(agent_factory, grpc_sink, pb):
    sink = grpc_sink()
    port = sink.port
    agent, ports = agent_with(agent_factory, grpc_exporter(port))
    assert post_proto(ports["http"], "logs", sample(pb, "logs", "first")) == 200
    wait_for(lambda: sink.of("logs"), what="the first batch")
    sink.stop()
    time.sleep(0.3)
    assert post_proto(ports["http"], "logs", sample(pb, "logs", "second")) == 200
    time.sleep(0.5)
    # The same port again: the exporter must find it by itself.
    again = grpc_sink(port=port)
    calls = wait_for(lambda: again.of("logs"), timeout=15, what="the batch after a restart")
    got = pb.logs.ExportLogsServiceRequest()
    got.ParseFromString(calls[0][1])
    assert got == sample(pb, "logs", "second")
    agent.stop()


# ---- TLS -------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for the name otlp.test only, one for the
    IP 127.0.0.1, and a client certificate, all signed by the CA."""
    ca = TestCA(tmp_path_factory.mktemp("certs"))

    def leaf(name, san, usage):
        return ca.leaf(name, f"subjectAltName={san}\nextendedKeyUsage={usage}")
    return {"ca": ca.ca,
            "named": leaf("named", "DNS:otlp.test", "serverAuth"),
            "ip": leaf("ip", "IP:127.0.0.1", "serverAuth"),
            "client": leaf("client", "DNS:client", "clientAuth")}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_grpc_exporter_over_mutual_tls_with_name_override(agent_factory, grpc_sink, pb, certs):
    creds = grpc.ssl_server_credentials(
        [(read(certs["named"]["key"]), read(certs["named"]["cert"]))],
        root_certificates=read(certs["ca"]), require_client_auth=True)
    sink = grpc_sink(creds=creds)
    exp = (f"  otlp:\n    endpoint: 127.0.0.1:{sink.port}\n    tls:\n"
           f"      ca_file: {certs['ca']}\n      cert_file: {certs['client']['cert']}\n"
           f"      key_file: {certs['client']['key']}\n      server_name_override: otlp.test\n")
    agent, ports = agent_with(agent_factory, exp)
    assert post_proto(ports["http"], "traces", sample(pb, "traces")) == 200
    calls = wait_for(lambda: sink.of("traces"), what="traces over mTLS")
    got = pb.trace.ExportTraceServiceRequest()
    got.ParseFromString(calls[0][1])
    assert got == sample(pb, "traces")
    assert agent.stop() == 0


def test_grpc_exporter_refuses_a_certificate_for_another_name(agent_factory, grpc_sink, pb, certs):
    creds = grpc.ssl_server_credentials(
        [(read(certs["named"]["key"]), read(certs["named"]["cert"]))])
    sink = grpc_sink(creds=creds)
    exp = f"  otlp:\n    endpoint: https://127.0.0.1:{sink.port}\n    tls:\n      ca_file: {certs['ca']}\n"
    agent, ports = agent_with(agent_factory, exp)
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    agent.wait_log("certificate verify failed")
    assert not sink.of("logs")
    agent.stop()


def test_http_exporter_over_tls(agent_factory, http_sink, pb, certs):
    sink = http_sink(tls=certs["ip"])
    exp = (f"  otlphttp:\n    endpoint: https://127.0.0.1:{sink.port}\n"
           f"    tls:\n      ca_file: {certs['ca']}\n")
    agent, ports = agent_with(agent_factory, exp, exp="otlphttp")
    assert post_proto(ports["http"], "metrics", sample(pb, "metrics")) == 200
    reqs = wait_for(lambda: sink.to("/v1/metrics"), what="metrics over TLS")
    got = pb.metrics.ExportMetricsServiceRequest()
    got.ParseFromString(reqs[0][3])
    assert got == sample(pb, "metrics")
    assert agent.stop() == 0


@pytest.fixture(scope="module")
def system_ca(tmp_path_factory):
    """A second CA that stands for the system's trust store: its
    certificate in a hashed directory (what SSL_CERT_DIR points OpenSSL
    at), and a server certificate for 127.0.0.1 that it signed."""
    ca = TestCA(tmp_path_factory.mktemp("sysca"), cn="otelite test system CA")
    store = tmp_path_factory.mktemp("sysstore")
    shutil.copy(ca.ca, store / "system-ca.pem")
    subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
    return {"dir": str(store),
            "ip": ca.leaf("sysip", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")}


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("exp", ["otlphttp", "otlp"])
def test_exporter_trusts_the_system_pool_beside_its_own_ca_when_asked(
        agent_factory, http_sink, grpc_sink, pb, certs, system_ca, monkeypatch, exp, include):
    # ca_file names a CA that did not sign the peer; only the system store did.
    monkeypatch.setenv("SSL_CERT_DIR", system_ca["dir"])
    tls = (f"    tls:\n      ca_file: {certs['ca']}\n"
           f"      include_system_ca_certs_pool: {'true' if include else 'false'}\n")
    if exp == "otlphttp":
        sink = http_sink(tls=system_ca["ip"])
        got = lambda: sink.to("/v1/logs")
    else:
        leaf = system_ca["ip"]
        sink = grpc_sink(creds=grpc.ssl_server_credentials([(read(leaf["key"]), read(leaf["cert"]))]))
        got = lambda: sink.of("logs")
    agent, ports = agent_with(agent_factory,
                              f"  {exp}:\n    endpoint: https://127.0.0.1:{sink.port}\n" + tls, exp=exp)
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    if include:
        wait_for(got, what="logs to a peer the system store vouches for")
    else:
        agent.wait_log("certificate")
        assert not got()
    agent.stop()


# ---- otlphttp --------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_http_exporter_posts_each_signal_to_its_path(agent_factory, http_sink, pb, encoding):
    sink = http_sink()
    agent, ports = agent_with(agent_factory, http_exporter(sink.port, f"    encoding: {encoding}\n"),
                              exp="otlphttp")
    for sig in SERVICES:
        assert post_proto(ports["http"], sig, sample(pb, sig)) == 200
    for sig in SERVICES:
        reqs = wait_for(lambda: sink.to(f"/v1/{sig}"), what=f"POST /v1/{sig}")
        path, headers, raw, body, _ = reqs[0]
        assert headers.get("x-tenant") == "e2e"
        assert headers.get("Content-Encoding") == "gzip"
        assert raw[:2] == b"\x1f\x8b"
        if encoding == "proto":
            assert headers["Content-Type"] == "application/x-protobuf"
            got = pb.request_class(sig)()
            got.ParseFromString(body)
            assert got == sample(pb, sig)
        else:
            assert headers["Content-Type"] == "application/json"
            doc = json.loads(body)
            if sig == "traces":
                span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
                assert span["traceId"] == "5b8efff798038103d269b633813fc60c"
                assert span["name"] == "e2e GET /cart 0"
                assert span["startTimeUnixNano"] == "1544712660000000000"
            elif sig == "metrics":
                m = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
                assert m["name"] == "e2e.requests"
                assert [p["asInt"] for p in m["sum"]["dataPoints"]] == ["10", "11"]
            else:
                rec = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
                assert rec["body"]["stringValue"] == "e2e hello from the log"
    agent.stop()


def test_http_exporter_signal_endpoint_overrides_and_no_compression(agent_factory, http_sink, pb):
    sink = http_sink()
    extra = (f"    traces_endpoint: http://127.0.0.1:{sink.port}/custom/spans\n"
             f"    compression: none\n")
    agent, ports = agent_with(agent_factory, http_exporter(sink.port, extra), exp="otlphttp")
    assert post_proto(ports["http"], "traces", sample(pb, "traces")) == 200
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    reqs = wait_for(lambda: sink.to("/custom/spans"), what="POST /custom/spans")
    assert "Content-Encoding" not in reqs[0][1]
    got = pb.trace.ExportTraceServiceRequest()
    got.ParseFromString(reqs[0][2])
    assert got == sample(pb, "traces")
    wait_for(lambda: sink.to("/v1/logs"), what="POST /v1/logs")
    assert not sink.to("/v1/traces")
    agent.stop()


def test_http_503_with_retry_after_is_retried_after_the_delay(agent_factory, http_sink, pb):
    sink = http_sink(lambda path, n: (503, {"Retry-After": "1"}, b"") if n == 1 else None)
    # The configured backoff is far longer than Retry-After: a retry within
    # a few seconds can only come from honouring the header.
    extra = "    retry_on_failure:\n      initial_interval: 20s\n      max_interval: 30s\n"
    agent, ports = agent_with(agent_factory, http_exporter(sink.port, extra), exp="otlphttp")
    assert post_proto(ports["http"], "traces", sample(pb, "traces")) == 200
    reqs = wait_for(lambda: len(sink.to("/v1/traces")) >= 2 and sink.to("/v1/traces"), timeout=8,
                    what="the retry after 503")
    gap = reqs[1][4] - reqs[0][4]
    assert 0.9 <= gap < 5, gap
    assert reqs[0][3] == reqs[1][3]
    got = pb.trace.ExportTraceServiceRequest()
    got.ParseFromString(reqs[1][3])
    assert got == sample(pb, "traces")
    agent.stop()


def test_http_400_is_not_retried_and_logs_the_status_message(agent_factory, http_sink, pb):
    def answer(path, n):
        st = pb.status.Status(code=3, message="span name too long")
        return 400, {"Content-Type": "application/x-protobuf"}, st.SerializeToString()
    sink = http_sink(answer)
    extra = "    retry_on_failure:\n      initial_interval: 100ms\n      max_interval: 200ms\n"
    agent, ports = agent_with(agent_factory, http_exporter(sink.port, extra), exp="otlphttp")
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    wait_for(lambda: sink.to("/v1/logs"), what="the first request")
    time.sleep(1.5)
    assert len(sink.to("/v1/logs")) == 1
    agent.wait_log("span name too long")
    agent.stop()


def test_http_partial_success_json_is_counted(agent_factory, http_sink, pb):
    def answer(path, n):
        body = json.dumps({"partialSuccess": {"rejectedLogRecords": "1",
                                              "errorMessage": "one record refused"}}).encode()
        return 200, {"Content-Type": "application/json"}, body
    sink = http_sink(answer)
    agent, ports = agent_with(agent_factory, http_exporter(sink.port, "    encoding: json\n"),
                              exp="otlphttp")
    assert post_proto(ports["http"], "logs", sample(pb, "logs")) == 200
    v = wait_for(lambda: metric_value(ports["tel"],
                                      "otelite_exporter_partial_rejected_log_records_total",
                                      ['exporter="otlphttp"']), what="the partial-success counter")
    assert v == 1
    agent.wait_log("one record refused")
    assert len(sink.to("/v1/logs")) == 1
    agent.stop()


# ---- agent to agent --------------------------------------------------------

@pytest.mark.parametrize("hop", ["otlp", "otlphttp"])
def test_agent_to_agent_chain(agent_factory, tmp_path, pb, hop):
    out = tmp_path / f"b-{hop}.jsonl"
    b_grpc, b_http, b_tel = free_port(), free_port(), free_port()
    b_cfg = (f"receivers:\n  otlp:\n    protocols:\n"
             f"      grpc:\n        endpoint: 127.0.0.1:{b_grpc}\n"
             f"      http:\n        endpoint: 127.0.0.1:{b_http}\n"
             f"exporters:\n  file:\n    path: {out}\n"
             + PIPELINES.format(exp="file", tel=b_tel))
    b = agent_factory(b_cfg, name="b")
    b.start(wait_url=f"http://127.0.0.1:{b_tel}/readyz")
    if hop == "otlp":
        exp = f"  otlp:\n    endpoint: http://127.0.0.1:{b_grpc}\n"  # http:// = plaintext
    else:
        exp = f"  otlphttp:\n    endpoint: http://127.0.0.1:{b_http}\n"
    a, ports = agent_with(agent_factory, exp, exp=hop, name="a")
    for sig in SERVICES:
        assert post_proto(ports["http"], sig, sample(pb, sig, hop)) == 200

    def arrived():
        lines = read_json_lines(out)
        keys = {k for l in lines for k in l}
        return lines if {"resourceSpans", "resourceMetrics", "resourceLogs"} <= keys else None
    lines = wait_for(arrived, timeout=15, what="all three signals in agent B's file")
    spans = [s for l in lines if "resourceSpans" in l for rs in l["resourceSpans"]
             for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["name"] for s in spans) == [f"{hop} GET /cart {i}" for i in range(3)]
    assert spans[0]["traceId"] == "5b8efff798038103d269b633813fc60c"
    logs = [r for l in lines if "resourceLogs" in l for rl in l["resourceLogs"]
            for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    assert logs[0]["body"]["stringValue"] == f"{hop} hello from the log"
    assert a.stop() == 0
    assert b.stop() == 0


@pytest.mark.parametrize("tls", [False, True])
def test_grpc_exporter_sends_a_large_batch_through_flow_control(agent_factory, grpc_sink, pb,
                                                                certs, tls):
    if tls:
        sink = grpc_sink(creds=grpc.ssl_server_credentials(
            [(read(certs["ip"]["key"]), read(certs["ip"]["cert"]))]))
        exp = (f"  otlp:\n    endpoint: 127.0.0.1:{sink.port}\n    compression: none\n"
               f"    tls:\n      ca_file: {certs['ca']}\n")
    else:
        sink = grpc_sink()
        exp = grpc_exporter(sink.port, "    compression: none\n")
    agent, ports = agent_with(agent_factory, exp)
    big = sample(pb, "logs")
    rec = big.resource_logs[0].scope_logs[0].log_records[0]
    # 3 MB of text, well past HTTP/2's 64 KiB default windows.
    rec.body.string_value = os.urandom(3 * 512 * 1024).hex()
    assert post_proto(ports["http"], "logs", big) == 200
    calls = wait_for(lambda: sink.of("logs"), what="the large batch")
    got = pb.logs.ExportLogsServiceRequest()
    got.ParseFromString(calls[0][1])
    assert got == big
    agent.stop()


def test_grpc_exporter_many_concurrent_batches(agent_factory, grpc_sink, pb):
    sink = grpc_sink()
    extra = "    num_connections: 2\n    sending_queue:\n      num_consumers: 4\n"
    agent, ports = agent_with(agent_factory, grpc_exporter(sink.port, extra))
    n = 200
    errors = []

    def post(i):
        if post_proto(ports["http"], "traces", sample(pb, "traces", f"b{i}")) != 200:
            errors.append(i)
    with futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(post, range(n)))
    assert not errors
    wait_for(lambda: len(sink.of("traces")) >= n, timeout=20, what=f"{n} batches")
    names = set()
    for c in sink.of("traces"):
        r = pb.trace.ExportTraceServiceRequest()
        r.ParseFromString(c[1])
        names |= {s.name.split()[0] for rs in r.resource_spans for ss in rs.scope_spans
                  for s in ss.spans}
    assert names == {f"b{i}" for i in range(n)}
    assert agent.stop() == 0


def test_grpc_exporter_persistent_queue_survives_kill_9(agent_factory, grpc_sink, pb, tmp_path):
    port = free_port()  # nobody listens yet
    ports = dict(http=free_port(), tel=free_port())
    text = (f"receivers:\n  otlp:\n    protocols:\n      http:\n"
            f"        endpoint: 127.0.0.1:{ports['http']}\n"
            f"extensions:\n  file_storage:\n    directory: {tmp_path / 'queue'}\n"
            f"exporters:\n" + grpc_exporter(port, "    sending_queue: {storage: file_storage}\n")
            + PIPELINES.format(exp="otlp", tel=ports["tel"])
            + "  extensions: [file_storage]\n")
    a = agent_factory(text, name="a")
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    tags = [f"kept{i}" for i in range(5)]
    for t in tags:
        assert post_proto(ports["http"], "traces", sample(pb, "traces", t)) == 200
    a.proc.kill()
    a.proc.wait()
    sink = grpc_sink(port=port)
    a2 = agent_factory(text, name="a2")
    a2.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")

    def seen():
        names = set()
        for c in sink.of("traces"):
            r = pb.trace.ExportTraceServiceRequest()
            r.ParseFromString(c[1])
            names |= {s.name.split()[0] for rs in r.resource_spans for ss in rs.scope_spans
                      for s in ss.spans}
        return set(tags) <= names
    wait_for(seen, timeout=15, what="the batches queued on disk before kill -9")
    assert a2.stop() == 0
