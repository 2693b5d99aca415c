"""The `dogstatsd` receiver in the real binary: DogStatsD datagrams from
Python sockets (UDP and Unix datagram) aggregated into OTLP metrics at the
`file` exporter with exact values for every type; events and service
checks as log records; malformed and hostile lines counted by reason while
the rest of the datagram and later datagrams still arrive; what is held is
flushed at shutdown."""
import os
import stat
import time

import pytest

from conftest import read_json_lines, wait_for
from dsd_util import DsdAgent, number, points, records, total, wait_points


def one(ps, name):
    got = [p for p in ps if p["name"] == name]
    assert len(got) == 1, got
    return got[0]


def test_every_type_exact(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path)
    # One datagram: one reader callback, so one interval holds it all.
    a.send("\n".join([
        "page.views:1|c|#route:/home",
        "page.views:2:3|c|#route:/home",
        "page.views:1|c|@0.5|#route:/home",
        "queue.depth:10|g",
        "queue.depth:-4|g",
        "users:alice|s",
        "users:bob|s",
        "users:alice|s",
        "latency:1:2:3:4:5:6:7:8:9:10|ms",
        "size:4|h|@0.25",
        "payload:1:2:4|d",
        "tagged:1|c|#host:web-1,env:prod,service:shop,version:2.0,zone:eu,canary|c:abc123",
    ]))
    ps = wait_points(a.metrics, ["page.views", "queue.depth", "users", "latency", "size",
                                 "payload", "tagged"])
    c = one(ps, "page.views")
    assert c["kind"] == "sum" and c["metric"]["isMonotonic"] is True
    assert c["metric"]["aggregationTemporality"] == 1  # delta
    assert number(c) == 8.0 and c["attributes"] == {"route": "/home"}
    assert int(c["point"]["startTimeUnixNano"]) < int(c["point"]["timeUnixNano"])
    g = one(ps, "queue.depth")
    assert g["kind"] == "gauge" and number(g) == -4.0
    s = one(ps, "users")
    assert s["kind"] == "gauge" and number(s) == 2
    t = one(ps, "latency")
    assert t["kind"] == "summary"
    assert int(t["point"]["count"]) == 10 and float(t["point"]["sum"]) == 55.0
    q = {float(x.get("quantile", 0)): float(x.get("value", 0))
         for x in t["point"]["quantileValues"]}
    assert q == {0.0: 1.0, 0.5: 5.0, 0.9: 9.0, 0.95: 10.0, 0.99: 10.0, 1.0: 10.0}
    h = one(ps, "size")
    assert int(h["point"]["count"]) == 4 and float(h["point"]["sum"]) == 16.0
    d = one(ps, "payload")
    assert d["kind"] == "exponentialHistogram"
    assert int(d["point"]["count"]) == 3 and float(d["point"]["sum"]) == 7.0
    assert d["point"]["scale"] == 6
    pos = d["point"]["positive"]
    assert pos.get("offset", 0) == -1 and len(pos["bucketCounts"]) == 129
    tg = one(ps, "tagged")
    assert tg["resource"] == {"host.name": "web-1", "deployment.environment.name": "prod",
                              "service.name": "shop", "service.version": "2.0",
                              "container.id": "abc123"}
    assert tg["attributes"] == {"zone": "eu", "canary": ""}
    assert a.counter("otelite_dogstatsd_metrics_total", receiver="dogstatsd") == 12
    assert a.stop() == 0


def test_counters_add_up_over_intervals_and_series_go_idle(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path)
    for i in range(20):
        a.send(f"ticks:1|c|#i:{i % 2}")
        time.sleep(0.02)
    wait_for(lambda: total(points(a.metrics), "ticks") == 20 or None, 10, "20 ticks")
    ps = points(a.metrics)
    assert total(ps, "ticks", i="0") == 10 and total(ps, "ticks", i="1") == 10
    # delta points of one series do not overlap: each starts where the last ended
    pts = sorted((int(p["point"]["startTimeUnixNano"]), int(p["point"]["timeUnixNano"]))
                 for p in ps if p["name"] == "ticks" and p["attributes"]["i"] == "0")
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        assert s1 >= e0
    # after 2 intervals idle the series are dropped from memory
    wait_for(lambda: a.counter("otelite_dogstatsd_series", receiver="dogstatsd") == 0 or None,
             10, "series expired")
    assert a.stop() == 0


def test_cumulative_counters(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path, extra="counter_temporality: cumulative")
    a.send("req:2|c")
    wait_points(a.metrics, ["req"])
    a.send("req:3|c")
    ps = wait_for(lambda: [p for p in points(a.metrics) if p["name"] == "req"
                           and number(p) == 5.0] or None, 10, "cumulative 5")
    p = ps[0]
    assert p["metric"]["aggregationTemporality"] == 2
    first = [q for q in points(a.metrics) if q["name"] == "req"][0]
    assert p["point"]["startTimeUnixNano"] == first["point"]["startTimeUnixNano"]
    assert a.stop() == 0


def test_malformed_lines_counted_and_agent_keeps_serving(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path)
    a.send("\n".join([
        "good.a:1|c",
        "no_pipe_at_all",            # no value
        "no.type:1",                 # no type
        ":",                          # empty name
        "x:|c",                       # no value
        "x:abc|c",                    # bad value
        "x:1|q",                      # bad type
        "x:1|c|@2",                   # bad rate
        "x:1|c|#" + "t" * 2000,       # a tag too long
        "bad\xff".encode("latin-1").decode("latin-1"),
        "_e{99,99}:short|text",       # event lengths past the end
        "good.b:2|c|x:unknown",       # an unknown field is skipped, the line kept
    ]).encode("latin-1") + b"\nnul\x00:1|c\ngood.c:3|c")
    a.send(os.urandom(65000))
    a.send("x:" + ":".join(["1"] * 10000) + "|c")  # 10,000 packed values, over the cap
    a.send("after.garbage:1|c")
    ps = wait_points(a.metrics, ["good.a", "good.b", "good.c", "after.garbage"])
    assert total(ps, "good.a") == 1 and total(ps, "good.b") == 2 and total(ps, "good.c") == 3
    for reason in ("no_type", "empty_name", "no_value", "bad_value", "bad_type", "bad_rate",
                   "too_long", "bad_event", "nul_byte", "unknown_field"):
        a.wait_counter("otelite_dogstatsd_errors_total", 1, receiver="dogstatsd", reason=reason)
    assert a.counter("otelite_dogstatsd_errors_total", receiver="dogstatsd",
                     reason="bad_utf8") >= 1
    assert a.counter("otelite_dogstatsd_packets_total", receiver="dogstatsd") == 4
    assert a.stop() == 0


def test_events_and_service_checks_are_log_records(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path)
    title, text = "deploy", "v2 rolled\\nout"
    a.send(f"_e{{{len(title)},{len(text)}}}:{title}|{text}|d:1700000000|h:node-7|p:low|"
           "t:error|k:agg1|s:jenkins|#team:core,env:prod")
    a.send("_sc|db.up|2|d:1700000001|h:db-1|#role:primary|m:replica lag 30s")
    a.send("_sc|cache.up|0")
    got = wait_for(lambda: (lambda r: r if len(r) >= 3 else None)(records(a.logs)), 10,
                   "3 records")
    ev = [r for r in got if "dogstatsd.event.title" in r["attributes"]][0]
    assert ev["body"] == "deploy\nv2 rolled\nout"
    assert ev["severity"] == 17 and ev["severity_text"] == "error"
    assert ev["record"]["timeUnixNano"] == str(1700000000 * 10**9)
    assert ev["resource"] == {"host.name": "node-7", "deployment.environment.name": "prod"}
    assert ev["attributes"] == {
        "team": "core", "dogstatsd.event.title": "deploy", "dogstatsd.event.alert_type": "error",
        "dogstatsd.event.priority": "low", "dogstatsd.event.aggregation_key": "agg1",
        "dogstatsd.event.source_type": "jenkins"}
    sc = [r for r in got if r["attributes"].get("dogstatsd.service_check.name") == "db.up"][0]
    assert sc["body"] == "replica lag 30s"
    assert sc["severity"] == 17 and sc["severity_text"] == "CRITICAL"
    assert sc["resource"] == {"host.name": "db-1"}
    assert sc["attributes"]["dogstatsd.service_check.status"] == 2
    assert sc["attributes"]["role"] == "primary"
    ok = [r for r in got if r["attributes"].get("dogstatsd.service_check.name") == "cache.up"][0]
    assert ok["severity"] == 9 and ok["severity_text"] == "OK"
    assert a.counter("otelite_dogstatsd_events_total", receiver="dogstatsd") == 1
    assert a.counter("otelite_dogstatsd_service_checks_total", receiver="dogstatsd") == 2
    assert a.stop() == 0


def test_unixgram(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path, transport="unixgram")
    mode = stat.S_IMODE(os.stat(a.socket_path).st_mode)
    assert mode == 0o666, oct(mode)
    a.send("ux:4|c|#k:v\nug:1.5|g")
    ps = wait_points(a.metrics, ["ux", "ug"])
    assert total(ps, "ux", k="v") == 4 and number(one(ps, "ug")) == 1.5
    assert a.stop() == 0
    assert not os.path.exists(a.socket_path)


def test_unix_stream_framed(agent_factory, tmp_path):
    import socket
    import struct
    a = DsdAgent(agent_factory, tmp_path, transport="unix")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.socket_path)
    for msg in (b"us:1|c", b"us:2|c\nus2:7|g"):
        s.sendall(struct.pack("<I", len(msg)) + msg)
    ps = wait_points(a.metrics, ["us", "us2"])
    wait_for(lambda: total(points(a.metrics), "us") == 3 or None, 10, "us == 3")
    s.close()
    assert a.stop() == 0


def test_shutdown_flushes_what_is_held(agent_factory, tmp_path):
    a = DsdAgent(agent_factory, tmp_path, interval="1h")
    a.send("held:5|c")
    a.wait_counter("otelite_dogstatsd_metrics_total", 1, receiver="dogstatsd")
    assert points(a.metrics) == []
    assert a.stop() == 0
    assert total(points(a.metrics), "held") == 5


def test_statsd_alias_and_config_errors(agent_factory, tmp_path):
    import subprocess
    from conftest import BIN
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""\
receivers:
  statsd:
    transport: unixgram
    timer_histogram_mapping: histogram
    explicit_bounds: [5, 1]
    socket_permissions: "rw"
exporters:
  file: {path: /dev/null}
service:
  pipelines:
    metrics: {receivers: [statsd], exporters: [file]}
""")
    r = subprocess.run([BIN, "validate", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "socket_path" in out and "explicit_bounds" in out and "socket_permissions" in out


def test_two_receivers_on_one_udp_endpoint_refused(tmp_path):
    import subprocess
    from conftest import BIN
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("""\
receivers:
  dogstatsd: {endpoint: "127.0.0.1:8125"}
  statsd/etsy: {endpoint: "127.0.0.1:8125"}
exporters:
  file: {path: /dev/null}
service:
  pipelines:
    metrics: {receivers: [dogstatsd, statsd/etsy], exporters: [file]}
""")
    r = subprocess.run([BIN, "validate", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "endpoint 127.0.0.1:8125 is also used by" in r.stdout + r.stderr
