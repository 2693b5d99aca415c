"""The `jaeger` exporter against an independent Jaeger collector.

The real agent (OTLP/HTTP receiver -> jaeger exporter) sends to collectors
written here in Python on loopback: a grpcio server for
jaeger.api_v2.CollectorService/PostSpans, with message classes protoc
generates from exporters/jaeger/proto, and an http.server that reads the
Thrift body with python3-thrift and classes thrift-compiler generates from
jaeger_batch.thrift. What arrives is compared field by field with
test_jaeger_decode.py's own reading of the OTLP mapping (expected()).

Also: retryable answers (UNAVAILABLE, 503) are retried until the spans
arrive exactly once; permanent ones (INVALID_ARGUMENT, 400) are sent once,
counted in the agent's /metrics and logged."""
import http.server
import struct
import threading
import time
from concurrent import futures

import grpc
import pytest

from conftest import free_port, http_get, http_post, wait_for
from test_jaeger_decode import (build_request, check_pb_batch, check_thrift_batch,  # noqa: F401
                                expected, jaeger_pb2, otlp, thrift_decode, thrift_types)

POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"


class GrpcCollector:
    """PostSpans on a grpcio server. fail(n, service) -> None (accept) or
    (grpc.StatusCode, message) for the n-th call (0-based), whose batch is
    of that service."""

    def __init__(self, pb2, fail=None):
        self.pb2, self.fail = pb2, fail or (lambda n, svc: None)
        self.calls, self.batches, self.metadata = 0, [], []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._post, request_deserializer=pb2.PostSpansRequest.FromString,
            response_serializer=pb2.PostSpansResponse.SerializeToString)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "jaeger.api_v2.CollectorService", {"PostSpans": handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _post(self, req, context):
        with self.lock:
            n = self.calls
            self.calls += 1
            self.metadata.append(dict(context.invocation_metadata()))
        f = self.fail(n, req.batch.process.service_name)
        if f:
            context.abort(f[0], f[1])
        with self.lock:
            self.batches.append(req.batch)
        return self.pb2.PostSpansResponse()

    def stop(self):
        self.server.stop(0)


class ThriftCollector:
    """POST /api/traces decoded as a Thrift Batch. fail(n, service) -> None
    (202) or an HTTP status for the n-th call."""

    def __init__(self, ttypes, fail=None):
        self.ttypes, self.fail = ttypes, fail or (lambda n, svc: None)
        self.calls, self.batches, self.requests, self.raw_headers = 0, [], [], []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    n = outer.calls
                    outer.calls += 1
                    outer.requests.append((self.path, dict(self.headers)))
                    outer.raw_headers.append(self.headers.items())
                b = thrift_decode(outer.ttypes, body)
                status = outer.fail(n, b.process.serviceName)
                if not status:
                    with outer.lock:
                        outer.batches.append(b)
                    status = 202  # what Jaeger answers
                msg = b"" if status == 202 else b"no thanks"
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def start_agent(agent_factory, exporter_yaml):
    ports = dict(http=free_port(), tel=free_port())
    text = (f"receivers:\n  otlp:\n    protocols:\n      http:\n"
            f"        endpoint: 127.0.0.1:{ports['http']}\n"
            f"exporters:\n  jaeger:\n{exporter_yaml}"
            "    retry_on_failure:\n      initial_interval: 50ms\n      max_interval: 200ms\n"
            "service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [jaeger]}\n"
            f"  telemetry:\n    metrics:\n      endpoint: 127.0.0.1:{ports['tel']}\n")
    a = agent_factory(text)
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    return a, ports


def grpc_yaml(port, extra=""):
    return (f"    endpoint: 127.0.0.1:{port}\n    tls:\n      insecure: true\n"
            f"    headers:\n      x-tenant: jaeger-e2e\n" + extra)


def thrift_yaml(port, extra=""):
    return (f"    protocol: thrift_http\n    endpoint: http://127.0.0.1:{port}/api/traces\n"
            f"    headers:\n      x-tenant: jaeger-e2e\n" + extra)


def post(ports, req):
    return http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", req.SerializeToString(),
                     {"Content-Type": "application/x-protobuf"})[0]


def metric(tel_port, name):
    _, body = http_get(f"http://127.0.0.1:{tel_port}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and 'exporter="jaeger"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def by_service(batches, service_of):
    got = {}
    for b in batches:
        got.setdefault(service_of(b), []).append(b)
    return got


@pytest.fixture
def grpc_collector(jaeger_pb2):
    made = []

    def make(fail=None):
        c = GrpcCollector(jaeger_pb2, fail)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


@pytest.fixture
def thrift_collector(thrift_types):
    made = []

    def make(fail=None):
        c = ThriftCollector(thrift_types, fail)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


# ---- every translated field arrives --------------------------------------

@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_grpc_collector_gets_every_field(agent_factory, grpc_collector, otlp, compression):
    col = grpc_collector()
    a, ports = start_agent(agent_factory, grpc_yaml(col.port, f"    compression: {compression}\n"))
    req = build_request(otlp)
    want = expected(otlp, req)
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= len(want), what="PostSpans calls")
    time.sleep(0.2)
    assert col.calls == len(want) == 2, "one call per resource with spans, nothing twice"
    got = by_service(col.batches, lambda b: b.process.service_name)
    for wb in want:
        (b,) = got[wb["service"]]
        check_pb_batch(b, wb)
    assert all(m.get("x-tenant") == "jaeger-e2e" for m in col.metadata)
    assert f"compression={compression}" in a.log()  # grpcio hides grpc-encoding; it decoded
    assert metric(ports["tel"], "otelite_exporter_sent_spans_total") == sum(
        len(w["spans"]) for w in want)
    assert a.stop() == 0


def test_thrift_collector_gets_every_field(agent_factory, thrift_collector, thrift_types, otlp):
    col = thrift_collector()
    a, ports = start_agent(agent_factory, thrift_yaml(col.port))
    req = build_request(otlp)
    want = expected(otlp, req)
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= len(want), what="Thrift POSTs")
    time.sleep(0.2)
    assert col.calls == len(want) == 2
    for path, headers in col.requests:
        assert path == "/api/traces"
        assert headers["Content-Type"] == "application/x-thrift"
        assert headers["x-tenant"] == "jaeger-e2e"
        assert "Content-Encoding" not in headers
    got = by_service(col.batches, lambda b: b.process.serviceName)
    saw_negative = False
    for wb in want:
        (b,) = got[wb["service"]]
        saw_negative |= check_thrift_batch(thrift_types, b, wb)
    assert saw_negative
    assert metric(ports["tel"], "otelite_exporter_sent_spans_total") == sum(
        len(w["spans"]) for w in want)
    assert a.stop() == 0


# ---- retryable and permanent answers -------------------------------------

def span_ids(batches, spans_of, id_of):
    return sorted(id_of(s) for b in batches for s in spans_of(b))


def test_grpc_unavailable_is_retried_and_nothing_doubles(agent_factory, grpc_collector, otlp):
    # The second resource is refused three times; the first, accepted at
    # once, must not be sent again with it.
    seen = []

    def fail(n, svc):
        seen.append(svc)
        if svc == "unknown_service" and seen.count(svc) <= 3:
            return (grpc.StatusCode.UNAVAILABLE, "warming up")
    col = grpc_collector(fail)
    a, ports = start_agent(agent_factory, grpc_yaml(col.port))
    req = build_request(otlp)
    want = expected(otlp, req)
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= 2, what="spans after retries")
    time.sleep(0.5)
    assert col.calls == 5 and len(col.batches) == 2
    got = span_ids(col.batches, lambda b: b.spans, lambda s: s.span_id)
    assert got == sorted(s["span_id"] for w in want for s in w["spans"]), "each span exactly once"
    assert metric(ports["tel"], "otelite_exporter_retries_total") == 3
    assert metric(ports["tel"], "otelite_exporter_send_failed_spans_total") == 0
    assert a.stop() == 0


def test_grpc_resource_exhausted_is_retried(agent_factory, grpc_collector, otlp):
    col = grpc_collector(lambda n, svc: (grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full")
                         if n < 1 else None)
    a, ports = start_agent(agent_factory, grpc_yaml(col.port))
    assert post(ports, build_request(otlp)) == 200
    wait_for(lambda: len(col.batches) >= 2, what="spans after a retry")
    time.sleep(0.3)
    assert col.calls == 3 and len(col.batches) == 2
    assert a.stop() == 0


def test_thrift_503_is_retried_and_nothing_doubles(agent_factory, thrift_collector, otlp):
    seen = []

    def fail(n, svc):
        seen.append(svc)
        return 503 if svc == "unknown_service" and seen.count(svc) <= 3 else None
    col = thrift_collector(fail)
    a, ports = start_agent(agent_factory, thrift_yaml(col.port))
    req = build_request(otlp)
    want = expected(otlp, req)
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= 2, what="spans after retries")
    time.sleep(0.5)
    assert col.calls == 5 and len(col.batches) == 2
    got = span_ids(col.batches, lambda b: b.spans, lambda s: s.spanId)
    assert got == sorted(struct.unpack(">q", s["span_id"])[0] for w in want for s in w["spans"])
    assert metric(ports["tel"], "otelite_exporter_retries_total") == 3
    assert a.stop() == 0


@pytest.mark.parametrize("proto", ["grpc", "thrift_http"])
def test_permanent_failure_is_not_retried(agent_factory, grpc_collector, thrift_collector, otlp,
                                          proto):
    if proto == "grpc":
        col = grpc_collector(lambda n, svc: (grpc.StatusCode.INVALID_ARGUMENT, "bad span"))
        a, ports = start_agent(agent_factory, grpc_yaml(col.port))
    else:
        col = thrift_collector(lambda n, svc: 400)
        a, ports = start_agent(agent_factory, thrift_yaml(col.port))
    req = build_request(otlp)
    n_spans = sum(len(w["spans"]) for w in expected(otlp, req))
    for _ in range(3):
        assert post(ports, req) == 200
    wait_for(lambda: metric(ports["tel"], "otelite_exporter_send_failed_spans_total") == 3 * n_spans,
             what="failed spans counted")
    time.sleep(0.5)
    assert col.calls == 6, "one call per resource per request, none retried"
    assert metric(ports["tel"], "otelite_exporter_retries_total") == 0
    assert metric(ports["tel"], "otelite_exporter_sent_spans_total") == 0
    why = "INVALID_ARGUMENT" if proto == "grpc" else "HTTP 400"
    assert a.log().count("permanent error") == 1 and why in a.log(), a.log()
    assert a.stop() == 0


@pytest.mark.parametrize("proto", ["grpc", "thrift_http"])
def test_reserved_headers_warn_at_load_and_are_not_sent(agent_factory, grpc_collector,
                                                        thrift_collector, otlp, proto):
    """`headers` naming what the transport sets itself (gRPC: content-type,
    te, user-agent, grpc-*; Thrift/HTTP: Content-Type and the framing
    headers) is warned about when the config loads, and is not sent: the
    collector sees the transport's own values, once, and the spans arrive."""
    if proto == "grpc":
        col = grpc_collector()
        reserved = ["content-type", "te", "user-agent", "grpc-timeout", "grpc-tenant"]
        yaml = grpc_yaml(col.port, "".join(f"      {k}: mine\n" for k in reserved))
        transport = "gRPC"
    else:
        col = thrift_collector()
        reserved = ["Content-Type", "Content-Length", "Transfer-Encoding", "Expect", "Connection"]
        yaml = thrift_yaml(col.port, "".join(f"      {k}: mine\n" for k in reserved))
        transport = "Thrift/HTTP"
    a, ports = start_agent(agent_factory, yaml)
    req = build_request(otlp)
    want = expected(otlp, req)
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= len(want), what="calls")
    warned = [line for line in a.log().splitlines()
              if f"is set by the {transport} transport itself and is not sent" in line]
    for k in reserved:
        assert [w for w in warned if k in w], a.log()
    assert not [w for w in warned if "x-tenant" in w]
    if proto == "grpc":
        for m in col.metadata:
            assert m.get("x-tenant") == "jaeger-e2e"
            assert not [k for k, v in m.items() if "mine" in v], m
            assert "grpc-tenant" not in m
    else:
        for raw in col.raw_headers:
            assert [v for k, v in raw if k.lower() == "content-type"] == ["application/x-thrift"]
            assert not [k for k, v in raw if "mine" in v], raw
            assert dict(raw)["x-tenant"] == "jaeger-e2e"
    assert a.stop() == 0


def test_thrift_with_gzip_is_refused(agent_factory):
    a = agent_factory("receivers:\n  otlp:\n    protocols:\n      http:\n"
                      f"        endpoint: 127.0.0.1:{free_port()}\n"
                      "exporters:\n  jaeger:\n    protocol: thrift_http\n    compression: gzip\n"
                      "service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [jaeger]}\n")
    a.start()
    assert a.proc.wait(10) != 0
    assert "compression" in a.log()


def test_equal_resources_share_one_call(agent_factory, grpc_collector, otlp):
    """A request holding the same resource twice (what the batch processor
    makes of two clients' requests) is one PostSpans with both spans lists."""
    col = grpc_collector()
    a, ports = start_agent(agent_factory, grpc_yaml(col.port))
    one = build_request(otlp)
    req = build_request(otlp)
    req.resource_spans.add().CopyFrom(one.resource_spans[0])
    want = expected(otlp, one)[0]
    assert post(ports, req) == 200
    wait_for(lambda: len(col.batches) >= 2, what="PostSpans calls")
    time.sleep(0.3)
    assert col.calls == 2, "checkout twice is one call, unknown_service another"
    (b,) = by_service(col.batches, lambda b: b.process.service_name)["checkout"]
    assert [s.span_id for s in b.spans] == [s["span_id"] for s in want["spans"]] * 2
    assert a.stop() == 0


def _ld(field, payload):
    """A length-delimited protobuf field, written by hand."""
    n, head = len(payload), bytes([field << 3 | 2])
    while n >= 0x80:
        head += bytes([n & 0x7f | 0x80])
        n >>= 7
    return head + bytes([n]) + payload


@pytest.mark.parametrize("protocol", ["grpc", "thrift_http"])
def test_bytes_the_direct_encoder_declines_take_the_struct_path(
        agent_factory, grpc_collector, thrift_collector, otlp, protocol):
    """A span whose Status comes twice is valid protobuf that decoders
    merge (the code of the second, the message of the first). The exporter's
    direct encoder leaves such bytes to the decoded path: the span still
    arrives, merged as protobuf merges it."""
    svc, tr, common = otlp
    span = tr.Span(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="twice",
                   start_time_unix_nano=1700000000000000000,
                   end_time_unix_nano=1700000000001000000)
    span.status.message = "first"
    span.status.code = tr.Status.STATUS_CODE_OK
    raw = span.SerializeToString() + _ld(15, tr.Status(code=tr.Status.STATUS_CODE_ERROR)
                                         .SerializeToString())
    merged = tr.Span.FromString(raw)  # the reference decoder's reading
    assert merged.status.code == tr.Status.STATUS_CODE_ERROR and merged.status.message == "first"
    rs = tr.ResourceSpans()
    rs.resource.attributes.add(key="service.name").value.string_value = "merge"
    body = _ld(1, rs.SerializeToString() + _ld(2, _ld(2, raw)))
    if protocol == "grpc":
        col = grpc_collector()
        a, ports = start_agent(agent_factory, grpc_yaml(col.port))
    else:
        col = thrift_collector()
        a, ports = start_agent(agent_factory, thrift_yaml(col.port))
    assert http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", body,
                     {"Content-Type": "application/x-protobuf"})[0] == 200
    wait_for(lambda: len(col.batches) >= 1, what="the merged span")
    (b,) = col.batches
    if protocol == "grpc":
        (s,) = b.spans
        tags = {t.key: (t.v_str or t.v_bool) for t in s.tags}
        assert s.operation_name == "twice"
    else:
        (s,) = b.spans
        tags = {t.key: (t.vStr if t.vStr is not None else t.vBool) for t in s.tags}
        assert s.operationName == "twice"
    assert tags["otel.status_code"] == "ERROR"
    assert tags["error"] is True
    assert tags["otel.status_description"] == "first"
    assert a.stop() == 0
