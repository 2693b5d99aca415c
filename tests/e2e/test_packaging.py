"""The Debian package (make deb) and the container image's recipe.

The .deb is built from the binaries under test, checked by lintian, then
installed on this machine with dpkg (the tests run as root in CI), used and
purged: the system user, the conffile, the state directory, the unit
(systemd-analyze verify and its offline security score), the agent run the
way the unit runs it (as otelite, no new privileges, no capabilities,
READY=1 on NOTIFY_SOCKET), an upgrade over itself, remove and purge.
systemd is not PID 1 in this container, so the unit is verified, not
started; the run below stands in for it.

Docker is not on this machine: the Dockerfile is checked for what can be
checked without building it (the image's config passes validate, and its
runtime packages are exactly the ones the binary's shared libraries come
from)."""
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, ROOT, free_port, http_get, post_json

BUILD = os.path.dirname(os.path.abspath(BIN))
ASAN = os.path.basename(BUILD) == "asan"
UNIT = "/lib/systemd/system/otelite.service"
DOCKERFILE = pathlib.Path(ROOT, "packaging", "docker", "Dockerfile")


def run(*args, check=True, timeout=300, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def dpkg(*args, check=True):
    """dpkg, waiting while another dpkg or apt holds the lock (the machine
    is shared)."""
    deadline = time.time() + 180
    while True:
        p = run("dpkg", *args, check=False)
        if "lock" in p.stderr and p.returncode != 0 and time.time() < deadline:
            time.sleep(2)
            continue
        if check and p.returncode != 0:
            raise AssertionError(f"dpkg {args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p


def installed(pkg):
    p = run("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return p.returncode == 0 and "ok installed" in p.stdout


@pytest.fixture(scope="module")
def deb():
    args = ["make", "-s", "-j2", "deb"] + (["asan"] if ASAN else [f"BUILD={os.path.relpath(BUILD, ROOT)}"])
    env = dict(os.environ)
    env.pop("BUILD", None)
    if ASAN:
        env["BUILD"] = os.path.relpath(BUILD, ROOT)
    out = run(*args, cwd=ROOT, env=env, timeout=600).stdout.strip().splitlines()
    path = out[-1]
    assert path.endswith(".deb") and os.path.exists(path), out
    return path


def control(deb):
    text = run("dpkg-deb", "-f", deb).stdout
    fields = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    return fields


def test_deb_contents(deb):
    listing = run("dpkg-deb", "-c", deb).stdout
    files = {l.split()[-1].lstrip(".") for l in listing.splitlines()}
    for f in ("/usr/bin/otelite", "/usr/bin/otelite-loadgen", "/etc/otelite/config.yaml", UNIT,
              "/usr/share/doc/otelite/copyright", "/usr/share/doc/otelite/changelog.gz",
              "/usr/share/man/man1/otelite.1.gz"):
        assert f in files, f"{f} not in the package:\n{listing}"
    for line in listing.splitlines():
        assert " root/root " in line, f"not owned by root: {line}"
    tmp = run("mktemp", "-d").stdout.strip()
    try:
        run("dpkg-deb", "-e", deb, tmp)
        assert pathlib.Path(tmp, "conffiles").read_text().split() == ["/etc/otelite/config.yaml"]
    finally:
        run("rm", "-rf", tmp)
    c = control(deb)
    assert c["Package"] == "otelite"
    # One version: the Makefile's, in the control file and the changelog.
    mk = re.search(r"^VERSION := (\S+)", pathlib.Path(ROOT, "Makefile").read_text(), re.M).group(1)
    changelog = pathlib.Path(ROOT, "packaging", "debian", "changelog").read_text()
    assert c["Version"] == mk and changelog.startswith(f"otelite ({mk}) ")
    deps = {d.strip().split()[0] for d in c["Depends"].split(",")}
    assert "adduser" in deps  # postinst calls adduser
    assert "libsystemd0" in deps  # opened with dlopen for sd_notify, so not in NEEDED
    # Every library the binary loads, or opens on first use, comes from a
    # package the .deb depends on.
    missing = (linked_packages(os.path.join(BUILD, "otelite")) | opened_packages()) - deps
    assert not missing, f"Depends lacks {missing}: {c['Depends']}"


def test_libsystemd_not_linked():
    """libsystemd is opened only when NOTIFY_SOCKET is set: linked, it and
    its own libraries cost every agent about 1 MiB of resident pages."""
    needed = run("readelf", "-d", BIN).stdout
    assert "libsystemd" not in needed and "libgcrypt" not in needed


def test_lintian_no_errors(deb):
    p = run("lintian", "--fail-on", "error", deb, check=False)
    errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
    assert p.returncode == 0 and not errors, p.stdout + p.stderr


def test_unit_verifies():
    """systemd-analyze verify works offline (no running systemd needed) but
    checks that the commands exist, so it runs on the installed unit in
    test_install_run_purge; here the unit's required settings."""
    text = pathlib.Path(ROOT, "packaging", "systemd", "otelite.service").read_text()
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    assert keys["Type"] == ["notify"]
    assert keys["ExecStartPre"] == ["/usr/bin/otelite validate --config /etc/otelite/config.yaml"]
    assert keys["ExecStart"] == ["/usr/bin/otelite run --config /etc/otelite/config.yaml"]
    assert "/bin/kill -HUP $MAINPID" in keys["ExecReload"]
    assert keys["Restart"] == ["on-failure"]
    assert keys["NoNewPrivileges"] == ["yes"]
    assert keys["ProtectSystem"] == ["strict"]
    assert keys["ProtectHome"] == ["yes"]
    assert keys["ReadWritePaths"] == ["/var/lib/otelite"]
    assert keys["CapabilityBoundingSet"] == [""]
    assert keys["User"] == ["otelite"]
    assert int(keys["LimitNOFILE"][0]) >= 65536


class Notify:
    def __init__(self):
        self.path = f"/tmp/otelite-pkg-notify-{os.getpid()}.sock"
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)  # the agent runs as otelite

    def next(self, timeout=15.0):
        self.sock.settimeout(timeout)
        return dict(l.split("=", 1) for l in self.sock.recv(4096).decode().split("\n") if l)

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def run_as_unit(notify):
    """/usr/bin/otelite with the installed config, the way the unit starts
    it as far as this container allows: user otelite, no new privileges, an
    empty capability bounding set, NOTIFY_SOCKET. The ports come from
    --set so nothing else on the shared machine is disturbed."""
    ports = dict(grpc=free_port(), http=free_port(), prom=free_port(), tel=free_port())
    sets = [f"receivers.otlp.protocols.grpc.endpoint=127.0.0.1:{ports['grpc']}",
            f"receivers.otlp.protocols.http.endpoint=127.0.0.1:{ports['http']}",
            f"exporters.prometheus.endpoint=127.0.0.1:{ports['prom']}",
            f"service.telemetry.metrics.endpoint=127.0.0.1:{ports['tel']}"]
    cmd = ["setpriv", "--reuid=otelite", "--regid=otelite", "--init-groups", "--no-new-privs",
           "--bounding-set=-all", "/usr/bin/otelite", "run", "--config", "/etc/otelite/config.yaml"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    err = open(f"/tmp/otelite-pkg-run-{os.getpid()}.stderr", "w+")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), ports, err


SPANS = {"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
    "name": "from-the-package", "kind": 2,
    "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"}]}]}]}


@pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root (CI runs as root)")
def test_install_run_purge(deb):
    if installed("otelite"):
        pytest.skip("an otelite package is installed on this machine already; not touching it")
    try:
        dpkg("-i", deb)
        pw = run("getent", "passwd", "otelite").stdout.split(":")
        uid = pw[2]
        assert pw[6].strip() in ("/usr/sbin/nologin", "/bin/false")
        st = os.stat("/var/lib/otelite")
        assert str(st.st_uid) == uid and oct(st.st_mode & 0o777) == "0o750"
        assert "/etc/otelite/config.yaml" in run("dpkg-query", "-W", "-f=${Conffiles}", "otelite").stdout

        v = run("/usr/bin/otelite", "--version").stdout
        assert v.startswith("otelite 0.1.0"), v
        run("/usr/bin/otelite-loadgen", "--help")
        # As the unit's ExecStartPre runs it: as the service user.
        p = run("setpriv", "--reuid=otelite", "--regid=otelite", "--init-groups",
                "/usr/bin/otelite", "validate", "--config", "/etc/otelite/config.yaml")
        assert "the config is valid" in p.stdout

        # systemd-analyze works here without systemd running as PID 1.
        p = run("systemd-analyze", "verify", UNIT, check=False)
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr
        p = run("systemd-analyze", "security", "--offline=yes", UNIT, check=False)
        m = re.search(r"Overall exposure level for otelite.service: ([0-9.]+)", p.stdout)
        assert m and float(m.group(1)) <= 3.0, p.stdout[-2000:]

        notify = Notify()
        try:
            proc, ports, err = run_as_unit(notify)
            try:
                m = notify.next()
                assert m.get("READY") == "1", m
                assert post_json(ports["http"], "/v1/traces", SPANS)[0] == 200
                deadline = time.time() + 10
                out = pathlib.Path("/var/lib/otelite/traces.jsonl")
                while time.time() < deadline and "from-the-package" not in (
                        out.read_text() if out.exists() else ""):
                    time.sleep(0.1)
                assert "from-the-package" in out.read_text()
                assert str(out.stat().st_uid) == uid
                assert http_get(f"http://127.0.0.1:{ports['tel']}/readyz")[0] == 200
                proc.send_signal(signal.SIGTERM)
                assert notify.next().get("STOPPING") == "1"
                assert proc.wait(30) == 0, open(err.name).read()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                err.close()
                os.unlink(err.name)
        finally:
            notify.close()

        # An edited conffile survives a reinstall; the user keeps its uid.
        cfg = pathlib.Path("/etc/otelite/config.yaml")
        cfg.write_text(cfg.read_text() + "# edited by the test\n")
        dpkg("-i", deb)
        assert cfg.read_text().endswith("# edited by the test\n")
        assert run("getent", "passwd", "otelite").stdout.split(":")[2] == uid

        dpkg("-r", "otelite")
        assert not os.path.exists("/usr/bin/otelite")
        assert cfg.exists()  # a conffile stays until purge
        dpkg("--purge", "otelite")
        assert not os.path.exists("/etc/otelite")
        assert not os.path.exists("/var/lib/otelite")
        assert not installed("otelite")
    finally:
        if installed("otelite") or run("dpkg-query", "-W", "otelite", check=False).returncode == 0:
            dpkg("--purge", "otelite", check=False)


# ---- the container image ------------------------------------------------------

def dockerfile_stages():
    """[(FROM line, [instructions])] with continuation lines joined."""
    stages = []
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_shape():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build, then a slim runtime"
    assert all("debian:bookworm" in f for f, _ in stages), [f for f, _ in stages]
    final_from, final = stages[-1]
    assert "slim" in final_from
    users = [i for i in final if i.upper().startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    hc = [i for i in final if i.upper().startswith("HEALTHCHECK")]
    assert hc and "/healthz" in hc[0]
    assert any(i.upper().startswith("EXPOSE") and "4317" in i for i in final)


def test_docker_image_config_validates():
    cfg = pathlib.Path(ROOT, "packaging", "docker", "config.yaml")
    p = run(BIN, "validate", "--config", str(cfg), check=False)
    assert p.returncode == 0, p.stderr
    text = cfg.read_text()
    assert "0.0.0.0:4317" in text and "0.0.0.0:4318" in text
    assert "0.0.0.0:8888" in text  # HEALTHCHECK and probes reach /healthz


def linked_packages(binary):
    """The packages owning the libraries the binary links to directly (its
    NEEDED entries, resolved by ldd, owned per dpkg -S)."""
    needed = set(re.findall(r"Shared library: \[(.+?)\]", run("readelf", "-d", binary).stdout))
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run("ldd", binary).stdout, re.M))
    assert needed <= set(resolved), f"ldd did not resolve {needed - set(resolved)}"
    return package_of([resolved[n] for n in needed])


def opened_packages():
    """The packages owning the libraries the agent opens on first use
    instead of linking them (base/dlib.h: each names its soname in an
    OT_DLIB_DEFINE), found with ldconfig."""
    names = set()
    for path in pathlib.Path(ROOT, "agent").rglob("*.c"):
        names |= set(re.findall(r'OT_DLIB_DEFINE\("(lib[^"]+)"', path.read_text()))
    assert names, "no library opened on first use found in agent/"
    cache = run("ldconfig", "-p").stdout
    paths = []
    for n in sorted(names):
        m = re.search(rf"^\s*{re.escape(n)} \(libc6,x86-64\S*\) => (\S+)", cache, re.M)
        assert m, f"{n} is not installed"
        paths.append(m.group(1))
    return package_of(paths)


def package_of(paths):
    pkgs = set()
    for p in paths:
        real = os.path.realpath(p)
        for cand in (p, real, "/usr" + p, "/usr" + real, re.sub(r"^/usr", "", real)):
            q = run("dpkg", "-S", cand, check=False)
            if q.returncode == 0:
                pkgs.add(q.stdout.split(":")[0].strip())
                break
        else:
            raise AssertionError(f"no package owns {p}")
    return pkgs


def test_docker_runtime_packages_match_the_binary():
    """The runtime stage installs exactly the packages that own the shared
    libraries the release binary links to (libc6 aside: every Debian image
    has it); what those pull in comes through their own Depends."""
    final = dockerfile_stages()[-1][1]
    install = " ".join(i for i in final if "apt-get install" in i)
    m = re.search(r"apt-get install ([^&;]*)", install)
    assert m, "no apt-get install in the runtime stage"
    listed = {w for w in m.group(1).split() if not w.startswith("-")} - {"ca-certificates"}
    binary = os.path.join(os.path.dirname(BUILD), "otelite") if ASAN else BIN
    if not os.path.exists(binary):
        pytest.skip(f"{binary} (the release build) is not built")
    want = (linked_packages(binary) | opened_packages()) - {"libc6"}
    assert listed == want, f"runtime stage lacks {want - listed}, has extra {listed - want}"


def test_docker_build_stage_has_every_library():
    """The build stage installs the -dev package of every pkg-config module
    the Makefile links (LIBS_PC), found by which package owns its .pc file."""
    mk = pathlib.Path(ROOT, "Makefile").read_text().replace("\\\n", " ")
    mods = []
    for m in re.finditer(r"^LIBS_PC(?:_HEADERS)?\s*[:+]?=(.*)$", mk, re.M):
        mods += m.group(1).split()
    assert "libsystemd" in mods
    first = dockerfile_stages()[0][1]
    install = " ".join(i for i in first if "apt-get install" in i)
    listed = set(re.search(r"apt-get install ([^&;]*)", install).group(1).split())
    for mod in mods:
        pc = run("pkg-config", "--path", mod).stdout.strip()
        pkg = package_of([pc]).pop()
        assert pkg in listed, f"build stage lacks {pkg} (pkg-config {mod})"


def test_docker_healthcheck_command(agent_factory, tmp_path):
    """The HEALTHCHECK's own command, run here against the image's config
    (ports moved to free ones): 0 while the agent answers /healthz, not 0
    once it is gone."""
    import json
    hc = next(i for i in dockerfile_stages()[-1][1] if i.upper().startswith("HEALTHCHECK"))
    cmd = json.loads(hc[hc.index("CMD") + 3:].strip())
    cfg = pathlib.Path(ROOT, "packaging", "docker", "config.yaml").read_text()
    tel = free_port()
    for old in ("0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:8125", "0.0.0.0:9464"):
        cfg = cfg.replace(old, f"127.0.0.1:{free_port()}")
    cfg = cfg.replace("0.0.0.0:8888", f"127.0.0.1:{tel}")
    assert "8888" in cmd[-1]
    cmd[-1] = cmd[-1].replace("8888", str(tel))
    a = agent_factory(cfg)
    a.start(wait_url=f"http://127.0.0.1:{tel}/healthz")
    assert subprocess.run(cmd, timeout=10).returncode == 0
    assert a.stop() == 0
    assert subprocess.run(cmd, timeout=10, stderr=subprocess.DEVNULL).returncode != 0
