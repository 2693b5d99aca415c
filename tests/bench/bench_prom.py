"""The `prometheus` exporter through the agent (issue 13): OTLP metrics from
otelite-loadgen into otlp -> prometheus, N streams updated over and over
(`--series N`, the loadgen.seq attribute cycling; cumulative monotonic
sums, one sample line each), with and without a
scraper that GETs /metrics once a second. Per N (100k, 1M): the agent's
RSS per series once every stream exists, ingestion (points/s the receiver
accepted) idle and while scraped, and the scrapes' time to the last byte
and size (and a gzip scrape's CPU, as Prometheus asks for gzip).

The agent is pinned to core 0, loadgen and the scraper (curl) to core 1.
With the agent on one core, a scrape's rendering takes its CPU from
ingestion: the slowdown while scraped is at least the scrape's share of
that core (scrape seconds per second), whatever the locking does. Idle
and scraped runs alternate, BENCH_PROM_RUNS times (3), best of each, as
the machine may be shared.

Run: make bench (after the other benchmarks), or
     BUILD=build python3 tests/bench/bench_prom.py [--seconds 5] [--series 100000,1000000]"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the shared process helpers)

BATCH = 1000  # points per request; the series counts are multiples of it

CONFIG = """\
receivers:
  otlp:
    protocols:
      http: {{ endpoint: "127.0.0.1:{http}" }}
exporters:
  prometheus:
    endpoint: "127.0.0.1:{prom}"
    metric_expiration: 30m
service:
  pipelines:
    metrics: {{ receivers: [otlp], exporters: [prometheus] }}
{tel}"""

ACCEPTED = "otelite_receiver_accepted_metric_points_total"


class Scraper(threading.Thread):
    """curl on core 1 once a second: time to the last byte and bytes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.got = port, threading.Event(), []

    def scrape(self, gzip=False):
        out = subprocess.run(bench.pin(1) + [
            "curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download} %{http_code}"]
            + (["-H", "Accept-Encoding: gzip"] if gzip else []) + [
            f"http://127.0.0.1:{self.port}/metrics"], capture_output=True, text=True, timeout=60)
        t, n, code = out.stdout.split()
        if code != "200":
            raise RuntimeError(f"scrape answered {code}")
        return float(t), int(n)

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            self.got.append(self.scrape())
            self.stop.wait(max(0.0, 1.0 - (time.time() - t0)))


def loadgen(build, http, series, seconds=None, count=None):
    cmd = bench.pin(1) + [os.path.join(bench.ROOT, build, "otelite-loadgen"), "metrics",
                          "--otlp-http", f"http://127.0.0.1:{http}", "--rate", "0",
                          "--batch", str(BATCH), "--attributes", "2", "--series", str(series),
                          "--point-type", "sum", "--run-id", "bench-prom",
                          "--connections", "4", "--quiet", "--seed", "1"]
    cmd += ["--count", str(count), "--duration", "10m"] if count else ["--duration", f"{seconds}s"]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=(seconds or 600) + 60, check=True)


def ingest(agent, build, http, series, seconds, scraper=None):
    """Points/s accepted, agent CPU-s per million, over one loadgen run."""
    a0, c0, t0 = agent.counter(ACCEPTED) or 0, bench.proc_cpu(agent.pid), time.time()
    if scraper:
        scraper.start()
    try:
        loadgen(build, http, series, seconds=seconds)
    finally:
        if scraper:
            scraper.stop.set()
            scraper.join()
    dt = time.time() - t0
    acc, cpu = (agent.counter(ACCEPTED) or 0) - a0, bench.proc_cpu(agent.pid) - c0
    return {"points_per_s": acc / dt, "cpu_s": cpu, "points": acc,
            "cpu_s_per_million": cpu / acc * 1e6 if acc else None,
            "scrapes": len(scraper.got) if scraper else 0}


def one_size(build, series, seconds, runs, workdir):
    http, prom, tel = bench.free_port(), bench.free_port(), bench.free_port()
    cfg = os.path.join(workdir, f"agent-prom-{series}.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(http=http, prom=prom, tel=bench.telemetry_yaml(tel)))
    agent = bench.Agent(os.path.join(bench.ROOT, build, "otelite"), cfg, workdir,
                        f"agent-prom-{series}", 0, tel)
    try:
        if not agent.wait_ready([http, prom]):
            raise RuntimeError("agent did not start: " + agent.log_tail())
        rss0 = bench.proc_status(agent.pid, "VmRSS")
        loadgen(build, http, series, count=series)
        loadgen(build, http, series, count=series)  # every stream updated once more
        live = agent.counter("otelite_exporter_prometheus_series")
        rss1 = bench.proc_status(agent.pid, "VmRSS")
        sc = Scraper(prom)
        # A scrape's CPU with nothing else going on: what a scrape a second
        # takes from a one-core agent, however busy the machine is.
        first, cpus = [], []
        for _ in range(3):
            c0 = bench.proc_cpu(agent.pid)
            first.append(sc.scrape())
            cpus.append(bench.proc_cpu(agent.pid) - c0)
        scrape_cpu = min(cpus)
        # What Prometheus asks for: gzip (level 1), the same body compressed.
        gz = []
        for _ in range(2):
            c0 = bench.proc_cpu(agent.pid)
            _, gz_bytes = sc.scrape(gzip=True)
            gz.append(bench.proc_cpu(agent.pid) - c0)
        idle, busy, scrapes = [], [], []
        for _ in range(runs):
            idle.append(ingest(agent, build, http, series, seconds))
            s = Scraper(prom)
            busy.append(ingest(agent, build, http, series, seconds, s))
            scrapes += s.got
        best_idle = max(idle, key=lambda r: r["points_per_s"])
        best_busy = max(busy, key=lambda r: r["points_per_s"])
        # Ingestion's own CPU per point while scraped: the run's CPU less
        # its scrapes' (at the quiet figure), against the idle runs'.
        ing = [(r["cpu_s"] - r["scrapes"] * scrape_cpu) / r["points"] * 1e6
               for r in busy if r["points"]]
        return {
            "series": series, "live_series": live,
            "rss_bytes_per_series": (rss1 - rss0) * 1048576 / series,
            "peak_rss_mib": bench.proc_status(agent.pid, "VmHWM"),
            "scrape_quiet_s": min(t for t, _ in first), "scrape_bytes": first[0][1],
            "scrape_cpu_s": scrape_cpu,
            "scrape_gzip_cpu_s": min(gz), "scrape_gzip_bytes": gz_bytes,
            "ingest_cpu_s_per_million_scraped": min(ing) if ing else None,
            "scrape_busy_s": min(t for t, _ in scrapes) if scrapes else None,
            "scrape_busy_worst_s": max(t for t, _ in scrapes) if scrapes else None,
            "scrapes": len(scrapes),
            "idle": best_idle, "scraped": best_busy,
            "idle_all": [r["points_per_s"] for r in idle],
            "scraped_all": [r["points_per_s"] for r in busy],
            "ratio": best_busy["points_per_s"] / best_idle["points_per_s"],
        }
    finally:
        rc = agent.stop(timeout=60)
        if rc not in (0, None):
            raise RuntimeError(f"agent exited {rc} on SIGTERM: {agent.log_tail()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("BENCH_SECONDS") or 5))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_PROM_RUNS", "3")))
    ap.add_argument("--series", default="100000,1000000")
    args = ap.parse_args()
    print(f"prometheus exporter through the agent: otlp-http -> prometheus, loadgen --series N, "
          f"a scrape a second, {args.seconds:g} s a run, best of {args.runs} "
          f"(load average {os.getloadavg()[0]:.2f}):")
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as workdir:
        for n in (int(x) for x in args.series.split(",")):
            try:
                r = one_size(args.build, n, args.seconds, args.runs, workdir)
            except Exception as e:  # reported, the other sizes still run
                print(f"  {n:,} series: failed: {e}")
                ok = False
                continue
            rows.append(r)
            print(f"  {n:>9,} series (live {r['live_series']:,}): RSS {r['rss_bytes_per_series']:.0f} "
                  f"B/series, peak {r['peak_rss_mib']:.0f} MiB; scrape {r['scrape_quiet_s']:.3f} s "
                  f"quiet ({r['scrape_cpu_s']:.2f} agent CPU-s; gzip {r['scrape_gzip_cpu_s']:.2f}, "
                  f"{r['scrape_gzip_bytes']:,} bytes), "
                  f"{r['scrape_busy_s']:.3f}-{r['scrape_busy_worst_s']:.3f} s under load, "
                  f"{r['scrape_bytes']:,} bytes")
            print(f"  {'':>9} ingest idle {r['idle']['points_per_s']:,.0f} points/s "
                  f"({r['idle']['cpu_s_per_million']:.2f} CPU-s/M), scraped "
                  f"{r['scraped']['points_per_s']:,.0f} points/s ({r['ratio'] * 100:.0f}% of idle, "
                  f"{r['scrapes']} scrapes; ingestion's own "
                  f"{r['ingest_cpu_s_per_million_scraped']:.2f} CPU-s/M); runs idle "
                  + ", ".join(f"{v:,.0f}" for v in r["idle_all"]) + " scraped "
                  + ", ".join(f"{v:,.0f}" for v in r["scraped_all"]))
    out = os.path.join(bench.ROOT, args.build, "bench")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "prometheus.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
