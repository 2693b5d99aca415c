"""The `datadog` exporter's benchmark (issue 15): agent CPU per million
spans, metric points and log records taken over OTLP/HTTP and sent to a
Datadog intake. The agent (pinned to core 0) runs otlp → batch → datadog;
`otelite-loadgen` sends as fast as it can and `otelite-loadgen sink`
stands in for the intake (core 1 for both): it answers every POST 200
without reading it, so the agent's translation, compression and HTTP are
what is measured. Delivered is the exporter's sent counter. Each signal
runs BENCH_DD_RUNS times (3) and the run with the least CPU per item is
reported, as the machine may be shared.

Run: make bench (after the other benchmarks), or
     BUILD=build python3 tests/bench/bench_datadog.py [--seconds 5] [--only traces]"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the shared process helpers)

ITEM = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}

CONFIG = """\
receivers:
  otlp:
    protocols:
      http: {{ endpoint: "127.0.0.1:{http}" }}
processors:
{batch}exporters:
  datadog:
    api: {{ key: bench-key }}
    hostname: bench-host
    metrics: {{ endpoint: "http://127.0.0.1:{sink}" }}
    logs: {{ endpoint: "http://127.0.0.1:{sink}" }}
    traces: {{ endpoint: "http://127.0.0.1:{sink}" }}
service:
  pipelines:
    {signal}: {{ receivers: [otlp], processors: [batch], exporters: [datadog] }}
{tel}"""


def one_run(build, signal, seconds, workdir):
    http, tel, sink_port = bench.free_port(), bench.free_port(), bench.free_port()
    loadgen = os.path.join(bench.ROOT, build, "otelite-loadgen")
    sink = bench.Sink(loadgen, sink_port, workdir, 1, walk=False)
    if not sink.wait_ready([sink_port]):
        raise RuntimeError("sink did not start: " + sink.log_tail())
    cfg = os.path.join(workdir, f"agent-{signal}.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(http=http, sink=sink_port, batch=bench.BATCH, signal=signal,
                              tel=bench.telemetry_yaml(tel)))
    agent = bench.Agent(os.path.join(bench.ROOT, build, "otelite"), cfg, workdir, "agent", 0, tel)
    try:
        if not agent.wait_ready([http]):
            raise RuntimeError("agent did not start: " + agent.log_tail())
        sent_name = f"otelite_exporter_sent_{ITEM[signal]}_total"
        acc_name = f"otelite_receiver_accepted_{ITEM[signal]}_total"
        s0, a0 = agent.counter(sent_name) or 0, agent.counter(acc_name) or 0
        cpu0 = bench.proc_cpu(agent.pid)
        jout = os.path.join(workdir, f"loadgen-{signal}.json")
        cmd = bench.pin(1) + [loadgen, signal, "--otlp-http", f"http://127.0.0.1:{http}",
                              "--rate", "0", "--duration", f"{seconds}s", "--batch", "100",
                              "--connections", "8", "--json-out", jout, "--quiet", "--seed", "1"]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 60)
        with open(jout) as f:
            lg = json.load(f)
        # until the exporter has sent what the receiver took (or stops moving
        # for 3 s: the first points of cumulative streams are not sent)
        end, last, still = time.time() + 30, None, time.time()
        while time.time() < end:
            acc = (agent.counter(acc_name) or 0) - a0
            got = (agent.counter(sent_name) or 0) - s0
            if got >= acc:
                break
            if got != last:
                last, still = got, time.time()
            elif time.time() - still > 3:
                break
            time.sleep(0.2)
        cpu = bench.proc_cpu(agent.pid) - cpu0
        acc = (agent.counter(acc_name) or 0) - a0
        got = (agent.counter(sent_name) or 0) - s0
        reqs = agent.counter("otelite_datadog_requests_total") or 0
        failed = agent.counter(f"otelite_exporter_send_failed_{ITEM[signal]}_total") or 0
        rss = bench.proc_status(agent.pid, "VmHWM")
        return {"signal": signal, "items_sent": lg["items_sent"], "accepted": acc,
                "delivered": got, "refused": lg["items_refused"], "requests": reqs, "failed": failed,
                "agent_cpu_s": cpu, "seconds": lg["elapsed_s"],
                "items_per_s": acc / lg["elapsed_s"] if lg["elapsed_s"] else 0,
                "cpu_s_per_million": cpu / acc * 1e6 if acc else None,
                "peak_rss_mib": rss}
    finally:
        rc = agent.stop()
        sink.stop()
        if rc not in (0, None):
            raise RuntimeError(f"agent exited {rc} on SIGTERM: {agent.log_tail()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS") or 5))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_DD_RUNS", "3")))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    signals = [s for s in ("traces", "metrics", "logs") if not args.only or s in args.only]
    print(f"datadog exporter, otlp-http -> batch -> datadog -> null intake, {args.seconds:g} s, "
          f"best of {args.runs} (load average {os.getloadavg()[0]:.2f}):")
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as workdir:
        for sig in signals:
            best = None
            for _ in range(args.runs):
                try:
                    r = one_run(args.build, sig, args.seconds, workdir)
                except Exception as e:  # reported, the other signals still run
                    print(f"  {sig}: failed: {e}")
                    ok = False
                    break
                if r["cpu_s_per_million"] and (best is None or
                                               r["cpu_s_per_million"] < best["cpu_s_per_million"]):
                    best = r
            if not best:
                continue
            rows.append(best)
            lost = best["accepted"] - best["delivered"]
            print(f"  {ITEM[sig]:<14} {best['items_per_s']:>11,.0f}/s  "
                  f"{best['cpu_s_per_million']:6.2f} CPU-s per M  peak RSS "
                  f"{best['peak_rss_mib']:.1f} MiB  accepted {best['accepted']:,}  "
                  f"not delivered {lost:,}  failed {best['failed']:,}  "
                  f"refused {best['refused']:,}  "
                  f"requests {best['requests']:,}")
    out = os.path.join(bench.ROOT, args.build, "bench")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "datadog.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
