#!/usr/bin/env python3
"""The disaster-recovery drill, end to end: the real shipper, Kafka, an
aggregator writing to the real S3 server (S3Proxy), a file output and the
real OpenSearch; then logpipe-replay.

Two days of events (2026-11-30 and 2026-12-01) from two namespaces are
shipped and aggregated. Then a day's indices are deleted and replayed from
the bucket: every event id of that day is back exactly once, the other day
untouched; a second replay writes nothing new (all "already present"); a
dry run counts the day; one namespace is deleted and replayed with
--namespace; the same day is counted from the file output's segments
(--path). The day is deleted again and replayed from Kafka by time
(--from-kafka: offsets for times, the aggregator's pipeline): every id back
once. Then bucket retention moves the objects to an archive prefix (all
but those an open ledger record names) and the day counted from the live
prefix plus the archive prefix (--prefix) is the whole day. Prints the
drill's figures (lines, seconds, lines per second), which
docs/operations.md quotes as RTO.

usage: test_replay_e2e.py SHIPPER AGGREGATOR REPLAY RETENTION"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, es_count as lp_es_count, free_port, http, metric_sum, s3_env, stop_procs, Checks

SHIPPER, AGG, REPLAY, RETENTION = map(os.path.abspath, sys.argv[1:5])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-replay-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
run_id = "%x" % int(time.time() * 1000)
topic = "lp-replay-" + run_id
idx = "lp-replay-" + run_id
prefix = "drill-" + run_id
endpoint, bucket, ak, sk = s3_env()
ports = {"shipper": free_port(), "agg": free_port()}
cfg = os.path.join(tmp, "logpipe.yaml")
with open(cfg, "w") as f:
    f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
shipper:
  state_dir: {tmp}/ship-state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
  checkpoint_interval: 100ms
  rescan_interval: 300ms
aggregator:
  group_id: {topic}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/dead-letter
  default_route: {{outputs: [bucket, search, files]}}
  outputs:
    - name: bucket
      type: s3
      endpoint: {endpoint}
      bucket: {bucket}
      path_style: true
      prefix: {prefix}
      access_key_id: {ak}
      secret_access_key: {sk}
      max_object_age: 2s
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{idx}-{{kubernetes.namespace}}-%Y.%m.%d"
      template_name: {idx}
      flush_interval: 100ms
    - name: files
      type: file
      path: {tmp}/segments
      max_segment_age: 2s
""")
with open(os.path.join(tmp, "ship.yaml"), "w") as f:
    f.write(f"metrics: {{listen: 127.0.0.1:{ports['shipper']}}}\n")
with open(os.path.join(tmp, "agg.yaml"), "w") as f:
    f.write(f"metrics: {{listen: 127.0.0.1:{ports['agg']}}}\n")

# ---- two days, two namespaces ----
N = 40000
days = {"2026-11-30": 0, "2026-12-01": 0}
per_ns = {}
files = {ns: open(os.path.join(logs, f"app-1_{ns}_main-{'%064x' % (i + 1)}.log"), "w")
         for i, ns in enumerate(("shop", "billing"))}
for n in range(N):
    day = "2026-11-30" if n % 2 == 0 else "2026-12-01"
    ns = "shop" if n % 3 else "billing"
    days[day] += 1
    per_ns[(day, ns)] = per_ns.get((day, ns), 0) + 1
    ts = f"{day}T{(n // 60) % 24:02d}:{n % 60:02d}:00.{n:06d}Z"
    files[ns].write(f"{ts} stdout F drill-{n} line of {ns}\n")
for fh in files.values():
    fh.close()

procs = {}


def start(name, exe, extra):
    procs[name] = spawn([exe, "-c", cfg, "-c", os.path.join(tmp, extra)],
                                   stderr=open(os.path.join(tmp, name + ".log"), "ab"))
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/healthz", timeout=1)
            return
        except OSError:
            if procs[name].poll() is not None:
                raise SystemExit(f"{name} exited; log {tmp}/{name}.log")
            time.sleep(0.05)


def es_ids(pattern):
    """Every event id (with count) in indices matching pattern."""
    http("POST", f"{ES}/{pattern}/_refresh")
    ids = {}
    st, body = http("POST", f"{ES}/{pattern}/_search?scroll=1m",
                    json.dumps({"size": 5000, "_source": False, "query": {"match_all": {}}}))
    if st != 200:
        return ids
    r = json.loads(body)
    while r["hits"]["hits"]:
        for h in r["hits"]["hits"]:
            ids[h["_id"]] = ids.get(h["_id"], 0) + 1
        st, body = http("POST", f"{ES}/_search/scroll",
                        json.dumps({"scroll": "1m", "scroll_id": r["_scroll_id"]}))
        r = json.loads(body)
    return ids


def es_count(pattern):
    return max(0, lp_es_count(ES, pattern))


def replay(*args):
    t = time.time()
    r = subprocess.run([REPLAY, "-c", cfg, *args], capture_output=True, text=True, timeout=600)
    line = [l for l in r.stdout.splitlines() if l.startswith("replay ")]
    out = dict(re.findall(r"(\w+)=([\d.]+)", line[0])) if line else {}
    if r.returncode != 0 or not line:
        print(r.stdout, r.stderr)
    return r.returncode, {k: float(v) for k, v in out.items()}, time.time() - t


start("agg", AGG, "agg.yaml")
start("shipper", SHIPPER, "ship.yaml")
deadline = time.time() + 180
while time.time() < deadline:
    if es_count(f"{idx}-*") >= N and \
            (metric_sum(ports["agg"], "logpipe_aggregator_s3_records_total") or 0) >= N:
        break
    time.sleep(1)
time.sleep(3)
stop_procs(procs)
check(es_count(f"{idx}-*") == N, f"all {N} lines indexed before the drill")

day1 = f"{idx}-*-2026.11.30"
before = es_ids(day1)
check(len(before) == days["2026-11-30"], f"day 1 holds {len(before)} of {days['2026-11-30']}")
day2_before = es_count(f"{idx}-*-2026.12.01")

# dry run: counts, writes nothing
rc, s, _ = replay("--from", "bucket", "--since", "2026-11-30", "--dry-run")
check(rc == 0 and s.get("in_range") == days["2026-11-30"],
      f"dry run counts the day ({s.get('in_range')} of {days['2026-11-30']})")

# the disaster: the day's indices are gone
st, _ = http("DELETE", f"{ES}/{day1}")
check(st == 200 and es_count(day1) == 0, "day 1's indices deleted")
rc, s, secs = replay("--from", "bucket", "--to", "search", "--since", "2026-11-30")
after = es_ids(day1)
check(rc == 0, f"replay exit status {rc}")
check(s.get("indexed") == days["2026-11-30"] and s.get("already_present") == 0,
      f"replay indexed the day ({s})")
check(after == before, f"every event id of the day back exactly once ({len(after)} ids, "
      f"{sum(1 for v in after.values() if v > 1)} doubled, "
      f"{len(set(before) - set(after))} missing)")
check(es_count(f"{idx}-*-2026.12.01") == day2_before, "the other day untouched")
drill_lines, drill_secs = s.get("indexed", 0), secs

# again: nothing new
rc, s, _ = replay("--from", "bucket", "--to", "search", "--since", "2026-11-30")
check(rc == 0 and s.get("indexed") == 0 and s.get("already_present") == days["2026-11-30"],
      f"a second replay writes nothing new, all already present ({s})")
check(es_ids(day1) == before, "still exactly once after the second replay")

# one namespace of the day
st, _ = http("DELETE", f"{ES}/{idx}-billing-2026.11.30")
rc, s, _ = replay("--from", "bucket", "--to", "search", "--since", "2026-11-30T00:00:00Z",
                  "--until", "2026-12-01T00:00:00Z", "--namespace", "billing")
want = per_ns[("2026-11-30", "billing")]
check(rc == 0 and s.get("indexed") == want and s.get("already_present") == 0,
      f"--namespace billing replays only billing ({s}, want {want})")
check(es_ids(day1) == before, "exactly once after the namespace replay")

# the same day from the file output's segments
rc, s, _ = replay("--path", os.path.join(tmp, "segments"), "--since", "2026-11-30", "--dry-run")
check(rc == 0 and s.get("in_range") == days["2026-11-30"],
      f"--path counts the day from the segments ({s.get('in_range')})")

# from Kafka by time: the lines' own days are long before the messages'
# (the drill writes old days now), so the slack spans the gap
st, _ = http("DELETE", f"{ES}/{day1}")
check(st == 200 and es_count(day1) == 0, "day 1's indices deleted again")
rc, s, ksecs = replay("--from-kafka", "--to", "search", "--since", "2026-11-30",
                      "--slack", "100000")
check(rc == 0 and s.get("indexed") == days["2026-11-30"] and s.get("already_present") == 0 and
      s.get("not_routed") == 0, f"--from-kafka indexed the day ({s})")
check(es_ids(day1) == before, "every event id back exactly once from Kafka")
rc, s, _ = replay("--from-kafka", "--since", "2026-11-30", "--slack", "100000", "--dry-run")
check(rc == 0 and s.get("in_range") == days["2026-11-30"] and s.get("messages", 0) > 0,
      f"--from-kafka --dry-run counts the day ({s})")
rc, s, _ = replay("--from-kafka", "--to", "search", "--since", "2026-11-30")
check(rc == 0 and s.get("in_range") == 0,
      f"--from-kafka without slack: the messages are all from today ({s})")

# bucket retention moves the objects; live + archive prefix is still the day
archive = prefix + "-archive"
with open(os.path.join(tmp, "ret.yaml"), "w") as f:
    f.write(f"""retention:
  audit_log: {tmp}/audit.ndjson
  policies:
    - {{name: drill-bucket, output: bucket, archive_after: 1h, archive_prefix: {archive}}}
metrics: {{enabled: false}}
""")
r = subprocess.run([RETENTION, "-c", cfg, "-c", os.path.join(tmp, "ret.yaml"), "--once",
                    "--output", "json"], capture_output=True, text=True, timeout=600)
rep = json.loads(r.stdout) if r.stdout.strip() else {"actions": []}
moved = sum(1 for a in rep["actions"] if a["action"] == "archive" and a["result"] == "ok")
held = sum(1 for a in rep["actions"] if a["result"] == "skipped")
check(r.returncode == 0 and moved > 0, f"retention archived {moved} objects ({held} held by "
      f"open ledger records): exit {r.returncode} {r.stderr[-800:]}")
rc, s_live, _ = replay("--from", "bucket", "--since", "2026-11-30", "--dry-run")
rc2, s_arch, _ = replay("--from", "bucket", "--prefix", archive, "--since", "2026-11-30",
                        "--dry-run")
check(rc == 0 and rc2 == 0 and s_arch.get("in_range", 0) > 0 and
      s_live.get("in_range", 0) + s_arch.get("in_range", 0) == days["2026-11-30"],
      f"live {s_live.get('in_range')} + archived {s_arch.get('in_range')} = the day "
      f"({days['2026-11-30']})")

# usage errors are clear
r = subprocess.run([REPLAY, "-c", cfg, "--from", "search", "--to", "search", "--since",
                    "2026-11-30"], capture_output=True, text=True)
check(r.returncode == 2 and "type s3" in r.stderr, f"--from a non-s3 output refused: {r.stderr!r}")

print(f"drill: lines={int(drill_lines)} seconds={drill_secs:.1f} "
      f"lines_per_second={drill_lines / max(drill_secs, 0.001):.0f} "
      f"kafka_seconds={ksecs:.1f}")
if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_replay_e2e: {check.count} checks passed")
