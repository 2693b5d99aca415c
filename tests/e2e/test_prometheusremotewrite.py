"""The `prometheusremotewrite` exporter in the real binary against Debian's
Prometheus with its remote-write receiver (and native histograms) on
loopback: OTLP/HTTP in, every metric type read back through Prometheus'
query API (values, labels, target_info, deltas made cumulative); a
persistent queue across a backend that is down and an agent restart; a 400
for out-of-order samples counted and not retried; and a small backend
written from the remote-write spec for headers, Retry-After and the size
cap."""
import http.server
import importlib
import json
import pathlib
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import TestCA, free_port, http_get, post_json, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not installed")


def sattr(k, v):
    return {"key": k, "value": {"stringValue": v}}


RESOURCE = {"attributes": [sattr("service.name", "api"), sattr("service.instance.id", "i1"),
                           sattr("host.name", "node1")]}


def body(t, delta=2, gauge=1048576.0):
    """One of each OTLP metric type at time t (s); delta: the delta
    counter's increment."""
    ts = str(int(t * 1e9))
    return {"resourceMetrics": [{
        "resource": RESOURCE,
        "scopeMetrics": [{"scope": {"name": "e2e", "version": "1.0"}, "metrics": [
            {"name": "http.requests", "description": "Requests served.", "unit": "{request}",
             "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                 {"asInt": "7", "startTimeUnixNano": "1", "timeUnixNano": ts,
                  "attributes": [sattr("http.method", "GET")]}]}},
            {"name": "jobs.done", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                                          "dataPoints": [{"asInt": str(delta),
                                                          "timeUnixNano": ts}]}},
            {"name": "queue.change", "sum": {"aggregationTemporality": 1, "isMonotonic": False,
                                             "dataPoints": [{"asDouble": -1.5,
                                                             "timeUnixNano": ts}]}},
            {"name": "mem.used", "unit": "By", "gauge": {"dataPoints": [
                {"asDouble": gauge, "timeUnixNano": ts}]}},
            {"name": "cpu.utilization", "unit": "1", "gauge": {"dataPoints": [
                {"asDouble": 0.25, "timeUnixNano": ts}]}},
            {"name": "lat", "unit": "s", "histogram": {"aggregationTemporality": 1, "dataPoints": [
                {"count": "3", "sum": 1.5, "bucketCounts": ["1", "1", "1"],
                 "explicitBounds": [0.1, 1], "timeUnixNano": ts}]}},
            {"name": "size", "unit": "By", "exponentialHistogram": {
                "aggregationTemporality": 2, "dataPoints": [
                    {"count": "4", "sum": 10, "scale": 0, "zeroCount": "1",
                     "positive": {"offset": 0, "bucketCounts": ["1", "2"]},
                     "startTimeUnixNano": "1", "timeUnixNano": ts}]}},
            {"name": "rpc", "unit": "s", "summary": {"dataPoints": [
                {"count": "2", "sum": 3, "timeUnixNano": ts,
                 "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 0.99, "value": 2}]}]}},
        ]}],
    }]}


def gauge_body(name, t, v):
    return {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": [
        {"name": name, "gauge": {"dataPoints": [{"asDouble": v, "timeUnixNano": str(int(t * 1e9))}]}},
    ]}]}]}


class PromServer:
    """Debian's Prometheus on loopback taking remote write, no scrape jobs,
    its storage in a temp dir."""

    def __init__(self, tmp_path, port=None, tls=None):
        """tls: (cert, key, ca) files: serve HTTPS (Prometheus' web config)."""
        self.port = port or free_port()
        d = tmp_path / f"prom-{self.port}"
        d.mkdir(exist_ok=True)
        (d / "prom.yml").write_text("global:\n  scrape_interval: 1m\n")
        args = ["prometheus", f"--config.file={d}/prom.yml", f"--storage.tsdb.path={d}/tsdb",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                "--enable-feature=native-histograms"]
        self.scheme, self.ctx = "http", None
        if tls:
            (d / "web.yml").write_text(
                f"tls_server_config:\n  cert_file: {tls[0]}\n  key_file: {tls[1]}\n")
            args.append(f"--web.config.file={d}/web.yml")
            self.scheme, self.ctx = "https", ssl.create_default_context(cafile=tls[2])
        self.log = open(d / "prometheus.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        wait_for(self.ready, 30, "prometheus ready")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"{self.scheme}://127.0.0.1:{self.port}{path}", timeout=5,
                                        context=self.ctx) as r:
                return r.status, r.read()
        except (OSError, urllib.error.HTTPError):
            return None, b""

    def ready(self):
        return self.get("/-/ready")[0] == 200

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}/api/v1/write"

    def result(self, q):
        st, b = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        return json.loads(b)["data"]["result"] if st == 200 else None

    def values(self, q):
        res = self.result(q)
        return sorted(float(r["value"][1]) for r in res) if res else None

    def wait_value(self, q, v, timeout=15):
        got = wait_for(lambda: self.values(q) == [v] and [v], timeout, f"{q} == {v}: {self.values(q)}")
        assert got == [v]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def config(http, tel, exporter, extensions=""):
    return f"""\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  prometheusremotewrite:
{exporter}
{extensions}
service:
  {"extensions: [file_storage]" if extensions else ""}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def tel_value(port, name):
    _, b = http_get(f"http://127.0.0.1:{port}/metrics")
    for line in b.decode().splitlines():
        if line.startswith(f'{name}{{exporter="prometheusremotewrite"}} '):
            return float(line.split()[-1])
    return 0.0


def start(agent_factory, text, tel):
    return agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")


def test_every_type_reaches_prometheus(agent_factory, tmp_path):
    prom = PromServer(tmp_path)
    http, tel = free_port(), free_port()
    try:
        exp = (f"    endpoint: {prom.url}\n    external_labels: {{cluster: c1}}\n"
               f"    send_metadata: true\n")
        a = start(agent_factory, config(http, tel, exp), tel)
        t = time.time()
        assert post_json(http, "/v1/metrics", body(t - 2, delta=2))[0] == 200
        assert post_json(http, "/v1/metrics", body(t - 1, delta=3))[0] == 200
        sel = '{job="api",instance="i1",cluster="c1"}'
        prom.wait_value(f'http_requests_total{sel}', 7)
        res = prom.result("http_requests_total")
        assert res[0]["metric"] == {
            "__name__": "http_requests_total", "job": "api", "instance": "i1",
            "otel_scope_name": "e2e", "otel_scope_version": "1.0", "http_method": "GET",
            "cluster": "c1"}, res
        prom.wait_value(f"jobs_done_total{sel}", 5)          # deltas 2 + 3
        prom.wait_value(f"queue_change{sel}", -3)            # non-monotonic deltas
        prom.wait_value(f"mem_used_bytes{sel}", 1048576)
        prom.wait_value(f"cpu_utilization_ratio{sel}", 0.25)
        # delta histogram: two points of the same bounds added up
        prom.wait_value(f'lat_seconds_bucket{{le="0.1",job="api"}}', 2)
        prom.wait_value(f'lat_seconds_bucket{{le="1",job="api"}}', 4)
        prom.wait_value(f'lat_seconds_bucket{{le="+Inf",job="api"}}', 6)
        prom.wait_value("lat_seconds_sum", 3)
        prom.wait_value("lat_seconds_count", 6)
        # the exponential histogram is a native one
        prom.wait_value("histogram_count(size_bytes)", 4)
        prom.wait_value("histogram_sum(size_bytes)", 10)
        # zero bucket 1, (1,2] 1, (2,4] 2: the buckets sit at the right bounds
        prom.wait_value("histogram_fraction(0, 1, size_bytes)", 0.25)
        prom.wait_value("histogram_fraction(0, 2, size_bytes)", 0.5)
        prom.wait_value('rpc_seconds{quantile="0.5"}', 1)
        prom.wait_value('rpc_seconds{quantile="0.99"}', 2)
        prom.wait_value("rpc_seconds_sum", 3)
        prom.wait_value("rpc_seconds_count", 2)
        prom.wait_value('target_info{job="api",instance="i1",host_name="node1",cluster="c1"}', 1)
        ti = prom.result("target_info")
        assert len(ti) == 1 and "otel_scope_name" not in ti[0]["metric"], ti
        # the gauge's two points are both stored, in order
        prom.wait_value(f"count_over_time(mem_used_bytes{sel}[5m])", 2)
        assert a.stop() == 0 and "Sanitizer" not in a.log(), a.log()
    finally:
        prom.stop()


def test_persistent_queue_keeps_what_was_acknowledged_while_the_backend_is_down(
        agent_factory, tmp_path):
    port = free_port()  # Prometheus comes up here later
    http, tel = free_port(), free_port()
    qdir = tmp_path / "queue"
    qdir.mkdir()
    exp = (f"    endpoint: http://127.0.0.1:{port}/api/v1/write\n"
           f"    sending_queue: {{storage: file_storage}}\n"
           f"    retry_on_failure: {{initial_interval: 100ms, max_interval: 300ms}}\n")
    ext = f"extensions:\n  file_storage:\n    directory: {qdir}\n    fsync: batch\n"
    text = config(http, tel, exp, ext)
    a = start(agent_factory, text, tel)
    t = time.time() - 30
    for i in range(10):
        assert post_json(http, "/v1/metrics", gauge_body("queued.value", t + i, i))[0] == 200
    wait_for(lambda: tel_value(tel, "otelite_exporter_prw_requests_total") >= 2, 10, "attempts")
    a.proc.send_signal(signal.SIGKILL)  # the worst case: nothing flushed at exit
    a.proc.wait()
    prom = PromServer(tmp_path, port)
    try:
        start(agent_factory, text, tel)
        prom.wait_value("count_over_time(queued_value[5m])", 10, timeout=30)
        prom.wait_value("sum_over_time(queued_value[5m])", 45)
    finally:
        prom.stop()


def test_out_of_order_answer_is_counted_and_not_retried(agent_factory, tmp_path):
    prom = PromServer(tmp_path)
    http, tel = free_port(), free_port()
    exp = (f"    endpoint: {prom.url}\n    target_info: {{enabled: false}}\n"
           f"    retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms}}\n")
    text = config(http, tel, exp)
    try:
        t = time.time()
        a = start(agent_factory, text, tel)
        assert post_json(http, "/v1/metrics", gauge_body("ooo", t - 1, 1))[0] == 200
        prom.wait_value("ooo", 1)
        assert a.stop() == 0 and "Sanitizer" not in a.log(), a.log()
        # A new agent has no memory of the series: an older point goes out
        # and Prometheus refuses it (400, out of order).
        a = start(agent_factory, text, tel)
        assert post_json(http, "/v1/metrics", gauge_body("ooo", t - 5, 2))[0] == 200
        wait_for(lambda: tel_value(tel, "otelite_exporter_prw_refused_samples_total") == 1, 10,
                 "refused counted")
        time.sleep(1.5)  # several retry intervals: none happens
        assert tel_value(tel, "otelite_exporter_prw_requests_total") == 1
        # and the queue is not stuck behind it
        assert post_json(http, "/v1/metrics", gauge_body("ooo", t, 3))[0] == 200
        prom.wait_value("ooo", 3)
        assert tel_value(tel, "otelite_exporter_prw_requests_total") == 2
    finally:
        prom.stop()


def test_tls_to_a_real_prometheus(agent_factory, tmp_path):
    ca = TestCA(tmp_path)
    leaf = ca.leaf("localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    prom = PromServer(tmp_path, tls=(leaf["cert"], leaf["key"], ca.ca))
    http, tel = free_port(), free_port()
    try:
        exp = f"    endpoint: {prom.url}\n    tls:\n      ca_file: {ca.ca}\n"
        start(agent_factory, config(http, tel, exp), tel)
        assert post_json(http, "/v1/metrics", gauge_body("over.tls", time.time(), 42))[0] == 200
        prom.wait_value('over_tls{job="api"}', 42)
        # Without the CA the server's certificate is refused: nothing arrives.
        http2, tel2 = free_port(), free_port()
        start(agent_factory, config(http2, tel2, f"    endpoint: {prom.url}\n"), tel2)
        assert post_json(http2, "/v1/metrics", gauge_body("untrusted", time.time(), 1))[0] == 200
        time.sleep(1)
        assert prom.values("untrusted") is None
    finally:
        prom.stop()


class FakeWrite(http.server.BaseHTTPRequestHandler):
    """A remote-write receiver from the spec: records each request's time,
    headers and body, answers from a script of statuses."""
    script = []
    seen = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        FakeWrite.seen.append((time.monotonic(), dict(self.headers), data))
        st = FakeWrite.script.pop(0) if FakeWrite.script else 204
        self.send_response(st)
        if st == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def write_request_class(tmp_path):
    """WriteRequest from the exporter's .proto, compiled by protoc: a decoder
    that is not the exporter's encoder."""
    d = ROOT / "exporters" / "prometheusremotewrite" / "proto"
    subprocess.run(["protoc", f"--python_out={tmp_path}", "-I", str(d), "prw_remote_write.proto"],
                   check=True)
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module("prw_remote_write_pb2").WriteRequest
    finally:
        sys.path.remove(str(tmp_path))


def test_headers_retry_after_and_size_cap(agent_factory, tmp_path):
    snappy = pytest.importorskip("snappy")
    WriteRequest = write_request_class(tmp_path)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeWrite)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    FakeWrite.script, FakeWrite.seen = [503], []
    http_, tel = free_port(), free_port()
    exp = (f"    endpoint: http://127.0.0.1:{srv.server_address[1]}/api/v1/write\n"
           f"    max_batch_size_bytes: 2048\n    headers: {{X-Scope-OrgID: tenant1}}\n"
           f"    target_info: {{enabled: false}}\n"
           f"    retry_on_failure: {{initial_interval: 10ms, max_interval: 20ms}}\n")
    try:
        start(agent_factory, config(http_, tel, exp), tel)
        t = time.time()
        pts = [{"asDouble": i, "timeUnixNano": str(int(t * 1e9)),
                "attributes": [sattr("k", f"value-{i:04d}")]} for i in range(200)]
        b = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": [
            {"name": "wide", "gauge": {"dataPoints": pts}}]}]}]}
        assert post_json(http_, "/v1/metrics", b)[0] == 200

        def series():
            n = 0
            for _, _, d in FakeWrite.seen[1:]:
                n += len(WriteRequest.FromString(snappy.uncompress(d)).timeseries)
            return n == 200
        wait_for(series, 15, "200 series")
        t0, hdrs, first = FakeWrite.seen[0]
        assert hdrs["Content-Encoding"] == "snappy"
        assert hdrs["Content-Type"] == "application/x-protobuf"
        assert hdrs["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        assert hdrs["X-Scope-OrgID"] == "tenant1"
        # Refused with 503 and Retry-After: 1, sent again a second later,
        # the same bytes (the backoff alone would have been 10ms).
        t1, _, again = FakeWrite.seen[1]
        assert again == first and t1 - t0 >= 0.9, t1 - t0
        reqs = [WriteRequest.FromString(snappy.uncompress(d)) for _, _, d in FakeWrite.seen[1:]]
        sizes = [len(snappy.uncompress(d)) for _, _, d in FakeWrite.seen]
        assert all(s <= 2048 for s in sizes) and len(reqs) >= 4, sizes  # split, none over
        got = {}
        for r in reqs:
            for ts in r.timeseries:
                names = [l.name for l in ts.labels]
                assert names == sorted(names), names
                lab = {l.name: l.value for l in ts.labels}
                assert lab["__name__"] == "wide" and lab["job"] == "api"
                assert len(ts.samples) == 1 and ts.samples[0].timestamp == int(t * 1000)
                got[lab["k"]] = ts.samples[0].value
        assert got == {f"value-{i:04d}": float(i) for i in range(200)}
    finally:
        srv.shutdown()


def test_config_checks(tmp_path):
    from conftest import run_cli
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config(free_port(), free_port(),
                          "    endpoint: ftp://example/write\n"
                          "    sending_queue: {num_consumers: 4}\n"
                          "    external_labels: {cluster: ''}\n"))
    r = run_cli("validate", "--config", str(cfg))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "is not an http:// or https:// URL" in out, out
    assert "external label \"cluster\" has an empty value" in out, out
    assert "one sender is used" in out, out  # a warning, with the two errors
    cfg.write_text(config(free_port(), free_port(), "    endpoint: http://127.0.0.1:9/api/v1/write\n"))
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode == 0, r.stdout + r.stderr
