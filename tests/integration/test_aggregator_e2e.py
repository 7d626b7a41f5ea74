#!/usr/bin/env python3
"""logpipe-aggregator end to end against the real Kafka (127.0.0.1:9092) and
OpenSearch (127.0.0.1:9200) started by scripts/services.

Phase 1: six containers (nginx access logs in Docker json-file, JSON app
logs in CRI, plain lines in Docker json-file from four pods) are shipped by
the real shipper; the aggregator indexes them into OpenSearch and writes file
segments, and is killed with SIGKILL twice mid-stream and restarted; a
second aggregator joins the group after the first kill and leaves with
SIGTERM later (scale out and in).
Phase 2: OpenSearch is stopped; more lines are shipped, with a value the
index template maps differently (kept by the content rules), a mapping
conflict only the cluster sees (healed: sent again with the field kept) and
a line its parser cannot read, and a corrupt batch is produced
by hand; the aggregator keeps writing files, pauses its partitions when the
bulk output backs up; after 30 s OpenSearch comes back and everything drains.

Checks: every line is in OpenSearch exactly once (documents = distinct event
ids = lines: no conflict is dead-lettered), in the segment files exactly
once, OpenSearch documents equal the file lines field for field (but
event.ingested and what healing kept), parsed fields are right, the dead
letter holds exactly the corrupt batch, partitions were paused and resumed,
SIGTERM exits 0 with the consumer lag at 0.

usage: test_aggregator_e2e.py SHIPPER AGGREGATOR LP_PRODUCE SERVICES"""
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, es_count as lp_es_count, free_port, http, metric_sum, metrics_text

SHIPPER, AGG, PRODUCE, SERVICES = sys.argv[1:5]
BROKERS = os.environ.get("LP_KAFKA_BROKERS", "127.0.0.1:9092")
ES = os.environ.get("LP_OPENSEARCH_URL", "http://127.0.0.1:9200")
SEED = int(os.environ.get("LP_SEED", "4242"))
PHASE1 = int(os.environ.get("LP_LINES", "12000"))  # per container
PHASE2 = PHASE1  # enough to fill the partitions' share of max_pending_bytes during the outage
OUTAGE_S = int(os.environ.get("LP_OUTAGE_SECONDS", "30"))
rng = random.Random(SEED)
tmp = tempfile.mkdtemp(prefix="lp-agg-e2e-")
logs = os.path.join(tmp, "log", "containers")  # the shipper reads Kubernetes fields from this layout
os.makedirs(logs)
run = "%d%d" % (os.getpid(), int(time.time()) % 100000)
topic = "lp-agg-e2e-" + run
index_prefix = "lpe2e-" + run



ship_port, agg_port, agg2_port = free_port(), free_port(), free_port()
ship_cfg = os.path.join(tmp, "shipper.yaml")
with open(ship_cfg, "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/ship-state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
  batch_max_records: 200
  checkpoint_interval: 100ms
  rescan_interval: 300ms
metrics: {{listen: 127.0.0.1:{ship_port}}}
""")
agg_cfg = os.path.join(tmp, "aggregator.yaml")
with open(agg_cfg, "w") as f:
    f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
  # a member killed with -9 holds its partitions until its session times out
  properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "1000"}}
aggregator:
  group_id: {topic}
  workers: 2
  max_pending_bytes: 1MiB
  commit_interval: 200ms
  drain_timeout: 5s
  dead_letter_dir: {tmp}/dead-letter
  dead_letter_topic: {topic}-dead-letter
  parsers:
    - {{name: nginx, kind: access}}
    - {{name: app-json, kind: json}}
  routes:
    - name: web
      match: [{{field: kubernetes.container.name, equals: nginx}}]
      parser: nginx
      outputs: [search, files]
    - name: apps
      match: [{{field: kubernetes.namespace, prefix: pay}}]
      parser: app-json
      outputs: [search, files]
  default_route: {{outputs: [search, files]}}
  enrich:
    add_fields: {{cluster.name: e2e}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{index_prefix}-{{kubernetes.namespace}}-%Y.%m.%d"
      template_name: {index_prefix}
      bulk_max_actions: 300
      max_inflight_requests: 2
      flush_interval: 100ms
      retry_initial: 100ms
      retry_max: 2s
    - name: files
      type: file
      path: {tmp}/segments
      max_segment_bytes: 512KiB
      max_segment_age: 2s
metrics: {{listen: 127.0.0.1:{agg_port}}}
""")


# a second aggregator in the same group (scaling out and back in)
agg2_cfg = os.path.join(tmp, "aggregator2.yaml")
with open(agg_cfg) as f, open(agg2_cfg, "w") as g:
    g.write(f.read().replace(f"listen: 127.0.0.1:{agg_port}", f"listen: 127.0.0.1:{agg2_port}"))


procs = {}
logfiles = {"shipper": open(os.path.join(tmp, "shipper.log"), "ab"),
            "aggregator": open(os.path.join(tmp, "aggregator.log"), "ab"),
            "aggregator2": open(os.path.join(tmp, "aggregator2.log"), "ab")}


def start(name):
    exe, cfg, port = {"shipper": (SHIPPER, ship_cfg, ship_port), "aggregator": (AGG, agg_cfg, agg_port),
                      "aggregator2": (AGG, agg2_cfg, agg2_port)}[name]
    procs[name] = spawn([exe, "-c", cfg], stderr=logfiles[name])
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except Exception:
            if procs[name].poll() is not None:
                raise SystemExit(f"{name} exited {procs[name].returncode}; log {logfiles[name].name}")
            time.sleep(0.05)
    raise SystemExit(f"{name} did not come up")


def stop(name, sig=signal.SIGTERM):
    p = procs.pop(name)
    p.send_signal(sig)
    return p.wait(timeout=120)


def ship_all():
    start("shipper")
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        t = metrics_text(ship_port)
        if metric_sum(ship_port, "logpipe_shipper_lag_bytes", t) == 0 and \
                metric_sum(ship_port, "logpipe_shipper_inflight_bytes", t) == 0:
            break
    else:
        raise SystemExit("the shipper did not catch up")
    if stop("shipper") != 0:
        raise SystemExit("shipper exit status")


# ---- the containers ----
HEX = "%064x"
files = {
    "web": os.path.join(logs, "web-7d9f_shop_nginx-" + HEX % 1 + ".log"),
    "api": os.path.join(logs, "api-55c2_payments_api-" + HEX % 2 + ".log"),
}
# four pods of the batch job: more sources, spread over more partitions
for i in range(4):
    files[f"job{i}"] = os.path.join(logs, f"job-{i}_batch_worker-" + HEX % (3 + i) + ".log")
expected = {}  # tag -> kind
special = {}   # name -> tag


def docker(msg, stream, ts):
    return json.dumps({"log": msg + "\n", "stream": stream, "time": ts}) + "\n"


def cri(msg, stream, ts):
    return f"{ts} {stream} F {msg}\n"


def write(n, phase, extra=None):
    noise = lambda: "%016x" % rng.getrandbits(64)
    jobs = [open(files[f"job{i}"], "a") for i in range(4)]
    with open(files["web"], "a") as w, open(files["api"], "a") as a:
        for k in range(n):
            j = jobs[k % 4]
            ts = "2026-11-28T08:%02d:%02d.%06dZ" % (k // 3600 % 60, k // 60 % 60, k)
            t = f"web-{phase}-{k}"
            expected[t] = "web"
            w.write(docker(f'10.0.{k % 250}.{k % 200} - - [28/Nov/2026:08:00:{k % 60:02d} +0000] '
                           f'"GET /item?tag={t}&r={noise()} HTTP/1.1" {200 + (k % 3) * 100} {k} "-" "e2e/1"', "stdout", ts))
            t = f"api-{phase}-{k}"
            expected[t] = "api"
            lvl = ["INFO", "WARNING", "error"][k % 3]
            a.write(cri(json.dumps({"level": lvl, "msg": t, "trace": noise(),
                                    "http": {"response": {"status_code": 200 + k % 5}}}), "stderr", ts))
            t = f"job-{phase}-{k}"
            expected[t] = "job"
            j.write(docker(f"{t} processed {noise()}{noise()}{noise()}{noise()}", "stdout", ts))
        if extra:
            extra(w, a, jobs[0])
    for f in jobs:
        f.close()


def phase2_extra(w, a, j):
    # status_code is a long in the index template: kept by the content rules
    t = "api-conflict"
    expected[t] = "api"
    special["conflict"] = t
    a.write(cri(json.dumps({"level": "info", "msg": t, "http": {"response": {"status_code": "teapot"}}}),
                "stderr", "2026-11-28T09:00:00.000000Z"))
    # trace was a string in every line so far (dynamic keyword): an object
    # is refused by the cluster, healed by moving it to the kept list
    t = "api-healed"
    expected[t] = "api"
    special["healed"] = t
    a.write(cri(json.dumps({"level": "info", "msg": t, "trace": {"id": "abc"}}),
                "stderr", "2026-11-28T09:00:00.000000Z"))
    # not JSON: kept raw with error.message
    t = "api-notjson"
    expected[t] = "api"
    special["notjson"] = t
    a.write(cri(f"{t} this line is not JSON", "stderr", "2026-11-28T09:00:00.000001Z"))


def es_count():
    return lp_es_count(ES, f"{index_prefix}-*")


t0 = time.time()
notes = []
ok = True
# ---- phase 1: shipped, then consumed with two kill -9 ----
write(PHASE1, 1)
ship_all()
total1 = len(expected)
start("aggregator")
kills = 0
agg2_assigned = 0
for frac in (0.3, 0.7):
    deadline = time.time() + 120
    while time.time() < deadline and es_count() < frac * total1:
        time.sleep(0.2)
    procs["aggregator"].send_signal(signal.SIGKILL)
    procs.pop("aggregator").wait()
    kills += 1
    c = es_count()
    notes.append(f"kill{kills}@{c}")
    if c >= total1:
        print(f"kill {kills} came after the end of the stream ({c} documents)")
        ok = False
    if kills == 1:
        # scale out: a second member takes over first, then shares the
        # partitions with the restarted one (and sees its next kill -9 from
        # inside the group)
        start("aggregator2")
        deadline = time.time() + 60
        while time.time() < deadline and not agg2_assigned:
            time.sleep(0.2)
            agg2_assigned = metric_sum(agg2_port, "logpipe_aggregator_assigned_partitions") or 0
    start("aggregator")
# scale back in: a graceful revoke (drain, commit) hands its partitions back
deadline = time.time() + 120
while time.time() < deadline and es_count() < 0.85 * total1:
    time.sleep(0.2)
t2 = metrics_text(agg2_port)
agg2_records = metric_sum(agg2_port, "logpipe_aggregator_records_in_total", t2)
rc2 = stop("aggregator2")
notes.append(f"agg2_partitions={agg2_assigned} agg2_records={agg2_records} scale-in@{es_count()}")
if rc2 != 0 or not agg2_assigned or not agg2_records:
    print(f"second aggregator: exit {rc2}, partitions {agg2_assigned}, records {agg2_records}")
    ok = False


def wait_drained(timeout):
    """Nothing pending, queued, paused or lagging, three polls in a row: a
    partition just resumed reports the lag of its last fetch (0) until its
    next fetch returns, which once stopped the run with a phase unread."""
    deadline = time.time() + timeout
    calm = 0
    while time.time() < deadline:
        time.sleep(0.5)
        t = metrics_text(agg_port)
        lag = metric_sum(agg_port, "logpipe_aggregator_consumer_lag", t)
        pend = metric_sum(agg_port, "logpipe_aggregator_pending_bytes", t)
        queued = metric_sum(agg_port, "logpipe_aggregator_output_queued", t)
        paused = metric_sum(agg_port, "logpipe_aggregator_paused_partitions", t)
        calm = calm + 1 if (lag == 0 and pend == 0 and queued == 0 and not paused) else 0
        if calm >= 3:
            return True
    return False


if not wait_drained(180):
    print("phase 1 did not drain")
    ok = False
phase1_docs = es_count()

# ---- phase 2: OpenSearch down while more arrives ----
subprocess.run([SERVICES, "down", "opensearch"], check=True, capture_output=True)
outage_start = time.time()
write(PHASE2, 2, phase2_extra)
ship_all()
with open(os.path.join(tmp, "corrupt.bin"), "wb") as f:
    f.write(b"\x28\xb5\x2f\xfd this is not a zstd frame" + bytes(range(256)))
subprocess.run([PRODUCE, BROKERS, topic, "1", os.path.join(tmp, "corrupt.bin"),
                "logpipe-format=1", "content-type=application/x-ndjson",
                "content-encoding=zstd", "logpipe-records=5"], check=True)
time.sleep(max(0, OUTAGE_S - (time.time() - outage_start)))
mt = metrics_text(agg_port)
paused_during = metric_sum(agg_port, "logpipe_aggregator_paused_partitions", mt)
pauses = metric_sum(agg_port, "logpipe_aggregator_partition_pauses_total", mt)


def readyz(query=""):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{agg_port}/readyz{query}", timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code


# an output down: /readyz?strict=1 says so; /readyz (the pods' probe) stays
# 200 (an outage is not the pod's: no PodDisruptionBudget blocks a drain)
ready_during, ready_strict_during = readyz(), readyz("?strict=1")
outage = time.time() - outage_start
subprocess.run([SERVICES, "start", "opensearch"], check=True, capture_output=True)
if not wait_drained(240):
    print("phase 2 did not drain after OpenSearch came back")
    ok = False
mt = metrics_text(agg_port)
paused_after = metric_sum(agg_port, "logpipe_aggregator_paused_partitions", mt)
rc = stop("aggregator")

# ---- checks ----
lines = len(expected)
# OpenSearch: every document, by search_after on _id
docs = {}
ids = set()
http("POST", f"{ES}/{index_prefix}-*/_refresh")
after = None
while True:
    q = {"size": 5000, "sort": [{"event.id": "asc"}], "query": {"match_all": {}}}
    if after:
        q["search_after"] = after
    st, body = http("POST", f"{ES}/{index_prefix}-*/_search", json.dumps(q))
    if st != 200:
        print("search failed:", st, body[:300])
        ok = False
        break
    hits = json.loads(body)["hits"]["hits"]
    if not hits:
        break
    for h in hits:
        ids.add(h["_id"])
        src = h["_source"]
        tag = re.search(r"((?:web|api|job)-[0-9a-z]+(?:-[0-9]+)?)", src.get("message", ""))
        key = tag.group(1) if tag else None
        docs.setdefault(key, []).append(src)
    after = hits[-1]["sort"]
es_dups = sum(len(v) - 1 for v in docs.values())
es_missing = [t for t in expected if t not in docs]
es_total = sum(len(v) for v in docs.values())

# segment files: every line once
seg_lines = {}
seg_count = 0
open_segments = 0
for path in glob.glob(f"{tmp}/segments/**/*.ndjson*", recursive=True):
    seg_count += 1
    open_segments += path.endswith(".open")
    with open(path) as f:
        for line in f:
            ev = json.loads(line)
            tag = re.search(r"((?:web|api|job)-[0-9a-z]+(?:-[0-9]+)?)", ev.get("message", ""))
            seg_lines.setdefault(tag.group(1) if tag else None, []).append(ev)
file_dups = sum(len(v) - 1 for v in seg_lines.values())
file_missing = [t for t in expected if t not in seg_lines]

# documents equal the file lines (but event.ingested, which records when each was processed)
mismatch = 0
for t, evs in docs.items():
    if t not in seg_lines:
        continue
    a = json.loads(json.dumps(evs[0])); b = json.loads(json.dumps(seg_lines[t][0]))
    a.get("event", {}).pop("ingested", None); b.get("event", {}).pop("ingested", None)
    if t == special["healed"]:
        continue  # the document holds trace in the kept list, the file line as it was
    if a != b:
        mismatch += 1
        if mismatch <= 2:
            print("document differs from its file line:\n ", json.dumps(a)[:600], "\n ", json.dumps(b)[:600])

# fields
web = docs.get("web-1-5", [{}])[0]
api = docs.get("api-1-4", [{}])[0]
notjson = docs.get(special["notjson"], [{}])[0]
field_errors = []
if web.get("http", {}).get("response", {}).get("status_code") != 400 or \
        web.get("kubernetes", {}).get("namespace") != "shop" or \
        web.get("@timestamp", "")[:19] != "2026-11-28T08:00:05" or web.get("cluster", {}).get("name") != "e2e":
    field_errors.append("web: " + json.dumps(web)[:400])
if api.get("log", {}).get("level") != "warn" or api.get("message") != "api-1-4" or "msg" in api or \
        api.get("kubernetes", {}).get("namespace") != "payments":
    field_errors.append("api: " + json.dumps(api)[:400])
if "error" in notjson or "original" in notjson.get("event", {}) or "not JSON" not in notjson.get("message", ""):
    field_errors.append("notjson (a plain event): " + json.dumps(notjson)[:400])


def kept_entry(doc, field):
    return [k for k in doc.get("logpipe", {}).get("kept", []) if k.get("field") == field]


conflict = docs.get(special["conflict"], [{}])[0]
if kept_entry(conflict, "http.response.status_code") != \
        [{"field": "http.response.status_code", "value": "teapot", "reason": "type"}]:
    field_errors.append("conflict: " + json.dumps(conflict)[:400])
healed = docs.get(special["healed"], [{}])[0]
if kept_entry(healed, "trace") != [{"field": "trace", "value": '{"id":"abc"}', "reason": "mapping"}] or \
        "trace" in healed:
    field_errors.append("healed: " + json.dumps(healed)[:400])
st, body = http("GET", f"{ES}/_index_template/{index_prefix}")
template_ok = st == 200

# dead letter
dead = []
for path in glob.glob(f"{tmp}/dead-letter/*.ndjson"):
    with open(path) as f:
        dead += [json.loads(l) for l in f]
stages = sorted((d["stage"], d.get("event", {}).get("msg", "")) for d in dead)
# the dead-letter topic holds the same entries (kcat, installed by scripts/test)
kc = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", f"{topic}-dead-letter", "-e", "-q"],
                    capture_output=True, text=True, timeout=60)
dead_topic = sorted((d["stage"], d.get("event", {}).get("msg", ""))
                    for d in map(json.loads, kc.stdout.splitlines()))

elapsed = time.time() - t0
print(f"lines={lines} indexed={es_total} distinct_ids={len(ids)} es_missing={len(es_missing)} "
      f"es_duplicated={es_dups} file_lines={sum(len(v) for v in seg_lines.values())} "
      f"file_missing={len(file_missing)} file_duplicated={file_dups} segments={seg_count} "
      f"open_segments={open_segments} dead_letter={len(dead)} dead_letter_topic={len(dead_topic)} kills={kills} ({' '.join(notes)}) "
      f"outage={outage:.0f}s pauses={pauses} paused_during={paused_during} "
      f"ready_during={ready_during} mismatched={mismatch} elapsed={elapsed:.0f}s seed={SEED}")
if es_missing:
    print("missing in OpenSearch (first 10):", es_missing[:10]); ok = False
if es_dups or len(ids) != es_total:
    print("duplicates in OpenSearch"); ok = False
if es_total != lines:
    print(f"OpenSearch holds {es_total} documents, expected {lines}"); ok = False
if file_missing:
    print("missing in the files (first 10):", file_missing[:10]); ok = False
if file_dups:
    print(f"{file_dups} duplicate lines in the files"); ok = False
if None in seg_lines or None in docs:
    print("lines without a tag"); ok = False
if open_segments:
    print(f"{open_segments} segments still open after SIGTERM"); ok = False
if mismatch:
    print(f"{mismatch} documents differ from their file lines"); ok = False
if field_errors:
    print("fields:", *field_errors, sep="\n  "); ok = False
if not template_ok:
    print("index template not installed"); ok = False
if stages != [("decode", "")]:
    print("dead letter:", json.dumps(dead)[:800]); ok = False
if dead_topic != stages:
    print("dead-letter topic:", dead_topic, kc.stderr[-300:]); ok = False
if not pauses or not paused_during:
    print(f"partitions were not paused during the outage (pauses={pauses} paused={paused_during})"); ok = False
if paused_after:
    print(f"{paused_after} partitions still paused after the outage"); ok = False
if ready_strict_during != 503 or ready_during != 200:
    print(f"/readyz?strict=1 answered {ready_strict_during} (want 503), /readyz {ready_during} "
          "(want 200) with OpenSearch down"); ok = False
if rc != 0:
    print(f"aggregator exited {rc} on SIGTERM"); ok = False
if not ok:
    print(f"replay: LP_SEED={SEED} {' '.join(sys.argv)}; logs in {tmp}")
    sys.exit(1)
http("DELETE", f"{ES}/{index_prefix}-*")
http("DELETE", f"{ES}/_index_template/{index_prefix}")
shutil.rmtree(tmp)
