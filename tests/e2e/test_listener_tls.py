"""`tls:` on every TCP listener the agent has: OTLP/gRPC, OTLP/HTTP, the
prometheus exporter's scrape endpoint, the telemetry endpoint and the
jsonlog receiver's NDJSON endpoint. For each: a client that trusts the test
CA is served, a plaintext client is not (no answer, the connection
closed), and a certificate replaced on disk is what the next connection
gets (reload_interval). DogStatsD has no TCP listener (UDP and Unix
sockets only), so it takes no `tls:`."""
import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request

import grpc

from conftest import TestCA, free_port, wait_for

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"
NAMES = ("grpc", "http", "prom", "tel", "jsonlog")


def config(p, live, out, logs_out, logs_dir):
    tls = (f"{{ cert_file: {live}/server.pem, key_file: {live}/server.key, "
           "reload_interval: 200ms }")
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: 127.0.0.1:{p['grpc']}, tls: {tls} }}
      http: {{ endpoint: 127.0.0.1:{p['http']}, tls: {tls} }}
  jsonlog:
    include: ["{logs_dir}/*.log"]
    endpoint: 127.0.0.1:{p['jsonlog']}
    tls: {tls}
exporters:
  file: {{ path: {out} }}
  file/logs: {{ path: {logs_out} }}
  prometheus: {{ endpoint: 127.0.0.1:{p['prom']}, tls: {tls} }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
    metrics: {{ receivers: [otlp], exporters: [prometheus] }}
    logs: {{ receivers: [jsonlog], exporters: [file/logs] }}
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{p['tel']}
      tls: {tls}
"""


def client_ctx(ca, alpn=None):
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols([alpn])
    return ctx


def peer_cn(port, ca, alpn=None):
    """The CN of the certificate the listener presents now (verified)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx(ca, alpn).wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def https(port, path, ca, data=None, headers=None):
    req = urllib.request.Request(f"https://localhost:{port}{path}", data=data,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5, context=client_ctx(ca)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def grpc_export(port, ca):
    creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    with grpc.secure_channel(f"localhost:{port}", creds) as ch:
        call = ch.unary_unary(TRACES, request_serializer=lambda x: x,
                              response_deserializer=lambda x: x)
        call(b"", timeout=5)


def jsonlog_send(port, ca, text):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx(ca).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(json.dumps({"msg": text}).encode() + b"\n")


def plaintext_refused(port, payload):
    """Plaintext bytes get no answer in plaintext and the connection closes
    (a TLS alert, record type 21, is all that may come back)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        got = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError(f"port {port}: the plaintext connection was left open")
    assert got == b"" or got[0] == 0x15, (port, got[:80])


def install(leaf, live):
    """A renewed certificate the way a secret manager writes one: each file
    replaced by a rename."""
    for src, dst in ((leaf["cert"], "server.pem"), (leaf["key"], "server.key")):
        shutil.copy(src, live / (dst + ".new"))
        os.replace(live / (dst + ".new"), live / dst)


def test_tls_on_every_listener_with_reload(agent_factory, tmp_path):
    ca = TestCA(tmp_path)
    first = ca.leaf("first", SAN)
    second = ca.leaf("second", SAN)
    live = tmp_path / "live"
    live.mkdir()
    install(first, live)
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    p = {k: free_port() for k in NAMES}
    out, logs_out = tmp_path / "traces.jsonl", tmp_path / "logs.jsonl"
    a = agent_factory(config(p, live, out, logs_out, logs_dir))
    a.start()
    wait_for(lambda: https_ok(p["tel"], "/readyz", ca.ca), 10, "the telemetry endpoint over TLS")

    alpn = {"grpc": "h2"}
    for name in NAMES:
        assert peer_cn(p[name], ca.ca, alpn.get(name)) == "first", name

    # served over TLS
    grpc_export(p["grpc"], ca.ca)
    assert https(p["http"], "/v1/traces", ca.ca, b"",
                 {"Content-Type": "application/x-protobuf"})[0] == 200
    assert https(p["prom"], "/metrics", ca.ca)[0] == 200
    st, body = https(p["tel"], "/metrics", ca.ca)
    assert st == 200 and b"otelite_" in body
    jsonlog_send(p["jsonlog"], ca.ca, "over tls")
    wait_for(lambda: logs_out.exists() and "over tls" in logs_out.read_text(), 10,
             "the line sent over TLS")

    # plaintext refused
    http_get = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    plaintext_refused(p["grpc"], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    plaintext_refused(p["http"], b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    plaintext_refused(p["prom"], http_get)
    plaintext_refused(p["tel"], b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    plaintext_refused(p["jsonlog"], b'{"msg": "in plaintext"}\n')

    # a renewed certificate is what new connections get
    install(second, live)
    for name in NAMES:
        wait_for(lambda: peer_cn(p[name], ca.ca, alpn.get(name)) == "second", 10,
                 f"{name} serving the new certificate")
    grpc_export(p["grpc"], ca.ca)
    assert https(p["http"], "/v1/traces", ca.ca, b"",
                 {"Content-Type": "application/x-protobuf"})[0] == 200
    assert https(p["prom"], "/metrics", ca.ca)[0] == 200
    assert https(p["tel"], "/healthz", ca.ca)[0] == 200
    jsonlog_send(p["jsonlog"], ca.ca, "after renewal")
    wait_for(lambda: "after renewal" in logs_out.read_text(), 10, "the line after renewal")
    assert "in plaintext" not in logs_out.read_text()
    assert a.stop() == 0


def https_ok(port, path, ca):
    try:
        return https(port, path, ca)[0] == 200
    except OSError:
        return False


def test_tls_on_jsonlog_needs_an_endpoint_and_a_certificate(tmp_path):
    from conftest import run_cli
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
receivers:
  jsonlog: {{ include: ["{tmp_path}/*.log"], tls: {{ cert_file: /nonexistent.pem }} }}
exporters:
  file: {{ path: /dev/null }}
service:
  pipelines:
    logs: {{ receivers: [jsonlog], exporters: [file] }}
""")
    r = run_cli("validate", "--config", str(cfg))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "tls needs endpoint" in out and "tls needs cert_file and key_file" in out, out
