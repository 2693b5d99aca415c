"""`auth: { authenticator: ID }` on the agent's own telemetry endpoint
(service.telemetry.metrics): /metrics asks the extension, /healthz and
/readyz never do (a kubelet probe sends no credentials), a refusal reads
the same whatever was wrong, and a reload that replaces the extension is
followed while the probes keep answering."""
import base64
import hashlib
import signal
import threading
import time
import urllib.error
import urllib.request

from conftest import free_port, run_cli


def config(tel, ext, auth_id, ext_list=None):
    ext_list = auth_id if ext_list is None else ext_list
    return f"""
extensions:
{ext}
receivers:
  otlp:
    protocols:
      http: {{ endpoint: 127.0.0.1:{free_port()} }}
exporters:
  file: {{ path: /dev/null }}
service:
  extensions: [{ext_list}]
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
      auth: {{ authenticator: {auth_id} }}
"""


def get(tel, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{tel}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def start(agent_factory, ext, auth_id):
    tel = free_port()
    a = agent_factory(config(tel, ext, auth_id))
    a.start(f"http://127.0.0.1:{tel}/readyz")
    a.tel = tel
    return a


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_bearer_token_guards_metrics_not_probes(agent_factory):
    a = start(agent_factory, "  bearertokenauth: { token: tel-t0ken }", "bearertokenauth")
    st, _, body = get(a.tel, "/metrics", {"Authorization": "Bearer tel-t0ken"})
    assert st == 200 and b"otelite_" in body
    refusals = [get(a.tel, "/metrics", h) for h in (
        {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic tel-t0ken"},
        {"Authorization": "Bearer tel-t0ke"}, {"Authorization": "Bearer tel-t0kenX"})]
    assert {r[0] for r in refusals} == {401}
    assert len({r[2] for r in refusals}) == 1, "the answer says which part was wrong"
    assert b"otelite_" not in refusals[0][2]
    # HEAD is a GET without a body: refused the same way
    req = urllib.request.Request(f"http://127.0.0.1:{a.tel}/metrics", method="HEAD")
    try:
        urllib.request.urlopen(req, timeout=5)
        assert False, "HEAD /metrics without a token was served"
    except urllib.error.HTTPError as e:
        assert e.code == 401
    for path in ("/healthz", "/readyz"):
        assert get(a.tel, path)[0] == 200, path
    assert a.stop() == 0


def test_basic_auth_on_metrics(agent_factory, tmp_path):
    sha1 = "{SHA}" + base64.b64encode(hashlib.sha1(b"scrape-pw").digest()).decode()
    hp = tmp_path / "htpasswd"
    hp.write_text(f"prom:{sha1}\n")
    a = start(agent_factory, f"  basicauth: {{ htpasswd: {{ file: {hp} }} }}", "basicauth")
    assert get(a.tel, "/metrics", {"Authorization": basic("prom", "scrape-pw")})[0] == 200
    refusals = [get(a.tel, "/metrics", {"Authorization": basic(u, p)})
                for u, p in (("prom", "nope"), ("mallory", "scrape-pw"), ("prom", ""))]
    refusals.append(get(a.tel, "/metrics"))
    assert {r[0] for r in refusals} == {401}
    assert len({r[2] for r in refusals}) == 1
    assert all(r[1].get("WWW-Authenticate", "").startswith("Basic realm=") for r in refusals)
    assert get(a.tel, "/healthz")[0] == 200
    assert a.stop() == 0


def test_reload_follows_the_new_extension_and_probes_keep_answering(agent_factory):
    a = start(agent_factory, "  bearertokenauth: { token: before-reload }", "bearertokenauth")
    assert get(a.tel, "/metrics", {"Authorization": "Bearer before-reload"})[0] == 200
    probes, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            try:
                probes.append(get(a.tel, "/healthz")[0])
            except OSError as e:
                probes.append(repr(e))
            time.sleep(0.01)

    t = threading.Thread(target=probe)
    t.start()
    try:
        a.config.write_text(config(a.tel, "  bearertokenauth: { token: after-reload }",
                                   "bearertokenauth"))
        a.signal(signal.SIGHUP)
        a.wait_log("config reloaded")
        deadline = time.time() + 5
        while time.time() < deadline and \
                get(a.tel, "/metrics", {"Authorization": "Bearer after-reload"})[0] != 200:
            time.sleep(0.05)
        assert get(a.tel, "/metrics", {"Authorization": "Bearer after-reload"})[0] == 200
        assert get(a.tel, "/metrics", {"Authorization": "Bearer before-reload"})[0] == 401
        # an unchanged reload keeps the same token working
        a.signal(signal.SIGHUP)
        a.wait_log("config reloaded", count=2)
        assert get(a.tel, "/metrics", {"Authorization": "Bearer after-reload"})[0] == 200
    finally:
        stop.set()
        t.join()
    assert probes and set(probes) == {200}, set(probes)
    assert "/metrics refuses every scrape" not in a.log()
    assert a.stop() == 0


def test_authenticator_must_be_a_started_authenticator(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config(free_port(), "  bearertokenauth: { token: x }", "bearertokenauth",
                          ext_list=""))
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode != 0
    assert "service.telemetry.metrics.auth.authenticator" in r.stdout + r.stderr
    assert "not in service.extensions" in r.stdout + r.stderr
    cfg.write_text(config(free_port(), "  file_storage: { directory: /tmp }", "file_storage"))
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode != 0
    assert "does not authenticate requests" in r.stdout + r.stderr
