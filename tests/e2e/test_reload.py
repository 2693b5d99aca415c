"""Reloads that keep what they should: a receiver whose pipelines change
keeps its listening socket, a replaced exporter hands its memory queue to
its replacement, a receiver that cannot bind goes back to its previous
listener, and gRPC metadata held by open streams counts against the
receiver's in-flight budget (also after the reload that turns it on)."""
import http.client
import json
import signal
import socket
import time

import h2raw as h2
from conftest import free_port, http_get, post_json
from test_delivery import Backend, config, send, span_doc

LOG_JSON = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "t"}, "logRecords": [
    {"timeUnixNano": "1", "severityNumber": 9, "body": {"stringValue": "hello after reload"}}]}]}]}


def metric(tel, name, labels):
    _, body = http_get(f"http://127.0.0.1:{tel}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and all(l in line for l in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_lines(path, n, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            lines = [l for l in path.read_text().splitlines() if l.strip()]
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {n} lines")


def listener_inode(port):
    """The inode of the socket listening on 127.0.0.1:port (/proc/net/tcp):
    the same inode before and after a reload is the same socket."""
    want = f"0100007F:{port:04X}"
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":
            return int(f[9])
    return None


def post_on(conn, path, doc):
    conn.request("POST", path, json.dumps(doc), {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def test_rewired_receiver_keeps_its_listener(tmp_path, agent_factory):
    """Adding a logs pipeline to a receiver that only had traces: the same
    keep-alive connection, opened before the reload, now delivers logs."""
    hp, tel = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    text = f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{hp}"}}
exporters:
  file: {{path: "{out}"}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{tel}"}}}}
"""
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
    assert post_on(conn, "/v1/traces", span_doc("before")) == 200
    assert post_on(conn, "/v1/logs", LOG_JSON) == 404
    inode = listener_inode(hp)
    assert inode
    a.config.write_text(text.replace(
        "  telemetry:", "    logs: {receivers: [otlp], exporters: [file]}\n  telemetry:"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    assert listener_inode(hp) == inode, "the listening socket was replaced"
    assert "receivers_kept=1" in a.log(), a.log()
    assert "receiver rewired" in a.log(), a.log()
    # the connection made before the reload is still served
    assert post_on(conn, "/v1/logs", LOG_JSON) == 200
    assert post_on(conn, "/v1/traces", span_doc("after")) == 200
    lines = wait_lines(out, 3)
    assert any("hello after reload" in l for l in lines)
    conn.close()

    # and taking the signal away again answers 404 on the same listener
    a.config.write_text(text)
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded", count=2)
    assert listener_inode(hp) == inode
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
    assert post_on(conn, "/v1/logs", LOG_JSON) == 404
    assert post_on(conn, "/v1/traces", span_doc("last")) == 200
    conn.close()
    assert a.stop() == 0, a.log()


def udp_inode(port):
    want = f"0100007F:{port:04X}"
    for line in open("/proc/net/udp").read().splitlines()[1:]:
        f = line.split()
        if f[1] == want:
            return int(f[9])
    return None


def test_rewired_dogstatsd_keeps_its_socket(tmp_path, agent_factory):
    """DogStatsD in a metrics pipeline only, then a reload that adds a logs
    pipeline for its events: the same UDP socket now delivers events too."""
    dp, tel = free_port(), free_port()  # a TCP port number nobody holds serves for UDP too
    out = tmp_path / "out.jsonl"
    text = f"""
receivers:
  dogstatsd: {{endpoint: "127.0.0.1:{dp}", aggregation_interval: 1s}}
exporters:
  file: {{path: "{out}"}}
service:
  pipelines:
    metrics: {{receivers: [dogstatsd], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{tel}"}}}}
"""
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    inode = udp_inode(dp)
    assert inode
    a.config.write_text(text.replace(
        "  telemetry:", "    logs: {receivers: [dogstatsd], exporters: [file]}\n  telemetry:"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    assert udp_inode(dp) == inode, "the UDP socket was replaced"
    assert "receiver rewired" in a.log(), a.log()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"_e{7,5}:rewired|hello|t:warning\nrw.count:3|c", ("127.0.0.1", dp))
    s.close()
    deadline = time.time() + 10
    text_out = ""
    while time.time() < deadline:
        text_out = out.read_text() if out.exists() else ""
        if "rewired" in text_out and "rw.count" in text_out:
            break
        time.sleep(0.2)
    assert "rewired" in text_out and "rw.count" in text_out, text_out[-2000:]
    assert a.stop() == 0, a.log()


def test_replaced_exporter_hands_its_memory_queue_over(tmp_path, agent_factory):
    """Backend down, spans queued in memory, then a SIGHUP that changes the
    exporter: the replacement sends them once the backend is up, though the
    shutdown deadline passed long before."""
    ports = dict(http=free_port(), tel=free_port(), backend=free_port())
    text = config(**ports).replace("  pipelines:", "  shutdown_timeout: 1s\n  pipelines:", 1)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    names = [f"handed-{i}" for i in range(10)]
    for n in names:
        assert send(ports["http"], n) == 200
    time.sleep(0.5)  # the senders are retrying against nothing
    a.config.write_text(text.replace("timeout: 2s", "timeout: 3s"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    assert "with errors" not in a.log(), a.log()
    assert "took over the queue" in a.log(), a.log()
    assert "batches dropped" not in a.log(), a.log()
    time.sleep(1.5)  # past the old exporter's deadline
    b = Backend(ports["backend"]).start()
    try:
        b.wait_spans(names)
    finally:
        assert a.stop() == 0, a.log()
        b.stop()


def grpc_http_config(gp, hp, tel, out):
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{gp}"}}
      http: {{endpoint: "127.0.0.1:{hp}"}}
exporters:
  file: {{path: "{out}"}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{tel}"}}}}
"""


def taken_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def test_receiver_that_cannot_bind_keeps_its_old_listener(tmp_path, agent_factory):
    """Both ports move, the new gRPC one is taken: the old receiver never
    stopped, and a keep-alive connection to it survives the failed reload."""
    gp, hp, tel = free_port(), free_port(), free_port()
    out = tmp_path / "out.jsonl"
    text = grpc_http_config(gp, hp, tel, out)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
    assert post_on(conn, "/v1/traces", span_doc("before")) == 200
    inode = listener_inode(hp)
    blocker, taken = taken_port()
    try:
        a.config.write_text(grpc_http_config(taken, free_port(), tel, out))
        a.signal(signal.SIGHUP)
        a.wait_log("config reloaded with errors")
        log = a.log()
        assert "Address already in use" in log
        assert "rolled back to its previous listener" in log, log
        assert listener_inode(hp) == inode, "not the old listener"
        assert post_on(conn, "/v1/traces", span_doc("after")) == 200
        wait_lines(out, 2)
        with socket.create_connection(("127.0.0.1", gp), timeout=2):
            pass
    finally:
        blocker.close()
        conn.close()
    assert a.stop() == 0, a.log()


def test_receiver_that_cannot_bind_on_a_shared_port_listens_again(tmp_path, agent_factory):
    """The HTTP port stays, the gRPC one moves to a taken port: the old
    receiver had to let its ports go first, and is made again on them."""
    gp, hp, tel = free_port(), free_port(), free_port()
    out = tmp_path / "out.jsonl"
    text = grpc_http_config(gp, hp, tel, out)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    blocker, taken = taken_port()
    try:
        a.config.write_text(grpc_http_config(taken, hp, tel, out))
        a.signal(signal.SIGHUP)
        a.wait_log("config reloaded with errors")
        assert "rolled back to its previous listener" in a.log(), a.log()
        assert post_json(hp, "/v1/traces", span_doc("after"))[0] == 200
        wait_lines(out, 1)
        with socket.create_connection(("127.0.0.1", gp), timeout=2):
            pass
    finally:
        blocker.close()
    # the next good reload replaces the rolled-back receiver as usual
    a.config.write_text(text.replace(str(hp), str(free_port())))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded", count=2)
    assert a.log().count("config reloaded with errors") == 1, a.log()
    assert a.stop() == 0, a.log()


def test_grpc_metadata_of_open_streams_is_charged(tmp_path, agent_factory):
    """include_metadata turned on by a reload: streams held open with 12 KiB
    of metadata each are refused (UNAVAILABLE) once they hold the 64 KiB
    budget, instead of holding memory no budget counts."""
    gp, tel = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    text = f"""
receivers:
  otlp:
    max_inflight_bytes: 64KiB
    protocols:
      grpc: {{endpoint: "127.0.0.1:{gp}", include_metadata: false}}
exporters:
  file: {{path: "{out}"}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{tel}"}}}}
"""
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    a.config.write_text(text.replace("include_metadata: false", "include_metadata: true"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    c = h2.Conn(gp)
    try:
        streams = []
        for i in range(10):
            sid = c.stream_id()
            block = h2.request_block(extra=[("x-big", chr(97 + i) * 12000)])
            c.send(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, block))  # body never sent
            streams.append(sid)
        frames = c.frames(timeout=2.0)
        answered = {sid for ft, _, sid, _ in frames if ft == h2.HEADERS and sid in streams}
        assert len(answered) >= 3, frames
        assert len(answered) < len(streams)  # the first ones fit and wait for their body
        assert metric(tel, "otelite_receiver_requests_total",
                      ['transport="grpc"', 'code="14"']) == len(answered)
    finally:
        c.close()
    assert a.stop() == 0, a.log()
