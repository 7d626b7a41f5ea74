"""Helpers shared by the Python tests (integration, chaos, deploy, docs)."""
import socket
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Checks:
    """Counts checks and keeps the failed ones (printed as they happen)."""

    def __init__(self):
        self.failures = []
        self.count = 0

    def __call__(self, cond, what):
        self.count += 1
        if not cond:
            self.failures.append(what)
            print("FAIL:", what, flush=True)
        return cond


def http(method, url, body=None, timeout=30):
    """(status, body text) of one JSON request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ndjson_lines(pattern):
    """Every JSON line of the files matching a glob (dead letters, segments)."""
    import glob
    import json
    out = []
    for p in sorted(glob.glob(pattern, recursive=True)):
        with open(p) as f:
            out += [json.loads(l) for l in f if l.strip()]
    return out


def metrics_text(port):
    """The text of 127.0.0.1:port/metrics, or "" when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def metric_sum(port, name, text=None):
    """The sum of one metric's series (any labels), from text or scraped now;
    None when it is not there."""
    import re
    text = text if text is not None else metrics_text(port)
    vals = [float(v) for v in re.findall(r"^" + re.escape(name) + r"(?:\{[^}]*\})? (\S+)$", text, re.M)]
    return sum(vals) if vals else None


def stop_procs(procs, timeout=60):
    """SIGTERM every still-running process of the dict, then wait for each
    (SIGKILL after timeout seconds)."""
    import signal
    import subprocess
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
