"""The loadbalancing exporter with real otelites: three gateways on loopback
(OTLP/gRPC receiver → file), one agent in front with loadbalancing. Every
span the agent acknowledged must arrive exactly once, all spans of a trace
at one gateway; when the static list changes by reload a gateway's removal
moves about a third of the traces and loses none."""
import collections
import signal
import time

from conftest import free_port, wait_for
from lb_common import (Gateway, agent_config, check_exactly_once, loadgen, metric, settle,
                       trace_homes, wait_total)


def test_exactly_once_and_trace_affinity(agent_factory, tmp_path):
    gws = [Gateway(agent_factory, tmp_path, f"gw{i}").start() for i in range(3)]
    rp, tp = free_port(), free_port()
    hosts = "      static: { hostnames: [%s] }" % ", ".join(g.endpoint for g in gws)
    agent = agent_factory(agent_config(rp, tp, hosts)).start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    rep = loadgen(rp, 30000, "once")
    assert rep["items_refused"] == 0
    acked = rep["items_sent"]
    assert acked == 30000
    wait_total(gws, acked)
    settle(gws)
    per = check_exactly_once(gws, acked)
    homes = trace_homes(per)
    split = [t for t, h in homes.items() if len(h) > 1]
    assert not split, f"{len(split)} traces were split over gateways"
    # every gateway got a fair share (the ring spreads traces)
    for name, spans in per.items():
        assert 0.2 * acked < len(spans) < 0.47 * acked, (name, len(spans))
    assert metric(tp, "otelite_loadbalancing_backends") == 3
    for g in gws:
        assert metric(tp, "otelite_loadbalancing_backend_sent_items_total",
                      backend=g.endpoint) == len(per[g.name])
    assert agent.stop() == 0


def test_static_reload_moves_a_third(agent_factory, tmp_path):
    gws = [Gateway(agent_factory, tmp_path, f"gw{i}").start() for i in range(3)]
    rp, tp = free_port(), free_port()
    three = "      static: { hostnames: [%s] }" % ", ".join(g.endpoint for g in gws)
    two = "      static: { hostnames: [%s] }" % ", ".join(g.endpoint for g in gws[:2])
    agent = agent_factory(agent_config(rp, tp, three))
    agent.start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    # The same seed gives the same trace ids: send once over three, then
    # again over two, and compare where each trace went.
    r1 = loadgen(rp, 10000, "before", seed=7)
    wait_total(gws, r1["items_sent"])
    settle(gws)
    before = trace_homes({g.name: g.spans() for g in gws})
    for g in gws:
        g.path.write_text("")
    agent.config.write_text(agent_config(rp, tp, two))
    agent.signal(signal.SIGHUP)
    agent.wait_log("config reloaded")
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 2, 10, "two backends")
    r2 = loadgen(rp, 10000, "after", seed=7)
    acked = r2["items_sent"]
    wait_total(gws[:2], acked)
    settle(gws)
    per = check_exactly_once(gws, acked)
    assert not per["gw2"], "the removed gateway still got spans"
    after = trace_homes(per)
    assert not [t for t, h in after.items() if len(h) > 1]
    common = set(before) & set(after)
    assert len(common) > 1000, "the seed did not repeat the trace ids"
    moved = [t for t in common if before[t] != after[t]]
    share = len(moved) / len(common)
    # exactly the traces of the removed gateway move (about 1/3), no others
    assert all(before[t] == {"gw2"} for t in moved)
    assert all(before[t] != {"gw2"} for t in common if t not in moved)
    assert 0.2 < share < 0.45, share
    assert agent.stop() == 0


def count_files(paths, tmp_path, run_id):
    """The loadgen's own tally of what the gateways wrote, all files as one."""
    import json
    import subprocess
    from lb_common import LOADGEN
    allp = tmp_path / f"all-{run_id}.jsonl"
    with open(allp, "w") as out:
        for p in paths:
            if p.exists():
                out.write(p.read_text())
    r = subprocess.run([LOADGEN, "count", str(allp), "--run", run_id, "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_metrics_and_logs_exactly_once(agent_factory, tmp_path):
    """Metrics by stream and logs by trace id go through the same split."""
    import subprocess
    from lb_common import LOADGEN
    gws = [Gateway(agent_factory, tmp_path, f"gw{i}").start() for i in range(3)]
    rp, tp = free_port(), free_port()
    hosts = "      static: { hostnames: [%s] }" % ", ".join(g.endpoint for g in gws)
    cfg = agent_config(rp, tp, hosts, extra="    routing_key: streamID").replace(
        "    traces: { receivers: [otlp], exporters: [loadbalancing] }",
        "    metrics: { receivers: [otlp], exporters: [loadbalancing] }\n"
        "    logs: { receivers: [otlp], exporters: [loadbalancing] }")
    agent = agent_factory(cfg).start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    for sig, n in (("metrics", 5000), ("logs", 5000)):
        run = f"lb-{sig}"
        out = tmp_path / f"{sig}.json"
        subprocess.run([LOADGEN, sig, "--otlp-http", f"http://127.0.0.1:{rp}", "--count", str(n),
                        "--run-id", run, "--json-out", str(out), "--quiet"], check=True, timeout=60)
        import json
        rep = json.loads(out.read_text())
        assert rep["items_sent"] == n and rep["items_refused"] == 0

        def arrived():
            c = count_files([g.path for g in gws], tmp_path, run)
            return c if c["distinct"] >= n else None
        c = wait_for(arrived, 20, f"{n} {sig} at the gateways")
        settle(gws)
        c = count_files([g.path for g in gws], tmp_path, run)
        assert c["distinct"] == n and c["duplicates"] == 0 and c["missing"] == 0, c
        # spread, not all on one gateway
        per = [count_files([g.path], tmp_path, run)["distinct"] for g in gws]
        assert sum(1 for x in per if x) >= 2, per
    assert agent.stop() == 0


def test_static_gateway_killed_and_back(agent_factory, tmp_path):
    """A gateway of the static list killed under load: its share waits in
    its queue and is retried until the gateway is back; nothing the agent
    acknowledged is lost, other traces keep flowing meanwhile."""
    import threading
    gws = [Gateway(agent_factory, tmp_path, f"gw{i}").start() for i in range(3)]
    rp, tp = free_port(), free_port()
    hosts = "      static: { hostnames: [%s] }" % ", ".join(g.endpoint for g in gws)
    agent = agent_factory(agent_config(rp, tp, hosts)).start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    result = {}
    t = threading.Thread(target=lambda: result.update(
        rep=loadgen(rp, 30000, "killed", rate=10000, duration="60s")))
    t.start()
    time.sleep(1.0)
    victim = gws[2]
    victim.agent.proc.kill()
    victim.agent.proc.wait()
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backend_retries_total",
                            backend=victim.endpoint) > 0, 10, "retries of the dead gateway")
    others = sum(len(g.spans()) for g in gws[:2])
    time.sleep(1.0)
    assert sum(len(g.spans()) for g in gws[:2]) > others, "the live gateways stalled"
    # the same address comes back (a new process, a new file)
    back = Gateway(agent_factory, tmp_path, "gw2-back", port=victim.port).start()
    t.join(120)
    rep = result["rep"]
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backend_queued_items") == 0, 30,
             "empty queues")
    settle(gws + [back])
    seqs = collections.Counter(s for g in gws + [back] for _, s in g.spans())
    assert len(seqs) >= rep["items_sent"], f"{rep['items_sent']} acknowledged, {len(seqs)} arrived"
    assert back.spans(), "the restarted gateway got its share"
    assert metric(tp, "otelite_loadbalancing_backend_failed_items_total") == 0
    # the restarted gateway is the same address: traces stayed where they were
    per = {g.name: g.spans() for g in gws[:2]}
    per["gw2"] = victim.spans() + back.spans()
    assert not [t for t, h in trace_homes(per).items() if len(h) > 1]
    assert agent.stop() == 0
