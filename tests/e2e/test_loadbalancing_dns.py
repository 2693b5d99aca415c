"""The loadbalancing exporter's dns resolver against a DNS server the test
runs on a loopback port: three gateways on 127.0.0.1-3 with one port; when
the name stops listing one, about a third of the traces move and no span
is lost; a gateway killed under load has its share retried and then, once
DNS drops it, re-routed, with nothing acknowledged lost."""
import time

import pytest

from conftest import free_port, wait_for
from lb_common import (DnsServer, Gateway, agent_config, check_exactly_once, loadgen, metric,
                       settle, trace_homes, wait_total)


@pytest.fixture
def dns():
    d = DnsServer("gateways.otelite.test")
    yield d
    d.close()


def dns_resolver(d, port):
    return (f"      dns: {{ hostname: gateways.otelite.test, port: {port}, interval: 200ms, "
            f"timeout: 500ms, nameserver: 127.0.0.1:{d.port} }}")


def gateways(agent_factory, tmp_path, n=3):
    port = free_port()
    return [Gateway(agent_factory, tmp_path, f"gw{i}", host=f"127.0.0.{i + 1}", port=port).start()
            for i in range(n)]


def test_dns_removal_moves_a_third(agent_factory, tmp_path, dns):
    gws = gateways(agent_factory, tmp_path)
    dns.set([g.host for g in gws])
    rp, tp = free_port(), free_port()
    agent = agent_factory(agent_config(rp, tp, dns_resolver(dns, gws[0].port)))
    agent.start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 3, 10, "three backends")
    r1 = loadgen(rp, 10000, "before", seed=11)
    wait_total(gws, r1["items_sent"])
    settle(gws)
    before = trace_homes({g.name: g.spans() for g in gws})
    assert len({n for h in before.values() for n in h}) == 3
    for g in gws:
        g.path.write_text("")
    dns.set([g.host for g in gws[:2]])
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 2, 10, "two backends")
    r2 = loadgen(rp, 10000, "after", seed=11)
    acked = r2["items_sent"]
    wait_total(gws[:2], acked)
    settle(gws)
    per = check_exactly_once(gws, acked)
    assert not per["gw2"]
    after = trace_homes(per)
    common = set(before) & set(after)
    assert len(common) > 1000
    moved = [t for t in common if before[t] != after[t]]
    assert all(before[t] == {"gw2"} for t in moved)
    assert 0.2 < len(moved) / len(common) < 0.45
    # and back: the name lists three again
    dns.set([g.host for g in gws])
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 3, 10, "three backends again")
    assert metric(tp, "otelite_loadbalancing_ring_changes_total") >= 3
    assert agent.stop() == 0


def test_gateway_killed_under_load(agent_factory, tmp_path, dns):
    gws = gateways(agent_factory, tmp_path)
    dns.set([g.host for g in gws])
    rp, tp = free_port(), free_port()
    agent = agent_factory(agent_config(rp, tp, dns_resolver(dns, gws[0].port)))
    agent.start(wait_url=f"http://127.0.0.1:{tp}/readyz")
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 3, 10, "three backends")
    import threading
    result = {}
    t = threading.Thread(target=lambda: result.update(
        rep=loadgen(rp, 60000, "kill", rate=15000, duration="60s")))
    t.start()
    time.sleep(1.0)
    victim = gws[2]
    victim.agent.proc.kill()  # SIGKILL, mid-stream
    victim.agent.proc.wait()
    # the agent keeps retrying the dead gateway's share ...
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backend_retries_total",
                            backend=victim.endpoint) > 0, 10, "retries of the dead gateway")
    time.sleep(0.5)
    # ... until DNS stops listing it: then its queue goes to the others
    dns.set([g.host for g in gws[:2]])
    t.join(120)
    rep = result["rep"]
    acked = rep["items_sent"]
    assert acked > 0
    wait_for(lambda: metric(tp, "otelite_loadbalancing_backend_queued_items") == 0, 30, "empty queues")
    settle(gws)
    arrived = set(s for g in gws for _, s in g.spans())
    # every acknowledged span is at some gateway (the killed one's file
    # counts: it wrote what it answered OK to); a refused request arrives
    # nowhere, as its spans were admitted to no queue
    assert len(arrived) >= acked, f"{acked} acknowledged, {len(arrived)} arrived"
    assert metric(tp, "otelite_loadbalancing_rerouted_items_total") > 0
    assert metric(tp, "otelite_loadbalancing_backend_failed_items_total") == 0
    assert agent.stop() == 0
