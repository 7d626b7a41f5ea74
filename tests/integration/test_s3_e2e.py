#!/usr/bin/env python3
"""The object-storage output end to end: the real shipper, the real Kafka,
three real aggregators in one group, the real S3 server (S3Proxy) behind a
fault-injecting proxy, and the real OpenSearch.

Lines flow the whole time (six containers, events across an hour boundary).
Aggregator A starts alone; B joins; object writes are slowed and B is
killed with -9 while uploads are in flight; C joins; the store answers 503
SlowDown for a while, then is stopped for 30 s (partitions pause, held
bytes stay within the budget); the store comes back; C is stopped (scaled
down). At the end every line written is in exactly one object of the
bucket (counted by tag and by event id, across every key), the same in
OpenSearch, nothing is on any aggregator's disk, and the consumer-lag
series of partitions A gave away are gone from A's metrics.

usage: test_s3_e2e.py SHIPPER AGGREGATOR SERVICES"""
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import (spawn, free_port, http, metric_sum, metrics_text, s3_env, s3_lines, s3_list,
                    stop_procs, Checks)
from s3fault import S3Fault

SHIPPER, AGG, SERVICES = map(os.path.abspath, sys.argv[1:4])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
S3_PORT = int(s3_env()[0].rsplit(":", 1)[1])
check = Checks()
rng = random.Random(27)

tmp = tempfile.mkdtemp(prefix="lp-s3-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
run_id = "%08x" % rng.getrandbits(32) + "%x" % int(time.time())
topic = "lp-s3-" + run_id
prefix = "e2e-" + run_id
index_prefix = "lp-s3-" + run_id
budget = 1 << 20
max_object = 128 << 10
proxy = S3Fault(S3_PORT, delay=1.5)
ports = {n: free_port() for n in ("shipper", "a", "b", "c")}

with open(os.path.join(tmp, "shipper.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/ship-state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
  batch_max_records: 100
  checkpoint_interval: 100ms
  rescan_interval: 300ms
metrics: {{listen: 127.0.0.1:{ports['shipper']}}}
""")
_, bucket, ak, sk = s3_env()
for n in ("a", "b", "c"):
    with open(os.path.join(tmp, f"agg-{n}.yaml"), "w") as f:
        f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
  properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "1000"}}
aggregator:
  group_id: {topic}
  workers: 2
  max_pending_bytes: {budget}
  commit_interval: 200ms
  drain_timeout: 5s
  dead_letter_dir: {tmp}/dead-letter-{n}
  default_route: {{outputs: [bucket, search]}}
  outputs:
    - name: bucket
      type: s3
      endpoint: http://127.0.0.1:{proxy.port}
      bucket: {bucket}
      path_style: true
      prefix: {prefix}
      access_key_id: {ak}
      secret_access_key: ${{file:{tmp}/s3-secret}}
      max_object_bytes: {max_object}
      max_object_age: 2s
      max_inflight_requests: 2
      retry_initial: 100ms
      retry_max: 1s
      request_timeout: 10s
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{index_prefix}-%Y.%m.%d"
      template_name: {index_prefix}
      flush_interval: 100ms
      retry_max: 2s
metrics: {{listen: 127.0.0.1:{ports[n]}}}
""")
with open(os.path.join(tmp, "s3-secret"), "w") as f:
    f.write(sk)

procs, logf = {}, {}


def start(name):
    exe, cfg = (SHIPPER, "shipper.yaml") if name == "shipper" else (AGG, f"agg-{name}.yaml")
    logf[name] = open(os.path.join(tmp, f"{name}.log"), "ab")
    procs[name] = spawn([exe, "-c", os.path.join(tmp, cfg)], stderr=logf[name],
                                   cwd=os.path.join(tmp))
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/healthz", timeout=1)
            return
        except OSError:
            if procs[name].poll() is not None:
                raise SystemExit(f"{name} exited {procs[name].returncode}; log {logf[name].name}")
            time.sleep(0.05)
    raise SystemExit(f"{name} did not come up")


def stop(name, sig=signal.SIGTERM):
    p = procs.pop(name)
    p.send_signal(sig)
    return p.wait(timeout=120)


# ---- the writer: six containers, lines the whole time ----
files = [os.path.join(logs, f"app-{i}_team{i % 3}_main-{'%064x' % (i + 1)}.log") for i in range(6)]
written = []
stop_writing = threading.Event()
BASE = 1796108400  # 2026-12-01T07:00:00Z; events cross 08:00


def writer():
    n = 0
    handles = [open(p, "a") for p in files]
    while not stop_writing.is_set():
        for _ in range(30):
            i = n % len(files)
            t = BASE + 3590 + n // 40  # 10 s before the hour, then across it
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (n % 1000000)
            tag = f"s3-{n}"
            handles[i].write(f"{ts} stdout F {tag} payload {rng.getrandbits(512):0128x}\n")
            written.append(tag)
            n += 1
        for h in handles:
            h.flush()
        time.sleep(0.1)
    for h in handles:
        h.close()


def sample(name, metric):
    return metric_sum(ports[name], metric) or 0


def lag_partitions(name):
    t = metrics_text(ports[name])
    return set(re.findall(r'^logpipe_aggregator_consumer_lag\{partition="(\d+)"\}', t, re.M))


# ---- the run ----
t0 = time.time()
progress = open(os.path.join(tmp, "progress.log"), "w")


def monitor():
    while not stop_monitor.is_set():
        row = [f"{time.time() - t0:6.1f}s", f"mode={proxy.mode}", f"answered={proxy.answered}",
               f"written={len(written)}"]
        for n in ("a", "b", "c"):
            if n in procs:
                t = metrics_text(ports[n])
                row.append(n + ":" + ",".join(str(int(metric_sum(ports[n], m, t) or 0)) for m in (
                    "logpipe_aggregator_s3_batches_total", "logpipe_aggregator_s3_objects_total",
                    "logpipe_aggregator_s3_records_total", "logpipe_aggregator_held_bytes",
                    "logpipe_aggregator_paused_partitions", "logpipe_aggregator_consumer_lag")))
        if "shipper" in procs:
            row.append("ship_lag=%s" % metric_sum(ports["shipper"], "logpipe_shipper_lag_bytes"))
        print(" ".join(row), file=progress, flush=True)
        time.sleep(2)


stop_monitor = threading.Event()
threading.Thread(target=monitor, daemon=True).start()
start("a")
start("shipper")
w = threading.Thread(target=writer, daemon=True)
w.start()
time.sleep(6)
check(sample("a", "logpipe_aggregator_s3_objects_total") > 0, "A wrote objects on its own")
lag_alone = lag_partitions("a")
check(len(lag_alone) == 4, f"A reports the lag of all 4 partitions ({sorted(lag_alone)})")

start("b")  # joins: A gives partitions away
for _ in range(100):
    if sample("a", "logpipe_aggregator_assigned_partitions") == 2 and \
            sample("b", "logpipe_aggregator_assigned_partitions") == 2:
        break
    time.sleep(0.2)
time.sleep(2.5)
lag_a, lag_b = lag_partitions("a"), lag_partitions("b")
check(len(lag_a) == 2 and not (lag_a & lag_b),
      f"after B joined, A reports only its own partitions' lag (A {sorted(lag_a)}, B {sorted(lag_b)})")

# kill -9 B while its uploads are in flight
proxy.set_mode("slow")
for _ in range(200):
    if proxy.in_flight >= 2:
        break
    time.sleep(0.05)
check(proxy.in_flight > 0, "uploads in flight when B is killed")
procs["b"].kill()
procs.pop("b").wait()
killed_in_flight = proxy.in_flight
time.sleep(0.5)
proxy.set_mode("pass")
start("c")
time.sleep(8)

# the store answers 503 SlowDown, then is down for 30 s
proxy.set_mode("503")
time.sleep(8)
proxy.set_mode("pass")
subprocess.run([SERVICES, "down", "s3"], check=True, capture_output=True)
held_max, paused_max = 0, 0
rss_start = {}
for n in ("a", "c"):
    with open(f"/proc/{procs[n].pid}/status") as f:
        rss_start[n] = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
outage_end = time.time() + 30
while time.time() < outage_end:
    for n in ("a", "c"):
        held_max = max(held_max, sample(n, "logpipe_aggregator_held_bytes"))
        paused_max = max(paused_max, sample(n, "logpipe_aggregator_paused_partitions"))
    time.sleep(0.5)
rss_end = {}
for n in ("a", "c"):
    with open(f"/proc/{procs[n].pid}/status") as f:
        rss_end[n] = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
subprocess.run([SERVICES, "start", "s3"], check=True, capture_output=True)
check(paused_max > 0, "partitions paused while the store was down")
check(held_max <= budget + max_object,
      f"held bytes within the budget during the outage (max {held_max}, budget {budget})")
for n in ("a", "c"):
    check(rss_end[n] - rss_start[n] < 64 * 1024,
          f"{n}'s memory did not grow by the backlog ({rss_start[n]} -> {rss_end[n]} KiB)")

time.sleep(5)
stop("c")  # scaled down: A takes everything
time.sleep(4)
stop_writing.set()
w.join()
n_written = len(written)

# drained: the shipper has sent everything, the group has committed all of it
deadline = time.time() + 180
while time.time() < deadline:
    t = metrics_text(ports["shipper"])
    if metric_sum(ports["shipper"], "logpipe_shipper_lag_bytes", t) == 0 and \
            metric_sum(ports["shipper"], "logpipe_shipper_inflight_bytes", t) == 0 and \
            sample("a", "logpipe_aggregator_consumer_lag") == 0 and \
            sample("a", "logpipe_aggregator_assigned_partitions") == 4:
        break
    time.sleep(1)
else:
    check(False, "the pipeline did not drain")
stop("shipper")
stop("a")
proxy.close()

# ---- the bucket ----
keys = [k for k, _ in s3_list(prefix + "/")]
objects = [k for k in keys if "/_logpipe/" not in k]
seen = collections.Counter()
ids = collections.Counter()
hours = set()
for k in objects:
    for doc in s3_lines(k):
        tag = doc.get("message", "").split(" ")[0]
        seen[tag] += 1
        ids[doc.get("event", {}).get("id")] += 1
    hours.add("/".join(k.split("/")[2:6]))
missing = [t for t in written if seen[t] == 0]
dups = {t: c for t, c in seen.items() if c > 1}
check(not missing, f"every line written is in the bucket ({len(missing)} of {n_written} missing, "
      f"first {missing[:5]})")
check(not dups, f"no line is in two objects or twice in one ({len(dups)}, e.g. {list(dups.items())[:5]})")
check(sum(seen.values()) == n_written, f"lines in the bucket {sum(seen.values())} == written {n_written}")
check(len(ids) == n_written and max(ids.values()) == 1, "event ids distinct across the bucket")
check(len(hours) >= 2, f"objects keyed by the events' hour ({sorted(hours)})")
check(all(re.search(r"/%s-\d+-\d{20}\.ndjson\.zst$" % re.escape(topic), k) for k in objects),
      "object keys are <route>/YYYY/MM/DD/HH/<topic>-<partition>-<first offset>.ndjson.zst")

# ---- OpenSearch ----
http("POST", f"{ES}/{index_prefix}-*/_refresh")
st, body = http("GET", f"{ES}/{index_prefix}-*/_count")
es_count = json.loads(body).get("count", -1) if st == 200 else -1
check(es_count == n_written, f"OpenSearch holds every line once ({es_count} of {n_written})")

# ---- nothing on the aggregators' disks ----
left = [os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs
        if "dead-letter" in d or "segments" in d]
check(not left, f"nothing stranded on an aggregator's disk ({left[:5]})")

stop_monitor.set()
stop_procs(procs)
print(f"written={n_written} objects={len(objects)} ledger_left={len(keys) - len(objects)} "
      f"killed_with_uploads_in_flight={killed_in_flight} held_max={held_max} "
      f"paused_max={paused_max} proxy={proxy.answered} elapsed={time.time() - t0:.0f}s")
if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_s3_e2e: {check.count} checks passed")
