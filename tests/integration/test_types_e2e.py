#!/usr/bin/env python3
"""One field, two types, two namespaces (issue 33, item 5): a data view over
per-namespace indices must not see a type conflict. The real shipper, Kafka,
two aggregators reading the same topic (two consumer groups) into two index
prefixes of the real OpenSearch, one with dynamic_scalars: keyword (the
default), one with native (the cluster's own dynamic mapping).

Namespace "shop" logs user_id as a number, "billing" as a string; both log
a boolean and a date-looking string. Checks, with _field_caps over each
prefix: keyword has one type for each field (no conflict) and every line
indexed, the number searchable as its text; native shows the conflict
(what an analyst saw before): the check can fail.

usage: test_types_e2e.py SHIPPER AGGREGATOR"""
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, Checks, free_port, http, stop_procs

SHIPPER, AGG = map(os.path.abspath, sys.argv[1:3])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-types-")
logs = os.path.join(tmp, "logs")
os.makedirs(logs)
run = "types%x" % int(time.time() * 1000)
N = 20
for i, (ns, uid) in enumerate((("shop", lambda k: 1000 + k), ("billing", lambda k: f"u-{k}"))):
    with open(os.path.join(logs, f"app-0_{ns}_main-{i + 1:064x}.log"), "w") as f:
        for k in range(N):
            ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            line = json.dumps({"msg": f"{ns} {k}", "user_id": uid(k), "paid": k % 2 == 0,
                               "when": "2026-12-07" if ns == "shop" else "soon"})
            f.write(f"{ts} stdout F {line}\n")

ports = {n: free_port() for n in ("shipper", "kw", "native")}
with open(os.path.join(tmp, "shipper.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {run}}}
shipper:
  state_dir: {tmp}/ship-state
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
metrics: {{listen: "127.0.0.1:{ports['shipper']}"}}
""")
for mode in ("kw", "native"):
    with open(os.path.join(tmp, f"agg-{mode}.yaml"), "w") as f:
        f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {run}}}
aggregator:
  group_id: {run}-{mode}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/dead-{mode}
  parsers: [{{name: app-json, kind: json}}]
  default_route: {{parser: app-json, outputs: [search]}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{run}-{mode}-{{kubernetes.namespace}}-%Y.%m.%d"
      template_name: {run}-{mode}
      dynamic_scalars: {"keyword" if mode == "kw" else "native"}
      flush_interval: 100ms
metrics: {{listen: "127.0.0.1:{ports[mode]}"}}
""")
procs = {"shipper": spawn([SHIPPER, "-c", os.path.join(tmp, "shipper.yaml")],
                                     stderr=open(os.path.join(tmp, "shipper.log"), "wb"))}
for mode in ("kw", "native"):
    procs[mode] = spawn([AGG, "-c", os.path.join(tmp, f"agg-{mode}.yaml")],
                                   stderr=open(os.path.join(tmp, f"agg-{mode}.log"), "wb"))


def count(pattern, query=None):
    http("POST", f"{ES}/{pattern}/_refresh")
    st, body = http("POST", f"{ES}/{pattern}/_count",
                    json.dumps({"query": query or {"match_all": {}}}))
    return json.loads(body).get("count", 0) if st == 200 else -1


def caps(pattern, field):
    st, body = http("GET", f"{ES}/{pattern}/_field_caps?fields={field}")
    return sorted(json.loads(body).get("fields", {}).get(field, {})) if st == 200 else None


try:
    deadline = time.time() + 90
    while time.time() < deadline and (count(f"{run}-kw-*") < 2 * N or
                                      count(f"{run}-native-*") < 2 * N):
        time.sleep(0.5)
    check(count(f"{run}-kw-*") == 2 * N, f"keyword: every line indexed ({count(f'{run}-kw-*')})")
    for field in ("user_id", "paid", "when"):
        t = caps(f"{run}-kw-*", field)
        check(t == ["keyword"], f"keyword: {field} has one type across the namespaces ({t})")
    check(count(f"{run}-kw-*", {"term": {"user_id": "1007"}}) == 1,
          "keyword: a number is found by its text")
    t = caps(f"{run}-native-*", "user_id")
    check(t is not None and len(t) > 1,
          f"native: the conflict an analyst saw before ({t}; lines "
          f"{count(f'{run}-native-*')} of {2 * N}: the string one may be refused or healed)")
finally:
    stop_procs(procs)

if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_types_e2e: {check.count} checks passed")
