"""`make soak`: every receiver at once (OTLP/gRPC, OTLP/HTTP, DogStatsD over
UDP) at half the maximum rate measured in the README's benchmarks, for
SOAK_SECONDS (600), with a reload (SIGHUP, a changed batch processor)
every 60 s. It passes when the agent's RSS stayed under SOAK_RSS_MIB (64)
and did not grow over the run (the last half's peak within 8 MiB of the
first half's), nothing was logged at level=error, every reload was taken,
and nothing was lost: every span the loadgens were told was accepted was
counted by the receiver and written by the exporter, and every DogStatsD
line sent was parsed or counted as dropped by the kernel.

Rates (items/s) can be set: SOAK_GRPC_RATE, SOAK_HTTP_RATE, SOAK_DSD_RATE.
Not part of `make check`."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "otelite")
LOADGEN = os.path.join(BUILD, "otelite-loadgen")
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
RSS_MIB = float(os.environ.get("SOAK_RSS_MIB", "64"))
# half of the README's maxima: 212k spans/s gRPC, 209k HTTP, 261k lines/s DogStatsD
RATES = {"grpc": int(os.environ.get("SOAK_GRPC_RATE", "106000")),
         "http": int(os.environ.get("SOAK_HTTP_RATE", "104000")),
         "dsd": int(os.environ.get("SOAK_DSD_RATE", "130000"))}


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(ports, timeout):
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: 127.0.0.1:{ports['grpc']} }}
      http: {{ endpoint: 127.0.0.1:{ports['http']} }}
  dogstatsd: {{ endpoint: 127.0.0.1:{ports['dsd']}, aggregation_interval: 1s }}
processors:
  batch: {{ send_batch_size: 8192, timeout: {timeout} }}
exporters:
  file: {{ path: /dev/null }}
service:
  pipelines:
    traces: {{ receivers: [otlp], processors: [batch], exporters: [file] }}
    metrics: {{ receivers: [dogstatsd], processors: [batch], exporters: [file] }}
  telemetry:
    metrics: {{ endpoint: 127.0.0.1:{ports['tel']} }}
"""


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def total(m, prefix):
    return sum(v for k, v in m.items() if k.startswith(prefix))


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    tmp = os.path.join(BUILD, "soak")
    os.makedirs(tmp, exist_ok=True)
    ports = {"grpc": free_port(), "http": free_port(), "tel": free_port(),
             "dsd": free_port(socket.SOCK_DGRAM)}
    cfg = os.path.join(tmp, "soak.yaml")
    open(cfg, "w").write(config(ports, "200ms"))
    log = open(os.path.join(tmp, "agent.stderr"), "wb")
    agent = subprocess.Popen(["taskset", "-c", "1", BIN, "run", "--config", cfg], stderr=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{ports['tel']}/readyz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.1)
    dur = f"{SECONDS}s"
    gens = {
        "grpc": ["traces", "--otlp-grpc", f"127.0.0.1:{ports['grpc']}", "--rate", str(RATES["grpc"])],
        "http": ["traces", "--otlp-http", f"http://127.0.0.1:{ports['http']}/v1/traces",
                 "--rate", str(RATES["http"])],
        "dsd": ["metrics", "--dogstatsd", f"127.0.0.1:{ports['dsd']}", "--rate", str(RATES["dsd"]),
                "--series", "1000", "--batch", "1"],
    }
    procs = {}
    for k, args in gens.items():
        out = os.path.join(tmp, f"{k}.json")
        procs[k] = (subprocess.Popen(["taskset", "-c", "0", LOADGEN] + args +
                                     ["--duration", dur, "--quiet", "--json-out", out]), out)
    start, samples, reloads, next_reload = time.time(), [], 0, time.time() + 60
    while any(p.poll() is None for p, _ in procs.values()):
        time.sleep(1)
        samples.append((time.time() - start, rss_mib(agent.pid)))
        if time.time() >= next_reload and time.time() - start < SECONDS - 5:
            reloads += 1
            open(cfg, "w").write(config(ports, "250ms" if reloads % 2 else "200ms"))
            agent.send_signal(signal.SIGHUP)
            next_reload += 60
    time.sleep(3)  # the batch processor's last flush
    m = metrics(ports["tel"])
    agent.send_signal(signal.SIGTERM)
    rc = agent.wait(30)
    log.close()
    text = open(os.path.join(tmp, "agent.stderr"), errors="replace").read()
    reps = {k: json.load(open(out)) for k, (_, out) in procs.items()}

    problems = []
    sent_spans = reps["grpc"]["items_sent"] + reps["http"]["items_sent"]
    accepted = total(m, "otelite_receiver_accepted_spans_total")
    written = total(m, "otelite_exporter_sent_spans_total")
    if accepted != sent_spans:
        problems.append(f"loadgens were told {sent_spans} spans were accepted, receiver counted {accepted}")
    if written != accepted:
        problems.append(f"receiver accepted {accepted} spans, exporter wrote {written}")
    lines_sent = reps["dsd"]["items_sent"]
    lines = total(m, "otelite_dogstatsd_lines_total")
    drops = total(m, "otelite_dogstatsd_kernel_drops_total")
    if lines + drops < lines_sent:
        problems.append(f"{lines_sent} DogStatsD lines sent, {lines} parsed, {drops} counted dropped")
    errors = [l for l in text.splitlines() if "level=error" in l]
    if errors:
        problems.append(f"{len(errors)} error lines, first: {errors[0]}")
    taken = text.count('msg="config reloaded"')
    if taken != reloads:
        problems.append(f"{reloads} reloads sent, {taken} logged as taken")
    peak = max(r for _, r in samples)
    half = SECONDS / 2
    first = max([r for t, r in samples if t < half] or [0])
    second = max([r for t, r in samples if t >= half] or [0])
    if peak > RSS_MIB:
        problems.append(f"peak RSS {peak:.1f} MiB over {RSS_MIB} MiB")
    if second > first + 8:
        problems.append(f"RSS grew: first half peak {first:.1f} MiB, second half {second:.1f} MiB")
    if rc != 0:
        problems.append(f"agent exit status {rc}")
    print(f"soak: {SECONDS}s, rates {RATES}, reloads {reloads}")
    print(f"  spans accepted {accepted:.0f} (refused {reps['grpc']['items_refused'] + reps['http']['items_refused']}),"
          f" written {written:.0f}; dogstatsd lines {lines:.0f} of {lines_sent}, kernel drops {drops:.0f}")
    print(f"  achieved rates: grpc {reps['grpc']['achieved_rate']:.0f}/s, http {reps['http']['achieved_rate']:.0f}/s,"
          f" dogstatsd {reps['dsd']['achieved_rate']:.0f}/s")
    print(f"  RSS MiB: peak {peak:.1f}, first half {first:.1f}, second half {second:.1f}")
    for p in problems:
        print("  FAIL:", p)
    print("soak:", "FAILED" if problems else "passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
