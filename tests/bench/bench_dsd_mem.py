"""The DogStatsD memory rows of `make bench` (called from bench.py): what a
live series costs the agent. N distinct series (`otelite-loadgen metrics
--dogstatsd --series N`, 50 lines a datagram, the generator's mix of c, g,
h, d, ms with 5 tags) are sent over UDP, each several times, into the
dogstatsd receiver (5 s interval) -> otlphttp (proto) -> the loadgen's
null sink, an exporter that does not itself hold what it sends (the file
exporter's JSON buffer would be counted otherwise). Measured: the agent's
RSS before any traffic, its peak (VmHWM) and its RSS after the last
flush, and the live series its own gauge reports; bytes per series is
(peak - idle) / series, the flush and the exporter included."""
import os
import subprocess
import time

INTERVAL_S = 5


def config(port, sink_port, tel_port, series, telemetry_yaml):
    return (f"receivers:\n  dogstatsd:\n    endpoint: 127.0.0.1:{port}\n"
            f"    aggregation_interval: {INTERVAL_S}s\n    receive_buffer_bytes: 32MiB\n"
            f"    max_series: {series * 2}\n"
            "exporters:\n  otlphttp:\n"
            f"    endpoint: http://127.0.0.1:{sink_port}\n"
            "    encoding: proto\n    compression: none\n"
            "service:\n  pipelines:\n    metrics:\n      receivers: [dogstatsd]\n"
            "      exporters: [otlphttp]\n" + telemetry_yaml(tel_port))


def kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def scenario(bench, sc, row, b):
    """b: the bench module (its Agent, Sink and helpers)."""
    workdir = os.path.join(bench.out, sc["key"])
    os.makedirs(workdir, exist_ok=True)
    series = sc["series"] if not bench.smoke else 2000
    # every series at least three times, at a rate one busy core takes
    rate = int(os.environ.get("BENCH_DSD_MEM_RATE", "200000"))
    seconds = max(4.0, 3.0 * series / rate)
    row["loadavg_start"] = round(os.getloadavg()[0], 2)
    port, sink_port, tel = b.free_port(), b.free_port(), b.free_port()
    path = os.path.join(workdir, "agent.yaml")
    with open(path, "w") as f:
        f.write(config(port, sink_port, tel, series, b.telemetry_yaml))
    agent = sink = None
    try:
        bench.validate(path)
        sink = b.Sink(bench.loadgen, sink_port, workdir, 1, grpc=False, walk=False)
        if not sink.wait_ready([sink_port]):
            raise RuntimeError(f"sink did not start: {sink.log_tail()}")
        agent = b.Agent(bench.otelite, path, workdir, "agent", 0, tel)
        if not agent.wait_ready([]):
            raise RuntimeError(f"agent did not start: {agent.log_tail()}")
        time.sleep(0.5)
        idle = kib(agent.pid, "VmRSS")
        cpu0 = b.proc_cpu(agent.pid)
        cmd = b.pin(1) + [bench.loadgen, "metrics", "--dogstatsd", f"127.0.0.1:{port}",
                          "--rate", str(rate), "--duration", f"{seconds}s",
                          "--batch", "50", "--series", str(series),
                          "--attributes", "5", "--quiet", "--seed", "1"]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 60)
        # the gauge is set at each flush: wait for one after the last line
        time.sleep(INTERVAL_S + 1.0)
        live = agent.counter("otelite_dogstatsd_series") or 0
        lines = agent.counter("otelite_dogstatsd_metrics_total") or 0
        sent = agent.counter("otelite_exporter_sent_metric_points_total") or 0
        cpu = b.proc_cpu(agent.pid) - cpu0
        peak, now = kib(agent.pid, "VmHWM"), kib(agent.pid, "VmRSS")
        per = (peak - idle) * 1024 / live if live else None
        per_now = (now - idle) * 1024 / live if live else None
        row.update(items_sent=lines, items_delivered=sent, items_lost=None, items_refused=0,
                   refused_by_code={}, p99_ms=0.0, items_per_s=lines / seconds,
                   agent_cpu_s=round(cpu, 3), offered_rate=rate,
                   cpu_s_per_million=round(cpu / lines * 1e6, 3) if lines else None,
                   peak_rss_mib=peak / 1024, rss_mib=now / 1024, idle_rss_mib=idle / 1024,
                   series_live=live, bytes_per_series=per, bytes_per_series_now=per_now,
                   extra_note=(f"{live:,} series live; idle RSS {idle / 1024:.1f} MiB, after "
                               f"the last flush {now / 1024:.1f} MiB; "
                               f"{per if per else 0:,.0f} B/series at peak "
                               f"({per_now if per_now else 0:,.0f} after; target ≤ 200)"))
        if not live:
            row.update(status="failed", reason="no live series reported")
            bench.failures.append(sc["key"])
    except Exception as e:
        row.update(status="failed", reason=str(e)[:400])
        bench.failures.append(sc["key"])
    finally:
        for who, p in (("agent", agent), ("sink", sink)):
            if p:
                rc = p.stop()
                if who == "agent" and rc not in (0, None) and row["status"] == "ok":
                    row.update(status="failed", reason=f"agent exited {rc} on SIGTERM")
                    bench.failures.append(sc["key"])
    return row
