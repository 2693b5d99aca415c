"""Deployment files: every config in conf/ and in the Kubernetes ConfigMaps
passes `otelite validate`; every manifest parses and has what the API
server requires and what the agent needs (probes on the telemetry port the
config serves, the DaemonSet's host ports, volumes and node name, the
gateway's headless Service that the agents' exporter names); and the Helm
chart, rendered with a Go-template subset (tests/e2e/gotemplate.py),
produces exactly the plain manifests."""
import pathlib
import re
import subprocess

import pytest
import yaml

from conftest import BIN, ROOT
from gotemplate import render_chart

K8S = pathlib.Path(ROOT, "packaging", "kubernetes")
CHART = pathlib.Path(ROOT, "packaging", "helm", "otelite")
CONFS = sorted(pathlib.Path(ROOT, "conf").glob("*.yaml")) + [
    pathlib.Path(ROOT, "packaging", "debian", "config.yaml"),
    pathlib.Path(ROOT, "packaging", "docker", "config.yaml")]
WORKLOADS = ("DaemonSet", "Deployment", "StatefulSet")


def manifests():
    docs = []
    for f in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f.name, d))
    return docs


def by_kind(kind):
    return [d for _, d in manifests() if d["kind"] == kind]


def validate(path):
    p = subprocess.run([BIN, "validate", "--config", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, f"{path}:\n{p.stderr}"


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: str(p.relative_to(ROOT)))
def test_conf_validates(conf):
    validate(conf)


def configmap_configs():
    return [(cm["metadata"]["name"], k, v) for cm in by_kind("ConfigMap")
            for k, v in cm["data"].items() if k.endswith(".yaml")]


def test_configmaps_validate(tmp_path):
    cms = configmap_configs()
    assert {n for n, _, _ in cms} == {"otelite-agent", "otelite-gateway", "otelite-sidecar"}
    for name, key, text in cms:
        p = tmp_path / f"{name}-{key}"
        p.write_text(text)
        validate(p)


def test_configmaps_are_the_conf_files():
    """One source for each config: the ConfigMaps carry conf/'s files."""
    want = {"otelite-agent": "daemonset.yaml", "otelite-gateway": "gateway.yaml",
            "otelite-sidecar": "sidecar.yaml"}
    for name, _, text in configmap_configs():
        assert text == pathlib.Path(ROOT, "conf", want[name]).read_text(), name


def test_manifests_have_required_fields():
    docs = manifests()
    assert {d["kind"] for _, d in docs} >= {"ConfigMap", "DaemonSet", "Deployment", "Service"}
    for f, d in docs:
        assert d.get("apiVersion") and d.get("kind"), f
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), f
        if d["kind"] in WORKLOADS:
            spec = d["spec"]
            labels = spec["template"]["metadata"]["labels"]
            assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
            for c in spec["template"]["spec"]["containers"]:
                assert c.get("name") and c.get("image"), (f, c)
                assert c.get("ports"), (f, c["name"])
                for p in c["ports"]:
                    assert 0 < p["containerPort"] < 65536
                    assert p.get("protocol", "TCP") in ("TCP", "UDP")


def container_port(c, ref):
    if isinstance(ref, int):
        return ref
    return next(p["containerPort"] for p in c["ports"] if p.get("name") == ref)


def otelite_containers():
    """(workload, container, its config text) of every otelite container."""
    cms = {cm["metadata"]["name"]: cm for cm in by_kind("ConfigMap")}
    out = []
    for kind in WORKLOADS:
        for w in by_kind(kind):
            pod = w["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            for c in pod["containers"]:
                if not c["image"].startswith("otelite"):
                    continue
                assert c["args"][:3] == ["run", "--config", "/etc/otelite/config.yaml"]
                mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/otelite")
                cm = cms[vols[mount["name"]]["configMap"]["name"]]
                out.append((w, c, cm["data"]["config.yaml"]))
    return out


def test_probes_on_the_telemetry_port():
    found = otelite_containers()
    assert len(found) == 3
    for w, c, text in found:
        tel = yaml.safe_load(text)["service"]["telemetry"]["metrics"]["endpoint"]
        host, port = tel.rsplit(":", 1)
        assert host == "0.0.0.0", f"{w['metadata']['name']}: the kubelet probes the pod IP"
        live, ready = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
        assert live["path"] == "/healthz" and ready["path"] == "/readyz"
        assert container_port(c, live["port"]) == int(port)
        assert container_port(c, ready["port"]) == int(port)
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
        sc = c["securityContext"]
        assert not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        # Only the node agent runs as uid 0 (to read root-owned pod logs).
        assert sc["runAsNonRoot"] or w["kind"] == "DaemonSet"


def test_daemonset():
    (ds,) = by_kind("DaemonSet")
    (w, c, text) = next(x for x in otelite_containers() if x[0]["kind"] == "DaemonSet")
    cfg = yaml.safe_load(text)
    host = {(p["hostPort"], p.get("protocol", "TCP")) for p in c["ports"] if "hostPort" in p}
    assert host == {(4317, "TCP"), (4318, "TCP"), (8125, "UDP")}
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "${env:NODE_NAME" in text and "k8s.node.name" in text

    pod = ds["spec"]["template"]["spec"]
    hostpaths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert hostpaths[mounts["/var/log/pods"]["name"]] == "/var/log/pods"
    assert mounts["/var/log/pods"]["readOnly"] is True
    storage = cfg["extensions"]["file_storage"]["directory"]
    assert storage in mounts and mounts[storage]["name"] in hostpaths
    assert not mounts[storage].get("readOnly")
    sock = cfg["receivers"]["dogstatsd/uds"]["socket_path"]
    sock_dir = sock.rsplit("/", 1)[0]
    assert sock_dir in mounts and mounts[sock_dir]["name"] in hostpaths
    # Pod logs are 0640 root:root and hostPath directories root-owned: the
    # agent reads and writes them as uid 0, with every capability dropped.
    assert c["securityContext"]["runAsUser"] == 0
    assert "initContainers" not in pod
    logs = cfg["receivers"]["jsonlog"]
    assert all(p.startswith("/var/log/pods/") for p in logs["include"])
    assert logs["storage"] in cfg["service"]["extensions"]
    assert "jsonlog" in cfg["service"]["pipelines"]["logs"]["receivers"]


def test_gateway_fed_by_the_daemonset():
    (svc,) = by_kind("Service")
    assert svc["spec"]["clusterIP"] == "None"  # headless
    gw = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "otelite-gateway")
    labels = gw["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    (_, agent_c, agent_text) = next(x for x in otelite_containers() if x[0]["kind"] == "DaemonSet")
    endpoint = yaml.safe_load(agent_text)["exporters"]["otlp"]["endpoint"]
    m = re.search(r":-([^}]+)\}", endpoint)
    host, port = m.group(1).rsplit(":", 1)
    assert host == f"{svc['metadata']['name']}.{svc['metadata']['namespace']}"
    ports = {p["port"]: p for p in svc["spec"]["ports"]}
    gc = gw["spec"]["template"]["spec"]["containers"][0]
    assert container_port(gc, ports[int(port)]["targetPort"]) == int(port)
    gw_cfg = yaml.safe_load(next(t for w, _, t in otelite_containers() if w is gw or
                                 w["metadata"]["name"] == "otelite-gateway"))
    assert gw_cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(f":{port}")


def test_sidecar_example():
    app = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "example-app")
    cs = app["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 2 and any(c["image"].startswith("otelite") for c in cs)
    (_, _, text) = next(x for x in otelite_containers() if x[0] is app or
                        x[0]["metadata"]["name"] == "example-app")
    cfg = yaml.safe_load(text)
    for proto in cfg["receivers"]["otlp"]["protocols"].values():
        assert proto["endpoint"].startswith("127.0.0.1:")  # same pod only


def docs_by_id(text_or_docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in text_or_docs if d}


def test_helm_chart_renders_the_manifests():
    rendered = render_chart(CHART, {"sidecarExample": {"enabled": True}}, namespace="observability")
    assert [n for n, _ in rendered] == sorted(p.name for p in K8S.glob("*.yaml"))
    for name, text in rendered:
        got = docs_by_id(yaml.safe_load_all(text))
        want = docs_by_id(yaml.safe_load_all((K8S / name).read_text()))
        assert got == want, f"templates/{name} renders other than packaging/kubernetes/{name}"


def test_helm_defaults_leave_the_example_out():
    rendered = dict(render_chart(CHART, namespace="observability"))
    assert not [d for d in yaml.safe_load_all(rendered["sidecar-example.yaml"]) if d]
    assert docs_by_id(yaml.safe_load_all(rendered["daemonset.yaml"]))
    off = dict(render_chart(CHART, {"gateway": {"enabled": False}}, namespace="observability"))
    assert not [d for d in yaml.safe_load_all(off["gateway.yaml"]) if d]


def test_helm_values_reach_the_manifests():
    rendered = dict(render_chart(CHART, {"image": {"tag": "9.9.9"}, "gateway": {"replicas": 5}},
                                 namespace="telemetry"))
    gw = docs_by_id(yaml.safe_load_all(rendered["gateway.yaml"]))[("Deployment", "otelite-gateway")]
    assert gw["spec"]["replicas"] == 5
    assert gw["metadata"]["namespace"] == "telemetry"
    assert gw["spec"]["template"]["spec"]["containers"][0]["image"] == "otelite:9.9.9"


def test_gotemplate_subset():
    from gotemplate import TemplateError, render
    ctx = {"Values": {"a": {"b": "x"}, "on": True, "off": False, "m": {"k": [1, 2]}}}
    assert render("{{ .Values.a.b }}", ctx) == "x"
    assert render("a\n  {{- .Values.a.b -}}  \nb", ctx) == "axb"
    assert render("{{ if .Values.off }}1{{ else }}2{{ end }}", ctx) == "2"
    assert render("{{ toYaml .Values.m | indent 2 }}", ctx) == "  k:\n  - 1\n  - 2"
    assert render("{{ .Values.a.b | quote }}", ctx) == '"x"'
    with pytest.raises(TemplateError):
        render("{{ .Values.nope }}", ctx)
    with pytest.raises(TemplateError):
        render("{{ range .Values.m }}{{ end }}", ctx)


def listeners(cfg):
    """(port, protocol, host) of every socket a config opens on TCP or UDP,
    defaults included (tls or not: a port is a port)."""
    out = []

    def add(ep, default, proto="TCP"):
        host, port = (ep or default).rsplit(":", 1)
        out.append((int(port), proto, host.strip("[]")))

    for cid, c in (cfg.get("receivers") or {}).items():
        c = c or {}
        kind = cid.split("/")[0]
        if kind == "otlp":
            protos = c.get("protocols") or {}
            if "grpc" in protos:
                add((protos["grpc"] or {}).get("endpoint"), "127.0.0.1:4317")
            if "http" in protos:
                add((protos["http"] or {}).get("endpoint"), "127.0.0.1:4318")
        elif kind == "dogstatsd" and c.get("transport", "udp") == "udp":
            add(c.get("endpoint"), "127.0.0.1:8125", "UDP")
        elif kind == "jsonlog" and c.get("endpoint"):
            add(c["endpoint"], None)
    for cid, c in (cfg.get("exporters") or {}).items():
        if cid.split("/")[0] == "prometheus":
            add((c or {}).get("endpoint"), "127.0.0.1:9464")
    metrics = ((cfg.get("service") or {}).get("telemetry") or {}).get("metrics") or {}
    if metrics.get("level") != "none":
        add(metrics.get("endpoint") or metrics.get("address"), "127.0.0.1:8888")
    return out


def loopback(host):
    return host in ("127.0.0.1", "::1", "localhost")


def test_manifests_open_only_what_listens_outside_loopback():
    """A declared container or host port is a listener on the pod's
    address, and every such listener is declared: nothing on loopback is
    published, nothing is published that nobody serves."""
    for w, c, text in otelite_containers():
        ls = listeners(yaml.safe_load(text))
        outside = {(p, proto) for p, proto, h in ls if not loopback(h)}
        declared = {(p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}
        assert declared == outside, (w["metadata"]["name"], declared, outside)
        for p in c["ports"]:
            if "hostPort" in p:
                assert p["hostPort"] == p["containerPort"]


def test_every_default_listener_is_on_loopback(tmp_path):
    """With no endpoint written, each component's listener binds loopback
    (the component list's defaults of every endpoint-typed key)."""
    out = subprocess.run([BIN, "components", "--format", "markdown"], capture_output=True,
                         text=True, timeout=30).stdout
    defaults = re.findall(r"\| `(?:[\w.]+\.)?endpoint` \| endpoint \| `([^`]+)`", out)
    assert len(defaults) >= 4, out[:2000]
    # "-": no default, the listener is off unless an endpoint is written (jsonlog)
    assert all(d.startswith("127.0.0.1:") or d == "-" for d in defaults), defaults


def test_docker_image_exposes_what_its_config_serves():
    conf = yaml.safe_load(pathlib.Path(ROOT, "packaging", "docker", "config.yaml").read_text())
    df = pathlib.Path(ROOT, "packaging", "docker", "Dockerfile").read_text()
    exposed = set()
    for line in df.splitlines():
        if line.startswith("EXPOSE"):
            for tok in line.split()[1:]:
                port, _, proto = tok.partition("/")
                exposed.add((int(port), (proto or "tcp").upper()))
    outside = {(p, proto) for p, proto, h in listeners(conf) if not loopback(h)}
    assert exposed == outside, (exposed, outside)
