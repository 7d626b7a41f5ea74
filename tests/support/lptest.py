"""Helpers shared by the Python tests (integration, chaos, deploy, docs).

Processes a test starts go through spawn(): whatever way the test ends (an
assertion, an exception, SIGTERM or SIGINT from ctest, even SIGKILL of the
test itself) they are stopped, so a failed run leaves no daemon holding
ports, Kafka groups or files for the next one."""
import atexit
import ctypes
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

_spawned = []
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # in the child, before exec: SIGKILL when the test process goes away
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(args, **kw):
    """subprocess.Popen that is stopped when the test ends: SIGTERM at exit
    (SIGKILL 10 s later), and SIGKILL from the kernel if the test process
    dies without running its exit handlers."""
    if "preexec_fn" not in kw:
        kw["preexec_fn"] = _die_with_parent
    p = subprocess.Popen(args, **kw)
    _spawned.append(p)
    return p


def _stop_spawned():
    live = [p for p in _spawned if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _on_signal(signum, frame):
    sys.exit(128 + signum)  # runs the exit handlers


atexit.register(_stop_spawned)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    if signal.getsignal(_sig) in (signal.SIG_DFL, signal.default_int_handler):
        signal.signal(_sig, _on_signal)


def wait_until(cond, timeout, what=None, interval=0.5):
    """Polls cond() until it returns something true (returned) or timeout
    seconds pass (then None; with what, a line says what was not reached)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            if what:
                print(f"timed out after {timeout}s waiting for {what}", flush=True)
            return None
        time.sleep(interval)


def es_count(url, index, query=None):
    """Documents in index (a pattern) after a refresh; -1 when the search
    fails (no such index yet, node down)."""
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"),
                               timeout=30).read()
        body = json.dumps({"query": query}).encode() if query else None
        req = urllib.request.Request(f"{url}/{index}/_count", data=body,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if body else "GET")
        return json.loads(urllib.request.urlopen(req, timeout=30).read())["count"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return -1


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


# ---- the test S3 server (scripts/services up s3) ----
S3_EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def s3_env():
    """(endpoint, bucket, access key, secret) of the test S3 server."""
    import os
    return ("http://127.0.0.1:" + os.environ.get("S3_PORT", "9410"), "logpipe",
            os.environ.get("S3_ACCESS_KEY", "logpipe-test"),
            os.environ.get("S3_SECRET_KEY", "logpipe-test-secret"))


def s3_request(method, key="", query="", endpoint=None, out=None):
    """(HTTP status, body bytes) of one signed request (curl's SigV4) to the
    test bucket; query is given sorted and encoded."""
    import subprocess
    import urllib.parse
    ep, bucket, ak, sk = s3_env()
    url = f"{endpoint or ep}/{bucket}/{urllib.parse.quote(key)}" + (f"?{query}" if query else "")
    cmd = ["curl", "-s", "-m", "60", "-X", method, "--aws-sigv4", "aws:amz:us-east-1:s3",
           "-u", f"{ak}:{sk}", "-H", f"x-amz-content-sha256: {S3_EMPTY_SHA}",
           "-w", "\n%{http_code}", url]
    r = subprocess.run(cmd, capture_output=True, check=False)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), body


def s3_put(key, data=b""):
    """PUT data as key in the test bucket; raises unless 200."""
    import hashlib
    import subprocess
    import urllib.parse
    ep, bucket, ak, sk = s3_env()
    url = f"{ep}/{bucket}/{urllib.parse.quote(key)}"
    cmd = ["curl", "-s", "-m", "60", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3",
           "-u", f"{ak}:{sk}", "-H", "x-amz-content-sha256: " + hashlib.sha256(data).hexdigest(),
           "--data-binary", "@-", "-o", "/dev/null", "-w", "%{http_code}", url]
    r = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if r.stdout != b"200":
        raise RuntimeError(f"put {key}: HTTP {r.stdout!r}")


def s3_put_empty(keys):
    """PUT an empty object at every key (one curl, one connection)."""
    import subprocess
    import tempfile
    import urllib.parse
    ep, bucket, ak, sk = s3_env()
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as cfg:
        for k in keys:
            cfg.write(f'url = "{ep}/{bucket}/{urllib.parse.quote(k)}"\noutput = "/dev/null"\n')
        cfg.flush()
        r = subprocess.run(["curl", "-s", "-m", "600", "-X", "PUT", "--aws-sigv4",
                            "aws:amz:us-east-1:s3", "-u", f"{ak}:{sk}", "-H",
                            "x-amz-content-sha256: " + S3_EMPTY_SHA, "--data-binary", "",
                            "-w", "%{http_code}\n", "-K", cfg.name],
                           capture_output=True, check=False)
    codes = r.stdout.decode().split()
    if len(codes) != len(keys) or set(codes) != {"200"}:
        raise RuntimeError(f"put of {len(keys)} empty objects: {collections_counter(codes)}")


def collections_counter(items):
    import collections
    return dict(collections.Counter(items))


def s3_list(prefix):
    """Every (key, size) under prefix in the test bucket."""
    import re
    import urllib.parse
    keys, token = [], None
    while True:
        q = (f"continuation-token={urllib.parse.quote(token, safe='')}&" if token else "")
        q += "list-type=2&prefix=" + urllib.parse.quote(prefix, safe="")
        st, body = s3_request("GET", "", q)
        if st != 200:
            raise RuntimeError(f"list {prefix}: HTTP {st} {body[:200]!r}")
        text = body.decode()
        for item in re.findall(r"<Contents>(.*?)</Contents>", text, re.S):
            k = re.search(r"<Key>(.*?)</Key>", item, re.S).group(1)
            k = k.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"') \
                 .replace("&apos;", "'").replace("&amp;", "&")
            keys.append((k, int(re.search(r"<Size>(\d+)</Size>", item).group(1))))
        m = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", text)
        if "<IsTruncated>true</IsTruncated>" not in text or not m:
            return keys
        token = m.group(1)


def s3_lines(key):
    """The JSON lines of one object (.ndjson.zst, .ndjson.gz or .ndjson)."""
    import gzip
    import json
    import subprocess
    st, body = s3_request("GET", key)
    if st != 200:
        raise RuntimeError(f"get {key}: HTTP {st}")
    if key.endswith(".zst"):
        body = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=True).stdout
    elif key.endswith(".gz"):
        body = gzip.decompress(body)
    return [json.loads(l) for l in body.decode().splitlines() if l.strip()]
