"""Shared fixtures and helpers for end-to-end tests: the real otelite binary
over real loopback sockets. Each test gets its own ports and temp files."""
import importlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("OTELITE_BIN", os.path.join(ROOT, "build", "otelite"))


_handed_out = set()


def free_port():
    """A loopback port nobody listens on, never the same twice in a session:
    the kernel may hand a just-closed ephemeral port out again, and a test
    that asks for two ports must get two."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def http_get(url, timeout=2.0):
    """(status, body) without raising on HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(url, data, headers=None, timeout=5.0):
    """(status, headers, body) of a POST, without raising on HTTP errors."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post_json(port, path, body, timeout=5.0):
    """body as OTLP JSON to the agent's HTTP receiver: (status, body)."""
    status, _, out = http_post(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                               {"Content-Type": "application/json"}, timeout)
    return status, out


def _sanitized():
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# An ASan build keeps freed memory in quarantine, and valgrind (make
# valgrind sets OTELITE_VALGRIND) its own: RSS bounds say nothing there.
SANITIZED = _sanitized() or bool(os.environ.get("OTELITE_VALGRIND"))


def proc_kib(pid, key):
    """A /proc/PID/status figure in KiB: VmRSS, VmHWM (peak RSS), ..."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


def wait_for(cond, timeout=10.0, what="condition"):
    """cond()'s first true value, polled until timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_json_lines(path):
    """The documents a file exporter wrote so far; [] before the file exists
    or while a line is half written."""
    try:
        return [json.loads(l) for l in pathlib.Path(path).read_text().splitlines() if l.strip()]
    except (OSError, ValueError):
        return []


def wait_lines(path, n, timeout=10.0):
    """The non-empty lines of path, once there are n."""
    def enough():
        if not os.path.exists(path):
            return None
        lines = [l for l in open(path).read().splitlines() if l.strip()]
        return lines if len(lines) >= n else None
    return wait_for(enough, timeout, f"{n} lines in {path}")


# ---- protobuf --------------------------------------------------------------

PROTO_DIR = os.path.join(ROOT, "agent", "proto")


@pytest.fixture(scope="session")
def otlp_pb2(tmp_path_factory):
    """Python classes for the project's .proto files, generated with protoc,
    so tests read the wire with a decoder independent of the agent's: a dict
    from module name (trace_service_pb2, ..., status_pb2) to module."""
    out = tmp_path_factory.mktemp("pb2")
    protos = sorted(str(p) for p in pathlib.Path(PROTO_DIR).glob("*.proto"))
    subprocess.run(["protoc", f"--python_out={out}", "-I", PROTO_DIR] + protos, check=True)
    sys.path.insert(0, str(out))
    try:
        return {n: importlib.import_module(n) for n in
                ("trace_service_pb2", "metrics_service_pb2", "logs_service_pb2", "status_pb2")}
    finally:
        sys.path.remove(str(out))


def export_classes(pb2, signal):
    """(Export*ServiceRequest, Export*ServiceResponse) of a signal."""
    m = pb2[{"traces": "trace", "metrics": "metrics", "logs": "logs"}[signal] + "_service_pb2"]
    name = {"traces": "Trace", "metrics": "Metrics", "logs": "Logs"}[signal]
    return getattr(m, f"Export{name}ServiceRequest"), getattr(m, f"Export{name}ServiceResponse")


# ---- TLS -------------------------------------------------------------------

class TestCA:
    """A throwaway certificate authority in directory d, made with the
    openssl command, and the leaf certificates it signs."""
    __test__ = False  # not a test class, whatever its name

    def __init__(self, d, key="ec", cn="otelite test CA"):
        self.dir = pathlib.Path(d)
        self.newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
                       if key == "ec" else ["-newkey", "rsa:2048"]) + ["-nodes"]
        self.ca = str(self.dir / "ca.pem")
        self._run("req", "-x509", *self.newkey, "-keyout", f"{self.dir}/ca.key", "-out",
                  self.ca, "-days", "2", "-subj", f"/CN={cn}")

    @staticmethod
    def _run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    def leaf(self, name, ext):
        """A certificate for CN=name with the X.509 extension lines ext:
        {"cert": path, "key": path}."""
        d = self.dir
        self._run("req", *self.newkey, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
                  "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        self._run("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", self.ca, "-CAkey",
                  f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "2",
                  "-extfile", f"{d}/{name}.ext")
        return {"cert": f"{d}/{name}.pem", "key": f"{d}/{name}.key"}


class Agent:
    """A running otelite process. stderr goes to a file so logs can be read
    while it runs and after it exits."""

    def __init__(self, tmp_path, config_text, args=(), name="agent"):
        self.dir = tmp_path
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(config_text)
        self.stderr_path = tmp_path / f"{name}.stderr"
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.args = list(args)
        self.proc = None

    def start(self, wait_url=None, timeout=10.0):
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([BIN, "run", "--config", str(self.config)] + self.args,
                                     stdout=self._out, stderr=self._err)
        if wait_url:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError("agent exited early:\n" + self.log())
                try:
                    if http_get(wait_url, 0.5)[0] == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            raise AssertionError(f"agent not ready at {wait_url}:\n" + self.log())
        return self

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def wait_log(self, needle, timeout=10.0, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log().count(needle) >= count:
                return True
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not logged:\n" + self.log())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20.0):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent did not stop on SIGTERM:\n" + self.log())
        self._err.close()
        self._out.close()
        return rc


@pytest.fixture
def agent_factory(tmp_path):
    started = []

    def make(config_text, args=(), name="agent"):
        a = Agent(tmp_path, config_text, args, name)
        started.append(a)
        return a

    yield make
    for a in started:
        if a.proc and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()


def run_cli(*args, input=None):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, input=input,
                          timeout=30)


def pytest_collection_modifyitems(config, items):
    if not os.path.exists(BIN):
        skip = pytest.mark.skip(reason=f"{BIN} not built")
        for it in items:
            it.add_marker(skip)
