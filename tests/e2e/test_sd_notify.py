"""systemd readiness (Type=notify): the agent sends READY=1 once every
component has started, RELOADING=1 then READY=1 around a SIGHUP reload
(refused or not), STOPPING=1 when it shuts down, and nothing when
NOTIFY_SOCKET is unset. The listener here is a plain AF_UNIX datagram
socket, read the way a service manager reads it: one datagram per
sd_notify call, newline-separated VAR=value assignments."""
import os
import signal
import socket
import time

import pytest

from conftest import free_port, http_get, post_json

CONFIG = """\
receivers:
  otlp:
    protocols:
      http: {{ endpoint: "127.0.0.1:{http}" }}
exporters:
  file: {{ path: "{out}" }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [file] }}
  telemetry:
    metrics: {{ endpoint: "127.0.0.1:{tel}" }}
"""

LOGS = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "hi"}}]}]}]}


class Listener:
    """A NOTIFY_SOCKET: every datagram received, parsed into a dict."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(l.split("=", 1) for l in data.split("\n") if l)

    def nothing(self, wait=0.5):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return True
        raise AssertionError(f"unexpected notification {data!r}")

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path, monkeypatch):
    # sun_path is at most 108 bytes; pytest's tmp paths can be longer.
    path = f"/tmp/otelite-notify-{os.getpid()}-{time.monotonic_ns()}.sock"
    lst = Listener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield lst
    lst.close()
    os.unlink(path)


def maps(a):
    return open(f"/proc/{a.proc.pid}/maps").read()


def start(agent_factory, tmp_path):
    ports = dict(http=free_port(), tel=free_port())
    text = CONFIG.format(out=tmp_path / "out.jsonl", **ports)
    a = agent_factory(text)
    a.start()
    return a, ports, text


def test_ready_reload_stopping(agent_factory, tmp_path, notify):
    a, ports, text = start(agent_factory, tmp_path)
    m = notify.next()
    assert m.get("READY") == "1", m
    assert m.get("MAINPID") == str(a.proc.pid)
    # READY=1 means started: the receiver and /readyz answer at once, no polling.
    assert http_get(f"http://127.0.0.1:{ports['tel']}/readyz")[0] == 200
    assert post_json(ports["http"], "/v1/logs", LOGS)[0] == 200
    assert "libsystemd.so" in maps(a)  # opened because NOTIFY_SOCKET is set

    # A good reload: RELOADING=1 with the monotonic time, then READY=1.
    a.config.write_text("# reloaded\n" + text)
    a.signal(signal.SIGHUP)
    m = notify.next()
    assert m.get("RELOADING") == "1", m
    usec = int(m["MONOTONIC_USEC"])
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 30_000_000
    assert notify.next().get("READY") == "1"
    a.wait_log("config reloaded")

    # A refused reload still ends in READY=1: the old pipelines run on.
    a.config.write_text("receivers: [\n")
    a.signal(signal.SIGHUP)
    assert notify.next().get("RELOADING") == "1"
    assert notify.next().get("READY") == "1"
    a.wait_log("reload refused")
    assert post_json(ports["http"], "/v1/logs", LOGS)[0] == 200

    a.signal(signal.SIGTERM)
    assert notify.next().get("STOPPING") == "1"
    assert a.stop() == 0
    notify.nothing()


def test_bad_config_never_ready(agent_factory, tmp_path, notify):
    a = agent_factory("receivers: {otlp: {protocols: {http: {endpoint: nowhere}}}}\n")
    a.start()
    assert a.proc.wait(10) == 1
    notify.nothing()


def test_port_taken_never_ready(agent_factory, tmp_path, notify):
    """A component that cannot start: exit 1 and no READY=1, so systemd
    marks the start failed instead of running a half-built agent."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    taken = s.getsockname()[1]
    try:
        text = CONFIG.format(out=tmp_path / "out.jsonl", http=taken, tel=free_port())
        a = agent_factory(text)
        a.start()
        assert a.proc.wait(10) == 1
        notify.nothing()
    finally:
        s.close()


def test_without_notify_socket(agent_factory, tmp_path, monkeypatch):
    """NOTIFY_SOCKET unset, or naming a socket nobody listens on: the agent
    runs and stops as usual."""
    for value in (None, "/tmp/otelite-no-such-notify.sock"):
        if value is None:
            monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        else:
            monkeypatch.setenv("NOTIFY_SOCKET", value)
        a, ports, _ = start(agent_factory, tmp_path)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if http_get(f"http://127.0.0.1:{ports['tel']}/readyz", 0.5)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert post_json(ports["http"], "/v1/logs", LOGS)[0] == 200
        # Without a manager the library is never opened (its pages cost RSS).
        assert ("libsystemd.so" in maps(a)) == (value is not None)
        assert a.stop() == 0
