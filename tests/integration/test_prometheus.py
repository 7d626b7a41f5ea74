#!/usr/bin/env python3
"""The shipped alert rules in a real Prometheus (Debian's prometheus package)
scraping the real daemons: a shipper tailing a file that grows, the
aggregator writing to the real OpenSearch, the retention daemon. The scrape
job is deploy/prometheus/scrape.yaml's with static targets (Debian's
Prometheus has no Kubernetes discovery): job="logpipe" and a "daemon" label,
which is what the rules select.

Then OpenSearch is stopped (scripts/services): LogpipeOutputDown must be
firing in Prometheus's /api/v1/alerts, with the output's labels; OpenSearch
comes back: the alert must resolve. The rules are loaded as shipped except
that every `for:` is cut to 5s and the evaluation runs every second, so the
wiring is tested in seconds (promtool test rules tests the real durations).
Also: every daemon's `up` is 1 and no other alert fires while all is well.

usage: test_prometheus.py BUILD_DIR"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, Checks

BUILD = os.path.abspath(sys.argv[1])
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
check = Checks()
work = tempfile.mkdtemp(prefix="lp-prom-")
procs = []


def start(args, log, env=None):
    p = spawn(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, log), "w"),
                         env=env)
    procs.append(p)
    return p


def api(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read())


def alerts(port, name):
    try:
        return [a for a in api(port, "/api/v1/alerts")["data"]["alerts"] if a["labels"]["alertname"] == name]
    except Exception:
        return []


def wait_for(what, fn, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = fn()
        except Exception:
            v = None
        if v:
            return v
        time.sleep(1)
    print("timed out (%d s): %s" % (timeout, what), flush=True)
    return None


def services(*args):
    subprocess.run([os.path.join(SRC, "scripts", "services")] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


run = int(time.time())
ports = {"shipper": free_port(), "aggregator": free_port(), "retention": free_port()}
prom_port = free_port()
logdir = os.path.join(work, "containers")
os.makedirs(logdir)
logfile = os.path.join(logdir, "web-1_prom_nginx-%064x.log" % run)
cfg = os.path.join(work, "logpipe.yaml")
with open(cfg, "w") as f:
    f.write("""kafka: {brokers: "%s", topic: lp-prom-%d}
shipper:
  state_dir: %s/state
  inputs: [{paths: ["%s/*.log"]}]
  batch_linger: 100ms
aggregator:
  group_id: lp-prom-%d
  dead_letter_dir: %s/dead-letter
  outputs:
    - {name: search, type: elasticsearch, url: "%s", index: "lp-prom-%d-%%Y.%%m.%%d", retry_max: 1s}
    - {name: files, type: file, path: %s/segments}
  default_route: {outputs: [search, files]}
retention:
  audit_log: %s/audit.ndjson
  interval: 10s
  policies: [{name: files, output: files, archive_after: 1d}]
metrics: {listen: "127.0.0.1:${LP_PORT}"}
""" % (BROKERS, run, work, logdir, run, work, ES, run, work, work))
for d in ("shipper", "aggregator", "retention"):
    start([os.path.join(BUILD, d, "logpipe-" + d), "-c", cfg], d + ".log",
          dict(os.environ, LP_PORT=str(ports[d])))

# a container that keeps writing
stop_writing = threading.Event()


def writer():
    i = 0
    with open(logfile, "a") as f:
        while not stop_writing.is_set():
            f.write("2026-12-02T00:00:00.%09dZ stdout F GET /item/%d 200\n" % (i % 10**9, i))
            f.flush()
            i += 1
            time.sleep(0.05)


threading.Thread(target=writer, daemon=True).start()

# the rules as shipped, every `for:` cut to 5s
rules = open(os.path.join(SRC, "deploy", "prometheus", "logpipe-alerts.yaml")).read()
rules = re.sub(r"^(\s+)for: \S+$", r"\1for: 5s", rules, flags=re.M)
with open(os.path.join(work, "rules.yaml"), "w") as f:
    f.write(rules)
with open(os.path.join(work, "prometheus.yml"), "w") as f:
    f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yaml]\n"
            "scrape_configs:\n"
            "  - job_name: logpipe\n"
            "    static_configs:\n" +
            "".join("      - {targets: ['127.0.0.1:%d'], labels: {daemon: %s}}\n" % (ports[d], d)
                    for d in ports))
start([PROMETHEUS, "--config.file=" + os.path.join(work, "prometheus.yml"),
              "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
              "--web.listen-address=127.0.0.1:%d" % prom_port], "prometheus.log")

os_stopped = False
try:
    def all_up():
        r = api(prom_port, "/api/v1/query?query=up%7Bjob%3D%22logpipe%22%7D")["data"]["result"]
        return r if len(r) == 3 and all(x["value"][1] == "1" for x in r) else None

    def es_count():
        try:
            with urllib.request.urlopen(ES + "/lp-prom-%d-*/_count" % run, timeout=10) as r:
                return json.loads(r.read()).get("count", 0)
        except Exception:
            return 0

    ups = wait_for("every daemon up", all_up, 60)
    check(ups is not None, "Prometheus scrapes the three daemons, up == 1: %s" %
          sorted(x["metric"].get("daemon") for x in (ups or [])))
    indexed = wait_for("documents indexed", es_count, 60)
    check(bool(indexed), "the aggregator indexes the container's lines (%s)" % indexed)
    time.sleep(8)  # longer than every for: 5s
    firing = [a for a in api(prom_port, "/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
    check(not firing, "no alert fires while everything works: %s" % [a["labels"]["alertname"] for a in firing])

    services("down", "opensearch")
    os_stopped = True
    t0 = time.time()
    got = wait_for("LogpipeOutputDown firing",
                   lambda: [a for a in alerts(prom_port, "LogpipeOutputDown") if a["state"] == "firing"], 120)
    check(bool(got), "OpenSearch stopped: LogpipeOutputDown fires")
    print("OpenSearch stopped: LogpipeOutputDown firing after %.0f s" % (time.time() - t0), flush=True)
    if got:
        l = got[0]["labels"]
        check(l.get("output") == "search" and l.get("daemon") == "aggregator" and l.get("job") == "logpipe"
              and l.get("severity") == "critical", "the alert names the output and daemon: %s" % l)
        check("runbook_url" in got[0]["annotations"], "the alert links its runbook")
    services("start", "opensearch")
    os_stopped = False
    t0 = time.time()
    gone = wait_for("LogpipeOutputDown resolved", lambda: not alerts(prom_port, "LogpipeOutputDown"), 180)
    check(bool(gone), "OpenSearch back: LogpipeOutputDown resolves")
    print("OpenSearch back: LogpipeOutputDown resolved after %.0f s" % (time.time() - t0), flush=True)
finally:
    stop_writing.set()
    if os_stopped:
        services("start", "opensearch")
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            p.kill()
    if check.failures:
        for n in ("aggregator.log", "prometheus.log"):
            print("---- %s (tail)\n%s" % (n, open(os.path.join(work, n)).read()[-2000:]))
    shutil.rmtree(work, ignore_errors=True)
print("prometheus: %d checks, %d failed" % (check.count, len(check.failures)))
sys.exit(1 if check.failures else 0)
