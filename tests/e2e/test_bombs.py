"""Decompression bombs on every receiving path: OTLP/HTTP with gzip,
deflate and zstd (Content-Length and chunked), OTLP/gRPC with
grpc-encoding gzip and deflate (grpcio compresses). Each small body expands
to 64 MiB of zeros; the agent stops at the body limit and answers 413 /
RESOURCE_EXHAUSTED, its peak RSS barely moves, and it keeps serving."""
import gzip
import socket
import subprocess
import zlib

import grpc
import pytest

from conftest import SANITIZED, free_port, http_post, proc_kib

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
EXPANDED = 64 << 20


@pytest.fixture(scope="module")
def bombs():
    zeros = bytes(EXPANDED)
    zst = subprocess.run(["zstd", "-q", "-19", "-c"], input=zeros, capture_output=True,
                         check=True).stdout
    return {"gzip": gzip.compress(zeros, 9), "deflate": zlib.compress(zeros, 9), "zstd": zst}


@pytest.fixture
def agent(agent_factory):
    http, grpc_port, tel = free_port(), free_port(), free_port()
    a = agent_factory(f"""
receivers:
  otlp:
    protocols:
      http: {{ endpoint: 127.0.0.1:{http}, max_request_body_size: 1MiB }}
      grpc: {{ endpoint: 127.0.0.1:{grpc_port}, max_recv_msg_size_mib: 1 }}
exporters:
  file: {{ path: /dev/null }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
  telemetry:
    metrics: {{ endpoint: 127.0.0.1:{tel} }}
""").start(f"http://127.0.0.1:{tel}/readyz")
    a.http, a.grpc = http, grpc_port
    yield a
    assert a.stop() == 0


def served(a):
    st, _, _ = http_post(f"http://127.0.0.1:{a.http}/v1/traces", b"",
                         {"Content-Type": "application/x-protobuf"})
    return st == 200


@pytest.mark.parametrize("enc", ["gzip", "deflate", "zstd"])
def test_http_bomb_is_refused_413(agent, bombs, enc):
    body = bombs[enc]
    assert len(body) < 1 << 20  # under the limit as sent
    pid = agent.proc.pid
    before = proc_kib(pid, "VmHWM")
    for _ in range(3):
        st, _, _ = http_post(f"http://127.0.0.1:{agent.http}/v1/traces", body,
                             {"Content-Type": "application/x-protobuf",
                              "Content-Encoding": enc}, timeout=20)
        assert st == 413
    # chunked: no length to judge by before inflating
    s = socket.create_connection(("127.0.0.1", agent.http))
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
              b"Content-Encoding: " + enc.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
              b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    s.settimeout(20)
    assert s.recv(64).startswith(b"HTTP/1.1 413 ")
    s.close()
    grown = proc_kib(pid, "VmHWM") - before
    assert SANITIZED or grown < 8 << 10, f"peak RSS grew by {grown} KiB"
    assert served(agent)


@pytest.mark.parametrize("enc", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_grpc_bomb_is_refused_resource_exhausted(agent, enc):
    pid = agent.proc.pid
    before = proc_kib(pid, "VmHWM")
    zeros = bytes(64 << 20)
    with grpc.insecure_channel(f"127.0.0.1:{agent.grpc}", compression=enc) as ch:
        call = ch.unary_unary(TRACES, request_serializer=lambda x: x,
                              response_deserializer=lambda x: x)
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as e:
                call(zeros, timeout=30)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        call(b"", timeout=10)  # and the next call is served
    grown = proc_kib(pid, "VmHWM") - before
    assert SANITIZED or grown < 8 << 10, f"peak RSS grew by {grown} KiB"
