"""The jsonlog receiver on real files with the real binary: a writer
process appends numbered lines while the test rotates the file by rename,
copytruncate and delete and kills the agent with SIGKILL twice; every
number must arrive, and repeats are bounded by what was read but not yet
checkpointed at a kill. Then Docker and CRI files in a /var/log/pods-shaped
tree: partial lines, non-JSON, over-long lines, invalid UTF-8, Kubernetes
resource attributes. Records are read back from the file exporter's OTLP
JSON with Python's json module."""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, http_get, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def records(path):
    """(resource attributes, record) pairs the file exporter wrote; a line
    torn by a kill is skipped."""
    out = []
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        for rl in doc.get("resourceLogs", []):
            res = {a["key"]: a["value"] for a in rl.get("resource", {}).get("attributes", [])}
            for sl in rl.get("scopeLogs", []):
                for r in sl.get("logRecords", []):
                    out.append((res, r))
    return out


def attrs(r):
    return {a["key"]: a["value"] for a in r.get("attributes", [])}


def numbers(paths):
    got = []
    for p in paths:
        for _, r in records(p):
            v = attrs(r).get("n")
            if v is not None:
                got.append(int(v["intValue"]))
    return got


def config(logs, out, state, extra="", tel=None):
    tel = tel or free_port()
    return f"""
receivers:
  jsonlog:
    include: [{logs}]
    start_at: beginning
    poll_interval: 100ms
    storage: file_storage
{extra}
extensions:
  file_storage: {{ directory: {state} }}
exporters:
  file: {{ path: {out} }}
service:
  extensions: [file_storage]
  telemetry: {{ metrics: {{ endpoint: 127.0.0.1:{tel} }} }}
  pipelines:
    logs: {{ receivers: [jsonlog], exporters: [file] }}
"""


def test_rotations_and_kill9_lose_nothing(agent_factory, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    app.write_text("")
    total, rate = 24000, 3000.0
    writer = subprocess.Popen([sys.executable, os.path.join(HERE, "jsonlog_writer.py"), str(app),
                               str(total), str(rate)])
    outs = []
    runs = 0
    tels = [free_port() for _ in range(3)]

    def start():
        nonlocal runs
        runs += 1
        out = tmp_path / f"out{runs}.jsonl"
        outs.append(out)
        a = agent_factory(config(f"{logs}/app.log*", out, tmp_path / "state", tel=tels[runs - 1]),
                          name=f"a{runs}")
        a.start(wait_url=f"http://127.0.0.1:{tels[runs - 1]}/readyz")
        return a

    try:
        a = start()
        time.sleep(1.5)
        os.rename(app, logs / "app.log.1")             # rename and create
        time.sleep(1.0)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        time.sleep(0.3)
        a = start()
        time.sleep(1.0)
        shutil.copyfile(app, logs / "app.log.2")       # copytruncate
        # lines written between the copy and the truncate exist only in
        # the original; the agent reads them if it has had one poll
        # interval since they were written (the writer pauses for that;
        # a line written in the last interval before a truncate would be
        # lost, as with every tailer that polls)
        time.sleep(0.5)
        writer.send_signal(signal.SIGSTOP)
        time.sleep(0.4)
        with open(app, "r+") as f:
            f.truncate(0)
        writer.send_signal(signal.SIGCONT)
        time.sleep(1.0)
        os.unlink(logs / "app.log.1")                  # delete a rotated file
        os.unlink(app)                                 # delete while open and written
        time.sleep(1.0)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        time.sleep(0.3)
        a = start()
        assert writer.wait(30) == 0

        def complete():
            return len(set(numbers(outs))) >= total
        try:
            wait_for(complete, 20, "every line")
        except AssertionError:
            got = set(numbers(outs))
            missing = sorted(set(range(total)) - got)
            raise AssertionError(f"{len(missing)} lines missing, first {missing[:20]}:\n" + a.log())
        got = numbers(outs)
        assert set(got) == set(range(total))
        dups = len(got) - total
        # repeats come only from batches accepted but not yet checkpointed
        # at one of the two kills: far fewer than a second of writing
        assert dups < rate, f"{dups} repeated lines"
        # the second run saw the copytruncate and both deletes
        # (its counters died with it; the third run's are its own)
        assert metric(tels[2], "otelite_jsonlog_files_open") >= 1
        assert metric(tels[2], "otelite_jsonlog_checkpoint_lag_bytes") == 0
        assert a.stop() == 0
    finally:
        if writer.poll() is None:
            writer.kill()


def test_pod_tree_docker_and_cri(agent_factory, tmp_path):
    root = tmp_path / "pods"
    cri = root / "shop_cart-5f6d_0a1b-2c3d" / "app" / "2.log"
    dock = root / "shop_web-1_9f8e" / "nginx" / "0.log"
    cri.parent.mkdir(parents=True)
    dock.parent.mkdir(parents=True)
    long_msg = "x" * 5000
    cri.write_bytes(
        b'2025-11-25T10:00:00.000000001Z stdout F {"level":"error","msg":"cri json","k":{"a":[1,2]}}\n'
        b"2025-11-25T10:00:01Z stderr P first half \n"
        b"2025-11-25T10:00:02Z stderr F second half\n"
        b"2025-11-25T10:00:03Z stdout F plain text \xff bad byte\n"
        b"2025-11-25T10:00:04Z stdout F " + long_msg.encode() + b"\n"
        b"not a cri line at all\n")
    dock.write_text(
        json.dumps({"log": '{"msg":"docker json","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}\n',
                    "stream": "stdout", "time": "2025-11-25T10:00:05.5Z"}) + "\n" +
        json.dumps({"log": "part one ", "stream": "stderr", "time": "2025-11-25T10:00:06Z"}) + "\n" +
        json.dumps({"log": "part two\n", "stream": "stderr", "time": "2025-11-25T10:00:07Z"}) + "\n")
    out = tmp_path / "out.jsonl"
    a = agent_factory(config(f"{root}/**/*.log", out, tmp_path / "state",
                             f"    pod_logs_root: {root}\n    max_log_size: 1KiB\n"
                             f"    include_file_path: true\n"))
    a.start()
    recs = wait_for(lambda: (lambda r: r if len(r) >= 7 else None)(records(out)), 10, "7 records")
    assert a.stop() == 0
    by_body = {}
    for res, r in recs:
        b = r["body"].get("stringValue")
        by_body[b if b is not None else json.dumps(r["body"])[:40]] = (res, r)

    res, r = by_body["cri json"]
    assert res["k8s.namespace.name"]["stringValue"] == "shop"
    assert res["k8s.pod.name"]["stringValue"] == "cart-5f6d"
    assert res["k8s.pod.uid"]["stringValue"] == "0a1b-2c3d"
    assert res["k8s.container.name"]["stringValue"] == "app"
    assert res["k8s.container.restart_count"]["intValue"] == "2"
    assert r["severityNumber"] == 17
    assert r["timeUnixNano"] == "1764064800000000001"
    at = attrs(r)
    assert at["log.iostream"]["stringValue"] == "stdout"
    assert at["log.file.name"]["stringValue"] == "2.log"
    assert at["log.file.path"]["stringValue"] == str(cri)
    assert [v["intValue"] for v in at["k"]["kvlistValue"]["values"][0]["value"]["arrayValue"]["values"]] == ["1", "2"]

    res, r = by_body["first half second half"]
    assert attrs(r)["log.iostream"]["stringValue"] == "stderr"
    assert r["timeUnixNano"] == "1764064801000000000"  # the first part's time
    assert "plain text \ufffd bad byte" in by_body
    cut = [r for _, r in recs if attrs(r).get("log.truncated")]
    assert len(cut) == 1 and len(cut[0]["body"]["stringValue"]) <= 1024
    bad = [r for _, r in recs if "log.parse_error" in attrs(r)]
    assert [r["body"]["stringValue"] for r in bad] == ["not a cri line at all"]

    res, r = by_body["docker json"]
    assert res["k8s.pod.name"]["stringValue"] == "web-1"
    assert r["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert r["timeUnixNano"] == "1764064805500000000"
    res, r = by_body["part one part two"]
    assert attrs(r)["log.iostream"]["stringValue"] == "stderr"


def test_symlinks_read_once_and_start_at_end(agent_factory, tmp_path):
    real = tmp_path / "real"
    links = tmp_path / "links"
    real.mkdir()
    links.mkdir()
    old = real / "a.log"
    old.write_text('{"msg":"before start"}\n')
    os.symlink(old, links / "a.log")
    out = tmp_path / "out.jsonl"
    cfg = config(f"{links}/*.log", out, tmp_path / "state").replace(
        "    start_at: beginning\n", "    start_at: end\n").replace(
        f"include: [{links}/*.log]", f"include: [{links}/*.log, {real}/*.log]")
    a = agent_factory(cfg)
    a.start()
    time.sleep(0.8)
    with open(old, "a") as f:
        f.write('{"msg":"after start"}\n')
    wait_for(lambda: records(out), 10, "a record")
    time.sleep(0.5)
    assert a.stop() == 0
    bodies = [r["body"]["stringValue"] for _, r in records(out)]
    assert bodies == ["after start"]


class LogSink:
    """An OTLP/HTTP JSON logs backend (from the OTLP/HTTP spec: POST
    /v1/logs, a JSON ExportLogsServiceRequest, 200 with a JSON response)
    that records the "n" attribute of every record."""

    def __init__(self, port):
        self.port, self.ns, self.server = port, [], None
        self.lock = threading.Lock()

    def start(self):
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                doc = json.loads(body)
                got = []
                for rl in doc.get("resourceLogs", []):
                    for sl in rl.get("scopeLogs", []):
                        for r in sl.get("logRecords", []):
                            got.append(int(attrs(r)["n"]["intValue"]))
                with sink.lock:
                    sink.ns.extend(got)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def metric(tel, name):
    _, body = http_get(f"http://127.0.0.1:{tel}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def vm_hwm_kib(pid):
    """Peak RSS; 0 under AddressSanitizer, whose shadow memory and
    quarantine make RSS bounds meaningless (the bound is checked by the
    normal build)."""
    with open(f"/proc/{pid}/maps") as f:
        if "libasan" in f.read():
            return 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_backend_down_stops_the_reader_then_everything_arrives(agent_factory, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    total = 200000
    pad = "p" * 200
    with open(logs / "big.log", "w") as f:
        for i in range(total):
            f.write(json.dumps({"level": "info", "msg": pad, "n": i}) + "\n")
    size = os.path.getsize(logs / "big.log")
    tel, backend = free_port(), free_port()
    a = agent_factory(f"""
receivers:
  jsonlog: {{ include: ["{logs}/*.log"], start_at: beginning }}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    encoding: json
    compression: none
    sending_queue: {{ queue_size: 2, num_consumers: 1 }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0s }}
service:
  telemetry: {{ metrics: {{ endpoint: 127.0.0.1:{tel} }} }}
  pipelines:
    logs: {{ receivers: [jsonlog], exporters: [otlphttp] }}
""")
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    sink = None
    try:
        wait_for(lambda: metric(tel, "otelite_jsonlog_records_refused_total") > 0, 10, "a refusal")
        read1 = metric(tel, "otelite_jsonlog_bytes_read_total")
        time.sleep(1.5)
        read2 = metric(tel, "otelite_jsonlog_bytes_read_total")
        # the reader stopped: the file is the buffer, not memory
        assert read1 == read2 and read2 < size / 2, (read1, read2, size)
        assert metric(tel, "otelite_jsonlog_checkpoint_lag_bytes") > 0
        assert vm_hwm_kib(a.proc.pid) < 64 * 1024
        sink = LogSink(backend).start()

        def done():
            with sink.lock:
                return len(set(sink.ns)) >= total
        wait_for(done, 60, "every record at the backend")
        with sink.lock:
            assert sorted(sink.ns) == list(range(total))
        assert metric(tel, "otelite_jsonlog_bytes_read_total") == size
        assert vm_hwm_kib(a.proc.pid) < 64 * 1024
    finally:
        assert a.stop() == 0, a.log()
        if sink:
            sink.stop()


def test_tcp_endpoint_ndjson(agent_factory, tmp_path):
    import socket
    port = free_port()
    out = tmp_path / "out.jsonl"
    a = agent_factory(config(f"{tmp_path}/none/*.log", out, tmp_path / "state",
                             f"    endpoint: 127.0.0.1:{port}\n"))
    a.start()
    wait_for(lambda: "listening" in a.log(), 10, "the listener")
    s = socket.create_connection(("127.0.0.1", port))
    lines = [json.dumps({"level": "warn", "msg": f"tcp {i}", "n": i}) for i in range(1000)]
    data = ("\n".join(lines) + "\n").encode()
    for i in range(0, len(data), 777):  # lines split across writes
        s.sendall(data[i:i + 777])
    s.sendall(b"not json\n{\"msg\":\"last, no newline\"}")
    s.close()
    recs = wait_for(lambda: (lambda r: r if len(r) >= 1002 else None)(records(out)), 10, "1002 records")
    assert a.stop() == 0
    got = sorted(int(attrs(r)["n"]["intValue"]) for _, r in recs if "n" in attrs(r))
    assert got == list(range(1000))
    assert all(r["severityNumber"] == 13 for _, r in recs if "n" in attrs(r))
    bodies = {r["body"]["stringValue"] for _, r in recs}
    assert "not json" in bodies and "last, no newline" in bodies


def test_tcp_endpoint_serves_a_sender_while_idle_connections_hold_every_slot(agent_factory, tmp_path):
    """A neighbour that opens more connections than there are slots and
    sends nothing must not shut real senders out: the idlest gives way."""
    import socket
    port = free_port()
    out = tmp_path / "out.jsonl"
    a = agent_factory(config(f"{tmp_path}/none/*.log", out, tmp_path / "state",
                             f"    endpoint: 127.0.0.1:{port}\n"))
    a.start()
    wait_for(lambda: "listening" in a.log(), 10, "the listener")
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    time.sleep(0.5)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"".join(json.dumps({"msg": "through", "n": i}).encode() + b"\n"
                       for i in range(50)))
    s.close()
    recs = wait_for(lambda: (lambda r: r if len(r) >= 50 else None)(records(out)), 10,
                    "the sender's 50 records")
    for c in idle:
        c.close()
    assert a.stop() == 0, a.log()
    assert sorted(int(attrs(r)["n"]["intValue"]) for _, r in recs) == list(range(50))


def test_configured_mapping_and_delete_after_read(agent_factory, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(
        '{"when":"25/Nov/2025:11:00:00 +0100","sev":"boom","text":"configured","level":"debug"}\n'
        '{"when":"bad","sev":"E","text":{"k":1}}\n')
    out, tel = tmp_path / "out.jsonl", free_port()
    a = agent_factory(config(f"{logs}/*.log", out, tmp_path / "state", tel=tel, extra="""
    delete_after_read: true
    timestamp: { field: when, layout: "%d/%b/%Y:%H:%M:%S %z" }
    severity: { field: sev, mapping: { fatal: [boom], error: E } }
    body: { field: text }
"""))
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    recs = wait_for(lambda: (lambda r: r if len(r) >= 2 else None)(records(out)), 10, "2 records")
    wait_for(lambda: not (logs / "a.log").exists(), 10, "the file deleted after reading")
    assert a.stop() == 0
    r0, r1 = recs[0][1], recs[1][1]
    assert r0["timeUnixNano"] == "1764064800000000000"
    assert r0["severityNumber"] == 21 and r0["body"]["stringValue"] == "configured"
    assert attrs(r0)["level"]["stringValue"] == "debug"   # not the severity field here
    assert r1["severityNumber"] == 17
    assert attrs(r1)["when"]["stringValue"] == "bad"      # unparsable: kept as attribute
    assert r1["body"]["kvlistValue"]["values"][0]["key"] == "k"


def test_rotation_counters(agent_factory, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    out, tel = tmp_path / "out.jsonl", free_port()
    a = agent_factory(config(f"{logs}/*.log", out, tmp_path / "state", tel=tel))
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    (logs / "b.log").write_text('{"msg":"b1"}\n')
    wait_for(lambda: len(records(out)) >= 1, 10, "b1")
    os.rename(logs / "b.log", logs / "b.log.old")      # out of the globs
    (logs / "c.log").write_text('{"msg":"c1"}\n{"msg":"c2"}\n')
    wait_for(lambda: len(records(out)) >= 3, 10, "c1 c2")
    with open(logs / "c.log", "r+") as f:
        f.truncate(0)
    (logs / "d.log").write_text('{"msg":"d1"}\n')
    wait_for(lambda: len(records(out)) >= 4, 10, "d1")
    os.unlink(logs / "d.log")
    wait_for(lambda: metric(tel, "otelite_jsonlog_rotations_total") >= 3, 10, "rotations")
    _, m = http_get(f"http://127.0.0.1:{tel}/metrics")
    m = m.decode()
    for kind in ("rename", "copytruncate", "delete"):
        assert f'otelite_jsonlog_rotations_total{{kind="{kind}",receiver="jsonlog"}} 1' in m, m
    assert metric(tel, "otelite_jsonlog_lines_read_total") == 4
    assert metric(tel, "otelite_jsonlog_records_accepted_total") == 4
    wait_for(lambda: metric(tel, "otelite_jsonlog_files_open") == 1, 10, "b and d closed")
    assert a.stop() == 0


def test_last_line_without_newline_is_flushed(agent_factory, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    out, tel = tmp_path / "out.jsonl", free_port()
    a = agent_factory(config(f"{logs}/*.log", out, tmp_path / "state", tel=tel,
                             extra="    force_flush_period: 300ms\n"))
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    with open(logs / "a.log", "w") as f:
        f.write('{"msg":"whole"}\n{"msg":"no new')
        f.flush()
        time.sleep(0.1)
        f.write('line yet"}')       # still growing: not cut in two
        f.flush()
        recs = wait_for(lambda: (lambda r: r if len(r) >= 2 else None)(records(out)), 10, "2 records")
        f.write('\n{"msg":"after"}\n')
    recs = wait_for(lambda: (lambda r: r if len(r) >= 3 else None)(records(out)), 10, "3 records")
    assert a.stop() == 0
    assert [r["body"]["stringValue"] for _, r in recs] == ["whole", "no newline yet", "after"]


def test_double_star_exclude_and_max_concurrent_files(agent_factory, tmp_path):
    root = tmp_path / "r"
    for d in ("a", "a/b/c", "skip"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "top.log").write_text('{"msg":"top"}\n')
    (root / "a/b/c/deep.log").write_text('{"msg":"deep"}\n')
    (root / "skip/no.log").write_text('{"msg":"excluded"}\n')
    (root / "a/not-a-log.txt").write_text('{"msg":"other name"}\n')
    out, tel = tmp_path / "out.jsonl", free_port()
    a = agent_factory(config(f"{root}/**/*.log", out, tmp_path / "state", tel=tel,
                             extra=f"    exclude: [{root}/skip/**]\n    max_concurrent_files: 2\n"))
    a.start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    wait_for(lambda: len(records(out)) >= 2, 10, "2 records")
    time.sleep(0.5)
    assert sorted(r["body"]["stringValue"] for _, r in records(out)) == ["deep", "top"]
    # a third file waits while two are open; it is read once one closes
    (root / "a/third.log").write_text('{"msg":"third"}\n')
    time.sleep(0.6)
    assert len(records(out)) == 2
    assert metric(tel, "otelite_jsonlog_files_open") == 2
    os.unlink(root / "top.log")
    wait_for(lambda: len(records(out)) >= 3, 10, "the third file")
    assert a.stop() == 0
    assert sorted(r["body"]["stringValue"] for _, r in records(out)) == ["deep", "third", "top"]
