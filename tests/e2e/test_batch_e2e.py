"""The batch and memory_limiter processors in the real binary: OTLP/HTTP
JSON in, file out. Batching joins many small requests into few lines with
every span present once; a lone request still comes out after the timeout;
metadata_keys keeps tenants apart; a flood against a tiny memory limit is
answered 503/429 while the agent's RSS stays under the hard limit, and data
is accepted again once memory is released."""
import collections
import json
import socket
import threading
import time

import pytest

from conftest import free_port, http_post, read_json_lines, wait_for


def spans_body(names, service="checkout", attrs=0, resource_attrs=None):
    spans = []
    for i, n in enumerate(names):
        spans.append({
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "%016x" % (abs(hash(n)) & 0xFFFFFFFFFFFFFFFF or 1),
            "name": n,
            "kind": 2,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "attributes": [{"key": "k%d" % a, "value": {"stringValue": "v" * 64}}
                           for a in range(attrs)],
        })
    res = [{"key": "service.name", "value": {"stringValue": service}}]
    for k, v in (resource_attrs or {}).items():
        res.append({"key": k, "value": {"stringValue": v}})
    return {"resourceSpans": [{"resource": {"attributes": res},
                               "scopeSpans": [{"scope": {"name": "e2e"}, "spans": spans}]}]}


def post(port, body, headers=None, timeout=10):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return http_post(f"http://127.0.0.1:{port}/v1/traces", data, h, timeout)[0]


def span_names(line):
    out = []
    for rs in line.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            out += [s["name"] for s in ss.get("spans", [])]
    return out


def wait_spans(path, n, timeout=10.0):
    def enough():
        lines = read_json_lines(path)
        return lines if sum(len(span_names(l)) for l in lines) >= n else None
    return wait_for(enough, timeout, f"{n} spans in {path}")


CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        {http_extra}
processors:
  batch:
{batch}
exporters:
  file:
    path: {out}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def start_batch_agent(agent_factory, tmp_path, batch_yaml, http_extra=""):
    http, tel = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    text = CONFIG.format(http=http, tel=tel, out=out, batch=batch_yaml, http_extra=http_extra)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    return a, http, tel, out


def test_many_one_span_requests_become_few_lines(agent_factory, tmp_path):
    a, http, tel, out = start_batch_agent(
        agent_factory, tmp_path, "    send_batch_size: 20\n    timeout: 1s\n")
    names = [f"span-{i}" for i in range(50)]
    for n in names:
        assert post(http, spans_body([n])) == 200
    lines = wait_spans(out, 50)
    got = [n for l in lines for n in span_names(l)]
    assert sorted(got) == sorted(names), "every span exactly once"
    # 20 + 20 by size, the last 10 by the timeout.
    assert len(lines) == 3, [len(span_names(l)) for l in lines]
    assert [len(span_names(l)) for l in lines[:2]] == [20, 20]
    # Each request keeps its resource: 20 resource entries in a 20-span line.
    assert len(lines[0]["resourceSpans"]) == 20
    assert a.stop() == 0


def test_a_lone_request_comes_out_after_the_timeout(agent_factory, tmp_path):
    a, http, tel, out = start_batch_agent(
        agent_factory, tmp_path, "    send_batch_size: 1000\n    timeout: 400ms\n")
    t0 = time.time()
    assert post(http, spans_body(["alone"])) == 200
    lines = wait_spans(out, 1, timeout=5)
    took = time.time() - t0
    assert 0.3 <= took < 5, took
    assert len(lines) == 1 and span_names(lines[0]) == ["alone"]
    assert a.stop() == 0


def test_shutdown_flushes_held_spans(agent_factory, tmp_path):
    a, http, tel, out = start_batch_agent(
        agent_factory, tmp_path, "    send_batch_size: 1000\n    timeout: 1h\n")
    for i in range(5):
        assert post(http, spans_body([f"held-{i}"])) == 200
    time.sleep(0.2)
    assert read_json_lines(out) == []
    assert a.stop() == 0
    lines = read_json_lines(out)
    assert len(lines) == 1
    assert sorted(span_names(lines[0])) == [f"held-{i}" for i in range(5)]


def test_metadata_keys_keep_tenants_apart(agent_factory, tmp_path):
    a, http, tel, out = start_batch_agent(
        agent_factory, tmp_path,
        "    send_batch_size: 1000\n    timeout: 300ms\n    metadata_keys: [X-Tenant]\n",
        http_extra="include_metadata: true")
    for i, t in enumerate(["a", "b", "a", "b", "a"]):
        body = spans_body([f"{t}-{i}"], resource_attrs={"tenant": t})
        assert post(http, body, headers={"X-Tenant": t}) == 200
    lines = wait_spans(out, 5)
    assert len(lines) == 2
    for l in lines:
        tenants = {attr["value"]["stringValue"]
                   for rs in l["resourceSpans"] for attr in rs["resource"]["attributes"]
                   if attr["key"] == "tenant"}
        assert len(tenants) == 1, l
        t = tenants.pop()
        assert sorted(span_names(l)) == sorted(
            f"{x}-{i}" for i, x in enumerate(["a", "b", "a", "b", "a"]) if x == t)
    assert a.stop() == 0


def test_invalid_batch_config_is_refused(agent_factory, tmp_path):
    from conftest import run_cli
    http, tel = free_port(), free_port()
    text = CONFIG.format(http=http, tel=tel, out=tmp_path / "o", http_extra="",
                         batch="    send_batch_size: 100\n    send_batch_max_size: 10\n")
    (tmp_path / "bad.yaml").write_text(text)
    r = run_cli("validate", "--config", str(tmp_path / "bad.yaml"))
    assert r.returncode == 1
    assert "processors.batch.send_batch_max_size: must be 0 (no limit) or at least " \
           "send_batch_size (100); found 10" in r.stderr, r.stderr


# ---- memory_limiter ------------------------------------------------------

LIMITER = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
  memory_limiter:
    check_interval: 50ms
    limit_mib: {limit}
    spike_limit_mib: {spike}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{hole}
    timeout: 60s
    sending_queue:
      queue_size: 100000
      queue_size_bytes: 0
      num_consumers: 1
    retry_on_failure:
      enabled: false
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlphttp]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024.0
    return 0.0


def test_memory_limiter_pushes_back_and_recovers(agent_factory, tmp_path):
    """The exporter sends to a port that listens but never answers, so its
    (unbounded) queue holds every accepted request: only the memory limiter
    stands between the flood and the agent's memory. Bound stated: the
    resident set stays under the hard limit (limit_mib = 100 MiB) through
    the flood; the soft limit is 60 MiB."""
    limit, spike = 100, 40
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", 0))
    hole.listen(128)
    http, tel = free_port(), free_port()
    text = LIMITER.format(http=http, tel=tel, hole=hole.getsockname()[1], limit=limit,
                          spike=spike)
    a = agent_factory(text).start(wait_url=f"http://127.0.0.1:{tel}/readyz")
    pid = a.proc.pid
    with open(f"/proc/{pid}/maps") as f:
        if "libasan" in f.read():
            hole.close()
            pytest.skip("RSS bounds do not hold under AddressSanitizer (shadow, quarantine)")

    body = json.dumps(spans_body([f"flood-{j}" for j in range(200)], attrs=8)).encode()
    codes = collections.Counter()
    peak = [0.0]
    stop = threading.Event()
    lock = threading.Lock()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.005)

    def flood(n):
        for _ in range(n):
            c = post(http, body)
            with lock:
                codes[c] += 1

    w = threading.Thread(target=watch)
    w.start()
    senders = [threading.Thread(target=flood, args=(250,)) for _ in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    w.join()

    refused = codes[503] + codes[429]
    assert refused > 0, f"never pushed back: {dict(codes)}, peak RSS {peak[0]:.1f} MiB"
    assert codes[200] > 0, dict(codes)
    assert set(codes) <= {200, 429, 503}, dict(codes)
    assert peak[0] < limit, f"RSS peaked at {peak[0]:.1f} MiB, hard limit {limit} MiB"

    # Release what the exporter holds (its sends fail, retries are off),
    # and the agent takes data again.
    hole.close()
    deadline = time.time() + 15
    status = None
    while time.time() < deadline:
        status = post(http, spans_body(["after"]))
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200, f"still refused after memory was released; RSS {rss_mib(pid):.1f} MiB"
    assert "memory use above the soft limit; refusing data" in a.log()
    assert "memory use below the soft limit again; accepting data" in a.log()
    assert a.stop() == 0
