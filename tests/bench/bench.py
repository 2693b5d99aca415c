#!/usr/bin/env python3
"""bench.py: otelite's benchmark runner (`make bench`, `make bench-icount`).

Runs fixed scenarios against the real agent on loopback, the agent pinned to
core 0 and otelite-loadgen to core 1, and reports per scenario: items/s, the
agent's CPU seconds per million items (utime+stime deltas from /proc), its
peak RSS (VmHWM), items lost (what the generator had accepted minus what the
last exporter delivered, from the agent's /metrics counters, or from
`otelite-loadgen count` over the exporter's file in smoke mode) and p99
request latency. A scenario whose components are not built (see `otelite
components`) is reported as "not available" instead of failing.

Modes: default (each scenario as fast as the agent takes it, BENCH_SECONDS
each), max (raise the offered rate until items are refused or lost; report
the last clean rate), smoke (BENCH_SMOKE=1: ~2 s per scenario at a low rate,
checks delivery only, no timing), icount (instruction counts of decode,
batch and encode under callgrind).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The project's targets (README, issue 6).
HEADLINE = {"cpu_s_per_m": 1.4, "items_per_s": 750_000, "rss_mib": 64, "idle_rss_mib": 4}
IDLE_PSS_MIB = 3  # what each of many agents on a node really pays


def log(*a):
    sys.stdout.flush()
    print(*a, file=sys.stderr, flush=True)


_handed_out = set()


def free_port():
    """Never the same port twice in a run: a just-closed ephemeral port can
    come back from the kernel, and two listeners must not collide."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def ncpu():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def pin(core):
    """taskset prefix for a core, or nothing on a one-core machine."""
    if shutil.which("taskset") and ncpu() >= 2:
        return ["taskset", "-c", str(core)]
    return []


# ---- /proc ----------------------------------------------------------------

def proc_cpu(pid):
    """utime+stime of a process (all its threads) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s():
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def proc_status(pid, key):
    """A kB field of /proc/PID/status, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return None


def proc_pss(pid):
    """Proportional set size in MiB (/proc/PID/smaps_rollup): each shared
    page counted as its share among the processes mapping it, so it falls
    as more agents (or other programs using the same libraries) run."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# ---- the agent --------------------------------------------------------------

def components(otelite):
    out = subprocess.run([otelite, "components"], capture_output=True, text=True, timeout=20).stdout
    have, section = set(), None
    for line in out.splitlines():
        if re.match(r"^[a-z]+:\s*$", line):
            section = line.strip()[:-1]
        elif section and line.startswith("  ") and line.strip():
            have.add((section, line.split()[0]))
    return have


class Agent:
    """One otelite process on a config, with its stderr in a log file."""

    def __init__(self, otelite, cfg_path, workdir, name, core, tel_port, extra=()):
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.tel_port = tel_port
        self.name = name
        self.logf = open(self.log_path, "w")
        cmd = pin(core) + [otelite, "run", "--config", cfg_path, *extra]
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.logf, cwd=ROOT)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def wait_ready(self, ports, timeout=15.0):
        """Until /readyz says so (or, without telemetry, the ports accept)."""
        end = time.time() + timeout
        while time.time() < end:
            if not self.alive():
                return False
            if self.tel_port:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.tel_port}/readyz", timeout=1) as r:
                        if r.status == 200 and all(port_open(p) for p in ports):
                            return True
                except Exception:
                    pass
            elif all(port_open(p) for p in ports):
                return True
            time.sleep(0.05)
        return False

    def metrics(self):
        # A sanitized agent on a loaded machine can take seconds to answer
        # one scrape; a reading lost to that would fail the row for nothing.
        for attempt in range(3):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.tel_port}/metrics",
                                            timeout=5) as r:
                    return r.read().decode()
            except Exception:
                if attempt < 2:
                    time.sleep(0.2)
        return None

    def counter(self, name, label_match=None):
        """Sum of a counter's samples (optionally those whose labels contain label_match)."""
        text = self.metrics()
        if text is None:
            return None
        total, seen = 0.0, False
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if not m or m.group(1) != name:
                continue
            if label_match and label_match not in (m.group(2) or ""):
                continue
            total += float(m.group(3))
            seen = True
        return int(total) if seen else 0

    def delivered(self):
        """Spans the file exporter wrote (None without telemetry)."""
        return self.counter("otelite_exporter_sent_spans_total", 'exporter="file')

    def stop(self, timeout=20):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def log_tail(self, n=8):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""


class Sink:
    """`otelite-loadgen sink`: a null OTLP/HTTP server that counts spans."""

    def __init__(self, loadgen, port, workdir, core, grpc=False, walk=True, signal_name="traces"):
        self.json = os.path.join(workdir, "sink.json")
        if os.path.exists(self.json):
            os.unlink(self.json)
        self.log_path = os.path.join(workdir, "sink.log")
        self.logf = open(self.log_path, "w")
        # Without walk (Jaeger bodies are not OTLP) it only answers OK and
        # counts requests; what arrived is then the exporter's sent counter.
        self.p = subprocess.Popen(pin(core) + [loadgen, "sink", "--grpc" if grpc else "--http", str(port)]
                                  + (["--walk", signal_name] if walk else [])
                                  + ["--json-out", self.json],
                                  stdout=self.logf, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def wait_ready(self, ports, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end and self.alive():
            if all(port_open(p) for p in ports):
                return True
            time.sleep(0.05)
        return False

    def delivered(self):
        try:
            with open(self.json) as f:
                return json.load(f)["items"]
        except (OSError, ValueError, KeyError):
            return 0

    def stop(self, timeout=10):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def log_tail(self, n=8):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""


class Sinks:
    """Several null sinks (the loadbalancing scenario's backends), each in
    its own folder, counted together."""

    def __init__(self, loadgen, ports, workdir, core, grpc=False):
        self.sinks = []
        for i, port in enumerate(ports):
            d = os.path.join(workdir, f"sink{i}")
            os.makedirs(d, exist_ok=True)
            self.sinks.append(Sink(loadgen, port, d, core, grpc=grpc))

    @property
    def pid(self):
        return self.sinks[0].pid

    def alive(self):
        return all(s.alive() for s in self.sinks)

    def wait_ready(self, ports, timeout=10.0):
        return all(s.wait_ready(ports, timeout) for s in self.sinks)

    def delivered(self):
        return sum(s.delivered() for s in self.sinks)

    def stop(self, timeout=10):
        rcs = [s.stop(timeout) for s in self.sinks]
        return next((rc for rc in rcs if rc not in (0, None)), rcs[0])

    def log_tail(self, n=8):
        return " | ".join(s.log_tail(n) for s in self.sinks)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- scenarios ----------------------------------------------------------------

BATCH = """  batch:
    send_batch_size: 8192
    timeout: 200ms
"""


def telemetry_yaml(port):
    return f"""  telemetry:
    metrics:
      endpoint: 127.0.0.1:{port}
    logs:
      level: warn
"""


def cfg_receiver(grpc_port=None, http_port=None):
    s = "receivers:\n  otlp:\n    protocols:\n"
    if grpc_port:
        s += f"      grpc:\n        endpoint: 127.0.0.1:{grpc_port}\n"
    if http_port:
        s += f"      http:\n        endpoint: 127.0.0.1:{http_port}\n"
    return s


def cfg_sink(out_path, signal_name, grpc_port, http_port, tel_port):
    return (cfg_receiver(grpc_port, http_port)
            + "processors:\n" + BATCH
            + f"exporters:\n  file:\n    path: {out_path}\n"
            + f"service:\n  pipelines:\n    {signal_name}:\n      receivers: [otlp]\n"
            + "      processors: [batch]\n      exporters: [file]\n"
            + telemetry_yaml(tel_port))


def cfg_forward_grpc(signal_name, http_port, down_port, tel_port):
    return (cfg_receiver(None, http_port)
            + "processors:\n" + BATCH
            + "exporters:\n  otlp:\n"
            + f"    endpoint: 127.0.0.1:{down_port}\n"
            + "    tls:\n      insecure: true\n    compression: none\n"
            + f"service:\n  pipelines:\n    {signal_name}:\n      receivers: [otlp]\n"
            + "      processors: [batch]\n      exporters: [otlp]\n"
            + telemetry_yaml(tel_port))


def cfg_forward_lb(http_port, down_ports, tel_port):
    hosts = ", ".join(f"127.0.0.1:{p}" for p in down_ports)
    return (cfg_receiver(None, http_port)
            + "processors:\n" + BATCH
            + "exporters:\n  loadbalancing:\n"
            + "    protocol:\n      otlp:\n        tls:\n          insecure: true\n"
            + "        compression: none\n"
            + f"    resolver:\n      static:\n        hostnames: [{hosts}]\n"
            + "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
            + "      processors: [batch]\n      exporters: [loadbalancing]\n"
            + telemetry_yaml(tel_port))


def cfg_forward_jaeger(protocol, http_port, down_port, tel_port):
    ep = (f"127.0.0.1:{down_port}\n    tls:\n      insecure: true\n" if protocol == "grpc"
          else f"http://127.0.0.1:{down_port}/api/traces\n")
    return (cfg_receiver(None, http_port)
            + "processors:\n" + BATCH
            + f"exporters:\n  jaeger:\n    protocol: {protocol}\n    endpoint: {ep}"
            + "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
            + "      processors: [batch]\n      exporters: [jaeger]\n"
            + telemetry_yaml(tel_port))


class JaegerSent:
    """Delivered spans of a jaeger scenario: the exporter's sent counter
    (what the sink answered OK to), as the sink cannot count Jaeger spans."""

    def __init__(self, agent):
        self.agent = agent

    def delivered(self):
        return self.agent.counter("otelite_exporter_sent_spans_total", 'exporter="jaeger"')


def cfg_forward(signal_name, http_port, down_port, tel_port):
    return (cfg_receiver(None, http_port)
            + "processors:\n" + BATCH
            + "exporters:\n  otlphttp:\n"
            + f"    endpoint: http://127.0.0.1:{down_port}\n"
            + "    encoding: proto\n    compression: none\n"
            + f"service:\n  pipelines:\n    {signal_name}:\n      receivers: [otlp]\n"
            + "      processors: [batch]\n      exporters: [otlphttp]\n"
            + telemetry_yaml(tel_port))


# Issue 19: what processors cost on the forward path, per signal. Each
# filter condition matches nothing the generator sends (so every item is
# delivered and the rows compare), attributes inserts one key, resource
# upserts one, and "chain" is what users put on every pipeline.
PROC_YAML = {
    "memory_limiter": "  memory_limiter:\n    check_interval: 1s\n    limit_mib: 400\n",
    "filter": {
        "traces": "  filter:\n    traces:\n      span: ['name == \"bench.never\"', "
                  "'attributes[\"http.route\"] == \"/bench/never\"']\n",
        "metrics": "  filter:\n    metrics:\n      metric: ['name == \"bench.never\"']\n",
        "logs": "  filter:\n    logs:\n      log_record: ['severity_text == \"TRACE\"', "
                "'attributes[\"http.route\"] == \"/bench/never\"']\n",
    },
    "attributes": "  attributes:\n    actions:\n      - {key: bench.pipeline, value: edge, action: insert}\n",
    "resource": "  resource:\n    attributes:\n      - {key: deployment.region, value: eu-west-1, action: upsert}\n",
}
PROC_CHAINS = {
    "pass": [],
    "filter": ["filter"],
    "attributes": ["attributes"],
    "resource": ["resource"],
    "chain": ["memory_limiter", "filter", "attributes", "resource"],
}


def cfg_forward_procs(signal_name, procs, http_port, down_port, tel_port):
    yaml = "processors:\n"
    for p in procs:
        v = PROC_YAML[p]
        yaml += v[signal_name] if isinstance(v, dict) else v
    yaml += BATCH
    return (cfg_receiver(None, http_port) + yaml
            + "exporters:\n  otlphttp:\n"
            + f"    endpoint: http://127.0.0.1:{down_port}\n"
            + "    encoding: proto\n    compression: none\n"
            + f"service:\n  pipelines:\n    {signal_name}:\n      receivers: [otlp]\n"
            + f"      processors: [{', '.join(procs + ['batch'])}]\n      exporters: [otlphttp]\n"
            + telemetry_yaml(tel_port))


def proc_scenarios():
    out = []
    for sig in ("traces", "metrics", "logs"):
        for k, procs in PROC_CHAINS.items():
            label = ", ".join(procs + ["batch"])
            out.append({"name": f"processors {sig}: otlp-http -> {label} -> otlphttp -> null sink",
                        "key": f"proc-{sig}-{k}", "signal": sig, "procs": procs,
                        "needs": [("receivers", "otlp"), ("processors", "batch"),
                                  ("exporters", "otlphttp")]
                                 + [("processors", p) for p in procs],
                        "target": "http", "forward": "sink"})
    return out


SCENARIOS = [
    {"name": "otlp-grpc traces -> batch -> file", "key": "grpc",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "file")],
     "target": "grpc"},
    {"name": "otlp-http protobuf traces -> batch -> file", "key": "http-proto",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "file")],
     "target": "http"},
    {"name": "otlp-http json traces -> batch -> file", "key": "http-json",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "file")],
     "target": "http", "json": True},
    # The headline: the measured agent forwards to a null sink, so nothing
    # downstream limits it (the sink shares core 1 with the generator).
    {"name": "forward: otlp-http -> batch -> otlphttp -> null sink", "key": "forward",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "otlphttp")],
     "target": "http", "forward": "sink", "headline": True},
    # What a browser or Node SDK sends (OTLP/HTTP JSON by default), forwarded
    # as protobuf: the JSON decode and the re-encode are the whole difference.
    {"name": "forward: otlp-http json -> batch -> otlphttp -> null sink", "key": "forward-json",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "otlphttp")],
     "target": "http", "json": True, "forward": "sink"},
    # The same through the otlp (gRPC) exporter into the sink's h2c twin.
    {"name": "forward: otlp-http -> batch -> otlp grpc -> null sink", "key": "forward-grpc",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "otlp")],
     "target": "http", "forward": "sink", "grpc_out": True},
    # Translation to Jaeger (issue 14's target: within 2x of the forward
    # path's CPU per span), api_v2 gRPC into the h2c sink and Thrift into
    # the HTTP sink; neither sink parses the body.
    {"name": "jaeger: otlp-http -> batch -> jaeger grpc -> null sink", "key": "jaeger-grpc",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "jaeger")],
     "target": "http", "forward": "sink", "grpc_out": True, "jaeger": "grpc"},
    {"name": "jaeger: otlp-http -> batch -> jaeger thrift_http -> null sink", "key": "jaeger-thrift",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "jaeger")],
     "target": "http", "forward": "sink", "jaeger": "thrift_http"},
    # Spread by trace id over three backends (issue 18's target: within 1.5x
    # of the forward path's CPU per span): the split of every request on
    # its bytes, three otlp gRPC exporters, three h2c null sinks on core 1.
    {"name": "loadbalancing: otlp-http -> batch -> loadbalancing (traceID) -> 3 otlp grpc null sinks",
     "key": "lb",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "loadbalancing")],
     "target": "http", "forward": "sink", "grpc_out": True, "lb": 3},
    # The same into a second otelite (receiver -> file /dev/null): shows the
    # two agents interoperate; the downstream's JSON encoding on core 1 caps it.
    {"name": "forward: otlp-http -> batch -> otlphttp -> otelite -> file", "key": "forward-otelite",
     "needs": [("receivers", "otlp"), ("processors", "batch"), ("exporters", "otlphttp"),
               ("exporters", "file")],
     "target": "http", "forward": "otelite"},
    # DogStatsD over UDP into the aggregator, 10k distinct series; the
    # loss is counted from the agent's own line counter (the kernel's drops
    # are reported beside it).
    # JSON log lines from a file (300 B each), plain and CRI-wrapped, read
    # by the jsonlog receiver into the otlp gRPC exporter (bench_jsonlog.py).
    {"name": "jsonlog: file of JSON lines -> batch -> otlp grpc -> null sink", "key": "jsonlog",
     "needs": [("receivers", "jsonlog"), ("processors", "batch"), ("exporters", "otlp")],
     "target": "jsonlog", "cri": False},
    {"name": "jsonlog: CRI-wrapped JSON lines -> batch -> otlp grpc -> null sink", "key": "jsonlog-cri",
     "needs": [("receivers", "jsonlog"), ("processors", "batch"), ("exporters", "otlp")],
     "target": "jsonlog", "cri": True},
    {"name": "dogstatsd udp, 50 metrics/datagram, 10k series -> file", "key": "dogstatsd-50",
     "needs": [("receivers", "dogstatsd"), ("exporters", "file")],
     "target": "dogstatsd", "per_datagram": 50},
    {"name": "dogstatsd udp, 1 metric/datagram, 10k series -> file", "key": "dogstatsd-1",
     "needs": [("receivers", "dogstatsd"), ("exporters", "file")],
     "target": "dogstatsd", "per_datagram": 1},
    # Memory per live series (bench_dsd_mem.py): 100k and 1M distinct
    # series into dogstatsd -> otlphttp -> null sink.
    {"name": "dogstatsd memory: 100k series -> otlphttp -> null sink", "key": "dogstatsd-mem-100k",
     "needs": [("receivers", "dogstatsd"), ("exporters", "otlphttp")],
     "target": "dsdmem", "series": 100000},
    {"name": "dogstatsd memory: 1M series -> otlphttp -> null sink", "key": "dogstatsd-mem-1m",
     "needs": [("receivers", "dogstatsd"), ("exporters", "otlphttp")],
     "target": "dsdmem", "series": 1000000},
]
SCENARIOS += proc_scenarios()


def cfg_dogstatsd(port, out_path, tel_port):
    return (f"receivers:\n  dogstatsd:\n    endpoint: 127.0.0.1:{port}\n"
            "    aggregation_interval: 1s\n    receive_buffer_bytes: 32MiB\n"
            f"exporters:\n  file:\n    path: {out_path}\n"
            "service:\n  pipelines:\n    metrics:\n      receivers: [dogstatsd]\n"
            "      exporters: [file]\n" + telemetry_yaml(tel_port))


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = args.build
        self.otelite = os.path.join(ROOT, self.build, "otelite")
        self.loadgen = os.path.join(ROOT, self.build, "otelite-loadgen")
        self.out = os.path.join(ROOT, self.build, "bench")
        os.makedirs(self.out, exist_ok=True)
        self.smoke = args.smoke
        self.seconds = args.seconds if args.seconds else (2.0 if self.smoke else 10.0)
        self.have = components(self.otelite)
        self.failures = []

    # -- the generator

    def run_loadgen(self, sc, port, rate, seconds, workdir, tag):
        jout = os.path.join(workdir, f"loadgen-{tag}.json")
        target = (["--otlp-grpc", f"127.0.0.1:{port}"] if sc["target"] == "grpc"
                  else ["--otlp-http", f"http://127.0.0.1:{port}"])
        if sc.get("json"):
            target.append("--json")
        conc = (["--connections", "2", "--streams", "8"] if sc["target"] == "grpc"
                else ["--connections", "8"])
        cmd = pin(1) + [self.loadgen, sc.get("signal", "traces"), *target, "--rate", str(int(rate)),
                        "--duration", f"{seconds}s", "--batch", "100", *conc,
                        "--json-out", jout, "--quiet", "--seed", "1"]
        errf = os.path.join(workdir, f"loadgen-{tag}.err")
        t0 = time.time()
        with open(errf, "w") as ef:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=ef)
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - t0
        with open(errf) as ef:
            err = ef.read()
        try:
            with open(jout) as f:
                res = json.load(f)
        except (OSError, ValueError):
            raise RuntimeError(f"otelite-loadgen gave no report: {err.strip()[:300]}")
        res["loadgen_cpu_s"] = ru.ru_utime + ru.ru_stime
        res["loadgen_wall_s"] = wall
        if not res.get("reachable", True):
            raise RuntimeError(f"otelite-loadgen: {err.strip()[:300]}")
        return res

    # -- one scenario

    def start_agents(self, sc, workdir, out_file):
        """Starts the agent (and the downstream one when forwarding).
        Returns (agent, downstream, port of the receiver the generator uses)."""
        grpc_port, http_port, tel = free_port(), free_port(), free_port()
        down = None
        if sc.get("lb"):
            ports = [free_port() for _ in range(sc["lb"])]
            down = Sinks(self.loadgen, ports, workdir, 1, grpc=True)
            if not down.wait_ready(ports):
                rc = down.stop()
                raise RuntimeError(f"sinks did not start (exit {rc}): {down.log_tail()}")
            cfg = cfg_forward_lb(http_port, ports, tel)
        elif sc.get("forward") == "sink":
            d_http = free_port()
            grpc_out = sc.get("grpc_out", False)
            down = Sink(self.loadgen, d_http, workdir, 1, grpc=grpc_out, walk=not sc.get("jaeger"),
                        signal_name=sc.get("signal", "traces"))
            if not down.wait_ready([d_http]):
                rc = down.stop()
                raise RuntimeError(f"sink did not start (exit {rc}): {down.log_tail()}")
            if sc.get("procs") is not None:
                cfg = cfg_forward_procs(sc["signal"], sc["procs"], http_port, d_http, tel)
            elif sc.get("jaeger"):
                cfg = cfg_forward_jaeger(sc["jaeger"], http_port, d_http, tel)
            else:
                cfg = (cfg_forward_grpc if grpc_out else cfg_forward)("traces", http_port, d_http, tel)
        elif sc.get("forward"):
            d_http, d_tel = free_port(), free_port()
            dcfg = os.path.join(workdir, "downstream.yaml")
            with open(dcfg, "w") as f:
                f.write(cfg_sink(out_file, "traces", None, d_http, d_tel))
            self.validate(dcfg)
            # The downstream shares core 1 with the generator: only the first
            # agent is measured, and it has core 0 to itself.
            down = Agent(self.otelite, dcfg, workdir, "downstream", 1, d_tel)
            if not down.wait_ready([d_http]):
                rc = down.stop()
                raise RuntimeError(f"downstream agent did not start (exit {rc}): {down.log_tail()}")
            cfg = cfg_forward("traces", http_port, d_http, tel)
        else:
            cfg = cfg_sink(out_file, "traces", grpc_port if sc["target"] == "grpc" else None,
                           http_port if sc["target"] == "http" else None, tel)
        path = os.path.join(workdir, "agent.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        self.validate(path)
        agent = Agent(self.otelite, path, workdir, "agent", 0, tel)
        port = grpc_port if sc["target"] == "grpc" else http_port
        if not agent.wait_ready([port]):
            rc = agent.stop()
            if down:
                down.stop()
            raise RuntimeError(f"agent did not start (exit {rc}): {agent.log_tail()}")
        return agent, down, port

    def validate(self, path):
        r = subprocess.run([self.otelite, "validate", "--config", path], capture_output=True,
                           text=True, timeout=20)
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["invalid config"])[0]
            raise NotAvailable(f"config rejected: {first}")

    def delivered(self, sink_agent):
        return sink_agent.delivered()

    def wait_drained(self, sink_agent, want, quiet_s=1.5, timeout=20.0):
        """Polls the last exporter's sent counter until it reaches want or stops moving."""
        end = time.time() + timeout
        last, last_change = None, time.time()
        while time.time() < end:
            got = self.delivered(sink_agent)
            if got is None:
                return None
            if got >= want:
                return got
            if got != last:
                last, last_change = got, time.time()
            elif time.time() - last_change > quiet_s:
                return got
            time.sleep(0.05)
        return last

    def measure(self, sc, agent, down, port, rate, seconds, workdir, tag):
        sink_agent = JaegerSent(agent) if sc.get("jaeger") else (down or agent)
        before = self.delivered(sink_agent) or 0
        d0 = proc_cpu(down.pid) if down else 0.0
        cpu0, t0, m0 = proc_cpu(agent.pid), time.time(), machine_busy_s()
        lg = self.run_loadgen(sc, port, rate, seconds, workdir, tag)
        sent = lg["items_sent"]
        got = self.wait_drained(sink_agent, before + sent)
        t1 = time.time()
        if not agent.alive():
            raise RuntimeError(f"agent exited during the run: {agent.log_tail()}")
        cpu1, m1 = proc_cpu(agent.pid), machine_busy_s()
        d1 = proc_cpu(down.pid) if down and down.alive() else d0
        # what the rest of the machine (other people's builds, fuzzers) took meanwhile
        others = max(0.0, (m1 - m0) - (cpu1 - cpu0) - (d1 - d0) - lg["loadgen_cpu_s"])
        delivered = None if got is None else got - before
        # Throughput over the generator's sending time: the drain after it
        # (the batch timeout, the sink's 200 ms progress file) is a fixed
        # delay, not work, and the queues that could hide a backlog are bounded.
        elapsed = lg["elapsed_s"]
        thr_items = min(delivered, sent) if delivered is not None else sent
        return {
            "offered_rate": rate,
            "items_sent": sent,
            "items_refused": lg["items_refused"],
            "refused_by_code": lg["refused_by_code"],
            "items_delivered": delivered,
            "items_lost": None if delivered is None else max(0, sent - delivered),
            "items_per_s": thr_items / elapsed if elapsed > 0 else 0,
            "agent_cpu_s": cpu1 - cpu0,
            "cpu_s_per_million": (cpu1 - cpu0) / thr_items * 1e6 if thr_items else None,
            "p99_ms": lg["latency_ms"]["p99"],
            "p50_ms": lg["latency_ms"]["p50"],
            "loadgen_cpu_s": lg["loadgen_cpu_s"],
            "downstream_cpu_s": d1 - d0,
            "others_cores": others / (t1 - t0) if t1 > t0 else 0.0,
            "seconds": elapsed,
        }

    def scenario(self, sc):
        row = {"scenario": sc["name"], "key": sc["key"], "status": "ok"}
        missing = [f"{k[:-1]} {n}" for k, n in sc["needs"] if (k, n) not in self.have]
        if missing:
            row.update(status="not available", reason="not built yet: " + ", ".join(missing))
            return row
        if sc["target"] == "dogstatsd":
            return self.dogstatsd(sc, row)
        if sc["target"] == "dsdmem":
            import bench_dsd_mem
            return bench_dsd_mem.scenario(self, sc, row, sys.modules[__name__])
        if sc["target"] == "jsonlog":
            import bench_jsonlog
            return bench_jsonlog.scenario(self, sc, row, sys.modules[__name__])
        workdir = os.path.join(self.out, sc["key"])
        os.makedirs(workdir, exist_ok=True)
        row["loadavg_start"] = round(os.getloadavg()[0], 2)
        out_file = os.path.join(workdir, "out.jsonl") if self.smoke else "/dev/null"
        if self.smoke and os.path.exists(out_file):
            os.unlink(out_file)
        agent = down = None
        try:
            agent, down, port = self.start_agents(sc, workdir, out_file)
            if self.smoke:
                row.update(self.measure(sc, agent, down, port, self.a.smoke_rate, self.seconds,
                                        workdir, "smoke"))
            elif self.a.mode == "max":
                row.update(self.find_max(sc, agent, down, port, workdir))
            else:
                row.update(self.measure(sc, agent, down, port, 0, self.seconds, workdir, "max"))
            row["peak_rss_mib"] = proc_status(agent.pid, "VmHWM")
            if down and sc.get("forward") == "otelite":
                row["downstream_peak_rss_mib"] = proc_status(down.pid, "VmHWM")
        except NotAvailable as e:
            row.update(status="not available", reason=str(e))
        except Exception as e:  # a scenario that breaks is reported, the rest still run
            row.update(status="failed", reason=str(e)[:400])
            self.failures.append(sc["key"])
        finally:
            rcs = []
            if agent:
                rcs.append(("agent", agent.stop()))
            if down:
                rcs.append(("downstream", down.stop()))
            for who, rc in rcs:
                if rc not in (0, None) and row["status"] == "ok":
                    row.update(status="failed", reason=f"{who} exited {rc} on SIGTERM")
                    self.failures.append(sc["key"])
        if self.smoke and row["status"] == "ok":
            if sc.get("forward") == "sink":
                self.check_smoke_counts(row)
            else:
                self.check_smoke(row, out_file)
        return row

    def dsd_measure(self, sc, agent, port, rate, seconds, workdir, tag):
        """One run of the generator; UDP has no answer, so what the agent
        took is its own line counter and sent minus that is the loss (the
        kernel's drops are part of it)."""
        lines = lambda: agent.counter("otelite_dogstatsd_metrics_total")  # noqa: E731
        drops = lambda: agent.counter("otelite_dogstatsd_kernel_drops_total")  # noqa: E731
        m0, k0 = lines(), drops()
        cpu0 = proc_cpu(agent.pid)
        jout = os.path.join(workdir, f"loadgen-{tag}.json")
        cmd = pin(1) + [self.loadgen, "metrics", "--dogstatsd", f"127.0.0.1:{port}",
                        "--rate", str(int(rate)), "--duration", f"{seconds}s",
                        # 50 lines a request either way, so that one sendmmsg carries
                        # 50 datagrams and the generator is not what limits the 1-a-
                        # datagram row (one syscall a line topped out near 250k/s)
                        "--batch", "50", "--lines-per-datagram", str(sc["per_datagram"]),
                        "--series", "10000",
                        "--attributes", "5", "--json-out", jout, "--quiet", "--seed", "1"]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 60)
        with open(jout) as f:
            lg = json.load(f)
        sent = lg["items_sent"]
        # the readers drain the socket buffers; wait until the count stops
        last, t_end = -1, time.time() + 10
        while time.time() < t_end:
            got = lines() - m0
            if got >= sent or got == last:
                break
            last = got
            time.sleep(0.3)
        got = lines() - m0
        cpu = proc_cpu(agent.pid) - cpu0
        elapsed = lg["elapsed_s"]
        kd = drops() - k0
        return {"offered_rate": rate, "items_sent": sent, "items_refused": 0,
                "refused_by_code": {}, "items_delivered": got, "items_lost": max(0, sent - got),
                "items_per_s": min(got, sent) / elapsed if elapsed > 0 else 0,
                "agent_cpu_s": cpu, "cpu_s_per_million": cpu / got * 1e6 if got else None,
                "p99_ms": 0.0, "p50_ms": 0.0, "kernel_drops": kd,
                "per_datagram": sc["per_datagram"],
                "extra_note": f"{sc['per_datagram']} per datagram; kernel drops {kd:,} "
                              "datagrams; latency n/a (UDP)"}

    def dsd_max(self, sc, agent, port, workdir):
        """The highest offered rate at 0 % loss, as find_max: a probe as
        fast as possible, then 15 % steps from 0.6 of it."""
        step_s = self.a.step_seconds
        probe = self.dsd_measure(sc, agent, port, 0, step_s, workdir, "probe")
        rate = self.a.start_rate or max(1000.0, round(probe["items_per_s"] * 0.6, -3))
        best, steps, going_up = None, [], None
        for _ in range(24):
            if rate > self.a.max_rate or rate < 500:
                break
            m = self.dsd_measure(sc, agent, port, rate, step_s, workdir, f"rate{int(rate)}")
            clean = m["items_lost"] == 0 and m["items_per_s"] >= 0.97 * rate
            steps.append({"rate": rate, "clean": clean, "items_per_s": m["items_per_s"],
                          "lost": m["items_lost"], "kernel_drops": m["kernel_drops"]})
            log(f"  {sc['key']}: offered {rate:,.0f}/s -> {m['items_per_s']:,.0f}/s, "
                f"lost {m['items_lost']}{'' if clean else '  (not clean)'}")
            if clean:
                best = m
                if going_up is False:
                    break
                going_up = True
                rate *= 1.15
            else:
                if going_up:
                    break
                going_up = False
                rate *= 0.8
        if best is None:
            best = dict(probe)
        best["max_clean_rate"] = max((st["rate"] for st in steps if st["clean"]), default=None)
        best["probe_items_per_s"] = probe["items_per_s"]
        best["steps"] = steps
        return best

    def dogstatsd(self, sc, row):
        workdir = os.path.join(self.out, sc["key"])
        os.makedirs(workdir, exist_ok=True)
        row["loadavg_start"] = round(os.getloadavg()[0], 2)
        port, tel = free_port(), free_port()
        path = os.path.join(workdir, "agent.yaml")
        with open(path, "w") as f:
            f.write(cfg_dogstatsd(port, "/dev/null", tel))
        agent = None
        try:
            self.validate(path)
            agent = Agent(self.otelite, path, workdir, "agent", 0, tel)
            if not agent.wait_ready([]):
                raise RuntimeError(f"agent did not start: {agent.log_tail()}")
            if self.smoke:
                row.update(self.dsd_measure(sc, agent, port, self.a.smoke_rate, self.seconds,
                                            workdir, "smoke"))
            elif self.a.mode == "max":
                row.update(self.dsd_max(sc, agent, port, workdir))
            else:
                row.update(self.dsd_measure(sc, agent, port, 0, self.seconds, workdir, "max"))
            row["peak_rss_mib"] = proc_status(agent.pid, "VmHWM")
            if self.smoke and row["items_lost"]:
                row.update(status="failed", reason=f"smoke: {row['items_lost']} metrics lost")
                self.failures.append(sc["key"])
        except NotAvailable as e:
            row.update(status="not available", reason=str(e))
        except Exception as e:
            row.update(status="failed", reason=str(e)[:400])
            self.failures.append(sc["key"])
        finally:
            if agent:
                rc = agent.stop()
                if rc not in (0, None) and row["status"] == "ok":
                    row.update(status="failed", reason=f"agent exited {rc} on SIGTERM")
                    self.failures.append(sc["key"])
        return row

    def check_smoke(self, row, out_file):
        """The exporter's file must hold every accepted item once."""
        r = subprocess.run([self.loadgen, "count", out_file, "--json"], capture_output=True,
                           text=True, timeout=60)
        try:
            c = json.loads(r.stdout)
        except ValueError:
            row.update(status="failed", reason=f"count: {r.stderr.strip()[:200]}")
            self.failures.append(row["key"])
            return
        row["count"] = {k: c[k] for k in ("items", "distinct", "duplicates", "missing")}
        row["items_lost"] = row["items_sent"] - c["distinct"]
        problems = []
        if row["items_sent"] == 0:
            problems.append("nothing was accepted")
        if c["distinct"] != row["items_sent"]:
            problems.append(f"{row['items_sent']} accepted but {c['distinct']} delivered")
        if c["duplicates"]:
            problems.append(f"{c['duplicates']} duplicates")
        if row["items_refused"]:
            problems.append(f"{row['items_refused']} refused {row['refused_by_code']}")
        if problems:
            row.update(status="failed", reason="; ".join(problems))
            self.failures.append(row["key"])

    def check_smoke_counts(self, row):
        """Without a file (null sink): the sink's span count must match."""
        problems = []
        if row["items_sent"] == 0:
            problems.append("nothing was accepted")
        if row.get("items_delivered") != row["items_sent"]:
            problems.append(f"{row['items_sent']} accepted but {row.get('items_delivered')} delivered")
        if row["items_refused"]:
            problems.append(f"{row['items_refused']} refused {row['refused_by_code']}")
        if problems:
            row.update(status="failed", reason="; ".join(problems))
            self.failures.append(row["key"])

    def find_max(self, sc, agent, down, port, workdir):
        """The highest offered rate with nothing refused or lost and the
        achieved rate within 3% of it. A first step as fast as possible
        estimates the capacity C; the search then starts at BENCH_START_RATE
        (default 0.6 C) and raises the rate by 15% a step until a step is not
        clean (stepping down instead while the first ones are not)."""
        step_s = self.a.step_seconds
        probe = self.measure(sc, agent, down, port, 0, step_s, workdir, "probe")
        log(f"  {sc['key']}: as fast as possible -> {probe['items_per_s']:,.0f}/s, "
            f"refused {probe['items_refused']}")
        rate = self.a.start_rate or max(1000.0, round(probe["items_per_s"] * 0.6, -3))
        best, steps, going_up = None, [], None
        for _ in range(24):
            if rate > self.a.max_rate or rate < 500:
                break
            m = self.measure(sc, agent, down, port, rate, step_s, workdir, f"rate{int(rate)}")
            clean = (m["items_refused"] == 0 and (m["items_lost"] or 0) == 0
                     and m["items_per_s"] >= 0.97 * rate)
            steps.append({"rate": rate, "clean": clean, "items_per_s": m["items_per_s"],
                          "refused": m["items_refused"], "lost": m["items_lost"],
                          "p99_ms": m["p99_ms"]})
            log(f"  {sc['key']}: offered {rate:,.0f}/s -> {m['items_per_s']:,.0f}/s, "
                f"refused {m['items_refused']}, lost {m['items_lost']}, p99 {m['p99_ms']:.2f} ms"
                f"{'' if clean else '  (not clean)'}")
            if clean:
                best = m
                if going_up is False:
                    break  # stepped down to the first clean rate
                going_up = True
                rate *= 1.15
            else:
                if going_up:
                    break
                going_up = False
                rate *= 0.8
        if best is None:
            best = dict(probe)
            best["note"] = "no clean rate found"
        best["max_clean_rate"] = max((st["rate"] for st in steps if st["clean"]), default=None)
        best["probe_items_per_s"] = probe["items_per_s"]
        best["steps"] = steps
        return best

    def idle(self):
        row = {"scenario": "idle: conf/agent.yaml, no traffic", "key": "idle", "status": "ok"}
        conf = os.path.join(ROOT, "conf", "agent.yaml")
        seconds = 2.0 if self.smoke else 10.0
        g, h, t = free_port(), free_port(), free_port()
        extra = ["--set", f"receivers.otlp.protocols.grpc.endpoint=127.0.0.1:{g}",
                 "--set", f"receivers.otlp.protocols.http.endpoint=127.0.0.1:{h}",
                 "--set", f"service.telemetry.metrics.endpoint=127.0.0.1:{t}"]
        r = subprocess.run([self.otelite, "validate", "--config", conf, *extra],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["invalid"])[0]
            row.update(status="not available", reason=f"conf/agent.yaml does not load yet: {first}")
            return row
        workdir = os.path.join(self.out, "idle")
        os.makedirs(workdir, exist_ok=True)
        a = Agent(self.otelite, conf, workdir, "agent", 0, t, extra)
        try:
            if not a.wait_ready([g, h]):
                rc = a.stop()
                row.update(status="failed", reason=f"agent did not start (exit {rc}): {a.log_tail()}")
                self.failures.append("idle")
                return row
            time.sleep(0.5)  # past start-up work
            c0 = proc_cpu(a.pid)
            time.sleep(seconds)
            c1 = proc_cpu(a.pid)
            row.update(idle_seconds=seconds, agent_cpu_s=c1 - c0,
                       rss_mib=proc_status(a.pid, "VmRSS"), peak_rss_mib=proc_status(a.pid, "VmHWM"),
                       pss_mib=proc_pss(a.pid),
                       threads=int(proc_status(a.pid, "Threads") * 1024))
        finally:
            rc = a.stop()
            if rc not in (0, None) and row["status"] == "ok":
                row.update(status="failed", reason=f"agent exited {rc} on SIGTERM")
                self.failures.append("idle")
        return row

    # -- output

    def table(self, rows):
        hdr = ("| scenario | items/s | agent CPU-s per M items | peak RSS MiB | lost | refused "
               "| p99 ms | note |\n|---|---:|---:|---:|---:|---:|---:|---|")
        out = [hdr]

        def f(v, fmt):
            return "n/a" if v is None else fmt.format(v)

        for r in rows:
            if r["status"] != "ok":
                out.append(f"| {r['scenario']} | — | — | — | — | — | — | {r['status']}: "
                           f"{r.get('reason', '')} |")
                continue
            if r["key"] == "idle":
                out.append(f"| {r['scenario']} | idle | {r['agent_cpu_s']:.2f} s in "
                           f"{r['idle_seconds']:.0f} s | {r['peak_rss_mib']:.1f} (now "
                           f"{r['rss_mib']:.1f}) | — | — | — | target ≤ {HEADLINE['idle_rss_mib']} MiB; "
                           f"PSS {r['pss_mib'] or 0:.1f} MiB (target ≤ {IDLE_PSS_MIB}; shared pages "
                           f"split with every process mapping them) |")
                continue
            note = []
            if self.a.mode == "max" and not self.smoke:
                mc = r.get("max_clean_rate")
                note.append(f"max clean rate {mc:,.0f}/s" if mc else "no clean rate found")
            if self.smoke:
                note.append("smoke run: delivery checked, timing meaningless")
            elif r.get("offered_rate") == 0:
                note.append("offered as fast as possible")
            if r.get("others_cores", 0) > 0.15 and not self.smoke:
                note.append(f"machine busy: other processes used {r['others_cores']:.1f} cores")
            if r.get("extra_note"):
                note.append(r["extra_note"])
            if r.get("downstream_peak_rss_mib"):
                note.append(f"downstream agent RSS {r['downstream_peak_rss_mib']:.1f} MiB")
            out.append(f"| {r['scenario']} | {r['items_per_s']:,.0f} | "
                       f"{f(r.get('cpu_s_per_million'), '{:.2f}')} | {f(r.get('peak_rss_mib'), '{:.1f}')} | "
                       f"{f(r.get('items_lost'), '{:,}')} | {r['items_refused']:,} | "
                       f"{r['p99_ms']:.2f} | {'; '.join(note)} |")
        return "\n".join(out)

    def plot(self, rows):
        png = os.path.join(self.out, "plot.png")
        gp = shutil.which("gnuplot")
        if not gp:
            return "plot skipped: gnuplot is not installed (apt-get install gnuplot-nox)"
        ok = [r for r in rows if r["status"] == "ok" and r["key"] != "idle" and r.get("cpu_s_per_million")]
        if not ok:
            return "plot skipped: no scenario ran"
        dat = os.path.join(self.out, "plot.dat")
        with open(dat, "w") as f:
            for r in ok:
                f.write(f"\"{r['key']}\" {r['items_per_s'] / 1000:.1f} {r['cpu_s_per_million']:.3f}\n")
        script = f"""set terminal pngcairo size 1000,420 font ",10"
set output "{png}"
set multiplot layout 1,2 title "otelite bench ({platform.node()}, agent on 1 core)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.2, 0
set xtics rotate by -20
set title "throughput (k items/s)"
plot "{dat}" using 2:xtic(1) notitle lc rgb "#3b75af", {HEADLINE['items_per_s'] / 1000} with lines dt 2 lc rgb "#c03030" title "target"
set title "agent CPU-s per million items"
plot "{dat}" using 3:xtic(1) notitle lc rgb "#e0822d", {HEADLINE['cpu_s_per_m']} with lines dt 2 lc rgb "#c03030" title "target"
unset multiplot
"""
        r = subprocess.run([gp], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            # pngcairo may be missing in minimal builds; plain png then
            r = subprocess.run([gp], input=script.replace("pngcairo", "png"), capture_output=True, text=True)
        return f"plot: {os.path.relpath(png, ROOT)}" if r.returncode == 0 else f"plot failed: {r.stderr.strip()[:200]}"

    def run(self):
        mode = "smoke" if self.smoke else self.a.mode
        per = f"{self.a.step_seconds:g} s per step" if mode == "max" else f"{self.seconds:g} s per scenario"
        log(f"bench: mode {mode}, {per}, agent on core 0, "
            f"loadgen on core 1 ({ncpu()} cpus)")
        rows = []
        if self.smoke:
            r = subprocess.run([self.loadgen, "selftest"], capture_output=True, text=True, timeout=120)
            log("bench: " + (r.stdout.strip().splitlines() or ["selftest: no output"])[-1])
            if r.returncode != 0:
                log(r.stdout[-2000:])
                self.failures.append("loadgen selftest")
        only = set(self.a.only.split(",")) if self.a.only else None
        for sc in SCENARIOS:
            if only and sc["key"] not in only and not any(
                    o.endswith("*") and sc["key"].startswith(o[:-1]) for o in only):
                continue
            log(f"bench: {sc['name']}")
            rows.append(self.scenario(sc))
            log(f"  -> {rows[-1]['status']} {rows[-1].get('reason', '')}")
        if not only or "idle" in only:
            log("bench: idle")
            rows.append(self.idle())
        table = self.table(rows)
        print(table)
        res = {"mode": mode, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "version": version(self.otelite),
               "targets": HEADLINE, "scenarios": rows}
        name = "results-smoke.json" if self.smoke else "results.json"
        with open(os.path.join(self.out, name), "w") as f:
            json.dump(res, f, indent=2)
        print(f"\nresults: {os.path.relpath(os.path.join(self.out, name), ROOT)}")
        if not self.smoke:
            print(self.plot(rows))
            head = [r for r in rows if r["status"] == "ok" and r["key"] == "forward"]
            if head:
                r = head[0]
                print(f"headline (forwarding): {r['items_per_s']:,.0f} spans/s (target ≥ "
                      f"{HEADLINE['items_per_s']:,}), {r['cpu_s_per_million']:.2f} CPU-s per M "
                      f"(target ≤ {HEADLINE['cpu_s_per_m']}), peak RSS {r['peak_rss_mib']:.1f} MiB "
                      f"(target ≤ {HEADLINE['rss_mib']})")
        if not self.smoke:
            for line in proc_ratios(rows):
                print(line)
        if self.failures:
            print(f"bench: failed scenarios: {', '.join(self.failures)}")
            return 1
        return 0


def proc_ratios(rows):
    """Issue 19's figure: each processor row's CPU per item against the
    same run's pass-through row of its signal."""
    by = {r["key"]: r for r in rows if r["status"] == "ok" and r.get("cpu_s_per_million")}
    out = []
    for sig in ("traces", "metrics", "logs"):
        base = by.get(f"proc-{sig}-pass")
        if not base:
            continue
        parts = [f"{k} {by[f'proc-{sig}-{k}']['cpu_s_per_million'] / base['cpu_s_per_million']:.2f}x"
                 for k in ("filter", "attributes", "resource", "chain") if f"proc-{sig}-{k}" in by]
        if parts:
            out.append(f"processors {sig}: pass-through {base['cpu_s_per_million']:.2f} CPU-s per M; "
                       + ", ".join(parts) + " (target: chain <= 1.3x)")
    return out


class NotAvailable(Exception):
    pass


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": ncpu(), "cpu_model": model, "kernel": platform.release()}


def version(otelite):
    try:
        return subprocess.run([otelite, "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return ""


# ---- instruction counts --------------------------------------------------------

def icount(args):
    exe = os.path.join(ROOT, args.build, "otelite-icount")
    vg = shutil.which("valgrind")
    if not vg:
        print("bench-icount: valgrind is not installed (apt-get install valgrind)")
        return 1
    out = os.path.join(ROOT, args.build, "bench")
    os.makedirs(out, exist_ok=True)
    # the driver prints its phases; callgrind counts each between dumps
    base = os.path.join(out, "callgrind.out")
    for f in os.listdir(out):
        if f.startswith("callgrind.out"):
            os.unlink(os.path.join(out, f))
    # --separate-threads: the counts of the thread that runs the phases; the
    # batch processor's timer thread only waits here, and its wake-ups would
    # make the totals differ by a few hundred instructions from run to run.
    cmd = [vg, "--tool=callgrind", "--separate-threads=yes",
           f"--callgrind-out-file={base}", exe]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        return 1
    phases = []
    for f in sorted(os.listdir(out)):
        if not f.startswith("callgrind.out") or not f.endswith("-01"):
            continue
        desc, total = "", None
        with open(os.path.join(out, f)) as fh:
            for line in fh:
                if line.startswith("desc: Trigger: Client Request: "):
                    desc = line.split("Client Request: ", 1)[1].strip()
                elif line.startswith("summary:"):
                    total = int(line.split()[1])
        if desc and total is not None:
            phases.append((desc, total))
    print(r.stdout.strip())
    print()
    print("| phase | instructions | per item |")
    print("|---|---:|---:|")
    m = re.search(r"corpus: (\d+) items", r.stdout)
    items = {}
    for line in r.stdout.splitlines():
        mm = re.match(r"phase (\S+): (\d+) items", line)
        if mm:
            items[mm.group(1)] = int(mm.group(2))
    results = []
    for desc, total in phases:
        n = items.get(desc) or (int(m.group(1)) if m else 0)
        per = f"{total / n:,.0f}" if n else "—"
        print(f"| {desc} | {total:,} | {per} |")
        results.append({"phase": desc, "instructions": total, "items": n})
    with open(os.path.join(out, "icount.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nresults: {os.path.relpath(os.path.join(out, 'icount.json'), ROOT)}")
    return 0 if phases else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("BENCH_SMOKE") == "1")
    ap.add_argument("--mode", default=os.environ.get("BENCH_MODE", "fixed"), choices=["fixed", "max"])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "0")))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""),
                    help="comma-separated scenario keys: grpc,http-proto,http-json,forward,forward-json,forward-grpc,lb,"
                         "jaeger-grpc,jaeger-thrift,forward-otelite,idle, proc-SIGNAL-pass|filter|attributes|"
                         "resource|chain (SIGNAL traces, metrics, logs)")
    ap.add_argument("--smoke-rate", type=float, default=2000)
    ap.add_argument("--start-rate", type=float, default=float(os.environ.get("BENCH_START_RATE", "0")))
    ap.add_argument("--max-rate", type=float, default=5e6)
    ap.add_argument("--step-seconds", type=float, default=float(os.environ.get("BENCH_STEP_SECONDS", "5")))
    ap.add_argument("--icount", action="store_true")
    args = ap.parse_args()
    if args.icount:
        return icount(args)
    for exe in ("otelite", "otelite-loadgen"):
        if not os.access(os.path.join(ROOT, args.build, exe), os.X_OK):
            print(f"bench: {args.build}/{exe} is missing; run make first", file=sys.stderr)
            return 1
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
