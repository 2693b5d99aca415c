"""The `prometheus` exporter in the real binary: OTLP/HTTP (JSON and protobuf)
in, scrapes with urllib out, every text response checked by `promtool check
metrics`; gzip, OpenMetrics, basic auth, TLS, the series cap, expiry with
nobody scraping, the duplicate-listener check; and a real Prometheus server
(Debian's) scraping the exporter in text and OpenMetrics, read back through
its HTTP API."""
import gzip
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import TestCA, export_classes, free_port, http_get, http_post, post_json, run_cli, wait_for


def sattr(k, v):
    return {"key": k, "value": {"stringValue": v}}


RESOURCE = {"attributes": [sattr("service.name", "api"), sattr("service.instance.id", "i1"),
                           sattr("host.name", "node1")]}


TRACE_ID, SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def metrics_body(t, delta_value=2):
    """One of each OTLP metric type; t is the point time (s), delta_value the
    delta counter's increment."""
    ts = str(int(t * 1e9))
    return {"resourceMetrics": [{
        "resource": RESOURCE,
        "scopeMetrics": [{"scope": {"name": "e2e", "version": "1.0"}, "metrics": [
            {"name": "http.requests", "description": "Requests served.", "unit": "{request}",
             "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                 {"asInt": "7", "startTimeUnixNano": "1", "timeUnixNano": ts,
                  "attributes": [sattr("http.method", "GET")],
                  "exemplars": [{"asDouble": 1, "timeUnixNano": ts, "traceId": TRACE_ID,
                                 "spanId": SPAN_ID}]}]}},
            {"name": "jobs.done", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                                          "dataPoints": [{"asInt": str(delta_value),
                                                          "timeUnixNano": ts}]}},
            {"name": "queue.change", "sum": {"aggregationTemporality": 1, "isMonotonic": False,
                                             "dataPoints": [{"asDouble": -1.5,
                                                             "timeUnixNano": ts}]}},
            {"name": "mem.used", "unit": "By", "gauge": {"dataPoints": [
                {"asDouble": 1048576, "timeUnixNano": ts}]}},
            {"name": "cpu.utilization", "unit": "1", "gauge": {"dataPoints": [
                {"asDouble": 0.25, "timeUnixNano": ts}]}},
            {"name": "lat", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [
                {"count": "3", "sum": 1.5, "bucketCounts": ["1", "1", "1"],
                 "explicitBounds": [0.1, 1], "startTimeUnixNano": "1", "timeUnixNano": ts}]}},
            {"name": "size", "unit": "By", "exponentialHistogram": {
                "aggregationTemporality": 2, "dataPoints": [
                    {"count": "4", "sum": 10, "scale": 0, "zeroCount": "1",
                     "positive": {"offset": 0, "bucketCounts": ["1", "2"]},
                     "startTimeUnixNano": "1", "timeUnixNano": ts}]}},
            {"name": "rpc", "unit": "s", "summary": {"dataPoints": [
                {"count": "2", "sum": 3, "timeUnixNano": ts,
                 "quantileValues": [{"quantile": 0.5, "value": 1}, {"quantile": 0.99, "value": 2}]}]}},
        ]}],
    }]}


def config(http, prom, tel, extra="", exporters=None):
    exporters = exporters or f"prometheus:\n    endpoint: 127.0.0.1:{prom}\n{extra}"
    names = [l.strip()[:-1] for l in exporters.splitlines()
             if l.strip().endswith(":") and not l.startswith("   ")]
    return f"""\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  {exporters}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [{", ".join(names)}]
  telemetry:
    metrics:
      endpoint: 127.0.0.1:{tel}
"""


def promtool_check(text):
    """promtool check metrics on text: the only complaint allowed is the unit
    lint on names the compatibility rules dictate."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode()
    bad = [l for l in out.splitlines() if l.strip() and "use base unit" not in l]
    assert not bad, out
    return out


def scrape(port, headers=None, ctx=None, scheme="http"):
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/metrics", headers=headers or {})
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        return r.status, dict(r.headers), r.read()


def tel_value(port, name, exporter="prometheus"):
    _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(f'{name}{{exporter="{exporter}"}} '):
            return float(line.split()[-1])
    return None


@pytest.fixture
def ports():
    return free_port(), free_port(), free_port()


def start(agent_factory, cfg, tel):
    return agent_factory(cfg).start(wait_url=f"http://127.0.0.1:{tel}/readyz")


L = 'job="api",instance="i1",otel_scope_name="e2e",otel_scope_version="1.0"'


def test_text_scrape_every_type_and_promtool(agent_factory, ports):
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel), tel)
    now = time.time()
    assert post_json(http, "/v1/metrics", metrics_body(now, 2))[0] == 200
    assert post_json(http, "/v1/metrics", metrics_body(now + 1, 3))[0] == 200
    status, headers, body = scrape(prom)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for line in [
        "# HELP http_requests_total Requests served.",
        "# TYPE http_requests_total counter",
        f'http_requests_total{{http_method="GET",{L}}} 7',
        f"jobs_done_total{{{L}}} 5",          # delta monotonic, accumulated
        f"queue_change{{{L}}} -3",            # delta non-monotonic, accumulated, a gauge
        f"mem_used_bytes{{{L}}} 1048576",
        f"cpu_utilization_ratio{{{L}}} 0.25",
        f'lat_seconds_bucket{{{L},le="0.1"}} 1',
        f'lat_seconds_bucket{{{L},le="1"}} 2',
        f'lat_seconds_bucket{{{L},le="+Inf"}} 3',
        f"lat_seconds_sum{{{L}}} 1.5",
        f"lat_seconds_count{{{L}}} 3",
        f'size_bytes_bucket{{{L},le="4"}} 4',
        f'rpc_seconds{{{L},quantile="0.99"}} 2',
        f"rpc_seconds_count{{{L}}} 2",
        'target_info{job="api",instance="i1",host_name="node1"} 1',
    ]:
        assert line + "\n" in text, f"{line!r} not in\n{text}"
    assert text.count("# TYPE lat_seconds ") == 1
    promtool_check(text)
    # gzip when asked, the same text
    status, headers, gz = scrape(prom, {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(gz).decode() == text
    # OpenMetrics is off unless enabled: text still
    _, headers, _ = scrape(prom, {"Accept": "application/openmetrics-text;version=1.0.0"})
    assert headers["Content-Type"].startswith("text/plain")
    assert tel_value(tel, "otelite_exporter_prometheus_series") == 8
    assert tel_value(tel, "otelite_exporter_prometheus_scrapes_total") == 3


def test_protobuf_in_and_openmetrics_out(agent_factory, ports, otlp_pb2):
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel, "    enable_open_metrics: true\n"), tel)
    Req, _ = export_classes(otlp_pb2, "metrics")
    r = Req()
    rm = r.resource_metrics.add()
    a = rm.resource.attributes.add()
    a.key, a.value.string_value = "service.name", "pb"
    m = rm.scope_metrics.add().metrics.add()
    m.name, m.unit = "net.io", "By"
    m.sum.aggregation_temporality, m.sum.is_monotonic = 2, True
    p = m.sum.data_points.add()
    p.as_int = 42
    st, _, _ = http_post(f"http://127.0.0.1:{http}/v1/metrics", r.SerializeToString(),
                         {"Content-Type": "application/x-protobuf"})
    assert st == 200
    _, headers, body = scrape(prom, {"Accept": "application/openmetrics-text;version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE net_io_bytes counter\n# UNIT net_io_bytes bytes\n" in text
    assert 'net_io_bytes_total{job="pb"} 42\n' in text
    post_json(http, "/v1/metrics", metrics_body(time.time()))
    _, _, body = scrape(prom, {"Accept": "application/openmetrics-text;version=1.0.0"})
    assert (f'http_requests_total{{http_method="GET",{L}}} 7 # {{trace_id="{TRACE_ID}",'
            f'span_id="{SPAN_ID}"}} 1 ') in body.decode()
    _, _, body = scrape(prom)
    promtool_check(body.decode())


def test_expiry_without_any_scrape(agent_factory, ports):
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel, "    metric_expiration: 1s\n"), tel)
    assert post_json(http, "/v1/metrics", metrics_body(time.time()))[0] == 200
    assert tel_value(tel, "otelite_exporter_prometheus_series") == 8
    # nobody scrapes the exporter: the timer alone removes the series
    wait_for(lambda: tel_value(tel, "otelite_exporter_prometheus_series") == 0, 10, "expiry")
    assert tel_value(tel, "otelite_exporter_prometheus_series_expired_total") == 8
    assert tel_value(tel, "otelite_exporter_prometheus_scrapes_total") == 0
    _, _, body = scrape(prom)
    assert body == b""


def test_series_cap(agent_factory, ports):
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel, "    max_series: 2\n"), tel)

    def gauge(vals):
        return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {
            "dataPoints": [{"asInt": str(v), "attributes": [sattr("k", k)]} for k, v in vals]}}]}]}]}
    post_json(http, "/v1/metrics", gauge([("a", 1), ("b", 1), ("c", 1)]))
    post_json(http, "/v1/metrics", gauge([("a", 5)]))
    text = scrape(prom)[2].decode()
    assert 'g{k="a"} 5\n' in text and 'g{k="b"} 1\n' in text and 'k="c"' not in text
    assert tel_value(tel, "otelite_exporter_prometheus_series_refused_total") == 1
    assert tel_value(tel, "otelite_exporter_prometheus_series") == 2
    promtool_check(text)


def test_basic_auth_and_tls(agent_factory, ports, tmp_path, monkeypatch):
    http, prom, tel = ports
    ca = TestCA(tmp_path)
    leaf = ca.leaf("localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    extra = (f"    tls:\n      cert_file: {leaf['cert']}\n      key_file: {leaf['key']}\n"
             "    basic_auth:\n      username: scraper\n      password: ${env:PROM_PW}\n")
    monkeypatch.setenv("PROM_PW", "s3cret")
    start(agent_factory, config(http, prom, tel, extra), tel)
    post_json(http, "/v1/metrics", metrics_body(time.time()))
    ctx = ssl.create_default_context(cafile=ca.ca)
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(prom, ctx=ctx, scheme="https")
    assert e.value.code == 401
    import base64
    auth = "Basic " + base64.b64encode(b"scraper:s3cret").decode()
    status, _, body = scrape(prom, {"Authorization": auth}, ctx=ctx, scheme="https")
    assert status == 200 and b"http_requests_total" in body
    promtool_check(body.decode())


def test_duplicate_listener_is_a_config_error(tmp_path):
    http, tel = free_port(), free_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config(http, http, tel))
    r = run_cli("validate", "--config", str(cfg))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "is also used by" in out and "prometheus" in out, out


# ---- a real Prometheus server ----------------------------------------------

def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        st, body = http_get(url, 5)
    except OSError:  # not listening yet
        return None
    if st != 200:
        return None
    res = json.loads(body)["data"]["result"]
    return [float(r["value"][1]) for r in res] or None


class PromServer:
    """Debian's Prometheus on loopback, scraping targets every second, its
    storage in a temp dir; stopped by stop()."""

    def __init__(self, tmp_path, jobs, features=()):
        self.port = free_port()
        cfg = "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        for job, port in jobs.items():
            cfg += f"  - job_name: {job}\n    static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n"
        d = tmp_path / f"prom-{self.port}"
        d.mkdir()
        (d / "prom.yml").write_text(cfg)
        self.log = open(d / "prometheus.log", "wb")
        args = ["prometheus", f"--config.file={d}/prom.yml", f"--storage.tsdb.path={d}/tsdb",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        args += [f"--enable-feature={f}" for f in features]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        for job in jobs:
            wait_for(lambda: self.query(f'up{{job="{job}"}}') == [1.0], 30, f"{job} up")

    def query(self, q):
        return prom_query(self.port, q)

    def wait_value(self, q, v, timeout=15):
        got = wait_for(lambda: self.query(q), timeout, q)
        assert got == [v], (q, got)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


@pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not installed")
def test_real_prometheus_scrapes_text_and_openmetrics(agent_factory, tmp_path):
    http, text_port, om_port, tel, web = (free_port() for _ in range(5))
    exporters = (f"prometheus/text:\n    endpoint: 127.0.0.1:{text_port}\n"
                 f"  prometheus/om:\n    endpoint: 127.0.0.1:{om_port}\n    enable_open_metrics: true\n")
    start(agent_factory, config(http, 0, tel, exporters=exporters), tel)
    now = time.time()
    post_json(http, "/v1/metrics", metrics_body(now, 2))
    post_json(http, "/v1/metrics", metrics_body(now + 1, 3))
    p = PromServer(tmp_path, {"text": text_port, "om": om_port}, features=["exemplar-storage"])
    web = p.port
    try:
        want = {
            'http_requests_total{job="%s",http_method="GET"}': 7,
            'jobs_done_total{job="%s"}': 5,
            'queue_change{job="%s"}': -3,
            'mem_used_bytes{job="%s"}': 1048576,
            'lat_seconds_count{job="%s"}': 3,
            # OpenMetrics writes le as 1.0, and Prometheus 2 keeps the text as it is
            'lat_seconds_bucket{job="%s",le=~"1|1[.]0"}': 2,
            'lat_seconds_sum{job="%s"}': 1.5,
            'size_bytes_bucket{job="%s",le=~"4|4[.]0"}': 4,
            'rpc_seconds{job="%s",quantile="0.99"}': 2,
            'rpc_seconds_count{job="%s"}': 2,
            'target_info{job="%s",host_name="node1"}': 1,
        }
        for job in ("text", "om"):
            for q, v in want.items():
                got = wait_for(lambda: prom_query(web, q % job), 15, q % job)
                assert got == [v], (q % job, got)
        # the om target was scraped as OpenMetrics (its le is 1.0), the text one as text
        assert prom_query(web, 'lat_seconds_bucket{job="om",le="1.0"}') == [2]
        assert prom_query(web, 'lat_seconds_bucket{job="text",le="1"}') == [2]
        # the target's own job label is kept as exported_job
        assert prom_query(web, 'up{job="text"}') == [1.0]
        assert prom_query(web, 'mem_used_bytes{job="text",exported_job="api",exported_instance="i1"}') == [1048576]
        # the counter's exemplar came through OpenMetrics
        def exemplars():
            url = (f"http://127.0.0.1:{web}/api/v1/query_exemplars?" + urllib.parse.urlencode(
                {"query": 'http_requests_total{job="om"}', "start": now - 3600, "end": time.time() + 60}))
            data = json.loads(http_get(url, 5)[1])["data"]
            return [e for d in data for e in d["exemplars"]]
        ex = wait_for(exemplars, 15, "exemplars")
        assert ex[0]["labels"] == {"trace_id": TRACE_ID, "span_id": SPAN_ID} and ex[0]["value"] == "1"
        # a histogram Prometheus can compute on
        q = prom_query(web, 'histogram_quantile(0.5, lat_seconds_bucket{job="text"})')
        assert q and 0.1 <= q[0] <= 1
    finally:
        p.stop()


@pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not installed")
def test_real_prometheus_scrapes_protobuf_with_native_histograms(agent_factory, tmp_path):
    http, prom, tel = free_port(), free_port(), free_port()
    start(agent_factory, config(http, prom, tel), tel)
    now = time.time()
    post_json(http, "/v1/metrics", metrics_body(now, 2))
    post_json(http, "/v1/metrics", metrics_body(now + 1, 3))
    # a family larger than one part (about 1 MB of protobuf): one MetricFamily
    # written a part at a time, its length worked out by a first walk
    for r in range(4):
        pts = [{"asInt": str(i), "attributes": [sattr("series", f"s-{r}-{i:05d}-" + "x" * 60)]}
               for i in range(2500)]
        body = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": [
            {"name": "many", "gauge": {"dataPoints": pts}}]}]}]}
        assert post_json(http, "/v1/metrics", body)[0] == 200
    _, headers, pb = scrape(prom, {"Accept": "application/vnd.google.protobuf;"
                                             "proto=io.prometheus.client.MetricFamily;encoding=delimited"})
    assert "protobuf" in headers["Content-Type"] and len(pb) > 1024 * 1024
    assert pb.count(b"\n\x04many") == 1  # the family's name field, once
    # with native histograms on, Prometheus asks for the protobuf format first
    p = PromServer(tmp_path, {"pb": prom}, features=["native-histograms"])
    try:
        p.wait_value('count(many{job="pb"})', 10000)
        p.wait_value('many{job="pb",series="s-3-02499-' + "x" * 60 + '"}', 2499)
        for q, v in {
            'http_requests_total{job="pb",http_method="GET"}': 7,
            'jobs_done_total{job="pb"}': 5,
            'queue_change{job="pb"}': -3,
            'mem_used_bytes{job="pb"}': 1048576,
            'lat_seconds_bucket{job="pb",le="1.0"}': 2,  # Prometheus 2 writes a float le so
            'lat_seconds_bucket{job="pb",le="+Inf"}': 3,
            'lat_seconds_count{job="pb"}': 3,
            'rpc_seconds{job="pb",quantile="0.99"}': 2,
            'target_info{job="pb",host_name="node1"}': 1,
            # the exponential histogram, native
            'histogram_count(size_bytes{job="pb"})': 4,
            'histogram_sum(size_bytes{job="pb"})': 10,
            # zero bucket 1, (1,2] 1, (2,4] 2: half the values are at most 2
            'histogram_fraction(0, 2, size_bytes{job="pb"})': 0.5,
        }.items():
            p.wait_value(q, v)
        assert p.query('size_bytes_bucket{job="pb"}') is None  # native, not classic
    finally:
        p.stop()


def test_reload_keeps_series_and_rebinds_a_changed_exporter(agent_factory, ports):
    import signal
    http, prom, tel = ports
    a = start(agent_factory, config(http, prom, tel), tel)
    post_json(http, "/v1/metrics", metrics_body(time.time()))
    # the exporter's config is unchanged (only the telemetry level is): it is kept, series too
    a.config.write_text(config(http, prom, tel).replace(
        "  telemetry:\n", "  telemetry:\n    logs:\n      level: debug\n"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded")
    text = scrape(prom)[2].decode()
    assert f"mem_used_bytes{{{L}}} 1048576\n" in text
    # a changed exporter is a new one on the same port, which it can bind
    a.config.write_text(config(http, prom, tel, "    namespace: app\n"))
    a.signal(signal.SIGHUP)
    a.wait_log("config reloaded", count=2)
    post_json(http, "/v1/metrics", metrics_body(time.time()))
    text = wait_for(lambda: (lambda t: t if "app_mem_used_bytes" in t else None)(
        scrape(prom)[2].decode()), 10, "namespaced series")
    assert "\nmem_used_bytes" not in text
    # target_info takes the namespace as the collector's exporter puts it there
    assert '\napp_target_info{job="api",instance="i1",host_name="node1"} 1\n' in text
    assert "\ntarget_info" not in text
    promtool_check(text)
    assert a.stop() == 0


def test_big_scrape_streams_plain_and_gzip_the_same(agent_factory, ports):
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel), tel)
    for r in range(4):
        pts = [{"asInt": str(i), "attributes": [sattr("series", f"s-{r}-{i:05d}-" + "x" * 40)]}
               for i in range(2500)]
        body = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": [
            {"name": "many", "gauge": {"dataPoints": pts}}]}]}]}
        assert post_json(http, "/v1/metrics", body)[0] == 200
    _, headers, plain = scrape(prom)
    assert int(headers["Content-Length"]) == len(plain) > 3 * 256 * 1024  # several blocks
    _, headers, gz = scrape(prom, {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and len(gz) < len(plain) // 4
    text = gzip.decompress(gz).decode()
    assert text == plain.decode()
    assert text.count("\nmany{") + text.startswith("many{") == 10000
    promtool_check(text)


def test_scrape_over_4_mib_goes_chunked_as_it_is_written(agent_factory, ports):
    """Past 4 MiB the response is written while it is sent, so it has no
    Content-Length; it is the same text as the gzip one, one family."""
    http, prom, tel = ports
    start(agent_factory, config(http, prom, tel), tel)
    for r in range(10):
        pts = [{"asInt": str(i), "attributes": [sattr("series", f"s-{r}-{i:05d}-" + "x" * 60)]}
               for i in range(5000)]
        body = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": [
            {"name": "many", "gauge": {"dataPoints": pts}}]}]}]}
        assert post_json(http, "/v1/metrics", body)[0] == 200
    _, headers, plain = scrape(prom)
    assert "Content-Length" not in headers and len(plain) > 4 * 1024 * 1024
    _, headers, gz = scrape(prom, {"Accept-Encoding": "gzip"})
    text = gzip.decompress(gz).decode()
    assert text == plain.decode()
    assert text.count("# HELP many ") == 1
    assert text.count("\nmany{") + text.startswith("many{") == 50000
    promtool_check(text)
