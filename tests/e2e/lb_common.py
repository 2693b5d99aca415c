"""What the loadbalancing end-to-end tests share: gateway otelites (OTLP/gRPC
receiver → file exporter), the agent's config, the load generator, and the
reading of what each gateway wrote (trace ids and loadgen.seq per span,
with Python's own JSON decoder)."""
import json
import os
import subprocess
import time

from conftest import ROOT, free_port, http_get, wait_for

LOADGEN = os.environ.get("OTELITE_LOADGEN", os.path.join(ROOT, "build", "otelite-loadgen"))


class Gateway:
    def __init__(self, agent_factory, tmp_path, name):
        self.port = free_port()
        self.tel = free_port()
        self.path = tmp_path / f"{name}.jsonl"
        self.name = name
        self.agent = agent_factory(f"""
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: 127.0.0.1:{self.port} }}
exporters:
  file: {{ path: {self.path} }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [file] }}
    metrics: {{ receivers: [otlp], exporters: [file] }}
    logs: {{ receivers: [otlp], exporters: [file] }}
  telemetry: {{ metrics: {{ endpoint: 127.0.0.1:{self.tel} }} }}
""", name=name)

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.agent.start(wait_url=f"http://127.0.0.1:{self.tel}/readyz")
        return self

    def spans(self):
        """[(trace_id, seq)] of every span written so far."""
        out = []
        try:
            text = self.path.read_text()
        except OSError:
            return out
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # a line being written
            for rs in doc.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        seq = None
                        for a in s.get("attributes", []):
                            if a["key"] == "loadgen.seq":
                                seq = int(a["value"]["intValue"])
                        out.append((s["traceId"], seq))
        return out


def agent_config(recv_port, tel_port, resolver, extra=""):
    return f"""
receivers:
  otlp:
    protocols:
      http: {{ endpoint: 127.0.0.1:{recv_port} }}
exporters:
  loadbalancing:
    protocol:
      otlp:
        tls: {{ insecure: true }}
        timeout: 2s
    resolver:
{resolver}
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 500ms, max_elapsed_time: 0 }}
{extra}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [loadbalancing] }}
  telemetry: {{ metrics: {{ endpoint: 127.0.0.1:{tel_port} }} }}
"""


def loadgen(port, count, run_id, rate=0, duration="30s", seed=1):
    """Sends count spans; returns the report (items_sent = acknowledged)."""
    out = f"/tmp/lb-loadgen-{run_id}-{os.getpid()}.json"
    args = [LOADGEN, "traces", "--otlp-http", f"http://127.0.0.1:{port}", "--count", str(count),
            "--duration", duration, "--run-id", run_id, "--json-out", out, "--quiet",
            "--seed", str(seed)]
    if rate:
        args += ["--rate", str(rate)]
    subprocess.run(args, check=True, timeout=120)
    with open(out) as f:
        rep = json.load(f)
    os.unlink(out)
    return rep


def metric(tel_port, name, **labels):
    """Sum of a metric's samples whose labels include labels."""
    st, body = http_get(f"http://127.0.0.1:{tel_port}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, val = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(val)
    return total


def wait_total(gateways, n, timeout=30.0):
    def done():
        spans = [s for g in gateways for s in g.spans()]
        return spans if len(spans) >= n else None
    try:
        return wait_for(done, timeout, f"{n} spans at the gateways")
    finally:
        pass


def settle(gateways, quiet=1.0, timeout=30.0):
    """Waits until no gateway file grew for `quiet` seconds."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        sizes = tuple(g.path.stat().st_size if g.path.exists() else 0 for g in gateways)
        if sizes != last:
            last, since = sizes, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.1)
