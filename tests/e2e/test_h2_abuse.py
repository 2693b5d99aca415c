"""HTTP/2 abuse on the OTLP/gRPC server, from a raw client (h2raw.py):
rapid reset (the CVE-2023-44487 pattern), a CONTINUATION flood, SETTINGS
and PING floods from a client that never reads, an oversized header list,
and a client that never opens its flow-control window. Each offender's
connection is closed, the agent's memory stays flat, and a well-behaved
grpcio client is served within its latency all along."""
import threading
import time

import grpc
import pytest

import h2raw as h2
from conftest import free_port, proc_kib, SANITIZED

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LATENCY = 1.0  # seconds a good client's call may take while the abuse goes on


@pytest.fixture
def agent(agent_factory):
    grpc_port, tel = free_port(), free_port()
    a = agent_factory(f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
        keepalive: {{ server_parameters: {{ timeout: 2s }} }}
exporters:
  file: {{ path: /dev/null }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
  telemetry:
    metrics: {{ endpoint: 127.0.0.1:{tel} }}
""").start(f"http://127.0.0.1:{tel}/readyz")
    a.grpc = grpc_port
    yield a
    assert a.stop() == 0


class GoodClient(threading.Thread):
    """Calls Export in a loop on its own connection, keeping the worst time."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.worst, self.calls, self.errors = port, 0.0, 0, []
        self.stop = threading.Event()

    def run(self):
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:
            call = ch.unary_unary(TRACES, request_serializer=lambda x: x,
                                  response_deserializer=lambda x: x)
            call(b"", timeout=5)  # connected before the abuse starts
            while not self.stop.is_set():
                t = time.time()
                try:
                    call(b"", timeout=5)
                    self.calls += 1
                except grpc.RpcError as e:
                    self.errors.append(e.code())
                self.worst = max(self.worst, time.time() - t)
                time.sleep(0.02)

    def __enter__(self):
        self.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(10)
        assert not self.errors, self.errors
        assert self.calls > 3
        assert self.worst < LATENCY, self.worst


def test_rapid_reset_closes_the_connection(agent):
    pid = agent.proc.pid
    before = proc_kib(pid, "VmHWM")
    with GoodClient(agent.grpc):
        c = h2.Conn(agent.grpc)
        block = h2.request_block()
        sent = 0
        for _ in range(50):
            burst = b""
            for _ in range(200):
                sid = c.stream_id()
                burst += h2.frame(h2.HEADERS, h2.END_HEADERS, sid, block)
                burst += h2.frame(h2.RST_STREAM, 0, sid, (h2.CANCEL).to_bytes(4, "big"))
            if not c.send(burst):
                break
            sent += 200
        frames = c.frames(5)
        c.close()
    # nghttp2 ends the session (GOAWAY) once the burst of resets is spent;
    # the last stream it took says how many were processed
    goaway = [f for f in frames if f[0] == h2.GOAWAY]
    assert goaway, frames[-3:]
    last = int.from_bytes(goaway[0][3][:4], "big") & 0x7FFFFFFF
    assert last < 2 * 400, last
    assert sent < 10000
    assert SANITIZED or proc_kib(pid, "VmHWM") - before < 16 << 10


def test_continuation_flood_closes_the_connection(agent):
    pid = agent.proc.pid
    before = proc_kib(pid, "VmHWM")
    with GoodClient(agent.grpc):
        c = h2.Conn(agent.grpc)
        sid = c.stream_id()
        c.send(h2.frame(h2.HEADERS, 0, sid, h2.request_block()))
        piece = h2.frame(h2.CONTINUATION, 0, sid, h2.literal("x-pad", "p" * 1000))
        alive = True
        for _ in range(200):
            if not (alive := c.send(piece * 50)):
                break
        assert not alive or c.closed(5)
        c.close()
    assert SANITIZED or proc_kib(pid, "VmHWM") - before < 16 << 10


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_control_frame_flood_without_reading_closes(agent, kind):
    """Every SETTINGS and PING asks for an acknowledgement; a client that
    never reads makes them pile up in the server."""
    pid = agent.proc.pid
    before = proc_kib(pid, "VmHWM")
    with GoodClient(agent.grpc):
        c = h2.Conn(agent.grpc)
        c.s.setsockopt(h2.socket.SOL_SOCKET, h2.socket.SO_RCVBUF, 4096)
        one = (h2.frame(h2.SETTINGS, 0, 0, b"") if kind == "settings"
               else h2.frame(h2.PING, 0, 0, b"12345678"))
        closed = False
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if not c.send(one * 1000):
                    closed = True
                    break
            except h2.Stalled:
                # the server stopped reading: it must have closed, which a
                # reader learns once its full window drains
                break
        assert closed or c.closed(5)
        c.close()
    assert SANITIZED or proc_kib(pid, "VmHWM") - before < 16 << 10


def test_oversized_header_list_is_refused(agent):
    c = h2.Conn(agent.grpc)
    sid = c.stream_id()
    big = h2.request_block(extra=[(f"x-h{i}", "v" * 4000) for i in range(40)])  # ~160 KB
    chunks = [big[i:i + 16000] for i in range(0, len(big), 16000)]
    c.send(h2.frame(h2.HEADERS, 0, sid, chunks[0]))
    for i, ch in enumerate(chunks[1:]):
        last = i == len(chunks) - 2
        c.send(h2.frame(h2.CONTINUATION, h2.END_HEADERS if last else 0, sid, ch))
    frames = c.frames(2)
    c.close()
    # the stream is reset (or the connection ended); no call was made
    assert any(f[0] == h2.RST_STREAM and f[2] == sid for f in frames) or \
        h2.goaway_code(frames) is not None, frames


def test_window_never_opened_closes_the_connection(agent):
    """A client that sets its window to 0 and never opens it holds every
    answer; its connection is closed after keepalive.timeout (2s here)."""
    with GoodClient(agent.grpc):
        c = h2.Conn(agent.grpc, settings=[(h2.INITIAL_WINDOW_SIZE, 0)])
        for _ in range(50):
            sid = c.stream_id()
            c.send(h2.frame(h2.HEADERS, h2.END_HEADERS, sid, h2.request_block()) +
                   h2.frame(h2.DATA, h2.END_STREAM, sid, h2.grpc_message()))
        start = time.time()
        assert c.closed(8), "a connection that never takes its answers stays open"
        took = time.time() - start
        c.close()
    assert took < 6, took
