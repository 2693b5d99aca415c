"""DogStatsD and OTLP in, Datadog out: npm `hot-shots` (the DogStatsD
client tests/interop/js/dogstatsd.mjs drives) and OTLP/HTTP into one
agent whose `datadog` exporter sends to the loopback intake of
tests/dd_intake.py. Counter deltas and gauge values must be what the
clients sent; the intake decodes with its own readers."""
import os
import sys
import time

from conftest import free_port, post_json
from test_js_sdk import js_dir, run_js  # noqa: F401  (the npm install fixture)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dd_intake import Intake  # noqa: E402
from dsd_util import DsdAgent  # noqa: E402

KEY = "interop-key"

CONFIG = """\
receivers:
  dogstatsd:
    endpoint: 127.0.0.1:{dsd}
    aggregation_interval: 1h
  otlp:
    protocols:
      http: {{ endpoint: "127.0.0.1:{http}" }}
exporters:
  datadog:
    api: {{ key: {key} }}
    hostname: fallback-host
    metrics: {{ endpoint: "http://127.0.0.1:{intake}" }}
    logs: {{ endpoint: "http://127.0.0.1:{intake}" }}
service:
  pipelines:
    metrics: {{ receivers: [dogstatsd, otlp], exporters: [datadog] }}
  telemetry: {{ metrics: {{ endpoint: "127.0.0.1:{tel}" }} }}
"""


def values(series, name, *tags):
    return [s["points"][0]["value"] for s in series
            if s["metric"] == name and all(t in s["tags"] for t in tags)]


def test_hot_shots_and_otlp_to_datadog(js_dir, agent_factory, tmp_path):  # noqa: F811
    ports = dict(dsd=free_port(), http=free_port(), tel=free_port(), intake=free_port())
    intake = Intake(ports["intake"], api_key=KEY).start()
    try:
        a = agent_factory(CONFIG.format(key=KEY, **ports)).start(
            wait_url=f"http://127.0.0.1:{ports['tel']}/readyz")
        # DsdAgent's counter readers, on this agent's telemetry port
        probe = DsdAgent.__new__(DsdAgent)
        probe.tel = ports["tel"]
        rc, report, err = run_js(js_dir, "dogstatsd.mjs", port=ports["dsd"])
        assert report is not None and rc == 0 and report["ok"], f"{report}\n{err}"
        probe.wait_counter("otelite_dogstatsd_metrics_total", 14, receiver="dogstatsd")

        # OTLP: a cumulative counter from an app that started before the
        # agent (its first point is only a base), sent three times
        t0 = time.time_ns()
        start = t0 - 600 * 10**9
        for i, v in enumerate([100, 160, 175]):
            doc = {"resourceMetrics": [{"resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "billing"}}]},
                "scopeMetrics": [{"metrics": [
                    {"name": "otlp.jobs", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                                  "dataPoints": [{"asInt": str(v),
                                                                  "startTimeUnixNano": str(start),
                                                                  "timeUnixNano": str(t0 + i * 10**10)}]}},
                    {"name": "otlp.load", "gauge": {"dataPoints": [
                        {"asDouble": 0.5 + i, "timeUnixNano": str(t0 + i * 10**10)}]}}]}]}]}
            status, body = post_json(ports["http"], "/v1/metrics", doc)
            assert status == 200, body
        intake.wait("otlp deltas", lambda: len(values(intake.series(), "otlp.jobs")) >= 2)
        assert a.stop() == 0  # flushes the DogStatsD interval
    finally:
        intake.stop()
    s = intake.series()
    assert intake.problems == []
    # hot-shots: increment 1, increment 2 at rate 0.5, decrement 1
    assert sum(values(s, "hs.requests", "route:/a")) == 1 + 2 / 0.5
    assert sum(values(s, "hs.requests", "route:/b")) == -1
    assert all(x["type"] == 1 for x in s if x["metric"] == "hs.requests")
    assert values(s, "hs.temperature", "room:lab") == [21.5]
    temp = next(x for x in s if x["metric"] == "hs.temperature")
    assert temp["type"] == 3 and "env:interop" in temp["tags"]
    assert temp["resources"] == [{"name": "fallback-host", "type": "host"}]
    assert values(s, "hs.visitors") == [2]
    sk = [x for x in intake.sketches() if x["metric"] == "hs.payload"]
    assert len(sk) == 1 and sk[0]["dogsketches"][0]["cnt"] == 2
    assert sk[0]["host"] == "web-9"  # the DogStatsD host tag, over the fallback
    assert sk[0]["dogsketches"][0]["sum"] == 16
    # OTLP: 160 - 100, 175 - 160
    assert sorted(values(s, "otlp.jobs", "service:billing")) == [15, 60]
    assert sorted(values(s, "otlp.load")) == [0.5, 1.5, 2.5]
