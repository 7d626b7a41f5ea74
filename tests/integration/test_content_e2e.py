#!/usr/bin/env python3
"""Log content end to end: the content corpus (tests/fixtures/content/
corpus.jsonl: lines as logrus, zap, pino, bunyan, structlog, log4j2's JSON
and ECS layouts, Serilog and an ECS logger write them, the lines of the
content-ownership issue, forgeries, out-of-bounds times, metadata names,
type flips across lines) plus a 60 KB dotted key and a 10,000-field object
made at run time, written by two containers (CRI in namespace tenant-a,
Docker json-file in tenant-b), shipped by the real shipper through the real
Kafka to the real aggregator, into the real OpenSearch and the file output.

Checks: every line is indexed exactly once and found by a full-text search
of its token; nothing is dead-lettered; in every document the owned fields
are what the shipper and aggregator set (namespace, pod, container, host,
file path, the line's byte offset, source id, event id = _id, stream, the
runtime's time unless time_field held a time within bounds); index names
come only from metadata; each line's expected fields and kept entries are
there; the file output holds the same lines once.

usage: test_content_e2e.py SHIPPER AGGREGATOR"""
import glob
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, es_count as lp_es_count, free_port, http, ndjson_lines, Checks

SHIPPER, AGGREGATOR = map(os.path.abspath, sys.argv[1:3])
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(SRC, "tests", "fixtures", "content", "corpus.jsonl")
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
HOST = "content-node-1"
check = Checks()


def get(doc, path):
    """A dotted path of a document (nested objects), or KeyError."""
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def has(doc, path):
    try:
        get(doc, path)
        return True
    except KeyError:
        return False


# ---- the corpus, with a token per line and times around the runtime's ----
# the runtime's time: this minute's 30th second (the index's day cannot change under the line times)
now = datetime.now(timezone.utc).replace(second=30, microsecond=0)
rt = now.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
line_time = (now - timedelta(milliseconds=750)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
line_time_ns = (now - timedelta(milliseconds=750)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
cases = [json.loads(l) for l in open(CORPUS) if l.strip()]
deep_key = ".".join(["a"] * 30000)
cases.append({"name": "dotted-60kb", "line": json.dumps({deep_key: 1, "msg": "deep dots {tok}"}),
              "expect": {"message": "deep dots {tok}"}, "kept_reason": "depth"})
many = {"f%d" % i: i for i in range(10000)}
many["msg"] = "many fields {tok}"
cases.append({"name": "fields-10000", "line": json.dumps(many), "expect": {"message": "many fields {tok}"},
              "kept_reason": "fields"})


def fill(s, tok):
    return (s.replace("{tok}", tok).replace("{time}", line_time).replace("{time_ns}", line_time_ns))


def fill_obj(o, tok):
    if isinstance(o, str):
        return fill(o, tok)
    if isinstance(o, dict):
        return {fill(k, tok): fill_obj(v, tok) for k, v in o.items()}
    if isinstance(o, list):
        return [fill_obj(v, tok) for v in o]
    return o


tmp = tempfile.mkdtemp(prefix="lp-content-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
pods = {  # namespace -> (file, format, pod, container)
    "tenant-a": (os.path.join(logs, "api-7d9_tenant-a_app-%064x.log" % 1), "cri", "api-7d9", "app"),
    "tenant-b": (os.path.join(logs, "web-5f7_tenant-b_web-%064x.log" % 2), "docker", "web-5f7", "web"),
}
lines = {}  # token -> what the document must hold
for ns, (path, fmt, pod, container) in pods.items():
    with open(path, "wb") as f:
        for i, c in enumerate(cases):
            tok = "tok%s%03d" % (ns[-1], i)
            text = fill(c["line"], tok)
            if fmt == "cri":
                raw = f"{rt} stdout F {text}\n".encode()
            else:
                raw = (json.dumps({"log": text + "\n", "stream": "stdout", "time": rt}) + "\n").encode()
            lines[tok] = {"case": c["name"], "ns": ns, "pod": pod, "container": container, "path": path,
                          "offset": f.tell(), "expect": fill_obj(c.get("expect", {}), tok),
                          "kept": fill_obj(c.get("kept", {}), tok), "absent": c.get("absent", []),
                          "kept_reason": c.get("kept_reason")}
            f.write(raw)

topic = "lp-content-%d" % os.getpid()
prefix = "lp-content-%d" % os.getpid()
agg_port = free_port()
cfg = os.path.join(tmp, "logpipe.yaml")
with open(cfg, "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/state
  host_name: {HOST}
  inputs: [{{paths: ["{logs}/*.log"]}}]
  batch_linger: 50ms
aggregator:
  group_id: {topic}
  dead_letter_dir: {tmp}/dead-letter
  parsers: [{{name: app-json, kind: json, time_field: time}}]
  default_route: {{parser: app-json, outputs: [search, files]}}
  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{prefix}-{{kubernetes.namespace}}-%Y.%m.%d"
      template_name: {prefix}
      flush_interval: 100ms
      retry_initial: 100ms
    - {{name: files, type: file, path: {tmp}/segments, max_segment_age: 1s}}
""")
agg_extra = os.path.join(tmp, "aggregator.yaml")
open(agg_extra, "w").write('metrics: {listen: "127.0.0.1:%d"}\n' % agg_port)
ship_extra = os.path.join(tmp, "shipper.yaml")
open(ship_extra, "w").write('metrics: {listen: "127.0.0.1:%d"}\n' % free_port())
procs = {
    "aggregator": spawn([AGGREGATOR, "-c", cfg, "-c", agg_extra],
                                   stderr=open(os.path.join(tmp, "aggregator.log"), "wb")),
    "shipper": spawn([SHIPPER, "-c", cfg, "-c", ship_extra],
                                stderr=open(os.path.join(tmp, "shipper.log"), "wb")),
}


def es_count():
    return lp_es_count(ES, f"{prefix}-*")


def metrics():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{agg_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for l in text.splitlines():
        if l and not l.startswith("#"):
            k, _, v = l.rpartition(" ")
            out[k] = float(v)
    return out


def dead():
    return ndjson_lines(os.path.join(tmp, "dead-letter", "*.ndjson"))


deadline = time.time() + 180
while time.time() < deadline and es_count() < len(lines) and not dead():
    time.sleep(0.5)
time.sleep(2)  # anything more (a duplicate) would show now
m = metrics()
for p in procs.values():
    p.send_signal(signal.SIGTERM)
for name, p in procs.items():
    check(p.wait(timeout=120) == 0, f"{name} exits 0 on SIGTERM")

# ---- what OpenSearch holds ----
http("POST", f"{ES}/{prefix}-*/_refresh")
st, body = http("POST", f"{ES}/{prefix}-*/_search",
                json.dumps({"size": 1000, "query": {"match_all": {}}}))
hits = json.loads(body)["hits"]["hits"] if st == 200 else []
check(st == 200, f"search answers 200 ({st} {body[:200]})")
docs = {}
for h in hits:
    toks = set(re.findall(r"tok[ab][0-9]{3}", h["_source"].get("message", "")))
    check(len(toks) == 1, "a document with one token in its message: %s" % json.dumps(h["_source"])[:300])
    for t in toks:
        docs.setdefault(t, []).append(h)
day = now.strftime("%Y.%m.%d")
src_ids = {}
for tok, want in sorted(lines.items()):
    got = docs.get(tok, [])
    what = f"{want['case']} in {want['ns']} ({tok})"
    if not check(len(got) == 1, f"{what}: indexed once (found {len(got)})"):
        continue
    h = got[0]
    d = h["_source"]
    # searchable by a full-text query of its token
    st, body = http("POST", f"{ES}/{prefix}-*/_search",
                    json.dumps({"query": {"match": {"message": tok}}}))
    check(st == 200 and json.loads(body)["hits"]["total"]["value"] == 1, f"{what}: found by searching {tok}")
    # owned fields
    check(h["_index"] == f"{prefix}-{want['ns']}-{day}", f"{what}: index {h['_index']}")
    owned = {"kubernetes.namespace": want["ns"], "kubernetes.pod.name": want["pod"],
             "kubernetes.container.name": want["container"], "host.name": HOST,
             "log.file.path": want["path"], "log.offset": want["offset"], "stream": "stdout",
             "event.id": h["_id"],
             "logpipe.input_format": "cri" if want["ns"] == "tenant-a" else "docker"}
    if "@timestamp" not in want["expect"]:
        owned["@timestamp"] = rt
    for path, v in owned.items():
        check(has(d, path) and get(d, path) == v,
              f"{what}: owned {path} = {v!r} (got {get(d, path) if has(d, path) else 'nothing'!r})")
    sid = d.get("logpipe", {}).get("source_id", "")
    check(re.fullmatch(r"[0-9a-f]{32}", sid or "") is not None, f"{what}: source id {sid!r}")
    src_ids.setdefault(want["ns"], set()).add(sid)
    # the line's own fields
    for path, v in want["expect"].items():
        check(has(d, path) and get(d, path) == v,
              f"{what}: {path} = {v!r} (got {get(d, path) if has(d, path) else 'nothing'!r})")
    for path in want["absent"]:
        check(not has(d, path), f"{what}: no {path}")
    kept = {k["field"]: k for k in d.get("logpipe", {}).get("kept", [])}
    for field, reason in want["kept"].items():
        check(field in kept and kept[field]["reason"] == reason and isinstance(kept[field]["value"], str),
              f"{what}: {field!r} kept for {reason} (kept: {json.dumps(list(kept.values()))[:300]})")
    if want["kept_reason"]:
        check(any(k["reason"] in (want["kept_reason"], "mapping") for k in kept.values()),
              f"{what}: something kept for {want['kept_reason']}")
for ns, ids in src_ids.items():
    check(len(ids) == 1, f"{ns}: one source id for the file ({ids})")
check(len(hits) == len(lines), f"{len(hits)} documents for {len(lines)} lines")
st, body = http("GET", f"{ES}/_cat/indices/{prefix}-*?h=index&format=json")
indices = sorted(i["index"] for i in json.loads(body)) if st == 200 else []
check(indices == sorted({f"{prefix}-{ns}-{day}" for ns in pods}), f"indices from metadata only: {indices}")
dl = dead()
check(not dl, "nothing dead-lettered (%s)" % json.dumps(dl)[:500])

# ---- the file output ----
seg = {}
for p in glob.glob(os.path.join(tmp, "segments", "**", "*.ndjson*"), recursive=True):
    for l in open(p, "rb"):
        ev = json.loads(l)
        for t in set(re.findall(r"tok[ab][0-9]{3}", ev.get("message", ""))):
            seg.setdefault(t, []).append(ev)
for tok, want in sorted(lines.items()):
    evs = seg.get(tok, [])
    if check(len(evs) == 1, f"{want['case']} in {want['ns']}: in the files once (found {len(evs)})"):
        ev = evs[0]
        check(ev["kubernetes"]["namespace"] == want["ns"] and ev["log"]["offset"] == want["offset"] and
              ev["host"]["name"] == HOST, f"{want['case']} in {want['ns']}: owned fields in the file line")

kept_total = sum(v for k, v in m.items() if k.startswith("logpipe_aggregator_content_kept_total"))
healed = sum(v for k, v in m.items() if k.startswith("logpipe_aggregator_mapping_healed_total"))
conflicts = {k: v for k, v in m.items() if k.startswith("logpipe_aggregator_mapping_conflicts_total")}
by_field = {re.search(r'field="([^"]*)"', k).group(1): int(v) for k, v in m.items()
            if k.startswith("logpipe_aggregator_content_kept_by_field_total")}
check(healed >= 2, f"mapping conflicts healed by the output: {healed:.0f} (conflicts {conflicts})")
print(f"content corpus: {len(cases)} kinds of line x {len(pods)} containers = {len(lines)} lines, "
      f"indexed={len(hits)} in_files={sum(len(v) for v in seg.values())} dead_lettered={len(dl)} "
      f"kept={kept_total:.0f} healed={healed:.0f}")
print("  kept by field:", json.dumps(dict(sorted(by_field.items()))))
print("  conflicts healed by field:", json.dumps({re.search(r'field="([^"]*)"', k).group(1): int(v)
                                                  for k, v in conflicts.items()}))
print(f"{check.count} checks, {len(check.failures)} failed")
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
http("DELETE", f"{ES}/{prefix}-*")
http("DELETE", f"{ES}/_index_template/{prefix}")
shutil.rmtree(tmp)
