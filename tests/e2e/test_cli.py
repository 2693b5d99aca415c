"""The otelite command line and process: validate, components, print-config,
run with self-telemetry, reload on SIGHUP, graceful stop on SIGTERM."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT, free_port, http_get, post_json, run_cli, wait_lines

GOOD = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  file:
    path: {out}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
    logs:
      receivers: [otlp]
      exporters: [file]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def good_config(tmp_path, out="out.jsonl"):
    ports = dict(http=free_port(), tel=free_port())
    return GOOD.format(out=tmp_path / out, **ports), ports


SPAN_JSON = {
    "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{
            "scope": {"name": "e2e"},
            "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "name": "GET /cart",
                "kind": 2,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [{"key": "http.status_code", "value": {"intValue": "200"}}],
            }],
        }],
    }]
}


# ---- validate -----------------------------------------------------------

def test_validate_good_config_exits_0(tmp_path):
    text, _ = good_config(tmp_path)
    (tmp_path / "c.yaml").write_text(text)
    r = run_cli("validate", "--config", str(tmp_path / "c.yaml"))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_default_config_is_valid():
    r = run_cli("validate", "--config", os.path.join(ROOT, "conf", "agent.yaml"))
    assert r.returncode == 0, r.stderr


def test_validate_reports_every_error_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
receivers:
  otlp:
    protocols:
      http:
        endpont: 127.0.0.1:4318
exporters:
  file:
    path: /tmp/x
    rotation:
      max_megabytes: fast
service:
  pipelines:
    traces:
      receivers: [otlp, nosuch]
      exporters: [file]
""")
    r = run_cli("validate", "--config", str(bad))
    assert r.returncode == 1
    err = r.stderr
    assert f"{bad}:5:9: error: receivers.otlp.protocols.http" in err, err
    assert 'did you mean "endpoint"' in err
    assert f"{bad}:10:22: error: exporters.file.rotation.max_megabytes" in err, err
    assert f"{bad}:14:25: error: service.pipelines.traces.receivers[1]" in err, err
    assert 'receiver "nosuch" is not defined' in err
    assert "3 errors" in err


def test_validate_json_format(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("exporters:\n  file:\n    path: x\nservice:\n  pipelines:\n    traces:\n"
                   "      receivers: [otlp]\n      exporters: [file]\n")
    r = run_cli("validate", "--format", "json", "--config", str(bad))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["valid"] is False
    e = [x for x in doc["errors"] if x["severity"] == "error"]
    assert e and e[0]["line"] == 7 and e[0]["path"] == "service.pipelines.traces.receivers[0]"


def test_validate_signal_mismatch_and_unused_warning(tmp_path):
    c = tmp_path / "c.yaml"
    c.write_text("""\
receivers:
  otlp:
    protocols: {http: {endpoint: "127.0.0.1:%d"}}
exporters:
  file: {path: x}
  file/unused: {path: y}
service:
  pipelines:
    metrics/x:
      receivers: [otlp]
      exporters: [file]
    bogus:
      receivers: [otlp]
      exporters: [file]
""" % free_port())
    r = run_cli("validate", "--config", str(c))
    assert r.returncode == 1
    assert 'exporter "file/unused" is defined but not used' in r.stderr
    assert f"{c}:12:5: error: service.pipelines.bogus" in r.stderr, r.stderr


def test_validate_duplicate_endpoint(tmp_path):
    p = free_port()
    c = tmp_path / "c.yaml"
    c.write_text(f"""\
receivers:
  otlp:
    protocols: {{http: {{endpoint: "127.0.0.1:{p}"}}}}
exporters:
  file: {{path: x}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
  telemetry: {{metrics: {{endpoint: "127.0.0.1:{p}"}}}}
""")
    r = run_cli("validate", "--config", str(c))
    assert r.returncode == 1
    assert f"endpoint 127.0.0.1:{p} is also used by service.telemetry.metrics" in r.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("validate").returncode == 2
    assert run_cli("validate", "--bogus").returncode == 2
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("--version").returncode == 0
    r = run_cli("--help")
    assert r.returncode == 0 and "validate" in r.stdout


def test_components_lists_types_and_keys():
    r = run_cli("components", "--verbose")
    assert r.returncode == 0
    assert "file" in r.stdout and "traces metrics logs" in r.stdout
    assert "max_megabytes" in r.stdout


def test_print_config_merges_expands_and_redacts(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("exporters:\n  file:\n    path: ${env:OUT_PATH:-/tmp/default}\n"
                 "    api_key: ${env:MY_SECRET}\n")
    b.write_text("exporters:\n  file:\n    append: true\n")
    env = dict(os.environ, MY_SECRET="hunter2")
    r = subprocess.run([os.environ.get("OTELITE_BIN", os.path.join(ROOT, "build", "otelite")),
                        "print-config", "--config", str(a), "--config", str(b),
                        "--set", "exporters.file.rotation.max_backups=3"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "/tmp/default" in r.stdout
    assert "hunter2" not in r.stdout and "REDACTED" in r.stdout
    assert "append: true" in r.stdout
    assert "max_backups: 3" in r.stdout


# ---- run ----------------------------------------------------------------

def test_run_serves_telemetry_and_stops_cleanly(tmp_path, agent_factory):
    text, ports = good_config(tmp_path)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    st, body = http_get(f"http://127.0.0.1:{ports['tel']}/readyz")
    assert st == 200
    st, body = http_get(f"http://127.0.0.1:{ports['tel']}/metrics")
    assert st == 200
    text_metrics = body.decode()
    assert "otelite_build_info" in text_metrics
    assert "process_resident_memory_bytes" in text_metrics
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr
    assert a.stop() == 0, a.log()
    assert "stopped" in a.log()


def test_traces_reach_the_file_exporter(tmp_path, agent_factory):
    text, ports = good_config(tmp_path)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    st, _ = post_json(ports["http"], "/v1/traces", SPAN_JSON)
    assert st == 200
    lines = wait_lines(tmp_path / "out.jsonl", 1)
    got = json.loads(lines[0])
    span = got["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert span["name"] == "GET /cart"
    st, body = http_get(f"http://127.0.0.1:{ports['tel']}/metrics")
    assert 'otelite_exporter_sent_spans_total{exporter="file"} 1' in body.decode()
    assert a.stop() == 0, a.log()


def test_sighup_reload_good_and_bad(tmp_path, agent_factory):
    text, ports = good_config(tmp_path)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    assert post_json(ports["http"], "/v1/traces", SPAN_JSON)[0] == 200
    wait_lines(tmp_path / "out.jsonl", 1)

    # A good new config: only the exporter changes, so the receiver is kept.
    a.config.write_text(text.replace("out.jsonl", "out2.jsonl"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    assert "receivers_kept=1" in a.log()
    assert post_json(ports["http"], "/v1/traces", SPAN_JSON)[0] == 200
    wait_lines(tmp_path / "out2.jsonl", 1)

    # A bad one is refused and the running pipelines keep working.
    a.config.write_text("receivers: [this is not right\n")
    a.signal(signal.SIGHUP)
    a.wait_log("reload refused")
    assert post_json(ports["http"], "/v1/traces", SPAN_JSON)[0] == 200
    wait_lines(tmp_path / "out2.jsonl", 2)
    assert a.stop() == 0, a.log()


def test_run_refuses_invalid_config(tmp_path, agent_factory):
    a = agent_factory("exporters: {file: {path: x}}\n")
    a.start()
    assert a.proc.wait(10) == 1
    assert "invalid" in a.log()


def test_file_exporter_rotates_by_size(tmp_path, agent_factory):
    text, ports = good_config(tmp_path)
    text = text.replace("    path: ", "    rotation: {max_megabytes: 1, max_backups: 2}\n    path: ")
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    big = json.loads(json.dumps(SPAN_JSON))
    span = big["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": "pad", "value": {"stringValue": "x" * 200_000}})
    for _ in range(16):  # ~3.2 MB in 1 MB files: the oldest rotate away
        assert post_json(ports["http"], "/v1/traces", big)[0] == 200
    assert a.stop() == 0, a.log()
    out = tmp_path / "out.jsonl"
    sizes = [os.path.getsize(p) for p in (out, f"{out}.1", f"{out}.2")]
    assert all(0 < s <= 1 << 20 for s in sizes), sizes
    assert not os.path.exists(f"{out}.3")
    for p in (out, f"{out}.1", f"{out}.2"):
        for line in open(p):
            assert json.loads(line)["resourceSpans"]  # whole lines only


def test_reload_keeps_receiver_connections_open(tmp_path, agent_factory):
    """An unchanged receiver is not restarted by SIGHUP: a keep-alive
    connection opened before the reload still works after it."""
    import http.client
    text, ports = good_config(tmp_path)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    conn = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=5)
    body = json.dumps(SPAN_JSON)
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/json"})
    assert conn.getresponse().read() is not None
    a.config.write_text(text.replace("out.jsonl", "after.jsonl"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    wait_lines(tmp_path / "after.jsonl", 1)
    conn.close()
    assert a.stop() == 0, a.log()


def test_components_doc_is_current():
    """docs/components.md is generated from the key tables (`make docs`)."""
    r = run_cli("components", "--format", "markdown")
    assert r.returncode == 0
    with open(os.path.join(ROOT, "docs", "components.md")) as f:
        assert f.read() == r.stdout, "docs/components.md is stale: run `make docs`"


def test_readme_and_conf_examples_validate(tmp_path):
    """Every full config shown in the README and shipped in conf/ is valid."""
    import re
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "service:" in b]
    assert blocks
    files = []
    for i, b in enumerate(blocks):
        p = tmp_path / f"readme{i}.yaml"
        p.write_text(b)
        files.append(str(p))
    files += [os.path.join(ROOT, "conf", f) for f in sorted(os.listdir(os.path.join(ROOT, "conf")))
              if f.endswith(".yaml")]
    for f in files:
        r = run_cli("validate", "--config", f)
        assert r.returncode == 0, f"{f}:\n{r.stderr}"


def test_run_with_a_busy_port_fails_cleanly(tmp_path, agent_factory):
    """A receiver that cannot bind stops the start; nothing is left running
    and (under ASan) nothing leaks: the exit code is exactly 1."""
    import socket
    text, ports = good_config(tmp_path)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports["http"]))
    blocker.listen()
    a = agent_factory(text)
    a.start()
    try:
        assert a.proc.wait(20) == 1, a.log()
    finally:
        blocker.close()
    assert "Address already in use" in a.log()


def test_slow_body_cannot_hold_the_inflight_budget(tmp_path, agent_factory):
    """A client trickling its body is cut off after read_timeout, and the
    bytes it reserved go back to the budget for everyone else."""
    import socket
    text, ports = good_config(tmp_path)
    text = text.replace("        endpoint: 127.0.0.1:%d\n" % ports["http"],
                        "        endpoint: 127.0.0.1:%d\n        read_timeout: 2s\n" % ports["http"])
    text = text.replace("  otlp:\n    protocols:", "  otlp:\n    max_inflight_bytes: 128KiB\n    protocols:")
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
    slow = socket.create_connection(("127.0.0.1", ports["http"]))
    slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n{")
    time.sleep(0.3)
    big = json.loads(json.dumps(SPAN_JSON))
    big["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "x" * 60000
    assert post_json(ports["http"], "/v1/traces", big)[0] == 503  # budget held by the slow one
    slow.settimeout(0.5)
    closed = False
    t0 = time.time()
    while time.time() - t0 < 8 and not closed:
        try:
            slow.sendall(b" ")
            if slow.recv(1) == b"":
                closed = True
        except socket.timeout:
            pass
        except OSError:
            closed = True
    assert closed, "slow request was never cut off"
    assert time.time() - t0 < 6
    # The reservation is given back before the socket is shut down (not
    # when the server reaps it later): the very next request fits.
    assert post_json(ports["http"], "/v1/traces", big)[0] == 200, \
        "the slow request's reservation was not back when its connection ended"
    slow.close()
    assert a.stop() == 0, a.log()
