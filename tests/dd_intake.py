"""A Datadog intake on loopback for the `datadog` exporter's tests, written
from Datadog's public API documentation, not from the exporter:

- POST /api/v2/series: JSON {"series": [{metric, type (0 unspecified,
  1 count, 2 rate, 3 gauge), points [{timestamp (s), value}], resources
  [{name, type}], tags [str], interval?, unit?}]}, answered 202.
- POST /api/beta/sketches: protobuf SketchPayload (sketches = 1; Sketch:
  metric 1, host 2, tags 4, dogsketches 7; Dogsketch: ts 1, cnt 2, min 3,
  max 4, avg 5, sum 6, k 7 (sint32, packed), n 8 (uint32, packed)),
  decoded here by a small hand-written protobuf reader.
- POST /api/v2/logs: a JSON array of log objects, answered 202.
- Limits: series and sketch requests at most 512 KB compressed and 5 MiB
  raw; logs at most 5 MB and 1000 entries a request, 1 MB an entry.
- POST /v0.4/traces (the trace agent): msgpack, an array of traces, each an
  array of span maps; X-Datadog-Trace-Count must be the number of traces.
- GET /api/v1/validate: {"valid": true}, or 403 for a wrong key.

Every request needs DD-API-KEY equal to the key given (else 403, as
Datadog answers). Bodies are decoded by their Content-Encoding (gzip,
deflate, zstd). Each request is kept with its headers and decoded body,
and every schema problem found goes to `problems`, which a test asserts
empty. Modes: `answers[path]` is a list of statuses to give, in order,
before the normal answer (with Retry-After on 429 and 503), and
`max_items[path]` answers 413 to any request holding more items."""
import gzip
import http.server
import json
import math
import struct
import threading
import time
import zlib

import msgpack  # Debian python3-msgpack
import zstandard  # Debian python3-zstandard


# ---- protobuf, by hand -------------------------------------------------------

def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def _fields(b):
    """(field number, wire type, value) of a message; value is an int for
    varints, bytes for length-delimited, raw bytes for fixed64/32."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def _zigzag(v):
    return (v >> 1) ^ -(v & 1)


def _signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed(v, wt, signed):
    if wt == 0:
        vals = [v]
    else:
        vals, i = [], 0
        while i < len(v):
            x, i = _varint(v, i)
            vals.append(x)
    return [_zigzag(x) for x in vals] if signed else vals


def decode_sketch_payload(b):
    out = []
    for num, wt, v in _fields(b):
        if num != 1:
            continue
        sk = {"metric": "", "host": "", "tags": [], "dogsketches": []}
        for n2, w2, v2 in _fields(v):
            if n2 == 1:
                sk["metric"] = v2.decode()
            elif n2 == 2:
                sk["host"] = v2.decode()
            elif n2 == 4:
                sk["tags"].append(v2.decode())
            elif n2 == 7:
                d = {"ts": 0, "cnt": 0, "min": 0.0, "max": 0.0, "avg": 0.0, "sum": 0.0,
                     "k": [], "n": []}
                for n3, w3, v3 in _fields(v2):
                    if n3 in (1, 2):
                        d["ts" if n3 == 1 else "cnt"] = _signed64(v3)
                    elif n3 in (3, 4, 5, 6):
                        d[{3: "min", 4: "max", 5: "avg", 6: "sum"}[n3]] = struct.unpack("<d", v3)[0]
                    elif n3 == 7:
                        d["k"] += _packed(v3, w3, True)
                    elif n3 == 8:
                        d["n"] += _packed(v3, w3, False)
                sk["dogsketches"].append(d)
        out.append(sk)
    return out


# DDSketch as Datadog maps it: relative accuracy 1/128, min 1e-9.
GAMMA_LN = math.log1p(2 / 128)
BIAS = 1 - math.floor(math.log(1e-9) / GAMMA_LN)


def key_lower(k):
    """The lowest value of a sketch key's bin."""
    if k == 0:
        return 0.0
    if k < 0:
        return -key_lower(-k) * math.exp(GAMMA_LN)
    return math.exp((k - BIAS) * GAMMA_LN)


def sketch_quantile(d, q):
    """The value at quantile q of a decoded Dogsketch (a bin's midpoint)."""
    total = sum(d["n"])
    rank = q * (total - 1)
    cum = 0
    for k, n in sorted(zip(d["k"], d["n"])):
        cum += n
        if cum > rank:
            lo = key_lower(k)
            return min(max(lo * (1 + 1 / 128), d["min"]), d["max"])
    return d["max"]


# ---- schemas ------------------------------------------------------------------

def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_series(doc):
    p = []
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), list):
        return ["series body is not {\"series\": [...]}"]
    for s in doc["series"]:
        if not isinstance(s.get("metric"), str) or not s["metric"]:
            p.append(f"series without metric: {s}")
        if s.get("type") not in (0, 1, 2, 3):
            p.append(f"bad type: {s}")
        pts = s.get("points")
        if not isinstance(pts, list) or not pts:
            p.append(f"no points: {s}")
        for pt in pts or []:
            if not isinstance(pt.get("timestamp"), int) or not _is_num(pt.get("value")):
                p.append(f"bad point: {pt}")
            elif pt["timestamp"] < 1_000_000_000 or pt["timestamp"] > 10_000_000_000:
                p.append(f"timestamp not in seconds: {pt}")
        for r in s.get("resources", []):
            if not isinstance(r.get("name"), str) or not isinstance(r.get("type"), str):
                p.append(f"bad resource: {r}")
        if not all(isinstance(t, str) for t in s.get("tags", [])):
            p.append(f"bad tags: {s}")
        if "interval" in s and not isinstance(s["interval"], int):
            p.append(f"bad interval: {s}")
    return p


def check_logs(doc):
    if not isinstance(doc, list):
        return ["logs body is not an array"]
    p = []
    for e in doc:
        if not isinstance(e, dict):
            p.append(f"log entry not an object: {e!r}")
            continue
        if not isinstance(e.get("message", ""), str):
            p.append(f"message not a string: {e}")
        for k in ("ddsource", "ddtags", "hostname", "service", "status"):
            if k in e and not isinstance(e[k], str):
                p.append(f"{k} not a string: {e}")
        if "timestamp" in e and not isinstance(e["timestamp"], int):
            p.append(f"timestamp not an integer: {e}")
    return p


SPAN_TYPES = {"service": str, "name": str, "resource": str, "trace_id": int, "span_id": int,
              "parent_id": int, "start": int, "duration": int, "error": int, "meta": dict,
              "metrics": dict, "type": str}


def check_traces(doc, count_header):
    if not isinstance(doc, list):
        return ["traces body is not an array"]
    p = []
    if count_header != str(len(doc)):
        p.append(f"X-Datadog-Trace-Count {count_header!r} for {len(doc)} traces")
    for tr in doc:
        if not isinstance(tr, list) or not tr:
            p.append(f"trace is not a non-empty array: {tr!r}")
            continue
        ids = {s.get("trace_id") for s in tr}
        if len(ids) != 1:
            p.append(f"one trace with several trace ids: {ids}")
        for s in tr:
            for k, t in SPAN_TYPES.items():
                if not isinstance(s.get(k), t):
                    p.append(f"span field {k} is not {t.__name__}: {s}")
            for k, v in (s.get("meta") or {}).items():
                if not isinstance(k, str) or not isinstance(v, str):
                    p.append(f"meta {k!r}: {v!r} is not str: str")
            for k, v in (s.get("metrics") or {}).items():
                if not isinstance(k, str) or not isinstance(v, float):
                    p.append(f"metrics {k!r}: {v!r} is not str: float")
            if not 0 <= s.get("trace_id", -1) < 1 << 64:
                p.append(f"trace_id out of uint64: {s}")
    return p


# ---- the server ------------------------------------------------------------------

def _decompress(enc, body):
    if enc in (None, "", "identity"):
        return body
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    if enc == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    raise ValueError(f"unknown Content-Encoding {enc}")


class Intake:
    def __init__(self, port, api_key="test-key"):
        self.port = port
        self.api_key = api_key
        self.requests = []  # dicts: path, headers, raw_len, body_len, doc
        self.problems = []
        self.answers = {}
        self.max_items = {}
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        intake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, body=b"{}", headers=()):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/api/v1/validate":
                    if self.headers.get("DD-API-KEY") != intake.api_key:
                        return self._reply(403, b'{"errors":["Forbidden"]}')
                    return self._reply(200, b'{"valid":true}')
                self._reply(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                intake.handle(self, raw)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, h, raw):
        path = h.path
        if path not in ("/api/v2/series", "/api/beta/sketches", "/api/v2/logs", "/v0.4/traces"):
            return h._reply(404)
        headers = {k.lower(): v for k, v in h.headers.items()}
        key = headers.get("dd-api-key")
        if key != self.api_key:
            with self.lock:
                self.requests.append({"path": path, "headers": headers, "status": 403})
            return h._reply(403, b'{"errors":["Forbidden"]}')
        with self.lock:
            queued = self.answers.get(path)
            forced = queued.pop(0) if queued else None
        try:
            body = _decompress(headers.get("content-encoding"), raw)
            if path == "/api/v2/series":
                doc = json.loads(body)
                probs, items = check_series(doc), len(doc.get("series", []))
                ctype = "application/json"
            elif path == "/api/v2/logs":
                doc = json.loads(body)
                probs, items = check_logs(doc), len(doc)
                ctype = "application/json"
            elif path == "/api/beta/sketches":
                doc = decode_sketch_payload(body)
                probs, items = [], len(doc)
                ctype = "application/x-protobuf"
            else:
                doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
                probs = check_traces(doc, headers.get("x-datadog-trace-count"))
                items = len(doc)
                ctype = "application/msgpack"
            if headers.get("content-type") != ctype:
                probs.append(f"{path}: Content-Type {headers.get('content-type')!r}, want {ctype}")
        except Exception as e:  # a body the docs' format does not describe
            with self.lock:
                self.problems.append(f"{path}: cannot decode: {e!r}")
            return h._reply(400, b'{"errors":["bad payload"]}')
        # the documented limits of a request
        if path in ("/api/v2/series", "/api/beta/sketches"):
            if len(raw) > 512_000:
                probs.append(f"{path}: {len(raw)} bytes compressed, over 512 KB")
            if len(body) > 5 * 1024 * 1024:
                probs.append(f"{path}: {len(body)} bytes, over 5 MiB")
        if path == "/api/v2/logs":
            if len(body) > 5_000_000 or items > 1000:
                probs.append(f"logs request of {len(body)} bytes and {items} entries")
            for e in doc:
                if len(json.dumps(e, ensure_ascii=False).encode()) > 1_000_000:
                    probs.append("a log entry over 1 MB")
        status = forced or 202
        if not forced and self.max_items.get(path) and items > self.max_items[path]:
            status = 413
        if path == "/v0.4/traces" and status == 202:
            status = 200
        rec = {"path": path, "headers": headers, "raw_len": len(raw), "body_len": len(body),
               "doc": doc, "items": items, "status": status, "time": time.time()}
        with self.lock:
            self.requests.append(rec)
            if status < 300:
                self.problems.extend(probs)
        extra = [("Retry-After", "1")] if status in (429, 503) else []
        body_out = b'{"rate_by_service":{}}' if path == "/v0.4/traces" else b"{}"
        h._reply(status, body_out if status < 300 else b'{"errors":["refused"]}', extra)

    # ---- what arrived ----

    def accepted(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path and r["status"] < 300]

    def series(self):
        return [s for r in self.accepted("/api/v2/series") for s in r["doc"]["series"]]

    def sketches(self):
        return [s for r in self.accepted("/api/beta/sketches") for s in r["doc"]]

    def logs(self):
        return [e for r in self.accepted("/api/v2/logs") for e in r["doc"]]

    def spans(self):
        return [s for r in self.accepted("/v0.4/traces") for t in r["doc"] for s in t]

    def wait(self, what, cond, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; requests: "
                             f"{[(r['path'], r.get('status'), r.get('items')) for r in self.requests]}")
