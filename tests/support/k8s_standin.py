"""A stand-in for the Kubernetes API server, for the shipper's pod cache.

No cluster can run on these machines, so this small HTTP server plays the
part of the API server's pod endpoints as the shipper uses them:

  GET /api/v1/pods?fieldSelector=spec.nodeName=N[&limit=L&continue=C]
      a PodList (kind, apiVersion, metadata.resourceVersion, items) of the
      pods on node N, paged by limit/continue;
  GET /apis/batch/v1/namespaces/NS/jobs/NAME
      a Job (add_job), owned by a CronJob or not; answered after job_delay
      seconds, 403 for the Jobs in forbidden_jobs (RBAC without jobs get);
  GET /api/v1/namespaces/NS[/pods/NAME]
      a Namespace or one Pod (what rsyslog's mmkubernetes asks; benchmarks);
  GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=R&timeoutSeconds=T
      a chunked stream of watch events, one JSON object per line:
      {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK", "object": Pod} after
      R, then whatever happens until T seconds passed; a version older than
      the kept history gets {"type":"ERROR","object":{"kind":"Status",
      "code":410,"reason":"Expired",...}} as the real server sends it.

Pods are real-shaped (metadata with uid, labels, annotations,
ownerReferences; spec.nodeName and containers; status.podIP) and built by
pod(). Requests must carry "Authorization: Bearer <token>" with one of
`tokens` (401 otherwise; the test rotates them as a projected token rotates).
With tls=(certfile, keyfile) it serves HTTPS (the certificate's CA goes in
the client's kubeconfig). What it does not do: client certificates, bookmarks,
resources other than these, label selectors, watch-list streaming, 429 and
priority and fairness, server-side apply, admission, or a real server's
timing.

Control from the test (same process): add/modify/delete pods (each a watch
event), compact() (forget the history: the next watch from an older version
gets 410), end_watches() (close open streams: clients resume), down()/up()
(connections refused while down), requests (what the clients asked).
"""
import http.server
import json
import socket
import threading
import time
import urllib.parse
import uuid


def pod(name, namespace, node, labels=None, annotations=None, owner=None, ip="10.244.0.10",
        containers=(("app", "registry.example/app:1.0"),)):
    """A Pod object as the API returns it. owner: (kind, name)."""
    meta = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
            "creationTimestamp": "2026-12-02T08:00:00Z", "labels": dict(labels or {}),
            "annotations": dict(annotations or {})}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": str(uuid.uuid4()), "controller": True,
                                    "blockOwnerDeletion": True}]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": c, "image": i} for c, i in containers],
                     "restartPolicy": "Always", "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": ip, "hostIP": "192.168.1.10"}}


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client going away is normal


class StandIn:
    def __init__(self, token, tls=None):
        self.tls = tls
        self.tokens = {token}
        self.lock = threading.Condition()
        self.rv = 1000
        self.pods = {}      # (ns, name) -> pod
        self.history = []   # (rv, type, pod)
        self.oldest = 1000  # watches from before this get 410
        self.requests = []  # (path, query dict, authorized)
        self.is_down = False
        self.watch_gen = 0
        self.gone_sent = 0  # 410 answers given
        self.jobs = {}  # (ns, name) -> Job object
        self.job_delay = 0.0  # seconds before a Job is answered (a slow API server)
        self.forbidden_jobs = set()  # (ns, name): answered 403, as RBAC without batch jobs get
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.handle(self)

        self.httpd = self._server(0, Handler)
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # ---- control ----
    def _event(self, typ, p):
        self.rv += 1
        p = json.loads(json.dumps(p))
        p["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, typ, p))
        self.lock.notify_all()
        return p

    def add(self, p):
        with self.lock:
            key = (p["metadata"]["namespace"], p["metadata"]["name"])
            typ = "MODIFIED" if key in self.pods else "ADDED"
            self.pods[key] = self._event(typ, p)

    def add_job(self, namespace, name, cronjob=None):
        """A Job (batch/v1), owned by CronJob `cronjob` when given."""
        meta = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
        if cronjob:
            meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob,
                                        "uid": str(uuid.uuid4()), "controller": True}]
        with self.lock:
            self.jobs[(namespace, name)] = {"kind": "Job", "apiVersion": "batch/v1", "metadata": meta,
                                            "spec": {}, "status": {}}

    def delete(self, namespace, name):
        with self.lock:
            p = self.pods.pop((namespace, name))
            self._event("DELETED", p)

    def compact(self):
        with self.lock:
            self.history = []
            self.oldest = self.rv + 1

    def end_watches(self):
        with self.lock:
            self.watch_gen += 1
            self.lock.notify_all()

    def down(self):
        """Refuses connections: the listening socket goes (up() makes a new one
        on the same port)."""
        with self.lock:
            self.is_down = True
            self.watch_gen += 1
            self.lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _server(self, port, handler):
        httpd = _Server(("127.0.0.1", port), handler)
        httpd.daemon_threads = True
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        return httpd

    def up(self):
        handler = self.httpd.RequestHandlerClass
        for _ in range(50):
            try:
                self.httpd = self._server(self.port, handler)
                break
            except OSError:
                time.sleep(0.1)
        with self.lock:
            self.is_down = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        with self.lock:
            self.watch_gen += 1
            self.lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- serving ----
    def _send(self, h, status, obj):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        auth = h.headers.get("Authorization", "")
        ok = auth.startswith("Bearer ") and auth[7:] in self.tokens
        with self.lock:
            self.requests.append((u.path, q, ok))
        if not ok:
            return self._send(h, 401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "message": "Unauthorized", "reason": "Unauthorized",
                                       "code": 401})
        parts = u.path.strip("/").split("/")
        if parts[:4] == ["apis", "batch", "v1", "namespaces"] and len(parts) == 7 and parts[5] == "jobs":
            time.sleep(self.job_delay)
            if (parts[4], parts[6]) in self.forbidden_jobs:
                return self._send(h, 403, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                           "reason": "Forbidden", "code": 403})
            with self.lock:
                j = self.jobs.get((parts[4], parts[6]))
            return self._send(h, 200, j) if j else self._send(h, 404, {"kind": "Status", "code": 404})
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (4, 6):
            return self.get_one(h, parts)
        if u.path != "/api/v1/pods":
            return self._send(h, 404, {"kind": "Status", "code": 404, "reason": "NotFound"})
        sel = q.get("fieldSelector", "")
        node = sel.split("=", 1)[1] if sel.startswith("spec.nodeName=") else None
        mine = lambda p: node is None or p["spec"].get("nodeName") == node
        if q.get("watch") in ("1", "true"):
            return self.watch(h, q, mine)
        with self.lock:
            items = sorted((p for p in self.pods.values() if mine(p)),
                           key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
            rv = self.rv
        limit = int(q.get("limit", "0") or 0)
        start = int(q.get("continue", "0") or 0)
        page = items[start:start + limit] if limit else items[start:]
        meta = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        self._send(h, 200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page})

    def get_one(self, h, parts):
        """GET /api/v1/namespaces/NS and /api/v1/namespaces/NS/pods/NAME, as
        clients that look pods up one by one ask (rsyslog's mmkubernetes)."""
        with self.lock:
            if len(parts) == 6 and parts[4] == "pods":
                p = self.pods.get((parts[3], parts[5]))
                if p:
                    return self._send(h, 200, p)
            elif len(parts) == 4 and any(ns == parts[3] for ns, _ in self.pods):
                return self._send(h, 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {
                    "name": parts[3], "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, parts[3])),
                    "labels": {"kubernetes.io/metadata.name": parts[3]}}})
        self._send(h, 404, {"kind": "Status", "code": 404, "reason": "NotFound"})

    def watch(self, h, q, mine):
        since = int(q.get("resourceVersion", "0") or 0)
        deadline = time.time() + int(q.get("timeoutSeconds", "60") or 60)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(obj):
            line = (json.dumps(obj) + "\n").encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            h.wfile.flush()

        try:
            with self.lock:
                gen = self.watch_gen
                if since < self.oldest - 1:
                    self.gone_sent += 1
                    chunk({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: %d (%d)" % (since, self.oldest),
                        "reason": "Expired", "code": 410}})
                    h.wfile.write(b"0\r\n\r\n")
                    return
                sent = since
                while time.time() < deadline and gen == self.watch_gen:
                    for rv, typ, p in self.history:
                        if rv > sent and mine(p):
                            chunk({"type": typ, "object": p})
                        if rv > sent:
                            sent = rv
                    self.lock.wait(timeout=0.5)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass


def main():
    """A stand-in for benchmarks: N pods of namespace NS on node NODE with L
    labels and 5 annotations each, named pod-0..pod-N-1; writes the URL to
    --url-file and serves until killed."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True)
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--namespace", default="bench")
    ap.add_argument("--node", default="node-a")
    ap.add_argument("--url-file", required=True)
    ap.add_argument("--hint", default=None,
                    help="a logpipe.io/multiline annotation on pod-0 (one tenant's hint)")
    ap.add_argument("--big", type=int, default=0,
                    help="pods made as large as the API allows: this many bytes of annotations "
                         "and env entries each (a tenant's hostile pods)")
    a = ap.parse_args()
    srv = StandIn(a.token)
    for i in range(a.pods):
        if a.big:
            p = pod(f"big-{i}", a.namespace, a.node, labels={"app": "big"},
                    annotations={f"tenant.example.com/blob-{k}": "x" * 1000 for k in range(a.big // 2000)})
            p["spec"]["containers"][0]["env"] = [{"name": f"ENV_{k}", "value": "y" * 900}
                                                  for k in range(a.big // 2000)]
            srv.add(p)
            continue
        labels = {f"app.example.com/label-{k}": f"value-{i}-{k}" for k in range(a.labels)}
        labels["pod-template-hash"] = "5d8f7c9b6"
        ann = {f"team.example.com/a{k}": f"annotation {k} of pod {i}" for k in range(5)}
        if i == 0 and a.hint:
            ann["logpipe.io/multiline"] = a.hint
        srv.add(pod(f"pod-{i}", a.namespace, a.node, labels=labels,
                    annotations=ann,
                    owner=("ReplicaSet", f"app-{i % 10}-5d8f7c9b6"), ip=f"10.244.{i // 250}.{i % 250}",
                    containers=(("app", f"registry.example/app-{i % 10}:1.{i}"),)))
    with open(a.url_file + ".tmp", "w") as f:
        f.write(srv.url)
    import os
    os.rename(a.url_file + ".tmp", a.url_file)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
