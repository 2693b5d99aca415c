"""The `otlp` receiver against the OpenTelemetry JavaScript SDK's own OTLP
exporters (gRPC, HTTP/JSON, HTTP/protobuf) for traces, metrics and logs.

The programs in js/ build each signal's SDK pipeline around a real exporter,
send to an otelite started here and print what they sent and the result code
of every export. Data is checked where otelite hands it on: the `file`
exporter's OTLP JSON lines. Between the two runs a TCP relay that keeps the
client's bytes, so the test also sees what went over the wire (content type,
gzip) without trusting either side.

The npm packages (versions pinned in js/package-lock.json) are installed once
per session into build/interop-node/ (or $OTELITE_INTEROP_NODE_DIR), and
reused while the lockfile and node version are unchanged. If the install
fails the tests fail: CI reaches the registry."""
import fcntl
import gzip
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT, free_port

JS_SRC = pathlib.Path(__file__).resolve().parent / "js"
NODE_DIR = pathlib.Path(os.environ.get("OTELITE_INTEROP_NODE_DIR",
                                       os.path.join(ROOT, "build", "interop-node")))
SUCCESS, FAILED = 0, 1  # @opentelemetry/core ExportResultCode
PROTOCOLS = ["grpc", "http", "proto"]
HTTP_CONTENT_TYPE = {"http": "application/json", "proto": "application/x-protobuf"}
URL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
TOP_KEY = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
GRPC_PATHS = {
    "traces": b"/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": b"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": b"/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
# The SDK reads OTEL_* and grpc-js reads proxy variables; neither may steer
# these runs.
DROP_ENV = {"http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "no_proxy"}


# ---- npm install, once per session -------------------------------------------

def _stamp(node):
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((JS_SRC / name).read_bytes())
    h.update(subprocess.run([node, "--version"], capture_output=True, text=True,
                            check=True).stdout.encode())
    return h.hexdigest()


@pytest.fixture(scope="session")
def js_dir():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the JS SDK interop tests")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(node)
    stamp_file = NODE_DIR / ".installed"
    # Two test runs in one tree must not install over each other.
    with open(NODE_DIR.parent / (NODE_DIR.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = (stamp_file.exists() and stamp_file.read_text() == stamp
                     and (NODE_DIR / "node_modules").is_dir())
        if not installed:
            stamp_file.unlink(missing_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS_SRC / name, NODE_DIR / name)
            try:
                r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                                    "--loglevel=error"], cwd=NODE_DIR, capture_output=True,
                                   text=True, timeout=600)
            except subprocess.TimeoutExpired:
                pytest.fail("npm ci took longer than 10 minutes (registry unreachable?)")
            if r.returncode != 0:
                pytest.fail(f"npm ci failed in {NODE_DIR} (exit {r.returncode}):\n"
                            f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
            stamp_file.write_text(stamp)
        # The programs import by bare name, which ESM resolves from the
        # importing file's folder: they run from beside node_modules.
        for src in JS_SRC.glob("*.mjs"):
            shutil.copy(src, NODE_DIR / src.name)
    return NODE_DIR


def run_js(js_dir, program, **opts):
    """(exit code, the program's JSON report or None, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k.lower() not in DROP_ENV}
    r = subprocess.run(["node", str(js_dir / program), json.dumps(opts)], cwd=js_dir, env=env,
                       capture_output=True, text=True, timeout=60)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return r.returncode, (json.loads(lines[-1]) if lines else None), r.stderr


def run_ok(js_dir, program, **opts):
    rc, report, err = run_js(js_dir, program, **opts)
    assert report is not None, f"{program} printed no report (exit {rc}):\n{err}"
    assert rc == 0 and report["ok"], f"{program} exit {rc}: {report}\n{err}"
    # every export the SDK made came back SUCCESS
    assert report["success_code"] == SUCCESS
    assert [x["code"] for x in report["results"]] == [SUCCESS] * len(report["results"])
    return report


# ---- a relay that keeps what the client sent -----------------------------------

class Relay:
    """Listens on a free port and relays every connection to otelite's port,
    keeping a copy of the bytes the client sent on each connection."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            buf = bytearray()
            with self.lock:
                self.conns.append(buf)
                self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, buf), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src, dst, buf):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if buf is not None:
                    with self.lock:
                        buf += data
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def sent(self):
        with self.lock:
            return [bytes(b) for b in self.conns]

    def close(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv
                except OSError:
                    pass
                s.close()


def http_requests(conns):
    """HTTP/1.1 requests in the client's bytes: (method, path, headers, body),
    the body with chunked transfer coding removed (content coding kept)."""
    out = []
    for data in conns:
        i = 0
        while True:
            end = data.find(b"\r\n\r\n", i)
            if end < 0:
                break
            head = data[i:end].decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            i = end + 4
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    eol = data.index(b"\r\n", i)
                    size = int(data[i:eol].split(b";")[0], 16)
                    i = eol + 2
                    if size == 0:
                        i = data.index(b"\r\n\r\n", i - 2) + 4
                        break
                    body += data[i:i + size]
                    i += size + 2
            else:
                n = int(headers.get("content-length", "0"))
                body = data[i:i + n]
                i += n
            out.append((method, path, headers, bytes(body)))
    return out


def grpc_messages(conns):
    """gRPC messages in the client's h2c bytes: (compressed flag, payload)
    per length-prefixed message of each stream, from the DATA frames. Header
    frames are HPACK-coded and not read; the request path is found as a
    literal string when HPACK did not Huffman-code it, which is not relied on."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    out = []
    for data in conns:
        assert data.startswith(preface), data[:40]
        i, streams = len(preface), {}
        while i + 9 <= len(data):
            length = int.from_bytes(data[i:i + 3], "big")
            ftype, flags = data[i + 3], data[i + 4]
            sid = int.from_bytes(data[i + 5:i + 9], "big") & 0x7FFFFFFF
            payload = data[i + 9:i + 9 + length]
            i += 9 + length
            if ftype == 0:  # DATA
                if flags & 0x8:  # PADDED
                    payload = payload[1:len(payload) - payload[0]]
                streams.setdefault(sid, bytearray()).extend(payload)
        for sid in sorted(streams):
            body, j = streams[sid], 0
            while j + 5 <= len(body):
                n = int.from_bytes(body[j + 1:j + 5], "big")
                out.append((body[j], bytes(body[j + 5:j + 5 + n])))
                j += 5 + n
    return out


# ---- otelite --------------------------------------------------------------------

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  file:
    path: {out}
service:
  pipelines:
{pipelines}
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


class Otelite:
    def __init__(self, agent_factory, tmp_path, signals=("traces", "metrics", "logs")):
        ports = dict(grpc=free_port(), http=free_port(), tel=free_port())
        self.out = tmp_path / "out.jsonl"
        pipelines = "".join(f"    {s}: {{receivers: [otlp], exporters: [file]}}\n"
                            for s in signals)
        self.agent = agent_factory(CONFIG.format(out=self.out, pipelines=pipelines, **ports))
        self.agent.start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
        self.grpc = Relay(ports["grpc"])
        self.http = Relay(ports["http"])

    def opts(self, service, protocol, **extra):
        return dict(protocol=protocol, service=service, grpc_port=self.grpc.port,
                    http_port=self.http.port, **extra)

    def docs(self):
        if not self.out.exists():
            return []
        return [json.loads(l) for l in self.out.read_text().splitlines() if l.strip()]

    def received(self, signal, service, want, timeout=10.0):
        """The file exporter's lines of a signal from one service, once there
        are want of them (each export is one request, one line)."""
        deadline = time.time() + timeout
        while True:
            got = [d for d in self.docs() if TOP_KEY[signal] in d
                   and resource_attrs(d[TOP_KEY[signal]][0]).get("service.name") == ("string", service)]
            if len(got) >= want or time.time() > deadline:
                assert len(got) == want, (f"{len(got)} {signal} lines from {service}, "
                                          f"want {want}:\n" + self.agent.log())
                return got
            time.sleep(0.05)

    def stop(self):
        self.grpc.close()
        self.http.close()
        assert self.agent.stop() == 0, self.agent.log()


@pytest.fixture
def otelite(agent_factory, tmp_path):
    o = Otelite(agent_factory, tmp_path)
    yield o
    o.stop()


# ---- OTLP JSON helpers ------------------------------------------------------------

def value(v):
    """An AnyValue as (type, python value), so int 1, double 1.0 and true
    stay apart."""
    (k, x), = v.items() if v else (("empty", None),)
    if k == "intValue":
        return ("int", int(x))
    if k == "doubleValue":
        return ("double", float(x))
    if k == "arrayValue":
        return ("array", [value(e) for e in x.get("values", [])])
    if k == "kvlistValue":
        return ("kvlist", attrs(x.get("values", [])))
    return (k[:-len("Value")] if k.endswith("Value") else k, x)


def attrs(kvs):
    return {kv["key"]: value(kv.get("value", {})) for kv in kvs or []}


def resource_attrs(resource_item):
    return attrs(resource_item.get("resource", {}).get("attributes"))


def items(docs, signal):
    """(resource attrs, scope, item) for every span / metric / log record."""
    scope_key, item_key = {"traces": ("scopeSpans", "spans"),
                           "metrics": ("scopeMetrics", "metrics"),
                           "logs": ("scopeLogs", "logRecords")}[signal]
    for d in docs:
        for r in d[TOP_KEY[signal]]:
            for s in r.get(scope_key, []):
                for it in s.get(item_key, []):
                    yield resource_attrs(r), s.get("scope", {}), it


def check_resource_and_scope(res, scope, service):
    assert res["service.name"] == ("string", service)
    assert res["interop.sdk"] == ("string", "opentelemetry-js")
    assert scope == {"name": "otelite-interop", "version": "1.2.3"}


# ---- wire checks --------------------------------------------------------------------

def check_http_wire(relay, signal, protocol, gzipped, expect_in_body):
    reqs = http_requests(relay.sent())
    assert reqs, "no HTTP request went through the relay"
    for method, path, headers, body in reqs:
        assert (method, path) == ("POST", URL_PATHS[signal])
        assert headers["content-type"] == HTTP_CONTENT_TYPE[protocol]
        assert headers.get("content-encoding") == ("gzip" if gzipped else None)
        if gzipped:
            body = gzip.decompress(body)
        if protocol == "http":
            assert TOP_KEY[signal] in json.loads(body)
    blob = b"".join(gzip.decompress(b) if gzipped else b for _, _, _, b in reqs)
    for needle in expect_in_body:
        assert needle in blob


def check_grpc_wire(relay, gzipped, expect_in_body):
    msgs = grpc_messages(relay.sent())
    assert msgs, "no gRPC message went through the relay"
    assert {flag for flag, _ in msgs} == {1 if gzipped else 0}
    blob = b"".join(gzip.decompress(p) if flag else p for flag, p in msgs)
    for needle in expect_in_body:
        assert needle in blob


def check_wire(o, signal, protocol, gzipped, expect_in_body):
    if protocol == "grpc":
        assert not o.http.sent()
        check_grpc_wire(o.grpc, gzipped, expect_in_body)
    else:
        assert not o.grpc.sent()
        check_http_wire(o.http, signal, protocol, gzipped, expect_in_body)


# ---- traces ----------------------------------------------------------------------------

def check_traces(o, report, service):
    docs = o.received("traces", service, len(report["results"]))
    got = list(items(docs, "traces"))
    assert len(got) == 3
    for res, scope, _ in got:
        check_resource_and_scope(res, scope, service)
    spans = {s["name"]: s for _, _, s in got}
    ids = report["spans"]
    parent, child, sibling = spans["GET /checkout"], spans["SELECT orders"], spans["render"]
    for span, key in ((parent, "parent"), (child, "child"), (sibling, "sibling")):
        assert span["traceId"] == report["trace_id"] == ids[key]["trace_id"]
        assert span["spanId"] == ids[key]["span_id"]
        assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
        assert int(span["startTimeUnixNano"]) > 1_600_000_000 * 10**9
    assert parent.get("parentSpanId", "") == ""
    assert child["parentSpanId"] == sibling["parentSpanId"] == parent["spanId"]
    # SpanKind in OTLP: INTERNAL 1, SERVER 2, CLIENT 3
    assert (parent["kind"], child["kind"], sibling["kind"]) == (2, 3, 1)
    assert attrs(parent["attributes"]) == {
        "http.method": ("string", "GET"),
        "http.status_code": ("int", 200),
        "load.ratio": ("double", 0.75),
        "cache.hit": ("bool", True),
        "tags": ("array", [("string", "a"), ("string", "b"), ("string", "c")]),
        "sizes": ("array", [("int", 1), ("int", 2), ("int", 3)]),
    }
    assert attrs(child["attributes"]) == {
        "db.rows": ("int", 42),
        "db.statement": ("string", "SELECT * FROM orders WHERE id = ?"),
    }
    (ev,) = child["events"]
    assert ev["name"] == "retry"
    assert attrs(ev["attributes"]) == {"attempt": ("int", 2), "backoff.seconds": ("double", 0.5),
                                       "final": ("bool", False)}
    assert int(child["startTimeUnixNano"]) <= int(ev["timeUnixNano"]) <= int(child["endTimeUnixNano"])
    # StatusCode: UNSET 0, OK 1, ERROR 2
    assert child["status"] == {"code": 2, "message": "deadline exceeded"}
    assert sibling["status"].get("code") == 1
    assert parent.get("status", {}).get("code", 0) == 0
    assert "events" not in parent or parent["events"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces(js_dir, otelite, protocol):
    service = f"js-traces-{protocol}"
    report = run_ok(js_dir, "traces.mjs", **otelite.opts(service, protocol))
    assert report["protocol"] == protocol
    assert len(report["results"]) == 1  # one BatchSpanProcessor flush
    check_traces(otelite, report, service)
    check_wire(otelite, "traces", protocol, False,
               [bytes.fromhex(report["trace_id"]) if protocol != "http"
                else report["trace_id"].encode()])


# ---- metrics ---------------------------------------------------------------------------

def check_metrics(o, report, service):
    # forceFlush exports once, shutdown once more; both carry the same
    # cumulative values.
    n = len(report["results"])
    assert n >= 1
    docs = o.received("metrics", service, n)
    want = report["expected"]
    for doc in docs:
        got = list(items([doc], "metrics"))
        for res, scope, _ in got:
            check_resource_and_scope(res, scope, service)
        m = {x["name"]: x for _, _, x in got}
        assert sorted(m) == sorted(want)

        req = m["interop.requests"]
        assert (req["description"], req["unit"]) == ("requests served", "{request}")
        s = req["sum"]
        assert s["isMonotonic"] is True and s["aggregationTemporality"] == 2  # cumulative
        by_route = {attrs(p["attributes"])["route"][1]: int(p["asInt"]) for p in s["dataPoints"]}
        assert by_route == want["interop.requests"]

        h = m["interop.latency"]
        assert h["unit"] == "ms"
        (p,) = h["histogram"]["dataPoints"]
        w = want["interop.latency"]
        assert (int(p["count"]), p["sum"], p["min"], p["max"]) == (w["count"], w["sum"], w["min"],
                                                                  w["max"])
        bounds, counts = p["explicitBounds"], [int(c) for c in p["bucketCounts"]]
        assert len(counts) == len(bounds) + 1 and sum(counts) == 3
        # 0.5 in (0, 5], 7 in (5, 10], 120 in (100, 250]
        assert counts[bounds.index(5)] == 1 and counts[bounds.index(10)] == 1
        assert counts[bounds.index(250)] == 1
        assert attrs(p["attributes"]) == {"route": ("string", "/a")}

        ud = m["interop.inflight"]["sum"]
        assert not ud.get("isMonotonic", False)
        (p,) = ud["dataPoints"]
        assert int(p["asInt"]) == want["interop.inflight"]

        (p,) = m["interop.temperature"]["gauge"]["dataPoints"]
        assert p["asDouble"] == want["interop.temperature"]
        assert m["interop.temperature"]["unit"] == "Cel"
        assert attrs(p["attributes"]) == {"room": ("string", "lab")}

        (p,) = m["interop.queue_depth"]["gauge"]["dataPoints"]
        assert int(p["asInt"]) == want["interop.queue_depth"]
        assert attrs(p["attributes"]) == {"queue": ("string", "main")}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metrics(js_dir, otelite, protocol):
    service = f"js-metrics-{protocol}"
    report = run_ok(js_dir, "metrics.mjs", **otelite.opts(service, protocol))
    check_metrics(otelite, report, service)
    check_wire(otelite, "metrics", protocol, False, [b"interop.queue_depth"])


# ---- logs ---------------------------------------------------------------------------------

def check_logs(o, report, service):
    n = len(report["results"])
    assert n == 3  # SimpleLogRecordProcessor: one export per record
    docs = o.received("logs", service, n)
    got = list(items(docs, "logs"))
    assert len(got) == 3
    for res, scope, _ in got:
        check_resource_and_scope(res, scope, service)
    recs = [r for _, _, r in got]
    recs.sort(key=lambda r: -r["severityNumber"])
    err, info, debug = recs
    # SeverityNumber: DEBUG2 6, INFO 9, ERROR 17
    assert (info["severityNumber"], info["severityText"]) == (9, "INFO")
    assert value(info["body"]) == ("string", "user logged in")
    assert attrs(info["attributes"]) == {"user.id": ("string", "u-123"), "attempt": ("int", 1),
                                         "mfa.used": ("bool", True)}
    assert info["traceId"] == report["trace_id"] and info["spanId"] == report["span_id"]
    assert info.get("flags") == 1  # sampled
    assert (err["severityNumber"], err["severityText"]) == (17, "ERROR")
    assert value(err["body"]) == ("kvlist", {"msg": ("string", "payment failed"),
                                             "code": ("int", 402), "retry": ("bool", False)})
    assert attrs(err["attributes"]) == {
        "amount": ("double", 12.5),
        "payment.methods": ("array", [("string", "card"), ("string", "voucher")])}
    assert err.get("traceId", "") == ""
    assert debug["severityNumber"] == 6 and debug.get("severityText", "") == ""
    assert value(debug["body"]) == ("string", 'caf\u00e9 \u2603 "quoted"\n')
    assert not debug.get("attributes")
    for r in recs:
        assert int(r["timeUnixNano"]) > 1_600_000_000 * 10**9
        assert int(r["observedTimeUnixNano"]) > 1_600_000_000 * 10**9


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_logs(js_dir, otelite, protocol):
    service = f"js-logs-{protocol}"
    report = run_ok(js_dir, "logs.mjs", **otelite.opts(service, protocol))
    check_logs(otelite, report, service)
    check_wire(otelite, "logs", protocol, False, ["caf\u00e9 \u2603".encode()])


# ---- gzip ----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gzip(js_dir, otelite, protocol):
    """compression: 'gzip' on the JS exporter: gRPC compresses each message
    (grpc-encoding gzip), HTTP the whole body (Content-Encoding: gzip)."""
    service = f"js-gzip-{protocol}"
    report = run_ok(js_dir, "traces.mjs", **otelite.opts(service, protocol, compression="gzip"))
    assert report["compression"] == "gzip"
    check_traces(otelite, report, service)
    service = f"js-gzip-logs-{protocol}"
    report = run_ok(js_dir, "logs.mjs", **otelite.opts(service, protocol, compression="gzip"))
    check_logs(otelite, report, service)
    if protocol == "grpc":
        assert not otelite.http.sent()
        check_grpc_wire(otelite.grpc, True, [b"GET /checkout", "caf\u00e9 \u2603".encode()])
    else:
        assert not otelite.grpc.sent()
        reqs = http_requests(otelite.http.sent())
        assert [p for _, p, _, _ in reqs] == ["/v1/traces"] + ["/v1/logs"] * 3
        assert {h.get("content-encoding") for _, _, h, _ in reqs} == {"gzip"}
        assert {h["content-type"] for _, _, h, _ in reqs} == {HTTP_CONTENT_TYPE[protocol]}
        blob = b"".join(gzip.decompress(b) for _, _, _, b in reqs)
        assert b"GET /checkout" in blob and "caf\u00e9 \u2603".encode() in blob


# ---- export results ------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_refused_export_reports_failure(js_dir, agent_factory, tmp_path, protocol):
    """The other side of the SUCCESS checks above: when otelite refuses (here:
    logs sent to a receiver that is in no logs pipeline, answered with gRPC
    UNIMPLEMENTED / HTTP 404), the JS exporter's callback gets FAILED and the
    program says so; nothing reaches the file."""
    o = Otelite(agent_factory, tmp_path, signals=("traces",))
    try:
        rc, report, err = run_js(js_dir, "logs.mjs", **o.opts("js-refused", protocol))
        assert report is not None, err
        assert rc == 1 and report["ok"] is False
        assert [x["code"] for x in report["results"]] == [FAILED] * 3
        for x in report["results"]:
            if protocol == "grpc":
                assert "UNIMPLEMENTED" in x["error"] or "12" in x["error"], x
            else:
                assert "Not Found" in x["error"] or "404" in x["error"], x
        # the receiver still serves the signal it has a pipeline for
        run_ok(js_dir, "traces.mjs", **o.opts("js-after-refusal", protocol))
        assert o.received("traces", "js-after-refusal", 1)
        assert not [d for d in o.docs() if "resourceLogs" in d]
    finally:
        o.stop()
