"""A real Kubernetes API server on loopback for tests: Debian's etcd and a
kube-apiserver built from the k8s.io/kubernetes module by
tests/infra/kube/build.sh (no kubelet: pods are stored, listed, watched and
deleted for real, and stay Pending). See ../shared/notes in the project's
history and docs/shipper.md for what it is used for.

    api = KubeAPI(tmpdir)          # etcd + kube-apiserver on free ports, ready
    api.request("POST", "/api/v1/namespaces", {...})
    api.create_pod(pod_obj)        # the namespace and its default ServiceAccount first
    api.token, api.url, api.ca_file
    api.stop()

The admin token is in api.token (a static token file, system:masters)."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apiserver_binary():
    """The kube-apiserver tests/infra/kube/build.sh built, or None."""
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    tools = os.environ.get("LP_TOOLS_DIR", os.path.join(repo, ".run", "tools"))
    p = os.path.join(tools, "bin", "kube-apiserver")
    return p if os.access(p, os.X_OK) else None


class KubeAPI:
    def __init__(self, tmp, token="lp-admin-token"):
        self.dir = os.path.join(tmp, "kube")
        os.makedirs(self.dir, exist_ok=True)
        self.token = token
        self.procs = []
        binary = apiserver_binary()
        etcd = shutil.which("etcd")
        if not binary or not etcd:
            raise RuntimeError("needs etcd (apt-get install etcd-server) and kube-apiserver "
                               "(tests/infra/kube/build.sh)")
        cport, pport, self.port = free_port(), free_port(), free_port()
        self.procs.append(subprocess.Popen(
            [etcd, "--data-dir", os.path.join(self.dir, "etcd"),
             "--listen-client-urls", f"http://127.0.0.1:{cport}",
             "--advertise-client-urls", f"http://127.0.0.1:{cport}",
             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
             "--initial-cluster", f"default=http://127.0.0.1:{pport}",
             "--max-request-bytes", str(3 << 20)],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "etcd.log"), "wb")))
        key, pub = os.path.join(self.dir, "sa.key"), os.path.join(self.dir, "sa.pub")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "tokens.csv"), "w") as f:
            f.write(f"{token},admin,admin,system:masters\n")
        certs = os.path.join(self.dir, "certs")
        self.procs.append(subprocess.Popen(
            [binary, f"--etcd-servers=http://127.0.0.1:{cport}", f"--secure-port={self.port}",
             "--bind-address=127.0.0.1", f"--cert-dir={certs}",
             "--service-account-issuer=https://kubernetes.default.svc",
             f"--service-account-key-file={pub}", f"--service-account-signing-key-file={key}",
             "--authorization-mode=Node,RBAC",
             f"--token-auth-file={os.path.join(self.dir, 'tokens.csv')}",
             "--service-cluster-ip-range=10.96.0.0/16", "--advertise-address=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "apiserver.log"), "wb")))
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = os.path.join(certs, "apiserver.crt")
        deadline = time.time() + 120
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"etcd or kube-apiserver exited; logs in {self.dir}")
            try:
                if os.path.exists(self.ca_file) and \
                        self.request("GET", "/readyz")[0] == 200:
                    return
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"kube-apiserver not ready in 120 s; logs in {self.dir}")

    def request(self, method, path, body=None, content_type="application/json"):
        """(status, parsed JSON or text) of one request as the admin."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                text = r.read().decode()
                st = r.status
        except urllib.error.HTTPError as e:
            text, st = e.read().decode(), e.code
        try:
            return st, json.loads(text)
        except ValueError:
            return st, text

    def kubeconfig(self, path):
        """Writes a kubeconfig for kubectl and helm (the admin token); returns path."""
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "lp",
                       "clusters": [{"name": "lp", "cluster": {"server": self.url,
                                                               "certificate-authority": self.ca_file}}],
                       "users": [{"name": "admin", "user": {"token": self.token}}],
                       "contexts": [{"name": "lp", "context": {"cluster": "lp", "user": "admin"}}]}, f)
        os.chmod(path, 0o600)
        return path

    def ensure_namespace(self, ns):
        self.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        # no controller manager here: the namespace's default ServiceAccount by hand
        self.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                     {"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": "default"}})

    def create_pod(self, pod):
        ns = pod["metadata"]["namespace"]
        st, body = self.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
        if st != 201:
            raise RuntimeError(f"create pod {pod['metadata']['name']}: {st} {str(body)[:300]}")
        return body

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []
