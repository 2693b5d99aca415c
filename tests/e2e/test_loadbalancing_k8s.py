"""The loadbalancing exporter's k8s resolver against a fake Kubernetes API
server: an HTTP server that answers the EndpointSlice list of one Service
(label kubernetes.io/service-name) and streams watch events, written from
the discovery.k8s.io/v1 API documentation. It checks the bearer token. The
backends follow the list, a watch event that adds an endpoint and one
that removes one; every span arrives once."""
import json
import queue
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, wait_for
from lb_common import Gateway, agent_config, check_exactly_once, loadgen, metric, settle, wait_total

TOKEN = "test-token-6c1f"


def slice_obj(name, rv, addrs, not_ready=()):
    eps = [{"addresses": [a], "conditions": {"ready": True}} for a in addrs]
    eps += [{"addresses": [a], "conditions": {"ready": False}} for a in not_ready]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": name, "namespace": "obs", "resourceVersion": str(rv),
                         "labels": {"kubernetes.io/service-name": "otelite-gw"}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "otlp-grpc", "port": 4317, "protocol": "TCP"}]}


class FakeApi:
    def __init__(self, slices):
        self.slices = slices
        self.events = queue.Queue()
        self.requests = []
        self.watches = 0
        self.lock = threading.Lock()
        api = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a watch body ends when the connection closes

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                with api.lock:
                    api.requests.append((u.path, q, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._json(401, {"kind": "Status", "code": 401})
                if (u.path != "/apis/discovery.k8s.io/v1/namespaces/obs/endpointslices" or
                        q.get("labelSelector") != ["kubernetes.io/service-name=otelite-gw"]):
                    return self._json(404, {"kind": "Status", "code": 404})
                if q.get("watch") != ["true"]:
                    return self._json(200, {"kind": "EndpointSliceList", "apiVersion":
                                            "discovery.k8s.io/v1",
                                            "metadata": {"resourceVersion": "100"},
                                            "items": api.slices})
                with api.lock:
                    api.watches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.flush()
                while True:
                    ev = api.events.get()
                    if ev is None:
                        return
                    try:
                        self.wfile.write((json.dumps(ev) + "\n").encode())
                        self.wfile.flush()
                    except OSError:
                        api.events.put(ev)
                        return

            def _json(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.events.put(None)
        self.server.shutdown()
        self.server.server_close()


def test_k8s_list_and_watch(agent_factory, tmp_path):
    port = free_port()
    gws = [Gateway(agent_factory, tmp_path, f"gw{i}", host=f"127.0.0.{i + 1}", port=port).start()
           for i in range(3)]
    api = FakeApi([slice_obj("otelite-gw-a", 90, ["127.0.0.1", "127.0.0.2"],
                             not_ready=["127.0.0.3"])])
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    try:
        rp, tp = free_port(), free_port()
        res = (f"      k8s: {{ service: otelite-gw.obs, ports: [{port}], "
               f"api_server: 'http://127.0.0.1:{api.port}', token_file: {token} }}")
        agent = agent_factory(agent_config(rp, tp, res))
        agent.start(wait_url=f"http://127.0.0.1:{tp}/readyz")
        # the list: two ready endpoints (the not-ready one is no backend)
        wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 2, 10, "two backends")
        wait_for(lambda: api.watches >= 1, 10, "a watch")
        watch = [r for r in api.requests if r[1].get("watch") == ["true"]][0]
        assert watch[1]["resourceVersion"] == ["100"]
        r1 = loadgen(rp, 6000, "list")
        wait_total(gws, r1["items_sent"])
        settle(gws)
        assert not gws[2].spans()
        assert gws[0].spans() and gws[1].spans()
        # a watch event adds an endpoint: a second slice with 127.0.0.3
        api.events.put({"type": "ADDED", "object": slice_obj("otelite-gw-b", 101, ["127.0.0.3"])})
        wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 3, 10, "three backends")
        for g in gws:
            g.path.write_text("")
        r2 = loadgen(rp, 6000, "added")
        wait_total(gws, r2["items_sent"])
        settle(gws)
        assert all(g.spans() for g in gws), "the added gateway got nothing"
        check_exactly_once(gws, r2["items_sent"])
        # a bookmark changes nothing; a MODIFIED event drops 127.0.0.2
        api.events.put({"type": "BOOKMARK", "object": {"kind": "EndpointSlice",
                                                       "metadata": {"resourceVersion": "102"}}})
        api.events.put({"type": "MODIFIED", "object": slice_obj("otelite-gw-a", 103, ["127.0.0.1"])})
        wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 2, 10, "two backends")
        for g in gws:
            g.path.write_text("")
        r3 = loadgen(rp, 6000, "removed")
        wait_total(gws, r3["items_sent"])
        settle(gws)
        per = check_exactly_once(gws, r3["items_sent"])
        assert not per["gw1"], "the removed endpoint still got spans"
        # and DELETED of the first slice leaves only 127.0.0.3
        api.events.put({"type": "DELETED", "object": slice_obj("otelite-gw-a", 104, ["127.0.0.1"])})
        wait_for(lambda: metric(tp, "otelite_loadbalancing_backends") == 1, 10, "one backend")
        assert all(r[2] == f"Bearer {TOKEN}" for r in api.requests)
        assert agent.stop() == 0
    finally:
        api.close()
