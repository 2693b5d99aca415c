"""The jsonlog scenarios of `make bench` (called from bench.py): a file of
300-byte JSON lines, plain or CRI-wrapped, appears in the folder the
receiver watches; the agent (pinned to one core) reads it through batch
and the otlp gRPC exporter into the loadgen's h2c null sink (answers OK
without parsing). Timed from the moment the file appears until the
exporter has sent every record; MiB/s and lines/s of the file, agent CPU
seconds per million lines, peak RSS. The files are generated once and
kept under the bench output folder."""
import json
import os
import time

LINE = 300


def make_lines(path, lines, cri):
    """A file of `lines` lines of exactly LINE bytes (newline included),
    shaped like a service's structured access log."""
    if os.path.exists(path) and os.path.getsize(path) == lines * LINE:
        return
    tmp = path + ".tmp"
    prefix = "2025-11-25T10:00:00.123456789Z stdout F " if cri else ""
    with open(tmp, "w") as f:
        chunk = []
        for i in range(lines):
            doc = ('{"level":"info","time":"2025-11-25T10:00:00.%03dZ","msg":"GET /api/v1/orders/%d 200",'
                   '"service":"checkout","trace_id":"4bf92f3577b34da6a3ce929d0e0e%04x",'
                   '"span_id":"00f067aa0ba902b7","user":{"id":%d,"region":"eu-west-1"},'
                   '"duration_ms":%d.%d,"n":%d,"pad":"' % (i % 1000, i, i % 65536, i % 9973,
                                                          i % 97, i % 10, i))
            line = prefix + doc
            pad = LINE - len(line) - 3
            chunk.append(line + "x" * pad + '"}\n')
            if len(chunk) == 4096:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    os.replace(tmp, path)


def config(watch, sink_port, tel_port, telemetry_yaml, batch):
    return (f"receivers:\n  jsonlog:\n    include: [\"{watch}/*.log\"]\n"
            "    start_at: beginning\n    poll_interval: 10ms\n"
            "processors:\n" + batch +
            "exporters:\n  otlp:\n"
            f"    endpoint: 127.0.0.1:{sink_port}\n"
            "    tls:\n      insecure: true\n    compression: none\n"
            "service:\n  pipelines:\n    logs:\n      receivers: [jsonlog]\n"
            "      processors: [batch]\n      exporters: [otlp]\n" + telemetry_yaml(tel_port))


def scenario(bench, sc, row, b):
    """b: the bench module (its Agent, Sink and helpers)."""
    workdir = os.path.join(bench.out, sc["key"])
    watch = os.path.join(workdir, "watch")
    os.makedirs(watch, exist_ok=True)
    for n in os.listdir(watch):
        os.unlink(os.path.join(watch, n))
    lines = 20000 if bench.smoke else int(os.environ.get("BENCH_JSONLOG_LINES", "3500000"))
    src = os.path.join(bench.out, f"jsonlog-{'cri' if sc['cri'] else 'plain'}-{lines}.log")
    make_lines(src, lines, sc["cri"])
    size = os.path.getsize(src)
    row["loadavg_start"] = round(os.getloadavg()[0], 2)
    sink_port, tel = b.free_port(), b.free_port()
    path = os.path.join(workdir, "agent.yaml")
    with open(path, "w") as f:
        f.write(config(watch, sink_port, tel, b.telemetry_yaml, b.BATCH))
    agent = sink = None
    try:
        bench.validate(path)
        sink = b.Sink(bench.loadgen, sink_port, workdir, 1, grpc=True, walk=False)
        if not sink.wait_ready([sink_port]):
            raise RuntimeError(f"sink did not start: {sink.log_tail()}")
        agent = b.Agent(bench.otelite, path, workdir, "agent", 0, tel)
        if not agent.wait_ready([]):
            raise RuntimeError(f"agent did not start: {agent.log_tail()}")
        cpu0, busy0 = b.proc_cpu(agent.pid), b.machine_busy_s()
        t0 = time.time()
        os.link(src, os.path.join(watch, "bench.log"))
        sent = 0
        deadline = t0 + max(120.0, lines / 20000.0)
        while time.time() < deadline:
            sent = agent.counter("otelite_exporter_sent_log_records_total") or 0
            if sent >= lines:
                break
            time.sleep(0.02)
        t1 = time.time()
        cpu = b.proc_cpu(agent.pid) - cpu0
        busy = b.machine_busy_s() - busy0
        el = t1 - t0
        row.update(items_sent=lines, items_delivered=sent, items_lost=lines - sent,
                   items_refused=agent.counter("otelite_jsonlog_records_refused_total") or 0,
                   refused_by_code={}, p99_ms=0.0, seconds=round(el, 3),
                   items_per_s=round(lines / el), mib_per_s=round(size / el / 2**20, 1),
                   agent_cpu_s=round(cpu, 3), cpu_s_per_million=round(cpu / lines * 1e6, 3),
                   mib_per_cpu_s=round(size / 2**20 / cpu, 1) if cpu else None,
                   others_cores=round(max(0.0, (busy - cpu)) / el - 1.0, 2) if el else 0,
                   peak_rss_mib=b.proc_status(agent.pid, "VmHWM"),
                   extra_note=(f"{size / el / 2**20:,.0f} MiB/s of the file, "
                               f"{size / 2**20 / cpu if cpu else 0:,.0f} MiB per agent CPU-second, "
                               f"{lines:,} lines of {LINE} B"))
        if sent < lines:
            row.update(status="failed", reason=f"{sent} of {lines} records sent in {el:.0f} s")
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
