"""Issue 19 in the real binary: protobuf requests (made with Python's
protobuf, an encoder independent of the agent's) go through filter,
attributes and resource to the otlphttp exporter and a backend written
here, once with the processors on the wire form and once on the decoded
reference path (OTELITE_DECODED_PROCESSORS=1). Both agents must send the
same bytes, and what they send must be what the config asks for, read with
Python's decoder."""
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import export_classes, free_port, http_post

CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
  memory_limiter: {{check_interval: 1s, limit_mib: 400}}
  filter:
    traces:
      span: ['name == "GET /healthz"', 'resource.attributes["env"] == "test"']
    metrics:
      metric: ['name == "debug.metric"']
    logs:
      log_record: ['severity_number < SEVERITY_NUMBER_WARN']
  attributes:
    actions:
      - {{key: pipeline, value: edge, action: insert}}
      - {{key: user.id, action: hash}}
      - {{key: auth.token, action: delete}}
      - {{key: route.copy, from_attribute: http.route, action: upsert}}
      - {{key: http.route, pattern: '^/(?P<section>[a-z]+)', action: extract}}
  resource:
    attributes:
      - {{key: region, value: eu-west-1, action: upsert}}
      - {{key: host.ip, action: delete}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{down}
    encoding: proto
    compression: none
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, filter, attributes, resource], exporters: [otlphttp]}}
    metrics: {{receivers: [otlp], processors: [memory_limiter, filter, attributes, resource], exporters: [otlphttp]}}
    logs: {{receivers: [otlp], processors: [memory_limiter, filter, attributes, resource], exporters: [otlphttp]}}
  telemetry:
    metrics: {{endpoint: 127.0.0.1:{tel}}}
"""


class Backend:
    """Answers 200 to every OTLP/HTTP export and keeps the bodies by path."""

    def __init__(self, port):
        self.port = port
        self.bodies = {}
        self.lock = threading.Lock()
        backend = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with backend.lock:
                    backend.bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, path, n, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                got = list(self.bodies.get(path, []))
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(got)} of {n} requests arrived")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def fill_attrs(msg_attrs, items):
    for k, v in items:
        a = msg_attrs.add()
        a.key = k
        if isinstance(v, int):
            a.value.int_value = v
        else:
            a.value.string_value = v


def make_traces(pb2):
    Req, _ = export_classes(pb2, "traces")
    req = Req()
    for svc, env in (("checkout", "prod"), ("loadtest", "test")):
        rs = req.resource_spans.add()
        fill_attrs(rs.resource.attributes, [("service.name", svc), ("env", env), ("host.ip", "10.0.0.1")])
        ss = rs.scope_spans.add()
        ss.scope.name = "otelhttp"
        for n, name in enumerate(["GET /cart", "GET /healthz", "SELECT cart"]):
            sp = ss.spans.add()
            sp.trace_id = bytes([n + 1]) * 16
            sp.span_id = bytes([n + 2]) * 8
            sp.name = name
            sp.kind = 2
            sp.start_time_unix_nano = 1700000000000000000 + n
            sp.end_time_unix_nano = 1700000000000001000 + n
            fill_attrs(sp.attributes, [("http.route", "/cart"), ("user.id", "alice"),
                                       ("auth.token", "secret"), ("retries", n)])
            sp.status.code = 1
    return req


def make_metrics(pb2):
    Req, _ = export_classes(pb2, "metrics")
    req = Req()
    rm = req.resource_metrics.add()
    fill_attrs(rm.resource.attributes, [("service.name", "checkout"), ("host.ip", "10.0.0.1")])
    sm = rm.scope_metrics.add()
    for name in ("cpu", "debug.metric", "requests"):
        m = sm.metrics.add()
        m.name = name
        for core in range(2):
            p = m.gauge.data_points.add()
            p.time_unix_nano = 1700000000000000000
            p.as_double = 0.5 + core
            fill_attrs(p.attributes, [("core", str(core)), ("user.id", "bob")])
    rm2 = req.resource_metrics.add()  # no resource at all: the processor adds one
    m = rm2.scope_metrics.add().metrics.add()
    m.name = "bare"
    m.sum.data_points.add().as_int = 7
    return req


def make_logs(pb2):
    Req, _ = export_classes(pb2, "logs")
    req = Req()
    rl = req.resource_logs.add()
    fill_attrs(rl.resource.attributes, [("service.name", "checkout")])
    sl = rl.scope_logs.add()
    for sev, body in ((9, "started"), (17, "disk full"), (13, "slow")):
        lr = sl.log_records.add()
        lr.severity_number = sev
        lr.body.string_value = body
        fill_attrs(lr.attributes, [("user.id", "carol"), ("auth.token", "t")])
    return req


def run_agent(tmp_path, agent_factory, monkeypatch, decoded, requests, config=CONFIG, batched=False):
    ports = dict(http=free_port(), down=free_port(), tel=free_port())
    backend = Backend(ports["down"])
    if decoded:
        monkeypatch.setenv("OTELITE_DECODED_PROCESSORS", "1")
    else:
        monkeypatch.delenv("OTELITE_DECODED_PROCESSORS", raising=False)
    name = "decoded" if decoded else "wire"
    a = agent_factory(config.format(**ports), name=name)
    a.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    monkeypatch.delenv("OTELITE_DECODED_PROCESSORS", raising=False)
    out = {}
    try:
        for path, req in requests:
            st, _, _ = http_post(f"http://127.0.0.1:{ports['http']}{path}", req.SerializeToString(),
                              {"Content-Type": "application/x-protobuf"})
            assert st == 200, path
            if not batched:
                out[path] = backend.wait(path, 1)[0]
        if batched:
            # the batch processor sends after its timeout; then nothing more comes
            for path in {p for p, _ in requests}:
                got = backend.wait(path, 1)
                while True:
                    time.sleep(1.0)
                    again = backend.wait(path, 1)
                    if len(again) == len(got):
                        break
                    got = again
                out[path] = b"".join(got)
    finally:
        rc = a.stop()
        backend.stop()
    assert rc == 0, a.log()
    return out


def attrs(msg):
    return {a.key: (a.value.string_value if a.value.HasField("string_value") else a.value.int_value)
            for a in msg.attributes}


def test_wire_and_decoded_agents_send_the_same_bytes(tmp_path, agent_factory, monkeypatch, otlp_pb2):
    requests = [("/v1/traces", make_traces(otlp_pb2)), ("/v1/metrics", make_metrics(otlp_pb2)),
                ("/v1/logs", make_logs(otlp_pb2))]
    wire = run_agent(tmp_path, agent_factory, monkeypatch, False, requests)
    ref = run_agent(tmp_path, agent_factory, monkeypatch, True, requests)
    for path, _ in requests:
        assert wire[path] == ref[path], path

    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    Req, _ = export_classes(otlp_pb2, "traces")
    t = Req.FromString(wire["/v1/traces"])
    assert len(t.resource_spans) == 1  # the "test" resource lost every span, and went
    rs = t.resource_spans[0]
    assert attrs(rs.resource) == {"service.name": "checkout", "env": "prod", "region": "eu-west-1"}
    spans = rs.scope_spans[0].spans
    assert [s.name for s in spans] == ["GET /cart", "SELECT cart"]
    assert attrs(spans[0]) == {"http.route": "/cart", "user.id": sha("alice"), "retries": 0,
                               "pipeline": "edge", "route.copy": "/cart", "section": "cart"}

    Req, _ = export_classes(otlp_pb2, "metrics")
    m = Req.FromString(wire["/v1/metrics"])
    assert [x.name for x in m.resource_metrics[0].scope_metrics[0].metrics] == ["cpu", "requests"]
    pt = m.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[1]
    assert attrs(pt) == {"core": "1", "user.id": sha("bob"), "pipeline": "edge"}
    assert attrs(m.resource_metrics[1].resource) == {"region": "eu-west-1"}

    Req, _ = export_classes(otlp_pb2, "logs")
    lg = Req.FromString(wire["/v1/logs"])
    recs = lg.resource_logs[0].scope_logs[0].log_records
    assert [r.body.string_value for r in recs] == ["disk full", "slow"]
    assert attrs(recs[0]) == {"user.id": sha("carol"), "pipeline": "edge"}


BATCHED = CONFIG.replace("  resource:\n", "  batch: {{timeout: 300ms, send_batch_size: 100000}}\n  resource:\n").replace(
    "processors: [memory_limiter, filter, attributes, resource]",
    "processors: [memory_limiter, filter, attributes, resource, batch]")


def test_wire_edits_go_into_the_batch_as_decoded_ones_do(tmp_path, agent_factory, monkeypatch,
                                                        otlp_pb2):
    """With a batch processor after the chain, the wire path hands it the
    edits unapplied and it writes the edited bytes into its buffer: what
    goes out must be, byte for byte, what the decoded path sends, over
    several requests merged into one."""
    assert "batch]" in BATCHED
    one = [("/v1/traces", make_traces(otlp_pb2)), ("/v1/metrics", make_metrics(otlp_pb2)),
           ("/v1/logs", make_logs(otlp_pb2))]
    requests = one * 3
    wire = run_agent(tmp_path, agent_factory, monkeypatch, False, requests, BATCHED, True)
    ref = run_agent(tmp_path, agent_factory, monkeypatch, True, requests, BATCHED, True)
    for path, _ in one:
        assert wire[path] == ref[path], path
    Req, _ = export_classes(otlp_pb2, "traces")
    t = Req.FromString(wire["/v1/traces"])
    assert [s.name for rs in t.resource_spans for s in rs.scope_spans[0].spans] == \
        ["GET /cart", "SELECT cart"] * 3
    assert all(attrs(s)["pipeline"] == "edge" for rs in t.resource_spans for s in rs.scope_spans[0].spans)
    Req, _ = export_classes(otlp_pb2, "logs")
    lg = Req.FromString(wire["/v1/logs"])
    assert [r.body.string_value for rl in lg.resource_logs for r in rl.scope_logs[0].log_records] == \
        ["disk full", "slow"] * 3
