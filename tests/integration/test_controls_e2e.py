#!/usr/bin/env python3
"""Cost controls and redaction end to end: the real shipper, the real Kafka,
two real aggregators, the real OpenSearch and the file output.

Five containers (CRI logs): `noisy` (a route that drops), `debug` (a route
that samples 30 %), two pods of `burst` (a rate limit of 50 events per
second per pod, all their lines in one second of the runtime's time) and
`pii` (JSON and plain lines full of e-mail addresses, IPv4/IPv6 addresses,
card numbers, bearer tokens, JWTs and AWS key ids, in the message, in
parsed fields and in keys; the node's host name is itself an IPv4 address,
which is the pipeline's and must stay). Two undecodable messages produced
straight to the topic carry personal data too: one plain, one zstd.

A Docker container without Kubernetes (json-file log next to a real-shaped
config.v2.json of a Compose service) ships its name, image and labels.

Aggregator A consumes with two kill -9 mid-stream; aggregator B (another
group, another index prefix and directory) consumes the same topic without
a fault. Aggregator C (a third group, files only) has no parser and routes
only on what the record itself says, so every line takes the renderer's
fast path, where the message is written from the batch as it came unless a
rule changed it. Checks: the noisy pod ships nothing and is counted; the debug
route keeps about 30 % and A (killed, replaying) keeps exactly the events B
keeps, each once; each burst pod keeps exactly 50 in B; no planted value
and no match of a detector-like regex is in OpenSearch, in the files or in
the dead letter (decoded), where the compressed value is stored
decompressed and redacted; owned fields keep their values; the Compose
container's documents carry its name, image and project/service labels and
are routed by a label.

usage: test_controls_e2e.py SHIPPER AGGREGATOR LP_PRODUCE"""
import base64
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from lptest import spawn, es_count as lp_es_count, free_port, http, metric_sum, metrics_text, ndjson_lines, stop_procs, Checks

SHIPPER, AGGREGATOR, PRODUCE = map(os.path.abspath, sys.argv[1:4])
BROKERS = "127.0.0.1:" + os.environ.get("KAFKA_PORT", "9092")
ES = "http://127.0.0.1:" + os.environ.get("OPENSEARCH_PORT", "9200")
HOST = "10.9.8.7"  # the node's name looks like what the ipv4 detector takes: it is owned
check = Checks()

tmp = tempfile.mkdtemp(prefix="lp-controls-")
logs = os.path.join(tmp, "log", "containers")
os.makedirs(logs)
now = datetime.now(timezone.utc).replace(microsecond=0)
rt = now.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")

planted = set()  # every personal value written: none may come out


def card(i):
    """A 16-digit Visa-like number with a valid Luhn digit."""
    body = "4%014d" % (i * 7919 + 12345)
    s = 0
    for k, d in enumerate(reversed(body)):
        x = int(d) * (2 if k % 2 == 0 else 1)
        s += x - 9 if x > 9 else x
    return body + str((10 - s % 10) % 10)


def pii_lines(n):
    out = []
    for i in range(n):
        mail, ip4, ip6 = f"alice.{i}@shop.example", f"10.20.{i % 250}.7", f"2001:db8::{i:x}:1"
        c = card(i)
        tok = "tok%06d-abcdefghijkl" % i
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI%04d.c2lnbmF0dXJl" % i
        aws = "AKIA%016d" % i
        planted.update({mail, ip4, ip6, c, tok, jwt, aws})
        if i % 2 == 0:
            out.append(json.dumps({
                "msg": f"order {i} by {mail} from {ip4} paid {c[:4]} {c[4:8]} {c[8:12]} {c[12:]}",
                "user": {"email": mail, "ip6": ip6}, "auth": f"Bearer {tok}", "jwt": jwt,
                "aws": aws, "cards": {c: i}, "seq": i}))
        else:
            out.append(f"plain {i}: login by {mail} from {ip4} / [{ip6}] key {aws} Authorization: "
                       f"Bearer {tok} {jwt}")
    return out


containers = {  # (pod, namespace, container) -> lines
    ("chatty-1", "noisy", "app"): [f"noise {i}" for i in range(300)],
    ("dbg-1", "debug", "app"): [f"debug line {i}" for i in range(2000)],
    ("b-1", "burst", "app"): [f"burst one {i}" for i in range(400)],
    ("b-2", "burst", "app"): [f"burst two {i}" for i in range(400)],
    ("shop-1", "pii", "app"): pii_lines(200),
}
for n, ((pod, ns, ctr), ls) in enumerate(containers.items()):
    with open(os.path.join(logs, f"{pod}_{ns}_{ctr}-{n + 1:064x}.log"), "w") as f:
        for l in ls:
            f.write(f"{rt} stdout F {l}\n")

# a Docker container without Kubernetes: its json-file log next to its config.v2.json
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
docker_id = "%064x" % 0xd0c
docker_dir = os.path.join(tmp, "docker", "containers", docker_id)
os.makedirs(docker_dir)
shutil.copy(os.path.join(SRC, "tests", "fixtures", "docker", "config.v2.json"), docker_dir)
with open(os.path.join(docker_dir, docker_id + "-json.log"), "w") as f:
    for i in range(50):
        f.write(json.dumps({"log": f"compose web line {i} from bob@web.example\n", "stream": "stdout",
                            "time": rt}) + "\n")
planted.add("bob@web.example")

topic = "lp-controls-%d" % os.getpid()
ship_port = free_port()
with open(os.path.join(tmp, "shipper.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
shipper:
  state_dir: {tmp}/ship-state
  host_name: "{HOST}"
  inputs: [{{paths: ["{logs}/*.log", "{tmp}/docker/containers/*/*-json.log"]}}]
  batch_linger: 50ms
  batch_max_records: 100
metrics: {{listen: 127.0.0.1:{ship_port}}}
""")


# every detector, the same for each aggregator
REDACT = """  redact:
    - {name: email, detector: email}
    - {name: ipv4, detector: ipv4}
    - {name: ipv6, detector: ipv6}
    - {name: card, detector: card}
    - {name: bearer, detector: bearer}
    - {name: jwt, detector: jwt}
    - {name: aws, detector: aws_key}
"""


def agg_config(name, port):
    prefix = f"{topic}-{name.lower()}"
    path = os.path.join(tmp, f"aggregator-{name}.yaml")
    with open(path, "w") as f:
        f.write(f"""kafka:
  brokers: "{BROKERS}"
  topic: {topic}
  # a member killed with -9 holds its partitions until its session times out
  properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "1000"}}
aggregator:
  group_id: {prefix}
  commit_interval: 200ms
  dead_letter_dir: {tmp}/{name}/dead-letter
  parsers: [{{name: app-json, kind: json, keep_original: true}}]
  routes:
    - {{name: noisy, match: [{{field: kubernetes.namespace, equals: noisy}}], drop: true}}
    - name: debug
      match: [{{field: kubernetes.namespace, equals: debug}}]
      sample: 0.3
      outputs: [search, files]
    - name: burst
      match: [{{field: kubernetes.namespace, equals: burst}}]
      rate_limit: {{events_per_second: 50, per: pod}}
      outputs: [search, files]
    - name: compose-web
      match: [{{field: container.labels.com_docker_compose_service, equals: web}}]
      outputs: [search, files]
  default_route: {{parser: app-json, outputs: [search, files]}}
{REDACT}  outputs:
    - name: search
      type: elasticsearch
      url: {ES}
      index: "{prefix}-{{kubernetes.namespace}}-%Y.%m.%d"
      template_name: {prefix}
      flush_interval: 100ms
      retry_initial: 100ms
      bulk_max_actions: 50
      max_inflight_requests: 1
    - {{name: files, type: file, path: {tmp}/{name}/segments, max_segment_age: 1s}}
metrics: {{listen: 127.0.0.1:{port}}}
""")
    return path, prefix


ports = {"A": free_port(), "B": free_port()}  # (index names are lower case)
cfgs = {n: agg_config(n, ports[n]) for n in ports}
# C: the fast path (no parser, a route on the namespace only), files only
fast_port = free_port()
with open(os.path.join(tmp, "aggregator-C.yaml"), "w") as f:
    f.write(f"""kafka: {{brokers: "{BROKERS}", topic: {topic}}}
aggregator:
  group_id: {topic}-c
  commit_interval: 200ms
  dead_letter_dir: {tmp}/C/dead-letter
  routes: [{{name: noisy, match: [{{field: kubernetes.namespace, equals: noisy}}], drop: true}}]
  default_route: {{outputs: [files]}}
{REDACT}  outputs: [{{name: files, type: file, path: {tmp}/C/segments, max_segment_age: 1s}}]
metrics: {{listen: 127.0.0.1:{fast_port}}}
""")


def start_agg(name):
    return spawn([AGGREGATOR, "-c", cfgs[name][0]],
                            stderr=open(os.path.join(tmp, f"aggregator-{name}.log"), "ab"))


procs = {"shipper": spawn([SHIPPER, "-c", os.path.join(tmp, "shipper.yaml")],
                                     stderr=open(os.path.join(tmp, "shipper.log"), "wb")),
         "A": start_agg("A"), "B": start_agg("B"),
         "C": spawn([AGGREGATOR, "-c", os.path.join(tmp, "aggregator-C.yaml")],
                               stderr=open(os.path.join(tmp, "aggregator-C.log"), "wb"))}


def produce(name, value, encoding):
    p = os.path.join(tmp, name + ".bin")
    open(p, "wb").write(value)
    r = subprocess.run([PRODUCE, BROKERS, topic, "0", p, "logpipe-format=1",
                        "content-type=application/x-ndjson", f"content-encoding={encoding}",
                        "logpipe-records=1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)
    check(r.returncode == 0, f"produce {name}: {r.stderr[-300:]}")


def es_count(name):
    return max(0, lp_es_count(ES, f"{cfgs[name][1]}-*"))


def lag(name):
    return metric_sum(fast_port if name == "C" else ports[name], "logpipe_aggregator_consumer_lag")


# the undecodable messages, once the shipper has made the topic
deadline = time.time() + 60
while time.time() < deadline and not metric_sum(ship_port, "logpipe_shipper_delivered_messages_total"):
    time.sleep(0.3)
dlq_plain = b"plain, not a batch: carol@dlq.example from 10.66.66.66\n"
dlq_zstd = b"not a batch either: dave@dlq.example card 4111 1111 1111 1111\n"
planted.update({"carol@dlq.example", "10.66.66.66", "dave@dlq.example", "4111 1111 1111 1111"})
produce("plain", dlq_plain, "identity")
produce("zstd", subprocess.run(["zstd", "-q", "-c"], input=dlq_zstd, stdout=subprocess.PIPE).stdout,
        "zstd")

# A: two kill -9 while it indexes, restarted each time
kills = 0
deadline = time.time() + 240
while kills < 2 and time.time() < deadline:
    if es_count("A") >= 150 * (kills + 1):
        procs["A"].send_signal(signal.SIGKILL)
        procs["A"].wait()
        kills += 1
        time.sleep(0.5)
        procs["A"] = start_agg("A")
    time.sleep(0.2)
check(kills == 2, f"aggregator A killed twice mid-stream ({kills})")


def settled(name):
    if lag(name) != 0:
        return False
    time.sleep(3)
    return lag(name) == 0


def dead(name):
    return ndjson_lines(os.path.join(tmp, name, "dead-letter", "*.ndjson"))


deadline = time.time() + 240
while time.time() < deadline and not (settled("A") and settled("B") and settled("C")
                                      and len(dead("B")) >= 2 and len(dead("C")) >= 2
                                      and es_count("A") == es_count("B")):
    time.sleep(1)
metrics = {n: metrics_text(ports[n]) for n in ports}
metrics_c = metrics_text(fast_port)
metrics_ship = metrics_text(ship_port)
stop_procs(procs)


def search_all(name):
    prefix = cfgs[name][1]
    http("POST", f"{ES}/{prefix}-*/_refresh")
    st, body = http("POST", f"{ES}/{prefix}-*/_search",
                    json.dumps({"size": 10000, "query": {"match_all": {}}}))
    check(st == 200, f"{name}: search answers ({st} {body[:200]})")
    return json.loads(body)["hits"]["hits"] if st == 200 else []


hits = {n: search_all(n) for n in ports}


def by_pod(hs):
    out = {}
    for h in hs:
        d = h["_source"]
        pod = d["kubernetes"]["pod"]["name"] if "kubernetes" in d else "docker:" + d["container"]["name"]
        out.setdefault(pod, []).append(h)
    return out


pods = {n: by_pod(hits[n]) for n in ports}
for n in ports:
    ids = [h["_id"] for h in hits[n]]
    check(len(ids) == len(set(ids)), f"{n}: every document once ({len(ids)} documents)")
    check("chatty-1" not in pods[n], f"{n}: the dropped route indexed nothing")

# drop and rate limit, counted (B: no replay)
mb = metrics["B"]
dropped = lambda route, reason: metric_sum(0, "logpipe_aggregator_dropped_total", "\n".join(
    l for l in mb.splitlines() if f'route="{route}"' in l and f'reason="{reason}"' in l))
total_lines = sum(len(v) for v in containers.values()) + 50
rin = metric_sum(0, "logpipe_aggregator_records_in_total", mb)
check(rin == total_lines, f"B: every line decoded is counted in, dropped or not ({rin} of {total_lines})")
check(dropped("noisy", "route") == 300, f"B counts 300 dropped by the route ({dropped('noisy', 'route')})")
for pod in ("b-1", "b-2"):
    got = len(pods["B"].get(pod, []))
    check(got == 50, f"B: burst pod {pod} keeps exactly 50 of its 400 lines in one second ({got})")
    got_a = len(pods["A"].get(pod, []))
    check(50 <= got_a <= 400, f"A (replaying): burst pod {pod} keeps at least the limit ({got_a})")
check(dropped("burst", "rate_limit") == 700, f"B counts 700 over the rate ({dropped('burst', 'rate_limit')})")

# per-namespace volume: what each tenant sent and what its routes dropped,
# in the shipper and in B (docs/metrics.md "Per-namespace volume")


def ns_metric(text, name, ns):
    return metric_sum(0, name, "\n".join(l for l in text.splitlines()
                                          if f'log_namespace="{ns}"' in l)) or 0


sent = {}
for (pod, ns, ctr), ls in containers.items():
    sent[ns] = sent.get(ns, 0) + len(ls)
for ns, n in sent.items():
    got_ship = ns_metric(metrics_ship, "logpipe_shipper_namespace_events_total", ns)
    got_agg = ns_metric(mb, "logpipe_aggregator_namespace_records_total", ns)
    check(got_ship == n and got_agg == n,
          f"namespace {ns}: {n} lines shipped and read, per namespace (shipper {got_ship}, B {got_agg})")
check(ns_metric(mb, "logpipe_aggregator_namespace_records_total", "_none") == 50,
      "the Docker container without Kubernetes counts under log_namespace=\"_none\"")
check(ns_metric(mb, "logpipe_aggregator_namespace_dropped_total", "noisy") == 300,
      "namespace noisy: 300 dropped by its route")
check(ns_metric(mb, "logpipe_aggregator_namespace_rate_limited_total", "burst") == 700,
      "namespace burst: 700 over the rate limit")
check(ns_metric(mb, "logpipe_aggregator_namespace_sampled_out_total", "debug") == dropped("debug", "sample"),
      "namespace debug: its sampled-out records, as the route counts them")
check(ns_metric(mb, "logpipe_aggregator_namespace_bytes_total", "noisy") == sum(len(l) for l in containers[("chatty-1", "noisy", "app")]),
      "namespace noisy: its message bytes")

# sampling: about 30 %, and the same events after kill -9 and replay
dbg = {n: {h["_id"] for h in pods[n].get("dbg-1", [])} for n in ports}
share = len(dbg["B"]) / 2000
check(0.25 <= share <= 0.35, f"the debug route keeps about 30 % ({len(dbg['B'])} of 2000)")
check(dbg["A"] == dbg["B"], f"A, killed twice and replaying, kept exactly B's sample "
      f"({len(dbg['A'])} vs {len(dbg['B'])}, {len(dbg['A'] ^ dbg['B'])} differ)")
check(dropped("debug", "sample") + len(dbg["B"]) == 2000,
      f"B: sampled out + kept = 2000 ({dropped('debug', 'sample')} + {len(dbg['B'])})")

# Docker metadata: name, image and Compose labels on every document; routed by a label
for n in ports:
    web = pods[n].get("docker:shop-web-1", [])
    check(len(web) == 50, f"{n}: the Compose container's 50 lines under its name shop-web-1 ({len(web)}; "
          f"{sorted(k for k in pods[n] if k.startswith('docker:'))})")
    ok = [h for h in web if h["_source"]["container"].get("image", {}).get("name") == "nginx:1.25"
          and h["_source"]["container"].get("labels", {}).get("com_docker_compose_service") == "web"
          and h["_source"]["container"]["labels"].get("com_docker_compose_project") == "shop"
          and h["_source"]["container"]["id"] == docker_id and "[redacted:email]" in h["_source"]["message"]]
    check(len(ok) == 50, f"{n}: image, Compose project and service on every document ({len(ok)}: "
          f"{json.dumps(web[0]['_source'])[:400] if web else ''})")
    check(not any("s3cr3t" in json.dumps(h["_source"]) for h in web), f"{n}: nothing of Config.Env")
check(metric_sum(0, "logpipe_aggregator_route_records_total", "\n".join(
    l for l in mb.splitlines() if 'route="compose-web"' in l)) == 50, "B routes by container.labels")

# redaction: nothing planted anywhere, and owned fields as they were
detector_like = [re.compile(p) for p in (
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}", r"(?<![0-9.])10\.(?:20|66)\.[0-9]+\.[0-9]+",
    r"2001:db8::", r"4[0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}", r"(?i)bearer tok",
    r"eyJhbGciOiJIUzI1NiJ9\.eyJ", r"AKIA[0-9A-Z]{16}")]


IDENTITY = ("@timestamp", "stream", "host", "container", "kubernetes", "log")


def content(d):
    """The document without what the pipeline owns (ids are hex that a
    digit pattern may match by chance); event.original and logpipe.kept stay."""
    d = {k: v for k, v in d.items() if k not in IDENTITY}
    if isinstance(d.get("event"), dict):
        d["event"] = {k: v for k, v in d["event"].items() if k not in ("id", "ingested")}
    if isinstance(d.get("logpipe"), dict):
        d["logpipe"] = {k: v for k, v in d["logpipe"].items() if k == "kept"}
    return json.dumps(d)


def leaks(text):
    found = [p for p in planted if p in text]
    found += [r.pattern for r in detector_like if r.search(text)]
    return found


for n in ports:
    shop = pods[n].get("shop-1", [])
    check(len(shop) == 200, f"{n}: all 200 pii lines indexed ({len(shop)})")
    bad = [(h["_id"], leaks(content(h["_source"]))) for h in shop]
    bad = [b for b in bad if b[1]]
    check(not bad, f"{n}: no planted value or detector match in OpenSearch ({bad[:3]})")
    for h in hits[n]:
        d = h["_source"]
        if d["host"]["name"] != HOST or "[redacted" in json.dumps([d.get("kubernetes"), d.get("container")]):
            check(False, f"{n}: owned fields untouched ({d['host']}, {d.get('kubernetes')})")
            break
    red = [h for h in shop if "[redacted:email]" in h["_source"].get("message", "")]
    check(len(red) == 200, f"{n}: every pii message says what was redacted ({len(red)})")
    js = [h["_source"] for h in shop if "seq" in h["_source"]]
    check(len(js) == 100 and all(d["user"]["email"] == "[redacted:email]" and
                                 "[redacted:card]" in d["cards"] and
                                 "[redacted" in d.get("event", {}).get("original", "") for d in js),
          f"{n}: parsed fields, keys and event.original redacted ({json.dumps(js[:1])[:400]})")
    # the files
    seg = [json.loads(l) for p in glob.glob(os.path.join(tmp, n, "segments", "**", "*.ndjson*"),
                                            recursive=True) for l in open(p, errors="replace")]
    seg_shop = "\n".join(content(e) for e in seg if e.get("kubernetes", {}).get("pod", {}).get("name") == "shop-1")
    seg_web = "\n".join(content(e) for e in seg if e["container"].get("name") == "shop-web-1")
    check(seg_web.count("\n") == 49 and not leaks(seg_web), f"{n}: the Compose lines in the files, redacted")
    check(seg_shop.count("\n") == 199 and not leaks(seg_shop),
          f"{n}: the 200 pii lines in the files, no planted value ({leaks(seg_shop)[:5]})")
    # the dead letter, raw values decoded
    dl = dead(n)
    decoded = [base64.b64decode(e["raw_base64"]).decode(errors="replace") for e in dl if "raw_base64" in e]
    text = json.dumps([e["reason"] for e in dl]) + "\n".join(decoded)
    check(len(dl) == 2 and all(e.get("redacted") is True for e in dl),
          f"{n}: two dead letters, both redacted ({json.dumps(dl)[:400]})")
    check(not leaks(text), f"{n}: no planted value in the dead letter ({leaks(text)[:5]})")
    check(any("decompressed (zstd) for redaction" in e["reason"] and "[redacted:card]" in d
              for e, d in zip(dl, decoded)), f"{n}: the zstd value kept decompressed, redacted ({decoded})")

# C: the fast path writes the redacted message, never the batch's copy of the original
seg = [json.loads(l) for p in glob.glob(os.path.join(tmp, "C", "segments", "**", "*.ndjson*"),
                                        recursive=True) for l in open(p, errors="replace")]
seg_shop = [e for e in seg if e.get("kubernetes", {}).get("pod", {}).get("name") == "shop-1"]
seg_web = [e for e in seg if e["container"].get("name") == "shop-web-1"]
check(len(seg_shop) == 200 and len(seg_web) == 50 and not any("seq" in e for e in seg_shop),
      f"C: the pii and Compose lines in the files, unparsed ({len(seg_shop)}, {len(seg_web)})")
text = "\n".join(content(e) for e in seg_shop + seg_web)
check(not leaks(text), f"C (fast path): no planted value in the files ({leaks(text)[:5]})")
check(sum("[redacted:email]" in e["message"] for e in seg_shop + seg_web) == 250,
      "C (fast path): every pii and Compose message says what was redacted")
check(all(e["host"]["name"] == HOST for e in seg), "C: owned fields untouched")
dl = dead("C")
decoded = [base64.b64decode(e["raw_base64"]).decode(errors="replace") for e in dl if "raw_base64" in e]
text = json.dumps([e["reason"] for e in dl]) + "\n".join(decoded)
check(len(dl) == 2 and not leaks(text), f"C: two dead letters, redacted ({leaks(text)[:5]})")
c_red = metric_sum(0, "logpipe_aggregator_redacted_total", metrics_c)
check(c_red >= 250, f"C counts its redactions ({c_red})")

redacted = metric_sum(0, "logpipe_aggregator_redacted_total", mb)
print(f"controls: B indexed {len(hits['B'])} (debug {len(dbg['B'])}/2000, burst "
      f"{len(pods['B'].get('b-1', []))}+{len(pods['B'].get('b-2', []))}/800, pii "
      f"{len(pods['B'].get('shop-1', []))}/200), A {len(hits['A'])} after {kills} kill -9; "
      f"redacted values {redacted}, dead letters {len(dead('B'))}")
print(f"{check.count} checks, {len(check.failures)} failed")
if check.failures:
    print("kept:", tmp)
    sys.exit(1)
for n in ports:
    http("DELETE", f"{ES}/{cfgs[n][1]}-*")
    http("DELETE", f"{ES}/_index_template/{cfgs[n][1]}")
shutil.rmtree(tmp)
