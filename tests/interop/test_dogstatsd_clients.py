"""The `dogstatsd` receiver against real StatsD clients: npm `hot-shots`
(DogStatsD dialect: tags, sample rates, sets, distributions, events,
service checks) and Debian's `python3-statsd` (the etsy dialect: relative
gauges, pipelines, decrements). Values are checked at the `file` exporter.

Both clients drop sampled calls at random; the tests make them send every
call (Math.random and random.random return 0) so that the receiver's 1/rate
scaling is checked exactly. The aggregation interval is long and the
agent's own line counter is waited on before it is stopped, so everything
sent is in the one flush made at shutdown: no sleeping, no split
intervals."""
import os
import pathlib
import random
import shutil
import subprocess

import pytest

from conftest import wait_for
from dsd_util import DsdAgent, number, points, records, total
from test_js_sdk import js_dir, run_js  # noqa: F401  (the npm install fixture)


def by_name(ps, name):
    got = [p for p in ps if p["name"] == name]
    assert got, f"no point for {name}: {sorted({p['name'] for p in ps})}"
    return got


@pytest.fixture(scope="session")
def uds_js_dir(js_dir):  # noqa: F811
    """js_dir with hot-shots' optional native add-on for Unix datagram
    sockets (unix-dgram) built. npm installs with --ignore-scripts, so it is
    compiled here, offline, against the headers that come with the
    machine's Node.js."""
    built = js_dir / "node_modules" / "unix-dgram" / "build" / "Release" / "unix_dgram.node"
    if not built.exists():
        node = shutil.which("node")
        prefix = pathlib.Path(os.path.realpath(node)).parent.parent
        if not (prefix / "include" / "node" / "node.h").exists():
            pytest.fail(f"no Node.js headers under {prefix}/include/node to build unix-dgram")
        r = subprocess.run(["npm", "rebuild", "unix-dgram", f"--nodedir={prefix}",
                            "--loglevel=error"], cwd=js_dir, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0 and built.exists(), f"unix-dgram build failed:\n{r.stdout}\n{r.stderr}"
    return js_dir


@pytest.mark.parametrize("transport", ["udp", "unixgram"])
def test_hot_shots(request, agent_factory, tmp_path, transport):
    js_dir = request.getfixturevalue("js_dir" if transport == "udp" else "uds_js_dir")  # noqa: F811
    a = DsdAgent(agent_factory, tmp_path, transport=transport, interval="1h")
    where = {"port": a.port} if transport == "udp" else {"path": a.socket_path}
    rc, report, err = run_js(js_dir, "dogstatsd.mjs", **where)
    assert report is not None and rc == 0 and report["ok"], f"{report}\n{err}"
    assert report["sent"] == 16
    a.wait_counter("otelite_dogstatsd_metrics_total", 14, receiver="dogstatsd")
    a.wait_counter("otelite_dogstatsd_events_total", 1, receiver="dogstatsd")
    a.wait_counter("otelite_dogstatsd_service_checks_total", 1, receiver="dogstatsd")
    assert a.stop() == 0
    ps = points(a.metrics)
    for p in ps:  # globalTags env:interop is the resource's environment
        assert p["resource"].get("deployment.environment.name") == "interop", p
    assert total(ps, "hs.requests", route="/a") == 1 + 2 / 0.5
    assert total(ps, "hs.requests", route="/b") == -1
    (t,) = by_name(ps, "hs.temperature")
    assert t["kind"] == "gauge" and number(t) == 21.5 and t["attributes"] == {"room": "lab"}
    (v,) = by_name(ps, "hs.visitors")
    assert number(v) == 2
    (db,) = by_name(ps, "hs.db.query")
    assert db["kind"] == "summary" and db["attributes"] == {"db": "main"}
    assert int(db["point"]["count"]) == 4  # 10, 20 and 30 weighing 2
    assert float(db["point"]["sum"]) == 10 + 20 + 60
    q = {float(x.get("quantile", 0)): float(x.get("value", 0))
         for x in db["point"]["quantileValues"]}
    assert q[0.0] == 10 and q[0.5] == 20 and q[1.0] == 30
    (h,) = by_name(ps, "hs.body.size")
    assert int(h["point"]["count"]) == 2 and float(h["point"]["sum"]) == 400
    (d,) = by_name(ps, "hs.payload")
    assert d["kind"] == "exponentialHistogram" and d["resource"]["host.name"] == "web-9"
    assert int(d["point"]["count"]) == 2 and float(d["point"]["sum"]) == 16
    assert float(d["point"]["min"]) == 7 and float(d["point"]["max"]) == 9

    recs = records(a.logs)
    (ev,) = [r for r in recs if "dogstatsd.event.title" in r["attributes"]]
    # hot-shots puts its prefix in front of event titles too
    assert ev["body"] == "hs.deploy finished\nbuild 42\nall green"
    assert ev["severity_text"] == "success" and ev["severity"] == 9
    assert ev["resource"]["host.name"] == "ci-1"
    assert ev["attributes"]["dogstatsd.event.priority"] == "low"
    assert ev["attributes"]["dogstatsd.event.aggregation_key"] == "deploy-42"
    assert ev["attributes"]["dogstatsd.event.source_type"] == "jenkins"
    assert ev["attributes"]["team"] == "core"
    (sc,) = [r for r in recs if "dogstatsd.service_check.name" in r["attributes"]]
    assert sc["attributes"]["dogstatsd.service_check.name"] == "hs.api.up"
    assert sc["attributes"]["dogstatsd.service_check.status"] == 1
    assert sc["severity_text"] == "WARNING" and sc["severity"] == 13
    assert sc["body"] == "slow responses" and sc["resource"]["host.name"] == "api-1"
    assert sc["attributes"]["role"] == "api"


def test_hot_shots_buffered(js_dir, agent_factory, tmp_path):  # noqa: F811
    """hot-shots with a send buffer packs many lines per datagram."""
    a = DsdAgent(agent_factory, tmp_path, interval="1h")
    rc, report, err = run_js(js_dir, "dogstatsd.mjs", port=a.port, buffer=1400)
    assert report is not None and rc == 0 and report["ok"], f"{report}\n{err}"
    a.wait_counter("otelite_dogstatsd_metrics_total", 14, receiver="dogstatsd")
    packets = a.counter("otelite_dogstatsd_packets_total", receiver="dogstatsd")
    assert packets < 16, packets
    assert a.stop() == 0
    assert total(points(a.metrics), "hs.requests", route="/a") == 5


def test_python_statsd_etsy_dialect(agent_factory, tmp_path, monkeypatch):
    statsd = pytest.importorskip("statsd")  # Debian python3-statsd (Makefile DEB_PACKAGES)
    monkeypatch.setattr(random, "random", lambda: 0.0)
    a = DsdAgent(agent_factory, tmp_path, interval="1h", extra="relative_gauges: true")
    c = statsd.StatsClient("127.0.0.1", a.port, prefix="py")
    c.incr("jobs")
    c.incr("jobs", 3)
    c.incr("jobs", 2, rate=0.25)
    c.decr("jobs", 1)
    c.gauge("pool", 10)
    c.gauge("pool", -3, delta=True)
    c.gauge("pool", 5, delta=True)
    c.gauge("level", -7)  # etsy: sent as 0 then -7, which sets -7
    c.set("ips", "10.0.0.1")
    c.set("ips", "10.0.0.2")
    c.timing("render", 12)
    c.timing("render", 8)
    with c.pipeline() as pipe:  # one datagram, lines joined by \n
        pipe.incr("piped", 2)
        pipe.timing("render", 4)
        pipe.gauge("pool", 1, delta=True)
    a.wait_counter("otelite_dogstatsd_metrics_total", 15, receiver="dogstatsd")
    assert a.stop() == 0
    ps = points(a.metrics)
    assert total(ps, "py.jobs") == 1 + 3 + 2 / 0.25 - 1
    (pool,) = by_name(ps, "py.pool")
    assert number(pool) == 10 - 3 + 5 + 1
    (level,) = by_name(ps, "py.level")
    assert number(level) == -7
    (ips,) = by_name(ps, "py.ips")
    assert number(ips) == 2
    (render,) = by_name(ps, "py.render")
    assert int(render["point"]["count"]) == 3 and float(render["point"]["sum"]) == 24
    q = {float(x.get("quantile", 0)): float(x.get("value", 0))
         for x in render["point"]["quantileValues"]}
    assert q[0.0] == 4 and q[0.5] == 8 and q[1.0] == 12
    assert total(ps, "py.piped") == 2
