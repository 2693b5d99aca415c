"""Shared fixtures for end-to-end tests: the real otelite binary over real
loopback sockets. Each test gets its own ports and temp files."""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("OTELITE_BIN", os.path.join(ROOT, "build", "otelite"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=2.0):
    """(status, body) without raising on HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


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
