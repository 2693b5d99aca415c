"""What the loadbalancing end-to-end tests share: gateway otelites (OTLP/gRPC
receiver → file exporter), the agent's config, the load generator, and the
reading of what each gateway wrote (trace ids and loadgen.seq per span,
with Python's own JSON decoder)."""
import collections
import json
import os
import subprocess
import time

from conftest import ROOT, free_port, http_get, wait_for

LOADGEN = os.environ.get("OTELITE_LOADGEN", os.path.join(ROOT, "build", "otelite-loadgen"))


class Gateway:
    def __init__(self, agent_factory, tmp_path, name, host="127.0.0.1", port=None):
        self.host = host
        self.port = port or free_port()
        self.tel = free_port()
        self.path = tmp_path / f"{name}.jsonl"
        self.name = name
        self.agent = agent_factory(f"""
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: {self.host}:{self.port} }}
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
        return f"{self.host}:{self.port}"

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
    return wait_for(done, timeout, f"{n} spans at the gateways")


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


class DnsServer:
    """A DNS server on a loopback UDP port, written from RFC 1035: it
    answers A questions for one name with the addresses in self.addrs (a
    list the test changes), AAAA with no records, other names NXDOMAIN."""

    def __init__(self, name):
        import socket
        import threading
        self.name = name.lower().rstrip(".")
        self.addrs = []
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def set(self, addrs):
        with self.lock:
            self.addrs = list(addrs)

    @staticmethod
    def _qname(msg, off):
        labels = []
        while True:
            n = msg[off]
            off += 1
            if n == 0:
                return ".".join(labels), off
            labels.append(msg[off:off + n].decode("ascii"))
            off += n

    def _serve(self):
        import socket
        import struct
        while not self.stopped:
            try:
                msg, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if len(msg) < 12:
                continue
            qid, flags, qd = struct.unpack("!HHH", msg[:6])
            if flags & 0x8000 or qd != 1:
                continue
            name, off = self._qname(msg, 12)
            qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
            question = msg[12:off + 4]
            with self.lock:
                self.queries += 1
                addrs = list(self.addrs)
            answers = b""
            rcode = 0
            if name.lower() != self.name:
                rcode = 3
            elif qtype == 1:
                for a in addrs:
                    # the owner name as a pointer to the question (offset 12)
                    answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(a)
            count = len(answers) // 16
            header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0)
            self.sock.sendto(header + question + answers, peer)

    def close(self):
        self.stopped = True
        self.sock.close()


def check_exactly_once(gateways, acked):
    per = {g.name: g.spans() for g in gateways}
    seqs = collections.Counter(s for spans in per.values() for _, s in spans)
    dups = [s for s, c in seqs.items() if c > 1]
    assert not dups, f"{len(dups)} spans arrived twice, e.g. {dups[:5]}"
    assert len(seqs) == acked, f"{acked} acknowledged, {len(seqs)} arrived"
    assert sorted(seqs) == list(range(acked))
    return per


def trace_homes(per):
    """trace id -> the set of gateways that got any of its spans."""
    homes = collections.defaultdict(set)
    for name, spans in per.items():
        for t, _ in spans:
            homes[t].add(name)
    return homes
