#!/usr/bin/env python3
"""A new admin's first hour, as docs/getting-started.md section 2 tells it:
its `yaml walk-config` block, as written, is the one configuration of all
three daemons — only the paths, the topic and the index prefix are made this
run's own — started side by side with no overlay. Files named like
kubelet's lie in a directory of the user's choosing (not /log/containers/).

Checks: the three daemons run together, each serving /metrics on its own
default port (shipper 9464, retention 9465, aggregator 9466); every event
carries its namespace, pod and container from the file name; nothing goes to
an "unknown" index.

usage: test_walk_e2e.py SOURCE_DIR SHIPPER AGGREGATOR RETENTION"""
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, Checks, http, stop_procs

SRC = sys.argv[1]
SHIPPER, AGG, RET = map(os.path.abspath, sys.argv[2:5])
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-walk-")
run = "walk%x" % int(time.time() * 1000)

doc = open(os.path.join(SRC, "docs", "getting-started.md")).read()
m = re.search(r"^```yaml walk-config\n(.*?)^```", doc, re.M | re.S)
if not m:
    sys.exit("docs/getting-started.md has no ```yaml walk-config block")
cfg = m.group(1)
logs = os.path.join(tmp, "k8s-logs")
os.makedirs(logs)
for a, b in (("/srv/k8s-logs", logs), ("/var/lib/logpipe", os.path.join(tmp, "state")),
             ("topic: logs", f"topic: {run}"), ('"logs-{', f'"{run}-{{'),
             ('"logs-*"', f'"{run}-*"'), ("group_id: logpipe-aggregator", f"group_id: {run}"),
             ("127.0.0.1:9092", "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")),
             ("127.0.0.1:9200", "127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200"))):
    check(a in cfg, f"the walk block has {a!r}")
    cfg = cfg.replace(a, b)
path = os.path.join(tmp, "my.yaml")
with open(path, "w") as f:
    f.write(cfg)

pods = [("web-5d8f9", "shop", "nginx"), ("pay-0", "billing", "api")]
N = 50
for i, (pod, ns, ctr) in enumerate(pods):
    with open(os.path.join(logs, f"{pod}_{ns}_{ctr}-{i + 1:064x}.log"), "w") as f:
        for k in range(N):
            ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            f.write(f"{ts} stdout F {pod} line {k}\n")

procs = {}
for name, exe in (("aggregator", AGG), ("shipper", SHIPPER), ("retention", RET)):
    procs[name] = spawn([exe, "-c", path],
                                   stderr=open(os.path.join(tmp, name + ".log"), "wb"))


def metrics_up(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def events():
    http("POST", f"{ES}/{run}-*/_refresh")
    st, body = http("POST", f"{ES}/{run}-*/_search",
                    json.dumps({"size": 1000, "query": {"match_all": {}}}))
    if st != 200:
        return [], []
    hits = json.loads(body)["hits"]["hits"]
    return [h["_source"] for h in hits], [h["_index"] for h in hits]


try:
    deadline = time.time() + 90
    evs, idx = [], []
    while time.time() < deadline:
        evs, idx = events()
        if len(evs) >= N * len(pods):
            break
        time.sleep(0.5)
    for name in procs:
        check(procs[name].poll() is None,
              f"{name} runs next to the others (log: {tmp}/{name}.log)")
    for name, port in (("shipper", 9464), ("retention", 9465), ("aggregator", 9466)):
        text = metrics_up(port)
        check(f"logpipe_{name}_start_time_seconds" in text,
              f"{name} serves its metrics on 127.0.0.1:{port}")
    check(len(evs) == N * len(pods), f"every line indexed ({len(evs)} of {N * len(pods)})")
    want = {pod: (ns, ctr) for pod, ns, ctr in pods}
    bad = [e for e in evs
           if (e.get("kubernetes", {}).get("namespace"),
               e.get("kubernetes", {}).get("container", {}).get("name")) !=
           want.get(e.get("kubernetes", {}).get("pod", {}).get("name"))]
    check(not bad, f"every event has its namespace, pod and container ({len(bad)} without; "
          f"{json.dumps(bad[:1])[:300]})")
    check(not [i for i in idx if "unknown" in i], f"no unknown index ({sorted(set(idx))})")
finally:
    stop_procs(procs)

if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_walk_e2e: {check.count} checks passed")
