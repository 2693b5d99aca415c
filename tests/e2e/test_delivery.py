"""Delivery guarantees of the exporter helper, with the real binary and a
real HTTP backend on loopback: outages, Retry-After, permanent errors,
kill -9 with the persistent queue, a corrupt queue tail, and overload."""
import glob
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, http_get, post_json


class Backend:
    """An OTLP/HTTP JSON sink. `answers` is a list of (status, headers)
    used in order for the first requests; after it runs out, 200."""

    def __init__(self, port, answers=(), delay=0.0):
        self.port = port
        self.answers = list(answers)
        self.delay = delay
        self.requests = []  # (time, status, body-or-None)
        self.spans = []
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        backend = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if backend.delay:
                    time.sleep(backend.delay)
                with backend.lock:
                    status, hdrs = backend.answers.pop(0) if backend.answers else (200, {})
                    backend.requests.append((time.time(), status, body))
                    if status == 200:
                        doc = json.loads(body)
                        for rs in doc.get("resourceSpans", []):
                            for ss in rs.get("scopeSpans", []):
                                backend.spans.extend(s["name"] for s in ss.get("spans", []))
                out = b"{}"
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_spans(self, names, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if set(names) <= set(self.spans):
                    return
            time.sleep(0.05)
        with self.lock:
            missing = sorted(set(names) - set(self.spans))
        raise AssertionError(f"{len(missing)} spans never arrived, e.g. {missing[:5]}")


def config(http, tel, backend, extra_exporter="", extensions="", service_ext=""):
    return f"""\
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    encoding: json
    compression: none
    timeout: 2s
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 60s
{extra_exporter}
{extensions}
service:
  {service_ext}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{tel}"}}}}
"""


def span_doc(name):
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "t"}, "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": name, "kind": 1, "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}


def send(port, name):
    return post_json(port, "/v1/traces", span_doc(name))[0]


def metric_value(tel, name):
    _, body = http_get(f"http://127.0.0.1:{tel}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def ports():
    return dict(http=free_port(), tel=free_port(), backend=free_port())


def test_outage_then_recovery_delivers_everything(tmp_path, agent_factory, ports):
    a = agent_factory(config(**ports)).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    names = [f"outage-{i}" for i in range(30)]
    for n in names:
        assert send(ports["http"], n) == 200
    time.sleep(1.0)  # backend down: the queue holds them, retries fail
    b = Backend(ports["backend"]).start()
    try:
        b.wait_spans(names)
        # At least once: nothing lost; a duplicate only from a retry.
        assert len(b.spans) >= len(names)
        assert metric_value(ports["tel"], "otelite_exporter_retries_total") > 0
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_retry_after_is_honoured(tmp_path, agent_factory, ports):
    b = Backend(ports["backend"], answers=[(503, {"Retry-After": "2"})]).start()
    a = agent_factory(config(**ports)).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    try:
        assert send(ports["http"], "ra") == 200
        b.wait_spans(["ra"])
        t0, s0, _ = b.requests[0]
        t1, s1, _ = b.requests[1]
        assert s0 == 503 and s1 == 200
        assert t1 - t0 >= 1.9, f"retried after {t1 - t0:.2f}s"
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_permanent_error_is_not_retried(tmp_path, agent_factory, ports):
    b = Backend(ports["backend"], answers=[(400, {})]).start()
    a = agent_factory(config(**ports)).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    try:
        assert send(ports["http"], "bad") == 200
        deadline = time.time() + 10
        while time.time() < deadline and not metric_value(
                ports["tel"], "otelite_exporter_send_failed_spans_total"):
            time.sleep(0.05)
        time.sleep(0.8)  # several retry intervals: none may come
        assert len(b.requests) == 1
        assert metric_value(ports["tel"], "otelite_exporter_send_failed_spans_total") == 1
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def persistent_config(ports, qdir):
    return config(**ports,
                  extra_exporter="    sending_queue: {storage: file_storage}",
                  extensions=f"extensions:\n  file_storage:\n    directory: {qdir}\n"
                             f"    fsync: batch",
                  service_ext="extensions: [file_storage]")


def accept_then_kill_9(agent_factory, ports, qdir, names):
    """An agent with a persistent queue in qdir and no backend up accepts a
    span per name, and is killed with SIGKILL. Returns its config."""
    text = persistent_config(ports, qdir)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    for n in names:
        assert send(ports["http"], n) == 200
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    return text


def test_kill_9_loses_nothing_acknowledged(tmp_path, agent_factory, ports):
    names = [f"durable-{i}" for i in range(20)]
    text = accept_then_kill_9(agent_factory, ports, tmp_path / "queue", names)
    b = Backend(ports["backend"]).start()
    a2 = agent_factory(text, name="agent2").start(
        wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    try:
        b.wait_spans(names)
    finally:
        assert a2.stop() == 0, a2.log()
        b.stop()


def test_corrupt_queue_tail_is_reported_and_rest_delivered(tmp_path, agent_factory, ports):
    qdir = tmp_path / "queue"
    names = [f"tail-{i}" for i in range(10)]
    text = accept_then_kill_9(agent_factory, ports, qdir, names)
    segs = sorted(p for p in glob.glob(str(qdir / "**" / "*"), recursive=True) if os.path.isfile(p)
                  and os.path.getsize(p) > 0)
    assert segs, "no queue files written"
    seg = max(segs, key=os.path.getsize)
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:  # tear the last record and scribble on what is left of it
        f.truncate(size - 7)
        f.seek(size - 40)
        f.write(b"\xde\xad\xbe\xef" * 4)
    b = Backend(ports["backend"]).start()
    a2 = agent_factory(text, name="agent2").start(
        wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    try:
        b.wait_spans(names[:-1])  # all but the damaged last one
        a2.wait_log("skipped")
    finally:
        assert a2.stop() == 0, a2.log()
        b.stop()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_overload_pushes_back_with_bounded_memory(tmp_path, agent_factory, ports):
    b = Backend(ports["backend"], delay=0.5).start()
    text = config(**ports, extra_exporter="    sending_queue: {queue_size: 4, num_consumers: 1}")
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    try:
        codes = [send(ports["http"], f"flood-{i}") for i in range(60)]
        assert codes.count(200) >= 4
        refused = [c for c in codes if c != 200]
        assert refused and set(refused) <= {429, 503}, codes
        # The bound: the agent never holds more than the queue allows.
        assert rss_kib(a.proc.pid) < 64 * 1024
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_reload_keeps_unchanged_exporter_queue(tmp_path, agent_factory, ports):
    """Data queued in an exporter (backend down) survives a SIGHUP that
    changes something else: the exporter instance and its queue are kept."""
    text = config(**ports)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    names = [f"queued-{i}" for i in range(10)]
    for n in names:
        assert send(ports["http"], n) == 200
    # Change only the self-telemetry log level: pipelines are rebuilt around
    # the kept receiver and exporter.
    a.config.write_text(text.replace("telemetry: {metrics:", "telemetry: {logs: {level: debug}, metrics:"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    b = Backend(ports["backend"]).start()
    try:
        b.wait_spans(names)
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_reload_replacing_exporter_moves_its_persistent_queue(tmp_path, agent_factory, ports):
    """A changed exporter with a persistent queue is replaced on SIGHUP: the
    old one lets go of the queue directory and the new one sends what it
    holds."""
    qdir = tmp_path / "queue"
    text = persistent_config(ports, qdir).replace(
        "extensions: [file_storage]", "extensions: [file_storage]\n  shutdown_timeout: 1s")
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    names = [f"moved-{i}" for i in range(5)]
    for n in names:
        assert send(ports["http"], n) == 200
    a.config.write_text(text.replace("timeout: 2s", "timeout: 3s"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    assert "with errors" not in a.log(), a.log()
    b = Backend(ports["backend"]).start()
    try:
        b.wait_spans(names)
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def test_reload_with_a_receiver_that_cannot_start_says_so(tmp_path, agent_factory, ports):
    import socket
    text = config(**ports)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    a.config.write_text(text.replace(str(ports["http"]), str(taken)))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded with errors")
    assert "Address already in use" in a.log()
    blocker.close()
    assert a.stop() == 0, a.log()
