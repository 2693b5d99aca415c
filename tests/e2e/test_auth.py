"""Authenticator extensions on the agent's servers: `bearertokenauth`
(token and a token file rotated while running) and `basicauth` (an
htpasswd file with bcrypt $2y$, SHA-512-crypt and {SHA} entries), named by
`auth.authenticator` on OTLP/HTTP (urllib and curl), OTLP/gRPC (grpcio) and
the prometheus exporter's scrape endpoint. A refusal is 401 /
UNAUTHENTICATED and reads the same whatever part was wrong."""
import base64
import hashlib
import subprocess
import time
import warnings

import grpc
import pytest

from conftest import free_port, http_get, http_post

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian's python3.11 still has it: hashes made by the system's libcrypt

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}


def config(http, grpc_port, prom, tel, ext, auth_id):
    return f"""
extensions:
{ext}
receivers:
  otlp:
    protocols:
      http: {{ endpoint: 127.0.0.1:{http}, auth: {{ authenticator: {auth_id} }} }}
      grpc: {{ endpoint: 127.0.0.1:{grpc_port}, auth: {{ authenticator: {auth_id} }} }}
exporters:
  prometheus: {{ endpoint: 127.0.0.1:{prom}, auth: {{ authenticator: {auth_id} }} }}
  file: {{ path: /dev/null }}
service:
  extensions: [{auth_id}]
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
    metrics: {{ receivers: [otlp], exporters: [prometheus] }}
  telemetry:
    metrics: {{ endpoint: 127.0.0.1:{tel} }}
"""


def start(agent_factory, ext, auth_id):
    p = {k: free_port() for k in ("http", "grpc", "prom", "tel")}
    a = agent_factory(config(p["http"], p["grpc"], p["prom"], p["tel"], ext, auth_id))
    a.start(f"http://127.0.0.1:{p['tel']}/readyz")
    a.p = p
    return a


def post(a, headers):
    return http_post(f"http://127.0.0.1:{a.p['http']}/v1/traces", b"", {**PB, **headers})


def scrape(a, headers):
    import urllib.request
    import urllib.error
    req = urllib.request.Request(f"http://127.0.0.1:{a.p['prom']}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def grpc_call(a, metadata):
    with grpc.insecure_channel(f"127.0.0.1:{a.p['grpc']}") as ch:
        raw = ch.unary_unary(TRACES, request_serializer=lambda x: x,
                             response_deserializer=lambda x: x)
        try:
            raw(b"", metadata=metadata, timeout=5)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_bearer_token_on_every_server(agent_factory):
    a = start(agent_factory, "  bearertokenauth: { token: s3cret-t0ken }", "bearertokenauth")
    good = {"Authorization": "Bearer s3cret-t0ken"}
    assert post(a, good)[0] == 200
    refusals = [post(a, h) for h in ({}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic s3cret-t0ken"},
                                     {"Authorization": "Bearer s3cret-t0ke"})]
    assert {r[0] for r in refusals} == {401}
    # the same answer whatever was wrong
    assert len({r[2] for r in refusals}) == 1
    # curl, a second client
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                          "-H", "Content-Type: application/x-protobuf", "-H",
                          "Authorization: Bearer s3cret-t0ken", "--data-binary", "",
                          f"http://127.0.0.1:{a.p['http']}/v1/traces"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out == "200"
    assert grpc_call(a, [("authorization", "Bearer s3cret-t0ken")])[0] == grpc.StatusCode.OK
    bad = [grpc_call(a, m) for m in ([], [("authorization", "Bearer nope")],
                                     [("authorization", "bearer s3cret-t0ken")])]
    assert {b[0] for b in bad} == {grpc.StatusCode.UNAUTHENTICATED}
    assert len({b[1] for b in bad}) == 1
    assert scrape(a, good)[0] == 200
    assert scrape(a, {})[0] == 401
    # probes stay open to the kubelet, which has no token
    assert http_get(f"http://127.0.0.1:{a.p['tel']}/readyz")[0] == 200
    assert a.stop() == 0


def test_token_file_is_reloaded_when_it_changes(agent_factory, tmp_path):
    f = tmp_path / "token"
    f.write_text("first-token\n")
    a = start(agent_factory, f"  bearertokenauth/file: {{ filename: {f} }}",
              "bearertokenauth/file")
    assert post(a, {"Authorization": "Bearer first-token"})[0] == 200
    # a secret manager's atomic rename
    (tmp_path / "token.new").write_text("second-token\n")
    (tmp_path / "token.new").rename(f)
    deadline = time.time() + 5
    while time.time() < deadline and post(a, {"Authorization": "Bearer second-token"})[0] != 200:
        time.sleep(0.2)
    assert post(a, {"Authorization": "Bearer second-token"})[0] == 200
    assert post(a, {"Authorization": "Bearer first-token"})[0] == 401
    assert grpc_call(a, [("authorization", "Bearer second-token")])[0] == grpc.StatusCode.OK
    a.wait_log("token file reloaded")
    assert a.stop() == 0


def test_basic_auth_htpasswd(agent_factory, tmp_path):
    bcrypt = crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    assert bcrypt.startswith("$2b$")
    sha512 = crypt.crypt("carol-pw", crypt.mksalt(crypt.METHOD_SHA512))
    sha1 = "{SHA}" + base64.b64encode(hashlib.sha1(b"bob-pw").digest()).decode()
    hp = tmp_path / "htpasswd"
    hp.write_text(f"# users\nalice:$2y${bcrypt[4:]}\nbob:{sha1}\ncarol:{sha512}\n")
    a = start(agent_factory, f"  basicauth: {{ htpasswd: {{ file: {hp} }} }}", "basicauth")
    for user, pw in (("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw")):
        assert post(a, {"Authorization": basic(user, pw)})[0] == 200, user
        assert post(a, {"Authorization": basic(user, pw)})[0] == 200, user  # remembered
        assert grpc_call(a, [("authorization", basic(user, pw))])[0] == grpc.StatusCode.OK
    refusals = [post(a, {"Authorization": basic(u, p)})
                for u, p in (("alice", "bob-pw"), ("mallory", "alice-pw"), ("alice", ""))]
    refusals.append(post(a, {}))
    assert {r[0] for r in refusals} == {401}
    assert len({r[2] for r in refusals}) == 1
    assert 'Basic realm=' in refusals[0][1].get("WWW-Authenticate", "")
    assert grpc_call(a, [("authorization", basic("mallory", "x"))])[0] == \
        grpc.StatusCode.UNAUTHENTICATED
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                          "bob:bob-pw", f"http://127.0.0.1:{a.p['prom']}/metrics"],
                         capture_output=True, text=True, timeout=10).stdout
    assert out == "200"
    assert scrape(a, {"Authorization": basic("bob", "nope")})[0] == 401
    assert a.stop() == 0


def test_unsupported_hash_and_missing_extension_are_errors(tmp_path):
    from conftest import run_cli
    hp = tmp_path / "htpasswd"
    hp.write_text("dave:$apr1$abcdefgh$0123456789abcdefghijkl\n")
    http, grpc_port, prom, tel = (free_port() for _ in range(4))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config(http, grpc_port, prom, tel,
                          f"  basicauth: {{ htpasswd: {{ file: {hp} }} }}", "basicauth"))
    r = subprocess.run([__import__("conftest").BIN, "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "line 1: hash format not supported" in r.stderr
    cfg.write_text(config(http, grpc_port, prom, tel, "  file_storage: { directory: /tmp }",
                          "file_storage"))
    r = subprocess.run([__import__("conftest").BIN, "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "does not authenticate requests" in r.stderr
