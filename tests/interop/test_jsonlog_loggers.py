"""The jsonlog receiver on what real npm loggers write: pino, bunyan and
winston (versions pinned in jslog/package-lock.json, installed once into a
cache folder as the JS SDK interop tests do) log to files; the agent tails
them with no mapping configured and the records must carry each logger's
time, severity, message and fields, read back from the file exporter's
OTLP JSON."""
import datetime
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, free_port, wait_for

JS_SRC = pathlib.Path(__file__).resolve().parent / "jslog"
NODE_DIR = pathlib.Path(os.environ.get("OTELITE_JSLOG_NODE_DIR",
                                       os.path.join(ROOT, "build", "interop-jslog")))


@pytest.fixture(scope="session")
def jslog_dir():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the logger interop tests")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((JS_SRC / name).read_bytes())
    stamp, stamp_file = h.hexdigest(), NODE_DIR / ".installed"
    with open(NODE_DIR.parent / (NODE_DIR.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp_file.exists() and stamp_file.read_text() == stamp
                and (NODE_DIR / "node_modules").is_dir()):
            stamp_file.unlink(missing_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS_SRC / name, NODE_DIR / name)
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                                "--loglevel=error"], cwd=NODE_DIR, capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                pytest.fail(f"npm ci failed in {NODE_DIR}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
            stamp_file.write_text(stamp)
        for src in JS_SRC.glob("*.mjs"):
            shutil.copy(src, NODE_DIR / src.name)
    return NODE_DIR


def records(path):
    out = []
    try:
        text = open(path).read()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                out.extend(sl.get("logRecords", []))
    return out


def attrs(r):
    return {a["key"]: a["value"] for a in r.get("attributes", [])}


def test_pino_bunyan_winston_map_without_config(agent_factory, tmp_path, jslog_dir):
    logs = tmp_path / "logs"
    logs.mkdir()
    before = time.time_ns()
    r = subprocess.run(["node", str(jslog_dir / "loggers.mjs"), str(logs)], cwd=jslog_dir,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    after = time.time_ns()
    out = tmp_path / "out.jsonl"
    a = agent_factory(f"""
receivers:
  jsonlog: {{ include: ["{logs}/*.log"], start_at: beginning }}
exporters:
  file: {{ path: {out} }}
service:
  telemetry: {{ metrics: {{ endpoint: 127.0.0.1:{free_port()} }} }}
  pipelines:
    logs: {{ receivers: [jsonlog], exporters: [file] }}
""")
    a.start()
    recs = wait_for(lambda: (lambda x: x if len(x) >= 12 else None)(records(out)), 10, "12 records")
    assert a.stop() == 0
    by = {}
    for rec in recs:
        by[(attrs(rec)["log.file.name"]["stringValue"], int(attrs(rec)["n"]["intValue"]))] = rec

    def check(key, body, sev, sev_text):
        rec = by[key]
        assert rec["body"]["stringValue"] == body
        assert rec["severityNumber"] == sev, (key, rec)
        assert rec["severityText"] == sev_text
        t = int(rec["timeUnixNano"])
        # the logger's own time (ms precision), not the time read
        assert before - 1_000_000 <= t <= after, (key, t, before, after)
        assert t % 1_000_000 == 0
        return rec

    # pino: numeric levels, epoch ms time, msg
    rec = check(("pino.log", 1), "pino info", 9, "30")
    at = attrs(rec)
    assert int(at["pid"]["intValue"]) > 0
    assert "hostname" in at
    user = {kv["key"]: kv["value"] for kv in at["user"]["kvlistValue"]["values"]}
    assert user["id"] == {"intValue": "7"}
    assert [v["stringValue"] for v in user["roles"]["arrayValue"]["values"]] == ["a", "b"]
    rec = check(("pino.log", 2), "pino warn", 13, "40")
    assert rec["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    check(("pino.log", 3), "pino error", 17, "50")
    check(("pino.log", 4), "pino debug", 5, "20")

    # bunyan: numeric levels, ISO time, msg, name/hostname/pid/v as attributes
    rec = check(("bunyan.log", 1), "bunyan info", 9, "30")
    assert attrs(rec)["name"]["stringValue"] == "app"
    assert "v" in attrs(rec) and "hostname" in attrs(rec)
    check(("bunyan.log", 2), "bunyan warn", 13, "40")
    check(("bunyan.log", 3), "bunyan error", 17, "50")
    check(("bunyan.log", 4), "bunyan fatal", 21, "60")

    # winston json: level words, message, ISO timestamp
    rec = check(("winston.log", 1), "winston info", 9, "info")
    assert {kv["key"] for kv in attrs(rec)["user"]["kvlistValue"]["values"]} == {"id"}
    check(("winston.log", 2), "winston warn", 13, "warn")
    check(("winston.log", 3), "winston error", 17, "error")
    check(("winston.log", 4), "winston debug", 5, "debug")
