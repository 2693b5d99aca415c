"""Helpers shared by the DogStatsD end-to-end and interop tests: an agent
with a `dogstatsd` receiver writing metrics and logs to `file` exporters,
and readers of what those files hold (OTLP JSON lines), so every test
checks values where otelite hands them on."""
import json
import pathlib
import re
import socket

from conftest import free_port, http_get, read_json_lines, wait_for

CONFIG = """\
receivers:
  dogstatsd:
{recv}
exporters:
  file/metrics:
    path: {metrics}
  file/logs:
    path: {logs}
service:
  pipelines:
    metrics:
      receivers: [dogstatsd]
      exporters: [file/metrics]
    logs:
      receivers: [dogstatsd]
      exporters: [file/logs]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


class DsdAgent:
    def __init__(self, agent_factory, tmp_path, transport="udp", interval="200ms", extra=""):
        self.port, self.tel = free_port(), free_port()
        self.metrics, self.logs = tmp_path / "metrics.jsonl", tmp_path / "logs.jsonl"
        self.socket_path = str(tmp_path / "dsd.socket")
        recv = [f"    aggregation_interval: {interval}"]
        if transport == "udp":
            recv.append(f"    endpoint: 127.0.0.1:{self.port}")
        else:
            recv += [f"    transport: {transport}", f"    socket_path: {self.socket_path}"]
        recv += ["    " + l for l in extra.splitlines() if l.strip()]
        text = CONFIG.format(recv="\n".join(recv), metrics=self.metrics, logs=self.logs,
                             tel=self.tel)
        self.agent = agent_factory(text).start(wait_url=f"http://127.0.0.1:{self.tel}/readyz")
        self.transport = transport

    def send(self, payload):
        data = payload.encode() if isinstance(payload, str) else payload
        if self.transport == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(data, ("127.0.0.1", self.port))
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(data, self.socket_path)
        s.close()

    def self_metrics(self):
        status, body = http_get(f"http://127.0.0.1:{self.tel}/metrics")
        assert status == 200
        return body.decode()

    def counter(self, name, **labels):
        """The value of one self-telemetry sample (0 when absent)."""
        text = self.self_metrics()
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_counter(self, name, at_least, timeout=10.0, **labels):
        return wait_for(lambda: self.counter(name, **labels) >= at_least or None, timeout,
                        f"{name}{labels} >= {at_least}")

    def stop(self):
        return self.agent.stop()


def anyvalue(v):
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    return None


def attrs(kvs):
    return {kv["key"]: anyvalue(kv.get("value", {})) for kv in kvs or []}


def points(path):
    """Every metric point in the file: dicts with name, kind, resource,
    attributes and the point itself."""
    out = []
    for line in read_json_lines(path):
        for rm in line.get("resourceMetrics", []):
            res = attrs(rm.get("resource", {}).get("attributes"))
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    for kind in ("sum", "gauge", "summary", "histogram", "exponentialHistogram"):
                        if kind in m:
                            for p in m[kind].get("dataPoints", []):
                                out.append({"name": m["name"], "kind": kind, "resource": res,
                                            "attributes": attrs(p.get("attributes")),
                                            "metric": m[kind], "point": p})
    return out


def records(path):
    out = []
    for line in read_json_lines(path):
        for rl in line.get("resourceLogs", []):
            res = attrs(rl.get("resource", {}).get("attributes"))
            for sl in rl.get("scopeLogs", []):
                for r in sl.get("logRecords", []):
                    out.append({"resource": res, "attributes": attrs(r.get("attributes")),
                                "body": anyvalue(r.get("body", {})),
                                "severity": r.get("severityNumber"),
                                "severity_text": r.get("severityText"), "record": r})
    return out


def number(p):
    pt = p["point"]
    if "asDouble" in pt:
        return float(pt["asDouble"])
    return int(pt.get("asInt", 0))


def wait_points(path, names, timeout=10.0):
    """Waits until every name has a point; returns all points."""
    def have():
        ps = points(path)
        seen = {p["name"] for p in ps}
        return ps if set(names) <= seen else None
    return wait_for(have, timeout, f"points for {sorted(names)} in {path}")


def total(ps, name, **attr_eq):
    """Sum of the number points of a name (delta sums add up across flushes)."""
    return sum(number(p) for p in ps if p["name"] == name
               and all(p["attributes"].get(k) == v for k, v in attr_eq.items()))
