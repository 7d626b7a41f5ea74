#!/usr/bin/env python3
"""One tenant cannot lock the others out of a shared index's field limit
(issue 29, item 10), end to end: the real shipper with pod metadata from a
stand-in API server (tests/support/k8s_standin.py), the real Kafka, the real
aggregator and the real OpenSearch, one daily index shared by every
namespace (as deploy/logpipe.prod.yaml's logs-%Y.%m.%d).

A pod of namespace "hog" logs one JSON line of 930 keys (within the content
rules' 1,000), then a pod of namespace "pay" logs new fields (refund_id,
reason), then "pay"'s pod gets a new label (release=canary) and logs again.

Checks: nothing is dead-lettered; the hog's line is indexed with its first
field_budget (200) new fields mapped and the rest kept (logpipe.kept,
reason field_budget); the index stays well under its 1,000 fields;
pay's new fields are mapped and searchable (a term query finds them); the
new label is searchable (kubernetes.labels is one flat_object field, so a
label never adds to the mapping). On main before this change the label
line was dead-lettered: "Limit of total fields [1000] has been exceeded".

usage: test_field_budget_e2e.py SHIPPER AGGREGATOR"""
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from k8s_standin import StandIn, pod
from lptest import spawn, Checks, free_port, http, metric_sum, stop_procs

SHIPPER, AGGREGATOR = map(os.path.abspath, sys.argv[1:3])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
check = Checks()
tmp = tempfile.mkdtemp(prefix="lp-budget-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
with open(os.path.join(tmp, "token"), "w") as f:
    f.write("budget-token\n")
api = StandIn("budget-token")
HOG = pod("hog-0", "hog", "node-a", labels={"app": "hog"})
PAY = pod("pay-0", "pay", "node-a", labels={"app": "pay"})
api.add(HOG)
api.add(PAY)

topic = "lp-budget-%d-%d" % (os.getpid(), int(time.time()))
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
    token_file: {tmp}/token
    ca_file: ""
    node_name: node-a
    watch_timeout: 4s
    retry_initial: 100ms
    retry_max: 500ms
metrics: {{listen: 127.0.0.1:{ship_port}}}
""")
with open(os.path.join(tmp, "aggregator.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
aggregator:
  group_id: {prefix}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/dead-letter
  parsers: [{{name: app-json, kind: json}}]
  default_route: {{parser: app-json, outputs: [search]}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{prefix}-%Y.%m.%d"
      template_name: {prefix}
      flush_interval: 100ms
      retry_initial: 100ms
metrics: {{listen: 127.0.0.1:{agg_port}}}
""")

ids = {}


def write(p, line):
    name = p["metadata"]["name"]
    ids.setdefault(name, "%064x" % (len(ids) + 1))
    path = os.path.join(logs, f"{name}_{p['metadata']['namespace']}_app-{ids[name]}.log")
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with open(path, "a") as f:
        f.write(f"{ts} stdout F {line}\n")


def wait(cond, secs, what):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return check(False, f"{what} (after {secs} s)")


def hits(query):
    http("POST", f"{ES}/{prefix}-*/_refresh")
    st, body = http("POST", f"{ES}/{prefix}-*/_search",
                    json.dumps({"size": 100, "query": query}))
    return [h["_source"] for h in json.loads(body)["hits"]["hits"]] if st == 200 else []


def ns_count(ns):
    return len(hits({"term": {"kubernetes.namespace": ns}}))


def dead_lines():
    n = 0
    for root, _, files in os.walk(os.path.join(tmp, "dead-letter")):
        for fn in files:
            with open(os.path.join(root, fn), "rb") as f:
                n += sum(1 for l in f if l.strip())
    return n


def field_count():
    st, body = http("GET", f"{ES}/{prefix}-*/_mapping")
    if st != 200:
        return -1

    def walk(props):
        n = 0
        for v in props.values():
            n += 1
            n += walk(v.get("properties", {}))
        return n
    return max(walk(m["mappings"].get("properties", {})) for m in json.loads(body).values())


procs = {"shipper": spawn([SHIPPER, "-c", os.path.join(tmp, "shipper.yaml")],
                                     stderr=open(os.path.join(tmp, "shipper.log"), "wb")),
         "aggregator": spawn([AGGREGATOR, "-c", os.path.join(tmp, "aggregator.yaml")],
                                        stderr=open(os.path.join(tmp, "aggregator.log"), "wb"))}
try:
    wait(lambda: metric_sum(ship_port, "logpipe_shipper_k8s_synced") == 1, 30,
         "the shipper's pod cache synced")
    # 1. one tenant's line of 930 keys
    write(HOG, json.dumps({f"hog_field_{i:03d}": i for i in range(930)}))
    wait(lambda: ns_count("hog") == 1, 60, "the hog's line indexed")
    hog = hits({"term": {"kubernetes.namespace": "hog"}})
    mapped = sum(1 for k in (hog[0] if hog else {}) if k.startswith("hog_field_"))
    kept = (hog[0].get("logpipe", {}).get("kept", []) if hog else [])
    kept = kept if isinstance(kept, list) else [kept]
    budget_kept = [k for k in kept if k.get("reason") == "field_budget"]
    check(mapped == 200 and len(budget_kept) == 730,
          f"the hog's first 200 new fields mapped, 730 kept ({mapped} mapped, "
          f"{len(budget_kept)} kept for the budget)")
    check(metric_sum(agg_port, "logpipe_aggregator_field_budget_kept_total") == 730,
          "the kept fields counted")
    fields = field_count()
    check(0 < fields < 500, f"the index's fields stay well under its limit ({fields})")
    # 2. another tenant's new fields
    write(PAY, json.dumps({"refund_id": "r-1", "reason": "duplicate charge"}))
    wait(lambda: ns_count("pay") == 1, 60, "pay's first line indexed")
    check(len(hits({"term": {"refund_id": "r-1"}})) == 1, "pay's new field is mapped: searchable")
    # 3. a new label on pay's pod
    labelled = json.loads(json.dumps(PAY))
    labelled["metadata"]["labels"]["release"] = "canary"
    api.add(labelled)
    time.sleep(1.5)  # the watch delivers the MODIFIED event
    write(PAY, json.dumps({"refund_id": "r-2", "reason": "late"}))
    wait(lambda: ns_count("pay") == 2, 60, "pay's line after the new label indexed")
    canary = hits({"term": {"kubernetes.labels.release": "canary"}})
    check(len(canary) == 1 and canary[0].get("refund_id") == "r-2",
          f"the new label is searchable ({len(canary)} hits)")
    check(dead_lines() == 0 and
          metric_sum(agg_port, "logpipe_aggregator_dead_letters_total") in (0, None),
          f"nothing dead-lettered ({dead_lines()} lines)")
    st, body = http("GET", f"{ES}/{prefix}-*/_mapping/field/kubernetes.labels")
    check("flat_object" in body, f"kubernetes.labels is one flat_object field: {body[:300]}")
finally:
    stop_procs(procs)
    api.stop()

if check.failures:
    print(f"{len(check.failures)} of {check.count} checks failed (logs in {tmp})")
    sys.exit(1)
print(f"test_field_budget_e2e: {check.count} checks passed")
