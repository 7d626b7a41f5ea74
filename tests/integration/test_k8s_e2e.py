#!/usr/bin/env python3
"""Kubernetes pod metadata end to end: the real shipper with
shipper.kubernetes on, talking to a stand-in API server
(tests/support/k8s_standin.py: no cluster can run on these machines, so a
small HTTP server plays the API server's pod list and watch, with paging,
ADDED/MODIFIED/DELETED events, a 410 Gone after compaction, bearer tokens
and an outage), the real Kafka, the real aggregator and the real
OpenSearch.

This node is node-a. Its pods: jvm-0, batch-0 and bad-0 (multiline hints:
java, a custom start pattern, a pattern that does not compile), web-7d9f8c6b5-x2k4q (a Deployment's, through
its ReplicaSet; an allowed and a not-allowed annotation; the parser hint
logpipe.io/parser: app-json with JSON lines), db-0 (a StatefulSet's; deleted
mid-test), noisy-5f6gh (a DaemonSet's, logpipe.io/exclude: "true"), 1200
filler pods (the list comes in pages of 25) and late-1 (created after its
first lines were read). other-1 runs on node-b: the field selector keeps it
out of the cache, its lines ship with what their path says.

nightly-29123456-x7k2p belongs to a Job a CronJob made.

Checks: labels, owner (the CronJob through its Job), node, pod IP, image and the allowed annotation on
every document of a known pod, the other annotation nowhere; the hint
parses web's lines; the multiline hints join traces (a bad one is counted
and changes nothing; regex-0's costly pattern goes over its CPU budget and
its file falls back to the input's rules, every line shipped); lines of a pod not known yet ship at once, flagged
logpipe.metadata: pending, and the later ones carry its labels; an API
outage ships without delay with the stale cache while the cache-age gauge
grows; after it, the watch's 410 relists and new lines carry the modified
labels; a deleted pod's later lines keep its metadata; the excluded pod
ships nothing, is counted and leaves no lag; a rotated token file is read
again; every request asks for this node's pods only and is authorized. A
second shipper reaches a second stand-in over HTTPS through a kubeconfig
(server, certificate-authority-data, token). Two more start with a backlog
while their API server refuses connections: one waits for its first list
(labels on the whole backlog, the excluded pod's backlog not shipped), the
other, whose server never answers, ships pending after first_list_wait.

usage: test_k8s_e2e.py SHIPPER AGGREGATOR"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, free_port, http, metric_sum, metrics_text, stop_procs, Checks
from k8s_standin import StandIn, pod

SHIPPER, AGGREGATOR = map(os.path.abspath, sys.argv[1:3])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()

tmp = tempfile.mkdtemp(prefix="lp-k8s-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
token = os.path.join(tmp, "token")
with open(token, "w") as f:
    f.write("token-one\n")
api = StandIn("token-one")

WEB = pod("web-7d9f8c6b5-x2k4q", "shop", "node-a",
          labels={"app.kubernetes.io/name": "web", "pod-template-hash": "7d9f8c6b5", "version": "v1"},
          annotations={"team.example.com/owner": "checkout", "team.example.com/secret": "hunter2",
                       "logpipe.io/parser": "app-json"},
          owner=("ReplicaSet", "web-7d9f8c6b5"), ip="10.244.1.7",
          containers=(("app", "registry.example/web:2.1"), ("proxy", "envoy:1.29")))
DB = pod("db-0", "shop", "node-a", labels={"app": "db"}, owner=("StatefulSet", "db"),
         ip="10.244.1.8", containers=(("postgres", "postgres:16"),))
NOISY = pod("noisy-5f6gh", "ops", "node-a", labels={"app": "noisy"},
            annotations={"logpipe.io/exclude": "true"}, owner=("DaemonSet", "noisy"))
OTHER = pod("other-1", "shop", "node-b", labels={"app": "other"})
LATE = pod("late-1", "shop", "node-a", labels={"app": "late"}, owner=("Job", "late"))
# multiline hints: built-in java rules, a custom start pattern, one that does not compile
JVM = pod("jvm-0", "shop", "node-a", annotations={"logpipe.io/multiline": "java"},
          owner=("StatefulSet", "jvm"))
PY = pod("batch-0", "shop", "node-a", annotations={"logpipe.io/multiline": r"^\[\d+\] "})
BAD = pod("bad-0", "shop", "node-a", annotations={"logpipe.io/multiline": "(["})
# a costly pattern (catastrophic backtracking on lines that end in '!'): over
# its CPU budget (hint_cpu 1ms below), its file falls back to the input's rules
HOG = pod("regex-0", "shop", "node-a", annotations={"logpipe.io/multiline": r"^(\w+\s?)*$"})
# a CronJob's pod: its Job says who made it
CRON = pod("nightly-29123456-x7k2p", "shop", "node-a", labels={"app": "nightly"},
           owner=("Job", "nightly-29123456"))
api.add_job("shop", "nightly-29123456", cronjob="nightly")
api.add_job("shop", "late")  # a Job of its own
# a Job the shipper may not read (RBAC without batch jobs get): named by the Job
LOCKED = pod("locked-1", "shop", "node-a", labels={"app": "locked"}, owner=("Job", "locked"))
api.add_job("shop", "locked", cronjob="hidden")
api.forbidden_jobs.add(("shop", "locked"))
for p in (WEB, DB, NOISY, OTHER, JVM, PY, BAD, CRON, LOCKED, HOG):
    api.add(p)
for i in range(1200):
    api.add(pod(f"filler-{i}", "fill", "node-a", labels={"i": str(i)}))

# a second API server over TLS, reached through a kubeconfig (server, CA data,
# token) by a second shipper that only has to sync its cache
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", os.path.join(tmp, "api.key"), "-out", os.path.join(tmp, "api.crt")],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", os.path.join(tmp, "other.key"), "-out", os.path.join(tmp, "other.crt")],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
tls_api = StandIn("kc-token", tls=(os.path.join(tmp, "api.crt"), os.path.join(tmp, "api.key")))
tls_api.add(pod("tls-pod", "shop", "node-a"))
os.makedirs(os.path.join(tmp, "kube"))
for name, crt in (("config", "api.crt"), ("wrong-ca", "other.crt")):
    with open(os.path.join(tmp, crt), "rb") as f:
        ca_data = base64.b64encode(f.read()).decode()
    with open(os.path.join(tmp, "kube", name), "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: standin
clusters:
  - name: standin
    cluster: {{server: "{tls_api.url}", certificate-authority-data: {ca_data}}}
contexts:
  - name: standin
    context: {{cluster: standin, user: shipper}}
users:
  - name: shipper
    user: {{token: kc-token}}
""")

ids = {}


def log_path(p, ctr):
    key = (p["metadata"]["name"], ctr)
    ids.setdefault(key, "%064x" % (len(ids) + 1))
    return os.path.join(logs, f"{p['metadata']['name']}_{p['metadata']['namespace']}_{ctr}-{ids[key]}.log")


def write(p, ctr, lines):
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with open(log_path(p, ctr), "a") as f:
        for l in lines:
            f.write(f"{ts} stdout F {l}\n")


topic = "lp-k8s-%d" % os.getpid()
prefix = topic
ship_port, agg_port = free_port(), free_port()
with open(os.path.join(tmp, "shipper.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/ship-state
  host_name: node-a
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
  rescan_interval: 200ms
  kubernetes:
    enabled: true
    api_url: {api.url}
    token_file: {token}
    ca_file: ""
    node_name: node-a
    annotations: ["team.example.com/owner"]
    watch_timeout: 4s
    retry_initial: 100ms
    retry_max: 500ms
    hint_cpu: 1ms
metrics: {{listen: 127.0.0.1:{ship_port}}}
""")
with open(os.path.join(tmp, "aggregator.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
aggregator:
  group_id: {prefix}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/dead-letter
  parsers: [{{name: app-json, kind: json}}]
  default_route: {{outputs: [search], hint_parsers: [app-json]}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{prefix}-{{kubernetes.namespace}}"
      template_name: {prefix}
      flush_interval: 100ms
      retry_initial: 100ms
metrics: {{listen: 127.0.0.1:{agg_port}}}
""")

kc_port, bad_port = free_port(), free_port()
for name, kube, port in (("kc", "config", kc_port), ("bad", "wrong-ca", bad_port)):
    with open(os.path.join(tmp, f"shipper-{name}.yaml"), "w") as f:
        f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}-kc}}
shipper:
  state_dir: {tmp}/ship-{name}-state
  inputs: [{{paths: ["{tmp}/none/*.log"]}}]
  kubernetes: {{enabled: true, kubeconfig: {tmp}/kube/{kube}, node_name: node-a, retry_initial: 100ms, retry_max: 500ms}}
metrics: {{listen: 127.0.0.1:{port}}}
""")
procs = {f"shipper-{n}": spawn([SHIPPER, "-c", os.path.join(tmp, f"shipper-{n}.yaml")],
                                          stderr=open(os.path.join(tmp, f"shipper-{n}.log"), "wb"))
         for n in ("kc", "bad")}
procs.update({"shipper": spawn([SHIPPER, "-c", os.path.join(tmp, "shipper.yaml")],
                                     stderr=open(os.path.join(tmp, "shipper.log"), "wb")),
         "aggregator": spawn([AGGREGATOR, "-c", os.path.join(tmp, "aggregator.yaml")],
                                        stderr=open(os.path.join(tmp, "aggregator.log"), "wb"))})


def sm(name, labels=None):
    text = metrics_text(ship_port)
    if labels:
        text = "\n".join(l for l in text.splitlines() if labels in l)
    return metric_sum(0, name, text)


def wait(cond, secs, what):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return check(False, f"{what} (after {secs} s)")


def docs(query=None):
    http("POST", f"{ES}/{prefix}-*/_refresh")
    st, body = http("POST", f"{ES}/{prefix}-*/_search", json.dumps(
        {"size": 10000, "query": query or
         {"bool": {"must_not": {"term": {"kubernetes.pod.name": "regex-0"}}}}}))
    return [h["_source"] for h in json.loads(body)["hits"]["hits"]] if st == 200 else []


def of(pod_name, ds):
    return [d for d in ds if d.get("kubernetes", {}).get("pod", {}).get("name") == pod_name]


def count(pod_name):
    http("POST", f"{ES}/{prefix}-*/_refresh")
    st, body = http("POST", f"{ES}/{prefix}-*/_count", json.dumps(
        {"query": {"term": {"kubernetes.pod.name": pod_name}}}))
    return json.loads(body).get("count", 0) if st == 200 else 0


kc_synced = lambda: metric_sum(kc_port, "logpipe_shipper_k8s_synced") == 1
wait(kc_synced, 30, "the kubeconfig shipper synced over TLS with the CA data and token")
check(metric_sum(kc_port, "logpipe_shipper_k8s_pods") == 1 and tls_api.requests and
      all(r[2] for r in tls_api.requests), f"... its pod, every request authorized ({tls_api.requests[:2]})")
bad_errors = metric_sum(0, "logpipe_shipper_k8s_requests_total", "\n".join(
    l for l in metrics_text(bad_port).splitlines() if 'result="error"' in l))
check(metric_sum(bad_port, "logpipe_shipper_k8s_synced") == 0 and bad_errors >= 1,
      f"a kubeconfig with another CA is refused by certificate verification (never synced, {bad_errors} errors)")

# 1. the first list (49 pages), then the known pods' lines
wait(lambda: sm("logpipe_shipper_k8s_synced") == 1, 30, "the shipper's pod cache synced")
check(sm("logpipe_shipper_k8s_pods") == 1209, f"the cache holds node-a's 1209 pods, not node-b's "
      f"({sm('logpipe_shipper_k8s_pods')})")
write(WEB, "app", [json.dumps({"level": "info", "msg": f"web request {i}", "seq": i}) for i in range(100)])
write(WEB, "proxy", [f"proxy line {i}" for i in range(20)])
write(DB, "postgres", [f"db line {i}" for i in range(100)])
write(NOISY, "app", [f"noise {i}" for i in range(100)])
write(OTHER, "app", [f"other line {i}" for i in range(20)])
write(LATE, "app", [f"late early {i}" for i in range(20)])  # its pod is not known yet
trace = []
for i in range(10):
    trace += [f"java.lang.IllegalStateException: boom {i}", "\tat com.example.App.run(App.java:10)",
              "\tat com.example.App.main(App.java:5)", "Caused by: java.io.IOException: disk full",
              "\t... 2 more"]
write(JVM, "app", trace)
write(PY, "app", [l for i in range(10) for l in (f"[{i}] job step", f"  detail a {i}", f"  detail b {i}")])
write(BAD, "app", [l for i in range(10) for l in (f"bad {i}", f"  indented {i}")])
write(CRON, "app", [f"nightly run step {i}" for i in range(10)])
write(LOCKED, "app", [f"locked step {i}" for i in range(10)])
wait(lambda: count("late-1") == 20 and count("web-7d9f8c6b5-x2k4q") == 120, 60,
     "the first lines indexed")

# 2. late-1 is created; its next lines carry its metadata. Its Job is
#    answered slowly: the ADDED is counted only once the cache holds the pod
#    (its owner asked for first), so lines written after the count carry it.
added = sm("logpipe_shipper_k8s_watch_events_total", 'type="ADDED"')
api.job_delay = 0.5
api.add(LATE)
wait(lambda: sm("logpipe_shipper_k8s_watch_events_total", 'type="ADDED"') > added, 20,
     "the watch delivered late-1's ADDED")
api.job_delay = 0.0
write(LATE, "app", [f"late known {i}" for i in range(20)])

# 3. the token rotates (the file first, then the server forgets the old one)
with open(token, "w") as f:
    f.write("token-two\n")
api.tokens = {"token-one", "token-two"}
time.sleep(0.5)
api.tokens = {"token-two"}
rotated_at = len(api.requests)
api.end_watches()
wait(lambda: any(r[2] for r in api.requests[rotated_at:]), 20, "a request with the rotated token")

# 4. an outage: lines ship at once with the cache as it was; the pod changes
#    and the server's history is compacted meanwhile
wait(lambda: count("late-1") == 40, 60, "late-1's later lines indexed")
lists_before = sm("logpipe_shipper_k8s_lists_total")
api.down()
web2 = json.loads(json.dumps(WEB))
web2["metadata"]["labels"]["version"] = "v2"
api.add(web2)
api.compact()
t0 = time.time()
write(WEB, "app", [json.dumps({"level": "warn", "msg": f"web during outage {i}", "seq": 100 + i})
                   for i in range(50)])
wait(lambda: count("web-7d9f8c6b5-x2k4q") == 170, 30, "lines written during the outage indexed")
outage_latency = time.time() - t0
check(outage_latency < 10, f"the outage did not delay shipping ({outage_latency:.1f} s to index 50 lines)")
wait(lambda: sm("logpipe_shipper_k8s_cache_age_seconds") >= 3, 10, "the cache-age gauge grows")
age = sm("logpipe_shipper_k8s_cache_age_seconds")
errors = sm("logpipe_shipper_k8s_requests_total", 'result="error"')
check(age >= 3, f"the cache-age gauge grows during the outage ({age} s)")
check(errors >= 2, f"failed requests are retried and counted ({errors})")
api.up()
wait(lambda: api.gone_sent and sm("logpipe_shipper_k8s_lists_total") > lists_before, 30,
     "after the outage, the watch's 410 Gone made a relist")
time.sleep(0.5)
write(WEB, "app", [json.dumps({"level": "info", "msg": f"web after {i}", "seq": 150 + i}) for i in range(50)])

# 5. db-0 is deleted; the lines read after that keep its metadata
deleted = sm("logpipe_shipper_k8s_watch_events_total", 'type="DELETED"')
api.delete("shop", "db-0")
wait(lambda: sm("logpipe_shipper_k8s_watch_events_total", 'type="DELETED"') > deleted, 20,
     "the watch delivered db-0's DELETED")
write(DB, "postgres", [f"db after delete {i}" for i in range(30)])

wait(lambda: count("web-7d9f8c6b5-x2k4q") == 220 and count("db-0") == 130 and count("jvm-0") == 10, 60,
     "every line indexed")
# 6. #29 item 11: the backlog at a shipper's start waits for the first pod
# list. A third shipper starts while its API server refuses connections,
# with lines already in its pods' files: nothing is read until the list
# completes, then the backlog ships with its labels and the excluded pod's
# backlog ships nothing. A fourth, whose API server never answers, ships
# its backlog pending once first_list_wait (2 s) has passed.
held_logs = {n: os.path.join(tmp, f"held-{n}", "log", "containers") for n in ("held", "never")}
for d_ in held_logs.values():
    os.makedirs(d_)
BACKLOG = pod("backlog-1", "held", "node-c", labels={"app": "backlog"}, owner=("StatefulSet", "backlog"))
QUIET = pod("quiet-1", "held", "node-c", labels={"app": "quiet"}, annotations={"logpipe.io/exclude": "true"})
STRANDED = pod("stranded-1", "held", "node-d", labels={"app": "stranded"})
held_api, never_api = StandIn("held-token"), StandIn("held-token")
held_api.add(BACKLOG)
held_api.add(QUIET)
never_api.add(STRANDED)
held_api.down()
never_api.down()
with open(os.path.join(tmp, "held-token"), "w") as f:
    f.write("held-token\n")
for p_, n_, s_ in ((BACKLOG, 30, "held"), (QUIET, 30, "held"), (STRANDED, 10, "never")):
    with open(os.path.join(held_logs[s_], f"{p_['metadata']['name']}_held_app-{'%064x' % (len(p_['metadata']['name']))}.log"),
              "w") as f:
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        f.writelines(f"{ts} stdout F {p_['metadata']['name']} backlog {i}\n" for i in range(n_))
held_ports = {}
for name, node, a, wait_s in (("held", "node-c", held_api, "60s"), ("never", "node-d", never_api, "2s")):
    held_ports[name] = free_port()
    glob_ = f"{held_logs[name]}/*.log"
    with open(os.path.join(tmp, f"shipper-{name}.yaml"), "w") as f:
        f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/ship-{name}-state
  host_name: {node}
  inputs: [{{paths: ["{glob_}"]}}]
  batch_linger: 50ms
  kubernetes: {{enabled: true, api_url: "{a.url}", token_file: {tmp}/held-token, ca_file: "", node_name: {node}, retry_initial: 100ms, retry_max: 300ms, first_list_wait: {wait_s}}}
metrics: {{listen: 127.0.0.1:{held_ports[name]}}}
""")
    procs[f"shipper-{name}"] = spawn([SHIPPER, "-c", os.path.join(tmp, f"shipper-{name}.yaml")],
                                                stderr=open(os.path.join(tmp, f"shipper-{name}.log"), "wb"))
time.sleep(4)
held_read = metric_sum(held_ports["held"], "logpipe_shipper_events_total")
check(held_read == 0, f"while the API server is unreachable at start, the pods' backlog is not read ({held_read})")
held_api.up()
wait(lambda: count("backlog-1") >= 30 and count("stranded-1") >= 10, 60,
     "the held backlog ships once the first list completes, the stranded one after first_list_wait")
time.sleep(1)
ds2 = docs({"term": {"kubernetes.namespace": "held"}})
bl = of("backlog-1", ds2)
check(len(bl) == 30 and all(d["kubernetes"].get("labels", {}).get("app") == "backlog" and
                            d["kubernetes"].get("statefulset", {}).get("name") == "backlog" and
                            "metadata" not in d.get("logpipe", {}) for d in bl),
      f"backlog-1: its whole backlog carries its labels and owner, none pending ({len(bl)}; {json.dumps(bl[:1])[:300]})")
check(not of("quiet-1", ds2), "quiet-1 (logpipe.io/exclude): its backlog shipped nothing")
st_ = of("stranded-1", ds2)
check(len(st_) == 10 and all(d.get("logpipe", {}).get("metadata") == "pending" for d in st_),
      f"stranded-1: with no API server, its backlog ships pending after first_list_wait ({len(st_)})")
held_api.stop()
never_api.stop()

wait(lambda: sm("logpipe_shipper_lag_bytes") == 0 and sm("logpipe_shipper_inflight_bytes") == 0, 30,
     "the shipper has nothing left to ship (the excluded pod included)")
time.sleep(1)
# last, so that its 20,000 lines delay none of the checks above (the TSan
# daemons are slow): read and shipped to Kafka, its pattern over budget
write(HOG, "app", [("word " * 12) + f"w{i}!" for i in range(20000)])
wait(lambda: sm("logpipe_shipper_hints_throttled_total") >= 1 and
     sm("logpipe_shipper_lag_bytes") == 0 and sm("logpipe_shipper_inflight_bytes") == 0, 120,
     "regex-0's 20000 lines read and acknowledged by Kafka, its pattern over its CPU budget")
ship_metrics = metrics_text(ship_port)
stop_procs(procs)
api.stop()
tls_api.stop()

ds = docs()
web = of("web-7d9f8c6b5-x2k4q", ds)
db = of("db-0", ds)


def has_meta(d, labels, owner_kind, owner, ip, image):
    k, c = d.get("kubernetes", {}), d.get("container", {})
    return (all(k.get("labels", {}).get(a) == b for a, b in labels.items())
            and k.get(owner_kind, {}).get("name") == owner and k.get("node", {}).get("name") == "node-a"
            and k.get("pod", {}).get("ip") == ip and c.get("image", {}).get("name") == image
            and "metadata" not in d.get("logpipe", {}))


web_app = [d for d in web if d["container"]["name"] == "app"]
v1 = [d for d in web_app if d.get("seq", -1) < 150]
v2 = [d for d in web_app if d.get("seq", -1) >= 150]
check(len(web) == 220 and len(v1) == 150 and len(v2) == 50, f"web: 220 documents, 200 parsed as JSON "
      f"by the hint ({len(web)}, {len(v1)}+{len(v2)})")
ok = [d for d in v1 if has_meta(d, {"app_kubernetes_io/name": "web", "version": "v1"}, "deployment", "web",
                                "10.244.1.7", "registry.example/web:2.1")
      and d["kubernetes"].get("annotations", {}).get("team_example_com/owner") == "checkout"]
check(len(ok) == 150, f"web: labels, Deployment, node, pod IP, image and the allowed annotation on every "
      f"document before and during the outage ({len(ok)}/150; {json.dumps(v1[:1])[:600]})")
ok = [d for d in v2 if has_meta(d, {"app_kubernetes_io/name": "web", "version": "v2"}, "deployment", "web",
                                "10.244.1.7", "registry.example/web:2.1")]
check(len(ok) == 50, f"web: after the relist the new labels (version v2) ({len(ok)}/50)")
proxy = [d for d in web if d["container"]["name"] == "proxy"]
check(len(proxy) == 20 and all(d["container"].get("image", {}).get("name") == "envoy:1.29" for d in proxy),
      f"web: the proxy container's own image ({len(proxy)})")
check(not any("hunter2" in json.dumps(d) for d in ds), "the not-allowed annotation is nowhere")
check(all(d.get("log", {}).get("level") in ("info", "warn") and d["message"].startswith("web ")
          for d in web_app), "the parser hint parsed web's JSON lines (msg, level, seq)")
ok = [d for d in db if has_meta(d, {"app": "db"}, "statefulset", "db", "10.244.1.8", "postgres:16")]
check(len(db) == 130 and len(ok) == 130, f"db-0: StatefulSet and labels on all 130 documents, the 30 read "
      f"after its deletion too ({len(ok)}/{len(db)})")
late = of("late-1", ds)
early = [d for d in late if d["message"].startswith("late early")]
known = [d for d in late if d["message"].startswith("late known")]
check(len(early) == 20 and all(d.get("logpipe", {}).get("metadata") == "pending" and "labels" not in d["kubernetes"]
                               for d in early),
      f"late-1: the lines read before the pod was known shipped with path metadata, flagged pending "
      f"({len(early)}; {json.dumps(early[:1])[:400]})")
check(len(known) == 20 and all(has_meta(d, {"app": "late"}, "job", "late", "10.244.0.10",
                                        "registry.example/app:1.0") for d in known),
      f"late-1: the lines after its ADDED carry its metadata ({len(known)})")
jvm = of("jvm-0", ds)
check(len(jvm) == 10 and all(d["message"].count("\n") == 4 and "\tat com.example.App.run" in d["message"]
                             and d["message"].startswith("java.lang.IllegalStateException: boom")
                             for d in jvm),
      f"jvm-0: the java hint joins each trace into one event ({len(jvm)}; {json.dumps(jvm[:1])[:300]})")
py = of("batch-0", ds)
check(len(py) == 10 and all(d["message"].count("\n") == 2 for d in py),
      f"batch-0: the custom pattern hint joins each step with its details ({len(py)})")
bad = of("bad-0", ds)
check(len(bad) == 20, f"bad-0: a hint that does not compile leaves the input's rules: 20 events ({len(bad)})")
throttled = metric_sum(0, "logpipe_shipper_hints_throttled_total", ship_metrics)
check(throttled >= 1, f"regex-0: its costly pattern went over its CPU budget ({throttled} times); "
      f"every line shipped (the lag waited for above)")
hb = metric_sum(0, "logpipe_shipper_hints_invalid_total", ship_metrics)
check(hb == 1, f"the bad hint is counted once ({hb})")
cron = of("nightly-29123456-x7k2p", ds)
check(len(cron) == 10 and all(d["kubernetes"].get("cronjob", {}).get("name") == "nightly" and
                              "job" not in d["kubernetes"] for d in cron),
      f"the CronJob's pod is named by the CronJob, through its Job ({len(cron)}; "
      f"{json.dumps(cron[:1])[:400]})")
locked = of("locked-1", ds)
check(len(locked) == 10 and all(d["kubernetes"].get("job", {}).get("name") == "locked" and
                                "cronjob" not in d["kubernetes"] for d in locked),
      f"a Job the shipper may not read (403) names its pod ({len(locked)}; {json.dumps(locked[:1])[:300]})")
jobs_asked = [r[0] for r in api.requests if r[0].startswith("/apis/batch/v1/")]
check(len(jobs_asked) == 3, f"each Job is asked for once, a 403 too, across relists ({jobs_asked})")
other = of("other-1", ds)
check(len(other) == 20 and all(d.get("logpipe", {}).get("metadata") == "pending" and "labels" not in d["kubernetes"]
                               for d in other),
      f"other-1 (node-b's): shipped with path metadata only, pending ({len(other)})")
check(not of("noisy-5f6gh", ds), "the excluded pod shipped nothing")
excl = metric_sum(0, "logpipe_shipper_excluded_events_total", ship_metrics)
check(excl == 100, f"its 100 lines are counted as excluded ({excl})")
check(metric_sum(0, "logpipe_shipper_lag_bytes", ship_metrics) == 0, "no lag left behind by the excluded pod")

check(all(r[2] for r in api.requests), f"every request authorized ({sum(not r[2] for r in api.requests)} not)")
reqs = [r for r in api.requests if r[0] == "/api/v1/pods"]
check(len(reqs) + len(jobs_asked) == len(api.requests), "nothing is asked but pods and Jobs")
check(all(r[1].get("fieldSelector") == "spec.nodeName=node-a" for r in reqs),
      f"every pod request asks for node-a's pods only ({len(reqs)} requests)")
lists = [r for r in reqs if "watch" not in r[1]]
check(any("continue" in r[1] for r in lists) and all(r[1].get("limit") == "25" for r in lists),
      f"lists come in pages of 25 ({len(lists)} list requests)")
watches = [r for r in reqs if "watch" in r[1]]
check(len(watches) >= 3 and all(r[1].get("resourceVersion") for r in watches),
      f"watches resume from a resourceVersion ({len(watches)} watch requests)")

print(f"k8s: {len(ds)} documents (web {len(web)}, db {len(db)}, late {len(late)}, other {len(other)}); "
      f"outage: 50 lines indexed in {outage_latency:.1f} s, cache age {age} s, {errors} failed requests; "
      f"{len(lists)} list and {len(watches)} watch requests; {excl} excluded")
print(f"{check.count} checks, {len(check.failures)} failed")
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
http("DELETE", f"{ES}/{prefix}-*")
http("DELETE", f"{ES}/_index_template/{prefix}")
shutil.rmtree(tmp)
